"""``--rnn-report``: the HTML file is written, holds the run's metrics, works under xdist,
and renders in a real browser.

One tiny test module produces every kind of record the report shows (two
baseline checks, one failing; a training curve; speedups and timings) without
importing TensorFlow, so the runs cost only pytest's own start-up. The plain run
is in-process; the ``-n 2`` run is a subprocess shared by the tests that read it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import subprocess_runs
from pytest_rnn.records import Record

from pytest_rnn import report

METRICS_TESTS = """
import os

import pytest


def test_lstm_accuracy(rnn_baseline):
    rnn_baseline.check("accuracy", 0.8125, tolerance=0.03)


def test_gru_accuracy(rnn_baseline):
    rnn_baseline.check("accuracy", 0.5, tolerance=0.03)  # below its band: fails


def test_curve(rnn_record):
    # the slow suites' layout: epoch 0 is the untrained model, with no training loss
    rnn_record("curve", "lstm_imdb", epochs=[0, 1, 2], best_epoch=2, history={
        "loss": [float("nan"), 0.52, 0.41], "val_loss": [0.694, 0.55, 0.52],
        "val_accuracy": [0.5, 0.74, 0.79]})


@pytest.mark.parametrize("units", [8, 64])
def test_kernels(rnn_record, units):
    # the layout of pytest_rnn.benchmarking's records
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    group = f"lstm-units{units}"
    for kernel, median in (("generic", units / 250), ("cudnn", units / 1000)):
        rnn_record("timing", f"{group}-{kernel}", group=group, kernel=kernel, median=median,
                   device_key="cpu", worker=worker)
    rnn_record("speedup", group, group=group, device_key="cpu", speedup=units / 10 + 0.25,
               worker=worker)


def test_not_here():
    pytest.skip("no GPU here")


def test_long_message():
    # a message of several lines, one of them a path too long for any column
    raise AssertionError("first line of the message\\n"
                         + "tests/" + "a_very_long_path_segment_" * 12 + "\\nthird line")
"""


def _entry(value: float) -> dict:
    return {"value": value, "tolerance": 0.03, "direction": "higher", "relative": False,
            "seeds": {"base": 1234}, "recorded_at": "2025-01-01T00:00:00Z",
            "recorded_on": {"device": "cpu"}}


BASELINE_FILE = {
    "schema_version": 1,
    "entries": {
        "test_lstm_accuracy::accuracy": _entry(0.8),
        "test_gru_accuracy::accuracy": _entry(0.61),
    },
}

#: (test, metric, measured, baseline, allowed, status) rows the report must show
BASELINE_ROWS = [
    ["test_metrics.py::test_lstm_accuracy", "accuracy", "0.8125", "0.8", ">= 0.77", "ok"],
    ["test_metrics.py::test_gru_accuracy", "accuracy", "0.5", "0.61", ">= 0.58", "FAIL"],
]
SPEEDUP_ROWS = [
    ["test_metrics.py::test_kernels[8]", "lstm-units8", "1.05"],
    ["test_metrics.py::test_kernels[64]", "lstm-units64", "6.65"],
]
OUTCOMES = {"passed": 4, "failed": 2, "error": 0, "skipped": 1, "xfailed": 0, "xpassed": 0}


def _write_project(path: Path) -> None:
    (path / "test_metrics.py").write_text(METRICS_TESTS)
    (path / "baselines").mkdir()
    (path / "baselines" / "test_metrics.json").write_text(json.dumps(BASELINE_FILE))


class _Page(HTMLParser):
    """Tables (rows of cell texts) per ``<section id>``, images, and ids' texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.by_id: dict[str, str] = {}
        self._section = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._id: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id", "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        if "id" in attrs and tag != "section":
            self._id = attrs["id"]
            self.by_id[self._id] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables.setdefault(self._section, []).append(self._row)
            self._row = None
        if self._id is not None and tag in ("td", "span", "div"):
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._id is not None:
            self.by_id[self._id] += data


