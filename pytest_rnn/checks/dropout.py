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
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.models import cell_kind
from pytest_rnn.checks.reference import StepMasks, compare_outputs, reference_outputs

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


def _label(layer: Any) -> str:
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
        raise ValueError(f"{_label(layer)} has {which}={rate:g}; measuring needs 0 < {which} < 1")
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
            f"{_label(layer)}: the output does not depend on the "
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
            _label(layer), which, rate, gate, kept[..., k * group : (k + 1) * group], scaling_error
        )
        for k, gate in enumerate(gates)
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
            f"dropped fraction does not match the {which} rate:\n"
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
            f"{_label(layer)} {which}: kept units are not scaled by 1 / (1 - rate):\n"
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
            f"{_label(layer)} draws a new input-dropout mask within one call; Keras reuses "
            "one mask for every step:\n" + "\n".join(lines)
        )
    return measurements


# --- whole-layer checks (any layer or model) --------------------------------------------------


def _walk(config: Any, visit) -> None:
    if isinstance(config, dict):
        visit(config)
        for value in config.values():
            _walk(value, visit)
    elif isinstance(config, list):
        for value in config:
            _walk(value, visit)


def _dropout_dicts(config: Any) -> list[dict]:
    """Config dicts of things that drop units: RNN layers/cells and Dropout layers."""
    found: list[dict] = []

    def visit(d: dict) -> None:
        if "dropout" in d or "recurrent_dropout" in d:
            found.append(d)
        elif isinstance(d.get("config"), dict) and "Dropout" in str(d.get("class_name", "")):
            found.append(d["config"])

    _walk(config, visit)
    return found


def _rates(d: dict) -> dict[str, float]:
    return {k: d[k] for k in ("dropout", "recurrent_dropout", "rate") if k in d}


def _own_classes(layer: Any, found: dict | None = None) -> dict[str, type]:
    """``{class name: class}`` of ``layer`` and the cells and layers it wraps: what its
    config names, so an unregistered custom cell rebuilds from the config too."""
    found = {} if found is None else found
    if isinstance(layer, (list, tuple)):
        for item in layer:
            _own_classes(item, found)
        return found
    if not isinstance(layer, keras.layers.Layer) or type(layer).__name__ in found:
        return found
    found[type(layer).__name__] = type(layer)
    for attr in ("cell", "cells", "forward_layer", "backward_layer", "layer", "layers"):
        inner = getattr(layer, attr, None)
        if inner is not None and inner is not layer:
            _own_classes(inner, found)
    return found


def _twin(layer: Any, x: Any, *, edit, call_kwargs: dict) -> Any:
    config = layer.get_config()
    for d in _dropout_dicts(config):
        edit(d)
    with keras.saving.custom_object_scope(_own_classes(layer)):
        twin = type(layer).from_config(config)
    if not twin.built:
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            twin.build(np.shape(x))
        else:
            twin(x, training=False, **call_kwargs)
    twin.set_weights(layer.get_weights())
    return twin


def _outputs(layer: Any, x: Any, **kwargs: Any) -> list[np.ndarray]:
    return compare.leaves(layer(x, **kwargs))


def _check_callable(layer: Any) -> None:
    if getattr(layer, "stateful", False):
        raise ValueError(
            f"{_label(layer)} is stateful: each call moves its state, so two calls cannot be "
            "compared; check a stateful=False twin"
        )
    if not _dropout_dicts(layer.get_config()) or not any(
        v > 0 for d in _dropout_dicts(layer.get_config()) for v in _rates(d).values()
    ):
        raise ValueError(f"{_label(layer)} has no dropout > 0 to check")


