"""Per-test seeds: stable across test order, processes and xdist workers.

:func:`seed_everything` seeds the frameworks with them; the plugin calls
:func:`pytest_rnn.backends.seed_everything`, the same seeding that also keeps TensorFlow's
compiled kernels (this module imports no backend module: see the architecture).
"""

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
    """Seed Python, NumPy and Keras (which seeds its backend). ``deterministic`` is
    :func:`pytest_rnn.backends.seed_everything`'s (it asks the active backend's framework
    for deterministic kernels); here it is refused, since this layer imports no framework."""
    if deterministic:
        raise TypeError("deterministic kernels are the backend's: call "
                        "pytest_rnn.backends.seed_everything(seed, deterministic=True)")
    import keras
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)

    keras.utils.set_random_seed(seed)
    _reset_global_seed_generator()


def _reset_global_seed_generator() -> None:
    """Make unseeded ``keras.random`` draws follow the seed on every release.

    They come from one global SeedGenerator. ``set_random_seed`` drops it (so it is
    recreated from the new seed) only from Keras 3.13.0 (keras-team/keras 9fc818534e,
    #21874); before that, draws went on from wherever earlier tests left it. On those
    releases the same is done here, through the Keras-internal global state that the
    fix itself uses (:data:`pytest_rnn.adapters.keras_internals.GLOBAL_STATE_SETTER`).
    """
    from pytest_rnn.runtime.versions import keras_at_least

    if keras_at_least("3.13.0"):
        return
    from pytest_rnn.adapters.keras_internals import reset_global_seed_generator

    reset_global_seed_generator()
