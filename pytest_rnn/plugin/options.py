"""Command-line options, ini values and environment variables of pytest-rnn.

Every setting is declared once in :data:`SETTINGS`; :func:`register` adds them to
pytest and :func:`resolve` reads them with one precedence rule for all of them:
command line, then ini file, then environment variable, then the default.
Values are validated when the run starts, so a bad value is a usage error that
names the option, not a failure deep inside some test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEFAULT_SEED = 1234


@dataclass(frozen=True)
class Setting:
    """One setting reachable from the command line, an ini key and/or an env var."""

    dest: str
    flag: str
    help: str
    ini: str | None = None
    env: str | None = None
    kind: str = "str"  # "str", "int", "path", "flag"
    default: Any = None
    metavar: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "rnn_seed",
        "--rnn-seed",
        f"base seed from which every test's seed is derived (default: {DEFAULT_SEED})",
        ini="rnn_seed",
        env="PYTEST_RNN_SEED",
        kind="int",
        default=DEFAULT_SEED,
        metavar="N",
    ),
    Setting(
        "rnn_imdb_path",
        "--rnn-imdb-path",
        "IMDB data file: the pickle-free subset (.npz) or Keras's original imdb.npz",
        ini="rnn_imdb_path",
        env="PYTEST_RNN_IMDB_PATH",
        kind="path",
        metavar="PATH",
    ),
    Setting(
        "rnn_baselines",
        "--rnn-baselines",
        "directory of stored baselines (default: baselines/ at the rootdir)",
        ini="rnn_baselines",
        env="PYTEST_RNN_BASELINES",
        kind="path",
        metavar="DIR",
    ),
    Setting(
        "rnn_update_baselines",
        "--rnn-update-baselines",
        "record or refresh the baselines of the tests that run, instead of checking them",
        kind="flag",
        default=False,
    ),
    Setting(
        "rnn_calibrate",
        "--rnn-calibrate",
        "train N seeds for each power-checked baseline (rnn_baseline.check_sample) and record "
        "their distribution instead of checking (e.g. --rnn-calibrate 20)",
        kind="int",
        default=0,
        metavar="N",
    ),
    Setting(
        "rnn_require_gpu",
        "--rnn-require-gpu",
        "make a missing GPU an error for the whole run instead of skipping @gpu tests",
        ini="rnn_require_gpu",
        env="PYTEST_RNN_REQUIRE_GPU",
        kind="flag",
        default=False,
    ),
    Setting(
        "rnn_deterministic",
        "--rnn-deterministic",
        "also ask the backend for deterministic kernels (TensorFlow's op determinism, "
        "PyTorch's deterministic algorithms, XLA's deterministic GPU ops on JAX)",
        ini="rnn_deterministic",
        env="PYTEST_RNN_DETERMINISTIC",
        kind="flag",
        default=False,
    ),
    Setting(
        "rnn_skip_cross_backend",
        "--rnn-skip-cross-backend",
        "skip the cross_backend tests (the contract's test_backends_agree and the like), which "
        "start one subprocess per installed Keras backend",
        ini="rnn_skip_cross_backend",
        env="PYTEST_RNN_SKIP_CROSS_BACKEND",
        kind="flag",
        default=False,
    ),
    Setting(
        "rnn_report",
        "--rnn-report",
        "write a self-contained HTML report of this run to PATH",
        kind="path",
        metavar="PATH",
    ),
)

_BY_DEST = {s.dest: s for s in SETTINGS}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnn", "pytest-rnn: Keras recurrent-layer regression checks")
    for s in SETTINGS:
        if s.kind == "flag":
            group.addoption(s.flag, action="store_true", default=None, dest=s.dest, help=s.help)
        else:
            group.addoption(s.flag, action="store", default=None, dest=s.dest,
                            metavar=s.metavar, help=s.help)
        if s.ini:
            ini_type = "bool" if s.kind == "flag" else "string"
            parser.addini(s.ini, help=f"{s.help} (same as {s.flag})", type=ini_type, default=None)


def _convert(setting: Setting, raw: Any, origin: str, base_dir: Path) -> Any:
    if setting.kind == "flag":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise pytest.UsageError(
            f"pytest-rnn: {origin} must be a boolean (one of 1/0, true/false, yes/no, on/off), "
            f"got {raw!r}"
        )
    if setting.kind == "int":
        try:
            value = int(str(raw).strip(), 10)
        except ValueError:
            raise pytest.UsageError(
                f"pytest-rnn: {origin} must be a non-negative integer, got {raw!r}"
            ) from None
        if value < 0:
            raise pytest.UsageError(
                f"pytest-rnn: {origin} must be a non-negative integer, got {raw!r}"
            )
        return value
    if setting.kind == "path":
        text = str(raw).strip()
        if not text:
            raise pytest.UsageError(f"pytest-rnn: {origin} is empty; give a path")
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (base_dir / path)
    return raw


def _raw(config: pytest.Config, setting: Setting) -> tuple[Any, str, Path] | None:
    """``(raw value, where it came from, base directory for paths)`` or None if unset."""
    cwd = Path(config.invocation_params.dir)
    raw = config.getoption(setting.dest, default=None)
    if raw is not None:
        return raw, setting.flag, cwd
    if setting.ini:
        try:
            raw = config.getini(setting.ini)
        except (ValueError, pytest.UsageError) as exc:  # pytest: "invalid truth value 'maybe'"
            raise pytest.UsageError(
                f"pytest-rnn: ini value {setting.ini} must be a boolean (one of 1/0, "
                f"true/false, yes/no, on/off); {exc}"
            ) from None
        if raw not in (None, "", []):
            ini_dir = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
            return raw, f"ini value {setting.ini!r}", ini_dir
    if setting.env:
        raw = os.environ.get(setting.env)
        if raw is not None:
            return raw, f"environment variable {setting.env}", cwd
    return None


def origin(config: pytest.Config, dest: str) -> str:
    """Where the value of setting ``dest`` came from, as a user would write it."""
    setting = _BY_DEST[dest]
    found = _raw(config, setting)
    if found is None or found[1] == setting.flag:
        return setting.flag
    raw, where, _ = found
    if where.startswith("environment"):
        return f"environment variable {setting.env}={raw}"
    return f"ini value {setting.ini} = {raw}"


def resolve(config: pytest.Config, dest: str) -> Any:
    """The effective value of setting ``dest``: command line > ini > environment > default."""
    setting = _BY_DEST[dest]
    found = _raw(config, setting)
    if found is not None:
        raw, where, base = found
        return _convert(setting, raw, where, base)
    if dest == "rnn_baselines":
        return Path(config.rootpath) / "baselines"
    return setting.default


@dataclass(frozen=True)
class RnnSettings:
    seed: int
    imdb_path: Path | None
    baselines: Path
    update_baselines: bool
    calibrate: int
    require_gpu: bool
    deterministic: bool
    report: Path | None
    skip_cross_backend: bool = False
    #: whether the baselines directory was named (option, ini or variable), not defaulted
    baselines_named: bool = False


def validate(config: pytest.Config) -> RnnSettings:
    """Resolve and check every setting once, at configure time."""
    settings = RnnSettings(
        seed=resolve(config, "rnn_seed"),
        imdb_path=resolve(config, "rnn_imdb_path"),
        baselines=resolve(config, "rnn_baselines"),
        update_baselines=bool(resolve(config, "rnn_update_baselines")),
        calibrate=resolve(config, "rnn_calibrate") or 0,
        require_gpu=bool(resolve(config, "rnn_require_gpu")),
        deterministic=bool(resolve(config, "rnn_deterministic")),
        report=resolve(config, "rnn_report"),
        skip_cross_backend=bool(resolve(config, "rnn_skip_cross_backend")),
        baselines_named=_raw(config, _BY_DEST["rnn_baselines"]) is not None,
    )
    if settings.baselines.exists() and not settings.baselines.is_dir():
        raise pytest.UsageError(
            f"pytest-rnn: --rnn-baselines must be a directory, but {settings.baselines} is a file"
        )
    if settings.calibrate == 1 or settings.calibrate < 0:
        raise pytest.UsageError(
            f"pytest-rnn: --rnn-calibrate needs N >= 2 seeds (a spread needs two values); "
            f"got {settings.calibrate}"
        )
    if settings.report is not None and settings.report.is_dir():
        raise pytest.UsageError(
            f"pytest-rnn: --rnn-report must name a file, but {settings.report} is a directory"
        )
    return settings


_SETTINGS_KEY = pytest.StashKey[RnnSettings]()


def store(config: pytest.Config, settings: RnnSettings) -> None:
    config.stash[_SETTINGS_KEY] = settings


def get(config: pytest.Config) -> RnnSettings:
    """The validated settings of this run (available from ``pytest_configure`` on)."""
    return config.stash[_SETTINGS_KEY]


def command_line_words(config: pytest.Config, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The pytest-rnn options of this run's command line, as ``--flag=value`` words.

    For commands printed for the user to run again (``--rnn-update-baselines``): the
    values are the resolved ones (absolute paths), so the command works from any folder.
    """
    words = []
    for s in SETTINGS:
        if s.dest in exclude or config.getoption(s.dest, default=None) is None:
            continue
        value = resolve(config, s.dest)
        if s.kind == "flag":
            if value:
                words.append(s.flag)
        else:
            words.append(f"{s.flag}={value}")
    return words
