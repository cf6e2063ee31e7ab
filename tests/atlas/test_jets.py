"""Particle-flow jets (jetcloud.atlas.jets): hand-built events with known jets, the subtraction mapping, matching."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from jetcloud.atlas import jets
from jetcloud.atlas.celltable import CellTable

# a toy geometry: cell ID -> (eta, phi); three groups of cells far apart in phi
CELL_ETA_PHI = {
    101: (0.00, 0.00),
    102: (0.02, 0.02),
    201: (0.50, 2.00),
    202: (0.52, 2.02),
    301: (-0.30, -2.00),
    302: (-0.30, -2.04),
}


def _table() -> CellTable:
    ids = np.array(list(CELL_ETA_PHI), np.uint64)
    eta, phi = np.array(list(CELL_ETA_PHI.values())).T
    return CellTable.from_columns(ids, np.full(len(ids), 2), eta, phi, np.full(len(ids), 1500.0), source="test")


def _event(**overrides) -> ak.Array:
    """One event: track 0 (pT 30 at eta 0, phi 0) with cluster 0 of 10 GeV at its place, track 1 (pT 25 at
    eta 0.5, phi 2) without a cluster, and neutral cluster 1 (16 GeV from truth particle 2) at phi -2."""
    record = {
        "eventNumber": 7,
        "trackPt": [30.0, 25.0],
        "trackEta": [0.01, 0.51],
        "trackPhi": [0.01, 2.01],
        "trackTruthParticleIndex": [0, 1],
        "truthPartPdgId": [211, -211, 2112, 12],
        "truthPartStatus": [1, 1, 1, 1],
        "truthPartPt": [30.0, 25.0, 16.0 / np.cosh(0.3), 5.0],
        "truthPartEta": [0.01, 0.51, -0.3, 0.0],
        "truthPartPhi": [0.01, 2.01, -2.02, 1.0],
        "truthPartMass": [0.1396, 0.1396, 0.9396, 0.0],
        "cluster_cell_ID": [[101, 102], [301, 302]],
        "cluster_cell_E": [[6.0, 4.0], [8.0, 8.0]],
        "cluster_cell_hitsTruthIndex": [[[0], [0], []], [[2], [2]]],  # a trailing empty list (cut cell)
        "cluster_cell_hitsTruthE": [[[6.0], [4.0], []], [[12.0], [12.0]]],
    }
    record.update(overrides)
    return ak.Array([record])


def _subtract_track0(cells: jets.EventCells) -> np.ndarray:
    """Track 0's sample takes all of cells 101 and 102."""
    cell_id = np.array([[101, 102, 0]], np.uint64)
    removed = np.array([[6.0, 4.0, 0.0]])
    return jets.map_subtraction(np.array([7]), cell_id, removed, cells, np.array([7]))


def test_particle_flow_jets_of_a_hand_built_event():
    events = _event()
    cells = jets.cell_occurrences(events, _table())
    tracks = jets.track_inputs(events)
    calib = jets.NeutralCalibration(np.array([0.0, np.inf]), np.array([1.5]), np.array([1]))
    pf, clusters = jets.reconstruct_jets(cells, tracks, _subtract_track0(cells), calib, 1, min_pt=1.0)
    # track jets at their momentum; the neutral jet = 16 GeV x 1.5 at eta -0.3 (massless: pT = E / cosh eta)
    np.testing.assert_allclose(pf["pt"], [30.0, 25.0, 24.0 / np.cosh(0.3)], rtol=1e-3)
    np.testing.assert_allclose(clusters["e"], [0.0, 16.0])
    np.testing.assert_allclose(clusters["neutral_em"], [0.0, 16.0])  # cluster 1's truth: untracked particle 2
    np.testing.assert_allclose(clusters["eta"][1], -0.3)
    np.testing.assert_allclose(clusters["phi"][1], -2.02, atol=1e-6)
    # topo-cluster jets: the 10 GeV of cluster 0 calibrated, no tracks
    topo, _ = jets.reconstruct_jets(cells, None, np.zeros(len(cells.energy)), calib, 1, min_pt=1.0)
    np.testing.assert_allclose(np.sort(topo["pt"]), np.sort([15.0 / np.cosh(0.0088), 24.0 / np.cosh(0.3)]), rtol=2e-3)


