"""The plugin's foundation: markers, options, header, seeding, xdist behaviour.

Runs that import TensorFlow are expensive (~3 s each), so the seed probe runs twice
for the whole module: once in this process (where TensorFlow is already imported) and
once as a ``-n 2`` subprocess that starts with the session (see subprocess_runs);
several tests read each run. Everything else runs in-process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# imported before any in-process run: pytester drops the modules an inner run imports
# first, and NumPy cannot be imported twice in one process
import keras  # noqa: F401
import numpy  # noqa: F401
import pytest
import subprocess_runs

from pytest_rnn import backends, device, options, seeding
from pytest_rnn.backends import devices
from pytest_rnn.plugin import markers
from pytest_rnn.runtime import threads, versions

SEED_PROBE = """
import json, os, sys
from pathlib import Path

import pytest

OUT = Path(os.environ["SEED_PROBE_OUT"])


@pytest.mark.parametrize("i", range(4))
def test_records_seed(rnn_seed, request, i):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = OUT / f"{worker}.jsonl"
    with path.open("a") as fh:
        fh.write(json.dumps({"nodeid": request.node.nodeid, "seed": rnn_seed,
                             "threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
                             "growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")}) + "\\n")


@pytest.mark.gpu
def test_needs_gpu():
    pass


@pytest.mark.rnn_timing
def test_times_a_kernel():
    pass
"""

REVERSE_AND_WATCH_CONFTEST = """
import json, os, sys
from pathlib import Path


def pytest_collection_modifyitems(items):
    items.reverse()


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        Path(os.environ["SEED_PROBE_OUT"], "controller.json").write_text(
            json.dumps({"tensorflow_imported": "tensorflow" in sys.modules}))
"""


def _probe(workdir: Path, *args: str, conftest: str | None = None) -> subprocess_runs.Command:
    """A project with the seed probe (and ``conftest``) under ``workdir``, run with ``args``."""
    project, out = workdir / "project", workdir / "out"
    project.mkdir()
    out.mkdir()
    (project / "test_probe.py").write_text(SEED_PROBE)
    if conftest is not None:
        (project / "conftest.py").write_text(conftest)
    return subprocess_runs.Command(
        subprocess_runs.pytest_argv("-rs", "--rnn-seed", "77", *args),
        cwd=project, env=subprocess_runs.clean_env(SEED_PROBE_OUT=str(out)), timeout=300)


def _read_probe(out: Path) -> tuple[dict, list, dict | None]:
    """(seed per node id, rows the probe wrote, what the controller saw) from ``out``."""
    seeds = {}
    rows = []
    for path in out.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows.append(row)
            seeds[row["nodeid"]] = row["seed"]
    controller = out / "controller.json"
    watched = json.loads(controller.read_text()) if controller.exists() else None
    return seeds, rows, watched


@subprocess_runs.declare("xdist_run")
def _xdist_probe(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return _probe(workdir, "-n", "2", conftest=REVERSE_AND_WATCH_CONFTEST)


#: The plain run, once per session: pytester is per test, the run is read by several.
_PLAIN_RUN: list = []


@pytest.fixture
def plain_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """One ordinary run (no xdist), in file order, in this process: TensorFlow is already
    imported here, and a subprocess would spend seconds importing it again.
    (RunResult, seed per node id, rows the probe wrote, None)."""
    if not _PLAIN_RUN:
        for setting in options.SETTINGS:
            if setting.env:
                monkeypatch.delenv(setting.env, raising=False)
        out = pytester.mkdir("out")
        monkeypatch.setenv("SEED_PROBE_OUT", str(out))
        pytester.makepyfile(test_probe=SEED_PROBE)
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs",
                                              "--rnn-seed", "77")
        _PLAIN_RUN.append((result, *_read_probe(out)))
    return _PLAIN_RUN[0]


@pytest.fixture(scope="module")
def xdist_run(request):
    """One ``-n 2`` run with the test order reversed by a conftest (a subprocess: the
    workers are processes anyway)."""
    finished = subprocess_runs.result(request)
    proc = finished.proc
    result = pytest.RunResult(proc.returncode, proc.stdout.splitlines(),
                              proc.stderr.splitlines(), 0.0)
    return (result, *_read_probe(finished.workdir / "out"))


# --- markers --------------------------------------------------------------------------------


def test_markers_are_listed_with_descriptions(pytester: pytest.Pytester):
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.gpu: the test needs a visible GPU*--rnn-require-gpu*",
        "@pytest.mark.slow: trains real models*",
    ])


def test_markers_pass_strict_markers_in_a_foreign_project(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.slow
        def test_a():
            pass
    """)
    result = pytester.runpytest_inprocess("--strict-markers", "--no-header", "-m", "slow")
    result.assert_outcomes(passed=1)


