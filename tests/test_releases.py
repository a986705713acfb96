"""Older Keras releases and other TensorFlow distributions, as the plugin sees them.

What differs between releases is either a known Keras defect (tests/test_ledger.py) or a
feature a release predates: those features are named once
(:data:`pytest_rnn.runtime.versions.KERAS_FEATURES`) and the tests pinning them skip
with a reason naming both releases. These tests pin that reasoning without installing
another release; the matrix run (noxfile.py) runs everything on real ones.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import repo_scripts

from pytest_rnn.checks.shapes import assert_output_structure
from pytest_rnn.plugin.markers import requires_keras
from pytest_rnn.runtime import ledger, versions


@pytest.mark.parametrize(("feature", "release", "lacks"), [
    ("use_cudnn", "3.0.5", True),
    ("use_cudnn", "3.1.1", True),
    ("use_cudnn", "3.2.0", False),
    ("use_cudnn", "3.15.1", False),
    ("keras.tree", "3.2.1", True),
    ("keras.tree", "3.3.0", False),
])
def test_a_missing_feature_names_the_release_and_the_first_release_with_it(
        feature, release, lacks):
    reason = versions.keras_lacks(feature, release)
    if not lacks:
        assert reason is None
        return
    since = versions.KERAS_FEATURES[feature][0]
    assert reason.startswith(f"Keras {release} predates ") and f"(added in Keras {since})" in reason


def test_an_unknown_feature_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown Keras feature 'nope'; known: \["):
        versions.keras_lacks("nope")


def test_requires_keras_skips_only_on_releases_without_the_feature(monkeypatch):
    monkeypatch.setattr(versions, "package_version",
                        lambda name: "3.1.1" if name == "keras" else None)
    mark = requires_keras("use_cudnn")
    assert mark.args == (True,)
    assert mark.kwargs["reason"].startswith("Keras 3.1.1 predates LSTM/GRU's use_cudnn")
    monkeypatch.setattr(versions, "package_version",
                        lambda name: "3.2.0" if name == "keras" else None)
    assert requires_keras("use_cudnn").args == (False,)
    assert not versions.keras_at_least("3.2.1") and versions.keras_at_least("3.2.0")


@pytest.mark.parametrize("distribution", ["tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                                          "tensorflow-intel", "tf-nightly"])
def test_every_tensorflow_distribution_is_the_same_tensorflow(monkeypatch, distribution):
    installed = {distribution: "2.16.2", "keras": "3.0.5"}
    monkeypatch.setattr(versions, "package_version", installed.get)
    assert versions.tensorflow_version() == "2.16.2"
    assert versions.versions()["tensorflow"] == "2.16.2"


def test_a_leaf_that_is_not_a_shape_is_reported_not_a_crash():
    """Keras < 3.3 reports a stacked RNN's state shapes as bare ints."""
    with pytest.raises(AssertionError,
                       match=r"element 1 \(state\) has shape <not a shape: int 4>, expected "
                             r"\(2, 4\)"):
        assert_output_structure([np.zeros((2, 3)), 4], [("output", (2, 3)), ("state", (2, 4))],
                                what="stacked compute_output_shape")


# --- the release matrix (scripts/release_matrix.py, noxfile.py) ------------------------------

matrix = repo_scripts.load("release_matrix")
ROOT = Path(__file__).resolve().parents[1]


def _floor(name: str) -> str:
    """The ``>=`` floor pyproject.toml declares for ``name`` (one, whatever the extra)."""
    text = (ROOT / "pyproject.toml").read_text("utf-8")
    floors = set(re.findall(rf'"{name}(?:\[[^\]]*\])?>=([\d.]+)"', text))
    assert len(floors) == 1, f"pyproject declares {name} floors {floors}"
    return floors.pop()


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = (int(p) for p in version.split("."))
    return major, minor


def test_the_matrix_runs_the_floor_and_every_minor_release_up_to_the_newest():
    """One session per Keras 3 minor release, from the declared floor on: a gap would be a
    release users may pin that nothing runs."""
    releases = matrix.KERAS_RELEASES
    assert releases[0] == _floor("keras"), (
        f"the matrix starts at Keras {releases[0]}; pyproject declares keras>={_floor('keras')}")
    minors = [_minor(v) for v in releases[1:]]
    first, last = _minor(releases[0]), minors[-1]
    wanted = [(3, m) for m in range(first[1], last[1] + 1)]
    assert minors == wanted, f"the matrix runs minors {minors}; every one of {wanted} is wanted"
    roles = [s.role for s in matrix.sessions()]
    assert roles[0] == "floor" and roles[-1] == "newest" and set(roles[1:-1]) == {"middle"}


