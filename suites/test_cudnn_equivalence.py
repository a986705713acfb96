"""The cuDNN kernel computes what the generic kernel computes (GPU hosts only).

Each test builds a layer with ``use_cudnn=True`` (a call that cannot use cuDNN
raises instead of falling back, so a passing call *is* the cuDNN path) and a twin
with ``use_cudnn=False`` holding the same random weights, then compares outputs,
states and gradients.

Every backend with a cuDNN kernel runs it: TensorFlow (LSTM, GRU), JAX (LSTM through
``jax.experimental.rnn``; its GRU is a fused scan, no cuDNN, and those tests skip
naming the route) and PyTorch (LSTM, GRU). Which calls reach cuDNN is
:func:`pytest_rnn.checks.cudnn.fused_route`, itself checked against Keras's real routing
on any host (``test_cudnn_eligibility.py``, ``test_fused_routing.py``). Masks: TensorFlow's
cuDNN takes right-padded masks; JAX's and PyTorch's take none, so there
``use_cudnn=True`` with any mask must raise Keras's error.

TF32. On Ampere and newer GPUs TensorFlow and JAX run float32 matmuls (cuBLAS and cuDNN
RNN alike) in TF32 by default (PyTorch's cuDNN too), rounding inputs to a 10-bit mantissa (~5e-4
relative error per product). The two kernels round differently, so a TF32
comparison would need tolerances around 1e-2 after a few steps, wide enough to
hide a wrong gate order or a dropped bias term. The plugin's ``rnn_float32``
fixture turns TF32 off for each test (:func:`pytest_rnn.backends.full_float32`)
and restores it after; the benchmarks keep the default, as users run it.

Tolerances (float32, unit roundoff u ~ 6e-8). An output after ``STEPS`` steps sums
about (FEATURES + UNITS + 1) * STEPS ~ 50 products of magnitude <= 1, so summation
order changes it by at most ~50 u ~ 3e-6; outputs and states use atol 1e-5.
Gradients sum over the batch and the time steps as well, with magnitudes up to ~10:
atol 1e-5 plus rtol 1e-4.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from pytest_rnn.cudnn import USE_CUDNN_TRUE_ERROR, cudnn_sequence_output, fused_route
from pytest_rnn.models import build_random, copy_layer, rnn_layer

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.compare import to_numpy
from pytest_rnn.plugin.markers import requires_keras

pytestmark = [pytest.mark.gpu, requires_keras("use_cudnn")]

BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 4
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
KINDS = ("lstm", "gru")
OUT_ATOL = 1e-5
GRAD_ATOL, GRAD_RTOL = 1e-5, 1e-4
# right-padded: lengths 6, 4, 2, 5 (no fully masked row: cuDNN refuses those)
RIGHT_PADDED = np.arange(STEPS)[None, :] < np.array([6, 4, 2, 5])[:, None]
LEFT_PADDED = RIGHT_PADDED[:, ::-1].copy()



def require_cudnn(layer: keras.layers.Layer, kind: str) -> None:
    """Skip, naming the route, where this backend has no cuDNN kernel for ``kind``."""
    route, reasons = fused_route(layer, gpu_available=True)
    if route != "cudnn" and route != "bidirectional_cudnn":
        pytest.skip(f"Keras's {backends.name()} backend runs no cuDNN {kind}: use_cudnn=True "
                    f"takes its {route} route ({'; '.join(reasons) or 'no cuDNN kernel'})")


def twins(kind: str, seed: int, **kwargs) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """(cuDNN layer, generic layer) with identical random weights."""
    layer = rnn_layer(kind, UNITS, use_cudnn=True, **kwargs)
    require_cudnn(layer, kind)
    cudnn = build_random(layer, INPUT_SHAPE, seed)
    return cudnn, copy_layer(cudnn, INPUT_SHAPE, use_cudnn=False)


def mask_takes_cudnn(layer: keras.layers.Layer, mask: np.ndarray) -> bool:
    """Whether ``use_cudnn=True`` runs cuDNN with ``mask`` on this backend (else it raises)."""
    return fused_route(layer, gpu_available=True, mask=mask)[0] == "cudnn"


assert_close = functools.partial(compare.assert_allclose, atol=OUT_ATOL,
                                 labels=("cuDNN", "generic"))


def output_names(kind: str) -> list[str]:
    return ["output", "h"] + (["c"] if kind == "lstm" else [])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_outputs_and_states_match(kind, return_sequences, go_backwards, x, rnn_seed):
    cudnn, generic = twins(kind, rnn_seed, return_sequences=return_sequences,
                           return_state=True, go_backwards=go_backwards)
    for name, a, b in zip(output_names(kind), compare.leaves(cudnn(x)), compare.leaves(generic(x)),
                          strict=True):
        assert_close(a, b, f"{kind} {name} (return_sequences={return_sequences}, "
                           f"go_backwards={go_backwards})")


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state_is_used_the_same_way(kind, x, rnn_rng, rnn_seed):
    cudnn, generic = twins(kind, rnn_seed, return_sequences=True, return_state=True)
    states = [rnn_rng.normal(size=(BATCH, UNITS)).astype("float32")
              for _ in range(2 if kind == "lstm" else 1)]
    with_state = compare.leaves(cudnn(x, initial_state=states))
    zero_state = compare.leaves(cudnn(x))
    assert np.abs(with_state[0][:, 0] - zero_state[0][:, 0]).max() > 1e-3, (
        "the initial state does not change the first output: the comparison would be vacuous"
    )
    for name, a, b in zip(output_names(kind), with_state,
                          compare.leaves(generic(x, initial_state=states)), strict=True):
        assert_close(a, b, f"{kind} {name} with initial_state")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_gradients_match(kind, go_backwards, x, rnn_rng, rnn_seed):
    cudnn, generic = twins(kind, rnn_seed, return_sequences=True, go_backwards=go_backwards)
    projection = rnn_rng.normal(size=(BATCH, STEPS, UNITS)).astype("float32")

    def grads(layer):
        def loss(inputs):  # the projection on the layer's device (a CUDA tensor on PyTorch)
            outputs = layer(inputs, training=True)
            return keras.ops.sum(outputs * keras.ops.convert_to_tensor(projection))

        _, weights, inputs = backends.value_and_grad(loss, layer.trainable_weights, [x])
        return inputs + weights

    names = ["inputs"] + [w.path for w in cudnn.trainable_weights]
    for name, a, b in zip(names, grads(cudnn), grads(generic), strict=True):
        assert_close(a, b, f"{kind} d(loss)/d({name}), go_backwards={go_backwards}",
                     atol=GRAD_ATOL, rtol=GRAD_RTOL)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_right_padded_mask_differs_only_where_documented(kind, go_backwards, x, rnn_seed):
    cudnn, generic = twins(kind, rnn_seed, return_sequences=True, return_state=True,
                           go_backwards=go_backwards)
    if not mask_takes_cudnn(cudnn, RIGHT_PADDED):
        with pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
            cudnn(x, mask=RIGHT_PADDED)
        return
    got = compare.leaves(cudnn(x, mask=RIGHT_PADDED))
    want = compare.leaves(generic(x, mask=RIGHT_PADDED))
    for name, a, b in zip(output_names(kind)[1:], got[1:], want[1:], strict=True):
        assert_close(a, b, f"{kind} final {name} with a right-padded mask")
    expected = cudnn_sequence_output(want[0], RIGHT_PADDED, go_backwards=go_backwards)
    assert_close(got[0], expected, f"{kind} sequence output with a right-padded mask "
                                   f"(zeros at padded steps), go_backwards={go_backwards}")
    padded = ~(RIGHT_PADDED[:, ::-1] if go_backwards else RIGHT_PADDED)
    if not go_backwards:  # the generic loop repeats the last output there: a real difference
        assert np.abs(want[0][padded]).min() > 0, (
            "generic kernel wrote zeros at padded steps: the documented difference is gone"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_non_right_padded_mask_never_silently_takes_cudnn(kind, x, rnn_seed):
    cudnn, generic = twins(kind, rnn_seed, return_sequences=True)
    with pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
        cudnn(x, mask=LEFT_PADDED)
    auto = copy_layer(cudnn, INPUT_SHAPE, use_cudnn="auto")
    want = to_numpy(generic(x, mask=LEFT_PADDED))
    # Eagerly, "auto" checks the mask and runs the generic kernel: the same ops as
    # use_cudnn=False on the same device, hence (near) bit-identical results.
    assert_close(to_numpy(auto(x, mask=LEFT_PADDED)), want,
                 f"{kind} 'auto' with a left-padded mask (must be the generic result)",
                 atol=1e-6)
    if backends.name() == "tensorflow":
        # Inside a tf.function the mask check is a graph assertion: the call fails loudly.
        import tensorflow as tf

        traced = backends.compile_function(lambda: auto(x, mask=LEFT_PADDED))
        with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
            traced()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "right_padded"])
def test_bidirectional_matches(kind, masked, x, rnn_seed):
    cudnn = keras.layers.Bidirectional(
        rnn_layer(kind, UNITS, use_cudnn=True, return_sequences=True, return_state=True))
    require_cudnn(cudnn.forward_layer, kind)
    build_random(cudnn, INPUT_SHAPE, rnn_seed)
    generic = keras.layers.Bidirectional(
        rnn_layer(kind, UNITS, use_cudnn=False, return_sequences=True, return_state=True))
    generic.build(INPUT_SHAPE)
    generic.set_weights(cudnn.get_weights())
    mask = RIGHT_PADDED if masked else None
    if masked and not mask_takes_cudnn(cudnn.forward_layer, mask):
        with pytest.raises(ValueError, match=USE_CUDNN_TRUE_ERROR):
            cudnn(x, mask=mask)
        return
    got, want = compare.leaves(cudnn(x, mask=mask)), compare.leaves(generic(x, mask=mask))
    assert len(got) == len(want)
    # Bidirectional zeroes padded outputs on the generic path too, so all values agree.
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_close(a, b, f"Bidirectional({kind}) output {index}, mask={masked}")


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_with_directions_as_layers_matches(kind, x, rnn_seed):
    """Input dropout keeps a Bidirectional out of the fused two-direction call (JAX,
    PyTorch), so each direction runs as its own cuDNN layer, the backward one with
    ``go_backwards=True``; at inference its result must still equal the generic kernels'."""
    def wrapped(use_cudnn):
        return keras.layers.Bidirectional(rnn_layer(
            kind, UNITS, use_cudnn=use_cudnn, dropout=0.25, return_sequences=True))

    cudnn = wrapped(True)
    require_cudnn(cudnn.forward_layer, kind)
    build_random(cudnn, INPUT_SHAPE, rnn_seed)
    generic = wrapped(False)
    generic.build(INPUT_SHAPE)
    generic.set_weights(cudnn.get_weights())
    assert_close(to_numpy(cudnn(x)), to_numpy(generic(x)),
                 f"Bidirectional({kind}) with its directions as layers (dropout=0.25, "
                 "inference), sequence output")
