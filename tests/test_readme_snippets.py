"""Every Python snippet of README.md runs as written: a snippet that defines tests (``def
test_...`` or a ``class Test...``) passes in a pytest run of its own with the plugin, any
other snippet runs as a script. A snippet that needs something it does not define fails
here, so each is self-contained."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def snippets(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of each ```python block."""
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S):
        found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


SNIPPETS = snippets(README.read_text(encoding="utf-8"))


def defines_tests(code: str) -> bool:
    return bool(re.search(r"^(def test_\w+|class Test\w+)", code, re.M))


@pytest.fixture(scope="module")
def frameworks():
    """Keras and TensorFlow imported before pytester snapshots sys.modules (an in-process
    run drops the modules imported after its snapshot)."""
    return pytest.importorskip("keras")


def test_the_readme_has_snippets_and_the_finder_sees_them():
    assert len(SNIPPETS) >= 8
    assert snippets("text\n```python\nx = 1\n```\n") == [(2, "x = 1\n")]


def _param(line: int, code: str):
    """A snippet running a whole layer contract (every contract test, the cross-backend one
    in subprocesses) belongs to the slow suite."""
    contract = "(RecurrentLayerContract)" in code
    return pytest.param(line, code, id=f"line{line}",
                        marks=[pytest.mark.slow] if contract else [])


@pytest.mark.parametrize(("line", "code"), [_param(n, c) for n, c in SNIPPETS])
def test_snippet_runs_as_written(line, code, frameworks, pytester):
    if defines_tests(code):
        pytester.makepyfile(test_snippet=code)
        args = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:xdist", "-q")
        if "rnn_baseline" in code:  # a baseline is recorded first, as README says to
            pytester.runpytest_inprocess(*args, "--rnn-update-baselines").assert_outcomes(
                passed=1)
        result = pytester.runpytest_inprocess(*args)
        outcomes = result.parseoutcomes()
        assert outcomes.get("passed", 0) >= 1 and not (
            outcomes.keys() & {"failed", "errors", "error"}), (
            f"README.md line {line}: the snippet's tests did not all pass: {outcomes}\n"
            + textwrap.indent(result.stdout.str()[-3000:], "  "))
    else:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme_snippet"})


def test_readme_api_reference_is_the_one_generated_from_the_code(frameworks):
    """Every public helper is documented with its signature (``python
    scripts/api_reference.py --write`` regenerates it)."""
    import repo_scripts

    api = repo_scripts.load("api_reference")
    block = repo_scripts.load("readme_block").block(api.BLOCK, api.reference())
    readme = README.read_text(encoding="utf-8")
    if block not in readme:
        import difflib

        start, end = (readme.index(m) for m in repo_scripts.load("readme_block").markers(
            api.BLOCK))
        diff = difflib.unified_diff(readme[start:end].splitlines(), block.splitlines(),
                                    "README.md", "generated", lineterm="", n=0)
        pytest.fail("README.md's API reference is stale: run `python "
                    "scripts/api_reference.py --write`\n" + "\n".join(list(diff)[:12]))
    assert "`build_random(layer" in block and "`rnn_baseline` (fixture)" in block
