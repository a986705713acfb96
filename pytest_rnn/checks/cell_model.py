"""What the NumPy references ask of a cell: the :class:`CellModel` protocol, and stacks of them.

A cell model is one recurrent cell's math in float64 NumPy, one time step at a time. The
sequence engine (:mod:`pytest_rnn.checks.recurrence`) runs any model over whole
sequences, with Keras's masks, ``go_backwards``, ``zero_output_for_mask`` and initial
states; the forward reference (:mod:`pytest_rnn.checks.reference`) and the gradients
through time (:mod:`pytest_rnn.checks.reference_grad`) both run the same models. Keras's
own cells are built-in implementations (:mod:`pytest_rnn.checks.cell_models`,
:mod:`pytest_rnn.checks.conv_lstm_model`); a user's cell needs only the same few members:

* ``state_names``: one name per state (``("h", "c")``), in the order the layer takes them;
* ``zero_states(inputs)``: the zero states for a ``(batch, steps, ...)`` input sequence;
* ``weights()``: the weights by name (``{"kernel": ..., "bias": ...}``) as float64 arrays;
  ``weight_paths`` maps a name to the Keras variable path gradients are reported under;
* ``step(x, states, weights, *, masks=None, saved=None) -> (output, new_states)``: one
  step for the inputs ``x`` at that step; ``masks`` (:class:`StepMasks`) are training-time
  dropout masks; ``saved``, when a dict, receives what ``step_backward`` will need;
* optionally ``step_backward(saved, d_output, d_states, weights, grads) -> (d_x,
  d_previous_states)``: the vector-Jacobian product of that step, adding the weights'
  gradients into ``grads`` (arrays shaped like ``weights``, by the same names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

Array = np.ndarray
Weights = Mapping[str, Array]


@dataclass(frozen=True)
class StepMasks:
    """The dropout masks one cell multiplies its input and previous ``h`` by in training.

    ``inputs`` and ``recurrent`` are None (no dropout there), one mask (applied to
    the whole vector: LSTM/GRU implementation 2, SimpleRNN) or one per gate (in the
    kind's gate order: LSTM/GRU implementation 1, ConvLSTM). Masks are the arrays the
    cell drew, already scaled by ``1 / (1 - rate)``; Keras draws them once per call
    and uses them at every step. Multiplying by a mask is its own vector-Jacobian
    product, so the backward pass applies the same methods to gradients.
    """

    inputs: tuple[Array, ...] | None = None
    recurrent: tuple[Array, ...] | None = None

    @staticmethod
    def _apply(value: Array, masks: tuple[Array, ...] | None, gate: int) -> Array:
        if masks is None:
            return value
        return value * masks[gate if len(masks) > 1 else 0]

    def apply_input(self, x: Array, gate: int) -> Array:
        return self._apply(x, self.inputs, gate)

    def apply_recurrent(self, h: Array, gate: int) -> Array:
        return self._apply(h, self.recurrent, gate)


NO_MASKS = StepMasks()


class CellModel:
    """Base class of the cell models: the protocol the module docstring describes.

    Subclasses define ``state_names``, ``zero_states``, ``step`` and, if they can give
    gradients, ``step_backward``; ``weights`` and ``weight_paths`` default to none.
    """

    state_names: tuple[str, ...] = ()
    weight_paths: Mapping[str, str] = MappingProxyType({})

    def weights(self) -> dict[str, Array]:
        return {}

    def zero_states(self, inputs: Array) -> list[Array]:
        raise NotImplementedError(f"{type(self).__name__} defines no zero_states")

    def step(
        self,
        x: Array,
        states: list[Array],
        weights: Weights,
        *,
        masks: Any = None,
        saved: dict | None = None,
    ) -> tuple[Array, list[Array]]:
        raise NotImplementedError(f"{type(self).__name__} defines no step")

    step_backward: Any = None  # a method in models that give gradients

    @property
    def has_backward(self) -> bool:
        return self.step_backward is not None


def _cell_part(mapping: Mapping[str, Any], index: int) -> dict[str, Any]:
    prefix = f"cell {index} "
    return {k[len(prefix) :]: v for k, v in mapping.items() if k.startswith(prefix)}


class StackMath(CellModel):
    """Cells applied one after another in each step (``StackedRNNCells`` / ``RNN([cells])``).

    States, weights and weight paths are the cells' own, named ``cell <i> <name>``;
    ``masks`` holds one :class:`StepMasks` per cell.
    """

    def __init__(self, cells: Sequence[CellModel]):
        self.cells = list(cells)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(
            f"cell {i} {name}" for i, cell in enumerate(self.cells) for name in cell.state_names
        )

    @property
    def weight_paths(self) -> dict[str, str]:
        return {
            f"cell {i} {name}": path
            for i, cell in enumerate(self.cells)
            for name, path in cell.weight_paths.items()
        }

    def weights(self) -> dict[str, Array]:
        return {
            f"cell {i} {name}": w for i, cell in enumerate(self.cells)
            for name, w in cell.weights().items()
        }

    @property
    def has_backward(self) -> bool:
        return all(cell.has_backward for cell in self.cells)

    def _spans(self) -> list[slice]:
        spans, offset = [], 0
        for cell in self.cells:
            spans.append(slice(offset, offset + len(cell.state_names)))
            offset += len(cell.state_names)
        return spans

    def zero_states(self, inputs: Array) -> list[Array]:
        states, x = [], inputs
        for cell in self.cells:
            cell_states = cell.zero_states(x)
            states.extend(cell_states)
            output, _ = cell.step(x[:, 0], cell_states, cell.weights())  # next cell's input shape
            x = output[:, None]
        return states

    def step(self, x, states, weights, *, masks=None, saved=None):
        """One step through every cell."""
        new_states = []
        for index, (cell, span) in enumerate(zip(self.cells, self._spans(), strict=True)):
            cell_saved = None if saved is None else saved.setdefault(index, {})
            x, cell_states = cell.step(
                x, states[span], _cell_part(weights, index),
                masks=None if masks is None else masks[index], saved=cell_saved,
            )
            new_states.extend(cell_states)
        return x, new_states

    def step_backward(self, saved, d_output, d_states, weights, grads):
        """The cells' backward steps, last cell first: each one's ``d_x`` is the gradient
        of the output of the cell before it."""
        d_previous: list[Array] = []
        spans = self._spans()
        for index in range(len(self.cells) - 1, -1, -1):
            d_output, d_cell = self.cells[index].step_backward(
                saved[index], d_output, d_states[spans[index]],
                _cell_part(weights, index), _cell_part(grads, index),
            )
            d_previous = list(d_cell) + d_previous
        return d_output, d_previous
