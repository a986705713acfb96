"""The stored accuracy checks can fail for what they name, and the docs say how often.

* No stored band admits chance or the epoch budget: every accuracy entry carries the limits
  its suite passes (``chance=``, ``budget=``), and its band for the suite's k excludes them.
* Every calibrated toy-task check is sized to catch a doubling of its error and of its
  learning time with 90% power at 1% false alarms, for the k the suite runs; simulated
  against the stored calibration, it false-alarms at about 1% and catches the doubling.
* The docs' power table (docs/reference/power.md) is the one generated from the entries.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path

import pytest
import repo_scripts

from pytest_rnn.store import files, rules, stats

ROOT = Path(__file__).resolve().parents[1]
ACCURACY_FILES = ("test_accuracy_imdb.json", "test_accuracy_toy.json")


def load_suite(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_for_power",
                                                  ROOT / "suites" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def accuracy_entries():
    for name in ACCURACY_FILES:
        for key, entry in files.read_baseline_file(ROOT / "baselines" / name).items():
            yield f"{name}::{key}", entry


def band_options(entry: dict) -> dict:
    test = entry["test"]
    return {"k": int(test["k"]), "alpha": float(test["alpha"]),
            "direction": entry["direction"], "scale": test.get("scale", "linear"),
            "method": test.get("method", "mean")}


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
    toy = load_suite("test_accuracy_toy")
    entries = files.read_baseline_file(ROOT / "baselines" / "test_accuracy_toy.json")
    expected = {}
    for name, setup in toy.SETUPS.items():
        error = f"{name}_error" if name.startswith(("marked_product", "copy_memory")) else name
        prefix = f"test_task_reaches_baseline[{name}]::"
        expected[prefix + error] = (toy.K[name], "chance")
        expected[prefix + f"{name}_epochs_beyond_chance"] = (toy.K[name], "budget")
        assert entries[prefix + f"{name}_epochs_beyond_chance"]["limits"] == {
            "budget": setup.epochs}
    stored = {key: (entry["test"]["k"], *entry["limits"]) for key, entry in entries.items()}
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
