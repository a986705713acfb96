"""How recurrent layers treat time and carried state.

Direction (go_backwards, Bidirectional), padding and masks, stateful
continuation and reset, initial states, unrolling, the seeds' manual cell loop,
the two kernel implementations and stacked cells: each test runs two code paths
that must agree on identical seeded weights, and first checks that the inputs
make the comparison meaningful (the paths are not trivially equal).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from pytest_rnn.models import KINDS, build_random, copy_layer, rnn_cell, rnn_layer

from pytest_rnn.checks import compare
from pytest_rnn.checks.compare import to_numpy

# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
# four steps: two halves for the stateful tests, and room for the three mask patterns
BATCH, STEPS, FEATURES, UNITS = 3, 4, 3, 5
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
# post-padded, pre-padded, a gap in the middle
MASK = np.array(
    [[1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 0, 1]],
    dtype=bool,
)



#: Outputs that must agree up to float32 rounding of differently ordered arithmetic.
assert_close = functools.partial(compare.assert_allclose, atol=1e-5)


def assert_differ(a, b, what: str, min_diff: float = 1e-3) -> None:
    diff = np.abs(to_numpy(a) - to_numpy(b)).max()
    assert diff > min_diff, f"{what}: expected different values, max |diff| only {diff:.3g}"


def random_layer(kind: str, rnn_rng: np.random.Generator, **kwargs) -> keras.layers.Layer:
    return build_random(rnn_layer(kind, UNITS, **kwargs), INPUT_SHAPE, rnn_rng)


def random_bidirectional(kind: str, rnn_rng: np.random.Generator) -> keras.layers.Layer:
    """Bidirectional (merge "concat") over a ``kind`` layer that returns sequences."""
    return build_random(
        keras.layers.Bidirectional(rnn_layer(kind, UNITS, return_sequences=True)),
        INPUT_SHAPE,
        rnn_rng,
    )


def assert_final_states_close(got: list, want: list, what: str) -> None:
    """Element 1 onwards of two flattened layer results (the final states) agree."""
    for index in range(1, len(want)):
        assert_close(got[index], want[index], f"{what} final state {index}")


# --- direction -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_equals_the_layer_on_reversed_input(kind, x, rnn_rng):
    forward = random_layer(kind, rnn_rng, return_sequences=True, return_state=True)
    backward = copy_layer(forward, INPUT_SHAPE, go_backwards=True)
    got = compare.leaves(backward(x))
    want = compare.leaves(forward(x[:, ::-1]))
    assert_differ(got[1], compare.leaves(forward(x))[1], f"{kind}: reading backwards changes h")
    assert_close(got[0], want[0], f"{kind} go_backwards sequence (processing order)")
    assert_final_states_close(got, want, f"{kind} go_backwards")


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_equals_its_forward_layer_and_reversed_backward_layer(kind, x, rnn_rng):
    layer = random_bidirectional(kind, rnn_rng)
    forward = copy_layer(layer.forward_layer, INPUT_SHAPE)
    backward = copy_layer(layer.backward_layer, INPUT_SHAPE, go_backwards=False)
    forward_seq = to_numpy(forward(x))
    backward_seq = to_numpy(backward(x[:, ::-1]))[:, ::-1]  # back to input time order
    assert_differ(forward_seq, backward_seq, f"{kind}: the two directions")
    assert_close(
        layer(x),
        np.concatenate([forward_seq, backward_seq], axis=-1),
        f"Bidirectional({kind}) vs forward layer + reversed backward layer",
    )


# --- masks -----------------------------------------------------------------------------------

VOCAB, EMBED = 20, 3


def embedded_rnn(kind: str, rnn_rng: np.random.Generator, *, mask_zero: bool) -> keras.Model:
    """Embedding + RNN as the seeds build it, so the mask travels from the Embedding."""
    tokens = keras.Input(shape=(None,), dtype="int32")
    embedding = keras.layers.Embedding(VOCAB, EMBED, mask_zero=mask_zero)
    model = keras.Model(tokens, rnn_layer(kind, UNITS, return_state=True)(embedding(tokens)))
    for layer in model.layers[1:]:
        build_random(layer, (BATCH, STEPS, EMBED), rnn_rng)
    return model


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("kind", KINDS)
def test_mask_zero_padding_equals_the_unpadded_sequence(kind, padding, rnn_rng):
    model = embedded_rnn(kind, rnn_rng, mask_zero=True)
    unmasked = embedded_rnn(kind, rnn_rng, mask_zero=False)
    unmasked.set_weights(model.get_weights())
    tokens = rnn_rng.integers(1, VOCAB, size=(BATCH, 4)).astype("int32")
    pad = np.zeros((BATCH, 3), dtype="int32")
    padded = np.concatenate([pad, tokens] if padding == "pre" else [tokens, pad], axis=1)
    want = compare.leaves(model(tokens))
    assert_differ(compare.leaves(unmasked(padded))[0], want[0], f"{kind}: padding without a mask")
    got = compare.leaves(model(padded))
    for index, name in enumerate(["output", "h", "c"][: len(want)]):
        assert_close(got[index], want[index], f"{kind} {padding}-padded with mask_zero: {name}")


def expected_carried_outputs(sequence: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keras's default for masked steps: repeat the previous output (zeros before any)."""
    carried = np.array(sequence)
    for b in range(sequence.shape[0]):
        previous = np.zeros(sequence.shape[-1], sequence.dtype)
        for t in range(sequence.shape[1]):
            if mask[b, t]:
                previous = sequence[b, t]
            else:
                carried[b, t] = previous
    return carried


