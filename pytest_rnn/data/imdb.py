"""Seeded, label-balanced subsets of the real IMDB reviews, encoded exactly like Keras.

``load_imdb_subset`` is the plain function behind the ``imdb_subset`` fixture. It
reads the reviews from, in this order:

1. ``path`` (the fixture passes ``--rnn-imdb-path`` / ini ``rnn_imdb_path`` /
   ``PYTEST_RNN_IMDB_PATH``): the pickle-free subset format of
   ``shared/datasets/imdb/README.md`` or Keras's original ``imdb.npz``. A path
   that is missing or malformed is an error, never a silent fallback.
2. Keras's cache, ``$KERAS_HOME/datasets/imdb.npz`` (``~/.keras`` by default).
3. Keras's own download of ``imdb.npz`` (what ``keras.datasets.imdb.load_data``
   fetches), tried only when the download host answers within
   :data:`REACHABILITY_TIMEOUT_S`, so offline runs give up in seconds.

When none of them can serve, :class:`ImdbUnavailable` says how to supply the data.

Token ids follow ``keras.datasets.imdb.load_data``: 1 starts a review, 2 stands for
a word outside the ``num_words`` most frequent ones, word ranks start at 3 and 0 is
left for padding. Keras's original file is shuffled with Keras's seed 113 first,
so ``train[i]`` here is ``x_train[i]`` there.

Keras's file stores ragged object arrays, i.e. pickles. It is unpickled only after
its SHA-256 equals the hash Keras publishes for it; any other pickled file is
refused. Loaded sources are cached per process (keyed by path, size and mtime), so
building a subset from a loaded source costs milliseconds.

This module imports NumPy only; Keras is imported just for the download.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
import socket
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ImdbFileError",
    "ImdbUnavailable",
    "SequenceDataset",
    "keras_cache_candidates",
    "load_imdb_subset",
    "pad_ragged",
]

# Copied from keras/src/datasets/imdb.py (load_data): where Keras downloads the
# reviews from and the SHA-256 it publishes for the file.
KERAS_IMDB_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
KERAS_IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
# Keras's load_data defaults, which define the encoding.
KERAS_SHUFFLE_SEED = 113
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3

REACHABILITY_TIMEOUT_S = 1.5
PADDING_MODES = ("pre", "post")

SUPPLY_HINT = (
    "supply the IMDB reviews in one of three ways: (1) --rnn-imdb-path PATH, ini "
    "rnn_imdb_path or environment variable PYTEST_RNN_IMDB_PATH, naming the pickle-free "
    "subset (.npz) or Keras's original imdb.npz; (2) Keras's cache file {cache}; "
    "(3) network access for keras.datasets.imdb.load_data to download it from {origin}"
)


class ImdbUnavailable(RuntimeError):
    """No IMDB source is reachable: nothing configured, nothing cached, no network.

    The fixture turns this into a skip; a configured but broken path is an
    :class:`ImdbFileError` or :class:`FileNotFoundError` instead, since that is a
    mistake to fix rather than a machine without data.
    """


class ImdbFileError(ValueError):
    """An IMDB file that is malformed, or pickled without Keras's published hash."""


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


# ---------------------------------------------------------------------------
# sources


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


def keras_cache_candidates() -> list[Path]:
    """Where Keras keeps ``imdb.npz``: ``$KERAS_HOME`` or ``~/.keras``, then ``/tmp/.keras``.

    Keras falls back to ``/tmp/.keras`` when its home is not writable.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    candidates = [Path(home).expanduser() / "datasets" / "imdb.npz",
                  Path("/tmp") / ".keras" / "datasets" / "imdb.npz"]
    return list(dict.fromkeys(candidates))


def _probe(host: str, port: int, timeout: float) -> str | None:
    """None if ``host:port`` accepts a TCP connection within ``timeout`` s, else why not.

    Runs in a daemon thread joined with the timeout: a socket timeout does not
    bound the DNS lookup, which can hang for much longer on a machine offline.
    """
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, name="pytest-rnn-imdb-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return outcome[0]


@functools.lru_cache(maxsize=1)
def _download_blocker() -> str | None:
    """Why the download cannot work (checked once per process), or None if it may."""
    proxy = urllib.request.getproxies().get("https")
    target = urllib.parse.urlsplit(proxy if proxy else KERAS_IMDB_ORIGIN)
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    reason = _probe(host, port, REACHABILITY_TIMEOUT_S)
    if reason is None:
        return None
    via = f"proxy {host}:{port}" if proxy else f"{host}:{port}"
    return f"cannot reach {via} ({reason})"


def _download() -> Path:
    """Keras's download of imdb.npz into its cache (what ``imdb.load_data`` does first)."""
    blocker = _download_blocker()
    if blocker is not None:
        raise ImdbUnavailable(blocker)
    import keras

    try:
        return Path(
            keras.utils.get_file(
                fname="imdb.npz", origin=KERAS_IMDB_ORIGIN, file_hash=KERAS_IMDB_SHA256
            )
        )
    except ValueError as exc:  # the file arrived and failed Keras's hash check: broken
        raise ImdbFileError(f"Keras downloaded {KERAS_IMDB_ORIGIN}, but the file is not the "
                            f"published imdb.npz ({exc})") from exc
    except Exception as exc:
        if not _never_arrived(exc):
            raise  # a Keras that cannot download any more is broken, not offline
        raise ImdbUnavailable(f"Keras's download failed ({type(exc).__name__}: {exc})") from exc


def _never_arrived(exc: BaseException) -> bool:
    """A download that did not reach us: Keras's ``URL fetch failure`` (a bare Exception it
    raises for HTTP and URL errors) or a socket error. Only that is a missing data source;
    a file that arrived corrupt, or any other error, is a failure."""
    return isinstance(exc, OSError) or (type(exc) is Exception
                                        and str(exc).startswith("URL fetch failure"))


def _find_source(path: str | os.PathLike | None) -> _Source:
    if path is not None:
        configured = Path(path).expanduser()
        if not configured.is_file():
            raise FileNotFoundError(
                f"IMDB data file {configured} (set by --rnn-imdb-path, ini rnn_imdb_path, "
                "PYTEST_RNN_IMDB_PATH or path=) does not exist or is not a file"
            )
        return _load_source(configured)
    notes = []
    for cached in keras_cache_candidates():
        if cached.is_file():
            try:
                return _load_source(cached, "in Keras's cache ")
            except ImdbFileError as exc:  # Keras itself would download it again
                notes.append(f"ignored {cached}: {exc}")
    try:
        return _load_source(_download(), "downloaded by Keras to ")
    except ImdbUnavailable as exc:
        notes.append(str(exc))
    hint = SUPPLY_HINT.format(cache=keras_cache_candidates()[0], origin=KERAS_IMDB_ORIGIN)
    raise ImdbUnavailable(f"IMDB data unavailable: {'; '.join(notes)}. To run, {hint}.")


# ---------------------------------------------------------------------------
# subsets


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

    Raises ValueError for bad arguments or sizes the source cannot serve,
    FileNotFoundError / :class:`ImdbFileError` for a bad ``path``, and
    :class:`ImdbUnavailable` when ``path`` is None and neither Keras's cache nor
    its download can provide the reviews.
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
