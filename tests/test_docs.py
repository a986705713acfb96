"""The documentation: README.md (the landing page) and the MkDocs site under docs/.

Every fenced code block is checked as far as it can be without running what it runs
(tests/test_readme_snippets.py runs the Python ones): a shell block's ``pytest`` options
are ones that pytest, pytest-rnn, pytest-benchmark or pytest-xdist register, its ``-m``
markers and ``-o`` ini keys exist, each ``python -m X`` module is importable, each
``python path.py`` exists, each extra of a ``pip install pytest-rnn[...]`` is declared;
YAML, TOML and JSON blocks parse. A failure names the block by file and line. Beside
them: the pages the scripts generate are current, every page is in the site's nav,
README's links resolve, and README stays a landing page with CI's install and test
commands first in its Quick start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import textwrap
from functools import cache
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: README and every page of the site, as paths relative to the repository root.
DOC_FILES = [README, *sorted(DOCS.rglob("*.md"))]
#: The most lines README may have: a landing page, the rest is in docs/.
README_MAX_LINES = 250

SHELL = {"bash", "sh", "shell", "console"}
CHECKED = SHELL | {"python", "yaml", "yml", "toml", "json", "text"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)"
                    r"^(?P=indent)```[ \t]*$", re.M | re.S)


def code_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of each fenced block, ``line`` the opening fence's
    (1-based); a block indented under a list item is dedented."""
    found = []
    for match in _FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "".join(line[indent:] for line in match.group("body").splitlines(True))
        found.append((text.count("\n", 0, match.start()) + 1, match.group("lang").lower(),
                      body))
    return found


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def blocks(*languages: str) -> list[tuple[str, int, str]]:
    """``(file, line, code)`` of every block of ``languages`` in README and docs/."""
    return [(name(path), line, code) for path in DOC_FILES
            for line, lang, code in code_blocks(path.read_text("utf-8")) if lang in languages]


def _params(*languages: str):
    return [pytest.param(f, n, c, id=f"{f}:{n}") for f, n, c in blocks(*languages)]


# --- what pytest and the project accept, read once ---------------------------------------


@cache
def pytest_help() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """``(options, ini keys, markers)`` that pytest registers with every installed plugin
    (pytest-rnn, pytest-benchmark, pytest-xdist, ...), from ``pytest --help`` and ``pytest
    --markers`` run outside this repository (its ini file adds nothing of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_ADDOPTS")}
    with tempfile.TemporaryDirectory() as empty:  # both at once: each is a fresh pytest
        procs = [subprocess.Popen([sys.executable, "-m", "pytest", what, "-p",
                                   "no:cacheprovider"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, cwd=empty)
                 for what in ("--help", "--markers")]
        (help_text, help_err), (marker_text, marker_err) = [p.communicate() for p in procs]
    for proc, err in zip(procs, (help_err, marker_err), strict=True):
        assert proc.returncode == 0, f"{proc.args} failed:\n{err}"

    options: set[str] = set()
    ini: set[str] = set()
    in_ini = False
    for line in help_text.splitlines():
        if line.startswith("[pytest]"):  # "ini-options" or "configuration options"
            in_ini = True
        elif line and not line.startswith(" "):
            in_ini = False
        spec = re.split(r"\s{2,}", line.strip())[0]
        if in_ini:
            key = re.match(r"^  (\w+) \(", line)
            if key:
                ini.add(key.group(1))
        elif spec.startswith("-"):
            options.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", spec))
    markers = set(re.findall(r"^@pytest\.mark\.(\w+)", marker_text, re.M))
    return frozenset(options), frozenset(ini), frozenset(markers)


@cache
def extras() -> frozenset[str]:
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs tomllib (Python >= 3.11)")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return frozenset(project["optional-dependencies"])


@cache
def nox_sessions() -> frozenset[str]:
    import repo_scripts

    matrix = repo_scripts.load("release_matrix")
    return frozenset(s.keras for s in matrix.sessions())


# --- shell blocks --------------------------------------------------------------------------

_KEYWORDS = {"do", "then", "else", "time", "!"}
_OPERATORS = {";", "&&", "||", "|", "&", ";;"}


def commands(code: str) -> list[tuple[int, list[str]]]:
    """``(line within the block, argv)`` of each simple command of a shell block: lines
    joined at a trailing backslash, comments dropped, split at ``;``, ``&&``, ``||`` and
    ``|``, leading ``VAR=value`` assignments and ``do``/``then`` removed, ``for``/``while``
    headers, ``done`` and ``fi`` skipped."""
    found = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] = []
        for token in [*lexer, ";"]:
            if token not in _OPERATORS:
                argv.append(token)
                continue
            while argv and (argv[0] in _KEYWORDS or re.match(r"^[A-Za-z_]\w*=", argv[0])):
                argv.pop(0)
            if argv and argv[0] not in {"for", "while", "if", "done", "fi", "esac"}:
                found.append((start + 1, argv))
            argv = []
    return found


def pytest_problems(args: list[str]) -> list[str]:
    """What is wrong with the arguments of one ``pytest`` command."""
    options, ini, markers = pytest_help()
    problems = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        flag = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if flag not in options:
            problems.append(f"pytest has no option {flag}")
            continue
        value = arg.split("=", 1)[1] if "=" in arg else (
            arg[2:] if not arg.startswith("--") and len(arg) > 2 else None)
        takes_value = flag in {"-m", "-o", "--override-ini", "-k", "-p", "-n", "-r", "--dist",
                               "--tx", "--rnn-seed", "--rnn-imdb-path", "--rnn-baselines",
                               "--rnn-calibrate", "--rnn-report", "--html",
                               "--benchmark-json", "--benchmark-storage", "--durations",
                               "--randomly-seed", "--junitxml"}
        if takes_value and value is None and i < len(args):
            value = args[i]
            i += 1
        if flag == "-m" and value is not None:
            unknown = set(re.findall(r"\w+", value)) - {"and", "or", "not"} - markers
            problems += [f"-m names no registered marker {m!r}" for m in sorted(unknown)]
        if flag in {"-o", "--override-ini"} and value is not None:
            key = value.split("=", 1)[0]
            if key not in ini:
                problems.append(f"-o names no ini key {key!r}")
    return problems


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with one command of a shell block, as far as it can be told without
    running it."""
    head, args = argv[0], argv[1:]
    if head in {"python", "python3"} or head.endswith("/python"):
        if args[:1] == ["-m"] and len(args) > 1:
            module, rest = args[1], args[2:]
            if module == "pytest":
                return pytest_problems(rest)
            if module == "pip":
                return command_problems(["pip", *rest])
            if importlib.util.find_spec(module) is None:
                return [f"python -m {module}: no module {module!r} is importable"]
            return []
        script = next((a for a in args if not a.startswith("-")), None)
        if script and script.endswith(".py") and not (ROOT / script).is_file():
            return [f"python {script}: no such file in the repository"]
        return []
    if head == "pytest":
        return pytest_problems(args)
    if head == "pip" and args[:1] == ["install"]:
        problems = []
        for requirement in args[1:]:
            match = re.match(r"^(pytest-rnn|pytest_rnn|\.)\[([\w,\s-]+)\]$", requirement)
            if match:
                problems += [f"pip install {requirement}: pyproject.toml declares no extra "
                             f"{extra!r}" for extra in re.split(r"\s*,\s*", match.group(2))
                             if extra not in extras()]
        return problems
    if head == "nox":
        problems = []
        for flag, value in zip(args, args[1:], strict=False):
            keras = re.match(r"^releases\(keras='([^']+)'\)$", value)
            if flag == "-s" and keras and keras.group(1) != "X" \
                    and keras.group(1) not in nox_sessions():
                problems.append(f"nox -s {value}: the release matrix has no Keras "
                                f"{keras.group(1)}")
        if "--" in args:
            problems += pytest_problems(args[args.index("--") + 1:])
        return problems
    return []


