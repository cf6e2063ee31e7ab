"""Tests for the parametric shower simulation (jetcloud.atlas.sim.showers) on the built-in ATLAS-like geometry."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.atlas.cellgeo import CaloGeometry
from jetcloud.atlas.layers import SAMPLING_INDEX
from jetcloud.atlas.sim.showers import (
    Deposits,
    cell_energy_matrix,
    deposit,
    mean_pion_response,
    single_particle_response,
)
from jetcloud.atlas.sim.validation import response_table
from jetcloud.sim.particles import Particles
from jetcloud.sim.physics import ShowerParams, available_energy, fit_resolution, gun_particles, resolution_model

ENERGIES = [2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
TILE = [SAMPLING_INDEX[n] for n in ("TileBar0", "TileBar1", "TileBar2")]


@pytest.fixture(scope="module")
def geo() -> CaloGeometry:
    return CaloGeometry.builtin()


@pytest.fixture(scope="module")
def electrons(geo: CaloGeometry) -> dict[str, np.ndarray]:
    return single_particle_response(11, ENERGIES, 0.3, 300, geo, np.random.default_rng(11))


@pytest.fixture(scope="module")
def pions(geo: CaloGeometry) -> dict[str, np.ndarray]:
    return single_particle_response(211, ENERGIES, 0.3, 300, geo, np.random.default_rng(12))


def shoot(geo: CaloGeometry, pdg: int, energy: float, eta: float, n: int, seed: int = 0) -> tuple[Particles, Deposits]:
    rng = np.random.default_rng(seed)
    parts = gun_particles(pdg, energy, eta, n, rng)
    return parts, deposit(parts, parts.eta, parts.phi, np.ones(n, bool), geo, rng)


def sampling_fractions(geo: CaloGeometry, dep: Deposits) -> np.ndarray:
    per = np.bincount(geo.sampling[dep.cell].astype(np.int64), weights=dep.e_vis, minlength=24)
    return per / per.sum()


def test_output_structure_sorted_and_typed(geo: CaloGeometry) -> None:
    parts, dep = shoot(geo, 211, 20.0, 0.5, 50)
    assert dep.event.dtype == np.int64 and dep.cell.dtype == np.int64
    assert dep.truth_index.dtype == np.int32
    assert dep.e_vis.dtype == np.float32 and dep.e_true.dtype == np.float32
    key = np.stack([dep.event, dep.cell, dep.truth_index])
    order = np.lexsort(key[::-1])
    assert np.array_equal(order, np.arange(len(dep)))
    assert len(np.unique(key, axis=1)[0]) == len(dep)  # unique (event, cell, truth)
    assert (dep.cell >= 0).all() and (dep.cell < geo.n_cells).all()
    assert (dep.e_true >= 0).all() and (dep.e_vis >= 0).all()
    assert len(dep.e_dead) == len(parts) == len(dep.e_leak)


def test_energy_bookkeeping_is_exact(geo: CaloGeometry) -> None:
    rng = np.random.default_rng(3)
    parts = Particles.concatenate(
        [
            gun_particles(p, 15.0, eta, 20, rng)
            for p in (11, 22, 211, 2212, 2112, 13, 14)
            for eta in (0.3, 1.2, 1.45, 2.0, 3.6, -4.0)
        ]
    )
    parts.event = np.zeros(len(parts), np.int64)
    parts.index = np.arange(len(parts), dtype=np.int32)
    dep = deposit(parts, parts.eta, parts.phi, np.ones(len(parts), bool), geo, rng)
    e_true = np.bincount(dep.truth_index, weights=dep.e_true, minlength=len(parts))
    total = e_true + dep.e_dead + dep.e_leak
    np.testing.assert_allclose(total, available_energy(parts), rtol=1e-5)
    # protons deposit their kinetic energy
    np.testing.assert_allclose(available_energy(parts)[parts.pdg == 2212], 15.0 - 0.93827, rtol=1e-9)
    # neutrinos: nothing, all in e_leak
    nu = parts.pdg == 14
    assert e_true[nu].sum() == 0 and np.allclose(dep.e_leak[nu], 15.0)


def test_contained_electron_true_and_visible(electrons: dict[str, np.ndarray]) -> None:
    e = electrons["energy"][:, None]
    lost = (electrons["e_dead"] + electrons["e_leak"]) / e
    frac_true = electrons["e_true"] / e
    np.testing.assert_allclose(frac_true + lost, 1.0, rtol=1e-5)
    # upstream (dead material) loss of a few % at 10-100 GeV, more at 2 GeV
    assert 0.005 < lost[2:].mean() < 0.06 and lost[0].mean() < 0.15
    resp = (electrons["e_vis"] / e).mean(axis=1)
    assert np.all(np.abs(resp[2:] - 1.0) < 0.06), resp
    # EM: visible equals true within the sampling fluctuations
    np.testing.assert_allclose(electrons["e_vis"].mean(axis=1), electrons["e_true"].mean(axis=1), rtol=0.01)


def test_electrons_mostly_in_emb2_and_eme2(geo: CaloGeometry) -> None:
    _, dep = shoot(geo, 11, 20.0, 0.3, 200)
    f = sampling_fractions(geo, dep)
    assert np.argmax(f) == SAMPLING_INDEX["EMB2"] and f[SAMPLING_INDEX["EMB2"]] > 0.5
    assert f[[1, 2, 3, 0]].sum() > 0.99  # all in the EM barrel
    _, dep = shoot(geo, 11, 20.0, 2.0, 200)
    f = sampling_fractions(geo, dep)
    assert np.argmax(f) == SAMPLING_INDEX["EME2"] and f[SAMPLING_INDEX["EME2"]] > 0.5
    assert f[[4, 5, 6, 7]].sum() > 0.98


def test_pion_energy_in_tile_and_lateral_width(geo: CaloGeometry) -> None:
    _, dep = shoot(geo, 211, 20.0, 0.3, 300)
    f = sampling_fractions(geo, dep)
    assert f[TILE].sum() > 0.4, f
    # hadronic showers are wider than EM showers: energy-weighted mean |d eta| in EMB2 and TileBar0
    _, dep_e = shoot(geo, 11, 20.0, 0.3, 300)

    def width(d: Deposits, parts_eta: float, sampling: int) -> float:
        m = geo.sampling[d.cell] == sampling
        return float(np.average(np.abs(geo.eta[d.cell[m]] - parts_eta), weights=d.e_vis[m]))

    assert width(dep, 0.3, 2) > width(dep_e, 0.3, 2)
    assert 0.01 < width(dep_e, 0.3, 2) < 0.03  # a few EMB2 cells (0.025) wide


def test_pion_response_below_electron(electrons: dict[str, np.ndarray], pions: dict[str, np.ndarray]) -> None:
    e = pions["energy"]
    r_pi = pions["e_vis"].mean(axis=1) / e
    r_e = electrons["e_vis"].mean(axis=1) / e
    assert np.all(r_pi < r_e - 0.08)
    assert np.all((r_pi > 0.65) & (r_pi < 0.9)), r_pi
    assert np.all(np.diff(r_pi) > -0.02)  # response rises with energy (f_em grows)
    np.testing.assert_allclose(mean_pion_response(e), r_pi, atol=0.05)
    # hadron invisible energy: e_true clearly above e_vis
    assert np.all(pions["e_true"].mean(axis=1) > pions["e_vis"].mean(axis=1) * 1.08)


def _resolution(res: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-core mean and width per energy, with the estimator the validation notebook uses."""
    table = response_table(res["energy"], res["e_vis"])
    return table["energy"], table["mean"], table["sigma"]


