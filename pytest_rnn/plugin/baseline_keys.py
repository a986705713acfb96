"""Where a test's baseline entries live: the file of each and the test id in its key.

A test writes to the file named after its module unless a check names another with
``file=`` (a plain name: letters, digits, ``_``, ``-``, ``.``). The key starts with the
node id without its module path; in a file chosen with ``file=``, which several modules
may share, it is prefixed by the module's name. A test checks each entry once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_CHECKED = pytest.StashKey[set]()  # on the item: (path, key) checked, to catch duplicates


def default_file(nodeid: str) -> str:
    """The file stem of test ``nodeid``'s entries without ``file=``: its module's name."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def file_stem(file: str | None, nodeid: str) -> str:
    """The stem of the file a check with ``file=file`` writes to (validated)."""
    if file is None:
        return default_file(nodeid)
    if not isinstance(file, str):
        raise ValueError(f"file must be a file name (str); got {file!r}")
    stem = file.removesuffix(".json")
    if not _NAME_OK(stem):
        raise ValueError(
            f"file must be a plain file name (letters, digits, '_', '-', '.'; no directory); "
            f"got {file!r}"
        )
    return stem


def key_test_id(nodeid: str, stem: str) -> str:
    """The test part of the keys of test ``nodeid`` in file ``stem``."""
    parts = nodeid.split("::", 1)
    own = parts[1] if len(parts) == 2 else nodeid
    return own if stem == default_file(nodeid) else f"{default_file(nodeid)}::{own}"


def claim(item: pytest.Item, path: Path, key: str) -> None:
    """Note that ``item`` checks ``key`` of ``path``; a second check of it is an error."""
    checked = item.stash.setdefault(_CHECKED, set())
    if (path, key) in checked:
        raise ValueError(
            f"this test checks baseline {key!r} of {path.name} twice; give each "
            f"measurement its own metric name"
        )
    checked.add((path, key))


def _NAME_OK(stem: str) -> bool:  # noqa: N802 - a predicate named like the rule it states
    return bool(stem) and stem[0].isalnum() and all(c.isalnum() or c in "_.-" for c in stem)
