"""Proof of sensitivity: the fast suites turn red when Keras regresses, for the right reason.

Each entry of :data:`regressions.catalogue.REGRESSIONS` (a changed default, swapped gates,
dropout at inference, a lost mask, a frozen weight; a gradient cut through time, a traced
path that drops the mask; a ConvLSTM that ignores dropout, a Keras 2 model that no longer
loads ...) is injected into Keras by monkeypatching; the tests named for that behaviour
must fail on their assertion with a message matching the entry's pattern (a crash, a
fixture error or an unrelated message is not a catch: see :mod:`regressions.judge`), their
neighbours must pass, and without the patch the same tests must pass. One subprocess
(:mod:`regressions.runner`, GPUs hidden) runs every regression in one pytest session, so
TensorFlow is imported and the suites collected once (a process per regression, or per
group of regressions, would cost seconds each); it starts with the session, beside the
in-process tests (see subprocess_runs).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import subprocess_runs
from regressions import surface, training_path
from regressions.catalogue import BY_ID, LAYER_REGRESSIONS, PROBES, REGRESSIONS, Regression
from regressions.judge import GENERIC_MESSAGES, problems, selects, why_not_a_catch
from regressions.runner import HIDDEN_GPUS, ROOT, command

from pytest_rnn.runtime import ledger
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.runtime.versions import KERAS_FEATURES, keras_at_least, keras_lacks, package_version

# The catalogue patches Keras's layers and cells, which the TensorFlow and JAX backends run;
# an entry whose patch a backend bypasses (JAX's fused GRU scan, TensorFlow's cuDNN routing
# and tf.function) says so in ``Regression.bypassed`` and skips there with that reason.
# One-backend regressions are proven by tests/test_cross_backend_sensitivity.py.
BACKEND = runtime_versions.keras_backend_name()
pytestmark = pytest.mark.skipif(
    BACKEND not in ("tensorflow", "jax"),
    reason=f"the proof-of-sensitivity catalogue is proven on TensorFlow and JAX; not run on "
           f"{BACKEND} (see tests/test_cross_backend_sensitivity.py for one-backend "
           "regressions)")

TIMEOUT_S = 900


def _regression_of(item: pytest.Item) -> Regression | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("regression") if callspec is not None else None


def _chosen_ids(session: pytest.Session) -> list[str]:
    """The regressions whose tests this session runs (all of them when only the
    control or catalogue checks are selected), and the judge's probes (one test each)."""
    ids = [
        regression.id
        for item in session.items
        if item.path == Path(__file__) and "outcomes" in item.fixturenames
        and (regression := _regression_of(item)) is not None
    ]
    ids = ids or [r.id for r in REGRESSIONS]
    return list(dict.fromkeys(i for i in ids if BACKEND not in BY_ID[i].bypassed)) + [
        p.id for p in PROBES]


@subprocess_runs.declare("outcomes")
def _sensitivity_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    return subprocess_runs.Command(
        command(workdir / "outcomes.json", _chosen_ids(session)),
        cwd=ROOT, env=subprocess_runs.clean_env(**HIDDEN_GPUS), timeout=TIMEOUT_S)


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


def _regression_ids_from(outcomes: dict) -> list[str]:
    return [g for g in outcomes["groups"] if g != "control" and g not in {p.id for p in PROBES}]


def test_the_catalogue_holds_many_distinct_regressions():
    assert len(REGRESSIONS) >= 25, f"only {len(REGRESSIONS)} regressions in the catalogue"
    assert len({r.description for r in REGRESSIONS}) == len(REGRESSIONS), "duplicate descriptions"
    same_targets: dict[tuple[str, ...], list[str]] = {}
    for r in REGRESSIONS:
        same_targets.setdefault(tuple(sorted(r.fails)), []).append(r.id)
    twice = [ids for ids in same_targets.values() if len(ids) > 1]
    assert not twice, f"entries that name the same failing tests (merge them): {twice}"


