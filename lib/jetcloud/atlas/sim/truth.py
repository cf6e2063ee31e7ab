"""Per-cell and per-cluster truth bookkeeping, vectorised over a chunk of events.

The simulation knows, for every (event, cell, truth particle), the visible (EM-scale) and the true
(calibration-hit ``energyTotal``) energy the particle left in the cell. MLTree writes, per cluster cell, the
contributing truth particles; we keep the **three largest** contributions (MLTree's code keeps the three
*smallest*, a quirk we do not copy: see ``docs/mltree-format.md``) and write them in ascending energy order,
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
    same_key = keys[1:] == keys[:-1]
    if np.any(same_key & (energy[1:] == energy[:-1])) or np.isnan(energy).any():
        order = np.lexsort((energy, keys))  # ties (kept in input order) or NaN: sort again
    else:  # every key's energies are distinct and descending: reversing each key's rows sorts them ascending
        start = np.r_[0, np.flatnonzero(~same_key) + 1]
        end = np.r_[start[1:], len(keys)]
        order = np.repeat(start + end - 1, end - start) - np.arange(len(keys))
    return keys[order], truth_index[order], energy[order]
