"""Stored baselines: metrics a test must keep reaching, reviewed in pull requests like code.

Layout. One human-readable JSON file per suite or topic under ``--rnn-baselines``
(default ``baselines/``); by default a test writes to the file named after its module
(``suites/test_accuracy_imdb.py`` -> ``baselines/test_accuracy_imdb.json``)::

    {
      "entries": {
        "test_lstm_learns::test_accuracy": {
          "direction": "higher", "note": "...", "recorded_at": "2025-...Z",
          "recorded_on": {"device": "cpu", "host": "...", "keras": "3.15.1", ...},
          "relative": false, "seeds": {"base": 1234, "test": 98765},
          "tolerance": 0.03, "value": 0.8123
        }
      },
      "schema_version": 1
    }

Keys are sorted (``json.dump(sort_keys=True)``), so a re-recording shows up as a
small diff. An entry key is ``<test id>::<metric>`` where the test id is the node
id without its module path (``TestX::test_y[param]``); a file chosen with
``file=`` prefixes the module name, as several modules may share it. Two optional
suffixes separate values that legitimately differ: ``::device=<rnn_device.key>``
(``hardware=True``: timings, cuDNN speedups) and ``::tf=<major.minor>::keras=<major.minor>``
(``versioned=True``).

Tolerance. Absolute, in the metric's own unit, unless ``relative=True`` (then a
fraction of ``|baseline|``). With ``higher_is_better=True`` a value passes when
``value >= baseline - tolerance``; with ``False`` when ``value <= baseline + tolerance``;
with ``None`` (two-sided) when ``|value - baseline| <= tolerance``. Improvements
always pass. The tolerance and direction the test asks for must equal the stored
ones: the file is what reviewers approved, so a change in the code is a stale
entry that fails until it is re-recorded.

Recording. ``--rnn-update-baselines`` makes :meth:`Baselines.check` record instead
of compare. Nothing is written while tests run: every check becomes a
``baseline`` record (:mod:`pytest_rnn.records`), the records of xdist workers travel
to the controller, and the process that owns the run (the controller, or the only
process) merges the new entries of tests that passed into the files at session
finish, under a lock file, through a temporary file and ``os.replace``. Entries of
tests that did not run stay as they are.

Errors. A file that is not JSON, has an unknown ``schema_version`` or holds a
malformed entry raises :class:`BaselineFileError` naming the file and the key; it
is never treated as empty and never rewritten.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import re
import shlex
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_rnn.plugin import options, records
from pytest_rnn.runtime import seeding
from pytest_rnn.runtime import versions as runtime_versions

SCHEMA_VERSION = 1
UPDATE_FLAG = "--rnn-update-baselines"
RECORD_KIND = "baseline"
LOCK_TIMEOUT_S = 120.0

DIRECTIONS = {True: "higher", False: "lower", None: "both"}
_ENTRY_FIELDS = {"value", "tolerance", "direction", "relative", "seeds", "recorded_at",
                 "recorded_on"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_METRIC_RE = re.compile(r"^[A-Za-z0-9_.\-/%]+$")

__all__ = [
    "BaselineFileError",
    "Baselines",
    "CheckResult",
    "SCHEMA_VERSION",
    "entry_key",
    "read_baseline_file",
    "write_entries",
]


class BaselineFileError(ValueError):
    """A baseline file that cannot be trusted: not JSON, unknown schema, malformed entry."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one :meth:`Baselines.check` (also stored as a ``baseline`` record)."""

    file: str
    key: str
    metric: str
    value: float
    baseline: float | None
    tolerance: float
    direction: str
    relative: bool
    passed: bool
    updated: bool
    bound: str  # the allowed band, e.g. ">= 0.7823"
    message: str


# ---------------------------------------------------------------------------
# reading and writing files


