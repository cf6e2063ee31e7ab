"""MLTree file format: schema data, RNTuple/TTree writers, schema-checked readers, invariant validation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from jetcloud.atlas.layers import EXTRAPOLATION_SAMPLINGS
from jetcloud.atlas.mltree import (
    CorruptFileError,
    SchemaError,
    check_schema,
    iterate_events,
    open_event_tree,
    read_cellgeo,
    validate_events,
)
from jetcloud.atlas.mltree_schema import (
    CELLGEO_BRANCHES,
    EVENT_BRANCHES,
    JETPOINTNET_BRANCHES,
    example_cellgeo,
    example_events,
)
from jetcloud.atlas.sim.writers import MLTreeWriter, write_cellgeo, write_mltree

HAVE_ROOT = importlib.util.find_spec("ROOT") is not None


def make_minimal_events(n: int = 3, seed: int = 0) -> dict:
    """All 120 branches, ``n`` events, valid structure (event 0 has no tracks and no clusters)."""
    return example_events(n, seed=seed)


def _depth_and_dtype(arr: ak.Array) -> tuple[int, np.dtype]:
    """Jagged depth per entry and innermost dtype of an array read back from a file."""
    t = arr.type.content
    depth = 0
    while isinstance(t, ak.types.ListType | ak.types.RegularType):
        depth += 1
        t = t.content
    assert isinstance(t, ak.types.NumpyType), t
    return depth, np.dtype(t.primitive)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    events, geo = make_minimal_events(3), example_cellgeo()
    path = write_mltree(tmp_path_factory.mktemp("mltree") / "mltree.root", events, geo)
    return path, events, geo


# ------------------------------------------------------------------------------------------------- schema data


def test_schema_tables() -> None:
    assert len(EVENT_BRANCHES) == 120 and len(CELLGEO_BRANCHES) == 19 and len(JETPOINTNET_BRANCHES) == 49
    names = list(EVENT_BRANCHES)
    assert names[:2] == ["runNumber", "eventNumber"] and names[-1] == "cluster_cell_hitsTruthE"
    first = names.index("trackEta_PreSamplerB")
    expected = [f"track{c}_{s}" for s in EXTRAPOLATION_SAMPLINGS for c in ("Eta", "Phi")]
    assert names[first : first + 42] == expected
    assert EVENT_BRANCHES["eventNumber"].dtype == np.int64
    assert EVENT_BRANCHES["coreFlags"].dtype == np.uint32
    assert EVENT_BRANCHES["cluster_cell_ID"][:] == ("std::vector<std::vector<size_t>>", np.dtype("uint64"), 2)
    assert EVENT_BRANCHES["cluster_cell_hitsTruthIndex"].depth == 3
    assert CELLGEO_BRANCHES["cell_geo_sampling"].dtype == np.uint16
    assert not any("PreSampler" in n for n in JETPOINTNET_BRANCHES)


def test_example_events_are_valid() -> None:
    events, geo = make_minimal_events(4), example_cellgeo()
    assert set(events) == set(EVENT_BRANCHES)
    assert validate_events(events, geo["cell_geo_ID"]) == []


# --------------------------------------------------------------------------------------------- RNTuple writer


def test_rntuple_read_with_original_jetpointnet_calls(written: tuple[Path, dict, dict]) -> None:
    path, events, geo = written
    tree = uproot.open(str(path) + ":EventTree")
    assert tree.keys() == list(EVENT_BRANCHES)  # exact names, file order, no counter branches
    assert "RNTuple" in type(tree).__name__
    chunks = list(tree.iterate(list(JETPOINTNET_BRANCHES), library="ak", step_size=250))
    assert len(chunks) == 1 and len(chunks[0]) == 3
    chunk = chunks[0]
    assert set(chunk.fields) == set(JETPOINTNET_BRANCHES)
    for name in JETPOINTNET_BRANCHES:
        spec = EVENT_BRANCHES[name]
        assert _depth_and_dtype(chunk[name]) == (spec.depth, spec.dtype), name
        assert ak.array_equal(chunk[name], events[name]), name
    geo_tree = uproot.open(str(path) + ":CellGeo")
    assert geo_tree.num_entries == 1 and geo_tree.keys() == list(CELLGEO_BRANCHES)
    ids = geo_tree["cell_geo_ID"].array(library="np")[0]
    assert ids.dtype == np.uint64 and np.array_equal(ids, geo["cell_geo_ID"])
    for name in ("cell_geo_eta", "cell_geo_phi", "cell_geo_rPerp"):
        value = geo_tree[name].array(library="np")[0]
        assert value.dtype == np.float32 and np.array_equal(value, geo[name])


def test_all_branches_round_trip(written: tuple[Path, dict, dict]) -> None:
    path, events, geo = written
    check_schema(path, "all")
    check_schema(path, "all", tree="CellGeo")
    arrays = open_event_tree(path).arrays(library="ak")
    for name, spec in EVENT_BRANCHES.items():
        assert _depth_and_dtype(arrays[name]) == (spec.depth, spec.dtype), name
        assert ak.array_equal(arrays[name], events[name]), name
    # the sentinel survives exactly, and empty events stay empty
    assert ak.min(arrays["trackEta_EMB2"]) == np.float32(-999999999) == np.float32(-1e9)
    assert arrays["nTrack"][0] == 0 and len(arrays["cluster_cell_hitsTruthE"][0]) == 0
    back = read_cellgeo(path)
    assert list(back) == list(CELLGEO_BRANCHES)
    for name, value in geo.items():
        assert back[name].dtype == CELLGEO_BRANCHES[name].dtype and np.array_equal(back[name], value), name
    assert list(read_cellgeo(path, ["cell_geo_ID", "cell_geo_eta"])) == ["cell_geo_ID", "cell_geo_eta"]


def test_writer_casts_default_awkward_dtypes(tmp_path: Path) -> None:
    events = make_minimal_events(3)
    # as a user would build them: python lists -> float64 / int64
    loose = {
        k: (
            ak.Array(ak.to_list(v))
            if isinstance(v, ak.Array)
            else np.asarray(v).astype(np.float64 if v.dtype.kind == "f" else np.int64)
        )
        for k, v in events.items()
    }
    assert ak.type(loose["cluster_cell_ID"]).content.content.content.primitive == "int64"
    path = write_mltree(tmp_path / "cast.root", loose, example_cellgeo(), branches=list(JETPOINTNET_BRANCHES))
    tree = uproot.open(str(path) + ":EventTree")
    assert tree.keys() == [n for n in EVENT_BRANCHES if n in JETPOINTNET_BRANCHES]  # file order
    arrays = tree.arrays()
    for name in JETPOINTNET_BRANCHES:
        spec = EVENT_BRANCHES[name]
        assert _depth_and_dtype(arrays[name]) == (spec.depth, spec.dtype), name
        assert ak.array_equal(arrays[name], events[name]), name


def test_streaming_extend_and_iterate_many_files(tmp_path: Path) -> None:
    geo = example_cellgeo()
    sizes = []
    for f in range(2):
        with MLTreeWriter(tmp_path / f"chunk_{f}.root", cellgeo=geo, cluster_size=2) as w:
            for seed in range(2):
                w.extend(make_minimal_events(3, seed=10 * f + seed))
            sizes.append(w.num_entries)
    assert sizes == [6, 6]
    tree = uproot.open(str(tmp_path / "chunk_0.root") + ":EventTree")
    assert tree.num_entries == 6
    expected = ak.concatenate([make_minimal_events(3, seed=s)["cluster_cell_hitsTruthE"] for s in range(2)])
    assert ak.array_equal(tree["cluster_cell_hitsTruthE"].array(), expected)
    chunks = list(iterate_events(str(tmp_path / "chunk_*.root"), step_size=4))
    assert all(len(c) <= 4 for c in chunks) and sum(len(c) for c in chunks) == 12
    assert set(chunks[0].fields) == set(JETPOINTNET_BRANCHES)
    for c in chunks:
        assert validate_events(c) == []
    # an explicit list works too
    assert sum(len(c) for c in iterate_events([tmp_path / "chunk_1.root"], ["eventNumber"])) == 6


def test_empty_event_tree_and_cellgeo_only(tmp_path: Path) -> None:
    with MLTreeWriter(tmp_path / "empty.root"):
        pass
    tree = open_event_tree(tmp_path / "empty.root")
    assert tree.num_entries == 0 and tree.keys() == list(EVENT_BRANCHES)
    check_schema(tmp_path / "empty.root", "all")
    geo_path = write_cellgeo(tmp_path / "geo.root", example_cellgeo(16))
    assert uproot.open(geo_path).keys(cycle=False) == ["CellGeo"]
    assert len(read_cellgeo(geo_path)["cell_geo_ID"]) == 16


# ------------------------------------------------------------------------------------------ writer validation


def _break(events: dict, name: str, value: object) -> dict:
    out = dict(events)
    out[name] = value
    return out


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (
            lambda e: {k: v for k, v in e.items() if k not in ("trackPt", "cluster_cell_E")},
            ["missing required branches", "trackPt", "cluster_cell_E"],
        ),
        (lambda e: _break(e, "trackPt", e["trackPt"][:, :-1]), ["I1", "trackPt", "nTrack"]),
        (lambda e: _break(e, "truthPartE", e["truthPartE"][:, :1]), ["I2", "truthPartE"]),
        (lambda e: _break(e, "cluster_Eta", e["cluster_Eta"][:, :-1]), ["I3", "cluster_Eta", "nCluster"]),
        (
            lambda e: _break(e, "cluster_cell_ID", ak.flatten(e["cluster_cell_ID"], axis=2)),
            ["cluster_cell_ID", "depth 1", "depth 2"],
        ),
        (lambda e: _break(e, "cluster_cell_E", e["cluster_cell_E"][:, :, :-1]), ["I4", "cluster_cell_E"]),
        (
            lambda e: _break(e, "cluster_cell_hitsTruthIndex", e["cluster_cell_hitsTruthIndex"][:, :, :-1]),
            ["I5", "cluster_cell_hitsTruthIndex", "cluster_nCells"],
        ),
        (
            lambda e: _break(e, "cluster_cell_hitsTruthE", ak.concatenate([e["cluster_cell_hitsTruthE"]] * 2, axis=3)),
            ["I6", "cluster_cell_hitsTruthE"],
        ),
        (lambda e: _break(e, "eventNumber", e["eventNumber"][:2]), ["entry counts", "eventNumber (2)"]),
        (lambda e: _break(e, "nTrack", e["nTrack"] + 0.5), ["nTrack", "non-integral"]),
        (
            lambda e: _break(e, "cluster_cell_ID", ak.values_astype(e["cluster_cell_ID"], np.int64) * -1),
            ["cluster_cell_ID", "do not fit"],
        ),
        (lambda e: _break(e, "trackPtt", e["trackPt"]), ["not in the EventTree schema", "trackPtt"]),
    ],
)
def test_invalid_events_raise_and_leave_no_file(tmp_path: Path, mutate, words: list[str]) -> None:
    target = tmp_path / "bad.root"
    bad = mutate(make_minimal_events(3, seed=1))
    with pytest.raises(ValueError) as info:
        write_mltree(target, bad, example_cellgeo())
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert not target.exists() and _leftovers(tmp_path) == []


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    target = write_mltree(tmp_path / "keep.root", make_minimal_events(3), example_cellgeo())
    before = target.read_bytes()
    events = make_minimal_events(3)
    del events["nCluster"]
    with pytest.raises(ValueError, match="nCluster"):
        write_mltree(target, events, example_cellgeo())
    assert target.read_bytes() == before and _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), MLTreeWriter(tmp_path / "boom.root") as w:  # error inside the block
        w.extend(make_minimal_events(2))
        raise RuntimeError("simulation crashed")
    assert not (tmp_path / "boom.root").exists() and _leftovers(tmp_path) == []


def test_invalid_cellgeo_raises(tmp_path: Path) -> None:
    geo = example_cellgeo(8)
    geo["cell_geo_eta"] = geo["cell_geo_eta"][:5]
    del geo["cell_geo_sigma"]
    with pytest.raises(ValueError) as info:
        write_cellgeo(tmp_path / "g.root", geo)
    assert "cell_geo_sigma" in str(info.value) and "cell_geo_eta (5)" in str(info.value)
    assert not (tmp_path / "g.root").exists()


def test_strict_mode_checks_value_invariants(tmp_path: Path) -> None:
    geo = example_cellgeo()
    events = make_minimal_events(3)
    events["cluster_cell_ID"] = events["cluster_cell_ID"] + np.uint64(1)  # IDs no longer in the geometry
    write_mltree(tmp_path / "loose.root", events, geo)  # structural checks only: accepted
    with pytest.raises(ValueError, match="I9"):
        write_mltree(tmp_path / "strict.root", events, geo, strict=True)


# ------------------------------------------------------------------------------------------- invariant checks


def test_validate_events_reports_violations() -> None:
    events = make_minimal_events(3, seed=3)
    geo = example_cellgeo()
    events["cluster_E"] = events["cluster_E"][:, ::-1] + ak.local_index(events["cluster_E"]) * 0.0  # ascending
    events["trackTruthParticleIndex"] = events["trackTruthParticleIndex"] * 0 + events["nTruthPart"]
    events["cluster_cell_E"] = events["cluster_cell_E"] * 0 + np.float32(0.004)
    hits = events["cluster_cell_hitsTruthIndex"]
    events["cluster_cell_hitsTruthIndex"] = hits + events["nTruthPart"]
    events["cluster_cell_hitsTruthE"] = -events["cluster_cell_hitsTruthE"]  # descending
    problems = validate_events(events, geo["cell_geo_ID"][:3])
    labels = {p.split(":")[0] for p in problems}
    assert {"I6-order", "I7", "I8", "I9", "I12 (warning)"} <= labels, problems
    if ak.any(ak.num(events["cluster_E"]) > 1):
        assert "I11" in labels
    assert not labels & {"I1", "I2", "I3", "I4", "I5", "I6"}
    assert all("event" in p for p in problems)


# ---------------------------------------------------------------------------------------------- reader errors


def _write_mistyped(path: Path) -> None:
    events = make_minimal_events(3)
    data = {k: v for k, v in events.items() if k not in ("nTrack", "trackEta_EMB2")}
    data["trackPt"] = ak.values_astype(events["trackPt"], np.float64)
    data["cluster_cell_ID"] = ak.flatten(events["cluster_cell_ID"], axis=2)
    data["eventNumber"] = events["eventNumber"].astype(np.int32)
    with uproot.recreate(path) as f:
        f["EventTree"] = data


def test_check_schema_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "mistyped.root"
    _write_mistyped(path)
    with pytest.raises(SchemaError) as info:
        check_schema(path)
    message = str(info.value)
    assert str(path) in message
    for name in ("nTrack", "trackEta_EMB2", "trackPt", "cluster_cell_ID", "eventNumber"):
        assert name in message, name
    assert "missing branches (2)" in message and "float64" in message and "depth 1" in message
    assert message.count("branch ") == 3
    with pytest.raises(SchemaError):  # iteration refuses before reading anything
        next(iterate_events(path))
    # branches that are fine pass
    check_schema(path, ["cluster_cell_E", "cluster_cell_hitsTruthE", "trackEta_EMB1"])


def test_reader_errors_name_the_file(tmp_path: Path, written: tuple[Path, dict, dict]) -> None:
    missing = tmp_path / "nope.root"
    with pytest.raises(FileNotFoundError, match="nope.root"):
        check_schema(missing)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        next(iterate_events(str(tmp_path / "nothing_here_*.root")))

    text = tmp_path / "text.root"
    text.write_text("this is not a ROOT file\n" * 20)
    with pytest.raises(CorruptFileError, match="text.root"):
        check_schema(text)

    good = written[0].read_bytes()
    for keep in (50, len(good) // 2, len(good) - 200):
        cut = tmp_path / f"truncated_{keep}.root"
        cut.write_bytes(good[:keep])
        with pytest.raises(CorruptFileError, match=f"truncated_{keep}.root"):
            check_schema(cut, "all")
        with pytest.raises(CorruptFileError, match=f"truncated_{keep}.root"):
            read_cellgeo(cut)

    geo_only = write_cellgeo(tmp_path / "geo_only.root", example_cellgeo(8))
    with pytest.raises(SchemaError, match=r"no tree 'EventTree'.*CellGeo"):
        check_schema(geo_only)
    with pytest.raises(SchemaError, match="geo_only.root"):
        open_event_tree(geo_only)


# ------------------------------------------------------------------------------------------------ TTree format


def test_ttree_without_root_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ROOT", None)  # import ROOT -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'jetcloud\[root\]'"):
        write_mltree(tmp_path / "t.root", make_minimal_events(2), format="ttree")
    assert not (tmp_path / "t.root").exists()


@pytest.mark.skipif(not HAVE_ROOT, reason="PyROOT not installed: pip install 'jetcloud[root]' to test format='ttree'")
@pytest.mark.filterwarnings("ignore:.*alpha stage.*:UserWarning")
def test_ttree_has_exact_mltree_types(tmp_path: Path, written: tuple[Path, dict, dict]) -> None:
    events, geo = make_minimal_events(3), example_cellgeo()
    path = write_mltree(tmp_path / "ttree.root", events, geo, format="ttree")
    f = uproot.open(path)
    assert f.classnames(cycle=False) == {"CellGeo": "TTree", "EventTree": "TTree"}
    tree = f["EventTree"]
    assert tree.keys() == list(EVENT_BRANCHES)  # std::vector branches: no n<name> counters
    types = tree.typenames()
    assert types["cluster_cell_hitsTruthIndex"] == "std::vector<std::vector<std::vector<int32_t>>>"
    assert types["cluster_cell_ID"] == "std::vector<std::vector<uint64_t>>"
    assert types["trackPt"] == "std::vector<float>" and types["eventNumber"] == "int64_t"
    assert types["coreFlags"] == "uint32_t"
    assert f["CellGeo"].typenames()["cell_geo_sampling"] == "std::vector<uint16_t>"
    check_schema(path, "all")
    check_schema(path, "all", tree="CellGeo")
    chunk = next(uproot.open(str(path) + ":EventTree").iterate(list(JETPOINTNET_BRANCHES), library="ak", step_size=250))
    for name, spec in EVENT_BRANCHES.items():
        if name in JETPOINTNET_BRANCHES:
            assert _depth_and_dtype(chunk[name]) == (spec.depth, spec.dtype), name
    arrays = tree.arrays()
    for name in EVENT_BRANCHES:
        assert ak.array_equal(arrays[name], events[name]), name
    back = read_cellgeo(path)
    for name, value in geo.items():
        assert back[name].dtype == value.dtype and np.array_equal(back[name], value), name
    assert [len(c) for c in iterate_events(path, step_size=2)] == [2, 1]
