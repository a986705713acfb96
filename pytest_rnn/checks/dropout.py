"""Checks that a recurrent layer's ``dropout`` and ``recurrent_dropout`` behave as documented.

What Keras promises, and what a release could quietly break:

* inference (``training=False``) ignores dropout: calls are deterministic and
  equal the same layer without dropout;
* training applies it: outputs differ from inference;
* each unit is dropped with probability ``rate`` and the kept ones are scaled by
  ``1 / (1 - rate)`` ("inverted" dropout, so inference needs no rescaling);
* one mask per call is reused at every time step (variational dropout);
  ``LSTM``/``GRU`` with ``recurrent_dropout`` (which forces ``implementation=1``)
  draw a separate mask for each gate;
* a layer built with ``seed=`` draws the same masks as another with that seed.

This module is the public face of the dropout checks and holds the statistical
checks on measured masks (rate, inverted scaling, one mask for every step). The
rest lives beside it, and every name is importable from here:

* :mod:`pytest_rnn.checks.dropout_probe`: measuring which units a training call
  drops, behaviourally, on a probe twin (:func:`measure_dropout`,
  :class:`DropoutMeasurement`, :func:`binomial_tolerance`);
* :mod:`pytest_rnn.checks.dropout_calls`: comparing whole calls of any layer or
  model (inference ignores dropout, training applies it, the seed fixes masks);
* :mod:`pytest_rnn.checks.dropout_masks`: recording the masks each cell of a layer
  draws (:func:`record_dropout_masks`) and checking them.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from pytest_rnn.checks.behaviours import FRACTION_DIFFERS, MASK_REDRAWN, NOT_RESCALED
from pytest_rnn.checks.dropout_calls import (
    assert_inference_ignores_dropout,
    assert_seed_reproduces_masks,
    assert_training_applies_dropout,
)
from pytest_rnn.checks.dropout_masks import (
    CellMasks,
    assert_cell_mask_rates,
    assert_cell_masks_sized,
    assert_training_uses_the_drawn_masks,
    record_dropout_masks,
)
from pytest_rnn.checks.dropout_probe import (
    DEFAULT_SAMPLES,
    GATES,
    WHICH,
    DropoutMeasurement,
    binomial_tolerance,
    layer_label,
    measure_dropout,
)
from pytest_rnn.checks.dropout_probe import PROBE_SPATIAL as PROBE_SPATIAL
from pytest_rnn.checks.dropout_probe import is_conv_lstm as is_conv_lstm

__all__ = [
    "DEFAULT_SAMPLES",
    "GATES",
    "WHICH",
    "CellMasks",
    "DropoutMeasurement",
    "assert_cell_mask_rates",
    "assert_cell_masks_sized",
    "assert_dropout_mask_shared_across_time",
    "assert_dropout_rate",
    "assert_inference_ignores_dropout",
    "assert_inverted_dropout_scaling",
    "assert_seed_reproduces_masks",
    "assert_training_applies_dropout",
    "assert_training_uses_the_drawn_masks",
    "binomial_tolerance",
    "measure_dropout",
    "record_dropout_masks",
]


# --- assertions on measurements ---------------------------------------------------------------


def _measurements(
    layer: Any, which: str, given: Sequence[DropoutMeasurement] | None, **measure_kwargs: Any
) -> list[DropoutMeasurement]:
    if given is None:
        return measure_dropout(layer, which, **measure_kwargs)
    given = list(given)
    if not given or any(m.which != which for m in given):
        raise ValueError(f"measurements must be a non-empty list of {which} measurements")
    return given


def assert_dropout_rate(
    layer: Any,
    which: str = "dropout",
    *,
    sigmas: float = 5.0,
    measurements: Sequence[DropoutMeasurement] | None = None,
    **measure_kwargs: Any,
) -> list[DropoutMeasurement]:
    """Assert every measurable gate drops a fraction of units within
    :func:`binomial_tolerance` of the configured rate; the message lists each gate
    that is out, with counts. ``measurements`` reuses :func:`measure_dropout`'s
    result instead of measuring again. Returns the measurements."""
    measurements = _measurements(layer, which, measurements, **measure_kwargs)
    bad = [m for m in measurements if abs(m.fraction - m.rate) > m.tolerance(sigmas)]
    if bad:
        raise AssertionError(
            f"{FRACTION_DIFFERS.format(which=which)}:\n"
            + "\n".join(f"  {m.describe(sigmas)}" for m in bad)
        )
    return measurements


def assert_inverted_dropout_scaling(
    layer: Any,
    which: str = "dropout",
    *,
    atol: float = 1e-5,
    measurements: Sequence[DropoutMeasurement] | None = None,
    **measure_kwargs: Any,
) -> list[DropoutMeasurement]:
    """Assert the training output equals the dropout-free layer fed the kept units
    scaled by ``1 / (1 - rate)`` (and the dropped ones zeroed), gate by gate."""
    measurements = _measurements(layer, which, measurements, **measure_kwargs)
    bad = [m for m in measurements if not m.scaling_error <= atol]
    if bad:
        lines = [
            f"  gate {m.gate}: max |training output - dropout-free output on inputs masked and "
            f"scaled by 1/(1-{m.rate:g}) = {1 / (1 - m.rate):.4f}| = {m.scaling_error:.3g} "
            f"(atol {atol:g}; {m.dropped} of {m.n} units dropped)"
            for m in bad
        ]
        raise AssertionError(
            f"{layer_label(layer)} {which}: {NOT_RESCALED}:\n"
            + "\n".join(lines)
        )
    return measurements


def assert_dropout_mask_shared_across_time(
    layer: Any,
    *,
    steps: int = 3,
    measurements: Sequence[DropoutMeasurement] | None = None,
    **measure_kwargs: Any,
) -> list[DropoutMeasurement]:
    """Assert one input-dropout mask per call is reused at every time step, per gate.

    ``measurements`` (input-dropout measurements of 2+ steps) replaces measuring."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 to compare steps; got {steps!r}")
    if measurements is None:
        measurements = measure_dropout(layer, "dropout", steps=steps, **measure_kwargs)
    measurements = _measurements(layer, "dropout", measurements)
    if any(m.kept.ndim < 3 or m.kept.shape[1] < 2 for m in measurements):
        raise ValueError("measurements must observe at least 2 steps (measure with steps >= 2)")
    steps = measurements[0].kept.shape[1]
    lines = []
    for m in measurements:
        differing = [
            f"step {t}: {int((m.kept[:, t] != m.kept[:, 0]).sum())}"
            for t in range(1, steps)
            if (m.kept[:, t] != m.kept[:, 0]).any()
        ]
        if differing:
            lines.append(
                f"  gate {m.gate}: units whose mask differs from step 0 (of {m.n}): "
                + ", ".join(differing)
            )
    if lines:
        raise AssertionError(
            f"{layer_label(layer)} {MASK_REDRAWN}; Keras reuses "
            "one mask for every step:\n" + "\n".join(lines)
        )
    return measurements
