"""The known-defects ledger: its file, its matching rules, and what a run makes of it.

The ledger (pytest_rnn/ledger.json) turns the tests that observe a known Keras defect
into strict expected failures on exactly the affected releases. These tests pin the
three promises that makes: an observed defect is an xfail naming its reference, a
release without it (an unexpected pass) is red, and a failure the ledger does not list
(another test, another release, another exception) stays a failure.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import json
import re
from pathlib import Path

import collected
import pytest
import repo_scripts
from regressions import wording
from regressions.judge import GENERIC_MESSAGES

from pytest_rnn.runtime import ledger
from pytest_rnn.runtime.versions import package_version

ROOT = Path(__file__).resolve().parents[1]


def entry(**overrides) -> dict:
    base = {"id": "probe", "keras": ">=0", "differs": "probe differs",
            "reference": "keras-team/keras#1", "verified": "by this test",
            "tests": ["test_probe.py::test_observed"], "raises": "AssertionError",
            "match": "the defect"}
    return {**base, **overrides}


# --- the shipped file -------------------------------------------------------------------------


def test_shipped_ledger_is_valid_and_declared_as_package_data():
    defects = ledger.load()
    assert defects, "the ledger is empty"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    shipped = (r'\[tool\.setuptools\.package-data\](?:\s*#[^\n]*)*\s*'
               r'pytest_rnn\s*=\s*\[[^\]]*"ledger\.json"')
    assert re.search(shipped, pyproject), (
        "pyproject.toml does not ship pytest_rnn/ledger.json as package data"
    )


def _test_names(path: Path) -> set[str]:
    """'test_fn' and 'Class::test_fn' for every test function in ``path``."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{f.name}" for f in node.body
                         if isinstance(f, ast.FunctionDef))
            # a contract class inherits its tests: any test_* name of the file's bases
            names.add(f"{node.name}::*")
    return names


@pytest.mark.parametrize("defect", ledger.load(), ids=lambda d: d.id)
def test_each_ledger_pattern_names_an_existing_test(defect):
    """A renamed or deleted test would leave its entry matching nothing, silently."""
    for pattern in defect.tests:
        path, _, name = pattern.partition("::")
        assert (ROOT / path).is_file(), f"{defect.id}: {path} does not exist"
        name = name.split("[", 1)[0]
        names = _test_names(ROOT / path)
        cls = name.split("::")[0] + "::*"
        assert name in names or cls in names, f"{defect.id}: no test {name} in {path}"


def test_each_ledger_pattern_matches_a_collected_test(request, pytester):
    """Down to the parametrize id: a renamed parameter leaves an entry matching nothing,
    and its defect would turn red (or, worse, pass unnoticed) with no word why."""
    files = sorted({p.split("::", 1)[0] for d in ledger.load() for p in d.tests})
    ids = collected.nodeids(files, request.config, pytester)
    assert ids, f"nothing collected from {files}"
    dangling = [f"{d.id}: {p}" for d in ledger.load() for p in d.tests
                if not any(ledger.selects(p, n) for n in ids)]
    assert not dangling, "ledger patterns that match no collected test:\n  " + "\n  ".join(
        dangling)


def test_each_match_finds_its_wording_in_a_template_or_its_record():
    """A reworded message would leave an entry's ``match`` explaining nothing, and its
    observing tests red with no word why: every way of matching it quotes wording some
    template of pytest_rnn/ or suites/ produces, the exception text its ``differs``
    records, or wording regressions.wording.EXEMPT_WORDING names (another library's)."""
    found = [f"{d.id}: /{d.match}/: {run!r}" for d in ledger.load()
             for run in wording.unworded(d.match, recorded=d.differs)]
    assert not found, (
        "ledger patterns quoting wording no template produces (reworded? or another "
        "library's: record it in the entry's differs, or add it to EXEMPT_WORDING with the "
        "reason):\n  " + "\n  ".join(found))


@pytest.mark.parametrize("defect", ledger.load(), ids=lambda d: d.id)
def test_each_entry_pins_an_exception_and_a_message_no_generic_failure_gives(defect):
    assert "Exception" not in defect.raises and "BaseException" not in defect.raises, (
        f"{defect.id}: raises {defect.raises} accepts any exception")
    generic = [m for m in GENERIC_MESSAGES if defect.explains(m)]
    assert not generic, f"{defect.id}: match /{defect.match}/ also explains {generic}"


def _exception(name: str) -> type:
    """The class ``name`` names (its package imported, where it is installed)."""
    if "." not in name:
        return getattr(builtins, name)
    module, _, attr = name.rpartition(".")
    obj = importlib.import_module(module.split(".")[0])
    for part in module.split(".")[1:] + [attr]:
        obj = getattr(obj, part)
    return obj


