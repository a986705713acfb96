"""Every non-public name of another package that pytest-rnn touches, one module per package.

pytest-rnn watches upgrades of the packages it relies on, so an upgrade that moves one of
their internals must not switch part of pytest-rnn off quietly. Each internal it uses is an
:class:`Internal` listed in its package's adapter (``pytest_internals``,
``keras_internals``, ``tensorflow_internals``, ``jax_internals``, ``torch_internals``,
``benchmark_internals``) and reached only through :func:`resolve`, which raises
:class:`InternalChanged` (one line: the internal, the installed release, what it was for)
when the name is gone or its signature no longer has the parameters pytest-rnn passes.
``tests/test_adapters.py`` resolves every internal of the installed releases, fails on any
that is gone, and fails when a private name of another package appears outside its adapter.

Nothing here imports another package when imported; :func:`resolve` imports on demand.
This subpackage is the bottom layer: it imports nothing else of pytest-rnn.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: The adapter modules, one per foreign package (the distribution whose version they name).
ADAPTERS = {
    "pytest_internals": "pytest",
    "keras_internals": "keras",
    "tensorflow_internals": "tensorflow",
    "jax_internals": "jax",
    "torch_internals": "torch",
    "benchmark_internals": "pytest-benchmark",
}


class InternalChanged(RuntimeError):
    """A non-public name pytest-rnn relies on is gone or changed in the installed release."""


@dataclass(frozen=True)
class Internal:
    """One non-public name of another package: ``module`` imported, then ``attribute`` (a
    dotted path, empty for the module itself) looked up on it."""

    distribution: str  # whose installed version the failure names, e.g. "keras"
    module: str
    attribute: str
    purpose: str  # what pytest-rnn uses it for, said when it is gone
    #: parameters the callable must still accept (pytest-rnn passes or reads them)
    parameters: tuple[str, ...] = ()
    #: the internal is needed only when this returns True (e.g. a release range)
    needed: Callable[[], bool] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}" if self.attribute else self.module

    def needed_here(self) -> bool:
        return self.needed is None or bool(self.needed())


def installed_version(distribution: str) -> str | None:
    """The installed release of a distribution (any TensorFlow distribution counts as
    ``tensorflow``), None when it is not installed."""
    names = [distribution]
    if distribution == "tensorflow":
        names += ["tensorflow-cpu", "tf-nightly", "tensorflow-macos", "tensorflow-intel"]
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def changed(internal: Internal, what: str) -> InternalChanged:
    """The one-line error for ``internal``: ``what`` happened to it."""
    version = installed_version(internal.distribution) or "not installed"
    return InternalChanged(
        f"pytest-rnn relies on {internal.name} of {internal.distribution} {version} to "
        f"{internal.purpose}, and {what}: pytest-rnn's adapter "
        f"(pytest_rnn/adapters) needs updating for this release")


def resolve(internal: Internal) -> Any:
    """The object ``internal`` names, checked; :class:`InternalChanged` when it is not there
    or no longer takes the parameters pytest-rnn uses."""
    try:
        obj = importlib.import_module(internal.module)
    except ImportError as exc:
        raise changed(internal, f"its module cannot be imported ({exc})") from None
    for part in filter(None, internal.attribute.split(".")):
        if not hasattr(obj, part):
            raise changed(internal, f"{part!r} is gone") from None
        obj = getattr(obj, part)
    if internal.parameters:
        try:
            known = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            raise changed(internal, "it is no longer a Python function") from None
        missing = [p for p in internal.parameters if p not in known]
        if missing:
            raise changed(internal, f"it no longer takes {', '.join(missing)}")
    return obj


def owner_and_name(internal: Internal) -> tuple[Any, str]:
    """The object holding ``internal`` and its last name, to replace it for a while (the
    internal itself is resolved first, so a missing one fails here, loudly)."""
    resolve(internal)
    parent = Internal(internal.distribution, internal.module,
                      internal.attribute.rpartition(".")[0], internal.purpose)
    return resolve(parent), internal.attribute.rpartition(".")[2]


@contextlib.contextmanager
def replaced(replacements: dict[Internal, Any]) -> Iterator[dict[Internal, Any]]:
    """Within the block each internal is replaced by its value (a function may be a spy
    that calls the original); yields the originals, restored on exit."""
    targets = {internal: owner_and_name(internal) for internal in replacements}
    saved = {internal: getattr(owner, name) for internal, (owner, name) in targets.items()}
    try:
        for internal, value in replacements.items():
            setattr(*targets[internal], value)
        yield saved
    finally:
        for internal, (owner, name) in targets.items():
            setattr(owner, name, saved[internal])


def internals() -> list[Internal]:
    """Every internal of every adapter."""
    found: list[Internal] = []
    for module in ADAPTERS:
        found += importlib.import_module(f"{__name__}.{module}").INTERNALS
    return found
