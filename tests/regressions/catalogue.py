"""The catalogue: plausible Keras regressions and the suite tests that must catch each one.

Each :class:`Regression` is something a TensorFlow/Keras release could ship: a changed
default, swapped gates or states, dropout leaking into inference, a mask or initial state
ignored, a direction flag lost, a weight frozen, a config key no longer serialized ... Its
``apply(monkeypatch)`` injects it with the helpers of :mod:`regressions.patches`. It names
the suite tests that must go red (``fails``), the regular expression their failure
messages must match (``message``, or per test in ``messages``), and neighbours that must
stay green (``passes``): together they show the suites fail for the right reason, on their
assertion about that behaviour, and not because everything broke.

:data:`REGRESSIONS` is proven by ``tests/test_proof_of_sensitivity.py`` (fast suites): this
module's own entries (:data:`LAYER_REGRESSIONS`), those of :mod:`regressions.training_path`
and those of :mod:`regressions.surface`;
:data:`TRAINING_REGRESSIONS` by ``tests/test_accuracy_sensitivity.py`` (slow: the toy
tasks and the power-checked IMDB models train again; :data:`MILD_TRAINING_REGRESSIONS` are
the mild ones the calibrated IMDB checks exist for); :data:`PROBES` are not regressions
but checks of the judge itself.
"""

from __future__ import annotations

from typing import Any

from pytest_rnn.checks import behaviours, compare, params, shapes
from pytest_rnn.plugin import baseline_messages
from regressions import surface, training_path
from regressions.entry import Regression
from regressions.patches import (
    Apply,
    after_build,
    cells,
    change_default,
    keras_internals,
    replace,
    returning,
    swap_blocks,
    with_attribute,
    with_kwargs,
    with_states,
    with_weights,
    wrap,
)
from regressions.wording import quoted

CUDNN = "suites/test_cudnn_eligibility.py::"
DROPOUT = "suites/test_dropout.py::"
PARAMS = "suites/test_param_counts.py::"
REFERENCE = "suites/test_reference_math.py::"
SERIAL = "suites/test_serialization.py::"
SHAPES = "suites/test_shapes_and_states.py::"
TIME = "suites/test_time_and_state.py::"
MASKING = "suites/test_masking_edges.py::"
TRAIN = "suites/test_trainability.py::"
TOY = "suites/test_accuracy_toy.py::"
IMDB = "suites/test_accuracy_imdb.py::"

#: Why an entry cannot be injected on JAX (``Regression.bypassed``). Keras's JAX backend
#: runs GRU(reset_after=True) without recurrent dropout as one fused lax.scan
#: (keras/src/backend/jax/rnn.py ``gru``) that computes the gates from the layer's weights
#: itself: GRUCell.call, which these patches replace, never runs.
JAX_FUSED_GRU = ("JAX runs the GRU targets through Keras's fused GRU scan (backend.gru), "
                 "which never calls the GRUCell.call this patch replaces")
#: The TensorFlow routing tests (cuDNN eligibility) skip on other backends; their own
#: routing is pinned by suites/test_fused_routing.py.
TF_ROUTING = ("the tests pin TensorFlow's cuDNN routing, which other backends do not have "
              "(their routing: suites/test_fused_routing.py)")

#: The pattern of what the NumPy-reference comparison says when a layer's output departs
#: from the equations (:data:`pytest_rnn.checks.behaviours.DIFFERS_FROM_REFERENCE`).
DIFFERS_FROM_REFERENCE = quoted(behaviours.DIFFERS_FROM_REFERENCE)


# --- patch functions ------------------------------------------------------------------------


def _defaults(*changes: tuple[str, str, Any]) -> Apply:
    """Constructor defaults changed: ``(class name, parameter, new default)`` each."""

    def apply(mp):
        k = keras_internals()
        for layer, param, value in changes:
            change_default(mp, k[layer].__init__, param, value)

    return apply


def _lstm_swap_i_f(mp):
    def make(original):
        def patched(self, z, c_tm1):
            z0, z1, z2, z3 = z
            return original(self, (z1, z0, z2, z3), c_tm1)

        return patched

    wrap(mp, keras_internals()["LSTMCell"], "_compute_carry_and_output_fused", make)


def _gru_swap_z_r(mp):
    def edit(cell, values):
        return {n: swap_blocks(v, cell.units, 0, 1) for n, v in values.items()}

    with_weights(mp, keras_internals()["GRUCell"], edit)


def _gru_drop_recurrent_bias(mp):
    def edit(cell, values):
        if cell.use_bias and cell.reset_after:
            values["bias"][1] = 0.0
        return values

    with_weights(mp, keras_internals()["GRUCell"], edit)


def _simple_rnn_bias_twice(mp):
    def edit(cell, values):
        if cell.use_bias:
            values["bias"] = 2 * values["bias"]
        return values

    with_weights(mp, keras_internals()["SimpleRNNCell"], edit)


def _lstm_activation_ignored(mp):
    with_attribute(mp, keras_internals()["LSTMCell"], "call", "activation",
                   lambda self, old: lambda x: x)


def _lstm_impl1_drops_output_bias(mp):
    def edit(cell, values):
        if cell.implementation == 1 and cell.use_bias:
            values["bias"][3 * cell.units :] = 0.0
        return values

    with_weights(mp, keras_internals()["LSTMCell"], edit)


