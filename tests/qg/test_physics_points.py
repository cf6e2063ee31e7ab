"""jetcloud.qg.physics_points (tower points, features, the writer) and the ParT features of jetcloud.qg.train /
jetcloud.models.transformer (particle features, ln m^2)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from jetcloud.models import get_model
from jetcloud.models.transformer import PAIR_FEATURES, pair_features
from jetcloud.qg import detector
from jetcloud.qg import physics_points as pp
from jetcloud.qg import train as qg_train
from jetcloud.qg.e2e import E2EWriter

F = {name: i for i, name in enumerate(pp.FEATURES)}


def _image() -> np.ndarray:
    """A track pixel, an ECAL pixel and one HCAL tower (12 GeV, upsampled as the simulation does)."""
    image = np.zeros((1, 125, 125, 3), np.float32)
    image[0, 70, 60, 0] = 5.0  # track pT 5 GeV, 8 rows (eta) up, 2 columns (phi) left of the centre
    image[0, 62, 65, 1] = 3.0  # ECAL crystal, 3 columns right
    towers = np.zeros((25, 25))
    towers[10, 14] = 12.0  # tower centre pixel (52, 72)
    image[0, ..., 2] = detector.upsample_hcal(towers)
    return image


def test_tower_block_becomes_one_point_at_the_tower_centre():
    res = pp.image_points(_image())
    x = res["X"][0]
    assert res["n_points"][0] == 3 and x.shape == (3, len(pp.FEATURES))
    np.testing.assert_array_equal(res["n_type"][0], [1, 1, 1])
    # sorted by decreasing energy: HCAL tower (12), track (5), ECAL (3)
    np.testing.assert_allclose(np.exp(x[:, F["log_e"]]), [12.0, 5.0, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(x[:, F["is_track"] :], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    ce, cp = detector.CRYSTAL_ETA, detector.CRYSTAL_PHI
    np.testing.assert_allclose(x[:, F["deta"]], [-10 * ce, 8 * ce, 0.0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(x[:, F["dphi"]], [10 * cp, -2 * cp, 3 * cp], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res["e_type"][0], [5.0, 3.0, 12.0], rtol=1e-6)


def test_features_fractions_delta_r_globals_and_padding():
    images = np.concatenate([_image(), np.zeros((1, 125, 125, 3), np.float32)])
    images[1, 62, 62, 1] = 1.0
    res = pp.image_points(images, width=5)
    x = res["X"]
    assert x.shape == (2, 5, 8) and list(res["n_points"]) == [3, 1]
    np.testing.assert_allclose(x[0, :3, F["e_frac"]].sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(x[0, :3, F["e_frac"]], [12 / 20, 5 / 20, 3 / 20], rtol=1e-6)
    np.testing.assert_allclose(x[..., F["dr"]], np.hypot(x[..., F["deta"]], x[..., F["dphi"]]), rtol=1e-6)
    assert np.all(x[0, 3:] == 0) and np.all(x[1, 1:] == 0)  # padding at the end, zero rows
    assert (x[1, 0] != 0).any()  # a point at the jet axis is still a non-zero row (its type flag)
    np.testing.assert_allclose(res["globals"][0], np.log1p([1, 1, 1, 5.0, 3.0, 12.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="more than the width"):
        pp.image_points(images, width=2)


def test_non_uniform_hcal_block_is_an_error():
    image = _image()
    image[0, 50, 70, 2] += 0.1
    with pytest.raises(ValueError, match=r"tower \(10, 14\).*not uniform"):
        pp.image_points(image, where="f.h5")
    assert pp.image_points(image, check_towers=False)["e_type"][0, 2] == pytest.approx(12.1, rel=1e-5)


def _write_e2e(path, n_train=6, n_test=3, bad_jet=None):
    rng = np.random.default_rng(1)
    sizes = {"train": n_train, "test": n_test}
    with E2EWriter(path, n_train, n_test) as w:
        for split, n in sizes.items():
            images = np.repeat(_image(), n, axis=0)
            images[:, 30:40, 30:40, 1] = rng.random((n, 10, 10)) * (rng.random((n, 10, 10)) < 0.3)
            if split == "train" and bad_jet is not None:
                images[bad_jet, 5, 5, 1] = np.nan
            meta = np.stack([np.full(n, 520.0), np.full(n, 30.0), np.arange(n) % 2], axis=1)
            w.append(split, images, meta)
    return path


def test_writer_round_trip_and_training_data(tmp_path):
    e2e = _write_e2e(tmp_path / "qg.h5")
    summary = pp.convert_physics_points(e2e, tmp_path / "out", chunk_size=4)
    with h5py.File(e2e) as f:
        direct = {s: pp.image_points(f[f"{s}_jet"][:]) for s in ("train", "test")}
    k = max(int(d["n_points"].max()) for d in direct.values())
    assert summary["k"] == k and summary["jets"] == {"train": 6, "test": 3}
    for split, ref in direct.items():
        back = pp.read_physics_points(tmp_path / "out" / pp.PHYSICS_NAME, split)
        np.testing.assert_array_equal(back["X"][:, : ref["X"].shape[1]], ref["X"])
        assert np.all(back["X"][:, ref["X"].shape[1] :] == 0)
        np.testing.assert_array_equal(back["n_points"], ref["n_points"])
        np.testing.assert_array_equal(back["globals"], ref["globals"])
        np.testing.assert_array_equal(back["Y"], np.arange(len(back["Y"])) % 2)
    data = qg_train.load_data("smoke", "deepsets", source=tmp_path / "out", val_fraction=0.2)
    assert data.points == "physics" and data.n_globals == len(pp.GLOBAL_FEATURES) and data.k == k
    batch = data.train.__getitems__([0, 1])
    assert batch["inputs"].shape == (2, 1 + int(direct["train"]["n_points"][:2].max()), 8)  # trimmed batch
    np.testing.assert_allclose(batch["inputs"][0, 0, :6].numpy(), direct["train"]["globals"][0], rtol=1e-6)
    model = get_model("deepsets", **qg_train.model_kwargs("deepsets", data)).eval()
    assert model(batch["inputs"]).shape == (2, 2)
    report = qg_train.load_data("smoke", "deepsets", source=tmp_path / "out", points="physics", k=2)
    assert report.k == 2


def test_writer_rejects_non_finite_pixels_and_leaves_nothing(tmp_path):
    e2e = _write_e2e(tmp_path / "qg.h5", bad_jet=4)
    with pytest.raises(ValueError, match=r"qg\.h5: key train_jet: jet 4 has NaN"):
        pp.convert_physics_points(e2e, tmp_path / "out", chunk_size=4)
    assert not (tmp_path / "out" / pp.PHYSICS_NAME).exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


@pytest.mark.parametrize("name", ["deepsets", "particlenet_lite", "transformer_small"])
def test_globals_reach_the_head_and_padding_does_not(name):
    torch.manual_seed(0)
    kwargs = {"in_features": 8, "n_globals": 6}
    if name != "deepsets":
        kwargs.update(coord_index=(2, 3), log_features=())
    model = get_model(name, **kwargs).eval()
    x = torch.zeros(3, 1 + 12, 8)
    x[:, 0, :6] = torch.rand(3, 6) * 4
    x[:, 1:9, :5] = torch.rand(3, 8, 5)
    x[:, 1:9, 5] = 1.0
    with torch.no_grad():
        ref = model(x)
        other = x.clone()
        other[:, 0, :6] += 1.0
        assert not torch.allclose(model(other), ref)  # the globals matter
        assert torch.allclose(model(x[:, :9]), ref, atol=1e-5)  # trimming the padding changes nothing
    plain = get_model(name, **{k: v for k, v in kwargs.items() if k != "n_globals"})
    assert "n_globals" not in plain.hparams  # a model without globals is the model it was


def test_part_particle_features_on_a_hand_built_jet():
    x = np.zeros((1, 3, 4))
    x[0, :2] = [[30.0, 0.5, 1.0, 211], [10.0, -0.5, 1.2, 22]]
    feats = qg_train.particle_features(x)
    f = {n: i for i, n in enumerate(qg_train.PARTICLE_FEATURES)}
    m_pi = 0.13957039
    e = np.array([np.sqrt(30.0**2 + m_pi**2) * np.cosh(0.5), 10.0 * np.cosh(-0.5)])
    np.testing.assert_allclose(feats[0, :2, f["log_pt"]], np.log([30.0, 10.0]), rtol=1e-6)
    np.testing.assert_allclose(feats[0, :2, f["log_e"]], np.log(e), rtol=1e-6)
    np.testing.assert_allclose(feats[0, :2, f["log_pt_rel"]], np.log([0.75, 0.25]), rtol=1e-6)
    np.testing.assert_allclose(feats[0, :2, f["log_e_rel"]], np.log(e / e.sum()), rtol=1e-6)
    dy = np.array([0.5, -0.5]) - (0.75 * 0.5 - 0.25 * 0.5)
    dphi = np.array([1.0, 1.2]) - (0.75 * 1.0 + 0.25 * 1.2)
    np.testing.assert_allclose(feats[0, :2, f["dy"]], dy, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(feats[0, :2, f["delta_r"]], np.hypot(dy, dphi), rtol=1e-5)
    np.testing.assert_array_equal(feats[0, :2, f["charge"]], [1, 0])
    np.testing.assert_array_equal(feats[0, :2, f["is_photon"]], [0, 1])
    assert np.all(feats[0, 2] == 0)  # padding
    with pytest.raises(ValueError, match="not a PDG id"):
        qg_train.pid_masses(np.array([999999999]))


def test_ln_m2_pair_feature_on_two_massless_four_vectors():
    pt, y, phi = np.array([40.0, 25.0]), np.array([0.3, -0.4]), np.array([0.1, 0.9])
    p4 = np.stack([pt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y)], axis=1)
    total = p4.sum(axis=0)
    m2 = total[0] ** 2 - (total[1:] ** 2).sum()
    coords = torch.tensor(np.stack([y, phi], axis=1)[None], dtype=torch.float64)
    feats = pair_features(coords, torch.tensor(pt[None]))
    assert feats.shape == (1, 2, 2, len(PAIR_FEATURES)) and PAIR_FEATURES[-1] == "ln_m2"
    assert float(feats[0, 0, 1, 3]) == pytest.approx(np.log(m2), rel=1e-9)
    assert float(feats[0, 1, 0, 3]) == pytest.approx(np.log(m2), rel=1e-9)
    delta = np.hypot(y[0] - y[1], phi[0] - phi[1])
    assert float(feats[0, 0, 1, 1]) == pytest.approx(np.log(25.0 * delta), rel=1e-9)  # ln kT
    assert float(feats[0, 0, 1, 2]) == pytest.approx(np.log(25.0 / 65.0), rel=1e-9)  # ln z
