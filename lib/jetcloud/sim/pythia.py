"""Event generation with Pythia 8 (``pythia8mc``): processes, seeds and final-state particle tables.

Every process is a list of Pythia settings on top of a common ATLAS-like base (13 TeV, A14 tune, vertex
spread, particles with ``c tau > 10 mm`` kept stable as in the ATLAS truth record). ``Pythia.nextBatch(n)``
returns whole event records as awkward arrays, and :func:`final_state` turns them into the flat
:class:`~jetcloud.sim.particles.Particles` table without any per-particle Python loop.

==============  ===============================================================================
process         definition
==============  ===============================================================================
``JZ0``..``JZ5``  QCD 2->2 (``HardQCD:all``) in pT-hat slices 0-20, 20-60, 60-160, 160-400, 400-800,
                800-1300 GeV. ATLAS defines JZ slices by the leading truth-jet pT; the pT-hat window is
                the usual generator-level proxy. ``dijet`` is JZ1.
``ttbar``       ``Top:gg2ttbar`` + ``Top:qqbar2ttbar``
``hbb``         ``HiggsSM:gg2H`` with H -> b bbar only
``zjet``        ``WeakBosonAndParton:qqbar2gmZg`` + ``qg2gmZq`` with Z -> nu nu (clean recoil jets)
``minbias``     ``SoftQCD:inelastic``; also the source of in-time pile-up
``gun``         one particle per event (:class:`GunConfig`): pi+-, pi0, e+-, gamma, K0L, n, mu...;
                generated directly (no Pythia), pi0 -> gamma gamma decayed isotropically in its rest frame
==============  ===============================================================================

Pile-up: with ``pileup_mu > 0`` each hard-scatter event gets a Poisson(mu) number of ``minbias`` events
overlaid. As in ATLAS MC, pile-up particles deposit energy and can make tracks, but they are not in the
truth list (``Particles.index == -1``), so they carry no per-cell truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np

from jetcloud.seeds import pythia_seed
from jetcloud.sim.particles import Particles

log = logging.getLogger(__name__)

BASE_SETTINGS: tuple[str, ...] = (
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Beams:eCM = 13000.",
    "Tune:pp = 21",  # ATLAS A14 central tune (NNPDF2.3 LO)
    "ParticleDecays:limitTau0 = on",  # c*tau > 10 mm stable, as the ATLAS generator record
    "ParticleDecays:tau0Max = 10.",
    "Beams:allowVertexSpread = on",  # luminous region (mm)
    "Beams:sigmaVertexX = 0.01",
    "Beams:sigmaVertexY = 0.01",
    "Beams:sigmaVertexZ = 45.",
)

JZ_SLICES: dict[str, tuple[float, float]] = {
    "JZ0": (0.0, 20.0),
    "JZ1": (20.0, 60.0),
    "JZ2": (60.0, 160.0),
    "JZ3": (160.0, 400.0),
    "JZ4": (400.0, 800.0),
    "JZ5": (800.0, 1300.0),
}

PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    **{
        name: (
            ("SoftQCD:inelastic = on",)
            if name == "JZ0"
            else ("HardQCD:all = on", f"PhaseSpace:pTHatMin = {lo}", f"PhaseSpace:pTHatMax = {hi}")
        )
        for name, (lo, hi) in JZ_SLICES.items()
    },
    "ttbar": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    "hbb": ("HiggsSM:gg2H = on", "25:onMode = off", "25:onIfAny = 5"),
    "zjet": (
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "PhaseSpace:pTHatMin = 20.",
        "23:onMode = off",
        "23:onIfAny = 12 14 16",
    ),
    "minbias": ("SoftQCD:inelastic = on",),
}
ALIASES = {"dijet": "JZ1", "qcd": "JZ1"}
#: Every accepted ``process`` value.
PROCESSES: tuple[str, ...] = (*PROCESS_SETTINGS, *ALIASES, "gun")

#: ATLAS MC channel numbers of the nearest official samples (written to ``mcChannelNumber``).
MC_CHANNEL = {
    "JZ0": 364700,
    "JZ1": 364701,
    "JZ2": 364702,
    "JZ3": 364703,
    "JZ4": 364704,
    "JZ5": 364705,
    "ttbar": 410470,
    "hbb": 345342,
    "zjet": 366010,
    "minbias": 361238,
    "gun": 0,
}

#: Pythia's seed range (``Random:seed`` must be in 0..900_000_000; 0 means a clock-based seed).
MAX_PYTHIA_SEED = 900_000_000


def canonical_process(process: str) -> str:
    """Map a user's process name (case-insensitive, with aliases) to its canonical name, or raise."""
    key = process.strip()
    for name in (*PROCESS_SETTINGS, "gun"):
        if key.lower() == name.lower():
            return name
    if key.lower() in ALIASES:
        return ALIASES[key.lower()]
    raise ValueError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}")


