"""pytest-benchmark glue for the kernel benchmarks, and their terminal table.

The cases, timing arithmetic, timed Keras steps and machine facts live in
:mod:`pytest_rnn.bench` (no pytest there); their names are re-exported here, where
the first release had them (``pytest_rnn.benchmarking``).

The benchmark suite (``suites/test_kernel_benchmarks.py``) times one kernel per
test with pytest-benchmark. Each cuDNN/generic pair shares a ``benchmark.group``
(:attr:`BenchCase.group`), so pytest-benchmark's table shows them side by side;
the generic case of a group runs first, so the cuDNN case can divide the two
medians and check that speedup against its stored baseline (keyed by the
hardware key, :meth:`Baselines.check` with ``hardware=True``).

Nothing here imports TensorFlow at module level: the plugin imports this module
in every run for :func:`update_machine_info` and :func:`summary`. Machine info is
gathered without TensorFlow too (``nvidia-smi``, package metadata, TensorFlow's
build info as text), so it is the same when pytest-benchmark asks for it at
start-up (``--benchmark-compare``) and at the end (``--benchmark-save``).

Records (:class:`pytest_rnn.plugin.records.Kind`) this module writes, for the terminal table and
the HTML report: ``timing`` (one kernel's stats), ``speedup`` (generic / cuDNN
median of a group) and ``cost_ratio`` (per-step cost of SimpleRNN and GRU relative
to LSTM on the generic kernel, beside the ratio of their multiply-adds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest

from pytest_rnn.bench.cases import (
    BENCH_CONFIGS,
    KERNELS,
    LAYER_KINDS,
    MAC_RATIO_TO_LSTM,
    MIN_ROUNDS,
    SECONDS_METRIC,
    SPEEDUP_ALPHA,
    SPEEDUP_METRIC,
    SPEEDUP_MIN_EFFECT,
    SPEEDUP_TOLERANCE,
    STEP_KINDS,
    BenchCase,
    BenchConfig,
    benchmark_cases,
)
from pytest_rnn.bench.machine import machine_info
from pytest_rnn.bench.steps import kernel_taken, make_step, synchronize
from pytest_rnn.bench.timing import Timing, cost_ratios, paired_rounds, speedup
from pytest_rnn.plugin import baselines, markers, records, xdist
from pytest_rnn.plugin.records import Kind
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.runtime.device import gpu_inventory, host_device_key
from pytest_rnn.store.rules import Status

__all__ = [
    "BENCH_CONFIGS",
    "KERNELS",
    "LAYER_KINDS",
    "MAC_RATIO_TO_LSTM",
    "SPEEDUP_METRIC",
    "STEP_KINDS",
    "host_device_key",
    "BenchCase",
    "BenchConfig",
    "SPEEDUP_MIN_EFFECT",
    "SPEEDUP_TOLERANCE",
    "STORAGE_PLACEHOLDER",
    "Timing",
    "XDIST_REASON",
    "bench_kernel",
    "benchmark_cases",
    "check_absolute",
    "check_speedup",
    "cost_ratios",
    "expand_benchmark_storage",
    "gpu_inventory",
    "machine_info",
    "kernel_taken",
    "make_step",
    "require_timing",
    "run_benchmark",
    "speedup",
    "stored_timing",
    "summary",
    "synchronize",
    "update_machine_info",
]


XDIST_REASON = (
    "no timing is taken under pytest-xdist (-n): workers share the CPU, and pytest-benchmark "
    "disables itself there. Run benchmarks in one process: add -p no:xdist or -n 0"
)
_DISABLED_REASON = (
    "benchmarks are disabled (--benchmark-disable): the kernel ran once, untimed, "
    "so there is no speedup to check"
)


# ---------------------------------------------------------------------------
# timings of this process, so a cuDNN case can find its generic pair

_TIMINGS = pytest.StashKey[dict]()


def store_timing(config: pytest.Config, case: BenchCase, timing: Timing) -> None:
    config.stash.setdefault(_TIMINGS, {})[(case.group, case.kernel)] = timing


def stored_timing(config: pytest.Config, case: BenchCase) -> Timing | None:
    return config.stash.get(_TIMINGS, {}).get((case.group, case.kernel))


def xdist_active(config: pytest.Config) -> bool:
    return xdist.is_worker(config) or xdist.is_controller(config)


def require_timing(benchmark: Any, config: pytest.Config) -> None:
    """Skip, saying why, under xdist.

    Under ``-n`` pytest-benchmark 5 runs the function once and reports a pass (a benchmark
    run that measured nothing); pytest-benchmark 4 times it in the workers, beside each
    other's load. Either way there is no timing worth checking, whatever the release.
    (``--benchmark-disable`` asked for by the user keeps its documented meaning: run once,
    untimed.)
    """
    if xdist_active(config) and not config.getoption("benchmark_disable", False):
        pytest.skip(XDIST_REASON)


def run_benchmark(benchmark: Any, case: BenchCase, fn: Callable[[], Any], *,
                  config: pytest.Config, record: Callable[..., Any],
                  device_key: str) -> Timing | None:
    """Time ``fn`` (device synchronised inside the timed call) in ``case``'s group.

    Stores the timing for the pair's speedup and records it (``timing`` record).
    Returns None when pytest-benchmark took no timing (``--benchmark-disable``).
    """
    benchmark.group = case.group
    benchmark.extra_info.update(
        layer=case.kind, step=case.step, size=case.size, kernel=case.kernel,
        device_key=device_key, **asdict(case.config),
    )

    def timed() -> Any:
        result = fn()
        synchronize()
        return result

    benchmark(timed)
    timing = Timing.from_benchmark(benchmark)
    if timing is None:
        return None
    store_timing(config, case, timing)
    record(Kind.TIMING, case.id, group=case.group, layer=case.kind, step=case.step,
           size=case.size, kernel=case.kernel, device_key=device_key, **asdict(timing))
    return timing


#: How a GPU timing entry is calibrated (said when one is missing or stale).
CALIBRATE_HOW = (
    "run the GPU benchmarks in >= 3 processes, saving each run "
    "(pytest -m gpu -p no:xdist --benchmark-json=runs/N.json), then "
    "python -m pytest_rnn.bench.calibration runs/*.json --baselines {file}"
)


def _timing_check(baseline: Any, metric: str, rounds: list[float], *, what: str,
                  min_effect: float | None, note: str) -> Any:
    """One GPU timing check: calibrated over processes (``min_effect=None``, the default of
    the callers: the slowdown each entry catches is derived from the spread between its
    calibration's processes, :mod:`pytest_rnn.bench.calibration`) or, with a fixed
    ``min_effect``, against one stored process's rounds."""
    if len(rounds) < MIN_ROUNDS:
        pytest.fail(f"{what}: {len(rounds)} rounds of timing; the check needs >= "
                    f"{MIN_ROUNDS} (--benchmark-min-rounds={MIN_ROUNDS})", pytrace=False)
    if getattr(baseline, "calibrating", 0) and min_effect is None:
        pytest.fail(f"{what}: GPU benchmarks are not calibrated by --rnn-calibrate in one "
                    f"process; {CALIBRATE_HOW.format(file=baseline.path(None))}",
                    pytrace=False)
    if min_effect is not None:
        return baseline.check_timing(metric, rounds, alpha=SPEEDUP_ALPHA,
                                     min_effect=min_effect, hardware=True, note=note)
    return baseline.check_timing(metric, [rounds], alpha=SPEEDUP_ALPHA, min_effect=None,
                                 slowdown=None, hardware=True, note=note,
                                 calibration=CALIBRATE_HOW)


def check_speedup(baseline: Any, case: BenchCase, *, generic: Timing, cudnn: Timing,
                  record: Callable[..., Any], device_key: str,
                  tolerance: float | None = None) -> Any:
    """Record the pair's speedup and check its per-round samples against this hardware's.

    The values checked are :func:`~pytest_rnn.bench.timing.paired_rounds` (cuDNN time /
    generic time, round by round), stored per device key. By default
    (``tolerance=None``) the entry is calibrated over processes and the test fails when
    this process's median lies above the threshold the calibration derived (and a
    Mann-Whitney U test says slower at ``SPEEDUP_ALPHA``); a fixed ``tolerance`` judges
    against one stored process's rounds instead, which on a GPU false-alarms (see
    :mod:`pytest_rnn.bench.calibration`).
    """
    value = speedup(generic.median, cudnn.median)
    record(Kind.SPEEDUP, case.group, group=case.group, layer=case.kind, step=case.step,
           size=case.size, device_key=device_key, speedup=value,
           generic_median=generic.median, cudnn_median=cudnn.median)
    return _timing_check(baseline, SPEEDUP_METRIC, paired_rounds(cudnn, generic),
                         what=f"{case.group}: paired", min_effect=tolerance,
                         note=f"cuDNN / generic time per round of {case.group} "
                              "(speedup = 1 / this)")


def check_absolute(baseline: Any, case: BenchCase, timing: Timing, *,
                   min_effect: float | None = None) -> Any:
    """This kernel's own rounds (seconds per call) against those calibrated for this
    device key, by the same rule as the speedup: a slowdown of both kernels shows here."""
    return _timing_check(baseline, SECONDS_METRIC, list(timing.data), what=case.id,
                         min_effect=min_effect,
                         note=f"seconds per call of {case.id} ({case.config.describe()})")


def bench_kernel(case: BenchCase, fn: Callable[[], Any], *, benchmark: Any,
                 config: pytest.Config, record: Callable[..., Any], baseline: Any,
                 device_key: str, tolerance: float | None = None) -> Timing | None:
    """The body of one kernel benchmark test: time ``fn`` and, on a GPU, check its rounds
    against this device key's; for a cuDNN case, check the per-round speedup too.

    A cuDNN case whose generic pair has no timing in this process is skipped after
    its own timing is taken, with a reason naming the missing pair. ``tolerance=None``
    judges against entries calibrated over processes (:mod:`pytest_rnn.bench.calibration`);
    a fraction, against one stored process's rounds. ``extra_info["route"]`` names the
    kernel the case's layer takes on this backend (what the calibration reads).
    """
    benchmark.extra_info["route"] = kernel_taken(case, device_key.startswith("gpu"))
    timing = run_benchmark(benchmark, case, fn, config=config, record=record,
                           device_key=device_key)
    if timing is None:
        if case.kernel == "cudnn":
            pytest.skip(_DISABLED_REASON)
        return timing
    failures = []
    if device_key.startswith("gpu"):
        # a GPU's times are checked against its own device key's calibration; a CPU's
        # absolute time is that machine's (CPU hosts check the normalised ratio:
        # suites/test_kernel_timing.py)
        try:
            check_absolute(baseline, case, timing, min_effect=tolerance)
        except pytest.fail.Exception as exc:
            failures.append(str(exc))
    if case.kernel == "cudnn":
        reason = speedup_skip_reason(benchmark, config, case)
        if reason:
            pytest.skip(reason)
        try:
            check_speedup(baseline, case, generic=stored_timing(config, case.pair("generic")),
                          cudnn=timing, record=record, device_key=device_key,
                          tolerance=tolerance)
        except pytest.fail.Exception as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    return timing


def speedup_skip_reason(benchmark: Any, config: pytest.Config, case: BenchCase) -> str | None:
    """Why the cuDNN ``case`` cannot compute its speedup, or None when it can."""
    if getattr(benchmark, "disabled", False):
        return _DISABLED_REASON
    generic = case.pair("generic")
    if stored_timing(config, generic) is None:
        return (
            f"cuDNN timed, speedup not checked: the generic benchmark of group "
            f"{case.group!r} ({generic.id}) did not run before it in this process; "
            "select both kernels of the group"
        )
    return None


# ---------------------------------------------------------------------------
# machine info for saved benchmark runs


#: Placeholder in ``--benchmark-storage`` replaced by this host's device key, so saved
#: runs of different GPUs live apart and ``--benchmark-compare`` only compares like
#: with like (pytest-benchmark's own folder names only the OS and Python version).
STORAGE_PLACEHOLDER = "{device_key}"


def expand_benchmark_storage(config: pytest.Config) -> str | None:
    """Replace :data:`STORAGE_PLACEHOLDER` in ``--benchmark-storage``; returns the new value.

    Runs before pytest-benchmark reads the option. None when there is nothing to
    replace (or pytest-benchmark is not installed).
    """
    storage = getattr(config.option, "benchmark_storage", None)
    if not isinstance(storage, str) or STORAGE_PLACEHOLDER not in storage:
        return None
    config.option.benchmark_storage = storage.replace(STORAGE_PLACEHOLDER, host_device_key())
    return config.option.benchmark_storage


def update_machine_info(config: pytest.Config, info: dict[str, Any]) -> None:
    """Body of the ``pytest_benchmark_update_machine_info`` hook."""
    info["pytest_rnn"] = machine_info(gpu_inventory(), runtime_versions.versions())


# ---------------------------------------------------------------------------
# the terminal table


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


#: The fields the summary reads from each record kind this module writes.
_FIELDS = {
    Kind.TIMING: {"group", "kernel", "median", "device_key"},
    Kind.SPEEDUP: {"group", "speedup", "device_key"},
    Kind.COST_RATIO: {"config", "ratios"},
}


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    """A table of the kernel timings, speedups and cost ratios of this run, and the
    reason when benchmarks were asked for under xdist and measured nothing."""
    if xdist.is_worker(config):
        return
    run = records.of(config)
    # a user's rnn_record("timing", ...) may carry other fields: the table takes only
    # records of this module's shape and says how many it left out
    kept = {kind: [r for r in run.of_kind(kind) if _FIELDS[kind] <= r.data.keys()]
            for kind in _FIELDS}
    timings, speedups = kept[Kind.TIMING], kept[Kind.SPEEDUP]
    ratios = kept[Kind.COST_RATIO]
    foreign = sum(len(run.of_kind(kind)) - len(kept[kind]) for kind in _FIELDS)
    untimed = markers.skips_saying(terminalreporter, XDIST_REASON)
    if not (timings or speedups or ratios or untimed):
        return
    write = terminalreporter.write_line
    terminalreporter.section("pytest-rnn kernel benchmarks", sep="-")
    if foreign:
        write(f"{foreign} timing/speedup/cost_ratio record(s) without this table's fields "
              "(see pytest_rnn.plugin.benchmarks) are left out of it")
    if timings or speedups:
        rows: dict[str, dict[str, Any]] = {}
        for r in timings:
            rows.setdefault(r.data["group"], {})[r.data["kernel"]] = r.data["median"]
        checks = {r.nodeid: r.data for r in run.of_kind(Kind.BASELINE)
                  if r.name == SPEEDUP_METRIC}
        for r in speedups:
            rows.setdefault(r.data["group"], {})["speedup"] = r.data
            rows[r.data["group"]]["check"] = checks.get(r.nodeid)
        keys = sorted({r.data["device_key"] for r in timings + speedups})
        write(f"median time per call on {', '.join(keys)}")
        width = max(len("group"), *(len(g) for g in rows))
        write(f"  {'group':<{width}} {'generic':>12} {'cuDNN':>12} {'speedup':>8}  baseline")
        for group in sorted(rows):
            row = rows[group]
            sp = row.get("speedup")
            ratio = f"{sp['speedup']:.2f}x" if sp else "-"
            band = _band_status(config, row.get("check")) if sp else "-"
            write(f"  {group:<{width}} {_ms(row.get('generic')):>12} "
                  f"{_ms(row.get('cudnn')):>12} {ratio:>8}  {band.strip()}")
        if not speedups:
            write("no cuDNN speedup in this run: the cuDNN cases need a visible GPU "
                  "and the generic case of their group before them")
    for r in ratios:
        parts = ", ".join(
            f"{name} {v['measured']:.2f} (multiply-adds {v['mac_ratio']:.2f})"
            for name, v in r.data["ratios"].items()
        )
        write(f"per-step cost vs LSTM, generic kernel, {r.data['config']}: {parts}")
    if untimed:
        write(f"{untimed} benchmark(s) took no timing: {XDIST_REASON}", yellow=True, bold=True)


def _band_status(config: pytest.Config, check: dict | None) -> str:
    """The baseline check of a speedup, as the baseline store recorded it."""
    if check is None:
        return "not checked"
    status = baselines.final_status(config, check)
    if status is Status.NOT_RECORDED:
        return "not recorded (test failed)"
    if status in (Status.RECORDED, Status.NOT_WRITTEN):
        return status.value
    return f"{status.value} {check['bound']}"
