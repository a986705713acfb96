"""Eager, graph (``tf.function``), XLA and a compiled model compute the same thing.

Models train in compiled code, yet the other suites call layers eagerly. A release
whose graph or XLA path differs from eager (a mask or state dropped when traced, a
stateful layer that cannot run with a dynamic batch dimension) passes them all. Here
each layer kind (SimpleRNN, LSTM, GRU) computes outputs, states and the gradients of the
fixed loss ``L = sum_k sum(W_k * returned_k)`` eagerly and in ``tf.function``, the LSTM
also in ``tf.function(jit_compile=True)`` (see :data:`MODE_KINDS` for why only it); a
compiled model's ``predict``, ``train_on_batch`` and one ``fit`` step are held to the eager
forward pass and gradient; ``training=False`` and ``training=True`` are honoured when
traced (eagerly, the dropout suites pin them); a stateful LSTM carries and resets its
state eagerly, traced with a fixed and with a dynamic batch dimension, and under XLA.

Tolerance: both computations are float32 approximations of the same value, each within
:func:`pytest_rnn.checks.reference_grad.gradient_tolerance` of it (relative to
``max(1, max|value|)``; the bound covers outputs, states and gradients alike since the
forward pass is a subset of the backward pass's operations), so they differ by at most
twice that. The SGD steps of ``train_on_batch``/``fit`` (learning rate 1) are read back
as ``w_before - w_after``, which adds float32 rounding of at most ``2 u max|w|`` with
``u = 2**-24``.

Compilation is TensorFlow's (through :mod:`pytest_rnn.backends`); on other backends the
graph and XLA tests skip with the reason.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.models import build_random
from pytest_rnn.checks.reference_grad import UNIT_ROUNDOFF_FLOAT32, gradient_tolerance

BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3
FAN_IN = 4 * UNITS  # widest matmul: the LSTM's four gates
TOL = 2 * gradient_tolerance(STEPS, FAN_IN)
POST = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
PRE = np.array([[0, 1, 1, 1], [1, 1, 1, 1]], dtype=bool)

#: kind -> (layer builder, mask); one bundle of them is traced per mode
KIND_CASES = {
    "simple_rnn": (lambda: keras.layers.SimpleRNN(UNITS, return_sequences=True,
                                                  return_state=True), POST),
    "lstm": (lambda: keras.layers.LSTM(UNITS, return_state=True, go_backwards=True), PRE),
    "gru": (lambda: keras.layers.GRU(UNITS, return_sequences=True, return_state=True), POST),
    "gru_reset_before": (lambda: keras.layers.GRU(UNITS, reset_after=False,
                                                  return_state=True), None),
}


def _compiler(mode: str):
    """Whether ``mode`` compiles with XLA; a skip saying why when it cannot run here."""
    try:
        if mode == "xla":
            ok, why = backends.xla_available()
            if not ok:
                pytest.skip(why)
        backends.compile_function(lambda v: v)  # raises Unsupported off TensorFlow
    except backends.Unsupported as exc:
        pytest.skip(str(exc))
    return mode == "xla"


def assert_close(what: str, got, want, tol: float = TOL) -> None:
    """``got`` equals eager execution's ``want`` within ``tol * max(1, max|want|)``."""
    want = np.asarray(compare.to_numpy(want), dtype=np.float64)
    atol = tol * max(1.0, float(np.abs(want).max(initial=0.0)))
    line = compare.difference(what, got, want, atol=atol, labels=("traced", "eager"))
    if line is not None:
        raise AssertionError(f"{what} differs from eager execution: {line}")


