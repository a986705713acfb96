"""The ``rnn_baseline`` fixture and its session glue, over :mod:`pytest_rnn.store`.

Layout. One human-readable JSON file per suite or topic under ``--rnn-baselines``
(default ``baselines/``); by default a test writes to the file named after its module
(``suites/test_accuracy_imdb.py`` -> ``baselines/test_accuracy_imdb.json``). An entry
key is ``<test id>::<metric>`` where the test id is the node id without its module
path (``TestX::test_y[param]``); a file chosen with ``file=`` prefixes the module
name, as several modules may share it. The file format, keys, bands and statuses are
:mod:`pytest_rnn.store`'s.

Recording. ``--rnn-update-baselines`` makes :meth:`Baselines.check` record instead
of compare. Nothing is written while tests run: every check becomes a ``baseline``
record (:mod:`pytest_rnn.plugin.records`), the records of xdist workers travel to the
controller, and the process that owns the run merges the new entries of tests that
passed into the files at session finish (:func:`pytest_rnn.store.write_entries`).
Entries of tests that did not run stay as they are.
"""

from __future__ import annotations

import json
import math
import platform
import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_rnn.plugin import fixtures, options, records, xdist
from pytest_rnn.plugin.records import Kind
from pytest_rnn.runtime import seeding
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store import files, rules, stats
from pytest_rnn.store.files import (  # noqa: F401 - public names of the first release's module
    SCHEMA_VERSION,
    BaselineFileError,
    read_baseline_file,
    write_entries,
)
from pytest_rnn.store.rules import Status, entry_key  # noqa: F401 - likewise

UPDATE_FLAG = files.UPDATE_FLAG
RECORD_KIND = Kind.BASELINE

__all__ = [
    "BaselineFileError",
    "Baselines",
    "CheckResult",
    "SCHEMA_VERSION",
    "Status",
    "entry_key",
    "read_baseline_file",
    "update_command",
    "write_entries",
]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one :meth:`Baselines.check` (also stored as a ``baseline`` record)."""

    file: str
    key: str
    metric: str
    value: float
    baseline: float | None
    tolerance: float
    direction: str
    relative: bool
    status: Status
    bound: str  # the allowed band, e.g. ">= 0.7823"; "" when there is none
    message: str

    @property
    def passed(self) -> bool:
        return self.status.passed

    @property
    def updated(self) -> bool:
        return self.status is Status.RECORDED


_PENDING = pytest.StashKey[list]()  # on the item: updates waiting for the test's outcome
_CHECKED = pytest.StashKey[set]()  # on the item: (path, key) checked, to catch duplicates
_FAILED_KEY = pytest.StashKey[str]()  # on the item: the phase in which the test failed
_WRITTEN = pytest.StashKey[list]()  # on the config: what write_updates did, for the summary


class Baselines:
    """What the ``rnn_baseline`` fixture returns: checks this test's metrics against the store."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._config = request.config
        self._settings = options.get(request.config)
        self._node = request.node

    @property
    def directory(self) -> Path:
        return self._settings.baselines

    @property
    def updating(self) -> bool:
        return self._settings.update_baselines

    def default_file(self) -> str:
        """The file this test's entries go to without ``file=``: its module's name."""
        return _module_path(self._node.nodeid).rsplit("/", 1)[-1].removesuffix(".py")

    def path(self, file: str | None = None) -> Path:
        return self.directory / f"{self._file_stem(file)}.json"

    def key(self, metric: str, *, file: str | None = None, hardware: bool = False,
            versioned: bool = False, backend: bool | None = None) -> str:
        """The entry key :meth:`check` uses for ``metric`` in this test.

        ``backend``: key by the Keras backend (``::backend=jax``; nothing on TensorFlow);
        ``None`` (default): exactly when ``hardware`` or ``versioned``."""
        rules.check_metric_name(metric)
        test_id = _test_id(self._node.nodeid)
        stem = self._file_stem(file)
        if stem != self.default_file():
            test_id = f"{self.default_file()}::{test_id}"
        device_key = self._device().key if hardware else None
        versions = runtime_versions.versions() if versioned else None
        by_backend = (hardware or versioned) if backend is None else bool(backend)
        return entry_key(test_id, metric, device_key=device_key, versions=versions,
                         backend=runtime_versions.keras_backend_name() if by_backend else None)

    def check(
        self,
        metric: str,
        value: Any,
        *,
        tolerance: float,
        higher_is_better: bool | None = True,
        relative: bool = False,
        file: str | None = None,
        hardware: bool = False,
        versioned: bool = False,
        backend: bool | None = None,
        seeds: Any = None,
        note: str | None = None,
    ) -> CheckResult:
        """Compare ``value`` of ``metric`` with its stored baseline (or record it).

        ``value``: a real number, NumPy scalar or 0-d array/tensor. ``tolerance``:
        absolute in the metric's unit, or a fraction of ``|baseline|`` with
        ``relative=True``. ``higher_is_better``: ``True``/``False``, or ``None`` for a
        two-sided band. ``file``: baseline file stem (default: the test module's
        name). ``hardware``: key the entry by ``rnn_device.key`` (timings, cuDNN).
        ``versioned``: key it by TF/Keras major.minor. ``backend``: key it by the Keras
        backend (default: when ``hardware`` or ``versioned``; pass True for a value that
        depends on the backend's random numbers, such as a training result). ``seeds``
        (JSON-serialisable, default: base seed and this test's seed) and ``note`` (e.g. how
        the tolerance was calibrated) are stored with the entry when recording.

        Fails the test with baseline, measured value, allowed band, file and key; a
        missing entry fails with the command that records it; a corrupt file fails
        with one line naming the file and the key. Under ``--rnn-update-baselines``
        it records instead and passes (unless the value is not finite); the entry is
        written at session end if the test passed.
        """
        tolerance = rules.check_tolerance(tolerance)
        direction = rules.check_direction(higher_is_better)
        if not isinstance(relative, bool):
            raise ValueError(f"relative must be True or False; got {relative!r}")
        value = rules.as_number("value", value)
        key = self.key(metric, file=file, hardware=hardware, versioned=versioned,
                       backend=backend)
        path = self.path(file)
        self._claim(path, key)
        ask = CheckResult(
            file=_shown_path(path, self._config), key=key, metric=metric, value=value,
            baseline=None, tolerance=tolerance, direction=direction, relative=relative,
            status=Status.FAIL, bound="", message="",
        )
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]))
        if self.updating:
            return self._record_update(ask, path, seeds, note)
        verdict = rules.judge(stored, value, tolerance=tolerance, direction=direction,
                              relative=relative)
        if verdict.status is Status.MISSING:
            return self._finish(ask, verdict.status, "", (
                f"no baseline for {metric} = {value:.6g}: file {ask.file} has no entry "
                f"{key!r}. Missing baselines fail rather than pass. Record it with:\n"
                f"    {self.update_command()}\n"
                f"then review and commit {ask.file}."
            ))
        if verdict.status is Status.STALE:
            return self._finish(ask, verdict.status, "", (
                f"stale baseline {key!r} in {ask.file}: {verdict.detail}. Re-record it "
                f"with:\n    {self.update_command()}"
            ))
        recorded = stored["recorded_on"]
        inside = verdict.status is Status.OK
        return self._finish(ask, verdict.status, verdict.band.text, (
            f"{metric} {'within' if inside else 'outside'} its baseline band: measured "
            f"{value:.6g}, baseline {ask.baseline:.6g}, allowed {verdict.band.text} "
            f"({verdict.detail}); file {ask.file}, key {key!r}; baseline recorded "
            f"{stored['recorded_at']} on {recorded.get('device', '?')} with TensorFlow "
            f"{recorded.get('tensorflow', '?')}, Keras {recorded.get('keras', '?')}, backend "
            f"{recorded.get('backend', 'tensorflow')}"
        ))

    @property
    def calibrating(self) -> int:
        """``--rnn-calibrate N``: the number of calibration seeds (0: checking)."""
        return self._settings.calibrate

    def sample_seeds(self, k: int) -> list[int]:
        """The seeds of the runs a power-checked test makes: ``k`` of them, derived from
        the base seed (``--rnn-seed``) and the test; under ``--rnn-calibrate N`` the ``N``
        calibration seeds instead. The two sets are derived under different names, so a
        check never reuses a calibration seed: every checked run is held out."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        base, node = self._settings.seed, self._node.nodeid
        if self.calibrating:
            return [seeding.derive_seed(base, f"{node}::calibration/{i}")
                    for i in range(self.calibrating)]
        return [seeding.derive_seed(base, f"{node}::sample/{i}") for i in range(k)]

    def check_sample(
        self,
        metric: str,
        values: Any,
        *,
        seeds: list[int],
        k: int,
        higher_is_better: bool | None = True,
        alpha: float = stats.ALPHA,
        scale: str = "linear",
        method: str = "mean",
        file: str | None = None,
        note: str | None = None,
    ) -> CheckResult:
        """Compare ``values`` (one per seed of :meth:`sample_seeds`) with the stored
        calibration distribution of ``metric`` by a one-sided test at false-alarm rate
        ``alpha`` (:func:`pytest_rnn.store.rules.judge_sample`): ``method="mean"``, a
        t-test of the mean, or ``"rank"``, an exact rank test among the stored values (for
        a long-tailed metric); ``scale="log2"`` tests the logarithm (epoch counts: a
        doubling is one unit). ``k`` is the number of runs a check makes (the band stored
        for reviewers is the one for ``k``).

        Under ``--rnn-calibrate N`` the ``N`` values are recorded as the entry's
        distribution (written at session end if the test passed). Fails the test, with
        the band, the test statistic and p, when the mean is worse than the band; a mean
        beyond the mirrored band on the good side is reported as ``changed`` and passes.
        """
        direction = rules.check_direction(higher_is_better)
        if scale not in rules.SCALES:
            raise ValueError(f"scale must be one of {sorted(rules.SCALES)}; got {scale!r}")
        if method not in rules.METHODS:
            raise ValueError(f"method must be one of {sorted(rules.METHODS)}; got {method!r}")
        if not (isinstance(alpha, float) and 0 < alpha < 0.5):
            raise ValueError(f"alpha must be a float in (0, 0.5); got {alpha!r}")
        values = [rules.as_number("values[]", v) for v in values]
        if len(values) != len(seeds) or not values:
            raise ValueError(f"need one value per seed; got {len(values)} values for "
                             f"{len(seeds)} seeds")
        key = self.key(metric, file=file)
        path = self.path(file)
        self._claim(path, key)
        forward = rules.SCALES[scale][0]
        shown = rules.SCALES[scale][1](sum(forward(v) for v in values) / len(values)) \
            if all(math.isfinite(v) and (scale == "linear" or v > 0) for v in values) \
            else math.nan
        ask = CheckResult(
            file=_shown_path(path, self._config), key=key, metric=metric, value=shown,
            baseline=None, tolerance=0.0, direction=direction, relative=False,
            status=Status.FAIL, bound="", message="",
        )
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]) if "distribution" not in stored
                          else rules.SCALES[scale][1](float(stored["distribution"]["mean"])))
        if self.calibrating:
            return self._record_distribution(ask, path, values, seeds, k, alpha, scale, note,
                                             method)
        if not math.isfinite(shown):
            return self._finish(ask, Status.FAIL, "(not finite)", (
                f"{metric}: runs gave {values} (not all finite; seeds {seeds})"))
        verdict = rules.judge_sample(stored, values, alpha=alpha, direction=direction,
                                     scale=scale, method=method)
        if verdict.status in (Status.MISSING, Status.STALE):
            return self._no_entry(ask, verdict, f"no calibration for {metric} (runs gave "
                                  f"{_values_text(values)})", "Calibrate",
                                  self.calibrate_command())
        words = {Status.OK: "within", Status.FAIL: "below" if direction == "higher" else
                 "outside", Status.CHANGED: "CHANGED: beyond"}[verdict.status]
        if verdict.status is Status.FAIL and direction == "lower":
            words = "above"
        return self._finish(ask, verdict.status, verdict.band.text, (
            f"{metric} {words} its calibrated band: {_values_text(values)} over seeds "
            f"{seeds}, allowed {verdict.band.text} ({verdict.detail}); file {ask.file}, key "
            f"{key!r}; calibrated {stored['recorded_at']} on "
            f"{stored['recorded_on'].get('device', '?')} with Keras "
            f"{stored['recorded_on'].get('keras', '?')}"
        ))

    def check_samples(self, checks: Any, *, seeds: list[int], k: int,
                      label: str = "") -> list[CheckResult]:
        """:meth:`check_sample` for each ``(metric, values, options)`` of ``checks`` (the runs
        of one sample: an accuracy and its epochs to converge, say), all made and reported
        before the test fails once, naming every metric outside its band (prefixed by
        ``label``)."""
        results, failures = [], []
        for metric, values, kwargs in checks:
            try:
                results.append(self.check_sample(metric, values, seeds=seeds, k=k, **kwargs))
            except pytest.fail.Exception as exc:
                failures.append(f"{label}{': ' if label else ''}{exc}")
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)
        return results

    def check_timing(
        self,
        metric: str,
        rounds: Any,
        *,
        alpha: float = stats.ALPHA,
        min_effect: float | None = 0.1,
        slowdown: float = 0.2,
        hardware: bool = True,
        file: str | None = None,
        note: str | None = None,
    ) -> CheckResult:
        """Compare per-round timings (seconds, or ratios to a reference workload; lower is
        better) with the rounds stored for this device key: fails when a Mann-Whitney U test
        says slower at ``alpha`` and the median is more than ``min_effect`` above the stored
        one (:func:`pytest_rnn.store.rules.judge_timing`). ``--rnn-update-baselines``
        stores the rounds with their median, robust spread and count.

        ``min_effect=None`` sizes the check for ``slowdown`` (a fraction) instead: it
        fails above the midpoint between the calibrated median and that median
        ``slowdown`` slower, and the spread of the medians of the calibration's processes
        gives the false-alarm and miss rate there
        (:func:`pytest_rnn.store.rules.timing_calibration_fields`). ``rounds`` is then a
        list of samples, one per seed of :meth:`sample_seeds` ``(1)``, each taken in a
        process of its own (:func:`pytest_rnn.bench.power.fresh_process_sample`): one
        sample when checking, ``N`` under ``--rnn-calibrate N``, which calibrates the entry;
        the test's call is the same in both. A calibration whose spread cannot keep both
        rates within ``alpha`` fails instead of writing.
        """
        if min_effect is not None and not (isinstance(min_effect, float)
                                           and 0 <= min_effect < 1):
            raise ValueError(f"min_effect must be a fraction in [0, 1) or None (derived from "
                             f"a calibration over processes); got {min_effect!r}")
        if not (isinstance(slowdown, float) and 0 < slowdown < 1):
            raise ValueError(f"slowdown must be a fraction in (0, 1); got {slowdown!r}")
        samples = None
        if min_effect is None:
            samples = _timing_samples(rounds, self.calibrating)
            values = [v for sample in samples for v in sample]
            if not self.calibrating:  # checking: the one sample is this process's rounds
                samples = None
        else:
            values = _timing_rounds(rounds)
        key = self.key(metric, file=file, hardware=hardware)
        path = self.path(file)
        self._claim(path, key)
        summary = stats.describe(values)
        ask = CheckResult(
            file=_shown_path(path, self._config), key=key, metric=metric,
            value=summary["median"], baseline=None, tolerance=min_effect or 0.0,
            direction="lower", relative=True, status=Status.FAIL, bound="", message="",
        )
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]))
        if samples is not None:
            return self._record_processes(ask, path, samples, alpha, slowdown, note)
        if self.updating and min_effect is not None:
            return self._record_rounds(ask, path, values, alpha, min_effect, note)
        verdict = rules.judge_timing(stored, values, alpha=alpha, min_effect=min_effect,
                                     slowdown=slowdown)
        if verdict.status in (Status.MISSING, Status.STALE):
            action = ("Calibrate", self.calibrate_command()) if min_effect is None else \
                ("Record", self.update_command())
            return self._no_entry(ask, verdict, f"no stored rounds for {metric} (median "
                                  f"{summary['median']:.4g} over {len(values)} rounds)",
                                  *action)
        words = {Status.OK: "within", Status.FAIL: "SLOWER than",
                 Status.CHANGED: "CHANGED: faster than"}[verdict.status]
        return self._finish(ask, verdict.status, verdict.band.text, (
            f"{metric} {words} its stored rounds: median {summary['median']:.4g} "
            f"(spread {summary['spread']:.3g}) vs stored {ask.baseline:.4g}; "
            f"{verdict.detail}; file {ask.file}, key {key!r}; recorded "
            f"{stored['recorded_at']} on {stored['recorded_on'].get('device', '?')}"
        ))

    def _record_processes(self, ask: CheckResult, path: Path, samples: list[list[float]],
                          alpha: float, slowdown: float, note: str | None) -> CheckResult:
        derived = rules.timing_calibration_fields(samples, alpha=alpha, slowdown=slowdown,
                                                  note=note)
        medians = stats.Distribution.from_json(derived["distribution"]["processes"])
        errors = rules.process_error_rate(medians, slowdown)
        threshold = derived["value"] * (1 + derived["test"]["min_effect"])
        if errors > alpha:
            return self._finish(ask, Status.FAIL, f"median <= {threshold:.4g}", (
                f"cannot calibrate {ask.metric} to catch a {slowdown:.0%} slowdown at "
                f"{alpha:g}: between {medians.n} processes its median varied by "
                f"{2 ** medians.sd - 1:.1%} (sd), so an unchanged process would fail, and "
                f"one {slowdown:.0%} slower pass, with probability {errors:.2g} each; "
                f"calibrate on a quieter machine, with more processes or more rounds"))
        result = replace(ask, status=Status.RECORDED, bound=f"median <= {threshold:.4g}",
                         message=(f"calibrating {ask.metric}: {derived['note']}"))
        return self._stage(result, path, derived, self._seeds(None))

    def _record_rounds(self, ask: CheckResult, path: Path, values: list[float], alpha: float,
                       min_effect: float, note: str | None) -> CheckResult:
        fields = rules.timing_rounds_fields(values, alpha=alpha, min_effect=min_effect,
                                            note=note)
        result = replace(ask, status=Status.RECORDED, bound="(new)", message=(
            f"recording {ask.metric}: median {fields['value']:.4g} over {len(values)} "
            f"rounds as {ask.key!r} in {ask.file}"))
        return self._stage(result, path, fields, self._seeds(None))

    def calibrate_command(self) -> str:
        """The command line that calibrates this test's power-checked baselines."""
        return update_command(self._config, self._node.nodeid).replace(
            UPDATE_FLAG, "--rnn-calibrate=20", 1)

    def update_command(self) -> str:
        """The command line that records this test's baselines."""
        return update_command(self._config, self._node.nodeid)

    # -- internals ------------------------------------------------------------------------

    def _file_stem(self, file: str | None) -> str:
        if file is None:
            return self.default_file()
        if not isinstance(file, str):
            raise ValueError(f"file must be a file name (str); got {file!r}")
        stem = file.removesuffix(".json")
        if not _NAME_OK(stem):
            raise ValueError(
                f"file must be a plain file name (letters, digits, '_', '-', '.'; no directory); "
                f"got {file!r}"
            )
        return stem

    def _no_entry(self, ask: CheckResult, verdict: rules.Verdict, what: str, verb: str,
                  command: str) -> CheckResult:
        """Fail a sample or timing check that has no usable entry, with the command to fix it."""
        why = "has no entry" if verdict.status is Status.MISSING else \
            f"has a stale entry ({verdict.detail})"
        return self._finish(ask, verdict.status, "", (
            f"{what}: file {ask.file} {why} {ask.key!r}. {verb} it with:\n"
            f"    {command}\nthen review and commit {ask.file}."
        ))

    def _stored(self, ask: CheckResult, path: Path) -> dict | None:
        """The stored entry of ``ask.key``; a corrupt file fails the test with one line."""
        try:
            return read_baseline_file(path).get(ask.key)
        except BaselineFileError as exc:
            self._finish(ask, Status.UNREADABLE, "", str(exc))  # fails the test
            raise

    def _device(self):
        return self._request.getfixturevalue("rnn_device")

    def _claim(self, path: Path, key: str) -> None:
        checked = self._node.stash.setdefault(_CHECKED, set())
        if (path, key) in checked:
            raise ValueError(
                f"this test checks baseline {key!r} of {path.name} twice; give each "
                f"measurement its own metric name"
            )
        checked.add((path, key))

    def _record_update(self, ask: CheckResult, path: Path, seeds: Any,
                       note: str | None) -> CheckResult:
        """Stage a single-value entry (:meth:`_stage`)."""
        if not math.isfinite(ask.value):
            return self._finish(ask, Status.FAIL, "(not finite)", (
                f"cannot record baseline {ask.key!r} in {ask.file}: {ask.metric} = {ask.value!r}"
            ))
        fields = {
            "value": ask.value,  # exact: JSON keeps the shortest repr that reads back the same
            "tolerance": ask.tolerance,
            "direction": ask.direction,
            "relative": ask.relative,
        }
        if note is not None:
            fields["note"] = str(note)
        if ask.baseline is None:
            bound, was = "(new)", "new entry"
        else:
            bound = rules.band(ask.baseline, ask.tolerance, ask.direction, ask.relative).text
            was = f"was {ask.baseline:.6g}, band {bound}"
        result = replace(ask, status=Status.RECORDED, bound=bound, message=(
            f"recording {ask.metric} = {ask.value:.6g} as baseline {ask.key!r} in {ask.file} "
            f"({was})"
        ))
        return self._stage(result, path, fields, self._seeds(seeds))

    def _stage(self, result: CheckResult, path: Path, fields: dict, seeds: Any) -> CheckResult:
        """Keep ``fields`` (with the seeds, time and machine of this recording) on the test
        item as the new entry of ``result.key``, written when the test's outcome is known
        (see after_report)."""
        entry = {
            "seeds": seeds,
            "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "recorded_on": self._recorded_on(),
            **fields,
        }
        self._node.stash.setdefault(_PENDING, []).append((result, str(path), entry))
        return result

    def _record_distribution(self, ask: CheckResult, path: Path, values: list[float],
                             seeds: list[int], k: int, alpha: float, scale: str,
                             note: str | None, method: str) -> CheckResult:
        if not all(math.isfinite(v) and (scale == "linear" or v > 0) for v in values):
            return self._finish(ask, Status.FAIL, "(not finite)", (
                f"cannot calibrate {ask.key!r}: runs gave {values} (seeds {seeds})"))
        derived = rules.calibration_fields(values, seeds, k=k, alpha=alpha,
                                           direction=ask.direction, scale=scale, note=note,
                                           method=method)
        band = rules.sample_band(stats.Distribution.from_json(derived["distribution"]), k,
                                 alpha, ask.direction, scale, method)
        result = replace(ask, status=Status.RECORDED, bound=band.text, message=(
            f"calibrating {ask.metric}: {_values_text(values)} -> band {band.text}"))
        return self._stage(result, path, {"direction": ask.direction, "relative": False,
                                          **derived},
                           {"base": self._settings.seed, "calibration": list(seeds)})

    def _seeds(self, seeds: Any) -> Any:
        if seeds is None:
            return {"base": self._settings.seed,
                    "test": fixtures.seed_for(self._config, self._node.nodeid)}
        try:
            return json.loads(json.dumps(seeds))
        except (TypeError, ValueError):
            raise ValueError(f"seeds must be JSON-serialisable; got {seeds!r}") from None

    def _recorded_on(self) -> dict:
        versions = runtime_versions.versions()
        # The device key needs TensorFlow; a test that trains a model has imported it already.
        if runtime_versions.tensorflow_imported():
            device_key = self._device().key
        else:
            device_key = "unknown (TensorFlow not imported)"
        return {
            "host": platform.node(),
            "device": device_key,
            "python": versions["python"],
            "tensorflow": versions["tensorflow"],
            "keras": versions["keras"],
            "numpy": versions["numpy"],
            "backend": versions["backend"],
        }

    def _finish(self, ask: CheckResult, status: Status, bound: str,
                message: str) -> CheckResult:
        """Record the comparison, then fail the test (one line, no traceback) if it failed."""
        result = replace(ask, status=status, bound=bound, message=message)
        _add_record(self._config, self._node.nodeid, result)
        if not result.passed:
            pytest.fail(message, pytrace=False)
        return result


