"""Baselines are seeded by default: a test that uses ``rnn_baseline`` without ``rnn_seed``
cannot silently drift, and a multi-seed check seeds each of its runs.

``rnn_baseline`` seeds Python, NumPy and Keras with the test's seed when it is set up (the
frameworks loaded by then; see :mod:`pytest_rnn.plugin.baseline_seeding`), so a value drawn
from Keras's initialisers comes out the same on every rerun of the same process, where
unseeded draws would go on from wherever the last run left the generators, and the entry's
``seeds.test`` is the seed that reproduces it. Keras first imported inside the test is
refused in one line. ``check_sample(run=...)`` seeds each run with its own seed. The
statistic a sample check compares has one name and one value in its failure message, the
terminal summary and the stored entry, and a band that moved from the calibrated one says
by how much. In-process runs: the draws cost milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import statistics
import sys

# Imported before pytester's sys.modules snapshot: in-process runs reuse these modules
# (TensorFlow and NumPy cannot be imported twice in one process).
import keras  # noqa: F401
import pytest

import pytest_rnn.plugin.baselines  # noqa: F401 - imported on first use; one copy per process
from pytest_rnn import backends
from pytest_rnn.runtime.seeding import derive_seed

DRAW = """
import random

import keras
import numpy as np


def draw(seed=None):
    # what a training run draws: a layer's initial weights, a NumPy shuffle, a Python choice
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    return [float(layer.get_weights()[0].sum()), float(np.random.rand()), random.random()]
"""

UNSEEDED_TEST = DRAW + """

import json
from pathlib import Path


def test_trained(rnn_baseline, request):  # no rnn_seed
    values = draw()
    with (Path(__file__).parent / "draws.jsonl").open("a") as fh:
        fh.write(json.dumps(values) + "\\n")
    for metric, value in zip(("weights", "numpy", "python"), values):
        rnn_baseline.check(metric, value, tolerance=0.0, higher_is_better=None)
