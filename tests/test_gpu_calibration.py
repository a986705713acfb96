"""GPU timing checks calibrated over processes (:mod:`pytest_rnn.bench.calibration`).

A stored sample from one process false-alarmed on a real GPU (docs/gpu-measurements.json:
7 to 15 of 24 checks failed in each unchanged process on an NVIDIA H200). The calibration
over saved runs sizes each check for the slowdown its spread between processes supports;
these tests show, on made-up runs and on the H200 runs stored in
``baselines/test_kernel_benchmarks.json``, that an unchanged process passes and one slowed
by that much fails, and that bad input is one line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_rnn.bench import calibration
from pytest_rnn.bench.cases import SECONDS_METRIC, SPEEDUP_METRIC
from pytest_rnn.store import keys, rules, stats

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "baselines" / "test_kernel_benchmarks.json"
DEVICE = "gpu-NVIDIA-H100-80GB-HBM3-cudnn9"
#: per-process factors on every round (log-normal-ish, sd of log ~ 4%), and per-round wiggle
PROCESS_FACTORS = (1.00, 1.05, 0.96, 1.02, 0.98)
#: the cuDNN kernel's own small drift between processes on top (the pair's ratio keeps it)
CUDNN_DRIFT = {1.00: 1.0, 1.05: 0.995, 0.96: 1.004, 1.02: 1.002, 0.98: 0.998}
ROUNDS = 30


def rounds(median: float, factor: float) -> list[float]:
    return [median * factor * (1 + 0.02 * (((7 * i) % 11) - 5) / 5) for i in range(ROUNDS)]


def fake_run(factor: float, *, generic: float = 0.010, cudnn: float = 0.002,
             backend: str = "jax") -> dict:
    """One saved pytest-benchmark run (one process) of an LSTM pair on a fake GPU."""
    group = "lstm-forward-small (B8 T10 F8 U16)"

    def bench(kernel, seconds):
        return {"name": f"test_kernel[lstm-forward-small-{kernel}]", "group": group,
                "extra_info": {"kernel": kernel, "route": kernel, "device_key": DEVICE},
                "stats": {"data": rounds(seconds, factor), "median": seconds * factor}}

    return {"machine_info": {"node": "gpu-host", "pytest_rnn": {"keras_backend": backend}},
            "benchmarks": [bench("generic", generic),
                           bench("cudnn", cudnn * CUDNN_DRIFT[factor])]}


def runs(count: int = 5, **kwargs) -> list[tuple[str, dict]]:
    return [(f"run-{i}.json", fake_run(PROCESS_FACTORS[i], **kwargs)) for i in range(count)]


def test_calibration_keys_each_kernel_and_pair_and_sizes_it_by_the_spread():
    entries = calibration.calibrate(runs())
    key = keys.entry_key("test_kernel[lstm-forward-small-cudnn]", SPEEDUP_METRIC,
                         device_key=DEVICE, backend="jax")
    assert sorted(entries) == sorted([
        key,
        keys.entry_key("test_kernel[lstm-forward-small-cudnn]", SECONDS_METRIC,
                       device_key=DEVICE, backend="jax"),
        keys.entry_key("test_kernel[lstm-forward-small-generic]", SECONDS_METRIC,
                       device_key=DEVICE, backend="jax"),
    ])
    speedup, seconds = entries[key], entries[key.replace(SPEEDUP_METRIC, SECONDS_METRIC)]
    # the pair's ratio cancels the process factor (both kernels share it): far less spread,
    # so it is sized for a far smaller slowdown than either kernel's own seconds
    assert speedup["value"] == pytest.approx(0.2, rel=0.05)
    assert speedup["test"]["slowdown"] < seconds["test"]["slowdown"] / 5
    medians = stats.Distribution.from_json(seconds["distribution"]["processes"])
    assert seconds["test"]["slowdown"] == pytest.approx(
        rules.detectable_slowdown(medians, 0.01))
    assert rules.process_error_rate(medians, seconds["test"]["slowdown"]) == pytest.approx(
        0.01, rel=1e-6)
    assert "slowdown these processes' spread supports" in seconds["note"]


def judge(entry: dict, values: list[float]) -> rules.Verdict:
    return rules.judge_timing(entry, values, alpha=0.01, min_effect=None, slowdown=None)


def test_an_unchanged_process_passes_and_one_slowed_by_the_sized_slowdown_fails():
    training = runs(4)
    entries = calibration.calibrate(training)
    key = keys.entry_key("test_kernel[lstm-forward-small-generic]", SECONDS_METRIC,
                         device_key=DEVICE, backend="jax")
    entry = entries[key]
    held_out = rounds(0.010, PROCESS_FACTORS[4])  # a fifth process, not calibrated on
    assert judge(entry, held_out).status is rules.Status.OK
    slowed = [v * (1 + entry["test"]["slowdown"]) for v in held_out]
    verdict = judge(entry, slowed)
    assert verdict.status is rules.Status.FAIL, verdict.detail
    assert "calibration processes the median varied by" in verdict.detail


def _split(entry: dict) -> list[list[float]]:
    """The per-process rounds of a stored calibrated entry (concatenated in order)."""
    values, per = entry["distribution"]["values"], entry["distribution"]["rounds"]
    return [values[i:i + per] for i in range(0, len(values), per)]


def test_the_stored_h200_calibrations_leave_one_process_out():
    """On the real GPU runs behind the stored entries: calibrate on all processes but one,
    judge the one left out unchanged (a false alarm if it fails) and slowed by the slowdown
    its calibration is sized for (a miss if it passes). Each error rate is sized at 1%."""
    entries = json.loads(STORED.read_text(encoding="utf-8"))["entries"]
    gpu = {k: e for k, e in entries.items() if "::device=gpu-" in k}
    assert len(gpu) >= 48, sorted(gpu)[:3]
    false_alarms = misses = trials = 0
    for entry in gpu.values():
        processes = _split(entry)
        assert len(processes) == entry["test"]["processes"] >= 4
        for i, held_out in enumerate(processes):
            rest = processes[:i] + processes[i + 1:]
            medians = rules.process_distribution(rest)
            slowdown = rules.detectable_slowdown(medians, 0.01)
            fields = rules.timing_calibration_fields(rest, alpha=0.01, slowdown=slowdown)
            false_alarms += judge(fields, held_out).status is rules.Status.FAIL
            slowed = [v * (1 + slowdown) for v in held_out]
            misses += judge(fields, slowed).status is not rules.Status.FAIL
            trials += 1
    # sized for 1% each; with 3-process calibrations the t prediction bound is conservative
    assert false_alarms <= math.ceil(0.03 * trials), (false_alarms, trials)
    assert misses <= math.ceil(0.05 * trials), (misses, trials)


def test_too_few_processes_or_runs_without_rounds_are_one_clear_line(tmp_path, capsys):
    paths = []
    for name, run in runs(2):
        path = tmp_path / name
        path.write_text(json.dumps(run))
        paths.append(str(path))
    target = tmp_path / "baselines.json"
    assert calibration.main([*paths, "--baselines", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 process(es); a calibration needs >= 3 runs" in err[0], err
    assert not target.exists()
    bare = fake_run(1.0)
    del bare["benchmarks"][0]["stats"]["data"]
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    assert calibration.main([str(tmp_path / "bare.json"), *paths,
                             "--baselines", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no per-round data" in err[0], err