def test_electron_resolution(electrons: dict[str, np.ndarray]) -> None:
    e, m, s = _resolution(electrons)
    fit = fit_resolution(e, m, s, sigma_errors=s / np.sqrt(2 * 300))
    assert abs(fit.a - 0.10) < 0.03, fit
    assert fit.b < 0.02 and fit.a_err < 0.01


def test_pion_resolution(pions: dict[str, np.ndarray]) -> None:
    e, m, s = _resolution(pions)
    fit = fit_resolution(e, m, s, sigma_errors=s / np.sqrt(2 * 300))
    assert abs(fit.a - 0.5) < 0.15, fit
    assert 0.0 <= fit.b < 0.1


def test_fit_resolution_recovers_model() -> None:
    e = np.array(ENERGIES)
    sig = resolution_model(e, 0.5, 0.04, 0.2) * e
    fit = fit_resolution(e, e, sig, c=None)
    assert fit.a == pytest.approx(0.5, rel=1e-3) and fit.b == pytest.approx(0.04, rel=1e-2)
    assert fit.c == pytest.approx(0.2, rel=1e-2)
    fit = fit_resolution(e, e, resolution_model(e, 0.1, 0.007) * e)
    assert fit.a == pytest.approx(0.1, rel=1e-3) and fit.c == 0.0 and fit.c_err == 0.0