def test_readme_gives_the_catalogue_size():
    section = (ROOT / "docs" / "explanation" / "proof-of-sensitivity.md").read_text("utf-8")
    found = re.findall(r"\b(\d+) plausible release regressions|# all (\d+) \+ control|"
                       r"runs all (\d+) in", section)
    stated = {int(next(n for n in numbers if n)) for numbers in found}
    assert stated == {len(REGRESSIONS)}, (
        f"docs/explanation/proof-of-sensitivity.md gives {sorted(stated)} regressions; the "
        f"catalogue holds {len(REGRESSIONS)}"
    )
    parts = {module: int(n) for n, module in re.findall(r"\((\d+), in `(\w+)\.py`", section)}
    held = {"catalogue": len(LAYER_REGRESSIONS), "training_path": len(training_path.REGRESSIONS),
            "surface": len(surface.REGRESSIONS)}
    assert parts == held, f"the docs page gives {parts} entries per module; they hold {held}"


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_every_entry_names_failing_tests_and_a_pattern(regression: Regression):
    assert regression.fails, f"{regression.id} names no test that must fail"
    assert all(regression.pattern(s) for s in regression.fails), (
        f"{regression.id} has a failing test with no message pattern"
    )
    both = set(regression.fails) & set(regression.passes)
    assert not both, f"{regression.id} lists tests as both failing and passing: {both}"
    unrooted = [t for t in regression.targets if not (ROOT / t.split("::")[0]).is_file()]
    assert not unrooted, f"{regression.id} names tests in files that do not exist: {unrooted}"


@pytest.mark.parametrize("regression", REGRESSIONS, ids=lambda r: r.id)
def test_every_pattern_names_a_behaviour_not_any_failure(regression: Regression):
    generic = {
        selector: [m for m in GENERIC_MESSAGES if re.search(regression.pattern(selector), m)]
        for selector in regression.fails
    }
    generic = {s: m for s, m in generic.items() if m}
    assert not generic, (
        f"{regression.id}: these patterns also match generic messages, so they would accept "
        f"an unrelated failure: {generic}"
    )


def _outcome(outcome: str, *failures: tuple[str, str, bool, str]) -> dict:
    return {
        "outcome": outcome,
        "seconds": 0.1,
        "failures": [
            {"phase": phase, "exception": exception, "assertion": assertion, "message": message}
            for phase, exception, assertion, message in failures
        ],
    }


PASSED = _outcome("passed")
CAUGHT = _outcome("failed", ("call", "AssertionError", True, "layer h differs: max |diff| 1"))


def _judged(t1: dict, t2: dict = PASSED, control: dict = PASSED, calls=None) -> str:
    regression = Regression("example", "an example", lambda mp: None,
                            fails=("a.py::t1",), message=r"h differs", passes=("a.py::t2",))
    group = {"tests": {"a.py::t1[x]": t1, "a.py::t2": t2}}
    if calls is not None:
        group["calls"] = calls
    return "\n".join(problems(regression, {"control": {"tests": {"a.py::t1[x]": control}},
                                           "example": group}))


def test_the_judge_counts_only_an_assertion_in_the_call_phase_with_a_matching_message():
    """The judge as a pure function: a crash (TypeError) in the test, a fixture error in
    setup, an error in teardown after the assertion, an unrelated assertion message, a
    skip and a pass are all reported with the test and what was seen; ``pytest.fail``
    (``Failed``) counts like ``AssertionError``."""
    assert _judged(CAUGHT) == ""
    failed = f"{pytest.fail.Exception.__module__}.{pytest.fail.Exception.__qualname__}"
    assert _judged(_outcome("failed", ("call", failed, True,
                                       "DID NOT RAISE: h differs"))) == ""
    crash = _judged(_outcome("failed", ("call", "TypeError", False, "h differs (bad operand)")))
    assert re.search(r"example: a\.py::t1\[x\]: not caught: .*a crash in call \(TypeError\)",
                     crash), crash
    setup = _judged(_outcome("failed", ("setup", "AttributeError", False, "no fixture x")))
    assert re.search(r"an error in setup \(AttributeError\): 'no fixture x'", setup), setup
    teardown = _judged(_outcome("failed", ("call", "AssertionError", True, "h differs"),
                                ("teardown", "RuntimeError", False, "cleanup failed")))
    assert "an error in teardown (RuntimeError)" in teardown, teardown
    unrelated = _judged(_outcome("failed", ("call", "AssertionError", True, "shape (2, 3)")))
    assert "does not match /h differs/: 'shape (2, 3)'" in unrelated, unrelated
    assert "did not fail: skipped" in _judged(_outcome("skipped")), _judged(_outcome("skipped"))
    assert "did not fail: passed" in _judged(PASSED)


