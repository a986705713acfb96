"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D: counts, shapes, equations, dropout, arguments, saving.

A ConvLSTM is an LSTM whose products are convolutions, so everything pinned for
LSTM is pinned here again, plus what the convolution adds: the output's spatial
shape (padding, strides, dilation, data format) and the argument combinations
Keras documents as invalid. Every layer is tiny (2 filters, 4x4 images, 3 steps,
batch 2) and every weight, biases included, gets seeded random values, so a gate
read from the wrong block or a bias added twice changes the numbers.

Tolerance of the reference comparisons, derived: each gate's pre-activation at a
position is a float32 sum of ``n = prod(kernel) * (channels + filters) + 1``
products of magnitude below 2 (inputs are standard normals, |weights| <= 0.5), so
its rounding error is at most about ``2 * n * eps32``; the LSTM update is a
contraction in ``c`` (forget gate < 1) and the errors of the steps add up, so the
outputs after ``steps`` steps are within ``steps * 2 * n * eps32`` (3.5e-5 for a
3x3 kernel on 2 channels and 2 filters over 3 steps). Observed: below 1e-6.
"""

from __future__ import annotations

import json
import math
import re

import keras
import numpy as np
import pytest

from pytest_rnn import (
    assert_dropout_rate,
    assert_inference_ignores_dropout,
    assert_inverted_dropout_scaling,
    assert_matches_reference,
    assert_output_structure,
    assert_param_count,
    assert_seed_reproduces_masks,
    assert_training_applies_dropout,
    expected_output_structure,
    expected_param_count,
)
from pytest_rnn.checks import compare
from pytest_rnn.checks.dropout import (
    assert_cell_mask_rates,
    assert_cell_masks_sized,
    assert_dropout_mask_shared_across_time,
    assert_training_uses_the_drawn_masks,
    measure_dropout,
    record_dropout_masks,
)
from pytest_rnn.checks.models import build_random
from pytest_rnn.checks.shapes import expected_structure_of

BATCH, STEPS, CHANNELS, FILTERS, SIZE = 2, 3, 2, 2, 4
EPS32 = float(np.finfo(np.float32).eps)
LAYERS = {1: keras.layers.ConvLSTM1D, 2: keras.layers.ConvLSTM2D, 3: keras.layers.ConvLSTM3D}
# sample 1 loses its last step, sample 0 none: a masked step must keep h and c
MASK = np.array([[1, 1, 1], [1, 1, 0]], dtype=bool)


def input_shape(rank: int, data_format: str = "channels_last", batch: int | None = BATCH):
    spatial = (SIZE,) * rank
    if data_format == "channels_first":
        return (batch, STEPS, CHANNELS, *spatial)
    return (batch, STEPS, *spatial, CHANNELS)


def conv_lstm(rank: int = 2, **options) -> keras.layers.Layer:
    options.setdefault("kernel_size", 3)
    return LAYERS[rank](FILTERS, **options)


def inputs(rng: np.random.Generator, rank: int = 2, data_format: str = "channels_last"):
    return rng.normal(size=input_shape(rank, data_format)).astype("float32")


def reference_atol(layer) -> float:
    """``steps * 2 * n * eps32`` with ``n`` the terms of one gate's pre-activation (see the
    module docstring)."""
    cell = layer.cell
    terms = math.prod(cell.kernel_size) * (cell.input_dim + cell.filters) + 1
    return STEPS * 2 * terms * EPS32


# --- parameter counts ---------------------------------------------------------------------------

# kind -> (rank, kernel_size, input channels): a different kernel and channel count per rank
COUNT_CASES = {"conv_lstm1d": (1, 3, 3), "conv_lstm2d": (2, (2, 3), 2), "conv_lstm3d": (3, 2, 1)}


@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("kind", sorted(COUNT_CASES))
def test_param_count_matches_the_closed_form(kind, use_bias):
    rank, kernel_size, channels = COUNT_CASES[kind]
    layer = LAYERS[rank](FILTERS, kernel_size, use_bias=use_bias)
    layer.build((None, STEPS, *(SIZE,) * rank, channels))
    expected = expected_param_count(
        kind, FILTERS, channels, kernel_size=kernel_size, use_bias=use_bias
    )
    assert_param_count(layer, expected, trainable=expected)


# --- output and state shapes --------------------------------------------------------------------

# name -> (rank, layer options): padding, strides, dilation and data format, all of them moving
# the spatial output shape differently
SHAPE_CASES = {
    "2d_valid": (2, {}),
    "2d_strides_valid": (2, {"strides": 2}),
    "2d_strides_same_channels_first": (
        2,
        {"strides": (2, 1), "padding": "same", "data_format": "channels_first"},
    ),
    "2d_dilation": (2, {"dilation_rate": 2, "kernel_size": 2}),
    "1d_same_dilation_channels_first": (
        1,
        {"padding": "same", "dilation_rate": 2, "data_format": "channels_first"},
    ),
    "3d_strides_same": (3, {"strides": 2, "padding": "same", "kernel_size": 2}),
}
RETURNS = [(False, False), (True, False), (False, True), (True, True)]
# the cases also called (eagerly for each return combination, symbolically once): one per
# rank, both data formats, both paddings; compute_output_shape is held to every case
CALLED_CASES = ["2d_valid", "2d_strides_same_channels_first", "1d_same_dilation_channels_first",
                "3d_strides_same"]


def _shape_case(name: str, **returns):
    rank, options = SHAPE_CASES[name]
    return rank, options, conv_lstm(rank, **options, **returns)


def _expected(rank: int, options: dict, batch: int | None, **returns):
    data_format = options.get("data_format", "channels_last")
    return expected_output_structure(
        f"conv_lstm{rank}d",
        batch=batch,
        steps=STEPS,
        units=FILTERS,
        spatial=(SIZE,) * rank,
        kernel_size=options.get("kernel_size", 3),
        strides=options.get("strides", 1),
        padding=options.get("padding", "valid"),
        dilation_rate=options.get("dilation_rate", 1),
        data_format=data_format,
        **returns,
    )


@pytest.mark.parametrize("case", CALLED_CASES)
def test_output_and_state_shapes_for_every_return_option(case, rnn_rng):
    """Eager calls return the closed-form structure for each return_sequences x return_state;
    a symbolic (``keras.Input``) call with both returns the same structure, batch unknown."""
    for return_sequences, return_state in RETURNS:
        returns = {"return_sequences": return_sequences, "return_state": return_state}
        rank, options, layer = _shape_case(case, **returns)
        data_format = options.get("data_format", "channels_last")
        x = inputs(rnn_rng, rank, data_format)
        label = f"{type(layer).__name__}({options}, {returns})"
        assert_output_structure(layer(x), _expected(rank, options, BATCH, **returns), what=label)
    symbolic = layer(keras.Input(batch_shape=input_shape(rank, data_format, None)))
    assert_output_structure(
        symbolic, _expected(rank, options, None, **returns), what=f"symbolic {label}"
    )


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_compute_output_shape_agrees_with_the_closed_form(case):
    """Held to the same structure the calls are held to above, so the three agree."""
    for return_sequences, return_state in RETURNS:
        returns = {"return_sequences": return_sequences, "return_state": return_state}
        rank, options, layer = _shape_case(case, **returns)
        data_format = options.get("data_format", "channels_last")
        layer.build(input_shape(rank, data_format))
        for batch in (BATCH, None):
            shape = input_shape(rank, data_format, batch)
            assert_output_structure(
                layer.compute_output_shape(shape),
                _expected(rank, options, batch, **returns),
                what=f"{type(layer).__name__}({options}, {returns}).compute_output_shape({shape})",
            )
            assert expected_structure_of(layer, shape) == _expected(
                rank, options, batch, **returns
            ), "expected_structure_of reads the layer's configuration wrongly"


# --- the equations ------------------------------------------------------------------------------

# name -> (rank, layer options, call options)
REFERENCE_CASES = {
    "2d_valid": (2, {}, {}),
    "2d_sequences_states_no_bias": (
        2,
        {"return_sequences": True, "return_state": True, "use_bias": False},
        {},
    ),
    "2d_same_strides_channels_first": (
        2,
        {"padding": "same", "strides": 2, "data_format": "channels_first", "return_state": True},
        {},
    ),
    "2d_dilation_activations": (
        2,
        {
            "dilation_rate": 2,
            "kernel_size": 2,
            "padding": "same",
            "activation": "relu",
            "recurrent_activation": "hard_sigmoid",
        },
        {},
    ),
    "2d_go_backwards_mask": (
        2,
        {"go_backwards": True, "return_sequences": True, "return_state": True},
        {"mask": True},
    ),
    "2d_initial_state": (2, {"return_sequences": True, "padding": "same"}, {"initial_state": True}),
    "1d_mask": (1, {"return_sequences": True, "return_state": True}, {"mask": True}),
    "3d_same": (3, {"padding": "same", "kernel_size": 2, "return_state": True}, {}),
}


# Masked cases on JAX: the ledger's jax-convlstm-masked-scan (pytest_rnn/ledger.json).


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_layer_matches_the_numpy_reference(case, rnn_rng):
    rank, options, wanted = REFERENCE_CASES[case]
    data_format = options.get("data_format", "channels_last")
    layer = build_random(conv_lstm(rank, **options), input_shape(rank, data_format), rnn_rng)
    x = inputs(rnn_rng, rank, data_format)
    call = {}
    if wanted.get("mask"):
        call["mask"] = MASK
    if wanted.get("initial_state"):  # h and c: the shape of one step of the output
        state = layer.cell.compute_output_shape((BATCH, *x.shape[2:]))[0]
        call["initial_state"] = [rnn_rng.uniform(-1, 1, state).astype("float32") for _ in "hc"]
    assert_matches_reference(layer, x, atol=reference_atol(layer), rtol=0.0, **call)


def test_default_initialised_layer_matches_the_reference(rnn_rng):
    """Keras's own initial weights (orthogonal recurrent kernel, forget bias 1)."""
    layer = conv_lstm(2, return_sequences=True, return_state=True)
    layer.build(input_shape(2))
    assert_matches_reference(layer, inputs(rnn_rng), atol=reference_atol(layer), rtol=0.0)


