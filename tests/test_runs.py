"""jetcloud.runs: run directories, run records, the run table; parallel runs of notebook 08 never collide."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from jetcloud import nbtools, runs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


# ---- run_dir, derive_tag --------------------------------------------------------------------------------------
def test_run_dir_layout_and_names(isolated_outputs):
    base = isolated_outputs["build"] / "demo" / "runs" / "qg"
    assert runs.run_dir("demo", "qg", "mlp", "seed1") == base / "mlp@seed1"
    assert runs.run_dir("demo", "qg", "mlp") == base / "mlp"
    assert runs.runs_root("demo", "atlas") == isolated_outputs["build"] / "demo" / "runs" / "atlas"
    for bad in ("", "a/b", "../x", "a@b", ".hidden"):
        with pytest.raises(ValueError, match="run name"):
            runs.run_dir("demo", "qg", bad)
    with pytest.raises(ValueError, match="run tag"):
        runs.run_dir("demo", "qg", "mlp", "x/y")
    with pytest.raises(ValueError, match="workflow"):
        runs.run_dir("demo", "QG/x", "mlp")
    with pytest.raises(ValueError, match="unknown profile"):
        runs.run_dir("medium", "qg", "mlp")


def test_derive_tag_keeps_the_seed_and_what_differs():
    baseline = {"lr": 3e-4, "epochs": 20, "seed": 0}
    assert runs.derive_tag({"seed": 0, "lr": 3e-4, "epochs": 20}, baseline) == "seed0"
    assert runs.derive_tag({"seed": 1, "lr": 1e-3, "epochs": 20}, baseline) == "seed1-lr0.001"
    assert runs.derive_tag({"seed": 1, "batch_size": 64, "steps": None}, short={"batch_size": "bs"}) == "seed1-bs64"
    assert runs.derive_tag({"flag": True, "name": "a/b"}, always=()) == "flagtrue-namea_b"
    long_a = runs.derive_tag({"x": "a" * 100 + "1"}, always=())
    long_b = runs.derive_tag({"x": "a" * 100 + "2"}, always=())
    assert len(long_a) == runs.MAX_TAG and long_a != long_b  # cut, but still distinct


def test_qg_run_tag_separates_seeds_and_learning_rates(isolated_outputs):
    from jetcloud.qg import train as qg_train

    tags = {
        qg_train.run_tag("mlp", qg_train.preset("mlp", seed=seed, lr=lr, epochs=2))
        for seed in (0, 1)
        for lr in (None, 1e-4)
    }
    assert tags == {"seed0-epochs2", "seed1-epochs2", "seed0-epochs2-lr0.0001", "seed1-epochs2-lr0.0001"}
    settings = qg_train.preset("mlp", seed=3)
    assert qg_train.run_tag("mlp", settings, k_points=100, val_fraction=0.2) == "seed3-k100-val0.2"
    out = qg_train.run_dir("smoke", "pfn", True, "seed3")
    assert out == isolated_outputs["build"] / "smoke" / "runs" / "qg" / "pfn_particle@seed3"


# ---- write_record, read_record, collect_runs ------------------------------------------------------------------
def test_record_holds_parameters_commit_versions_and_metrics(isolated_outputs):
    out = runs.run_dir("smoke", "qg", "mlp", "seed0")
    parameters = {"profile": "smoke", "seed": 0, "lr": 0.0, "device": "cpu"}
    path = runs.write_record(out, parameters=parameters, metrics={"auc": np.float32(0.75), "rej50": None})
    assert path == out / runs.RECORD_NAME
    assert sorted(p.name for p in out.iterdir()) == ["record.json"]  # no temporary left behind
    record = json.loads(path.read_text())
    assert record["parameters"] == parameters
    assert record["metrics"] == {"auc": 0.75, "rej50": None}
    assert (record["run"], record["name"], record["tag"], record["workflow"]) == ("mlp@seed0", "mlp", "seed0", "qg")
    assert record["profile"] == "smoke" and record["host"] and record["created_utc"]
    assert record["versions"]["python"] == platform.python_version()
    assert {"numpy", "torch"} <= set(record["versions"])
    assert record["versions"]["numpy"] == np.__version__
    git = record["git"]
    if (ROOT / ".git").exists():  # a checkout (worktrees have a .git file): commit and dirty flag
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)
    assert runs.read_record(out) == record


def test_write_record_rejects_bad_metrics(isolated_outputs):
    out = runs.run_dir("smoke", "qg", "mlp")
    with pytest.raises(ValueError, match=r"record.json: metric 'auc'.*finite"):
        runs.write_record(out, parameters={}, metrics={"auc": float("nan")})
    with pytest.raises(ValueError, match="reserved"):
        runs.write_record(out, parameters={}, metrics={"run": 1})
    assert not out.exists() or not any(out.iterdir())


def test_collect_runs_table(isolated_outputs):
    for seed, auc in ((0, 0.7), (1, 0.8)):
        out = runs.run_dir("smoke", "qg", "mlp", f"seed{seed}")
        runs.write_record(out, parameters={"seed": seed}, metrics={"auc": auc, "settings": {"lr": 1e-3}})
    running = runs.run_dir("smoke", "qg", "pfn", "seed0")
    running.mkdir(parents=True)  # no record yet: still running (or failed), skipped
    rows = runs.collect_runs("smoke", "qg")
    assert [r["run"] for r in rows] == ["mlp@seed0", "mlp@seed1"]
    assert [r["param.seed"] for r in rows] == [0, 1] and [r["auc"] for r in rows] == [0.7, 0.8]
    assert rows[0]["settings.lr"] == 1e-3 and rows[0]["name"] == "mlp" and rows[0]["tag"] == "seed0"
    assert rows[0]["dir"] == str(runs.run_dir("smoke", "qg", "mlp", "seed0"))
    assert "version.numpy" in rows[0] and "commit" in rows[0]
    assert runs.collect_runs("smoke", "atlas") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [("{not json", "corrupt run record"), ('{"run": "x"}', "not a run record"), ("[1, 2]", "not a run record")],
)
def test_corrupt_record_names_the_file(isolated_outputs, text, match):
    out = runs.run_dir("smoke", "qg", "mlp", "seed0")
    out.mkdir(parents=True)
    (out / runs.RECORD_NAME).write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        runs.collect_runs("smoke", "qg")
    assert str(out / runs.RECORD_NAME) in str(err.value)


# ---- per-run metrics, notebook parameters ---------------------------------------------------------------------
def test_per_run_metrics_files_are_separate(isolated_outputs):
    a = nbtools.record_metrics("08_train_qg_model", {"auc": 0.7}, "smoke", run="mlp@seed0")
    b = nbtools.record_metrics("08_train_qg_model", {"auc": 0.8}, "smoke", run="mlp@seed1")
    assert a.name == "08_train_qg_model@mlp@seed0.json" and b.name == "08_train_qg_model@mlp@seed1.json"
    expected = {"mlp@seed0": {"auc": 0.7}, "mlp@seed1": {"auc": 0.8}}
    assert nbtools.read_run_metrics("08_train_qg_model", "smoke") == expected
    assert json.loads(a.read_text())["run"] == "mlp@seed0"
    with pytest.raises(ValueError, match="run must be"):
        nbtools.record_metrics("08_train_qg_model", {"auc": 0.7}, "smoke", run="../x")


def test_notebook_parameters_reads_the_parameters_cell():
    namespace = {"profile": "demo", "seed": 3, "model": "pfn", "unrelated": 1}
    namespace.update({k: 0 for k in ("epochs", "batch_size", "lr", "max_steps_per_epoch", "k_points")})
    namespace.update(
        particle_level=False, val_fraction=0.1, device="cpu", resume=True, run_tag="", preset="", max_train_jets=0
    )
    parameters = nbtools.notebook_parameters("08_train_qg_model", namespace)
    assert parameters["seed"] == 3 and parameters["run_tag"] == "" and "unrelated" not in parameters
    with pytest.raises(KeyError, match="08_train_qg_model.ipynb: parameters"):
        nbtools.notebook_parameters("08_train_qg_model", {"profile": "demo"})
    with pytest.raises(FileNotFoundError, match="99_none.ipynb"):
        nbtools.notebook_parameters("99_none", {})


# ---- two smoke runs of notebook 08 at once ------------------------------------------------------------------
def _write_tiny_qg(directory: Path, k: int = 200, n_train: int = 120, n_test: int = 60) -> None:
    """A ``QG{k}.h5`` as notebook 07 writes it (train/test X [n, k, 5], Y 0/1), quarks a little harder."""
    rng = np.random.default_rng(7)
    directory.mkdir(parents=True, exist_ok=True)
    with h5py.File(directory / f"QG{k}.h5", "w") as f:
        for group, n in (("train_dataset", n_train), ("test_dataset", n_test)):
            y = (np.arange(n) % 2).astype(np.float32)
            x = np.zeros((n, k, 5), np.float32)
            x[:, :30] = rng.random((n, 30, 5)).astype(np.float32) * (1 + y[:, None, None])
            f[f"{group}/X"], f[f"{group}/Y"] = x, y


def _papermill(notebook: str, out: Path, env: dict[str, str], **parameters: object) -> subprocess.Popen:
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = "jetcloud" if "jetcloud" in KernelSpecManager().find_kernel_specs() else "python3"
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOKS / notebook), str(out), "-k", kernel]
    cmd += ["--cwd", str(NOTEBOOKS), "--no-progress-bar"]
    for key, value in parameters.items():
        cmd += ["-p", key, str(value)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_parallel_runs_of_notebook_08_never_collide(tmp_path, isolated_outputs):
    pytest.importorskip("papermill")
    _write_tiny_qg(isolated_outputs["data"] / "processed" / "smoke" / "qg")
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])])
    settings = {"profile": "smoke", "device": "cpu", "epochs": 1, "max_steps_per_epoch": 2}
    procs = [_papermill("08_train_qg_model.ipynb", tmp_path / f"08@{s}.ipynb", env, seed=s, **settings) for s in (0, 1)]
    for proc in procs:
        log = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, log[-3000:]

    rows = runs.collect_runs("smoke", "qg")
    assert [r["run"] for r in rows] == ["mlp@seed0-epochs1-bs64-steps2", "mlp@seed1-epochs1-bs64-steps2"]
    assert [r["param.seed"] for r in rows] == [0, 1] and all(r["param.run_tag"] == "" for r in rows)
    for row in rows:
        directory = Path(row["dir"])
        assert {"record.json", "best.pt", "history.csv", "scores_test.npz"} <= {p.name for p in directory.iterdir()}
        assert 0 <= row["auc"] <= 1 and row["model"] == "mlp" and row["version.torch"]
    metrics = nbtools.read_run_metrics("08_train_qg_model", "smoke")
    assert sorted(metrics) == [r["run"] for r in rows]
    assert not nbtools.metrics_path("08_train_qg_model", "smoke").exists()  # no shared file

    compare = _papermill("09_compare_qg_models.ipynb", tmp_path / "09.ipynb", env, profile="smoke")
    log = compare.communicate(timeout=600)[0]
    assert compare.returncode == 0, log[-3000:]
    result = nbtools.read_metrics("09_compare_qg_models", "smoke")
    assert result["n_runs"] == 2 and sorted(result["runs"]) == [r["run"] for r in rows]
    executed = (tmp_path / "09.ipynb").read_text()
    assert re.search(
        r"\| mlp \| detector \| \d+ \| 0, 1 \(2\) \| [0-9.]+ ± [0-9.]+ \|", executed
    )  # seeds 0, 1: one row
