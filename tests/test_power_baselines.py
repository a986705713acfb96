"""Power-checked baselines through the fixture: calibrate, then check a sample of k runs.

``--rnn-calibrate N`` makes ``rnn_baseline.sample_seeds`` return N calibration seeds and
``check_sample`` record their distribution; a normal run draws k other seeds and judges
their mean with the one-sided t-test. The "runs" here are arithmetic on the seed (no
training), so the whole path costs a fraction of a second; the real accuracy runs are
``suites/test_accuracy_imdb.py`` and ``tests/test_accuracy_sensitivity.py``.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

# Imported before pytester's sys.modules snapshot, so every in-process run uses these
# module objects: Keras (numpy cannot be imported twice in one process) and the plugin's
# baseline module, which the plugin imports on first use (a copy imported inside one run
# and dropped after it left the next run's hooks with two copies of its stash keys, and a
# calibration that wrote nothing).
import keras  # noqa: F401
import pytest

import pytest_rnn.plugin.baselines  # noqa: F401
from pytest_rnn.store import files, rules, stats

SAMPLE_TEST = """
    import os

    def score(seed):
        # deterministic "accuracy" scattered by ~0.01 around 0.78, shifted by SHIFT
        return 0.78 + 0.01 * ((seed % 1000) / 1000 * 3.4 - 1.7) + float(os.environ["SHIFT"])

    def test_model(rnn_baseline):
        seeds = rnn_baseline.sample_seeds(4)
        rnn_baseline.check_sample("test_accuracy", [score(s) for s in seeds], seeds=seeds, k=4)