def _lstm_state_order(mp):
    def transform(self, result):
        if self.return_state:
            output, h, c = result
            return output, c, h
        return result

    returning(mp, keras_internals()["LSTM"], "call", transform)


def _force_training(value: bool) -> Apply:
    def apply(mp):
        def edit(self, kwargs):
            if self.dropout or self.recurrent_dropout:
                kwargs["training"] = value
            return kwargs

        for cls in cells():
            with_kwargs(mp, cls, "call", edit)

    return apply


def _recurrent_dropout_ignored(mp):
    k = keras_internals()
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

    wrap(mp, keras_internals()["DropoutRNNCell"], "_create_dropout_mask", make)


def _dropout_not_rescaled(mp):
    def make(original):
        def patched(self, step_input, dropout_rate):
            mask = original(self, step_input, dropout_rate)
            scale = 1.0 - dropout_rate
            return [m * scale for m in mask] if isinstance(mask, list) else mask * scale

        return patched

    wrap(mp, keras_internals()["DropoutRNNCell"], "_create_dropout_mask", make)


def _dropout_mask_per_step(mp):
    def make(original):
        def patched(self, step_input):
            self.reset_dropout_mask()
            return original(self, step_input)

        return patched

    wrap(mp, keras_internals()["DropoutRNNCell"], "get_dropout_mask", make)


def _seed_ignored(mp):
    k = keras_internals()
    backend, ops = k["backend"], k["ops"]

    def unseeded(self, step_input, dropout_rate):
        ones = ops.ones_like(step_input)
        count = getattr(self, "dropout_mask_count", None)

        def draw():
            return backend.random.dropout(ones, rate=dropout_rate, seed=None)

        return draw() if count is None else [draw() for _ in range(count)]

    replace(mp, k["DropoutRNNCell"], "_create_dropout_mask", unseeded)


def _bidirectional_no_training(mp):
    def edit(self, kwargs):
        kwargs["training"] = False
        return kwargs

    with_kwargs(mp, keras_internals()["Bidirectional"], "call", edit)


def _rnn_call_kwarg(name: str, value: Any) -> Apply:
    def apply(mp):
        def edit(self, kwargs):
            kwargs[name] = value
            return kwargs

        with_kwargs(mp, keras_internals()["RNN"], "call", edit)

    return apply


def _rnn_attribute_off(attr: str) -> Apply:
    def apply(mp):
        with_attribute(mp, keras_internals()["RNN"], "call", attr, lambda self, old: False)

    return apply


def _stateful_not_carried(mp):
    def make(original):
        def patched(self, *args, **kwargs):
            if self.stateful:
                self.reset_state()
            return original(self, *args, **kwargs)

        return patched

    wrap(mp, keras_internals()["RNN"], "call", make)


def _reset_state_no_op(mp):
    replace(mp, keras_internals()["RNN"], "reset_state", lambda self: None)


def _go_backwards_input_order(mp):
    ops = keras_internals()["ops"]

    def transform(self, result):
        if not (self.go_backwards and self.return_sequences):
            return result
        if isinstance(result, tuple):
            return (ops.flip(result[0], axis=1), *result[1:])
        return ops.flip(result, axis=1)

    returning(mp, keras_internals()["RNN"], "call", transform)


def _bidirectional_concat_backward_first(mp):
    ops = keras_internals()["ops"]

    def transform(self, result):
        if self.merge_mode != "concat":
            return result
        output = result[0] if self.return_state else result
        half = output.shape[-1] // 2
        output = ops.concatenate([output[..., half:], output[..., :half]], axis=-1)
        return (output, *result[1:]) if self.return_state else output

    returning(mp, keras_internals()["Bidirectional"], "call", transform)


def _bidirectional_states_backward_first(mp):
    def transform(self, result):
        if not self.return_state:
            return result
        n_out = 2 if self.merge_mode is None else 1
        outputs, states = result[:n_out], result[n_out:]
        half = len(states) // 2
        return (*outputs, *states[half:], *states[:half])

    returning(mp, keras_internals()["Bidirectional"], "call", transform)


def _bidirectional_ave_is_sum(mp):
    with_attribute(mp, keras_internals()["Bidirectional"], "call", "merge_mode",
                   lambda self, old: "sum" if old == "ave" else old)


def _bidirectional_backward_reads_forward(mp):
    def make(original):
        def patched(self):
            self.backward_layer.go_backwards = False  # and the check that would notice is gone

        return patched

    wrap(mp, keras_internals()["Bidirectional"], "_verify_layer_config", make)


def _embedding_mask_lost(mp):
    replace(mp, keras_internals()["Embedding"], "compute_mask",
            lambda self, inputs, mask=None: None)


def _unroll_ignores_mask(mp):
    def make(original):
        def patched(*args, **kwargs):
            if kwargs.get("unroll"):
                kwargs["mask"] = None
            return original(*args, **kwargs)

        return patched

    wrap(mp, keras_internals()["backend"], "rnn", make)


def _backend_rnn_mask(transform) -> Apply:
    """``backend.rnn`` (the loop every RNN layer runs masked calls through) with its mask
    passed through ``transform(mask)``, a Keras tensor function."""

    def apply(mp):
        def make(original):
            def patched(*args, **kwargs):
                if kwargs.get("mask") is not None:
                    kwargs["mask"] = transform(kwargs["mask"])
                return original(*args, **kwargs)

            return patched

        wrap(mp, keras_internals()["backend"], "rnn", make)

    return apply


