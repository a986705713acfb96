"""The statistics of timing checks: a rank test plus a minimum effect.

Timing samples (many rounds, skewed, outliers from other processes) are compared by
:func:`mann_whitney` (rank test, normal approximation with tie and continuity
corrections, as Google Benchmark's ``compare.py`` does with SciPy) together with a
minimum effect size on the ratio of medians (:func:`timing_verdict`): a p-value alone
flags a 1% change given enough rounds; an effect alone flags noise. :func:`rounds_needed`
sizes a sample for an effect, :func:`describe` summarises one. Re-exported by
:mod:`pytest_rnn.store.stats`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_rnn.store.distributions import (
    ALPHA,
    check_probability,
    normal_cdf,
    normal_quantile,
)

__all__ = ["TimingTest", "describe", "mann_whitney", "rounds_needed", "timing_verdict"]


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U of ``b`` against ``a`` and the one-sided p-value that ``b`` tends to
    be *larger* (normal approximation with tie and continuity corrections).

    ``U`` counts pairs (x in a, y in b) with y > x, ties counting one half; under the
    null hypothesis its mean is n_a*n_b/2. Accurate to ~0.005 in p for n >= 8 per side.
    """
    na, nb = len(a), len(b)
    if na < 1 or nb < 1:
        raise ValueError("both samples need at least one value")
    pooled = sorted([(float(v), 0) for v in a] + [(float(v), 1) for v in b])
    ranks = [0.0] * len(pooled)
    tie_term = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for r in range(i, j + 1):
            ranks[r] = (i + j) / 2.0 + 1.0
        size = j - i + 1
        tie_term += size ** 3 - size
        i = j + 1
    rank_sum_b = sum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 1)
    u = rank_sum_b - nb * (nb + 1) / 2.0
    n = na + nb
    mean = na * nb / 2.0
    var = na * nb / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u, 0.5
    z = (u - mean - 0.5) / math.sqrt(var)
    return u, 1.0 - normal_cdf(z)


@dataclass(frozen=True)
class TimingTest:
    """A timing sample against a reference sample: slower by how much, how sure."""

    ratio: float  # median(new) / median(reference)
    p: float  # one-sided Mann-Whitney p that new is slower
    p_faster: float  # one-sided Mann-Whitney p that new is faster
    alpha: float
    min_effect: float

    @property
    def slower(self) -> bool:
        """Significant *and* at least ``min_effect`` slower: the check fails."""
        return self.p < self.alpha and self.ratio > 1.0 + self.min_effect

    @property
    def faster(self) -> bool:
        """Significantly faster by at least ``min_effect`` (reported as changed)."""
        return self.p_faster < self.alpha and self.ratio < 1.0 / (1.0 + self.min_effect)

    def describe(self) -> str:
        return (f"median ratio {self.ratio:.3f} (fails above {1 + self.min_effect:.2f}), "
                f"Mann-Whitney p = {self.p:.2g} (fails below {self.alpha:g})")


def timing_verdict(reference: Sequence[float], new: Sequence[float], *, alpha: float = ALPHA,
                   min_effect: float = 0.1) -> TimingTest:
    """Is ``new`` slower than ``reference``? Both are per-round samples (seconds or
    normalised ratios). Fails only when the rank test is significant at ``alpha`` and
    the median is more than ``min_effect`` (a fraction) above the reference's."""
    check_probability(alpha)
    if len(reference) < 2 or len(new) < 2:
        raise ValueError(f"need >= 2 rounds on each side; got {len(reference)} and {len(new)}")
    _, p = mann_whitney(reference, new)
    _, p_faster = mann_whitney(new, reference)
    ratio = statistics.median(new) / statistics.median(reference)
    return TimingTest(ratio, p, p_faster, alpha, min_effect)


def rounds_needed(effect: float, alpha: float = ALPHA, power: float = 0.9,
                  spread: float = 0.05) -> int:
    """Rounds per side for the rank test to detect a shift of ``effect`` (a fraction of the
    median) when rounds scatter with relative sd ``spread``: the t-test's count divided by
    the rank test's asymptotic efficiency 3/pi (for normal data; more for heavy tails)."""
    z = normal_quantile(1.0 - alpha) + normal_quantile(power)
    per_side = 2.0 * (z * spread / effect) ** 2 / (3.0 / math.pi)
    return max(5, math.ceil(per_side))


def describe(values: Sequence[float]) -> dict:
    """Median, robust spread (1.4826 x MAD: the sd for normal data) and rounds of a sample."""
    values = [float(v) for v in values]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return {"median": median, "spread": 1.4826 * mad, "rounds": len(values)}
