"""Building blocks shared by the point-cloud models.

**Packed point sets.** A batch of padded point clouds ``feats [B, L, F]`` is turned into the ``N`` valid points
of the whole batch, ``[N, F]`` (:class:`PackedPoints`). Every point-wise layer (the shared MLPs, i.e. the
original's ``Conv1D(kernel_size=1)``) runs on ``[N, C]`` as an ``nn.Linear``, so

- padding points never enter a layer, a max pool or a ``BatchNorm`` statistic: ``BatchNorm1d`` on ``[N, C]``
  normalises with the mean and variance of the *valid* points of the batch only (the original fed the padding,
  ``[0, 0, 0, 0, 0, -1]`` rows, through every layer and both max pools: weakness W8);
- no time is spent on padding (``L`` is a high quantile of the sample lengths, so a typical sample is much
  shorter than ``L``).

Per-sample operations (max pooling, a T-Net's per-sample matrix, broadcasting a global feature back to the
points) go through :class:`PackedPoints`. Outputs are scattered back to ``[B, L, ...]`` with zeros on padding.

**Keras conventions.** ``conv_mlp`` of the original is ``Conv1D(f, 1, activation="relu") -> BatchNormalization``
(ReLU *before* BN), ``dense_block`` is ``Dense -> BatchNormalization -> ReLU``; :class:`PointMLP` and
:class:`DenseBlock` keep those orders. Keras' ``BatchNormalization`` has ``momentum=0.99`` (PyTorch momentum
``0.01``) and ``epsilon=1e-3``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn

__all__ = [
    "tssr",
    "TSSR",
    "PackedPoints",
    "point_mask",
    "PointMLP",
    "DenseBlock",
    "ConcatPointMLP",
    "scaled_width",
    "parameter_counts",
    "keras_kernel_orthogonal_penalty",
]


# --------------------------------------------------------------------------------------------------------------
# TSSR
# --------------------------------------------------------------------------------------------------------------


def tssr(x: Tensor, a: float = 0.05, b: float = 0.1) -> Tensor:
    """Rectified TSSR activation (arXiv:2308.04832, as used by JetPointNet).

    ``f(x) = a x`` for ``x < 0``, ``x`` for ``0 <= x < 1``, ``b sqrt(x) - b + 1`` for ``x >= 1``.

    Continuous at 0 and 1; the slope is ``a`` below 0, ``1`` on ``[0, 1)`` and ``b / (2 sqrt(x))`` above 1
    (``b / 2`` at ``1+``). The square root is taken of ``max(x, 1)`` so that no NaN gradient leaks out of the
    branch that ``torch.where`` discards.
    """
    large = b * torch.sqrt(torch.clamp(x, min=1.0)) - b + 1.0
    return torch.where(x < 0, a * x, torch.where(x < 1, x, large))


class TSSR(nn.Module):
    """:func:`tssr` as a module (``a`` = slope below 0, ``b`` = square-root damping above 1)."""

    def __init__(self, a: float = 0.05, b: float = 0.1) -> None:
        super().__init__()
        self.a = float(a)
        self.b = float(b)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the activation element-wise."""
        return tssr(x, self.a, self.b)

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}"


# --------------------------------------------------------------------------------------------------------------
# packed point sets
# --------------------------------------------------------------------------------------------------------------


def point_mask(feats: Tensor, type_index: int, padding_type: float = -1.0) -> Tensor:
    """``[B, L]`` bool, True on real points: ``feats[..., type_index] != padding_type``."""
    return feats[..., type_index] != padding_type


