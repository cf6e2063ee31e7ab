"""JetPointNet's ``PointNetSegmentation`` (report version, ``models/JetPointNet.py`` @ 68ec39f) in PyTorch.

Architecture (``docs/jetpointnet.md``; widths at ``size_factor = f``)::

    feats [B, L, F] --input T-Net (F x F)--> x @ T
      -> point MLP 64 -> 64                           = point_features [.., 64]
      -> feature T-Net (64 x 64, orthogonality penalty) -> h @ T
      -> global MLP 64f -> 128f -> 1024f -> max over the sample's points -> tiled back to every point
      -> concat(point_features, global) -> head 512f -> 256f -> 128f (Dropout 0.3 on the last)
      -> logit (Linear 1) -> TSSR(a=0.05, b=0.1) -> x energy column (the "bypass")

``size_factor=10`` with ``faithful_tnet=True`` and 6 features is the report's model: 85,853,165 trainable
parameters and 58,696 BatchNorm statistics (85,911,861 in Keras' count), as the reference document says.
The HEAD model of 88149f9 (5,109,494) is ``in_features=9, point_widths=(96, 96), global_widths=(128, 256, 1024),
head_widths=(512, 256, 128)``.

Differences from the original, all deliberate and switchable:

- **Masking (W8).** Padding points (``feats[..., type_index] == padding_type``) are removed before the first
  layer (:class:`~jetcloud.models.layers.PackedPoints`): they never reach a max pool, a BatchNorm statistic or a
  layer, and their output is 0. ``mask_padding=False`` feeds them through everything as the original did.
- **T-Nets (W14).** ``faithful_tnet=False`` (default): the last T-Net layer is a plain ``Linear`` initialised to
  output the identity (zero weight, identity bias), and the feature T-Net's penalty is PointNet's
  ``l2 * mean_b ||A_b A_b^T - I||_F^2`` on the predicted matrices. ``faithful_tnet=True``: the report's T-Nets
  exactly (last ``dense_block`` with BatchNorm + ReLU on the matrix entries, no identity initialisation, the
  ``OrthogonalRegularizer`` on the Dense *kernel*, :func:`~jetcloud.models.layers.keras_kernel_orthogonal_penalty`).
- **BatchNorm** defaults to Keras' settings (PyTorch momentum 0.01 = Keras 0.99, eps 1e-3); statistics are over
  the valid points of the batch (not over padding).

Penalties are exposed through :meth:`PointNetSegmentation.regularization_loss` (the training loop adds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from jetcloud.models.layers import (
    ConcatPointMLP,
    DenseBlock,
    PackedPoints,
    PointMLP,
    as_int_tuple,
    keras_kernel_orthogonal_penalty,
    point_mask,
    point_mlp_stack,
    scaled_width,
    tssr,
)
from jetcloud.models.registry import register_model

__all__ = ["TNet", "PointNetSegmentation", "OUTPUT_MODES", "check_output_mode", "apply_output", "init_point_io"]

#: ``tssr_energy``: TSSR(logit) x energy column (report); ``tssr``: TSSR(logit), a fraction-like output;
#: ``logit``: the raw logit (HEAD-style binary segmentation, use a BCE-with-logits loss).
OUTPUT_MODES: tuple[str, ...] = ("tssr_energy", "tssr", "logit")
_TNET_CONV = (64, 128, 1024)
_TNET_DENSE = (512, 256)
_GLOBAL = (64, 128, 1024)
_HEAD = (512, 256, 128)


def check_output_mode(output: str) -> str:
    """Return ``output`` or raise ``ValueError`` listing :data:`OUTPUT_MODES`."""
    if output not in OUTPUT_MODES:
        raise ValueError(f"unknown output mode {output!r}; expected one of {', '.join(OUTPUT_MODES)}")
    return output


def init_point_io(
    module: nn.Module,
    in_features: int,
    energy_index: int | None,
    type_index: int | None,
    padding_type: float,
    output: str,
    tssr_a: float,
    tssr_b: float,
    size_factor: float,
    global_widths: Sequence[int] | None,
    head_widths: Sequence[int] | None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Checks and attributes shared by the per-point regressors (PointNet, attention): ``in_features``, the
    energy / type columns, ``padding_type``, the output mode and TSSR constants. Returns the global and head
    widths (given, or the report's scaled by ``size_factor``)."""
    in_features = int(in_features)
    if in_features < 1:
        raise ValueError(f"in_features must be >= 1, got {in_features}")
    module.in_features = in_features
    module.energy_index = check_feature_index(energy_index, in_features, "energy_index")
    module.type_index = check_feature_index(type_index, in_features, "type_index")
    module.padding_type = float(padding_type)
    module.output = check_output_mode(output)
    if module.output == "tssr_energy" and module.energy_index is None:
        raise ValueError("output='tssr_energy' needs energy_index")
    module.tssr_a, module.tssr_b = float(tssr_a), float(tssr_b)
    scaled = [tuple(scaled_width(w, size_factor) for w in base) for base in (_GLOBAL, _HEAD)]
    return (
        as_int_tuple(global_widths, "global_widths") or scaled[0],
        as_int_tuple(head_widths, "head_widths") or scaled[1],
    )


