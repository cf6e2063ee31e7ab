"""Per-cell and per-cluster truth bookkeeping, vectorised over a chunk of events.

The simulation knows, for every (event, cell, truth particle), the visible (EM-scale) and the true
(calibration-hit ``energyTotal``) energy the particle left in the cell. MLTree writes, per cluster cell, the
contributing truth particles; we keep the **three largest** contributions (MLTree's code keeps the three
*smallest*, a quirk we do not copy: see ``mltree-schema.md`` 6.1) and write them in ascending energy order,
the MLTree convention.
"""

from __future__ import annotations

import numpy as np


def top_contributions(
    keys: np.ndarray, truth_index: np.ndarray, energy: np.ndarray, k: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest contributions per key, ascending in energy within each key.

    ``keys`` identify a group (e.g. ``event * n_cells + cell``); returns ``(keys, truth_index, energy)`` of
    the kept rows, sorted by key then ascending energy.
    """
    order = np.lexsort((-energy, keys))
    keys, truth_index, energy = keys[order], truth_index[order], energy[order]
    start = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    rank = np.arange(len(keys)) - np.repeat(start, np.diff(np.r_[start, len(keys)]))
    keep = rank < k
    keys, truth_index, energy = keys[keep], truth_index[keep], energy[keep]
    order = np.lexsort((energy, keys))
    return keys[order], truth_index[order], energy[order]


def lookup_groups(group_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query key, ``(start, count)`` of its rows in the sorted ``group_keys`` (count 0 if absent)."""
    start = np.searchsorted(group_keys, query, side="left")
    stop = np.searchsorted(group_keys, query, side="right")
    return start, stop - start


def gather_ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c), without a Python loop."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(np.cumsum(count) - count, count)
    return np.repeat(start, count) + (np.arange(total) - offsets)


def group_sum(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` per unique key: returns ``(unique_keys, sums)``."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique))
