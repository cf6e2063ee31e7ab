"""Tests of jetcloud.atlas.samples: track-centred JetPointNet samples from MLTree events (hand-built and simulated)."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from jetcloud.atlas.celltable import CellTable
from jetcloud.atlas.containment import ADAPTIVE_RADIUS_RANGE, adaptive_radius, load_containment_table
from jetcloud.atlas.layers import LAYER_NAMES, LAYER_POSITION_MM, MISSING_EXTRAPOLATION
from jetcloud.atlas.mltree_schema import JETPOINTNET_BRANCHES
from jetcloud.atlas.samples import SAMPLE_TYPE, SPLIT_NAMES, build_chunk, build_samples, split_of_event
from jetcloud.io.atomic import OUTPUT_MARKER

# --------------------------------------------------------------------------------------------------------------
# hand-built events
# --------------------------------------------------------------------------------------------------------------

#: (ID, sampling, eta, phi, rPerp mm) of a tiny geometry; IDs deliberately not in eta order.
CELLS = [
    (1005, 2, 0.55, 0.32, 1700.0),  # near track A (eta 0.5, phi 0.3)
    (1001, 2, 0.45, 0.25, 1700.0),  # near track A
    (1003, 2, 0.50, 0.60, 1700.0),  # dphi 0.3 from A: outside 0.2
    (1010, 6, -2.05, 1.02, 530.0),  # near track B (eta -2.0, phi 1.0), end-cap, negative z
    (1011, 6, 2.00, 1.00, 540.0),  # mirror of B at positive eta: must not be picked by B
    (1020, 2, 0.00, -3.10, 1700.0),  # phi wrap: near track C at phi 3.10
    (1021, 2, 0.00, 2.80, 1700.0),  # dphi 0.3 from C: outside
    (1030, 12, 0.52, 0.28, 2300.0),  # near A, Tile
    (1040, 2, -1.0, -1.0, 1700.0),  # far from everything
]
GEO = {
    "cell_geo_ID": np.array([c[0] for c in CELLS], np.uint64),
    "cell_geo_sampling": np.array([c[1] for c in CELLS], np.uint16),
    "cell_geo_eta": np.array([c[2] for c in CELLS], np.float32),
    "cell_geo_phi": np.array([c[3] for c in CELLS], np.float32),
    "cell_geo_rPerp": np.array([c[4] for c in CELLS], np.float32),
}
SENT = float(MISSING_EXTRAPOLATION)


def track(pt: float, truth: int, layers: dict[str, tuple[float, float]], chi2: float = 10.0, ndof: int = 5) -> dict:
    """A track record: per-layer (eta, phi); missing layers get the MLTree sentinel."""
    return {"pt": pt, "truth": truth, "chi2": chi2, "ndof": ndof, "sub": 1234.0, "layers": layers}


def make_events(events: list[dict]) -> ak.Array:
    """The 49 JetPointNet branches for hand-described events.

    Each event: ``{"eventNumber", "tracks": [track(...)], "clusters": [[(ID, E, [idx], [e]), ...], ...],
    "trailing": n}`` (``n`` trailing empty truth lists per cluster).
    """
    cols: dict[str, list] = {name: [] for name in JETPOINTNET_BRANCHES}
    for ev in events:
        tracks = ev.get("tracks", [])
        clusters = ev.get("clusters", [])
        trailing = ev.get("trailing", 0)
        cols["eventNumber"].append(ev["eventNumber"])
        cols["nTrack"].append(len(tracks))
        cols["trackPt"].append([t["pt"] for t in tracks])
        cols["trackTruthParticleIndex"].append([t["truth"] for t in tracks])
        cols["trackSubtractedCaloEnergy"].append([t["sub"] for t in tracks])
        cols["trackChiSquared"].append([t["chi2"] for t in tracks])
        cols["trackNumberDOF"].append([t["ndof"] for t in tracks])
        for layer in LAYER_NAMES:
            cols[f"trackEta_{layer}"].append([t["layers"].get(layer, (SENT, SENT))[0] for t in tracks])
            cols[f"trackPhi_{layer}"].append([t["layers"].get(layer, (SENT, SENT))[1] for t in tracks])
        cols["cluster_cell_ID"].append([[c[0] for c in cl] for cl in clusters])
        cols["cluster_cell_E"].append([[c[1] for c in cl] for cl in clusters])
        cols["cluster_cell_hitsTruthIndex"].append([[c[2] for c in cl] + [[]] * trailing for cl in clusters])
        cols["cluster_cell_hitsTruthE"].append([[c[3] for c in cl] + [[]] * trailing for cl in clusters])
    types = {
        "eventNumber": np.int64,
        "nTrack": np.int32,
        "cluster_cell_ID": np.uint64,
        "cluster_cell_hitsTruthIndex": np.int32,
        "trackTruthParticleIndex": np.int32,
        "trackNumberDOF": np.int32,
    }
    out = {}
    for name, values in cols.items():
        dtype = types.get(name, np.float32)
        if name in ("eventNumber", "nTrack"):
            out[name] = np.asarray(values, dtype)
        else:
            out[name] = ak.values_astype(ak.Array(values), dtype)
    return ak.Array(out)


def barrel_layers(eta: float, phi: float) -> dict[str, tuple[float, float]]:
    return {"EMB1": (eta, phi), "EMB2": (eta, phi), "EMB3": (eta, phi), "TileBar0": (eta, phi)}


TRACK_A = track(5.0, 0, barrel_layers(0.5, 0.3))
TRACK_B = track(3.0, 1, {"EME1": (-2.0, 1.0), "EME2": (-2.0, 1.0), "HEC0": (-2.0, 1.0)})
TRACK_C = track(2.0, -1, barrel_layers(0.0, 3.10))
TRACK_NOREF = track(1.0, 2, {"EMB1": (0.5, 0.3), "TileBar0": (0.5, 0.3)}, ndof=0)

EVENT0 = {
    "eventNumber": 1000,
    "tracks": [TRACK_A, TRACK_B, TRACK_C, TRACK_NOREF],
    "clusters": [
        [
            (1005, 1.0, [2, 0], [0.1, 0.3]),  # p=0 present: T=0.4, frac 0.75, focus 0.3
            (1001, 0.5, [1], [0.2]),  # p=0 absent
            (1003, 0.7, [0], [0.5]),
            (1010, 2.0, [1], [1.5]),
            (1011, 2.0, [1], [1.5]),
            (1020, 0.3, [], []),
        ],
        [
            (1005, 0.25, [3], [0.05]),  # shared with cluster 0: sum 1.25, keep-first 1.0 (truth of the first)
            (1030, 0.4, [0, 5], [0.1, 0.2]),
            (1021, 0.2, [], []),
        ],
    ],
    "trailing": 2,
}
EVENT1 = {"eventNumber": 1001, "tracks": [], "clusters": []}  # empty event


@pytest.fixture
def events() -> ak.Array:
    return make_events([EVENT0, EVENT1])


def by_track(samples: ak.Array) -> dict[int, dict]:
    return {s["trackID"]: s for s in samples.to_list()}


def test_schema_and_report(events: ak.Array) -> None:
    samples, report = build_chunk(events, GEO)
    assert str(samples.type.content) == SAMPLE_TYPE
    assert str(ak.type(samples)) == f"{len(samples)} * {SAMPLE_TYPE}"
    assert report["events"] == 2 and report["tracks"] == 4 and report["samples"] == 3
    assert report["skipped_no_reference"] == 1
    assert report["events_without_tracks"] == 1 and report["events_without_clusters"] == 1
    assert report["shared_cell_occurrences"] == 1
    s = by_track(samples)
    assert sorted(s) == [0, 1, 2]  # the track without EMB2/EME2 (index 3) gives no sample
    assert all(x["eventNumber"] == 1000 for x in s.values())
    assert s[0]["trackChi2PerNDOF"] == pytest.approx(2.0)


def test_positive_eta_barrel_track(events: ak.Array) -> None:
    s = by_track(build_chunk(events, GEO)[0])[0]
    ids = [c["ID"] for c in s["cells"]]
    assert ids == [1001, 1005, 1030]  # ascending ID; 1003 is at dphi 0.3
    assert s["n_cells"] == 3 and s["trackEta"] == pytest.approx(0.5) and s["trackPhi"] == pytest.approx(0.3)
    pts = s["track_points"]
    assert [p["layer"] for p in pts] == [LAYER_NAMES.index(n) for n in ("EMB1", "EMB2", "EMB3", "TileBar0")]
    r = LAYER_POSITION_MM[LAYER_NAMES.index("EMB2")]
    p = pts[1]
    assert (p["X"], p["Y"], p["Z"]) == pytest.approx((r * np.cos(0.3), r * np.sin(0.3), r * np.sinh(0.5)), rel=1e-5)
    # cell position and distance to the nearest track point, by hand
    c = s["cells"][1]
    cx, cy, cz = 1700 * np.cos(0.32), 1700 * np.sin(0.32), 1700 * np.sinh(0.55)
    assert (c["X"], c["Y"], c["Z"]) == pytest.approx((cx, cy, cz), rel=1e-5)
    d = min(np.hypot(np.hypot(cx - q["X"], cy - q["Y"]), cz - q["Z"]) for q in pts)
    assert c["distance_to_track"] == pytest.approx(d, rel=1e-4)
    assert c["sampling"] == 2 and c["eta"] == pytest.approx(0.55)


def test_negative_eta_endcap_track(events: ak.Array) -> None:
    s = by_track(build_chunk(events, GEO)[0])[1]
    assert [c["ID"] for c in s["cells"]] == [1010]  # not the mirrored cell 1011 at eta +2
    assert s["trackEta"] == pytest.approx(-2.0)
    z0 = LAYER_POSITION_MM[LAYER_NAMES.index("EME2")]
    p = next(q for q in s["track_points"] if q["layer"] == LAYER_NAMES.index("EME2"))
    r = z0 / abs(np.sinh(-2.0))
    assert (p["X"], p["Y"], p["Z"]) == pytest.approx((r * np.cos(1.0), r * np.sin(1.0), -z0), rel=1e-5)
    assert all(q["Z"] < 0 for q in s["track_points"])
    assert s["cells"][0]["Z"] < 0
    # the original's bug mirrors the end-cap points through the origin
    sb = by_track(build_chunk(events, GEO, reproduce_original_bug=True)[0])[1]
    pb = next(q for q in sb["track_points"] if q["layer"] == LAYER_NAMES.index("EME2"))
    assert (pb["X"], pb["Y"], pb["Z"]) == pytest.approx((-p["X"], -p["Y"], z0), rel=1e-5)
    assert sb["cells"][0]["distance_to_track"] > s["cells"][0]["distance_to_track"] + 1000


def test_phi_wraparound(events: ak.Array) -> None:
    s = by_track(build_chunk(events, GEO)[0])[2]
    assert [c["ID"] for c in s["cells"]] == [1020]  # phi -3.10 is 0.083 from 3.10; 1021 (phi 2.8) is out


def test_shared_cells_sum_vs_first(events: ak.Array) -> None:
    cell = {c["ID"]: c for c in by_track(build_chunk(events, GEO)[0])[0]["cells"]}[1005]
    assert cell["E"] == pytest.approx(1.25)
    first = {c["ID"]: c for c in by_track(build_chunk(events, GEO, shared_cells="first")[0])[0]["cells"]}[1005]
    assert first["E"] == pytest.approx(1.0)
    assert cell["truth_energy"] == pytest.approx(0.4) == first["truth_energy"]  # truth of the first occurrence
    with pytest.raises(ValueError, match="shared_cells"):
        build_chunk(events, GEO, shared_cells="max")


def test_labels(events: ak.Array) -> None:
    s = by_track(build_chunk(events, GEO)[0])
    cells = {c["ID"]: c for c in s[0]["cells"]}  # p = 0
    c = cells[1005]
    assert (c["truth_energy"], c["frac_label"], c["focus_energy"], c["total_label"]) == pytest.approx(
        (0.4, 0.75, 0.3, 0.4)
    )
    c = cells[1001]  # p absent
    assert (c["truth_energy"], c["frac_label"], c["focus_energy"], c["total_label"]) == pytest.approx((0.2, 0, 0, 0))
    c = cells[1030]  # p first in the list
    assert (c["frac_label"], c["focus_energy"], c["total_label"]) == pytest.approx((1 / 3, 0.1, 0.3))
    assert s[0]["focus_truth_energy"] == pytest.approx(0.4)
    assert s[0]["total_associated_cell_energy"] == pytest.approx(0.5 + 1.25 + 0.4)
    # p = -1 never matches; a cell without truth has T = 0 and labels 0
    c = s[2]["cells"][0]
    assert s[2]["track_part_Idx"] == -1
    assert (c["truth_energy"], c["frac_label"], c["focus_energy"], c["total_label"]) == (0, 0, 0, 0)
    # p = 1 owns all of cell 1010
    c = s[1]["cells"][0]
    assert (c["frac_label"], c["focus_energy"], c["total_label"]) == pytest.approx((1.0, 1.5, 1.5))
    # truth in MeV
    c_mev = by_track(build_chunk(events, GEO, truth_unit="MeV")[0])[1]["cells"][0]
    assert c_mev["focus_energy"] == pytest.approx(1.5e-3) and c_mev["frac_label"] == pytest.approx(1.0)


def test_no_reference_and_ndof_zero() -> None:
    ev = make_events(
        [
            {
                "eventNumber": 5,
                "tracks": [TRACK_NOREF, track(1.0, 0, barrel_layers(0.5, 0.3), ndof=0)],
                "clusters": [[(1005, 1.0, [0], [1.0])]],
            }
        ]
    )
    samples, report = build_chunk(ev, GEO)
    assert report["skipped_no_reference"] == 1 and report["ndof_zero"] == 1
    assert len(samples) == 1 and samples.trackID[0] == 1 and np.isnan(samples.trackChi2PerNDOF[0])


def test_other_tracks() -> None:
    a2 = track(2.5, 7, barrel_layers(0.6, 0.35))  # Delta R 0.11 from TRACK_A
    far = track(2.5, 8, barrel_layers(-0.6, 0.35))
    ev = make_events(
        [{"eventNumber": 9, "tracks": [TRACK_A, far, a2, TRACK_NOREF], "clusters": [[(1005, 1.0, [0], [1.0])]]}]
    )
    s = by_track(build_chunk(ev, GEO)[0])
    assert s[0]["other_tracks"] == [{"trackID": 2, "track_part_Idx": 7, "trackPt": 2.5}]
    assert [o["trackID"] for o in s[2]["other_tracks"]] == [0]
    assert s[1]["other_tracks"] == [] and s[1]["other_track_points"] == []
    pts = s[0]["other_track_points"]
    assert len(pts) == 4 and all(p["track"] == 0 for p in pts)
    mine = s[0]["track_points"]
    for p in pts:
        d = min(np.sqrt((p["X"] - q["X"]) ** 2 + (p["Y"] - q["Y"]) ** 2 + (p["Z"] - q["Z"]) ** 2) for q in mine)
        assert p["distance_to_track"] == pytest.approx(d, rel=1e-4, abs=1e-2)


def test_unsorted_geometry_same_result(events: ak.Array) -> None:
    perm = np.random.default_rng(3).permutation(len(CELLS))
    shuffled = {k: v[perm] for k, v in GEO.items()}
    a, _ = build_chunk(events, GEO)
    b, _ = build_chunk(events, shuffled)
    assert a.to_list() == b.to_list()


def test_unknown_cell_id_names_file_and_entry(events: ak.Array) -> None:
    geo = {k: v[GEO["cell_geo_ID"] != 1030] for k, v in GEO.items()}
    with pytest.raises(KeyError, match=r"f\.root entry 100.*1030"):
        build_chunk(events, geo, source="f.root", entry_start=100)


def test_nan_energy_dropped_and_counted() -> None:
    ev = make_events(
        [
            {
                "eventNumber": 5,
                "tracks": [TRACK_A],
                "clusters": [[(1005, np.nan, [0], [1.0]), (1001, 0.5, [], [])], [(1005, 0.2, [], [])]],
            }
        ]
    )
    samples, report = build_chunk(ev, GEO)
    assert report["nan_cell_energy"] == 1
    cells = {c["ID"]: c for c in samples.cells[0].to_list()}
    assert cells[1005]["E"] == pytest.approx(0.2) and cells[1005]["truth_energy"] == 0.0


def test_adaptive_radius() -> None:
    table = load_containment_table()
    r = adaptive_radius(np.array([0.5, 2.0, 10.0, 500.0]), np.array([0.1, -1.0, 2.2, 3.5]), table)
    assert np.all((r >= ADAPTIVE_RADIUS_RANGE[0]) & (r <= ADAPTIVE_RADIUS_RANGE[1]))
    assert np.isfinite(r).all()
    ev = make_events([EVENT0])
    samples, _ = build_chunk(ev, GEO, delta_r="adaptive")
    expected = adaptive_radius(samples.trackPt.to_numpy(), samples.trackEta.to_numpy(), table)
    np.testing.assert_allclose(samples.delta_r.to_numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------------------------


def test_split_deterministic_and_fractions() -> None:
    ev = np.arange(10**5, dtype=np.int64) * 7 + 123
    s = split_of_event(ev)
    assert s.dtype == np.int8 and set(np.unique(s)) <= {0, 1, 2}
    frac = np.bincount(s, minlength=3) / len(s)
    np.testing.assert_allclose(frac, [0.8, 0.1, 0.1], atol=0.005)
    np.testing.assert_array_equal(s, split_of_event(ev))
    # chunking-independent: the split of an event does not depend on its neighbours
    np.testing.assert_array_equal(np.concatenate([split_of_event(ev[:333]), split_of_event(ev[333:])]), s)
    assert not np.array_equal(split_of_event(ev, salt=1), s)
    frac = np.bincount(split_of_event(ev, (0.5, 0.25, 0.25)), minlength=3) / len(ev)
    np.testing.assert_allclose(frac, [0.5, 0.25, 0.25], atol=0.01)
    for bad in [(0.8, 0.1), (0.9, 0.2, -0.1), (0.5, 0.2, 0.2)]:
        with pytest.raises(ValueError, match="fractions"):
            split_of_event(ev, bad)


# --------------------------------------------------------------------------------------------------------------
# end to end on simulated files
# --------------------------------------------------------------------------------------------------------------


def read_split(out: Path, name: str) -> ak.Array | None:
    files = sorted((out / name).glob("*.parquet"))
    return ak.concatenate([ak.from_parquet(f) for f in files]) if files else None


def test_build_samples_end_to_end(simulated: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    out.mkdir()
    (out / "train").mkdir()
    (out / "train" / "part-9999-0000.parquet").write_text("stale")
    (out / OUTPUT_MARKER).write_text('{"stage": "atlas.samples"}')  # a previous output of this stage
    files = sorted((simulated / "events").glob("*.root"))
    summary = build_samples(files, simulated / "geometry.root", out, step_size=4, workers=1, progress=False)
    assert not (out / "train" / "part-9999-0000.parquet").exists()  # stale parts removed
    assert summary["chunks"] == 4 and summary["events"] == 12
    rep = summary["report"]
    assert sum(summary["samples"].values()) == rep["samples"] == rep["tracks"] - rep["skipped_no_reference"] > 0
    seen: dict[int, str] = {}
    for name in SPLIT_NAMES:
        arr = read_split(out, name)
        n = 0 if arr is None else len(arr)
        assert n == summary["samples"][name]
        if arr is None:
            continue
        assert str(arr.type.content) == SAMPLE_TYPE
        for e in np.unique(arr.eventNumber.to_numpy()):
            assert seen.setdefault(int(e), name) == name
        assert np.all(split_of_event(arr.eventNumber.to_numpy()) == SPLIT_NAMES.index(name))
        ids = arr.cells.ID
        assert ak.all(ids[:, 1:] > ids[:, :-1])
        assert ak.all(arr.n_cells == ak.num(arr.cells))
    assert (out / "manifest.json").is_file()
    # the same with two local processes: identical files
    out2 = tmp_path / "samples2"
    build_samples(files, simulated / "geometry.root", out2, step_size=4, workers=2, progress=False, manifest=False)
    for name in SPLIT_NAMES:
        a, b = read_split(out, name), read_split(out2, name)
        assert (a is None and b is None) or a.to_list() == b.to_list()


def test_build_samples_dask_matches_local(simulated: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    files = sorted((simulated / "events").glob("*.root"))
    geo = simulated / "geometry.root"
    build_samples(files, geo, tmp_path / "local", step_size=6, workers=1, progress=False, manifest=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            build_samples(files, geo, tmp_path / "dask", step_size=6, scheduler=client, progress=False, manifest=False)
    for name in SPLIT_NAMES:
        la = sorted(p.name for p in (tmp_path / "local" / name).glob("*.parquet"))
        assert la == sorted(p.name for p in (tmp_path / "dask" / name).glob("*.parquet"))
        for f in la:
            a = ak.from_parquet(tmp_path / "local" / name / f)
            b = ak.from_parquet(tmp_path / "dask" / name / f)
            assert a.to_list() == b.to_list()


def test_bad_inputs_leave_no_output(simulated: Path, tmp_path: Path) -> None:
    import uproot

    from jetcloud.atlas.mltree import CorruptFileError, SchemaError

    geo = simulated / "geometry.root"
    good = sorted((simulated / "events").glob("*.root"))[0]
    out = tmp_path / "out"

    def no_parquet() -> bool:
        return not list(tmp_path.rglob("*.parquet"))

    with pytest.raises(FileNotFoundError, match="missing.root"):
        build_samples([good, tmp_path / "missing.root"], geo, out, workers=1, progress=False)
    assert no_parquet()
    truncated = tmp_path / "truncated.root"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="truncated.root"):
        build_samples([good, truncated], geo, out, workers=1, progress=False)
    assert no_parquet()
    partial = tmp_path / "partial.root"
    with uproot.recreate(partial) as f:
        f["EventTree"] = {"eventNumber": np.arange(3, dtype=np.int64), "nTrack": np.zeros(3, np.int32)}
    with pytest.raises(SchemaError, match=r"(?s)partial\.root.*cluster_cell_ID"):
        build_samples([good, partial], geo, out, workers=1, progress=False)
    assert no_parquet()
    # a cell ID missing from the geometry: error naming the file and the entry, and nothing written
    table = CellTable.from_geometry(geo)
    first_id = int(uproot.open(good)["EventTree"]["cluster_cell_ID"].array(entry_stop=1)[0][0][0])
    keep = table.ids != first_id
    cut = {
        "cell_geo_ID": table.ids[keep],
        "cell_geo_sampling": table.sampling[keep],
        "cell_geo_eta": table.eta[keep],
        "cell_geo_phi": table.phi[keep],
        "cell_geo_rPerp": np.hypot(table.x, table.y)[keep],
    }
    with pytest.raises(KeyError, match=rf"{good.name} entry 0.*{first_id}"):
        build_samples([good], cut, out, workers=1, progress=False)
    assert no_parquet() and not out.exists()


def test_containment_measurement_runs(simulated: Path) -> None:
    from jetcloud.atlas.containment import measure_containment_radius

    files = sorted((simulated / "events").glob("*.root"))
    geo = simulated / "geometry.root"
    tab = measure_containment_radius(files, geo, pt_bins=(0.5, 2.0, 1000.0), eta_bins=(0, 1.5, 3), min_tracks=1)
    assert len(tab["radius"]) == 4 and tab["n_tracks"].sum() > 0
    ok = tab["n_tracks"] > 0
    assert np.all((tab["radius"][ok] > 0) & (tab["radius"][ok] < 5))


def test_copy_of_file_gives_same_samples(simulated: Path, tmp_path: Path) -> None:
    """Samples do not depend on the file name (only eventNumber drives the split)."""
    good = sorted((simulated / "events").glob("*.root"))[0]
    copy = tmp_path / "copy.root"
    shutil.copy(good, copy)
    a = build_samples([good], simulated / "geometry.root", tmp_path / "a", workers=1, progress=False)
    b = build_samples([copy], simulated / "geometry.root", tmp_path / "b", workers=1, progress=False)
    assert a["samples"] == b["samples"]


def test_fastcalosim_geometry_file() -> None:
    """A FastCaloSim geometry dump (real ATLAS cell IDs) works as the geometry of the samples."""
    from jetcloud import paths

    real = paths.atlas_geometry_file()
    if real is None:
        pytest.skip("../shared/data/atlas-geometry is not available")
    table = CellTable.from_geometry(real)
    assert len(table) == 187_652 and np.all(np.diff(table.ids.astype(np.int64)) > 0)
