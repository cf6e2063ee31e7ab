"""Schema-checked readers of MLTree ROOT files (``EventTree`` + ``CellGeo``), TTree or RNTuple alike.

Every reader checks the file against :mod:`jetcloud.atlas.mltree_schema` *before* any work starts and fails with
one clear exception naming the file:

- ``FileNotFoundError``: the path does not exist;
- :class:`CorruptFileError` (an ``OSError``): not a ROOT file, or truncated / unreadable;
- :class:`SchemaError` (a ``ValueError``): a missing tree (the message lists the trees that exist), or missing
  branches and branches whose dtype or jagged depth differs from the schema, all listed in one message.

uproot reads a TTree and an RNTuple through the same calls (``keys()``, ``iterate``, ``array``), which is what
the original JetPointNet code relies on; types are compared through the awkward form uproot would return, so a
real ``std::vector<std::vector<std::vector<int>>>`` TTree branch and an RNTuple ``var * var * var * int32``
field are the same thing here.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from jetcloud.atlas.mltree_schema import (
    CELL_E_THRESHOLD_GEV,
    CELLGEO_BRANCHES,
    CELLGEO_TREE,
    CLUSTER_VECTOR_BRANCHES,
    EVENT_TREE,
    JETPOINTNET_BRANCHES,
    MAX_TRUTH_PER_CELL,
    TRACK_VECTOR_BRANCHES,
    TRUTH_VECTOR_BRANCHES,
    BranchSpec,
    resolve_branches,
    schema_for_tree,
)

__all__ = [
    "SchemaError",
    "CorruptFileError",
    "ALL_INVARIANTS",
    "STRUCTURAL_INVARIANTS",
    "expand_files",
    "open_tree",
    "open_event_tree",
    "branch_types",
    "check_schema",
    "iterate_events",
    "read_cellgeo",
    "validate_events",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


class SchemaError(ValueError):
    """A file does not match the MLTree schema (missing tree, missing or mistyped branches)."""


class CorruptFileError(OSError):
    """A file exists but is not a readable ROOT file (wrong format, truncated, damaged)."""


# --------------------------------------------------------------------------------------------------------------
# opening and type inspection
# --------------------------------------------------------------------------------------------------------------


def expand_files(files: PathLike | Iterable[PathLike]) -> list[Path]:
    """Expand a path, a glob pattern or a list of them into a sorted-per-pattern list of paths.

    A pattern that matches nothing, or a plain path that does not exist, raises ``FileNotFoundError``.
    """
    items = [files] if isinstance(files, str | os.PathLike) else list(files)
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"no file matches the pattern {text}")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(text))
    if not out:
        raise FileNotFoundError("no input files given")
    for p in out:
        if not p.is_file():
            raise FileNotFoundError(f"MLTree file not found: {p}")
    return out


def _open_file(path: PathLike) -> Any:
    """``uproot.open`` with ``FileNotFoundError`` / :class:`CorruptFileError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MLTree file not found: {path}")
    try:
        f = uproot.open(path)
        f.keys()  # forces the directory (at the end of the file) to be read: catches truncation
    except Exception as err:  # uproot raises ValueError, OSError, struct errors, DeserializationError...
        raise CorruptFileError(f"{path} is not a readable ROOT file ({type(err).__name__}: {err})") from err
    # The header records the file length at closing (fEND); a shorter file was truncated (copy cut short,
    # job killed while writing). Objects early in the file might still read fine, so check explicitly.
    end, size = int(f.file.fEND), path.stat().st_size
    if size < end:
        f.close()
        raise CorruptFileError(f"{path} is truncated: {size} bytes on disk, its ROOT header says {end}")
    return f


def _trees_in(f: Any) -> dict[str, str]:
    try:
        return {k.split(";")[0]: v for k, v in f.classnames().items()}
    except Exception:  # damaged directory: keys only
        return {k.split(";")[0]: "?" for k in f.keys()}


def _get_tree(f: Any, path: PathLike, tree: str) -> Any:
    trees = _trees_in(f)
    if tree not in trees:
        have = ", ".join(f"{k} ({v})" for k, v in trees.items()) or "nothing"
        raise SchemaError(f"{path} has no tree {tree!r}; it contains: {have}")
    try:
        obj = f[tree]
        obj.keys()
    except Exception as err:
        raise CorruptFileError(f"{path}: cannot read tree {tree!r} ({type(err).__name__}: {err})") from err
    return obj


def open_tree(path: PathLike, tree: str = EVENT_TREE) -> Any:
    """Open ``tree`` (TTree or RNTuple) of ``path`` with uproot; clear errors naming the file (see module doc).

    The returned object keeps the file open; JetPointNet's ``uproot.open(path + ":EventTree")`` equivalent.
    """
    f = _open_file(path)
    try:
        return _get_tree(f, path, tree)
    except Exception:
        f.close()
        raise


def open_event_tree(path: PathLike) -> Any:
    """Open the ``EventTree`` of an MLTree file (TTree or RNTuple); see :func:`open_tree`."""
    return open_tree(path, EVENT_TREE)


def _form_type(form: ak.forms.Form) -> tuple[np.dtype | None, int, str]:
    """(innermost dtype or None, jagged depth, description) of an awkward form of one entry-level branch."""
    depth = 0
    while True:
        if isinstance(form, ak.forms.ListOffsetForm | ak.forms.ListForm | ak.forms.RegularForm):
            if form.parameter("__array__") in ("string", "bytestring"):
                return None, depth, "string"
            depth += 1
            form = form.content
        elif isinstance(form, ak.forms.NumpyForm):
            return np.dtype(form.primitive), depth + len(form.inner_shape), form.primitive
        elif isinstance(form, ak.forms.IndexedForm):
            form = form.content
        else:
            return None, depth, type(form).__name__


def branch_types(obj: Any, names: Iterable[str] | None = None) -> dict[str, tuple[np.dtype | None, int, str]]:
    """Map branch name -> (dtype, jagged depth, C++ typename) for a TTree or RNTuple, reading no data.

    A branch uproot cannot interpret gets dtype ``None``.
    """
    names = list(obj.keys()) if names is None else list(names)
    try:
        typenames = obj.typenames()
    except Exception:
        typenames = {}
    out: dict[str, tuple[np.dtype | None, int, str]] = {}
    if isinstance(obj, uproot.behaviors.RNTuple.RNTuple):
        for name in names:
            try:
                form = obj[name].to_akform()[0].content(name)
                dtype, depth, _ = _form_type(form)
            except Exception as err:
                log.debug("cannot get the form of %s: %s", name, err)
                dtype, depth = None, -1
            out[name] = (dtype, depth, typenames.get(name, "?"))
    else:
        for name in names:
            try:
                form = obj[name].interpretation.awkward_form(obj.file)
                dtype, depth, _ = _form_type(form)
            except Exception as err:
                log.debug("cannot interpret %s: %s", name, err)
                dtype, depth = None, -1
            out[name] = (dtype, depth, typenames.get(name, "?"))
    return out


def _schema_problems(obj: Any, wanted: Sequence[str], schema: Mapping[str, BranchSpec]) -> list[str]:
    present = set(obj.keys())
    missing = [n for n in wanted if n not in present]
    problems = []
    if missing:
        problems.append(f"missing branches ({len(missing)}): {', '.join(missing)}")
    types = branch_types(obj, [n for n in wanted if n in present])
    for name, (dtype, depth, typename) in types.items():
        spec = schema[name]
        if dtype != spec.dtype or depth != spec.depth:
            found = f"{dtype} depth {depth}" if dtype is not None else f"uninterpretable ({typename})"
            problems.append(
                f"branch {name}: expected {spec.dtype} depth {spec.depth} ({spec.cpp_type}), found {found} [{typename}]"
            )
    return problems


def _check_open_tree(
    obj: Any, path: PathLike, tree: str, branches: str | Sequence[str] | None, schema: Mapping[str, BranchSpec] | None
) -> list[str]:
    schema = schema_for_tree(tree) if schema is None else schema
    wanted = resolve_branches(branches, schema)
    try:
        problems = _schema_problems(obj, wanted, schema)
    except Exception as err:  # damaged header/footer of the tree
        raise CorruptFileError(f"{path}: cannot read the metadata of {tree!r} ({err})") from err
    if problems:
        raise SchemaError(f"{path}: tree {tree!r} does not match the MLTree schema:\n  " + "\n  ".join(problems))
    return wanted


def check_schema(
    path: PathLike,
    branches: str | Sequence[str] | None = JETPOINTNET_BRANCHES,
    tree: str = EVENT_TREE,
    *,
    schema: Mapping[str, BranchSpec] | None = None,
) -> None:
    """Check that ``tree`` of ``path`` has every branch of ``branches`` with the schema's dtype and depth.

    ``branches`` is a list of names or ``"all"``; ``schema`` defaults to the schema of ``tree``
    (``EventTree`` or ``CellGeo``). Raises one :class:`SchemaError` naming the file, every missing branch and
    every mistyped branch; ``FileNotFoundError`` / :class:`CorruptFileError` for unreadable files. Reads no data.
    """
    schema = schema_for_tree(tree) if schema is None else schema
    wanted = resolve_branches(branches, schema)  # unknown names: ValueError before opening anything
    with _open_file(path) as f:
        obj = _get_tree(f, path, tree)
        _check_open_tree(obj, path, tree, wanted, schema)


# --------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------


def iterate_events(
    files: PathLike | Iterable[PathLike],
    branches: str | Sequence[str] | None = JETPOINTNET_BRANCHES,
    step_size: int | str = 250,
    *,
    tree: str = EVENT_TREE,
) -> Iterator[ak.Array]:
    """Yield chunks of at most ``step_size`` events (awkward record arrays with the requested branches).

    ``files`` is a path, a glob pattern or a list of them. Every file is schema-checked (metadata only) before
    the first chunk is read, so a bad file fails the job at once. Files are read one after the other with
    ``TTree/RNTuple.iterate``; a chunk never spans two files and only one chunk is held at a time.
    """
    paths = expand_files(files)
    schema = schema_for_tree(tree)
    wanted = resolve_branches(branches, schema)
    for p in paths:
        check_schema(p, wanted, tree)
    log.info("reading %d file(s), %d branches, step_size=%s", len(paths), len(wanted), step_size)
    for p in paths:
        with _open_file(p) as f:
            obj = _get_tree(f, p, tree)
            it = obj.iterate(wanted, step_size=step_size, library="ak")
            while True:
                try:
                    chunk = next(it)
                except StopIteration:
                    break
                except Exception as err:
                    raise CorruptFileError(f"{p}: error while reading {tree!r}: {err}") from err
                yield chunk


def read_cellgeo(
    path: PathLike, branches: str | Sequence[str] | None = None, *, tree: str = CELLGEO_TREE
) -> dict[str, np.ndarray]:
    """Read entry 0 of ``CellGeo`` into ``{name: 1-D numpy array}`` (all 19 branches by default).

    Works on a TTree and an RNTuple alike (``tree[name].array(...)[0]``); schema-checked first. Arrays have
    the schema dtype (``cell_geo_ID`` uint64, ``cell_geo_sampling`` uint16, float32 / int32 otherwise).
    """
    with _open_file(path) as f:
        obj = _get_tree(f, path, tree)
        wanted = _check_open_tree(obj, path, tree, branches, CELLGEO_BRANCHES)
        n = obj.num_entries
        if n < 1:
            raise SchemaError(f"{path}: tree {tree!r} has no entries (expected one)")
        if n > 1:
            log.warning("%s: %s has %d entries; using entry 0", path, tree, n)
        try:
            arrays = obj.arrays(wanted, entry_stop=1, library="ak")
        except Exception as err:
            raise CorruptFileError(f"{path}: error while reading {tree!r}: {err}") from err
    return {name: ak.to_numpy(arrays[name][0]).astype(CELLGEO_BRANCHES[name].dtype, copy=False) for name in wanted}


# --------------------------------------------------------------------------------------------------------------
# invariants (docs/mltree-format.md)
# --------------------------------------------------------------------------------------------------------------

#: Invariants about lengths and list structure; the writer enforces these on every batch.
STRUCTURAL_INVARIANTS: tuple[str, ...] = ("I1", "I2", "I3", "I4", "I5", "I6")
#: Every invariant :func:`validate_events` knows. I10 (shared cells allowed) needs no check.
ALL_INVARIANTS: tuple[str, ...] = (*STRUCTURAL_INVARIANTS, "I6-order", "I7", "I8", "I9", "I11", "I12")


def _event_mask(bad: ak.Array | np.ndarray) -> np.ndarray:
    """Reduce a boolean array of any depth to one flag per event."""
    if isinstance(bad, np.ndarray):
        return bad.astype(bool, copy=False)
    while bad.ndim > 1:
        bad = ak.any(bad, axis=-1)
    return np.asarray(ak.fill_none(bad, False), dtype=bool)


def _num1(arr: ak.Array) -> np.ndarray:
    """Lengths of the per-event lists (fast path for a plain ``ListOffsetArray``)."""
    layout = arr.layout
    if isinstance(layout, ak.contents.ListOffsetArray):
        return np.diff(np.asarray(layout.offsets.data))
    return np.asarray(ak.num(arr, axis=1))


def _report(out: list[str], label: str, what: str, bad: ak.Array | np.ndarray) -> None:
    per_event = _event_mask(bad)
    if per_event.any():
        n_items = int(np.sum(bad)) if isinstance(bad, np.ndarray) else int(ak.sum(bad, axis=None))
        events = np.flatnonzero(per_event)
        out.append(f"{label}: {what}: {n_items} case(s) in {len(events)} event(s) (first event index {events[0]})")


#: The events as :func:`validate_events` sees them: branch name -> awkward array.
_Events = Mapping[str, ak.Array]


def _has(ev: _Events, *names: str) -> bool:
    """True if every branch of ``names`` is present."""
    return all(n in ev for n in names)


def _counts_check(ev: _Events, out: list[str], label: str, counter: str, names: Sequence[str]) -> None:
    """Every present branch of ``names`` has ``ev[counter]`` entries per event."""
    if counter not in ev:
        return
    n = np.asarray(ev[counter])
    for name in names:
        if name in ev:
            _report(out, label, f"len({name}) != {counter}", _num1(ev[name]) != n)


def _check_i1(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I1: every track vector has ``nTrack`` entries."""
    _counts_check(ev, out, "I1", "nTrack", TRACK_VECTOR_BRANCHES)


def _check_i2(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I2: every truth-particle vector has ``nTruthPart`` entries."""
    _counts_check(ev, out, "I2", "nTruthPart", TRUTH_VECTOR_BRANCHES)


def _check_i3_counts(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I3: every cluster vector has ``nCluster`` entries."""
    _counts_check(ev, out, "I3", "nCluster", CLUSTER_VECTOR_BRANCHES)


def _check_i3_pairs(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I3: the per-cluster truth index and energy lists have equal lengths."""
    for a, b in (
        ("cluster_fullHitsTruthIndex", "cluster_fullHitsTruthE"),
        ("cluster_visibleHitsTruthIndex", "cluster_visibleHitsTruthE"),
    ):
        if _has(ev, a, b):
            _report(out, "I3", f"len({a}[c]) != len({b}[c])", ak.num(ev[a], axis=2) != ak.num(ev[b], axis=2))


def _check_i4(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I4: one energy per cell ID, and at most ``cluster_nCells`` cell IDs per cluster."""
    if _has(ev, "cluster_cell_ID", "cluster_cell_E"):
        n_id = ak.num(ev["cluster_cell_ID"], axis=2)
        _report(
            out,
            "I4",
            "len(cluster_cell_E[c]) != len(cluster_cell_ID[c])",
            ak.num(ev["cluster_cell_E"], axis=2) != n_id,
        )
    if _has(ev, "cluster_cell_ID", "cluster_nCells"):
        _report(
            out,
            "I4",
            "len(cluster_cell_ID[c]) > cluster_nCells[c]",
            ak.num(ev["cluster_cell_ID"], axis=2) > ev["cluster_nCells"],
        )


def _check_i5(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I5: ``cluster_nCells`` truth lists per cluster, empty beyond the kept cells."""
    for name in ("cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE"):
        if name not in ev:
            continue
        n_slots = ak.num(ev[name], axis=2)
        if "cluster_nCells" in ev:
            _report(out, "I5", f"len({name}[c]) != cluster_nCells[c]", n_slots != ev["cluster_nCells"])
        if "cluster_cell_ID" in ev:
            n_id = ak.num(ev["cluster_cell_ID"], axis=2)
            _report(out, "I5", f"len({name}[c]) < len(cluster_cell_ID[c])", n_slots < n_id)
            slot = ak.local_index(ev[name], axis=2)
            trailing = (slot >= n_id) & (ak.num(ev[name], axis=3) > 0)
            _report(out, "I5", f"{name}[c][k] not empty for k >= len(cluster_cell_ID[c])", trailing)


def _check_i6(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I6 (lengths): at most ``MAX_TRUTH_PER_CELL`` truth entries per cell, as many indices as energies."""
    idx, e = "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE"
    for name in (idx, e):
        if name in ev:
            _report(
                out,
                "I6",
                f"more than {MAX_TRUTH_PER_CELL} entries in {name}[c][k]",
                ak.num(ev[name], axis=3) > MAX_TRUTH_PER_CELL,
            )
    if _has(ev, idx, e):
        _report(out, "I6", f"len({idx}[c][k]) != len({e}[c][k])", ak.num(ev[idx], axis=3) != ak.num(ev[e], axis=3))


def _check_i6_order(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I6 (order): the truth energies of a cell are ascending."""
    if "cluster_cell_hitsTruthE" in ev:
        e = ev["cluster_cell_hitsTruthE"]
        _report(
            out,
            "I6-order",
            "cluster_cell_hitsTruthE[c][k] not sorted ascending",
            ~ak.all(e[..., 1:] >= e[..., :-1], axis=-1),
        )


def _check_i7(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I7: truth indices of cells and clusters lie in ``[0, nTruthPart)``."""
    for name in ("cluster_cell_hitsTruthIndex", "cluster_fullHitsTruthIndex", "cluster_visibleHitsTruthIndex"):
        if _has(ev, name, "nTruthPart"):
            i = ev[name]
            _report(out, "I7", f"{name} outside [0, nTruthPart)", (i < 0) | (i >= ev["nTruthPart"]))


def _check_i8(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I8: a track's truth index is -1 or in ``[0, nTruthPart)``."""
    if _has(ev, "trackTruthParticleIndex", "nTruthPart"):
        i = ev["trackTruthParticleIndex"]
        _report(out, "I8", "trackTruthParticleIndex not in {-1} or [0, nTruthPart)", (i < -1) | (i >= ev["nTruthPart"]))


def _check_i9(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I9: every cluster cell ID is in the geometry (only when ``cell_geo_ID`` is given)."""
    if cell_geo_ID is not None and "cluster_cell_ID" in ev:
        ids = ev["cluster_cell_ID"]
        flat = np.asarray(ak.flatten(ids, axis=None))
        ok = np.isin(flat, np.asarray(cell_geo_ID))
        bad = ak.unflatten(ak.unflatten(~ok, ak.flatten(ak.num(ids, axis=2)), axis=0), ak.num(ids, axis=1))
        _report(out, "I9", "cluster_cell_ID not in cell_geo_ID", bad)


def _check_i11(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I11: clusters are in descending energy order."""
    if "cluster_E" in ev:
        e = ev["cluster_E"]
        _report(out, "I11", "cluster_E increases along the cluster axis", e[:, 1:] > e[:, :-1])


def _check_i12(ev: _Events, cell_geo_ID: np.ndarray | None, out: list[str]) -> None:
    """I12 (a warning): cell energies are at least ``CELL_E_THRESHOLD_GEV``."""
    if "cluster_cell_E" in ev:
        _report(
            out,
            "I12 (warning)",
            f"cluster_cell_E < {CELL_E_THRESHOLD_GEV} GeV",
            ev["cluster_cell_E"] < CELL_E_THRESHOLD_GEV,
        )


#: ``(label, check)`` in the order :func:`validate_events` runs them; the label's first word selects the check.
_CHECKS: tuple[tuple[str, Callable[[_Events, np.ndarray | None, list[str]], None]], ...] = (
    ("I1", _check_i1),
    ("I2", _check_i2),
    ("I3", _check_i3_counts),
    ("I3", _check_i3_pairs),
    ("I4", _check_i4),
    ("I5", _check_i5),
    ("I6", _check_i6),
    ("I6-order", _check_i6_order),
    ("I7", _check_i7),
    ("I8", _check_i8),
    ("I9", _check_i9),
    ("I11", _check_i11),
    ("I12", _check_i12),
)


def validate_events(
    events: ak.Array | Mapping[str, Any],
    cell_geo_ID: np.ndarray | None = None,
    *,
    invariants: Iterable[str] | None = None,
) -> list[str]:
    """Check the MLTree invariants I1-I12 (``docs/mltree-format.md``); return human-readable violations.

    ``events`` is a record array (a chunk from :func:`iterate_events`) or a dict of branch arrays; checks whose
    branches are absent are skipped. ``cell_geo_ID`` enables I9. ``invariants`` selects a subset of
    :data:`ALL_INVARIANTS` ("I6" is the length part of I6, "I6-order" the ascending-energy part).
    I12 (cell energy >= 5 MeV) is reported with the prefix ``"I12 (warning)"``: real files violate it (6.3),
    so callers should not treat it as fatal. An empty list means the events are valid.
    """
    wanted = set(ALL_INVARIANTS if invariants is None else invariants)
    if isinstance(events, Mapping):
        ev = {k: (v if isinstance(v, ak.Array) else ak.Array(v)) for k, v in events.items()}
    else:
        ev = {k: events[k] for k in events.fields}
    out: list[str] = []
    for label, check in _CHECKS:
        if label.split(" ")[0] not in wanted:
            continue
        try:
            check(ev, cell_geo_ID, out)
        except Exception as err:  # inconsistent shapes make broadcasting fail: report, don't crash
            out.append(f"{label}: cannot be checked, the arrays are inconsistent ({type(err).__name__}: {err})")
    return out
