"""The notebook 03/04 workflow: model for a dataset, input scaling, presets, run directories, baseline table."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

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
    assert jetpointnet.PRESETS == ("track", "pointnet", "report")  # jetcloud/presets/atlas.yaml
    config, loss = jetpointnet.training_setup("track", META, "mse", epochs=2)
    assert isinstance(loss, train.CellTrackLoss) and config.optimizer == "adamw" and config.epochs == 2
    config, loss = jetpointnet.training_setup("pointnet", META, "mse", lr=1e-3, epochs=2, batch_size=4)
    assert config.optimizer == "adamw" and config.schedule == "cosine" and loss.scale == pytest.approx(1e-3)
    assert config.grad_clip == 5.0 and config.epochs == 2 and not loss.original_normalisation
    _, loss = jetpointnet.training_setup("pointnet", {**META, "energy_unit": "GeV"}, "huber")
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
    config, loss = jetpointnet.training_setup("pointnet", META, epochs=1, batch_size=4, device="cpu")
    config.progress = False
    jetpointnet.save_run(tmp_path, "pointnet", SMALL, META, target="focus_labels", preset="pointnet", loss="mse")
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


# --------------------------------------------------------------------------------------------------------------
# the track-conditioned network
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def track_clouds(tmp_path_factory) -> tuple:
    """Point clouds built from hand-made samples (tests/atlas/test_pointcloud.py) and their templates."""
    from jetcloud.atlas import pointcloud

    root = tmp_path_factory.mktemp("track")
    spec = importlib.util.spec_from_file_location("_pointcloud_tests", Path(__file__).with_name("test_pointcloud.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)  # the hand-made samples of the point-cloud tests

    def clouds(n: int, event0: int) -> list[dict]:  # tracks with labelled cells (focus energy > 0.1 GeV)
        return [
            helpers.sample(
                event0 + k,
                0,
                2.0 + k,
                [helpers.tp(1, 1600.0, 0.0, 0.0), helpers.tp(4, 1700.0, 10.0, 3000.0)],
                [
                    helpers.cell(j, 0.4 * (j + 1), 0.5, 0.3 * (j + 1), 0.6 * (j + 1), 0.6 * (j + 1))
                    for j in range(3 + k % 4)
                ],
            )
            for k in range(n)
        ]

    parts = {"train": [clouds(12, 100)], "val": [clouds(6, 500)]}
    samples_dir = helpers.write_samples_dir(root / "samples", parts)
    pointcloud.build_atlas_point_clouds(samples_dir, root / "pc", min_cells=1, workers=1, progress=False)
    meta = pointcloud.read_point_cloud_meta(root / "pc")
    train_arrays = pointcloud.load_point_clouds(root / "pc", "train")
    return root / "pc", meta, jetpointnet.track_template(train_arrays, meta, min_tracks=1)


def test_track_inputs_columns(track_clouds) -> None:
    root, meta, templates = track_clouds
    ds = jetpointnet.TrackInputs(root, "train", templates)
    batch = ds.__getitems__([0, 3, 5])
    x, target, weight = batch["inputs"].numpy(), batch["target"].numpy(), batch["weight"].numpy()
    length = meta["length"]
    assert x.shape == (3, length, len(jetpointnet.TRACK_INPUTS)) and target.shape == weight.shape == (3, length + 1)
    col = {n: i for i, n in enumerate(jetpointnet.TRACK_INPUTS)}
    a = ds.arrays([0, 3, 5])
    is_cell = a["frac_labels"] != -1
    np.testing.assert_array_equal(x[..., col["is_cell"]] == 1, is_cell)
    energy = a["feats"][..., ATLAS_FEATURES.index("energy")] / 1000.0
    np.testing.assert_allclose(x[..., col["energy_gev"]][is_cell], energy[is_cell], rtol=1e-6)
    _, truth_scale = jetpointnet.template_energy(templates, a["track_p"], a["track_eta"])
    np.testing.assert_allclose(np.exp(x[:, 0, col["log_expected"]]), truth_scale, rtol=1e-5)
    np.testing.assert_allclose(np.exp(x[:, 0, col["log_p"]]), a["track_p"], rtol=1e-5)
    np.testing.assert_allclose(target[:, -1], a["focus_truth_energy"] / 1000.0, rtol=1e-6)
    assert np.isfinite(x).all() and (x[..., col["is_padding"]] + x[..., col["is_cell"]] <= 1).all()
    # every point of a sample in the one sampling of the hand-made cells: one-hot there
    assert (x[..., col["sampling_2"]][is_cell] == 1).all()


def test_untrained_model_reproduces_the_template(track_clouds) -> None:
    root, meta, templates = track_clouds
    ds = jetpointnet.TrackInputs(root, "val", templates)
    torch.manual_seed(0)
    for name in jetpointnet.TRACK_MODELS:
        net = jetpointnet.build_track_model(name, width=16)
        out = jetpointnet.track_outputs(net, ds, batch_size=4)
        a = ds.arrays(range(len(ds)))
        _, expected = jetpointnet.template_energy(templates, a["track_p"], a["track_eta"])
        np.testing.assert_allclose(out["track_energy"], expected, rtol=1e-5)
        is_cell = a["frac_labels"] != -1
        assert (out["cell_energy"][~is_cell] == 0).all() and out["cell_energy"].shape == is_cell.shape


def test_track_training_is_deterministic_and_writes_predictions(track_clouds, tmp_path) -> None:
    root, meta, templates = track_clouds
    ds = {s: jetpointnet.TrackInputs(root, s, templates) for s in ("train", "val")}
    results = []
    for run in ("a", "b"):
        torch.manual_seed(3)
        net = jetpointnet.build_track_model("track_conditioned", width=8)
        config, loss_fn = jetpointnet.training_setup("track", meta, epochs=2, batch_size=4, seed=3, device="cpu")
        config.progress = False
        select = jetpointnet.track_selection_metric(ds["val"])
        fit = train.fit(net, ds["train"], ds["val"], loss_fn, config, tmp_path / run, select_on=select)
        assert "val_select" in fit.history[0] and fit.best_epoch is not None
        results.append(jetpointnet.track_outputs(net, ds["val"]))
    np.testing.assert_array_equal(results[0]["track_energy"], results[1]["track_energy"])
    np.testing.assert_array_equal(results[0]["cell_energy"], results[1]["cell_energy"])
    arrays = ds["val"].arrays(range(len(ds["val"])))
    arrays = {**arrays, "eventNumber": np.arange(len(ds["val"])), "trackID": np.zeros(len(ds["val"]))}
    path = jetpointnet.write_predictions(tmp_path, "val", arrays, **results[0])
    with np.load(path) as saved:
        assert saved["cell_energy"].dtype == np.float32 and saved["eventNumber"].dtype == np.int64
        assert saved["trackID"].dtype == np.int32 and len(saved["track_energy"]) == len(ds["val"])


def test_bootstrap_resolution() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 10, 4000)
    pred = truth * rng.normal(1.0, 0.2, 4000)
    res = jetpointnet.bootstrap_resolution(pred, truth, n_boot=50)
    assert res["tracks"] == 4000 and abs(res["median"] - 1) < 0.02 and abs(res["sigma68_rel"] - 0.2) < 0.02
    assert 0 < res["sigma68_rel_err"] < 0.01
