"""A catalogue of plausible Keras regressions, and the runner that injects them.

Each :class:`Regression` is something a TensorFlow/Keras release could ship: a
changed default, swapped gates or states, dropout leaking into inference, a mask
or initial state ignored, a direction flag lost, a weight frozen, a config key no
longer serialized ... It is applied by monkeypatching Keras *classes* (so every
layer the suites build afterwards has it, however they imported Keras), and names
the suite tests that must go red (``fails``) and neighbours that must stay green
(``passes``), which shows the suites fail for the right reason and not because
everything broke.

``python tests/keras_regressions.py OUT.json [ID ...]`` starts one pytest session
over the targets (TensorFlow imported and tests collected once), runs them
without a patch (the control), then for each regression applies it, runs only
its targets, undoes it, and writes every test's outcome to ``OUT.json``.
``tests/test_proof_of_sensitivity.py`` runs this once and asserts per regression.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

CUDNN = "suites/test_cudnn_eligibility.py::"
DROPOUT = "suites/test_dropout.py::"
PARAMS = "suites/test_param_counts.py::"
REFERENCE = "suites/test_reference_math.py::"
SERIAL = "suites/test_serialization.py::"
SHAPES = "suites/test_shapes_and_states.py::"
TIME = "suites/test_time_and_state.py::"
TRAIN = "suites/test_trainability.py::"


@dataclass(frozen=True)
class Regression:
    """One injected regression: ``apply(monkeypatch)`` and the tests that must notice."""

    id: str
    description: str
    apply: Callable[[pytest.MonkeyPatch], None]
    fails: tuple[str, ...]
    passes: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        return self.fails + self.passes


# --- patching helpers -------------------------------------------------------------------------


def _keras():
    """Keras's internal modules (imported when a patch is applied, not at collection)."""
    from keras.src import backend, ops
    from keras.src.layers.core.embedding import Embedding
    from keras.src.layers.rnn import bidirectional, dropout_rnn_cell, gru, lstm, rnn, simple_rnn

    return {
        "backend": backend,
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
    }


def wrap(mp: pytest.MonkeyPatch, cls: type, name: str, make: Callable[[Callable], Callable]):
    """Replace ``cls.name`` by ``make(original)``, keeping the original's signature (Keras
    inspects ``call`` signatures for ``training`` and ``mask``)."""
    original = getattr(cls, name)
    replacement = functools.wraps(original)(make(original))
    mp.setattr(cls, name, replacement)


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


def with_attribute(mp: pytest.MonkeyPatch, cls: type, method: str, attr: str, value_of):
    """Run ``cls.method`` with ``self.attr`` temporarily set to ``value_of(self)``."""

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
            names = [
                n
                for n in ("kernel", "recurrent_kernel", "bias")
                if getattr(self, n, None) is not None
            ]
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