"""


def run(pytester, monkeypatch, shift: float, *args: str) -> pytest.RunResult:
    monkeypatch.setenv("SHIFT", str(shift))
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args)


def test_calibrate_then_check_a_sample(pytester, monkeypatch):
    pytester.makepyfile(test_model=SAMPLE_TEST)
    run(pytester, monkeypatch, 0.0, "--rnn-calibrate", "20").assert_outcomes(passed=1)
    entry, = json.loads((pytester.path / "baselines" / "test_model.json").read_text())[
        "entries"].values()
    dist = entry["distribution"]
    assert dist["n"] == len(dist["values"]) == len(dist["seeds"]) == 20
    assert entry["seeds"]["seeded_by"] == "test"  # values the test made: its seeds, its word
    assert entry["test"]["k"] == 4 and entry["test"]["alpha"] == stats.ALPHA
    # the band a reader of the old fields sees is the k = 4 band
    band = stats.lower_bound(stats.Distribution.from_json(dist), 4)
    assert entry["value"] - entry["tolerance"] == pytest.approx(band)
    assert "smallest shift detected with 90% power" in entry["note"]

    unchanged = run(pytester, monkeypatch, 0.0)
    unchanged.assert_outcomes(passed=1)
    unchanged.stdout.fnmatch_lines(["*ok *test_accuracy*mean of 4 >= *"])

    drop = stats.detectable_shift(stats.Distribution.from_json(dist), 4) + 0.005
    dropped = run(pytester, monkeypatch, -drop)
    dropped.assert_outcomes(failed=1)
    dropped.stdout.fnmatch_lines([
        "*test_accuracy below its calibrated band: * over seeds *, allowed mean of 4 >= *"
        "one-sided t-test of the mean of 4 runs against 20 calibration runs*p = *",
    ])

    above = run(pytester, monkeypatch, +drop)
    above.assert_outcomes(passed=1)
    above.stdout.fnmatch_lines(["*1 CHANGED (better than the calibrated band allows*",
                                "*changed *test_accuracy*"])


def test_sample_seeds_never_reuse_calibration_seeds(pytester, monkeypatch):
    pytester.makepyfile(test_seeds="""
        import json, os
        def test_seeds(rnn_baseline):
            with open(os.environ["OUT"], "a") as f:
                f.write(json.dumps(rnn_baseline.sample_seeds(4)) + "\\n")
    """)
    out = pytester.path / "seeds.jsonl"
    monkeypatch.setenv("OUT", str(out))
    run(pytester, monkeypatch, 0.0, "--rnn-calibrate", "20").assert_outcomes(passed=1)
    run(pytester, monkeypatch, 0.0).assert_outcomes(passed=1)
    run(pytester, monkeypatch, 0.0, "--rnn-seed", "7").assert_outcomes(passed=1)
    calibration, sample, other = (json.loads(line) for line in out.read_text().splitlines())
    assert len(calibration) == 20 and len(sample) == len(other) == 4
    assert not set(calibration) & (set(sample) | set(other))
    assert set(sample) != set(other)


def test_missing_calibration_names_the_command(pytester, monkeypatch):
    pytester.makepyfile(test_model=SAMPLE_TEST)
    result = run(pytester, monkeypatch, 0.0)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no calibration for test_accuracy*",
                                 "*pytest --rnn-calibrate=20 *test_model.py::test_model*"])


def test_calibrate_needs_two_seeds(pytester):
    pytester.makepyfile(test_model="def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--rnn-calibrate", "1")
    result.stderr.fnmatch_lines(["*--rnn-calibrate needs N >= 2 seeds*"])


def entry_with(**distribution) -> dict:
    base = {"value": 0.78, "tolerance": 0.02, "direction": "higher", "relative": False,
            "seeds": {}, "recorded_at": "t", "recorded_on": {}}
    dist = {"mean": 0.78, "sd": 0.01, "n": 2, "values": [0.77, 0.79], "seeds": [1, 2]}
    return {**base, "distribution": {**dist, **distribution},
            "test": {"alpha": 0.01, "k": 4, "scale": "linear"}}


def test_old_entries_validate_and_malformed_distributions_are_named(tmp_path):
    old = {"value": 0.78, "tolerance": 0.02, "direction": "higher", "relative": False,
           "seeds": {}, "recorded_at": "t", "recorded_on": {}}
    files.validate_entry(tmp_path, "old", old)
    files.validate_entry(tmp_path, "new", entry_with())
    with pytest.raises(files.BaselineFileError, match="'n' must be the number of values"):
        files.validate_entry(tmp_path, "bad", entry_with(n=3))
    with pytest.raises(files.BaselineFileError, match="'sd' must be a finite number"):
        files.validate_entry(tmp_path, "bad", entry_with(sd=float("nan")))
    with pytest.raises(files.BaselineFileError, match="both be JSON objects"):
        files.validate_entry(tmp_path, "bad", {**old, "distribution": {}})
    bad_method = {**entry_with(), "test": {"alpha": 0.01, "k": 4, "method": "median"}}
    with pytest.raises(files.BaselineFileError, match="'method' must be 'mean' or 'rank'"):
        files.validate_entry(tmp_path, "bad", bad_method)
    processes = {"mean": 0.1, "sd": 0.02, "n": 3, "values": [0.1, 0.12]}
    with pytest.raises(files.BaselineFileError, match=r"entry 'bad', distribution 'processes': "
                                                      r"distribution 'n' must be the number"):
        files.validate_entry(tmp_path, "bad", entry_with(processes=processes))


#: A long-tailed calibration like SimpleRNN's IMDB accuracy: 17 runs at 0.73-0.77, 3 far
#: below (sd 0.042, inflated by those 3).
TAILED = [0.745, 0.752, 0.738, 0.761, 0.749, 0.744, 0.757, 0.741, 0.766, 0.735,
          0.750, 0.747, 0.759, 0.739, 0.754, 0.746, 0.742, 0.61, 0.63, 0.66]


def test_rank_method_calibrates_judges_and_names_its_test(monkeypatch):
    """``method="rank"``: the entry stores the method, its band is on U, and a sample whose
    every run dropped by 0.03 fails the rank test, naming it, while the t-test of the
    same sample, with the tail in its variance, lets it through; a calibration made for
    the t-test is stale for the rank test (and the other way round)."""
    monkeypatch.setattr(stats, "POWER_DRAWS", 200)  # the note's power, coarser: faster
    fields = rules.calibration_fields(TAILED, list(range(20)), k=6, alpha=0.01,
                                      direction="higher", scale="linear", method="rank")
    entry = {**fields, "direction": "higher", "relative": False, "seeds": {},
             "recorded_at": "t", "recorded_on": {}}
    files.validate_entry(Path("baselines.json"), "rank", entry)
    assert entry["test"]["method"] == "rank" and "Mann-Whitney" in entry["test"]["name"]
    critical = stats.rank_critical_u(20, 6)
    assert f"U >= {critical + 1} of 120" in entry["note"]
    assert 0 < entry["tolerance"] < stats.rank_detectable_shift(TAILED, 6)

    unchanged = [0.748, 0.741, 0.756, 0.744, 0.751, 0.739]
    dropped = [v - 0.03 for v in unchanged]
    judge = functools.partial(rules.judge_sample, alpha=0.01, direction="higher",
                              scale="linear")
    assert judge(entry, unchanged, method="rank").status is rules.Status.OK
    caught = judge(entry, dropped, method="rank")
    assert caught.status is rules.Status.FAIL
    assert "exact one-sided Mann-Whitney test of 6 runs ranked among 20" in caught.detail
    assert f"U >= {critical + 1}" in caught.band.text
    # the statistic the summary shows beside that band: U, against half the pairs
    assert (caught.measured, caught.center) == (stats.rank_test(dropped, TAILED).u, 60)
    assert judge(entry, [v + 0.03 for v in unchanged],
                 method="rank").status is rules.Status.CHANGED
    as_mean = {**entry, "test": rules.sample_test_spec("higher", 0.01, 6, "linear")}
    assert judge(as_mean, dropped).status is rules.Status.OK  # the tail hides the drop
    assert judge(as_mean, dropped, method="rank").status is rules.Status.STALE
    assert "method 'mean'" in judge(as_mean, dropped, method="rank").detail
    assert judge(entry, dropped).status is rules.Status.STALE


def test_judge_sample_log2_scale_catches_a_doubling():
    epochs = [3, 3, 4, 3, 2, 3, 4, 3, 3, 4, 3, 2, 3, 3, 4, 3, 3, 3, 4, 3]
    dist = stats.Distribution.of([__import__("math").log2(e) for e in epochs])
    entry = {"distribution": dist.to_json(),
             "test": rules.sample_test_spec("lower", 0.01, 4, "log2")}
    same = rules.judge_sample(entry, [3, 4, 3, 3], alpha=0.01, direction="lower", scale="log2")
    doubled = rules.judge_sample(entry, [6, 8, 6, 6], alpha=0.01, direction="lower",
                                 scale="log2")
    assert same.status is rules.Status.OK
    assert doubled.status is rules.Status.FAIL
    assert "geometric mean of 4 <=" in doubled.band.text
    stale = rules.judge_sample(entry, [3, 3], alpha=0.01, direction="higher", scale="log2")
    assert stale.status is rules.Status.STALE


def test_the_stored_imdb_calibrations_state_the_band_for_the_k_the_suite_runs():
    """Each IMDB entry's ``test.k`` (and so its stored band and note) matches the suite's
    ``K``, each accuracy entry's test method the suite's ``ACCURACY_METHOD``, and each
    model has exactly the entries its checks read (its ``CONVERGENCE`` metric, no entry
    left from another): changing any means recalibrating (``--rnn-calibrate``), not a
    stale note."""
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    suite = importlib.import_module("suites.test_accuracy_imdb")  # the module pytest collects
    entries = files.read_baseline_file(root / "baselines" / "test_accuracy_imdb.json")
    metrics, stored, methods = {}, {}, {}
    for key, entry in entries.items():
        model, metric = key.split("[")[1].split("]::")
        metrics.setdefault(model, set()).add(metric)
        stored[model] = entry["test"]["k"]
        if metric == "test_accuracy":
            methods[model] = entry["test"].get("method", "mean")
    assert metrics == {name: {check[0] for check in suite.checks(name, [(0.8, [0.5, 0.8])])}
                       for name in suite.K}
    assert stored == suite.K
    assert methods == {name: suite.ACCURACY_METHOD.get(name, "mean") for name in suite.K}


HELD_OUT_TEST = """
    import importlib.util
    import json
    import os

    import pytest
    from pytest_rnn.training import stretched

    spec = importlib.util.spec_from_file_location("imdb_suite_held_out", os.environ["SUITE"])
    imdb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(imdb)


    @pytest.mark.parametrize("name", ["stacked_lstm"])
    def test_imdb_accuracy_and_convergence_match_calibration(name, rnn_baseline):
        runs = json.loads(open(os.environ["CURVES"]).read())["runs"]
        group = runs[int(os.environ["GROUP"]) * 4:][:imdb.K[name]]
        factor = int(os.environ["SLOWER"])  # 2: each run learning twice as slowly
        rnn_baseline.check_samples(
            imdb.checks(name, [(r["test_accuracy"], stretched(r["curve"], factor)) for r in group]),
            seeds=[r["seed"] for r in group], k=imdb.K[name], label=name)