def test_gpu_test_is_skipped_with_a_reason_that_says_why(plain_run):
    result, _, _, _ = plain_run
    result.stdout.fnmatch_lines(
        ["SKIPPED ?1? test_probe.py:*: pytest-rnn: @gpu test needs a visible GPU*sees none*"]
    )
    assert result.ret == 0


GPU_TEST = """
import pytest

@pytest.mark.gpu
def test_gpu():
    pass
"""


def test_require_gpu_turns_the_skip_into_a_run_error(pytester, clean_env):
    clean_env.setattr(devices, "detect",
                      lambda: device.DeviceInfo(has_gpu=False, backend="tensorflow"))
    pytester.makepyfile(GPU_TEST)
    result = pytester.runpytest_inprocess("--no-header", "--rnn-require-gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-rnn: --rnn-require-gpu asks for a GPU but the Keras backend "
        f"(TensorFlow {versions.tensorflow_version() or '(version unknown)'}, CUDA build *) "
        "sees none*"
    ])


#: Loaded before pytest_configure, where --rnn-require-gpu's check runs: a host without GPU.
NO_GPU_CONFTEST = """
from pytest_rnn.backends import devices
from pytest_rnn.runtime.device import DeviceInfo

devices.detect = lambda: DeviceInfo(has_gpu=False, backend="tensorflow")
"""


