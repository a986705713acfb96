"""The known-defects ledger: recurrent-layer behaviour that differs between Keras releases.

One data file ships in the package (``pytest_rnn/ledger.json``). Each entry names

* ``id``: a short stable name;
* ``keras``: the affected Keras releases, a PEP 440 specifier (``">=3.0,<3.2"``);
* ``differs``: one line on what differs on those releases;
* ``reference``: the Keras commit, pull request or issue that fixed or introduced it;
* ``verified``: how the entry was checked (tag containment, a run of the suite);
* ``tests``: node ids of the tests that observe it; ``*`` matches any run of characters
  (nothing else is special, so ``[`` and ``]`` in parametrize ids match literally);
* ``raises``: the exception (or a list of them) the observing tests fail with on those
  releases, so that a different failure of the same test stays a failure;
* ``match``: a regular expression searched in that exception's message, so that the same
  exception type saying something else stays a failure too;
* ``backends`` (optional): the Keras backends the defect lives on (``["jax"]``) when it
  is one backend's code (its fused loop, its scan); absent, every backend has it.

The plugin turns the observing tests into strict expected failures on exactly the
affected releases (:mod:`pytest_rnn.plugin.ledger`); elsewhere they run as usual.
No pytest import here, and no TensorFlow/Keras import: the installed Keras's version
comes from package metadata.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from pytest_rnn.runtime import nodeids
from pytest_rnn.runtime.versions import keras_backend_name, package_version

LEDGER_FILE = "ledger.json"
_FIELDS = {"id", "keras", "differs", "reference", "verified", "tests", "raises", "match"}
_OPTIONAL = {"backends"}
#: The Keras backends an entry's ``backends`` may name.
BACKENDS = ("tensorflow", "jax", "torch")


class LedgerError(ValueError):
    """The ledger file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Defect:
    id: str
    keras: str
    differs: str
    reference: str
    verified: str
    tests: tuple[str, ...]
    raises: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    match: str | None = None

    def affects(self, keras_version: str | None, backend: str | None = None) -> bool:
        """Whether ``keras_version`` lies in the affected range (False when unknown) and,
        for a one-backend entry, ``backend`` is one it names (``None``: any backend)."""
        if not keras_version:
            return False
        if self.backends and backend is not None and backend not in self.backends:
            return False
        try:
            return SpecifierSet(self.keras).contains(Version(keras_version), prereleases=True)
        except InvalidVersion:
            return False

    def observed_by(self, nodeid: str) -> bool:
        """Whether the test ``nodeid`` observes this defect; an installed suite's test is
        named as in the repository (:func:`pytest_rnn.runtime.nodeids.canonical`)."""
        nodeid = nodeids.canonical(nodeid)
        return any(selects(p, nodeid) for p in self.tests)

    @property
    def where(self) -> str:
        """``Keras >=3.0`` or, for a one-backend entry, ``Keras >=3.0 on jax``."""
        return f"Keras {self.keras}" + (f" on {'/'.join(self.backends)}" if self.backends
                                         else "")

    def explains(self, message: str) -> bool:
        """Whether a failure saying ``message`` is this defect (always, without ``match``)."""
        return self.match is None or re.search(self.match, message) is not None

    @property
    def reason(self) -> str:
        return f"known Keras defect {self.id} ({self.where}): {self.differs} [{self.reference}]"


def selects(pattern: str, nodeid: str) -> bool:
    """Whether the ledger's test pattern ``pattern`` (``*`` a wildcard) names ``nodeid``."""
    return _pattern(pattern).fullmatch(nodeid) is not None


@cache
def _pattern(text: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))


def parse(data: object) -> tuple[Defect, ...]:
    """Validate the ledger's JSON document (a list of entries) into :class:`Defect` s."""
    if not isinstance(data, list):
        raise LedgerError(f"the ledger must be a JSON list of entries; got {type(data).__name__}")
    seen: set[str] = set()
    out = []
    for index, entry in enumerate(data):
        where = f"ledger entry {index}" + (f" ({entry.get('id')!r})"
                                           if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            raise LedgerError(f"{where} must be an object; got {type(entry).__name__}")
        missing = _FIELDS - set(entry)
        unknown = set(entry) - _FIELDS - _OPTIONAL
        if missing or unknown:
            raise LedgerError(f"{where}: missing fields {sorted(missing)}, unknown fields "
                              f"{sorted(unknown)}; accepted: {sorted(_FIELDS | _OPTIONAL)}")
        try:
            SpecifierSet(entry["keras"])
        except InvalidSpecifier:
            raise LedgerError(f"{where}: keras {entry['keras']!r} is not a PEP 440 "
                              "specifier such as '>=3.0,<3.2'") from None
        tests = entry["tests"]
        if not (isinstance(tests, list) and tests and all(isinstance(t, str) and "::" in t
                                                           for t in tests)):
            raise LedgerError(f"{where}: tests must be a non-empty list of node ids "
                              "('path.py::test_name[id]', '*' as wildcard)")
        if entry["id"] in seen:
            raise LedgerError(f"{where}: id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        raises = entry["raises"]
        raises = [raises] if isinstance(raises, str) else raises
        if not (isinstance(raises, list) and raises
                and all(isinstance(r, str) and r for r in raises)):
            raise LedgerError(f"{where}: raises must be an exception name or a list of them "
                              "('AssertionError', 'tensorflow.errors.InvalidArgumentError')")
        backends = entry.get("backends", [])
        if not (isinstance(backends, list) and backends
                and all(b in BACKENDS for b in backends)) and "backends" in entry:
            raise LedgerError(f"{where}: backends must be a non-empty list of Keras backends "
                              f"from {list(BACKENDS)}; got {backends!r}")
        match = entry["match"]
        try:
            if not match:
                raise re.error("empty")
            re.compile(match)
        except (TypeError, re.error) as e:
            raise LedgerError(f"{where}: match must be a regular expression searched in "
                              f"the failure's message; {match!r}: {e}") from None
        out.append(Defect(entry["id"], entry["keras"], entry["differs"], entry["reference"],
                          entry["verified"], tuple(tests), tuple(raises), tuple(backends),
                          match))
    return tuple(out)


@lru_cache(maxsize=1)
def load() -> tuple[Defect, ...]:
    """The shipped ledger, validated."""
    text = importlib.resources.files("pytest_rnn").joinpath(LEDGER_FILE).read_text("utf-8")
    return parse(json.loads(text))


def known_defects(keras_version: str | None = None,
                  ledger: tuple[Defect, ...] | None = None,
                  backend: str | None = None) -> list[Defect]:
    """The ledger entries that affect ``keras_version`` (default: the installed Keras) on
    ``backend`` (default: the backend Keras will use, read without importing Keras)."""
    version = keras_version if keras_version is not None else package_version("keras")
    backend = backend if backend is not None else keras_backend_name()
    return [d for d in (load() if ledger is None else ledger) if d.affects(version, backend)]


def defects_for(nodeid: str, defects: list[Defect]) -> list[Defect]:
    """Those of ``defects`` observed by the test ``nodeid``, in ledger order. A test can
    observe two defects of one release (a Keras 2 file that fails on the older of them
    first), and its failure is explained when either explains it."""
    return [d for d in defects if d.observed_by(nodeid)]


def defect_for(nodeid: str, defects: list[Defect]) -> Defect | None:
    """The first of ``defects`` observed by the test ``nodeid``, if any."""
    return next(iter(defects_for(nodeid, defects)), None)