def read_baseline_file(path: Path) -> dict[str, dict]:
    """The entries of baseline file ``path`` (``{}`` if it does not exist), validated.

    Raises :class:`BaselineFileError` naming the file (and the key, for an entry)
    for anything that is not a well-formed file of :data:`SCHEMA_VERSION`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineFileError(
            f"baseline file {path} is not valid JSON ({exc}); fix it by hand or delete it "
            f"and re-record with {UPDATE_FLAG}"
        ) from None
    if not isinstance(data, dict):
        raise BaselineFileError(
            f"baseline file {path} must hold a JSON object, got {type(data).__name__}"
        )
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineFileError(
            f"baseline file {path} has schema_version {version!r}; this pytest-rnn reads "
            f"schema_version {SCHEMA_VERSION} (a newer pytest-rnn wrote it, or it was edited)"
        )
    unknown = sorted(set(data) - {"schema_version", "entries"})
    if unknown:
        raise BaselineFileError(
            f"baseline file {path} has unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "expected only 'schema_version' and 'entries'"
        )
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise BaselineFileError(f"baseline file {path}: 'entries' must be a JSON object")
    for key, entry in entries.items():
        _validate_entry(path, key, entry)
    return entries


def _validate_entry(path: Path, key: str, entry: Any) -> None:
    where = f"baseline file {path}, entry {key!r}"
    if not isinstance(entry, dict):
        raise BaselineFileError(f"{where}: must be a JSON object, got {type(entry).__name__}")
    missing = sorted(_ENTRY_FIELDS - set(entry))
    if missing:
        raise BaselineFileError(f"{where}: missing field(s) {', '.join(missing)}")
    for name in ("value", "tolerance"):
        number = entry[name]
        if not _is_number(number) or not math.isfinite(number):
            raise BaselineFileError(f"{where}: {name!r} must be a finite number, got {number!r}")
    if entry["tolerance"] < 0:
        raise BaselineFileError(f"{where}: 'tolerance' must be >= 0, got {entry['tolerance']!r}")
    if entry["direction"] not in DIRECTIONS.values():
        raise BaselineFileError(
            f"{where}: 'direction' must be one of {sorted(DIRECTIONS.values())}, "
            f"got {entry['direction']!r}"
        )
    if not isinstance(entry["relative"], bool):
        raise BaselineFileError(f"{where}: 'relative' must be true or false")
    if not isinstance(entry["recorded_at"], str) or not isinstance(entry["recorded_on"], dict):
        raise BaselineFileError(
            f"{where}: 'recorded_at' must be a string and 'recorded_on' an object"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _dump(entries: Mapping[str, dict]) -> str:
    body = {"schema_version": SCHEMA_VERSION, "entries": dict(entries)}
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; keep a reviewable file readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """The existing file's permissions, or what the umask gives a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def lock_path(path: Path) -> Path:
    """The lock file guarding baseline file ``path`` (beside it, hidden)."""
    return path.with_name(f".{path.name}.lock")


