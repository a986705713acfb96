"""The baseline store: file format and validation, comparison bands, recording, xdist merging.

Most runs are in-process pytester runs with ``--no-header`` (no TensorFlow import,
a few milliseconds each); the xdist run and the concurrent-writer check need real
processes and are the slow part of this file (~4 s together).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

# NumPy is loaded before pytester snapshots sys.modules, so in-process runs that use it
# never load it a second time ("cannot load module more than once per process")
import numpy  # noqa: F401
import pytest
import subprocess_runs
from pytest_rnn.baselines import BaselineFileError, read_baseline_file, write_entries

from pytest_rnn import baselines, records
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store import Status, lock_path, rules


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch):
    """Settings from the outer environment must not leak into the runs under test."""
    for name in ("PYTEST_RNN_BASELINES", "PYTEST_RNN_SEED", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)


def entry(value: float = 0.8, **changes) -> dict:
    """A well-formed entry, as the store writes it."""
    base = {
        "value": value, "tolerance": 0.05, "direction": "higher", "relative": False,
        "seeds": {"base": 1234, "test": 1}, "recorded_at": "2025-01-01T00:00:00Z",
        "recorded_on": {"device": "cpu", "tensorflow": "2.21.0", "keras": "3.15.1"},
    }
    base.update(changes)
    return base


def write_file(path: Path, entries: dict, schema_version=1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": schema_version, "entries": entries}, indent=2))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("--no-header", "-p", "no:cacheprovider", *args)


# --- reading: a broken file is an error naming the file and the key ----------------------------


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", r"is not valid JSON"),
    ("[]", r"must hold a JSON object, got list"),
    ('{"schema_version": 2, "entries": {}}', r"has schema_version 2; this pytest-rnn reads "
                                             r"schema_version 1"),
    ('{"entries": {}}', r"has schema_version None"),
    ('{"schema_version": 1, "entries": {}, "extra": 1}', r"unknown top-level key\(s\) 'extra'"),
    ('{"schema_version": 1, "entries": []}', r"'entries' must be a JSON object"),
])
def test_unreadable_file_names_the_file(tmp_path, content, expected):
    path = tmp_path / "suite.json"
    path.write_text(content)
    with pytest.raises(BaselineFileError, match=expected) as info:
        read_baseline_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("broken", "expected"), [
    ("not an object", r"must be a JSON object, got str"),
    ({k: v for k, v in entry().items() if k != "tolerance"}, r"missing field\(s\) tolerance"),
    (entry(value="0.8"), r"'value' must be a finite number, got '0.8'"),
    (entry(value=True), r"'value' must be a finite number, got True"),
    (entry(tolerance=-0.1), r"'tolerance' must be >= 0, got -0.1"),
    (entry(direction="up"), r"'direction' must be one of \['both', 'higher', 'lower'\]"),
    (entry(relative="no"), r"'relative' must be true or false"),
    (entry(recorded_on="cpu"), r"'recorded_on' an object"),
])
def test_malformed_entry_names_file_and_key(tmp_path, broken, expected):
    path = tmp_path / "suite.json"
    write_file(path, {"test_ok::accuracy": entry(), "test_bad::accuracy": broken})
    with pytest.raises(BaselineFileError, match=expected) as info:
        read_baseline_file(path)
    assert f"baseline file {path}, entry 'test_bad::accuracy'" in str(info.value)


def test_nan_in_a_hand_edited_file_is_refused(tmp_path):
    path = tmp_path / "suite.json"
    text = json.dumps({"schema_version": 1, "entries": {"t::m": entry()}})
    path.write_text(text.replace('"value": 0.8', '"value": NaN'))
    with pytest.raises(BaselineFileError, match=r"entry 't::m': 'value' must be a finite number"):
        read_baseline_file(path)


def test_missing_file_has_no_entries(tmp_path):
    assert read_baseline_file(tmp_path / "absent.json") == {}


# --- writing: merged under a lock, atomic, sorted ----------------------------------------------


def test_write_merges_sorts_and_keeps_other_entries(tmp_path):
    path = tmp_path / "b" / "suite.json"
    write_file(path, {"z_other::m": entry(0.1), "a_test::m": entry(0.5)})
    old = write_entries(path, {"a_test::m": entry(0.6), "m_new::m": entry(0.7)})
    assert old["a_test::m"]["value"] == 0.5
    text = path.read_text()
    data = json.loads(text)
    assert {k: e["value"] for k, e in data["entries"].items()} == {
        "a_test::m": 0.6, "m_new::m": 0.7, "z_other::m": 0.1}
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n", "keys must be sorted"
    assert list(data) == ["entries", "schema_version"]


def test_write_refuses_to_rewrite_a_corrupt_file(tmp_path):
    path = tmp_path / "suite.json"
    path.write_text('{"schema_version": 1, "entries": {"t::m": {"value": 1}}}')
    before = path.read_bytes()
    with pytest.raises(BaselineFileError, match=r"suite.json, entry 't::m': missing field"):
        write_entries(path, {"other::m": entry()})
    assert path.read_bytes() == before


def test_write_is_atomic_when_it_fails_midway(tmp_path, monkeypatch):
    path = tmp_path / "suite.json"
    write_file(path, {"t::m": entry(0.5)})
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_entries(path, {"t::m": entry(0.9)})
    assert path.read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_write_replaces_the_file_instead_of_truncating_it(tmp_path):
    """A reader holding the old file open keeps reading the complete old version."""
    path = tmp_path / "suite.json"
    write_file(path, {"t::m": entry(0.5)})
    with path.open() as reader:
        write_entries(path, {"t::m": entry(0.9)})
        assert json.loads(reader.read())["entries"]["t::m"]["value"] == 0.5
    assert read_baseline_file(path)["t::m"]["value"] == 0.9


CONCURRENT_WRITER = """
import sys
from pathlib import Path
from pytest_rnn.baselines import write_entries

