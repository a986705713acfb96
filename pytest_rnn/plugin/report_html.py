"""The report's HTML: its sections, the whole document (:func:`render`) and the fragment
pytest-html's report embeds (:func:`fragment`).

The document is self-contained: CSS inline, plots as base64 PNG ``data:`` URIs
(:mod:`~pytest_rnn.plugin.report_plots`). Without matplotlib every table is still
there, and each plot is replaced by a note saying it needs the ``report`` extra.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from pytest_rnn.plugin.baseline_session import status_of
from pytest_rnn.plugin.records import Kind, Record
from pytest_rnn.plugin.report_data import OUTCOMES, ReportData, collect
from pytest_rnn.plugin.report_plots import (
    PLOTS_NEED_EXTRA,
    SPEEDUP_FIELDS,
    matplotlib_available,
    plot_bars,
    plot_baselines,
    plot_curves,
    plot_kernel_timings,
    png,
)
from pytest_rnn.plugin.report_values import fmt, is_number, scalars, series_of

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1d2330; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccd; padding-bottom: 0.2em; margin-top: 2em; }
p.meta, p.note { color: #556; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; max-width: 100%; }
th, td { border: 1px solid #ccd; padding: 0.25em 0.6em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
td { white-space: pre-wrap; }  /* messages keep their lines (record commands, weight tables) */
th { background: #f0f2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fde8e8; }
tr.new td { background: #eef6ff; }
.status-ok, .status-passed { color: #17702f; font-weight: 600; }
.status-bad { color: #b3261e; font-weight: 600; }
img.plot { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
code { font-size: 0.95em; overflow-wrap: anywhere; }
"""


def _e(value: Any) -> str:
    return html.escape(fmt(value), quote=True)


def _table(headers: Sequence[str] | None, rows: Iterable[tuple[Sequence[Any], str]]) -> str:
    """A table; each row is ``(cells, css class)``; numbers align right."""
    out = ["<table>"]
    if headers:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>")
    for cells, css in rows:
        tds = "".join(
            f'<td class="num">{_e(c)}</td>' if is_number(c) else f"<td>{_e(c)}</td>"
            for c in cells
        )
        out.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _plot_html(make, rows, alt: str, *args, **kwargs) -> str:
    if not rows:
        return ""
    if not matplotlib_available():
        return f'<p class="note">{html.escape(PLOTS_NEED_EXTRA)}</p>'
    try:
        fig = make(rows, *args, **kwargs)
        if fig is None:
            return ""
        data = png(fig)
    except Exception as exc:  # noqa: BLE001 - a plot must not cost the whole report
        return f'<p class="note">The plot could not be drawn: {html.escape(repr(exc))}</p>'
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _outcomes_html(data: ReportData) -> str:
    cells = "".join(
        f'<tr><th>{o}</th><td class="num" id="count-{o}">{data.outcomes.get(o, 0)}</td></tr>'
        for o in OUTCOMES
    )
    out = [f"<table>{cells}</table>"]
    if data.failures:
        out.append("<h3>Failures and errors</h3>")
        out.append(_table(["test", "outcome", "reason"],
                          (((n, o, w), "bad") for n, o, w in data.failures)))
    return "\n".join(out)


def _baselines_html(rows: list[Record]) -> str:
    if not rows:
        return '<p class="note">No metric was checked against a baseline in this run.</p>'
    table_rows = []
    for r in rows:
        d = r.data
        status = status_of(d).value
        css = "bad" if not d.get("passed") else ("new" if d.get("updated") else "")
        table_rows.append(((r.nodeid, r.name, d.get("value"), d.get("baseline"), d.get("bound"),
                            status, d.get("file")), css))
    table = _table(["test", "metric", "measured", "baseline", "allowed", "status", "file"],
                   table_rows)
    plot = _plot_html(plot_baselines, rows, "each metric's measured value against its band")
    return plot + "\n" + table


def _curves_html(rows: list[Record]) -> str:
    if not rows:
        return '<p class="note">No training curves were recorded in this run (the slow suites ' \
               'record them; run with -m slow).</p>'
    table_rows = []
    for r in rows:
        series = series_of(r.data)
        summary = "; ".join(
            f"{name}: {fmt(values[0])} -> {fmt(values[-1])} ({len(values)} points)"
            for name, values in series.items()
        )
        extra = ", ".join(f"{k}={fmt(v)}" for k, v in scalars(r.data).items())
        table_rows.append(((r.nodeid, r.name, summary, extra), ""))
    plotted = [r for r in rows if series_of(r.data)]
    plot = _plot_html(plot_curves, plotted, "training curves per model")
    return plot + "\n" + _table(["test", "curve", "first -> last", "details"], table_rows)