def test_the_judge_rejects_a_stale_target_collateral_damage_and_an_unexercised_patch():
    regression = Regression("example", "an example", lambda mp: None,
                            fails=("a.py::t1", "a.py::gone"), message="h differs",
                            passes=("a.py::t2",))
    groups = {
        "control": {"tests": {"a.py::t1[x]": _outcome("failed", ("call", "AssertionError",
                                                                 True, "boom"))}},
        "example": {"tests": {"a.py::t1[x]": CAUGHT,
                              "a.py::t2": _outcome("failed", ("call", "AssertionError", True,
                                                              "collateral"))},
                    "calls": {"LSTMCell.call": 0}},
    }
    found = "\n".join(problems(regression, groups))
    for expected in ("example: a.py::gone: selects no test",
                     "example: a.py::t1[x]: not green without the patch: an assertion",
                     "example: a.py::t2: should stay green but: an assertion",
                     "the patched code never ran (LSTMCell.call)"):
        assert expected in found, f"{expected!r} missing from the report:\n{found}"
    assert _judged(CAUGHT, calls={"LSTMCell.call": 3, "GRUCell.call": 0}) == ""


def test_the_runner_hid_the_gpus_before_tensorflow_was_imported(outcomes):
    run = outcomes["run"]
    assert run["cuda_visible_devices"] == "" and run["gpus_hidden_before_tensorflow_import"], (
        f"the sensitivity run could see GPUs, where cuDNN would bypass the patched cells: {run}"
    )


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id)
def test_a_patch_that_crashes_the_named_test_is_not_a_catch(probe: Regression, outcomes):
    """On a real run: the probe's patch makes its target raise TypeError (worded like the
    assertion the entry expects), and the judge must not count that as caught."""
    group = outcomes["groups"][probe.id]
    assert any(group.get("calls", {}).values()), f"the probe's patch never ran: {group}"
    crashed = [f for t in group["tests"].values() for f in t["failures"]
               if f["phase"] == "call" and f["exception"] == "TypeError" and not f["assertion"]]
    assert crashed, f"the probe did not make its target crash: {group['tests']}"
    found = "\n".join(problems(probe, outcomes["groups"]))
    assert re.search(rf"{probe.id}: .*{re.escape(probe.fails[0])}.*: not caught: .*a crash in "
                     r"call \(TypeError\)", found), (
        f"the judge counted a crash as a catch, or did not say so:\n{found or '(no problems)'}"
    )
    assert all(why_not_a_catch(t, probe.message) for t in group["tests"].values())


# --- older Keras releases (issue 15) -----------------------------------------------------
#: The catalogue's patches are written against this release; on older ones a patched
#: method may not exist yet, and that regression cannot be injected there.
CATALOGUE_RELEASE = "3.15.0"


def _known_here(nodeid: str, ran: dict) -> bool:
    """A test expected not to pass on the installed Keras: a strict xfail naming the ledger
    defect of this release it observes, or a skip naming a feature this release predates.
    Either way it cannot take part in a proof here; a test skipped for any other reason
    (a broken fixture, a missing data source) is no excuse."""
    test = ran.get(nodeid, {})
    if test.get("outcome") != "skipped":
        return False
    reason = test.get("skip_reason", "")
    defect = ledger.defect_for(nodeid, ledger.known_defects())
    if defect is not None and reason.startswith(f"known Keras defect {defect.id} "):
        return True
    return any((why := keras_lacks(feature)) is not None and why in reason
               for feature in KERAS_FEATURES)


