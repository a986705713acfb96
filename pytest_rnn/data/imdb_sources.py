"""Where the IMDB reviews come from, in this order:

1. ``path`` (the fixture passes ``--rnn-imdb-path`` / ini ``rnn_imdb_path`` /
   ``PYTEST_RNN_IMDB_PATH``), or, when ``path`` is None, the file the environment variable
   ``PYTEST_RNN_IMDB_PATH`` names (:func:`configured_path`): the pickle-free subset format
   of ``shared/datasets/imdb/README.md`` or Keras's original ``imdb.npz``. A path that is
   missing or malformed is an error, never a silent fallback.
2. Keras's cache, ``$KERAS_HOME/datasets/imdb.npz`` (``~/.keras`` by default).
3. Keras's own download of ``imdb.npz`` (what ``keras.datasets.imdb.load_data``
   fetches), tried only when the download host answers within
   :data:`REACHABILITY_TIMEOUT_S`, so offline runs give up in seconds.

When none of them can serve, :class:`ImdbUnavailable` says how to supply the data.
Reading the file is :mod:`pytest_rnn.data.imdb_files`'s job. No pytest; Keras is imported
just for the download.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from pytest_rnn.data.imdb_files import KERAS_IMDB_SHA256, ImdbFileError, _load_source, _Source

__all__ = ["KERAS_IMDB_ORIGIN", "PATH_VARIABLE", "REACHABILITY_TIMEOUT_S", "SUPPLY_HINT",
           "ImdbUnavailable", "configured_path", "keras_cache_candidates"]

# Copied from keras/src/datasets/imdb.py (load_data): where Keras downloads the
# reviews from.
KERAS_IMDB_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
#: The environment variable naming the IMDB data file (below ``--rnn-imdb-path`` and ini
#: ``rnn_imdb_path`` in the plugin; the one way a library call is configured besides ``path``).
PATH_VARIABLE = "PYTEST_RNN_IMDB_PATH"

REACHABILITY_TIMEOUT_S = 1.5

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


def configured_path(path: str | os.PathLike | None) -> Path | None:
    """The data file a caller configured: ``path``, else the one :data:`PATH_VARIABLE`
    names, else None (then Keras's cache and download are tried). An empty variable is a
    ValueError, as it is to the plugin."""
    if path is None:
        path = os.environ.get(PATH_VARIABLE)
        if path is None:
            return None
        path = path.strip()
        if not path:
            raise ValueError(f"environment variable {PATH_VARIABLE} is empty; name the IMDB "
                             "data file (.npz) or unset it")
    return Path(path).expanduser()


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
    configured = configured_path(path)
    if configured is not None:
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
