"""A CMS-like barrel detector for quark/gluon jet images in the E2E format (125 x 125 x 3).

The real E2E quark/gluon images (Andrews et al., NIM A 977 (2020) 164304) come from the full GEANT4 simulation
and reconstruction of CMS 2012. This module is a fast, vectorised, parametric stand-in that keeps what shapes
the images: the CMS granularity, the 3.8 T field, the ECAL and HCAL energy resolutions, the hadronic response
of a non-compensating calorimeter (e/h > 1), tracking efficiency and resolution, electronics noise and zero
suppression. Everything works on flat columns over all particles of a chunk of events
(:class:`~jetcloud.sim.particles.Particles`); there are no per-particle or per-jet Python loops.

Units: GeV, mm, rad. ``lambda`` is the nuclear interaction length lambda_I, ``X0`` the radiation length.

Geometry
--------
* One uniform eta-phi grid: **ECAL crystals** 0.0174 x (2 pi / 360) = 0.0174 x 0.01745 and **HCAL towers**
  0.087 x 0.087 = 5 x 5 crystals, 72 towers (360 crystals) in phi and 68 towers (340 crystals) in eta,
  i.e. |eta| < 2.958. *Approximation*: CMS has this granularity in the barrel (EB |eta| < 1.479, HB
  |eta| < 1.3); the end-caps have other cell shapes, which the E2E images also project onto the barrel-sized
  grid. Here the barrel granularity simply continues to |eta| = 2.958.
* ECAL front face: cylinder r = 1.29 m (EB), disks |z| = 3.15 m (EE). HCAL shower position: r = 1.9 m inside
  HB (1.77-2.95 m), |z| = 4.0 m for HE. Crystal and tower indices use eta = asinh(z / r) and phi as seen from the
  origin, as the detector's own coordinates.
* Magnetic field 3.8 T along +z, uniform inside the solenoid (r < 2.95 m, |z| < 6.25 m); charged particles
  follow helices from (0, 0, z_vertex) (:func:`jetcloud.sim.helix.helix_to_cylinder`). A particle with
  2 R_c < 1.29 m, i.e. **pT < 0.735 GeV, curls up before the ECAL** and deposits nothing (*approximation*: its
  energy is lost in the tracker material). The transverse vertex displacement is neglected.

Tracks (channel 0)
------------------
Charged particles with |eta| < 2.5, produced within r < 300 mm, of this collision and of the pile-up ones (the
E2E producer fills every high-purity track of the event). No hard pT cut above ``track_pt_min`` = 0.1 GeV;
instead an error-function **turn-on** in pT, 1/2 at ``track_turn_on_pt`` = 0.3 GeV with width 0.1 GeV (~2% at
0.1 GeV, 98% at 0.5 GeV), times the plateau efficiency: 0.93 for |eta| < 1.2 falling linearly to 0.85 at
|eta| = 2.5 for hadrons (nuclear interactions), 0.99 for muons, 0.90 for electrons (CMS tracking performance,
JINST 9 (2014) P10009, approximate shapes). Resolution sigma(pT)/pT = 0.7% (+) 0.015% x pT[GeV], times
(1 + 0.6 max(|eta| - 0.9, 0)) (ibid.: ~1% at 1-10 GeV and 1.5-2% at 100 GeV in the barrel). The track's pT is
put in the crystal of its **vertex** eta and phi (its momentum direction at production, as the E2E producer
fills tracks), not where it reaches the calorimeter: a charged particle's deposits are bent away from its
track by Delta phi ~ 0.3 x 3.8 T x 1.29 m / (2 pT) in phi (0.3 rad at 2.5 GeV). Fake tracks and track merging
are not simulated; two tracks in one crystal add their pT.

ECAL (channel 1): PbWO4 crystals, 23 cm = 25.8 X0 = 1.13 lambda_I
-----------------------------------------------------------------
* e+-, photons: the whole energy, with sigma/E = 2.8%/sqrt(E) (+) 0.3% per particle (CMS ECAL test beam,
  JINST 2 (2007) P04004); the noise term 12%/E of the 3 x 3 sum comes from the per-crystal noise below
  (9 crystals x 40 MeV = 0.12 GeV). Lateral profile: two components f(r) ~ 2 r R^2 / (r^2 + R^2)^2
  (Grindhammer-Peters form) with 80% core (R = 0.11 crystal) and 20% tail (R = 0.9 crystal), integrated once
  over 7 x 7 crystals for 8 x 8 impact positions inside the crystal: a centred shower has ~80% in its crystal
  and ~95% in 3 x 3 (CMS: E1/E9 ~ 0.8, E9/E25 ~ 0.96). Energy outside the 7 x 7 window is folded back in
  (no lateral leakage). Shower-to-shower lateral fluctuations and photon conversions in the tracker are
  neglected; EM showers are fully contained (longitudinal leakage < 1% below 100 GeV).
* Hadrons: the first interaction is exponential in depth with mean 1.2 lambda_I for mesons and 1.0 lambda_I for
  baryons (:class:`jetcloud.sim.physics.ShowerParams`), so 0.94 lambda_pi of ECAL: **~61% of pions start their
  shower in the ECAL** and deposit part of it there; the others cross it as MIPs (0.25 GeV for charged).
  After the interaction the shower splits into an EM fraction f_em (Groom's mean 1 - (E/E0)^(k-1), Beta
  distributed; :func:`jetcloud.sim.physics.mean_fem`) with a gamma-distribution profile in X0 and a non-EM
  part with a gamma profile in lambda_I (PDG; the profiles and fluctuations of :mod:`jetcloud.sim.physics`),
  each divided between ECAL and HCAL by the depth. The non-EM part is seen with h/e = 1/2.4 in the ECAL
  (homogeneous PbWO4 is strongly non-compensating; e/h ~ 2.4 from the CMS 2006 combined test beam,
  Eur. Phys. J. C 60 (2009) 359, approximate) and fluctuates with a Gamma distribution (variance 0.5^2 E).
  Hadronic energy is spread laterally as random spots (one per 0.2 GeV, at most 30) with the radial density
  r exp(-r/R), 60% core R = 15 mm and 40% halo R = 60 mm: wide and irregular, as hadron showers look in the
  crystals.
* Energy scale: calibrated for electrons and photons (pions read low: non-compensation).
* Noise and readout: Gaussian noise in every crystal, **40 MeV** in the barrel (EB, 2012) and ``ecal_noise_ee_gev``
  = **150 MeV** in the end-caps (|eta| > 1.479; approximate). As in the CMS **selective readout**, a trigger tower
  (5 x 5 crystals, the HCAL tower footprint) whose signal E_T exceeds ``ecal_sr_et_gev`` makes the 3 x 3 trigger
  towers around it *read out in full*: there every crystal keeps signal + noise and is in the image when > 0
  (about half of the noise-only crystals, with small values, as the "tiny positive values" of the real file).
  Elsewhere crystals are zero-suppressed at ``ecal_zs_sigma`` = 3 sigma of their noise (0.13% of noise-only
  crystals, ~21 per image). *Approximation, tuned*: the E_T threshold (default 10 GeV) is chosen so that the
  ECAL hit counts of jets with pile-up (mu = 20) reach the report's 200-300; it is not CMS's value, and the
  real readout has a third (medium-interest) class.

HCAL (channel 2): brass / scintillator, HB 5.82 lambda_I x cosh(eta) (at most 10 lambda_I)
---------------------------------------------------------------------------------------------
* Hadron showers (or their remainder after the ECAL) with h/e = 1/1.4 (CMS HB e/h ~ 1.4, ibid.), sampling
  fluctuations Gamma distributed with variance (100%)^2 E and a 3% constant term per particle on top of the
  f_em fluctuations: single pions that cross the ECAL as MIPs come out at ~100%/sqrt(E) (+) ~5%
  (CMS HB test beam: ~ 100-120%/sqrt(E) (+) 5%). Energy beyond the HCAL depth leaks out (HO is not modelled).
  The EM part of a shower that started in the ECAL and continues into the HCAL is read with response 1.
* Lateral spread as random spots (one per 1 GeV, at most 15), 70% core R = 40 mm and 30% halo R = 100 mm at
  r = 1.9 m, so most of a shower falls in 1-4 towers.
* Muons: 0.25 GeV in the ECAL and 2 GeV x cosh(eta) in the HCAL (MIP), with 15% Gamma fluctuations.
  Neutrinos: nothing.
* Energy scale: EM scale (electron response 1). Noise: Gaussian **0.2 GeV per tower**; zero suppression at
  ``hcal_zs_et_gev`` = **0.8 GeV in E_T** (0.8 GeV x cosh(eta) in energy: the CMS particle-flow HB rechit
  threshold of Run 1 at eta = 0, 4 sigma, so noise-only towers are rare). *Approximation, tuned*: a threshold in
  E_T stands in for the higher noise and thresholds of HE; with a fixed 0.8 GeV in energy, pile-up hadrons
  (E = pT cosh(eta)) fill ~40 towers per image at |eta| > 1, against the report's 16-24.

Images
------
* The **seed** is the HCAL tower with the highest energy in the 7 x 7 towers around the jet axis (found before
  noise is added: the seed tower holds tens of GeV, the noise 0.2 GeV). A jet is *image-able* when the seed is
  at least 12 towers from the edge of the eta range (tower index 12..55), so the 125 x 125 crop never leaves
  the grid; phi wraps around.
* The crop is centred on crystal (5 ieta + 2, 5 iphi + 2) of the seed tower, which becomes **pixel (62, 62)**;
  **axis 1 = eta (rows)**, **axis 2 = phi (columns)**, both increasing with the index. Crops start on tower
  boundaries, so an image holds exactly 25 x 25 towers.
* Channels: 0 track pT (GeV), 1 ECAL energy (GeV), 2 HCAL tower energy / 25 in each of the tower's 25 crystals.
  All values are >= 0; zero-suppressed pixels are exactly 0.
* Noise in zero-suppressed pixels without signal is drawn only where it passes zero suppression (binomial
  count per row, values from the Gaussian tail), which is exact in distribution up to two noise hits falling in
  one pixel (merged); crystals read out in full get their Gaussian value.
* Pile-up (:mod:`jetcloud.qg.pileup`) enters as further particles of the event; it is simulated like them.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtr, ndtri

from jetcloud.arrays import group_sum
from jetcloud.sim.helix import helix_to_cylinder, helix_to_disk
from jetcloud.sim.particles import Particles
from jetcloud.sim.physics import (
    KIND_EM,
    KIND_HADRON,
    KIND_MUON,
    ShowerParams,
    available_energy,
    classify,
    em_shape,
    gamma_fractions,
    gamma_smear,
    mean_fem,
)

log = logging.getLogger(__name__)

#: Crystal size in eta and phi (the phi size is exactly 2 pi / 360).
CRYSTAL_ETA = 0.0174
CRYSTAL_PHI = 2.0 * np.pi / 360.0
CRYSTALS_PER_TOWER = 5
TOWER_ETA = CRYSTALS_PER_TOWER * CRYSTAL_ETA  # 0.087
N_TOWER_ETA = 68
N_TOWER_PHI = 72
N_CRYSTAL_ETA = N_TOWER_ETA * CRYSTALS_PER_TOWER  # 340
N_CRYSTAL_PHI = N_TOWER_PHI * CRYSTALS_PER_TOWER  # 360
ETA_EDGE = N_TOWER_ETA / 2 * TOWER_ETA  # 2.958: the grid covers |eta| < ETA_EDGE
EB_ETA_MAX = 1.479  # ECAL barrel / end-cap boundary

IMAGE_SIZE = 125
SEED_PIXEL = 62  # the seed tower's centre crystal lands on pixel (62, 62)
IMAGE_TOWERS = IMAGE_SIZE // CRYSTALS_PER_TOWER  # 25
SEED_WINDOW = 7  # towers searched for the seed around the jet axis (7 x 7)
SEED_MARGIN = 12  # the seed tower must be at least this many towers from the eta edge
TRACK, ECAL, HCAL = 0, 1, 2
CHANNELS = ("track_pt", "ecal_energy", "hcal_energy")
_N_PIX = IMAGE_SIZE * IMAGE_SIZE
_CROP_OFFSET = SEED_PIXEL - (CRYSTALS_PER_TOWER // 2)  # 60 = crystals between crop start and seed tower start


@dataclass(frozen=True)
class CMSDetector:
    """Parameters of the CMS-like detector (defaults and sources: module docstring)."""

    b_field_t: float = 3.8
    solenoid_radius_mm: float = 2950.0
    solenoid_half_length_mm: float = 6250.0
    ecal_radius_mm: float = 1290.0
    ecal_endcap_z_mm: float = 3150.0
    hcal_radius_mm: float = 1900.0
    hcal_endcap_z_mm: float = 4000.0
    # tracks
    track_pt_min: float = 0.1  # hard floor: below it no track is reconstructed
    track_turn_on_pt: float = 0.3  # pT where the efficiency reaches half its plateau
    track_turn_on_width: float = 0.1  # GeV, width of the error-function turn-on
    track_eta_max: float = 2.5
    track_max_vertex_r_mm: float = 300.0
    track_eff_central: float = 0.93
    track_eff_forward: float = 0.85  # at |eta| = track_eta_max
    track_eff_muon: float = 0.99
    track_eff_electron: float = 0.90
    track_res_ms: float = 0.007
    track_res_pt: float = 1.5e-4  # per GeV
    # ECAL
    ecal_stochastic: float = 0.028  # GeV^1/2
    ecal_constant: float = 0.003
    ecal_noise_gev: float = 0.040  # per crystal, barrel
    ecal_noise_ee_gev: float = 0.150  # per crystal, end-caps (|eta| > 1.479)
    ecal_zs_sigma: float = 3.0  # zero suppression of low-interest crystals, in units of their noise
    ecal_sr_et_gev: float = 10.0  # trigger-tower E_T above which the 3 x 3 towers around it are read in full
    ecal_depth_lambda: float = 1.13
    ecal_depth_x0: float = 25.8
    ecal_e_over_h: float = 2.4
    ecal_had_fluct: float = 0.5  # GeV^1/2, Gamma fluctuation of the non-EM part seen in the ECAL
    ecal_mip_gev: float = 0.25
    em_core_fraction: float = 0.8
    em_core_radius: float = 0.11  # crystals
    em_tail_radius: float = 0.9  # crystals
    ecal_spot_gev: float = 0.2
    ecal_max_spots: int = 30
    ecal_had_core_fraction: float = 0.6
    ecal_had_core_mm: float = 15.0
    ecal_had_halo_mm: float = 60.0
    # HCAL
    hcal_stochastic: float = 1.0  # GeV^1/2, sampling fluctuations
    hcal_constant: float = 0.03
    hcal_e_over_h: float = 1.4
    hcal_depth_lambda: float = 5.82  # at eta = 0, grows as cosh(eta)
    hcal_max_depth_lambda: float = 10.0
    hcal_mip_gev: float = 2.0  # at eta = 0, grows as cosh(eta)
    hcal_noise_gev: float = 0.2
    hcal_zs_et_gev: float = 0.8  # tower threshold in E_T (energy threshold x cosh(eta))
    hcal_spot_gev: float = 1.0
    hcal_max_spots: int = 15
    hcal_core_fraction: float = 0.7
    hcal_core_mm: float = 40.0
    hcal_halo_mm: float = 100.0
    mip_fluct: float = 0.15
    noise: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"CMSDetector.{f.name} must be >= 0, got {value}")
        if self.track_eta_max > ETA_EDGE:
            raise ValueError(f"track_eta_max must be <= {ETA_EDGE:.3f} (grid edge), got {self.track_eta_max}")


@dataclass
class Hits:
    """Sparse values on a grid (crystals or towers): one row per (event, ieta, iphi), value in GeV."""

    event: np.ndarray  # int64
    ieta: np.ndarray  # int64
    iphi: np.ndarray  # int64
    value: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.event)

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    @classmethod
    def summed(cls, event: np.ndarray, ieta: np.ndarray, iphi: np.ndarray, value: np.ndarray, n_phi: int) -> Hits:
        """Sum ``value`` per (event, ieta, iphi); ``n_phi`` is the phi size of the grid."""
        if len(event) == 0:
            return cls.empty()
        n_eta = int(np.max(ieta)) + 1
        key = (np.asarray(event, np.int64) * n_eta + ieta) * n_phi + iphi
        uniq, sums = group_sum(key, np.asarray(value, np.float64))
        ev, rest = np.divmod(uniq, n_eta * n_phi)
        ie, ip = np.divmod(rest, n_phi)
        return cls(ev, ie, ip, sums)


@dataclass
class DetectorResponse:
    """What the detector measured for a chunk of events: tracks and ECAL on crystals, HCAL on towers.

    Calorimeter values are before noise and zero suppression (added per image by :func:`jet_images`).
    """

    tracks: Hits  # crystal grid, reconstructed pT
    ecal: Hits  # crystal grid, energy
    hcal: Hits  # tower grid, energy


@dataclass
class SparseImages:
    """Jet images as sparse pixels: ``jet``, flat ``pixel`` index into (125, 125, 3), float32 ``value``."""

    n_jets: int
    jet: np.ndarray  # int64
    pixel: np.ndarray  # int64: (row * 125 + col) * 3 + channel
    value: np.ndarray  # float32

    def dense(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Dense float32 images (stop - start, 125, 125, 3) of jets start..stop-1."""
        stop = self.n_jets if stop is None else stop
        out = np.zeros((stop - start) * _N_PIX * 3, np.float32)
        m = (self.jet >= start) & (self.jet < stop)
        out[(self.jet[m] - start) * _N_PIX * 3 + self.pixel[m]] = self.value[m]
        return out.reshape(stop - start, IMAGE_SIZE, IMAGE_SIZE, 3)

    def select(self, jets: np.ndarray) -> SparseImages:
        """The images of jets ``jets`` (indices, in that order), renumbered 0..len(jets)-1."""
        jets = np.asarray(jets, np.int64)
        new = np.full(self.n_jets, -1, np.int64)
        new[jets] = np.arange(len(jets))
        m = new[self.jet] >= 0
        j = new[self.jet[m]]
        order = np.argsort(j, kind="stable")
        return SparseImages(len(jets), j[order], self.pixel[m][order], self.value[m][order])

    def hit_counts(self) -> np.ndarray:
        """(n_jets, 3) int64: non-zero pixels per jet and channel."""
        return np.bincount(self.jet * 3 + self.pixel % 3, minlength=3 * self.n_jets).reshape(self.n_jets, 3)

    @classmethod
    def concatenate(cls, parts: list[SparseImages]) -> SparseImages:
        offsets = np.cumsum([0] + [p.n_jets for p in parts])
        return cls(
            int(offsets[-1]),
            np.concatenate([p.jet + o for p, o in zip(parts, offsets[:-1], strict=True)] or [np.zeros(0, np.int64)]),
            np.concatenate([p.pixel for p in parts] or [np.zeros(0, np.int64)]),
            np.concatenate([p.value for p in parts] or [np.zeros(0, np.float32)]),
        )


