"""The package's shape: public names, lazy subpackages, the first release's module paths,
and the direction of imports between subpackages."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import source_trees

import pytest_rnn

PACKAGE = Path(pytest_rnn.__file__).parent
#: subpackage -> the subpackages it may import (the architecture's one-way flow).
#: ``adapters`` (other packages' internals) is the bottom layer: anything may use it.
ALLOWED_IMPORTS = {
    "adapters": set(),
    "runtime": {"adapters"},
    "store": set(),
    "checks": {"runtime", "backends", "adapters"},
    "backends": {"runtime", "adapters"},
    "data": {"runtime", "checks", "backends", "adapters"},
    "bench": {"runtime", "store", "checks", "backends", "adapters"},
    "plugin": {"runtime", "store", "checks", "data", "bench", "backends", "adapters"},
}
HEAVY = ("tensorflow", "keras", "jax", "torch")


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_and_subpackage_access_import_no_framework():
    heavy = _run(
        "import json, sys, pytest_rnn\n"
        "pytest_rnn.data.load_imdb_subset, pytest_rnn.data.tasks.make_task\n"
        "pytest_rnn.store.read_baseline_file, pytest_rnn.runtime.versions.versions()\n"
        "pytest_rnn.bench, pytest_rnn.checks\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    assert heavy == []


def test_public_names_resolve_to_their_modules():
    for name, module in pytest_rnn._EXPORTS.items():
        assert getattr(pytest_rnn, name) is getattr(importlib.import_module(module), name), name
    assert set(pytest_rnn.__all__) == set(pytest_rnn._EXPORTS)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        pytest_rnn.nope  # noqa: B018


@pytest.mark.parametrize("old", sorted(pytest_rnn._MOVED))
def test_first_release_module_paths_are_the_same_modules(old):
    assert importlib.import_module(old) is importlib.import_module(pytest_rnn._MOVED[old])
    leaf = old.rsplit(".", 1)[1]
    assert getattr(pytest_rnn, leaf) is importlib.import_module(pytest_rnn._MOVED[old])


def test_documented_paths_work():
    """Every ``pytest_rnn.x.y`` path README.md and the docs pages name exists."""
    readme = "\n".join(p.read_text(encoding="utf-8") for p in [
        PACKAGE.parent / "README.md", *sorted((PACKAGE.parent / "docs").rglob("*.md"))])
    import re

    paths = sorted(set(re.findall(r"pytest_rnn(?:\.[A-Za-z_][A-Za-z0-9_]*)+", readme)))
    assert paths, "README and docs/ name no pytest_rnn path"
    missing = []
    for path in paths:
        parts = path.split(".")
        obj = pytest_rnn
        for part in parts[1:]:
            try:
                obj = getattr(obj, part)
            except AttributeError:
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{part}")
                except (ImportError, AttributeError):
                    missing.append(path)
                    break
    assert not missing, f"README or docs/ name paths that do not exist: {missing}"


def _imports_of(path: Path) -> set[str]:
    tree = source_trees.tree(path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "pytest_rnn."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith("pytest_rnn.")}
    return found


def test_imports_flow_one_way_between_subpackages():
    wrong = []
    for sub, allowed in ALLOWED_IMPORTS.items():
        folder = PACKAGE / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            bad = _imports_of(path) - allowed - {sub}
            if bad:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not wrong, "imports against the architecture's direction:\n" + "\n".join(wrong)


def test_only_the_plugin_imports_pytest():
    """The store, runtime and data work without pytest (pytest-benchmark's storage rule).
    ``checks.contract`` is a pytest test class by design."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("plugin/") or rel == "checks/contract.py":
            continue
        tree = source_trees.tree(path)
        top_level = {a.name for node in tree.body if isinstance(node, ast.Import)
                     for a in node.names}
        top_level |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)
                      and node.module}
        if "pytest" in top_level:
            offenders.append(rel)
    assert not offenders, f"modules outside plugin/ that import pytest: {offenders}"


def test_no_import_circles_between_modules():
    """No module of pytest_rnn imports, directly or through others, a module that imports
    it: counting module-level and function-level ``import``/``from ... import`` statements
    (``from package import name`` is the submodule ``package.name`` where there is one,
    else ``package``; the first release's module paths count as their new homes).
    Each circle is reported once, as ``a -> b -> a`` from its first module by name."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(source_trees.tree(path)):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) + 1 - node.level] if node.level else [])
                base = ".".join(p for p in (base, node.module or "") if p)
                for alias in node.names:
                    full = pytest_rnn._MOVED.get(f"{base}.{alias.name}", f"{base}.{alias.name}")
                    targets.add(full if full in files else base)
        graph[name] = {pytest_rnn._MOVED.get(t, t) for t in targets} & set(files) - {name}
    circles = set()
    for start in graph:  # breadth-first: the shortest circles through each module
        paths, queue = {start: [start]}, [start]
        for node in queue:
            for after in sorted(graph[node]):
                if after == start:
                    circle = paths[node]
                    first = circle.index(min(circle))
                    circles.add(" -> ".join(circle[first:] + circle[:first + 1]))
                elif after not in paths:
                    paths[after] = [*paths[node], after]
                    queue.append(after)
    assert not circles, "import circles between modules:\n" + "\n".join(sorted(circles))


def test_no_module_is_over_the_size_limit_and_readme_shows_the_tree():
    """Modules are split by concern before they outgrow one reading; README's Architecture
    tree is the checkout's (``python scripts/architecture.py --write`` regenerates it)."""
    import repo_scripts

    architecture = repo_scripts.load("architecture")
    over = {p.relative_to(PACKAGE).as_posix(): architecture.line_count(p)
            for p in PACKAGE.rglob("*.py") if architecture.line_count(p) > architecture.MAX_LINES}
    assert not over, f"modules over {architecture.MAX_LINES} lines: {over}"
    assert set(architecture.SUBPACKAGES) == {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    page = architecture.PAGE.read_text(encoding="utf-8")
    block = repo_scripts.load("readme_block").block(architecture.BLOCK, architecture.tree())
    assert block in page, ("docs/explanation/architecture.md's Architecture tree is stale: "
                           "run `python scripts/architecture.py --write`")
