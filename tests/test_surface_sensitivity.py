"""Proof of sensitivity for the ConvLSTM, stacked-cells and Keras 2 suites.

Each regression of :mod:`regressions_surface` (a ConvLSTM that ignores recurrent
dropout, one mask for all gates, a stacked cell's mask sized from the stack's input,
a Keras 2 initializer name that no longer resolves ...) is injected by monkeypatching
Keras; the tests named for it must fail on an assertion whose message matches the
regression's ``pattern``, their neighbours must pass, and without the patch the same
tests must pass. One subprocess runs them all (TensorFlow imported once), with a head
start beside the in-process tests (see subprocess_runs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import subprocess_runs
from regressions_surface import BY_ID, REGRESSIONS, Regression, problems, selects

RUNNER = Path(__file__).with_name("regressions_surface.py")
ROOT = RUNNER.parent.parent
TIMEOUT_S = 600


@subprocess_runs.declare("surface_outcomes")
def _surface_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return subprocess_runs.Command(
        [sys.executable, str(RUNNER), str(workdir / "outcomes.json")], cwd=ROOT, timeout=TIMEOUT_S
    )


def _read_outcomes(request: pytest.FixtureRequest) -> dict:
    finished = subprocess_runs.result(request)
    out = finished.workdir / "outcomes.json"
    if finished.proc.returncode != 0 or not out.is_file():
        pytest.fail(
            f"the surface sensitivity runner failed (exit {finished.proc.returncode}):\n"
            f"{finished.proc.stdout[-3000:]}\n{finished.proc.stderr[-5000:]}"
        )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def surface_outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Outcomes of the control and every regression, computed once per run; under xdist the
    first worker to take the lock runs the subprocess and the others read its result."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _read_outcomes(request)
    shared = tmp_path_factory.getbasetemp().parent / f"surface-sensitivity-{run_id}"
    shared.mkdir(exist_ok=True)
    out = shared / "outcomes.json"
    try:
        os.close(os.open(shared / "lock", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        deadline = time.monotonic() + TIMEOUT_S
        while not out.is_file():
            if time.monotonic() > deadline:
                pytest.fail(f"no surface sensitivity outcomes from another worker at {out}")
            time.sleep(0.5)
        return json.loads(out.read_text())
    found = _read_outcomes(request)
    partial = shared / "outcomes.partial.json"
    partial.write_text(json.dumps(found))
    partial.replace(out)
    return found


def test_each_regression_names_failing_targets_and_a_pattern():
    assert len(BY_ID) == len(REGRESSIONS)
    for regression in REGRESSIONS:
        assert regression.fails, f"{regression.id} names no test that must fail"
        assert regression.pattern, f"{regression.id} has no message pattern"
        assert not set(regression.fails) & set(regression.passes), regression.id


def test_the_judge_rejects_a_crash_and_a_message_that_does_not_match():
    regression = Regression("example", "an example", lambda mp: None, fails=("a.py::t",),
                            pattern=r"dropout is not applied")
    control = {"tests": {"a.py::t": {"outcome": "passed", "message": ""}}}

    def judged(message: str) -> str:
        run = {"tests": {"a.py::t": {"outcome": "failed", "message": message}}}
        return "\n".join(problems(regression, {"control": control, "example": run}))

    assert "a crash" in judged("ValueError: shapes (2, 4) and (2, 5) are incompatible")
    assert "does not match" in judged("AssertionError: something else went wrong")
    assert judged("AssertionError: LSTM 'x': dropout is not applied in training") == ""


def test_every_named_target_passes_without_a_patch(surface_outcomes):
    control = surface_outcomes["groups"]["control"]["tests"]
    selectors = {s for r in REGRESSIONS for s in r.fails}
    unmatched = [s for s in selectors if not any(selects(s, n) for n in control)]
    assert not unmatched, f"these targets name no collected test: {unmatched}"
    failing = {n: t["message"][:200] for n, t in control.items() if t["outcome"] != "passed"}
    assert not failing, f"without any patch these tests should pass: {failing}"


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_injected_regression_fails_its_tests_with_a_message_naming_it(
    regression: Regression, surface_outcomes: dict
):
    found = problems(regression, surface_outcomes["groups"])
    assert not found, (
        f"regression {regression.id!r} ({regression.description}) is not caught for the "
        "right reason:\n" + "\n".join(found)
    )
