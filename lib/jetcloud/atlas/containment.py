"""The containment radius of charged particles in the calorimeter, and the adaptive cone radius built on it.

:func:`measure_containment_radius` measures, per track with a truth link, the Delta R (dimensionless, from the
track's EMB2 / EME2 reference direction) within which cluster cells hold a given fraction of the linked particle's
deposited truth energy (``cluster_cell_hitsTruthE``, GeV), and tabulates its median and quartiles in bins of
track pT (GeV) and |eta|. :func:`save_containment_table` / :func:`load_containment_table` write and read the table
as CSV (the committed one is :data:`CONTAINMENT_TABLE_PATH`), and :func:`adaptive_radius` interpolates it into a
per-track cone radius, clipped to :data:`ADAPTIVE_RADIUS_RANGE` (``delta_r="adaptive"`` of
:func:`jetcloud.atlas.samples.build_chunk`).
"""

from __future__ import annotations

import csv
import functools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.arrays import fill_from_nearest_row, gather_ranges, sort_stable
from jetcloud.atlas.celltable import CellTable
from jetcloud.atlas.chunks import ChunkCells, ChunkTracks, new_report, prepare_cells, prepare_tracks
from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES
from jetcloud.io.atomic import atomic_path
from jetcloud.kinematics import delta_phi

__all__ = [
    "measure_containment_radius",
    "save_containment_table",
    "load_containment_table",
    "adaptive_radius",
    "CONTAINMENT_TABLE_PATH",
    "ADAPTIVE_RADIUS_RANGE",
]

log = logging.getLogger(__name__)

#: The adaptive radius is clipped to this range.
ADAPTIVE_RADIUS_RANGE: tuple[float, float] = (0.05, 0.4)
#: The committed containment-radius table (measured on the simulation).
CONTAINMENT_TABLE_PATH = Path(__file__).resolve().parent / "data" / "containment_radius.csv"


# --------------------------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------------------------


def _track_containment(events: ak.Array, table: CellTable, fraction: float, truth_unit: str) -> dict[str, np.ndarray]:
    """Per track with a truth link and a reference: the Delta R holding ``fraction`` of the particle's energy."""
    report = new_report()
    cells = prepare_cells(
        events,
        table,
        shared_cells="sum",
        truth_scale=1e-3 if truth_unit == "MeV" else 1.0,
        source="",
        entry_start=0,
        report=report,
    )
    tracks = prepare_tracks(events, "", 0)
    p = tracks.cols["trackTruthParticleIndex"].astype(np.int64)
    good = np.flatnonzero(tracks.has_ref & (p >= 0))
    ent_t, e, dr = _particle_cells(cells, tracks, table, p, good)
    tot, first_idx = _first_reaching(ent_t, e, len(good), fraction)
    ok = (tot > 0) & (first_idx >= 0)
    return {
        "pt": tracks.cols["trackPt"][good][ok].astype(np.float64),
        "abseta": np.abs(tracks.ref_eta[good][ok]),
        "radius": dr[first_idx[ok]],
        "energy": tot[ok],
    }


