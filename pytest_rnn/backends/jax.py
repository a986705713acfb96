"""JAX: gradients through ``jax.value_and_grad`` of the variables' values.

Keras variables on JAX are immutable arrays; layers read them through the
current ``keras.StatelessScope``, so the loss is re-run as a pure function of the
variables' values (``state_mapping``), which is what ``jax.grad`` differentiates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from pytest_rnn.backends import (
    GradResult,
    LossFn,
    Variables,
    settings_refused_by_fused_kernels,
)


def _stateless(loss_fn: Callable[..., Any], variables: Sequence[Any]) -> Callable[..., Any]:
    """``loss_fn`` as a pure function of the variables' values and the inputs (what
    ``jax.value_and_grad`` differentiates): the layers read ``values`` through a
    ``keras.StatelessScope``."""

    def pure(values, arrays):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return loss_fn(*arrays)

    return pure


def _result(out: Any, has_aux: bool) -> tuple[Any, ...]:
    """The seam's return value, ``(loss, [aux,] variable gradients, input gradients)``, from
    jax.value_and_grad's ``(loss, grads)`` or ``((loss, aux), grads)``."""
    value, (g_vars, g_inputs) = out
    loss = value[0] if has_aux else value
    result = (float(loss), [np.asarray(g).astype(np.float64) for g in g_vars],
              [np.asarray(g).astype(np.float64) for g in g_inputs])
    if has_aux:
        return (result[0], jax.tree_util.tree_map(np.asarray, value[1]), *result[1:])
    return result


def value_and_grad(loss_fn: LossFn, variables: Variables, inputs: Sequence[Any], *,
                   has_aux: bool = False) -> GradResult:
    values = [jnp.asarray(v.value) for v in variables]
    arrays = [jnp.asarray(x) for x in inputs]
    grad = jax.value_and_grad(_stateless(loss_fn, variables), argnums=(0, 1), has_aux=has_aux)
    return _result(grad(values, arrays), has_aux)


# -- compiled gradients ----------------------------------------------------------------------


def compiled_value_and_grad(loss_fn: LossFn, variables: Variables, *, jit_compile: bool = False,
                            input_signature: Any = None,
                            has_aux: bool = False) -> Callable[..., GradResult]:
    """:func:`value_and_grad` under ``jax.jit``: the loss and its gradients traced once into
    one XLA computation (JAX always compiles with XLA: ``jit_compile`` changes nothing)."""
    del jit_compile, input_signature  # jax.jit retraces per input shape by itself
    compiled = jax.jit(jax.value_and_grad(_stateless(loss_fn, variables), argnums=(0, 1),
                                          has_aux=has_aux))

    def run(*inputs):
        values = [jnp.asarray(v.value) for v in variables]
        return _result(compiled(values, [jnp.asarray(x) for x in inputs]), has_aux)

    return run


def xla_available() -> tuple[bool, str]:
    return True, ""


# -- which kernel Keras runs an LSTM/GRU on ----------------------------------------------------
#
# Keras 3.15, keras/src/backend/jax/rnn.py and the layers' inner_loop:
# * LSTM: ``backend.lstm`` runs cuDNN through ``jax.experimental.rnn.lstm`` when there is no
#   mask, activation is tanh (keras.activations.tanh, jnp.tanh or keras.ops.tanh),
#   recurrent_activation sigmoid (keras.activations.sigmoid or keras.ops.sigmoid; not
#   jax.nn.sigmoid), unroll=False, use_bias=True, and JAX's default backend is "gpu";
#   otherwise the generic ``lax.scan`` loop.
# * GRU: ``backend.gru`` is a fused ``lax.scan`` (input projections of all steps in one
#   matmul) on *every* device, for any activation, whenever reset_after=True,
#   unroll=False and there is no mask; it has no cuDNN kernel.
# * Both: recurrent_dropout > 0 or use_cudnn=False keep the generic loop; input dropout
#   does not (its mask is applied to the inputs first). use_cudnn=True raises Keras's
#   ValueError when the fused path does not apply.
# * Bidirectional(LSTM): one fused bidirectional cuDNN call under the LSTM conditions, and
#   only without mask, stateful, initial states other than 4, dropout of either kind, and
#   with equal units/activations in both directions; else each direction as its own layer.
#   Bidirectional(GRU): never fused (no bidirectional GRU primitive); each direction as a GRU.

