"""Timing entries: their fields, recorded from one process or calibrated over several, and
:func:`judge_timing`, which judges a new sample of per-round timings against them.

Lower is better. One process's rounds are judged with a fixed minimum effect; an entry
calibrated over processes derives its minimum effect from the spread between the
processes' medians (:func:`process_threshold`, :func:`process_error_rate`). The
statistics are :mod:`pytest_rnn.store.timing_stats`'s. Re-exported by
:mod:`pytest_rnn.store.rules`; no pytest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any

from pytest_rnn.store import stats
from pytest_rnn.store.verdicts import Band, Status, Verdict

__all__ = [
    "PROCESS_TEST",
    "caught_slowdown",
    "detectable_slowdown",
    "judge_timing",
    "process_distribution",
    "process_error_rate",
    "process_threshold",
    "timing_calibration_fields",
    "timing_rounds_fields",
    "timing_test_spec",
]


def timing_test_spec(alpha: float, rounds: int, min_effect: float,
                     processes: int | None = None, slowdown: float | None = None) -> dict:
    """The ``test`` field of a timing entry (lower is better); ``processes`` and
    ``slowdown`` for an entry calibrated over processes to catch that slowdown, whose
    ``min_effect`` is derived (:func:`process_threshold`)."""
    if processes is None:
        return {"name": "Mann-Whitney U (normal approx.) + minimum effect on the median ratio",
                "direction": "lower", "alpha": alpha, "k": rounds, "scale": "linear",
                "min_effect": min_effect}
    return {"name": PROCESS_TEST, "direction": "lower", "alpha": alpha, "k": rounds,
            "scale": "log2", "processes": processes, "slowdown": slowdown,
            "min_effect": min_effect}


def timing_rounds_fields(values: list[float], *, alpha: float, min_effect: float,
                         note: str | None = None) -> dict:
    """The fields of a timing entry recorded from one sample of per-round ``values``,
    judged with a fixed ``min_effect`` (:func:`judge_timing`)."""
    summary = stats.describe(values)
    return {
        "value": summary["median"],
        "tolerance": min_effect,
        "direction": "lower",
        "relative": True,
        "distribution": {**stats.Distribution.of(values).to_json(), **summary},
        "test": timing_test_spec(alpha, len(values), min_effect),
        "note": (f"{'' if note is None else note + '; '}median {summary['median']:.4g}, "
                 f"spread (1.4826 MAD) {summary['spread']:.3g} over {len(values)} rounds; "
                 f"fails when Mann-Whitney p < {alpha:g} and the median is > "
                 f"{min_effect:.0%} above this one"),
    }


#: How a timing entry calibrated over processes judges a new process's rounds.
PROCESS_TEST = ("Mann-Whitney U (normal approx.) of the rounds + the median against the "
                "midpoint (log2) between the calibrated processes' and a slowed one's")


def process_distribution(samples: list[list[float]]) -> stats.Distribution:
    """The log2 medians of ``samples`` (each one process's rounds): how far a process's
    median lands from another's, which a stored sample from one process cannot show."""
    return stats.Distribution.of([math.log2(statistics.median(s)) for s in samples])


def process_threshold(medians: stats.Distribution, slowdown: float) -> float:
    """Where a check sized for ``slowdown`` (a fraction) puts its threshold: halfway, on
    the log scale, between the calibrated processes' geometric-mean median and that median
    ``slowdown`` slower, so an unchanged process and a slowed one are equally far from it
    (in units of the spread between processes) and both error rates are as small as that
    spread allows (:func:`process_error_rate`). In the timing's unit."""
    return 2.0 ** (medians.mean + math.log2(1.0 + slowdown) / 2.0)


def process_error_rate(medians: stats.Distribution, slowdown: float) -> float:
    """The chance that one more process lands on the wrong side of
    :func:`process_threshold`: an unchanged one above it (a false alarm) or one
    ``slowdown`` slower below it (a miss), the same by construction. One-sided Student t
    prediction with n - 1 df on the log2 medians (the spread of the calibration's
    processes, and the uncertainty of their mean)."""
    if medians.sd <= 0:
        return 0.0
    margin = math.log2(1.0 + slowdown) / 2.0
    return 1.0 - stats.t_cdf(margin / (medians.sd * math.sqrt(1.0 + 1.0 / medians.n)),
                             medians.n - 1)


def caught_slowdown(medians: stats.Distribution, slowdown: float, power: float) -> float:
    """The slowdown (a fraction) that a check sized for ``slowdown`` catches in a single
    process with probability ``power``: its median lands above :func:`process_threshold`
    that often, by the spread between the calibration's processes (one-sided Student t
    prediction, as :func:`process_error_rate`)."""
    stats.check_probability(power)
    spread = medians.sd * math.sqrt(1.0 + 1.0 / medians.n)
    margin = math.log2(1.0 + slowdown) / 2.0 + stats.t_quantile(power, medians.n - 1) * spread
    return 2.0 ** margin - 1.0


def detectable_slowdown(medians: stats.Distribution, alpha: float) -> float:
    """The smallest slowdown (a fraction; 1.0 is twice as slow) that a check at
    :func:`process_threshold` tells from an unchanged process with both error rates at most
    ``alpha``, by the spread between the calibration's processes
    (:func:`process_error_rate` solved for the slowdown). Where a host's processes scatter
    widely (a shared GPU's launch overhead) it is large, and says so, instead of a typed
    slowdown the spread cannot support."""
    if medians.n < 2 or not medians.sd > 0:
        raise ValueError(f"need >= 2 processes whose medians differ to measure their "
                         f"spread; got {medians.n} with sd {medians.sd!r}")
    margin = stats.t_quantile(1.0 - alpha, medians.n - 1) * medians.sd * math.sqrt(
        1.0 + 1.0 / medians.n)
    return 2.0 ** (2.0 * margin) - 1.0


def timing_calibration_fields(samples: list[list[float]], *, alpha: float, slowdown: float,
                              note: str | None = None) -> dict:
    """The fields of a timing entry calibrated on ``samples``, one list of per-round
    values per process (at least 3 processes of at least 5 rounds each, the same count),
    for a check that catches ``slowdown`` (a fraction).

    ``distribution`` keeps the rounds of all processes (concatenated in order: what the
    rank test compares with) with their median, spread and rounds per process, and
    ``processes``, the log2 medians of each process. The minimum effect is derived, not
    typed: :func:`process_threshold` over the pooled median; the note states the false
    alarm and miss rate at it (:func:`process_error_rate`). ``slowdown`` may exceed 1 (a
    :func:`detectable_slowdown` of a widely scattering host).
    """
    if not (math.isfinite(slowdown) and slowdown > 0):
        raise ValueError(f"slowdown must be a positive fraction; got {slowdown!r}")
    counts = {len(s) for s in samples}
    if len(samples) < 3 or len(counts) != 1 or min(counts) < 5:
        raise ValueError(f"need >= 3 processes of the same number (>= 5) of rounds; got "
                         f"{[len(s) for s in samples]}")
    pooled = [float(v) for s in samples for v in s]
    bad = [v for v in pooled if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"rounds must be positive and finite; got {len(bad)} that are not "
                         f"(first {bad[0]!r})")
    medians = process_distribution(samples)
    summary = {**stats.describe(pooled), "rounds": len(samples[0])}
    threshold = process_threshold(medians, slowdown)
    min_effect = threshold / summary["median"] - 1.0
    errors = process_error_rate(medians, slowdown)
    return {
        "value": summary["median"],
        "tolerance": min_effect,
        "direction": "lower",
        "relative": True,
        "distribution": {**stats.Distribution.of(pooled).to_json(), **summary,
                         "processes": medians.to_json()},
        "test": timing_test_spec(alpha, len(samples[0]), min_effect, len(samples), slowdown),
        "note": (f"{'' if note is None else note + '; '}median {summary['median']:.4g} over "
                 f"{len(samples)} processes of {len(samples[0])} rounds; between processes "
                 f"the median varies by {2 ** medians.sd - 1:.1%} (sd); fails when "
                 f"Mann-Whitney p < {alpha:g} and the median is above {threshold:.4g} "
                 f"(+{min_effect:.1%}, halfway to {slowdown:.0%} slower); by that spread an "
                 f"unchanged process fails, and one {slowdown:.0%} slower passes, with "
                 f"probability {errors:.2g} each"),
    }


def judge_timing(stored: Mapping[str, Any] | None, values: list[float], *, alpha: float,
                 min_effect: float | None, slowdown: float | None = 0.2) -> Verdict:
    """Per-round timings (or normalised ratios; lower is better) against the stored rounds.

    FAIL when the rank test says slower at ``alpha`` *and* the median is more than
    ``min_effect`` above the stored median; CHANGED (passes) when faster by as much.
    ``min_effect=None``: the entry must be calibrated over processes for ``slowdown``
    (:func:`timing_calibration_fields`) and the effect is derived from them;
    ``slowdown=None`` accepts the slowdown the calibration derived from its own spread
    (:func:`detectable_slowdown`).
    """
    if stored is None:
        return Verdict(Status.MISSING, None, "no stored entry")
    test = stored.get("test")
    if not test or test.get("min_effect") is None:
        return Verdict(Status.STALE, None, "it was recorded without per-round samples")
    reference = stored["distribution"]["values"]
    median = stats.describe(reference)["median"]
    if min_effect is None:
        if "processes" not in stored["distribution"]:
            return Verdict(Status.STALE, None, "it was recorded from one process; the check "
                                               "derives its minimum effect from the spread "
                                               "between processes")
        if slowdown is None and test.get("slowdown") is not None:
            slowdown = float(test["slowdown"])
        if (test["alpha"], test.get("slowdown")) != (alpha, slowdown):
            return Verdict(Status.STALE, None, f"it was calibrated with alpha "
                                               f"{test['alpha']:g} for a slowdown of "
                                               f"{test.get('slowdown')}; the test now asks for "
                                               f"{alpha:g}, {slowdown:g}")
        medians = stats.Distribution.from_json(stored["distribution"]["processes"])
        min_effect = process_threshold(medians, slowdown) / median - 1.0
        basis = (f"; between {medians.n} calibration processes the median varied by "
                 f"{2 ** medians.sd - 1:.1%} (sd): an unchanged process fails, and one "
                 f"{slowdown:.0%} slower passes, with probability "
                 f"{process_error_rate(medians, slowdown):.2g} each")
    elif (test["alpha"], test["min_effect"]) != (alpha, min_effect):
        return Verdict(Status.STALE, None, f"it was recorded with alpha {test['alpha']:g}, "
                                           f"minimum effect {test['min_effect']:g}; the test "
                                           f"now asks for {alpha:g}, {min_effect:g}")
    else:
        basis = ""
    result = stats.timing_verdict(reference, values, alpha=alpha, min_effect=min_effect)
    allowed = Band(-math.inf, median * (1 + min_effect),
                   f"median <= {median * (1 + min_effect):.4g} or Mann-Whitney p >= {alpha:g}")
    detail = (f"{len(values)} rounds against {len(reference)} stored: "
              f"{result.describe()}{basis}")
    status = Status.FAIL if result.slower else Status.CHANGED if result.faster else Status.OK
    return Verdict(status, allowed, detail)