def _timing_rounds(rounds: Any) -> list[float]:
    values = [rules.as_number("rounds[]", v) for v in rounds]
    if len(values) < 5 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"need >= 5 positive, finite rounds; got {values!r}")
    return values


def _timing_samples(samples: Any, calibrating: int) -> list[list[float]]:
    """A timing check with a derived effect gets one sample per seed of
    ``sample_seeds(1)``: one when checking, ``N`` under ``--rnn-calibrate N``."""
    processes = calibrating or 1
    if not isinstance(samples, (list, tuple)) or len(samples) != processes or not all(
            isinstance(s, (list, tuple)) for s in samples):
        shape = (f"{len(samples)} item(s), the first a {type(samples[0]).__name__}"
                 if isinstance(samples, (list, tuple)) and samples else repr(samples)[:60])
        wanted = (f"under --rnn-calibrate {processes}, rounds must be {processes} samples"
                  if calibrating else "rounds must be a list of 1 sample (one per seed of "
                  "sample_seeds(1); N under --rnn-calibrate N)")
        raise ValueError(f"{wanted} (a list of per-round values per process); got {shape}")
    return [_timing_rounds(s) for s in samples]


def _values_text(values: list[float]) -> str:
    import statistics

    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    shown = ", ".join(f"{v:.4g}" for v in values[:25]) + (" ..." if len(values) > 25 else "")
    return f"[{shown}] (mean {mean:.4g}, sd {sd:.3g})"


