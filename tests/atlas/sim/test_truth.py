"""The k largest truth contributions per cell / cluster (``truth.top_contributions``) against its definition."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud.atlas.sim.truth import top_contributions


def _by_definition(keys, truth_index, energy, k):
    """Two stable sorts: by key then descending energy, keep the first k per key, then ascending energy."""
    order = np.lexsort((-energy, keys))
    keys, truth_index, energy = keys[order], truth_index[order], energy[order]
    start = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    rank = np.arange(len(keys)) - np.repeat(start, np.diff(np.r_[start, len(keys)]))
    keep = rank < k
    keys, truth_index, energy = keys[keep], truth_index[keep], energy[keep]
    order = np.lexsort((energy, keys))
    return keys[order], truth_index[order], energy[order]


def test_hand_made_example_ascending_within_key() -> None:
    keys = np.array([7, 3, 7, 7, 3, 7])
    index = np.array([0, 1, 2, 3, 4, 5])
    energy = np.array([1.0, 5.0, 4.0, 2.0, 0.5, 3.0])
    k, i, e = top_contributions(keys, index, energy, k=3)
    assert k.tolist() == [3, 3, 7, 7, 7] and i.tolist() == [4, 1, 3, 5, 2]  # key 7 drops its smallest (index 0)
    assert e.tolist() == [0.5, 5.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("values", ["distinct", "tied"])
def test_equals_the_two_sort_definition(values: str) -> None:
    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(0, 200))
        keys = rng.integers(0, n // 2 + 1, n).astype(np.int64)
        index = rng.integers(0, 40, n).astype(np.int32)
        if values == "distinct":
            energy = rng.random(n).astype(np.float32 if trial % 2 else np.float64)
        else:  # ties (also 0.0 against -0.0) and NaN take the sorting path
            energy = rng.choice([0.0, -0.0, 1.0, 2.0, np.nan], n)
        for k in (1, 3, 4):
            got, want = top_contributions(keys, index, energy, k), _by_definition(keys, index, energy, k)
            for a, b in zip(got, want, strict=True):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
