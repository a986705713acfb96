"""Parameter counts of Keras recurrent layers: the closed forms, and an assertion.

The closed forms are written out here, independently of Keras, so that a suite
comparing them with ``layer.count_params()`` notices when a release changes how
many weights a layer creates (a dropped bias row, an extra gate, a frozen weight).

This module imports neither TensorFlow nor Keras: the formulas are plain
arithmetic, and :func:`assert_param_count` only reads attributes of the object
it is given.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

#: The recurrent layer kinds pytest-rnn knows, by the names used throughout
#: (``expected_param_count``, the model builders, the reference forward passes).
KINDS: tuple[str, ...] = ("simple_rnn", "lstm", "gru")

#: Gates (blocks of ``units`` columns) in one kernel of each kind.
GATES: dict[str, int] = {"simple_rnn": 1, "lstm": 4, "gru": 3}

#: The convolutional LSTM kinds (``keras.layers.ConvLSTM1D/2D/3D``), by the rank of
#: their convolutions. Their ``units`` is the layer's ``filters``, their ``input_dim``
#: the input's channels.
CONV_LSTM_RANKS: dict[str, int] = {"conv_lstm1d": 1, "conv_lstm2d": 2, "conv_lstm3d": 3}
CONV_LSTM_KINDS: tuple[str, ...] = tuple(CONV_LSTM_RANKS)

#: What :func:`assert_param_count` says between the count it found and the count it
#: expected (``LSTM 'lstm' has 60 trainable parameters, expected 96``): the proof of
#: sensitivity quotes it.
COUNT_DIFFERS = "parameters, expected"


def check_kind(kind: Any) -> str:
    """Return ``kind`` if it is one of :data:`KINDS`, else raise a ValueError naming it."""
    return _one_of(KINDS, kind)


def check_conv_kind(kind: Any) -> str:
    """Return ``kind`` if it is one of :data:`CONV_LSTM_KINDS`, else raise a ValueError."""
    return _one_of(CONV_LSTM_KINDS, kind)


def _one_of(kinds: tuple[str, ...], kind: Any) -> str:
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(map(repr, kinds))}; got {kind!r}")
    return kind


def conv_tuple(name: str, value: Any, rank: int) -> tuple[int, ...]:
    """``value`` (one positive integer, or ``rank`` of them) as a tuple of ``rank`` integers,
    as Keras reads ``kernel_size``, ``strides`` and ``dilation_rate``."""
    values = (value,) * rank if not isinstance(value, (tuple, list)) else tuple(value)
    if len(values) != rank or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            f"{name} must be a positive integer or a tuple of {rank} positive integers; "
            f"got {value!r}"
        )
    return tuple(int(v) for v in values)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value!r}")
    return int(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def expected_param_count(
    kind: str,
    units: int,
    input_dim: int,
    *,
    use_bias: bool = True,
    reset_after: bool = True,
    bidirectional: bool = False,
    kernel_size: int | tuple[int, ...] | None = None,
) -> int:
    """Number of weights a ``kind`` layer with ``units`` units has on ``input_dim`` features.

    Each gate owns a kernel column block (``input_dim x units``), a recurrent
    block (``units x units``) and, with ``use_bias``, one bias per unit. A GRU with
    ``reset_after=True`` (Keras's default, the cuDNN layout) keeps separate input
    and recurrent biases, so its bias has two rows: ``3*u*(d+u+2)`` rather than
    ``3*u*(d+u+1)``. ``bidirectional`` doubles the count (two independent layers).

    ``reset_after`` only exists for GRU; passing ``reset_after=False`` with another
    kind is refused, since it usually means the caller meant a GRU.

    The ConvLSTM kinds (:data:`CONV_LSTM_KINDS`) take ``units`` = ``filters``,
    ``input_dim`` = input channels and ``kernel_size`` (required; an integer or one
    per spatial axis). Each of the four gates owns an input kernel
    (``prod(kernel_size) x channels x filters``), a recurrent kernel
    (``prod(kernel_size) x filters x filters``: the state is convolved with a kernel
    of the same size) and ``filters`` biases: ``4*f*(k*(c + f) + 1)`` with ``k`` the
    kernel's number of positions. Strides, padding, dilation and the input's spatial
    size change the output's shape, never the count.
    """
    if kind in CONV_LSTM_RANKS:
        units = _positive_int("filters (units)", units)
        input_dim = _positive_int("input channels (input_dim)", input_dim)
        _flag("use_bias", use_bias)
        _flag("bidirectional", bidirectional)
        if not reset_after:
            raise ValueError(f"reset_after applies to kind='gru' only; got it with {kind!r}")
        if kernel_size is None:
            raise ValueError(f"kind={kind!r} needs kernel_size (an integer or a tuple)")
        positions = math.prod(conv_tuple("kernel_size", kernel_size, CONV_LSTM_RANKS[kind]))
        count = 4 * units * (positions * (input_dim + units) + (1 if use_bias else 0))
        return 2 * count if bidirectional else count
    if kernel_size is not None:
        raise ValueError(
            f"kernel_size applies to the ConvLSTM kinds only; got it with kind={kind!r}"
        )
    check_kind(kind)
    units = _positive_int("units", units)
    input_dim = _positive_int("input_dim", input_dim)
    _flag("use_bias", use_bias)
    _flag("reset_after", reset_after)
    _flag("bidirectional", bidirectional)
    if kind != "gru" and not reset_after:
        raise ValueError(
            f"reset_after applies to kind='gru' only; got reset_after=False with kind={kind!r}"
        )
    bias_rows = (2 if kind == "gru" and reset_after else 1) if use_bias else 0
    count = GATES[kind] * units * (input_dim + units + bias_rows)
    return 2 * count if bidirectional else count


def weight_table(layer_or_model: Any) -> list[tuple[str, tuple[int, ...], bool, int]]:
    """``(path, shape, trainable, size)`` of every weight of a built layer or model."""
    rows = []
    for weight in layer_or_model.weights:
        shape = tuple(int(d) for d in weight.shape)
        name = getattr(weight, "path", None) or weight.name
        rows.append((name, shape, bool(weight.trainable), math.prod(shape)))
    return rows


def _describe(layer_or_model: Any, rows: list[tuple[str, tuple[int, ...], bool, int]]) -> str:
    lines = [f"weights of {type(layer_or_model).__name__} {layer_or_model.name!r}:"]
    if not rows:
        lines.append("  (none)")
    width = max((len(name) for name, *_ in rows), default=0)
    for name, shape, trainable, size in rows:
        kind = "trainable" if trainable else "non-trainable"
        lines.append(f"  {name:<{width}}  shape={shape!s:<14} {size:>9,}  {kind}")
    return "\n".join(lines)


def assert_param_count(layer_or_model: Any, expected: int, *, trainable: int | None = None) -> None:
    """Assert a built layer or model has ``expected`` weights (and ``trainable`` trainable ones).

    The failure message lists every weight with its path, shape, size and
    whether it is trainable, so a changed count points at the weight that
    changed instead of at a single total.
    """
    _count("expected", expected)
    if trainable is not None:
        _count("trainable", trainable)
    if not getattr(layer_or_model, "built", False):
        raise ValueError(
            f"{type(layer_or_model).__name__} {getattr(layer_or_model, 'name', '?')!r} is not "
            "built, so it has no weights yet: build it (call it, or give a Sequential an "
            "Input) before counting"
        )
    rows = weight_table(layer_or_model)
    total = sum(size for *_, size in rows)
    n_trainable = sum(size for _, _, is_trainable, size in rows if is_trainable)
    problems = []
    if total != expected:
        problems.append(f"{total:,} {COUNT_DIFFERS} {expected:,} ({total - expected:+,})")
    if trainable is not None and n_trainable != trainable:
        problems.append(
            f"{n_trainable:,} trainable {COUNT_DIFFERS} {trainable:,} "
            f"({n_trainable - trainable:+,})"
        )
    if problems:
        raise AssertionError(
            f"{type(layer_or_model).__name__} {layer_or_model.name!r} has "
            + " and ".join(problems)
            + f"; total {total:,} = {n_trainable:,} trainable + {total - n_trainable:,} "
            "non-trainable\n" + _describe(layer_or_model, rows)
        )
