"""What the host is, without TensorFlow: GPUs from ``nvidia-smi``, the device key, and
the machine info pytest-rnn adds to saved benchmark runs."""

from __future__ import annotations

from typing import Any

from pytest_rnn.runtime import device
from pytest_rnn.runtime import versions as runtime_versions


def machine_info(gpus: list[dict[str, str]], versions: dict[str, Any]) -> dict[str, Any]:
    """What pytest-rnn adds to a saved benchmark run's ``machine_info["pytest_rnn"]``."""
    names = [g["name"] for g in gpus]
    drivers = sorted({g["driver"] for g in gpus})
    backend = versions.get("backend")
    cudnn = device.backend_cudnn(backend, versions.get("cudnn_build"))
    return {
        "device_key": device.device_key(names, cudnn, backend),
        "gpus": names,
        "gpu_driver": ", ".join(drivers) if drivers else None,
        "cuda_build": versions.get("cuda_build"),
        "cudnn_build": versions.get("cudnn_build"),
        "cuda_runtime_package": next(filter(None, map(runtime_versions.package_version, (
            "nvidia-cuda-runtime", "nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu12"))),
            None),
        "cudnn_runtime_package": runtime_versions.cudnn_package_version(),
        "tensorflow": versions.get("tensorflow"),
        "keras": versions.get("keras"),
        "keras_backend": versions.get("backend"),
    }
