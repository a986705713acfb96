"""The statistics of the power-checked baselines, against published tables and simulation.

Tables: Student's t quantiles from any statistics text (e.g. NIST/SEMATECH e-Handbook,
table 1.3.6.7.2), to the 4-6 digits printed there. The Mann-Whitney normal
approximation is compared with the exact permutation distribution, enumerated here.
The false-alarm rate and power of :func:`mean_test` are simulated with NumPy; the exact
rank test (:func:`rank_test`) is checked against full enumeration and printed critical
values, and simulated against the t-test on a long-tailed metric.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics

import numpy as np
import pytest

from pytest_rnn.store import stats

#: (p, df, quantile) from printed t tables.
T_TABLE = [
    (0.95, 1, 6.314), (0.99, 1, 31.821), (0.90, 2, 1.886), (0.99, 4, 3.747),
    (0.975, 10, 2.228), (0.995, 10, 3.169), (0.99, 19, 2.539), (0.95, 19, 1.729),
    (0.975, 30, 2.042), (0.999, 30, 3.385), (0.99, 100, 2.364),
]


@pytest.mark.parametrize("p, df, expected", T_TABLE)
def test_t_quantiles_match_the_printed_table(p, df, expected):
    assert stats.t_quantile(p, df) == pytest.approx(expected, abs=6e-4)
    assert stats.t_cdf(expected, df) == pytest.approx(p, abs=2e-4)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-expected, abs=6e-4)


def test_t_tends_to_the_normal_and_is_symmetric():
    assert stats.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)
    assert stats.normal_quantile(0.99) == pytest.approx(2.326348, abs=1e-6)
    for df in (1, 3, 17.5):
        assert stats.t_cdf(0.0, df) == pytest.approx(0.5)
        assert stats.t_cdf(1.3, df) + stats.t_cdf(-1.3, df) == pytest.approx(1.0)
    # df = 1 is the Cauchy distribution: closed form
    assert stats.t_cdf(2.0, 1) == pytest.approx(0.5 + math.atan(2.0) / math.pi, abs=1e-12)


def test_bad_probability_is_one_clear_error():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stats.t_quantile(1.0, 5)


def test_welch_statistic_and_degrees_of_freedom_by_hand():
    a, b = [1, 2, 3, 4], [2, 4, 6, 8, 10]
    va, vb = (5 / 3) / 4, 10 / 5  # sample variances over n
    t, df, p = stats.welch(a, b)
    assert t == pytest.approx(-3.5 / math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 4))
    assert p == pytest.approx(stats.t_cdf(t, df))


def exact_u_p(a, b):
    """Exact one-sided p (U at least as large) by enumerating every split of the pool."""
    pool = list(a) + list(b)

    def u(xs, ys):
        return sum((y > x) + 0.5 * (y == x) for x in xs for y in ys)

    observed = u(a, b)
    count = total = 0
    for idx in itertools.combinations(range(len(pool)), len(b)):
        ys = [pool[i] for i in idx]
        xs = [pool[i] for i in range(len(pool)) if i not in idx]
        total += 1
        count += u(xs, ys) >= observed - 1e-9
    return observed, count / total


@pytest.mark.parametrize("a, b", [
    ([1.0, 2.1, 3.3, 4.2, 5.5, 6.1, 7.7, 8.4], [3.9, 5.2, 6.6, 7.1, 8.8, 9.3, 10.5, 11.2]),
    ([1, 2, 2, 3, 3, 3, 4, 5], [2, 3, 4, 4, 5, 5, 6, 6]),  # many ties
    ([5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], [1.0, 2.0, 3.0, 4.0, 12.0, 13.0, 14.0]),
])
def test_mann_whitney_normal_approximation_is_close_to_the_exact_test(a, b):
    u, p = stats.mann_whitney(a, b)
    exact_u, exact_p = exact_u_p(a, b)
    assert u == exact_u
    assert p == pytest.approx(exact_p, abs=0.015)


def test_mann_whitney_tie_corrected_variance_is_the_permutation_variance():
    a, b = [1, 2, 2, 3, 3, 3], [2, 3, 4, 4, 5]
    pool = a + b
    us = []
    for idx in itertools.combinations(range(len(pool)), len(b)):
        ys = [pool[i] for i in idx]
        xs = [pool[i] for i in range(len(pool)) if i not in idx]
        us.append(sum((y > x) + 0.5 * (y == x) for x in xs for y in ys))
    n = len(pool)
    ties = sum(c ** 3 - c for c in (pool.count(v) for v in set(pool)))
    formula = len(a) * len(b) / 12 * ((n + 1) - ties / (n * (n - 1)))
    assert statistics.pvariance(us) == pytest.approx(formula)


def test_mann_whitney_table_critical_value_10_by_10():
    """Printed tables: n1 = n2 = 10, one-sided alpha = 0.01, critical U = 19: the sample
    larger in 100 - 19 = 81 of the 100 pairs is significant, in 79 it is not."""
    a = [float(i) for i in range(10)]
    assert stats.mann_whitney(a, _sample_with_u(81))[0] == 81
    assert stats.mann_whitney(a, _sample_with_u(81))[1] < 0.0115
    assert stats.mann_whitney(a, _sample_with_u(79))[1] > 0.012


def _sample_with_u(u: int) -> list[float]:
    """Ten values whose U against 0..9 (pairs with b > a) is ``u``."""
    b = []
    left = u
    for _ in range(10):
        beat = min(10, left)
        b.append(beat - 0.5)  # beats a = 0..beat-1
        left -= beat
    assert left == 0
    return b


def simulated_p(calib: np.ndarray, new: np.ndarray) -> np.ndarray:
    """mean_test's one-sided p (low side) for each row, vectorised: pooled variance,
    n + k - 2 degrees of freedom."""
    n, k = calib.shape[1], new.shape[1]
    pooled = ((n - 1) * calib.var(axis=1, ddof=1) + (k - 1) * new.var(axis=1, ddof=1)) / (
        n + k - 2)
    t = (new.mean(axis=1) - calib.mean(axis=1)) / np.sqrt(pooled * (1 / k + 1 / n))
    return np.array([stats.t_cdf(float(ti), n + k - 2) for ti in t])


def test_mean_test_false_alarm_rate_and_power_by_simulation():
    """Calibrate on n = 20 normal draws, test k = 4 new draws, 8,000 times: the one-sided
    false-alarm rate is alpha, and a shift of detectable_shift is caught ~90% of the time
    (a little less: the simulation redraws the calibration, the formula takes its sd as
    the true one)."""
    rng = np.random.default_rng(1)
    n, k, alpha, trials = 20, 4, 0.01, 8000
    calib = rng.normal(size=(trials, n))
    new = rng.normal(size=(trials, k))
    rate = float(np.mean(simulated_p(calib, new) < alpha))
    assert 0.006 < rate < 0.014, rate
    shift = stats.detectable_shift(stats.Distribution(0.0, 1.0, n), k, alpha, power=0.9)
    power = float(np.mean(simulated_p(calib, new - shift) < alpha))
    assert 0.84 < power < 0.93, power
    for row in range(5):  # the vectorised rule is mean_test's
        ref = stats.Distribution.of(calib[row])
        assert stats.mean_test(new[row], ref).p_low == pytest.approx(
            simulated_p(calib[row:row + 1], new[row:row + 1])[0])


def test_mean_test_agrees_with_its_band():
    ref = stats.Distribution.of([0.78, 0.77, 0.80, 0.79, 0.76, 0.78, 0.81, 0.77], seeds=range(8))
    low = stats.lower_bound(ref, 3)
    assert low == pytest.approx(ref.mean - stats.t_quantile(0.99, 8 + 3 - 2) * ref.sd
                                * math.sqrt(1 / 3 + 1 / 8))
    # the band moves with the sample's spread (pooled), not with its mean: a sample
    # shifted to just above / below its own band passes / fails, at p = alpha there
    sample = [0.0, 0.01, -0.012]
    edge = stats.mean_test(sample, ref).low - statistics.fmean(sample)
    above = stats.mean_test([v + edge + 1e-5 for v in sample], ref)
    below = stats.mean_test([v + edge - 1e-5 for v in sample], ref)
    assert not above.below and below.below
    assert below.p_low == pytest.approx(0.01, abs=2e-4) and below.df == 8 + 3 - 2
    # identical runs pool to less variance than the calibration's: a tighter band
    assert stats.mean_test([0.7] * 3, ref).low > low
    assert stats.mean_test([ref.mean] * 3, ref).p_low == pytest.approx(0.5)
    assert stats.mean_test([stats.upper_bound(ref, 3) + 1e-4] * 3, ref).above
    assert stats.Distribution.from_json(ref.to_json()) == ref


@pytest.mark.parametrize("reference, new", [
    ([1, 2, 2, 3, 5, 5, 6], [2, 5, 0.5]),  # ties between and within the samples
    ([0.74, 0.75, 0.75, 0.61, 0.77, 0.75], [0.75, 0.75]),
    ([3, 1, 4, 1, 5, 9, 2, 6], [7, 8, 9, 10]),  # the new runs on top: one subset in 495
])
def test_rank_test_is_the_exact_permutation_test_with_ties(reference, new):
    """p_low / p_high are the fractions of all C(n + k, k) ways to pick the 'new' runs from
    the pooled values whose U is <= / >= the observed one (mid-ranks for ties)."""
    pool = reference + new

    def u_of(chosen, rest):
        return sum((y > x) + 0.5 * (y == x) for y in chosen for x in rest)

    observed = u_of(new, reference)
    us = []
    for picked in itertools.combinations(range(len(pool)), len(new)):
        chosen = [pool[i] for i in picked]
        us.append(u_of(chosen, [pool[i] for i in range(len(pool)) if i not in picked]))
    result = stats.rank_test(new, reference)
    assert result.u == observed and result.u_max == len(new) * len(reference)
    assert result.p_low == pytest.approx(sum(u <= observed for u in us) / len(us))
    assert result.p_high == pytest.approx(sum(u >= observed for u in us) / len(us))


@pytest.mark.parametrize("n, k, critical", [(10, 10, 19), (8, 8, 9), (5, 5, 1), (4, 3, -1)])
def test_rank_critical_u_matches_the_printed_table(n, k, critical):
    """One-sided alpha = 0.01 critical values of U from printed Mann-Whitney tables (the
    largest U still significant; 4 x 3 has none: even U = 0 has p = 1/35)."""
    assert stats.rank_critical_u(n, k, 0.01) == critical
    stored = [float(i) for i in range(n)]
    for u in (critical, critical + 1):  # and the test itself agrees at the edge
        if u < 0:
            continue
        new = _beating(u, n, k)
        result = stats.rank_test(new, stored, 0.01)
        assert result.u == u and result.below == (u == critical), result


def _beating(u: int, n: int, k: int) -> list[float]:
    """``k`` untied values that beat ``u`` of the (new, stored) pairs against 0..n-1."""
    values, left = [], u
    for _ in range(k):
        beat = min(n, left)
        values.append(beat - 0.5 + 1e-3 * len(values))  # beats stored 0..beat-1
        left -= beat
    assert left == 0
    return values


def _long_tailed(rng) -> float:
    """An accuracy like SimpleRNN's on IMDB: most runs near 0.745, one in ten near 0.64."""
    return rng.gauss(0.745, 0.015) if rng.random() > 0.1 else rng.gauss(0.64, 0.03)


