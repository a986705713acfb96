"""The toy-task accuracy suite notices when gradients no longer flow through time.

A baseline that a broken model still meets protects nothing. This runs
``suites/test_accuracy_toy.py`` in a fresh pytest process whose recurrent cells
(SimpleRNNCell, LSTMCell, GRUCell) apply ``stop_gradient`` to the incoming state:
the forward pass is unchanged, but training only sees one step back. Every toy
test must then fail on its threshold (not on an error or a missing baseline).

Parity is the exception, and a measured one: one-step gradients learn it too (with
cut gradients GRU(8) solved 6-bit parity for 3 of 4 seeds and the solution carried
over to 20-bit sequences: the state it needs is exactly what it is trained to
output). Its threshold is shown to catch a layer whose cells get a zero state
instead, i.e. carry nothing from one step to the next.
Slow: it trains the toy suite once more.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "test_accuracy_toy.py"

CUT_BPTT_PLUGIN = """
import functools, json, os
from collections import Counter

import keras

CALLS = Counter()


SABOTAGE = {"stop_gradient": keras.ops.stop_gradient, "zero_state": keras.ops.zeros_like}


def _cut(cls):
    original = cls.call
    sabotage = SABOTAGE[os.environ["CUT_BPTT_MODE"]]

    @functools.wraps(original)  # keeps the signature, so Keras still passes `training`
    def call(self, inputs, states, *args, **kwargs):
        CALLS[cls.__name__] += 1
        states = keras.tree.map_structure(sabotage, states)
        return original(self, inputs, states, *args, **kwargs)

    cls.call = call


def pytest_configure(config):
    for cls in (keras.layers.SimpleRNNCell, keras.layers.LSTMCell, keras.layers.GRUCell):
        _cut(cls)


def pytest_unconfigure(config):
    with open(os.environ["CUT_BPTT_CALLS"], "w") as fh:
        json.dump(CALLS, fh)
"""

#: What a threshold failure of the toy suite says (its own assertions and rnn_baseline's).
THRESHOLD_FAILURE = re.compile(
    r"outside its baseline band|not even 3 x chance|better than chance|does not beat chance"
    r"|no longer clearly worse"
)


def run_sabotaged(pytester, monkeypatch, mode: str, select: str):
    """Run the toy suite's tests matching ``-k select`` with every cell sabotaged by ``mode``.

    Returns ``({test name: None if passed else 'failure: message'}, cell calls, result)``.
    """
    pytester.makepyfile(cut_bptt=CUT_BPTT_PLUGIN)
    calls = pytester.path / "calls.json"
    report = pytester.path / "report.xml"
    monkeypatch.setenv("CUT_BPTT_CALLS", str(calls))
    monkeypatch.setenv("CUT_BPTT_MODE", mode)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # cuDNN kernels would bypass the cells
    for name in ("PYTEST_ADDOPTS", "PYTEST_RNN_BASELINES", "PYTEST_RNN_SEED"):
        monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest_subprocess(
        str(SUITE), "-p", "cut_bptt", "-m", "slow", "-k", select, "-p", "no:cacheprovider",
        "--no-header", "--rnn-baselines", str(ROOT / "baselines"), f"--junitxml={report}",
        timeout=600,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcomes[case.get("name")] = None  # passed
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcomes[case.get("name")] = f"{kind}: {found.get('message', '')}"
    return outcomes, json.loads(calls.read_text()), result


def assert_all_fail_on_threshold(outcomes: dict, expected: int, result, why: str) -> None:
    assert len(outcomes) == expected, f"expected {expected} toy tests, got {sorted(outcomes)}"
    passed = sorted(name for name, message in outcomes.items() if message is None)
    assert not passed, (
        f"with {why} these toy tests still pass, so their thresholds cannot detect it: "
        f"{passed}\n{result.stdout.str()[-3000:]}"
    )
    other = {name: message for name, message in outcomes.items()
             if not THRESHOLD_FAILURE.search(message)}
    assert not other, f"toy tests failed for another reason than their threshold: {other}"


def test_cutting_gradients_through_time_fails_the_toy_thresholds(pytester, monkeypatch):
    outcomes, calls, result = run_sabotaged(pytester, monkeypatch, "stop_gradient",
                                            "not parity")
    assert {"SimpleRNNCell", "LSTMCell", "GRUCell"} <= {k for k, v in calls.items() if v}, (
        f"the stop_gradient patch was not exercised by every cell kind: {calls}"
    )
    assert_all_fail_on_threshold(outcomes, 4, result, "gradients cut through time")


def test_a_layer_without_memory_fails_the_parity_threshold(pytester, monkeypatch):
    outcomes, calls, result = run_sabotaged(pytester, monkeypatch, "zero_state", "parity")
    assert calls.get("GRUCell"), f"the zero-state patch was not exercised: {calls}"
    assert_all_fail_on_threshold(outcomes, 1, result, "no state carried between steps")
