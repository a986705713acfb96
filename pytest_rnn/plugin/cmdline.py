"""``--rnn-imdb-path /data/imdb.npz`` (a value in its own argument) must not move the rootdir.

Why this module exists: pytest chooses the rootdir and the ini file in
``Config.parse`` *before* it loads plugins from entry points. At that moment
``--rnn-imdb-path`` is an unknown option, so argparse takes the argument after it
for a test path; when that path exists, its folder steers the rootdir and ini
search (pytest's documentation, "Finding the rootdir", and its issues #1435 and
#8846 describe this for every plugin option that takes a path). The project's ini
is then lost: its ``rnn_seed``, ``pythonpath``, ``addopts`` and ``testpaths``, and
the default baselines folder moves beside the data file. The ``--opt=value`` form
is immune because the value never stands alone.

The first hook a plugin from an entry point receives with the early config and
the argument list is ``pytest_load_initial_conftests``. It runs before any
conftest is imported, before the command line is parsed in full and before the
test paths are decided, so a decision corrected there is the one the run uses.
:func:`repair` redoes pytest's own rootdir/ini determination (its
``determine_setup``, reached through the pytest adapter) with the test paths as pytest reads
them now that it knows pytest-rnn's options, and when the answer differs, adopts
it the way ``Config.parse`` would have: the ini's ``addopts`` (and their ``-p``
plugins and ``-o`` overrides), ``pythonpath``, ``confcutdir``, ``minversion`` and
``required_plugins``.

pytest has no public API to change a decided rootdir: the private names this takes live
in :mod:`pytest_rnn.adapters.pytest_internals` (which says why the repair is kept). It
acts only when one of pytest-rnn's own value options was given in the separate form: a
run that does not use pytest-rnn, or uses only the ``=`` form, is left exactly as pytest
set it up. If pytest's internals differ from what the adapter expects, the run goes on as
pytest set it up and a warning names the ``=`` form as the way out.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import pytest

from pytest_rnn.adapters import InternalChanged
from pytest_rnn.adapters import pytest_internals as internals
from pytest_rnn.plugin import options


def value_flags() -> tuple[str, ...]:
    """pytest-rnn's options that take a value (the ones whose value can pass for a path)."""
    return tuple(s.flag for s in options.SETTINGS if s.kind != "flag")


def separate_values(args: Sequence[str]) -> list[str]:
    """Values given to pytest-rnn's options as their own argument (``--opt value``)."""
    flags = set(value_flags())
    out = []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in flags and i + 1 < len(args):
            out.append(args[i + 1])
    return out


def repair(config: pytest.Config, args: list[str]) -> bool:
    """Correct the rootdir and ini file when a separate option value misled pytest.

    ``args`` is the list pytest goes on to parse (changed in place when the ini's
    ``addopts`` change). Returns whether anything was corrected.
    """
    if not separate_values(args):
        return False
    try:
        return _repair(config, args)
    except InternalChanged as exc:
        flags = "=VALUE, ".join(value_flags()) + "=VALUE"
        warnings.warn(pytest.PytestConfigWarning(
            f"pytest-rnn: could not check the rootdir pytest chose ({exc}); if it is not "
            f"your project's, write the options as {flags}"
        ), stacklevel=1)
        return False


def _repair(config: pytest.Config, args: list[str]) -> bool:
    # What the wrongly found ini added in front of the command line comes off first.
    old_addopts = list(config.getini("addopts"))
    rest = list(args)
    if old_addopts and rest[: len(old_addopts)] == old_addopts:
        rest = rest[len(old_addopts):]
    ns = internals.parse_known_args(config, rest)
    found = internals.determine(config, ns)
    rootpath, inipath = found[0], found[1]
    if rootpath == config.rootpath and inipath == config.inipath:
        return False

    for path in map(str, config.getini("pythonpath")):  # the wrong ini's sys.path entries
        if path in sys.path:
            sys.path.remove(path)
    internals.adopt(config, found)
    new_addopts = list(config.getini("addopts"))
    args[:] = new_addopts + rest
    ns = internals.parse_known_args(config, args)
    if new_addopts and ns.override_ini:  # -o in the ini's addopts
        internals.adopt(config, internals.determine(config, ns))
    if ns.confcutdir is None:
        ns.confcutdir = str(inipath.parent if inipath is not None else rootpath)
    config.known_args_namespace = ns
    # As Config._configure_python_path; pytest's own clean-up removes them at the end.
    for path in reversed(config.getini("pythonpath")):
        sys.path.insert(0, str(path))
    config.pluginmanager.consider_preparse(new_addopts, exclude_only=False)
    internals.recheck(config)
    return True

