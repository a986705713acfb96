"""What the run is made of, learned without importing TensorFlow where possible.

Importing TensorFlow costs seconds. The pytest-xdist controller only prints the
header and schedules tests, so it reads versions from package metadata and the
build configuration from TensorFlow's generated ``build_info.py`` as text.
Workers cap TensorFlow's thread pools through environment variables before any
test module imports it.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import json
import os
from pathlib import Path

THREAD_ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


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
            return _parse_build_info(path.read_text(encoding="utf-8"))
    return {}


def _parse_build_info(source: str) -> dict:
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
    import sys

    return "tensorflow" in sys.modules


def xdist_worker_count() -> int | None:
    """Number of xdist workers when running inside one of them, else None."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def worker_thread_env(workers: int, cores: int) -> dict[str, str]:
    """Thread caps that keep ``workers`` TensorFlow processes within ``cores`` cores."""
    intra = max(1, cores // max(1, workers))
    return {
        "TF_NUM_INTRAOP_THREADS": str(intra),
        "TF_NUM_INTEROP_THREADS": str(max(1, min(2, intra))),
        "OMP_NUM_THREADS": str(intra),
        # One worker must not take the whole GPU memory from the others.
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }


def configure_worker_environment() -> dict[str, str]:
    """In an xdist worker, set thread caps before TensorFlow is imported.

    Values the user already exported win. Returns what was set.
    """
    workers = xdist_worker_count()
    if workers is None:
        return {}
    applied = {}
    for key, value in worker_thread_env(workers, cpu_count()).items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied
