"""What recurrent layers return: structure, order and shapes of outputs and states.

Sizes are all different (batch 2, steps 3, features 5, units 4) so that a
swapped axis shows up as a wrong shape rather than passing by coincidence; three steps
are enough, since no shape depends on the sequence's length beyond carrying it.
"""

from __future__ import annotations

import functools
import itertools

import keras
import numpy as np
import pytest
from pytest_rnn.models import KINDS, MERGE_MODES, build_random, rnn_cell, rnn_layer
from pytest_rnn.shapes import expected_structure_of

from pytest_rnn import assert_output_structure, expected_output_structure
from pytest_rnn.checks import compare
from pytest_rnn.checks.compare import to_numpy

# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
BATCH, STEPS, FEATURES, UNITS = 2, 3, 5, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
FLAGS = list(itertools.product((False, True), (False, True)))
FLAG_IDS = [f"seq{int(rs)}-state{int(st)}" for rs, st in FLAGS]



#: Outputs that must be equal up to float32 rounding of the same arithmetic.
assert_close = functools.partial(compare.assert_allclose, atol=1e-6)

#: The structure a layer of this module's sizes should return on ``x``.
expected_structure = functools.partial(
    expected_output_structure, batch=BATCH, steps=STEPS, units=UNITS
)


# --- single layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("return_sequences, return_state", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_layer_returns_output_then_its_states(kind, return_sequences, return_state, x):
    flags = {"return_sequences": return_sequences, "return_state": return_state}
    layer = rnn_layer(kind, UNITS, **flags)
    assert_output_structure(layer(x), expected_structure(kind, **flags), what=f"{kind} layer")


