"""What a baseline check decides, as values: :class:`Status`, :class:`Band`, :class:`Verdict`.

Every consumer (the fixture, the terminal summary, the benchmark table, the HTML report)
reads a check's :class:`Status` as a value, never by parsing text; :func:`edge_text` is
how a band reads in messages and notes. Re-exported by :mod:`pytest_rnn.store.rules`;
no pytest.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Band", "Status", "Verdict", "edge_text"]


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
    #: A sample check's statistic (the mean or geometric mean of its runs, or the rank
    #: test's U) and its value for unchanged runs: what the message, the summary and the
    #: stored note name; None for other checks.
    measured: float | None = None
    center: float | None = None
    #: How the band differs from the one stored at calibration, and why ("" if it does not).
    moved: str = ""


def edge_text(direction: str, low: float, high: float, spec: str) -> str:
    """How a band reads: ``>= low``, ``<= high`` or ``in [low, high]`` (``spec`` formats
    the numbers)."""
    if direction == "higher":
        return f">= {low:{spec}}"
    if direction == "lower":
        return f"<= {high:{spec}}"
    return f"in [{low:{spec}}, {high:{spec}}]"