def _png_size(uri: str) -> tuple[int, int]:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    data = base64.b64decode(uri[len(prefix):], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "embedded image is not a PNG"
    return struct.unpack(">II", data[16:24])


def _check_report(page: _Page) -> None:
    """What both runs' reports must contain: this run's outcomes and metrics."""
    counts = {o: int(page.by_id[f"count-{o}"]) for o in OUTCOMES}
    assert counts == OUTCOMES
    baseline_rows = [row[:6] for row in page.tables["baselines"][1:]]
    assert sorted(baseline_rows) == sorted(BASELINE_ROWS)
    curves = page.tables["curves"][1:]
    assert len(curves) == 1 and curves[0][1] == "lstm_imdb", curves
    assert "val_accuracy: 0.5 -> 0.79 (3 points)" in curves[0][2]
    assert "loss: nan -> 0.41 (3 points)" in curves[0][2] and "best_epoch=2" in curves[0][3]
    kernels = page.tables["kernels"]
    speedups = [[row[0], row[1], row[4]] for row in kernels if row[1] in ("lstm-units8",
                                                                            "lstm-units64")]
    assert sorted(speedups) == sorted(SPEEDUP_ROWS)
    timings = {row[1]: row for row in kernels if row[1].endswith(("-cudnn", "-generic"))}
    assert len(timings) == 4, kernels
    assert timings["lstm-units64-cudnn"][:5] == [
        "test_metrics.py::test_kernels[64]", "lstm-units64-cudnn", "lstm-units64", "cudnn",
        "0.064"]  # name, group, kernel, median
    failures = [row for row in page.tables["outcomes"] if row[:2] == [
        "test_metrics.py::test_gru_accuracy", "failed"]]
    assert failures and "measured 0.5, baseline 0.61" in failures[0][2]
    # one plot each: baselines, curves, speedups, timings; real PNGs of a readable size
    assert len(page.images) == 4, [i.get("alt") for i in page.images]
    for image in page.images:
        width, height = _png_size(image["src"])
        assert width >= 300 and height >= 100, (image["alt"], width, height)


def _environment(page: _Page) -> dict[str, str]:
    return {row[0]: row[1] for row in page.tables["environment"]}


# --- a plain run ----------------------------------------------------------------------------


def test_plain_run_writes_a_report_with_the_runs_metrics(pytester: pytest.Pytester):
    _write_project(pytester.path)
    # -q: no header, whose device probe would import TensorFlow in this process
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q",
                                          "--rnn-report", "out/report.html")
    result.assert_outcomes(passed=4, failed=2, skipped=1)
    path = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"pytest-rnn: HTML report written to {path}"])
    page = _Page(path.read_text(encoding="utf-8"))
    _check_report(page)
    env = _environment(page)
    assert env["xdist workers"] == "none (one process)"
    assert env["Keras"] == report.runtime_versions.package_version("keras")
    assert env["base seed"] == "1234" and env["hardware key"]


def _device(key: str, names: list[str]) -> dict:
    return {"key": key, "has_gpu": bool(names), "gpu_names": names, "cuda_version": None,
            "cudnn_version": None, "compute_capabilities": []}


def test_hardware_key_comes_from_the_workers_or_from_this_process(monkeypatch):
    from pytest_rnn import device, report_header
    from pytest_rnn.backends import devices

    class Config:
        stash = pytest.Stash()

    config = Config()
    # the report reads the module from sys.modules; an earlier in-process pytester run can
    # leave the package attribute and sys.modules holding different module objects
    monkeypatch.setitem(sys.modules, "pytest_rnn.backends.devices", devices)
    monkeypatch.setattr(devices, "detected", lambda: None)
    assert report._devices(config) == []  # nothing detected: the report does not start it
    h100 = _device("gpu-NVIDIA-H100-cudnn9", ["NVIDIA H100"])
    config.stash[report_header._WORKER_DEVICES] = {"gw0": h100, "gw1": dict(h100)}
    assert report._devices(config) == [h100]  # two workers, one kind of device
    config.stash[report_header._WORKER_DEVICES] = {}
    monkeypatch.setattr(devices, "detected", lambda: device.DeviceInfo(has_gpu=False))
    assert [d["key"] for d in report._devices(config)] == ["cpu"]


def test_unwritable_report_path_is_reported_not_fatal(pytester: pytest.Pytester):
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    (pytester.path / "blocker").write_text("a file where a directory is needed")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q",
                                          "--rnn-report", "blocker/report.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-rnn: could not write the HTML report to *blocker*"])


# --- a -n 2 run -----------------------------------------------------------------------------


@subprocess_runs.declare("xdist_report")
def _xdist_report_run(workdir: Path, session: pytest.Session) -> subprocess_runs.Command:
    _write_project(workdir)
    # -q: without the header, workers do not import TensorFlow to describe their device
    return subprocess_runs.Command(
        subprocess_runs.pytest_argv("-q", "-n", "2", "--rnn-report", "report.html"),
        cwd=workdir, timeout=300)


@pytest.fixture(scope="module")
def xdist_report(request: pytest.FixtureRequest) -> Path:
    """The report of one ``-n 2`` run (a subprocess: xdist workers are processes anyway)."""
    finished = subprocess_runs.result(request)
    proc = finished.proc
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pytest-rnn: HTML report written to" in proc.stdout, proc.stdout[-3000:]
    return finished.workdir / "report.html"


def test_xdist_run_report_holds_every_workers_records(xdist_report: Path):
    page = _Page(xdist_report.read_text(encoding="utf-8"))
    _check_report(page)
    assert _environment(page)["xdist workers"] == "2"
    workers = {row[-1] for row in page.tables["kernels"] if row[1].startswith("lstm-units")}
    assert workers and all(w.startswith("gw") for w in workers), (
        f"records came from {workers}; expected xdist workers (gw0, gw1) only"
    )