# ---------------------------------------------------------------------------------------------------------------
# grid indices
# ---------------------------------------------------------------------------------------------------------------


def crystal_index(eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ieta, iphi, inside) of the crystal at (eta, phi); ieta 0..339 from eta = -2.958, iphi 0..359 from -pi."""
    eta = np.asarray(eta, np.float64)
    phi = np.asarray(phi, np.float64)
    with np.errstate(invalid="ignore"):
        ie = np.floor((eta + ETA_EDGE) / CRYSTAL_ETA)
        inside = np.isfinite(ie) & (ie >= 0) & (ie < N_CRYSTAL_ETA) & np.isfinite(phi)
        ip = np.floor(np.mod(phi + np.pi, 2 * np.pi) / CRYSTAL_PHI)
    ie = np.where(inside, ie, 0).astype(np.int64)
    ip = np.where(inside, ip, 0).astype(np.int64) % N_CRYSTAL_PHI
    return ie, ip, inside


def tower_index(eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ieta, iphi, inside) of the HCAL tower at (eta, phi); ieta 0..67, iphi 0..71."""
    ie, ip, inside = crystal_index(eta, phi)
    return ie // CRYSTALS_PER_TOWER, ip // CRYSTALS_PER_TOWER, inside


def crystal_center(ieta: np.ndarray, iphi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of crystal centres; phi in [-pi, pi)."""
    return (np.asarray(ieta) + 0.5) * CRYSTAL_ETA - ETA_EDGE, (np.asarray(iphi) + 0.5) * CRYSTAL_PHI - np.pi


def tower_center(ieta: np.ndarray, iphi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of tower centres; phi in [-pi, pi)."""
    return (np.asarray(ieta) + 0.5) * TOWER_ETA - ETA_EDGE, (
        np.asarray(iphi) + 0.5
    ) * CRYSTALS_PER_TOWER * CRYSTAL_PHI - np.pi


# ---------------------------------------------------------------------------------------------------------------
# propagation
# ---------------------------------------------------------------------------------------------------------------


def impact(
    particles: Particles, radius_mm: float, endcap_z_mm: float, det: CMSDetector = CMSDetector()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, phi, reached) where particles cross the barrel cylinder ``radius_mm`` or the end-cap disk.

    Charged particles follow helices in the solenoid field, neutral ones straight lines, both from
    (0, 0, vz). Positions are as seen from the origin; NaN where not reached (loopers).
    """
    charge = np.asarray(particles.charge, np.float64)
    common = {
        "b_field_t": det.b_field_t,
        "field_radius_mm": det.solenoid_radius_mm,
        "field_half_length_mm": det.solenoid_half_length_mm,
    }
    eb, pb, rb = helix_to_cylinder(
        particles.pt,
        particles.eta,
        particles.phi,
        charge,
        particles.vz,
        radius_mm,
        half_length_mm=endcap_z_mm,
        **common,
    )
    side = np.where(particles.eta >= 0, 1.0, -1.0)
    ed, pd, rd = helix_to_disk(
        particles.pt,
        particles.eta,
        particles.phi,
        charge,
        particles.vz,
        side * endcap_z_mm,
        r_max_mm=radius_mm,
        **common,
    )
    return np.where(rb, eb, ed), np.where(rb, pb, pd), rb | rd


# ---------------------------------------------------------------------------------------------------------------
# tracks
# ---------------------------------------------------------------------------------------------------------------


def track_efficiency(eta: np.ndarray, pdg: np.ndarray, det: CMSDetector = CMSDetector()) -> np.ndarray:
    """Per-particle reconstruction efficiency (module docstring)."""
    a = np.abs(np.asarray(eta))
    slope = (det.track_eff_central - det.track_eff_forward) / max(det.track_eta_max - 1.2, 1e-6)
    eff = det.track_eff_central - slope * np.clip(a - 1.2, 0.0, None)
    apdg = np.abs(np.asarray(pdg))
    eff = np.where(apdg == 13, det.track_eff_muon, np.where(apdg == 11, det.track_eff_electron, eff))
    return np.clip(eff, 0.0, 1.0)


def track_pt_resolution(pt: np.ndarray, eta: np.ndarray, det: CMSDetector = CMSDetector()) -> np.ndarray:
    """sigma(pT)/pT (module docstring)."""
    rel = np.hypot(det.track_res_ms, det.track_res_pt * np.asarray(pt))
    return rel * (1.0 + 0.6 * np.clip(np.abs(np.asarray(eta)) - 0.9, 0.0, None))


def track_turn_on(pt: np.ndarray, det: CMSDetector = CMSDetector()) -> np.ndarray:
    """Low-pT efficiency factor: an error-function turn-on, 1/2 at ``track_turn_on_pt``, 0 below ``track_pt_min``."""
    pt = np.asarray(pt, np.float64)
    width = max(det.track_turn_on_width, 1e-9)
    return np.where(pt > det.track_pt_min, ndtr((pt - det.track_turn_on_pt) / width), 0.0)


def reconstruct_tracks(particles: Particles, rng: np.random.Generator, det: CMSDetector = CMSDetector()) -> Hits:
    """Tracks as crystal hits: reconstructed pT in the crystal of the track's vertex eta, phi (module docstring)."""
    charged = np.asarray(particles.charge) != 0
    r_vtx = np.hypot(particles.vx, particles.vy)
    cand = charged & (particles.pt > det.track_pt_min) & (np.abs(particles.eta) < det.track_eta_max)
    cand &= r_vtx < det.track_max_vertex_r_mm
    idx = np.flatnonzero(cand)
    eff = track_efficiency(particles.eta[idx], particles.pdg[idx], det) * track_turn_on(particles.pt[idx], det)
    idx = idx[rng.random(len(idx)) < eff]
    pt = particles.pt[idx]
    res = track_pt_resolution(pt, particles.eta[idx], det)
    # Gaussian in q/pT (the measured quantity), as for real trackers
    inv = (1.0 / pt) * (1.0 + res * rng.standard_normal(len(idx)))
    pt_reco = 1.0 / np.maximum(inv, 1e-6)
    ie, ip, inside = crystal_index(particles.eta[idx], particles.phi[idx])
    return Hits.summed(particles.event[idx][inside], ie[inside], ip[inside], pt_reco[inside], N_CRYSTAL_PHI)


# ---------------------------------------------------------------------------------------------------------------
# calorimeter
# ---------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def em_kernel(
    core_fraction: float = 0.8, core_radius: float = 0.11, tail_radius: float = 0.9, sub: int = 8
) -> np.ndarray:
    """Fractions of an EM shower in 7 x 7 crystals, (sub, sub, 7, 7), for sub x sub impact positions.

    The radial profile (module docstring) is integrated with a deterministic stratified sample of 400 radii
    x 64 angles per component; index [a, b] is the impact at (a + 0.5) / sub, (b + 0.5) / sub inside the
    crystal (eta, phi). Each 7 x 7 table sums to 1.
    """
    n_r, n_psi = 400, 64
    u = (np.arange(n_r) + 0.5) / n_r
    psi = (np.arange(n_psi) + 0.5) * 2 * np.pi / n_psi
    out = np.zeros((sub, sub, 7, 7))
    for frac, radius in ((core_fraction, core_radius), (1.0 - core_fraction, tail_radius)):
        r = radius * np.sqrt(u / (1.0 - u))  # CDF r^2 / (r^2 + R^2) inverted
        dx = (r[:, None] * np.cos(psi)[None, :]).ravel()
        dy = (r[:, None] * np.sin(psi)[None, :]).ravel()
        for a in range(sub):
            for b in range(sub):
                x = (a + 0.5) / sub + dx
                y = (b + 0.5) / sub + dy
                ix = np.clip(np.floor(x).astype(np.int64), -3, 3) + 3
                iy = np.clip(np.floor(y).astype(np.int64), -3, 3) + 3
                out[a, b] += frac * np.bincount(ix * 7 + iy, minlength=49).reshape(7, 7) / len(x)
    return out


def _spots(
    event: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    energy: np.ndarray,
    spot_gev: float,
    max_spots: int,
    core_fraction: float,
    core_mm: float,
    halo_mm: float,
    radius_mm: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split deposits into spots at random radii (density r exp(-r/R), core + halo); returns flat spot columns."""
    n = np.clip(np.ceil(energy / spot_gev), 1, max_spots).astype(np.int64)
    owner = np.repeat(np.arange(len(energy)), n)
    halo = rng.random(len(owner)) >= core_fraction
    r = np.where(halo, halo_mm, core_mm) * rng.gamma(2.0, 1.0, len(owner)) / radius_mm
    psi = rng.uniform(0.0, 2.0 * np.pi, len(owner))
    return event[owner], eta[owner] + r * np.cos(psi), phi[owner] + r * np.sin(psi), (energy / n)[owner]


def calorimeter_hits(
    particles: Particles, rng: np.random.Generator, det: CMSDetector = CMSDetector()
) -> tuple[Hits, Hits, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ECAL crystal and HCAL tower energies (before noise) of all particles; also the ECAL impact points.

    Returns ``(ecal, hcal, (ecal_eta, ecal_phi, ecal_reached))`` (physics: module docstring).
    """
    params = ShowerParams()
    e_eta, e_phi, e_ok = impact(particles, det.ecal_radius_mm, det.ecal_endcap_z_mm, det)
    h_eta, h_phi, h_ok = impact(particles, det.hcal_radius_mm, det.hcal_endcap_z_mm, det)
    # a particle that reaches the ECAL but curls before the HCAL radius showers at its ECAL position
    h_eta, h_phi = np.where(h_ok, h_eta, e_eta), np.where(h_ok, h_phi, e_phi)
    kind = classify(particles.pdg)
    energy = available_energy(particles)
    active = e_ok & (np.abs(np.nan_to_num(e_eta, nan=99.0)) < ETA_EDGE + 0.1)
    n = len(particles)
    ecal_e = np.zeros(n)  # visible ECAL energy per particle
    hcal_e = np.zeros(n)
    ecal_had = np.zeros(n)  # part of ecal_e spread like a hadron shower (the rest: EM kernel)

    em = np.flatnonzero(active & (kind == KIND_EM))
    if len(em):
        ecal_e[em] = _em_response(energy[em], rng, det)
    mu = np.flatnonzero(active & (kind == KIND_MUON))
    if len(mu):
        ecal_e[mu], hcal_e[mu] = _muon_response(energy[mu], particles.eta[mu], rng, det)
        ecal_had[mu] = ecal_e[mu]
    hd = np.flatnonzero(active & (kind == KIND_HADRON) & (energy > 0))
    if len(hd):
        charged = np.asarray(particles.charge)[hd] != 0
        ecal_e[hd], ecal_had[hd], hcal_e[hd] = _hadron_response(
            energy[hd], particles.pdg[hd], particles.eta[hd], charged, rng, det, params
        )

    # ECAL: EM-like energy through the kernel, hadron-like energy as spots; HCAL: spots on towers
    ev = particles.event
    ecal_cols = [_ecal_kernel_hits(ev, e_eta, e_phi, active, ecal_e - ecal_had, det)]
    ecal_cols += _ecal_spot_hits(ev, e_eta, e_phi, active, ecal_had, rng, det)
    ecal = Hits.summed(*(np.concatenate(c) for c in zip(*ecal_cols, strict=True)), N_CRYSTAL_PHI)
    hcal = _hcal_hits(ev, h_eta, h_phi, active, hcal_e, rng, det)
    return ecal, hcal, (e_eta, e_phi, e_ok)


def _em_response(e: np.ndarray, rng: np.random.Generator, det: CMSDetector) -> np.ndarray:
    """Visible ECAL energy of electrons and photons: the whole energy, Gaussian resolution."""
    rel = np.sqrt(det.ecal_stochastic**2 / np.maximum(e, 1e-3) + det.ecal_constant**2)
    return np.maximum(e * (1.0 + rel * rng.standard_normal(len(e))), 0.0)


def _muon_response(
    e: np.ndarray, eta: np.ndarray, rng: np.random.Generator, det: CMSDetector
) -> tuple[np.ndarray, np.ndarray]:
    """(ECAL, HCAL) energy of muons: MIP deposits with Gaussian fluctuations."""
    cosh = np.cosh(np.minimum(np.abs(eta), 3.0))
    fluct = 1.0 + det.mip_fluct * rng.standard_normal((2, len(e))).clip(-3, 3)
    ecal = np.minimum(det.ecal_mip_gev, e) * fluct[0]
    hcal = np.minimum(det.hcal_mip_gev * cosh, np.maximum(e - ecal, 0.0)) * fluct[1]
    return ecal, hcal


def _hadron_response(
    e: np.ndarray,
    pdg: np.ndarray,
    eta: np.ndarray,
    charged: np.ndarray,
    rng: np.random.Generator,
    det: CMSDetector,
    params: ShowerParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ECAL, its hadron-like part, HCAL) visible energy of hadrons (module docstring)."""
    nh = len(e)
    baryon = np.abs(pdg) > 1000
    l_e = det.ecal_depth_lambda
    l_h = np.minimum(det.hcal_depth_lambda * np.cosh(np.minimum(np.abs(eta), 3.0)), det.hcal_max_depth_lambda)
    l_int = rng.exponential(np.where(baryon, params.lambda_int_baryon, params.lambda_int_meson))
    mip = np.where(charged, det.ecal_mip_gev * np.minimum(l_int, l_e) / l_e, 0.0)
    mip = np.minimum(mip, e)
    e_sh = e - mip
    mu_f = mean_fem(e_sh, baryon, params)
    sig = np.minimum(params.fem_sigma, 0.9 * np.sqrt(mu_f * (1.0 - mu_f)))
    nu = mu_f * (1.0 - mu_f) / sig**2 - 1.0
    fem = rng.beta(mu_f * nu, (1.0 - mu_f) * nu)
    em_frac, had_frac = _hadron_depth_fractions(e_sh, fem, l_int, l_e, l_h, det, params)
    em_part, had_part = fem * e_sh, (1.0 - fem) * e_sh
    em_ecal, em_hcal = em_part * em_frac[:, 0], em_part * em_frac[:, 1]
    had_ecal, had_hcal = had_part * had_frac[:, 0], had_part * had_frac[:, 1]
    rel = np.sqrt(det.ecal_stochastic**2 / np.maximum(em_ecal, 1e-3) + det.ecal_constant**2)
    vis_em_ecal = np.maximum(em_ecal * (1.0 + rel * rng.standard_normal(nh)), 0.0)
    vis_had_ecal = gamma_smear(had_ecal / det.ecal_e_over_h, np.full(nh, det.ecal_had_fluct), rng)
    # pi0 photons (vis_em_ecal) use the EM kernel, the rest spots
    ecal, ecal_had = vis_em_ecal + vis_had_ecal + mip, vis_had_ecal + mip
    hmean = em_hcal + had_hcal / det.hcal_e_over_h
    hvis = gamma_smear(hmean, np.full(nh, det.hcal_stochastic), rng)
    return ecal, ecal_had, np.maximum(hvis * (1.0 + det.hcal_constant * rng.standard_normal(nh)), 0.0)


def _hadron_depth_fractions(
    e_sh: np.ndarray,
    fem: np.ndarray,
    l_int: np.ndarray,
    l_e: float,
    l_h: np.ndarray,
    det: CMSDetector,
    params: ShowerParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Longitudinal split between ECAL and HCAL: (EM part in X0, non-EM part in lambda), each (n, 2)."""
    nh = len(e_sh)
    in_ecal = l_int < l_e
    x0_per_lambda = det.ecal_depth_x0 / l_e
    x_int = np.minimum(l_int, l_e) * x0_per_lambda
    x_bounds = np.stack([np.zeros(nh), np.full(nh, det.ecal_depth_x0), np.full(nh, 1e4)], axis=1)
    a_em, b_em, _ = em_shape(np.maximum(fem * e_sh * params.em_sub_fraction, 0.05), np.ones(nh, bool), None, params)
    em_frac = np.where(in_ecal[:, None], gamma_fractions(x_bounds, x_int, a_em, b_em), [[0.0, 1.0]])
    t_h = params.had_tmax_slope * np.log(np.maximum(e_sh, 1.0)) + params.had_tmax_offset
    a_h = 1.0 + params.had_b * t_h
    l_bounds = np.stack([np.zeros(nh), np.full(nh, l_e), l_e + l_h], axis=1)
    had_frac = gamma_fractions(l_bounds, l_int, a_h, np.full(nh, params.had_b))
    return em_frac, had_frac


def _ecal_kernel_hits(
    ev: np.ndarray, e_eta: np.ndarray, e_phi: np.ndarray, active: np.ndarray, e_em: np.ndarray, det: CMSDetector
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(event, ieta, iphi, energy) columns of the EM-like ECAL energy spread by the 7 x 7 EM kernel."""
    kern = em_kernel(det.em_core_fraction, det.em_core_radius, det.em_tail_radius)
    sub = kern.shape[0]
    idx = np.flatnonzero(active & (e_em > 0))
    ie, ip, inside = crystal_index(e_eta[idx], e_phi[idx])
    idx, ie, ip = idx[inside], ie[inside], ip[inside]
    fe = (e_eta[idx] + ETA_EDGE) / CRYSTAL_ETA - ie
    fp = np.mod(e_phi[idx] + np.pi, 2 * np.pi) / CRYSTAL_PHI - ip
    a = np.clip((fe * sub).astype(np.int64), 0, sub - 1)
    b = np.clip((fp * sub).astype(np.int64), 0, sub - 1)
    w = kern[a, b].reshape(len(idx), 49)  # (n, 49)
    d = np.arange(-3, 4)
    k_eta = (ie[:, None, None] + d[None, :, None]).repeat(7, axis=2).reshape(len(idx), 49)
    k_phi = np.mod(ip[:, None, None] + d[None, None, :], N_CRYSTAL_PHI).repeat(7, axis=1).reshape(len(idx), 49)
    val = w * e_em[idx, None]
    keep = (k_eta >= 0) & (k_eta < N_CRYSTAL_ETA) & (val > 0)
    return np.repeat(ev[idx], 49).reshape(len(idx), 49)[keep], k_eta[keep], k_phi[keep], val[keep]


def _ecal_spot_hits(
    ev: np.ndarray,
    e_eta: np.ndarray,
    e_phi: np.ndarray,
    active: np.ndarray,
    ecal_had: np.ndarray,
    rng: np.random.Generator,
    det: CMSDetector,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(event, ieta, iphi, energy) columns of the hadron-like ECAL energy as spots on crystals (none: [])."""
    idx = np.flatnonzero(active & (ecal_had > 0))
    if not len(idx):
        return []
    s_ev, s_eta, s_phi, s_e = _spots(
        ev[idx],
        e_eta[idx],
        e_phi[idx],
        ecal_had[idx],
        det.ecal_spot_gev,
        det.ecal_max_spots,
        det.ecal_had_core_fraction,
        det.ecal_had_core_mm,
        det.ecal_had_halo_mm,
        det.ecal_radius_mm,
        rng,
    )
    ie, ip, inside = crystal_index(s_eta, s_phi)
    return [(s_ev[inside], ie[inside], ip[inside], s_e[inside])]


def _hcal_hits(
    ev: np.ndarray,
    h_eta: np.ndarray,
    h_phi: np.ndarray,
    active: np.ndarray,
    hcal_e: np.ndarray,
    rng: np.random.Generator,
    det: CMSDetector,
) -> Hits:
    """HCAL tower energies: every particle's HCAL energy as spots on towers."""
    idx = np.flatnonzero(active & (hcal_e > 0) & np.isfinite(h_eta))
    s_ev, s_eta, s_phi, s_e = _spots(
        ev[idx],
        h_eta[idx],
        h_phi[idx],
        hcal_e[idx],
        det.hcal_spot_gev,
        det.hcal_max_spots,
        det.hcal_core_fraction,
        det.hcal_core_mm,
        det.hcal_halo_mm,
        det.hcal_radius_mm,
        rng,
    )
    te, tp, inside = tower_index(s_eta, s_phi)
    return Hits.summed(s_ev[inside], te[inside], tp[inside], s_e[inside], N_TOWER_PHI)


def simulate_detector(
    particles: Particles, rng: np.random.Generator, det: CMSDetector = CMSDetector()
) -> DetectorResponse:
    """Tracks, ECAL and HCAL of all particles of a chunk of events (noise and zero suppression come per image)."""
    ecal, hcal, _ = calorimeter_hits(particles, rng, det)
    tracks = reconstruct_tracks(particles, rng, det)
    return DetectorResponse(tracks, ecal, hcal)


# ---------------------------------------------------------------------------------------------------------------
# seeds and images
# ---------------------------------------------------------------------------------------------------------------


def find_seeds(
    hcal: Hits, jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray, n_events: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed tower (ieta, iphi) per jet and whether the jet is image-able (module docstring).

    The seed is the most energetic HCAL tower in the 7 x 7 towers around the tower of the jet axis (ties: the
    first in eta-major order); jets without HCAL energy there keep the axis tower. Image-able: seed ieta in
    12..55 (the 125 x 125 crop stays inside the grid).
    """
    jet_event = np.asarray(jet_event, np.int64)
    te, tp, inside = tower_index(jet_eta, jet_phi)
    grid = np.zeros((n_events, N_TOWER_ETA, N_TOWER_PHI))
    np.add.at(grid, (hcal.event, hcal.ieta, hcal.iphi), hcal.value)
    h = SEED_WINDOW // 2
    d = np.arange(-h, h + 1)
    rows = te[:, None] + d[None, :]  # (n, 7)
    cols = np.mod(tp[:, None] + d[None, :], N_TOWER_PHI)
    valid_row = (rows >= 0) & (rows < N_TOWER_ETA)
    win = grid[jet_event[:, None, None], np.clip(rows, 0, N_TOWER_ETA - 1)[:, :, None], cols[:, None, :]]
    win = np.where(valid_row[:, :, None], win, -1.0)
    flat = win.reshape(len(jet_event), -1)
    best = np.argmax(flat, axis=1)
    has = flat[np.arange(len(best)), best] > 0
    seed_eta = np.where(has, rows[np.arange(len(best)), best // SEED_WINDOW], te)
    seed_phi = np.where(has, cols[np.arange(len(best)), best % SEED_WINDOW], tp)
    ok = inside & (seed_eta >= SEED_MARGIN) & (seed_eta <= N_TOWER_ETA - 1 - SEED_MARGIN)
    return seed_eta.astype(np.int64), seed_phi.astype(np.int64), ok


def _to_window(
    hits: Hits, event_to_jet: np.ndarray, origin_eta: np.ndarray, origin_phi: np.ndarray, size: int, n_phi: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(jet, flat window index row * size + col, value) of the hits inside each jet's crop window."""
    jet = event_to_jet[hits.event] if len(hits) else np.zeros(0, np.int64)
    m = jet >= 0
    jet = jet[m]
    row = hits.ieta[m] - origin_eta[jet]
    col = np.mod(hits.iphi[m] - origin_phi[jet], n_phi)
    inside = (row >= 0) & (row < size) & (col < size)
    return jet[inside], row[inside] * size + col[inside], hits.value[m][inside]


def _row_eta(origin_eta: np.ndarray, size: int, cell_eta: float) -> np.ndarray:
    """|eta| of the centre of every window row, (n_jets, size), for windows starting at grid row ``origin_eta``."""
    rows = origin_eta[:, None] + np.arange(size)[None, :]
    return np.abs((rows + 0.5) * cell_eta - ETA_EDGE)


def ecal_noise_sigma(abs_eta: np.ndarray, det: CMSDetector = CMSDetector()) -> np.ndarray:
    """Per-crystal noise (GeV): ``ecal_noise_gev`` in the barrel, ``ecal_noise_ee_gev`` beyond |eta| 1.479."""
    return np.where(np.asarray(abs_eta) < EB_ETA_MAX, det.ecal_noise_gev, det.ecal_noise_ee_gev)


def hcal_threshold(abs_eta: np.ndarray, det: CMSDetector = CMSDetector()) -> np.ndarray:
    """Per-tower zero-suppression threshold in energy (GeV): ``hcal_zs_et_gev`` x cosh(eta)."""
    return det.hcal_zs_et_gev * np.cosh(np.asarray(abs_eta))


def selective_readout(
    jet: np.ndarray, pos: np.ndarray, value: np.ndarray, abs_eta: np.ndarray, n_jets: int, det: CMSDetector
) -> np.ndarray:
    """ECAL crystals read out in full, (n_jets, 125 * 125) bool: the 3 x 3 trigger towers around every trigger
    tower (5 x 5 crystals) whose signal E_T exceeds ``ecal_sr_et_gev`` (module docstring).

    ``abs_eta`` is the |eta| of every window row (:func:`_row_eta`), (n_jets, 125).
    """
    row, col = np.divmod(pos, IMAGE_SIZE)
    et = value / np.cosh(abs_eta[jet, row])
    tt = np.zeros((n_jets, IMAGE_TOWERS + 2, IMAGE_TOWERS + 2))
    np.add.at(tt, (jet, row // CRYSTALS_PER_TOWER + 1, col // CRYSTALS_PER_TOWER + 1), et)
    hot = tt > det.ecal_sr_et_gev
    full = np.zeros_like(hot)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            full[:, 1:-1, 1:-1] |= hot[:, 1 + dr : IMAGE_TOWERS + 1 + dr, 1 + dc : IMAGE_TOWERS + 1 + dc]
    full = full[:, 1:-1, 1:-1]
    k = CRYSTALS_PER_TOWER
    return np.repeat(np.repeat(full, k, axis=1), k, axis=2).reshape(n_jets, _N_PIX)


def _add_noise(
    jet: np.ndarray,
    pos: np.ndarray,
    value: np.ndarray,
    n_cols: int,
    sigma: np.ndarray,
    threshold: np.ndarray,
    rng: np.random.Generator,
    full: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian noise in every cell of the windows and zero suppression (module docstring).

    ``sigma`` and ``threshold`` (GeV) are per jet and window row, (n_jets, n_rows); a cell is kept when its
    value exceeds the threshold, or is > 0 where ``full`` (n_jets, n_rows * n_cols) marks it as read out in full.
    Noise-only cells above threshold are sampled directly (binomial count per row, values from the Gaussian
    tail); noise-only cells read out in full get their Gaussian value. ``sigma`` = 0 turns noise off.
    """
    n_jets, n_rows = sigma.shape
    n_pos = n_rows * n_cols
    uniq, val = group_sum(jet * n_pos + pos, value)
    j, p = np.divmod(uniq, n_pos)
    r = p // n_cols
    val = val + sigma[j, r] * rng.standard_normal(len(val))
    in_full = full[j, p] if full is not None else np.zeros(len(val), bool)
    keep = np.where(in_full, val > 0, val > threshold[j, r])
    keys, vals = [uniq[keep]], [val[keep]]
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(sigma > 0, ndtr(-threshold / np.where(sigma > 0, sigma, 1.0)), 0.0)
    k = rng.binomial(n_cols, tail.reshape(-1))  # per (jet, row)
    cell = np.repeat(np.arange(n_jets * n_rows, dtype=np.int64), k)
    nj, nr = np.divmod(cell, n_rows)
    npos = nr * n_cols + rng.integers(0, n_cols, len(cell))
    t = tail[nj, nr]
    nval = sigma[nj, nr] * ndtri(1.0 - t * (1.0 - rng.random(len(cell))))  # Gaussian tail above threshold
    nkey, first = np.unique(nj * n_pos + npos, return_index=True)
    fresh = ~np.isin(nkey, uniq, assume_unique=True)  # cells with signal already carry their noise
    if full is not None:
        fresh &= ~full.reshape(-1)[nkey]  # cells read out in full get their noise below
    keys.append(nkey[fresh])
    vals.append(nval[first][fresh])
    if full is not None and np.any(sigma > 0):
        fkey = np.flatnonzero(full.reshape(-1))
        fkey = fkey[~np.isin(fkey, uniq, assume_unique=True)]
        fj, fp = np.divmod(fkey, n_pos)
        fval = sigma[fj, fp // n_cols] * rng.standard_normal(len(fkey))
        keys.append(fkey[fval > 0])
        vals.append(fval[fval > 0])
    key = np.concatenate(keys)
    return key // n_pos, key % n_pos, np.concatenate(vals)


def jet_images(
    response: DetectorResponse,
    jet_event: np.ndarray,
    seed_eta: np.ndarray,
    seed_phi: np.ndarray,
    n_events: int,
    rng: np.random.Generator,
    det: CMSDetector = CMSDetector(),
) -> SparseImages:
    """125 x 125 x 3 images (sparse) of jets with seeds (:func:`find_seeds`); one jet per event at most.

    Adds calorimeter noise, the ECAL selective readout and zero suppression (``det.noise`` = False: thresholds
    without noise), spreads every HCAL tower over its 5 x 5 crystals at E/25, and puts pixel (62, 62) on the
    seed tower's centre crystal (module docstring).
    """
    jet_event = np.asarray(jet_event, np.int64)
    n_jets = len(jet_event)
    if len(np.unique(jet_event)) != n_jets:
        raise ValueError("jet_images takes at most one jet per event")
    event_to_jet = np.full(n_events, -1, np.int64)
    event_to_jet[jet_event] = np.arange(n_jets)
    c_eta = seed_eta * CRYSTALS_PER_TOWER - _CROP_OFFSET
    c_phi = seed_phi * CRYSTALS_PER_TOWER - _CROP_OFFSET
    t_eta = seed_eta - IMAGE_TOWERS // 2
    t_phi = seed_phi - IMAGE_TOWERS // 2
    on = 1.0 if det.noise else 0.0
    parts = []
    # tracks: no noise
    j, pos, val = _to_window(response.tracks, event_to_jet, c_eta, c_phi, IMAGE_SIZE, N_CRYSTAL_PHI)
    uniq, sums = group_sum(j * _N_PIX + pos, val)
    parts.append((uniq // _N_PIX, uniq % _N_PIX, TRACK, sums))
    # ECAL crystals: selective readout, noise, zero suppression in the low-interest regions
    j, pos, val = _to_window(response.ecal, event_to_jet, c_eta, c_phi, IMAGE_SIZE, N_CRYSTAL_PHI)
    a_eta = _row_eta(c_eta, IMAGE_SIZE, CRYSTAL_ETA)
    sigma = ecal_noise_sigma(a_eta, det)
    full = selective_readout(j, pos, val, a_eta, n_jets, det)
    j, pos, val = _add_noise(j, pos, val, IMAGE_SIZE, on * sigma, det.ecal_zs_sigma * sigma, rng, full)
    parts.append((j, pos, ECAL, val))
    # HCAL towers, then 5 x 5 crystals each at E / 25
    j, pos, val = _to_window(response.hcal, event_to_jet, t_eta, t_phi, IMAGE_TOWERS, N_TOWER_PHI)
    a_eta = _row_eta(t_eta, IMAGE_TOWERS, TOWER_ETA)
    sigma = np.full(a_eta.shape, on * det.hcal_noise_gev)
    j, pos, val = _add_noise(j, pos, val, IMAGE_TOWERS, sigma, hcal_threshold(a_eta, det), rng)
    tr, tc = np.divmod(pos, IMAGE_TOWERS)
    d = np.arange(CRYSTALS_PER_TOWER)
    rows = (tr[:, None, None] * CRYSTALS_PER_TOWER + d[None, :, None]) * IMAGE_SIZE
    cols = tc[:, None, None] * CRYSTALS_PER_TOWER + d[None, None, :]
    n25 = CRYSTALS_PER_TOWER**2
    parts.append((np.repeat(j, n25), (rows + cols).reshape(-1), HCAL, np.repeat(val / n25, n25)))
    jet = np.concatenate([p[0] for p in parts])
    pixel = np.concatenate([p[1] * 3 + p[2] for p in parts])
    value = np.concatenate([p[3] for p in parts]).astype(np.float32)
    keep = value > 0
    order = np.argsort(jet[keep] * (_N_PIX * 3) + pixel[keep], kind="stable")
    return SparseImages(n_jets, jet[keep][order], pixel[keep][order], value[keep][order])


def upsample_hcal(towers: np.ndarray) -> np.ndarray:
    """Spread (..., 25, 25) tower energies over (..., 125, 125) crystals at E/25 (the HCAL channel)."""
    towers = np.asarray(towers)
    k = CRYSTALS_PER_TOWER
    return np.repeat(np.repeat(towers, k, axis=-2), k, axis=-1) / (k * k)


def hit_multiplicity(images: np.ndarray) -> np.ndarray:
    """(n, 3) non-zero pixels per jet and channel of dense (n, 125, 125, 3) images (the Report's counting)."""
    return np.count_nonzero(np.asarray(images) > 0, axis=(1, 2))


def single_particle_response(
    pdg: int,
    energies: list[float] | np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    eta: float = 0.3,
    det: CMSDetector = CMSDetector(),
) -> dict[str, np.ndarray]:
    """ECAL and HCAL energy (no noise) of ``n`` particles per energy at ``eta``: a validation of the response.

    Returns ``energy`` (n_E,), ``ecal`` and ``hcal`` (n_E, n) in GeV.
    """
    from jetcloud.sim.physics import gun_particles

    energies = np.asarray(energies, np.float64)
    out = {"energy": energies, "ecal": np.zeros((len(energies), n)), "hcal": np.zeros((len(energies), n))}
    for i, e in enumerate(energies):
        parts = gun_particles(pdg, float(e), eta, n, rng)
        ecal, hcal, _ = calorimeter_hits(parts, rng, det)
        out["ecal"][i] = np.bincount(ecal.event, weights=ecal.value, minlength=n)
        out["hcal"][i] = np.bincount(hcal.event, weights=hcal.value, minlength=n)
    return out