class Bundle:
    """Layers of KIND_CASES on the same inputs, plus (``with_dropout``) a GRU with dropout
    called with ``training=False`` and ``training=True`` and its dropout-free twin: one
    traced function per mode covers all of them."""

    def __init__(self, rng: np.random.Generator, kinds: tuple[str, ...], with_dropout: bool):
        shape = (BATCH, STEPS, FEATURES)
        self.layers = {k: build_random(KIND_CASES[k][0](), shape, rng) for k in kinds}
        self.masks = {k: KIND_CASES[k][1] for k in kinds}
        self.x = rng.normal(size=shape).astype("float32")
        self.dropout = None
        if with_dropout:
            self.dropout = build_random(keras.layers.GRU(
                UNITS, dropout=0.5, recurrent_dropout=0.5, seed=3, return_sequences=True),
                shape, rng)
            twin = build_random(keras.layers.GRU(UNITS, return_sequences=True), shape, rng)
            twin.set_weights(self.dropout.get_weights())
            self.inference = compare.to_numpy(twin(self.x))
        self.names = [f"{k} {'output' if i == 0 else f'state {i - 1}'}"
                      for k, layer in self.layers.items()
                      for i, _ in enumerate(compare.flatten(layer(self.x)))]
        self.weights = [keras.ops.convert_to_tensor(rng.normal(size=tuple(o.shape)), "float32")
                        for o in self.outputs(self.x)]
        self.variables = [v for layer in self.layers.values() for v in layer.trainable_weights]

    def outputs(self, x):
        return [o for k, layer in self.layers.items()
                for o in compare.flatten(layer(x, mask=self.masks[k]))]

    def loss(self, x):
        return sum(keras.ops.sum(o * w) for o, w in zip(self.outputs(x), self.weights,
                                                        strict=True))

    def dropout_calls(self, x):
        if self.dropout is None:
            return ()
        return self.dropout(x, training=False), self.dropout(x, training=True)


#: mode -> (kinds traced together, whether the dropout GRU's training flag is checked).
#: Tracing a recurrent loop and its gradient costs about half a second of CPU per layer,
#: XLA compilation a second more, so graph mode runs one layer of each kind (GRU with
#: reset_after=True; reset_after=False differs only inside the cell, which the eager
#: gradient suite covers) and the training flag, and XLA the LSTM (the kind with the most
#: gate arithmetic; the stateful test runs its forward pass under XLA too).
MODE_KINDS = {"graph": (("simple_rnn", "lstm", "gru"), True), "xla": (("lstm",), False)}


@pytest.mark.parametrize("mode", list(MODE_KINDS))
def test_kinds_agree_with_eager_and_honour_training(mode, rnn_rng):
    """Outputs, states and gradients (inputs and every weight) of each kind, traced, equal
    eager execution; in graph mode the dropout GRU's ``training=False`` call equals its
    dropout-free twin and its ``training=True`` call differs."""
    jit = _compiler(mode)
    kinds, with_dropout = MODE_KINDS[mode]
    bundle = Bundle(rnn_rng, kinds, with_dropout)
    x = bundle.x
    eager_out = [compare.to_numpy(o) for o in bundle.outputs(x)]
    eager_loss, eager_gv, eager_gx = backends.value_and_grad(bundle.loss, bundle.variables, [x])
    def loss_and_outputs(v):  # one trace: forward, backward and the dropout calls
        return bundle.loss(v), (bundle.outputs(v), *bundle.dropout_calls(v))

    loss, (outs, *dropout_calls), gv, gx = backends.compiled_value_and_grad(
        loss_and_outputs, bundle.variables, jit_compile=jit, has_aux=True)(x)
    for name, got, want in zip(bundle.names, outs, eager_out, strict=True):
        assert_close(f"{name} under {mode}", got, want)
    assert_close(f"loss under {mode}", loss, eager_loss)
    assert_close(f"dL/d inputs under {mode}", gx[0], eager_gx[0])
    for var, got, want in zip(bundle.variables, gv, eager_gv, strict=True):
        assert got is not None, f"under {mode}: no gradient for {var.path}"
        assert_close(f"dL/d {var.path} under {mode}", got, want)
    if not with_dropout:
        return
    infer, train = dropout_calls
    assert_close(f"dropout GRU, training=False under {mode}", infer, bundle.inference)
    trained = np.asarray(train)
    assert np.abs(trained - bundle.inference).max() > 100 * TOL, (
        f"dropout GRU, training=True under {mode} equals inference (max |diff| "
        f"{np.abs(trained - bundle.inference).max():.3g}): dropout 0.5 is not applied")


