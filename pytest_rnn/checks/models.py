"""Builders of the models the seed tutorials train, and small helpers for recurrent layers.

The fast suites count these models' parameters; the slow suites train them on
IMDB and the marked-product task. Every builder takes the seed's values as
defaults and lets a suite shrink them (``units``, ``vocab``, ``maxlen``, dropout)
so the same architecture can be checked quickly on CPU or trained for real.

Seed models and how to build them:

=====================================================  =====================================
seed model                                             call
=====================================================  =====================================
Embedding(500,16) + LSTM(8) + Dense(1) (8,809 params)  ``imdb_classifier("lstm")``
... with LSTM(8, dropout=0.3)                          ``imdb_classifier("lstm", dropout=0.3)``
stacked LSTM(8) + LSTM(8), dropout 0.3 (9,353)         ``imdb_classifier("lstm", layers=2,
                                                       dropout=0.3)``
Embedding(500,16) + GRU(8) + Dense(1) (8,633)          ``imdb_classifier("gru")``
Embedding(1000,32) + SimpleRNN(8) + Dense(1)           ``imdb_classifier("simple_rnn",
                                                       vocab=1000, embed_dim=32)``
SimpleRNN(32) on one-hot (100, 100) + Dense(1)         ``onehot_classifier()``
marked product, 2 x RNN(30) + Dense(1)                 ``marked_product_regressor(kind)``
(2,851 / 11,311 / 8,671 for simple_rnn / lstm / gru)
Embedding(10000,128) + Bidirectional(LSTM(64))         ``bidirectional_classifier()``
+ Dropout(0.5) + Dense(1)
=====================================================  =====================================
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks.params import KINDS, check_kind

#: Keras layer class and cell class of each kind.
LAYER_CLASSES: dict[str, type] = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}
CELL_CLASSES: dict[str, type] = {
    "simple_rnn": keras.layers.SimpleRNNCell,
    "lstm": keras.layers.LSTMCell,
    "gru": keras.layers.GRUCell,
}
MERGE_MODES: tuple[str | None, ...] = ("concat", "sum", "mul", "ave", None)

__all__ = [
    "CELL_CLASSES",
    "KINDS",
    "LAYER_CLASSES",
    "MERGE_MODES",
    "bidirectional_classifier",
    "build_random",
    "cell_kind",
    "copy_layer",
    "imdb_classifier",
    "marked_product_regressor",
    "onehot_classifier",
    "randomize_weights",
    "rnn_cell",
    "rnn_layer",
    "task_model",
]

#: The cell variants a suite parametrizes over: name -> (kind, layer arguments). GRU
#: appears twice because its two bias layouts (``reset_after``) are different equations.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "simple_rnn": ("simple_rnn", {}),
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "gru_reset_before": ("gru", {"reset_after": False}),
}


def rnn_layer(kind: str, units: int, **kwargs: Any) -> keras.layers.Layer:
    """A Keras ``kind`` layer (``"simple_rnn"``, ``"lstm"``, ``"gru"``) with ``units`` units."""
    return LAYER_CLASSES[check_kind(kind)](_positive("units", units), **kwargs)


def keras_own_loop() -> dict[str, Any]:
    """Keyword arguments that keep an LSTM/GRU on Keras's own loop: ``use_cudnn=False``.

    Keras < 3.2 has no ``use_cudnn``; there this is ``{}``: its layers pick the kernel
    themselves and never send a masked call to cuDNN (the backend refuses masks), so the
    masked calls these arguments are for take Keras's own loop anyway.
    """
    from pytest_rnn.runtime.versions import keras_lacks

    return {} if keras_lacks("use_cudnn") else {"use_cudnn": False}


def rnn_cell(kind: str, units: int, **kwargs: Any) -> keras.layers.Layer:
    """A Keras ``kind`` cell with ``units`` units."""
    return CELL_CLASSES[check_kind(kind)](_positive("units", units), **kwargs)


def cell_kind(layer_or_cell: Any) -> str:
    """The kind of a recurrent layer or cell (``"simple_rnn"``, ``"lstm"`` or ``"gru"``).

    Subclasses count as their base kind. A ValueError names anything else, for
    instance a custom cell or a ``StackedRNNCells``.
    """
    cell = getattr(layer_or_cell, "cell", layer_or_cell)
    for kind, cls in CELL_CLASSES.items():
        if isinstance(cell, cls):
            return kind
    raise ValueError(
        f"expected a SimpleRNN, LSTM or GRU layer or cell; got {type(layer_or_cell).__name__}"
    )


def randomize_weights(
    layer: keras.layers.Layer, rng: np.random.Generator | int, *, scale: float = 0.5
) -> list[np.ndarray]:
    """Give every weight of a built layer values drawn uniformly from ``[-scale, scale]``.

    Keras initialises biases to zeros (and the LSTM forget bias to ones), so a
    check on default weights cannot notice a bias that is added twice, or to the
    wrong gate. Random non-zero values for every weight make such mistakes
    visible. ``rng`` is a NumPy Generator or a seed (use the test's ``rnn_seed``).
    Returns the arrays that were set.
    """
    if not layer.built:
        raise ValueError(f"layer {layer.name!r} is not built; build it before randomizing")
    if not (isinstance(scale, numbers.Real) and scale > 0):
        raise ValueError(f"scale must be a positive number; got {scale!r}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    values = [
        rng.uniform(-scale, scale, size=tuple(w.shape)).astype(w.dtype) for w in layer.weights
    ]
    layer.set_weights(values)
    return values


def build_random(
    layer: keras.layers.Layer,
    input_shape: tuple,
    rng: np.random.Generator | int,
    *,
    scale: float = 0.5,
) -> keras.layers.Layer:
    """Build ``layer`` for ``input_shape`` and :func:`randomize_weights` it; returns ``layer``."""
    if not layer.built:
        layer.build(tuple(input_shape))
    randomize_weights(layer, rng, scale=scale)
    return layer


def copy_layer(
    layer: keras.layers.Layer, input_shape: tuple, **config_overrides: Any
) -> keras.layers.Layer:
    """A new layer from ``layer``'s config with ``config_overrides``, holding the same weights.

    The way to compare two code paths of one layer (``go_backwards``, ``unroll``,
    ``implementation``) on identical weights. ``input_shape`` builds the copy.
    """
    config = {**layer.get_config(), **config_overrides}
    config.pop("name", None)
    twin = type(layer).from_config(config)
    twin.build(tuple(input_shape))
    twin.set_weights(layer.get_weights())
    return twin


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1); got {value!r}")
    return int(value)


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


def _recurrent_stack(
    kind: str,
    units: int,
    layers: int,
    *,
    dropout: float,
    recurrent_dropout: float,
    bidirectional: bool = False,
    merge_mode: str | None = "concat",
    **rnn_kwargs: Any,
) -> list[keras.layers.Layer]:
    """``layers`` recurrent layers; all but the last return sequences, as stacking needs."""
    check_kind(kind)
    units = _positive("units", units)
    layers = _positive("layers", layers)
    dropout = _rate("dropout", dropout)
    recurrent_dropout = _rate("recurrent_dropout", recurrent_dropout)
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}; got {merge_mode!r}")
    stack = []
    for index in range(layers):
        layer = rnn_layer(
            kind,
            units,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            return_sequences=index < layers - 1,
            **rnn_kwargs,
        )
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, merge_mode=merge_mode)
        stack.append(layer)
    return stack


def imdb_classifier(
    kind: str = "lstm",
    *,
    units: int = 8,
    vocab: int = 500,
    embed_dim: int = 16,
    maxlen: int | None = 100,
    layers: int = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    bidirectional: bool = False,
    merge_mode: str | None = "concat",
    head_dropout: float = 0.0,
    **rnn_kwargs: Any,
) -> keras.Sequential:
    """Embedding(vocab, embed_dim) + ``layers`` recurrent layers + Dense(1, sigmoid).

    The defaults are the seeds' IMDB setup (``num_words=500``, ``maxlen=100``,
    Embedding(500, 16), 8 units). ``maxlen=None`` accepts any length.
    ``head_dropout`` adds a Dropout layer before the output, as the seeds'
    bidirectional model does. Extra keyword arguments go to every recurrent layer.
    The model is built (an ``Input`` comes first) but not compiled.
    """
    vocab = _positive("vocab", vocab)
    embed_dim = _positive("embed_dim", embed_dim)
    if maxlen is not None:
        maxlen = _positive("maxlen", maxlen)
    head_dropout = _rate("head_dropout", head_dropout)
    model = keras.Sequential(name=f"imdb_{kind}")
    model.add(keras.Input(shape=(maxlen,), dtype="int32"))
    model.add(keras.layers.Embedding(vocab, embed_dim))
    for layer in _recurrent_stack(
        kind,
        units,
        layers,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        **rnn_kwargs,
    ):
        model.add(layer)
    if head_dropout:
        model.add(keras.layers.Dropout(head_dropout))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def bidirectional_classifier(
    kind: str = "lstm",
    *,
    units: int = 64,
    vocab: int = 10000,
    embed_dim: int = 128,
    maxlen: int | None = 200,
    merge_mode: str | None = "concat",
    head_dropout: float = 0.5,
    **kwargs: Any,
) -> keras.Sequential:
    """The seeds' bidirectional IMDB model: Embedding(10000, 128) + Bidirectional(LSTM(64))
    + Dropout(0.5) + Dense(1, sigmoid); every size can be shrunk for fast checks."""
    return imdb_classifier(
        kind,
        units=units,
        vocab=vocab,
        embed_dim=embed_dim,
        maxlen=maxlen,
        bidirectional=True,
        merge_mode=merge_mode,
        head_dropout=head_dropout,
        **kwargs,
    )


def onehot_classifier(
    kind: str = "simple_rnn",
    *,
    units: int = 32,
    vocab: int = 100,
    maxlen: int = 100,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    **rnn_kwargs: Any,
) -> keras.Sequential:
    """A recurrent layer on one-hot words, input ``(maxlen, vocab)``, + Dense(1, sigmoid).

    The seeds' first SimpleRNN model: SimpleRNN(32) on ``(100, 100)`` one-hot input
    (4,256 recurrent parameters, 33 in the Dense layer).
    """
    vocab = _positive("vocab", vocab)
    maxlen = _positive("maxlen", maxlen)
    model = keras.Sequential(name=f"onehot_{kind}")
    model.add(keras.Input(shape=(maxlen, vocab)))
    for layer in _recurrent_stack(
        kind, units, 1, dropout=dropout, recurrent_dropout=recurrent_dropout, **rnn_kwargs
    ):
        model.add(layer)
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def marked_product_regressor(
    kind: str = "gru",
    *,
    units: int = 30,
    steps: int = 100,
    layers: int = 2,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    **rnn_kwargs: Any,
) -> keras.Sequential:
    """The seeds' marked-product model: ``layers`` recurrent layers of ``units`` on
    ``(steps, 2)`` input (a marker channel and a value channel), + linear Dense(1).

    With the defaults the totals are 2,851 (simple_rnn), 11,311 (lstm), 8,671 (gru).
    """
    steps = _positive("steps", steps)
    model = keras.Sequential(name=f"marked_product_{kind}")
    model.add(keras.Input(shape=(steps, 2)))
    for layer in _recurrent_stack(
        kind, units, layers, dropout=dropout, recurrent_dropout=recurrent_dropout, **rnn_kwargs
    ):
        model.add(layer)
    model.add(keras.layers.Dense(1))
    return model


def task_model(
    kind: str,
    task: Any,
    *,
    units: int = 16,
    layers: int = 1,
    **rnn_kwargs: Any,
) -> keras.Sequential:
    """``layers`` recurrent layers of ``units`` + the head a toy task needs.

    ``task`` is a :class:`pytest_rnn.tasks.SequenceTask`: the input is its
    ``input_shape``, the output ``Dense(task.output_units, task.output_activation)``.
    A task whose targets have a time axis (``copy_memory``) gets
    ``return_sequences=True`` on the last recurrent layer, so the head runs per step.
    """
    units = _positive("units", units)
    layers = _positive("layers", layers)
    per_step = np.ndim(task.y_train) == 2 and task.y_train.shape[1] == task.input_shape[0] > 1
    model = keras.Sequential(name=f"{task.name}_{kind}")
    model.add(keras.Input(shape=tuple(task.input_shape)))
    for index in range(layers):
        model.add(rnn_layer(kind, units, return_sequences=per_step or index < layers - 1,
                            **rnn_kwargs))
    model.add(keras.layers.Dense(task.output_units, activation=task.output_activation))
    return model