path, worker = Path(sys.argv[1]), sys.argv[2]
entry = {"value": 1.0, "tolerance": 0.0, "direction": "higher", "relative": False,
         "seeds": None, "recorded_at": "now", "recorded_on": {}}
for i in range(25):
    write_entries(path, {f"{worker}-{i:02d}::m": entry})
"""


def test_concurrent_writers_lose_no_entry(tmp_path):
    """Separate pytest processes updating one file merge under the lock: nothing is lost."""
    path = tmp_path / "suite.json"
    script = tmp_path / "writer.py"
    script.write_text(CONCURRENT_WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(path), f"w{n}"],
                              stderr=subprocess.PIPE, text=True) for n in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    keys = set(read_baseline_file(path))
    expected = {f"w{n}-{i:02d}::m" for n in range(4) for i in range(25)}
    assert keys == expected, f"lost entries: {sorted(expected - keys)}"


# --- bands: what passes ------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "relative", "value", "passes"), [
    ("higher", False, 0.75, True),    # exactly baseline - tolerance
    ("higher", False, 0.7499, False),
    ("higher", False, 5.0, True),     # improvements always pass
    ("lower", False, 0.85, True),     # exactly baseline + tolerance
    ("lower", False, 0.8501, False),
    ("lower", False, -3.0, True),
    ("both", False, 0.7501, True),
    ("both", False, 0.8501, False),
    ("both", False, 0.7499, False),
    ("higher", True, 0.76, True),     # relative: 0.05 * 0.8 = 0.04
    ("higher", True, 0.7599, False),
])
def test_band(direction, relative, value, passes):
    allowed = rules.band(0.8, 0.05, direction, relative)
    assert (allowed.low - 1e-12 <= value <= allowed.high + 1e-12) is passes, allowed


def test_entry_key_layout():
    versions = {"tensorflow": "2.21.0", "keras": "3.15.1"}
    assert rules.entry_key("T::t[a]", "acc") == "T::t[a]::acc"
    assert rules.entry_key("t", "speedup", device_key="gpu-X-cudnn9", versions=versions) == (
        "t::speedup::device=gpu-X-cudnn9::tf=2.21::keras=3.15")
    assert rules.entry_key("t", "ms", device_key="cpu", backend="jax") == (
        "t::ms::device=cpu::backend=jax")
    # entries recorded on TensorFlow (all of them, before backends were keyed) keep their key
    assert rules.entry_key("t", "ms", device_key="cpu", backend="tensorflow") == "t::ms::device=cpu"


# --- the fixture in a pytest run ---------------------------------------------------------------


CHECKS = """
import pytest

