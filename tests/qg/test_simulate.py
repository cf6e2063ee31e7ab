"""Tests for the quark/gluon simulation: CMS-like detector and images (jetcloud.qg.detector), jets and labels
(jetcloud.qg.simulate), the E2E HDF5 file (jetcloud.qg.e2e) and the particle-level npz (jetcloud.qg.energyflow)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from jetcloud.io.manifest import read_manifest
from jetcloud.qg import detector as cms
from jetcloud.qg import e2e, energyflow
from jetcloud.qg import simulate as qg
from jetcloud.sim.particles import Particles

NO_NOISE = cms.CMSDetector(noise=False)


def hits(event, ieta, iphi, value) -> cms.Hits:
    return cms.Hits(
        *(
            np.asarray(a, dtype)
            for a, dtype in ((event, np.int64), (ieta, np.int64), (iphi, np.int64), (value, np.float64))
        )
    )


def particles(pdg, pt, eta, phi, charge, event=None) -> Particles:
    pt = np.asarray(pt, np.float64)
    n = len(pt)
    eta = np.asarray(eta, np.float64)
    mass = np.where(np.asarray(charge) != 0, 0.13957, 0.0)
    zeros = np.zeros(n)
    return Particles(
        event=np.zeros(n, np.int64) if event is None else np.asarray(event, np.int64),
        index=np.arange(n, dtype=np.int32),
        pdg=np.asarray(pdg, np.int32),
        charge=np.asarray(charge, np.float32),
        pt=pt,
        eta=eta,
        phi=np.asarray(phi, np.float64),
        e=np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2),
        m=mass,
        vx=zeros,
        vy=zeros,
        vz=zeros,
        status=np.ones(n, np.int32),
        barcode=np.arange(n, dtype=np.int32),
    )


# ---- images: axes, centring, phi wrap, HCAL spreading ------------------------------------------------------


def test_image_axes_centring_and_phi_wrap():
    # seed tower in the last phi column (71): the crop wraps around phi = +-pi
    te, tp = 30, 71
    hcal = hits([0, 0], [te, te + 1], [tp, 0], [40.0, 4.0])  # the second tower lies across the wrap
    jet_eta, jet_phi = cms.tower_center(te, tp)
    seed_eta, seed_phi, ok = cms.find_seeds(hcal, np.array([0]), np.array([jet_eta]), np.array([jet_phi]), 1)
    assert (seed_eta[0], seed_phi[0], ok[0]) == (te, tp, True)
    c_eta, c_phi = 5 * te + 2, 5 * tp + 2  # centre crystal of the seed tower
    ecal = hits([0, 0], [c_eta, c_eta + 3], [c_phi, (c_phi + 5) % 360], [7.0, 2.0])  # +3 in eta, +5 in phi (wraps)
    tracks = hits([0], [c_eta - 4], [c_phi - 1], [12.0])
    img = cms.jet_images(
        cms.DetectorResponse(tracks, ecal, hcal),
        np.array([0]),
        seed_eta,
        seed_phi,
        1,
        np.random.default_rng(0),
        NO_NOISE,
    ).dense()[0]
    assert img.shape == (125, 125, 3) and img.dtype == np.float32
    assert img[62, 62, cms.ECAL] == pytest.approx(7.0)  # seed crystal at pixel (62, 62)
    assert img[62 + 3, 62 + 5, cms.ECAL] == pytest.approx(2.0)  # axis 1 = eta, axis 2 = phi, across the wrap
    assert img[62 - 4, 62 - 1, cms.TRACK] == pytest.approx(12.0)
    assert np.count_nonzero(img[..., cms.ECAL]) == 2 and np.count_nonzero(img[..., cms.TRACK]) == 1
    # the seed tower fills pixels 60..64 x 60..64; the neighbour (eta + 1, phi wrapped to 0) the next block
    assert np.allclose(img[60:65, 60:65, cms.HCAL], 40.0 / 25)
    assert np.allclose(img[65:70, 65:70, cms.HCAL], 4.0 / 25)
    # pixel centres map back to the detector: pixel column 62 + 5 is crystal phi index (c_phi + 5) mod 360
    eta_c, phi_c = cms.crystal_center(c_eta + 3, (c_phi + 5) % 360)
    ie, ip, inside = cms.crystal_index(eta_c, phi_c)
    assert inside and ie == c_eta + 3 and ip == (c_phi + 5) % 360


def test_seed_is_the_hottest_tower_near_the_axis_and_edges_are_not_imageable():
    hcal = hits([0, 0, 0, 1], [30, 32, 36, 2], [10, 12, 10, 5], [5.0, 9.0, 50.0, 30.0])
    eta, phi = cms.tower_center(np.array([30, 2]), np.array([10, 5]))
    seed_eta, seed_phi, ok = cms.find_seeds(hcal, np.array([0, 1]), eta, phi, 2)
    assert (seed_eta[0], seed_phi[0]) == (32, 12)  # tower 36 is outside the 7 x 7 window
    assert ok[0] and not ok[1]  # tower 2 is less than 12 towers from the eta edge


def test_photon_lands_on_its_crystal_in_the_image():
    p = particles([22, 211], [50.0, 30.0], [0.40, 0.42], [3.10, 3.12], [0, 1])
    rng = np.random.default_rng(1)
    response = cms.simulate_detector(p, rng, NO_NOISE)
    seed_eta, seed_phi, ok = cms.find_seeds(response.hcal, np.array([0]), np.array([0.41]), np.array([3.11]), 1)
    img = cms.jet_images(response, np.array([0]), seed_eta, seed_phi, 1, rng, NO_NOISE).dense()[0]
    ie, ip, _ = cms.crystal_index(0.40, 3.10)
    row = ie - (5 * seed_eta[0] - 60)
    col = (ip - (5 * seed_phi[0] - 60)) % 360
    ecal = img[..., cms.ECAL]
    assert np.unravel_index(np.argmax(ecal), ecal.shape) == (row, col)
    assert ecal.sum() > 45.0  # photon ~50 GeV plus part of the pion


def test_hcal_spreading_conserves_energy():
    rng = np.random.default_rng(2)
    towers = rng.exponential(3.0, (4, 25, 25))
    up = cms.upsample_hcal(towers)
    assert up.shape == (4, 125, 125)
    assert np.allclose(up.sum(axis=(1, 2)), towers.sum(axis=(1, 2)))
    assert np.allclose(up[:, :5, :5], towers[:, :1, :1] / 25)
    # through the image code (no noise): the HCAL channel sums to the towers inside the crop
    hcal = hits([0] * 5, [30, 31, 29, 30, 30 + 13], [40, 40, 41, 39, 40], [20.0, 3.0, 2.5, 1.2, 9.0])
    sparse = cms.jet_images(
        cms.DetectorResponse(cms.Hits.empty(), cms.Hits.empty(), hcal),
        np.array([0]),
        np.array([30]),
        np.array([40]),
        1,
        rng,
        NO_NOISE,
    )
    img = sparse.dense()[0]
    assert img[..., cms.HCAL].sum() == pytest.approx(20.0 + 3.0 + 2.5 + 1.2, rel=1e-6)  # tower +13 is outside
    assert sparse.hit_counts()[0, cms.HCAL] == 4 * 25


def test_noise_and_zero_suppression_rates():
    # low thresholds (2.5 sigma) so there are enough noise hits to count; jets in the barrel (seed tower 30)
    det = cms.CMSDetector(ecal_zs_sigma=2.5, hcal_zs_et_gev=0.5)
    empty = cms.DetectorResponse(cms.Hits.empty(), cms.Hits.empty(), cms.Hits.empty())
    n = 400
    sparse = cms.jet_images(empty, np.arange(n), np.full(n, 30), np.full(n, 10), n, np.random.default_rng(3), det)
    counts = sparse.hit_counts()
    from scipy.special import ndtr

    # rows of the window: |eta| of the tower rows 18..42 (all barrel for the ECAL: |eta| < 1.1)
    tower_eta = np.abs((np.arange(18, 43) + 0.5) * cms.TOWER_ETA - cms.ETA_EDGE)
    expect_ecal = 125 * 125 * ndtr(-det.ecal_zs_sigma)
    expect_hcal = 25 * np.sum(ndtr(-cms.hcal_threshold(tower_eta, det) / det.hcal_noise_gev)) * 25
    assert counts[:, cms.TRACK].sum() == 0
    assert counts[:, cms.ECAL].mean() == pytest.approx(expect_ecal, rel=0.05)
    assert counts[:, cms.HCAL].mean() == pytest.approx(expect_hcal, rel=0.1)
    img = sparse.dense(0, 5)
    assert img[..., cms.ECAL][img[..., cms.ECAL] > 0].min() > det.ecal_zs_sigma * det.ecal_noise_gev


def test_zero_suppression_removes_sub_threshold_signal_and_noise():
    # thresholds without noise: a crystal at 2 sigma (suppressed), one at 10 sigma (kept); one HCAL tower below,
    # one above threshold
    ecal = hits([0, 0], [170, 180], [200, 205], [0.08, 0.40])
    hcal = hits([0, 0], [34, 36], [40, 41], [0.3, 5.0])
    resp = cms.DetectorResponse(cms.Hits.empty(), ecal, hcal)
    det = cms.CMSDetector(noise=False)
    sparse = cms.jet_images(resp, np.array([0]), np.array([35]), np.array([40]), 1, np.random.default_rng(0), det)
    assert list(sparse.hit_counts()[0]) == [0, 1, 25]  # sub-threshold crystal and tower removed
    # noise alone: with realistic noise, every kept noise value passes the threshold of its row
    det = cms.CMSDetector()
    sparse = cms.jet_images(
        cms.DetectorResponse(cms.Hits.empty(), cms.Hits.empty(), cms.Hits.empty()),
        np.arange(50),
        np.full(50, 35),
        np.full(50, 40),
        50,
        np.random.default_rng(1),
        det,
    )
    img = sparse.dense()
    ecal_thr = det.ecal_zs_sigma * det.ecal_noise_gev  # window rows of seed tower 35: |eta| < 1.1 (barrel)
    assert np.all(img[..., cms.ECAL][img[..., cms.ECAL] > 0] > ecal_thr)
    assert sparse.hit_counts()[:, cms.ECAL].mean() < 40  # 3 sigma: 0.13% of 15,625 crystals, ~21
    assert sparse.hit_counts()[:, cms.HCAL].sum() == 0  # 0.8 GeV E_T = 4 sigma or more: no noise-only tower here


def test_selective_readout_reads_hot_regions_in_full():
    # a 30 GeV crystal makes its trigger tower hot: the 3 x 3 trigger towers around it are read in full
    ecal = hits([0], [177], [202], [30.0])
    resp = cms.DetectorResponse(cms.Hits.empty(), ecal, cms.Hits.empty())
    det = cms.CMSDetector()
    sparse = cms.jet_images(resp, np.array([0]), np.array([35]), np.array([40]), 1, np.random.default_rng(2), det)
    n_ecal = sparse.hit_counts()[0, cms.ECAL]
    # 225 crystals read out in full: about half of the noise-only ones are > 0; plus ~21 noise hits elsewhere
    assert 80 < n_ecal < 180
    img = sparse.dense()[0, ..., cms.ECAL]
    row, col = 177 - (5 * 35 - 60), 202 - (5 * 40 - 60)
    block = img[(row // 5 - 1) * 5 : (row // 5 + 2) * 5, (col // 5 - 1) * 5 : (col // 5 + 2) * 5]
    assert 0.3 < np.mean(block > 0) < 0.7
    assert block.min() == 0 and 0 < img[img > 0].min() < det.ecal_noise_gev  # small positive values kept there


# ---- detector physics ---------------------------------------------------------------------------------------


def test_em_kernel_containment():
    k = cms.em_kernel()
    assert np.allclose(k.sum(axis=(2, 3)), 1.0)
    centre = k[4, 4]
    assert 0.75 < centre[3, 3] < 0.88  # E1 / E_total
    assert 0.93 < centre[2:5, 2:5].sum() < 0.98  # E9 / E_total


def test_single_particle_response():
    rng = np.random.default_rng(4)
    ele = cms.single_particle_response(11, [20.0], 400, rng)
    tot = ele["ecal"][0] + ele["hcal"][0]
    assert tot.mean() == pytest.approx(20.0, rel=0.01)
    assert tot.std() / tot.mean() == pytest.approx(np.hypot(0.028 / np.sqrt(20), 0.003), rel=0.2)
    pi = cms.single_particle_response(211, [20.0], 1000, rng)
    tot = pi["ecal"][0] + pi["hcal"][0]
    assert 0.65 < tot.mean() / 20.0 < 0.9  # non-compensation: pions read low at the EM scale
    assert 0.15 < tot.std() / tot.mean() < 0.35
    assert 0.4 < np.mean(pi["ecal"][0] > 0.5) < 0.8  # ~60% start showering in the ECAL


def test_curlers_and_tracks_down_to_low_pt():
    p = particles([211, 211, 211, 22], [0.5, 0.9, 5.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1, 1, 1, 0])
    eta, phi, reached = cms.impact(p, 1290.0, 3150.0)
    assert list(reached) == [False, True, True, True]  # 0.5 GeV curls before the ECAL (pT < 0.735 GeV)
    assert abs(phi[1]) > abs(phi[2]) > 0 and phi[3] == pytest.approx(0.0)  # bending falls with pT
    tracks = cms.reconstruct_tracks(p, np.random.default_rng(0), cms.CMSDetector(track_eff_central=1.0))
    # all three charged particles make tracks (no 1 GeV cut; 0.5 GeV is on the plateau of the turn-on), all at
    # their common vertex direction, even the curler: one crystal with the summed pT
    assert len(tracks) == 1 and tracks.value[0] == pytest.approx(0.5 + 0.9 + 5.0, rel=0.05)


def test_track_turn_on():
    det = cms.CMSDetector()
    eff = cms.track_turn_on(np.array([0.05, 0.1, det.track_turn_on_pt, 0.6, 1.0, 10.0]), det)
    assert eff[0] == 0.0 and eff[1] < 0.03  # below the floor, and well below the turn-on
    assert eff[2] == pytest.approx(0.5)
    assert np.all(eff[3:] > 0.99)  # plateau
    # through the tracker: efficiency ~0 at 0.1 GeV, the plateau (track_efficiency) at 2 GeV
    n = 4000
    rng = np.random.default_rng(5)
    for pt, lo, hi in ((0.12, 0.0, 0.06), (2.0, 0.90, 0.96)):
        p = particles([211] * n, [pt] * n, [0.3] * n, rng.uniform(-3, 3, n), [1] * n, event=np.arange(n))
        frac = len(cms.reconstruct_tracks(p, rng, det)) / n
        assert lo <= frac <= hi, (pt, frac)


def test_tracks_at_vertex_coordinates_calorimeter_at_impact():
    # a 1 GeV pi+ bends by ~0.6 rad before the ECAL; its track stays at its vertex eta, phi; a photon hits the
    # ECAL where it points
    p = particles([211, 22, 211], [1.0, 20.0, 40.0], [0.50, 0.45, 0.40], [0.20, 0.40, 0.30], [1, 0, 1])
    det = cms.CMSDetector(track_eff_central=1.0, noise=False)
    response = cms.simulate_detector(p, np.random.default_rng(4), det)
    ie, ip, _ = cms.crystal_index(np.array([0.50, 0.40]), np.array([0.20, 0.30]))
    got = sorted(zip(response.tracks.ieta, response.tracks.iphi, strict=True))
    assert got == sorted(zip(ie, ip, strict=True))
    e_eta, e_phi, _ = cms.impact(p, det.ecal_radius_mm, det.ecal_endcap_z_mm, det)
    assert abs(e_phi[0] - 0.20) > 0.3  # the charged pion bends: its ECAL impact is far from its track pixel
    seed_eta, seed_phi, ok = cms.find_seeds(response.hcal, np.array([0]), np.array([0.4]), np.array([0.3]), 1)
    img = cms.jet_images(response, np.array([0]), seed_eta, seed_phi, 1, np.random.default_rng(4), det).dense()[0]
    c_eta, c_phi = 5 * seed_eta[0] - 60, 5 * seed_phi[0] - 60
    trk = img[..., cms.TRACK]
    assert trk[ie[0] - c_eta, (ip[0] - c_phi) % 360] == pytest.approx(1.0, rel=0.05)  # at the vertex direction
    gi, gp, _ = cms.crystal_index(e_eta[1], e_phi[1])
    ecal = img[..., cms.ECAL]
    assert ecal[gi - c_eta, (gp - c_phi) % 360] > 0.6 * 20.0  # photon's core crystal at its impact point


# ---- labels from parton matching ------------------------------------------------------------------------------


def make_jets(event, pt, eta, phi) -> qg.Jets:
    n = len(event)
    z = np.zeros(n)
    return qg.Jets(
        np.asarray(event, np.int64),
        np.asarray(pt, float),
        np.asarray(eta, float),
        np.asarray(phi, float),
        z,
        z,
        np.zeros(n + 1, np.int64),
        np.zeros(0, np.int64),
    )


def test_labels_from_parton_matching():
    # event 0: u d -> both matched (label 1), leading jet (row 0) kept
    # event 1: g g -> both matched (label 0); the kept jet is the leading matched one (row 3, not row 2)
    # event 2: u g -> mixed, rejected
    # event 3: s s, but one parton is 0.5 away from every jet -> rejected
    # event 4: d d matched to the same jet -> rejected
    # event 5: c c -> not a light quark, rejected
    # event 6: g g, but the second jet has pT 60 < 70 -> rejected
    # event 7: u ubar matched across the phi wrap (pi - 0.05 vs -pi + 0.05) -> label 1
    jets = make_jets(
        [0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6, 7, 7],
        [120, 90, 150, 110, 80, 100, 95, 100, 90, 130, 100, 90, 100, 60, 100, 80],
        [0.1, -0.5, 1.9, 0.3, -0.8, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.5],
        [0.0, 3.0, 1.5, 0.0, 2.5, 0.0, 3.0, 0.0, 3.0, 0.0, 0.0, 3.0, 0.0, 3.0, np.pi - 0.05, 1.0],
    )
    partons = {
        "event": np.repeat(np.arange(8), 2),
        "pdg": np.array([2, 1, 21, 21, 2, 21, 3, 3, 1, 1, 4, -4, 21, 21, 2, -2]),
        "eta": np.array([0.12, -0.45, 0.25, -0.75, 0.0, 1.0, 0.0, 1.0, 0.05, -0.05, 0.0, 1.0, 0.0, 1.0, 0.02, 0.5]),
        "phi": np.array([0.05, 3.05, 0.1, 2.6, 0.0, 3.0, 0.0, 3.5, 0.0, 0.1, 0.0, 3.0, 0.0, 3.0, -np.pi + 0.05, 1.1]),
    }
    partons["pt"] = np.full(16, 100.0)
    rows, labels = qg.match_dijets(jets, partons, 8, pt_min=70.0, eta_max=2.0, dr_max=0.4)
    assert rows.tolist() == [0, 3, 14]
    assert labels.tolist() == [qg.QUARK, qg.GLUON, qg.QUARK]
    assert qg.parton_label(np.array([1, -2, 3, 4, 5, 21, 6, 22])).tolist() == [1, 1, 1, -1, -1, 0, -1, -1]


def test_chunk_quotas_are_balanced():
    assert qg.chunk_quotas(5, 5, 2) == [(2, 2), (2, 2), (1, 1)]
    assert qg.chunk_quotas(3, 0, 2) == [(2, 0), (1, 0)]


# ---- summaries --------------------------------------------------------------------------------------------------
def test_hit_table_and_class_means_split_by_label():
    n_hits = np.array([[1, 10, 100], [3, 30, 300], [5, 50, 500], [7, 70, 700]])
    labels = np.array([qg.QUARK, qg.QUARK, qg.GLUON, qg.GLUON])
    table = qg.hit_table(n_hits, labels)
    assert table["quark"]["ECAL"][1] == 20.0 and table["gluon"]["HCAL"][1] == 600.0
    assert table["quark"]["track"] == pytest.approx([1.2, 2.0, 2.8])  # linear percentiles 10, 50, 90
    means = qg.class_means({"pt": np.array([80.0, 100.0, 120.0, 140.0])}, labels, ["pt"])
    assert means == {"pt_mean_quark": 90.0, "pt_mean_gluon": 130.0}
    empty = qg.class_means({"pt": np.array([80.0])}, np.array([qg.QUARK]), ["pt"])
    assert empty["pt_mean_gluon"] == 0.0 and qg.hit_table(n_hits[:1], labels[:1])["gluon"]["track"] == [0.0] * 3


# ---- files from the full chain (Pythia) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("qg") / "quark_gluon.h5"
    cfg = qg.ImageConfig(n_quark=6, n_gluon=6, seed=11, chunk_jets=3, test_fraction=0.34, pileup_library_events=40)
    return out, qg.simulate_images(cfg, out, workers=1, progress=False, n_examples=2)


def test_hdf5_layout_and_dtypes(image_file):
    path, summary = image_file
    assert e2e.check_layout(path) == {"train": 8, "test": 4}  # 2 of 6 per class in test
    with h5py.File(path, "r") as f:
        assert sorted(f.keys()) == sorted(e2e.KEYS)
        assert len(f.attrs) == 0
        for split, n in (("train", 8), ("test", 4)):
            jet, meta = f[f"{split}_jet"], f[f"{split}_meta"]
            assert jet.shape == (n, 125, 125, 3) and jet.dtype == np.float32
            assert meta.shape == (n, 3) and meta.dtype == np.float32
            assert jet.chunks == (1, 125, 125, 3) and jet.compression == "gzip"
            labels = meta[:, 2]
            assert set(labels.tolist()) == {0.0, 1.0} and labels.sum() == n / 2  # balanced in both splits
            assert np.all(meta[:, 0] > 70.0) and np.all(meta[:, 1] > 0)
            images = jet[:]
            assert np.all(images >= 0)
            # every image is centred on its HCAL seed tower: pixels 60..64 x 60..64 carry one equal value
            seed = images[:, 60:65, 60:65, 2]
            assert np.all(seed > 0) and np.allclose(seed, seed[:, :1, :1])
    images, meta = e2e.read_e2e(path, "train")
    counts = cms.hit_multiplicity(images)
    assert np.array_equal(counts, summary["columns"]["n_hits"][summary["columns"]["split"] == 0])
    assert np.allclose(meta[:, 0], summary["columns"]["pt"][summary["columns"]["split"] == 0])
    assert read_manifest(path)["extra"]["n_train"] == 8
    assert summary["examples"][qg.QUARK].shape == (2, 125, 125, 3)


def test_images_are_deterministic_and_independent_of_workers(image_file, tmp_path):
    path, _ = image_file
    cfg = qg.ImageConfig(n_quark=6, n_gluon=6, seed=11, chunk_jets=3, test_fraction=0.34, pileup_library_events=40)
    qg.simulate_images(cfg, tmp_path / "again.h5", workers=2, progress=False)
    with h5py.File(path, "r") as a, h5py.File(tmp_path / "again.h5", "r") as b:
        for key in e2e.KEYS:
            assert np.array_equal(a[key][:], b[key][:]), key
    assert _sha(path) == _sha(tmp_path / "again.h5")
    other = qg.ImageConfig(n_quark=6, n_gluon=6, seed=12, chunk_jets=3, test_fraction=0.34, pileup_library_events=40)
    qg.simulate_images(other, tmp_path / "other.h5", workers=1, progress=False)
    with h5py.File(path, "r") as a, h5py.File(tmp_path / "other.h5", "r") as b:
        assert not np.array_equal(a["train_meta"][:], b["train_meta"][:])


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_particle_level_npz_layout_and_determinism(tmp_path):
    cfg = qg.ParticleConfig(n_quark=4, n_gluon=4, seed=5, chunk_jets=4)
    summary = qg.simulate_particles(cfg, tmp_path / "pl.npz", workers=1, progress=False)
    info = energyflow.check_qg_npz(tmp_path / "pl.npz")
    x, y = energyflow.read_qg_npz(tmp_path / "pl.npz")
    assert info == {"n_jets": 8, "max_multiplicity": x.shape[1]}
    assert x.dtype == np.float64 and y.dtype == np.float64 and x.shape[2] == 4
    assert sorted(y.tolist()) == [0.0] * 4 + [1.0] * 4
    n = energyflow.multiplicity(x)
    assert n.max() == x.shape[1] and np.array_equal(n, summary["columns"]["n_constituents"])
    for i in range(len(x)):
        real, pad = x[i, : n[i]], x[i, n[i] :]
        assert np.all(pad == 0) and np.all(real[:, 0] > 0)
        assert np.all(np.diff(real[:, 0]) <= 0)  # decreasing pT
        jet_pt = np.hypot((real[:, 0] * np.cos(real[:, 2])).sum(), (real[:, 0] * np.sin(real[:, 2])).sum())
        assert 500.0 < jet_pt < 550.0
        assert np.ptp(real[:, 2]) < 2 * np.pi and np.all(np.abs(real[:, 1]) < 1.7 + 0.5)
        assert np.all(
            np.isin(
                np.abs(real[:, 3]), [11, 13, 22, 130, 211, 321, 310, 2112, 2212, 3122, 3112, 3222, 3312, 3322, 3334]
            )
        )
    qg.simulate_particles(cfg, tmp_path / "pl2.npz", workers=1, progress=False)
    x2, y2 = energyflow.read_qg_npz(tmp_path / "pl2.npz")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pt_hat": (170.0, 80.0)},
        {"pt_hat": (-5.0, 80.0)},
        {"pt_hat": (80.0, 80.0)},
        {"pt_hat": (5000.0, 6000.0)},
        {"jet_pt_min": -1.0},
        {"n_quark": 0, "n_gluon": 0},
        {"n_quark": -3},
        {"test_fraction": 1.0},
        {"pileup_mu": -1.0},
        {"pileup_mu": float("nan")},
        {"pileup_library_events": 0},
    ],
)
def test_impossible_image_configs(kwargs):
    with pytest.raises(ValueError):
        qg.ImageConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"jet_pt": (550.0, 500.0)}, {"jet_pt": (8000.0, 9000.0)}, {"jet_y_max": 0.0}])
def test_impossible_particle_configs(kwargs):
    with pytest.raises(ValueError):
        qg.ParticleConfig(**kwargs)


def test_zero_jets_passing_raises_and_leaves_no_file(tmp_path):
    cfg = qg.ImageConfig(n_quark=2, n_gluon=0, seed=1, pt_hat=(20.0, 25.0), jet_pt_min=300.0, give_up_after=100)
    out = tmp_path / "none.h5"
    with pytest.raises(qg.NoJetsError, match="no quark jet passed"):
        qg.simulate_images(cfg, out, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary


def test_existing_output_needs_overwrite(image_file, tmp_path):
    target = tmp_path / "exists.h5"
    target.write_bytes(b"old")
    cfg = qg.ImageConfig(n_quark=1, n_gluon=1, seed=2, chunk_jets=1)
    with pytest.raises(FileExistsError, match="overwrite"):
        qg.simulate_images(cfg, target, workers=1, progress=False)
    assert target.read_bytes() == b"old"
    with pytest.raises(FileExistsError):
        qg.simulate_particles(qg.ParticleConfig(n_quark=1, n_gluon=1), target, workers=1, progress=False)
    qg.simulate_images(cfg, target, workers=1, progress=False, overwrite=True)
    assert e2e.check_layout(target) == {"train": 2, "test": 0}


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="cannot create output directory"):
        qg.simulate_images(qg.ImageConfig(n_quark=1, n_gluon=1), blocker / "out.h5", workers=1, progress=False)


def test_writer_discards_incomplete_files(tmp_path):
    out = tmp_path / "partial.h5"
    with pytest.raises(ValueError, match="discarded"):
        with e2e.E2EWriter(out, n_train=3, n_test=0) as w:
            w.append("train", np.zeros((2, 125, 125, 3)), np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="boom"):
        with e2e.E2EWriter(out, n_train=1, n_test=0) as w:
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="expected images"):
        with e2e.E2EWriter(out, n_train=1, n_test=0) as w:
            w.append("train", np.zeros((1, 64, 64, 3)), np.zeros((1, 3)))
    assert list(tmp_path.iterdir()) == []


def test_layout_check_names_the_problem(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["train_jet"] = np.zeros((2, 125, 125, 3), np.float32)
        f["train_meta"] = np.zeros((2, 3), np.float32)
        f["test_jet"] = np.zeros((1, 64, 64, 3), np.float32)
        f["test_meta"] = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match="test_jet has shape"):
        e2e.check_layout(bad)
    with h5py.File(bad, "w") as f:
        f["train_jet"] = np.zeros((2, 125, 125, 3), np.float32)
    with pytest.raises(ValueError, match="missing keys"):
        e2e.check_layout(bad)
    with pytest.raises(FileNotFoundError):
        e2e.check_layout(tmp_path / "nope.h5")
    np.savez(tmp_path / "x.npz", X=np.zeros((2, 3)), y=np.zeros(2))
    with pytest.raises(ValueError, match="X is"):
        energyflow.check_qg_npz(tmp_path / "x.npz")


def test_pileup_adds_tracks_and_calorimeter_hits(image_file, tmp_path):
    # the same seed without pile-up: far fewer tracks (soft pile-up tracks fill the window) and calorimeter hits
    _, with_pu = image_file
    cfg = qg.ImageConfig(n_quark=6, n_gluon=6, seed=11, chunk_jets=3, test_fraction=0.34, pileup_mu=0.0)
    without = qg.simulate_images(cfg, tmp_path / "no_pu.h5", workers=1, progress=False)
    h_pu, h_0 = with_pu["columns"]["n_hits"], without["columns"]["n_hits"]
    assert np.median(h_pu[:, cms.TRACK]) > 2 * np.median(h_0[:, cms.TRACK])
    assert np.median(h_pu[:, cms.ECAL]) > np.median(h_0[:, cms.ECAL])
    assert with_pu["cpu_seconds"]["pileup"] > 0 and without["cpu_seconds"]["pileup"] == 0
