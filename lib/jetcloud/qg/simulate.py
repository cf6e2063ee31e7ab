"""Quark and gluon jets with Pythia 8: the E2E image set and the EnergyFlow-like particle-level set.

Two samples, each generated in parallel chunks with per-chunk seeds (identical output for the same seed,
whatever the number of workers or a Dask cluster), each chunk yielding exactly its quota of quark and of gluon
jets, shuffled together:

**E2E images** (:func:`simulate_images`, the CMS Open Data quark/gluon dataset of Andrews et al.,
docs/e2e-format.md):

* Pythia 8 QCD 2 -> 2 at sqrt(s) = 8 TeV (CMS 2012) with pT-hat 80-170 GeV (``QCD_Pt_80_170``), the Monash 2013
  tune with the MPI parameters of the CMS tune CUETP8M1 (a Pythia 8 stand-in for the Pythia 6 Z2* tune of the
  original), particles with c tau > 10 mm stable (as CMS generator records), beam spot sigma_z = 50 mm.
* *Two streams per chunk*: quark events from ``qq2qq``, ``qqbar2qqbarNew`` and ``gg2qqbar`` (new flavours
  u, d, s), gluon events from ``gg2gg`` and ``qqbar2gg``. ``qg2qg`` can never give two quarks or two gluons, so
  the selected events are the same as those of ``HardQCD:all`` with the original selection; only the rejected
  mixed events are not generated. Relative rates of the subprocesses inside a class are Pythia's.
* Jets: anti-kT R = 0.4 (``fastjet``) on all visible final-state particles (not neutrinos): particle-level jets
  with pT > 70 GeV and |eta| < 2.0. *Approximation*: the original used reconstructed CMS particle-flow jets,
  whose pT and mass have ~10% resolution; the meta columns pt and m0 here are the particle-level values.
* Labels (MLAnalyzer ``has_dijet``): the two outgoing partons of the hard process (Pythia status -23) are each
  matched to the nearest selected jet within Delta R < 0.4; both must match, to two different jets, and both must
  be light quarks (|pdgId| <= 3, label 1) or both gluons (label 0). The leading matched jet is kept.
* Pile-up: a Poisson(``pileup_mu`` = 20) number of minimum-bias collisions (8 TeV ``SoftQCD:inelastic``, same
  tune and beam spot) on the events of the *kept* jets only, from a library of ``pileup_library_events`` events
  generated once per chunk and reused with random phi rotations and eta reflections (:mod:`jetcloud.qg.pileup`).
  Jets are clustered and selected on the hard collision alone (*approximation*: CMS jets are reconstructed with
  pile-up, with charged-hadron subtraction and an offset correction).
* Images: :mod:`jetcloud.qg.detector` (seeded on the HCAL tower; jets whose seed is not image-able are dropped).
* File: :class:`jetcloud.qg.e2e.E2EWriter`; per class the first ``test_fraction`` of the jets (in chunk order)
  go to ``test_*``, the rest to ``train_*``, so both splits are balanced.

**Particle level** (:func:`simulate_particles`, EnergyFlow's Pythia 8 quark/gluon set, docs/e2e-format.md):

* Pythia 8 at 14 TeV, default (Monash 2013) tune, hadronisation and MPI on, no detector: gluon jets from
  q qbar -> Z g, quark jets from q g -> Z q, with Z -> nu nu; pT-hat 325-852.5 GeV (:data:`PT_HAT_FACTORS`:
  initial-state radiation lets 500-550 GeV jets come from pT-hat far below 500 GeV; this window keeps all but
  0.7% of the jets of a 300-7000 GeV reference, uniformly in pT, :mod:`jetcloud.qg.particle_level`).
  Quark events whose outgoing quark is c or b are vetoed before the shower (EnergyFlow's default set has u, d, s
  only; :func:`heavy_quark_veto`). Decays as EnergyFlow's (Pythia's defaults: everything with c tau0 < 1 m
  decays; :data:`PARTICLE_SETTINGS`), so only :data:`jetcloud.qg.energyflow.STABLE_PIDS` remain.
* Jets: anti-kT R = 0.4 on the visible final-state particles; the leading jet is kept when 500 < pT < 550 GeV and
  |y| < 1.7. Labels come from the process (quark 1, gluon 0), as in EnergyFlow.
* File: :func:`jetcloud.qg.energyflow.write_qg_npz` (``X`` (N, max multiplicity, 4) with (pT, y, phi, pid)).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetcloud.arrays import gather_ranges
from jetcloud.io.manifest import write_manifest
from jetcloud.kinematics import delta_phi, delta_r
from jetcloud.parallel import default_workers, map_chunks
from jetcloud.qg import detector as cms
from jetcloud.qg import pileup
from jetcloud.qg.e2e import E2EWriter, check_output
from jetcloud.qg.energyflow import write_qg_npz
from jetcloud.sim.particles import Particles
from jetcloud.sim.pythia import MAX_PYTHIA_SEED, chunk_seed, final_state, make_pythia

log = logging.getLogger(__name__)

QUARK, GLUON = 1, 0
#: CMS-like Pythia 8 settings: Monash 2013 + CUETP8M1 MPI (CMS, Eur. Phys. J. C 76 (2016) 155), CMS beam spot.
CMS_TUNE: tuple[str, ...] = (
    "Tune:pp = 14",
    "MultipartonInteractions:pT0Ref = 2.4024",
    "MultipartonInteractions:ecmPow = 0.25208",
    "MultipartonInteractions:expPow = 1.6",
    "Beams:sigmaVertexZ = 50.",
)
#: EnergyFlow used Pythia 8.226 defaults: Monash 2013.
DEFAULT_TUNE: tuple[str, ...] = ("Tune:pp = 14",)
DIJET_PROCESSES: dict[int, tuple[str, ...]] = {
    QUARK: ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:gg2qqbar = on", "HardQCD:nQuarkNew = 3"),
    GLUON: ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
}
ZJET_PROCESSES: dict[int, tuple[str, ...]] = {
    QUARK: ("WeakBosonAndParton:qqbar2gmZg = off", "WeakBosonAndParton:qg2gmZq = on"),
    GLUON: ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = off"),
}
NEUTRINOS = (12, 14, 16)
_STREAM = {"images": 1, "particles": 2}
#: Largest ``nextBatch`` request: the awkward records of 250 events take ~100 MB at 14 TeV (bounded memory).
MAX_BATCH_EVENTS = 250


class NoJetsError(RuntimeError):
    """Raised when a generator stream yields no selected jet at all after the configured number of events."""


# ---------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------


def _check_range(name: str, lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or hi <= lo:
        raise ValueError(f"{name} must be a range 0 <= low < high, got ({lo}, {hi})")


@dataclass(frozen=True)
class ImageConfig:
    """The E2E image sample (defaults: the original's selection; module docstring)."""

    n_quark: int = 100
    n_gluon: int = 100
    seed: int = 1
    pt_hat: tuple[float, float] = (80.0, 170.0)  # GeV
    sqrt_s: float = 8000.0  # GeV
    jet_r: float = 0.4
    jet_pt_min: float = 70.0  # GeV
    jet_eta_max: float = 2.0
    match_dr: float = 0.4
    test_fraction: float = 0.1
    chunk_jets: int = 250  # jets per class per chunk
    give_up_after: int = 2000  # events of one stream without any selected jet -> NoJetsError
    detector: cms.CMSDetector = field(default_factory=cms.CMSDetector)
    pileup_mu: float = 20.0  # mean in-time pile-up collisions per kept jet's event (CMS 2012); 0: none
    pileup_library_events: int = 1000  # minimum-bias events generated per chunk and reused (jetcloud.qg.pileup)
    pileup_sigma_z_mm: float = 50.0  # beam spot length: z spread of the pile-up vertices

    def __post_init__(self) -> None:
        object.__setattr__(self, "pt_hat", tuple(float(x) for x in self.pt_hat))
        _common_checks(self)
        _check_range("pt_hat", *self.pt_hat)
        if self.pt_hat[0] >= self.sqrt_s / 2:
            raise ValueError(
                f"pt_hat min {self.pt_hat[0]} GeV is beyond the kinematic limit sqrt_s/2 = {self.sqrt_s / 2}"
            )
        if self.jet_pt_min < 0 or self.jet_eta_max <= 0 or self.match_dr <= 0:
            raise ValueError("jet_pt_min must be >= 0, jet_eta_max and match_dr > 0")
        if self.jet_pt_min >= self.sqrt_s / 2:
            raise ValueError(f"jet_pt_min {self.jet_pt_min} GeV is beyond the kinematic limit sqrt_s/2")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if not (math.isfinite(self.pileup_mu) and self.pileup_mu >= 0):
            raise ValueError(f"pileup_mu must be finite and >= 0, got {self.pileup_mu}")
        if isinstance(self.pileup_library_events, bool) or not isinstance(self.pileup_library_events, int):
            raise ValueError(f"pileup_library_events must be an integer, got {self.pileup_library_events!r}")
        if self.pileup_library_events < 1 or self.pileup_sigma_z_mm < 0:
            raise ValueError("pileup_library_events must be >= 1 and pileup_sigma_z_mm >= 0")

    def minbias_settings(self) -> tuple[str, ...]:
        """Pythia settings (on top of ``SoftQCD:inelastic``) of the pile-up library: same energy, tune, beam spot."""
        return (f"Beams:eCM = {self.sqrt_s}", *CMS_TUNE)

    def settings(self, label: int) -> tuple[str, ...]:
        """Pythia settings of the quark (``label=1``) or gluon (0) stream."""
        lo, hi = self.pt_hat
        return (
            f"Beams:eCM = {self.sqrt_s}",
            *CMS_TUNE,
            "HardQCD:all = off",
            *DIJET_PROCESSES[label],
            f"PhaseSpace:pTHatMin = {lo}",
            f"PhaseSpace:pTHatMax = {hi}",
        )


#: Pythia settings of the particle-level set on top of :data:`jetcloud.sim.pythia.BASE_SETTINGS`: Pythia's default
#: decays (everything with c tau0 < 1 m decays, as in EnergyFlow's set: only
#: :data:`jetcloud.qg.energyflow.STABLE_PIDS` and neutrinos remain; the image set keeps the 10 mm rule), and no
#: event-record self-check (``Check:event``: a consistency test of each event, no physics; ~5% of Pythia's time).
PARTICLE_SETTINGS: tuple[str, ...] = ("ParticleDecays:limitTau0 = off", "Check:event = off")
#: Default pT-hat window of the particle-level set, as factors of the jet pT window's (lower, upper) bound:
#: (325, 852.5) GeV for 500-550 GeV jets, chosen with :func:`jetcloud.qg.particle_level.pt_hat_window_study`
#: (measurement and numbers in that module's docstring).
PT_HAT_FACTORS: tuple[float, float] = (0.65, 1.55)


@dataclass(frozen=True)
class ParticleConfig:
    """The particle-level sample (defaults: EnergyFlow's quark/gluon set; module docstring)."""

    n_quark: int = 100
    n_gluon: int = 100
    seed: int = 1
    sqrt_s: float = 14000.0  # GeV
    jet_pt: tuple[float, float] = (500.0, 550.0)  # GeV
    jet_y_max: float = 1.7
    pt_hat_min: float | None = None  # GeV; None: PT_HAT_FACTORS[0] x the lower jet pT bound
    pt_hat_max: float | None = None  # GeV; None: PT_HAT_FACTORS[1] x the upper jet pT bound
    jet_r: float = 0.4
    chunk_jets: int = 500
    give_up_after: int = 2000

    def __post_init__(self) -> None:
        object.__setattr__(self, "jet_pt", tuple(float(x) for x in self.jet_pt))
        _common_checks(self)
        _check_range("jet_pt", *self.jet_pt)
        if self.jet_pt[0] >= self.sqrt_s / 2:
            raise ValueError(f"jet pT {self.jet_pt[0]} GeV is beyond the kinematic limit sqrt_s/2 = {self.sqrt_s / 2}")
        if self.jet_y_max <= 0:
            raise ValueError(f"jet_y_max must be > 0, got {self.jet_y_max}")
        lo, hi = self.pt_hat
        if not 0 <= lo < min(hi, self.sqrt_s / 2):
            raise ValueError(f"pT-hat window must satisfy 0 <= min < max and min < sqrt_s/2, got ({lo}, {hi}) GeV")

    @property
    def pt_hat(self) -> tuple[float, float]:
        """pT-hat window (GeV): the configured bounds, or the defaults from :data:`PT_HAT_FACTORS`."""
        lo = PT_HAT_FACTORS[0] * self.jet_pt[0] if self.pt_hat_min is None else float(self.pt_hat_min)
        hi = PT_HAT_FACTORS[1] * self.jet_pt[1] if self.pt_hat_max is None else float(self.pt_hat_max)
        return lo, hi

    def settings(self, label: int) -> tuple[str, ...]:
        """Pythia settings of the quark (``label=1``) or gluon (0) stream."""
        lo, hi = self.pt_hat
        return (
            f"Beams:eCM = {self.sqrt_s}",
            *DEFAULT_TUNE,
            *PARTICLE_SETTINGS,
            "WeakZ0:gmZmode = 2",
            *ZJET_PROCESSES[label],
            f"PhaseSpace:pTHatMin = {lo}",
            f"PhaseSpace:pTHatMax = {hi}",
        )


def _common_checks(cfg: ImageConfig | ParticleConfig) -> None:
    for name in ("n_quark", "n_gluon", "chunk_jets", "give_up_after", "seed"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if cfg.n_quark + cfg.n_gluon == 0:
        raise ValueError("n_quark + n_gluon must be > 0")
    if cfg.chunk_jets == 0 or cfg.give_up_after == 0:
        raise ValueError("chunk_jets and give_up_after must be > 0")
    if not math.isfinite(cfg.sqrt_s) or cfg.sqrt_s <= 0:
        raise ValueError(f"sqrt_s must be > 0 GeV, got {cfg.sqrt_s}")
    if not 0 < cfg.jet_r <= 1.5:
        raise ValueError(f"jet_r must be in (0, 1.5], got {cfg.jet_r}")


def chunk_quotas(n_quark: int, n_gluon: int, chunk_jets: int) -> list[tuple[int, int]]:
    """(quark, gluon) jets of every chunk: ``chunk_jets`` of each class until the totals are reached."""
    n_chunks = max(math.ceil(max(n_quark, n_gluon) / chunk_jets), 1)
    return [
        (min(chunk_jets, max(n_quark - i * chunk_jets, 0)), min(chunk_jets, max(n_gluon - i * chunk_jets, 0)))
        for i in range(n_chunks)
    ]


# ---------------------------------------------------------------------------------------------------------------
# jets, partons, labels
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Jets:
    """Anti-kT jets of a chunk of events, sorted by event, then by decreasing pT.

    ``constituents`` are rows of the input :class:`Particles` table, jet ``i`` owning
    ``constituents[offsets[i]:offsets[i + 1]]``.
    """

    event: np.ndarray  # int64
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    y: np.ndarray
    m: np.ndarray
    offsets: np.ndarray  # int64 (n + 1)
    constituents: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.event)

    @property
    def n_constituents(self) -> np.ndarray:
        return np.diff(self.offsets)


_BANNER_DONE = False


def _silence_fastjet_banner() -> None:
    """Print FastJet's banner once per process into /dev/null (it would otherwise fill notebook cells once per
    worker). FastJet: M. Cacciari, G. P. Salam, G. Soyez, Eur. Phys. J. C 72 (2012) 1896."""
    global _BANNER_DONE
    if _BANNER_DONE:
        return
    import os
    import sys

    import fastjet._swig as swig

    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        swig.ClusterSequence.print_banner()  # the banner's "first time" flag is shared by the awkward interface
    finally:
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)
    _BANNER_DONE = True


