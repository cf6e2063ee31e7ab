"""Figures of the quark/gluon point-cloud notebooks (06-08); every function returns a matplotlib figure.

Inputs are the arrays of :mod:`jetcloud.qg_pointcloud` (points ``[N, L, 5]`` = track, ECAL, HCAL, col, row)
and the E2E images ``[N, 125, 125, 3]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

CHANNELS = ("track pT", "ECAL", "HCAL")
#: Per-channel hits per jet the Report reads off its plots for the real CMS data (qg-reference.md 1.4).
REPORT_HIT_PEAKS = {"track pT": (50, 150), "ECAL": (200, 300), "HCAL": (400, 600)}


def channel_energy_histograms(points: np.ndarray, labels: np.ndarray) -> plt.Figure:
    """Per-channel pixel values of the hits (log-log), quark versus gluon."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    bins = np.geomspace(1e-3, 1e3, 61)
    for c, ax in enumerate(axes):
        for value, name in ((1, "quark"), (0, "gluon")):
            v = points[labels == value][..., c]
            ax.hist(v[v > 0], bins=bins, histtype="step", lw=1.5, density=True, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{CHANNELS[c]} per pixel [GeV]")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def hit_multiplicities(channel_hits: np.ndarray, labels: np.ndarray, total_hits: np.ndarray) -> plt.Figure:
    """Non-zero pixels per jet for each channel and in total, quark versus gluon; the Report's peaks shaded."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for c, ax in enumerate(axes):
        values = total_hits if c == 3 else channel_hits[:, c]
        top = max(int(np.quantile(values, 0.999)) + 1, 10)
        bins = np.linspace(0, top, 50)
        for value, cls in ((1, "quark"), (0, "gluon")):
            ax.hist(values[labels == value], bins=bins, histtype="step", lw=1.5, label=cls)
        name = "all channels (any > 0)" if c == 3 else CHANNELS[c]
        if name in REPORT_HIT_PEAKS:
            ax.axvspan(*REPORT_HIT_PEAKS[name], color="gray", alpha=0.2, lw=0, label="Report (CMS data) peak")
        ax.set_xlabel(f"hits per jet: {name}")
    axes[0].set_ylabel("jets")
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def point_cloud_3d(points: np.ndarray, title: str = "") -> plt.Figure:
    """One jet's hits in (col, row, channel energy): marker per channel, size by energy."""
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    for c, (colour, marker) in enumerate((("tab:green", "^"), ("tab:blue", "o"), ("tab:red", "s"))):
        sel = points[:, c] > 0
        ax.scatter(points[sel, 3], points[sel, 4], np.log10(points[sel, c] + 1e-3), c=colour, marker=marker, s=8,
                   alpha=0.6, label=CHANNELS[c])  # fmt: skip
    ax.set_xlabel(r"column ($\phi$ index)")
    ax.set_ylabel(r"row ($\eta$ index)")
    ax.set_zlabel(r"$\log_{10}$ value [GeV]")
    ax.legend(fontsize="x-small")
    ax.set_title(title, fontsize="medium")
    return fig


def reconstruction(images: Sequence[np.ndarray], titles: Sequence[str]) -> plt.Figure:
    """Rows: images (e.g. original and top-K reconstructions); columns: the three channels (log colour)."""
    fig, axes = plt.subplots(len(images), 3, figsize=(11, 3.4 * len(images)), squeeze=False)
    for r, (img, title) in enumerate(zip(images, titles, strict=True)):
        for c in range(3):
            ax = axes[r, c]
            ch = img[..., c]
            pos = ch[ch > 0]
            norm = LogNorm(vmin=max(pos.min(), 1e-3), vmax=max(pos.max(), 2e-3)) if len(pos) else None
            ax.imshow(np.where(ch > 0, ch, np.nan), origin="lower", cmap="viridis", norm=norm, interpolation="none")
            ax.set_title(f"{title}: {CHANNELS[c]} ({len(pos)} hits)", fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes[-1]:
        ax.set_xlabel(r"$\phi$ (column)")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"$\eta$ (row)")
    fig.tight_layout()
    return fig


def kept_fraction(points: np.ndarray, ks: Sequence[int]) -> plt.Figure:
    """Fraction of each channel's summed energy kept by top-K trimming, versus K (mean over jets)."""
    cost = np.einsum("nlc,nlc->nl", points[..., :3], points[..., :3])
    order = np.argsort(-cost, axis=1, kind="stable")
    ranked = np.take_along_axis(points[..., :3], order[..., None], axis=1)
    cum = np.cumsum(ranked, axis=1)
    total = np.maximum(cum[:, -1], 1e-12)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = np.unique(np.clip(np.geomspace(1, points.shape[1], 40).astype(int), 1, points.shape[1]))
    for c in range(3):
        ax.plot(grid, (cum[:, grid - 1, c] / total[:, c][:, None]).mean(axis=0), label=CHANNELS[c])
    for k in ks:
        ax.axvline(k, color="gray", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("K (hits kept, ranked by track$^2$ + ECAL$^2$ + HCAL$^2$)")
    ax.set_ylabel("mean fraction of the channel's energy kept")
    ax.legend(fontsize="small")
    return fig


def counts_line(values: Mapping[str, float | int]) -> str:
    """``name value, name value`` with floats rounded to 3 significant digits (deterministic check lines)."""
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
