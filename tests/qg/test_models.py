"""Quark/gluon classifiers (jetcloud.models mlp / sparse_cnn / resnet_pc / particlenet / transformer) and
jetcloud.qg.train: parameter counts, shapes, padding invariance, a tiny overfit, data loading and metrics."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from jetcloud import train
from jetcloud.models import available_models, get_model, parameter_counts
from jetcloud.models import mlp as mlp_module
from jetcloud.models.resnet_pc import REPORT_PARAMETERS as RESNET_PARAMETERS
from jetcloud.qg import train as qg_train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ("mlp", "pfn", "sparse_cnn_200", "particlenet_lite", "transformer_small")


def _trainable(name: str, **kwargs) -> int:
    return parameter_counts(get_model(name, **kwargs))["trainable"]


def _batch(b: int = 3, k: int = 40, n_real=(40, 12, 3), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Point clouds like QG{K}.h5: ascending order, zero padding first; energies > 0, (col, row) pixel indices."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(b, k, 5)
    mask = torch.zeros(b, k, dtype=torch.bool)
    for i, n in enumerate(n_real):
        x[i, k - n :, :3] = torch.rand(n, 3, generator=gen) * 10 + 0.1
        x[i, k - n :, 3:] = torch.randint(0, 125, (n, 2), generator=gen).float()
        mask[i, k - n :] = True
    return x, mask


# ---- parameter counts -------------------------------------------------------------------------------------------
def test_mlp_parameter_count_and_the_reports_double_count():
    assert _trainable("mlp") == mlp_module.REPORT_PARAMETERS == 86_370
    assert abs(2 * 86_370 - 173_000) < 500  # the report's "~173K" is twice the real count


@pytest.mark.parametrize(("name", "expected"), [("sparse_cnn_200", 79_590), ("sparse_cnn_800", 610_278)])
def test_sparse_cnn_parameter_counts(name, expected):
    assert _trainable(name) == expected


@pytest.mark.parametrize("name", sorted(RESNET_PARAMETERS))
def test_resnet_pc_parameter_counts(name):
    assert _trainable(name) == RESNET_PARAMETERS[name]


def test_resnet_pc_two_logit_head():
    extra = get_model("resnet_pc_1024_m").head.in_features + 1  # one more output: C_last weights + a bias
    assert _trainable("resnet_pc_1024_m", num_classes=2) == RESNET_PARAMETERS["resnet_pc_1024_m"] + extra


def test_stronger_models_sizes():
    assert 360_000 < _trainable("particlenet") < 372_000  # ParticleNet: ~366 k
    assert 24_000 < _trainable("particlenet_lite") < 28_000  # ParticleNet-Lite: ~26 k
    assert 1_900_000 < _trainable("transformer") < 2_200_000  # ParT: ~2.1 M
    assert _trainable("transformer_small") < 150_000


def test_every_qg_model_is_registered_with_a_preset_and_k():
    for name in qg_train.PRESETS:
        assert name in available_models()
        assert name in qg_train.PRESET_SOURCES
        train.TrainConfig(**qg_train.preset(name))
    assert qg_train.default_k("resnet_pc_768_m") == 768 and qg_train.default_k("sparse_cnn_800") == 800
    assert qg_train.default_k("mlp") == 200
    assert qg_train.preset("mlp", lr=0.5, epochs=None)["lr"] == 0.5


QG_MODELS = (
    "mlp",
    "sparse_cnn_200",
    "sparse_cnn_800",
    *(f"resnet_pc_{v}" for v in ("256_s", "256_m", "512_s", "512_m", "768_s", "768_m", "1024_s", "1024_m", "1024_l")),
    "pfn",
    "particlenet",
    "particlenet_lite",
    "transformer",
    "transformer_small",
    "deepsets",
)


def test_qg_presets_from_yaml_keep_their_values():
    # jetcloud/presets/qg.yaml: every model, in this order, with the report's (or the paper's) settings
    assert tuple(qg_train.PRESETS) == QG_MODELS and tuple(qg_train.PRESET_SOURCES) == QG_MODELS
    assert qg_train.PRESETS["mlp"] == {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 256,
        "epochs": 20,
        "schedule": "step",
        "step_size": 8,
        "gamma": 0.5,
        "amp": "fp16",
    }
    assert qg_train.PRESETS["sparse_cnn_200"]["lr"] == 2e-4 and qg_train.PRESETS["sparse_cnn_800"]["batch_size"] == 64
    resnet = {k: v for k, v in qg_train.PRESETS.items() if k.startswith("resnet_pc_")}
    assert len(resnet) == 9 and all(v == resnet["resnet_pc_256_s"] for v in resnet.values())
    assert resnet["resnet_pc_1024_l"] == {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 128,
        "epochs": 100,
        "schedule": "step",
        "step_size": 20,
        "gamma": 0.5,
        "amp": "none",
    }
    assert qg_train.PRESETS["pfn"]["batch_size"] == 500 and qg_train.PRESETS["pfn"]["schedule"] == "none"
    assert qg_train.PRESETS["particlenet_lite"] == qg_train.PRESETS["particlenet"]
    assert qg_train.PRESETS["particlenet"]["lr"] == 3e-3 and qg_train.PRESETS["particlenet"]["amp"] == "bf16"
    assert qg_train.PRESETS["transformer_small"]["weight_decay"] == 0.01
    assert qg_train.PRESET_SOURCES["mlp"] == "report: Adam 1e-3, batch 256, 20 epochs, StepLR(8, 0.5), AMP"
    assert qg_train.PRESET_SOURCES["resnet_pc_512_m"].endswith("which the shared loop does not offer)")
    assert qg_train.PRESET_SOURCES["transformer_small"] == "as transformer"
    for settings in qg_train.PRESETS.values():  # floats stay floats (PyYAML reads 1e-3 as a string)
        assert isinstance(settings["lr"], float) and isinstance(settings["weight_decay"], float)


def test_preset_returns_a_copy():
    settings = qg_train.preset("resnet_pc_256_s", epochs=3)
    settings["lr"] = 0.5
    assert settings["epochs"] == 3 and qg_train.PRESETS["resnet_pc_256_s"]["epochs"] == 100
    assert qg_train.preset("resnet_pc_256_m")["lr"] == 1e-3


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="sparse_cnn_200"):
        get_model("no_such_model")
    with pytest.raises(KeyError, match="resnet_pc_1024_m"):
        qg_train.preset("no_such_model")


# ---- forward passes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*SMALL, "resnet_pc_256_s", "resnet_pc_1024_m", "sparse_cnn_800"])
def test_forward_shapes_with_padding(name):
    k = {"resnet_pc_256_s": 256, "resnet_pc_1024_m": 1024, "sparse_cnn_800": 800}.get(name, 40)
    x, _ = _batch(k=k)
    model = get_model(name).eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 1 if name.startswith("resnet") else 2)
    assert torch.isfinite(out).all()


def test_resnet_batch_of_one_and_too_short_input():
    model = get_model("resnet_pc_256_s").eval()
    assert model(_batch(1, 256, (20,))[0]).shape == (1, 1)
    with pytest.raises(ValueError, match="too short"):
        model(torch.rand(2, 16, 5))
    with pytest.raises(ValueError, match="expected inputs"):
        model(torch.rand(2, 256, 4))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("mlp", {"mask": True}), ("pfn", {}), ("particlenet_lite", {}), ("transformer_small", {})],
)
def test_padding_content_does_not_change_the_output(name, kwargs):
    x, mask = _batch()
    model = get_model(name, **kwargs).eval()
    with torch.no_grad():
        ref = model(x)
        implicit = model(x, mask)
        noisy = x.clone()
        noisy[~mask] = torch.randn(int((~mask).sum()), 5) * 50
        changed = model(noisy, mask)
    torch.testing.assert_close(implicit, ref)
    torch.testing.assert_close(changed, ref, atol=1e-5, rtol=1e-5)


def test_unmasked_mlp_sees_the_padding_as_the_report_did():
    x, mask = _batch()
    model = get_model("mlp").eval()
    noisy = x.clone()
    noisy[~mask] = 3.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(noisy))


def test_tiny_overfit_mlp(tmp_path):
    torch.manual_seed(0)
    x, _ = _batch(8, 20, (20, 18, 15, 12, 10, 8, 6, 4), seed=1)
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    x[y == 1, :, 0] *= 3  # quarks: harder tracks
    ds = train.ArrayDataset([{"X": x.numpy(), "Y": y}], input_key="X", target_key="Y")
    config = train.TrainConfig(lr=1e-2, batch_size=8, epochs=60, progress=False, device="cpu", checkpoint=False)
    model = get_model("mlp", mask=True)
    result = train.fit(
        model, ds, ds, qg_train.classification_loss, config, tmp_path, resume=False, metrics={"acc": qg_train.accuracy}
    )
    assert result.history[-1]["train_loss"] < 0.1
    assert result.history[-1]["val_acc"] == 1.0


# ---- metrics, loss, scores ----------------------------------------------------------------------------------------
def test_summary_on_hand_made_scores():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.1, 0.05])
    s = qg_train.summarize(labels, scores)
    assert s["auc"] == pytest.approx(14 / 16)  # 14 of 16 quark-gluon pairs ordered correctly
    assert s["accuracy"] == pytest.approx(6 / 8)
    assert s["rej50"] is None  # eps_b = 0 at eps_s = 0.5: infinite rejection
    assert s["rej30"] is None
    # ties make a diagonal ROC segment: q 0.9, then 2 q + 2 g tied at 0.5, then q 0.1 -> ROC (eps_b, eps_s)
    # (0, 0), (0, 0.25), (1, 0.75), (1, 1); linear interpolation: eps_b(0.5) = 0.5, eps_b(0.3) = 0.1
    tied = qg_train.summarize(np.array([1, 1, 1, 0, 0, 1]), np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1]))
    assert tied["rej50"] == pytest.approx(2.0)
    assert tied["rej30"] == pytest.approx(10.0)
    assert tied["auc"] == pytest.approx(0.5) and tied["accuracy"] == pytest.approx(0.5)
    assert "interpolated" in tied["rejection_note"]


def test_scores_and_loss_for_one_and_two_logits():
    two = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    np.testing.assert_allclose(qg_train.scores_from_logits(two), torch.softmax(two, 1)[:, 1].numpy(), rtol=1e-6)
    one = torch.tensor([[2.0], [-1.0]])
    np.testing.assert_allclose(qg_train.scores_from_logits(one), torch.sigmoid(one[:, 0]).numpy(), rtol=1e-6)
    target = torch.tensor([1, 0])
    assert float(qg_train.classification_loss(two, target)) > 0
    assert float(qg_train.classification_loss(one, target)) > 0
    assert float(qg_train.accuracy(two, target)) == 1.0 and float(qg_train.accuracy(one, target)) == 1.0


# ---- data ---------------------------------------------------------------------------------------------------------
def _write_qg(path, n_train=20, n_test=10, k=8, labels=None):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for group, n in (("train_dataset", n_train), ("test_dataset", n_test)):
            x = np.zeros((n, k, 5), np.float32)
            x[:, k // 2 :] = rng.random((n, k - k // 2, 5)) + 0.1
            y = (np.arange(n) % 2).astype(np.float32) if labels is None else labels[:n]
            f[f"{group}/X"], f[f"{group}/Y"] = x, y


def test_load_data_split_trim_and_errors(tmp_path):
    _write_qg(tmp_path / "QG8.h5")
    data = qg_train.load_data("smoke", "mlp", k=6, source=tmp_path)
    assert data.sizes == {"train": 18, "val": 2, "test": 10} and data.k == 6
    again = qg_train.load_data("smoke", "mlp", k=6, source=tmp_path)
    np.testing.assert_array_equal(again.val_labels, data.val_labels)  # deterministic validation split
    assert data.train[0]["inputs"].shape == (6, 5) and data.train[0]["target"].dtype == torch.int64
    with pytest.raises(ValueError, match="larger than the padded length"):
        qg_train.load_data("smoke", "mlp", k=9, source=tmp_path)
    with pytest.raises(FileNotFoundError, match="notebook 07"):
        qg_train.load_data("smoke", "mlp", source=tmp_path / "missing")
    with pytest.raises(KeyError, match="known"):
        qg_train.load_data("smoke", "nope", source=tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    _write_qg(bad / "QG8.h5", labels=np.full(20, 2.0, np.float32))
    with pytest.raises(ValueError, match="labels must be 0"):
        qg_train.load_data("smoke", "mlp", k=8, source=bad)


def test_particle_features():
    x = np.zeros((2, 4, 4))
    x[0, :3] = [[10, 0.1, 1.0, 211], [30, 0.0, 1.1, 22], [20, -0.1, 0.9, 2112]]
    x[1, :2] = [[5, 0.0, 0.0, 11], [5, 0.0, 0.2, -13]]
    feats = qg_train.particle_features(x, k=5)
    assert feats.shape == (2, 5, len(qg_train.PARTICLE_FEATURES))
    assert np.all(feats[0, 3:] == 0) and np.all(feats[1, 2:] == 0)
    f = {name: i for i, name in enumerate(qg_train.PARTICLE_FEATURES)}
    np.testing.assert_allclose(feats[0, :3, f["pt_rel"]], [0.5, 20 / 60, 10 / 60])  # sorted by pT
    np.testing.assert_array_equal(feats[0, :3, f["charge"]], [0, 0, 1])  # charge
    np.testing.assert_array_equal(feats[0, :3, f["is_photon"]], [1, 0, 0])  # photon
    np.testing.assert_array_equal(feats[0, :3, f["is_neutral_hadron"]], [0, 1, 0])  # neutral hadron
    np.testing.assert_array_equal(feats[1, :2, f["charge"]], [-1, 1])  # e- and mu+
    centred = (feats[0, :3, f["pt_rel"]] * feats[0, :3, f["dy"]]).sum()
    assert abs(float(centred)) < 1e-6  # centred on the pT-weighted axis


def test_scores_file_and_run_directory(tmp_path, isolated_outputs):
    path = qg_train.write_scores(tmp_path, "test", np.array([0, 1]), np.array([0.2, 0.7]))
    with np.load(path) as f:
        np.testing.assert_array_equal(f["labels"], [0, 1])
    settings = qg_train.preset("mlp", seed=1, epochs=4, batch_size=128, max_steps_per_epoch=100)
    tag = qg_train.run_tag("mlp", settings)
    assert tag == "seed1-epochs4-bs128-steps100"
    assert qg_train.run_tag("mlp", qg_train.preset("mlp", seed=0)) == "seed0"  # the preset itself: only the seed
    runs_qg = isolated_outputs["build"] / "demo" / "runs" / "qg"
    assert qg_train.run_dir("demo", "mlp", tag=tag) == runs_qg / f"mlp@{tag}"
    assert qg_train.run_dir("demo", "mlp", particle_level=True) == runs_qg / "mlp_particle"
    with pytest.raises(KeyError, match="known"):
        qg_train.run_name("nope")