@pytest.mark.parametrize("return_sequences, return_state", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_compute_output_shape_agrees_with_real_outputs(kind, return_sequences, return_state, x):
    layer = rnn_layer(kind, UNITS, return_sequences=return_sequences, return_state=return_state)
    outputs = layer(x)
    expected = expected_structure_of(layer, INPUT_SHAPE)
    assert_output_structure(
        layer.compute_output_shape(INPUT_SHAPE), expected, what=f"{kind}.compute_output_shape"
    )
    assert_output_structure(outputs, expected, what=f"{kind} layer")


@pytest.mark.parametrize("kind", KINDS)
def test_last_step_of_the_sequence_equals_the_final_state_when_unmasked(kind, x, rnn_rng):
    layer = build_random(
        rnn_layer(kind, UNITS, return_sequences=True, return_state=True), INPUT_SHAPE, rnn_rng
    )
    sequence, h, *_ = layer(x)
    assert_close(sequence[:, -1], h, f"{kind}: last step of the sequence vs final h")


@pytest.mark.parametrize("kind", KINDS)
def test_output_without_sequences_equals_the_final_h(kind, x, rnn_rng):
    layer = build_random(rnn_layer(kind, UNITS, return_state=True), INPUT_SHAPE, rnn_rng)
    output, h, *_ = layer(x)
    assert_close(output, h, f"{kind}: output vs final h")


def test_lstm_returns_h_then_c_and_c_is_the_cell_state(x, rnn_rng):
    layer = build_random(
        keras.layers.LSTM(UNITS, return_sequences=True, return_state=True), INPUT_SHAPE, rnn_rng
    )
    sequence, h, c = (to_numpy(t) for t in layer(x))
    assert_close(sequence[:, -1], h, "LSTM second return value should be h (the last output)")
    # h = o * tanh(c): the third value must be the carry that h was squashed from
    o_gate_bound = np.abs(np.tanh(c)) + 1e-6
    assert np.all(np.abs(h) <= o_gate_bound), (
        "LSTM third return value should be c with |h| <= |tanh(c)|; violated at "
        f"{np.argwhere(np.abs(h) > o_gate_bound).tolist()}"
    )
    assert not np.allclose(h, c, atol=1e-3), "LSTM returned h twice instead of h and c"


@pytest.mark.parametrize("kind", KINDS)
def test_default_initial_state_is_zeros_of_batch_by_units(kind):
    layer = rnn_layer(kind, UNITS)
    layer.build(INPUT_SHAPE)
    states = layer.get_initial_state(BATCH)
    n_states = 2 if kind == "lstm" else 1
    assert len(states) == n_states, f"{kind} should start from {n_states} state(s)"
    for index, state in enumerate(states):
        state = to_numpy(state)
        assert state.shape == (BATCH, UNITS), f"{kind} initial state {index}: {state.shape}"
        assert not state.any(), f"{kind} initial state {index} is not zeros: {state}"


# --- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cell_step_returns_output_and_a_list_of_new_states(kind, rnn_rng):
    cell = rnn_cell(kind, UNITS)
    cell.build((BATCH, FEATURES))
    n_states = 2 if kind == "lstm" else 1
    expected_sizes = [UNITS] * n_states if kind == "lstm" else UNITS
    assert cell.state_size == expected_sizes, f"{kind} cell state_size {cell.state_size}"
    assert cell.output_size == UNITS, f"{kind} cell output_size {cell.output_size}"
    states = [np.zeros((BATCH, UNITS), "float32") for _ in range(n_states)]
    x_t = rnn_rng.normal(size=(BATCH, FEATURES)).astype("float32")
    output, new_states = cell(x_t, states)
    assert_output_structure(output, [("output", (BATCH, UNITS))], what=f"{kind} cell output")
    assert isinstance(new_states, (list, tuple)), (
        f"{kind} cell should return its states as a list when given a list; got "
        f"{type(new_states).__name__}"
    )
    assert_output_structure(
        list(new_states),
        [(name, (BATCH, UNITS)) for name in ("h", "c")[:n_states]],
        what=f"{kind} cell states",
        as_list=True,
    )
    assert_close(new_states[0], output, f"{kind} cell: first new state vs output")


def test_rnn_over_stacked_cells_returns_one_state_group_per_cell(x):
    layer = keras.layers.RNN(
        [keras.layers.LSTMCell(UNITS), keras.layers.GRUCell(UNITS + 1)], return_state=True
    )
    output, lstm_states, gru_states = layer(x)
    assert_output_structure(output, [("output", (BATCH, UNITS + 1))], what="stacked output")
    assert_output_structure(
        lstm_states, [("h", (BATCH, UNITS)), ("c", (BATCH, UNITS))], what="first cell states"
    )
    assert_output_structure(
        gru_states, [("h", (BATCH, UNITS + 1))], what="second cell state", as_list=True
    )
    assert_close(output, gru_states[0], "stacked RNN output vs last cell's h")
    flat_shapes = [(BATCH, UNITS + 1), (BATCH, UNITS), (BATCH, UNITS), (BATCH, UNITS + 1)]
    assert_output_structure(
        layer.compute_output_shape(INPUT_SHAPE),
        [(f"#{i}", s) for i, s in enumerate(flat_shapes)],
        what="stacked compute_output_shape",
    )


# --- Bidirectional ---------------------------------------------------------------------------

#: The merge mode shapes only the merged output, and the return flags only what follows it, so
#: the cases cross them pairwise rather than fully: every flag combination with "concat" (the
#: one mode that changes the width) and None (the one that returns two outputs) for LSTM (two
#: states per direction), every other mode once, and GRU (one state) with both state flags.
BIDIRECTIONAL_CASES = [
    *(("lstm", mode, rs, st) for mode in ("concat", None) for rs, st in FLAGS),
    *(("lstm", mode, True, True) for mode in ("sum", "mul", "ave")),
    ("gru", "concat", False, True), ("gru", "concat", True, True),
    ("gru", None, True, True), ("gru", "sum", False, True),
]
assert {case[1] for case in BIDIRECTIONAL_CASES} == set(MERGE_MODES)


@pytest.mark.parametrize(
    "kind, merge_mode, return_sequences, return_state",
    BIDIRECTIONAL_CASES,
    ids=[f"{k}-{m}-seq{int(rs)}-state{int(st)}" for k, m, rs, st in BIDIRECTIONAL_CASES],
)
def test_bidirectional_returns_merged_output_then_forward_then_backward_states(
    kind, merge_mode, return_sequences, return_state, x
):
    flags = {"return_sequences": return_sequences, "return_state": return_state}
    layer = keras.layers.Bidirectional(rnn_layer(kind, UNITS, **flags), merge_mode=merge_mode)
    expected = expected_structure(kind, **flags, bidirectional=True, merge_mode=merge_mode)
    assert_output_structure(layer(x), expected, what=f"Bidirectional({kind}, {merge_mode})")
    assert_output_structure(
        layer.compute_output_shape(INPUT_SHAPE),
        expected,
        what=f"Bidirectional({kind}, {merge_mode}).compute_output_shape",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_states_are_forward_then_backward(kind, x, rnn_rng):
    layer = build_random(
        keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, return_sequences=True, return_state=True)
        ),
        INPUT_SHAPE,
        rnn_rng,
    )
    output, *states = (to_numpy(t) for t in layer(x))
    half = len(states) // 2
    forward_h, backward_h = states[0], states[half]
    # forward reads steps 0..T-1 and ends at the last step; backward ends at step 0
    assert_close(output[:, -1, :UNITS], forward_h, f"{kind}: forward half at the last step")
    assert_close(output[:, 0, UNITS:], backward_h, f"{kind}: backward half at the first step")
    assert not np.allclose(forward_h, backward_h, atol=1e-3), (
        f"{kind}: forward and backward final states are equal; the directions did not differ"
    )


@pytest.mark.parametrize("kind", ("lstm", "gru"))
def test_bidirectional_merge_modes_combine_the_two_directions(kind, x, rnn_rng):
    base = build_random(
        keras.layers.Bidirectional(rnn_layer(kind, UNITS, return_sequences=True), merge_mode=None),
        INPUT_SHAPE,
        rnn_rng,
    )
    forward, backward = (to_numpy(t) for t in base(x))
    combine = {
        "concat": np.concatenate([forward, backward], axis=-1),
        "sum": forward + backward,
        "mul": forward * backward,
        "ave": (forward + backward) / 2,
    }
    for merge_mode, expected in combine.items():
        layer = keras.layers.Bidirectional(
            rnn_layer(kind, UNITS, return_sequences=True), merge_mode=merge_mode
        )
        layer.build(INPUT_SHAPE)
        layer.set_weights(base.get_weights())
        assert_close(layer(x), expected, f"Bidirectional({kind}) merge_mode={merge_mode!r}")
