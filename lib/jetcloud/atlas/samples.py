"""JetPointNet track-centred samples from MLTree ``EventTree`` chunks (stage 1 of notebook 01).

One sample per track: the track's reference direction (EMB2 extrapolation, else EME2), its layer intersection
points, the deduplicated cluster cells of its event within a cone ``Delta R <= delta_r`` of the reference,
per-cell truth labels, and the other tracks of the event whose reference lies in the same cone. The algorithm
is the original ``jets_root_to_awk.py`` (``jetpointnet-reference.md`` section 2) with its bugs fixed, computed
for all events of a chunk at once with numpy (no Python loop over events, tracks or cells).

Sample schema (one row per sample; ``ak.to_parquet`` files, the point-cloud stage relies on it exactly)::

    eventNumber int64, trackID int32, trackEta float32, trackPhi float32, trackPt float32, track_part_Idx int32,
    trackChi2PerNDOF float32, trackSubtractedCaloEnergy float32, delta_r float32,
    total_associated_cell_energy float32, focus_truth_energy float32, n_cells int32,
    track_points: var * {layer: int8, X: float32, Y: float32, Z: float32},
    cells: var * {ID: uint64, E: float32, X, Y, Z, eta, phi: float32, sampling: int16,
                  distance_to_track: float32, frac_label: float32, focus_energy: float32,
                  truth_energy: float32, total_label: float32},
    other_tracks: var * {trackID: int32, track_part_Idx: int32, trackPt: float32},
    other_track_points: var * {track: int32, layer: int8, X, Y, Z: float32, distance_to_track: float32}

Fields and units:

- ``eventNumber``: MLTree ``eventNumber``. ``trackID``: index of the track in its event (``0..nTrack-1``).
- ``trackEta``, ``trackPhi``: the **reference** direction (EMB2 extrapolation if valid, else EME2), not the
  perigee. ``trackPt`` GeV. ``track_part_Idx``: ``trackTruthParticleIndex`` (-1 = no truth link).
- ``trackChi2PerNDOF``: ``trackChiSquared / trackNumberDOF``; NaN when ``trackNumberDOF == 0`` (counted in
  the report as ``ndof_zero``; the original gives inf).
- ``trackSubtractedCaloEnergy``: as in MLTree, **MeV**, integer-valued; -999 when particle flow did not use it.
- ``delta_r``: the cone radius used for this track (the fixed value, or the adaptive per-track radius).
- ``total_associated_cell_energy``: sum of ``cells.E`` (GeV). ``focus_truth_energy``: sum of
  ``cells.focus_energy`` (GeV). ``n_cells``: number of cells (may be 0; no minimum is applied here).
- ``track_points``: the focused track's valid layer intersections, in ``LAYER_NAMES`` order; ``layer`` is the
  index into :data:`jetcloud.atlas.layers.LAYER_NAMES` (0 = EMB1 ... 18 = TileExt2); X, Y, Z in mm, computed with
  the correct end-cap formula (z = sign(eta) Z0) unless ``reproduce_original_bug=True``.
- ``cells`` (ascending ``ID``): ``E`` the cell energy in GeV (shared cells: sum of the weighted energies of all
  occurrences by default, see ``shared_cells``); X, Y, Z (mm) from ``rPerp`` (X = r cos phi, Y = r sin phi,
  Z = r sinh eta); ``eta``, ``phi``, ``sampling`` (CaloSampling number) from ``CellGeo``;
  ``distance_to_track``: minimum 3-D distance (mm) to the focused track's intersection points (NaN if it has
  none). Labels, with p the focused track's truth index and the cell's truth lists idx/e (n <= 3, GeV):

  - ``truth_energy`` = T = sum(e) (every listed contributor);
  - ``frac_label`` = e[j*] / T if p is in idx (j* its first position), else 0 (0 when T = 0);
  - ``focus_energy`` = e[j*] if p is in idx, else 0: **the focused particle's own deposit**;
  - ``total_label`` = T if p is in idx, else 0: the original ``Total_Label``, kept for comparisons. It is the
    cell's *total* truth energy whenever p contributed, not the focused particle's energy.

  p = -1 never matches. Because MLTree keeps the 3 *smallest* contributions, p can be missing from a cell it
  deposited in (labels 0 there).
- ``other_tracks``: every other track of the event with a valid reference within ``Delta R <= delta_r`` (the
  focused track's radius) of the focused reference, in track order; tracks without a reference are never
  associated (the original associated them with each other at Delta R = 0).
- ``other_track_points``: the valid intersection points of those tracks, ``track`` indexing this sample's
  ``other_tracks``; ``distance_to_track`` is the minimum distance (mm) to the focused track's points.

Documented choices (the original's behaviour in brackets):

- A track with neither a valid EMB2 nor EME2 extrapolation yields no sample and is counted
  (``skipped_no_reference``) [reference -1e9, no cells, associated with every other such track].
- A cell occurrence with a NaN energy is dropped and counted (``nan_cell_energy``); the cell's other
  occurrences (shared cells) are kept [NaN propagates into sums].
- A cell ID absent from the geometry is an error naming the file and the entry [``ak.zip`` broadcast error].
- The geometry is joined by ID (sort and search): any ``cell_geo_ID`` order works [ascending IDs required].
- Truth lists of a shared cell: those of its first occurrence in cluster order (highest-energy cluster).
- ``truth_unit="MeV"`` divides ``cluster_cell_hitsTruthE`` by 1000 (MLTree master writes MeV, the file
  JetPointNet used GeV); the report holds the summed truth and cell energies so the caller can check the scale.

Splits are by ``eventNumber`` with a deterministic hash (:func:`split_of_event`), so an event never lands in
two splits whatever the file or chunk boundaries.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.arrays import fill_from_nearest_row, gather_ranges, sort_stable
from jetcloud.atlas.layers import LAYER_NAMES, MISSING_THRESHOLD, layer_intersections
from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES
from jetcloud.io.atomic import atomic_path
from jetcloud.kinematics import delta_phi

__all__ = [
    "SAMPLE_TYPE",
    "SPLIT_NAMES",
    "CellTable",
    "build_chunk",
    "build_samples",
    "split_of_event",
    "merge_reports",
    "measure_containment_radius",
    "save_containment_table",
    "load_containment_table",
    "adaptive_radius",
    "CONTAINMENT_TABLE_PATH",
    "ADAPTIVE_RADIUS_RANGE",
]

log = logging.getLogger(__name__)

#: ``ak.type`` string of one sample row (see the module docstring).
SAMPLE_TYPE = (
    "{eventNumber: int64, trackID: int32, trackEta: float32, trackPhi: float32, trackPt: float32, "
    "track_part_Idx: int32, trackChi2PerNDOF: float32, trackSubtractedCaloEnergy: float32, delta_r: float32, "
    "total_associated_cell_energy: float32, focus_truth_energy: float32, n_cells: int32, "
    "track_points: var * {layer: int8, X: float32, Y: float32, Z: float32}, "
    "cells: var * {ID: uint64, E: float32, X: float32, Y: float32, Z: float32, eta: float32, phi: float32, "
    "sampling: int16, distance_to_track: float32, frac_label: float32, focus_energy: float32, "
    "truth_energy: float32, total_label: float32}, "
    "other_tracks: var * {trackID: int32, track_part_Idx: int32, trackPt: float32}, "
    "other_track_points: var * {track: int32, layer: int8, X: float32, Y: float32, Z: float32, "
    "distance_to_track: float32}}"
)
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
#: The adaptive radius is clipped to this range.
ADAPTIVE_RADIUS_RANGE: tuple[float, float] = (0.05, 0.4)
CONTAINMENT_TABLE_PATH = Path(__file__).resolve().parent / "data" / "containment_radius.csv"

_EMB2 = LAYER_NAMES.index("EMB2")
_EME2 = LAYER_NAMES.index("EME2")
_N_LAYERS = len(LAYER_NAMES)
_EXTRAP_BRANCHES = [f"track{c}_{name}" for name in LAYER_NAMES for c in ("Eta", "Phi")]
_TRACK_BRANCHES = (
    "trackPt",
    "trackTruthParticleIndex",
    "trackSubtractedCaloEnergy",
    "trackChiSquared",
    "trackNumberDOF",
)
_CELLGEO_COLUMNS = ["cell_geo_ID", "cell_geo_sampling", "cell_geo_eta", "cell_geo_phi", "cell_geo_rPerp"]
_F32 = np.float32


# --------------------------------------------------------------------------------------------------------------
# geometry table
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellTable:
    """The cell geometry columns this stage needs, in ascending-ID order ("rank" order).

    Built from a :class:`jetcloud.atlas.cellgeo.CaloGeometry`, a ``CellGeo`` dict (``read_cellgeo``) or a
    ``CellGeo`` file. The join never assumes the source is ID-sorted: rows are sorted by ID here, and
    :meth:`rank_of` maps IDs to ranks by binary search. Units: mm, rad.
    """

    ids: np.ndarray  # uint64, ascending
    sampling: np.ndarray  # int16
    eta: np.ndarray  # float64
    phi: np.ndarray  # float64
    x: np.ndarray  # float64, mm
    y: np.ndarray  # float64, mm
    z: np.ndarray  # float64, mm
    eta_rank: np.ndarray  # int64: rank of each cell in eta order
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_columns(
        cls, ids: np.ndarray, sampling: np.ndarray, eta: np.ndarray, phi: np.ndarray, r_perp: np.ndarray, source: str
    ) -> CellTable:
        """From ``CellGeo``-like columns in any order (IDs must be unique)."""
        ids = np.asarray(ids).astype(np.uint64, copy=False)
        order = np.argsort(ids, kind="stable")
        sid = ids[order]
        if len(sid) > 1 and np.any(sid[1:] == sid[:-1]):
            raise ValueError(f"geometry {source!r} has duplicate cell IDs")
        eta = np.asarray(eta, np.float64)[order]
        phi = delta_phi(np.asarray(phi, np.float64)[order], 0.0)  # wrapped to (-pi, pi]
        r = np.asarray(r_perp, np.float64)[order]
        eta_rank = np.empty(len(sid), np.int64)
        eta_rank[np.argsort(eta, kind="stable")] = np.arange(len(sid))
        return cls(
            ids=sid,
            sampling=np.asarray(sampling)[order].astype(np.int16),
            eta=eta,
            phi=phi,
            x=r * np.cos(phi),
            y=r * np.sin(phi),
            z=r * np.sinh(eta),
            eta_rank=eta_rank,
            source=source,
        )

    @classmethod
    def from_geometry(cls, geometry: Any) -> CellTable:
        """From a ``CaloGeometry``, a ``CellGeo`` dict, a ``CellTable`` (returned as is) or a ``CellGeo`` file."""
        if isinstance(geometry, CellTable):
            return geometry
        if isinstance(geometry, str | os.PathLike):
            return _cell_table_from_file(*_file_key(geometry))
        if isinstance(geometry, Mapping):
            return cls.from_columns(*(geometry[c] for c in _CELLGEO_COLUMNS), source="CellGeo dict")
        return cls.from_columns(
            geometry.cell_id,
            geometry.sampling,
            geometry.eta,
            geometry.phi,
            geometry.r_perp,
            source=getattr(geometry, "source", "") or type(geometry).__name__,
        )

    def rank_of(self, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rank, found)`` for **ascending** query IDs (sorted queries keep the binary search cache-friendly)."""
        pos = np.searchsorted(self.ids, sorted_ids)
        pos_c = np.minimum(pos, max(len(self.ids) - 1, 0))
        found = (pos < len(self.ids)) & (self.ids[pos_c] == sorted_ids) if len(self.ids) else pos < 0
        return pos_c, found


