"""The plugin's own tests: subprocess runs get a head start (see subprocess_runs), and
pytester's inner runs never mistake themselves for xdist workers and run in file order.

The outer suite runs in pytest-randomly's random order (it is in the ``dev`` extra);
the inner runs are small projects under test whose output is matched line by line, so
they run with ``-p no:randomly`` unless their arguments name pytest-randomly
(tests/test_randomly.py)."""

from __future__ import annotations

import gc
import os

import collected
import installed_snapshot
import pytest
from subprocess_runs import HeadStart, reads_a_run

_HEAD_START: list[HeadStart] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read a head-start run go last, in the order they had (pytest-randomly's
    shuffle included: it reorders before any plain hook), so that the runs have the whole
    session to finish instead of stopping the first reader until they do."""
    items.sort(key=reads_a_run)
    collected.NODEIDS.update(item.nodeid for item in items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Deselected by -m or -k, but collected: tests/test_ledger.py checks the ledger's
    patterns against every collected test (a conftest's own collection hooks would see
    only this directory's items)."""
    collected.NODEIDS.update(item.nodeid for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What is alive now (TensorFlow, Keras, the collected tests) lives for the whole
    # session: frozen, it is left out of later garbage collections, above all the full
    # ones pytest forces at the end of each in-process inner run (its unraisable-exception
    # check), which otherwise walk TensorFlow's heap each time.
    gc.collect()
    gc.freeze()
    # Keras and TensorFlow allocate container objects by the hundred thousand per test
    # (layers, variables, traced graphs) and free them with the test: at Python's default
    # first threshold (700) a fast-suite run spent 4.8-5.4 s in the collector, at 20,000
    # 3.2-3.8 s (the rest is collection's, before this, and the full collections pytest
    # forces after each in-process run; measured with gc.callbacks, two runs each).
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    # the inner pytest runs read the installed packages' metadata once (installed_snapshot)
    installed_snapshot.install()
    # Not in xdist workers (every core is busy already) nor when nothing will run.
    option = session.config.option
    if os.environ.get("PYTEST_XDIST_WORKER") or option.collectonly or option.setupplan:
        return
    _HEAD_START.append(HeadStart(session))
    # the cross-backend proof compares with the equivalence suite's own subprocesses
    # (not when --rnn-skip-cross-backend skipped its tests)
    if any(getattr(item, "module", None) is not None
           and item.module.__name__ == "test_cross_backend_sensitivity"
           and item.get_closest_marker("skip") is None for item in session.items):
        from test_cross_backend_sensitivity import suite

        suite.head_start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    installed_snapshot.remove()
    while _HEAD_START:
        _HEAD_START.pop().close()


@pytest.fixture(autouse=True)
def _inner_runs_are_not_xdist_workers(request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``-n``, a pytester run (in-process or not) would inherit this worker's
    PYTEST_XDIST_* variables and the plugin would treat it as a worker."""
    if "pytester" in request.fixturenames:
        for name in [n for n in os.environ if n.startswith("PYTEST_XDIST_")]:
            monkeypatch.delenv(name)
        # inner runs in file order (see the module docstring); through the run methods,
        # as several modules clear PYTEST_ADDOPTS for their inner runs
        pytester = request.getfixturevalue("pytester")
        for method in ("inline_run", "runpytest_subprocess"):
            monkeypatch.setattr(pytester, method, _in_file_order(getattr(pytester, method)))


def _in_file_order(run):
    """``run`` with ``-p no:randomly`` first, unless its arguments mention randomly."""

    def in_file_order(*args, **kwargs):
        if not any("randomly" in str(arg) for arg in args):
            args = ("-p", "no:randomly", *args)
        return run(*args, **kwargs)

    return in_file_order
