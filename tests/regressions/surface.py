"""Injected regressions for the ConvLSTM, stacked-cell and Keras 2 model suites.

Twelve entries of the catalogue (:data:`regressions.catalogue.REGRESSIONS` includes them):
a ConvLSTM that ignores ``dropout``, ``recurrent_dropout`` or the mask, shares one input
mask among its gates, dilates its state convolution, forgets its strides in
``compute_output_shape``, accepts strides with dilation or grows an extra weight; a
stacked cell's dropout mask sized from the stack's input, training reaching only the
first cell; Keras 2's ``Orthogonal`` initializer name no longer resolving, a GRU rebuilt
from a Keras 2 config losing ``go_backwards``.
"""

from __future__ import annotations

import functools

from pytest_rnn.checks import behaviours, params, shapes
from regressions.entry import Regression
from regressions.patches import after_build, keras_internals, replace, with_attribute, wrap
from regressions.wording import quoted

CONV = "suites/test_convlstm.py::"
CONTRACT = "suites/test_contract_keras_layers.py::TestConvLSTM2D::"
STACKED = "suites/test_stacked_cells.py::"
LEGACY = "suites/test_legacy_models.py::"


# --- ConvLSTM ---------------------------------------------------------------------------------


def _conv_ignores(which: str):
    """ConvLSTM cells run with ``dropout`` or ``recurrent_dropout`` set to 0."""

    def apply(mp):
        with_attribute(mp, keras_internals()["ConvLSTMCell"], "call", which,
                       lambda self, old: 0.0)

    return apply


def _conv_one_mask_for_all_gates(mp):
    def make(original):
        def patched(self, step_input):
            masks = original(self, step_input)
            return None if masks is None else [masks[0]] * len(masks)

        return patched

    wrap(mp, keras_internals()["ConvLSTMCell"], "get_dropout_mask", make)


def _conv_recurrent_conv_dilated(mp):
    ops = keras_internals()["ops"]

    def make(original):
        def patched(self, x, w):
            return ops.conv(x, w, strides=1, padding="same", data_format=self.data_format,
                            dilation_rate=self.dilation_rate)

        return patched

    wrap(mp, keras_internals()["ConvLSTMCell"], "recurrent_conv", make)


def _conv_ignores_mask(mp):
    def make(original):
        def patched(self, sequences, initial_state=None, mask=None, training=False):
            return original(self, sequences, initial_state=initial_state, training=training)

        return patched

    wrap(mp, keras_internals()["ConvLSTM"], "call", make)


def _conv_output_shape_ignores_strides(mp):
    def make(original):
        def patched(self, sequences_shape, initial_state_shape=None):
            saved = self.cell.strides
            self.cell.strides = (1,) * len(saved)
            try:
                return original(self, sequences_shape, initial_state_shape)
            finally:
                self.cell.strides = saved

        return patched

    wrap(mp, keras_internals()["ConvLSTM"], "compute_output_shape", make)


def _conv_accepts_strides_with_dilation(mp):
    def make(original):
        def patched(self, *args, dilation_rate=1, **kwargs):
            original(self, *args, dilation_rate=1, **kwargs)
            rank = self.rank
            self.dilation_rate = (
                tuple(dilation_rate) if isinstance(dilation_rate, (tuple, list))
                else (dilation_rate,) * rank
            )

        return patched

    cls = keras_internals()["ConvLSTMCell"]
    # replace, not wrap: Keras binds constructor arguments through __init__'s signature,
    # and the replacement's own (dilation_rate a keyword) must be the one it sees
    replace(mp, cls, "__init__", make(cls.__init__))


def _conv_extra_weight(mp):
    def add_peephole(cell):
        cell.peephole = cell.add_weight(shape=(cell.filters,), name="peephole",
                                        initializer="zeros")

    after_build(mp, keras_internals()["ConvLSTMCell"], add_peephole)


# --- stacked cells ----------------------------------------------------------------------------


def _stack_masks_sized_from_the_stack_input(mp):
    k = keras_internals()

    def make(original):
        def patched(self, cell, input_sequence, input_state):
            if isinstance(cell, k["StackedRNNCells"]):
                for inner, state in zip(cell.cells, input_state, strict=False):
                    original(self, inner, input_sequence, state)  # never advanced
                return None
            return original(self, cell, input_sequence, input_state)

        return patched

    wrap(mp, k["RNN"], "_maybe_config_dropout_masks", make)