# --- dropout ------------------------------------------------------------------------------------

RATE = 0.3
SEED = 20240611
DROPOUT_SETTINGS = {
    "dropout": {"dropout": RATE},
    "recurrent_dropout": {"recurrent_dropout": RATE},
}


@pytest.fixture(scope="module")
def measured():
    """One probe measurement per setting, shared by the tests of one run."""
    cache: dict = {}

    def get(which: str):
        if which not in cache:
            layer = conv_lstm(2, seed=SEED, **DROPOUT_SETTINGS[which])
            steps = STEPS if which == "dropout" else 1
            cache[which] = (layer, measure_dropout(layer, which, steps=steps))
        return cache[which]

    return get


@pytest.mark.parametrize("which", sorted(DROPOUT_SETTINGS))
def test_every_gate_drops_units_at_the_rate(which, measured):
    """Four gates (i, f, c, o), each dropping ``RATE`` of its units within the 5-sigma
    binomial bound, as measured on the probe."""
    layer, measurements = measured(which)
    assert [m.gate for m in measurements] == ["i", "f", "c", "o"], "a measurement per gate"
    assert_dropout_rate(layer, which, measurements=measurements)


@pytest.fixture(scope="module")
def drawn():
    """One training call of a ConvLSTM2D with both dropouts, and the masks its cell drew."""
    rng = np.random.default_rng(20240613)
    shape = (8, STEPS, SIZE, SIZE, CHANNELS)
    layer = build_random(
        conv_lstm(2, padding="same", return_sequences=True, return_state=True, seed=SEED,
                  dropout=RATE, recurrent_dropout=RATE),
        shape,
        rng,
    )
    x = rng.normal(size=shape).astype("float32")
    outputs, masks = record_dropout_masks(layer, x)
    return layer, x, outputs, masks


