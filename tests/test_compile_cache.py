"""JAX's persistent compilation cache in pytest runs on the JAX backend
(:mod:`pytest_rnn.runtime.compile_cache`): set before JAX starts, in pytest's cache folder,
never over a directory the user chose, and nowhere on another backend."""

from __future__ import annotations

import os

import pytest

from pytest_rnn.runtime import compile_cache
from pytest_rnn.runtime.versions import keras_backend_name


@pytest.fixture
def clean(monkeypatch):
    for name in (compile_cache.DIRECTORY, *compile_cache.OPTIONS):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_on_jax_the_cache_goes_to_pytests_cache_folder_before_jax_starts(clean, tmp_path):
    applied = compile_cache.keep_jax_compilations(tmp_path, backend="jax", jax_started=False)
    folder = str(tmp_path / "d" / compile_cache.FOLDER)
    assert applied == {compile_cache.DIRECTORY: folder, **compile_cache.OPTIONS}
    assert os.environ[compile_cache.DIRECTORY] == folder
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
    assert not (tmp_path / "d").exists(), "nothing is written until JAX compiles"


def test_a_users_cache_directory_and_other_backends_are_left_alone(clean, tmp_path):
    assert compile_cache.keep_jax_compilations(tmp_path, backend="tensorflow",
                                               jax_started=False) == {}
    assert compile_cache.DIRECTORY not in os.environ
    clean.setenv(compile_cache.DIRECTORY, "/theirs")
    assert compile_cache.keep_jax_compilations(tmp_path, backend="jax", jax_started=False) == {}
    assert os.environ[compile_cache.DIRECTORY] == "/theirs"


@pytest.mark.skipif(keras_backend_name() != "jax",
                    reason="the plugin sets JAX's cache on the JAX backend only")
def test_this_jax_run_keeps_its_compiled_programs(rnn_rng):
    """This session, on JAX: JAX's cache points at pytest's cache folder (or the user's), and
    a layer call leaves compiled programs there."""
    import jax
    import keras

    folder = jax.config.jax_compilation_cache_dir
    assert folder, "JAX's persistent compilation cache is not set"
    layer = keras.layers.GRU(3, return_sequences=True)
    layer(rnn_rng.normal(size=(2, 7, 5)).astype("float32"))
    assert any(os.scandir(folder)), f"nothing was kept in {folder}"
