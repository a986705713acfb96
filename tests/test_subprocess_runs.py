"""The head start of the plugin tests' subprocess runs: what starts, what is reused, what
is killed. The commands are tiny Python one-liners; nothing here imports TensorFlow."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import subprocess_runs


@pytest.fixture
def declared(monkeypatch):
    """An empty registry for the test, restored after."""
    monkeypatch.setattr(subprocess_runs, "_DECLARED", {})
    monkeypatch.setattr(subprocess_runs, "_PENDING", {})
    return subprocess_runs._DECLARED


def python(code: str, workdir: Path) -> subprocess_runs.Command:
    return subprocess_runs.Command([sys.executable, "-c", code], cwd=workdir, timeout=60)


def fake_session(*fixturenames: tuple[str, ...]):
    return SimpleNamespace(items=[SimpleNamespace(fixturenames=list(n)) for n in fixturenames])


def fake_request(name: str, session, tmp_path_factory):
    return SimpleNamespace(fixturename=name, session=session,
                           getfixturevalue=lambda _: tmp_path_factory)


def through_a_head_start(name: str, tmp_path_factory) -> subprocess_runs.Finished:
    """The declared run ``name`` as its fixture gets it in a session that reads it."""
    session = fake_session((name,))
    head = subprocess_runs.HeadStart(session)
    try:
        return subprocess_runs.result(fake_request(name, session, tmp_path_factory))
    finally:
        head.close()


def test_only_runs_that_selected_tests_read_are_needed_in_test_order(declared):
    for name in ("late", "early", "unused"):
        subprocess_runs.declare(name)(lambda workdir, session: None)
    session = fake_session(("tmp_path",), ("early", "late"), ("late",))
    assert subprocess_runs.needed(session.items) == ["early", "late"]


def test_a_head_started_run_is_the_one_the_fixture_gets(declared, tmp_path_factory):
    calls = []

    @subprocess_runs.declare("probe")
    def _probe(workdir, session):
        calls.append(workdir)
        (workdir / "input.txt").write_text("from prepare")
        return python("import pathlib; print(pathlib.Path('input.txt').read_text())", workdir)

    finished = through_a_head_start("probe", tmp_path_factory)
    assert finished.proc.returncode == 0 and finished.proc.stdout.strip() == "from prepare"
    assert calls == [finished.workdir], "prepared once, by the head start"


def test_a_head_started_run_yields_the_cpu_and_one_run_by_its_test_does_not(
        declared, tmp_path_factory):
    """Head-start runs compete with the session's tests for the cores: they run at a lower
    priority. A run a test starts itself is what that test waits for: same priority."""
    # (the priority is set just after the start: read it a moment later)
    code = "import os, time; time.sleep(0.1); print(os.nice(0))"
    subprocess_runs.declare("probe")(lambda workdir, session: python(code, workdir))
    background = through_a_head_start("probe", tmp_path_factory)
    now = subprocess_runs.result(fake_request("probe", fake_session(), tmp_path_factory))
    mine = os.nice(0)
    assert int(now.proc.stdout) == mine
    assert int(background.proc.stdout) == min(19, mine + subprocess_runs.BACKGROUND_NICENESS)


def test_without_a_head_start_the_fixture_runs_it_itself(declared, tmp_path_factory):
    subprocess_runs.declare("probe")(lambda workdir, session: python("print(42)", workdir))
    finished = subprocess_runs.result(fake_request("probe", fake_session(), tmp_path_factory))
    assert finished.proc.stdout.strip() == "42"
    assert finished.workdir.is_relative_to(tmp_path_factory.getbasetemp())


def test_closing_the_session_kills_what_still_runs_and_drops_what_did_not_start(
        declared, tmp_path):
    prepared = []

    def sleeper(workdir, session):
        prepared.append(workdir)
        code = (f"import pathlib, time; pathlib.Path({str(tmp_path)!r}, {workdir.name!r})"
                ".touch(); time.sleep(60)")
        return python(code, workdir)

    subprocess_runs.declare("slow_one")(sleeper)
    subprocess_runs.declare("never")(sleeper)
    head = subprocess_runs.HeadStart(fake_session(("slow_one", "never")))
    deadline = time.monotonic() + 10
    while not (tmp_path / "slow_one").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    begun = time.monotonic()
    head.close()
    assert time.monotonic() - begun < 5, "close() waited for the sleeper instead of killing it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow_one"], "the second one started"
    assert len(prepared) == 2 and not subprocess_runs._PENDING
    assert not prepared[0].exists(), "the head start's directory is removed"


def test_a_head_started_run_has_the_environment_of_the_session_not_of_a_later_test(
        declared, monkeypatch, tmp_path_factory):
    """Prepared when the session starts: a test's monkeypatch.setenv never leaks into it."""
    # a first run keeps the helper thread busy, so the second one starts after the setenv
    subprocess_runs.declare("first")(lambda workdir, session: python(
        "import time; time.sleep(1)", workdir))
    subprocess_runs.declare("env")(lambda workdir, session: python(
        "import os; print(os.environ.get('PYTEST_RNN_PROBE', 'unset'))", workdir))
    session = fake_session(("first", "env"))
    head = subprocess_runs.HeadStart(session)
    try:
        monkeypatch.setenv("PYTEST_RNN_PROBE", "set by a test")
        finished = subprocess_runs.result(fake_request("env", session, tmp_path_factory))
    finally:
        head.close()
    assert finished.proc.stdout.strip() == "unset"


def test_inner_runs_do_not_inherit_the_outer_runs_pytest_variables(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    env = subprocess_runs.clean_env(EXTRA="1")
    assert "PYTEST_XDIST_WORKER" not in env and "PYTEST_ADDOPTS" not in env
    assert env["EXTRA"] == "1" and env["PATH"]
