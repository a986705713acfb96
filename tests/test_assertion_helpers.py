"""The public assertion helpers: they refuse bad input by name, and their failures say
what differs (weight, tensor, step, element) with the numbers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from pytest_rnn.models import build_random, imdb_classifier, marked_product_regressor
from pytest_rnn.reference import reference_outputs

import pytest_rnn
from pytest_rnn import (
    assert_matches_reference,
    assert_output_structure,
    assert_param_count,
    expected_output_structure,
    expected_param_count,
)

X_SHAPE = (2, 4, 3)


@pytest.fixture
def rng(rnn_seed: int) -> np.random.Generator:
    return np.random.default_rng(rnn_seed)


def test_public_names_are_exported_lazily():
    for name in (
        "expected_param_count",
        "assert_param_count",
        "assert_matches_reference",
        "expected_output_structure",
        "assert_output_structure",
    ):
        assert name in pytest_rnn.__all__
        assert callable(getattr(pytest_rnn, name))


# --- expected_param_count / assert_param_count -----------------------------------------------


def test_expected_param_count_closed_forms():
    assert expected_param_count("simple_rnn", 32, 100) == 4256
    assert expected_param_count("lstm", 8, 16) == 800
    assert expected_param_count("gru", 8, 16) == 624
    assert expected_param_count("gru", 8, 16, reset_after=False) == 600
    assert expected_param_count("lstm", 2, 3, use_bias=False) == 4 * 2 * 5
    assert expected_param_count("gru", 64, 128, bidirectional=True) == 2 * 3 * 64 * 194


@pytest.mark.parametrize(
    "args, kwargs, named",
    [
        (("rnn", 8, 16), {}, "kind"),
        (("lstm", 0, 16), {}, "units"),
        (("lstm", 8, -1), {}, "input_dim"),
        (("lstm", 8.0, 16), {}, "units"),
        (("gru", 8, 16), {"use_bias": "yes"}, "use_bias"),
        (("gru", 8, 16), {"bidirectional": 1}, "bidirectional"),
        (("lstm", 8, 16), {"reset_after": False}, "reset_after"),
    ],
)
def test_expected_param_count_names_the_bad_argument(args, kwargs, named):
    with pytest.raises(ValueError, match=named):
        expected_param_count(*args, **kwargs)


def test_assert_param_count_failure_lists_every_weight_and_trainability():
    model = imdb_classifier("gru")
    model.layers[0].trainable = False
    with pytest.raises(AssertionError) as excinfo:
        assert_param_count(model, 8609, trainable=8633)
    message = str(excinfo.value)
    assert "8,633 parameters, expected 8,609 (+24)" in message
    assert "633 trainable parameters, expected 8,633" in message
    lines = message.splitlines()
    for fragment, shape, trainability in (
        ("/embeddings", "shape=(500, 16)", "non-trainable"),
        ("gru_cell/kernel", "shape=(16, 24)", " trainable"),
        ("gru_cell/recurrent_kernel", "shape=(8, 24)", " trainable"),
        ("gru_cell/bias", "shape=(2, 24)", " trainable"),
        ("/bias", "shape=(1,)", " trainable"),
    ):
        matching = [line for line in lines if fragment in line and shape in line]
        assert matching and matching[0].endswith(trainability), (
            f"no line with {fragment!r}, {shape} and {trainability.strip()!r} in:\n{message}"
        )


def test_assert_param_count_refuses_an_unbuilt_layer_and_bad_expectations():
    with pytest.raises(ValueError, match="not built"):
        assert_param_count(keras.layers.LSTM(3), 10)
    model = marked_product_regressor("gru", units=2, steps=3)
    with pytest.raises(ValueError, match="expected"):
        assert_param_count(model, -1)
    with pytest.raises(ValueError, match="trainable"):
        assert_param_count(model, 10, trainable=1.5)


# --- output structure ------------------------------------------------------------------------


def test_expected_output_structure_orders_states_per_direction():
    structure = expected_output_structure(
        "lstm",
        batch=2,
        steps=5,
        units=3,
        return_sequences=True,
        return_state=True,
        bidirectional=True,
        merge_mode=None,
    )
    assert structure == [
        ("forward output", (2, 5, 3)),
        ("backward output", (2, 5, 3)),
        ("forward h", (2, 3)),
        ("forward c", (2, 3)),
        ("backward h", (2, 3)),
        ("backward c", (2, 3)),
    ]


def test_expected_output_structure_names_the_bad_argument():
    with pytest.raises(ValueError, match="merge_mode"):
        expected_output_structure("gru", batch=2, steps=3, units=4, merge_mode="max")
    with pytest.raises(ValueError, match="units"):
        expected_output_structure("gru", batch=2, steps=3, units=0)
    with pytest.raises(ValueError, match="kind"):
        expected_output_structure("transformer", batch=2, steps=3, units=4)


def test_assert_output_structure_names_the_element_that_differs():
    expected = expected_output_structure("lstm", batch=2, steps=None, units=3, return_state=True)
    swapped = [np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 3))]
    with pytest.raises(AssertionError, match=r"element 1 \(h\) has shape \(2, 4\), expected"):
        assert_output_structure(swapped, expected)
    with pytest.raises(AssertionError, match="returned 2 elements.*expected 3: output"):
        assert_output_structure(swapped[:2], expected)
    with pytest.raises(AssertionError, match="single tensor"):
        assert_output_structure(np.zeros((2, 3)), expected)
    with pytest.raises(AssertionError, match="where a single tensor output"):
        assert_output_structure([np.zeros((2, 3))], expected[:1])


def test_assert_output_structure_accepts_compute_output_shape_results():
    expected = expected_output_structure("gru", batch=2, steps=5, units=3, return_state=True)
    assert_output_structure(((2, 3), (2, 3)), expected)
    with pytest.raises(AssertionError, match="element 0"):
        assert_output_structure(((2, 5, 3), (2, 3)), expected)


# --- reference ---------------------------------------------------------------------------------


class GruCellWithSwappedGates(keras.layers.GRUCell):
    """A GRU whose update and reset gates trade places: plausible numbers, wrong math."""

    def call(self, inputs, states, training=False):
        u = self.units
        kernel, recurrent = self.kernel, self.recurrent_kernel
        order = np.r_[u : 2 * u, 0:u, 2 * u : 3 * u]
        self.kernel = keras.ops.take(kernel, order, axis=1)
        self.recurrent_kernel = keras.ops.take(recurrent, order, axis=1)
        try:
            return super().call(inputs, states, training=training)
        finally:
            self.kernel, self.recurrent_kernel = kernel, recurrent


def test_reference_catches_swapped_gates_and_names_the_tensor_and_step(rng):
    layer = keras.layers.RNN(GruCellWithSwappedGates(3), return_sequences=True, return_state=True)
    build_random(layer, X_SHAPE, rng)
    x = rng.normal(size=X_SHAPE).astype("float32")
    with pytest.raises(AssertionError) as excinfo:
        assert_matches_reference(layer, x)
    message = str(excinfo.value)
    assert "differs from the NumPy reference" in message
    assert "output:" in message and "h:" in message
    assert "worst at batch" in message and "first differing step 0" in message


def test_reference_reports_a_missing_state():
    layer = keras.layers.LSTM(3, return_state=True)
    layer.build(X_SHAPE)
    x = np.ones(X_SHAPE, "float32")
    reference = reference_outputs(layer, x)
    assert [name for name, _ in reference] == ["output", "h", "c"]
    from pytest_rnn.reference import compare_outputs

    with pytest.raises(AssertionError, match="returned 2 tensors.*expects 3: output, h, c"):
        compare_outputs(layer(x)[:2], reference, atol=1e-5, rtol=1e-5, what="LSTM")


def test_reference_refuses_what_it_cannot_model(rng):
    x = rng.normal(size=X_SHAPE).astype("float32")
    dropout = keras.layers.GRU(3, dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        assert_matches_reference(dropout, x, training=True)
    stacked = keras.layers.RNN([keras.layers.GRUCell(3), keras.layers.LSTMCell(2, dropout=0.2)])
    with pytest.raises(ValueError, match="dropout"):
        assert_matches_reference(stacked, x, training=True)
    with pytest.raises(ValueError, match="constants"):
        assert_matches_reference(keras.layers.GRU(3), x, constants=[x])
    with pytest.raises(ValueError, match="activation"):
        assert_matches_reference(keras.layers.SimpleRNN(3, activation="gelu"), x)
    with pytest.raises(ValueError, match="mask must have shape"):
        reference_outputs(build_random(keras.layers.GRU(3), X_SHAPE, rng), x, mask=[[1, 0]])
    with pytest.raises(ValueError, match="SimpleRNN, LSTM, GRU and ConvLSTM1D/2D/3D"):
        reference_outputs(keras.layers.Dense(3), x)
    with pytest.raises(ValueError, match=r"inputs must be \(batch, steps, 2 spatial axes"):
        reference_outputs(build_random(keras.layers.ConvLSTM2D(2, 1), (2, 3, 4, 4, 1), rng), x)
