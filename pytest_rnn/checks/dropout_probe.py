"""Measuring which units one training call drops, on a probe twin of the layer.

Which units were dropped is observed, not read from Keras internals: a dropped
unit is multiplied by zero, so the gradient of the output with respect to it is
exactly zero, while a kept unit's gradient is non-zero for generic weights. The
measurement runs on a *probe*, a twin built from the layer's config (same
class, gates, implementation and seed, its own sizes) with random weights in
which the kernel (``dropout``) or recurrent kernel (``recurrent_dropout``)
connects unit group ``k`` to gate ``k`` only, so one
training call shows every gate's mask on its own group of units. For
``recurrent_dropout`` the gradient is taken for the grouped units of ``h0`` from
extra output units that no grouped unit's own carry reaches; that removes GRU's
undropped carry term ``z * h_tm1`` (which would make every unit look kept) and
lets the scaling check feed a dropout-free twin the masked state exactly.

This module holds :func:`measure_dropout`, the :class:`DropoutMeasurement` it
returns, and :func:`binomial_tolerance`, the bound a measured fraction is held to;
the assertions on measurements are in :mod:`pytest_rnn.checks.dropout`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.models import cell_kind

#: The two dropout arguments of SimpleRNN, LSTM and GRU.
WHICH: tuple[str, ...] = ("dropout", "recurrent_dropout")
#: Gates of each kind, in Keras's column-block order.
GATES: dict[str, tuple[str, ...]] = {
    "simple_rnn": ("h",),
    "lstm": ("i", "f", "c", "o"),
    "gru": ("z", "r", "h"),
    "conv_lstm": ("i", "f", "c", "o"),
}
#: Spatial size of each axis of a ConvLSTM probe's input (4 x 4 for ConvLSTM2D).
PROBE_SPATIAL = 4
#: Default number of units counted per gate; 2,000 gives a 5-sigma bound of about
#: +-0.05 at rate 0.3, tight enough to catch a rate off by a sixth.
DEFAULT_SAMPLES = 2000


def binomial_tolerance(n: int, rate: float, *, sigmas: float = 5.0) -> float:
    """Largest accepted ``|observed fraction - rate|`` when ``n`` units are each dropped
    independently with probability ``rate``.

    The number dropped is ``D ~ Binomial(n, p)`` with ``p = rate``, so the observed
    fraction ``f = D / n`` has mean ``p`` and standard deviation
    ``sigma = sqrt(p * (1 - p) / n)``. The bound is ``sigmas * sigma``. Under the
    normal approximation to the binomial, valid when ``n * p * (1 - p) >= 9`` (a
    ValueError otherwise), ``P(|f - p| > 5 sigma)`` is about ``5.7e-7``: a correct
    layer essentially never fails, and with ``n = 2000`` and ``p = 0.3`` the bound is
    ``0.051``, so a layer dropping 0.35 or 0.25 instead is caught.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    _check_rate("rate", rate, allow_zero=False)
    if not (isinstance(sigmas, numbers.Real) and sigmas > 0):
        raise ValueError(f"sigmas must be a positive number; got {sigmas!r}")
    variance = rate * (1.0 - rate)
    if n * variance < 9:
        raise ValueError(
            f"n * rate * (1 - rate) = {n * variance:.3g} < 9: too few units ({n}) for the "
            f"normal approximation at rate {rate}; count at least {math.ceil(9 / variance)}"
        )
    return float(sigmas) * math.sqrt(variance / n)


@dataclass(frozen=True)
class DropoutMeasurement:
    """Which units of one gate a training call dropped, as seen on the probe.

    ``kept`` is boolean: ``(batch, steps, group)`` for ``dropout`` (the gate's input
    features at each step), ``(batch, group)`` for ``recurrent_dropout`` (the gate's
    units of ``h0``). ``scaling_error`` is the max ``|training output - dropout-free
    output on the kept units scaled by 1 / (1 - rate)|``, zero up to float rounding
    for inverted dropout with exactly the observed masks; one training call measures
    every gate, so the gates of one measurement share it.
    """

    layer: str
    which: str
    rate: float
    gate: str
    kept: np.ndarray = field(repr=False)
    scaling_error: float

    @property
    def first_step(self) -> np.ndarray:
        """The mask of the first step (the only one for ``recurrent_dropout``)."""
        return self.kept[:, 0] if self.which == "dropout" else self.kept

    @property
    def n(self) -> int:
        """Units counted (first step only: later steps reuse or redraw the same mask)."""
        return int(self.first_step.size)

    @property
    def dropped(self) -> int:
        return int(self.n - self.first_step.sum())

    @property
    def fraction(self) -> float:
        return self.dropped / self.n

    def tolerance(self, sigmas: float = 5.0) -> float:
        return binomial_tolerance(self.n, self.rate, sigmas=sigmas)

    def describe(self, sigmas: float = 5.0) -> str:
        return (
            f"{self.layer} {self.which}={self.rate:g}, gate {self.gate}: dropped "
            f"{self.dropped} of {self.n} units = {self.fraction:.4f}, expected "
            f"{self.rate:g} +- {self.tolerance(sigmas):.4f} ({sigmas:g}-sigma binomial bound)"
        )


