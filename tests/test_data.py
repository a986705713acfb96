"""IMDB subsets: Keras's encoding, seeded balanced sampling, sources, offline behaviour.

Most checks use small synthetic files written to tmp_path (reviews tagged with their
split and index, so overlap and leakage are visible); the encoding is checked
against the shared real subset's README and against ``keras.datasets.imdb.load_data``
itself reading a synthetic file in Keras's original format. No test touches the
network: the download host is "unreachable" through a patched socket.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_rnn.adapters import owner_and_name
from pytest_rnn.adapters.keras_internals import IMDB_GET_FILE
from pytest_rnn.data import imdb as data
from pytest_rnn.data import imdb_files, imdb_sources

SHARED_SUBSET = (
    Path(__file__).resolve().parents[2]
    / "shared" / "datasets" / "imdb" / "imdb_keras_num_words500_subset.npz"
)
# From shared/datasets/imdb/README.md: the first training and test reviews.
README_TRAIN_0 = [1, 14, 22, 16, 43, 2, 2, 2, 2, 65, 458, 2, 66, 2, 4, 173]
README_TEST_0 = [1, 2, 202, 14, 31, 6, 2, 10, 10, 2, 2, 5, 4, 360]


@pytest.fixture(scope="module")
def shared_subset() -> Path:
    if not SHARED_SUBSET.is_file():
        pytest.skip(f"the shared real IMDB subset is not at {SHARED_SUBSET}")
    return SHARED_SUBSET


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


# --- synthetic files ---------------------------------------------------------


def _flat(reviews: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = [len(r) for r in reviews]
    tokens = np.concatenate([np.asarray(r, dtype=np.int32) for r in reviews])
    return tokens, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def tagged_reviews(split_tag: int, labels: np.ndarray, rng: np.random.Generator):
    """Review i: start, split tag, two ids that encode i, then random filler words."""
    reviews = []
    for i in range(len(labels)):
        filler = rng.integers(5, 400, size=rng.integers(0, 20)).tolist()
        reviews.append([1, split_tag, 5 + i // 200, 5 + i % 200, *filler])
    return reviews


def write_subset(path: Path, n_train_pos=120, n_train_neg=180, n_test_pos=40, n_test_neg=60,
                 **overrides) -> Path:
    """A pickle-free subset with imbalanced labels and tagged reviews (3: train, 4: test)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, tag, pos, neg in (("train", 3, n_train_pos, n_train_neg),
                                 ("test", 4, n_test_pos, n_test_neg)):
        labels = rng.permutation(np.r_[np.ones(pos), np.zeros(neg)]).astype(np.int8)
        tokens, offsets = _flat(tagged_reviews(tag, labels, rng))
        arrays.update({f"{split}_tokens": tokens, f"{split}_offsets": offsets,
                       f"{split}_labels": labels})
    arrays["num_words"] = np.array(500)  # optional metadata; without it, max id + 1
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def ids_of(x: np.ndarray, split_tag: int) -> np.ndarray:
    """Review indices of rows padded 'post' from a tagged file (checks the tag)."""
    assert (x[:, 1] == split_tag).all(), f"rows from another split: tags {set(x[:, 1])}"
    return (x[:, 2] - 5) * 200 + (x[:, 3] - 5)


