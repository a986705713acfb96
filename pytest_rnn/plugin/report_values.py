"""How the report reads a record's data: its numbers, its curves and their x axis.

Records are free-form JSON (:mod:`pytest_rnn.plugin.records`): these helpers find the
numbers and the lists of numbers in them, whatever their nesting, for the tables
(:mod:`~pytest_rnn.plugin.report_html`) and the plots
(:mod:`~pytest_rnn.plugin.report_plots`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

#: Lists in a curve record that number the points (the x axis) rather than being a curve.
X_AXIS_FIELDS = ("epochs", "epoch", "steps", "step")


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def to_number(value: Any) -> float | None:
    """A float from a number or a non-finite number stored as text ("nan", "inf")."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def fmt(value: Any) -> str:
    """A cell's text: floats to 6 significant digits, None as "-"."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "-"
    return str(value)


def scalars(data: dict, prefix: str = "") -> dict[str, Any]:
    """Scalar fields of a record's data; nested dicts give ``outer.inner`` keys, lists none."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(scalars(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def series_of(data: dict, prefix: str = "") -> dict[str, list[float]]:
    """Every list of numbers in a record's data (nested dicts included), by name.

    A nested dict contributes its keys as names (``history.loss`` -> ``loss``)
    unless that name is already taken.
    """
    found: dict[str, list[float]] = {}
    for key, value in data.items():
        if key in X_AXIS_FIELDS:
            continue
        if isinstance(value, dict):
            for name, values in series_of(value, f"{key}.").items():
                found[name if name not in found else f"{prefix}{key}.{name}"] = values
        elif (isinstance(value, list) and len(value) >= 1
              and all(v is None or to_number(v) is not None for v in value)
              and any(v is not None for v in value)):
            found[f"{prefix}{key}" if prefix and key in found else key] = [
                math.nan if v is None else float(to_number(v)) for v in value
            ]
    return found


def x_axis(data: dict, length: int) -> list[float]:
    """The x values of a curve of ``length`` points: a record's ``epochs`` (or ``epoch``,
    ``steps``, ``step``) list when it has that length, else 0, 1, 2, ..."""
    for key in X_AXIS_FIELDS:
        values = data.get(key)
        if (isinstance(values, list) and len(values) == length
                and all(is_number(v) for v in values)):
            return [float(v) for v in values]
    return list(range(length))


def metric_groups(series: dict[str, list[float]]) -> dict[str, list[str]]:
    """Curves drawn together: ``loss`` with ``val_loss``, ``accuracy`` with ``val_accuracy``."""
    groups: dict[str, list[str]] = {}
    for name in series:
        base = name.removeprefix("val_")
        groups.setdefault(base, []).append(name)
    return groups


def main_number(data: dict, preferred: Sequence[str]) -> tuple[str, float] | None:
    for key in preferred:
        number = to_number(data.get(key))
        if number is not None and not isinstance(data.get(key), bool):
            return key, number
    for key, value in data.items():
        if is_number(value):
            return key, float(value)
    return None
