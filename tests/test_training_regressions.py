"""Proof that the training-path checks catch what they exist for.

Each regression of :mod:`regressions_training` (gradients cut or damped through time
with forward values unchanged, the initial state's gradient dropped, gradient leaking
into padded steps, a compiled path that drops the mask or forgets a stateful layer's
state, states in the wrong dtype under mixed precision) is injected into Keras; the
tests named for it must fail on their assertion with a message matching its pattern,
the neighbours named in ``passes`` must pass, and without a patch every named test must
pass (the verdict is :func:`regressions.judge.problems`). One subprocess runs them all
in one pytest session (GPUs hidden), started beside the in-process tests
(see :mod:`subprocess_runs`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import subprocess_runs
from regressions.judge import problems
from regressions.runner import HIDDEN_GPUS, ROOT
from regressions_training import BY_ID, REGRESSIONS, command

TIMEOUT_S = 600


@subprocess_runs.declare("training_outcomes")
def _training_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    ids = [item.callspec.params["regression"].id for item in session.items
           if item.path == Path(__file__) and hasattr(item, "callspec")]
    return subprocess_runs.Command(
        command(workdir / "outcomes.json", list(dict.fromkeys(ids)) or list(BY_ID)),
        cwd=ROOT, env=subprocess_runs.clean_env(**HIDDEN_GPUS), timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def training_outcomes(request: pytest.FixtureRequest) -> dict:
    finished = subprocess_runs.result(request)
    out = finished.workdir / "outcomes.json"
    if finished.proc.returncode != 0 or not out.is_file():
        pytest.fail(f"the training-regression runner failed (exit {finished.proc.returncode}):"
                    f"\n{finished.proc.stdout[-3000:]}\n{finished.proc.stderr[-5000:]}")
    return json.loads(out.read_text())


def test_every_entry_names_failing_tests_and_a_pattern():
    for regression in REGRESSIONS:
        assert regression.fails and regression.message, regression.id
        assert not set(regression.fails) & set(regression.passes), regression.id
        re.compile(regression.message)


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_injected_training_regression_fails_its_tests_for_the_right_reason(
    regression, training_outcomes: dict
):
    found = problems(regression, training_outcomes["groups"])
    assert not found, (
        f"regression {regression.id!r} ({regression.description}) is not caught for the "
        "right reason:\n" + "\n".join(found)
    )
