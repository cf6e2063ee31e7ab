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

**Method comparison per track, on two scales** (notebook 04's headline). Every *row* predicts, per test track, the
energy of the focused particle on two scales (GeV): the **truth scale** (``focus_truth_energy``, what the particle
deposited) and the **EM scale** (``sum frac_label x E_cell``, the reconstructed cell energy attributable to it,
what particle flow removes). :func:`scale_targets` gives both targets, :func:`response` the ratio. Rows:
:func:`template_row` (``<E/p>(p, eta) x p``, no cells), :func:`classical_row` (the ring subtraction),
:func:`trees_row` (scikit-learn gradient-boosted trees on track-level observables, :func:`track_features`) and
:func:`network_row` (a run of notebook 03). :func:`compare_methods` bootstraps median and sigma68 / median per
method overall, in momentum bins and in p x |eta| bins (paired: all methods on the same resampled tracks);
:func:`goals` judges the targets of notebook 04 with those intervals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jetcloud import metrics
from jetcloud.atlas import baselines
from jetcloud.atlas.layers import (
    EXTRAPOLATION_ETA_RANGE,
    EXTRAPOLATION_FIXED_Z,
    EXTRAPOLATION_POSITION_MM,
    EXTRAPOLATION_SAMPLINGS,
    SAMPLING_INDEX,
)
from jetcloud.atlas.pointcloud import ATLAS_FEATURES, point_types

#: Track-pT and |eta| bin edges of the binned response (pT in GeV).
PT_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 100.0)
ABSETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
#: Column of the cell energy in ``feats`` (the same for the 6- and the 9-feature layout).
ENERGY_COLUMN = ATLAS_FEATURES.index("energy")
#: Tracks with less true energy than this (GeV) in the cone are excluded from response and resolution.
MIN_TRUE_GEV = 0.1
#: The two energy scales of the comparison: the focused particle's true deposit and its EM-scale cell energy.
SCALES = ("truth", "em")
#: Track-momentum bins (GeV) and |eta| bins of the method comparison (p x |eta| table).
P_EDGES_GEV = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 1000.0)
COMPARE_ABSETA_EDGES = (0.0, 0.8, 1.5, 2.5)
#: Rings of ``distance_to_track`` (mm) whose energies (over p) are features of the boosted trees.
RING_EDGES_MM = (0.0, 25.0, 50.0, 100.0, 200.0, 400.0, np.inf)
#: Calorimeter depth of every CaloSampling (presampler, EM 1-3, hadronic 1-3; FCAL0 counts as EM1).
DEPTH_NAMES = ("presampler", "em1", "em2", "em3", "had1", "had2", "had3")
DEPTH_OF_SAMPLING = np.array([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 6, 4, 5, 6, 4, 5, 6, 4, 5, 6, 1, 4, 5], np.int64)


def cell_mask(arrays: Mapping[str, np.ndarray], label: str = "focus_labels") -> np.ndarray:
    """Cells of the point clouds (labels are -1 on track points and padding)."""
    return np.asarray(arrays[label]) != -1


def cell_targets(arrays: Mapping[str, np.ndarray], scale: str = "truth") -> np.ndarray:
    """Per-cell target ``[N, L]`` in the arrays' unit: ``focus_labels`` (truth) or ``frac_labels x E`` (EM scale)."""
    if scale == "truth":
        return np.asarray(arrays["focus_labels"], np.float64)
    if scale == "em":
        energy = np.asarray(arrays["feats"])[..., ENERGY_COLUMN].astype(np.float64)
        return energy * np.clip(np.asarray(arrays["frac_labels"], np.float64), 0, 1)
    raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")


def track_table(
    pred: np.ndarray, arrays: Mapping[str, np.ndarray], unit_per_gev: float, scale: str = "truth"
) -> dict[str, np.ndarray]:
    """Per track: ``e_pred``, ``e_true`` (GeV, summed over cells), ``response``, ``pt`` (GeV), ``eta``.

    ``pred`` is ``[N, L]`` in the arrays' unit (``unit_per_gev`` units per GeV) on the given ``scale`` (its
    truth is :func:`cell_targets`); predictions on masked points are ignored. ``response`` is NaN where
    ``e_true`` is below :data:`MIN_TRUE_GEV`.
    """
    cells = cell_mask(arrays)
    pred = np.asarray(pred, np.float64)
    if pred.shape != cells.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match the point clouds {cells.shape}")
    e_pred = np.where(cells, pred, 0.0).sum(axis=1) / unit_per_gev
    e_true = np.where(cells, cell_targets(arrays, scale), 0.0).sum(axis=1) / unit_per_gev
    return {
        "e_pred": e_pred,
        "e_true": e_true,
        "response": response(e_pred, e_true),
        "pt": np.asarray(arrays["track_pt"], np.float64) / unit_per_gev,
        "eta": np.asarray(arrays["track_eta"], np.float64),
    }


