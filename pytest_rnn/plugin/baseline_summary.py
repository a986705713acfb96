"""The terminal summary of ``rnn_baseline``: a short table of the baselines checked or
recorded in the run, and what writing the files did."""

from __future__ import annotations

from pathlib import Path

from pytest_rnn.plugin import xdist
from pytest_rnn.plugin.baseline_messages import shown_path
from pytest_rnn.plugin.baseline_session import BaselineSession
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store.rules import Status

#: What the "allowed" column says for a check that had no band to compare with.
_NO_BAND = {Status.MISSING: "(no baseline)", Status.STALE: "(stale entry)",
            Status.UNREADABLE: "(file unreadable)"}
_LIMIT = 40  # rows shown; the count line counts them all


def write(terminalreporter, session: BaselineSession) -> None:
    """The table, in the process that owns the run, when the run checked a baseline."""
    config = session.config
    rows = session.rows()
    if not rows or xdist.is_worker(config):
        return
    write = terminalreporter.write_line
    statuses = [session.final_status(r.data) for r in rows]
    terminalreporter.section("pytest-rnn baselines", sep="-")
    write(_count_line(statuses))
    width = min(60, max(len(_row_name(r)) for r in rows))
    write(f"  {'status':<11} {'file :: key':<{width}} {'baseline':>10} {'measured':>10}  allowed")
    ordered = sorted(zip(statuses, rows, strict=True),
                     key=lambda sr: (sr[0].passed, _row_name(sr[1])))
    for status, record in ordered[:_LIMIT]:
        data = record.data
        baseline = "-" if data["baseline"] is None else f"{data['baseline']:.4g}"
        value = data["value"] if isinstance(data["value"], str) else f"{data['value']:.4g}"
        name = _row_name(record)
        if len(name) > width:
            name = "..." + name[-(width - 3):]
        allowed = data["bound"] or _NO_BAND.get(status, "")
        write(f"  {status.value:<11} {name:<{width}} {baseline:>10} {value:>10}  {allowed}")
    if len(rows) > _LIMIT:
        write(f"  ... and {len(rows) - _LIMIT} more")
    for path, counts, error in session.written:
        shown = shown_path(Path(path), config)
        if error:
            write(f"NOT WRITTEN {shown}: {error}", red=True)
        else:
            written, changed, kept = counts
            write(f"wrote {shown}: {written} entr{'y' if written == 1 else 'ies'} recorded "
                  f"({changed} new or changed), {kept} other(s) kept")


def _count_line(statuses: list[Status]) -> str:
    count = {s: statuses.count(s) for s in Status}
    failed = len(statuses) - count[Status.OK] - count[Status.RECORDED] \
        - count[Status.NOT_RECORDED] - count[Status.NOT_WRITTEN] - count[Status.CHANGED]
    line = (f"{len(statuses)} metric(s): {count[Status.OK]} within baseline, {failed} failed, "
            f"{count[Status.RECORDED]} recorded")
    if count[Status.CHANGED]:
        line += (f", {count[Status.CHANGED]} CHANGED (better than the calibrated band "
                 f"allows: passes, but behaviour changed)")
    if count[Status.NOT_RECORDED]:
        line += f", {count[Status.NOT_RECORDED]} not recorded (test failed)"
    if count[Status.NOT_WRITTEN]:
        line += f", {count[Status.NOT_WRITTEN]} NOT WRITTEN (file write failed)"
    return line + f" (Keras backend {runtime_versions.keras_backend_name()})"


def _row_name(record) -> str:
    return f"{Path(record.data['file']).stem} :: {record.data['key']}"
