"""pytest-rnn's pytest hooks. Each hook is short; the logic lives in named modules.

Loaded through the ``pytest11`` entry point, so every pytest run in an
environment where pytest-rnn is installed gets its markers, options and fixtures.
"""

from __future__ import annotations

import pytest

from pytest_rnn import (
    baselines,
    benchmarking,
    markers,
    options,
    records,
    report,
    report_header,
    runtime,
)
from pytest_rnn.fixtures import (  # noqa: F401 - fixtures are registered by import
    imdb_subset,
    rnn_baseline,
    rnn_device,
    rnn_float32,
    rnn_record,
    rnn_rng,
    rnn_seed,
    toy_task,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.register(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    runtime.configure_worker_environment()
    markers.register(config)
    options.store(config, options.validate(config))
    markers.require_gpu_if_asked(config)
    benchmarking.expand_benchmark_storage(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return report_header.lines(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    markers.skip_gpu_tests_without_gpu(items)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    report.write_if_asked(terminalreporter, exitstatus, config)  # first: needs no other summary
    report_header.summary(terminalreporter, config)
    baselines.summary(terminalreporter, config)
    benchmarking.summary(terminalreporter, config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    baselines.after_report(item, report)
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """pytest-benchmark's hook (optional: the plugin loads without pytest-benchmark)."""
    benchmarking.update_machine_info(config, machine_info)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    report_header.collect_worker_devices(node)
    records.collect_from_worker(node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    report_header.publish_worker_device(session.config)
    records.publish_from_worker(session.config)
    baselines.write_updates(session)
