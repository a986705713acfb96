"""A reference for any cell: a user's own cell, checked against its NumPy step over whole
sequences and through time, by the engine that runs Keras's own cells.

The user's cell is a minimal gated unit (MGU), written here as an outside project would:
a ``keras.layers.Layer`` used through ``keras.layers.RNN``, and its math as a NumPy step::

    f = sigmoid(x K_f + h R_f + b_f)
    h~ = tanh(x K_h + (f * h) R_h + b_h)
    h' = (1 - f) * h + f * h~

``MGUCell(fault=...)`` injects the regressions the checks exist for: a wrong gate (the
forget gate reads the candidate's kernel columns; tanh instead of sigmoid on it) and the
old state returned as the new one, which change outputs and states, and a
``stop_gradient`` on the recurrent path, which leaves every output as it was and changes
only the gradients through time.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pytest_rnn import NumpyCell, assert_gradients_match_reference, assert_matches_reference
from pytest_rnn.checks.behaviours import (
    DIFFERS_FROM_BACKWARD_PASS,
    DIFFERS_FROM_REFERENCE,
    GRADIENT_STOPS,
)
from pytest_rnn.checks.conv_lstm_model import convolve
from pytest_rnn.checks.models import build_random
from pytest_rnn.checks.reference_grad import reference_gradients

pytestmark = pytest.mark.usefixtures("rnn_float32")

BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3
SHAPE = (BATCH, STEPS, FEATURES)
#: pre-padded and with a gap in the middle: not right-padded
MASK = np.array([[0, 1, 1, 1], [1, 0, 1, 1]], dtype=bool)
FAULTS = (None, "forget_reads_candidate_kernel", "tanh_forget_gate", "returns_old_state",
          "stop_gradient")


@keras.saving.register_keras_serializable(package="pytest_rnn_step_tests")
class MGUCell(keras.layers.Layer):
    """A minimal gated unit: forget gate ``f`` and candidate ``h~`` (columns ``[f | h~]``)."""

    def __init__(self, units: int, fault: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}; got {fault!r}")
        self.units, self.fault = units, fault
        self.state_size = self.output_size = units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * u), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 2 * u), name="recurrent_kernel")
        self.bias = self.add_weight(shape=(2 * u,), name="bias", initializer="zeros")

    def call(self, inputs, states):
        ops, u = keras.ops, self.units
        h = states[0] if isinstance(states, (list, tuple)) else states
        h_rec = ops.stop_gradient(h) if self.fault == "stop_gradient" else h
        k_f = self.kernel[:, u:] if self.fault == "forget_reads_candidate_kernel" else \
            self.kernel[:, :u]
        gate = ops.tanh if self.fault == "tanh_forget_gate" else ops.sigmoid
        f = gate(ops.matmul(inputs, k_f) + ops.matmul(h_rec, self.recurrent_kernel[:, :u])
                 + self.bias[:u])
        cand = ops.tanh(ops.matmul(inputs, self.kernel[:, u:])
                        + ops.matmul(f * h_rec, self.recurrent_kernel[:, u:]) + self.bias[u:])
        h_new = (1.0 - f) * h + f * cand
        return h_new, [h if self.fault == "returns_old_state" else h_new]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "fault": self.fault}


def mgu_step(x, states, weights):
    """The MGU's math in NumPy: what the user writes next to their cell."""
    (h,) = states
    k, r, b = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    u = h.shape[-1]
    f = 1.0 / (1.0 + np.exp(-(x @ k[:, :u] + h @ r[:, :u] + b[:u])))
    cand = np.tanh(x @ k[:, u:] + (f * h) @ r[:, u:] + b[u:])
    h = (1.0 - f) * h + f * cand
    return h, [h]


def mgu_layer(fault=None, shape=SHAPE, **kwargs):
    rng = np.random.default_rng(11)
    return build_random(keras.layers.RNN(MGUCell(UNITS, fault), **kwargs), shape, rng)


def inputs(seed=5, shape=SHAPE):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def states(seed=6, count=1):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, size=(BATCH, UNITS)).astype("float32") for _ in range(count)]


