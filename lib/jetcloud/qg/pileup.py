"""In-time pile-up for the CMS-like image set: a minimum-bias library per chunk, reused with random rotations.

CMS 2012 (8 TeV) events carry on average about 20 further proton-proton collisions in the same bunch crossing
(in-time pile-up). Generating 20 minimum-bias events for every kept jet would cost more than the jet itself, so
each chunk generates one **library** of ``n`` minimum-bias events (Pythia 8 ``SoftQCD:inelastic``, the same
CMS-like tune and beam spot as the hard events) and overlays on every *kept* jet's event a Poisson(mu) number
of library events drawn with replacement, each

* rotated by a uniform random angle in phi (momenta and production vertices),
* reflected in eta (eta -> -eta, z -> -z) with probability 1/2,
* moved to its own collision vertex: z = z_beam + s (z_particle - z_event), z_beam ~ N(0, ``sigma_z``) (the
  CMS luminous region, sigma_z ~ 50 mm), s = +-1 the reflection, z_event the library event's own vertex.

Energies, momenta and transverse momenta are unchanged by these transformations, so the overlaid energy is
exactly the sum of the chosen library events' energies. Each library event is reused about
``mu x kept jets / n`` times in a chunk; with random rotations and reflections the reuse is not visible in the
125 x 125 window of one jet (it spans 0.35 of the phi range). The library keeps particles with
``|eta| < eta_max`` only (3.2 by default: the calorimeter grid ends at 2.958, and a particle's eta changes in the
field only through its vertex position).

Pythia's initialisation of ``SoftQCD:inelastic`` (multiparton-interaction tables for the diffractive and
non-diffractive systems) takes ~9 s, longer than generating a 1,000-event library. It is done once per settings
with a fixed seed and saved (``MultipartonInteractions:reuseInit``) under the system temporary directory; every
chunk loads it (0.3 s). The result depends only on the settings, so output stays identical for a seed whether
or not the file existed before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jetcloud.sim.particles import Particles
from jetcloud.sim.pythia import final_state, make_pythia

#: Seed of the one Pythia initialisation whose multiparton-interaction tables every chunk reuses.
INIT_SEED = 8_000_001
#: Largest ``nextBatch`` request while filling a library (bounded memory).
BATCH_EVENTS = 250


@dataclass
class MinBiasLibrary:
    """Minimum-bias events as one flat particle table: ``particles.event`` is the library event 0..n-1."""

    particles: Particles
    offsets: np.ndarray  # int64 (n + 1): event i owns rows offsets[i]:offsets[i + 1]
    vertex_z: np.ndarray  # float64 (n,): each event's collision vertex z (mm)

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    def event_energy(self) -> np.ndarray:
        """Summed particle energy of every library event (GeV)."""
        return np.bincount(self.particles.event, weights=self.particles.e, minlength=self.n_events)

    @classmethod
    def from_particles(cls, particles: Particles, n_events: int) -> MinBiasLibrary:
        """A library from a particle table grouped by ``event`` (0..n_events-1); vertex z = median z per event."""
        if len(particles) and np.any(np.diff(particles.event) < 0):
            raise ValueError("library particles must be grouped by event (non-decreasing event column)")
        counts = np.bincount(particles.event, minlength=n_events)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        vertex_z = np.zeros(n_events)
        for_median = np.flatnonzero(counts)
        if len(for_median):
            # median per event: sort z inside each event, take the middle row
            order = np.lexsort((particles.vz, particles.event))
            mid = offsets[for_median] + counts[for_median] // 2
            vertex_z[for_median] = particles.vz[order][mid]
        return cls(particles, offsets, vertex_z)


def _init_file(settings: tuple[str, ...]) -> Path:
    """Where the multiparton-interaction initialisation of ``settings`` is kept (created once, atomically)."""
    import pythia8mc

    key = hashlib.sha256("\n".join((getattr(pythia8mc, "__version__", "?"), *settings)).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "jetcloud-pythia-init"
    path = folder / f"minbias-{key}.mpi"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        make_pythia(
            "minbias",
            INIT_SEED,
            (*settings, "MultipartonInteractions:reuseInit = 1", f"MultipartonInteractions:initFile = {tmp}"),
        )
        os.replace(tmp, path)  # several workers may race: each writes the same tables, the last rename wins
    return path


def generate_library(n_events: int, seed: int, settings: tuple[str, ...], eta_max: float = 3.2) -> MinBiasLibrary:
    """``n_events`` minimum-bias events (``SoftQCD:inelastic`` with ``settings`` on top) as a library.

    ``seed`` is the Pythia seed (1..900,000,000); particles with ``|eta| >= eta_max`` are dropped.
    """
    if n_events <= 0:
        raise ValueError(f"a minimum-bias library needs at least one event, got {n_events}")
    init = _init_file(settings)
    pythia = make_pythia(
        "minbias",
        seed,
        (*settings, "MultipartonInteractions:reuseInit = 2", f"MultipartonInteractions:initFile = {init}"),
    )
    parts, done = [], 0
    while done < n_events:
        n = min(BATCH_EVENTS, n_events - done)
        batch = pythia.nextBatch(n)
        if len(batch) != n:
            raise RuntimeError(f"Pythia returned {len(batch)} of {n} minimum-bias events")
        p = final_state(batch, event_offset=done, truth=False)
        parts.append(p.select(np.abs(p.eta) < eta_max))
        done += n
    return MinBiasLibrary.from_particles(Particles.concatenate(parts), n_events)


@dataclass
class Overlay:
    """Pile-up particles for ``n`` target events, and which library events went where."""

    particles: Particles  # event = target event, grouped by it
    chosen: np.ndarray  # int64: library event of every overlaid collision
    target: np.ndarray  # int64: target event of every overlaid collision (non-decreasing)
    n_pileup: np.ndarray  # int64 (n,): collisions per target event


def overlay(
    library: MinBiasLibrary, n_events: int, mu: float, rng: np.random.Generator, sigma_z_mm: float = 50.0
) -> Overlay:
    """Poisson(``mu``) library events per target event, rotated, reflected and moved (module docstring)."""
    if mu < 0 or not np.isfinite(mu):
        raise ValueError(f"pile-up mu must be finite and >= 0, got {mu}")
    n_pu = rng.poisson(mu, n_events).astype(np.int64) if mu > 0 else np.zeros(n_events, np.int64)
    target = np.repeat(np.arange(n_events, dtype=np.int64), n_pu)
    n = len(target)
    chosen = rng.integers(0, library.n_events, n)
    dphi = rng.uniform(-np.pi, np.pi, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    z_new = sigma_z_mm * rng.standard_normal(n)
    counts = np.diff(library.offsets)[chosen]
    rows = np.repeat(library.offsets[chosen] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    inst = np.repeat(np.arange(n), counts)
    p = library.particles.select(rows)
    c, s = np.cos(dphi[inst]), np.sin(dphi[inst])
    p.vx, p.vy = c * p.vx - s * p.vy, s * p.vx + c * p.vy
    p.phi = np.mod(p.phi + dphi[inst] + np.pi, 2 * np.pi) - np.pi
    p.eta = sign[inst] * p.eta
    p.vz = z_new[inst] + sign[inst] * (p.vz - library.vertex_z[chosen][inst])
    p.event = target[inst]
    return Overlay(p, chosen, target, n_pu)
