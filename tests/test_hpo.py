"""Hyperparameter search (jetcloud.hpo, jetcloud.qg.hpo, jetcloud.atlas.hpo): spaces, Hyperband pruning, SQLite
resume after a killed worker, two workers on one study, the best trial as a preset the training code loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from jetcloud import hpo

optuna.logging.set_verbosity(optuna.logging.WARNING)

LIB = str(Path(__file__).resolve().parents[1] / "lib")

#: A study worker: a cheap objective (three "epochs" reported to Hyperband) run by hpo.run_study.
WORKER = """
import sys, time
from jetcloud import hpo
url, name, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
study = hpo.create_study(name, url, "minimize", seed=int(sys.argv[5]), max_epochs=3)
def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    report = hpo.pruning_callback(trial, "loss")
    for epoch in (1, 2, 3):
        time.sleep(pause)
        report(epoch, {"loss": x * x + 1.0 / epoch})
    return x * x
hpo.run_study(study, objective, n, total=False)
"""


def _worker(url: str, name: str, n: int, pause: float, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": LIB}
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, str(n), str(pause), str(seed)], env=env)


def _tiny_space() -> dict:
    return {
        "direction": "maximize",
        "metric": "validation AUC",
        "sections": {
            "settings": {"lr": {"low": 1.0e-5, "high": 3.0e-2, "log": True}, "batch_size": {"choices": [16, 32]}},
            "model": {"width": {"choices": [4, 8]}, "depth": {"low": 1, "high": 2}},
            "data": {"k": {"choices": [6, 8]}},
        },
    }


def test_builtin_spaces_load_and_bad_ones_fail(tmp_path):
    atlas, qg = hpo.load_space(hpo.space_file("atlas")), hpo.load_space(hpo.space_file("qg"))
    assert atlas["direction"] == "minimize" and qg["direction"] == "maximize"
    assert {"cell_weight", "track_weight"} <= set(atlas["sections"]["loss"])
    assert qg["sections"]["data"]["k"]["choices"] and qg["sections"]["settings"]["lr"]["log"] is True
    bad = tmp_path / "bad.yaml"
    for text, match in (
        ("direction: up\n", "direction"),
        ("settings:\n  lr: {low: 1e-3, high: 1.0}\n", "floats need a dot"),
        ("settings:\n  lr: {low: 0.0, high: 1.0, log: true}\n", "log range"),
        ("a:\n  x: {choices: [1]}\nb:\n  x: {choices: [2]}\n", "two sections"),
    ):
        bad.write_text(text)
        with pytest.raises(ValueError, match=match):
            hpo.load_space(bad)


def test_tiny_qg_study_prunes_and_its_best_preset_trains(tmp_path, one_torch_thread, write_toy_qg):
    from jetcloud.qg import hpo as qg_hpo
    from jetcloud.qg.runner import train_run

    write_toy_qg(tmp_path / "QG8.h5")
    space = _tiny_space()
    url = hpo.default_storage("smoke", "tiny")
    study = hpo.create_study("tiny", url, "maximize", seed=3, max_epochs=3, space=space)
    objective = qg_hpo.Objective(
        "smoke", "mlp", space, tmp_path / "trials", seed=3, data=tmp_path, epochs=3, device="cpu", amp="none"
    )
    assert hpo.run_study(study, objective, n_trials=6) == 6
    summary = hpo.best_summary(study)
    assert summary["n_pruned"] >= 1 and summary["n_complete"] >= 1, summary
    assert 0.0 <= summary["best_value"] <= 1.0 and summary["best_seed"] == 3 + summary["best_trial"]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(1 <= len(t.intermediate_values) <= 3 for t in pruned)  # reported per epoch, then stopped
    assert hpo.run_study(study, objective, n_trials=6) == 0  # the study already holds 6 finished trials

    name, entry = qg_hpo.write_best_preset(study, "mlp", "smoke", epochs=1, device="cpu", amp="none")
    assert name == "best_tiny" and entry["settings"]["lr"] == study.best_params["lr"]
    preset = qg_hpo.load_best_preset("smoke", name)  # checked like presets/qg.yaml
    run = train_run("smoke", "mlp", data=tmp_path, k=entry["k"], out=tmp_path / "best", **preset["settings"])
    assert run.result.epochs_done == 1 and run.settings["batch_size"] == study.best_params["batch_size"]
    for make in (hpo.history_figure, hpo.importance_figure, hpo.parallel_figure, hpo.intermediate_figure):
        assert make(study).axes  # the four figures draw from this study


def test_same_seed_same_study(tmp_path):
    def values(name: str) -> list[float]:
        study = hpo.create_study(name, f"sqlite:///{tmp_path / 'seeds.db'}", "minimize", seed=7, max_epochs=1)
        hpo.run_study(study, lambda t: t.suggest_float("x", -1.0, 1.0) ** 2, 5)
        return [t.params["x"] for t in study.trials]

    assert values("a") == values("b")


def test_killed_study_resumes_with_its_finished_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    worker = _worker(url, "killed", 50, 0.15, 0)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.3)
            try:
                if len(hpo.finished_trials(optuna.load_study(study_name="killed", storage=url))) >= 2:
                    break
            except KeyError:  # the worker has not created the study yet
                continue
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(10)
    study = hpo.create_study("killed", url, "minimize", seed=0, max_epochs=3)
    kept = {t.number: t.value for t in hpo.finished_trials(study)}
    assert len(kept) >= 2
    hpo.run_study(study, lambda t: t.suggest_float("x", -1.0, 1.0) ** 2, n_trials=len(kept) + 2)
    after = hpo.finished_trials(study)
    assert len(after) == len(kept) + 2
    assert {t.number: t.value for t in after if t.number in kept} == kept  # the finished trials are kept


def test_two_workers_share_one_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    hpo.create_study("shared", url, "minimize", seed=0, max_epochs=3)  # created once, both workers load it
    workers = [_worker(url, "shared", 4, 0.02, seed) for seed in (1, 2)]
    assert [w.wait(90) for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert len(trials) == 8 and sorted(t.number for t in trials) == list(range(8))
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)


def test_best_atlas_preset_loads_in_training_setup():
    from jetcloud.atlas import hpo as atlas_hpo
    from jetcloud.atlas import jetpointnet
    from jetcloud.train import CellTrackLoss
    from jetcloud.train.presets import PresetError

    space = hpo.load_space(hpo.space_file("atlas"))
    study = hpo.create_study("atl", hpo.default_storage("smoke", "atl"), "minimize", seed=0, max_epochs=2, space=space)
    params = {"lr": 1.0e-3, "weight_decay": 1.0e-5, "batch_size": 32, "width": 16, "dropout": 0.1}
    params |= {"cell_weight": 0.5, "track_weight": 2.0}
    dists = {}
    for section in space["sections"].values():
        for name, spec in section.items():
            if "choices" in spec:
                dists[name] = optuna.distributions.CategoricalDistribution(spec["choices"])
            else:
                dists[name] = optuna.distributions.FloatDistribution(
                    spec["low"], spec["high"], log=bool(spec.get("log"))
                )
    attrs = {"seed": 4, "model_options": {"width": 16, "dropout": 0.1}}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=0.25, user_attrs=attrs))
    name, entry = atlas_hpo.write_best_preset(study, "smoke", epochs=2)
    assert name == "best_atl" and entry["model_options"] == attrs["model_options"]
    config, loss = jetpointnet.training_setup(name, {}, presets_file=atlas_hpo.preset_path("smoke"), seed=1)
    assert (config.lr, config.batch_size, config.epochs, config.schedule) == (1.0e-3, 32, 2, "cosine")
    preset = {key: entry[key] for key in ("description", "settings", "loss")}  # as written to the file
    assert isinstance(loss, CellTrackLoss) and (loss.cell_weight, loss.track_weight) == (0.5, 2.0)
    with pytest.raises(ValueError, match="unknown preset"):
        jetpointnet.training_setup(name, {})  # only with the presets file of notebook 10
    hpo.write_preset(atlas_hpo.preset_path("smoke"), "track", {**preset, "description": "shadows a built-in"})
    with pytest.raises(PresetError, match="also defined in the built-in presets"):
        jetpointnet.training_setup(name, {}, presets_file=atlas_hpo.preset_path("smoke"))


def test_a_study_remembers_its_data(tmp_path):
    """The data fingerprint follows the manifest's inputs; a study resumed on other data is refused."""
    from jetcloud.io.manifest import MANIFEST_NAME

    data = tmp_path / "data"
    data.mkdir()
    (data / "QG8.h5").write_bytes(b"x")
    by_listing = hpo.data_fingerprint(data)
    (data / MANIFEST_NAME).write_text(json.dumps({"inputs": [{"path": "raw.h5", "sha256": "aa", "size": 1}]}))
    first = hpo.data_fingerprint(data)
    assert len(first) == 12 and first != by_listing
    (data / MANIFEST_NAME).write_text(json.dumps({"inputs": [{"path": "raw.h5", "sha256": "bb", "size": 1}]}))
    second = hpo.data_fingerprint(data)
    assert second != first
    url = f"sqlite:///{tmp_path / 'fp.db'}"
    study = hpo.create_study("fp", url, "minimize", seed=0, max_epochs=1, data=first)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert hpo.create_study("fp", url, "minimize", seed=0, max_epochs=1, data=first).user_attrs["data"] == first
    with pytest.raises(ValueError, match=rf"study 'fp' .* other data \(fingerprint {first}, now {second}\)"):
        hpo.create_study("fp", url, "minimize", seed=0, max_epochs=1, data=second)
    with pytest.raises(FileNotFoundError, match="no training data"):
        hpo.data_fingerprint(tmp_path / "missing")
