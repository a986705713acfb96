"""TensorFlow's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`)."""

from __future__ import annotations

from pytest_rnn.adapters import Internal

#: tf.random.set_seed clears every cached eager kernel through this function; pytest-rnn
#: holds it off for a seed the process has not used before (backends.tensorflow).
CLEAR_CACHES = Internal(
    "tensorflow", "tensorflow.python.pywrap_tfe", "TFE_ContextClearCaches",
    "keep TensorFlow's eager kernel cache when a test sets a new global seed")

INTERNALS = [CLEAR_CACHES]