def cluster_jets(particles: Particles, n_events: int, r: float = 0.4, pt_min: float = 20.0) -> Jets:
    """Anti-kT jets (``fastjet``) of the visible particles (no neutrinos) of every event; pT > ``pt_min``."""
    import fastjet

    _silence_fastjet_banner()

    visible = np.flatnonzero(~np.isin(np.abs(particles.pdg), NEUTRINOS))
    p = particles.select(visible)
    counts = np.bincount(p.event, minlength=n_events)
    px, py, pz = p.pt * np.cos(p.phi), p.pt * np.sin(p.phi), p.pt * np.sinh(p.eta)
    arr = ak.zip(
        {k: ak.unflatten(v, counts) for k, v in (("px", px), ("py", py), ("pz", pz), ("E", p.e))},
        with_name="Momentum4D",
    )
    seq = fastjet.ClusterSequence(arr, fastjet.JetDefinition(fastjet.antikt_algorithm, float(r)))
    jets = seq.inclusive_jets(min_pt=float(pt_min))
    cidx = seq.constituent_index(min_pt=float(pt_min))
    n_jet = ak.to_numpy(ak.num(jets.px, axis=1)).astype(np.int64)
    jpx, jpy, jpz, je = (np.asarray(ak.to_numpy(ak.flatten(jets[k])), np.float64) for k in ("px", "py", "pz", "E"))
    event = np.repeat(np.arange(n_events, dtype=np.int64), n_jet)
    pt = np.hypot(jpx, jpy)
    order = np.lexsort((-pt, event))
    n_const = ak.to_numpy(ak.flatten(ak.num(cidx, axis=2))).astype(np.int64)
    local = ak.to_numpy(ak.flatten(cidx, axis=None)).astype(np.int64)
    first_particle = np.concatenate([[0], np.cumsum(counts)])[:-1]
    global_idx = visible[local + np.repeat(np.repeat(first_particle, n_jet), n_const)]
    starts = np.concatenate([[0], np.cumsum(n_const)])[:-1]
    new_counts = n_const[order]
    members = global_idx[gather_ranges(starts[order], new_counts)]
    jpx, jpy, jpz, je, pt = jpx[order], jpy[order], jpz[order], je[order], pt[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.divide(jpz, pt, out=np.zeros_like(pt), where=pt > 0))
        y = 0.5 * np.log((je + jpz) / np.maximum(je - jpz, 1e-12))
    return Jets(
        event=event[order],
        pt=pt,
        eta=eta,
        phi=np.arctan2(jpy, jpx),
        y=y,
        m=np.sqrt(np.maximum(je**2 - jpx**2 - jpy**2 - jpz**2, 0.0)),
        offsets=np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64),
        constituents=members,
    )