def test_the_block_finder_sees_fenced_and_indented_blocks():
    text = "a\n```bash\npytest -q\n```\n* item\n\n    ```yaml\n    a: 1\n    ```\n"
    assert code_blocks(text) == [(2, "bash", "pytest -q\n"), (7, "yaml", "a: 1\n")]
    assert commands("KERAS_BACKEND=jax pytest -m 'not slow'  # a comment\n"
                    "for n in 1 2; do\n  pytest -x \\\n    --rnn-seed=$n\ndone\n") == [
        (1, ["pytest", "-m", "not slow"]), (3, ["pytest", "-x", "--rnn-seed=$n"])]


def test_the_checker_finds_what_is_wrong():
    assert pytest_problems(["-m", "not slow", "-n", "auto", "--rnn-report", "r.html",
                            "--benchmark-only", "-p", "no:xdist", "-rs"]) == []
    assert pytest_problems(["--rnn-sed", "1", "-m", "sloow", "-o", "nope=1"]) == [
        "pytest has no option --rnn-sed", "-m names no registered marker 'sloow'",
        "-o names no ini key 'nope'"]
    assert command_problems(["python", "-m", "pytest_rnn.nope"])
    assert command_problems(["python", "scripts/nope.py"])
    assert command_problems(["pip", "install", "pytest-rnn[tensorflw]"])
    assert not command_problems(["python", "-m", "pip", "install", "-e", ".[dev]"])


def test_every_block_has_a_checked_language():
    """A block in a language nothing checks would go unchecked: name one of these."""
    unknown = [f"{name(p)}:{line}: ```{lang or '(none)'}" for p in DOC_FILES
               for line, lang, _ in code_blocks(p.read_text("utf-8")) if lang not in CHECKED]
    assert not unknown, f"code blocks in languages no test checks ({sorted(CHECKED)}): {unknown}"


@pytest.mark.parametrize(("file", "line", "code"), _params(*SHELL))
def test_shell_block_uses_options_modules_and_scripts_that_exist(file, line, code):
    problems = [f"{file}:{line + offset}: {problem}" for offset, argv in commands(code)
                for problem in command_problems(argv)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("file", "line", "code"), _params("yaml", "yml"))
