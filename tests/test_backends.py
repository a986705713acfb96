"""The backend seam takes gradients right, and importing it imports no framework.

Checked on a Dense layer, whose gradients are known in closed form: for
``L = sum(W * (x K + b))``, ``dL/dK = x^T W``, ``dL/db = sum_batch W`` and
``dL/dx = W K^T``. Inputs and weights are small integers, so float32 computes
every product and sum exactly and the comparison is exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pytest_rnn.checks.compare import to_numpy

ROOT = Path(__file__).resolve().parent.parent


def _dense_case():
    import keras

    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(2, 3)).astype("float32")
    w = rng.integers(-3, 4, size=(2, 4)).astype("float32")
    layer = keras.layers.Dense(4)
    layer.build((2, 3))
    layer.set_weights([rng.integers(-2, 3, size=(3, 4)).astype("float32"),
                       rng.integers(-2, 3, size=(4,)).astype("float32")])
    return layer, x, w


def _weighted_sum(outputs, w):
    """``sum(outputs * w)`` in the backend's tensors (PyTorch will not multiply its tensor
    that requires grad by a NumPy array)."""
    import keras

    return keras.ops.sum(outputs * keras.ops.convert_to_tensor(w))


def test_value_and_grad_gives_the_closed_form_gradients():
    import keras

    from pytest_rnn import backends

    layer, x, w = _dense_case()
    kernel = layer.kernel.numpy()
    unused = keras.Variable(np.ones(2, dtype="float32"), trainable=False)

    def loss_fn(inputs):
        return _weighted_sum(layer(inputs), w)

    loss, g_vars, g_inputs = backends.value_and_grad(
        loss_fn, [layer.kernel, layer.bias, unused], [x])
    np.testing.assert_array_equal(g_vars[0], x.T @ w)
    np.testing.assert_array_equal(g_vars[1], w.sum(axis=0))
    if backends.name() == "jax":  # jax.grad differentiates a pure function: zeros
        assert not g_vars[2].any(), "a variable the loss never reads must have zero gradient"
    else:
        assert g_vars[2] is None, "a variable the loss never reads must have no gradient"
    np.testing.assert_array_equal(g_inputs[0], w @ kernel.T)
    assert loss == float(np.sum((x @ kernel + layer.bias.numpy()) * w))
    assert all(g.dtype == np.float64 for g in (g_vars[0], g_vars[1], g_inputs[0]))


def test_gradients_without_inputs_and_an_unknown_backend_is_refused():

    from pytest_rnn import backends

    layer, x, w = _dense_case()
    _, grads = backends.gradients(lambda: _weighted_sum(layer(x), w), [layer.bias])
    np.testing.assert_array_equal(grads[0], w.sum(axis=0))
    with pytest.raises(backends.Unsupported, match="no module for Keras backend 'mxnet'"):
        backends.module("mxnet")


def test_compile_function_traces_once_and_matches_eager():
    from pytest_rnn import backends

    if backends.name() != "tensorflow":
        with pytest.raises(backends.Unsupported, match="tf.function"):
            backends.compile_function(lambda v: v)
        return
    layer, x, _ = _dense_case()
    traced = backends.compile_function(lambda v: layer(v), input_signature=[((None, 3),
                                                                              "float32")])
    np.testing.assert_array_equal(to_numpy(traced(x)), to_numpy(layer(x)))
    np.testing.assert_array_equal(to_numpy(traced(x[:1])), to_numpy(layer(x[:1])))


def test_importing_the_seam_imports_no_framework():
    code = textwrap.dedent("""
        import sys
        import pytest_rnn.backends
        loaded = [m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules]
        print(",".join(loaded))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert out.stdout.strip() == "", f"importing pytest_rnn.backends imported {out.stdout}"


