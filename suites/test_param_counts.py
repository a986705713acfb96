"""Parameter counts of Keras recurrent layers: the seeds' models and the closed forms.

A release that drops a bias row, adds a gate or freezes a weight changes these
numbers; the failure lists every weight with its shape, so it points at the
weight that changed.
"""

from __future__ import annotations

import itertools

import keras
import pytest
from pytest_rnn.models import (
    bidirectional_classifier,
    imdb_classifier,
    marked_product_regressor,
    onehot_classifier,
    rnn_cell,
    rnn_layer,
)

from pytest_rnn import assert_param_count, expected_param_count


def embedding_params(vocab: int, dim: int) -> int:
    return vocab * dim


def dense_params(inputs: int, units: int) -> int:
    return (inputs + 1) * units


# --- the seeds' models -------------------------------------------------------------------


def test_imdb_lstm8_model_has_8809_params_with_the_lstm_at_800():
    model = imdb_classifier("lstm")
    embedding, lstm, dense = model.layers
    assert_param_count(embedding, 8000)
    assert_param_count(lstm, 800)
    assert_param_count(dense, 9)
    assert_param_count(model, 8809, trainable=8809)


def test_imdb_lstm_dropout_does_not_change_the_count():
    assert_param_count(imdb_classifier("lstm", dropout=0.3), 8809, trainable=8809)


def test_imdb_gru8_has_624_params_because_reset_after_adds_a_second_bias_row():
    model = imdb_classifier("gru")
    gru = model.layers[1]
    assert_param_count(gru, 624)
    assert tuple(gru.cell.bias.shape) == (2, 24), (
        f"GRU(8) with reset_after=True should keep input and recurrent biases as two rows "
        f"(2, 24); got bias shape {tuple(gru.cell.bias.shape)}"
    )
    assert_param_count(model, 8633, trainable=8633)


def test_imdb_gru8_with_reset_after_false_has_600_params():
    model = imdb_classifier("gru", reset_after=False)
    assert_param_count(model.layers[1], 600)
    assert tuple(model.layers[1].cell.bias.shape) == (24,)
    assert_param_count(model, 8609, trainable=8609)


def test_embedding_simple_rnn8_model_from_the_seeds():
    model = imdb_classifier("simple_rnn", vocab=1000, embed_dim=32)
    assert_param_count(model.layers[1], 8 * (32 + 8 + 1))
    assert_param_count(model, 32000 + 328 + 9, trainable=32337)


def test_stacked_lstm8_lstm8_has_800_plus_544():
    model = imdb_classifier("lstm", layers=2, dropout=0.3)
    _, first, second, _ = model.layers
    assert_param_count(first, 800)
    assert_param_count(second, 544)
    assert_param_count(model, 9353, trainable=9353)


def test_simple_rnn32_on_100_dim_one_hot_has_4256_plus_dense_33():
    model = onehot_classifier()
    rnn, dense = model.layers
    assert_param_count(rnn, 4256)
    assert_param_count(dense, 33)
    assert_param_count(model, 4289, trainable=4289)


MARKED_PRODUCT_TOTALS = {"simple_rnn": 2851, "lstm": 11311, "gru": 8671}


@pytest.mark.parametrize("kind", sorted(MARKED_PRODUCT_TOTALS))
def test_marked_product_two_layer_model_totals(kind):
    model = marked_product_regressor(kind)
    first, second, dense = model.layers
    assert_param_count(first, expected_param_count(kind, 30, 2))
    assert_param_count(second, expected_param_count(kind, 30, 30))
    assert_param_count(dense, 31)
    total = MARKED_PRODUCT_TOTALS[kind]
    assert_param_count(model, total, trainable=total)


def test_marked_product_gru_layers_have_3060_and_5580():
    first, second, _ = marked_product_regressor("gru").layers
    assert_param_count(first, 3060)
    assert_param_count(second, 5580)


def test_bidirectional_lstm64_imdb_model_from_the_seeds():
    model = bidirectional_classifier()
    embedding, bilstm, _dropout, dense = model.layers
    assert_param_count(embedding, embedding_params(10000, 128))
    assert_param_count(bilstm, 2 * 4 * 64 * (128 + 64 + 1))
    assert_param_count(dense, dense_params(128, 1))
    assert_param_count(model, 1_280_000 + 98_816 + 129, trainable=1_378_945)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_doubles_the_wrapped_layer(kind, merge_mode):
    layer = keras.layers.Bidirectional(rnn_layer(kind, 3), merge_mode=merge_mode)
    layer.build((None, None, 5))
    single = expected_param_count(kind, 3, 5)
    assert_param_count(layer.forward_layer, single)
    assert_param_count(layer.backward_layer, single)
    assert_param_count(layer, 2 * single, trainable=2 * single)
    assert expected_param_count(kind, 3, 5, bidirectional=True) == 2 * single


# --- closed forms ----------------------------------------------------------------------------

SWEEP = [
    (kind, units, input_dim, use_bias, reset_after)
    for kind, reset_after in (("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False))
    for units, input_dim, use_bias in itertools.product((1, 3, 8), (1, 4, 16), (True, False))
]


@pytest.mark.parametrize(
    "kind, units, input_dim, use_bias, reset_after",
    SWEEP,
    ids=[
        f"{k}{'' if k != 'gru' else ('-after' if ra else '-before')}-u{u}-d{d}"
        f"-{'bias' if b else 'nobias'}"
        for k, u, d, b, ra in SWEEP
    ],
)
def test_layer_count_matches_the_closed_form_and_all_weights_train(
    kind, units, input_dim, use_bias, reset_after
):
    extra = {"reset_after": reset_after} if kind == "gru" else {}
    layer = rnn_layer(kind, units, use_bias=use_bias, **extra)
    layer.build((None, None, input_dim))
    expected = expected_param_count(
        kind, units, input_dim, use_bias=use_bias, reset_after=reset_after
    )
    assert_param_count(layer, expected, trainable=expected)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_cell_holds_the_same_weights_as_its_layer(kind):
    cell = rnn_cell(kind, 4)
    cell.build((None, 6))
    assert_param_count(
        cell, expected_param_count(kind, 4, 6), trainable=expected_param_count(kind, 4, 6)
    )


GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_weights_are_kernel_recurrent_kernel_bias_in_that_order(kind):
    """``set_weights``/``get_weights`` users depend on this order and these shapes."""
    layer = rnn_layer(kind, 3)
    layer.build((None, None, 5))
    gates = GATES[kind]
    bias_shape = (2, 3 * gates) if kind == "gru" else (3 * gates,)
    got = [(w.name, tuple(w.shape)) for w in layer.weights]
    want = [("kernel", (5, 3 * gates)), ("recurrent_kernel", (3, 3 * gates)), ("bias", bias_shape)]
    assert got == want, f"{kind} weights changed: got {got}, expected {want}"


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_stateful_layer_keeps_its_state_out_of_the_weights(kind):
    layer = rnn_layer(kind, 3, stateful=True)
    layer.build((2, 4, 5))
    expected = expected_param_count(kind, 3, 5)
    assert_param_count(layer, expected, trainable=expected)
