"""Measure the CPU timing check's false-alarm and detection rates (a script).

``python tests/regressions/measure_timing.py N`` takes, for the generic LSTM forward
step and the GRU training step, one stored sample and then ``N`` unmodified and ``N``
20%-slower samples (:func:`pytest_rnn.bench.power.interleaved_rounds`, ``slowdown=0.2``),
judged exactly as ``suites/test_kernel_timing.py`` judges them; prints the counts, the
range of median ratios and the load average. README, "Baselines", quotes its output.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_timing_power import rates  # noqa: E402

from pytest_rnn.bench import cases, power, steps  # noqa: E402


def main(repeats: int) -> None:
    for kind, step in (("lstm", "forward"), ("gru", "train")):
        layer = steps.make_step(kind, step, cases.TIMING_CONFIG, use_cudnn=False, seed=0)
        reference = steps.make_reference(kind, step, cases.TIMING_CONFIG, seed=0)

        def sample(slowdown: float = 0.0, layer=layer, reference=reference) -> list[float]:
            return power.ratios(*power.interleaved_rounds(
                layer, reference, rounds=cases.TIMING_ROUNDS, number=cases.TIMING_CALLS,
                slowdown=slowdown))

        load, started = os.getloadavg()[0], time.time()
        stored = sample()
        alarms, caught, same, slow = rates(sample, stored, repeats)
        print(f"{kind} {step}: {alarms}/{repeats} false alarms, {caught}/{repeats} caught; "
              f"median ratios unmodified {min(same):.3f}-{max(same):.3f}, slowed "
              f"{min(slow):.3f}-{max(slow):.3f}; load {load:.1f} -> {os.getloadavg()[0]:.1f}; "
              f"{time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
