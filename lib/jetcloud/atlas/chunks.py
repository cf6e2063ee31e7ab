"""Flat numpy columns of an MLTree ``EventTree`` chunk: its deduplicated cluster cells and its tracks.

:func:`prepare_cells` walks the jagged ``cluster_cell_*`` branches (events -> clusters -> cells -> truth
contributions) without a Python loop over events, checks that their list structures agree, drops cell
occurrences with a NaN energy, merges the occurrences of a cell shared by several clusters of an event and joins
the cells to a :class:`jetcloud.atlas.celltable.CellTable` by ID. :func:`prepare_tracks` reads the track
branches and the 19 layer extrapolations and picks each track's reference direction (EMB2 if valid, else EME2).

Units: energies in GeV (``cluster_cell_hitsTruthE`` scaled by ``truth_scale``), eta and phi in rad, ``trackPt``
in GeV, ``trackSubtractedCaloEnergy`` as in the file (MeV). Both the sample building
(:mod:`jetcloud.atlas.samples`) and the containment study (:mod:`jetcloud.atlas.containment`) start from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.arrays import gather_ranges, sort_stable
from jetcloud.atlas.celltable import CellTable
from jetcloud.atlas.layers import LAYER_NAMES, MISSING_THRESHOLD
from jetcloud.kinematics import delta_phi

__all__ = ["ChunkCells", "ChunkTracks", "prepare_cells", "prepare_tracks", "new_report"]

log = logging.getLogger(__name__)

_EMB2 = LAYER_NAMES.index("EMB2")
_EME2 = LAYER_NAMES.index("EME2")
_N_LAYERS = len(LAYER_NAMES)
_TRACK_BRANCHES = (
    "trackPt",
    "trackTruthParticleIndex",
    "trackSubtractedCaloEnergy",
    "trackChiSquared",
    "trackNumberDOF",
)


def new_report() -> dict[str, Any]:
    """Zeroed counters of a :func:`jetcloud.atlas.samples.build_chunk` report (:func:`prepare_cells` adds to some)."""
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
        "nonfinite_track_pt": 0,
        "truth_energy_GeV": 0.0,
        "cell_energy_with_truth_GeV": 0.0,
    }


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
    """The numpy values of a flat numeric layout (through indexed or unmasked wrappers)."""
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


def _where(source: str, entry_start: int, event: int) -> str:
    """``"<file> entry <n>"`` for error messages about event ``event`` of the chunk."""
    return f"{source or '<events>'} entry {entry_start + int(event)}"


# --------------------------------------------------------------------------------------------------------------
# cells of a chunk
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ChunkCells:
    """Deduplicated cells of a chunk, in (ID, event) order, with their truth lists as K columns."""

    event: np.ndarray  # int64
    rank: np.ndarray  # int64, ID rank in the CellTable
    energy: np.ndarray  # float64, GeV
    truth_idx: list[np.ndarray]  # K columns (int32, -1 = no entry)
    truth_e: list[np.ndarray]  # K columns (float64 GeV, 0 = no entry)


@dataclass
class _Occurrences:
    """Every cell occurrence of a chunk, in (event, cluster, cell) order, and its flat truth list."""

    ids: np.ndarray  # uint64
    energy: np.ndarray  # as in the file
    event: np.ndarray  # int64
    n_truth: np.ndarray  # truth contributions per occurrence
    t_off: np.ndarray  # int64, offsets of the truth lists into t_idx / t_e
    t_idx: np.ndarray
    t_e: np.ndarray


def prepare_cells(
    events: ak.Array,
    table: CellTable,
    *,
    shared_cells: str,
    truth_scale: float,
    source: str,
    entry_start: int,
    report: dict[str, Any],
) -> ChunkCells:
    """The deduplicated cluster cells of ``events`` joined to ``table``, with their truth lists; fills ``report``.

    ``shared_cells`` is ``"sum"`` (a shared cell gets the sum of its occurrences' energies) or ``"first"`` (the
    occurrence in the highest-energy cluster); truth lists are those of the first occurrence, their energies
    multiplied by ``truth_scale``. ``source`` and ``entry_start`` name the file and entry in error messages.
    Adds to ``report`` (see :func:`new_report`): ``events_without_clusters``, ``nan_cell_energy``,
    ``shared_cell_occurrences``, ``cells``, ``truth_energy_GeV`` and ``cell_energy_with_truth_GeV``.
    """
    occ = _read_occurrences(events, source, entry_start, report)
    sid, starts, first, cell_e = _deduplicate(occ, shared_cells, source, report)
    rank = _join_geometry(table, sid, starts, first, occ.event, source, entry_start)
    cell_ev = occ.event[first]
    truth_idx, truth_e, truth_total, has_truth = _truth_columns(occ, first, truth_scale)
    report["cells"] += len(first)
    report["truth_energy_GeV"] += float(truth_total.sum())
    report["cell_energy_with_truth_GeV"] += float(cell_e[has_truth].sum())
    return ChunkCells(event=cell_ev, rank=rank, energy=cell_e, truth_idx=truth_idx, truth_e=truth_e)


def _read_occurrences(events: ak.Array, source: str, entry_start: int, report: dict[str, Any]) -> _Occurrences:
    """Flatten the four ``cluster_cell_*`` branches to cell occurrences, checking that their lists agree."""
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
    n_truth, t_off, t_idx, t_e = _truth_lists(ti_c2, te_c2, slot_pos, slot_pos_e, same, event, source, entry_start)
    return _Occurrences(ids=ids, energy=energy, event=event, n_truth=n_truth, t_off=t_off, t_idx=t_idx, t_e=t_e)


def _truth_lists(
    ti_c2: ak.contents.Content,
    te_c2: ak.contents.Content,
    slot_pos: np.ndarray | slice,
    slot_pos_e: np.ndarray | slice,
    same: bool,
    event: np.ndarray,
    source: str,
    entry_start: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Level 3 (cells -> truth contributions): ``(n_truth, offsets, indices, energies)``, lengths checked (I6)."""
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
    return n_truth, t_off, t_idx, t_e


