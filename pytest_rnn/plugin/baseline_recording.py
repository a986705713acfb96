"""Recording with ``rnn_baseline``: the new entries staged under ``--rnn-update-baselines``
and ``--rnn-calibrate``.

A :class:`Recorder` turns a check that records into an entry (the fields of
:mod:`pytest_rnn.store.rules` plus the seeds, time and machine of the recording) and
stages it on the test item; :class:`~pytest_rnn.plugin.baseline_session.BaselineSession`
writes it at session end if the test passed. Nothing is written while tests run.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_rnn.plugin import baseline_messages as messages
from pytest_rnn.plugin import options
from pytest_rnn.plugin import seeds as test_seeds
from pytest_rnn.plugin.baseline_session import BaselineSession, CheckResult
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store import files, rules, stats
from pytest_rnn.store.rules import Status


class Recorder:
    """Stages the entries the checks of one test record."""

    def __init__(self, request: pytest.FixtureRequest, session: BaselineSession) -> None:
        self._request = request
        self._node = request.node
        self._session = session
        self._base_seed = options.get(request.config).seed

    def value(self, ask: CheckResult, path: Path, seeds: Any,
              note: str | None) -> CheckResult:
        """Stage a single-value entry (:meth:`Baselines.check
        <pytest_rnn.plugin.baselines.Baselines.check>`)."""
        if not math.isfinite(ask.value):
            return self._fail(ask, messages.cannot_record(ask))
        fields = {
            "value": ask.value,  # exact: JSON keeps the shortest repr that reads back the same
            "tolerance": ask.tolerance,
            "direction": ask.direction,
            "relative": ask.relative,
        }
        if note is not None:
            fields["note"] = str(note)
        if ask.baseline is None:
            bound = "(new)"
        else:
            bound = rules.band(ask.baseline, ask.tolerance, ask.direction, ask.relative).text
        result = replace(ask, status=Status.RECORDED, bound=bound,
                         message=messages.recording(ask, bound))
        return self._stage(result, path, fields, self._seeds(seeds))

    def distribution(self, ask: CheckResult, path: Path, values: list[float],
                     seeds: list[int], k: int, alpha: float, scale: str,
                     note: str | None, method: str, seeded_by: str,
                     limits: dict[str, float]) -> CheckResult:
        """Stage a calibration: the distribution of one value per calibration seed, or fail
        (one line) if its band for ``k`` runs admits one of ``limits``
        (:func:`pytest_rnn.store.rules.limit_refusal`), which the entry keeps.
        ``seeded_by``: ``rnn_baseline`` when it seeded each run with its seed, ``test`` when
        the test made the runs (the entry's seeds are then the test's word)."""
        if not all(math.isfinite(v) and (scale == "linear" or v > 0) for v in values):
            return self._fail(ask, messages.cannot_calibrate(ask, values, seeds))
        derived = rules.calibration_fields(values, seeds, k=k, alpha=alpha,
                                           direction=ask.direction, scale=scale, note=note,
                                           method=method)
        distribution = stats.Distribution.from_json(derived["distribution"])
        band = rules.sample_band(distribution, k, alpha, ask.direction, scale, method)
        refusal = rules.limit_refusal(distribution, limits, k=k, alpha=alpha,
                                      direction=ask.direction, scale=scale, method=method)
        if refusal:
            return self._fail(ask, messages.refused_band(ask, refusal), band.text)
        if limits:
            derived["limits"] = dict(limits)
        result = replace(ask, status=Status.RECORDED, bound=band.text, message=messages.calibrating(
            ask, rules.statistic_name(scale, len(values)), values, band))
        return self._stage(result, path, {"direction": ask.direction, "relative": False,
                                          **derived},
                           {"base": self._base_seed, "calibration": list(seeds),
                            "seeded_by": seeded_by})

    def processes(self, ask: CheckResult, path: Path, samples: list[list[float]],
                  alpha: float, slowdown: float | None, note: str | None) -> CheckResult:
        """Stage a timing calibration over processes, or fail if their medians vary too much
        to catch ``slowdown`` at ``alpha`` (``None``: sized for the smallest slowdown their
        spread supports)."""
        if slowdown is None:
            slowdown = rules.detectable_slowdown(rules.process_distribution(samples), alpha)
        derived = rules.timing_calibration_fields(samples, alpha=alpha, slowdown=slowdown,
                                                  note=note)
        medians = stats.Distribution.from_json(derived["distribution"]["processes"])
        errors = rules.process_error_rate(medians, slowdown)
        threshold = derived["value"] * (1 + derived["test"]["min_effect"])
        if errors > alpha:
            return self._fail(ask, messages.too_noisy(ask, slowdown, alpha, medians.n,
                                                      medians.sd, errors),
                              bound=f"median <= {threshold:.4g}")
        result = replace(ask, status=Status.RECORDED, bound=f"median <= {threshold:.4g}",
                         message=messages.calibrating_timing(ask, derived["note"]))
        return self._stage(result, path, derived, self._seeds(None))

    def rounds(self, ask: CheckResult, path: Path, values: list[float], alpha: float,
               min_effect: float, note: str | None) -> CheckResult:
        """Stage the rounds of a timing check with a fixed ``min_effect``."""
        fields = rules.timing_rounds_fields(values, alpha=alpha, min_effect=min_effect,
                                            note=note)
        result = replace(ask, status=Status.RECORDED, bound="(new)",
                         message=messages.recording_rounds(ask, fields["value"], len(values)))
        return self._stage(result, path, fields, self._seeds(None))

    # -- internals ------------------------------------------------------------------------

    def _fail(self, ask: CheckResult, message: str, bound: str = "(not finite)") -> CheckResult:
        return self._session.finish(self._node.nodeid, replace(
            ask, status=Status.FAIL, bound=bound, message=message))

    def _stage(self, result: CheckResult, path: Path, fields: dict, seeds: Any) -> CheckResult:
        """Keep ``fields`` (with the seeds, time and machine of this recording) on the test
        item as the new entry of ``result.key``, written when the test's outcome is known.
        Nothing is staged for a file inside an installed package, nor, for the installed
        suites, for a directory the user did not name: the test fails saying how to name one."""
        refusal = self._refusal(path)
        if refusal:
            return self._fail(result, refusal, bound=result.bound)
        entry = {
            "seeds": seeds,
            "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "recorded_on": self._recorded_on(),
            **fields,
        }
        return self._session.stage(self._node, result, path, entry)

    def _refusal(self, path: Path) -> str | None:
        """Why ``path`` may not be written, or None."""
        name = ("name a directory with --rnn-baselines DIR (ini rnn_baselines, variable "
                "PYTEST_RNN_BASELINES)")
        if files.inside_installed_package(path):
            return (f"pytest-rnn does not write baselines into an installed package "
                    f"({path.parent}); {name}")
        if (files.inside_installed_package(self._node.path)
                and not options.get(self._request.config).baselines_named):
            return (f"the installed suites record this host's baselines into a directory you "
                    f"name, not {path.parent}: {name}")
        return None

    def _seeds(self, given: Any) -> Any:
        if given is None:
            return {"base": self._base_seed,
                    "test": test_seeds.seed_for(self._request.config, self._node.nodeid,
                                                self._node.path)}
        try:
            return json.loads(json.dumps(given))
        except (TypeError, ValueError):
            raise ValueError(f"seeds must be JSON-serialisable; got {given!r}") from None

    def _recorded_on(self) -> dict:
        versions = runtime_versions.versions()
        # The device key asks the backend's framework; a test that ran a model has imported
        # it already (a test that did not is not made to import it here).
        if runtime_versions.backend_framework_imported():
            device_key = self._request.getfixturevalue("rnn_device").key
        else:
            device_key = f"unknown ({runtime_versions.keras_backend_name()} not imported)"
        return {
            "host": platform.node(),
            "device": device_key,
            "python": versions["python"],
            "tensorflow": versions["tensorflow"],
            "keras": versions["keras"],
            "numpy": versions["numpy"],
            "backend": versions["backend"],
        }
