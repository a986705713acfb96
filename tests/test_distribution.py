"""What the built distribution ships, and how the installed suites behave.

The wheel maps ``suites/`` to ``pytest_rnn.suites`` and ``baselines/`` to
``pytest_rnn.suites.baselines`` (pyproject.toml). An installed suite test is named as in this
repository (so it meets the ledger's entries and draws the same seeds), reads the shipped
baselines where the user's directory has none, and never writes into the installed package.
CI builds the wheel and runs ``pytest --pyargs pytest_rnn.suites`` from an empty directory.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import subprocess_runs
import tomllib

from pytest_rnn.runtime import nodeids
from pytest_rnn.store import files

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_is_every_subpackage_plus_the_mapped_suites_and_baselines():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    found = {"pytest_rnn"} | {f"pytest_rnn.{p.parent.name}"
                              for p in (ROOT / "pytest_rnn").glob("*/__init__.py")}
    mapped = {"pytest_rnn.suites", "pytest_rnn.suites.baselines"}
    assert set(tool["packages"]) == found | mapped
    assert tool["package-dir"] == {"pytest_rnn.suites": "suites",
                                   "pytest_rnn.suites.baselines": "baselines"}
    for package, folder in tool["package-dir"].items():
        assert (ROOT / folder / "__init__.py").is_file(), f"{package}: {folder}/__init__.py"


@pytest.mark.parametrize(("nodeid", "name"), [
    ("suites/test_gradients.py::test_x[a]", "suites/test_gradients.py::test_x[a]"),
    ("../venv/lib/python3.12/site-packages/pytest_rnn/suites/test_gradients.py::test_x[a/b]",
     "suites/test_gradients.py::test_x[a/b]"),
    ("C:\\venv\\Lib\\site-packages\\pytest_rnn\\suites\\test_dropout.py::T::test",
     "suites/test_dropout.py::T::test"),
    ("tests/test_ledger.py::test_x", "tests/test_ledger.py::test_x"),
    ("my_pytest_rnn/suites/test_x.py::t", "my_pytest_rnn/suites/test_x.py::t"),
])
def test_an_installed_suite_test_is_named_as_in_the_repository(nodeid, name):
    assert nodeids.canonical(nodeid) == name
    assert nodeids.is_shipped_suite(nodeid) is name.startswith("suites/")


def test_the_shipped_baselines_are_the_repository_ones_in_an_editable_install():
    shipped = files.shipped_directory()
    assert shipped is not None and (shipped / "test_accuracy_toy.json").is_file()
    assert shipped.resolve() == (ROOT / "baselines").resolve()


PROBE = """
    def test_value(rnn_baseline):
        import os
        rnn_baseline.check("m", float(os.environ["PROBE_VALUE"]), tolerance=0.1)
