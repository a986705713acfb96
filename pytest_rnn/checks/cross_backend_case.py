"""One cross-backend computation: :class:`Case`, what every backend's subprocess computes.

A case travels to the subprocesses as JSON (:func:`dataclasses.asdict`) and comes back
as a :class:`Case` through :func:`case_from_dict`; the subprocesses are started and the
cases computed by :mod:`pytest_rnn.checks.cross_backend`, the results compared by
:mod:`pytest_rnn.checks.cross_backend_compare`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One computation every backend performs.

    ``factory``: ``"package.module:function"`` or ``"/path/to/file.py:Class.method"``
    (a method of a class is called on a new instance: a contract class's ``make_layer``),
    called with ``kwargs``; it returns an unbuilt Keras layer. ``input_shape`` is
    ``(batch, steps, features...)``. ``mask``: ``(batch, steps)`` of 0/1 or None.
    ``initial_state``: pass random initial states (shapes from ``state_shapes``).
    ``stateful``: two calls on the halves of the sequence instead of one with gradients.
    ``inputs``: the inputs as nested lists (default: standard normals from ``seed``).
    """

    name: str
    factory: str
    input_shape: tuple[int, ...]
    seed: int
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    mask: tuple[tuple[int, ...], ...] | None = None
    initial_state: bool = False
    state_shapes: tuple[tuple[int, ...], ...] = ()
    stateful: bool = False
    recurrences: int = 1
    inputs: Any = None

    @property
    def steps(self) -> int:
        return int(self.input_shape[1])

    @property
    def terms(self) -> int:
        """``K``: products summed per pre-activation (features + units + bias)."""
        features = int(np.prod(self.input_shape[2:]))
        units = max((int(np.prod(s)) for s in self.state_shapes), default=features)
        return features + units + 1


def case_from_dict(raw: Mapping[str, Any]) -> Case:
    """The :class:`Case` of its JSON form (lists back to tuples)."""
    data = dict(raw)
    data["input_shape"] = tuple(data["input_shape"])
    data["state_shapes"] = tuple(tuple(s) for s in data.get("state_shapes", ()))
    if data.get("mask") is not None:
        data["mask"] = tuple(tuple(int(v) for v in row) for row in data["mask"])
    return Case(**data)
