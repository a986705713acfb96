"""The checks the layer contract asserts, and the comparisons they report with.

Each ``assert_*`` function here is the body of one test of
:class:`~pytest_rnn.checks.contract.RecurrentLayerContract`, without pytest: it
gets the layers the contract class made, the inputs it drew and the label that
names the layer in messages, and raises an AssertionError that lists every
difference (:func:`_difference` words each one). The test class decides what
applies (skips, opt-outs) and builds the layers; these say whether the layer
behaves.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from pytest_rnn import backends
from pytest_rnn.checks import compare
from pytest_rnn.checks.behaviours import MASK_LEAKS

#: Start of the DeprecationWarning NumPy 2 raises inside ``model.save()`` for every
#: Keras Variable (a regular expression): the round trip's save silences it and nothing else.
KERAS_VARIABLE_ARRAY_WARNING = r"__array__ implementation doesn't accept a copy keyword"
#: Learning rate of the one SGD step of :func:`assert_one_step_trains_every_weight`.
LEARNING_RATE = 0.1


def _difference(
    name: str,
    got: np.ndarray,
    want: np.ndarray,
    atol: float,
    steps: Sequence[int] | None = None,
    step_ndim: int = 1,
) -> str | None:
    """A line describing how ``got`` differs from ``want`` beyond ``atol``, or None.

    ``steps`` (for one sample's outputs over a selection of steps) names the steps;
    ``step_ndim`` is the number of axes of one step (3 for a ConvLSTM2D's rows, cols and
    filters), whose positions then read ``axis k``."""
    ndim = np.ndim(got)
    if steps is not None:
        lead: tuple[str, ...] = ("step",)
    elif step_ndim > 1:
        lead = {step_ndim + 2: ("batch", "step"), step_ndim + 1: ("batch",)}.get(ndim, ())
    else:
        lead = ()
    axes = None
    if lead:
        trailing = ("unit",) if step_ndim == 1 else tuple(
            f"axis {k}" for k in range(len(lead), ndim))
        axes = (lead + trailing)[:ndim] if len(lead + trailing) >= ndim else None
    return compare.difference(name, got, want, atol=atol, axes=axes, steps=steps,
                              labels=("got", "expected"))


def _config_changes(before: Any, after: Any, path: str = "") -> list[str]:
    """``path: old -> new`` for every leaf that differs between two configs (JSON-normalised,
    so a tuple that comes back as a list is no change)."""
    before, after = json.loads(json.dumps(before)), json.loads(json.dumps(after))
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after))
            for change in _config_changes(
                before.get(key, "<absent>"), after.get(key, "<absent>"), f"{path}.{key}"
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            change
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for change in _config_changes(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path.lstrip('.')}: {before!r} -> {after!r}"]


def ensure_built(layer: Any, shape: tuple) -> None:
    """Build ``layer`` for inputs of ``shape`` unless it is built already."""
    if not layer.built:
        layer.build(shape)


def _reset_states(layer: Any) -> None:
    """``reset_states()`` of a layer, or of every stateful layer inside a model."""
    if hasattr(layer, "reset_states"):
        layer.reset_states()
        return
    inner = [sub for sub in getattr(layer, "layers", []) if getattr(sub, "stateful", False)]
    if not inner:
        raise AssertionError(
            f"{type(layer).__name__} {layer.name!r} has no reset_states() and holds no "
            "stateful layer to reset"
        )
    for sub in inner:
        _reset_states(sub)


def assert_masking_equivalence(
    seq_layer: Any, last_layer: Any, x: np.ndarray, garbage: np.ndarray, *, atol: float,
    step_ndim: int, label: str,
) -> None:
    """Assert a padded batch under a mask gives what the unpadded sequences give.

    ``seq_layer`` returns sequences (and states), ``last_layer`` the last step; the
    latter gets the former's weights. Sample 1 of ``x`` is padded at its last two
    steps, sample 2 at its first two, with values from ``garbage``; ``step_ndim`` is
    the number of axes of one output step."""
    n_steps = x.shape[1]
    mask = np.ones(x.shape[:2], dtype=bool)
    mask[1, -2:] = False  # sample 1: the last two steps are padding
    mask[2, :2] = False  # sample 2: the first two steps are padding
    per_step = mask.reshape(mask.shape + (1,) * (x.ndim - 2))
    padded = np.where(per_step, x, garbage).astype(x.dtype)
    seq_out = compare.leaves(seq_layer(padded, mask=mask))
    ensure_built(last_layer, x.shape)
    last_layer.set_weights(compare.weight_values(seq_layer))
    last_out = compare.leaves(last_layer(padded, mask=mask))
    backwards = bool(getattr(seq_layer, "go_backwards", False))
    # the unpadded sequences: sample 0 whole, samples 1 and 2 (both two steps shorter)
    # batched together, each with its own valid steps
    problems = []
    for group in ([0], [1, 2]):
        valid_steps = [np.flatnonzero(mask[i]) for i in group]
        short = np.stack([x[i, v] for i, v in zip(group, valid_steps, strict=True)])
        ref_seq, ref_last = compare.leaves(seq_layer(short)), compare.leaves(last_layer(short))
        for j, (i, valid) in enumerate(zip(group, valid_steps, strict=True)):
            masked = sorted(set(range(n_steps)) - set(valid.tolist()))
            where = f"sample {i} (steps {masked} masked)" if masked else f"sample {i} (no mask)"
            got_seq, want_seq = seq_out[0][i], ref_seq[0][j]
            if backwards:  # returned in processing order: bring both back to input order
                got_seq, want_seq = got_seq[::-1], want_seq[::-1]
            checks = [
                ("last-step output", last_out[0][i], ref_last[0][j], None),
                ("sequence output", got_seq[valid], want_seq, valid.tolist()),
            ]
            checks += [
                (f"final state {k}", seq_out[1 + k][i], ref_seq[1 + k][j], None)
                for k in range(len(seq_out) - 1)
            ]
            for name, got, want, steps in checks:
                line = _difference(name, got, want, atol, steps, step_ndim)
                if line:
                    problems.append(f"  {where}, {line}")
    if problems:
        raise AssertionError(
            f"{label}: a padded sequence with a mask differs from the same sequence without "
            f"its padding (padded steps hold other values, so they {MASK_LEAKS}):\n"
            + "\n".join(problems)
        )


def assert_stateful_halves(
    stateful: Any, plain: Any, x: np.ndarray, *, atol: float, step_ndim: int, label: str
) -> None:
    """Assert ``stateful`` fed the two halves of ``x`` equals ``plain`` (same weights) on all
    of it, and gives its first result again after ``reset_states()``."""
    steps = x.shape[1]
    half = steps // 2
    stateful(x[:, :half])  # builds it (for this batch size) ...
    plain(x)
    plain.set_weights(compare.weight_values(stateful))
    _reset_states(stateful)  # ... and the build call moved its state
    full = compare.leaves(plain(x))
    first = compare.leaves(stateful(x[:, :half]))
    second = compare.leaves(stateful(x[:, half:]))
    _reset_states(stateful)
    again = compare.leaves(stateful(x[:, :half]))
    checks = [
        ("outputs of the two halves, concatenated",
         np.concatenate([first[0], second[0]], axis=1), full[0]),
    ]
    checks += [
        (f"state {k} after the second half", second[1 + k], full[1 + k])
        for k in range(len(full) - 1)
    ]
    checks += [
        (f"first-half {'output' if k == 0 else f'state {k - 1}'} after reset_states()",
         again[k], first[k])
        for k in range(len(first))
    ]
    problems = [line for name, got, want in checks
                if (line := _difference(name, got, want, atol, step_ndim=step_ndim))]
    if problems:
        raise AssertionError(
            f"{label} fed steps [0, {half}) then [{half}, {steps}) differs from one call on "
            f"all {steps} steps with the same weights (expected: the second half continues "
            "from the first half's states; after reset_states() the first half gives its first "
            "result again):\n  "
            + "\n  ".join(problems)
        )


def assert_serialization_round_trip(
    layer: Any, x: np.ndarray, tmp_path: Any, *, label: str,
    custom_objects: dict[str, Any] | None = None,
) -> None:
    """Assert ``layer`` rebuilt from its serialized config, and a model holding it saved to a
    ``.keras`` file under ``tmp_path`` and loaded, compute exactly what it computes."""
    before = compare.leaves(layer(x))
    config = keras.saving.serialize_keras_object(layer)
    try:
        text = json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{label}: its config is not JSON-serialisable ({exc})") from None
    try:
        with keras.saving.custom_object_scope(custom_objects or {}):
            clone = keras.saving.deserialize_keras_object(json.loads(text))
    except Exception as exc:
        raise AssertionError(
            f"{label} cannot be rebuilt from its serialized config: {type(exc).__name__}: "
            f"{exc}. Does every class define get_config() with all constructor arguments "
            "and carry @keras.saving.register_keras_serializable() (or appear in "
            "custom_objects)?"
        ) from None
    clone(x)
    problems = []
    if len(clone.weights) != len(layer.weights):
        raise AssertionError(
            f"{label}: rebuilt from its config it has {len(clone.weights)} weights, the "
            f"original {len(layer.weights)}"
        )
    clone.set_weights(compare.weight_values(layer))
    changed = _config_changes(layer.get_config(), clone.get_config())
    if changed:
        problems.append("get_config() of the rebuilt layer differs: " + "; ".join(changed))
    problems += _same_outputs("rebuilt from get_config()", clone(x), before)

    inputs = keras.Input(shape=x.shape[1:])
    # a flat list of outputs: Keras < 3.4 rejects nested outputs (stacked cells' states)
    model = keras.Model(inputs, compare.flatten(layer(inputs)))
    path = tmp_path / "contract_round_trip.keras"
    with warnings.catch_warnings():
        # Keras's own: saving hands each Variable to np.array, whose `copy` keyword its
        # __array__ does not take; any model.save() warns so under NumPy 2
        warnings.filterwarnings("ignore", KERAS_VARIABLE_ARRAY_WARNING, DeprecationWarning)
        model.save(path)
    try:
        loaded = keras.saving.load_model(path, custom_objects=custom_objects)
    except Exception as exc:
        raise AssertionError(
            f"{label}: a model holding it was saved to {path.name} but does not load: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    problems += _same_outputs("saved to a .keras file and loaded", loaded(x), before)
    if problems:
        raise AssertionError(
            f"{label} does not survive serialization unchanged (same weights, same inputs; "
            "outputs must match exactly; different outputs with an equal config usually "
            "mean get_config() leaves out a constructor argument):\n  "
            + "\n  ".join(problems)
        )


def _same_outputs(how: str, outputs: Any, before: Sequence[np.ndarray]) -> list[str]:
    after = compare.leaves(outputs)
    if len(after) != len(before):
        return [f"{how}: returns {len(after)} tensors, the original {len(before)}"]
    names = ["output"] + [f"state {k}" for k in range(len(before) - 1)]
    return [
        f"{how}: {line}"
        for name, got, want in zip(names, after, before, strict=True)
        if (line := _difference(name, got, want, 0.0))
    ]


def assert_one_step_trains_every_weight(
    layer: Any, x: np.ndarray, rng: np.random.Generator, *, label: str
) -> None:
    """Assert one SGD step (learning rate :data:`LEARNING_RATE`) on a mean-squared-error
    loss against a random target drawn from ``rng`` gives every trainable weight of
    ``layer`` (which returns sequences) a finite non-zero gradient and moves it, and
    the output and the loss stay finite."""
    y = compare.leaves(layer(x))[0]
    if not np.isfinite(y).all():
        raise AssertionError(f"{label}: the output holds {int((~np.isfinite(y)).sum())} "
                             f"NaN/Inf values of {y.size} on standard-normal inputs")
    weights = list(layer.trainable_weights)
    if not weights:
        raise AssertionError(f"{label} has no trainable weights; nothing can learn")
    target = rng.normal(size=y.shape).astype("float32")
    target_tensor = keras.ops.convert_to_tensor(target)  # PyTorch: no NumPy in autograd

    def mse():
        out = compare.flatten(layer(x, training=True))[0]
        return keras.ops.mean(keras.ops.square(out - target_tensor))

    loss, grads = backends.gradients(mse, weights)
    before = [np.array(compare.to_numpy(w)) for w in weights]
    for weight, grad, old in zip(weights, grads, before, strict=True):
        if grad is not None:
            weight.assign((old - LEARNING_RATE * grad).astype(old.dtype))
    after = [compare.to_numpy(w) for w in weights]
    problems = []
    for weight, grad, old, new in zip(weights, grads, before, after, strict=True):
        name = getattr(weight, "path", None) or weight.name
        if grad is None:
            problems.append(f"{name} {tuple(weight.shape)}: no gradient (the forward pass "
                            "never uses it)")
            continue
        g = grad
        if not np.isfinite(g).all():
            problems.append(f"{name}: {int((~np.isfinite(g)).sum())} NaN/Inf gradient values")
        elif not g.any():
            problems.append(f"{name} {tuple(weight.shape)}: gradient is exactly zero")
        elif not np.isfinite(new).all():
            problems.append(f"{name}: NaN/Inf after one step of learning rate {LEARNING_RATE}")
        elif np.array_equal(old, new):
            problems.append(f"{name}: did not move after one step (max |grad| "
                            f"{np.abs(g).max():.3g})")
    loss_after = float(np.mean((compare.leaves(layer(x))[0] - target) ** 2))
    if not np.isfinite(loss_after):
        problems.append(f"loss after one step is {loss_after} (was {float(loss):.6g})")
    if problems:
        raise AssertionError(
            f"{label}: one SGD step on a mean-squared-error loss (learning rate "
            f"{LEARNING_RATE}) does not train every weight:\n  " + "\n  ".join(problems)
        )


def assert_traced_call_matches_eager(
    layer: Any, x: np.ndarray, rng: np.random.Generator, *, atol: float, label: str
) -> None:
    """Assert the traced call of ``layer`` and the traced gradients of
    ``L = sum_k sum(W_k * returned_k)`` (``W_k`` drawn from ``rng``) with respect to
    ``x`` and every trainable weight equal eager execution within
    ``atol * max(1, max|eager|)``; the backend must have compiled gradients."""
    eager_out = compare.leaves(layer(x, training=False))
    weights = [rng.normal(size=e.shape).astype("float32") for e in eager_out]
    variables = list(layer.trainable_weights)

    def loss_and_outputs(v):
        outs = compare.keras_tree().flatten(layer(v, training=False))
        loss = sum(keras.ops.sum(keras.ops.cast(o, "float32") * w)
                   for o, w in zip(outs, weights, strict=True))
        return loss, outs

    _, _, eager_gv, eager_gx = backends.value_and_grad(
        loss_and_outputs, variables, [x], has_aux=True)
    try:
        _, traced_out, traced_gv, traced_gx = backends.compiled_value_and_grad(
            loss_and_outputs, variables, has_aux=True)(x)
    except Exception as exc:
        raise AssertionError(f"{label} cannot be traced into a graph ({backends.name()}): "
                             f"{type(exc).__name__}: {exc}") from None
    names = ["output"] + [f"state {k}" for k in range(len(eager_out) - 1)]
    pairs = list(zip(names, traced_out, eager_out, strict=False))
    pairs.append(("dL/d inputs", traced_gx[0], eager_gx[0]))
    pairs += [(f"dL/d {v.path}", t, e)
              for v, t, e in zip(variables, traced_gv, eager_gv, strict=True)]
    problems = []
    if len(traced_out) != len(eager_out):
        problems.append(f"traced it returns {len(traced_out)} tensors, eagerly "
                        f"{len(eager_out)}")
    for name, got, want in pairs:
        if got is None or want is None:
            if (got is None) != (want is None):
                problems.append(f"{name}: {'no gradient' if got is None else 'a gradient'} "
                                f"traced, {'none' if want is None else 'one'} eagerly")
            continue
        bound = atol * max(1.0, float(np.abs(want).max(initial=0.0)))
        line = compare.difference(name, got, want, atol=bound, labels=("traced", "eager"))
        if line:
            problems.append(line)
    if problems:
        raise AssertionError(
            f"{label}: traced into a graph "
            f"({'jax.jit' if backends.name() == 'jax' else 'tf.function'}) it computes "
            "something else than eagerly (same weights, same inputs, training=False):\n  "
            + "\n  ".join(problems))
