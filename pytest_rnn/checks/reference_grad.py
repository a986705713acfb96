"""Float64 NumPy gradients through time of SimpleRNN, LSTM and GRU, from the documented equations.

Why: a release that cuts or damps the gradient through time, drops the gradient
of the initial state or lets gradient into padded steps leaves every forward
value unchanged, so only an independent backward pass notices. This module is
that backward pass: the forward reference of :mod:`pytest_rnn.checks.reference`
recorded step by step, then each cell model's backward step (the derivatives are
written out in :mod:`pytest_rnn.checks.cell_models`), chained by the sequence engine
(:mod:`pytest_rnn.checks.recurrence`) from the last processed step back to the first
(backpropagation through time), and the layer's own gradients compared with the result.
A model without a backward step (a user's cell given by its NumPy step, ``step=``;
ConvLSTM) gets its reference gradients from float64 central differences of the same
forward pass (:mod:`pytest_rnn.checks.numeric_gradients`).

The loss is fixed and stated: every tensor the layer returns (outputs, then
states, in the layer's order) is multiplied elementwise by a fixed array of
standard normals drawn from ``numpy.random.default_rng(seed)`` in that order,
and all products are summed::

    L = sum_k sum(W_k * returned_k)

so ``dL/d returned_k = W_k`` and every returned element carries gradient.

Masks: a masked step keeps the previous states (their gradient passes straight
through to the step before) and outputs the previous output (or zeros with
``zero_output_for_mask``), so its inputs and weights receive nothing from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks import reference as fwd
from pytest_rnn.checks.activations import DERIVATIVES, activation_pair
from pytest_rnn.checks.behaviours import AT_MASKED_STEPS, DIFFERS_FROM_BACKWARD_PASS, GRADIENT_STOPS
from pytest_rnn.checks.cell_model import StackMath
from pytest_rnn.checks.cell_models import GATES, CellMath, variable_path
from pytest_rnn.checks.models import cell_kind
from pytest_rnn.checks.numeric_gradients import (
    difference_error,
    difference_gradients,
    state_gradient_names,
)
from pytest_rnn.checks.recurrence import layer_backward, sequence_inputs

__all__ = [
    "DERIVATIVES", "GATES", "UNIT_ROUNDOFF_FLOAT32", "CellGrad", "ReferenceGradients",
    "StackGrad", "activation_pair", "assert_gradients_match_reference", "compare_gradients",
    "gradient_tolerance", "layer_gradients", "loss_weights_for", "reference_gradients",
]

#: The models that give the forward reference give the backward pass too.
CellGrad, StackGrad = CellMath, StackMath


@dataclass
class ReferenceGradients:
    """What the reference computes for one call: the returned tensors, the loss weights and
    gradients of ``L = sum_k sum(W_k * returned_k)``.

    ``outputs``: ``[(name, array)]`` as :func:`reference.reference_outputs` names them;
    ``loss_weights``: the ``W_k`` in the same order; ``gradients``: ``[(name, array)]`` with
    ``inputs``, ``initial_state <name>`` (when an initial state was passed) and each weight
    by its variable path; ``error``: the bound on the gradients' own error (central
    differences, :func:`numeric_gradients.difference_error`; 0 for the backward pass).
    """

    outputs: list[tuple[str, np.ndarray]]
    loss_weights: list[np.ndarray]
    loss: float
    gradients: list[tuple[str, np.ndarray]]
    error: float = 0.0


def loss_weights_for(shapes: Sequence[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    """The fixed ``W_k``: standard normals of each shape, drawn in order from ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=tuple(s)) for s in shapes]


