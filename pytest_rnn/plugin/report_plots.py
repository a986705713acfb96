"""The report's plots: matplotlib figures of baselines, training curves and kernel timings.

matplotlib is optional (the ``report`` extra): :func:`matplotlib_available` says
whether these can be drawn; the figures use the Agg canvas, never pyplot's global
state, and :func:`png` encodes one for a ``data:`` URI.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

from pytest_rnn.plugin.records import Record
from pytest_rnn.plugin.report_values import (
    is_number,
    main_number,
    metric_groups,
    series_of,
    to_number,
    x_axis,
)
from pytest_rnn.store import rules

PLOTS_NEED_EXTRA = (
    "Plots need matplotlib, which is not installed: install the report extra "
    "(pip install 'pytest-rnn[report]') to get them."
)
#: Preferred numeric field of a speedup / timing record, in order; else its first number.
SPEEDUP_FIELDS = ("speedup", "ratio", "value")
TIMING_FIELDS = ("median", "seconds", "median_s", "mean_s", "time_s", "mean", "value")
MAX_PLOTTED = 40  # rows per plot; more records are still listed in the tables


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


def png(fig) -> str:
    """``fig`` as base64-encoded PNG, without matplotlib's ``Software`` tag."""
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
        value, baseline = to_number(data.get("value")), to_number(data.get("baseline"))
        points = [v for v in (value, baseline) if v is not None and math.isfinite(v)]
        low = high = None
        if baseline is not None and is_number(data.get("tolerance")):
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
    columns = max(min(len(metric_groups(series_of(r.data))), 4) for r in rows)
    fig = _figure(3.6 * columns, 2.6 * len(rows))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for row, record in zip(axes, rows, strict=True):
        series = series_of(record.data)
        groups = list(metric_groups(series).items())[:columns]
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
    pairs = [(r, main_number(r.data, preferred)) for r in rows]
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
        main = main_number(r.data, TIMING_FIELDS)
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