def _as_right_padding(mask):
    """Each row's valid steps counted and moved to the front (a lengths-based loop)."""
    ops = keras_internals()["ops"]
    valid = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)
    steps = ops.expand_dims(ops.arange(ops.shape(mask)[1], dtype="int32"), 0)
    return ops.less(steps, valid)


def _empty_rows_unmasked(mask):
    """A row with no valid step is run as if every step were valid."""
    ops = keras_internals()["ops"]
    empty = ops.logical_not(ops.any(ops.cast(mask, "bool"), axis=1, keepdims=True))
    return ops.logical_or(ops.cast(mask, "bool"), empty)


def _stateful_mask_dropped(mp):
    def edit(self, kwargs):
        if self.stateful:
            kwargs["mask"] = None
        return kwargs

    with_kwargs(mp, keras_internals()["RNN"], "call", edit)


def _compute_output_shape_drops_states(mp):
    def transform(self, shapes):
        return shapes[0] if self.return_state else shapes

    returning(mp, keras_internals()["RNN"], "compute_output_shape", transform)


def _initial_state_ones(mp):
    ops = keras_internals()["ops"]
    returning(mp, keras_internals()["RNN"], "get_initial_state",
              lambda self, states: [ops.ones_like(s) for s in states])


def _freeze_recurrent_kernel(mp):
    def freeze(cell):
        cell.recurrent_kernel.trainable = False

    after_build(mp, keras_internals()["LSTMCell"], freeze)


def _add_unused_bias(mp):
    def add(cell):
        cell.extra_bias = cell.add_weight(shape=(cell.units,), name="extra_bias",
                                          initializer="zeros")

    after_build(mp, keras_internals()["SimpleRNNCell"], add)


def _gru_recurrent_kernel_gradient_blocked(mp):
    k = keras_internals()
    ops = k["ops"]
    with_attribute(mp, k["GRUCell"], "call", "recurrent_kernel",
                   lambda self, old: ops.stop_gradient(old))


def _get_config_without(cls_name: str, key: str) -> Apply:
    def apply(mp):
        def transform(self, config):
            config = dict(config)
            config.pop(key, None)
            return config

        returning(mp, keras_internals()[cls_name], "get_config", transform)

    return apply


def _gru_from_config_ignores_reset_after(mp):
    gru = keras_internals()["GRU"]
    original = gru.from_config.__func__

    def from_config(cls, config):
        config = dict(config)
        config.pop("reset_after", None)
        return original(cls, config)

    replace(mp, gru, "from_config", classmethod(from_config))


def _cudnn_rules_without(*rules: tuple[str, str]) -> Apply:
    """cuDNN dispatch forgets disqualifying arguments: ``(kernel, argument)`` each, with
    ``argument`` one of ``unroll`` and ``reset_after``."""

    def apply(mp):
        module = keras_internals()["tensorflow_rnn"]
        for kind, argument in rules:
            neutral = {"unroll": False, "reset_after": True}[argument]

            def make(original, argument=argument, neutral=neutral):
                def patched(*args, **kwargs):
                    kwargs[argument] = neutral
                    return original(*args, **kwargs)

                return patched

            wrap(mp, module, f"_do_{kind}_arguments_support_cudnn", make)

    return apply


def _use_cudnn_true_falls_back(mp):
    with_attribute(mp, keras_internals()["LSTM"], "inner_loop", "use_cudnn",
                   lambda self, old: "auto" if old is True else old)


def _cells_see_states(transform_name: str) -> Apply:
    """Every built-in cell receives its incoming states through ``keras.ops.<name>``."""

    def apply(mp):
        import keras

        transform = getattr(keras.ops, transform_name)
        for cls in cells():
            with_states(mp, cls, transform)

    return apply


def _crash_in_simple_rnn_cell(mp):
    def make(original):
        def patched(self, *args, **kwargs):
            # worded like the assertion the target would make: only the exception type
            # and phase tell this crash from a catch
            raise TypeError("SimpleRNN differs from the NumPy reference (an injected crash)")

        return patched

    wrap(mp, keras_internals()["SimpleRNNCell"], "call", make)


# --- the catalogue ---------------------------------------------------------------------------