def _stack() -> keras.Model:
    """A GRU under a Dense head: the compiled training step around a recurrent layer (each
    kind's traced gradient is the function test's)."""
    return keras.Sequential([
        keras.Input(shape=(STEPS, FEATURES)),
        keras.layers.GRU(UNITS),
        keras.layers.Dense(1),
    ])


def test_compiled_model_predict_train_on_batch_and_fit_match_eager(rnn_rng):
    """predict equals the eager call; train_on_batch and one fit step (plain SGD, learning
    rate 1, one batch, no shuffling) move every weight by exactly the eager gradient of the
    same mean-squared error."""
    model = build_random(_stack(), (BATCH, STEPS, FEATURES), rnn_rng)
    x = rnn_rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    y = rnn_rng.normal(size=(BATCH, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse",
                  jit_compile=False)  # XLA is the function test's; graph mode here
    start = [np.array(w) for w in model.get_weights()]
    variables = list(model.trainable_weights)
    target = keras.ops.convert_to_tensor(y)

    def mse():  # the backend's tensor minus y, not NumPy's (PyTorch refuses to mix them)
        return keras.ops.mean(keras.ops.square(model(x, training=True) - target))

    eager_loss, eager_grads = backends.gradients(mse, variables)
    assert_close("predict", model.predict(x, batch_size=BATCH, verbose=0),
                 compare.to_numpy(model(x)))
    for how in ("train_on_batch", "fit"):
        model.set_weights(start)
        before = [np.array(compare.to_numpy(v), dtype=np.float64) for v in variables]
        if how == "train_on_batch":
            loss = model.train_on_batch(x, y)
        else:
            history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
            loss = history.history["loss"][0]
        assert_close(f"{how} loss", loss, eager_loss)
        for var, old, grad in zip(variables, before, eager_grads, strict=True):
            moved = old - np.asarray(compare.to_numpy(var), dtype=np.float64)
            rounding = 2 * UNIT_ROUNDOFF_FLOAT32 * float(np.abs(old).max())
            assert_close(f"{how} step of {var.path} (w_before - w_after at learning rate 1)",
                         moved, grad, tol=TOL + rounding)


@pytest.mark.parametrize("mode", ["eager", "graph", "graph_dynamic_batch", "xla"])
def test_stateful_layer_carries_and_resets_state(mode, rnn_rng):
    """Two halves through a stateful LSTM equal one call on the whole sequence; after
    ``reset_states()`` the first half gives its first result again."""
    jit = None if mode == "eager" else _compiler(mode.split("_")[0])
    half = STEPS // 2
    stateful = build_random(keras.layers.LSTM(UNITS, stateful=True, return_sequences=True,
                                              return_state=True),
                            (BATCH, half, FEATURES), rnn_rng)
    plain = build_random(keras.layers.LSTM(UNITS, return_sequences=True, return_state=True),
                         (BATCH, STEPS, FEATURES), rnn_rng)
    plain.set_weights(stateful.get_weights())
    stateful.reset_states()
    x = rnn_rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    whole = [compare.to_numpy(t) for t in plain(x)]

    def step(v):
        return stateful(v)

    if jit is not None:
        signature = None
        if mode == "graph_dynamic_batch":
            signature = [((None, half, FEATURES), "float32")]
        step = backends.compile_function(step, jit_compile=jit, input_signature=signature)
    first = [compare.to_numpy(t) for t in step(x[:, :half])]
    second = [compare.to_numpy(t) for t in step(x[:, half:])]
    assert_close(f"{mode}: outputs of the two halves, concatenated",
                 np.concatenate([first[0], second[0]], axis=1), whole[0])
    assert_close(f"{mode}: h after the second half", second[1], whole[1])
    assert_close(f"{mode}: c after the second half", second[2], whole[2])
    assert_close(f"{mode}: the state variables after the second half",
                 compare.to_numpy(stateful.states[0]), whole[1])
    stateful.reset_states()
    again = [compare.to_numpy(t) for t in step(x[:, :half])]
    assert_close(f"{mode}: first half after reset_states()", again[0], first[0])
