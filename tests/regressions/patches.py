"""Helpers that inject a regression into Keras by monkeypatching its *classes*.

Patching the class (not a layer instance, not ``keras.layers``' public names) means every
layer a suite builds afterwards has the regression, however the suite imported Keras.
Every helper takes the :class:`pytest.MonkeyPatch` that :func:`injected` hands to a
catalogue entry's ``apply``, so one ``undo()`` removes all of it.

Every replacement a helper installs counts its calls in :data:`TALLY`: a regression whose
patched code never ran (a kernel that bypasses the patched cell, a method Keras no longer
calls) cannot have caused the failure it is credited with, and the judge says so.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Apply = Callable[[pytest.MonkeyPatch], None]


class Tally:
    """Calls of the replacements installed since the last :meth:`reset`, by ``Class.method``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def reset(self) -> None:
        self.calls = Counter()

    def install(self, label: str) -> None:
        self.calls[label] += 0  # listed (with 0 calls) as soon as it is installed

    def count(self, label: str) -> None:
        self.calls[label] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.calls.items()))


TALLY = Tally()


@contextlib.contextmanager
def injected(apply: Apply) -> Iterator[Tally]:
    """Apply a regression for the duration of the block, then undo every patch.

    The one apply/undo path: the runner's groups and the accuracy check both come here.
    """
    monkeypatch = pytest.MonkeyPatch()
    TALLY.reset()
    try:
        apply(monkeypatch)
        yield TALLY
    finally:
        monkeypatch.undo()


def keras_internals() -> dict[str, Any]:
    """Keras's internal classes and modules (imported when a patch is applied): the one
    place of the regression harness that names them (tests/test_adapters.py)."""
    import importlib

    from keras.src import api_export, backend, initializers, ops
    from keras.src.layers.core.embedding import Embedding
    from keras.src.layers.rnn import (
        bidirectional,
        conv_lstm,
        dropout_rnn_cell,
        gru,
        lstm,
        rnn,
        simple_rnn,
        stacked_rnn_cells,
    )
    from keras.src.utils.backend_utils import in_tf_graph

    return {
        "api_export": api_export,
        "backend": backend,
        "initializers": initializers,
        "ops": ops,
        "RNN": rnn.RNN,
        "SimpleRNN": simple_rnn.SimpleRNN,
        "SimpleRNNCell": simple_rnn.SimpleRNNCell,
        "LSTM": lstm.LSTM,
        "LSTMCell": lstm.LSTMCell,
        "GRU": gru.GRU,
        "GRUCell": gru.GRUCell,
        "Bidirectional": bidirectional.Bidirectional,
        "DropoutRNNCell": dropout_rnn_cell.DropoutRNNCell,
        "Embedding": Embedding,
        "ConvLSTM": conv_lstm.ConvLSTM,
        "ConvLSTMCell": conv_lstm.ConvLSTMCell,
        "StackedRNNCells": stacked_rnn_cells.StackedRNNCells,
        "in_tf_graph": in_tf_graph,
        "tensorflow_rnn": (importlib.import_module("keras.src.backend.tensorflow.rnn")
                           if backend.backend() == "tensorflow" else None),
    }


def cells() -> tuple[type, ...]:
    """The three built-in recurrent cell classes."""
    k = keras_internals()
    return (k["SimpleRNNCell"], k["LSTMCell"], k["GRUCell"])


def _label(owner: Any, name: str) -> str:
    return f"{getattr(owner, '__name__', type(owner).__name__)}.{name}"


def _counted(label: str, function: Callable) -> Callable:
    TALLY.install(label)

    @functools.wraps(function)
    def counted(*args, **kwargs):
        TALLY.count(label)
        return function(*args, **kwargs)

    # functools.wraps gives inspect.signature the replaced function's signature, but not
    # inspect.getfullargspec, which Keras reads on __init__ (Operation.__new__) and which
    # follows only an explicit __signature__
    with contextlib.suppress(TypeError, ValueError):
        counted.__signature__ = inspect.signature(function)
    return counted


def replace(mp: pytest.MonkeyPatch, owner: Any, name: str, function: Any) -> None:
    """Set ``owner.name`` to ``function`` (a function or a classmethod), counted in
    :data:`TALLY`."""
    label = _label(owner, name)
    if isinstance(function, classmethod):
        mp.setattr(owner, name, classmethod(_counted(label, function.__func__)))
    else:
        mp.setattr(owner, name, _counted(label, function))


