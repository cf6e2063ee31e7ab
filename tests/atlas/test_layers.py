"""Tests for the shared track/cell geometry helpers in jetcloud.atlas.layers."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.atlas.layers import (
    EXTRAPOLATION_ETA_RANGE,
    EXTRAPOLATION_FIXED_Z,
    EXTRAPOLATION_POSITION_MM,
    EXTRAPOLATION_SAMPLINGS,
    LAYER_NAMES,
    LAYER_POSITION_MM,
    MISSING_EXTRAPOLATION,
    cell_xyz,
    layer_intersections,
)
from jetcloud.kinematics import delta_phi, delta_r


def test_delta_phi_wraps_into_half_open_interval():
    assert delta_phi(3.1, -3.1) == pytest.approx(6.2 - 2 * np.pi)
    assert delta_phi(-3.1, 3.1) == pytest.approx(2 * np.pi - 6.2)
    assert delta_phi(np.pi, 0.0) == pytest.approx(np.pi)
    assert delta_phi(-np.pi, 0.0) == pytest.approx(np.pi)  # -pi maps onto +pi
    assert delta_phi(np.pi, -np.pi) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-10, 10, 10000), rng.uniform(-10, 10, 10000)
    d = delta_phi(a, b)
    assert np.all(d > -np.pi) and np.all(d <= np.pi)
    np.testing.assert_allclose(np.cos(d), np.cos(a - b), atol=1e-9)
    np.testing.assert_allclose(np.sin(d), np.sin(a - b), atol=1e-9)


def test_delta_r():
    assert delta_r(0.5, 3.1, -0.5, -3.1) == pytest.approx(np.hypot(1.0, 2 * np.pi - 6.2))
    np.testing.assert_allclose(delta_r(np.zeros(3), np.zeros(3), np.ones(3), np.zeros(3)), 1.0)


def _one_layer(name: str, eta: float, phi: float, bug: bool = False):
    x, y, z = layer_intersections(np.array([[eta]]), np.array([[phi]]), layers=[name], reproduce_original_bug=bug)
    return x[0, 0], y[0, 0], z[0, 0]


def test_fixed_z_intersection_positive_and_negative_eta():
    z0 = LAYER_POSITION_MM[LAYER_NAMES.index("EME2")]
    for eta in (2.0, -2.0):
        x, y, z = _one_layer("EME2", eta, 0.3)
        r = z0 / abs(np.sinh(eta))
        assert z == pytest.approx(np.sign(eta) * z0)
        assert (x, y) == pytest.approx((r * np.cos(0.3), r * np.sin(0.3)))
        # The point lies on the track direction: its eta seen from the origin is the track eta.
        assert np.arcsinh(z / np.hypot(x, y)) == pytest.approx(eta)


def test_reproduce_original_bug_reflects_negative_eta_through_origin():
    good = np.array(_one_layer("HEC1", -1.8, 0.3))
    bad = np.array(_one_layer("HEC1", -1.8, 0.3, bug=True))
    np.testing.assert_allclose(bad, -good)
    assert bad[2] > 0  # original code puts the point at +Z0
    # Positive eta and fixed-r layers are unaffected by the flag.
    np.testing.assert_allclose(_one_layer("HEC1", 1.8, 0.3, bug=True), _one_layer("HEC1", 1.8, 0.3))
    np.testing.assert_allclose(_one_layer("EMB2", -0.8, 0.3, bug=True), _one_layer("EMB2", -0.8, 0.3))


def test_cylinder_points_and_missing_values():
    rng = np.random.default_rng(2)
    eta = rng.uniform(-1.4, 1.4, (5, 19))
    phi = rng.uniform(-np.pi, np.pi, (5, 19))
    eta[0, 3] = MISSING_EXTRAPOLATION
    phi[1, 0] = MISSING_EXTRAPOLATION
    x, y, z = layer_intersections(eta, phi)
    assert x.shape == (5, 19)
    assert np.isnan(x[0, 3]) and np.isnan(z[0, 3]) and np.isnan(y[1, 0])
    j = LAYER_NAMES.index("TileBar1")
    R = LAYER_POSITION_MM[j]
    np.testing.assert_allclose(np.hypot(x[:, j], y[:, j]), R)
    np.testing.assert_allclose(z[:, j], R * np.sinh(eta[:, j]))
    np.testing.assert_allclose(np.arctan2(y[:, j], x[:, j]), phi[:, j])
    with pytest.raises(ValueError):
        layer_intersections(eta[:, :5], phi[:, :5])


def test_cell_xyz():
    x, y, z = cell_xyz(np.array([0.0, 1.0]), np.array([0.0, np.pi / 2]), np.array([1500.0, 2000.0]))
    np.testing.assert_allclose(x, [1500.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(y, [0.0, 2000.0])
    np.testing.assert_allclose(z, [0.0, 2000.0 * np.sinh(1.0)])


def test_extrapolation_tables_consistent():
    n = len(EXTRAPOLATION_SAMPLINGS)
    assert n == 21
    assert EXTRAPOLATION_FIXED_Z.shape == EXTRAPOLATION_POSITION_MM.shape == (n,)
    assert EXTRAPOLATION_ETA_RANGE.shape == (n, 2)
    assert np.all(EXTRAPOLATION_ETA_RANGE[:, 0] < EXTRAPOLATION_ETA_RANGE[:, 1])
    assert MISSING_EXTRAPOLATION == np.float32(-1e9)