SEQ_STATE = {"return_sequences": True, "return_state": True}
#: case -> (RNN arguments, call arguments)
CALLS = {
    "last_output": ({}, {}),
    "sequences_states_mask": (SEQ_STATE, {"mask": MASK}),
    "go_backwards_mask_initial_state": (
        {**SEQ_STATE, "go_backwards": True}, {"mask": MASK, "initial_state": states()}),
    "zero_output_for_mask": (
        {"return_sequences": True, "zero_output_for_mask": True}, {"mask": MASK}),
}


@pytest.mark.parametrize("case", list(CALLS))
def test_user_cell_matches_its_numpy_step(case):
    layer_kwargs, call_kwargs = CALLS[case]
    named = assert_matches_reference(mgu_layer(**layer_kwargs), inputs(), step=mgu_step,
                                     **call_kwargs)
    expected = ["output", "state 0"] if layer_kwargs.get("return_state") else ["output"]
    assert [name for name, _ in named] == expected


def test_bidirectional_around_the_user_rnn_matches_its_step():
    for merge_mode in ("concat", None):
        layer = keras.layers.Bidirectional(keras.layers.RNN(MGUCell(UNITS), **SEQ_STATE),
                                           merge_mode=merge_mode)
        build_random(layer, SHAPE, np.random.default_rng(3))
        named = assert_matches_reference(layer, inputs(), step=NumpyCell(
            mgu_step, state_names=("h",)), mask=MASK, initial_state=states(count=2))
        assert [n for n, _ in named][-2:] == ["forward h", "backward h"]


def test_stateful_user_rnn_continues_from_its_state_as_its_step_does():
    layer = mgu_layer(stateful=True, **SEQ_STATE)
    x = inputs()
    assert_matches_reference(layer, x[:, :2], step=mgu_step)
    assert np.abs(np.asarray(layer.states[0])).max() > 0, "the state was not kept"
    assert_matches_reference(layer, x[:, 2:], step=mgu_step)


@pytest.mark.parametrize("fault, first_step", [
    ("forget_reads_candidate_kernel", 0), ("tanh_forget_gate", 0), ("returns_old_state", 1)])
def test_a_wrong_gate_or_state_in_the_user_cell_is_caught_naming_output_state_and_step(
        fault, first_step):
    layer = mgu_layer(fault, **SEQ_STATE)
    with pytest.raises(AssertionError, match=DIFFERS_FROM_REFERENCE) as caught:
        assert_matches_reference(layer, inputs(), step=mgu_step)
    message = str(caught.value)
    assert f"first differing step {first_step}\n" in message, message
    assert "\n  output: " in message and "\n  state 0: " in message, message


def test_the_step_is_needed_and_the_error_says_how_to_give_it():
    with pytest.raises(ValueError, match=r"no built-in model of MGUCell.*pass its NumPy step"):
        assert_matches_reference(mgu_layer(), inputs())


def test_a_step_that_returns_misshapen_states_is_refused_naming_them():
    def wrong(x, states, weights):
        h, _ = mgu_step(x, states, weights)
        return h, [h[:, :1]]

    with pytest.raises(ValueError, match=r"returned state 0 of shape \(2, 1\)"):
        assert_matches_reference(mgu_layer(), inputs(), step=wrong)


def lstm_step(x, states, weights):
    """A Keras LSTM's equations as a user would write them (gates i, f, c, o)."""
    h, c = states
    z = x @ weights["kernel"] + h @ weights["recurrent_kernel"] + weights["bias"]
    i, f, g, o = np.split(z, 4, axis=-1)
    sig = 1.0 / (1.0 + np.exp(-np.stack([i, f, o])))
    c = sig[1] * c + sig[0] * np.tanh(g)
    h = sig[2] * np.tanh(c)
    return h, [h, c]


