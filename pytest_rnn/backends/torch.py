"""PyTorch: gradients through ``torch.autograd.grad`` on the variables' parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import torch

from pytest_rnn.backends import (
    GradResult,
    LossFn,
    Variables,
    settings_refused_by_fused_kernels,
)


def value_and_grad(loss_fn: LossFn, variables: Variables, inputs: Sequence[Any], *,
                   has_aux: bool = False) -> GradResult:
    params = [v.value for v in variables]
    saved = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)  # non-trainable variables too, for this computation only
    tensors = [keras.ops.convert_to_tensor(x).detach().requires_grad_(True) for x in inputs]
    try:
        loss, aux = loss_fn(*tensors) if has_aux else (loss_fn(*tensors), None)
        grads = torch.autograd.grad(loss, params + tensors, allow_unused=True)
    finally:
        for p, flag in zip(params, saved, strict=True):
            p.requires_grad_(flag)
    grads = [None if g is None else g.detach().cpu().numpy().astype(np.float64) for g in grads]
    result = (float(loss.detach().cpu()), grads[: len(params)], grads[len(params) :])
    if has_aux:
        aux = keras.tree.map_structure(
            lambda t: t.detach().cpu().numpy() if isinstance(t, torch.Tensor)
            else keras.ops.convert_to_numpy(t), aux)
        return (result[0], aux, *result[1:])
    return result


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """TF32 off in cuBLAS matmuls and cuDNN (``torch.backends``); restored on exit."""
    was = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = was


def full_float32_enabled() -> bool:
    return not (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)



# -- which kernel Keras runs an LSTM/GRU on (keras/src/backend/torch/rnn.py, Keras 3.15) -------
#
# * LSTM without a mask: ``backend.lstm`` always takes over (recurrent_dropout = 0 and
#   use_cudnn != False): cuDNN when the inputs are on CUDA, activation tanh
#   (keras.activations/keras.ops/torch.tanh), recurrent_activation sigmoid, unroll=False,
#   use_bias=True and not tracing; otherwise its own fused loop (one input-projection
#   matmul for all steps), on CPU too and whatever the activations. With a mask: Keras's
#   generic loop.
# * GRU: the same with reset_after=True; reset_after=False or a mask: the generic loop.
# * Bidirectional LSTM/GRU: one fused cuDNN call only on CUDA (same conditions, no mask,
#   not stateful, no dropout); else each direction as its own layer.

ROUTES = ("cudnn", "fused_loop", "generic", "error")


def kernel_route(layer: Any, *, gpu_available: bool, mask: Any = None) -> tuple[str, list[str]]:
    """``(route, reasons)`` of an eager call on PyTorch (see the comment above)."""
    if isinstance(layer, keras.layers.Bidirectional):
        fwd = layer.forward_layer
        route, reasons = kernel_route(fwd, gpu_available=gpu_available, mask=mask)
        if (route == "cudnn" and not layer.stateful
                and not (fwd.cell.dropout or layer.backward_layer.cell.dropout)):
            return "bidirectional_cudnn", []
        return route, reasons
    cell = layer.cell
    if isinstance(cell, keras.layers.SimpleRNNCell):
        return "generic", ["SimpleRNN has no fused kernel"]
    reasons = settings_refused_by_fused_kernels(layer)
    if mask is not None:
        reasons.append("a mask")
    if isinstance(cell, keras.layers.GRUCell) and not cell.reset_after:
        reasons.append("reset_after=False")
    if reasons:
        return ("error" if layer.use_cudnn is True else "generic"), reasons
    tanh = (keras.activations.tanh, torch.tanh, keras.ops.tanh)
    sigmoid = (keras.activations.sigmoid, torch.sigmoid, keras.ops.sigmoid)
    cudnn = (gpu_available and any(cell.activation is f for f in tanh)
             and any(cell.recurrent_activation is f for f in sigmoid)
             and not layer.unroll and cell.use_bias)
    return ("cudnn" if cudnn else "fused_loop"), []


@contextlib.contextmanager
def observed_routing(*, simulate_gpu: bool) -> Iterator[list[str]]:
    """Record, for each call that Keras's torch ``lstm``/``gru`` took over, ``"cudnn"`` when
    it reached the cuDNN kernel (CUDA inputs) and ``"fused_loop"`` otherwise.
    (cuDNN needs CUDA tensors: ``simulate_gpu`` cannot fake it here and is refused.)"""
    from pytest_rnn.adapters import keras_internals, replaced, resolve
    from pytest_rnn.backends import Unsupported

    if simulate_gpu:
        raise Unsupported("PyTorch picks cuDNN by the tensors' device: a GPU cannot be "
                          "simulated on a CPU host")
    calls: list[str] = []

    def fused(internal):
        real = resolve(internal)

        def wrapped(*args, **kwargs):
            before = len(calls)
            out = real(*args, **kwargs)
            if len(calls) == before:  # no cuDNN call inside: the fused loop ran
                calls.append("fused_loop")
            return out
        return wrapped

    def recorded(internal, label):  # the call returned: it ran the kernel ``label`` names
        real = resolve(internal)

        def wrapped(*args, **kwargs):
            out = real(*args, **kwargs)
            calls.append(label)
            return out
        return wrapped

    spies = {internal: fused(internal)
             for internal in (keras_internals.BACKEND_LSTM, keras_internals.BACKEND_GRU)}
    # the cuDNN kernels are spied only where CUDA can run them (they exist from 3.10/3.14),
    # the fused bidirectional calls too: they return only from cuDNN (else they raise
    # NotImplementedError and the Bidirectional runs each direction as its own layer)
    if torch.cuda.is_available():
        spies.update({internal: recorded(internal, "cudnn") for internal in (
            keras_internals.TORCH_CUDNN_LSTM, keras_internals.TORCH_CUDNN_GRU)
            if internal.needed_here()})
        spies.update({internal: recorded(internal, "bidirectional_cudnn") for internal in (
            keras_internals.BACKEND_BIDIRECTIONAL_LSTM,
            keras_internals.BACKEND_BIDIRECTIONAL_GRU) if internal.needed_here()})
    with replaced(spies):
        yield calls


# -- the kernel benchmarks' timed steps --------------------------------------------------------


def timed_step(layer: Any, head: Any, x: np.ndarray, y: np.ndarray, *, train: bool,
               learning_rate: float) -> Callable[[], Any]:
    """An eager ``layer(x)`` under ``torch.no_grad``, or with ``train`` one SGD step of
    ``head(layer(x))`` against ``y`` (mean squared error, ``torch.autograd.grad`` of every
    trainable weight, updated in place). PyTorch has no graph compilation in Keras's
    layer call path: the eager call is what a Keras model on PyTorch runs."""
    inputs = keras.ops.convert_to_tensor(x)
    target = keras.ops.convert_to_tensor(y)
    params = [v.value for v in (*layer.trainable_variables, *head.trainable_variables)]
    if not train:
        def run_forward():
            with torch.no_grad():
                return layer(inputs)

        return run_forward

    def run_train():
        loss = torch.mean(torch.square(head(layer(inputs, training=True)) - target))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(learning_rate * g)
        return loss

    return run_train


def to_numpy(value: Any) -> np.ndarray | None:
    """A CPU copy of a float32/float64/int tensor (None for anything else, which Keras
    converts). Keras's ``convert_to_numpy`` calls ``np.array(tensor)``, and NumPy 2 passes
    ``copy=`` to ``Tensor.__array__``, which PyTorch 2.13 does not take: a
    DeprecationWarning on every conversion."""
    if not isinstance(value, torch.Tensor) or value.dtype == torch.bfloat16:
        return None
    return value.detach().cpu().numpy()


def synchronize() -> None:
    """Wait for the kernels PyTorch queued on the current CUDA device, if any."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def make_deterministic() -> None:
    """PyTorch's deterministic algorithms (``torch.use_deterministic_algorithms``; on CUDA
    cuBLAS also needs ``CUBLAS_WORKSPACE_CONFIG``, set here when unset)."""
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
