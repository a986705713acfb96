"""Gradients through time of any cell model by float64 central differences.

The gradient reference (:mod:`pytest_rnn.checks.reference_grad`) chains each cell model's
backward step where it has one (Keras's SimpleRNN, LSTM and GRU); a model without one (a
user's step, :class:`~pytest_rnn.checks.step_model.NumpyCell`; Keras's ConvLSTM) gets its
gradients here, from the same NumPy forward pass over the whole sequence: each element
``p`` of the inputs, of each initial state passed and of each trainable weight the model
reads is moved by ``+-h`` and the fixed loss ``L = sum_k sum(W_k * returned_k)`` recomputed::

    dL/dp ~ (L(p + h) - L(p - h)) / (2 h)

so the engine's masks, ``go_backwards``, initial states, stateful starts and
Bidirectional merges are differentiated as they run. Cost: two forward runs per element.

Error (:func:`difference_error`): moving one element is a central difference along a unit
direction, so the derivation of :func:`pytest_rnn.checks.finite_differences.fd_tolerance`
applies as it stands: truncation ``h**2 / 6 |L'''|`` with ``|L'''| <= G S`` plus rounding
``c eps S / h``, with ``S = sum_k sum(|W_k * returned_k|)``, ``eps = 2**-53``, ``c`` =
``ROUNDING_DEPTH`` and ``G`` = ``THIRD_DERIVATIVE_GAIN`` (smooth activations, weights of
order 1), minimised by the step ``h`` = ``STEP`` (about 2.3e-5); ten times that bound,
about 7e-8 S, is the reference's error. A kink (``relu``) within ``h`` of an argument breaks
the truncation bound; such a cell's inputs or weights must keep away from it.

The comparison (:func:`pytest_rnn.checks.reference_grad.assert_gradients_match_reference`)
adds this error to the float32 layer's, ``gradient_tolerance(steps, fan_in)`` (derived
there for a step of about three dot products of length ``fan_in`` and ten elementwise
operations), with ``fan_in`` for any other cell the longest dot product one of its weights
takes part in; a cell that does much more work per step needs a larger ``atol``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_rnn.checks import reference as fwd
from pytest_rnn.checks.cell_models import variable_path
from pytest_rnn.checks.finite_differences import STEP, fd_tolerance
from pytest_rnn.checks.recurrence import LayerRun

Named = list[tuple[str, np.ndarray]]


def state_gradient_names(runs: Sequence[LayerRun]) -> list[str]:
    """Names of the initial states' gradients: ``initial_state <state>`` for one layer,
    ``initial_state forward <state>`` then ``... backward ...`` for a Bidirectional's two."""
    if len(runs) == 1:
        return [f"initial_state {n}" for n in runs[0].state_names]
    return [f"initial_state {side} {n}" for side, run in zip(("forward", "backward"), runs,
                                                              strict=True)
            for n in run.state_names]


def central_differences(loss: Callable[[np.ndarray], float], value: np.ndarray) -> np.ndarray:
    """``dL/dp`` for every element of ``value`` by central differences with step ``STEP``
    (divided by the step the float64 sums actually took)."""
    grad = np.zeros(value.shape)
    for index in np.ndindex(value.shape):
        plus, minus = value.copy(), value.copy()
        plus[index] += STEP
        minus[index] -= STEP
        grad[index] = (loss(plus) - loss(minus)) / (plus[index] - minus[index])
    return grad


def difference_error(outputs: Named, loss_weights: Sequence[np.ndarray]) -> float:
    """The error bound of every central difference of the loss (module docstring)."""
    return fd_tolerance(float(sum(np.sum(np.abs(w * a))
                                  for w, (_, a) in zip(loss_weights, outputs, strict=True))))


def difference_gradients(
    layer: Any,
    inputs: np.ndarray,
    initial_state: list[np.ndarray] | None,
    mask: np.ndarray | None,
    loss_weights: Sequence[np.ndarray],
    *,
    step: Any = None,
) -> Named:
    """``[(name, gradient)]`` of ``L = sum_k sum(W_k * returned_k)`` (``W_k``:
    ``loss_weights``) for one call of ``layer``, by central differences of its cell models
    (``step``'s, else the built-in ones): ``inputs``, ``initial_state <name>`` (when
    ``initial_state`` is given) and every trainable weight the models read, by variable
    path, as :func:`pytest_rnn.checks.reference_grad.reference_gradients` names them."""

    def loss(x: np.ndarray = inputs, init: list[np.ndarray] | None = initial_state,
             weights: dict[str, np.ndarray] | None = None) -> float:
        outputs, _ = fwd.reference_call(layer, x, init, mask, step=step, weights=weights)
        return float(sum(np.sum(w * a) for w, (_, a) in zip(loss_weights, outputs, strict=True)))

    _, runs = fwd.reference_call(layer, inputs, initial_state, mask, step=step)
    grads = [("inputs", central_differences(lambda v: loss(x=v), inputs))]
    for i, name in enumerate(state_gradient_names(runs) if initial_state is not None else []):
        def with_state(v: np.ndarray, i: int = i) -> float:
            return loss(init=[v if j == i else s for j, s in enumerate(initial_state)])

        grads.append((name, central_differences(with_state, initial_state[i])))
    trainable = {variable_path(v) for v in layer.trainable_weights}
    for run in runs:
        for name, value in run.weights.items():
            path = run.model.weight_paths.get(name, name)
            if path in trainable:
                grads.append((path, central_differences(
                    lambda v, path=path: loss(weights={path: v}), value)))
    return grads