def _file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"geometry file not found: {p}")
    st = p.stat()
    return str(p), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=4)
def _cell_table_from_file(path: str, _mtime: int, _size: int) -> CellTable:
    """Read the 5 needed ``CellGeo`` branches once per process (cached on path, mtime and size).

    A file without a ``CellGeo`` tree is read as a FastCaloSim geometry dump (real ATLAS cell IDs and positions,
    as in ``../shared/data/atlas-geometry``) through :func:`jetcloud.atlas.cellgeo.load_geometry`.
    """
    import uproot

    from jetcloud.atlas.mltree import read_cellgeo
    from jetcloud.atlas.mltree_schema import CELLGEO_TREE

    with uproot.open(path) as f:
        has_cellgeo = CELLGEO_TREE in {k.split(";")[0] for k in f.keys(recursive=False)}
    if not has_cellgeo:
        from jetcloud.atlas.cellgeo import load_geometry

        return CellTable.from_geometry(load_geometry(path))
    cols = read_cellgeo(path, _CELLGEO_COLUMNS)
    return CellTable.from_columns(*(cols[c] for c in _CELLGEO_COLUMNS), source=Path(path).name)


# --------------------------------------------------------------------------------------------------------------
# jagged-array plumbing
# --------------------------------------------------------------------------------------------------------------