def test_no_subtraction_double_counts_the_charged_energy():
    events = _event()
    cells = jets.cell_occurrences(events, _table())
    pf, _ = jets.reconstruct_jets(cells, jets.track_inputs(events), np.zeros(len(cells.energy)), None, 1, min_pt=1.0)
    leading = pf["pt"][np.argmax(pf["pt"])]
    assert leading == pytest.approx(30.0 + 10.0 / np.cosh(0.0088), rel=1e-3)


def test_truth_jets_exclude_neutrinos():
    events = _event()
    truth = jets.truth_inputs(events)
    assert len(truth["pt"]) == 3
    tj = jets.cluster_jets([truth], 1, min_pt=10.0)
    np.testing.assert_allclose(np.sort(tj["pt"]), [16.0 / np.cosh(0.3), 25.0, 30.0], rtol=1e-6)


def test_cell_occurrences_truth_split_and_geometry():
    # cell 301 shared by two clusters (5 + 3 GeV), cell 302 with a tracked (0) and an untracked (2) contribution
    events = _event(
        cluster_cell_ID=[[101, 301], [301, 302]],
        cluster_cell_E=[[6.0, 5.0], [3.0, 8.0]],
        cluster_cell_hitsTruthIndex=[[[0], [2]], [[2], [0, 2]]],
        cluster_cell_hitsTruthE=[[[6.0], [10.0]], [[10.0], [3.0, 9.0]]],
    )
    cells = jets.cell_occurrences(events, _table(), truth_scale=1.0)
    np.testing.assert_allclose(cells.cell_energy, [6.0, 8.0, 8.0, 8.0])
    np.testing.assert_allclose(cells.neutral_em, [0.0, 5.0, 3.0, 8.0 * 9.0 / 12.0])
    np.testing.assert_allclose(cells.neutral_truth, [0.0, 10.0 * 5 / 8, 10.0 * 3 / 8, 9.0])
    np.testing.assert_allclose(cells.eta, [0.0, -0.3, -0.3, -0.3])
    np.testing.assert_array_equal(cells.cluster, [0, 0, 1, 1])
    with pytest.raises(KeyError, match="not in the geometry"):
        jets.cell_occurrences(_event(cluster_cell_ID=[[101, 999], [301, 302]]), _table())


def test_map_subtraction_sums_caps_and_splits_shared_cells():
    events = _event(
        cluster_cell_ID=[[101, 301], [301, 302]],
        cluster_cell_E=[[6.0, 5.0], [3.0, 8.0]],
        cluster_cell_hitsTruthIndex=[[[0], [2]], [[2], [2]]],
        cluster_cell_hitsTruthE=[[[6.0], [10.0]], [[10.0], [9.0]]],
    )
    cells = jets.cell_occurrences(events, _table())
    # two samples of event 7 take 4 + 4 from cell 101 (capped at its 6 GeV) and 2 + 2 from the shared cell 301
    # (split 5:3 between its clusters); a negative prediction on 302 takes nothing; a sample of event 8 is ignored
    sample_event = np.array([7, 7, 8])
    cell_id = np.array([[101, 301, 302], [101, 301, 0], [101, 301, 302]], np.uint64)
    removed = np.array([[4.0, 2.0, -1.0], [4.0, 2.0, 0.0], [9.0, 9.0, 9.0]])
    taken = jets.map_subtraction(sample_event, cell_id, removed, cells, np.array([7]))
    np.testing.assert_allclose(taken, [6.0, 4.0 * 5 / 8, 4.0 * 3 / 8, 0.0])
    remainder = cells.energy - taken
    assert np.all(remainder >= 0)
    with pytest.raises(ValueError, match="differ in shape"):
        jets.map_subtraction(sample_event, cell_id, removed[:, :2], cells, np.array([7]))


