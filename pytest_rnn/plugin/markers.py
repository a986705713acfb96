"""The ``gpu`` and ``slow`` markers and what they do."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_rnn.plugin import options, xdist
from pytest_rnn.runtime import threads
from pytest_rnn.runtime import versions as runtime_versions

MARKERS = {
    "gpu": "gpu: the test needs a visible GPU; skipped without one "
    "(an error for the whole run with --rnn-require-gpu)",
    "slow": "slow: trains real models for minutes; deselect with -m \"not slow\"",
    "cross_backend": "cross_backend: waits for subprocesses that compute on other Keras "
    "backends; run after the other tests so the subprocesses compute beside them",
    "rnn_timing": "rnn_timing: times kernels against rounds stored on a quiet machine; "
    "skipped under pytest-xdist with more than one worker, whose other workers load the "
    "cores it times on",
}

#: How to run the ``rnn_timing`` tests that a multi-worker xdist run skipped.
TIMING_SKIPPED = "pytest-rnn: rnn_timing test skipped under pytest-xdist"
TIMING_UNDER_XDIST = (
    TIMING_SKIPPED + " with {workers} workers: the other workers load the cores it times "
    "on, and its stored rounds were taken on a quiet machine. Run the timing tests in one "
    "process after: pytest -m rnn_timing -p no:xdist")


def requires_keras(feature: str) -> pytest.MarkDecorator:
    """A ``skipif`` mark for tests that pin a Keras feature the installed release predates.

    ``feature`` is a key of :data:`pytest_rnn.runtime.versions.KERAS_FEATURES`; the skip
    reason names the installed release and the first release with the feature.
    """
    reason = runtime_versions.keras_lacks(feature)
    return pytest.mark.skipif(reason is not None, reason=reason or f"Keras has {feature}")


#: The extra that installs TensorFlow, named wherever a TensorFlow-only test skips.
TENSORFLOW_EXTRA = 'pip install "pytest-rnn[tensorflow]"'


def requires_tensorflow(what: str) -> pytest.MarkDecorator:
    """A ``skipif`` mark for a test that needs TensorFlow itself whatever the Keras backend
    (``what`` says why: a ``tf.while_loop`` reference, say), where it is not installed: the
    reason names the extra that installs it. (A JAX or PyTorch project installs none.)"""
    import importlib.util

    missing = importlib.util.find_spec("tensorflow") is None
    return pytest.mark.skipif(missing, reason=f"needs TensorFlow ({what}), which is not "
                                              f"installed: {TENSORFLOW_EXTRA}")


def cross_backend_last(items: list[pytest.Item]) -> None:
    """Move ``cross_backend`` tests to the end (stable): their subprocesses start when
    collection ends and compute while the other tests run, instead of being waited for."""
    waiting = [i for i in items if i.get_closest_marker("cross_backend") is not None]
    if waiting:
        items[:] = [i for i in items if i.get_closest_marker("cross_backend") is None] + waiting


def _bench_case(item: Any) -> Any:
    from pytest_rnn.bench.cases import BenchCase

    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", {}) if callspec is not None else {}
    return next((v for v in params.values() if isinstance(v, BenchCase)), None)


def benchmarks_after_what_they_divide_by(items: list[pytest.Item]) -> None:
    """Kernel benchmarks (tests parametrized with a ``BenchCase``) that read other
    benchmarks' timings run after them, whatever order pytest-randomly shuffled: a cuDNN
    case divides by its group's generic timing, and SimpleRNN's per-step cost by GRU's
    and LSTM's. Stable, within the slots those items already hold; other tests keep theirs."""
    if not any(getattr(item, "callspec", None) is not None for item in items):
        return
    slots = [i for i, item in enumerate(items) if _bench_case(item) is not None]
    if len(slots) < 2:
        return
    ordered = sorted((items[i] for i in slots),
                     key=lambda item: (_bench_case(item).kernel != "generic",
                                       _bench_case(item).kind == "simple_rnn"))
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


