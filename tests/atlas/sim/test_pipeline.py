"""End-to-end tests of the simulation: MLTree files from Pythia events, determinism, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from jetcloud.atlas import mltree
from jetcloud.atlas.mltree_schema import EVENT_BRANCHES, JETPOINTNET_BRANCHES
from jetcloud.atlas.sim.pipeline import SimConfig, simulate
from jetcloud.sim.pythia import EventGenerator, GunConfig, canonical_process, chunk_seed

SMALL = SimConfig(process="JZ1", n_events=6, chunk_size=3, seed=11)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[dict, ak.Array]:
    out = tmp_path_factory.mktemp("sim")
    summary = simulate(SMALL, out, workers=1, progress=False)
    events = uproot.concatenate([f"{p}:EventTree" for p in summary["event_files"]], library="ak")
    return summary, events


def _read(files: list[str]) -> ak.Array:
    return uproot.concatenate([f"{p}:EventTree" for p in files], library="ak")


def test_files_have_the_mltree_schema(sample) -> None:
    summary, events = sample
    assert len(summary["event_files"]) == 2 and summary["n_events"] == 6
    for path in summary["event_files"]:
        mltree.check_schema(path, branches=list(EVENT_BRANCHES))
        with uproot.open(path) as f:
            assert f["EventTree"].keys() == list(EVENT_BRANCHES)
    assert set(JETPOINTNET_BRANCHES) <= set(events.fields)
    cellgeo = mltree.read_cellgeo(summary["geometry_file"])
    assert mltree.validate_events(events, cellgeo["cell_geo_ID"]) == []
    assert np.array_equal(events["eventNumber"].to_numpy(), np.arange(1, 7))


def test_content_is_physical(sample) -> None:
    _, events = sample
    assert ak.all(events["nTrack"] > 0) and ak.all(events["nCluster"] > 0)
    # per-cell truth: at most 3 contributions, ascending, energies positive, indices into the truth list
    e = events["cluster_cell_hitsTruthE"]
    idx = events["cluster_cell_hitsTruthIndex"]
    assert ak.max(ak.num(e, axis=3)) <= 3
    assert ak.all(ak.flatten(e[..., 1:] >= e[..., :-1], axis=None))
    assert ak.all(ak.flatten(e, axis=None) > 0)
    assert ak.all(idx < events["nTruthPart"]) and ak.all(ak.flatten(idx, axis=None) >= 0)
    # written cells pass the 5 MeV threshold; clusters are in descending energy
    assert ak.min(events["cluster_cell_E"]) >= 0.005
    cl_e = events["cluster_E"]
    assert ak.all(ak.flatten(cl_e[:, 1:] <= cl_e[:, :-1]))
    # trailing empty truth lists: cluster_nCells entries, only the first len(cluster_cell_ID) may be non-empty
    assert ak.all(ak.num(idx, axis=2) == events["cluster_nCells"])
    n_kept = ak.num(events["cluster_cell_ID"], axis=2)
    assert ak.all(ak.num(events["cluster_cell_ID"], axis=2) <= events["cluster_nCells"])
    tail = ak.num(idx, axis=3)[ak.local_index(idx, axis=2) >= n_kept]
    assert ak.all(ak.flatten(tail, axis=None) == 0)
    # the truth of cluster cells sums to roughly the cells' energy (GeV convention, C7 of the schema)
    truth_sum = ak.sum(ak.flatten(e, axis=None))
    assert 0.3 < truth_sum / ak.sum(events["cluster_cell_E"]) < 5
    # tracks: valid EMB2 or EME2 reference, truth links inside the truth list, ndof > 0
    ref = ak.where(events["trackEta_EMB2"] > -1e5, events["trackEta_EMB2"], events["trackEta_EME2"])
    assert ak.mean(ref > -1e5) > 0.99
    assert ak.all(events["trackTruthParticleIndex"] < events["nTruthPart"])
    assert ak.all(events["trackNumberDOF"] > 0)
    sub = ak.flatten(events["trackSubtractedCaloEnergy"])
    assert ak.all((sub == -999) | ((sub >= 0) & (sub == np.floor(sub))))


def test_same_seed_same_files_any_workers(sample, tmp_path: Path) -> None:
    _, events = sample
    again = simulate(SMALL, tmp_path / "again", workers=2, progress=False)
    other = _read(again["event_files"])
    for name in ("cluster_cell_E", "cluster_cell_ID", "cluster_cell_hitsTruthE", "trackPt", "truthPartE"):
        assert ak.array_equal(events[name], other[name]), name


def test_truth_energy_in_mev(sample, tmp_path: Path) -> None:
    _, events = sample
    config = SimConfig(process="JZ1", n_events=3, chunk_size=3, seed=11, truth_energy_unit="MeV")
    mev = _read(simulate(config, tmp_path, workers=1, progress=False)["event_files"])
    gev = events[:3]
    ratio = ak.flatten(mev["cluster_cell_hitsTruthE"], axis=None) / ak.flatten(
        gev["cluster_cell_hitsTruthE"], axis=None
    )
    assert np.allclose(ak.to_numpy(ratio), 1000.0, rtol=1e-5)


def test_particle_gun_pi0_decays_to_two_photons() -> None:
    particles, _ = EventGenerator("gun", 5, gun=GunConfig(111, 20.0, 0.5)).generate(50)
    assert len(particles) == 100 and set(particles.pdg) == {22}
    e = np.bincount(particles.event, weights=particles.e)
    assert np.allclose(e, 20.0)
    px = np.bincount(particles.event, weights=particles.pt * np.cos(particles.phi))
    pz = np.bincount(particles.event, weights=particles.pt * np.sinh(particles.eta))
    m2 = e**2 - px**2 - np.bincount(particles.event, weights=particles.pt * np.sin(particles.phi)) ** 2 - pz**2
    assert np.allclose(np.sqrt(m2), 0.1349768, atol=1e-4)


def test_pileup_particles_are_not_truth() -> None:
    particles, info = EventGenerator("JZ1", 7, pileup_mu=3).generate(5)
    assert info["n_pileup"].sum() > 0
    assert (particles.index == -1).any() and (particles.index >= 0).any()
    assert np.all(np.diff(particles.event) >= 0)


@pytest.mark.parametrize("process", ["ttbar", "hbb", "zjet", "minbias"])
def test_processes_generate(process: str) -> None:
    particles, _ = EventGenerator(process, 3).generate(2)
    assert len(particles) > 10 and set(np.unique(particles.event)) == {0, 1}


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown process 'Zprime'"):
        SimConfig(process="Zprime")
    with pytest.raises(ValueError, match="n_events must be >= 0"):
        SimConfig(n_events=-1)
    with pytest.raises(ValueError, match="gun energy"):
        GunConfig(energy=-5.0)
    assert canonical_process("dijet") == "JZ1" and canonical_process("jz3") == "JZ3"
    assert chunk_seed(1, 0) != chunk_seed(1, 1) and chunk_seed(1, 0) == chunk_seed(1, 0)
    missing = tmp_path / "nope.root"
    with pytest.raises(FileNotFoundError, match="nope.root"):
        simulate(SimConfig(n_events=1, geometry=str(missing)), tmp_path / "out", workers=1, progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_unwritable_output_leaves_nothing(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="locked"):
            simulate(SimConfig(n_events=1), locked / "atlas", workers=1, progress=False)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_failed_chunk_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    from jetcloud.atlas.sim import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash in the writer")

    monkeypatch.setattr(pipeline, "write_mltree", broken)
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate(SimConfig(n_events=2, chunk_size=2), tmp_path, workers=1, progress=False)
    assert not list((tmp_path / "events").glob("*.root"))
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_output_under_a_file_is_rejected(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="not_a_dir"):
        simulate(SimConfig(n_events=1), blocker / "atlas", workers=1, progress=False)
    assert blocker.read_text() == "" and list(tmp_path.iterdir()) == [blocker]


def test_unreadable_geometry_names_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "geometry.root"
    garbage.write_bytes(b"this is not a ROOT file")
    with pytest.raises((ValueError, OSError), match="geometry.root"):
        simulate(SimConfig(n_events=1, geometry=str(garbage)), tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "geometry.root").exists()


def test_ttree_output_reads_like_rntuple(tmp_path: Path) -> None:
    try:
        import ROOT  # noqa: F401
    except ImportError:
        pytest.skip("PyROOT not installed (pip install -e '.[root]'): TTree output not tested")
    config = SimConfig(process="JZ1", n_events=2, chunk_size=2, seed=5, format="ttree")
    summary = simulate(config, tmp_path, workers=1, progress=False)
    path = summary["event_files"][0]
    mltree.check_schema(path, branches=list(EVENT_BRANCHES))
    with uproot.open(path) as f:
        assert f["EventTree"].classname == "TTree"
        typename = f["EventTree"]["cluster_cell_hitsTruthIndex"].typename.replace(" ", "").replace("std::", "")
        assert typename.startswith("vector<vector<vector<int"), typename
    rntuple = _read(
        simulate(SimConfig(process="JZ1", n_events=2, chunk_size=2, seed=5), tmp_path / "r", workers=1, progress=False)[
            "event_files"
        ]
    )
    ttree = _read([path])
    for name in JETPOINTNET_BRANCHES:
        assert ak.array_equal(ttree[name], rntuple[name]), name