def hard_partons(batch: ak.Array) -> dict[str, np.ndarray]:
    """Outgoing partons of the hard process (Pythia status -23) as flat columns with their ``event``."""
    prt = batch.prt
    hard = prt[(prt.status == -23) & ((np.abs(prt.id) <= 6) | (prt.id == 21))]
    n = ak.to_numpy(ak.num(hard.id, axis=1)).astype(np.int64)
    px, py, pz = (np.asarray(ak.to_numpy(ak.flatten(hard.p[c])), np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pt), where=pt > 0))
    return {
        "event": np.repeat(np.arange(len(n), dtype=np.int64), n),
        "pdg": ak.to_numpy(ak.flatten(hard.id)).astype(np.int64),
        "pt": pt,
        "eta": eta,
        "phi": np.arctan2(py, px),
    }


def parton_label(pdg: np.ndarray) -> np.ndarray:
    """1 for light quarks (u, d, s and antiquarks), 0 for gluons, -1 otherwise (c, b, t, ...)."""
    a = np.abs(np.asarray(pdg))
    return np.where((a >= 1) & (a <= 3), QUARK, np.where(a == 21, GLUON, -1)).astype(np.int64)


def match_dijets(
    jets: Jets, partons: dict[str, np.ndarray], n_events: int, *, pt_min: float, eta_max: float, dr_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """The original's dijet matching; returns (jet row, label) of the kept (leading matched) jet per good event.

    Selected jets have pT > ``pt_min`` and |eta| < ``eta_max``. Events need exactly two hard partons, each
    matched to its nearest selected jet within ``dr_max``, the two jets distinct, and both partons light quarks
    or both gluons (:func:`parton_label`). Results are sorted by event.
    """
    sel = np.flatnonzero((jets.pt > pt_min) & (np.abs(jets.eta) < eta_max))
    n_part = np.bincount(partons["event"], minlength=n_events)
    p_ok = n_part[partons["event"]] == 2
    p_idx = np.flatnonzero(p_ok)
    if len(sel) == 0 or len(p_idx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # all (parton, selected jet of the same event) pairs
    j_event = jets.event[sel]
    j_start = np.searchsorted(j_event, np.arange(n_events), side="left")
    j_count = np.searchsorted(j_event, np.arange(n_events), side="right") - j_start
    pe = partons["event"][p_idx]
    cnt = j_count[pe]
    pair_p = np.repeat(p_idx, cnt)
    pair_j = sel[gather_ranges(j_start[pe], cnt)]
    dr = delta_r(jets.eta[pair_j], jets.phi[pair_j], partons["eta"][pair_p], partons["phi"][pair_p])
    order = np.lexsort((dr, pair_p))  # per parton, nearest jet first
    pair_p, pair_j, dr = pair_p[order], pair_j[order], dr[order]
    first = np.r_[True, pair_p[1:] != pair_p[:-1]]
    best_j = np.full(len(partons["event"]), -1, np.int64)
    best_dr = np.full(len(partons["event"]), np.inf)
    best_j[pair_p[first]] = pair_j[first]
    best_dr[pair_p[first]] = dr[first]
    # the two partons of each event (they are consecutive in the record)
    two = p_idx.reshape(-1, 2) if len(p_idx) % 2 == 0 else None
    if two is None:  # pragma: no cover - events with exactly two partons contribute pairs
        raise RuntimeError("unexpected parton bookkeeping")
    j0, j1 = best_j[two[:, 0]], best_j[two[:, 1]]
    ok = (best_dr[two[:, 0]] < dr_max) & (best_dr[two[:, 1]] < dr_max) & (j0 != j1) & (j0 >= 0) & (j1 >= 0)
    lab0, lab1 = parton_label(partons["pdg"][two[:, 0]]), parton_label(partons["pdg"][two[:, 1]])
    ok &= (lab0 == lab1) & (lab0 >= 0)
    kept = np.minimum(j0, j1)[ok]  # rows are sorted by decreasing pT within an event: lower row = leading
    return kept, lab0[ok]


# ---------------------------------------------------------------------------------------------------------------
# chunk workers
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    """One chunk: its index and its quota of quark and gluon jets."""

    config: ImageConfig | ParticleConfig
    chunk: int
    n_quark: int
    n_gluon: int


@dataclass
class ChunkResult:
    """Jets of one chunk (quarks and gluons shuffled together) and its bookkeeping."""

    chunk: int
    meta: dict[str, np.ndarray]  # per jet: label, pt, m0, eta, phi, y, n_constituents
    images: cms.SparseImages | None = None  # image set
    counts: np.ndarray | None = None  # particle set: particles per jet
    particles: np.ndarray | None = None  # particle set: (sum(counts), 4) float32 rows (pt, y, phi, pid)
    n_events: dict[int, int] = field(default_factory=dict)  # per label
    seconds: dict[str, float] = field(default_factory=dict)  # pythia, jets, detector, total


def _stream(
    task: ChunkTask, label: int, quota: int, process, stream: str, timers: dict[str, float]
) -> tuple[list[Any], int]:
    """Generate events of one class until ``quota`` jets are selected; returns the pieces and the event count."""
    cfg = task.config
    seed = chunk_seed(cfg.seed, (_STREAM[stream] * 1_000_000 + task.chunk) * 2 + label)
    rng = np.random.default_rng([cfg.seed, _STREAM[stream], task.chunk, label])
    pieces, got, n_events = [], 0, 0
    if quota == 0:
        return pieces, 0
    t0 = time.perf_counter()
    hooks = heavy_quark_veto() if stream == "particles" and label == QUARK else None
    pythia = make_pythia("JZ2" if stream == "images" else "zjet", seed, cfg.settings(label), hooks=hooks)
    timers["pythia"] += time.perf_counter() - t0
    eff = None
    while got < quota:
        need = quota - got
        if eff and stream == "particles":  # output independent of batch sizes: ask for the expected need only
            n = min(max(math.ceil(need / eff), 10), MAX_BATCH_EVENTS)
        else:
            n = min(max(int(1.15 * need / eff) + 20, 50) if eff else max(min(2 * need, 500), 50), MAX_BATCH_EVENTS)
        t0 = time.perf_counter()
        batch = pythia.nextBatch(n)
        timers["pythia"] += time.perf_counter() - t0
        if len(batch) != n:
            raise RuntimeError(f"Pythia returned {len(batch)} of {n} events ({stream}, label {label})")
        piece = process(batch, label, rng, need, timers)
        n_events += n
        got += piece["n"]
        if piece["n"]:
            pieces.append(piece)
        eff = max(got / n_events, 1e-3) if got else None
        if got == 0 and n_events >= cfg.give_up_after:
            kind = "quark" if label == QUARK else "gluon"
            raise NoJetsError(
                f"no {kind} jet passed the selection in {n_events} events ({stream}): check the pT ranges "
                f"({_describe(cfg)})"
            )
    return pieces, n_events


def _describe(cfg: ImageConfig | ParticleConfig) -> str:
    if isinstance(cfg, ImageConfig):
        return (
            f"pT-hat {cfg.pt_hat[0]:g}-{cfg.pt_hat[1]:g} GeV, jet pT > {cfg.jet_pt_min:g} GeV, "
            f"|eta| < {cfg.jet_eta_max:g}, sqrt(s) = {cfg.sqrt_s:g} GeV"
        )
    return (
        f"pT-hat {cfg.pt_hat[0]:g}-{cfg.pt_hat[1]:g} GeV, jet pT {cfg.jet_pt[0]:g}-{cfg.jet_pt[1]:g} GeV, "
        f"|y| < {cfg.jet_y_max:g}, sqrt(s) = {cfg.sqrt_s:g} GeV"
    )


def _near_jet(p: Particles, jet_eta: np.ndarray, jet_phi: np.ndarray) -> Particles:
    """Particles (``event`` = jet row) near their jet: |delta eta| < 1.6 and |delta phi| < 1.6, soft charged
    particles (pT < 3 GeV) at any phi (they bend into the window)."""
    soft_charged = (p.charge != 0) & (p.pt < 3.0)
    near = (np.abs(p.eta - jet_eta[p.event]) < 1.6) & (
        (np.abs(delta_phi(p.phi, jet_phi[p.event])) < 1.6) | soft_charged
    )
    return p.select(near)


def _pileup_particles(
    cfg: ImageConfig, state: dict[str, Any], n_jets: int, rng: np.random.Generator, timers: dict[str, float]
) -> Particles:
    """Pile-up for ``n_jets`` kept jets (``event`` = jet row); the chunk's library is made on first use."""
    t0 = time.perf_counter()
    if "library" not in state:  # one library per chunk, seeded from the first stream that needs it
        seed = int(rng.integers(1, MAX_PYTHIA_SEED + 1))
        state["library"] = pileup.generate_library(cfg.pileup_library_events, seed, cfg.minbias_settings())
    pu = pileup.overlay(state["library"], n_jets, cfg.pileup_mu, rng, cfg.pileup_sigma_z_mm)
    timers["pileup"] = timers.get("pileup", 0.0) + time.perf_counter() - t0
    return pu.particles


def _image_batch(cfg: ImageConfig):
    state: dict[str, Any] = {}

    def process(batch: ak.Array, label: int, rng: np.random.Generator, need: int, timers: dict[str, float]) -> dict:
        t0 = time.perf_counter()
        n_ev = len(batch)
        particles = final_state(batch)
        jets = cluster_jets(particles, n_ev, cfg.jet_r, pt_min=min(cfg.jet_pt_min, 20.0))
        kept, labels = match_dijets(
            jets, hard_partons(batch), n_ev, pt_min=cfg.jet_pt_min, eta_max=cfg.jet_eta_max, dr_max=cfg.match_dr
        )
        keep = labels == label  # always true for the class streams; guards against other settings
        kept = kept[keep]
        timers["jets"] += time.perf_counter() - t0
        if len(kept) == 0:
            return {"n": 0}
        ev = jets.event[kept]
        j_eta, j_phi = jets.eta[kept], jets.phi[kept]
        parts = []
        if cfg.pileup_mu > 0:  # overlaid on the kept jets' events only
            parts.append(_near_jet(_pileup_particles(cfg, state, len(ev), rng, timers), j_eta, j_phi))
        t0 = time.perf_counter()
        lookup = np.full(n_ev, -1, np.int64)
        lookup[ev] = np.arange(len(ev))
        sub = particles.select(lookup[particles.event] >= 0)
        sub.event = lookup[sub.event]
        sub = Particles.concatenate([_near_jet(sub, j_eta, j_phi), *parts])
        sub = sub.select(np.argsort(sub.event, kind="stable"))
        response = cms.simulate_detector(sub, rng, cfg.detector)
        local = np.arange(len(ev))
        seed_eta, seed_phi, ok = cms.find_seeds(response.hcal, local, j_eta, j_phi, len(ev))
        images = cms.jet_images(response, local[ok], seed_eta[ok], seed_phi[ok], len(ev), rng, cfg.detector)
        rows = kept[ok][:need]
        images = images.select(np.arange(len(rows)))
        timers["detector"] += time.perf_counter() - t0
        return {
            "n": len(rows),
            "images": images,
            "label": np.full(len(rows), label, np.int64),
            "pt": jets.pt[rows],
            "m0": jets.m[rows],
            "eta": jets.eta[rows],
            "phi": jets.phi[rows],
            "y": jets.y[rows],
            "n_constituents": jets.n_constituents[rows],
        }

    return process


_HOOKS_CLASS: list[type] = []


def heavy_quark_veto():
    """A ``pythia8mc.UserHooks`` that vetoes, at process level (before showers and hadronisation), events whose
    outgoing hard parton (status 23) is a c or b quark; it counts them in ``n_vetoed``.

    The quark stream drops those events anyway (light quarks only, as EnergyFlow); vetoing them before the parton
    level saves their generation and leaves the accepted events unchanged.
    """
    if not _HOOKS_CLASS:
        import pythia8mc

        class HeavyQuarkVeto(pythia8mc.UserHooks):
            def __init__(self) -> None:
                super().__init__()
                self.n_vetoed = 0

            def canVetoProcessLevel(self) -> bool:  # noqa: N802 - Pythia's name
                return True

            def doVetoProcessLevel(self, process) -> bool:  # noqa: N802 - Pythia's name
                for i in range(process.size()):
                    if process[i].status() == 23 and process[i].idAbs() in (4, 5):
                        self.n_vetoed += 1
                        return True
                return False

        _HOOKS_CLASS.append(HeavyQuarkVeto)
    return _HOOKS_CLASS[0]()


def select_leading_jets(
    batch: ak.Array, cfg: ParticleConfig, label: int, timers: dict[str, float]
) -> tuple[Particles, Jets, np.ndarray, np.ndarray]:
    """Cluster a ``nextBatch`` result and apply the particle-level selection.

    Returns the final-state particles, the jets, per event the row of its leading jet (-1: none above
    half the lower jet pT bound) and whether the event passes: leading jet inside ``cfg.jet_pt`` and
    ``|y| < cfg.jet_y_max``, and for the quark stream a light (u, d, s) outgoing quark. Adds the clustering
    time to ``timers["jets"]`` and the rest to ``timers["select"]``.
    """
    t0 = time.perf_counter()
    n_ev = len(batch)
    particles = final_state(batch)
    jets = cluster_jets(particles, n_ev, cfg.jet_r, pt_min=0.5 * cfg.jet_pt[0])
    t1 = time.perf_counter()
    timers["jets"] = timers.get("jets", 0.0) + t1 - t0
    lead = np.full(n_ev, -1, np.int64)
    first = np.flatnonzero(np.r_[True, jets.event[1:] != jets.event[:-1]]) if len(jets) else np.zeros(0, np.int64)
    lead[jets.event[first]] = first
    has = lead >= 0
    pt, y = np.zeros(n_ev), np.full(n_ev, np.inf)
    pt[has], y[has] = jets.pt[lead[has]], jets.y[lead[has]]
    ok = (pt > cfg.jet_pt[0]) & (pt < cfg.jet_pt[1]) & (np.abs(y) < cfg.jet_y_max)
    if label == QUARK:  # light quarks only: the outgoing parton of q g -> Z q (c, b are vetoed before this)
        partons = hard_partons(batch)
        flavour = np.full(n_ev, -1, np.int64)
        flavour[partons["event"]] = parton_label(partons["pdg"])
        ok &= flavour == QUARK
    timers["select"] = timers.get("select", 0.0) + time.perf_counter() - t1
    return particles, jets, lead, ok


def _particle_batch(cfg: ParticleConfig):
    def process(batch: ak.Array, label: int, rng: np.random.Generator, need: int, timers: dict[str, float]) -> dict:
        particles, jets, lead, ok = select_leading_jets(batch, cfg, label, timers)
        rows = lead[ok][:need]
        if len(rows) == 0:
            return {"n": 0}
        t0 = time.perf_counter()
        cnt = jets.n_constituents[rows]
        idx = jets.constituents[gather_ranges(jets.offsets[rows], cnt)]
        owner = np.repeat(np.arange(len(rows)), cnt)
        pt = particles.pt[idx]
        pz = pt * np.sinh(particles.eta[idx])
        e = particles.e[idx]
        y = 0.5 * np.log((e + pz) / np.maximum(e - pz, 1e-12))
        jet_phi = np.mod(jets.phi[rows], 2 * np.pi)
        phi = jet_phi[owner] + delta_phi(particles.phi[idx], jet_phi[owner])
        order = np.lexsort((-pt, owner))  # by jet, then decreasing pT
        flat = np.stack([pt, y, phi, particles.pdg[idx].astype(np.float64)], axis=1)[order]
        out = {
            "n": len(rows),
            "counts": cnt,
            "particles": flat.astype(np.float32),
            "label": np.full(len(rows), label, np.int64),
            "pt": jets.pt[rows],
            "m0": jets.m[rows],
            "eta": jets.eta[rows],
            "phi": jets.phi[rows],
            "y": jets.y[rows],
            "n_constituents": cnt,
        }
        timers["select"] += time.perf_counter() - t0
        return out

    return process


_META_KEYS = ("label", "pt", "m0", "eta", "phi", "y", "n_constituents")


def _run_chunk(task: ChunkTask, stream: str) -> ChunkResult:
    t_start = time.perf_counter()
    timers = {"pythia": 0.0, "jets": 0.0, "detector": 0.0}
    process = _image_batch(task.config) if stream == "images" else _particle_batch(task.config)
    pieces, n_events = [], {}
    for label, quota in ((QUARK, task.n_quark), (GLUON, task.n_gluon)):
        p, n_events[label] = _stream(task, label, quota, process, stream, timers)
        pieces += p
    rng = np.random.default_rng([task.config.seed, _STREAM[stream], task.chunk, 7])
    n = sum(p["n"] for p in pieces)
    perm = rng.permutation(n)  # quarks and gluons interleaved
    meta = {k: np.concatenate([p[k] for p in pieces])[perm] if pieces else np.zeros(0) for k in _META_KEYS}
    result = ChunkResult(task.chunk, meta, n_events=n_events)
    if stream == "images":
        result.images = cms.SparseImages.concatenate([p["images"] for p in pieces]).select(perm)
    else:
        counts = np.concatenate([p["counts"] for p in pieces])
        flat = np.concatenate([p["particles"] for p in pieces])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        result.counts = counts[perm]
        result.particles = flat[gather_ranges(offsets[:-1][perm], counts[perm])]
    timers["total"] = time.perf_counter() - t_start
    result.seconds = timers
    return result


def image_chunk(task: ChunkTask) -> ChunkResult:
    """Simulate one chunk of the image set (picklable entry point for :func:`jetcloud.parallel.map_chunks`)."""
    return _run_chunk(task, "images")


def particle_chunk(task: ChunkTask) -> ChunkResult:
    """Simulate one chunk of the particle-level set (picklable entry point)."""
    return _run_chunk(task, "particles")


# ---------------------------------------------------------------------------------------------------------------
# whole samples
# ---------------------------------------------------------------------------------------------------------------


def _batches(tasks: list[ChunkTask], size: int) -> list[list[ChunkTask]]:
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def _config_dict(cfg: ImageConfig | ParticleConfig) -> dict[str, Any]:
    d = asdict(cfg)
    if isinstance(cfg, ParticleConfig):
        d["pt_hat_min"], d["pt_hat_max"] = cfg.pt_hat
    return d


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="chunk")


def simulate_images(
    config: ImageConfig,
    path: str | Path,
    *,
    workers: int | None = None,
    scheduler: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    n_examples: int = 4,
) -> dict[str, Any]:
    """Simulate the E2E image set and write it to ``path`` (HDF5, atomically, with a manifest).

    Chunks run in parallel (:func:`jetcloud.parallel.map_chunks`: local processes or a Dask ``scheduler``), a
    few at a time, and their jets are written as they arrive, so memory stays bounded by a few chunks.
    Returns a summary: per-jet columns (``label``, ``pt``, ``m0``, ``eta``, ``phi``, ``y``, ``n_constituents``,
    ``n_hits`` (n, 3), ``split`` 0 train / 1 test) in file order (train, then test), the mean image per class
    (``mean_image`` {label: (125, 125, 3)}), ``examples`` {label: (k, 125, 125, 3)}, event counts and timings.
    """
    t_start = time.perf_counter()
    path = check_output(path, overwrite)
    quotas = chunk_quotas(config.n_quark, config.n_gluon, config.chunk_jets)
    tasks = [ChunkTask(config, i, q, g) for i, (q, g) in enumerate(quotas)]
    n_test = {QUARK: round(config.test_fraction * config.n_quark), GLUON: round(config.test_fraction * config.n_gluon)}
    n_total = config.n_quark + config.n_gluon
    n_test_all = n_test[QUARK] + n_test[GLUON]
    workers = default_workers() if workers is None else max(1, int(workers))
    tally = _ImageTally()
    with E2EWriter(path, n_total - n_test_all, n_test_all, overwrite=overwrite) as writer:
        with _progress(len(tasks), "image chunks", progress) as bar:
            for batch in _batches(tasks, 2 * workers if not scheduler else 4 * max(workers, 8)):
                for res in map_chunks(image_chunk, batch, workers=workers, scheduler=scheduler, progress=False):
                    t0 = time.perf_counter()
                    label = res.meta["label"].astype(np.int64)
                    is_test = _test_jets(label, tally.filled, n_test)
                    hits = res.images.hit_counts()
                    _write_image_splits(writer, res, label, is_test)
                    _tally_chunk(tally, res, label, is_test, hits, n_examples)
                    tally.seconds["write"] += time.perf_counter() - t0
                    bar.update()
    wall = time.perf_counter() - t_start
    return _image_summary(config, path, tally, n_total - n_test_all, n_test_all, len(tasks), wall)


@dataclass
class _ImageTally:
    """What :func:`simulate_images` accumulates over the chunks, in the order they arrive."""

    filled: dict[int, int] = field(default_factory=lambda: {QUARK: 0, GLUON: 0})  # jets per class so far
    columns: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in (*_META_KEYS, "n_hits", "split")}
    )
    sums: dict[int, np.ndarray] = field(
        default_factory=lambda: {QUARK: np.zeros(cms.IMAGE_SIZE**2 * 3), GLUON: np.zeros(cms.IMAGE_SIZE**2 * 3)}
    )
    examples: dict[int, list[np.ndarray]] = field(default_factory=lambda: {QUARK: [], GLUON: []})
    n_events: dict[int, int] = field(default_factory=lambda: {QUARK: 0, GLUON: 0})
    seconds: dict[str, float] = field(
        default_factory=lambda: {
            "pythia": 0.0,
            "jets": 0.0,
            "detector": 0.0,
            "pileup": 0.0,
            "chunks": 0.0,
            "write": 0.0,
        }
    )


