"""What every suite module shares: seeded inputs and full float32.

* ``x``: standard-normal float32 inputs of the module's ``INPUT_SHAPE``, drawn from
  the test's ``rnn_rng`` (so each test sees its own, reproducible inputs).
* Full float32 (``rnn_float32``) for every test that compares numbers, that is every
  test not marked ``slow``: on Ampere+ GPUs TensorFlow's default TF32 would turn
  1e-5 comparisons into rounding noise. The slow suites train and time models as
  users run them, with the defaults.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def x(request: pytest.FixtureRequest, rnn_rng: np.random.Generator) -> np.ndarray:
    shape = getattr(request.module, "INPUT_SHAPE", None)
    if shape is None:
        raise pytest.UsageError(
            f"{request.module.__name__} asks for the x fixture but defines no INPUT_SHAPE "
            "(batch, steps, features)"
        )
    return rnn_rng.normal(size=shape).astype("float32")


@pytest.fixture(autouse=True)
def _full_float32(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slow") is None:
        request.getfixturevalue("rnn_float32")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the cross-backend subprocesses as soon as they are known to be needed, so they
    compute beside the in-process tests (not in xdist workers: their cores are busy)."""
    import os

    option = session.config.option
    if os.environ.get("PYTEST_XDIST_WORKER") or option.collectonly:
        return
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "head_start") and \
                module.__name__.endswith("test_cross_backend") and \
                item.get_closest_marker("skip") is None:  # --rnn-skip-cross-backend
            module.head_start()
            return