def chunk_seed(seed: int, chunk: int) -> int:
    """Pythia seed of chunk ``chunk`` of a run seeded with ``seed`` (:func:`jetcloud.seeds.pythia_seed`)."""
    return pythia_seed(seed, chunk)


@dataclass(frozen=True)
class GunConfig:
    """A single-particle gun: one particle per event with energy and eta uniform in the given ranges.

    ``energy`` and ``eta`` accept a number (fixed) or a ``(low, high)`` pair; ``phi`` is uniform in (-pi, pi].
    """

    pdg: int = 211
    energy: float | tuple[float, float] = 10.0  # GeV
    eta: float | tuple[float, float] = (-2.5, 2.5)
    both_charges: bool = True  # alternate the sign of charged particles (pi+ / pi-, e- / e+)

    def __post_init__(self) -> None:
        lo, hi = _range(self.energy)
        if lo <= 0 or hi < lo:
            raise ValueError(f"gun energy must be positive with low <= high, got {self.energy!r}")


def _range(value: float | tuple[float, float] | list[float]) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        lo, hi = value
        return float(lo), float(hi)
    return float(value), float(value)


def make_pythia(process: str, seed: int, extra_settings: tuple[str, ...] = (), threads: int = 1, hooks=None):
    """An initialised ``pythia8mc.Pythia`` for ``process`` (not ``gun``) with ``Random:seed = seed``.

    ``hooks``: an optional ``pythia8mc.UserHooks`` instance installed before ``init`` (the caller keeps it alive).

    ``threads > 1`` returns a ``pythia8mc.PythiaParallel`` generating on that many threads. Its
    ``nextBatch`` returns the same *set* of events for a seed but in an order that depends on thread timing,
    so :func:`jetcloud.atlas.sim.pipeline.simulate` parallelises over chunks in processes instead (deterministic
    files, and the Python detector code runs in parallel too); ``PythiaParallel`` serves Pythia-only studies
    and the benchmark.
    """
    import pythia8mc  # deferred: importing Pythia loads its XML data (~0.3 s)

    name = canonical_process(process)
    if name == "gun":
        raise ValueError("the particle gun does not use Pythia; use generate_gun()")
    if not 0 < seed <= MAX_PYTHIA_SEED:
        raise ValueError(f"Pythia seed must be in 1..{MAX_PYTHIA_SEED}, got {seed}")
    pythia = pythia8mc.PythiaParallel("", False) if threads > 1 else pythia8mc.Pythia("", False)
    settings = (*BASE_SETTINGS, *PROCESS_SETTINGS[name], "Random:setSeed = on", f"Random:seed = {seed}")
    if threads > 1:
        settings = (*settings, f"Parallelism:numThreads = {int(threads)}")
    for setting in settings:
        if not pythia.readString(setting):
            raise RuntimeError(f"Pythia rejected setting {setting!r}")
    for setting in extra_settings:
        if not pythia.readString(setting):
            raise ValueError(f"Pythia rejected extra setting {setting!r}")
    if hooks is not None:
        pythia.setUserHooksPtr(hooks)
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise process {name!r}")
    return pythia


_CHARGE_CACHE: dict[int, float] = {}


def charges(pdg: np.ndarray) -> np.ndarray:
    """Electric charge (units of e) for an array of PDG ids, from the PDG table of ``particle``."""
    unique, inverse = np.unique(pdg, return_inverse=True)
    missing = [int(p) for p in unique if int(p) not in _CHARGE_CACHE]
    if missing:
        from particle import Particle  # PDG table; pure Python, cached per id

        for code in missing:
            try:
                _CHARGE_CACHE[code] = float(Particle.from_pdgid(code).charge or 0.0)
            except Exception:  # unknown to the PDG table (generator-internal codes): neutral
                _CHARGE_CACHE[code] = 0.0
    return np.array([_CHARGE_CACHE[int(p)] for p in unique], dtype=np.float32)[inverse]


