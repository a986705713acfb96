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
import subprocess

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


def _imported(pytester: pytest.Pytester) -> dict[str, bool]:
    return json.loads((pytester.path / "imported.json").read_text())


def test_unrelated_project_run_with_the_header_imports_no_framework(pytester: pytest.Pytester):
    pytester.makeconftest(WATCH_CONFTEST)
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # header included
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-rnn: TensorFlow *, Keras *, backend *"])
    assert _imported(pytester) == {"tensorflow": False, "keras": False, "jax": False,
                                   "torch": False}


def test_projects_own_gpu_test_is_asked_through_its_keras_backend(pytester: pytest.Pytester):
    """A JAX project's @gpu test: JAX is asked, TensorFlow is never imported.

    The run gets its own environment (KERAS_BACKEND=jax): setting it in this process
    would reach the head-start runs that start meanwhile (see subprocess_runs).
    """
    if importlib.util.find_spec("jax") is None:  # not imported here: JAX beside TF can abort
        pytest.skip("JAX is not installed")
    pytester.makeconftest(WATCH_CONFTEST)
    pytester.makepyfile(test_gpu="""
        import pytest

        @pytest.mark.gpu
        def test_on_gpu():
            pass
    """)
    # JAX_PLATFORMS=cpu: this host has no GPU; say so rather than let JAX probe for one
    env = subprocess_runs.clean_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run(subprocess_runs.pytest_argv("-rs"), cwd=pytester.path, env=env,
                          capture_output=True, text=True, timeout=300)
    result = pytest.RunResult(proc.returncode, proc.stdout.splitlines(),
                              proc.stderr.splitlines(), 0.0)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "SKIPPED ?1? test_gpu.py:*: pytest-rnn: @gpu test needs a visible GPU and the Keras "
        "backend (JAX *) sees none*",
    ])
    seen = _imported(pytester)
    assert seen["jax"] is True and seen["tensorflow"] is False and seen["keras"] is False


def test_gpu_tests_that_do_not_run_cost_no_detection(pytester: pytest.Pytester):
    """Collected but deselected @gpu tests (and --co) never ask a framework."""
    pytester.makeconftest(WATCH_CONFTEST)
    pytester.makepyfile(test_gpu="""
        import pytest

        @pytest.mark.gpu
        def test_on_gpu():
            pass

        def test_plain():
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not gpu")
    result.assert_outcomes(passed=1, deselected=1)
    assert _imported(pytester)["tensorflow"] is False
