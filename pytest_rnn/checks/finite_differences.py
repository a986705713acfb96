"""Gradients of any Keras layer or model checked against central differences in float64.

Why: users' own cells have no NumPy reference, yet a hand-written ``call`` can still
have a wrong backward pass (a ``stop_gradient`` in the wrong place, a custom gradient
that drops a term). Central differences of the layer's own forward pass need no
reference: if the backend's gradient disagrees with how the loss actually changes,
the backward pass is wrong.

How: a float64 twin of the layer is rebuilt from its serialized config with every
``dtype`` set to ``"float64"`` and given the layer's weights, so both the gradient and
the differences are computed in double precision (a backend that computes it in float32
anyway gets the float32 step and tolerance, and the message says so: JAX and PyTorch,
whose Keras ops compute float64 operands in float32, :func:`keras_float64_promotion`).
The loss is the fixed ``L = sum_k sum(W_k * returned_k)`` of :mod:`pytest_rnn.checks.reference_grad`
(``W_k`` standard normals from ``numpy.random.default_rng(seed)``). For each trainable
weight, and for the inputs of each time step separately, a random unit direction
``v`` is drawn and the directional derivative the backend gives, ``<grad L, v>``, is
compared with ``(L(p + h v) - L(p - h v)) / (2 h)``. A weight whose check fails is
then checked column by column to name the unit (or gate column) that differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn.checks import compare

#: unit roundoff of float64 and float32
EPS64 = 2.0**-53
EPS32 = 2.0**-24

#: operations a float64 loss value has passed through, as a generous count (matmuls of
#: length <= 64 per step, <= 16 steps, elementwise work and the final sum)
ROUNDING_DEPTH = 1000

#: bound on how much a unit-norm change of one tensor amplifies through the third
#: derivative of the loss, relative to the loss's scale (tanh/sigmoid derivatives are
#: <= 1 and the weights of a tiny test layer are O(1))
THIRD_DERIVATIVE_GAIN = 27.0



def central_step(eps: float = EPS64) -> float:
    """The central-difference step minimising truncation ``h**2 G S / 6`` plus rounding
    ``c eps S / h``: ``h = (3 c eps / G)**(1/3)`` (see :func:`fd_tolerance`)."""
    return (3.0 * ROUNDING_DEPTH * eps / THIRD_DERIVATIVE_GAIN) ** (1.0 / 3.0)


#: the float64 step, about 2.3e-5
STEP = central_step(EPS64)


def fd_tolerance(scale: float, eps: float = EPS64) -> float:
    """Absolute tolerance of one directional check, for a loss whose terms sum to ``scale``.

    Derivation: the central difference of ``L`` along a unit direction errs by the
    truncation term ``h**2 / 6 * |L'''|`` plus rounding ``c * eps * S / h``, with
    ``S = sum_k sum(|W_k * returned_k|)`` the scale of the loss's terms, ``eps = 2**-53``
    and ``c`` = :data:`ROUNDING_DEPTH`; taking ``|L'''| <= G S`` with ``G`` =
    :data:`THIRD_DERIVATIVE_GAIN`, the step ``h = (3 c eps / G)**(1/3)`` (:data:`STEP`,
    about 2.3e-5) minimises the sum, which is then about 7e-9 S. The tolerance is ten
    times that bound (S counted as at least 1); the backend's float64
    gradient itself errs by about ``c eps S``, negligible beside it. Measured on the
    layers of ``suites/test_contract_keras_layers.py`` and the example's cell, the
    differences stay below 0.2% of the tolerance. A wrong backward pass changes a
    directional derivative by a fraction of S, about 1e5 times the tolerance.

    Where the backend cannot compute in float64 (JAX, PyTorch:
    :func:`keras_float64_promotion`), the
    same formulas with ``eps = 2**-24`` give ``h`` about 0.019 and a tolerance of about
    0.05 S: still far below a dropped or halved gradient term, but blind to small errors.
    """
    step = central_step(eps)
    s = max(scale, 1.0)
    bound = step**2 / 6.0 * THIRD_DERIVATIVE_GAIN * s + ROUNDING_DEPTH * eps * s / step
    return 10.0 * bound


def _set_dtype(config: Any, dtype: str) -> Any:
    if isinstance(config, dict):
        return {k: (dtype if k == "dtype" and v is not None else _set_dtype(v, dtype))
                for k, v in config.items()}
    if isinstance(config, list):
        return [_set_dtype(v, dtype) for v in config]
    return config


def float64_twin(layer: Any, input_shape: tuple[int, ...], custom_objects: dict | None = None):
    """A copy of built ``layer`` (or model) computing in float64 with the same weight values.

    Rebuilt from ``keras.saving.serialize_keras_object`` with every ``dtype`` entry set to
    ``"float64"``. ValueError naming the weights that stay in another dtype (a layer that
    hard-codes its dtype cannot be checked this way)."""
    import keras

    config = _set_dtype(keras.saving.serialize_keras_object(layer), "float64")
    with keras.saving.custom_object_scope(custom_objects or {}):
        twin = keras.saving.deserialize_keras_object(config)
    if not twin.built:
        twin.build(input_shape)
    if len(twin.weights) != len(layer.weights):
        raise ValueError(
            f"the float64 copy of {layer.name!r} has {len(twin.weights)} weights after building, "
            f"the layer {len(layer.weights)}; build the copy differently or check in float32"
        )
    twin.set_weights([np.asarray(w, dtype=np.float64) for w in compare.weight_values(layer)])
    wrong = [f"{w.path} ({w.dtype})" for w in twin.weights if w.dtype != "float64"]
    if wrong:
        raise ValueError(
            f"cannot make a float64 copy of {layer.name!r}: rebuilt from its config with "
            f"dtype='float64' these weights stay in another dtype: {', '.join(wrong)}"
        )
    return twin


@dataclass
class _Check:
    name: str
    analytic: float
    numeric: float
    tol: float

    @property
    def bad(self) -> bool:
        return not abs(self.analytic - self.numeric) <= self.tol


def keras_float64_promotion() -> str:
    """The dtype Keras computes an op of two float64 tensors in on the active backend
    (``keras.backend.result_type("float64", "float64")``): ``"float64"`` on TensorFlow;
    ``"float32"`` elsewhere, since Keras aligns every other backend with JAX's default of
    no 64-bit types, so ``keras.ops.matmul`` of float64 tensors runs in float32 there
    even where the framework has float64 (PyTorch; JAX with ``JAX_ENABLE_X64``) and a
    layer's float64 outputs carry float32 rounding."""
    import keras

    return str(keras.backend.result_type("float64", "float64"))


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v)


