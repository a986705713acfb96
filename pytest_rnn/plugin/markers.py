"""The ``gpu`` and ``slow`` markers and what they do."""

from __future__ import annotations

import pytest

from pytest_rnn.plugin import options, xdist
from pytest_rnn.runtime import versions as runtime_versions

MARKERS = {
    "gpu": "gpu: the test needs a visible GPU; skipped without one "
    "(an error for the whole run with --rnn-require-gpu)",
    "slow": "slow: trains real models for minutes; deselect with -m \"not slow\"",
}

NO_GPU_REASON = (
    "pytest-rnn: @gpu test needs a visible GPU and TensorFlow sees none "
    "(run with --rnn-require-gpu to make this an error)"
)


def register(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)


def require_gpu_if_asked(config: pytest.Config) -> None:
    """With --rnn-require-gpu, a host without a GPU fails the whole run at start-up."""
    if not options.get(config).require_gpu or xdist.is_worker(config):
        return
    from pytest_rnn.runtime import device

    info = device.detect()
    if not info.has_gpu:
        raise pytest.UsageError(
            "pytest-rnn: --rnn-require-gpu is set but TensorFlow sees no GPU "
            f"(TensorFlow {runtime_versions.tensorflow_version()}, CUDA build "
            f"{runtime_versions.tensorflow_build_info().get('cuda_version')}); refusing to run "
            "@gpu tests as skips"
        )


def skip_gpu_tests_without_gpu(items: list[pytest.Item]) -> None:
    """Mark @gpu tests as skipped when no GPU is visible.

    Runs at collection, which under pytest-xdist happens in the workers only, so the
    controller never imports TensorFlow for it; TensorFlow is not imported at all
    when no @gpu test was collected.
    """
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    from pytest_rnn.runtime import device

    if device.detect().has_gpu:
        return
    skip = pytest.mark.skip(reason=NO_GPU_REASON)
    for item in gpu_items:
        item.add_marker(skip)
