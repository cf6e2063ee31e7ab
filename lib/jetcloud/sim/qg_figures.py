"""Figures of notebook 05: quark and gluon jet images, kinematics, hit multiplicities, detector response.

Every function takes arrays the notebook already has (the summaries of :func:`jetcloud.sim.qg.simulate_images`
and :func:`jetcloud.sim.qg.simulate_particles`, or images read back from the E2E file) and returns a matplotlib
figure for :func:`jetcloud.plots.save`.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter

from .cms import CRYSTAL_ETA, CRYSTAL_PHI, IMAGE_SIZE, SEED_PIXEL

CHANNEL_LABELS = ("track $p_T$", "ECAL energy", "HCAL energy / 25")
CLASS_NAMES = {1: "quark", 0: "gluon"}
CLASS_COLOURS = {1: "tab:blue", 0: "tab:red"}
#: Per-channel hits per jet in the real E2E data, read off the Report's plots: (typical low, high), (peak low, high).
REPORT_HITS = {"track": ((50, 150), (90, 110)), "ECAL": ((100, 600), (200, 300)), "HCAL": ((100, 1000), (400, 600))}
_EXTENT = (
    -SEED_PIXEL * CRYSTAL_PHI - CRYSTAL_PHI / 2,
    (IMAGE_SIZE - 1 - SEED_PIXEL) * CRYSTAL_PHI + CRYSTAL_PHI / 2,
    -SEED_PIXEL * CRYSTAL_ETA - CRYSTAL_ETA / 2,
    (IMAGE_SIZE - 1 - SEED_PIXEL) * CRYSTAL_ETA + CRYSTAL_ETA / 2,
)


def _image(ax: plt.Axes, img: np.ndarray, vmin: float, vmax: float, points: bool = False) -> plt.cm.ScalarMappable:
    """Draw one channel: rows = eta (axis 1, up), columns = phi (axis 2, right), log colour scale.

    ``points`` draws every non-zero pixel as an enlarged square marker (readable single sparse jets).
    """
    norm = LogNorm(vmin=vmin, vmax=vmax)
    ax.set_facecolor("#f2f2f2")
    if points:
        row, col = np.nonzero(img > 0)
        order = np.argsort(img[row, col])  # brightest on top
        row, col = row[order], col[order]
        im = ax.scatter((col - SEED_PIXEL) * CRYSTAL_PHI, (row - SEED_PIXEL) * CRYSTAL_ETA, c=img[row, col],
                        s=7, marker="s", norm=norm, cmap="viridis", linewidths=0)  # fmt: skip
        ax.set_xlim(_EXTENT[0], _EXTENT[1])
        ax.set_ylim(_EXTENT[2], _EXTENT[3])
        ax.set_aspect("equal")
        return im
    shown = np.where(img > 0, img, np.nan)
    return ax.imshow(shown, origin="lower", extent=_EXTENT, norm=norm, cmap="viridis", interpolation="nearest",
                     aspect="equal")  # fmt: skip


def _colorbar(fig: plt.Figure, im, axes, label: str) -> None:
    cb = fig.colorbar(im, ax=axes, shrink=0.7, label=label, location="bottom")
    cb.ax.xaxis.set_minor_formatter(NullFormatter())


def mean_images(mean: Mapping[int, np.ndarray], counts: Mapping[int, int] | None = None) -> plt.Figure:
    """Average quark and gluon images per channel (rows: class, columns: channel), log colour scale."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.4), constrained_layout=True)
    for col in range(3):
        vals = np.concatenate([mean[c][..., col].ravel() for c in (1, 0)])
        vals = vals[vals > 0]
        vmax = float(vals.max()) if len(vals) else 1.0
        vmin = max(vmax * 1e-4, float(vals.min()) if len(vals) else 1e-4)
        for row, c in enumerate((1, 0)):
            ax = axes[row, col]
            im = _image(ax, mean[c][..., col], vmin, vmax)
            n = f" ({counts[c]} jets)" if counts else ""
            ax.set_title(f"{CLASS_NAMES[c]}{n}: {CHANNEL_LABELS[col]}", fontsize="medium")
            ax.set_xlabel(r"$\Delta\phi$ (axis 2)")
            ax.set_ylabel(r"$\Delta\eta$ (axis 1)")
        _colorbar(fig, im, axes[:, col], "mean per pixel [GeV]")
    return fig


