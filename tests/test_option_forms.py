"""Every documented form of pytest-rnn's value options keeps the project's configuration.

pytest decides the rootdir and ini file before it loads plugins, so a separate
option value (``--rnn-imdb-path /data/imdb.npz``) used to pass for a test path and
move the rootdir to the data's folder: the project's ini (``rnn_seed``,
``pythonpath``, ``addopts``) was lost and baselines went beside the data. See
:mod:`pytest_rnn.plugin.cmdline`.

Each case runs a small project (ini with ``rnn_seed = 7``, ``pythonpath = src``,
``addopts = --strict-markers``, ``testpaths = tests``) in-process, from its root
and from a subfolder, with and without test paths, and a probe test writes what the
run was configured with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import subprocess_runs

PROBE = """
import json
from pathlib import Path

import projmod  # importable only through the ini's pythonpath

from pytest_rnn.plugin import options


def test_probe(pytestconfig):
    s = options.get(pytestconfig)
    Path(pytestconfig.rootpath, "probe.json").write_text(json.dumps({
        "rootpath": str(pytestconfig.rootpath),
        "inipath": str(pytestconfig.inipath),
        "seed": s.seed,
        "imdb_path": str(s.imdb_path) if s.imdb_path else None,
        "baselines": str(s.baselines),
        "report": str(s.report) if s.report else None,
        "strict_markers": pytestconfig.getoption("strict_markers"),
        "projmod": projmod.VALUE,
    }))
"""


@pytest.fixture
def layout(pytester: pytest.Pytester) -> dict[str, Path]:
    return make_layout(pytester.path)


def make_layout(root: Path) -> dict[str, Path]:
    """``proj/`` (the project) and ``outside/`` (data, an old report, a baselines folder)
    under ``root``."""
    proj = root / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "tests").mkdir()
    (proj / "pytest.ini").write_text(
        "[pytest]\nrnn_seed = 7\npythonpath = src\ntestpaths = tests\n"
        "addopts = -p no:cacheprovider --strict-markers\n"
    )
    (proj / "src" / "projmod.py").write_text("VALUE = 'from src'\n")
    (proj / "tests" / "test_probe.py").write_text(PROBE)
    outside = root / "outside"
    (outside / "bdir").mkdir(parents=True)
    (outside / "imdb.npz").write_bytes(b"not read by the probe")
    (outside / "report.html").write_text("<html>an earlier report</html>")
    return {"proj": proj, "outside": outside}


OPTIONS = {
    "--rnn-imdb-path": ("imdb.npz", "imdb_path"),
    "--rnn-report": ("report.html", "report"),
    "--rnn-baselines": ("bdir", "baselines"),
}


@pytest.mark.parametrize("cwd", ["root", "subfolder"])
@pytest.mark.parametrize("with_paths", [False, True], ids=["no-paths", "paths"])
@pytest.mark.parametrize("joined", [False, True], ids=["space", "equals"])
@pytest.mark.parametrize("flag", list(OPTIONS))
def test_option_value_form_keeps_the_project_configuration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, layout, flag, joined,
    with_paths, cwd,
):
    proj = layout["proj"]
    name, field = OPTIONS[flag]
    value = str(layout["outside"] / name)  # absolute, existing: what misled pytest
    where = proj if cwd == "root" else proj / "tests"
    monkeypatch.chdir(where)
    args = [f"{flag}={value}"] if joined else [flag, value]
    if with_paths:
        args.append("test_probe.py" if cwd == "subfolder" else "tests")
    result = pytester.runpytest_inprocess("-q", *args)

    result.assert_outcomes(passed=1)
    seen = json.loads((proj / "probe.json").read_text())
    assert seen["rootpath"] == str(proj), f"{flag} {'=' if joined else ' '}value moved rootdir"
    assert seen["inipath"] == str(proj / "pytest.ini")
    assert seen["seed"] == 7, "the ini's rnn_seed was lost"
    assert seen["strict_markers"] is True, "the ini's addopts were lost"
    assert seen["projmod"] == "from src"
    assert seen[field] == value
    if field != "baselines":
        assert seen["baselines"] == str(proj / "baselines")


def test_value_that_is_also_a_test_path_stays_a_test_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, layout,
):
    """Only values of pytest-rnn's own options are taken out of the test paths."""
    proj = layout["proj"]
    (proj / "tests" / "test_other.py").write_text("def test_other():\n    pass\n")
    monkeypatch.chdir(proj)
    result = pytester.runpytest_inprocess(
        "-q", "--rnn-imdb-path", str(layout["outside"] / "imdb.npz"), "tests/test_other.py")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*test_probe*")


def test_runs_without_pytest_rnn_options_are_left_as_pytest_set_them_up(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, layout,
):
    """A foreign option's separate path value still steers the rootdir, as pytest documents:
    pytest-rnn corrects pytest's choice only in runs that use its own options."""
    proj = layout["proj"]
    (pytester.path / "foreign_plugin.py").write_text(
        "def pytest_addoption(parser):\n    parser.addoption('--foreign')\n")
    pytester.syspathinsert()
    monkeypatch.chdir(proj)
    result = pytester.runpytest_inprocess(
        "-p", "foreign_plugin", "--foreign", str(layout["outside"] / "imdb.npz"), "--co", "-q")
    # pytest's own behaviour: the rootdir moved to outside/ and the ini's pythonpath was lost
    result.stdout.fnmatch_lines(["*No module named 'projmod'*"])


@subprocess_runs.declare("xdist_space_form_run")
def _xdist_space_form(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    """``-n 2`` with the space form, from the project's root (a head-start subprocess)."""
    layout = make_layout(workdir)
    argv = subprocess_runs.pytest_argv("-q", "-n", "2", "--rnn-imdb-path",
                                       str(layout["outside"] / "imdb.npz"))
    return subprocess_runs.Command(argv, cwd=layout["proj"])


xdist_space_form_run = subprocess_runs.finished_fixture("xdist_space_form_run")


def test_space_form_under_xdist_keeps_the_project_configuration_in_the_workers(
        xdist_space_form_run):
    """xdist workers parse the same command line again: they correct it the same way."""
    result = subprocess_runs.run_result(xdist_space_form_run)
    result.assert_outcomes(passed=1)
    proj = xdist_space_form_run.workdir / "proj"
    seen = json.loads((proj / "probe.json").read_text())
    assert (seen["rootpath"], seen["seed"], seen["projmod"]) == (str(proj), 7, "from src")