# --- probing ----------------------------------------------------------------------------------


def _check_rate(name: str, value: Any, *, allow_zero: bool = True) -> float:
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return float(value)


def _check_which(which: Any) -> str:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}; got {which!r}")
    return which


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def is_conv_lstm(layer_or_cell: Any) -> bool:
    """Whether ``layer_or_cell`` is a ConvLSTM1D/2D/3D layer or its cell."""
    cell = getattr(layer_or_cell, "cell", layer_or_cell)
    return isinstance(cell, keras.layers.Layer) and all(
        hasattr(cell, name) for name in ("rank", "filters", "kernel_size", "dilation_rate")
    )


def _rnn_layer(layer: Any) -> str:
    """The kind of a SimpleRNN/LSTM/GRU layer (or ``keras.layers.RNN`` over one such cell),
    or ``"conv_lstm"`` for ConvLSTM1D/2D/3D."""
    if not isinstance(layer, keras.layers.RNN):
        raise ValueError(
            "expected a recurrent layer (SimpleRNN, LSTM, GRU, ConvLSTM1D/2D/3D or RNN over "
            f"one of their cells); got {type(layer).__name__}"
        )
    return "conv_lstm" if is_conv_lstm(layer) else cell_kind(layer)


def layer_label(layer: Any) -> str:
    """How failure messages name a layer: its class and name."""
    return f"{type(layer).__name__} {layer.name!r}"


def _probe(layer: Any, input_shape: tuple, **cell_options: Any) -> keras.layers.Layer:
    """A twin of ``layer`` from its config with ``cell_options`` (units, rates) changed.

    The cell's ``implementation`` and the layer's ``use_cudnn`` are not in the
    config, and zeroing ``recurrent_dropout`` would otherwise bring LSTM/GRU back
    to implementation 2; both are carried over so the probe runs the layer's code
    path. So is the seed, which SimpleRNN's config omits (Keras 3.15).
    """
    config = layer.get_config()
    config.pop("name", None)
    config.update(
        return_sequences=False, return_state=False, stateful=False, go_backwards=False, unroll=False
    )
    target = config["cell"]["config"] if isinstance(config.get("cell"), dict) else config
    if is_conv_lstm(layer):
        # every input position must reach some output (a dropped unit is the only zero
        # gradient): stride 1 and "same" padding; kernel size, dilation and data format stay
        cell_options = dict(cell_options)
        cell_options["filters"] = cell_options.pop("units")
        cell_options.update(strides=1, padding="same")
    target.update(cell_options)
    seed = getattr(layer.cell, "seed", None)
    if "seed" not in target and seed is not None:
        target["seed"] = seed
    twin = type(layer).from_config(config)
    implementation = getattr(layer.cell, "implementation", None)
    if implementation is not None:
        twin.cell.implementation = implementation
        if implementation == 1:
            twin.cell.dropout_mask_count = len(GATES[cell_kind(layer)])
    if hasattr(layer, "use_cudnn"):
        # The layer never takes the cuDNN branch with recurrent_dropout; neither may the
        # probe (that branch also cannot apply implementation 1's per-gate masks).
        twin.use_cudnn = False if layer.cell.recurrent_dropout else layer.use_cudnn
    twin.build(input_shape)
    return twin


