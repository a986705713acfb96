"""Which process of a pytest-xdist run this is: the one probe every module uses.

pytest-xdist gives each worker's config a ``workerinput`` attribute; the controller
has ``-n``/``--dist`` options and no ``workerinput``. Without pytest-xdist installed
every process is "the only process": not a worker, not a controller.
"""

from __future__ import annotations

from typing import Any


def is_worker(config: Any) -> bool:
    """This process is an xdist worker (it runs tests and reports to a controller)."""
    return hasattr(config, "workerinput")


def is_controller(config: Any) -> bool:
    """This process is the xdist controller (it schedules tests and runs none itself)."""
    if is_worker(config):
        return False
    option = getattr(config, "option", None)
    numprocesses = getattr(option, "numprocesses", None)
    dist = getattr(option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


def owns_run(config: Any) -> bool:
    """This process speaks for the whole run: the controller, or the only process."""
    return not is_worker(config)


def worker_output(config: Any) -> dict | None:
    """The dict a worker sends to the controller when it finishes (None elsewhere)."""
    return getattr(config, "workeroutput", None)
