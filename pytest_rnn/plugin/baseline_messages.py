"""What ``rnn_baseline`` says: the sentences of its checks' results and the commands they name.

A failing check fails its test with one of these lines (baseline, measured value,
allowed band, file and key), a missing entry with the command that records it
(:func:`update_command`, :func:`calibrate_command`); a recording says what it staged.
The proof-of-sensitivity catalogue (``tests/regressions/``) matches their words.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from pytest_rnn.plugin import options
from pytest_rnn.plugin.baseline_session import CheckResult
from pytest_rnn.store import files, rules
from pytest_rnn.store.rules import Status

UPDATE_FLAG = files.UPDATE_FLAG
#: Where a sample lies, in :func:`against_calibration`'s line (``<metric> below its
#: calibrated band: ...``, ``above`` for a lower-is-better metric): the proof of
#: sensitivity quotes it.
CALIBRATED_BAND = "its calibrated band"


def shown_path(path: Path, config: pytest.Config) -> str:
    """``path`` relative to the directory pytest was started in, when it lies below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def update_command(config: pytest.Config, nodeid: str) -> str:
    """``[cd ROOT &&] pytest --rnn-update-baselines [options of this run] NODEID``.

    Repeats the pytest-rnn options this run was given on its command line (data path,
    seed, baselines directory, determinism), which change what the test measures or
    where it is stored, so the command records exactly what this run checked. Values
    that came from the ini file or the environment are read again by the new run.
    """
    settings = options.get(config)
    root = Path(config.rootpath)
    words = ["pytest", UPDATE_FLAG, *options.command_line_words(config, exclude=(
        "rnn_update_baselines", "rnn_report", "rnn_calibrate"))]
    if settings.baselines != root / "baselines" and not any(
            w.startswith("--rnn-baselines=") for w in words):
        words.append(f"--rnn-baselines={settings.baselines}")
    if settings.seed != options.DEFAULT_SEED and not any(
            w.startswith("--rnn-seed=") for w in words):
        words.append(f"--rnn-seed={settings.seed}")
    words.append(nodeid)
    command = " ".join(shlex.quote(w) for w in words)
    if Path(config.invocation_params.dir) != root:
        command = f"cd {shlex.quote(str(root))} && {command}"
    return command


def calibrate_command(config: pytest.Config, nodeid: str) -> str:
    """The command line that calibrates the power-checked baselines of test ``nodeid``."""
    return update_command(config, nodeid).replace(UPDATE_FLAG, "--rnn-calibrate=20", 1)


def values_text(statistic: str, value: float, values: list[float]) -> str:
    """``geometric mean of 2 = 0.1756 (runs 0.15, 0.2056)``: the statistic a sample check
    compares, by the name its band uses (:func:`pytest_rnn.store.rules.statistic_name`),
    with the value the summary shows, then the runs (at most 25 shown)."""
    shown = ", ".join(f"{v:.4g}" for v in values[:25]) + (" ..." if len(values) > 25 else "")
    return f"{statistic} = {value:.4g} (runs {shown})"


# --- checks ---------------------------------------------------------------------------------


def missing(ask: CheckResult, command: str) -> str:
    return (
        f"no baseline for {ask.metric} = {ask.value:.6g}: file {ask.file} has no entry "
        f"{ask.key!r}. Missing baselines fail rather than pass. Record it with:\n"
        f"    {command}\n"
        f"then review and commit {ask.file}."
    )


def stale(ask: CheckResult, verdict: rules.Verdict, command: str) -> str:
    return (f"stale baseline {ask.key!r} in {ask.file}: {verdict.detail}. Re-record it "
            f"with:\n    {command}")


def no_entry(ask: CheckResult, verdict: rules.Verdict, what: str, verb: str,
             command: str) -> str:
    """A sample or timing check without a usable entry, with the command that fixes it."""
    why = "has no entry" if verdict.status is Status.MISSING else \
        f"has a stale entry ({verdict.detail})"
    return (
        f"{what}: file {ask.file} {why} {ask.key!r}. {verb} it with:\n"
        f"    {command}\nthen review and commit {ask.file}."
    )


def against_band(ask: CheckResult, verdict: rules.Verdict, stored: dict) -> str:
    """A single value against its stored baseline's band."""
    recorded = stored["recorded_on"]
    inside = verdict.status is Status.OK
    return (
        f"{ask.metric} {'within' if inside else 'outside'} its baseline band: measured "
        f"{ask.value:.6g}, baseline {ask.baseline:.6g}, allowed {verdict.band.text} "
        f"({verdict.detail}); file {ask.file}, key {ask.key!r}; baseline recorded "
        f"{stored['recorded_at']} on {recorded.get('device', '?')} with TensorFlow "
        f"{recorded.get('tensorflow', '?')}, Keras {recorded.get('keras', '?')}, backend "
        f"{recorded.get('backend', 'tensorflow')}"
    )