def _list_parts(layout: ak.contents.Content) -> tuple[np.ndarray, np.ndarray, ak.contents.Content]:
    """``(starts, stops, content)`` of a list layout (ListOffsetArray, ListArray, RegularArray)."""
    while isinstance(layout, ak.contents.IndexedArray | ak.contents.UnmaskedArray):
        layout = layout.project() if isinstance(layout, ak.contents.IndexedArray) else layout.content
    if isinstance(layout, ak.contents.ListOffsetArray):
        off = np.asarray(layout.offsets.data).astype(np.int64, copy=False)
        return off[:-1], off[1:], layout.content
    if isinstance(layout, ak.contents.ListArray):
        return (
            np.asarray(layout.starts.data).astype(np.int64),
            np.asarray(layout.stops.data).astype(np.int64),
            layout.content,
        )
    if isinstance(layout, ak.contents.RegularArray):
        starts = np.arange(layout.length, dtype=np.int64) * layout.size
        return starts, starts + layout.size, layout.content
    raise TypeError(f"expected a jagged list array, got {type(layout).__name__}")


def _same_lists(a: ak.contents.Content, b: ak.contents.Content) -> bool:
    """True if two list layouts have identical starts and stops (same jagged structure, same positions)."""
    sa, ea, _ = _list_parts(a)
    sb, eb, _ = _list_parts(b)
    return np.array_equal(sa, sb) and np.array_equal(ea, eb)


def _values(layout: ak.contents.Content) -> np.ndarray:
    while isinstance(layout, ak.contents.IndexedArray | ak.contents.UnmaskedArray):
        layout = layout.project() if isinstance(layout, ak.contents.IndexedArray) else layout.content
    if not isinstance(layout, ak.contents.NumpyArray):
        raise TypeError(f"expected numbers, got {type(layout).__name__}")
    return np.asarray(layout.data)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray | slice:
    """Positions ``concat(arange(s, s + c))``; a slice when the ranges are contiguous (no copy)."""
    if len(starts) == 0:
        return slice(0, 0)
    if np.array_equal(starts[1:], starts[:-1] + counts[:-1]):
        return slice(int(starts[0]), int(starts[0] + counts.sum()))
    return gather_ranges(starts, counts)


def _descend(layout: ak.contents.Content, pos: np.ndarray | slice, counts: np.ndarray | None = None):
    """One level down: for the lists at ``pos`` (truncated to ``counts`` if given) -> (counts, positions, content)."""
    starts, stops, content = _list_parts(layout)
    s, n = starts[pos], stops[pos] - starts[pos]
    if counts is not None:
        if np.any(n < counts):
            raise ValueError("inner lists shorter than the cell lists")
        n = counts
    return n, _ranges(s, n), content


