"""Metrics (response, sigma68, original metrics, ROC) and the particle-flow ring-subtraction baseline."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud import metrics
from jetcloud.atlas import baselines
from jetcloud.atlas.pointcloud import ATLAS_FEATURES

# --------------------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------------------


def test_sigma68_of_a_gaussian(rng: np.random.Generator) -> None:
    x = rng.normal(1.0, 0.2, 200_000)
    median, width = metrics.median_and_sigma68(x)
    assert median == pytest.approx(1.0, abs=0.003) and width == pytest.approx(0.2, rel=0.01)
    assert metrics.median_and_sigma68(x, relative=True)[1] == pytest.approx(0.2, rel=0.01)
    assert np.isnan(metrics.median_and_sigma68(np.array([np.nan, np.inf]))[0])


def test_binned_response(rng: np.random.Generator) -> None:
    pt = rng.uniform(0, 10, 20_000)
    resp = rng.normal(np.where(pt < 5, 0.8, 1.0), np.where(pt < 5, 0.16, 0.05))
    tab = metrics.binned_response(resp, pt, [0, 5, 10, 20])
    np.testing.assert_allclose(tab["median"][:2], [0.8, 1.0], atol=0.01)
    np.testing.assert_allclose(tab["sigma68"][:2], [0.2, 0.05], rtol=0.05)
    assert tab["n"].sum() == 20_000 and tab["n"][2] == 0 and np.isnan(tab["median"][2])
    with pytest.raises(ValueError, match="increasing"):
        metrics.binned_response(resp, pt, [5, 0])


def test_percentage_error_blows_up_for_small_denominators() -> None:
    pe = metrics.percentage_error(np.array([16.567, 1.0, 1.0]), np.array([29.393, 0.01, 0.0]))
    assert pe[0] == pytest.approx(43.63, abs=0.01)  # the PDF's "Sample 2"
    assert pe[1] == pytest.approx(9900) and np.isinf(pe[2])


def test_energy_weighted_accuracy() -> None:
    pred = np.array([[0.9, 0.1, 0.6, 0.0]])
    true = np.array([[1.0, 0.0, 0.0, -1.0]])
    w = np.array([[3.0, 1.0, 1.0, 100.0]])
    valid = true != -1
    assert metrics.energy_weighted_accuracy(pred, true, w, valid)[0] == pytest.approx(4 / (5 + 1e-5))


def test_roc_auc_and_rejection(rng: np.random.Generator) -> None:
    y = np.r_[np.ones(5000), np.zeros(5000)]
    s = np.r_[rng.normal(1, 1, 5000), rng.normal(0, 1, 5000)]
    # AUC of two unit Gaussians one sigma apart: Phi(1 / sqrt 2) = 0.7602
    assert metrics.roc_auc(y, s) == pytest.approx(0.7602, abs=0.01)
    assert metrics.roc_auc(y, -s) == pytest.approx(1 - metrics.roc_auc(y, s))
    assert metrics.roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)  # ties count one half
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    # eps_s = 0.5 at the median of the signal (score 1): eps_b = 1 - Phi(1) = 0.1587 -> rejection 6.3
    assert metrics.background_rejection(y, s, 0.5) == pytest.approx(6.3, rel=0.1)
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc(np.ones(3), np.arange(3))


# --------------------------------------------------------------------------------------------------------------
# particle-flow baseline on hand-built samples
# --------------------------------------------------------------------------------------------------------------


def test_ring_subtraction_hand_built() -> None:
    # one sample: a dense core ring (two cells, 6 + 4) at 5 mm, a sparse ring (2) at 30 mm, a far ring (8) at
    # 80 mm, a noise cell (-1), a track point and padding. Ring width 25 mm -> rings 0, 1, 3.
    energy = np.array([[6.0, 4.0, 2.0, 8.0, -1.0, 7.0, 0.0]])
    dist = np.array([[5.0, 5.0, 30.0, 80.0, 10.0, 0.0, 0.0]])
    is_cell = np.array([[1, 1, 1, 1, 1, 0, 0]], bool)
    # densities: ring 0: 10 / 1, ring 1: 2 / 3, ring 3: 8 / 7 -> order ring 0, ring 3, ring 1
    removed = baselines.subtract_rings(energy, dist, is_cell, np.array([12.0]), ring_width=25.0)
    np.testing.assert_allclose(removed, [[6.0, 4.0, 0.0, 2.0, 0.0, 0.0, 0.0]])
    # the ring that crosses the expectation is removed in proportion
    removed = baselines.subtract_rings(energy, dist, is_cell, np.array([5.0]), ring_width=25.0)
    np.testing.assert_allclose(removed, [[3.0, 2.0, 0, 0, 0, 0, 0]])
    # more expected than available: everything positive goes, nothing negative, no track points
    removed = baselines.subtract_rings(energy, dist, is_cell, np.array([100.0]), ring_width=25.0)
    np.testing.assert_allclose(removed, [[6.0, 4.0, 2.0, 8.0, 0.0, 0.0, 0.0]])
    # NaN distance (no intersections): the outermost ring
    dist_nan = dist.copy()
    dist_nan[0, 0] = np.nan
    removed = baselines.subtract_rings(energy, dist_nan, is_cell, np.array([4.0]), ring_width=25.0)
    np.testing.assert_allclose(removed, [[0.0, 4.0, 0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="ring_width"):
        baselines.subtract_rings(energy, dist, is_cell, np.array([1.0]), ring_width=0)


def test_templates_and_prediction(tmp_path) -> None:
    # 40 tracks of p = 10 GeV at eta 0.1: each deposits 6 GeV EM scale (E/p = 0.6) worth 8 GeV of truth
    n = 40
    energy = np.tile([4000.0, 2000.0, 1500.0, 0.0], (n, 1))  # MeV; third cell belongs to another particle
    frac = np.tile([1.0, 1.0, 0.0, -1.0], (n, 1))
    focus = np.tile([5333.0, 2667.0, 0.0, -1.0], (n, 1))
    is_cell = np.tile([True, True, True, False], (n, 1))
    dist = np.tile([10.0, 20.0, 200.0, 0.0], (n, 1))
    p, eta = np.full(n, 10.0), np.full(n, 0.1)
    tpl = baselines.measure_templates(energy, frac, focus, is_cell, p, eta, min_tracks=10)
    ib = np.searchsorted(tpl.p_edges, 10.0, side="right") - 1
    assert tpl.n[ib, 0] == n and tpl.n.sum() == n
    assert tpl.ep[ib, 0] == pytest.approx(0.6) and tpl.calib[ib, 0] == pytest.approx(8000 / 6000)
    np.testing.assert_allclose(tpl.ep, 0.6)  # empty bins filled from the nearest filled one
    pred = baselines.predict_cells(energy, dist, is_cell, p, eta, tpl, unit_per_gev=1000.0, ring_width=25.0)
    np.testing.assert_allclose(pred.sum(axis=1), 8000.0)
    np.testing.assert_allclose(pred[0], [5333.33, 2666.67, 0.0, 0.0], atol=0.01)
    path = tpl.save(tmp_path / "templates.json")
    back = baselines.EoverPTemplates.load(path)
    np.testing.assert_array_equal(back.ep, tpl.ep)
    np.testing.assert_array_equal(back.n, tpl.n)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(KeyError, match="bad.json"):
        baselines.EoverPTemplates.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no template bin"):
        baselines.measure_templates(energy[:3], frac[:3], focus[:3], is_cell[:3], p[:3], eta[:3], min_tracks=10)


# --------------------------------------------------------------------------------------------------------------
# per-track evaluation of cell predictions
# --------------------------------------------------------------------------------------------------------------


def _arrays() -> dict[str, np.ndarray]:
    # two samples, L = 4, MeV: rows x, y, z, distance, energy, type
    feats = np.zeros((2, 4, 6), np.float32)
    feats[:, :, 0] = 1500.0  # x: all points at phi = 0, eta = 0
    feats[0, :, 4] = [5000.0, 3000.0, 1000.0, 0.0]
    feats[0, :, 5] = [1, 0, 0, -1]
    feats[1, :, 4] = [2000.0, 4000.0, 0.0, 0.0]
    feats[1, :, 5] = [1, 0, -1, -1]
    focus = np.array([[-1, 3000.0, 0.0, -1], [-1, 50.0, -1, -1]], np.float32)  # sample 1: 0.05 GeV, excluded
    return {
        "feats": feats,
        "focus_labels": focus,
        "frac_labels": np.array([[-1, 1.0, 0.0, -1], [-1, 0.5, -1, -1]], np.float32),
        "tot_truth_e": np.array([[-1, 3000.0, 800.0, -1], [-1, 100.0, -1, -1]], np.float32),
        "track_pt": np.array([5000.0, 2000.0], np.float32),
        "track_eta": np.array([0.0, 0.0], np.float32),
        "eventNumber": np.array([1, 2]),
        "trackID": np.array([0, 0]),
    }


def test_track_table_and_summary() -> None:
    from jetcloud.atlas import evaluation

    arrays = _arrays()
    pred = np.array([[99.0, 2700.0, 300.0, 99.0], [99.0, 100.0, 99.0, 99.0]])  # masked points ignored
    tab = evaluation.track_table(pred, arrays, 1000.0)
    np.testing.assert_allclose(tab["e_pred"], [3.0, 0.1])
    np.testing.assert_allclose(tab["e_true"], [3.0, 0.05])
    assert tab["response"][0] == pytest.approx(1.0) and np.isnan(tab["response"][1])  # below MIN_TRUE_GEV
    np.testing.assert_allclose(tab["pt"], [5.0, 2.0])
    s = evaluation.method_summary(pred, arrays, 1000.0)
    assert s["tracks"] == 1 and s["median_response"] == pytest.approx(1.0)
    assert s["cell_mae_gev"] == pytest.approx((0.3 + 0.3 + 0.05) / 3)
    # a truth-scale prediction is a fraction of the truth energy: sample 0: cell 1 2700 / 3000 = 0.9 (true 1), cell 2
    # 300 / 800 = 0.375 (true 0): all right -> 1; sample 1: 100 / 100 = 1 against 0.5 (class 1 vs 0) -> 0
    assert s["energy_weighted_accuracy"] == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        evaluation.track_table(pred[:, :3], arrays, 1000.0)


def test_evaluation_figures() -> None:
    import matplotlib.pyplot as plt

    from jetcloud.atlas import evaluation
    from jetcloud.atlas import plots as atlas_plots
    from jetcloud.atlas.pointcloud import ATLAS_FEATURES

    arrays = _arrays()
    pred = np.where(arrays["focus_labels"] != -1, arrays["focus_labels"] * 1.1, 0)
    tables = {"a": evaluation.track_table(pred, arrays, 1000.0)}
    for fig in (
        atlas_plots.response_distributions(tables),
        atlas_plots.binned_response_figure(tables, min_entries=1)[0],
        atlas_plots.percentage_error_figure(tables),
        atlas_plots.prediction_display(arrays, 0, {"a": pred}, ATLAS_FEATURES),
    ):
        assert len(fig.axes) >= 1
        plt.close(fig)


# --------------------------------------------------------------------------------------------------------------
# the comparison on two scales: rows, bug fixes, bootstrap tables, goals
# --------------------------------------------------------------------------------------------------------------


def _cones(n: int, rng: np.random.Generator, *, centred: bool = False) -> dict[str, np.ndarray]:
    """``n`` samples of 8 points (MeV, mm): the focused track, 6 cells at 5-500 mm, one other track (pT 3 GeV).

    Cells read 0.7 of their truth energy (EM scale); the focused particle owns a fraction that falls with distance.
    """
    length = 8
    dist = np.array([0.0, 5.0, 30.0, 60.0, 120.0, 250.0, 500.0, 80.0])
    p_gev = rng.uniform(2.0, 20.0, n)
    truth = rng.uniform(0.2, 1.0, (n, 6)) * p_gev[:, None] * 1000.0 / 3  # MeV per cell
    frac = np.clip(np.array([0.9, 0.8, 0.6, 0.4, 0.2, 0.1]) + rng.normal(0, 0.05, (n, 6)), 0, 1)
    feats = np.zeros((n, length, 6), np.float32)
    feats[:, :, 0] = 1500.0
    feats[:, :, 2] = np.linspace(0, 300, length)
    feats[:, :, 3] = dist / (1000.0 if centred else 1.0)
    feats[:, 0, 4] = p_gev * 1000.0
    feats[:, 1:7, 4] = 0.7 * truth
    feats[:, 7, 4] = 3000.0
    feats[:, :, 5] = [1, 0, 0, 0, 0, 0, 0, 2]
    labels = np.full((n, length), -1.0, np.float32)
    frac_l, tot_l, focus_l = labels.copy(), labels.copy(), labels.copy()
    frac_l[:, 1:7], tot_l[:, 1:7], focus_l[:, 1:7] = frac, truth, frac * truth
    return {
        "feats": feats,
        "frac_labels": frac_l,
        "tot_labels": tot_l,
        "tot_truth_e": tot_l,
        "focus_labels": focus_l,
        "track_pt": (p_gev * 1000.0).astype(np.float32),
        "track_eta": np.full(n, 0.2, np.float32),
        "focus_truth_energy": (frac * truth).sum(axis=1).astype(np.float32),
        "eventNumber": np.arange(n),
        "trackID": np.zeros(n, np.int64),
    }


def test_ring_width_follows_the_arrays_units(rng: np.random.Generator) -> None:
    from jetcloud.atlas import evaluation
    from jetcloud.atlas.pointcloud import ATLAS_FEATURES

    seed = int(rng.integers(1 << 30))
    raw, centred = _cones(60, np.random.default_rng(seed)), _cones(60, np.random.default_rng(seed), centred=True)
    meta = {"coordinates": "centred", "coordinate_scale_mm": 1000.0}
    assert evaluation.distance_scale_mm(meta) == 1000.0 and evaluation.distance_scale_mm({"coordinates": "raw"}) == 1
    _, pred_raw = evaluation.particle_flow_baseline(raw, raw, ATLAS_FEATURES, 1000.0, ring_width=50.0)
    _, pred_centred = evaluation.particle_flow_baseline(
        centred, centred, ATLAS_FEATURES, 1000.0, ring_width=50.0, mm_per_unit=evaluation.distance_scale_mm(meta)
    )
    np.testing.assert_allclose(pred_centred, pred_raw, rtol=1e-6)
    # the old behaviour (a 50 "mm" ring on distances in metres) makes every cone one ring: the subtraction then
    # takes the same share of every cell instead of the core first
    _, pred_bug = evaluation.particle_flow_baseline(centred, centred, ATLAS_FEATURES, 1000.0, ring_width=50.0)
    cells = raw["focus_labels"] != -1
    share_bug = np.where(cells, pred_bug, 0) / np.where(cells, raw["feats"][..., 4], 1)
    assert np.allclose(share_bug[:, 1:7], share_bug[:, 1:2], rtol=1e-5)
    assert not np.allclose(pred_bug, pred_raw)
    with pytest.raises(ValueError, match="mm_per_unit"):
        evaluation.particle_flow_baseline(raw, raw, ATLAS_FEATURES, 1000.0, mm_per_unit=0)


def test_energy_weighted_accuracy_compares_like_with_like(rng: np.random.Generator) -> None:
    from jetcloud.atlas import evaluation

    arrays = _cones(30, rng)
    # a perfect truth-scale prediction is right on every cell; divided by the EM-scale cell energy (0.7 of the
    # truth, the old bug) its fractions were inflated by 1 / 0.7 and cells with a true fraction 0.4 flipped class
    perfect = evaluation.method_summary(arrays["focus_labels"], arrays, 1000.0)
    assert perfect["energy_weighted_accuracy"] == pytest.approx(1.0, abs=1e-6)
    assert perfect["median_response"] == pytest.approx(1.0) and perfect["cell_mae_gev"] == pytest.approx(0.0)
    energy = arrays["feats"][..., 4]
    old = metrics.energy_weighted_accuracy(
        np.where(energy > 0, arrays["focus_labels"] / np.where(energy > 0, energy, 1), 0),
        arrays["frac_labels"],
        arrays["tot_truth_e"],
        arrays["focus_labels"] != -1,
    )
    assert old.mean() < 0.95  # the test bites: the old comparison was wrong on these cells
    em_perfect = evaluation.cell_targets(arrays, "em")
    em = evaluation.method_summary(em_perfect, arrays, 1000.0, scale="em")
    assert em["energy_weighted_accuracy"] == pytest.approx(1.0, abs=1e-6) and em["median_response"] == 1.0
    with pytest.raises(ValueError, match="scale"):
        evaluation.predicted_fraction(em_perfect, arrays, "jet")


def test_template_row_hand_built() -> None:
    from jetcloud.atlas import evaluation

    # 40 tracks of p = 10 GeV at eta 0.1: 6 GeV EM scale (E/p = 0.6) worth 8 GeV of truth (as the template test)
    n = 40
    feats = np.zeros((n, 4, 6), np.float32)
    feats[:, :, 4] = [4000.0, 2000.0, 1500.0, 0.0]
    feats[:, :, 5] = [0, 0, 0, -1]
    arrays = {
        "feats": feats,
        "frac_labels": np.tile(np.float32([1.0, 1.0, 0.0, -1.0]), (n, 1)),
        "focus_labels": np.tile(np.float32([5333.0, 2667.0, 0.0, -1.0]), (n, 1)),
        "track_pt": np.full(n, 10_000.0 / np.cosh(0.1), np.float32),
        "track_eta": np.full(n, 0.1, np.float32),
        "focus_truth_energy": np.full(n, 8000.0, np.float32),
    }
    p = evaluation.track_momentum(arrays, 1000.0)
    np.testing.assert_allclose(p, 10.0, rtol=1e-6)
    arrays["track_p"] = np.full(n, 10.0, np.float32)  # preferred when present
    np.testing.assert_array_equal(evaluation.track_momentum(arrays, 1000.0), 10.0)
    a = evaluation.baseline_inputs(arrays, ATLAS_FEATURES, 1000.0)
    tpl = baselines.measure_templates(
        a["energy"], arrays["frac_labels"], arrays["focus_labels"], a["is_cell"], p, arrays["track_eta"]
    )
    row = evaluation.template_row(tpl, arrays, 1000.0)
    np.testing.assert_allclose(row["em"], 6.0, rtol=1e-5)
    np.testing.assert_allclose(row["truth"], 8.0, rtol=1e-5)
    targets = evaluation.scale_targets(arrays, 1000.0)
    np.testing.assert_allclose(targets["em"], 6.0)
    np.testing.assert_allclose(targets["truth"], 8.0)
    np.testing.assert_allclose(evaluation.response(row["truth"], targets["truth"]), 1.0, rtol=1e-5)
    assert np.isnan(evaluation.response(np.array([1.0]), np.array([0.05])))[0]


def test_track_features_by_hand(rng: np.random.Generator) -> None:
    from jetcloud.atlas import evaluation

    arrays = _cones(3, rng)
    x, names = evaluation.track_features(arrays, ATLAS_FEATURES, 1000.0)
    assert x.shape == (3, len(names)) and np.isfinite(x).all()
    p = evaluation.track_momentum(arrays, 1000.0)
    col = {name: x[:, i] for i, name in enumerate(names)}
    cell_e = arrays["feats"][:, 1:7, 4] / 1000.0
    np.testing.assert_allclose(col["ring_0_25mm_over_p"], cell_e[:, 0] / p, rtol=1e-6)  # the 5 mm cell
    np.testing.assert_allclose(col["ring_400_infmm_over_p"], cell_e[:, 5] / p, rtol=1e-6)  # the 500 mm cell
    np.testing.assert_allclose(col["cone_energy_over_p"], cell_e.sum(axis=1) / p, rtol=1e-6)
    np.testing.assert_array_equal(col["n_other_tracks"], 1)
    np.testing.assert_allclose(col["max_other_pt"], 3.0)
    # depth from the cells' sampling when the arrays carry it (EMB2 = 2 -> em2, TileBar0 = 12 -> had1)
    arrays["sampling"] = np.tile(np.int16([-1, 2, 2, 12, 12, 12, 12, -1]), (3, 1))
    x2 = evaluation.track_features(arrays, ATLAS_FEATURES, 1000.0)[0]
    col = {name: x2[:, i] for i, name in enumerate(names)}
    np.testing.assert_allclose(col["em2_over_p"], cell_e[:, :2].sum(axis=1) / p, rtol=1e-6)
    np.testing.assert_allclose(col["had1_over_p"], cell_e[:, 2:].sum(axis=1) / p, rtol=1e-6)
    # without sampling, raw positions: barrel cells at r = 1500 mm are closest to PreSamplerB / EMB1
    del arrays["sampling"]
    sampling = evaluation.cell_sampling(arrays, ATLAS_FEATURES)
    assert set(np.unique(sampling[:, 1:7])) <= {0, 1} and (sampling[:, 0] == -1).all()
    assert (evaluation.cell_sampling(arrays, ATLAS_FEATURES, mm_per_unit=1000.0) == -1).all()


def test_trees_row_is_deterministic(rng: np.random.Generator) -> None:
    from jetcloud.atlas import evaluation

    train, test = _cones(300, rng), _cones(50, rng)
    a = evaluation.trees_row(train, test, ATLAS_FEATURES, 1000.0, seed=3, max_iter=50)
    b = evaluation.trees_row(train, test, ATLAS_FEATURES, 1000.0, seed=3, max_iter=50)
    assert set(a) == {"truth", "em"}
    for scale in a:
        np.testing.assert_array_equal(a[scale], b[scale])
    targets = evaluation.scale_targets(test, 1000.0)
    r = evaluation.response(a["truth"], targets["truth"])
    assert np.isfinite(r).all() and abs(np.median(r) - 1.0) < 0.15  # it learned the scale


def test_network_rows_from_predictions_file_and_legacy_runs(tmp_path, rng: np.random.Generator) -> None:
    import json

    from jetcloud.atlas import evaluation

    test = _cones(20, rng)
    run = tmp_path / "pointnet" / "f0.5"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"model": "pointnet", "n_train_samples": 100, "seed": 0}))
    order = rng.permutation(20)  # the file's tracks come in another order
    cell_energy = np.where(test["focus_labels"] != -1, test["focus_labels"], 0) / 1000.0 * 0.5
    np.savez(
        run / evaluation.PREDICTIONS_FILE,
        eventNumber=test["eventNumber"][order],
        trackID=test["trackID"][order],
        cell_energy=cell_energy[order].astype(np.float32),
        track_energy=(test["focus_truth_energy"][order] / 1000.0).astype(np.float32),
    )
    legacy = tmp_path / "old"
    legacy.mkdir()
    (legacy / "run.json").write_text(json.dumps({"model": "pointnet"}))
    assert evaluation.find_runs(tmp_path) == [legacy, run]
    row, info = evaluation.network_row(run, test, 1000.0)
    np.testing.assert_allclose(row["truth"], test["focus_truth_energy"] / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(row["em"], cell_energy.sum(axis=1), rtol=1e-5)
    assert info["n_train_samples"] == 100 and not info["em_from_truth_output"]
    row, info = evaluation.network_row(legacy, test, 1000.0, predict=lambda _: test["focus_labels"])
    np.testing.assert_allclose(row["truth"], row["em"])
    assert info["em_from_truth_output"]
    with pytest.raises(FileNotFoundError, match="predict"):
        evaluation.network_row(legacy, test, 1000.0)
    with pytest.raises(ValueError, match="no prediction"):
        evaluation.align_tracks(test, test["eventNumber"][:5], test["trackID"][:5])


def test_comparison_tables_and_goals(rng: np.random.Generator) -> None:
    from jetcloud import nbtools
    from jetcloud.atlas import evaluation

    n = 6000
    p = rng.uniform(1.0, 50.0, n)
    eta = rng.uniform(-2.4, 2.4, n)
    target = 0.7 * p
    rows = {
        "classical subtraction": {s: target * rng.normal(1.0, 0.4, n) for s in evaluation.SCALES},
        "boosted trees": {s: target * rng.normal(1.0, 0.25, n) for s in evaluation.SCALES},
        "net": {s: target * rng.normal(1.0, 0.05, n) for s in evaluation.SCALES},
    }
    targets = {s: target for s in evaluation.SCALES}
    comp = evaluation.compare_methods(rows, targets, p, eta, n_resamples=100, seed=1)
    again = evaluation.compare_methods(rows, targets, p, eta, n_resamples=100, seed=1)
    np.testing.assert_array_equal(comp["scales"]["em"]["p"][2]["resampled"], again["scales"]["em"]["p"][2]["resampled"])
    st = comp["scales"]["truth"]["overall"]["stats"]
    assert st["net"]["sigma68"] == pytest.approx(0.05, rel=0.1) and st["net"]["sigma68_lo"] < st["net"]["sigma68_hi"]
    assert st["classical subtraction"]["sigma68"] == pytest.approx(0.4, rel=0.1)
    goal = evaluation.goals(comp, "net")
    assert goal["truth_scale_sigma68_ratio"] == pytest.approx(0.125, rel=0.15)
    assert goal["truth_scale_sigma68_ratio_hi"] <= 0.6 and goal["truth_scale_sigma68_ratio_met"] == 1
    assert goal["em_scale_sigma68_ratio_met"] == 1 and goal["beats_trees_in_every_p_bin"] == 1
    assert goal["p_bins_judged"] == 5  # 1-2, 2-5, 5-10, 10-20, 20-50 GeV
    assert goal["median_within_2pct_above_1gev"] == 1
    no_net = evaluation.goals(comp, None)
    assert no_net["truth_scale_sigma68_ratio"] is None and no_net["beats_trees_in_every_p_bin"] == 0
    assert "not met" in evaluation.goals_markdown(evaluation.goals(comp, "boosted trees"))
    assert "**met**" in evaluation.goals_markdown(goal) and "No network" in evaluation.goals_markdown(no_net)
    table = evaluation.headline_table(comp)
    assert table.count("\n| ") == 3 and "net" in table
    assert "| 0.5-1 | 0-2.5 | 0 |" in evaluation.binned_table(comp, "truth")  # an empty bin says so
    record = nbtools.nan_to_none(evaluation.comparison_record(comp))
    assert "resampled" not in record["scales"]["truth"]["overall"]
    runs = {"net": {"model": "pointnet", "n_train_samples": 50}}
    curves = evaluation.learning_curve(comp, runs, 1000)
    assert curves["pointnet"]["n_train"] == [50] and curves["pointnet"]["sigma68"][0] == st["net"]["sigma68"]
    assert evaluation.pick_network({"a": {}, "b": {"n_train_samples": 10}}, 100) == "a"
    assert evaluation.pick_network({"a": {}, "b": {"n_train_samples": 10}}, 100, preferred="b") == "b"
    assert evaluation.pick_network({"a": {}}, 100, preferred="absent") == "a"


def test_comparison_figures(rng: np.random.Generator) -> None:
    import matplotlib.pyplot as plt

    from jetcloud.atlas import evaluation
    from jetcloud.atlas import plots as atlas_plots

    p = rng.uniform(1.0, 50.0, 400)
    rows = {"a": {s: p * rng.normal(1, 0.2, 400) for s in evaluation.SCALES}}
    comp = evaluation.compare_methods(rows, {s: p for s in evaluation.SCALES}, p, np.zeros(400), n_resamples=20)
    curves = {"pointnet": {"n_train": [10, 100], "sigma68": [0.3, 0.2], "lo": [0.25, 0.18], "hi": [0.35, 0.22]}}
    for fig in (
        atlas_plots.method_comparison_figure(comp),
        atlas_plots.sigma68_learning_curve(curves, {"trees": (0.25, 0.24, 0.26)}),
    ):
        assert len(fig.axes) >= 1
        plt.close(fig)
