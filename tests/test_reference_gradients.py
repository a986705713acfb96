"""The float64 backward pass through time is right: it equals central differences of the
NumPy forward reference, element by element, for every case it models.

Both sides are float64 NumPy (no Keras computation): the forward reference
(``pytest_rnn.checks.reference``) is evaluated at ``p + h e`` and ``p - h e`` for every
element ``e`` of the inputs, the initial states and every weight, with ``h = 1e-6``.
Central differences then err by ``h**2/6 |L'''|`` (about 1e-13 here) plus rounding
``eps |L| / h`` (``eps = 2**-53``, ``|L| <= 10``: about 1e-9), so ``1e-7`` absolute
(plus ``1e-7`` relative) bounds them with a margin of 100 while any wrong term of the
chain rule changes a gradient by far more.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from pytest_rnn.checks import compare
from pytest_rnn.checks import reference as fwd
from pytest_rnn.checks.models import build_random
from pytest_rnn.checks.reference_grad import DERIVATIVES, reference_gradients

H, TOL = 1e-6, 1e-7
BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3
POST = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
PRE = np.array([[0, 1, 1, 1], [0, 0, 1, 1]], dtype=bool)


def _lstm(**kw):
    return keras.layers.LSTM(UNITS, **kw)


#: case -> (layer builder, call options: "mask" PRE/POST, "init" number of initial states)
CASES = {
    "simple_rnn_sequences_states_post_mask": (
        lambda: keras.layers.SimpleRNN(UNITS, return_sequences=True, return_state=True),
        {"mask": POST, "init": 1}),
    "lstm_last_output": (lambda: _lstm(), {}),
    "lstm_go_backwards_initial_state_pre_mask": (
        lambda: _lstm(return_sequences=True, return_state=True, go_backwards=True),
        {"mask": PRE, "init": 2}),
    "lstm_zero_output_for_mask": (
        lambda: _lstm(return_sequences=True, zero_output_for_mask=True), {"mask": PRE}),
    "gru_reset_after_states": (
        lambda: keras.layers.GRU(UNITS, return_state=True, activation="relu",
                                 recurrent_activation="hard_sigmoid"), {"init": 1}),
    "gru_reset_before_sequences_mask": (
        lambda: keras.layers.GRU(UNITS, reset_after=False, return_sequences=True,
                                 return_state=True), {"mask": POST, "init": 1}),
    "gru_no_bias_go_backwards": (
        lambda: keras.layers.GRU(UNITS, use_bias=False, go_backwards=True,
                                 return_sequences=True), {}),
    "stacked_cells": (
        lambda: keras.layers.RNN([keras.layers.LSTMCell(UNITS), keras.layers.GRUCell(2),
                                  keras.layers.SimpleRNNCell(2)], return_sequences=True,
                                 return_state=True), {"mask": PRE, "init": 4}),
    **{
        f"bidirectional_{mode}": (
            lambda mode=mode: keras.layers.Bidirectional(
                keras.layers.GRU(UNITS, return_sequences=mode != "sum", return_state=True,
                                 reset_after=mode != "ave"), merge_mode=mode),
            {"mask": POST, "init": 2})
        for mode in ("concat", "sum", "ave", "mul", None)
    },
    "bidirectional_lstm_last_output": (
        lambda: keras.layers.Bidirectional(_lstm(return_state=True)), {"init": 4}),
}


def _state_units(layer) -> list[int]:
    layers = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]
    layers = [lay for lay in layers if lay is not None] or [layer]
    units = []
    for lay in layers:
        for cell in getattr(lay.cell, "cells", [lay.cell]):
            units += [cell.units] * (2 if isinstance(cell, keras.layers.LSTMCell) else 1)
    return units


def _loss(layer, x, init, mask, loss_weights) -> float:
    outputs = fwd.reference_outputs(layer, x, initial_state=init, mask=mask)
    return float(sum(np.sum(w * a) for w, (_, a) in zip(loss_weights, outputs, strict=True)))


def _central(f, value: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        step = np.zeros_like(value)
        step[index] = H
        grad[index] = (f(value + step) - f(value - step)) / (2 * H)
    return grad


def _assert_close(name: str, got: np.ndarray, want: np.ndarray) -> None:
    line = compare.difference(name, got, want, atol=TOL, rtol=TOL,
                              labels=("backward pass", "central difference"))
    assert line is None, line


@pytest.mark.parametrize("case", list(CASES))
def test_bptt_equals_central_differences_of_the_forward_reference(case, monkeypatch):
    make, options = CASES[case]
    rng = np.random.default_rng(7)
    layer = build_random(make(), (BATCH, STEPS, FEATURES), rng, scale=0.6)
    x = rng.normal(size=(BATCH, STEPS, FEATURES))
    mask = options.get("mask")
    init = None
    if "init" in options:
        init = [rng.normal(size=(BATCH, u)) for u in _state_units(layer)]
    result = reference_gradients(layer, x, initial_state=init, mask=mask, seed=3)
    grads = dict(result.gradients)
    w = result.loss_weights
    assert result.loss == pytest.approx(_loss(layer, x, init, mask, w), abs=1e-12)

    _assert_close("inputs", grads["inputs"], _central(lambda v: _loss(layer, v, init, mask, w), x))
    state_names = [n for n in grads if n.startswith("initial_state")]
    assert len(state_names) == (0 if init is None else len(init))
    for i, name in enumerate(state_names):
        def with_state(v, i=i):
            return _loss(layer, x, [v if j == i else s for j, s in enumerate(init)], mask, w)
        _assert_close(name, grads[name], _central(with_state, init[i]))

    # every weight: the forward reference reads float64 copies (read from Keras once),
    # with the perturbed one swapped in
    edits: dict[str, np.ndarray] = {}
    original_of = fwd.CellMath.of.__func__
    read: dict[int, tuple] = {}

    def of(cls, cell):
        if id(cell) not in read:
            read[id(cell)] = (cell, original_of(cls, cell))
        math = dataclasses.replace(read[id(cell)][1])
        for attr in ("kernel", "recurrent_kernel", "bias"):
            var = getattr(cell, attr, None)
            if var is not None and var.path in edits:
                setattr(math, attr, edits[var.path])
        return math

    monkeypatch.setattr(fwd.CellMath, "of", classmethod(of))
    weight_paths = [p for p in grads if p != "inputs" and not p.startswith("initial_state")]
    assert sorted(weight_paths) == sorted(v.path for v in layer.trainable_weights)
    for var in layer.trainable_weights:
        base = np.asarray(var.numpy(), dtype=np.float64)

        def with_weight(v, path=var.path):
            edits[path] = v
            try:
                return _loss(layer, x, init, mask, w)
            finally:
                edits.pop(path)

        _assert_close(var.path, grads[var.path], _central(with_weight, base))


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_activation_derivatives_equal_central_differences(name):
    act = fwd.ACTIVATIONS[name]
    x = np.linspace(-4.1, 4.3, 41)  # avoids the kinks at 0, +-3 and 6 by > H
    numeric = (act(x + H) - act(x - H)) / (2 * H)
    np.testing.assert_allclose(DERIVATIVES[name](x), numeric, rtol=1e-6, atol=1e-8)
