"""``--rnn-report PATH``: one self-contained HTML file a person can read after a run.

What it shows, from the run's records (:mod:`pytest_rnn.records`) and outcomes:

* test outcome counts and the failures' one-line reasons;
* the hardware key and versions the numbers were measured with;
* every metric checked against a stored baseline (records of kind ``baseline``):
  measured value, baseline, allowed band and status, plotted per metric;
* training curves of the slow suites (kind ``curve``: every list of numbers in a
  record's data is one curve, ``val_x`` drawn beside ``x``);
* cuDNN against generic kernels (kinds ``speedup`` and ``timing``);
* any other record kind as a table.

The file has no external references: CSS is inline and the plots are PNGs made
with matplotlib and embedded as base64 ``data:`` URIs, so it can be attached to a
CI run and opened anywhere. matplotlib is optional (the ``report`` extra); without
it the report still has every table and says that the plots need the extra.

It is written by the process that owns the run (the only process, or the
pytest-xdist controller, which by then holds every worker's records), from
``pytest_terminal_summary`` so the outcome counts are final.

This module is the report's public face and its hook (:func:`write_if_asked`); the
content is gathered by :mod:`~pytest_rnn.plugin.report_data`, read out of the records
by :mod:`~pytest_rnn.plugin.report_values`, drawn by :mod:`~pytest_rnn.plugin.report_plots`
and written as HTML by :mod:`~pytest_rnn.plugin.report_html`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_rnn.plugin import options, xdist
from pytest_rnn.plugin.report_data import (  # noqa: F401 - this module's names
    OUTCOMES,
    ReportData,
    collect,
    environment,
)
from pytest_rnn.plugin.report_data import run_devices as _devices  # noqa: F401 - likewise
from pytest_rnn.plugin.report_html import fragment, render, sections  # noqa: F401 - likewise
from pytest_rnn.plugin.report_plots import (  # noqa: F401 - likewise
    MAX_PLOTTED,
    PLOTS_NEED_EXTRA,
    SPEEDUP_FIELDS,
    TIMING_FIELDS,
    matplotlib_available,
    plot_bars,
    plot_baselines,
    plot_curves,
    plot_kernel_timings,
)
from pytest_rnn.plugin.report_values import (  # noqa: F401 - likewise
    X_AXIS_FIELDS,
    series_of,
    x_axis,
)
from pytest_rnn.plugin.report_values import metric_groups as _metric_groups  # noqa: F401
from pytest_rnn.runtime import versions as runtime_versions  # noqa: F401 - likewise


def write_if_asked(terminalreporter, exitstatus: int, config: pytest.Config) -> Path | None:
    """Write the report when ``--rnn-report`` is given, in the process that owns the run."""
    path = options.get(config).report
    if path is None or xdist.is_worker(config):
        return None
    text = render(collect(config, terminalreporter.stats, exitstatus))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        terminalreporter.write_line(
            f"pytest-rnn: could not write the HTML report to {path}: {exc}", red=True
        )
        return None
    terminalreporter.write_line(f"pytest-rnn: HTML report written to {path}")
    return path
