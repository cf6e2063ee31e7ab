"""Fixed-length point clouds for the networks (stage 2 of the pipeline; notebook 02).

ATLAS section
=============

Track-centred samples (the parquet schema of :mod:`jetcloud.atlas.samples`) become padded arrays of ``L`` points per
sample, the input of JetPointNet (``docs/jetpointnet.md``, ``jets_awk_to_npz.py``). Everything
is computed for all samples of a parquet part at once with awkward / numpy: there is no Python loop over
samples, cells or points.

**Points.** A sample has ``n_points = focused-track intersections + cells + other-track intersections``
points, in that order (cells in ascending ID order, other-track points in the sample's track then layer
order). Each point is one row of the features :data:`ATLAS_FEATURES` (float32):

=============================  ====================================================================
point                          row ``(x, y, z, distance_to_track, energy, type)``
=============================  ====================================================================
focused-track intersection     ``[X, Y, Z, 0, trackPt, 1]``
cell                           ``[X, Y, Z, distance_to_track, E, 0]``
other-track intersection       ``[X, Y, Z, distance_to_track, pT of that track, 2]``
padding                        ``[0, 0, 0, 0, 0, -1]``
=============================  ====================================================================

With ``one_hot_type=True`` the ``type`` column is replaced by four 0/1 columns ``is_cell, is_focus_track,
is_other_track, is_padding`` (9 features, the width of the original HEAD; padding ``[0, ..., 0, 1]``). A NaN
feature (a cell distance when the focused track has no intersection point) becomes 0, as in the original. Any
other NaN or infinite feature or scalar (an energy, a pT, a coordinate) is never set to 0: notebook 02 drops
the sample and counts it (``removed_nonfinite`` in the per-split counts and the meta).

**Units.** Every energy in the output (the ``energy`` column, the labels and the per-sample scalars
``track_pt`` and ``focus_truth_energy``) is in ``energy_unit``: ``"MeV"`` (default, the original report
version) multiplies the GeV values of the samples by 1000, ``"GeV"`` keeps them. The original put cell
energies in MeV but track pT in GeV into the *same* column (a 1000x mismatch between point types); here track
points carry pT in the same unit as the cells.

**Coordinates.** ``coordinates="raw"``: X, Y, Z and the distance in mm, as in the report version.
``coordinates="centred"``: X, Y, Z minus the focused track's reference point (its EMB2 intersection, else EME2,
else the mean of its intersections; no shift for a track without any), then X, Y, Z and the distance divided by a
fixed ``coordinate_scale`` (1000 mm by default). This is preferred to the original HEAD's per-sample min-max
normalisation: a fixed scale keeps one millimetre the same size in every sample (a shower's lateral width, a
cell's size and the distance to the track stay comparable between a 2 GeV and a 200 GeV track, whereas min-max
stretches every sample to its own box, and its box depends on outliers and on points that are later truncated),
and centring on the track removes the position in the detector, which the network should not need to learn, while
the values stay O(1) for the ~0.3-4 m extent of a cone. The centre is the track's own point, so it is the same
with or without other tracks in the cone.

**Length.** ``L`` is a quantile (:func:`choose_length`, default 0.99) of the *training* split's sample lengths
after the ``min_cells`` filter, instead of the original's hard-coded 859 (278 at HEAD). Samples longer than
``L`` are truncated: all focused-track points are kept (at most 19), then the highest-energy cells (ties: lower
cell ID first), then other-track points while room is left; the kept cells stay in ascending-ID order. The
original truncated by position, dropping the other-track points and then the highest-ID cells, which is
unrelated to energy or distance to the track.

**Labels** (float32 ``[N, L]``, :data:`MASK_VALUE` = -1 on track points and padding): ``frac_labels``
(``cells.frac_label``), ``tot_labels`` (``cells.total_label``, the original's ``Total_Label``: a cell's *total*
truth energy whenever the focused particle contributed, kept for comparisons), ``tot_truth_e``
(``cells.truth_energy``) and ``focus_labels`` (``cells.focus_energy``, the focused particle's own deposit: the
right regression target). The energy labels are in ``energy_unit``.

**Geometry** (``[N, L]``, for evaluation, jets and the track-conditioned network): ``cell_id`` (uint64, 0 where
the point is not a cell), ``sampling`` (int16 CaloSampling number, -1 where not a cell), ``cell_eta``,
``cell_phi`` (float32, NaN where not a cell) (:data:`ATLAS_CELL_ARRAYS`); and for every point
(:data:`ATLAS_POINT_ARRAYS`) ``point_sampling``, ``point_eta``, ``point_phi``: the cells' values, and for track
intersections the CaloSampling of their layer and the direction of their raw X, Y, Z (-1 / NaN on padding).
Per sample, ``track_p`` (GeV whatever ``energy_unit``: ``|p| = pT cosh(eta)``, with the reference eta standing
for the perigee one) and ``track_phi`` (the reference phi).

**Filter.** Samples with fewer than ``min_cells`` cells are removed (the original's 100 in the report, 25 at
HEAD) and counted.

**Output** of :func:`build_atlas_point_clouds`: ``out_dir/{train,val,test}/<parquet part stem>.npz`` (one per
parquet part, written even when empty so that parts and npz files correspond one to one), each with the
keys ``feats`` ``[N, L, F]``, the four labels ``[N, L]`` and the per-sample scalars :data:`ATLAS_SCALARS`;
``out_dir/point_cloud_meta.json`` (length, features, units, counts; what training reads) and
``out_dir/manifest.json``. Arrays are stored uncompressed by default so that :func:`open_npz` can memory-map
them; every file loads with ``np.load(..., allow_pickle=False)``.
"""

from __future__ import annotations

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

from jetcloud.io.npz import PointCloudFormatError, npz_memmap