def _stack_training_reaches_the_first_cell_only(mp):
    def make(original):
        def patched(self, inputs, states, training=False, **kwargs):
            cells = self.cells
            for cell in cells[1:]:
                inner = type(cell).call

                def untrained(*a, _inner=inner, _cell=cell, **kw):
                    kw["training"] = False
                    return _inner(_cell, *a, **kw)

                object.__setattr__(cell, "call", functools.wraps(inner)(untrained))
            try:
                return original(self, inputs, states, training=training, **kwargs)
            finally:
                for cell in cells[1:]:
                    object.__delattr__(cell, "call")

        return patched

    wrap(mp, keras_internals()["StackedRNNCells"], "call", make)


# --- Keras 2 models ---------------------------------------------------------------------------


def _legacy_orthogonal_renamed(mp):
    """A release renames the ``Orthogonal`` initializer class and drops the old name, keeping
    the ``"orthogonal"`` string Keras 3 code uses: Keras 2 configs name the class."""
    import keras

    k = keras_internals()
    mp.delitem(k["api_export"].REGISTERED_NAMES_TO_OBJS, "keras.initializers.Orthogonal")
    mp.delitem(k["initializers"].ALL_OBJECTS_DICT, "Orthogonal")
    mp.delattr(keras.initializers, "Orthogonal")


