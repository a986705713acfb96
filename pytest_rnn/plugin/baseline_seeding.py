"""How ``rnn_baseline`` seeds what it checks: the test's own run, and each run of a
multi-seed check.

**The test.** When it is set up, ``rnn_baseline`` seeds Python's ``random``, NumPy's
global generator and Keras (with its backend) with the test's seed, the value ``rnn_seed``
has, through the call ``rnn_seed`` makes (:func:`pytest_rnn.backends.seed_everything`). A
value checked or recorded without ``rnn_seed`` therefore comes out the same on every rerun,
and the entry's ``seeds.test`` is the seed that seeded it. A test that asks for
``rnn_seed`` is seeded by that fixture alone, where it stands among the fixtures.

Seeding Keras means importing it (seconds), so ``rnn_baseline`` seeds the frameworks that
are loaded when it is set up (a test module that uses Keras imported it at collection) and
imports none: a test of plain numbers pays nothing. A framework first imported while the
test ran was not seeded; a value checked after that fails with one line asking for
``rnn_seed`` (:meth:`BaselineSeeding.unseeded`), rather than being recorded under a seed
that did not seed it. What the plugin's own calls import (the device key, say) does not
count: :func:`plugin_call` keeps it apart.

**Multi-seed runs.** :func:`seeded_runs` seeds Python, NumPy and Keras with each seed
before it calls ``run(seed)`` (importing Keras: a run trains a model).
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_rnn import backends
from pytest_rnn.plugin import options
from pytest_rnn.plugin import seeds as test_seeds

#: The frameworks seeded when loaded, by module name and as messages name them (Python's
#: ``random`` is always seeded).
FRAMEWORKS = {"numpy": "NumPy", "keras": "Keras"}


def _loaded() -> frozenset[str]:
    return frozenset(name for name in FRAMEWORKS if name in sys.modules)


def seed_loaded(seed: int, *, deterministic: bool) -> None:
    """Seed Python, and NumPy and Keras where loaded, as ``rnn_seed`` seeds them; import
    neither."""
    if "keras" in sys.modules:
        backends.seed_everything(seed, deterministic=deterministic)
        return
    random.seed(seed)
    if (numpy := sys.modules.get("numpy")) is not None:
        numpy.random.seed(seed)


class BaselineSeeding:
    """The seeding of one test that uses ``rnn_baseline``, done when it is set up."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.by_rnn_seed = "rnn_seed" in request.fixturenames
        self.deterministic = options.get(request.config).deterministic
        if not self.by_rnn_seed:
            seed_loaded(test_seeds.seed_for(request.config, request.node.nodeid,
                                              request.node.path),
                        deterministic=self.deterministic)
        self._seeded = _loaded()  # and what the plugin's calls imported since

    def unseeded(self) -> list[str]:
        """The frameworks the test imported after set-up, unseeded (none with ``rnn_seed``,
        which imports and seeds them all)."""
        if self.by_rnn_seed:
            return []
        return [shown for name, shown in FRAMEWORKS.items()
                if name in sys.modules and name not in self._seeded]

    def absorb(self, before: frozenset[str]) -> None:
        """Frameworks imported by a call of the plugin's that began with ``before`` loaded
        are not the test's draws."""
        self._seeded |= _loaded() - before


def plugin_call(method: Callable) -> Callable:
    """Decorate a method of :class:`~pytest_rnn.plugin.baselines.Baselines`: what it
    imports does not count as the test's unseeded imports."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        before = _loaded()
        try:
            return method(self, *args, **kwargs)
        finally:
            self._seeding.absorb(before)

    return call


def seeded_runs(run: Callable[[int], Any], seeds: Sequence[int], *,
                deterministic: bool) -> list[Any]:
    """``run(seed)`` for each of ``seeds``, each called after seeding Python, NumPy and Keras
    (with its backend) with its seed, as ``rnn_seed`` seeds a test."""
    if not callable(run):
        raise ValueError(f"run must be a function of the seed; got {run!r}")
    results = []
    for seed in seeds:
        backends.seed_everything(seed, deterministic=deterministic)
        results.append(run(seed))
    return results
