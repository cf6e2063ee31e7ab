"""Classical particle-flow cell subtraction (ATLAS ``eflowRec`` style): the baseline JetPointNet must beat.

Particle flow replaces the calorimeter energy of a charged hadron by its track momentum, so that energy must
be removed from the calorimeter. ATLAS (Eur. Phys. J. C 77 (2017) 466) does it without learning:

1. **Expected deposit.** ``E_exp = <E/p>(p, eta) x p``, the mean EM-scale energy a charged pion of momentum p
   leaves, from templates. Here the templates are measured on the *training split* with the matched truth:
   ``E/p`` of a track is the EM-scale energy attributable to its particle, ``sum_cells E_cell x frac_label``,
   divided by its momentum, averaged in bins of (p, |eta|). (ATLAS measures them with single pions; the
   matched-truth version is the same quantity measured in the jet environment.)
2. **Ring subtraction.** The cells around the extrapolated track are grouped into rings of increasing distance
   from the track's layer intersections (``distance_to_track``, width ``ring_width``); rings are taken in
   order of decreasing energy density (ring energy over the ring's area, ``∝ 2k + 1`` for ring k) and removed
   whole until ``E_exp`` is reached; the last ring is removed in proportion (every cell of it scaled by the same
   factor). If the cone holds less than ``E_exp`` everything positive is removed. Cells with E <= 0 (noise) are
   never removed.
3. **Scale.** The removed energy is at the EM scale; the regression target (the focused particle's true
   deposited energy) is not. A second template, ``calib(p, eta) = sum truth focus energy / sum EM-scale
   attributable energy`` on the training split, brings the removed energy to the truth scale, so that baseline
   and network are compared on the same footing.

Approximations (stated): rings are built from the 3-D distance to the nearest layer intersection rather than
per-layer rings in units of the layer's shower width; ring densities use the ring area, not the cell volumes
(the point clouds carry no cell volumes); the subtraction runs on the cone of the sample (``delta_r``), not
cluster by cluster; there is no cluster-matching step or "split shower" recovery.

Everything is vectorized over [samples, points] arrays (one ``bincount`` per step; no loop over samples).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetcloud.arrays import fill_from_nearest_row
from jetcloud.io.atomic import write_json

#: Default template binning: track momentum p [GeV] (log) and |eta| (barrel / transition / end-cap).
P_EDGES_GEV = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0, 200.0, 1000.0)
ABSETA_EDGES = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5)


@dataclass(frozen=True)
class EoverPTemplates:
    """Binned ``<E/p>`` (EM scale) and truth-scale calibration, rows = momentum bins, columns = |eta| bins.

    ``p_edges`` are in GeV. ``ep`` and ``calib`` are filled everywhere (empty bins take the nearest filled
    momentum bin of the same |eta| column); ``n`` holds the number of training tracks per bin.
    """

    p_edges: np.ndarray
    abseta_edges: np.ndarray
    ep: np.ndarray
    calib: np.ndarray
    n: np.ndarray

    def _bins(self, p_gev: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ip = np.clip(np.searchsorted(self.p_edges, p_gev, side="right") - 1, 0, len(self.p_edges) - 2)
        ie = np.clip(np.searchsorted(self.abseta_edges, np.abs(eta), side="right") - 1, 0, len(self.abseta_edges) - 2)
        return ip, ie

    def expected_fraction(self, p_gev: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """``<E/p>`` at the EM scale for each track."""
        ip, ie = self._bins(np.asarray(p_gev, np.float64), np.asarray(eta, np.float64))
        return self.ep[ip, ie]

    def calibration(self, p_gev: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Truth-scale / EM-scale factor for each track."""
        ip, ie = self._bins(np.asarray(p_gev, np.float64), np.asarray(eta, np.float64))
        return self.calib[ip, ie]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the templates as JSON (atomically)."""
        return write_json(path, {k: np.asarray(getattr(self, k)).tolist() for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: str | os.PathLike) -> EoverPTemplates:
        """Read templates written by :meth:`save`."""
        with open(path) as fh:
            data = json.load(fh)
        missing = sorted(set(cls.__dataclass_fields__) - set(data))
        if missing:
            raise KeyError(f"{path}: not an E/p template file (missing {missing})")
        return cls(**{k: np.asarray(data[k], np.int64 if k == "n" else np.float64) for k in cls.__dataclass_fields__})


def measure_templates(
    energy: np.ndarray,
    frac_label: np.ndarray,
    focus_label: np.ndarray,
    is_cell: np.ndarray,
    p_gev: np.ndarray,
    eta: np.ndarray,
    *,
    p_edges: Sequence[float] = P_EDGES_GEV,
    abseta_edges: Sequence[float] = ABSETA_EDGES,
    min_tracks: int = 10,
    unit_per_gev: float = 1000.0,
) -> EoverPTemplates:
    """Measure ``<E/p>`` and the truth calibration from training samples ([N, L] arrays, [N] track p and eta).

    ``energy`` (cell EM-scale energy) and ``focus_label`` (the focused particle's true deposit) share one unit
    with ``unit_per_gev`` units per GeV (1000 for MeV point clouds); ``p_gev`` is in GeV. Tracks with no
    attributable energy still count (E/p = 0).
    """
    cell = np.asarray(is_cell, bool)
    em = np.where(cell, np.asarray(energy, np.float64) * np.clip(frac_label, 0, 1), 0.0).sum(axis=1)
    truth = np.where(cell, np.clip(np.asarray(focus_label, np.float64), 0, None), 0.0).sum(axis=1)
    p_gev = np.asarray(p_gev, np.float64)
    p_edges_a, eta_edges_a = np.asarray(p_edges, np.float64), np.asarray(abseta_edges, np.float64)
    shape = (len(p_edges_a) - 1, len(eta_edges_a) - 1)
    ip = np.searchsorted(p_edges_a, p_gev, side="right") - 1
    ie = np.searchsorted(eta_edges_a, np.abs(eta), side="right") - 1
    ok = (ip >= 0) & (ip < shape[0]) & (ie >= 0) & (ie < shape[1]) & (p_gev > 0)
    flat = ip[ok] * shape[1] + ie[ok]
    size = shape[0] * shape[1]
    n = np.bincount(flat, minlength=size).reshape(shape)
    sum_ep = np.bincount(flat, weights=em[ok] / (p_gev[ok] * unit_per_gev), minlength=size).reshape(shape)
    sum_em = np.bincount(flat, weights=em[ok], minlength=size).reshape(shape)
    sum_truth = np.bincount(flat, weights=truth[ok], minlength=size).reshape(shape)
    enough = n >= max(min_tracks, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ep = np.where(enough, sum_ep / n, np.nan)
        calib = np.where(enough & (sum_em > 0), sum_truth / sum_em, np.nan)
    if not np.isfinite(ep).any():
        raise ValueError(f"no template bin has >= {min_tracks} training tracks ({int(ok.sum())} tracks in range)")
    total_calib = truth[ok].sum() / em[ok].sum() if em[ok].sum() > 0 else 1.0
    return EoverPTemplates(
        p_edges=p_edges_a,
        abseta_edges=eta_edges_a,
        ep=fill_from_nearest_row(ep, float(np.nanmean(ep))),
        calib=fill_from_nearest_row(calib, float(total_calib)),
        n=n,
    )


def subtract_rings(
    energy: np.ndarray, distance: np.ndarray, is_cell: np.ndarray, expected: np.ndarray, ring_width: float
) -> np.ndarray:
    """Energy removed from each cell ([N, L]) when ``expected[i]`` is subtracted ring by ring from sample i.

    Rings: ``k = floor(distance / ring_width)``; cells without a distance (NaN: the track has no intersection)
    go to the outermost ring. Rings are removed in order of decreasing density ``E_ring / (2k + 1)``; the
    ring that crosses ``expected`` is removed in proportion. Only cells with E > 0 take part.
    """
    if ring_width <= 0:
        raise ValueError(f"ring_width must be positive, got {ring_width}")
    energy = np.asarray(energy, np.float64)
    n, length = energy.shape
    use = np.asarray(is_cell, bool) & (energy > 0)
    dist = np.asarray(distance, np.float64)
    finite = use & np.isfinite(dist)
    n_rings = int(np.floor(dist[finite].max() / ring_width)) + 2 if finite.any() else 1
    ring = np.where(np.isfinite(dist), np.floor(np.clip(dist, 0, None) / ring_width), n_rings - 1)
    ring = np.minimum(ring, n_rings - 1).astype(np.int64)
    flat = np.arange(n)[:, None] * n_rings + ring
    e_use = np.where(use, energy, 0.0)
    ring_e = np.bincount(flat[use], weights=e_use[use], minlength=n * n_rings).reshape(n, n_rings)
    density = ring_e / (2.0 * np.arange(n_rings) + 1.0)
    order = np.argsort(-density, axis=1, kind="stable")
    sorted_e = np.take_along_axis(ring_e, order, axis=1)
    before = np.cumsum(sorted_e, axis=1) - sorted_e
    taken_sorted = np.clip(np.asarray(expected, np.float64)[:, None] - before, 0.0, sorted_e)
    taken = np.empty_like(taken_sorted)
    np.put_along_axis(taken, order, taken_sorted, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(ring_e > 0, taken / ring_e, 0.0)
    removed = e_use * np.take_along_axis(share, ring.reshape(n, length), axis=1)
    return np.where(use, removed, 0.0)


def predict_cells(
    energy: np.ndarray,
    distance: np.ndarray,
    is_cell: np.ndarray,
    p_gev: np.ndarray,
    eta: np.ndarray,
    templates: EoverPTemplates,
    *,
    unit_per_gev: float = 1000.0,
    ring_width: float = 25.0,
) -> np.ndarray:
    """Baseline prediction of the focused particle's true energy per cell ([N, L], unit of ``energy``).

    ``unit_per_gev`` is the number of energy units in one GeV (1000 for MeV point clouds, 1 for GeV);
    ``ring_width`` is in the unit of ``distance`` (mm).
    """
    p_gev = np.asarray(p_gev, np.float64)
    expected = templates.expected_fraction(p_gev, eta) * p_gev * unit_per_gev
    removed = subtract_rings(energy, distance, is_cell, expected, ring_width)
    return removed * templates.calibration(p_gev, eta)[:, None]
