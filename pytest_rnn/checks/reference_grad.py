"""Float64 NumPy gradients through time of SimpleRNN, LSTM and GRU, from the documented equations.

Why: a release that cuts or damps the gradient through time, drops the gradient
of the initial state or lets gradient into padded steps leaves every forward
value unchanged, so only an independent backward pass notices. This module is
that backward pass: the forward recurrence of :mod:`pytest_rnn.checks.reference`
again, keeping what each step needs, then the chain rule step by step from the
last processed step back to the first (backpropagation through time).

The loss is fixed and stated: every tensor the layer returns (outputs, then
states, in the layer's order) is multiplied elementwise by a fixed array of
standard normals drawn from ``numpy.random.default_rng(seed)`` in that order,
and all products are summed::

    L = sum_k sum(W_k * returned_k)

so ``dL/d returned_k = W_k`` and every returned element carries gradient.

Per-step derivatives, with ``a'`` the derivative of an activation at its
argument (``*`` elementwise, ``@`` matrix product):

* SimpleRNN ``h = act(z)``, ``z = x K + h_prev R + b``:
  ``dz = dh * act'(z)``; ``dK = x^T dz``, ``dR = h_prev^T dz``, ``db = sum dz``;
  ``dx = dz K^T``, ``dh_prev = dz R^T``.
* LSTM ``c = f * c_prev + i * g``, ``h = o * act(c)`` with ``i, f, o = rec(z_i, z_f, z_o)``
  and ``g = act(z_g)``: ``dc_total = dc + dh * o * act'(c)``, ``do = dh * act(c)``,
  ``di = dc_total * g``, ``df = dc_total * c_prev``, ``dg = dc_total * i``,
  ``dc_prev = dc_total * f``; each gate's ``dz = d(gate) * a'(z)``, then as SimpleRNN.
* GRU ``h = z * h_prev + (1 - z) * hh``: ``dz = dh * (h_prev - hh)``,
  ``dhh = dh * (1 - z)``, ``dh_prev = dh * z`` plus what flows through the gates;
  ``reset_after=True``: ``hh = act(x K_h + b_h + r * (h_prev R_h + b'_h))``;
  ``reset_after=False``: ``hh = act(x K_h + b_h + (r * h_prev) R_h)``.

Masks: a masked step keeps the previous states (their gradient passes straight
through to the step before) and outputs the previous output (or zeros with
``zero_output_for_mask``), so its inputs and weights receive nothing from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from pytest_rnn.checks import compare
from pytest_rnn.checks import reference as fwd
from pytest_rnn.checks.models import cell_kind

# ---------------------------------------------------------------------------------------------
# activations and their derivatives (as functions of the activation's argument)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _hard_sigmoid_d(x: np.ndarray) -> np.ndarray:
    return np.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

#: d act(x) / dx by the name Keras serializes the activation under.
DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": np.ones_like,
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "sigmoid": lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)),
    "hard_sigmoid": _hard_sigmoid_d,
    "relu": lambda x: (x > 0).astype(np.float64),
    "relu6": lambda x: ((x > 0) & (x < 6)).astype(np.float64),
    "elu": lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0))),
    "softplus": _sigmoid,
    "softsign": lambda x: 1.0 / (1.0 + np.abs(x)) ** 2,
    "exponential": np.exp,
    "silu": lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
    "hard_silu": lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0 + x * _hard_sigmoid_d(x),
}


def activation_pair(fn: Any) -> tuple[Callable, Callable]:
    """``(act, act')`` in NumPy for a Keras activation; ValueError for one without both."""
    name = getattr(fn, "__name__", None) if fn is not None else "linear"
    name = {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name)
    if name not in DERIVATIVES:
        raise ValueError(
            f"no NumPy derivative for activation {fn!r}; supported: "
            + ", ".join(sorted(DERIVATIVES))
        )
    return fwd.numpy_activation(fn), DERIVATIVES[name]


# ---------------------------------------------------------------------------------------------
# one cell: forward with a cache, backward of one step


def _path(variable: Any) -> str:
    return getattr(variable, "path", None) or variable.name


@dataclass
class CellGrad:
    """One cell's float64 weights, activations with derivatives, and its step both ways."""

    kind: str
    units: int
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    act: Callable
    act_d: Callable
    rec: Callable
    rec_d: Callable
    reset_after: bool
    names: dict[str, str] = field(default_factory=dict)  # "kernel" -> variable path

    @classmethod
    def of(cls, cell: Any) -> CellGrad:
        math = fwd.CellMath.of(cell)  # checks the kind and that it is built
        act, act_d = activation_pair(cell.activation)
        if math.kind == "simple_rnn":
            rec, rec_d = _sigmoid, DERIVATIVES["sigmoid"]  # unused
        else:
            rec, rec_d = activation_pair(cell.recurrent_activation)
        names = {"kernel": _path(cell.kernel), "recurrent_kernel": _path(cell.recurrent_kernel)}
        if cell.bias is not None:
            names["bias"] = _path(cell.bias)
        return cls(math.kind, math.units, math.kernel, math.recurrent_kernel, math.bias,
                   act, act_d, rec, rec_d, math.reset_after, names)

    @property
    def n_states(self) -> int:
        return 2 if self.kind == "lstm" else 1

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("h", "c") if self.kind == "lstm" else ("h",)

    def zero_grads(self) -> dict[str, np.ndarray]:
        grads = {"kernel": np.zeros_like(self.kernel),
                 "recurrent_kernel": np.zeros_like(self.recurrent_kernel)}
        if self.bias is not None:
            grads["bias"] = np.zeros_like(self.bias)
        return grads

    # -- forward ---------------------------------------------------------------------------

    def forward(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list, dict]:
        """``(output, new_states, cache)`` of one step."""
        return getattr(self, f"_fwd_{self.kind}")(x, states)

    def _fwd_simple_rnn(self, x, states):
        z = x @ self.kernel + states[0] @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        h = self.act(z)
        return h, [h], {"x": x, "h_prev": states[0], "z": z}

    def _fwd_lstm(self, x, states):
        h_prev, c_prev = states
        z = x @ self.kernel + h_prev @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
        i, f, g, o = self.rec(z_i), self.rec(z_f), self.act(z_g), self.rec(z_o)
        c = f * c_prev + i * g
        h = o * self.act(c)
        cache = {"x": x, "h_prev": h_prev, "c_prev": c_prev, "z": (z_i, z_f, z_g, z_o),
                 "gates": (i, f, g, o), "c": c}
        return h, [h, c], cache

    def _gru_biases(self):
        if self.bias is None:
            return None, None
        if self.reset_after:
            return self.bias[0], self.bias[1]
        return self.bias, None

    def _fwd_gru(self, x, states):
        (h_prev,) = states
        u = self.units
        b_in, b_rec = self._gru_biases()
        xp = x @ self.kernel
        if b_in is not None:
            xp = xp + b_in
        rk = self.recurrent_kernel
        hp_zr = h_prev @ rk[:, : 2 * u]
        if b_rec is not None:
            hp_zr = hp_zr + b_rec[: 2 * u]
        a_z, a_r = xp[:, :u] + hp_zr[:, :u], xp[:, u : 2 * u] + hp_zr[:, u:]
        z, r = self.rec(a_z), self.rec(a_r)
        if self.reset_after:
            rh = h_prev @ rk[:, 2 * u :]
            if b_rec is not None:
                rh = rh + b_rec[2 * u :]
            a_h = xp[:, 2 * u :] + r * rh
        else:
            rh = None
            a_h = xp[:, 2 * u :] + (r * h_prev) @ rk[:, 2 * u :]
        hh = self.act(a_h)
        h = z * h_prev + (1.0 - z) * hh
        cache = {"x": x, "h_prev": h_prev, "a_z": a_z, "a_r": a_r, "z": z, "r": r, "rh": rh,
                 "a_h": a_h, "hh": hh}
        return h, [h], cache

    # -- backward --------------------------------------------------------------------------

    def backward(self, cache: dict, d_out: np.ndarray, d_states: list[np.ndarray],
                 grads: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(dx, d_prev_states)`` of one step; weight gradients are added into ``grads``.

        The output of these cells is their new ``h``, so its gradient adds to ``h``'s."""
        return getattr(self, f"_bwd_{self.kind}")(cache, d_out + d_states[0], d_states[1:], grads)

    @staticmethod
    def _dense_back(dz, x, h_prev, kernel, rkernel, grads, k_cols=slice(None),
                    r_cols=slice(None)):
        grads["kernel"][:, k_cols] += x.T @ dz
        grads["recurrent_kernel"][:, r_cols] += h_prev.T @ dz
        return dz @ kernel[:, k_cols].T, dz @ rkernel[:, r_cols].T

    def _bwd_simple_rnn(self, cache, dh, _rest, grads):
        dz = dh * self.act_d(cache["z"])
        if self.bias is not None:
            grads["bias"] += dz.sum(axis=0)
        dx, dh_prev = self._dense_back(dz, cache["x"], cache["h_prev"], self.kernel,
                                       self.recurrent_kernel, grads)
        return dx, [dh_prev]

    def _bwd_lstm(self, cache, dh, rest, grads):
        (dc,) = rest
        i, f, g, o = cache["gates"]
        z_i, z_f, z_g, z_o = cache["z"]
        c = cache["c"]
        dc_total = dc + dh * o * self.act_d(c)
        d_o = dh * self.act(c)
        dz = np.concatenate(
            [dc_total * g * self.rec_d(z_i), dc_total * cache["c_prev"] * self.rec_d(z_f),
             dc_total * i * self.act_d(z_g), d_o * self.rec_d(z_o)], axis=-1)
        if self.bias is not None:
            grads["bias"] += dz.sum(axis=0)
        dx, dh_prev = self._dense_back(dz, cache["x"], cache["h_prev"], self.kernel,
                                       self.recurrent_kernel, grads)
        return dx, [dh_prev, dc_total * f]

    def _bwd_gru(self, cache, dh, _rest, grads):
        u = self.units
        z, r, hh, h_prev = cache["z"], cache["r"], cache["hh"], cache["h_prev"]
        rk = self.recurrent_kernel
        d_hh = dh * (1.0 - z)
        dh_prev = dh * z
        da_z = dh * (h_prev - hh) * self.rec_d(cache["a_z"])
        da_h = d_hh * self.act_d(cache["a_h"])
        if self.reset_after:
            dr = da_h * cache["rh"]
            d_rh = da_h * r
            grads["recurrent_kernel"][:, 2 * u :] += h_prev.T @ d_rh
            dh_prev = dh_prev + d_rh @ rk[:, 2 * u :].T
        else:
            rh_in = r * h_prev
            grads["recurrent_kernel"][:, 2 * u :] += rh_in.T @ da_h
            d_rh_in = da_h @ rk[:, 2 * u :].T
            dr = d_rh_in * h_prev
            dh_prev = dh_prev + d_rh_in * r
            d_rh = None
        da_r = dr * self.rec_d(cache["a_r"])
        d_zr = np.concatenate([da_z, da_r], axis=-1)
        d_xp = np.concatenate([da_z, da_r, da_h], axis=-1)
        grads["kernel"] += cache["x"].T @ d_xp
        grads["recurrent_kernel"][:, : 2 * u] += h_prev.T @ d_zr
        dh_prev = dh_prev + d_zr @ rk[:, : 2 * u].T
        if self.bias is not None:
            if self.reset_after:
                grads["bias"][0] += d_xp.sum(axis=0)
                grads["bias"][1, : 2 * u] += d_zr.sum(axis=0)
                grads["bias"][1, 2 * u :] += d_rh.sum(axis=0)
            else:
                grads["bias"] += d_xp.sum(axis=0)
        return d_xp @ self.kernel.T, [dh_prev]


class StackGrad:
    """Cells applied one after another in each step (``RNN([cell, cell, ...])``)."""

    def __init__(self, cells: Sequence[CellGrad]):
        self.cells = list(cells)

    @property
    def n_states(self) -> int:
        return sum(c.n_states for c in self.cells)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f"cell {i} {n}" for i, c in enumerate(self.cells) for n in c.state_names)

    def forward(self, x, states):
        caches, new_states, offset = [], [], 0
        for cell in self.cells:
            x, cell_states, cache = cell.forward(x, states[offset : offset + cell.n_states])
            offset += cell.n_states
            new_states.extend(cell_states)
            caches.append(cache)
        return x, new_states, caches

    def backward(self, caches, d_out, d_states, grads):
        d_prev, offset = [], self.n_states
        for i in range(len(self.cells) - 1, -1, -1):
            cell = self.cells[i]
            offset -= cell.n_states
            d_out, d_cell = cell.backward(
                caches[i], d_out, d_states[offset : offset + cell.n_states], grads[i])
            d_prev = d_cell + d_prev
        return d_out, d_prev


def _grad_math(layer: Any) -> CellGrad | StackGrad:
    cell = getattr(layer, "cell", None)
    if cell is None:
        raise ValueError(
            "reference gradients model SimpleRNN, LSTM or GRU layers, keras.layers.RNN over "
            f"their cells, and Bidirectional wrappers of those; got {type(layer).__name__}"
        )
    if isinstance(cell, keras.layers.StackedRNNCells):
        return StackGrad([CellGrad.of(c) for c in cell.cells])
    return CellGrad.of(cell)


# ---------------------------------------------------------------------------------------------
# the time loop, forward and backward


@dataclass
class _Tape:
    order: list[int]
    caches: list[Any]
    keeps: list[np.ndarray | None]
    outputs: np.ndarray  # (batch, steps, units) in processing order
    states: list[np.ndarray]  # final


def _run_forward(math, x, states, mask, go_backwards, zero_output_for_mask) -> _Tape:
    steps = x.shape[1]
    order = list(range(steps - 1, -1, -1)) if go_backwards else list(range(steps))
    prev_out, outputs, caches, keeps = None, [], [], []
    for t in order:
        out, new, cache = math.forward(x[:, t], states)
        keep = None
        if mask is not None:
            keep = mask[:, t, None].astype(np.float64)
            fill = (np.zeros_like(out) if zero_output_for_mask or prev_out is None else prev_out)
            out = keep * out + (1.0 - keep) * fill
            new = [keep * n + (1.0 - keep) * s for n, s in zip(new, states, strict=True)]
        caches.append(cache)
        keeps.append(keep)
        states, prev_out = new, out
        outputs.append(out)
    return _Tape(order, caches, keeps, np.stack(outputs, axis=1), states)


def _run_backward(math, tape: _Tape, d_outputs, d_final, x_shape, zero_output_for_mask):
    """Gradients ``(dx, d_initial_states, weight grads)`` from the cotangents of the
    processing-order output sequence and of the final states."""
    dx = np.zeros(x_shape)
    if isinstance(math, StackGrad):
        grads = [c.zero_grads() for c in math.cells]
    else:
        grads = math.zero_grads()
    d_states = [np.array(d, dtype=np.float64) for d in d_final]
    d_out_carry = np.zeros_like(d_outputs[:, 0])
    for j in range(len(tape.order) - 1, -1, -1):
        t, keep = tape.order[j], tape.keeps[j]
        d_out = d_outputs[:, j] + d_out_carry
        d_out_carry = np.zeros_like(d_out)
        if keep is None:
            d_step_out, d_step_states, d_skip = d_out, d_states, None
        else:
            d_step_out = keep * d_out
            if not zero_output_for_mask:
                d_out_carry = (1.0 - keep) * d_out  # the fill was the previous output
            d_step_states = [keep * d for d in d_states]
            d_skip = [(1.0 - keep) * d for d in d_states]
        d_xt, d_prev = math.backward(tape.caches[j], d_step_out, d_step_states, grads)
        dx[:, t] += d_xt
        d_states = d_prev if d_skip is None else [a + b for a, b in zip(d_prev, d_skip,
                                                                         strict=True)]
    return dx, d_states, grads


def _named_weight_grads(math, grads) -> list[tuple[str, np.ndarray]]:
    if isinstance(math, StackGrad):
        return [(math.cells[i].names[k], g) for i, gs in enumerate(grads) for k, g in gs.items()]
    return [(math.names[k], g) for k, g in grads.items()]


@dataclass
class ReferenceGradients:
    """What the reference computes for one call: the returned tensors, the loss weights and
    gradients of ``L = sum_k sum(W_k * returned_k)``.

    ``outputs``: ``[(name, array)]`` as :func:`reference.reference_outputs` names them;
    ``loss_weights``: the ``W_k`` in the same order; ``gradients``: ``[(name, array)]`` with
    ``inputs``, ``initial_state <name>`` (when an initial state was passed) and each weight
    by its variable path.
    """

    outputs: list[tuple[str, np.ndarray]]
    loss_weights: list[np.ndarray]
    loss: float
    gradients: list[tuple[str, np.ndarray]]


def loss_weights_for(shapes: Sequence[tuple[int, ...]], seed: int) -> list[np.ndarray]:
    """The fixed ``W_k``: standard normals of each shape, drawn in order from ``seed``."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=tuple(s)) for s in shapes]


def _layer_pass(layer, x, init, mask):
    math = _grad_math(layer)
    batch = x.shape[0]
    if init is not None:
        states = [np.asarray(s, dtype=np.float64) for s in init]
    elif getattr(layer, "stateful", False) and layer.states is not None:
        states = [compare.to_numpy(v).astype(np.float64) for v in compare.flatten(layer.states)]
    else:
        states = [np.zeros((batch, c.units)) for c in (math.cells if isinstance(math, StackGrad)
                                                        else [math]) for _ in c.state_names]
    if len(states) != math.n_states:
        raise ValueError(
            f"{layer.name!r} takes {math.n_states} initial states "
            f"({', '.join(math.state_names)}); got {len(states)}"
        )
    tape = _run_forward(math, x, states, mask, layer.go_backwards, layer.zero_output_for_mask)
    return math, tape


def _layer_backward(layer, math, tape, d_returned_out, d_final, x_shape):
    """``d_returned_out`` is the cotangent of what the layer returns as output (sequence in
    processing order, or the last step)."""
    d_seq = np.zeros_like(tape.outputs)
    if layer.return_sequences:
        d_seq += d_returned_out
    else:
        d_seq[:, -1] += d_returned_out
    return _run_backward(math, tape, d_seq, d_final, x_shape, layer.zero_output_for_mask)


def reference_gradients(
    layer: Any,
    inputs: Any,
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    seed: int = 0,
) -> ReferenceGradients:
    """Returned tensors, loss and float64 gradients of the fixed loss for one call of ``layer``.

    Accepts the layers :func:`reference.reference_outputs` accepts (built). See the module
    docstring for the loss and the derivatives.
    """
    x = compare.to_numpy(inputs).astype(np.float64)
    if x.ndim != 3:
        raise ValueError(f"inputs must be (batch, steps, features); got shape {x.shape}")
    m = None
    if mask is not None:
        m = compare.to_numpy(mask).astype(bool)
        if m.shape != x.shape[:2]:
            raise ValueError(f"mask must have shape {x.shape[:2]} (batch, steps); got {m.shape}")
    init = None if initial_state is None else [
        compare.to_numpy(s).astype(np.float64) for s in compare.flatten(initial_state)]
    outputs = fwd.reference_outputs(layer, x, initial_state=init, mask=m)
    weights = loss_weights_for([a.shape for _, a in outputs], seed)
    loss = float(sum(np.sum(w * a) for w, (_, a) in zip(weights, outputs, strict=True)))

    forward = getattr(layer, "forward_layer", None)
    if forward is None:
        math, tape = _layer_pass(layer, x, init, m)
        d_final = weights[1:] if layer.return_state else [np.zeros_like(s) for s in tape.states]
        dx, d_init, grads = _layer_backward(layer, math, tape, weights[0], d_final, x.shape)
        grad_list = [("inputs", dx)]
        if init is not None:
            grad_list += [(f"initial_state {n}", d)
                          for n, d in zip(math.state_names, d_init, strict=True)]
        grad_list += _named_weight_grads(math, grads)
        return ReferenceGradients(outputs, weights, loss, grad_list)

    backward = layer.backward_layer
    half = None if init is None else len(init) // 2
    f_math, f_tape = _layer_pass(forward, x, None if init is None else init[:half], m)
    b_math, b_tape = _layer_pass(backward, x, None if init is None else init[half:], m)
    seq = layer.return_sequences
    y_f = f_tape.outputs if seq else f_tape.outputs[:, -1]
    y_b = b_tape.outputs[:, ::-1] if seq else b_tape.outputs[:, -1]  # input order
    mode = layer.merge_mode
    n_out = 2 if mode is None else 1
    w_out = weights[0]
    if mode == "concat":
        units = y_f.shape[-1]
        d_f, d_b = w_out[..., :units], w_out[..., units:]
    elif mode == "sum":
        d_f, d_b = w_out, w_out
    elif mode == "ave":
        d_f, d_b = w_out / 2, w_out / 2
    elif mode == "mul":
        d_f, d_b = w_out * y_b, w_out * y_f
    elif mode is None:
        d_f, d_b = weights[0], weights[1]
    else:
        raise ValueError(f"no reference gradients for merge_mode {mode!r}")
    if seq:
        d_b = d_b[:, ::-1]  # back to the backward layer's processing order
    n_f = f_math.n_states
    if layer.return_state:
        d_ff, d_bf = weights[n_out : n_out + n_f], weights[n_out + n_f :]
    else:
        d_ff = [np.zeros_like(s) for s in f_tape.states]
        d_bf = [np.zeros_like(s) for s in b_tape.states]
    dx_f, d_init_f, g_f = _layer_backward(forward, f_math, f_tape, d_f, d_ff, x.shape)
    dx_b, d_init_b, g_b = _layer_backward(backward, b_math, b_tape, d_b, d_bf, x.shape)
    grad_list = [("inputs", dx_f + dx_b)]
    if init is not None:
        grad_list += [(f"initial_state forward {n}", d)
                      for n, d in zip(f_math.state_names, d_init_f, strict=True)]
        grad_list += [(f"initial_state backward {n}", d)
                      for n, d in zip(b_math.state_names, d_init_b, strict=True)]
    grad_list += _named_weight_grads(f_math, g_f) + _named_weight_grads(b_math, g_b)
    return ReferenceGradients(outputs, weights, loss, grad_list)


# ---------------------------------------------------------------------------------------------
# the layer's own gradients and the comparison

UNIT_ROUNDOFF_FLOAT32 = 2.0**-24

#: gate order of each kind's kernel columns, as the Keras documentation gives it
GATES = {"simple_rnn": ("",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}


def gradient_tolerance(steps: int, fan_in: int) -> float:
    """Relative tolerance (times ``max(1, max|reference|)``) of a float32 gradient against the
    float64 reference.

    Derivation: in float32 (unit roundoff ``u = 2**-24``) a dot product of length ``n``
    has error at most ``n u`` relative to the sum of its terms' magnitudes (the standard
    bound ``gamma_n``). One backward step goes through three such products (input,
    recurrent and kernel transposes, ``n <= fan_in`` = the widest of features and
    gates * units) and about ten elementwise operations, transcendental ones accurate to
    about 4 ulp: ``(3 n + 40) u``. Back through ``steps`` steps the errors add (the
    cells' Jacobians have norm about 1 at the small weights these tests use), and the
    terms are of the size of the largest gradient element (the loss weights are standard
    normals, so at least about 1): ``steps (3 n + 40) u max(1, max|g|)``.
    For 4 steps of an LSTM with 3 units this is 2e-5; measured differences are below
    1e-6, and the regressions these checks exist for change gradients by 1e-2 or more.
    """
    return steps * (3 * fan_in + 40) * UNIT_ROUNDOFF_FLOAT32


def _cells_of(layer: Any) -> list[Any]:
    layers = [getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)]
    layers = [lay for lay in layers if lay is not None] or [layer]
    cells = []
    for lay in layers:
        cell = lay.cell
        cells.extend(getattr(cell, "cells", [cell]))
    return cells


def _fan_in(layer: Any, features: int) -> int:
    widest = features
    for cell in _cells_of(layer):
        kind = cell_kind(cell)
        widest = max(widest, len(GATES[kind]) * int(cell.units))
    return widest


def layer_gradients(
    layer: Any,
    inputs: Any,
    loss_weights: Sequence[np.ndarray],
    *,
    initial_state: Sequence[Any] | None = None,
    mask: Any = None,
    training: bool | None = None,
) -> tuple[float, list[tuple[str, np.ndarray | None]]]:
    """The layer's own loss and gradients of ``L = sum_k sum(W_k * returned_k)``, taken by the
    active Keras backend through :mod:`pytest_rnn.backends`, named as the reference names
    them (``inputs``, ``initial_state <i>``, weight paths)."""
    from pytest_rnn import backends

    states = [] if initial_state is None else [
        np.asarray(compare.to_numpy(s), dtype=np.float32) for s in compare.flatten(initial_state)]
    weights = [keras.ops.convert_to_tensor(np.asarray(w, dtype=np.float32))
               for w in loss_weights]

    tree = compare.keras_tree()

    def loss_fn(x, *init):
        kwargs: dict[str, Any] = {}
        if init:  # in the structure the caller gave (nested for stacked cells)
            kwargs["initial_state"] = tree.pack_sequence_as(initial_state, list(init))
        if mask is not None:
            kwargs["mask"] = keras.ops.convert_to_tensor(np.asarray(mask, dtype=bool))
        if training is not None:
            kwargs["training"] = training
        returned = tree.flatten(layer(x, **kwargs))
        if len(returned) != len(weights):
            raise AssertionError(
                f"{type(layer).__name__} {layer.name!r} returned {len(returned)} tensors; the "
                f"reference expects {len(weights)}"
            )
        total = 0.0
        for value, w in zip(returned, weights, strict=True):
            total = total + keras.ops.sum(keras.ops.cast(value, "float32") * w)
        return total

    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    variables = list(layer.trainable_weights)
    loss, g_vars, g_inputs = backends.value_and_grad(loss_fn, variables, [x, *states])
    named = [("inputs", g_inputs[0])]
    named += [(f"initial_state {i}", g) for i, g in enumerate(g_inputs[1:])]
    named += [(_path(v), g) for v, g in zip(variables, g_vars, strict=True)]
    return loss, named


def _gate_of(name: str, column: int, cells: dict[str, tuple[str, int]]) -> str:
    """``column 7 is gate c, unit 1`` for a weight column (kernels put gates side by side)."""
    kind, units = cells.get(name, ("", 0))
    gates = GATES.get(kind, ("",))
    if units and len(gates) > 1 and column < len(gates) * units:
        return f"column {column} is gate {gates[column // units]}, unit {column % units}"
    return f"column {column} is unit {column % units}" if units else ""


def _worst(value: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> tuple[int, ...]:
    """Index of the largest difference among those beyond ``atol + rtol |ref|`` (the element
    :func:`compare.difference` reports as worst)."""
    diff = np.abs(value - ref)
    bad = ~(diff <= atol + rtol * np.abs(ref))
    return tuple(int(i) for i in np.unravel_index(
        int(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0))), diff.shape))


def _step_story(bad_steps: np.ndarray, order: list[int]) -> str:
    """How the set of steps whose input gradient differs reads back in time."""
    bad = [t for t in order if bad_steps[t]]
    good_tail = []
    for t in reversed(order):  # from the last processed step back
        if bad_steps[t]:
            break
        good_tail.append(t)
    first_bad = [t for t in reversed(order) if bad_steps[t]][0]
    story = f"differing steps {sorted(bad)} of {len(order)}"
    if good_tail:
        story += (
            f"; going back in time from the last processed step {order[-1]}, gradients agree "
            f"at steps {sorted(good_tail)} and diverge from step {first_bad} on (gradient "
            f"stops flowing back beyond step {good_tail[-1]})"
        )
    return story


def compare_gradients(
    got: list[tuple[str, np.ndarray | None]],
    reference: ReferenceGradients,
    *,
    atol: float,
    rtol: float,
    what: str,
    order: list[int],
    mask: np.ndarray | None = None,
    cells: dict[str, tuple[str, int]] | None = None,
) -> None:
    """Raise an AssertionError naming each gradient that differs, where and how."""
    cells = cells or {}
    want = dict(reference.gradients)
    # the layer's initial states are numbered: pair them with the reference's names
    ref_states = [n for n in want if n.startswith("initial_state")]
    got_states = [n for n, _ in got if n.startswith("initial_state")]
    rename = dict(zip(got_states, ref_states, strict=False))
    got = [(rename.get(n, n), v) for n, v in got]
    got_names = [n for n, _ in got]
    missing = [n for n in want if n not in got_names]
    extra = [n for n in got_names if n not in want]
    problems = []
    if missing or extra:
        problems.append(f"  the reference has gradients of {missing} that the layer lacks, "
                        f"the layer of {extra} that the reference lacks")
    for name, value in got:
        if name not in want:
            continue
        ref = want[name]
        if value is None:
            problems.append(f"  dL/d {name}: no gradient at all (the loss does not depend on it); "
                            f"the reference's largest is {np.abs(ref).max():.3g}")
            continue
        value = np.asarray(value, dtype=np.float64)
        tol = atol * max(1.0, float(np.abs(ref).max()))  # relative to the tensor's scale
        if name == "inputs":
            axes = ("batch", "step", "feature")
        elif name.startswith("initial_state"):
            axes = ("batch", "unit")
        else:
            axes = {1: ("column",), 2: ("row", "column")}.get(ref.ndim)
        line = compare.difference(f"dL/d {name}", value, ref, atol=tol, rtol=rtol, axes=axes,
                                  labels=("layer", "reference"))
        if line is None:
            continue
        if value.shape == ref.shape and name != "inputs" and \
                not name.startswith("initial_state"):
            gate = _gate_of(name, _worst(value, ref, tol, rtol)[-1], cells)
            line += f" ({gate})" if gate else ""
        if name == "inputs" and value.shape == ref.shape:
            bad = ~(np.abs(value - ref) <= tol + rtol * np.abs(ref))
            line += "; " + _step_story(bad.any(axis=(0, 2)), order)
            if mask is not None:
                leak = bad & ~mask[:, :, None]
                if leak.any() and not (bad & mask[:, :, None]).any():
                    b, t = np.argwhere(leak.any(axis=2))[0]
                    line += (f"; every differing value is at a masked (padded) step, where the "
                             f"reference gradient is exactly 0: gradient leaks into padded "
                             f"steps (e.g. batch {b}, step {t})")
        problems.append("  " + line)
    if problems:
        raise AssertionError(
            f"{what}: gradients of L = sum_k sum(W_k * returned_k) (W_k fixed standard normals) "
            f"differ from the float64 NumPy backward pass through time (atol {atol:.3g} "
            f"* max(1, max|ref|) per tensor, rtol {rtol:.3g}):\n" + "\n".join(problems)
        )


def assert_gradients_match_reference(
    layer: Any,
    inputs: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    **call_kwargs: Any,
) -> ReferenceGradients:
    """Assert the gradients ``layer`` gives equal the float64 NumPy backward pass through time.

    ``layer``: a SimpleRNN, LSTM or GRU layer (either ``reset_after``), a
    ``keras.layers.RNN`` over their cells or a stack of them, or a ``Bidirectional`` of
    those (any merge mode); built for ``inputs`` if it is not. ``call_kwargs``:
    ``initial_state``, ``mask``, ``training`` (``training=True`` only without dropout).

    The loss is ``L = sum_k sum(W_k * returned_k)`` over every tensor the call returns,
    ``W_k`` standard normals from ``numpy.random.default_rng(seed)``. Gradients are taken
    with respect to the inputs, each initial state passed and every trainable weight, by
    the active backend (:mod:`pytest_rnn.backends`). A failure names the tensor (weight
    path, ``inputs`` or ``initial_state <name>``), the batch, step and unit (gate and
    unit for weight columns) of the worst difference, the first differing step, and
    how far back in time the gradient still agrees ("gradient stops flowing back beyond
    step k"). Default tolerances: :func:`gradient_tolerance`.
    Returns the reference's :class:`ReferenceGradients`.
    """
    fwd.check_call_kwargs(layer, call_kwargs)
    x = np.asarray(compare.to_numpy(inputs), dtype=np.float32)
    if not layer.built:
        layer.build(x.shape)
    mask = call_kwargs.get("mask")
    mask = None if mask is None else np.asarray(compare.to_numpy(mask), dtype=bool)
    init = call_kwargs.get("initial_state")
    reference = reference_gradients(layer, x, initial_state=init, mask=mask, seed=seed)
    _, got = layer_gradients(layer, x, reference.loss_weights, initial_state=init, mask=mask,
                             training=call_kwargs.get("training"))
    tol = gradient_tolerance(x.shape[1], _fan_in(layer, x.shape[2]))
    steps = x.shape[1]
    go_backwards = bool(getattr(getattr(layer, "forward_layer", layer), "go_backwards", False))
    order = list(range(steps - 1, -1, -1)) if go_backwards else list(range(steps))
    cells = {}
    for cell in _cells_of(layer):
        for attr in ("kernel", "recurrent_kernel", "bias"):
            var = getattr(cell, attr, None)
            if var is not None:
                cells[_path(var)] = (cell_kind(cell), int(cell.units))
    compare_gradients(
        got, reference, atol=tol if atol is None else atol, rtol=tol if rtol is None else rtol,
        what=f"{type(layer).__name__} {layer.name!r}", order=order, mask=mask, cells=cells)
    return reference
