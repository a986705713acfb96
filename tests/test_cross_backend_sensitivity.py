"""Proof: a regression injected into one backend only is caught by the equivalence suite.

For each entry of :data:`regressions.cross_backend.BACKEND_REGRESSIONS`, the backend it
breaks computes the cases of ``suites/test_cross_backend.py`` with the patch applied in
its subprocess, TensorFlow computes them untouched, and the comparison the suite makes
(:func:`pytest_rnn.checks.cross_backend.compare_results`) must report every ``fails``
case with a message naming the backend pair and the tensor, and nothing for the
``passes`` cases; without the patch the same cases agree. The unpatched TensorFlow and
JAX results are the suite's own (one subprocess per backend per session); the patched
subprocesses get a head start (``subprocess_runs``): they run while the in-process tests do.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import subprocess_runs
from regressions.cross_backend import BACKEND_REGRESSIONS

from pytest_rnn.checks.cross_backend import backend_command, compare_results, installed_backends

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "suites"))
import test_cross_backend as suite  # noqa: E402 - the suite's own cases

pytestmark = pytest.mark.cross_backend  # waits for subprocesses: runs last

NEEDED = sorted({n for r in BACKEND_REGRESSIONS for n in (*r.fails, *r.passes)})
CASES = [suite.BY_NAME[n] for n in NEEDED]
READY = {"tensorflow", "jax"} <= set(installed_backends())


def _declare(fixture: str, backend: str, patch: str | None) -> None:
    @subprocess_runs.declare(fixture)
    def prepare(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
        argv, env, _ = backend_command(backend, CASES, workdir, patch=patch,
                                       sys_path=[str(TESTS)],
                                       env=subprocess_runs.clean_env())
        return subprocess_runs.Command(argv, cwd=TESTS.parent, env=env)


for _r in BACKEND_REGRESSIONS:
    _declare(f"patched_{_r.id}", _r.backend, _r.patch)


def _read(request: pytest.FixtureRequest, fixture: str) -> dict:
    import json

    if not READY:
        pytest.skip("needs the tensorflow and the jax backend installed")
    finished = subprocess_runs.result(request)
    out = next(finished.workdir.glob("*-out.json"), None)
    assert finished.proc.returncode == 0 and out is not None, (
        f"{fixture}: the backend subprocess failed:\n{finished.proc.stderr[-3000:]}")
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def suite_results() -> dict:
    """The unpatched results of ``suites/test_cross_backend.py``'s subprocesses (started at
    collection end by ``tests/conftest.py`` when this module is selected)."""
    if not READY:
        pytest.skip("needs the tensorflow and the jax backend installed")
    return suite.backend_results()


@pytest.fixture(scope="module")
def tensorflow_reference(suite_results):
    return suite_results["tensorflow"]


@pytest.fixture(scope="module")
def jax_unpatched(suite_results):
    return suite_results["jax"]


@pytest.fixture(scope="module")
def patched_jax_gru_gate_swap(request):
    return _read(request, "patched_jax_gru_gate_swap")


@pytest.fixture(scope="module")
def patched_jax_scan_ignores_mask(request):
    return _read(request, "patched_jax_scan_ignores_mask")


def test_unpatched_backends_agree_on_every_case_the_proof_uses(tensorflow_reference,
                                                               jax_unpatched):
    problems = compare_results(CASES, {"tensorflow": tensorflow_reference,
                                       "jax": jax_unpatched})
    assert not any(problems.values()), problems


@pytest.mark.parametrize("regression", BACKEND_REGRESSIONS, ids=lambda r: r.id)
def test_one_backend_regression_is_caught_naming_the_backend_pair(regression, request,
                                                                  tensorflow_reference):
    patched = request.getfixturevalue(f"patched_{regression.id}")
    assert patched["patch"] == regression.patch, "the subprocess did not apply the patch"
    problems = compare_results(CASES, {"tensorflow": tensorflow_reference,
                                       regression.backend: patched})
    missed = [name for name in regression.fails if not problems[name]]
    assert not missed, f"{regression.id}: the equivalence suite misses it in {missed}"
    for name in regression.fails:
        for line in problems[name]:
            assert re.search(regression.message, line), (
                f"{regression.id}: {name} fails for another reason:\n{line}")
    noisy = {name: problems[name] for name in regression.passes if problems[name]}
    assert not noisy, f"{regression.id} also changed cases it must leave alone: {noisy}"