def write_entries(path: Path, new_entries: Mapping[str, dict]) -> dict[str, dict]:
    """Merge ``new_entries`` into baseline file ``path`` under its lock; returns the old entries.

    The file is re-read under the lock, so two pytest processes updating the same
    file one after the other both keep their entries. A file that does not validate
    raises :class:`BaselineFileError` and is left as it is.
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path(path)), timeout=LOCK_TIMEOUT_S):
        old = read_baseline_file(path)
        merged = {**old, **new_entries}
        _atomic_write(path, _dump(merged))
    return old


# ---------------------------------------------------------------------------
# keys and bands


def _major_minor(version: str | None) -> str:
    if not version:
        return "none"
    return ".".join(version.split(".")[:2])


def entry_key(test_id: str, metric: str, *, device_key: str | None = None,
              versions: Mapping[str, str | None] | None = None) -> str:
    """``<test id>::<metric>[::device=<key>][::tf=<M.m>::keras=<M.m>]``."""
    parts = [test_id, metric]
    if device_key is not None:
        parts.append(f"device={device_key}")
    if versions is not None:
        parts.append(f"tf={_major_minor(versions.get('tensorflow'))}")
        parts.append(f"keras={_major_minor(versions.get('keras'))}")
    return "::".join(parts)


def _band(baseline: float, tolerance: float, direction: str, relative: bool) -> tuple[
        float, float, str]:
    """``(low, high, text)`` of the values that pass against ``baseline``."""
    allowed = tolerance * abs(baseline) if relative else tolerance
    low, high = -math.inf, math.inf
    if direction in ("higher", "both"):
        low = baseline - allowed
    if direction in ("lower", "both"):
        high = baseline + allowed
    if direction == "higher":
        text = f">= {low:.6g}"
    elif direction == "lower":
        text = f"<= {high:.6g}"
    else:
        text = f"in [{low:.6g}, {high:.6g}]"
    return low, high, text


def _describe_tolerance(tolerance: float, direction: str, relative: bool) -> str:
    unit = f"{tolerance:g} relative" if relative else f"{tolerance:g} absolute"
    way = {"higher": "higher is better", "lower": "lower is better", "both": "two-sided"}
    return f"tolerance {unit}, {way[direction]}"


def _round(value: float) -> float:
    """Seven significant digits: enough for any metric, short enough to review."""
    return float(f"{value:.7g}")


# ---------------------------------------------------------------------------
# the fixture object


_PENDING = pytest.StashKey[list]()  # on the item: updates waiting for the test's outcome
_CHECKED = pytest.StashKey[set]()  # on the item: (path, key) checked, to catch duplicates
_FAILED_KEY = pytest.StashKey[str]()  # on the item: the phase in which the test failed
_WRITTEN = pytest.StashKey[list]()  # on the config: what write_updates did, for the summary


class Baselines:
    """What the ``rnn_baseline`` fixture returns: checks this test's metrics against the store."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._config = request.config
        self._settings = options.get(request.config)
        self._node = request.node

    @property
    def directory(self) -> Path:
        return self._settings.baselines

    @property
    def updating(self) -> bool:
        return self._settings.update_baselines

    def default_file(self) -> str:
        """The file this test's entries go to without ``file=``: its module's name."""
        return _module_path(self._node.nodeid).rsplit("/", 1)[-1].removesuffix(".py")

    def path(self, file: str | None = None) -> Path:
        return self.directory / f"{self._file_stem(file)}.json"

    def key(self, metric: str, *, file: str | None = None, hardware: bool = False,
            versioned: bool = False) -> str:
        """The entry key :meth:`check` uses for ``metric`` in this test."""
        _check_metric(metric)
        test_id = _test_id(self._node.nodeid)
        stem = self._file_stem(file)
        if stem != self.default_file():
            test_id = f"{self.default_file()}::{test_id}"
        device_key = self._device().key if hardware else None
        versions = runtime_versions.versions() if versioned else None
        return entry_key(test_id, metric, device_key=device_key, versions=versions)

    def check(
        self,
        metric: str,
        value: float,
        *,
        tolerance: float,
        higher_is_better: bool | None = True,
        relative: bool = False,
        file: str | None = None,
        hardware: bool = False,
        versioned: bool = False,
        seeds: Any = None,
        note: str | None = None,
    ) -> CheckResult:
        """Compare ``value`` of ``metric`` with its stored baseline (or record it).

        ``tolerance``: absolute in the metric's unit, or a fraction of ``|baseline|``
        with ``relative=True``. ``higher_is_better``: ``True``/``False``, or ``None``
        for a two-sided band. ``file``: baseline file stem (default: the test module's
        name). ``hardware``: key the entry by ``rnn_device.key`` (timings, cuDNN).
        ``versioned``: key it by TF/Keras major.minor. ``seeds`` (JSON-serialisable,
        default: base seed and this test's seed) and ``note`` (e.g. how the tolerance
        was calibrated) are stored with the entry when recording.

        Fails the test with baseline, measured value, allowed band, file and key; a
        missing entry fails with the command that records it. Under
        ``--rnn-update-baselines`` it records instead and passes (unless the value
        is not finite); the entry is written at session end if the test passed.
        """
        tolerance = _check_tolerance(tolerance)
        if higher_is_better not in DIRECTIONS:
            raise ValueError(
                f"higher_is_better must be True, False or None (two-sided); "
                f"got {higher_is_better!r}"
            )
        if not isinstance(relative, bool):
            raise ValueError(f"relative must be True or False; got {relative!r}")
        if not _is_number(value):
            raise ValueError(f"value must be a real number; got {value!r} for metric {metric!r}")
        value = float(value)
        key = self.key(metric, file=file, hardware=hardware, versioned=versioned)
        path = self.path(file)
        self._claim(path, key)
        stored = read_baseline_file(path).get(key)
        ask = CheckResult(
            file=_shown_path(path, self._config), key=key, metric=metric, value=float(value),
            baseline=None if stored is None else float(stored["value"]), tolerance=tolerance,
            direction=DIRECTIONS[higher_is_better], relative=relative, passed=False,
            updated=False, bound="", message="",
        )
        if self.updating:
            return self._record_update(ask, path, seeds, note)
        if stored is None:
            return self._finish(ask, passed=False, bound="(no baseline)", message=(
                f"no baseline for {metric} = {ask.value:.6g}: file {ask.file} has no entry "
                f"{key!r}. Missing baselines fail rather than pass. Record it with:\n"
                f"    {self.update_command()}\n"
                f"then review and commit {ask.file}."
            ))
        was = _describe_tolerance(stored["tolerance"], stored["direction"], stored["relative"])
        now = _describe_tolerance(tolerance, ask.direction, relative)
        if was != now:
            return self._finish(ask, passed=False, bound="(stale entry)", message=(
                f"stale baseline {key!r} in {ask.file}: it was recorded with {was}, the test "
                f"now asks for {now}. Re-record it with:\n    {self.update_command()}"
            ))
        low, high, bound = _band(ask.baseline, tolerance, ask.direction, relative)
        passed = math.isfinite(ask.value) and low <= ask.value <= high
        recorded = stored["recorded_on"]
        return self._finish(ask, passed=passed, bound=bound, message=(
            f"{metric} {'within' if passed else 'outside'} its baseline band: measured "
            f"{ask.value:.6g}, baseline {ask.baseline:.6g}, allowed {bound} ({now}); "
            f"file {ask.file}, key {key!r}; baseline recorded {stored['recorded_at']} on "
            f"{recorded.get('device', '?')} with TensorFlow {recorded.get('tensorflow', '?')}, "
            f"Keras {recorded.get('keras', '?')}"
        ))

    def update_command(self) -> str:
        """The command line that records this test's baselines."""
        return update_command(self._config, self._node.nodeid)

    # -- internals ------------------------------------------------------------------------

    def _file_stem(self, file: str | None) -> str:
        if file is None:
            return self.default_file()
        if not isinstance(file, str):
            raise ValueError(f"file must be a file name (str); got {file!r}")
        stem = file.removesuffix(".json")
        if not _NAME_RE.match(stem):
            raise ValueError(
                f"file must be a plain file name (letters, digits, '_', '-', '.'; no directory); "
                f"got {file!r}"
            )
        return stem

    def _device(self):
        return self._request.getfixturevalue("rnn_device")

    def _claim(self, path: Path, key: str) -> None:
        checked = self._node.stash.setdefault(_CHECKED, set())
        if (path, key) in checked:
            raise ValueError(
                f"this test checks baseline {key!r} of {path.name} twice; give each "
                f"measurement its own metric name"
            )
        checked.add((path, key))

    def _record_update(self, ask: CheckResult, path: Path, seeds: Any,
                       note: str | None) -> CheckResult:
        """Keep the new entry on the test item until its outcome is known (see after_report)."""
        if not math.isfinite(ask.value):
            return self._finish(ask, passed=False, bound="(not finite)", message=(
                f"cannot record baseline {ask.key!r} in {ask.file}: {ask.metric} = {ask.value!r}"
            ))
        entry = {
            "value": _round(ask.value),
            "tolerance": ask.tolerance,
            "direction": ask.direction,
            "relative": ask.relative,
            "seeds": self._seeds(seeds),
            "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "recorded_on": self._recorded_on(),
        }
        if note is not None:
            entry["note"] = str(note)
        if ask.baseline is None:
            bound, was = "(new)", "new entry"
        else:
            bound = _band(ask.baseline, ask.tolerance, ask.direction, ask.relative)[2]
            was = f"was {ask.baseline:.6g}, band {bound}"
        result = replace(ask, passed=True, updated=True, bound=bound, message=(
            f"recording {ask.metric} = {ask.value:.6g} as baseline {ask.key!r} in {ask.file} "
            f"({was})"
        ))
        self._node.stash.setdefault(_PENDING, []).append((result, str(path), entry))
        return result

    def _seeds(self, seeds: Any) -> Any:
        if seeds is None:
            base = self._settings.seed
            return {"base": base, "test": seeding.derive_seed(base, self._node.nodeid)}
        try:
            return json.loads(json.dumps(seeds))
        except (TypeError, ValueError):
            raise ValueError(f"seeds must be JSON-serialisable; got {seeds!r}") from None

    def _recorded_on(self) -> dict:
        versions = runtime_versions.versions()
        # The device key needs TensorFlow; a test that trains a model has imported it already.
        if runtime_versions.tensorflow_imported():
            device_key = self._device().key
        else:
            device_key = "unknown (TensorFlow not imported)"
        return {
            "host": platform.node(),
            "device": device_key,
            "python": platform.python_version(),
            "tensorflow": versions["tensorflow"],
            "keras": versions["keras"],
            "numpy": runtime_versions.package_version("numpy"),
            "backend": runtime_versions.keras_backend_name(),
        }

    def _finish(self, ask: CheckResult, *, passed: bool, bound: str,
                message: str) -> CheckResult:
        """Record the comparison, then fail the test if it did not pass."""
        result = replace(ask, passed=passed, bound=bound, message=message)
        _add_record(self._config, self._node.nodeid, result)
        if not passed:
            pytest.fail(message, pytrace=False)
        return result