def _particle_cells(
    cells: ChunkCells, tracks: ChunkTracks, table: CellTable, p: np.ndarray, good: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(track, energy, Delta R)`` of the truth entries of each good track's particle, by track then Delta R."""
    # truth entries (cell, particle, energy) keyed by (event, particle)
    rows = np.concatenate([np.flatnonzero(c >= 0) for c in cells.truth_idx])
    part = np.concatenate([c[c >= 0] for c in cells.truth_idx]).astype(np.int64)
    energy = np.concatenate([e[c >= 0] for c, e in zip(cells.truth_idx, cells.truth_e, strict=True)])
    n_part = int(max(part.max(initial=0), p.max(initial=0))) + 1
    ekey = cells.event[rows] * n_part + part
    skey, order = sort_stable(ekey)
    tkey = tracks.event[good] * n_part + p[good]
    lo = np.searchsorted(skey, tkey, side="left")
    hi = np.searchsorted(skey, tkey, side="right")
    ent = order[gather_ranges(lo, hi - lo)]
    ent_t = np.repeat(np.arange(len(good)), hi - lo)
    c = rows[ent]
    e = energy[ent]
    trk = good[ent_t]
    rk = cells.rank[c]
    dr = np.hypot(table.eta[rk] - tracks.ref_eta[trk], delta_phi(table.phi[rk], tracks.ref_phi[trk]))
    o = np.lexsort((dr, ent_t))
    return ent_t[o], e[o], dr[o]


def _first_reaching(ent_t: np.ndarray, e: np.ndarray, n_tracks: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Per track: its total energy, and its first entry whose cumulative energy reaches ``fraction`` (-1 if none)."""
    tot = np.bincount(ent_t, weights=e, minlength=n_tracks)
    csum = np.cumsum(e)
    start = np.searchsorted(ent_t, np.arange(n_tracks))
    before = np.where(start > 0, csum[np.maximum(start - 1, 0)], 0.0)
    reached = (csum - before[ent_t]) >= fraction * tot[ent_t] - 1e-12
    # first entry of each track that reaches the fraction
    idx = np.flatnonzero(reached)
    first_idx = np.full(n_tracks, -1, np.int64)
    if len(idx):
        tr = ent_t[idx]
        keep = np.r_[True, tr[1:] != tr[:-1]]
        first_idx[tr[keep]] = idx[keep]
    return tot, first_idx


def measure_containment_radius(
    files: str | os.PathLike | Iterable[str | os.PathLike],
    geometry: Any,
    pt_bins: Sequence[float] = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0, 200.0, 500.0),
    eta_bins: Sequence[float] = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5),
    fraction: float = 0.9,
    *,
    step_size: int = 250,
    truth_unit: str = "GeV",
    min_energy: float = 0.0,
    min_tracks: int = 20,
) -> dict[str, np.ndarray]:
    """Measure the radius holding ``fraction`` of a particle's deposited truth energy vs track pT and |eta|.

    For every track with a truth link and an EMB2/EME2 reference, the cluster cells where the linked particle
    appears in ``hitsTruthIndex`` give (Delta R from the reference, its ``hitsTruthE``); the radius is the
    smallest Delta R whose cumulative energy reaches ``fraction`` of the particle's total (tracks with a total
    <= ``min_energy`` GeV are ignored). Returns the table as columns: ``pt_lo, pt_hi`` (GeV), ``abseta_lo,
    abseta_hi``, ``n_tracks``, ``radius`` (median), ``radius_q25``, ``radius_q75`` (NaN for bins with fewer
    than ``min_tracks`` tracks; :func:`adaptive_radius` fills them from the nearest filled pT bin).
    ``files`` may mix samples (JZ slices, particle guns) simulated with the same geometry.
    """
    from jetcloud.atlas.mltree import iterate_events

    tab = CellTable.from_geometry(geometry)
    parts: list[dict[str, np.ndarray]] = []
    for chunk in iterate_events(files, JETPOINTNET_BRANCHES, step_size):
        parts.append(_track_containment(chunk, tab, fraction, truth_unit))
    cols = {k: np.concatenate([p[k] for p in parts]) for k in ("pt", "abseta", "radius", "energy")}
    sel = cols["energy"] > min_energy
    pt_b, eta_b = np.asarray(pt_bins, float), np.asarray(eta_bins, float)
    ip = np.searchsorted(pt_b, cols["pt"][sel], side="right") - 1
    ie = np.searchsorted(eta_b, cols["abseta"][sel], side="right") - 1
    rad = cols["radius"][sel]
    names = ("pt_lo", "pt_hi", "abseta_lo", "abseta_hi", "n_tracks", "radius", "radius_q25", "radius_q75")
    out: dict[str, list[float]] = {k: [] for k in names}
    for i in range(len(pt_b) - 1):  # loop over the (few) bins of the table only
        for j in range(len(eta_b) - 1):
            r = rad[(ip == i) & (ie == j)]
            q = np.quantile(r, [0.5, 0.25, 0.75]) if len(r) >= max(min_tracks, 1) else np.full(3, np.nan)
            row = (pt_b[i], pt_b[i + 1], eta_b[j], eta_b[j + 1], len(r), *q)
            for k, v in zip(names, row, strict=True):
                out[k].append(v)
    log.info("containment radius from %d tracks", int(sel.sum()))
    return {k: np.asarray(v, dtype=np.int64 if k == "n_tracks" else np.float64) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------------------
# the table and the adaptive radius
# --------------------------------------------------------------------------------------------------------------


def save_containment_table(
    table: Mapping[str, np.ndarray], path: str | os.PathLike = CONTAINMENT_TABLE_PATH, header: str = ""
) -> Path:
    """Write the table of :func:`measure_containment_radius` as CSV (``#`` comment lines first), atomically."""
    names = list(table)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            for line in header.splitlines():
                fh.write(f"# {line}\n")
            w = csv.writer(fh)
            w.writerow(names)
            for row in zip(*(table[n] for n in names), strict=True):
                w.writerow([f"{v:.6g}" if isinstance(v, float | np.floating) else int(v) for v in row])
    return Path(path)


@functools.lru_cache(maxsize=4)
def _load_table_cached(path: str) -> dict[str, np.ndarray]:
    """Parse a containment-table CSV once per process (callers copy the arrays)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(line for line in fh if not line.startswith("#")))
    names, data = rows[0], np.array(rows[1:], dtype=np.float64)
    return {n: data[:, i] for i, n in enumerate(names)}


def load_containment_table(path: str | os.PathLike = CONTAINMENT_TABLE_PATH) -> dict[str, np.ndarray]:
    """Read the containment-radius table (columns of :func:`measure_containment_radius`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"containment-radius table {path} not found (make it with "
            "measure_containment_radius + save_containment_table)"
        )
    return {k: v.copy() for k, v in _load_table_cached(os.fspath(path.resolve())).items()}


def adaptive_radius(pt: np.ndarray, eta: np.ndarray, table: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Per-track cone radius: bilinear interpolation of the table's median radius in (log pT, |eta|).

    ``pt`` in GeV; ``table`` defaults to :func:`load_containment_table`. Interpolation runs between bin centres
    (log-centre in pT); values outside the table use the edge bins. Bins without tracks are filled from the
    nearest filled pT bin of the same |eta| row (else the overall median). The result is clipped to
    :data:`ADAPTIVE_RADIUS_RANGE` = [0.05, 0.4].
    """
    table = load_containment_table() if table is None else table
    pt_edges = np.unique(np.r_[table["pt_lo"], table["pt_hi"]])
    eta_edges = np.unique(np.r_[table["abseta_lo"], table["abseta_hi"]])
    n_pt, n_eta = len(pt_edges) - 1, len(eta_edges) - 1
    grid = np.full((n_pt, n_eta), np.nan)
    ip = np.searchsorted(pt_edges, table["pt_lo"])
    ie = np.searchsorted(eta_edges, table["abseta_lo"])
    grid[ip, ie] = table["radius"]
    fallback = np.nanmedian(grid) if np.isfinite(grid).any() else ADAPTIVE_RADIUS_RANGE[1]
    grid = fill_from_nearest_row(grid, fallback)  # empty bins from the nearest filled pT bin
    lpt_c = 0.5 * (np.log(np.maximum(pt_edges[:-1], 1e-3)) + np.log(pt_edges[1:]))
    eta_c = 0.5 * (eta_edges[:-1] + eta_edges[1:])
    lpt = np.log(np.maximum(np.asarray(pt, np.float64), 1e-3))
    aeta = np.abs(np.asarray(eta, np.float64))

    def weights(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(centres) == 1:
            return np.zeros(len(x), np.int64), np.zeros(len(x))
        i = np.clip(np.searchsorted(centres, x) - 1, 0, len(centres) - 2)
        w = np.clip((x - centres[i]) / (centres[i + 1] - centres[i]), 0.0, 1.0)
        return i, w

    i, wi = weights(lpt, lpt_c)
    j, wj = weights(aeta, eta_c)
    i1, j1 = np.minimum(i + 1, n_pt - 1), np.minimum(j + 1, n_eta - 1)
    r = (
        (1 - wi) * (1 - wj) * grid[i, j]
        + wi * (1 - wj) * grid[i1, j]
        + (1 - wi) * wj * grid[i, j1]
        + wi * wj * grid[i1, j1]
    )
    return np.clip(r, *ADAPTIVE_RADIUS_RANGE)