def reference_gradients(
    layer: Any,
    inputs: Any,
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    seed: int = 0,
    step: Any = None,
) -> ReferenceGradients:
    """Returned tensors, loss and float64 gradients of the fixed loss for one call of ``layer``.

    Accepts the layers :func:`reference.reference_outputs` accepts (built), ``step`` too.
    See the module docstring for the loss and the derivatives.
    """
    x, m = sequence_inputs(inputs, mask, rank=None)
    init = None if initial_state is None else [
        compare.to_numpy(s).astype(np.float64) for s in compare.flatten(initial_state)]
    outputs, runs = fwd.reference_call(layer, x, initial_state=init, mask=m, record=True,
                                       step=step)
    weights = loss_weights_for([a.shape for _, a in outputs], seed)
    loss = float(sum(np.sum(w * a) for w, (_, a) in zip(weights, outputs, strict=True)))
    if not all(run.model.has_backward for run in runs):
        return ReferenceGradients(outputs, weights, loss, difference_gradients(
            layer, x, init, m, weights, step=step), difference_error(outputs, weights))

    if len(runs) == 1:
        (run,) = runs
        d_final = weights[1:] if layer.return_state else [np.zeros_like(s) for s in run.states]
        dx, d_init, weight_grads = layer_backward(run, weights[0], d_final)
        grad_list = [("inputs", dx)]
        if init is not None:
            grad_list += list(zip(state_gradient_names(runs), d_init, strict=True))
        return ReferenceGradients(outputs, weights, loss, grad_list + weight_grads)

    f_run, b_run = runs
    seq = layer.return_sequences
    y_f = f_run.output
    y_b = b_run.output[:, ::-1] if seq else b_run.output  # input order
    mode = layer.merge_mode
    n_out = 2 if mode is None else 1
    w_out = weights[0]
    if mode == "concat":
        units = y_f.shape[-1]
        d_f, d_b = w_out[..., :units], w_out[..., units:]
    elif mode == "sum":
        d_f, d_b = w_out, w_out
    elif mode == "ave":
        d_f, d_b = w_out / 2, w_out / 2
    elif mode == "mul":
        d_f, d_b = w_out * y_b, w_out * y_f
    elif mode is None:
        d_f, d_b = weights[0], weights[1]
    else:
        raise ValueError(f"no reference gradients for merge_mode {mode!r}")
    if seq:
        d_b = d_b[:, ::-1]  # back to the backward layer's processing order
    n_f = len(f_run.states)
    if layer.return_state:
        d_ff, d_bf = weights[n_out : n_out + n_f], weights[n_out + n_f :]
    else:
        d_ff = [np.zeros_like(s) for s in f_run.states]
        d_bf = [np.zeros_like(s) for s in b_run.states]
    dx_f, d_init_f, g_f = layer_backward(f_run, d_f, d_ff)
    dx_b, d_init_b, g_b = layer_backward(b_run, d_b, d_bf)
    grad_list = [("inputs", dx_f + dx_b)]
    if init is not None:
        grad_list += list(zip(state_gradient_names(runs), d_init_f + d_init_b, strict=True))
    return ReferenceGradients(outputs, weights, loss, grad_list + g_f + g_b)


# ---------------------------------------------------------------------------------------------
# the layer's own gradients and the comparison

UNIT_ROUNDOFF_FLOAT32 = 2.0**-24


def gradient_tolerance(steps: int, fan_in: int) -> float:
    """Relative tolerance (times ``max(1, max|reference|)``) of a float32 gradient against the
    float64 reference.

    Derivation: in float32 (unit roundoff ``u = 2**-24``) a dot product of length ``n``
    has error at most ``n u`` relative to the sum of its terms' magnitudes (the standard
    bound ``gamma_n``). One backward step goes through three such products (input,
    recurrent and kernel transposes, ``n <= fan_in`` = the widest of features and
    gates * units) and about ten elementwise operations, transcendental ones accurate to
    about 4 ulp: ``(3 n + 40) u``. Back through ``steps`` steps the errors add (the
    cells' Jacobians have norm about 1 at the small weights these tests use), and the
    terms are of the size of the largest gradient element (the loss weights are standard
    normals, so at least about 1): ``steps (3 n + 40) u max(1, max|g|)``.
    For 4 steps of an LSTM with 3 units this is 2e-5; measured differences are below
    1e-6, and the regressions these checks exist for change gradients by 1e-2 or more.
    """
    return steps * (3 * fan_in + 40) * UNIT_ROUNDOFF_FLOAT32