@pytest.mark.parametrize("value", [0.80, 0.90])
def test_acc(rnn_baseline, value):
    rnn_baseline.check("accuracy", value, tolerance=0.05, note="calibrated: spread 0.02")

def test_loss(rnn_baseline):
    rnn_baseline.check("loss", 0.30, tolerance=0.1, higher_is_better=False)
"""


def test_missing_baseline_fails_with_the_command_that_records_it(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    result = run(pytester, "-k", "test_loss", "--rnn-seed", "7")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "no baseline for loss = 0.3: file baselines/test_suite.json has no entry "
        "'test_loss::loss'. Missing baselines fail rather than pass. Record it with:",
        "    pytest --rnn-update-baselines --rnn-seed=7 test_suite.py::test_loss",
    ])
    command = next(line for line in result.outlines if "--rnn-update-baselines" in line)
    args = shlex.split(command)[1:]
    run(pytester, *args).assert_outcomes(passed=1)
    assert list(read_baseline_file(pytester.path / "baselines" / "test_suite.json")) == [
        "test_loss::loss"]
    run(pytester, "--rnn-seed", "7").assert_outcomes(passed=1, failed=2)  # test_acc still missing


def test_command_names_a_non_default_directory(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    result = run(pytester, "-k", "test_loss", "--rnn-baselines", "elsewhere")
    result.stdout.fnmatch_lines([
        f"    pytest --rnn-update-baselines --rnn-baselines={pytester.path / 'elsewhere'} "
        "test_suite.py::test_loss"])


def test_command_repeats_the_options_that_change_what_the_test_measures(pytester):
    """Run verbatim, the printed command must check the same data with the same seed:
    dropping ``--rnn-imdb-path`` made it skip every IMDB test and record nothing."""
    data = pytester.path / "data" / "reviews.npz"
    data.parent.mkdir()
    data.write_bytes(b"")
    pytester.makepyfile(test_measures="""
        def test_reads(rnn_baseline, request, pytestconfig):
            from pytest_rnn import options
            settings = options.get(pytestconfig)
            assert settings.imdb_path is not None, "run without the data path"
            rnn_baseline.check("seed", settings.seed, tolerance=0.0, higher_is_better=None)
    """)
    result = run(pytester, f"--rnn-imdb-path={data}", "--rnn-seed", "11", "--rnn-deterministic")
    result.assert_outcomes(failed=1)
    command = next(line for line in result.outlines if "--rnn-update-baselines" in line)
    words = shlex.split(command)
    assert f"--rnn-imdb-path={data}" in words and "--rnn-seed=11" in words
    assert "--rnn-deterministic" in words
    run(pytester, *words[1:]).assert_outcomes(passed=1)
    run(pytester, f"--rnn-imdb-path={data}", "--rnn-seed=11").assert_outcomes(passed=1)


def test_values_round_trip_exactly_so_a_zero_tolerance_check_passes_on_a_rerun(pytester):
    value = 26.289812345678913  # 17 significant digits; 7 were kept before
    pytester.makepyfile(test_exact=f"""
        def test_exact(rnn_baseline):
            rnn_baseline.check("loss", {value!r}, tolerance=0.0, higher_is_better=None)
    """)
    run(pytester, "--rnn-update-baselines").assert_outcomes(passed=1)
    stored = read_baseline_file(pytester.path / "baselines" / "test_exact.json")
    assert stored["test_exact::loss"]["value"] == value
    run(pytester).assert_outcomes(passed=1)


def test_lock_files_stay_out_of_the_users_repository(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    run(pytester, "--rnn-update-baselines").assert_outcomes(passed=3)
    folder = pytester.path / "baselines"
    assert sorted(p.name for p in folder.iterdir()) == ["test_suite.json"]
    lock = lock_path(folder / "test_suite.json")
    assert folder not in lock.parents and lock.parent.is_dir()
    # the same file reached through another spelling of its path takes the same lock
    assert lock_path(folder / ".." / "baselines" / "test_suite.json") == lock


def test_check_takes_numpy_and_tensor_scalars_and_names_what_it_accepts(pytester):
    pytester.makepyfile(test_scalars=r"""
        import numpy as np
        import pytest

        class Tensor:  # what Keras/TF/JAX/PyTorch scalars offer
            def numpy(self):
                return np.array(0.5, dtype="float32")

        def test_scalars(rnn_baseline):
            rnn_baseline.check("zero_d", np.array(0.25), tolerance=0.1)
            rnn_baseline.check("np_float", np.float32(0.5), tolerance=0.1)
            rnn_baseline.check("tensor", Tensor(), tolerance=0.1)
            with pytest.raises(ValueError, match=r"value must be a real number, a NumPy "
                               r"scalar, or a 0-d array/tensor .*shape \(2,\)"):
                rnn_baseline.check("vector", np.array([0.1, 0.2]), tolerance=0.1)
    """)
    run(pytester, "--rnn-update-baselines").assert_outcomes(passed=1)
    stored = read_baseline_file(pytester.path / "baselines" / "test_scalars.json")
    assert {k: e["value"] for k, e in stored.items()} == {
        "test_scalars::zero_d": 0.25, "test_scalars::np_float": 0.5, "test_scalars::tensor": 0.5}


def test_summary_says_not_written_when_the_write_failed(pytester):
    pytester.makepyfile(test_spoil="""
        from pathlib import Path

        def test_spoil(rnn_baseline):
            rnn_baseline.check("acc", 0.5, tolerance=0.1)
            Path("baselines").mkdir(exist_ok=True)
            Path("baselines/test_spoil.json").write_text("{ not json")
    """)
    result = run(pytester, "--rnn-update-baselines")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "1 metric(s): 0 within baseline, 0 failed, 0 recorded, 1 NOT WRITTEN (file write failed)"
        " (Keras backend *)",
        "  NOT WRITTEN *test_spoil :: test_spoil::acc*",
        "NOT WRITTEN baselines/test_spoil.json: baseline file * is not valid JSON*",
    ])
    assert not any(" recorded " in line and "test_spoil::acc" in line for line in result.outlines)


def test_update_records_entries_then_checks_pass(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    result = run(pytester, "--rnn-update-baselines", "--rnn-seed", "5")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["wrote baselines/test_suite.json: 3 entries recorded (3 new or changed), 0 other(s) kept"])
    stored = read_baseline_file(pytester.path / "baselines" / "test_suite.json")
    assert sorted(stored) == ["test_acc[0.8]::accuracy", "test_acc[0.9]::accuracy",
                              "test_loss::loss"]
    acc = stored["test_acc[0.8]::accuracy"]
    assert (acc["value"], acc["tolerance"], acc["direction"], acc["relative"]) == (
        0.8, 0.05, "higher", False)
    assert acc["note"] == "calibrated: spread 0.02"
    from pytest_rnn.seeding import derive_seed

    assert acc["seeds"] == {"base": 5, "test": derive_seed(5, "test_suite.py::test_acc[0.8]")}
    assert stored["test_loss::loss"]["direction"] == "lower"
    assert set(acc["recorded_on"]) >= {"host", "device", "tensorflow", "keras", "python"}
    run(pytester).assert_outcomes(passed=3)


def test_update_leaves_entries_of_tests_that_did_not_run_untouched(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    path = pytester.path / "baselines" / "test_suite.json"
    write_file(path, {"test_removed::accuracy": entry(0.5, note="hand-written"),
                      "test_loss::loss": entry(0.9, direction="lower", tolerance=0.1)})
    run(pytester, "--rnn-update-baselines", "-k", "test_loss").assert_outcomes(passed=1)
    stored = read_baseline_file(path)
    assert stored["test_removed::accuracy"] == entry(0.5, note="hand-written")
    assert stored["test_loss::loss"]["value"] == 0.3
    assert "test_acc[0.8]::accuracy" not in stored


def test_regression_fails_with_baseline_value_band_file_and_key(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    write_file(pytester.path / "baselines" / "test_suite.json", {
        "test_acc[0.8]::accuracy": entry(0.86),   # 0.80 < 0.86 - 0.05
        "test_acc[0.9]::accuracy": entry(0.93),   # 0.90 >= 0.88: passes
        "test_loss::loss": entry(0.15, direction="lower", tolerance=0.1),  # 0.30 > 0.25
    })
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "accuracy outside its baseline band: measured 0.8, baseline 0.86, allowed >= 0.81 "
        "(tolerance 0.05 absolute, higher is better); file baselines/test_suite.json, "
        "key 'test_acc[0.8]::accuracy'; baseline recorded 2025-01-01T00:00:00Z on cpu with "
        "TensorFlow 2.21.0, Keras 3.15.1, backend tensorflow",
        "loss outside its baseline band: measured 0.3, baseline 0.15, allowed <= 0.25 "
        "(tolerance 0.1 absolute, lower is better)*",
    ])


def test_terminal_summary_lists_the_checked_metrics(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    write_file(pytester.path / "baselines" / "test_suite.json", {
        "test_acc[0.8]::accuracy": entry(0.86), "test_acc[0.9]::accuracy": entry(0.93)})
    result = run(pytester)
    result.stdout.fnmatch_lines([
        "*- pytest-rnn baselines -*",
        "3 metric(s): 1 within baseline, 2 failed, 0 recorded (Keras backend *)",
        "  status      file :: key * baseline   measured  allowed",
        "  FAIL        test_suite :: test_acc[[]0.8]::accuracy * 0.86 * 0.8  >= 0.81",
        "  MISSING     test_suite :: test_loss::loss * - * 0.3  (no baseline)",
        "  ok          test_suite :: test_acc[[]0.9]::accuracy * 0.93 * 0.9  >= 0.88",
    ])


def test_changed_tolerance_is_a_stale_entry(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    write_file(pytester.path / "baselines" / "test_suite.json",
               {"test_loss::loss": entry(0.3, direction="lower", tolerance=0.2)})
    result = run(pytester, "-k", "test_loss")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "stale baseline 'test_loss::loss' in baselines/test_suite.json: it was recorded with "
        "tolerance 0.2 absolute, lower is better, the test now asks for tolerance 0.1 "
        "absolute, lower is better. Re-record it with:",
        "    pytest --rnn-update-baselines test_suite.py::test_loss",
    ])


@pytest.mark.parametrize("update", [False, True])
def test_corrupt_file_is_an_error_and_never_rewritten(pytester, update):
    pytester.makepyfile(test_suite=CHECKS)
    path = pytester.path / "baselines" / "test_suite.json"
    write_file(path, {"test_loss::loss": entry(0.3, tolerance="0.1")})
    before = path.read_bytes()
    result = run(pytester, *(["--rnn-update-baselines"] if update else []))
    result.assert_outcomes(failed=3)
    # one line naming the file and the key, not a traceback through the store
    result.stdout.fnmatch_lines([
        f"baseline file {path}, entry 'test_loss::loss': 'tolerance' must be a finite number, "
        "got '0.1'"])
    assert "Traceback" not in result.stdout.str() and "store/files.py" not in result.stdout.str()
    assert path.read_bytes() == before


def test_entry_of_a_test_that_fails_after_the_check_is_not_recorded(pytester):
    pytester.makepyfile(test_suite="""
        def test_diverged(rnn_baseline):
            rnn_baseline.check("accuracy", 0.5, tolerance=0.1)
            assert False, "a later sanity check failed"

        def test_fine(rnn_baseline):
            rnn_baseline.check("accuracy", 0.9, tolerance=0.1)
    """)
    result = run(pytester, "--rnn-update-baselines")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "2 metric(s): 0 within baseline, 0 failed, 1 recorded, 1 not recorded (test failed)"
        " (Keras backend *)"])
    assert list(read_baseline_file(pytester.path / "baselines" / "test_suite.json")) == [
        "test_fine::accuracy"]


def test_non_finite_value_fails_and_is_not_recorded(pytester):
    pytester.makepyfile(test_suite="""
        def test_nan(rnn_baseline):
            rnn_baseline.check("loss", float("nan"), tolerance=0.1, higher_is_better=False)
    """)
    result = run(pytester, "--rnn-update-baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["cannot record baseline 'test_nan::loss' in *: loss = nan"])
    assert not (pytester.path / "baselines" / "test_suite.json").exists()


def test_nan_against_a_baseline_fails(pytester):
    pytester.makepyfile(test_suite="""
        def test_nan(rnn_baseline):
            rnn_baseline.check("accuracy", float("nan"), tolerance=0.1, higher_is_better=None)
    """)
    write_file(pytester.path / "baselines" / "test_suite.json",
               {"test_nan::accuracy": entry(0.5, tolerance=0.1, direction="both")})
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["accuracy outside its baseline band: measured nan, baseline 0.5, "
                                 "allowed in [[]0.4, 0.6] (tolerance 0.1 absolute, two-sided)*"])


KEYED = """
import pytest
from pytest_rnn import DeviceInfo

