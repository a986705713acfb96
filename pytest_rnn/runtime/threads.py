"""Thread caps for xdist workers, set before any test module imports TensorFlow.

``-n N`` starts N processes on the same cores; without caps each TensorFlow would
size its pools for the whole machine and they would oversubscribe it.
"""

from __future__ import annotations

import os

THREAD_ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


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
