"""Figures of the ingestion notebooks (01, 02): sample sizes, one sample in (eta, phi), label distributions.

Inputs are track-centred samples (the parquet schema of :mod:`jetcloud.samples`) or the point-cloud arrays of
:mod:`jetcloud.pointcloud`; every function returns a matplotlib figure for :func:`jetcloud.plots.save`.
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

#: The original report version's hard-coded point count (jetpointnet-reference.md section 3).
ORIGINAL_LENGTH = 859


def _eta_phi(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arcsinh(z / np.hypot(x, y)), np.arctan2(y, x)


def length_distributions(lengths: Mapping[str, np.ndarray], chosen: int | None = None) -> plt.Figure:
    """Histogram of sample lengths (points per sample) per split, with the chosen and the original length."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    top = max(int(max((v.max(initial=1) for v in lengths.values()), default=1)), ORIGINAL_LENGTH) + 1
    bins = np.linspace(0, top, 60)
    for name, values in lengths.items():
        ax.hist(values, bins=bins, histtype="step", lw=1.5, density=True, label=f"{name} ({len(values)})")
    if chosen is not None:
        ax.axvline(chosen, color="black", ls="--", lw=1.2, label=f"chosen length {chosen}")
    ax.axvline(ORIGINAL_LENGTH, color="gray", ls=":", lw=1.2, label=f"original, hard-coded {ORIGINAL_LENGTH}")
    ax.set_xlabel("points per sample")
    ax.set_ylabel("fraction of samples")
    ax.legend(fontsize="small")
    return fig


def sample_display(sample: ak.Record | ak.Array) -> plt.Figure:
    """One track-centred sample in (eta, phi): cells coloured by energy (left) and by label (right).

    Crosses mark the focused track's layer intersections, circles those of the other tracks in the cone.
    """
    cells = sample["cells"]
    eta, phi = ak.to_numpy(cells["eta"]), ak.to_numpy(cells["phi"])
    ref_phi = float(sample["trackPhi"])
    dphi = np.mod(phi - ref_phi + np.pi, 2 * np.pi) - np.pi
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    energy = np.clip(ak.to_numpy(cells["E"]), 1e-3, None)
    panels = (
        (energy, "cell energy [GeV]", dict(cmap="viridis", norm=LogNorm(vmin=energy.min(), vmax=energy.max()))),
        (ak.to_numpy(cells["frac_label"]), "fraction of truth energy from the focused particle",
         dict(cmap="coolwarm", vmin=0, vmax=1)),
    )  # fmt: skip
    for ax, (values, label, style) in zip(axes, panels, strict=True):
        sc = ax.scatter(eta, dphi, c=values, s=18, marker="s", **style)
        fig.colorbar(sc, ax=ax, label=label)
        for points, marker, colour, name in (
            (sample["track_points"], "x", "red", "focused track"),
            (sample["other_track_points"], "o", "black", "other tracks"),
        ):
            if len(points):
                p_eta, p_phi = _eta_phi(*(ak.to_numpy(points[c]).astype(np.float64) for c in ("X", "Y", "Z")))
                p_dphi = np.mod(p_phi - ref_phi + np.pi, 2 * np.pi) - np.pi
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


def label_distributions(samples: ak.Array) -> plt.Figure:
    """Per-cell fraction labels, and per-track focused truth energy against the track momentum scale."""
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(11, 4.2))
    cells = samples["cells"]
    frac = ak.to_numpy(ak.flatten(cells["frac_label"]))
    truth = ak.to_numpy(ak.flatten(cells["truth_energy"]))
    has_truth = truth > 0
    ax_f.hist(frac[has_truth], bins=np.linspace(0, 1, 41), histtype="step", lw=1.5)
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


def point_types(feats: np.ndarray, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The point type (-1 padding, 0 cell, 1 focused track, 2 other track) of every row of ``feats [..., F]``.

    Works for the ``type`` column and for the one-hot columns of :mod:`jetcloud.pointcloud`.
    """
    features = list(features)
    if "type" in features:
        return np.rint(feats[..., features.index("type")]).astype(np.int8)
    columns = [features.index(f"is_{name}") for name in ("padding", "cell", "focus_track", "other_track")]
    return (np.argmax(feats[..., columns], axis=-1) - 1).astype(np.int8)


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
    ax_l.scatter(index[~valid & (types >= 0)], labels[~valid & (types >= 0)], s=10, color="lightgray",
                 label="masked (track points)")  # fmt: skip
    n_pad = int(np.count_nonzero(types == -1))
    for ax in (ax_e, ax_l):
        if n_pad:
            ax.axvspan(len(types) - n_pad - 0.5, len(types) - 0.5, color="0.9", zorder=0,
                       label=f"padding ({n_pad}, label -1)" if ax is ax_e else None)  # fmt: skip
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
    ax_f.hist(frac[valid & (truth > 0)], bins=np.linspace(0, 1, 41), histtype="step", lw=1.5)
    ax_f.set_yscale("log")
    ax_f.set_xlabel("frac_labels (cells with truth energy)")
    ax_f.set_ylabel("cells")
    positive = np.concatenate([focus[valid & (focus > 0)], total[valid & (total > 0)]])
    if positive.size:
        bins = np.geomspace(positive.min(), positive.max() * 1.01, 50)
        ax_e.hist(focus[valid & (focus > 0)], bins=bins, histtype="step", lw=1.5, label="focus_labels")
        ax_e.hist(total[valid & (total > 0)], bins=bins, histtype="step", lw=1.5, ls="--",
                  label="tot_labels (original Total_Label)")  # fmt: skip
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
    ax_k.hist([ratio[~truncated], ratio[truncated]], bins=np.linspace(-0.0125, 1.2125, 50), histtype="step", lw=1.5,
              label=[f"not truncated ({(~truncated).sum()})", f"truncated ({truncated.sum()})"])  # fmt: skip
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