ROUTES = ("cudnn", "fused_scan", "generic", "error")


def _tanh_ok(fn: Any) -> bool:
    return any(fn is f for f in (keras.activations.tanh, jnp.tanh, keras.ops.tanh))


def _sigmoid_ok(fn: Any) -> bool:
    return any(fn is f for f in (keras.activations.sigmoid, keras.ops.sigmoid))


def _layer_route(layer: Any, *, gpu_available: bool, masked: bool) -> tuple[str, list[str]]:
    cell = layer.cell
    kind = ("lstm" if isinstance(cell, keras.layers.LSTMCell) else
            "gru" if isinstance(cell, keras.layers.GRUCell) else "simple_rnn")
    if kind == "simple_rnn":
        return "generic", ["SimpleRNN has no fused kernel"]
    reasons = settings_refused_by_fused_kernels(layer)
    if masked:
        reasons.append("a mask (neither fused path takes one)")
    if layer.unroll:
        reasons.append("unroll=True")
    if kind == "gru":
        if not cell.reset_after:
            reasons.append("reset_after=False")
        route = "fused_scan"
    else:
        if not _tanh_ok(cell.activation):
            reasons.append(f"activation={getattr(cell.activation, '__name__', cell.activation)}")
        if not _sigmoid_ok(cell.recurrent_activation):
            reasons.append("recurrent_activation="
                           f"{getattr(cell.recurrent_activation, '__name__', '?')}")
        if not cell.use_bias:
            reasons.append("use_bias=False")
        if not gpu_available:
            reasons.append("no GPU (jax.default_backend() != 'gpu')")
        route = "cudnn"
    if not reasons:
        return route, []
    if layer.use_cudnn is True:
        return "error", reasons
    return "generic", reasons


def kernel_route(layer: Any, *, gpu_available: bool, mask: Any = None) -> tuple[str, list[str]]:
    """``(route, reasons)`` of an eager call of ``layer`` on JAX: ``"cudnn"`` (LSTM through
    jax.experimental.rnn), ``"fused_scan"`` (GRU's fused lax.scan), ``"generic"`` (Keras's
    lax.scan loop) or ``"error"`` (use_cudnn=True refused); ``reasons`` say why not fused.
    A Bidirectional gives ``"bidirectional_cudnn"`` for the one fused call of both
    directions, else its directions' common route."""
    masked = mask is not None
    if isinstance(layer, keras.layers.Bidirectional):
        fwd, bwd = layer.forward_layer, layer.backward_layer
        if (isinstance(fwd, keras.layers.LSTM) and not masked and not layer.stateful
                and fwd.use_cudnn in (True, "auto") and bwd.use_cudnn in (True, "auto")
                and not (fwd.cell.dropout or fwd.cell.recurrent_dropout
                         or bwd.cell.dropout or bwd.cell.recurrent_dropout)
                and fwd.cell.activation is bwd.cell.activation
                and fwd.cell.recurrent_activation is bwd.cell.recurrent_activation
                and _layer_route(fwd, gpu_available=gpu_available, masked=False)[0] == "cudnn"):
            return "bidirectional_cudnn", []
        routes = [_layer_route(d, gpu_available=gpu_available, masked=masked) for d in (fwd, bwd)]
        return routes[0][0], [f"forward: {r}" for r in routes[0][1]] + [
            f"backward: {r}" for r in routes[1][1]]
    return _layer_route(layer, gpu_available=gpu_available, masked=masked)


class _SimulatedNoCudnn(NotImplementedError):
    pass


