"""A calibrated band may not admit chance-level performance or an epoch count past the
training budget: such a band is a check that cannot fail for the thing it names.

``check_sample(..., chance=..., budget=...)`` refuses to calibrate such a band (one line
naming the entry, the band and the limit), keeps the limits in the entry, and fails a stored
entry that admits one as stale; :func:`pytest_rnn.store.rules.limit_crossed` is the rule.
"""

from __future__ import annotations

import json
import math

import keras  # noqa: F401 - imported before pytester's sys.modules snapshot
import pytest

import pytest_rnn.plugin.baselines  # noqa: F401
from pytest_rnn.store import rules, stats

#: Twenty MSEs of a model scattered by a factor of ~2 around 0.01 (log2 sd ~0.5).
MSES = [0.01 * 2 ** (0.5 * math.sin(i)) for i in range(20)]
WIDE = [0.01 * 2 ** (3.0 * math.sin(i)) for i in range(20)]  # the same, log2 sd ~2.1


def log2_distribution(values):
    return stats.Distribution.of([math.log2(v) for v in values])


def test_a_band_that_reaches_chance_is_crossed_and_a_narrow_one_is_not():
    narrow, wide = log2_distribution(MSES), log2_distribution(WIDE)
    options = {"alpha": 0.01, "direction": "lower", "scale": "log2"}
    assert rules.limit_crossed(narrow, {"chance": 0.17}, k=1, **options) == ""
    crossed = rules.limit_crossed(wide, {"chance": 0.17}, k=1, **options)
    assert crossed == "admits chance level 0.17"
    # more runs per check narrow the band until chance is out of it
    assert rules.limit_crossed(wide, {"chance": 0.17}, k=8, **options) == ""
    # an epoch budget is a limit of the same kind
    epochs = log2_distribution([8 * 2 ** (2.0 * math.sin(i)) for i in range(20)])
    assert rules.limit_crossed(epochs, {"budget": 30}, k=1, **options) == (
        "admits the training budget 30")
    assert rules.limit_crossed(epochs, {"budget": 30, "chance": 100}, k=1, **options) == (
        "admits the training budget 30 and admits chance level 100")


def test_a_higher_is_better_band_and_a_rank_band_are_judged_the_same_way():
    accuracy = stats.Distribution.of([0.78 + 0.01 * math.sin(i) for i in range(20)])
    options = {"alpha": 0.01, "direction": "higher", "scale": "linear"}
    assert rules.limit_crossed(accuracy, {"chance": 0.5}, k=1, **options) == ""
    assert rules.limit_crossed(accuracy, {"chance": 0.77}, k=1, **options) != ""
    # rank: k runs all at the limit are not ranked low enough to fail
    assert rules.limit_crossed(accuracy, {"chance": 0.5}, k=4, method="rank", **options) == ""
    assert rules.limit_crossed(accuracy, {"chance": 0.5}, k=1, method="rank", **options) != ""


def test_unknown_or_impossible_limits_are_named():
    dist = log2_distribution(MSES)
    with pytest.raises(ValueError, match="unknown limit 'floor'; accepted: chance, budget"):
        rules.limit_crossed(dist, {"floor": 1.0}, k=1, alpha=0.01, direction="lower",
                            scale="log2")
    with pytest.raises(ValueError, match="budget must be > 0 on a log2 scale"):
        rules.limit_crossed(dist, {"budget": 0}, k=1, alpha=0.01, direction="lower",
                            scale="log2")


def test_a_stored_entry_that_admits_chance_is_stale_whatever_the_runs():
    entry = {"distribution": log2_distribution(WIDE).to_json(),
             "test": rules.sample_test_spec("lower", 0.01, 1, "log2")}
    judged = rules.judge_sample(entry, [0.01], alpha=0.01, direction="lower", scale="log2",
                                limits={"chance": 0.17})
    assert judged.status is rules.Status.STALE
    assert "admits chance level 0.17" in judged.detail and "k = 1" in judged.detail
    # a model that learns nothing (MSE at chance) would have passed that band
    unlimited = rules.judge_sample(entry, [0.17], alpha=0.01, direction="lower",
                                   scale="log2")
    assert unlimited.status is rules.Status.OK


SAMPLE_TEST = """
    import math, os

    def mse(seed):
        return 0.01 * 2 ** (float(os.environ["SPREAD"]) * math.sin(seed))

    def test_model(rnn_baseline):
        seeds = rnn_baseline.sample_seeds(1)
        rnn_baseline.check_sample("mse", [mse(s) for s in seeds], seeds=seeds, k=1,
                                  higher_is_better=False, scale="log2", chance=0.17)
"""


def run(pytester, monkeypatch, spread: float, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("SPREAD", str(spread))
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args)


def test_calibration_refuses_a_band_that_admits_chance_and_keeps_the_limit(pytester,
                                                                          monkeypatch):
    pytester.makepyfile(test_model=SAMPLE_TEST)
    refused = run(pytester, monkeypatch, 3.0, "--rnn-calibrate", "20")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines([
        "*refusing to calibrate 'test_model::mse' in baselines*test_model.json: its band for "
        "k = 1 at alpha = 0.01, geometric mean of 1 <= *, admits chance level 0.17: it "
        "cannot fail a model that learns nothing*"])
    assert not (pytester.path / "baselines" / "test_model.json").exists()

    run(pytester, monkeypatch, 0.5, "--rnn-calibrate", "20").assert_outcomes(passed=1)
    entry, = json.loads((pytester.path / "baselines" / "test_model.json").read_text())[
        "entries"].values()
    assert entry["limits"] == {"chance": 0.17}
    run(pytester, monkeypatch, 0.5).assert_outcomes(passed=1)


def test_a_stored_band_that_admits_chance_fails_the_check_as_stale(pytester, monkeypatch):
    pytester.makepyfile(test_model=SAMPLE_TEST.replace(", chance=0.17", ""))
    run(pytester, monkeypatch, 3.0, "--rnn-calibrate", "20").assert_outcomes(passed=1)
    pytester.makepyfile(test_model=SAMPLE_TEST)  # the check now names its chance level
    stale = run(pytester, monkeypatch, 3.0)
    stale.assert_outcomes(failed=1)
    stale.stdout.fnmatch_lines(["*has a stale entry (its band for k = 1 at alpha = 0.01, "
                                "geometric mean of 1 <= *, admits chance level 0.17*",
                                "*--rnn-calibrate*"])
