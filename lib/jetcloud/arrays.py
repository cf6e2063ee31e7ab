"""Small vectorised array helpers used on hot paths (no Python loops over elements).

``numpy.unique`` on integer keys is hash-based in numpy >= 2.3 and, for the millions of (event, cell) keys a
chunk of events produces, up to 50x slower than sorting; :func:`unique` sorts instead. A stable ``argsort`` of
integer keys (timsort) is itself ~10x slower than ``np.sort`` of int64 (SIMD quicksort), so
:func:`argsort_stable` packs ``key << bits | position`` into one int64 and sorts that. Random-access
``searchsorted`` is slow (a cache miss per step); :func:`lookup_groups` answers the queries in sorted order.
"""

from __future__ import annotations

import numpy as np


def _packed_sort(keys: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """``np.sort(key - min << bits | position)`` for integer keys, or None if that does not fit in int64."""
    n = len(keys)
    if keys.dtype.kind not in "iu" or n < 2:
        return None
    kmin, kmax = int(keys.min()), int(keys.max())
    bits = (n - 1).bit_length()
    if (kmax - kmin) >= (1 << (63 - bits)):
        return None
    kmin = ((kmin + (1 << 63)) % (1 << 64)) - (1 << 63)  # as int64 (uint64 keys wrap; the arithmetic is modular)
    packed = keys.astype(np.int64)  # a copy
    if kmin:
        packed -= np.int64(kmin)
    packed <<= bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    return packed, bits, kmin


def sort_stable(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(keys[order], order)`` with ``order = np.argsort(keys, kind="stable")``, fast for integer keys."""
    keys = np.asarray(keys)
    res = _packed_sort(keys)
    if res is None:
        order = np.argsort(keys, kind="stable")
        return keys[order], order
    packed, bits, kmin = res
    order = packed & ((1 << bits) - 1)
    packed >>= bits
    if kmin:
        packed += kmin
    return packed.astype(keys.dtype, copy=False), order


def argsort_stable(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` (identical result), fast for integer keys."""
    return sort_stable(keys)[1]


def unique(keys: np.ndarray, return_inverse: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of a 1-D array (and optionally the inverse index), by sorting."""
    keys = np.asarray(keys)
    if not return_inverse:
        if len(keys) == 0:
            return keys.copy()
        s = np.sort(keys)
        return s[np.r_[True, s[1:] != s[:-1]]]
    s, order = sort_stable(keys)
    first = np.empty(len(s), bool)
    if len(s):
        first[0] = True
        np.not_equal(s[1:], s[:-1], out=first[1:])
    inverse = np.empty(len(keys), np.int64)
    inverse[order] = np.cumsum(first) - 1
    return s[first], inverse


def lookup_groups(group_keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query key, ``(start, count)`` of its rows in the sorted ``group_keys`` (count 0 if absent)."""
    query = np.asarray(query)
    if len(query) > 1024 and len(group_keys) and np.any(query[1:] < query[:-1]):
        # searchsorted is much faster (cache-friendly) on sorted queries: sort, search, scatter back
        sq, order = sort_stable(query)
        start = np.empty(len(query), np.int64)
        stop = np.empty(len(query), np.int64)
        start[order] = np.searchsorted(group_keys, sq, side="left")
        stop[order] = np.searchsorted(group_keys, sq, side="right")
        return start, stop - start
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


def fill_from_nearest_row(grid: np.ndarray, fallback: float) -> np.ndarray:
    """Copy of a 2-D table with each NaN replaced by the nearest finite entry of its column (nearest row index).

    Columns without any finite entry get ``fallback``. Used for binned templates (rows = pT or momentum bins,
    columns = |eta| bins) whose sparsely populated bins are left NaN by the measurement.
    """
    grid = np.array(grid, dtype=np.float64)
    rows = np.arange(grid.shape[0])
    for j in range(grid.shape[1]):  # a loop over the few columns of a table only
        good = np.flatnonzero(np.isfinite(grid[:, j]))
        if len(good) == 0:
            grid[:, j] = fallback
        else:
            grid[:, j] = grid[good[np.abs(rows[:, None] - good[None, :]).argmin(axis=1)], j]
    return grid
