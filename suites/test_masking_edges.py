"""The edges of masking, where recurrent layers have broken most often: a row whose every
step is masked, masks that are not right-padded (left padding, holes in the middle), and
masks together with ``initial_state``, ``go_backwards``, ``stateful``, dropout and
compiled execution, for every layer kind, Bidirectional, stacked cells and ConvLSTM.

Each call is held against the NumPy reference (:mod:`pytest_rnn.checks.reference`),
whose masked step is Keras's documented one: a masked step keeps the previous state and
repeats the previous output (zeros before any valid step), or outputs zeros with
``zero_output_for_mask``. A row with no valid step therefore ends in its initial state and
outputs zeros; :func:`test_a_fully_masked_row_ends_in_its_initial_state` says so without
the reference. Every mask below puts one edge in each of its rows beside an unmasked or
right-padded row, so a layer that treats the edge like the plain case differs there.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from pytest_rnn.models import VARIANTS, build_random, rnn_cell, rnn_layer

from pytest_rnn import assert_matches_reference, backends
from pytest_rnn.checks.compare import to_numpy
from pytest_rnn.checks.dropout import record_dropout_masks
from pytest_rnn.checks.reference import compare_outputs, reference_outputs

BATCH, STEPS, FEATURES, UNITS = 3, 4, 3, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
ATOL = 1e-5

#: edge -> a (batch, steps) mask: the edge in row 0, the others plain or right-padded.
EDGES = {
    "fully_masked_row": [[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
    "left_padded": [[0, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]],
    "holes": [[1, 0, 0, 1], [0, 1, 0, 1], [1, 1, 1, 0]],
}
#: The plain case the edges are measured against: right padding only (what cuDNN takes).
RIGHT_PADDED = [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
DIRECTIONS = {"forward": {}, "go_backwards": {"go_backwards": True}}


def mask_of(edge: str) -> np.ndarray:
    return np.asarray(RIGHT_PADDED if edge == "right_padded" else EDGES[edge], dtype=bool)


def initial_states(layer, rng: np.random.Generator) -> list[np.ndarray]:
    """Non-zero initial states, one per state of a single-cell ``layer``."""
    sizes = layer.cell.state_size
    sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
    return [rng.uniform(-1, 1, size=(BATCH, int(s))).astype("float32") for s in sizes]


def sequences_and_states(**kwargs):
    return {"return_sequences": True, "return_state": True, **kwargs}


# --- every kind, each edge, both directions, from a non-zero initial state ---------------------


#: (edge, direction): every edge forward, right padding as the plain case, and the edge
#: that reverses into another one (left padding read backwards is right padding).
CASES = [*[(edge, "forward") for edge in sorted(EDGES)], ("right_padded", "forward"),
         ("left_padded", "go_backwards"), ("holes", "go_backwards")]


@pytest.mark.parametrize(("edge", "direction"), CASES, ids=[f"{e}-{d}" for e, d in CASES])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_kind_matches_the_reference_at_each_mask_edge(variant, edge, direction, x,
                                                           rnn_rng):
    kind, options = VARIANTS[variant]
    layer = build_random(rnn_layer(kind, UNITS, **options,
                                   **sequences_and_states(**DIRECTIONS[direction])),
                         INPUT_SHAPE, rnn_rng)
    assert_matches_reference(layer, x, mask=mask_of(edge),
                             initial_state=initial_states(layer, rnn_rng))


@pytest.mark.parametrize("edge", sorted(EDGES))
@pytest.mark.parametrize("kind", ["lstm"])
def test_bidirectional_matches_the_reference_at_each_mask_edge(kind, edge, x, rnn_rng):
    """The backward direction reads the row reversed: a left-padded row is right-padded
    for it, and a fully masked row is fully masked both ways."""
    layer = build_random(
        keras.layers.Bidirectional(rnn_layer(kind, UNITS, **sequences_and_states())),
        INPUT_SHAPE, rnn_rng)
    states = (initial_states(layer.forward_layer, rnn_rng)
              + initial_states(layer.backward_layer, rnn_rng))
    assert_matches_reference(layer, x, mask=mask_of(edge), initial_state=states)


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_stacked_cells_match_the_reference_at_each_mask_edge(edge, x, rnn_rng):
    layer = build_random(
        keras.layers.RNN([rnn_cell("lstm", UNITS), rnn_cell("gru", 3), rnn_cell("simple_rnn", 2)],
                         **sequences_and_states()),
        INPUT_SHAPE, rnn_rng)
    nested = [[rnn_rng.uniform(-1, 1, size=(BATCH, UNITS)).astype("float32") for _ in "hc"],
              rnn_rng.uniform(-1, 1, size=(BATCH, 3)).astype("float32"),
              rnn_rng.uniform(-1, 1, size=(BATCH, 2)).astype("float32")]
    assert_matches_reference(layer, x, mask=mask_of(edge), initial_state=nested)


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_convlstm_matches_the_reference_at_each_mask_edge(edge, rnn_rng):
    width, channels, filters = 5, 2, 3
    shape = (BATCH, STEPS, width, channels)
    layer = build_random(keras.layers.ConvLSTM1D(filters, 3, padding="same",
                                                 **sequences_and_states()), shape, rnn_rng)
    x = rnn_rng.normal(size=shape).astype("float32")
    states = [rnn_rng.uniform(-1, 1, size=(BATCH, width, filters)).astype("float32")
              for _ in range(2)]
    assert_matches_reference(layer, x, mask=mask_of(edge), initial_state=states)


# --- what Keras documents for a row with no valid step ---------------------------------------


@pytest.mark.parametrize("zero_output", [False, True], ids=["repeat_output", "zero_output"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_fully_masked_row_ends_in_its_initial_state(variant, zero_output, x, rnn_rng):
    """No step of row 0 is valid: its outputs are finite zeros (there is no previous output
    to repeat) and each final state is exactly the initial state it was given."""
    kind, options = VARIANTS[variant]
    layer = build_random(rnn_layer(kind, UNITS, **options, zero_output_for_mask=zero_output,
                                   **sequences_and_states()), INPUT_SHAPE, rnn_rng)
    states = initial_states(layer, rnn_rng)
    output, *final = [to_numpy(t) for t in layer(x, mask=mask_of("fully_masked_row"),
                                                 initial_state=states)]
    assert np.isfinite(output).all(), f"{variant}: non-finite outputs with a fully masked row"
    assert not output[0].any(), (
        f"{variant} (zero_output_for_mask={zero_output}): a fully masked row outputs "
        f"{output[0].tolist()}, expected zeros at every step")
    for index, (got, given) in enumerate(zip(final, states, strict=True)):
        np.testing.assert_array_equal(
            got[0], given[0],
            err_msg=f"{variant}: a fully masked row did not end in its initial state {index}")
    assert np.abs(final[0][1] - states[0][1]).max() > 1e-3, (
        f"{variant}: the unmasked row kept its initial state: the call computed nothing")


# --- masks with stateful layers, dropout and compiled execution --------------------------------


@pytest.mark.parametrize("variant", ["lstm", "gru"])
def test_a_stateful_layer_carries_masked_state_across_calls(variant, rnn_rng):
    """Two calls on consecutive halves, each masked: the first half leaves row 0 fully
    masked (its state must stay zero) and row 1 left-padded; every call matches the
    reference started from the layer's own state variables."""
    kind, options = VARIANTS[variant]
    half = (BATCH, 2, FEATURES)
    layer = build_random(rnn_layer(kind, UNITS, **options, stateful=True,
                                   **sequences_and_states()), half, rnn_rng)
    layer.reset_states()
    masks = [np.array([[0, 0], [0, 1], [1, 1]], bool), np.array([[1, 0], [1, 1], [0, 1]], bool)]
    for call, mask in enumerate(masks):
        x = rnn_rng.normal(size=half).astype("float32")
        assert_matches_reference(layer, x, mask=mask)
        if call == 0:
            kept = to_numpy(layer.states[0])[0]
            assert not kept.any(), (
                f"stateful {variant}: a fully masked first call moved row 0's state to "
                f"{kept.tolist()}; it must stay at its zero initial state")


