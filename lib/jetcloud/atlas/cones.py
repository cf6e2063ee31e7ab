"""Cone association for track-centred samples: which cells and tracks lie within Delta R of a track.

Delta R = sqrt(Delta eta^2 + Delta phi^2) (dimensionless; eta and phi in rad, phi wrap-around included) between a
query direction (a track's reference, see :func:`jetcloud.atlas.chunks.prepare_tracks`) and a cell of the same
event (:func:`cone_pairs`) or another track's reference (:func:`other_track_pairs`). :func:`point_sets` and
:func:`min_distance` give the 3-D distance in mm from points to a track's layer intersection points. Everything is
vectorised over all queries of a chunk (no Python loop over events, tracks or cells); cell comparisons run in
float32, as in the sample files.
"""

from __future__ import annotations

import numpy as np

from jetcloud.arrays import gather_ranges, sort_stable
from jetcloud.atlas.celltable import CellTable
from jetcloud.atlas.chunks import ChunkCells, ChunkTracks

__all__ = ["cone_pairs", "other_track_pairs", "point_sets", "min_distance", "abs_dphi"]

_F32 = np.float32


def cone_pairs(
    cells: ChunkCells, table: CellTable, ev: np.ndarray, eta: np.ndarray, phi: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (query, cell) pairs with Delta R(cell, query) <= radius in the same event, grouped by query.

    Queries are given by their event ``ev`` (index in the chunk), direction ``eta``, ``phi`` (rad, in [-pi, pi])
    and cone ``radius``; cells by their position in ``cells``. Cells are sorted by (event, phi band, eta) with
    bands of width w > max(radius); each query looks up its (at most 3) phi bands, takes the eta window of each
    by binary search, and applies the exact Delta R cut (phi wrap-around included) to those candidates only:
    cost ~ queries x cells in a 2w x 2r box.
    """
    n_q = len(ev)
    if n_q == 0 or len(cells.event) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    two_pi = 2 * np.pi
    n_bands = int(np.clip(np.floor(two_pi / (float(radius.max()) + 1e-5)), 3, 64))
    width = two_pi / n_bands
    c_phi = table.phi[cells.rank]
    band = np.minimum(((c_phi + np.pi) / width).astype(np.int64), n_bands - 1)
    _, order = sort_stable((cells.event * n_bands + band) * max(len(table), 1) + table.eta_rank[cells.rank])
    rank = cells.rank[order]
    c_eta = table.eta[rank]
    key = (cells.event[order] * n_bands + band[order]) * 16.0 + (c_eta + 8.0)
    c_eta, c_phi = c_eta.astype(_F32), c_phi[order].astype(_F32)
    # up to 3 bands per query: b_lo .. b_hi (mod n_bands)
    r_pad = radius + 1e-6
    b_lo = np.floor((phi - r_pad + np.pi) / width).astype(np.int64)
    b_hi = np.floor((phi + r_pad + np.pi) / width).astype(np.int64)
    b = b_lo[:, None] + np.arange(3)
    use = b <= b_hi[:, None]
    base = (ev[:, None] * n_bands + np.mod(b, n_bands)) * 16.0 + 8.0 + eta[:, None]
    lo = np.searchsorted(key, (base - r_pad[:, None]).ravel(), side="left")
    hi = np.searchsorted(key, (base + r_pad[:, None]).ravel(), side="right")
    cnt = np.where(use.ravel(), hi - lo, 0)
    cand = gather_ranges(lo, cnt)
    cand_q = np.repeat(np.repeat(np.arange(n_q, dtype=np.int64), 3), cnt)
    deta = c_eta[cand] - eta.astype(_F32)[cand_q]
    dphi = abs_dphi(c_phi[cand], phi.astype(_F32)[cand_q])
    deta *= deta
    dphi *= dphi
    deta += dphi
    inside = deta <= (radius * radius).astype(_F32)[cand_q]
    return cand_q[inside], order[cand[inside]]


def other_track_pairs(
    tracks: ChunkTracks, kept: np.ndarray, eta: np.ndarray, phi: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(query, track)`` pairs: the other tracks of each query's event with a reference within its cone.

    Query ``i`` is track ``kept[i]`` with direction ``eta[i]``, ``phi[i]`` (rad) and cone ``radius[i]``; the
    query track itself and tracks without a reference are never paired. Pairs are grouped by query, tracks in
    event order.
    """
    n_s = len(kept)
    s_ev = tracks.event[kept]
    n_in_ev = tracks.n_of_event[s_ev]
    other = gather_ranges(tracks.start_of_event[s_ev], n_in_ev)
    o_s = np.repeat(np.arange(n_s, dtype=np.int64), n_in_ev)
    ok = (other != kept[o_s]) & tracks.has_ref[other]
    o_s, other = o_s[ok], other[ok]
    d_eta = tracks.ref_eta[other] - eta[o_s]
    d_phi = abs_dphi(tracks.ref_phi[other], phi[o_s])
    ok = d_eta * d_eta + d_phi * d_phi <= radius[o_s] ** 2
    return o_s[ok], other[ok]


def point_sets(count: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Pad flat point lists (``count`` points per set, in set order) into a (3, slots, sets) float32 array (NaN)."""
    n_slots = int(count.max()) if len(count) else 0
    out = np.full((3, n_slots, len(count)), np.nan, _F32)
    owner = np.repeat(np.arange(len(count)), count)
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    out[0, slot, owner], out[1, slot, owner], out[2, slot, owner] = x, y, z
    return out


def min_distance(sets: np.ndarray, group: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Minimum Euclidean distance (mm, float32) from each (x, y, z) to the points of set ``group`` (NaN if none).

    ``sets`` comes from :func:`point_sets`; one vectorised pass per point slot (at most 19), NaN slots ignored.
    """
    best = np.full(len(group), np.inf, _F32)
    x, y, z = (np.asarray(v, _F32) for v in (x, y, z))
    for k in range(sets.shape[1]):
        d = x - sets[0, k][group]
        d2 = d * d
        d = y - sets[1, k][group]
        d *= d
        d2 += d
        d = z - sets[2, k][group]
        d *= d
        d2 += d
        np.fmin(best, d2, out=best)
    np.sqrt(best, out=best)
    best[np.isinf(best)] = np.nan
    return best


def abs_dphi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """|delta phi| for angles already in [-pi, pi] (3 array passes instead of a modulo)."""
    d = np.abs(phi1 - phi2)
    return np.minimum(d, 2 * np.pi - d)
