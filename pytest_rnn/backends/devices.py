"""Which GPUs the Keras backend's own framework sees: one probe per backend.

``tf.config.list_physical_devices``, ``jax.devices()``, ``torch.cuda``. Each probe
imports its framework only when called and never Keras (the gradient modules beside
this one import Keras with their framework): device detection runs where a test needs
the answer, and in a JAX or PyTorch project it costs no TensorFlow. :func:`module`'s
choice of backend is read the way Keras reads it (``KERAS_BACKEND``, then
``keras.json``), also without importing Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_rnn.runtime import device as runtime_device
from pytest_rnn.runtime import versions

JAX_GPU_PLATFORMS = ("gpu", "cuda", "rocm")


@dataclass(frozen=True)
class Gpus:
    """The GPUs a framework sees, with the CUDA/cuDNN it runs them with (when it says)."""

    names: tuple[str, ...] = ()
    compute_capabilities: tuple[str, ...] = ()
    cuda_version: str | None = None
    cudnn_version: str | None = None


def tensorflow_gpus() -> Gpus:
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    names, capabilities = [], []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are best effort, the GPU still counts
            details = {}
        names.append(str(details.get("device_name") or gpu.name))
        cc = details.get("compute_capability")
        if cc:
            capabilities.append(".".join(str(x) for x in cc))
    return Gpus(tuple(names), tuple(capabilities), build.get("cuda_version"),
                build.get("cudnn_version"))


def jax_gpus() -> Gpus:
    import jax

    gpus = [d for d in jax.devices() if d.platform in JAX_GPU_PLATFORMS]
    capabilities = tuple(str(d.compute_capability) for d in gpus
                         if getattr(d, "compute_capability", None))
    return Gpus(tuple(str(d.device_kind) for d in gpus), capabilities)


def _torch_cudnn_version(torch) -> str | None:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if not version:
        return None
    # 90100 -> 9.1.0 (major * 10000 + minor * 100 + patch since cuDNN 9; * 1000 before)
    major, rest = divmod(int(version), 10000 if version >= 90000 else 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def torch_gpus() -> Gpus:
    import torch

    if not torch.cuda.is_available():
        return Gpus()
    count = torch.cuda.device_count()
    names = tuple(torch.cuda.get_device_name(i) for i in range(count))
    capabilities = tuple(".".join(map(str, torch.cuda.get_device_capability(i)))
                         for i in range(count))
    return Gpus(names, capabilities, torch.version.cuda, _torch_cudnn_version(torch))


#: Keras backend name -> its probe.
PROBES = {"tensorflow": tensorflow_gpus, "jax": jax_gpus, "torch": torch_gpus}


def visible_gpus(backend: str | None = None) -> Gpus:
    """The GPUs ``backend``'s framework sees (default: the configured Keras backend)."""
    name = backend or versions.keras_backend_name()
    if name not in PROBES:
        raise ValueError(
            f"pytest-rnn: unknown Keras backend {name!r}; known: {', '.join(PROBES)}"
        )
    return PROBES[name]()


_DETECTED: list[runtime_device.DeviceInfo] = []


def detect() -> runtime_device.DeviceInfo:
    """The GPUs the configured Keras backend sees; asked once per process, when needed.

    Imports that backend's framework: call it only where a test needs the answer
    (``rnn_device``, a ``@gpu`` test's set-up, ``--rnn-require-gpu``), never at
    plugin load or in the run header.
    """
    if not _DETECTED:
        backend = versions.keras_backend_name()
        gpus = visible_gpus(backend)
        names = gpus.names
        # One source for the names in the device key: nvidia-smi's, as host_device_key()
        # (used without any framework) reads them, when it lists the same GPUs.
        inventory = tuple(g["name"] for g in runtime_device.gpu_inventory()) if names else ()
        if len(inventory) == len(names):
            names = inventory
        _DETECTED.append(runtime_device.DeviceInfo(
            has_gpu=bool(names),
            gpu_names=names,
            cuda_version=gpus.cuda_version,
            cudnn_version=gpus.cudnn_version or (
                runtime_device.backend_cudnn(backend) if names else None),
            compute_capabilities=gpus.compute_capabilities,
            backend=backend,
        ))
    return _DETECTED[0]


def detected() -> runtime_device.DeviceInfo | None:
    """What :func:`detect` found in this process, or None if nothing asked (costs nothing)."""
    return _DETECTED[0] if _DETECTED else None