@pytest.fixture(scope="session")
def rnn_device():
    return DeviceInfo(has_gpu=True, gpu_names=("Fake GPU 80GB",), cudnn_version="9.1")

def test_keys(rnn_baseline):
    rnn_baseline.check("speedup", 3.0, tolerance=0.2, relative=True, hardware=True,
                       file="speedups")
    rnn_baseline.check("accuracy", 0.9, tolerance=0.01, versioned=True)
"""


def test_hardware_versioned_and_shared_file_keys(pytester):
    pytester.makepyfile(test_keyed=KEYED)
    run(pytester, "--rnn-update-baselines").assert_outcomes(passed=1)
    speedups = read_baseline_file(pytester.path / "baselines" / "speedups.json")
    backend = runtime_versions.keras_backend_name()
    on = "" if backend == "tensorflow" else f"::backend={backend}"
    assert list(speedups) == [
        f"test_keyed::test_keys::speedup::device=gpu-Fake-GPU-80GB-cudnn9{on}"]
    assert speedups[next(iter(speedups))]["relative"] is True
    from pytest_rnn.runtime.versions import package_version, tensorflow_version
    from pytest_rnn.store.keys import major_minor

    tf_mm = major_minor(tensorflow_version())  # tensorflow-cpu too; "none" without it
    keras_mm = major_minor(package_version("keras"))
    own = read_baseline_file(pytester.path / "baselines" / "test_keyed.json")
    assert list(own) == [f"test_keys::accuracy::tf={tf_mm}::keras={keras_mm}{on}"]
    run(pytester).assert_outcomes(passed=1)


BACKEND_KEYED = """
def test_trained(rnn_baseline):
    rnn_baseline.check("mse", 0.05, tolerance=0.01, higher_is_better=False, backend=True)
    rnn_baseline.check("params", 12.0, tolerance=0.0)
