"""What the HTML report shows, gathered from the run: outcomes, failures, environment and
records (:class:`ReportData`, made by :func:`collect` in the process that owns the run)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from pytest_rnn.plugin import header as report_header
from pytest_rnn.plugin import options, records
from pytest_rnn.plugin.records import Record
from pytest_rnn.runtime import versions as runtime_versions

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@dataclass
class ReportData:
    """Everything the report shows; :func:`collect` gathers it,
    :func:`~pytest_rnn.plugin.report_html.render` writes HTML."""

    records: list[Record] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # nodeid, outcome, why
    environment: list[tuple[str, str]] = field(default_factory=list)
    exitstatus: int = 0
    created: str = ""


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


def run_devices(config: pytest.Config) -> list[dict]:
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

    devices = run_devices(config)
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
