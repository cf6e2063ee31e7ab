"""The ``jetcloud`` command (jetcloud.cli), run as a subprocess the way users and torchrun run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jetcloud import cli

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This checkout's lib first on the path; build / data / figures in ``tmp_path``; one thread."""
    path = os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "JETCLOUD_BUILD": str(tmp_path / "build"),
        "JETCLOUD_DATA": str(tmp_path / "data"),
        "JETCLOUD_FIGURES": str(tmp_path / "figures"),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        **extra,
    }


def jetcloud(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m jetcloud.cli ARGS`` (what the console script runs)."""
    cmd = [sys.executable, "-m", "jetcloud.cli", *map(str, args)]
    return subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


# ---- files --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mltree_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid MLTree file (RNTuple): 3 events with all 120 branches, and CellGeo."""
    from jetcloud.atlas.mltree_schema import example_cellgeo, example_events
    from jetcloud.atlas.sim.writers import write_mltree

    return write_mltree(tmp_path_factory.mktemp("mltree") / "mltree.root", example_events(3), example_cellgeo())


@pytest.fixture(scope="module")
def e2e_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid E2E file: 4 training and 2 test jet images."""
    from jetcloud.qg.e2e import E2EWriter

    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("e2e") / "qg.h5"
    with E2EWriter(path, n_train=4, n_test=2) as writer:
        for split, n in (("train", 4), ("test", 2)):
            images = (rng.random((n, 125, 125, 3)) < 0.01).astype(np.float32)
            meta = np.stack([rng.uniform(70, 200, n), rng.uniform(5, 40, n), rng.integers(0, 2, n)], 1)
            writer.append(split, images, meta.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def qg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``QG200.h5`` file like notebook 07's: 48 training and 16 test jets of 200 points x 5 features."""
    import h5py

    rng = np.random.default_rng(1)
    directory = tmp_path_factory.mktemp("qg")
    with h5py.File(directory / "QG200.h5", "w") as f:
        for group, n in (("train_dataset", 48), ("test_dataset", 16)):
            y = np.arange(n) % 2
            x = rng.normal(size=(n, 200, 5)).astype(np.float32) + y[:, None, None] * 0.5
            f[f"{group}/X"] = x
            f[f"{group}/Y"] = y.astype(np.float32)
    return directory


# ---- help and usage -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [[], ["check"], ["train"], ["train", "qg"], ["train", "atlas"], ["run"]])
def test_help_everywhere(tmp_path: Path, args: list[str]) -> None:
    done = jetcloud(tmp_path, *args, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: jetcloud {' '.join(args)}".rstrip())


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in ([], ["check"], ["train", "higgs"], ["run", "--only", "3"], ["train", "qg", "--device", "tpu"]):
        done = jetcloud(tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "usage: jetcloud" in done.stderr


def test_import_is_cheap_and_python_m_jetcloud_works(tmp_path: Path) -> None:
    code = "import sys, jetcloud.cli; assert not {'torch', 'jetcloud.atlas', 'jetcloud.qg'} & set(sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "jetcloud", "--help"], env=_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0 and "{check,train,run}" in done.stdout


# ---- check --------------------------------------------------------------------------------------------------
def test_check_good_mltree_and_e2e(tmp_path: Path, mltree_file: Path, e2e_file: Path) -> None:
    done = jetcloud(tmp_path, "check", mltree_file, e2e_file)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{mltree_file}: MLTree, EventTree (RNTuple) 3 entries, 49 branches OK; CellGeo")
    assert lines[1].startswith(f"{e2e_file}: E2E HDF5, train 4 jets, test 2 jets; layout OK")
    assert lines[2] == "2 of 2 files OK"


def test_check_all_branches_and_invariants(tmp_path: Path, mltree_file: Path) -> None:
    done = jetcloud(tmp_path, "check", "--all-branches", "--invariants", mltree_file)
    assert done.returncode == 0, done.stderr
    assert "120 branches OK" in done.stdout and "invariants OK" in done.stdout


def test_check_bad_files_exit_1_naming_the_file(tmp_path: Path, mltree_file: Path, e2e_file: Path) -> None:
    import h5py
    import uproot

    wrong_tree = tmp_path / "wrong_tree.root"
    with uproot.recreate(wrong_tree) as f:
        f["Other"] = {"x": np.arange(3, dtype=np.int32)}
    not_root = tmp_path / "notes.root"
    not_root.write_text("not a ROOT file\n")
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(mltree_file.read_bytes()[: mltree_file.stat().st_size // 2])
    no_images = tmp_path / "no_images.h5"
    with h5py.File(no_images, "w") as f:
        f["train_meta"] = np.zeros((2, 3), np.float32)
    expected = {
        wrong_tree: "has no tree 'EventTree'; it contains: Other",
        not_root: "neither a ROOT file (MLTree) nor an HDF5 file (E2E)",
        truncated: "truncated",
        no_images: "missing keys",
        tmp_path / "missing.h5": "no such file",
    }
    for path, message in expected.items():
        done = jetcloud(tmp_path, "check", path)
        assert done.returncode == 1, (path, done.stdout, done.stderr)
        assert str(path) in done.stderr and message in done.stderr, done.stderr
    done = jetcloud(tmp_path, "check", mltree_file, not_root, e2e_file)  # the good files are still reported
    assert done.returncode == 1
    assert f"{mltree_file}: MLTree" in done.stdout and f"{e2e_file}: E2E HDF5" in done.stdout
    assert "2 of 3 files OK" in done.stderr


# ---- train --------------------------------------------------------------------------------------------------
def test_train_qg_one_epoch_into_the_notebook_run_directory(tmp_path: Path, qg_dir: Path) -> None:
    args = ["train", "qg", "--model", "mlp", "--profile", "smoke", "--data", qg_dir, "--epochs", "1"]
    done = jetcloud(tmp_path, *args, "--batch-size", "16", "--device", "cpu", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "build" / "smoke" / "runs" / "qg" / "mlp@seed0-epochs1-bs16"  # qg_train.run_dir / run_tag
    assert {"best.pt", "last.pt", "history.csv", "record.json", "scores_val.npz", "scores_test.npz"} <= {
        p.name for p in run.iterdir()
    }
    record = json.loads((run / "record.json").read_text())
    assert record["workflow"] == "qg" and record["parameters"]["epochs"] == 1
    assert 0.0 <= record["metrics"]["auc"] <= 1.0 and record["metrics"]["epochs"] == 1
    assert done.stdout.startswith("mlp@seed0-epochs1-bs16: 1 epochs") and str(run) in done.stdout


def test_train_qg_under_torchrun_two_processes(tmp_path: Path, qg_dir: Path) -> None:
    """``torchrun --nproc_per_node 2 -m jetcloud.cli train qg``: DDP on CPU (gloo), rank 0 writes and prints."""
    from jetcloud import train

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "jetcloud.cli", "train", "qg", "--data", str(qg_dir), "--out", str(out), "--epochs", "1"]
    cmd += ["--batch-size", "8", "--device", "cpu"]
    done = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert train.load_checkpoint(out / "last.pt")["world_size"] == 2
    assert (out / "record.json").is_file() and (out / "scores_test.npz").is_file()
    assert sum("1 epochs, best epoch" in line for line in done.stdout.splitlines()) == 1  # rank 0 only


def test_train_without_data_names_the_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = jetcloud(tmp_path, "train", "qg", "--data", empty, "--epochs", "1", "--device", "cpu")
    assert done.returncode == 1
    assert f"no QG{{K}}.h5 files in {empty}" in done.stderr and "Traceback" not in done.stderr
    done = jetcloud(tmp_path, "train", "atlas", "--data", empty, "--model", "resnet", "--device", "cpu")
    assert done.returncode == 1 and "'resnet' is not trained by this command" in done.stderr


# ---- run ----------------------------------------------------------------------------------------------------
def test_run_executes_run_all_sh(tmp_path: Path) -> None:
    done = jetcloud(tmp_path, "run", "--profile", "smoke", "--only", "00", "06", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "papermill" in done.stdout and "00_simulate_atlas_events" in done.stdout
    assert "06_simulate_qg_jets" in done.stdout and "03_train" not in done.stdout


def test_run_outside_a_checkout(tmp_path: Path) -> None:
    assert cli.find_checkout(ROOT / "notebooks") == ROOT
    with pytest.raises(cli.CommandError, match="not inside a jetcloud repository checkout"):
        cli.find_checkout(tmp_path, package_fallback=False)


def test_file_kind(tmp_path: Path, mltree_file: Path, e2e_file: Path) -> None:
    assert cli.file_kind(mltree_file) == "root" and cli.file_kind(e2e_file) == "hdf5"
    empty = tmp_path / "empty.h5"
    empty.touch()
    with pytest.raises(cli.CommandError, match=f"{empty}: neither .* and is empty"):
        cli.file_kind(empty)
