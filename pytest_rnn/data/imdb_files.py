"""Reading one IMDB file: the pickle-free subset format or Keras's original ``imdb.npz``.

:func:`_load_source` reads and checks a file and returns its two splits as ragged token
arrays, encoded exactly like ``keras.datasets.imdb.load_data``: 1 starts a review, word
ranks start at 3 (``INDEX_FROM``), 2 is left for words outside ``num_words`` and 0 for
padding. Keras's original file is shuffled with Keras's seed 113 first, so review ``i``
here is ``x_train[i]`` there.

The subset format (``shared/datasets/imdb/README.md``) holds no pickles. Keras's file
stores ragged object arrays, i.e. pickles: it is unpickled only after its SHA-256 equals
the hash Keras publishes for it; any other pickled file is refused (:class:`ImdbFileError`,
as is any malformed file). Loaded files are cached per process (keyed by path, size and
mtime). Where the file comes from is :mod:`pytest_rnn.data.imdb_sources`'s job; NumPy only.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["INDEX_FROM", "KERAS_IMDB_SHA256", "KERAS_SHUFFLE_SEED", "OOV_CHAR", "START_CHAR",
           "ImdbFileError"]

# Copied from keras/src/datasets/imdb.py (load_data): the SHA-256 Keras publishes for the
# file it downloads.
KERAS_IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
# Keras's load_data defaults, which define the encoding.
KERAS_SHUFFLE_SEED = 113
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3


class ImdbFileError(ValueError):
    """An IMDB file that is malformed, or pickled without Keras's published hash."""


@dataclass(frozen=True)
class _Split:
    """Ragged reviews: review i is ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> tuple[int, int]:
        positives = int(np.count_nonzero(self.labels))
        return len(self) - positives, positives


@dataclass(frozen=True)
class _Source:
    description: str
    train: _Split
    test: _Split
    max_num_words: int | None  # None: the full vocabulary is there (Keras's file)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Cached arrays are shared by every subset of the process: make them read-only."""
    array.setflags(write=False)
    return array


_SUBSET_KEYS = frozenset(
    {"train_tokens", "train_offsets", "train_labels", "test_tokens", "test_offsets", "test_labels"}
)
_KERAS_KEYS = frozenset({"x_train", "y_train", "x_test", "y_test"})
_KEYS = ("tokens", "offsets", "labels")


def _check_split(path: Path, name: str, tokens, offsets, labels) -> _Split:
    def bad(why: str) -> ImdbFileError:
        return ImdbFileError(f"IMDB subset {path}: {name} split {why}")

    for key, array in (("tokens", tokens), ("offsets", offsets), ("labels", labels)):
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise bad(f"{name}_{key} must be a 1-D integer array, got {array.dtype} {array.shape}")
    if len(offsets) != len(labels) + 1:
        raise bad(f"has {len(labels)} labels but {len(offsets)} offsets (expected labels + 1)")
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(tokens):
        raise bad(f"offsets must run from 0 to len(tokens)={len(tokens)}")
    if np.any(np.diff(offsets) < 0):
        raise bad("offsets must not decrease")
    if len(labels) and not np.isin(labels, (0, 1)).all():
        raise bad("labels must be 0 or 1")
    if len(tokens) and tokens.min() < 1:
        raise bad(f"token ids must be >= 1 (0 is padding), found {int(tokens.min())}")
    return _Split(
        _frozen(tokens.astype(np.int32)),
        _frozen(offsets.astype(np.int64)),
        _frozen(labels.astype(np.int64)),
    )


def _load_subset(path: Path, archive) -> _Source:
    train = _check_split(path, "train", *(archive[f"train_{k}"] for k in _KEYS))
    test = _check_split(path, "test", *(archive[f"test_{k}"] for k in _KEYS))
    if "num_words" in archive.files:
        max_num_words = int(archive["num_words"])
    else:  # the subset was encoded for the smallest num_words that holds every id
        max_num_words = int(max(train.tokens.max(initial=2), test.tokens.max(initial=2))) + 1
    description = (
        f"pickle-free IMDB subset {path} ({len(train)} train / {len(test)} test reviews, "
        f"num_words <= {max_num_words})"
    )
    return _Source(description, train, test, max_num_words)


