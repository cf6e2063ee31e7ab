"""Every figure of the ATLAS notebooks (00-04): detector layout, event displays, response and resolution of the
simulation; sample sizes, one sample in (eta, phi) and label distributions of the ingestion; energy response of
the trained networks against the particle-flow baseline.

Each function takes arrays the notebook already has (so it works on real MLTree files as well) and returns a
matplotlib figure for :func:`jetcloud.plots.save`. This is the only ATLAS module that draws. Every figure function
draws in mplhep's ATLAS style and carries the "jetcloud Simulation" label (:func:`jetcloud.plots.simulation_figure`):
the events are Pythia events in an ATLAS-like detector, never ATLAS data. Distributions are ``hist`` histograms with
Poisson error bars (:func:`jetcloud.plots.histogram`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import awkward as ak
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from jetcloud import metrics, plots
from jetcloud.atlas.cellgeo import CaloGeometry
from jetcloud.atlas.evaluation import ABSETA_EDGES, PT_EDGES
from jetcloud.atlas.layers import SAMPLING_NAMES
from jetcloud.atlas.pointcloud import point_types
from jetcloud.atlas.sim.validation import cluster_cells, reference_points
from jetcloud.kinematics import delta_phi

#: The original report version's hard-coded point count (docs/jetpointnet.md).
ORIGINAL_LENGTH = 859


def _eta_phi(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arcsinh(z / np.hypot(x, y)), np.arctan2(y, x)


@plots.simulation_figure("atlas")
def length_distributions(lengths: Mapping[str, np.ndarray], chosen: int | None = None) -> plt.Figure:
    """Histogram of sample lengths (points per sample) per split, with the chosen and the original length."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = max(int(max((v.max(initial=1) for v in lengths.values()), default=1)), ORIGINAL_LENGTH) + 1
    bins = np.linspace(0, top, 60)
    for name, values in lengths.items():
        plots.histogram(ax, values, bins, density=True, lw=1.5, label=f"{name} ({len(values)})")
    if chosen is not None:
        ax.axvline(chosen, color="black", ls="--", lw=1.2, label=f"chosen length {chosen}")
    ax.axvline(ORIGINAL_LENGTH, color="gray", ls=":", lw=1.2, label=f"original, hard-coded {ORIGINAL_LENGTH}")
    ax.set_xlabel("points per sample")
    ax.set_ylabel("fraction of samples")
    ax.legend(fontsize="small")
    return fig