def test_raises_names_resolve():
    """Each ``raises`` names a real exception class where its package is installed (the
    plugin matches them by name, so a typo would never match)."""
    for defect in ledger.load():
        for name in defect.raises:
            top = name.split(".")[0] if "." in name else "builtins"
            if top == "builtins" or importlib.util.find_spec(top):
                assert issubclass(_exception(name), BaseException), defect.id


# --- matching rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "version", "affected"), [
    (">=3.0,<3.2", "3.0.0", True),
    (">=3.0,<3.2", "3.1.1", True),
    (">=3.0,<3.2", "3.2.0", False),
    (">=3.0,<3.2", "2.15.0", False),
    (">=3.8.0", "3.15.1", True),
    (">=3.8.0", "3.10.0rc1", True),
    (">=3.8.0", None, False),
    (">=3.8.0", "not-a-version", False),
])
def test_affected_range_is_a_pep440_specifier(spec, version, affected):
    (defect,) = ledger.parse([entry(keras=spec)])
    assert defect.affects(version) is affected


def test_star_is_the_only_wildcard_and_brackets_match_literally():
    (defect,) = ledger.parse([entry(tests=["a.py::test_x[*-lstm]", "a.py::C::test_y"])])
    assert defect.observed_by("a.py::test_x[gru-lstm]")
    assert not defect.observed_by("a.py::test_x[gru-gru]")
    assert not defect.observed_by("a.py::test_xl")
    assert defect.observed_by("a.py::C::test_y")
    assert not defect.observed_by("a.py::C::test_y2")
    assert not defect.observed_by("b/a.py::C::test_y")


@pytest.mark.parametrize(("data", "message"), [
    ({"id": "x"}, "missing fields"),
    ([entry(extra=1)], r"unknown fields \['extra'\]"),
    ([entry(keras="3.0 to 3.2")], "not a PEP 440 specifier"),
    ([entry(tests=[])], "non-empty list of node ids"),
    ([entry(tests=["test_probe.py"])], "non-empty list of node ids"),
    ([entry(), entry()], "appears twice"),
    ([entry(raises=["ValueError", 3])], "raises must be an exception name or a list"),
    ([entry(backends=["theano"])], r"backends must be a non-empty list of Keras backends"),
    ([entry(backends=[])], r"backends must be a non-empty list of Keras backends"),
    ([entry(match="(unclosed")], r"match must be a regular expression .*'\(unclosed'"),
    ([entry(match=3)], r"match must be a regular expression"),
    ([entry(match="")], r"match must be a regular expression"),
    ([{k: v for k, v in entry().items() if k != "raises"}], r"missing fields \['raises'\]"),
    ([{k: v for k, v in entry().items() if k != "match"}], r"missing fields \['match'\]"),
    ([entry(raises=[])], "raises must be an exception name or a list"),
    (["x"], "must be an object"),
])
def test_a_malformed_ledger_says_which_entry_and_field(data, message):
    if isinstance(data, dict):
        data = [data]
    with pytest.raises(ledger.LedgerError, match=message):
        ledger.parse(data)
    with pytest.raises(ledger.LedgerError, match="must be a JSON list"):
        ledger.parse({"entries": data})


def test_known_defects_selects_by_release():
    defects = ledger.parse([entry(id="old", keras="<3.2"), entry(id="new", keras=">=3.8")])
    assert [d.id for d in ledger.known_defects("3.1.1", defects)] == ["old"]
    assert [d.id for d in ledger.known_defects("3.9.0", defects)] == ["new"]
    assert ledger.known_defects("3.3.3", defects) == []


def test_a_one_backend_entry_affects_only_its_backends():
    defects = ledger.parse([entry(id="everywhere"), entry(id="jax-scan", backends=["jax"]),
                            entry(id="torch-loop", backends=["torch"])])
    found = {b: [d.id for d in ledger.known_defects("3.15.1", defects, backend=b)]
             for b in ("tensorflow", "jax", "torch")}
    assert found == {"tensorflow": ["everywhere"], "jax": ["everywhere", "jax-scan"],
                     "torch": ["everywhere", "torch-loop"]}
    assert "(Keras >=0 on jax)" in defects[1].reason


def test_the_backend_defaults_to_the_one_keras_will_use(monkeypatch):
    defects = ledger.parse([entry(id="jax-scan", backends=["jax"])])
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert [d.id for d in ledger.known_defects("3.15.1", defects)] == ["jax-scan"]
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert ledger.known_defects("3.15.1", defects) == []


