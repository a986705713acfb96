"""The kernel-benchmark timing path, exercised end to end on a CPU-only host.

GPU facts are faked where the code reads them: a stand-in ``nvidia-smi`` on PATH
(machine info, the storage directory's device key) and an ``rnn_device`` fixture
reporting a GPU (the key the speedup baseline is stored under). The timed
functions of the inner runs are plain Python, so these runs need no TensorFlow;
in-process runs use ``--no-header`` for the same reason. One run collects the real
benchmark suite (keras is imported here first, so pytester's module snapshot never
holds a half-imported TensorFlow), and one real xdist run shows the message a
benchmark run under ``-n`` gets.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import keras  # noqa: F401 - imported before in-process runs of the real suite (see above)
import pytest
import subprocess_runs
from pytest_rnn.benchmarking import BENCH_CONFIGS, BenchCase, Timing

from pytest_rnn import benchmarking, markers
from pytest_rnn.bench import calibration
from pytest_rnn.runtime import versions as runtime

SUITE = Path(__file__).resolve().parent.parent / "suites" / "test_kernel_benchmarks.py"
FAKE_GPU = "NVIDIA H100 80GB HBM3"
CUDNN_MAJOR = str(runtime.tensorflow_build_info().get("cudnn_version") or "unknown").split(".")[0]
FAKE_KEY = f"gpu-NVIDIA-H100-80GB-HBM3-cudnn{CUDNN_MAJOR}"
QUICK = ("--benchmark-max-time=0.002", "--benchmark-min-rounds=5", "--benchmark-warmup=off")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    # An outer xdist worker's variables would make the inner pytest-benchmark think it
    # runs under xdist too, and disable itself.
    for name in ("PYTEST_ADDOPTS", "PYTEST_RNN_BASELINES", "PYTEST_RNN_SEED",
                 "CUDA_VISIBLE_DEVICES", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                 "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


def fake_nvidia_smi(directory: Path, rows: list[str]) -> Path:
    """An ``nvidia-smi`` that prints ``rows`` as its CSV answer."""
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "nvidia-smi"
    body = "\n".join(rows)
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{body}\nEOF\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.fixture
def one_fake_gpu(tmp_path, monkeypatch):
    bin_dir = fake_nvidia_smi(tmp_path / "fakebin",
                              [f"0, {FAKE_GPU}, 550.54.15, GPU-aaaa"])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def timing(seconds: float) -> Timing:
    return Timing(median=seconds, mean=seconds, stddev=0.0, min=seconds, rounds=5)


# ---------------------------------------------------------------------------
# pure parts


def test_every_group_is_one_generic_then_one_cudnn_case():
    cases = benchmarking.benchmark_cases()
    assert len({c.id for c in cases}) == len(cases) == 16
    by_group: dict[str, list[str]] = {}
    for case in cases:
        by_group.setdefault(case.group, []).append(case.kernel)
    assert all(kernels == ["generic", "cudnn"] for kernels in by_group.values()), by_group
    assert {(c.kind, c.step, c.size) for c in cases} == {
        (k, s, z) for k in ("lstm", "gru") for s in ("forward", "train")
        for z in ("small", "realistic")}
    assert BENCH_CONFIGS["realistic"] == benchmarking.BenchConfig(64, 100, 128, 128)
    assert "B64 T100 F128 U128" in BenchCase("gru", "train", "realistic", "cudnn").group


def test_speedup_is_generic_over_cudnn_and_refuses_bad_times():
    assert benchmarking.speedup(0.010, 0.002) == pytest.approx(5.0)
    for generic, cudnn, name in [(0.0, 1.0, "generic_s"), (1.0, -2.0, "cudnn_s"),
                                 (math.nan, 1.0, "generic_s"), (1.0, True, "cudnn_s")]:
        with pytest.raises(ValueError, match=f"{name} must be a positive, finite number"):
            benchmarking.speedup(generic, cudnn)


def test_cost_ratios_are_relative_to_lstm_beside_multiply_add_ratios():
    ratios = benchmarking.cost_ratios(
        {"lstm": timing(0.020), "gru": timing(0.016), "simple_rnn": timing(0.006)})
    assert ratios == {
        "simple_rnn/lstm": {"measured": pytest.approx(0.3), "mac_ratio": 0.25},
        "gru/lstm": {"measured": pytest.approx(0.8), "mac_ratio": 0.75},
    }
    with pytest.raises(ValueError, match=r"missing \['simple_rnn'\]"):
        benchmarking.cost_ratios({"lstm": timing(0.02), "gru": timing(0.01)})


def test_gpu_inventory_reads_nvidia_smi_and_honours_cuda_visible_devices(tmp_path, monkeypatch):
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert benchmarking.gpu_inventory() == [], "no nvidia-smi must mean no GPU"
    monkeypatch.setenv("PATH", path)
    bin_dir = fake_nvidia_smi(tmp_path / "bin", [
        "0, NVIDIA A100-SXM4-40GB, 535.104.05, GPU-aaaa",
        "1, NVIDIA L4, 535.104.05, GPU-bbbb",
    ])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    names = [g["name"] for g in benchmarking.gpu_inventory()]
    assert names == ["NVIDIA A100-SXM4-40GB", "NVIDIA L4"]
    for visible, expected in [("1", ["NVIDIA L4"]), ("GPU-bbbb,0", ["NVIDIA L4",
                              "NVIDIA A100-SXM4-40GB"]), ("-1", []), ("", [])]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert [g["name"] for g in benchmarking.gpu_inventory()] == expected, visible
    info = benchmarking.machine_info(
        [{"name": "NVIDIA L4", "driver": "535.104.05"}],
        {"cudnn_build": "9.3.0", "cuda_build": "12.5", "tensorflow": "2.21.0",
         "keras": "3.15.1", "backend": "tensorflow"})
    assert info["device_key"] == "gpu-NVIDIA-L4-cudnn9"
    assert (info["gpus"], info["gpu_driver"], info["cuda_build"], info["cudnn_build"]) == (
        ["NVIDIA L4"], "535.104.05", "12.5", "9.3.0")


# ---------------------------------------------------------------------------
# in-process runs of small benchmark projects

FAKE_DEVICE_CONFTEST = """
    import os
    import pytest
    from pytest_rnn.device import DeviceInfo
    from pytest_rnn.runtime.versions import keras_backend_name

    @pytest.fixture(scope="session")
    def rnn_device():
        name = os.environ.get("FAKE_GPU_NAME")
        if not name:
            return DeviceInfo(has_gpu=False, backend=keras_backend_name())
        return DeviceInfo(has_gpu=True, gpu_names=(name,), cudnn_version="9.3.0",
                          backend=keras_backend_name())