def raw_reviews(n: int, rng: np.random.Generator, vocab: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = rng.integers(1, vocab, size=rng.integers(0, 25)).tolist()
    return out


def write_keras_file(path: Path, n_train=40, n_test=30, vocab=60, extra=None) -> Path:
    """A file in Keras's original imdb.npz layout: pickled object arrays of raw word ranks."""
    rng = np.random.default_rng(1)
    x_train = raw_reviews(n_train, rng, vocab)
    if extra is not None:
        x_train[0] = extra
    np.savez(path, x_train=x_train, y_train=rng.integers(0, 2, n_train),
             x_test=raw_reviews(n_test, rng, vocab), y_test=rng.integers(0, 2, n_test))
    return path


def trust(monkeypatch, path: Path) -> None:
    """Pretend ``path`` is Keras's published file (its hash becomes the expected one)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(imdb_files, "KERAS_IMDB_SHA256", digest)


@pytest.fixture
def fresh_caches():
    """Tests that patch hashes or the network must not see, or leave, cached results."""
    data._load_cached.cache_clear()
    data._download_blocker.cache_clear()
    yield
    data._load_cached.cache_clear()
    data._download_blocker.cache_clear()


@pytest.fixture
def offline(monkeypatch, tmp_path, fresh_caches):
    """No configured path, an empty Keras cache and a network that refuses connections."""
    calls = []

    def refuse(address, *args, **kwargs):
        calls.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("PYTEST_RNN_IMDB_PATH", raising=False)
    for proxy in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    cache = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(cache))
    monkeypatch.setattr(imdb_sources, "keras_cache_candidates",
                        lambda: [cache / "datasets" / "imdb.npz"])
    return calls


# --- encoding -----------------------------------------------------------------


def test_first_reviews_are_encoded_as_the_readme_lists(shared_subset):
    """The whole training split, padded 'post', holds README's first reviews verbatim."""
    ds = data.load_imdb_subset(500, 100, n_train=5000, n_val=0, n_test=1000, seed=0,
                               padding="post", truncating="post", path=shared_subset)
    for x, y, review, label in ((ds.x_train, ds.y_train, README_TRAIN_0, 1),
                                (ds.x_test, ds.y_test, README_TEST_0, 0)):
        hits = np.flatnonzero((x[:, :len(review)] == review).all(axis=1))
        assert len(hits) == 1, f"review starting {review[:6]}... found {len(hits)} times"
        assert y[hits[0]] == label, f"review starting {review[:6]} has label {y[hits[0]]}"
    assert ds.x_train.max() == 499 and ds.x_train[ds.x_train > 0].min() == 1
    assert (ds.x_train[:, 0] == data.START_CHAR).all(), "every review starts with start_char 1"
    positives = (int(ds.y_train.sum()), int(ds.y_test.sum()))
    assert positives == (2546, 474), f"README: 50.9% / 47.4% positive, got {positives}"


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_keras_original_file_gives_what_keras_load_data_gives(
    keras, tmp_path, monkeypatch, fresh_caches, padding, truncating
):
    """Keras reads the same synthetic imdb.npz; padded, both give the same rows and labels."""
    path = write_keras_file(tmp_path / "imdb.npz")
    monkeypatch.setattr(*owner_and_name(IMDB_GET_FILE), lambda **kwargs: str(path))
    (kx_train, ky_train), (kx_test, ky_test) = keras.datasets.imdb.load_data(num_words=30)
    trust(monkeypatch, path)
    ds = data.load_imdb_subset(30, 12, n_train=len(kx_train), n_val=0, n_test=len(kx_test),
                               seed=5, padding=padding, truncating=truncating, path=path)

    def rows(x, y):
        return sorted(map(tuple, np.column_stack([x, y]).tolist()))

    for ours, theirs, labels, x in ((ds.x_train, kx_train, ky_train, ds.y_train),
                                    (ds.x_test, kx_test, ky_test, ds.y_test)):
        expected = keras.utils.pad_sequences(theirs, maxlen=12, padding=padding,
                                             truncating=truncating)
        assert rows(ours, x) == rows(expected, labels), "rows differ from Keras's encoding"


def test_keras_original_file_keeps_keras_review_order(keras, tmp_path, monkeypatch,
                                                      fresh_caches):
    """Review i of the loaded source is Keras's x_train[i] (Keras's seed-113 shuffle).

    num_words above every id: Keras's num_words=None would map the largest id to OOV.
    """
    path = write_keras_file(tmp_path / "imdb.npz")
    monkeypatch.setattr(*owner_and_name(IMDB_GET_FILE), lambda **kwargs: str(path))
    (kx_train, _), (kx_test, _) = keras.datasets.imdb.load_data(num_words=1000)
    trust(monkeypatch, path)
    source = data._load_source(path)
    for split, theirs in ((source.train, kx_train), (source.test, kx_test)):
        bounds = zip(split.offsets[:-1], split.offsets[1:], strict=True)
        ours = [split.tokens[a:b].tolist() for a, b in bounds]
        assert ours == [list(r) for r in theirs]


def test_num_words_maps_rarer_words_to_oov(shared_subset):
    wide = data.load_imdb_subset(500, seed=3, path=shared_subset)
    narrow = data.load_imdb_subset(100, seed=3, path=shared_subset)
    expected = np.where(wide.x_train >= 100, data.OOV_CHAR, wide.x_train)
    np.testing.assert_array_equal(narrow.x_train, expected)
    assert narrow.x_test.max() == 99


def test_pad_ragged_equals_keras_pad_sequences(keras):
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 50, size=k).tolist() for k in (0, 1, 3, 5, 6, 9, 0, 14)]
    tokens, offsets = _flat(rows)
    for padding in ("pre", "post"):
        for truncating in ("pre", "post"):
            for maxlen in (1, 5, 20):
                ours = data.pad_ragged(tokens, offsets[:-1], np.diff(offsets), maxlen,
                                       padding, truncating)
                theirs = keras.utils.pad_sequences(rows, maxlen=maxlen, padding=padding,
                                                   truncating=truncating)
                np.testing.assert_array_equal(
                    ours, theirs, err_msg=f"{padding=} {truncating=} {maxlen=}")
                assert ours.dtype == theirs.dtype == np.int32