def _flat1(events: ak.Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(counts per event, flat values) of a ``var * T`` branch."""
    starts, stops, content = _list_parts(events[name].layout)
    return stops - starts, _values(content)[_ranges(starts, stops - starts)]


# --------------------------------------------------------------------------------------------------------------
# cells of a chunk
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Cells:
    """Deduplicated cells of a chunk, in (ID, event) order, with their truth lists as K columns."""

    event: np.ndarray  # int64
    rank: np.ndarray  # int64, ID rank in the CellTable
    energy: np.ndarray  # float64, GeV
    truth_idx: list[np.ndarray]  # K columns (int32, -1 = no entry)
    truth_e: list[np.ndarray]  # K columns (float64 GeV, 0 = no entry)


def _where(source: str, entry_start: int, event: int) -> str:
    return f"{source or '<events>'} entry {entry_start + int(event)}"


def _prepare_cells(
    events: ak.Array,
    table: CellTable,
    *,
    shared_cells: str,
    truth_scale: float,
    source: str,
    entry_start: int,
    report: dict[str, Any],
) -> _Cells:
    n_events = len(events)
    ids_l = events["cluster_cell_ID"].layout
    e_l = events["cluster_cell_E"].layout
    ti_l = events["cluster_cell_hitsTruthIndex"].layout
    te_l = events["cluster_cell_hitsTruthE"].layout
    all_events = slice(0, n_events)
    # level 1: events -> clusters
    n_clus, clus_pos, ids_c1 = _descend(ids_l, all_events)
    n_clus_e, clus_pos_e, e_c1 = _descend(e_l, all_events)
    n_clus_ti, clus_pos_ti, ti_c1 = _descend(ti_l, all_events)
    n_clus_te, clus_pos_te, te_c1 = _descend(te_l, all_events)
    if not (
        np.array_equal(n_clus, n_clus_e) and np.array_equal(n_clus, n_clus_ti) and np.array_equal(n_clus, n_clus_te)
    ):
        bad = np.flatnonzero((n_clus != n_clus_e) | (n_clus != n_clus_ti) | (n_clus != n_clus_te))[0]
        raise ValueError(f"{_where(source, entry_start, bad)}: cluster_cell_* branches have different cluster counts")
    report["events_without_clusters"] += int(np.sum(n_clus == 0))
    # level 2: clusters -> cells (truth lists truncated to the kept cells: drops the trailing empty lists)
    n_cell, cell_pos, ids_v = _descend(ids_c1, clus_pos)
    n_cell_e, cell_pos_e, e_v = _descend(e_c1, clus_pos_e)
    if not np.array_equal(n_cell, n_cell_e):
        raise ValueError(f"{source}: len(cluster_cell_E[c]) != len(cluster_cell_ID[c]) (invariant I4)")
    try:
        _, slot_pos, ti_c2 = _descend(ti_c1, clus_pos_ti, n_cell)
        same = _same_lists(ti_l, te_l) and _same_lists(ti_c1, te_c1)
        slot_pos_e, te_c2 = (slot_pos, _list_parts(te_c1)[2]) if same else _descend(te_c1, clus_pos_te, n_cell)[1:]
    except ValueError:
        raise ValueError(f"{source}: cluster_cell_hitsTruth* has fewer entries than cluster_cell_ID (C3)") from None
    ids = _values(ids_v)[cell_pos].astype(np.uint64, copy=False)
    energy = _values(e_v)[cell_pos_e]
    ev_of_clus = np.repeat(np.arange(n_events, dtype=np.int64), n_clus)
    event = np.repeat(ev_of_clus, n_cell)
    # level 3: cells -> truth contributions
    n_truth, truth_pos, ti_v = _descend(ti_c2, slot_pos)
    if same and _same_lists(ti_c2, te_c2):
        truth_pos_e, te_v = truth_pos, _list_parts(te_c2)[2]
    else:
        n_truth_e, truth_pos_e, te_v = _descend(te_c2, slot_pos_e)
        if not np.array_equal(n_truth, n_truth_e):
            bad = event[np.flatnonzero(n_truth != n_truth_e)[0]]
            raise ValueError(f"{_where(source, entry_start, bad)}: len(hitsTruthIndex) != len(hitsTruthE) (I6)")
    t_idx = _values(ti_v)[truth_pos]
    t_e = _values(te_v)[truth_pos_e]
    t_off = np.zeros(len(n_truth) + 1, np.int64)
    np.cumsum(n_truth, out=t_off[1:])

    occ = np.arange(len(ids), dtype=np.int64)
    nan = np.isnan(energy)
    if nan.any():
        report["nan_cell_energy"] += int(nan.sum())
        log.warning("%s: %d cell occurrence(s) with NaN energy dropped", source or "events", int(nan.sum()))
        occ = occ[~nan]
    # dedup per (cell ID, event): a stable sort by ID keeps events, and clusters inside an event, in order
    sid, order = sort_stable(ids[occ])
    order = occ[order]
    sev = event[order]
    new = np.ones(len(sid), bool)
    if len(sid):
        new[1:] = (sid[1:] != sid[:-1]) | (sev[1:] != sev[:-1])
    starts = np.flatnonzero(new)
    first = order[starts]  # first occurrence in cluster order (highest-E cluster)
    report["shared_cell_occurrences"] += int(len(sid) - len(starts))
    cell_e = energy[first].astype(np.float64)
    if shared_cells == "sum" and len(starts) < len(sid):  # add the later occurrences of shared cells
        dup = np.flatnonzero(~new)
        np.add.at(cell_e, np.cumsum(new)[dup] - 1, energy[order[dup]])
    # join to the geometry by ID (queries sorted and unique)
    uid_new = np.ones(len(starts), bool)
    usid = sid[starts]
    if len(usid):
        uid_new[1:] = usid[1:] != usid[:-1]
    uids = usid[uid_new]
    rank_u, found = table.rank_of(uids)
    if not found.all():
        missing = uids[~found]
        bad_cell = first[np.flatnonzero(usid == missing[0])[0]]
        raise KeyError(
            f"{_where(source, entry_start, event[bad_cell])}: {len(missing)} cell ID(s) not in the geometry "
            f"({table.source}, {len(table)} cells), e.g. {missing[:5].tolist()}"
        )
    rank = rank_u[np.cumsum(uid_new) - 1]
    cell_ev = event[first]
    # truth of the first occurrence as K columns (K = longest list, 3 in MLTree)
    nt = n_truth[first]
    k = max(int(nt.max()) if len(nt) else 0, 1)
    t0_first = t_off[first]
    truth_idx, truth_e = [], []
    has_truth = nt > 0
    truth_total = np.zeros(len(first))
    for j in range(k):  # the few list positions, not the cells
        m = nt > j
        src = t0_first[m] + j
        col_i = np.full(len(first), -1, np.int32)
        col_e = np.zeros(len(first))
        col_i[m] = t_idx[src]
        col_e[m] = t_e[src] * truth_scale if truth_scale != 1.0 else t_e[src]
        truth_idx.append(col_i)
        truth_e.append(col_e)
        truth_total += col_e
    report["cells"] += len(first)
    report["truth_energy_GeV"] += float(truth_total.sum())
    report["cell_energy_with_truth_GeV"] += float(cell_e[has_truth].sum())
    return _Cells(event=cell_ev, rank=rank, energy=cell_e, truth_idx=truth_idx, truth_e=truth_e)


def _cone_pairs(
    cells: _Cells, table: CellTable, ev: np.ndarray, eta: np.ndarray, phi: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (query, cell) pairs with Delta R(cell, query) <= radius in the same event, grouped by query.

    Cells are sorted by (event, phi band, eta) with bands of width w > max(radius); each query looks up its
    (at most 3) phi bands, takes the eta window of each by binary search, and applies the exact Delta R cut
    (phi wrap-around included) to those candidates only: cost ~ queries x cells in a 2w x 2r box.
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
    dphi = _abs_dphi(c_phi[cand], phi.astype(_F32)[cand_q])
    deta *= deta
    dphi *= dphi
    deta += dphi
    inside = deta <= (radius * radius).astype(_F32)[cand_q]
    return cand_q[inside], order[cand[inside]]


# --------------------------------------------------------------------------------------------------------------
# tracks
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Tracks:
    event: np.ndarray  # int64 per track
    index_in_event: np.ndarray  # int32
    start_of_event: np.ndarray  # int64 per event: first track index
    n_of_event: np.ndarray  # int64 per event
    eta_l: np.ndarray  # (T, 19) float32
    phi_l: np.ndarray  # (T, 19)
    has_ref: np.ndarray  # bool
    ref_eta: np.ndarray  # float64
    ref_phi: np.ndarray
    cols: dict[str, np.ndarray]


def _prepare_tracks(events: ak.Array, source: str, entry_start: int) -> _Tracks:
    n_events = len(events)
    counts, pt = _flat1(events, "trackPt")
    cols = {"trackPt": pt}
    for name in _TRACK_BRANCHES[1:]:
        c, v = _flat1(events, name)
        if not np.array_equal(c, counts):
            bad = np.flatnonzero(c != counts)[0]
            raise ValueError(f"{_where(source, entry_start, bad)}: len({name}) != len(trackPt) (invariant I1)")
        cols[name] = v
    eta_l = np.empty((len(pt), _N_LAYERS), np.float32)
    phi_l = np.empty((len(pt), _N_LAYERS), np.float32)
    for j, layer in enumerate(LAYER_NAMES):
        for name, dest in ((f"trackEta_{layer}", eta_l), (f"trackPhi_{layer}", phi_l)):
            c, v = _flat1(events, name)
            if not np.array_equal(c, counts):
                bad = np.flatnonzero(c != counts)[0]
                raise ValueError(f"{_where(source, entry_start, bad)}: len({name}) != len(trackPt) (invariant I1)")
            dest[:, j] = v
    if "nTrack" in events.fields:
        n_track = np.asarray(events["nTrack"])
        if not np.array_equal(n_track, counts):
            bad = np.flatnonzero(n_track != counts)[0]
            raise ValueError(f"{_where(source, entry_start, bad)}: nTrack != len(trackPt) (invariant I1)")
    valid = (eta_l > MISSING_THRESHOLD) & (phi_l > MISSING_THRESHOLD)
    use_b = valid[:, _EMB2]
    has_ref = use_b | valid[:, _EME2]
    ref_eta = np.where(use_b, eta_l[:, _EMB2], eta_l[:, _EME2]).astype(np.float64)
    ref_phi = np.where(use_b, phi_l[:, _EMB2], phi_l[:, _EME2]).astype(np.float64)
    if len(ref_phi) and np.abs(ref_phi).max() > np.pi:
        ref_phi = np.where(has_ref, delta_phi(ref_phi, 0.0), ref_phi)  # wrapped to (-pi, pi]
    start = np.zeros(n_events, np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    return _Tracks(
        event=event,
        index_in_event=(np.arange(len(pt)) - start[event]).astype(np.int32),
        start_of_event=start,
        n_of_event=counts.astype(np.int64),
        eta_l=eta_l,
        phi_l=phi_l,
        has_ref=has_ref,
        ref_eta=ref_eta,
        ref_phi=ref_phi,
        cols=cols,
    )


def _point_sets(count: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Pad flat point lists (``count`` points per set, in set order) into a (3, slots, sets) float32 array (NaN)."""
    n_slots = int(count.max()) if len(count) else 0
    out = np.full((3, n_slots, len(count)), np.nan, _F32)
    owner = np.repeat(np.arange(len(count)), count)
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    out[0, slot, owner], out[1, slot, owner], out[2, slot, owner] = x, y, z
    return out


def _min_distance(sets: np.ndarray, group: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Minimum Euclidean distance (mm, float32) from each (x, y, z) to the points of set ``group`` (NaN if none).

    ``sets`` comes from :func:`_point_sets`; one vectorised pass per point slot (at most 19), NaN slots ignored.
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


def _abs_dphi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """|delta phi| for angles already in [-pi, pi] (3 array passes instead of a modulo)."""
    d = np.abs(phi1 - phi2)
    return np.minimum(d, 2 * np.pi - d)


# --------------------------------------------------------------------------------------------------------------
# build_chunk
# --------------------------------------------------------------------------------------------------------------


def _new_report() -> dict[str, Any]:
    return {
        "events": 0,
        "events_without_tracks": 0,
        "events_without_clusters": 0,
        "tracks": 0,
        "samples": 0,
        "samples_without_cells": 0,
        "skipped_no_reference": 0,
        "ndof_zero": 0,
        "cells": 0,
        "sample_cells": 0,
        "shared_cell_occurrences": 0,
        "nan_cell_energy": 0,
        "truth_energy_GeV": 0.0,
        "cell_energy_with_truth_GeV": 0.0,
    }


def merge_reports(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the numeric entries of several :func:`build_chunk` reports (nested dicts summed recursively)."""
    out: dict[str, Any] = {}
    for rep in reports:
        for k, v in rep.items():
            if isinstance(v, Mapping):
                out[k] = merge_reports([out.get(k, {}), v])
            elif isinstance(v, int | float | np.integer | np.floating):
                out[k] = out.get(k, 0) + v
    return out


def _record(n: int, fields: Mapping[str, np.ndarray]) -> ak.contents.RecordArray:
    return ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in fields.values()], list(fields), length=n
    )


def _lists(counts: np.ndarray, content: ak.contents.Content) -> ak.contents.ListOffsetArray:
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ak.contents.ListOffsetArray(ak.index.Index64(offsets), content)


def build_chunk(
    events: ak.Array,
    geometry: Any,
    *,
    delta_r: float | str = 0.2,
    shared_cells: str = "sum",
    reproduce_original_bug: bool = False,
    truth_unit: str = "GeV",
    containment_table: Mapping[str, np.ndarray] | None = None,
    source: str = "",
    entry_start: int = 0,
) -> tuple[ak.Array, dict[str, Any]]:
    """Build one sample per track for all events of a chunk (vectorised); return ``(samples, report)``.

    Parameters
    ----------
    events
        A chunk of ``EventTree`` entries with (at least) the 49 JetPointNet branches.
    geometry
        ``CaloGeometry``, :class:`CellTable`, ``CellGeo`` dict or ``CellGeo`` file path (joined by ID).
    delta_r
        Cone radius (dimensionless, > 0), or ``"adaptive"``: per-track radius from :func:`adaptive_radius`
        with ``containment_table`` (default: :func:`load_containment_table`).
    shared_cells
        ``"sum"`` (default): a cell appearing in several clusters gets the sum of its weighted energies (the
        physical cell energy); ``"first"``: keep the occurrence in the highest-energy cluster (the original).
    reproduce_original_bug
        Mirror end-cap intersection points of eta < 0 tracks through the origin, like the original code.
    truth_unit
        Unit of ``cluster_cell_hitsTruthE`` in the file: ``"GeV"`` or ``"MeV"`` (divided by 1000).
    source, entry_start
        File name and entry of ``events[0]``, used in error messages.

    Returns
    -------
    samples
        One row per track with a reference direction, schema :data:`SAMPLE_TYPE` (module docstring).
    report
        Counts: events, tracks, samples, skipped tracks (``skipped_no_reference``), events without tracks /
        clusters, ``ndof_zero``, ``nan_cell_energy``, shared cell occurrences, cells, and energy sums.
    """
    if shared_cells not in ("sum", "first"):
        raise ValueError(f"shared_cells must be 'sum' or 'first', got {shared_cells!r}")
    if truth_unit not in ("GeV", "MeV"):
        raise ValueError(f"truth_unit must be 'GeV' or 'MeV', got {truth_unit!r}")
    adaptive = isinstance(delta_r, str)
    if adaptive and delta_r != "adaptive":
        raise ValueError(f"delta_r must be a positive number or 'adaptive', got {delta_r!r}")
    if not adaptive and not (0.0 < float(delta_r) <= 2.0):
        raise ValueError(f"delta_r must be in (0, 2], got {delta_r!r}")
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    table = CellTable.from_geometry(geometry)
    report = _new_report()
    report["events"] = len(events)
    cells = _prepare_cells(
        events,
        table,
        shared_cells=shared_cells,
        truth_scale=1e-3 if truth_unit == "MeV" else 1.0,
        source=source,
        entry_start=entry_start,
        report=report,
    )
    tracks = _prepare_tracks(events, source, entry_start)
    timing["cells"] = time.perf_counter() - t0
    report["tracks"] = len(tracks.event)
    report["events_without_tracks"] = int(np.sum(tracks.n_of_event == 0))
    report["skipped_no_reference"] = int(np.sum(~tracks.has_ref))

    # ---- focused tracks, radius, intersection points
    kept = np.flatnonzero(tracks.has_ref)
    n_s = len(kept)
    pt = tracks.cols["trackPt"]
    if adaptive:
        tab = load_containment_table() if containment_table is None else containment_table
        radius_all = adaptive_radius(pt, tracks.ref_eta, tab)
    else:
        radius_all = np.full(len(pt), float(delta_r))
    px, py, pz = layer_intersections(tracks.eta_l, tracks.phi_l, reproduce_original_bug=reproduce_original_bug)
    valid = ~np.isnan(px)
    s_ev, s_eta, s_phi, s_r = tracks.event[kept], tracks.ref_eta[kept], tracks.ref_phi[kept], radius_all[kept]
    # focused-track points, flat in (sample, layer) order: also the point sets for the distances
    kv = valid[kept]
    tp_s, tp_l = np.nonzero(kv)
    tp_t = kept[tp_s]
    tp_x, tp_y, tp_z = (c[tp_t, tp_l].astype(_F32) for c in (px, py, pz))
    tp_n = kv.sum(axis=1)
    tp_sets = _point_sets(tp_n, tp_x, tp_y, tp_z)

    # ---- cone search, then ascending cell ID inside each sample
    t0 = time.perf_counter()
    pair_s, pair_c = _cone_pairs(cells, table, s_ev, s_eta, s_phi, s_r)
    _, order = sort_stable(pair_s * max(len(table), 1) + cells.rank[pair_c])
    pair_s, pair_c = pair_s[order], pair_c[order]
    timing["cone"] = time.perf_counter() - t0

    # ---- per-cell values and labels
    t0 = time.perf_counter()
    rk = cells.rank[pair_c]
    cx, cy, cz = table.x[rk], table.y[rk], table.z[rk]
    dist = _min_distance(tp_sets, pair_s, cx, cy, cz)
    p = tracks.cols["trackTruthParticleIndex"][kept].astype(np.int64)[pair_s]
    p = np.where(p >= 0, p, -2)  # -1 never matches (nor does the -1 padding of the truth columns)
    row = pair_c
    total = np.zeros(len(row))
    focus = np.zeros(len(row))
    has = np.zeros(len(row), bool)
    for col_i, col_e in zip(cells.truth_idx, cells.truth_e, strict=True):  # K <= 3 list positions
        e_j = col_e[row]
        total += e_j
        m = (col_i[row] == p) & ~has  # j* = first position of p
        focus[m] = e_j[m]
        has |= m
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(has & (total > 0), focus / total, 0.0)
    total_label = np.where(has, total, 0.0)
    energy = cells.energy[pair_c]
    n_cells = np.bincount(pair_s, minlength=n_s)
    sum_e = np.bincount(pair_s, weights=energy, minlength=n_s)
    sum_focus = np.bincount(pair_s, weights=focus, minlength=n_s)
    cell_rec = _record(
        len(pair_c),
        {
            "ID": table.ids[rk],
            "E": energy.astype(_F32),
            "X": cx.astype(_F32),
            "Y": cy.astype(_F32),
            "Z": cz.astype(_F32),
            "eta": table.eta[rk].astype(_F32),
            "phi": table.phi[rk].astype(_F32),
            "sampling": table.sampling[rk],
            "distance_to_track": dist,
            "frac_label": frac.astype(_F32),
            "focus_energy": focus.astype(_F32),
            "truth_energy": total.astype(_F32),
            "total_label": total_label.astype(_F32),
        },
    )
    timing["cells_out"] = time.perf_counter() - t0

    # ---- other tracks in the cone of the focused reference
    t0 = time.perf_counter()
    tp_rec = _record(len(tp_s), {"layer": tp_l.astype(np.int8), "X": tp_x, "Y": tp_y, "Z": tp_z})
    n_in_ev = tracks.n_of_event[s_ev]
    other = gather_ranges(tracks.start_of_event[s_ev], n_in_ev)
    o_s = np.repeat(np.arange(n_s, dtype=np.int64), n_in_ev)
    ok = (other != kept[o_s]) & tracks.has_ref[other]
    o_s, other = o_s[ok], other[ok]
    d_eta = tracks.ref_eta[other] - s_eta[o_s]
    d_phi = _abs_dphi(tracks.ref_phi[other], s_phi[o_s])
    ok = d_eta * d_eta + d_phi * d_phi <= s_r[o_s] ** 2
    o_s, other = o_s[ok], other[ok]
    n_other = np.bincount(o_s, minlength=n_s)
    ot_rec = _record(
        len(other),
        {
            "trackID": tracks.index_in_event[other],
            "track_part_Idx": tracks.cols["trackTruthParticleIndex"][other].astype(np.int32),
            "trackPt": pt[other].astype(_F32),
        },
    )
    # their points: (pair, layer) for valid layers of the other track, distance to the focused track's points
    op_pair, op_l = np.nonzero(valid[other])
    first_of_sample = np.cumsum(n_other) - n_other
    op_sample = o_s[op_pair]
    op_local = op_pair - first_of_sample[op_sample]
    ox, oy, oz = (c[other[op_pair], op_l].astype(_F32) for c in (px, py, pz))
    od = _min_distance(tp_sets, op_sample, ox, oy, oz)
    op_rec = _record(
        len(op_pair),
        {
            "track": op_local.astype(np.int32),
            "layer": op_l.astype(np.int8),
            "X": ox,
            "Y": oy,
            "Z": oz,
            "distance_to_track": od,
        },
    )
    n_op = np.bincount(op_sample, minlength=n_s)
    timing["tracks_out"] = time.perf_counter() - t0

    # ---- metadata and the sample array
    chi2 = tracks.cols["trackChiSquared"][kept].astype(np.float64)
    ndof = tracks.cols["trackNumberDOF"][kept].astype(np.float64)
    report["ndof_zero"] = int(np.sum(ndof == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2ndof = np.where(ndof != 0, chi2 / np.where(ndof != 0, ndof, 1.0), np.nan)
    event_number = np.asarray(events["eventNumber"]).astype(np.int64)
    meta = {
        "eventNumber": event_number[s_ev],
        "trackID": tracks.index_in_event[kept],
        "trackEta": s_eta.astype(_F32),
        "trackPhi": s_phi.astype(_F32),
        "trackPt": pt[kept].astype(_F32),
        "track_part_Idx": tracks.cols["trackTruthParticleIndex"][kept].astype(np.int32),
        "trackChi2PerNDOF": chi2ndof.astype(_F32),
        "trackSubtractedCaloEnergy": tracks.cols["trackSubtractedCaloEnergy"][kept].astype(_F32),
        "delta_r": s_r.astype(_F32),
        "total_associated_cell_energy": sum_e.astype(_F32),
        "focus_truth_energy": sum_focus.astype(_F32),
        "n_cells": n_cells.astype(np.int32),
    }
    contents = [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in meta.values()]
    contents += [
        _lists(tp_n, tp_rec),
        _lists(n_cells, cell_rec),
        _lists(n_other, ot_rec),
        _lists(n_op, op_rec),
    ]
    fields = [*meta, "track_points", "cells", "other_tracks", "other_track_points"]
    samples = ak.Array(ak.contents.RecordArray(contents, fields, length=n_s))
    report["samples"] = n_s
    report["samples_without_cells"] = int(np.sum(n_cells == 0))
    report["sample_cells"] = len(pair_c)
    log.debug(
        "build_chunk %s: %d events, %d samples, timing %s",
        source,
        len(events),
        n_s,
        {k: round(v, 4) for k, v in timing.items()},
    )
    return samples, report


# --------------------------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 values (wrap-around arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def split_of_event(
    event_number: np.ndarray | Sequence[int] | int, fractions: Sequence[float] = (0.8, 0.1, 0.1), salt: int = 0
) -> np.ndarray:
    """Split of each event: 0 train, 1 val, 2 test (int8), from a hash of ``eventNumber`` only.

    ``u = splitmix64(eventNumber ^ splitmix64(salt)) / 2**64`` is uniform in [0, 1); the event goes to train if
    ``u < f_train``, val if ``u < f_train + f_val``, else test. Deterministic and independent of files and
    chunking, so an event never lands in two splits. ``fractions`` must be three non-negative numbers summing
    to 1.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or np.any(f < 0) or not np.isfinite(f).all() or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    ev = np.atleast_1d(np.asarray(event_number)).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        mixed_salt = _splitmix64(np.array([int(salt) % (1 << 64)], dtype=np.uint64))[0]
        h = _splitmix64(ev ^ mixed_salt)
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    out = np.full(len(u), 2, np.int8)
    out[u < f[0] + f[1]] = 1
    out[u < f[0]] = 0
    return out


# --------------------------------------------------------------------------------------------------------------
# build_samples: files -> parquet per split
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ChunkTask:
    file_index: int
    chunk_index: int
    path: str
    entry_start: int
    entry_stop: int


def _read_chunk(path: str, entry_start: int, entry_stop: int, branches: Sequence[str]) -> ak.Array:
    import uproot

    from jetcloud.atlas.mltree import CorruptFileError

    try:
        with uproot.open(path) as f:
            return f["EventTree"].arrays(list(branches), entry_start=entry_start, entry_stop=entry_stop)
    except Exception as err:
        raise CorruptFileError(f"{path}: cannot read entries {entry_start}-{entry_stop} ({err})") from err


def _process_chunk(
    task: _ChunkTask,
    *,
    out_dir: str,
    geometry: Any,
    fractions: tuple[float, float, float],
    salt: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    t0 = time.process_time()
    events = _read_chunk(task.path, task.entry_start, task.entry_stop, JETPOINTNET_BRANCHES)
    t1 = time.process_time()
    samples, report = build_chunk(events, geometry, source=task.path, entry_start=task.entry_start, **options)
    del events
    t2 = time.process_time()
    split = split_of_event(np.asarray(samples["eventNumber"]), fractions, salt)
    counts = {}
    for k, name in enumerate(SPLIT_NAMES):
        sel = np.flatnonzero(split == k)
        counts[name] = len(sel)
        if len(sel):
            target = Path(out_dir) / name / f"part-{task.file_index:04d}-{task.chunk_index:04d}.parquet"
            with atomic_path(target) as tmp:
                ak.to_parquet(samples[sel], tmp)
    t3 = time.process_time()
    report.update(cpu_s=t3 - t0, cpu_read_s=t1 - t0, cpu_build_s=t2 - t1, cpu_write_s=t3 - t2)
    return {"counts": counts, "report": report}


def build_samples(
    files: str | os.PathLike | Iterable[str | os.PathLike],
    geometry_path: str | os.PathLike | Any,
    out_dir: str | os.PathLike,
    *,
    step_size: int = 250,
    delta_r: float | str = 0.2,
    shared_cells: str = "sum",
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    salt: int = 0,
    reproduce_original_bug: bool = False,
    truth_unit: str = "GeV",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    manifest: bool = True,
) -> dict[str, Any]:
    """Build the samples of MLTree files into ``out_dir/{train,val,test}/part-<file>-<chunk>.parquet``.

    Every file is schema-checked first (the 49 JetPointNet branches), then cut into chunks of ``step_size``
    entries that are processed by :func:`jetcloud.parallel.map_chunks` (local processes by default, Dask if
    ``scheduler`` is given; each worker holds one chunk and reads only the needed branches). The output is
    written into a temporary directory beside ``out_dir`` that replaces ``out_dir`` only when every chunk
    succeeded (:func:`jetcloud.io.atomic.atomic_dir`): stale parts of an earlier run disappear, and a failure
    leaves the previous ``out_dir`` (or nothing) in place. A chunk writes only non-empty splits; the three
    split directories always exist. ``geometry_path`` is a ``CellGeo`` file (or a ``CaloGeometry`` /
    :class:`CellTable`, shipped to the workers). The other options are those of :func:`build_chunk` and
    :func:`split_of_event`.

    Returns ``{"samples": {split: n}, "events", "files", "chunks", "report", "out_dir", "wall_s", "cpu_s"}``;
    ``report`` merges the chunk reports (see :func:`build_chunk`). A ``manifest.json`` is written in
    ``out_dir`` when ``manifest`` is true.
    """
    from jetcloud.atlas.mltree import check_schema, expand_files, open_event_tree
    from jetcloud.io.atomic import atomic_dir
    from jetcloud.parallel import map_chunks

    t_start = time.perf_counter()
    split_of_event(np.zeros(1, np.int64), fractions, salt)  # validates the fractions up front
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    if isinstance(delta_r, str) and delta_r == "adaptive":
        load_containment_table()  # fail early if the table is missing
    paths = expand_files(files)
    for p in paths:
        check_schema(p, JETPOINTNET_BRANCHES)
    if isinstance(geometry_path, str | os.PathLike):
        geometry: Any = os.fspath(Path(geometry_path).resolve())
        CellTable.from_geometry(geometry)  # checks the file here, before any work
    else:
        geometry = CellTable.from_geometry(geometry_path)
    tasks: list[_ChunkTask] = []
    n_entries = 0
    for i, p in enumerate(paths):
        tree = open_event_tree(p)
        try:
            n = int(tree.num_entries)
        finally:
            tree.file.close()
        n_entries += n
        for k, start in enumerate(range(0, n, step_size)):
            tasks.append(_ChunkTask(i, k, os.fspath(p.resolve()), start, min(n, start + step_size)))
    options = {
        "delta_r": delta_r,
        "shared_cells": shared_cells,
        "reproduce_original_bug": reproduce_original_bug,
        "truth_unit": truth_unit,
    }
    out_dir = Path(out_dir)
    log.info(
        "building samples from %d file(s), %d events, %d chunk(s) into %s", len(paths), n_entries, len(tasks), out_dir
    )
    with atomic_dir(out_dir) as tmp:
        for name in SPLIT_NAMES:
            (tmp / name).mkdir()
        func = functools.partial(
            _process_chunk,
            out_dir=os.fspath(tmp),
            geometry=geometry,
            fractions=tuple(fractions),
            salt=salt,
            options=options,
        )
        results = map_chunks(func, tasks, workers=workers, scheduler=scheduler, progress=progress, desc="samples")
    report = merge_reports(r["report"] for r in results)
    counts = {name: sum(r["counts"][name] for r in results) for name in SPLIT_NAMES}
    summary = {
        "samples": counts,
        "events": n_entries,
        "files": [os.fspath(p) for p in paths],
        "chunks": len(tasks),
        "report": report,
        "out_dir": os.fspath(out_dir),
        "wall_s": time.perf_counter() - t_start,
        "cpu_s": report.get("cpu_s", 0.0),
    }
    if report.get("cell_energy_with_truth_GeV", 0) > 0:
        ratio = report["truth_energy_GeV"] / report["cell_energy_with_truth_GeV"]
        summary["truth_to_cell_energy_ratio"] = ratio
        if not 0.03 < ratio < 30:
            log.warning("summed truth energy / cell energy = %.3g: is truth_unit=%r right?", ratio, truth_unit)
    if manifest:
        from jetcloud.io.manifest import write_manifest

        geo_inputs = [geometry] if isinstance(geometry, str) else []
        write_manifest(
            out_dir,
            inputs=[*paths, *geo_inputs],
            seed=None,
            wall_time_s=summary["wall_s"],
            parameters={**options, "step_size": step_size, "fractions": list(fractions), "salt": salt},
            extra={"samples": counts, "report": report},
            hash_output=False,
        )
    log.info("samples: %s (%.1f s)", counts, summary["wall_s"])
    return summary


# --------------------------------------------------------------------------------------------------------------
# containment radius (adaptive delta_r)
# --------------------------------------------------------------------------------------------------------------


def _track_containment(events: ak.Array, table: CellTable, fraction: float, truth_unit: str) -> dict[str, np.ndarray]:
    """Per track with a truth link and a reference: the Delta R holding ``fraction`` of the particle's energy."""
    report = _new_report()
    cells = _prepare_cells(
        events,
        table,
        shared_cells="sum",
        truth_scale=1e-3 if truth_unit == "MeV" else 1.0,
        source="",
        entry_start=0,
        report=report,
    )
    tracks = _prepare_tracks(events, "", 0)
    p = tracks.cols["trackTruthParticleIndex"].astype(np.int64)
    good = np.flatnonzero(tracks.has_ref & (p >= 0))
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
    ent_t, e, dr = ent_t[o], e[o], dr[o]
    tot = np.bincount(ent_t, weights=e, minlength=len(good))
    csum = np.cumsum(e)
    start = np.searchsorted(ent_t, np.arange(len(good)))
    before = np.where(start > 0, csum[np.maximum(start - 1, 0)], 0.0)
    reached = (csum - before[ent_t]) >= fraction * tot[ent_t] - 1e-12
    # first entry of each track that reaches the fraction
    idx = np.flatnonzero(reached)
    first_idx = np.full(len(good), -1, np.int64)
    if len(idx):
        tr = ent_t[idx]
        keep = np.r_[True, tr[1:] != tr[:-1]]
        first_idx[tr[keep]] = idx[keep]
    ok = (tot > 0) & (first_idx >= 0)
    return {
        "pt": tracks.cols["trackPt"][good][ok].astype(np.float64),
        "abseta": np.abs(tracks.ref_eta[good][ok]),
        "radius": dr[first_idx[ok]],
        "energy": tot[ok],
    }


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

    Interpolation runs between bin centres (log-centre in pT); values outside the table use the edge bins. Bins
    without tracks are filled from the nearest filled pT bin of the same |eta| row (else the overall median).
    The result is clipped to :data:`ADAPTIVE_RADIUS_RANGE` = [0.05, 0.4].
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


def read_sample(samples_dir: str | os.PathLike, split: str, part: str, event: int, track: int) -> ak.Record:
    """The sample of (``event``, ``track``) in ``<samples_dir>/<split>/<part>.parquet`` (KeyError if absent)."""
    path = Path(samples_dir) / split / f"{part}.parquet"
    arr = ak.from_parquet(path)
    hit = np.flatnonzero((arr.eventNumber.to_numpy() == event) & (arr.trackID.to_numpy() == track))
    if len(hit) == 0:
        raise KeyError(f"{path}: no sample for event {event}, track {track}")
    return arr[int(hit[0])]