def test_keras_own_cell_checked_by_a_user_step_and_its_central_differences_equal_bptt():
    """The central-difference reference against the engine's backward pass on the same
    layer: both float64, so they agree within the central differences' error bound."""
    layer = build_random(keras.layers.LSTM(UNITS, **SEQ_STATE), SHAPE, np.random.default_rng(4))
    x, init = inputs().astype(np.float64), states(count=2)
    step = NumpyCell(lstm_step, state_names=("h", "c"))
    assert_matches_reference(layer, x, step=step, mask=MASK, initial_state=init)
    numeric = reference_gradients(layer, x, step=step, mask=MASK, initial_state=init)
    bptt = reference_gradients(layer, x, mask=MASK, initial_state=init)
    assert [n for n, _ in numeric.gradients] == [n for n, _ in bptt.gradients]
    assert 0 < numeric.error < 1e-5 and bptt.error == 0
    for (name, got), (_, want) in zip(numeric.gradients, bptt.gradients, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=numeric.error, err_msg=name)


def conv_step(x, states, weights):
    """ConvLSTM1D (padding "same", strides 1) written by its user with ``convolve``."""
    h, c = states
    filters = h.shape[-1]
    conv = {"strides": (1,), "padding": "same", "dilation_rate": (1,), "channels_first": False}
    z = convolve(x, weights["kernel"], **conv) + convolve(h, weights["recurrent_kernel"], **conv)
    z = z + weights["bias"]
    i, f, g, o = (z[..., k * filters : (k + 1) * filters] for k in range(4))
    sig = 1.0 / (1.0 + np.exp(-np.stack([i, f, o])))
    c = sig[1] * c + sig[0] * np.tanh(g)
    h = sig[2] * np.tanh(c)
    return h, [h, c]


def test_a_convolutional_cell_fits_the_same_step_shape():
    """Its states are (batch, width, filters), which ``state_size`` does not give."""
    shape, filters = (BATCH, 3, 4, 1), 2
    layer = build_random(keras.layers.ConvLSTM1D(filters, 3, padding="same", **SEQ_STATE),
                         shape, np.random.default_rng(8))
    step = NumpyCell(conv_step, state_names=("h", "c"),
                     zero_states=lambda x: [np.zeros((x.shape[0], x.shape[2], filters))] * 2)
    x = inputs(shape=shape)
    named = assert_matches_reference(layer, x, step=step, mask=MASK[:, 1:])
    assert [n for n, _ in named] == ["output", "h", "c"]
    assert_gradients_match_reference(layer, x, step=step, mask=MASK[:, 1:])
    wrong = NumpyCell(lambda x, s, w: conv_step(x, s[::-1], w), step.zero_states, ("h", "c"))
    with pytest.raises(AssertionError, match=r"output: .* worst at batch \d, step \d, axis"):
        assert_matches_reference(layer, x, step=wrong)


GRADIENT_CALLS = {
    "sequences_states_mask_initial_state": (
        SEQ_STATE, {"mask": MASK, "initial_state": states()}),
    "go_backwards_last_output": ({"go_backwards": True}, {}),
}


@pytest.mark.parametrize("case", list(GRADIENT_CALLS))
def test_user_cell_gradients_through_time_match_central_differences_of_its_step(case):
    layer_kwargs, call_kwargs = GRADIENT_CALLS[case]
    result = assert_gradients_match_reference(mgu_layer(**layer_kwargs), inputs(),
                                              step=mgu_step, **call_kwargs)
    names = [n for n, _ in result.gradients]
    assert names[0] == "inputs" and any(n.endswith("recurrent_kernel") for n in names)


def test_bidirectional_user_rnn_gradients_match_central_differences():
    layer = keras.layers.Bidirectional(keras.layers.RNN(MGUCell(UNITS), return_sequences=True))
    build_random(layer, SHAPE, np.random.default_rng(3))
    assert_gradients_match_reference(layer, inputs(), step=mgu_step, mask=MASK)


def test_a_stop_gradient_on_the_recurrent_path_is_caught_by_gradients_only():
    layer = mgu_layer("stop_gradient", **SEQ_STATE)
    x, init = inputs(), states()
    assert_matches_reference(layer, x, step=mgu_step, initial_state=init)  # forward: same
    with pytest.raises(AssertionError, match=DIFFERS_FROM_BACKWARD_PASS) as caught:
        assert_gradients_match_reference(layer, x, step=mgu_step, initial_state=init)
    message = str(caught.value)
    assert "dL/d inputs: " in message and "dL/d initial_state state 0: " in message, message
    assert GRADIENT_STOPS in message, message
