"""NumPy model of Keras's ConvLSTM1D/2D/3D cell: the LSTM equations with convolutions.

The same kind of :class:`~pytest_rnn.checks.cell_model.CellModel` as the models of
:mod:`pytest_rnn.checks.cell_models`, forward only (no gradient reference models ConvLSTM),
and :func:`convolve`, the N-D cross-correlation it computes with.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pytest_rnn.checks.activations import lookup
from pytest_rnn.checks.cell_model import Array
from pytest_rnn.checks.cell_models import KerasCellMath, lstm_update


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



@dataclass(kw_only=True)
class ConvLSTMMath(KerasCellMath):
    """A ConvLSTM cell (ConvLSTM1D/2D/3D): the LSTM equations with convolutions.

    Gates i, f, c, o (the kernel's last axis in that block order) are
    ``z_g = conv(x, K_g; strides, padding, dilation) + b_g + conv(h, R_g; stride 1, "same")``;
    then ``c = rec(z_f) * c + rec(z_i) * act(z_c)`` and ``h = rec(z_o) * act(c)``, on
    every spatial position. The recurrent convolution never strides or dilates, so
    the states keep the spatial shape of the input convolution's output.
    """

    kind: ClassVar[str] = "conv_lstm"
    state_names: ClassVar[tuple[str, ...]] = ("h", "c")
    gate_count: ClassVar[int] = 4
    rank: int
    filters: int
    strides: tuple[int, ...]
    padding: str
    dilation_rate: tuple[int, ...]
    channels_first: bool

    @classmethod
    def of(cls, cell: Any) -> ConvLSTMMath:
        return cls(
            **KerasCellMath.read(cell),
            recurrent_activation=lookup(cell.recurrent_activation),
            rank=int(cell.rank),
            filters=int(cell.filters),
            strides=tuple(cell.strides),
            padding=cell.padding,
            dilation_rate=tuple(cell.dilation_rate),
            channels_first=cell.data_format == "channels_first",
        )

    def _conv(self, x: Array, kernel: Array, recurrent: bool) -> Array:
        ones = (1,) * self.rank
        return convolve(
            x,
            kernel,
            strides=ones if recurrent else self.strides,
            padding="same" if recurrent else self.padding,
            dilation_rate=ones if recurrent else self.dilation_rate,
            channels_first=self.channels_first,
        )

    def zero_states(self, inputs: Array) -> list[Array]:
        """Zero ``h`` and ``c`` for a ``(batch, steps, ...)`` input sequence."""
        shape = self._conv(inputs[:, 0], self.kernel[..., : self.filters], False).shape
        return [np.zeros(shape), np.zeros(shape)]

    def step(self, x, states, weights, *, masks=None, saved=None):
        h_prev, c_prev = states
        bias_shape = [1] * (self.rank + 2)
        bias_shape[1 if self.channels_first else -1] = self.filters
        z = []
        for g in range(4):
            cols = slice(g * self.filters, (g + 1) * self.filters)
            x_g = x if masks is None else masks.apply_input(x, g)
            h_g = h_prev if masks is None else masks.apply_recurrent(h_prev, g)
            z_g = self._conv(x_g, weights["kernel"][..., cols], False)
            z_g = z_g + self._conv(h_g, weights["recurrent_kernel"][..., cols], True)
            if "bias" in weights:
                z_g = z_g + weights["bias"][cols].reshape(bias_shape)
            z.append(z_g)
        h, c, _ = lstm_update(*z, c_prev, self.activation, self.recurrent_activation)
        return h, [h, c]