def test_each_release_gets_the_newest_tensorflow_whose_requirements_admit_it():
    admits = matrix.TENSORFLOW_ADMITS_KERAS
    oldest = min(admits, key=matrix._key)
    assert _minor(oldest) == _minor(_floor("tensorflow") + ".0"), (
        f"the matrix's oldest TensorFlow is {oldest}; pyproject declares "
        f"tensorflow>={_floor('tensorflow')}")
    for s in matrix.sessions():
        assert matrix._key(admits[s.tensorflow]) <= matrix._key(s.keras)
        newer = [tf for tf, floor in admits.items() if matrix._key(tf) > matrix._key(s.tensorflow)
                 and matrix._key(floor) <= matrix._key(s.keras)]
        assert not newer, f"Keras {s.keras} runs TensorFlow {s.tensorflow}; {newer} admit it"
    with pytest.raises(ValueError, match=r"no TensorFlow in the matrix admits Keras 2\.15\.0"):
        matrix.tensorflow_for("2.15.0")


def test_ci_runs_one_middle_release_chosen_from_the_commit():
    """The same commit picks the same release (a red CI reproduces), and commits walk over
    every middle release, never the floor or the newest (CI runs those anyway)."""
    middles = {s.keras for s in matrix.sessions() if s.role == "middle"}
    commit = "4eccf5b0a1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6"
    assert matrix.ci_middle(commit) == matrix.ci_middle(commit)
    assert matrix.ci_middle(commit).keras == matrix.ci_middle(commit[:12]).keras
    picked = {matrix.ci_middle(hashlib.sha1(str(n).encode()).hexdigest()).keras
              for n in range(200)}
    assert picked == middles
    for bad in ("", "HEAD", "xyz1234"):
        with pytest.raises(ValueError, match="a commit is a hex object name"):
            matrix.ci_middle(bad)


def test_ci_runs_the_floor_and_the_commits_middle_release():
    """CI runs each session `nox -t ci` lists, one at a time, removing its environment
    before the next is made (together they outgrew the CI machine's disk)."""
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert re.search(r"^nox --non-interactive -t ci --list --json\b", ci, re.M), (
        ".ci/run does not list the sessions of nox -t ci")
    loop = re.search(r'^for session in "\$\{ci_sessions\[@\]\}"; do\n(.*?)^done$', ci, re.M | re.S)
    assert loop, ".ci/run does not run the listed sessions one by one"
    assert 'nox --non-interactive -s "$session"' in loop.group(1)
    assert "rm -rf .nox" in loop.group(1), ".ci/run keeps every nox environment to the end"
    nox = (ROOT / "noxfile.py").read_text("utf-8")
    assert 'session.role == "floor" or session.keras == _CI_MIDDLE' in nox


def test_ci_removes_each_extra_environment_after_its_step():
    """Every environment .ci/run makes besides the first (the one README's commands install,
    which runs nox at the end) is removed once its tests have run."""
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    made = re.findall(r'^(\w+)="\$\(mktemp -d\)/venv"$', ci, re.M)
    assert made[0] == "venv" and len(made) > 1, made
    for name in made[1:]:
        removal = f'remove_env "${name}"'
        assert removal in ci, f".ci/run never removes ${name}"
        last_use = max(m.start() for m in re.finditer(rf'"\${name}/bin/', ci))
        assert ci.index(removal) > last_use, f".ci/run removes ${name} before its last use"


def test_the_tools_sessions_run_pytest_and_pytest_benchmark_at_their_floor_and_newest():
    """The floor session pins what pyproject declares; the newest is at least what this
    environment (installed from pyproject without pins, so their newest) has."""
    from importlib.metadata import version

    from packaging.version import Version

    for name, floor in matrix.TOOL_RELEASES["floor"].items():
        assert Version(floor) == Version(_floor(name)), (
            f"tools(floor) pins {name} {floor}; pyproject declares {name}>={_floor(name)}")
    for name, newest in matrix.TOOL_RELEASES["newest"].items():
        assert Version(newest) >= Version(version(name)), (
            f"tools(newest) pins {name} {newest}; {version(name)} is installed here")
    nox = (ROOT / "noxfile.py").read_text("utf-8")
    assert re.search(r'tags=\["ci", "tools"\]', nox), "CI does not run the tools sessions"


