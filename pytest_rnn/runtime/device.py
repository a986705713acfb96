"""The hardware a run has, and the short key that baselines are stored under."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_rnn.runtime import versions as runtime_versions


@dataclass(frozen=True)
class DeviceInfo:
    """The GPUs the Keras backend's framework can compute on in this process.

    ``key`` is stable across runs on the same kind of host (``cpu``, or e.g.
    ``gpu-NVIDIA-H100-80GB-HBM3-cudnn9``) and is what hardware-dependent baselines
    (timings, cuDNN speedups) are keyed by.
    """

    has_gpu: bool
    gpu_names: tuple[str, ...] = ()
    cuda_version: str | None = None
    cudnn_version: str | None = None
    compute_capabilities: tuple[str, ...] = field(default=())
    backend: str | None = None

    @property
    def key(self) -> str:
        return device_key(self.gpu_names, self.cudnn_version, self.backend)

    def describe(self) -> str:
        if not self.has_gpu:
            return "CPU only (no visible GPU)"
        return ", ".join(self.gpu_names)

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "has_gpu": self.has_gpu,
            "gpu_names": list(self.gpu_names),
            "cuda_version": self.cuda_version,
            "cudnn_version": self.cudnn_version,
            "compute_capabilities": list(self.compute_capabilities),
            "backend": self.backend,
        }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def device_key(gpu_names: tuple[str, ...] | list[str], cudnn_version: str | None,
               backend: str | None = None) -> str:
    """``cpu`` without a GPU, else ``gpu-<first GPU name>[-xN]-cudnn<major>``, followed by
    ``-<backend>`` for a Keras backend other than TensorFlow: a GPU's kernels run as
    differently compiled programs under each backend (``tf.function``, ``jax.jit``, eager
    PyTorch), so their timings are kept apart. (A CPU's entries carry the backend in
    their baseline key already; ``cpu`` stays the key TensorFlow's CPU baselines have.)"""
    if not gpu_names:
        return "cpu"
    name = _slug(gpu_names[0]) or "unknown"
    count = f"-x{len(gpu_names)}" if len(gpu_names) > 1 else ""
    major = str(cudnn_version or "unknown").split(".")[0]
    suffix = f"-{backend}" if backend and backend != "tensorflow" else ""
    return f"gpu-{name}{count}-cudnn{major}{suffix}"


def gpu_inventory(run: Callable[..., Any] = subprocess.run) -> list[dict[str, str]]:
    """GPUs from ``nvidia-smi`` (name, driver, uuid), restricted to CUDA_VISIBLE_DEVICES.

    Empty without ``nvidia-smi`` or when it fails: a host without NVIDIA GPUs.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = run([exe, "--query-gpu=index,name,driver_version,uuid",
                    "--format=csv,noheader"], capture_output=True, text=True, timeout=20,
                   check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    gpus = [
        {"index": row[0], "name": row[1], "driver": row[2], "uuid": row[3]}
        for row in csv.reader(done.stdout.splitlines(), skipinitialspace=True)
        if len(row) >= 4
    ]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    if not wanted or wanted[0] == "-1":
        return []
    chosen = []
    for token in wanted:
        chosen += [g for g in gpus if token in (g["index"], g["uuid"]) and g not in chosen]
    return chosen


def backend_cudnn(backend: str | None, tensorflow_build: str | None = None) -> str | None:
    """The cuDNN a Keras backend loads, without importing it: TensorFlow's build info
    (``tensorflow_build`` when the caller has read it) on TensorFlow, else the installed
    ``nvidia-cudnn-cu*`` wheel (which JAX's and PyTorch's CUDA wheels load). The one rule
    behind every device key's cuDNN."""
    if backend in (None, "tensorflow"):
        if tensorflow_build is None:
            tensorflow_build = runtime_versions.tensorflow_build_info().get("cudnn_version")
        return tensorflow_build
    return runtime_versions.cudnn_package_version()


def host_device_key() -> str:
    """The device key of this host for the configured Keras backend, without importing any
    framework: GPUs from ``nvidia-smi``, cuDNN by :func:`backend_cudnn`."""
    backend = runtime_versions.keras_backend_name()
    return device_key([g["name"] for g in gpu_inventory()], backend_cudnn(backend), backend)


@contextmanager
def full_float32() -> Iterator[None]:
    """Run float32 matmuls (cuBLAS and cuDNN) in full float32 inside the block.

    On Ampere and newer GPUs TensorFlow computes float32 matmuls in TF32 by default:
    inputs rounded to a 10-bit mantissa, ~5e-4 relative error per product. Two
    computations that should agree (a layer and its NumPy reference, the cuDNN and the
    generic kernel, masked and unpadded inputs) then differ by ~1e-3 after a few steps,
    too much for the tolerances that catch a dropped bias or swapped gates. The previous
    setting is restored on exit. On CPU TF32 does not exist and this changes nothing.
    TensorFlow's switch; :func:`pytest_rnn.backends.full_float32` is the active backend's.
    """
    import tensorflow as tf

    was = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(was)