def _test_jets(label: np.ndarray, filled: dict[int, int], n_test: dict[int, int]) -> np.ndarray:
    """Whether each jet goes to the test split (the first ``n_test`` of its class); advances ``filled``."""
    rank = np.zeros(len(label), np.int64)  # position of each jet within its class so far
    for c in (QUARK, GLUON):
        m = label == c
        rank[m] = filled[c] + np.arange(m.sum())
        filled[c] += int(m.sum())
    return rank < np.where(label == QUARK, n_test[QUARK], n_test[GLUON])


def _write_image_splits(writer: E2EWriter, res: ChunkResult, label: np.ndarray, is_test: np.ndarray) -> None:
    """Append a chunk's test jets, then its training jets, to the file in blocks of 256 dense images."""
    for split, sel in (("test", np.flatnonzero(is_test)), ("train", np.flatnonzero(~is_test))):
        if len(sel) == 0:
            continue
        imgs = res.images.select(sel)
        meta = np.stack([res.meta["pt"][sel], res.meta["m0"][sel], label[sel]], axis=1)
        for start in range(0, len(sel), 256):
            stop = min(start + 256, len(sel))
            writer.append(split, imgs.dense(start, stop), meta[start:stop])


def _tally_chunk(
    tally: _ImageTally, res: ChunkResult, label: np.ndarray, is_test: np.ndarray, hits: np.ndarray, n_examples: int
) -> None:
    """Add a chunk to the per-class image sums and examples, the per-jet columns, event counts and timings."""
    for c in (QUARK, GLUON):
        m = label == c
        if m.any():
            img = res.images.select(np.flatnonzero(m))
            tally.sums[c] += np.bincount(img.pixel, weights=img.value, minlength=len(tally.sums[c]))
            k = n_examples - sum(len(e) for e in tally.examples[c])
            if k > 0:
                tally.examples[c].append(img.dense(0, min(k, img.n_jets)))
    for key in _META_KEYS:
        tally.columns[key].append(res.meta[key])
    tally.columns["n_hits"].append(hits)
    tally.columns["split"].append(is_test.astype(np.int64))
    for c in (QUARK, GLUON):
        tally.n_events[c] += res.n_events.get(c, 0)
    for k in ("pythia", "jets", "detector", "pileup"):
        tally.seconds[k] += res.seconds.get(k, 0.0)
    tally.seconds["chunks"] += res.seconds["total"]