__all__ = [
    "MASK_VALUE",
    "SPLIT_NAMES",
    "ENERGY_UNITS",
    "COORDINATE_MODES",
    "ATLAS_FEATURES",
    "ATLAS_ONE_HOT_FEATURES",
    "ATLAS_LABELS",
    "ATLAS_SCALARS",
    "ATLAS_CELL_ARRAYS",
    "ATLAS_POINT_ARRAYS",
    "ATLAS_POINT_TYPES",
    "META_NAME",
    "atlas_feature_names",
    "atlas_sample_lengths",
    "check_atlas_sample_schema",
    "choose_length",
    "select_min_cells",
    "atlas_point_arrays",
    "build_atlas_point_clouds",
    "read_point_cloud_meta",
    "point_cloud_files",
    "open_npz",
    "load_point_clouds",
]

log = logging.getLogger(__name__)

#: Label value of points that are not cells (track points, padding): masked in the losses.
MASK_VALUE = -1.0
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
#: Energy units and their factor from the samples' GeV.
ENERGY_UNITS: dict[str, float] = {"MeV": 1000.0, "GeV": 1.0}
COORDINATE_MODES: tuple[str, ...] = ("raw", "centred")
#: Point types (the ``type`` feature).
ATLAS_POINT_TYPES: dict[str, int] = {"padding": -1, "cell": 0, "focus_track": 1, "other_track": 2}
ATLAS_FEATURES: tuple[str, ...] = ("x", "y", "z", "distance_to_track", "energy", "type")
ATLAS_ONE_HOT_FEATURES: tuple[str, ...] = (
    *ATLAS_FEATURES[:5],
    "is_cell",
    "is_focus_track",
    "is_other_track",
    "is_padding",
)
#: npz label key -> ``cells`` field of the samples.
ATLAS_LABELS: dict[str, str] = {
    "frac_labels": "frac_label",
    "tot_labels": "total_label",
    "tot_truth_e": "truth_energy",
    "focus_labels": "focus_energy",
}
#: Per-point geometry arrays ``[N, L]`` of the cells (contract of notebooks 03-05) and their fill value elsewhere.
ATLAS_CELL_ARRAYS: dict[str, tuple[type, float]] = {
    "cell_id": (np.uint64, 0),
    "sampling": (np.int16, -1),
    "cell_eta": (np.float32, np.nan),
    "cell_phi": (np.float32, np.nan),
}
#: Per-point geometry of *every* point (cells and track intersections; fill value on padding): the calorimeter
#: sampling (CaloSampling number; a track point carries that of its layer) and the direction of the point.
ATLAS_POINT_ARRAYS: dict[str, tuple[type, float]] = {
    "point_sampling": (np.int16, -1),
    "point_eta": (np.float32, np.nan),
    "point_phi": (np.float32, np.nan),
}
#: Per-sample scalars stored beside the arrays (energies in the energy unit).
ATLAS_SCALARS: tuple[str, ...] = (
    "eventNumber",
    "trackID",
    "n_points",
    "n_cells",
    "track_pt",
    "track_eta",
    "focus_truth_energy",
    "track_p",
    "track_phi",
)
_SCALAR_DTYPES: dict[str, type] = {
    "eventNumber": np.int64,
    "trackID": np.int32,
    "n_points": np.int32,
    "n_cells": np.int32,
    "track_pt": np.float32,
    "track_eta": np.float32,
    "focus_truth_energy": np.float32,
    "track_p": np.float32,
    "track_phi": np.float32,
}
META_NAME = "point_cloud_meta.json"
META_VERSION = 1

#: Fields of the sample schema this stage reads (parquet column paths).
_REQUIRED_COLUMNS: tuple[str, ...] = (
    "eventNumber",
    "trackID",
    "trackEta",
    "trackPhi",
    "trackPt",
    "focus_truth_energy",
    "track_points.layer",
    "track_points.X",
    "track_points.Y",
    "track_points.Z",
    "cells.E",
    "cells.X",
    "cells.Y",
    "cells.Z",
    "cells.distance_to_track",
    "cells.ID",
    "cells.eta",
    "cells.phi",
    "cells.sampling",
    *(f"cells.{field}" for field in ATLAS_LABELS.values()),
    "other_tracks.trackPt",
    "other_track_points.track",
    "other_track_points.layer",
    "other_track_points.X",
    "other_track_points.Y",
    "other_track_points.Z",
    "other_track_points.distance_to_track",
)
#: The smallest columns giving the three list lengths and the cell count.
_LENGTH_COLUMNS: tuple[str, ...] = ("track_points.layer", "cells.E", "other_track_points.track")
_EMB2, _EME2 = 1, 4  # jetcloud.atlas.layers.LAYER_NAMES.index("EMB2"), ("EME2")


# --------------------------------------------------------------------------------------------------------------
# checks and small helpers
# --------------------------------------------------------------------------------------------------------------


def atlas_feature_names(one_hot_type: bool = False) -> tuple[str, ...]:
    """Feature (column) names of ``feats``: :data:`ATLAS_FEATURES` or :data:`ATLAS_ONE_HOT_FEATURES`."""
    return ATLAS_ONE_HOT_FEATURES if one_hot_type else ATLAS_FEATURES


def _check_options(energy_unit: str, coordinates: str, coordinate_scale: float) -> float:
    if energy_unit not in ENERGY_UNITS:
        raise ValueError(f"unknown energy_unit {energy_unit!r}; expected one of {', '.join(ENERGY_UNITS)}")
    if coordinates not in COORDINATE_MODES:
        raise ValueError(f"unknown coordinates {coordinates!r}; expected one of {', '.join(COORDINATE_MODES)}")
    if not (np.isfinite(coordinate_scale) and coordinate_scale > 0):
        raise ValueError(f"coordinate_scale must be a positive number of mm, got {coordinate_scale!r}")
    return ENERGY_UNITS[energy_unit]


def _check_length(length: Any) -> int:
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 1:
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    return int(length)


def _check_min_cells(min_cells: Any) -> int:
    if isinstance(min_cells, bool) or not isinstance(min_cells, int | np.integer) or min_cells < 0:
        raise ValueError(f"min_cells must be an integer >= 0, got {min_cells!r}")
    return int(min_cells)


