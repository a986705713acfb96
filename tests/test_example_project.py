"""examples/custom_cell is a working outside project: its own tests pass with the plugin
as installed here, found through the entry point (the example has no conftest.py).

One subprocess run of the example's fast tests (``-m "not slow"``), as its CI would run
them; nothing is installed and nothing is written into the example.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import subprocess_runs

from pytest_rnn.plugin import options

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_cell"
GPU_SKIP = "pytest-rnn: @gpu test needs a visible GPU"
CROSS_BACKEND_SKIP = "pytest-rnn: cross-backend tests are off"
NO_COMPILED_GRADIENTS = "backend has no compiled gradients in pytest_rnn.backends"


@subprocess_runs.declare("example_run")
def _example_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    # the example's cross-backend test runs when this run's do (rnn_skip_cross_backend)
    skip = {"PYTEST_RNN_SKIP_CROSS_BACKEND": "1"} if options.get(
        session.config).skip_cross_backend else {}
    return subprocess_runs.Command(
        subprocess_runs.pytest_argv("-m", "not slow", "-rs"),
        cwd=EXAMPLE,
        # leave no __pycache__ in the example
        env=subprocess_runs.clean_env(PYTHONDONTWRITEBYTECODE="1", **skip),
    )


@pytest.fixture(scope="module")
def example_run(request: pytest.FixtureRequest) -> subprocess.CompletedProcess:
    return subprocess_runs.result(request).proc


def test_example_project_fast_tests_pass(example_run: subprocess.CompletedProcess):
    assert not list(EXAMPLE.rglob("conftest.py")), "the example must work without a conftest"
    proc = example_run
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the example's tests failed:\n{output[-6000:]}"
    counts = {kind: int(n) for n, kind in re.findall(
        r"(\d+) (passed|skipped|failed|errors?|deselected)", proc.stdout.splitlines()[-1])}
    # 18 contract tests (test_backends_agree included) + 2 reference + params + baseline +
    # registration; the @gpu test passes on a GPU host and is skipped elsewhere; the slow IMDB
    # test is deselected; the cross-backend test is skipped when this run skips its own
    assert counts.get("passed", 0) + counts.get("skipped", 0) == 24, output[-3000:]
    expected_skips = ((GPU_SKIP in output) + (CROSS_BACKEND_SKIP in output)
                      + (NO_COMPILED_GRADIENTS in output))  # the traced test, on PyTorch
    assert counts.get("skipped", 0) == expected_skips, output[-3000:]
    assert counts.get("deselected") == 1, output[-3000:]
    # the plugin ran: the baseline in the example's own baselines/ was checked
    assert "1 metric(s): 1 within baseline, 0 failed, 0 recorded" in output, output[-3000:]
    # keyed ::backend=NAME off TensorFlow (each backend draws its own initial weights)
    assert re.search(r"^ +ok +\S.*::test_mse(::backend=\w+)? ", output, re.MULTILINE), (
        output[-3000:])
