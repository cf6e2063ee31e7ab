"""jetcloud.train: masked losses, memory-mapped npz datasets, the training loop (overfit, resume, DDP, errors)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from jetcloud import models, train
from jetcloud.train.data import META_NAME
from jetcloud.train.presets import PRESET_DIR, PresetError, load_presets, preset_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TESTS = Path(__file__).resolve().parent
SMALL = {"size_factor": 0.125, "tnet_size_factor": 0.0625}
LABELS = ("frac_labels", "tot_labels", "tot_truth_e", "focus_labels")


def make_arrays(n: int, length: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays with the keys of jetcloud.atlas.pointcloud's npz files: focused track point, cells, padding."""
    rng = np.random.default_rng(seed)
    feats = np.zeros((n, length, 6), np.float32)
    feats[..., 5] = -1
    labels = {k: np.full((n, length), -1.0, np.float32) for k in LABELS}
    for i in range(n):
        m = int(rng.integers(4, length))
        feats[i, :m, :4] = rng.normal(size=(m, 4))
        feats[i, :m, 4] = rng.exponential(2.0, m)
        feats[i, :m, 5] = 0
        feats[i, 0, 5] = 1  # the focused track's point: masked in the labels
        frac = (feats[i, 1:m, 0] > 0).astype(np.float32)
        labels["frac_labels"][i, 1:m] = frac
        labels["tot_truth_e"][i, 1:m] = feats[i, 1:m, 4]
        labels["tot_labels"][i, 1:m] = feats[i, 1:m, 4] * (frac > 0)
        labels["focus_labels"][i, 1:m] = feats[i, 1:m, 4] * frac
    scalars = {
        "eventNumber": np.arange(n, dtype=np.int64) + 100 * seed,
        "trackID": np.zeros(n, np.int32),
        "track_pt": rng.uniform(1, 10, n).astype(np.float32),
        "track_eta": np.zeros(n, np.float32),
    }
    return {"feats": feats, **labels, **scalars}


def write_point_clouds(root: Path, sizes: dict[str, list[int]], length: int = 12, **meta_overrides: object) -> Path:
    """A point-cloud directory like notebook 02 writes: meta + <split>/<part>.npz (uncompressed)."""
    files: dict[str, list[str]] = {}
    for split, ns in sizes.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        files[split] = []
        for j, n in enumerate(ns):
            name = f"{split}/part{j:02d}.npz"
            np.savez(root / name, **make_arrays(n, length, seed=hash((split, j)) % 1000))
            files[split].append(name)
    features = ["x", "y", "z", "distance_to_track", "energy", "type"]
    meta = {"length": length, "features": features, "n_features": 6, "labels": list(LABELS), "files": files}
    meta.update(meta_overrides)
    (root / META_NAME).write_text(json.dumps(meta))
    return root


# ---- losses ---------------------------------------------------------------------------------------------------


