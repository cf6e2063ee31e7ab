"""jetcloud.qg.compare (notebook 09): loading the runs of notebook 08, the tables, the goal verdicts, the figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from jetcloud import runs
from jetcloud.qg import compare as qg_compare
from jetcloud.qg import train as qg_train

matplotlib.use("Agg")


def write_run(
    root: Path, name: str, auc_shift: float, level: str = "detector", scores: bool = True, seed: int = 0, tag: str = ""
) -> None:
    """A run directory as notebook 08 writes it, with scores whose AUC grows with ``auc_shift``."""
    rng = np.random.default_rng(len(name) + 10 * seed)
    labels = np.repeat([0, 1], 200)
    s = 1 / (1 + np.exp(-(rng.normal(size=400) + auc_shift * labels)))
    out = root / (f"{name}@{tag}" if tag else name)
    summary = {
        "model": name.removesuffix("_particle"),
        "level": level,
        "k": 200,
        "params": 1000,
        "epochs": 2,
        "train_seconds": 3.0,
        **qg_train.summarize(labels, s),
    }
    parameters = {"profile": "smoke", "seed": seed, "model": summary["model"], "lr": 0.0, "run_tag": tag}
    runs.write_record(out, parameters=parameters, metrics=summary)
    (out / "history.csv").write_text("epoch,train_loss,val_loss,val_acc\n1,0.7,0.69,0.5\n2,0.6,0.62,0.66\n")
    if scores:
        qg_train.write_scores(out, "test", labels, s)


def test_runs_tables_and_goals(tmp_path):
    write_run(tmp_path, "mlp", 1.0)
    write_run(tmp_path, "particlenet_lite", 2.0)
    write_run(tmp_path, "particlenet_lite_particle", 2.5, level="particle")
    write_run(tmp_path, "broken", 1.0, scores=False)  # no scores_test.npz: skipped with a warning
    runs = qg_compare.load_runs("unused", tmp_path)
    assert [r["run"] for r in runs] == ["mlp", "particlenet_lite", "particlenet_lite_particle"]
    assert runs[0]["history"][1] == {"epoch": 2.0, "train_loss": 0.6, "val_loss": 0.62, "val_acc": 0.66}
    table = qg_compare.results_table(runs).splitlines()
    assert len(table) == 2 + 3 and table[3].startswith("| particlenet_lite | detector | 200 | 1,000 |")

    rows = qg_compare.group_summaries(runs, n_resamples=200)  # ResNet_PC_1024_M not trained: no detector ΔAUC
    goal = qg_compare.goals(rows)
    assert set(goal) == set(qg_compare.GOAL_KEYS)
    assert goal["best_new_model"] == "particlenet_lite" and goal["delta_auc_vs_resnet_pc_1024_m"] is None
    assert goal["met"]["delta_auc_vs_resnet_pc_1024_m"] is None and goal["mlp_auc"] == runs[0]["auc"]
    assert goal["particle_level_best_model"] == "particlenet_lite_particle"
    text = qg_compare.goals_text(goal, "smoke")
    assert "resnet_pc_1024_m not trained" in text and "**not measured**" in text

    write_run(tmp_path, "resnet_pc_1024_m", 1.5)
    rows = qg_compare.group_summaries(qg_compare.load_runs("unused", tmp_path), n_resamples=200)
    goal = qg_compare.goals(rows)
    best = next(r for r in rows if r["label"] == "particlenet_lite")
    assert goal["delta_auc_vs_resnet_pc_1024_m"] == pytest.approx(best["auc"] - goal["resnet_pc_1024_m_auc"])
    assert goal["met"]["delta_auc_vs_resnet_pc_1024_m"] == (goal["delta_auc_ci_low"] > qg_compare.GOAL_MARGIN)
    assert "ΔAUC +" in qg_compare.goals_text(goal)
    assert qg_compare.delta_figure(rows).axes

    for figure in (qg_compare.roc_figure(runs), qg_compare.histories_figure(runs), qg_compare.auc_versus_figure(runs)):
        assert figure.axes
        matplotlib.pyplot.close(figure)


def test_no_runs_and_reference_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        qg_compare.load_runs("unused", tmp_path / "missing")
    assert qg_compare.goals([])["met"] == dict.fromkeys(qg_compare.goals([])["met"])  # every flag None
    assert "no new model" in qg_compare.goals_text(qg_compare.goals([]))
    ref = qg_compare.reference_table(qg_compare.PUBLISHED_CMS, "Reference").splitlines()
    assert ref[0] == "**Reference**" and len(ref) == 4 + len(qg_compare.PUBLISHED_CMS)
    assert "0.7780" in ref[4]  # the report's MLP on the real CMS jets


def test_seed_groups_and_table(tmp_path):
    for seed in (0, 1, 2):
        write_run(tmp_path, "mlp", 1.0 + 0.1 * seed, seed=seed, tag=f"seed{seed}")
    write_run(tmp_path, "pfn", 1.0, tag="seed0")
    found = qg_compare.load_runs("unused", tmp_path)
    assert [r["run"] for r in found] == ["mlp@seed0", "mlp@seed1", "mlp@seed2", "pfn@seed0"]
    groups = qg_compare.seed_groups(found)
    assert [[r["run"] for r in g] for g in groups] == [["mlp@seed0", "mlp@seed1", "mlp@seed2"], ["pfn@seed0"]]
    table = qg_compare.seed_table(found).splitlines()
    aucs = [r["auc"] for r in found[:3]]
    assert table[2].startswith(f"| mlp | 3 | 0, 1, 2 | {np.mean(aucs):.4g} ± {np.std(aucs, ddof=1):.2g} |")
    assert table[3].startswith(f"| pfn | 1 | 0 | {found[3]['auc']:.4g} |")
