"""NumPy forward passes of Keras's SimpleRNN, LSTM and GRU, from a layer's own weights.

Why a second implementation: a Keras release that reorders gates, drops a
bias, swaps the reset gate's side of the matmul or loses a mask still produces
plausible numbers of the right shape. Only an independent computation of the
documented equations notices. The reference reads the layer's weights and
configuration (activations, ``use_bias``, ``reset_after``, ``return_sequences``,
``return_state``, ``go_backwards``, ``zero_output_for_mask``, ``stateful``) and
computes in float64 what the layer should return:

* SimpleRNN: ``h = act(x K + b + h R)``
* LSTM (gates i, f, c, o in that column order): ``z = x K + h R + b``;
  ``c = rec(z_f) * c + rec(z_i) * act(z_c)``; ``h = rec(z_o) * act(c)``
* GRU (gates z, r, h): ``h = z * h + (1 - z) * act(x K_h + b_h + r * (h R_h + b'_h))``
  with ``reset_after=True`` (two bias rows), or
  ``act(x K_h + b_h + (r * h) R_h)`` with ``reset_after=False`` (one row).

Masking follows Keras's backend loop: a masked step keeps the previous states
and outputs the previous step's output, or zeros with ``zero_output_for_mask``
(which ``Bidirectional`` turns on for layers returning sequences); with
``go_backwards`` the sequence (and mask) is processed from the end and the
returned sequence is in processing order. cuDNN kernels (GPU) differ for masked
sequences (padded outputs are zero, the last output is the final ``h``), so
compare masked calls on the backend-native path (``use_cudnn=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.models import cell_kind
from pytest_rnn.checks.shapes import STATE_NAMES

Named = list[tuple[str, np.ndarray]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0  # Keras 3: relu6(x + 3) / 6


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

#: NumPy versions of Keras activations, by the name Keras serializes them under.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "exponential": np.exp,
    "silu": lambda x: x * _sigmoid(x),
    "hard_silu": lambda x: x * _hard_sigmoid(x),
}


def numpy_activation(fn: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The NumPy twin of a Keras activation function; ValueError for one without a twin."""
    name = getattr(fn, "__name__", None) if fn is not None else "linear"
    aliases = {"swish": "silu", "hard_swish": "hard_silu"}
    name = aliases.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(
            f"no NumPy reference for activation {fn!r}; supported: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]


@dataclass
class CellMath:
    """One cell's weights (float64) and activations, and its step in NumPy."""

    kind: str
    units: int
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    activation: Callable[[np.ndarray], np.ndarray]
    recurrent_activation: Callable[[np.ndarray], np.ndarray]
    reset_after: bool = True

    @classmethod
    def of(cls, cell: Any) -> CellMath:
        """Read a built SimpleRNNCell, LSTMCell or GRUCell (subclasses included)."""
        kind = cell_kind(cell)
        if not cell.built:
            raise ValueError(f"cell {cell.name!r} is not built; build or call its layer first")
        bias = None if cell.bias is None else np.asarray(cell.bias, dtype=np.float64)
        return cls(
            kind=kind,
            units=int(cell.units),
            kernel=np.asarray(cell.kernel, dtype=np.float64),
            recurrent_kernel=np.asarray(cell.recurrent_kernel, dtype=np.float64),
            bias=bias,
            activation=numpy_activation(cell.activation),
            recurrent_activation=(
                numpy_activation(cell.recurrent_activation) if kind != "simple_rnn" else _sigmoid
            ),
            reset_after=bool(getattr(cell, "reset_after", True)),
        )

    @property
    def state_names(self) -> tuple[str, ...]:
        return STATE_NAMES[self.kind]

    def zero_states(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, self.units)) for _ in self.state_names]

    def step(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list]:
        """``(output, new_states)`` for one time step, as the Keras cell defines it."""
        return getattr(self, f"_{self.kind}")(x, states)

    def _simple_rnn(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list]:
        z = x @ self.kernel + states[0] @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        h = self.activation(z)
        return h, [h]

    def _lstm(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list]:
        h_prev, c_prev = states
        z = x @ self.kernel + h_prev @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        act, rec = self.activation, self.recurrent_activation
        c = rec(z_f) * c_prev + rec(z_i) * act(z_c)
        h = rec(z_o) * act(c)
        return h, [h, c]

    def _gru(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list]:
        (h_prev,) = states
        u = self.units
        input_bias = recurrent_bias = None
        if self.bias is not None:
            if self.reset_after:
                input_bias, recurrent_bias = self.bias[0], self.bias[1]
            else:
                input_bias = self.bias
        x_proj = x @ self.kernel
        if input_bias is not None:
            x_proj = x_proj + input_bias
        x_z, x_r, x_h = np.split(x_proj, 3, axis=-1)
        rk = self.recurrent_kernel
        rec_zr = h_prev @ rk[:, : 2 * u]
        if recurrent_bias is not None:
            rec_zr = rec_zr + recurrent_bias[: 2 * u]
        z = self.recurrent_activation(x_z + rec_zr[:, :u])
        r = self.recurrent_activation(x_r + rec_zr[:, u:])
        if self.reset_after:
            rec_h = h_prev @ rk[:, 2 * u :]
            if recurrent_bias is not None:
                rec_h = rec_h + recurrent_bias[2 * u :]
            candidate = self.activation(x_h + r * rec_h)
        else:
            candidate = self.activation(x_h + (r * h_prev) @ rk[:, 2 * u :])
        h = z * h_prev + (1.0 - z) * candidate
        return h, [h]


