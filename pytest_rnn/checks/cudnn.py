"""Which kernel Keras runs an LSTM or GRU on: cuDNN or the generic loop, and why.

This module is the TensorFlow backend's routing (JAX's and PyTorch's: ``kernel_route`` in
:mod:`pytest_rnn.backends.jax` and ``.torch``). Keras 3 (TensorFlow backend) decides on
every call, in ``LSTM.inner_loop`` /
``GRU.inner_loop`` and ``keras/src/backend/tensorflow/rnn.py``. :func:`cudnn_eligibility`
mirrors those rules so a test (or a user's own project) can say *why* a layer
will not take the fast path, instead of noticing only that it got slow:

1. ``use_cudnn=False`` never tries cuDNN.
2. ``recurrent_dropout > 0`` disqualifies, in training *and* at inference: the check
   is on the layer's setting, not on the ``training`` flag. (Input ``dropout`` does
   not: Keras applies its mask to the inputs before calling the cuDNN kernel.)
3. ``activation`` must be tanh and ``recurrent_activation`` sigmoid, compared by
   identity with ``keras.activations.tanh``/``keras.ops.tanh``/``tf.tanh`` (and the
   sigmoid equivalents): an equivalent lambda disqualifies.
4. ``unroll=True`` and ``use_bias=False`` disqualify; for GRU so does ``reset_after=False``.
5. TensorFlow must see a GPU (``tf.config.list_logical_devices("GPU")``).
6. A mask must be right-padded (``[1, 1, 0, 0]``) and must not mask a whole sequence
   (:func:`mask_allows_cudnn`). Eagerly, Keras checks the mask and falls back; inside
   a ``tf.function`` the check is a ``tf.Assert`` that fails the call at run time.

When cuDNN does not apply, ``use_cudnn="auto"`` (the default) falls back to the
generic loop and ``use_cudnn=True`` raises the ValueError matched by
:data:`USE_CUDNN_TRUE_ERROR`. SimpleRNN has no cuDNN path. A ``Bidirectional``
wrapper decides for each direction as that direction's own layer. ``use_cudnn`` is
not part of ``get_config()``: a layer rebuilt from its config gets ``"auto"``.

Keras's docstring also lists "eager execution in the outermost context"; the Keras 3
code has no such rule (a ``tf.function`` takes cuDNN too), so it is not mirrored.

Where the two kernels are *meant* to differ: with a right-padded mask and
``return_sequences=True``, cuDNN writes zeros at the padded steps while the generic
loop repeats the last valid output there (``zero_output_for_mask=False``, the
default outside ``Bidirectional``). :func:`cudnn_sequence_output` derives the cuDNN
result from the generic one, so a test asserts that difference, not a false equality.

:func:`simulated_gpu_routing` makes this mirror checkable on a CPU-only host: it
lets Keras believe a GPU is visible and records each call that reaches the cuDNN
kernel, which then reports "no cuDNN op" so Keras falls back exactly as it does
when the op is missing.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from pytest_rnn import adapters
from pytest_rnn.adapters import keras_internals
from pytest_rnn.runtime.versions import keras_at_least

__all__ = [
    "INVALID_USE_CUDNN_ERROR",
    "USE_CUDNN_TRUE_ERROR",
    "CudnnEligibility",
    "CudnnRoute",
    "cudnn_eligibility",
    "cudnn_sequence_output",
    "expected_kernel",
    "mask_allows_cudnn",
    "simulated_gpu_routing",
]

#: Regex for Keras's error when ``use_cudnn=True`` and cuDNN cannot run the call.
USE_CUDNN_TRUE_ERROR = (
    r"use_cudnn=True was specified, but cuDNN is not supported for this layer "
    r"configuration with this backend"
)
#: Regex for Keras's error when ``use_cudnn`` is not one of ``"auto"``, True, False.
INVALID_USE_CUDNN_ERROR = r"Invalid valid received for argument `use_cudnn`"



def _activations(name: str) -> tuple[Any, ...]:
    """Keras's and (when imported: the TensorFlow backend) TensorFlow's ``name`` function,
    the functions Keras's TensorFlow routing accepts by identity."""
    import sys

    found = [getattr(keras.activations, name), getattr(keras.ops, name)]
    if "tensorflow" in sys.modules:
        found.append(getattr(sys.modules["tensorflow"], name))
    return tuple(found)


