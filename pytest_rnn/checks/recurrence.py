"""The sequence engine: any :class:`~pytest_rnn.checks.cell_model.CellModel` over whole
sequences as Keras's time loop runs a cell, forward, and backward through time.

Masking follows Keras's backend loop: a masked step keeps the previous states and
outputs the previous step's output, or zeros with ``zero_output_for_mask`` (which
``Bidirectional`` turns on for layers returning sequences); with ``go_backwards`` the
sequence (and mask) is processed from the end and the returned sequence is in
processing order. Backward, a masked step passes its states' gradient straight through
to the step before and its output's to the previous output (or nowhere with
``zero_output_for_mask``), so its inputs and weights receive nothing from it.

The layer-level part reads a Keras RNN layer: its cell model (:func:`model_of`), its
starting states (given, a stateful layer's variables, or zeros) and its settings
(:func:`run_layer`), and takes the gradient of what it returned back (:func:`layer_backward`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.cell_model import Array, CellModel, StackMath, Weights
from pytest_rnn.checks.cell_models import CellMath
from pytest_rnn.checks.conv_lstm_model import ConvLSTMMath
from pytest_rnn.checks.models import cell_kind
from pytest_rnn.checks.step_model import PASS_A_STEP, NumpyCell


@dataclass
class Tape:
    """What a forward run keeps for its backward run: the processing order, each step's
    ``saved`` dict and mask column (None without a mask)."""

    order: list[int] = field(default_factory=list)
    saved: list[dict] = field(default_factory=list)
    keeps: list[Array | None] = field(default_factory=list)


def _broadcast(keep: Array, like: Array) -> Array:
    """A ``(batch,)`` mask column shaped to select among rows of ``like``."""
    return keep.reshape(keep.shape + (1,) * (like.ndim - 1))


def run_recurrence(
    math: CellModel,
    inputs: Array,
    states: list[Array],
    *,
    mask: Array | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    dropout_masks: Any = None,
    weights: Weights | None = None,
    tape: Tape | None = None,
) -> tuple[Array, Array, list[Array]]:
    """``(last_output, outputs, final_states)`` of Keras's time loop, in NumPy.

    ``outputs`` is ``(batch, steps, units)`` (``(batch, steps, ...)`` for ConvLSTM)
    in processing order (reversed input order with ``go_backwards``), as Keras
    returns it. ``dropout_masks`` (a :class:`StepMasks`, or one per cell of a
    stack) is applied at every step, as Keras reuses one draw for the whole call.
    ``weights`` default to ``math.weights()``; a ``tape`` records what
    :func:`run_backward` needs.
    """
    weights = math.weights() if weights is None else weights
    steps = inputs.shape[1]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    prev_output = None
    outputs = []
    for t in order:
        saved = None if tape is None else {}
        output, new_states = math.step(
            inputs[:, t], states, weights, masks=dropout_masks, saved=saved)
        keep = None if mask is None else mask[:, t]
        if keep is not None:
            if prev_output is None:
                prev_output = np.zeros_like(output)
            fill = np.zeros_like(output) if zero_output_for_mask else prev_output
            output = np.where(_broadcast(keep, output), output, fill)
            new_states = [
                np.where(_broadcast(keep, new), new, old)
                for new, old in zip(new_states, states, strict=True)
            ]
        if tape is not None:
            tape.order.append(t)
            tape.saved.append(saved)
            tape.keeps.append(keep)
        states = new_states
        prev_output = output
        outputs.append(output)
    stacked = np.stack(outputs, axis=1)
    return stacked[:, -1], stacked, states


def run_backward(
    math: CellModel,
    tape: Tape,
    d_outputs: Array,
    d_final: list[Array],
    inputs_shape: tuple[int, ...],
    *,
    zero_output_for_mask: bool = False,
    weights: Weights | None = None,
) -> tuple[Array, list[Array], dict[str, Array]]:
    """``(d_inputs, d_initial_states, weight_grads)`` from the gradients of the
    processing-order output sequence and of the final states (backpropagation through
    time: from the last processed step back to the first)."""
    weights = math.weights() if weights is None else weights
    grads = {name: np.zeros_like(w) for name, w in weights.items()}
    d_inputs = np.zeros(inputs_shape)
    d_states = [np.array(d, dtype=np.float64) for d in d_final]
    d_carry = np.zeros_like(d_outputs[:, 0])  # to the previous output, from a masked step
    for j in range(len(tape.order) - 1, -1, -1):
        keep = tape.keeps[j]
        d_out = d_outputs[:, j] + d_carry
        d_carry = np.zeros_like(d_out)
        d_skip = None
        if keep is not None:
            if not zero_output_for_mask:
                d_carry = np.where(_broadcast(keep, d_out), 0.0, d_out)
            d_out = np.where(_broadcast(keep, d_out), d_out, 0.0)
            d_skip = [np.where(_broadcast(keep, d), 0.0, d) for d in d_states]
            d_states = [np.where(_broadcast(keep, d), d, 0.0) for d in d_states]
        d_x, d_prev = math.step_backward(tape.saved[j], d_out, d_states, weights, grads)
        d_inputs[:, tape.order[j]] += d_x
        d_states = list(d_prev) if d_skip is None else [
            a + b for a, b in zip(d_prev, d_skip, strict=True)]
    return d_inputs, d_states, grads


# ---------------------------------------------------------------------------------------------
# Keras layers


BUILT_IN = "SimpleRNN, LSTM, GRU and ConvLSTM1D/2D/3D"


def _cell_math(cell: Any) -> CellModel:
    if hasattr(cell, "rank") and hasattr(cell, "filters") and hasattr(cell, "recurrent_kernel"):
        return ConvLSTMMath.of(cell)  # keras.layers.ConvLSTM1D/2D/3D's cell
    try:
        cell_kind(cell)
    except ValueError:
        raise ValueError(f"the reference has no built-in model of {type(cell).__name__} "
                         f"(it has {BUILT_IN} cells); {PASS_A_STEP}") from None
    return CellMath.of(cell)


def model_of(layer: Any, step: Any = None) -> CellModel:
    """The cell model of a Keras RNN layer (a stack for ``StackedRNNCells``); with ``step``
    (a function or :class:`NumpyCell`), that step bound to the layer's cell."""
    cell = getattr(layer, "cell", None)
    if cell is None:
        raise ValueError(
            f"the reference models {BUILT_IN} layers, keras.layers.RNN over their cells or "
            f"any cell given its NumPy step, and Bidirectional wrappers of those; got "
            f"{type(layer).__name__}"
        )
    if step is not None:
        return NumpyCell.of(step).model(cell)
    if isinstance(cell, keras.layers.StackedRNNCells):
        return StackMath([_cell_math(c) for c in cell.cells])
    return _cell_math(cell)


