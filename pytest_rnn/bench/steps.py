"""The timed Keras functions: one forward pass or one SGD training step, traced once."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from pytest_rnn.bench.cases import STEP_KINDS, BenchConfig


def synchronize() -> None:
    """Wait for queued device work (GPU kernels run asynchronously) before the timer stops.

    Nothing can be queued on a device before TensorFlow is imported, so a process
    without it has nothing to wait for.
    """
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.test.experimental.sync_devices()


def make_step(kind: str, step: str, config: BenchConfig, *, use_cudnn: bool | str,
              seed: int) -> Callable[[], Any]:
    """A traced ``tf.function`` running one forward pass or one SGD training step.

    Built, traced and run once here, so the benchmark times steady-state calls only.
    ``kind`` is ``"simple_rnn"``, ``"lstm"`` or ``"gru"``; ``step`` is ``"forward"``
    or ``"train"`` (forward, loss, gradients of every weight, SGD update).
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from pytest_rnn.checks.models import rnn_layer
    from pytest_rnn.runtime.versions import keras_lacks

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    rng = np.random.default_rng(seed)
    kwargs = {} if kind == "simple_rnn" else {"use_cudnn": use_cudnn}
    lacks = keras_lacks("use_cudnn")
    if lacks and kwargs:
        # Keras < 3.2 has no use_cudnn: the layer picks its kernel itself (cuDNN on a GPU
        # when eligible), so only "auto" and, where no cuDNN can run, False describe it.
        if use_cudnn is True:
            raise ValueError(f"use_cudnn=True cannot be asked of this Keras: {lacks}")
        kwargs = {}
    layer = rnn_layer(kind, config.units, **kwargs)
    shape = (config.batch, config.steps, config.features)
    layer.build(shape)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    if step == "forward":
        fn = tf.function(lambda: layer(x), jit_compile=False)
    else:
        head = keras.layers.Dense(1)
        head.build((config.batch, config.units))
        y = tf.constant(rng.normal(size=(config.batch, 1)).astype("float32"))
        variables = [*layer.trainable_variables, *head.trainable_variables]
        optimizer = keras.optimizers.SGD(learning_rate=1e-3)
        optimizer.build(variables)

        @tf.function(jit_compile=False)
        def fn():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(head(layer(x, training=True)) - y))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables,
                                          strict=True))
            return loss

    fn()
    synchronize()
    return fn


def make_reference(kind: str, step: str, config: BenchConfig, *, seed: int) -> Callable[[], Any]:
    """The same matrix multiplications as ``kind``'s layer, without the recurrence.

    All ``steps`` input projections and all ``steps`` recurrent projections run as two
    batched matmuls (``(B*T, F) x (F, G*U)`` and ``(B*T, U) x (U, G*U)``, G gate blocks),
    followed by the same gate nonlinearities, on a fixed stand-in state. It does the
    arithmetic of the layer at full matrix size and none of its sequential loop, so
    ``layer time / reference time`` (timed in the same rounds) cancels how fast this
    machine multiplies matrices today and keeps what the recurrent kernel adds: a kernel
    20% slower moves that ratio by 20% on any machine. ``step="train"`` adds the
    gradients of both matmuls' weights.
    """
    import numpy as np
    import tensorflow as tf

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    rng = np.random.default_rng(seed)
    rows, units = config.batch * config.steps, config.units

    def const(*shape):
        return tf.constant(rng.normal(scale=0.1, size=shape).astype("float32"))

    x, h = const(rows, config.features), const(rows, units)
    w = tf.Variable(const(config.features, gates * units))
    u = tf.Variable(const(units, gates * units))

    def gate_math():
        z = tf.matmul(x, w) + tf.matmul(h, u)
        if kind == "simple_rnn":
            return tf.tanh(z)
        parts = tf.split(z, gates, axis=-1)
        if kind == "gru":
            r, zz, n = tf.sigmoid(parts[0]), tf.sigmoid(parts[1]), tf.tanh(parts[2])
            return zz * h + (1 - zz) * n * r
        i, f, g, o = (tf.sigmoid(parts[0]), tf.sigmoid(parts[1]), tf.tanh(parts[2]),
                      tf.sigmoid(parts[3]))
        return o * tf.tanh(f * h + i * g)

    if step == "forward":
        fn = tf.function(gate_math, jit_compile=False)
    else:
        @tf.function(jit_compile=False)
        def fn():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(gate_math()))
            for var, grad in zip((w, u), tape.gradient(loss, [w, u]), strict=True):
                var.assign_sub(1e-3 * grad)
            return loss
    fn()
    synchronize()
    return fn
