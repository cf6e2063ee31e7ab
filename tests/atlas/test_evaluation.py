"""Metrics (response, sigma68, original metrics, ROC) and the particle-flow ring-subtraction baseline."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud import metrics
from jetcloud.atlas import baselines

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
    # sample 0: cell 1 predicted fraction 0.9 (true 1), cell 2 0.3 (true 0): all right -> 1; sample 1: 0.025 vs
    # 0.5 (class 0 vs 0) -> right -> 1
    assert s["energy_weighted_accuracy"] == pytest.approx(1.0, abs=1e-5)
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
