"""When LSTM and GRU take a fused kernel on JAX and PyTorch, checked on any host.

Keras 3.15 hands LSTM/GRU to the backend's own ``lstm``/``gru`` (and, for
``Bidirectional``, ``bidirectional_lstm``/``bidirectional_gru``) in some configurations:
on JAX a cuDNN LSTM (GPU only) and a fused ``lax.scan`` GRU (every device); on PyTorch a
cuDNN kernel on CUDA and a fused loop elsewhere. The rules are written down in
``pytest_rnn/backends/jax.py`` and ``torch.py`` (``kernel_route``); every rule is checked
here against what Keras really does (``observed_routing`` records each fused call, and
on JAX can make Keras believe a GPU is present), and the fused result must equal the
generic loop's within float32 rounding. TensorFlow's routing is pinned by
``test_cudnn_eligibility.py``; under TensorFlow this module skips, saying so.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from pytest_rnn.models import build_random, copy_layer, rnn_layer

from pytest_rnn import backends
from pytest_rnn.checks import compare

BATCH, STEPS, FEATURES, UNITS = 3, 5, 2, 3
INPUT_SHAPE = (BATCH, STEPS, FEATURES)
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)
#: fused and generic loops order the same float32 sums differently: 5 steps of sums of
#: FEATURES + UNITS + 1 = 6 terms, at most 6 * eps each per step, doubled for the activations
ATOL = 2 * STEPS * (FEATURES + UNITS + 1) * float(np.finfo(np.float32).eps)


@pytest.fixture(autouse=True, scope="module")
def _only_jax_and_torch():
    try:
        backends.kernel_route(keras.layers.LSTM(1), gpu_available=False)
    except backends.Unsupported as exc:
        pytest.skip(f"{exc}; this module pins the JAX and PyTorch routing "
                    "(run it with KERAS_BACKEND=jax or torch)")


CONFIGS = [
    ("defaults", {}),
    ("input_dropout", {"dropout": 0.5}),
    ("stateful", {"stateful": True}),
    ("use_cudnn_false", {"use_cudnn": False}),
    ("use_cudnn_true", {"use_cudnn": True}),
    ("recurrent_dropout", {"recurrent_dropout": 0.2}),
    ("relu", {"activation": "relu"}),
    ("hard_sigmoid", {"recurrent_activation": "hard_sigmoid"}),
    ("unroll", {"unroll": True}),
    ("no_bias", {"use_bias": False}),
    ("reset_before", {"reset_after": False}),
]


def config_cases():
    return [pytest.param(kind, spec, id=f"{kind}-{name}")
            for kind in ("lstm", "gru") for name, spec in CONFIGS
            if kind == "gru" or "reset_after" not in spec]


def _gpu_cases():
    simulate = [False, True] if backends.name() == "jax" else [False]
    return [pytest.param(s, id="simulated_gpu" if s else "cpu") for s in simulate]


@pytest.fixture
def gpu(simulate_gpu, rnn_device) -> bool:
    """Whether Keras sees a GPU in this case: simulated, or this host's own (the ``cpu``
    case runs on the host's real device, so on a GPU host it checks real cuDNN routing)."""
    return simulate_gpu or rnn_device.has_gpu


def _host(gpu: bool, simulate_gpu: bool) -> str:
    return "simulated GPU" if simulate_gpu else "GPU" if gpu else "CPU"


def observe(layer, x, *, simulate_gpu, **call_kwargs):
    """(calls recorded, error or None) of one eager call."""
    with backends.observed_routing(simulate_gpu=simulate_gpu) as calls:
        try:
            layer(x, **call_kwargs)
        except ValueError as exc:
            return list(calls), exc
    return list(calls), None


def _expected_calls(route: str) -> list[str]:
    return [] if route in ("generic", "error") else [route]


@pytest.mark.parametrize("simulate_gpu", _gpu_cases())
@pytest.mark.parametrize(("kind", "spec"), config_cases())
def test_route_rules_agree_with_keras(kind, spec, simulate_gpu, gpu, x, rnn_seed):
    layer = build_random(rnn_layer(kind, UNITS, **spec), INPUT_SHAPE, rnn_seed)
    route, reasons = backends.kernel_route(layer, gpu_available=gpu)
    calls, error = observe(layer, x, simulate_gpu=simulate_gpu,
                           training="dropout" in spec)
    # a cuDNN call under simulation reports "no cuDNN here": Keras then falls back, and
    # with use_cudnn=True raises its error, after the cuDNN kernel was reached
    reached = [c for c in calls]
    want = _expected_calls(route)
    assert reached == want and (error is not None) == (
        route == "error" or (simulate_gpu and route.endswith("cudnn")
                             and spec.get("use_cudnn") is True)), (
        f"{backends.name()} {kind} {spec} on a {_host(gpu, simulate_gpu)} "
        f"host: kernel_route predicts {route!r} ({'; '.join(reasons) or 'fused'}) but Keras "
        f"reached {reached or 'no fused kernel'}"
        f"{f' and raised {error}' if error else ''}")


