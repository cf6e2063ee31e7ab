"""Every figure of the quark/gluon notebooks (06-09): jet images, kinematics, hit multiplicities and detector
response of the simulation; point-cloud distributions of the conversion.

Inputs are the summaries of :func:`jetcloud.qg.simulate.simulate_images`, the E2E images ``[N, 125, 125, 3]`` or
the arrays of :mod:`jetcloud.qg.pointcloud` (points ``[N, L, 5]`` = track, ECAL, HCAL, col, row); every
function returns a matplotlib figure for :func:`jetcloud.plots.save`. The only quark/gluon module that draws.

Every figure function draws in mplhep's CMS style and carries the "jetcloud Simulation" label
(:func:`jetcloud.plots.simulation_figure`): Pythia jets in a CMS-like detector, never CMS data. Distributions are
``hist`` histograms with Poisson error bars (:func:`jetcloud.plots.histogram`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter

from jetcloud import plots
from jetcloud.qg.detector import CRYSTAL_ETA, CRYSTAL_PHI, IMAGE_SIZE, SEED_PIXEL

CHANNELS = ("track pT", "ECAL", "HCAL")
#: Per-channel hits per jet the Report reads off its plots for the real CMS data (docs/e2e-format.md).
REPORT_HIT_PEAKS = {"track pT": (50, 150), "ECAL": (200, 300), "HCAL": (400, 600)}


@plots.simulation_figure("cms")
def channel_energy_histograms(points: np.ndarray, labels: np.ndarray) -> plt.Figure:
    """Per-channel pixel values of the hits (log-log), quark versus gluon."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    bins = np.geomspace(1e-3, 1e3, 61)
    for c, ax in enumerate(axes):
        for value, name in ((1, "quark"), (0, "gluon")):
            v = points[labels == value][..., c]
            plots.histogram(ax, v[v > 0], bins, density=True, lw=1.5, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{CHANNELS[c]} per pixel [GeV]")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


@plots.simulation_figure("cms")
def hit_multiplicities(channel_hits: np.ndarray, labels: np.ndarray, total_hits: np.ndarray) -> plt.Figure:
    """Non-zero pixels per jet for each channel and in total, quark versus gluon; the Report's peaks shaded."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for c, ax in enumerate(axes):
        values = total_hits if c == 3 else channel_hits[:, c]
        top = max(int(np.quantile(values, 0.999)) + 1, 10)
        bins = np.linspace(0, top, 50)
        for value, cls in ((1, "quark"), (0, "gluon")):
            plots.histogram(ax, values[labels == value], bins, lw=1.5, label=cls)
        name = "all channels (any > 0)" if c == 3 else CHANNELS[c]
        if name in REPORT_HIT_PEAKS:
            ax.axvspan(*REPORT_HIT_PEAKS[name], color="gray", alpha=0.2, lw=0, label="Report (CMS data) peak")
        ax.set_xlabel(f"hits per jet: {name}")
    axes[0].set_ylabel("jets")
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


@plots.simulation_figure("cms")
def point_cloud_3d(points: np.ndarray, title: str = "") -> plt.Figure:
    """One jet's hits in (col, row, channel energy): marker per channel, size by energy."""
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    for c, (colour, marker) in enumerate((("tab:green", "^"), ("tab:blue", "o"), ("tab:red", "s"))):
        sel = points[:, c] > 0
        ax.scatter(
            points[sel, 3],
            points[sel, 4],
            np.log10(points[sel, c] + 1e-3),
            c=colour,
            marker=marker,
            s=8,
            alpha=0.6,
            label=CHANNELS[c],
        )
    ax.set_xlabel(r"column ($\phi$ index)")
    ax.set_ylabel(r"row ($\eta$ index)")
    ax.set_zlabel(r"$\log_{10}$ value [GeV]")
    ax.legend(fontsize="x-small")
    ax.set_title(title, fontsize="medium")
    return fig


@plots.simulation_figure("cms")
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


@plots.simulation_figure("cms")
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
        im = ax.scatter(
            (col - SEED_PIXEL) * CRYSTAL_PHI,
            (row - SEED_PIXEL) * CRYSTAL_ETA,
            c=img[row, col],
            s=7,
            marker="s",
            norm=norm,
            cmap="viridis",
            linewidths=0,
        )
        ax.set_xlim(_EXTENT[0], _EXTENT[1])
        ax.set_ylim(_EXTENT[2], _EXTENT[3])
        ax.set_aspect("equal")
        return im
    shown = np.where(img > 0, img, np.nan)
    return ax.imshow(
        shown, origin="lower", extent=_EXTENT, norm=norm, cmap="viridis", interpolation="nearest", aspect="equal"
    )


def _colorbar(fig: plt.Figure, im, axes, label: str) -> None:
    cb = fig.colorbar(im, ax=axes, shrink=0.7, label=label, location="bottom")
    cb.ax.xaxis.set_minor_formatter(NullFormatter())


@plots.simulation_figure("cms")
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


@plots.simulation_figure("cms")
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
            label = f"{CLASS_NAMES[c]} (mean {v.mean():.1f})"
            plots.histogram(ax, v, bins, density=True, lw=1.8, color=CLASS_COLOURS[c], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of jets / bin width")
    ax.legend(fontsize="small")


@plots.simulation_figure("cms")
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


@plots.simulation_figure("cms")
def image_hit_counts(n_hits: np.ndarray, labels: np.ndarray) -> plt.Figure:
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


@plots.simulation_figure("cms")
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
    axes[1].plot(e, np.sqrt(0.028**2 / e + 0.003**2), "k--", lw=1, label=r"CMS ECAL 2.8%$/\sqrt{E} \oplus$ 0.3%")
    axes[1].plot(e, np.sqrt(1.0 / e + 0.05**2), "k:", lw=1, label=r"CMS HCAL 100%$/\sqrt{E} \oplus$ 5%")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("true energy [GeV]")
        ax.legend(fontsize="small")
    axes[0].set_ylabel(r"$\langle E_\mathrm{ECAL} + E_\mathrm{HCAL}\rangle / E$")
    axes[1].set_ylabel(r"$\sigma / \langle E \rangle$")
    axes[1].set_yscale("log")
    return fig


@plots.simulation_figure("cms")
def pt_hat_window(study: Mapping) -> plt.Figure:
    """Leading-jet pT spectra of the reference and the chosen pT-hat window and their ratio, per class.

    ``study``: the result of :func:`jetcloud.qg.particle_level.pt_hat_window_study`. Spectrum errors are
    Poisson; the window's jets are a subset of the reference's, so the ratio's errors are binomial.
    """
    edges = np.asarray(study["edges"])
    centre, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
    ref_w, win_w = study["windows"]["reference"], study["windows"]["chosen"]
    fig, axes = plt.subplots(
        2, 2, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}, constrained_layout=True
    )
    for col, (c, name) in enumerate(((1, "quark"), (0, "gluon"))):
        ref, win = np.asarray(study[c]["reference"], float), np.asarray(study[c]["window"], float)
        chosen = study[c]["chosen"]
        top, bottom = axes[0, col], axes[1, col]
        top.stairs(ref, edges, color="0.3", lw=1.5, zorder=3, label=f"reference {_window(ref_w)}")
        top.bar(centre, 2 * np.sqrt(ref), 2 * half, ref - np.sqrt(ref), color="0.85", label="reference ± 1 σ")
        top.errorbar(centre, win, yerr=np.sqrt(win), fmt="o", ms=4, color="C0", label=_window(win_w))
        top.set_ylim(0, 1.35 * max(ref.max(initial=0) + np.sqrt(ref.max(initial=0)), 1))
        top.set_ylabel("accepted jets per bin")
        top.set_title(
            f"{name} jets: {100 * chosen['lost']:.1f} ± {100 * chosen['lost_err']:.1f}% lost; events per kept jet "
            f"{study[c]['reference_events_per_jet']:.1f} → {chosen['events_per_jet']:.1f}",
            fontsize="medium",
        )
        top.legend(fontsize="small")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ref > 0, win / ref, np.nan)
            err = np.sqrt(np.where(ref > 0, ratio * (1 - ratio) / ref, np.nan))
        bottom.errorbar(centre, ratio, yerr=err, xerr=half, fmt="o", ms=3, color="k")
        bottom.axhline(1.0, color="0.5", lw=1)
        bottom.set_ylim(min(0.9, np.nanmin(ratio - err) if np.isfinite(ratio).any() else 0.9), 1.02)
        bottom.set_ylabel("window / reference")
        bottom.set_xlabel(r"leading jet $p_T$ [GeV]")
    return fig