def example_images(images: np.ndarray, labels: np.ndarray, meta: np.ndarray | None = None) -> plt.Figure:
    """Single jets, one row per jet and one column per channel (log colour scale per channel)."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(12, 3.7 * n), constrained_layout=True, squeeze=False)
    for col in range(3):
        vals = images[..., col][images[..., col] > 0]
        vmax = float(vals.max()) if len(vals) else 1.0
        vmin = max(min(float(vals.min()) if len(vals) else 1e-2, vmax / 10), 1e-2)
        for row in range(n):
            ax = axes[row, col]
            im = _image(ax, images[row, ..., col], vmin, vmax, points=col < 2)
            hits = int(np.count_nonzero(images[row, ..., col] > 0))
            title = f"{CLASS_NAMES[int(labels[row])]} jet: {CHANNEL_LABELS[col]}, {hits} hits"
            if meta is not None and col == 0:
                title += f"\n$p_T$ = {meta[row, 0]:.0f} GeV, $m$ = {meta[row, 1]:.0f} GeV"
            ax.set_title(title, fontsize="small")
            ax.set_xlabel(r"$\Delta\phi$")
            ax.set_ylabel(r"$\Delta\eta$")
        _colorbar(fig, im, axes[:, col], "GeV")
    return fig


def _class_hists(ax: plt.Axes, values: np.ndarray, labels: np.ndarray, bins: np.ndarray, xlabel: str) -> None:
    for c in (1, 0):
        v = values[labels == c]
        if len(v):
            ax.hist(v, bins=bins, histtype="step", lw=1.8, density=True, color=CLASS_COLOURS[c],
                    label=f"{CLASS_NAMES[c]} (mean {v.mean():.1f})")  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of jets / bin width")
    ax.legend(fontsize="small")


def jet_kinematics(columns: Mapping[str, np.ndarray], title: str = "") -> plt.Figure:
    """Jet pT, mass and constituent multiplicity per class (normalised histograms)."""
    labels = np.asarray(columns["label"]).astype(int)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    pt = np.asarray(columns["pt"])
    lo, hi = np.percentile(pt, [0.5, 99.5]) if len(pt) else (0, 1)
    _class_hists(axes[0], pt, labels, np.linspace(lo * 0.95, hi * 1.05, 40), "jet $p_T$ [GeV]")
    m = np.asarray(columns["m0"])
    _class_hists(axes[1], m, labels, np.linspace(0, max(np.percentile(m, 99.5), 1) * 1.1, 40), "jet mass [GeV]")
    nc = np.asarray(columns["n_constituents"])
    top = int(nc.max(initial=1)) + 2
    _class_hists(axes[2], nc, labels, np.arange(0, top, max(top // 40, 1)) - 0.5, "constituents (visible particles)")
    axes[2].set_xlim(0, top)
    if title:
        fig.suptitle(title)
    return fig


def hit_multiplicities(n_hits: np.ndarray, labels: np.ndarray) -> plt.Figure:
    """Non-zero pixels per jet and channel, per class, with the ranges the Report gives for the real data."""
    labels = np.asarray(labels).astype(int)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    for col, (name, ((lo, hi), (plo, phi))) in enumerate(REPORT_HITS.items()):
        ax = axes[col]
        top = max(int(np.percentile(n_hits[:, col], 99.8)) if len(n_hits) else 1, hi) * 1.05
        step = max(int(top / 50), 1)
        if name == "HCAL":  # whole towers: multiples of 25 pixels
            step = 25 * max(round(step / 25), 1)
        bins = np.arange(0, top + step, step) - 0.5
        ax.axvspan(lo, hi, color="0.85", label="real data: typical range")
        ax.axvspan(plo, phi, color="0.65", label="real data: peak")
        _class_hists(ax, n_hits[:, col], labels, bins, f"{name} hits per jet")
        ax.set_xlim(0, top)
        ax.set_ylim(0, 1.6 * ax.get_ylim()[1])  # room for the legend above the histograms
        ax.legend(
            fontsize="small", frameon=True, facecolor="white", edgecolor="none", framealpha=0.9, loc="upper right"
        )
    return fig


def particle_level(columns: Mapping[str, np.ndarray]) -> plt.Figure:
    """Particle-level jets: pT, mass and multiplicity per class."""
    return jet_kinematics(columns, title="particle level: Z + jet, √s = 14 TeV")


def detector_response(scan: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """Single electrons (ECAL) and pions (ECAL + HCAL): response and resolution against the CMS figures."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    for name, res in scan.items():
        e = res["energy"]
        tot = res["ecal"] + res["hcal"]
        mean, std = tot.mean(axis=1), tot.std(axis=1)
        axes[0].plot(e, mean / e, "o-", label=name)
        axes[1].plot(e, std / mean, "o-", label=name)
    e = np.geomspace(1, 300, 100)
    axes[1].plot(e, np.sqrt(0.028**2 / e + 0.003**2), "k--", lw=1, label=r"CMS ECAL 2.8%/√E $\oplus$ 0.3%")
    axes[1].plot(e, np.sqrt(1.0 / e + 0.05**2), "k:", lw=1, label=r"CMS HCAL 100%/√E $\oplus$ 5%")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("true energy [GeV]")
        ax.legend(fontsize="small")
    axes[0].set_ylabel(r"$\langle E_\mathrm{ECAL} + E_\mathrm{HCAL}\rangle / E$")
    axes[1].set_ylabel(r"$\sigma / \langle E \rangle$")
    axes[1].set_yscale("log")
    return fig
