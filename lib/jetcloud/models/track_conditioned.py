"""Track-conditioned point networks: the energy a charged particle leaves, given its track (two outputs).

A charged particle's calorimeter energy is, to first order, a known function of its momentum p: particle flow
(ATLAS, arXiv:1703.10485) subtracts ``<E/p>(p, eta) x p``, and the CMS machine-learned particle flow (MLPF,
arXiv:2101.08578) feeds track momenta to the network beside the calorimeter hits. The networks here are
PointNets (arXiv:1612.00593) *conditioned on the track*: they receive per-track inputs (such as log p, |eta| and
the template's expectation) beside the per-point features, pool with a sum as well as a max (a sum can count
energy, a max cannot), and have two outputs:

- per point, a **logit** of the fraction of the point's energy that belongs to the focused particle (EM scale:
  ``sigmoid(logit) x E_point``, trained with an energy-weighted soft-label cross-entropy);
- per sample, the **log of the focused particle's truth-scale energy** as a correction on the template,
  ``log E = log(k(p, eta) p) + g``; the last layer of ``g`` starts at exactly zero, so an untrained network
  reproduces the template.

``forward(x [B, L, F]) -> [B, L + 1]``: ``[:, :L]`` the per-point logits (0 on padding), ``[:, L]`` log E. The
model knows nothing about detectors: the caller names the columns (``bypass_index``: the point energy in GeV,
used only for the sum pooling weight and never as a raw input; ``padding_index``: 1 on padding;
``log_expected_index``: the per-sample log of the template energy, the same on every point; ``track_indices``:
the per-sample inputs, the same on every point; ``knn_indices``: coordinates of the neighbourhoods).

``knn = 0`` (``track_conditioned``): point MLP -> pooling. ``knn > 0`` (``track_conditioned_knn``): each point
first attends to its ``knn`` nearest neighbours in the ``knn_indices`` coordinates (e.g. delta-eta, delta-phi,
depth): local multi-head attention with a learned encoding of the relative position, as in the Point Transformer
(arXiv:2012.09164), twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from jetcloud.models.registry import register_model

__all__ = ["TrackConditionedNet", "sum_pool_scale"]

#: The sum pooling is divided by this many points, so that its values stay O(1) for clouds of ~100 points.
sum_pool_scale = 100.0


def _mlp(widths: Sequence[int], final_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(widths) - 2:
            layers += [nn.LayerNorm(b), nn.GELU()]
    return nn.Sequential(*layers)


class _LocalAttention(nn.Module):
    """Multi-head attention of every point over its ``k`` nearest valid neighbours (itself included)."""

    def __init__(self, width: int, n_coords: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.pos = nn.Sequential(nn.Linear(n_coords, width), nn.GELU(), nn.Linear(width, width))
        self.out = nn.Linear(width, width)
        self.ff = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, h: Tensor, coords: Tensor, neighbours: Tensor) -> Tensor:
        b, n, w = h.shape
        k = neighbours.shape[-1]
        q, key, val = self.qkv(self.norm(h)).chunk(3, dim=-1)
        idx = neighbours.reshape(b, n * k, 1)
        gather = lambda t: torch.gather(t, 1, idx.expand(-1, -1, t.shape[-1])).reshape(b, n, k, t.shape[-1])  # noqa: E731
        rel = self.pos(gather(coords) - coords[:, :, None, :])
        key, val = gather(key) + rel, gather(val) + rel
        d = w // self.heads
        att = (q.reshape(b, n, 1, self.heads, d) * key.reshape(b, n, k, self.heads, d)).sum(-1) / d**0.5
        att = att.softmax(dim=2)  # [b, n, k, heads]
        mixed = (att[..., None] * val.reshape(b, n, k, self.heads, d)).sum(2).reshape(b, n, w)
        h = h + self.out(mixed)
        return h + self.ff(h)


def knn_indices(coords: Tensor, valid: Tensor, k: int) -> Tensor:
    """``[B, N, k]`` indices of the ``k`` nearest valid points of every point (Euclidean in ``coords``)."""
    dist = torch.cdist(coords, coords)
    dist = dist.masked_fill(~valid[:, None, :], float("inf"))
    k = min(k, coords.shape[1])
    return dist.topk(k, dim=-1, largest=False).indices


@register_model("track_conditioned")
class TrackConditionedNet(nn.Module):
    """Track-conditioned PointNet with a per-point fraction and a per-sample energy output (module docstring).

    Args:
        in_features: columns of ``x``.
        bypass_index, padding_index, log_expected_index, track_indices, knn_indices: columns (module docstring).
        width: width of the point features (the global features are ``3 x 2 width``).
        knn: neighbours of the local attention (0: none).
        heads: attention heads.
        dropout: dropout in the two heads.
    """

    def __init__(
        self,
        in_features: int,
        bypass_index: int,
        padding_index: int,
        log_expected_index: int,
        track_indices: Sequence[int],
        knn_indices: Sequence[int] = (),
        width: int = 64,
        knn: int = 0,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {
            "in_features": int(in_features),
            "bypass_index": int(bypass_index),
            "padding_index": int(padding_index),
            "log_expected_index": int(log_expected_index),
            "track_indices": [int(i) for i in track_indices],
            "knn_indices": [int(i) for i in knn_indices],
            "width": int(width),
            "knn": int(knn),
            "heads": int(heads),
            "dropout": float(dropout),
        }
        if knn and not knn_indices:
            raise ValueError("knn > 0 needs the knn_indices coordinate columns")
        inputs = [i for i in range(in_features) if i != bypass_index]
        self.register_buffer("inputs", torch.tensor(inputs, dtype=torch.long), persistent=False)
        self.point = _mlp([len(inputs), width, 2 * width])
        self.local = nn.ModuleList(_LocalAttention(2 * width, len(knn_indices), heads) for _ in range(2 if knn else 0))
        n_track = len(track_indices)
        self.track = _mlp([n_track, width])
        self.global_mlp = _mlp([3 * 2 * width + width, 4 * width, 2 * width])
        self.energy_head = nn.Sequential(nn.Dropout(dropout), _mlp([2 * width, width, 1], final_activation=False))
        self.cell_head = nn.Sequential(_mlp([4 * width, 2 * width, width]), nn.Dropout(dropout), nn.Linear(width, 1))
        last = self.energy_head[1][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, L + 1]``: per-point logits (0 on padding), then the per-sample log energy."""
        hp = self.hparams
        valid = x[..., hp["padding_index"]] < 0.5
        h = self.point(x.index_select(-1, self.inputs))
        if self.local:
            coords = x[..., hp["knn_indices"]]
            neighbours = knn_indices(coords, valid, hp["knn"])
            for block in self.local:
                h = block(h, coords, neighbours)
        h = h * valid[..., None]
        energy = x[..., hp["bypass_index"]].clamp(min=0) * valid
        weight = energy / energy.sum(dim=1, keepdim=True).clamp(min=1e-6)
        pooled = torch.cat(
            [
                h.masked_fill(~valid[..., None], float("-inf")).amax(dim=1).clamp(min=-1e4),
                h.sum(dim=1) / sum_pool_scale,
                (weight[..., None] * h).sum(dim=1),
            ],
            dim=-1,
        )
        track = self.track(x[:, 0, hp["track_indices"]])
        g = self.global_mlp(torch.cat([pooled, track], dim=-1))
        log_e = x[:, 0, hp["log_expected_index"]] + self.energy_head(g)[:, 0]
        tiled = g[:, None, :].expand(-1, x.shape[1], -1)
        logits = self.cell_head(torch.cat([h, tiled], dim=-1))[..., 0] * valid
        return torch.cat([logits, log_e[:, None]], dim=1)


@register_model("track_conditioned_knn")
def track_conditioned_knn(knn: int = 16, **kwargs: Any) -> TrackConditionedNet:
    """:class:`TrackConditionedNet` with local attention over ``knn`` neighbours (default 16)."""
    if knn < 1:
        raise ValueError(f"track_conditioned_knn needs knn >= 1, got {knn}")
    return TrackConditionedNet(knn=knn, **kwargs)
