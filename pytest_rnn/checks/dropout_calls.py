"""Dropout checks that compare whole calls of any layer or model, not a probe.

What a call with ``training=False`` and one with ``training=True`` must show:
inference is deterministic and equals a dropout-free twin with the same weights
(:func:`assert_inference_ignores_dropout`), training differs from inference
(:func:`assert_training_applies_dropout`), and the layer's ``seed`` fixes the
sequence of masks (:func:`assert_seed_reproduces_masks`). The twins are rebuilt
from the layer's config with its rates edited, so these work for any layer or
model whose config carries its rates (``dropout``, ``recurrent_dropout`` or a
``Dropout`` layer's ``rate``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.behaviours import (
    LEAKS_INTO_INFERENCE,
    NOT_APPLIED_IN_TRAINING,
    SEED_DOES_NOT_FIX,
)
from pytest_rnn.checks.dropout_probe import layer_label


def _walk(config: Any, visit) -> None:
    if isinstance(config, dict):
        visit(config)
        for value in config.values():
            _walk(value, visit)
    elif isinstance(config, list):
        for value in config:
            _walk(value, visit)


def _dropout_dicts(config: Any) -> list[dict]:
    """Config dicts of things that drop units: RNN layers/cells and Dropout layers."""
    found: list[dict] = []

    def visit(d: dict) -> None:
        if "dropout" in d or "recurrent_dropout" in d:
            found.append(d)
        elif isinstance(d.get("config"), dict) and "Dropout" in str(d.get("class_name", "")):
            found.append(d["config"])

    _walk(config, visit)
    return found


def _rates(d: dict) -> dict[str, float]:
    return {k: d[k] for k in ("dropout", "recurrent_dropout", "rate") if k in d}


def _own_classes(layer: Any, found: dict | None = None) -> dict[str, type]:
    """``{class name: class}`` of ``layer`` and the cells and layers it wraps: what its
    config names, so an unregistered custom cell rebuilds from the config too."""
    found = {} if found is None else found
    if isinstance(layer, (list, tuple)):
        for item in layer:
            _own_classes(item, found)
        return found
    if not isinstance(layer, keras.layers.Layer) or type(layer).__name__ in found:
        return found
    found[type(layer).__name__] = type(layer)
    for attr in ("cell", "cells", "forward_layer", "backward_layer", "layer", "layers"):
        inner = getattr(layer, attr, None)
        if inner is not None and inner is not layer:
            _own_classes(inner, found)
    return found


def _twin(layer: Any, x: Any, *, edit, call_kwargs: dict) -> Any:
    config = layer.get_config()
    for d in _dropout_dicts(config):
        edit(d)
    with keras.saving.custom_object_scope(_own_classes(layer)):
        twin = type(layer).from_config(config)
    if not twin.built:
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            twin.build(np.shape(x))
        else:
            twin(x, training=False, **call_kwargs)
    twin.set_weights(compare.weight_values(layer))
    return twin


def _outputs(layer: Any, x: Any, **kwargs: Any) -> list[np.ndarray]:
    return compare.leaves(layer(x, **kwargs))


def _check_callable(layer: Any) -> None:
    if getattr(layer, "stateful", False):
        raise ValueError(
            f"{layer_label(layer)} is stateful: each call moves its state, so two calls cannot be "
            "compared; check a stateful=False twin"
        )
    if not _dropout_dicts(layer.get_config()) or not any(
        v > 0 for d in _dropout_dicts(layer.get_config()) for v in _rates(d).values()
    ):
        raise ValueError(f"{layer_label(layer)} has no dropout > 0 to check")


def assert_inference_ignores_dropout(
    layer: Any, x: Any, *, atol: float = 1e-6, **call_kwargs: Any
) -> None:
    """Assert ``layer(x, training=False)`` is deterministic, equals a call without
    ``training``, and equals a twin with every dropout rate set to 0 and the same
    weights: at inference, dropout neither drops nor rescales anything."""
    _check_callable(layer)
    first = _outputs(layer, x, training=False, **call_kwargs)
    second = _outputs(layer, x, training=False, **call_kwargs)
    default = _outputs(layer, x, **call_kwargs)
    label = layer_label(layer)
    if (diff := compare.max_abs_diff(first, second)) > 0:
        raise AssertionError(
            f"{label}: two inference calls (training=False) differ by up to {diff:.3g}; "
            f"{LEAKS_INTO_INFERENCE}"
        )
    if (diff := compare.max_abs_diff(first, default)) > 0:
        raise AssertionError(
            f"{label}: a call without `training` differs from training=False by up to "
            f"{diff:.3g}; the default should be inference"
        )

    def no_dropout(d: dict) -> None:
        for key in _rates(d):
            d[key] = 0.0

    clean = _outputs(_twin(layer, x, edit=no_dropout, call_kwargs=call_kwargs), x, **call_kwargs)
    if (diff := compare.max_abs_diff(first, clean)) > atol:
        raise AssertionError(
            f"{label}: inference output differs from the same weights without dropout by up "
            f"to {diff:.3g} (atol {atol:g}); dropout changes inference (a mask or a 1/(1-rate) "
            "scale applied at inference)"
        )


def assert_training_applies_dropout(
    layer: Any, x: Any, *, min_diff: float = 1e-3, **call_kwargs: Any
) -> float:
    """Assert ``layer(x, training=True)`` differs from ``training=False`` by more than
    ``min_diff`` somewhere; returns the max difference."""
    _check_callable(layer)
    trained = _outputs(layer, x, training=True, **call_kwargs)
    inferred = _outputs(layer, x, training=False, **call_kwargs)
    diff = compare.max_abs_diff(trained, inferred)
    if not diff > min_diff:
        rates = [_rates(d) for d in _dropout_dicts(layer.get_config())]
        raise AssertionError(
            f"{layer_label(layer)} with {rates}: training output equals inference output "
            f"(max |diff| {diff:.3g} <= {min_diff:g}); {NOT_APPLIED_IN_TRAINING}"
        )
    return diff


def assert_seed_reproduces_masks(
    make_layer: Callable[[int], Any], x: Any, *, seed: int = 1234, **call_kwargs: Any
) -> None:
    """Assert that dropout masks follow the layer's ``seed``.

    ``make_layer(seed)`` returns a new layer (or model) with dropout seeded by
    ``seed``. Two layers from the same seed, given the same weights, must give the
    same training output; a layer from ``seed + 1`` a different one; and a second
    training call of one layer new masks (a seed fixes the sequence of masks, not
    one mask forever). A factory rather than a config twin, because not every
    layer's config records its seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    first, same, other = make_layer(seed), make_layer(seed), make_layer(seed + 1)
    for layer in (first, same, other):
        _check_callable(layer)
        if not layer.built:
            layer(x, training=False, **call_kwargs)  # every layer draws the same masks here
    same.set_weights(first.get_weights())
    other.set_weights(first.get_weights())
    label = layer_label(first)
    a1 = _outputs(first, x, training=True, **call_kwargs)
    if (diff := compare.max_abs_diff(a1, _outputs(same, x, training=True, **call_kwargs))) > 0:
        raise AssertionError(
            f"{label}: two layers with seed={seed} give different training outputs (max "
            f"|diff| {diff:.3g}); {SEED_DOES_NOT_FIX}"
        )
    if compare.max_abs_diff(a1, _outputs(other, x, training=True, **call_kwargs)) == 0:
        raise AssertionError(
            f"{label}: layers with seed={seed} and seed={seed + 1} give the very same "
            "training output; the seed is ignored"
        )
    if compare.max_abs_diff(a1, _outputs(first, x, training=True, **call_kwargs)) == 0:
        raise AssertionError(
            f"{label}: a second training call repeats the first call's output exactly; "
            "masks are not redrawn for each call"
        )
