"""Writers of MLTree files: ``EventTree`` and ``CellGeo`` as RNTuple (uproot) or as a real TTree (PyROOT).

Input: a dict ``{branch name: array}`` per batch of events, the names and types of
:data:`jetcloud.atlas.mltree_schema.EVENT_BRANCHES`:

- depth 0 (``int``, ``float``, ``Long64_t``, ``uint32_t``): a 1-D numpy array, one value per event;
- depth 1/2/3 (``vector<T>``, ``vector<vector<T>>``, ``vector<vector<vector<T>>>``): an awkward array
  ``n_events * var * ... * T`` (lists, numpy object arrays of arrays and regular numpy arrays are accepted).

Every value is cast to the exact schema dtype (awkward defaults to float64/int64; an int cast that would change
a value, or a float-to-int cast of a non-integral value, is an error). Before writing, a batch is validated:
every required branch present, jagged depth right, one entry count for all branches, and the structural
invariants I1-I6 (vector lengths nTrack / nTruthPart / nCluster, cells per cluster, hitsTruth slots ==
cluster_nCells with trailing empty lists, <= 3 truth contributions per cell). Problems raise one ``ValueError``
naming each branch. ``strict=True`` also checks the value invariants I6-order, I7-I9, I11 (I12 is never fatal).

``CellGeo`` takes ``{name: 1-D numpy array over all cells}`` for the 19 ``CELLGEO_BRANCHES``; it is written as a
one-entry tree whose branches are vectors over all cells.

Formats:

- ``"rntuple"`` (default, needs only uproot): ``uproot.recreate`` + ``mkrntuple`` with the exact field types,
  then ``extend`` per batch. (``file[name] = {...}`` would also write an RNTuple, but it sorts the fields
  alphabetically and infers types from the data, so an all-empty batch gets no type; ``mkrntuple`` keeps file
  order and exact types.) Each ``extend`` is one RNTuple cluster, so a chunked simulation can stream batches
  into one file with bounded memory; batches are split into clusters of ``cluster_size`` events.
- ``"ttree"``: a real ROOT TTree with the MLTree C++ types (``std::vector<std::vector<std::vector<int>>>``,
  ``vector<vector<unsigned long>>``...) and leaflist scalars, through PyROOT (``pip install 'jetcloud[root]'``).

All writes are atomic: the file is written under a temporary name beside the target and renamed on success;
an exception (including a validation error) removes it, so no partial file is ever left under the target name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import awkward as ak
import numpy as np
import uproot

from jetcloud.atlas.mltree import STRUCTURAL_INVARIANTS, validate_events
from jetcloud.atlas.mltree_schema import (
    CELLGEO_BRANCHES,
    CELLGEO_TREE,
    EVENT_BRANCHES,
    EVENT_TREE,
    BranchSpec,
    resolve_branches,
)
from jetcloud.io.atomic import atomic_path

__all__ = ["MLTreeWriter", "write_mltree", "write_cellgeo", "coerce_branch", "DEFAULT_COMPRESSION"]

log = logging.getLogger(__name__)

#: File compression of the RNTuple writer, chosen by measurement (50 JZ1 events): zlib level 1 costs 22% less
#: writing CPU than level 4 for files 7% larger (no compression: 3x less CPU, files 4.3x larger).
DEFAULT_COMPRESSION = uproot.ZLIB(1)
#: Events per RNTuple cluster / TTree basket flush. Readers fetch whole clusters, so keep it moderate.
DEFAULT_CLUSTER_SIZE = 1000

_ROOT_INSTALL_HINT = (
    "format='ttree' needs PyROOT: pip install 'jetcloud[root]' (the PyPI 'root' package), "
    "or use the default format='rntuple', which needs only uproot"
)


# --------------------------------------------------------------------------------------------------------------
# coercion to exact layouts
# --------------------------------------------------------------------------------------------------------------


def _cast_values(name: str, data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast innermost values to ``dtype``, refusing casts that change values."""
    data = np.asarray(data)
    if data.dtype == dtype:
        return np.ascontiguousarray(data)
    if data.dtype.kind not in "biuf":
        raise ValueError(f"branch {name}: values of dtype {data.dtype} cannot be stored as {dtype}")
    if dtype.kind in "iu" and data.size:
        if data.dtype.kind == "f" and not np.all(np.isfinite(data) & (data == np.round(data))):
            raise ValueError(f"branch {name}: non-integral float values cannot be stored as {dtype}")
        info = np.iinfo(dtype)
        lo, hi = data.min(), data.max()
        if lo < info.min or hi > info.max:
            raise ValueError(f"branch {name}: values in [{lo}, {hi}] do not fit into {dtype}")
    return np.ascontiguousarray(data.astype(dtype))