"""


@pytest.mark.parametrize("slower", [False, True], ids=["unchanged", "twice_as_slow"])
def test_the_stacked_lstm_convergence_check_fails_held_out_runs_learning_twice_as_slowly(
        pytester, monkeypatch, slower):
    """The stacked LSTM's mean-epoch check, on 16 real held-out runs (never calibrated on;
    tests/data/stacked_lstm_heldout_curves.json) in the suite's groups of 4, through the
    suite's own ``checks`` and the stored calibration: every group passes as trained, and
    every group fails, naming the metric, when each run learns twice as slowly (its curve
    stretched over twice the epochs: the doubling the check is sized for)."""
    root = Path(__file__).resolve().parents[1]
    # the inner module has the suite's name (its entries' file and keys); a run that
    # collected the suite itself holds that name in sys.modules
    monkeypatch.delitem(sys.modules, "test_accuracy_imdb", raising=False)
    pytester.makepyfile(test_accuracy_imdb=HELD_OUT_TEST)
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "test_accuracy_imdb.json").write_text(
        (root / "baselines" / "test_accuracy_imdb.json").read_text())
    monkeypatch.setenv("SUITE", str(root / "suites" / "test_accuracy_imdb.py"))
    monkeypatch.setenv("CURVES", str(root / "tests" / "data" /
                                     "stacked_lstm_heldout_curves.json"))
    monkeypatch.setenv("SLOWER", "2" if slower else "1")
    for group in range(4):
        monkeypatch.setenv("GROUP", str(group))
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist",
                                              "-p", "no:randomly")
        if not slower:
            result.assert_outcomes(passed=1)
            continue
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([
            "*stacked_lstm: mean_epoch_of_90pct_gain above its calibrated band: * over seeds *"
        ])
        assert "test_accuracy below" not in result.stdout.str()