def test_align_samples():
    rows = jets.align_samples(np.array([5, 5, 3]), np.array([1, 0, 0]), np.array([3, 5, 5, 9]), np.array([0, 0, 1, 0]))
    np.testing.assert_array_equal(rows, [2, 1, 0, -1])
    with pytest.raises(ValueError, match="twice"):
        jets.align_samples(np.array([5, 5]), np.array([1, 1]), np.array([5]), np.array([1]))


def test_match_jets_nearest_within_delta_r():
    truth = {"event": np.array([0, 0, 1]), "eta": np.array([0.0, 1.0, 0.0]), "phi": np.array([0.0, 3.1, 0.0])}
    # event 0: a reco jet 0.1 from truth 0 and one 0.15 away; one across the phi wrap 0.1 from truth 1
    # event 1: the only reco jet is 0.3 away (no match); a reco jet of event 0 must not match in event 1
    reco = {
        "event": np.array([0, 0, 0, 1]),
        "eta": np.array([0.15, 0.1, 1.0, 0.3]),
        "phi": np.array([0.0, 0.0, -3.0832, 0.0]),
    }
    np.testing.assert_array_equal(jets.match_jets(truth, reco, max_dr=0.2), [1, 2, -1])
    resp = jets.jet_response({"pt": np.array([10.0, 20.0, 30.0])}, {"pt": np.array([1.0, 9.0, 30.0, 5.0])}, [1, 2, -1])
    np.testing.assert_allclose(resp, [0.9, 1.5, np.nan])


def test_calibration_per_bin_with_nearest_fill():
    e_em = np.array([0.5] * 20 + [5.0] * 20 + [-1.0])
    e_truth = np.concatenate([np.full(20, 1.0), np.full(20, 6.0), [3.0]])
    cal = jets.measure_calibration(e_em, e_truth, [0.0, 1.0, 10.0, 100.0], min_entries=10)
    np.testing.assert_allclose(cal.factor, [2.0, 1.2, 1.2])
    np.testing.assert_allclose(cal(np.array([0.1, 3.0, 500.0, -2.0])), [2.0, 1.2, 1.2, 2.0])
    np.testing.assert_array_equal(cal.n, [20, 20, 0])
    with pytest.raises(ValueError, match="positive"):
        jets.measure_calibration(np.array([-1.0]), np.array([1.0]), [0.0, 1.0])


def test_resolution_gain_and_binned_resolution():
    rng = np.random.default_rng(1)
    pt = rng.uniform(20, 100, 4000)
    ref = rng.normal(1.0, 0.2, len(pt))
    new = rng.normal(1.0, 0.1, len(pt))
    new[:100] = np.nan  # unmatched jets
    gain = jets.resolution_gain(new, ref, pt, (20.0, 100.0), n_boot=100, seed=0)
    assert gain["value"] == pytest.approx(0.5, abs=0.05)
    assert gain["lo"] < gain["value"] < gain["hi"] and gain["hi"] - gain["lo"] < 0.1
    assert gain["n_new"] == 3900 and gain["n_ref"] == 4000
    assert np.isnan(jets.resolution_gain(new, ref, pt, (200.0, 300.0))["value"])
    binned = jets.binned_resolution(ref, pt, [20.0, 60.0, 100.0, 200.0], n_boot=50)
    np.testing.assert_allclose(binned["sigma68"][:2], 0.2, atol=0.02)
    assert np.all(binned["sigma68_err"][:2] > 0) and np.all(binned["sigma68_err"][:2] < 0.02)
    assert binned["n"][2] == 0 and np.isnan(binned["median"][2])
    np.testing.assert_allclose(binned["efficiency"][:2], 1.0)


