"""The dropout masks each cell of a recurrent layer draws, recorded and checked.

:func:`record_dropout_masks` runs one training call with every cell's mask
getters wrapped and returns what each cell drew (:class:`CellMasks`), for one
cell or a stack of cells. The checks read those masks: one per gate, sized to
the cell's own input and state (:func:`assert_cell_masks_sized`); only 0 and
``1 / (1 - rate)``, dropping the configured fraction
(:func:`assert_cell_mask_rates`); and exactly these masks applied by the
training call (:func:`assert_training_uses_the_drawn_masks`, against the NumPy
reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.behaviours import AGAINST_DRAWN_MASKS
from pytest_rnn.checks.dropout_probe import binomial_tolerance, is_conv_lstm, layer_label
from pytest_rnn.checks.reference import StepMasks, compare_outputs, reference_outputs


@dataclass(frozen=True)
class CellMasks:
    """The dropout masks one cell of a recurrent layer drew for one training call.

    ``inputs`` / ``recurrent`` hold what the cell's ``get_dropout_mask`` /
    ``get_recurrent_dropout_mask`` returned (one array per gate, or one for the whole
    vector), None where the cell drew nothing. ``input_shape`` and ``state_shape``
    (without the batch) are what the masks must be sized to, read from the layer's
    configuration (the previous cell's output size, this cell's units; a ConvLSTM's
    input step and the shape its convolution outputs), not from the masks.
    """

    index: int
    cell: str
    dropout: float
    recurrent_dropout: float
    gate_count: int
    batch: int
    input_shape: tuple[int, ...]
    state_shape: tuple[int, ...]
    inputs: tuple[np.ndarray, ...] | None = field(repr=False)
    recurrent: tuple[np.ndarray, ...] | None = field(repr=False)

    @property
    def label(self) -> str:
        return f"cell {self.index} ({self.cell})"

    def step_masks(self) -> StepMasks:
        return StepMasks(self.inputs, self.recurrent)


def _cells_of(layer: Any) -> list[Any]:
    cell = layer.cell
    return list(cell.cells) if isinstance(cell, keras.layers.StackedRNNCells) else [cell]


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _recording(cell: Any, name: str, store: dict) -> Callable:
    original = getattr(cell, name)

    def record(step_input):
        masks = original(step_input)
        if masks is not None and name not in store:
            store[name] = tuple(
                compare.to_numpy(m) for m in compare.keras_tree().flatten(masks)
            )
        return masks

    return record


def record_dropout_masks(layer: Any, x: Any, **call_kwargs: Any) -> tuple[Any, list[CellMasks]]:
    """Call ``layer(x, training=True)`` and return ``(outputs, [CellMasks per cell])``.

    ``layer`` is a ``keras.layers.RNN`` (over one cell or a list of cells) whose cells
    are Keras dropout cells. Each cell's mask getters are wrapped for the duration of
    the call (on the cell object, not its class) and the first masks they hand out,
    which Keras reuses for every step of the call, are kept. A training call that
    raises is an AssertionError naming the cells' rates: training with dropout in
    every cell is documented to work.
    """
    if not isinstance(layer, keras.layers.RNN):
        raise ValueError(f"expected a keras.layers.RNN; got {type(layer).__name__}")
    cells = _cells_of(layer)
    stores: list[dict] = [{} for _ in cells]
    names = ("get_dropout_mask", "get_recurrent_dropout_mask")
    for cell, store in zip(cells, stores, strict=True):
        for name in names:
            if hasattr(cell, name):
                object.__setattr__(cell, name, _recording(cell, name, store))
    rates = [(type(c).__name__, getattr(c, "dropout", 0.0), getattr(c, "recurrent_dropout", 0.0))
             for c in cells]
    try:
        outputs = layer(x, training=True, **call_kwargs)
    except Exception as exc:
        raise AssertionError(
            f"{layer_label(layer)}: a training call with dropout in its cells (cell, dropout, "
            f"recurrent_dropout: {rates}) raises {type(exc).__name__}: {exc}"
        ) from None
    finally:
        for cell in cells:
            for name in names:
                if name in vars(cell):
                    object.__delattr__(cell, name)
    batch = int(np.shape(x)[0])
    recorded, step = [], tuple(int(d) for d in np.shape(x)[2:])
    for index, (cell, store) in enumerate(zip(cells, stores, strict=True)):
        if is_conv_lstm(cell):
            state = tuple(int(d) for d in cell.compute_output_shape((batch, *step))[0][1:])
        else:
            state = (_output_size(cell),)
        recorded.append(
            CellMasks(
                index=index,
                cell=f"{type(cell).__name__} {cell.name!r}",
                dropout=float(getattr(cell, "dropout", 0.0)),
                recurrent_dropout=float(getattr(cell, "recurrent_dropout", 0.0)),
                gate_count=int(getattr(cell, "dropout_mask_count", None) or 1),
                batch=batch,
                input_shape=step,
                state_shape=state,
                inputs=store.get("get_dropout_mask"),
                recurrent=store.get("get_recurrent_dropout_mask"),
            )
        )
        step = state
    return outputs, recorded


def assert_cell_masks_sized(recorded: Sequence[CellMasks]) -> None:
    """Assert every cell with a rate drew its masks, one per gate (one for the whole vector
    where the cell has no ``dropout_mask_count``), each ``(batch, its own input size)``
    for ``dropout`` and ``(batch, its own units)`` for ``recurrent_dropout`` (a
    ConvLSTM's: its input step's and its state's shapes), and no two gates the same
    mask: two independent draws of ``n`` units agree everywhere with probability
    ``(p^2 + (1 - p)^2) ** n``, 8e-16 for ``n = 64`` at ``p = 0.3``."""
    problems = []
    for cell in recorded:
        for which, rate, masks, shape in (
            ("dropout", cell.dropout, cell.inputs, cell.input_shape),
            ("recurrent_dropout", cell.recurrent_dropout, cell.recurrent, cell.state_shape),
        ):
            if not 0 < rate < 1:
                continue
            if masks is None:
                problems.append(f"{cell.label} {which}={rate:g} drew no mask in training")
                continue
            if len(masks) != cell.gate_count:
                problems.append(
                    f"{cell.label} {which}: {len(masks)} masks, expected {cell.gate_count} "
                    "(one per gate)"
                )
            want = (cell.batch, *shape)
            wrong = [tuple(m.shape) for m in masks if tuple(m.shape) != want]
            if wrong:
                what = "its input" if which == "dropout" else "its state"
                problems.append(
                    f"{cell.label} {which}: masks of shape {wrong[0]}, expected {want} "
                    f"(batch, the shape of {what})"
                )
                continue
            shared = [
                (a, b)
                for a in range(len(masks))
                for b in range(a + 1, len(masks))
                if np.array_equal(masks[a], masks[b])
            ]
            if shared:
                problems.append(
                    f"{cell.label} {which}: gates {shared[0][0]} and {shared[0][1]} share one "
                    f"mask; each of the {len(masks)} gates draws its own"
                )
    if problems:
        raise AssertionError(
            "dropout masks are not one per gate, sized to each cell's own input and state:\n  "
            + "\n  ".join(problems)
        )


def assert_cell_mask_rates(recorded: Sequence[CellMasks], *, sigmas: float = 5.0) -> None:
    """Assert each cell's masks hold only 0 and ``1 / (1 - rate)``, and drop a fraction of
    their units within :func:`binomial_tolerance` of the rate (the gates' masks are
    independent draws, so their units are pooled)."""
    problems = []
    for cell in recorded:
        for which, rate, masks in (
            ("dropout", cell.dropout, cell.inputs),
            ("recurrent_dropout", cell.recurrent_dropout, cell.recurrent),
        ):
            if not 0 < rate < 1 or masks is None:
                continue
            values = np.concatenate([m.ravel() for m in masks]).astype(np.float64)
            scale = 1.0 / (1.0 - rate)
            odd = ~(np.isclose(values, 0.0) | np.isclose(values, scale, rtol=1e-6))
            if odd.any():
                problems.append(
                    f"{cell.label} {which}={rate:g}: {int(odd.sum())} of {values.size} mask "
                    f"values are neither 0 nor 1/(1-rate) = {scale:.4f} (e.g. "
                    f"{values[odd][0]:.4g})"
                )
                continue
            dropped = int(np.isclose(values, 0.0).sum())
            bound = binomial_tolerance(values.size, rate, sigmas=sigmas)
            if abs(dropped / values.size - rate) > bound:
                problems.append(
                    f"{cell.label} {which}={rate:g}: dropped {dropped} of {values.size} units "
                    f"= {dropped / values.size:.4f}, expected {rate:g} +- {bound:.4f} "
                    f"({sigmas:g}-sigma binomial bound)"
                )
    if problems:
        raise AssertionError("dropout masks do not match the documented rates:\n  "
                             + "\n  ".join(problems))


def assert_training_uses_the_drawn_masks(
    layer: Any,
    x: Any,
    outputs: Any,
    recorded: Sequence[CellMasks],
    *,
    atol: float = 1e-5,
) -> None:
    """Assert a training call's ``outputs`` equal the NumPy reference
    (:func:`pytest_rnn.checks.reference.reference_outputs`) of every cell fed the masks
    it drew: each mask multiplies its gate's input (or state) at every step, and
    nothing else is dropped."""
    masks = [cell.step_masks() for cell in recorded]
    stacked = isinstance(layer.cell, keras.layers.StackedRNNCells)
    reference = reference_outputs(
        layer, x, training=True, dropout_masks=masks if stacked else masks[0]
    )
    compare_outputs(
        outputs,
        reference,
        atol=atol,
        rtol=0.0,
        what=f"{layer_label(layer)} {AGAINST_DRAWN_MASKS}",
        sequence_ndim=np.ndim(x),
    )
