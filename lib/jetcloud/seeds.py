"""Seeds: the one check of a run's ``seed`` and the Pythia seed of each chunk derived from it.

A core module (standard library only): the notebooks' :func:`jetcloud.nbtools.seed_everything` and the
generators in :mod:`jetcloud.sim.pythia` both start here, so a run is reproducible from its one ``seed``.
"""

from __future__ import annotations

import hashlib
from numbers import Integral
from typing import Any

PYTHIA_SEED_MAX = 900_000_000
"""Largest value Pythia accepts for ``Random:seed`` (``0`` means "seed from the clock", so it is avoided)."""


def check_seed(seed: Any) -> int:
    """``seed`` as an int; ValueError unless it is a non-negative integer (bool refused)."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def pythia_seed(seed: int, chunk: int = 0) -> int:
    """Pythia ``Random:seed`` for chunk ``chunk`` of a run seeded with ``seed``: 1 .. 900 000 000.

    Deterministic (sha256 of ``seed`` and ``chunk``), different for every chunk so that parallel chunks
    never share a random sequence, and never 0, which Pythia would replace by a clock-based seed.
    """
    seed = check_seed(seed)
    if isinstance(chunk, bool) or not isinstance(chunk, Integral) or chunk < 0:
        raise ValueError(f"chunk must be a non-negative integer, got {chunk!r}")
    digest = hashlib.sha256(f"jetcloud-pythia:{seed}:{int(chunk)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % PYTHIA_SEED_MAX + 1
