"""Keras activations in NumPy: the one table of each activation's function and derivative.

Every NumPy model of a cell (:mod:`pytest_rnn.checks.cell_models`,
:mod:`pytest_rnn.checks.conv_lstm_model`) reads its activations here, the forward
reference for the function and the backward pass through time for the derivative.
An activation is found by the name Keras serializes it under (the function's
``__name__``), by that name given as a string, or as ``None`` (linear); ``swish`` and
``hard_swish`` are Keras's older names of ``silu`` and ``hard_silu``. Derivatives are
functions of the activation's argument; at a kink they take the one-sided value
Keras's own gradient takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def _sigmoid_d(x: Array) -> Array:
    return _sigmoid(x) * (1.0 - _sigmoid(x))


def _hard_sigmoid(x: Array) -> Array:
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0  # Keras 3: relu6(x + 3) / 6


def _hard_sigmoid_d(x: Array) -> Array:
    return np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """One activation: ``activation(x)`` computes it, ``activation.derivative(x)`` its slope."""

    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array]

    def __call__(self, x: Array) -> Array:
        return self.function(x)


#: name (as Keras serializes it) -> ``(function, derivative)``
_TABLE: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "linear": (lambda x: x, np.ones_like),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, _sigmoid_d),
    "hard_sigmoid": (_hard_sigmoid, _hard_sigmoid_d),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(np.float64)),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), lambda x: ((x > 0) & (x < 6)).astype(np.float64)),
    "elu": (
        lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
        lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))),
    ),
    "selu": (
        lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
        lambda x: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0))),
    ),
    "softplus": (lambda x: np.logaddexp(0.0, x), _sigmoid),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), lambda x: 1.0 / (1.0 + np.abs(x)) ** 2),
    "exponential": (np.exp, np.exp),
    "silu": (lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x)))),
    "hard_silu": (
        lambda x: x * _hard_sigmoid(x),
        lambda x: _hard_sigmoid(x) + x * _hard_sigmoid_d(x),
    ),
}

#: Every activation the models know, by name.
TABLE: dict[str, Activation] = {name: Activation(name, f, d) for name, (f, d) in _TABLE.items()}
#: Other names Keras has given the same functions.
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
#: The functions alone, by name (what :mod:`pytest_rnn.checks.reference` always offered).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {n: a.function for n, a in TABLE.items()}
#: The derivatives alone, by name (what :mod:`pytest_rnn.checks.reference_grad` offered).
DERIVATIVES: dict[str, Callable[[Array], Array]] = {n: a.derivative for n, a in TABLE.items()}


def _name(fn: Any) -> str | None:
    if fn is None:
        return "linear"
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
    return ALIASES.get(name, name)


def lookup(fn: Any, missing: str = "reference") -> Activation:
    """The :class:`Activation` of a Keras activation (function, name or None); a ValueError
    ``no NumPy <missing> for activation ...`` lists the supported names otherwise."""
    name = _name(fn)
    if name not in TABLE:
        raise ValueError(
            f"no NumPy {missing} for activation {fn!r}; supported: {', '.join(sorted(TABLE))}"
        )
    return TABLE[name]


def numpy_activation(fn: Any) -> Callable[[Array], Array]:
    """The NumPy twin of a Keras activation function; ValueError for one without a twin."""
    return lookup(fn)


def activation_pair(fn: Any) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """``(act, act')`` in NumPy for a Keras activation; ValueError for one without both."""
    activation = lookup(fn, "derivative")
    return activation.function, activation.derivative


#: The sigmoid, as the models use it where Keras has no setting (SimpleRNN's unused one).
SIGMOID = TABLE["sigmoid"]