def test_each_gate_draws_its_own_mask_sized_to_the_input_and_state(drawn):
    """Four masks for the input, four for the state (one per gate, none shared), each of the
    shape of what it multiplies: ``(batch, rows, cols, channels)`` and ``(batch, rows,
    cols, filters)``."""
    _, _, _, masks = drawn
    assert_cell_masks_sized(masks)
    assert_cell_mask_rates(masks)


def test_training_output_applies_the_drawn_masks(drawn):
    """The training call equals the reference fed the masks the cell drew (each gate's
    input and state multiplied by its own mask, at every step). Twice the reference
    tolerance: kept units are scaled by 1/(1 - 0.3) < 1.5, so each product is below 3."""
    layer, x, outputs, masks = drawn
    assert_training_uses_the_drawn_masks(layer, x, outputs, masks, atol=2 * reference_atol(layer))


@pytest.mark.parametrize("which", sorted(DROPOUT_SETTINGS))
def test_kept_units_are_scaled_by_one_over_keep_probability(which, measured):
    layer, measurements = measured(which)
    assert_inverted_dropout_scaling(layer, which, measurements=measurements)


def test_one_input_mask_is_reused_at_every_time_step(measured):
    layer, measurements = measured("dropout")
    assert_dropout_mask_shared_across_time(layer, measurements=measurements)


