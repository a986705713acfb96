"""One generated block of a documentation page, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``.

The scripts that generate the docs site's tables and lists (architecture.py,
ledger_table.py, release_matrix.py, api_reference.py) share this: ``block(name, body)``
wraps a body in its markers, ``write(name, body, page)`` replaces the block in the page
under docs/, and their tests check that the page holds ``block(name, body)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(name: str, body: str) -> str:
    start, end = markers(name)
    return f"{start}\n{body}\n{end}"


def write(name: str, body: str, page: Path) -> int:
    """Replace the block in ``page``; 1, with one line on stderr, when it has none."""
    start, end = markers(name)
    text = page.read_text("utf-8")
    if start not in text or end not in text:
        print(f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page} has no "
              f"{start} ... {end} block to replace", file=sys.stderr)
        return 1
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    page.write_text(head + block(name, body) + tail, "utf-8")
    return 0


def cli(argv: list[str], name: str, generate, script: str, page: Path) -> int:
    """A generator script's command line: print the block's body, or with ``--write``
    replace the block in ``page``; 2, with the usage on stderr, for anything else."""
    if argv == ["--write"]:
        return write(name, generate(), page)
    if argv:
        print(f"usage: python scripts/{script} [--write]", file=sys.stderr)
        return 2
    print(generate())
    return 0
