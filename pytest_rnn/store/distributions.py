"""The few probability distributions the baseline checks need, without SciPy.

The standard normal (through :class:`statistics.NormalDist`) and Student's t, whose
distribution function is the regularised incomplete beta function (continued fraction,
modified Lentz) and whose quantiles are found by bisection on it; and :data:`ALPHA`, the
default false-alarm rate of every test built on them. Tested against published tables
(``tests/test_stats.py``); :mod:`pytest_rnn.store.stats` re-exports them.
"""

from __future__ import annotations

import functools
import math
import statistics

__all__ = [
    "ALPHA",
    "check_probability",
    "incomplete_beta",
    "normal_cdf",
    "normal_quantile",
    "t_cdf",
    "t_quantile",
]

#: Default false-alarm rate of one check (one-sided).
ALPHA = 0.01
_NORMAL = statistics.NormalDist()


def normal_cdf(z: float) -> float:
    return _NORMAL.cdf(z)


def normal_quantile(p: float) -> float:
    check_probability(p)
    return _NORMAL.inv_cdf(p)


def check_probability(p: float) -> None:
    """A ValueError unless ``p`` is a number strictly between 0 and 1."""
    if not (isinstance(p, (int, float)) and 0.0 < p < 1.0):
        raise ValueError(f"a probability strictly between 0 and 1 is needed; got {p!r}")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                          -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0) degrees of freedom."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0; got {df!r}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on
    :func:`t_cdf` to 1e-10; cached: a check's band asks the same few (p, df) pairs, and a
    power simulation asks them for every sample)."""
    check_probability(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    while high - low > 1e-10 * max(1.0, high):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
