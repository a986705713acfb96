"""Proof of sensitivity: the fast suites turn red when Keras regresses.

Each regression of :mod:`keras_regressions` (a changed default, swapped gates,
dropout at inference, a lost mask, a frozen weight ...) is injected into Keras by
monkeypatching; the tests named for that behaviour must fail, their neighbours
must pass, and without the patch the same tests must pass. One subprocess runs
every regression in one pytest session, so TensorFlow is imported and the suites
collected once (a process per regression would cost seconds each); it starts with the
session, beside the in-process tests (see subprocess_runs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import subprocess_runs
from keras_regressions import BY_ID, REGRESSIONS, Regression, problems, selects

RUNNER = Path(__file__).with_name("keras_regressions.py")
ROOT = RUNNER.parent.parent
TIMEOUT_S = 900


def _chosen_ids(session: pytest.Session) -> list[str]:
    """The regressions whose tests this session runs (all of them when only the
    control or catalogue checks are selected)."""
    ids = [
        item.callspec.params["regression"].id
        for item in session.items
        if item.path == Path(__file__) and hasattr(item, "callspec")
    ]
    return list(dict.fromkeys(ids)) or list(BY_ID)


@subprocess_runs.declare("outcomes")
def _sensitivity_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return subprocess_runs.Command(
        [sys.executable, str(RUNNER), str(workdir / "outcomes.json"), *_chosen_ids(session)],
        cwd=ROOT, timeout=TIMEOUT_S)


def _read_outcomes(request: pytest.FixtureRequest) -> dict:
    finished = subprocess_runs.result(request)
    out = finished.workdir / "outcomes.json"
    if finished.proc.returncode != 0 or not out.is_file():
        pytest.fail(
            f"the sensitivity runner failed (exit {finished.proc.returncode}):\n"
            f"{finished.proc.stdout[-3000:]}\n{finished.proc.stderr[-5000:]}"
        )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Outcomes of the control and every chosen regression, computed once per run.

    Under xdist each worker that runs one of these tests has this fixture; the first
    to take the lock runs the subprocess and the others wait for its result.
    """
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _read_outcomes(request)
    shared = tmp_path_factory.getbasetemp().parent / f"sensitivity-{run_id}"
    shared.mkdir(exist_ok=True)
    out = shared / "outcomes.json"
    try:
        os.close(os.open(shared / "lock", os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        deadline = time.monotonic() + TIMEOUT_S
        while not out.is_file():
            if time.monotonic() > deadline:
                pytest.fail(f"no sensitivity outcomes from another worker at {out}")
            time.sleep(0.5)
        return json.loads(out.read_text())
    found = _read_outcomes(request)
    partial = shared / "outcomes.partial.json"
    partial.write_text(json.dumps(found))
    partial.replace(out)
    return found


def _chosen_ids_from(outcomes: dict) -> list[str]:
    return [g for g in outcomes["groups"] if g != "control"]


def test_the_catalogue_holds_many_distinct_regressions():
    assert len(REGRESSIONS) >= 25, f"only {len(REGRESSIONS)} regressions in the catalogue"
    assert len({r.description for r in REGRESSIONS}) == len(REGRESSIONS), "duplicate descriptions"
    empty = [r.id for r in REGRESSIONS if not r.fails]
    assert not empty, f"regressions that name no test that must fail: {empty}"
    both = {r.id: set(r.fails) & set(r.passes) for r in REGRESSIONS if set(r.fails) & set(r.passes)}
    assert not both, f"tests listed as both failing and passing: {both}"


def test_the_proof_rejects_an_unnoticed_regression_and_a_stale_target():
    """The judge itself: a regression whose named test stayed green, a selector that
    names nothing, collateral damage and a test red without the patch are all reported."""
    regression = Regression(
        "example",
        "an example",
        lambda mp: None,
        fails=("a.py::t1", "a.py::gone"),
        passes=("a.py::t2",),
    )
    groups = {
        "control": {"tests": {"a.py::t1[x]": {"outcome": "failed", "message": "boom"}}},
        "example": {
            "tests": {
                "a.py::t1[x]": {"outcome": "passed", "message": ""},
                "a.py::t2": {"outcome": "failed", "message": "collateral"},
            }
        },
    }
    found = "\n".join(problems(regression, groups))
    for expected in ("did not fail", "a.py::gone: selects no test", "not green without", "broke"):
        assert expected in found, f"{expected!r} missing from the report:\n{found}"
    caught = {
        "control": {"tests": {"a.py::t1[x]": {"outcome": "passed", "message": ""}}},
        "example": {
            "tests": {
                "a.py::t1[x]": {"outcome": "failed", "message": "AssertionError"},
                "a.py::t2": {"outcome": "passed", "message": ""},
            }
        },
    }
    proven = Regression(
        "example", "an example", lambda mp: None, fails=("a.py::t1",), passes=("a.py::t2",)
    )
    assert problems(proven, caught) == []


def test_every_named_suite_test_passes_without_a_patch(outcomes):
    control = outcomes["groups"]["control"]["tests"]
    selectors = dict.fromkeys(s for i in _chosen_ids_from(outcomes) for s in BY_ID[i].fails)
    unmatched = [s for s in selectors if not any(selects(s, n) for n in control)]
    assert not unmatched, f"these targets name no collected test: {unmatched}"
    failing = [n for n, t in control.items() if t["outcome"] != "passed"]
    assert not failing, (
        "without any patch these suite tests should pass, or the proof means nothing:\n"
        + "\n".join(f"    {n}: {control[n]['message'][:200]!r}" for n in failing)
    )


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_injected_regression_turns_the_tests_named_for_it_red(
    regression: Regression, outcomes: dict
):
    found = problems(regression, outcomes["groups"])
    assert not found, (
        f"regression {regression.id!r} ({regression.description}) is not caught for the "
        "right reason:\n" + "\n".join(found)
    )