def _NAME_OK(stem: str) -> bool:  # noqa: N802 - a predicate named like the rule it states
    return bool(stem) and stem[0].isalnum() and all(c.isalnum() or c in "_.-" for c in stem)


def _add_record(config: pytest.Config, nodeid: str, result: CheckResult,
                entry: dict | None = None, path: str | None = None) -> None:
    data = {
        "file": result.file,
        "key": result.key,
        "baseline": result.baseline,
        "value": result.value if math.isfinite(result.value) else str(result.value),
        "tolerance": result.tolerance,
        "direction": result.direction,
        "relative": result.relative,
        "bound": result.bound,
        "status": result.status.value,
        "passed": result.passed,
        "updated": result.updated,
        "message": result.message,
    }
    if entry is not None:
        data["entry"] = entry
        data["path"] = path
    records.of(config).add(RECORD_KIND, nodeid, result.metric, **data)


def status_of(data: dict) -> Status:
    """The :class:`Status` of a ``baseline`` record's data (as it travelled from a worker)."""
    return Status(data["status"])


def _module_path(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _test_id(nodeid: str) -> str:
    parts = nodeid.split("::", 1)
    return parts[1] if len(parts) == 2 else nodeid


def _shown_path(path: Path, config: pytest.Config) -> str:
    """``path`` relative to the directory pytest was started in, when it lies below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def update_command(config: pytest.Config, nodeid: str) -> str:
    """``[cd ROOT &&] pytest --rnn-update-baselines [options of this run] NODEID``.

    Repeats the pytest-rnn options this run was given on its command line (data path,
    seed, baselines directory, determinism), which change what the test measures or
    where it is stored, so the command records exactly what this run checked. Values
    that came from the ini file or the environment are read again by the new run.
    """
    settings = options.get(config)
    root = Path(config.rootpath)
    words = ["pytest", UPDATE_FLAG, *options.command_line_words(config, exclude=(
        "rnn_update_baselines", "rnn_report", "rnn_calibrate"))]
    if settings.baselines != root / "baselines" and not any(
            w.startswith("--rnn-baselines=") for w in words):
        words.append(f"--rnn-baselines={settings.baselines}")
    if settings.seed != options.DEFAULT_SEED and not any(
            w.startswith("--rnn-seed=") for w in words):
        words.append(f"--rnn-seed={settings.seed}")
    words.append(nodeid)
    command = " ".join(shlex.quote(w) for w in words)
    if Path(config.invocation_params.dir) != root:
        command = f"cd {shlex.quote(str(root))} && {command}"
    return command


# ---------------------------------------------------------------------------
# hooks: outcome of each test, writing at session end, the summary table


def after_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Called for each phase report: after teardown, publish the pending updates.

    An entry is only written if its test passed all phases, so a test whose later
    assertions fail does not leave a baseline behind.
    """
    pending = item.stash.get(_PENDING, None)
    if not pending:
        return
    if report.failed:
        item.stash[_FAILED_KEY] = report.when
    if report.when != "teardown":
        return
    failed_in = item.stash.get(_FAILED_KEY, None)
    for result, path, entry in pending:
        if failed_in is None:
            _add_record(item.config, item.nodeid, result, entry=entry, path=path)
        else:
            why = f"test failed ({failed_in}); entry not written"
            _add_record(item.config, item.nodeid, replace(
                result, status=Status.NOT_RECORDED, message=f"{result.message}: {why}"))
    pending.clear()


def write_updates(session: pytest.Session) -> None:
    """At session end, in the process that owns the run, write the recorded entries.

    Under xdist the controller has every worker's records by now
    (``pytest_testnodedown`` runs before ``pytest_sessionfinish``); workers write nothing.
    """
    config = session.config
    settings = options.get(config)
    if xdist.is_worker(config) or not (settings.update_baselines or settings.calibrate):
        return
    by_path: dict[str, dict[str, dict]] = {}
    for record in records.of(config).of_kind(RECORD_KIND):
        entry = record.data.get("entry")
        if status_of(record.data) is Status.RECORDED and entry is not None:
            by_path.setdefault(record.data["path"], {})[record.data["key"]] = entry
    outcomes = config.stash.setdefault(_WRITTEN, [])
    for path, entries in sorted(by_path.items()):
        try:
            old = write_entries(Path(path), entries)
        except (BaselineFileError, OSError, TimeoutError) as exc:
            outcomes.append((path, None, str(exc)))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            continue
        changed = sum(1 for k, e in entries.items() if _substance(old.get(k)) != _substance(e))
        kept = len(set(old) - set(entries))
        outcomes.append((path, (len(entries), changed, kept), None))


def _substance(entry: dict | None) -> dict | None:
    """An entry without when and where it was recorded: what a reviewer compares."""
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k not in ("recorded_at", "recorded_on")}