def final_state(batch: ak.Array, event_offset: int = 0, truth: bool = True) -> Particles:
    """Flatten the stable (status > 0) particles of a ``nextBatch`` result into :class:`Particles`.

    ``index`` numbers the particles of each event in record order (the MLTree truth list), or is -1 when
    ``truth`` is False (pile-up). ``barcode`` is the Pythia record position, as HepMC2 barcodes for
    generator particles.
    """
    prt = batch.prt
    position = ak.local_index(prt.status, axis=1)
    stable = prt.status > 0
    prt, position = prt[stable], position[stable]
    counts = ak.to_numpy(ak.num(prt.status, axis=1))
    flat = ak.flatten(prt)
    px, py, pz, e = (ak.to_numpy(flat.p[c]) for c in ("px", "py", "pz", "e"))
    pt = np.hypot(px, py)
    vertex = flat.vProd
    vx, vy, vz = (ak.to_numpy(ak.fill_none(vertex[c], 0.0)) for c in ("px", "py", "pz"))
    pdg = ak.to_numpy(flat.id).astype(np.int32)
    n = len(pdg)
    index = ak.to_numpy(ak.flatten(ak.local_index(prt.status, axis=1))).astype(np.int32)
    return Particles(
        event=np.repeat(np.arange(len(counts), dtype=np.int64) + event_offset, counts),
        index=index if truth else np.full(n, -1, np.int32),
        pdg=pdg,
        charge=charges(pdg),
        pt=pt,
        eta=np.arcsinh(np.divide(pz, pt, out=np.full(n, np.sign(pz) * 1e9), where=pt > 0)),
        phi=np.arctan2(py, px),
        e=e,
        m=ak.to_numpy(flat.m).astype(np.float64),
        vx=vx,
        vy=vy,
        vz=vz,
        status=np.ones(n, np.int32),
        barcode=ak.to_numpy(ak.flatten(position)).astype(np.int32),
    )


def generate_gun(config: GunConfig, n_events: int, rng: np.random.Generator, event_offset: int = 0) -> Particles:
    """Single particles (one per event) with a fixed or uniform energy / eta; pi0 decayed to two photons."""
    from particle import Particle

    e_lo, e_hi = _range(config.energy)
    eta_lo, eta_hi = _range(config.eta)
    energy = rng.uniform(e_lo, e_hi, n_events)
    eta = rng.uniform(eta_lo, eta_hi, n_events)
    phi = rng.uniform(-np.pi, np.pi, n_events)
    pdg = np.full(n_events, config.pdg, np.int32)
    if config.both_charges and Particle.from_pdgid(config.pdg).charge:
        pdg[1::2] *= -1
    mass = (Particle.from_pdgid(config.pdg).mass or 0.0) / 1000.0
    energy = np.maximum(energy, mass * 1.0001)
    p = np.sqrt(energy**2 - mass**2)
    pt = p / np.cosh(eta)
    events = np.arange(n_events, dtype=np.int64) + event_offset
    if abs(config.pdg) == 111:  # pi0 -> gamma gamma (98.8%); the Dalitz mode is neglected
        return _decay_pi0(events, pt, eta, phi, mass, rng)
    zeros = np.zeros(n_events)
    return Particles(
        event=events,
        index=np.zeros(n_events, np.int32),
        pdg=pdg,
        charge=charges(pdg),
        pt=pt,
        eta=eta,
        phi=phi,
        e=energy,
        m=np.full(n_events, mass),
        vx=zeros,
        vy=zeros,
        vz=zeros,
        status=np.ones(n_events, np.int32),
        barcode=np.ones(n_events, np.int32),
    )