def test_rank_test_keeps_its_false_alarm_rate_and_its_power_on_a_long_tail():
    """Why SimpleRNN's accuracy is ranked, not averaged: on a long-tailed metric (k = 8
    runs against n = 40 stored, 1,000 draws over 40 calibrations), the rank test holds
    its 1% (exact for any distribution; 0.6% of these 1,000) and catches a 0.03 drop of
    every run 91% of the time, where the t-test, whose variance the tail inflates, catches
    it 46% of the time. (Every draw here is untied, so the rank test's distribution is
    computed once.)"""
    import random

    rng = random.Random(7)
    counts = {"rank_fa": 0, "t_fa": 0, "rank_power": 0, "t_power": 0}
    draws = 0
    for _ in range(40):
        stored = [_long_tailed(rng) for _ in range(40)]
        ref = stats.Distribution.of(stored)
        for _ in range(25):
            new = [_long_tailed(rng) for _ in range(8)]
            dropped = [v - 0.03 for v in new]
            counts["rank_fa"] += stats.rank_test(new, stored).below
            counts["t_fa"] += stats.mean_test(new, ref).below
            counts["rank_power"] += stats.rank_test(dropped, stored).below
            counts["t_power"] += stats.mean_test(dropped, ref).below
            draws += 1
    rates = {name: count / draws for name, count in counts.items()}
    assert rates["rank_fa"] <= 0.015, rates  # at most 1% of 1,000: 10 +- 3
    assert rates["rank_power"] >= 0.85, rates
    assert rates["rank_power"] > rates["t_power"] + 0.3, rates


