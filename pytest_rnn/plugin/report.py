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
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_rnn.plugin import baselines, options, records, xdist
from pytest_rnn.plugin import header as report_header
from pytest_rnn.plugin.records import Kind, Record
from pytest_rnn.runtime import versions as runtime_versions
from pytest_rnn.store import rules

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
PLOTS_NEED_EXTRA = (
    "Plots need matplotlib, which is not installed: install the report extra "
    "(pip install 'pytest-rnn[report]') to get them."
)
#: Preferred numeric field of a speedup / timing record, in order; else its first number.
SPEEDUP_FIELDS = ("speedup", "ratio", "value")
#: Lists in a curve record that number the points (the x axis) rather than being a curve.
X_AXIS_FIELDS = ("epochs", "epoch", "steps", "step")
TIMING_FIELDS = ("median", "seconds", "median_s", "mean_s", "time_s", "mean", "value")
MAX_PLOTTED = 40  # rows per plot; more records are still listed in the tables

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


@dataclass
class ReportData:
    """Everything the report shows; :func:`collect` gathers it, :func:`render` writes HTML."""

    records: list[Record] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # nodeid, outcome, why
    environment: list[tuple[str, str]] = field(default_factory=list)
    exitstatus: int = 0
    created: str = ""


# --- gathering ------------------------------------------------------------------------------


def _count_outcomes(stats: dict[str, list]) -> dict[str, int]:
    return {
        outcome: sum(1 for rep in stats.get(outcome, [])
                     if getattr(rep, "count_towards_summary", True))
        for outcome in OUTCOMES
    }


def _failures(stats: dict[str, list]) -> list[tuple[str, str, str]]:
    rows = []
    for outcome in ("failed", "error"):
        for rep in stats.get(outcome, []):
            nodeid = getattr(rep, "nodeid", "") or "(collection)"
            crash = getattr(getattr(rep, "longrepr", None), "reprcrash", None)
            if crash is not None:
                why = crash.message
            else:
                lines = str(getattr(rep, "longrepr", "") or "").strip().splitlines()
                why = lines[-1] if lines else ""
            rows.append((nodeid, outcome, why.strip()[:400]))
    return rows


def _devices(config: pytest.Config) -> list[dict]:
    """Device dicts of this run: from the xdist workers, else this process if a test needed
    them (detection is never started for the report)."""
    seen = report_header.worker_devices(config)
    if seen:
        unique = {d["key"]: d for d in seen.values()}
        return [unique[k] for k in sorted(unique)]
    info = report_header.detected_devices()
    return [info.as_dict()] if info is not None else []


def environment(config: pytest.Config) -> list[tuple[str, str]]:
    """``(label, value)`` rows: hardware key, devices, versions, seed and command line."""
    from pytest_rnn import __version__

    devices = _devices(config)
    if devices:
        keys = ", ".join(d["key"] for d in devices)
        names = ", ".join(sorted({n for d in devices for n in d["gpu_names"]})) or "CPU only"
    else:
        keys = "not probed (no test needed the devices)"
        names = "not probed"
    versions = runtime_versions.versions()
    workers = getattr(config.option, "numprocesses", None)
    rows = [
        ("hardware key", keys),
        ("devices", names),
        ("TensorFlow", versions["tensorflow"]),
        ("Keras", versions["keras"]),
        ("Keras backend", versions["backend"]),
        ("CUDA / cuDNN (TensorFlow build)",
         f"{versions['cuda_build']} / {versions['cudnn_build']}"),
        ("Python", platform.python_version()),
        ("NumPy", runtime_versions.package_version("numpy")),
        ("pytest", pytest.__version__),
        ("pytest-rnn", __version__),
        ("matplotlib", runtime_versions.package_version("matplotlib") or "not installed"),
        ("platform", platform.platform()),
        ("host", platform.node()),
        ("base seed", options.get(config).seed),
        ("xdist workers", workers if workers else "none (one process)"),
        ("command", " ".join(["pytest", *config.invocation_params.args])),
    ]
    return [(label, "" if value is None else str(value)) for label, value in rows]