"""


def test_backend_keyed_entries_are_kept_apart_per_backend(pytester, monkeypatch):
    """A value that depends on the backend (``backend=True``) gets one entry per backend: a
    JAX run neither reads nor overwrites TensorFlow's; a backend-neutral one is shared."""
    pytester.makepyfile(test_trained=BACKEND_KEYED)
    for backend in ("tensorflow", "jax"):
        monkeypatch.setenv("KERAS_BACKEND", backend)
        run(pytester, "--rnn-update-baselines").assert_outcomes(passed=1)
    stored = read_baseline_file(pytester.path / "baselines" / "test_trained.json")
    assert sorted(stored) == ["test_trained::mse", "test_trained::mse::backend=jax",
                              "test_trained::params"]
    assert stored["test_trained::mse::backend=jax"]["recorded_on"]["backend"] == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # no entry for torch yet: it must not pass
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no entry 'test_trained::mse::backend=torch'*",
                                 "*(Keras backend torch)*"])


@pytest.mark.parametrize(("call", "message"), [
    ('check("acc", 0.5, tolerance=-1)', "tolerance must be a finite number >= 0; got -1"),
    ('check("acc", 0.5, tolerance=float("inf"))', "tolerance must be a finite number >= 0"),
    ('check("acc", 0.5, tolerance="0.1")', "tolerance must be a finite number >= 0; got '0.1'"),
    ('check("acc", "0.5", tolerance=0.1)',
     "value must be a real number, a NumPy scalar, or a 0-d array/tensor*; got '0.5'"),
    ('check("a::b", 0.5, tolerance=0.1)', "metric must be a non-empty name*got 'a::b'"),
    ('check("", 0.5, tolerance=0.1)', "metric must be a non-empty name*got ''"),
    ('check("acc", 0.5, tolerance=0.1, file="../x")', "file must be a plain file name*'../x'"),
    ('check("acc", 0.5, tolerance=0.1, higher_is_better="yes")',
     "higher_is_better must be True, False or None*got 'yes'"),
    ('check("acc", 0.5, tolerance=0.1, seeds=object())', "seeds must be JSON-serialisable*"),
])
def test_bad_arguments_are_named(pytester, call, message):
    pytester.makepyfile(test_bad=f"""
        def test_bad(rnn_baseline):
            rnn_baseline.{call}
    """)
    result = run(pytester, "--rnn-update-baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E * ValueError: {message}*"])