"""

PAIR_TEST = """
    import pytest
    from pytest_rnn import benchmarking
    from pytest_rnn.benchmarking import BenchCase

    WORK = {"generic": 20000, "cudnn": 1000}
    CASES = [BenchCase("lstm", "forward", "small", k) for k in ("generic", "cudnn")]

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
    def test_kernel(case, benchmark, request, rnn_record, rnn_baseline, rnn_device):
        benchmarking.require_timing(benchmark, request.config)
        work = WORK[case.kernel]
        benchmarking.bench_kernel(case, lambda: sum(range(work)), benchmark=benchmark,
                                  config=request.config, record=rnn_record,
                                  baseline=rnn_baseline, device_key=rnn_device.key)
"""


def inprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("--no-header", "-p", "no:cacheprovider",
                                        "-p", "no:xdist", *args)


def test_pair_is_grouped_timed_saved_with_machine_info_and_tabled(
        pytester, monkeypatch, one_fake_gpu):
    monkeypatch.setenv("FAKE_GPU_NAME", FAKE_GPU)
    pytester.makeconftest(FAKE_DEVICE_CONFTEST)
    pytester.makepyfile(test_pair=PAIR_TEST)
    # no calibrated GPU entry yet: each check fails naming how to calibrate one, and
    # --rnn-update-baselines does not write one from a single process
    first = inprocess(pytester, "--rnn-update-baselines", *QUICK,
                      "--benchmark-json=run-1.json", "--benchmark-autosave",
                      "--benchmark-storage=store/{device_key}")
    first.assert_outcomes(failed=2)
    first.stdout.fnmatch_lines(["*has no entry*Calibrate it with:*",
                                "*run the GPU benchmarks in >= 3 processes*"
                                "python -m pytest_rnn.bench.calibration runs/*.json "
                                "--baselines baselines/test_pair.json*"])
    assert not (pytester.path / "baselines" / "test_pair.json").exists()
    group = BenchCase("lstm", "forward", "small", "cudnn").group
    saved = json.loads((pytester.path / "run-1.json").read_text())
    # the pair sits in one pytest-benchmark group, each test says which kernel it timed
    assert {(b["group"], b["extra_info"]["kernel"]) for b in saved["benchmarks"]} == {
        (group, "generic"), (group, "cudnn")}
    ours = saved["machine_info"]["pytest_rnn"]
    assert ours["gpus"] == [FAKE_GPU] and ours["gpu_driver"] == "550.54.15"
    backend = runtime.keras_backend_name()
    suffix = "" if backend == "tensorflow" else f"-{backend}"
    if backend == "tensorflow":
        assert ours["device_key"] == FAKE_KEY
    assert ours["keras_backend"] == backend
    assert (ours["tensorflow"], ours["keras"]) == (
        runtime.tensorflow_version(), runtime.package_version("keras"))
    assert "cudnn_build" in ours and "cuda_build" in ours
    # saved runs are kept apart per hardware key (and backend), ready for --benchmark-compare
    assert [p.name for p in (pytester.path / "store").iterdir()] == [ours["device_key"]]
    # two more processes, then the calibration over the three saved runs
    for n in (2, 3):
        inprocess(pytester, *QUICK, f"--benchmark-json=run-{n}.json").assert_outcomes(
            failed=2)
    assert calibration.main([str(pytester.path / f"run-{n}.json") for n in (1, 2, 3)] + [
        "--baselines", str(pytester.path / "baselines" / "test_pair.json")]) == 0
    stored = json.loads((pytester.path / "baselines" / "test_pair.json").read_text())
    device = f"::device=gpu-NVIDIA-H100-80GB-HBM3-cudnn9{suffix}"
    device += "" if backend == "tensorflow" else f"::backend={backend}"
    assert sorted(stored["entries"]) == [
        f"test_kernel[lstm-forward-small-cudnn]::cudnn_over_generic_per_round{device}",
        f"test_kernel[lstm-forward-small-cudnn]::seconds_per_call{device}",
        f"test_kernel[lstm-forward-small-generic]::seconds_per_call{device}",
    ]
    entry = stored["entries"][
        f"test_kernel[lstm-forward-small-cudnn]::cudnn_over_generic_per_round{device}"]
    assert entry["direction"] == "lower" and entry["relative"] is True
    assert entry["test"]["processes"] == 3 and entry["test"]["slowdown"] > 0
    assert entry["value"] < 1, f"20x the work should take longer; cuDNN/generic {entry['value']}"
    # checked against the calibration, the table shows both kernels and the speedup (the
    # verdict on these microsecond timings of one busy CI process is not the point here:
    # tests/test_gpu_calibration.py shows both error rates)
    result = inprocess(pytester, *QUICK, "--benchmark-compare",
                       "--benchmark-storage=store/{device_key}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, outcomes
    assert "has no entry" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*test_kernel[[]lstm-forward-small-cudnn[]] (0001_*"])
    result.stdout.fnmatch_lines([
        "*pytest-rnn kernel benchmarks*",
        f"median time per call on gpu-NVIDIA-H100-80GB-HBM3-cudnn9{suffix}",
        f"*{group}* ms * ms *x  * median <= *",
    ])


BAND_TEST = """
    import os
    from pytest_rnn import benchmarking
    from pytest_rnn.benchmarking import BenchCase, Timing

    def t(s):
        # 20 rounds scattered by +-2% (a GPU's round-to-round spread), the same pattern
        # for every median, so the reruns differ from the recording by their medians only
        data = tuple(s * (1 + 0.02 * ((7 * i) % 11 - 5) / 5) for i in range(20))
        return Timing(median=s, mean=s, stddev=0.0, min=min(data), rounds=20, data=data)

    def test_speedup(rnn_baseline, rnn_record, rnn_device):
        case = BenchCase("gru", "train", "realistic", "cudnn")
        generic = t(0.010)
        cudnn = t(float(os.environ["CUDNN_S"]))
        benchmarking.check_speedup(
            rnn_baseline, case, generic=generic, cudnn=cudnn,
            record=rnn_record, device_key=rnn_device.key,
            tolerance=benchmarking.SPEEDUP_MIN_EFFECT)
