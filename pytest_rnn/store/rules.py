"""What a baseline check decides: entry keys, allowed bands, and a typed status.

An entry key is ``<test id>::<metric>``, plus ``::device=<key>`` for values that
depend on the hardware and ``::tf=<M.m>::keras=<M.m>`` for values that depend on
the versions. A tolerance is absolute in the metric's unit, or a fraction of
``|baseline|`` when ``relative``. Higher is better: a value passes when
``value >= baseline - tolerance``; lower is better: ``value <= baseline + tolerance``;
``both``: within ``tolerance`` on either side. Improvements pass. The tolerance
and direction a test asks for must equal the stored ones, or the entry is stale.

:func:`judge` turns a stored entry and a measured value into a :class:`Verdict`
whose :class:`Status` every consumer (the fixture, the terminal summary, the
benchmark table, the HTML report) reads as a value, never by parsing text.
Nothing here imports pytest.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_rnn.store.files import DIRECTIONS, is_number

#: ``higher_is_better`` argument -> stored direction.
DIRECTION_OF = {True: "higher", False: "lower", None: "both"}
_METRIC_RE = re.compile(r"^[A-Za-z0-9_.\-/%]+$")


class Status(str, enum.Enum):
    """The outcome of one baseline check, as summaries and reports show it."""

    OK = "ok"  # within the stored band
    FAIL = "FAIL"  # outside the stored band (or not finite)
    MISSING = "MISSING"  # no stored entry
    STALE = "STALE"  # stored with another tolerance or direction
    RECORDED = "recorded"  # --rnn-update-baselines: recorded, written at session end
    NOT_RECORDED = "SKIPPED"  # recording asked for, but the test failed
    NOT_WRITTEN = "NOT WRITTEN"  # recorded, but writing the file failed
    UNREADABLE = "UNREADABLE"  # the baseline file is corrupt

    @property
    def passed(self) -> bool:
        return self in (Status.OK, Status.RECORDED)


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


def entry_key(test_id: str, metric: str, *, device_key: str | None = None,
              versions: Mapping[str, str | None] | None = None) -> str:
    """``<test id>::<metric>[::device=<key>][::tf=<M.m>::keras=<M.m>]``."""
    parts = [test_id, metric]
    if device_key is not None:
        parts.append(f"device={device_key}")
    if versions is not None:
        parts.append(f"tf={major_minor(versions.get('tensorflow'))}")
        parts.append(f"keras={major_minor(versions.get('keras'))}")
    return "::".join(parts)


def band(baseline: float, tolerance: float, direction: str, relative: bool) -> Band:
    """The band of values that pass against ``baseline``."""
    allowed = tolerance * abs(baseline) if relative else tolerance
    low, high = -math.inf, math.inf
    if direction in ("higher", "both"):
        low = baseline - allowed
    if direction in ("lower", "both"):
        high = baseline + allowed
    if direction == "higher":
        text = f">= {low:.6g}"
    elif direction == "lower":
        text = f"<= {high:.6g}"
    else:
        text = f"in [{low:.6g}, {high:.6g}]"
    return Band(low, high, text)


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