def _image_summary(
    config: ImageConfig, path: Path, tally: _ImageTally, n_train: int, n_test: int, n_chunks: int, wall: float
) -> dict[str, Any]:
    """Write the manifest beside the file and return the summary (columns in file order: train, then test)."""
    cols = {k: np.concatenate(v) for k, v in tally.columns.items()}
    order = np.argsort(cols["split"], kind="stable")  # file order: train, then test
    cols = {k: v[order] for k, v in cols.items()}
    n_events = tally.n_events
    manifest = write_manifest(
        path,
        inputs=[],
        parameters=_config_dict(config),
        seed=config.seed,
        wall_time_s=wall,
        extra={
            "n_train": n_train,
            "n_test": n_test,
            "n_events": {"quark": n_events[QUARK], "gluon": n_events[GLUON]},
            "layout": "E2E quark/gluon (train_jet, train_meta, test_jet, test_meta)",
        },
    )
    empty = np.zeros((0, cms.IMAGE_SIZE, cms.IMAGE_SIZE, 3), np.float32)
    sums, filled, examples = tally.sums, tally.filled, tally.examples
    return {
        "path": path,
        "manifest": manifest,
        "n_train": n_train,
        "n_test": n_test,
        "columns": cols,
        "mean_image": {
            c: (sums[c] / max(filled[c], 1)).reshape(cms.IMAGE_SIZE, cms.IMAGE_SIZE, 3) for c in (QUARK, GLUON)
        },
        "examples": {c: np.concatenate(examples[c]) if examples[c] else empty for c in (QUARK, GLUON)},
        "n_events": n_events,
        "n_chunks": n_chunks,
        "cpu_seconds": tally.seconds,
        "wall_seconds": wall,
        "config": _config_dict(config),
    }


