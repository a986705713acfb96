"""pytest-benchmark's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`).

The per-round timings of a benchmark are reachable only through the fixture's
``stats.stats`` object, whose ``data`` list pytest-benchmark keeps for its own statistics.
"""

from __future__ import annotations

from typing import Any

from pytest_rnn.adapters import Internal, changed

STATS = Internal("pytest-benchmark", "pytest_benchmark.stats", "Stats",
                 "read the statistics and per-round times of a benchmark that has run")
#: What the statistics object must hold (attributes set per instance, so they are checked
#: on the instance, by :func:`round_statistics`).
FIELDS = ("rounds", "median", "mean", "stddev", "min", "data")

INTERNALS = [STATS]


def round_statistics(benchmark: Any) -> dict[str, Any] | None:
    """``{rounds, median, mean, stddev, min, data}`` of a benchmark fixture that has run;
    None when it took no rounds. :class:`~pytest_rnn.adapters.InternalChanged` when the
    fixture no longer keeps them where pytest-rnn reads them."""
    metadata = getattr(benchmark, "stats", None)
    if metadata is None:
        return None  # the benchmark fixture was never called
    stats = getattr(metadata, "stats", None)
    if stats is None:
        raise changed(STATS, "benchmark.stats has no 'stats' attribute")
    missing = [f for f in FIELDS if not hasattr(stats, f)]
    if missing:
        raise changed(STATS, f"its statistics have no {', '.join(missing)}")
    if not stats.rounds:
        return None
    return {f: getattr(stats, f) for f in FIELDS}
