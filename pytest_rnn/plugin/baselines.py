"""The ``rnn_baseline`` fixture's :class:`Baselines`, over :mod:`pytest_rnn.store`; the
public face of pytest-rnn's baseline checks.

Layout. One human-readable JSON file per suite or topic under ``--rnn-baselines``
(default ``baselines/``); by default a test writes to the file named after its module
(``suites/test_accuracy_imdb.py`` -> ``baselines/test_accuracy_imdb.json``). An entry
key is ``<test id>::<metric>`` where the test id is the node id without its module
path (``TestX::test_y[param]``); a file chosen with ``file=`` prefixes the module
name, as several modules may share it (:mod:`~pytest_rnn.plugin.baseline_keys`). The
file format, keys, bands and statuses are :mod:`pytest_rnn.store`'s.

Recording. ``--rnn-update-baselines`` makes :meth:`Baselines.check` record instead
of compare (:mod:`~pytest_rnn.plugin.baseline_recording`). Nothing is written while
tests run: every check becomes a ``baseline`` record (:mod:`pytest_rnn.plugin.records`),
the records of xdist workers travel to the controller, and the process that owns the
run merges the new entries of tests that passed into the files at session finish
(:func:`pytest_rnn.store.write_entries`). Entries of tests that did not run stay as
they are. The run's side is one :class:`~pytest_rnn.plugin.baseline_session.BaselineSession`,
which the hooks reach through the thin functions at the end of this module; the
checks' sentences are :mod:`~pytest_rnn.plugin.baseline_messages`'s and the terminal
table :mod:`~pytest_rnn.plugin.baseline_summary`'s. The installed suites read the baselines
shipped in the package where the user's directory has none, and write only where named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_rnn.plugin import baseline_inputs as inputs
from pytest_rnn.plugin import baseline_keys as keys
from pytest_rnn.plugin import baseline_messages as messages
from pytest_rnn.plugin import baseline_summary, options
from pytest_rnn.plugin import seeds as test_seeds
from pytest_rnn.plugin.baseline_messages import (  # noqa: F401 - names of this module
    UPDATE_FLAG,
    update_command,
)
from pytest_rnn.plugin.baseline_recording import Recorder
from pytest_rnn.plugin.baseline_seeding import BaselineSeeding, plugin_call, seeded_runs
from pytest_rnn.plugin.baseline_session import (  # noqa: F401 - names of this module
    RECORD_KIND,
    BaselineSession,
    CheckResult,
    status_of,
)
from pytest_rnn.runtime import nodeids
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store import files, rules, stats
from pytest_rnn.store.files import (  # noqa: F401 - public names of the first release's module
    SCHEMA_VERSION,
    BaselineFileError,
    read_baseline_file,
    write_entries,
)
from pytest_rnn.store.rules import Status, entry_key  # noqa: F401 - likewise

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

class Baselines:
    """What the ``rnn_baseline`` fixture returns: checks this test's metrics against the store.

    Made when the fixture is set up, it seeds Python, NumPy and Keras with the test's seed
    as ``rnn_seed`` does (:mod:`~pytest_rnn.plugin.baseline_seeding`)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._config = request.config
        self._settings = options.get(request.config)
        self._node = request.node
        self._seeding = BaselineSeeding(request)
        self._seeded_samples: list[tuple[int, ...]] = []  # seeds of sample_runs' runs
        self._session = BaselineSession.of(request.config)
        self._recorder = Recorder(request, self._session)
        self._shipped_suite = nodeids.is_shipped_suite(self._node.nodeid, self._node.path)

    @property
    def directory(self) -> Path:
        return self._settings.baselines

    @property
    def updating(self) -> bool:
        return self._settings.update_baselines

    def default_file(self) -> str:
        """The file this test's entries go to without ``file=``: its module's name."""
        return keys.default_file(self._node.nodeid)

    def path(self, file: str | None = None) -> Path:
        return self.directory / f"{keys.file_stem(file, self._node.nodeid)}.json"

    @plugin_call
    def key(self, metric: str, *, file: str | None = None, hardware: bool = False,
            versioned: bool = False, backend: bool | None = None) -> str:
        """The entry key :meth:`check` uses for ``metric`` in this test.

        ``backend``: key by the Keras backend (``::backend=jax``; nothing on TensorFlow);
        ``None`` (default): exactly when ``hardware`` or ``versioned``."""
        rules.check_metric_name(metric)
        test_id = keys.key_test_id(self._node.nodeid, keys.file_stem(file, self._node.nodeid))
        device_key = self._device().key if hardware else None
        versions = runtime_versions.versions() if versioned else None
        by_backend = (hardware or versioned) if backend is None else bool(backend)
        return entry_key(test_id, metric, device_key=device_key, versions=versions,
                         backend=runtime_versions.keras_backend_name() if by_backend else None)

    @plugin_call
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
        (JSON-serialisable, default: base seed and this test's seed, which seeded Python,
        NumPy and Keras for it) and ``note`` (e.g. how the tolerance was calibrated) are
        stored with the entry when recording.

        Fails the test with baseline, measured value, allowed band, file and key; a
        missing entry fails with the command that records it; a corrupt file fails
        with one line naming the file and the key; without ``seeds``, a value checked after
        the test first imported Keras or NumPy (unseeded: ``rnn_baseline`` seeds what is
        loaded at set-up) fails with one line asking for ``rnn_seed``. Under
        ``--rnn-update-baselines`` it records instead and passes (unless the value is not
        finite); the entry is written at session end if the test passed.
        """
        unseeded = self._seeding.unseeded() if seeds is None else []
        tolerance = rules.check_tolerance(tolerance)
        direction = rules.check_direction(higher_is_better)
        if not isinstance(relative, bool):
            raise ValueError(f"relative must be True or False; got {relative!r}")
        value = rules.as_number("value", value)
        key = self.key(metric, file=file, hardware=hardware, versioned=versioned,
                       backend=backend)
        path = self.path(file)
        keys.claim(self._node, path, key)
        ask = CheckResult(
            file=messages.shown_path(path, self._config), key=key, metric=metric, value=value,
            baseline=None, tolerance=tolerance, direction=direction, relative=relative,
            status=Status.FAIL, bound="", message="",
        )
        if unseeded:
            return self._finish(ask, Status.FAIL, "(not seeded)",
                                messages.not_seeded(ask, unseeded))
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]))
        if self.updating:
            return self._recorder.value(ask, path, seeds, note)
        verdict = rules.judge(stored, value, tolerance=tolerance, direction=direction,
                              relative=relative)
        if verdict.status is Status.MISSING:
            return self._finish(ask, verdict.status, "",
                                messages.missing(ask, self.update_command()))
        if verdict.status is Status.STALE:
            return self._finish(ask, verdict.status, "",
                                messages.stale(ask, verdict, self.update_command()))
        return self._finish(ask, verdict.status, verdict.band.text,
                            messages.against_band(ask, verdict, stored))

    @property
    def calibrating(self) -> int:
        """``--rnn-calibrate N``: the number of calibration seeds (0: checking)."""
        return self._settings.calibrate

    def sample_seeds(self, k: int) -> list[int]:
        """The seeds of the runs a power-checked test makes: ``k`` of them, derived from the
        base seed (``--rnn-seed``) and the test; under ``--rnn-calibrate N`` the ``N``
        calibration seeds instead, derived under another name: every checked run is held out."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        return test_seeds.sample_seeds(self._settings.seed, self._node.nodeid, k,
                                       self.calibrating, self._node.path)

    def sample_runs(self, run: Callable[[int], Any], k: int, *,
                    seeds: list[int] | None = None) -> tuple[list[int], list[Any]]:
        """``(seeds, results)``: ``run(seed)`` for each seed of :meth:`sample_seeds` ``(k)``
        (or of ``seeds``), each called after seeding Python, NumPy and Keras with its seed,
        as ``rnn_seed`` seeds a test. For runs that give several metrics:
        :meth:`check_samples` of their results with these ``seeds`` records them as seeded
        by ``rnn_baseline``."""
        seeds = self.sample_seeds(k) if seeds is None else [int(s) for s in seeds]
        results = seeded_runs(run, seeds, deterministic=self._settings.deterministic)
        self._seeded_samples.append(tuple(seeds))
        return seeds, results

    @plugin_call
    def check_sample(
        self,
        metric: str,
        values: Any = None,
        *,
        run: Callable[[int], Any] | None = None,
        seeds: list[int] | None = None,
        k: int,
        higher_is_better: bool | None = True,
        alpha: float = stats.ALPHA,
        scale: str = "linear",
        method: str = "mean",
        file: str | None = None,
        note: str | None = None,
        chance: float | None = None, budget: float | None = None,
    ) -> CheckResult:
        """Compare a sample of runs, one per seed of :meth:`sample_seeds` ``(k)``, with the
        stored calibration distribution of ``metric`` by a one-sided test at false-alarm rate
        ``alpha`` (:func:`pytest_rnn.store.rules.judge_sample`).

        ``run``: a function of the seed giving the metric of one run (training a model);
        :meth:`sample_runs` calls it once per seed after seeding Python, NumPy and Keras
        with that seed. Or ``values`` with their ``seeds``: runs the test made and seeded
        itself (the entry's ``seeds.seeded_by`` says which). ``method="mean"``, a t-test of
        the mean, or ``"rank"``, an exact rank test among the stored values (for a
        long-tailed metric); ``scale="log2"`` tests the logarithm (epoch counts: a doubling
        is one unit), so the statistic is the geometric mean. ``k`` is the number of runs a
        check makes (the band stored for reviewers is the one for ``k``).

        ``--rnn-calibrate N`` records the ``N`` calibration seeds' values as the entry's
        distribution. A sample worse than the band fails, naming the statistic compared,
        the band, the test, p and how the band moved; beyond the mirrored band on the good
        side it is ``changed`` and passes.

        ``chance`` (a score without the sequence), ``budget`` (epochs): limits no band for
        ``k`` runs may admit (refused when calibrating, stale when stored)."""
        direction = rules.check_direction(higher_is_better)
        inputs.check_sample_options(scale, method, alpha)
        limits = inputs.sample_limits(chance=chance, budget=budget)
        inputs.check_runs_or_values(run, values, seeds)
        if run is not None:
            seeds, values = self.sample_runs(run, k, seeds=seeds)
        values = inputs.sample_values(values, seeds)
        key = self.key(metric, file=file)
        path = self.path(file)
        keys.claim(self._node, path, key)
        statistic = rules.statistic_name(scale, len(values))
        finite = all(math.isfinite(v) and (scale == "linear" or v > 0) for v in values)
        ask = CheckResult(
            file=messages.shown_path(path, self._config), key=key, metric=metric,
            value=rules.sample_statistic(values, scale) if finite else math.nan,
            baseline=None, tolerance=0.0, direction=direction, relative=False,
            status=Status.FAIL, bound="", message="",
        )
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]))
        if self.calibrating:
            seeded_by = "rnn_baseline" if tuple(seeds) in self._seeded_samples else "test"
            return self._recorder.distribution(ask, path, values, seeds, k, alpha, scale, note,
                                               method, seeded_by, limits)
        if not finite:
            return self._finish(ask, Status.FAIL, "(not finite)",
                                messages.runs_not_finite(metric, values, seeds))
        verdict = rules.judge_sample(stored, values, alpha=alpha, direction=direction,
                                     scale=scale, method=method, limits=limits)
        if verdict.status in (Status.MISSING, Status.STALE):
            return self._no_entry(ask, verdict, messages.no_calibration(
                metric, statistic, ask.value, values), "Calibrate", self.calibrate_command())
        # the statistic the test compared, and its value for unchanged runs (U for a rank test)
        ask = replace(ask, value=verdict.measured, baseline=verdict.center)
        return self._finish(ask, verdict.status, verdict.band.text, messages.against_calibration(
            ask, rules.statistic_name(scale, len(values), method), values, seeds, verdict,
            stored))

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

    @plugin_call
    def check_timing(
        self,
        metric: str,
        rounds: Any,
        *,
        alpha: float = stats.ALPHA,
        min_effect: float | None = 0.1,
        slowdown: float | None = 0.2,
        hardware: bool = True,
        file: str | None = None,
        note: str | None = None,
        calibration: str | None = None,
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
        rates within ``alpha`` fails instead of writing. ``slowdown=None`` sizes it for the
        smallest slowdown the calibration's own spread supports at ``alpha``
        (:func:`pytest_rnn.store.rules.detectable_slowdown`), stated in the entry; checks
        accept the slowdown the entry was calibrated for. ``calibration``: how such an entry
        is calibrated when it is not by ``--rnn-calibrate`` in this test (said when it is
        missing; ``{file}`` is replaced by the baseline file).
        """
        if min_effect is not None and not (isinstance(min_effect, float)
                                           and 0 <= min_effect < 1):
            raise ValueError(f"min_effect must be a fraction in [0, 1) or None (derived from "
                             f"a calibration over processes); got {min_effect!r}")
        if slowdown is None and min_effect is not None:
            raise ValueError("slowdown=None (derived from the calibration's spread) needs "
                             "min_effect=None")
        if slowdown is not None and not (isinstance(slowdown, float) and 0 < slowdown < 1):
            raise ValueError(f"slowdown must be a fraction in (0, 1) or None (derived from "
                             f"the calibration's spread); got {slowdown!r}")
        samples = None
        if min_effect is None:
            samples = inputs.timing_samples(rounds, self.calibrating)
            values = [v for sample in samples for v in sample]
            if not self.calibrating:  # checking: the one sample is this process's rounds
                samples = None
        else:
            values = inputs.timing_rounds(rounds)
        key = self.key(metric, file=file, hardware=hardware)
        path = self.path(file)
        keys.claim(self._node, path, key)
        summary = stats.describe(values)
        ask = CheckResult(
            file=messages.shown_path(path, self._config), key=key, metric=metric,
            value=summary["median"], baseline=None, tolerance=min_effect or 0.0,
            direction="lower", relative=True, status=Status.FAIL, bound="", message="",
        )
        stored = self._stored(ask, path)
        if stored is not None:
            ask = replace(ask, baseline=float(stored["value"]))
        if samples is not None:
            return self._recorder.processes(ask, path, samples, alpha, slowdown, note)
        if self.updating and min_effect is not None:
            return self._recorder.rounds(ask, path, values, alpha, min_effect, note)
        verdict = rules.judge_timing(stored, values, alpha=alpha, min_effect=min_effect,
                                     slowdown=slowdown)
        if verdict.status in (Status.MISSING, Status.STALE):
            action = ("Record", self.update_command()) if min_effect is not None else (
                "Calibrate", calibration.format(file=ask.file) if calibration
                else self.calibrate_command())
            return self._no_entry(ask, verdict, messages.no_rounds(metric, summary, len(values)),
                                  *action)
        return self._finish(ask, verdict.status, verdict.band.text,
                            messages.against_rounds(ask, summary, verdict, stored))

    def calibrate_command(self) -> str:
        """The command line that calibrates this test's power-checked baselines."""
        return messages.calibrate_command(self._config, self._node.nodeid)

    def update_command(self) -> str:  # the command line that records this test's baselines
        return update_command(self._config, self._node.nodeid)

    # -- internals ------------------------------------------------------------------------

    def _no_entry(self, ask: CheckResult, verdict: rules.Verdict, what: str, verb: str,
                  command: str) -> CheckResult:
        """Fail a sample or timing check that has no usable entry, with the command to fix it."""
        return self._finish(ask, verdict.status, "",
                            messages.no_entry(ask, verdict, what, verb, command))

    def _stored(self, ask: CheckResult, path: Path) -> dict | None:
        """The stored entry of ``ask.key``; a corrupt file fails the test with one line."""
        try:  # a suite test reads the shipped entry where ``path`` has none
            entry, shipped = read_baseline_file(path).get(ask.key), files.shipped_directory()
            if entry is None and shipped and self._shipped_suite:
                entry = read_baseline_file(shipped / path.name).get(ask.key)
            return entry
        except BaselineFileError as exc:
            self._finish(ask, Status.UNREADABLE, "", str(exc))  # fails the test
            raise

    def _device(self):
        return self._request.getfixturevalue("rnn_device")

    def _finish(self, ask: CheckResult, status: Status, bound: str,
                message: str) -> CheckResult:
        """Record the comparison, then fail the test (one line, no traceback) if it failed."""
        return self._session.finish(self._node.nodeid,
                                    replace(ask, status=status, bound=bound, message=message))


# ---------------------------------------------------------------------------
# hooks: thin calls into the run's BaselineSession


def after_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """After teardown, publish the pending updates (:meth:`BaselineSession.after_report`)."""
    BaselineSession.of(item.config).after_report(item, report)


def write_updates(session: pytest.Session) -> None:
    """At session end, write the recorded entries (:meth:`BaselineSession.write_updates`)."""
    BaselineSession.of(session.config).write_updates(session)


def final_status(config: pytest.Config, data: dict) -> Status:
    """A record's status after session end: RECORDED becomes NOT_WRITTEN if its file failed."""
    return BaselineSession.of(config).final_status(data)


def summary(terminalreporter, config: pytest.Config) -> None:
    """A short table of the baselines checked or recorded in this run."""
    baseline_summary.write(terminalreporter, BaselineSession.of(config))
