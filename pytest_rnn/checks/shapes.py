"""What a recurrent layer returns: how many tensors, in which order, of which shapes.

The expectation is written from the documented contract, not read back from
Keras: a layer returns its output (the whole sequence with
``return_sequences``, else the last step) and, with ``return_state``, its final
states after it: ``h`` for SimpleRNN and GRU, ``h`` then ``c`` for LSTM. A
``Bidirectional`` wrapper returns the merged output (two outputs with
``merge_mode=None``) followed by the forward layer's states, then the backward
layer's. Element names (``"output"``, ``"h"``, ``"forward c"`` ...) are shared
with :mod:`pytest_rnn.reference`, so both helpers' messages use the same words.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from pytest_rnn.checks.params import CONV_LSTM_RANKS, check_kind, conv_tuple

Shape = tuple[int | None, ...]
Structure = list[tuple[str, Shape]]

#: Final states each kind returns, in order.
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "simple_rnn": ("h",),
    "lstm": ("h", "c"),
    "gru": ("h",),
    **{kind: ("h", "c") for kind in CONV_LSTM_RANKS},
}
#: What :func:`assert_output_structure` says of a call that returns one tensor where it
#: should return a list (its states lost): the proof of sensitivity quotes it.
RETURNED_A_SINGLE_TENSOR = "returned a single tensor"
#: What :func:`assert_output_structure` says of an element whose shape is not the expected
#: one (``element 1 (h) has shape (2, 3), expected (2, 4)``): the proof quotes it too.
SHAPE_DIFFERS = "has shape"
_DATA_FORMATS = ("channels_last", "channels_first")
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _dim(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{extra}; got {value!r}")
    return int(value)


def conv_output_spatial(
    spatial: Sequence[int | None],
    kernel_size: int | Sequence[int],
    *,
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    dilation_rate: int | Sequence[int] = 1,
) -> tuple[int | None, ...]:
    """Spatial shape of a convolution's output, per axis, in closed form.

    ``"valid"``: ``floor((n - d*(k - 1) - 1) / s) + 1`` (the windows that fit);
    ``"same"``: ``ceil(n / s)`` (whatever the kernel and dilation). An axis of
    unknown size (None) stays unknown. A ValueError says which axis is smaller than
    the (dilated) kernel.
    """
    rank = len(spatial)
    kernel = conv_tuple("kernel_size", kernel_size, rank)
    stride = conv_tuple("strides", strides, rank)
    dilation = conv_tuple("dilation_rate", dilation_rate, rank)
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same'; got {padding!r}")
    out: list[int | None] = []
    for axis, (n, k, s, d) in enumerate(zip(spatial, kernel, stride, dilation, strict=True)):
        n = _dim(f"spatial axis {axis}", n, allow_none=True)
        if n is None:
            out.append(None)
        elif padding == "same":
            out.append(-(-n // s))
        else:
            size = (n - d * (k - 1) - 1) // s + 1
            if size < 1:
                raise ValueError(
                    f"spatial axis {axis} has {n} positions, fewer than the kernel's {k} "
                    f"(dilated to {d * (k - 1) + 1}) with padding='valid'"
                )
            out.append(size)
    return tuple(out)


def _conv_step_shape(
    kind: str,
    units: int,
    spatial: Sequence[int | None] | None,
    kernel_size: Any,
    strides: Any,
    padding: str,
    dilation_rate: Any,
    data_format: str,
) -> Shape:
    """Shape of one step of a ConvLSTM's output (and of its states), without the batch."""
    rank = CONV_LSTM_RANKS[kind]
    if spatial is None or len(spatial) != rank:
        raise ValueError(
            f"kind={kind!r} needs spatial: the input's {rank} spatial size(s); got {spatial!r}"
        )
    if kernel_size is None:
        raise ValueError(f"kind={kind!r} needs kernel_size")
    if data_format not in _DATA_FORMATS:
        raise ValueError(f"data_format must be one of {_DATA_FORMATS}; got {data_format!r}")
    out = conv_output_spatial(
        spatial, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate
    )
    return (units, *out) if data_format == "channels_first" else (*out, units)


