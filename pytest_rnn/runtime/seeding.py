"""Per-test seeds: stable across test order, processes and xdist workers.

Seeding the frameworks with them is :func:`pytest_rnn.backends.seed_everything`.
"""

from __future__ import annotations

import hashlib

_SEED_SPACE = 2**31 - 1  # what every RNG involved (Python, NumPy, TF) accepts


def derive_seed(base_seed: int, key: str) -> int:
    """A seed in ``[0, 2**31 - 1)`` from ``base_seed`` and a string such as a node id.

    SHA-256 rather than ``hash()``: Python salts ``hash`` per process, which would
    give each xdist worker a different seed for the same test.
    """
    digest = hashlib.sha256(f"{int(base_seed)}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPACE
