"""Evaluation metrics: energy response and resolution, the original JetPointNet metrics, ROC figures of merit.

Energy regression (JetPointNet, notebook 04). For each track, ``response = E_pred / E_true`` with ``E_pred`` the
summed predicted energy of its cells and ``E_true`` the focused particle's true deposited energy in the cone.

- :func:`median_and_sigma68`: the median response and the resolution ``sigma68 = (q84 - q16) / 2`` (half the
  width of the central interval holding 68% of the tracks; robust against the non-Gaussian tails of hadronic
  showers, equal to sigma for a Gaussian); ``relative`` divides it by the median.
- :func:`binned_response`: both in bins of a variable (track pT, eta), vectorized over bins.
- :func:`percentage_error`: the original report's per-sample ``100 |sum pred - sum label| / sum label`` (its
  "MAPE"), which explodes when the denominator is small (``docs/jetpointnet.md``, W11).
- :func:`energy_weighted_accuracy`: the later HEAD metric: per sample, the truth-energy weighted fraction of
  cells whose class (focused fraction > 0.5) is predicted right, averaged over samples (section 6.2).

Uncertainties: :func:`bootstrap_response` resamples the tracks (one index set for all methods, so ratios between
methods keep their correlation) and returns median and sigma68 / median per resample (:func:`response_statistics`,
vectorized); :func:`percentile_interval` turns resamples into a central interval. Seeded, hence deterministic.

Classification (quark/gluon, notebook 09): :func:`roc_auc` and :func:`background_rejection` (1 / eps_b at a
given signal efficiency, linear interpolation of the ROC curve).
"""

from __future__ import annotations

import warnings
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


# --------------------------------------------------------------------------------------------------------------
# bootstrap uncertainties of response and resolution
# --------------------------------------------------------------------------------------------------------------

#: The 16% and 84% quantiles of a standard normal distribution (the central 68.27% interval).
_Q16, _Q84 = 0.15865525393145707, 0.8413447460685429


def response_statistics(values: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized ``(median, sigma68 / |median|)`` along ``axis`` (all values must be finite).

    The same numbers as :func:`median_and_sigma68` with ``relative=True``, for many rows at once (the bootstrap
    resamples). A zero median gives an infinite relative width.
    """
    q16, q50, q84 = np.quantile(np.asarray(values, np.float64), [_Q16, 0.5, _Q84], axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return q50, 0.5 * (q84 - q16) / np.abs(q50)


def bootstrap_response(
    responses: np.ndarray,
    *,
    n_resamples: int = 200,
    seed: int | Sequence[int] = 0,
    max_elements: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Median and relative sigma68 of ``responses`` ``[M, n]`` (M methods on the *same* n tracks), bootstrapped.

    Every resample draws one set of n track indices (with replacement) shared by all M rows, so differences and
    ratios between methods keep their correlation (a paired bootstrap). Columns where any row is not finite are
    dropped first. Returns ``(point [M, 2], resampled [n_resamples, M, 2])`` with ``[..., 0]`` the median and
    ``[..., 1]`` sigma68 / median; NaN everywhere when no column is left. Deterministic for a seed; resamples
    are computed in chunks of at most ``max_elements`` values.
    """
    r = np.atleast_2d(np.asarray(responses, np.float64))
    r = r[:, np.all(np.isfinite(r), axis=0)]
    m, n = r.shape
    if n == 0:
        return np.full((m, 2), np.nan), np.full((n_resamples, m, 2), np.nan)
    point = np.stack(response_statistics(r), axis=-1)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))  # drawn at once, so chunking does not change the numbers
    out = np.empty((n_resamples, m, 2))
    step = max(1, max_elements // max(m * n, 1))
    for start in range(0, n_resamples, step):  # a loop over memory-sized chunks of resamples only
        sample = r[:, idx[start : start + step]]  # [M, chunk, n]
        med, width = response_statistics(sample, axis=-1)
        out[start : start + step] = np.stack([med.T, width.T], axis=-1)
    return point, out


def percentile_interval(
    resampled: np.ndarray, confidence: float = 0.68, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: the central ``confidence`` interval of bootstrap resamples along ``axis`` (NaNs ignored;
    NaN where every resample is NaN)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = 0.5 * (1.0 - confidence)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (empty bins) give NaN, on purpose
        lo, hi = np.nanquantile(np.asarray(resampled, np.float64), [tail, 1.0 - tail], axis=axis)
    return lo, hi


# --------------------------------------------------------------------------------------------------------------
# bootstrap of the ROC AUC (quark/gluon, notebook 09)
# --------------------------------------------------------------------------------------------------------------


def _check_scores(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(labels bool [n], scores float64 [M, n])`` after checking shapes, classes and finiteness."""
    y = np.asarray(labels)
    s = np.atleast_2d(np.asarray(scores, np.float64))
    if y.ndim != 1 or s.ndim != 2 or s.shape[1] != len(y):
        raise ValueError(f"scores {s.shape} must be [M, n] for {y.shape} labels (n = {len(y)})")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(f"an AUC needs both classes, got {int(y.sum())} positives of {len(y)}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of every model (row of ``scores`` [M, n]) under every set of jet weights (row of ``weights`` [B, n]).

    Returns ``[B, M]``. With integer weights (how often each jet was drawn in a bootstrap resample) this is the
    AUC of the resampled set: the Mann-Whitney probability that a positive scores above a negative, ties counting
    one half. One sort per model, none per resample: jets in score order (tied scores merged into one entry),
    ``sum_pos w_pos * (negatives below + half the tied negatives) / (W_pos W_neg)`` with a running sum of the
    negative weights. All-ones weights give :func:`roc_auc`; a row without positives or negatives gives NaN.
    Weights are held in float32 (exact for integer counts below 2**24), the sums in float64.
    """
    y, s = _check_scores(labels, scores)
    w = np.atleast_2d(np.asarray(weights, np.float32))
    if w.shape[1] != len(y):
        raise ValueError(f"weights {w.shape} must be [B, n] with n = {len(y)}")
    w_pos, w_neg = w * y, w * ~y
    total = w_pos.sum(axis=1, dtype=np.float64) * w_neg.sum(axis=1, dtype=np.float64)
    out = np.empty((len(w), len(s)))
    for m, row in enumerate(s):  # a loop over the few models only
        order = np.argsort(row, kind="stable")
        pos, neg = np.take(w_pos, order, axis=1), np.take(w_neg, order, axis=1)
        starts = np.flatnonzero(np.r_[True, np.diff(row[order]) != 0])
        if len(starts) < len(row):  # tied scores: one entry per distinct score
            pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
        below = np.cumsum(neg, axis=1)
        below -= 0.5 * neg  # the negatives strictly below, plus half of those with the same score
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, m] = (pos.astype(np.float64) * below).sum(axis=1) / total
    return out


def bootstrap_auc(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int | Sequence[int] = 0,
    max_elements: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """AUC of ``scores`` ``[M, n]`` (M models on the *same* n jets, one label vector), bootstrapped over the jets.

    Every resample draws one set of n jet indices (with replacement) shared by all M models (a paired bootstrap:
    differences between models keep their correlation). Returns ``(point [M], resampled [n_resamples, M])``,
    deterministic for a seed; resamples are computed in chunks of at most ``max_elements`` weights
    (:func:`weighted_auc` on the jet counts of each resample).
    """
    y, s = _check_scores(labels, scores)
    n = len(y)
    point = weighted_auc(y, s, np.ones((1, n)))[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))  # drawn at once, so chunking does not change the numbers
    out = np.empty((n_resamples, len(s)))
    step = max(1, max_elements // n)
    for start in range(0, n_resamples, step):  # a loop over memory-sized chunks of resamples only
        chunk = idx[start : start + step]
        rows = np.arange(len(chunk))[:, None] * n
        counts = np.bincount((chunk + rows).ravel(), minlength=len(chunk) * n).reshape(len(chunk), n)
        out[start : start + step] = weighted_auc(y, s, counts)
    return point, out


def paired_auc_difference(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    n_resamples: int = 1000,
    seed: int | Sequence[int] = 0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Mean AUC of models A minus mean AUC of models B on the same jets, with a paired bootstrap interval.

    ``scores_a`` ``[Ma, n]`` and ``scores_b`` ``[Mb, n]`` are the scores of the seed runs of two architectures on
    the same n jets (``labels``). ``delta`` = mean over A's runs of their AUC minus the same mean over B's. The
    interval is the central ``confidence`` percentile interval of that difference over ``n_resamples`` bootstrap
    resamples of the jets, each resample drawing one index set for every run of both (:func:`bootstrap_auc`), so
    the jet-to-jet correlation of the two architectures cancels. It describes the test-set sampling only, not the
    spread over training seeds. Returns ``delta, lo, hi, auc_a, auc_b`` (the seed-mean AUCs).
    """
    a = np.atleast_2d(np.asarray(scores_a, np.float64))
    b = np.atleast_2d(np.asarray(scores_b, np.float64))
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"scores_a {a.shape} and scores_b {b.shape} must hold the same number of jets")
    point, resampled = bootstrap_auc(labels, np.concatenate([a, b]), n_resamples=n_resamples, seed=seed)
    split = len(a)
    diff = resampled[:, :split].mean(axis=1) - resampled[:, split:].mean(axis=1)
    lo, hi = percentile_interval(diff, confidence)
    auc_a, auc_b = float(point[:split].mean()), float(point[split:].mean())
    return {"delta": auc_a - auc_b, "lo": float(lo), "hi": float(hi), "auc_a": auc_a, "auc_b": auc_b}