@contextlib.contextmanager
def observed_routing(*, simulate_gpu: bool) -> Iterator[list[str]]:
    """Within the block, record each fused kernel a layer call really takes.

    Yields a list that gets ``"fused_scan"`` when Keras's fused GRU scan returned,
    ``"cudnn"`` when the cuDNN LSTM was reached and ``"bidirectional_cudnn"`` for the fused
    bidirectional LSTM. With ``simulate_gpu`` Keras believes JAX runs on a GPU; the cuDNN
    call is recorded and then reports "no cuDNN here" (NotImplementedError), so Keras falls
    back (or raises its use_cudnn=True error) exactly as when cuDNN is missing. Without it,
    on a real GPU, the recorded cuDNN call runs.
    """
    from pytest_rnn.adapters import jax_internals, keras_internals, replaced, resolve

    calls: list[str] = []
    real_gru = resolve(keras_internals.BACKEND_GRU)
    fused_bidi = keras_internals.BACKEND_BIDIRECTIONAL_LSTM.needed_here()
    real_bidi = resolve(keras_internals.BACKEND_BIDIRECTIONAL_LSTM) if fused_bidi else None
    in_bidirectional = [False]

    def gru(*args, **kwargs):
        out = real_gru(*args, **kwargs)  # raises NotImplementedError when not fused
        calls.append("fused_scan")
        return out

    real_cudnn = resolve(jax_internals.CUDNN_LSTM)

    def cudnn_lstm(*args, **kwargs):
        calls.append("bidirectional_cudnn" if in_bidirectional[0] else "cudnn")
        if simulate_gpu:
            raise _SimulatedNoCudnn("simulated: no cuDNN kernel on this host")
        return real_cudnn(*args, **kwargs)  # a real GPU: the real kernel

    def bidi(*args, **kwargs):
        in_bidirectional[0] = True
        try:
            return real_bidi(*args, **kwargs)
        finally:
            in_bidirectional[0] = False

    replacements = {keras_internals.BACKEND_GRU: gru, jax_internals.CUDNN_LSTM: cudnn_lstm}
    if fused_bidi:  # Keras fuses both directions of a Bidirectional LSTM
        replacements[keras_internals.BACKEND_BIDIRECTIONAL_LSTM] = bidi
    if simulate_gpu:
        replacements[keras_internals.JAX_GPU_AVAILABLE] = lambda: True
    with replaced(replacements):
        yield calls


# -- TF32 ------------------------------------------------------------------------------------


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """float32 matmuls at full precision: ``jax_default_matmul_precision="highest"`` (on
    GPUs JAX's default precision may use TF32); restored on exit."""
    was = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        yield
    finally:
        jax.config.update("jax_default_matmul_precision", was)


def full_float32_enabled() -> bool:
    return jax.config.jax_default_matmul_precision in ("highest", "float32")


# -- the kernel benchmarks' timed steps --------------------------------------------------------


def timed_step(layer: Any, head: Any, x: np.ndarray, y: np.ndarray, *, train: bool,
               learning_rate: float) -> Callable[[], Any]:
    """A ``jax.jit`` of ``layer(x)`` (``stateless_call``), or with ``train`` one SGD step of
    ``head(layer(x))`` against ``y`` (mean squared error, gradients of every trainable
    weight, the updated values carried to the next call); each call blocks until its
    result is ready, so a timer around it times the device's work."""
    inputs, target = jnp.asarray(x), jnp.asarray(y)
    frozen = [v.value for v in layer.non_trainable_variables]
    state = [[v.value for v in layer.trainable_variables],
             [v.value for v in head.trainable_variables]]
    if not train:
        forward = jax.jit(lambda values: layer.stateless_call(values, frozen, inputs)[0])

        def run_forward():
            return forward(state[0]).block_until_ready()

        return run_forward

    def loss(values, head_values):
        out, _ = layer.stateless_call(values, frozen, inputs, training=True)
        prediction, _ = head.stateless_call(head_values, [], out)
        return jnp.mean(jnp.square(prediction - target))

    @jax.jit
    def sgd(values, head_values):
        value, grads = jax.value_and_grad(loss, argnums=(0, 1))(values, head_values)
        return value, *[[w - learning_rate * g for w, g in zip(ws, gs, strict=True)]
                        for ws, gs in zip((values, head_values), grads, strict=True)]

    def run_train():
        value, state[0], state[1] = sgd(*state)
        return value.block_until_ready()

    return run_train


def synchronize() -> None:
    """Nothing to wait for: each timed step blocks on its own result."""


def make_deterministic() -> None:
    """JAX on a CPU is deterministic; on a GPU XLA must be asked before JAX starts
    (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``): the flag is added to the environment
    for a JAX not yet started, and a started one on a GPU is refused, saying so."""
    import os

    flag = "--xla_gpu_deterministic_ops=true"
    if flag in os.environ.get("XLA_FLAGS", ""):
        return
    if jax.default_backend() != "cpu":
        raise RuntimeError(f"JAX is running on {jax.default_backend()} without {flag}: set "
                           f"XLA_FLAGS={flag} before the run for deterministic kernels")