def _cells_of(layer: Any) -> list[Any]:
    layers = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]
    layers = [lay for lay in layers if lay is not None] or [layer]
    cells = []
    for lay in layers:
        cell = lay.cell
        cells.extend(getattr(cell, "cells", [cell]))
    return cells


def _kind(cell: Any) -> str | None:
    """The cell's kind (:func:`cell_kind`), None for one without a built-in backward step."""
    try:
        return cell_kind(cell)
    except ValueError:
        return None


def _fan_in(layer: Any, features: int) -> int:
    """The longest dot product of a step: gates times units; for another cell, the longest
    a weight takes part in (its last axis, or the product of the others)."""
    widest = features
    for cell in _cells_of(layer):
        kind = _kind(cell)
        sizes = [len(GATES[kind]) * int(cell.units)] if kind else [
            max(int(np.prod(w.shape[:-1])), int(w.shape[-1]) if w.shape else 1)
            for w in cell.weights]
        widest = max([widest, *sizes])
    return widest


def layer_gradients(
    layer: Any,
    inputs: Any,
    loss_weights: Sequence[np.ndarray],
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    training: bool | None = None,
) -> tuple[float, list[tuple[str, np.ndarray | None]]]:
    """The layer's own loss and gradients of ``L = sum_k sum(W_k * returned_k)``, taken by the
    active Keras backend through :mod:`pytest_rnn.backends`, named as the reference names
    them (``inputs``, ``initial_state <i>``, weight paths)."""
    from pytest_rnn import backends

    states = [] if initial_state is None else [
        np.asarray(compare.to_numpy(s), dtype=np.float32) for s in compare.flatten(initial_state)]
    weights = [keras.ops.convert_to_tensor(np.asarray(w, dtype=np.float32))
               for w in loss_weights]

    tree = compare.keras_tree()

    def loss_fn(x, *init):
        kwargs: dict[str, Any] = {}
        if init:  # in the structure the caller gave (nested for stacked cells)
            kwargs["initial_state"] = tree.pack_sequence_as(initial_state, list(init))
        if mask is not None:
            kwargs["mask"] = keras.ops.convert_to_tensor(np.asarray(mask, dtype=bool))
        if training is not None:
            kwargs["training"] = training
        returned = tree.flatten(layer(x, **kwargs))
        if len(returned) != len(weights):
            raise AssertionError(
                f"{type(layer).__name__} {layer.name!r} returned {len(returned)} tensors; the "
                f"reference expects {len(weights)}"
            )
        total = 0.0
        for value, w in zip(returned, weights, strict=True):
            total = total + keras.ops.sum(keras.ops.cast(value, "float32") * w)
        return total

    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    variables = list(layer.trainable_weights)
    loss, g_vars, g_inputs = backends.value_and_grad(loss_fn, variables, [x, *states])
    named = [("inputs", g_inputs[0])]
    named += [(f"initial_state {i}", g) for i, g in enumerate(g_inputs[1:])]
    named += [(variable_path(v), g) for v, g in zip(variables, g_vars, strict=True)]
    return loss, named


def _gate_of(name: str, column: int, cells: dict[str, tuple[str, int]]) -> str:
    """``column 7 is gate c, unit 1`` for a weight column (kernels put gates side by side)."""
    kind, units = cells.get(name, ("", 0))
    gates = GATES.get(kind, ("",))
    if units and len(gates) > 1 and column < len(gates) * units:
        return f"column {column} is gate {gates[column // units]}, unit {column % units}"
    return f"column {column} is unit {column % units}" if units else ""


