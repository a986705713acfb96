"""pytest-rnn is installed into every pytest run of its environment: unused, it costs nothing.

A project that uses no pytest-rnn fixture, marker or option must not pay for
TensorFlow (seconds, and its start-up lines in the output). The runs here are
subprocesses because the question is what a fresh process ends up importing; a
conftest of the project reports ``sys.modules`` at the end of the run. The time
the plugin adds is measured, not asserted, by ``benchmarks/startup.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import subprocess_runs

WATCH_CONFTEST = """
import json, sys
from pathlib import Path


def pytest_unconfigure(config):
    names = ("tensorflow", "keras", "jax", "torch")
    Path(config.rootpath, "imported.json").write_text(
        json.dumps({n: n in sys.modules for n in names}))
"""


GPU_TEST = """
import pytest

@pytest.mark.gpu
def test_on_gpu():
    pass
"""


def _imported(finished: subprocess_runs.Finished) -> dict[str, bool]:
    return json.loads((finished.workdir / "project" / "imported.json").read_text())


# The runs are subprocesses declared with subprocess_runs: they start with the session and
# run on the core the in-process tests leave idle.


@subprocess_runs.declare("unrelated_run")
def _unrelated(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return subprocess_runs.project(workdir, {
        "conftest.py": WATCH_CONFTEST,
        "test_plain.py": "def test_plain():\n    assert 1 + 1 == 2\n"})  # header included


@subprocess_runs.declare("jax_gpu_run")
def _jax_gpu(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    # its own environment (KERAS_BACKEND=jax): set in this process it would reach the other
    # runs; JAX_PLATFORMS=cpu: this host has no GPU, say so rather than let JAX probe for one
    return subprocess_runs.project(workdir, {"conftest.py": WATCH_CONFTEST,
                                             "test_gpu.py": GPU_TEST},
                                   "-rs", KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")


@subprocess_runs.declare("deselected_gpu_run")
def _deselected_gpu(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return subprocess_runs.project(workdir, {
        "conftest.py": WATCH_CONFTEST,
        "test_gpu.py": GPU_TEST + "\n\ndef test_plain():\n    pass\n"}, "-m", "not gpu")


unrelated_run = subprocess_runs.finished_fixture("unrelated_run")
jax_gpu_run = subprocess_runs.finished_fixture("jax_gpu_run")
deselected_gpu_run = subprocess_runs.finished_fixture("deselected_gpu_run")


def test_unrelated_project_run_with_the_header_imports_no_framework(unrelated_run):
    result = subprocess_runs.run_result(unrelated_run)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-rnn: TensorFlow *, Keras *, backend *"])
    assert _imported(unrelated_run) == {"tensorflow": False, "keras": False, "jax": False,
                                        "torch": False}


#: not imported to find out (JAX beside TensorFlow can abort); a skip mark, not a skipif, so
#: that the run is not started for nothing (subprocess_runs.needed)
_NEEDS_JAX = (pytest.mark.skip(reason="JAX is not installed")
              if importlib.util.find_spec("jax") is None else lambda test: test)


@_NEEDS_JAX
def test_projects_own_gpu_test_is_asked_through_its_keras_backend(jax_gpu_run):
    """A JAX project's @gpu test: JAX is asked, TensorFlow is never imported."""
    result = subprocess_runs.run_result(jax_gpu_run)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "SKIPPED ?1? test_gpu.py:*: pytest-rnn: @gpu test needs a visible GPU and the Keras "
        "backend (JAX *) sees none*",
    ])
    seen = _imported(jax_gpu_run)
    assert seen["jax"] is True and seen["tensorflow"] is False and seen["keras"] is False


def test_gpu_tests_that_do_not_run_cost_no_detection(deselected_gpu_run):
    """Collected but deselected @gpu tests (and --co) never ask a framework."""
    result = subprocess_runs.run_result(deselected_gpu_run)
    result.assert_outcomes(passed=1, deselected=1)
    assert _imported(deselected_gpu_run)["tensorflow"] is False