def test_masked_losses_values() -> None:
    pred = torch.tensor([[1.0, 2.0, 5.0], [0.0, 7.0, float("nan")]])
    target = torch.tensor([[0.0, -1.0, 3.0], [1.0, -1.0, -1.0]])  # 3 valid points; NaN only on a masked one
    assert float(train.masked_mse(pred, target)) == pytest.approx((1 + 4 + 1) / 3)
    assert float(train.masked_mae(pred, target)) == pytest.approx((1 + 2 + 1) / 3)
    assert float(train.masked_huber(pred, target)) == pytest.approx((0.5 + 1.5 + 0.5) / 3)
    assert float(train.masked_mse(pred, target, original_normalisation=True)) == pytest.approx(2 / 2)  # / batch 2
    weight = torch.tensor([[1.0, 9.0, 3.0], [0.0, 9.0, 9.0]])
    assert float(train.masked_mse(pred, target, weight=weight)) == pytest.approx((1 + 3 * 4) / 4)
    logits = torch.tensor([[0.0, 3.0, 0.0]])
    bce = float(train.masked_bce(logits, torch.tensor([[1.0, -1.0, 0.0]])))
    assert bce == pytest.approx(math.log(2))
    assert float(train.masked_mse(pred, torch.full_like(pred, -1.0))) == 0.0  # no valid point
    loss_fn = train.MaskedLoss("mse", original_normalisation=True)
    assert float(loss_fn(pred, target)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown loss kind"):
        train.MaskedLoss("l3")
    grad_pred = pred.clone().requires_grad_(True)
    train.masked_mse(grad_pred, target).backward()
    assert torch.isfinite(grad_pred.grad).all() and grad_pred.grad[0, 1] == 0


# ---- data -----------------------------------------------------------------------------------------------------


def test_npz_memmap_reads_members_without_loading(tmp_path: Path) -> None:
    arrays = make_arrays(5)
    arrays["fortran"] = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    arrays["empty"] = np.zeros((0, 12), np.float32)
    np.savez(tmp_path / "a.npz", **arrays)
    mapped = train.npz_memmap(tmp_path / "a.npz")
    assert set(mapped) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(mapped[key], value)
        assert mapped[key].dtype == value.dtype
    assert isinstance(mapped["feats"], np.memmap) and not mapped["feats"].flags.writeable
    with pytest.raises(train.PointCloudFormatError, match=r"a\.npz.*missing key.*'nope'"):
        train.npz_memmap(tmp_path / "a.npz", ["feats", "nope"])
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    with pytest.raises(train.PointCloudFormatError, match=r"c\.npz.*compressed"):
        train.npz_memmap(tmp_path / "c.npz", ["feats"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(train.PointCloudFormatError, match="not an npz"):
        train.npz_memmap(tmp_path / "bad.npz")


def test_point_cloud_dataset(tmp_path: Path) -> None:
    root = write_point_clouds(tmp_path, {"train": [4, 0, 3], "val": [2]})
    ds = train.PointCloudDataset(
        root, "train", target_key="focus_labels", weight_key="tot_truth_e", extra_keys=["track_pt"]
    )
    assert len(ds) == 7 and len(ds.files) == 2  # the empty part is skipped
    direct = [np.load(root / f"train/part{j:02d}.npz") for j in (0, 2)]
    feats = np.concatenate([d["feats"] for d in direct])
    item = ds[5]
    np.testing.assert_array_equal(item["inputs"].numpy(), feats[5])
    assert item["target"].shape == (12,) and item["weight"].shape == (12,) and item["track_pt"].shape == ()
    batch = ds.__getitems__([6, 0, 4, 3])
    np.testing.assert_array_equal(batch["inputs"].numpy(), feats[[6, 0, 4, 3]])
    assert ds.collate_fn(batch) == batch
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    assert clone._chunks is None
    np.testing.assert_array_equal(clone[5]["inputs"].numpy(), feats[5])
    assert train.feature_index(ds.meta, "energy") == 4
    inputs = train.model_inputs_from_meta(ds.meta)
    assert inputs == {"in_features": 6, "energy_index": 4, "type_index": 5, "padding_type": -1.0}
    one_hot = {
        "length": 12,
        "features": ["x", "y", "z", "d", "energy", "is_cell", "is_focus_track", "is_other_track", "is_padding"],
    }
    assert train.model_inputs_from_meta(one_hot)["type_index"] == 8
    assert models.get_model("pointnet", **train.model_inputs_from_meta(one_hot), **SMALL).padding_type == 1.0
    with pytest.raises(IndexError):
        ds[7]


@pytest.mark.parametrize(
    ("corrupt", "error", "match"),
    [
        ("drop_label", train.PointCloudFormatError, r"part00\.npz.*missing key.*focus_labels"),
        ("short_feats", train.PointCloudFormatError, r"part00\.npz.*'feats' has shape \(4, 10, 6\).*\[N, 12, 6\]"),
        ("label_shape", train.PointCloudFormatError, r"part00\.npz.*'focus_labels' has shape \(4, 11\)"),
        ("meta_features", train.PointCloudFormatError, r"'feats' has shape .*\[N, 12, 9\]"),
        ("no_meta", FileNotFoundError, "no point_cloud_meta.json"),
        ("meta_no_length", train.PointCloudFormatError, "'length' must be a positive integer"),
        ("compressed", train.PointCloudFormatError, "compressed"),
    ],
)
def test_bad_point_cloud_inputs(tmp_path: Path, corrupt: str, error: type, match: str) -> None:
    root = write_point_clouds(tmp_path, {"train": [4]})
    part = root / "train/part00.npz"
    arrays = dict(np.load(part))
    meta = json.loads((root / META_NAME).read_text())
    if corrupt == "drop_label":
        del arrays["focus_labels"]
    elif corrupt == "short_feats":
        arrays["feats"] = arrays["feats"][:, :10]
    elif corrupt == "label_shape":
        arrays["focus_labels"] = arrays["focus_labels"][:, :11]
    elif corrupt == "meta_features":
        meta.update(n_features=9, features=[f"f{i}" for i in range(9)])
    elif corrupt == "no_meta":
        (root / META_NAME).unlink()
    elif corrupt == "meta_no_length":
        del meta["length"]
    np.savez_compressed(part, **arrays) if corrupt == "compressed" else np.savez(part, **arrays)
    if (root / META_NAME).exists():
        (root / META_NAME).write_text(json.dumps(meta))
    with pytest.raises(error, match=match):
        train.PointCloudDataset(root, "train")


# ---- training loop --------------------------------------------------------------------------------------------


def small_pointnet(seed: int = 0, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.get_model("pointnet", **{**SMALL, **kwargs})


def test_tiny_overfit_drives_the_loss_down(tmp_path: Path) -> None:
    data = train.ArrayDataset([make_arrays(6, length=10, seed=1)], target_key="frac_labels")
    model = small_pointnet(dropout=0.0, output="tssr")
    config = train.TrainConfig(epochs=150, batch_size=6, lr=1e-2, progress=False, checkpoint=False)
    result = train.fit(model, data, None, train.MaskedLoss("mse"), config, tmp_path)
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert last < first / 20, (first, last)
    assert not (tmp_path / "last.pt").exists() and (tmp_path / "history.csv").is_file()


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    data = train.ArrayDataset([make_arrays(10, seed=2)])
    val = train.ArrayDataset([make_arrays(4, seed=3)])
    config = train.TrainConfig(
        epochs=3,
        batch_size=4,
        lr=3e-3,
        schedule="step",
        step_size=1,
        gamma=0.5,
        bn_momentum_schedule=True,
        progress=False,
    )
    loss = train.MaskedLoss("mse")
    full = small_pointnet()  # dropout 0.3: the RNG state must be restored too
    train.fit(full, data, val, loss, config, tmp_path / "full", metrics={"mae": train.masked_mae})

    def interrupt(epoch: int, row: object) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(
            small_pointnet(),
            data,
            val,
            loss,
            config,
            tmp_path / "cut",
            metrics={"mae": train.masked_mae},
            callbacks=[interrupt],
        )
    assert train.load_checkpoint(tmp_path / "cut/last.pt")["epoch"] == 2
    resumed = small_pointnet(seed=99)  # other initial weights: everything must come from the checkpoint
    result = train.fit(resumed, data, val, loss, config, tmp_path / "cut", metrics={"mae": train.masked_mae})
    assert result.start_epoch == 2 and result.epochs_done == 3
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)  # bitwise
    full_rows = (tmp_path / "full/history.csv").read_text().splitlines()
    cut_rows = (tmp_path / "cut/history.csv").read_text().splitlines()
    assert full_rows[0] == cut_rows[0] and len(cut_rows) == 4
    assert [r.split(",")[:5] for r in full_rows] == [r.split(",")[:5] for r in cut_rows]  # epoch .. val_mae
    # the BatchNorm momentum schedule (Keras 0.5 -> 0.99) set epoch 3's value
    keras = train.bn_momentum_for_epoch(2, 3)
    assert resumed.point_mlp[0].bn.momentum == pytest.approx(1 - keras)
    # a finished run is not trained again
    again = train.fit(resumed, data, val, loss, config, tmp_path / "cut")
    assert again.start_epoch == 3
    best = train.load_weights(small_pointnet(), tmp_path / "cut/best.pt")
    assert best["epoch"] == result.best_epoch


def test_resume_only_with_the_same_settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = train.ArrayDataset([make_arrays(6, seed=4)])
    config = train.TrainConfig(epochs=1, batch_size=3, lr=1e-3, progress=False)
    train.fit(small_pointnet(), data, None, train.MaskedLoss(), config, tmp_path)
    more = train.fit(small_pointnet(), data, None, train.MaskedLoss(), replace(config, epochs=2), tmp_path)
    assert more.start_epoch == 1 and more.epochs_done == 2  # more epochs: resumed
    other = replace(config, epochs=2, lr=1e-2, max_steps_per_epoch=1)
    with caplog.at_level("WARNING", logger="jetcloud.train.loop"):
        fresh = train.fit(small_pointnet(), data, None, train.MaskedLoss(), other, tmp_path)
    assert fresh.start_epoch == 0 and fresh.epochs_done == 2  # other settings: started over
    assert "lr 0.001 -> 0.01" in caplog.text and "max_steps_per_epoch None -> 1" in caplog.text
    assert train.load_checkpoint(tmp_path / "last.pt")["config"]["lr"] == 1e-2


def test_checkpoint_of_another_model_or_width_is_refused(tmp_path: Path) -> None:
    data = train.ArrayDataset([make_arrays(6, seed=4)])
    config = train.TrainConfig(epochs=1, batch_size=3, progress=False)
    train.fit(small_pointnet(), data, None, train.MaskedLoss(), config, tmp_path)
    wider = models.get_model("pointnet", size_factor=0.25, tnet_size_factor=0.0625)
    with pytest.raises(train.CheckpointMismatchError, match=r"size_factor: checkpoint 0\.125 vs model 0\.25"):
        train.fit(wider, data, None, train.MaskedLoss(), config.__class__(epochs=2, progress=False), tmp_path)
    other = models.get_model("pointnet_attention", size_factor=0.125)
    with pytest.raises(train.CheckpointMismatchError, match="PointNetSegmentation but the model is .*Attention"):
        train.load_weights(other, tmp_path / "last.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(train.CheckpointMismatchError, match="not a jetcloud checkpoint"):
        train.load_checkpoint(tmp_path / "foreign.pt")


def test_checkpoint_written_before_a_module_move_still_loads(tmp_path: Path) -> None:
    """Checkpoints compare the model's qualified name, not its module path (issue 11 moved modules)."""
    data = train.ArrayDataset([make_arrays(6, seed=4)])
    train.fit(small_pointnet(), data, None, train.MaskedLoss(), train.TrainConfig(epochs=1, progress=False), tmp_path)
    checkpoint = train.load_checkpoint(tmp_path / "last.pt")
    checkpoint["model"]["class"] = "jetcloud.old_flat_models.PointNetSegmentation"  # as written before a move
    del checkpoint["model"]["qualname"]  # older checkpoints did not store it
    torch.save(checkpoint, tmp_path / "old.pt")
    train.load_weights(small_pointnet(), tmp_path / "old.pt")  # loads
    with pytest.raises(train.CheckpointMismatchError, match="old_flat_models.PointNetSegmentation but the model"):
        train.load_weights(models.get_model("pointnet_attention", size_factor=0.125), tmp_path / "old.pt")


def test_nan_loss_stops_with_epoch_and_batch(tmp_path: Path) -> None:
    arrays = make_arrays(8, seed=5)
    arrays["feats"][5, 1, 4] = np.nan  # a cell of sample 5 -> batch 2 of 2 (batch size 4, no shuffle)
    data = train.ArrayDataset([arrays])
    config = train.TrainConfig(epochs=2, batch_size=4, shuffle=False, progress=False)
    with pytest.raises(train.NonFiniteLossError, match=r"epoch 1, batch 2 \(of 2\)"):
        train.fit(small_pointnet(), data, None, train.MaskedLoss(), config, tmp_path)


def test_early_stopping_and_predict(tmp_path: Path) -> None:
    data = train.ArrayDataset([make_arrays(8, seed=6)])
    val = train.ArrayDataset([make_arrays(5, seed=7)])
    model = small_pointnet()
    config = train.TrainConfig(epochs=20, batch_size=4, lr=1e-9, patience=2, min_delta=1.0, progress=False)
    result = train.fit(model, data, val, train.MaskedLoss(), config, tmp_path)
    assert result.stopped_early and result.epochs_done == 3 and result.best_epoch == 1
    pred = train.predict(model, val, batch_size=2)
    assert pred.shape == (5, 12) and pred.dtype == np.float32
    np.testing.assert_array_equal(pred[0][val[0]["inputs"].numpy()[:, 5] == -1], 0)
    metrics = train.evaluate(model, val, train.MaskedLoss(), batch_size=5, metrics={"mae": train.masked_mae})
    assert metrics["loss"] == pytest.approx(result.history[-1]["val_loss"], rel=1e-5)


def test_train_config_validation() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        train.TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="batch_size"):
        train.TrainConfig(batch_size=0)
    assert train.bn_momentum_for_epoch(0, 20) == 0.5 and train.bn_momentum_for_epoch(40, 20) == 0.99


# ---- presets as data -----------------------------------------------------------------------------------------

PRESET_YAML = """
fast: &fast
  note: quick
  settings: {optimizer: adamw, lr: 3.0e-3, batch_size: 8, schedule: cosine, grad_clip: 5.0, patience: null}
copy: *fast
other:
  settings: {epochs: 2}
  loss: {energy_unit: GeV}
"""


def test_load_presets_reads_settings_and_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(PRESET_YAML)
    presets = load_presets("demo", {"note": str, "loss": ("energy_unit",)}, optional=("note", "loss"), path=path)
    assert list(presets) == ["fast", "copy", "other"]
    assert presets["fast"] == {
        "note": "quick",
        "settings": {
            "optimizer": "adamw",
            "lr": 3e-3,
            "batch_size": 8,
            "schedule": "cosine",
            "grad_clip": 5.0,
            "patience": None,
        },
    }
    presets["copy"]["settings"]["lr"] = 1.0  # an alias in the file, a separate dict here
    assert presets["fast"]["settings"]["lr"] == 3e-3
    assert presets["other"]["loss"] == {"energy_unit": "GeV"}
    assert train.TrainConfig(**presets["fast"]["settings"]).optimizer == "adamw"


def test_the_shipped_preset_files_exist() -> None:
    # package data (pyproject.toml: jetcloud = ["presets/*.yaml"]), read by jetcloud.qg.train and jetpointnet;
    # the search spaces of notebook 10 (jetcloud.hpo.space_file) live beside them
    names = ["atlas.yaml", "qg.yaml", "search_atlas.yaml", "search_qg.yaml"]
    assert sorted(p.name for p in PRESET_DIR.glob("*.yaml")) == names
    assert preset_file("qg") == PRESET_DIR / "qg.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast:\n  settings: {lr: [1.0e-3\n", "is not valid YAML"),
        ("fast:\n\tsettings: {}\n", "is not valid YAML"),
        ("- a list\n", "expected a mapping of preset names"),
        ("", "expected a mapping of preset names"),
        ("fast: 3\n", r"preset 'fast': expected a mapping with settings, note, loss, got int"),
        ("fast:\n  settings: {}\n  colour: red\n", r"preset 'fast': unknown key\(s\) \['colour'\]"),
        ("fast:\n  note: x\n", r"preset 'fast': missing \['settings'\]"),
        ("fast:\n  settings: {learning_rate: 0.1}\n", r"settings: unknown key\(s\) \['learning_rate'\]"),
        ("fast:\n  settings: {lr: 1e-3}\n", r"lr = '1e-3' is a str, expected float \(YAML reads 1e-3 as a string"),
        ("fast:\n  settings: {epochs: 2.5}\n", "epochs = 2.5 is a float, expected int"),
        ("fast:\n  settings: {epochs: true}\n", "epochs = True is a bool, expected int"),
        ("fast:\n  settings: {patience: 0.5}\n", r"patience = 0.5 is a float, expected int \| None"),
        ("fast:\n  settings: {optimizer: sgd}\n", r"TrainConfig.optimizer = 'sgd'; expected one of adam"),
        ("fast:\n  settings: {}\n  note: 3\n", "note must be a str, got int"),
        ("fast:\n  settings: {}\n  loss: {unit: GeV}\n", r"loss: unknown key\(s\) \['unit'\]"),
    ],
)
def test_a_bad_preset_file_is_named_in_the_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PresetError, match=message) as info:
        load_presets("bad", {"note": str, "loss": ("energy_unit",)}, optional=("note", "loss"), path=path)
    assert f"preset file {path}" in str(info.value)