def _add_record(config: pytest.Config, nodeid: str, result: CheckResult,
                entry: dict | None = None, path: str | None = None, note: str | None = None
                ) -> None:
    data = {
        "file": result.file,
        "key": result.key,
        "baseline": result.baseline,
        "value": result.value if math.isfinite(result.value) else str(result.value),
        "tolerance": result.tolerance,
        "direction": result.direction,
        "relative": result.relative,
        "bound": result.bound,
        "passed": result.passed,
        "updated": result.updated,
        "message": result.message,
    }
    if entry is not None:
        data["entry"] = entry
        data["path"] = path
    if note:
        data["not_written"] = note
    records.of(config).add(RECORD_KIND, nodeid, result.metric, **data)


def _check_metric(metric: Any) -> None:
    if not isinstance(metric, str) or not _METRIC_RE.match(metric):
        raise ValueError(
            f"metric must be a non-empty name of letters, digits and '_.-/%' (no '::' or "
            f"spaces); got {metric!r}"
        )


def _check_tolerance(tolerance: Any) -> float:
    if not _is_number(tolerance) or not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    return float(tolerance)


def _module_path(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _test_id(nodeid: str) -> str:
    parts = nodeid.split("::", 1)
    return parts[1] if len(parts) == 2 else nodeid


def _shown_path(path: Path, config: pytest.Config) -> str:
    """``path`` relative to the directory pytest was started in, when it lies below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


def update_command(config: pytest.Config, nodeid: str) -> str:
    """``[cd ROOT &&] pytest --rnn-update-baselines [--rnn-baselines D] [--rnn-seed N] ID``."""
    settings = options.get(config)
    root = Path(config.rootpath)
    words = ["pytest", UPDATE_FLAG]
    if settings.baselines != root / "baselines":
        words += ["--rnn-baselines", str(settings.baselines)]
    if settings.seed != options.DEFAULT_SEED:
        words += ["--rnn-seed", str(settings.seed)]
    words.append(nodeid)
    command = " ".join(shlex.quote(w) for w in words)
    if Path(config.invocation_params.dir) != root:
        command = f"cd {shlex.quote(str(root))} && {command}"
    return command


# ---------------------------------------------------------------------------
# hooks: outcome of each test, writing at session end, the summary table


def after_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Called for each phase report: after teardown, publish the pending updates.

    An entry is only written if its test passed all phases, so a test whose later
    assertions fail does not leave a baseline behind.
    """
    pending = item.stash.get(_PENDING, None)
    if not pending:
        return
    if report.failed:
        item.stash[_FAILED_KEY] = report.when
    if report.when != "teardown":
        return
    failed_in = item.stash.get(_FAILED_KEY, None)
    for result, path, entry in pending:
        if failed_in is None:
            _add_record(item.config, item.nodeid, result, entry=entry, path=path)
        else:
            note = f"test failed ({failed_in}); entry not written"
            _add_record(item.config, item.nodeid, replace(result, updated=False), note=note)
    pending.clear()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def write_updates(session: pytest.Session) -> None:
    """At session end, in the process that owns the run, write the recorded entries.

    Under xdist the controller has every worker's records by now
    (``pytest_testnodedown`` runs before ``pytest_sessionfinish``); workers write nothing.
    """
    config = session.config
    if is_worker(config) or not options.get(config).update_baselines:
        return
    by_path: dict[str, dict[str, dict]] = {}
    for record in records.of(config).of_kind(RECORD_KIND):
        entry = record.data.get("entry")
        if record.data.get("updated") and entry is not None:
            by_path.setdefault(record.data["path"], {})[record.data["key"]] = entry
    outcomes = config.stash.setdefault(_WRITTEN, [])
    for path, entries in sorted(by_path.items()):
        try:
            old = write_entries(Path(path), entries)
        except (BaselineFileError, OSError, TimeoutError) as exc:
            outcomes.append((path, None, str(exc)))
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            continue
        changed = sum(1 for k, e in entries.items() if _substance(old.get(k)) != _substance(e))
        kept = len(set(old) - set(entries))
        outcomes.append((path, (len(entries), changed, kept), None))


def _substance(entry: dict | None) -> dict | None:
    """An entry without when and where it was recorded: what a reviewer compares."""
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k not in ("recorded_at", "recorded_on")}


