"""Per-test seeds: stable across test order, processes and xdist workers."""

from __future__ import annotations

import hashlib
import random

_SEED_SPACE = 2**31 - 1  # what every RNG involved (Python, NumPy, TF) accepts


def derive_seed(base_seed: int, key: str) -> int:
    """A seed in ``[0, 2**31 - 1)`` from ``base_seed`` and a string such as a node id.

    SHA-256 rather than ``hash()``: Python salts ``hash`` per process, which would
    give each xdist worker a different seed for the same test.
    """
    digest = hashlib.sha256(f"{int(base_seed)}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPACE


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and Keras (which seeds its backend), optionally TF determinism."""
    import keras
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)

    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
