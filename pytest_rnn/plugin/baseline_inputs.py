"""The arguments of ``rnn_baseline``'s multi-run checks, checked before anything is compared.

A sample check (:meth:`~pytest_rnn.plugin.baselines.Baselines.check_sample`) takes its
options (scale, method, alpha) and either a function of the seed, which the plugin seeds
and calls once per seed, or values with the seeds of their runs; a timing check
(:meth:`~pytest_rnn.plugin.baselines.Baselines.check_timing`) takes per-round values, or one
list of them per process. Each wrong argument is a ``ValueError`` naming what is accepted.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_rnn.store import rules


def check_sample_options(scale: str, method: str, alpha: float) -> None:
    if scale not in rules.SCALES:
        raise ValueError(f"scale must be one of {sorted(rules.SCALES)}; got {scale!r}")
    if method not in rules.METHODS:
        raise ValueError(f"method must be one of {sorted(rules.METHODS)}; got {method!r}")
    if not (isinstance(alpha, float) and 0 < alpha < 0.5):
        raise ValueError(f"alpha must be a float in (0, 0.5); got {alpha!r}")


def sample_limits(**limits: Any) -> dict[str, float]:
    """The limits given (not None) of a sample check, as finite numbers."""
    checked = {name: rules.as_number(name, value) for name, value in limits.items()
               if value is not None}
    for name, value in checked.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {limits[name]!r}")
    return checked


def check_runs_or_values(run: Any, values: Any, seeds: Any) -> None:
    """A sample comes from ``run`` (seeded by the plugin) or from ``values`` with ``seeds``."""
    if (values is None) == (run is None):
        raise ValueError("check_sample takes run= (a function of the seed, which "
                         "rnn_baseline seeds before each call) or values with their "
                         f"seeds=; got {'both' if run is not None else 'neither'}")
    if run is None and seeds is None:
        raise ValueError("values need the seeds= of their runs (sample_seeds(k)); or pass "
                         "run= and rnn_baseline seeds each run")


def sample_values(values: Any, seeds: list[int]) -> list[float]:
    """``values`` as floats, one per seed."""
    values = [rules.as_number("values[]", v) for v in values]
    if len(values) != len(seeds) or not values:
        raise ValueError(f"need one value per seed; got {len(values)} values for "
                         f"{len(seeds)} seeds")
    return values


def timing_rounds(rounds: Any) -> list[float]:
    values = [rules.as_number("rounds[]", v) for v in rounds]
    if len(values) < 5 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"need >= 5 positive, finite rounds; got {values!r}")
    return values


def timing_samples(samples: Any, calibrating: int) -> list[list[float]]:
    """A timing check with a derived effect gets one sample per seed of
    ``sample_seeds(1)``: one when checking, ``N`` under ``--rnn-calibrate N``."""
    processes = calibrating or 1
    if not isinstance(samples, (list, tuple)) or len(samples) != processes or not all(
            isinstance(s, (list, tuple)) for s in samples):
        shape = (f"{len(samples)} item(s), the first a {type(samples[0]).__name__}"
                 if isinstance(samples, (list, tuple)) and samples else repr(samples)[:60])
        wanted = (f"under --rnn-calibrate {processes}, rounds must be {processes} samples"
                  if calibrating else "rounds must be a list of 1 sample (one per seed of "
                  "sample_seeds(1); N under --rnn-calibrate N)")
        raise ValueError(f"{wanted} (a list of per-round values per process); got {shape}")
    return [timing_rounds(s) for s in samples]
