"""A user's recurrent cell as a NumPy step function: :class:`NumpyCell`, and its cell model.

The references run one engine (:mod:`pytest_rnn.checks.recurrence`) over cell models
(:class:`~pytest_rnn.checks.cell_model.CellModel`). Keras's own cells have built-in models;
any other cell (a ``keras.layers.Layer`` used through ``keras.layers.RNN``, a stack of
cells, a convolutional cell) is checked against the math its author writes as one NumPy
function::

    def step(x, states, weights):          # -> (output, new_states)
        ...

* ``x``: the inputs at one time step, float64 ``(batch, ...)`` (``(batch, features)`` for
  a dense cell);
* ``states``: the list of the cell's states before the step, float64 ``(batch, ...)``;
* ``weights``: ``{name: float64 array}``, every floating-point weight of the Keras cell
  (``cell.weights``) named by its variable path below the folder all of them share:
  ``"kernel"``, ``"recurrent_kernel"``, ``"bias"`` for the weights the cell adds itself,
  ``"dense/kernel"`` for one of a layer inside it, ``"lstm_cell/kernel"`` for a cell of a
  ``StackedRNNCells`` (:func:`weight_names`);
* returns the step's output and the list of new states, shaped as the states were.

Pass the function as ``step=`` to :func:`pytest_rnn.assert_matches_reference` and
:func:`pytest_rnn.assert_gradients_match_reference`, or wrap it in :class:`NumpyCell`
to say what the Keras cell's ``state_size`` does not (convolutional states' shapes, the
states' names).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn.checks.cell_model import Array, CellModel
from pytest_rnn.checks.cell_models import variable_path

StepFunction = Callable[[Array, list[Array], dict[str, Array]], tuple[Any, Any]]

#: How the references' errors tell a user what to do about a cell without a built-in model.
PASS_A_STEP = (
    "for your own cell, pass its NumPy step: assert_matches_reference(layer, x, "
    "step=my_step) with my_step(x, states, weights) -> (output, new_states) (see "
    "pytest_rnn.NumpyCell)"
)


@dataclass(frozen=True)
class NumpyCell:
    """``NumpyCell(step, *, zero_states=None, state_names=None)``: a cell's math in NumPy.

    ``step(x, states, weights) -> (output, new_states)``: one time step (see the module
    docstring). ``zero_states(inputs) -> [state, ...]``: the states a call starts from
    when none are given, for the whole ``(batch, steps, ...)`` input sequence; by default
    zeros of shape ``(batch, size)`` for each size of the Keras cell's ``state_size`` (an
    int or a list of ints). ``state_names``: what messages call the states (default
    ``state 0``, ``state 1``, ...); needed, with ``zero_states``, when ``state_size``
    does not count the states (Keras's ConvLSTM cells say ``-1``).
    """

    step: StepFunction
    zero_states: Callable[[Array], Sequence[Any]] | None = None
    state_names: tuple[str, ...] | None = None

    @classmethod
    def of(cls, step: NumpyCell | StepFunction) -> NumpyCell:
        """``step`` as a :class:`NumpyCell` (a plain function gets the defaults)."""
        if isinstance(step, NumpyCell):
            return step
        if not callable(step):
            raise TypeError(f"step must be a function (x, states, weights) -> (output, "
                            f"new_states) or a NumpyCell; got {type(step).__name__}")
        return cls(step)

    def model(self, cell: Any) -> StepModel:
        """The cell model of this step for a built Keras ``cell``, reading its weights."""
        return StepModel(self, cell)


def weight_names(cell: Any) -> dict[str, Any]:
    """``{name: variable}`` of a built cell's floating-point weights: each variable's path
    (``variable.path``, else its name) below the deepest folder all of them share."""
    variables = [w for w in cell.weights if "float" in str(w.dtype)]
    paths = [variable_path(w).split("/") for w in variables]
    shared = 0
    if paths:
        folders = [p[:-1] for p in paths]
        while shared < min(map(len, folders)) and len({f[shared] for f in folders}) == 1:
            shared += 1
    named = {"/".join(p[shared:]): w for p, w in zip(paths, variables, strict=True)}
    if len(named) < len(variables):
        raise ValueError(f"the weights of {cell.name!r} share names: "
                         f"{[variable_path(w) for w in variables]}")
    return named


def state_sizes(cell: Any) -> list[int] | None:
    """The sizes of a cell's states from its ``state_size`` (an int or nested lists of
    ints), or None when it gives no positive int per state."""
    size = cell.state_size
    flat = [size] if not isinstance(size, (list, tuple)) else list(size)
    while any(isinstance(s, (list, tuple)) for s in flat):
        flat = [t for s in flat for t in (s if isinstance(s, (list, tuple)) else [s])]
    ok = all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
             for s in flat)
    return [int(s) for s in flat] if ok and flat else None


class StepModel(CellModel):
    """A :class:`NumpyCell` bound to one Keras cell: a cell model without a backward step
    (the gradients' reference takes central differences of it instead)."""

    def __init__(self, spec: NumpyCell, cell: Any):
        if not cell.built:
            raise ValueError(f"cell {cell.name!r} is not built; build or call its layer first")
        self.spec, self.cell = spec, cell
        step_name = getattr(spec.step, "__qualname__", type(spec.step).__name__)
        self.label = f"the step {step_name} of {type(cell).__name__} {cell.name!r}"
        named = weight_names(cell)
        self.weight_paths = {name: variable_path(v) for name, v in named.items()}
        self._weights = {name: np.asarray(v, dtype=np.float64) for name, v in named.items()}
        self._sizes = state_sizes(cell)
        names = spec.state_names
        if names is None and self._sizes is None:
            raise ValueError(
                f"{type(cell).__name__}.state_size is {cell.state_size!r}, which does not "
                f"count its states: pass NumpyCell(step, zero_states=..., state_names=...)")
        self.state_names = tuple(names or (f"state {i}" for i in range(len(self._sizes))))

    def weights(self) -> dict[str, Array]:
        return dict(self._weights)

    def zero_states(self, inputs: Array) -> list[Array]:
        if self.spec.zero_states is not None:
            states = [np.asarray(s, dtype=np.float64) for s in self.spec.zero_states(inputs)]
        elif self._sizes is None:
            raise ValueError(f"{type(self.cell).__name__}.state_size is "
                             f"{self.cell.state_size!r}: pass NumpyCell(step, zero_states=...)")
        else:
            states = [np.zeros((inputs.shape[0], size)) for size in self._sizes]
        if len(states) != len(self.state_names):
            raise ValueError(f"zero_states of {self.label} gave {len(states)} states; "
                             f"state_names names {len(self.state_names)}")
        return states

    def step(self, x, states, weights, *, masks=None, saved=None):
        """The user's step, its result checked: ``(output, new_states)``, one new state per
        state, each of the shape it had."""
        if masks is not None:
            raise ValueError(f"dropout masks are not modelled for {self.label}; call the "
                             f"layer without dropout (training=False)")
        result = self.spec.step(x, list(states), dict(weights))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"{self.label} must return (output, new_states); got "
                            f"{type(result).__name__}")
        output, new = result
        new = [new] if isinstance(new, np.ndarray) else list(new)
        if len(new) != len(states):
            raise ValueError(f"{self.label} returned {len(new)} new states; the cell has "
                             f"{len(states)} ({', '.join(self.state_names)})")
        new = [np.asarray(s, dtype=np.float64) for s in new]
        for name, value, old in zip(self.state_names, new, states, strict=True):
            if value.shape != old.shape:
                raise ValueError(f"{self.label} returned {name} of shape {value.shape}; "
                                 f"the state it replaces has shape {old.shape}")
        output = np.asarray(output, dtype=np.float64)
        if output.ndim < 1 or output.shape[0] != x.shape[0]:
            raise ValueError(f"{self.label} returned an output of shape {output.shape} for "
                             f"inputs of shape {x.shape}: (batch, ...) expected")
        return output, new
