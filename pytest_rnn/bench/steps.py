"""The timed Keras functions: one forward pass or one SGD training step, traced once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_rnn.bench.cases import STEP_KINDS, BenchConfig


def synchronize() -> None:
    """Wait for queued device work (GPU kernels run asynchronously) before the timer stops:
    :func:`pytest_rnn.backends.synchronize`, for the active Keras backend."""
    from pytest_rnn import backends

    backends.synchronize()


def make_step(kind: str, step: str, config: BenchConfig, *, use_cudnn: bool | str,
              seed: int) -> Callable[[], Any]:
    """One forward pass or one SGD training step, compiled the way the active backend runs
    a model (:func:`pytest_rnn.backends.timed_step`: ``tf.function``, ``jax.jit``, eager
    PyTorch).

    Built, traced and run once here, so the benchmark times steady-state calls only.
    ``kind`` is ``"simple_rnn"``, ``"lstm"`` or ``"gru"``; ``step`` is ``"forward"``
    or ``"train"`` (forward, loss, gradients of every weight, SGD update).
    """
    import keras
    import numpy as np

    from pytest_rnn import backends

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    rng = np.random.default_rng(seed)
    layer = bench_layer(kind, config.units, use_cudnn=use_cudnn)
    shape = (config.batch, config.steps, config.features)
    layer.build(shape)
    x = rng.normal(size=shape).astype("float32")
    head = keras.layers.Dense(1)
    head.build((config.batch, config.units))
    y = rng.normal(size=(config.batch, 1)).astype("float32")
    fn = backends.timed_step(layer, head, x, y, train=step == "train", learning_rate=1e-3)
    fn()
    synchronize()
    return fn


def bench_layer(kind: str, units: int, *, use_cudnn: bool | str, strict: bool = True) -> Any:
    """The (unbuilt) layer a benchmark times: ``kind`` with ``use_cudnn`` where the installed
    Keras has it. Keras < 3.2 has no use_cudnn: the layer picks its kernel itself (cuDNN on a
    GPU when eligible), so only "auto" and, where no cuDNN can run, False describe it;
    ``use_cudnn=True`` is refused there unless not ``strict``."""
    from pytest_rnn.checks.models import rnn_layer
    from pytest_rnn.runtime.versions import keras_lacks

    kwargs = {} if kind == "simple_rnn" else {"use_cudnn": use_cudnn}
    lacks = keras_lacks("use_cudnn")
    if lacks and kwargs:
        if use_cudnn is True and strict:
            raise ValueError(f"use_cudnn=True cannot be asked of this Keras: {lacks}")
        kwargs = {}
    return rnn_layer(kind, units, **kwargs)


def kernel_taken(case: Any, gpu_available: bool) -> str:
    """The kernel ``case``'s layer takes on the active backend (``"cudnn"``, a fused loop,
    ``"generic"``): the route :func:`pytest_rnn.checks.cudnn.fused_route` gives the layer
    :func:`make_step` builds."""
    from pytest_rnn.checks.cudnn import fused_route

    layer = bench_layer(case.kind, case.config.units, use_cudnn=case.kernel == "cudnn",
                        strict=False)
    return fused_route(layer, gpu_available=gpu_available)[0]


def make_reference(kind: str, step: str, config: BenchConfig, *, seed: int) -> Callable[[], Any]:
    """The same cell arithmetic as ``kind``'s layer, written directly in TensorFlow ops.

    A ``tf.while_loop`` over the ``steps`` time steps runs, per step, the cell's two
    matmuls (input ``(B, F) x (F, G*U)`` and recurrent ``(B, U) x (U, G*U)``, G gate
    blocks), its bias and its gate nonlinearities, feeding the state back: the work of
    the generic kernel with none of Keras's layer code (masking, state bookkeeping,
    dropout plumbing, the backend's ``rnn`` loop). Timed in the same rounds, ``layer time
    / reference time`` cancels how fast this machine runs small ops today (op dispatch,
    thread hand-offs, matmul speed, load) and keeps what the Keras layer costs beyond
    a bare loop, so a layer 20% slower moves that ratio by about 20%.

    A loop is the reference, not two batched matmuls doing all steps' arithmetic at once:
    a per-step loop and a batched matmul react differently to load (dispatch-bound versus
    compute-bound), and on this 2-core machine the ratio to batched matmuls drifted by 3%
    (sd) between samples minutes apart against 0.5% for the loop. ``step="train"`` adds
    the gradients of the cell's weights through the loop and an SGD update.
    """
    import numpy as np
    import tensorflow as tf

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    rng = np.random.default_rng(seed)
    units = config.units

    def const(*shape):
        return tf.constant(rng.normal(scale=0.1, size=shape).astype("float32"))

    inputs = tf.transpose(const(config.batch, config.steps, config.features), [1, 0, 2])
    kernel = tf.Variable(const(config.features, gates * units))
    recurrent = tf.Variable(const(units, gates * units))
    bias = tf.Variable(tf.zeros(gates * units))
    weights = (kernel, recurrent, bias)
    zeros = tf.zeros((config.batch, units))

    def cell(x, h, c):
        z = tf.matmul(x, kernel) + tf.matmul(h, recurrent) + bias
        if kind == "simple_rnn":
            return tf.tanh(z), c
        parts = tf.split(z, gates, axis=-1)
        if kind == "gru":
            r, u = tf.sigmoid(parts[0]), tf.sigmoid(parts[1])
            return u * h + (1 - u) * tf.tanh(parts[2] * r), c
        i, f, g, o = (tf.sigmoid(parts[0]), tf.sigmoid(parts[1]), tf.tanh(parts[2]),
                      tf.sigmoid(parts[3]))
        c = f * c + i * g
        return o * tf.tanh(c), c

    def loop():
        def body(t, h, c):
            return (t + 1, *cell(inputs[t], h, c))

        _, h, _ = tf.while_loop(lambda t, *_: t < config.steps, body,
                                (tf.constant(0), zeros, zeros))
        return h

    if step == "forward":
        fn = tf.function(loop, jit_compile=False)
    else:
        @tf.function(jit_compile=False)
        def fn():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(loop()))
            for var, grad in zip(weights, tape.gradient(loss, weights), strict=True):
                var.assign_sub(1e-3 * grad)
            return loss
    fn()
    synchronize()
    return fn