def summary(terminalreporter, config: pytest.Config) -> None:
    """A short table of the baselines checked or recorded in this run."""
    rows = records.of(config).of_kind(RECORD_KIND)
    if not rows or is_worker(config):
        return
    write = terminalreporter.write_line
    failed = [r for r in rows if not r.data["passed"]]
    updated = [r for r in rows if r.data["updated"]]
    skipped = [r for r in rows if r.data.get("not_written")]
    terminalreporter.section("pytest-rnn baselines", sep="-")
    within = len(rows) - len(failed) - len(updated) - len(skipped)
    write(f"{len(rows)} metric(s): {within} within baseline, {len(failed)} failed, "
          f"{len(updated)} recorded" + (f", {len(skipped)} not recorded (test failed)"
                                        if skipped else ""))
    width = min(60, max(len(_row_name(r)) for r in rows))
    write(f"  {'status':<8} {'file :: key':<{width}} {'baseline':>10} {'measured':>10}  allowed")
    limit = 40
    for record in sorted(rows, key=lambda r: (r.data["passed"], _row_name(r)))[:limit]:
        data = record.data
        status = _status(data)
        baseline = "-" if data["baseline"] is None else f"{data['baseline']:.4g}"
        value = data["value"] if isinstance(data["value"], str) else f"{data['value']:.4g}"
        name = _row_name(record)
        if len(name) > width:
            name = "..." + name[-(width - 3):]
        write(f"  {status:<8} {name:<{width}} {baseline:>10} {value:>10}  {data['bound']}")
    if len(rows) > limit:
        write(f"  ... and {len(rows) - limit} more")
    for path, counts, error in config.stash.get(_WRITTEN, []):
        shown = _shown_path(Path(path), config)
        if error:
            write(f"NOT WRITTEN {shown}: {error}", red=True)
        else:
            written, changed, kept = counts
            write(f"wrote {shown}: {written} entr{'y' if written == 1 else 'ies'} recorded "
                  f"({changed} new or changed), {kept} other(s) kept")


def _row_name(record) -> str:
    return f"{Path(record.data['file']).stem} :: {record.data['key']}"


def _status(data: dict) -> str:
    if data.get("not_written"):
        return "SKIPPED"
    if data["updated"]:
        return "recorded"
    if data["passed"]:
        return "ok"
    return {"(no baseline)": "MISSING", "(stale entry)": "STALE"}.get(data["bound"], "FAIL")
