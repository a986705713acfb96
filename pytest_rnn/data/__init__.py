"""Data for the suites: IMDB subsets (``imdb``), synthetic tasks (``tasks``) and the
training routine of the slow suites (``training``).

``pytest_rnn.data.load_imdb_subset`` and the other names of :mod:`pytest_rnn.data.imdb`
are reachable from here, as they were when ``pytest_rnn.data`` was one module.
NumPy is imported on first use, Keras only by the functions that need it.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("imdb", "imdb_files", "imdb_sources", "tasks", "training")

__all__ = ["ImdbFileError", "ImdbUnavailable", "SequenceDataset", "load_imdb_subset",
           *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if not name.startswith("_"):
        imdb = importlib.import_module(f"{__name__}.imdb")
        if hasattr(imdb, name):
            value = globals()[name] = getattr(imdb, name)
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
