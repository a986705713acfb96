"""TensorFlow: gradients through ``tf.GradientTape``; compilation through ``tf.function``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from pytest_rnn.backends import GradResult, LossFn, Variables
from pytest_rnn.runtime import device


def _numpy(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, tf.IndexedSlices):
        value = tf.convert_to_tensor(value)
    return np.asarray(value).astype(np.float64)


def _taped(loss_fn: Callable[..., Any], variables: Sequence[Any], tensors: Sequence[Any],
           has_aux: bool) -> tuple[Any, Any, list[Any]]:
    """``(loss, aux, gradients)`` of ``loss_fn(*tensors)`` with respect to every variable (the
    tf.Variable behind each keras.Variable, trainable or not) and every input tensor."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for v in variables:
            tape.watch(v.value)
        for t in tensors:
            tape.watch(t)
        loss, aux = loss_fn(*tensors) if has_aux else (loss_fn(*tensors), ())
    return loss, aux, tape.gradient(loss, [v.value for v in variables] + list(tensors))


def _result(loss: Any, aux: Any, grads: Sequence[Any], n_variables: int,
            has_aux: bool) -> tuple[Any, ...]:
    """The seam's return value: ``(loss, [aux,] variable gradients, input gradients)``."""
    grads = [_numpy(g) for g in grads]
    result = (float(loss), grads[:n_variables], grads[n_variables:])
    if has_aux:
        return (result[0], tf.nest.map_structure(np.asarray, aux), *result[1:])
    return result


def value_and_grad(loss_fn: LossFn, variables: Variables, inputs: Sequence[Any], *,
                   has_aux: bool = False) -> GradResult:
    loss, aux, grads = _taped(loss_fn, variables, [tf.convert_to_tensor(x) for x in inputs],
                              has_aux)
    return _result(loss, aux, grads, len(variables), has_aux)


def compile_function(
    fn: Callable[..., Any], *, jit_compile: bool = False, input_signature: Any = None
) -> Callable[..., Any]:
    signature = None
    if input_signature is not None:
        signature = [tf.TensorSpec(shape, dtype) for shape, dtype in input_signature]
    return tf.function(fn, jit_compile=jit_compile, input_signature=signature,
                       reduce_retracing=False)


def compiled_value_and_grad(loss_fn: LossFn, variables: Variables, *, jit_compile: bool = False,
                            input_signature: Any = None,
                            has_aux: bool = False) -> Callable[..., GradResult]:
    def step(*tensors):
        return _taped(loss_fn, variables, tensors, has_aux)

    compiled = compile_function(step, jit_compile=jit_compile, input_signature=input_signature)

    def run(*inputs):
        loss, aux, grads = compiled(*[tf.convert_to_tensor(x) for x in inputs])
        return _result(loss, aux, grads, len(variables), has_aux)

    return run


def xla_available() -> tuple[bool, str]:
    """XLA is missing only from a TensorFlow built without it; an XLA that is there but
    fails to compile is broken, and the compiled tests fail on it instead of skipping."""
    if not tf.test.is_built_with_xla():
        return False, "this TensorFlow build has no XLA (tf.test.is_built_with_xla() is False)"
    return True, ""


#: TF32 off for float32 matmuls and convolutions (cuBLAS, cuDNN), restored on exit: the first
#: release's ``pytest_rnn.device.full_float32``, which keeps its path.
full_float32 = device.full_float32


def full_float32_enabled() -> bool:
    return not tf.config.experimental.tensor_float_32_execution_enabled()


#: Global seeds this process gave TensorFlow through :func:`kernel_cache_kept`.
_SEEDS_GIVEN: set[int] = set()


@contextlib.contextmanager
def kernel_cache_kept(seed: int) -> Iterator[None]:
    """Inside the block, ``tf.random.set_seed(seed)`` keeps TensorFlow's eager kernel cache
    if this process has not given TensorFlow ``seed`` before.

    Setting the global seed drops every cached kernel so that stateful random kernels
    restart their streams, and the next op of every kind is then instantiated again.
    Dropping them is needed only for a seed seen before: a stateful random kernel is
    cached under its ``seed`` and ``seed2`` attributes, and once a global seed is set an
    op's ``seed`` attribute is that global seed, so after a new one no random op can
    reuse a cached kernel, and its draws are those a cleared cache gives. A seed given
    before (a test run twice in one process) clears the cache as usual. TensorFlow calls
    the clearing function through a private module
    (:data:`pytest_rnn.adapters.tensorflow_internals.CLEAR_CACHES`); a release without it
    just clears (the kernels are only slower to come by), and tests/test_adapters.py fails.
    """
    from pytest_rnn.adapters import InternalChanged, replaced
    from pytest_rnn.adapters.tensorflow_internals import CLEAR_CACHES

    fresh = seed not in _SEEDS_GIVEN
    _SEEDS_GIVEN.add(seed)
    with contextlib.ExitStack() as stack:
        if fresh:
            with contextlib.suppress(InternalChanged):
                stack.enter_context(replaced({CLEAR_CACHES: lambda handle: None}))
        yield


# -- the kernel benchmarks' timed steps --------------------------------------------------------


def timed_step(layer: Any, head: Any, x: np.ndarray, y: np.ndarray, *, train: bool,
               learning_rate: float) -> Callable[[], Any]:
    """A ``tf.function`` (no XLA) of ``layer(x)``, or with ``train`` one SGD step of
    ``head(layer(x))`` against ``y`` (mean squared error, gradients of every weight)."""
    import keras

    inputs = tf.constant(x)
    if not train:
        return tf.function(lambda: layer(inputs), jit_compile=False)
    target = tf.constant(y)
    variables = [*layer.trainable_variables, *head.trainable_variables]
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    optimizer.build(variables)

    @tf.function(jit_compile=False)
    def fn():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(head(layer(inputs, training=True)) - target))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    return fn


def synchronize() -> None:
    """Wait for every kernel TensorFlow queued on any device."""
    tf.test.experimental.sync_devices()


def make_deterministic() -> None:
    """TensorFlow's op determinism (``tf.config.experimental.enable_op_determinism``)."""
    tf.config.experimental.enable_op_determinism()
