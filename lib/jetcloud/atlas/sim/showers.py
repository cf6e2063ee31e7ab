"""Fast parametric shower simulation: EM, hadronic and MIP energy deposits per cell and truth particle.

Every particle that reaches the calorimeter front face (:func:`jetcloud.atlas.sim.tracker.calo_entry`) showers along the
straight line from the origin through its entry point (``entry_eta``, ``entry_phi``). The simulation is
vectorised over all particles of a chunk of events: per particle a *material table* (thickness of every depth
slot in radiation lengths X0 and interaction lengths lambda), per (particle, slot) the longitudinal energy
fractions from gamma-distribution CDFs, and per (particle, slot, component) a bounded number of *spots* sampled
from the lateral profiles (``np.repeat`` expansion), which are looked up in the geometry and summed per
(event, cell, truth particle).

Units: GeV, mm, rad. Depths ``t`` in X0, ``l`` in lambda_I (nuclear interaction lengths).

Material / depth model (:data:`SLOTS`)
--------------------------------------
A line at |eta| traverses 14 depth slots in a fixed order: dead material in front, presampler, EM layers 1-3,
dead material between the EM and hadronic calorimeters, Tile gap scintillators, hadronic layers 1-4, FCAL
modules 1-3. Each slot has |eta| *segments* (sampling, |eta| range, thickness at a reference |eta|, how it
scales, material class). Barrel layers (fixed r) scale as ``cosh(eta)``, end-cap layers (fixed |z|) as
``1/tanh|eta|`` (normalised at |eta| = 2 for EMEC/HEC, 3.5 for FCAL). Thicknesses (approximate):

* Dead material in front of the EM calorimeter (ID, solenoid, cryostat): 2.3 X0 at eta = 0 rising to 3.2 X0 at
  |eta| = 1 and 6-6.5 X0 in the barrel/end-cap crack (1.37-1.52), ~3 X0 in the end-cap, 3.5-4 X0 in front of
  FCAL; lambda = 0.18 X0 (Al/Si/Cu mix). ATLAS Collaboration, JINST 3 (2008) S08003 ("ATLAS experiment"), Figs.
  1.3 and 5.3 (material in front of the EM calorimeter).
* Presamplers: 0.3 X0 effective. EMB (Pb/LAr accordion, 1.53 mm Pb for |eta| < 0.8, 1.13 mm above, modelled as
  a 0.8 thickness factor): EMB1 4.3 X0, EMB2 16 X0, EMB3 2 X0 at eta = 0 (22.6 X0 incl. PS; 35 X0 at
  |eta| = 1.3, ATLAS 22-33 X0). EMEC: EME1 4, EME2 17, EME3 3 X0 at |eta| = 2 (> 24 X0, JINST 3 S08003
  sec. 5.2); the inner wheel (2.5-3.2) has EME2 (21 X0) and EME3 (3 X0). Mixture rule (PDG "Passage of particles
  through matter", eqs. for X0, R_M of mixtures) for Pb 66% / LAr 22% / Fe 12% by mass: X0 = 1.9 cm,
  lambda_I = 38 cm, hence lambda/X0 = 0.049 for the LAr EM layers (22 X0 = 1.1-1.2 lambda), R_M = 37 mm.
* Dead material between EM and hadronic calorimeters (cryostat back, services): 0.15 lambda at eta = 0, 0.25 at
  |eta| = 1, up to 0.4-0.5 lambda in the barrel / extended-barrel gap (1.1-1.45); 0.05-0.1 lambda in the end-cap.
* Tile (Fe/scintillator 4.7:1, lambda/X0 ~ 0.1): barrel A/BC/D = 1.5/4.1/1.8 lambda at eta = 0 (ATLAS Tile
  TDR CERN/LHCC 96-42; JINST 3 S08003 sec. 5.3); extended barrel A/B/D = 1.5/2.6/3.3 lambda; gap cells C10
  (TileGap1) 2.5 lambda and D4 (TileGap2) 1.8 lambda; E scintillators (TileGap3, 1.0 < |eta| < 1.6) sample a
  0.4 lambda crack slot of which only 25% is "active" (the rest is dead material).
* HEC (Cu/LAr, lambda/X0 = 0.1): HEC0-3 = 1.4/2.8/2.9/2.9 lambda (10 lambda, JINST 3 S08003 sec. 5.4).
* FCAL: FCAL1 (Cu) 27.6 X0 = 2.66 lambda, FCAL2/3 (W) 3.68/3.60 lambda (ATLAS FCAL, JINST 3 (2008) P02002).

The builtin geometry decides the cells: a segment's sampling is looked up with ``geometry.cell_index``; spots
that find no cell try the other samplings of the same depth (:data:`SAME_DEPTH`), then the nearest |eta| where the
sampling has cells (coverage probed once per geometry), and only then count as lost (``Deposits.e_dead``).

EM showers (e+-, gamma, pi0)
----------------------------
Longitudinal: dE/dt = E b (bt)^(a-1) e^(-bt) / Gamma(a) (PDG "Passage of particles through matter", sec. 34.5)
with t_max = (a-1)/b = ln(E/E_c) + C, C = -0.5 (e) / +0.5 (gamma), b = 0.5, effective E_c = 11 MeV for
Pb/LAr (Pb 7.4 MeV, LAr 32 MeV). Shower-to-shower fluctuations: ln t_max and ln a are correlated Gaussians with
sigma(ln T) = 1/(-1.4 + 1.26 ln y), sigma(ln a) = 1/(-0.58 + 0.86 ln y), rho = 0.705 - 0.023 ln y, y = E/E_c
(Grindhammer, Rudowicz, Peters, NIM A290 (1990) 469; Grindhammer & Peters, hep-ex/0001020). The profile starts
at the front of the dead material, so EM showers lose a few % upstream (more at low E), as in ATLAS.
Lateral: the Grindhammer-Peters two-component radial profile f(r) = p f_C + (1-p) f_T,
f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2 (r in units of R_M), with R_C = z1 + z2 tau, R_T = k1 (exp(k3 (tau - k2))
+ exp(k4 (tau - k2))), p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)), tau = t/T and the homogeneous-medium
coefficients of hep-ex/0001020 for Z_eff = 60; truncated at 5 R_M.
Sampling fluctuations: the visible energy of every (particle, slot) is Gamma distributed with mean E_slot and
variance a^2 E_slot, a = 10%/sqrt(GeV) in LAr EM (ATLAS EMB test beam: 10%/sqrt(E) + 0.2-0.7% constant;
Aharrouche et al., NIM A568 (2006) 601), 21% in HEC, 28% in FCAL and Tile; independent per slot, so the total
has a/sqrt(E). Constant term 0.7% (ATLAS design) per particle. The cell energy is at the EM scale: the
response to electrons is 1 for energy deposited in the calorimeter.

Hadronic showers (all other hadrons)
------------------------------------
The first interaction depth l_int (lambda) is exponential with mean 1.2 lambda_I for mesons (pi/K: lambda_pi ~
1.2 lambda_I in Fe) and 1.0 for baryons; before it a charged hadron deposits MIP energy. Then the shower has an
EM part f_em and a non-EM part 1 - f_em (Bock et al., NIM 186 (1981) 533, two-component profile):

* f_em: mean 1 - (E/E0)^(k-1) (Groom, NIM A572 (2007) 633) with E0 = 1 GeV, k = 0.83 (mesons) and E0 = 2.6 GeV
  (baryons); Beta distributed with sigma = 0.12 (Wigmans, "Calorimetry", 2nd ed., ch. 2 and 4).
* EM part: the EM profile above in X0 from the interaction point, for the mean energy of the subshowers
  (30% of the EM energy); non-EM part: gamma profile in lambda from the interaction point with
  l_max = 0.2 ln(E/GeV) + 0.7 (PDG "Calorimetry", sec. 35.4.1) and b_h = 0.9/lambda.
* Visible (EM-scale) energy: E (f_em + (1 - f_em) h/e) with e/h = 1.35 (LAr: h/e = 0.74) and 1.30 (Tile:
  h/e = 0.77); the invisible part (nuclear binding, neutrons, ...) is lost from the visible but kept in e_true.
* Fluctuations: Gamma with variance a_h^2 E per slot for the non-EM part (a_h = 0.45/sqrt(GeV) intrinsic +
  sampling), the EM-part fluctuation above, 2% constant term per particle; f_em and l_int fluctuations add
  (measured total for single pi+ at eta = 0.3 ~ 50%/sqrt(E) (+) 5%, cf. ATLAS combined test beam pions
  52%/sqrt(E) (+) 3%, NIM A531 (2004) 481, Eur.Phys.J. C 77 (2017) 490 for E/p).
* Lateral: core + halo, radial pdf r exp(-r/R) (Gamma(2, R)) with R_core = 20 mm + 10 mm/lambda depth and
  R_halo = 80 mm, halo fraction 30% (core of a few cm, halo 15-20 cm mean radius; cf. ATLAS Tile/TB lateral
  profiles, Akhmadaliev et al., NIM A449 (2000) 461).
* Available energy: E for mesons, E - m for baryons, E + m for anti-baryons (annihilation).

Muons and low-energy particles
------------------------------
Muons (and the pre-interaction track of charged hadrons) lose 0.2 GeV per lambda (mixture dE/dx_min = 1.24 MeV
cm^2/g x lambda = 165 g/cm^2 for the EM calorimeter; Fe/scintillator similar) times 1.3 (relativistic rise,
mean), with a Moyal (Landau-like) fluctuation of relative width 0.15 per slot, giving ~ 2.5-3 GeV through the
barrel. Neutrinos deposit nothing. Particles with less than 0.3 GeV available energy deposit everything in the
first active slot on their path (EM: response 1; hadrons: response 0.8).

Truth definition (``e_true``)
-----------------------------
``e_vis`` is what the cell measures at the EM scale (after sampling fluctuations). ``e_true`` is the energy the
particle deposits in the cell's volume *including* invisible energy, like a calibration hit's
``energyTotal()``: EM part and MIP energy as deposited (without sampling fluctuations), non-EM part before
the h/e factor. Per particle, sum(e_true) + e_dead + e_leak = available energy (exactly, up to float32),
where ``e_dead`` is energy in dead material / cracks / spots without a cell and ``e_leak`` leaks out of the
back (or is carried by muons and neutrinos).
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from jetcloud.arrays import unique
from jetcloud.atlas.cellgeo import N_SAMPLINGS, SAMPLING_IS_ENDCAP, CaloGeometry
from jetcloud.sim.particles import Particles
from jetcloud.sim.physics import (
    DEAD,
    FCAL,
    GAP,
    HEC,
    KIND_EM,
    KIND_HADRON,
    KIND_MUON,
    KIND_NONE,
    LAR_EM,
    TILE,
    ShowerParams,
    available_energy,
    classify,
    em_radius,
    em_shape,
    gamma_fractions,
    gamma_smear,
    gun_particles,
    mean_fem,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------------------
# material classes and the slot table
# ----------------------------------------------------------------------------------------------------------------

#: lambda / X0 per material class (dead: Al/Si/Cu mix; LAr EM: Pb/LAr mixture rule; Tile: Fe/scint; HEC: Cu/LAr;
#: FCAL: mean of Cu FCAL1 and W FCAL2/3 is not used, FCAL segments give both lengths explicitly).
X0_PER_LAMBDA: np.ndarray = np.array([1 / 0.18, 1 / 0.049, 10.0, 10.0, 10.0, 10.0])


@dataclass(frozen=True)
class Segment:
    """One sampling inside a depth slot for ``lo <= |eta| < hi``.

    ``x0`` / ``lam``: thickness at ``eta_ref`` (give one; the other follows from :data:`X0_PER_LAMBDA`);
    ``surface`` ``"r"`` scales as cosh(eta) / cosh(eta_ref), ``"z"`` as tanh(eta_ref) / tanh|eta|.
    ``active``: fraction of the slot's deposit that reaches the cell (the rest is dead material).
    """

    sampling: int  # -1: dead material
    lo: float
    hi: float
    material: int
    x0: float = 0.0
    lam: float = 0.0
    surface: str = "r"
    eta_ref: float = 0.0
    active: float = 1.0
    high_eta_factor: float = 1.0  # extra thickness factor for |eta| > 0.8 (EMB thinner lead)


def _dm_front_x0(abs_eta: np.ndarray) -> np.ndarray:
    knots = (0.0, 0.6, 1.0, 1.3, 1.4, 1.5, 1.6, 1.8, 2.5, 3.2, 4.9)
    vals = (2.3, 2.6, 3.2, 4.5, 6.0, 6.5, 4.5, 3.5, 3.0, 3.5, 4.0)
    return np.interp(abs_eta, knots, vals)


def _dm_mid_lambda(abs_eta: np.ndarray) -> np.ndarray:
    knots = (0.0, 1.0, 1.1, 1.4, 1.5, 1.6, 3.2, 3.3)
    vals = (0.15, 0.25, 0.4, 0.5, 0.3, 0.1, 0.1, 0.0)
    return np.interp(abs_eta, knots, vals)


#: Depth slots in order along the line, each a list of |eta| segments (non-overlapping, ascending).
SLOTS: tuple[tuple[str, tuple[Segment, ...]], ...] = (
    ("dead_front", (Segment(-1, 0.0, 4.9, DEAD),)),  # thickness from _dm_front_x0
    (
        "presampler",
        (Segment(0, 0.0, 1.52, LAR_EM, x0=0.3), Segment(4, 1.52, 1.8, LAR_EM, x0=0.3, surface="z", eta_ref=1.6)),
    ),
    (
        "em1",
        (
            Segment(1, 0.0, 1.45, LAR_EM, x0=4.3, high_eta_factor=0.8),
            Segment(5, 1.45, 2.5, LAR_EM, x0=4.0, surface="z", eta_ref=2.0),
        ),
    ),
    (
        "em2",
        (
            Segment(2, 0.0, 1.45, LAR_EM, x0=16.0, high_eta_factor=0.8),
            Segment(6, 1.45, 2.5, LAR_EM, x0=17.0, surface="z", eta_ref=2.0),
            Segment(6, 2.5, 3.2, LAR_EM, x0=21.0, surface="z", eta_ref=2.0),
        ),
    ),
    (
        "em3",
        (
            Segment(3, 0.0, 1.45, LAR_EM, x0=2.0, high_eta_factor=0.8),
            Segment(7, 1.45, 3.2, LAR_EM, x0=3.0, surface="z", eta_ref=2.0),
        ),
    ),
    ("dead_mid", (Segment(-1, 0.0, 3.3, DEAD),)),  # thickness from _dm_mid_lambda
    ("tile_gap3", (Segment(17, 1.0, 1.6, GAP, lam=0.4, active=0.25),)),
    (
        "had1",
        (
            Segment(12, 0.0, 1.0, TILE, lam=1.5),
            Segment(18, 1.0, 1.55, TILE, lam=1.5),
            Segment(8, 1.55, 3.3, HEC, lam=1.4, surface="z", eta_ref=2.0),
        ),
    ),
    (
        "had2",
        (
            Segment(13, 0.0, 0.9, TILE, lam=4.1),
            Segment(15, 0.9, 1.0, TILE, lam=2.5),
            Segment(19, 1.0, 1.55, TILE, lam=2.6),
            Segment(9, 1.55, 3.3, HEC, lam=2.8, surface="z", eta_ref=2.0),
        ),
    ),
    (
        "had3",
        (
            Segment(14, 0.0, 0.75, TILE, lam=1.8),
            Segment(16, 0.75, 0.9, TILE, lam=1.8),
            Segment(20, 0.9, 1.55, TILE, lam=3.3),
            Segment(10, 1.55, 3.3, HEC, lam=2.9, surface="z", eta_ref=2.0),
        ),
    ),
    ("had4", (Segment(11, 1.55, 3.3, HEC, lam=2.9, surface="z", eta_ref=2.0),)),
    ("fcal1", (Segment(21, 3.2, 4.9, FCAL, x0=27.6, lam=2.66, surface="z", eta_ref=3.5),)),
    ("fcal2", (Segment(22, 3.2, 4.9, FCAL, x0=91.3, lam=3.68, surface="z", eta_ref=3.5),)),
    ("fcal3", (Segment(23, 3.2, 4.9, FCAL, x0=89.2, lam=3.60, surface="z", eta_ref=3.5),)),
)
N_SLOTS = len(SLOTS)
_SLOT_DEAD_FRONT, _SLOT_DEAD_MID = 0, 5

#: Samplings at the same depth, tried (in order) for spots that find no cell in their own sampling.
SAME_DEPTH: dict[int, tuple[int, ...]] = {
    0: (4,),
    4: (0,),
    1: (5,),
    5: (1,),
    2: (6,),
    6: (2,),
    3: (7,),
    7: (3,),
    12: (18, 17, 8),
    18: (12, 17, 8),
    13: (15, 19, 9),
    15: (13, 19),
    19: (15, 13, 9),
    14: (16, 20),
    16: (14, 20),
    20: (16, 14, 10),
    17: (18, 12),
    8: (18, 21),
    9: (19, 22),
    10: (20, 22),
    11: (23,),
    21: (8, 6),
    22: (9,),
    23: (11,),
}

#: Approximate radius (fixed-r samplings) or |z| (fixed-z samplings) in mm, used when a geometry lacks a sampling.
DEFAULT_POSITION_MM: np.ndarray = np.array(
    [
        1457,
        1535,
        1730,
        1930,
        3669,
        3791,
        3990,
        4203,
        4461,
        4870,
        5425,
        5905,
        2450,
        3020,
        3630,
        3215,
        3630,
        2250,
        2450,
        2870,
        3480,
        4936,
        5394,
        5869,
    ],
    dtype=np.float64,
)

# flattened segment table
_SEG: list[tuple[int, Segment]] = [(k, s) for k, (_, segs) in enumerate(SLOTS) for s in segs]
_SEG_SLOT = np.array([k for k, _ in _SEG])
_SEG_SAMPLING = np.array([s.sampling for _, s in _SEG])
_SEG_MATERIAL = np.array([s.material for _, s in _SEG])
_SEG_ACTIVE = np.array([s.active for _, s in _SEG])


@dataclass
class Deposits:
    """Energy deposits aggregated per unique (event, cell, truth particle), sorted by (event, cell, truth_index).

    ``e_vis``: EM-scale energy the cell measures (GeV); ``e_true``: deposited energy incl. invisible energy
    (calibration-hit ``energyTotal()``-like, GeV). ``e_dead`` / ``e_leak`` are per *input particle row*
    (float64, GeV): true energy in dead material / cracks / cell-less spots, and energy leaking out (back
    leakage, muons' remaining energy, neutrinos, particles that do not reach the calorimeter).
    """

    event: np.ndarray  # int64
    cell: np.ndarray  # int64, geometry row
    truth_index: np.ndarray  # int32, particles.index
    e_vis: np.ndarray  # float32, GeV
    e_true: np.ndarray  # float32, GeV
    e_dead: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 per particle
    e_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))  # float64 per particle

    def __len__(self) -> int:
        return len(self.event)

    @classmethod
    def empty(cls, n_particles: int = 0) -> Deposits:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros(n_particles),
            np.zeros(n_particles),
        )


# ----------------------------------------------------------------------------------------------------------------
# geometry helpers (cached per geometry object)
# ----------------------------------------------------------------------------------------------------------------

_COVER_BIN = 0.0025
_COVER_N = int(round(10.0 / _COVER_BIN))  # signed eta in [-5, 5)


@dataclass
class _GeoInfo:
    position: np.ndarray  # (24,) median r (barrel) / |z| (end-cap) per sampling, mm
    covered: np.ndarray  # (24, _COVER_N) bool, sampling has a cell at that signed-eta bin (any probed phi)
    covered_bins: list[np.ndarray]  # per sampling, sorted covered bin indices


_GEO_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _geo_info(geometry: CaloGeometry) -> _GeoInfo:
    info = _GEO_CACHE.get(geometry)
    if info is not None:
        return info
    t0 = time.perf_counter()
    samp = np.asarray(geometry.sampling, dtype=np.int64)
    position = DEFAULT_POSITION_MM.copy()
    for s in range(N_SAMPLINGS):
        m = samp == s
        if m.any():
            position[s] = np.median(np.abs(geometry.z[m]) if SAMPLING_IS_ENDCAP[s] else geometry.r_perp[m])
    centres = -5.0 + (np.arange(_COVER_N) + 0.5) * _COVER_BIN
    phis = np.linspace(-np.pi, np.pi, 8, endpoint=False) + 0.05
    e_grid = np.repeat(centres, len(phis))
    p_grid = np.tile(phis, _COVER_N)
    covered = np.zeros((N_SAMPLINGS, _COVER_N), dtype=bool)
    for s in np.unique(samp):
        hit = geometry.cell_index(int(s), e_grid, p_grid) >= 0
        covered[s] = hit.reshape(_COVER_N, len(phis)).any(axis=1)
    info = _GeoInfo(position, covered, [np.flatnonzero(covered[s]) for s in range(N_SAMPLINGS)])
    _GEO_CACHE[geometry] = info
    log.debug("shower geometry info built in %.2f s", time.perf_counter() - t0)
    return info


def _nearest_covered_eta(info: _GeoInfo, sampling: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Signed eta of the nearest covered bin centre of ``sampling`` (NaN where the sampling has no cells)."""
    out = np.full(len(eta), np.nan)
    b = np.clip(((eta + 5.0) / _COVER_BIN).astype(np.int64), 0, _COVER_N - 1)
    for s in np.unique(sampling):
        cb = info.covered_bins[int(s)]
        m = np.flatnonzero(sampling == s)
        if len(cb) == 0:
            continue
        j = np.clip(np.searchsorted(cb, b[m]), 1, len(cb) - 1) if len(cb) > 1 else np.zeros(len(m), np.int64)
        if len(cb) > 1:
            left, right = cb[j - 1], cb[j]
            best = np.where(np.abs(b[m] - left) <= np.abs(right - b[m]), left, right)
        else:
            best = np.full(len(m), cb[0])
        out[m] = -5.0 + (best + 0.5) * _COVER_BIN
    return out


# ----------------------------------------------------------------------------------------------------------------
# material table per particle
# ----------------------------------------------------------------------------------------------------------------


def material_table(abs_eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per particle and slot: (segment row or -1, thickness in X0, thickness in lambda), each (n, N_SLOTS).

    ``abs_eta`` is |eta| of the shower axis. Segment rows index the flattened :data:`SLOTS` table.
    """
    abs_eta = np.asarray(abs_eta, dtype=np.float64)
    n = len(abs_eta)
    seg = np.full((n, N_SLOTS), -1, dtype=np.int64)
    x0 = np.zeros((n, N_SLOTS))
    lam = np.zeros((n, N_SLOTS))
    cosh = np.cosh(abs_eta)
    tanh = np.maximum(np.tanh(abs_eta), 1e-3)
    for row, (k, s) in enumerate(_SEG):
        m = (abs_eta >= s.lo) & (abs_eta < s.hi)
        if not m.any():
            continue
        seg[m, k] = row
        if s.surface == "r":
            scale = cosh[m] / np.cosh(s.eta_ref)
        else:
            scale = np.tanh(s.eta_ref) / tanh[m]
        if s.high_eta_factor != 1.0:
            scale = scale * np.where(abs_eta[m] > 0.8, s.high_eta_factor, 1.0)
        if k == _SLOT_DEAD_FRONT:
            tx = _dm_front_x0(abs_eta[m])
            x0[m, k], lam[m, k] = tx, tx / X0_PER_LAMBDA[DEAD]
            continue
        if k == _SLOT_DEAD_MID:
            tl = _dm_mid_lambda(abs_eta[m])
            x0[m, k], lam[m, k] = tl * X0_PER_LAMBDA[DEAD], tl
            continue
        tx = s.x0 if s.x0 > 0 else s.lam * X0_PER_LAMBDA[s.material]
        tl = s.lam if s.lam > 0 else s.x0 / X0_PER_LAMBDA[s.material]
        x0[m, k], lam[m, k] = tx * scale, tl * scale
    return seg, x0, lam


# ----------------------------------------------------------------------------------------------------------------
# particle classification
# ----------------------------------------------------------------------------------------------------------------


def mean_pion_response(p: np.ndarray | float, params: ShowerParams = ShowerParams()) -> np.ndarray:
    """Approximate mean EM-scale response <E_vis>/p of a charged pion of momentum p (GeV) in the barrel.

    <f_em> + (1 - <f_em>) h/e (h/e averaged over LAr and Tile), times 0.96 for upstream and back losses; agrees
    with :func:`single_particle_response` at eta = 0.3 to a few % for 2-100 GeV (see tests).
    """
    p = np.asarray(p, dtype=np.float64)
    f = mean_fem(p, np.zeros(p.shape, dtype=bool), params)
    he = 0.5 * (params.h_over_e[LAR_EM] + params.h_over_e[TILE])
    return 0.96 * (f + (1.0 - f) * he)


# ----------------------------------------------------------------------------------------------------------------
# longitudinal profiles
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Axes:
    """The showering particles of one :func:`deposit` call: axis, kinematics and material along the axis."""

    eta: np.ndarray  # shower axis (calorimeter entry direction)
    phi: np.ndarray
    energy: np.ndarray  # available energy, GeV
    kind: np.ndarray  # KIND_* of jetcloud.sim.physics
    pdg: np.ndarray
    charged: np.ndarray  # bool
    baryon: np.ndarray  # bool
    seg: np.ndarray  # (na, N_SLOTS) segment row or -1
    seg_safe: np.ndarray  # seg with -1 replaced by 0 (for table look-ups)
    material: np.ndarray  # (na, N_SLOTS) material class, DEAD where there is no segment
    x0: np.ndarray  # (na, N_SLOTS) slot thickness in X0
    lam: np.ndarray  # (na, N_SLOTS) slot thickness in lambda
    xb: np.ndarray  # (na, N_SLOTS + 1) slot boundaries in X0
    lb: np.ndarray  # (na, N_SLOTS + 1) slot boundaries in lambda
    low: np.ndarray  # bool, available energy below params.low_energy_gev

    def __len__(self) -> int:
        return len(self.eta)


def _shower_axes(
    particles: Particles,
    act: np.ndarray,
    entry_eta: np.ndarray,
    entry_phi: np.ndarray,
    e_avail: np.ndarray,
    kind: np.ndarray,
    params: ShowerParams,
) -> _Axes:
    """Columns of the showering particle rows ``act`` and their material table along the shower axis."""
    eta = np.asarray(entry_eta, dtype=np.float64)[act]
    phi = np.asarray(entry_phi, dtype=np.float64)[act]
    abs_eta = np.abs(eta)
    energy = e_avail[act]
    kd = kind[act]
    pdg = np.asarray(particles.pdg)[act]
    charged = np.asarray(particles.charge)[act] != 0
    baryon = np.abs(pdg) > 1000
    na = len(act)

    seg, x0, lam = material_table(abs_eta)
    seg_safe = np.maximum(seg, 0)
    material = np.where(seg >= 0, _SEG_MATERIAL[seg_safe], DEAD)
    xb = np.concatenate([np.zeros((na, 1)), np.cumsum(x0, axis=1)], axis=1)
    lb = np.concatenate([np.zeros((na, 1)), np.cumsum(lam, axis=1)], axis=1)
    low = energy < params.low_energy_gev
    return _Axes(eta, phi, energy, kd, pdg, charged, baryon, seg, seg_safe, material, x0, lam, xb, lb, low)


@dataclass
class _Profile:
    """True energy per (particle, slot) of each component, and the shower quantities the lateral profiles need."""

    em: np.ndarray  # (na, N_SLOTS) EM part
    had: np.ndarray  # (na, N_SLOTS) non-EM part of hadronic showers
    mip: np.ndarray  # (na, N_SLOTS) MIP energy (muons, hadron tracks before the first interaction, low energy)
    depth_x: np.ndarray  # shower start in X0 (EM part)
    depth_l: np.ndarray  # shower start in lambda (hadronic part)
    tmax_em: np.ndarray  # EM T for the lateral profile
    e_em_lat: np.ndarray  # energy used for the EM lateral coefficients

    @classmethod
    def start(cls, ax: _Axes) -> _Profile:
        """No energy in any slot yet; showers start at the front, EM lateral coefficients for the full energy."""
        na = len(ax)
        return cls(
            em=np.zeros((na, N_SLOTS)),
            had=np.zeros((na, N_SLOTS)),
            mip=np.zeros((na, N_SLOTS)),
            depth_x=np.zeros(na),
            depth_l=np.zeros(na),
            tmax_em=np.ones(na),
            e_em_lat=ax.energy.copy(),
        )


def _em_showers(ax: _Axes, prof: _Profile, rng: np.random.Generator, params: ShowerParams) -> None:
    """EM showers (e+-, gamma, pi0) above the low-energy cut: gamma profile in X0 from the front."""
    m_em = (ax.kind == KIND_EM) & ~ax.low
    if not m_em.any():
        return
    i = np.flatnonzero(m_em)
    a, b, t = em_shape(ax.energy[i], np.abs(ax.pdg[i]) != 11, rng, params)
    prof.em[i] = ax.energy[i, None] * gamma_fractions(ax.xb[i], np.zeros(len(i)), a, b)
    prof.tmax_em[i] = t


def _pre_interaction_mip(ax: _Axes, i: np.ndarray, l_int: np.ndarray, params: ShowerParams) -> np.ndarray:
    """MIP energy per slot of hadrons ``i`` before their first interaction at ``l_int`` (charged only)."""
    seg_len = np.clip(np.minimum(ax.lb[i, 1:], l_int[:, None]) - ax.lb[i, :-1], 0.0, None)
    mip = np.where(ax.charged[i, None], seg_len * params.mip_gev_per_lambda, 0.0)
    mip_tot = mip.sum(axis=1)
    scale = np.where(mip_tot > ax.energy[i], ax.energy[i] / np.maximum(mip_tot, 1e-12), 1.0)
    mip *= scale[:, None]
    return mip


def _draw_fem(e_sh: np.ndarray, baryon: np.ndarray, rng: np.random.Generator, params: ShowerParams) -> np.ndarray:
    """EM fraction of hadronic showers of energy ``e_sh``, Beta distributed around Groom's mean."""
    mu = mean_fem(e_sh, baryon, params)
    sig = np.minimum(params.fem_sigma, 0.9 * np.sqrt(mu * (1.0 - mu)))
    nu = mu * (1.0 - mu) / sig**2 - 1.0
    return rng.beta(mu * nu, (1.0 - mu) * nu)


def _interaction_x0(ax: _Axes, i: np.ndarray, l_int: np.ndarray) -> np.ndarray:
    """X0 position of the interaction points ``l_int`` (lambda) of particles ``i``: cumulative X0 vs lambda."""
    lb, xb = ax.lb, ax.xb
    j = np.clip((lb[i, 1:] <= l_int[:, None]).sum(axis=1), 0, N_SLOTS - 1)
    rows = np.arange(len(i))
    frac_in = np.clip((l_int - lb[i][rows, j]) / np.maximum(ax.lam[i][rows, j], 1e-12), 0.0, 1.0)
    x_int = xb[i][rows, j] + frac_in * ax.x0[i][rows, j]
    beyond = l_int >= lb[i, -1]
    return np.where(beyond, xb[i, -1] + 1.0, x_int)


def _hadron_showers(ax: _Axes, prof: _Profile, rng: np.random.Generator, params: ShowerParams) -> None:
    """Hadronic showers above the low-energy cut: MIP track, then EM and non-EM parts from the interaction point."""
    m_had = (ax.kind == KIND_HADRON) & ~ax.low
    if not m_had.any():
        return
    i = np.flatnonzero(m_had)
    ni = len(i)
    lam_int = np.where(ax.baryon[i], params.lambda_int_baryon, params.lambda_int_meson)
    l_int = rng.exponential(lam_int)
    mip = _pre_interaction_mip(ax, i, l_int, params)
    prof.mip[i] = mip
    e_sh = ax.energy[i] - mip.sum(axis=1)
    fem = _draw_fem(e_sh, ax.baryon[i], rng, params)
    x_int = _interaction_x0(ax, i, l_int)
    e_sub = np.maximum(fem * e_sh * params.em_sub_fraction, 0.05)
    a, b, t = em_shape(e_sub, np.ones(ni, dtype=bool), None, params)
    prof.em[i] = (fem * e_sh)[:, None] * gamma_fractions(ax.xb[i], x_int, a, b)
    t_h = params.had_tmax_slope * np.log(np.maximum(e_sh, 1.0)) + params.had_tmax_offset
    a_h = 1.0 + params.had_b * t_h
    prof.had[i] = ((1.0 - fem) * e_sh)[:, None] * gamma_fractions(ax.lb[i], l_int, a_h, np.full(ni, params.had_b))
    prof.depth_x[i], prof.depth_l[i], prof.tmax_em[i], prof.e_em_lat[i] = x_int, l_int, t, e_sub


def _muon_tracks(ax: _Axes, prof: _Profile, rng: np.random.Generator, params: ShowerParams) -> None:
    """Muons above the low-energy cut: mean MIP loss per slot with a Moyal fluctuation, capped at the energy."""
    m_mu = (ax.kind == KIND_MUON) & ~ax.low
    if not m_mu.any():
        return
    i = np.flatnonzero(m_mu)
    mean = ax.lam[i] * params.mip_gev_per_lambda * params.mip_mean_factor
    # Moyal(0, 1) = -ln(Z^2); mean gamma_E + ln 2 = 1.27; rescale so the slot mean is `mean`
    z = rng.standard_normal(mean.shape)
    moyal = np.minimum(-np.log(np.maximum(z * z, 1e-12)), 20.0)
    w = params.mip_landau_width
    f = np.maximum(1.0 + w * (moyal - 1.2704), 0.05)
    mip = mean * f
    tot = mip.sum(axis=1)
    scale = np.where(tot > ax.energy[i], ax.energy[i] / np.maximum(tot, 1e-12), 1.0)
    prof.mip[i] = mip * scale[:, None]


def _low_energy_deposits(ax: _Axes, prof: _Profile) -> None:
    """Low-energy particles: everything in the first slot with an active sampling (EM part or MIP part)."""
    if not ax.low.any():
        return
    i = np.flatnonzero(ax.low)
    kd = ax.kind
    has_s = (ax.seg[i] >= 0) & (_SEG_SAMPLING[ax.seg_safe[i]] >= 0) & (ax.lam[i] > 0)
    first = np.argmax(has_s, axis=1)
    em_rows = i[kd[i] == KIND_EM]
    oth_rows = i[kd[i] != KIND_EM]
    prof.em[em_rows, first[kd[i] == KIND_EM]] = ax.energy[em_rows]
    prof.mip[oth_rows, first[kd[i] != KIND_EM]] = ax.energy[oth_rows]


def _back_leakage(ax: _Axes, prof: _Profile) -> np.ndarray:
    """Energy per particle that leaks out of the back (available energy not in any slot)."""
    tot_true = prof.em.sum(axis=1) + prof.had.sum(axis=1) + prof.mip.sum(axis=1)
    return np.maximum(ax.energy - tot_true, 0.0)


def _split_dead(ax: _Axes, prof: _Profile) -> np.ndarray:
    """Remove dead slots and inactive slot fractions from ``prof`` (in place); return that energy per slot."""
    active = np.where(ax.seg >= 0, _SEG_ACTIVE[ax.seg_safe], 0.0) * (_SEG_SAMPLING[ax.seg_safe] >= 0)
    dead = (prof.em + prof.had + prof.mip) * (1.0 - active)
    prof.em *= active
    prof.had *= active
    prof.mip *= active
    return dead


def _visible_energy(
    ax: _Axes, prof: _Profile, rng: np.random.Generator, params: ShowerParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible (EM, non-EM, MIP) energy per slot: Gamma sampling fluctuations (variance a^2 E), h/e, constant term."""
    a_em = np.asarray(params.a_em)[ax.material]
    a_hd = np.asarray(params.a_had)[ax.material]
    h_e = np.asarray(params.h_over_e)[ax.material]
    em_vis = gamma_smear(prof.em, a_em, rng)
    had_mean = prof.had * h_e
    had_vis = gamma_smear(had_mean, a_hd, rng)
    low_had = ax.low & (ax.kind != KIND_EM)
    mip_vis = prof.mip * np.where(low_had, params.low_energy_hadron_response, 1.0)[:, None]
    const = np.where(ax.kind == KIND_EM, params.em_constant, params.had_constant)
    cfac = np.maximum(1.0 + const * rng.standard_normal(len(ax)), 0.0)
    em_vis *= cfac[:, None]
    had_vis *= cfac[:, None]
    return em_vis, had_vis, mip_vis


# ----------------------------------------------------------------------------------------------------------------
# spots: lateral profiles and cell look-up
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Spots:
    """Energy spots, each a share of one (component, particle, slot) entry."""

    comp: np.ndarray  # 0: EM, 1: non-EM, 2: MIP
    particle: np.ndarray  # row in _Axes
    slot: np.ndarray
    e_true: np.ndarray
    e_vis: np.ndarray

    def __len__(self) -> int:
        return len(self.comp)


def _expand_spots(
    ax: _Axes,
    prof: _Profile,
    em_vis: np.ndarray,
    had_vis: np.ndarray,
    mip_vis: np.ndarray,
    dead: np.ndarray,
    params: ShowerParams,
) -> _Spots:
    """Split each (component, particle, slot) entry into equal spots; entries too small add to ``dead`` instead."""
    comp_true = np.stack([prof.em, prof.had, prof.mip])  # (3, na, K)
    comp_vis = np.stack([em_vis, had_vis, mip_vis])
    c_idx, p_idx, k_idx = np.nonzero(comp_true > params.min_slot_energy)
    small = comp_true <= params.min_slot_energy
    dead += np.where(small, comp_true, 0.0).sum(axis=0)
    et = comp_true[c_idx, p_idx, k_idx]
    ev = comp_vis[c_idx, p_idx, k_idx]
    spot_e = np.array([params.spot_energy_em, params.spot_energy_had, np.inf])[c_idx]
    max_n = np.array([params.max_spots_em, params.max_spots_had, 1])[c_idx]
    n_spot = np.clip(np.ceil(et / spot_e), 1, max_n).astype(np.int64)
    n_spot[ax.low[p_idx]] = 1
    owner = np.repeat(np.arange(len(et)), n_spot)
    sp_c, sp_p, sp_k = c_idx[owner], p_idx[owner], k_idx[owner]
    return _Spots(sp_c, sp_p, sp_k, (et / n_spot)[owner], (ev / n_spot)[owner])


def _spot_radius(
    ax: _Axes, prof: _Profile, spots: _Spots, rng: np.random.Generator, params: ShowerParams
) -> np.ndarray:
    """Distance (mm) of every spot from the shower axis, from its component's lateral profile at the slot middle."""
    sp_p, sp_k = spots.particle, spots.slot
    mid_x = 0.5 * (ax.xb[sp_p, sp_k] + ax.xb[sp_p, sp_k + 1]) - prof.depth_x[sp_p]
    mid_l = np.maximum(0.5 * (ax.lb[sp_p, sp_k] + ax.lb[sp_p, sp_k + 1]) - prof.depth_l[sp_p], 0.0)
    r = np.zeros(len(spots))
    m = spots.comp == 0
    if m.any():
        r[m] = em_radius(prof.e_em_lat[sp_p[m]], np.maximum(mid_x[m], 0.0) / prof.tmax_em[sp_p[m]], rng, params)
    m = spots.comp == 1
    if m.any():
        nm = int(m.sum())
        halo = rng.random(nm) < params.halo_fraction
        scale = np.where(halo, params.halo_r_mm, params.core_r0_mm + params.core_r_slope_mm * mid_l[m])
        r[m] = scale * rng.gamma(2.0, 1.0, nm)
    m = ax.low[sp_p]
    r[m] = 0.0
    return r


def _spot_cells(
    geometry: CaloGeometry, info: _GeoInfo, ax: _Axes, spots: _Spots, r: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Cell of every spot placed at distance ``r`` from the axis at a uniform azimuth; -1 if none."""
    psi = rng.uniform(0.0, 2.0 * np.pi, len(spots))
    sampling = _SEG_SAMPLING[ax.seg[spots.particle, spots.slot]]
    ax_eta = ax.eta[spots.particle]
    pos = info.position[sampling]
    r_perp = np.where(SAMPLING_IS_ENDCAP[sampling], pos / np.maximum(np.abs(np.sinh(ax_eta)), 1e-6), pos)
    sp_eta = ax_eta + r * np.cos(psi) / r_perp
    sp_phi = ax.phi[spots.particle] + r * np.sin(psi) / r_perp
    return _lookup(geometry, info, sampling, sp_eta, sp_phi, ax_eta)


def _drop_lost_spots(spots: _Spots, cell: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Add the true energy of spots without a cell to ``dead``; return the mask of spots with a cell."""
    lost = cell < 0
    if lost.any():
        np.add.at(dead, (spots.particle[lost], spots.slot[lost]), spots.e_true[lost])
        log.debug("%d of %d spots found no cell", int(lost.sum()), len(spots))
    return ~lost


# ----------------------------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------------------------


def deposit(
    particles: Particles,
    entry_eta: np.ndarray,
    entry_phi: np.ndarray,
    reached: np.ndarray,
    geometry: CaloGeometry,
    rng: np.random.Generator,
    *,
    params: ShowerParams = ShowerParams(),
) -> Deposits:
    """Simulate the calorimeter deposits of all ``particles`` (see the module docstring for the physics).

    ``entry_eta``/``entry_phi``: direction (from the origin) of the calorimeter entry point; particles with
    ``reached`` false deposit nothing (their energy is counted in ``e_leak``). Returns :class:`Deposits`.
    """
    t_start = time.perf_counter()
    n = len(particles)
    info = _geo_info(geometry)
    reached = np.asarray(reached, dtype=bool) & np.isfinite(entry_eta) & np.isfinite(entry_phi)
    kind = classify(particles.pdg)
    e_avail = available_energy(particles)
    e_leak = np.where(reached & (kind != KIND_NONE), 0.0, e_avail)
    e_dead = np.zeros(n)
    act = np.flatnonzero(reached & (kind != KIND_NONE) & (e_avail > 0) & (np.abs(entry_eta) < 4.9))
    e_leak[np.flatnonzero(reached & (kind != KIND_NONE) & (np.abs(entry_eta) >= 4.9))] = e_avail[
        reached & (kind != KIND_NONE) & (np.abs(entry_eta) >= 4.9)
    ]
    if len(act) == 0:
        out = Deposits.empty(n)
        out.e_leak = e_leak
        return out

    # energy per (particle, slot) and component: true, then visible
    ax = _shower_axes(particles, act, entry_eta, entry_phi, e_avail, kind, params)
    prof = _Profile.start(ax)
    _em_showers(ax, prof, rng, params)
    _hadron_showers(ax, prof, rng, params)
    _muon_tracks(ax, prof, rng, params)
    _low_energy_deposits(ax, prof)
    e_leak[act] += _back_leakage(ax, prof)
    dead = _split_dead(ax, prof)
    em_vis, had_vis, mip_vis = _visible_energy(ax, prof, rng, params)

    # entries (particle, slot, component) -> spots -> cells
    spots = _expand_spots(ax, prof, em_vis, had_vis, mip_vis, dead, params)
    r = _spot_radius(ax, prof, spots, rng, params)
    cell = _spot_cells(geometry, info, ax, spots, r, rng)
    ok = _drop_lost_spots(spots, cell, dead)
    e_dead[act] = dead.sum(axis=1)

    ev_idx = np.asarray(particles.event, dtype=np.int64)[act][spots.particle[ok]]
    tr = np.asarray(particles.index, dtype=np.int64)[act][spots.particle[ok]]
    out = _aggregate(ev_idx, cell[ok], tr, spots.e_vis[ok], spots.e_true[ok], geometry.n_cells)
    out.e_dead, out.e_leak = e_dead, e_leak
    dt = time.perf_counter() - t_start
    log.debug("showers: %d particles, %d spots, %d deposits in %.3f s", n, len(spots), len(out), dt)
    return out


def _lookup(
    geometry: CaloGeometry, info: _GeoInfo, sampling: np.ndarray, eta: np.ndarray, phi: np.ndarray, axis_eta: np.ndarray
) -> np.ndarray:
    """Cell per spot: own sampling, then same-depth samplings, then the nearest covered eta; -1 if none."""
    cell = geometry.cell_index(sampling, eta, phi)
    miss = np.flatnonzero(cell < 0)
    for rank in range(3):
        if len(miss) == 0:
            return cell
        alt = np.array(
            [
                SAME_DEPTH.get(int(s), ())[rank] if len(SAME_DEPTH.get(int(s), ())) > rank else -1
                for s in range(N_SAMPLINGS)
            ]
        )[sampling[miss]]
        ok = alt >= 0
        if ok.any():
            c = geometry.cell_index(alt[ok], eta[miss[ok]], phi[miss[ok]])
            cell[miss[ok]] = c
        miss = np.flatnonzero(cell < 0)
    if len(miss):
        # clamp to the nearest eta where the sampling has cells (same side as the shower axis)
        s = sampling[miss]
        e_try = np.where(np.sign(eta[miss]) == np.sign(axis_eta[miss]), eta[miss], axis_eta[miss])
        near = _nearest_covered_eta(info, s, e_try)
        ok = np.isfinite(near) & (np.abs(near - e_try) < 0.25)
        if ok.any():
            cell[miss[ok]] = geometry.cell_index(s[ok], near[ok], phi[miss[ok]])
    return cell


def _aggregate(
    event: np.ndarray, cell: np.ndarray, truth: np.ndarray, e_vis: np.ndarray, e_true: np.ndarray, n_cells: int
) -> Deposits:
    """Sum spot energies per unique (event, cell, truth index), sorted by that key."""
    if len(event) == 0:
        return Deposits.empty()
    t_off = truth + 1  # truth -1 (pile-up) allowed
    n_t = int(t_off.max()) + 1
    key = (event * n_cells + cell) * n_t + t_off
    uniq, inv = unique(key, return_inverse=True)
    vis = np.bincount(inv, weights=e_vis, minlength=len(uniq))
    tru = np.bincount(inv, weights=e_true, minlength=len(uniq))
    t = uniq % n_t
    ec = uniq // n_t
    return Deposits(
        event=(ec // n_cells).astype(np.int64),
        cell=(ec % n_cells).astype(np.int64),
        truth_index=(t - 1).astype(np.int32),
        e_vis=vis.astype(np.float32),
        e_true=tru.astype(np.float32),
    )


def cell_energy_sparse(deposits: Deposits, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Summed visible (EM-scale) energy of the cells with a deposit: ``(node, e)``.

    ``node = event * n_cells + cell`` (int64, ascending, unique), ``e`` float32 GeV.
    """
    if len(deposits) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    key = deposits.event * n_cells + deposits.cell
    e_vis = deposits.e_vis
    if np.any(key[1:] < key[:-1]):  # Deposits from deposit() are already sorted by (event, cell)
        order = np.argsort(key, kind="stable")
        key, e_vis = key[order], e_vis[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sums = np.add.reduceat(e_vis.astype(np.float64), start)
    return key[start].astype(np.int64, copy=False), sums.astype(np.float32)


def cell_energy_matrix(deposits: Deposits, n_events: int, n_cells: int) -> np.ndarray:
    """Dense (n_events, n_cells) float32 matrix of summed visible (EM-scale) energy in GeV."""
    out = np.zeros(n_events * n_cells, dtype=np.float32)
    node, e = cell_energy_sparse(deposits, n_cells)
    out[node] = e
    return out.reshape(n_events, n_cells)


# ----------------------------------------------------------------------------------------------------------------
# single-particle studies
# ----------------------------------------------------------------------------------------------------------------


def single_particle_response(
    pdg: int,
    energies: np.ndarray | list[float],
    eta: float,
    n: int,
    geometry: CaloGeometry,
    rng: np.random.Generator,
    *,
    params: ShowerParams = ShowerParams(),
) -> dict[str, np.ndarray]:
    """Shower ``n`` particles of each energy at ``eta`` (straight lines, no B-field) and sum their deposits.

    Returns ``energy`` (n_E,), ``e_vis`` and ``e_true`` (n_E, n) summed over cells (GeV), ``e_vis_sampling`` and
    ``e_true_sampling`` (n_E, n, 24), and ``e_dead``, ``e_leak`` (n_E, n). Response = e_vis / energy.
    """
    energies = np.asarray(energies, dtype=np.float64)
    out = {k: np.zeros((len(energies), n)) for k in ("e_vis", "e_true", "e_dead", "e_leak")}
    out["e_vis_sampling"] = np.zeros((len(energies), n, N_SAMPLINGS))
    out["e_true_sampling"] = np.zeros((len(energies), n, N_SAMPLINGS))
    samp = np.asarray(geometry.sampling, dtype=np.int64)
    for i, e in enumerate(energies):
        parts = gun_particles(pdg, float(e), eta, n, rng)
        dep = deposit(parts, parts.eta, parts.phi, np.ones(n, bool), geometry, rng, params=params)
        s = samp[dep.cell]
        for name, col in (("e_vis", dep.e_vis), ("e_true", dep.e_true)):
            flat = np.bincount(dep.event * N_SAMPLINGS + s, weights=col, minlength=n * N_SAMPLINGS)
            out[f"{name}_sampling"][i] = flat.reshape(n, N_SAMPLINGS)
            out[name][i] = out[f"{name}_sampling"][i].sum(axis=1)
        out["e_dead"][i], out["e_leak"][i] = dep.e_dead, dep.e_leak
    out["energy"] = energies
    return out
