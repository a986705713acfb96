"""Baseline files: their format, validation, and writes that lose nothing.

A file is ``{"entries": {...}, "schema_version": 1}`` with keys sorted
(``json.dump(sort_keys=True)``), so a re-recording shows up as a small diff. Each entry
holds ``value``, ``tolerance``, ``direction`` (``higher``, ``lower`` or ``both``),
``relative``, ``seeds``, ``recorded_at``, ``recorded_on`` and an optional ``note``. A
power-checked entry (:meth:`~pytest_rnn.plugin.baselines.Baselines.check_sample`) adds
``distribution`` (``mean``, ``sd``, ``n``, ``values``, ``seeds`` of its calibration
runs) and ``test`` (``name``, ``alpha``, ``k``, ``scale``); its ``value`` is the
calibration mean and its ``tolerance`` the band's distance from it for ``k`` runs, so a
reader that knows only the older fields still sees the right band. Values are stored
exactly: Python writes the shortest decimal that reads back as the same float, so a
zero-tolerance check passes on an identical rerun.

Writing merges new entries into the file under an inter-process lock, through a
temporary file and ``os.replace``: a reader sees the old or the new file, never half
of one, and two processes updating one file both keep their entries. The lock file
lives in the system's temporary directory, keyed by the baseline file's absolute
path, so no stray file appears in a user's repository.

A file that is not JSON, has an unknown ``schema_version`` or holds a malformed
entry raises :class:`BaselineFileError` naming the file and the key. It is never
treated as empty and never rewritten. Nothing here imports pytest.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
UPDATE_FLAG = "--rnn-update-baselines"
LOCK_TIMEOUT_S = 120.0
DIRECTIONS = ("higher", "lower", "both")
ENTRY_FIELDS = frozenset({"value", "tolerance", "direction", "relative", "seeds",
                          "recorded_at", "recorded_on"})


class BaselineFileError(ValueError):
    """A baseline file that cannot be trusted: not JSON, unknown schema, malformed entry."""


#: Folders an installed distribution lives in; pytest-rnn never writes a baseline there.
INSTALL_FOLDERS = ("site-packages", "dist-packages")


def shipped_directory() -> Path | None:
    """Where the baselines shipped with pytest-rnn are (``pytest_rnn.suites.baselines``):
    inside the installed package, or this repository's ``baselines/`` for an editable
    install; None when the package has none."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pytest_rnn.suites.baselines")
    except ModuleNotFoundError:
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def inside_installed_package(path: Path) -> bool:
    """Whether ``path`` lies in an environment's installed packages (site-packages)."""
    return any(part in INSTALL_FOLDERS for part in Path(path).resolve().parts)


