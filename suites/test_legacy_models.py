"""Recurrent models saved by Keras 2 (``tf.keras``) load in Keras 3 and compute what Keras 2 did.

The fixtures in ``suites/legacy/`` were written by ``scripts/make_legacy_fixtures.py``
with ``tf-keras`` 2.21 (see its ``manifest.json``): SimpleRNN, LSTM
(``implementation=1``, three outputs), GRU with ``reset_after`` True and False
(``go_backwards``), a Bidirectional LSTM, Masking -> LSTM -> GRU, and an RNN over
a list of cells, each with random non-zero weights and the outputs Keras 2
computed on stored inputs. Two formats are covered, each through the path Keras 3
documents for it:

* the legacy HDF5 whole-model file (``model.save("m.h5")``), read by
  ``keras.models.load_model``;
* the JSON architecture (``model.to_json()``) with the HDF5 weights file
  (``model.save_weights("w.h5")``), read by ``keras.legacy.saving.deserialize_keras_object``
  and ``Model.load_weights``.

What no Keras 3 release so far can do is pinned by two ledger entries (strict xfails
naming the defect, ``keras2-h5-time-major`` and ``keras2-json-model-class``): every
recurrent layer config Keras 2 wrote holds ``time_major: false``, an argument Keras 3
removed and now rejects, so no such file loads as saved; and
``keras.models.model_from_json`` cannot resolve Keras 2's model classes. The
numerical checks drop that one no-op key (``time_major`` is false in every
fixture) and nothing else, so they still read Keras 2's class names, initializer
and activation names, ``implementation``, bias layouts and weight order.

Tolerance, derived: Keras 2 and 3 compute the same float32 equations, possibly in
another order (fused or per-gate matmuls), so each pre-activation (at most
``n = 3 + 3 + 1`` products of magnitude below 2: standard-normal inputs, weights in
[-0.6, 0.6]) may differ by ``2 * n * eps32``, and the differences of ``STEPS``
steps add up: ``atol = STEPS * 2 * n * eps32`` = 6.7e-6. Observed: at most 6e-8.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from pytest_rnn.checks import compare

LEGACY = Path(__file__).with_name("legacy")
MANIFEST = json.loads((LEGACY / "manifest.json").read_text())
NAMES = sorted(MANIFEST["models"])
STEPS, MAX_TERMS = 4, 3 + 3 + 1
ATOL = STEPS * 2 * MAX_TERMS * float(np.finfo(np.float32).eps)
#: The classes Keras 2 wrote at the top of a model's JSON without a module.
MODEL_CLASSES = {"Sequential": keras.Sequential, "Functional": keras.Model}


def unpacked(name: str, suffix: str, tmp_path: Path) -> Path:
    """The gzip-compressed Keras 2 file ``NAME{suffix}.gz`` unpacked as ``tmp_path/NAME.h5``."""
    target = tmp_path / f"{name}{suffix.replace('.weights', '_weights')}"
    with gzip.open(LEGACY / f"{name}{suffix}.gz", "rb") as packed, open(target, "wb") as raw:
        shutil.copyfileobj(packed, raw)
    return target


def without_time_major(config):
    """``config`` without its ``"time_major": false`` entries (a no-op Keras 3 removed)."""
    if isinstance(config, dict):
        if config.get("time_major") is True:
            raise ValueError("a fixture uses time_major=True, which Keras 3 cannot compute")
        return {k: without_time_major(v) for k, v in config.items() if k != "time_major"}
    if isinstance(config, list):
        return [without_time_major(v) for v in config]
    return config


def expected(name: str) -> tuple[np.ndarray, list[np.ndarray]]:
    stored = json.loads((LEGACY / f"{name}.outputs.json").read_text(encoding="utf-8"))
    arrays = {k: np.asarray(v, dtype=stored["dtype"]) for k, v in stored.items() if k != "dtype"}
    outputs = [arrays[f"output_{i}"] for i in range(len(arrays) - 1)]
    return arrays["inputs"], outputs


def assert_reproduces_keras2(model, name: str, how: str) -> None:
    x, want = expected(name)
    got = [compare.to_numpy(o) for o in compare.flatten(model(x))]
    description = MANIFEST["models"][name]["description"]
    assert len(got) == len(want), (
        f"Keras 2 model {name!r} ({description}) {how}: returns {len(got)} outputs, Keras 2 "
        f"returned {len(want)}"
    )
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, (
            f"Keras 2 model {name!r} {how}: output {index} has shape {g.shape}, Keras 2 "
            f"computed {w.shape}"
        )
        diff = np.abs(g.astype(np.float64) - w)
        assert diff.max() <= ATOL, (
            f"Keras 2 model {name!r} ({description}) {how}: output {index} differs from what "
            f"Keras 2 computed by up to {diff.max():.3g} (atol {ATOL:.2g}) at "
            f"{np.unravel_index(diff.argmax(), diff.shape)}; the weights or the equations are "
            "read differently"
        )


def load(name: str, what: str, loader):
    """``loader()``, with a failure turned into an assertion naming the fixture and route."""
    try:
        return loader()
    except Exception as exc:
        raise AssertionError(
            f"Keras 2 model {name!r} ({MANIFEST['models'][name]['description']}) no longer "
            f"loads {what}: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None


def test_the_fixtures_are_keras_2_files():
    """So that a fixture regenerated with the wrong Keras cannot pass for a legacy one."""
    import h5py

    assert MANIFEST["tf_keras"].startswith("2."), MANIFEST["tf_keras"]
    for name in NAMES:
        config = json.loads((LEGACY / f"{name}.json").read_text())
        assert config["keras_version"].startswith("2."), f"{name}.json: {config['keras_version']}"
        with gzip.open(LEGACY / f"{name}.h5.gz") as packed, h5py.File(packed, "r") as f:
            version = f.attrs["keras_version"]
            version = version.decode() if isinstance(version, bytes) else version
            assert version.startswith("2."), f"{name}.h5: keras_version {version}"
            assert "time_major" in f.attrs["model_config"], f"{name}.h5 has no Keras 2 RNN config"


@pytest.mark.parametrize("name", NAMES)
def test_keras2_h5_file_reproduces_keras2_outputs_once_time_major_is_dropped(name, tmp_path):
    """``keras.models.load_model`` on the legacy HDF5 file, its stored architecture edited
    only to drop ``time_major: false``."""
    import h5py

    path = unpacked(name, ".h5", tmp_path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps(without_time_major(config))
    model = load(name, "from its HDF5 file through keras.models.load_model",
                 lambda: keras.models.load_model(path, compile=False))
    assert_reproduces_keras2(model, name, "loaded from its HDF5 file")


@pytest.mark.parametrize("name", NAMES)
def test_keras2_json_and_weights_reproduce_keras2_outputs(name, tmp_path):
    """The architecture from Keras 2's ``to_json()`` (without ``time_major: false``) through
    Keras 3's legacy deserializer, then ``load_weights`` of Keras 2's ``save_weights`` file."""
    config = without_time_major(json.loads((LEGACY / f"{name}.json").read_text()))
    model = load(
        name,
        "from its JSON config through keras.legacy.saving.deserialize_keras_object",
        lambda: keras.legacy.saving.deserialize_keras_object(config, custom_objects=MODEL_CLASSES),
    )
    weights = unpacked(name, ".weights.h5", tmp_path)
    load(name, "its HDF5 weights through Model.load_weights", lambda: model.load_weights(weights))
    assert_reproduces_keras2(model, name, "rebuilt from its JSON config and HDF5 weights")


def test_keras2_h5_load_fails_with_a_clear_error_naming_time_major(tmp_path):
    """Until the defect below is fixed, the failure must at least say which layer and which
    argument: ValueError naming the class and ``time_major``."""
    path = unpacked("lstm_states", ".h5", tmp_path)
    with pytest.raises(ValueError, match=r"passed to LSTM: \{'time_major': False\}"):
        keras.models.load_model(path, compile=False)


# ledger entry keras2-h5-time-major: a strict xfail on every Keras 3 release so far
@pytest.mark.parametrize("name", NAMES)
def test_keras2_h5_file_loads_as_saved(name, tmp_path):
    path = unpacked(name, ".h5", tmp_path)
    model = load(name, "as saved through keras.models.load_model",
                 lambda: keras.models.load_model(path, compile=False))
    assert_reproduces_keras2(model, name, "loaded as saved")


# ledger entry keras2-json-model-class: a strict xfail on every Keras 3 release so far
def test_model_from_json_reads_a_keras2_json():
    config = without_time_major(json.loads((LEGACY / "simple_rnn.json").read_text()))
    load("simple_rnn", "through keras.models.model_from_json",
         lambda: keras.models.model_from_json(json.dumps(config)))