def skip_cross_backend(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``cross_backend`` tests, saying which setting did it and how to run them,
    when ``--rnn-skip-cross-backend`` (or its ini key or variable) is on."""
    if not options.get(config).skip_cross_backend:
        return
    where = options.origin(config, "rnn_skip_cross_backend")
    skip = pytest.mark.skip(reason=f"pytest-rnn: cross-backend tests are off ({where}); run "
                            "them with -o rnn_skip_cross_backend=false -m cross_backend")
    for item in items:
        if item.get_closest_marker("cross_backend") is not None:
            item.add_marker(skip)


def skip_timing_beside_other_workers(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker with siblings, skip the ``rnn_timing`` tests, saying how to run
    them (one worker, ``-n 1``, has the machine to itself and times as usual)."""
    workers = threads.xdist_worker_count()
    if workers is None or workers < 2:
        return
    skip = pytest.mark.skip(reason=TIMING_UNDER_XDIST.format(workers=workers))
    for item in items:
        if item.get_closest_marker("rnn_timing") is not None:
            item.add_marker(skip)


def skips_saying(terminalreporter: Any, text: str) -> int:
    """How many tests of the run were skipped with a reason containing ``text``."""
    # longrepr: a (path, line, reason) tuple, or a list after travelling from an xdist worker
    return sum(text in str(getattr(report, "longrepr", ""))
               for report in terminalreporter.stats.get("skipped", []))


def timing_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line when a multi-worker xdist run skipped ``rnn_timing`` tests (the reasons of
    skips are not shown by default)."""
    if xdist.is_worker(config):
        return
    skipped = skips_saying(terminalreporter, TIMING_SKIPPED)
    if skipped:
        terminalreporter.write_line(
            f"pytest-rnn: {skipped} rnn_timing test(s) skipped beside other xdist "
            "workers; time them in one process: pytest -m rnn_timing -p no:xdist",
            yellow=True)


def register(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)


def _describe_framework(backend: str | None) -> str:
    from pytest_rnn.runtime import versions

    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}.get(backend or "",
                                                                               str(backend))
    version = (versions.tensorflow_version() if backend == "tensorflow"
               else versions.package_version(backend or ""))
    return f"{name} {version or '(version unknown)'}"


def no_gpu_reason(backend: str | None) -> str:
    return (
        f"pytest-rnn: @gpu test needs a visible GPU and the Keras backend "
        f"({_describe_framework(backend)}) sees none (run with --rnn-require-gpu to make this "
        "an error)"
    )


def require_gpu_if_asked(config: pytest.Config) -> None:
    """With --rnn-require-gpu (or its ini key / env var), no GPU fails the run at start-up."""
    if not options.get(config).require_gpu or xdist.is_worker(config):
        return
    from pytest_rnn.backends import devices
    from pytest_rnn.runtime import versions

    info = devices.detect()
    if not info.has_gpu:
        build = versions.tensorflow_build_info() if info.backend == "tensorflow" else {}
        cuda = info.cuda_version or build.get("cuda_version")
        raise pytest.UsageError(
            f"pytest-rnn: {options.origin(config, 'rnn_require_gpu')} asks for a GPU but the "
            f"Keras backend ({_describe_framework(info.backend)}, CUDA build {cuda}) sees "
            "none; refusing to run @gpu tests as skips"
        )


def skip_if_no_gpu(item: pytest.Item) -> None:
    """At the set-up of a @gpu test: mark it skipped when the Keras backend sees no GPU.

    Call before pytest's skipping plugin evaluates the marks (a set-up hook wrapper).

    Detection happens here, for the first @gpu test that actually runs, not at
    collection or start-up: a run (or an xdist controller) that runs no @gpu test
    never imports a framework for it, and a project whose Keras backend is JAX or
    PyTorch is asked through that framework, not TensorFlow.
    """
    if item.get_closest_marker("gpu") is None:
        return
    from pytest_rnn.backends import devices

    info = devices.detect()
    if not info.has_gpu:  # a mark, so pytest reports the test's own location
        item.add_marker(pytest.mark.skip(reason=no_gpu_reason(info.backend)))