def _convert(name: str, layout: ak.contents.Content, dtype: np.dtype, depth: int) -> ak.contents.Content:
    """Rebuild ``layout`` as nested ``ListOffsetArray(i64)`` over a contiguous ``NumpyArray(dtype)``."""
    while True:
        if layout.is_option:
            if ak.any(ak.is_none(ak.Array(layout), axis=0)):
                raise ValueError(f"branch {name}: contains missing values (None)")
            layout = layout.to_IndexedOptionArray64().project()
        elif layout.is_indexed:
            layout = layout.project()
        else:
            break
    if layout.parameter("__array__") in ("string", "bytestring"):
        raise ValueError(f"branch {name}: contains strings, schema type is numeric")
    if layout.is_record:
        raise ValueError(f"branch {name}: is a record (ak.zip?); write every branch as its own field")
    if isinstance(layout, ak.contents.NumpyArray) and layout.data.ndim > 1:
        layout = layout.to_RegularArray()
    if not layout.parameters:  # fast paths: already in the target layout (what the pipeline builds)
        if depth == 0 and isinstance(layout, ak.contents.NumpyArray) and layout.data.dtype == dtype:
            if layout.data.ndim == 1 and layout.data.flags.c_contiguous:
                return layout
        elif (
            depth > 0
            and isinstance(layout, ak.contents.ListOffsetArray)
            and layout.offsets.data.dtype == np.int64
            and len(layout.offsets)
        ):
            offsets = np.asarray(layout.offsets.data)
            if offsets[0] == 0:
                content = layout.content
                if len(content) != offsets[-1]:
                    content = content[: int(offsets[-1])]
                converted = _convert(name, content, dtype, depth - 1)
                if converted is layout.content:
                    return layout
                return ak.contents.ListOffsetArray(layout.offsets, converted)
    if depth == 0:
        if isinstance(layout, ak.contents.EmptyArray):
            return ak.contents.NumpyArray(np.empty(0, dtype=dtype))
        if not isinstance(layout, ak.contents.NumpyArray):
            raise ValueError(f"branch {name}: nested deeper than the schema allows")
        return ak.contents.NumpyArray(_cast_values(name, layout.data, dtype))
    if isinstance(layout, ak.contents.EmptyArray):
        layout = layout.to_NumpyArray(dtype)
        # an empty array of lists: zero entries
        return ak.contents.ListOffsetArray(
            ak.index.Index64(np.zeros(1, np.int64)), _convert(name, layout, dtype, depth - 1)
        )
    if not layout.is_list:
        raise ValueError(f"branch {name}: not nested deep enough for the schema")
    lo = layout.to_ListOffsetArray64(True)
    offsets = np.asarray(lo.offsets.data, dtype=np.int64)
    content = lo.content[: int(offsets[-1])] if len(offsets) else lo.content[:0]
    return ak.contents.ListOffsetArray(ak.index.Index64(offsets), _convert(name, content, dtype, depth - 1))


def coerce_branch(name: str, value: Any, spec: BranchSpec) -> ak.Array:
    """Return ``value`` as an awkward array with the exact type of ``spec`` (``ListOffsetArray`` i64 offsets).

    Raises ``ValueError`` naming the branch for a wrong jagged depth, missing values, strings, records or a
    value-changing cast.
    """
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = ak.from_iter(list(value))
    arr = value if isinstance(value, ak.Array) else ak.Array(ak.to_layout(value, allow_record=False))
    if arr.fields:
        raise ValueError(f"branch {name}: is a record with fields {arr.fields}; write each field separately")
    found = arr.ndim - 1
    if found != spec.depth:
        raise ValueError(
            f"branch {name}: jagged depth {found} (type {arr.type.content}), schema has depth {spec.depth} "
            f"({spec.cpp_type})"
        )
    return ak.Array(_convert(name, arr.layout, spec.dtype, spec.depth))


def _awkward_type(spec: BranchSpec) -> ak.types.Type:
    """The ``mkrntuple`` type of a branch, built directly (parsing type strings is slow in awkward 2.14).

    Scalars too are given as an awkward ``NumpyType``: uproot turns a numpy dtype into a datashape string and
    parses it (~10 ms per scalar branch, 0.2 s per file for the 17 scalar ``EventTree`` branches).
    """
    t: ak.types.Type = ak.types.NumpyType(spec.dtype.name)
    for _ in range(spec.depth):
        t = ak.types.ListType(t)
    return t