def check_atlas_sample_schema(path: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming ``path`` and every missing field if the parquet file lacks a needed field.

    Only the parquet footer is read. The fields checked are those this stage uses (dotted paths such as
    ``cells.focus_energy``; see the sample schema in :mod:`jetcloud.atlas.samples`).
    """
    try:
        meta = ak.metadata_from_parquet(os.fspath(path))
    except Exception as err:
        raise ValueError(f"{path}: not a readable parquet file of track-centred samples ({err})") from err
    columns = set(meta["form"].columns())
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: not a track-centred sample file (jetcloud.atlas.samples schema); "
            f"missing fields: {', '.join(missing)}"
        )


def _counts(lists: ak.Array) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.num(lists, axis=1)), dtype=np.int64)


def _flat(lists: ak.Array, field: str, dtype: type = np.float64) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.fill_none(ak.flatten(lists[field], axis=1), np.nan)), dtype=dtype)


def _local_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For jagged lists with ``counts``: (owner sample, position inside the sample, start offset per sample)."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else counts
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    local = np.arange(int(counts.sum()), dtype=np.int64) - starts[owner]
    return owner, local, starts


# --------------------------------------------------------------------------------------------------------------
# lengths, filter
# --------------------------------------------------------------------------------------------------------------


def atlas_sample_lengths(samples: ak.Array) -> np.ndarray:
    """Points per sample (int64): focused-track intersections + cells + other-track intersections."""
    return _counts(samples["track_points"]) + _counts(samples["cells"]) + _counts(samples["other_track_points"])


def choose_length(lengths: np.ndarray | Sequence[int], quantile: float = 0.99) -> int:
    """The padded length ``L``: the smallest length that at least a fraction ``quantile`` of samples fit in.

    ``lengths`` are the training samples' point counts (:func:`atlas_sample_lengths`); ``quantile`` must be in
    (0, 1] (1 gives the longest sample, i.e. no truncation). Uses the inverted-CDF quantile, so ``L`` is an
    actual sample length and ``mean(lengths <= L) >= quantile``. The result is at least 1.
    """
    q = float(quantile)
    if not (0.0 < q <= 1.0):
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    values = np.asarray(lengths)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("cannot choose a length from no samples (is the training split empty?)")
    return max(1, int(np.quantile(values, q, method="inverted_cdf")))


def select_min_cells(samples: ak.Array, min_cells: int) -> tuple[ak.Array, int]:
    """``(samples with at least min_cells cells, number removed)``; the original skipped ``len(cells) < 100``."""
    min_cells = _check_min_cells(min_cells)
    keep = _counts(samples["cells"]) >= min_cells
    n_removed = int(len(keep) - np.count_nonzero(keep))
    return (samples if n_removed == 0 else samples[keep]), n_removed


# --------------------------------------------------------------------------------------------------------------
# samples -> arrays
# --------------------------------------------------------------------------------------------------------------


def _reference_points(track_points: ak.Array) -> np.ndarray:
    """[N, 3] focused-track reference point: the EMB2 intersection, else EME2, else the mean, else 0 (mm)."""
    counts = _counts(track_points)
    n = len(counts)
    centre = np.zeros((n, 3), np.float64)
    if n == 0 or counts.sum() == 0:
        return centre
    owner, _, _ = _local_index(counts)
    layer = _flat(track_points, "layer", np.int64)
    xyz = np.stack([_flat(track_points, c) for c in ("X", "Y", "Z")], axis=1)
    has = counts > 0
    np.add.at(centre, owner, xyz)
    centre[has] /= counts[has, None]
    for wanted in (_EME2, _EMB2):  # EMB2 last: it wins where both exist
        rows = np.flatnonzero(layer == wanted)
        centre[owner[rows]] = xyz[rows]
    return centre


def atlas_point_arrays(
    samples: ak.Array,
    length: int,
    *,
    energy_unit: str = "MeV",
    coordinates: str = "raw",
    one_hot_type: bool = False,
    coordinate_scale: float = 1000.0,
) -> dict[str, np.ndarray]:
    """Padded point arrays of track-centred samples (no filter applied here; see :func:`select_min_cells`).

    Returns ``feats`` float32 ``[N, length, F]``, the labels of :data:`ATLAS_LABELS` float32 ``[N, length]``
    and the scalars of :data:`ATLAS_SCALARS` (``[N]``). Point order, truncation, features, units and the
    coordinate modes are described in the module docstring.
    """
    length = _check_length(length)
    scale = _check_options(energy_unit, coordinates, coordinate_scale)
    n = len(samples)
    tp, cells, ot, otp = (samples[k] for k in ("track_points", "cells", "other_tracks", "other_track_points"))
    nf, nc, no = _counts(tp), _counts(cells), _counts(otp)
    n_points = nf + nc + no

    # how many points of each kind fit: all focused points first, then cells, then other-track points
    kf = np.minimum(nf, length)
    kc = np.minimum(nc, length - kf)
    ko = np.minimum(no, length - kf - kc)
    f_owner, f_slot, f_keep = _focus_slots(nf, kf)
    energy, c_sel_owner, c_slot, c_keep = _cell_slots(cells, nc, kf, kc)
    o_sel_owner, o_slot, o_keep, o_pt = _other_track_slots(ot, otp, no, kf, kc, ko)

    # feature rows
    if coordinates == "centred":
        centre = _reference_points(tp)
        coord_scale = 1.0 / float(coordinate_scale)
    else:
        centre = None
        coord_scale = 1.0
    pt = np.asarray(ak.to_numpy(samples["trackPt"]), np.float64)
    f_cols = [*_xyz(tp, f_owner, f_keep, centre, coord_scale), np.zeros(len(f_owner)), pt[f_owner] * scale]
    c_cols = [
        *_xyz(cells, c_sel_owner, c_keep, centre, coord_scale),
        _flat(cells, "distance_to_track")[c_keep] * coord_scale,
        energy[c_keep] * scale,
    ]
    o_cols = [
        *_xyz(otp, o_sel_owner, o_keep, centre, coord_scale),
        _flat(otp, "distance_to_track")[o_keep] * coord_scale,
        o_pt * scale,
    ]
    groups = (
        (f_owner, f_slot, f_cols, "focus_track"),
        (c_sel_owner, c_slot, c_cols, "cell"),
        (o_sel_owner, o_slot, o_cols, "other_track"),
    )
    out: dict[str, np.ndarray] = {"feats": _feature_rows(n, length, one_hot_type, groups)}
    out.update(_cell_labels(cells, c_sel_owner, c_slot, c_keep, n, length, scale))
    out.update(_sample_scalars(samples, n_points, nc, pt, scale))
    out.update(_cell_geometry(cells, c_sel_owner, c_slot, c_keep, n, length))
    point_groups = ((tp, f_owner, f_slot, np.flatnonzero(f_keep)), (otp, o_sel_owner, o_slot, o_keep))
    out.update(_point_geometry(out, point_groups, n, length))
    return out


def _cell_geometry(
    cells: ak.Array, owner: np.ndarray, slot: np.ndarray, keep: np.ndarray, n: int, length: int
) -> dict[str, np.ndarray]:
    """The arrays of :data:`ATLAS_CELL_ARRAYS`: ID, CaloSampling number, eta, phi of the kept cells."""
    fields = {"cell_id": "ID", "sampling": "sampling", "cell_eta": "eta", "cell_phi": "phi"}
    out = {}
    for key, (dtype, fill) in ATLAS_CELL_ARRAYS.items():
        values = np.full((n, length), fill, dtype)
        flat = np.asarray(ak.to_numpy(ak.flatten(cells[fields[key]], axis=1)))
        values[owner, slot] = flat[keep].astype(dtype)
        out[key] = values
    return out


def _point_geometry(
    cell_arrays: Mapping[str, np.ndarray],
    groups: Iterable[tuple[ak.Array, np.ndarray, np.ndarray, np.ndarray]],
    n: int,
    length: int,
) -> dict[str, np.ndarray]:
    """The arrays of :data:`ATLAS_POINT_ARRAYS`: the cells' values, then every track point's layer sampling and
    direction (eta, phi of its raw X, Y, Z) in its slot."""
    from jetcloud.atlas.layers import LAYER_SAMPLING

    out = {
        "point_sampling": cell_arrays["sampling"].copy(),
        "point_eta": cell_arrays["cell_eta"].copy(),
        "point_phi": cell_arrays["cell_phi"].copy(),
    }
    for lists, owner, slot, keep in groups:
        x, y, z = (_flat(lists, c)[keep] for c in ("X", "Y", "Z"))
        layer = _flat(lists, "layer", np.int64)[keep]
        out["point_sampling"][owner, slot] = LAYER_SAMPLING[layer]
        out["point_eta"][owner, slot] = np.arcsinh(z / np.hypot(x, y))
        out["point_phi"][owner, slot] = np.arctan2(y, x)
    return out


def _focus_slots(nf: np.ndarray, kf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample, slot) of the focused-track points kept (the first ``kf`` of each sample) and the flat keep mask."""
    f_owner, f_local, _ = _local_index(nf)
    f_keep = f_local < kf[f_owner]
    return f_owner[f_keep], f_local[f_keep], f_keep


def _cell_slots(
    cells: ak.Array, nc: np.ndarray, kf: np.ndarray, kc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(flat cell energies, sample, slot, flat index) of the ``kc`` highest-energy cells kept, in ID order."""
    n = len(nc)
    # ties: lower position = lower ID
    c_owner, c_local, c_start = _local_index(nc)
    energy = _flat(cells, "E")
    key = np.where(np.isnan(energy), np.inf, -energy)  # NaN energies rank last
    order = np.lexsort((c_local, key, c_owner))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64) - c_start[c_owner[order]]
    c_keep = np.flatnonzero(rank < kc[c_owner])
    kc_start = np.concatenate([[0], np.cumsum(kc)[:-1]]).astype(np.int64) if n else kc
    c_sel_owner = c_owner[c_keep]
    c_slot = kf[c_sel_owner] + np.arange(len(c_keep), dtype=np.int64) - kc_start[c_sel_owner]
    return energy, c_sel_owner, c_slot, c_keep


def _other_track_slots(
    ot: ak.Array, otp: ak.Array, no: np.ndarray, kf: np.ndarray, kc: np.ndarray, ko: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sample, slot, flat index, track pT) of the other-track points kept: in sample order, while room is left."""
    n = len(no)
    o_owner, o_local, _ = _local_index(no)
    o_keep = np.flatnonzero(o_local < ko[o_owner])
    o_sel_owner = o_owner[o_keep]
    o_slot = kf[o_sel_owner] + kc[o_sel_owner] + o_local[o_keep]
    n_ot = _counts(ot)
    ot_start = np.concatenate([[0], np.cumsum(n_ot)[:-1]]).astype(np.int64) if n else n_ot
    o_track = _flat(otp, "track", np.int64)[o_keep]
    if len(o_track) and (np.any(o_track < 0) or np.any(o_track >= n_ot[o_sel_owner])):
        raise ValueError("other_track_points.track does not index the sample's other_tracks")
    o_pt = _flat(ot, "trackPt")[ot_start[o_sel_owner] + o_track]
    return o_sel_owner, o_slot, o_keep, o_pt


def _xyz(
    lists: ak.Array, owner: np.ndarray, keep: np.ndarray, centre: np.ndarray | None, coord_scale: float
) -> list[np.ndarray]:
    """X, Y, Z of the kept points, centred on their sample's ``centre`` and scaled when ``centre`` is given."""
    out = []
    for axis, c in enumerate(("X", "Y", "Z")):
        v = _flat(lists, c)[keep]
        if centre is not None:
            v = (v - centre[owner, axis]) * coord_scale
        out.append(v)
    return out


def _feature_rows(
    n: int, length: int, one_hot_type: bool, groups: Iterable[tuple[np.ndarray, np.ndarray, list[np.ndarray], str]]
) -> np.ndarray:
    """``feats [n, length, F]``: padding everywhere, then the (sample, slot, columns, kind) rows of every group."""
    names = atlas_feature_names(one_hot_type)
    n_feat = len(names)
    feats = np.zeros((n, length, n_feat), np.float32)
    type_code = ATLAS_POINT_TYPES
    if one_hot_type:
        feats[:, :, names.index("is_padding")] = 1.0
    else:
        feats[:, :, 5] = type_code["padding"]
    for owner, slot, cols, kind in groups:
        rows = np.zeros((len(owner), n_feat), np.float64)
        rows[:, :5] = np.stack(cols, axis=1) if len(owner) else 0.0
        if one_hot_type:
            rows[:, names.index(f"is_{kind}")] = 1.0
        else:
            rows[:, 5] = type_code[kind]
        rows[:, 3] = np.where(np.isnan(rows[:, 3]), 0.0, rows[:, 3])  # documented: a NaN distance becomes 0
        feats[owner, slot] = rows  # other non-finite values stay: _drop_nonfinite counts and drops their samples
    return feats


def _cell_labels(
    cells: ak.Array, owner: np.ndarray, slot: np.ndarray, keep: np.ndarray, n: int, length: int, scale: float
) -> dict[str, np.ndarray]:
    """The label arrays of :data:`ATLAS_LABELS`: the kept cells' labels, :data:`MASK_VALUE` elsewhere."""
    out = {}
    for key_name, field in ATLAS_LABELS.items():
        labels = np.full((n, length), MASK_VALUE, np.float32)
        factor = 1.0 if key_name == "frac_labels" else scale
        labels[owner, slot] = _flat(cells, field)[keep] * factor
        out[key_name] = labels
    return out


def _sample_scalars(
    samples: ak.Array, n_points: np.ndarray, nc: np.ndarray, pt: np.ndarray, scale: float
) -> dict[str, np.ndarray]:
    """The per-sample scalars of :data:`ATLAS_SCALARS` in their dtypes (energies in the energy unit)."""
    scalars = {
        "eventNumber": ak.to_numpy(samples["eventNumber"]),
        "trackID": ak.to_numpy(samples["trackID"]),
        "n_points": n_points,
        "n_cells": nc,
        "track_pt": pt * scale,
        "track_eta": ak.to_numpy(samples["trackEta"]),
        "focus_truth_energy": np.asarray(ak.to_numpy(samples["focus_truth_energy"]), np.float64) * scale,
        # |p| = pT cosh(eta) in GeV whatever the energy unit (the contract of notebooks 03-05); the reference eta
        # stands for the perigee one: a helix in the solenoid keeps its polar angle, the two differ only by the
        # displacement of the production vertex (mm against the metres of the calorimeter radius)
        "track_p": pt * np.cosh(np.asarray(ak.to_numpy(samples["trackEta"]), np.float64)),
        "track_phi": ak.to_numpy(samples["trackPhi"]),
    }
    return {k: np.asarray(v).astype(_SCALAR_DTYPES[k]) for k, v in scalars.items()}


# --------------------------------------------------------------------------------------------------------------
# directory of samples -> directory of npz
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PartTask:
    split: str
    path: str


def _sample_parts(samples_dir: str | os.PathLike) -> dict[str, list[Path]]:
    root = Path(samples_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"samples directory {root} does not exist "
            "(build it with jetcloud.atlas.samples.build_samples / notebook 01)"
        )
    parts = {}
    for split in SPLIT_NAMES:
        folder = root / split
        if not folder.is_dir():
            raise FileNotFoundError(f"samples directory {root} has no {split!r} split ({folder} is missing)")
        parts[split] = sorted(folder.glob("*.parquet"))
    return parts


def _read_part(path: str, columns: Sequence[str] | None = None) -> ak.Array:
    try:
        return ak.from_parquet(path, columns=list(columns) if columns is not None else None)
    except Exception as err:
        raise ValueError(f"{path}: cannot read the samples ({err})") from err


def _part_lengths(task: _PartTask, *, min_cells: int) -> dict[str, Any]:
    """Lengths of one part's samples that pass the filter (first pass: only three small columns are read)."""
    samples = _read_part(task.path, _LENGTH_COLUMNS)
    lengths = atlas_sample_lengths(samples)
    keep = _counts(samples["cells"]) >= min_cells
    return {"lengths": lengths[keep], "samples_in": len(keep), "removed_min_cells": int((~keep).sum())}


def _write_npz(target: Path, arrays: Mapping[str, np.ndarray], compress: bool) -> None:
    from jetcloud.io.atomic import atomic_path

    with atomic_path(target) as tmp, open(tmp, "wb") as handle:  # a handle: np.savez would append .npz
        (np.savez_compressed if compress else np.savez)(handle, **arrays)


def _process_part(
    task: _PartTask, *, out_dir: str, length: int, min_cells: int, options: dict[str, Any], compress: bool
) -> dict[str, Any]:
    t0 = time.process_time()
    samples = _read_part(task.path, _REQUIRED_COLUMNS)
    n_in = len(samples)
    samples, removed = select_min_cells(samples, min_cells)
    try:
        arrays = atlas_point_arrays(samples, length, **options)
    except ValueError as err:
        raise ValueError(f"{task.path}: {err}") from err
    arrays, nonfinite = _drop_nonfinite(arrays, task.path)
    n_points = arrays["n_points"].astype(np.int64)
    n_cells = arrays["n_cells"].astype(np.int64)
    kept_cells = int(np.count_nonzero(arrays["frac_labels"] != MASK_VALUE))
    name = Path(task.path).with_suffix(".npz").name
    _write_npz(Path(out_dir) / task.split / name, arrays, compress)
    return {
        "split": task.split,
        "file": f"{task.split}/{name}",
        "samples_in": n_in,
        "removed_min_cells": removed,
        "removed_nonfinite": nonfinite,
        "written": len(n_points),
        "truncated": int(np.count_nonzero(n_points > length)),
        "cells_in": int(n_cells.sum()),
        "cells_dropped": int(n_cells.sum()) - kept_cells,
        "points_in": int(n_points.sum()),
        "cpu_s": time.process_time() - t0,
    }


def _drop_nonfinite(arrays: dict[str, np.ndarray], source: str) -> tuple[dict[str, np.ndarray], int]:
    """Drop the samples with a NaN or infinite feature or float scalar (counted and logged, never set to 0).

    Returns the kept arrays and the number of samples dropped; the labels use :data:`MASK_VALUE`, not NaN.
    """
    n = len(arrays["feats"])
    bad = ~np.isfinite(arrays["feats"]).reshape(n, -1).all(axis=1)
    for key, value in arrays.items():
        if key != "feats" and value.ndim == 1 and value.dtype.kind == "f" and len(value) == n:
            bad |= ~np.isfinite(value)
    n_bad = int(bad.sum())
    if n_bad:
        log.warning(
            "%s: %d sample(s) with NaN or infinite features / scalars dropped (first: sample %d)",
            source,
            n_bad,
            int(np.argmax(bad)),
        )
        arrays = {k: v[~bad] if len(v) == n else v for k, v in arrays.items()}
    return arrays, n_bad


def build_atlas_point_clouds(
    samples_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    length: int | None = None,
    length_quantile: float = 0.99,
    min_cells: int = 100,
    energy_unit: str = "MeV",
    coordinates: str = "raw",
    one_hot_type: bool = False,
    coordinate_scale: float = 1000.0,
    compress: bool = False,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    manifest: bool = True,
) -> dict[str, Any]:
    """Build ``out_dir/{train,val,test}/<part>.npz`` from the sample parquet parts in ``samples_dir``.

    ``samples_dir`` is the output of :func:`jetcloud.atlas.samples.build_samples` (``train``, ``val`` and ``test``
    folders of parquet parts, each may be empty). Two passes, both run by :func:`jetcloud.parallel.map_chunks`
    (``workers`` local processes, or a Dask ``scheduler``), one task per part:

    1. the three list lengths of every part are read (not the full samples) to count the ``min_cells``
       filter and, unless ``length`` is given, to choose ``L = choose_length(train lengths, length_quantile)``;
    2. every part is converted with :func:`atlas_point_arrays` and written as one npz.

    Everything, including ``point_cloud_meta.json``, is written into a temporary directory that replaces
    ``out_dir`` only when every part succeeded (:func:`jetcloud.io.atomic.atomic_dir`): a failure leaves the
    previous ``out_dir`` (or nothing). Inputs and options are checked before any work. A ``manifest.json`` is
    written in ``out_dir`` when ``manifest`` is true.

    Returns ``{"length", "meta", "counts": {split: {...}}, "lengths": {split: int array}, "out_dir", "wall_s",
    "cpu_s"}``; ``lengths`` are the point counts of the samples that passed the filter (before truncation).
    """
    from jetcloud.io.atomic import atomic_dir, write_json
    from jetcloud.parallel import map_chunks

    t_start = time.perf_counter()
    min_cells, length = _check_build_options(
        energy_unit, coordinates, coordinate_scale, min_cells, length, length_quantile
    )
    tasks = _part_tasks(samples_dir)
    run = functools.partial(map_chunks, workers=workers, scheduler=scheduler, progress=progress)
    lengths = _split_lengths(run, tasks, min_cells)
    length, length_source = _resolve_length(length, lengths, length_quantile, min_cells, samples_dir)
    options = _array_options(energy_unit, coordinates, one_hot_type, coordinate_scale)
    out_dir = Path(out_dir)
    log.info("point clouds: %d part(s), L = %d (%s), into %s", len(tasks), length, length_source, out_dir)
    from jetcloud.io.errors import disk_full_guard

    with disk_full_guard(out_dir), atomic_dir(out_dir, stage="atlas.pointcloud") as tmp:
        results = _convert_parts(run, tasks, tmp, length, min_cells, options, compress)
        counts = _split_counts(results)
        meta = _point_cloud_meta(
            options, length, length_quantile, length_source, min_cells, compress, counts, results, samples_dir
        )
        write_json(tmp / META_NAME, meta)
    summary = {
        "length": int(length),
        "meta": meta,
        "counts": counts,
        "lengths": lengths,
        "out_dir": os.fspath(out_dir),
        "wall_s": time.perf_counter() - t_start,
        "cpu_s": float(sum(r["cpu_s"] for r in results)),
    }
    if manifest:
        settings = {"length": length, "length_quantile": length_quantile, "min_cells": min_cells, "compress": compress}
        _write_build_manifest(out_dir, samples_dir, summary["wall_s"], {**options, **settings}, counts)
    written = {s: c["written"] for s, c in counts.items()}
    log.info("point clouds: L = %d, written %s (%.1f s)", length, written, summary["wall_s"])
    return summary


def _check_build_options(
    energy_unit: str,
    coordinates: str,
    coordinate_scale: float,
    min_cells: Any,
    length: Any,
    length_quantile: float,
) -> tuple[int, int | None]:
    """``(min_cells, length)`` checked, with the unit, coordinate and quantile options (before any work)."""
    _check_options(energy_unit, coordinates, coordinate_scale)
    min_cells = _check_min_cells(min_cells)
    if length is not None:
        length = _check_length(length)
    if not (0.0 < float(length_quantile) <= 1.0):
        raise ValueError(f"length_quantile must be in (0, 1], got {length_quantile!r}")
    return min_cells, length


def _part_tasks(samples_dir: str | os.PathLike) -> list[_PartTask]:
    """One task per parquet part of every split, after checking each part's schema."""
    parts = _sample_parts(samples_dir)
    for files in parts.values():
        for f in files:
            check_atlas_sample_schema(f)
    return [_PartTask(split, os.fspath(f.resolve())) for split, files in parts.items() for f in files]


def _split_lengths(run: Any, tasks: list[_PartTask], min_cells: int) -> dict[str, np.ndarray]:
    """First pass: the lengths of the samples passing ``min_cells``, per split (parts in task order)."""
    first = run(functools.partial(_part_lengths, min_cells=min_cells), tasks, desc="point-cloud lengths")
    return {
        split: np.concatenate(
            [r["lengths"] for t, r in zip(tasks, first, strict=True) if t.split == split] or [np.zeros(0, np.int64)]
        )
        for split in SPLIT_NAMES
    }


def _resolve_length(
    length: int | None,
    lengths: Mapping[str, np.ndarray],
    length_quantile: float,
    min_cells: int,
    samples_dir: str | os.PathLike,
) -> tuple[int, str]:
    """``(L, where it came from)``: the given length, or the quantile of the training lengths.

    No sample at all (in any split) after the ``min_cells`` filter is an error: an empty output is no success.
    """
    if not sum(len(v) for v in lengths.values()):
        raise ValueError(
            f"no samples to convert: none of the samples in {samples_dir} has >= min_cells = {min_cells} cells "
            f"(lower min_cells, or check notebook 01's report); nothing was written"
        )
    if length is None:
        if len(lengths["train"]) == 0:
            raise ValueError(
                f"cannot choose the length: no training samples with >= {min_cells} cells in {samples_dir} "
                f"(lower min_cells or give length)"
            )
        length = choose_length(lengths["train"], length_quantile)
        length_source = f"quantile {length_quantile} of the training lengths"
    else:
        length_source = "given"
    return length, length_source


def _array_options(energy_unit: str, coordinates: str, one_hot_type: bool, coordinate_scale: float) -> dict[str, Any]:
    """The keyword options of :func:`atlas_point_arrays` for every part (flag as bool, scale as float)."""
    return {
        "energy_unit": energy_unit,
        "coordinates": coordinates,
        "one_hot_type": bool(one_hot_type),
        "coordinate_scale": float(coordinate_scale),
    }


def _convert_parts(
    run: Any,
    tasks: list[_PartTask],
    tmp: Path,
    length: int,
    min_cells: int,
    options: dict[str, Any],
    compress: bool,
) -> list[dict[str, Any]]:
    """Second pass: every part converted and written into ``tmp/<split>/`` (the split folders made first)."""
    for split in SPLIT_NAMES:
        (tmp / split).mkdir()
    func = functools.partial(
        _process_part,
        out_dir=os.fspath(tmp),
        length=length,
        min_cells=min_cells,
        options=options,
        compress=compress,
    )
    return run(func, tasks, desc="point clouds")


def _split_counts(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per split: the sums of the per-part counts and the number of files."""
    counts = {}
    for split in SPLIT_NAMES:
        rows = [r for r in results if r["split"] == split]
        keys = (
            "samples_in",
            "removed_min_cells",
            "removed_nonfinite",
            "written",
            "truncated",
            "cells_in",
            "cells_dropped",
            "points_in",
        )
        counts[split] = {k: int(sum(r[k] for r in rows)) for k in keys}
        counts[split]["files"] = len(rows)
    return counts


def _point_cloud_meta(
    options: Mapping[str, Any],
    length: int,
    length_quantile: float,
    length_source: str,
    min_cells: int,
    compress: bool,
    counts: dict[str, dict[str, int]],
    results: list[dict[str, Any]],
    samples_dir: str | os.PathLike,
) -> dict[str, Any]:
    """The content of ``point_cloud_meta.json`` (what training reads)."""
    one_hot_type, coordinates = options["one_hot_type"], options["coordinates"]
    return {
        "meta_version": META_VERSION,
        "dataset": "atlas",
        "length": int(length),
        "length_quantile": float(length_quantile),
        "length_source": length_source,
        "features": list(atlas_feature_names(one_hot_type)),
        "n_features": len(atlas_feature_names(one_hot_type)),
        "point_types": dict(ATLAS_POINT_TYPES),
        "one_hot_type": bool(one_hot_type),
        "energy_unit": options["energy_unit"],
        "coordinates": coordinates,
        "coordinate_scale_mm": float(options["coordinate_scale"]) if coordinates == "centred" else None,
        "labels": list(ATLAS_LABELS),
        "label_fields": dict(ATLAS_LABELS),
        "scalars": list(ATLAS_SCALARS),
        "cell_arrays": list(ATLAS_CELL_ARRAYS),
        "point_arrays": list(ATLAS_POINT_ARRAYS),
        "units": {"track_p": "GeV", "track_phi": "rad", "cell_eta": "", "cell_phi": "rad", "point_phi": "rad"},
        "mask_value": MASK_VALUE,
        "min_cells": min_cells,
        "compressed": bool(compress),
        "counts": counts,
        "files": {split: [r["file"] for r in results if r["split"] == split] for split in SPLIT_NAMES},
        "samples_dir": os.fspath(Path(samples_dir).resolve()),
    }


def _write_build_manifest(
    out_dir: Path,
    samples_dir: str | os.PathLike,
    wall_s: float,
    parameters: dict[str, Any],
    counts: dict[str, dict[str, int]],
) -> None:
    """The ``manifest.json`` of a point-cloud directory (inputs, options and counts)."""
    from jetcloud.io.manifest import write_manifest

    write_manifest(
        out_dir,
        inputs=[Path(samples_dir)],
        seed=None,
        wall_time_s=wall_s,
        parameters=parameters,
        extra={"counts": counts},
        hash_output=False,
    )


# --------------------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------------------


def read_point_cloud_meta(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``point_cloud_meta.json`` of a point-cloud directory (``FileNotFoundError`` names it)."""
    import json

    path = Path(out_dir) / META_NAME
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no {META_NAME} in {out_dir}: build the point clouds first (notebook 02)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PointCloudFormatError(f"{path}: not valid JSON ({err}); rebuild the point clouds (notebook 02)") from err
    if not isinstance(meta, dict):
        raise PointCloudFormatError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    length = meta.get("length")
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise PointCloudFormatError(f"{path}: key 'length' must be a positive integer, got {length!r}")
    if not isinstance(meta.get("files"), dict):
        raise PointCloudFormatError(f"{path}: key 'files' must map each split to its npz files")
    return meta


def point_cloud_files(out_dir: str | os.PathLike, split: str) -> list[Path]:
    """The npz files of ``split`` in the order the meta file lists them (sorted part names)."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
    meta = read_point_cloud_meta(out_dir)
    return [Path(out_dir) / name for name in meta["files"][split]]


def open_npz(
    path: str | os.PathLike, keys: Iterable[str] | None = None, *, mmap: bool = False
) -> dict[str, np.ndarray]:
    """Arrays of one npz file (``allow_pickle=False``); with ``mmap`` uncompressed members are memory-mapped.

    ``keys`` selects arrays (all by default); an unknown key is a ``KeyError`` naming the file. Compressed
    members (``compress=True`` builds) are read into memory even with ``mmap``.
    """
    path = Path(path)
    if mmap:
        return npz_memmap(path, keys, compressed="load")
    if not path.is_file():
        raise FileNotFoundError(f"no such point-cloud file: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            wanted = names if keys is None else list(keys)
            unknown = [k for k in wanted if k not in names]
            if unknown:
                raise KeyError(f"{path}: no array(s) {unknown}; it has {names}")
            return {key: npz[key] for key in wanted}
    except KeyError:
        raise
    except Exception as err:  # BadZipFile, EOFError, pickled objects (ValueError), zlib errors ...
        raise PointCloudFormatError(
            f"{path}: not a readable point-cloud npz ({type(err).__name__}: {err}); rebuild it (notebook 02)"
        ) from err


def load_point_clouds(
    out_dir: str | os.PathLike, split: str, keys: Iterable[str] | None = None, *, mmap: bool = False
) -> dict[str, np.ndarray]:
    """All arrays of one split, concatenated over its npz files (sample order: part order, then file order).

    With a single file and ``mmap=True`` the arrays stay memory-mapped; several files are concatenated into
    memory (iterate :func:`point_cloud_files` with :func:`open_npz` to stream them instead). An empty split
    gives arrays with zero samples of the right shapes.
    """
    files = point_cloud_files(out_dir, split)
    if not files:  # a split without parquet parts: zero samples, the right shapes
        meta = read_point_cloud_meta(out_dir)
        empty = {"feats": np.zeros((0, meta["length"], meta["n_features"]), np.float32)}
        empty.update({k: np.zeros((0, meta["length"]), np.float32) for k in meta["labels"]})
        empty.update({k: np.zeros(0, _SCALAR_DTYPES.get(k, np.float32)) for k in meta["scalars"]})
        geometry = {**ATLAS_CELL_ARRAYS, **ATLAS_POINT_ARRAYS}
        names = [*meta.get("cell_arrays", ()), *meta.get("point_arrays", ())]
        empty.update({k: np.zeros((0, meta["length"]), geometry[k][0]) for k in names})
        wanted = list(empty) if keys is None else list(keys)
        unknown = [k for k in wanted if k not in empty]
        if unknown:
            raise KeyError(f"{out_dir}: no array(s) {unknown}; the split has {list(empty)}")
        return {k: empty[k] for k in wanted}
    loaded = [open_npz(f, keys, mmap=mmap) for f in files]
    meta = read_point_cloud_meta(out_dir)
    for f, arrays in zip(files, loaded, strict=True):
        _check_loaded(f, arrays, meta)
    if len(loaded) == 1:
        return loaded[0]
    return {k: np.concatenate([d[k] for d in loaded]) for k in loaded[0]}


def _check_loaded(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Raise :class:`PointCloudFormatError` naming ``path`` and the key when arrays disagree with the meta."""
    n = None
    for key, value in arrays.items():
        n = len(value) if n is None else n
        if value.dtype.hasobject or len(value) != n:
            raise PointCloudFormatError(f"{path}: key {key!r} has shape {value.shape} / dtype {value.dtype}")
    feats = arrays.get("feats")
    if feats is None:
        return
    expected = (meta["length"], meta.get("n_features", feats.shape[-1] if feats.ndim == 3 else None))
    if feats.ndim != 3 or tuple(feats.shape[1:]) != expected:
        raise PointCloudFormatError(
            f"{path}: key 'feats' has shape {feats.shape}, but {META_NAME} says (N, {expected[0]}, {expected[1]})"
        )


def load_parts(out_dir: str | os.PathLike, split: str, max_files: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of the first ``max_files`` npz files of ``split`` (all with None), concatenated in memory.

    Adds ``part``: the parquet part (file stem) every sample came from, to find it again among the samples of
    notebook 01. An empty selection gives an empty dict.
    """
    files = point_cloud_files(out_dir, split)[:max_files]
    parts = [open_npz(f) for f in files]
    if not parts:
        return {}
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["part"] = np.concatenate([np.full(len(p["n_points"]), f.stem) for p, f in zip(parts, files, strict=True)])
    return out


def point_types(feats: np.ndarray, features: list[str] | tuple[str, ...]) -> np.ndarray:
    """The point type (-1 padding, 0 cell, 1 focused track, 2 other track) of every row of ``feats [..., F]``.

    Works for the ``type`` column and for the one-hot columns of :mod:`jetcloud.atlas.pointcloud`.
    """
    features = list(features)
    if "type" in features:
        return np.rint(feats[..., features.index("type")]).astype(np.int8)
    columns = [features.index(f"is_{name}") for name in ("padding", "cell", "focus_track", "other_track")]
    return (np.argmax(feats[..., columns], axis=-1) - 1).astype(np.int8)
