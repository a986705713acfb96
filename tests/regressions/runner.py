"""Run the suites under each injected regression, in one pytest session, and record outcomes.

``python tests/regressions/runner.py OUT.json [ID ...] [--no-control]`` starts one pytest
session over the targets of the chosen catalogue entries (all of
:data:`~regressions.catalogue.REGRESSIONS` by default), so TensorFlow is imported and the
suites collected once. It runs the ``fails`` targets without a patch (the control), then
for each entry applies it (:func:`regressions.patches.injected`), runs only its targets
and undoes it, and writes every test's outcome to ``OUT.json``: outcome, and for each
failure its phase, exception type, whether it is an assertion, and its message. The
verdict is :mod:`regressions.judge`'s, not this module's.

GPUs are hidden: the runner sets ``CUDA_VISIBLE_DEVICES=""`` before anything imports
TensorFlow (and the proof test sets it in the subprocess's environment too). On a GPU host
``use_cudnn="auto"`` would otherwise send LSTM and GRU to the fused cuDNN kernel, which
never calls the cell code that most patches replace, and a regression would look
uncaught, or caught by something else. The run records the variable's value and whether it
was set before TensorFlow was imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: tests/ must be importable for `regressions`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest  # noqa: E402

from regressions.catalogue import BY_ID, REGRESSIONS, Regression  # noqa: E402
from regressions.judge import selects  # noqa: E402
from regressions.patches import injected  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve()

#: The environment the runner needs: no GPU, so no cuDNN route around the patched cells.
HIDDEN_GPUS = {"CUDA_VISIBLE_DEVICES": ""}

#: Characters of each failure message kept in the outcomes (the patterns match the start).
MESSAGE_CHARS = 2000
#: Terminal colour codes (Keras wraps exception text in them).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def command(out: Path, ids: list[str], *, control: bool = True) -> list[str]:
    """The command line that runs the entries ``ids`` and writes ``out``."""
    return [sys.executable, str(RUNNER), str(out), *ids, *([] if control else ["--no-control"])]


def failure(phase: str, exc: BaseException) -> dict[str, Any]:
    """One failure as recorded: phase, exception type, assertion or crash, message."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")
    return {
        "phase": phase,
        "exception": name,
        "assertion": isinstance(exc, (AssertionError, pytest.fail.Exception)),
        "message": _ANSI.sub("", str(exc))[:MESSAGE_CHARS],
    }


class SensitivityLoop:
    """pytest plugin replacing the run loop: every ``fails`` target runs once without a
    patch (``control``), then, per regression, its targets run with the patch applied.

    One session, one collection: re-running an item is supported by pytest (its
    request is re-initialised), and the last item of each group is run with
    ``nextitem=None`` so every fixture, module-scoped ones included, is torn down
    before the next patch.
    """

    def __init__(self, regressions: list[Regression], *, control: bool = True) -> None:
        self.regressions = regressions
        self.control = control
        self.current = "control"
        self.results: dict[str, dict[str, Any]] = {}
        self._excinfo: dict[tuple[str, str], BaseException] = {}

    def _group(self, label: str, items: list, regression: Regression | None = None) -> None:
        started = time.perf_counter()
        self.current = label
        group = self.results[label] = {"tests": {}}
        try:
            if regression is None:
                self._run(items)
            else:
                with injected(regression.apply) as tally:
                    self._run(items)
                    group["calls"] = tally.snapshot()
        except Exception:  # a patch that cannot be applied is reported, not fatal
            group["patch_error"] = traceback.format_exc()
        group["seconds"] = round(time.perf_counter() - started, 3)

    @staticmethod
    def _run(items: list) -> None:
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return False  # collection errors: pytest reports them

        def chosen(selectors: tuple[str, ...]) -> list:
            return [i for i in session.items if any(selects(s, i.nodeid) for s in selectors)]

        if self.control:  # each `fails` target must pass without its patch
            self._group("control", chosen(tuple(t for r in self.regressions for t in r.fails)))
        for regression in self.regressions:
            self._group(regression.id, chosen(regression.targets), regression)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if report.failed and call.excinfo is not None:
            self._excinfo[(item.nodeid, call.when)] = call.excinfo.value
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        tests = self.results[self.current]["tests"]
        entry = tests.setdefault(
            report.nodeid, {"outcome": "passed", "seconds": 0.0, "failures": []})
        entry["seconds"] = round(entry["seconds"] + report.duration, 4)
        if report.failed:
            entry["outcome"] = "failed"
            exc = self._excinfo.pop((report.nodeid, report.when), None)
            if exc is not None:
                entry["failures"].append(failure(report.when, exc))
            else:  # no exception object (a report made elsewhere): keep its text
                entry["failures"].append({"phase": report.when, "exception": "(unknown)",
                                          "assertion": False,
                                          "message": str(report.longrepr)[:MESSAGE_CHARS]})
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["skip_reason"] = skip_reason(report)[:MESSAGE_CHARS]


def skip_reason(report: pytest.TestReport) -> str:
    """Why a test did not run: its xfail reason (a ledger entry names itself there) or its
    skip message, without pytest's ``Skipped: `` prefix."""
    if hasattr(report, "wasxfail"):
        return report.wasxfail
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return message.removeprefix("Skipped: ")


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--no-control"]
    if not args or args[0].startswith("-"):
        print(__doc__)
        return 2
    # before pytest loads any plugin that could import TensorFlow
    tensorflow_imported_first = "tensorflow" in sys.modules
    os.environ.update(HIDDEN_GPUS)
    out, ids = Path(args[0]), args[1:] or [r.id for r in REGRESSIONS]
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        print(f"unknown regression ids: {unknown}; known: {sorted(BY_ID)}", file=sys.stderr)
        return 2
    chosen = [BY_ID[i] for i in ids]
    loop = SensitivityLoop(chosen, control="--no-control" not in argv)
    targets = [str(ROOT / t) for t in dict.fromkeys(t for r in chosen for t in r.targets)]
    started = time.perf_counter()
    code = pytest.main(
        # in collection order: the control and every patched run see the tests the same way
        [*targets, "--rootdir", str(ROOT), "-q", "--no-header", "-p", "no:cacheprovider",
         "-p", "no:randomly", "--tb=no", "-rN"],
        plugins=[loop],
    )
    summary = {
        "exit_code": int(code),
        "seconds": round(time.perf_counter() - started, 3),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpus_hidden_before_tensorflow_import": not tensorflow_imported_first,
    }
    out.write_text(json.dumps({"run": summary, "groups": loop.results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