def expected_output_structure(
    kind: str,
    *,
    batch: int | None,
    steps: int | None,
    units: int,
    return_sequences: bool = False,
    return_state: bool = False,
    bidirectional: bool = False,
    merge_mode: str | None = "concat",
    spatial: Sequence[int | None] | None = None,
    kernel_size: int | Sequence[int] | None = None,
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    dilation_rate: int | Sequence[int] = 1,
    data_format: str = "channels_last",
) -> Structure:
    """``[(name, shape), ...]`` of what a ``kind`` layer returns, in order.

    A one-element list means the layer returns a bare tensor, not a list.
    ``merge_mode`` only matters with ``bidirectional=True``: ``"concat"`` doubles
    the feature size, ``"sum"``, ``"mul"`` and ``"ave"`` keep it, ``None`` returns
    ``forward output`` and ``backward output`` separately.

    The ConvLSTM kinds (``"conv_lstm1d"`` ...) take ``units`` = ``filters`` and the
    convolution: ``spatial`` (the input's spatial sizes, without steps and
    channels), ``kernel_size``, ``strides``, ``padding``, ``dilation_rate`` and
    ``data_format``. A step of their output, and each state ``h`` and ``c``, is
    ``(*out, filters)`` (``(filters, *out)`` channels-first) with ``out`` from
    :func:`conv_output_spatial`.
    """
    conv = kind in CONV_LSTM_RANKS
    if not conv:
        check_kind(kind)
    batch = _dim("batch", batch, allow_none=True)
    steps = _dim("steps", steps, allow_none=True)
    units = _dim("units", units)
    if merge_mode not in _MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {_MERGE_MODES}; got {merge_mode!r}")
    if conv:
        step: Shape = _conv_step_shape(
            kind, units, spatial, kernel_size, strides, padding, dilation_rate, data_format
        )
        channel = 0 if data_format == "channels_first" else len(step) - 1
    else:
        step, channel = (units,), 0
    doubled = list(step)
    doubled[channel] = 2 * units
    out_step = tuple(doubled) if bidirectional and merge_mode == "concat" else step
    out_shape: Shape = (batch, steps, *out_step) if return_sequences else (batch, *out_step)
    if not bidirectional:
        outputs: Structure = [("output", out_shape)]
        states = [(name, (batch, *step)) for name in STATE_NAMES[kind]]
    else:
        if merge_mode is None:
            outputs = [("forward output", out_shape), ("backward output", out_shape)]
        else:
            outputs = [("output", out_shape)]
        states = [
            (f"{direction} {name}", (batch, *step))
            for direction in ("forward", "backward")
            for name in STATE_NAMES[kind]
        ]
    return outputs + states if return_state else outputs


def expected_structure_of(layer: Any, input_shape: Sequence[int | None]) -> Structure:
    """:func:`expected_output_structure` for a SimpleRNN/LSTM/GRU or ConvLSTM1D/2D/3D
    layer, or a ``Bidirectional`` wrapping one, read from the layer's configuration."""
    from pytest_rnn.checks.models import cell_kind

    inner = getattr(layer, "forward_layer", None)
    bidirectional = inner is not None
    rnn = inner if bidirectional else layer
    common = {
        "batch": input_shape[0] if len(input_shape) > 1 else None,
        "steps": input_shape[1] if len(input_shape) > 1 else None,
        "return_sequences": rnn.return_sequences,
        "return_state": rnn.return_state,
        "bidirectional": bidirectional,
        "merge_mode": layer.merge_mode if bidirectional else "concat",
    }
    rank = getattr(rnn.cell, "rank", None)
    if rank is not None and hasattr(rnn.cell, "filters"):  # a ConvLSTM cell
        if len(input_shape) != rank + 3:
            raise ValueError(
                f"input_shape of a rank-{rank} ConvLSTM must have {rank + 3} axes (batch, "
                f"steps, {rank} spatial and channels); got {tuple(input_shape)!r}"
            )
        first = rnn.cell.data_format == "channels_first"
        return expected_output_structure(
            f"conv_lstm{rank}d",
            units=rnn.cell.filters,
            spatial=tuple(input_shape[3:] if first else input_shape[2:-1]),
            kernel_size=rnn.cell.kernel_size,
            strides=rnn.cell.strides,
            padding=rnn.cell.padding,
            dilation_rate=rnn.cell.dilation_rate,
            data_format=rnn.cell.data_format,
            **common,
        )
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (batch, steps, features); got {tuple(input_shape)!r}"
        )
    return expected_output_structure(cell_kind(rnn), units=rnn.cell.units, **common)


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool)) for d in value
    )


