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