def _point_cloud_arrays() -> dict[str, np.ndarray]:
    """Two samples (MeV) of 4 points: a track point, then cells (energy column 4, distance column 3)."""
    feats = np.zeros((2, 4, 6), np.float32)
    feats[:, 1:, 4] = [[3000.0, 2000.0, 1000.0], [500.0, 500.0, 0.0]]
    feats[:, 1:, 3] = [[10.0, 60.0, 200.0], [10.0, 20.0, 0.0]]
    frac = np.array([[-1, 0.5, 1.0, 0.0], [-1, 1.0, 0.2, -1]], np.float32)
    return {
        "feats": feats,
        "frac_labels": frac,
        "focus_labels": np.where(frac >= 0, 1.0, -1.0).astype(np.float32),
        "track_pt": np.array([4000.0, 2000.0], np.float32),
        "track_eta": np.array([0.0, 0.0], np.float32),
        "track_p": np.array([4.0, 2.0], np.float32),
        "eventNumber": np.array([7, 7]),
        "trackID": np.array([0, 1]),
        "cell_id": np.array([[0, 101, 102, 301], [0, 201, 202, 0]], np.uint64),
    }


FEATURES = ("x", "y", "z", "distance_to_track", "energy", "type")


def test_classical_and_ideal_removal_in_gev():
    arrays = _point_cloud_arrays()
    p_edges, eta_edges = np.array([0.5, 1000.0]), np.array([0.0, 2.5])
    templates = jets.baselines.EoverPTemplates(
        p_edges, eta_edges, np.array([[1.0]]), np.array([[3.0]]), np.array([[9]])
    )
    removed = jets.classical_removal(arrays, FEATURES, 1000.0, templates, ring_width_mm=50.0)
    # E/p = 1: sample 0 takes 4 GeV (ring 0: 3 GeV, then 1 of ring 1's 2 GeV); sample 1 all its 1 GeV (< 2 GeV)
    np.testing.assert_allclose(removed, [[0, 3.0, 1.0, 0.0], [0, 0.5, 0.5, 0]], atol=1e-9)
    ideal = jets.ideal_removal(arrays, FEATURES, 1000.0)
    np.testing.assert_allclose(ideal, [[0, 1.5, 2.0, 0.0], [0, 0.5, 0.1, 0]], atol=1e-6)


def test_network_removal_joins_on_event_and_track():
    arrays = _point_cloud_arrays()
    pred = {"eventNumber": np.array([7]), "trackID": np.array([1]), "cell_energy": np.full((1, 4), 0.25)}
    removed, missing = jets.network_removal(pred, arrays)
    assert missing == 1
    np.testing.assert_allclose(removed, [[0, 0, 0, 0], [0.25] * 4])
    with pytest.raises(ValueError, match="points per sample"):
        jets.network_removal({**pred, "cell_energy": np.zeros((1, 3))}, arrays)


def test_neutral_calibration_from_event_cells():
    cells = jets.cell_occurrences(_event(), _table())
    # cluster 0 is all tracked (no neutral energy), cluster 1: 16 GeV EM for 24 GeV of truth deposit
    cal = jets.neutral_calibration(cells, [0.0, 100.0], min_entries=1)
    np.testing.assert_allclose(cal.factor, [1.5])
    np.testing.assert_array_equal(cal.n, [1])


def test_goals_block_and_statement():
    none = jets.goals(None, None)
    assert none["jet_resolution_gain"] is None and none["jet_resolution_gain_met"] == 0
    assert "not measured" in jets.goal_statement(none)
    met = jets.goals({"value": 0.3, "lo": 0.2, "hi": 0.4}, "network (pointnet)")
    assert met["jet_resolution_gain_met"] == 1 and "MET" in jets.goal_statement(met)
    wide = jets.goals({"value": 0.2, "lo": 0.05, "hi": 0.35}, "network (pointnet)")
    assert (wide["jet_resolution_gain_met"], wide["jet_resolution_gain_central_met"]) == (0, 1)
    assert "not established" in jets.goal_statement(wide)
    assert jets.goals({"value": np.nan, "lo": np.nan, "hi": np.nan}, "x")["jet_resolution_gain"] is None