def test_checking_one_key_twice_is_refused(pytester):
    pytester.makepyfile(test_twice="""
        def test_twice(rnn_baseline):
            rnn_baseline.check("acc", 0.5, tolerance=0.1)
            rnn_baseline.check("acc", 0.6, tolerance=0.1)
    """)
    result = run(pytester, "--rnn-update-baselines")
    result.stdout.fnmatch_lines(["E * ValueError: this test checks baseline 'test_twice::acc' "
                                 "of test_twice.json twice*"])


def test_every_check_is_a_baseline_record(pytester):
    pytester.makepyfile(test_suite=CHECKS)
    write_file(pytester.path / "baselines" / "test_suite.json",
               {"test_acc[0.8]::accuracy": entry(0.86)})
    reprec = pytester.inline_run("--no-header", "-p", "no:cacheprovider", "-k", "test_acc")
    config = reprec.getcalls("pytest_sessionfinish")[0].session.config
    rows = {r.nodeid: r for r in records.of(config).of_kind("baseline")}
    failed = rows["test_suite.py::test_acc[0.8]"]
    assert failed.name == "accuracy"
    assert {k: failed.data[k] for k in ("file", "key", "baseline", "value", "tolerance",
                                        "direction", "passed", "updated", "bound",
                                        "status")} == {
        "file": "baselines/test_suite.json", "key": "test_acc[0.8]::accuracy", "baseline": 0.86,
        "value": 0.8, "tolerance": 0.05, "direction": "higher", "passed": False,
        "updated": False, "bound": ">= 0.81", "status": "FAIL"}
    missing = rows["test_suite.py::test_acc[0.9]"].data
    assert (missing["baseline"], missing["passed"], missing["bound"]) == (None, False, "")
    assert baselines.status_of(missing) is Status.MISSING


