"""Versions of what the run is made of, learned without importing TensorFlow.

Importing TensorFlow costs seconds. The pytest-xdist controller only prints the
header and schedules tests, so versions come from package metadata and the build
configuration from TensorFlow's generated ``build_info.py`` read as text.
:func:`versions` is the one dictionary every header, baseline entry, report and
benchmark record uses.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path


@functools.cache
def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None when absent), read once: every
    test's seeding asks for Keras's, and each metadata lookup reads the disk."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


#: The cuDNN runtime wheels, newest CUDA first (JAX's and PyTorch's CUDA wheels need one).
CUDNN_PACKAGES = ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11")


def cudnn_package_version() -> str | None:
    """The version of the installed cuDNN runtime wheel, or None (no wheel: a system cuDNN,
    or none at all)."""
    return next((v for v in map(package_version, CUDNN_PACKAGES) if v), None)


def tensorflow_build_info() -> dict:
    """``tf.sysconfig.get_build_info()`` read from its source file, without importing TF."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        path = Path(location) / "python" / "platform" / "build_info.py"
        if path.is_file():
            return parse_build_info(path.read_text(encoding="utf-8"))
    return {}


def parse_build_info(source: str) -> dict:
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "build_info" for t in node.targets)
                and isinstance(node.value, ast.Call) and node.value.args):
            try:
                return dict(ast.literal_eval(node.value.args[0]))
            except ValueError:
                return {}
    return {}


def keras_backend_name() -> str:
    """The backend Keras will use, by Keras's own rules (env var, then keras.json)."""
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((keras_home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def tensorflow_imported() -> bool:
    return "tensorflow" in sys.modules


def backend_framework_imported() -> bool:
    """Whether the configured Keras backend's framework (TensorFlow, JAX or PyTorch) is
    imported already, so asking it for its devices costs no import."""
    backend = keras_backend_name()
    return {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(
        backend, backend) in sys.modules


#: The distributions TensorFlow is published under; any of them is the same TensorFlow.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                            "tensorflow-intel", "tensorflow-macos", "tf-nightly")


def tensorflow_version() -> str | None:
    """The installed TensorFlow's version, whichever distribution installed it."""
    for name in TENSORFLOW_DISTRIBUTIONS:
        version = package_version(name)
        if version:
            return version
    return None


#: Keras features the plugin and its suites use that the oldest supported release lacks:
#: name -> (first Keras release with it, what it is). :func:`keras_lacks` reads it.
KERAS_FEATURES = {
    "use_cudnn": ("3.2.0", "LSTM/GRU's use_cudnn argument and the TensorFlow cuDNN dispatch "
                           "that simulated_gpu_routing observes (keras-team/keras b451d660a2)"),
    "keras.tree": ("3.3.0", "the public keras.tree API"),
}


def keras_lacks(feature: str, keras_version: str | None = None) -> str | None:
    """Why the installed Keras (or ``keras_version``) lacks ``feature``; None if it has it.

    The reason names the release and the first release with the feature, so a test
    that pins the feature can skip with it.
    """
    from packaging.version import Version

    if feature not in KERAS_FEATURES:
        raise ValueError(f"unknown Keras feature {feature!r}; known: {sorted(KERAS_FEATURES)}")
    since, what = KERAS_FEATURES[feature]
    version = keras_version or package_version("keras")
    if version is None or Version(version) >= Version(since):
        return None
    return f"Keras {version} predates {what} (added in Keras {since})"


def keras_at_least(release: str) -> bool:
    """Whether the installed Keras is ``release`` or newer (False when Keras is absent)."""
    from packaging.version import Version

    version = package_version("keras")
    return version is not None and Version(version) >= Version(release)


def versions() -> dict[str, str | None]:
    """Everything a record of this run is keyed or described by, without importing TF."""
    build = tensorflow_build_info()
    return {
        "tensorflow": tensorflow_version(),
        "keras": package_version("keras"),
        "backend": keras_backend_name(),
        "numpy": package_version("numpy"),
        "python": platform.python_version(),
        "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
    }