def test_a_sessions_row_counts_what_pytest_wrote_to_junit(pytester):
    """The row is read from pytest's own JUnit XML: a pass, a failure, a skip, a ledger
    xfail (counted for its entry), an unrelated xfail and a strict XPASS (a failure)."""
    pytester.makepyfile(test_row="""
        import pytest
        def test_pass(): pass
        def test_fail(): assert False
        def test_skip(): pytest.skip("no feature")
        @pytest.mark.xfail(strict=True, reason="known Keras defect some-entry (Keras <9): x")
        def test_known(): raise TypeError("defect")
        @pytest.mark.xfail(reason="other")
        def test_other(): raise ValueError()
        @pytest.mark.xfail(strict=True, reason="known Keras defect gone-entry (Keras <9): x")
        def test_xpass(): pass
    """)
    pytester.runpytest("-p", "no:randomly", "-p", "no:rnn", "--junitxml=out.xml")
    row = matrix.counts(pytester.path / "out.xml")
    assert {k: row[k] for k in ("passed", "failed", "errors", "skipped", "xfailed")} == {
        "passed": 1, "failed": 2, "errors": 0, "skipped": 1, "xfailed": 2}
    assert row["observed"] == {"some-entry": 1}
    assert row["seconds"] >= 0


#: The record's checks skip inside a matrix session: that run is producing the record.
in_a_matrix_session = pytest.mark.skipif(
    bool(os.environ.get(matrix.SESSION_VARIABLE)),
    reason="this run is a release-matrix session, which produces the record these tests check")


def _record() -> list[dict]:
    rows = matrix.load_record()
    assert rows, f"no release record at {matrix.RECORD}: run nox, then " \
                 "`python scripts/release_matrix.py collect --write`"
    return rows


@in_a_matrix_session
def test_the_record_has_a_green_row_for_every_release_of_the_matrix():
    """Know, not hope: each release of the matrix ran the whole fast suite with its
    TensorFlow, and nothing failed there but the ledger's strict xfails."""
    rows = {r["keras"]: r for r in _record()}
    missing = [s.keras for s in matrix.sessions() if s.keras not in rows]
    assert not missing, f"releases of the matrix never recorded: {missing} (run them with nox)"
    for s in matrix.sessions():
        row = rows[s.keras]
        assert row["tensorflow"] == s.tensorflow, (
            f"Keras {s.keras} was recorded on TensorFlow {row['tensorflow']}; the matrix runs "
            f'{s.tensorflow}: run nox -s "releases({s.id})" again')
        assert row["failed"] == 0 and row["errors"] == 0, (
            f"Keras {s.keras}: {row['failed']} failed, {row['errors']} errors in the record")
        assert row["passed"] > 500, f"Keras {s.keras}: only {row['passed']} passed"


def _session_id(row: dict) -> str:
    return matrix.Session(row["keras"], row["tensorflow"], row["role"]).id


@in_a_matrix_session
def test_each_rows_ledger_entries_are_the_ones_the_ledger_applies_today():
    """A ledger range edited after the run makes the row stale: run that release again."""
    for row in _record():
        today = [d.id for d in ledger.known_defects(row["keras"], backend="tensorflow")]
        assert row["applies"] == today, (
            f"Keras {row['keras']} was recorded with ledger entries {row['applies']}; the "
            f'ledger applies {today} now: run nox -s "releases({_session_id(row)})"')
        stray = set(row["observed"]) - set(today)
        assert not stray, f"Keras {row['keras']}: xfails naming entries outside it: {stray}"


@in_a_matrix_session
def test_readme_shows_the_record():
    page = matrix.PAGE.read_text("utf-8")
    block = repo_scripts.load("readme_block").block(matrix.BLOCK, matrix.table(_record()))
    assert block in page, (
        "docs/reference/releases.md's release table is not the record's: run "
        "`python scripts/release_matrix.py table --write`")
