"""What a baseline check decides: entry keys, allowed bands, and a typed status.

An entry key is ``<test id>::<metric>``, plus ``::device=<key>`` for values that
depend on the hardware, ``::tf=<M.m>::keras=<M.m>`` for values that depend on
the versions, and ``::backend=<name>`` for values that depend on the Keras backend
(JAX, PyTorch; TensorFlow, the default every entry was recorded on before backends were
keyed, adds nothing, so those entries keep their keys). A tolerance is absolute in the
metric's unit, or a fraction of ``|baseline|`` when ``relative``. Higher is better: a
value passes when ``value >= baseline - tolerance``; lower is better:
``value <= baseline + tolerance``; ``both``: within ``tolerance`` on either side.
Improvements pass. The tolerance and direction a test asks for must equal the stored
ones, or the entry is stale.

:func:`judge` turns a stored entry and a measured value into a :class:`Verdict`
whose :class:`Status` every consumer (the fixture, the terminal summary, the
benchmark table, the HTML report) reads as a value, never by parsing text.
Nothing here imports pytest.
"""

from __future__ import annotations

import enum
import math
import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_rnn.store import stats
from pytest_rnn.store.files import DIRECTIONS, is_number

#: ``higher_is_better`` argument -> stored direction.
DIRECTION_OF = {True: "higher", False: "lower", None: "both"}
_METRIC_RE = re.compile(r"^[A-Za-z0-9_.\-/%]+$")


class Status(str, enum.Enum):
    """The outcome of one baseline check, as summaries and reports show it."""

    OK = "ok"  # within the stored band
    CHANGED = "changed"  # far on the good side of a power-checked band: passes, reported
    FAIL = "FAIL"  # outside the stored band (or not finite)
    MISSING = "MISSING"  # no stored entry
    STALE = "STALE"  # stored with another tolerance or direction
    RECORDED = "recorded"  # --rnn-update-baselines: recorded, written at session end
    NOT_RECORDED = "SKIPPED"  # recording asked for, but the test failed
    NOT_WRITTEN = "NOT WRITTEN"  # recorded, but writing the file failed
    UNREADABLE = "UNREADABLE"  # the baseline file is corrupt

    @property
    def passed(self) -> bool:
        return self in (Status.OK, Status.CHANGED, Status.RECORDED)


@dataclass(frozen=True)
class Band:
    """The values that pass against a baseline."""

    low: float
    high: float
    text: str  # e.g. ">= 0.7823"

    def __contains__(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class Verdict:
    status: Status
    band: Band | None
    detail: str  # the reason, for the failure message


def major_minor(version: str | None) -> str:
    if not version:
        return "none"
    return ".".join(version.split(".")[:2])


#: The Keras backend whose entries carry no ``::backend=`` part.
DEFAULT_BACKEND = "tensorflow"


def entry_key(test_id: str, metric: str, *, device_key: str | None = None,
              versions: Mapping[str, str | None] | None = None,
              backend: str | None = None) -> str:
    """``<test id>::<metric>[::device=<key>][::tf=<M.m>::keras=<M.m>][::backend=<name>]``;
    no backend part for ``backend`` None or :data:`DEFAULT_BACKEND`."""
    parts = [test_id, metric]
    if device_key is not None:
        parts.append(f"device={device_key}")
    if versions is not None:
        parts.append(f"tf={major_minor(versions.get('tensorflow'))}")
        parts.append(f"keras={major_minor(versions.get('keras'))}")
    if backend is not None and backend != DEFAULT_BACKEND:
        parts.append(f"backend={backend}")
    return "::".join(parts)


def band(baseline: float, tolerance: float, direction: str, relative: bool) -> Band:
    """The band of values that pass against ``baseline``."""
    allowed = tolerance * abs(baseline) if relative else tolerance
    low, high = -math.inf, math.inf
    if direction in ("higher", "both"):
        low = baseline - allowed
    if direction in ("lower", "both"):
        high = baseline + allowed
    return Band(low, high, edge_text(direction, low, high, ".6g"))


def edge_text(direction: str, low: float, high: float, spec: str) -> str:
    """How a band reads: ``>= low``, ``<= high`` or ``in [low, high]`` (``spec`` formats
    the numbers)."""
    if direction == "higher":
        return f">= {low:{spec}}"
    if direction == "lower":
        return f"<= {high:{spec}}"
    return f"in [{low:{spec}}, {high:{spec}}]"


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
                 f"seeds: {values}; band for k = {k} at alpha = {alpha:g}: {band.text}; "
                 f"smallest shift detected with 90% power: {shift:.3g}{unit}"),
    }


def sample_band(distribution: stats.Distribution, k: int, alpha: float, direction: str,
                scale: str, method: str = "mean") -> Band:
    """The band a mean of ``k`` runs must fall in (shown in the metric's own unit); for
    ``method="rank"`` the band is on U, the number of (new, stored) pairs in which the new
    run is better (ties count one half), and its edges in the metric's unit are open."""
    if method == "rank":
        critical = stats.rank_critical_u(distribution.n, k, alpha)
        most = k * distribution.n
        edge = edge_text(direction, critical + 1, most - critical - 1, "d")
        return Band(-math.inf, math.inf, f"U {edge} of {most} pairs (new, stored) of {k} x "
                                         f"{distribution.n} with the new run higher")
    return _mean_band(stats.lower_bound(distribution, k, alpha),
                      stats.upper_bound(distribution, k, alpha), k, direction, scale)


