"""What differs per Keras backend, behind one small seam.

Checks never import TensorFlow, JAX or PyTorch themselves: they ask this module,
which dispatches on ``keras.backend.backend()`` to one module per backend
(:mod:`.tensorflow`, :mod:`.jax`, :mod:`.torch`). Importing this package imports
neither Keras nor a backend (the plugin stays a good guest); each function does
when called.

Gradients:

* :func:`value_and_grad` ``(loss_fn, variables, inputs)`` calls ``loss_fn(*inputs)``
  (a scalar built from Keras layers that read ``variables``) and returns the loss
  and its gradients with respect to every variable and every input, as float64
  NumPy arrays (``None`` where the loss does not depend on one), using the
  backend's documented mechanism: ``tf.GradientTape``, ``jax.value_and_grad`` over
  the variables' values inside a ``keras.StatelessScope``, ``torch.autograd.grad``.
* :func:`gradients` ``(loss_fn, variables)``: the same without inputs, returning
  ``(loss, [grad per variable])``.

Seeding: :func:`seed_everything` seeds Python, NumPy, Keras and the frameworks Keras
seeds (TensorFlow whenever it is installed, for ``tf.data``; PyTorch on its backend).

Compilation: :func:`compile_function` ``(fn, jit_compile=False, input_signature=None)``
returns ``fn`` traced into a graph (TensorFlow: ``tf.function``, XLA with
``jit_compile=True``), and :func:`compiled_value_and_grad` the gradients computed inside
such a graph; other backends raise :class:`Unsupported` with a reason, which tests
turn into a skip.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pytest_rnn import lazy_submodules

#: The seam's types, which every backend module's functions take and return: a loss of
#: the inputs (``(loss, aux)`` with ``has_aux``), keras.Variables, and
#: ``(loss, [aux,] variable gradients, input gradients)`` as NumPy float64.
LossFn = Callable[..., Any]
Variables = Sequence[Any]
GradResult = tuple[Any, ...]


def settings_refused_by_fused_kernels(layer: Any) -> list[str]:
    """The layer settings for which no backend's fused LSTM/GRU kernel takes a call (each
    backend adds its own reasons after these)."""
    reasons = []
    if layer.use_cudnn is False:
        reasons.append("use_cudnn=False")
    if layer.cell.recurrent_dropout:
        reasons.append(f"recurrent_dropout={layer.cell.recurrent_dropout:g}")
    return reasons

BACKENDS = ("tensorflow", "jax", "torch")

__getattr__ = lazy_submodules(__name__, BACKENDS)


class Unsupported(RuntimeError):
    """The current backend has no equivalent of what was asked; the message says why."""


def name() -> str:
    """The active Keras backend (``keras.backend.backend()``)."""
    import keras

    return keras.backend.backend()


def module(backend: str | None = None):
    """The module of ``backend`` (default: the active one)."""
    backend = backend or name()
    if backend not in BACKENDS:
        raise Unsupported(f"pytest-rnn has no module for Keras backend {backend!r}; "
                          f"supported: {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{backend}")


def value_and_grad(
    loss_fn: Callable[..., Any],
    variables: Sequence[Any],
    inputs: Sequence[Any] = (),
    *,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    """``(loss, variable gradients, input gradients)`` of ``loss_fn(*inputs)``; NumPy float64
    arrays, ``None`` for a variable or input the loss does not depend on (JAX gives zeros).

    With ``has_aux``, ``loss_fn`` returns ``(loss, aux)`` and the result is
    ``(loss, aux, variable gradients, input gradients)`` with ``aux`` as NumPy arrays: what
    the same call computed besides the loss (outputs under random dropout masks, say)."""
    return module().value_and_grad(loss_fn, list(variables), list(inputs), has_aux=has_aux)


def gradients(loss_fn: Callable[[], Any], variables: Sequence[Any]) -> tuple[float, list[Any]]:
    """``(loss, [gradient of each variable])`` of ``loss_fn()``; see :func:`value_and_grad`."""
    loss, grads, _ = value_and_grad(lambda: loss_fn(), variables, ())
    return loss, grads


def compile_function(
    fn: Callable[..., Any], *, jit_compile: bool = False, input_signature: Any = None
) -> Callable[..., Any]:
    """``fn`` compiled into a graph by the backend (``tf.function`` on TensorFlow).

    ``input_signature``: ``[(shape, dtype), ...]`` with ``None`` for dynamic dimensions."""
    backend = module()
    if not hasattr(backend, "compile_function"):
        raise Unsupported(f"compiling a Python function with stateful Keras layers is "
                          f"TensorFlow's tf.function; the {name()} backend has no equivalent "
                          "that keeps variable updates")
    return backend.compile_function(fn, jit_compile=jit_compile, input_signature=input_signature)


def compiled_value_and_grad(loss_fn: LossFn, variables: Variables, *, jit_compile: bool = False,
                            input_signature: Any = None,
                            has_aux: bool = False) -> Callable[..., GradResult]:
    """:func:`value_and_grad` with the loss and its gradients traced into one compiled graph
    (TensorFlow: ``tf.GradientTape`` inside ``tf.function``); the returned function takes the
    inputs and returns ``(loss, variable gradients, input gradients)`` as NumPy float64.
    With ``has_aux``, ``loss_fn`` returns ``(loss, aux)`` and the function
    ``(loss, aux, variable gradients, input gradients)``, ``aux`` as NumPy arrays (one
    trace computes both)."""
    backend = module()
    if not hasattr(backend, "compiled_value_and_grad"):
        raise Unsupported(f"compiled gradients are tested through tf.function; the {name()} "
                          "backend has no equivalent here")
    return backend.compiled_value_and_grad(loss_fn, list(variables), jit_compile=jit_compile,
                                           input_signature=input_signature, has_aux=has_aux)


def xla_available() -> tuple[bool, str]:
    """Whether this backend has XLA for :func:`compile_function`'s ``jit_compile=True``, and
    why not: a missing capability (the tests skip), never a failing compilation (they fail)."""
    backend = module()
    if not hasattr(backend, "xla_available"):
        return False, f"no XLA-compiled tf.function on the {name()} backend"
    return backend.xla_available()


# -- TF32, kernel routing, device and threads: one module per backend -------------------------


def full_float32():
    """A context manager: float32 matmuls at full float32 precision inside the block (no
    TF32 on Ampere+ GPUs), the previous setting restored on exit. TensorFlow:
    ``enable_tensor_float_32_execution(False)``; JAX: ``jax_default_matmul_precision=
    "highest"``; PyTorch: ``torch.backends.cuda.matmul.allow_tf32 = False`` and cuDNN's."""
    return module().full_float32()


