"""Evaluation metrics: energy response and resolution, the original JetPointNet metrics, ROC figures of merit.

Energy regression (JetPointNet, notebook 04). For each track, ``response = E_pred / E_true`` with ``E_pred`` the
summed predicted energy of its cells and ``E_true`` the focused particle's true deposited energy in the cone.

- :func:`median_and_sigma68`: the median response and the resolution ``sigma68 = (q84 - q16) / 2`` (half the
  width of the central interval holding 68% of the tracks; robust against the non-Gaussian tails of hadronic
  showers, equal to sigma for a Gaussian); ``relative`` divides it by the median.
- :func:`binned_response`: both in bins of a variable (track pT, eta), vectorized over bins.
- :func:`percentage_error`: the original report's per-sample ``100 |sum pred - sum label| / sum label`` (its
  "MAPE"), which explodes when the denominator is small (``jetpointnet-reference.md`` section 6.1, W11).
- :func:`energy_weighted_accuracy`: the later HEAD metric: per sample, the truth-energy weighted fraction of
  cells whose class (focused fraction > 0.5) is predicted right, averaged over samples (section 6.2).

Classification (quark/gluon, notebook 09): :func:`roc_auc` and :func:`background_rejection` (1 / eps_b at a
given signal efficiency, linear interpolation of the ROC curve).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def median_and_sigma68(values: np.ndarray, *, relative: bool = False) -> tuple[float, float]:
    """``(median, (q84 - q16) / 2)`` of the finite values (NaN, NaN when there are none).

    With ``relative=True`` the width is divided by the median (the relative resolution of a response).
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    q16, q50, q84 = np.quantile(v, [0.15865525393145707, 0.5, 0.8413447460685429])
    width = 0.5 * (q84 - q16)
    return float(q50), float(width / abs(q50) if relative and q50 != 0 else width)


def binned_response(
    response: np.ndarray, variable: np.ndarray, edges: Sequence[float], *, min_entries: int = 10
) -> dict[str, np.ndarray]:
    """Median response and relative sigma68 in bins of ``variable``.

    Returns columns ``lo, hi, n, median, sigma68`` (sigma68 relative to the median); bins with fewer than
    ``min_entries`` tracks have NaN statistics.
    """
    response = np.asarray(response, np.float64)
    variable = np.asarray(variable, np.float64)
    if response.shape != variable.shape:
        raise ValueError(f"response {response.shape} and variable {variable.shape} differ in shape")
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin edges must be increasing with at least two entries, got {edges}")
    which = np.digitize(variable, edges) - 1
    out = {"lo": edges[:-1], "hi": edges[1:], "n": np.zeros(len(edges) - 1, np.int64)}
    out["median"] = np.full(len(edges) - 1, np.nan)
    out["sigma68"] = np.full(len(edges) - 1, np.nan)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(edges)))
    for b in range(len(edges) - 1):  # a loop over the few bins only
        sel = response[order[bounds[b] : bounds[b + 1]]]
        out["n"][b] = len(sel)
        if len(sel) >= min_entries:
            out["median"][b], out["sigma68"][b] = median_and_sigma68(sel, relative=True)
    return out


def percentage_error(pred_sum: np.ndarray, label_sum: np.ndarray) -> np.ndarray:
    """The original per-sample percentage error ``100 |pred - label| / label`` (inf or NaN where label <= 0)."""
    pred_sum = np.asarray(pred_sum, np.float64)
    label_sum = np.asarray(label_sum, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.abs(pred_sum - label_sum) / label_sum


def energy_weighted_accuracy(
    pred_fraction: np.ndarray, true_fraction: np.ndarray, weight: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Per-sample ``sum |E| [pred > 0.5 == true > 0.5] / (sum |E| + 1e-5)`` over valid cells ([N, L] inputs).

    The HEAD notebook's metric with ``E = tot_truth_e``; its mean over samples is the README's "73 %".
    """
    valid = np.asarray(valid, bool)
    w = np.abs(np.asarray(weight, np.float64)) * valid
    correct = (np.asarray(pred_fraction) > 0.5) == (np.asarray(true_fraction) > 0.5)
    return (w * correct).sum(axis=-1) / (w.sum(axis=-1) + 1e-5)


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(eps_b, eps_s)`` of the ROC curve, positives = ``labels == 1`` (ties handled as one threshold)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"a ROC curve needs both classes, got {n_pos} positives and {n_neg} negatives")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # the last index of every distinct score
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; equals the Mann-Whitney probability, ties counting one half)."""
    eps_b, eps_s = roc_curve(labels, scores)
    return float(np.sum(np.diff(eps_b) * 0.5 * (eps_s[1:] + eps_s[:-1])))


def background_rejection(labels: np.ndarray, scores: np.ndarray, signal_efficiency: float) -> float:
    """``1 / eps_b`` at the given signal efficiency (eps_b linearly interpolated on the ROC curve; inf if 0)."""
    if not 0 < signal_efficiency <= 1:
        raise ValueError(f"signal_efficiency must be in (0, 1], got {signal_efficiency}")
    eps_b, eps_s = roc_curve(labels, scores)
    eb = float(np.interp(signal_efficiency, eps_s, eps_b))
    return float("inf") if eb <= 0 else 1.0 / eb