def test_inference_ignores_dropout_and_equals_a_dropout_free_twin(rnn_rng):
    layer = build_random(
        conv_lstm(2, dropout=RATE, recurrent_dropout=RATE, return_sequences=True),
        input_shape(2),
        rnn_rng,
    )
    assert_inference_ignores_dropout(layer, inputs(rnn_rng))


@pytest.mark.parametrize("which", sorted(DROPOUT_SETTINGS))
def test_training_output_differs_from_inference(which, rnn_rng):
    layer = build_random(
        conv_lstm(2, return_sequences=True, **DROPOUT_SETTINGS[which]), input_shape(2), rnn_rng
    )
    assert_training_applies_dropout(layer, inputs(rnn_rng))


def test_the_same_seed_reproduces_the_masks(rnn_rng):
    x = inputs(rnn_rng)
    assert_seed_reproduces_masks(
        lambda seed: conv_lstm(2, dropout=RATE, recurrent_dropout=RATE, seed=seed), x
    )


# --- argument validation ------------------------------------------------------------------------

# combinations the ConvLSTM docstrings call invalid, and the words the error must contain
INVALID = {
    "strides_with_dilation": ({"strides": 2, "dilation_rate": 2}, r"strides.*dilation_rate"),
    "kernel_size_zero": ({"kernel_size": 0}, r"kernel_size"),
    "kernel_size_of_the_wrong_rank": ({"kernel_size": (3, 3, 3)}, r"kernel_size.*2 integers"),
    "dilation_rate_zero": ({"dilation_rate": 0}, r"dilation_rate"),
    "causal_padding": ({"padding": "causal"}, r"padding"),
    "unknown_data_format": ({"data_format": "nchw"}, r"data_format"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_documented_invalid_arguments_raise_at_construction(case):
    options, words = INVALID[case]
    options = {"kernel_size": 3, **options}
    try:
        keras.layers.ConvLSTM2D(FILTERS, **options)
    except ValueError as exc:
        assert re.search(words, str(exc)), (
            f"ConvLSTM2D({options}) raises, but its message does not name the argument "
            f"({words!r}): {exc}"
        )
        return
    raise AssertionError(
        f"ConvLSTM2D(filters={FILTERS}, {options}) is accepted at construction; Keras documents "
        "it as invalid, so it must raise a ValueError naming the argument before any call"
    )


def test_input_smaller_than_the_kernel_raises_a_clear_error_when_built():
    """Only the input knows its size: the error comes at build time, and names the sizes."""
    layer = keras.layers.ConvLSTM2D(FILTERS, 5)
    try:
        layer(np.zeros(input_shape(2), "float32"))
    except ValueError as exc:
        assert re.search(EMPTY_OUTPUT, str(exc)), (
            f"a 5x5 kernel on 4x4 images raises a ValueError that does not say the output "
            f"would be empty (/{EMPTY_OUTPUT}/): {str(exc)[:300]}")
        return
    raise AssertionError("a 5x5 kernel on 4x4 images with padding='valid' was accepted")


#: The words of Keras's errors for a convolution whose output would be empty: the shape
#: check of its output-shape computation (TensorFlow) and the check added to each backend's
#: convolution in keras-team/keras 6d06085d43 (#21796).
EMPTY_OUTPUT = (r"Computed output size would be zero or negative|"
                r"convolution operation resulted in an empty output")


# arguments the documentation rules out; Keras 3.0-3.15 accept each at construction (ledger
# entry convlstm-invalid-values-accepted: these tests are strict xfails on those releases)
INVALID_VALUES = {
    "filters_zero": ({"filters": 0}, "filters=0 builds 0-channel kernels and fails only inside "
                     "the backend's convolution at the first call"),
    "filters_negative": ({"filters": -1}, "filters=-1 fails only at build ('Negative dimensions "
                         "are not allowed')"),
    "strides_zero": ({"strides": 0}, "strides=0 fails only at the first call"),
    "dropout_above_one": ({"dropout": 1.5}, "dropout is documented as a float between 0 and 1; "
                          "1.5 is silently clamped to 1.0"),
    "recurrent_dropout_negative": ({"recurrent_dropout": -0.5}, "recurrent_dropout -0.5 is "
                                   "silently clamped to 0.0"),
}


@pytest.mark.parametrize("case", sorted(INVALID_VALUES))
def test_invalid_values_raise_at_construction(case):
    """A ValueError naming the argument; any other error (or one naming something else)
    is no validation of it."""
    invalid, instead = INVALID_VALUES[case]
    options = {"filters": FILTERS, "kernel_size": 3, **invalid}
    (argument,) = invalid
    try:
        keras.layers.ConvLSTM2D(**options)
    except ValueError as exc:
        assert argument in str(exc), (
            f"ConvLSTM2D({options}) raises a ValueError that does not name `{argument}`: "
            f"{str(exc)[:300]}")
        return
    raise AssertionError(f"ConvLSTM2D({options}) is accepted at construction: {instead}")


# --- serialization ------------------------------------------------------------------------------

SAVED_OPTIONS = {
    "padding": "same",
    "strides": (1, 2),
    "data_format": "channels_first",
    "activation": "softsign",
    "recurrent_activation": "hard_sigmoid",
    "unit_forget_bias": False,
    "go_backwards": True,
    "return_sequences": True,
    "return_state": True,
    "dropout": 0.1,
    "recurrent_dropout": 0.2,
    "seed": 11,
}


def _outputs(layer, x) -> list[np.ndarray]:
    return [compare.to_numpy(o) for o in compare.flatten(layer(x))]


def _assert_same(rebuilt, original, x, how: str) -> None:
    changed = {
        key: (value, rebuilt.get_config().get(key))
        for key, value in original.get_config().items()
        if key != "name" and json.dumps(rebuilt.get_config().get(key)) != json.dumps(value)
    }
    assert not changed, f"ConvLSTM2D {how}: settings changed (original, rebuilt): {changed}"
    for index, (got, want) in enumerate(zip(_outputs(rebuilt, x), _outputs(original, x),
                                            strict=True)):
        assert np.array_equal(got, want), (
            f"ConvLSTM2D {how}: output {index} differs by up to {np.abs(got - want).max():.3g} "
            "with the same weights"
        )


def test_get_config_from_config_round_trip_keeps_settings_and_outputs(rnn_rng):
    shape = input_shape(2, "channels_first")
    layer = build_random(keras.layers.ConvLSTM2D(FILTERS, 3, **SAVED_OPTIONS), shape, rnn_rng)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    clone.build(shape)
    clone.set_weights(layer.get_weights())
    _assert_same(clone, layer, inputs(rnn_rng, 2, "channels_first"), "from its config")


def test_keras_file_save_and_load_reproduces_settings_and_outputs(rnn_rng, tmp_path):
    shape = input_shape(2, "channels_first")
    layer = build_random(keras.layers.ConvLSTM2D(FILTERS, 3, **SAVED_OPTIONS), shape, rnn_rng)
    inp = keras.Input(batch_shape=shape)
    model = keras.Model(inp, layer(inp))
    model.save(tmp_path / "conv_lstm.keras")
    loaded = keras.saving.load_model(tmp_path / "conv_lstm.keras")
    x = inputs(rnn_rng, 2, "channels_first")
    _assert_same(loaded.layers[-1], layer, x, "saved to a .keras file and loaded")
