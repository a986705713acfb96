"""Proof that the training-path checks catch what they exist for.

Each regression of :mod:`regressions_training` (gradients cut or damped through time
with forward values unchanged, the initial state's gradient dropped, gradient leaking
into padded steps, a compiled path that drops the mask or forgets a stateful layer's
state, states in the wrong dtype under mixed precision) is injected into Keras; the
tests named for it must fail with a message matching its pattern, the neighbours named
in ``passes`` must pass, and without a patch every named test must pass. One subprocess
runs them all in one pytest session, started beside the in-process tests
(see :mod:`subprocess_runs`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import subprocess_runs
from keras_regressions import problems, selects
from regressions_training import BY_ID, REGRESSIONS, PatternRegression

RUNNER = Path(__file__).with_name("regressions_training.py")
ROOT = RUNNER.parent.parent
TIMEOUT_S = 600


@subprocess_runs.declare("training_outcomes")
def _training_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    ids = [item.callspec.params["regression"].id for item in session.items
           if item.path == Path(__file__) and hasattr(item, "callspec")]
    return subprocess_runs.Command(
        [sys.executable, str(RUNNER), str(workdir / "outcomes.json"),
         *(list(dict.fromkeys(ids)) or list(BY_ID))], cwd=ROOT, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def training_outcomes(request: pytest.FixtureRequest) -> dict:
    finished = subprocess_runs.result(request)
    out = finished.workdir / "outcomes.json"
    if finished.proc.returncode != 0 or not out.is_file():
        pytest.fail(f"the training-regression runner failed (exit {finished.proc.returncode}):"
                    f"\n{finished.proc.stdout[-3000:]}\n{finished.proc.stderr[-5000:]}")
    return json.loads(out.read_text())


def pattern_problems(regression: PatternRegression, groups: dict) -> list[str]:
    """``fails`` tests that failed with a message not matching the regression's pattern."""
    tests = groups.get(regression.id, {}).get("tests", {})
    return [
        f"  {nodeid} failed for another reason (pattern {regression.pattern!r}):\n"
        f"    {test['message'][:1500]!r}"
        for nodeid, test in tests.items()
        if any(selects(s, nodeid) for s in regression.fails) and test["outcome"] == "failed"
        and not re.search(regression.pattern, test["message"], re.DOTALL)
    ]


def test_every_entry_names_failing_tests_and_a_pattern():
    assert len(BY_ID) == len(REGRESSIONS), "duplicate regression ids"
    for regression in REGRESSIONS:
        assert regression.fails and regression.pattern, regression.id
        re.compile(regression.pattern)


def test_a_wrong_reason_is_not_a_catch():
    """The judge: a named test that failed with a message outside the pattern is reported."""
    regression = PatternRegression("r", "d", lambda mp: None, fails=("a.py::t",),
                                   pattern=r"gradient stops flowing")
    groups = {"r": {"tests": {"a.py::t[x]": {"outcome": "failed",
                                             "message": "TypeError: crash"}}}}
    assert "failed for another reason" in "\n".join(pattern_problems(regression, groups))
    groups["r"]["tests"]["a.py::t[x]"]["message"] = "... gradient stops flowing back ..."
    assert pattern_problems(regression, groups) == []


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_injected_training_regression_fails_its_tests_for_the_right_reason(
    regression: PatternRegression, training_outcomes: dict
):
    found = problems(regression, training_outcomes["groups"])
    found += pattern_problems(regression, training_outcomes["groups"])
    assert not found, (
        f"regression {regression.id!r} ({regression.description}) is not caught for the "
        "right reason:\n" + "\n".join(found)
    )
