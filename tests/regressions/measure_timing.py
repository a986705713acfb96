"""Measure the CPU timing check's false-alarm and detection rates (a script).

``python tests/regressions/measure_timing.py N`` takes, for the generic LSTM forward
step and the GRU training step, one stored sample and then ``N`` unmodified and ``N``
20%-slower samples (:func:`pytest_rnn.bench.power.interleaved_rounds`, ``slowdown=0.2``),
judged exactly as ``suites/test_kernel_timing.py`` judges them; prints the counts, the
range of median ratios and the load average. README, "Baselines", quotes its output.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_timing_power import rates  # noqa: E402

from pytest_rnn.bench import cases, power  # noqa: E402


def main(repeats: int) -> None:
    for kind, step in (("lstm", "forward"), ("gru", "train")):
        timed = power.sampler(kind, step, cases.TIMING_CONFIG, seed=0,
                              rounds=cases.TIMING_ROUNDS, number=cases.TIMING_CALLS)

        def sample(slowdown: float = 0.0, timed=timed) -> list[float]:
            return power.ratios(*timed(slowdown))

        load, started = os.getloadavg()[0], time.time()
        stored = sample()
        alarms, caught, same, slow = rates(sample, stored, repeats)
        print(f"{kind} {step}: {alarms}/{repeats} false alarms, {caught}/{repeats} caught; "
              f"median ratios unmodified {min(same):.3f}-{max(same):.3f} (sd "
              f"{statistics.stdev(same):.3f}), slowed {min(slow):.3f}-{max(slow):.3f} (mean "
              f"{statistics.fmean(slow):.3f}); load {load:.1f} -> {os.getloadavg()[0]:.1f}; "
              f"{time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
