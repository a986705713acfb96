"""The code under test: a SimpleRNN cell computed with one fused matmul.

``h = act([x, h_prev] @ [[K], [R]] + b)`` is the same function as Keras's
``SimpleRNNCell`` (``act(x K + b + h_prev R)``), computed with one matmul over the
concatenated input and state instead of two. It keeps SimpleRNNCell's weights,
config and dropout, so pytest-rnn's NumPy reference and parameter formula apply.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fused_cell")
class FusedSimpleRNNCell(keras.layers.SimpleRNNCell):
    """SimpleRNNCell with the input and recurrent matmuls fused into one."""

    def call(self, sequence, states, training=False):
        prev = states[0] if isinstance(states, (list, tuple)) else states
        if training and self.dropout > 0:
            sequence = sequence * self.get_dropout_mask(sequence)
        if training and self.recurrent_dropout > 0:
            prev = prev * self.get_recurrent_dropout_mask(prev)
        weights = ops.concatenate([self.kernel, self.recurrent_kernel], axis=0)
        z = ops.matmul(ops.concatenate([sequence, prev], axis=-1), weights)
        if self.bias is not None:
            z = z + self.bias
        output = self.activation(z) if self.activation is not None else z
        return output, [output]


def fused_rnn(units: int, *, dropout: float = 0.0, **rnn_options) -> keras.layers.RNN:
    """``keras.layers.RNN`` over a :class:`FusedSimpleRNNCell`."""
    return keras.layers.RNN(FusedSimpleRNNCell(units, dropout=dropout), **rnn_options)