def _prepare(
    data: Mapping[str, Any] | ak.Array,
    names: Sequence[str],
    schema: Mapping[str, BranchSpec],
    what: str,
) -> dict[str, ak.Array]:
    """Check presence, coerce types and check one entry count; collect every problem into one ValueError."""
    if isinstance(data, ak.Array):
        data = {f: data[f] for f in data.fields}
    problems: list[str] = []
    unknown = [k for k in data if k not in schema]
    if unknown:
        problems.append(f"not in the {what} schema: {', '.join(unknown)}")
    missing = [n for n in names if n not in data]
    if missing:
        problems.append(f"missing required branches ({len(missing)}): {', '.join(missing)}")
    out: dict[str, ak.Array] = {}
    # every provided schema branch is coerced (the invariants may need branches that are not written)
    for name in [n for n in schema if n in data]:
        try:
            out[name] = coerce_branch(name, data[name], schema[name])
        except ValueError as err:
            problems.append(str(err))
    lengths = {n: len(a) for n, a in out.items()}
    if len(set(lengths.values())) > 1:
        common = max(set(lengths.values()), key=list(lengths.values()).count)
        odd = [f"{n} ({k})" for n, k in lengths.items() if k != common]
        problems.append(f"branches have different entry counts: most have {common}, but {', '.join(odd)}")
    if problems:
        raise ValueError(f"invalid {what} data:\n  " + "\n  ".join(problems))
    return out


# --------------------------------------------------------------------------------------------------------------
# PyROOT TTree backend
# --------------------------------------------------------------------------------------------------------------

_CPP_HELPERS = r"""
#include <vector>
#include <cstdint>
namespace jetcloud_mltree {
template <typename T>
void fill1(std::vector<T>& v, const T* data, const int64_t* o0, int64_t i) {
  v.assign(data + o0[i], data + o0[i + 1]);
}
template <typename T>
void fill2(std::vector<std::vector<T>>& v, const T* data, const int64_t* o0, const int64_t* o1, int64_t i) {
  const int64_t a = o0[i], b = o0[i + 1];
  v.resize(b - a);
  for (int64_t c = a; c < b; ++c) v[c - a].assign(data + o1[c], data + o1[c + 1]);
}
template <typename T>
void fill3(std::vector<std::vector<std::vector<T>>>& v, const T* data, const int64_t* o0, const int64_t* o1,
           const int64_t* o2, int64_t i) {
  const int64_t a = o0[i], b = o0[i + 1];
  v.resize(b - a);
  for (int64_t c = a; c < b; ++c) {
    auto& vc = v[c - a];
    const int64_t p = o1[c], q = o1[c + 1];
    vc.resize(q - p);
    for (int64_t k = p; k < q; ++k) vc[k - p].assign(data + o2[k], data + o2[k + 1]);
  }
}
}
"""

_LEAF_CODE = {"int32": "I", "int64": "L", "uint32": "i", "float32": "F", "uint16": "s", "uint64": "l"}
_CPP_SCALAR = {
    "int32": "int",
    "float32": "float",
    "uint64": "unsigned long",
    "uint16": "unsigned short",
    "int64": "Long64_t",
    "uint32": "unsigned int",
}


def _import_root() -> Any:
    try:
        import ROOT
    except ImportError as err:
        raise ImportError(_ROOT_INSTALL_HINT) from err
    ROOT.gROOT.SetBatch(True)
    if not hasattr(ROOT, "jetcloud_mltree"):
        ROOT.gInterpreter.Declare(_CPP_HELPERS)
    return ROOT