# --- rendering ------------------------------------------------------------------------------

#: Appended to a copy of the report: records script errors and images that fail to decode.
RENDER_PROBE = """
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target.src
  || e.target.tagName).slice(0, 80)), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const probe = document.createElement("div");
  probe.id = "render-probe";
  probe.textContent = JSON.stringify({
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    errors: window.__errors,
    sections: Array.from(document.querySelectorAll("section")).map(s => s.id),
    width: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    // lines the long failure message is shown on (innerText follows the rendering)
    message_lines: Array.from(document.querySelectorAll("#outcomes td"))
      .filter(td => td.textContent.includes("first line of the message"))
      .map(td => td.innerText.split("\\n").length),
  });
  document.body.appendChild(probe);
});
</script>
"""


def _chromium() -> str | None:
    """Debian's chromium, or Chrome (preinstalled on GitHub's Ubuntu runners): same flags."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def test_report_renders_in_headless_chromium(xdist_report: Path, tmp_path: Path):
    browser = _chromium()
    if browser is None:
        message = ("neither Chromium nor Chrome is installed (Debian: apt-get install -y "
                   "chromium); the report's rendering is untested")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    page = tmp_path / "probed.html"
    page.write_text(xdist_report.read_text(encoding="utf-8").replace(
        "</body>", RENDER_PROBE + "</body>"), encoding="utf-8")
    start = time.monotonic()
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
        "--window-size=1280,900",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    dom = _Page(proc.stdout)
    assert "render-probe" in dom.by_id, (
        f"the page did not finish loading in Chromium ({time.monotonic() - start:.1f} s):\n"
        + proc.stderr[-2000:]
    )
    probe = json.loads(dom.by_id["render-probe"])
    assert probe["errors"] == [], f"errors while rendering: {probe['errors']}"
    assert probe["images"] == 4 and probe["decoded"] == 4, probe
    assert probe["sections"] == ["outcomes", "environment", "baselines", "curves", "kernels"]
    assert "accuracy" in proc.stdout and "lstm-units64" in proc.stdout
    # fits a 1280 px window: no horizontal scrolling, whatever the messages' lengths
    assert probe["viewport"] == 1280, probe
    assert probe["width"] <= 1280, f"the report is {probe['width']} px wide in a 1280 px window"
    # a multi-line message keeps its lines (white-space: pre-wrap), not one paragraph
    assert probe["message_lines"] and probe["message_lines"][0] >= 3, probe["message_lines"]


# --- without matplotlib ---------------------------------------------------------------------


def test_without_matplotlib_the_report_keeps_its_tables_and_says_why(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not report.matplotlib_available()
    data = report.ReportData(
        records=[
            Record("baseline", "t.py::test_a", "accuracy", {
                "value": 0.81, "baseline": 0.8, "tolerance": 0.03, "direction": "higher",
                "relative": False, "bound": ">= 0.77", "passed": True, "updated": False,
                "status": "ok",
                "file": "baselines/t.json", "key": "test_a::accuracy"}),
            Record("curve", "t.py::test_b", "gru_imdb", {"history": {"loss": [0.7, 0.6]}}),
            Record("speedup", "t.py::test_c", "gru-64", {"speedup": 2.5}),
            Record("cost_ratio", "t.py::test_d", "small", {"config": "forward small",
                                                             "ratios": {"gru": 2.9}}),
        ],
        outcomes={"passed": 4},
        environment=[("hardware key", "cpu")],
    )
    page = _Page(report.render(data))
    assert page.images == []
    text = report.render(data)
    assert text.count(report.PLOTS_NEED_EXTRA.replace("'", "&#x27;")) == 3  # one per plot
    assert ["t.py::test_a", "accuracy", "0.81", "0.8", ">= 0.77", "ok"] in [
        row[:6] for row in page.tables["baselines"]]
    assert ["t.py::test_c", "gru-64", "2.5"] in page.tables["kernels"]
    assert ["t.py::test_d", "small", "forward small", "2.9"] in page.tables["other"]
    assert page.tables["other"][0][2:] == ["config", "ratios.gru"]


def test_series_are_found_in_nested_data_and_grouped_with_their_validation_twin():
    data = {"history": {"loss": [None, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5]},
            "epochs": [0, 1, 2], "best_epoch": 2, "note": "x", "labels": ["a", "b"]}
    series = report.series_of(data)
    assert list(series) == ["loss", "val_loss"]  # epochs is the x axis, labels no numbers
    assert series["val_loss"] == [1.1, 0.6, 0.5] and series["loss"][0] != series["loss"][0]
    assert report._metric_groups(series) == {"loss": ["loss", "val_loss"]}
    assert report.x_axis(data, 3) == [0.0, 1.0, 2.0]
    assert report.x_axis(data, 5) == [0, 1, 2, 3, 4]  # epochs of another length: ignored