@subprocess_runs.declare("require_gpu_from_env_run")
def _require_gpu_from_env(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    """A process with its own environment: setting the variable in this process would
    reach the head-start runs that start meanwhile (see subprocess_runs)."""
    return subprocess_runs.project(workdir, {"conftest.py": NO_GPU_CONFTEST,
                                             "test_gpu.py": GPU_TEST},
                                   "--no-header", PYTEST_RNN_REQUIRE_GPU="1")


require_gpu_from_env_run = subprocess_runs.finished_fixture("require_gpu_from_env_run")


def test_require_gpu_from_the_environment_is_named_as_the_environment_variable(
        require_gpu_from_env_run):
    proc = require_gpu_from_env_run.proc
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert ("ERROR: pytest-rnn: environment variable PYTEST_RNN_REQUIRE_GPU=1 asks for a GPU "
            "but the Keras backend (TensorFlow ") in proc.stderr, proc.stderr
    assert "--rnn-require-gpu asks" not in proc.stderr


def test_require_gpu_names_the_tensorflow_version_of_any_distribution(pytester, clean_env):
    """tensorflow-cpu (or -intel, -macos, ...) installs the same TensorFlow under another name."""
    clean_env.setattr(devices, "detect",
                      lambda: device.DeviceInfo(has_gpu=False, backend="tensorflow"))
    real = versions.package_version
    clean_env.setattr(versions, "package_version", lambda name: (
        None if name == "tensorflow" else "2.99.1" if name == "tensorflow-cpu" else real(name)))
    pytester.makepyfile(GPU_TEST)
    result = pytester.runpytest_inprocess("--no-header", "--rnn-require-gpu")
    result.stderr.fnmatch_lines(["*Keras backend (TensorFlow 2.99.1, CUDA build*"])


def test_require_gpu_with_a_gpu_runs_gpu_tests(pytester, monkeypatch):
    fake = device.DeviceInfo(has_gpu=True, gpu_names=("NVIDIA H100",), cudnn_version="9")
    monkeypatch.setattr(devices, "detect", lambda: fake)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.gpu
        def test_gpu():
            pass
    """)
    result = pytester.runpytest_inprocess("--rnn-require-gpu", "--no-header")
    result.assert_outcomes(passed=1)


# --- header ---------------------------------------------------------------------------------


def test_header_shows_versions_backend_build_and_seed_and_the_end_the_devices(plain_run):
    result, _, _, _ = plain_run
    found = versions.versions()
    result.stdout.fnmatch_lines([
        f"pytest-rnn: TensorFlow {found['tensorflow']}, Keras {found['keras']}, "
        f"backend {found['backend']}; built with CUDA {found['cuda_build']}, "
        f"cuDNN {found['cudnn_build']}",
        "pytest-rnn: base seed 77;*",
        # detected for the @gpu test, so listed at the end of the run
        f"pytest-rnn: devices: CPU only (no visible GPU) (key cpu, seen by {found['backend']})",
    ])


def test_xdist_controller_does_not_import_tensorflow(xdist_run):
    result, _, _, controller = xdist_run
    assert result.ret == 0, result.stdout.str()
    assert controller == {"tensorflow_imported": False}
    # only the worker that ran the @gpu test detected its devices
    result.stdout.fnmatch_lines(["pytest-rnn: 1 xdist worker(s) ran on CPU only (device key cpu)"])


def test_timing_tests_skip_beside_other_xdist_workers_and_say_how_to_run_them(plain_run,
                                                                            xdist_run):
    """``rnn_timing`` tests time against rounds taken on a quiet machine: they run in one
    process and skip, naming the command that runs them, beside other xdist workers."""
    plain, _, _, _ = plain_run
    plain.stdout.fnmatch_lines(["*1 skipped*"])  # the @gpu test only
    assert "rnn_timing" not in plain.stdout.str()
    result, _, _, _ = xdist_run
    reason = markers.TIMING_UNDER_XDIST.format(workers=2)
    result.stdout.fnmatch_lines([
        "pytest-rnn: 1 rnn_timing test(s) skipped beside other xdist workers; time them in "
        "one process: pytest -m rnn_timing -p no:xdist",
        f"SKIPPED [[]1[]] *test_probe.py:*: {reason}",
    ])


def test_build_info_is_read_without_importing_tensorflow():
    source = "import collections\nbuild_info = collections.OrderedDict([('cuda_version', '12.5'),"
    source += " ('cudnn_version', '9')])\n"
    assert versions.parse_build_info(source) == {"cuda_version": "12.5", "cudnn_version": "9"}
    assert versions.parse_build_info("x = 1\n") == {}


# --- seeds ----------------------------------------------------------------------------------


def test_seed_is_the_same_whatever_the_order_or_worker(plain_run, xdist_run):
    _, plain, _, _ = plain_run
    _, xdist, _, _ = xdist_run
    assert len(plain) == 4
    assert plain == xdist


def test_seeds_differ_between_tests_and_follow_the_base_seed(plain_run):
    _, seeds, _, _ = plain_run
    assert len(set(seeds.values())) == len(seeds)
    for nodeid, seed in seeds.items():
        assert seed == seeding.derive_seed(77, nodeid)
        assert seed != seeding.derive_seed(78, nodeid)


def test_rnn_seed_seeds_numpy_python_and_keras(rnn_seed):
    import random

    import numpy as np

    draw = keras.ops.convert_to_numpy  # any backend's tensor
    a = (random.random(), np.random.rand(), float(draw(keras.random.uniform(()))))
    backends.seed_everything(rnn_seed)
    b = (random.random(), np.random.rand(), float(draw(keras.random.uniform(()))))
    assert a == b


def test_the_first_releases_seed_everything_still_seeds_the_same_way():
    """``pytest_rnn.seeding.seed_everything`` (the first release's path) is the plain seeding
    the plugin's one wraps: the same seed gives the same draws through either."""
    import random

    from pytest_rnn.seeding import seed_everything

    def draws():
        return (random.random(), float(keras.ops.convert_to_numpy(keras.random.uniform(()))))

    seed = seeding.derive_seed(2, "first-release-path")
    seed_everything(seed)
    plain = draws()
    backends.seed_everything(seed)
    assert draws() == plain


def _tf_draws(tf) -> list[float]:
    """Stateful TensorFlow draws: global-seeded ops whose kernels the cache keeps."""
    return [*tf.random.uniform((3,)).numpy().tolist(), *tf.random.normal((2,)).numpy().tolist(),
            *tf.random.uniform((3,), seed=5).numpy().tolist()]


def test_a_new_seed_keeps_tensorflows_kernels_and_draws_what_tf_random_set_seed_draws(
        monkeypatch):
    """seed_everything skips TensorFlow's kernel-cache clearing for a seed new to the
    process (the cost of a seeded test), and stateful tf.random draws are still exactly
    those after tf.random.set_seed, which clears; a seed given again clears as usual."""
    tf = pytest.importorskip("tensorflow")
    from pytest_rnn.adapters import owner_and_name, resolve
    from pytest_rnn.adapters.tensorflow_internals import CLEAR_CACHES

    clears = []
    real_clear = resolve(CLEAR_CACHES)
    monkeypatch.setattr(*owner_and_name(CLEAR_CACHES),
                        lambda handle: (clears.append(1), real_clear(handle)))
    first, second = seeding.derive_seed(1, "kernel-cache/a"), seeding.derive_seed(1, "b")
    backends.seed_everything(first)
    assert clears == [], "a seed new to this process cleared TensorFlow's kernel cache"
    kept = _tf_draws(tf)
    backends.seed_everything(second)
    other = _tf_draws(tf)
    backends.seed_everything(first)  # given before: its kernels exist, so the cache goes
    assert clears == [1], "a seed given before did not clear TensorFlow's kernel cache"
    assert _tf_draws(tf) == kept, "the same seed did not reproduce TensorFlow's draws"
    for seed, draws in ((first, kept), (second, other)):
        tf.random.set_seed(seed)  # TensorFlow's own path, which always clears
        assert _tf_draws(tf) == draws, (
            f"after seed {seed}, draws with the kernel cache kept differ from TensorFlow's")
    assert kept != other


def test_derived_seed_fits_every_rng():
    for key in ("a", "tests/x.py::test_y[1]", ""):
        assert 0 <= seeding.derive_seed(2**40, key) < 2**31 - 1


# --- xdist worker environment ---------------------------------------------------------------


def test_xdist_workers_cap_threads_and_enable_gpu_memory_growth(xdist_run):
    _, _, rows, _ = xdist_run
    cap = threads.worker_thread_env(2, threads.cpu_count())
    expected_threads = os.environ.get("TF_NUM_INTRAOP_THREADS", cap["TF_NUM_INTRAOP_THREADS"])
    assert rows and {r["threads"] for r in rows} == {expected_threads}
    assert {r["growth"] for r in rows} == {os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH", "true")}


@pytest.mark.parametrize(("workers", "cores", "intra", "inter"), [
    (1, 2, "2", "2"), (2, 2, "1", "1"), (4, 2, "1", "1"), (2, 16, "8", "2"),
])
def test_worker_thread_caps_split_the_cores(workers, cores, intra, inter):
    env = threads.worker_thread_env(workers, cores)
    assert (env["TF_NUM_INTRAOP_THREADS"], env["TF_NUM_INTEROP_THREADS"]) == (intra, inter)
    assert env["OMP_NUM_THREADS"] == intra


def test_user_thread_settings_win_over_the_caps(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "7")
    for key in ("TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_FORCE_GPU_ALLOW_GROWTH"):
        monkeypatch.delenv(key, raising=False)
    applied = threads.configure_worker_environment()
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "7"
    assert "TF_NUM_INTRAOP_THREADS" not in applied
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


# --- options --------------------------------------------------------------------------------


def _settings(pytester: pytest.Pytester, *args: str) -> options.RnnSettings:
    config = pytester.parseconfigure(*args)
    return options.get(config)


@pytest.fixture
def clean_env(monkeypatch):
    for setting in options.SETTINGS:
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    return monkeypatch


CROSS_BACKEND_TESTS = """
import pytest

@pytest.mark.cross_backend
def test_on_other_backends():
    pass

def test_plain():
    pass
"""


def test_skip_cross_backend_skips_only_those_tests_naming_the_setting(pytester, clean_env):
    pytester.makepyfile(CROSS_BACKEND_TESTS)
    result = pytester.runpytest_inprocess("--no-header", "-rs", "-o",
                                          "rnn_skip_cross_backend=true")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "SKIPPED * pytest-rnn: cross-backend tests are off (ini value rnn_skip_cross_backend = "
        "True); run them with -o rnn_skip_cross_backend=false -m cross_backend"])
    clean_env.setenv("PYTEST_RNN_SKIP_CROSS_BACKEND", "1")
    result = pytester.runpytest_inprocess("--no-header", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*(environment variable PYTEST_RNN_SKIP_CROSS_BACKEND=1)*"])
    result = pytester.runpytest_inprocess("--no-header", "-o", "rnn_skip_cross_backend=false")
    result.assert_outcomes(passed=2)


def test_defaults(pytester, clean_env):
    s = _settings(pytester)
    assert s.seed == options.DEFAULT_SEED
    assert s.imdb_path is None
    assert s.baselines == Path(pytester.path) / "baselines"
    assert not (s.require_gpu or s.deterministic)


def test_command_line_beats_ini_beats_environment(pytester, clean_env):
    pytester.makeini("[pytest]\nrnn_seed = 20\nrnn_imdb_path = data/ini.npz\n")
    clean_env.setenv("PYTEST_RNN_SEED", "30")
    clean_env.setenv("PYTEST_RNN_IMDB_PATH", "/env/imdb.npz")
    clean_env.setenv("PYTEST_RNN_BASELINES", "/env/baselines")
    s = _settings(pytester, "--rnn-seed", "10")
    assert s.seed == 10  # command line
    assert s.imdb_path == Path(pytester.path) / "data" / "ini.npz"  # ini, relative to the ini
    assert s.baselines == Path("/env/baselines")  # environment


def test_invalid_boolean_in_the_ini_names_the_key_and_what_is_accepted(pytester, clean_env):
    pytester.makeini("[pytest]\nrnn_deterministic = maybe\n")
    result = pytester.runpytest_inprocess("--no-header")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-rnn: ini value rnn_deterministic must be a boolean (one of 1/0, "
        "true/false, yes/no, on/off); invalid truth value 'maybe'"
    ])
    assert "Traceback" not in result.stderr.str()


def test_boolean_settings_from_ini_and_environment(pytester, clean_env):
    pytester.makeini("[pytest]\nrnn_deterministic = true\n")
    clean_env.setenv("PYTEST_RNN_REQUIRE_GPU", "0")
    s = _settings(pytester)
    assert s.deterministic is True and s.require_gpu is False


@pytest.mark.parametrize(("args", "env", "message"), [
    (("--rnn-seed", "abc"), {}, "*--rnn-seed must be a non-negative integer, got 'abc'*"),
    (("--rnn-seed", "-1"), {}, "*--rnn-seed must be a non-negative integer, got '-1'*"),
    ((), {"PYTEST_RNN_SEED": "1.5"},
     "*environment variable PYTEST_RNN_SEED must be a non-negative integer*"),
    ((), {"PYTEST_RNN_DETERMINISTIC": "maybe"},
     "*environment variable PYTEST_RNN_DETERMINISTIC must be a boolean*"),
    (("--rnn-imdb-path", " "), {}, "*--rnn-imdb-path is empty*"),
])
def test_invalid_values_are_usage_errors_naming_the_option(pytester, clean_env, args, env, message):
    for key, value in env.items():
        clean_env.setenv(key, value)
    result = pytester.runpytest_inprocess("--no-header", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_baselines_option_must_be_a_directory(pytester, clean_env):
    pytester.makefile(".json", somefile="{}")
    result = pytester.runpytest_inprocess("--no-header", "--rnn-baselines", "somefile.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rnn-baselines must be a directory*somefile.json is a file*"])


def test_unknown_option_is_rejected(pytester):
    result = pytester.runpytest_inprocess("--no-header", "--rnn-sed", "3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --rnn-sed*"])