def test_only_a_known_defect_or_a_missing_feature_excuses_a_test_from_the_proof(monkeypatch):
    """On a release lacking a feature, a test skipped for another reason (a broken fixture,
    no data) is not excused, nor is an xfail naming another ledger entry."""
    monkeypatch.setattr(runtime_versions, "package_version",
                        lambda name: "3.1.1" if name == "keras" else None)
    defect = ledger.parse([{"id": "probe", "keras": "<3.2", "differs": "d", "reference": "r",
                            "verified": "v", "tests": ["s.py::t_defect"],
                            "raises": "AssertionError", "match": "d"}])
    monkeypatch.setattr(ledger, "known_defects", lambda *a, **k: list(defect))
    lacks = keras_lacks("use_cudnn")
    assert lacks is not None
    ran = {
        "s.py::t_feature": {"outcome": "skipped", "skip_reason": lacks},
        "s.py::t_data": {"outcome": "skipped", "skip_reason": "no IMDB source is reachable"},
        "s.py::t_defect": {"outcome": "skipped", "skip_reason": defect[0].reason},
        "s.py::t_other": {"outcome": "skipped", "skip_reason": defect[0].reason},
        "s.py::t_failed": {"outcome": "failed", "skip_reason": lacks},
    }
    known = {n for n in ran if _known_here(n, ran)}
    assert known == {"s.py::t_feature", "s.py::t_defect"}


def _skip_if_not_provable_here(regression: Regression, groups: dict) -> None:
    if BACKEND in regression.bypassed:
        pytest.skip(f"not injectable on {BACKEND}: {regression.bypassed[BACKEND]}")
    group, control = groups.get(regression.id, {}), groups["control"]["tests"]
    version = package_version("keras")
    if "patch_error" in group and not keras_at_least(CATALOGUE_RELEASE):
        pytest.skip(f"Keras {version} cannot take this patch (written for "
                    f"{CATALOGUE_RELEASE}): {group['patch_error'].strip().splitlines()[-1]}")
    ran = {**group.get("tests", {}), **control}
    known = sorted({n for n in ran if any(selects(s, n) for s in regression.targets)
                    and _known_here(n, ran)})
    if known:
        pytest.skip(f"on Keras {version} with {BACKEND} its tests are known defects or "
                    f"pin a missing feature: {', '.join(known)}")


def test_every_named_suite_test_passes_without_a_patch(outcomes):
    control = outcomes["groups"]["control"]["tests"]
    selectors = dict.fromkeys(s for i in _regression_ids_from(outcomes) for s in BY_ID[i].fails)
    unmatched = [s for s in selectors if not any(selects(s, n) for n in control)]
    assert not unmatched, f"these targets name no collected test: {unmatched}"
    failing = [n for n, t in control.items()
               if t["outcome"] != "passed" and not _known_here(n, control)]
    assert not failing, (
        "without any patch these suite tests should pass, or the proof means nothing:\n"
        + "\n".join(f"    {n}: {control[n]['failures']!r:.300}" for n in failing)
    )


def _param(regression: Regression):
    marks = [pytest.mark.xfail(strict=True, reason=f"known gap: {regression.gap}")
             ] if regression.gap else []
    return pytest.param(regression, id=regression.id, marks=marks)


@pytest.mark.parametrize("regression", [_param(r) for r in REGRESSIONS])
def test_injected_regression_turns_the_tests_named_for_it_red(
    regression: Regression, outcomes: dict
):
    _skip_if_not_provable_here(regression, outcomes["groups"])
    found = problems(regression, outcomes["groups"])
    assert not found, (
        f"regression {regression.id!r} ({regression.description}) is not caught for the "
        "right reason:\n  " + "\n  ".join(found)
    )
