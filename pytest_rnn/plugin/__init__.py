"""pytest-rnn's pytest hooks. Each hook is short; the logic lives in named modules.

Loaded through the ``pytest11`` entry point (``rnn = pytest_rnn.plugin``), so every
pytest run in an environment where pytest-rnn is installed gets its markers, options
and fixtures. This subpackage is the only part of pytest-rnn that imports pytest:
``options`` (settings), ``fixtures``, ``markers``, ``header`` (run header and
device lines), ``records`` (what tests report, gathered across xdist workers),
``baselines`` (the ``rnn_baseline`` fixture over :mod:`pytest_rnn.store`),
``benchmarks`` (pytest-benchmark glue over :mod:`pytest_rnn.bench`), ``report``
(the HTML report) and ``xdist`` (the one "which process am I" probe).
"""

from __future__ import annotations

import pytest

from pytest_rnn.plugin import (
    baselines,
    benchmarks,
    cmdline,
    header,
    markers,
    options,
    records,
    report,
)
from pytest_rnn.plugin.fixtures import (  # noqa: F401 - fixtures are registered by import
    imdb_subset,
    rnn_baseline,
    rnn_device,
    rnn_float32,
    rnn_record,
    rnn_rng,
    rnn_seed,
    toy_task,
)
from pytest_rnn.runtime import threads


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    cmdline.repair(early_config, args)  # before conftests and test paths are decided


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    threads.configure_worker_environment()
    markers.register(config)
    options.store(config, options.validate(config))
    markers.require_gpu_if_asked(config)
    benchmarks.expand_benchmark_storage(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return header.lines(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    markers.skip_gpu_tests_without_gpu(items)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    report.write_if_asked(terminalreporter, exitstatus, config)  # first: needs no other summary
    header.summary(terminalreporter, config)
    baselines.summary(terminalreporter, config)
    benchmarks.summary(terminalreporter, config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    baselines.after_report(item, report)
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """pytest-benchmark's hook (optional: the plugin loads without pytest-benchmark)."""
    benchmarks.update_machine_info(config, machine_info)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    header.collect_worker_devices(node)
    records.collect_from_worker(node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    header.publish_worker_device(session.config)
    records.publish_from_worker(session.config)
    baselines.write_updates(session)