def collect(config: pytest.Config, stats: dict[str, list], exitstatus: int) -> ReportData:
    """The report's content for this run (call it in the process that owns the run)."""
    return ReportData(
        records=list(records.of(config)),
        outcomes=_count_outcomes(stats),
        failures=_failures(stats),
        environment=environment(config),
        exitstatus=int(exitstatus),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


# --- values ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """A float from a number or a non-finite number stored as text ("nan", "inf")."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "-"
    return str(value)


def _scalars(data: dict, prefix: str = "") -> dict[str, Any]:
    """Scalar fields of a record's data; nested dicts give ``outer.inner`` keys, lists none."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_scalars(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def series_of(data: dict, prefix: str = "") -> dict[str, list[float]]:
    """Every list of numbers in a record's data (nested dicts included), by name.

    A nested dict contributes its keys as names (``history.loss`` -> ``loss``)
    unless that name is already taken.
    """
    found: dict[str, list[float]] = {}
    for key, value in data.items():
        if key in X_AXIS_FIELDS:
            continue
        if isinstance(value, dict):
            for name, values in series_of(value, f"{key}.").items():
                found[name if name not in found else f"{prefix}{key}.{name}"] = values
        elif (isinstance(value, list) and len(value) >= 1
              and all(v is None or _number(v) is not None for v in value)
              and any(v is not None for v in value)):
            found[f"{prefix}{key}" if prefix and key in found else key] = [
                math.nan if v is None else float(_number(v)) for v in value
            ]
    return found


def x_axis(data: dict, length: int) -> list[float]:
    """The x values of a curve of ``length`` points: a record's ``epochs`` (or ``epoch``,
    ``steps``, ``step``) list when it has that length, else 0, 1, 2, ..."""
    for key in X_AXIS_FIELDS:
        values = data.get(key)
        if (isinstance(values, list) and len(values) == length
                and all(_is_number(v) for v in values)):
            return [float(v) for v in values]
    return list(range(length))


def _metric_groups(series: dict[str, list[float]]) -> dict[str, list[str]]:
    """Curves drawn together: ``loss`` with ``val_loss``, ``accuracy`` with ``val_accuracy``."""
    groups: dict[str, list[str]] = {}
    for name in series:
        base = name.removeprefix("val_")
        groups.setdefault(base, []).append(name)
    return groups


def _main_number(data: dict, preferred: Sequence[str]) -> tuple[str, float] | None:
    for key in preferred:
        number = _number(data.get(key))
        if number is not None and not isinstance(data.get(key), bool):
            return key, number
    for key, value in data.items():
        if _is_number(value):
            return key, float(value)
    return None


# --- plots ----------------------------------------------------------------------------------


def matplotlib_available() -> bool:
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def plot_baselines(rows: Sequence[Record]):
    """One small panel per metric: the allowed band, the baseline and the measured value."""
    rows = list(rows)[:MAX_PLOTTED]
    fig = _figure(9.0, 0.75 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, record in zip(axes, rows, strict=True):
        data = record.data
        value, baseline = _number(data.get("value")), _number(data.get("baseline"))
        points = [v for v in (value, baseline) if v is not None and math.isfinite(v)]
        low = high = None
        if baseline is not None and _is_number(data.get("tolerance")):
            allowed = rules.band(baseline, float(data["tolerance"]),
                                 str(data.get("direction")), bool(data.get("relative")))
            low, high = allowed.low, allowed.high
            points += [v for v in (low, high) if math.isfinite(v)]
        center = points[0] if points else 0.0
        span = (max(points) - min(points)) if len(points) > 1 else abs(center) * 0.1 or 1.0
        left = min(points, default=center) - 0.25 * span
        right = max(points, default=center) + 0.25 * span
        if low is not None:
            ax.axvspan(max(low, left), min(high, right), color="#b7dfc0", label="allowed band")
        if baseline is not None:
            ax.axvline(baseline, color="#2f6f3e", linewidth=1.5, label="baseline")
        if value is not None and math.isfinite(value):
            color = "#17702f" if data.get("passed") else "#b3261e"
            ax.plot([value], [0.5], "o", color=color, markersize=8, label="measured")
        ax.set_xlim(left, right)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_ylabel(_short(f"{record.name}", 18), rotation=0, ha="right", va="center",
                      fontsize=8)
        ax.set_title(_short(record.nodeid, 90), fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=8)
    legend = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside upper right", fontsize=7, ncols=3)
    return fig


def plot_curves(rows: Sequence[Record]):
    """One row per curve record, one panel per metric (``x`` and ``val_x`` together)."""
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in rows if series_of(r.data)][:MAX_PLOTTED // 2]
    columns = max(min(len(_metric_groups(series_of(r.data))), 4) for r in rows)
    fig = _figure(3.6 * columns, 2.6 * len(rows))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for row, record in zip(axes, rows, strict=True):
        series = series_of(record.data)
        groups = list(_metric_groups(series).items())[:columns]
        for ax, (base, names) in zip(row, groups, strict=False):
            for name in names:
                ax.plot(x_axis(record.data, len(series[name])), series[name], marker=".",
                        label=name)
            ax.set_title(_short(f"{record.name}: {base}", 48), fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=8)
            ax.legend(fontsize=7)
        for ax in row[len(groups):]:
            ax.axis("off")
    return fig


def plot_bars(rows: Sequence[Record], preferred: Sequence[str], *, reference: float | None,
              xlabel: str):
    """Horizontal bars of each record's main number (``reference``: a dashed line, e.g. 1x)."""
    pairs = [(r, _main_number(r.data, preferred)) for r in rows]
    pairs = [(r, m) for r, m in pairs if m is not None and math.isfinite(m[1])][:MAX_PLOTTED]
    if not pairs:
        return None
    fig = _figure(8.0, 0.35 * len(pairs) + 1.2)
    ax = fig.subplots()
    labels = [_short(r.name, 50) for r, _ in pairs]
    values = [m[1] for _, m in pairs]
    colors = ["#3b6fb6" if reference is None or v >= reference else "#b3261e" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color="#444", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel, fontsize=9)
    return fig