class _TTreeBackend:
    """Books one TTree per name with MLTree C++ types and fills it event by event (a C++ helper per branch)."""

    def __init__(self, path: Path, compression: int | None) -> None:
        self.ROOT = _import_root()
        self.file = self.ROOT.TFile.Open(os.fspath(path), "RECREATE")
        if not self.file or self.file.IsZombie():
            raise OSError(f"ROOT cannot create {path}")
        if compression is not None:
            self.file.SetCompressionSettings(compression)
        self.trees: dict[str, Any] = {}
        self._buffers: dict[str, dict[str, Any]] = {}

    def create(self, tree: str, specs: Mapping[str, BranchSpec]) -> None:
        self.file.cd()
        t = self.ROOT.TTree(tree, tree)
        t.SetDirectory(self.file)
        bufs: dict[str, Any] = {}
        for name, spec in specs.items():
            if spec.depth == 0:
                buf = np.zeros(1, dtype=spec.dtype)
                t.Branch(name, buf, f"{name}/{_LEAF_CODE[spec.dtype.name]}")
            else:
                inner = spec.cpp_type[len("std::vector<") : -1]
                buf = self.ROOT.std.vector[inner]()
                t.Branch(name, buf)
            bufs[name] = buf
        self.trees[tree] = t
        self._buffers[tree] = bufs

    def extend(self, tree: str, specs: Mapping[str, BranchSpec], arrays: Mapping[str, ak.Array]) -> None:
        t, bufs = self.trees[tree], self._buffers[tree]
        helpers = self.ROOT.jetcloud_mltree
        plan = []
        for name, spec in specs.items():
            layout = arrays[name].layout
            offsets = []
            while spec.depth and isinstance(layout, ak.contents.ListOffsetArray):
                offsets.append(np.asarray(layout.offsets.data, dtype=np.int64))
                layout = layout.content
            data = np.ascontiguousarray(np.asarray(layout.data))
            if spec.depth == 0:
                plan.append((bufs[name], data, None, ()))
            else:
                fill = getattr(helpers, f"fill{spec.depth}")[_CPP_SCALAR[spec.dtype.name]]
                plan.append((bufs[name], data, fill, tuple(offsets)))
        n = len(next(iter(arrays.values()))) if arrays else 0
        for i in range(n):
            for buf, data, fill, offsets in plan:
                if fill is None:
                    buf[0] = data[i]
                else:
                    fill(buf, data, *offsets, i)
            t.Fill()

    def close(self) -> None:
        self.file.cd()
        for t in self.trees.values():
            t.Write("", self.ROOT.TObject.kOverwrite)
        self.file.Close()

    def abort(self) -> None:
        try:
            self.file.Close()
        except Exception:  # already closed or broken: nothing left to do
            pass


# --------------------------------------------------------------------------------------------------------------
# uproot RNTuple backend
# --------------------------------------------------------------------------------------------------------------


class _RNTupleBackend:
    def __init__(self, path: Path, compression: Any) -> None:
        self.file = uproot.recreate(path, compression=compression)
        self.trees: dict[str, Any] = {}

    def create(self, tree: str, specs: Mapping[str, BranchSpec]) -> None:
        self.trees[tree] = self.file.mkrntuple(tree, {n: _awkward_type(s) for n, s in specs.items()})

    def extend(self, tree: str, specs: Mapping[str, BranchSpec], arrays: Mapping[str, ak.Array]) -> None:
        n = len(next(iter(arrays.values())))
        record = ak.contents.RecordArray([arrays[k].layout for k in specs], list(specs), length=n)
        self.trees[tree].extend(ak.Array(record))

    def close(self) -> None:
        self.file.close()

    def abort(self) -> None:
        self.file.close()


# --------------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------------


