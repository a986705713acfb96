"""NumPy forward passes of Keras's SimpleRNN, LSTM, GRU and ConvLSTM, from a layer's own weights.

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
* ConvLSTM1D/2D/3D: the LSTM equations with ``x K`` and ``h R`` replaced by
  convolutions (the input's with the layer's strides, padding and dilation, the
  state's with stride 1 and "same" padding), see :class:`ConvLSTMMath`.

Training calls with dropout are modelled from the masks the cells drew
(:class:`StepMasks`): one per gate, or one for the whole input, reused at every step.

Masking follows Keras's backend loop: a masked step keeps the previous states
and outputs the previous step's output, or zeros with ``zero_output_for_mask``
(which ``Bidirectional`` turns on for layers returning sequences); with
``go_backwards`` the sequence (and mask) is processed from the end and the
returned sequence is in processing order. cuDNN kernels (GPU) differ for masked
sequences (padded outputs are zero, the last output is the final ``h``), so
compare masked calls on the backend-native path (``use_cudnn=False``).
"""

from __future__ import annotations

import itertools
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


@dataclass(frozen=True)
class StepMasks:
    """The dropout masks one cell multiplies its input and previous ``h`` by in training.

    ``inputs`` and ``recurrent`` are None (no dropout there), one mask (applied to
    the whole vector: LSTM/GRU implementation 2, SimpleRNN) or one per gate (in the
    kind's gate order: LSTM/GRU implementation 1, ConvLSTM). Masks are the arrays the
    cell drew, already scaled by ``1 / (1 - rate)``; Keras draws them once per call
    and uses them at every step.
    """

    inputs: tuple[np.ndarray, ...] | None = None
    recurrent: tuple[np.ndarray, ...] | None = None

    @staticmethod
    def _apply(value: np.ndarray, masks: tuple[np.ndarray, ...] | None, gate: int) -> np.ndarray:
        if masks is None:
            return value
        return value * masks[gate if len(masks) > 1 else 0]

    def apply_input(self, x: np.ndarray, gate: int) -> np.ndarray:
        return self._apply(x, self.inputs, gate)

    def apply_recurrent(self, h: np.ndarray, gate: int) -> np.ndarray:
        return self._apply(h, self.recurrent, gate)