@plots.simulation_figure("atlas")
def sample_display(sample: ak.Record | ak.Array) -> plt.Figure:
    """One track-centred sample in (eta, phi): cells coloured by energy (left) and by label (right).

    Crosses mark the focused track's layer intersections, circles those of the other tracks in the cone.
    """
    cells = sample["cells"]
    eta, phi = ak.to_numpy(cells["eta"]), ak.to_numpy(cells["phi"])
    ref_phi = float(sample["trackPhi"])
    dphi = delta_phi(phi, ref_phi)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    energy = np.clip(ak.to_numpy(cells["E"]), 1e-3, None)
    panels = (
        (energy, "cell energy [GeV]", dict(cmap="viridis", norm=LogNorm(vmin=energy.min(), vmax=energy.max()))),
        (
            ak.to_numpy(cells["frac_label"]),
            "fraction of truth energy from the focused particle",
            dict(cmap="coolwarm", vmin=0, vmax=1),
        ),
    )
    for ax, (values, label, style) in zip(axes, panels, strict=True):
        sc = ax.scatter(eta, dphi, c=values, s=18, marker="s", **style)
        fig.colorbar(sc, ax=ax, label=label)
        for points, marker, colour, name in (
            (sample["track_points"], "x", "red", "focused track"),
            (sample["other_track_points"], "o", "black", "other tracks"),
        ):
            if len(points):
                p_eta, p_phi = _eta_phi(*(ak.to_numpy(points[c]).astype(np.float64) for c in ("X", "Y", "Z")))
                p_dphi = delta_phi(p_phi, ref_phi)
                style = {"facecolors": "none", "edgecolors": colour} if marker == "o" else {"color": colour}
                ax.scatter(p_eta, p_dphi, marker=marker, s=40, label=name, **style)
        ax.set_xlabel(r"$\eta$")
        ax.legend(fontsize="x-small", loc="lower left")
    axes[0].set_ylabel(r"$\phi - \phi_\mathrm{track}$")
    fig.suptitle(
        f"event {int(sample['eventNumber'])}, track {int(sample['trackID'])}: "
        f"pT = {float(sample['trackPt']):.1f} GeV, eta = {float(sample['trackEta']):.2f}, {len(cells)} cells",
        fontsize="medium",
    )
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def label_distributions(samples: ak.Array) -> plt.Figure:
    """Per-cell fraction labels, and per-track focused truth energy against the track momentum scale."""
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(11, 4.2))
    cells = samples["cells"]
    frac = ak.to_numpy(ak.flatten(cells["frac_label"]))
    truth = ak.to_numpy(ak.flatten(cells["truth_energy"]))
    has_truth = truth > 0
    plots.histogram(ax_f, frac[has_truth], np.linspace(0, 1, 41), lw=1.5)
    ax_f.set_yscale("log")
    ax_f.set_xlabel("fraction label (cells with truth energy)")
    ax_f.set_ylabel("cells")
    pt = ak.to_numpy(samples["trackPt"])
    focus = ak.to_numpy(samples["focus_truth_energy"])
    total = ak.to_numpy(samples["total_associated_cell_energy"])
    p = pt * np.cosh(ak.to_numpy(samples["trackEta"]))
    ax_e.scatter(p, focus, s=4, alpha=0.5, label="focused particle's truth energy in the cone")
    ax_e.scatter(p, total, s=4, alpha=0.5, label="all cell energy in the cone (EM scale)")
    grid = np.geomspace(max(p.min(initial=0.5), 0.5), max(p.max(initial=1), 1), 50)
    ax_e.plot(grid, grid, color="gray", lw=1, label="E = p")
    ax_e.set_xscale("log")
    ax_e.set_yscale("log")
    ax_e.set_xlabel("track momentum p [GeV]")
    ax_e.set_ylabel("energy [GeV]")
    ax_e.legend(fontsize="x-small", markerscale=4)
    fig.tight_layout()
    return fig


def counts_table(rows: Mapping[str, Mapping[str, int]]) -> str:
    """A markdown table: one row per split (or category), one column per count."""
    columns = list(next(iter(rows.values())).keys()) if rows else []
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(v[c]) for c in columns) + " |" for name, v in rows.items()]
    return "\n".join(lines)


# ---- point clouds (notebook 02) ------------------------------------------------------------------------------
_POINT_STYLES = {  # type code -> (name, marker, colour)
    1: ("focused track", "x", "red"),
    0: ("cells", "s", "tab:blue"),
    2: ("other tracks", "o", "black"),
}


@plots.simulation_figure("atlas")
def point_cloud_display(
    feats: np.ndarray,
    labels: np.ndarray,
    features: list[str] | tuple[str, ...],
    *,
    label_name: str = "focus_labels",
    energy_unit: str = "MeV",
    title: str = "",
) -> plt.Figure:
    """One padded sample as the network sees it: the energy column (top) and the label (bottom) per point.

    ``feats`` is one sample ``[L, F]``, ``labels`` its ``[L]`` label row (-1 = masked). The point order
    (focused track, cells, other tracks, padding) reads from left to right; padding is shaded.
    """
    types = point_types(feats, features)
    energy = feats[:, list(features).index("energy")]
    index = np.arange(len(types))
    fig, (ax_e, ax_l) = plt.subplots(2, 1, figsize=(11, 5.6), sharex=True, height_ratios=(3, 2))
    for code, (name, marker, colour) in _POINT_STYLES.items():
        sel = types == code
        if sel.any():
            ax_e.scatter(index[sel], energy[sel], s=12, marker=marker, color=colour, label=f"{name} ({sel.sum()})")
    valid = labels != -1
    ax_l.scatter(index[valid], labels[valid], s=10, color="tab:blue", label="cells")
    ax_l.scatter(
        index[~valid & (types >= 0)],
        labels[~valid & (types >= 0)],
        s=10,
        color="lightgray",
        label="masked (track points)",
    )
    n_pad = int(np.count_nonzero(types == -1))
    for ax in (ax_e, ax_l):
        if n_pad:
            ax.axvspan(
                len(types) - n_pad - 0.5,
                len(types) - 0.5,
                color="0.9",
                zorder=0,
                label=f"padding ({n_pad}, label -1)" if ax is ax_e else None,
            )
        ax.set_xlim(-0.5, len(types) - 0.5)
    linthresh = 10.0 if energy_unit == "MeV" else 0.01
    ax_e.set_yscale("symlog", linthresh=linthresh)
    e_min, e_max = float(energy.min(initial=0.0)), float(energy.max(initial=linthresh))
    ax_e.set_ylim(min(2 * e_min, -linthresh), 2 * max(e_max, linthresh))
    ax_e.set_ylabel(f"energy column [{energy_unit}]")
    ax_e.legend(fontsize="x-small", ncol=2)
    ax_l.set_ylabel(label_name + ("" if label_name.startswith("frac") else f" [{energy_unit}]"))
    ax_l.set_xlabel("point index in the padded array")
    ax_l.legend(fontsize="x-small")
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def point_label_distributions(arrays: Mapping[str, np.ndarray], energy_unit: str = "MeV") -> plt.Figure:
    """Labels of padded point clouds (masked points excluded).

    Left: fraction labels of cells with truth energy. Middle: per-cell focused-particle energy (``focus_labels``)
    and the original ``Total_Label`` (``tot_labels``), which counts the whole cell whenever the focused particle
    contributed. Right: per sample, the focused truth energy kept in the array over the sample's total (below 1
    only where truncation dropped labelled cells).
    """
    fig, (ax_f, ax_e, ax_k) = plt.subplots(1, 3, figsize=(14, 4.2))
    frac, focus, total, truth = (arrays[k] for k in ("frac_labels", "focus_labels", "tot_labels", "tot_truth_e"))
    valid = frac != -1
    plots.histogram(ax_f, frac[valid & (truth > 0)], np.linspace(0, 1, 41), lw=1.5)
    ax_f.set_yscale("log")
    ax_f.set_xlabel("frac_labels (cells with truth energy)")
    ax_f.set_ylabel("cells")
    positive = np.concatenate([focus[valid & (focus > 0)], total[valid & (total > 0)]])
    if positive.size:
        bins = np.geomspace(positive.min(), positive.max() * 1.01, 50)
        plots.histogram(ax_e, focus[valid & (focus > 0)], bins, lw=1.5, label="focus_labels")
        plots.histogram(
            ax_e, total[valid & (total > 0)], bins, lw=1.5, ls="--", label="tot_labels (original Total_Label)"
        )
        ax_e.set_xscale("log")
    ax_e.set_yscale("log")
    ax_e.set_xlabel(f"per-cell label energy [{energy_unit}] (> 0)")
    ax_e.set_ylabel("cells")
    ax_e.legend(fontsize="x-small")
    kept = np.where(valid, focus, 0.0).sum(axis=1)
    expected = np.asarray(arrays["focus_truth_energy"], np.float64)
    has = expected > 0
    ratio = np.clip(kept[has] / expected[has], 0, 1.2)
    truncated = (np.asarray(arrays["n_points"]) > frac.shape[1])[has]
    for sel, name in ((~truncated, "not truncated"), (truncated, "truncated")):
        plots.histogram(ax_k, ratio[sel], np.linspace(-0.0125, 1.2125, 50), lw=1.5, label=f"{name} ({sel.sum()})")
    ax_k.set_yscale("log")
    ax_k.set_xlabel("focused truth energy kept / in the sample")
    ax_k.set_ylabel("samples")
    ax_k.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def display_index(arrays: Mapping[str, np.ndarray], features: list[str] | tuple[str, ...], length: int) -> int:
    """A sample worth showing: the longest with other-track points that still leaves a quarter of L as padding."""
    types = point_types(arrays["feats"], features)
    fits = (arrays["n_points"] <= 0.75 * length) & ((types == 2).sum(axis=1) > 0)
    return int(np.argmax(np.where(fits, arrays["n_points"], -1))) if fits.any() else int(np.argmax(arrays["n_points"]))


#: One colour per calorimeter family, for layout plots.
FAMILY_COLOURS = {
    "PS": "tab:gray",
    "EMB": "tab:blue",
    "EME": "tab:cyan",
    "HEC": "tab:orange",
    "Tile": "tab:red",
    "FCAL": "tab:purple",
}


def _family(name: str) -> str:
    for key in ("PreSampler", "EMB", "EME", "HEC", "Tile", "FCAL"):
        if name.startswith(key):
            return "PS" if key == "PreSampler" else key
    return "PS"


@plots.simulation_figure("atlas")
def detector_layout(geometry: CaloGeometry, max_cells: int | None = None, seed: int = 0) -> plt.Figure:
    """Cell centres in the (z, r) plane, coloured by calorimeter family (all cells, or a random subset)."""
    rng = np.random.default_rng(seed)
    n = geometry.n_cells if max_cells is None else min(max_cells, geometry.n_cells)
    rows = np.sort(rng.choice(geometry.n_cells, size=n, replace=False))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    families = np.array([_family(name) for name in SAMPLING_NAMES])[geometry.sampling[rows]]
    for family, colour in FAMILY_COLOURS.items():
        sel = families == family
        z, r = geometry.z[rows][sel], geometry.r_perp[rows][sel]
        ax.scatter(z, r, s=0.5, color=colour, label=family, rasterized=True)
    ax.set_xlabel("z [mm]")
    ax.set_ylabel(r"$r_\perp$ [mm]")
    ax.legend(markerscale=12, ncols=6, loc="upper center", fontsize="small", frameon=False)
    ax.set_ylim(0, 1.15 * float(geometry.r_perp.max()))
    return fig


@plots.simulation_figure("atlas")
def event_display(events: ak.Array, geometry: CaloGeometry, entry: int = 0, track_pt_min: float = 1.0) -> plt.Figure:
    """Clustered cells of one event in (eta, phi), coloured by energy; tracks at their EMB2/EME2 point."""
    one = events[entry : entry + 1]
    cells = cluster_cells(one, geometry)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    positive = cells["e"] > 0
    norm = LogNorm(vmin=0.005, vmax=max(float(cells["e"].max(initial=0.01)), 0.01))
    sc = ax.scatter(
        cells["eta"][positive],
        cells["phi"][positive],
        c=cells["e"][positive],
        s=6,
        cmap="viridis",
        norm=norm,
        marker="s",
    )
    fig.colorbar(sc, ax=ax, label="cell energy [GeV]")
    eta, phi = reference_points(one)
    pt = ak.to_numpy(one["trackPt"][0])
    eta, phi = ak.to_numpy(eta[0]), ak.to_numpy(phi[0])
    ok = (eta > -100) & (pt > track_pt_min)
    ax.scatter(
        eta[ok],
        phi[ok],
        s=30 + 4 * pt[ok],
        facecolors="none",
        edgecolors="red",
        linewidths=1.2,
        label=rf"tracks, $p_T > {track_pt_min:g}$ GeV (EMB2 / EME2 point)",
    )
    ax.set_xlabel(r"$\eta$")
    ax.set_ylabel(r"$\phi$")
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-np.pi, np.pi)
    ax.legend(loc="upper right", fontsize="small")
    n_cl = int(one["nCluster"][0])
    title = f"event {int(one['eventNumber'][0])}: {n_cl} topo-clusters, {len(cells['e'])} cells"
    ax.set_title(title, fontsize="medium")
    return fig


