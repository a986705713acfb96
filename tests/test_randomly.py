"""pytest-randomly beside pytest-rnn: ``rnn_seed`` keeps its promise in every order.

``rnn_seed`` promises that Python's ``random``, NumPy's global generator and Keras
are seeded with the test's seed (derived from ``--rnn-seed`` and the node id) when
the test runs. pytest-randomly reseeds Python and NumPy with ``--randomly-seed``
after the fixtures; see :mod:`pytest_rnn.plugin.randomly` for how the two relate.
pytest-randomly is in the ``dev`` extra, so CI runs these.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pytest_randomly")

DRAWS = """
import json, random
from pathlib import Path

import keras
import numpy as np
import pytest

from pytest_rnn import backends

OUT = Path(__file__).parent / "draws.jsonl"


def _draw():
    draw = keras.ops.convert_to_numpy(keras.random.uniform(()))  # any backend's tensor
    return [random.random(), float(np.random.rand()), float(draw)]


@pytest.fixture
def warmed(rnn_seed):
    return _draw()  # a fixture that draws during set-up, after rnn_seed seeded


@pytest.mark.parametrize("i", range(3))
def test_seeded(rnn_seed, warmed, request, i):
    body = _draw()
    backends.seed_everything(rnn_seed)
    expected_fixture, expected_body = _draw(), _draw()
    with OUT.open("a") as fh:
        fh.write(json.dumps({"test": request.node.name, "seed": rnn_seed, "body": body,
                             "fixture": warmed}) + "\\n")
    assert warmed == expected_fixture
    assert body == expected_body, "the test did not get rnn_seed's draws"


def test_unseeded(request):
    with OUT.open("a") as fh:
        fh.write(json.dumps({"test": request.node.name, "body": [random.random()]}) + "\\n")
"""


def _run(pytester: pytest.Pytester, *args: str) -> dict[str, dict]:
    out = pytester.path / "draws.jsonl"
    if out.exists():
        out.unlink()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--no-header", *args)
    result.assert_outcomes(passed=4)
    return {row["test"]: row for row in map(json.loads, out.read_text().splitlines())}


def test_rnn_seed_draws_are_the_same_with_and_without_pytest_randomly(pytester):
    import keras  # noqa: F401 - imported once here: in-process runs must not import TF anew

    pytester.makepyfile(test_draws=DRAWS)
    plain = _run(pytester, "-p", "no:randomly")
    for seed in ("1", "2", "3"):
        shuffled = _run(pytester, "-p", "randomly", f"--randomly-seed={seed}")
        for name in plain:
            if name.startswith("test_seeded"):
                assert shuffled[name] == plain[name], (seed, name)
    # the tests without rnn_seed are pytest-randomly's: its seed decides their draws
    assert _run(pytester, "-p", "randomly", "--randomly-seed=1")["test_unseeded"] != \
        _run(pytester, "-p", "randomly", "--randomly-seed=2")["test_unseeded"]


def test_the_hooks_are_registered_only_with_pytest_randomly_active(pytester):
    pytester.makepyfile(test_x="def test_x(pytestconfig):\n"
                               "    print(pytestconfig.pluginmanager.has_plugin('rnn-randomly'))\n")
    for args, expected in ((["-p", "no:randomly"], "False"), (["-p", "randomly"], "True"),
                           (["-p", "randomly", "--randomly-dont-reset-seed"], "False")):
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-s", *args)
        result.stdout.fnmatch_lines([f"*{expected}*"])