def _worst(value: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> tuple[int, ...]:
    """Index of the largest difference among those beyond ``atol + rtol |ref|`` (the element
    :func:`compare.difference` reports as worst)."""
    diff = np.abs(value - ref)
    bad = ~(diff <= atol + rtol * np.abs(ref))
    return tuple(int(i) for i in np.unravel_index(
        int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0))), diff.shape))


def _step_story(bad_steps: np.ndarray, order: list[int]) -> str:
    """How the set of steps whose input gradient differs reads back in time."""
    bad = [t for t in order if bad_steps[t]]
    good_tail = []
    for t in reversed(order):  # from the last processed step back
        if bad_steps[t]:
            break
        good_tail.append(t)
    first_bad = [t for t in reversed(order) if bad_steps[t]][0]
    story = f"differing steps {sorted(bad)} of {len(order)}"
    if good_tail:
        story += (
            f"; going back in time from the last processed step {order[-1]}, gradients agree "
            f"at steps {sorted(good_tail)} and diverge from step {first_bad} on "
            f"({GRADIENT_STOPS} {good_tail[-1]})"
        )
    return story


def compare_gradients(
    got: list[tuple[str, np.ndarray | None]],
    reference: ReferenceGradients,
    *,
    atol: float,
    rtol: float,
    what: str,
    order: list[int],
    mask: np.ndarray | None = None,
    cells: dict[str, tuple[str, int]] | None = None,
) -> None:
    """Raise an AssertionError naming each gradient that differs, where and how."""
    cells = cells or {}
    want = dict(reference.gradients)
    # the layer's initial states are numbered: pair them with the reference's names
    ref_states = [n for n in want if n.startswith("initial_state")]
    got_states = [n for n, _ in got if n.startswith("initial_state")]
    rename = dict(zip(got_states, ref_states, strict=False))
    got = [(rename.get(n, n), v) for n, v in got]
    got_names = [n for n, _ in got]
    missing = [n for n in want if n not in got_names]
    extra = [n for n in got_names if n not in want]
    problems = []
    if missing or extra:
        problems.append(f"  the reference has gradients of {missing} that the layer lacks, "
                        f"the layer of {extra} that the reference lacks")
    for name, value in got:
        if name not in want:
            continue
        ref = want[name]
        if value is None:
            problems.append(f"  dL/d {name}: no gradient at all (the loss does not depend on it); "
                            f"the reference's largest is {np.abs(ref).max():.3g}")
            continue
        value = np.asarray(value, dtype=np.float64)
        tol = atol * max(1.0, float(np.abs(ref).max()))  # relative to the tensor's scale
        if name == "inputs":  # (batch, step, ...) like a ConvLSTM's inputs too
            axes = fwd.step_axes(ref.ndim, ref.ndim) or ("batch", "step", "feature")
        elif name.startswith("initial_state"):
            axes = fwd.step_axes(ref.ndim, ref.ndim + 1) or ("batch", "unit")
        else:
            axes = {1: ("column",), 2: ("row", "column")}.get(ref.ndim)
        line = compare.difference(f"dL/d {name}", value, ref, atol=tol, rtol=rtol, axes=axes,
                                  labels=("layer", "reference"))
        if line is None:
            continue
        if value.shape == ref.shape and name != "inputs" and \
                not name.startswith("initial_state"):
            gate = _gate_of(name, _worst(value, ref, tol, rtol)[-1], cells)
            line += f" ({gate})" if gate else ""
        if name == "inputs" and value.shape == ref.shape:
            bad = ~(np.abs(value - ref) <= tol + rtol * np.abs(ref))
            line += "; " + _step_story(bad.any(axis=(0, *range(2, bad.ndim))), order)
            if mask is not None:
                keep = mask.reshape(mask.shape + (1,) * (bad.ndim - 2))
                leak = bad & ~keep
                if leak.any() and not (bad & keep).any():
                    b, t = np.argwhere(leak.any(axis=tuple(range(2, bad.ndim))))[0]
                    line += (f"; {AT_MASKED_STEPS}, where the "
                             f"reference gradient is exactly 0: gradient leaks into padded "
                             f"steps (e.g. batch {b}, step {t})")
        problems.append("  " + line)
    if problems:
        raise AssertionError(
            f"{what}: gradients of L = sum_k sum(W_k * returned_k) (W_k fixed standard normals) "
            f"{DIFFERS_FROM_BACKWARD_PASS} (atol {atol:.3g} "
            f"* max(1, max|ref|) per tensor, rtol {rtol:.3g}):\n" + "\n".join(problems)
        )


