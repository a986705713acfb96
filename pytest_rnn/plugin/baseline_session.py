"""The run's side of ``rnn_baseline``: one :class:`BaselineSession` per pytest run.

Every check becomes a ``baseline`` record (:mod:`pytest_rnn.plugin.records`), so
the records of xdist workers reach the controller. An entry recorded under
``--rnn-update-baselines`` or ``--rnn-calibrate`` waits on its test item until the
test's outcome is known (:meth:`BaselineSession.after_report`); the process that owns
the run merges the entries of tests that passed into the files at session finish
(:meth:`BaselineSession.write_updates`). The hooks in :mod:`pytest_rnn.plugin` reach
this object through the thin functions of :mod:`pytest_rnn.plugin.baselines`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pytest_rnn.plugin import options, records, xdist
from pytest_rnn.plugin.records import Kind, Record
from pytest_rnn.store.files import BaselineFileError, write_entries
from pytest_rnn.store.rules import Status

RECORD_KIND = Kind.BASELINE


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


def status_of(data: dict) -> Status:
    """The :class:`Status` of a ``baseline`` record's data (as it travelled from a worker)."""
    return Status(data["status"])


_PENDING = pytest.StashKey[list]()  # on the item: updates waiting for the test's outcome
_FAILED_KEY = pytest.StashKey[str]()  # on the item: the phase in which the test failed


class BaselineSession:
    """The baseline checks of this run: their records, the entries waiting for their
    test's outcome, and what writing them at session end did (for the summary)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: ``(path, (entries, changed, kept), None)`` per file written, or
        #: ``(path, None, error)`` per file that could not be written.
        self.written: list[tuple[str, tuple[int, int, int] | None, str | None]] = []

    @classmethod
    def of(cls, config: pytest.Config) -> BaselineSession:
        """The run's session (created on first use)."""
        session = config.stash.get(_SESSION, None)
        if session is None:
            session = config.stash[_SESSION] = cls(config)
        return session

    def rows(self) -> list[Record]:
        """The ``baseline`` records of the run (every worker's, in the owning process)."""
        return records.of(self.config).of_kind(RECORD_KIND)

    def add(self, nodeid: str, result: CheckResult, entry: dict | None = None,
            path: str | None = None) -> None:
        """Add ``result`` to the run's records (with the entry to write, once it may be)."""
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
        records.of(self.config).add(RECORD_KIND, nodeid, result.metric, **data)

    def finish(self, nodeid: str, result: CheckResult) -> CheckResult:
        """Record the comparison, then fail the test (one line, no traceback) if it failed."""
        self.add(nodeid, result)
        if not result.passed:
            pytest.fail(result.message, pytrace=False)
        return result

    def stage(self, item: pytest.Item, result: CheckResult, path: Path,
              entry: dict) -> CheckResult:
        """Keep ``entry`` on ``item`` as the new entry of ``result.key``, published when the
        test's outcome is known (:meth:`after_report`)."""
        item.stash.setdefault(_PENDING, []).append((result, str(path), entry))
        return result

    def after_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
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
                self.add(item.nodeid, result, entry=entry, path=path)
            else:
                why = f"test failed ({failed_in}); entry not written"
                self.add(item.nodeid, replace(
                    result, status=Status.NOT_RECORDED, message=f"{result.message}: {why}"))
        pending.clear()

    def write_updates(self, session: pytest.Session) -> None:
        """At session end, in the process that owns the run, write the recorded entries.

        Under xdist the controller has every worker's records by now
        (``pytest_testnodedown`` runs before ``pytest_sessionfinish``); workers write nothing.
        """
        settings = options.get(self.config)
        if xdist.is_worker(self.config) or not (settings.update_baselines
                                                or settings.calibrate):
            return
        by_path: dict[str, dict[str, dict]] = {}
        for record in self.rows():
            entry = record.data.get("entry")
            if status_of(record.data) is Status.RECORDED and entry is not None:
                by_path.setdefault(record.data["path"], {})[record.data["key"]] = entry
        for path, entries in sorted(by_path.items()):
            try:
                old = write_entries(Path(path), entries)
            except (BaselineFileError, OSError, TimeoutError) as exc:
                self.written.append((path, None, str(exc)))
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
                continue
            changed = sum(1 for k, e in entries.items()
                          if _substance(old.get(k)) != _substance(e))
            kept = len(set(old) - set(entries))
            self.written.append((path, (len(entries), changed, kept), None))

    def final_status(self, data: dict) -> Status:
        """A record's status after session end: RECORDED becomes NOT_WRITTEN if its file
        failed."""
        status = status_of(data)
        if status is Status.RECORDED:
            failed = {path for path, counts, error in self.written if error}
            if data.get("path") in failed:
                return Status.NOT_WRITTEN
        return status


_SESSION = pytest.StashKey[BaselineSession]()  # on the config


def _substance(entry: dict | None) -> dict | None:
    """An entry without when and where it was recorded: what a reviewer compares."""
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k not in ("recorded_at", "recorded_on")}
