"""The metrics a run produced, gathered in one place for summaries and reports.

Tests (through fixtures such as ``rnn_baseline`` or ``rnn_record``) add
:class:`Record` objects. Under pytest-xdist each worker ships its records to the
controller when it finishes (``workeroutput``), so the terminal summary, the
baseline writer and the HTML report see every record of the run, whichever
process produced it.

Kinds in use: ``baseline`` (a metric checked against or recorded into the
baseline store), ``curve`` (a training history), ``speedup`` and ``timing``
(kernel benchmarks), ``cost_ratio`` (per-step cost of the layer kinds). A record's
``data`` must be JSON-serialisable; the summaries and the report read the fields they
know and leave records of other shapes aside.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pytest

WORKEROUTPUT_KEY = "rnn_records"


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
        record = Record(kind, nodeid, name, json.loads(json.dumps(data)))
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
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKEROUTPUT_KEY] = of(config).to_json()


def collect_from_worker(node) -> None:
    text = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
    if text:
        of(node.config).extend(RunRecords.parse(text))
