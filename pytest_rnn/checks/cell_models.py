"""NumPy models of Keras's SimpleRNN, LSTM and GRU cells: each one's step forward and backward.

Each model is a :class:`~pytest_rnn.checks.cell_model.CellModel` read from a built Keras
cell (float64 copies of its weights, its activations from
:mod:`pytest_rnn.checks.activations`). The forward step computes the documented
equations; with ``saved`` it keeps what its backward step (the vector-Jacobian product
the gradients through time chain) needs. ``x K`` and ``h R`` are computed per gate
(``K_g``: gate ``g``'s column block), so that each gate's dropout mask can multiply its
own copy of ``x`` and ``h``:

* SimpleRNN: ``h = act(z)``, ``z = x K + h_prev R + b``.
  Backward: ``dz = dh * act'(z)``; ``dK = x^T dz``, ``dR = h_prev^T dz``, ``db = sum dz``;
  ``dx = dz K^T``, ``dh_prev = dz R^T``.
* LSTM (gates i, f, c, o in that column order): ``z = x K + h_prev R + b``;
  ``c = rec(z_f) * c_prev + rec(z_i) * act(z_c)``; ``h = rec(z_o) * act(c)``.
  Backward, with ``i, f, o = rec(z_i, z_f, z_o)`` and ``g = act(z_c)``:
  ``dc_total = dc + dh * o * act'(c)``, ``do = dh * act(c)``, ``di = dc_total * g``,
  ``df = dc_total * c_prev``, ``dg = dc_total * i``, ``dc_prev = dc_total * f``; each
  gate's ``dz = d(gate) * a'(z)``, then as SimpleRNN.
* GRU (gates z, r, h): ``h = z * h_prev + (1 - z) * hh`` with
  ``hh = act(x K_h + b_h + r * (h_prev R_h + b'_h))`` for ``reset_after=True`` (two bias
  rows) or ``act(x K_h + b_h + (r * h_prev) R_h)`` for ``reset_after=False`` (one row).
  Backward: ``dz = dh * (h_prev - hh)``, ``dhh = dh * (1 - z)``, ``dh_prev = dh * z`` plus
  what flows back through the gates.

``a'`` is an activation's derivative at its argument, ``*`` elementwise, ``@`` the
matrix product. The output of these cells is their new ``h``, so its gradient adds to
``h``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pytest_rnn.checks.activations import SIGMOID, Activation, lookup
from pytest_rnn.checks.cell_model import NO_MASKS, Array, CellModel, StepMasks, Weights
from pytest_rnn.checks.models import cell_kind
from pytest_rnn.checks.shapes import STATE_NAMES

#: gate order of each kind's kernel columns, as the Keras documentation gives it
GATES = {"simple_rnn": ("",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}


def variable_path(variable: Any) -> str:
    """The name gradients of a Keras variable are reported under."""
    return getattr(variable, "path", None) or variable.name


def lstm_update(
    z_i: Array, z_f: Array, z_c: Array, z_o: Array, c_prev: Array,
    act: Callable[[Array], Array], rec: Callable[[Array], Array],
) -> tuple[Array, Array, tuple[Array, Array, Array, Array]]:
    """``(h, c, (i, f, g, o))`` of the LSTM equations from the gates' pre-activations."""
    i, f, g, o = rec(z_i), rec(z_f), act(z_c), rec(z_o)
    c = f * c_prev + i * g
    return o * act(c), c, (i, f, g, o)


@dataclass(kw_only=True)
class KerasCellMath(CellModel):
    """The weights (float64) and activations of a built Keras cell with a ``kernel``, a
    ``recurrent_kernel`` and an optional ``bias``; the step is the subclass's."""

    kernel: Array
    recurrent_kernel: Array
    bias: Array | None
    activation: Activation
    recurrent_activation: Activation
    weight_paths: dict[str, str] = field(default_factory=dict)  # "kernel" -> variable path

    @staticmethod
    def read(cell: Any) -> dict[str, Any]:
        """The constructor arguments every Keras cell gives alike (all but
        ``recurrent_activation``, which SimpleRNN lacks)."""
        if not cell.built:
            raise ValueError(f"cell {cell.name!r} is not built; build or call its layer first")
        arrays = {name: getattr(cell, name) for name in ("kernel", "recurrent_kernel", "bias")}
        return {
            **{k: None if v is None else np.asarray(v, dtype=np.float64)
               for k, v in arrays.items()},
            "activation": lookup(cell.activation),
            "weight_paths": {k: variable_path(v) for k, v in arrays.items() if v is not None},
        }

    def weights(self) -> dict[str, Array]:
        """Read when a call starts, so an edited copy of the model computes with its edits."""
        named = {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel}
        if self.bias is not None:
            named["bias"] = self.bias
        return named


@dataclass(kw_only=True)
class CellMath(KerasCellMath):
    """One SimpleRNN, LSTM or GRU cell: :meth:`of` reads it into the model of its kind."""

    kind: ClassVar[str] = ""
    units: int
    reset_after: bool = True

    @classmethod
    def of(cls, cell: Any) -> CellMath:
        """Read a built SimpleRNNCell, LSTMCell or GRUCell (subclasses included)."""
        kind = cell_kind(cell)
        read = KerasCellMath.read(cell)
        rec = SIGMOID if kind == "simple_rnn" else lookup(cell.recurrent_activation)
        return MODELS[kind](
            **read, recurrent_activation=rec, units=int(cell.units),
            reset_after=bool(getattr(cell, "reset_after", True)),
        )

    @property
    def state_names(self) -> tuple[str, ...]:
        return STATE_NAMES[self.kind]

    @property
    def gate_count(self) -> int:
        return len(GATES[self.kind])

    def zero_states(self, inputs: Array) -> list[Array]:
        """Zero states for a ``(batch, steps, features)`` input sequence."""
        return [np.zeros((inputs.shape[0], self.units)) for _ in self.state_names]

    def _cols(self, gate: int) -> slice:
        return slice(gate * self.units, (gate + 1) * self.units)

    def _dense(
        self, x: Array, h: Array, weights: Weights, masks: StepMasks, saved: dict | None,
        recurrent_gates: int | None = None,
    ) -> tuple[list[Array], list[Array]]:
        """``[x_g K_g]`` for every gate and ``[h_g R_g]`` for the first ``recurrent_gates``,
        each gate's ``x_g``, ``h_g`` its masked copy of ``x``, ``h`` (kept in ``saved``)."""
        gates = range(self.gate_count)
        xs = [masks.apply_input(x, g) for g in gates]
        hs = [masks.apply_recurrent(h, g) for g in gates]
        if saved is not None:
            saved.update(xs=xs, hs=hs, masks=masks, h_prev=h)
        kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
        x_parts = [xs[g] @ kernel[:, self._cols(g)] for g in gates]
        h_parts = [hs[g] @ recurrent[:, self._cols(g)] for g in gates[:recurrent_gates]]
        return x_parts, h_parts

    def _dense_backward(
        self, saved: dict, d_x_parts: list[Array], d_h_parts: list[Array], weights: Weights,
        grads: dict[str, Array],
    ) -> tuple[Array, Array]:
        """``(dx, dh)`` from the gradients of :meth:`_dense`'s products, adding the kernels'
        gradients into ``grads``; a dropout mask passes gradient back where it passed values."""
        masks, d_x, d_h = saved["masks"], 0.0, 0.0
        kernel, recurrent = weights["kernel"], weights["recurrent_kernel"]
        for g, d in enumerate(d_x_parts):
            grads["kernel"][:, self._cols(g)] += saved["xs"][g].T @ d
            d_x = d_x + masks.apply_input(d @ kernel[:, self._cols(g)].T, g)
        for g, d in enumerate(d_h_parts):
            grads["recurrent_kernel"][:, self._cols(g)] += saved["hs"][g].T @ d
            d_h = d_h + masks.apply_recurrent(d @ recurrent[:, self._cols(g)].T, g)
        return d_x, d_h


@dataclass(kw_only=True)
class SimpleRNNMath(CellMath):
    """SimpleRNN: ``h = act(x K + h_prev R + b)``."""

    kind: ClassVar[str] = "simple_rnn"

    def step(self, x, states, weights, *, masks=None, saved=None):
        (x_part,), (h_part,) = self._dense(x, states[0], weights, masks or NO_MASKS, saved)
        z = x_part + h_part
        if "bias" in weights:
            z = z + weights["bias"]
        if saved is not None:
            saved["z"] = z
        h = self.activation(z)
        return h, [h]

    def step_backward(self, saved, d_output, d_states, weights, grads):
        dz = (d_output + d_states[0]) * self.activation.derivative(saved["z"])
        if "bias" in grads:
            grads["bias"] += dz.sum(axis=0)
        d_x, d_h = self._dense_backward(saved, [dz], [dz], weights, grads)
        return d_x, [d_h]