"""


def _draw(seed: int) -> list[float]:
    """:data:`DRAW`'s ``draw`` here, after seeding as ``rnn_seed`` does with ``seed``."""
    namespace: dict = {}
    exec(DRAW, namespace)
    backends.seed_everything(seed)
    return namespace["draw"]()


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch):
    for name in ("PYTEST_RNN_BASELINES", "PYTEST_RNN_SEED", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess("--no-header", "-p", "no:cacheprovider",
                                        "-p", "no:xdist", *args)


def _draws(pytester: pytest.Pytester) -> list[list[float]]:
    out = pytester.path / "draws.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    out.unlink()
    return rows


def _entries(pytester: pytest.Pytester, name: str) -> dict:
    return json.loads((pytester.path / "baselines" / f"{name}.json").read_text())["entries"]


def test_a_baseline_test_without_rnn_seed_draws_the_same_keras_weights_on_every_rerun(
        pytester):
    """Recorded, then run twice more in the same process (whose Keras, NumPy and Python
    generators the earlier runs moved on): the same weights, NumPy and Python draws each
    time, and every check passes at zero tolerance. The entry's seed is the one that
    reproduces the draws."""
    pytester.makepyfile(test_model=UNSEEDED_TEST)
    _run(pytester, "-p", "no:randomly", "--rnn-update-baselines").assert_outcomes(passed=1)
    recorded, = _draws(pytester)
    reruns = []
    shuffled = [["-p", "randomly", f"--randomly-seed={seed}"] for seed in (1, 2)
                if importlib.util.find_spec("pytest_randomly")]
    for args in (["-p", "no:randomly"], ["-p", "no:randomly"], *shuffled):
        result = _run(pytester, *args)
        reruns += _draws(pytester)
        assert reruns[-1] == recorded, (
            f"a test using rnn_baseline without rnn_seed drifted: recorded {recorded}, "
            f"rerun ({' '.join(args)}) drew {reruns[-1]}: Keras, NumPy or Python unseeded")
        result.assert_outcomes(passed=1)
    entries = _entries(pytester, "test_model")
    test_seed = derive_seed(1234, "test_model.py::test_trained")
    assert {e["seeds"]["test"] for e in entries.values()} == {test_seed}
    assert _draw(test_seed) == recorded, "the entry's seed does not reproduce the run"


def test_keras_first_imported_inside_the_test_is_refused_in_one_line(pytester, monkeypatch):
    """Keras not loaded when ``rnn_baseline`` was set up (so it could not be seeded) and
    imported by the test itself: the check fails in one line asking for ``rnn_seed``, and
    nothing is recorded; with ``rnn_seed`` the same test records."""
    late = """
        def test_late(rnn_baseline{extra}):
            import keras

            value = float(keras.ops.convert_to_numpy(keras.random.uniform(())))
            rnn_baseline.check("draw", value, tolerance=0.0, higher_is_better=None)
    """
    pytester.makepyfile(test_late=late.format(extra=""))
    monkeypatch.delitem(sys.modules, "keras")  # as in a process that has not imported it
    refused = _run(pytester, "-p", "no:randomly", "--rnn-update-baselines")
    assert refused.parseoutcomes().get("failed") == 1, (
        "a value drawn from a Keras imported after rnn_baseline's set-up (unseeded) was "
        f"checked and recorded: {refused.outlines[-1]}")
    refused.stdout.fnmatch_lines([
        "*cannot check draw as seeded by the test's seed: Keras first imported while this "
        "test ran*request the rnn_seed fixture in this test*"])
    assert not (pytester.path / "baselines").exists()
    pytester.makepyfile(test_late=late.format(extra=", rnn_seed"))
    _run(pytester, "-p", "no:randomly", "--rnn-update-baselines").assert_outcomes(passed=1)


SAMPLE_RUNS_TEST = DRAW + """

import json
from pathlib import Path


def logged(seed):
    value = sum(draw())
    with (Path(__file__).parent / "draws.jsonl").open("a") as fh:
        fh.write(json.dumps([seed, value]) + "\\n")
    return value


def test_sample(rnn_baseline):
    rnn_baseline.check_sample("draw", run=logged, k=4, higher_is_better=None)


def test_two_metrics(rnn_baseline):  # runs giving several metrics: sample_runs, check_samples
    seeds, runs = rnn_baseline.sample_runs(lambda seed: draw(), 2)
    rnn_baseline.check_samples([(name, [run[i] for run in runs], {"higher_is_better": None})
                                for i, name in enumerate(("weights", "numpy"))],
                               seeds=seeds, k=2)
"""


def test_check_sample_seeds_each_run_with_its_own_seed(pytester):
    """``check_sample(run=...)``: every run is seeded by its seed before it is called (its
    value is what that seed gives, whatever ran before), calibration and checks alike, so
    reruns give the same values; the entries say rnn_baseline seeded them, those of
    ``sample_runs`` checked by ``check_samples`` too."""
    pytester.makepyfile(test_model=SAMPLE_RUNS_TEST)
    _run(pytester, "-p", "no:randomly", "--rnn-calibrate", "6").assert_outcomes(passed=2)
    calibration = _draws(pytester)
    runs, verdicts = [], []
    for _ in range(2):
        # whether a seeded sample lands inside its 99% band is the check's verdict (a 1%
        # false alarm on one backend's draws), not what this test is about: both checks
        # ran, and the reruns agree in their draws and their verdicts
        outcomes = _run(pytester, "-p", "no:randomly").parseoutcomes()
        assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, outcomes
        assert not outcomes.keys() & {"errors", "error"}, outcomes
        verdicts.append(outcomes)
        runs.append(_draws(pytester))
    assert runs[0] == runs[1], f"check_sample's runs drifted between reruns: {runs}"
    assert verdicts[0] == verdicts[1], f"the same draws were judged differently: {verdicts}"
    for seed, value in calibration + runs[0]:
        assert value == sum(_draw(seed)), f"run of seed {seed} was not seeded with it"
    assert len({value for _, value in calibration + runs[0]}) == 10
    entries = _entries(pytester, "test_model")
    assert {e["seeds"]["seeded_by"] for e in entries.values()} == {"rnn_baseline"}
    assert entries["test_sample::draw"]["seeds"]["calibration"] == [s for s, _ in calibration]
    weights = entries["test_two_metrics::weights"]["distribution"]
    assert weights["values"] == [_draw(seed)[0] for seed in weights["seeds"]]


SCALED_TEST = """
    import json, os

    def test_error(rnn_baseline):
        values = json.loads(os.environ["VALUES"])
        seeds = rnn_baseline.sample_seeds(2)
        rnn_baseline.check_sample("error", values, seeds=seeds, k=2, higher_is_better=False,
                                  scale="log2")
"""

#: 20 calibration runs of a log2-scaled error (geometric mean 0.1, log2 sd ~0.2)
CALIBRATION = [0.1 * 2 ** (0.3 * math.sin(i)) for i in range(20)]
#: two runs that scatter far more than the calibration (their arithmetic mean, 0.265, is
#: not what the check compares)
SAMPLE = [0.1, 0.43]


def test_a_sample_check_names_one_statistic_with_one_value_everywhere(pytester, monkeypatch):
    """A log2-scaled check compares the geometric mean: its failure message, the summary's
    measured, baseline and allowed columns and the stored note all name the geometric mean
    and give the same values, never the arithmetic mean; and the
    message says how far the band (pooled with these runs' wider spread) moved from the
    one the note states."""
    pytester.makepyfile(test_model=SCALED_TEST)
    monkeypatch.setenv("VALUES", json.dumps(CALIBRATION))
    calibrated = _run(pytester, "-p", "no:randomly", "--rnn-calibrate", "20")
    calibrated.assert_outcomes(passed=1)
    entry, = _entries(pytester, "test_model").values()
    stored = 2 ** statistics.fmean(math.log2(v) for v in CALIBRATION)
    assert entry["value"] == pytest.approx(stored, rel=1e-12)
    assert f"geometric mean of 20 = {stored:.4g}, the value" in entry["note"]
    assert entry["seeds"]["seeded_by"] == "test"
    recorded_band = re.search(r"band for k = 2 at alpha = 0.01: (geometric mean of 2 <= \S+);",
                              entry["note"]).group(1)
    calibrated.stdout.fnmatch_lines([f"*recorded *error *- *{stored:.4g}  {recorded_band}"])

    monkeypatch.setenv("VALUES", json.dumps(SAMPLE))
    result = _run(pytester, "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    measured = math.sqrt(SAMPLE[0] * SAMPLE[1])
    out = result.stdout.str()
    failure = next(line for line in out.splitlines() if "above its calibrated band" in line)
    assert f"geometric mean of 2 = {measured:.4g} (runs 0.1, 0.43)" in failure, failure
    assert f"{statistics.fmean(SAMPLE):.4g}" not in failure, "the arithmetic mean was named"
    now = re.search(r"allowed (geometric mean of 2 <= (\S+)) ", failure)
    row = next(line for line in out.splitlines() if line.lstrip().startswith("FAIL"))
    assert row.split()[-8:] == [f"{stored:.4g}", f"{measured:.4g}", *now.group(1).split()], row
    moved = re.search(rf"the band moved from {re.escape(recorded_band)} when calibrated to "
                      rf"{re.escape(now.group(1))} now \(([-+][\d.e-]+)\): it pools the "
                      rf"calibration's variance with these 2 runs'", failure)
    assert moved, f"the band moved without saying so and by how much: {failure}"
    shift = float(now.group(2)) - float(recorded_band.split()[-1])  # the edges as shown
    assert float(moved.group(1)) == pytest.approx(shift, abs=1e-4) and shift > 0.01


def test_values_need_their_seeds_and_run_and_values_exclude_each_other(pytester):
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.parametrize("kwargs, message", [
            ({}, "check_sample takes run= *or values with their seeds=; got neither"),
            ({"values": [1.0], "run": float}, "*got both"),
            ({"values": [1.0]}, "values need the seeds= of their runs*"),
            ({"run": 3}, "run must be a function of the seed; got 3"),
        ])
        def test_bad(rnn_baseline, kwargs, message):
            with pytest.raises(ValueError) as info:
                rnn_baseline.check_sample("m", k=1, **kwargs)
            assert info.match(message.replace("*", ".*").replace("(", "[(]")), info.value
    """)
    _run(pytester, "-p", "no:randomly").assert_outcomes(passed=4)