"""


@pytest.fixture
def installed_suite(pytester, monkeypatch):
    """A suite module where an installed pytest-rnn keeps its suites, and a shipped
    baselines folder holding its entry (1.0, higher is better, 0.1 below allowed)."""
    probe = probe_suite(pytester.path)
    shipped = pytester.path / "shipped"
    shipped.mkdir()
    files.atomic_write(shipped / "test_probe.json", files.dump({"test_value::m": {
        "value": 1.0, "tolerance": 0.1, "direction": "higher", "relative": False, "seeds": {},
        "recorded_at": "2026-12-04T00:00:00Z", "recorded_on": {"host": "shipped"}}}))
    monkeypatch.setattr(files, "shipped_directory", lambda: shipped)
    monkeypatch.delenv("PYTEST_RNN_BASELINES", raising=False)
    return probe


def probe_suite(root: Path) -> Path:
    """PROBE written where an installed pytest-rnn under ``root`` keeps its suites."""
    suites = root / "venv" / "site-packages" / "pytest_rnn" / "suites"
    suites.mkdir(parents=True)
    (suites / "test_probe.py").write_text(textwrap.dedent(PROBE))
    return suites / "test_probe.py"


def run(pytester, path, *args):
    return pytester.runpytest_inprocess(str(path), "-p", "no:cacheprovider", "-p", "no:xdist",
                                        "-p", "no:randomly", *args)


def test_an_installed_suite_reads_the_shipped_baselines(pytester, monkeypatch,
                                                        installed_suite):
    monkeypatch.setenv("PROBE_VALUE", "1.05")
    run(pytester, installed_suite).assert_outcomes(passed=1)
    monkeypatch.setenv("PROBE_VALUE", "0.5")
    result = run(pytester, installed_suite)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_value::m*"])
    # a user's own directory wins where it has the entry
    monkeypatch.setenv("PROBE_VALUE", "2.0")
    mine = pytester.path / "mine"
    mine.mkdir()
    files.atomic_write(mine / "test_probe.json", files.dump({"test_value::m": {
        "value": 2.0, "tolerance": 0.1, "direction": "higher", "relative": False, "seeds": {},
        "recorded_at": "2026-12-04T00:00:00Z", "recorded_on": {"host": "mine"}}}))
    run(pytester, installed_suite, f"--rnn-baselines={mine}").assert_outcomes(passed=1)


#: --rnn-update-baselines runs of an installed suite, each in a fresh process as a user's
#: run would be (in-process runs of one module share its import): where they write
INSTALLED_UPDATES = {
    "installed_update_run": (),  # no directory named: refused
    "installed_update_into_mine_run": ("--rnn-baselines={workdir}/mine",),
    "installed_update_into_package_run": (
        "--rnn-baselines={workdir}/venv/site-packages/pytest_rnn/baselines",),
}


def _installed_update(name: str) -> None:
    @subprocess_runs.declare(name)
    def prepare(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
        probe = probe_suite(workdir)
        args = [a.format(workdir=workdir) for a in INSTALLED_UPDATES[name]]
        env = {k: v for k, v in subprocess_runs.clean_env(PROBE_VALUE="3.0").items()
               if k != "PYTEST_RNN_BASELINES"}
        return subprocess_runs.Command(
            subprocess_runs.pytest_argv(str(probe), "-p", "no:xdist",
                                        "--rnn-update-baselines", *args),
            cwd=workdir, env=env)


for _name in INSTALLED_UPDATES:  # the run and, under its name, the fixture that reads it
    _installed_update(_name)
    globals()[_name] = subprocess_runs.finished_fixture(_name)


def test_an_installed_suite_records_only_into_a_directory_the_user_names(
        installed_update_run, installed_update_into_mine_run,
        installed_update_into_package_run):
    refused = subprocess_runs.run_result(installed_update_run)
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["*the installed suites record this host's baselines into a "
                                  "directory you name*--rnn-baselines DIR*"])
    assert not list((installed_update_run.workdir / "venv").rglob("*.json"))
    subprocess_runs.run_result(installed_update_into_mine_run).assert_outcomes(passed=1)
    mine = installed_update_into_mine_run.workdir / "mine"
    stored = json.loads((mine / "test_probe.json").read_text())["entries"]
    assert stored["test_value::m"]["value"] == 3.0
    into_package = subprocess_runs.run_result(installed_update_into_package_run)
    into_package.assert_outcomes(failed=1)
    into_package.stdout.fnmatch_lines(["*does not write baselines into an installed package*"])


def test_a_suite_test_named_from_its_own_folder_is_found_by_its_file():
    """``pytest --pyargs pytest_rnn.suites`` from another directory names the files from the
    suites' own folder (``test_gradients.py::...``): the file's path decides."""
    suites = nodeids.suites_directory()
    assert suites is not None
    assert nodeids.canonical("test_gradients.py::t[a]", suites / "test_gradients.py") == (
        "suites/test_gradients.py::t[a]")
    assert nodeids.canonical("test_x.py::t", ROOT / "tests" / "test_x.py") == "test_x.py::t"
