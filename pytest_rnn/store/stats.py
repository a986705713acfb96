"""The statistics of baseline checks with a known false-alarm rate and power.

No pytest, no SciPy. This module is the statistics' public face: the tests of ``k`` new
runs against a stored calibration, here, and, re-exported, Student's t and the normal
distribution (:mod:`pytest_rnn.store.distributions`) and the timing verdict
(:mod:`pytest_rnn.store.timing_stats`).

Accuracy-like metrics (one value per training run, roughly normal over seeds) are
compared by :func:`mean_test`: the mean of ``k`` new runs against a stored calibration
distribution (mean ``m0``, standard deviation ``s0`` of ``n`` seeds). Under "nothing
changed" the new runs come from the same distribution, so

    t = (mean_k - m0) / (s0 * sqrt(1/k + 1/n))

has Student's t distribution with ``n - 1`` degrees of freedom (the new mean and the
calibration's sd are independent). This is a one-sided *prediction bound* for the mean
of ``k`` future runs; the band :func:`lower_bound` is a number a reviewer can read in the
baseline file. Welch's test (:func:`welch`, also here) estimates the new runs' variance
from the new runs themselves: with ``k = 4`` that estimate has 3 degrees of freedom and
the test loses much of its power, while under the null hypothesis the variances are
equal by definition. :func:`mean_test` therefore pools the two samples' variances
(Student's two-sample test): with ``n = 20`` the calibration dominates, and one far-off
new run widens the band a little instead of failing the check by itself (see there).

:func:`detectable_shift` is the smallest true shift of the mean detected with
probability ``power``: the band's distance from ``m0`` plus ``z_power`` standard errors
of the new mean (exact when ``s0`` is the true sd; ``n = 20`` seeds estimate it within
~16%).

A metric with a long tail is compared by :func:`rank_test` instead: the ``k`` runs' ranks
among the ``n`` stored values, exact for any distribution. Its power is simulated
(:func:`rank_power`, :func:`rank_detectable_shift`), by moving the stored values.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_rnn.store.distributions import (
    ALPHA,
    check_probability,
    incomplete_beta,
    normal_cdf,
    normal_quantile,
    t_cdf,
    t_quantile,
)
from pytest_rnn.store.timing_stats import (
    TimingTest,
    describe,
    mann_whitney,
    rounds_needed,
    timing_verdict,
)

__all__ = [
    "ALPHA",
    "Distribution",
    "MeanTest",
    "RankTest",
    "TimingTest",
    "describe",
    "detectable_shift",
    "incomplete_beta",
    "lower_bound",
    "mann_whitney",
    "mean_test",
    "normal_cdf",
    "normal_quantile",
    "rank_critical_u",
    "rank_detectable_shift",
    "rank_power",
    "rank_test",
    "rounds_needed",
    "sample_sd",
    "sample_variance",
    "t_cdf",
    "t_quantile",
    "timing_verdict",
    "upper_bound",
    "welch",
]


# ---------------------------------------------------------------------------
# accuracy: the mean of k runs against a calibration distribution


def sample_variance(values: Sequence[float]) -> float:
    """The sample variance (``n - 1`` in the denominator; ``n >= 2``) in float arithmetic,
    two passes with :func:`math.fsum`: within a few ulps of :func:`statistics.variance`,
    whose exact fractions cost 30 times as much in a power simulation's thousands of
    judged samples."""
    n = len(values)
    if n < 2:
        raise ValueError(f"a variance needs >= 2 values; got {list(values)!r}")
    mean = math.fsum(values) / n
    return math.fsum((v - mean) ** 2 for v in values) / (n - 1)


def sample_sd(values: Sequence[float]) -> float:
    """The sample standard deviation: the square root of :func:`sample_variance`."""
    return math.sqrt(sample_variance(values))


@dataclass(frozen=True)
class Distribution:
    """A calibration: ``values`` of one metric over ``seeds`` (one value per seed)."""

    mean: float
    sd: float
    n: int
    values: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()

    @classmethod
    def of(cls, values: Sequence[float], seeds: Sequence[int] = ()) -> Distribution:
        values = tuple(float(v) for v in values)
        if len(values) < 2 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"a calibration needs >= 2 finite values; got {values!r}")
        return cls(statistics.fmean(values), sample_sd(values), len(values),
                   values, tuple(int(s) for s in seeds))

    def to_json(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n": self.n, "values": list(self.values),
                "seeds": list(self.seeds)}

    @classmethod
    def from_json(cls, data: dict) -> Distribution:
        return cls(float(data["mean"]), float(data["sd"]), int(data["n"]),
                   tuple(float(v) for v in data.get("values", ())),
                   tuple(int(s) for s in data.get("seeds", ())))


def _standard_error(ref: Distribution, k: int) -> float:
    if k < 1 or ref.n < 2:
        raise ValueError(f"need k >= 1 new runs and n >= 2 calibration runs; got k={k}, "
                         f"n={ref.n}")
    return ref.sd * math.sqrt(1.0 / k + 1.0 / ref.n)


def _band_distance(ref: Distribution, k: int, alpha: float) -> float:
    """How far from the calibration mean :func:`mean_test` puts the band for ``k`` runs
    that scatter as the calibration did (pooled sd = calibration sd, n + k - 2 df)."""
    df = ref.n + k - 2 if k >= 2 else ref.n - 1
    return t_quantile(1.0 - alpha, df) * _standard_error(ref, k)


def lower_bound(ref: Distribution, k: int, alpha: float = ALPHA) -> float:
    """The band: the mean of ``k`` unchanged runs falls below it with probability ``alpha``
    (for runs that scatter as the calibration did)."""
    return ref.mean - _band_distance(ref, k, alpha)


def upper_bound(ref: Distribution, k: int, alpha: float = ALPHA) -> float:
    """The mean of ``k`` unchanged runs exceeds it with probability ``alpha``."""
    return ref.mean + _band_distance(ref, k, alpha)


def detectable_shift(ref: Distribution, k: int, alpha: float = ALPHA,
                     power: float = 0.9) -> float:
    """The smallest shift of the true mean that :func:`mean_test` detects with
    probability ``power``: band distance + z_power standard errors of a mean of k runs."""
    check_probability(power)
    return (ref.mean - lower_bound(ref, k, alpha)) + normal_quantile(power) * ref.sd / math.sqrt(k)


class _OneSided:
    """What :class:`MeanTest` and :class:`RankTest` share: the one-sided p-values of a
    sample against its calibration, and whether either side is significant at ``alpha``."""

    p_low: float
    p_high: float
    alpha: float

    @property
    def below(self) -> bool:
        return self.p_low < self.alpha

    @property
    def above(self) -> bool:
        return self.p_high < self.alpha


@dataclass(frozen=True)
class MeanTest(_OneSided):
    """The outcome of :func:`mean_test`: the sample's mean against the calibration."""

    mean: float
    t: float
    df: float
    p_low: float  # P(a mean this low or lower | unchanged)
    p_high: float  # P(a mean this high or higher | unchanged)
    low: float  # the band's edges for this k and alpha
    high: float
    alpha: float


