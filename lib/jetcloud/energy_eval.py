"""Evaluation of per-cell energy predictions (notebook 04): per-track sums, tables and figures.

A *method* is anything that predicts the focused particle's true energy in every cell of the padded point
clouds of :mod:`jetcloud.pointcloud` (an ``[N, L]`` array in the arrays' energy unit): the particle-flow
baseline (:mod:`jetcloud.baselines`), JetPointNet and its attention variant. Everything here compares methods
on the same test arrays:

- :func:`track_table`: per track, the summed prediction and truth over the cells, the response, pT and eta;
- :func:`method_summary`: the headline numbers of one method (median response, sigma68, cell MAE, the original
  percentage error and the energy-weighted accuracy);
- figures: response distributions, response and resolution versus pT and eta, the percentage error against the
  true energy (why the original metric blows up), and an event display of one sample per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from jetcloud import baselines, metrics
from jetcloud.pointcloud import ATLAS_FEATURES
from jetcloud.sample_plots import point_types

#: Track-pT and |eta| bin edges of the binned response (pT in GeV).
PT_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 100.0)
ABSETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
#: Column of the cell energy in ``feats`` (the same for the 6- and the 9-feature layout).
ENERGY_COLUMN = ATLAS_FEATURES.index("energy")
#: Tracks with less true energy than this (GeV) in the cone are excluded from response and resolution.
MIN_TRUE_GEV = 0.1


def cell_mask(arrays: Mapping[str, np.ndarray], label: str = "focus_labels") -> np.ndarray:
    """Cells of the point clouds (labels are -1 on track points and padding)."""
    return np.asarray(arrays[label]) != -1


def track_table(pred: np.ndarray, arrays: Mapping[str, np.ndarray], unit_per_gev: float) -> dict[str, np.ndarray]:
    """Per track: ``e_pred``, ``e_true`` (GeV, summed over cells), ``response``, ``pt`` (GeV), ``eta``.

    ``pred`` is ``[N, L]`` in the arrays' unit (``unit_per_gev`` units per GeV); predictions on masked points
    are ignored. ``response`` is NaN where ``e_true`` is below :data:`MIN_TRUE_GEV`.
    """
    cells = cell_mask(arrays)
    pred = np.asarray(pred, np.float64)
    if pred.shape != cells.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match the point clouds {cells.shape}")
    e_pred = np.where(cells, pred, 0.0).sum(axis=1) / unit_per_gev
    e_true = np.where(cells, np.asarray(arrays["focus_labels"], np.float64), 0.0).sum(axis=1) / unit_per_gev
    with np.errstate(divide="ignore", invalid="ignore"):
        response = np.where(e_true >= MIN_TRUE_GEV, e_pred / e_true, np.nan)
    return {
        "e_pred": e_pred,
        "e_true": e_true,
        "response": response,
        "pt": np.asarray(arrays["track_pt"], np.float64) / unit_per_gev,
        "eta": np.asarray(arrays["track_eta"], np.float64),
    }


def method_summary(pred: np.ndarray, arrays: Mapping[str, np.ndarray], unit_per_gev: float) -> dict[str, float]:
    """Headline numbers of one method on the test arrays (energies in GeV)."""
    tab = track_table(pred, arrays, unit_per_gev)
    cells = cell_mask(arrays)
    pred = np.asarray(pred, np.float64)
    truth = np.asarray(arrays["focus_labels"], np.float64)
    median, sigma = metrics.median_and_sigma68(tab["response"], relative=True)
    # the original's percentage error uses Total_Label sums; here against the focused energy, per sample
    pe = metrics.percentage_error(tab["e_pred"], tab["e_true"])
    cell_e = np.asarray(arrays["feats"])[..., ENERGY_COLUMN] if "feats" in arrays else None
    with np.errstate(divide="ignore", invalid="ignore"):
        pred_frac = np.where(cells & (cell_e > 0), pred / cell_e, 0.0) if cell_e is not None else None
    acc = (
        metrics.energy_weighted_accuracy(pred_frac, arrays["frac_labels"], arrays["tot_truth_e"], cells)
        if pred_frac is not None
        else np.full(len(pred), np.nan)
    )
    return {
        "tracks": int(np.isfinite(tab["response"]).sum()),  # an int: summary_table prints it as a count
        "median_response": median,
        "sigma68": sigma,
        "cell_mae_gev": float(np.abs(pred - truth)[cells].mean() / unit_per_gev) if cells.any() else float("nan"),
        "median_percentage_error": float(np.nanmedian(pe[np.isfinite(pe)])) if np.isfinite(pe).any() else np.nan,
        "mean_percentage_error": float(np.mean(pe[np.isfinite(pe)])) if np.isfinite(pe).any() else np.nan,
        "energy_weighted_accuracy": float(np.mean(acc)),
    }


def response_distributions(tables: Mapping[str, Mapping[str, np.ndarray]]) -> plt.Figure:
    """Histograms of E_pred / E_true per method (log y), with median and sigma68 in the legend."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    bins = np.linspace(0, 2.5, 76)
    for name, tab in tables.items():
        r = tab["response"][np.isfinite(tab["response"])]
        med, sig = metrics.median_and_sigma68(r, relative=True)
        ax.hist(np.clip(r, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.8,
                label=f"{name}: median {med:.3f}, $\\sigma_{{68}}$/median {sig:.3f}")  # fmt: skip
    ax.axvline(1.0, color="gray", lw=1, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel(r"$E_\mathrm{pred} / E_\mathrm{true}$ (per track, cells summed)")
    ax.set_ylabel("tracks")
    ax.legend(fontsize="x-small", loc="upper right")
    return fig


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


def event_display(
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
    dphi = np.mod(phi - ref_phi + np.pi, 2 * np.pi) - np.pi
    cells = kind == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        truth = np.where(energy > 0, np.asarray(arrays["focus_labels"][index]) / energy, 0.0)
        panels = {"truth": truth} | {
            name: np.where(energy > 0, np.asarray(p[index]) / energy, 0.0) for name, p in predictions.items()
        }
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1, 4.2), sharey=True)
    for ax, (name, frac) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        sc = ax.scatter(eta[cells], dphi[cells], c=np.clip(frac[cells], 0, 1.5), cmap="viridis", vmin=0, vmax=1.5,
                        s=14 + 60 * np.sqrt(np.clip(energy[cells], 0, None) / max(energy[cells].max(), 1e-9)),
                        marker="s")  # fmt: skip
        ax.scatter(eta[focus], dphi[focus], marker="x", color="red", s=40, label="focused track")
        other = kind == 2
        ax.scatter(eta[other], dphi[other], marker="o", facecolors="none", edgecolors="black", s=30,
                   label="other tracks")  # fmt: skip
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


#: Columns of :func:`summary_table` (keys of :func:`method_summary`).
SUMMARY_COLUMNS = ("tracks", "median_response", "sigma68", "cell_mae_gev", "median_percentage_error",
                   "mean_percentage_error", "energy_weighted_accuracy")  # fmt: skip


def summary_table(summary: Mapping[str, Mapping[str, float]], columns: Sequence[str] = SUMMARY_COLUMNS) -> str:
    """A markdown table, one row per method (3 significant digits; counts as integers)."""
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, s in summary.items():
        cells = (str(s[c]) if isinstance(s[c], int) else f"{s[c]:.3g}" for c in columns)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_inputs(arrays: Mapping[str, np.ndarray], features: Sequence[str], unit_per_gev: float) -> dict[str, Any]:
    """The per-cell and per-track inputs of :mod:`jetcloud.baselines` from point-cloud arrays.

    ``energy`` and ``distance`` [N, L] from ``feats``, ``is_cell`` (labels != -1), track momentum ``p_gev``
    (pT cosh eta) and ``eta``.
    """
    feats = np.asarray(arrays["feats"])
    return {
        "energy": feats[..., list(features).index("energy")],
        "distance": feats[..., list(features).index("distance_to_track")],
        "is_cell": cell_mask(arrays),
        "p_gev": np.asarray(arrays["track_pt"], np.float64) / unit_per_gev * np.cosh(arrays["track_eta"]),
        "eta": np.asarray(arrays["track_eta"], np.float64),
    }


def particle_flow_baseline(
    train: Mapping[str, np.ndarray],
    test: Mapping[str, np.ndarray],
    features: Sequence[str],
    unit_per_gev: float,
    *,
    ring_width: float = 50.0,
    min_tracks: int = 10,
) -> tuple[baselines.EoverPTemplates, np.ndarray]:
    """Templates measured on ``train`` and the baseline's per-cell prediction on ``test`` ([N, L])."""
    a = baseline_inputs(train, features, unit_per_gev)
    templates = baselines.measure_templates(a["energy"], train["frac_labels"], train["focus_labels"], a["is_cell"],
                                            a["p_gev"], a["eta"], min_tracks=min_tracks,
                                            unit_per_gev=unit_per_gev)  # fmt: skip
    b = baseline_inputs(test, features, unit_per_gev)
    pred = baselines.predict_cells(b["energy"], b["distance"], b["is_cell"], b["p_gev"], b["eta"], templates,
                                   unit_per_gev=unit_per_gev, ring_width=ring_width)  # fmt: skip
    return templates, pred
