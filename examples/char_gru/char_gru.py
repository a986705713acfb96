"""The code under test: a character-level text generator built on a hand-written GRU cell.

``GatedRecurrentCell`` is the gated recurrent unit in its first published form, the
reset gate applied to the state *before* the recurrent matmul of the candidate::

    z  = sigmoid(x W_z + h U_z + b_z)            update gate
    r  = sigmoid(x W_r + h U_r + b_r)            reset gate
    c  = tanh(x W_c + (r * h) U_c + b_c)         candidate
    h' = (1 - z) * h + z * c                     new state, also the output

``W = [W_z | W_r | W_c]`` is the ``kernel`` (input_dim, 3 units), ``U`` the
``recurrent_kernel`` (units, 3 units) and ``b`` the ``bias`` (3 units), so the cell has as
many parameters as Keras's ``GRU(reset_after=False)``. It runs inside
``keras.layers.RNN``, which supplies masking, ``go_backwards``, ``stateful`` and
``return_state``.

The rest of the module is the project around it: a small corpus, its character
vocabulary, training windows, the model and greedy generation.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

#: The training text: short rhyming lines in which the last word depends on words that
#: came several characters earlier, so predicting it needs the recurrent state.
CORPUS = (
    "the cat sat on the mat.\n"
    "the dog ran to the log.\n"
    "the fox hid in the box.\n"
    "the hen slept in the pen.\n"
    "the bee flew to the tree.\n"
    "the frog sang on the bog.\n"
)


@keras.saving.register_keras_serializable(package="char_gru")
class GatedRecurrentCell(keras.layers.Layer):
    """A GRU cell with the reset gate applied before the candidate's recurrent matmul."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        three = 3 * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], three), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(self.units, three),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        self.bias = self.add_weight(shape=(three,), name="bias", initializer="zeros")

    def call(self, inputs, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        u = self.units
        x_proj = ops.matmul(inputs, self.kernel) + self.bias
        h_proj = ops.matmul(h, self.recurrent_kernel[:, : 2 * u])
        z = ops.sigmoid(x_proj[:, :u] + h_proj[:, :u])
        r = ops.sigmoid(x_proj[:, u : 2 * u] + h_proj[:, u:])
        candidate = ops.tanh(x_proj[:, 2 * u :]
                             + ops.matmul(r * h, self.recurrent_kernel[:, 2 * u :]))
        new_h = (1.0 - z) * h + z * candidate
        return new_h, [new_h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class Vocabulary:
    """The characters of a text, each mapped to an integer id (sorted order)."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self._ids = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self._ids[ch] for ch in text], dtype="int32")

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def training_windows(ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``window``-character slice of the text read as a loop (the last line is
    followed by the first), and the same slice shifted by one: the next characters."""
    looped = np.concatenate([ids, ids[: window + 1]])
    starts = np.arange(len(ids))
    x = np.stack([looped[s : s + window] for s in starts])
    y = np.stack([looped[s + 1 : s + window + 1] for s in starts])
    return x, y


def build_generator(vocab_size: int, units: int = 32, embed_dim: int = 8) -> keras.Model:
    """Characters -> embedding -> ``RNN(GatedRecurrentCell)`` -> logits of the next one."""
    return keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, embed_dim),
        keras.layers.RNN(GatedRecurrentCell(units), return_sequences=True),
        keras.layers.Dense(vocab_size),
    ])


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, *, epochs: int = 12,
          passes_per_epoch: int = 10, learning_rate: float = 0.02) -> keras.callbacks.History:
    """Adam on the mean cross-entropy of every next character of every window; an epoch
    is ``passes_per_epoch`` shuffled passes over the windows (the corpus is small)."""
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.tile(x, (passes_per_epoch, 1)), np.tile(y, (passes_per_epoch, 1))
    return model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)


def generate(model: keras.Model, vocab: Vocabulary, prompt: str, length: int) -> str:
    """The ``length`` characters the model finds most likely after ``prompt``, one at a
    time, each fed back as input (greedy decoding)."""
    ids = list(vocab.encode(prompt))
    for _ in range(length):
        logits = model(np.array([ids], dtype="int32"), training=False)
        ids.append(int(np.argmax(keras.ops.convert_to_numpy(logits)[0, -1])))
    return vocab.decode(ids[len(prompt):])
