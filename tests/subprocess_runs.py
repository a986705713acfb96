"""Subprocess runs of the plugin's own tests: a clean environment and a head start.

A pytest run in a fresh process that imports TensorFlow spends seconds before its first
test, and several test modules need one (the proof of sensitivity, the example project, the
plugin's seed probes, the report's ``-n 2`` run). Those runs are declared here with
:func:`declare`, keyed by the name of the fixture that reads them. ``tests/conftest.py``
starts every declared run whose fixture a selected test uses as soon as the session starts,
one at a time on a helper thread, so they use the core the in-process tests leave idle
instead of running after them, and moves the tests that read them to the end of the
session (whatever order pytest-randomly chose), so they do not wait for them. The fixture
then collects the result with :func:`result`, which runs the command itself when nothing
started it (a single test selected by name, or an xdist worker, where the workers already
keep every core busy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Variables of the outer run that must not leak into an inner one: an inner run started
#: from an xdist worker is not a worker, and the outer PYTEST_ADDOPTS is not its options.
_OUTER_RUN_PREFIXES = ("PYTEST_XDIST_", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the outer pytest run's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OUTER_RUN_PREFIXES)}
    env.update(extra)
    return env


def pytest_argv(*args: str) -> list[str]:
    """The command line of an inner pytest run with this interpreter, in file order
    (``-p no:randomly``: the outer suite may run under pytest-randomly)."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
            *args]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=clean_env)
    timeout: float = 600


@dataclass(frozen=True)
class Finished:
    """A finished run: the process's result and the directory its preparation used."""

    proc: subprocess.CompletedProcess
    workdir: Path


def project(workdir: Path, files: dict[str, str], *args: str, timeout: float = 300,
            **env: str) -> Command:
    """A pytest run (:func:`pytest_argv` with ``args``) of a small project: ``files``
    (relative path -> text) written under ``workdir / "project"``, its working directory;
    ``env`` is added to the clean environment."""
    root = workdir / "project"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Command(pytest_argv(*args), cwd=root, env=clean_env(**env), timeout=timeout)


def finished_fixture(name: str) -> Callable:
    """The fixture ``name`` that reads the run declared for it: its :class:`Finished`.
    Assign it in the module that declares the run (``x_run = finished_fixture("x_run")``)."""

    @pytest.fixture(name=name)
    def finished(request: pytest.FixtureRequest) -> Finished:
        return result(request)

    return finished


def run_result(finished: Finished) -> pytest.RunResult:
    """A finished run as pytester's RunResult (``assert_outcomes``, ``fnmatch_lines``)."""
    proc = finished.proc
    return pytest.RunResult(proc.returncode, proc.stdout.splitlines(),
                            proc.stderr.splitlines(), 0.0)


#: prepare(workdir, session) -> Command: writes what the run needs under ``workdir``.
Prepare = Callable[[Path, pytest.Session], Command]

_DECLARED: dict[str, Prepare] = {}
_PENDING: dict[str, tuple[Future, Command, Path]] = {}

#: Head-start runs yield the CPU to the session's own tests: on two cores the tests run on
#: one and a run on the other, and when TensorFlow's threads in both want the second core
#: the tests' thread should not be the one that waits (its waits are the session's wall
#: time; a run only has to finish before the tests that read it, at the end).
BACKGROUND_NICENESS = 10


def declare(fixture_name: str) -> Callable[[Prepare], Prepare]:
    """Declare the subprocess run that the fixture ``fixture_name`` reads."""

    def register(prepare: Prepare) -> Prepare:
        _DECLARED[fixture_name] = prepare
        return prepare

    return register


def _execute(prepare: Prepare, session: pytest.Session, workdir: Path) -> Finished:
    """Prepare and run one declared command now."""
    return _run(prepare(workdir, session), workdir)


def _run(command: Command, workdir: Path,
         track: Callable[[subprocess.Popen | None], None] = lambda proc: None,
         niceness: int = 0) -> Finished:
    """Run a prepared command (``niceness`` added to its scheduling priority); ``track``
    sees the process, then None."""
    proc = subprocess.Popen(command.argv, cwd=command.cwd, env=command.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # set from here rather than in preexec_fn, which is unsafe in a process with threads
    # (TensorFlow's); the child is still starting, and what it starts inherits the priority
    if niceness and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))
        except OSError:  # already gone
            pass
    track(proc)
    try:
        stdout, stderr = proc.communicate(timeout=command.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += f"\n[killed after {command.timeout} s]"
    finally:
        track(None)
    return Finished(subprocess.CompletedProcess(command.argv, proc.returncode, stdout, stderr),
                    workdir)


class HeadStart:
    """Runs the declared runs the session needs, in order, on one helper thread."""

    def __init__(self, session: pytest.Session) -> None:
        # a directory of its own: the tmp_path_factory fixture is not available to hooks
        self._root = Path(tempfile.mkdtemp(prefix="pytest-rnn-head-start-"))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pytest-rnn-bg")
        self._lock = threading.Lock()
        self.running: subprocess.Popen | None = None
        self._closed = False
        for name in needed(session.items):
            workdir = self._root / name
            workdir.mkdir()
            # prepared here, before any test runs: the environment a command inherits is
            # the session's, not whatever a test has set (monkeypatch.setenv) by the time
            # the helper thread gets to it
            command = _DECLARED[name](workdir, session)
            _PENDING[name] = (self._executor.submit(_run, command, workdir, self._started,
                                                    BACKGROUND_NICENESS),
                              command, workdir)

    def _started(self, proc: subprocess.Popen | None) -> None:
        with self._lock:
            self.running = proc
            if proc is not None and self._closed:  # started while close() ran
                proc.kill()

    def close(self) -> None:
        """Drop what did not start, kill what runs (an interrupted or -x session)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._closed = True
            if self.running is not None:
                self.running.kill()
        self._executor.shutdown(wait=True)
        _PENDING.clear()
        shutil.rmtree(self._root, ignore_errors=True)


def reads_a_run(item: pytest.Item) -> bool:
    """Whether ``item`` uses the fixture of a declared run."""
    return any(name in _DECLARED for name in getattr(item, "fixturenames", ()))


def needed(items: Iterable[pytest.Item]) -> list[str]:
    """Declared runs that the selected tests read, in the order the tests come."""
    order = {}
    for item in items:
        marker = getattr(item, "get_closest_marker", None)
        if marker is not None and marker("skip") is not None:  # --rnn-skip-cross-backend
            continue
        for name in getattr(item, "fixturenames", ()):
            if name in _DECLARED:
                order.setdefault(name, None)
    return list(order)


def result(request: pytest.FixtureRequest) -> Finished:
    """The run declared for the requesting fixture: the head start's, or run now."""
    name = request.fixturename
    pending = _PENDING.pop(name, None)
    if pending is not None:
        future, command, workdir = pending
        # not started yet: run the command prepared at the session's start here and now
        return _run(command, workdir) if future.cancel() else future.result()
    workdir = request.getfixturevalue("tmp_path_factory").mktemp(name)
    return _execute(_DECLARED[name], request.session, workdir)
