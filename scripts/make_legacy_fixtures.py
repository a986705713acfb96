"""Write the Keras 2 fixtures of ``suites/legacy/``: recurrent models as ``tf.keras`` saved them.

Run it with Keras 2 (the ``tf-keras`` package), never with Keras 3, in a virtual
environment of its own outside the repository::

    python -m venv /tmp/keras2 && /tmp/keras2/bin/pip install tensorflow==2.21.0 tf-keras==2.21.0
    /tmp/keras2/bin/python scripts/make_legacy_fixtures.py suites/legacy

(``tf-keras`` must match the TensorFlow release it runs on; 2.21.0 with 2.21.0.)
For each model below it writes, as Keras 2 wrote them:

* ``NAME.h5.gz``: ``model.save("NAME.h5")``, the whole model in the legacy HDF5 format
  (config, Keras version and weights in one file);
* ``NAME.json``: ``model.to_json()``, the architecture alone, with Keras 2's class
  names and arguments (``implementation``, ``time_major``, initializer class names ...);
* ``NAME.weights.h5.gz``: ``model.save_weights("NAME.h5")``, the weights in Keras 2's
  HDF5 weights layout (the other half of the JSON route);
* ``NAME.outputs.json``: the stored ``inputs`` and the outputs Keras 2 computed on them
  (float32 values written exactly, as text a reviewer can read)
  (``output_0``, ``output_1`` ... in the order the model returns them).

HDF5 files are mostly empty metadata blocks (about 14 KiB for a tiny model), so
they are stored gzip-compressed (under 2 KiB); the bytes inside are Keras 2's,
unchanged. ``manifest.json`` records the versions that wrote them and what each
model is. Weights are drawn uniformly from [-0.6, 0.6] (biases included, so a
bias read into the wrong gate changes the outputs) with a fixed seed; rerunning
the script writes the same models.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

BATCH, STEPS, FEATURES = 2, 4, 3
SEED = 20260330


def _keras2():
    try:
        import tf_keras
    except ImportError:
        sys.exit(
            "make_legacy_fixtures.py needs Keras 2: pip install tensorflow==2.21.0 "
            "tf-keras==2.21.0 in a separate virtual environment (not the project's)"
        )
    if not tf_keras.__version__.startswith("2."):
        sys.exit(f"tf_keras {tf_keras.__version__} is not Keras 2")
    return tf_keras


def models(k) -> dict[str, tuple[str, object, np.ndarray]]:
    """name -> (what it covers, model, inputs)."""
    layers = k.layers
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    padded = x.copy()
    padded[1, 2:] = 0.0  # sample 1 has 2 real steps, then padding for Masking

    def sequential(*stack):
        return k.Sequential([k.Input((STEPS, FEATURES)), *stack])

    inp = k.Input((STEPS, FEATURES))
    lstm_states = k.Model(
        inp, layers.LSTM(3, implementation=1, return_sequences=True, return_state=True)(inp)
    )
    return {
        "simple_rnn": (
            "SimpleRNN(3, return_sequences=True)",
            sequential(layers.SimpleRNN(3, return_sequences=True)),
            x,
        ),
        "lstm_states": (
            "functional LSTM(3, implementation=1, return_sequences=True, return_state=True): "
            "three outputs (sequence, h, c)",
            lstm_states,
            x,
        ),
        "gru_reset_after": (
            "GRU(3, reset_after=True, return_sequences=True): the cuDNN layout, two bias rows",
            sequential(layers.GRU(3, reset_after=True, return_sequences=True)),
            x,
        ),
        "gru_reset_before": (
            "GRU(3, reset_after=False, implementation=1, go_backwards=True): one bias row",
            sequential(layers.GRU(3, reset_after=False, implementation=1, go_backwards=True)),
            x,
        ),
        "bidirectional_lstm": (
            "Bidirectional(LSTM(2, return_sequences=True), merge_mode='concat')",
            sequential(layers.Bidirectional(layers.LSTM(2, return_sequences=True))),
            x,
        ),
        "stacked_layers_masked": (
            "Masking(0.0) -> LSTM(3, return_sequences=True) -> GRU(2); sample 1 padded "
            "after step 2",
            sequential(
                layers.Masking(0.0),
                layers.LSTM(3, return_sequences=True),
                layers.GRU(2),
            ),
            padded,
        ),
        "stacked_cells": (
            "RNN([SimpleRNNCell(3), LSTMCell(2)], return_sequences=True): StackedRNNCells",
            sequential(
                layers.RNN(
                    [layers.SimpleRNNCell(3), layers.LSTMCell(2)], return_sequences=True
                )
            ),
            x,
        ),
    }


def _gzip(source: Path, target: Path) -> None:
    with open(source, "rb") as raw, gzip.GzipFile(target, "wb", mtime=0) as packed:
        shutil.copyfileobj(raw, packed)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    k = _keras2()
    import tensorflow as tf

    k.utils.set_random_seed(SEED)
    weights_rng = np.random.default_rng(SEED + 1)
    manifest = {
        "written_by": "scripts/make_legacy_fixtures.py",
        "tf_keras": k.__version__,
        "tensorflow": tf.__version__,
        "formats": {
            "NAME.h5.gz": "model.save('NAME.h5'): legacy HDF5 whole model, gzip-compressed",
            "NAME.json": "model.to_json()",
            "NAME.weights.h5.gz": "model.save_weights('NAME.h5'): legacy HDF5 weights, "
            "gzip-compressed",
            "NAME.outputs.json": "inputs and the outputs Keras 2 computed (output_0, output_1 "
            "...), float32 values written exactly",
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (description, model, x) in models(k).items():
            model.set_weights(
                [weights_rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                 for w in model.get_weights()]
            )
            result = model(x, training=False)
            outputs = result if isinstance(result, (list, tuple)) else [result]
            arrays = {f"output_{i}": np.asarray(o) for i, o in enumerate(outputs)}
            arrays = {"inputs": np.asarray(x), **arrays}
            (out / f"{name}.outputs.json").write_text(json.dumps(
                {"dtype": "float32",
                 **{k: a.astype(np.float64).tolist() for k, a in arrays.items()}},
                sort_keys=True) + "\n")
            (out / f"{name}.json").write_text(model.to_json())  # verbatim
            whole, weights = Path(tmp, f"{name}.h5"), Path(tmp, f"{name}_weights.h5")
            model.save(whole)
            model.save_weights(weights)
            _gzip(whole, out / f"{name}.h5.gz")
            _gzip(weights, out / f"{name}.weights.h5.gz")
            manifest["models"][name] = {
                "description": description,
                "outputs": {key: list(a.shape) for key, a in arrays.items()},
            }
            print(f"wrote {name}: {description}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