@dataclass(kw_only=True)
class LSTMMath(CellMath):
    """LSTM: gates i, f, c, o; states ``h``, ``c``."""

    kind: ClassVar[str] = "lstm"

    def step(self, x, states, weights, *, masks=None, saved=None):
        h_prev, c_prev = states
        x_parts, h_parts = self._dense(x, h_prev, weights, masks or NO_MASKS, saved)
        z = np.concatenate([a + b for a, b in zip(x_parts, h_parts, strict=True)], axis=-1)
        if "bias" in weights:
            z = z + weights["bias"]
        z_gates = np.split(z, 4, axis=-1)
        h, c, gates = lstm_update(*z_gates, c_prev, self.activation, self.recurrent_activation)
        if saved is not None:
            saved.update(c_prev=c_prev, z=z_gates, gates=gates, c=c)
        return h, [h, c]

    def step_backward(self, saved, d_output, d_states, weights, grads):
        dh, dc = d_output + d_states[0], d_states[1]
        act, rec = self.activation, self.recurrent_activation
        (i, f, g, o), (z_i, z_f, z_c, z_o), c = saved["gates"], saved["z"], saved["c"]
        dc_total = dc + dh * o * act.derivative(c)
        dz = [
            dc_total * g * rec.derivative(z_i),
            dc_total * saved["c_prev"] * rec.derivative(z_f),
            dc_total * i * act.derivative(z_c),
            dh * act(c) * rec.derivative(z_o),
        ]
        if "bias" in grads:
            grads["bias"] += np.concatenate(dz, axis=-1).sum(axis=0)
        d_x, d_h = self._dense_backward(saved, dz, dz, weights, grads)
        return d_x, [d_h, dc_total * f]


@dataclass(kw_only=True)
class GRUMath(CellMath):
    """GRU: gates z, r, h, with the candidate of either ``reset_after``."""

    kind: ClassVar[str] = "gru"

    def _biases(self, weights: Weights) -> tuple[Array | None, Array | None]:
        """``(input bias, recurrent bias)``: the two rows with ``reset_after``, else one."""
        bias = weights.get("bias")
        if bias is None:
            return None, None
        return (bias[0], bias[1]) if self.reset_after else (bias, None)

    def step(self, x, states, weights, *, masks=None, saved=None):
        (h_prev,) = states
        u, masks = self.units, masks or NO_MASKS
        b_in, b_rec = self._biases(weights)
        (x_z, x_r, x_h), h_parts = self._dense(
            x, h_prev, weights, masks, saved, 3 if self.reset_after else 2)
        rec_z, rec_r = h_parts[:2]
        if b_in is not None:
            x_z, x_r, x_h = x_z + b_in[:u], x_r + b_in[u : 2 * u], x_h + b_in[2 * u :]
        if b_rec is not None:
            rec_z, rec_r = rec_z + b_rec[:u], rec_r + b_rec[u : 2 * u]
        a_z, a_r = x_z + rec_z, x_r + rec_r
        z, r = self.recurrent_activation(a_z), self.recurrent_activation(a_r)
        if self.reset_after:  # rh: what r multiplies
            rh = h_parts[2] if b_rec is None else h_parts[2] + b_rec[2 * u :]
            a_h = x_h + r * rh
        else:
            rh = r * masks.apply_recurrent(h_prev, 2)
            a_h = x_h + rh @ weights["recurrent_kernel"][:, 2 * u :]
        hh = self.activation(a_h)
        if saved is not None:
            saved.update(a_z=a_z, a_r=a_r, z=z, r=r, rh=rh, a_h=a_h, hh=hh)
        h = z * h_prev + (1.0 - z) * hh  # the carry term is never dropped
        return h, [h]

    def step_backward(self, saved, d_output, d_states, weights, grads):
        u = self.units
        dh = d_output + d_states[0]
        z, r, hh, h_prev = saved["z"], saved["r"], saved["hh"], saved["h_prev"]
        act, rec = self.activation, self.recurrent_activation
        dh_prev = dh * z
        da_z = dh * (h_prev - hh) * rec.derivative(saved["a_z"])
        da_h = dh * (1.0 - z) * act.derivative(saved["a_h"])
        if self.reset_after:
            da_r = da_h * saved["rh"] * rec.derivative(saved["a_r"])
            d_rh = da_h * r
            d_h_parts = [da_z, da_r, d_rh]
        else:
            r_kernel = weights["recurrent_kernel"][:, 2 * u :]
            grads["recurrent_kernel"][:, 2 * u :] += saved["rh"].T @ da_h
            d_rh = da_h @ r_kernel.T
            da_r = d_rh * saved["hs"][2] * rec.derivative(saved["a_r"])
            dh_prev = dh_prev + saved["masks"].apply_recurrent(d_rh * r, 2)
            d_h_parts = [da_z, da_r]
        d_x, d_h = self._dense_backward(saved, [da_z, da_r, da_h], d_h_parts, weights, grads)
        if "bias" in grads:
            d_x_bias = np.concatenate([da_z, da_r, da_h], axis=-1).sum(axis=0)
            if self.reset_after:
                grads["bias"][0] += d_x_bias
                grads["bias"][1] += np.concatenate([da_z, da_r, d_rh], axis=-1).sum(axis=0)
            else:
                grads["bias"] += d_x_bias
        return d_x, [dh_prev + d_h]


#: kind -> its model class
MODELS: dict[str, type[CellMath]] = {m.kind: m for m in (SimpleRNNMath, LSTMMath, GRUMath)}