def init_point_head(
    module: nn.Module, point_width: int, global_width: int, head_widths: Sequence[int], dropout: float, bn: dict
) -> None:
    """Set ``module.head_in``, ``head`` and ``logit``: the per-point head over [point features, global features].

    Dropout follows the last head layer (the first one when the head has a single width), as in the report.
    """
    head_dropout = dropout if len(head_widths) == 1 else 0.0
    module.head_in = ConcatPointMLP(point_width, global_width, head_widths[0], dropout=head_dropout, **bn)
    layers = []
    for i, (w_in, w_out) in enumerate(zip(head_widths[:-1], head_widths[1:], strict=True)):
        last = i == len(head_widths) - 2
        layers.append(PointMLP(w_in, w_out, dropout=dropout if last else 0.0, **bn))
    module.head = nn.Sequential(*layers)
    module.logit = nn.Linear(head_widths[-1], 1)


def apply_output(logit: Tensor, energy: Tensor, output: str, a: float, b: float) -> Tensor:
    """The output layer of :data:`OUTPUT_MODES` on packed logits ``[N]`` and energies ``[N]``."""
    if output == "logit":
        return logit
    y = tssr(logit, a, b)
    return y * energy if output == "tssr_energy" else y


def check_feature_index(index: int | None, in_features: int, name: str) -> int | None:
    """A column index in ``[0, in_features)`` (negative indices allowed) or None."""
    if index is None:
        return None
    index = int(index)
    if not -in_features <= index < in_features:
        raise ValueError(f"{name} = {index} is outside the {in_features} input features")
    return index % in_features


