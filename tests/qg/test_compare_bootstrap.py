"""The evaluation protocol of notebook 09: AUC bootstrap (jetcloud.metrics), paired differences on the same test
jets, seed groups, the goals block and the particle-level learning curve (jetcloud.qg.compare)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from jetcloud import metrics, runs
from jetcloud.qg import compare as qg_compare
from jetcloud.qg import train as qg_train

matplotlib.use("Agg")


def _binormal(n: int, mus: list[float], shared: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and one score row per ``mu``: ``mu * y + shared * z + e`` with a jet-level ``z`` common to all rows
    and an independent unit-variance ``e``; the true AUC is ``Phi(mu / sqrt(2 (1 + shared^2)))``."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    z = rng.normal(size=n)
    return y, np.stack([mu * y + shared * z + rng.normal(size=n) for mu in mus])


def _true_auc(mu: float, shared: float) -> float:
    return 0.5 * (1 + math.erf(mu / math.sqrt(2 * (1 + shared**2)) / math.sqrt(2)))


def test_weighted_auc_is_the_auc_of_the_resampled_jets():
    y, s = _binormal(600, [1.0, 0.5], 0.5, seed=1)
    s = np.concatenate([s, np.round(s[:1], 1)])  # a row with many tied scores
    np.testing.assert_allclose(metrics.weighted_auc(y, s, np.ones((1, 600)))[0], [metrics.roc_auc(y, r) for r in s])
    idx = np.random.default_rng(5).integers(0, 600, size=(3, 600))
    counts = np.stack([np.bincount(i, minlength=600) for i in idx])
    expected = [[metrics.roc_auc(y[i], r[i]) for r in s] for i in idx]
    np.testing.assert_allclose(metrics.weighted_auc(y, s, counts), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        metrics.weighted_auc(np.ones(600), s, np.ones((1, 600)))


def test_identical_scores_give_exactly_zero():
    y, s = _binormal(2000, [1.0], 0.0, seed=2)
    d = metrics.paired_auc_difference(y, s, s.copy(), n_resamples=300)
    assert d == {"delta": 0.0, "lo": 0.0, "hi": 0.0, "auc_a": d["auc_b"], "auc_b": d["auc_b"]}


def test_paired_interval_covers_the_true_gap_and_is_narrower_than_unpaired():
    shared = 1.5  # a strong jet-level component common to both models, as for two taggers on the same jets
    y, s = _binormal(20_000, [1.2, 1.0], shared, seed=3)
    true_gap = _true_auc(1.2, shared) - _true_auc(1.0, shared)
    d = metrics.paired_auc_difference(y, s[:1], s[1:], n_resamples=1000, seed=7)
    assert d["lo"] < true_gap < d["hi"] and d["lo"] > 0
    assert d == metrics.paired_auc_difference(y, s[:1], s[1:], n_resamples=1000, seed=7)  # same seed, same result
    _, a = metrics.bootstrap_auc(y, s[:1], n_resamples=1000, seed=8)  # unpaired: independent jet draws per model
    _, b = metrics.bootstrap_auc(y, s[1:], n_resamples=1000, seed=9)
    lo, hi = metrics.percentile_interval(a[:, 0] - b[:, 0], 0.95)
    assert d["hi"] - d["lo"] < 0.7 * (hi - lo)


def test_seed_mean_difference_bootstraps_every_seed_run_jointly():
    y, s = _binormal(3000, [1.2, 1.1, 1.0, 0.9, 0.95], 1.0, seed=4)
    d = metrics.paired_auc_difference(y, s[:2], s[2:], n_resamples=400, seed=1)
    aucs = [metrics.roc_auc(y, r) for r in s]
    assert d["delta"] == pytest.approx(np.mean(aucs[:2]) - np.mean(aucs[2:]), abs=1e-12)
    _, resampled = metrics.bootstrap_auc(y, s, n_resamples=400, seed=1)
    diff = resampled[:, :2].mean(axis=1) - resampled[:, 2:].mean(axis=1)
    assert (d["lo"], d["hi"]) == tuple(float(v) for v in metrics.percentile_interval(diff, 0.95))


def _write(root: Path, name: str, y: np.ndarray, s: np.ndarray, seed: int = 0, level: str = "detector", limit: int = 0):
    """A run directory as notebook 08 writes it (record with n_train and max_train_jets, scores_test.npz)."""
    summary = {"model": name.removesuffix("_particle"), "level": level, "k": 8, "params": 10, "epochs": 1}
    summary.update(train_seconds=1.0, n_train=limit or 9000, **qg_train.summarize(y, s))
    tag = f"seed{seed}-train{limit}" if limit else f"seed{seed}"
    parameters = {"profile": "smoke", "seed": seed, "model": summary["model"], "run_tag": tag, "max_train_jets": limit}
    out = root / f"{name}@{tag}"
    runs.write_record(out, parameters=parameters, metrics=summary)
    qg_train.write_scores(out, "test", y, s)


def test_groups_deltas_and_mismatched_jets(tmp_path):
    y, s = _binormal(4000, [1.0, 1.05, 0.95, 1.3, 1.25, 1.35, 1.1], 1.0, seed=5)
    for seed, row in enumerate(s[:3]):
        _write(tmp_path, "resnet_pc_1024_m", y, row, seed=seed)
    for seed, row in enumerate(s[3:6]):
        _write(tmp_path, "my_new_net", y, row, seed=seed)  # a model a teammate adds: "new" without any list
    _write(tmp_path, "mlp", y, s[6])
    found = qg_compare.load_runs("unused", tmp_path)
    rows = qg_compare.group_summaries(found, n_resamples=300, seed=3)
    by = {r["label"]: r for r in rows}
    assert by["my_new_net"]["new"] and not by["mlp"]["new"] and by["my_new_net"]["n_seeds"] == 3
    direct = qg_compare.paired_difference(
        by["my_new_net"]["group"], by["resnet_pc_1024_m"]["group"], n_resamples=300, seed=3
    )
    assert (by["my_new_net"]["delta_lo"], by["my_new_net"]["delta_hi"]) == (direct["lo"], direct["hi"])
    assert by["my_new_net"]["delta"] == pytest.approx(direct["delta"], abs=1e-12)
    assert by["resnet_pc_1024_m"]["delta"] == 0.0 and by["resnet_pc_1024_m"]["delta_lo"] == 0.0
    assert by["mlp"]["auc_std"] is None and by["mlp"]["auc_lo"] < by["mlp"]["auc"] < by["mlp"]["auc_hi"]
    fig = qg_compare.delta_figure(rows)  # one panel, three models with error bars, lines at 0 and +0.02
    assert len(fig.axes) == 1 and len(fig.axes[0].get_yticklabels()) == 3
    vertical = [line.get_xdata() for line in fig.axes[0].lines if line.get_linestyle() in ("-", "--")]
    assert {float(x[0]) for x in vertical if len(x) == 2 and x[0] == x[1]} == {0.0, qg_compare.GOAL_MARGIN}
    matplotlib.pyplot.close(fig)
    table = qg_compare.summary_table(rows).splitlines()
    assert len(table) == 2 + 3 and table[2].startswith("| mlp |") and "± n/a" in table[2]
    assert "| 0, 1, 2 (3) |" in table[3] and "+0.0000 [+0.0000, +0.0000] vs resnet_pc_1024_m" in table[4]

    _write(tmp_path, "mlp", y[::-1].copy(), s[6], seed=1)  # another jet order: pairing must refuse
    found = qg_compare.load_runs("unused", tmp_path)
    with pytest.raises(ValueError, match=r"mlp@seed0 and mlp@seed1 have different test labels"):
        qg_compare.group_summaries(found, n_resamples=50)
    broken = [r | {"scores": np.full(4000, np.nan)} if r["run"] == "mlp@seed1" else r for r in found]
    with pytest.raises(ValueError, match=r"mlp@seed1: scores must be finite"):
        qg_compare.group_summaries(broken, n_resamples=50)
    short = [r for r in found if r["run"] == "resnet_pc_1024_m@seed0"][0] | {"labels": y[:100], "run": "old"}
    with pytest.raises(ValueError, match=r"runs my_new_net@seed0 and old .*4000 and 100 jets"):
        qg_compare.paired_difference([r for r in found if r["run"] == "my_new_net@seed0"], [short])


def _row(label: str, level: str, auc: float, lo: float, hi: float, delta=None, dlo=None, dhi=None, **extra):
    model = label.removesuffix("_particle")
    row = {"label": label, "name": label, "model": model, "level": level, "new": qg_compare.is_new_model(model)}
    row.update(max_train_jets=0, auc=auc, auc_lo=lo, auc_hi=hi, delta=delta, delta_lo=dlo, delta_hi=dhi)
    return row | extra


def test_goals_met_only_when_the_interval_excludes_the_threshold():
    rows = [
        _row("mlp", "detector", 0.78, 0.765, 0.79, -0.01, -0.02, 0.0),
        _row("resnet_pc_1024_m", "detector", 0.79, 0.78, 0.80, 0.0, 0.0, 0.0),
        _row("particlenet_lite", "detector", 0.815, 0.80, 0.83, 0.025, 0.018, 0.032),
        _row("transformer_small", "detector", 0.81, 0.80, 0.82, 0.021, 0.0205, 0.0215),
        _row("pfn_particle", "particle", 0.905, 0.899, 0.911),
        _row("particlenet_lite_particle", "particle", 0.95, 0.94, 0.96, max_train_jets=2000),  # not the full set
    ]
    g = qg_compare.goals(rows)
    assert tuple(g) == qg_compare.GOAL_KEYS
    assert g["best_new_model"] == "particlenet_lite" and g["delta_auc_vs_resnet_pc_1024_m"] == 0.025
    assert (g["delta_auc_ci_low"], g["delta_auc_ci_high"]) == (0.018, 0.032)
    assert g["met"] == {"mlp_auc": True, "delta_auc_vs_resnet_pc_1024_m": False, "particle_level_best_auc": False}
    assert g["particle_level_best_model"] == "pfn_particle" and g["particle_level_best_auc_ci_low"] == 0.899
    rows[2].update(delta_lo=0.0201)  # now the interval excludes 0.02
    rows[0].update(auc_hi=0.7985)  # and the MLP's interval leaves the 0.778 ± 0.02 window
    rows[4].update(auc_lo=0.9001)
    g = qg_compare.goals(rows)
    assert g["met"] == {"mlp_auc": False, "delta_auc_vs_resnet_pc_1024_m": True, "particle_level_best_auc": True}
    text = qg_compare.goals_text(g, "demo")
    assert text.count("**met**") == 2 and "**not met**" in text and "demo profile" in text
    assert qg_compare.is_report_model("sparse_cnn_800") and qg_compare.is_new_model("pfn")


def test_learning_curve(tmp_path):
    y, s = _binormal(2000, [0.8, 1.0, 1.1, 0.9, 1.2, 1.15], 0.5, seed=6)
    for i, limit in enumerate((1000, 3000, 0)):
        _write(tmp_path, "pfn_particle", y, s[i], level="particle", limit=limit)
    _write(tmp_path, "particlenet_lite_particle", y, s[3], level="particle", limit=1000)
    for seed in (0, 1):
        _write(tmp_path, "particlenet_lite_particle", y, s[4 + seed], seed=seed, level="particle")
    rows = qg_compare.group_summaries(qg_compare.load_runs("unused", tmp_path), n_resamples=200)
    assert qg_compare.learning_curve_models(rows) == ["pfn_particle", "particlenet_lite_particle"]
    curve = qg_compare.learning_curve(rows, "pfn_particle")
    assert [p["n_train"] for p in curve] == [1000, 3000, 9000]
    assert [p["auc"] for p in curve] == pytest.approx([metrics.roc_auc(y, r) for r in s[:3]])
    assert all(p["auc_lo"] < p["auc"] < p["auc_hi"] and p["n_seeds"] == 1 for p in curve)
    pn = qg_compare.learning_curve(rows, "particlenet_lite_particle")
    assert [(p["n_train"], p["n_seeds"]) for p in pn] == [(1000, 1), (9000, 2)]
    assert pn[1]["auc"] == pytest.approx(np.mean([metrics.roc_auc(y, r) for r in s[4:]]))
    labels = [r["label"] for r in rows if r["name"] == "pfn_particle"]
    assert labels == ["pfn_particle", "pfn_particle (1000 training jets)", "pfn_particle (3000 training jets)"]
    fig = qg_compare.learning_curve_figure(rows)
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].lines) >= 2 + len(qg_compare.PUBLISHED_LEARNING)
    matplotlib.pyplot.close(fig)


def test_seed_spread_widens_the_difference_interval():
    """Welch t half-width of the seed means added in quadrature to the paired bootstrap's half-widths."""
    from scipy import stats

    def group(aucs):
        return {"group": [{"auc": a} for a in aucs]}

    new = group([0.82, 0.83, 0.84]) | {"delta": 0.08, "delta_lo": 0.07, "delta_hi": 0.09}
    ref = group([0.70, 0.75, 0.80])
    lo, hi = qg_compare.with_seed_spread(new, ref, 0.95)
    se2 = np.var([0.82, 0.83, 0.84], ddof=1) / 3 + np.var([0.70, 0.75, 0.80], ddof=1) / 3
    df = se2**2 / (
        (np.var([0.82, 0.83, 0.84], ddof=1) / 3) ** 2 / 2 + (np.var([0.70, 0.75, 0.80], ddof=1) / 3) ** 2 / 2
    )
    seed_hw = stats.t.ppf(0.975, df) * np.sqrt(se2)
    assert lo == pytest.approx(0.08 - np.hypot(0.01, seed_hw)) and hi == pytest.approx(0.08 + np.hypot(0.01, seed_hw))
    assert lo < 0.02 < 0.07  # the jets-only interval clears the goal, the one with the seeds does not
    assert qg_compare.with_seed_spread(new, group([0.75]), 0.95) == (None, None)  # one seed: no spread known
    row = {"delta": 0.08, "delta_lo": 0.07, "delta_hi": 0.09, "delta_seed_lo": lo}
    assert not qg_compare._beats(row) and qg_compare._beats(row | {"delta_seed_lo": None})
