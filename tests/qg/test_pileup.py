"""In-time pile-up: the minimum-bias library and its overlay (jetcloud.qg.pileup)."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.qg import pileup
from jetcloud.qg import simulate as qg
from jetcloud.sim.particles import Particles


def toy_library(n_events: int = 30, seed: int = 0) -> pileup.MinBiasLibrary:
    """Hand-built minimum-bias events: random particles with known energies, vertices around each event's z."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 40, n_events)
    n = int(counts.sum())
    pt = rng.exponential(0.5, n) + 0.05
    eta = rng.uniform(-3, 3, n)
    m = np.full(n, 0.13957)
    z_event = np.repeat(rng.normal(0, 50, n_events), counts)
    p = Particles(
        event=np.repeat(np.arange(n_events, dtype=np.int64), counts),
        index=np.full(n, -1, np.int32),
        pdg=rng.choice([211, -211, 22, 2112], n).astype(np.int32),
        charge=rng.choice([1.0, -1.0, 0.0], n).astype(np.float32),
        pt=pt,
        eta=eta,
        phi=rng.uniform(-np.pi, np.pi, n),
        e=np.sqrt((pt * np.cosh(eta)) ** 2 + m**2),
        m=m,
        vx=rng.normal(0, 0.01, n),
        vy=rng.normal(0, 0.01, n),
        vz=z_event,
        status=np.ones(n, np.int32),
        barcode=np.arange(n, dtype=np.int32),
    )
    return pileup.MinBiasLibrary.from_particles(p, n_events)


def test_overlay_conserves_library_energy_and_momenta():
    lib = toy_library()
    out = pileup.overlay(lib, 50, 20.0, np.random.default_rng(1))
    assert len(out.chosen) == len(out.target) == out.n_pileup.sum()
    assert out.n_pileup.mean() == pytest.approx(20.0, rel=0.15)
    # the summed energy of the overlaid particles is that of the chosen library events, per target event too
    e_lib = lib.event_energy()
    assert out.particles.e.sum() == pytest.approx(e_lib[out.chosen].sum(), rel=1e-12)
    per_target = np.bincount(out.particles.event, weights=out.particles.e, minlength=50)
    assert np.allclose(per_target, np.bincount(out.target, weights=e_lib[out.chosen], minlength=50))
    # rotations and reflections keep E, pT and |eta| of every particle, and its mass
    counts = np.diff(lib.offsets)[out.chosen]
    rows = np.concatenate([np.arange(lib.offsets[c], lib.offsets[c + 1]) for c in out.chosen])
    src = lib.particles.select(rows)
    assert len(src) == len(out.particles) == counts.sum()
    assert np.array_equal(out.particles.e, src.e) and np.array_equal(out.particles.pt, src.pt)
    assert np.allclose(np.abs(out.particles.eta), np.abs(src.eta))
    assert np.allclose(np.hypot(out.particles.vx, out.particles.vy), np.hypot(src.vx, src.vy))
    assert np.all(np.abs(out.particles.phi) <= np.pi)
    # both reflections occur, and phi is rotated (not the library's)
    flipped = np.isclose(out.particles.eta, -src.eta) & ~np.isclose(src.eta, 0)
    assert 0.3 < flipped.mean() < 0.7
    assert not np.allclose(out.particles.phi, src.phi)
    assert np.all(np.diff(out.particles.event) >= 0)


def test_overlay_vertices_follow_the_beam_spot():
    lib = toy_library(200)
    out = pileup.overlay(lib, 2000, 5.0, np.random.default_rng(2), sigma_z_mm=50.0)
    first = np.r_[0, np.cumsum(np.diff(lib.offsets)[out.chosen])[:-1]]  # first particle of every collision
    z = out.particles.vz[first]
    assert z.std() == pytest.approx(50.0, rel=0.05)
    assert abs(z.mean()) < 3.0


def test_overlay_reproducible_and_mu_zero():
    lib = toy_library()
    a = pileup.overlay(lib, 40, 20.0, np.random.default_rng(7))
    b = pileup.overlay(lib, 40, 20.0, np.random.default_rng(7))
    for name in ("e", "eta", "phi", "vz", "event"):
        assert np.array_equal(getattr(a.particles, name), getattr(b.particles, name))
    assert np.array_equal(a.chosen, b.chosen)
    c = pileup.overlay(lib, 40, 20.0, np.random.default_rng(8))
    assert not np.array_equal(a.chosen, c.chosen)
    none = pileup.overlay(lib, 40, 0.0, np.random.default_rng(7))
    assert len(none.particles) == 0 and none.n_pileup.sum() == 0
    with pytest.raises(ValueError, match="mu"):
        pileup.overlay(lib, 40, -1.0, np.random.default_rng(7))


def test_library_needs_grouped_events():
    lib = toy_library(5)
    p = lib.particles.select(np.arange(len(lib.particles))[::-1])
    with pytest.raises(ValueError, match="grouped"):
        pileup.MinBiasLibrary.from_particles(p, 5)


def test_config_checks_pileup():
    with pytest.raises(ValueError, match="pileup_mu"):
        qg.ImageConfig(pileup_mu=-1.0)
    with pytest.raises(ValueError, match="pileup_library_events"):
        qg.ImageConfig(pileup_library_events=0)
    assert qg.ImageConfig().pileup_mu == 20.0
    assert "Beams:eCM = 8000.0" in qg.ImageConfig().minbias_settings()


@pytest.mark.slow
def test_real_library_is_reproducible():
    settings = qg.ImageConfig().minbias_settings()
    a = pileup.generate_library(20, 11, settings)
    b = pileup.generate_library(20, 11, settings)
    assert a.n_events == 20 and len(a.particles) > 20 * 20  # ~70 particles per event within |eta| < 3.2
    assert np.array_equal(a.particles.e, b.particles.e) and np.array_equal(a.vertex_z, b.vertex_z)
    assert np.all(np.abs(a.particles.eta) < 3.2) and np.all(a.particles.index == -1)
    assert a.vertex_z.std() > 10.0  # the CMS beam spot (sigma_z 50 mm)


def test_median_hits_goal():
    report = {"track": ((50, 150), (90, 110)), "ECAL": ((100, 600), (200, 300)), "HCAL": ((100, 1000), (400, 600))}
    n_hits = np.array([[40, 250, 500], [100, 260, 525], [120, 700, 1200]])
    goal = qg.median_hits_goal(n_hits, report)
    assert goal["median_hits"] == {"track": 100.0, "ecal": 260.0, "hcal": 525.0}
    assert goal["median_hits_in_report_range"] == {"track": True, "ecal": True, "hcal": True}
    assert goal["median_hits_in_report_peak"] == {"track": True, "ecal": True, "hcal": True}
    goal = qg.median_hits_goal(np.array([[10, 150, 300]]), report)
    assert goal["median_hits_in_report_range"] == {"track": False, "ecal": True, "hcal": True}
    assert goal["median_hits_in_report_peak"] == {"track": False, "ecal": False, "hcal": False}
    with pytest.raises(ValueError, match="n_hits"):
        qg.median_hits_goal(np.zeros((0, 3)), report)