def _decay_pi0(events, pt, eta, phi, mass, rng) -> Particles:
    """Isotropic two-body decay pi0 -> gamma gamma in the rest frame, boosted to the lab (vectorised)."""
    n = len(events)
    cos_t = rng.uniform(-1, 1, n)
    sin_t = np.sqrt(1 - cos_t**2)
    phi_r = rng.uniform(-np.pi, np.pi, n)
    k = mass / 2
    rest = np.stack([k * sin_t * np.cos(phi_r), k * sin_t * np.sin(phi_r), k * cos_t], axis=1)
    mom = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)
    energy = np.sqrt((mom**2).sum(1) + mass**2)
    beta = mom / energy[:, None]
    gamma = energy / mass
    photons = []
    for sign in (1.0, -1.0):
        q = sign * rest
        bq = (beta * q).sum(1)
        e_lab = gamma * (k + bq)
        q_lab = q + ((gamma - 1) * bq / (beta**2).sum(1) + gamma * k)[:, None] * beta
        photons.append((q_lab, e_lab))
    (q1, e1), (q2, e2) = photons
    qs = np.stack([q1, q2], axis=1).reshape(-1, 3)
    es = np.stack([e1, e2], axis=1).reshape(-1)
    pt_g = np.hypot(qs[:, 0], qs[:, 1])
    zeros = np.zeros(2 * n)
    return Particles(
        event=np.repeat(events, 2),
        index=np.tile(np.array([0, 1], np.int32), n),
        pdg=np.full(2 * n, 22, np.int32),
        charge=np.zeros(2 * n, np.float32),
        pt=pt_g,
        eta=np.arcsinh(qs[:, 2] / pt_g),
        phi=np.arctan2(qs[:, 1], qs[:, 0]),
        e=es,
        m=zeros,
        vx=zeros,
        vy=zeros,
        vz=zeros,
        status=np.ones(2 * n, np.int32),
        barcode=np.tile([2, 3], n).astype(np.int32),
    )


class EventGenerator:
    """Generates chunks of events for one process, with optional in-time pile-up, deterministically.

    >>> gen = EventGenerator("JZ1", seed=12345)        # doctest: +SKIP
    >>> particles, info = gen.generate(100)
    """

    def __init__(
        self,
        process: str,
        seed: int,
        *,
        gun: GunConfig | None = None,
        pileup_mu: float = 0.0,
        extra_settings: tuple[str, ...] = (),
    ) -> None:
        self.process = canonical_process(process)
        if pileup_mu < 0:
            raise ValueError(f"pileup_mu must be >= 0, got {pileup_mu}")
        self.seed = seed
        self.gun = gun or GunConfig()
        self.pileup_mu = float(pileup_mu)
        self.rng = np.random.default_rng(seed)
        self._pythia = None if self.process == "gun" else make_pythia(self.process, seed, extra_settings)
        self._minbias = None
        if pileup_mu > 0:
            self._minbias = make_pythia("minbias", chunk_seed(seed, 10_000_019))

    def generate(self, n_events: int) -> tuple[Particles, dict[str, np.ndarray]]:
        """``n_events`` events: their particles (hard scatter + pile-up) and per-event generator info.

        The info holds ``mcEventWeight`` (float32), ``n_pileup`` (int32), and the primary vertex
        ``truthVertexX/Y/Z`` (mm, float32).
        """
        if n_events < 0:
            raise ValueError(f"number of events must be >= 0, got {n_events}")
        if self.process == "gun":
            hard = generate_gun(self.gun, n_events, self.rng)
            weights = np.ones(n_events, np.float32)
        else:
            batch = self._pythia.nextBatch(n_events)
            if len(batch) != n_events:
                raise RuntimeError(f"Pythia returned {len(batch)} of {n_events} events for {self.process}")
            hard = final_state(batch)
            weights = ak.to_numpy(ak.firsts(batch.info.weights)).astype(np.float32)
        vertex = _first_vertex(hard, n_events)
        n_pileup = np.zeros(n_events, np.int32)
        parts = [hard]
        if self._minbias is not None and n_events:
            n_pileup = self.rng.poisson(self.pileup_mu, n_events).astype(np.int32)
            if n_pileup.sum():
                pu = final_state(self._minbias.nextBatch(int(n_pileup.sum())), truth=False)
                pu.event = np.repeat(np.arange(n_events), n_pileup)[pu.event]
                parts.append(pu)
        particles = Particles.concatenate(parts)
        order = np.argsort(particles.event, kind="stable")
        info = {"mcEventWeight": weights, "n_pileup": n_pileup, **vertex}
        return particles.select(order), info


def _first_vertex(p: Particles, n_events: int) -> dict[str, np.ndarray]:
    """Primary vertex per event: the production vertex of the event's first particle (mm, float32)."""
    first = np.searchsorted(p.event, np.arange(n_events))
    ok = first < len(p)
    out = {}
    for name, col in (("truthVertexX", p.vx), ("truthVertexY", p.vy), ("truthVertexZ", p.vz)):
        values = np.zeros(n_events, np.float32)
        values[ok] = col[first[ok]]
        out[name] = values
    return out