def _kind_table(rows: list[Record]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in scalars(r.data) if k not in keys]
    return _table(["test", "name", *keys],
                  (((r.nodeid, r.name, *(scalars(r.data).get(k) for k in keys)), "")
                   for r in rows))


def _kernels_html(speedups: list[Record], timings: list[Record]) -> str:
    if not speedups and not timings:
        return '<p class="note">No cuDNN/generic kernel comparison ran (they are GPU tests: ' \
               'run with -m gpu on a GPU host).</p>'
    out = []
    if speedups:
        out.append("<h3>Speedups (generic time / cuDNN time: above 1, cuDNN is faster)</h3>")
        out.append(_plot_html(plot_bars, speedups, "cuDNN speedup per configuration",
                              SPEEDUP_FIELDS, reference=1.0, xlabel="speedup (x)"))
        out.append(_kind_table(speedups))
    if timings:
        out.append("<h3>Timings</h3>")
        out.append(_plot_html(plot_kernel_timings, timings, "time per kernel and configuration"))
        out.append(_kind_table(timings))
    return "\n".join(out)


def sections(data: ReportData) -> list[tuple[str, str, str]]:
    """``(id, title, HTML)`` of each section: outcomes, environment, baselines, curves,
    kernels and any other record kinds. Shared by :func:`render` and :func:`fragment`."""
    by_kind: dict[str, list[Record]] = {}
    for record in data.records:
        by_kind.setdefault(record.kind, []).append(record)
    known = {Kind.BASELINE, Kind.CURVE, Kind.SPEEDUP, Kind.TIMING}
    others = {k: v for k, v in by_kind.items() if k not in known}
    env = _table(None, ((row, "") for row in data.environment))
    out = [
        ("outcomes", "Test outcomes", _outcomes_html(data)),
        ("environment", "Hardware and versions", env),
        ("baselines", "Metrics against their baselines", _baselines_html(
            by_kind.get(Kind.BASELINE, []))),
        ("curves", "Training curves", _curves_html(by_kind.get(Kind.CURVE, []))),
        ("kernels", "cuDNN vs generic kernels", _kernels_html(
            by_kind.get(Kind.SPEEDUP, []), by_kind.get(Kind.TIMING, []))),
    ]
    if others:
        out.append(("other", "Other records", "\n".join(
            f"<h3>{html.escape(kind)}</h3>\n{_kind_table(rows)}" for kind, rows in others.items()
        )))
    return out


#: The same look inside another report (pytest-html's): every rule scoped to the fragment.
_FRAGMENT_STYLE = """
.pytest-rnn table { border-collapse: collapse; margin: 0.8em 0; max-width: 100%; }
.pytest-rnn th, .pytest-rnn td { border: 1px solid #ccd; padding: 0.25em 0.6em;
    text-align: left; vertical-align: top; overflow-wrap: anywhere; }
.pytest-rnn td { white-space: pre-wrap; }
.pytest-rnn th { background: #f0f2f7; }
.pytest-rnn td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pytest-rnn tr.bad td { background: #fde8e8; }
.pytest-rnn tr.new td { background: #eef6ff; }
.pytest-rnn img.plot { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
"""


def fragment(config: pytest.Config) -> str:
    """pytest-rnn's sections (versions, baselines, curves, kernels, plots) as one ``<div>``
    for another report; the outcomes are left to that report."""
    data = collect(config, {}, 0)
    body = "\n".join(
        f'<section id="pytest-rnn-{sid}">\n<h3>pytest-rnn: {html.escape(title)}</h3>\n'
        f"{content}\n</section>"
        for sid, title, content in sections(data) if sid != "outcomes"
    )
    return f'<div class="pytest-rnn">\n<style>{_FRAGMENT_STYLE}</style>\n{body}\n</div>'


def render(data: ReportData) -> str:
    """The whole HTML document."""
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{html.escape(title)}</h2>\n{content}\n</section>'
        for sid, title, content in sections(data)
    )
    status = "passed" if data.exitstatus == 0 else "bad"
    summary = ", ".join(f"{n} {o}" for o, n in data.outcomes.items() if n) or "no tests ran"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>pytest-rnn report: {html.escape(summary)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        "<h1>pytest-rnn report</h1>\n"
        f'<p class="meta">{html.escape(data.created)}; exit status '
        f'<span class="status-{status}" id="exit-status">{data.exitstatus}</span>; '
        f"{html.escape(summary)}; {len(data.records)} record(s)</p>\n"
        f"{body}\n</body>\n</html>\n"
    )
