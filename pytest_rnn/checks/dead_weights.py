"""Dead weight entries: the parts of a layer's trainable weights that never change its result.

A cell whose candidate skips its recurrent term still trains: the recurrent kernel's
gate columns get gradients, so a check of whole tensors (one gradient per weight, as
``test_trainability`` takes) passes while half of the kernel is never read. This module
looks entry by entry. :func:`dead_entries` takes the gradient of a random projection of
everything the layer returns (outputs at every step and final states) with respect to
every trainable weight, for a few batches of inputs, each with its own projection; an
entry whose gradient is exactly zero on every batch is dead. :func:`describe_dead` names
the dead entries compactly (``recurrent_kernel[:, 8:16]``), and
:func:`assert_every_weight_entry_influences_output` is the body of the layer contract's
``test_every_weight_entry_influences_the_output``.

Why exactly zero, with no tolerance: for an entry the forward pass reads, the gradient
is a non-constant analytic function of the random inputs and projection weights, so it
is zero with probability zero; a float32 gradient underflows to zero only below the
smallest subnormal (about 1e-45). An entry the forward pass never reads (or reads only
through something multiplied by a state that stays zero) has a gradient that is zero
for every input, the same zero on every batch. The chance that a read entry is zero on
all batches is that of an event of probability zero repeated, so the only false alarm
left is a unit whose activation has a flat region (ReLU, hard sigmoid) and stays in it
for every sample and step of every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from pytest_rnn import backends
from pytest_rnn.checks import compare

#: What a failure says of each dead slice; tests and the catalogue quote it.
NEVER_INFLUENCES = "never influences the output"
#: The same said of several slices or entries.
NEVER_INFLUENCE = "never influence the output"
#: Batches of inputs the contract draws, each with its own random projection of the
#: outputs: an entry must influence the result on at least one of them.
INFLUENCE_BATCHES = 3
#: Dead entries listed by index when they form no whole rows or columns.
LISTED_ENTRIES = 4


def _spans(indices: Sequence[int]) -> list[str]:
    """``["0:2", "5", "8:16"]``: runs of consecutive indices as slices, one index alone."""
    spans: list[str] = []
    values = sorted(int(i) for i in indices)
    start = prev = None
    for i in [*values, None]:
        if prev is not None and (i is None or i != prev + 1):
            spans.append(str(start) if prev == start else f"{start}:{prev + 1}")
            start = None
        if start is None:
            start = i
        prev = i
    return spans


def describe_dead(name: str, dead: np.ndarray) -> str:
    """One line naming the dead entries of weight ``name`` (``dead``: a boolean array of the
    weight's shape, True where the entry never influences the output).

    Whole columns (the last axis: units, gates) read ``kernel[:, 8:16]``, whole rows (the
    first axis: input features, state units) ``kernel[2:4, :]``, a vector's entries
    ``bias[3:6]``; anything else is counted with its first few indices."""
    dead = np.asarray(dead, dtype=bool)
    count, size = int(dead.sum()), dead.size
    if count == size:
        return f"{name} {NEVER_INFLUENCES} (none of its {size} entries, shape {dead.shape})"
    if dead.ndim == 1:
        slices = [f"[{s}]" for s in _spans(np.flatnonzero(dead))]
    else:
        cols = dead.reshape(-1, dead.shape[-1]).all(axis=0)
        rows = dead.reshape(dead.shape[0], -1).all(axis=1)
        lead, tail = (":, ", ", :") if dead.ndim == 2 else ("..., ", ", ...")
        if cols.any() and np.array_equal(dead, np.broadcast_to(cols, dead.shape)):
            slices = [f"[{lead}{s}]" for s in _spans(np.flatnonzero(cols))]
        elif rows.any() and np.array_equal(
                dead, np.broadcast_to(rows.reshape((-1,) + (1,) * (dead.ndim - 1)), dead.shape)):
            slices = [f"[{s}{tail}]" for s in _spans(np.flatnonzero(rows))]
        else:
            first = ", ".join(str(tuple(int(k) for k in i))
                              for i in np.argwhere(dead)[:LISTED_ENTRIES])
            more = ", ..." if count > LISTED_ENTRIES else ""
            return (f"{name}: {count} of {size} entries {NEVER_INFLUENCE}"
                    f", at {first}{more}")
    verb = NEVER_INFLUENCES if len(slices) == 1 else NEVER_INFLUENCE
    return f"{name}{' and '.join(slices)} {verb}"


def dead_entries(
    layer: Any, inputs: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray | None], list[list[np.ndarray]]]:
    """``({weight path: dead mask, or None for a weight with no gradient at all}, outputs per
    batch)``: one :func:`pytest_rnn.backends.value_and_grad` per batch of ``inputs``, of
    ``sum_k sum(P_k * returned_k)`` with ``P_k`` standard normals drawn from ``rng`` for that
    batch, over every tensor ``layer`` returns (called with ``training=False``, so dropout
    is off)."""
    if not layer.built and inputs:
        layer(inputs[0], training=False)  # creates the weights
    variables = list(layer.trainable_weights)
    alive: list[np.ndarray | None] = [None] * len(variables)
    returned = []
    for x in inputs if variables else ():
        projections: list[Any] = []

        def projected(v=x, projections=projections):
            outs = compare.keras_tree().flatten(layer(v, training=False))
            if not projections:
                projections += [keras.ops.convert_to_tensor(
                    rng.normal(size=tuple(o.shape)).astype("float32")) for o in outs]
            loss = sum(keras.ops.sum(keras.ops.cast(o, "float32") * p)
                       for o, p in zip(outs, projections, strict=True))
            return loss, outs

        _, outs, grads, _ = backends.value_and_grad(projected, variables, (), has_aux=True)
        returned.append([np.asarray(o) for o in outs])
        for k, grad in enumerate(grads):
            if grad is not None:
                moved = np.asarray(grad) != 0
                alive[k] = moved if alive[k] is None else alive[k] | moved
    paths = [getattr(v, "path", None) or v.name for v in variables]
    dead = {p: (None if a is None else ~a) for p, a in zip(paths, alive, strict=True)}
    return dead, returned


def _frozen_states(returned: list[list[np.ndarray]]) -> list[str]:
    """A line for each returned state that is the same after every batch of inputs: a cell
    that returns the state it was given (not the new one) leaves it at the initial state."""
    lines = []
    for k in range(1, min(len(r) for r in returned)):
        first = returned[0][k]
        if len(returned) > 1 and all(np.array_equal(r[k], first) for r in returned[1:]):
            value = "all zeros" if not np.any(first) else f"max |value| {np.abs(first).max():.3g}"
            lines.append(f"state {k - 1} it returns is the same after every batch of inputs "
                         f"({value}): does call() return the previous state instead of the "
                         "new one? Then no step sees what the steps before it computed")
    return lines


def assert_every_weight_entry_influences_output(
    layer: Any, inputs: Sequence[np.ndarray], rng: np.random.Generator, *, label: str
) -> None:
    """Assert every entry of every trainable weight of ``layer`` changes what it returns for
    at least one batch of ``inputs`` (see :func:`dead_entries`); a failure names each weight's
    dead slices (:func:`describe_dead`) and, when a returned state never changes, says so."""
    dead, returned = dead_entries(layer, inputs, rng)
    if not dead:
        raise AssertionError(f"{label} has no trainable weights; nothing can influence its "
                             "output")
    problems = []
    for path, mask in dead.items():
        if mask is None:
            problems.append(f"{path} {NEVER_INFLUENCES} (no gradient: the forward pass never "
                            "reads it)")
        elif mask.any():
            problems.append(describe_dead(path, mask))
    if problems:
        raise AssertionError(
            f"{label}: entries of its trainable weights never change what it returns: their "
            f"gradient is exactly zero on each of {len(inputs)} random batches of inputs (loss: "
            "a fresh random projection of every output step and state per batch, "
            "training=False):\n  " + "\n  ".join(problems + _frozen_states(returned))
            + "\nUsually a slice the cell's math leaves out (a gate or candidate that skips "
            "its recurrent term) or a state that is never updated. Weights unused by design: "
            "skip_contracts = {'test_every_weight_entry_influences_the_output': reason}"
        )
