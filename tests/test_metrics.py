"""Bootstrap uncertainties of response and resolution (jetcloud.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from jetcloud import metrics


def test_response_statistics_match_median_and_sigma68(rng: np.random.Generator) -> None:
    x = rng.normal(1.0, 0.2, (3, 5000))
    med, width = metrics.response_statistics(x)
    for row in range(3):
        expected = metrics.median_and_sigma68(x[row], relative=True)
        assert (med[row], width[row]) == pytest.approx(expected)


def test_bootstrap_width_of_sigma68_matches_the_asymptotic_error(rng: np.random.Generator) -> None:
    # sigma68 = (q84 - q16) / 2 of n normal values has the asymptotic standard error 0.9617 sigma / sqrt(n)
    # (quantile variances p (1 - p) / (n f^2) and their covariance p16 (1 - p84) / (n f16 f84)); the median is 1,
    # so the relative width has (nearly) the same error
    n, sigma = 2000, 0.2
    point, boot = metrics.bootstrap_response(rng.normal(1.0, sigma, n), n_resamples=400, seed=1)
    assert point[0, 1] == pytest.approx(sigma, rel=0.05)
    lo, hi = metrics.percentile_interval(boot[:, 0, 1], 0.68)
    assert 0.5 * (hi - lo) == pytest.approx(0.9617 * sigma / np.sqrt(n), rel=0.25)
    assert boot[:, 0, 0].std() == pytest.approx(np.sqrt(np.pi / 2) * sigma / np.sqrt(n), rel=0.25)


def test_bootstrap_interval_coverage(rng: np.random.Generator) -> None:
    # 68% intervals of sigma68 / median over 120 independent normal samples cover the true 0.2 about 68% of the time
    covered = []
    for k in range(120):
        _, boot = metrics.bootstrap_response(rng.normal(1.0, 0.2, 400), n_resamples=200, seed=k)
        lo, hi = metrics.percentile_interval(boot[:, 0, 1], 0.68)
        covered.append(lo <= 0.2 <= hi)
    # binomial sd of the coverage over 120 trials is 0.043; allow the bootstrap's known small-sample deficit too
    assert 0.52 <= np.mean(covered) <= 0.82


def test_bootstrap_is_seeded_paired_and_chunk_independent(rng: np.random.Generator) -> None:
    a = rng.normal(1.0, 0.3, 500)
    both = np.stack([a, 2 * a])  # the same tracks, twice the response: identical relative width on every resample
    point, boot = metrics.bootstrap_response(both, n_resamples=50, seed=7)
    np.testing.assert_allclose(boot[:, 0, 1], boot[:, 1, 1])
    np.testing.assert_allclose(boot[:, 1, 0], 2 * boot[:, 0, 0])
    again = metrics.bootstrap_response(both, n_resamples=50, seed=7, max_elements=1000)[1]
    np.testing.assert_array_equal(boot, again)  # chunking does not change the numbers
    assert not np.array_equal(boot, metrics.bootstrap_response(both, n_resamples=50, seed=8)[1])
    # non-finite tracks are dropped jointly; nothing left gives NaN
    with_nan = both.copy()
    with_nan[0, :10] = np.nan
    assert metrics.bootstrap_response(with_nan, n_resamples=5)[0][1, 0] == pytest.approx(np.median(2 * a[10:]))
    assert np.isnan(metrics.bootstrap_response(np.full((2, 3), np.nan), n_resamples=5)[1]).all()


def test_percentile_interval() -> None:
    lo, hi = metrics.percentile_interval(np.arange(101.0), 0.9)
    assert (lo, hi) == pytest.approx((5.0, 95.0))
    lo, hi = metrics.percentile_interval(np.full((4, 2), np.nan))
    assert np.isnan(lo).all() and np.isnan(hi).all()
    with pytest.raises(ValueError, match="confidence"):
        metrics.percentile_interval(np.arange(3.0), 1.5)