# --- in a run ---------------------------------------------------------------------------------

PROBE = """
import pytest


def test_observed():
    assert 1 == 2, "the defect"


def test_observed_but_fixed():
    pass


def test_observed_other_exception():
    raise KeyError("not the listed failure")


def test_unlisted():
    assert 1 == 2, "an unlisted difference"


def test_outside_range():
    assert 1 == 2, "listed for other releases only"


def test_observed_with_its_message():
    raise ValueError("batch size 3 differs from the built 2")


def test_observed_type_other_message():
    raise ValueError("could not convert string to float")
"""


def test_run_xfails_observed_defects_strictly_and_fails_everything_else(pytester, monkeypatch):
    installed = package_version("keras")
    defects = ledger.parse([
        entry(id="probe-defect", tests=["test_probe.py::test_observed",
                                        "test_probe.py::test_observed_but_fixed"]),
        entry(id="probe-raises", tests=["test_probe.py::test_observed_other_exception"]),
        entry(id="probe-other-releases", keras="<0.1", differs="never installed",
              tests=["test_probe.py::test_outside_range"]),
        entry(id="probe-match", raises="ValueError", match=r"batch size \d+ differs",
              tests=["test_probe.py::test_observed_with_its_message",
                     "test_probe.py::test_observed_type_other_message"]),
    ])
    monkeypatch.setattr(ledger, "load", lambda: defects)
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_inprocess("-rfx", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=5, xfailed=2)
    result.stdout.fnmatch_lines([
        f"pytest-rnn: known recurrent-layer defects of Keras {installed} on * (3 of 4 ledger*",
        "pytest-rnn:   probe-defect: probe differs",
        "pytest-rnn:   probe-raises: probe differs",
    ])
    assert "probe-other-releases" not in result.stdout.str()
    for line in ["FAILED test_probe.py::test_observed_but_fixed*",
                 "FAILED test_probe.py::test_observed_other_exception*",
                 "*known Keras defect probe-raises (AssertionError) expects that exception; "
                 "this test raised *",
                 "FAILED test_probe.py::test_unlisted*",
                 "FAILED test_probe.py::test_outside_range*",
                 "FAILED test_probe.py::test_observed_type_other_message*",
                 "XFAIL test_probe.py::test_observed_with_its_message - known Keras defect "
                 "probe-match*",
                 "*known Keras defect probe-match (/batch size "
                 r"\d+ differs/) expects a failure matching its pattern; this ValueError says: "
                 "could not convert string to float",
                 "XFAIL test_probe.py::test_observed - known Keras defect probe-defect "
                 "(Keras >=0): probe differs [[]keras-team/keras#1[]]"]:
        result.stdout.fnmatch_lines([line])  # each on its own: pytest orders them its way
    assert "[XPASS(strict)] known Keras defect probe-defect" in result.stdout.str()


def test_header_says_when_the_installed_release_has_no_listed_defect(pytester, monkeypatch):
    monkeypatch.setattr(ledger, "load", lambda: ledger.parse([entry(keras="<0.1")]))
    pytester.makepyfile(test_probe="def test_ok():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-rnn: known recurrent-layer defects of Keras * on *: none "
                                 "in the ledger (1 entries)"])


# --- README --------------------------------------------------------------------------------


def test_readme_table_is_the_one_generated_from_the_ledger():
    module = repo_scripts.load("ledger_table")
    page = module.PAGE.read_text(encoding="utf-8")
    generated = module.table(json.loads((ROOT / "pytest_rnn" / "ledger.json").read_text()))
    assert repo_scripts.load("readme_block").block(module.BLOCK, generated) in page, (
        "docs/reference/ledger.md's ledger table is stale: run "
        "`python scripts/ledger_table.py --write`"
    )


def test_raised_as_judges_an_exception_by_its_package_without_importing_it():
    """A ledger's ``raises`` name is matched against the raised exception's classes by name
    and package, so a JAX-only environment never imports TensorFlow to resolve one."""
    from pytest_rnn.plugin.ledger import raised_as

    # defined deep in its package, named by the package's public path (as TensorFlow's are)
    fake = type("InvalidArgumentError", (Exception,), {"__module__": "fakeflow.framework.impl"})
    assert raised_as(fake("x"), "fakeflow.errors.InvalidArgumentError")
    assert not raised_as(fake("x"), "otherflow.errors.InvalidArgumentError")
    assert not raised_as(ValueError("x"), "fakeflow.errors.InvalidArgumentError")
    assert raised_as(KeyError("x"), "LookupError") and not raised_as(KeyError("x"), "ValueError")