@pytest.mark.slow
def test_the_jax_backend_gives_the_same_gradients_as_the_closed_form():
    """JAX in a subprocess (Keras picks its backend at import): jax.value_and_grad over the
    variables' values in a StatelessScope, through the same seam."""
    pytest.importorskip("jax", reason="jax is not installed; pip install jax to run this")
    code = textwrap.dedent("""
        import numpy as np, keras
        from tests.test_backends import _dense_case
        from pytest_rnn import backends
        assert backends.name() == "jax", backends.name()
        layer, x, w = _dense_case()
        loss, gv, gi = backends.value_and_grad(
            lambda v: keras.ops.sum(layer(v) * w), [layer.kernel, layer.bias], [x])
        np.testing.assert_array_equal(gv[0], x.T @ w)
        np.testing.assert_array_equal(gv[1], w.sum(axis=0))
        np.testing.assert_array_equal(gi[0], w @ np.asarray(layer.kernel).T)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_full_float32_switches_the_active_backend_and_restores_it():
    from pytest_rnn import backends

    before = backends.full_float32_enabled()
    with backends.full_float32():
        assert backends.full_float32_enabled(), f"{backends.name()}: TF32 still allowed"
    assert backends.full_float32_enabled() is before


def test_compiled_gradients_equal_eager_ones_where_the_backend_compiles():
    import keras

    from pytest_rnn import backends

    layer, x, w = _dense_case()
    try:
        compiled = backends.compiled_value_and_grad(
            lambda v: keras.ops.sum(layer(v) * w), [layer.kernel, layer.bias])
    except backends.Unsupported as exc:
        assert backends.name() == "torch", exc
        return
    loss, g_vars, g_x = compiled(x)
    want_loss, want_vars, want_x = backends.value_and_grad(
        lambda v: keras.ops.sum(layer(v) * w), [layer.kernel, layer.bias], [x])
    assert abs(loss - want_loss) <= 1e-5 * max(1.0, abs(want_loss))
    for got, want in zip([*g_vars, *g_x], [*want_vars, *want_x], strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_routing_seam_names_where_tensorflow_routing_lives():
    import keras

    from pytest_rnn import backends

    if backends.name() != "tensorflow":
        route, _ = backends.kernel_route(keras.layers.SimpleRNN(2), gpu_available=False)
        assert route == "generic"
        return
    with pytest.raises(backends.Unsupported, match="pytest_rnn.checks.cudnn"):
        backends.kernel_route(keras.layers.LSTM(2), gpu_available=False)
    with pytest.raises(backends.Unsupported, match="simulated_gpu_routing"):
        backends.observed_routing(simulate_gpu=False)


def test_cross_backend_tests_are_moved_last_in_a_stable_order():
    from pytest_rnn.plugin import markers

    class Item:
        def __init__(self, name, marked):
            self.name, self.marked = name, marked

        def get_closest_marker(self, name):
            return object() if self.marked and name == "cross_backend" else None

    items = [Item("a", True), Item("b", False), Item("c", True), Item("d", False)]
    markers.cross_backend_last(items)
    assert [i.name for i in items] == ["b", "d", "a", "c"]


@pytest.fixture(scope="module")
def tensorflow_and_keras():
    """Imported before any pytester fixture takes its module snapshot: an inner run that
    imported them would have them dropped afterwards, and their C extensions cannot be
    loaded twice in one process."""
    tf = pytest.importorskip("tensorflow")
    import keras  # noqa: F401

    return tf


def test_a_broken_xla_fails_the_compiled_tests_and_only_a_missing_one_skips(
        tensorflow_and_keras, pytester, monkeypatch):
    """Only a missing capability skips: an XLA that is built in but fails to compile turns
    the XLA-mode test red with the compiler's error, and a TensorFlow built without XLA
    skips it saying so."""
    tf = tensorflow_and_keras
    from pytest_rnn import backends

    if backends.name() != "tensorflow":
        pytest.skip("XLA is probed through TensorFlow's build here (JAX always compiles with it)")
    test = "suites/test_execution_modes.py::test_stateful_layer_carries_and_resets_state[xla]"
    root = Path(__file__).resolve().parents[1]
    real_function = tf.function

    def broken_xla(*args, jit_compile=None, **kwargs):
        if jit_compile:
            raise RuntimeError("injected: XLA compilation failed")
        return real_function(*args, jit_compile=jit_compile, **kwargs)

    monkeypatch.setattr(tf, "function", broken_xla)
    result = pytester.runpytest_inprocess(str(root / test), "-p", "no:randomly",
                                          "-p", "no:cacheprovider", f"--rootdir={root}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: injected: XLA compilation failed*"])
    monkeypatch.setattr(tf, "function", real_function)
    monkeypatch.setattr(tf.test, "is_built_with_xla", lambda: False)
    result = pytester.runpytest_inprocess(str(root / test), "-p", "no:randomly", "-rs",
                                          "-p", "no:cacheprovider", f"--rootdir={root}")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*this TensorFlow build has no XLA*"])


def test_convert_to_numpy_converts_every_backend_s_tensors_without_a_deprecation_warning():
    """Keras's own ``convert_to_numpy`` warns on PyTorch under NumPy 2 (its
    ``Tensor.__array__`` takes no ``copy``); the seam's conversion gives the same values
    on every backend and no DeprecationWarning."""
    import warnings

    import keras

    from pytest_rnn import backends

    value = keras.ops.convert_to_tensor(np.arange(6, dtype="float32").reshape(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        converted = backends.convert_to_numpy(value)
    assert isinstance(converted, np.ndarray)
    np.testing.assert_array_equal(converted, np.arange(6, dtype="float32").reshape(2, 3))