def sequence_inputs(inputs: Any, mask: Any, rank: int | None = 0) -> tuple[Array, Array | None]:
    """``inputs`` as float64 ``(batch, steps, ...)`` and ``mask`` as ``(batch, steps)`` bools
    (None stays None), checked; ``rank``: a ConvLSTM's number of spatial axes (None: any)."""
    x = compare.to_numpy(inputs).astype(np.float64)
    if x.ndim < 3 if rank is None else x.ndim != 3 + rank:
        spatial = "..." if rank is None else f"{rank} spatial axes, channels" if rank else \
            "features"
        raise ValueError(f"inputs must be (batch, steps, {spatial}); got shape {x.shape}")
    if mask is None:
        return x, None
    m = compare.to_numpy(mask).astype(bool)
    if m.shape != x.shape[:2]:
        raise ValueError(f"mask must have shape {x.shape[:2]} (batch, steps); got {m.shape}")
    return x, m


@dataclass
class LayerRun:
    """One RNN layer's forward run: what it returns (``output``: the sequence or the last
    step), its final states and, when recorded, the tape for :func:`layer_backward`."""

    layer: Any
    model: CellModel
    weights: Weights
    inputs_shape: tuple[int, ...]
    output: Array
    outputs: Array  # (batch, steps, ...) in processing order
    states: list[Array]  # final
    tape: Tape | None

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.model.state_names


def run_layer(
    layer: Any,
    inputs: Array,
    initial_state: list[Array] | None,
    mask: Array | None,
    dropout_masks: Any = None,
    *,
    record: bool = False,
    step: Any = None,
    weights: Mapping[str, Array] | None = None,
) -> LayerRun:
    """Run one RNN layer's cell model (``step``'s, else the built-in one: :func:`model_of`)
    as the layer's settings say, from ``initial_state``, a stateful layer's current state
    variables, or zeros; ``weights`` (by variable path) replace the variables' values."""
    model = model_of(layer, step)
    if initial_state is not None:
        states = [np.asarray(s, dtype=np.float64) for s in initial_state]
    elif getattr(layer, "stateful", False) and layer.states is not None:
        states = [compare.to_numpy(v).astype(np.float64) for v in compare.flatten(layer.states)]
    else:
        states = model.zero_states(inputs)
    if len(states) != len(model.state_names):
        raise ValueError(
            f"{layer.name!r} takes {len(model.state_names)} initial states "
            f"({', '.join(model.state_names)}); got {len(states)}"
        )
    given, paths, tape = weights or {}, model.weight_paths, Tape() if record else None
    weights = {name: given.get(paths.get(name, name), w) for name, w in model.weights().items()}
    last, sequence, final = run_recurrence(
        model,
        inputs,
        states,
        mask=mask,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
        dropout_masks=dropout_masks,
        weights=weights,
        tape=tape,
    )
    output = sequence if layer.return_sequences else last
    return LayerRun(layer, model, weights, inputs.shape, output, sequence, final, tape)


def layer_backward(
    run: LayerRun, d_output: Array, d_final: list[Array]
) -> tuple[Array, list[Array], list[tuple[str, Array]]]:
    """``(d_inputs, d_initial_states, [(weight path, gradient), ...])`` of a recorded run from
    the gradients of what the layer returned: its output (sequence in processing order, or
    the last step) and its final states."""
    if run.tape is None:
        raise ValueError("layer_backward needs a run recorded with record=True")
    if not run.model.has_backward:
        raise ValueError(f"the model of {run.layer.name!r} has no backward step")
    d_sequence = np.zeros_like(run.outputs)
    if run.layer.return_sequences:
        d_sequence += d_output
    else:
        d_sequence[:, -1] += d_output
    d_inputs, d_initial, grads = run_backward(
        run.model, run.tape, d_sequence, d_final, run.inputs_shape,
        zero_output_for_mask=run.layer.zero_output_for_mask, weights=run.weights,
    )
    paths = run.model.weight_paths
    return d_inputs, d_initial, [(paths.get(name, name), g) for name, g in grads.items()]
