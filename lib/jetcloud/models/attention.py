"""JetPointNet with attention between points: the report's recommendation (PDF "Recommendations", 9).

The point-wise stage of :class:`~jetcloud.models.pointnet.PointNetSegmentation` (and its T-Nets) is replaced by
an embedding MLP followed by ``num_layers`` transformer encoder layers over the points of each sample (with a
key-padding mask, so padding is neither attended to nor attending). Each point keeps its own output, so the
mapping input point -> output energy stays one-to-one; the global branch, the segmentation head and the
``TSSR(logit) x energy`` output are those of the PointNet::

    feats -> embed MLP (64, 64) -> TransformerEncoder (d_model 64, nhead 4, pre-norm) = point_features
          -> global MLP 64f -> 128f -> 1024f -> masked max -> tiled
          -> concat -> head 512f -> 256f -> 128f (Dropout) -> logit -> TSSR x energy

No positional encoding: a point's coordinates are among its features, and the set has no order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from jetcloud.models.layers import PackedPoints, as_int_tuple, point_mask, point_mlp_stack
from jetcloud.models.pointnet import apply_output, init_point_head, init_point_io
from jetcloud.models.registry import register_model

__all__ = ["PointNetAttentionSegmentation"]


def _check_encoder(size_factor: float, d_model: int, nhead: int, num_layers: int) -> None:
    """ValueError unless the width factor is positive and the encoder's shape is valid."""
    if not size_factor > 0:
        raise ValueError(f"size_factor must be > 0, got {size_factor}")
    if num_layers < 1 or nhead < 1 or d_model % nhead:
        raise ValueError(f"need num_layers >= 1 and d_model ({d_model}) divisible by nhead ({nhead})")


@register_model("pointnet_attention")
class PointNetAttentionSegmentation(nn.Module):
    """PointNet segmentation with transformer encoder layers in the point-wise stage.

    Args:
        in_features, energy_index, type_index, padding_type: as for ``PointNetSegmentation``.
        embed_widths: point MLP before the encoder; the last width is ``d_model``.
        nhead, num_layers, dim_feedforward, attention_dropout: of the ``nn.TransformerEncoderLayer``
            (pre-norm, GELU, ``batch_first``). ``attention_dropout`` (dropout on the attention weights, the
            residuals and the feed-forward layer) is 0 by default: any non-zero value makes PyTorch fall back from
            the fused (flash) attention kernel to the math path, ~5x slower on CPU at L = 859, and the head's
            dropout already regularises.
        size_factor, global_widths, head_widths, dropout, tssr_a, tssr_b, output, bn_momentum, bn_eps: as for
            ``PointNetSegmentation``.

    ``forward(feats [B, L, F])`` -> ``[B, L]`` (0 on padding). Samples are compacted to their longest member
    before attention, so the cost scales with the longest sample of the batch, not with ``L``.
    """

    def __init__(
        self,
        in_features: int = 6,
        *,
        energy_index: int = 4,
        type_index: int | None = 5,
        padding_type: float = -1.0,
        embed_widths: Sequence[int] = (64, 64),
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        attention_dropout: float = 0.0,
        size_factor: float = 1.0,
        global_widths: Sequence[int] | None = None,
        head_widths: Sequence[int] | None = None,
        dropout: float = 0.3,
        tssr_a: float = 0.05,
        tssr_b: float = 0.1,
        output: str = "tssr_energy",
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        embed_widths = as_int_tuple(embed_widths, "embed_widths")
        d_model = embed_widths[-1]
        _check_encoder(size_factor, d_model, nhead, num_layers)
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
        bn = {"bn_momentum": float(bn_momentum), "bn_eps": float(bn_eps)}

        widths = [in_features, *embed_widths]
        self.embed = point_mlp_stack(widths, bn)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=int(dim_feedforward),
            dropout=float(attention_dropout),
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, int(num_layers), norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        widths = [d_model, *global_widths]
        self.global_mlp = point_mlp_stack(widths, bn)
        init_point_head(self, d_model, global_widths[-1], head_widths, float(dropout), bn)
        self.hparams: dict[str, Any] = {
            "in_features": in_features,
            "energy_index": energy_index,
            "type_index": type_index,
            "padding_type": self.padding_type,
            "embed_widths": list(embed_widths),
            "nhead": int(nhead),
            "num_layers": int(num_layers),
            "dim_feedforward": int(dim_feedforward),
            "attention_dropout": float(attention_dropout),
            "size_factor": float(size_factor),
            "global_widths": list(global_widths),
            "head_widths": list(head_widths),
            "dropout": float(dropout),
            "tssr_a": self.tssr_a,
            "tssr_b": self.tssr_b,
            "output": self.output,
            "bn_momentum": float(bn_momentum),
            "bn_eps": float(bn_eps),
        }

    def point_mask(self, feats: Tensor) -> Tensor:
        """``[B, L]`` bool, True on real points."""
        if self.type_index is None:
            return torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        return point_mask(feats, self.type_index, self.padding_type)

    def _run(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        if feats.ndim != 3 or feats.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expects feats [batch, points, {self.in_features}], got {tuple(feats.shape)}"
            )
        packed = PackedPoints.from_mask(self.point_mask(feats))
        x = packed.pack(feats)
        energy = x[:, self.energy_index] if self.energy_index is not None else None
        h = packed.to_compact(self.embed(x))
        key_padding = packed.compact_padding_mask()
        if min(packed.counts, default=1) == 0:  # an all-padding sample: let its (zero) slot 0 attend to itself
            key_padding = key_padding.clone()
            key_padding[:, 0] = False
        point_features = packed.from_compact(self.encoder(h, src_key_padding_mask=key_padding))
        global_feature = packed.segment_max(self.global_mlp(point_features))
        c = self.head(self.head_in(point_features, global_feature, packed))
        logit = self.logit(c).squeeze(-1)
        y = apply_output(logit, energy, self.output, self.tssr_a, self.tssr_b)
        return packed.unpack(y), global_feature

    def forward(self, feats: Tensor) -> Tensor:
        """``feats [B, L, F]`` -> per-point output ``[B, L]`` (0 on padding)."""
        return self._run(feats)[0]

    def global_feature(self, feats: Tensor) -> Tensor:
        """The max-pooled global feature ``[B, global_widths[-1]]``."""
        return self._run(feats)[1]