@pytest.mark.parametrize("kind", KINDS)
def test_masked_steps_repeat_the_previous_output_by_default(kind, x, rnn_rng):
    layer = random_layer(kind, rnn_rng, return_sequences=True, return_state=True)
    assert layer.zero_output_for_mask is False, f"{kind}: zero_output_for_mask default changed"
    sequence, h, *_ = compare.leaves(layer(x, mask=MASK))
    assert_close(sequence, expected_carried_outputs(sequence, MASK), f"{kind} masked outputs")
    assert_differ(sequence[0, 3], 0.0, f"{kind}: post-padded step should carry the output")
    assert_close(sequence[:, -1], h, f"{kind}: last output vs final h under a mask")


@pytest.mark.parametrize("kind", KINDS)
def test_zero_output_for_mask_zeroes_masked_steps_and_keeps_the_rest(kind, x, rnn_rng):
    carried = random_layer(kind, rnn_rng, return_sequences=True, return_state=True)
    zeroed = copy_layer(carried, INPUT_SHAPE, zero_output_for_mask=True)
    carried_out = compare.leaves(carried(x, mask=MASK))
    zeroed_out = compare.leaves(zeroed(x, mask=MASK))
    sequence = zeroed_out[0]
    assert not sequence[~MASK].any(), (
        f"{kind} zero_output_for_mask=True left non-zero outputs at masked steps: "
        f"{np.argwhere((sequence != 0).any(-1) & ~MASK).tolist()}"
    )
    assert_close(sequence[MASK], carried_out[0][MASK], f"{kind}: unmasked steps")
    assert_final_states_close(zeroed_out, carried_out, f"{kind}:")


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_zeroes_masked_steps_of_both_directions(kind, x, rnn_rng):
    layer = random_bidirectional(kind, rnn_rng)
    output = to_numpy(layer(x, mask=MASK))
    assert not output[~MASK].any(), (
        f"Bidirectional({kind}) returned non-zero outputs at masked steps "
        f"{np.argwhere((output != 0).any(-1) & ~MASK).tolist()}"
    )
    assert (np.abs(output[MASK]).sum(-1) > 0).all(), f"Bidirectional({kind}) zeroed real steps"


