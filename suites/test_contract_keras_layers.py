"""Keras's own recurrent layers fulfil pytest-rnn's layer contract.

The contract (:mod:`pytest_rnn.contract`) is what users run against their own
layers, so it must hold for the layers Keras ships: a contract test that fails
here is either a Keras behaviour change or a contract that asks for something
Keras never promised. The cases cover one layer of each structure: two states (LSTM),
one state (GRU with reset_after=False; Keras's SimpleRNN is the custom cell's equations,
and the suites pin it in detail), a custom cell in
``keras.layers.RNN`` (the way users write their own), a stack of cells and a
``Bidirectional`` wrapper, whose backward half reads each chunk of a stateful
run from its end and so cannot match one call on the whole sequence.
"""

from __future__ import annotations

import keras
from keras import ops

from pytest_rnn import RecurrentLayerContract, expected_param_count

UNITS, FEATURES = 3, 3


@keras.saving.register_keras_serializable(package="pytest_rnn_suites")
class MinimalRNNCell(keras.layers.Layer):
    """``h = tanh(x K + h R + b)`` with input dropout: the smallest complete custom cell."""

    def __init__(self, units: int, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), name="recurrent_kernel", initializer="orthogonal"
        )
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        if training and self.dropout > 0:
            # one mask per step here, unlike Keras's variational dropout: the contract
            # only asks that training differs from inference and inference ignores it
            inputs = keras.random.dropout(inputs, self.dropout, seed=self.seed_generator)
        h = ops.tanh(
            ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
            + self.bias
        )
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "seed": self.seed}


#: Keras's LSTM and GRU are traced with masks, go_backwards and states, and compared with
#: eager execution, in suites/test_execution_modes.py (GRU with reset_after=True: False
#: differs only inside the cell, whose eager gradients the reference pins); one trace each
#: is enough.
TRACED_ELSEWHERE = {
    "test_traced_call_matches_eager": "traced and compared with eager execution (masked, "
    "with states) in suites/test_execution_modes.py::test_kinds_agree_with_eager_and_honour_"
    "training[graph]",
}


class TestLSTM(RecurrentLayerContract):
    units = UNITS
    state_sizes = (UNITS, UNITS)
    input_dim = FEATURES
    supports_dropout = True
    param_count = expected_param_count("lstm", UNITS, FEATURES)
    skip_contracts = TRACED_ELSEWHERE

    def make_layer(self, **options):
        return keras.layers.LSTM(UNITS, **options)


class TestGRUResetBefore(RecurrentLayerContract):
    units = UNITS
    input_dim = FEATURES
    supports_dropout = True
    param_count = expected_param_count("gru", UNITS, FEATURES, reset_after=False)
    skip_contracts = TRACED_ELSEWHERE

    def make_layer(self, **options):
        return keras.layers.GRU(UNITS, reset_after=False, recurrent_dropout=0.0, **options)


class TestCustomCellInRNN(RecurrentLayerContract):
    units = UNITS
    input_dim = FEATURES
    supports_dropout = True
    param_count = FEATURES * UNITS + UNITS * UNITS + UNITS

    def make_layer(self, dropout=0.0, **options):
        return keras.layers.RNN(MinimalRNNCell(UNITS, dropout=dropout), **options)


class TestStackedCells(RecurrentLayerContract):
    units = 2  # the last cell's units
    state_sizes = (UNITS, UNITS, 2)  # LSTM h, c then GRU h
    input_dim = FEATURES
    param_count = expected_param_count("lstm", UNITS, FEATURES) + expected_param_count(
        "gru", 2, UNITS
    )

    supports_dropout = True

    def make_layer(self, dropout=0.0, **options):
        cells = [keras.layers.LSTMCell(UNITS, dropout=dropout), keras.layers.GRUCell(2)]
        return keras.layers.RNN(cells, **options)
    # test_stateful_halves: ledger entry stacked-cells-reset-state (pytest_rnn/ledger.json)


class TestBidirectionalGRU(RecurrentLayerContract):
    units = 2 * UNITS  # merge_mode="concat"
    state_sizes = (UNITS, UNITS)  # forward h, backward h
    input_dim = FEATURES
    supports_dropout = True
    param_count = expected_param_count("gru", UNITS, FEATURES, bidirectional=True)
    skip_contracts = {
        "test_stateful_halves": "the backward layer reads each half from its own end, so two "
        "stateful halves never equal one call on the whole sequence",
    }

    def make_layer(self, **options):
        return keras.layers.Bidirectional(keras.layers.GRU(UNITS, **options))


class TestConvLSTM2D(RecurrentLayerContract):
    """A layer whose steps have three axes: 4x4 images with 2 channels, 2 filters."""

    input_shape_per_step = (4, 4, 2)
    output_shape_per_step = (4, 4, 2)  # padding="same" keeps the 4x4 positions
    state_shapes = ((4, 4, 2), (4, 4, 2))  # h, c
    steps = 4
    supports_dropout = True
    param_count = expected_param_count("conv_lstm2d", 2, 2, kernel_size=3)

    def make_layer(self, **options):
        return keras.layers.ConvLSTM2D(2, 3, padding="same", **options)