def assert_gradients_match_reference(
    layer: Any,
    inputs: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    step: Any = None,
    **call_kwargs: Any,
) -> ReferenceGradients:
    """Assert the gradients ``layer`` gives equal the float64 NumPy backward pass through time.

    ``assert_gradients_match_reference(layer, inputs, *, atol=None, rtol=None, seed=0,
    step=None, **call_kwargs)``. ``layer``: a SimpleRNN, LSTM or GRU layer (either
    ``reset_after``), a ``keras.layers.RNN`` over their cells or a stack of them, or a
    ``Bidirectional`` of those (any merge mode); a ConvLSTM layer; or a layer over your own
    cell with ``step`` its NumPy step, as for :func:`reference.assert_matches_reference`.
    Built for ``inputs`` if it is not. ``call_kwargs``:
    ``initial_state``, ``mask``, ``training`` (``training=True`` only without dropout).

    The loss is ``L = sum_k sum(W_k * returned_k)`` over every tensor the call returns,
    ``W_k`` standard normals from ``numpy.random.default_rng(seed)``. Gradients are taken
    with respect to the inputs, each initial state passed and every trainable weight, by
    the active backend (:mod:`pytest_rnn.backends`). A failure names the tensor (weight
    path, ``inputs`` or ``initial_state <name>``), the batch, step and unit (gate and
    unit for weight columns) of the worst difference, the first differing step, and
    how far back in time the gradient still agrees ("gradient stops flowing back beyond
    step k"). Default tolerances: :func:`gradient_tolerance`, the float32 layer's error;
    where the reference takes central differences (``step``, ConvLSTM) their error bound
    :func:`numeric_gradients.difference_error` (derived there) adds to ``atol``, so the
    comparison allows both errors (``atol`` is scaled by ``max(1, max|ref|) >= 1``).
    Returns the reference's :class:`ReferenceGradients`.
    """
    fwd.check_call_kwargs(layer, call_kwargs)
    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    if not layer.built:
        layer.build(x.shape)
    mask = call_kwargs.get("mask")
    mask = None if mask is None else np.asarray(compare.to_numpy(mask), dtype=bool)
    init = call_kwargs.get("initial_state")
    reference = reference_gradients(layer, x, initial_state=init, mask=mask, seed=seed,
                                    step=step)
    _, got = layer_gradients(layer, x, reference.loss_weights, initial_state=init, mask=mask,
                             training=call_kwargs.get("training"))
    tol = gradient_tolerance(x.shape[1], _fan_in(layer, x.shape[-1]))
    steps = x.shape[1]
    go_backwards = bool(getattr(getattr(layer, "forward_layer", layer), "go_backwards", False))
    order = list(range(steps - 1, -1, -1)) if go_backwards else list(range(steps))
    cells = {}
    for cell in _cells_of(layer):
        for attr in ("kernel", "recurrent_kernel", "bias"):
            var = getattr(cell, attr, None)
            if var is not None and _kind(cell):
                cells[variable_path(var)] = (_kind(cell), int(cell.units))
    compare_gradients(
        got, reference, atol=tol + reference.error if atol is None else atol,
        rtol=tol if rtol is None else rtol, order=order, mask=mask, cells=cells,
        what=f"{type(layer).__name__} {layer.name!r}" + (
            " (reference by float64 central differences of its NumPy model)"
            if reference.error else ""))
    return reference