class MLTreeWriter:
    """Streaming, atomic writer of one MLTree file.

    >>> with MLTreeWriter("chunk_000.root", cellgeo=geo) as w:      # doctest: +SKIP
    ...     for batch in simulate_batches():
    ...         w.extend(batch)          # dict {branch: array}, validated, cast, appended

    The file appears under its name only when the ``with`` block ends without an exception.

    Parameters
    ----------
    path: target file.
    format: ``"rntuple"`` (uproot) or ``"ttree"`` (PyROOT; ``ImportError`` with install hint if missing).
    branches: ``"all"`` (the 120 branches of the real file) or a list of ``EVENT_BRANCHES`` names to write.
    cellgeo: optional ``{name: 1-D array}`` with the 19 ``CELLGEO_BRANCHES``; written as tree ``CellGeo``.
    event_tree: write an ``EventTree`` (an empty one if :meth:`extend` is never called).
    compression: RNTuple: an ``uproot.compression.Compression`` (default :data:`DEFAULT_COMPRESSION`) or None;
        TTree: a ROOT compression setting such as 505 (None: ROOT's default).
    cluster_size: events per RNTuple cluster (each batch is split into clusters of at most this size).
    strict: also check the value invariants I6-order, I7, I8, I9 (with ``cellgeo``), I11 and raise on them.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        format: str = "rntuple",
        branches: str | Sequence[str] = "all",
        cellgeo: Mapping[str, Any] | None = None,
        event_tree: bool = True,
        compression: Any = "default",
        cluster_size: int = DEFAULT_CLUSTER_SIZE,
        strict: bool = False,
    ) -> None:
        if format not in ("rntuple", "ttree"):
            raise ValueError(f"format must be 'rntuple' or 'ttree', not {format!r}")
        if cluster_size < 1:
            raise ValueError("cluster_size must be >= 1")
        self.path = Path(path)
        self.format = format
        self.branches = resolve_branches(branches, EVENT_BRANCHES)
        self.specs = {n: EVENT_BRANCHES[n] for n in self.branches}
        self.event_tree = event_tree
        self.cluster_size = cluster_size
        self.strict = strict
        if compression == "default":
            compression = DEFAULT_COMPRESSION if format == "rntuple" else None
        self.compression = compression
        self._cellgeo = cellgeo
        self._cell_geo_ID: np.ndarray | None = None
        self._stack: ExitStack | None = None
        self._backend: _RNTupleBackend | _TTreeBackend | None = None
        self._tmp: Path | None = None
        self.num_entries = 0
        if format == "ttree":
            _import_root()  # fail early with the install hint

    # context management --------------------------------------------------------------------------------------
    def __enter__(self) -> MLTreeWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc_type, exc, tb)

    def open(self) -> None:
        """Open the temporary file and write ``CellGeo`` if given (called by ``__enter__``)."""
        if self._stack is not None:
            raise RuntimeError(f"{self.path} is already open")
        stack = ExitStack()
        self._tmp = stack.enter_context(atomic_path(self.path))
        self._stack = stack
        try:
            if self.format == "rntuple":
                self._backend = _RNTupleBackend(self._tmp, self.compression)
            else:
                self._backend = _TTreeBackend(self._tmp, self.compression)
            if self._cellgeo is not None:
                self.write_cellgeo(self._cellgeo)
        except BaseException as err:
            self.abort(type(err), err, err.__traceback__)
            raise

    def close(self) -> Path:
        """Finish the file and rename it to its target name; returns the path."""
        if self._stack is None or self._backend is None:
            raise RuntimeError(f"{self.path} is not open")
        try:
            if self.event_tree and EVENT_TREE not in self._backend.trees:
                self._backend.create(EVENT_TREE, self.specs)
            self._backend.close()
        except BaseException as err:
            self.abort(type(err), err, err.__traceback__)
            raise
        stack, self._stack, self._backend = self._stack, None, None
        stack.close()  # renames the temporary file
        log.info("wrote %s (%s, %d events, %d branches)", self.path, self.format, self.num_entries, len(self.specs))
        return self.path

    def abort(self, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None:
        """Close and delete the temporary file; nothing appears under the target name."""
        backend, stack = self._backend, self._stack
        self._backend = self._stack = None
        if backend is not None:
            try:
                backend.abort()
            except Exception as err:  # the original exception matters more
                log.debug("error while aborting %s: %s", self.path, err)
        if stack is not None:
            stack.__exit__(exc_type or RuntimeError, exc or RuntimeError("aborted"), tb)

    # writing -------------------------------------------------------------------------------------------------
    def write_cellgeo(self, cellgeo: Mapping[str, Any]) -> None:
        """Validate and write the one-entry ``CellGeo`` tree (all 19 branches required)."""
        if self._backend is None:
            raise RuntimeError(f"{self.path} is not open")
        if CELLGEO_TREE in self._backend.trees:
            raise RuntimeError(f"{self.path}: CellGeo was already written")
        geo = _prepare_cellgeo(cellgeo)
        self._backend.create(CELLGEO_TREE, CELLGEO_BRANCHES)
        self._backend.extend(CELLGEO_TREE, CELLGEO_BRANCHES, geo)
        self._cell_geo_ID = np.asarray(geo["cell_geo_ID"][0])

    def extend(self, events: Mapping[str, Any] | ak.Array) -> int:
        """Validate, cast and append a batch of events; returns the number of events written so far."""
        if self._backend is None:
            raise RuntimeError(f"{self.path} is not open")
        if not self.event_tree:
            raise RuntimeError(f"{self.path}: opened with event_tree=False")
        arrays = _prepare(events, self.branches, EVENT_BRANCHES, EVENT_TREE)
        problems = validate_events(arrays, self._cell_geo_ID, invariants=None if self.strict else STRUCTURAL_INVARIANTS)
        problems = [p for p in problems if not p.startswith("I12")]
        if problems:
            raise ValueError(f"invalid {EVENT_TREE} data for {self.path}:\n  " + "\n  ".join(problems))
        if EVENT_TREE not in self._backend.trees:
            self._backend.create(EVENT_TREE, self.specs)
        n = len(next(iter(arrays.values()))) if arrays else 0
        for start in range(0, n, self.cluster_size):
            stop = min(start + self.cluster_size, n)
            part = {k: arrays[k] if (start, stop) == (0, n) else _slice(arrays[k], start, stop) for k in self.specs}
            self._backend.extend(EVENT_TREE, self.specs, part)
        self.num_entries += n
        return self.num_entries


def _slice(arr: ak.Array, start: int, stop: int) -> ak.Array:
    """Slice events and repack, so that the layout is again plain ListOffsetArray/NumpyArray."""
    return ak.to_packed(arr[start:stop])


def _prepare_cellgeo(cellgeo: Mapping[str, Any]) -> dict[str, ak.Array]:
    """Validate the 19 CellGeo arrays (1-D, one length, neighbour indices in [-1, n)); one entry each."""
    problems: list[str] = []
    unknown = [k for k in cellgeo if k not in CELLGEO_BRANCHES]
    if unknown:
        problems.append(f"not in the CellGeo schema: {', '.join(unknown)}")
    missing = [n for n in CELLGEO_BRANCHES if n not in cellgeo]
    if missing:
        problems.append(f"missing required branches ({len(missing)}): {', '.join(missing)}")
    values: dict[str, np.ndarray] = {}
    for name, spec in CELLGEO_BRANCHES.items():
        if name not in cellgeo:
            continue
        arr = np.asarray(cellgeo[name])
        if arr.ndim != 1:
            problems.append(f"branch {name}: must be a 1-D array over cells, got shape {arr.shape}")
            continue
        try:
            values[name] = _cast_values(name, arr, spec.dtype)
        except ValueError as err:
            problems.append(str(err))
    sizes = {len(v) for v in values.values()}
    if len(sizes) > 1:
        problems.append("branches have different lengths: " + ", ".join(f"{k} ({len(v)})" for k, v in values.items()))
    elif sizes:
        n = sizes.pop()
        for name, v in values.items():
            if name.startswith(("cell_geo_prev", "cell_geo_next")) and v.size and (v.min() < -1 or v.max() >= n):
                problems.append(f"branch {name}: neighbour index outside [-1, {n})")
        if "cell_geo_ID" in values and len(np.unique(values["cell_geo_ID"])) != n:
            problems.append("branch cell_geo_ID: duplicate cell IDs")
    if problems:
        raise ValueError("invalid CellGeo data:\n  " + "\n  ".join(problems))
    return {
        name: ak.Array(
            ak.contents.ListOffsetArray(ak.index.Index64(np.array([0, len(v)], np.int64)), ak.contents.NumpyArray(v))
        )
        for name, v in values.items()
    }


def write_mltree(
    path: str | os.PathLike,
    events: Mapping[str, Any] | ak.Array,
    cellgeo: Mapping[str, Any] | None = None,
    *,
    format: str = "rntuple",
    branches: str | Sequence[str] = "all",
    compression: Any = "default",
    cluster_size: int = DEFAULT_CLUSTER_SIZE,
    strict: bool = False,
) -> Path:
    """Write ``EventTree`` (and ``CellGeo`` if given) into one ROOT file, atomically; returns the path.

    ``events`` maps every branch of ``branches`` (default: all 120 of :data:`EVENT_BRANCHES`) to an array with
    one entry per event; see the module docstring for accepted types and the validation. Extra schema branches
    in ``events`` are used for the invariant checks but not written. For streaming, use :class:`MLTreeWriter`.
    """
    with MLTreeWriter(
        path,
        format=format,
        branches=branches,
        cellgeo=cellgeo,
        compression=compression,
        cluster_size=cluster_size,
        strict=strict,
    ) as w:
        w.extend(events)
    return Path(path)


def write_cellgeo(
    path: str | os.PathLike,
    cellgeo: Mapping[str, Any],
    *,
    format: str = "rntuple",
    compression: Any = "default",
) -> Path:
    """Write a geometry file holding only the one-entry ``CellGeo`` tree (like ``rho_small.root``)."""
    with MLTreeWriter(path, format=format, cellgeo=cellgeo, event_tree=False, compression=compression):
        pass
    return Path(path)
