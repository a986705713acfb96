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

    if step not in STEP_KINDS:
        raise ValueError(f"step must be one of {STEP_KINDS}; got {step!r}")
    rng = np.random.default_rng(seed)
    kwargs = {} if kind == "simple_rnn" else {"use_cudnn": use_cudnn}
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
