"""Evaluation of per-cell energy predictions (notebook 04): per-track sums, tables and figures.

A *method* is anything that predicts the focused particle's true energy in every cell of the padded point
clouds of :mod:`jetcloud.atlas.pointcloud` (an ``[N, L]`` array in the arrays' energy unit): the particle-flow
baseline (:mod:`jetcloud.atlas.baselines`), JetPointNet and its attention variant. Everything here compares methods
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

import numpy as np

from jetcloud import metrics
from jetcloud.atlas import baselines
from jetcloud.atlas.pointcloud import ATLAS_FEATURES

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


#: Columns of :func:`summary_table` (keys of :func:`method_summary`).
SUMMARY_COLUMNS = (
    "tracks",
    "median_response",
    "sigma68",
    "cell_mae_gev",
    "median_percentage_error",
    "mean_percentage_error",
    "energy_weighted_accuracy",
)


def summary_table(summary: Mapping[str, Mapping[str, float]], columns: Sequence[str] = SUMMARY_COLUMNS) -> str:
    """A markdown table, one row per method (3 significant digits; counts as integers)."""
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, s in summary.items():
        cells = (str(s[c]) if isinstance(s[c], int) else f"{s[c]:.3g}" for c in columns)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_inputs(arrays: Mapping[str, np.ndarray], features: Sequence[str], unit_per_gev: float) -> dict[str, Any]:
    """The per-cell and per-track inputs of :mod:`jetcloud.atlas.baselines` from point-cloud arrays.

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
    templates = baselines.measure_templates(
        a["energy"],
        train["frac_labels"],
        train["focus_labels"],
        a["is_cell"],
        a["p_gev"],
        a["eta"],
        min_tracks=min_tracks,
        unit_per_gev=unit_per_gev,
    )
    b = baseline_inputs(test, features, unit_per_gev)
    pred = baselines.predict_cells(
        b["energy"],
        b["distance"],
        b["is_cell"],
        b["p_gev"],
        b["eta"],
        templates,
        unit_per_gev=unit_per_gev,
        ring_width=ring_width,
    )
    return templates, pred