#: The recurrent layers' own entries (the suites of shapes, reference math, dropout, time and
#: state, cuDNN dispatch, trainability and serialization).
LAYER_REGRESSIONS: tuple[Regression, ...] = (
    # --- changed defaults
    Regression(
        "gru_reset_after_default_false",
        "GRU's reset_after defaults to False again (the Keras 2.2 default)",
        _defaults(("GRU", "reset_after", False)),
        fails=(
            REFERENCE + "test_gru_signature_keeps_the_documented_parameters_order_and_defaults",
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
            REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros",
            PARAMS + "test_imdb_gru8_has_624_params_because_reset_after_adds_a_second_bias_row",
        ),
        message=r"reset_after'?(=|: )False",
        messages={
            REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros":
                r"bias should be zeros of shape \(2, 12\); got \(12,\)",
            PARAMS + "test_imdb_gru8_has_624_params_because_reset_after_adds_a_second_bias_row":
                f"has 600 {quoted(params.COUNT_DIFFERS)} 624",
        },
        passes=(PARAMS + "test_imdb_gru8_with_reset_after_false_has_600_params",),
    ),
    Regression(
        "lstm_unit_forget_bias_default_false",
        "LSTM's unit_forget_bias defaults to False: the forget-gate bias starts at 0",
        _defaults(("LSTM", "unit_forget_bias", False)),
        fails=(REFERENCE + "test_lstm_unit_forget_bias_puts_ones_in_the_forget_gate_bias",),
        message=r"unit_forget_bias no longer defaults to True",
        passes=(REFERENCE + "test_lstm_without_unit_forget_bias_starts_at_zero_bias",),
    ),
    Regression(
        "lstm_recurrent_initializer_default_glorot",
        "LSTM's recurrent_initializer defaults to glorot_uniform instead of orthogonal",
        _defaults(("LSTM", "recurrent_initializer", "glorot_uniform")),
        fails=(
            REFERENCE + "test_default_weights_are_glorot_kernel_orthogonal_recurrent_kernel[lstm]",
        ),
        message=r"lstm recurrent kernel rows are not orthonormal",
        passes=(
            REFERENCE + "test_default_weights_are_glorot_kernel_orthogonal_recurrent_kernel[gru]",
        ),
    ),
    Regression(
        # one entry for LSTM and GRU: the same default, reverted the same way
        "recurrent_activation_default_hard_sigmoid",
        "LSTM's and GRU's recurrent_activation default to hard_sigmoid (the Keras 2 default)",
        _defaults(("LSTM", "recurrent_activation", "hard_sigmoid"),
                  ("GRU", "recurrent_activation", "hard_sigmoid")),
        fails=(
            REFERENCE + "test_lstm_and_simple_rnn_default_activations",
            REFERENCE + "test_gru_signature_keeps_the_documented_parameters_order_and_defaults",
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
        ),
        message=r"recurrent_activation'?(=|: )'hard_sigmoid'",
        messages={
            REFERENCE + "test_lstm_and_simple_rnn_default_activations":
                r"default activations changed: LSTM \(tanh, hard_sigmoid\)",
        },
        passes=(REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros",),
    ),
    Regression(
        "simple_rnn_activation_default_relu",
        "SimpleRNN's activation defaults to relu instead of tanh",
        _defaults(("SimpleRNN", "activation", "relu")),
        fails=(REFERENCE + "test_lstm_and_simple_rnn_default_activations",),
        message=r"default activations changed: .*SimpleRNN relu",
        passes=(
            REFERENCE
            + "test_gru_default_config_is_tanh_sigmoid_glorot_orthogonal_zeros_reset_after",
        ),
    ),
    Regression(
        "gru_bias_initializer_default_ones",
        "GRU's bias_initializer defaults to ones",
        _defaults(("GRU", "bias_initializer", "ones")),
        fails=(REFERENCE + "test_gru_default_bias_is_two_rows_of_zeros",),
        message=r"bias should be zeros of shape \(2, 12\); got \(2, 12\): \[\[1\.",
        passes=(REFERENCE + "test_lstm_without_unit_forget_bias_starts_at_zero_bias",),
    ),
    Regression(
        "zero_output_for_mask_default_true",
        "RNN layers zero masked outputs by default instead of repeating the previous output",
        _defaults(("RNN", "zero_output_for_mask", True)),
        fails=(TIME + "test_masked_steps_repeat_the_previous_output_by_default[lstm]",),
        message=r"zero_output_for_mask default changed",
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
        message=r"initial state 0 is not zeros",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]":
                DIFFERS_FROM_REFERENCE,
        },
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
        message=r"second return value should be h",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-sequences_and_states]":
                DIFFERS_FROM_REFERENCE + r"[\s\S]*\n\s*h: \d+ of \d+ "
                + quoted(compare.VALUES_DIFFER),
        },
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
        message=r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        messages={
            TIME + "test_implementation_1_equals_implementation_2[lstm]":
                r"lstm implementation 1 vs 2",
        },
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
        message=r"GRU .*" + DIFFERS_FROM_REFERENCE,
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
        bypassed={"jax": JAX_FUSED_GRU},
    ),
    Regression(
        "gru_recurrent_bias_dropped",
        "GRU with reset_after ignores its second (recurrent) bias row",
        _gru_drop_recurrent_bias,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",),
        message=r"GRU .*" + DIFFERS_FROM_REFERENCE,
        passes=(
            REFERENCE + "test_layer_matches_the_numpy_reference[gru_reset_before-last_output]",
        ),
        bypassed={"jax": JAX_FUSED_GRU},
    ),
    Regression(
        "simple_rnn_bias_added_twice",
        "SimpleRNN adds its bias twice",
        _simple_rnn_bias_twice,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-last_output]",),
        message=r"SimpleRNN .*" + DIFFERS_FROM_REFERENCE,
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-no_bias]",),
    ),
    Regression(
        "lstm_cell_activation_ignored",
        "LSTM skips its activation (h = o * c)",
        _lstm_activation_ignored,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-sequences_and_states]",),
        message=r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-last_output]",),
    ),
    Regression(
        "lstm_implementation_1_drops_output_gate_bias",
        "LSTM implementation=1 forgets the output gate's bias; implementation 2 is right",
        _lstm_impl1_drops_output_bias,
        fails=(TIME + "test_implementation_1_equals_implementation_2[lstm]",),
        message=r"lstm implementation 1 vs 2",
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
        message=quoted(behaviours.LEAKS_INTO_INFERENCE),
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
        message=quoted(behaviours.NOT_APPLIED_IN_TRAINING),
        messages={
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]":
                r"does not match the dropout rate[\s\S]*dropped 0 of",
        },
        passes=(DROPOUT + "test_inference_ignores_dropout_and_is_deterministic[simple_rnn]",),
        bypassed={"jax": (
            "JAX runs the GRU target through its fused GRU scan: GRU.inner_loop applies the "
            "input dropout before it, not GRUCell.call where the patch removes it")},
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
        message=quoted(behaviours.NOT_APPLIED_IN_TRAINING),
        messages={
            DROPOUT
            + "test_dropped_fraction_matches_the_rate_within_5_sigma[lstm-recurrent_dropout]":
                r"does not match the recurrent_dropout rate[\s\S]*dropped 0 of",
        },
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
        message=behaviours.FRACTION_DIFFERS.format(which="(recurrent_)?dropout"),
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
        message=quoted(behaviours.NOT_RESCALED),
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
        message=quoted(behaviours.MASK_REDRAWN),
        passes=(
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]",
        ),
        bypassed={"jax": (
            "JAX's lax.scan traces the cell's step once, so a mask redrawn inside the step is "
            "still drawn once per call: the regression cannot be expressed there")},
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
        message=quoted(behaviours.SEED_DOES_NOT_FIX),
        passes=(
            DROPOUT + "test_dropped_fraction_matches_the_rate_within_5_sigma[simple_rnn-dropout]",
        ),
    ),
    Regression(
        "bidirectional_drops_the_training_flag",
        "Bidirectional calls its layers with training=False, so no dropout in training",
        _bidirectional_no_training,
        fails=(DROPOUT + "test_bidirectional_training_applies_dropout_in_both_directions[lstm]",),
        message=r"dropout is not applied to this direction in training",
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
        message=r"masked outputs",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-mask]":
                r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        },
        passes=(REFERENCE + "test_layer_matches_the_numpy_reference[lstm-last_output]",),
    ),
    Regression(
        "embedding_mask_not_propagated",
        "Embedding(mask_zero=True) no longer produces a mask",
        _embedding_mask_lost,
        fails=(TIME + "test_mask_zero_padding_equals_the_unpadded_sequence[lstm-post]",),
        message=r"post-padded with mask_zero",
        passes=(TIME + "test_masked_steps_repeat_the_previous_output_by_default[lstm]",),
    ),
    Regression(
        "mask_read_as_right_padding",
        "masks are turned into lengths: each row's valid steps are taken as its first ones, "
        "so left-padded rows and rows with holes run the wrong steps",
        _backend_rnn_mask(_as_right_padding),
        fails=(
            MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[lstm-left_padded-"
            "forward]",
            MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[simple_rnn-holes-"
            "go_backwards]",
            MASKING + "test_convlstm_matches_the_reference_at_each_mask_edge[holes]",
        ),
        message=r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        messages={
            MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[simple_rnn-holes-"
            "go_backwards]": r"SimpleRNN .*" + DIFFERS_FROM_REFERENCE,
            MASKING + "test_convlstm_matches_the_reference_at_each_mask_edge[holes]":
                r"ConvLSTM1D .*" + DIFFERS_FROM_REFERENCE,
        },
        passes=(MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[lstm-"
                "right_padded-forward]",),
    ),
    Regression(
        "fully_masked_row_runs_unmasked",
        "a row whose every step is masked is run as if none were",
        _backend_rnn_mask(_empty_rows_unmasked),
        fails=(
            MASKING + "test_a_fully_masked_row_ends_in_its_initial_state[lstm-repeat_output]",
            MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[simple_rnn-"
            "fully_masked_row-forward]",
            MASKING + "test_stacked_cells_match_the_reference_at_each_mask_edge"
            "[fully_masked_row]",
        ),
        message=r"a fully masked row outputs",
        messages={
            MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[simple_rnn-"
            "fully_masked_row-forward]": r"SimpleRNN .*" + DIFFERS_FROM_REFERENCE,
            MASKING + "test_stacked_cells_match_the_reference_at_each_mask_edge"
            "[fully_masked_row]": r"RNN .*" + DIFFERS_FROM_REFERENCE,
        },
        passes=(MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[simple_rnn-"
                "holes-forward]",),
    ),
    Regression(
        "stateful_layer_drops_the_mask",
        "a stateful layer ignores the mask it is called with",
        _stateful_mask_dropped,
        fails=(MASKING + "test_a_stateful_layer_carries_masked_state_across_calls[lstm]",),
        message=r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        passes=(MASKING + "test_each_kind_matches_the_reference_at_each_mask_edge[lstm-holes-"
                "forward]",),
    ),
    Regression(
        "zero_output_for_mask_ignored",
        "zero_output_for_mask=True no longer zeroes masked steps",
        _rnn_attribute_off("zero_output_for_mask"),
        fails=(
            TIME + "test_zero_output_for_mask_zeroes_masked_steps_and_keeps_the_rest[gru]",
            TIME + "test_bidirectional_zeroes_masked_steps_of_both_directions[lstm]",
        ),
        message=r"non-zero outputs at masked steps",
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
        message=r"initial_state changes the output",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-initial_state]":
                r"GRU .*" + DIFFERS_FROM_REFERENCE,
        },
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
        message=r"carried state",
        messages={
            REFERENCE
            + "test_stateful_layer_continues_from_its_state_as_the_reference_does[lstm]":
                r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        },
        passes=(TIME + "test_stateful_layer_rejects_a_different_batch_size",),
    ),
    Regression(
        "reset_state_does_nothing",
        "reset_state() leaves a stateful layer's state as it was",
        _reset_state_no_op,
        fails=(
            TIME + "test_stateful_halves_equal_the_whole_sequence_and_reset_state_restores[lstm]",
        ),
        message=r"not zero after reset_state",
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
        message=r"reading backwards changes",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-go_backwards]":
                r"GRU .*" + DIFFERS_FROM_REFERENCE,
        },
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
        message=r"go_backwards sequence \(processing order\)",
        messages={
            REFERENCE + "test_layer_matches_the_numpy_reference[lstm-go_backwards]":
                r"LSTM .*" + DIFFERS_FROM_REFERENCE,
        },
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
        message=r"vs forward layer \+ reversed backward layer",
        messages={
            SHAPES + "test_bidirectional_states_are_forward_then_backward[lstm]":
                r"forward half at the last step",
        },
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
        message=r"forward half at the last step",
        messages={
            REFERENCE + "test_bidirectional_matches_the_reference[lstm-sum]":
                DIFFERS_FROM_REFERENCE + r"[\s\S]*\n\s*forward h: \d+ of \d+ "
                + quoted(compare.VALUES_DIFFER),
        },
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
        message=r"merge_mode='ave'",
        passes=(REFERENCE + "test_bidirectional_matches_the_reference[lstm-sum]",),
    ),
    Regression(
        "bidirectional_backward_layer_reads_forward",
        "Bidirectional's backward layer loses go_backwards and reads forwards",
        _bidirectional_backward_reads_forward,
        fails=(
            TIME + "test_bidirectional_equals_its_forward_layer_and_reversed_backward_layer[gru]",
        ),
        message=r"vs forward layer \+ reversed backward layer",
        passes=(TIME + "test_go_backwards_equals_the_layer_on_reversed_input[gru]",),
    ),
    Regression(
        "unroll_ignores_mask",
        "unroll=True drops the mask; the symbolic loop keeps it",
        _unroll_ignores_mask,
        fails=(TIME + "test_unroll_equals_the_symbolic_loop[lstm-masked]",),
        message=r"unroll=True vs loop",
        passes=(TIME + "test_unroll_equals_the_symbolic_loop[lstm-unmasked]",),
    ),
    Regression(
        "compute_output_shape_drops_states",
        "compute_output_shape leaves out the state shapes with return_state",
        _compute_output_shape_drops_states,
        fails=(SHAPES + "test_compute_output_shape_agrees_with_real_outputs[gru-seq1-state1]",),
        message=(f"compute_output_shape {quoted(shapes.RETURNED_A_SINGLE_TENSOR)} .* where a "
                 "list of 2 was expected"),
        passes=(SHAPES + "test_compute_output_shape_agrees_with_real_outputs[gru-seq1-state0]",),
    ),
    # --- cuDNN dispatch
    Regression(
        # one entry for both rules: the dispatcher forgetting an argument that disqualifies
        # cuDNN, seen by the same mirror test whichever argument it is
        "cudnn_dispatch_forgets_disqualifying_arguments",
        "GRU with reset_after=False and LSTM with unroll=True are sent to the cuDNN kernel",
        _cudnn_rules_without(("gru", "reset_after"), ("lstm", "unroll")),
        fails=(
            CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[gru-reset_before]",
            CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[lstm-unroll]",
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host"
            + "[gru-reset_before]",
        ),
        message=r"predicts 'generic' on a GPU host but Keras reached the cuDNN kernel",
        messages={
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host"
            + "[gru-reset_before]": r"reached cuDNN although it disqualifies it",
        },
        passes=(
            CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[gru-relu]",
            CUDNN + "test_eligibility_mirror_agrees_with_keras_routing[lstm-no_bias]",
        ),
        bypassed={"jax": TF_ROUTING},
    ),
    Regression(
        "use_cudnn_true_falls_back_silently",
        "LSTM(use_cudnn=True) quietly uses the generic kernel instead of raising",
        _use_cudnn_true_falls_back,
        fails=(
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host[lstm-relu]",
        ),
        message=r"DID NOT RAISE.*ValueError",
        passes=(
            CUDNN
            + "test_use_cudnn_true_raises_for_an_ineligible_config_even_on_a_gpu_host[gru-relu]",
        ),
        bypassed={"jax": TF_ROUTING},
    ),
    # --- weights and training
    Regression(
        "lstm_recurrent_kernel_frozen",
        "LSTM creates its recurrent kernel with trainable=False",
        _freeze_recurrent_kernel,
        fails=(
            TRAIN + "test_every_weight_is_trainable[lstm]",
            TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[lstm]",
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train[lstm-u3-d4-bias]",
        ),
        message=r"not trainable: \[[^\]]*recurrent_kernel",
        messages={
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train[lstm-u3-d4-bias]":
                f"has 60 trainable {quoted(params.COUNT_DIFFERS)} 96",
        },
        passes=(TRAIN + "test_every_weight_is_trainable[gru]",),
    ),
    Regression(
        "gru_recurrent_kernel_gradient_blocked",
        "GRU's recurrent kernel is trainable but receives no gradient",
        _gru_recurrent_kernel_gradient_blocked,
        fails=(TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[gru]",),
        message=r"no gradient \(not connected to the loss\): \[[^\]]*recurrent_kernel",
        passes=(
            TRAIN + "test_every_weight_is_trainable[gru]",
            REFERENCE + "test_layer_matches_the_numpy_reference[gru-last_output]",
        ),
        bypassed={"jax": JAX_FUSED_GRU},
    ),
    Regression(
        "simple_rnn_extra_unused_bias",
        "SimpleRNN creates an extra bias weight that the computation never uses",
        _add_unused_bias,
        fails=(
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train"
            + "[simple_rnn-u3-d4-bias]",
            TRAIN + "test_one_training_step_moves_every_weight_and_lowers_the_loss[simple_rnn]",
        ),
        # JAX differentiates a pure function: the unused weight gets zeros, not None
        message=r"(no gradient \(not connected to the loss\)|all-zero gradient): "
                r"\[[^\]]*extra_bias",
        messages={
            PARAMS
            + "test_layer_count_matches_the_closed_form_and_all_weights_train"
            + "[simple_rnn-u3-d4-bias]": f"has 27 {quoted(params.COUNT_DIFFERS)} 24",
        },
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
        message=r"changed settings \(original, restored\): \{'go_backwards': \(True, False\)\}",
        passes=(SERIAL + "test_get_config_from_config_round_trip_keeps_settings_and_outputs[gru]",),
    ),
    Regression(
        "gru_from_config_ignores_reset_after",
        "GRU.from_config drops reset_after, so a reset_after=False GRU loads as True",
        _gru_from_config_ignores_reset_after,
        fails=(
            SERIAL
            + "test_get_config_from_config_round_trip_keeps_settings_and_outputs[gru_reset_before]",
        ),
        message=r"changed settings \(original, restored\): \{.*'cell\.reset_after': "
        r"\(False, True\)",
        passes=(SERIAL + "test_keras_file_save_and_load_reproduces_settings_and_outputs[gru]",),
    ),
    Regression(
        "lstm_get_config_drops_seed",
        "LSTM.get_config no longer writes the dropout seed",
        _get_config_without("LSTM", "seed"),
        fails=(SERIAL + "test_get_config_keeps_the_dropout_seed[lstm]",),
        message=r"dropout seed None, expected 1234",
        passes=(SERIAL + "test_get_config_keeps_the_dropout_seed[gru]",),
    ),
)

#: Every regression the fast proof injects: the layers' own, the training path's
#: (:mod:`regressions.training_path`) and the ConvLSTM, stacked-cell and Keras 2 suites'
#: (:mod:`regressions.surface`), run in one subprocess.
REGRESSIONS: tuple[Regression, ...] = (
    *LAYER_REGRESSIONS, *training_path.REGRESSIONS, *surface.REGRESSIONS
)

#: What a threshold failure of the toy-task suite says (its own assertions and
#: ``rnn_baseline``'s band check).
TOY_THRESHOLD_FAILURE = (
    rf"(below|above) {quoted(baseline_messages.CALIBRATED_BAND)}|does not beat chance"
    r"|better than chance|never fell below the chance loss|not even half way"
    r"|no longer clearly worse"
)

#: Regressions that only training notices, proven by the slow accuracy-sensitivity check.
TRAINING_REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "gradients_cut_through_time",
        "cells stop the gradient at their incoming state: the forward pass is unchanged but "
        "training sees one step back",
        _cells_see_states("stop_gradient"),
        fails=(
            *(TOY + f"test_task_reaches_baseline[{name}]" for name in (
                "adding_lstm", "adding_gru", "adding_simple_rnn", "sine_gru",
                "marked_product_gru")),
            TOY + "test_copy_memory_is_learned_beyond_chance",
        ),
        message=TOY_THRESHOLD_FAILURE,
    ),
    Regression(
        "cells_carry_no_state",
        "cells receive a zero state at every step: the layer keeps no memory",
        _cells_see_states("zeros_like"),
        fails=(TOY + "test_parity_is_solved_within_its_attempts",
               # one-step gradients still get GRU within 20x of chance on 20-step adding
               # (measured: a cut-gradient run failed its calibrated band, not this floor);
               # a cell without state cannot
               TOY + "test_simple_rnn_falls_behind_gated_cells_on_adding"),
        message=TOY_THRESHOLD_FAILURE,
    ),
)

def _damped_state_gradients(mp):
    """Every cell receives ``0.5 * s + 0.5 * stop_gradient(s)`` for each incoming state
    ``s``: the same value, but half the gradient flows back through each step."""
    import keras

    def damp(state):
        return 0.5 * state + 0.5 * keras.ops.stop_gradient(state)

    for cls in cells():
        with_states(mp, cls, damp)


def _adam_learning_rate_scaled(factor: float):
    """A patch: ``keras.optimizers.Adam`` silently uses ``factor`` times the learning
    rate it is given."""

    def apply(mp):
        import keras

        def make(original):
            def patched(self, learning_rate=0.001, *args, **kwargs):
                original(self, learning_rate * factor, *args, **kwargs)

            return patched

        wrap(mp, keras.optimizers.Adam, "__init__", make)

    return apply


def _epochs_see_half_the_batches(mp):
    """``keras.Model.fit`` on arrays runs half its batches per epoch (``steps_per_epoch``
    silently halved): every epoch makes half the updates, so a run needs twice the epochs
    to learn what it learned before."""
    import math

    import keras

    def make(original):
        def patched(self, x=None, y=None, batch_size=None, epochs=1, *args, **kwargs):
            if kwargs.get("steps_per_epoch") is None and hasattr(x, "shape"):
                kwargs["steps_per_epoch"] = max(1, math.ceil(len(x) / (batch_size or 32)) // 2)
            return original(self, x, y, batch_size, epochs, *args, **kwargs)

        return patched

    wrap(mp, keras.Model, "fit", make)


#: Toy checks whose learning-time band the slowed-training regression is proven on (the
#: other calibrated toy checks use the same rule; their power is derived, README's table).
SLOWED_TARGETS = (TOY + "test_task_reaches_baseline[adding_gru]",
                  TOY + "test_task_reaches_baseline[sine_gru]")
#: Training that learns twice as slowly (the doubling the toy checks' learning time is sized
#: for), proven by the slow tests/test_accuracy_sensitivity.py.
SLOWED_TRAINING_REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "epochs_see_half_the_batches",
        "Model.fit on arrays runs half the batches of each epoch: learning takes twice the "
        "epochs",
        _epochs_see_half_the_batches,
        fails=SLOWED_TARGETS,
        message=rf"above {quoted(baseline_messages.CALIBRATED_BAND)}",
    ),
)


