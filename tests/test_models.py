"""jetcloud.models: TSSR, masking, parameter counts of the report / HEAD models, T-Nets, registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from jetcloud import models
from jetcloud.models.layers import PackedPoints, keras_kernel_orthogonal_penalty, parameter_counts, tssr

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = {"size_factor": 0.125, "tnet_size_factor": 0.0625}


def point_clouds(batch: int = 4, length: int = 24, n_features: int = 6, seed: int = 0) -> torch.Tensor:
    """Padded clouds with the report's layout: (x, y, z, distance, energy, type); type -1 = padding."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.zeros(batch, length, n_features)
    feats[..., 5] = -1.0
    for i in range(batch):
        n = int(torch.randint(3, length - 2, (1,), generator=gen))
        feats[i, :n, :4] = torch.randn(n, 4, generator=gen)
        feats[i, :n, 4] = torch.rand(n, generator=gen) * 5
        feats[i, :n, 5] = (torch.rand(n, generator=gen) < 0.2).float()  # cells and a few track points
    return feats


def scramble_padding(feats: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """Change every padded point's features arbitrarily (keeping type -1)."""
    gen = torch.Generator().manual_seed(seed)
    out = feats.clone()
    pad = feats[..., 5] == -1
    noise = torch.randn(*feats.shape, generator=gen) * 1e3
    noise[..., 5] = -1.0
    out[pad] = noise[pad]
    return out


# ---- TSSR -----------------------------------------------------------------------------------------------------


def test_tssr_values() -> None:
    a, b = 0.05, 0.1
    x = torch.tensor([-2.0, -1e-6, 0.0, 0.5, 1.0 - 1e-6, 1.0, 4.0, 100.0])
    expected = torch.tensor([-0.1, -5e-8, 0.0, 0.5, 1.0 - 1e-6, 1.0, 0.1 * 2 - 0.1 + 1, 0.1 * 10 - 0.1 + 1])
    torch.testing.assert_close(tssr(x, a, b), expected)
    torch.testing.assert_close(models.TSSR(a, b)(x), expected)
    # continuity at 0 and 1
    eps = 1e-7
    for point in (0.0, 1.0):
        left, right = tssr(torch.tensor([point - eps, point + eps], dtype=torch.float64), a, b)
        assert abs(float(left - right)) < 1e-6


def test_tssr_gradient() -> None:
    a, b = 0.05, 0.1
    x = torch.tensor([-3.0, -0.5, 0.0, 0.25, 0.999, 1.0, 4.0], dtype=torch.float64, requires_grad=True)
    tssr(x, a, b).sum().backward()
    expected = torch.tensor([a, a, 1.0, 1.0, 1.0, b / 2, b / (2 * 2.0)], dtype=torch.float64)
    torch.testing.assert_close(x.grad, expected)
    smooth = torch.tensor([-1.3, 0.4, 2.5, 9.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tssr(t, a, b), (smooth,))


# ---- packing / masking ----------------------------------------------------------------------------------------


def test_packed_points_helpers() -> None:
    mask = torch.tensor([[True, False, True, False], [False, False, False, False], [True, True, True, True]])
    packed = PackedPoints.from_mask(mask)
    assert packed.counts == [2, 0, 4] and packed.n_points == 6
    x = torch.arange(6.0)[:, None].repeat(1, 3)
    assert packed.unpack(x)[0, 1].abs().sum() == 0 and packed.unpack(x)[0, 2, 0] == 1
    torch.testing.assert_close(packed.from_compact(packed.to_compact(x)), x)
    matrices = torch.stack([torch.eye(3) * (i + 1) for i in range(3)])
    for method in ("split", "padded"):  # the CPU and the GPU code paths
        expected_max = torch.tensor([[1.0] * 3, [0.0] * 3, [5.0] * 3])
        torch.testing.assert_close(packed.segment_max(x, method), expected_max)
        expected = x * torch.tensor([1, 1, 3, 3, 3, 3.0])[:, None]
        torch.testing.assert_close(packed.transform(x, matrices, method), expected)
    y = torch.randn(6, 5, requires_grad=True)
    g_split = torch.autograd.grad(packed.segment_max(y, "split").sum(), y)[0]
    g_padded = torch.autograd.grad(packed.segment_max(y, "padded").sum(), y)[0]
    torch.testing.assert_close(g_split, g_padded)


MASKED_MODELS = [
    ("pointnet", {**SMALL}),
    ("pointnet", {**SMALL, "faithful_tnet": True}),
    ("pointnet_attention", {"size_factor": 0.125, "num_layers": 1, "dim_feedforward": 32, "attention_dropout": 0.0}),
]


@pytest.mark.parametrize(("name", "kwargs"), MASKED_MODELS)
@pytest.mark.parametrize("training", [False, True])
def test_padding_never_influences_real_points(name: str, kwargs: dict, training: bool) -> None:
    torch.manual_seed(0)
    model = models.get_model(name, dropout=0.0, **kwargs)  # no dropout: the test compares two forwards
    model.train(training)
    feats = point_clouds()
    real = feats[..., 5] != -1
    out = model(feats)
    out_scrambled = model(scramble_padding(feats))
    torch.testing.assert_close(out[real], out_scrambled[real], rtol=0, atol=0)
    assert torch.all(out[~real] == 0) and torch.all(out_scrambled[~real] == 0)
    torch.testing.assert_close(model.global_feature(feats), model.global_feature(scramble_padding(feats)))
    # more padding at the end (a longer L) changes nothing either
    longer = torch.cat([feats, scramble_padding(torch.full((4, 7, 6), -1.0), seed=3)], dim=1)
    torch.testing.assert_close(model(longer)[:, : feats.shape[1]][real], out[real])


def test_unmasked_model_sees_padding_like_the_original() -> None:
    """mask_padding=False reproduces W8: padded points enter the max pools and change real outputs."""
    torch.manual_seed(0)
    model = models.get_model("pointnet", mask_padding=False, dropout=0.0, **SMALL).eval()
    feats = point_clouds()
    real = feats[..., 5] != -1
    assert not torch.allclose(model(feats)[real], model(scramble_padding(feats))[real])


def test_output_is_tssr_times_energy_and_empty_samples_work() -> None:
    torch.manual_seed(0)
    with_energy = models.get_model("pointnet", **SMALL).eval()
    fraction = models.get_model("pointnet", output="tssr", **SMALL).eval()
    fraction.load_state_dict(with_energy.state_dict())
    feats = point_clouds()
    feats[1, :, 5] = -1.0  # a sample without any real point
    torch.testing.assert_close(with_energy(feats), fraction(feats) * feats[..., 4])
    assert torch.all(with_energy(feats)[1] == 0)


def test_bad_input_shape() -> None:
    model = models.get_model("pointnet", **SMALL)
    with pytest.raises(ValueError, match="expects feats"):
        model(torch.zeros(2, 10, 5))
    with pytest.raises(ValueError, match="energy_index"):
        models.get_model("pointnet", energy_index=7)


# ---- T-Nets ---------------------------------------------------------------------------------------------------


def test_fixed_tnet_starts_at_identity_and_faithful_tnet_is_non_negative() -> None:
    torch.manual_seed(0)
    feats = point_clouds()
    fixed = models.get_model("pointnet", **SMALL).train()
    packed = PackedPoints.from_mask(feats[..., 5] != -1)
    matrices, penalty = fixed.input_tnet(packed.pack(feats), packed)
    torch.testing.assert_close(matrices, torch.eye(6).expand(4, 6, 6))
    assert penalty is None  # the input T-Net is not regularised (as in the report)
    fixed(feats)
    assert float(fixed.regularization_loss().detach()) == pytest.approx(0.0, abs=1e-9)  # identity: ||I I^T - I|| = 0
    faithful = models.get_model("pointnet", faithful_tnet=True, **SMALL).train()
    matrices, _ = faithful.input_tnet(packed.pack(feats), packed)
    assert torch.all(matrices >= 0)  # BN + ReLU on the matrix entries
    faithful(feats)
    assert float(faithful.regularization_loss().detach()) > 0
    faithful.eval()
    faithful(feats)
    assert faithful.regularization_loss() is None


@pytest.mark.parametrize(("rows", "k"), [(5, 3), (8, 4), (3, 6)])
def test_keras_kernel_penalty_matches_brute_force(rows: int, k: int) -> None:
    weight = torch.randn(k * k, rows, dtype=torch.float64)  # torch Linear(rows, k*k).weight
    kernel = weight.t()  # Keras kernel (rows, k*k)
    a = kernel.reshape(-1, k, k)
    aat = torch.tensordot(a, a, dims=([2], [2])).reshape(-1, k, k)
    brute = (0.001 * (aat - torch.eye(k, dtype=torch.float64)) ** 2).sum()
    torch.testing.assert_close(keras_kernel_orthogonal_penalty(weight, k, 0.001), brute)


# ---- parameter counts -----------------------------------------------------------------------------------------


def keras_layer_counts(n_features: int, point: tuple, global_: tuple, head: tuple) -> tuple[int, int]:
    """(trainable, BN statistics) from the report's layer list, layer by layer (Keras: BN = 2 + 2 per channel)."""

    def tnet(k: int, c_in: int) -> list[tuple[int, int]]:
        return [(c_in, 64), (64, 128), (128, 1024), (1024, 512), (512, 256), (256, k * k)]

    layers = tnet(n_features, n_features)  # conv_mlp x3 + dense_block x3, each followed by a BatchNorm
    layers += list(zip((n_features, *point[:-1]), point, strict=True))  # point conv_mlps
    layers += tnet(point[-1], point[-1])  # feature T-Net (its last dense_block has BN + ReLU too)
    layers += list(zip((point[-1], *global_[:-1]), global_, strict=True))  # global conv_mlps
    layers += list(zip((point[-1] + global_[-1], *head[:-1]), head, strict=True))  # segmentation conv_mlps
    weights = sum(i * o + o for i, o in layers) + head[-1] + 1  # + the final Conv1D(1)
    channels = sum(o for _, o in layers)
    return weights + 2 * channels, 2 * channels


def test_report_model_parameter_count() -> None:
    """size_factor=10, faithful T-Nets, 6 features: the reference document's 85,853,165 + 58,696 = 85,911,861."""
    trainable, stats = keras_layer_counts(6, (64, 64), (640, 1280, 10240), (5120, 2560, 1280))
    assert (trainable, stats) == (85_853_165, 58_696)  # the document is right
    model = models.get_model("pointnet", in_features=6, size_factor=10, faithful_tnet=True)
    counts = parameter_counts(model)
    assert counts["trainable"] == 85_853_165
    assert counts["bn_statistics"] == 58_696
    assert counts["keras_total"] == 85_911_861
    # the W14 fix drops the last T-Net BatchNorms (36 + 4096 channels, 4 entries each in Keras)
    fixed = parameter_counts(models.get_model("pointnet", size_factor=10))
    assert counts["keras_total"] - fixed["keras_total"] == 4 * (36 + 4096)


def test_head_model_parameter_count() -> None:
    """HEAD (88149f9): 9 features, point MLP 96-96, global 128-256-1024, head 512-256-128: 5,109,494."""
    trainable, stats = keras_layer_counts(9, (96, 96), (128, 256, 1024), (512, 256, 128))
    assert (trainable, trainable + stats) == (5_077_972, 5_109_494)
    model = models.get_model(
        "pointnet",
        in_features=9,
        type_index=None,
        point_widths=(96, 96),
        global_widths=(128, 256, 1024),
        head_widths=(512, 256, 128),
        faithful_tnet=True,
    )
    counts = parameter_counts(model)
    assert (counts["trainable"], counts["keras_total"]) == (5_077_972, 5_109_494)


# ---- registry -------------------------------------------------------------------------------------------------


def test_registry() -> None:
    assert {"pointnet", "pointnet_attention"} <= set(models.available_models())
    assert isinstance(models.get_model("pointnet", **SMALL), models.PointNetSegmentation)
    with pytest.raises(KeyError, match="available models: .*pointnet"):
        models.get_model("pointnett")
    with pytest.raises(TypeError, match="pointnet"):
        models.get_model("pointnet", no_such_argument=1)
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("pointnet")(nn.Linear)


def test_attention_model_one_output_per_point() -> None:
    torch.manual_seed(0)
    model = models.get_model("pointnet_attention", size_factor=0.125, num_layers=2).train()
    feats = point_clouds()
    out = model(feats)
    assert out.shape == feats.shape[:2]
    out.sum().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


# --------------------------------------------------------------------------------------------------------------
# track-conditioned networks
# --------------------------------------------------------------------------------------------------------------

_TRACK_COLUMNS = dict(bypass_index=5, padding_index=4, log_expected_index=6, track_indices=[6, 7], knn_indices=[0, 1])


def _track_batch(b: int = 3, length: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, 8, generator=g)
    x[..., 4] = 0.0
    x[:, -3:, 4] = 1.0  # the last three points are padding
    x[..., 5] = torch.rand(b, length, generator=g) * 10  # energies (GeV)
    x[..., 6] = torch.log(torch.tensor([2.0, 5.0, 20.0]))[:b, None]  # log expected energy, the same on every point
    return x


@pytest.mark.parametrize("name", ["track_conditioned", "track_conditioned_knn"])
def test_untrained_track_model_gives_the_template(name: str) -> None:
    torch.manual_seed(0)
    net = models.get_model(name, in_features=8, width=16, knn=4, **_TRACK_COLUMNS).eval()
    x = _track_batch()
    out = net(x)
    assert out.shape == (3, 11)
    torch.testing.assert_close(out[:, -1], x[:, 0, 6], rtol=0, atol=0)  # g starts at exactly 0
    assert (out[:, -4:-1] == 0).all()  # no logit on padding
    out.sum().backward()  # the zero last layer still receives gradients
    assert net.energy_head[1][-1].weight.grad.abs().sum() > 0


def test_track_model_is_permutation_equivariant_and_ignores_padding() -> None:
    torch.manual_seed(0)
    net = models.get_model("track_conditioned_knn", in_features=8, width=16, knn=4, **_TRACK_COLUMNS).eval()
    torch.nn.init.normal_(net.energy_head[1][-1].weight)  # a non-trivial energy output
    x = _track_batch()
    perm = torch.tensor([1, 0, 3, 2, 5, 4, 6, 7, 8, 9])  # points 0-6 shuffled (point 0 keeps the per-track inputs)
    perm[:7] = torch.tensor([0, 2, 1, 4, 3, 6, 5])
    out, out_p = net(x), net(x[:, perm])
    torch.testing.assert_close(out_p[:, -1], out[:, -1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_p[:, :-1], out[:, :-1][:, perm], rtol=1e-5, atol=1e-5)
    y = x.clone()
    y[:, -3:, :4] = 99.0  # padding content
    torch.testing.assert_close(net(y)[:, -1], out[:, -1])
    with pytest.raises(ValueError, match="knn"):
        models.get_model("track_conditioned_knn", in_features=8, knn=0, **_TRACK_COLUMNS)