_NO_MASKS = StepMasks()


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

    @property
    def gate_count(self) -> int:
        return {"simple_rnn": 1, "lstm": 4, "gru": 3}[self.kind]

    def zero_states(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Zero states for a ``(batch, steps, features)`` input sequence."""
        return [np.zeros((inputs.shape[0], self.units)) for _ in self.state_names]

    def step(
        self, x: np.ndarray, states: list[np.ndarray], masks: StepMasks | None = None
    ) -> tuple[np.ndarray, list]:
        """``(output, new_states)`` for one time step, as the Keras cell defines it;
        ``masks`` applies training-time dropout masks the cell drew."""
        return getattr(self, f"_{self.kind}")(x, states, masks or _NO_MASKS)

    def _gate_inputs(self, x: np.ndarray, h: np.ndarray, masks: StepMasks, gate: int):
        """Gate ``gate``'s column block of ``x K`` and of ``h R`` (no bias), masks applied."""
        cols = slice(gate * self.units, (gate + 1) * self.units)
        x_part = masks.apply_input(x, gate) @ self.kernel[:, cols]
        h_part = masks.apply_recurrent(h, gate) @ self.recurrent_kernel[:, cols]
        return x_part, h_part

    def _simple_rnn(self, x: np.ndarray, states: list[np.ndarray], masks: StepMasks):
        x_part, h_part = self._gate_inputs(x, states[0], masks, 0)
        z = x_part + h_part
        if self.bias is not None:
            z = z + self.bias
        h = self.activation(z)
        return h, [h]

    def _lstm(self, x: np.ndarray, states: list[np.ndarray], masks: StepMasks):
        h_prev, c_prev = states
        z = np.concatenate(
            [sum(self._gate_inputs(x, h_prev, masks, g)) for g in range(4)], axis=-1
        )
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        act, rec = self.activation, self.recurrent_activation
        c = rec(z_f) * c_prev + rec(z_i) * act(z_c)
        h = rec(z_o) * act(c)
        return h, [h, c]

    def _gru(self, x: np.ndarray, states: list[np.ndarray], masks: StepMasks):
        (h_prev,) = states
        u = self.units
        input_bias = recurrent_bias = None
        if self.bias is not None:
            if self.reset_after:
                input_bias, recurrent_bias = self.bias[0], self.bias[1]
            else:
                input_bias = self.bias
        (x_z, rec_z), (x_r, rec_r) = (self._gate_inputs(x, h_prev, masks, g) for g in (0, 1))
        x_h = masks.apply_input(x, 2) @ self.kernel[:, 2 * u :]
        if input_bias is not None:
            x_z, x_r = x_z + input_bias[:u], x_r + input_bias[u : 2 * u]
            x_h = x_h + input_bias[2 * u :]
        if recurrent_bias is not None:
            rec_z, rec_r = rec_z + recurrent_bias[:u], rec_r + recurrent_bias[u : 2 * u]
        z = self.recurrent_activation(x_z + rec_z)
        r = self.recurrent_activation(x_r + rec_r)
        h_for_candidate = masks.apply_recurrent(h_prev, 2)
        rk_h = self.recurrent_kernel[:, 2 * u :]
        if self.reset_after:
            rec_h = h_for_candidate @ rk_h
            if recurrent_bias is not None:
                rec_h = rec_h + recurrent_bias[2 * u :]
            candidate = self.activation(x_h + r * rec_h)
        else:
            candidate = self.activation(x_h + (r * h_for_candidate) @ rk_h)
        h = z * h_prev + (1.0 - z) * candidate  # the carry term is never dropped
        return h, [h]


def convolve(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    strides: Sequence[int],
    padding: str,
    dilation_rate: Sequence[int],
    channels_first: bool,
) -> np.ndarray:
    """N-D cross-correlation of ``x`` with ``kernel``, as ``keras.ops.conv`` defines it.

    ``x`` is ``(batch, *spatial, channels)`` (``(batch, channels, *spatial)`` with
    ``channels_first``), ``kernel`` is ``(*kernel_size, channels, filters)``. With
    ``"valid"`` padding an output position sees the input window it starts at; with
    ``"same"`` the output has ``ceil(n / stride)`` positions and the input is padded
    with ``total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)`` zeros,
    ``total // 2`` before and the rest after (the TensorFlow/XLA convention Keras
    documents for every backend). Written as a sum over kernel offsets of strided
    slices times the offset's ``channels x filters`` matrix: slow for big images, exact
    and obvious for the tiny ones the suites use.
    """
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    rank = x.ndim - 2
    size = kernel.shape[:rank]
    spatial = x.shape[1:-1]
    if padding == "same":
        out = [-(-n // s) for n, s in zip(spatial, strides, strict=True)]
        pads = []
        for n, k, s, d, o in zip(spatial, size, strides, dilation_rate, out, strict=True):
            total = max((o - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    elif padding == "valid":
        out = [
            (n - d * (k - 1) - 1) // s + 1
            for n, k, s, d in zip(spatial, size, strides, dilation_rate, strict=True)
        ]
    else:
        raise ValueError(f"padding must be 'valid' or 'same'; got {padding!r}")
    if min(out) < 1:
        raise ValueError(f"input of spatial shape {spatial} is smaller than the kernel {size}")
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    for offset in itertools.product(*(range(k) for k in size)):
        window = tuple(
            slice(o * d, o * d + (n - 1) * s + 1, s)
            for o, d, n, s in zip(offset, dilation_rate, out, strides, strict=True)
        )
        y += x[(slice(None), *window, slice(None))] @ kernel[offset]
    return np.moveaxis(y, -1, 1) if channels_first else y


@dataclass
class ConvLSTMMath:
    """A ConvLSTM cell (ConvLSTM1D/2D/3D): the LSTM equations with convolutions.

    Gates i, f, c, o (the kernel's last axis in that block order) are
    ``z_g = conv(x, K_g; strides, padding, dilation) + b_g + conv(h, R_g; stride 1, "same")``;
    then ``c = rec(z_f) * c + rec(z_i) * act(z_c)`` and ``h = rec(z_o) * act(c)``, on
    every spatial position. The recurrent convolution never strides or dilates, so
    the states keep the spatial shape of the input convolution's output.
    """

    rank: int
    filters: int
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    activation: Callable[[np.ndarray], np.ndarray]
    recurrent_activation: Callable[[np.ndarray], np.ndarray]
    strides: tuple[int, ...]
    padding: str
    dilation_rate: tuple[int, ...]
    channels_first: bool
    kind: str = "conv_lstm"

    @classmethod
    def of(cls, cell: Any) -> ConvLSTMMath:
        if not cell.built:
            raise ValueError(f"cell {cell.name!r} is not built; build or call its layer first")
        return cls(
            rank=int(cell.rank),
            filters=int(cell.filters),
            kernel=np.asarray(cell.kernel, dtype=np.float64),
            recurrent_kernel=np.asarray(cell.recurrent_kernel, dtype=np.float64),
            bias=None if cell.bias is None else np.asarray(cell.bias, dtype=np.float64),
            activation=numpy_activation(cell.activation),
            recurrent_activation=numpy_activation(cell.recurrent_activation),
            strides=tuple(cell.strides),
            padding=cell.padding,
            dilation_rate=tuple(cell.dilation_rate),
            channels_first=cell.data_format == "channels_first",
        )

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("h", "c")

    @property
    def gate_count(self) -> int:
        return 4

    def _conv(self, x: np.ndarray, kernel: np.ndarray, recurrent: bool) -> np.ndarray:
        ones = (1,) * self.rank
        return convolve(
            x,
            kernel,
            strides=ones if recurrent else self.strides,
            padding="same" if recurrent else self.padding,
            dilation_rate=ones if recurrent else self.dilation_rate,
            channels_first=self.channels_first,
        )

    def zero_states(self, inputs: np.ndarray) -> list[np.ndarray]:
        """Zero ``h`` and ``c`` for a ``(batch, steps, ...)`` input sequence."""
        shape = self._conv(inputs[:, 0], self.kernel[..., : self.filters], False).shape
        return [np.zeros(shape), np.zeros(shape)]

    def step(
        self, x: np.ndarray, states: list[np.ndarray], masks: StepMasks | None = None
    ) -> tuple[np.ndarray, list]:
        h_prev, c_prev = states
        axis = 1 if self.channels_first else -1
        bias_shape = [1] * (self.rank + 2)
        bias_shape[axis] = self.filters
        z = []
        for g in range(4):
            cols = slice(g * self.filters, (g + 1) * self.filters)
            x_g = x if masks is None else masks.apply_input(x, g)
            h_g = h_prev if masks is None else masks.apply_recurrent(h_prev, g)
            z_g = self._conv(x_g, self.kernel[..., cols], False)
            z_g = z_g + self._conv(h_g, self.recurrent_kernel[..., cols], True)
            if self.bias is not None:
                z_g = z_g + self.bias[cols].reshape(bias_shape)
            z.append(z_g)
        z_i, z_f, z_c, z_o = z
        act, rec = self.activation, self.recurrent_activation
        c = rec(z_f) * c_prev + rec(z_i) * act(z_c)
        h = rec(z_o) * act(c)
        return h, [h, c]


class StackMath:
    """Cells applied one after another in each step (``StackedRNNCells`` / ``RNN([cells])``)."""

    def __init__(self, cells: Sequence[CellMath | ConvLSTMMath]):
        self.cells = list(cells)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(
            f"cell {i} {name}" for i, cell in enumerate(self.cells) for name in cell.state_names
        )

    def zero_states(self, inputs: np.ndarray) -> list[np.ndarray]:
        states, x = [], inputs
        for cell in self.cells:
            cell_states = cell.zero_states(x)
            states.extend(cell_states)
            output, _ = cell.step(x[:, 0], cell_states)  # the next cell's input shape
            x = output[:, None]
        return states

    def step(
        self, x: np.ndarray, states: list[np.ndarray], masks: Sequence[StepMasks] | None = None
    ) -> tuple[np.ndarray, list]:
        """One step through every cell; ``masks`` holds one :class:`StepMasks` per cell."""
        new_states, offset = [], 0
        for index, cell in enumerate(self.cells):
            n = len(cell.state_names)
            cell_masks = None if masks is None else masks[index]
            x, cell_states = cell.step(x, states[offset : offset + n], cell_masks)
            new_states.extend(cell_states)
            offset += n
        return x, new_states


def _cell_math(cell: Any) -> CellMath | ConvLSTMMath:
    if hasattr(cell, "rank") and hasattr(cell, "filters") and hasattr(cell, "recurrent_kernel"):
        return ConvLSTMMath.of(cell)  # keras.layers.ConvLSTM1D/2D/3D's cell
    return CellMath.of(cell)


def _math_of(layer: Any) -> CellMath | ConvLSTMMath | StackMath:
    cell = getattr(layer, "cell", None)
    if cell is None:
        raise ValueError(
            "the reference models SimpleRNN, LSTM, GRU and ConvLSTM1D/2D/3D layers, "
            "keras.layers.RNN over their cells, and Bidirectional wrappers of those; got "
            f"{type(layer).__name__}"
        )
    if isinstance(cell, keras.layers.StackedRNNCells):
        return StackMath([_cell_math(c) for c in cell.cells])
    return _cell_math(cell)


def run_recurrence(
    math: CellMath | ConvLSTMMath | StackMath,
    inputs: np.ndarray,
    states: list[np.ndarray],
    *,
    mask: np.ndarray | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    dropout_masks: Any = None,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(last_output, outputs, final_states)`` of Keras's time loop, in NumPy.

    ``outputs`` is ``(batch, steps, units)`` (``(batch, steps, ...)`` for ConvLSTM)
    in processing order (reversed input order with ``go_backwards``), as Keras
    returns it. ``dropout_masks`` (a :class:`StepMasks`, or one per cell of a
    stack) is applied at every step, as Keras reuses one draw for the whole call.
    """
    batch, steps = inputs.shape[:2]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    prev_output = None
    outputs = []
    for t in order:
        if dropout_masks is None:
            output, new_states = math.step(inputs[:, t], states)
        else:
            output, new_states = math.step(inputs[:, t], states, dropout_masks)
        if mask is not None:
            keep = mask[:, t].reshape((batch,) + (1,) * (output.ndim - 1))
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


def check_call_kwargs(layer: Any, call_kwargs: dict[str, Any], dropout_masks: Any = None) -> None:
    unknown = sorted(set(call_kwargs) - {"initial_state", "mask", "training"})
    if unknown:
        raise ValueError(
            f"the reference models calls with initial_state, mask and training only; "
            f"got {', '.join(unknown)}"
        )
    if call_kwargs.get("training") and dropout_masks is None:
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
    dropout_masks: Any = None,
) -> tuple[np.ndarray, list[np.ndarray], tuple[str, ...]]:
    """The output (sequence or last step) and final states of one RNN layer."""
    math = _math_of(layer)
    if initial_state is not None:
        states = [np.asarray(s, dtype=np.float64) for s in initial_state]
    elif getattr(layer, "stateful", False) and layer.states is not None:
        states = [compare.to_numpy(v).astype(np.float64) for v in compare.flatten(layer.states)]
    else:
        states = math.zero_states(inputs)
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
        dropout_masks=dropout_masks,
    )
    return (sequence if layer.return_sequences else last), final, math.state_names


def reference_outputs(
    layer: Any,
    inputs: Any,
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    training: bool = False,
    dropout_masks: Any = None,
) -> Named:
    """What ``layer(inputs, initial_state=..., mask=...)`` should return, computed in NumPy.

    ``layer`` is a built SimpleRNN, LSTM, GRU or ConvLSTM1D/2D/3D layer, a
    ``keras.layers.RNN`` over one of their cells or a stack of them, or a
    ``Bidirectional`` wrapping any of those. Returns ``[(name, array), ...]`` in the
    order the layer returns its tensors (nested state lists flattened): ``output``
    then states such as ``h`` and ``c``; for ``Bidirectional``, ``forward ...`` then
    ``backward ...``. A stateful layer starts from its current state variables.

    ``dropout_masks`` makes ``training=True`` with dropout computable: the masks the
    cells drew (:class:`StepMasks`, a list of one per cell for a stack), as
    :func:`pytest_rnn.checks.dropout.record_dropout_masks` observes them.
    """
    check_call_kwargs(layer, {"training": training}, dropout_masks)
    x = compare.to_numpy(inputs).astype(np.float64)
    rank = getattr(getattr(getattr(layer, "forward_layer", layer), "cell", None), "rank", 0)
    if x.ndim != 3 + rank:
        spatial = f"{rank} spatial axes, channels" if rank else "features"
        raise ValueError(f"inputs must be (batch, steps, {spatial}); got shape {x.shape}")
    m = None
    if mask is not None:
        m = compare.to_numpy(mask).astype(bool)
        if m.shape != x.shape[:2]:
            raise ValueError(f"mask must have shape {x.shape[:2]} (batch, steps); got {m.shape}")
    init = None if initial_state is None else compare.leaves(initial_state)

    forward = getattr(layer, "forward_layer", None)
    if forward is None:
        output, states, state_names = _rnn_outputs(layer, x, init, m, dropout_masks)
        if not layer.return_state:
            return [("output", output)]
        return [("output", output)] + list(zip(state_names, states, strict=True))

    if dropout_masks is not None:
        raise ValueError("dropout_masks are not modelled for Bidirectional wrappers")
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


def step_axes(ndim: int, sequence_ndim: int) -> tuple[str, ...] | None:
    """Names of the axes of a ``ndim``-axis output when a whole sequence has
    ``sequence_ndim`` axes: the default (batch, step, unit) for SimpleRNN/LSTM/GRU; for a
    ConvLSTM, batch, step (sequences only), then ``axis k`` for its positions and filters."""
    if ndim <= 3 and sequence_ndim == 3:
        return None
    lead = ("batch", "step") if ndim == sequence_ndim else ("batch",)
    return lead + tuple(f"axis {k}" for k in range(len(lead), ndim))


def compare_outputs(
    actual: Any,
    reference: Named,
    *,
    atol: float,
    rtol: float,
    what: str,
    sequence_ndim: int = 3,
) -> None:
    """Raise an AssertionError describing every output of ``actual`` that differs from
    ``reference`` (see :func:`pytest_rnn.checks.compare.assert_allclose`).
    ``sequence_ndim``: the number of axes of a whole output sequence (``rank + 3`` for a
    ConvLSTM), which decides the axis the message calls ``step``."""
    compare.assert_allclose(
        actual, reference, atol=atol, rtol=rtol, labels=("layer", "reference"),
        what=f"{what} differs from the NumPy reference (atol={atol:g}, rtol={rtol:g})",
        axes=[step_axes(np.ndim(ref), sequence_ndim) for _, ref in reference],
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
    check_call_kwargs(layer, call_kwargs)
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
        sequence_ndim=x.ndim,
    )
    return reference
