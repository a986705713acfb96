"""The known-defects ledger in a pytest run: header lines and strict expected failures.

:mod:`pytest_rnn.runtime.ledger` reads the ledger; here the entries that affect the
installed Keras become strict ``xfail`` marks on the tests that observe them (an
unexpected pass is red: the release does not have the defect the ledger claims) and
the run header lists them. Tests on releases outside an entry's range run unmarked,
and a test the ledger does not name fails as usual.
"""

from __future__ import annotations

import builtins

import pytest

from pytest_rnn.runtime import ledger, nodeids
from pytest_rnn.runtime.versions import keras_backend_name, package_version

#: The ledger entries a collected test observes on this release (set at collection).
DEFECTS = pytest.StashKey[tuple[ledger.Defect, ...]]()


def header_lines() -> list[str]:
    version, backend = package_version("keras"), keras_backend_name()
    defects = ledger.known_defects(version, backend=backend)
    if not defects:
        return [f"pytest-rnn: known recurrent-layer defects of Keras {version} on {backend}: "
                f"none in the ledger ({len(ledger.load())} entries)"]
    return [f"pytest-rnn: known recurrent-layer defects of Keras {version} on {backend} "
            f"({len(defects)} of {len(ledger.load())} ledger entries; their tests are "
            "strict xfails):"] + [f"pytest-rnn:   {d.id}: {d.differs}"
                                  for d in defects]


def raised_as(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is the exception ``name`` names, judged without importing anything:
    a builtin by ``isinstance``; ``package.path.Class`` by a class of that name in the
    exception's MRO whose module lies in ``package`` (``tensorflow.errors.InvalidArgumentError``
    is defined in ``tensorflow.python.framework.errors_impl``). An exception of a package
    this process never imported cannot have been raised, so nothing is imported to ask: a
    JAX-only environment never loads TensorFlow for a ledger entry that names its errors."""
    if "." not in name:
        return isinstance(exc, getattr(builtins, name))
    top, attr = name.split(".")[0], name.rpartition(".")[2]
    return any(cls.__name__ == attr and cls.__module__.split(".")[0] == top
               for cls in type(exc).__mro__)


def mark_known_defects(items: list[pytest.Item]) -> None:
    """Strict xfail, with the ledger's reason and reference, on each observing test; a test
    observing several entries of this release names each and accepts each one's failure."""
    defects = ledger.known_defects()
    if not defects:
        return
    for item in items:
        # an installed suite's test is named as in the repository (the ledger's patterns)
        observed = ledger.defects_for(nodeids.canonical(item.nodeid, item.path),
                                      defects)
        if not observed:
            continue
        # the type is checked with the message in check_message, by name (raised_as)
        reason = "; ".join(d.reason for d in observed)
        item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
        item.stash[DEFECTS] = tuple(observed)


def check_message(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """An expected failure whose message no observed entry's ``match`` explains is a
    failure: the test fails with a listed exception type but says something the ledger
    does not explain (pytest's ``xfail(raises=...)`` checks the type alone)."""
    observed = item.stash.get(DEFECTS, ())
    if not observed or not hasattr(report, "wasxfail") or call.excinfo is None:
        return
    exc = call.excinfo.value
    typed = [d for d in observed if any(raised_as(exc, r) for r in d.raises)]
    message = str(exc)
    if any(d.explains(message) for d in typed):
        return
    report.outcome = "failed"
    del report.wasxfail
    said = message.strip().splitlines() or [""]
    if not typed:
        expected = " or ".join(f"{d.id} ({', '.join(d.raises)})" for d in observed)
        report.sections.append((
            "pytest-rnn ledger",
            f"known Keras defect {expected} expects that exception; this test raised "
            f"{call.excinfo.typename}: {said[0][:300]}"))
        return
    expected = " or ".join(f"{d.id} (/{d.match}/)" for d in typed)
    report.sections.append((
        "pytest-rnn ledger",
        f"known Keras defect {expected} expects a failure matching its pattern; this "
        f"{call.excinfo.typename} says: {said[0][:300]}"))