# --- sampling -----------------------------------------------------------------


def test_same_arguments_give_identical_arrays_and_seeds_differ(shared_subset):
    a = data.load_imdb_subset(seed=11, path=shared_subset)
    b = data.load_imdb_subset(seed=11, path=shared_subset)
    c = data.load_imdb_subset(seed=12, path=shared_subset)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(a.x_train, c.x_train), "seed 12 drew the same training set"
    assert not np.array_equal(a.x_val, c.x_val), "seed 12 drew the same validation set"


def test_test_draw_does_not_depend_on_the_training_sizes(shared_subset):
    a = data.load_imdb_subset(n_train=100, n_val=10, n_test=50, seed=4, path=shared_subset)
    b = data.load_imdb_subset(n_train=300, n_val=0, n_test=50, seed=4, path=shared_subset)
    np.testing.assert_array_equal(a.x_test, b.x_test)


def test_subset_is_identical_in_a_fresh_process(shared_subset):
    """Another interpreter (other hash salt, as an xdist worker has) draws the same arrays."""
    code = (
        "import hashlib, json, sys; from pytest_rnn import data;"
        "d = data.load_imdb_subset(200, 30, 50, 20, 40, seed=9, path=sys.argv[1]);"
        "print(json.dumps([hashlib.sha256(getattr(d, k).tobytes()).hexdigest() "
        "for k in ('x_train', 'y_train', 'x_val', 'y_val', 'x_test', 'y_test')]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(shared_subset)], env=env,
                         capture_output=True, text=True, check=True).stdout
    here = data.load_imdb_subset(200, 30, 50, 20, 40, seed=9, path=shared_subset)
    digests = [hashlib.sha256(getattr(here, k).tobytes()).hexdigest()
               for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")]
    assert json.loads(out) == digests


def test_parts_are_label_balanced_disjoint_and_from_their_split(tmp_path):
    path = write_subset(tmp_path / "s.npz")
    ds = data.load_imdb_subset(500, 30, n_train=101, n_val=40, n_test=60, seed=2,
                               padding="post", path=path)
    for name, y, n in (("train", ds.y_train, 101), ("val", ds.y_val, 40),
                       ("test", ds.y_test, 60)):
        assert (len(y), int(y.sum())) == (n, n - n // 2), f"{name}: {int(y.sum())} of {len(y)}"
    train, val = ids_of(ds.x_train, 3), ids_of(ds.x_val, 3)
    test = ids_of(ds.x_test, 4)
    assert len(set(train)) == 101 and len(set(val)) == 40 and len(set(test)) == 60
    assert not set(train) & set(val), f"train/val overlap: {sorted(set(train) & set(val))}"
    assert ds.y_train[:20].tolist() != sorted(ds.y_train[:20].tolist()), "labels not shuffled"


def test_a_short_label_is_used_up_and_the_rest_comes_from_the_other(tmp_path):
    """As balanced as the source allows: 100 test reviews, 40 positive -> all of them."""
    path = write_subset(tmp_path / "s.npz")
    ds = data.load_imdb_subset(500, 30, n_train=10, n_val=0, n_test=100, seed=2, path=path)
    assert int(ds.y_test.sum()) == 40
    ds = data.load_imdb_subset(500, 30, n_train=200, n_val=60, n_test=10, seed=2, path=path)
    assert (int(ds.y_train.sum()), int(ds.y_val.sum())) == (100, 20), "train before val"


def test_the_default_sizes_work_on_the_shared_subset(shared_subset):
    ds = data.load_imdb_subset(seed=1, path=shared_subset)
    shapes = [getattr(ds, k).shape for k in ("x_train", "x_val", "x_test")]
    assert shapes == [(2000, 100), (500, 100), (1000, 100)]
    assert (ds.y_train.mean(), ds.y_val.mean()) == (0.5, 0.5)
    assert ds.x_train.dtype == np.int32 and ds.num_words == 500 and ds.seed == 1
    # the source names the file by its real path (``../shared`` may be a symlink)
    assert str(shared_subset.resolve()) in ds.source
    assert "SequenceDataset(train=(2000, 100)" in repr(ds)


def test_changing_a_returned_array_does_not_change_the_next_subset(shared_subset):
    a = data.load_imdb_subset(seed=8, path=shared_subset)
    before = a.x_train.copy()
    a.x_train[:] = 0
    np.testing.assert_array_equal(data.load_imdb_subset(seed=8, path=shared_subset).x_train,
                                  before)


def test_loaded_sources_are_cached_and_a_replaced_file_is_reread(tmp_path):
    path = write_subset(tmp_path / "s.npz")
    data.load_imdb_subset(500, 10, 4, 2, 2, seed=0, path=path)
    hits = data._load_cached.cache_info().hits
    data.load_imdb_subset(500, 10, 4, 2, 2, seed=1, path=path)
    assert data._load_cached.cache_info().hits == hits + 1, "second load did not hit the cache"
    write_subset(path, n_test_pos=3, n_test_neg=3)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    ds = data.load_imdb_subset(500, 10, 4, 2, 6, seed=1, path=path)
    assert "6 test reviews" in ds.source, ds.source


# --- bad arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_words": 2}, "num_words must be an integer >= 3"),
        ({"num_words": True}, "num_words must be an integer >= 3"),
        ({"maxlen": 0}, "maxlen must be an integer >= 1"),
        ({"maxlen": 10.0}, "maxlen must be an integer >= 1"),
        ({"n_train": -1}, "n_train must be an integer >= 0"),
        ({"n_val": -5}, "n_val must be an integer >= 0"),
        ({"n_test": -1}, "n_test must be an integer >= 0"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"padding": "middle"}, "padding must be one of ('pre', 'post'), got 'middle'"),
        ({"truncating": "both"}, "truncating must be one of ('pre', 'post'), got 'both'"),
        ({"num_words": 501}, "num_words=501 is larger than the vocabulary the source was "
                             "encoded with (num_words <= 500)"),
        ({"n_train": 4000, "n_val": 1001}, "asks for 5001 reviews, but the source holds 5000 "
                                           "(2454 negative, 2546 positive)"),
        ({"n_test": 1001}, "test split (n_test) = 1001 asks for 1001 reviews, but the source "
                           "holds 1000 (526 negative, 474 positive)"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_accepted_range(shared_subset, kwargs,
                                                                message):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(ValueError) as excinfo:
        data.load_imdb_subset(path=shared_subset, **kwargs)
    assert message in str(excinfo.value)


def test_a_missing_configured_path_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz.*does not exist"):
        data.load_imdb_subset(seed=0, path=missing)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a zip"), "is not an .npz archive (it starts with b'not a '"),
        (lambda p: np.save(p.with_suffix(".npy"), np.arange(3)) or
         p.with_suffix(".npy").rename(p), "holds a single .npy array"),
        (lambda p: np.savez(p, words=np.arange(3)), "is neither the pickle-free IMDB subset"),
        (lambda p: write_subset(p, train_offsets=np.array([0, 5, 3], dtype=np.int64)),
         "train split has 300 labels but 3 offsets"),
        (lambda p: write_subset(p, test_labels=np.full(100, 2, dtype=np.int8)),
         "test split labels must be 0 or 1"),
        (lambda p: write_subset(p, train_tokens=np.zeros(10, dtype=np.int32),
                                train_offsets=np.array([0] + [10] * 300, dtype=np.int64)),
         "token ids must be >= 1"),
        (lambda p: write_subset(p, train_tokens=np.array(["a"] * 10)),
         "train_tokens must be a 1-D integer array"),
    ],
    ids=["text", "npy", "unknown-keys", "offsets", "labels", "zero-ids", "strings"],
)
def test_a_malformed_file_is_an_error_naming_the_path(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(data.ImdbFileError) as excinfo:
        data.load_imdb_subset(seed=0, path=path)
    assert str(path) in str(excinfo.value) and message in str(excinfo.value)


def test_a_text_file_is_not_called_pickled_data(tmp_path, fresh_caches):
    """numpy takes any file that is neither zip nor .npy for a pickle; the message must not."""
    path = tmp_path / "reviews.txt"
    path.write_text("this movie was great\nterrible plot\n")
    with pytest.raises(data.ImdbFileError) as excinfo:
        data.load_imdb_subset(seed=0, path=path)
    message = str(excinfo.value)
    assert "pickle" not in message.split(";")[0], message
    assert message.startswith(f"{path} is not an .npz archive"), message
    assert "give the pickle-free IMDB subset (.npz) or Keras's imdb.npz" in message


# --- pickles --------------------------------------------------------------------


class _Gadget:
    """Unpickling this creates a directory: proof that a file was unpickled."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_a_pickled_file_without_keras_hash_is_refused_unopened(tmp_path, fresh_caches):
    flag = tmp_path / "unpickled"
    path = write_keras_file(tmp_path / "imdb.npz", extra=_Gadget(flag))
    with pytest.raises(data.ImdbFileError) as excinfo:
        data.load_imdb_subset(seed=0, path=path)
    text = str(excinfo.value)
    assert str(path) in text and "refusing to unpickle" in text
    assert data.KERAS_IMDB_SHA256 in text and hashlib.sha256(path.read_bytes()).hexdigest() in text
    assert not flag.exists(), "the unverified pickle was executed"


def test_pickled_arrays_under_subset_names_are_refused(tmp_path, fresh_caches):
    flag = tmp_path / "unpickled"
    gadgets = np.empty(1, dtype=object)
    gadgets[0] = _Gadget(flag)
    path = write_subset(tmp_path / "s.npz", train_tokens=gadgets)
    with pytest.raises(data.ImdbFileError, match="is malformed"):
        data.load_imdb_subset(seed=0, path=path)
    assert not flag.exists()


def test_a_keras_file_with_the_published_hash_is_accepted(tmp_path, monkeypatch, fresh_caches):
    path = write_keras_file(tmp_path / "imdb.npz", n_train=40, n_test=30)
    trust(monkeypatch, path)
    ds = data.load_imdb_subset(30, 20, n_train=10, n_val=4, n_test=6, seed=0, path=path)
    assert "Keras imdb.npz" in ds.source and "SHA-256 verified" in ds.source
    assert ds.x_train.shape == (10, 20) and ds.x_train.max() <= 29


def test_the_expected_hash_and_origin_are_the_ones_installed_keras_publishes(keras, monkeypatch):
    """Asked, not read: Keras's load_data is called with its download stubbed out, so the
    check holds whatever the source text looks like in the installed release."""
    asked = {}

    class Stop(Exception):
        pass

    def get_file(*args, **kwargs):
        asked.update(kwargs)
        raise Stop

    module = sys.modules[keras.datasets.imdb.load_data.__module__]
    monkeypatch.setattr(module, "get_file", get_file)
    with pytest.raises(Stop):
        keras.datasets.imdb.load_data()
    assert asked.get("origin") == data.KERAS_IMDB_ORIGIN
    assert asked.get("file_hash") == data.KERAS_IMDB_SHA256
    defaults = inspect.signature(keras.datasets.imdb.load_data).parameters
    assert (defaults["seed"].default, defaults["start_char"].default,
            defaults["oov_char"].default, defaults["index_from"].default) == (
        data.KERAS_SHUFFLE_SEED, data.START_CHAR, data.OOV_CHAR, data.INDEX_FROM)


# --- Keras cache, download, offline -----------------------------------------------


def test_keras_cache_is_used_when_no_path_is_configured(tmp_path, monkeypatch, offline):
    cache = tmp_path / "keras_home" / "datasets" / "imdb.npz"
    cache.parent.mkdir(parents=True)
    write_keras_file(cache)
    trust(monkeypatch, cache)
    ds = data.load_imdb_subset(30, 10, 6, 2, 4, seed=0)
    assert "in Keras's cache" in ds.source and str(cache) in ds.source
    assert offline == [], "the network was tried although the cache had the file"


def test_a_library_call_reads_the_path_from_the_environment(offline, monkeypatch, tmp_path):
    """``path=None`` honours PYTEST_RNN_IMDB_PATH, which the offline message names, before
    Keras's cache and download; ``path`` wins over it; a missing or empty one is an error."""
    path = write_subset(tmp_path / "s.npz")
    monkeypatch.setenv("PYTEST_RNN_IMDB_PATH", str(path))
    ds = data.load_imdb_subset(500, 10, 4, 2, 2, seed=0)
    assert str(path.resolve()) in ds.source
    assert offline == [], "the network was tried although the variable named a file"
    missing = tmp_path / "nowhere.npz"
    monkeypatch.setenv("PYTEST_RNN_IMDB_PATH", str(missing))
    assert data.load_imdb_subset(500, 10, 4, 2, 2, seed=0, path=path).source == ds.source
    with pytest.raises(FileNotFoundError, match="nowhere.npz.*PYTEST_RNN_IMDB_PATH"):
        data.load_imdb_subset(seed=0)
    monkeypatch.setenv("PYTEST_RNN_IMDB_PATH", " ")
    with pytest.raises(ValueError, match="environment variable PYTEST_RNN_IMDB_PATH is empty"):
        data.load_imdb_subset(seed=0)


def test_the_environment_variable_works_outside_pytest(tmp_path):
    """A plain interpreter (no pytest, no plugin) reads the file the variable names."""
    path = write_subset(tmp_path / "s.npz")
    code = ("import json, sys; from pytest_rnn import data;"
            "d = data.load_imdb_subset(500, 10, 4, 2, 2, seed=0);"
            "print(json.dumps([d.source, 'pytest' in sys.modules]))")
    env = {**os.environ, "PYTEST_RNN_IMDB_PATH": str(path),
           "KERAS_HOME": str(tmp_path / "no_keras_home")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    source, imported_pytest = json.loads(out)
    assert str(path.resolve()) in source and not imported_pytest


def test_keras_cache_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert data.keras_cache_candidates()[0] == tmp_path / "datasets" / "imdb.npz"
    monkeypatch.delenv("KERAS_HOME")
    assert data.keras_cache_candidates()[0] == Path.home() / ".keras" / "datasets" / "imdb.npz"


def test_offline_fails_fast_with_a_reason_naming_the_three_ways(offline, tmp_path):
    start = time.perf_counter()
    with pytest.raises(data.ImdbUnavailable) as excinfo:
        data.load_imdb_subset(seed=0)
    elapsed = time.perf_counter() - start
    text = str(excinfo.value)
    for way in ("--rnn-imdb-path", "rnn_imdb_path", "PYTEST_RNN_IMDB_PATH",
                str(tmp_path / "keras_home" / "datasets" / "imdb.npz"),
                "keras.datasets.imdb.load_data", "Network is unreachable",
                "storage.googleapis.com:443"):
        assert way in text, f"{way!r} missing from: {text}"
    assert elapsed < 1.0, f"giving up offline took {elapsed:.2f} s"
    with pytest.raises(data.ImdbUnavailable):
        data.load_imdb_subset(seed=1)
    assert len(offline) == 1, f"network probed {len(offline)} times; once per process is enough"


def test_a_corrupt_cache_file_is_reported_in_the_offline_reason(offline, tmp_path):
    cache = tmp_path / "keras_home" / "datasets" / "imdb.npz"
    cache.parent.mkdir(parents=True)
    write_keras_file(cache)
    with pytest.raises(data.ImdbUnavailable, match=r"ignored .*imdb\.npz.*SHA-256"):
        data.load_imdb_subset(seed=0)


def test_a_proxy_is_probed_instead_of_the_download_host(offline, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    with pytest.raises(data.ImdbUnavailable, match="cannot reach proxy proxy.example:3128"):
        data.load_imdb_subset(seed=0)
    assert offline == [("proxy.example", 3128)]


def test_a_host_that_never_answers_is_given_up_after_the_timeout(monkeypatch):
    """DNS or connect hanging: the probe returns at its timeout, not when the socket does."""
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("released by the test")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    try:
        reason = imdb_sources._probe("storage.googleapis.com", 443, 0.2)
    finally:
        release.set()
    elapsed = time.perf_counter() - start
    assert reason == "no answer from storage.googleapis.com:443 within 0.2 s"
    # the socket would hang 30 s: returning well before that is returning at the timeout
    # (a tight bound would measure the machine's load, not the probe)
    assert elapsed < 10, f"probe took {elapsed:.2f} s with a 0.2 s timeout"


def test_download_goes_through_keras_get_file_into_its_cache(keras, offline, monkeypatch,
                                                             tmp_path):
    monkeypatch.setattr(imdb_sources, "_probe", lambda host, port, timeout: None)
    seen = {}

    def fake_get_file(fname, origin, file_hash):
        seen.update(fname=fname, origin=origin, file_hash=file_hash)
        target = tmp_path / "keras_home" / "datasets" / fname
        target.parent.mkdir(parents=True)
        write_keras_file(target)
        trust(monkeypatch, target)
        return str(target)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    expected_hash = data.KERAS_IMDB_SHA256
    ds = data.load_imdb_subset(30, 10, 6, 2, 4, seed=0)
    assert seen == {"fname": "imdb.npz", "origin": data.KERAS_IMDB_ORIGIN,
                    "file_hash": expected_hash}
    assert "downloaded by Keras" in ds.source


def test_a_failed_download_is_unavailable_not_a_crash(keras, offline, monkeypatch):
    monkeypatch.setattr(imdb_sources, "_probe", lambda host, port, timeout: None)

    def fail(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com: None -- reset")

    monkeypatch.setattr(keras.utils, "get_file", fail)
    with pytest.raises(data.ImdbUnavailable, match="Keras's download failed.*URL fetch failure"):
        data.load_imdb_subset(seed=0)


@pytest.mark.parametrize(("raised", "expected", "message"), [
    (ValueError("Incomplete or corrupted file detected. The sha256 file hash does not match "
                "the provided value of 3f1b."), data.ImdbFileError,
     r"downloaded .*imdb\.npz, but the file is not the published imdb\.npz \(Incomplete"),
    (TypeError("get_file() got an unexpected keyword argument 'file_hash'"), TypeError,
     "unexpected keyword argument"),
    (ConnectionResetError("Connection reset by peer"), data.ImdbUnavailable,
     "Keras's download failed .ConnectionResetError"),
])
def test_only_a_download_that_never_arrived_is_unavailable(keras, offline, monkeypatch,
                                                           raised, expected, message):
    """A corrupt download (Keras's hash check) and a Keras whose get_file no longer works
    are failures, not skips: only a missing network makes the data unavailable."""
    monkeypatch.setattr(imdb_sources, "_probe", lambda host, port, timeout: None)

    def fail(**kwargs):
        raise raised

    monkeypatch.setattr(keras.utils, "get_file", fail)
    with pytest.raises(expected, match=message):
        data.load_imdb_subset(seed=0)


# --- the fixtures ---------------------------------------------------------------------


def test_fixtures_default_to_the_tests_rnn_seed(imdb_subset, toy_task, rnn_seed, shared_subset):
    ours = imdb_subset(n_train=20, n_val=4, n_test=8)
    assert ours.seed == rnn_seed
    direct = data.load_imdb_subset(n_train=20, n_val=4, n_test=8, seed=rnn_seed,
                                   path=shared_subset)
    np.testing.assert_array_equal(ours.x_train, direct.x_train)
    assert imdb_subset(n_train=2, n_val=0, n_test=2, seed=3).seed == 3
    assert toy_task("parity", n=10).seed == rnn_seed
    assert toy_task("parity", n=10, seed=4).seed == 4


FIXTURE_TEST = """
def test_reviews(imdb_subset):
    imdb_subset(n_train=4, n_val=0, n_test=2)
"""


def test_fixture_skips_offline_with_the_ways_to_supply_data(pytester, offline):
    pytester.makepyfile(FIXTURE_TEST)
    result = pytester.runpytest_inprocess("-rs", "--no-header")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*IMDB data unavailable*--rnn-imdb-path*rnn_imdb_path*"
                                 "PYTEST_RNN_IMDB_PATH*keras.datasets.imdb.load_data*"])


def test_fixture_errors_on_a_configured_path_that_is_missing(pytester, offline):
    pytester.makepyfile(FIXTURE_TEST)
    result = pytester.runpytest_inprocess("--no-header", "--rnn-imdb-path", "missing.npz")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FileNotFoundError: IMDB data file *missing.npz*"])


def test_data_and_task_names_are_exported_from_the_package():
    import pytest_rnn
    from pytest_rnn import tasks

    assert pytest_rnn.load_imdb_subset is data.load_imdb_subset
    assert pytest_rnn.SequenceDataset is data.SequenceDataset
    assert pytest_rnn.make_task is tasks.make_task
    assert pytest_rnn.SequenceTask is tasks.SequenceTask
    assert {"load_imdb_subset", "SequenceDataset", "make_task", "SequenceTask"} <= set(
        pytest_rnn.__all__)
