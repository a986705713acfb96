"""pytest-randomly beside ``rnn_seed``: how ``--rnn-seed`` and ``--randomly-seed`` relate.

pytest-randomly shuffles the test order and reseeds Python's ``random`` and
NumPy's global generator with ``--randomly-seed`` (plus a per-test offset) at each
test's set-up, call and teardown. Its call-phase reseed comes after the fixtures,
so it would overwrite the draws ``rnn_seed`` promises.

The two seeds are independent, on purpose:

* ``--rnn-seed`` (with the test's node id) alone decides what a test that asks
  for ``rnn_seed`` (or ``rnn_rng``, or a data fixture) draws, as without
  pytest-randomly. Baselines recorded in one order therefore hold in every other
  order; deriving ``rnn_seed`` from ``--randomly-seed`` would make every shuffled
  run a run with new data.
* ``--randomly-seed`` decides the order, and the draws of every test that does
  not ask for ``rnn_seed`` or ``rnn_baseline``.

How: for a test that asks for ``rnn_seed`` or ``rnn_baseline`` (which seeds the test as
``rnn_seed`` does), the state of ``random`` and NumPy's global generator is kept when its
set-up ends (the fixtures have seeded and possibly drawn) and put back just before the
test function runs, after pytest-randomly's call-phase reseed. Keras's and its backend's
generators are not touched by pytest-randomly (pytest-rnn registers no ``random_seeder``
entry point, which would reseed them under ``--randomly-seed``), so they keep
``rnn_seed``'s state as they are. These hooks are registered only when pytest-randomly
is active.
"""

from __future__ import annotations

import random
import sys

import pytest

_STATE = pytest.StashKey[tuple]()


def is_active(config: pytest.Config) -> bool:
    """pytest-randomly is loaded and reseeds per test (not ``--randomly-dont-reset-seed``)."""
    return (config.pluginmanager.hasplugin("randomly")
            and bool(config.getoption("randomly_reset_seed", default=False)))


def _uses_rnn_seed(item: pytest.Item) -> bool:
    """The test is seeded by ``rnn_seed``, or by ``rnn_baseline`` as ``rnn_seed`` seeds."""
    names = getattr(item, "fixturenames", ())
    return "rnn_seed" in names or "rnn_baseline" in names


class RandomlyHooks:
    """Registered by :func:`register` when pytest-randomly is active."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        result = yield
        if _uses_rnn_seed(item):
            numpy = sys.modules.get("numpy")
            item.stash[_STATE] = (random.getstate(),
                                  numpy.random.get_state() if numpy is not None else None)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):
        state = pyfuncitem.stash.get(_STATE, None)
        if state is not None:
            python_state, numpy_state = state
            random.setstate(python_state)
            if numpy_state is not None:
                sys.modules["numpy"].random.set_state(numpy_state)
        return (yield)


def register(config: pytest.Config) -> None:
    if is_active(config):
        config.pluginmanager.register(RandomlyHooks(), "rnn-randomly")
