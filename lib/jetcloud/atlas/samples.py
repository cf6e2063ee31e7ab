"""JetPointNet track-centred samples from MLTree ``EventTree`` chunks (stage 1 of notebook 01).

One sample per track: the track's reference direction (EMB2 extrapolation, else EME2), its layer intersection
points, the deduplicated cluster cells of its event within a cone ``Delta R <= delta_r`` of the reference,
per-cell truth labels, and the other tracks of the event whose reference lies in the same cone. The algorithm
is the original ``jets_root_to_awk.py`` (``docs/jetpointnet.md``) with its bugs fixed, computed
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

The building blocks live beside this module: :mod:`jetcloud.atlas.celltable` (the geometry joined by ID),
:mod:`jetcloud.atlas.chunks` (a chunk's cells and tracks as flat columns), :mod:`jetcloud.atlas.cones` (cells and
tracks within Delta R) and :mod:`jetcloud.atlas.containment` (the adaptive radius).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.arrays import sort_stable
from jetcloud.atlas.celltable import CellTable
from jetcloud.atlas.chunks import ChunkCells, ChunkTracks, new_report, prepare_cells, prepare_tracks
from jetcloud.atlas.cones import cone_pairs, min_distance, other_track_pairs, point_sets
from jetcloud.atlas.containment import adaptive_radius, load_containment_table
from jetcloud.atlas.layers import layer_intersections
from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES
from jetcloud.io.atomic import atomic_path

__all__ = [
    "SAMPLE_TYPE",
    "SPLIT_NAMES",
    "build_chunk",
    "build_samples",
    "split_of_event",
    "merge_reports",
    "read_sample",
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

_F32 = np.float32
#: A list field of the samples: ``(count per sample, records of all samples)``.
_ListField = tuple[np.ndarray, ak.contents.RecordArray]


# --------------------------------------------------------------------------------------------------------------
# reports and awkward output
# --------------------------------------------------------------------------------------------------------------


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
    """A record layout of ``n`` rows from flat numpy columns."""
    return ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in fields.values()], list(fields), length=n
    )


def _lists(counts: np.ndarray, content: ak.contents.Content) -> ak.contents.ListOffsetArray:
    """Cut ``content`` into consecutive lists of ``counts`` items."""
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ak.contents.ListOffsetArray(ak.index.Index64(offsets), content)


@contextmanager
def _timer(timing: dict[str, float], key: str) -> Iterator[None]:
    """Store the wall time of the ``with`` block in ``timing[key]`` (s)."""
    t0 = time.perf_counter()
    yield
    timing[key] = time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------------------
# build_chunk
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Focus:
    """The focused tracks (one per sample), their cones, and the layer intersection points of every track."""

    kept: np.ndarray  # int64: track index of each sample
    event: np.ndarray  # int64: event (in the chunk) of each sample
    eta: np.ndarray  # float64: reference direction
    phi: np.ndarray  # float64
    radius: np.ndarray  # float64: cone radius
    px: np.ndarray  # (T, 19) intersection points of every track, mm (NaN: none)
    py: np.ndarray
    pz: np.ndarray
    valid: np.ndarray  # (T, 19) bool: ~isnan(px)
    point_sample: np.ndarray  # focused-track points, flat in (sample, layer) order
    point_layer: np.ndarray
    point_x: np.ndarray  # float32, mm
    point_y: np.ndarray
    point_z: np.ndarray
    n_points: np.ndarray  # points per sample
    point_sets: np.ndarray  # the same points as :func:`jetcloud.atlas.cones.point_sets`


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
        ``CaloGeometry``, :class:`~jetcloud.atlas.celltable.CellTable`, ``CellGeo`` dict or ``CellGeo`` file
        path (joined by ID).
    delta_r
        Cone radius (dimensionless, > 0), or ``"adaptive"``: per-track radius from
        :func:`~jetcloud.atlas.containment.adaptive_radius` with ``containment_table`` (default:
        :func:`~jetcloud.atlas.containment.load_containment_table`).
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
    adaptive = _check_options(delta_r, shared_cells, truth_unit)
    timing: dict[str, float] = {}
    with _timer(timing, "cells"):
        table = CellTable.from_geometry(geometry)
        cells, tracks, report = _read_columns(events, table, shared_cells, truth_unit, source, entry_start)
    focus = _focus_tracks(tracks, delta_r, adaptive, containment_table, reproduce_original_bug)
    n_s = len(focus.kept)
    with _timer(timing, "cone"):
        pair_s, pair_c = _cells_in_cones(cells, table, focus)
    with _timer(timing, "cells_out"):
        cell_rec, n_cells, sum_e, sum_focus = _cell_records(cells, table, tracks, focus, pair_s, pair_c)
    with _timer(timing, "tracks_out"):
        points, others, other_points = _track_records(tracks, focus)
    meta = _metadata(events, tracks, focus, sum_e, sum_focus, n_cells, report)
    samples = _sample_array(meta, [points, (n_cells, cell_rec), others, other_points], n_s)
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


def _check_options(delta_r: float | str, shared_cells: str, truth_unit: str) -> bool:
    """Validate the options of :func:`build_chunk`; True for the adaptive radius."""
    if shared_cells not in ("sum", "first"):
        raise ValueError(f"shared_cells must be 'sum' or 'first', got {shared_cells!r}")
    if truth_unit not in ("GeV", "MeV"):
        raise ValueError(f"truth_unit must be 'GeV' or 'MeV', got {truth_unit!r}")
    adaptive = isinstance(delta_r, str)
    if adaptive and delta_r != "adaptive":
        raise ValueError(f"delta_r must be a positive number or 'adaptive', got {delta_r!r}")
    if not adaptive and not (0.0 < float(delta_r) <= 2.0):
        raise ValueError(f"delta_r must be in (0, 2], got {delta_r!r}")
    return adaptive


def _read_columns(
    events: ak.Array, table: CellTable, shared_cells: str, truth_unit: str, source: str, entry_start: int
) -> tuple[ChunkCells, ChunkTracks, dict[str, Any]]:
    """The chunk's cells and tracks, and a new report with the event, cell and track counts."""
    report = new_report()
    report["events"] = len(events)
    cells = prepare_cells(
        events,
        table,
        shared_cells=shared_cells,
        truth_scale=1e-3 if truth_unit == "MeV" else 1.0,
        source=source,
        entry_start=entry_start,
        report=report,
    )
    tracks = prepare_tracks(events, source, entry_start)
    report["tracks"] = len(tracks.event)
    report["events_without_tracks"] = int(np.sum(tracks.n_of_event == 0))
    bad_pt = ~np.isfinite(tracks.cols["trackPt"])
    report["nonfinite_track_pt"] = int(np.sum(bad_pt))
    if bad_pt.any():
        log.warning(
            "%s: %d track(s) with NaN or infinite trackPt skipped (first at entry %d)",
            source,
            int(bad_pt.sum()),
            entry_start + int(tracks.event[np.argmax(bad_pt)]),
        )
    report["skipped_no_reference"] = int(np.sum(~tracks.has_ref & ~bad_pt))
    return cells, tracks, report


