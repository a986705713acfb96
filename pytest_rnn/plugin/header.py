"""The run's header and end-of-run environment lines.

In a plain run the header asks TensorFlow for the visible devices. In the
pytest-xdist controller it does not import TensorFlow (the workers do); each
worker reports the devices it saw and the controller prints them at the end.
"""

from __future__ import annotations

import pytest

from pytest_rnn.plugin import options, xdist
from pytest_rnn.runtime import versions as runtime_versions

_WORKER_DEVICES = pytest.StashKey[dict]()


def lines(config: pytest.Config) -> list[str]:
    from pytest_rnn.runtime import device

    versions = runtime_versions.versions()
    settings = options.get(config)
    out = [
        "pytest-rnn: TensorFlow {tensorflow}, Keras {keras}, backend {backend}; "
        "built with CUDA {cuda_build}, cuDNN {cudnn_build}".format(**versions),
    ]
    if xdist.is_controller(config):
        out.append("pytest-rnn: devices: probed by each xdist worker (listed after the run)")
    else:
        info = device.detect()
        out.append(f"pytest-rnn: devices: {info.describe()} (key {info.key})")
    out.append(
        f"pytest-rnn: base seed {settings.seed}"
        + (", TF op determinism on" if settings.deterministic else "")
        + f"; baselines {settings.baselines}"
        + (" (updating)" if settings.update_baselines else "")
    )
    return out


def publish_worker_device(config: pytest.Config) -> None:
    """In an xdist worker, send what it saw to the controller (only if TF was used)."""
    workeroutput = xdist.worker_output(config)
    if workeroutput is None:
        return
    from pytest_rnn.runtime import device

    if runtime_versions.tensorflow_imported():
        workeroutput["rnn_device"] = device.detect().as_dict()


def collect_worker_devices(node) -> None:
    data = getattr(node, "workeroutput", {}).get("rnn_device")
    if data:
        seen = node.config.stash.setdefault(_WORKER_DEVICES, {})
        seen[node.gateway.id] = data


def worker_devices(config: pytest.Config) -> dict[str, dict]:
    """xdist worker id -> :meth:`DeviceInfo.as_dict` of the workers that used TensorFlow."""
    return dict(config.stash.get(_WORKER_DEVICES, {}))


def summary(terminalreporter, config: pytest.Config) -> None:
    seen = worker_devices(config)
    if not seen:
        return
    keys = sorted({d["key"] for d in seen.values()})
    names = sorted({n for d in seen.values() for n in d["gpu_names"]}) or ["CPU only"]
    terminalreporter.write_line(
        f"pytest-rnn: {len(seen)} xdist worker(s) ran on {', '.join(names)} "
        f"(device key {', '.join(keys)})"
    )