def _deduplicate(
    occ: _Occurrences, shared_cells: str, source: str, report: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop NaN / infinite energies (counted in ``nan_cell_energy``), merge occurrences per (cell ID, event):
    ``(sorted IDs, group starts, first, energy)``."""
    ids, energy, event = occ.ids, occ.energy, occ.event
    keep = np.arange(len(ids), dtype=np.int64)
    nan = ~np.isfinite(energy)
    if nan.any():
        report["nan_cell_energy"] += int(nan.sum())
        log.warning(
            "%s: %d cell occurrence(s) with NaN or infinite cluster_cell_E dropped (first in event %d of the chunk)",
            source or "events",
            int(nan.sum()),
            int(event[np.argmax(nan)]),
        )
        keep = keep[~nan]
    # dedup per (cell ID, event): a stable sort by ID keeps events, and clusters inside an event, in order
    sid, order = sort_stable(ids[keep])
    order = keep[order]
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
    return sid, starts, first, cell_e


def _join_geometry(
    table: CellTable,
    sid: np.ndarray,
    starts: np.ndarray,
    first: np.ndarray,
    event: np.ndarray,
    source: str,
    entry_start: int,
) -> np.ndarray:
    """Rank in ``table`` of each deduplicated cell (queries sorted and unique); ``KeyError`` for unknown IDs."""
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
    return rank_u[np.cumsum(uid_new) - 1]


def _truth_columns(
    occ: _Occurrences, first: np.ndarray, truth_scale: float
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Truth of the first occurrences as K columns (K = longest list, 3 in MLTree): ``(idx, e, total, has)``."""
    nt = occ.n_truth[first]
    k = max(int(nt.max()) if len(nt) else 0, 1)
    t0_first = occ.t_off[first]
    truth_idx, truth_e = [], []
    has_truth = nt > 0
    truth_total = np.zeros(len(first))
    for j in range(k):  # the few list positions, not the cells
        m = nt > j
        src = t0_first[m] + j
        col_i = np.full(len(first), -1, np.int32)
        col_e = np.zeros(len(first))
        col_i[m] = occ.t_idx[src]
        col_e[m] = occ.t_e[src] * truth_scale if truth_scale != 1.0 else occ.t_e[src]
        truth_idx.append(col_i)
        truth_e.append(col_e)
        truth_total += col_e
    return truth_idx, truth_e, truth_total, has_truth


# --------------------------------------------------------------------------------------------------------------
# tracks of a chunk
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ChunkTracks:
    """The tracks of a chunk in (event, track) order, their layer extrapolations and reference directions."""

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


def prepare_tracks(events: ak.Array, source: str, entry_start: int) -> ChunkTracks:
    """The tracks of ``events``: 5 track branches, 19 layer extrapolations and the EMB2 / EME2 reference.

    Every track branch must have ``nTrack`` entries (invariant I1, ``ValueError`` naming ``source`` and the
    entry otherwise). The reference is the EMB2 extrapolation if valid, else EME2 (``has_ref`` false when
    neither is); its phi is wrapped to (-pi, pi].
    """
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
    has_ref = (use_b | valid[:, _EME2]) & np.isfinite(pt)  # a NaN / inf trackPt: no sample (counted by the caller)
    ref_eta = np.where(use_b, eta_l[:, _EMB2], eta_l[:, _EME2]).astype(np.float64)
    ref_phi = np.where(use_b, phi_l[:, _EMB2], phi_l[:, _EME2]).astype(np.float64)
    if len(ref_phi) and np.abs(ref_phi).max() > np.pi:
        ref_phi = np.where(has_ref, delta_phi(ref_phi, 0.0), ref_phi)  # wrapped to (-pi, pi]
    start = np.zeros(n_events, np.int64)
    np.cumsum(counts[:-1], out=start[1:])
    event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    return ChunkTracks(
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
