"""The code under test: a bidirectional-LSTM sentiment classifier for movie reviews.

Reviews arrive as word ids padded with 0 to a fixed length. The embedding marks the
padding (``mask_zero=True``); :class:`PooledBiLSTM` reads each review in both directions
and averages the per-step outputs over the review's real words only, so a review scores
the same however much padding surrounds it; a sigmoid unit gives the probability that
the review is positive.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="imdb_bilstm")
class PooledBiLSTM(keras.layers.Layer):
    """``Bidirectional(LSTM(units))`` over the steps, then the mean of its outputs over the
    steps the mask keeps (all steps without a mask): ``(batch, 2 * units)``. With
    ``return_sequences=True`` it returns the per-step outputs instead, mask passed on."""

    def __init__(self, units: int, dropout: float = 0.0, return_sequences: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.supports_masking = True
        self.bilstm = keras.layers.Bidirectional(
            keras.layers.LSTM(units, dropout=dropout, return_sequences=True,
                              dtype=self.dtype_policy),
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.bilstm.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        steps = self.bilstm(inputs, mask=mask, training=training)
        if self.return_sequences:
            return steps
        if mask is None:
            return ops.mean(steps, axis=1)
        keep = ops.expand_dims(ops.cast(mask, steps.dtype), -1)
        return ops.sum(steps * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (*input_shape[:2], 2 * self.units)
        return (input_shape[0], 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "return_sequences": self.return_sequences}


def build_classifier(num_words: int, *, embed_dim: int = 16, units: int = 16) -> keras.Model:
    """Word ids (0 = padding; any length) -> masked embedding -> :class:`PooledBiLSTM` ->
    P(positive)."""
    return keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(num_words, embed_dim, mask_zero=True),
        PooledBiLSTM(units),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def train(model: keras.Model, x, y, *, validation_data=None, epochs: int = 3,
          learning_rate: float = 0.003) -> keras.callbacks.History:
    """Adam on binary cross-entropy, batches of 32."""
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy",
                  metrics=["accuracy"])
    return model.fit(x, y, validation_data=validation_data, batch_size=32, epochs=epochs,
                     verbose=0)
