"""The report's MLP classifier (``mlp``): a per-point MLP, a global pooling and a small head.

======== =====================================================================================================
part     layers
======== =====================================================================================================
per point Linear 5->64 -> BN -> ReLU -> 64->128 -> BN -> ReLU -> 128->256 -> BN -> ReLU -> 256->128 -> BN -> ReLU
          -> 128->64 -> BN -> ReLU (shared over the points; BN over all points of the batch)
pooling   global **mean** over the points (``pooling="max"`` or ``"sum"`` as options)
head      Linear 64->32 -> BN -> ReLU -> Linear 32->2 (logits; class 1 = quark)
======== =====================================================================================================

**Parameters: 86,370** (85,026 in the Linear layers, 1,344 trainable BN parameters). The report states "~173K",
which is 2 x 86,370 = 172,740 to rounding: most likely a double count (e.g. the BN running statistics or the
parameters counted twice by iterating over both ``modules()`` and ``parameters()``); the architecture as described
has 86,370 and the tests check that number.

**Padding.** The report pools over all K points, the zero padding included (``mask=False``, the default, as
described). With ``mask=True`` the pooling runs over the real points only (non-zero rows or an explicit
``mask``), so the output does not depend on what the padding rows hold (eval mode: training-mode BN statistics
still see them). Unmasked mean pooling implicitly encodes the hit multiplicity, a strong quark/gluon variable.
With ``pooling="sum"`` and ``mask=True`` the model is a Deep-Sets / PFN-like network.

**Deep Sets on physics points** (``deepsets``): per point 8 -> 64 -> 128 -> 128, masked **sum** pooling (the sum
keeps the multiplicity that a mean hides), the per-jet globals (``n_globals``, :mod:`jetcloud.models.qg_common`)
concatenated, head 128 -> 64 -> 2. Cheap on a CPU: its cost is linear in the points.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from jetcloud.models.qg_common import ClassifierBase, check_input, masked_pool, point_mask, split_globals
from jetcloud.models.registry import register_model

__all__ = ["QGMLP", "REPORT_PARAMETERS", "REPORT_STATED_PARAMETERS"]

REPORT_PARAMETERS = 86_370  # computed from the description
REPORT_STATED_PARAMETERS = "~173K"  # as printed in the report (a double count)


def _linear_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), nn.ReLU()]


@register_model("mlp")
class QGMLP(ClassifierBase):
    """Per-point MLP + pooling + head (see the module docstring)."""

    def __init__(
        self,
        in_features: int = 5,
        widths: Sequence[int] = (64, 128, 256, 128, 64),
        head: Sequence[int] = (32,),
        num_classes: int = 2,
        pooling: str = "mean",
        mask: bool = False,
        n_globals: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "max", "sum"):
            raise ValueError(f"pooling must be mean, max or sum, got {pooling!r}")
        self._store(
            in_features=in_features,
            widths=tuple(widths),
            head=tuple(head),
            num_classes=num_classes,
            pooling=pooling,
            mask=mask,
            **({"n_globals": n_globals} if n_globals else {}),
        )
        self._init_globals(n_globals)
        self.in_features, self.pooling, self.use_mask = in_features, pooling, mask
        layers: list[nn.Module] = []
        c = in_features
        for w in widths:
            layers += _linear_bn_relu(c, w)
            c = w
        self.point_mlp = nn.Sequential(*layers)
        layers = []
        c += n_globals
        for w in head:
            layers += _linear_bn_relu(c, w)
            c = w
        self.head = nn.Sequential(*layers, nn.Linear(c, num_classes))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        check_input(x, self.in_features, "mlp")
        x, glob = split_globals(x, self.n_globals, "mlp")
        b, k, f = x.shape
        h = self.point_mlp(x.reshape(b * k, f)).reshape(b, k, -1)
        if self.use_mask:
            pooled = masked_pool(h, point_mask(x) if mask is None else mask.bool(), self.pooling)
        else:
            pooled = masked_pool(h, None, self.pooling)
        return self.head(self._with_globals(pooled, glob))


@register_model("pfn")
def pfn(in_features: int = 5, num_classes: int = 2) -> QGMLP:
    """A particle-flow network (EnergyFlow's example sizes: Phi 100-100-128, F 100-100-100), masked sum pooling.

    Built from :class:`QGMLP` (BN after each layer, unlike EnergyFlow's Keras PFN); a point model for the
    particle-level comparison.
    """
    return QGMLP(
        in_features, widths=(100, 100, 128), head=(100, 100, 100), num_classes=num_classes, pooling="sum", mask=True
    )


@register_model("deepsets")
def deepsets(in_features: int = 8, num_classes: int = 2, n_globals: int = 0) -> QGMLP:
    """Deep Sets for the physics points: Phi 64-128-128, masked sum pooling, globals, head 128-64 (module doc)."""
    return QGMLP(
        in_features,
        widths=(64, 128, 128),
        head=(128, 64),
        num_classes=num_classes,
        pooling="sum",
        mask=True,
        n_globals=n_globals,
    )
