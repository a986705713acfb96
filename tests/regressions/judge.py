"""The judge: whether the runner's recorded outcomes prove a regression is caught.

A pure function of the catalogue entry and the outcomes JSON (no pytest run, no Keras),
so it is tested on synthetic outcomes as well as on real ones.

A ``fails`` target counts as a catch only when

* it failed in the **call** phase (not in setup or teardown: a fixture error says
  nothing about the behaviour),
* on an **assertion**: ``AssertionError`` (``assert``, NumPy's testing helpers, the
  plugin's assertion helpers) or ``pytest.fail`` (``Failed``: ``pytest.raises``' "DID
  NOT RAISE", the baseline checks); any other exception is a crash, not a catch,
* with a message that matches the entry's pattern for that target (``re.search``),
* and passed without any patch (the control run).

Each ``passes`` target must pass with the patch, every selector must name a collected
test, and when the patch installed replacements at least one of them must have run.

An outcome, as the runner records it per test::

    {"outcome": "passed" | "failed" | "skipped", "seconds": float,
     "failures": [{"phase": "setup" | "call" | "teardown", "exception": "AssertionError",
                   "assertion": bool, "message": str}, ...]}
"""

from __future__ import annotations

import re
from typing import Any

#: Messages any failure could give, Keras's own wrapper lines included: a pattern that
#: finds one of them names no behaviour (catalogue entries and ledger entries alike).
GENERIC_MESSAGES = ("", "assert False", "AssertionError", "assert 0.3 == 0.0", "values differ",
                    "TypeError: unsupported operand",
                    "Exception encountered when calling LSTM.call().",
                    "Arguments received by GRU.call():")

Outcome = dict[str, Any]
Groups = dict[str, dict[str, Any]]


def selects(selector: str, nodeid: str) -> bool:
    """Whether ``selector`` (a node id, with or without its ``[params]``) names ``nodeid``."""
    return nodeid == selector or (nodeid.startswith(selector + "[") and "[" not in selector)


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return repr(message if len(message) <= limit else message[:limit] + " ...")


def seen(outcome: Outcome | None) -> str:
    """What a test did, in one line: passed, skipped, or each failure's phase, type and
    message."""
    if outcome is None:
        return "not run"
    failures = outcome.get("failures", [])
    if not failures:
        return outcome.get("outcome", "not run")
    return "; ".join(
        f"{'an assertion' if f['assertion'] else 'a crash'} ({f['exception']}) in {f['phase']}: "
        f"{_short(f['message'])}"
        for f in failures
    )


def why_not_a_catch(outcome: Outcome | None, pattern: str) -> str | None:
    """Why ``outcome`` is not a catch for ``pattern``, or None when it is one."""
    if outcome is None:
        return "it was not run"
    failures = outcome.get("failures", [])
    if outcome.get("outcome") != "failed" or not failures:
        return f"it did not fail: {seen(outcome)}"
    wrong = [f for f in failures if f["phase"] != "call" or not f["assertion"]]
    if wrong:
        what = "; ".join(
            f"{'an error' if f['phase'] != 'call' else 'a crash'} in {f['phase']} "
            f"({f['exception']}): {_short(f['message'])}"
            for f in wrong
        )
        return f"it failed, but not on an assertion in the test itself: {what}"
    unrelated = [f for f in failures if not re.search(pattern, f["message"])]
    if unrelated:
        return (
            f"its assertion message does not match /{pattern}/: "
            + "; ".join(_short(f["message"]) for f in unrelated)
        )
    return None


def problems(regression: Any, groups: Groups, *, control: bool = True) -> list[str]:
    """Why ``regression`` is not proven caught by the runner's ``groups``; empty when it is.

    Every line names the regression and the test, and says what was seen instead.
    ``control=False`` skips the check that the targets pass without the patch (for runs
    whose control is established elsewhere: the slow training suite's own run).
    """
    rid = regression.id
    group = groups.get(rid)
    if group is None:
        return [f"{rid}: was not run"]
    if "patch_error" in group:
        return [f"{rid}: could not be injected or run:\n{group['patch_error']}"]
    tests = group["tests"]
    baseline = groups.get("control", {}).get("tests", {})
    found = []
    for selector in regression.fails:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"{rid}: {selector}: selects no test")
        pattern = regression.pattern(selector)
        for nodeid in matched:
            why = why_not_a_catch(tests[nodeid], pattern)
            if why:
                found.append(f"{rid}: {nodeid}: not caught: {why}")
            if control and baseline.get(nodeid, {}).get("outcome") != "passed":
                found.append(
                    f"{rid}: {nodeid}: not green without the patch: {seen(baseline.get(nodeid))}"
                )
    for selector in regression.passes:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"{rid}: {selector}: selects no test")
        for nodeid in matched:
            if tests[nodeid].get("outcome") != "passed":
                found.append(f"{rid}: {nodeid}: should stay green but: {seen(tests[nodeid])}")
    calls = group.get("calls", {})
    if calls and not any(calls.values()):
        found.append(
            f"{rid}: the patched code never ran ({', '.join(calls)}), so it cannot be what "
            "the tests caught"
        )
    return found