def final_status(config: pytest.Config, data: dict) -> Status:
    """A record's status after session end: RECORDED becomes NOT_WRITTEN if its file failed."""
    status = status_of(data)
    if status is Status.RECORDED:
        failed = {path for path, counts, error in config.stash.get(_WRITTEN, []) if error}
        if data.get("path") in failed:
            return Status.NOT_WRITTEN
    return status


def summary(terminalreporter, config: pytest.Config) -> None:
    """A short table of the baselines checked or recorded in this run."""
    rows = records.of(config).of_kind(RECORD_KIND)
    if not rows or xdist.is_worker(config):
        return
    write = terminalreporter.write_line
    statuses = [final_status(config, r.data) for r in rows]
    count = {s: statuses.count(s) for s in Status}
    terminalreporter.section("pytest-rnn baselines", sep="-")
    failed = len(rows) - count[Status.OK] - count[Status.RECORDED] - count[Status.NOT_RECORDED] \
        - count[Status.NOT_WRITTEN]
    failed -= count[Status.CHANGED]
    line = (f"{len(rows)} metric(s): {count[Status.OK]} within baseline, {failed} failed, "
            f"{count[Status.RECORDED]} recorded")
    if count[Status.CHANGED]:
        line += (f", {count[Status.CHANGED]} CHANGED (better than the calibrated band "
                 f"allows: passes, but behaviour changed)")
    suffix = f" (Keras backend {runtime_versions.keras_backend_name()})"
    if count[Status.NOT_RECORDED]:
        line += f", {count[Status.NOT_RECORDED]} not recorded (test failed)"
    if count[Status.NOT_WRITTEN]:
        line += f", {count[Status.NOT_WRITTEN]} NOT WRITTEN (file write failed)"
    write(line + suffix)
    width = min(60, max(len(_row_name(r)) for r in rows))
    write(f"  {'status':<11} {'file :: key':<{width}} {'baseline':>10} {'measured':>10}  allowed")
    limit = 40
    ordered = sorted(zip(statuses, rows, strict=True),
                     key=lambda sr: (sr[0].passed, _row_name(sr[1])))
    for status, record in ordered[:limit]:
        data = record.data
        baseline = "-" if data["baseline"] is None else f"{data['baseline']:.4g}"
        value = data["value"] if isinstance(data["value"], str) else f"{data['value']:.4g}"
        name = _row_name(record)
        if len(name) > width:
            name = "..." + name[-(width - 3):]
        allowed = data["bound"] or _NO_BAND.get(status, "")
        write(f"  {status.value:<11} {name:<{width}} {baseline:>10} {value:>10}  {allowed}")
    if len(rows) > limit:
        write(f"  ... and {len(rows) - limit} more")
    for path, counts, error in config.stash.get(_WRITTEN, []):
        shown = _shown_path(Path(path), config)
        if error:
            write(f"NOT WRITTEN {shown}: {error}", red=True)
        else:
            written, changed, kept = counts
            write(f"wrote {shown}: {written} entr{'y' if written == 1 else 'ies'} recorded "
                  f"({changed} new or changed), {kept} other(s) kept")


#: What the "allowed" column says for a check that had no band to compare with.
_NO_BAND = {Status.MISSING: "(no baseline)", Status.STALE: "(stale entry)",
            Status.UNREADABLE: "(file unreadable)"}


def _row_name(record) -> str:
    return f"{Path(record.data['file']).stem} :: {record.data['key']}"
