"""The known-defects ledger in a pytest run: header lines and strict expected failures.

:mod:`pytest_rnn.runtime.ledger` reads the ledger; here the entries that affect the
installed Keras become strict ``xfail`` marks on the tests that observe them (an
unexpected pass is red: the release does not have the defect the ledger claims) and
the run header lists them. Tests on releases outside an entry's range run unmarked,
and a test the ledger does not name fails as usual.
"""

from __future__ import annotations

import builtins
import importlib

import pytest

from pytest_rnn.runtime import ledger
from pytest_rnn.runtime.versions import keras_backend_name, package_version

#: The ledger entry a collected test observes on this release (set at collection).
DEFECT = pytest.StashKey[ledger.Defect]()


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


def _exception(name: str) -> type[BaseException]:
    if "." not in name:
        return getattr(builtins, name)
    module, _, attr = name.rpartition(".")
    obj = importlib.import_module(module.split(".")[0])
    for part in module.split(".")[1:] + [attr]:
        obj = getattr(obj, part)
    return obj


def mark_known_defects(items: list[pytest.Item]) -> None:
    """Strict xfail, with the ledger's reason and reference, on each observing test."""
    defects = ledger.known_defects()
    if not defects:
        return
    for item in items:
        defect = ledger.defect_for(item.nodeid, defects)
        if defect is None:
            continue
        kwargs = {"raises": tuple(_exception(r) for r in defect.raises)} if defect.raises else {}
        item.add_marker(pytest.mark.xfail(strict=True, reason=defect.reason, **kwargs))
        item.stash[DEFECT] = defect


def check_message(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """An expected failure whose message is not the entry's ``match`` is a failure: the
    test observes the defect's exception type, but says something the ledger does not
    explain (pytest's ``xfail(raises=...)`` checks the type alone)."""
    defect = item.stash.get(DEFECT, None)
    if (defect is None or not hasattr(report, "wasxfail") or call.excinfo is None
            or defect.explains(str(call.excinfo.value))):
        return
    report.outcome = "failed"
    del report.wasxfail
    said = str(call.excinfo.value).strip().splitlines() or [""]
    report.sections.append((
        "pytest-rnn ledger",
        f"known Keras defect {defect.id} expects a {call.excinfo.typename} matching "
        f"/{defect.match}/; this one says: {said[0][:300]}"))