def simulate_particles(
    config: ParticleConfig,
    path: str | Path,
    *,
    workers: int | None = None,
    scheduler: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate the particle-level set and write the EnergyFlow-layout npz to ``path`` (atomically, manifest).

    Returns a summary with the per-jet columns (``label``, ``pt``, ``m0``, ``eta``, ``phi``, ``y``,
    ``n_constituents``) in file order, the event counts and timings.
    """
    t_start = time.perf_counter()
    path = check_output(path, overwrite)
    quotas = chunk_quotas(config.n_quark, config.n_gluon, config.chunk_jets)
    tasks = [ChunkTask(config, i, q, g) for i, (q, g) in enumerate(quotas)]
    workers = default_workers() if workers is None else max(1, int(workers))
    results = []
    with _progress(len(tasks), "particle-level chunks", progress) as bar:
        for batch in _batches(tasks, 2 * workers if not scheduler else 4 * max(workers, 8)):
            for res in map_chunks(particle_chunk, batch, workers=workers, scheduler=scheduler, progress=False):
                results.append(res)
                bar.update()
    counts = np.concatenate([r.counts for r in results])
    flat = np.concatenate([r.particles for r in results])  # float32; the writer casts block by block
    cols = {k: np.concatenate([r.meta[k] for r in results]) for k in _META_KEYS}
    t0 = time.perf_counter()
    write_qg_npz(path, counts, flat, cols["label"], overwrite=overwrite)
    t_write = time.perf_counter() - t0
    wall = time.perf_counter() - t_start
    n_events = {c: sum(r.n_events.get(c, 0) for r in results) for c in (QUARK, GLUON)}
    seconds = {k: sum(r.seconds.get(k, 0.0) for r in results) for k in ("pythia", "jets", "select")}
    seconds["chunks"] = sum(r.seconds["total"] for r in results)
    seconds["write"] = t_write
    manifest = write_manifest(
        path,
        inputs=[],
        parameters=_config_dict(config),
        seed=config.seed,
        wall_time_s=wall,
        extra={
            "n_jets": len(counts),
            "max_multiplicity": int(counts.max()),
            "n_events": {"quark": n_events[QUARK], "gluon": n_events[GLUON]},
            "layout": "EnergyFlow QG_jets.npz (X: pt, y, phi, pid; y: quark 1, gluon 0)",
        },
    )
    return {
        "path": path,
        "manifest": manifest,
        "n_jets": len(counts),
        "max_multiplicity": int(counts.max()),
        "columns": cols,
        "n_events": n_events,
        "n_chunks": len(tasks),
        "cpu_seconds": seconds,
        "wall_seconds": wall,
        "config": _config_dict(config),
    }


def with_detector(config: ImageConfig, **changes: Any) -> ImageConfig:
    """A copy of ``config`` with detector parameters changed (``noise=False``, ``track_pt_min=0.5``, ...)."""
    return replace(config, detector=replace(config.detector, **changes))


def hit_table(n_hits: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per class and channel: [10th percentile, median, 90th percentile] of the non-zero pixels per jet."""
    out = {}
    for c, name in ((QUARK, "quark"), (GLUON, "gluon")):
        h = np.asarray(n_hits)[np.asarray(labels) == c]
        out[name] = {
            ch: [float(v) for v in np.percentile(h[:, i], [10, 50, 90])] if len(h) else [0.0, 0.0, 0.0]
            for i, ch in enumerate(("track", "ECAL", "HCAL"))
        }
    return out


def median_hits_goal(
    n_hits: np.ndarray, report: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
) -> dict[str, dict[str, Any]]:
    """Median non-zero pixels per jet and channel over all jets, and whether each lies in the report's ranges.

    ``n_hits`` is (n_jets, 3) (track, ECAL, HCAL); ``report`` maps the channel names ``track``, ``ECAL``,
    ``HCAL`` to ((typical low, high), (peak low, high)) (:data:`jetcloud.qg.plots.REPORT_HITS`). Returns
    ``median_hits``, ``median_hits_in_report_range`` and ``median_hits_in_report_peak``, keyed track, ecal, hcal.
    """
    n_hits = np.asarray(n_hits)
    if n_hits.ndim != 2 or n_hits.shape[1] != 3 or len(n_hits) == 0:
        raise ValueError(f"n_hits must be a non-empty (n_jets, 3) array, got shape {n_hits.shape}")
    out: dict[str, dict[str, Any]] = {
        "median_hits": {},
        "median_hits_in_report_range": {},
        "median_hits_in_report_peak": {},
    }
    for i, name in enumerate(("track", "ECAL", "HCAL")):
        med = float(np.median(n_hits[:, i]))
        (lo, hi), (plo, phi) = report[name]
        out["median_hits"][name.lower()] = med
        out["median_hits_in_report_range"][name.lower()] = bool(lo <= med <= hi)
        out["median_hits_in_report_peak"][name.lower()] = bool(plo <= med <= phi)
    return out


def class_means(
    columns: Mapping[str, np.ndarray], labels: np.ndarray, names: Sequence[str] = ("pt", "m0", "n_constituents")
) -> dict[str, float]:
    """Per-class means of ``columns[name]``: keys ``<name>_mean_quark`` and ``<name>_mean_gluon`` (0 when a
    class has no jets)."""
    labels = np.asarray(labels)
    out = {}
    for name in names:
        values = np.asarray(columns[name])
        for c, cls in ((QUARK, "quark"), (GLUON, "gluon")):
            out[f"{name}_mean_{cls}"] = float(values[labels == c].mean()) if np.any(labels == c) else 0.0
    return out