@plots.simulation_figure("atlas")
def sampling_fractions(fractions: dict[str, np.ndarray]) -> plt.Figure:
    """Bar chart of the energy fraction per sampling, one series per label."""
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(fractions), 1)
    x = np.arange(len(SAMPLING_NAMES))
    for i, (label, frac) in enumerate(fractions.items()):
        ax.bar(x + (i - (len(fractions) - 1) / 2) * width, frac, width=width, label=label)
    ax.set_xticks(x, SAMPLING_NAMES, rotation=70, fontsize="small")
    ax.set_ylabel("fraction of energy")
    ax.legend(fontsize="small")
    return fig


@plots.simulation_figure("atlas")
def response_resolution(results: dict[str, dict], fits: dict[str, dict]) -> plt.Figure:
    """Response <E_reco>/E and resolution sigma/E versus E, with the fitted a/sqrt(E) ⊕ b curves (mathtext)."""
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.geomspace(1, 300, 200)
    for (label, res), colour in zip(results.items(), ("tab:blue", "tab:red", "tab:green", "tab:purple"), strict=False):
        e = np.asarray(res["energy"])
        ax_r.errorbar(e, res["response"], yerr=res["response_err"], fmt="o", color=colour, label=label)
        ax_s.errorbar(e, res["resolution"], yerr=res["resolution_err"], fmt="o", color=colour, label=label)
        fit = fits[label]
        curve = np.sqrt((fit["a"] / np.sqrt(grid)) ** 2 + fit["b"] ** 2 + (fit.get("c", 0.0) / grid) ** 2)
        curve = curve[grid <= 2 * float(np.max(res["energy"]))]
        ax_s.plot(
            grid[: len(curve)],
            curve,
            color=colour,
            lw=1,
            label=rf"fit: {100 * fit['a']:.0f}%$/\sqrt{{E}} \oplus$ {100 * fit['b']:.1f}%",
        )
    e_max = max(float(np.max(res["energy"])) for res in results.values())
    for ax in (ax_r, ax_s):
        ax.set_xscale("log")
        ax.set_xlim(0.7, 2 * e_max)
        ax.set_xlabel("true energy [GeV]")
        ax.legend(fontsize="small")
    ax_r.set_ylabel(r"response $\langle E_\mathrm{EM}\rangle / E$")
    ax_r.axhline(1, color="gray", lw=0.5)
    ax_s.set_ylabel(r"$\sigma(E) / \langle E \rangle$")
    ax_s.set_ylim(0, None)
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def cluster_and_noise(events: ak.Array, geometry: CaloGeometry) -> plt.Figure:
    """Cells per cluster, and the written cells' significance E / sigma_noise next to a Gaussian noise model."""
    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
    n_cells = ak.to_numpy(ak.flatten(events["cluster_nCells"]))
    plots.histogram(ax_n, n_cells, np.geomspace(1, max(n_cells.max(initial=2), 2), 40), lw=1.5)
    ax_n.set_xscale("log")
    ax_n.set_xlabel("cells per topo-cluster (cluster_nCells)")
    ax_n.set_ylabel("clusters")
    cells = cluster_cells(events, geometry)
    significance = cells["e"] / cells["sigma"]
    bins = np.linspace(-2, 30, 65)
    plots.histogram(ax_s, significance, bins, lw=1.5, label="written cluster cells")
    ax_s.axvline(4, color="red", ls="--", lw=1, label=r"seed $4\sigma$")
    ax_s.axvline(2, color="orange", ls="--", lw=1, label=r"growth $2\sigma$")
    ax_s.set_yscale("log")
    ax_s.set_xlabel(r"cell significance $E / \sigma_\mathrm{noise}$")
    ax_s.set_ylabel("cells")
    ax_s.legend(fontsize="small")
    return fig


@plots.simulation_figure("atlas")
def noise_by_sampling(geometry: CaloGeometry) -> plt.Figure:
    """Median and range of the per-cell electronic noise sigma, per sampling (MeV, log scale)."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    data = [geometry.sigma[geometry.sampling == s] for s in range(len(SAMPLING_NAMES))]
    ax.boxplot([d if len(d) else [np.nan] for d in data], whis=(0, 100), showfliers=False)
    ax.set_xticks(np.arange(1, len(SAMPLING_NAMES) + 1), SAMPLING_NAMES, rotation=70, fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel(r"cell noise $\sigma$ [MeV]")
    return fig


@plots.simulation_figure("atlas")
def response_distributions(tables: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """Histograms of E_pred / E_true per method (log y), with median and sigma68 in the legend."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    bins = np.linspace(0, 2.5, 76)
    for name, tab in tables.items():
        r = tab["response"][np.isfinite(tab["response"])]
        med, sig = metrics.median_and_sigma68(r, relative=True)
        label = f"{name}: median {med:.3f}, $\\sigma_{{68}}$/median {sig:.3f}"
        plots.histogram(ax, r, bins, clip=True, lw=1.8, label=label)
    ax.axvline(1.0, color="gray", lw=1, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel(r"$E_\mathrm{pred} / E_\mathrm{true}$ (per track, cells summed)")
    ax.set_ylabel("tracks")
    ax.legend(fontsize="x-small", loc="upper right")
    return fig


@plots.simulation_figure("atlas")
def binned_response_figure(
    tables: Mapping[str, Mapping[str, np.ndarray]],
    pt_edges: Sequence[float] = PT_EDGES,
    abseta_edges: Sequence[float] = ABSETA_EDGES,
    *,
    min_entries: int = 10,
) -> tuple[plt.Figure, dict[str, dict[str, dict[str, np.ndarray]]]]:
    """Median response (top) and relative sigma68 (bottom) versus track pT and |eta|; returns the tables too."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex="col")
    binned: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for name, tab in tables.items():
        binned[name] = {}
        for col, (var, edges, label) in enumerate(
            (("pt", pt_edges, r"track $p_T$ [GeV]"), ("abseta", abseta_edges, r"track $|\eta|$"))
        ):
            x = np.abs(tab["eta"]) if var == "abseta" else tab["pt"]
            b = metrics.binned_response(tab["response"], x, edges, min_entries=min_entries)
            binned[name][var] = b
            centre = 0.5 * (b["lo"] + b["hi"]) if var == "abseta" else np.sqrt(b["lo"] * b["hi"])
            half = 0.5 * (b["hi"] - b["lo"])
            axes[0, col].errorbar(centre, b["median"], xerr=half if var == "abseta" else None, fmt="o", label=name)
            axes[1, col].errorbar(centre, b["sigma68"], xerr=half if var == "abseta" else None, fmt="o", label=name)
            axes[1, col].set_xlabel(label)
            if var == "pt":
                axes[0, col].set_xscale("log")
    for ax in axes[0]:
        ax.axhline(1.0, color="gray", lw=1, ls=":")
        ax.axhspan(0.98, 1.02, color="gray", alpha=0.15, lw=0)
    axes[0, 0].set_ylabel("median response")
    axes[1, 0].set_ylabel(r"$\sigma_{68}$ / median")
    axes[0, 0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig, binned


@plots.simulation_figure("atlas")
def percentage_error_figure(tables: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """The original per-sample percentage error against the true energy: it explodes as E_true -> 0."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, tab in tables.items():
        pe = metrics.percentage_error(tab["e_pred"], tab["e_true"])
        ok = np.isfinite(pe) & (tab["e_true"] > 0)
        ax.scatter(tab["e_true"][ok], pe[ok], s=3, alpha=0.4, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$E_\mathrm{true}$ of the focused particle in the cone [GeV]")
    ax.set_ylabel(r"$100\,|E_\mathrm{pred} - E_\mathrm{true}| / E_\mathrm{true}$ [%]")
    ax.legend(fontsize="x-small", markerscale=4)
    return fig


@plots.simulation_figure("atlas")
def prediction_display(
    arrays: Mapping[str, np.ndarray],
    index: int,
    predictions: Mapping[str, np.ndarray],
    features: Sequence[str],
    energy_unit: str = "MeV",
) -> plt.Figure:
    """One sample in (eta, phi): cells coloured by the true focused-energy fraction and each method's fraction.

    The fraction of a method is its predicted energy over the cell energy (clipped to [0, 1.5]); crosses are
    the focused track's layer intersections, circles the other tracks' points. Needs the point clouds' raw
    coordinates (``coordinates="raw"``, the default of notebook 02).
    """
    feats = np.asarray(arrays["feats"][index])
    kind = point_types(feats, features)
    x, y, z, energy = (feats[:, list(features).index(name)] for name in ("x", "y", "z", "energy"))
    eta, phi = np.arcsinh(z / np.maximum(np.hypot(x, y), 1e-9)), np.arctan2(y, x)
    focus = kind == 1
    ref_phi = float(np.arctan2(y[focus].mean(), x[focus].mean())) if focus.any() else 0.0
    dphi = delta_phi(phi, ref_phi)
    cells = kind == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        truth = np.where(energy > 0, np.asarray(arrays["focus_labels"][index]) / energy, 0.0)
        panels = {"truth": truth} | {
            name: np.where(energy > 0, np.asarray(p[index]) / energy, 0.0) for name, p in predictions.items()
        }
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1, 4.2), sharey=True)
    for ax, (name, frac) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        sc = ax.scatter(
            eta[cells],
            dphi[cells],
            c=np.clip(frac[cells], 0, 1.5),
            cmap="viridis",
            vmin=0,
            vmax=1.5,
            s=14 + 60 * np.sqrt(np.clip(energy[cells], 0, None) / max(energy[cells].max(), 1e-9)),
            marker="s",
        )
        ax.scatter(eta[focus], dphi[focus], marker="x", color="red", s=40, label="focused track")
        other = kind == 2
        ax.scatter(
            eta[other], dphi[other], marker="o", facecolors="none", edgecolors="black", s=30, label="other tracks"
        )
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(r"$\eta$")
    np.atleast_1d(axes)[0].set_ylabel(r"$\phi - \phi_\mathrm{track}$")
    np.atleast_1d(axes)[0].legend(fontsize="xx-small", loc="lower left")
    fig.colorbar(sc, ax=axes, label="focused-particle energy / cell energy")
    fig.suptitle(
        f"event {int(arrays['eventNumber'][index])}, track {int(arrays['trackID'][index])}: "
        f"pT = {float(arrays['track_pt'][index]) / (1000 if energy_unit == 'MeV' else 1):.1f} GeV "
        f"(marker size ~ sqrt(cell energy))",
        fontsize="medium",
        y=1.06,
    )
    return fig


