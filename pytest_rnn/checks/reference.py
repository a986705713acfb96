"""NumPy forward passes of Keras's SimpleRNN, LSTM, GRU and ConvLSTM, from a layer's own weights.

Why a second implementation: a Keras release that reorders gates, drops a
bias, swaps the reset gate's side of the matmul or loses a mask still produces
plausible numbers of the right shape. Only an independent computation of the
documented equations notices. The reference reads the layer's weights and
configuration (activations, ``use_bias``, ``reset_after``, ``return_sequences``,
``return_state``, ``go_backwards``, ``zero_output_for_mask``, ``stateful``) and
computes in float64 what the layer should return:

* SimpleRNN: ``h = act(x K + b + h R)``
* LSTM (gates i, f, c, o in that column order): ``z = x K + h R + b``;
  ``c = rec(z_f) * c + rec(z_i) * act(z_c)``; ``h = rec(z_o) * act(c)``
* GRU (gates z, r, h): ``h = z * h + (1 - z) * act(x K_h + b_h + r * (h R_h + b'_h))``
  with ``reset_after=True`` (two bias rows), or
  ``act(x K_h + b_h + (r * h) R_h)`` with ``reset_after=False`` (one row).
* ConvLSTM1D/2D/3D: the LSTM equations with ``x K`` and ``h R`` replaced by
  convolutions (the input's with the layer's strides, padding and dilation, the
  state's with stride 1 and "same" padding), see :class:`ConvLSTMMath`.

The cells' equations are the models of :mod:`pytest_rnn.checks.cell_models` and
:mod:`pytest_rnn.checks.conv_lstm_model` (activations: :mod:`pytest_rnn.checks.activations`),
run over the sequence by :mod:`pytest_rnn.checks.recurrence`; the gradients through time
(:mod:`pytest_rnn.checks.reference_grad`) run the same models. This module adds what a
call returns (``return_sequences``, ``return_state``, ``Bidirectional``'s merge) and the
comparison with the layer.

Any other cell (a user's ``keras.layers.Layer`` through ``keras.layers.RNN``, a
convolutional cell, a stack) is checked against its author's NumPy step, passed as
``step=`` (:class:`~pytest_rnn.checks.step_model.NumpyCell`): the same engine runs it
over the sequence with every option above, Bidirectional wrappers and stateful layers
included.

Training calls with dropout are modelled from the masks the cells drew
(:class:`StepMasks`): one per gate, or one for the whole input, reused at every step.

Masking follows Keras's backend loop: a masked step keeps the previous states
and outputs the previous step's output, or zeros with ``zero_output_for_mask``
(which ``Bidirectional`` turns on for layers returning sequences); with
``go_backwards`` the sequence (and mask) is processed from the end and the
returned sequence is in processing order. cuDNN kernels (GPU) differ for masked
sequences (padded outputs are zero, the last output is the final ``h``), so
compare masked calls on the backend-native path (``use_cudnn=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.activations import ACTIVATIONS, numpy_activation
from pytest_rnn.checks.behaviours import DIFFERS_FROM_REFERENCE
from pytest_rnn.checks.cell_model import CellModel, StackMath, StepMasks
from pytest_rnn.checks.cell_models import CellMath
from pytest_rnn.checks.conv_lstm_model import ConvLSTMMath, convolve
from pytest_rnn.checks.recurrence import LayerRun, run_layer, run_recurrence, sequence_inputs
from pytest_rnn.checks.step_model import NumpyCell

__all__ = [
    "ACTIVATIONS", "CellMath", "CellModel", "ConvLSTMMath", "Named", "NumpyCell", "StackMath",
    "StepMasks",
    "assert_matches_reference", "check_call_kwargs", "compare_outputs", "convolve",
    "numpy_activation", "reference_call", "reference_outputs", "run_recurrence", "step_axes",
]

Named = list[tuple[str, np.ndarray]]


def check_call_kwargs(layer: Any, call_kwargs: dict[str, Any], dropout_masks: Any = None) -> None:
    unknown = sorted(set(call_kwargs) - {"initial_state", "mask", "training"})
    if unknown:
        raise ValueError(
            f"the reference models calls with initial_state, mask and training only; "
            f"got {', '.join(unknown)}"
        )
    if call_kwargs.get("training") and dropout_masks is None:
        layers = [getattr(layer, "forward_layer", layer), getattr(layer, "backward_layer", layer)]
        cells = [getattr(lay, "cell", lay) for lay in layers]
        cells = [c for cell in cells for c in compare.flatten(getattr(cell, "cells", [cell]))]
        rates = [
            (c.name, getattr(c, "dropout", 0.0), getattr(c, "recurrent_dropout", 0.0))
            for c in cells
        ]
        if any(d or rd for _, d, rd in rates):
            raise ValueError(
                "training=True with dropout draws random masks the reference cannot know; "
                f"dropout rates (cell, dropout, recurrent_dropout): {rates}"
            )


def reference_call(
    layer: Any, inputs: Any, initial_state: Sequence[Any] | None = None, mask: Any = None,
    dropout_masks: Any = None, *, record: bool = False, step: Any = None,
    weights: dict[str, np.ndarray] | None = None,
) -> tuple[Named, list[LayerRun]]:
    """What the call returns, named as :func:`reference_outputs` names it, and the run of
    each RNN layer it made (one, or a Bidirectional's forward and backward layers);
    ``record`` keeps the runs' tapes for the gradients through time; ``step``: the cells'
    NumPy step (:class:`NumpyCell`); ``weights``: values by variable path that replace the
    variables' own (central differences perturb them)."""
    rank = None if step is not None else getattr(
        getattr(getattr(layer, "forward_layer", layer), "cell", None), "rank", 0)
    x, m = sequence_inputs(inputs, mask, rank)
    init = None if initial_state is None else compare.leaves(initial_state)

    forward = getattr(layer, "forward_layer", None)
    if forward is None:
        run = run_layer(layer, x, init, m, dropout_masks, record=record, step=step,
                        weights=weights)
        named = [("output", run.output)]
        if layer.return_state:
            named += list(zip(run.state_names, run.states, strict=True))
        return named, [run]

    if dropout_masks is not None:
        raise ValueError("dropout_masks are not modelled for Bidirectional wrappers")
    half = None if init is None else len(init) // 2
    kw: dict[str, Any] = {"record": record, "step": step, "weights": weights}
    f_run = run_layer(forward, x, None if half is None else init[:half], m, **kw)
    b_run = run_layer(layer.backward_layer, x, None if half is None else init[half:], m, **kw)
    y, y_rev = f_run.output, b_run.output
    if layer.return_sequences:
        y_rev = y_rev[:, ::-1]
    merged: Named
    if layer.merge_mode == "concat":
        merged = [("output", np.concatenate([y, y_rev], axis=-1))]
    elif layer.merge_mode == "sum":
        merged = [("output", y + y_rev)]
    elif layer.merge_mode == "ave":
        merged = [("output", (y + y_rev) / 2)]
    elif layer.merge_mode == "mul":
        merged = [("output", y * y_rev)]
    elif layer.merge_mode is None:
        merged = [("forward output", y), ("backward output", y_rev)]
    else:
        raise ValueError(f"no reference for merge_mode {layer.merge_mode!r}")
    if layer.return_state:
        names = f_run.state_names
        merged = (
            merged
            + [(f"forward {n}", s) for n, s in zip(names, f_run.states, strict=True)]
            + [(f"backward {n}", s) for n, s in zip(names, b_run.states, strict=True)]
        )
    return merged, [f_run, b_run]


def reference_outputs(
    layer: Any,
    inputs: Any,
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    training: bool = False,
    dropout_masks: Any = None,
    step: Any = None,
) -> Named:
    """What ``layer(inputs, initial_state=..., mask=...)`` should return, computed in NumPy.

    ``layer`` is a built SimpleRNN, LSTM, GRU or ConvLSTM1D/2D/3D layer, a
    ``keras.layers.RNN`` over one of their cells or a stack of them, or a
    ``Bidirectional`` wrapping any of those. Returns ``[(name, array), ...]`` in the
    order the layer returns its tensors (nested state lists flattened): ``output``
    then states such as ``h`` and ``c``; for ``Bidirectional``, ``forward ...`` then
    ``backward ...``. A stateful layer starts from its current state variables.

    ``dropout_masks`` makes ``training=True`` with dropout computable: the masks the
    cells drew (:class:`StepMasks`, a list of one per cell for a stack), as
    :func:`pytest_rnn.checks.dropout.record_dropout_masks` observes them.

    ``step``: for a layer over any other cell, the cell's NumPy step (a function
    ``step(x, states, weights) -> (output, new_states)`` or a :class:`NumpyCell`), used
    for every cell of the layer (both of a Bidirectional's); states are then named
    ``state 0`` ... unless the :class:`NumpyCell` names them.
    """
    check_call_kwargs(layer, {"training": training}, dropout_masks)
    return reference_call(
        layer, inputs, initial_state=initial_state, mask=mask, dropout_masks=dropout_masks,
        step=step,
    )[0]


def step_axes(ndim: int, sequence_ndim: int) -> tuple[str, ...] | None:
    """Names of the axes of a ``ndim``-axis output when a whole sequence has
    ``sequence_ndim`` axes: the default (batch, step, unit) for SimpleRNN/LSTM/GRU; for a
    ConvLSTM, batch, step (sequences only), then ``axis k`` for its positions and filters."""
    if ndim <= 3 and sequence_ndim == 3:
        return None
    lead = ("batch", "step") if ndim == sequence_ndim else ("batch",)
    return lead + tuple(f"axis {k}" for k in range(len(lead), ndim))


def compare_outputs(
    actual: Any,
    reference: Named,
    *,
    atol: float,
    rtol: float,
    what: str,
    sequence_ndim: int = 3,
) -> None:
    """Raise an AssertionError describing every output of ``actual`` that differs from
    ``reference`` (see :func:`pytest_rnn.checks.compare.assert_allclose`).
    ``sequence_ndim``: the number of axes of a whole output sequence (``rank + 3`` for a
    ConvLSTM), which decides the axis the message calls ``step``."""
    compare.assert_allclose(
        actual, reference, atol=atol, rtol=rtol, labels=("layer", "reference"),
        what=f"{what} {DIFFERS_FROM_REFERENCE} (atol={atol:g}, rtol={rtol:g})",
        axes=[step_axes(np.ndim(ref), sequence_ndim) for _, ref in reference],
    )


def assert_matches_reference(
    layer: Any, inputs: Any, *, step: Any = None, atol: float = 1e-5, rtol: float = 1e-5,
    **call_kwargs: Any
) -> Named:
    """Call ``layer(inputs, **call_kwargs)`` and assert it equals the NumPy reference.

    ``assert_matches_reference(layer, inputs, *, step=None, atol=1e-5, rtol=1e-5,
    **call_kwargs)``. ``layer``: see :func:`reference_outputs`; for a layer over your own
    cell, ``step`` is the cell's NumPy step, ``step(x, states, weights) -> (output,
    new_states)`` with the cell's weights by name (``"kernel"`` ...), or a
    :class:`NumpyCell` (see :mod:`pytest_rnn.checks.step_model`).
    ``call_kwargs`` may hold ``initial_state``, ``mask`` and ``training``
    (``training=True`` only without dropout). An unbuilt layer is built for
    ``inputs`` first. The failure message says which output or state differs
    (``output``, ``h``, ``c``, ``forward h`` ...), at which batch, step and unit,
    by how much, and the first step where the sequence starts to differ.
    Returns the reference's ``[(name, array), ...]``.
    """
    check_call_kwargs(layer, call_kwargs)
    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    if not layer.built:
        layer.build(x.shape)
    reference = reference_outputs(layer, x, step=step, **call_kwargs)  # before a stateful call
    actual = layer(x, **call_kwargs)
    compare_outputs(
        actual,
        reference,
        atol=atol,
        rtol=rtol,
        what=f"{type(layer).__name__} {layer.name!r}",
        sequence_ndim=x.ndim,
    )
    return reference