def full_float32_enabled() -> bool:
    """Whether float32 matmuls run at full precision now (see :func:`full_float32`)."""
    return module().full_float32_enabled()


def kernel_route(layer: Any, *, gpu_available: bool, mask: Any = None) -> tuple[str, list[str]]:
    """``(route, reasons)``: which kernel an eager call of ``layer`` takes on the active
    backend (JAX, PyTorch), and why not the fused one. TensorFlow's routing is
    :func:`pytest_rnn.checks.cudnn.expected_kernel` (:class:`Unsupported` here)."""
    backend = module()
    if not hasattr(backend, "kernel_route"):
        raise Unsupported(f"the {name()} backend's LSTM/GRU routing is pinned by "
                          "pytest_rnn.checks.cudnn (expected_kernel, simulated_gpu_routing)")
    return backend.kernel_route(layer, gpu_available=gpu_available, mask=mask)


def observed_routing(*, simulate_gpu: bool):
    """A context manager yielding the list of fused kernels the calls in the block reach
    (see the backend module's ``observed_routing``); :class:`Unsupported` on TensorFlow."""
    backend = module()
    if not hasattr(backend, "observed_routing"):
        raise Unsupported(f"the {name()} backend's routing is observed by "
                          "pytest_rnn.checks.cudnn.simulated_gpu_routing")
    return backend.observed_routing(simulate_gpu=simulate_gpu)


def convert_to_numpy(value: Any) -> Any:
    """``keras.ops.convert_to_numpy(value)``, or the active backend's own conversion where
    Keras's raises a warning (PyTorch: :func:`pytest_rnn.backends.torch.to_numpy`)."""
    import keras

    own = getattr(module(), "to_numpy", None)
    converted = None if own is None else own(value)
    return keras.ops.convert_to_numpy(value) if converted is None else converted


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """:func:`pytest_rnn.runtime.seeding.seed_everything` (Python, NumPy, Keras and the
    frameworks Keras seeds, as ``keras.utils.set_random_seed`` does, on every supported
    release), keeping TensorFlow's compiled eager kernels when ``seed`` is new to this
    process (:func:`pytest_rnn.backends.tensorflow.kernel_cache_kept` says why the draws
    are the same): ``tf.random.set_seed`` alone drops them, and re-creating them costs a
    test that runs a few small layers about a quarter of its CPU time."""
    from pytest_rnn.runtime import seeding

    # Only a TensorFlow already imported has kernels to keep. Importing it here, before
    # Keras, would also load it ahead of PyTorch in an xdist worker on the torch backend,
    # where PyTorch's import (triton, through Keras's torch backend) then segfaults.
    tensorflow = module("tensorflow") if "tensorflow" in sys.modules else None
    with tensorflow.kernel_cache_kept(seed) if tensorflow else contextlib.nullcontext():
        seeding.seed_everything(seed)
    if deterministic:  # the active backend's framework: TensorFlow is not imported for JAX
        module().make_deterministic()



def timed_step(layer: Any, head: Any, x: Any, y: Any, *, train: bool,
               learning_rate: float = 1e-3) -> Callable[[], Any]:
    """What the kernel benchmarks time: a callable running ``layer(x)`` (``train=False``) or
    one SGD step of ``head(layer(x))`` against ``y`` the way a model on this backend runs
    it (TensorFlow: a ``tf.function``; JAX: ``jax.jit`` of the stateless call; PyTorch:
    the eager call). Nothing is run here; the caller warms it up."""
    return module().timed_step(layer, head, x, y, train=train, learning_rate=learning_rate)


def synchronize() -> None:
    """Wait for the device work the active backend queued (GPU kernels run
    asynchronously), so a timer stopped after it times that work. A framework not yet
    imported has queued nothing: nothing is imported to ask."""
    backend = name()
    framework = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if framework in sys.modules:
        module(backend).synchronize()