def wrap(mp: pytest.MonkeyPatch, owner: Any, name: str,
         make: Callable[[Callable], Callable]) -> None:
    """Replace ``owner.name`` by ``make(original)``, keeping the original's signature
    (Keras inspects ``call`` signatures for ``training`` and ``mask``)."""
    original = getattr(owner, name)
    replacement = functools.wraps(original)(make(original))
    mp.setattr(owner, name, _counted(_label(owner, name), replacement))


def change_default(mp: pytest.MonkeyPatch, func: Callable, param: str, value: Any) -> None:
    """Change the default of ``param`` in ``func``'s signature, as a release would."""
    params = list(inspect.signature(func).parameters.values())
    positional = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]
    if param in positional:
        defaults = list(func.__defaults__)
        defaults[positional.index(param)] = value
        mp.setattr(func, "__defaults__", tuple(defaults))
    else:
        mp.setattr(func, "__kwdefaults__", {**func.__kwdefaults__, param: value})


def with_attribute(mp: pytest.MonkeyPatch, cls: type, method: str, attr: str,
                   value_of: Callable[[Any, Any], Any]) -> None:
    """Run ``cls.method`` with ``self.attr`` temporarily set to ``value_of(self, old)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            saved = getattr(self, attr)
            object.__setattr__(self, attr, value_of(self, saved))
            try:
                return original(self, *args, **kwargs)
            finally:
                object.__setattr__(self, attr, saved)

        return patched

    wrap(mp, cls, method, make)


def with_weights(mp: pytest.MonkeyPatch, cls: type, edit: Callable[[Any, dict], dict]) -> None:
    """Run ``cls.call`` with some weight values temporarily replaced: ``edit(cell, values)``
    gets ``{"kernel": array, ...}`` and returns the arrays to use (a computation that reads
    gates from the wrong columns, drops or doubles a bias ...)."""
    import numpy as np

    def make(original):
        def patched(self, *args, **kwargs):
            names = [n for n in ("kernel", "recurrent_kernel", "bias")
                     if getattr(self, n, None) is not None]
            saved = {n: np.array(getattr(self, n).numpy()) for n in names}
            edited = edit(self, {n: v.copy() for n, v in saved.items()})
            for n in names:
                getattr(self, n).assign(edited[n])
            try:
                return original(self, *args, **kwargs)
            finally:
                for n in names:
                    getattr(self, n).assign(saved[n])

        return patched

    wrap(mp, cls, "call", make)


def swap_blocks(array, units: int, a: int, b: int, axis: int = -1):
    """``array`` with gate column blocks ``a`` and ``b`` swapped."""
    import numpy as np

    index = np.arange(array.shape[axis])
    index[a * units : (a + 1) * units], index[b * units : (b + 1) * units] = (
        np.arange(b * units, (b + 1) * units),
        np.arange(a * units, (a + 1) * units),
    )
    return np.take(array, index, axis=axis)


def returning(mp: pytest.MonkeyPatch, cls: type, method: str,
              transform: Callable[[Any, Any], Any]) -> None:
    """Pass ``cls.method``'s result through ``transform(self, result)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            return transform(self, original(self, *args, **kwargs))

        return patched

    wrap(mp, cls, method, make)


def with_kwargs(mp: pytest.MonkeyPatch, cls: type, method: str,
                edit: Callable[[Any, dict], dict]) -> None:
    """Call ``cls.method`` with keyword arguments edited by ``edit(self, kwargs)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            return original(self, *args, **edit(self, kwargs))

        return patched

    wrap(mp, cls, method, make)


def with_states(mp: pytest.MonkeyPatch, cls: type, transform: Callable[[Any], Any]) -> None:
    """Call ``cls.call(inputs, states, ...)`` with every state tensor passed through
    ``transform`` (the step function of every recurrent layer built on the cell)."""
    from pytest_rnn.checks.compare import keras_tree  # keras.tree from Keras 3.3

    tree = keras_tree()

    def make(original):
        def patched(self, inputs, states, *args, **kwargs):
            return original(self, inputs, tree.map_structure(transform, states), *args, **kwargs)

        return patched

    wrap(mp, cls, "call", make)


def after_build(mp: pytest.MonkeyPatch, cls: type, action: Callable[[Any], None]) -> None:
    """Run ``action(self)`` after ``cls.build``."""

    def make(original):
        def patched(self, *args, **kwargs):
            original(self, *args, **kwargs)
            action(self)

        return patched

    wrap(mp, cls, "build", make)
