"""When LSTM and GRU take the cuDNN kernel, checked on any host (CPU included).

Every rule of :mod:`pytest_rnn.cudnn` is checked against what Keras really does:
under :func:`~pytest_rnn.cudnn.simulated_gpu_routing` Keras believes a GPU is
visible, so each call shows whether it would reach cuDNN, and the mirror must agree.
Without simulation, a CPU host shows the fallback contract: ``use_cudnn=True``
raises Keras's ValueError, ``"auto"`` computes exactly the generic result.
The numerical cuDNN-vs-generic comparison needs a GPU: ``test_cudnn_equivalence.py``.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest
from pytest_rnn.cudnn import (
    INVALID_USE_CUDNN_ERROR,
    USE_CUDNN_TRUE_ERROR,
    cudnn_eligibility,
    cudnn_sequence_output,
    expected_kernel,
    mask_allows_cudnn,
    simulated_gpu_routing,
)
from pytest_rnn.models import build_random, copy_layer, rnn_layer

from pytest_rnn import backends
from pytest_rnn.checks.compare import to_numpy
from pytest_rnn.plugin.markers import requires_keras
from pytest_rnn.runtime.versions import keras_at_least

pytestmark = requires_keras("use_cudnn")


# outputs are compared with float32 tolerances: no TF32 matmuls on GPU hosts
BATCH, STEPS, FEATURES, UNITS = 3, 4, 2, 3
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
KINDS = ("lstm", "gru")

# (id, layer kwargs, the word the disqualifying reason must contain or None if eligible)
CONFIGS = [
    ("defaults", {}, None),
    ("tf_tanh_sigmoid", {"activation": "tf.tanh", "recurrent_activation": "tf.sigmoid"}, None),
    # input dropout reaches cuDNN from Keras 3.4 (keras-team/keras 1b8f7b7bff, #19645)
    ("input_dropout", {"dropout": 0.5}, None if keras_at_least("3.4.0") else "dropout=0.5"),
    ("stateful", {"stateful": True}, None),
    ("use_cudnn_false", {"use_cudnn": False}, "use_cudnn=False"),
    ("recurrent_dropout", {"recurrent_dropout": 0.2}, "recurrent_dropout"),
    ("relu", {"activation": "relu"}, "activation=relu"),
    ("tanh_lambda", {"activation": "lambda_tanh"}, "activation=<lambda>"),
    ("hard_sigmoid", {"recurrent_activation": "hard_sigmoid"}, "recurrent_activation"),
    ("unroll", {"unroll": True}, "unroll=True"),
    ("no_bias", {"use_bias": False}, "use_bias=False"),
]
GRU_ONLY = [("reset_before", {"reset_after": False}, "reset_after=False")]


def _kwargs(spec: dict) -> dict:
    """Resolve the placeholders kept symbolic so test ids stay readable."""
    import tensorflow as tf

    named = {"tf.tanh": tf.tanh, "tf.sigmoid": tf.sigmoid,
             "lambda_tanh": lambda t: keras.ops.tanh(t)}
    return {k: named.get(v, v) if isinstance(v, str) else v for k, v in spec.items()}


def config_cases() -> list:
    return [
        pytest.param(kind, spec, reason, id=f"{kind}-{name}")
        for kind in KINDS
        for name, spec, reason in CONFIGS + (GRU_ONLY if kind == "gru" else [])
    ]



#: The tests that observe Keras's TensorFlow routing; the rest hold on every backend.
tensorflow_routing = pytest.mark.skipif(
    backends.name() != "tensorflow",
    reason=f"pins Keras's TensorFlow routing; the {backends.name()} backend routes LSTM/GRU "
           "by its own rules, pinned in suites/test_fused_routing.py")


def built(kind: str, seed: int, **kwargs) -> keras.layers.Layer:
    return build_random(rnn_layer(kind, UNITS, **kwargs), INPUT_SHAPE, seed)


def routed(layer, x, **call_kwargs) -> list:
    with simulated_gpu_routing() as calls:
        layer(x, **call_kwargs)
    return calls


@tensorflow_routing
@pytest.mark.parametrize(("kind", "spec", "reason"), config_cases())
def test_eligibility_mirror_agrees_with_keras_routing(kind, spec, reason, x, rnn_seed):
    layer = built(kind, rnn_seed, **_kwargs(spec))
    eligibility = cudnn_eligibility(layer)
    if reason is None:
        assert eligibility.eligible, f"{spec} should keep cuDNN: {eligibility.describe()}"
    else:
        assert not eligibility.eligible and any(reason in r for r in eligibility.reasons), (
            f"{spec} should disqualify cuDNN with a reason naming {reason!r}; "
            f"got {eligibility.describe()}"
        )
    # Training mode shows that input dropout keeps cuDNN; inference mode shows that
    # recurrent_dropout keeps it off even when no dropout is applied.
    training = "dropout" in spec
    calls = routed(layer, x, training=training)
    predicted = expected_kernel(layer, gpu_available=True)
    assert (predicted == "cudnn") == bool(calls), (
        f"{kind} {spec} (training={training}): pytest_rnn.cudnn predicts {predicted!r} on a "
        f"GPU host but Keras {'reached' if calls else 'did not reach'} the cuDNN kernel "
        f"({eligibility.describe()})"
    )


@tensorflow_routing
def test_simple_rnn_never_takes_cudnn(x, rnn_seed):
    layer = built("simple_rnn", rnn_seed)
    assert not cudnn_eligibility(layer).eligible
    assert routed(layer, x) == [], "SimpleRNN reached a cuDNN kernel"


@tensorflow_routing
@pytest.mark.parametrize("kind", KINDS)
def test_use_cudnn_true_raises_documented_error_without_a_gpu(kind, x, rnn_seed, rnn_device):
    if rnn_device.has_gpu:
        pytest.skip("a GPU is visible, so use_cudnn=True can run; test_cudnn_equivalence covers it")
    layer = built(kind, rnn_seed, use_cudnn=True)
    assert expected_kernel(layer, gpu_available=False) == "error"
    with pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
        layer(x)


@tensorflow_routing
@pytest.mark.parametrize(("kind", "spec", "reason"), [
    c for c in config_cases() if c.values[2] not in (None, "use_cudnn=False")
])
def test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host(
        kind, spec, reason, x, rnn_seed):
    layer = built(kind, rnn_seed, use_cudnn=True, **_kwargs(spec))
    assert expected_kernel(layer, gpu_available=True) == "error"
    with simulated_gpu_routing() as calls, pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
        layer(x)
    assert calls == [], f"{spec} reached cuDNN although it disqualifies it"


@tensorflow_routing
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("simulate_gpu", [False, True], ids=["cpu", "gpu_without_cudnn_op"])
def test_auto_falls_back_to_exactly_the_generic_result(kind, simulate_gpu, x, rnn_seed,
                                                       rnn_device):
    if rnn_device.has_gpu and not simulate_gpu:
        pytest.skip("a GPU is visible: 'auto' takes cuDNN here; test_cudnn_equivalence covers it")
    auto = built(kind, rnn_seed, return_sequences=True, return_state=True)
    generic = copy_layer(auto, INPUT_SHAPE, use_cudnn=False)
    with simulated_gpu_routing() if simulate_gpu else contextlib.nullcontext([]) as calls:
        got = auto(x)
    if simulate_gpu:
        assert calls, "the simulated GPU host did not route the eligible layer to cuDNN"
    want = generic(x)
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(
            to_numpy(a), to_numpy(b),
            err_msg=f"{kind} use_cudnn='auto' fallback differs from use_cudnn=False "
                    f"in output {index}",
        )


@pytest.mark.parametrize("value", ["yes", None, "cudnn"])
def test_invalid_use_cudnn_value_is_rejected_at_construction(value):
    with pytest.raises(ValueError, match=INVALID_USE_CUDNN_ERROR) as info:
        keras.layers.LSTM(UNITS, use_cudnn=value)
    assert f"use_cudnn={value}" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_use_cudnn_is_not_serialized(kind, rnn_seed):
    """A reloaded layer gets "auto": use_cudnn=False does not survive get_config()."""
    layer = built(kind, rnn_seed, use_cudnn=False)
    config = layer.get_config()
    assert "use_cudnn" not in config, "use_cudnn is serialized now: update pytest_rnn.cudnn"
    assert type(layer).from_config(config).use_cudnn == "auto"
    wrapped = keras.layers.Bidirectional(rnn_layer(kind, UNITS, use_cudnn=False))
    assert (wrapped.forward_layer.use_cudnn, wrapped.backward_layer.use_cudnn) == (False, False)


MASKS = {
    "right_padded": ([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], True),
    "left_padded": ([[1, 1, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]], False),
    "gap": ([[1, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], False),
    "fully_masked_row": ([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]], False),
}


@tensorflow_routing
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mask_name", MASKS)
def test_mask_rule_agrees_with_keras_routing(kind, mask_name, x, rnn_seed):
    mask, allowed = MASKS[mask_name]
    mask = np.asarray(mask, dtype=bool)
    ok, why = mask_allows_cudnn(mask)
    assert ok is allowed, f"mask_allows_cudnn({mask_name}) = {ok} ({why})"
    auto = built(kind, rnn_seed, return_sequences=True)
    calls = routed(auto, x, mask=mask)
    assert bool(calls) is allowed, (
        f"Keras {'routed' if calls else 'did not route'} the {mask_name} mask to cuDNN; "
        f"pytest_rnn.cudnn says {'it may' if allowed else 'it must not'} ({why})"
    )
    assert expected_kernel(auto, gpu_available=True, mask=mask) == (
        "cudnn" if allowed else "generic")
    if not allowed:  # use_cudnn=True must refuse it instead of silently falling back
        strict = copy_layer(auto, INPUT_SHAPE, use_cudnn=True)
        with simulated_gpu_routing(), pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
            strict(x, mask=mask)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_padded_steps_generic_carries_last_output_where_cudnn_writes_zeros(
        kind, go_backwards, x, rnn_seed):
    """The documented kernel difference, on the generic side (the GPU suite checks cuDNN's)."""
    mask = np.asarray(MASKS["right_padded"][0], dtype=bool)
    layer = built(kind, rnn_seed, return_sequences=True, use_cudnn=False,
                  go_backwards=go_backwards)
    generic = to_numpy(layer(x, mask=mask))
    cudnn_like = cudnn_sequence_output(generic, mask, go_backwards=go_backwards)
    order = mask[:, ::-1] if go_backwards else mask
    lengths = mask.sum(axis=1)
    for row in range(BATCH):
        padded = np.flatnonzero(~order[row])
        if padded.size == 0:
            continue
        assert np.all(cudnn_like[row, padded] == 0.0)
        if go_backwards:  # padded steps come first: nothing to carry yet, both write zeros
            np.testing.assert_array_equal(generic[row, padded], 0.0)
        else:
            last = generic[row, lengths[row] - 1]
            assert np.abs(last).max() > 1e-3, "last valid output is ~0: the check is vacuous"
            np.testing.assert_array_equal(
                generic[row, padded], np.broadcast_to(last, (padded.size, UNITS)),
                err_msg=f"generic {kind} no longer repeats the last valid output at padded "
                        f"steps of row {row}: the documented cuDNN difference changed",
            )
    np.testing.assert_array_equal(cudnn_like[order], generic[order])


@tensorflow_routing
@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_routes_each_direction_and_zeroes_padded_steps(kind, x, rnn_seed):
    wrapped = keras.layers.Bidirectional(rnn_layer(kind, UNITS, return_sequences=True))
    wrapped.build(INPUT_SHAPE)
    assert cudnn_eligibility(wrapped).eligible
    mask = np.asarray(MASKS["right_padded"][0], dtype=bool)
    with simulated_gpu_routing() as calls:
        out = to_numpy(wrapped(x, mask=mask))
    assert sorted(c.go_backwards for c in calls) == [False, True], (
        f"Bidirectional({kind}) should send each direction to cuDNN once; got {calls}"
    )
    # Bidirectional sets zero_output_for_mask, so its generic output is already zero
    # where cuDNN's is: the two kernels agree at padded steps here.
    np.testing.assert_array_equal(out[~mask], 0.0)
    wrapped_rd = keras.layers.Bidirectional(rnn_layer(kind, UNITS, recurrent_dropout=0.1))
    wrapped_rd.build(INPUT_SHAPE)
    reasons = cudnn_eligibility(wrapped_rd).reasons
    assert [r.split(":")[0] for r in reasons] == ["forward", "backward"], reasons
    assert routed(wrapped_rd, x) == []


def test_helpers_name_bad_input():
    with pytest.raises(ValueError, match="got Dense"):
        cudnn_eligibility(keras.layers.Dense(2))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, steps\)"):
        mask_allows_cudnn([1, 1, 0])
    with pytest.raises(ValueError, match="matching mask"):
        cudnn_sequence_output(np.zeros((2, 3, 1)), np.ones((2, 4)))