def assert_inference_ignores_dropout(
    layer: Any, x: Any, *, atol: float = 1e-6, **call_kwargs: Any
) -> None:
    """Assert ``layer(x, training=False)`` is deterministic, equals a call without
    ``training``, and equals a twin with every dropout rate set to 0 and the same
    weights: at inference, dropout neither drops nor rescales anything."""
    _check_callable(layer)
    first = _outputs(layer, x, training=False, **call_kwargs)
    second = _outputs(layer, x, training=False, **call_kwargs)
    default = _outputs(layer, x, **call_kwargs)
    label = _label(layer)
    if (diff := compare.max_abs_diff(first, second)) > 0:
        raise AssertionError(
            f"{label}: two inference calls (training=False) differ by up to {diff:.3g}; "
            "dropout leaks into inference"
        )
    if (diff := compare.max_abs_diff(first, default)) > 0:
        raise AssertionError(
            f"{label}: a call without `training` differs from training=False by up to "
            f"{diff:.3g}; the default should be inference"
        )

    def no_dropout(d: dict) -> None:
        for key in _rates(d):
            d[key] = 0.0

    clean = _outputs(_twin(layer, x, edit=no_dropout, call_kwargs=call_kwargs), x, **call_kwargs)
    if (diff := compare.max_abs_diff(first, clean)) > atol:
        raise AssertionError(
            f"{label}: inference output differs from the same weights without dropout by up "
            f"to {diff:.3g} (atol {atol:g}); dropout changes inference (a mask or a 1/(1-rate) "
            "scale applied at inference)"
        )


def assert_training_applies_dropout(
    layer: Any, x: Any, *, min_diff: float = 1e-3, **call_kwargs: Any
) -> float:
    """Assert ``layer(x, training=True)`` differs from ``training=False`` by more than
    ``min_diff`` somewhere; returns the max difference."""
    _check_callable(layer)
    trained = _outputs(layer, x, training=True, **call_kwargs)
    inferred = _outputs(layer, x, training=False, **call_kwargs)
    diff = compare.max_abs_diff(trained, inferred)
    if not diff > min_diff:
        rates = [_rates(d) for d in _dropout_dicts(layer.get_config())]
        raise AssertionError(
            f"{_label(layer)} with {rates}: training output equals inference output "
            f"(max |diff| {diff:.3g} <= {min_diff:g}); dropout is not applied in training"
        )
    return diff