def test_muons_mip(geo: CaloGeometry) -> None:
    for eta in (0.3, 2.0):
        parts, dep = shoot(geo, 13, 50.0, eta, 200)
        tot = np.bincount(dep.event, weights=dep.e_vis, minlength=200)
        assert 1.0 < tot.mean() < 4.0, (eta, tot.mean())
        assert np.median(tot) < tot.mean()  # Landau-like tail
        assert (dep.e_leak > 45).all()


def test_negative_eta_lands_at_negative_eta(geo: CaloGeometry) -> None:
    for pdg in (11, 211):
        for eta in (-0.3, -2.0, -4.0):
            _, dep = shoot(geo, pdg, 30.0, eta, 50)
            w = dep.e_vis
            assert np.average(geo.eta[dep.cell], weights=w) == pytest.approx(eta, abs=0.1)
            assert (geo.eta[dep.cell][w > 0.05] < 0).all()


def test_low_energy_local_and_not_reached(geo: CaloGeometry) -> None:
    rng = np.random.default_rng(5)
    parts = gun_particles(22, 0.2, 0.3, 30, rng)
    reached = np.ones(30, bool)
    reached[:10] = False
    dep = deposit(parts, parts.eta, parts.phi, reached, geo, rng)
    assert not np.isin(dep.event, np.arange(10)).any()
    np.testing.assert_allclose(dep.e_leak[:10], 0.2)
    per_event = np.bincount(dep.event, minlength=30)
    assert (per_event[10:] == 1).all()  # a single local deposit
    assert (geo.sampling[dep.cell] == SAMPLING_INDEX["PreSamplerB"]).all()


def test_crack_and_gap_energy_not_silently_lost(geo: CaloGeometry) -> None:
    for eta in (0.75, 0.95, 1.05, 1.42, 1.5, 3.15, 4.8):
        parts, dep = shoot(geo, 211, 20.0, eta, 100)
        e_true = dep.e_true.sum()
        assert e_true > 0.5 * 20.0 * 100, eta
        assert (e_true + dep.e_dead.sum() + dep.e_leak.sum()) == pytest.approx(available_energy(parts).sum(), rel=1e-5)
        assert dep.e_dead.sum() < 0.4 * 20.0 * 100, eta


def test_determinism(geo: CaloGeometry) -> None:
    _, a = shoot(geo, 211, 10.0, 1.0, 30, seed=7)
    _, b = shoot(geo, 211, 10.0, 1.0, 30, seed=7)
    _, c = shoot(geo, 211, 10.0, 1.0, 30, seed=8)
    for name in ("event", "cell", "truth_index", "e_vis", "e_true"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert len(a) != len(c) or not np.array_equal(a.e_vis, c.e_vis)


def test_cell_energy_matrix_and_multi_event(geo: CaloGeometry) -> None:
    rng = np.random.default_rng(9)
    parts = Particles.concatenate([gun_particles(p, 8.0, eta, 3, rng) for p, eta in ((22, 0.1), (211, -1.7))])
    parts.event = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
    order = np.argsort(parts.event, kind="stable")
    parts = parts.select(order)
    parts.index = np.tile(np.arange(2, dtype=np.int32), 3)
    dep = deposit(parts, parts.eta, parts.phi, np.ones(6, bool), geo, rng)
    mat = cell_energy_matrix(dep, 3, geo.n_cells)
    assert mat.shape == (3, geo.n_cells) and mat.dtype == np.float32
    np.testing.assert_allclose(mat.sum(axis=1), np.bincount(dep.event, weights=dep.e_vis, minlength=3), rtol=1e-5)
    assert set(np.unique(dep.truth_index)) == {0, 1}
    # each truth particle's deposits are on its own side
    for t, sign in ((0, 1), (1, -1)):
        m = dep.truth_index == t
        assert np.sign(np.average(geo.eta[dep.cell[m]], weights=dep.e_vis[m])) == sign


def test_params_are_used(geo: CaloGeometry) -> None:
    rng = np.random.default_rng(1)
    parts = gun_particles(211, 20.0, 0.3, 200, rng)
    ones = np.ones(200, bool)
    comp = ShowerParams(h_over_e=(1.0,) * 6)
    a = deposit(parts, parts.eta, parts.phi, ones, geo, np.random.default_rng(1))
    b = deposit(parts, parts.eta, parts.phi, ones, geo, np.random.default_rng(1), params=comp)
    assert b.e_vis.sum() > a.e_vis.sum() * 1.1  # compensating calorimeter: higher response