def test_rank_power_and_detectable_shift_agree_and_are_reproducible():
    stored = [0.70 + 0.002 * i for i in range(20)]
    shift = stats.rank_detectable_shift(stored, 4, 0.01, 0.9, draws=200)
    assert shift == stats.rank_detectable_shift(stored, 4, 0.01, 0.9, draws=200)
    assert stats.rank_power(stored, 4, shift, 0.01, draws=200) >= 0.9
    assert stats.rank_power(stored, 4, 0.9 * shift, 0.01, draws=200) < 0.9
    assert stats.rank_power(stored, 4, 0.0, 0.01, draws=200) <= 0.02
    # lower is better: the worse side is up, and the stored values mirrored give the same
    mirrored = [-v for v in stored]
    assert stats.rank_power(mirrored, 4, shift, 0.01, draws=200, direction="lower") == \
        stats.rank_power(stored, 4, shift, 0.01, draws=200)
    with pytest.raises(ValueError, match=">= 1 finite"):
        stats.rank_test([], stored)
    with pytest.raises(ValueError, match="direction must be"):
        stats.rank_power(stored, 4, shift, direction="up")


def test_timing_verdict_needs_significance_and_effect():
    rng = np.random.default_rng(2)
    base = list(1.0 + 0.05 * rng.standard_normal(30))
    same = list(1.0 + 0.05 * rng.standard_normal(30))
    slow20 = list(1.2 + 0.06 * rng.standard_normal(30))
    slow3 = list(1.03 + 0.05 * rng.standard_normal(300))  # significant, too small to matter
    assert not stats.timing_verdict(base, same).slower
    assert stats.timing_verdict(base, slow20).slower
    assert stats.timing_verdict(slow20, base).faster
    small = stats.timing_verdict(base * 10, slow3)
    assert small.p < 0.01 and not small.slower
    assert "Mann-Whitney" in small.describe()


def test_rounds_needed_grows_with_noise_and_shrinks_with_effect():
    assert stats.rounds_needed(0.2, spread=0.05) < stats.rounds_needed(0.2, spread=0.15)
    assert stats.rounds_needed(0.1, spread=0.05) > stats.rounds_needed(0.2, spread=0.05)
    d = stats.describe([1.0, 2.0, 3.0, 4.0, 100.0])
    assert d == {"median": 3.0, "spread": pytest.approx(1.4826), "rounds": 5}


def test_the_float_sample_variance_equals_the_exact_one_within_rounding():
    """stats.sample_variance replaces statistics.variance on the hot path of the power
    simulations: the same value to rounding, on samples as small as two."""
    rng = random.Random(5)
    for n in (2, 3, 4, 9, 40):
        for scale in (1e-4, 1.0, 1e3):
            values = [0.7 + scale * rng.gauss(0, 1) for _ in range(n)]
            assert stats.sample_variance(values) == pytest.approx(
                statistics.variance(values), rel=1e-12)
            assert stats.sample_sd(values) == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert stats.sample_variance([0.25, 0.25, 0.25]) == 0.0
    with pytest.raises(ValueError, match="needs >= 2 values"):
        stats.sample_variance([1.0])
