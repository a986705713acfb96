"""JAX's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`).

``jax.experimental`` makes no compatibility promise; Keras's JAX backend reaches cuDNN's
LSTM through it, and pytest-rnn replaces it to observe (and on a CPU host, refuse) that
route.
"""

from __future__ import annotations

from pytest_rnn.adapters import Internal

CUDNN_LSTM = Internal("jax", "jax.experimental.rnn", "lstm",
                      "observe when Keras's JAX backend reaches cuDNN's LSTM",
                      ("x", "h_0", "c_0", "weights", "seq_lengths"))

INTERNALS = [CUDNN_LSTM]