def _legacy_gru_drops_go_backwards(mp):
    """Deserializing a GRU config loses ``go_backwards`` (a key dropped while converting)."""
    gru = keras_internals()["GRU"]
    original = gru.from_config.__func__

    def from_config(cls, config, *args, **kwargs):
        config = {k: v for k, v in config.items() if k != "go_backwards"}
        return original(cls, config, *args, **kwargs)

    replace(mp, gru, "from_config", classmethod(from_config))


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        "conv_lstm_ignores_recurrent_dropout",
        "ConvLSTM cells ignore recurrent_dropout in training",
        _conv_ignores("recurrent_dropout"),
        fails=(
            CONV + "test_every_gate_drops_units_at_the_rate[recurrent_dropout]",
            CONV + "test_training_output_differs_from_inference[recurrent_dropout]",
            CONV + "test_training_output_applies_the_drawn_masks",
        ),
        passes=(CONV + "test_every_gate_drops_units_at_the_rate[dropout]",),
        message=r"does not match the recurrent_dropout rate|dropout is not applied in training|"
        r"against the reference fed the masks its cells drew",
    ),
    Regression(
        "conv_lstm_ignores_dropout",
        "ConvLSTM cells ignore dropout (on the input) in training",
        _conv_ignores("dropout"),
        fails=(
            CONV + "test_every_gate_drops_units_at_the_rate[dropout]",
            CONV + "test_training_output_differs_from_inference[dropout]",
            CONTRACT + "test_dropout_train_vs_inference",
        ),
        passes=(CONV + "test_every_gate_drops_units_at_the_rate[recurrent_dropout]",),
        message=r"does not match the dropout rate|dropout is not applied in training",
    ),
    Regression(
        "conv_lstm_one_input_mask_for_all_gates",
        "ConvLSTM cells multiply all four gates' inputs by the first gate's dropout mask",
        _conv_one_mask_for_all_gates,
        fails=(CONV + "test_each_gate_draws_its_own_mask_sized_to_the_input_and_state",),
        passes=(CONV + "test_training_output_applies_the_drawn_masks",),
        message=r"gates 0 and 1 share one mask",
    ),
    Regression(
        "conv_lstm_recurrent_conv_dilated",
        "ConvLSTM convolves the state with the input's dilation rate",
        _conv_recurrent_conv_dilated,
        fails=(CONV + "test_layer_matches_the_numpy_reference[2d_dilation_activations]",),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        message=quoted(behaviours.DIFFERS_FROM_REFERENCE),
    ),
    Regression(
        "conv_lstm_ignores_mask",
        "ConvLSTM layers drop the mask they are called with",
        _conv_ignores_mask,
        fails=(
            CONV + "test_layer_matches_the_numpy_reference[2d_go_backwards_mask]",
            CONV + "test_layer_matches_the_numpy_reference[1d_mask]",
            CONTRACT + "test_masking_equivalence",
        ),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        message=quoted(behaviours.DIFFERS_FROM_REFERENCE) + "|" + quoted(behaviours.MASK_LEAKS),
    ),
    Regression(
        "conv_lstm_output_shape_ignores_strides",
        "ConvLSTM.compute_output_shape forgets the strides",
        _conv_output_shape_ignores_strides,
        fails=(
            CONV + "test_compute_output_shape_agrees_with_the_closed_form[2d_strides_valid]",
            CONV + "test_compute_output_shape_agrees_with_the_closed_form[3d_strides_same]",
        ),
        passes=(CONV + "test_compute_output_shape_agrees_with_the_closed_form[2d_valid]",),
        message="compute_output_shape.*" + quoted(shapes.SHAPE_DIFFERS),
    ),
    Regression(
        "conv_lstm_accepts_strides_with_dilation",
        "ConvLSTM no longer refuses strides > 1 with dilation_rate > 1 at construction",
        _conv_accepts_strides_with_dilation,
        fails=(
            CONV + "test_documented_invalid_arguments_raise_at_construction[strides_with_dilation]",
        ),
        passes=(CONV + "test_documented_invalid_arguments_raise_at_construction[causal_padding]",),
        message=r"is accepted at construction; Keras documents it as invalid",
    ),
    Regression(
        "conv_lstm_extra_weight",
        "ConvLSTM cells create an extra (peephole) weight of filters values",
        _conv_extra_weight,
        fails=(
            CONV + "test_param_count_matches_the_closed_form",
            CONTRACT + "test_param_count",
        ),
        passes=(CONV + "test_layer_matches_the_numpy_reference[2d_valid]",),
        message=quoted(params.COUNT_DIFFERS),
    ),
    Regression(
        "stacked_masks_sized_from_the_stack_input",
        "RNN over a list of cells sizes every cell's dropout mask from the stack's input",
        _stack_masks_sized_from_the_stack_input,
        fails=(
            STACKED + "test_every_cell_draws_masks_sized_to_its_own_input_and_state",
            STACKED + "test_training_output_applies_the_masks_each_cell_drew",
        ),
        passes=(
            STACKED + "test_return_state_shapes_agree_eager_symbolic_and_compute_output_shape",
        ),
        message=r"a training call with dropout in its cells .* raises",
    ),
    Regression(
        "stacked_training_reaches_the_first_cell_only",
        "StackedRNNCells passes training=True to its first cell only",
        _stack_training_reaches_the_first_cell_only,
        fails=(STACKED + "test_training_output_applies_the_masks_each_cell_drew",),
        passes=(
            STACKED + "test_every_cell_draws_masks_sized_to_its_own_input_and_state",
            STACKED + "test_inference_ignores_dropout_in_every_cell",
        ),
        message=quoted(behaviours.AGAINST_DRAWN_MASKS),
    ),
    Regression(
        "legacy_orthogonal_initializer_renamed",
        "the Orthogonal initializer class name Keras 2 configs use no longer resolves",
        _legacy_orthogonal_renamed,
        fails=(
            LEGACY + "test_keras2_h5_file_reproduces_keras2_outputs_once_time_major_is_dropped",
            LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs",
        ),
        passes=(LEGACY + "test_the_fixtures_are_keras_2_files",),
        message=r"Keras 2 model .* no longer loads",
    ),
    Regression(
        "legacy_gru_drops_go_backwards",
        "a GRU rebuilt from a (Keras 2) config loses go_backwards",
        _legacy_gru_drops_go_backwards,
        fails=(
            LEGACY + "test_keras2_h5_file_reproduces_keras2_outputs_once_time_major_is_dropped"
            "[gru_reset_before]",
            LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs[gru_reset_before]",
        ),
        passes=(LEGACY + "test_keras2_json_and_weights_reproduce_keras2_outputs[gru_reset_after]",),
        message=r"differs from what Keras 2 computed",
    ),
)