"""


def test_speedup_baseline_band_is_checked_per_hardware_key(pytester, monkeypatch):
    """The single-process rule, still there for a caller who passes a fixed tolerance (the
    default is the calibration over processes: tests/test_gpu_calibration.py)."""
    pytester.makeconftest(FAKE_DEVICE_CONFTEST)
    pytester.makepyfile(test_band=BAND_TEST)
    monkeypatch.setenv("FAKE_GPU_NAME", FAKE_GPU)
    monkeypatch.setenv("CUDNN_S", "0.002")  # speedup 5.0
    inprocess(pytester, "--rnn-update-baselines").assert_outcomes(passed=1)

    monkeypatch.setenv("CUDNN_S", "0.0021")  # cuDNN 5% slower: within the minimum effect
    ok = inprocess(pytester)
    ok.assert_outcomes(passed=1)
    ok.stdout.fnmatch_lines(["*gru-train-realistic*4.76x  ok median <= 0.22*"])

    monkeypatch.setenv("CUDNN_S", "0.0024")  # cuDNN 20% slower (speedup 5.0 -> 4.2)
    slow = inprocess(pytester)
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines([
        "*cudnn_over_generic_per_round SLOWER than its stored rounds: median 0.24*"
        "median ratio 1.200 (fails above 1.10), Mann-Whitney p = *",
        "*gru-train-realistic*4.17x  FAIL median <= 0.22*",
    ])

    monkeypatch.setenv("FAKE_GPU_NAME", "NVIDIA L4")  # another GPU: its own entry, none yet
    other = inprocess(pytester)
    other.assert_outcomes(failed=1)
    other.stdout.fnmatch_lines(
        ["*no stored rounds for cudnn_over_generic_per_round*device=gpu-NVIDIA-L4*"])


def test_cudnn_case_without_its_generic_pair_says_why(pytester, monkeypatch):
    pytester.makeconftest(FAKE_DEVICE_CONFTEST)
    pytester.makepyfile(test_pair=PAIR_TEST)
    monkeypatch.setenv("FAKE_GPU_NAME", FAKE_GPU)
    result = inprocess(pytester, *QUICK, "-rs", "-k", "cudnn")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "*cuDNN timed, speedup not checked: the generic benchmark of group*"
        "(lstm-forward-small-generic) did not run before it*",
    ])


def test_plugin_loads_and_runs_without_pytest_benchmark(pytester):
    pytester.makepyfile("def test_ok():\n    pass\n")
    inprocess(pytester, "-p", "no:benchmark").assert_outcomes(passed=1)


def test_real_suite_on_cpu_times_the_generic_kernel_and_skips_cudnn_saying_why(
        pytester, rnn_device):
    if rnn_device.has_gpu:
        pytest.skip("a GPU is visible: the cuDNN cases run here instead of skipping")
    result = inprocess(pytester, str(SUITE), "--benchmark-only", "-rs", *QUICK,
                       "-k", "lstm-forward-small")
    backend = runtime.keras_backend_name()
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*lstm-forward-small (B8 T10 F8 U16)* ms * - * -  -",
        "no cuDNN speedup in this run: the cuDNN cases need a visible GPU*",
        f"SKIPPED *test_kernel_benchmarks.py*: {markers.no_gpu_reason(backend)}",
    ])


@subprocess_runs.declare("xdist_benchmark_run")
def _xdist_benchmark(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    """The benchmark pair under ``-n 1`` (a head-start subprocess: workers are processes)."""
    return subprocess_runs.project(
        workdir, {"conftest.py": FAKE_DEVICE_CONFTEST, "test_pair.py": PAIR_TEST},
        "--no-header", "-n", "1", "-rs")


xdist_benchmark_run = subprocess_runs.finished_fixture("xdist_benchmark_run")


def test_benchmarks_under_xdist_skip_and_say_so_instead_of_passing(xdist_benchmark_run):
    result = subprocess_runs.run_result(xdist_benchmark_run)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        f"2 benchmark(s) took no timing: {benchmarking.XDIST_REASON}",
        f"SKIPPED [[]2[]] *{benchmarking.XDIST_REASON}",
    ])


def test_records_of_other_shapes_do_not_break_the_table(pytester):
    """A user's own ``timing``/``speedup`` records (rnn_record takes any fields) are left
    out of the kernel table with a note, not a KeyError in the terminal summary."""
    pytester.makepyfile(test_own="""
        def test_own_timings(rnn_record):
            rnn_record("timing", "tokenizer", seconds=0.25)
            rnn_record("speedup", "mine", factor=2.0)
            rnn_record("timing", "lstm-generic", group="lstm", kernel="generic",
                       median=0.002, device_key="cpu")
    """)
    result = inprocess(pytester)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*pytest-rnn kernel benchmarks*",
        "2 timing/speedup/cost_ratio record(s) without this table's fields *left out of it",
        "median time per call on cpu",
        "  lstm * 2.000 ms * - * -  -",
    ])


def test_benchmarks_run_after_the_timings_they_divide_by_whatever_the_order(pytester):
    """pytest-randomly may put a cuDNN case before its group's generic one, or SimpleRNN's
    cost ratio before GRU's and LSTM's timings: the plugin reorders the benchmark items
    among the slots they hold (generic before cuDNN, SimpleRNN's generic last), and leaves
    every other test where it was."""
    pytester.makepyfile(test_order="""
        import pytest
        from pytest_rnn.bench.cases import BenchCase

        CASES = [BenchCase("gru", "forward", "small", "cudnn"),
                 BenchCase("simple_rnn", "forward", "small", "generic"),
                 BenchCase("gru", "forward", "small", "generic"),
                 BenchCase("lstm", "forward", "small", "cudnn"),
                 BenchCase("lstm", "forward", "small", "generic")]

        def test_first():
            pass

        @pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}-{c.kernel}")
        def test_kernel(case):
            pass

        @pytest.mark.parametrize("i", [1, 2])
        def test_last(i):
            pass
    """)
    result = pytester.runpytest_inprocess("--co", "-q", "--no-header", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "test_order.py::test_first",
        "test_order.py::test_kernel[[]gru-generic[]]",
        "test_order.py::test_kernel[[]lstm-generic[]]",
        "test_order.py::test_kernel[[]simple_rnn-generic[]]",
        "test_order.py::test_kernel[[]gru-cudnn[]]",
        "test_order.py::test_kernel[[]lstm-cudnn[]]",
        "test_order.py::test_last[[]1[]]",
        "test_order.py::test_last[[]2[]]",
    ])