def _focus_tracks(
    tracks: ChunkTracks,
    delta_r: float | str,
    adaptive: bool,
    containment_table: Mapping[str, np.ndarray] | None,
    reproduce_original_bug: bool,
) -> _Focus:
    """The tracks with a reference (one sample each): cone radius and layer intersection points."""
    kept = np.flatnonzero(tracks.has_ref)
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
    tp_sets = point_sets(tp_n, tp_x, tp_y, tp_z)
    return _Focus(
        kept=kept,
        event=s_ev,
        eta=s_eta,
        phi=s_phi,
        radius=s_r,
        px=px,
        py=py,
        pz=pz,
        valid=valid,
        point_sample=tp_s,
        point_layer=tp_l,
        point_x=tp_x,
        point_y=tp_y,
        point_z=tp_z,
        n_points=tp_n,
        point_sets=tp_sets,
    )


def _cells_in_cones(cells: ChunkCells, table: CellTable, focus: _Focus) -> tuple[np.ndarray, np.ndarray]:
    """``(sample, cell)`` pairs of the cone search, in ascending cell ID inside each sample."""
    pair_s, pair_c = cone_pairs(cells, table, focus.event, focus.eta, focus.phi, focus.radius)
    _, order = sort_stable(pair_s * max(len(table), 1) + cells.rank[pair_c])
    return pair_s[order], pair_c[order]


