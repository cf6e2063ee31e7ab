"""Small vectorised array helpers used on hot paths (no Python loops over elements).

``numpy.unique`` on integer keys is hash-based in numpy >= 2.3 and, for the millions of (event, cell) keys a
chunk of events produces, up to 50x slower than sorting; :func:`unique` sorts instead.
"""

from __future__ import annotations

import numpy as np


def unique(keys: np.ndarray, return_inverse: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of a 1-D array (and optionally the inverse index), by sorting."""
    keys = np.asarray(keys)
    if not return_inverse:
        if len(keys) == 0:
            return keys.copy()
        s = np.sort(keys)
        return s[np.r_[True, s[1:] != s[:-1]]]
    order = np.argsort(keys, kind="stable")
    s = keys[order]
    first = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
    inverse = np.empty(len(keys), np.int64)
    inverse[order] = np.cumsum(first) - 1
    return s[first], inverse


def lookup_groups(group_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query key, ``(start, count)`` of its rows in the sorted ``group_keys`` (count 0 if absent)."""
    start = np.searchsorted(group_keys, query, side="left")
    stop = np.searchsorted(group_keys, query, side="right")
    return start, stop - start


def gather_ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c), without a Python loop."""
    count = np.asarray(count, np.int64)
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(np.cumsum(count) - count, count)
    return np.repeat(np.asarray(start, np.int64), count) + (np.arange(total) - offsets)


def group_sum(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``values`` per unique key: returns ``(unique_keys, sums)``."""
    uniq, inverse = unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse, weights=values, minlength=len(uniq))
