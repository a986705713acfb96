"""Measure the CPU timing check's false-alarm and detection rates over held-out processes.

``python tests/regressions/measure_timing.py N [--out FILE]`` runs, for each case of
``suites/test_kernel_timing.py``, ``N`` new processes
(:func:`pytest_rnn.bench.power.fresh_process_sample`), each taking an unmodified sample
and then one 20% slower (``slowdown=0.2``), and judges both exactly as the suite does
against the entry calibrated in ``baselines/test_kernel_timing.json`` for device ``cpu``
(:func:`pytest_rnn.store.rules.judge_timing` with the derived effect). The processes are
held out: none of them was one of the calibration's. Prints the counts, the range of
median ratios and the load average; ``--out`` writes the calibration's rounds and the
held-out samples (per-round ratios) for ``tests/test_timing_power.py`` to judge again.
README, "Baselines", quotes its output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "suites"))

from test_kernel_timing import CASES  # noqa: E402

from pytest_rnn.bench import cases, power  # noqa: E402
from pytest_rnn.runtime.versions import versions  # noqa: E402
from pytest_rnn.store import rules  # noqa: E402
from pytest_rnn.store.files import atomic_write, read_baseline_file  # noqa: E402

STORE = ROOT / "baselines" / "test_kernel_timing.json"
KEY = "test_generic_kernel_time_relative_to_its_matmuls[{}]::generic_over_reference::device=cpu"
SLOWDOWN = 0.2


def calibration_samples(entry: dict) -> list[list[float]]:
    """The calibration's per-process rounds (stored concatenated, ``test.k`` each)."""
    values, k = entry["distribution"]["values"], entry["test"]["k"]
    return [values[i:i + k] for i in range(0, len(values), k)]


def measure(case: str, entry: dict, processes: int, seed: int) -> dict:
    kind, step = case.split("-")
    load, started = os.getloadavg()[0], time.time()
    same, slow = [], []
    for i in range(processes):
        unmodified, slowed = power.fresh_process_sample(
            kind, step, cases.TIMING_CONFIG, seed=seed + i, rounds=cases.TIMING_ROUNDS,
            number=cases.TIMING_CALLS, slowdowns=(0.0, SLOWDOWN))
        same.append([round(r, 5) for r in power.ratios(*unmodified)])
        slow.append([round(r, 5) for r in power.ratios(*slowed)])

    def judged(samples):
        return [rules.judge_timing(entry, s, alpha=cases.TIMING_ALPHA, min_effect=None)
                for s in samples]

    alarms = sum(v.status is rules.Status.FAIL for v in judged(same))
    caught = sum(v.status is rules.Status.FAIL for v in judged(slow))
    stored = entry["value"]
    ratio_same = [statistics.median(s) / stored for s in same]
    ratio_slow = [statistics.median(s) / stored for s in slow]
    print(f"{case}: {alarms}/{processes} false alarms, {caught}/{processes} caught "
          f"(fails above x{1 + entry['test']['min_effect']:.3f}); median / calibrated "
          f"unmodified {min(ratio_same):.3f}-{max(ratio_same):.3f} (sd "
          f"{statistics.stdev(ratio_same):.3f}), slowed {min(ratio_slow):.3f}-"
          f"{max(ratio_slow):.3f}; load {load:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"{time.time() - started:.0f} s", flush=True)
    calibration = [[round(r, 5) for r in s] for s in calibration_samples(entry)]
    return {"calibration": calibration, "unmodified": same,
            f"slowed_{SLOWDOWN:g}": slow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("processes", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=900_000,
                        help="first held-out process's seed (the calibration's are derived "
                             "from --rnn-seed, so these differ)")
    args = parser.parse_args()
    entries = read_baseline_file(STORE)
    results = {}
    for kind, step in CASES:
        case = f"{kind}-{step}"
        entry = entries.get(KEY.format(case))
        if entry is None or "processes" not in entry["distribution"]:
            sys.exit(f"{STORE} has no calibrated cpu entry for {case}; run pytest -m "
                     f"rnn_timing -p no:xdist --rnn-calibrate 20 suites/test_kernel_timing.py")
        results[case] = measure(case, entry, args.processes, args.seed)
    if args.out:
        meta = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "cpus": os.cpu_count(), "versions": versions(), "slowdown": SLOWDOWN,
                "rounds": cases.TIMING_ROUNDS, "calls": cases.TIMING_CALLS}
        text = json.dumps({"measured": meta, "cases": results}, indent=None)
        atomic_write(args.out, text + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