#: What the power-checked IMDB test says when a sample leaves its calibrated band.
CALIBRATED_BAND_FAILURE = rf"(below|above) {quoted(baseline_messages.CALIBRATED_BAND)}"
POWER_TARGETS = (IMDB + "test_imdb_accuracy_and_convergence_match_calibration[lstm]",
                 IMDB + "test_imdb_accuracy_and_convergence_match_calibration[gru]")
#: Damped state gradients are proven on SimpleRNN's rank test, the forget-bias patch on
#: LSTM's t-test: both ways of comparing a sample have a slow proof. GRU's t-test is the
#: same code as LSTM's; its damped runs (2 of 2 groups caught, README "Baselines") are
#: measured by tests/regressions/measure_power.py, not retrained by every slow run: their
#: cost is the slow suite's margin under its 15 minutes (README, "Running the slow suite").
DAMPED_TARGETS = (IMDB + "test_imdb_accuracy_and_convergence_match_calibration[simple_rnn]",)

#: Mild training regressions: the model still learns, a little worse or slower. The
#: calibrated IMDB checks (k seeded runs against 20 calibration seeds) must notice them;
#: tests/test_accuracy_sensitivity.py runs them and README states the measured rates.
MILD_TRAINING_REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "gradients_damped_through_time",
        "cells pass back half the gradient through their incoming states (forward unchanged)",
        _damped_state_gradients,
        fails=DAMPED_TARGETS,
        message=CALIBRATED_BAND_FAILURE,
    ),
    Regression(
        "learning_rate_halved",
        "Adam silently halves the learning rate it is given",
        _adam_learning_rate_scaled(0.5),
        fails=POWER_TARGETS,
        message=CALIBRATED_BAND_FAILURE,
        gap=("caught with 26% power by LSTM (k = 4) and 23% by GRU (k = 5), judged on 8 runs "
             "each (tests/test_known_gaps.py): it slows LSTM's epochs to 90% by ~1.35x, not "
             "the doubling the check is sized for, and costs GRU ~0.008 of accuracy, under "
             "the 0.016 it is sized for"),
    ),
    Regression(
        "learning_rate_quartered",
        "Adam silently uses a quarter of the learning rate it is given",
        _adam_learning_rate_scaled(0.25),
        fails=(IMDB + "test_imdb_accuracy_and_convergence_match_calibration[stacked_lstm]",),
        message=CALIBRATED_BAND_FAILURE,
        gap=("caught with 87% power by the stacked LSTM (k = 4), judged on 8 runs "
             "(tests/test_known_gaps.py): a quarter of the learning rate slows its mean epoch "
             "of the gain by ~1.6x, short of the doubling its check is sized for (x1.92 at "
             "90% power), and leaves its accuracy within the band"),
    ),
    # LSTM only: GRU has no unit_forget_bias, and retraining its 5 runs as a control cost
    # the slow suite ~75 s (the fast test_the_mild_training_patches_change_what_they_say
    # shows what the patch touches).
    Regression(
        "lstm_forget_bias_zero",
        "LSTM's unit_forget_bias defaults to False: the forget gate's bias starts at 0, not 1",
        _defaults(("LSTM", "unit_forget_bias", False)),
        fails=(POWER_TARGETS[0],),
        message=CALIBRATED_BAND_FAILURE,
    ),
)

#: Not regressions: entries the judge must reject, run beside the catalogue so the proof
#: shows on a real run that a crash in the named test is not counted as a catch.
PROBES: tuple[Regression, ...] = (
    Regression(
        "probe_crash_is_not_a_catch",
        "SimpleRNNCell.call raises TypeError (a crash, worded like the expected assertion)",
        _crash_in_simple_rnn_cell,
        fails=(REFERENCE + "test_layer_matches_the_numpy_reference[simple_rnn-last_output]",),
        message=r"SimpleRNN .*" + DIFFERS_FROM_REFERENCE,
    ),
)

BY_ID: dict[str, Regression] = {r.id: r for r in (
    *REGRESSIONS, *TRAINING_REGRESSIONS, *SLOWED_TRAINING_REGRESSIONS,
    *MILD_TRAINING_REGRESSIONS, *PROBES)}
assert len(BY_ID) == (len(REGRESSIONS) + len(TRAINING_REGRESSIONS)
                      + len(SLOWED_TRAINING_REGRESSIONS) + len(MILD_TRAINING_REGRESSIONS)
                      + len(PROBES)), (
    "duplicate regression ids"
)