def mean_test(values: Sequence[float], ref: Distribution, alpha: float = ALPHA) -> MeanTest:
    """One-sided t-tests of the mean of ``values`` against ``ref``: Student's two-sample
    test with the pooled variance ``((n-1) s0^2 + (k-1) s^2) / (n+k-2)`` and ``n + k - 2``
    degrees of freedom (``k = 1``: the calibration variance, ``n - 1``).

    Exact at ``alpha`` when nothing changed (same spread). Pooling, rather than the
    calibration variance alone, lets one unlucky run among ``k`` widen the band a little
    instead of failing the check on its own: a default-seed GRU sample of 0.731, 0.788,
    0.748, 0.777 against a calibration sd of 0.009 would fail with the calibration
    variance alone at p = 0.008 (accuracy over seeds has a heavier lower tail than 20
    seeds show); pooled, p = 0.04. It costs almost no power (simulated in
    tests/test_stats.py), where Welch's test, with the sample's own 3 degrees of freedom,
    lost a third of it."""
    values = [float(v) for v in values]
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"values must be finite numbers, at least one; got {values!r}")
    check_probability(alpha)
    k = len(values)
    mean = statistics.fmean(values)
    _standard_error(ref, k)  # validates k and n
    if k >= 2:
        pooled = ((ref.n - 1) * ref.sd ** 2 + (k - 1) * sample_variance(values)) / (
            ref.n + k - 2)
        df: float = ref.n + k - 2
    else:
        pooled, df = ref.sd ** 2, ref.n - 1
    se = math.sqrt(pooled * (1.0 / k + 1.0 / ref.n))
    if se == 0:
        t = 0.0 if mean == ref.mean else math.copysign(math.inf, mean - ref.mean)
    else:
        t = (mean - ref.mean) / se
    q = t_quantile(1.0 - alpha, df)
    return MeanTest(mean, t, df, t_cdf(t, df), 1.0 - t_cdf(t, df), ref.mean - q * se,
                    ref.mean + q * se, alpha)


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's t statistic of mean(a) - mean(b), its degrees of freedom (Welch-Satterthwaite)
    and the one-sided p-value P(T <= t). Each sample needs >= 2 values."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's test needs at least 2 values in each sample")
    va, vb = sample_variance(a) / len(a), sample_variance(b) / len(b)
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df, t_cdf(t, df)