def _cell_labels(cells: ChunkCells, p: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(total truth, focused particle's energy, p found)`` per cell ``row`` for particle indices ``p``."""
    total = np.zeros(len(row))
    focus = np.zeros(len(row))
    has = np.zeros(len(row), bool)
    for col_i, col_e in zip(cells.truth_idx, cells.truth_e, strict=True):  # K <= 3 list positions
        e_j = col_e[row]
        total += e_j
        m = (col_i[row] == p) & ~has  # j* = first position of p
        focus[m] = e_j[m]
        has |= m
    return total, focus, has


def _cell_records(
    cells: ChunkCells, table: CellTable, tracks: ChunkTracks, focus: _Focus, pair_s: np.ndarray, pair_c: np.ndarray
) -> tuple[ak.contents.RecordArray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``cells`` records of all samples, and per sample the cell count, energy sum and focused truth sum."""
    n_s = len(focus.kept)
    rk = cells.rank[pair_c]
    cx, cy, cz = table.x[rk], table.y[rk], table.z[rk]
    dist = min_distance(focus.point_sets, pair_s, cx, cy, cz)
    p = tracks.cols["trackTruthParticleIndex"][focus.kept].astype(np.int64)[pair_s]
    p = np.where(p >= 0, p, -2)  # -1 never matches (nor does the -1 padding of the truth columns)
    total, focus_e, has = _cell_labels(cells, p, pair_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(has & (total > 0), focus_e / total, 0.0)
    total_label = np.where(has, total, 0.0)
    energy = cells.energy[pair_c]
    n_cells = np.bincount(pair_s, minlength=n_s)
    sum_e = np.bincount(pair_s, weights=energy, minlength=n_s)
    sum_focus = np.bincount(pair_s, weights=focus_e, minlength=n_s)
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
            "focus_energy": focus_e.astype(_F32),
            "truth_energy": total.astype(_F32),
            "total_label": total_label.astype(_F32),
        },
    )
    return cell_rec, n_cells, sum_e, sum_focus


def _track_records(tracks: ChunkTracks, focus: _Focus) -> tuple[_ListField, _ListField, _ListField]:
    """``(counts, records)`` of the focused-track points, the other tracks in the cone and their points."""
    tp_rec = _record(
        len(focus.point_sample),
        {"layer": focus.point_layer.astype(np.int8), "X": focus.point_x, "Y": focus.point_y, "Z": focus.point_z},
    )
    o_s, other = other_track_pairs(tracks, focus.kept, focus.eta, focus.phi, focus.radius)
    n_other = np.bincount(o_s, minlength=len(focus.kept))
    ot_rec = _record(
        len(other),
        {
            "trackID": tracks.index_in_event[other],
            "track_part_Idx": tracks.cols["trackTruthParticleIndex"][other].astype(np.int32),
            "trackPt": tracks.cols["trackPt"][other].astype(_F32),
        },
    )
    return (focus.n_points, tp_rec), (n_other, ot_rec), _other_points(focus, o_s, other, n_other)


def _other_points(focus: _Focus, o_s: np.ndarray, other: np.ndarray, n_other: np.ndarray) -> _ListField:
    """``(counts, records)`` of the other tracks' valid layer points, with the distance to the focused track's."""
    # (pair, layer) for valid layers of the other track
    op_pair, op_l = np.nonzero(focus.valid[other])
    first_of_sample = np.cumsum(n_other) - n_other
    op_sample = o_s[op_pair]
    op_local = op_pair - first_of_sample[op_sample]
    ox, oy, oz = (c[other[op_pair], op_l].astype(_F32) for c in (focus.px, focus.py, focus.pz))
    od = min_distance(focus.point_sets, op_sample, ox, oy, oz)
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
    return np.bincount(op_sample, minlength=len(focus.kept)), op_rec


def _metadata(
    events: ak.Array,
    tracks: ChunkTracks,
    focus: _Focus,
    sum_e: np.ndarray,
    sum_focus: np.ndarray,
    n_cells: np.ndarray,
    report: dict[str, Any],
) -> dict[str, np.ndarray]:
    """The scalar fields of every sample (sets ``report["ndof_zero"]``)."""
    kept = focus.kept
    chi2 = tracks.cols["trackChiSquared"][kept].astype(np.float64)
    ndof = tracks.cols["trackNumberDOF"][kept].astype(np.float64)
    report["ndof_zero"] = int(np.sum(ndof == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2ndof = np.where(ndof != 0, chi2 / np.where(ndof != 0, ndof, 1.0), np.nan)
    event_number = np.asarray(events["eventNumber"]).astype(np.int64)
    return {
        "eventNumber": event_number[focus.event],
        "trackID": tracks.index_in_event[kept],
        "trackEta": focus.eta.astype(_F32),
        "trackPhi": focus.phi.astype(_F32),
        "trackPt": tracks.cols["trackPt"][kept].astype(_F32),
        "track_part_Idx": tracks.cols["trackTruthParticleIndex"][kept].astype(np.int32),
        "trackChi2PerNDOF": chi2ndof.astype(_F32),
        "trackSubtractedCaloEnergy": tracks.cols["trackSubtractedCaloEnergy"][kept].astype(_F32),
        "delta_r": focus.radius.astype(_F32),
        "total_associated_cell_energy": sum_e.astype(_F32),
        "focus_truth_energy": sum_focus.astype(_F32),
        "n_cells": n_cells.astype(np.int32),
    }


def _sample_array(meta: Mapping[str, np.ndarray], lists: Sequence[_ListField], n_s: int) -> ak.Array:
    """The ``n_s`` samples: the scalar fields ``meta``, then the four list fields (``(counts, records)`` each)."""
    contents = [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in meta.values()]
    contents += [_lists(counts, rec) for counts, rec in lists]
    fields = [*meta, "track_points", "cells", "other_tracks", "other_track_points"]
    return ak.Array(ak.contents.RecordArray(contents, fields, length=n_s))


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
    """Entries ``entry_start:entry_stop`` of one input file, the unit of work of :func:`build_samples`."""

    file_index: int
    chunk_index: int
    path: str
    entry_start: int
    entry_stop: int


def _read_chunk(path: str, entry_start: int, entry_stop: int, branches: Sequence[str]) -> ak.Array:
    """Read ``branches`` of a range of ``EventTree`` entries (``CorruptFileError`` naming the file and range)."""
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
    """Build the samples of one chunk and write its non-empty splits; ``{"counts", "report"}`` (with CPU times)."""
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
    :class:`~jetcloud.atlas.celltable.CellTable`, shipped to the workers). The other options are those of
    :func:`build_chunk` and :func:`split_of_event`.

    Returns ``{"samples": {split: n}, "events", "files", "chunks", "report", "out_dir", "wall_s", "cpu_s"}``;
    ``report`` merges the chunk reports (see :func:`build_chunk`). A ``manifest.json`` is written in
    ``out_dir`` when ``manifest`` is true.
    """
    t_start = time.perf_counter()
    paths, geometry = _check_inputs(files, geometry_path, step_size, delta_r, fractions, salt)
    tasks, n_entries = _chunk_tasks(paths, step_size)
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
    chunk_kwargs = {"geometry": geometry, "fractions": tuple(fractions), "salt": salt, "options": options}
    results = _run_chunks(tasks, out_dir, chunk_kwargs, workers=workers, scheduler=scheduler, progress=progress)
    summary = _summarize(results, paths, len(tasks), n_entries, out_dir, t_start, truth_unit)
    if manifest:
        parameters = {**options, "step_size": step_size, "fractions": list(fractions), "salt": salt}
        _write_manifest(out_dir, paths, geometry, summary, parameters)
    log.info("samples: %s (%.1f s)", summary["samples"], summary["wall_s"])
    return summary


def _check_inputs(
    files: str | os.PathLike | Iterable[str | os.PathLike],
    geometry_path: str | os.PathLike | Any,
    step_size: int,
    delta_r: float | str,
    fractions: Sequence[float],
    salt: int,
) -> tuple[list[Path], Any]:
    """Check the options, every file's schema and the geometry before any work: ``(paths, geometry)``."""
    from jetcloud.atlas.mltree import check_schema, expand_files

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
    return paths, geometry


def _chunk_tasks(paths: Sequence[Path], step_size: int) -> tuple[list[_ChunkTask], int]:
    """One task per ``step_size`` entries of every file, and the total number of entries."""
    from jetcloud.atlas.mltree import open_event_tree

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
    return tasks, n_entries


def _run_chunks(
    tasks: Sequence[_ChunkTask],
    out_dir: Path,
    chunk_kwargs: dict[str, Any],
    *,
    workers: int | None,
    scheduler: Any,
    progress: bool,
) -> list[dict[str, Any]]:
    """:func:`_process_chunk` on every task, into a temporary directory that replaces ``out_dir`` once all succeed."""
    from jetcloud.io.atomic import atomic_dir
    from jetcloud.io.errors import disk_full_guard
    from jetcloud.parallel import map_chunks

    with disk_full_guard(out_dir), atomic_dir(out_dir, stage="atlas.samples") as tmp:
        for name in SPLIT_NAMES:
            (tmp / name).mkdir()
        func = functools.partial(_process_chunk, out_dir=os.fspath(tmp), **chunk_kwargs)
        results = map_chunks(func, tasks, workers=workers, scheduler=scheduler, progress=progress, desc="samples")
        _check_not_empty(results, tasks, out_dir)
    return results


def _check_not_empty(results: Sequence[Mapping[str, Any]], tasks: Sequence[_ChunkTask], out_dir: Path) -> None:
    """Raise (before ``out_dir`` is replaced) when no chunk produced a sample, saying why."""
    if sum(sum(r["counts"].values()) for r in results):
        return
    rep = merge_reports(r["report"] for r in results)
    files = sorted({t.path for t in tasks})
    raise ValueError(
        f"no samples built from {files or 'no input files'} for {out_dir}: {rep.get('events', 0)} event(s), "
        f"{rep.get('tracks', 0)} track(s), {rep.get('skipped_no_reference', 0)} without an EMB2/EME2 "
        f"extrapolation, {rep.get('nonfinite_track_pt', 0)} with a NaN/inf trackPt; nothing was written"
    )


def _summarize(
    results: Sequence[Mapping[str, Any]],
    paths: Sequence[Path],
    n_chunks: int,
    n_entries: int,
    out_dir: Path,
    t_start: float,
    truth_unit: str,
) -> dict[str, Any]:
    """The summary of :func:`build_samples`; warns when truth and cell energies differ in scale (``truth_unit``)."""
    report = merge_reports(r["report"] for r in results)
    counts = {name: sum(r["counts"][name] for r in results) for name in SPLIT_NAMES}
    summary = {
        "samples": counts,
        "events": n_entries,
        "files": [os.fspath(p) for p in paths],
        "chunks": n_chunks,
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
    return summary


def _write_manifest(
    out_dir: Path, paths: Sequence[Path], geometry: Any, summary: Mapping[str, Any], parameters: dict[str, Any]
) -> None:
    """Write ``out_dir/manifest.json``: inputs (files and a geometry file), parameters, counts and report."""
    from jetcloud.io.manifest import write_manifest

    geo_inputs = [geometry] if isinstance(geometry, str) else []
    write_manifest(
        out_dir,
        inputs=[*paths, *geo_inputs],
        seed=None,
        wall_time_s=summary["wall_s"],
        parameters=parameters,
        extra={"samples": summary["samples"], "report": summary["report"]},
        hash_output=False,
    )


# --------------------------------------------------------------------------------------------------------------
# reading back
# --------------------------------------------------------------------------------------------------------------


def read_sample(samples_dir: str | os.PathLike, split: str, part: str, event: int, track: int) -> ak.Record:
    """The sample of (``event``, ``track``) in ``<samples_dir>/<split>/<part>.parquet`` (KeyError if absent)."""
    path = Path(samples_dir) / split / f"{part}.parquet"
    arr = ak.from_parquet(path)
    hit = np.flatnonzero((arr.eventNumber.to_numpy() == event) & (arr.trackID.to_numpy() == track))
    if len(hit) == 0:
        raise KeyError(f"{path}: no sample for event {event}, track {track}")
    return arr[int(hit[0])]
