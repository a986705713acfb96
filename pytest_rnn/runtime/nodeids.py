"""One name for a suite test wherever its file lives: the repository's ``suites/`` or an
installed ``pytest_rnn/suites/``.

Run from the install (``pytest --pyargs pytest_rnn.suites``), a suite test's node id is the
path from wherever pytest's rootdir fell (``../lib/python3.12/site-packages/pytest_rnn/
suites/test_gradients.py::...``). The ledger's patterns, the per-test seeds and everything
else keyed by a node id use :func:`canonical`, which names it as this repository does
(``suites/test_gradients.py::...``), so the shipped suites draw the same seeds and meet the
same known defects as the repository's own run. No pytest import.
"""

from __future__ import annotations

import functools
from pathlib import Path

#: Where the shipped suites sit inside an installed pytest-rnn.
SHIPPED = "pytest_rnn/suites/"
#: Their folder in this repository, the name node ids are canonical in.
REPOSITORY = "suites/"


@functools.cache
def suites_directory() -> Path | None:
    """Where ``pytest_rnn.suites`` is (the install's, or this repository's ``suites/`` for
    an editable install), resolved; None without it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pytest_rnn.suites")
    except ModuleNotFoundError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]).resolve() if locations else None


def canonical(nodeid: str, path: Path | str | None = None) -> str:
    """``nodeid`` with an installed suite's path replaced by ``suites/<file>``; any other
    node id as it is. ``path``, the test's file, finds it where the node id does not show
    the package (run with ``pytest --pyargs`` from another directory, pytest names the
    suites' files from their own folder)."""
    _, sep, rest = nodeid.partition("::")
    suites = suites_directory()
    if path is not None and suites is not None:
        try:
            inside = Path(path).resolve().relative_to(suites)
        except ValueError:
            inside = None
        if inside is not None:
            return REPOSITORY + inside.as_posix() + sep + rest
    posix = nodeid.partition("::")[0].replace("\\", "/")
    at = posix.rfind(SHIPPED)
    if at < 0 or (at > 0 and posix[at - 1] != "/"):
        return nodeid
    return REPOSITORY + posix[at + len(SHIPPED):] + sep + rest


def is_shipped_suite(nodeid: str, path: Path | str | None = None) -> bool:
    """Whether ``nodeid`` (in file ``path``) is a test of the suites (repository or
    installed)."""
    return canonical(nodeid, path).startswith(REPOSITORY)
