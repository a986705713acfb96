"""PyTorch: gradients through ``torch.autograd.grad`` on the variables' parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import torch


def value_and_grad(
    loss_fn: Callable[..., Any],
    variables: Sequence[Any],
    inputs: Sequence[Any],
    *,
    has_aux: bool = False,
) -> tuple[Any, ...]:
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
        aux = keras.tree.map_structure(lambda t: keras.ops.convert_to_numpy(t), aux)
        return (result[0], aux, *result[1:])
    return result