class TNet(nn.Module):
    """A PointNet T-Net predicting one ``k x k`` matrix per sample from packed points.

    ``conv_mlp`` widths (64, 128, 1024) -> max pool over the sample's points -> ``dense_block`` (512, 256) ->
    ``k*k`` (faithful: a ``dense_block``, i.e. with BatchNorm and ReLU; fixed: an identity-initialised Linear).
    ``forward`` returns ``(matrices [B, k, k], penalty or None)``.
    """

    def __init__(
        self,
        in_features: int,
        k: int,
        *,
        conv_widths: Sequence[int] = _TNET_CONV,
        dense_widths: Sequence[int] = _TNET_DENSE,
        faithful: bool = False,
        regularize: bool = False,
        l2: float = 0.001,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.k = int(k)
        self.faithful = bool(faithful)
        self.regularize = bool(regularize)
        self.l2 = float(l2)
        bn = {"bn_momentum": bn_momentum, "bn_eps": bn_eps}
        widths = [in_features, *conv_widths]
        self.convs = point_mlp_stack(widths, bn)
        widths = [widths[-1], *dense_widths]
        self.dense = nn.Sequential(*(DenseBlock(i, o, **bn) for i, o in zip(widths[:-1], widths[1:], strict=True)))
        if self.faithful:
            self.out = DenseBlock(widths[-1], self.k * self.k, **bn)
        else:
            self.out = nn.Linear(widths[-1], self.k * self.k)
            with torch.no_grad():
                self.out.weight.zero_()
                self.out.bias.copy_(torch.eye(self.k).flatten())

    def forward(self, x: Tensor, packed: PackedPoints) -> tuple[Tensor, Tensor | None]:
        """``x [N, C]`` -> ``([B, k, k], penalty)``."""
        pooled = packed.segment_max(self.convs(x))
        matrices = self.out(self.dense(pooled)).view(-1, self.k, self.k)
        penalty = None
        if self.regularize and self.l2 > 0:
            if self.faithful:
                penalty = keras_kernel_orthogonal_penalty(self.out.linear.weight, self.k, self.l2)
            else:
                eye = torch.eye(self.k, device=matrices.device, dtype=matrices.dtype)
                diff = matrices @ matrices.transpose(1, 2) - eye
                penalty = self.l2 * (diff * diff).sum(dim=(1, 2)).mean()
        return matrices, penalty


def _check_sizes(size_factor: float, tnet_size_factor: float, dropout: float) -> None:
    """ValueError unless both width factors are positive and 0 <= dropout < 1."""
    if not (size_factor > 0 and tnet_size_factor > 0):
        raise ValueError(f"size factors must be > 0, got {size_factor}, {tnet_size_factor}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


@register_model("pointnet")
class PointNetSegmentation(nn.Module):
    """Per-point regression PointNet of JetPointNet (see the module docstring).

    Args:
        in_features: F, columns of ``feats [B, L, F]``.
        energy_index: column multiplied into the output (``output="tssr_energy"``).
        type_index: column whose value ``padding_type`` marks padding; None = every point is real.
        padding_type: padding code in the type column (-1).
        size_factor: width factor of the global branch (64, 128, 1024) and the head (512, 256, 128); 10 = report.
        tnet_size_factor: width factor of the T-Nets' hidden layers (64, 128, 1024 / 512, 256); 1 = report.
        point_widths: the point MLP before the feature T-Net (64, 64); its last width is the feature T-Net's k.
        global_widths, head_widths: explicit widths, overriding ``size_factor``.
        input_tnet, feature_tnet: use the T-Nets.
        faithful_tnet: the report's T-Nets and kernel regulariser (True) or the W14 fix (False).
        orthogonal_l2: weight of the feature T-Net's orthogonality penalty (0.001).
        dropout: dropout after the last head layer (0.3).
        tssr_a, tssr_b: TSSR parameters (report: 0.05, 0.1).
        output: one of :data:`OUTPUT_MODES`.
        mask_padding: drop padding points before the network (True) or feed them through as the original.
        bn_momentum, bn_eps: BatchNorm settings (PyTorch convention; defaults = Keras' 0.99 / 1e-3).

    ``forward(feats)`` returns ``[B, L]`` (0 on padding). :meth:`regularization_loss` returns the T-Net penalty
    of the last training-mode forward (None in eval mode or without a regularised T-Net).
    """

    def __init__(
        self,
        in_features: int = 6,
        *,
        energy_index: int = 4,
        type_index: int | None = 5,
        padding_type: float = -1.0,
        size_factor: float = 1.0,
        tnet_size_factor: float = 1.0,
        point_widths: Sequence[int] = (64, 64),
        global_widths: Sequence[int] | None = None,
        head_widths: Sequence[int] | None = None,
        input_tnet: bool = True,
        feature_tnet: bool = True,
        faithful_tnet: bool = False,
        orthogonal_l2: float = 0.001,
        dropout: float = 0.3,
        tssr_a: float = 0.05,
        tssr_b: float = 0.1,
        output: str = "tssr_energy",
        mask_padding: bool = True,
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        _check_sizes(size_factor, tnet_size_factor, dropout)
        global_widths, head_widths = init_point_io(
            self,
            in_features,
            energy_index,
            type_index,
            padding_type,
            output,
            tssr_a,
            tssr_b,
            size_factor,
            global_widths,
            head_widths,
        )
        in_features = self.in_features
        self.mask_padding = bool(mask_padding) and self.type_index is not None
        point_widths = as_int_tuple(point_widths, "point_widths")
        tnet_conv = tuple(scaled_width(w, tnet_size_factor) for w in _TNET_CONV)
        tnet_dense = tuple(scaled_width(w, tnet_size_factor) for w in _TNET_DENSE)
        bn = {"bn_momentum": float(bn_momentum), "bn_eps": float(bn_eps)}
        tnet = {"conv_widths": tnet_conv, "dense_widths": tnet_dense, "faithful": bool(faithful_tnet), **bn}

        self.input_tnet = TNet(in_features, in_features, **tnet) if input_tnet else None
        widths = [in_features, *point_widths]
        self.point_mlp = point_mlp_stack(widths, bn)
        k = point_widths[-1]
        self.feature_tnet = TNet(k, k, regularize=True, l2=float(orthogonal_l2), **tnet) if feature_tnet else None
        widths = [k, *global_widths]
        self.global_mlp = point_mlp_stack(widths, bn)
        init_point_head(self, k, global_widths[-1], head_widths, float(dropout), bn)
        self._regularization: Tensor | None = None
        self.hparams: dict[str, Any] = {
            "in_features": in_features,
            "energy_index": energy_index,
            "type_index": type_index,
            "padding_type": self.padding_type,
            "size_factor": float(size_factor),
            "tnet_size_factor": float(tnet_size_factor),
            "point_widths": list(point_widths),
            "global_widths": list(global_widths),
            "head_widths": list(head_widths),
            "input_tnet": bool(input_tnet),
            "feature_tnet": bool(feature_tnet),
            "faithful_tnet": bool(faithful_tnet),
            "orthogonal_l2": float(orthogonal_l2),
            "dropout": float(dropout),
            "tssr_a": self.tssr_a,
            "tssr_b": self.tssr_b,
            "output": self.output,
            "mask_padding": self.mask_padding,
            "bn_momentum": float(bn_momentum),
            "bn_eps": float(bn_eps),
        }

    def point_mask(self, feats: Tensor) -> Tensor:
        """``[B, L]`` bool, True on the points the network sees (all points when ``mask_padding`` is False)."""
        if not self.mask_padding:
            return torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        return point_mask(feats, self.type_index, self.padding_type)

    def _check_input(self, feats: Tensor) -> None:
        if feats.ndim != 3 or feats.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expects feats [batch, points, {self.in_features}], got {tuple(feats.shape)}"
            )

    def _run(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        self._check_input(feats)
        packed = PackedPoints.from_mask(self.point_mask(feats))
        x = packed.pack(feats)
        energy = x[:, self.energy_index] if self.energy_index is not None else None
        penalties = []
        if self.input_tnet is not None:
            matrices, penalty = self.input_tnet(x, packed)
            x = packed.transform(x, matrices)
            penalties.append(penalty)
        point_features = self.point_mlp(x)
        h = point_features
        if self.feature_tnet is not None:
            matrices, penalty = self.feature_tnet(h, packed)
            h = packed.transform(h, matrices)
            penalties.append(penalty)
        global_feature = packed.segment_max(self.global_mlp(h))
        c = self.head(self.head_in(point_features, global_feature, packed))
        logit = self.logit(c).squeeze(-1)
        y = apply_output(logit, energy, self.output, self.tssr_a, self.tssr_b)
        penalties = [p for p in penalties if p is not None]
        self._regularization = sum(penalties[1:], penalties[0]) if (penalties and self.training) else None
        return packed.unpack(y), global_feature

    def forward(self, feats: Tensor) -> Tensor:
        """``feats [B, L, F]`` -> per-point output ``[B, L]`` (0 on padding)."""
        return self._run(feats)[0]

    def global_feature(self, feats: Tensor) -> Tensor:
        """The max-pooled global feature ``[B, global_widths[-1]]`` (for tests and inspection)."""
        return self._run(feats)[1]

    def regularization_loss(self) -> Tensor | None:
        """T-Net orthogonality penalty of the last training-mode forward, or None."""
        return self._regularization
