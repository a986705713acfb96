"""pytest-rnn's fixtures. Thin wrappers: the logic lives in the modules they call.

The per-test seed is :mod:`pytest_rnn.plugin.seeds`'s; ``rnn_baseline`` imports
:mod:`pytest_rnn.plugin.baselines` when a test asks for it (that module imports
nothing of this one).
"""

from __future__ import annotations

import inspect

import pytest

from pytest_rnn import backends
from pytest_rnn.plugin import options, records
from pytest_rnn.plugin.seeds import seed_for


def _test_seed(request: pytest.FixtureRequest) -> int:
    return seed_for(request.config, request.node.nodeid, request.node.path)


@pytest.fixture
def rnn_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed, after seeding Python, NumPy and Keras with it.

    Derived from the base seed (``--rnn-seed``) and the test's node id, so it is the
    same whatever the test order or xdist worker, and differs between tests.
    """
    seed = _test_seed(request)
    backends.seed_everything(seed, deterministic=options.get(request.config).deterministic)
    return seed


@pytest.fixture
def rnn_rng(rnn_seed: int):
    """A NumPy ``Generator`` seeded with this test's ``rnn_seed``, for inputs and weights."""
    import numpy as np

    return np.random.default_rng(rnn_seed)


@pytest.fixture(scope="session")
def rnn_device():
    """:class:`pytest_rnn.device.DeviceInfo` of this process, asked of the Keras backend's
    framework (imports it)."""
    from pytest_rnn.backends import devices

    return devices.detect()


@pytest.fixture
def rnn_float32():
    """Full float32 matmuls for this test: TF32 off on Ampere+ GPUs, restored after.

    For tests that compare two computations with float32 tolerances; see
    :func:`pytest_rnn.backends.full_float32` (the active Keras backend's switch). Use it
    per module with ``pytestmark = pytest.mark.usefixtures("rnn_float32")``.
    """
    from pytest_rnn import backends

    with backends.full_float32():
        yield


@pytest.fixture
def imdb_subset(request: pytest.FixtureRequest):
    """Factory: ``imdb_subset(num_words=500, maxlen=100, ...)`` -> SequenceDataset.

    ``seed=None`` uses the test's ``rnn_seed``. When no IMDB source is reachable
    the test is skipped with a reason naming the ways to supply the data; a
    configured path that is missing or malformed is an error, not a skip.
    """
    from pytest_rnn import data

    path = options.get(request.config).imdb_path
    default_seed = _test_seed(request)

    def make(*args, seed: int | None = None, **kwargs):
        __tracebackhide__ = True  # a bad argument is the caller's line, not this factory's
        seed = default_seed if seed is None else seed
        signature = inspect.signature(data.load_imdb_subset)
        try:
            signature.bind(*args, seed=seed, path=path, **kwargs)
        except TypeError as exc:
            accepted = ", ".join(n for n in signature.parameters if n != "path")
            raise TypeError(
                f"imdb_subset(): {exc}; it accepts {accepted} (the data file comes from "
                "--rnn-imdb-path, not an argument)"
            ) from None
        try:
            return data.load_imdb_subset(*args, seed=seed, path=path, **kwargs)
        except data.ImdbUnavailable as exc:
            pytest.skip(str(exc))

    return make


@pytest.fixture
def toy_task(request: pytest.FixtureRequest):
    """Factory: ``toy_task(name, n=1000, steps=None, seed=None, **params)`` -> SequenceTask.

    ``seed=None`` uses the test's ``rnn_seed``; see :mod:`pytest_rnn.tasks`.
    """
    from pytest_rnn.data import tasks

    default_seed = _test_seed(request)

    def make(name: str, *args, seed: int | None = None, **kwargs):
        return tasks.make_task(name, *args, seed=default_seed if seed is None else seed, **kwargs)

    return make


@pytest.fixture
def rnn_record(request: pytest.FixtureRequest):
    """``rnn_record(kind, name, **data)`` adds a record of this test to the run's records.

    Records feed the terminal summary and the HTML report (``--rnn-report``);
    they reach the controller from xdist workers.
    """
    run = records.of(request.config)

    def add(kind: str, name: str, **data):
        return run.add(kind, request.node.nodeid, name, **data)

    return add


@pytest.fixture
def rnn_baseline(request: pytest.FixtureRequest):
    """:class:`pytest_rnn.baselines.Baselines` of this test: ``rnn_baseline.check(metric, value,
    tolerance=...)`` compares with the stored baseline, or records it under
    ``--rnn-update-baselines``. See :mod:`pytest_rnn.baselines` for the file layout and the
    tolerance rules.

    Seeds the test as ``rnn_seed`` does, with the same seed, when it is set up: Python,
    NumPy and Keras, those of them loaded by then (it imports none; a test module that uses
    Keras has imported it), so a recorded value is reproducible and its entry's seed true.
    A check after the test first imported Keras or NumPy fails, asking for ``rnn_seed``
    (:mod:`pytest_rnn.plugin.baseline_seeding`).
    """
    from pytest_rnn.plugin import baselines

    return baselines.Baselines(request)
