"""Keras's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`).

Keras exposes no public way to observe which recurrent kernel a layer call takes, nor
(before 3.13.0) to drop the global seed generator, so these few internals are used, here
only. Each is resolved when used: a release without it makes the check that needs it fail
with one line, never skip.
"""

from __future__ import annotations

from pytest_rnn.adapters import Internal, installed_version


def _keras_in(low: str | None = None, high: str | None = None):
    """``needed`` for an internal used only with Keras ``>= low`` and ``< high``."""

    def needed() -> bool:
        from packaging.version import Version

        version = installed_version("keras")
        return version is not None and (low is None or Version(version) >= Version(low)) and (
            high is None or Version(version) < Version(high))

    return needed


_TF_RNN = "keras.src.backend.tensorflow.rnn"
_ROUTING = "observe which kernel (cuDNN or generic) a recurrent layer call takes"

#: TensorFlow backend: the GPU probe and the cuDNN calls that simulated_gpu_routing replaces,
#: and the mask check it runs first (as Keras does on a GPU).
#: (needed only where TensorFlow is installed: its module imports TensorFlow)
def _with_tensorflow(low: str | None = None):
    return lambda: installed_version("tensorflow") is not None and _keras_in(low)()


TF_GPU_AVAILABLE = Internal("keras", _TF_RNN, "_is_gpu_available", _ROUTING,
                            needed=_with_tensorflow())
#: (simulated routing serves the use_cudnn checks, which start with Keras 3.2.0; so does the
#: mask check)
TF_ASSERT_VALID_MASK = Internal("keras", _TF_RNN, "_assert_valid_mask", _ROUTING, ("mask",),
                                needed=_with_tensorflow("3.2.0"))
TF_CUDNN_LSTM = Internal("keras", _TF_RNN, "_cudnn_lstm", _ROUTING,
                         ("mask", "go_backwards", "return_sequences"), needed=_with_tensorflow())
TF_CUDNN_GRU = Internal("keras", _TF_RNN, "_cudnn_gru", _ROUTING,
                        ("mask", "go_backwards", "return_sequences"), needed=_with_tensorflow())
#: JAX backend: its GPU probe.
JAX_GPU_AVAILABLE = Internal("keras", "keras.src.backend.jax.rnn", "_is_gpu_available",
                             _ROUTING, needed=lambda: installed_version("jax") is not None)
#: PyTorch backend: the cuDNN calls inside its fused lstm/gru (the fused CPU/CUDA loop
#: otherwise), from 3.10.0 (LSTM, 128e280187, #21135) and 3.14.0 (GRU).
_TORCH_RNN = "keras.src.backend.torch.rnn"
TORCH_CUDNN_LSTM = Internal("keras", _TORCH_RNN, "_cudnn_lstm", _ROUTING, needed=lambda: (
    installed_version("torch") is not None and _keras_in("3.10.0")()))
TORCH_CUDNN_GRU = Internal("keras", _TORCH_RNN, "_cudnn_gru", _ROUTING, needed=lambda: (
    installed_version("torch") is not None and _keras_in("3.14.0")()))
#: The active backend's fused kernels, as keras.layers.LSTM/GRU call them (JAX, PyTorch).
BACKEND_LSTM = Internal("keras", "keras.src.backend", "lstm", _ROUTING)
BACKEND_GRU = Internal("keras", "keras.src.backend", "gru", _ROUTING)
#: JAX's fused bidirectional LSTM, from Keras 3.15.0 (keras-team/keras b4ce4be3c4, #22791).
BACKEND_BIDIRECTIONAL_LSTM = Internal("keras", "keras.src.backend", "bidirectional_lstm",
                                      _ROUTING, needed=_keras_in("3.15.0"))
#: PyTorch's fused bidirectional GRU (cuDNN on CUDA), beside it from 3.15.0.
BACKEND_BIDIRECTIONAL_GRU = Internal("keras", "keras.src.backend", "bidirectional_gru",
                                     _ROUTING, needed=lambda: (
                                         installed_version("torch") is not None
                                         and _keras_in("3.15.0")()))
#: Before Keras 3.13.0, keras.utils.set_random_seed left the global seed generator as it was.
GLOBAL_STATE_SETTER = Internal(
    "keras", "keras.src.backend.common.global_state", "set_global_attribute",
    "reset the global seed generator when seeding (keras.utils.set_random_seed does it "
    "itself from 3.13.0)", ("name", "value"), needed=_keras_in(high="3.13.0"))
#: Where keras.datasets.imdb looks up get_file (the data tests stand a file in for the
#: download there).
IMDB_GET_FILE = Internal("keras", "keras.src.datasets.imdb", "get_file",
                         "stand a local file in for Keras's IMDB download in tests")

INTERNALS = [TF_GPU_AVAILABLE, TF_ASSERT_VALID_MASK, TF_CUDNN_LSTM, TF_CUDNN_GRU,
             JAX_GPU_AVAILABLE, TORCH_CUDNN_LSTM, TORCH_CUDNN_GRU, BACKEND_LSTM, BACKEND_GRU,
             BACKEND_BIDIRECTIONAL_LSTM, BACKEND_BIDIRECTIONAL_GRU, GLOBAL_STATE_SETTER,
             IMDB_GET_FILE]


def reset_global_seed_generator() -> None:
    """Drop Keras's global seed generator so that it is recreated from the next seed (what
    ``keras.utils.set_random_seed`` does itself from 3.13.0)."""
    from pytest_rnn.adapters import resolve

    resolve(GLOBAL_STATE_SETTER)("global_seed_generator", None)