def assert_seed_reproduces_masks(
    make_layer: Callable[[int], Any], x: Any, *, seed: int = 1234, **call_kwargs: Any
) -> None:
    """Assert that dropout masks follow the layer's ``seed``.

    ``make_layer(seed)`` returns a new layer (or model) with dropout seeded by
    ``seed``. Two layers from the same seed, given the same weights, must give the
    same training output; a layer from ``seed + 1`` a different one; and a second
    training call of one layer new masks (a seed fixes the sequence of masks, not
    one mask forever). A factory rather than a config twin, because not every
    layer's config records its seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    first, same, other = make_layer(seed), make_layer(seed), make_layer(seed + 1)
    for layer in (first, same, other):
        _check_callable(layer)
        if not layer.built:
            layer(x, training=False, **call_kwargs)  # every layer draws the same masks here
    same.set_weights(first.get_weights())
    other.set_weights(first.get_weights())
    label = _label(first)
    a1 = _outputs(first, x, training=True, **call_kwargs)
    if (diff := compare.max_abs_diff(a1, _outputs(same, x, training=True, **call_kwargs))) > 0:
        raise AssertionError(
            f"{label}: two layers with seed={seed} give different training outputs (max "
            f"|diff| {diff:.3g}); the seed does not fix the dropout masks"
        )
    if compare.max_abs_diff(a1, _outputs(other, x, training=True, **call_kwargs)) == 0:
        raise AssertionError(
            f"{label}: layers with seed={seed} and seed={seed + 1} give the very same "
            "training output; the seed is ignored"
        )
    if compare.max_abs_diff(a1, _outputs(first, x, training=True, **call_kwargs)) == 0:
        raise AssertionError(
            f"{label}: a second training call repeats the first call's output exactly; "
            "masks are not redrawn for each call"
        )


# --- the masks each cell of a layer draws (stacks of cells) -----------------------------------


@dataclass(frozen=True)
class CellMasks:
    """The dropout masks one cell of a recurrent layer drew for one training call.

    ``inputs`` / ``recurrent`` hold what the cell's ``get_dropout_mask`` /
    ``get_recurrent_dropout_mask`` returned (one array per gate, or one for the whole
    vector), None where the cell drew nothing. ``input_shape`` and ``state_shape``
    (without the batch) are what the masks must be sized to, read from the layer's
    configuration (the previous cell's output size, this cell's units; a ConvLSTM's
    input step and the shape its convolution outputs), not from the masks.
    """

    index: int
    cell: str
    dropout: float
    recurrent_dropout: float
    gate_count: int
    batch: int
    input_shape: tuple[int, ...]
    state_shape: tuple[int, ...]
    inputs: tuple[np.ndarray, ...] | None = field(repr=False)
    recurrent: tuple[np.ndarray, ...] | None = field(repr=False)

    @property
    def label(self) -> str:
        return f"cell {self.index} ({self.cell})"

    def step_masks(self) -> StepMasks:
        return StepMasks(self.inputs, self.recurrent)


def _cells_of(layer: Any) -> list[Any]:
    cell = layer.cell
    return list(cell.cells) if isinstance(cell, keras.layers.StackedRNNCells) else [cell]


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _recording(cell: Any, name: str, store: dict) -> Callable:
    original = getattr(cell, name)

    def record(step_input):
        masks = original(step_input)
        if masks is not None and name not in store:
            store[name] = tuple(
                compare.to_numpy(m) for m in compare.keras_tree().flatten(masks)
            )
        return masks

    return record


def record_dropout_masks(layer: Any, x: Any, **call_kwargs: Any) -> tuple[Any, list[CellMasks]]:
    """Call ``layer(x, training=True)`` and return ``(outputs, [CellMasks per cell])``.

    ``layer`` is a ``keras.layers.RNN`` (over one cell or a list of cells) whose cells
    are Keras dropout cells. Each cell's mask getters are wrapped for the duration of
    the call (on the cell object, not its class) and the first masks they hand out,
    which Keras reuses for every step of the call, are kept. A training call that
    raises is an AssertionError naming the cells' rates: training with dropout in
    every cell is documented to work.
    """
    if not isinstance(layer, keras.layers.RNN):
        raise ValueError(f"expected a keras.layers.RNN; got {type(layer).__name__}")
    cells = _cells_of(layer)
    stores: list[dict] = [{} for _ in cells]
    names = ("get_dropout_mask", "get_recurrent_dropout_mask")
    for cell, store in zip(cells, stores, strict=True):
        for name in names:
            if hasattr(cell, name):
                object.__setattr__(cell, name, _recording(cell, name, store))
    rates = [(type(c).__name__, getattr(c, "dropout", 0.0), getattr(c, "recurrent_dropout", 0.0))
             for c in cells]
    try:
        outputs = layer(x, training=True, **call_kwargs)
    except Exception as exc:
        raise AssertionError(
            f"{_label(layer)}: a training call with dropout in its cells (cell, dropout, "
            f"recurrent_dropout: {rates}) raises {type(exc).__name__}: {exc}"
        ) from None
    finally:
        for cell in cells:
            for name in names:
                if name in vars(cell):
                    object.__delattr__(cell, name)
    batch = int(np.shape(x)[0])
    recorded, step = [], tuple(int(d) for d in np.shape(x)[2:])
    for index, (cell, store) in enumerate(zip(cells, stores, strict=True)):
        if is_conv_lstm(cell):
            state = tuple(int(d) for d in cell.compute_output_shape((batch, *step))[0][1:])
        else:
            state = (_output_size(cell),)
        recorded.append(
            CellMasks(
                index=index,
                cell=f"{type(cell).__name__} {cell.name!r}",
                dropout=float(getattr(cell, "dropout", 0.0)),
                recurrent_dropout=float(getattr(cell, "recurrent_dropout", 0.0)),
                gate_count=int(getattr(cell, "dropout_mask_count", None) or 1),
                batch=batch,
                input_shape=step,
                state_shape=state,
                inputs=store.get("get_dropout_mask"),
                recurrent=store.get("get_recurrent_dropout_mask"),
            )
        )
        step = state
    return outputs, recorded


def assert_cell_masks_sized(recorded: Sequence[CellMasks]) -> None:
    """Assert every cell with a rate drew its masks, one per gate (one for the whole vector
    where the cell has no ``dropout_mask_count``), each ``(batch, its own input size)``
    for ``dropout`` and ``(batch, its own units)`` for ``recurrent_dropout`` (a
    ConvLSTM's: its input step's and its state's shapes), and no two gates the same
    mask: two independent draws of ``n`` units agree everywhere with probability
    ``(p^2 + (1 - p)^2) ** n``, 8e-16 for ``n = 64`` at ``p = 0.3``."""
    problems = []
    for cell in recorded:
        for which, rate, masks, shape in (
            ("dropout", cell.dropout, cell.inputs, cell.input_shape),
            ("recurrent_dropout", cell.recurrent_dropout, cell.recurrent, cell.state_shape),
        ):
            if not 0 < rate < 1:
                continue
            if masks is None:
                problems.append(f"{cell.label} {which}={rate:g} drew no mask in training")
                continue
            if len(masks) != cell.gate_count:
                problems.append(
                    f"{cell.label} {which}: {len(masks)} masks, expected {cell.gate_count} "
                    "(one per gate)"
                )
            want = (cell.batch, *shape)
            wrong = [tuple(m.shape) for m in masks if tuple(m.shape) != want]
            if wrong:
                what = "its input" if which == "dropout" else "its state"
                problems.append(
                    f"{cell.label} {which}: masks of shape {wrong[0]}, expected {want} "
                    f"(batch, the shape of {what})"
                )
                continue
            shared = [
                (a, b)
                for a in range(len(masks))
                for b in range(a + 1, len(masks))
                if np.array_equal(masks[a], masks[b])
            ]
            if shared:
                problems.append(
                    f"{cell.label} {which}: gates {shared[0][0]} and {shared[0][1]} share one "
                    f"mask; each of the {len(masks)} gates draws its own"
                )
    if problems:
        raise AssertionError(
            "dropout masks are not one per gate, sized to each cell's own input and state:\n  "
            + "\n  ".join(problems)
        )


def assert_cell_mask_rates(recorded: Sequence[CellMasks], *, sigmas: float = 5.0) -> None:
    """Assert each cell's masks hold only 0 and ``1 / (1 - rate)``, and drop a fraction of
    their units within :func:`binomial_tolerance` of the rate (the gates' masks are
    independent draws, so their units are pooled)."""
    problems = []
    for cell in recorded:
        for which, rate, masks in (
            ("dropout", cell.dropout, cell.inputs),
            ("recurrent_dropout", cell.recurrent_dropout, cell.recurrent),
        ):
            if not 0 < rate < 1 or masks is None:
                continue
            values = np.concatenate([m.ravel() for m in masks]).astype(np.float64)
            scale = 1.0 / (1.0 - rate)
            odd = ~(np.isclose(values, 0.0) | np.isclose(values, scale, rtol=1e-6))
            if odd.any():
                problems.append(
                    f"{cell.label} {which}={rate:g}: {int(odd.sum())} of {values.size} mask "
                    f"values are neither 0 nor 1/(1-rate) = {scale:.4f} (e.g. "
                    f"{values[odd][0]:.4g})"
                )
                continue
            dropped = int(np.isclose(values, 0.0).sum())
            bound = binomial_tolerance(values.size, rate, sigmas=sigmas)
            if abs(dropped / values.size - rate) > bound:
                problems.append(
                    f"{cell.label} {which}={rate:g}: dropped {dropped} of {values.size} units "
                    f"= {dropped / values.size:.4f}, expected {rate:g} +- {bound:.4f} "
                    f"({sigmas:g}-sigma binomial bound)"
                )
    if problems:
        raise AssertionError("dropout masks do not match the documented rates:\n  "
                             + "\n  ".join(problems))


def assert_training_uses_the_drawn_masks(
    layer: Any,
    x: Any,
    outputs: Any,
    recorded: Sequence[CellMasks],
    *,
    atol: float = 1e-5,
) -> None:
    """Assert a training call's ``outputs`` equal the NumPy reference
    (:func:`pytest_rnn.checks.reference.reference_outputs`) of every cell fed the masks
    it drew: each mask multiplies its gate's input (or state) at every step, and
    nothing else is dropped."""
    masks = [cell.step_masks() for cell in recorded]
    stacked = isinstance(layer.cell, keras.layers.StackedRNNCells)
    reference = reference_outputs(
        layer, x, training=True, dropout_masks=masks if stacked else masks[0]
    )
    compare_outputs(
        outputs,
        reference,
        atol=atol,
        rtol=0.0,
        what=f"{_label(layer)} in training, against the reference fed the masks its cells drew",
        sequence_ndim=np.ndim(x),
    )