def _probe_weights(
    probe: keras.layers.Layer, which: str, n_gates: int, group: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random weights where unit group ``k`` of the dropped vector feeds gate ``k`` only.

    For ``dropout`` the dropped vector is the input (kernel rows of group ``k`` are
    non-zero only in gate ``k``'s column block); for ``recurrent_dropout`` it is the
    first ``n_gates * group`` units of ``h0`` (same rule on the recurrent kernel,
    whose remaining rows are zero so the observed output units do not depend on
    their own dropped state).
    """
    cell = probe.cell
    units = getattr(cell, "units", None) or cell.filters
    values = {
        id(w): rng.uniform(-0.5, 0.5, size=tuple(w.shape)).astype(w.dtype) for w in cell.weights
    }
    matrix = values[id(cell.kernel if which == "dropout" else cell.recurrent_kernel)]
    isolated = np.zeros_like(matrix)
    for k in range(n_gates):
        rows, cols = slice(k * group, (k + 1) * group), slice(k * units, (k + 1) * units)
        isolated[..., rows, cols] = matrix[..., rows, cols]  # a ConvLSTM's kernel: every tap
    matrix[...] = isolated
    return [values[id(w)] for w in probe.weights]


def measure_dropout(
    layer: Any,
    which: str = "dropout",
    *,
    steps: int = 1,
    samples: int = DEFAULT_SAMPLES,
    group: int = 4,
    seed: int = 0,
) -> list[DropoutMeasurement]:
    """One :class:`DropoutMeasurement` per gate of ``layer``'s ``which`` dropout.

    ``layer`` is a SimpleRNN, LSTM, GRU or ConvLSTM1D/2D/3D layer (or
    ``keras.layers.RNN`` over one of their cells) with ``0 < which < 1``. It is only
    read (config, implementation, seed), never called: the probe is a twin with its
    own sizes, ``group`` input features (or state units) per gate, and one training
    call observes every gate. A ConvLSTM probe (stride 1, "same" padding, the
    layer's kernel size, dilation and data format) has :data:`PROBE_SPATIAL`
    positions per spatial axis and ``group`` channels per gate; every position of
    every channel is one counted unit, so ``kept`` is ``(batch, steps, *spatial,
    group)`` for ``dropout`` and ``(batch, *spatial, group)`` for
    ``recurrent_dropout``, channels last whatever the data format.
    ``steps`` > 1 (``dropout`` only) observes the mask at every step. The batch is
    sized so that at least ``samples`` units are counted per gate. ``seed`` seeds
    the probe's weights and inputs; the masks come from the layer's own seed.
    """
    kind = _rnn_layer(layer)
    _check_which(which)
    rate = float(getattr(layer.cell, which))
    if not 0 < rate < 1:
        raise ValueError(
            f"{layer_label(layer)} has {which}={rate:g}; measuring needs 0 < {which} < 1")
    steps = _positive("steps", steps)
    if which == "recurrent_dropout" and steps != 1:
        raise ValueError("steps must be 1 for recurrent_dropout: only the mask on h0 is observed")
    samples = _positive("samples", samples)
    group = _positive("group", group)
    gates = GATES[kind]
    observed = len(gates) * group
    units = observed + group  # recurrent: the last `group` units are the watched outputs
    # a ConvLSTM probe sees PROBE_SPATIAL positions per spatial axis, each unit at each
    # position on its own; channel_axis is where its channels are (-1 channels-last)
    rank = int(getattr(layer.cell, "rank", 0)) if kind == "conv_lstm" else 0
    spatial = (PROBE_SPATIAL,) * rank
    channels_first = rank > 0 and layer.cell.data_format == "channels_first"
    per_sample = group * math.prod(spatial)
    batch = math.ceil(samples / per_sample)

    def layout(channels: int) -> tuple[int, ...]:
        return (channels, *spatial) if channels_first else (*spatial, channels)

    def channels_last(array: np.ndarray, axis: int) -> np.ndarray:
        return np.moveaxis(array, axis, -1) if channels_first else array

    def channels_back(array: np.ndarray, axis: int) -> np.ndarray:
        return np.moveaxis(array, -1, axis) if channels_first else array

    shape = (batch, steps, *layout(observed))
    others = {name: 0.0 for name in WHICH if name != which}
    dropping = _probe(layer, shape, units=units, **others)
    clean = _probe(layer, shape, units=units, dropout=0.0, recurrent_dropout=0.0)
    rng = np.random.default_rng(seed)
    weights = _probe_weights(dropping, which, len(gates), group, rng)
    dropping.set_weights(weights)
    clean.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    n_states = 2 if kind in ("lstm", "conv_lstm") else 1
    state_shape = (batch, *layout(units))
    states = [rng.uniform(-1, 1, state_shape).astype("float32") for _ in range(n_states)]
    upstream = rng.uniform(0.5, 1.5, state_shape).astype("float32")
    if which == "recurrent_dropout":  # only the watched units (no own carry) count
        upstream = channels_last(upstream, 1).copy()
        upstream[..., :observed] = 0.0
        upstream = channels_back(upstream, 1)

    upstream = keras.ops.convert_to_tensor(upstream)  # a backend tensor: PyTorch's autograd
    # tensors cannot meet NumPy arrays

    def loss_fn(x, *states):  # the output comes back too: its masks are this call's
        output = dropping(x, initial_state=list(states), training=True)
        return keras.ops.sum(output * upstream), output

    _, output, _, input_grads = backends.value_and_grad(
        loss_fn, [], [x, *states], has_aux=True)
    grad = input_grads[0] if which == "dropout" else input_grads[1]
    if grad is None:
        raise AssertionError(
            f"{layer_label(layer)}: the output does not depend on the "
            f"{'input' if which == 'dropout' else 'initial state'} at all (no gradient)"
        )
    if which == "dropout":
        kept = channels_last(grad != 0, 2)  # (batch, steps, *spatial, channels)
        scaled_x = x * channels_back(kept, 2) / (1 - rate)
        scaled_states = states
    else:
        kept = channels_last(grad, 1)[..., :observed] != 0  # (batch, *spatial, channels)
        h0 = channels_last(states[0], 1).copy()
        h0[..., :observed] *= kept / (1 - rate)
        scaled_x, scaled_states = x, [channels_back(h0, 1)] + states[1:]
    reference = clean(scaled_x, initial_state=list(scaled_states), training=False)
    watched = upstream != 0
    error = np.abs(output - compare.to_numpy(reference))[watched]
    scaling_error = float(np.nanmax(np.where(np.isnan(error), np.inf, error)))
    return [
        DropoutMeasurement(
            layer_label(layer), which, rate, gate, kept[..., k * group : (k + 1) * group],
            scaling_error,
        )
        for k, gate in enumerate(gates)
    ]