@dataclass(frozen=True)
class CudnnEligibility:
    """Whether a layer's *configuration* lets Keras use cuDNN (hardware and mask aside).

    ``reasons`` name each disqualifying setting with its value, in Keras's order;
    empty when eligible. ``use_cudnn`` is the layer's setting (for a Bidirectional
    wrapper: the forward layer's).
    """

    layer: str
    use_cudnn: Any
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.eligible

    def describe(self) -> str:
        if self.eligible:
            return f"{self.layer}: cuDNN-eligible (use_cudnn={self.use_cudnn!r})"
        return f"{self.layer}: not cuDNN-eligible: " + "; ".join(self.reasons)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", repr(fn))


def _recurrent_reasons(layer: Any) -> tuple[list[str], Any]:
    from pytest_rnn.checks.models import cell_kind

    kind = cell_kind(layer)
    cell = layer.cell
    if kind == "simple_rnn":
        return ["SimpleRNN has no cuDNN kernel in Keras"], getattr(layer, "use_cudnn", None)
    reasons = []
    # Keras < 3.2 has no use_cudnn: its LSTM/GRU pick cuDNN themselves, as "auto" does
    use_cudnn = getattr(layer, "use_cudnn", "auto")
    if use_cudnn is False:
        reasons.append("use_cudnn=False")
    if cell.dropout and not keras_at_least("3.4.0"):
        # keras-team/keras 1b8f7b7bff (#19645) let dropout>0 reach cuDNN from 3.4.0
        reasons.append(f"dropout={cell.dropout:g} (Keras < 3.4 keeps the generic kernel)")
    if cell.recurrent_dropout:
        reasons.append(
            f"recurrent_dropout={cell.recurrent_dropout:g} (> 0 keeps the generic kernel, "
            "at inference too)"
        )
    if not any(cell.activation is fn for fn in _activations("tanh")):
        reasons.append(f"activation={_name(cell.activation)} (cuDNN needs tanh)")
    if not any(cell.recurrent_activation is fn for fn in _activations("sigmoid")):
        reasons.append(
            f"recurrent_activation={_name(cell.recurrent_activation)} (cuDNN needs sigmoid)"
        )
    if layer.unroll:
        reasons.append("unroll=True")
    if not cell.use_bias:
        reasons.append("use_bias=False")
    if kind == "gru" and not cell.reset_after:
        reasons.append("reset_after=False (cuDNN's GRU applies the reset gate after the matmul)")
    return reasons, use_cudnn


def cudnn_eligibility(layer: Any) -> CudnnEligibility:
    """The configuration rules of Keras's cuDNN dispatch, applied to ``layer``.

    ``layer`` is a SimpleRNN/LSTM/GRU layer (subclasses count) or a ``Bidirectional``
    wrapping one; anything else is a ValueError naming its type. The result says
    nothing about the host or the mask: see :func:`expected_kernel`.
    """
    if isinstance(layer, keras.layers.Bidirectional):
        forward, fwd_use = _recurrent_reasons(layer.forward_layer)
        backward, _ = _recurrent_reasons(layer.backward_layer)
        reasons = [f"forward: {r}" for r in forward] + [f"backward: {r}" for r in backward]
        return CudnnEligibility(type(layer.forward_layer).__name__ + " (Bidirectional)",
                                fwd_use, tuple(reasons))
    if not isinstance(layer, keras.layers.RNN):
        raise ValueError(
            "layer must be a SimpleRNN, LSTM or GRU layer or a Bidirectional wrapping one; "
            f"got {type(layer).__name__}"
        )
    reasons, use_cudnn = _recurrent_reasons(layer)
    return CudnnEligibility(type(layer).__name__, use_cudnn, tuple(reasons))