def assert_gradients_match_finite_differences(
    layer_or_model: Any,
    inputs: Any,
    *,
    seed: int = 0,
    custom_objects: dict[str, Any] | None = None,
    **call_kwargs: Any,
) -> None:
    """Assert the backend's gradients of ``layer_or_model`` agree with central differences.

    ``inputs``: a float array (batch, steps, features) or any batch-major array the layer
    takes; with ``ndim >= 3`` axis 1 is time and each step's inputs get their own check.
    ``call_kwargs`` go to every call (``mask=`` ...; ``training`` defaults to False, so
    dropout stays off). ``custom_objects``: classes the float64 copy needs to deserialize.

    Checked in float64 (:func:`float64_twin`), along random unit directions seeded by
    ``seed``: all trainable weights together (a wrong gradient of any weight changes the
    directional derivative by about its error over the square root of the number of
    weights, still orders of magnitude above the tolerance), then the inputs of each step
    (all steps' perturbed copies go through the layer as one batch: recurrent layers
    treat samples independently). When the weights' check fails, each weight, and each of
    its columns, is checked alone to name what differs. Step and tolerance:
    :data:`STEP` and :func:`fd_tolerance` (derivations there). The failure names the
    weight and columns or the input step, the directional derivative the backend gives
    and the one the loss shows, and the first differing input step.
    """
    import keras

    from pytest_rnn import backends

    x32 = compare.to_numpy(inputs)
    layer = layer_or_model
    if not layer.built:
        layer.build(x32.shape)
    twin = float64_twin(layer, x32.shape, custom_objects)
    x = x32.astype(np.float64)
    batch = x.shape[0]
    call_kwargs.setdefault("training", False)
    returned = [compare.to_numpy(r)
                for r in compare.keras_tree().flatten(twin(x, **call_kwargs))]
    promoted = keras_float64_promotion()
    in_float64 = promoted == "float64" and all(r.dtype == np.float64 for r in returned)
    eps, dtype = (EPS64, "float64") if in_float64 else (EPS32, "float32")
    precision = dtype if in_float64 else (
        f"float32 (the {keras.backend.backend()} backend computes the float64 copy in "
        f"float32: its outputs are {returned[0].dtype} and Keras promotes float64 operands "
        f"of its ops such as matmul to {promoted})")
    step = central_step(eps)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=r.shape) for r in returned]
    w_tensors = [keras.ops.convert_to_tensor(w, dtype=dtype) for w in weights]

    def loss_fn(xx):
        outs = compare.keras_tree().flatten(twin(xx, **call_kwargs))
        return sum(keras.ops.sum(keras.ops.cast(o, dtype) * w)
                   for o, w in zip(outs, w_tensors, strict=True))

    def loss_value() -> float:
        return float(compare.to_numpy(loss_fn(x)))

    def losses_of_copies(copies: list[np.ndarray]) -> list[float]:
        """The loss of each copy of ``x``, from one call on all copies stacked as a batch."""
        kwargs = dict(call_kwargs)
        if kwargs.get("mask") is not None:
            kwargs["mask"] = np.concatenate([np.asarray(kwargs["mask"])] * len(copies))
        outs = [np.asarray(compare.to_numpy(o), dtype=np.float64)
                for o in compare.keras_tree().flatten(twin(np.concatenate(copies), **kwargs))]
        return [float(sum(np.sum(w * o[i * batch : (i + 1) * batch])
                          for w, o in zip(weights, outs, strict=True)))
                for i in range(len(copies))]

    scale = float(sum(np.sum(np.abs(w * r)) for w, r in zip(weights, returned, strict=True)))
    tol = fd_tolerance(scale, eps)
    variables = list(twin.trainable_weights)
    # messages name the caller's weights (the twin's paths carry other name suffixes)
    originals = list(layer.trainable_weights)
    paths = ([v.path for v in originals] if len(originals) == len(variables)
             else [v.path for v in variables])
    _, g_vars, g_inputs = backends.value_and_grad(loss_fn, variables, [x])
    label = f"{type(layer).__name__} {layer.name!r}"
    bases = [np.asarray(compare.to_numpy(v), dtype=np.float64) for v in variables]

    def weights_check(directions: list[np.ndarray | None], name: str) -> _Check:
        analytic, numeric = 0.0, []
        for sign in (1.0, -1.0):
            for var, base, d in zip(variables, bases, directions, strict=True):
                if d is not None:
                    var.assign(base + sign * step * d)
            numeric.append(loss_value())
            for var, base, d in zip(variables, bases, directions, strict=True):
                if d is not None:
                    var.assign(base)
        for grad, d in zip(g_vars, directions, strict=True):
            if d is not None and grad is not None:
                analytic += float(np.sum(grad * d))
        return _Check(name, analytic, (numeric[0] - numeric[1]) / (2 * step), tol)

    checks: list[_Check] = []
    details: list[str] = []
    if variables:
        joint = [rng.normal(size=b.shape) for b in bases]
        norm = np.sqrt(sum(np.sum(d * d) for d in joint))
        joint = [d / norm for d in joint]
        check = weights_check(joint, "all trainable weights together")
        checks.append(check)
        if check.bad:  # which weight, which columns
            for i, var in enumerate(variables):
                shape = tuple(var.shape)
                alone = [None] * len(variables)
                alone[i] = _unit(rng, shape)
                one = weights_check(alone, paths[i])
                if not one.bad:
                    continue
                checks.append(one)
                cols = []
                for col in range(shape[-1] if shape else 0):
                    d = np.zeros(shape)
                    d[..., col] = _unit(rng, shape[:-1] + (1,))[..., 0]
                    alone[i] = d
                    if weights_check(alone, paths[i]).bad:
                        cols.append(col)
                if cols:
                    details.append(f"  {paths[i]}: columns (units) {cols} of {shape[-1]} differ")
    directions = []
    if x.ndim >= 3:
        for t in range(x.shape[1]):
            d = np.zeros(x.shape)
            d[:, t] = _unit(rng, x[:, t].shape)
            directions.append((f"inputs at step {t}", d))
    else:
        directions.append(("inputs", _unit(rng, x.shape)))
    copies = [x + sign * step * d for _, d in directions for sign in (1.0, -1.0)]
    values = losses_of_copies(copies)
    step_checks = [
        _Check(name, float(np.sum(g_inputs[0] * d)),
               (values[2 * i] - values[2 * i + 1]) / (2 * step), tol)
        for i, (name, d) in enumerate(directions)
    ]
    checks += step_checks
    bad = [c for c in checks if c.bad]
    if not bad:
        return
    lines = [
        f"  {c.name}: backend gives {c.analytic:.9g}, central difference {c.numeric:.9g} "
        f"(|diff| {abs(c.analytic - c.numeric):.3g})"
        for c in bad
    ]
    bad_steps = [i for i, c in enumerate(step_checks) if c.bad]
    if bad_steps and len(step_checks) > 1:
        story = (f"  input gradients differ at steps {bad_steps}; first differing step "
                 f"{bad_steps[0]}")
        good_tail = []
        for t in range(len(step_checks) - 1, -1, -1):
            if step_checks[t].bad:
                break
            good_tail.append(t)
        if good_tail:
            story += (f"; they agree at the last steps {sorted(good_tail)}: gradient stops "
                      f"flowing back beyond step {good_tail[-1]} (in input order)")
        lines.append(story)
    raise AssertionError(
        f"{label}: the backend's gradient disagrees with central differences of its own "
        f"forward pass in {precision} (loss L = sum_k sum(W_k * returned_k), W_k standard normals "
        f"seeded {seed}; directional derivatives along random unit directions; step "
        f"{step:.3g}, tolerance {tol:.3g}), so its backward pass is wrong:\n"
        + "\n".join(lines + details)
    )
