"""JAX: gradients through ``jax.value_and_grad`` of the variables' values.

Keras variables on JAX are immutable arrays; layers read them through the
current ``keras.StatelessScope``, so the loss is re-run as a pure function of the
variables' values (``state_mapping``), which is what ``jax.grad`` differentiates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np


def value_and_grad(
    loss_fn: Callable[..., Any],
    variables: Sequence[Any],
    inputs: Sequence[Any],
    *,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    values = [jnp.asarray(v.value) for v in variables]
    arrays = [jnp.asarray(x) for x in inputs]

    def pure(values, arrays):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
            return loss_fn(*arrays)

    (loss, *aux), (g_vars, g_inputs) = _normalise(
        jax.value_and_grad(pure, argnums=(0, 1), has_aux=has_aux)(values, arrays), has_aux)
    result = (float(loss), [np.asarray(g).astype(np.float64) for g in g_vars],
              [np.asarray(g).astype(np.float64) for g in g_inputs])
    if has_aux:
        return (result[0], jax.tree_util.tree_map(np.asarray, aux[0]), *result[1:])
    return result


def _normalise(out, has_aux):
    """``((loss, aux...), grads)`` from jax.value_and_grad's ``(loss, grads)`` or
    ``((loss, aux), grads)``."""
    value, grads = out
    return ((value[0], value[1]) if has_aux else (value,)), grads
