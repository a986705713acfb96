"""The stored accuracy checks can fail for what they name, and the docs say how often.

* No stored band admits chance or the epoch budget: every accuracy entry carries the limits
  its suite passes (``chance=``, ``budget=``), and its band for the suite's k excludes them.
* Every calibrated toy-task check is sized to catch a doubling of its error and of its
  learning time with 90% power at 1% false alarms, for the k the suite runs; simulated
  against the stored calibration, it false-alarms at about 1% and catches the doubling.
* The docs' power table (docs/reference/power.md) is the one generated from the entries.
"""

from __future__ import annotations

import importlib
import math
import random
from pathlib import Path

import pytest
import repo_scripts

from pytest_rnn.store import files, rules, stats

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_FILES = ("test_accuracy_imdb.json", "test_accuracy_toy.json")


def accuracy_entries():
    for name in ACCURACY_FILES:
        for key, entry in files.read_baseline_file(ROOT / "baselines" / name).items():
            yield f"{name}::{key}", entry


def band_options(entry: dict) -> dict:
    return repo_scripts.load("power_table").sample_options(entry)


def test_no_stored_band_admits_chance_or_the_epoch_budget():
    missing, crossed = [], []
    for key, entry in accuracy_entries():
        limits = entry.get("limits")
        if not limits:
            missing.append(key)
            continue
        dist = stats.Distribution.from_json(entry["distribution"])
        why = rules.limit_crossed(dist, limits, **band_options(entry))
        if why:
            crossed.append(f"{key}: {why}")
    assert not missing, f"entries without the limits their band may not admit: {missing}"
    assert not crossed, "stored bands that cannot fail a model that learns nothing:\n" + \
        "\n".join(crossed)


def test_every_toy_check_is_stored_for_the_k_the_suite_runs_with_its_limits():
    """Each calibrated toy setup has exactly the entries its checks read
    (``calibration_checks``), stored for its ``K`` with the limits its checks pass: the epoch
    budget as it stands, and a chance level (the task's own, which depends on its seed)."""
    from pytest_rnn.tasks import make_task

    toy = importlib.import_module("suites.test_accuracy_toy")  # as pytest collects it
    entries = files.read_baseline_file(ROOT / "baselines" / "test_accuracy_toy.json")
    expected = {}
    for name, setup in toy.SETUPS.items():
        task = make_task(setup.task, n=50, steps=setup.steps, seed=0, **setup.params)
        for metric, _, options in toy.calibration_checks(
                name, [toy.Run(0.5, task, 1.0)], setup.epochs):
            limits = {k: v for k, v in options.items() if k in ("chance", "budget")}
            key = f"test_task_reaches_baseline[{name}]::{metric}"
            expected[key] = (toy.K[name], sorted(limits), limits.get("budget"))
    stored = {key: (entry["test"]["k"], sorted(entry["limits"]), entry["limits"].get("budget"))
              for key, entry in entries.items()}
    assert stored == expected


SIMULATED = 1000  # samples per condition: a rate's standard error is at most 0.016


def doubling_rates(entry: dict, runs: int = SIMULATED, seed: int = 0) -> tuple[float, float]:
    """(false alarms, doublings caught): samples of k runs drawn normally around the
    calibration (in log2), unchanged and one unit worse, judged by the check's own rule."""
    options = band_options(entry)
    dist = stats.Distribution.from_json(entry["distribution"])
    rng = random.Random(seed)
    failed = {0.0: 0, 1.0: 0}
    for shift in failed:
        for _ in range(runs):
            sample = [2 ** rng.gauss(dist.mean + shift, dist.sd) for _ in range(options["k"])]
            verdict = rules.judge_sample(entry, sample, alpha=options["alpha"],
                                         direction=options["direction"], scale="log2")
            failed[shift] += verdict.status is rules.Status.FAIL
    return failed[0.0] / runs, failed[1.0] / runs


@pytest.mark.parametrize("key", sorted(files.read_baseline_file(
    ROOT / "baselines" / "test_accuracy_toy.json")))
def test_each_toy_check_catches_a_doubling_with_90_percent_power(key):
    entry = files.read_baseline_file(ROOT / "baselines" / "test_accuracy_toy.json")[key]
    options = band_options(entry)
    dist = stats.Distribution.from_json(entry["distribution"])
    shift = stats.detectable_shift(dist, options["k"], options["alpha"], 0.9)
    assert shift <= 1.0, (
        f"{key}: k = {options['k']} catches x {2 ** shift:.2f} with 90% power, not a "
        f"doubling (log2 sd {dist.sd:.3g} over {dist.n} calibration runs)")
    # the check's own rule (the pooled t-test) on simulated samples agrees, within three
    # standard errors of a simulated rate, with the derived 1% and 90%
    false_alarms, caught = doubling_rates(entry)
    slack = 3 * math.sqrt(0.9 * 0.1 / SIMULATED)
    assert false_alarms <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / SIMULATED), false_alarms
    assert caught >= 0.9 - slack, caught


def test_the_docs_power_table_is_the_one_generated_from_the_stored_entries():
    module = repo_scripts.load("power_table")
    page = module.PAGE.read_text(encoding="utf-8")
    assert repo_scripts.load("readme_block").block(module.BLOCK, module.table()) in page, (
        "docs/reference/power.md's table is stale: run `python scripts/power_table.py "
        "--write`")
    assert all(key.replace("|", "\\|") in page for key, _ in (
        (k.split("::", 1)[1], e) for k, e in accuracy_entries()))


def test_a_timing_check_s_90_percent_slowdown_lies_beyond_its_design_slowdown():
    medians = stats.Distribution.of([math.log2(1.0 + 0.02 * i) for i in range(5)])
    designed = rules.detectable_slowdown(medians, 0.01)
    assert rules.caught_slowdown(medians, designed, 0.5) == pytest.approx(
        math.sqrt(1 + designed) - 1)  # half the time: the threshold itself
    assert designed > rules.caught_slowdown(medians, designed, 0.9) > math.sqrt(
        1 + designed) - 1
