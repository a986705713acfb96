"""The docs site's API reference (docs/reference/api.md): one mkdocstrings block per module
that holds a public name, listing those names, so the site renders each with its signature
and its whole docstring, read from the code when the site is built.

    python scripts/api_reference.py            # print the generated blocks
    python scripts/api_reference.py --write    # replace the page's ``api-reference`` block

The names are ``pytest_rnn``'s exports (under the module users import them from), the
model helpers of ``pytest_rnn.checks.models`` and the plugin's fixtures. The list is
generated here and the signatures and docstrings by mkdocstrings, so a new export, helper
or fixture shows up by running ``--write``, and tests/test_docs.py fails while the page
lists other names than the code has.
"""

from __future__ import annotations

import ast
import sys

import readme_block

BLOCK = "api-reference"
PAGE = readme_block.DOCS / "reference" / "api.md"
#: Modules whose public functions are all documented, besides the exports.
HELPER_MODULES = ("pytest_rnn.checks.models",)
FIXTURES = "pytest_rnn.plugin.fixtures"


def exports() -> dict[str, list[str]]:
    """``{module: [public names]}`` of ``pytest_rnn._EXPORTS``, read without importing
    Keras (the module of each name is in the mapping)."""
    import pytest_rnn

    by_module: dict[str, list[str]] = {}
    for name, module in sorted(pytest_rnn._EXPORTS.items(), key=lambda kv: (kv[1], kv[0])):
        by_module.setdefault(module, []).append(name)
    return by_module


def helper_functions(module_name: str) -> list[str]:
    """The public functions ``module_name`` defines itself, read from its source."""
    tree = ast.parse(_source(module_name))
    return sorted(node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                  and not node.name.startswith("_"))


def fixtures() -> list[str]:
    """The name of each fixture the plugin defines, read from the source (the same on
    every pytest release)."""
    tree = ast.parse(_source(FIXTURES))
    return sorted(node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                  and any("fixture" in ast.unparse(d) for d in node.decorator_list))


def _source(module_name: str) -> str:
    """The source of a module of this checkout (not through the import system: a module
    also imported under its first release's name carries that name's spec, with no file)."""
    path = readme_block.ROOT.joinpath(*module_name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return path.read_text("utf-8")


def _directive(module_name: str, names: list[str], heading: str) -> list[str]:
    return [f"## {heading}", "", f"::: {module_name}", "    options:",
            "      show_root_heading: false", "      heading_level: 3", "      members:",
            *(f"        - {name}" for name in names), ""]


def reference() -> str:
    parts: list[str] = []
    for module_name, names in exports().items():
        parts += _directive(module_name, names, f"`{module_name}`")
    for module_name in HELPER_MODULES:
        parts += _directive(module_name, helper_functions(module_name),
                            f"`{module_name}` (model helpers)")
    parts += _directive(FIXTURES, fixtures(), f"Fixtures (`{FIXTURES}`)")
    return "\n".join(parts).rstrip()


def main(argv: list[str]) -> int:
    return readme_block.cli(argv, BLOCK, reference, "api_reference.py", PAGE)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