# ---------------------------------------------------------------------------
# accuracy with a long tail: the k runs' ranks among the calibration's values


def _rank_sum_probabilities(groups: Sequence[tuple[int, int]], k: int) -> list[float]:
    """The permutation distribution of twice the rank sum of ``k`` values drawn without
    replacement from a pooled sample whose tie groups are ``groups`` = (size, twice the
    group's mid-rank): index ``2 x rank sum`` -> probability. A dynamic programme over the
    groups (how many of the k fall in each), in NumPy."""
    import numpy as np

    top = 2 * sum(size for size, _ in groups) * k + 1
    layers = np.zeros((k + 1, top))  # [how many taken, 2 x rank sum] -> number of subsets
    layers[0, 0] = 1.0
    for size, twice_rank in groups:
        before = layers.copy()
        for c in range(1, min(size, k) + 1):
            shift = c * twice_rank
            if shift >= top:
                break
            layers[c:, shift:] += math.comb(size, c) * before[:k + 1 - c, :top - shift]
    last = layers[k]
    return list(last / last.sum())


@functools.lru_cache(maxsize=32)
def _untied_rank_sum_probabilities(total: int, k: int) -> tuple[float, ...]:
    """:func:`_rank_sum_probabilities` without ties (``total`` = n + k distinct values):
    the same for every such sample, so computed once per (n + k, k)."""
    return tuple(_rank_sum_probabilities([(1, 2 * (i + 1)) for i in range(total)], k))


@dataclass(frozen=True)
class RankTest(_OneSided):
    """The outcome of :func:`rank_test`: where ``k`` new runs rank among ``n`` stored."""

    u: float  # pairs (new, stored) with new > stored; ties count one half
    u_max: int  # k * n
    p_low: float  # P(U <= u | unchanged): the new runs rank this low or lower
    p_high: float  # P(U >= u | unchanged)
    alpha: float


