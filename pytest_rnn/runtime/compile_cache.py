"""JAX's persistent compilation cache for pytest runs on the JAX backend, set before JAX
starts.

Keras's JAX backend compiles a new XLA program for every layer, shape and option (each
eager ``lax.scan``, each op), and most of a JAX run is spent compiling them. JAX can keep
compiled programs on disk and read them back when the same program comes again: later in
the same run (a shape and option met again by another test) and in the next run. The
plugin points JAX's cache at a folder of pytest's own cache (``.pytest_cache/d/``), so
``pytest --cache-clear`` and ``-p no:cacheprovider`` clear or disable it as they do for
pytest's other caches, and a cache directory the user set (``JAX_COMPILATION_CACHE_DIR``)
wins. Measured in docs/explanation/backends.md ("JAX's compile time"). No JAX import when
JAX has not started: its options are set through its environment variables, which JAX reads
when it is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_rnn.runtime.versions import keras_backend_name

#: pytest's cache subfolder holding JAX's compiled programs.
FOLDER = "pytest-rnn-jax-compilation-cache"
#: JAX's options (as its environment variables): where, and every program whatever its
#: compile time or size (the defaults keep only those compiling for over a second, which
#: leaves out the many small programs an RNN test suite compiles).
OPTIONS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
}
DIRECTORY = "JAX_COMPILATION_CACHE_DIR"


def keep_jax_compilations(pytest_cache: Path, *, backend: str | None = None,
                          jax_started: bool | None = None) -> dict[str, str]:
    """Point JAX's persistent compilation cache at ``pytest_cache / "d" / FOLDER`` when the
    Keras backend is JAX and no cache directory was set; returns what was set (empty when
    nothing was). A JAX already imported gets the same through ``jax.config``."""
    backend = backend or keras_backend_name()
    if backend != "jax" or os.environ.get(DIRECTORY):
        return {}
    wanted = {DIRECTORY: str(Path(pytest_cache) / "d" / FOLDER), **OPTIONS}
    started = ("jax" in sys.modules) if jax_started is None else jax_started
    if started:
        import jax

        if jax.config.jax_compilation_cache_dir:
            return {}
        for name, value in wanted.items():
            option = name.lower()
            jax.config.update(option, value if name == DIRECTORY else float(value)
                              if "TIME" in name else int(value))
        return wanted
    applied = {}
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied
