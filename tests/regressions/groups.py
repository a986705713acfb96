"""The IMDB suite's two checks judged on groups of stored runs, as the slow suite judges a
sample: for tests/regressions/measure_power.py (runs it trained) and tests/test_known_gaps.py
(runs it measured). No side effects on import."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def judge_groups(imdb, model: str, runs: list[dict]) -> list[dict]:
    """The suite's two checks on consecutive groups of ``K[model]`` runs, against the
    calibration stored now (read at judging time: a calibration may have been written
    while the runs trained)."""
    from pytest_rnn.store import files, rules

    entries = files.read_baseline_file(ROOT / "baselines" / "test_accuracy_imdb.json")
    prefix = f"test_imdb_accuracy_and_convergence_match_calibration[{model}]::"
    k = imdb.K[model]
    checks = []
    for g in range(0, len(runs) - k + 1, k):
        group = [(r["test_accuracy"], r["curve"]) for r in runs[g:g + k]]
        verdicts = {}
        for metric, values, options in imdb.checks(model, group):
            v = rules.judge_sample(entries.get(prefix + metric), values, alpha=0.01,
                                   direction=rules.DIRECTION_OF[options["higher_is_better"]],
                                   scale=options.get("scale", "linear"),
                                   method=options.get("method", "mean"))
            verdicts[metric] = {"status": v.status.value, "detail": v.detail}
        checks.append(verdicts)
    return checks


def failed(checks: list[dict]) -> int:
    """How many groups failed either check."""
    return sum(any(v["status"] == "FAIL" for v in c.values()) for c in checks)
