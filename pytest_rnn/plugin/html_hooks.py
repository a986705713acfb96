"""pytest-html beside pytest-rnn: its report gets pytest-rnn's sections.

When pytest-html is installed, its report (``--html=report.html``) also shows
what ``--rnn-report`` shows besides the outcomes it has itself: the versions and
hardware, the metrics against their baselines with their plot, training curves
and kernel timings. They are added through pytest-html's documented
``pytest_html_results_summary`` hook, below its summary. The hook object is
registered only when pytest-html is loaded, in the process that writes the report
(not in xdist workers), so without pytest-html nothing here is imported or called.
"""

from __future__ import annotations

import pytest


class PytestHtmlHooks:
    """Registered by :func:`register` when pytest-html is loaded."""

    def pytest_html_results_summary(self, prefix, summary, postfix, session) -> None:
        from pytest_rnn.plugin import report

        postfix.append(report.fragment(session.config))


def register(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("html") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(PytestHtmlHooks(), "rnn-html")
