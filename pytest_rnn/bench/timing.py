"""Timing arithmetic: one benchmark's statistics, speedups and per-step cost ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pytest_rnn.bench.cases import MAC_RATIO_TO_LSTM


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one benchmark (pytest-benchmark's statistics)."""

    median: float
    mean: float
    stddev: float
    min: float
    rounds: int
    #: Seconds per call of each round, in the order they ran (pytest-benchmark's data).
    data: tuple[float, ...] = ()

    @classmethod
    def from_benchmark(cls, benchmark: Any) -> Timing | None:
        """The timing of a benchmark fixture that has run; None if it took none."""
        from pytest_rnn.adapters.benchmark_internals import round_statistics

        stats = round_statistics(benchmark)
        if stats is None:
            return None
        return cls(median=float(stats["median"]), mean=float(stats["mean"]),
                   stddev=float(stats["stddev"]), min=float(stats["min"]),
                   rounds=int(stats["rounds"]), data=tuple(float(v) for v in stats["data"]))


def _positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds; got {value!r}")
    return float(value)


def speedup(generic_s: float, cudnn_s: float) -> float:
    """How many times faster cuDNN is: generic time / cuDNN time (both > 0 seconds)."""
    return _positive_seconds("generic_s", generic_s) / _positive_seconds("cudnn_s", cudnn_s)


def paired_rounds(cudnn: Timing, generic: Timing) -> list[float]:
    """Per-round cuDNN time / generic time, round i with round i (lower is better).

    Both kernels' rounds enter the check, not two medians: the rank test sees each
    kernel's scatter, and a cuDNN 20% slower shifts every pair. The longer run's surplus
    rounds are left out.
    """
    count = min(len(cudnn.data), len(generic.data))
    return [c / g for c, g in zip(cudnn.data[:count], generic.data[:count], strict=True)]


def cost_ratios(timings: dict[str, Timing]) -> dict[str, dict[str, float]]:
    """Per-step cost of each kind relative to LSTM, measured and by multiply-adds.

    ``timings`` maps ``"simple_rnn"``, ``"gru"`` and ``"lstm"`` to the generic
    kernel's timing on one configuration. The multiply-add ratios (1/4, 3/4) are
    what "GRU is lighter than LSTM, SimpleRNN lighter still" predicts when the
    matmuls dominate; per-step overhead pulls the measured ratios towards 1.
    """
    missing = sorted(set(MAC_RATIO_TO_LSTM) - set(timings))
    if missing:
        raise ValueError(f"timings must cover simple_rnn, gru and lstm; missing {missing}")
    lstm = _positive_seconds("lstm median", timings["lstm"].median)
    return {
        f"{kind}/lstm": {
            "measured": _positive_seconds(f"{kind} median", timings[kind].median) / lstm,
            "mac_ratio": MAC_RATIO_TO_LSTM[kind],
        }
        for kind in ("simple_rnn", "gru")
    }
