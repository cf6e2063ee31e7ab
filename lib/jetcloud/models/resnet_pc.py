"""ResNet_PC family of e2e_sparse (``Supervised/CNN/model.py``): 1-D bottleneck ResNets over the top-K hits.

``Block(c_in, c_out)``: Conv1d(c_in, c_in, 1) -> BN -> ReLU -> Conv1d(c_in, c_in, 3, padding 1) -> BN -> ReLU ->
Conv1d(c_in, c_out, 1) (no BN), plus a **projection shortcut** Conv1d(c_in, c_out, 1) (always, even when
c_in == c_out; the report's "identity shortcuts" is wrong), ReLU, MaxPool1d(2, 2). Parameters per block:
``4 c_in^2 + 6 c_in + 2 c_in c_out + 2 c_out``.

``PointCloudResNet``: (B, K, 5) -> (B, 5, K) -> base Conv1d(5, C0, k, stride s, padding p) (no BN or activation)
-> blocks -> AdaptiveMaxPool1d(1) -> Linear(C_last, num_classes).

The original ends with **one logit** (LazyLinear(C_last -> 1), BCE-with-logits in ``trainer.py``), and the
reference parameter counts include that head, so ``num_classes=1`` is the default here (score = sigmoid);
``num_classes=2`` gives the report's CrossEntropy variant (C_last more parameters). The original's ``squeeze()``
breaks for a batch of one; this version flattens instead. Lazy modules are replaced by sized ones (same counts).

=========== ===================== ======================================= ==========
name        base (C0, k, s, p)    block channels                          parameters
=========== ===================== ======================================= ==========
256_s       16, 3, 1, 2           16-32-64-128-512-1024                    2,346,081
256_m       16, 3, 1, 2           16-32-64-128-512-1024-2048              10,745,953
512_s       16, 3, 1, 2           16-32-64-128-256-512-1024                2,806,881
512_m       16, 3, 1, 2           16-32-64-128-256-512-1024-2048          11,206,753
768_s       16, 5, 2, 2           16-32-64-128-256-512-1024                2,807,041
768_m       16, 5, 1, 2           16-32-64-128-256-512-1024-2048          11,206,913
1024_s      32, 6, 2, 2           32-64-64-64-128-512-1024                 2,394,785
1024_m      8, 1, 1, 0            8-16-32-64-128-128-256-1024              1,067,489 (the report's best)
1024_l      8, 1, 1, 0            8-32-128-256-512-1024-2048-2048         36,358,241 (code only)
=========== ===================== ======================================= ==========
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from jetcloud.models.qg_common import ClassifierBase, check_input
from jetcloud.models.registry import register_model

__all__ = ["Block", "PointCloudResNet", "VARIANTS", "REPORT_PARAMETERS", "resnet_pc"]

#: name -> ((C0, kernel, stride, padding), block channels, K)
VARIANTS: dict[str, tuple[tuple[int, int, int, int], tuple[int, ...], int]] = {
    "256_s": ((16, 3, 1, 2), (16, 32, 64, 128, 512, 1024), 256),
    "256_m": ((16, 3, 1, 2), (16, 32, 64, 128, 512, 1024, 2048), 256),
    "512_s": ((16, 3, 1, 2), (16, 32, 64, 128, 256, 512, 1024), 512),
    "512_m": ((16, 3, 1, 2), (16, 32, 64, 128, 256, 512, 1024, 2048), 512),
    "768_s": ((16, 5, 2, 2), (16, 32, 64, 128, 256, 512, 1024), 768),
    "768_m": ((16, 5, 1, 2), (16, 32, 64, 128, 256, 512, 1024, 2048), 768),
    "1024_s": ((32, 6, 2, 2), (32, 64, 64, 64, 128, 512, 1024), 1024),
    "1024_m": ((8, 1, 1, 0), (8, 16, 32, 64, 128, 128, 256, 1024), 1024),
    "1024_l": ((8, 1, 1, 0), (8, 32, 128, 256, 512, 1024, 2048, 2048), 1024),
}

#: e2e_sparse ResNet_PC (docs/references.md; one-logit head).
REPORT_PARAMETERS = {
    "resnet_pc_256_s": 2_346_081,
    "resnet_pc_256_m": 10_745_953,
    "resnet_pc_512_s": 2_806_881,
    "resnet_pc_512_m": 11_206_753,
    "resnet_pc_768_s": 2_807_041,
    "resnet_pc_768_m": 11_206_913,
    "resnet_pc_1024_s": 2_394_785,
    "resnet_pc_1024_m": 1_067_489,
    "resnet_pc_1024_l": 36_358_241,
}


class Block(nn.Module):
    """Bottleneck block with a projection shortcut and a final MaxPool1d(2, 2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_in, 1),
            nn.BatchNorm1d(c_in),
            nn.ReLU(),
            nn.Conv1d(c_in, c_in, 3, padding=1),
            nn.BatchNorm1d(c_in),
            nn.ReLU(),
            nn.Conv1d(c_in, c_out, 1),
        )
        self.shortcut = nn.Conv1d(c_in, c_out, 1)
        self.pool = nn.MaxPool1d(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(nn.functional.relu(self.body(x) + self.shortcut(x)))


class PointCloudResNet(ClassifierBase):
    """Base conv + bottleneck blocks + global max pool + linear head."""

    def __init__(
        self,
        base: Sequence[int] = (8, 1, 1, 0),
        channels: Sequence[int] = (8, 16, 32, 64, 128, 128, 256, 1024),
        in_features: int = 5,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        c0, k, s, p = (int(v) for v in base)
        if c0 != channels[0]:
            raise ValueError(f"the base conv's channels ({c0}) must equal the first block width ({channels[0]})")
        self._store(base=tuple(base), channels=tuple(channels), in_features=in_features, num_classes=num_classes)
        self.in_features = in_features
        self.n_pools = len(channels) - 1
        self.base = nn.Conv1d(in_features, c0, k, stride=s, padding=p)
        self.blocks = nn.Sequential(*(Block(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True)))
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_features, "resnet_pc")
        h = self.base(x.transpose(1, 2))
        if h.shape[-1] < 2**self.n_pools:
            raise ValueError(
                f"resnet_pc: {x.shape[1]} points give length {h.shape[-1]} after the base conv, too short for "
                f"{self.n_pools} halvings (need >= {2**self.n_pools}); use more points (k_points)"
            )
        h = self.blocks(h)
        return self.head(h.amax(dim=-1))


def resnet_pc(variant: str, in_features: int = 5, num_classes: int = 1) -> PointCloudResNet:
    """``PointCloudResNet`` of one of :data:`VARIANTS` (e.g. ``"1024_m"``)."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown ResNet_PC variant {variant!r}; known: {', '.join(VARIANTS)}")
    base, channels, _ = VARIANTS[variant]
    return PointCloudResNet(base, channels, in_features, num_classes)


def _register(variant: str) -> None:
    def factory(in_features: int = 5, num_classes: int = 1) -> PointCloudResNet:
        return resnet_pc(variant, in_features, num_classes)

    factory.__name__ = factory.__qualname__ = f"resnet_pc_{variant}"
    factory.__doc__ = f"ResNet_PC_{variant.upper()} of e2e_sparse ({REPORT_PARAMETERS['resnet_pc_' + variant]:,} "
    factory.__doc__ += "parameters with the one-logit head)."
    register_model(f"resnet_pc_{variant}")(factory)


for _variant in VARIANTS:
    _register(_variant)