def plot_kernel_timings(rows: Sequence[Record]):
    """Per benchmark group, one bar per kernel (generic, cuDNN) of the main time field.

    Falls back to :func:`plot_bars` when the records carry no ``group``/``kernel``."""
    if not all("group" in r.data and "kernel" in r.data for r in rows):
        return plot_bars(rows, TIMING_FIELDS, reference=None, xlabel="seconds per call")
    times: dict[str, dict[str, float]] = {}
    for r in rows:
        main = _main_number(r.data, TIMING_FIELDS)
        if main is not None and math.isfinite(main[1]):
            times.setdefault(str(r.data["group"]), {})[str(r.data["kernel"])] = main[1]
    groups = list(times)[:MAX_PLOTTED]
    kernels = sorted({k for g in groups for k in times[g]})
    if not groups:
        return None
    fig = _figure(8.0, 0.3 * len(groups) * len(kernels) + 1.2)
    ax = fig.subplots()
    height = 0.8 / len(kernels)
    for i, kernel in enumerate(kernels):
        ys = [g + i * height for g in range(len(groups))]
        ax.barh(ys, [times[g].get(kernel, math.nan) * 1e3 for g in groups], height=height,
                label=kernel)
    ax.set_yticks([g + 0.4 - height / 2 for g in range(len(groups))],
                  [_short(g, 50) for g in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per call (median)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


# --- HTML -----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(_fmt(value), quote=True)


def _table(headers: Sequence[str] | None, rows: Iterable[tuple[Sequence[Any], str]]) -> str:
    """A table; each row is ``(cells, css class)``; numbers align right."""
    out = ["<table>"]
    if headers:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>")
    for cells, css in rows:
        tds = "".join(
            f'<td class="num">{_e(c)}</td>' if _is_number(c) else f"<td>{_e(c)}</td>"
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
        data = _png(fig)
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
        status = baselines.status_of(d).value
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
            f"{name}: {_fmt(values[0])} -> {_fmt(values[-1])} ({len(values)} points)"
            for name, values in series.items()
        )
        extra = ", ".join(f"{k}={_fmt(v)}" for k, v in _scalars(r.data).items())
        table_rows.append(((r.nodeid, r.name, summary, extra), ""))
    plotted = [r for r in rows if series_of(r.data)]
    plot = _plot_html(plot_curves, plotted, "training curves per model")
    return plot + "\n" + _table(["test", "curve", "first -> last", "details"], table_rows)


def _kind_table(rows: list[Record]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in _scalars(r.data) if k not in keys]
    return _table(["test", "name", *keys],
                  (((r.nodeid, r.name, *(_scalars(r.data).get(k) for k in keys)), "")
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


# --- the hook -------------------------------------------------------------------------------


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