def not_seeded(ask: CheckResult, frameworks: list[str]) -> str:
    """A value checked after a framework that ``rnn_baseline`` could not seed was imported."""
    return (f"cannot check {ask.metric} as seeded by the test's seed: {' and '.join(frameworks)} "
            f"first imported while this test ran, after rnn_baseline seeded what was loaded, "
            f"so its draws were not seeded; request the rnn_seed fixture in this test (it "
            f"imports and seeds Python, NumPy and Keras at set-up)")


def runs_not_finite(metric: str, values: list[float], seeds: list[int]) -> str:
    return f"{metric}: runs gave {values} (not all finite; seeds {seeds})"


def no_calibration(metric: str, statistic: str, value: float, values: list[float]) -> str:
    return f"no calibration for {metric} ({values_text(statistic, value, values)})"


def against_calibration(ask: CheckResult, statistic: str, values: list[float],
                        seeds: list[int], verdict: rules.Verdict, stored: dict) -> str:
    """A sample of runs against the calibrated band of its metric: the statistic the check
    compared (``ask.value``, as the summary shows it), the band, the test, and how the band
    moved from the one calibrated, when it did."""
    words = {Status.OK: "within", Status.FAIL: "below" if ask.direction == "higher" else
             "outside", Status.CHANGED: "CHANGED: beyond"}[verdict.status]
    if verdict.status is Status.FAIL and ask.direction == "lower":
        words = "above"
    moved = f"; {verdict.moved}" if verdict.moved else ""
    return (
        f"{ask.metric} {words} {CALIBRATED_BAND}: {values_text(statistic, ask.value, values)} "
        f"over seeds {seeds}, allowed {verdict.band.text} ({verdict.detail}){moved}; file "
        f"{ask.file}, key {ask.key!r}; calibrated {stored['recorded_at']} on "
        f"{stored['recorded_on'].get('device', '?')} with Keras "
        f"{stored['recorded_on'].get('keras', '?')}"
    )


def no_rounds(metric: str, summary: dict, count: int) -> str:
    return f"no stored rounds for {metric} (median {summary['median']:.4g} over {count} rounds)"


def against_rounds(ask: CheckResult, summary: dict, verdict: rules.Verdict,
                   stored: dict) -> str:
    """Per-round timings against the rounds stored for this device key."""
    words = {Status.OK: "within", Status.FAIL: "SLOWER than",
             Status.CHANGED: "CHANGED: faster than"}[verdict.status]
    return (
        f"{ask.metric} {words} its stored rounds: median {summary['median']:.4g} "
        f"(spread {summary['spread']:.3g}) vs stored {ask.baseline:.4g}; "
        f"{verdict.detail}; file {ask.file}, key {ask.key!r}; recorded "
        f"{stored['recorded_at']} on {stored['recorded_on'].get('device', '?')}"
    )


# --- recordings -----------------------------------------------------------------------------


def cannot_record(ask: CheckResult) -> str:
    return f"cannot record baseline {ask.key!r} in {ask.file}: {ask.metric} = {ask.value!r}"


def recording(ask: CheckResult, bound: str) -> str:
    """A single value staged as its entry; ``bound`` is the old entry's band, if any."""
    was = "new entry" if ask.baseline is None else f"was {ask.baseline:.6g}, band {bound}"
    return (f"recording {ask.metric} = {ask.value:.6g} as baseline {ask.key!r} in {ask.file} "
            f"({was})")


def cannot_calibrate(ask: CheckResult, values: list[float], seeds: list[int]) -> str:
    return f"cannot calibrate {ask.key!r}: runs gave {values} (seeds {seeds})"


def refused_band(ask: CheckResult, why: str) -> str:
    """A calibration whose band admits a limit (:func:`pytest_rnn.store.rules.limit_refusal`)."""
    return f"refusing to calibrate {ask.key!r} in {ask.file}: {why}"


def calibrating(ask: CheckResult, statistic: str, values: list[float],
                band: rules.Band) -> str:
    return (f"calibrating {ask.metric}: {values_text(statistic, ask.value, values)} -> band "
            f"{band.text}")


def too_noisy(ask: CheckResult, slowdown: float, alpha: float, processes: int, sd: float,
              errors: float) -> str:
    """A timing calibration whose medians vary too much between processes to be used."""
    return (
        f"cannot calibrate {ask.metric} to catch a {slowdown:.0%} slowdown at "
        f"{alpha:g}: between {processes} processes its median varied by "
        f"{2 ** sd - 1:.1%} (sd), so an unchanged process would fail, and "
        f"one {slowdown:.0%} slower pass, with probability {errors:.2g} each; "
        f"calibrate on a quieter machine, with more processes or more rounds"
    )


def calibrating_timing(ask: CheckResult, note: str) -> str:
    return f"calibrating {ask.metric}: {note}"


def recording_rounds(ask: CheckResult, median: float, count: int) -> str:
    return (f"recording {ask.metric}: median {median:.4g} over {count} "
            f"rounds as {ask.key!r} in {ask.file}")