def test_a_missing_preset_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="nothing.yaml cannot be read"):
        load_presets("nothing", path=tmp_path / "nothing.yaml")
    assert issubclass(PresetError, ValueError)


def _load_worker():
    spec = importlib.util.spec_from_file_location("ddp_fit_worker", TESTS / "ddp_fit_worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ddp_matches_single_process(tmp_path: Path) -> None:
    """2 gloo processes x batch 4 (torchrun) == 1 process x batch 8."""
    worker = _load_worker()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(TESTS / "ddp_fit_worker.py"),
        str(tmp_path / "ddp"),
        "4",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    data = worker.make_dataset()
    single = worker.build_model()
    train.fit(single, data, data, train.MaskedLoss("mse"), worker.config(8), tmp_path / "single")
    ddp = train.load_checkpoint(tmp_path / "ddp/last.pt")
    assert ddp["world_size"] == 2 and ddp["epoch"] == worker.EPOCHS
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp["model_state"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    ddp_rows = (tmp_path / "ddp/history.csv").read_text().splitlines()
    single_rows = (tmp_path / "single/history.csv").read_text().splitlines()
    for a, b in zip(ddp_rows[1:], single_rows[1:], strict=True):  # train and val losses agree too
        assert np.allclose([float(v) for v in a.split(",")[1:4]], [float(v) for v in b.split(",")[1:4]], rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "history.csv", "last.pt"]


def test_loss_scale_multiplies_valid_points_only() -> None:
    import torch

    from jetcloud.train import MaskedLoss

    pred = torch.tensor([[1000.0, 5.0, 3000.0]])
    target = torch.tensor([[2000.0, -1.0, 1000.0]])
    assert MaskedLoss("mse", scale=1e-3)(pred, target).item() == pytest.approx((1 + 4) / 2)
    assert MaskedLoss("mae")(pred, target).item() == pytest.approx(1500.0)


# --------------------------------------------------------------------------------------------------------------
# the per-track loss and checkpoint selection on a validation figure of merit
# --------------------------------------------------------------------------------------------------------------


def test_cell_track_loss_by_hand() -> None:
    # two samples, three points: cells with fractions, one masked point; energies 1, 3 GeV; true energies 2, 0.05
    pred = torch.tensor([[0.0, 0.0, 5.0, math.log(4.0)], [0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, -1.0, 2.0], [0.5, 0.5, -1.0, 0.05]])
    weight = torch.tensor([[1.0, 3.0, 7.0, 1.0], [0.0, -2.0, 1.0, 1.0]])
    ln2 = math.log(2.0)
    # BCE(logit 0, f) = ln 2 for every f; energy weights 1, 3 (sample 2: 0 and a negative energy count 0)
    cell = (1 * ln2 + 3 * ln2) / 4
    track = abs(math.log(4.0) - math.log(2.0))  # sample 2 is below min_target 0.1 GeV
    loss = train.CellTrackLoss(cell_weight=2.0, track_weight=0.5)(pred, target, weight)
    assert float(loss) == pytest.approx(2.0 * cell + 0.5 * track, rel=1e-6)
    # a perfect track energy leaves only the cell term; wrong shapes and a missing weight are errors
    pred[0, -1] = math.log(2.0)
    assert float(train.cell_track_loss(pred, target, weight, track_weight=1.0)) == pytest.approx(cell, rel=1e-6)
    with pytest.raises(ValueError, match="weight"):
        train.CellTrackLoss()(pred, target)
    with pytest.raises(ValueError, match="agree"):
        train.cell_track_loss(pred[:, :3], target, weight)


def test_select_on_chooses_the_checkpoint(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4, 3)).astype(np.float32)
    ds = train.ArrayDataset([{"feats": x, "y": x[..., 0] * 2}], input_key="feats", target_key="y")
    net = torch.nn.Linear(3, 1)
    wrapped = torch.nn.Sequential(net, torch.nn.Flatten(-2))
    values = iter([3.0, 1.0, float("nan"), 2.0, 0.5])
    config = train.TrainConfig(epochs=5, batch_size=8, device="cpu", progress=False, patience=2)
    result = train.fit(wrapped, ds, ds, train.MaskedLoss("mse"), config, tmp_path, select_on=lambda m: next(values))
    assert [r["val_select"] for r in result.history] == [3.0, 1.0, math.inf, 2.0]  # NaN never wins; patience 2
    assert result.best_epoch == 2 and result.best_val_loss == 1.0 and result.stopped_early
