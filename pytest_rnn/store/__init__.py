"""The baseline store: files of reviewed metrics (:mod:`.files`) and what a check against
them decides (:mod:`.rules`). No pytest import; :mod:`pytest_rnn.plugin.baselines`
is the fixture and session glue over it.
"""

from pytest_rnn.store.files import (
    SCHEMA_VERSION,
    BaselineFileError,
    lock_path,
    read_baseline_file,
    write_entries,
)
from pytest_rnn.store.rules import Band, Status, Verdict, band, entry_key, judge

__all__ = [
    "SCHEMA_VERSION",
    "Band",
    "BaselineFileError",
    "Status",
    "Verdict",
    "band",
    "entry_key",
    "judge",
    "lock_path",
    "read_baseline_file",
    "write_entries",
]