@pytest.mark.parametrize("simulate_gpu", _gpu_cases())
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_mask_keeps_the_generic_loop(kind, simulate_gpu, gpu, x, rnn_seed):
    layer = build_random(rnn_layer(kind, UNITS, return_sequences=True), INPUT_SHAPE, rnn_seed)
    route, reasons = backends.kernel_route(layer, gpu_available=gpu, mask=MASK)
    assert route == "generic" and any("mask" in r for r in reasons), (route, reasons)
    calls, error = observe(layer, x, simulate_gpu=simulate_gpu, mask=MASK)
    assert calls == [] and error is None, f"a masked {kind} reached {calls} ({error})"


@pytest.mark.parametrize("simulate_gpu", _gpu_cases())
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_bidirectional_routing(kind, masked, simulate_gpu, gpu, x, rnn_seed):
    wrapped = keras.layers.Bidirectional(rnn_layer(kind, UNITS, return_sequences=True))
    build_random(wrapped, INPUT_SHAPE, rnn_seed)
    mask = MASK if masked else None
    route, _ = backends.kernel_route(wrapped, gpu_available=gpu, mask=mask)
    calls, error = observe(wrapped, x, simulate_gpu=simulate_gpu, mask=mask)
    # simulated, the fused bidirectional cuDNN call falls back to both directions as
    # layers, whose own (LSTM) cuDNN calls are then recorded too; on a real GPU it runs
    # (once per direction where the backend calls cuDNN per direction)
    if route == "bidirectional_cudnn" and simulate_gpu:
        want = ["bidirectional_cudnn", "cudnn", "cudnn"]
    elif route == "bidirectional_cudnn":
        want = ["bidirectional_cudnn"] * max(1, len(calls))
    else:
        want = _expected_calls(route) * 2
    assert calls == want and error is None, (
        f"{backends.name()} Bidirectional({kind}) {'masked' if masked else 'unmasked'}: "
        f"kernel_route predicts {route!r}, Keras reached {calls}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_fused_kernel_equals_the_generic_loop(kind, go_backwards, x, rnn_seed, rnn_device):
    """On this host, where a fused path runs (JAX's GRU scan, PyTorch's loops, cuDNN), its
    outputs, states and gradients equal ``use_cudnn=False``'s within :data:`ATOL` (scaled
    by the largest magnitude): same equations, different float32 summation order."""
    fused = build_random(rnn_layer(kind, UNITS, return_sequences=True, return_state=True,
                                   go_backwards=go_backwards), INPUT_SHAPE, rnn_seed)
    route, _ = backends.kernel_route(fused, gpu_available=rnn_device.has_gpu)
    if route == "generic":
        pytest.skip(f"{kind} takes no fused kernel on this host "
                    f"({rnn_device.describe()}) with {backends.name()}")
    generic = copy_layer(fused, INPUT_SHAPE, use_cudnn=False)
    weights = [np.random.default_rng(rnn_seed + k).normal(size=s).astype("float32")
               for k, s in enumerate([(BATCH, STEPS, UNITS)] + [(BATCH, UNITS)] *
                                     (2 if kind == "lstm" else 1))]

    def run(layer):
        def loss_and_outputs(v):
            outs = keras.tree.flatten(layer(v))
            return sum(keras.ops.sum(o * keras.ops.convert_to_tensor(w))
                       for o, w in zip(outs, weights, strict=True)), outs

        with backends.observed_routing(simulate_gpu=False) as calls:
            _, outs, g_vars, g_x = backends.value_and_grad(
                loss_and_outputs, layer.trainable_weights, [x], has_aux=True)
        return calls, [*compare.leaves(outs), *g_x, *g_vars]

    fused_calls, got = run(fused)
    generic_calls, want = run(generic)
    assert fused_calls and not generic_calls, (fused_calls, generic_calls)
    names = ["output"] + [f"state {i}" for i in range(len(weights) - 1)] + [
        "dL/d inputs"] + [f"dL/d {v.path}" for v in fused.trainable_weights]
    scale = max(1.0, max(float(np.abs(w).max()) for w in want))
    compare.assert_allclose(got, list(zip(names, want, strict=True)),
                            f"{backends.name()} {kind}: the fused kernel differs from the "
                            "generic loop", atol=ATOL * scale,
                            labels=("fused", "generic"))
