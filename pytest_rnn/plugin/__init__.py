"""pytest-rnn's pytest hooks. Each hook is short; the logic lives in named modules.

Loaded through the ``pytest11`` entry point (``rnn = pytest_rnn.plugin``), so every
pytest run in an environment where pytest-rnn is installed gets its markers, options
and fixtures. This subpackage is the only part of pytest-rnn that imports pytest:
``options`` (settings), ``fixtures``, ``markers``, ``header`` (run header and
device lines), ``records`` (what tests report, gathered across xdist workers),
``baselines`` (the ``rnn_baseline`` fixture over :mod:`pytest_rnn.store`),
``benchmarks`` (pytest-benchmark glue over :mod:`pytest_rnn.bench`), ``report``
(the HTML report) and ``xdist`` (the one "which process am I" probe); ``cmdline``
(``--opt value`` forms that must not move pytest's rootdir), and the hooks registered
only beside other plugins: ``randomly`` (pytest-randomly) and ``html_hooks``
(pytest-html).
"""

from __future__ import annotations

import os
import sys

import pytest

from pytest_rnn.plugin import (
    cmdline,
    header,
    html_hooks,
    ledger,
    markers,
    options,
    randomly,
    records,
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

# baselines, benchmarks and report are imported only by the runs that use them (a
# fixture, a record, --rnn-report, pytest-benchmark's storage): a run that uses no
# part of pytest-rnn pays for none of them (benchmarks/startup.py measures it).


def _imported(name: str):
    """``pytest_rnn.plugin.<name>`` if this process imported it (a fixture used it), else None."""
    return sys.modules.get(f"{__name__}.{name}")


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
    randomly.register(config)  # rnn_seed's draws survive pytest-randomly's reseeding
    html_hooks.register(config)  # pytest-html's report gets pytest-rnn's sections
    if config.pluginmanager.has_plugin("cacheprovider"):  # JAX keeps compiled programs there
        from pytest_rnn.runtime import compile_cache

        cache_dir = os.path.expandvars(os.path.expanduser(config.getini("cache_dir")))
        compile_cache.keep_jax_compilations(config.rootpath / cache_dir)
    storage = getattr(config.option, "benchmark_storage", None)
    if isinstance(storage, str) and "{" in storage:
        from pytest_rnn.plugin import benchmarks

        benchmarks.expand_benchmark_storage(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return header.lines(config) + ledger.header_lines()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):
    markers.skip_if_no_gpu(item)  # before pytest's skipping plugin reads the marks
    return (yield)


@pytest.hookimpl(trylast=True)  # after plugins that reorder (pytest-randomly)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ledger.mark_known_defects(items)
    markers.cross_backend_last(items)
    markers.benchmarks_after_what_they_divide_by(items)
    markers.skip_cross_backend(config, items)
    markers.skip_timing_beside_other_workers(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the contract's cross-backend subprocesses early (only when a contract class was
    collected, so its module, and Keras, are imported already)."""
    import os
    import sys

    contract = sys.modules.get("pytest_rnn.checks.contract")
    if contract is None or os.environ.get("PYTEST_XDIST_WORKER") \
            or session.config.option.collectonly or options.get(session.config).skip_cross_backend:
        return
    contract.start_cross_backend(session)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if options.get(config).report is not None:
        from pytest_rnn.plugin import report

        report.write_if_asked(terminalreporter, exitstatus, config)  # first: needs no other
    header.summary(terminalreporter, config)
    if terminalreporter.stats.get("skipped"):
        markers.timing_summary(terminalreporter, config)
    if len(records.of(config)) or terminalreporter.stats.get("skipped"):
        from pytest_rnn.plugin import baselines, benchmarks

        baselines.summary(terminalreporter, config)
        benchmarks.summary(terminalreporter, config)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield  # outermost: pytest's xfail handling has already judged the call
    ledger.check_message(item, call, report)
    if (baselines := _imported("baselines")) is not None:
        baselines.after_report(item, report)
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """pytest-benchmark's hook (optional: the plugin loads without pytest-benchmark)."""
    from pytest_rnn.plugin import benchmarks

    benchmarks.update_machine_info(config, machine_info)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    header.collect_worker_devices(node)
    records.collect_from_worker(node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    header.publish_worker_device(session.config)
    records.publish_from_worker(session.config)
    if len(records.of(session.config)):
        from pytest_rnn.plugin import baselines

        baselines.write_updates(session)
