"""The run's header and end-of-run environment lines.

The header costs no framework import: versions come from package metadata
(:func:`pytest_rnn.runtime.versions.versions`). Devices are detected only when a
test needs them (``rnn_device``, ``@gpu``, a hardware-keyed baseline); the end of
the run lists what was detected, by this process or by each xdist worker.
"""

from __future__ import annotations

import sys

import pytest

from pytest_rnn.plugin import options, xdist
from pytest_rnn.runtime import versions as runtime_versions

_WORKER_DEVICES = pytest.StashKey[dict]()


def detected_devices():
    """What a test of this process detected (:func:`pytest_rnn.backends.devices.detected`),
    or None.

    Free when nothing detected: without a detection :mod:`pytest_rnn.backends.devices`
    was never imported, and is not imported here either.
    """
    devices = sys.modules.get("pytest_rnn.backends.devices")
    return devices.detected() if devices is not None else None


def lines(config: pytest.Config) -> list[str]:
    versions = runtime_versions.versions()
    settings = options.get(config)
    out = [
        "pytest-rnn: TensorFlow {tensorflow}, Keras {keras}, backend {backend}; "
        "built with CUDA {cuda_build}, cuDNN {cudnn_build}".format(**versions),
    ]
    info = detected_devices()
    if info is not None:  # e.g. --rnn-require-gpu asked at start-up
        out.append(f"pytest-rnn: devices: {info.describe()} (key {info.key})")
    out.append(
        f"pytest-rnn: base seed {settings.seed}"
        + (", TF op determinism on" if settings.deterministic else "")
        + f"; baselines {settings.baselines}"
        + (" (updating)" if settings.update_baselines else "")
    )
    return out


def publish_worker_device(config: pytest.Config) -> None:
    """In an xdist worker, send the devices it detected (if a test needed them)."""
    workeroutput = xdist.worker_output(config)
    if workeroutput is None:
        return
    info = detected_devices()
    if info is not None:
        workeroutput["rnn_device"] = info.as_dict()


def collect_worker_devices(node) -> None:
    data = getattr(node, "workeroutput", {}).get("rnn_device")
    if data:
        seen = node.config.stash.setdefault(_WORKER_DEVICES, {})
        seen[node.gateway.id] = data


def worker_devices(config: pytest.Config) -> dict[str, dict]:
    """xdist worker id -> :meth:`DeviceInfo.as_dict` of the workers that detected devices."""
    return dict(config.stash.get(_WORKER_DEVICES, {}))


def summary(terminalreporter, config: pytest.Config) -> None:
    seen = worker_devices(config)
    info = detected_devices()
    if not seen:
        if info is not None and not xdist.is_worker(config):
            terminalreporter.write_line(
                f"pytest-rnn: devices: {info.describe()} (key {info.key}, "
                f"seen by {info.backend})"
            )
        return
    keys = sorted({d["key"] for d in seen.values()})
    names = sorted({n for d in seen.values() for n in d["gpu_names"]}) or ["CPU only"]
    terminalreporter.write_line(
        f"pytest-rnn: {len(seen)} xdist worker(s) ran on {', '.join(names)} "
        f"(device key {', '.join(keys)})"
    )
