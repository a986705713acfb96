"""The seeds a test gets, derived in one place for the fixtures and the baseline store.

Every seed comes from the base seed (``--rnn-seed``) and the test's node id
(:func:`pytest_rnn.runtime.seeding.derive_seed`), so it is the same whatever the test
order or xdist worker. :func:`seed_for` is the test's own seed (``rnn_seed``, the data
fixtures' default, and what a recorded baseline entry stores); :func:`sample_seeds` are
the seeds of the runs a power-checked test makes, or of its calibration runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_rnn.plugin import options
from pytest_rnn.runtime import nodeids, seeding


def seed_for(config: pytest.Config, nodeid: str, path: Path | None = None) -> int:
    """The value ``rnn_seed`` has for test ``nodeid``, without seeding (and importing) Keras.

    The one place the per-test seed is derived: data fixtures only need the number,
    the baseline store records it, and a test that trains a model asks for
    ``rnn_seed`` and gets the same value.
    """
    return seeding.derive_seed(options.get(config).seed, nodeids.canonical(nodeid, path))


def sample_seeds(base: int, nodeid: str, k: int, calibrating: int,
                 path: Path | None = None) -> list[int]:
    """``k`` seeds of test ``nodeid`` for a power check; ``calibrating`` (``--rnn-calibrate
    N``) seeds instead when it is not 0. The two sets are derived under different names, so
    a check never reuses a calibration seed."""
    nodeid = nodeids.canonical(nodeid, path)  # an installed suite: the repository's seeds
    if calibrating:
        return [seeding.derive_seed(base, f"{nodeid}::calibration/{i}")
                for i in range(calibrating)]
    return [seeding.derive_seed(base, f"{nodeid}::sample/{i}") for i in range(k)]
