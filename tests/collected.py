"""The node ids this session collected, deselected ones included (tests/conftest.py records
them at ``pytest_collection_modifyitems`` and ``pytest_deselected``), and which files were
collected whole."""

from __future__ import annotations

NODEIDS: set[str] = set()


def whole_files(args: list[str]) -> set[str]:
    """The files among the collected node ids, unless the run named single tests
    (``path::test``) and so may have collected part of a file."""
    if any("::" in str(a) for a in args):
        return set()
    return {n.split("::", 1)[0] for n in NODEIDS}
