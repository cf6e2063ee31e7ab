"""Shared pieces of the quark/gluon classifiers (:mod:`mlp`, :mod:`sparse_cnn`, :mod:`resnet_pc`,
:mod:`particlenet`, :mod:`transformer`).

**Inputs.** Every classifier takes ``x [B, K, F]``: ``K`` points (hits or particles) of ``F`` features, zero rows
as padding (the ``QG{K}.h5`` layout of notebook 07: features ``track, ECAL, HCAL, col, row``, ascending order with
the padding first). The models that use a mask take an optional ``mask [B, K]`` (True = real point); without one
a point is real when any of its features is non-zero (a hit has a non-zero channel by definition).

**Globals.** A model built with ``n_globals = G > 0`` takes ``x [B, 1 + K, F]`` whose **row 0 holds G per-jet
features** (zero padded to F; e.g. the physics points' counts and energies per type, :mod:`jetcloud.qg.train`):
:func:`split_globals` separates them, the point part runs as usual and the globals (BatchNorm'ed) are concatenated
to the pooled representation before the head. ``n_globals = 0`` (the default) leaves a model as it was.

**Outputs.** Logits ``[B, num_classes]``; class 1 = quark. The report's models end with 2 logits, except
ResNet_PC whose original code ends with one (``num_classes=1``: the score is ``sigmoid``, see
:func:`jetcloud.qg.train.scores_from_logits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "point_mask",
    "check_input",
    "split_globals",
    "masked_pool",
    "masked_batchnorm",
    "log_transform",
    "ClassifierBase",
]

POOLINGS = ("mean", "max", "sum")


def point_mask(x: Tensor) -> Tensor:
    """``[B, K]`` bool: points with any non-zero feature (zero rows are padding)."""
    return (x != 0).any(dim=-1)


def check_input(x: Tensor, in_features: int, name: str) -> None:
    """Raise a clear ``ValueError`` unless ``x`` is ``[B, K, in_features]``."""
    if x.ndim != 3 or x.shape[-1] != in_features:
        raise ValueError(f"{name}: expected inputs [batch, points, {in_features}], got {tuple(x.shape)}")


def split_globals(x: Tensor, n_globals: int, name: str) -> tuple[Tensor, Tensor | None]:
    """``(points [B, K, F], globals [B, G])`` of ``x [B, 1 + K, F]`` (row 0 = globals), or ``(x, None)`` for G = 0."""
    if not n_globals:
        return x, None
    if x.ndim != 3 or x.shape[1] < 2 or x.shape[2] < n_globals:
        raise ValueError(
            f"{name}: with n_globals = {n_globals} the input is [batch, 1 + points, >= {n_globals}] (row 0: the "
            f"globals), got {tuple(x.shape)}"
        )
    return x[:, 1:], x[:, 0, :n_globals]


def masked_pool(h: Tensor, mask: Tensor | None, pooling: str) -> Tensor:
    """Pool ``h [B, K, C]`` over the points: ``mean`` / ``max`` / ``sum``, over the real points when ``mask``.

    A sample without any real point pools to zeros (no NaN).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if mask is None:
        if pooling == "mean":
            return h.mean(dim=1)
        return h.amax(dim=1) if pooling == "max" else h.sum(dim=1)
    m = mask.unsqueeze(-1).to(h.dtype)
    if pooling == "max":
        filled = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
        return torch.where(torch.isfinite(filled), filled, torch.zeros_like(filled))
    total = (h * m).sum(dim=1)
    if pooling == "sum":
        return total
    return total / m.sum(dim=1).clamp(min=1.0)


def masked_batchnorm(bn: nn.BatchNorm1d, x: Tensor, mask: Tensor) -> Tensor:
    """``bn`` over the features of the real points of ``x [B, K, C]`` only (padding would shift the statistics);
    padding rows come out as zeros. A training batch with fewer than two real points is left at zero."""
    out = torch.zeros_like(x)
    flat = x[mask]
    if flat.shape[0] > 1 or not bn.training:
        out[mask] = bn(flat)
    return out


def log_transform(x: Tensor, columns: Sequence[int]) -> Tensor:
    """``x`` with ``sign(v) log1p(|v|)`` applied to ``columns`` (energies spanning decades; zeros stay zero)."""
    if not columns:
        return x
    x = x.clone()
    idx = list(columns)
    x[..., idx] = torch.sign(x[..., idx]) * torch.log1p(x[..., idx].abs())
    return x


class ClassifierBase(nn.Module):
    """Stores the constructor arguments as ``hparams`` (checkpoints refuse another model or size)."""

    hparams: dict[str, Any]
    n_globals: int = 0

    def _init_globals(self, n_globals: int) -> None:
        """Record ``n_globals`` and build the BatchNorm of the globals (none for 0)."""
        if n_globals < 0:
            raise ValueError(f"n_globals must be >= 0, got {n_globals}")
        self.n_globals = int(n_globals)
        self.globals_bn = nn.BatchNorm1d(n_globals) if n_globals else None

    def _with_globals(self, pooled: Tensor, glob: Tensor | None) -> Tensor:
        """``pooled [B, C]`` with the normalised globals ``[B, G]`` appended (unchanged without globals)."""
        if glob is None or not self.n_globals:
            return pooled
        return torch.cat([pooled, self.globals_bn(glob.to(pooled.dtype))], dim=1)

    def _store(self, **kwargs: Any) -> None:
        self.hparams = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()}
