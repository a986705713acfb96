"""pytest's non-public names that pytest-rnn uses (see :mod:`pytest_rnn.adapters`).

They serve one repair only (:mod:`pytest_rnn.plugin.cmdline`): pytest decides the rootdir
and ini file before plugins from entry points are loaded, so ``--rnn-imdb-path PATH`` (the
value in its own argument) can pass for a test path and move them. pytest has no public API
to redo that decision, so the repair calls pytest's own ``determine_setup`` and sets the
decided paths on the config the way ``Config.parse`` does. The rest of pytest-rnn uses
pytest's public API only.

The repair was kept rather than dropped for pytest's documented answer (write such
options as ``--opt=VALUE``): a project's configuration (its seed, baselines folder and
test paths) silently moving with a data file's folder is the kind of quiet change
pytest-rnn exists to prevent, and the ``=`` form cannot be enforced on every command line
a user's CI writes. When these internals change, :func:`repair_parts` raises
:class:`~pytest_rnn.adapters.InternalChanged`; the plugin then warns and names the ``=``
form (a user's run is not failed for it), and ``tests/test_adapters.py`` fails.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from pytest_rnn.adapters import Internal, changed, resolve

_WHY = "redo the rootdir/ini decision when a separate option value misled it"

DETERMINE_SETUP = Internal("pytest", "_pytest.config.findpaths", "determine_setup", _WHY,
                           ("inifile", "args", "rootdir_cmd_arg", "invocation_dir"))
CHECK_VERSION = Internal("pytest", "_pytest.config", "Config._checkversion", _WHY)
VALIDATE_PLUGINS = Internal("pytest", "_pytest.config", "Config._validate_plugins", _WHY)
PARSE_KNOWN_ARGS = Internal("pytest", "_pytest.config.argparsing", "Parser.parse_known_args",
                            _WHY, ("args", "namespace"))
#: Attributes a parsed Config carries (set per instance: checked on a live config by
#: :func:`check_config`). The ini values are ``_inicfg`` from pytest 8.1, ``inicfg`` in 8.0.
CONFIG_ATTRIBUTES = ("_parser", "_rootpath", "_inipath", "_inicache")
INI_VALUES = ("_inicfg", "inicfg")
CONFIG = Internal("pytest", "_pytest.config", "Config", _WHY)

INTERNALS = [DETERMINE_SETUP, CHECK_VERSION, VALIDATE_PLUGINS, PARSE_KNOWN_ARGS, CONFIG]


def check_config(config: Any) -> None:
    """:class:`~pytest_rnn.adapters.InternalChanged` unless ``config`` carries the private
    attributes the repair reads and sets."""
    missing = [a for a in CONFIG_ATTRIBUTES if not hasattr(config, a)]
    if not any(hasattr(config, a) for a in INI_VALUES):
        missing.append(" or ".join(INI_VALUES))
    if not hasattr(getattr(config, "_parser", None), "extra_info"):
        missing.append("_parser.extra_info")
    if missing:
        raise changed(CONFIG, f"a parsed Config has no {', '.join(missing)}")


def parse_known_args(config: Any, args: list[str]) -> Any:
    """pytest's own parse of ``args`` (with every plugin's options), on a copy of the
    config's option namespace."""
    check_config(config)
    resolve(PARSE_KNOWN_ARGS)
    return config._parser.parse_known_args(args, namespace=copy.copy(config.option))


def determine(config: Any, ns: Any) -> tuple:
    """``(rootpath, inipath, inicfg[, ignored files])`` as pytest decides them for ``ns``."""
    determine_setup = resolve(DETERMINE_SETUP)
    kwargs = {
        "inifile": ns.inifilename,
        "args": list(ns.file_or_dir),
        "rootdir_cmd_arg": ns.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    if "override_ini" in inspect.signature(determine_setup).parameters:
        kwargs["override_ini"] = ns.override_ini
    return tuple(determine_setup(**kwargs))


def adopt(config: Any, found: tuple) -> None:
    """Set the decided rootdir, ini file and ini values on ``config`` as Config.parse does."""
    check_config(config)
    config._rootpath, config._inipath = found[0], found[1]
    setattr(config, next(a for a in INI_VALUES if hasattr(config, a)), found[2])
    if len(found) > 3 and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = found[3]
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(found[0])
    config._parser.extra_info["inifile"] = str(found[1])


def recheck(config: Any) -> None:
    """pytest's ``minversion`` and ``required_plugins`` checks, against the adopted ini."""
    resolve(CHECK_VERSION)
    resolve(VALIDATE_PLUGINS)
    config._checkversion()
    config._validate_plugins()
