"""One training step reaches every weight of every recurrent layer kind.

A release that freezes a weight (``trainable=False``), cuts its gradient or adds
a weight the computation never uses still builds and runs; only a training step
shows it. Each case takes one SGD step on a random regression target with a gradient
taken eagerly through :mod:`pytest_rnn.backends` (no ``compile``/``fit`` tracing) and
checks, weight by weight, that the weight is trainable, got a finite non-zero gradient and moved,
and that the step lowered the loss (checked without dropout, whose masks change per call).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from pytest_rnn.models import build_random, imdb_classifier, rnn_cell, rnn_layer

from pytest_rnn import backends

BATCH, STEPS, FEATURES, UNITS = 3, 3, 2, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
LEARNING_RATE = 0.01


def stacked_layers(kind: str) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE[1:]),
            rnn_layer(kind, UNITS, return_sequences=True),
            rnn_layer(kind, UNITS + 1),
        ]
    )


def stacked_cells() -> keras.layers.Layer:
    cells = [rnn_cell("lstm", UNITS), rnn_cell("gru", UNITS + 1), rnn_cell("simple_rnn", UNITS)]
    return keras.layers.RNN(cells, return_sequences=True)


#: case -> builder of an unbuilt layer (or built model) taking float inputs INPUT_SHAPE
CASES = {
    "simple_rnn": lambda: rnn_layer("simple_rnn", UNITS),
    "lstm": lambda: rnn_layer("lstm", UNITS),
    "gru": lambda: rnn_layer("gru", UNITS),
    "gru_reset_before": lambda: rnn_layer("gru", UNITS, reset_after=False),
    "lstm_no_bias_sequences": lambda: rnn_layer(
        "lstm", UNITS, use_bias=False, return_sequences=True
    ),
    "lstm_implementation_1": lambda: rnn_layer("lstm", UNITS, implementation=1),
    "gru_recurrent_dropout": lambda: rnn_layer("gru", UNITS, recurrent_dropout=0.2, seed=1),
    "bidirectional_simple_rnn_concat": lambda: keras.layers.Bidirectional(
        rnn_layer("simple_rnn", UNITS)
    ),
    "bidirectional_lstm_sum": lambda: keras.layers.Bidirectional(
        rnn_layer("lstm", UNITS, return_sequences=True), merge_mode="sum"
    ),
    "bidirectional_gru_ave": lambda: keras.layers.Bidirectional(
        rnn_layer("gru", UNITS), merge_mode="ave"
    ),
    "bidirectional_lstm_mul": lambda: keras.layers.Bidirectional(
        rnn_layer("lstm", UNITS), merge_mode="mul"
    ),
    "stacked_lstm_layers": lambda: stacked_layers("lstm"),
    "stacked_gru_layers": lambda: stacked_layers("gru"),
    "rnn_over_stacked_cells": stacked_cells,
}


def trainable_case(case: str, rnn_rng: np.random.Generator):
    layer = CASES[case]()
    if not layer.built:
        layer.build(INPUT_SHAPE)
    return build_random(layer, INPUT_SHAPE, rnn_rng, scale=0.5)


def names(weights) -> list[str]:
    return [w.path for w in weights]


def training_step(model, inputs, target, *, loss_fn, **call_kwargs):
    """One SGD step on ``model.weights`` that are trainable; returns (loss before,
    loss after, gradients by weight path, values before by weight path)."""
    weights = list(model.trainable_weights)
    before = {w.path: np.array(w.numpy()) for w in model.weights}
    loss, grads = backends.gradients(
        lambda: loss_fn(model(inputs, training=True, **call_kwargs), target), weights)
    for weight, grad in zip(weights, grads, strict=True):
        if grad is not None:  # plain SGD: w <- w - lr * g
            weight.assign((before[weight.path] - LEARNING_RATE * grad).astype(weight.dtype))
    after_loss = loss_fn(model(inputs, training=True, **call_kwargs), target)
    gradients = {w.path: g for w, g in zip(weights, grads, strict=True)}
    return float(loss), float(after_loss), gradients, before


def mse(output, target):
    return keras.ops.mean(keras.ops.square(output - keras.ops.convert_to_tensor(target)))


def assert_every_weight_moves(
    model, gradients, before, loss, after_loss, what: str, *, check_descent: bool = True
) -> None:
    frozen = [w.path for w in model.weights if not w.trainable]
    missing = [path for path, g in gradients.items() if g is None]
    zero = [p for p, g in gradients.items() if g is not None and not np.any(g)]
    non_finite = [p for p, g in gradients.items() if g is not None and not np.all(np.isfinite(g))]
    unmoved = [w.path for w in model.weights if np.array_equal(w.numpy(), before[w.path])]
    bad_values = [w.path for w in model.weights if not np.all(np.isfinite(w.numpy()))]
    problems = {
        "not trainable": frozen,
        "no gradient (not connected to the loss)": missing,
        "all-zero gradient": zero,
        "NaN/Inf gradient": non_finite,
        "did not move": unmoved,
        "NaN/Inf after the step": bad_values,
    }
    found = {k: v for k, v in problems.items() if v}
    assert np.isfinite(loss) and np.isfinite(after_loss), (
        f"{what}: loss not finite (before {loss}, after {after_loss})"
    )
    assert not found, (
        f"{what}: one SGD step (lr {LEARNING_RATE}) did not train every weight:\n"
        + "\n".join(f"  {k}: {v}" for k, v in found.items())
        + f"\n  all weights: {names(model.weights)}"
    )
    assert not check_descent or after_loss < loss, (
        f"{what}: one SGD step along the gradient raised the loss from {loss:.6g} to "
        f"{after_loss:.6g}; the gradient does not point downhill"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_weight_is_trainable(case, rnn_rng):
    layer = trainable_case(case, rnn_rng)
    frozen = [w.path for w in layer.weights if not w.trainable]
    assert layer.weights, f"{case}: no weights at all"
    assert not frozen and len(layer.trainable_weights) == len(layer.weights), (
        f"{case}: weights not trainable: {frozen}; trainable "
        f"{names(layer.trainable_weights)} of {names(layer.weights)}"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_training_step_moves_every_weight_and_lowers_the_loss(case, rnn_rng):
    layer = trainable_case(case, rnn_rng)
    x = rnn_rng.normal(size=INPUT_SHAPE).astype("float32")
    out = layer(x)
    target = rnn_rng.normal(size=np.shape(out)).astype("float32")
    loss, after, gradients, before = training_step(layer, x, target, loss_fn=mse)
    # with dropout the second call draws new masks, so its loss is not comparable
    deterministic = "dropout" not in case
    assert_every_weight_moves(
        layer, gradients, before, loss, after, case, check_descent=deterministic
    )


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_seed_imdb_classifier_training_step_moves_embedding_rnn_and_head(kind, rnn_rng):
    """The seeds' Embedding + RNN + Dense(1, sigmoid) with binary cross-entropy."""
    model = imdb_classifier(kind, vocab=30, embed_dim=3, maxlen=STEPS)
    for weight in model.weights:
        weight.assign(rnn_rng.uniform(-0.5, 0.5, size=tuple(weight.shape)).astype(weight.dtype))
    # every token id appears, so every Embedding row receives a gradient
    tokens = np.resize(rnn_rng.permutation(30), (30 // STEPS + 1) * STEPS).reshape(-1, STEPS)
    labels = rnn_rng.integers(0, 2, size=(tokens.shape[0], 1)).astype("float32")
    bce = keras.losses.BinaryCrossentropy()
    loss, after, gradients, before = training_step(
        model, tokens.astype("int32"), labels, loss_fn=lambda out, y: bce(y, out)
    )
    embedding = model.layers[0].embeddings
    untouched = np.flatnonzero(np.all(embedding.numpy() == before[embedding.path], axis=1)).tolist()
    assert not untouched, f"{kind} model: Embedding rows {untouched} did not move"
    assert_every_weight_moves(model, gradients, before, loss, after, f"IMDB {kind} classifier")
