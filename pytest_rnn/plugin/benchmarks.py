"""Kernel benchmarks: cuDNN vs generic LSTM/GRU timings, their speedup, and where they ran.

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

Records (:mod:`pytest_rnn.records`) this module writes, for the terminal table and
the HTML report: ``timing`` (one kernel's stats), ``speedup`` (generic / cuDNN
median of a group) and ``cost_ratio`` (per-step cost of SimpleRNN and GRU relative
to LSTM on the generic kernel, beside the ratio of their multiply-adds).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from pytest_rnn.plugin import records
from pytest_rnn.runtime import device
from pytest_rnn.runtime import versions as runtime_versions

__all__ = [
    "BENCH_CONFIGS",
    "BenchCase",
    "BenchConfig",
    "SPEEDUP_TOLERANCE",
    "STORAGE_PLACEHOLDER",
    "Timing",
    "XDIST_REASON",
    "bench_kernel",
    "benchmark_cases",
    "check_speedup",
    "cost_ratios",
    "expand_benchmark_storage",
    "gpu_inventory",
    "machine_info",
    "make_step",
    "require_timing",
    "run_benchmark",
    "speedup",
    "stored_timing",
    "summary",
    "synchronize",
    "update_machine_info",
]


@dataclass(frozen=True)
class BenchConfig:
    """Input and layer sizes of one benchmark configuration."""

    batch: int
    steps: int
    features: int
    units: int

    def describe(self) -> str:
        return f"B{self.batch} T{self.steps} F{self.features} U{self.units}"


BENCH_CONFIGS: dict[str, BenchConfig] = {
    # Launch overhead dominates: shows what cuDNN's fused kernel saves per call.
    "small": BenchConfig(batch=8, steps=10, features=8, units=16),
    # A typical text/sequence model layer: compute dominates.
    "realistic": BenchConfig(batch=64, steps=100, features=128, units=128),
}
LAYER_KINDS = ("lstm", "gru")
STEP_KINDS = ("forward", "train")
KERNELS = ("generic", "cudnn")  # generic first: the cuDNN case reads its pair's timing
#: Multiply-adds per step relative to LSTM: gate blocks of U*(F+U) each (4, 3 and 1).
MAC_RATIO_TO_LSTM = {"lstm": 1.0, "gru": 3 / 4, "simple_rnn": 1 / 4}

SPEEDUP_METRIC = "speedup_generic_over_cudnn"
#: Relative band of the stored speedup. A ratio of two medians moves by ~10% between
#: runs on one GPU (each median by ~5%); 25% still fails when cuDNN loses a third of
#: its advantage or stops being used (speedup ~1).
SPEEDUP_TOLERANCE = 0.25

XDIST_REASON = (
    "pytest-benchmark disables itself under pytest-xdist (-n): no timing was taken. "
    "Run benchmarks in one process: add -p no:xdist or -n 0"
)
_DISABLED_REASON = (
    "benchmarks are disabled (--benchmark-disable): the kernel ran once, untimed, "
    "so there is no speedup to check"
)


@dataclass(frozen=True)
class BenchCase:
    """One benchmark: a layer kind, a step (forward or training), a size and a kernel."""

    kind: str
    step: str
    size: str
    kernel: str

    @property
    def config(self) -> BenchConfig:
        return BENCH_CONFIGS[self.size]

    @property
    def group(self) -> str:
        """pytest-benchmark group: the same for the cuDNN and generic case of a pair."""
        return f"{self.kind}-{self.step}-{self.size} ({self.config.describe()})"

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.step}-{self.size}-{self.kernel}"

    def pair(self, kernel: str) -> BenchCase:
        return BenchCase(self.kind, self.step, self.size, kernel)


def benchmark_cases() -> list[BenchCase]:
    """Every kernel benchmark, each group's generic case right before its cuDNN case."""
    return [
        BenchCase(kind, step, size, kernel)
        for kind in LAYER_KINDS
        for step in STEP_KINDS
        for size in BENCH_CONFIGS
        for kernel in KERNELS
    ]


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one benchmark (pytest-benchmark's statistics)."""

    median: float
    mean: float
    stddev: float
    min: float
    rounds: int

    @classmethod
    def from_benchmark(cls, benchmark: Any) -> Timing | None:
        """The timing of a benchmark fixture that has run; None if it took none."""
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is None or not stats.rounds:
            return None
        return cls(median=float(stats.median), mean=float(stats.mean),
                   stddev=float(stats.stddev), min=float(stats.min), rounds=int(stats.rounds))


def _positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds; got {value!r}")
    return float(value)


def speedup(generic_s: float, cudnn_s: float) -> float:
    """How many times faster cuDNN is: generic time / cuDNN time (both > 0 seconds)."""
    return _positive_seconds("generic_s", generic_s) / _positive_seconds("cudnn_s", cudnn_s)


# ---------------------------------------------------------------------------
# timings of this process, so a cuDNN case can find its generic pair

_TIMINGS = pytest.StashKey[dict]()


def store_timing(config: pytest.Config, case: BenchCase, timing: Timing) -> None:
    config.stash.setdefault(_TIMINGS, {})[(case.group, case.kernel)] = timing


def stored_timing(config: pytest.Config, case: BenchCase) -> Timing | None:
    return config.stash.get(_TIMINGS, {}).get((case.group, case.kernel))


def xdist_active(config: pytest.Config) -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or (
        getattr(config.option, "dist", "no") not in (None, "no")
    )


def require_timing(benchmark: Any, config: pytest.Config) -> None:
    """Skip, saying why, when pytest-benchmark will not time this test because of xdist.

    Under ``-n`` pytest-benchmark runs the function once and reports a pass; that
    would be a benchmark run that measured nothing. (``--benchmark-disable`` asked
    for by the user keeps its documented meaning: run once, untimed.)
    """
    if getattr(benchmark, "disabled", False) and xdist_active(config):
        pytest.skip(XDIST_REASON)


def synchronize() -> None:
    """Wait for queued device work (GPU kernels run asynchronously) before the timer stops.

    Nothing can be queued on a device before TensorFlow is imported, so a process
    without it has nothing to wait for.
    """
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.test.experimental.sync_devices()


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
    record("timing", case.id, group=case.group, layer=case.kind, step=case.step,
           size=case.size, kernel=case.kernel, device_key=device_key, **asdict(timing))
    return timing


def check_speedup(baseline: Any, case: BenchCase, *, generic: Timing, cudnn: Timing,
                  record: Callable[..., Any], device_key: str,
                  tolerance: float = SPEEDUP_TOLERANCE) -> Any:
    """Record the pair's speedup and check it against the stored baseline of this hardware.

    ``baseline`` is the ``rnn_baseline`` fixture; the entry is keyed by the test and
    the device key, so each GPU model (and cuDNN major version) has its own.
    Fails the test when the speedup is below ``baseline * (1 - tolerance)``.
    """
    value = speedup(generic.median, cudnn.median)
    record("speedup", case.group, group=case.group, layer=case.kind, step=case.step,
           size=case.size, device_key=device_key, speedup=value,
           generic_median=generic.median, cudnn_median=cudnn.median)
    return baseline.check(
        SPEEDUP_METRIC, value, tolerance=tolerance, relative=True, higher_is_better=True,
        hardware=True,
        note=f"median generic / median cuDNN time of {case.group}; band {tolerance:g} "
             "relative (see pytest_rnn.benchmarking.SPEEDUP_TOLERANCE)",
    )


def bench_kernel(case: BenchCase, fn: Callable[[], Any], *, benchmark: Any,
                 config: pytest.Config, record: Callable[..., Any], baseline: Any,
                 device_key: str, tolerance: float = SPEEDUP_TOLERANCE) -> Timing | None:
    """The body of one kernel benchmark test: time ``fn``; for a cuDNN case, check the speedup.

    A cuDNN case whose generic pair has no timing in this process is skipped after
    its own timing is taken, with a reason naming the missing pair.
    """
    timing = run_benchmark(benchmark, case, fn, config=config, record=record,
                           device_key=device_key)
    if case.kernel != "cudnn":
        return timing
    reason = speedup_skip_reason(benchmark, config, case)
    if reason:
        pytest.skip(reason)
    check_speedup(baseline, case, generic=stored_timing(config, case.pair("generic")),
                  cudnn=timing, record=record, device_key=device_key, tolerance=tolerance)
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


# ---------------------------------------------------------------------------
# the timed functions (these import Keras)


def make_step(kind: str, step: str, config: BenchConfig, *, use_cudnn: bool | str,
              seed: int) -> Callable[[], Any]:
    """A traced ``tf.function`` running one forward pass or one SGD training step.

    Built, traced and run once here, so the benchmark times steady-state calls only.
    ``kind`` is ``"simple_rnn"``, ``"lstm"`` or ``"gru"``; ``step`` is ``"forward"``
    or ``"train"`` (forward, loss, gradients of every weight, SGD update).
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from pytest_rnn.checks.models import rnn_layer

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    rng = np.random.default_rng(seed)
    kwargs = {} if kind == "simple_rnn" else {"use_cudnn": use_cudnn}
    layer = rnn_layer(kind, config.units, **kwargs)
    shape = (config.batch, config.steps, config.features)
    layer.build(shape)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    if step == "forward":
        fn = tf.function(lambda: layer(x), jit_compile=False)
    else:
        head = keras.layers.Dense(1)
        head.build((config.batch, config.units))
        y = tf.constant(rng.normal(size=(config.batch, 1)).astype("float32"))
        variables = [*layer.trainable_variables, *head.trainable_variables]
        optimizer = keras.optimizers.SGD(learning_rate=1e-3)
        optimizer.build(variables)

        @tf.function(jit_compile=False)
        def fn():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(head(layer(x, training=True)) - y))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                          strict=True))
            return loss

    fn()
    synchronize()
    return fn


# ---------------------------------------------------------------------------
# machine info for saved benchmark runs


def gpu_inventory(run: Callable[..., Any] = subprocess.run) -> list[dict[str, str]]:
    """GPUs from ``nvidia-smi`` (name, driver, uuid), restricted to CUDA_VISIBLE_DEVICES.

    Empty without ``nvidia-smi`` or when it fails: a host without NVIDIA GPUs.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = run([exe, "--query-gpu=index,name,driver_version,uuid",
                    "--format=csv,noheader"], capture_output=True, text=True, timeout=20,
                   check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    gpus = [
        {"index": row[0], "name": row[1], "driver": row[2], "uuid": row[3]}
        for row in csv.reader(done.stdout.splitlines(), skipinitialspace=True)
        if len(row) >= 4
    ]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    if not wanted or wanted[0] == "-1":
        return []
    chosen = []
    for token in wanted:
        chosen += [g for g in gpus if token in (g["index"], g["uuid"]) and g not in chosen]
    return chosen


def machine_info(gpus: list[dict[str, str]], versions: dict[str, Any]) -> dict[str, Any]:
    """What pytest-rnn adds to a saved benchmark run's ``machine_info["pytest_rnn"]``."""
    names = [g["name"] for g in gpus]
    drivers = sorted({g["driver"] for g in gpus})
    return {
        "device_key": device.device_key(names, versions.get("cudnn_build")),
        "gpus": names,
        "gpu_driver": ", ".join(drivers) if drivers else None,
        "cuda_build": versions.get("cuda_build"),
        "cudnn_build": versions.get("cudnn_build"),
        "cuda_runtime_package": runtime_versions.package_version("nvidia-cuda-runtime-cu12"),
        "cudnn_runtime_package": runtime_versions.package_version("nvidia-cudnn-cu12"),
        "tensorflow": versions.get("tensorflow"),
        "keras": versions.get("keras"),
        "keras_backend": versions.get("backend"),
    }


#: Placeholder in ``--benchmark-storage`` replaced by this host's device key, so saved
#: runs of different GPUs live apart and ``--benchmark-compare`` only compares like
#: with like (pytest-benchmark's own folder names only the OS and Python version).
STORAGE_PLACEHOLDER = "{device_key}"


def host_device_key() -> str:
    """The device key of this host, from ``nvidia-smi`` and the build info (no TensorFlow)."""
    return device.device_key([g["name"] for g in gpu_inventory()],
                             runtime_versions.tensorflow_build_info().get("cudnn_version"))


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
    "timing": {"group", "kernel", "median", "device_key"},
    "speedup": {"group", "speedup", "device_key"},
    "cost_ratio": {"config", "ratios"},
}


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    """A table of the kernel timings, speedups and cost ratios of this run, and the
    reason when benchmarks were asked for under xdist and measured nothing."""
    if hasattr(config, "workerinput"):
        return
    run = records.of(config)
    # a user's rnn_record("timing", ...) may carry other fields: the table takes only
    # records of this module's shape and says how many it left out
    kept = {kind: [r for r in run.of_kind(kind) if _FIELDS[kind] <= r.data.keys()]
            for kind in _FIELDS}
    timings, speedups, ratios = kept["timing"], kept["speedup"], kept["cost_ratio"]
    foreign = sum(len(run.of_kind(kind)) - len(kept[kind]) for kind in _FIELDS)
    untimed = _xdist_skips(terminalreporter)
    if not (timings or speedups or ratios or untimed):
        return
    write = terminalreporter.write_line
    terminalreporter.section("pytest-rnn kernel benchmarks", sep="-")
    if foreign:
        write(f"{foreign} timing/speedup/cost_ratio record(s) without this table's fields "
              "(see pytest_rnn.benchmarking) are left out of it")
    if timings or speedups:
        rows: dict[str, dict[str, Any]] = {}
        for r in timings:
            rows.setdefault(r.data["group"], {})[r.data["kernel"]] = r.data["median"]
        checks = {r.nodeid: r.data for r in run.of_kind("baseline") if r.name == SPEEDUP_METRIC}
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
            band = _band_status(row.get("check")) if sp else "-"
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


def _band_status(check: dict | None) -> str:
    """The baseline check of a speedup, as the baseline store recorded it."""
    if check is None:
        return "not checked"
    if check.get("not_written"):
        return "not recorded (test failed)"
    if check["updated"]:
        return "recorded"
    return f"{'ok' if check['passed'] else 'FAIL'} {check['bound']}"


def _xdist_skips(terminalreporter: Any) -> int:
    count = 0
    for report in terminalreporter.stats.get("skipped", []):
        # a (path, line, reason) tuple, or a list after travelling from an xdist worker
        if XDIST_REASON in str(getattr(report, "longrepr", "")):
            count += 1
    return count
