"""What a baseline check decides: entry keys, allowed bands, and a typed status.

This module is the rules' public face. It holds the bands of a single value and of a
power-checked sample and the judges over them; it re-exports the entry keys and checked
inputs (:mod:`pytest_rnn.store.keys`), the typed outcome (:mod:`pytest_rnn.store.verdicts`)
and the timing entries (:mod:`pytest_rnn.store.timing_rules`).

A tolerance is absolute in the metric's unit, or a fraction of ``|baseline|`` when
``relative``. Higher is better: a value passes when ``value >= baseline - tolerance``;
lower is better: ``value <= baseline + tolerance``; ``both``: within ``tolerance`` on
either side. Improvements pass. The tolerance and direction a test asks for must equal the stored
ones, or the entry is stale.

:func:`judge` turns a stored entry and a measured value into a :class:`Verdict`
whose :class:`Status` every consumer (the fixture, the terminal summary, the
benchmark table, the HTML report) reads as a value, never by parsing text.
Nothing here imports pytest.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping
from typing import Any

from pytest_rnn.store import stats
from pytest_rnn.store.keys import (
    DEFAULT_BACKEND,
    DIRECTION_OF,
    as_number,
    check_direction,
    check_metric_name,
    check_tolerance,
    entry_key,
    major_minor,
)
from pytest_rnn.store.timing_rules import (
    PROCESS_TEST,
    caught_slowdown,
    detectable_slowdown,
    judge_timing,
    process_distribution,
    process_error_rate,
    process_threshold,
    timing_calibration_fields,
    timing_rounds_fields,
    timing_test_spec,
)
from pytest_rnn.store.verdicts import Band, Status, Verdict, edge_text

__all__ = [
    "DEFAULT_BACKEND",
    "DIRECTION_OF",
    "LIMITS",
    "METHODS",
    "PROCESS_TEST",
    "SCALES",
    "Band",
    "Status",
    "Verdict",
    "as_number",
    "band",
    "calibration_fields",
    "caught_slowdown",
    "check_direction",
    "check_metric_name",
    "check_tolerance",
    "describe_tolerance",
    "detectable_slowdown",
    "edge_text",
    "entry_key",
    "judge",
    "judge_sample",
    "judge_timing",
    "limit_crossed",
    "limit_refusal",
    "major_minor",
    "process_distribution",
    "process_error_rate",
    "process_threshold",
    "sample_band",
    "sample_statistic",
    "sample_test_spec",
    "statistic_name",
    "timing_calibration_fields",
    "timing_rounds_fields",
    "timing_test_spec",
]


def band(baseline: float, tolerance: float, direction: str, relative: bool) -> Band:
    """The band of values that pass against ``baseline``."""
    allowed = tolerance * abs(baseline) if relative else tolerance
    low, high = -math.inf, math.inf
    if direction in ("higher", "both"):
        low = baseline - allowed
    if direction in ("lower", "both"):
        high = baseline + allowed
    return Band(low, high, edge_text(direction, low, high, ".6g"))


def describe_tolerance(tolerance: float, direction: str, relative: bool) -> str:
    unit = f"{tolerance:g} relative" if relative else f"{tolerance:g} absolute"
    way = {"higher": "higher is better", "lower": "lower is better", "both": "two-sided"}
    return f"tolerance {unit}, {way[direction]}"


def judge(stored: Mapping[str, Any] | None, value: float, *, tolerance: float,
          direction: str, relative: bool) -> Verdict:
    """Compare ``value`` with a stored entry (None: there is none)."""
    if stored is None:
        return Verdict(Status.MISSING, None, "no stored entry")
    was = describe_tolerance(stored["tolerance"], stored["direction"], stored["relative"])
    now = describe_tolerance(tolerance, direction, relative)
    if was != now:
        return Verdict(Status.STALE, None, f"it was recorded with {was}, the test now asks "
                                           f"for {now}")
    allowed = band(float(stored["value"]), tolerance, direction, relative)
    status = Status.OK if value in allowed else Status.FAIL
    return Verdict(status, allowed, now)


SCALES = {"linear": (lambda v: v, lambda v: v),
          "log2": (math.log2, lambda v: 2.0 ** v)}


def statistic_name(scale: str, k: int, method: str = "mean") -> str:
    """The statistic a sample check of ``k`` runs compares, by the one name its band, its
    messages, the terminal summary and the stored note use: ``mean of 4``, ``geometric
    mean of 2`` (``scale="log2"``: the mean of the logarithms, shown in the metric's unit),
    or ``U`` for the rank test."""
    if method == "rank":
        return "U"
    return f"{'mean' if scale == 'linear' else 'geometric mean'} of {k}"


def sample_statistic(values: list[float], scale: str) -> float:
    """The value of :func:`statistic_name`'s (geometric) mean of ``values``: the mean in the
    test's scale, shown in the metric's unit (the calibration's is its entry's ``value``)."""
    forward, back = SCALES[scale]
    return back(statistics.fmean(forward(v) for v in values))


#: How a sample is compared with its calibration: ``mean`` (:func:`stats.mean_test`, a
#: one-sided t-test of the mean of k runs; the most power for roughly normal metrics) or
#: ``rank`` (:func:`stats.rank_test`, the k runs' ranks among the n stored values; exact
#: for any distribution, so a long-tailed metric neither widens the band nor false-alarms).
METHODS = {"mean": "one-sided Student t, pooled variance (n+k-2 df)",
           "rank": "one-sided Mann-Whitney U, exact (k runs ranked among the n calibration "
                   "runs)"}


def sample_test_spec(direction: str, alpha: float, k: int, scale: str,
                     method: str = "mean") -> dict:
    """The ``test`` field of a power-checked entry (``method`` is stored when not the
    default, so entries calibrated before rank tests existed read as ``mean``)."""
    spec = {"name": METHODS[method], "direction": direction, "alpha": alpha, "k": k,
            "scale": scale}
    if method != "mean":
        spec["method"] = method
    return spec


def calibration_fields(raw_values: list[float], seeds: list[int], *, k: int, alpha: float,
                       direction: str, scale: str, note: str | None = None,
                       method: str = "mean") -> dict:
    """The derived fields of a power-checked entry calibrated on ``raw_values`` (one per
    seed, in the metric's unit): value, tolerance (the band's distance for ``k`` runs: the
    shift caught half the time), distribution (in the test's scale), test, and a note
    stating band and power. For ``method="rank"`` the shifts are simulated by moving the
    stored values (:func:`stats.rank_detectable_shift`, a fixed seed: reproducible)."""
    forward, back = SCALES[scale]
    distribution = stats.Distribution.of([forward(v) for v in raw_values], seeds)
    band = sample_band(distribution, k, alpha, direction, scale, method)
    if method == "rank":
        shift = stats.rank_detectable_shift(distribution.values, k, alpha, 0.9,
                                            direction=direction)
        half = stats.rank_detectable_shift(distribution.values, k, alpha, 0.5,
                                           direction=direction)
        worse = half if direction == "lower" else -half
        tolerance = abs(back(distribution.mean) - back(distribution.mean + worse))
    else:
        edge = band.low if direction != "lower" else band.high
        shift = stats.detectable_shift(distribution, k, alpha, 0.9)
        tolerance = abs(back(distribution.mean) - edge)
    unit = f" log2 units (x {2 ** shift:.2f})" if scale == "log2" else ""
    values = ", ".join(f"{v:.4g}" for v in raw_values)
    return {
        "value": back(distribution.mean),
        "tolerance": tolerance,
        "distribution": distribution.to_json(),
        "test": sample_test_spec(direction, alpha, k, scale, method),
        "note": (f"{'' if note is None else note + '; '}calibrated on {len(raw_values)} "
                 f"seeds: {values} ({statistic_name(scale, len(raw_values))} = "
                 f"{back(distribution.mean):.4g}, the value); band for k = {k} at alpha = "
                 f"{alpha:g}: {band.text}; "
                 f"smallest shift detected with 90% power: {shift:.3g}{unit}"),
    }


@functools.lru_cache(maxsize=256)
def sample_band(distribution: stats.Distribution, k: int, alpha: float, direction: str,
                scale: str, method: str = "mean") -> Band:
    """The band a mean of ``k`` runs must fall in (shown in the metric's own unit); for
    ``method="rank"`` the band is on U, the number of (new, stored) pairs in which the new
    run is better (ties count one half), and its edges in the metric's unit are open.
    Cached (both are immutable): a stored entry's band is asked again for every sample
    judged against it, a thousand times per check in a power simulation."""
    if method == "rank":
        critical = stats.rank_critical_u(distribution.n, k, alpha)
        most = k * distribution.n
        edge = edge_text(direction, critical + 1, most - critical - 1, "d")
        return Band(-math.inf, math.inf, f"U {edge} of {most} pairs (new, stored) of {k} x "
                                         f"{distribution.n} with the new run higher")
    return _mean_band(stats.lower_bound(distribution, k, alpha),
                      stats.upper_bound(distribution, k, alpha), k, direction, scale)


#: The limits a power-checked band may not admit, by the name a test passes them under
#: (:meth:`Baselines.check_sample <pytest_rnn.plugin.baselines.Baselines.check_sample>`'s
#: ``chance=`` and ``budget=``) and how a refusal names them.
LIMITS = {"chance": "chance level", "budget": "the training budget"}


def limit_crossed(distribution: stats.Distribution, limits: Mapping[str, float], *, k: int,
                  alpha: float, direction: str, scale: str, method: str = "mean") -> str:
    """Which of ``limits`` (:data:`LIMITS`: a score that ignores the sequence, an epoch
    count the run cannot exceed) the band of ``k`` runs calibrated on ``distribution``
    admits, as "admits chance level 0.1667" ("" when none): a band that passes a model
    which learns nothing, or one that never converges, is a check that cannot fail for
    the thing it names. A limit is admitted when ``k`` runs all at that value would pass:
    inside the t-test's band (``method="mean"``), or not ranked low enough among the
    stored runs (``method="rank"``)."""
    forward = SCALES[scale][0]
    crossed = []
    for name, limit in limits.items():
        if name not in LIMITS:
            raise ValueError(f"unknown limit {name!r}; accepted: {', '.join(LIMITS)}")
        value = as_number(name, limit)
        if scale == "log2" and value <= 0:
            raise ValueError(f"{name} must be > 0 on a log2 scale; got {limit!r}")
        if method == "rank":
            result = stats.rank_test([forward(value)] * k, distribution.values, alpha)
            worse = {"higher": result.below, "lower": result.above,
                     "both": result.below or result.above}[direction]
            admitted = not worse
        else:
            admitted = value in sample_band(distribution, k, alpha, direction, scale)
        if admitted:
            crossed.append(f"admits {LIMITS[name]} {value:.4g}")
    return " and ".join(crossed)


def limit_refusal(distribution: stats.Distribution, limits: Mapping[str, float], *, k: int,
                  alpha: float, direction: str, scale: str, method: str = "mean") -> str:
    """Why the band of ``k`` runs calibrated on ``distribution`` may not be used, in one
    line ("" when it admits none of ``limits``, :func:`limit_crossed`): the band, the limit
    it admits and what would narrow it. Refused when calibrating, stale when stored."""
    crossed = limit_crossed(distribution, limits, k=k, alpha=alpha, direction=direction,
                            scale=scale, method=method)
    if not crossed:
        return ""
    band = sample_band(distribution, k, alpha, direction, scale, method)
    in_log = " in log2" if scale == "log2" else ""
    return (f"its band for k = {k} at alpha = {alpha:g}, {band.text}, {crossed}: it cannot "
            f"fail a model that learns nothing or never converges; calibrate runs that "
            f"scatter less (sd {distribution.sd:.3g}{in_log}) or check more runs (k)")


def _mean_band(low: float, high: float, k: int, direction: str, scale: str) -> Band:
    """The band of a mean of ``k`` runs whose edges are ``low`` and ``high`` in the test's
    scale, shown in the metric's own unit (open on the better side)."""
    back = SCALES[scale][1]
    low = back(low) if direction != "lower" else -math.inf
    high = back(high) if direction != "higher" else math.inf
    edge = edge_text(direction, low, high, ".4g")
    return Band(low, high, f"{statistic_name(scale, k)} {edge}")


def judge_sample(stored: Mapping[str, Any] | None, values: list[float], *, alpha: float,
                 direction: str, scale: str, method: str = "mean",
                 limits: Mapping[str, float] | None = None) -> Verdict:
    """A sample of ``k`` runs against a stored calibration distribution, by ``method``
    (:data:`METHODS`).

    An entry whose band for ``k`` runs admits one of ``limits`` (:func:`limit_crossed`) is
    STALE, whatever the runs: it must be recalibrated, not trusted.

    Worse side beyond the band (p < ``alpha``): FAIL. Better side beyond the mirrored band
    (p < ``alpha``): CHANGED, which passes (an improvement, or a behaviour change such as
    dropout that vanished; the summary lists it). ``direction="both"`` fails either way.
    """
    if stored is None:
        return Verdict(Status.MISSING, None, "no stored entry")
    if "distribution" not in stored:
        return Verdict(Status.STALE, None, "it was recorded as a single value; the test now "
                                           "compares a sample with a calibration distribution")
    test = stored["test"]
    asked = (direction, scale, method)
    recorded = (test.get("direction", direction), test.get("scale", "linear"),
                test.get("method", "mean"))
    if recorded != asked:
        return Verdict(Status.STALE, None, "it was recorded with direction {!r}, scale {!r}, "
                                           "method {!r}; the test now asks for {!r}, {!r}, "
                                           "{!r}".format(*recorded, *asked))
    reference = stats.Distribution.from_json(stored["distribution"])
    if method == "rank" and reference.n != len(reference.values):
        return Verdict(Status.STALE, None, "its distribution keeps no per-seed values, which "
                                           "the rank test ranks the new runs among")
    refusal = limit_refusal(reference, limits or {}, k=len(values), alpha=alpha,
                            direction=direction, scale=scale, method=method)
    if refusal:
        return Verdict(Status.STALE, None, refusal)
    forward, back = SCALES[scale]
    k = len(values)
    in_log = " in log2" if scale == "log2" else ""
    moved = ""
    if method == "rank":
        result = stats.rank_test([forward(v) for v in values], reference.values, alpha)
        allowed = sample_band(reference, k, alpha, direction, scale, method)
        measured, center = result.u, result.u_max / 2  # unchanged runs win half the pairs
        shown = f"U = {result.u:g} of {result.u_max}"
        what = (f"exact one-sided Mann-Whitney test of {k} runs ranked among {reference.n} "
                f"calibration runs (median {back(statistics.median(reference.values)):.4g}"
                f"{in_log})")
    else:
        result = stats.mean_test([forward(v) for v in values], reference, alpha)
        # the band for this sample's pooled variance (the stored one when it scatters as
        # the calibration did)
        allowed = _mean_band(result.low, result.high, k, direction, scale)
        measured, center = back(result.mean), back(reference.mean)
        shown = f"t = {result.t:.2f}, df = {result.df:.3g}"
        what = (f"one-sided t-test of the mean of {k} runs{in_log} against {reference.n} "
                f"calibration runs ({statistic_name(scale, reference.n)} = {center:.4g}, "
                f"sd {reference.sd:.3g}{in_log})")
        moved = _band_moved(stored, allowed, [forward(v) for v in values], reference,
                            alpha, direction, scale)
    worse = {"higher": result.below, "lower": result.above,
             "both": result.below or result.above}[direction]
    better = {"higher": result.above, "lower": result.below, "both": False}[direction]
    p = {"higher": result.p_low, "lower": result.p_high,
         "both": 2 * min(result.p_low, result.p_high)}[direction]
    detail = f"{what}: {shown}, p = {p:.2g}, alpha = {alpha:g}"
    status = Status.FAIL if worse else Status.CHANGED if better else Status.OK
    return Verdict(status, allowed, detail, measured, center, moved)


def _band_moved(stored: Mapping[str, Any], now: Band, scaled: list[float],
                reference: stats.Distribution, alpha: float, direction: str,
                scale: str) -> str:
    """Why and by how much a t-test's band ``now`` differs from the one its entry's note
    states (for the entry's ``k`` and ``alpha``, runs that scatter as the calibration did);
    "" when they read the same. :func:`stats.mean_test` pools the calibration's variance
    with the new runs', so the band moves with every sample's spread."""
    test = stored["test"]
    stored_k, stored_alpha = int(test["k"]), float(test["alpha"])
    recorded = sample_band(reference, stored_k, stored_alpha, direction, scale)
    if recorded.text == now.text:
        return ""
    shifts = [f"{new - old:+.4g}" for new, old, side in (
        (now.low, recorded.low, "higher"), (now.high, recorded.high, "lower"))
        if direction in (side, "both")]
    k, in_log = len(scaled), " in log2" if scale == "log2" else ""
    why = []
    if k >= 2:
        sd = stats.sample_sd(scaled)
        why.append(f"it pools the calibration's variance with these {k} runs' (sd "
                   f"{sd:.3g} against {reference.sd:.3g}{in_log}), so runs that scatter "
                   "more widen it")
    if stored_k != k:
        why.append(f"it was calibrated for k = {stored_k} runs, not {k}")
    if stored_alpha != alpha:
        why.append(f"it was calibrated at alpha = {stored_alpha:g}, not {alpha:g}")
    return (f"the band moved from {recorded.text} when calibrated to {now.text} now "
            f"({' and '.join(shifts)}): {'; '.join(why)}")

