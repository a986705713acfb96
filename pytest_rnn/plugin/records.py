"""The metrics a run produced, gathered in one place for summaries and reports.

Tests (through fixtures such as ``rnn_baseline`` or ``rnn_record``) add
:class:`Record` objects. Under pytest-xdist each worker ships its records to the
controller when it finishes (``workeroutput``), so the terminal summary, the
baseline writer and the HTML report see every record of the run, whichever
process produced it.

The kinds pytest-rnn writes are named once, in :class:`Kind`. A record's ``data`` must be
JSON-serialisable; NumPy scalars and arrays (and anything with ``.numpy()`` or
``.tolist()``) are converted. The summaries and the report read the fields they know
and leave records of other shapes aside.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from pytest_rnn.plugin import xdist

WORKEROUTPUT_KEY = "rnn_records"


class Kind:
    """The record kinds pytest-rnn's summaries and report know (plain strings, so a
    user's ``rnn_record("curve", ...)`` is the same kind)."""

    BASELINE = "baseline"  # a metric checked against or recorded into the baseline store
    CURVE = "curve"  # a training history (the slow suites)
    TIMING = "timing"  # one kernel's benchmark statistics
    SPEEDUP = "speedup"  # generic / cuDNN median of a benchmark group
    COST_RATIO = "cost_ratio"  # per-step cost of the layer kinds relative to LSTM


def _plain(value: Any) -> Any:
    """JSON's ``default=``: NumPy (and tensor) values become plain numbers and lists."""
    for method in ("numpy", "tolist"):
        convert = getattr(value, method, None)
        if callable(convert):
            value = convert()
            if method == "numpy":
                continue
            return value
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(
        f"record data must be JSON-serialisable (numbers, strings, lists, dicts; NumPy "
        f"values and tensors are converted); got {type(value).__name__}"
    )


def to_json_data(data: dict) -> dict:
    """``data`` as it will read back from JSON; raises one-line ``ValueError`` if it cannot."""
    try:
        return json.loads(json.dumps(data, default=_plain))
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Record:
    kind: str
    nodeid: str
    name: str
    data: dict = field(default_factory=dict)


class RunRecords:
    """Records of this process (or, in the xdist controller, of the whole run)."""

    def __init__(self) -> None:
        self._records: list[Record] = []

    def add(self, kind: str, nodeid: str, name: str, **data) -> Record:
        record = Record(kind, nodeid, name, to_json_data(data))
        self._records.append(record)
        return record

    def extend(self, records) -> None:
        self._records.extend(records)

    def of_kind(self, kind: str) -> list[Record]:
        return [r for r in self._records if r.kind == kind]

    def __iter__(self):
        return iter(list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    def to_json(self) -> str:
        return json.dumps([asdict(r) for r in self._records])

    @staticmethod
    def parse(text: str) -> list[Record]:
        return [Record(**item) for item in json.loads(text)]


_KEY = pytest.StashKey[RunRecords]()


def of(config: pytest.Config) -> RunRecords:
    """The run's records (created on first use)."""
    records = config.stash.get(_KEY, None)
    if records is None:
        records = config.stash[_KEY] = RunRecords()
    return records


def publish_from_worker(config: pytest.Config) -> None:
    workeroutput = xdist.worker_output(config)
    if workeroutput is not None:
        workeroutput[WORKEROUTPUT_KEY] = of(config).to_json()


def collect_from_worker(node) -> None:
    text = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
    if text:
        of(node.config).extend(RunRecords.parse(text))
