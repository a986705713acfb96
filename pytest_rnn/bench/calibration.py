"""GPU benchmark baselines calibrated over processes, from saved pytest-benchmark runs.

On a GPU host a kernel's time per call moves between processes far more than the rounds of
one process scatter (kernel launches, host dispatch and clocks settle differently in each):
measured on an NVIDIA H200, unchanged reruns minutes apart failed 7 to 15 of 24 checks
judged against one process's rounds with a fixed 10% effect (``docs/gpu-benchmarks.json``).
So GPU timing entries are calibrated over processes, as the CPU timing check is: each
``pytest -m gpu ... --benchmark-json=run-N.json`` (or ``--benchmark-autosave``) is one
process, and :func:`calibrate` turns several such runs into one entry per kernel's seconds
per call and per cuDNN pair's per-round ratio
(:func:`pytest_rnn.store.rules.timing_calibration_fields`), sized for the smallest slowdown
the spread between those processes lets one more process show at ``alpha`` in both error
rates (:func:`pytest_rnn.store.rules.detectable_slowdown`); each entry's note states it.
``python -m pytest_rnn.bench.calibration RUN.json... --baselines FILE`` writes them; the
benchmark tests then judge each new process against them. No pytest here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_rnn.bench.cases import SECONDS_METRIC, SPEEDUP_ALPHA, SPEEDUP_METRIC
from pytest_rnn.store import files, keys, rules, stats

#: Fewest processes a calibration takes (the spread between them is what it measures).
MIN_PROCESSES = 3


class CalibrationError(ValueError):
    """Runs that cannot be calibrated; the message names the run or the benchmark."""


def _backend(run: Mapping[str, Any], where: str) -> str:
    backend = (run.get("machine_info", {}).get("pytest_rnn") or {}).get("keras_backend")
    if not backend:
        raise CalibrationError(f"{where}: no machine_info['pytest_rnn']['keras_backend']: "
                               "save runs with pytest-rnn installed")
    return backend


def process_samples(runs: Iterable[tuple[str, Mapping[str, Any]]]
                    ) -> dict[tuple[str, str, str, str], list[list[float]]]:
    """``{(test name, metric, device key, backend): [rounds of each process]}`` from saved
    pytest-benchmark runs (``(where, run)`` pairs, one process each). Seconds per call for
    every kernel benchmark (those with a ``route`` in ``extra_info``: what
    :func:`pytest_rnn.plugin.benchmarks.bench_kernel` judges); for each cuDNN case, its
    rounds over its generic pair's, round by round (the speedup metric). A run without
    per-round data is refused."""
    samples: dict[tuple[str, str, str, str], list[list[float]]] = {}
    for where, run in runs:
        backend = _backend(run, where)
        by_case: dict[tuple[str, str], list[float]] = {}
        cudnn_cases: dict[str, tuple[str, str]] = {}  # group -> (cuDNN test name, device)
        for bench in run.get("benchmarks", []):
            info = bench.get("extra_info", {})
            if "route" not in info:  # not a kernel benchmark bench_kernel judges
                continue
            device = info["device_key"]  # the key its checks used (rnn_device.key)
            data = bench.get("stats", {}).get("data")
            if not data:
                raise CalibrationError(f"{where}: benchmark {bench.get('name')!r} has no "
                                       "per-round data (save runs with --benchmark-json or "
                                       "--benchmark-autosave, not --benchmark-disable)")
            samples.setdefault((bench["name"], SECONDS_METRIC, device, backend), []).append(
                [float(v) for v in data])
            by_case[(bench["group"], info["kernel"])] = [float(v) for v in data]
            if info["kernel"] == "cudnn":
                cudnn_cases[bench["group"]] = (bench["name"], device)
        for group, (name, device) in cudnn_cases.items():
            if (group, "generic") not in by_case:
                continue
            cudnn, generic = by_case[(group, "cudnn")], by_case[(group, "generic")]
            count = min(len(cudnn), len(generic))
            samples.setdefault((name, SPEEDUP_METRIC, device, backend), []).append(
                [c / g for c, g in zip(cudnn[:count], generic[:count], strict=True)])
    return samples


def calibrate(runs: Iterable[tuple[str, Mapping[str, Any]]], *, alpha: float = SPEEDUP_ALPHA,
              recorded_on: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """The calibrated entries (key -> entry) of every benchmark in ``runs``; each process's
    rounds are cut to the shortest process's count (the calibration compares like with
    like). Needs :data:`MIN_PROCESSES` runs of each benchmark."""
    runs = list(runs)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if recorded_on is None and runs:  # what the first run says of its machine
        first = runs[0][1]
        ours = first.get("machine_info", {}).get("pytest_rnn") or {}
        recorded_on = {"host": first.get("machine_info", {}).get("node"),
                       "runs": [Path(where).name for where, _ in runs],
                       **{k: ours.get(k) for k in ("gpus", "gpu_driver", "cudnn_build",
                                                   "cudnn_runtime_package", "tensorflow",
                                                   "keras", "keras_backend")}}
    entries = {}
    for (name, metric, device, backend), per_process in sorted(
            process_samples(runs).items()):
        if len(per_process) < MIN_PROCESSES:
            raise CalibrationError(f"{name} {metric}: {len(per_process)} process(es); a "
                                   f"calibration needs >= {MIN_PROCESSES} runs of it")
        count = min(len(s) for s in per_process)
        cut = [s[:count] for s in per_process]
        try:
            slowdown = rules.detectable_slowdown(rules.process_distribution(cut), alpha)
            fields = rules.timing_calibration_fields(
                cut, alpha=alpha, slowdown=slowdown,
                note=f"{metric} of {name} on {device} ({backend}); sized for the smallest "
                     f"slowdown these processes' spread supports: {slower(slowdown)}")
        except ValueError as exc:
            raise CalibrationError(f"{name} {metric}: {exc}") from None
        key = keys.entry_key(name, metric, device_key=device, backend=backend)
        entries[key] = {"seeds": {"processes": len(cut)}, "recorded_at": stamp,
                        "recorded_on": {**(recorded_on or {}), "device": device}, **fields}
    return entries


def slower(slowdown: float) -> str:
    """``38% slower``, or ``17.9x as slow`` from twice as slow on."""
    return f"{slowdown:.0%} slower" if slowdown < 1 else f"{1 + slowdown:.1f}x as slow"


def summary(entries: Mapping[str, dict]) -> list[str]:
    """One line per entry: its key, median, spread between processes and sized slowdown."""
    lines = []
    for key, entry in entries.items():
        medians = stats.Distribution.from_json(entry["distribution"]["processes"])
        lines.append(f"{key}: median {entry['value']:.4g}, processes vary by "
                     f"{2 ** medians.sd - 1:.1%} (sd), catches a process "
                     f"{slower(entry['test']['slowdown'])} at alpha {entry['test']['alpha']:g}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_rnn.bench.calibration",
        description="Calibrate GPU benchmark baselines over processes from saved "
                    "pytest-benchmark runs (one run = one process).")
    parser.add_argument("runs", nargs="+", type=Path, help="saved runs (JSON), >= 3")
    parser.add_argument("--baselines", type=Path, required=True,
                        help="the baseline file to merge the entries into, e.g. "
                             "baselines/test_kernel_benchmarks.json")
    args = parser.parse_args(argv)
    try:
        loaded = [(str(p), json.loads(p.read_text(encoding="utf-8"))) for p in args.runs]
        entries = calibrate(loaded)
    except (OSError, json.JSONDecodeError, CalibrationError) as exc:
        print(f"pytest-rnn calibration: {exc}", file=sys.stderr)
        return 2
    files.write_entries(args.baselines, entries)
    print("\n".join(summary(entries)))
    print(f"{len(entries)} entries calibrated over {len(loaded)} runs into {args.baselines}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
