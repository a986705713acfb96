"""README's API reference: every public name with its signature and the first sentence of
its docstring, generated from the code.

    python scripts/api_reference.py            # print the reference
    python scripts/api_reference.py --write    # replace README's ``api-reference`` block

The names are ``pytest_rnn``'s exports, the model helpers of ``pytest_rnn.models``, the
public methods of the exported classes users call, and the plugin's fixtures;
tests/test_readme_snippets.py checks that README holds the reference of the code as it is.
"""

from __future__ import annotations

import importlib
import inspect
import sys

import readme_block

BLOCK = "api-reference"
#: Modules whose public functions are all documented, besides the exports.
HELPER_MODULES = ("pytest_rnn.checks.models",)
#: Exported classes whose public methods are documented one by one.
WITH_METHODS = ("Baselines", "RecurrentLayerContract")
FIXTURES = "pytest_rnn.plugin.fixtures"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first or "(no docstring)"


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _line(name: str, obj, indent: str = "") -> str:
    if callable(obj):
        return f"{indent}- `{name}{_signature(obj)}`: {_summary(obj)}"
    return f"{indent}- `{name}` ({type(obj).__name__}): see its module, `{obj!r}`"[:300]


def _public_functions(module) -> list[tuple[str, object]]:
    return [(n, f) for n, f in vars(module).items() if not n.startswith("_")
            and inspect.isfunction(f) and f.__module__ == module.__name__]


def fixtures() -> list[tuple[str, str]]:
    """``(name, first paragraph of its docstring)`` of each fixture the plugin defines, read
    from the source (the same on every pytest release)."""
    import ast

    path = importlib.import_module(FIXTURES).__file__
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list):
            doc = ast.get_docstring(node) or "(no docstring)"
            found.append((node.name, " ".join(doc.split("\n\n")[0].split())))
    return sorted(found)


def reference() -> str:
    import pytest_rnn

    by_module: dict[str, list[str]] = {}
    for name, module_name in sorted(pytest_rnn._EXPORTS.items(), key=lambda kv: (kv[1], kv[0])):
        obj = getattr(importlib.import_module(module_name), name)
        if not (callable(obj) or inspect.isclass(obj)):
            continue
        lines = by_module.setdefault(module_name, [])
        lines.append(_line(name, obj))
        if name in WITH_METHODS:
            lines += [_line(f"{name}.{m}", f, "  ") for m, f in vars(obj).items()
                      if not m.startswith("_") and inspect.isfunction(f)]
    for module_name in HELPER_MODULES:
        module = importlib.import_module(module_name)
        by_module.setdefault(module_name, []).extend(
            _line(n, f) for n, f in sorted(_public_functions(module)))
    fixture_lines = [f"- `{name}` (fixture): {doc}" for name, doc in fixtures()]
    parts = []
    for module_name, lines in by_module.items():
        parts += [f"**`{module_name}`**", "", *lines, ""]
    parts += [f"**Fixtures** (`{FIXTURES}`)", "", *fixture_lines]
    return "\n".join(parts).rstrip()


def main(argv: list[str]) -> int:
    return readme_block.cli(argv, BLOCK, reference, "api_reference.py")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
