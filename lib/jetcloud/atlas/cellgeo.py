"""Calorimeter cell geometry for the simulation: cells, neighbours, noise, fast (eta, phi) -> cell lookup.

:class:`CaloGeometry` holds flat numpy columns over all cells of the ATLAS calorimeter in container order, the
content of the MLTree ``CellGeo`` tree (``docs/mltree-format.md``) plus ``z`` and ``depth``. Three sources:

``CaloGeometry.builtin()``
    A parametric geometry expanded from the committed per-region table ``jetcloud/atlas/data/builtin_geometry.csv``
    (one row per sampling, side and region of constant granularity). The table was derived from the real ATLAS
    Run-2 geometry (``ATLAS-R2-2016-01-00-01``) with :func:`derive_region_table`; ``benchmarks/
    derive_builtin_geometry.py`` regenerates it. Eta edges and granularity are the nominal (unaligned) ones;
    the radius (barrel) or |z| (end-caps) of a region is the median over its real cells. FCAL, which is
    segmented in x-y, is approximated by a few eta rings per side whose cell counts match the real ones.
    Per-sampling cell counts agree with the real file to better than 1% (FCAL) and exactly elsewhere.
    Needs nothing outside the repository.

    **Synthetic cell IDs** (documented, deterministic, unique, within 31 bits)::

        id = 1 << 30 | sampling << 25 | (side > 0) << 24 | region << 20 | ieta << 10 | iphi

    ``region`` numbers the table rows of one (sampling, side) from low |eta| up, ``ieta`` counts cells from
    the region's low-|eta| edge, ``iphi`` from the region's first phi edge (``-pi + phi_offset``). Cells are
    stored in ascending ID order, so ``cell_geo_ID`` is sorted as the original JetPointNet reader requires.
    They are *not* ATLAS compact identifiers: use a real geometry file when real IDs matter.

``CaloGeometry.from_fastcalosim(path)``
    The real cell IDs (``identifier >> 32``, the compact ID MLTree writes) and aligned positions of the
    FastCaloSim geometry dump (``../shared/data/atlas-geometry``), in file order.

``CaloGeometry.from_cellgeo(path)``
    An MLTree ``CellGeo`` tree (TTree or RNTuple), e.g. one written by :meth:`CaloGeometry.to_cellgeo_branches`.

:func:`load_geometry` picks the right one from ``"builtin"`` or a path.

Derived quantities (for ``builtin`` and ``fastcalosim``; ``from_cellgeo`` keeps what the file has)
--------------------------------------------------------------------------------------------------
* **Volume** (mm^3), an estimate from the eta-phi size and the depth ``d`` of the cell at mid-depth radius
  ``r``: ``V = r^2 * deta * dphi * d * cosh(eta)`` for barrel samplings (surface of fixed r, dz = r cosh eta
  deta) and ``V = r^2 * deta * dphi * d / tanh|eta|`` for end-cap samplings (fixed |z|, dr = r deta / tanh|eta|).
  ``d`` is ``dr`` (barrel) or ``dz`` (end-cap) of the real cells, the median of the region for ``builtin``.
* **Noise** ``sigma`` (MeV): approximate total *electronic* noise at mu = 0 per sampling, piecewise linear in
  |eta|, read off the "cell noise vs |eta|" figure of the ATLAS topo-clustering paper (ATLAS Collaboration,
  "Topological cell clustering in the ATLAS calorimeters and its performance in LHC Run 1",
  Eur. Phys. J. C 77 (2017) 490, Fig. 4). Values are rounded, tens-of-percent approximations
  (presampler 25-80 MeV, EMB1 ~10-20, EMB2 ~20-50, EMB3 ~15-30, Tile 20-40, HEC 150-500, FCAL 300-1000 MeV);
  see :data:`NOISE_TABLE_MEV`. No pile-up noise.
* **Neighbour indices** (the 10 ``cell_geo_prev*/next*`` columns): index of the *single* cell in that direction,
  -1 if there is none or more than one (MLTree convention). Found by probing the cell lookup just outside the
  cell's edge at three (or five) points; all probes must hit the same cell. ``prev/nextInPhi``: decreasing /
  increasing phi. ``prev/nextInEta``: decreasing / increasing |eta|. ``prev/nextInSamp``: the shallower /
  deeper sampling of the same calorimeter (:data:`DEPTH_NEXT`). ``prev/nextSubDet``: EM barrel <-> EM end-cap in
  the crack (:data:`SUBDET_NEXT`). ``prev/nextSuperCalo``: LAr EM <-> Tile / HEC (:data:`SUPERCALO_NEXT`).

Topo-cluster neighbours (:attr:`CaloGeometry.adjacency`) are "all3D"-like (ATLAS ``super3D``): within a
sampling, cells that touch in eta-phi including corners; across the sampling pairs of :data:`OVERLAP_PAIRS`
(depth neighbours, barrel/end-cap crack, LAr/Tile and EMEC/HEC), cells whose eta-phi extents overlap; across the
lateral Tile pairs of :data:`TOUCH_PAIRS` (barrel - gap - extended barrel), cells that touch.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from jetcloud.atlas.layers import SAMPLING_NAMES
from jetcloud.kinematics import wrap_phi

log = logging.getLogger(__name__)

N_SAMPLINGS = len(SAMPLING_NAMES)  # 24
TWO_PI = 2.0 * np.pi

#: Path of the committed built-in region table.
BUILTIN_TABLE = Path(__file__).resolve().parent / "data" / "builtin_geometry.csv"

#: Samplings whose cells sit on a surface of fixed |z| (PreSamplerE, EME, HEC, FCAL); the others have fixed r.
SAMPLING_IS_ENDCAP: np.ndarray = np.array([4 <= s <= 11 or s >= 21 for s in range(N_SAMPLINGS)])

#: Depth order within each calorimeter: sampling -> next deeper sampling (``nextInSamp``).
DEPTH_NEXT: dict[int, int] = {
    0: 1,
    1: 2,
    2: 3,  # PreSamplerB - EMB1 - EMB2 - EMB3
    4: 5,
    5: 6,
    6: 7,  # PreSamplerE - EME1 - EME2 - EME3
    8: 9,
    9: 10,
    10: 11,  # HEC0..3
    12: 13,
    13: 14,  # TileBar0..2
    15: 16,  # TileGap1 (C10) - TileGap2 (D4)
    18: 19,
    19: 20,  # TileExt0..2
    21: 22,
    22: 23,  # FCAL0..2
}
#: EM barrel -> EM end-cap sampling at the same depth (``nextSubDet``; the reverse is ``prevSubDet``).
SUBDET_NEXT: dict[int, int] = {0: 4, 1: 5, 2: 6, 3: 7}
#: LAr EM -> the calorimeter behind it (``nextSuperCalo``), candidates in order; reverse is ``prevSuperCalo``.
SUPERCALO_NEXT: dict[int, tuple[int, ...]] = {3: (12, 18, 17), 7: (8,)}

#: Sampling pairs whose cells are topo-cluster neighbours when their eta-phi extents overlap.
OVERLAP_PAIRS: tuple[tuple[int, int], ...] = (
    *DEPTH_NEXT.items(),
    *SUBDET_NEXT.items(),
    (3, 12),
    (3, 18),
    (3, 17),
    (7, 8),  # EMB3 - Tile A / E cells, EME3 - HEC0
    (12, 17),
    (18, 17),  # Tile A cells - E scintillators (overlap in eta at the gap edges)
)
#: Lateral Tile pairs (same depth, adjacent in eta) whose cells are neighbours when they touch.
TOUCH_PAIRS: tuple[tuple[int, int], ...] = (
    (12, 18),
    (12, 17),
    (17, 18),  # A10 | E1,E2 | A12
    (13, 15),
    (15, 19),
    (13, 19),  # BC9 | C10 | B11
    (14, 16),
    (16, 20),
    (14, 20),  # D3 | D4 | D5
)

#: Approximate electronic noise (MeV, mu = 0) per sampling: (|eta| knots, sigma at the knots), linear in
#: between and constant outside. Read off EPJC 77 (2017) 490, Fig. 4; tens-of-percent accuracy.
NOISE_TABLE_MEV: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    0: ((0.0, 0.8, 1.52), (25.0, 30.0, 40.0)),  # PreSamplerB
    1: ((0.0, 0.8, 1.475), (10.0, 13.0, 20.0)),  # EMB1 strips
    2: ((0.0, 0.8, 1.475), (22.0, 30.0, 50.0)),  # EMB2
    3: ((0.0, 0.8, 1.35), (15.0, 20.0, 30.0)),  # EMB3
    4: ((1.5, 1.8), (70.0, 80.0)),  # PreSamplerE
    5: ((1.375, 2.0, 2.5), (20.0, 25.0, 40.0)),  # EME1
    6: ((1.375, 2.0, 2.5, 3.2), (30.0, 40.0, 60.0, 100.0)),  # EME2
    7: ((1.5, 2.5, 3.2), (20.0, 40.0, 80.0)),  # EME3
    8: ((1.5, 2.5, 3.2), (150.0, 250.0, 400.0)),  # HEC0
    9: ((1.5, 2.5, 3.2), (170.0, 280.0, 450.0)),  # HEC1
    10: ((1.5, 2.5, 3.2), (200.0, 300.0, 500.0)),  # HEC2
    11: ((1.5, 2.5, 3.2), (200.0, 300.0, 500.0)),  # HEC3
    12: ((0.0, 1.0), (20.0, 22.0)),  # TileBar0 (A)
    13: ((0.0, 1.0), (25.0, 28.0)),  # TileBar1 (BC)
    14: ((0.0, 1.0), (30.0, 32.0)),  # TileBar2 (D)
    15: ((0.8, 1.0), (25.0, 25.0)),  # TileGap1 (C10)
    16: ((0.8, 1.0), (30.0, 30.0)),  # TileGap2 (D4)
    17: ((1.0, 1.6), (35.0, 40.0)),  # TileGap3 (E scintillators)
    18: ((1.1, 1.6), (22.0, 25.0)),  # TileExt0
    19: ((1.0, 1.5), (25.0, 28.0)),  # TileExt1
    20: ((0.9, 1.3), (30.0, 32.0)),  # TileExt2
    21: ((3.1, 4.0, 4.9), (300.0, 450.0, 700.0)),  # FCAL0
    22: ((3.1, 4.0, 4.9), (400.0, 600.0, 900.0)),  # FCAL1
    23: ((3.1, 4.0, 4.9), (500.0, 700.0, 1000.0)),  # FCAL2
}

#: The 10 neighbour columns, in CellGeo branch order.
NEIGHBOUR_NAMES: tuple[str, ...] = (
    "prevInPhi",
    "nextInPhi",
    "prevInEta",
    "nextInEta",
    "prevInSamp",
    "nextInSamp",
    "prevSubDet",
    "nextSubDet",
    "prevSuperCalo",
    "nextSuperCalo",
)
#: CellGeo branch name -> (CaloGeometry attribute, dtype), in container (docs/mltree-format.md) order.
CELLGEO_COLUMNS: dict[str, tuple[str, type]] = {
    "cell_geo_ID": ("cell_id", np.uint64),
    "cell_geo_sampling": ("sampling", np.uint16),
    "cell_geo_eta": ("eta", np.float32),
    "cell_geo_phi": ("phi", np.float32),
    "cell_geo_rPerp": ("r_perp", np.float32),
    "cell_geo_deta": ("deta", np.float32),
    "cell_geo_dphi": ("dphi", np.float32),
    "cell_geo_volume": ("volume", np.float32),
    "cell_geo_sigma": ("sigma", np.float32),
    **{f"cell_geo_{n}": (n, np.int32) for n in NEIGHBOUR_NAMES},
}
CELLGEO_TREE = "CellGeo"
#: Branches a FastCaloSim geometry dump must have.
FASTCALOSIM_BRANCHES: tuple[str, ...] = ("identifier", "calosample", "eta", "phi", "r", "z", "deta", "dphi")

#: Columns of the built-in region table, in file order.
TABLE_COLUMNS: tuple[str, ...] = (
    "sampling",
    "name",
    "side",
    "region",
    "abs_eta_min",
    "abs_eta_max",
    "deta",
    "n_eta",
    "n_phi",
    "phi_offset",
    "surface",
    "position_mm",
    "depth_mm",
)


def electronic_noise_mev(sampling: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Approximate electronic noise sigma (MeV) per cell from :data:`NOISE_TABLE_MEV` (float64)."""
    sampling = np.asarray(sampling)
    abs_eta = np.abs(np.asarray(eta, dtype=np.float64))
    out = np.zeros(abs_eta.shape, dtype=np.float64)
    for s, (knots, values) in NOISE_TABLE_MEV.items():
        m = sampling == s
        if m.any():
            out[m] = np.interp(abs_eta[m], knots, values)
    return out