# --- carried state ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_halves_equal_the_whole_sequence_and_reset_state_restores(kind, x, rnn_rng):
    whole = random_layer(kind, rnn_rng, return_sequences=True)
    stateful = copy_layer(whole, INPUT_SHAPE[:1] + (STEPS // 2, FEATURES), stateful=True)
    expected = to_numpy(whole(x))
    first = to_numpy(stateful(x[:, : STEPS // 2]))
    second = to_numpy(stateful(x[:, STEPS // 2 :]))
    assert_differ(second, to_numpy(whole(x[:, STEPS // 2 :])), f"{kind}: carried state")
    assert_close(
        np.concatenate([first, second], axis=1), expected, f"{kind} stateful halves vs whole"
    )
    stateful.reset_state()
    for index, state in enumerate(stateful.states):
        assert not to_numpy(state).any(), f"{kind}: state {index} not zero after reset_state"
    assert_close(stateful(x[:, : STEPS // 2]), first, f"{kind}: first half after reset_state")


def test_stateful_layer_rejects_a_different_batch_size(x, rnn_rng):
    layer = random_layer("gru", rnn_rng, stateful=True)
    layer(x)
    with pytest.raises(ValueError, match="batch size"):
        layer(x[:2])


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state_continues_a_sequence(kind, x, rnn_rng):
    layer = random_layer(kind, rnn_rng, return_sequences=True, return_state=True)
    split = 2
    _, *states = layer(x[:, :split])
    continued = compare.leaves(layer(x[:, split:], initial_state=states))
    from_zero = compare.leaves(layer(x[:, split:]))
    whole = compare.leaves(layer(x))
    assert_differ(continued[0], from_zero[0], f"{kind}: initial_state changes the output")
    assert_close(continued[0], whole[0][:, split:], f"{kind}: continued sequence vs whole")
    assert_final_states_close(continued, whole, f"{kind}:")


# --- equivalent code paths -------------------------------------------------------------------


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("kind", KINDS)
def test_unroll_equals_the_symbolic_loop(kind, masked, x, rnn_rng):
    loop = random_layer(kind, rnn_rng, return_sequences=True, return_state=True)
    unrolled = copy_layer(loop, INPUT_SHAPE, unroll=True)
    mask = MASK if masked else None
    for index, (got, want) in enumerate(
        zip(compare.leaves(unrolled(x, mask=mask)), compare.leaves(loop(x, mask=mask)), strict=True)
    ):
        assert_close(got, want, f"{kind} unroll=True vs loop, element {index}")


@pytest.mark.parametrize("variant", ["lstm", "gru", "gru_reset_before"])
def test_implementation_1_equals_implementation_2(variant, x, rnn_rng):
    kind = "lstm" if variant == "lstm" else "gru"
    extra = {"reset_after": False} if variant == "gru_reset_before" else {}
    fused = random_layer(kind, rnn_rng, return_sequences=True, return_state=True, **extra)
    split = copy_layer(fused, INPUT_SHAPE, implementation=1)
    assert (fused.cell.implementation, split.cell.implementation) == (2, 1), (
        f"{variant}: implementations are {fused.cell.implementation} and "
        f"{split.cell.implementation}, expected the default 2 and the requested 1"
    )
    pairs = zip(compare.leaves(split(x)), compare.leaves(fused(x)), strict=True)
    for index, (got, want) in enumerate(pairs):
        assert_close(got, want, f"{variant} implementation 1 vs 2, element {index}")


@pytest.mark.parametrize("kind", KINDS)
def test_seed_manual_cell_loop_over_unstack_equals_the_layers(kind, x, rnn_rng):
    """The seeds' two-cell loop (``for word in tf.unstack(x, axis=1)``, here
    ``keras.ops.unstack`` so it runs on every backend) against two stacked
    layers, both with dropout=0.5 called in inference mode, as the seeds build them."""
    first = random_layer(kind, rnn_rng, dropout=0.5, return_sequences=True)
    second = build_random(rnn_layer(kind, UNITS, dropout=0.5), (BATCH, STEPS, UNITS), rnn_rng)
    cell0, cell1 = rnn_cell(kind, UNITS, dropout=0.5), rnn_cell(kind, UNITS, dropout=0.5)
    cell0.build((BATCH, FEATURES))
    cell1.build((BATCH, UNITS))
    cell0.set_weights(first.get_weights())
    cell1.set_weights(second.get_weights())
    n_states = 2 if kind == "lstm" else 1
    state0 = [keras.ops.zeros([BATCH, UNITS]) for _ in range(n_states)]
    state1 = [keras.ops.zeros([BATCH, UNITS]) for _ in range(n_states)]
    for word in keras.ops.unstack(keras.ops.convert_to_tensor(x), axis=1):
        out0, state0 = cell0(word, state0, training=False)
        out1, state1 = cell1(out0, state1, training=False)
    assert_close(out1, second(first(x, training=False), training=False), f"{kind} cell loop")


def test_cells_take_training_by_keyword_only_unlike_the_seeds_keras2_loop(x):
    """The seeds pass ``training`` positionally (``cell(word, state, training)``); Keras 3
    refuses non-tensor positional arguments, so that code must say ``training=``."""
    cell = keras.layers.LSTMCell(UNITS)
    state = [keras.ops.zeros([BATCH, UNITS]), keras.ops.zeros([BATCH, UNITS])]
    with pytest.raises(ValueError, match="positional"):
        cell(keras.ops.convert_to_tensor(x[:, 0]), state, False)


@pytest.mark.parametrize("kind", KINDS)
def test_stacked_cells_equal_chained_layers(kind, x, rnn_rng):
    first = random_layer(kind, rnn_rng, return_sequences=True)
    second = build_random(
        rnn_layer(kind, UNITS + 1, return_state=True), (BATCH, STEPS, UNITS), rnn_rng
    )
    chained = compare.leaves(second(first(x)))
    explicit = keras.layers.StackedRNNCells([rnn_cell(kind, UNITS), rnn_cell(kind, UNITS + 1)])
    for stacked in (
        keras.layers.RNN(explicit, return_state=True),
        keras.layers.RNN([rnn_cell(kind, UNITS), rnn_cell(kind, UNITS + 1)], return_state=True),
    ):
        stacked.build(INPUT_SHAPE)
        stacked.set_weights(first.get_weights() + second.get_weights())
        output, *state_groups = stacked(x)
        last_cell_states = compare.leaves(state_groups[-1])
        assert_close(output, chained[0], f"{kind} {type(stacked.cell).__name__} output")
        for index, state in enumerate(last_cell_states):
            assert_close(state, chained[1 + index], f"{kind} stacked last cell state {index}")
