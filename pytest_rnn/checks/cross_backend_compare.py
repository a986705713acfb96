"""Comparing the results of the cross-backend subprocesses, within a derived tolerance.

:func:`compare_results` compares every backend's results with the reference backend's
(the first of :data:`BACKENDS` present) through :mod:`pytest_rnn.checks.compare`,
leaving out only the positions of a documented :class:`KnownDifference`;
:func:`max_differences` lists the largest difference of every compared tensor beside
its tolerance. The subprocesses that compute the cases are in
:mod:`pytest_rnn.checks.cross_backend`.

Tolerance (:func:`tolerance`). Both backends evaluate the same float32 formulas in a
different order (XLA, Eigen and ATen fuse and reduce differently) with different
transcendental implementations. One step computes each pre-activation as a sum of
``K = features + units + 1`` products (inputs, recurrent state, bias); floating-point
summation of ``K`` terms in any order has error at most ``K * eps * sum|terms|``
(``eps = 2**-23``, float32's machine epsilon), and tanh/sigmoid add a few ulp each
(bounded here by ``ACTIVATION_ULPS``). Activations have slope <= 1 and the recurrent
weights are drawn small enough that the recurrence does not amplify errors, so the
error of the state grows at most linearly over ``T`` steps: ``T * (K + ACTIVATION_ULPS)
* eps`` relative to the largest magnitude of the tensor compared (outputs and gates are
bounded by 1, an LSTM's cell state by ``T``). Gradients run the recurrence twice (forward,
then backward through time), so their bound doubles. ``SAFETY`` = 2 covers the
bidirectional and stacked cases, whose tensors go through two recurrences. The measured
differences (tests print them) are far below the bound: the bound is derived, not fitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks.cross_backend_case import Case

#: The Keras backends pytest-rnn knows, in the order results are compared (first = reference).
BACKENDS = ("tensorflow", "jax", "torch")
EPS32 = float(np.finfo(np.float32).eps)
ACTIVATION_ULPS = 4
SAFETY = 2.0


def tolerance(case: Case, tensor: str, reference: np.ndarray) -> float:
    """Absolute tolerance of ``tensor`` of ``case`` (see the module docstring)."""
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    passes = 2 if tensor.startswith("dL/d") else 1
    return (SAFETY * case.recurrences * passes * case.steps
            * (case.terms + ACTIVATION_ULPS) * EPS32 * scale)


@dataclass(frozen=True)
class KnownDifference:
    """A documented difference between two backends that the comparison does not report.

    ``positions(case, arrays)`` returns a boolean array over ``tensor`` that is True
    where the difference is expected; only cases whose name starts with ``case_prefix``.
    """

    backends: tuple[str, str]
    tensor: str
    case_prefix: str
    description: str

    def positions(self, case: Case, shape: tuple[int, ...]) -> np.ndarray:
        """Steps masked before the first valid step (in processing order), every unit."""
        out = np.zeros(shape, dtype=bool)
        if case.mask is None or len(shape) != 3:
            return out
        mask = np.asarray(case.mask, dtype=bool)
        order = mask[:, ::-1] if case.kwargs.get("go_backwards") else mask
        leading = np.cumsum(order, axis=1) == 0
        out[leading] = True
        return out


#: Keras 3.15: the generic loop of the JAX backend writes the initial state ``h0`` as the
#: output of steps that are masked before any valid step (in processing order); TensorFlow
#: and PyTorch write zeros. Only visible with a non-zero initial state.
KNOWN_DIFFERENCES = (
    KnownDifference(("jax", "tensorflow"), "output", "lstm_initial_state_leading_mask",
                    "JAX writes h0 at masked steps before the first valid step, TensorFlow "
                    "writes zeros"),
)


def compare_results(cases: Sequence[Case], results: Mapping[str, Mapping[str, Any]], *,
                    known: Sequence[KnownDifference] = KNOWN_DIFFERENCES,
                    only: Iterable[str] | None = None) -> dict[str, list[str]]:
    """``{case name: [problem, ...]}`` comparing every backend with the reference backend.

    The reference is the first of :data:`BACKENDS` in ``results``. Each problem names the
    backend pair (``"jax vs tensorflow: ..."``), the tensor and where it differs (see
    :func:`pytest_rnn.checks.compare.difference`). Positions of a :class:`KnownDifference`
    are left out of the comparison (and only they).
    """
    order = [b for b in BACKENDS if b in results] + [b for b in results if b not in BACKENDS]
    wanted = set(only) if only is not None else None
    problems: dict[str, list[str]] = {}
    for case in cases:
        if wanted is not None and case.name not in wanted:
            continue
        lines: list[str] = []
        ref_name = order[0]
        ref = results[ref_name]["cases"].get(case.name)
        for other in order[1:]:
            got = results[other]["cases"].get(case.name)
            pair = f"{other} vs {ref_name}"
            lines += _compare_case(case, pair, (other, ref_name), got, ref, known)
        problems[case.name] = lines
    return problems


def _axes(tensor: str, ndim: int) -> tuple[str, ...] | None:
    if tensor.startswith("dL/d") and tensor != "dL/d inputs":
        return ("row", "column")[:ndim] if ndim <= 2 else None
    return None


def _compare_case(case: Case, pair: str, names: tuple[str, str], got: Any, ref: Any,
                  known: Sequence[KnownDifference]) -> list[str]:
    if ref is None or got is None:
        return [f"{pair}: {case.name} was not computed by "
                f"{names[1] if ref is None else names[0]}"]
    if ref["error"] or got["error"]:
        return [f"{pair}: {case.name} failed on {n}: {r['error']}"
                for n, r in zip(names[::-1], (ref, got), strict=True) if r["error"]]
    lines = []
    if got["weights"] != ref["weights"] and len(got["weights"]) != len(ref["weights"]):
        lines.append(f"{pair}: {case.name} has weights {got['weights']} on {names[0]}, "
                     f"{ref['weights']} on {names[1]}")
    missing = sorted(set(ref["tensors"]) ^ set(got["tensors"]))
    if missing:
        lines.append(f"{pair}: {case.name} returns different tensors ({', '.join(missing)})")
    for tensor in [t for t in ref["tensors"] if t in got["tensors"]]:
        want = np.asarray(ref["tensors"][tensor])
        value = np.asarray(got["tensors"][tensor])
        if value.shape == want.shape:
            skip = np.zeros(want.shape, dtype=bool)
            for k in known:
                if (set(k.backends) == set(names) and k.tensor == tensor
                        and case.name.startswith(k.case_prefix)):
                    skip |= k.positions(case, want.shape)
            value = np.where(skip, want, value)
        line = compare.difference(f"{case.name} {tensor}", value, want,
                                  atol=tolerance(case, tensor, want), labels=names,
                                  axes=_axes(tensor, want.ndim))
        if line:
            lines.append(f"{pair}: {line}")
    return lines


def max_differences(cases: Sequence[Case], results: Mapping[str, Mapping[str, Any]]
                    ) -> list[tuple[str, str, str, float, float]]:
    """``(pair, case, tensor, max |diff|, tolerance)`` for every compared tensor."""
    order = [b for b in BACKENDS if b in results]
    rows = []
    for case in cases:
        ref = results[order[0]]["cases"].get(case.name)
        for other in order[1:]:
            got = results[other]["cases"].get(case.name)
            if not ref or not got or ref["error"] or got["error"]:
                continue
            for tensor, want in ref["tensors"].items():
                if tensor not in got["tensors"]:
                    continue
                want = np.asarray(want)
                value = np.asarray(got["tensors"][tensor])
                if value.shape != want.shape:
                    continue
                rows.append((f"{other} vs {order[0]}", case.name, tensor,
                             float(np.max(np.abs(value - want), initial=0.0)),
                             tolerance(case, tensor, want)))
    return rows