def test_yaml_block_parses(file, line, code):
    yaml = pytest.importorskip("yaml")
    try:
        yaml.safe_load(code)
    except yaml.YAMLError as error:
        pytest.fail(f"{file}:{line}: the YAML block does not parse: {error}")


@pytest.mark.parametrize(("file", "line", "code"), _params("toml", "json"))
def test_toml_and_json_blocks_parse(file, line, code):
    if tomllib is None:
        pytest.skip("tomllib needs Python >= 3.11")
    try:
        tomllib.loads(code) if code.lstrip()[:1] not in "{[" else json.loads(code)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        pytest.fail(f"{file}:{line}: the block does not parse: {error}")


# --- README: the landing page --------------------------------------------------------------


def test_readme_is_a_landing_page_whose_quick_start_starts_with_cis_commands():
    """CI installs the project exactly as README says and runs README's test command."""
    text = README.read_text("utf-8")
    lines = len(text.splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, over {README_MAX_LINES}: move the detail to docs/")
    section = text[text.index("\n## Quick start\n"):]
    section = section[:section.index("\n## ", 1)]
    first = code_blocks(section)[0]
    assert first[1:] == ("bash", 'python -m pip install -e ".[dev]"\npytest -m "not slow"\n'), (
        "README's Quick start must open with CI's install and test commands")
    assert "On a fresh machine those two commands pass" in section


def test_readme_links_resolve():
    """README's links into docs/ are relative, so they work on GitHub too."""
    text = README.read_text("utf-8")
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        if not (ROOT / path).exists():
            missing.append(target)
        elif anchor and path.endswith(".md"):
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text("utf-8"), re.M)
            if anchor not in {_slug(h) for h in headings}:
                missing.append(target)
    assert not missing, f"README.md links to what does not exist: {missing}"


def _slug(heading: str) -> str:
    """Python-Markdown's default heading id."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


# --- the site ------------------------------------------------------------------------------


def test_every_page_is_in_the_site_nav():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    assert config["docs_dir"] == "docs" and config["theme"]["name"] == "material"

    def pages(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        return [p for value in node.values() for p in pages(value)]

    in_nav = pages(config["nav"])
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(in_nav) == on_disk, (
        f"pages not in mkdocs.yml's nav: {sorted(set(on_disk) - set(in_nav))}; "
        f"nav entries with no page: {sorted(set(in_nav) - set(on_disk))}")


def test_docs_links_stay_inside_the_site():
    """``mkdocs build --strict`` cannot follow a relative link out of docs/; a repository
    file outside it is named as a code path instead."""
    outside = []
    for path in sorted(DOCS.rglob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text("utf-8")):
            if re.match(r"^([a-z]+:|#)", target):
                continue
            resolved = (path.parent / target.partition("#")[0]).resolve()
            if not resolved.is_relative_to(DOCS.resolve()):
                outside.append(f"{name(path)}: {target}")
    assert not outside, f"links out of docs/: {outside}"


def test_api_reference_page_lists_the_names_of_the_code():
    """The API page's mkdocstrings blocks name every export, model helper and fixture
    (``python scripts/api_reference.py --write`` regenerates them; mkdocstrings renders
    each one's signature and docstring from the code)."""
    import repo_scripts

    api = repo_scripts.load("api_reference")
    readme_block = repo_scripts.load("readme_block")
    generated = readme_block.block(api.BLOCK, api.reference())
    page = api.PAGE.read_text("utf-8")
    if generated not in page:
        import difflib

        start, end = (page.index(m) for m in readme_block.markers(api.BLOCK))
        diff = difflib.unified_diff(page[start:end].splitlines(), generated.splitlines(),
                                    name(api.PAGE), "generated", lineterm="", n=0)
        pytest.fail(f"{name(api.PAGE)} is stale: run `python scripts/api_reference.py "
                    "--write`\n" + "\n".join(list(diff)[:12]))
    import pytest_rnn

    listed = set(re.findall(r"^        - (\w+)$", generated, re.M))
    assert set(pytest_rnn._EXPORTS) <= listed
    assert {"build_random", "rnn_baseline", "rnn_seed"} <= listed


def test_measured_figures_carry_no_code_comment():
    """Measured durations belong in the text, with the date and machine they were measured
    on, or in a data file the docs render; a code comment carries neither."""
    timed = re.compile(r"#.*\b\d+(\.\d+)?\s*(s|min|minutes|seconds)\b")
    found = [f"{f}:{n}: {line.strip()}" for f, n, code in blocks(*SHELL, "python")
             for line in code.splitlines() if timed.search(line)]
    assert not found, "\n".join(found)


def test_the_docs_ci_step_builds_the_site():
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert 'mkdocs build --strict --site-dir "$(mktemp -d)"' in ci
    assert ci.index("mkdocs build") < ci.index("python -m pip install nox")


if __name__ == "__main__":  # pragma: no cover - a quick listing while editing the docs
    for file, line, code in blocks(*SHELL):
        for offset, argv in commands(code):
            print(f"{file}:{line + offset}: {' '.join(argv)}",
                  textwrap.indent("\n".join(command_problems(argv)), "    "))
