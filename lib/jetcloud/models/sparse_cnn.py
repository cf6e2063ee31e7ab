"""The report's sparse CNNs on the ordered top-K hits: ``sparse_cnn_200`` and ``sparse_cnn_800``.

The K hits are treated as a 1-D sequence (the ascending energy order of notebook 07, padding first) and
convolved with **depthwise-separable** units: ``DS(c_in -> c_out)`` = depthwise Conv1d(c_in, c_in, 3, padding 1,
groups c_in) -> pointwise Conv1d(c_in, c_out, 1) -> BN -> ReLU.

``sparse_cnn_200`` (79,590 parameters, the report's number)::

    (B, 200, 5) -> (B, 5, 200) -> DS 5->16 -> MaxPool/2 -> DS 16->16 -> AdaptiveAvgPool1d(128)
    -> [DS 16->32, 32->64, 64->128, 128->256, each -> MaxPool/2 -> Dropout 0.1, 0.1, 0.2, 0.2]
    -> global max pool -> Linear 256->128 -> ReLU -> Dropout 0.3 -> Linear 128->2

``sparse_cnn_800`` (610,278 parameters, the report's number)::

    (B, 800, 5) -> DS 5->16 -> DS 16->16 -> AdaptiveAvgPool1d(512) -> Dropout 0.05
    -> [DS 16->32->64->128->256->512->512, each -> MaxPool/2 -> Dropout 0.1, 0.1, 0.15, 0.2, 0.2, 0.25]
    -> global max pool -> Linear 512->256 -> ReLU -> Dropout 0.3 -> 256->128 -> ReLU -> Dropout 0.3 -> 128->2

Any K >= 2 runs (the adaptive pooling fixes the length); the name gives the K of the report. No mask: the
padding rows are part of the sequence, as in the report.
"""

from __future__ import annotations

from torch import Tensor, nn

from jetcloud.models.qg_common import ClassifierBase, check_input
from jetcloud.models.registry import register_model

__all__ = ["DSUnit", "SparseCNN", "sparse_cnn_200", "sparse_cnn_800", "REPORT_PARAMETERS"]

REPORT_PARAMETERS = {"sparse_cnn_200": 79_590, "sparse_cnn_800": 610_278}


class DSUnit(nn.Sequential):
    """Depthwise Conv1d(k 3) -> pointwise Conv1d(1) -> BatchNorm1d -> ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_in, 3, padding=1, groups=c_in),
            nn.Conv1d(c_in, c_out, 1),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
        )


class SparseCNN(ClassifierBase):
    """``variant`` 200 or 800 of the report's sparse CNN (see the module docstring)."""

    def __init__(self, variant: int = 200, in_features: int = 5, num_classes: int = 2) -> None:
        super().__init__()
        if variant not in (200, 800):
            raise ValueError(f"SparseCNN variant must be 200 or 800, got {variant!r}")
        self._store(variant=variant, in_features=in_features, num_classes=num_classes)
        self.in_features = in_features
        if variant == 200:
            stem = [DSUnit(in_features, 16), nn.MaxPool1d(2), DSUnit(16, 16), nn.AdaptiveAvgPool1d(128)]
            channels, drops = (16, 32, 64, 128, 256), (0.1, 0.1, 0.2, 0.2)
            head_widths = (256, 128)
        else:
            stem = [DSUnit(in_features, 16), DSUnit(16, 16), nn.AdaptiveAvgPool1d(512), nn.Dropout(0.05)]
            channels, drops = (16, 32, 64, 128, 256, 512, 512), (0.1, 0.1, 0.15, 0.2, 0.2, 0.25)
            head_widths = (512, 256, 128)
        blocks: list[nn.Module] = list(stem)
        for c_in, c_out, p in zip(channels[:-1], channels[1:], drops, strict=True):
            blocks += [DSUnit(c_in, c_out), nn.MaxPool1d(2), nn.Dropout(p)]
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = []
        for c_in, c_out in zip(head_widths[:-1], head_widths[1:], strict=True):
            head += [nn.Linear(c_in, c_out), nn.ReLU(), nn.Dropout(0.3)]
        self.head = nn.Sequential(*head, nn.Linear(head_widths[-1], num_classes))

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.in_features, "sparse_cnn")
        if x.shape[1] < 2:
            raise ValueError(f"sparse_cnn needs at least 2 points, got {x.shape[1]}")
        h = self.features(x.transpose(1, 2))
        return self.head(h.amax(dim=-1))


@register_model("sparse_cnn_200")
def sparse_cnn_200(in_features: int = 5, num_classes: int = 2) -> SparseCNN:
    """The report's sparse CNN for the top 200 hits (79,590 parameters)."""
    return SparseCNN(200, in_features, num_classes)


@register_model("sparse_cnn_800")
def sparse_cnn_800(in_features: int = 5, num_classes: int = 2) -> SparseCNN:
    """The report's sparse CNN for the top 800 hits (610,278 parameters)."""
    return SparseCNN(800, in_features, num_classes)
