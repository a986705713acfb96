"""Seeded, label-balanced subsets of the real IMDB reviews, encoded exactly like Keras.

``load_imdb_subset`` is the plain function behind the ``imdb_subset`` fixture. It
reads the reviews from ``path``, else the file the environment variable
``PYTEST_RNN_IMDB_PATH`` names, else Keras's cache, else Keras's own download
(:mod:`pytest_rnn.data.imdb_sources`; the fixture passes ``--rnn-imdb-path`` / ini
``rnn_imdb_path`` / ``PYTEST_RNN_IMDB_PATH`` as ``path``), and reads the file, the
pickle-free subset format or Keras's original ``imdb.npz``, with
:mod:`pytest_rnn.data.imdb_files`. This module draws the subsets and pads them.

Token ids follow ``keras.datasets.imdb.load_data``: 1 starts a review, 2 stands for
a word outside the ``num_words`` most frequent ones, word ranks start at 3 and 0 is
left for padding. Keras's original file is shuffled with Keras's seed 113 first,
so ``train[i]`` here is ``x_train[i]`` there. Loaded sources are cached per process,
so building a subset from a loaded source costs milliseconds.

The names of the two modules above are re-exported here, as they were when this was one
module. This module imports NumPy only; Keras is imported just for the download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pytest_rnn.data.imdb_files import (
    INDEX_FROM,
    KERAS_IMDB_SHA256,
    KERAS_SHUFFLE_SEED,
    OOV_CHAR,
    START_CHAR,
    ImdbFileError,
    _load_cached,  # noqa: F401 - re-exported: the per-process cache of loaded files
    _load_source,  # noqa: F401 - re-exported: one file read as a source
    _Source,
    _Split,
)
from pytest_rnn.data.imdb_sources import (
    KERAS_IMDB_ORIGIN,
    PATH_VARIABLE,
    REACHABILITY_TIMEOUT_S,
    SUPPLY_HINT,
    ImdbUnavailable,
    _download_blocker,  # noqa: F401 - re-exported: the once-per-process network probe
    _find_source,
    configured_path,
    keras_cache_candidates,
)

__all__ = [
    "INDEX_FROM",
    "KERAS_IMDB_ORIGIN",
    "KERAS_IMDB_SHA256",
    "KERAS_SHUFFLE_SEED",
    "OOV_CHAR",
    "PATH_VARIABLE",
    "REACHABILITY_TIMEOUT_S",
    "START_CHAR",
    "SUPPLY_HINT",
    "ImdbFileError",
    "ImdbUnavailable",
    "SequenceDataset",
    "configured_path",
    "keras_cache_candidates",
    "load_imdb_subset",
    "pad_ragged",
]

PADDING_MODES = ("pre", "post")


@dataclass(frozen=True, repr=False, eq=False)
class SequenceDataset:
    """A padded, label-balanced IMDB subset: token ids ``(n, maxlen)`` int32, labels int64.

    ``eq=False``: NumPy arrays have no single truth value, so compare the arrays.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_words: int
    maxlen: int
    seed: int
    padding: str
    truncating: str
    source: str

    def __repr__(self) -> str:  # the default repr would print every array
        return (
            f"SequenceDataset(train={self.x_train.shape}, val={self.x_val.shape}, "
            f"test={self.x_test.shape}, num_words={self.num_words}, maxlen={self.maxlen}, "
            f"seed={self.seed}, padding={self.padding!r}, truncating={self.truncating!r}, "
            f"source={self.source!r})"
        )


