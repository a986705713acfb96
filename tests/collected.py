"""The node ids this session collected, deselected ones included (tests/conftest.py records
them at ``pytest_collection_modifyitems`` and ``pytest_deselected``), which files were
collected whole, and :func:`nodeids`, the one way the ledger's and the catalogue's tests
ask which tests exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODEIDS: set[str] = set()
#: Collections this session made in a subprocess, by the folders they collected.
_ELSEWHERE: dict[tuple[str, ...], set[str]] = {}


def whole_files(args: list[str]) -> set[str]:
    """The files among the collected node ids, unless the run named single tests
    (``path::test``) and so may have collected part of a file."""
    if any("::" in str(a) for a in args):
        return set()
    return {n.split("::", 1)[0] for n in NODEIDS}


def nodeids(files: list[str], config: Any, pytester: Any) -> set[str]:
    """The node ids of ``files`` (paths from the repository root): this session's own
    collection where it collected them whole (the usual run), else one collection of their
    folders in a subprocess, made once per session for every caller."""
    whole = whole_files(config.args)
    if all(f in whole for f in files):
        return {n for n in NODEIDS if n.split("::", 1)[0] in files}
    folders = tuple(sorted({str(Path(f).parent) for f in files}))
    if folders not in _ELSEWHERE:
        # in a subprocess: an in-process run would import Keras under pytester's module
        # snapshot, which drops it (and NumPy's C extension, which cannot load twice)
        result = pytester.runpytest_subprocess(
            "--collect-only", "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}",
            *[str(ROOT / folder) for folder in folders])
        _ELSEWHERE[folders] = {line.strip() for line in result.outlines if "::" in line}
    return {n for n in _ELSEWHERE[folders] if n.split("::", 1)[0] in files}