@pytest.mark.parametrize("edge", ["fully_masked_row", "holes"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropout_in_training_applies_the_mask_as_without_dropout(kind, edge, x, rnn_rng):
    """Training with dropout and a mask: the reference fed the masks the cell drew, and
    the same mask, gives the training output. Masked steps carry the dropped-out state
    unchanged (a fully masked row still ends in its initial state)."""
    layer = build_random(keras.layers.RNN(rnn_cell(kind, UNITS, dropout=0.3,
                                                   recurrent_dropout=0.2, seed=7),
                                          **sequences_and_states()), INPUT_SHAPE, rnn_rng)
    mask = mask_of(edge)
    outputs, drawn = record_dropout_masks(layer, x, mask=mask)
    reference = reference_outputs(layer, x, mask=mask, training=True,
                                  dropout_masks=drawn[0].step_masks())
    compare_outputs(outputs, reference, atol=ATOL, rtol=0.0, sequence_ndim=3,
                    what=f"{kind} with dropout in training, {edge} mask")
    assert_matches_reference(layer, x, mask=mask)  # inference: dropout is inert


@pytest.mark.parametrize("edge", sorted(EDGES))
@pytest.mark.parametrize("variant", ["lstm"])
def test_a_compiled_masked_call_equals_eager(variant, edge, x, rnn_rng):
    """The traced call (tf.function) takes the same masked path as the eager one."""
    kind, options = VARIANTS[variant]
    layer = build_random(rnn_layer(kind, UNITS, **options, **sequences_and_states()),
                         INPUT_SHAPE, rnn_rng)
    mask = mask_of(edge)
    try:
        compiled = backends.compile_function(lambda v, m: layer(v, mask=m))
    except backends.Unsupported as exc:
        pytest.skip(str(exc))
    eager = [to_numpy(t) for t in layer(x, mask=mask)]
    traced = [to_numpy(t) for t in compiled(x, mask)]
    names = ["output"] + [f"state {i}" for i in range(len(eager) - 1)]
    for name, got, want in zip(names, traced, eager, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0,
                                   err_msg=f"{variant} compiled with a {edge} mask: {name} "
                                           "differs from the eager call")
    assert_matches_reference(layer, x, mask=mask)
