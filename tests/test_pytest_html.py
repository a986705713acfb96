"""pytest-html's report (``--html``) gets pytest-rnn's sections; without pytest-html the
plugin neither imports nor registers anything of it. pytest-html is in the ``dev`` extra."""

from __future__ import annotations

import json

import pytest

PROJECT = """
def test_accuracy(rnn_baseline):
    rnn_baseline.check("accuracy", 0.8125, tolerance=0.03)


def test_curve(rnn_record):
    rnn_record("curve", "lstm_imdb", epochs=[1, 2], history={"loss": [0.5, 0.4]})
"""

BASELINES = {"schema_version": 1, "entries": {"test_accuracy::accuracy": {
    "value": 0.8, "tolerance": 0.03, "direction": "higher", "relative": False,
    "seeds": {"base": 1234}, "recorded_at": "2025-01-01T00:00:00Z",
    "recorded_on": {"device": "cpu"}}}}


def test_pytest_html_report_holds_pytest_rnns_sections(pytester: pytest.Pytester):
    pytest.importorskip("pytest_html")
    pytester.makepyfile(test_metrics=PROJECT)
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "test_metrics.json").write_text(json.dumps(BASELINES))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "--html=out.html",
                                          "--self-contained-html")
    result.assert_outcomes(passed=2)
    page = (pytester.path / "out.html").read_text(encoding="utf-8")
    for title in ("Hardware and versions", "Metrics against their baselines",
                  "Training curves"):
        assert f"<h3>pytest-rnn: {title}</h3>" in page, title
    assert "test_metrics.py::test_accuracy" in page and "0.8125" in page
    assert page.count('class="plot"') == 2  # the baselines' plot and the curve's


def test_without_pytest_html_nothing_of_it_is_registered(pytester: pytest.Pytester):
    pytester.makepyfile(test_x="def test_x(pytestconfig):\n"
                               "    assert not pytestconfig.pluginmanager.has_plugin('rnn-html')\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:html")
    result.assert_outcomes(passed=1)
