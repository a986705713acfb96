"""Gradients through time equal the float64 NumPy backward pass, for every layer kind.

Forward values alone cannot show a release that cuts or damps the gradient through
time, drops the gradient of the initial state or lets gradient into padded steps.
Each case takes the gradients of the fixed loss ``L = sum_k sum(W_k * returned_k)``
(every returned tensor times fixed standard normals) with respect to the inputs, the
initial states and every weight through the active backend, and compares them with
:func:`pytest_rnn.assert_gradients_match_reference` (tolerances derived in
:func:`pytest_rnn.checks.reference_grad.gradient_tolerance`). Weights are seeded
random non-zero values, biases included. Tiny shapes: 2 samples, 5 steps, 3 units.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pytest_rnn import assert_gradients_match_reference
from pytest_rnn.checks.models import build_random, keras_own_loop

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 3
POST = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)  # post-padded sample 0
PRE = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=bool)  # pre-padded sample 0


def _bi(layer, mode):
    return keras.layers.Bidirectional(layer, merge_mode=mode)


#: case -> (layer builder, mask or None, number of initial states to pass (0: none)).
#: Masked LSTMs keep Keras's backend loop (use_cudnn=False): on a GPU host cuDNN fills
#: padded steps differently from the documented loop the reference follows (see
#: pytest_rnn.checks.reference); the cuDNN path has its own equivalence suite.
CASES = {
    "simple_rnn_sequences_post_mask": (
        lambda: keras.layers.SimpleRNN(UNITS, return_sequences=True, return_state=True),
        POST, 1),
    "lstm_initial_state": (
        lambda: keras.layers.LSTM(UNITS, return_sequences=True, return_state=True), None, 2),
    "lstm_go_backwards_pre_mask": (
        lambda: keras.layers.LSTM(UNITS, go_backwards=True, return_state=True,
                                  **keras_own_loop()), PRE, 2),
    "gru_initial_state": (lambda: keras.layers.GRU(UNITS, return_state=True), None, 1),
    "gru_reset_before_sequences_pre_mask": (
        lambda: keras.layers.GRU(UNITS, reset_after=False, return_sequences=True,
                                 return_state=True), PRE, 1),
    "rnn_over_stacked_cells": (
        lambda: keras.layers.RNN([keras.layers.LSTMCell(UNITS), keras.layers.GRUCell(2)],
                                 return_sequences=True, return_state=True), POST, 3),
    "bidirectional_lstm_concat": (
        lambda: _bi(keras.layers.LSTM(UNITS, return_sequences=True, return_state=True,
                                      **keras_own_loop()), "concat"), POST, 4),
    "bidirectional_gru_sum": (
        lambda: _bi(keras.layers.GRU(UNITS, return_state=True), "sum"), None, 2),
    "bidirectional_simple_rnn_ave": (
        lambda: _bi(keras.layers.SimpleRNN(UNITS, return_sequences=True), "ave"), PRE, 0),
    "bidirectional_gru_reset_before_mul": (
        lambda: _bi(keras.layers.GRU(UNITS, reset_after=False, return_sequences=True), "mul"),
        POST, 0),
    "bidirectional_lstm_no_merge": (
        lambda: _bi(keras.layers.LSTM(UNITS, return_state=True), None), None, 4),
}


def _state_sizes(layer) -> list[int]:
    halves = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]
    sizes = []
    for half in [h for h in halves if h is not None] or [layer]:
        for cell in getattr(half.cell, "cells", [half.cell]):
            sizes += [cell.units] * (2 if isinstance(cell, keras.layers.LSTMCell) else 1)
    return sizes


# gru_reset_before_sequences_pre_mask on JAX: the ledger's jax-h0-at-leading-masked-steps.


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_match_the_numpy_backward_pass_through_time(case, rnn_rng):
    make, mask, n_init = CASES[case]
    layer = build_random(make(), (BATCH, STEPS, FEATURES), rnn_rng)
    x = rnn_rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = mask
    if n_init:
        sizes = _state_sizes(layer)
        assert len(sizes) == n_init, f"case {case} declares {n_init} states, layer has {sizes}"
        states = [rnn_rng.normal(size=(BATCH, s)).astype("float32") for s in sizes]
        if case == "rnn_over_stacked_cells":  # one list of states per cell
            states = [states[:2], states[2:]]
        kwargs["initial_state"] = states
    assert_gradients_match_reference(layer, x, **kwargs)
