"""The one array comparison of pytest-rnn: it names the tensor, batch, step and unit.

Every check that compares arrays (reference math, the contract, dropout, the suites)
goes through :func:`difference` / :func:`assert_allclose`, so every failure reads the
same way::

    h: 3 of 8 values differ (atol 1e-05, rtol 0); worst at batch 1, unit 2:
    actual 0.412, expected 0.398, |diff| 0.014

For arrays of outputs over time (``batch, step, unit``) the line ends with the
first differing step, which reads as "the sequence starts to differ at step k".
:func:`to_numpy` and :func:`leaves` turn anything a Keras layer returns (tensors of
any backend, nested lists, tuples or dicts) into NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Axis labels by number of dimensions: what each index of an output or state means.
AXES = {1: ("unit",), 2: ("batch", "unit"), 3: ("batch", "step", "unit")}
#: What :func:`difference` says of a tensor with differing elements, after its name and
#: their count (``h: 3 of 8 values differ (atol ...``): the proof of sensitivity quotes it.
VALUES_DIFFER = "values differ"


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy array of ``value``: a tensor of any Keras backend, a variable, or array-like."""
    if isinstance(value, np.ndarray):
        return value
    try:
        import keras

        if isinstance(value, keras.Variable):
            # np.asarray calls Variable.__array__ without `copy`; convert_to_numpy's np.array
            # passes it, which Keras's __array__ does not take (NumPy 2 warns)
            return np.asarray(value)
        from pytest_rnn import backends

        return np.asarray(backends.convert_to_numpy(value))
    except (ImportError, TypeError, ValueError):
        return np.asarray(value)


def weight_values(layer: Any) -> list[np.ndarray]:
    """Copies of ``layer.weights`` as NumPy arrays, which ``layer.set_weights`` takes: what
    ``get_weights()`` returns, without its ``np.array(variable)`` (NumPy 2 passes ``copy`` to
    Keras's ``Variable.__array__``, which does not take it, and warns on JAX)."""
    return [np.array(to_numpy(v)) for v in layer.weights]


def keras_tree() -> Any:
    """``keras.tree``: the one place the checks get Keras's nested-structure utilities.

    Keras < 3.3 has no public ``keras.tree``; it then depended on ``dm-tree`` (module
    ``tree``), which it used for the same structures. Older releases get dm-tree's
    ``flatten``, ``map_structure`` and ``is_nested`` under these names, and its
    ``unflatten_as`` as ``pack_sequence_as``.
    """
    import keras

    if hasattr(keras, "tree"):
        return keras.tree
    import types

    import tree

    return types.SimpleNamespace(flatten=tree.flatten, map_structure=tree.map_structure,
                                 is_nested=tree.is_nested, pack_sequence_as=tree.unflatten_as)


def flatten(value: Any) -> list[Any]:
    """The leaves of a nested structure of outputs (lists, tuples, dicts), in order."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten(item)]
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in flatten(value[key])]
    return [value]


def leaves(value: Any) -> list[np.ndarray]:
    """Every tensor of a layer's (possibly nested) outputs, as NumPy arrays."""
    return [to_numpy(v) for v in flatten(value)]


def where(index: Sequence[int], *, axes: Sequence[str] | None = None,
          steps: Sequence[int] | None = None) -> str:
    """``batch 0, step 4, unit 2`` for an index into an output or state.

    ``axes`` names the axes (default: :data:`AXES` by rank, ``axis k`` beyond);
    ``steps`` maps the step axis of a selection of steps back to the steps' numbers.
    """
    labels = tuple(axes) if axes is not None else AXES.get(
        len(index), tuple(f"axis {k}" for k in range(len(index))))
    parts = []
    for label, i in zip(labels, index, strict=True):
        if label == "step" and steps is not None:
            i = steps[i]
        parts.append(f"{label} {int(i)}")
    return ", ".join(parts)