# --- xdist: workers never write; the controller merges everything ------------------------------


XDIST_SUITE = """
import pytest

@pytest.mark.parametrize("i", range(12))
def test_metric(rnn_baseline, i):
    rnn_baseline.check("score", i / 10, tolerance=0.01)
    rnn_baseline.check("shared_score", i / 10, tolerance=0.01, file="shared")
"""

XDIST_CONFTEST = """
import os
from pytest_rnn.store import files

_real = files.atomic_write

def _logged(path, text):
    who = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    with open(os.environ["WRITE_LOG"], "a") as log:
        log.write(f"{who} {path.name}\\n")
    _real(path, text)

files.atomic_write = _logged
"""


@subprocess_runs.declare("xdist_update_runs")
def _xdist_update(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    """Two ``-n 2`` runs, one after the other in one shell (a head-start subprocess): an
    update (its output in ``update.txt``), then a check against what it wrote."""
    log = workdir / "writes.log"
    first = subprocess_runs.project(workdir, {"test_suite.py": XDIST_SUITE,
                                              "conftest.py": XDIST_CONFTEST},
                                    "--no-header", "-n", "2", "--rnn-update-baselines",
                                    WRITE_LOG=str(log))
    write_file(first.cwd / "baselines" / "shared.json",
               {"elsewhere::test_kept::score": entry(0.42)})
    then = subprocess_runs.pytest_argv("--no-header", "-n", "2")
    script = (f"{shlex.join(first.argv)} > {shlex.quote(str(workdir / 'update.txt'))} 2>&1; "
              f"exec {shlex.join(then)}")
    return subprocess_runs.Command(["sh", "-c", script], cwd=first.cwd, env=first.env,
                                   timeout=first.timeout)


xdist_update_runs = subprocess_runs.finished_fixture("xdist_update_runs")


def test_xdist_update_loses_no_entry_and_only_the_controller_writes(xdist_update_runs):
    workdir = xdist_update_runs.workdir
    project = workdir / "project"
    update = (workdir / "update.txt").read_text().splitlines()
    pytest.RunResult(0, update, [], 0.0).assert_outcomes(passed=12)
    own = read_baseline_file(project / "baselines" / "test_suite.json")
    assert {k: e["value"] for k, e in own.items()} == {
        f"test_metric[{i}]::score": i / 10 for i in range(12)}
    merged = read_baseline_file(project / "baselines" / "shared.json")
    assert len(merged) == 13 and merged["elsewhere::test_kept::score"] == entry(0.42)
    assert all(f"test_suite::test_metric[{i}]::shared_score" in merged for i in range(12))
    assert sorted((workdir / "writes.log").read_text().splitlines()) == [
        "controller shared.json", "controller test_suite.json"]

    result = subprocess_runs.run_result(xdist_update_runs)
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        ["24 metric(s): 24 within baseline, 0 failed, 0 recorded (Keras backend *)"])
    assert math.isclose(merged["test_suite::test_metric[3]::shared_score"]["value"], 0.3)



# --- records: NumPy data is converted, anything else is one clear line --------------------------


def test_rnn_record_converts_numpy_data_and_names_what_it_cannot_take(pytester):
    pytester.makepyfile(test_rec=r"""
        import numpy as np
        import pytest

        def test_numpy(rnn_record):
            record = rnn_record("curve", "gru", history={"loss": np.array([0.5, 0.25])},
                                best=np.float32(0.25), epochs=np.arange(2))
            assert record.data == {"history": {"loss": [0.5, 0.25]}, "best": 0.25,
                                   "epochs": [0, 1]}

        def test_object(rnn_record):
            with pytest.raises(ValueError, match=r"^record data must be JSON-serialisable "
                               r"\(numbers, strings, lists, dicts; NumPy values and tensors "
                               r"are converted\); got object$"):
                rnn_record("curve", "gru", model=object())
    """)
    run(pytester).assert_outcomes(passed=2)
