"""Recurrent layers under the mixed-precision policies ``mixed_float16`` and ``mixed_bfloat16``.

A mixed policy keeps variables in float32 and computes in a 16-bit format. Releases
have shipped recurrent layers that return states in the wrong dtype or that cannot
even build as stateful layers under such a policy; no other suite sets a policy. The
policy is given per layer (``dtype=policy``), so no global state leaks between tests.

Tolerance against the float64 NumPy reference (same float32 weights, same inputs): a
16-bit format with ``p`` significand bits has unit roundoff ``u = 2**-p``
(float16: ``2**-11``, bfloat16: ``2**-8``). The returned value is rounded once
(``u |y|``); before that, each of the ``T`` steps computes pre-activations from
``n = features + units`` rounded products, and rounding errors of independent
operations add like a random walk (the probabilistic bound ``sqrt(n) u`` of Higham and
Mary, rather than the worst case ``n u``), so ``T`` steps contribute ``sqrt(T n) u`` (the
cells' Jacobians have norm about 1 at these weights). Hence
``tol = u (1 + sqrt(T n)) max(1, max|ref|)``: 3.4e-3 for float16 and 2.7e-2 for
bfloat16 at ``T = 5, n = 7``. Measured over 20 seeds: at most 9e-4 and 6.8e-3; a swapped
gate or lost mask moves outputs by 0.1 or more.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from pytest_rnn.checks import compare
from pytest_rnn.checks.models import build_random, keras_own_loop
from pytest_rnn.checks.reference import reference_outputs

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4
MASK = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], dtype=bool)  # post- and pre-padded
POLICIES = {"mixed_float16": ("float16", 2.0**-11), "mixed_bfloat16": ("bfloat16", 2.0**-8)}
KINDS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
         "gru": keras.layers.GRU}


def tolerance(policy: str, steps: int) -> float:
    """``u (1 + sqrt(T n))``; see the module docstring."""
    return POLICIES[policy][1] * (1.0 + math.sqrt(steps * (FEATURES + UNITS)))


def _dtype(value) -> str:
    return keras.backend.standardize_dtype(value.dtype)


def assert_near_reference(what: str, got, reference, policy: str, steps: int) -> None:
    tol = tolerance(policy, steps)
    problems = [
        line for value, (name, ref) in zip(got, reference, strict=True)
        if (line := compare.difference(
            name, compare.to_numpy(keras.ops.cast(value, "float32")), ref,
            atol=tol * max(1.0, float(np.abs(ref).max())), labels=(policy, "reference")))
    ]
    assert not problems, (f"{what} under {policy} is further from the float64 reference than "
                          f"{policy}'s rounding explains:\n  " + "\n  ".join(problems))


def assert_policy_dtypes(what: str, layer, returned, policy: str) -> None:
    compute = POLICIES[policy][0]
    problems = [f"  weight {w.path}: {_dtype(w)} (variables stay float32)"
                for w in layer.weights if _dtype(w) != "float32"]
    names = ["output"] + [f"state {i}" for i in range(len(returned) - 1)]
    problems += [f"  returned {n}: {_dtype(t)}" for n, t in zip(names, returned, strict=True)
                 if _dtype(t) != compute]
    assert not problems, (f"{what} under {policy} (compute dtype {compute}, variable dtype "
                          "float32) has tensors of the wrong dtype:\n" + "\n".join(problems))


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_masked_layer_computes_in_the_policy_dtype_near_the_reference(kind, policy, rnn_rng):
    native = {} if kind == "simple_rnn" else keras_own_loop()  # masked: Keras's own loop
    layer = KINDS[kind](UNITS, return_sequences=True, return_state=True, dtype=policy, **native)
    build_random(layer, (BATCH, STEPS, FEATURES), rnn_rng)
    x = rnn_rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    reference = reference_outputs(layer, x, mask=MASK)
    returned = compare.flatten(layer(x, mask=MASK))
    assert_policy_dtypes(f"{kind} with a mask", layer, returned, policy)
    assert_near_reference(f"{kind} with a mask", returned, reference, policy, STEPS)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_stateful_layer_builds_and_carries_state(policy, rnn_rng):
    """A stateful LSTM builds under the policy, keeps its state in float32 variables, and two
    halves equal the reference of one call on the whole sequence; reset_states() zeroes."""
    half = STEPS // 2
    layer = KINDS["lstm"](UNITS, stateful=True, return_sequences=True, return_state=True,
                          dtype=policy)
    build_random(layer, (BATCH, half, FEATURES), rnn_rng)
    layer.reset_states()
    x = rnn_rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    whole = reference_outputs(layer, x)  # from the zero state the variables hold now
    first = compare.flatten(layer(x[:, :half]))
    second = compare.flatten(layer(x[:, half:]))
    assert_policy_dtypes("stateful LSTM, first half", layer, first, policy)
    assert_policy_dtypes("stateful LSTM, second half", layer, second, policy)
    states = compare.flatten(layer.states)
    assert [_dtype(s) for s in states] == ["float32", "float32"], (
        f"stateful LSTM under {policy}: state variables are {[_dtype(s) for s in states]}; "
        "they hold the carried state and stay float32 like every variable")
    outputs = keras.ops.concatenate([keras.ops.cast(first[0], "float32"),
                                     keras.ops.cast(second[0], "float32")], axis=1)
    assert_near_reference("stateful LSTM fed two halves", [outputs, *second[1:]], whole,
                          policy, STEPS)
    layer.reset_states()
    assert not any(compare.to_numpy(s).any()
                   for s in compare.flatten(layer.states)), (
        f"reset_states() under {policy} leaves a non-zero state")