def predicted_fraction(pred: np.ndarray, arrays: Mapping[str, np.ndarray], scale: str = "truth") -> np.ndarray:
    """The fraction of each cell's energy a prediction gives the focused particle, on the prediction's own scale.

    A truth-scale prediction is divided by the cell's total truth energy (``tot_truth_e``), an EM-scale one by
    the cell's energy: both are then comparable with ``frac_labels`` (``focus / total truth``). 0 where the
    denominator is not positive.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    denom = (
        np.asarray(arrays["tot_truth_e"], np.float64)
        if scale == "truth"
        else np.asarray(arrays["feats"])[..., ENERGY_COLUMN].astype(np.float64)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cell_mask(arrays) & (denom > 0), np.asarray(pred, np.float64) / denom, 0.0)


def method_summary(
    pred: np.ndarray, arrays: Mapping[str, np.ndarray], unit_per_gev: float, scale: str = "truth"
) -> dict[str, float]:
    """Headline numbers of one per-cell prediction on the test arrays (energies in GeV) on its ``scale``.

    The energy-weighted accuracy compares like with like: the predicted fraction of :func:`predicted_fraction`
    against ``frac_labels`` at 0.5 (a truth-scale prediction over the truth energy, never over the EM-scale cell
    energy).
    """
    tab = track_table(pred, arrays, unit_per_gev, scale)
    cells = cell_mask(arrays)
    pred = np.asarray(pred, np.float64)
    truth = cell_targets(arrays, scale)
    median, sigma = metrics.median_and_sigma68(tab["response"], relative=True)
    # the original's percentage error uses Total_Label sums; here against the focused energy, per sample
    pe = metrics.percentage_error(tab["e_pred"], tab["e_true"])
    acc = metrics.energy_weighted_accuracy(
        predicted_fraction(pred, arrays, scale), arrays["frac_labels"], arrays["tot_truth_e"], cells
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


def track_momentum(arrays: Mapping[str, np.ndarray], unit_per_gev: float) -> np.ndarray:
    """Track momentum |p| in GeV: ``track_p`` when the arrays have it, else ``track_pt cosh(track_eta)``."""
    if "track_p" in arrays:
        return np.asarray(arrays["track_p"], np.float64)
    eta = np.asarray(arrays["track_eta"], np.float64)
    return np.asarray(arrays["track_pt"], np.float64) / unit_per_gev * np.cosh(eta)


def distance_scale_mm(meta: Mapping[str, Any]) -> float:
    """Millimetres per unit of the arrays' ``distance_to_track`` (and x, y, z): 1 for raw coordinates, the
    ``coordinate_scale_mm`` of ``point_cloud_meta.json`` for centred ones."""
    scale = meta.get("coordinate_scale_mm") if meta.get("coordinates", "raw") == "centred" else None
    return float(scale) if scale else 1.0


def baseline_inputs(arrays: Mapping[str, np.ndarray], features: Sequence[str], unit_per_gev: float) -> dict[str, Any]:
    """The per-cell and per-track inputs of :mod:`jetcloud.atlas.baselines` from point-cloud arrays.

    ``energy`` and ``distance`` [N, L] from ``feats`` (distance in the arrays' own unit), ``is_cell`` (labels
    != -1), track momentum ``p_gev`` (:func:`track_momentum`) and ``eta``.
    """
    feats = np.asarray(arrays["feats"])
    return {
        "energy": feats[..., list(features).index("energy")],
        "distance": feats[..., list(features).index("distance_to_track")],
        "is_cell": cell_mask(arrays),
        "p_gev": track_momentum(arrays, unit_per_gev),
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
    mm_per_unit: float = 1.0,
) -> tuple[baselines.EoverPTemplates, np.ndarray]:
    """Templates measured on ``train`` and the baseline's truth-scale per-cell prediction on ``test`` ([N, L]).

    ``ring_width`` is in mm; ``mm_per_unit`` is the size of one unit of the arrays' distances
    (:func:`distance_scale_mm`: 1000 for centred point clouds), so the rings are ``ring_width`` mm wide whatever
    the coordinates.
    """
    if not mm_per_unit > 0:
        raise ValueError(f"mm_per_unit must be positive, got {mm_per_unit}")
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
        ring_width=ring_width / mm_per_unit,
    )
    return templates, pred


# --------------------------------------------------------------------------------------------------------------
# per-track rows on two scales
# --------------------------------------------------------------------------------------------------------------


def response(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``predicted / target`` per track (GeV), NaN where the target is below :data:`MIN_TRUE_GEV`."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(target >= MIN_TRUE_GEV, predicted / target, np.nan)


def scale_targets(arrays: Mapping[str, np.ndarray], unit_per_gev: float) -> dict[str, np.ndarray]:
    """Per track, in GeV: ``truth`` = ``focus_truth_energy`` and ``em`` = sum over cells of ``frac_labels x E``."""
    em = np.where(cell_mask(arrays), cell_targets(arrays, "em"), 0.0).sum(axis=1)
    return {
        "truth": np.asarray(arrays["focus_truth_energy"], np.float64) / unit_per_gev,
        "em": em / unit_per_gev,
    }


def template_row(
    templates: baselines.EoverPTemplates, arrays: Mapping[str, np.ndarray], unit_per_gev: float
) -> dict[str, np.ndarray]:
    """The momentum-only prediction (no cells at all): ``<E/p>(p, eta) x p`` (EM), times ``calib`` (truth)."""
    p = track_momentum(arrays, unit_per_gev)
    eta = np.asarray(arrays["track_eta"], np.float64)
    em = templates.expected_fraction(p, eta) * p
    return {"truth": em * templates.calibration(p, eta), "em": em}


def classical_row(
    templates: baselines.EoverPTemplates, cell_pred: np.ndarray, arrays: Mapping[str, np.ndarray], unit_per_gev: float
) -> dict[str, np.ndarray]:
    """Per-track sums of the ring subtraction (truth-scale ``cell_pred`` [N, L] of :func:`particle_flow_baseline`);
    the EM scale is the removed energy itself (the truth-scale sum over the track's calibration factor)."""
    p = track_momentum(arrays, unit_per_gev)
    truth = np.where(cell_mask(arrays), np.asarray(cell_pred, np.float64), 0.0).sum(axis=1) / unit_per_gev
    return {"truth": truth, "em": truth / templates.calibration(p, np.asarray(arrays["track_eta"], np.float64))}


def _sampling_from_position(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """CaloSampling of cells at raw positions (mm): the nearest reference surface (radius for a barrel layer,
    |z| for an end-cap disk) among those covering the cell's |eta| (any surface when none covers it)."""
    r, az = np.hypot(x, y), np.abs(z)
    abseta = np.abs(np.arcsinh(z / np.maximum(r, 1e-9)))
    best = np.full(x.shape, np.inf)
    out = np.full(x.shape, -1, np.int16)
    for k, name in enumerate(EXTRAPOLATION_SAMPLINGS):  # a loop over the 21 surfaces, vectorized over cells
        lo, hi = EXTRAPOLATION_ETA_RANGE[k]
        dist = np.abs((az if EXTRAPOLATION_FIXED_Z[k] else r) - EXTRAPOLATION_POSITION_MM[k])
        dist = dist + np.where((abseta >= lo) & (abseta < hi), 0.0, 1e6)
        closer = dist < best
        best = np.where(closer, dist, best)
        out[closer] = SAMPLING_INDEX[name]
    return out


def cell_sampling(arrays: Mapping[str, np.ndarray], features: Sequence[str], mm_per_unit: float = 1.0) -> np.ndarray:
    """CaloSampling number of every point ``[N, L]`` (-1 where not a cell or unknown).

    The arrays' ``sampling`` when present; else, for raw coordinates (``mm_per_unit == 1``), from the cell
    position (:func:`_sampling_from_position`); else (centred coordinates: no absolute position) unknown.
    """
    cells = cell_mask(arrays)
    if "sampling" in arrays:
        return np.where(cells, np.asarray(arrays["sampling"], np.int16), -1)
    if mm_per_unit != 1.0:
        return np.full(cells.shape, -1, np.int16)
    feats = np.asarray(arrays["feats"])
    x, y, z = (feats[..., list(features).index(c)].astype(np.float64) for c in ("x", "y", "z"))
    out = np.full(cells.shape, -1, np.int16)
    out[cells] = _sampling_from_position(x[cells], y[cells], z[cells])
    return out


def _per_sample_sums(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """``[N, n_groups]`` sums of ``values [N, L]`` by ``group [N, L]`` (entries with group < 0 are dropped)."""
    n = values.shape[0]
    keep = group >= 0
    flat = (np.arange(n)[:, None] * n_groups + group)[keep]
    return np.bincount(flat, weights=values[keep], minlength=n * n_groups).reshape(n, n_groups)


def track_features(
    arrays: Mapping[str, np.ndarray], features: Sequence[str], unit_per_gev: float, mm_per_unit: float = 1.0
) -> tuple[np.ndarray, list[str]]:
    """Track-level observables ``[N, F]`` of the boosted trees and their names.

    ``log p``, ``|eta|``, the cell energy (over p) in rings of ``distance_to_track`` (:data:`RING_EDGES_MM`) and
    by calorimeter depth (:data:`DEPTH_NAMES`, from :func:`cell_sampling`), the total cone energy over p, the
    number of cells, the number of other tracks in the cone (distinct pT values of the other-track points) and
    their largest pT (GeV).
    """
    f = list(features)
    feats = np.asarray(arrays["feats"])
    cells = cell_mask(arrays)
    p = np.maximum(track_momentum(arrays, unit_per_gev), 1e-6)
    energy = np.where(cells, feats[..., f.index("energy")].astype(np.float64) / unit_per_gev, 0.0)
    dist_mm = feats[..., f.index("distance_to_track")].astype(np.float64) * mm_per_unit
    ring = np.where(cells, np.digitize(dist_mm, RING_EDGES_MM[1:-1]), -1)
    rings = _per_sample_sums(energy, ring, len(RING_EDGES_MM) - 1) / p[:, None]
    sampling = cell_sampling(arrays, features, mm_per_unit)
    depth = np.where(sampling >= 0, DEPTH_OF_SAMPLING[np.clip(sampling, 0, None)], -1)
    depths = _per_sample_sums(energy, depth, len(DEPTH_NAMES)) / p[:, None]
    other_pt = np.sort(np.where(point_types(feats, f) == 2, feats[..., f.index("energy")] / unit_per_gev, 0), axis=1)
    distinct = (other_pt > 0) & (np.diff(other_pt, axis=1, prepend=0.0) != 0)
    columns = [np.log(p), np.abs(np.asarray(arrays["track_eta"], np.float64)), *rings.T, *depths.T]
    columns += [energy.sum(axis=1) / p, cells.sum(axis=1), distinct.sum(axis=1), other_pt[:, -1]]
    edges = RING_EDGES_MM
    names = ["log_p", "abs_eta", *(f"ring_{lo:g}_{hi:g}mm_over_p" for lo, hi in zip(edges, edges[1:], strict=False))]
    names += [f"{d}_over_p" for d in DEPTH_NAMES] + ["cone_energy_over_p", "n_cells", "n_other_tracks", "max_other_pt"]
    return np.column_stack(columns).astype(np.float64), names


def trees_row(
    train: Mapping[str, np.ndarray],
    test: Mapping[str, np.ndarray],
    features: Sequence[str],
    unit_per_gev: float,
    *,
    mm_per_unit: float = 1.0,
    seed: int = 0,
    max_iter: int = 500,
    n_threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Gradient-boosted trees (scikit-learn ``HistGradientBoostingRegressor``), one per scale, trained on the
    training tracks' :func:`track_features` to predict ``E / p`` with the absolute-error loss (the conditional
    median, so the median response is near 1); returns the test tracks' predicted energies (GeV).

    Early stopping on a seeded 10% of the training tracks; deterministic for a seed. ``n_threads`` caps the
    OpenMP threads (1 by default: the fits take seconds, and on a shared machine idle-spinning threads made them
    20x slower; None = scikit-learn's default).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    x_train, _ = track_features(train, features, unit_per_gev, mm_per_unit)
    x_test, _ = track_features(test, features, unit_per_gev, mm_per_unit)
    p_train, p_test = track_momentum(train, unit_per_gev), track_momentum(test, unit_per_gev)
    out = {}
    for scale, target in scale_targets(train, unit_per_gev).items():
        model = HistGradientBoostingRegressor(
            loss="absolute_error", max_iter=max_iter, early_stopping=True, n_iter_no_change=20, random_state=seed
        )
        with threadpool_limits(n_threads):
            model.fit(x_train, target / np.maximum(p_train, 1e-6))
            out[scale] = model.predict(x_test) * p_test
    return out


# --------------------------------------------------------------------------------------------------------------
# network runs of notebook 03
# --------------------------------------------------------------------------------------------------------------

#: File of a run's test predictions (contract of notebook 03): eventNumber, trackID, cell_energy, track_energy.
PREDICTIONS_FILE = "predictions_test.npz"


def find_runs(runs_path: str | Path) -> list[Path]:
    """Every run directory (holding ``run.json``) under ``runs_path``, sorted by path."""
    from jetcloud.atlas.jetpointnet import RUN_FILE

    root = Path(runs_path)
    return sorted(p.parent for p in root.rglob(RUN_FILE)) if root.is_dir() else []


def align_tracks(arrays: Mapping[str, np.ndarray], event: np.ndarray, track: np.ndarray) -> np.ndarray:
    """Index into (``event``, ``track``) of every track of ``arrays`` (matched on eventNumber, trackID)."""
    event, track = np.asarray(event, np.int64), np.asarray(track, np.int64)
    width = int(max(track.max(initial=0), np.max(arrays["trackID"], initial=0))) + 1
    keys = event * width + track
    wanted = np.asarray(arrays["eventNumber"], np.int64) * width + np.asarray(arrays["trackID"], np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], wanted), 0, len(keys) - 1)
    found = keys[order][pos] == wanted
    if not found.all():
        raise ValueError(f"{int((~found).sum())} test tracks have no prediction (eventNumber, trackID)")
    return order[pos]


def network_row(
    run_dir: str | Path, test: Mapping[str, np.ndarray], unit_per_gev: float, predict: Any = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-track energies (GeV) of one run of notebook 03 and its ``run.json`` (plus ``em_from_truth_output``).

    With :data:`PREDICTIONS_FILE` in the run: EM scale = sum of ``cell_energy`` over the cells, truth scale =
    ``track_energy``, matched to ``test`` on (eventNumber, trackID). Without it (runs that predate the file),
    ``predict(run_dir)`` must return the run's per-cell truth-scale output ``[N, L]`` in the arrays' unit; its sum
    stands for both scales (``em_from_truth_output`` True: its EM median is then not meaningful, its relative
    width is).
    """
    from jetcloud.atlas.jetpointnet import RUN_FILE

    run_dir = Path(run_dir)
    info = json.loads((run_dir / RUN_FILE).read_text())
    cells = cell_mask(test)
    if (run_dir / PREDICTIONS_FILE).is_file():
        with np.load(run_dir / PREDICTIONS_FILE) as pred:
            idx = align_tracks(test, pred["eventNumber"], pred["trackID"])
            em = np.where(cells, np.asarray(pred["cell_energy"], np.float64)[idx], 0.0).sum(axis=1)
            truth = np.asarray(pred["track_energy"], np.float64)[idx]
        return {"truth": truth, "em": em}, {**info, "em_from_truth_output": False}
    if predict is None:
        raise FileNotFoundError(f"{run_dir / PREDICTIONS_FILE} not found and no predict function given")
    total = np.where(cells, np.asarray(predict(run_dir), np.float64), 0.0).sum(axis=1) / unit_per_gev
    return {"truth": total, "em": total.copy()}, {**info, "em_from_truth_output": True}


# --------------------------------------------------------------------------------------------------------------
# the comparison: bootstrapped median and sigma68 / median, overall and binned
# --------------------------------------------------------------------------------------------------------------

#: Per-method statistics of a region of :func:`compare_methods`.
STAT_KEYS = ("median", "median_lo", "median_hi", "sigma68", "sigma68_lo", "sigma68_hi")


def _region(
    responses: Mapping[str, np.ndarray],
    select: np.ndarray,
    *,
    n_resamples: int,
    seed: Sequence[int],
    confidence: float,
    min_entries: int,
) -> dict[str, Any]:
    """Paired bootstrap of all methods on the selected tracks where every method has a finite response."""
    names = list(responses)
    r = np.stack([np.asarray(responses[k], np.float64)[select] for k in names])
    ok = np.all(np.isfinite(r), axis=0)
    n = int(ok.sum())
    if n >= max(min_entries, 1):
        point, boot = metrics.bootstrap_response(r[:, ok], n_resamples=n_resamples, seed=list(seed))
    else:
        point, boot = np.full((len(names), 2), np.nan), np.full((n_resamples, len(names), 2), np.nan)
    lo, hi = metrics.percentile_interval(boot, confidence)
    stats = {
        name: dict(zip(STAT_KEYS, (point[m, 0], lo[m, 0], hi[m, 0], point[m, 1], lo[m, 1], hi[m, 1]), strict=True))
        for m, name in enumerate(names)
    }
    return {"n": n, "methods": names, "stats": stats, "resampled": boot}


def compare_methods(
    rows: Mapping[str, Mapping[str, np.ndarray]],
    targets: Mapping[str, np.ndarray],
    p_gev: np.ndarray,
    eta: np.ndarray,
    *,
    p_edges: Sequence[float] = P_EDGES_GEV,
    abseta_edges: Sequence[float] = COMPARE_ABSETA_EDGES,
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.68,
    min_entries: int = 10,
) -> dict[str, Any]:
    """Median response and sigma68 / median of every row on each scale, with paired bootstrap intervals.

    ``rows``: method -> {scale: predicted energy per test track (GeV)}; ``targets``: {scale: target (GeV)}
    (:func:`scale_targets`). Per scale: ``overall``, ``p`` (one region per momentum bin) and ``p_eta`` (rows of
    |eta| bins per momentum bin); each region holds ``n`` (tracks), ``stats`` (method -> :data:`STAT_KEYS`, NaN
    with fewer than ``min_entries`` tracks) and ``resampled`` ``[n_resamples, methods, 2]``. Seeded: region k of
    scale s is resampled with the seed sequence ``(seed, s, k)``.
    """
    p_gev, abseta = np.asarray(p_gev, np.float64), np.abs(np.asarray(eta, np.float64))
    p_bin = np.digitize(p_gev, p_edges) - 1
    eta_bin = np.digitize(abseta, abseta_edges) - 1
    out: dict[str, Any] = {
        "p_edges": list(p_edges),
        "abseta_edges": list(abseta_edges),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "scales": {},
    }
    opts = {"n_resamples": n_resamples, "confidence": confidence, "min_entries": min_entries}
    for s, scale in enumerate(SCALES):
        responses = {name: response(row[scale], targets[scale]) for name, row in rows.items() if scale in row}
        everything = np.ones(len(p_gev), bool)
        n_p, n_eta = len(p_edges) - 1, len(abseta_edges) - 1
        out["scales"][scale] = {
            "overall": _region(responses, everything, seed=(seed, s, 0), **opts),
            "p": [_region(responses, p_bin == i, seed=(seed, s, 1 + i), **opts) for i in range(n_p)],
            "p_eta": [
                [
                    _region(responses, (p_bin == i) & (eta_bin == j), seed=(seed, s, 1 + n_p + i * n_eta + j), **opts)
                    for j in range(n_eta)
                ]
                for i in range(n_p)
            ],
        }
    return out


def sigma68_ratio(region: Mapping[str, Any], numerator: str, denominator: str, confidence: float = 0.68) -> dict:
    """``sigma68/median`` of ``numerator`` over that of ``denominator`` in a region, with its paired bootstrap
    interval (``value``, ``lo``, ``hi``)."""
    names = region["methods"]
    i, j = names.index(numerator), names.index(denominator)
    boot = region["resampled"]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = metrics.percentile_interval(boot[:, i, 1] / boot[:, j, 1], confidence)
        value = region["stats"][numerator]["sigma68"] / region["stats"][denominator]["sigma68"]
    return {"value": float(value), "lo": float(lo), "hi": float(hi)}


def comparison_record(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison without its bootstrap resamples (for the metrics JSON; NaN stays, see nbtools.nan_to_none)."""
    if isinstance(comparison, Mapping):
        return {k: comparison_record(v) for k, v in comparison.items() if k != "resampled"}
    if isinstance(comparison, list):
        return [comparison_record(v) for v in comparison]
    return comparison


def _with_interval(stats: Mapping[str, float], key: str) -> str:
    """``value [lo, hi]`` with 3 decimals, or ``-`` when not measured."""
    v, lo, hi = (float(stats[k]) for k in (key, f"{key}_lo", f"{key}_hi"))
    return "-" if not np.isfinite(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _methods(comparison: Mapping[str, Any]) -> list[str]:
    """Every method of the comparison, in first-seen order over the scales."""
    names: list[str] = []
    for scale in comparison["scales"].values():
        names += [m for m in scale["overall"]["methods"] if m not in names]
    return names


def headline_table(comparison: Mapping[str, Any]) -> str:
    """Markdown: per method, median response and sigma68 / median on both scales with their intervals."""
    scales = comparison["scales"]
    head = "| method | " + " | ".join(f"{s} median | {s} σ68/median" for s in scales) + " |"
    lines = [head, "|---" * (1 + 2 * len(scales)) + "|"]
    for name in _methods(comparison):
        cells = []
        for scale in scales.values():
            st = scale["overall"]["stats"].get(name)
            cells += ["-", "-"] if st is None else [_with_interval(st, "median"), _with_interval(st, "sigma68")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    tracks = ", ".join(f"{s}: {scale['overall']['n']}" for s, scale in scales.items())
    pct = round(100 * comparison["confidence"])
    return "\n".join(lines) + f"\n\nTest tracks per scale: {tracks}; intervals: bootstrap {pct}%."


def binned_table(comparison: Mapping[str, Any], scale: str, key: str = "sigma68") -> str:
    """Markdown: ``key`` (``sigma68`` or ``median``) with intervals per momentum bin (rows) and method (columns),
    then the same per p x |eta| bin."""
    names = _methods(comparison)
    sc = comparison["scales"][scale]
    pe, ee = comparison["p_edges"], comparison["abseta_edges"]
    lines = ["| p [GeV] | abs(eta) | tracks | " + " | ".join(names) + " |", "|---" * (3 + len(names)) + "|"]
    for i, region in enumerate(sc["p"]):
        bins = [(f"{ee[0]:g}-{ee[-1]:g}", region)] + [
            (f"{ee[j]:g}-{ee[j + 1]:g}", sub) for j, sub in enumerate(sc["p_eta"][i])
        ]
        for eta_label, reg in bins:
            cells = [_with_interval(reg["stats"][m], key) if m in reg["stats"] else "-" for m in names]
            lines.append(f"| {pe[i]:g}-{pe[i + 1]:g} | {eta_label} | {reg['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median_ok(stats: Mapping[str, float], tolerance: float) -> bool:
    return bool(stats["median_lo"] >= 1 - tolerance and stats["median_hi"] <= 1 + tolerance)


def goals(
    comparison: Mapping[str, Any],
    network: str | None,
    *,
    classical: str = "classical subtraction",
    trees: str = "boosted trees",
    min_p_gev: float = 1.0,
) -> dict[str, Any]:
    """Notebook 04's targets, each judged with the bootstrap interval (a goal is met when its whole interval is).

    ``em_scale_sigma68_ratio`` (network / classical, goal <= 0.5) and ``truth_scale_sigma68_ratio`` (goal <= 0.6)
    with ``_lo`` / ``_hi``; ``beats_trees_in_every_p_bin``: 1 if in every momentum bin with enough tracks the
    interval of the truth-scale ratio network / trees lies below 1; ``median_within_2pct_above_1gev``: 1 if in
    every momentum bin above ``min_p_gev`` the interval of the truth-scale median lies within [0.98, 1.02].
    ``network`` None (no run): the ratios are None and every goal 0.
    """
    out: dict[str, Any] = {"network": network}
    names = {"em_scale_sigma68_ratio": ("em", 0.5), "truth_scale_sigma68_ratio": ("truth", 0.6)}
    for key, (scale, limit) in names.items():
        region = comparison["scales"][scale]["overall"]
        ok = network is not None and network in region["methods"] and classical in region["methods"]
        ratio = sigma68_ratio(region, network, classical, comparison["confidence"]) if ok else None
        out[key] = None if ratio is None else ratio["value"]
        out[f"{key}_lo"], out[f"{key}_hi"] = (None, None) if ratio is None else (ratio["lo"], ratio["hi"])
        out[f"{key}_goal"] = limit
        out[f"{key}_met"] = int(ratio is not None and ratio["hi"] <= limit)
    truth = comparison["scales"]["truth"]
    measured = [
        (region, lo)
        for region, lo in zip(truth["p"], comparison["p_edges"], strict=False)
        if network in region["methods"] and np.isfinite(region["stats"][network]["sigma68"])
    ]
    conf = comparison["confidence"]
    beats = [sigma68_ratio(r, network, trees, conf)["hi"] < 1 for r, _ in measured if trees in r["stats"]]
    out["beats_trees_in_every_p_bin"] = int(bool(beats) and all(beats))
    medians = [_median_ok(r["stats"][network], 0.02) for r, lo in measured if lo >= min_p_gev]
    out["median_within_2pct_above_1gev"] = int(bool(medians) and all(medians))
    out["p_bins_judged"] = len(beats)
    return out


def pick_network(
    runs: Mapping[str, Mapping[str, Any]], default_n_train: int, preferred: str | None = None
) -> str | None:
    """The network the goals are judged on, chosen without looking at the test split: the run named ``preferred``
    (notebook 04's ``goal_network``, the default network of notebook 03) when it exists, else the run trained on
    the most samples (``n_train_samples``, ``default_n_train`` when absent), ties to the first name in sorted
    order."""
    if not runs:
        return None
    if preferred in runs:
        return preferred
    return max(sorted(runs), key=lambda name: int(runs[name].get("n_train_samples") or default_n_train))


def learning_curve(
    comparison: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], default_n_train: int, scale: str = "truth"
) -> dict[str, dict[str, list]]:
    """Per network model (``run.json`` ``model``): training samples, overall sigma68 / median and its interval
    of every run on ``scale``, sorted by training samples (``default_n_train`` for runs without the key)."""
    stats = comparison["scales"][scale]["overall"]["stats"]
    curves: dict[str, dict[str, list]] = {}
    for name, info in runs.items():
        if name not in stats:
            continue
        c = curves.setdefault(str(info.get("model", name)), {k: [] for k in ("run", "n_train", "sigma68", "lo", "hi")})
        st = stats[name]
        n_train = int(info.get("n_train_samples") or default_n_train)
        values = (name, n_train, st["sigma68"], st["sigma68_lo"], st["sigma68_hi"])
        for key, value in zip(("run", "n_train", "sigma68", "lo", "hi"), values, strict=True):
            c[key].append(value)
    for c in curves.values():
        order = np.argsort(c["n_train"], kind="stable")
        for key in c:
            c[key] = [c[key][i] for i in order]
    return curves


def goals_markdown(goal: Mapping[str, Any]) -> str:
    """Markdown list saying, for each goal of :func:`goals`, the measured number with its interval and whether it
    is met."""
    if goal["network"] is None:
        return "No network run was found: no goal can be judged (train one with notebook 03)."

    def verdict(met: Any) -> str:
        return "**met**" if met else "**not met**"

    lines = [
        f"Judged on the network `{goal['network']}` (bootstrap intervals; a goal is met when its whole interval is):"
    ]
    for key, label in (("em_scale_sigma68_ratio", "EM scale"), ("truth_scale_sigma68_ratio", "truth scale")):
        if goal[key] is None:
            lines.append(f"- {label}: not measured")
            continue
        lines.append(
            f"- {label}: σ68/median network / classical = {goal[key]:.2f} [{goal[f'{key}_lo']:.2f}, "
            f"{goal[f'{key}_hi']:.2f}] (goal <= {goal[f'{key}_goal']}): {verdict(goal[f'{key}_met'])}"
        )
    lines.append(
        f"- truth scale below the boosted trees in every momentum bin ({goal['p_bins_judged']} bins with enough "
        f"tracks): {verdict(goal['beats_trees_in_every_p_bin'])}"
    )
    lines.append(
        f"- median truth-scale response within 2% of 1 above 1 GeV: {verdict(goal['median_within_2pct_above_1gev'])}"
    )
    return "\n".join(lines)


def run_predictor(meta: Mapping[str, Any], data_dir: str | Path, device: str = "auto", batch_size: int = 128) -> Any:
    """``predict(run_dir) -> [N, L]`` for :func:`network_row`: rebuilds a run of notebook 03 from ``run.json`` and
    ``best.pt`` and predicts the test split of ``data_dir`` (per-cell output in the arrays' unit; each run is
    predicted once, later calls return the cached array)."""
    from functools import cache

    from jetcloud import train
    from jetcloud.atlas import jetpointnet

    dataset = train.PointCloudDataset(data_dir, "test")

    @cache
    def predict(run_dir: Path) -> np.ndarray:
        net, _ = jetpointnet.load_run(run_dir, meta)
        return train.predict(net, dataset, batch_size=batch_size, device=device, progress=False)

    return predict