def is_number(value: Any) -> bool:
    """A real number that is not a bool (JSON's ``true`` is not a metric)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def read_baseline_file(path: Path) -> dict[str, dict]:
    """The entries of baseline file ``path`` (``{}`` if it does not exist), validated.

    Raises :class:`BaselineFileError` naming the file (and the key, for an entry)
    for anything that is not a well-formed file of :data:`SCHEMA_VERSION`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineFileError(
            f"baseline file {path} is not valid JSON ({exc}); fix it by hand or delete it "
            f"and re-record with {UPDATE_FLAG}"
        ) from None
    if not isinstance(data, dict):
        raise BaselineFileError(
            f"baseline file {path} must hold a JSON object, got {type(data).__name__}"
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineFileError(
            f"baseline file {path} has schema_version {version!r}; this pytest-rnn reads "
            f"schema_version {SCHEMA_VERSION} (a newer pytest-rnn wrote it, or it was edited)"
        )
    unknown = sorted(set(data) - {"schema_version", "entries"})
    if unknown:
        raise BaselineFileError(
            f"baseline file {path} has unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "expected only 'schema_version' and 'entries'"
        )
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise BaselineFileError(f"baseline file {path}: 'entries' must be a JSON object")
    for key, entry in entries.items():
        validate_entry(path, key, entry)
    return entries


def validate_entry(path: Path, key: str, entry: Any) -> None:
    """Raise :class:`BaselineFileError` naming ``path`` and ``key`` if ``entry`` is malformed."""
    where = f"baseline file {path}, entry {key!r}"
    if not isinstance(entry, dict):
        raise BaselineFileError(f"{where}: must be a JSON object, got {type(entry).__name__}")
    missing = sorted(ENTRY_FIELDS - set(entry))
    if missing:
        raise BaselineFileError(f"{where}: missing field(s) {', '.join(missing)}")
    for name in ("value", "tolerance"):
        number = entry[name]
        if not is_number(number) or not math.isfinite(number):
            raise BaselineFileError(f"{where}: {name!r} must be a finite number, got {number!r}")
    if entry["tolerance"] < 0:
        raise BaselineFileError(f"{where}: 'tolerance' must be >= 0, got {entry['tolerance']!r}")
    if entry["direction"] not in DIRECTIONS:
        raise BaselineFileError(
            f"{where}: 'direction' must be one of {sorted(DIRECTIONS)}, "
            f"got {entry['direction']!r}"
        )
    if not isinstance(entry["relative"], bool):
        raise BaselineFileError(f"{where}: 'relative' must be true or false")
    if not isinstance(entry["recorded_at"], str) or not isinstance(entry["recorded_on"], dict):
        raise BaselineFileError(
            f"{where}: 'recorded_at' must be a string and 'recorded_on' an object"
        )
    if "distribution" in entry or "test" in entry:
        validate_distribution(where, entry.get("distribution"), entry.get("test"))


def validate_distribution(where: str, distribution: Any, test: Any) -> None:
    """The optional ``distribution`` and ``test`` of a power-checked entry (both or neither)."""
    if not isinstance(distribution, dict) or not isinstance(test, dict):
        raise BaselineFileError(
            f"{where}: 'distribution' and 'test' must both be JSON objects when either is given"
        )
    for name in ("mean", "sd"):
        number = distribution.get(name)
        if not is_number(number) or not math.isfinite(number):
            raise BaselineFileError(
                f"{where}: distribution {name!r} must be a finite number, got {number!r}")
    values = distribution.get("values")
    n = distribution.get("n")
    if not isinstance(values, list) or not all(is_number(v) and math.isfinite(v)
                                               for v in values):
        raise BaselineFileError(f"{where}: distribution 'values' must be a list of numbers")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2 or n != len(values):
        raise BaselineFileError(
            f"{where}: distribution 'n' must be the number of values (>= 2); got {n!r} for "
            f"{len(values)} values")
    if distribution["sd"] < 0:
        raise BaselineFileError(f"{where}: distribution 'sd' must be >= 0")
    alpha, k = test.get("alpha"), test.get("k")
    if not (is_number(alpha) and 0 < alpha < 1) or not (
            isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        raise BaselineFileError(
            f"{where}: test 'alpha' must be in (0, 1) and 'k' an integer >= 1; got "
            f"alpha={alpha!r}, k={k!r}")
    if test.get("scale", "linear") not in ("linear", "log2"):
        raise BaselineFileError(f"{where}: test 'scale' must be 'linear' or 'log2'")
    if test.get("method", "mean") not in ("mean", "rank"):
        raise BaselineFileError(f"{where}: test 'method' must be 'mean' or 'rank'; got "
                                f"{test.get('method')!r}")
    if "processes" in distribution:  # a timing calibration's per-process medians
        validate_distribution(f"{where}, distribution 'processes'",
                              distribution["processes"], test)


def dump(entries: Mapping[str, dict]) -> str:
    """The text of a baseline file holding ``entries``."""
    body = {"schema_version": SCHEMA_VERSION, "entries": dict(entries)}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; keep a reviewable file readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """The existing file's permissions, or what the umask gives a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def lock_path(path: Path) -> Path:
    """The lock file guarding baseline file ``path``.

    In a per-user folder of the temporary directory, named by a hash of the file's
    resolved path: every process on this machine that writes the same file takes the
    same lock, and nothing is left beside the baselines for ``git status`` to show.
    """
    resolved = str(Path(path).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:24]
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"pytest-rnn-locks-{uid}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{Path(path).name}.{digest}.lock"


def write_entries(path: Path, new_entries: Mapping[str, dict]) -> dict[str, dict]:
    """Merge ``new_entries`` into baseline file ``path`` under its lock; returns the old entries.

    The file is re-read under the lock, so two pytest processes updating the same
    file one after the other both keep their entries. A file that does not validate
    raises :class:`BaselineFileError` and is left as it is.
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(path)), timeout=LOCK_TIMEOUT_S):
        old = read_baseline_file(path)
        atomic_write(path, dump({**old, **new_entries}))
    return old