def rank_test(values: Sequence[float], reference: Sequence[float],
              alpha: float = ALPHA) -> RankTest:
    """Exact one-sided Mann-Whitney tests of ``values`` (k new runs) against the stored
    calibration ``reference`` (n runs): the permutation distribution of the new runs' rank
    sum among all n + k, ties by mid-ranks (conditional on the ties, so exact with them).

    Unchanged, the n + k runs are exchangeable whatever their distribution, so the
    false-alarm rate is at most ``alpha`` for a long-tailed metric too, where
    :func:`mean_test`'s normal model lets the tail widen its band (see README,
    "Baselines": SimpleRNN's IMDB accuracy)."""
    new = [float(v) for v in values]
    ref = [float(v) for v in reference]
    if not new or len(ref) < 2 or not all(math.isfinite(v) for v in new + ref):
        raise ValueError(f"need >= 1 finite new value and >= 2 finite calibration values; got "
                         f"{len(new)} and {len(ref)}")
    check_probability(alpha)
    pooled = sorted([(v, 1) for v in new] + [(v, 0) for v in ref])
    groups, observed, start = [], 0, 0
    while start < len(pooled):
        end = start
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        twice_rank = start + end + 2  # 1-based ranks: (start + 1 + end + 1) / 2, doubled
        groups.append((end - start + 1, twice_rank))
        observed += twice_rank * sum(side for _, side in pooled[start:end + 1])
        start = end + 1
    k = len(new)
    probabilities = (_untied_rank_sum_probabilities(len(pooled), k)
                     if len(groups) == len(pooled) else _rank_sum_probabilities(groups, k))
    low = min(1.0, math.fsum(probabilities[:observed + 1]))
    high = min(1.0, math.fsum(probabilities[observed:]))
    u = observed / 2.0 - k * (k + 1) / 2.0
    return RankTest(u, k * len(ref), low, high, alpha)


def rank_critical_u(n: int, k: int, alpha: float = ALPHA) -> int:
    """The largest U (no ties) that :func:`rank_test` still calls low at ``alpha``: k runs
    of which fewer than this many (new, stored) pairs favour the new run fail; -1 when
    even U = 0 is not significant (k and n too small for ``alpha``)."""
    check_probability(alpha)
    probabilities = _untied_rank_sum_probabilities(n + k, k)
    cumulative, critical = 0.0, -1
    for twice_sum in range(0, len(probabilities), 2):  # untied: rank sums are whole
        cumulative += probabilities[twice_sum]
        if cumulative >= alpha:
            break
        if probabilities[twice_sum] > 0:
            critical = twice_sum // 2 - k * (k + 1) // 2
    return critical


#: Samples per :func:`rank_power` estimate (its standard error at 90% power: ~1%).
POWER_DRAWS = 1000


def rank_power(reference: Sequence[float], k: int, shift: float, alpha: float = ALPHA,
               draws: int | None = None, seed: int = 0, direction: str = "higher") -> float:
    """The fraction of ``draws`` samples of ``k`` runs, drawn from ``reference`` and moved
    by ``shift`` to the worse side of ``direction`` (down for ``higher``, up for
    ``lower``; down for ``both``, failing on either side as ``judge_sample`` does), that
    :func:`rank_test` fails: the check's power against a move of the whole distribution
    (and, with ``shift = 0``, an upper bound of its false-alarm rate: a resampled run may
    tie a stored one exactly)."""
    import random

    if direction not in ("higher", "lower", "both"):
        raise ValueError(f"direction must be 'higher', 'lower' or 'both'; got {direction!r}")
    rng = random.Random(seed)
    ref = [float(v) for v in reference]
    draws = POWER_DRAWS if draws is None else draws
    move = shift if direction == "lower" else -shift
    caught = 0
    for _ in range(draws):
        result = rank_test([rng.choice(ref) + move for _ in range(k)], ref, alpha)
        caught += {"higher": result.below, "lower": result.above,
                   "both": result.below or result.above}[direction]
    return caught / draws


def rank_detectable_shift(reference: Sequence[float], k: int, alpha: float = ALPHA,
                          power: float = 0.9, draws: int | None = None, seed: int = 0,
                          direction: str = "higher") -> float:
    """The smallest move of the whole ``reference`` distribution to the worse side that
    :func:`rank_test` on ``k`` runs catches with probability ``power`` (:func:`rank_power`,
    bisection to 1% of the reference's sd; the same ``seed`` gives the same answer)."""
    check_probability(power)
    sd = sample_sd(reference)

    def caught(shift: float) -> float:
        return rank_power(reference, k, shift, alpha, draws, seed, direction)

    low, high = 0.0, sd
    while caught(high) < power:
        low, high = high, 2.0 * high
        if high > 1e3 * sd:
            raise ValueError(f"no shift reaches power {power} with k = {k}")
    while high - low > 0.01 * sd:
        mid = 0.5 * (low + high)
        if caught(mid) < power:
            low = mid
        else:
            high = mid
    return high