def _flatten(value: Any) -> list[Any]:
    """Leaves of nested lists/tuples of tensors, arrays or shape tuples."""
    if _is_shape(value) or not isinstance(value, (tuple, list)):
        return [value]
    return [leaf for item in value for leaf in _flatten(item)]


def _shape(value: Any) -> Shape | str:
    """The shape of a leaf; for a leaf that is neither a shape nor has one, a description
    (compared unequal to every shape, so the difference is reported, not a crash)."""
    if _is_shape(value):
        return tuple(None if d is None else int(d) for d in value)
    shape = getattr(value, "shape", None)
    if shape is None:
        return f"<not a shape: {type(value).__name__} {value!r}>"
    return tuple(None if d is None else int(d) for d in shape)


def assert_output_structure(
    outputs: Any, expected: Structure, *, what: str = "layer", as_list: bool | None = None
) -> None:
    """Assert ``outputs`` (a layer's result, or ``compute_output_shape``'s) matches ``expected``.

    ``outputs`` may be a tensor/array, a list or tuple of them (nested lists are
    flattened, as for stacked cells' states), or shape tuples. A one-element
    ``expected`` demands a bare tensor: a layer without ``return_state`` that
    suddenly returns a list is a behaviour change. ``as_list=True`` demands a
    list or tuple even of one element (a cell's new states), ``False`` a bare
    tensor; ``None`` infers it from ``len(expected)``. The message names the first
    element whose shape differs, or lists both structures when the counts differ.
    """
    if not expected:
        raise ValueError("expected must list at least one (name, shape) pair")
    single = _is_shape(outputs) or not isinstance(outputs, (tuple, list))
    leaves = _flatten(outputs)
    got = [_shape(leaf) for leaf in leaves]
    names = [name for name, _ in expected]
    want = [tuple(shape) for _, shape in expected]

    def listing(shapes: list[Shape], labels: list[str] | None = None) -> str:
        labels = labels or [f"#{i}" for i in range(len(shapes))]
        return ", ".join(f"{label} {shape}" for label, shape in zip(labels, shapes, strict=True))

    if as_list is None:
        as_list = len(expected) > 1
    if not as_list and not single:
        raise AssertionError(
            f"{what} returned a {type(outputs).__name__} of {len(leaves)} "
            f"({listing(got)}) where a single tensor {names[0]} {want[0]} was expected"
        )
    if as_list and single:
        raise AssertionError(
            f"{what} {RETURNED_A_SINGLE_TENSOR} of shape {got[0]} where a list of "
            f"{len(expected)} was expected: {listing(want, names)}"
        )
    if len(got) != len(want):
        raise AssertionError(
            f"{what} returned {len(got)} elements ({listing(got)}), expected "
            f"{len(want)}: {listing(want, names)}"
        )
    for index, (name, shape, actual) in enumerate(zip(names, want, got, strict=True)):
        if actual != shape:
            raise AssertionError(
                f"{what}: element {index} ({name}) {SHAPE_DIFFERS} {actual}, expected {shape}; "
                f"all returned: {listing(got, names)}"
            )
