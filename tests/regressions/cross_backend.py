"""Regressions that break one Keras backend only, and the cross-backend cases that catch them.

Each :class:`BackendRegression` is injected *inside one backend's subprocess* of the
equivalence suite (:mod:`pytest_rnn.checks.cross_backend`): ``patch`` names a function of
this module that the subprocess calls before computing. Nothing else changes, so the
in-process suites (run on one backend) cannot see it; only comparing backends can. Each
entry names the cases of ``suites/test_cross_backend.py`` that must report a difference
(``fails``), the regular expression every such report must match (``message``: it names
the backend pair and the tensor) and cases that must stay equal (``passes``).
Proven by ``tests/test_cross_backend_sensitivity.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_rnn.checks import compare
from regressions.patches import keras_internals
from regressions.wording import quoted

VALUES_DIFFER = quoted(compare.VALUES_DIFFER)


@dataclass(frozen=True)
class BackendRegression:
    id: str
    description: str
    backend: str
    patch: str
    fails: tuple[str, ...]
    message: str
    passes: tuple[str, ...] = ()


def _swap_z_r(matrix):
    """Columns [z | r | h] -> [r | z | h] (the GRU gate blocks along the last axis)."""
    import jax.numpy as jnp

    z, r, h = jnp.split(jnp.asarray(matrix), 3, axis=-1)
    return jnp.concatenate([r, z, h], axis=-1)


def jax_gru_gate_swap():
    """JAX's fused GRU scan (``keras.src.backend.gru``) uses the update gate's weights for
    the reset gate and vice versa: JAX only (TensorFlow's GRU does not go through it)."""
    kbackend = keras_internals()["backend"]

    original = kbackend.gru

    def gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, *args, **kwargs):
        bias = None if bias is None else _swap_z_r(bias)
        return original(inputs, initial_state, mask, _swap_z_r(kernel),
                        _swap_z_r(recurrent_kernel), bias, *args, **kwargs)

    kbackend.gru = gru
    return lambda: setattr(kbackend, "gru", original)


def jax_scan_ignores_mask():
    """JAX's generic ``lax.scan`` loop (``keras.src.backend.rnn``) drops the mask: padded
    steps update the state. Masked layers take that loop on JAX (no fused path takes a
    mask), so every masked case differs; TensorFlow's loop is untouched."""
    kbackend = keras_internals()["backend"]

    original = kbackend.rnn

    def rnn(*args, **kwargs):
        kwargs["mask"] = None
        return original(*args, **kwargs)

    kbackend.rnn = rnn
    return lambda: setattr(kbackend, "rnn", original)


BACKEND_REGRESSIONS = (
    BackendRegression(
        id="jax_gru_gate_swap",
        description="JAX's fused GRU scan swaps the update and reset gates",
        backend="jax",
        patch="regressions.cross_backend:jax_gru_gate_swap",
        # the cases whose GRU takes the fused scan on JAX (reset_after, no mask, no unroll)
        fails=("gru", "gru_backwards", "gru_stateful", "bidirectional_gru"),
        message=r"^jax vs tensorflow: (bidirectional_)?gru\w* (output|state 0|call \d (output"
                rf"|state 0)|dL/d (inputs|w\d+ \S+)): \d+ of \d+ {VALUES_DIFFER} .* jax \S+, "
                r"tensorflow \S+",
        # the generic loop (masked, use_cudnn=False, reset_after=False) and LSTM stay equal
        passes=("gru_masked", "gru_generic_kernel", "gru_reset_before", "lstm"),
    ),
    BackendRegression(
        id="jax_scan_ignores_mask",
        description="JAX's generic scan loop ignores the mask",
        backend="jax",
        patch="regressions.cross_backend:jax_scan_ignores_mask",
        fails=("simple_rnn_masked", "lstm_masked", "gru_masked", "gru_backwards_masked",
               "bidirectional_lstm_masked", "stacked_simple_rnn_lstm_masked"),
        message=r"^jax vs tensorflow: \w+_masked (output|state \d|dL/d (inputs|w\d+ \S+)): "
                rf"\d+ of \d+ {VALUES_DIFFER} .*worst at .*: jax \S+, tensorflow \S+",
        passes=("simple_rnn", "lstm", "gru_reset_before"),
    ),
)