class StackMath:
    """Cells applied one after another in each step (``StackedRNNCells`` / ``RNN([cells])``)."""

    def __init__(self, cells: Sequence[CellMath]):
        self.cells = list(cells)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(
            f"cell {i} {name}" for i, cell in enumerate(self.cells) for name in cell.state_names
        )

    def zero_states(self, batch: int) -> list[np.ndarray]:
        return [s for cell in self.cells for s in cell.zero_states(batch)]

    def step(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list]:
        new_states, offset = [], 0
        for cell in self.cells:
            n = len(cell.state_names)
            x, cell_states = cell.step(x, states[offset : offset + n])
            new_states.extend(cell_states)
            offset += n
        return x, new_states


def _math_of(layer: Any) -> CellMath | StackMath:
    cell = getattr(layer, "cell", None)
    if cell is None:
        raise ValueError(
            "the reference models SimpleRNN, LSTM or GRU layers, keras.layers.RNN over their "
            f"cells, and Bidirectional wrappers of those; got {type(layer).__name__}"
        )
    if isinstance(cell, keras.layers.StackedRNNCells):
        return StackMath([CellMath.of(c) for c in cell.cells])
    return CellMath.of(cell)


def run_recurrence(
    math: CellMath | StackMath,
    inputs: np.ndarray,
    states: list[np.ndarray],
    *,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(last_output, outputs, final_states)`` of Keras's time loop, in NumPy.

    ``outputs`` is ``(batch, steps, units)`` in processing order (reversed input
    order with ``go_backwards``), as Keras returns it.
    """
    batch, steps = inputs.shape[:2]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    prev_output = None
    outputs = []
    for t in order:
        output, new_states = math.step(inputs[:, t], states)
        if mask is not None:
            keep = mask[:, t, None]
            if prev_output is None:
                prev_output = np.zeros_like(output)
            fill = np.zeros_like(output) if zero_output_for_mask else prev_output
            output = np.where(keep, output, fill)
            new_states = [
                np.where(keep, new, old) for new, old in zip(new_states, states, strict=True)
            ]
        states = new_states
        prev_output = output
        outputs.append(output)
    stacked = np.stack(outputs, axis=1)
    return stacked[:, -1], stacked, states


def _check_kwargs(layer: Any, call_kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(call_kwargs) - {"initial_state", "mask", "training"})
    if unknown:
        raise ValueError(
            f"the reference models calls with initial_state, mask and training only; "
            f"got {', '.join(unknown)}"
        )
    if call_kwargs.get("training"):
        layers = [getattr(layer, "forward_layer", layer), getattr(layer, "backward_layer", layer)]
        cells = [getattr(lay, "cell", lay) for lay in layers]
        cells = [c for cell in cells for c in compare.flatten(getattr(cell, "cells", [cell]))]
        rates = [
            (c.name, getattr(c, "dropout", 0.0), getattr(c, "recurrent_dropout", 0.0))
            for c in cells
        ]
        if any(d or rd for _, d, rd in rates):
            raise ValueError(
                "training=True with dropout draws random masks the reference cannot know; "
                f"dropout rates (cell, dropout, recurrent_dropout): {rates}"
            )


def _rnn_outputs(
    layer: Any,
    inputs: np.ndarray,
    initial_state: list[np.ndarray] | None,
    mask: np.ndarray | None,
) -> tuple[np.ndarray, list[np.ndarray], tuple[str, ...]]:
    """The output (sequence or last step) and final states of one RNN layer."""
    math = _math_of(layer)
    batch = inputs.shape[0]
    if initial_state is not None:
        states = [np.asarray(s, dtype=np.float64) for s in initial_state]
    elif getattr(layer, "stateful", False) and layer.states is not None:
        states = [compare.to_numpy(v).astype(np.float64) for v in compare.flatten(layer.states)]
    else:
        states = math.zero_states(batch)
    if len(states) != len(math.state_names):
        raise ValueError(
            f"{layer.name!r} takes {len(math.state_names)} initial states "
            f"({', '.join(math.state_names)}); got {len(states)}"
        )
    last, sequence, final = run_recurrence(
        math,
        inputs,
        states,
        mask=mask,
        go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask,
    )
    return (sequence if layer.return_sequences else last), final, math.state_names


def reference_outputs(
    layer: Any,
    inputs: Any,
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    training: bool = False,
) -> Named:
    """What ``layer(inputs, initial_state=..., mask=...)`` should return, computed in NumPy.

    ``layer`` is a built SimpleRNN, LSTM or GRU layer, a ``keras.layers.RNN`` over
    one of their cells or a stack of them, or a ``Bidirectional`` wrapping any of
    those. Returns ``[(name, array), ...]`` in the order the layer returns its
    tensors (nested state lists flattened): ``output`` then states such as ``h``
    and ``c``; for ``Bidirectional``, ``forward ...`` then ``backward ...``.
    A stateful layer starts from its current state variables.
    """
    _check_kwargs(layer, {"training": training})
    x = compare.to_numpy(inputs).astype(np.float64)
    if x.ndim != 3:
        raise ValueError(f"inputs must be (batch, steps, features); got shape {x.shape}")
    m = None
    if mask is not None:
        m = compare.to_numpy(mask).astype(bool)
        if m.shape != x.shape[:2]:
            raise ValueError(f"mask must have shape {x.shape[:2]} (batch, steps); got {m.shape}")
    init = None if initial_state is None else compare.leaves(initial_state)

    forward = getattr(layer, "forward_layer", None)
    if forward is None:
        output, states, state_names = _rnn_outputs(layer, x, init, m)
        if not layer.return_state:
            return [("output", output)]
        return [("output", output)] + list(zip(state_names, states, strict=True))

    backward = layer.backward_layer
    half = None if init is None else len(init) // 2
    y, fwd_states, names = _rnn_outputs(forward, x, None if init is None else init[:half], m)
    y_rev, bwd_states, _ = _rnn_outputs(backward, x, None if init is None else init[half:], m)
    if layer.return_sequences:
        y_rev = y_rev[:, ::-1]
    merged: Named
    if layer.merge_mode == "concat":
        merged = [("output", np.concatenate([y, y_rev], axis=-1))]
    elif layer.merge_mode == "sum":
        merged = [("output", y + y_rev)]
    elif layer.merge_mode == "ave":
        merged = [("output", (y + y_rev) / 2)]
    elif layer.merge_mode == "mul":
        merged = [("output", y * y_rev)]
    elif layer.merge_mode is None:
        merged = [("forward output", y), ("backward output", y_rev)]
    else:
        raise ValueError(f"no reference for merge_mode {layer.merge_mode!r}")
    if not layer.return_state:
        return merged
    return (
        merged
        + [(f"forward {n}", s) for n, s in zip(names, fwd_states, strict=True)]
        + [(f"backward {n}", s) for n, s in zip(names, bwd_states, strict=True)]
    )


def compare_outputs(actual: Any, reference: Named, *, atol: float, rtol: float, what: str) -> None:
    """Raise an AssertionError describing every output of ``actual`` that differs from
    ``reference`` (see :func:`pytest_rnn.checks.compare.assert_allclose`)."""
    compare.assert_allclose(
        actual, reference, atol=atol, rtol=rtol, labels=("layer", "reference"),
        what=f"{what} differs from the NumPy reference (atol={atol:g}, rtol={rtol:g})",
    )


def assert_matches_reference(
    layer: Any, inputs: Any, *, atol: float = 1e-5, rtol: float = 1e-5, **call_kwargs: Any
) -> Named:
    """Call ``layer(inputs, **call_kwargs)`` and assert it equals the NumPy reference.

    ``call_kwargs`` may hold ``initial_state``, ``mask`` and ``training``
    (``training=True`` only without dropout). An unbuilt layer is built for
    ``inputs`` first. The failure message says which output or state differs
    (``output``, ``h``, ``c``, ``forward h`` ...), at which batch, step and unit,
    by how much, and the first step where the sequence starts to differ.
    Returns the reference's ``[(name, array), ...]``.
    """
    _check_kwargs(layer, call_kwargs)
    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    if not layer.built:
        layer.build(x.shape)
    reference = reference_outputs(layer, x, **call_kwargs)  # before the call: stateful layers
    actual = layer(x, **call_kwargs)
    compare_outputs(
        actual,
        reference,
        atol=atol,
        rtol=rtol,
        what=f"{type(layer).__name__} {layer.name!r}",
    )
    return reference