def _mean_band(low: float, high: float, k: int, direction: str, scale: str) -> Band:
    """The band of a mean of ``k`` runs whose edges are ``low`` and ``high`` in the test's
    scale, shown in the metric's own unit (open on the better side)."""
    back = SCALES[scale][1]
    low = back(low) if direction != "lower" else -math.inf
    high = back(high) if direction != "higher" else math.inf
    what = "mean" if scale == "linear" else "geometric mean"
    return Band(low, high, f"{what} of {k} {edge_text(direction, low, high, '.4g')}")


def judge_sample(stored: Mapping[str, Any] | None, values: list[float], *, alpha: float,
                 direction: str, scale: str, method: str = "mean") -> Verdict:
    """A sample of ``k`` runs against a stored calibration distribution, by ``method``
    (:data:`METHODS`).

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
    forward, back = SCALES[scale]
    k = len(values)
    in_log = " in log2" if scale == "log2" else ""
    if method == "rank":
        result = stats.rank_test([forward(v) for v in values], reference.values, alpha)
        allowed = sample_band(reference, k, alpha, direction, scale, method)
        shown = f"U = {result.u:g} of {result.u_max}"
        what = (f"exact one-sided Mann-Whitney test of {k} runs ranked among {reference.n} "
                f"calibration runs (median {back(statistics.median(reference.values)):.4g}"
                f"{in_log})")
    else:
        result = stats.mean_test([forward(v) for v in values], reference, alpha)
        # the band for this sample's pooled variance (the stored one when it scatters as
        # the calibration did)
        allowed = _mean_band(result.low, result.high, k, direction, scale)
        shown = f"t = {result.t:.2f}, df = {result.df:.3g}"
        what = (f"one-sided t-test of the mean of {k} runs against {reference.n} calibration "
                f"runs (mean {back(reference.mean):.4g}, sd {reference.sd:.3g}{in_log})")
    worse = {"higher": result.below, "lower": result.above,
             "both": result.below or result.above}[direction]
    better = {"higher": result.above, "lower": result.below, "both": False}[direction]
    p = {"higher": result.p_low, "lower": result.p_high,
         "both": 2 * min(result.p_low, result.p_high)}[direction]
    detail = f"{what}: {shown}, p = {p:.2g}, alpha = {alpha:g}"
    status = Status.FAIL if worse else Status.CHANGED if better else Status.OK
    return Verdict(status, allowed, detail)


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


def timing_calibration_fields(samples: list[list[float]], *, alpha: float, slowdown: float,
                              note: str | None = None) -> dict:
    """The fields of a timing entry calibrated on ``samples``, one list of per-round
    values per process (at least 3 processes of at least 5 rounds each, the same count),
    for a check that catches ``slowdown`` (a fraction).

    ``distribution`` keeps the rounds of all processes (concatenated in order: what the
    rank test compares with) with their median, spread and rounds per process, and
    ``processes``, the log2 medians of each process. The minimum effect is derived, not
    typed: :func:`process_threshold` over the pooled median; the note states the false
    alarm and miss rate at it (:func:`process_error_rate`).
    """
    if not 0 < slowdown < 1:
        raise ValueError(f"slowdown must be a fraction in (0, 1); got {slowdown!r}")
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
                 min_effect: float | None, slowdown: float = 0.2) -> Verdict:
    """Per-round timings (or normalised ratios; lower is better) against the stored rounds.

    FAIL when the rank test says slower at ``alpha`` *and* the median is more than
    ``min_effect`` above the stored median; CHANGED (passes) when faster by as much.
    ``min_effect=None``: the entry must be calibrated over processes for ``slowdown``
    (:func:`timing_calibration_fields`) and the effect is derived from them.
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


def check_metric_name(metric: Any) -> str:
    if not isinstance(metric, str) or not _METRIC_RE.match(metric):
        raise ValueError(
            f"metric must be a non-empty name of letters, digits and '_.-/%' (no '::' or "
            f"spaces); got {metric!r}"
        )
    return metric


def check_tolerance(tolerance: Any) -> float:
    try:
        number = as_number("tolerance", tolerance)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    return number


def check_direction(higher_is_better: Any) -> str:
    if higher_is_better not in DIRECTION_OF:
        raise ValueError(
            f"higher_is_better must be True, False or None (two-sided); got {higher_is_better!r}"
        )
    direction = DIRECTION_OF[higher_is_better]
    assert direction in DIRECTIONS
    return direction


def as_number(name: str, value: Any) -> float:
    """``value`` as a float: a Python or NumPy real, or a 0-d/one-element array or tensor.

    Keras, TensorFlow, JAX and PyTorch scalars all convert through ``__array__`` or
    ``.numpy()``/``.item()``. Anything else is a ``ValueError`` naming ``name`` and
    what is accepted.
    """
    if is_number(value):
        return float(value)
    accepted = ("a real number, a NumPy scalar, or a 0-d array/tensor (Keras, TensorFlow, "
                "JAX, PyTorch)")
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")
    try:
        import numpy as np

        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except Exception:  # noqa: BLE001 - any failure to convert is the same bad input
        raise ValueError(f"{name} must be {accepted}; got {type(value).__name__}") from None
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be {accepted}; got {type(value).__name__} of shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    return float(array.reshape(()))
