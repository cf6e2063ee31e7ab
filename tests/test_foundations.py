"""Foundations every notebook relies on: paths, atomic writes, manifests, metrics, seeding, figures."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from jetcloud import nbtools, paths, seeds
from jetcloud.io import atomic, manifest


class Boom(RuntimeError):
    pass


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---- paths ----------------------------------------------------------------------------------------------
def test_paths_honour_environment_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("JETCLOUD_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("JETCLOUD_BUILD", str(tmp_path / "b"))
    monkeypatch.setenv("JETCLOUD_FIGURES", str(tmp_path / "f"))
    assert paths.data_dir("demo", "raw", "atlas") == tmp_path / "d" / "raw" / "demo" / "atlas"
    assert paths.build_dir("full", "models") == tmp_path / "b" / "full" / "models"
    assert paths.metrics_dir("smoke") == tmp_path / "b" / "smoke" / "metrics"
    assert paths.figures_dir("smoke") == tmp_path / "f" / "smoke"


def test_paths_default_to_repository(monkeypatch):
    for var in ("JETCLOUD_DATA", "JETCLOUD_BUILD", "JETCLOUD_FIGURES"):
        monkeypatch.delenv(var, raising=False)
    assert paths.data_dir("smoke", "processed") == paths.ROOT / "data" / "processed" / "smoke"
    assert paths.metrics_dir("demo") == paths.ROOT / "build" / "demo" / "metrics"
    assert paths.figures_dir("full") == paths.ROOT / "figures" / "full"
    assert (paths.ROOT / "pyproject.toml").is_file()


def test_paths_reject_unknown_profile_and_stage():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        paths.figures_dir("huge")
    with pytest.raises(ValueError, match="unknown data stage"):
        paths.data_dir("smoke", "cooked")


# ---- atomic writes --------------------------------------------------------------------------------------
def test_atomic_path_success_and_failure_leave_no_temporaries(tmp_path):
    target = tmp_path / "out" / "a.txt"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("first")
    assert target.read_text() == "first"

    with pytest.raises(Boom), atomic.atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise Boom
    assert target.read_text() == "first", "a failed write must keep the previous content"
    assert _leftovers(target.parent) == ["a.txt"]

    new = tmp_path / "out" / "b.txt"
    with pytest.raises(Boom), atomic.atomic_path(new) as tmp:
        tmp.write_text("x")
        raise Boom
    assert not new.exists()
    assert _leftovers(target.parent) == ["a.txt"]


def test_atomic_dir_success_replace_and_failure(tmp_path):
    target = tmp_path / "dataset"
    with atomic.atomic_dir(target, stage="test") as tmp:
        (tmp / "part-0.txt").write_text("0")
    assert _leftovers(target) == [atomic.OUTPUT_MARKER, "part-0.txt"]

    with atomic.atomic_dir(target, stage="test") as tmp:  # replaces the old directory as a whole
        (tmp / "part-1.txt").write_text("1")
    assert _leftovers(target) == [atomic.OUTPUT_MARKER, "part-1.txt"]

    with pytest.raises(Boom), atomic.atomic_dir(target, stage="test") as tmp:
        (tmp / "part-2.txt").write_text("2")
        raise Boom
    assert _leftovers(target) == [atomic.OUTPUT_MARKER, "part-1.txt"]
    assert _leftovers(tmp_path) == ["dataset"]

    with pytest.raises(Boom), atomic.atomic_dir(tmp_path / "never", stage="test") as tmp:
        raise Boom
    assert _leftovers(tmp_path) == ["dataset"]


def test_write_json_converts_numpy_and_paths(tmp_path):
    out = atomic.write_json(tmp_path / "x.json", {"n": np.int64(3), "x": np.float32(0.5), "p": Path("a/b")})
    assert json.loads(out.read_text()) == {"n": 3, "x": 0.5, "p": "a/b"}


# ---- manifest -------------------------------------------------------------------------------------------
def test_write_manifest_for_a_file(tmp_path):
    source = tmp_path / "input.bin"
    content = bytes(range(256)) * 9000  # > 2 MiB: several 1 MiB blocks
    source.write_bytes(content)
    output = tmp_path / "events.root"
    output.write_bytes(b"output")

    written = manifest.write_manifest(
        output,
        inputs=[source],
        parameters={"n_events": np.int64(10), "path": source},
        seed=7,
        wall_time_s=1.23456,
        extra={"note": "test"},
    )
    assert written == tmp_path / "events.root.manifest.json"
    record = json.loads(written.read_text())
    assert record == manifest.read_manifest(output)
    assert record["inputs"] == [
        {"path": source.resolve().as_posix(), "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    ]
    assert record["output_files"][0]["sha256"] == hashlib.sha256(b"output").hexdigest()
    assert record["parameters"] == {"n_events": 10, "path": str(source)}
    assert record["seed"] == 7
    assert record["wall_time_s"] == pytest.approx(1.235)
    assert record["extra"] == {"note": "test"}
    assert record["packages"]["numpy"] == np.__version__
    assert "jetcloud" in record["packages"]
    assert record["python"].count(".") == 2 and record["host"]
    assert record["created_utc"].endswith("+00:00")
    git = record["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    assert _leftovers(tmp_path) == ["events.root", "events.root.manifest.json", "input.bin"]


def test_write_manifest_for_a_directory_and_directory_inputs(tmp_path):
    inputs = tmp_path / "samples"
    inputs.mkdir()
    (inputs / "part-1.parquet").write_bytes(b"1")
    (inputs / "part-0.parquet").write_bytes(b"00")
    (inputs / ".part-2.parquet.tmp-abcd").write_bytes(b"ignored")
    out = tmp_path / "processed"
    out.mkdir()
    (out / "train.npz").write_bytes(b"t")

    written = manifest.write_manifest(out, inputs=[inputs], parameters={}, seed=None, wall_time_s=0)
    assert written == out / "manifest.json"
    record = json.loads(written.read_text())
    assert [Path(e["path"]).name for e in record["inputs"]] == ["part-0.parquet", "part-1.parquet"]
    assert [e["size"] for e in record["inputs"]] == [2, 1]
    assert [Path(e["path"]).name for e in record["output_files"]] == ["train.npz"]  # not manifest.json itself


def test_write_manifest_missing_input_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.root"):
        manifest.write_manifest(tmp_path / "o", inputs=[tmp_path / "nope.root"], parameters={}, seed=0, wall_time_s=0)
    assert _leftovers(tmp_path) == []


def test_sha256_file_streams_blocks(tmp_path):
    data = np.random.default_rng(1).bytes(3 * manifest.BLOCK + 17)
    (tmp_path / "f").write_bytes(data)
    assert manifest.sha256_file(tmp_path / "f", block_size=4096) == hashlib.sha256(data).hexdigest()


def test_package_versions_skips_missing():
    versions = manifest.package_versions(["numpy", "surely-not-installed-jetcloud-xyz"])
    assert versions == {"numpy": np.__version__}


def test_git_state_outside_a_checkout(tmp_path):
    assert manifest.git_state(tmp_path) is None


# ---- metrics --------------------------------------------------------------------------------------------
def test_record_metrics_round_trip(isolated_outputs):
    metrics = {
        "n_events": np.int64(100),
        "auc": np.float32(0.875),
        "resolution": 0.1,
        "model": "pointnet",
        "converged": np.bool_(True),
        "per_bin": np.array([1.0, 2.0]),
        "table": {"lo": 1, "hi": np.float64(2.5)},
    }
    path = nbtools.record_metrics("04_evaluate_jetpointnet", metrics, "demo")
    assert path == isolated_outputs["build"] / "demo" / "metrics" / "04_evaluate_jetpointnet.json"
    assert nbtools.read_metrics("04_evaluate_jetpointnet", "demo") == {
        "n_events": 100,
        "auc": 0.875,
        "resolution": 0.1,
        "model": "pointnet",
        "converged": True,
        "per_bin": [1.0, 2.0],
        "table": {"lo": 1, "hi": 2.5},
    }
    record = json.loads(path.read_text())
    assert record["notebook"] == "04_evaluate_jetpointnet" and record["profile"] == "demo"
    assert _leftovers(path.parent) == ["04_evaluate_jetpointnet.json"]


@pytest.mark.parametrize("bad", [float("nan"), np.float64("inf"), [1.0, float("nan")], {"x": np.nan}])
def test_record_metrics_rejects_nan_and_writes_nothing(bad, isolated_outputs):
    with pytest.raises(ValueError, match="'loss'.*finite"):
        nbtools.record_metrics("03_train_jetpointnet", {"loss": bad}, "smoke")
    assert not (isolated_outputs["build"] / "smoke" / "metrics" / "03_train_jetpointnet.json").exists()


def test_record_metrics_rejects_bad_names_and_types():
    with pytest.raises(ValueError, match="notebook stem"):
        nbtools.record_metrics("notebooks/00_x.ipynb", {"a": 1}, "smoke")
    with pytest.raises(TypeError, match="'x' has type object"):
        nbtools.record_metrics("00_x", {"x": object()}, "smoke")
    with pytest.raises(ValueError, match="unknown profile"):
        nbtools.record_metrics("00_x", {"a": 1}, "medium")


def test_read_metrics_missing_names_notebook():
    with pytest.raises(FileNotFoundError, match="no metrics for 08_train_qg_model.*run_all.sh --profile full"):
        nbtools.read_metrics("08_train_qg_model", "full")


def test_clean_outputs(isolated_outputs):
    nbtools.record_metrics("09_compare_qg_models", {"auc": 0.8}, "smoke")
    figs = isolated_outputs["figures"] / "smoke"
    figs.mkdir(parents=True)
    for name in ("qg_roc.png", "qg_roc.pdf", "atlas_response.png"):
        (figs / name).write_text("x")
    removed = nbtools.clean_outputs("smoke", "09_compare_qg_models", figure_globs=["qg_*"])
    assert sorted(p.name for p in removed) == ["09_compare_qg_models.json", "qg_roc.pdf", "qg_roc.png"]
    assert _leftovers(figs) == ["atlas_response.png"]
    with pytest.raises(ValueError):
        nbtools.clean_outputs("smoke", "09_compare_qg_models", figure_globs=["../*"])


# ---- seeding --------------------------------------------------------------------------------------------
def _draw() -> tuple:
    import torch

    return (random.random(), np.random.random(), torch.rand(3).tolist())  # noqa: NPY002


def test_seed_everything_is_deterministic():
    pytest.importorskip("torch")
    rng_a = nbtools.seed_everything(42)
    a = (*_draw(), rng_a.normal(size=4).tolist())
    rng_b = nbtools.seed_everything(42)
    b = (*_draw(), rng_b.normal(size=4).tolist())
    assert a == b
    assert nbtools.current_seed() == 42
    rng_c = nbtools.seed_everything(43)
    assert (*_draw(), rng_c.normal(size=4).tolist()) != a
    assert isinstance(rng_c, np.random.Generator)


def test_seed_everything_rejects_bad_seeds():
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError):
            nbtools.seed_everything(bad)


def test_pythia_seed_range_and_determinism():
    drawn = {seeds.pythia_seed(s, c) for s in range(20) for c in range(50)}
    assert len(drawn) == 1000, "every (seed, chunk) pair gets its own Pythia seed"
    assert all(1 <= s <= seeds.PYTHIA_SEED_MAX for s in drawn)
    assert seeds.pythia_seed(0) == seeds.pythia_seed(0, 0) == seeds.pythia_seed(0, chunk=0)
    assert seeds.pythia_seed(2**40, 3) <= 900_000_000
    with pytest.raises(ValueError):
        seeds.pythia_seed(0, chunk=-1)


# ---- figures --------------------------------------------------------------------------------------------
def test_plots_save_writes_png_and_pdf_and_closes(isolated_outputs):
    import matplotlib.pyplot as plt

    from jetcloud import plots

    plots.use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    plots.atlas_label(ax, rlabel="√s = 13 TeV")
    written = plots.save(fig, "test_line", "smoke")
    figs = isolated_outputs["figures"] / "smoke"
    assert written == [figs / "test_line.png", figs / "test_line.pdf"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[1].read_bytes()[:5] == b"%PDF-"
    assert _leftovers(figs) == ["test_line.pdf", "test_line.png"]
    assert not plt.fignum_exists(fig.number)


def test_plots_label_never_claims_atlas():
    import matplotlib.pyplot as plt

    from jetcloud import plots

    fig, ax = plt.subplots()
    box = plots.atlas_label(ax)
    texts = [child.get_text() for child in box.get_child().get_children()]
    plt.close(fig)
    assert texts == ["jetcloud", "Simulation Internal"]
    assert "ATLAS" not in " ".join(texts)


def test_plots_save_rejects_names_with_suffix_or_directory():
    import matplotlib.pyplot as plt

    from jetcloud import plots

    fig, _ = plt.subplots()
    for bad in ("roc.png", "sub/roc", ""):
        with pytest.raises(ValueError):
            plots.save(fig, bad, "smoke", close=False)
    plt.close(fig)


def test_split_params_one_file_per_run(tmp_path: Path) -> None:
    """A multi-document params file gives one papermill parameter file per run (run_all.sh runs each)."""
    import subprocess
    import sys

    import yaml

    script = Path(__file__).resolve().parents[1] / "scripts" / "split_params.py"
    single = tmp_path / "05_x.yaml"
    single.write_text("n: 3\n")
    multi = tmp_path / "07_train.yaml"
    multi.write_text("model: mlp\nepochs: 2\n---\nmodel: resnet_pc_256_s\nepochs: 3\n---\nepochs: 4\n")

    def run(path: Path) -> list[list[str]]:
        out = subprocess.run(
            [sys.executable, str(script), str(path), str(tmp_path / "runs")], check=True, capture_output=True, text=True
        ).stdout
        return [line.split("|") for line in out.splitlines()]

    assert run(single) == [["", str(single)]]
    rows = run(multi)
    assert [label for label, _ in rows] == ["mlp", "resnet_pc_256_s", "2"]
    assert [yaml.safe_load(Path(p).read_text())["epochs"] for _, p in rows] == [2, 3, 4]
    assert Path(rows[0][1]).name == "07_train@mlp.yaml"


def test_nan_to_none_makes_metrics_recordable() -> None:
    from jetcloud import nbtools

    value = {"a": np.array([1.0, np.nan]), "b": [np.inf, 2], "c": np.float32(0.5), "d": True, "e": "x"}
    assert nbtools.nan_to_none(value) == {"a": [1.0, None], "b": [None, 2], "c": 0.5, "d": True, "e": "x"}