def _window(w: Sequence[float]) -> str:
    return rf"$\hat p_T$ {w[0]:.0f}-{w[1]:.0f} GeV"


@plots.simulation_figure("cms")
def pid_composition(table: Mapping[str, Mapping[str, float]]) -> plt.Figure:
    """Share of the particles of each species per class (``table``: :func:`jetcloud.qg.energyflow.pid_composition`)."""
    classes = list(table)
    names = list(next(iter(table.values())))
    fig, ax = plt.subplots(figsize=(9, 3.8), constrained_layout=True)
    width = 0.8 / len(classes)
    x = np.arange(len(names))
    for i, cls in enumerate(classes):
        ax.bar(x + (i - (len(classes) - 1) / 2) * width, [100 * table[cls][n] for n in names], width, label=cls)
    ax.set_xticks(x, names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_yscale("log")
    ax.set_ylabel("share of the particles [%]")
    ax.legend(fontsize="small")
    return fig


# ---- physics points (notebook 07) -----------------------------------------------------------------------------
_TYPE_STYLE = (("track", "tab:green", "^"), ("ECAL", "tab:blue", "o"), ("HCAL tower", "tab:red", "s"))


@plots.simulation_figure("cms")
def physics_points(n_type: np.ndarray, labels: np.ndarray, jet: np.ndarray, title: str = "") -> plt.Figure:
    """Physics points per jet and type (quark vs gluon), and one jet's points ``jet [n, 8]``
    (:data:`jetcloud.qg.physics_points.FEATURES`) in (delta phi, delta eta), coloured by type, area ~ energy."""
    n_type, labels = np.asarray(n_type), np.asarray(labels)
    fig, axes = plt.subplots(1, 5, figsize=(19, 3.8), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.3]})
    columns = [*(n_type[:, t] for t in range(3)), n_type.sum(axis=1)]
    for ax, values, name in zip(axes[:4], columns, ("track", "ECAL", "HCAL tower", "all"), strict=True):
        bins = np.linspace(0, max(int(values.max(initial=0)) + 1, 10), 40)
        for value, cls in ((1, "quark"), (0, "gluon")):
            plots.histogram(ax, values[labels == value], bins, lw=1.5, label=cls)
        ax.set_xlabel(f"points per jet: {name}")
    axes[0].set_ylabel("jets")
    axes[0].legend(fontsize="x-small")
    ax = axes[4]
    energy = np.exp(jet[:, 0])
    for t, (name, colour, marker) in enumerate(_TYPE_STYLE):
        sel = jet[:, 5 + t] > 0
        area = 200 * energy[sel] / max(float(energy.max(initial=1.0)), 1e-9) + 2
        ax.scatter(jet[sel, 3], jet[sel, 2], s=area, c=colour, marker=marker, alpha=0.6, label=f"{name} ({sel.sum()})")
    ax.set_xlabel(r"$\Delta\phi$ to the jet axis")
    ax.set_ylabel(r"$\Delta\eta$ to the jet axis")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    return fig
