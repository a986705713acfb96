"""One generated block of README.md, between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

The scripts that generate README tables (ledger_table.py, release_matrix.py) share this:
``block(name, body)`` wraps a table in its markers, ``write(name, body)`` replaces the
block in README.md, and their tests check that README holds ``block(name, body)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(name: str, body: str) -> str:
    start, end = markers(name)
    return f"{start}\n{body}\n{end}"


def write(name: str, body: str, readme: Path = README) -> int:
    """Replace the block in ``readme``; 1, with one line on stderr, when it has none."""
    start, end = markers(name)
    text = readme.read_text("utf-8")
    if start not in text or end not in text:
        print(f"{readme.name} has no {start} ... {end} block to replace", file=sys.stderr)
        return 1
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(head + block(name, body) + tail, "utf-8")
    return 0


def cli(argv: list[str], name: str, generate, script: str) -> int:
    """A generator script's command line: print the block's body, or with ``--write``
    replace the block in README.md; 2, with the usage on stderr, for anything else."""
    if argv == ["--write"]:
        return write(name, generate())
    if argv:
        print(f"usage: python scripts/{script} [--write]", file=sys.stderr)
        return 2
    print(generate())
    return 0