# --- device key -----------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "cudnn", "key"), [
    ((), None, "cpu"),
    (("NVIDIA H100 80GB HBM3",), "9", "gpu-NVIDIA-H100-80GB-HBM3-cudnn9"),
    (("NVIDIA A100-SXM4-40GB",) * 2, "8.9.7", "gpu-NVIDIA-A100-SXM4-40GB-x2-cudnn8"),
    (("Tesla T4",), None, "gpu-Tesla-T4-cudnnunknown"),
])
def test_device_key_is_short_and_stable(names, cudnn, key):
    assert device.device_key(names, cudnn) == key
    info = device.DeviceInfo(has_gpu=bool(names), gpu_names=names, cudnn_version=cudnn)
    assert info.key == key and info.as_dict()["key"] == key


def test_rnn_device_fixture_reports_this_cpu_host(rnn_device):
    assert rnn_device.has_gpu is False
    assert rnn_device.key == "cpu"
    assert rnn_device.backend == versions.keras_backend_name()  # asked of the Keras backend


def test_device_probe_of_an_unknown_backend_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown Keras backend 'mxnet'; known: tensorflow, "
                                         "jax, torch"):
        devices.visible_gpus("mxnet")


def test_rnn_float32_turns_tf32_off_for_the_test_and_restores_it(pytester: pytest.Pytester):
    pytester.makepyfile("""
        from pytest_rnn import backends

        def test_inside(rnn_float32):
            assert backends.full_float32_enabled()

        def test_after():
            assert not backends.full_float32_enabled()
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(
        passed=2)


# --- fixture arguments ----------------------------------------------------------------------


def test_imdb_subset_with_an_unknown_argument_lists_the_accepted_ones(pytester):
    pytester.makepyfile("""
        def test_data(imdb_subset):
            imdb_subset(num_words=100, bogus=1)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--no-header")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E*TypeError: imdb_subset(): got an unexpected keyword argument 'bogus'; it accepts "
        "num_words, maxlen, n_train, n_val, n_test, seed, padding, truncating (the data file "
        "comes from --rnn-imdb-path, not an argument)",
    ])
    assert "signature.bind" not in result.stdout.str()  # the user's line, not the factory's