@dataclass
class PackedPoints:
    """The valid points of a padded batch, in row-major (sample, then position) order.

    ``batch_index[n]`` / ``point_index[n]`` give the sample and position of packed point ``n``; ``counts`` the
    number of valid points per sample (a Python list: it drives per-sample splits).
    """

    mask: Tensor
    batch_index: Tensor
    point_index: Tensor
    counts: list[int]
    _slot: Tensor | None = field(default=None, repr=False)

    @classmethod
    def from_mask(cls, mask: Tensor) -> PackedPoints:
        """Pack the True entries of ``mask [B, L]``."""
        if mask.ndim != 2:
            raise ValueError(f"point mask must be [batch, points], got shape {tuple(mask.shape)}")
        batch_index, point_index = mask.nonzero(as_tuple=True)
        counts = mask.sum(dim=1).tolist()
        return cls(mask, batch_index, point_index, counts)

    @property
    def batch_size(self) -> int:
        """Number of samples ``B``."""
        return self.mask.shape[0]

    @property
    def length(self) -> int:
        """Padded length ``L``."""
        return self.mask.shape[1]

    @property
    def n_points(self) -> int:
        """Number of valid points ``N`` in the batch."""
        return int(self.batch_index.shape[0])

    @property
    def max_count(self) -> int:
        """The largest number of valid points of one sample (at least 1)."""
        return max(1, max(self.counts, default=0))

    def pack(self, x: Tensor) -> Tensor:
        """``[B, L, ...] -> [N, ...]``."""
        return x[self.batch_index, self.point_index]

    def unpack(self, x: Tensor, fill: float = 0.0) -> Tensor:
        """``[N, ...] -> [B, L, ...]`` with ``fill`` on padding (differentiable)."""
        out = x.new_full((self.batch_size, self.length, *x.shape[1:]), fill)
        return out.index_put((self.batch_index, self.point_index), x)

    # compact layout: sample b's valid points at positions 0 .. counts[b]-1 of a [B, max_count, C] tensor
    def slot(self) -> Tensor:
        """Position of each packed point inside its sample's compact row (``0 .. counts[b] - 1``)."""
        if self._slot is None:
            counts = torch.as_tensor(self.counts, device=self.batch_index.device)
            starts = torch.cumsum(counts, 0) - counts
            self._slot = torch.arange(self.n_points, device=self.batch_index.device) - starts[self.batch_index]
        return self._slot

    def to_compact(self, x: Tensor) -> Tensor:
        """``[N, C] -> [B, max_count, C]`` with zeros after each sample's last point."""
        out = x.new_zeros((self.batch_size, self.max_count, *x.shape[1:]))
        return out.index_put((self.batch_index, self.slot()), x)

    def from_compact(self, x: Tensor) -> Tensor:
        """``[B, max_count, C] -> [N, C]``."""
        return x[self.batch_index, self.slot()]

    def compact_padding_mask(self) -> Tensor:
        """``[B, max_count]`` bool, True where the compact row holds no point (a key-padding mask)."""
        counts = torch.as_tensor(self.counts, device=self.batch_index.device)
        positions = torch.arange(self.max_count, device=self.batch_index.device)
        return positions[None, :] >= counts[:, None]

    def segment_max(self, x: Tensor, method: str | None = None) -> Tensor:
        """Per-sample max over the valid points: ``[N, C] -> [B, C]``; a sample without points gets zeros.

        Padding can never win the max because it is not among the packed points. ``method``: ``"split"`` (a
        loop over the samples; on CPU ~10x faster than a scatter or a padded ``-inf`` buffer), ``"padded"``
        (one kernel on a ``[B, max_count, C]`` buffer; the choice on GPU) or None (by device). Both give the
        same numbers.
        """
        if (method or ("padded" if x.is_cuda else "split")) == "padded":
            out = self.to_compact(x).masked_fill(self.compact_padding_mask()[:, :, None], float("-inf")).amax(dim=1)
            if min(self.counts, default=1) == 0:
                empty = torch.as_tensor([c == 0 for c in self.counts], device=x.device)
                out = out.masked_fill(empty[:, None], 0.0)
            return out
        parts = torch.split(x, self.counts)
        return torch.stack([p.amax(dim=0) if p.shape[0] else x.new_zeros(x.shape[1:]) for p in parts])

    def broadcast(self, g: Tensor) -> Tensor:
        """Tile a per-sample tensor ``[B, C]`` to the points: ``[N, C]``."""
        return g[self.batch_index]

    def transform(self, x: Tensor, matrices: Tensor, method: str | None = None) -> Tensor:
        """Per-sample matrix product ``x_n @ T_b`` (Keras ``Dot(axes=(2, 1))([points, T])``): ``[N, C] -> [N, D]``.

        ``method`` as for :meth:`segment_max` (``"padded"``: one ``bmm`` on the compact layout).
        """
        if (method or ("padded" if x.is_cuda else "split")) == "padded":
            return self.from_compact(torch.bmm(self.to_compact(x), matrices))
        parts = torch.split(x, self.counts)
        return torch.cat([p @ matrices[i] for i, p in enumerate(parts)])


# --------------------------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------------------------


def scaled_width(base: int, factor: float) -> int:
    """``round(base * factor)``, at least 1 (the original multiplied the global widths by an integer factor)."""
    return max(1, int(round(base * factor)))


