"""Saved and rebuilt recurrent layers behave exactly like the originals.

Every case sets non-default options (direction, activations, reset_after,
unit_forget_bias, merge modes, dropout with a seed ...) and random weights, so a
config key that a release stops writing or reading changes either a setting or
the outputs. Outputs must match bit for bit: the same weights through the same
ops leave no room for rounding differences.
"""

from __future__ import annotations

import copy
from typing import Any

import keras
import numpy as np
import pytest
from pytest_rnn.models import build_random, imdb_classifier, rnn_cell, rnn_layer

from pytest_rnn.checks import compare

# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
# (input_shape, builder) per case; every builder sets several non-default options
CASES: dict[str, Any] = {
    "simple_rnn": lambda: rnn_layer(
        "simple_rnn",
        UNITS,
        activation="relu",
        go_backwards=True,
        return_sequences=True,
        use_bias=False,
        dropout=0.2,
    ),
    "lstm": lambda: rnn_layer(
        "lstm",
        UNITS,
        unit_forget_bias=False,
        recurrent_activation="hard_sigmoid",
        return_state=True,
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=5,
    ),
    "gru": lambda: rnn_layer("gru", UNITS),
    "gru_reset_before": lambda: rnn_layer(
        "gru",
        UNITS,
        reset_after=False,
        activation="softsign",
        return_sequences=True,
        zero_output_for_mask=True,
        seed=7,
        dropout=0.3,
    ),
    "bidirectional_lstm_sum": lambda: keras.layers.Bidirectional(
        rnn_layer("lstm", UNITS, return_sequences=True, go_backwards=False), merge_mode="sum"
    ),
    "bidirectional_gru_none": lambda: keras.layers.Bidirectional(
        rnn_layer("gru", UNITS, return_state=True, reset_after=False), merge_mode=None
    ),
    "rnn_over_stacked_cells": lambda: keras.layers.RNN(
        [rnn_cell("lstm", UNITS), rnn_cell("gru", UNITS + 1, reset_after=False)],
        return_sequences=True,
        go_backwards=True,
    ),
}
LAYER_SETTINGS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
)
# the dropout seed is checked on its own (SimpleRNN does not serialize it)
CELL_SETTINGS = (
    "units",
    "use_bias",
    "dropout",
    "recurrent_dropout",
    "reset_after",
    "unit_forget_bias",
)


def built_case(case: str, rnn_rng: np.random.Generator) -> keras.layers.Layer:
    return build_random(CASES[case](), INPUT_SHAPE, rnn_rng)


def settings(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Behaviour-relevant settings of a layer, model or cell, by dotted path."""
    found: dict[str, Any] = {}
    if isinstance(obj, keras.Model):
        for index, layer in enumerate(obj.layers):
            found |= settings(layer, f"{prefix}layers[{index}].")
    elif isinstance(obj, keras.layers.Bidirectional):
        found[f"{prefix}merge_mode"] = obj.merge_mode
        found |= settings(obj.forward_layer, f"{prefix}forward.")
        found |= settings(obj.backward_layer, f"{prefix}backward.")
    elif isinstance(obj, keras.layers.RNN):
        found |= {f"{prefix}{a}": getattr(obj, a) for a in LAYER_SETTINGS}
        found |= settings(obj.cell, f"{prefix}cell.")
    elif isinstance(obj, keras.layers.StackedRNNCells):
        for index, cell in enumerate(obj.cells):
            found |= settings(cell, f"{prefix}cells[{index}].")
    elif hasattr(obj, "units"):
        found |= {f"{prefix}{a}": getattr(obj, a) for a in CELL_SETTINGS if hasattr(obj, a)}
        for name in ("activation", "recurrent_activation"):
            if hasattr(obj, name):
                found[f"{prefix}{name}"] = getattr(getattr(obj, name), "__name__", None)
    else:
        found[f"{prefix}class"] = type(obj).__name__
    return found


def assert_same_settings(restored: Any, original: Any, what: str) -> None:
    want, got = settings(original), settings(restored)
    changed = {
        key: (want.get(key, "<missing>"), got.get(key, "<missing>"))
        for key in sorted(set(want) | set(got))
        if want.get(key, "<missing>") != got.get(key, "<missing>")
    }
    assert not changed, f"{what} changed settings (original, restored): {changed}"


def assert_identical_outputs(restored: Any, original: Any, x: np.ndarray, what: str) -> None:
    """Bit-identical outputs: the same weights and arithmetic, restored."""
    compare.assert_allclose(restored(x, training=False), original(x, training=False),
                            f"{what}: outputs differ from the original", atol=0.0,
                            labels=("restored", "original"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_get_config_from_config_round_trip_keeps_settings_and_outputs(case, rnn_rng):
    layer = built_case(case, rnn_rng)
    x = rnn_rng.normal(size=INPUT_SHAPE).astype("float32")
    config = layer.get_config()
    clone = type(layer).from_config(copy.deepcopy(config))  # RNN.from_config pops "cell"
    # settings first: a lost setting (GRU reset_after) changes the weights' shapes, and
    # set_weights would then raise before the test could say which setting was lost
    assert_same_settings(clone, layer, f"{case} from_config(get_config())")
    clone.build(INPUT_SHAPE)
    clone.set_weights(layer.get_weights())
    again = clone.get_config()
    differing = sorted(k for k in set(config) | set(again) if config.get(k) != again.get(k))
    assert not differing, f"{case}: the rebuilt layer's get_config differs in keys {differing}"
    assert_identical_outputs(clone, layer, x, f"{case} from_config + set_weights")


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_file_save_and_load_reproduces_settings_and_outputs(case, rnn_rng, tmp_path):
    layer = built_case(case, rnn_rng)
    inputs = keras.Input(batch_shape=INPUT_SHAPE)
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / f"{case}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = rnn_rng.normal(size=INPUT_SHAPE).astype("float32")
    assert_same_settings(restored.layers[-1], layer, f"{case} after .keras save/load")
    assert_identical_outputs(restored, model, x, f"{case} after .keras save/load")


def test_seed_imdb_model_survives_keras_file_save_and_load(rnn_rng, tmp_path):
    model = imdb_classifier(
        "gru",
        layers=2,
        vocab=40,
        embed_dim=4,
        maxlen=STEPS,
        dropout=0.3,
        bidirectional=True,
        merge_mode="ave",
        head_dropout=0.5,
    )
    for weight in model.weights:
        weight.assign(rnn_rng.uniform(-0.5, 0.5, size=tuple(weight.shape)).astype(weight.dtype))
    model.save(tmp_path / "imdb.keras")
    restored = keras.saving.load_model(tmp_path / "imdb.keras")
    tokens = rnn_rng.integers(0, 40, size=(BATCH, STEPS)).astype("int32")
    assert_same_settings(restored, model, "IMDB model after .keras save/load")
    assert_identical_outputs(restored, model, tokens, "IMDB model after .keras save/load")


@pytest.mark.parametrize(
    "kind",
    ["simple_rnn", "lstm", "gru"],  # simple_rnn: ledger entry simple-rnn-config-drops-seed
)
def test_get_config_keeps_the_dropout_seed(kind):
    layer = rnn_layer(kind, UNITS, dropout=0.2, seed=1234)
    clone = type(layer).from_config(layer.get_config())
    assert clone.cell.seed == 1234, (
        f"{kind}: from_config(get_config()) has dropout seed {clone.cell.seed}, expected 1234"
    )