def difference(name: str, actual: Any, expected: Any, *, atol: float, rtol: float = 0.0,
               axes: Sequence[str] | None = None, steps: Sequence[int] | None = None,
               labels: tuple[str, str] = ("actual", "expected")) -> str | None:
    """One line saying how ``actual`` differs from ``expected``, or None when it does not.

    Elements differ when ``|actual - expected| > atol + rtol * |expected|`` (NaN
    always differs). The line gives the count, the worst element's position (see
    :func:`where`) and values, and for ``(batch, step, unit)`` arrays the first
    differing step.
    """
    got, want = to_numpy(actual), to_numpy(expected)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, {labels[1]} shape {want.shape}"
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    diff = np.abs(got64 - want64)
    bad = ~(diff <= atol + rtol * np.abs(want64))
    if not bad.any():
        return None
    worst = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf),
                                                    -1.0))), diff.shape)
    line = (
        f"{name}: {int(bad.sum())} of {bad.size} {VALUES_DIFFER} (atol {atol:g}, rtol {rtol:g}); "
        f"worst at {where(worst, axes=axes, steps=steps)}: {labels[0]} {got64[worst]:.6g}, "
        f"{labels[1]} {want64[worst]:.6g}, |diff| {diff[worst]:.3g}"
    )
    labels_of_axes = tuple(axes) if axes is not None else AXES.get(got.ndim, ())
    if "step" in labels_of_axes:
        axis = labels_of_axes.index("step")
        others = tuple(k for k in range(got.ndim) if k != axis)
        first = int(np.argwhere(bad.any(axis=others))[0][0])
        line += f"; first differing step {steps[first] if steps is not None else first}"
    return line


def named(values: Any, names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """``[(name, array), ...]``: pairs as given, or leaves named by ``names`` (or position)."""
    if isinstance(values, list) and values and all(
            isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in values):
        return [(n, to_numpy(a)) for n, a in values]
    arrays = leaves(values)
    if names is None:
        names = ["output"] if len(arrays) == 1 else [f"output {i}" for i in range(len(arrays))]
    return list(zip(names, arrays, strict=False))


def assert_allclose(actual: Any, expected: Any, what: str = "values differ", *, atol: float,
                    rtol: float = 0.0, names: Sequence[str] | None = None,
                    labels: tuple[str, str] = ("actual", "expected"),
                    axes: Sequence[Sequence[str] | None] | None = None) -> None:
    """Assert two (nested) structures of arrays are equal within ``atol + rtol * |expected|``.

    ``expected`` may be ``[(name, array), ...]`` (a reference's named outputs) or any
    structure; ``names`` names the leaves otherwise. The ``AssertionError`` starts with
    ``what`` (say what is compared with what) and lists a line (:func:`difference`) for
    every tensor that differs. ``axes`` names each leaf's axes (see :func:`where`; None
    for the default by rank), for outputs with more axes than ``batch, step, unit``.
    """
    want = named(expected, names)
    leaf_axes = list(axes) if axes is not None else [None] * len(want)
    got = leaves(actual)
    if len(got) != len(want):
        shapes = ", ".join(str(g.shape) for g in got)
        raise AssertionError(
            f"{what}: {labels[0]} returned {len(got)} tensors ({shapes}); the {labels[1]} "
            f"expects {len(want)}: {', '.join(n for n, _ in want)}"
        )
    problems = [
        line for (name, ref), value, names_of_axes in zip(want, got, leaf_axes, strict=True)
        if (line := difference(name, value, ref, atol=atol, rtol=rtol, labels=labels,
                               axes=names_of_axes))
    ]
    if problems:
        raise AssertionError(f"{what}:\n  " + "\n  ".join(problems))


def max_abs_diff(a: Any, b: Any) -> float:
    """The largest ``|a - b|`` over every leaf of two structures of the same shapes."""
    return max((float(np.max(np.abs(u.astype(np.float64) - v.astype(np.float64))))
                if u.size else 0.0 for u, v in zip(leaves(a), leaves(b), strict=True)),
               default=0.0)
