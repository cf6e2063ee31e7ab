"""Tests for the parametric Inner Detector (jetcloud.atlas.sim.tracker)."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.atlas.layers import EXTRAPOLATION_SAMPLINGS, MISSING_EXTRAPOLATION, MISSING_THRESHOLD
from jetcloud.atlas.sim.tracker import (
    FIELD,
    HIT_COLUMNS,
    calo_entry,
    extrapolate_helices,
    extrapolate_to_layers,
    layer_branches,
    pt_resolution,
    simulate_tracks,
    stack_layer_branches,
    track_columns,
)
from jetcloud.sim.helix import C_LIGHT_GEV, helix_to_cylinder, helix_to_disk
from jetcloud.sim.particles import Particles

COL = {s: i for i, s in enumerate(EXTRAPOLATION_SAMPLINGS)}
FULL_FIELD = {**FIELD, "field_radius_mm": np.inf, "field_half_length_mm": np.inf}


def make_particles(pt, eta, phi, charge, *, event=None, vz=None, pdg=None, status=None, vx=None, vy=None) -> Particles:
    pt = np.asarray(pt, dtype=np.float64)
    n = len(pt)
    event = np.zeros(n, dtype=np.int64) if event is None else np.asarray(event, dtype=np.int64)
    index = np.zeros(n, dtype=np.int32)
    for ev in np.unique(event):  # position within the event's truth list
        m = event == ev
        index[m] = np.arange(m.sum())
    charge = np.asarray(charge, dtype=np.float32)
    zeros = np.zeros(n)
    eta = np.asarray(eta, dtype=np.float64)
    m = np.where(charge != 0, 0.13957, 0.0)
    return Particles(
        event=event,
        index=index,
        pdg=np.asarray(
            pdg if pdg is not None else np.where(charge > 0, 211, np.where(charge < 0, -211, 22)), dtype=np.int32
        ),
        charge=charge,
        pt=pt,
        eta=eta,
        phi=np.asarray(phi, dtype=np.float64),
        e=np.sqrt((pt * np.cosh(eta)) ** 2 + m**2),
        m=m,
        vx=zeros if vx is None else np.asarray(vx, dtype=np.float64),
        vy=zeros if vy is None else np.asarray(vy, dtype=np.float64),
        vz=zeros if vz is None else np.asarray(vz, dtype=np.float64),
        status=np.ones(n, dtype=np.int32) if status is None else np.asarray(status, dtype=np.int32),
        barcode=np.arange(n, dtype=np.int32) + 10001,
    )


def random_particles(rng: np.random.Generator, n_events: int = 50, per_event: int = 40) -> Particles:
    n = n_events * per_event
    return make_particles(
        pt=rng.exponential(3.0, n) + 0.1,
        eta=rng.uniform(-3.0, 3.0, n),
        phi=rng.uniform(-np.pi, np.pi, n),
        charge=rng.choice([-1.0, 0.0, 1.0], n),
        event=np.repeat(np.arange(n_events), per_event),
        vz=rng.normal(0.0, 45.0, n),
        vx=rng.normal(0.0, 0.01, n),
        vy=rng.normal(0.0, 0.01, n),
    )


def test_straight_high_pt_track_follows_its_direction():
    eta = np.array([0.5, -0.5, 2.0, -2.0, 1.2])
    phi = np.array([1.0, -2.0, 3.0, -3.1, 0.2])
    le, lp = extrapolate_helices(np.full(5, 5000.0), eta, phi, np.ones(5), np.zeros(5))
    valid = le > MISSING_THRESHOLD
    assert valid[:2, COL["EMB2"]].all() and valid[2:4, COL["EME2"]].all()
    ref = np.broadcast_to(eta[:, None], le.shape)
    np.testing.assert_allclose(le[valid], ref[valid], atol=1e-3)
    dphi = np.angle(np.exp(1j * (lp - phi[:, None])))
    assert np.abs(dphi[valid]).max() < 2e-3


def test_phi_bending_sign_and_magnitude():
    # 1 GeV pi+ in a uniform 2 T field at r = 1.5 m: dphi = -asin(0.3 B r / (2 pT)) ~ -0.467 rad.
    _, phi_p, ok = helix_to_cylinder(1.0, 0.0, 0.0, 1.0, 0.0, 1500.0, **FULL_FIELD)
    _, phi_m, _ = helix_to_cylinder(1.0, 0.0, 0.0, -1.0, 0.0, 1500.0, **FULL_FIELD)
    assert ok
    assert phi_p == pytest.approx(-np.arcsin(C_LIGHT_GEV * 2 * 1.5 / 2), abs=1e-9)
    assert phi_p == pytest.approx(-np.arcsin(0.3 * 2 * 1.5 / (2 * 1.0)), abs=2e-3)
    assert phi_m == pytest.approx(-phi_p)  # negative particles bend the other way
    # Default field ends at r = 1150 mm: straight beyond, so slightly less bending but the same sign.
    _, phi_d, _ = helix_to_cylinder(1.0, 0.0, 0.0, 1.0, 0.0, 1500.0, **FIELD)
    assert -0.467 < phi_d < -0.40
    # Wraps across +-pi.
    _, phi_w, _ = helix_to_cylinder(1.0, 0.0, -3.0, 1.0, 0.0, 1500.0, **FULL_FIELD)
    assert phi_w == pytest.approx(-3.0 + phi_p + 2 * np.pi)


def test_z_grows_with_arc_length_and_includes_vz():
    pt, eta, vz, r = 1.0, 0.7, 80.0, 1500.0
    e, _, _ = helix_to_cylinder(pt, eta, 0.0, 1.0, vz, r, **FULL_FIELD)
    rc = pt / (C_LIGHT_GEV * 2.0) * 1000.0
    s_t = 2 * rc * np.arcsin(r / (2 * rc))
    assert e == pytest.approx(np.arcsinh((vz + np.sinh(eta) * s_t) / r))
    # Straight track at eta = 0 from vz: eta seen from the origin is asinh(vz / R).
    le, _ = extrapolate_helices(
        np.array([1000.0]), np.array([0.0]), np.array([0.0]), np.array([1.0]), np.array([100.0])
    )
    assert le[0, COL["EMB2"]] == pytest.approx(np.arcsinh(100.0 / 1723.89), rel=1e-5)


def test_curling_tracks_never_reach():
    # 2 R_c = 2 * 0.4 / 0.6 m = 1.33 m < 1.5 m: no intersection with a 1.5 m cylinder in a uniform field.
    _, _, ok = helix_to_cylinder(0.4, 0.0, 0.0, 1.0, 0.0, 1500.0, **FULL_FIELD)
    assert not ok
    # 0.3 GeV at eta ~ 0 loops inside the 1150 mm solenoid: no calorimeter point at all.
    le, lp = extrapolate_helices(
        np.full(3, 0.3), np.array([0.0, 0.3, -0.3]), np.zeros(3), np.array([1.0, -1.0, 1.0]), np.zeros(3)
    )
    assert (le < MISSING_THRESHOLD).all() and (lp < MISSING_THRESHOLD).all()
    p = make_particles([0.3, 0.3, 0.3], [0.1, 0.1, 2.2], [0.0, 0.0, 0.0], [1.0, 0.0, -1.0])
    _, _, reached = calo_entry(p)
    assert reached.tolist() == [False, True, True]  # neutral goes straight; the forward one exits the field end


def test_negative_eta_gets_negative_endcap_points():
    eta = np.array([-1.7, -2.3, -2.0])
    le, _ = extrapolate_helices(np.array([2.0, 5.0, 1.0]), eta, np.zeros(3), np.array([1.0, -1.0, 1.0]), np.zeros(3))
    for j in ("EME1", "EME2", "HEC0"):
        assert (le[:, COL[j]] > MISSING_THRESHOLD).all()
        assert (le[:, COL[j]] < -1.3).all()
    assert (le[:, COL["EMB2"]] < MISSING_THRESHOLD).all()
    # A disk on the wrong side is never reached.
    _, _, ok = helix_to_disk(5.0, -2.0, 0.0, 1.0, 0.0, +3983.68, **FIELD)
    assert not ok
    e, _, ok = helix_to_disk(5.0, -2.0, 0.0, 1.0, 0.0, -3983.68, **FIELD)
    assert ok and e == pytest.approx(-2.0, abs=0.01)
    _, _, ok = helix_to_disk(5.0, -2.0, 0.0, 1.0, 0.0, -3983.68, r_max_mm=500.0, **FIELD)
    assert not ok  # arrives at r ~ 1100 mm, outside [0, 500]


def test_sentinels_are_exact_float32():
    le, lp = extrapolate_helices(np.array([10.0]), np.array([0.2]), np.array([0.0]), np.array([1.0]), np.zeros(1))
    assert le.dtype == np.float32 and lp.dtype == np.float32
    miss = le[0] < MISSING_THRESHOLD
    assert miss[COL["EME2"]] and miss[COL["HEC0"]] and not miss[COL["EMB2"]]
    assert np.all(le[0, miss] == np.float32(-999999999))
    assert np.all(lp[0, miss] == np.float32(-999999999))
    assert np.float32(-999999999) == MISSING_EXTRAPOLATION


def test_extrapolate_to_layers_accepts_particles_and_mappings():
    rng = np.random.default_rng(3)
    p = random_particles(rng, 2, 10)
    e1, p1 = extrapolate_to_layers(p)
    e2, p2 = extrapolate_to_layers({"pt": p.pt, "eta": p.eta, "phi": p.phi, "charge": p.charge, "vz": p.vz})
    assert e1.shape == (20, 21)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(p1, p2)
    cols = layer_branches(e1, p1)
    assert list(cols)[:4] == [
        "trackEta_PreSamplerB",
        "trackPhi_PreSamplerB",
        "trackEta_PreSamplerE",
        "trackPhi_PreSamplerE",
    ]
    e3, p3 = stack_layer_branches(cols)
    np.testing.assert_array_equal(e3, e1)
    np.testing.assert_array_equal(p3, p1)


def test_calo_entry_neutral_and_charged():
    p = make_particles([10.0, 10.0, 10.0, 50.0], [0.5, 3.0, -2.0, 0.3], [1.0, 1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 1.0])
    eta, phi, reached = calo_entry(p)
    assert reached.all()
    np.testing.assert_allclose(eta[:3], [0.5, 3.0, -2.0], atol=1e-9)
    np.testing.assert_allclose(phi[:3], 1.0, atol=1e-9)
    assert eta[3] == pytest.approx(0.3, abs=1e-3) and phi[3] < -1.0  # positive track bends to lower phi


def test_simulate_tracks_structure():
    rng = np.random.default_rng(4)
    p = random_particles(rng)
    tr = simulate_tracks(p, np.random.default_rng(5))
    assert list(tr) == list(track_columns())
    n = len(tr["event"])
    assert n > 100
    assert all(len(v) == n for v in tr.values())
    assert tr["event"].dtype == np.int64 and tr["truth_index"].dtype == np.int32
    for k in ("trackPt", "trackP", "trackEta", "trackPhi", "trackD0", "trackZ0", "trackChiSquared", "trackMass"):
        assert tr[k].dtype == np.float32, k
    for k in ("trackNumberDOF", *HIT_COLUMNS):
        assert tr[k].dtype == np.int32, k
    for s in EXTRAPOLATION_SAMPLINGS:
        assert tr[f"trackEta_{s}"].dtype == np.float32 and tr[f"trackPhi_{s}"].dtype == np.float32
    # Ordering: event non-decreasing, pT decreasing within an event.
    ev, pt = tr["event"], tr["trackPt"]
    assert np.all(np.diff(ev) >= 0)
    same = np.diff(ev) == 0
    assert np.all(np.diff(pt)[same] <= 0)
    # Selection.
    assert (pt > 0.5).all() and (np.abs(tr["trackEta"]) < 2.5).all()
    assert (tr["trackNumberDOF"] > 0).all()
    assert (tr["trackNumberOfPixelSharedHits"] == 0).all() and (tr["trackNumberOfSCTSharedHits"] == 0).all()
    np.testing.assert_allclose(tr["trackMass"], 0.13957, rtol=1e-6)
    np.testing.assert_allclose(tr["trackP"], pt * np.cosh(tr["trackEta"]), rtol=1e-5)
    # Truth link: charged, in the same event.
    key = tr["event"] * 1000 + tr["truth_index"]
    row = np.searchsorted(p.event * 1000 + p.index, key)
    assert (p.charge[row] != 0).all()
    assert np.abs(pt / p.pt[row] - 1).max() < 0.2
    assert len(np.unique(key)) == n
    # Every track above ~1 GeV has an EMB2 or EME2 point.
    emb2, eme2 = tr["trackEta_EMB2"], tr["trackEta_EME2"]
    ok = (emb2 > MISSING_THRESHOLD) | (eme2 > MISSING_THRESHOLD)
    np.testing.assert_array_equal(ok, tr["calo_reference_ok"])
    assert ok[pt > 1.0].all()
    # Both eta and phi are missing together.
    for s in EXTRAPOLATION_SAMPLINGS:
        np.testing.assert_array_equal(tr[f"trackEta_{s}"] < MISSING_THRESHOLD, tr[f"trackPhi_{s}"] < MISSING_THRESHOLD)


def test_simulate_tracks_efficiency_is_plausible():
    rng = np.random.default_rng(6)
    n = 20000
    p = make_particles(np.full(n, 10.0), rng.uniform(-0.5, 0.5, n), rng.uniform(-3, 3, n), np.ones(n))
    tr = simulate_tracks(p, np.random.default_rng(7))
    assert 0.85 < len(tr["event"]) / n < 0.95


def test_pt_resolution_matches_formula():
    rng = np.random.default_rng(8)
    n = 20000
    pt_true = 50.0
    p = make_particles(
        np.full(n, pt_true), rng.uniform(-0.5, 0.5, n), rng.uniform(-3, 3, n), rng.choice([-1.0, 1.0], n)
    )
    tr = simulate_tracks(p, np.random.default_rng(9), efficiency=False)
    assert len(tr["event"]) == n
    rel = (1.0 / tr["trackPt"] - 1.0 / pt_true) * pt_true  # (delta q/pT) * pT, charge-independent here
    expected = np.hypot(5e-4 * pt_true, 0.01)
    assert pt_resolution(pt_true) == pytest.approx(expected)
    assert rel.std() == pytest.approx(expected, rel=0.03)
    assert abs(rel.mean()) < 3 * expected / np.sqrt(n)


def test_determinism():
    p = random_particles(np.random.default_rng(10), 10, 30)
    a = simulate_tracks(p, np.random.default_rng(123))
    b = simulate_tracks(p, np.random.default_rng(123))
    c = simulate_tracks(p, np.random.default_rng(124))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert len(a["trackPt"]) != len(c["trackPt"]) or not np.array_equal(a["trackPt"], c["trackPt"])


def test_empty_input():
    tr = simulate_tracks(Particles.empty(), np.random.default_rng(0))
    assert list(tr) == list(track_columns())
    assert all(len(v) == 0 for v in tr.values())
    assert tr["trackEta_EMB2"].dtype == np.float32