def returning(mp: pytest.MonkeyPatch, cls: type, method: str, transform) -> None:
    """Pass ``cls.method``'s result through ``transform(self, result)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            return transform(self, original(self, *args, **kwargs))

        return patched

    wrap(mp, cls, method, make)


def with_kwargs(mp: pytest.MonkeyPatch, cls: type, method: str, edit) -> None:
    """Call ``cls.method`` with keyword arguments edited by ``edit(self, kwargs)``."""

    def make(original):
        def patched(self, *args, **kwargs):
            return original(self, *args, **edit(self, kwargs))

        return patched

    wrap(mp, cls, method, make)


def _cells(k: dict) -> tuple[type, ...]:
    return (k["SimpleRNNCell"], k["LSTMCell"], k["GRUCell"])


# --- the regressions --------------------------------------------------------------------------


def _default(layer: str, param: str, value: Any):
    def apply(mp):
        change_default(mp, _keras()[layer].__init__, param, value)

    return apply


def _lstm_swap_i_f(mp):
    def make(original):
        def patched(self, z, c_tm1):
            z0, z1, z2, z3 = z
            return original(self, (z1, z0, z2, z3), c_tm1)

        return patched

    wrap(mp, _keras()["LSTMCell"], "_compute_carry_and_output_fused", make)


def _gru_swap_z_r(mp):
    def edit(cell, values):
        units = cell.units
        out = {n: swap_blocks(v, units, 0, 1) for n, v in values.items()}
        return out

    with_weights(mp, _keras()["GRUCell"], edit)


def _gru_drop_recurrent_bias(mp):
    def edit(cell, values):
        if cell.use_bias and cell.reset_after:
            values["bias"][1] = 0.0
        return values

    with_weights(mp, _keras()["GRUCell"], edit)


def _simple_rnn_bias_twice(mp):
    def edit(cell, values):
        if cell.use_bias:
            values["bias"] = 2 * values["bias"]
        return values

    with_weights(mp, _keras()["SimpleRNNCell"], edit)


def _lstm_activation_ignored(mp):
    with_attribute(mp, _keras()["LSTMCell"], "call", "activation", lambda self, old: lambda x: x)


def _lstm_impl1_drops_output_bias(mp):
    def edit(cell, values):
        if cell.implementation == 1 and cell.use_bias:
            values["bias"][3 * cell.units :] = 0.0
        return values

    with_weights(mp, _keras()["LSTMCell"], edit)


def _lstm_state_order(mp):
    def transform(self, result):
        if self.return_state:
            output, h, c = result
            return output, c, h
        return result

    returning(mp, _keras()["LSTM"], "call", transform)


def _force_training(value: bool):
    def apply(mp):
        k = _keras()
        for cls in _cells(k):

            def edit(self, kwargs):
                if self.dropout or self.recurrent_dropout:
                    kwargs["training"] = value
                return kwargs

            with_kwargs(mp, cls, "call", edit)

    return apply


def _recurrent_dropout_ignored(mp):
    k = _keras()
    ops = k["ops"]

    def transform(self, mask):
        if mask is None:
            return None
        return [ops.ones_like(m) for m in mask] if isinstance(mask, list) else ops.ones_like(mask)

    returning(mp, k["DropoutRNNCell"], "get_recurrent_dropout_mask", transform)


def _dropout_rate_is_keep_probability(mp):
    def make(original):
        def patched(self, step_input, dropout_rate):
            return original(self, step_input, 1.0 - dropout_rate)

        return patched

    wrap(mp, _keras()["DropoutRNNCell"], "_create_dropout_mask", make)


def _dropout_not_rescaled(mp):
    def make(original):
        def patched(self, step_input, dropout_rate):
            mask = original(self, step_input, dropout_rate)
            scale = 1.0 - dropout_rate
            return [m * scale for m in mask] if isinstance(mask, list) else mask * scale

        return patched

    wrap(mp, _keras()["DropoutRNNCell"], "_create_dropout_mask", make)


def _dropout_mask_per_step(mp):
    def make(original):
        def patched(self, step_input):
            self.reset_dropout_mask()
            return original(self, step_input)

        return patched

    wrap(mp, _keras()["DropoutRNNCell"], "get_dropout_mask", make)


def _seed_ignored(mp):
    k = _keras()
    backend, ops = k["backend"], k["ops"]

    def unseeded(self, step_input, dropout_rate):
        ones = ops.ones_like(step_input)
        count = getattr(self, "dropout_mask_count", None)

        def draw():
            return backend.random.dropout(ones, rate=dropout_rate, seed=None)

        return draw() if count is None else [draw() for _ in range(count)]

    wrap(mp, k["DropoutRNNCell"], "_create_dropout_mask", lambda original: unseeded)


def _bidirectional_no_training(mp):
    def edit(self, kwargs):
        kwargs["training"] = False
        return kwargs

    with_kwargs(mp, _keras()["Bidirectional"], "call", edit)


def _rnn_call_kwarg(name: str, value: Any):
    def apply(mp):
        def edit(self, kwargs):
            kwargs[name] = value
            return kwargs

        with_kwargs(mp, _keras()["RNN"], "call", edit)

    return apply


def _rnn_attribute_off(attr: str):
    def apply(mp):
        with_attribute(mp, _keras()["RNN"], "call", attr, lambda self, old: False)

    return apply


def _stateful_not_carried(mp):
    def make(original):
        def patched(self, *args, **kwargs):
            if self.stateful:
                self.reset_state()
            return original(self, *args, **kwargs)

        return patched

    wrap(mp, _keras()["RNN"], "call", make)


def _reset_state_no_op(mp):
    mp.setattr(_keras()["RNN"], "reset_state", lambda self: None)


def _go_backwards_input_order(mp):
    ops = _keras()["ops"]

    def transform(self, result):
        if not (self.go_backwards and self.return_sequences):
            return result
        if isinstance(result, tuple):
            return (ops.flip(result[0], axis=1), *result[1:])
        return ops.flip(result, axis=1)

    returning(mp, _keras()["RNN"], "call", transform)


def _bidirectional_concat_backward_first(mp):
    ops = _keras()["ops"]

    def transform(self, result):
        if self.merge_mode != "concat":
            return result
        output = result[0] if self.return_state else result
        half = output.shape[-1] // 2
        output = ops.concatenate([output[..., half:], output[..., :half]], axis=-1)
        return (output, *result[1:]) if self.return_state else output

    returning(mp, _keras()["Bidirectional"], "call", transform)


def _bidirectional_states_backward_first(mp):
    def transform(self, result):
        if not self.return_state:
            return result
        n_out = 2 if self.merge_mode is None else 1
        outputs, states = result[:n_out], result[n_out:]
        half = len(states) // 2
        return (*outputs, *states[half:], *states[:half])

    returning(mp, _keras()["Bidirectional"], "call", transform)


def _bidirectional_ave_is_sum(mp):
    with_attribute(
        mp,
        _keras()["Bidirectional"],
        "call",
        "merge_mode",
        lambda self, old: "sum" if old == "ave" else old,
    )


def _bidirectional_backward_reads_forward(mp):
    def make(original):
        def patched(self):
            self.backward_layer.go_backwards = False  # and the check that would notice is gone

        return patched

    wrap(mp, _keras()["Bidirectional"], "_verify_layer_config", make)


def _embedding_mask_lost(mp):
    mp.setattr(_keras()["Embedding"], "compute_mask", lambda self, inputs, mask=None: None)


def _unroll_ignores_mask(mp):
    k = _keras()
    original = k["backend"].rnn

    @functools.wraps(original)
    def patched(*args, **kwargs):
        if kwargs.get("unroll"):
            kwargs["mask"] = None
        return original(*args, **kwargs)

    mp.setattr(k["backend"], "rnn", patched)


def _compute_output_shape_drops_states(mp):
    def transform(self, shapes):
        return shapes[0] if self.return_state else shapes

    returning(mp, _keras()["RNN"], "compute_output_shape", transform)


def _initial_state_ones(mp):
    ops = _keras()["ops"]

    def transform(self, states):
        return [ops.ones_like(s) for s in states]

    returning(mp, _keras()["RNN"], "get_initial_state", transform)


def _after_build(cls_name: str, action: Callable[[Any], None]):
    def apply(mp):
        def make(original):
            def patched(self, *args, **kwargs):
                original(self, *args, **kwargs)
                action(self)

            return patched

        wrap(mp, _keras()[cls_name], "build", make)

    return apply


def _freeze_recurrent_kernel(cell) -> None:
    cell.recurrent_kernel.trainable = False


def _add_unused_bias(cell) -> None:
    cell.extra_bias = cell.add_weight(shape=(cell.units,), name="extra_bias", initializer="zeros")


def _gru_recurrent_kernel_gradient_blocked(mp):
    k = _keras()
    ops = k["ops"]
    with_attribute(
        mp, k["GRUCell"], "call", "recurrent_kernel", lambda self, old: ops.stop_gradient(old)
    )


def _get_config_without(cls_name: str, key: str):
    def apply(mp):
        def transform(self, config):
            config = dict(config)
            config.pop(key, None)
            return config

        returning(mp, _keras()[cls_name], "get_config", transform)

    return apply


def _gru_from_config_ignores_reset_after(mp):
    gru = _keras()["GRU"]
    original = gru.from_config.__func__

    def from_config(cls, config):
        config = dict(config)
        config.pop("reset_after", None)
        return original(cls, config)

    mp.setattr(gru, "from_config", classmethod(from_config))


def _cudnn_rule_without(kind: str, argument: str):
    """cuDNN dispatch forgets one of its disqualifying arguments (``unroll``, ``reset_after``)."""

    def apply(mp):
        import importlib

        module = importlib.import_module("keras.src.backend.tensorflow.rnn")
        name = f"_do_{kind}_arguments_support_cudnn"
        original = getattr(module, name)
        neutral = {"unroll": False, "reset_after": True}[argument]

        @functools.wraps(original)
        def patched(*args, **kwargs):
            kwargs[argument] = neutral
            return original(*args, **kwargs)

        mp.setattr(module, name, patched)

    return apply


def _use_cudnn_true_falls_back(mp):
    with_attribute(
        mp,
        _keras()["LSTM"],
        "inner_loop",
        "use_cudnn",
        lambda self, old: "auto" if old is True else old,
    )


REGRESSIONS: tuple[Regression, ...] = (
    # --- changed defaults
    Regression(
        "gru_reset_after_default_false",
        "GRU's reset_after defaults to False again (the Keras 2.2 default)",
        _default("GRU", "reset_after", False),
        fails=(
            REFERENCE + "test_gru_signature_keeps_the_documented_parameters_order_and_defaults",
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
            REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros",
            PARAMS + "test_imdb_gru8_has_624_params_because_reset_after_adds_a_second_bias_row",
        ),
        passes=(PARAMS + "test_imdb_gru8_with_reset_after_false_has_600_params",),
    ),
    Regression(
        "lstm_unit_forget_bias_default_false",
        "LSTM's unit_forget_bias defaults to False: the forget-gate bias starts at 0",
        _default("LSTM", "unit_forget_bias", False),
        fails=(REFERENCE + "test_lstm_unit_forget_bias_puts_ones_in_the_forget_gate_bias",),
        passes=(REFERENCE + "test_lstm_without_unit_forget_bias_starts_at_zero_bias",),
    ),
    Regression(
        "lstm_recurrent_initializer_default_glorot",
        "LSTM's recurrent_initializer defaults to glorot_uniform instead of orthogonal",
        _default("LSTM", "recurrent_initializer", "glorot_uniform"),
        fails=(
            REFERENCE + "test_default_weights_are_glorot_kernel_orthogonal_recurrent_kernel[lstm]",
        ),
        passes=(
            REFERENCE + "test_default_weights_are_glorot_kernel_orthogonal_recurrent_kernel[gru]",
        ),
    ),
    Regression(
        "lstm_recurrent_activation_default_hard_sigmoid",
        "LSTM's recurrent_activation defaults to hard_sigmoid (the Keras 2 default)",
        _default("LSTM", "recurrent_activation", "hard_sigmoid"),
        fails=(REFERENCE + "test_lstm_and_simple_rnn_default_activations",),
        passes=(
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
        ),
    ),
    Regression(
        "gru_recurrent_activation_default_hard_sigmoid",
        "GRU's recurrent_activation defaults to hard_sigmoid",
        _default("GRU", "recurrent_activation", "hard_sigmoid"),
        fails=(
            REFERENCE + "test_gru_signature_keeps_the_documented_parameters_order_and_defaults",
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
        ),
        passes=(REFERENCE + "test_lstm_and_simple_rnn_default_activations",),
    ),
    Regression(
        "simple_rnn_activation_default_relu",
        "SimpleRNN's activation defaults to relu instead of tanh",
        _default("SimpleRNN", "activation", "relu"),
        fails=(REFERENCE + "test_lstm_and_simple_rnn_default_activations",),
        passes=(
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
        ),
    ),
    Regression(
        "gru_bias_initializer_default_ones",
        "GRU's bias_initializer defaults to ones",
        _default("GRU", "bias_initializer", "ones"),
        fails=(REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros",),
        passes=(REFERENCE + "test_lstm_without_unit_forget_bias_starts_at_zero_bias",),
    ),
    Regression(
        "zero_output_for_mask_default_true",
        "RNN layers zero masked outputs by default instead of repeating the previous output",
        _default("RNN", "zero_output_for_mask", True),
        fails=(TIME + "test_masked_steps_repeat_the_previous_output_by_default[lstm]",),
        passes=(TIME + "test_zero_output_for_mask_zeroes_masked_steps_and_keeps_the_rest[lstm]",),
    ),
    Regression(
        "default_initial_state_not_zero",
        "the default initial state is ones instead of zeros",
        _initial_state_ones,
        fails=(
            SHAPES + "test_default_initial_state_is_zeros_of_batch_by_units[gru]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-initial_state]",),
    ),
    # --- gate and state order, the equations
    Regression(
        "lstm_state_order_c_h",
        "LSTM with return_state returns (output, c, h) instead of (output, h, c)",
        _lstm_state_order,
        fails=(
            SHAPES + "test_lstm_returns_h_then_c_and_c_is_the_cell_state",
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-sequences_and_states]",
        ),
        passes=(SHAPES + "test_layer_returns_output_then_its_states[lstm-seq1-state1]",),
    ),
    Regression(
        "lstm_gates_i_f_swapped",
        "LSTM reads the input gate from the forget gate's columns and vice versa",
        _lstm_swap_i_f,
        fails=(
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",
            TIME + "test_implementation_1_equals_implementation_2[lstm]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",),
    ),
    Regression(
        "gru_gates_z_r_swapped",
        "GRU reads the update gate from the reset gate's columns and vice versa",
        _gru_swap_z_r,
        fails=(
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru_reset_before-last_output]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
    ),
    Regression(
        "gru_recurrent_bias_dropped",
        "GRU with reset_after ignores its second (recurrent) bias row",
        _gru_drop_recurrent_bias,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",),
        passes=(
            REFERENCE + "test_layer_matches_the_numpy_reference[gru_reset_before-last_output]",
        ),
    ),
    Regression(
        "simple_rnn_bias_added_twice",
        "SimpleRNN adds its bias twice",
        _simple_rnn_bias_twice,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-last_output]",),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-no_bias]",),
    ),
    Regression(
        "lstm_cell_activation_ignored",
        "LSTM skips its activation (h = o * c)",
        _lstm_activation_ignored,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-sequences_and_states]",),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-last_output]",),
    ),
    Regression(
        "lstm_implementation_1_drops_output_gate_bias",
        "LSTM implementation=1 forgets the output gate's bias; implementation 2 is right",
        _lstm_impl1_drops_output_bias,
        fails=(TIME + "test_implementation_1_equals_implementation_2[lstm]",),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
    ),
    # --- dropout
    Regression(
        "dropout_leaks_into_inference",
        "cells with dropout apply their masks at inference too",
        _force_training(True),
        fails=(
            DROPOUT + "test_inference_ignores_dropout_and_is_deterministic[lstm]",
            DROPOUT + "test_inference_ignores_dropout_and_is_deterministic[simple_rnn]",
        ),
        passes=(DROPOUT + "test_training_output_differs_from_inference[lstm-dropout]",),
    ),
    Regression(
        "dropout_vanishes_from_training",
        "cells ignore dropout in training",
        _force_training(False),
        fails=(
            DROPOUT + "test_training_output_differs_from_inference[gru-dropout]",
            DROPOUT + "test_training_output_differs_from_inference[lstm-recurrent_dropout]",
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]",
        ),
        passes=(DROPOUT + "test_inference_ignores_dropout_and_is_deterministic[simple_rnn]",),
    ),
    Regression(
        "recurrent_dropout_ignored",
        "recurrent_dropout masks are all ones (input dropout still works)",
        _recurrent_dropout_ignored,
        fails=(
            DROPOUT + "test_training_output_differs_from_inference[simple_rnn-recurrent_dropout]",
            DROPOUT
            + "test_dropped_fraction_matches_the_rate_within_5_sigma[lstm-recurrent_dropout]",
        ),
        passes=(DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[lstm-dropout]",),
    ),
    Regression(
        "dropout_rate_used_as_keep_probability",
        "masks keep a fraction `rate` of the units instead of dropping it",
        _dropout_rate_is_keep_probability,
        fails=(
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[gru-dropout]",
            DROPOUT
            + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-recurrent_dropout]",
        ),
        passes=(DROPOUT + "test_inference_ignores_dropout_and_is_deterministic[simple_rnn]",),
    ),
    Regression(
        "dropout_not_rescaled",
        "kept units are not scaled by 1 / (1 - rate)",
        _dropout_not_rescaled,
        fails=(
            DROPOUT + "test_kept_units_are_scaled_by_one_over_keep_probability[lstm-dropout]",
            DROPOUT
            + "test_kept_units_are_scaled_by_one_over_keep_probability[gru-recurrent_dropout]",
        ),
        passes=(DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[lstm-dropout]",),
    ),
    Regression(
        "dropout_mask_redrawn_every_step",
        "a new input-dropout mask is drawn at every time step",
        _dropout_mask_per_step,
        fails=(
            DROPOUT + "test_one_input_mask_is_reused_at_every_time_step[simple_rnn-dropout]",
            DROPOUT
            + "test_one_input_mask_is_reused_at_every_time_step[lstm-dropout_with_recurrent]",
        ),
        passes=(
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]",
        ),
    ),
    Regression(
        "dropout_seed_ignored",
        "dropout masks ignore the layer's seed",
        _seed_ignored,
        fails=(
            DROPOUT + "test_same_seed_reproduces_the_masks_and_each_call_draws_new_ones[lstm]",
            DROPOUT
            + "test_same_seed_reproduces_the_masks_and_each_call_draws_new_ones[simple_rnn]",
        ),
        passes=(
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]",
        ),
    ),
    Regression(
        "bidirectional_drops_the_training_flag",
        "Bidirectional calls its layers with training=False, so no dropout in training",
        _bidirectional_no_training,
        fails=(DROPOUT + "test_bidirectional_training_applies_dropout_in_both_directions[lstm]",),
        passes=(DROPOUT + "test_training_output_differs_from_inference[lstm-dropout]",),
    ),
    # --- masks, direction, carried state, code paths
    Regression(
        "mask_ignored",
        "RNN layers ignore the mask",
        _rnn_call_kwarg("mask", None),
        fails=(
            TIME + "test_masked_steps_repeat_the_previous_output_by_default[simple_rnn]",
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-mask]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
    ),
    Regression(
        "embedding_mask_not_propagated",
        "Embedding(mask_zero=True) no longer produces a mask",
        _embedding_mask_lost,
        fails=(TIME + "test_mask_zero_padding_equals_the_unpadded_sequence[lstm-post]",),
        passes=(TIME + "test_masked_steps_repeat_the_previous_output_by_default[lstm]",),
    ),
    Regression(
        "zero_output_for_mask_ignored",
        "zero_output_for_mask=True no longer zeroes masked steps",
        _rnn_attribute_off("zero_output_for_mask"),
        fails=(
            TIME + "test_zero_output_for_mask_zeroes_masked_steps_and_keeps_the_rest[gru]",
            TIME + "test_bidirectional_zeroes_masked_steps_of_both_directions[lstm]",
        ),
        passes=(TIME + "test_masked_steps_repeat_the_previous_output_by_default[gru]",),
    ),
    Regression(
        "initial_state_ignored",
        "RNN layers ignore initial_state and start from zeros",
        _rnn_call_kwarg("initial_state", None),
        fails=(
            TIME + "test_initial_state_continues_a_sequence[lstm]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-initial_state]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",),
    ),
    Regression(
        "stateful_state_not_carried",
        "stateful layers restart from zeros at every call",
        _stateful_not_carried,
        fails=(
            TIME + "test_stateful_halves_equal_the_whole_sequence_and_reset_state_restores[gru]",
            REFERENCE + "test_stateful_layer_continues_from_its_state_as_the_reference_does[lstm]",
        ),
        passes=(TIME + "test_stateful_layer_rejects_a_different_batch_size",),
    ),
    Regression(
        "reset_state_does_nothing",
        "reset_state() leaves a stateful layer's state as it was",
        _reset_state_no_op,
        fails=(
            TIME + "test_stateful_halves_equal_the_whole_sequence_and_reset_state_restores[lstm]",
        ),
        passes=(
            REFERENCE + "test_stateful_layer_continues_from_its_state_as_the_reference_does[lstm]",
        ),
    ),
    Regression(
        "go_backwards_ignored",
        "go_backwards=True reads the sequence forwards",
        _rnn_attribute_off("go_backwards"),
        fails=(
            TIME + "test_go_backwards_equals_the_layer_on_reversed_input[simple_rnn]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-go_backwards]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",),
    ),
    Regression(
        "go_backwards_sequence_in_input_order",
        "go_backwards returns its sequence re-reversed into input order",
        _go_backwards_input_order,
        fails=(
            TIME + "test_go_backwards_equals_the_layer_on_reversed_input[gru]",
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-go_backwards]",
        ),
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
    ),
    Regression(
        "bidirectional_concat_backward_first",
        "Bidirectional concat puts the backward direction first",
        _bidirectional_concat_backward_first,
        fails=(
            TIME + "test_bidirectional_equals_its_forward_layer_and_reversed_backward_layer[gru]",
            SHAPES + "test_bidirectional_states_are_forward_then_backward[lstm]",
        ),
        passes=(REFERENCE + "test_bidirectional_matches_the_reference[simple_rnn-sum]",),
    ),
    Regression(
        "bidirectional_states_backward_first",
        "Bidirectional returns the backward layer's states before the forward layer's",
        _bidirectional_states_backward_first,
        fails=(
            SHAPES + "test_bidirectional_states_are_forward_then_backward[gru]",
            REFERENCE + "test_bidirectional_matches_the_reference[lstm-sum]",
        ),
        passes=(
            SHAPES
            + "test_bidirectional_returns_merged_output_then_forward_then_backward_states"
            + "[gru-concat-seq1-state1]",
        ),
    ),
    Regression(
        "bidirectional_ave_is_sum",
        "Bidirectional merge_mode='ave' sums instead of averaging",
        _bidirectional_ave_is_sum,
        fails=(SHAPES + "test_bidirectional_merge_modes_combine_the_two_directions[gru]",),
        passes=(REFERENCE + "test_bidirectional_matches_the_reference[lstm-sum]",),
    ),
    Regression(
        "bidirectional_backward_layer_reads_forward",
        "Bidirectional's backward layer loses go_backwards and reads forwards",
        _bidirectional_backward_reads_forward,
        fails=(
            TIME + "test_bidirectional_equals_its_forward_layer_and_reversed_backward_layer[gru]",
        ),
        passes=(TIME + "test_go_backwards_equals_the_layer_on_reversed_input[gru]",),
    ),
    Regression(
        "unroll_ignores_mask",
        "unroll=True drops the mask; the symbolic loop keeps it",
        _unroll_ignores_mask,
        fails=(TIME + "test_unroll_equals_the_symbolic_loop[lstm-masked]",),
        passes=(TIME + "test_unroll_equals_the_symbolic_loop[lstm-unmasked]",),
    ),
    Regression(
        "compute_output_shape_drops_states",
        "compute_output_shape leaves out the state shapes with return_state",
        _compute_output_shape_drops_states,
        fails=(SHAPES + "test_compute_output_shape_agrees_with_real_outputs[gru-seq1-state1]",),
        passes=(SHAPES + "test_compute_output_shape_agrees_with_real_outputs[gru-seq1-state0]",),
    ),
    # --- cuDNN dispatch
    Regression(
        "gru_reset_before_routed_to_cudnn",
        "GRU with reset_after=False is sent to the cuDNN kernel, which computes reset_after",
        _cudnn_rule_without("gru", "reset_after"),
        fails=(
            CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[gru-reset_before]",
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host"
            + "[gru-reset_before]",
        ),
        passes=(CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[gru-relu]",),
    ),
    Regression(
        "lstm_unroll_routed_to_cudnn",
        "LSTM with unroll=True is sent to the cuDNN kernel",
        _cudnn_rule_without("lstm", "unroll"),
        fails=(CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[lstm-unroll]",),
        passes=(CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[lstm-no_bias]",),
    ),
    Regression(
        "use_cudnn_true_falls_back_silently",
        "LSTM(use_cudnn=True) quietly uses the generic kernel instead of raising",
        _use_cudnn_true_falls_back,
        fails=(
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host[lstm-relu]",
        ),
        passes=(
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host[gru-relu]",
        ),
    ),
    # --- weights and training
    Regression(
        "lstm_recurrent_kernel_frozen",
        "LSTM creates its recurrent kernel with trainable=False",
        _after_build("LSTMCell", _freeze_recurrent_kernel),
        fails=(
            TRAIN + "test_every_weight_is_trainable[lstm]",
            TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[lstm]",
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train[lstm-u3-d4-bias]",
        ),
        passes=(TRAIN + "test_every_weight_is_trainable[gru]",),
    ),
    Regression(
        "gru_recurrent_kernel_gradient_blocked",
        "GRU's recurrent kernel is trainable but receives no gradient",
        _gru_recurrent_kernel_gradient_blocked,
        fails=(TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[gru]",),
        passes=(
            TRAIN + "test_every_weight_is_trainable[gru]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",
        ),
    ),
    Regression(
        "simple_rnn_extra_unused_bias",
        "SimpleRNN creates an extra bias weight that the computation never uses",
        _after_build("SimpleRNNCell", _add_unused_bias),
        fails=(
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train"
            + "[simple_rnn-u3-d4-bias]",
            TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[simple_rnn]",
        ),
        passes=(TRAIN + "test_every_weight_is_trainable[simple_rnn]",),
    ),
    # --- serialization
    Regression(
        "get_config_drops_go_backwards",
        "RNN.get_config no longer writes go_backwards",
        _get_config_without("RNN", "go_backwards"),
        fails=(
            SERIAL
            + "test_get_config_from_config_round_trip_keeps_settings_and_outputs[simple_rnn]",
            SERIAL + "test_keras_file_save_and_load_reproduces_settings_and_outputs[simple_rnn]",
        ),
        passes=(SERIAL + "test_get_config_from_config_round_trip_keeps_settings_and_outputs[gru]",),
    ),
    Regression(
        "gru_from_config_ignores_reset_after",
        "GRU.from_config drops reset_after, so a reset_after=False GRU loads as True",
        _gru_from_config_ignores_reset_after,
        fails=(
            SERIAL
            + "test_get_config_from_config_round_trip_keeps_settings_and_outputs[gru_reset_before]",
            SERIAL
            + "test_keras_file_save_and_load_reproduces_settings_and_outputs[gru_reset_before]",
        ),
        passes=(SERIAL + "test_keras_file_save_and_load_reproduces_settings_and_outputs[gru]",),
    ),
    Regression(
        "lstm_get_config_drops_seed",
        "LSTM.get_config no longer writes the dropout seed",
        _get_config_without("LSTM", "seed"),
        fails=(SERIAL + "test_get_config_keeps_the_dropout_seed[lstm]",),
        passes=(SERIAL + "test_get_config_keeps_the_dropout_seed[gru]",),
    ),
)

BY_ID = {r.id: r for r in REGRESSIONS}
assert len(BY_ID) == len(REGRESSIONS), "duplicate regression ids"


# --- the runner -------------------------------------------------------------------------------


def selects(selector: str, nodeid: str) -> bool:
    """Whether ``selector`` (a node id, with or without its ``[params]``) names ``nodeid``."""
    return nodeid == selector or (nodeid.startswith(selector + "[") and "[" not in selector)


class SensitivityLoop:
    """pytest plugin replacing the run loop: every ``fails`` target runs once without a
    patch (``control``), then, per regression, its targets run with the patch applied.

    One session, one collection: re-running an item is supported by pytest (its
    request is re-initialised), and the last item of each group is run with
    ``nextitem=None`` so every fixture, module-scoped ones included, is torn down
    before the next patch.
    """

    def __init__(self, regressions: list[Regression]) -> None:
        self.regressions = regressions
        self.current = "control"
        self.results: dict[str, dict[str, Any]] = {}

    def _group(self, label: str, items: list, apply=None) -> None:
        started = time.perf_counter()
        self.current = label
        group = self.results[label] = {"tests": {}}
        monkeypatch = pytest.MonkeyPatch()
        try:
            if apply is not None:
                apply(monkeypatch)
            for index, item in enumerate(items):
                nextitem = items[index + 1] if index + 1 < len(items) else None
                item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except Exception:  # a patch that cannot be applied is reported, not fatal
            group["patch_error"] = traceback.format_exc()
        finally:
            monkeypatch.undo()
        group["seconds"] = round(time.perf_counter() - started, 3)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return False  # collection errors: pytest reports them

        def chosen(selectors: tuple[str, ...]) -> list:
            return [i for i in session.items if any(selects(s, i.nodeid) for s in selectors)]

        # the control proves each `fails` target passes without its patch
        self._group("control", chosen(tuple(t for r in self.regressions for t in r.fails)))
        for regression in self.regressions:
            self._group(regression.id, chosen(regression.targets), regression.apply)
        return True

    def pytest_runtest_logreport(self, report) -> None:
        tests = self.results[self.current]["tests"]
        entry = tests.setdefault(report.nodeid, {"outcome": "passed", "message": "", "seconds": 0})
        entry["seconds"] = round(entry["seconds"] + report.duration, 4)
        if report.failed:
            entry["outcome"] = "failed"
            crash = getattr(report.longrepr, "reprcrash", None)
            entry["message"] = (crash.message if crash else str(report.longrepr))[:400]
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"


def _describe(tests: dict, nodeids: list[str]) -> str:
    return "\n".join(
        f"    {n} -> {tests[n]['outcome']} {tests[n]['message'][:200]!r}" for n in nodeids
    )


def problems(regression: Regression, groups: dict[str, dict[str, Any]]) -> list[str]:
    """Why ``regression`` is not proven caught by the runner's ``groups``; empty when it is.

    Proven means: every test each ``fails`` selector names failed with the patch and
    passed in the control run, every test a ``passes`` selector names passed with
    the patch, and every selector named at least one test.
    """
    group = groups.get(regression.id)
    if group is None:
        return [f"  {regression.id} was not run"]
    if "patch_error" in group:
        return [f"  could not inject it:\n{group['patch_error']}"]
    tests, control = group["tests"], groups.get("control", {}).get("tests", {})
    found = []
    for selector in regression.fails:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"  {selector}: selects no test")
        stayed_green = [n for n in matched if tests[n]["outcome"] != "failed"]
        if stayed_green:
            found.append(f"  did not fail:\n{_describe(tests, stayed_green)}")
        red_anyway = [n for n in matched if control.get(n, {}).get("outcome") != "passed"]
        if red_anyway:
            shown = {n: control.get(n, {"outcome": "not run", "message": ""}) for n in red_anyway}
            found.append(f"  not green without the patch:\n{_describe(shown, red_anyway)}")
    for selector in regression.passes:
        matched = [n for n in tests if selects(selector, n)]
        if not matched:
            found.append(f"  {selector}: selects no test")
        broken = [n for n in matched if tests[n]["outcome"] != "passed"]
        if broken:
            found.append(f"  unrelated tests broke too:\n{_describe(tests, broken)}")
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, ids = Path(argv[0]), argv[1:] or list(BY_ID)
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        print(f"unknown regression ids: {unknown}; known: {sorted(BY_ID)}", file=sys.stderr)
        return 2
    chosen = [BY_ID[i] for i in ids]
    loop = SensitivityLoop(chosen)
    targets = list(dict.fromkeys(t for r in chosen for t in r.targets))
    started = time.perf_counter()
    code = pytest.main(
        [*targets, "-q", "--no-header", "-p", "no:cacheprovider", "--tb=no", "-rN"],
        plugins=[loop],
    )
    summary = {"exit_code": int(code), "seconds": round(time.perf_counter() - started, 3)}
    out.write_text(json.dumps({"run": summary, "groups": loop.results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