def mask_allows_cudnn(mask: Any) -> tuple[bool, str | None]:
    """``(True, None)`` if cuDNN accepts ``mask`` (batch, steps), else ``(False, why)``.

    cuDNN takes one length per sequence, so each row must be ones then zeros
    (right-padded), and no row may be all zeros (Keras routes fully masked
    sequences away from cuDNN, which errors on them).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (batch, steps); got shape {mask.shape}")
    mask = mask.astype(bool)
    lengths = mask.sum(axis=1)
    right_padded = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((mask != right_padded).any(axis=1))
    if bad.size:
        row = int(bad[0])
        return False, (
            f"mask row {row} {mask[row].astype(int).tolist()} is not right-padded "
            "(cuDNN needs ones followed by zeros)"
        )
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        return False, f"mask row {int(empty[0])} masks the whole sequence"
    return True, None


def expected_kernel(layer: Any, *, gpu_available: bool, mask: Any = None) -> str:
    """What an eager call of ``layer`` does: ``"cudnn"``, ``"generic"`` or ``"error"``.

    ``"error"`` is the ValueError of ``use_cudnn=True`` when cuDNN cannot run the
    call (:data:`USE_CUDNN_TRUE_ERROR`). For a Bidirectional wrapper, ``"cudnn"``
    means both directions take it.
    """
    eligibility = cudnn_eligibility(layer)
    wants = eligibility.use_cudnn
    if wants is False:
        return "generic"
    possible = eligibility.eligible and gpu_available
    if possible and mask is not None:
        possible = mask_allows_cudnn(mask)[0]
    if possible:
        return "cudnn"
    return "error" if wants is True else "generic"


def fused_route(layer: Any, *, gpu_available: bool, mask: Any = None) -> tuple[str, list[str]]:
    """``(route, reasons)`` of an eager call of ``layer`` on the active Keras backend.

    TensorFlow: :func:`expected_kernel` with :func:`cudnn_eligibility`'s disqualifiers;
    JAX and PyTorch: :func:`pytest_rnn.backends.kernel_route` (``"cudnn"``, their fused
    loops, ``"generic"`` or ``"error"``). The one question a GPU suite asks whatever the
    backend: does ``use_cudnn=True`` reach cuDNN here, and if not, why.
    """
    from pytest_rnn import backends

    if backends.name() != "tensorflow":
        return backends.kernel_route(layer, gpu_available=gpu_available, mask=mask)
    route = expected_kernel(layer, gpu_available=gpu_available, mask=mask)
    if route == "cudnn":
        return route, []
    reasons = list(cudnn_eligibility(layer).reasons)
    if not gpu_available:
        reasons.append("no GPU")
    if mask is not None and not mask_allows_cudnn(mask)[0]:
        reasons.append(mask_allows_cudnn(mask)[1] or "the mask")
    return route, reasons


def cudnn_sequence_output(generic: Any, mask: Any, *, go_backwards: bool = False) -> np.ndarray:
    """The ``return_sequences`` output cuDNN gives, computed from the generic kernel's.

    Valid steps are equal; padded steps are zeros. For ``go_backwards`` the output
    runs in reversed time, so the padded steps come first (where the generic loop
    has not produced an output yet and writes zeros too: there both kernels agree).
    """
    generic = np.asarray(generic)
    mask = np.asarray(mask).astype(bool)
    if generic.ndim != 3 or generic.shape[:2] != mask.shape:
        raise ValueError(
            f"generic must have shape (batch, steps, units) matching mask {mask.shape}; "
            f"got {generic.shape}"
        )
    in_output_order = mask[:, ::-1] if go_backwards else mask
    return np.where(in_output_order[..., None], generic, np.zeros_like(generic))


@dataclass(frozen=True)
class CudnnRoute:
    """One call that reached Keras's cuDNN kernel under :func:`simulated_gpu_routing`."""

    kernel: str  # "lstm" or "gru"
    go_backwards: bool
    return_sequences: bool
    masked: bool


_CUDNN_KERNELS = {"lstm": keras_internals.TF_CUDNN_LSTM, "gru": keras_internals.TF_CUDNN_GRU}


@contextlib.contextmanager
def simulated_gpu_routing() -> Iterator[list[CudnnRoute]]:
    """Within the block, Keras sees a GPU; calls that reach cuDNN are recorded, then fall back.

    Yields the list the :class:`CudnnRoute` records are appended to. Each cuDNN call
    first runs Keras's own mask check (so a bad mask falls back, as on a GPU), is
    recorded, then raises ``tf.errors.NotFoundError`` ("no cuDNN op on this device"),
    which Keras answers by using the generic kernel (``"auto"``) or by raising its
    ``use_cudnn=True`` ValueError. Eager calls only: in a ``tf.function`` the mask
    check runs as a graph op. Relies on Keras internals (:mod:`pytest_rnn.adapters.
    keras_internals`), and fails with one line naming the one that moved.
    """
    import tensorflow as tf

    calls: list[CudnnRoute] = []
    assert_valid_mask = adapters.resolve(keras_internals.TF_ASSERT_VALID_MASK)

    def spy(kernel: str, real):
        signature = inspect.signature(real)

        def fake(*args, **kwargs):
            bound = signature.bind(*args, **kwargs).arguments
            mask = bound.get("mask")
            if mask is not None:
                assert_valid_mask(mask)  # raises InvalidArgumentError eagerly
            calls.append(CudnnRoute(kernel, bool(bound.get("go_backwards")),
                                    bool(bound.get("return_sequences")), mask is not None))
            raise tf.errors.NotFoundError(None, None, "simulated: no cuDNN kernel on this host")

        return fake

    replacements = {keras_internals.TF_GPU_AVAILABLE: lambda: True}
    replacements |= {internal: spy(kernel, adapters.resolve(internal))
                     for kernel, internal in _CUDNN_KERNELS.items()}
    with adapters.replaced(replacements):
        yield calls