def pad_ragged(tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, maxlen: int,
               padding: str = "pre", truncating: str = "pre") -> np.ndarray:
    """``keras.utils.pad_sequences`` (value 0, int32) for ragged rows, vectorised.

    Row i is ``tokens[starts[i]:starts[i] + lengths[i]]``. One gather instead of a
    Python loop over reviews keeps a 3,500-review subset in the millisecond range.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    kept = np.minimum(lengths, maxlen)
    if truncating == "pre":  # drop the beginning of long rows
        starts = starts + (lengths - kept)
    cols = np.arange(maxlen, dtype=np.int64)[None, :]
    if padding == "pre":  # zeros first, the row ends in the last column
        pos = cols - (maxlen - kept)[:, None]
    else:
        pos = np.broadcast_to(cols, (len(kept), maxlen))
    valid = (pos >= 0) & (pos < kept[:, None])
    index = np.where(valid, starts[:, None] + pos, 0)
    gathered = tokens[index] if len(tokens) else np.zeros(index.shape, dtype=np.int32)
    return np.where(valid, gathered, 0).astype(np.int32)


def _check_int(name: str, value, low: int, high: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{high}, got {value!r}")
    return int(value)


def _label_counts(n: int, left: list[int]) -> tuple[int, int]:
    """(negatives, positives) for a part of n reviews, as balanced as ``left`` allows.

    Half of each label, an odd one out positive; when a label has fewer left, the
    part takes all of them and fills up with the other label.
    """
    negatives, positives = n // 2, n - n // 2
    if positives > left[1]:
        positives = left[1]
        negatives = n - positives
    elif negatives > left[0]:
        negatives = left[0]
        positives = n - negatives
    return negatives, positives


def _draw(split: _Split, sizes: list[int], rng: np.random.Generator, which: str,
          source: _Source) -> list[np.ndarray]:
    """Disjoint, label-balanced index sets of the given sizes, each in random order."""
    have = split.counts()
    if sum(sizes) > len(split):
        raise ValueError(
            f"{which} = {' + '.join(map(str, sizes))} asks for {sum(sizes)} reviews, but the "
            f"source holds {len(split)} ({have[0]} negative, {have[1]} positive): "
            f"{source.description}"
        )
    pools = [rng.permutation(np.flatnonzero(split.labels == label)) for label in (0, 1)]
    taken = [0, 0]
    out = []
    for n in sizes:
        counts = _label_counts(n, [have[0] - taken[0], have[1] - taken[1]])
        parts = []
        for label in (0, 1):
            parts.append(pools[label][taken[label]:taken[label] + counts[label]])
            taken[label] += counts[label]
        out.append(rng.permutation(np.concatenate(parts)))
    return out


def _materialise(split: _Split, index: np.ndarray, num_words: int, maxlen: int,
                 padding: str, truncating: str) -> tuple[np.ndarray, np.ndarray]:
    starts = split.offsets[index]
    lengths = split.offsets[index + 1] - starts
    x = pad_ragged(split.tokens, starts, lengths, maxlen, padding, truncating)
    x[x >= num_words] = OOV_CHAR  # Keras's num_words filter (padding 0 is untouched)
    return x, split.labels[index].copy()


def load_imdb_subset(
    num_words: int = 500,
    maxlen: int = 100,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 1000,
    *,
    seed: int,
    padding: str = "pre",
    truncating: str = "pre",
    path: str | os.PathLike | None = None,
) -> SequenceDataset:
    """A seeded, label-balanced IMDB subset padded like ``keras.utils.pad_sequences``.

    Train and validation reviews come from the training split without overlap,
    test reviews from the test split; each part is half negative, half positive
    (an odd one out is positive) and shuffled. Where a label runs short, a part
    takes all that is left of it and fills up with the other label: the default
    ``n_test=1000`` from the shared subset's 1,000 test reviews is all of them,
    474 positive. The same arguments give the same
    arrays in every process (``np.random.default_rng(seed)``, no hash salting);
    the train/validation draw and the test draw use separate streams, so changing
    ``n_test`` leaves the training data alone.

    ``path`` None: the file the environment variable ``PYTEST_RNN_IMDB_PATH`` names, as
    under pytest; when that is unset too, Keras's cache, then Keras's download.

    Raises ValueError for bad arguments or sizes the source cannot serve,
    FileNotFoundError / :class:`ImdbFileError` for a bad ``path`` (or variable), and
    :class:`ImdbUnavailable` when neither is set and neither Keras's cache nor its
    download can provide the reviews.
    """
    num_words = _check_int("num_words", num_words, 3, " (ids 0-2 are padding, start, OOV)")
    maxlen = _check_int("maxlen", maxlen, 1)
    n_train = _check_int("n_train", n_train, 0)
    n_val = _check_int("n_val", n_val, 0)
    n_test = _check_int("n_test", n_test, 0)
    seed = _check_int("seed", seed, 0)
    for name, value in (("padding", padding), ("truncating", truncating)):
        if value not in PADDING_MODES:
            raise ValueError(f"{name} must be one of {PADDING_MODES}, got {value!r}")

    source = _find_source(path)
    if source.max_num_words is not None and num_words > source.max_num_words:
        raise ValueError(
            f"num_words={num_words} is larger than the vocabulary the source was encoded "
            f"with (num_words <= {source.max_num_words}): {source.description}"
        )
    root = np.random.SeedSequence(seed)
    train_stream, test_stream = (np.random.default_rng(s) for s in root.spawn(2))
    train_idx, val_idx = _draw(source.train, [n_train, n_val], train_stream,
                               "train split (n_train + n_val)", source)
    (test_idx,) = _draw(source.test, [n_test], test_stream, "test split (n_test)", source)
    parts = [
        _materialise(split, index, num_words, maxlen, padding, truncating)
        for split, index in ((source.train, train_idx), (source.train, val_idx),
                             (source.test, test_idx))
    ]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts
    return SequenceDataset(
        x_train, y_train, x_val, y_val, x_test, y_test,
        num_words=num_words, maxlen=maxlen, seed=seed, padding=padding,
        truncating=truncating, source=source.description,
    )
