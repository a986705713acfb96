"""Each example project under ``examples/`` catches the bug its README names.

For each example a copy of the project gets the bug injected into its model module (a
one-place edit of the shipped source), and the example's own test named in its README
must then fail on its assertion, with the message naming the behaviour. The runs are
in-process (``pytester.inline_run``, TensorFlow already imported) and run only that
test, so they stay cheap; that the example's tests pass as shipped is the job of the CI
step that runs every example (``.ci/run``).

Keras and NumPy are imported by this module, so they are in the modules each inline run
keeps: an inline run removes the modules it imported when it ends, and NumPy cannot be
imported a second time into the same process.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras  # noqa: F401  (see the module docstring)
import numpy  # noqa: F401
import pytest

from pytest_rnn.checks.behaviours import MASK_LEAKS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class InjectedBug:
    """A bug an example's README names: where it goes and the test that catches it."""

    example: str
    module: str  # the example's model module, relative to its root
    correct: str  # shipped source that the bug replaces (must occur exactly once)
    broken: str
    test: str  # node id, relative to the example's root
    message: str  # regular expression the failure message must match

    @property
    def test_name(self) -> str:
        """``Class::test``, as the README names it."""
        return self.test.split("::", 1)[1]


BUGS = [
    InjectedBug(
        example="imdb_bilstm",
        module="sentiment.py",
        # the review vector averages every step, padding included
        correct=(
            "        if mask is None:\n"
            "            return ops.mean(steps, axis=1)\n"
            "        keep = ops.expand_dims(ops.cast(mask, steps.dtype), -1)\n"
            "        return ops.sum(steps * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), "
            "1.0)\n"
        ),
        broken="        return ops.mean(steps, axis=1)\n",
        test="tests/test_sentiment.py::TestPooledBiLSTMContract::test_masking_equivalence",
        # the pooled vector (the output without return_sequences) of a padded sample
        message=re.escape(MASK_LEAKS) + r"\):\n +sample \d \(steps \[[\d, ]+\] masked\), "
        r"last-step output",
    ),
    InjectedBug(
        example="weather_forecast",
        module="weather.py",
        # reset_states() forgets every LSTM but the first
        correct="        for lstm in self.lstms:\n            lstm.reset_states()\n",
        broken="        self.lstms[0].reset_states()\n",
        test="tests/test_weather.py::TestLSTMStackContract::test_stateful_halves",
        message=r"first-half output after reset_states\(\): \d+ of \d+ values differ",
    ),
    InjectedBug(
        example="char_gru",
        module="char_gru.py",
        # the cell returns the state it was given instead of the new one
        correct="        return new_h, [new_h]\n",
        broken="        return new_h, [h]\n",
        test="tests/test_char_gru.py::TestGatedRecurrentCellContract::test_trainability",
        # JAX gives zeros, not None, for a variable the loss never reads
        message=r"does not train every weight:\n.*recurrent_kernel \(4, 12\): "
        r"(no gradient|gradient is exactly zero)",
    ),
]


def _failure(reprec, test: str) -> str:
    """The assertion message of ``test`` in an inline run that must have run it alone and
    seen it fail on an assertion (an error or a crash is not a catch)."""
    reports = [r for r in reprec.getreports("pytest_runtest_logreport")
               if r.when == "call" or not r.passed]
    assert [r.nodeid for r in reports] == [test], [(r.nodeid, r.outcome) for r in reports]
    (report,) = reports
    assert report.failed and report.when == "call", f"{test} passed with the bug injected"
    message = report.longrepr.reprcrash.message
    assert message.startswith("AssertionError: "), (
        f"{test} did not fail on an assertion:\n{report.longreprtext}")
    return message


@pytest.mark.parametrize("bug", BUGS, ids=[bug.example for bug in BUGS])
def test_example_catches_the_bug_its_readme_names(bug: InjectedBug, pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch):
    root = EXAMPLES / bug.example
    readme = (root / "README.md").read_text()
    assert bug.test_name in readme, f"{bug.example}/README.md does not name {bug.test_name}"
    source = (root / bug.module).read_text()
    assert source.count(bug.correct) == 1, (
        f"{bug.example}/{bug.module} no longer holds the code the bug replaces:\n{bug.correct}")

    shutil.copytree(root, pytester.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (pytester.path / bug.module).write_text(source.replace(bug.correct, bug.broken))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", bug.test)
    text = _failure(reprec, bug.test)
    assert re.search(bug.message, text), f"{bug.test} failed for another reason:\n{text}"
