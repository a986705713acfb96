"""Recurrent layers compute the documented equations: Keras against a NumPy reference.

Every weight, biases included, gets seeded random non-zero values, so a bias
added to the wrong gate or a gate read from the wrong column block changes the
numbers. Documented defaults (the GRU signature the seeds quote, LSTM's
``unit_forget_bias``) are pinned separately, since the reference follows
whatever configuration the layer reports.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
from pytest_rnn.models import KINDS, MERGE_MODES, VARIANTS, build_random, rnn_layer

from pytest_rnn import assert_matches_reference
from pytest_rnn.checks.compare import to_numpy
from pytest_rnn.runtime.versions import keras_lacks

# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
BATCH, STEPS, FEATURES, UNITS = 3, 4, 3, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
# post-padded, pre-padded, and a gap in the middle: all three ways a mask can look
MASK = np.array([[1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]], dtype=bool)


CONFIGS = {
    "last_output": ({}, {}),
    "sequences_and_states": ({"return_sequences": True, "return_state": True}, {}),
    "no_bias": ({"use_bias": False, "return_sequences": True}, {}),
    "go_backwards": ({"go_backwards": True, "return_sequences": True, "return_state": True}, {}),
    "other_activations": ({"activation": "relu", "recurrent_activation": "hard_sigmoid"}, {}),
    "initial_state": ({"return_sequences": True, "return_state": True}, {"initial_state": True}),
    "mask": ({"return_sequences": True, "return_state": True}, {"mask": True}),
    "mask_zero_output": ({"return_sequences": True, "zero_output_for_mask": True}, {"mask": True}),
    "mask_go_backwards": (
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"mask": True},
    ),
    "unroll": ({"unroll": True, "return_sequences": True, "return_state": True}, {}),
}



def n_states(kind: str) -> int:
    return 2 if kind == "lstm" else 1


def call_kwargs(kind: str, wanted: dict, rnn_rng: np.random.Generator) -> dict:
    kwargs = {}
    if wanted.get("mask"):
        kwargs["mask"] = MASK
    if wanted.get("initial_state"):
        kwargs["initial_state"] = [
            rnn_rng.uniform(-1, 1, size=(BATCH, UNITS)).astype("float32")
            for _ in range(n_states(kind))
        ]
    return kwargs


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_layer_matches_the_numpy_reference(variant, config, x, rnn_rng):
    kind, variant_kwargs = VARIANTS[variant]
    layer_kwargs, wanted = CONFIGS[config]
    layer_kwargs = dict(layer_kwargs)
    if kind == "simple_rnn":
        layer_kwargs.pop("recurrent_activation", None)  # SimpleRNN has a single activation
    layer = build_random(
        rnn_layer(kind, UNITS, **variant_kwargs, **layer_kwargs), INPUT_SHAPE, rnn_rng
    )
    assert_matches_reference(layer, x, **call_kwargs(kind, wanted, rnn_rng))


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_layer_continues_from_its_state_as_the_reference_does(kind, x, rnn_rng):
    layer = build_random(
        rnn_layer(kind, UNITS, stateful=True, return_sequences=True, return_state=True),
        INPUT_SHAPE,
        rnn_rng,
    )
    assert_matches_reference(layer, x)
    second = rnn_rng.normal(size=INPUT_SHAPE).astype("float32")
    assert np.abs(to_numpy(layer.states[0])).max() > 0, f"{kind}: state not kept after a call"
    assert_matches_reference(layer, second)


@pytest.mark.parametrize("kind", KINDS)
def test_default_initialised_layer_matches_the_reference(kind, x):
    layer = rnn_layer(kind, UNITS, return_sequences=True, return_state=True)
    assert_matches_reference(layer, x)


@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_matches_the_reference(kind, merge_mode, x, rnn_rng):
    layer = build_random(
        keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, return_sequences=True, return_state=True),
            merge_mode=merge_mode,
        ),
        INPUT_SHAPE,
        rnn_rng,
    )
    assert_matches_reference(layer, x)


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_with_mask_and_initial_state_matches_the_reference(kind, x, rnn_rng):
    layer = build_random(
        keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, return_sequences=True, return_state=True),
            merge_mode="concat",
        ),
        INPUT_SHAPE,
        rnn_rng,
    )
    states = [
        rnn_rng.uniform(-1, 1, size=(BATCH, UNITS)).astype("float32")
        for _ in range(2 * n_states(kind))
    ]
    assert_matches_reference(layer, x, mask=MASK, initial_state=states)


def test_rnn_over_stacked_cells_matches_the_reference(x, rnn_rng):
    cells = [keras.layers.LSTMCell(UNITS), keras.layers.GRUCell(UNITS + 1)]
    cells.append(keras.layers.SimpleRNNCell(UNITS - 1))
    layer = keras.layers.RNN(cells, return_sequences=True, return_state=True)
    build_random(layer, INPUT_SHAPE, rnn_rng)
    assert_matches_reference(layer, x)
    assert_matches_reference(layer, x, mask=MASK)


# --- documented defaults ---------------------------------------------------------------------

# keras.layers.GRU's signature as the seeds quote it from the TensorFlow API docs
GRU_SIGNATURE = [
    ("units", inspect.Parameter.empty),
    ("activation", "tanh"),
    ("recurrent_activation", "sigmoid"),
    ("use_bias", True),
    ("kernel_initializer", "glorot_uniform"),
    ("recurrent_initializer", "orthogonal"),
    ("bias_initializer", "zeros"),
    ("kernel_regularizer", None),
    ("recurrent_regularizer", None),
    ("bias_regularizer", None),
    ("activity_regularizer", None),
    ("kernel_constraint", None),
    ("recurrent_constraint", None),
    ("bias_constraint", None),
    ("dropout", 0.0),
    ("recurrent_dropout", 0.0),
    ("seed", None),
    ("return_sequences", False),
    ("return_state", False),
    ("go_backwards", False),
    ("stateful", False),
    ("unroll", False),
    ("reset_after", True),
    ("use_cudnn", "auto"),
]


def test_gru_signature_keeps_the_documented_parameters_order_and_defaults():
    # the release's own signature: no use_cudnn before Keras 3.2
    signature = [(name, default) for name, default in GRU_SIGNATURE
                 if name != "use_cudnn" or not keras_lacks("use_cudnn")]
    params = inspect.signature(keras.layers.GRU).parameters
    actual = [(name, p.default) for name, p in params.items() if p.kind is not p.VAR_KEYWORD]
    documented = dict(signature)
    missing = [name for name in documented if name not in params]
    changed = [
        f"{name}={params[name].default!r} (documented {default!r})"
        for name, default in signature
        if name in params and params[name].default != default
    ]
    order = [name for name, _ in actual if name in documented]
    assert not missing and not changed, (
        f"GRU signature changed: missing {missing}, changed defaults {changed}"
    )
    assert order == [name for name, _ in signature], f"GRU positional order changed: {order}"


def test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after():
    config = keras.layers.GRU(UNITS).get_config()
    expected = {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "reset_after": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
    }
    got = {key: config.get(key) for key in expected}
    assert got == expected, f"GRU default config changed: {got} (expected {expected})"
    initializers = {
        key: config[key]["class_name"]
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer")
    }
    assert initializers == {
        "kernel_initializer": "GlorotUniform",
        "recurrent_initializer": "Orthogonal",
        "bias_initializer": "Zeros",
    }, f"GRU default initializers changed: {initializers}"


@pytest.mark.parametrize("kind", KINDS)
def test_default_weights_are_glorot_kernel_orthogonal_recurrent_kernel(kind):
    """Glorot-uniform kernel within sqrt(6 / (fan_in + fan_out)); recurrent kernel (u x g*u)
    with orthonormal rows."""
    layer = rnn_layer(kind, UNITS)
    layer.build((None, None, FEATURES))
    kernel = np.asarray(layer.cell.kernel)
    recurrent = np.asarray(layer.cell.recurrent_kernel)
    limit = np.sqrt(6.0 / (kernel.shape[0] + kernel.shape[1]))
    assert np.abs(kernel).max() <= limit + 1e-7, (
        f"{kind} kernel exceeds the Glorot-uniform limit {limit:.4f}: max |w| "
        f"{np.abs(kernel).max():.4f}"
    )
    assert np.abs(kernel).max() > limit / 4, (
        f"{kind} kernel max |w| {np.abs(kernel).max():.4f} is far inside the Glorot limit "
        f"{limit:.4f}: not Glorot-uniform"
    )
    gram = recurrent @ recurrent.T
    assert np.allclose(gram, np.eye(UNITS), atol=1e-5), (
        f"{kind} recurrent kernel rows are not orthonormal; R R^T =\n{np.round(gram, 4)}"
    )


def test_gru_default_bias_is_two_rows_of_zeros():
    layer = keras.layers.GRU(UNITS)
    layer.build((None, None, FEATURES))
    bias = np.asarray(layer.cell.bias)
    assert bias.shape == (2, 3 * UNITS) and not bias.any(), (
        f"GRU default bias should be zeros of shape (2, {3 * UNITS}); got {bias.shape}: {bias}"
    )


def test_lstm_unit_forget_bias_puts_ones_in_the_forget_gate_bias():
    layer = keras.layers.LSTM(UNITS)
    layer.build((None, None, FEATURES))
    bias = np.asarray(layer.cell.bias)
    expected = np.concatenate([np.zeros(UNITS), np.ones(UNITS), np.zeros(2 * UNITS)])
    assert layer.cell.unit_forget_bias is True, "LSTM unit_forget_bias no longer defaults to True"
    assert np.array_equal(bias, expected), (
        f"LSTM default bias should be [0]*{UNITS} (input) + [1]*{UNITS} (forget) + "
        f"[0]*{2 * UNITS} (cell, output); got {bias}"
    )


def test_lstm_without_unit_forget_bias_starts_at_zero_bias():
    layer = keras.layers.LSTM(UNITS, unit_forget_bias=False)
    layer.build((None, None, FEATURES))
    bias = np.asarray(layer.cell.bias)
    assert not bias.any(), f"LSTM(unit_forget_bias=False) bias should be zeros; got {bias}"


def test_lstm_and_simple_rnn_default_activations():
    lstm = keras.layers.LSTM(UNITS).get_config()
    simple = keras.layers.SimpleRNN(UNITS).get_config()
    got = (lstm["activation"], lstm["recurrent_activation"], simple["activation"])
    assert got == ("tanh", "sigmoid", "tanh"), (
        f"default activations changed: LSTM ({got[0]}, {got[1]}), SimpleRNN {got[2]}"
    )
