"""Versions of what the run is made of, learned without importing TensorFlow.

Importing TensorFlow costs seconds. The pytest-xdist controller only prints the
header and schedules tests, so versions come from package metadata and the build
configuration from TensorFlow's generated ``build_info.py`` read as text.
:func:`versions` is the one dictionary every header, baseline entry, report and
benchmark record uses.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


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
