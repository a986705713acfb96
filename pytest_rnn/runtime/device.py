"""The hardware a run has, and the short key that baselines are stored under."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class DeviceInfo:
    """What TensorFlow can compute on in this process.

    ``key`` is stable across runs on the same kind of host (``cpu``, or e.g.
    ``gpu-NVIDIA-H100-80GB-HBM3-cudnn9``) and is what hardware-dependent baselines
    (timings, cuDNN speedups) are keyed by.
    """

    has_gpu: bool
    gpu_names: tuple[str, ...] = ()
    cuda_version: str | None = None
    cudnn_version: str | None = None
    compute_capabilities: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return device_key(self.gpu_names, self.cudnn_version)

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
        }


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


def device_key(gpu_names: tuple[str, ...] | list[str], cudnn_version: str | None) -> str:
    """``cpu`` without a GPU, else ``gpu-<first GPU name>[-xN]-cudnn<major>``."""
    if not gpu_names:
        return "cpu"
    name = _slug(gpu_names[0]) or "unknown"
    count = f"-x{len(gpu_names)}" if len(gpu_names) > 1 else ""
    major = str(cudnn_version or "unknown").split(".")[0]
    return f"gpu-{name}{count}-cudnn{major}"


@lru_cache(maxsize=1)
def detect() -> DeviceInfo:
    """Ask TensorFlow (imports it) which GPUs are visible; cached per process."""
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    names, capabilities = [], []
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are best effort, the GPU still counts
            details = {}
        names.append(str(details.get("device_name") or gpu.name))
        cc = details.get("compute_capability")
        if cc:
            capabilities.append(".".join(str(x) for x in cc))
    return DeviceInfo(
        has_gpu=bool(gpus),
        gpu_names=tuple(names),
        cuda_version=build.get("cuda_version"),
        cudnn_version=build.get("cudnn_version"),
        compute_capabilities=tuple(capabilities),
    )


@contextmanager
def full_float32() -> Iterator[None]:
    """Run float32 matmuls (cuBLAS and cuDNN) in full float32 inside the block.

    On Ampere and newer GPUs TensorFlow computes float32 matmuls in TF32 by default:
    inputs rounded to a 10-bit mantissa, ~5e-4 relative error per product. Two
    computations that should agree (a layer and its NumPy reference, the cuDNN and the
    generic kernel, masked and unpadded inputs) then differ by ~1e-3 after a few steps,
    too much for the tolerances that catch a dropped bias or swapped gates. The previous
    setting is restored on exit. On CPU TF32 does not exist and this changes nothing.
    """
    import tensorflow as tf

    was = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(was)
