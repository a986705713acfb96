"""PyTorch's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`): none.

The PyTorch backend's routing observation goes through Keras's backend functions
(:mod:`pytest_rnn.adapters.keras_internals`), not through PyTorch's internals.
"""

from __future__ import annotations

from pytest_rnn.adapters import Internal

INTERNALS: list[Internal] = []
