"""Flat, columnar particle tables shared by the simulation stages.

Every stage of the detector simulation works on *flat* numpy columns over all particles of a chunk of events,
with an ``event`` column saying which event each row belongs to (rows are grouped by event, ascending). This
keeps every stage vectorised over events without per-particle Python loops; awkward arrays are only built at
the edges (Pythia in, ROOT out).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Particles:
    """Stable truth particles of a chunk of events (the MLTree ``truthPart*`` list, flattened).

    Units: GeV, mm, rad. ``index`` is the particle's position in its event's truth list, i.e. the value
    that ``trackTruthParticleIndex`` and ``cluster_cell_hitsTruthIndex`` point to.
    """

    event: np.ndarray  # int64, event number within the chunk (0..n_events-1), non-decreasing
    index: np.ndarray  # int32, index in the event's truth list
    pdg: np.ndarray  # int32, PDG id
    charge: np.ndarray  # float32, in units of e
    pt: np.ndarray  # float64, GeV
    eta: np.ndarray  # float64
    phi: np.ndarray  # float64, (-pi, pi]
    e: np.ndarray  # float64, GeV
    m: np.ndarray  # float64, GeV
    vx: np.ndarray  # float64, production vertex, mm
    vy: np.ndarray  # float64
    vz: np.ndarray  # float64
    status: np.ndarray  # int32, generator status (1 = stable, HepMC convention)
    barcode: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.event)

    def select(self, mask: np.ndarray) -> Particles:
        """Rows where ``mask`` is true (boolean mask or integer index array)."""
        return Particles(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @property
    def p(self) -> np.ndarray:
        """Momentum magnitude |p| = pT cosh(eta), GeV."""
        return self.pt * np.cosh(self.eta)

    @classmethod
    def concatenate(cls, parts: list[Particles]) -> Particles:
        """Concatenate tables row-wise (the caller keeps ``event`` grouped)."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @classmethod
    def empty(cls) -> Particles:
        ints = ("event",)
        int32 = ("index", "pdg", "status", "barcode")
        cols = {}
        for f in fields(cls):
            dtype = np.int64 if f.name in ints else np.int32 if f.name in int32 else np.float64
            cols[f.name] = np.zeros(0, dtype=np.float32 if f.name == "charge" else dtype)
        return cls(**cols)
