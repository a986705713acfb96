"""Every Python snippet of README.md and of the docs site (docs/**/*.md) runs as written: a
snippet that defines tests (``def test_...`` or a ``class Test...``) passes in a pytest run
of its own with the plugin, any other snippet runs as a script. A snippet that needs
something it does not define fails here, so each is self-contained; a failure names the
snippet by file and line. (tests/test_docs.py checks the other code blocks.)"""

from __future__ import annotations

import importlib
import re
import textwrap

import pytest
from test_docs import DOC_FILES, ROOT, code_blocks


def snippets(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of each ```python block."""
    return [(line, code) for line, lang, code in code_blocks(text) if lang == "python"]


#: ``(file, line, code)`` of every Python snippet of README.md and docs/.
SNIPPETS = [(path.relative_to(ROOT).as_posix(), line, code) for path in DOC_FILES
            for line, code in snippets(path.read_text(encoding="utf-8"))]


def defines_tests(code: str) -> bool:
    return bool(re.search(r"^(def test_\w+|class Test\w+)", code, re.M))


@pytest.fixture(scope="module")
def frameworks():
    """Keras and TensorFlow imported before pytester snapshots sys.modules (an in-process
    run drops the modules imported after its snapshot). So are the modules of pytest-rnn's
    public names and the baseline machinery ``rnn_baseline`` imports on first use: dropped
    after a snippet's in-process run, they would be imported anew by the next one while
    ``pytest_rnn`` keeps the names it resolved from the old ones (and the plugin's hooks
    the old baseline session key, so a later run's baselines would never be written)."""
    keras = pytest.importorskip("keras")
    import pytest_rnn

    for module in sorted({*pytest_rnn._EXPORTS.values(), "pytest_rnn.checks.models",
                          "pytest_rnn.plugin.baselines"}):
        importlib.import_module(module)
    return keras


def test_the_docs_have_snippets_and_the_finder_sees_them():
    assert len(SNIPPETS) >= 8
    assert any(file == "README.md" for file, _, _ in SNIPPETS)
    assert snippets("text\n```python\nx = 1\n```\n") == [(2, "x = 1\n")]


def _param(file: str, line: int, code: str):
    """A snippet running a whole layer contract (every contract test, the cross-backend one
    in subprocesses) belongs to the slow suite."""
    contract = "(RecurrentLayerContract)" in code
    return pytest.param(file, line, code, id=f"{file}:{line}",
                        marks=[pytest.mark.slow] if contract else [])


@pytest.mark.parametrize(("file", "line", "code"), [_param(*s) for s in SNIPPETS])
def test_snippet_runs_as_written(file, line, code, frameworks, pytester):
    if defines_tests(code):
        pytester.makepyfile(test_snippet=code)
        args = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", "-q")
        if "rnn_baseline" in code:  # a baseline is recorded first, as the docs say to
            pytester.runpytest_inprocess(*args, "--rnn-update-baselines").assert_outcomes(
                passed=1)
        result = pytester.runpytest_inprocess(*args)
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) >= 1 and not (
            outcomes.keys() & {"failed", "errors", "error"}), (
            f"{file} line {line}: the snippet's tests did not all pass: {outcomes}\n"
            + textwrap.indent(result.stdout.str()[-3000:], "  "))
    else:
        exec(compile(code, f"{file}:{line}", "exec"), {"__name__": "readme_snippet"})