class PointMLP(nn.Module):
    """The original ``conv_mlp``: ``Linear -> ReLU -> BatchNorm1d`` (-> Dropout) on packed points ``[N, C]``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        dropout: float = 0.0,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features, eps=bn_eps, momentum=bn_momentum)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """``[N, in] -> [N, out]``."""
        return self.dropout(self.bn(F.relu(self.linear(x))))


def point_mlp_stack(widths: Sequence[int], bn: dict) -> nn.Sequential:
    """Consecutive :class:`PointMLP` layers ``widths[0] -> widths[1] -> ...`` with the BatchNorm settings ``bn``."""
    return nn.Sequential(*(PointMLP(i, o, **bn) for i, o in zip(widths[:-1], widths[1:], strict=True)))


class ConcatPointMLP(nn.Module):
    """``PointMLP`` applied to ``concat([point_features, tile(global_feature)])`` without building the concat.

    One ``nn.Linear(c_point + c_global, out)`` (the same parameters as the original's Conv1D on the concatenated
    10304 channels); its weight is split so that the global part is computed once per sample and added to every
    point: ``W [p; g] + b = W_p p + (W_g g + b)``. At the report's width this saves ~``L`` times the cost of the
    largest layer (52.8 M parameters) and the ``[N, 10304]`` activation.
    """

    def __init__(
        self,
        point_features: int,
        global_features: int,
        out_features: int,
        *,
        dropout: float = 0.0,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.point_features = point_features
        self.linear = nn.Linear(point_features + global_features, out_features)
        self.bn = nn.BatchNorm1d(out_features, eps=bn_eps, momentum=bn_momentum)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, points: Tensor, global_feature: Tensor, packed: PackedPoints) -> Tensor:
        """``points [N, Cp]``, ``global_feature [B, Cg]`` -> ``[N, out]``."""
        weight = self.linear.weight
        local = F.linear(points, weight[:, : self.point_features])
        glob = F.linear(global_feature, weight[:, self.point_features :], self.linear.bias)
        return self.dropout(self.bn(F.relu(local + packed.broadcast(glob))))


class DenseBlock(nn.Module):
    """The original ``dense_block``: ``Linear -> BatchNorm1d -> ReLU`` on per-sample vectors ``[B, C]``."""

    def __init__(self, in_features: int, out_features: int, *, bn_momentum: float = 0.01, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in] -> [B, out]``."""
        return F.relu(self.bn(self.linear(x)))


# --------------------------------------------------------------------------------------------------------------
# the original orthogonality regulariser
# --------------------------------------------------------------------------------------------------------------


def keras_kernel_orthogonal_penalty(weight: Tensor, k: int, l2: float = 0.001) -> Tensor:
    """The report's ``OrthogonalRegularizer(k, l2)`` applied, as a ``kernel_regularizer``, to a Dense kernel.

    Keras computes, with the kernel ``K = weight.T`` of shape ``(R, k*k)``::

        A   = reshape(K, (-1, k, k))                       # (R, k, k)
        AAT = reshape(tensordot(A, A, axes=(2, 2)), (-1, k, k))   # (R, k, R, k) -> (R*R, k, k), raw memory order
        penalty = sum(l2 * (AAT - I)**2)

    i.e. every ``k x k`` block of the raw memory of the ``(R k) x (R k)`` Gram matrix ``G = M M^T``
    (``M = K.reshape(R k, k)``) is compared with the identity, including the cross terms between kernel rows.
    Materialising ``G`` needs ``(R k)^2`` floats (268 M, 1 GB, for ``R = 256, k = 64``); the same number is
    computed here in closed form::

        sum(G^2)            = ||M^T M||_F^2
        sum over the block diagonals of G = sum_u M[u] . S[(u R) mod k],  S[t] = sum_s M[s k + (t + s) mod k]
        sum(I_blocks^2)     = R^2 k

    (the diagonal entry ``(p, p)`` of block ``c`` is ``G[u, s k + j]`` with ``j = (u R + s) mod k``).
    :func:`tests.test_models` checks it against the brute-force formula.
    """
    out_features, rows = weight.shape
    if out_features != k * k:
        raise ValueError(f"kernel regulariser for a {k}x{k} matrix needs {k * k} outputs, got {out_features}")
    m = weight.t().reshape(rows * k, k)  # M: rows (r, i) of A[r] = K[r].reshape(k, k)
    gram_small = m.t() @ m
    total_sq = (gram_small * gram_small).sum()
    t = torch.arange(k, device=weight.device)
    s = torch.arange(rows, device=weight.device)
    index = s[None, :] * k + (t[:, None] + s[None, :]) % k  # [k, R]
    s_rows = m[index].sum(dim=1)  # S[t]: [k, k]
    u = torch.arange(rows * k, device=weight.device)
    cross = (m * s_rows[(u * rows) % k]).sum()
    return l2 * (total_sq - 2.0 * cross + float(rows * rows * k))


# --------------------------------------------------------------------------------------------------------------
# parameter counts
# --------------------------------------------------------------------------------------------------------------


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameter counts in both conventions.

    ``trainable`` (``requires_grad`` parameters), ``frozen`` (other parameters), ``bn_statistics``
    (``running_mean`` + ``running_var`` entries of every BatchNorm: Keras' "non-trainable" parameters),
    ``keras_total`` = trainable + frozen + bn_statistics (what ``model.summary()`` calls "Total params";
    PyTorch's ``num_batches_tracked`` counters are not counted).
    """
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            stats += module.running_mean.numel() + module.running_var.numel()
    return {"trainable": trainable, "frozen": frozen, "bn_statistics": stats, "keras_total": trainable + frozen + stats}


def as_int_tuple(values: Sequence[int] | None, name: str) -> tuple[int, ...] | None:
    """Validate a width list (positive ints) and return it as a tuple (None stays None)."""
    if values is None:
        return None
    out = tuple(int(v) for v in values)
    if not out or any(v < 1 for v in out) or any(int(v) != v for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    return out
