"""The dropout helpers themselves: their bound, their bad-input errors and their failures.

The suites show the helpers pass on Keras; these tests show each helper fails,
with the offending numbers, when the behaviour it checks is broken.
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest

from pytest_rnn import (
    DropoutMeasurement,
    assert_dropout_mask_shared_across_time,
    assert_dropout_rate,
    assert_inference_ignores_dropout,
    assert_inverted_dropout_scaling,
    assert_seed_reproduces_masks,
    assert_training_applies_dropout,
    binomial_tolerance,
    measure_dropout,
)

X = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("float32")


def measurement(kept: np.ndarray, *, rate: float = 0.3, scaling_error: float = 0.0):
    return DropoutMeasurement("SimpleRNN 'probe'", "dropout", rate, "h", kept, scaling_error)


def test_binomial_tolerance_is_sigmas_times_the_binomial_standard_deviation():
    assert binomial_tolerance(2000, 0.3) == pytest.approx(5 * math.sqrt(0.3 * 0.7 / 2000))
    assert binomial_tolerance(2000, 0.3, sigmas=4) == pytest.approx(4 * math.sqrt(0.21 / 2000))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, 0.3), {}, "n must be a positive integer"),
        ((100, 0.0), {}, r"rate must be a number in \(0, 1\)"),
        ((100, 1.0), {}, r"rate must be a number in \(0, 1\)"),
        ((100, 0.3), {"sigmas": -1}, "sigmas must be a positive number"),
        ((20, 0.3), {}, "too few units"),
    ],
)
def test_binomial_tolerance_rejects_bad_input_by_name(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        binomial_tolerance(*args, **kwargs)


def test_measure_dropout_rejects_what_it_cannot_measure():
    with pytest.raises(ValueError, match="expected a recurrent layer"):
        measure_dropout(keras.layers.Dense(3))
    layer = keras.layers.LSTM(4, dropout=0.3)
    with pytest.raises(ValueError, match="which must be one of"):
        measure_dropout(layer, "input_dropout")
    with pytest.raises(ValueError, match="recurrent_dropout=0"):
        measure_dropout(layer, "recurrent_dropout")
    with pytest.raises(ValueError, match="steps must be 1 for recurrent_dropout"):
        measure_dropout(keras.layers.GRU(4, recurrent_dropout=0.3), "recurrent_dropout", steps=2)
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        measure_dropout(layer, samples=0)


def test_measure_dropout_reads_every_gate_of_a_generic_rnn_over_a_cell():
    layer = keras.layers.RNN(keras.layers.LSTMCell(3, dropout=0.4, seed=3))
    measurements = measure_dropout(layer, samples=400)
    assert [m.gate for m in measurements] == ["i", "f", "c", "o"]
    for m in measurements:
        assert m.n >= 400 and abs(m.fraction - 0.4) <= m.tolerance(), m.describe()
        assert m.scaling_error < 1e-5, f"gate {m.gate}: scaling error {m.scaling_error}"


def test_dropout_rate_failure_names_the_gate_and_the_counts():
    kept = np.ones((500, 1, 4), bool)
    kept[:250] = False  # half dropped where 0.3 is configured
    with pytest.raises(AssertionError) as info:
        assert_dropout_rate(None, measurements=[measurement(kept)])
    message = str(info.value)
    assert "gate h: dropped 1000 of 2000 units = 0.5000, expected 0.3 +- 0.0512" in message


def test_scaling_failure_reports_the_error_and_the_expected_factor():
    layer = keras.layers.SimpleRNN(2, dropout=0.3, name="probe")
    kept = np.ones((500, 1, 4), bool)
    with pytest.raises(AssertionError, match=r"1/\(1-0.3\) = 1.4286\| = 0.25"):
        assert_inverted_dropout_scaling(layer, measurements=[measurement(kept, scaling_error=0.25)])


def test_shared_mask_failure_counts_the_units_that_changed_per_step():
    layer = keras.layers.SimpleRNN(2, dropout=0.3, name="probe")
    kept = np.ones((5, 3, 4), bool)
    kept[0, 2, :3] = False
    with pytest.raises(AssertionError, match="gate h: units whose mask differs .* step 2: 3"):
        assert_dropout_mask_shared_across_time(layer, measurements=[measurement(kept)])
    with pytest.raises(ValueError, match="at least 2 steps"):
        assert_dropout_mask_shared_across_time(
            layer, measurements=[measurement(np.ones((5, 1, 4), bool))]
        )


def test_training_check_fails_when_dropout_cannot_change_the_output():
    layer = keras.layers.SimpleRNN(2, dropout=0.5, kernel_initializer="zeros")
    with pytest.raises(AssertionError, match="training output equals inference output"):
        assert_training_applies_dropout(layer, X)
    with pytest.raises(ValueError, match="no dropout > 0"):
        assert_training_applies_dropout(keras.layers.SimpleRNN(2), X)
    with pytest.raises(ValueError, match="stateful"):
        assert_training_applies_dropout(keras.layers.GRU(2, dropout=0.5, stateful=True), X)


class LeakyDropout(keras.layers.Layer):
    """Applies its dropout whatever ``training`` says: the bug the check exists for."""

    def __init__(self, dropout: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout
        self.seed_generator = keras.random.SeedGenerator(1)

    def call(self, inputs, training=None):
        return keras.random.dropout(inputs, self.dropout, seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout}


def test_inference_check_fails_when_dropout_leaks_into_inference():
    with pytest.raises(AssertionError, match="two inference calls .* dropout leaks"):
        assert_inference_ignores_dropout(LeakyDropout(), X)


def test_seed_check_fails_when_the_factory_ignores_the_seed():
    # Each layer gets a seed of its own whatever it is asked for. (Leaving the seed out
    # would not do: after keras.utils.set_random_seed, as any earlier test that used
    # rnn_seed ran, unseeded layers draw identical masks.)
    own_seeds = itertools.count(1000)
    with pytest.raises(AssertionError, match="the seed does not fix the dropout masks"):
        assert_seed_reproduces_masks(
            lambda seed: keras.layers.GRU(2, dropout=0.5, seed=next(own_seeds)), X)
    with pytest.raises(ValueError, match="seed must be an integer"):
        assert_seed_reproduces_masks(lambda seed: keras.layers.GRU(2, dropout=0.5), X, seed="1")
