"""Measure the calibrated IMDB checks' false-alarm and detection rates (slow; a script).

``python tests/regressions/measure_power.py OUT.json MODEL N [REGRESSION_ID ...]`` trains
``MODEL`` (a key of the suite's ``MODELS``) ``N`` times per condition (``START:END`` for
runs START to END - 1 of the same seed sequence: fresh seeds for a second measurement):
unpatched on held-out seeds (skipped with ``--injected-only``), then with each named mild
regression injected the way the runner injects it (:func:`regressions.patches.injected`),
on seeds that are neither calibration seeds nor the suite's default sample seeds. It
writes every run's test accuracy and epochs to converge (as the suite counts them), and
the verdicts of the suite's two checks (its ``checks``) on consecutive groups of ``K``
runs (:func:`pytest_rnn.store.rules.judge_sample` against
``baselines/test_accuracy_imdb.json``). ``python tests/regressions/measure_power.py
--judge OUT.json`` judges the runs in OUT.json again, against the calibrations stored
now. GPUs are hidden, as in the runner. README, "Baselines", quotes its output.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["CUDA_VISIBLE_DEVICES"] = ""
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from regressions.catalogue import BY_ID  # noqa: E402
from regressions.groups import failed, judge_groups  # noqa: E402
from regressions.patches import injected  # noqa: E402


def suite():
    """The IMDB suite module (the repository's root is on ``sys.path``: the package
    ``suites`` pytest imports it from)."""
    return importlib.import_module("suites.test_accuracy_imdb")


def rejudge(out: Path) -> int:
    """``--judge OUT.json``: judge the runs already in OUT.json again, against the
    calibrations stored now (after a recalibration, or a change of the suite's checks)."""
    results = json.loads(out.read_text())
    imdb = suite()
    for condition, result in results["conditions"].items():
        result["checks"] = judge_groups(imdb, results["model"], result["runs"])
        result["failed_checks"] = failed(result["checks"])
        print(condition, f"{result['failed_checks']} of {len(result['checks'])} groups failed:",
              [{m: v["status"] for m, v in c.items()} for c in result["checks"]])
    out.write_text(json.dumps(results, indent=1))
    return 0


def main(argv: list[str]) -> int:
    from pytest_rnn import data
    from pytest_rnn.runtime import seeding

    if argv[:1] == ["--judge"]:
        return rejudge(Path(argv[1]))
    control = "--injected-only" not in argv
    argv = [a for a in argv if a != "--injected-only"]
    out, model, runs_arg, ids = Path(argv[0]), argv[1], argv[2], argv[3:]
    first, _, last = runs_arg.rpartition(":")
    first, n = int(first or 0), int(last) - int(first or 0)
    imdb = suite()
    path = os.environ["PYTEST_RNN_IMDB_PATH"]

    def imdb_subset(**kwargs):
        return data.load_imdb_subset(path=path, **kwargs)

    k = imdb.K[model]
    results = {"model": model, "k": k, "conditions": {}}
    for condition in ["none", *ids] if control else ids:
        seeds = [seeding.derive_seed(20261130, f"measure/{model}/{condition}/{i}")
                 for i in range(first, first + n)]
        runs = []
        started = time.time()

        def train_all(seeds=seeds, runs=runs, condition=condition):
            for seed in seeds:
                accuracy, curve = imdb.train(model, imdb_subset, lambda *a, **k: None, seed)
                runs.append({"seed": seed, "test_accuracy": accuracy,
                             "epochs": imdb.convergence(model)[1](curve), "curve": curve})
                print(condition, runs[-1], flush=True)

        if condition == "none":
            train_all()
        else:
            with injected(BY_ID[condition].apply):
                train_all()
        checks = judge_groups(imdb, model, runs)
        acc = [r["test_accuracy"] for r in runs]
        results["conditions"][condition] = {
            "runs": runs, "checks": checks, "seconds": round(time.time() - started),
            "mean_accuracy": statistics.fmean(acc),
            "mean_epochs": statistics.fmean(r["epochs"] for r in runs),
            "failed_checks": failed(checks),
            "load": os.getloadavg(),
        }
        out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
