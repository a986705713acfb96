"""The catalogue still meets the suites: by the tests it names and by the wording it quotes.

The proof of sensitivity (tests/test_proof_of_sensitivity.py) finds a stale selector or a
pattern no failure matches only when it runs the suites under every patch. These checks
say it at once, and statically: every selector of :mod:`regressions.catalogue` and
:mod:`regressions.cross_backend` names a test (or case) this session collected (the one
collection tests/test_ledger.py reads too, :func:`collected.nodeids`), and every message
pattern quotes wording a template of pytest_rnn/ or suites/ produces
(:mod:`regressions.wording`).
"""

from __future__ import annotations

from collections.abc import Iterable

import collected
import pytest
from regressions import wording
from regressions.catalogue import BY_ID
from regressions.cross_backend import BACKEND_REGRESSIONS, BackendRegression
from regressions.entry import Regression
from regressions.judge import selects

from pytest_rnn.runtime import ledger

#: The test of suites/test_cross_backend.py whose parameters are the cases a
#: :class:`BackendRegression` names: the comparison the proof repeats under its patch.
BACKENDS_AGREE = "suites/test_cross_backend.py::test_backends_agree"
CATALOGUE = tuple(BY_ID.values())


def dangling(regressions: Iterable[Regression], backend_regressions: Iterable[BackendRegression],
             ids: set[str]) -> list[str]:
    """Each selector (``fails``, ``passes``, the keys of ``messages``; a backend entry's
    cases) that names no test of ``ids``, as ``"<entry id>: <selector>"``."""
    found = [f"{r.id}: {selector}" for r in regressions
             for selector in dict.fromkeys((*r.fails, *r.passes, *r.messages))
             if not any(selects(selector, n) for n in ids)]
    found += [f"{r.id}: case {case!r} (no {BACKENDS_AGREE}[{case}])"
              for r in backend_regressions for case in (*r.fails, *r.passes)
              if f"{BACKENDS_AGREE}[{case}]" not in ids]
    return found


def _files() -> list[str]:
    targets = {s.split("::", 1)[0] for r in CATALOGUE for s in r.targets}
    return sorted(targets | {BACKENDS_AGREE.split("::", 1)[0]})


def test_every_selector_names_a_collected_test(request, pytester):
    ids = collected.nodeids(_files(), request.config, pytester)
    found = dangling(CATALOGUE, BACKEND_REGRESSIONS, ids)
    assert not found, (
        "catalogue selectors that match no collected test (renamed or deleted tests, "
        "changed parametrize ids):\n  " + "\n  ".join(found))


def test_a_selector_that_names_no_test_is_listed():
    entry = Regression("probe", "a probe", lambda mp: None,
                       fails=("s.py::test_kept", "s.py::test_gone"), message="kept",
                       messages={"s.py::test_gone": "gone"}, passes=("s.py::test_t[renamed]",))
    cases = BackendRegression("probe_backend", "a probe", "jax", "m:f", fails=("lstm",),
                              message="x", passes=("gru_gone",))
    ids = {"s.py::test_kept[a]", "s.py::test_t[b]", f"{BACKENDS_AGREE}[lstm]"}
    assert dangling([entry], [cases], ids) == [
        "probe: s.py::test_gone", "probe: s.py::test_t[renamed]",
        f"probe_backend: case 'gru_gone' (no {BACKENDS_AGREE}[gru_gone])"]


def _patterns() -> dict[str, str]:
    """Every pattern a catalogue entry's failing test must match, by where it is used."""
    found = {f"{r.id}: {s}": r.pattern(s) for r in CATALOGUE for s in r.fails}
    found.update({f"{r.id}: {', '.join(r.fails)}": r.message for r in BACKEND_REGRESSIONS})
    return found


def test_every_pattern_finds_its_wording_in_a_template():
    found = [f"{where}: /{pattern}/: {run!r}" for where, pattern in _patterns().items()
             for run in wording.unworded(pattern)]
    assert not found, (
        "catalogue patterns quoting wording no template of pytest_rnn/ or suites/ produces "
        "(a reworded message? quote the check's constant; another library's wording: add it "
        "to regressions.wording.EXEMPT_WORDING with the reason):\n  " + "\n  ".join(found))


@pytest.mark.parametrize(("pattern", "unproduced"), [
    # wording no code says
    (r"LSTM .*forgets its gates entirely", ["forgets its gates entirely"]),
    # a real message reworded: each way of matching is checked, not just one
    (r"kept units are not rescaled by 1 / \(1 - rate\)|dropout leaks into inference",
     ["kept units are not rescaled by 1 / (1 - rate)"]),
    (r"the seed does not fix the (masks|dropout masks)", ["the seed does not fix the masks"]),
    # another library's message, unless exempt or recorded
    (r"Shapes of all inputs must match", []),
    (r"Cannot interpret the tensor's rank", ["Cannot interpret the tensor's rank"]),
    # produced: by one template with values in its holes, by templates nested in holes
    (r"has 600 parameters, expected 624", []),
    (r"xla: outputs of the two halves, concatenated differs from eager execution", []),
    (r"\w+_masked dL/d inputs: \d+ of \d+ values differ", []),
])
def test_a_pattern_no_template_produces_is_listed(pattern, unproduced):
    assert wording.unworded(pattern) == unproduced
    assert wording.unworded(pattern, recorded=" ".join(unproduced)) == []


def test_every_exemption_is_a_run_some_pattern_quotes():
    """An exemption left over from a reworded pattern would excuse the next one."""
    quoted = {run for pattern in (*_patterns().values(), *(d.match for d in ledger.load()))
              for run in wording.skeleton(pattern)}
    stale = sorted(set(wording.EXEMPT_WORDING) - quoted)
    assert not stale, f"EXEMPT_WORDING entries no pattern quotes any more: {stale}"