def estimate_volume(
    sampling: np.ndarray, eta: np.ndarray, r_perp: np.ndarray, deta: np.ndarray, dphi: np.ndarray, depth: np.ndarray
) -> np.ndarray:
    """Cell volume estimate (mm^3): ``r^2 deta dphi depth`` x ``cosh eta`` (barrel) or ``1/tanh|eta|`` (end-cap)."""
    eta = np.asarray(eta, dtype=np.float64)
    endcap = SAMPLING_IS_ENDCAP[np.asarray(sampling, dtype=np.int64)]
    tanh = np.maximum(np.abs(np.tanh(eta)), 1e-3)
    factor = np.where(endcap, 1.0 / tanh, np.cosh(eta))
    return np.asarray(r_perp, np.float64) ** 2 * deta * dphi * depth * factor


def _expand_ranges(lo: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``[lo_i, lo_i + counts_i)``: (owner index per element, offset within its range)."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    offset = np.arange(int(counts.sum()), dtype=np.int64) - starts[owner]
    return owner, offset


# --------------------------------------------------------------------------------------------------------------
# (sampling, eta, phi) -> cell lookup
# --------------------------------------------------------------------------------------------------------------


class _SamplingCells(NamedTuple):
    """The cells of one sampling: geometry rows and their centres and sizes."""

    idx: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    deta: np.ndarray
    dphi: np.ndarray


class _Raster(NamedTuple):
    """Eta x phi raster of one sampling: first eta edge, bin sizes and bin counts."""

    lo: float
    bin_eta: float
    n_eta: int
    bin_phi: float
    n_phi: int


def _sampling_raster(cells: _SamplingCells, max_bins: int) -> _Raster:
    """Raster at the sampling's finest cell size, coarsened until it has at most ``max_bins`` bins."""
    e, de, dp = cells.eta, cells.deta, cells.dphi
    lo = float(np.min(e - de / 2)) - 1e-6
    hi = float(np.max(e + de / 2)) + 1e-6
    n_phi = max(1, int(np.floor(TWO_PI / float(np.min(dp)) + 1e-3)))
    bin_eta = float(np.min(de))
    n_eta = int(np.ceil((hi - lo) / bin_eta))
    while n_eta * n_phi > max_bins:  # coarsen pathological layouts
        if n_eta >= n_phi:
            bin_eta *= 2
            n_eta = int(np.ceil((hi - lo) / bin_eta))
        else:
            n_phi = max(1, n_phi // 2)
    bin_phi = TWO_PI / n_phi
    return _Raster(lo, bin_eta, n_eta, bin_phi, n_phi)


def _eta_rows(cells: _SamplingCells, g: _Raster, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell, eta row) pairs for the rows each cell covers (enlarged by ``tol``), and the phi origin of every row.

    Returns ``(own_e, row, row_phi0)``: the cell (position in ``cells``) and the eta row of each pair, and per eta
    row the circular mean of the phi edges of its cells (modulo the bin size), so that the bins of a regular row
    line up with the cells.
    """
    e, p, de, dp = cells.eta, cells.phi, cells.deta, cells.dphi
    pad_e = de * (0.5 + tol)
    e_lo = np.clip(np.floor((e - pad_e - g.lo) / g.bin_eta), 0, g.n_eta - 1).astype(np.int64)
    e_hi = np.clip(np.floor((e + pad_e - g.lo) / g.bin_eta), 0, g.n_eta - 1).astype(np.int64)
    own_e, k_e = _expand_ranges(e_lo, e_hi - e_lo + 1)
    row = e_lo[own_e] + k_e
    ang = np.mod(p[own_e] - dp[own_e] / 2 + np.pi, g.bin_phi) * (TWO_PI / g.bin_phi)
    row_c = np.bincount(row, np.cos(ang), minlength=g.n_eta)
    row_s = np.bincount(row, np.sin(ang), minlength=g.n_eta)
    row_phi0 = np.mod(np.arctan2(row_s, row_c), TWO_PI) * (g.bin_phi / TWO_PI)
    return own_e, row, row_phi0


class CellLocator:
    """Vectorised ``(sampling, eta, phi) -> cell`` lookup for any eta-phi cell layout.

    Each sampling gets a raster in eta x phi at (about) its finest granularity; every raster bin lists up to
    ``k`` candidate cells whose (slightly enlarged) extents overlap it, best first. A query takes the candidate
    with the smallest normalised distance ``max(|d eta|/deta, |d phi|/dphi)`` and accepts it when that is at
    most ``0.5 + tol`` (inside the cell, up to ``tol`` of its size; covers the tiny gaps between aligned cells).
    """

    def __init__(
        self,
        sampling: np.ndarray,
        eta: np.ndarray,
        phi: np.ndarray,
        deta: np.ndarray,
        dphi: np.ndarray,
        tol: float = 0.05,
        max_bins_per_sampling: int = 1_000_000,
        k_max: int = 8,
    ) -> None:
        self.eta = np.asarray(eta, dtype=np.float64)
        self.phi = np.asarray(phi, dtype=np.float64)
        self.inv_deta = 1.0 / np.asarray(deta, dtype=np.float64)
        self.inv_dphi = 1.0 / np.asarray(dphi, dtype=np.float64)
        self.tol = tol
        sampling = np.asarray(sampling, dtype=np.int64)
        self.eta0 = np.zeros(N_SAMPLINGS)
        self.inv_bin_eta = np.ones(N_SAMPLINGS)
        self.inv_bin_phi = np.ones(N_SAMPLINGS)
        self.n_eta = np.zeros(N_SAMPLINGS, dtype=np.int64)
        self.n_phi = np.ones(N_SAMPLINGS, dtype=np.int64)
        self.offset = np.zeros(N_SAMPLINGS, dtype=np.int64)
        self.eta_row_offset = np.zeros(N_SAMPLINGS, dtype=np.int64)
        row_phi0_all: list[np.ndarray] = []
        n_rows = 0
        cells_all, bins_all, score_all = [], [], []
        total = 0
        deta64, dphi64 = 1.0 / self.inv_deta, 1.0 / self.inv_dphi
        for s in range(N_SAMPLINGS):
            idx = np.flatnonzero(sampling == s)
            if len(idx) == 0:
                continue
            cells = _SamplingCells(idx, self.eta[idx], self.phi[idx], deta64[idx], dphi64[idx])
            g = _sampling_raster(cells, max_bins_per_sampling)
            self.eta0[s], self.inv_bin_eta[s], self.inv_bin_phi[s] = g.lo, 1 / g.bin_eta, 1 / g.bin_phi
            self.n_eta[s], self.n_phi[s], self.offset[s] = g.n_eta, g.n_phi, total
            own_e, row, row_phi0 = _eta_rows(cells, g, tol)
            self.eta_row_offset[s] = n_rows
            n_rows += g.n_eta
            row_phi0_all.append(row_phi0)
            cell, bins, score = self._bin_candidates(cells, g, own_e, row, row_phi0, total, tol)
            cells_all.append(cell)
            bins_all.append(bins)
            score_all.append(score)
            total += g.n_eta * g.n_phi
        self.n_bins = total
        self.row_phi0 = np.concatenate(row_phi0_all) if row_phi0_all else np.zeros(1)
        if total == 0:
            self.table = np.full((1, 1), -1, dtype=np.int32)
            return
        self._fill_table(np.concatenate(cells_all), np.concatenate(bins_all), np.concatenate(score_all), k_max)
        self.has = np.zeros(N_SAMPLINGS, dtype=bool)
        self.has[np.unique(sampling)] = True

    def _bin_candidates(
        self,
        cells: _SamplingCells,
        g: _Raster,
        own_e: np.ndarray,
        row: np.ndarray,
        row_phi0: np.ndarray,
        offset: int,
        tol: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cell, global bin, score) for the phi bins of every (cell, eta row) pair of one sampling.

        The score packs the normalised distance of the bin centre from the cell centre (in 1/1024 of the cell
        size, at most 4095) with bit 12 set where the cell itself (not enlarged) does not overlap the bin by more
        than 0.1% of the bin.
        """
        p, de, dp = cells.phi, cells.deta, cells.dphi
        bin_eta, bin_phi, n_phi = g.bin_eta, g.bin_phi, g.n_phi
        pad_p = dp * (0.5 + tol)
        ph0 = row_phi0[row]
        pc = p[own_e]
        p_lo = np.floor((pc - pad_p[own_e] + np.pi - ph0) / bin_phi).astype(np.int64)
        p_hi = np.floor((pc + pad_p[own_e] + np.pi - ph0) / bin_phi).astype(np.int64)
        n_p = np.minimum(p_hi - p_lo + 1, n_phi)
        own_p, k_p = _expand_ranges(p_lo, n_p)
        owner = own_e[own_p]
        ie = row[own_p]
        ip = np.mod(p_lo[own_p] + k_p, n_phi)
        cell = cells.idx[owner]
        ce = g.lo + (ie + 0.5) * bin_eta
        cp = wrap_phi(-np.pi + ph0[own_p] + (ip + 0.5) * bin_phi)
        # score: normalised distance of the bin centre from the cell centre
        dphi_c = np.abs(cp - self.phi[cell])
        dphi_c = np.minimum(dphi_c, TWO_PI - dphi_c)
        deta_c = np.abs(ce - self.eta[cell])
        score = np.maximum(deta_c * self.inv_deta[cell], dphi_c * self.inv_dphi[cell])
        # does the cell itself (not enlarged) overlap the bin by more than 0.1% of the bin?
        strict = (deta_c < (bin_eta + de[owner]) / 2 - 1e-3 * bin_eta) & (
            dphi_c < (bin_phi + dp[owner]) / 2 - 1e-3 * bin_phi
        )
        return cell, offset + ie * n_phi + ip, np.minimum(score * 1024, 4095).astype(np.int64) | (~strict << 12)

    def _fill_table(self, cell: np.ndarray, bins: np.ndarray, score: np.ndarray, k_max: int) -> None:
        """Candidate table (``n_bins`` x k, best first) and the ``simple`` flag of every bin."""
        total = self.n_bins
        # sort by bin, then cells overlapping the bin first, then by score (quantised to 1/1024 of the cell
        # size), with one integer argsort
        order = np.argsort((bins << 13) | score)
        bins, cell, strict = bins[order], cell[order], (score[order] >> 12) == 0
        # a bin is "simple" when exactly one cell overlaps it: a point inside that cell needs no other check
        self.simple = np.bincount(bins[strict], minlength=total) == 1
        counts = np.bincount(bins, minlength=total)
        starts = np.cumsum(counts) - counts
        rank = np.arange(len(bins)) - starts[bins]
        k = int(min(k_max, counts.max()))
        keep = rank < k
        self.table = np.full((total, k), -1, dtype=np.int32)
        self.table[bins[keep], rank[keep]] = cell[keep]

    def _distance(self, cand: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        c = np.maximum(cand, 0)
        dp = np.abs(phi - self.phi[c])  # both in (-pi, pi]: |difference| <= 2 pi
        dp = np.minimum(dp, TWO_PI - dp)
        d = np.maximum(np.abs(eta - self.eta[c]) * self.inv_deta[c], dp * self.inv_dphi[c])
        return np.where(cand >= 0, d, np.inf)

    def __call__(self, sampling: np.ndarray | int, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=np.float64)
        phi = wrap_phi(phi)
        eta, phi = np.broadcast_arrays(eta, phi)
        s = np.broadcast_to(np.asarray(sampling, dtype=np.int64), eta.shape).ravel()
        eta, phi = eta.ravel(), phi.ravel()
        out = np.full(eta.shape, -1, dtype=np.int64)
        if self.n_bins == 0 or eta.size == 0:
            return out.reshape(np.shape(eta))
        ok = (s >= 0) & (s < N_SAMPLINGS)
        s_ok = np.where(ok, s, 0)
        ok &= self.has[s_ok]
        ie = np.floor((eta - self.eta0[s_ok]) * self.inv_bin_eta[s_ok])
        ok &= (ie >= 0) & (ie < self.n_eta[s_ok]) & np.isfinite(phi)
        sel = np.flatnonzero(ok)
        if len(sel) == 0:
            return out
        ss = s_ok[sel]
        ie = ie[sel].astype(np.int64)
        ph0 = self.row_phi0[self.eta_row_offset[ss] + ie]
        ip = np.mod(np.floor((phi[sel] + np.pi - ph0) * self.inv_bin_phi[ss]).astype(np.int64), self.n_phi[ss])
        b = self.offset[ss] + ie * self.n_phi[ss] + ip
        e_q, p_q = eta[sel], phi[sel]
        # fast path: the only cell overlapping the bin contains the point
        c0 = self.table[b, 0].astype(np.int64)
        res = np.where(self._distance(c0, e_q, p_q) <= 0.5, c0, -1)
        slow = np.flatnonzero((res < 0) | ~self.simple[b])
        if len(slow):  # the candidate with the smallest normalised distance
            cand = self.table[b[slow]].astype(np.int64)
            d = self._distance(cand, e_q[slow, None], p_q[slow, None])
            j = np.argmin(d, axis=1)
            rows = np.arange(len(slow))
            res[slow] = np.where(d[rows, j] <= 0.5 + self.tol, cand[rows, j], -1)
        out[sel] = res
        return out


# --------------------------------------------------------------------------------------------------------------
# adjacency
# --------------------------------------------------------------------------------------------------------------


def _candidate_pairs(
    eta: np.ndarray,
    phi: np.ndarray,
    deta: np.ndarray,
    dphi: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    pad: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i in a, j in b) whose eta-phi rectangles (a's enlarged by ``pad`` of its size) share a bucket."""
    h_eta = max(float(np.median(deta[a])), float(np.median(deta[b])))
    n_pb = max(1, int(np.floor(TWO_PI / max(float(np.median(dphi[a])), float(np.median(dphi[b]))))))
    h_phi = TWO_PI / n_pb
    eta0 = min(float(np.min(eta[a] - deta[a])), float(np.min(eta[b] - deta[b])))

    def cover(idx: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
        he, hp = deta[idx] * f, dphi[idx] * f
        e_lo = np.floor((eta[idx] - he - eta0) / h_eta).astype(np.int64)
        e_hi = np.floor((eta[idx] + he - eta0) / h_eta).astype(np.int64)
        p_lo = np.floor((phi[idx] - hp + np.pi) / h_phi).astype(np.int64)
        p_hi = np.floor((phi[idx] + hp + np.pi) / h_phi).astype(np.int64)
        n_p = np.minimum(p_hi - p_lo + 1, n_pb)
        owner, k = _expand_ranges(e_lo, (e_hi - e_lo + 1) * n_p)
        key = (e_lo[owner] + k // n_p[owner]) * n_pb + np.mod(p_lo[owner] + k % n_p[owner], n_pb)
        return idx[owner], key

    ia, ka = cover(a, 0.5 + pad)
    ib, kb = cover(b, 0.5)
    order = np.argsort(kb, kind="stable")
    kb, ib = kb[order], ib[order]
    lo = np.searchsorted(kb, ka, side="left")
    hi = np.searchsorted(kb, ka, side="right")
    owner, k = _expand_ranges(lo, hi - lo)
    return ia[owner], ib[lo[owner] + k]


def _pair_test(
    i: np.ndarray,
    j: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    deta: np.ndarray,
    dphi: np.ndarray,
    touch: bool,
    frac: float,
) -> np.ndarray:
    """Boolean mask: cells i and j touch (gap <= frac of the smaller size) or overlap (> frac of it)."""
    ov_eta = np.minimum(eta[i] + deta[i] / 2, eta[j] + deta[j] / 2) - np.maximum(
        eta[i] - deta[i] / 2, eta[j] - deta[j] / 2
    )
    dp = np.abs(phi[i] - phi[j])  # phi in (-pi, pi]
    ov_phi = (dphi[i] + dphi[j]) / 2 - np.minimum(dp, TWO_PI - dp)
    tol_eta = frac * np.minimum(deta[i], deta[j])
    tol_phi = frac * np.minimum(dphi[i], dphi[j])
    if touch:
        return (ov_eta >= -tol_eta) & (ov_phi >= -tol_phi)
    return (ov_eta > tol_eta) & (ov_phi > tol_phi)


def build_adjacency(
    sampling: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    deta: np.ndarray,
    dphi: np.ndarray,
    overlap_pairs: Iterable[tuple[int, int]] = OVERLAP_PAIRS,
    touch_pairs: Iterable[tuple[int, int]] = TOUCH_PAIRS,
    frac: float = 0.25,
    fcal_frac: float = 0.5,
) -> sp.csr_matrix:
    """Symmetric boolean CSR matrix of topo-cluster neighbours (see the module docstring).

    Within a sampling cells are neighbours when their eta-phi rectangles touch (gap at most ``frac`` of the
    smaller cell in each direction, corners included); across ``overlap_pairs`` when they overlap by more than
    ``frac / 2.5`` of the smaller cell in both directions; across ``touch_pairs`` when they touch. FCAL cells
    (x-y segmented, so their eta-phi rectangles do not tile) use the looser ``fcal_frac`` within a sampling.
    """
    sampling = np.asarray(sampling, dtype=np.int64)
    eta, phi = np.asarray(eta, np.float64), np.asarray(phi, np.float64)
    deta, dphi = np.asarray(deta, np.float64), np.asarray(dphi, np.float64)
    n = len(eta)
    members = [np.flatnonzero(sampling == s) for s in range(N_SAMPLINGS)]
    jobs: list[tuple[int, int, bool]] = [(s, s, True) for s in range(N_SAMPLINGS)]
    jobs += [(a, b, False) for a, b in overlap_pairs]
    jobs += [(a, b, True) for a, b in touch_pairs]
    rows, cols = [], []
    for a, b, touch in jobs:
        ma, mb = members[a], members[b]
        if len(ma) == 0 or len(mb) == 0:
            continue
        f = (fcal_frac if a >= 21 and a == b else frac) if touch else frac / 2.5
        i, j = _candidate_pairs(eta, phi, deta, dphi, ma, mb, pad=f if touch else 0.0)
        keep = i != j
        i, j = i[keep], j[keep]
        keep = _pair_test(i, j, eta, phi, deta, dphi, touch, f)
        rows.append(i[keep])
        cols.append(j[keep])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    # duplicates (a pair found in several buckets) are summed away by scipy's COO -> CSR conversion
    half = sp.coo_matrix((np.ones(len(r), dtype=np.int32), (r, c)), shape=(n, n)).tocsr()
    adj = (half + half.T).tocsr()
    adj.sum_duplicates()
    adj.sort_indices()
    return sp.csr_matrix((np.ones(adj.nnz, dtype=bool), adj.indices, adj.indptr), shape=(n, n))


# --------------------------------------------------------------------------------------------------------------
# the geometry
# --------------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class CaloGeometry:
    """All calorimeter cells as flat numpy columns, in container order (the order of the ``CellGeo`` vectors).

    Units: mm, rad, MeV (``sigma``). Neighbour columns are row indices into these same arrays, -1 for none.
    """

    cell_id: np.ndarray  # uint64, compact 32-bit identifier (synthetic for builtin)
    sampling: np.ndarray  # uint16, CaloSampling 0..23
    eta: np.ndarray  # float64, cell centre
    phi: np.ndarray  # float64, (-pi, pi]
    r_perp: np.ndarray  # float64, mm
    z: np.ndarray  # float64, mm
    deta: np.ndarray  # float64
    dphi: np.ndarray  # float64
    volume: np.ndarray  # float64, mm^3
    sigma: np.ndarray  # float64, total electronic noise, MeV
    prevInPhi: np.ndarray  # int32  # noqa: N815 (CellGeo branch names)
    nextInPhi: np.ndarray  # int32  # noqa: N815
    prevInEta: np.ndarray  # int32  # noqa: N815
    nextInEta: np.ndarray  # int32  # noqa: N815
    prevInSamp: np.ndarray  # int32  # noqa: N815
    nextInSamp: np.ndarray  # int32  # noqa: N815
    prevSubDet: np.ndarray  # int32  # noqa: N815
    nextSubDet: np.ndarray  # int32  # noqa: N815
    prevSuperCalo: np.ndarray  # int32  # noqa: N815
    nextSuperCalo: np.ndarray  # int32  # noqa: N815
    depth: np.ndarray | None = None  # float64, radial (barrel) or |z| (end-cap) depth, mm
    source: str = ""

    # ---- basic accessors ---------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.cell_id)

    def __len__(self) -> int:
        return self.n_cells

    def __repr__(self) -> str:
        return f"CaloGeometry({self.n_cells} cells, source={self.source!r})"

    @property
    def x(self) -> np.ndarray:
        """``rPerp cos(phi)``, mm."""
        return self.r_perp * np.cos(self.phi)

    @property
    def y(self) -> np.ndarray:
        """``rPerp sin(phi)``, mm."""
        return self.r_perp * np.sin(self.phi)

    def sampling_counts(self) -> np.ndarray:
        """Number of cells per sampling, shape (24,)."""
        return np.bincount(self.sampling.astype(np.int64), minlength=N_SAMPLINGS)[:N_SAMPLINGS]

    def neighbours(self) -> dict[str, np.ndarray]:
        """The 10 neighbour columns by name."""
        return {n: getattr(self, n) for n in NEIGHBOUR_NAMES}

    def select(self, rows: np.ndarray) -> CaloGeometry:
        """A new geometry with the given rows (e.g. a permutation), neighbour indices remapped (-1 if dropped)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        new_index = np.full(self.n_cells + 1, -1, dtype=np.int64)  # slot n maps -1 -> -1
        new_index[rows] = np.arange(len(rows))
        kw: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in NEIGHBOUR_NAMES:
                kw[f.name] = new_index[v[rows]].astype(np.int32)
            elif isinstance(v, np.ndarray):
                kw[f.name] = v[rows]
            else:
                kw[f.name] = v
        return CaloGeometry(**kw)  # type: ignore[arg-type]

    # ---- lookups -----------------------------------------------------------------------------------------
    @functools.cached_property
    def locator(self) -> CellLocator:
        """The (sampling, eta, phi) -> cell lookup structure (built on first use)."""
        t0 = time.perf_counter()
        loc = CellLocator(self.sampling, self.eta, self.phi, self.deta, self.dphi)
        log.debug(
            "cell locator: %d bins x %d candidates in %.3f s", loc.n_bins, loc.table.shape[1], time.perf_counter() - t0
        )
        return loc

    def cell_index(self, sampling: np.ndarray | int, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Row of the cell of ``sampling`` containing each (eta, phi) point; -1 where there is none (int64).

        Broadcasts ``sampling``, ``eta`` and ``phi``. Works for any layout (no ordering assumed): per-sampling
        eta-phi raster with candidate cells, see :class:`CellLocator`.
        """
        return self.locator(sampling, eta, phi)

    @functools.cached_property
    def _id_order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.cell_id, kind="stable")
        return order, self.cell_id[order]

    def index_of_id(self, ids: np.ndarray | Sequence[int], strict: bool = False) -> np.ndarray:
        """Rows of the given cell IDs (int64), -1 for unknown IDs; ``strict=True`` raises ``KeyError`` instead."""
        ids = np.asarray(ids)
        if ids.size and ids.dtype.kind == "i" and ids.min() < 0:
            unknown_neg = ids < 0
        else:
            unknown_neg = np.zeros(ids.shape, dtype=bool)
        ids_u = np.where(unknown_neg, 0, ids).astype(np.uint64)
        order, sorted_ids = self._id_order
        pos = np.searchsorted(sorted_ids, ids_u)
        pos_c = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        found = (len(sorted_ids) > 0) & (sorted_ids[pos_c] == ids_u) & ~unknown_neg
        out = np.where(found, order[pos_c] if len(order) else -1, -1).astype(np.int64)
        if strict and not found.all():
            bad = np.unique(ids[~found])
            raise KeyError(
                f"{int((~found).sum())} of {ids.size} cell IDs ({len(bad)} distinct) are not in the geometry "
                f"({self.source or 'unnamed'}, {self.n_cells} cells); first unknown: {bad[:5].tolist()}"
            )
        return out

    @functools.cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric boolean CSR (n_cells x n_cells) of topo-cluster neighbours; see :func:`build_adjacency`."""
        t0 = time.perf_counter()
        adj = build_adjacency(self.sampling, self.eta, self.phi, self.deta, self.dphi)
        log.debug("adjacency: %d links in %.3f s", adj.nnz, time.perf_counter() - t0)
        return adj

    # ---- output ------------------------------------------------------------------------------------------
    def to_cellgeo_branches(self) -> dict[str, np.ndarray]:
        """The 19 MLTree ``CellGeo`` branches (exact names and dtypes, container order) as 1-D numpy arrays."""
        return {
            name: np.ascontiguousarray(getattr(self, attr), dtype=dt) for name, (attr, dt) in CELLGEO_COLUMNS.items()
        }

    # ---- constructors ------------------------------------------------------------------------------------
    @classmethod
    def from_cells(
        cls,
        cell_id: np.ndarray,
        sampling: np.ndarray,
        eta: np.ndarray,
        phi: np.ndarray,
        r_perp: np.ndarray,
        z: np.ndarray,
        deta: np.ndarray,
        dphi: np.ndarray,
        depth: np.ndarray,
        source: str = "",
        volume: np.ndarray | None = None,
        sigma: np.ndarray | None = None,
        neighbours: Mapping[str, np.ndarray] | None = None,
    ) -> CaloGeometry:
        """Build from cell columns; volume, noise and neighbour columns are derived unless given."""
        sampling = np.asarray(sampling).astype(np.uint16)
        eta = np.asarray(eta, dtype=np.float64)
        phi = wrap_phi(phi)
        r_perp = np.asarray(r_perp, dtype=np.float64)
        deta = np.asarray(deta, dtype=np.float64)
        dphi = np.asarray(dphi, dtype=np.float64)
        depth = np.asarray(depth, dtype=np.float64)
        if volume is None:
            volume = estimate_volume(sampling, eta, r_perp, deta, dphi, depth)
        if sigma is None:
            sigma = electronic_noise_mev(sampling, eta)
        empty = {n: np.full(len(eta), -1, dtype=np.int32) for n in NEIGHBOUR_NAMES}
        geo = cls(
            cell_id=np.asarray(cell_id).astype(np.uint64),
            sampling=sampling,
            eta=eta,
            phi=phi,
            r_perp=r_perp,
            z=np.asarray(z, dtype=np.float64),
            deta=deta,
            dphi=dphi,
            volume=np.asarray(volume, dtype=np.float64),
            sigma=np.asarray(sigma, dtype=np.float64),
            depth=depth,
            source=source,
            **empty,
        )
        if len(np.unique(geo.cell_id)) != geo.n_cells:
            raise ValueError(f"geometry {source!r} has duplicate cell IDs")
        derived = geo.derive_neighbours() if neighbours is None else neighbours
        for n in NEIGHBOUR_NAMES:
            setattr(geo, n, np.asarray(derived[n], dtype=np.int32))
        return geo

    def derive_neighbours(self) -> dict[str, np.ndarray]:
        """The 10 ``prev*/next*`` columns derived by probing the lookup just outside each cell (module docstring)."""
        n = self.n_cells
        s = self.sampling.astype(np.int64)
        e, p, de, dp = self.eta, self.phi, self.deta, self.dphi
        sgn = np.where(e < 0, -1.0, 1.0)
        edge = (-0.45, 0.45)

        def probe(rows: np.ndarray, target: np.ndarray, points: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
            """The one cell of ``target`` hit by all probe points of each row (-1 otherwise)."""
            res = np.full(len(rows), -1, dtype=np.int64)
            live = np.arange(len(rows))
            for k, (pe, pp) in enumerate(points):
                r = self.cell_index(target[live], pe[live], pp[live])
                res[live] = r if k == 0 else np.where(r == res[live], r, -1)
                live = live[res[live] >= 0]
            return np.where(res == rows, -1, res).astype(np.int32)

        out: dict[str, np.ndarray] = {}
        step = 0.5 + 0.1
        rows_all = np.arange(n)
        out["prevInPhi"] = probe(rows_all, s, [(e + a * de, p - step * dp) for a in edge])
        out["nextInPhi"] = probe(rows_all, s, [(e + a * de, p + step * dp) for a in edge])
        out["prevInEta"] = probe(rows_all, s, [(e - sgn * step * de, p + a * dp) for a in edge])
        out["nextInEta"] = probe(rows_all, s, [(e + sgn * step * de, p + a * dp) for a in edge])
        # the 4 corners of the cell (shrunk by 10%): a convex target cell containing all 4 contains the cell
        corners = [(e + a * de, p + b * dp) for a in edge for b in edge]

        def mapped(table: Mapping[int, int | tuple[int, ...]], reverse: bool) -> list[np.ndarray]:
            """Per-cell target sampling arrays (one per candidate), -1 where the sampling has none."""
            cands: dict[int, list[int]] = {}
            for src, dst in table.items():
                for d in dst if isinstance(dst, tuple) else (dst,):
                    a, b = (d, src) if reverse else (src, d)
                    cands.setdefault(a, []).append(b)
            width = max((len(v) for v in cands.values()), default=0)
            maps = np.full((width, N_SAMPLINGS), -1, dtype=np.int64)
            for a, bs in cands.items():
                maps[: len(bs), a] = bs
            return [m[s] for m in maps]

        for name, table, reverse in (
            ("prevInSamp", DEPTH_NEXT, True),
            ("nextInSamp", DEPTH_NEXT, False),
            ("prevSubDet", SUBDET_NEXT, True),
            ("nextSubDet", SUBDET_NEXT, False),
            ("prevSuperCalo", SUPERCALO_NEXT, True),
            ("nextSuperCalo", SUPERCALO_NEXT, False),
        ):
            res = np.full(n, -1, dtype=np.int32)
            for target in mapped(table, reverse):
                todo = np.flatnonzero((res < 0) & (target >= 0))
                if len(todo):
                    res[todo] = probe(todo, target[todo], [(pe[todo], pp[todo]) for pe, pp in corners])
            out[name] = res
        return out

    @classmethod
    def builtin(cls, table: str | os.PathLike | None = None) -> CaloGeometry:
        """The parametric ATLAS-like geometry expanded from the committed region table (module docstring)."""
        t0 = time.perf_counter()
        path = Path(table) if table is not None else BUILTIN_TABLE
        reg = read_region_table(path)
        n_eta, n_phi = reg["n_eta"].astype(np.int64), reg["n_phi"].astype(np.int64)
        owner, k = _expand_ranges(np.zeros(len(n_eta)), n_eta * n_phi)
        ieta = k // n_phi[owner]
        iphi = k % n_phi[owner]
        samp, side, region = reg["sampling"][owner], reg["side"][owner], reg["region"][owner]
        deta = reg["deta"][owner]
        dphi = (TWO_PI / n_phi)[owner]
        eta = side * (reg["abs_eta_min"][owner] + (ieta + 0.5) * deta)
        phi = wrap_phi(-np.pi + reg["phi_offset"][owner] + (iphi + 0.5) * dphi)
        pos = reg["position_mm"][owner]
        endcap = reg["surface"][owner] == "z"
        sinh = np.sinh(eta)
        safe_sinh = np.where(np.abs(sinh) < 1e-9, 1e-9, np.abs(sinh))
        r_perp = np.where(endcap, pos / safe_sinh, pos)
        z = np.where(endcap, np.sign(eta) * pos, pos * sinh)
        cell_id = (
            (1 << 30)
            | (samp.astype(np.int64) << 25)
            | ((side > 0).astype(np.int64) << 24)
            | (region.astype(np.int64) << 20)
            | (ieta << 10)
            | iphi
        )
        order = np.argsort(cell_id, kind="stable")
        cols = dict(
            cell_id=cell_id,
            sampling=samp,
            eta=eta,
            phi=phi,
            r_perp=r_perp,
            z=z,
            deta=deta,
            dphi=dphi,
            depth=reg["depth_mm"][owner],
        )
        geo = cls.from_cells(**{k_: v[order] for k_, v in cols.items()}, source=f"builtin:{path.name}")
        log.info("built-in geometry: %d cells in %.3f s", geo.n_cells, time.perf_counter() - t0)
        return geo

    @classmethod
    def from_fastcalosim(cls, path: str | os.PathLike, tree: str | None = None) -> CaloGeometry:
        """Real ATLAS cells from a FastCaloSim geometry dump (IDs ``identifier >> 32``, file order)."""
        t0 = time.perf_counter()
        path = Path(path)
        arrays = _read_fastcalosim(path, tree)
        samp = arrays["calosample"].astype(np.int64)
        endcap = SAMPLING_IS_ENDCAP[samp]
        depth = np.zeros(len(samp))
        if "dr" in arrays and "dz" in arrays:
            depth = np.where(endcap, arrays["dz"], arrays["dr"]).astype(np.float64)
        bad = ~(depth > 0)
        if bad.any():  # fall back on the sampling median, then 100 mm
            med = np.full(N_SAMPLINGS, 100.0)
            for sv in np.unique(samp):
                good = (samp == sv) & ~bad
                if good.any():
                    med[sv] = np.median(depth[good])
            depth = np.where(bad, med[samp], depth)
        geo = cls.from_cells(
            cell_id=(arrays["identifier"].astype(np.int64) >> 32).astype(np.uint64),
            sampling=samp,
            eta=arrays["eta"],
            phi=arrays["phi"],
            r_perp=arrays["r"],
            z=arrays["z"],
            deta=arrays["deta"],
            dphi=arrays["dphi"],
            depth=depth,
            source=f"fastcalosim:{path.name}",
        )
        log.info("FastCaloSim geometry %s: %d cells in %.3f s", path, geo.n_cells, time.perf_counter() - t0)
        return geo

    @classmethod
    def from_cellgeo(cls, path: str | os.PathLike, tree: str = CELLGEO_TREE) -> CaloGeometry:
        """Cells of an MLTree ``CellGeo`` tree (TTree or RNTuple, one entry of vectors), taken as they are."""
        path = Path(path)
        with _open_root(path) as f:
            if tree not in _tree_names(f):
                raise ValueError(f"{path}: no {tree!r} tree (found: {sorted(_tree_names(f))})")
            t = f[tree]
            missing = [b for b in CELLGEO_COLUMNS if b not in t.keys()]
            if missing:
                raise ValueError(f"{path}:{tree} misses CellGeo branches {missing}")
            if t.num_entries < 1:
                raise ValueError(f"{path}:{tree} has no entries")
            col: dict[str, np.ndarray] = {}
            for name, (attr, _dt) in CELLGEO_COLUMNS.items():
                col[attr] = np.asarray(t[name].array(library="np", entry_stop=1)[0])
        eta, r_perp = col["eta"].astype(np.float64), col["r_perp"].astype(np.float64)
        deta, dphi = col["deta"].astype(np.float64), col["dphi"].astype(np.float64)
        sampling = col["sampling"].astype(np.int64)
        unit = estimate_volume(sampling, eta, r_perp, deta, dphi, np.ones_like(eta))
        depth = np.divide(col["volume"], unit, out=np.zeros_like(unit), where=unit > 0)
        return cls.from_cells(
            cell_id=col["cell_id"],
            sampling=sampling,
            eta=eta,
            phi=col["phi"],
            r_perp=r_perp,
            z=r_perp * np.sinh(eta),
            deta=deta,
            dphi=dphi,
            depth=depth,
            source=f"cellgeo:{path.name}",
            volume=col["volume"],
            sigma=col["sigma"],
            neighbours={n: col[n] for n in NEIGHBOUR_NAMES},
        )


# --------------------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------------------


class _open_root:  # noqa: N801 (context manager used like a function)
    """``uproot.open`` with errors that name the file and what was expected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = None

    def __enter__(self):  # noqa: ANN204
        import uproot

        if not self.path.exists():
            raise FileNotFoundError(
                f"geometry file {self.path} does not exist; expected 'builtin', an MLTree file with a "
                f"'{CELLGEO_TREE}' tree, or a FastCaloSim cell-geometry ROOT file"
            )
        try:
            self.file = uproot.open(self.path)
            self.file.keys()  # the directory sits at the end of the file: catches truncation here
        except Exception as err:  # noqa: BLE001 - uproot raises many kinds for non-ROOT input
            raise ValueError(f"geometry file {self.path} is not a readable ROOT file: {err}") from err
        end, size = int(self.file.file.fEND), self.path.stat().st_size
        if size < end:
            self.file.close()
            raise ValueError(
                f"geometry file {self.path} is truncated: {size} bytes on disk, its ROOT header says {end}"
            )
        return self.file

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self.file is not None:
            self.file.close()
        if exc is not None and not isinstance(exc, ValueError | FileNotFoundError) and isinstance(exc, Exception):
            # uproot's raw OSError ('expected Chunk of length ...'), struct / zlib errors of a damaged file
            raise ValueError(
                f"geometry file {self.path} is truncated or damaged ({type(exc).__name__}: {exc})"
            ) from exc


def _tree_names(f) -> dict[str, str]:  # noqa: ANN001
    """Cycle-less key -> class name of the trees / RNTuples of an open uproot file."""
    return {k.split(";")[0]: v for k, v in f.classnames(recursive=False).items() if v in ("TTree", "ROOT::RNTuple")}


def _read_fastcalosim(path: Path, tree: str | None) -> dict[str, np.ndarray]:
    with _open_root(path) as f:
        names = _tree_names(f)
        if tree is None:
            hits = [n for n in names if all(b in f[n].keys() for b in ("identifier", "calosample"))]
            if not hits:
                raise ValueError(
                    f"{path}: no FastCaloSim geometry tree (branches identifier, calosample); "
                    f"trees found: {sorted(names)}"
                )
            tree = hits[0]
        elif tree not in names:
            raise ValueError(f"{path}: no tree {tree!r} (found: {sorted(names)})")
        t = f[tree]
        missing = [b for b in FASTCALOSIM_BRANCHES if b not in t.keys()]
        if missing:
            raise ValueError(f"{path}:{tree} misses FastCaloSim geometry branches {missing}")
        want = [b for b in (*FASTCALOSIM_BRANCHES, "dr", "dz", "eta_raw", "phi_raw") if b in t.keys()]
        return t.arrays(want, library="np")


def load_geometry(spec: str | os.PathLike | CaloGeometry = "builtin") -> CaloGeometry:
    """``"builtin"``, or a ROOT file with a ``CellGeo`` tree (MLTree) or a FastCaloSim geometry tree.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the file and what was expected)
    for an unreadable file, a file with neither tree, or missing branches.
    """
    if isinstance(spec, CaloGeometry):
        return spec
    if isinstance(spec, str) and spec.strip().lower() == "builtin":
        return CaloGeometry.builtin()
    path = Path(spec).expanduser()
    with _open_root(path) as f:
        names = _tree_names(f)
        is_cellgeo = CELLGEO_TREE in names
        is_fcs = any(all(b in f[n].keys() for b in ("identifier", "calosample")) for n in names)
    if is_cellgeo:
        return CaloGeometry.from_cellgeo(path)
    if is_fcs:
        return CaloGeometry.from_fastcalosim(path)
    raise ValueError(
        f"{path} has neither a '{CELLGEO_TREE}' tree (MLTree) nor a FastCaloSim geometry tree with branches "
        f"identifier, calosample; trees found: {sorted(names) or 'none'}"
    )


# --------------------------------------------------------------------------------------------------------------
# the built-in region table
# --------------------------------------------------------------------------------------------------------------


def read_region_table(path: str | os.PathLike = BUILTIN_TABLE) -> dict[str, np.ndarray]:
    """The built-in region table as columns (numeric columns as numpy arrays, ``name``/``surface`` as str)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"built-in geometry table {path} not found (regenerate it with benchmarks/derive_builtin_geometry.py)"
        )
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    if not rows or any(c not in rows[0] for c in TABLE_COLUMNS):
        raise ValueError(f"{path}: expected columns {TABLE_COLUMNS}")
    out: dict[str, np.ndarray] = {}
    for c in TABLE_COLUMNS:
        vals = [r[c] for r in rows]
        if c in ("name", "surface"):
            out[c] = np.array(vals)
        elif c in ("sampling", "side", "region", "n_eta", "n_phi"):
            out[c] = np.array(vals, dtype=np.int64)
        else:
            out[c] = np.array(vals, dtype=np.float64)
    if out["n_eta"].max() >= 1024 or out["n_phi"].max() >= 1024 or out["region"].max() >= 16:
        raise ValueError(f"{path}: n_eta, n_phi < 1024 and region < 16 are needed by the synthetic cell IDs")
    return out


def _circular_offset(edge: np.ndarray, period: float) -> float:
    """Median of ``edge mod period`` taken around its circular mean (robust to wrap-around)."""
    ang = np.mod(edge, period) / period * TWO_PI
    mean = np.angle(np.mean(np.exp(1j * ang)))
    dev = wrap_phi(ang - mean)
    return float(np.mod((mean + np.median(dev)) / TWO_PI * period, period))


class _Region(NamedTuple):
    """One region of the built-in table: regular eta-phi grid and the real cells it stands for."""

    lo: float  # |eta| of the low edge
    deta: float
    n_eta: int
    n_phi: int
    phi_offset: float
    cells: np.ndarray  # rows of the geometry file


def _fcal_bands(a: np.ndarray, idx: np.ndarray, deta: np.ndarray, n_bands: int) -> list[_Region]:
    """FCAL cells ``idx`` at |eta| ``a`` in ``n_bands`` eta bands of equal cell count, each a regular grid."""
    order = np.argsort(a)
    chunks = np.array_split(order, n_bands)
    edges = [float(np.min(a - deta[idx] / 2))]
    for c0, c1 in zip(chunks[:-1], chunks[1:], strict=True):
        edges.append(float((a[c0].max() + a[c1].min()) / 2))
    edges.append(float(np.max(a + deta[idx] / 2)))
    regions = []
    for region, c in enumerate(chunks):
        width = edges[region + 1] - edges[region]
        ne = max(1, int(round(width / np.median(deta[idx[c]]))))
        nph = max(4, int(round(len(c) / ne)))
        regions.append(_Region(edges[region], width / ne, ne, nph, 0.0, idx[c]))
    return regions


def _eta_phi_regions(
    s: int, side: int, a: np.ndarray, idx: np.ndarray, phi: np.ndarray, deta: np.ndarray, dphi: np.ndarray
) -> list[_Region]:
    """Eta rows of cells ``idx`` (|eta| ``a``) merged into regions of equal deta and phi cells that touch in eta."""
    key = np.round(a, 4)
    centres, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    row_mean = np.array([np.mean(a[inv == i]) for i in range(len(centres))])
    row_deta = np.array([np.median(deta[idx[inv == i]]) for i in range(len(centres))])
    row_dphi = np.array([np.median(dphi[idx[inv == i]]) for i in range(len(centres))])
    regions = []
    start = 0
    for i in range(1, len(centres) + 1):
        brk = i == len(centres)
        if not brk:
            same = (
                abs(row_deta[i] - row_deta[start]) < 1e-5
                and counts[i] == counts[start]
                and abs(row_dphi[i] - row_dphi[start]) < 1e-6
            )
            gap = centres[i] - centres[i - 1] - (row_deta[i] + row_deta[i - 1]) / 2
            brk = not same or abs(gap) > 0.1 * min(row_deta[i], row_deta[i - 1])
        if brk:
            sel = np.isin(inv, np.arange(start, i))
            cells = idx[sel]
            de = float(row_deta[start])
            nph = int(counts[start])
            if abs(nph * row_dphi[start] - TWO_PI) > 1e-3:
                log.warning(
                    "%s side %d: row with %d phi cells of %.4f does not cover 2 pi",
                    SAMPLING_NAMES[s],
                    side,
                    nph,
                    row_dphi[start],
                )
            off = _circular_offset(phi[cells] - dphi[cells] / 2 + np.pi, TWO_PI / nph)
            lo = float(row_mean[start] - de / 2)
            regions.append(_Region(lo, de, i - start, nph, off, cells))
            start = i
    return regions


def _region_row(
    s: int, side: int, region: int, reg: _Region, position: np.ndarray, depth: np.ndarray
) -> dict[str, object]:
    """Table row of ``reg``; ``position`` / ``depth``: r and dr (barrel) or |z| and dz (end-cap) of all cells."""
    endcap = bool(SAMPLING_IS_ENDCAP[s])
    pos = np.median(position[reg.cells])
    dep = np.median(depth[reg.cells])
    lo, de, ne = reg.lo, reg.deta, reg.n_eta
    return dict(
        sampling=s,
        name=SAMPLING_NAMES[s],
        side=side,
        region=region,
        abs_eta_min=round(lo, 6),
        abs_eta_max=round(lo + ne * de, 6),
        deta=round(de, 7),
        n_eta=ne,
        n_phi=reg.n_phi,
        phi_offset=round(reg.phi_offset, 6),
        surface="z" if endcap else "r",
        position_mm=round(float(pos), 2),
        depth_mm=round(float(dep), 2),
    )


def derive_region_table(path: str | os.PathLike, n_fcal_bands: int = 4) -> list[dict[str, object]]:
    """Derive the built-in region table from a FastCaloSim geometry file (real ATLAS cells).

    Cells of each (sampling, side) are grouped into eta rows by their nominal (``eta_raw``) centre; consecutive
    rows with the same deta and number of phi cells that touch in eta form one region. Position: median ``r``
    (barrel) or median ``|z|`` (end-cap) of the region's cells; depth: median ``dr`` or ``dz``. FCAL (x-y
    segmented) is split into ``n_fcal_bands`` eta bands of equal cell count per side, each approximated by a
    regular eta-phi grid whose cell count matches the band's.
    """
    path = Path(path)
    d = _read_fastcalosim(path, None)
    samp = d["calosample"].astype(np.int64)
    eta = d.get("eta_raw", d["eta"]).astype(np.float64)
    phi = d.get("phi_raw", d["phi"]).astype(np.float64)
    deta, dphi = d["deta"].astype(np.float64), d["dphi"].astype(np.float64)
    r, absz = d["r"].astype(np.float64), np.abs(d["z"].astype(np.float64))
    dr, dz = d.get("dr", np.zeros_like(r)).astype(np.float64), d.get("dz", np.zeros_like(r)).astype(np.float64)
    rows: list[dict[str, object]] = []
    for s in range(N_SAMPLINGS):
        position, depth = (absz, dz) if SAMPLING_IS_ENDCAP[s] else (r, dr)
        for side in (-1, 1):
            m = (samp == s) & ((eta >= 0) if side > 0 else (eta < 0))
            idx = np.flatnonzero(m)
            if len(idx) == 0:
                continue
            a = side * eta[idx]  # |eta| (may be slightly negative for a cell straddling eta = 0)
            if s >= 21:  # FCAL: equal-count eta bands
                regions = _fcal_bands(a, idx, deta, n_fcal_bands)
            else:
                regions = _eta_phi_regions(s, side, a, idx, phi, deta, dphi)
            rows.extend(_region_row(s, side, k, reg, position, depth) for k, reg in enumerate(regions))
    return rows


def write_region_table(rows: list[dict[str, object]], path: str | os.PathLike, header: str = "") -> Path:
    """Write the region table as CSV (``#`` comment lines first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        for line in header.splitlines():
            fh.write(f"# {line}\n")
        w = csv.DictWriter(fh, fieldnames=list(TABLE_COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path
