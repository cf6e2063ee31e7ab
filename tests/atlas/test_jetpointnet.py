"""The notebook 03/04 workflow: model for a dataset, input scaling, presets, run directories, baseline table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from jetcloud import train
from jetcloud.atlas import evaluation, jetpointnet
from jetcloud.atlas.pointcloud import ATLAS_FEATURES

pytestmark = pytest.mark.usefixtures("one_torch_thread")
META = {"features": list(ATLAS_FEATURES), "energy_unit": "MeV", "coordinates": "raw", "length": 12, "n_features": 6}
SMALL = {"size_factor": 0.125, "tnet_size_factor": 0.0625}


def _clouds(n: int = 8, length: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = np.zeros((n, length, 6), np.float32)
    feats[..., :3] = rng.normal(0, 1500, (n, length, 3))
    feats[..., 3] = rng.uniform(0, 300, (n, length))
    feats[..., 4] = rng.exponential(500, (n, length))
    feats[..., 5] = 0
    feats[:, 0, 5] = 1  # a focused-track point
    feats[:, -3:] = 0
    feats[:, -3:, 5] = -1  # padding
    focus = np.where(feats[..., 5] == 0, feats[..., 4] * 0.5, -1).astype(np.float32)
    return {"feats": feats, "focus_labels": focus}


def test_input_scale_and_output_in_dataset_units() -> None:
    assert jetpointnet.input_scale(META) == [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1.0]
    assert jetpointnet.input_scale({**META, "energy_unit": "GeV", "coordinates": "centred"}) == [1.0] * 6
    torch.manual_seed(0)
    net = jetpointnet.build_model("pointnet", META, **SMALL).eval()
    x = torch.tensor(_clouds()["feats"])
    # the wrapped model sees O(1) inputs; its energy bypass output is brought back to MeV
    inner = net.model
    with torch.no_grad():
        expected = inner(x * net.scale) / net.scale[4]
        assert torch.allclose(net(x), expected)
    assert net.hparams["input_scale"] == pytest.approx(jetpointnet.input_scale(META))


def test_presets() -> None:
    assert jetpointnet.PRESETS == ("default", "report")  # jetcloud/presets/atlas.yaml
    config, loss = jetpointnet.training_setup("default", META, "mse", lr=1e-3, epochs=2, batch_size=4)
    assert config.optimizer == "adamw" and config.schedule == "cosine" and loss.scale == pytest.approx(1e-3)
    assert config.grad_clip == 5.0 and config.epochs == 2 and not loss.original_normalisation
    _, loss = jetpointnet.training_setup("default", {**META, "energy_unit": "GeV"}, "huber")
    assert loss.scale == 1.0 and loss.kind == "huber"
    config, loss = jetpointnet.training_setup("report", META, "mse", epochs=3, lr=0.5)
    assert config.lr == 1e-9 and config.batch_size == 24 and config.epochs == 3 and loss.original_normalisation
    assert loss.scale == 1.0  # MeV-scale, as the original
    with pytest.raises(ValueError, match="unknown preset"):
        jetpointnet.training_setup("fast", META)


def test_report_preset_values() -> None:
    # the report version's settings (jets_train.py @ 68ec39f), lr 1e-9 included
    config, _ = jetpointnet.training_setup("report", META, seed=3, device="cpu", batch_size=7, weight_decay=0.1)
    expected = {"optimizer": "adam", "lr": 1e-9, "batch_size": 24, "epochs": 20, "schedule": "step", "step_size": 2}
    assert {k: getattr(config, k) for k in expected} == expected
    assert config.gamma == 0.5 and config.shuffle is False and config.weight_decay == 0.0
    assert config.seed == 3 and config.device == "cpu"  # the settings the report preset accepts


def test_a_bad_atlas_preset_file_is_named(tmp_path, monkeypatch) -> None:
    from jetcloud.train import presets

    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    path = tmp_path / "atlas.yaml"
    path.write_text("report:\n  description: x\n  settings: {}\n  loss: {}\n  accepts: [epoch]\n")
    with pytest.raises(presets.PresetError, match=re.escape(f"{path}, preset 'report': accepts names unknown")):
        jetpointnet._load_presets()
    path.write_text("default:\n  description: x\n  settings: {}\n  loss: {scale: 2.0}\n")
    with pytest.raises(
        presets.PresetError, match=re.escape(f"{path}, preset 'default', loss: unknown key(s) ['scale']")
    ):
        jetpointnet._load_presets()
    path.write_text("default:\n  description: x\n  settings: {lr: 1e-3}\n  loss: {}\n")
    with pytest.raises(presets.PresetError, match=re.escape(f"{path}, preset 'default', settings: lr = '1e-3'")):
        jetpointnet._load_presets()


def test_run_directory_round_trip(tmp_path) -> None:
    data = _clouds()
    ds = train.ArrayDataset([data], input_key="feats", target_key="focus_labels")
    torch.manual_seed(0)
    net = jetpointnet.build_model("pointnet", META, **SMALL)
    config, loss = jetpointnet.training_setup("default", META, epochs=1, batch_size=4, device="cpu")
    config.progress = False
    jetpointnet.save_run(tmp_path, "pointnet", SMALL, META, target="focus_labels", preset="default", loss="mse")
    train.fit(net, ds, ds, loss, config, tmp_path, resume=False)
    train.load_weights(net, tmp_path / "best.pt")
    back, run = jetpointnet.load_run(tmp_path, META)
    assert run["model"] == "pointnet" and run["target"] == "focus_labels"
    x = torch.tensor(data["feats"])
    with torch.no_grad():
        assert torch.equal(net.eval()(x), back(x))
    with pytest.raises(ValueError, match="energy_unit"):
        jetpointnet.load_run(tmp_path, {**META, "energy_unit": "GeV"})
    with pytest.raises(FileNotFoundError, match="run.json"):
        jetpointnet.load_run(tmp_path / "nothing")


def test_summary_table_and_baseline_plumbing() -> None:
    table = evaluation.summary_table({"a": {"tracks": 3, "sigma68": 0.12345}}, ("tracks", "sigma68"))
    assert table.splitlines()[-1] == "| a | 3 | 0.123 |"
    clouds = _clouds(n=30)
    arrays = {
        **clouds,
        "frac_labels": np.where(clouds["focus_labels"] != -1, 0.5, -1).astype(np.float32),
        "track_pt": np.full(30, 5000.0, np.float32),
        "track_eta": np.zeros(30, np.float32),
    }
    templates, pred = evaluation.particle_flow_baseline(arrays, arrays, ATLAS_FEATURES, 1000.0, min_tracks=5)
    assert pred.shape == arrays["focus_labels"].shape and np.all(pred[arrays["focus_labels"] == -1] == 0)
    assert templates.n.sum() == 30
