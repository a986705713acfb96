"""Dropout in recurrent layers: off at inference, on in training, at the configured rate.

Measured behaviourally (see :mod:`pytest_rnn.dropout`): a dropped unit gets an
exactly-zero gradient, so each gate's mask is read from a probe twin of the layer
rather than from Keras internals. LSTM and GRU take two code paths: ``dropout``
alone keeps implementation 2 (one mask for all gates), any ``recurrent_dropout``
switches to implementation 1 (one mask per gate), so both are measured.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from pytest_rnn.dropout import measure_dropout
from pytest_rnn.models import VARIANTS, build_random, imdb_classifier, rnn_layer

from pytest_rnn import (
    assert_dropout_mask_shared_across_time,
    assert_dropout_rate,
    assert_inference_ignores_dropout,
    assert_inverted_dropout_scaling,
    assert_seed_reproduces_masks,
    assert_training_applies_dropout,
)
from pytest_rnn.checks.compare import to_numpy

# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
BATCH, STEPS, FEATURES, UNITS = 3, 3, 2, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
RATE = 0.3
MASK_STEPS = 3  # input masks are observed at every step of a 3-step probe
SEED = 20240607  # masks of the measured layers are reproducible run to run

# setting -> (layer rates, which mask is measured)
SETTINGS = {
    "dropout": ({"dropout": RATE}, "dropout"),
    "recurrent_dropout": ({"recurrent_dropout": RATE}, "recurrent_dropout"),
    "dropout_with_recurrent": ({"dropout": RATE, "recurrent_dropout": 0.2}, "dropout"),
}



def dropout_layer(variant: str, rnn_rng: np.random.Generator | None = None, **kwargs):
    kind, extra = VARIANTS[variant]
    layer = rnn_layer(kind, UNITS, **extra, **kwargs)
    if rnn_rng is None:
        layer.build(INPUT_SHAPE)
        return layer
    return build_random(layer, INPUT_SHAPE, rnn_rng)


@pytest.fixture(scope="module")
def measured():
    """Measurements shared by the tests of one run (a probe per variant and setting)."""
    cache: dict = {}

    def get(variant: str, setting: str):
        if (variant, setting) not in cache:
            rates, which = SETTINGS[setting]
            layer = dropout_layer(variant, seed=SEED, **rates)
            steps = MASK_STEPS if which == "dropout" else 1
            cache[variant, setting] = (layer, which, measure_dropout(layer, which, steps=steps))
        return cache[variant, setting]

    return get


# --- inference and training ------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_inference_ignores_dropout_and_is_deterministic(variant, x, rnn_rng):
    layer = dropout_layer(variant, rnn_rng, dropout=RATE, recurrent_dropout=RATE,
                          return_sequences=True)
    assert_inference_ignores_dropout(layer, x)


@pytest.mark.parametrize("setting", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_training_output_differs_from_inference(variant, setting, x, rnn_rng):
    rates, _ = SETTINGS[setting]
    layer = dropout_layer(variant, rnn_rng, return_sequences=True, **rates)
    assert_training_applies_dropout(layer, x)


# --- the masks -------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_dropped_fraction_matches_the_rate_within_5_sigma(variant, setting, measured):
    layer, which, measurements = measured(variant, setting)
    assert {m.gate for m in measurements}, f"{variant}: no gate measured"
    assert_dropout_rate(layer, which, sigmas=5.0, measurements=measurements)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kept_units_are_scaled_by_one_over_keep_probability(variant, setting, measured):
    layer, which, measurements = measured(variant, setting)
    assert_inverted_dropout_scaling(layer, which, measurements=measurements)


@pytest.mark.parametrize("setting", ["dropout", "dropout_with_recurrent"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_one_input_mask_is_reused_at_every_time_step(variant, setting, measured):
    layer, _, measurements = measured(variant, setting)
    assert_dropout_mask_shared_across_time(layer, measurements=measurements)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_same_seed_reproduces_the_masks_and_each_call_draws_new_ones(variant, x):
    def make(seed: int):
        return dropout_layer(
            variant, dropout=RATE, recurrent_dropout=RATE, return_sequences=True, seed=seed
        )

    assert_seed_reproduces_masks(make, x)


# --- wrappers and models ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_inference_ignores_dropout(kind, x, rnn_rng):
    layer = build_random(
        keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, dropout=RATE, recurrent_dropout=RATE, return_sequences=True)
        ),
        INPUT_SHAPE,
        rnn_rng,
    )
    assert_inference_ignores_dropout(layer, x)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_training_applies_dropout_in_both_directions(kind, x, rnn_rng):
    layer = build_random(
        keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, dropout=RATE, return_sequences=True), merge_mode=None
        ),
        INPUT_SHAPE,
        rnn_rng,
    )
    trained = [to_numpy(t) for t in layer(x, training=True)]
    inferred = [to_numpy(t) for t in layer(x, training=False)]
    for direction, a, b in zip(("forward", "backward"), trained, inferred, strict=True):
        diff = np.abs(a - b).max()
        assert diff > 1e-3, (
            f"Bidirectional({kind}) {direction} output: training equals inference "
            f"(max |diff| {diff:.3g}); dropout is not applied to this direction in training"
        )


def test_seed_imdb_model_with_dropout_is_deterministic_in_inference_and_varies_in_training(rnn_rng):
    """The seeds' stacked LSTM(8) + LSTM(8) with dropout=0.3 on IMDB-style token input."""
    model = imdb_classifier("lstm", layers=2, dropout=0.3, vocab=50, embed_dim=4, maxlen=STEPS)
    for weight in model.weights:
        weight.assign(rnn_rng.uniform(-0.5, 0.5, size=tuple(weight.shape)).astype(weight.dtype))
    tokens = rnn_rng.integers(1, 50, size=(BATCH, STEPS)).astype("int32")
    assert_inference_ignores_dropout(model, tokens)
    assert_training_applies_dropout(model, tokens, min_diff=1e-4)


# --- known Keras defects: strict xfails on the affected releases (pytest_rnn/ledger.json) --


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_implementation_1_with_input_dropout_runs_in_training(kind, x, rnn_rng):
    """implementation=1 (per-gate matmuls) with input dropout: inference equals
    implementation=2 with the same weights, and a training call runs and applies dropout
    (ledger implementation-1-input-dropout: the training call fails on Keras >= 3.8)."""
    layer = build_random(rnn_layer(kind, UNITS, dropout=RATE, implementation=1, seed=SEED),
                         INPUT_SHAPE, rnn_rng)
    twin = rnn_layer(kind, UNITS, dropout=RATE, implementation=2)
    twin.build(INPUT_SHAPE)
    twin.set_weights(layer.get_weights())
    assert np.allclose(to_numpy(layer(x, training=False)), to_numpy(twin(x, training=False)),
                       atol=1e-6), (
        f"{kind} implementation=1 computes another inference output than implementation=2")
    assert_training_applies_dropout(layer, x, min_diff=1e-4)