def _encode_keras_split(reviews: np.ndarray, labels: np.ndarray) -> _Split:
    """Keras's encoding of raw word ranks: start_char, then rank + index_from."""
    lengths = np.fromiter(map(len, reviews), dtype=np.int64, count=len(reviews))
    raw = np.fromiter(itertools.chain.from_iterable(reviews), dtype=np.int64,
                      count=int(lengths.sum()))
    offsets = np.zeros(len(reviews) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=offsets[1:])
    tokens = np.empty(int(offsets[-1]), dtype=np.int32)
    is_start = np.zeros(len(tokens), dtype=bool)
    is_start[offsets[:-1]] = True
    tokens[is_start] = START_CHAR
    tokens[~is_start] = raw + INDEX_FROM
    return _Split(_frozen(tokens), _frozen(offsets),
                  _frozen(np.asarray(labels, dtype=np.int64)))


def _load_keras_file(path: Path, where: str) -> _Source:
    # Hash and unpickle the same bytes, read once: the file cannot change in between.
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != KERAS_IMDB_SHA256:
        raise ImdbFileError(
            f"{path} holds pickled arrays (x_train/y_train/x_test/y_test like Keras's "
            f"imdb.npz) but its SHA-256 is {digest}, not the {KERAS_IMDB_SHA256} Keras "
            "publishes for imdb.npz; refusing to unpickle an unverified file. Use Keras's "
            "original file or the pickle-free subset format."
        )
    # These bytes' SHA-256 equals Keras's published hash: this is Keras's own file, the
    # only one ever unpickled here.
    with np.load(io.BytesIO(content), allow_pickle=True) as archive:
        x_train, y_train = archive["x_train"], archive["y_train"]
        x_test, y_test = archive["x_test"], archive["y_test"]
    # keras.datasets.imdb.load_data's shuffle: one RandomState for both splits.
    rng = np.random.RandomState(KERAS_SHUFFLE_SEED)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    train = _encode_keras_split(x_train[order], y_train[order])
    order = np.arange(len(x_test))
    rng.shuffle(order)
    test = _encode_keras_split(x_test[order], y_test[order])
    description = (
        f"Keras imdb.npz {where}{path} (SHA-256 verified; {len(train)} train / "
        f"{len(test)} test reviews)"
    )
    return _Source(description, train, test, None)


_ZIP_MAGIC = b"PK\x03\x04"  # every .npz is a zip archive
_NPY_MAGIC = b"\x93NUMPY"


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path, size: int, mtime_ns: int, where: str) -> _Source:
    """Per-process cache; size and mtime in the key notice a replaced file."""
    del size, mtime_ns
    with open(path, "rb") as fh:
        head = fh.read(len(_NPY_MAGIC))
    if not head.startswith((_ZIP_MAGIC, _NPY_MAGIC)):
        # np.load would take any other file for a pickle and say "pickled data"
        raise ImdbFileError(
            f"{path} is not an .npz archive (it starts with {head[:8]!r}, not a zip header); "
            "give the pickle-free IMDB subset (.npz) or Keras's imdb.npz"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ImdbFileError(
            f"{path} is not a readable .npz archive ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ImdbFileError(f"{path} holds a single .npy array, not an IMDB .npz archive")
    with archive:
        keys = set(archive.files)
        if _SUBSET_KEYS <= keys:
            try:
                return _load_subset(path, archive)
            except ValueError as exc:
                if isinstance(exc, ImdbFileError):
                    raise
                raise ImdbFileError(f"IMDB subset {path} is malformed: {exc}") from exc
    if _KERAS_KEYS <= keys:
        return _load_keras_file(path, where)
    raise ImdbFileError(
        f"{path} is neither the pickle-free IMDB subset (arrays {sorted(_SUBSET_KEYS)}) nor "
        f"Keras's imdb.npz (arrays {sorted(_KERAS_KEYS)}); it holds {sorted(keys)}"
    )


def _load_source(path: Path, where: str = "") -> _Source:
    path = path.expanduser().resolve()
    stat = path.stat()
    return _load_cached(path, stat.st_size, stat.st_mtime_ns, where)