@plots.simulation_figure("atlas")
def jet_response_figure(binned: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """Jet pT response (median, top) and relative sigma68 (bottom) against truth-jet pT, one series per
    reconstruction, with bootstrap errors (``jetcloud.atlas.jets.binned_resolution`` tables)."""
    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    offsets = np.linspace(-0.06, 0.06, max(len(binned), 1))
    for (name, b), shift in zip(binned.items(), offsets, strict=False):
        centre = np.sqrt(b["lo"] * b["hi"]) * (1.0 + shift)
        axes[0].errorbar(centre, b["median"], yerr=b["median_err"], fmt="o", capsize=2, label=name)
        axes[1].errorbar(centre, b["sigma68"], yerr=b["sigma68_err"], fmt="o", capsize=2, label=name)
    axes[0].axhline(1.0, color="gray", lw=1, ls=":")
    axes[0].set_ylabel(r"median $p_T^\mathrm{reco} / p_T^\mathrm{truth}$")
    axes[1].set_ylabel(r"$\sigma_{68}$ / median")
    axes[1].set_xlabel(r"truth jet $p_T$ [GeV]")
    axes[1].set_xscale("log")
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def neutral_remainder_figure(
    residuals: Mapping[str, Mapping[str, np.ndarray]],
    truth_edges: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0),
) -> plt.Figure:
    """Per cluster, the EM-scale neutral remainder against its truth (left: median and 16-84% band in bins of the
    truth neutral energy; right: the residual distribution), one series per subtraction
    (``jetcloud.atlas.jets.cluster_residuals`` tables)."""
    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(12, 4.8))
    edges = np.asarray(truth_edges, np.float64)
    centre = np.sqrt(edges[:-1] * edges[1:])
    for name, r in residuals.items():
        which = np.digitize(r["truth"], edges) - 1
        q = np.full((len(centre), 3), np.nan)
        for b in range(len(centre)):  # the few bins only
            sel = r["e"][which == b]
            if len(sel) >= 5:
                q[b] = np.quantile(sel, [0.16, 0.5, 0.84])
        (line,) = ax.plot(centre, q[:, 1], "o-", label=name)
        ax.fill_between(centre, q[:, 0], q[:, 2], color=line.get_color(), alpha=0.15, lw=0)
        med, sig = metrics.median_and_sigma68(r["residual"])
        bins = np.linspace(-5.0, 5.0, 81)
        label = f"{name}: median {med:.2f}, $\\sigma_{{68}}$ {sig:.2f}"
        plots.histogram(ax_r, r["residual"], bins, clip=True, lw=1.6, label=label)
    ax.plot(edges[[0, -1]], edges[[0, -1]], color="gray", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"truth neutral energy of the cluster (EM scale) [GeV]")
    ax.set_ylabel("neutral remainder [GeV]")
    ax.legend(fontsize="x-small")
    ax_r.set_yscale("log")
    ax_r.set_xlabel(r"remainder $-$ truth neutral [GeV] (per cluster)")
    ax_r.set_ylabel("clusters")
    ax_r.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def method_comparison_figure(comparison: Mapping[str, object]) -> plt.Figure:
    """Median response (top) and sigma68 / median (bottom) against track momentum for every method, truth scale
    (left) and EM scale (right), with the bootstrap intervals of :func:`jetcloud.atlas.evaluation.compare_methods`
    as error bars (methods slightly shifted in p so the bars do not overlap)."""
    scales = comparison["scales"]
    fig, axes = plt.subplots(2, len(scales), figsize=(5.5 * len(scales), 7), sharex=True, squeeze=False)
    edges = np.asarray(comparison["p_edges"], np.float64)
    centre = np.sqrt(edges[:-1] * edges[1:])
    for col, (scale, sc) in enumerate(scales.items()):
        names = sc["overall"]["methods"]
        for m, name in enumerate(names):
            shift = centre * 1.06 ** (m - 0.5 * (len(names) - 1))
            for row, key in enumerate(("median", "sigma68")):
                v, lo, hi = (np.array([r["stats"][name][k] for r in sc["p"]]) for k in (key, f"{key}_lo", f"{key}_hi"))
                yerr = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
                axes[row, col].errorbar(shift, v, yerr=yerr, fmt="o-", ms=4, lw=1, capsize=2, label=name)
        axes[0, col].axhline(1.0, color="gray", lw=1, ls=":")
        axes[0, col].axhspan(0.98, 1.02, color="gray", alpha=0.15, lw=0)
        axes[0, col].set_title(f"{scale} scale", fontsize="medium")
        axes[1, col].set_xscale("log")
        axes[1, col].set_xlabel("track momentum p [GeV]")
    axes[0, 0].set_ylabel("median response")
    axes[1, 0].set_ylabel(r"$\sigma_{68}$ / median")
    axes[0, 0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


@plots.simulation_figure("atlas")
def sigma68_learning_curve(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    bands: Mapping[str, Sequence[float]],
    ylabel: str = r"truth-scale $\sigma_{68}$ / median",
) -> plt.Figure:
    """Resolution of the networks against their training samples (one series per model, bootstrap error bars),
    with reference methods as horizontal bands (``bands``: name -> (value, lo, hi))."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, (value, lo, hi)) in enumerate(bands.items()):
        colour = colours[(k + len(curves)) % len(colours)]
        ax.axhspan(lo, hi, color=colour, alpha=0.2, lw=0)
        ax.axhline(value, color=colour, ls="--", lw=1.2, label=name)
    for name, c in curves.items():
        v, lo, hi = (np.asarray(c[k], np.float64) for k in ("sigma68", "lo", "hi"))
        yerr = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
        ax.errorbar(c["n_train"], v, yerr=yerr, fmt="o-", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training samples")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="x-small")
    return fig
