"""Entry keys, and the checked inputs a test's baseline check is keyed and judged by.

An entry key is ``<test id>::<metric>``, plus ``::device=<key>`` for values that
depend on the hardware, ``::tf=<M.m>::keras=<M.m>`` for values that depend on
the versions, and ``::backend=<name>`` for values that depend on the Keras backend
(JAX, PyTorch; TensorFlow, the default every entry was recorded on before backends were
keyed, adds nothing, so those entries keep their keys). The metric name, tolerance,
direction and measured value a test passes are checked here (:func:`check_metric_name`,
:func:`check_tolerance`, :func:`check_direction`, :func:`as_number`), each a ValueError
naming what is accepted. Re-exported by :mod:`pytest_rnn.store.rules`; no pytest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pytest_rnn.store.files import DIRECTIONS, is_number

__all__ = [
    "DEFAULT_BACKEND",
    "DIRECTION_OF",
    "as_number",
    "check_direction",
    "check_metric_name",
    "check_tolerance",
    "entry_key",
    "major_minor",
]

#: ``higher_is_better`` argument -> stored direction.
DIRECTION_OF = {True: "higher", False: "lower", None: "both"}
_METRIC_RE = re.compile(r"^[A-Za-z0-9_.\-/%]+$")


def major_minor(version: str | None) -> str:
    if not version:
        return "none"
    return ".".join(version.split(".")[:2])


#: The Keras backend whose entries carry no ``::backend=`` part.
DEFAULT_BACKEND = "tensorflow"


def entry_key(test_id: str, metric: str, *, device_key: str | None = None,
              versions: Mapping[str, str | None] | None = None,
              backend: str | None = None) -> str:
    """``<test id>::<metric>[::device=<key>][::tf=<M.m>::keras=<M.m>][::backend=<name>]``;
    no backend part for ``backend`` None or :data:`DEFAULT_BACKEND`."""
    parts = [test_id, metric]
    if device_key is not None:
        parts.append(f"device={device_key}")
    if versions is not None:
        parts.append(f"tf={major_minor(versions.get('tensorflow'))}")
        parts.append(f"keras={major_minor(versions.get('keras'))}")
    if backend is not None and backend != DEFAULT_BACKEND:
        parts.append(f"backend={backend}")
    return "::".join(parts)


def check_metric_name(metric: Any) -> str:
    if not isinstance(metric, str) or not _METRIC_RE.match(metric):
        raise ValueError(
            f"metric must be a non-empty name of letters, digits and '_.-/%' (no '::' or "
            f"spaces); got {metric!r}"
        )
    return metric


def check_tolerance(tolerance: Any) -> float:
    try:
        number = as_number("tolerance", tolerance)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    return number


def check_direction(higher_is_better: Any) -> str:
    if higher_is_better not in DIRECTION_OF:
        raise ValueError(
            f"higher_is_better must be True, False or None (two-sided); got {higher_is_better!r}"
        )
    direction = DIRECTION_OF[higher_is_better]
    assert direction in DIRECTIONS
    return direction


def as_number(name: str, value: Any) -> float:
    """``value`` as a float: a Python or NumPy real, or a 0-d/one-element array or tensor.

    Keras, TensorFlow, JAX and PyTorch scalars all convert through ``__array__`` or
    ``.numpy()``/``.item()``. Anything else is a ``ValueError`` naming ``name`` and
    what is accepted.
    """
    if is_number(value):
        return float(value)
    accepted = ("a real number, a NumPy scalar, or a 0-d array/tensor (Keras, TensorFlow, "
                "JAX, PyTorch)")
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise ValueError(f"{name} must be {accepted}; got {value!r}")
    try:
        import numpy as np

        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except Exception:  # noqa: BLE001 - any failure to convert is the same bad input
        raise ValueError(f"{name} must be {accepted}; got {type(value).__name__}") from None
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must be {accepted}; got {type(value).__name__} of shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    return float(array.reshape(()))
