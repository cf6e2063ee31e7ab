"""Figures of the simulation notebook: detector layout, event displays, response and resolution.

Each function draws on matplotlib axes it creates or is given and returns the figure; saving goes through
:func:`jetcloud.plots.save`. Inputs are the arrays the notebook already has, so the functions work on real
MLTree files as well.
"""

from __future__ import annotations

import awkward as ak
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from ..geometry import SAMPLING_NAMES
from .geometry import CaloGeometry
from .validation import cluster_cells, reference_points

#: One colour per calorimeter family, for layout plots.
FAMILY_COLOURS = {"PS": "tab:gray", "EMB": "tab:blue", "EME": "tab:cyan", "HEC": "tab:orange",
                  "Tile": "tab:red", "FCAL": "tab:purple"}  # fmt: skip


def _family(name: str) -> str:
    for key in ("PreSampler", "EMB", "EME", "HEC", "Tile", "FCAL"):
        if name.startswith(key):
            return "PS" if key == "PreSampler" else key
    return "PS"


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


def event_display(events: ak.Array, geometry: CaloGeometry, entry: int = 0, track_pt_min: float = 1.0) -> plt.Figure:
    """Clustered cells of one event in (eta, phi), coloured by energy; tracks at their EMB2/EME2 point."""
    one = events[entry : entry + 1]
    cells = cluster_cells(one, geometry)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    positive = cells["e"] > 0
    norm = LogNorm(vmin=0.005, vmax=max(float(cells["e"].max(initial=0.01)), 0.01))
    sc = ax.scatter(cells["eta"][positive], cells["phi"][positive], c=cells["e"][positive], s=6, cmap="viridis",
                    norm=norm, marker="s")  # fmt: skip
    fig.colorbar(sc, ax=ax, label="cell energy [GeV]")
    eta, phi = reference_points(one)
    pt = ak.to_numpy(one["trackPt"][0])
    eta, phi = ak.to_numpy(eta[0]), ak.to_numpy(phi[0])
    ok = (eta > -100) & (pt > track_pt_min)
    ax.scatter(eta[ok], phi[ok], s=30 + 4 * pt[ok], facecolors="none", edgecolors="red", linewidths=1.2,
               label=rf"tracks, $p_T > {track_pt_min:g}$ GeV (EMB2 / EME2 point)")  # fmt: skip
    ax.set_xlabel(r"$\eta$")
    ax.set_ylabel(r"$\phi$")
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-np.pi, np.pi)
    ax.legend(loc="upper right", fontsize="small")
    n_cl = int(one["nCluster"][0])
    title = f"event {int(one['eventNumber'][0])}: {n_cl} topo-clusters, {len(cells['e'])} cells"
    ax.set_title(title, fontsize="medium")
    return fig


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


def response_resolution(results: dict[str, dict], fits: dict[str, dict]) -> plt.Figure:
    """Response <E_reco>/E and resolution sigma/E versus E, with the fitted a/sqrt(E) (+) b curves."""
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.geomspace(1, 300, 200)
    for (label, res), colour in zip(results.items(), ("tab:blue", "tab:red", "tab:green", "tab:purple"), strict=False):
        e = np.asarray(res["energy"])
        ax_r.errorbar(e, res["response"], yerr=res["response_err"], fmt="o", color=colour, label=label)
        ax_s.errorbar(e, res["resolution"], yerr=res["resolution_err"], fmt="o", color=colour, label=label)
        fit = fits[label]
        curve = np.sqrt((fit["a"] / np.sqrt(grid)) ** 2 + fit["b"] ** 2 + (fit.get("c", 0.0) / grid) ** 2)
        curve = curve[grid <= 2 * float(np.max(res["energy"]))]
        ax_s.plot(grid[: len(curve)], curve, color=colour, lw=1,
                  label=rf"fit: {100 * fit['a']:.0f}%$/\sqrt{{E}} \oplus$ {100 * fit['b']:.1f}%")  # fmt: skip
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


def cluster_and_noise(events: ak.Array, geometry: CaloGeometry) -> plt.Figure:
    """Cells per cluster, and the written cells' significance E / sigma_noise next to a Gaussian noise model."""
    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
    n_cells = ak.to_numpy(ak.flatten(events["cluster_nCells"]))
    ax_n.hist(n_cells, bins=np.geomspace(1, max(n_cells.max(initial=2), 2), 40), histtype="step", lw=1.5)
    ax_n.set_xscale("log")
    ax_n.set_xlabel("cells per topo-cluster (cluster_nCells)")
    ax_n.set_ylabel("clusters")
    cells = cluster_cells(events, geometry)
    significance = cells["e"] / cells["sigma"]
    bins = np.linspace(-2, 30, 65)
    ax_s.hist(significance, bins=bins, histtype="step", lw=1.5, label="written cluster cells")
    ax_s.axvline(4, color="red", ls="--", lw=1, label=r"seed $4\sigma$")
    ax_s.axvline(2, color="orange", ls="--", lw=1, label=r"growth $2\sigma$")
    ax_s.set_yscale("log")
    ax_s.set_xlabel(r"cell significance $E / \sigma_\mathrm{noise}$")
    ax_s.set_ylabel("cells")
    ax_s.legend(fontsize="small")
    return fig


def noise_by_sampling(geometry: CaloGeometry) -> plt.Figure:
    """Median and range of the per-cell electronic noise sigma, per sampling (MeV, log scale)."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    data = [geometry.sigma[geometry.sampling == s] for s in range(len(SAMPLING_NAMES))]
    ax.boxplot([d if len(d) else [np.nan] for d in data], whis=(0, 100), showfliers=False)
    ax.set_xticks(np.arange(1, len(SAMPLING_NAMES) + 1), SAMPLING_NAMES, rotation=70, fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel(r"cell noise $\sigma$ [MeV]")
    return fig
