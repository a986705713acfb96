"""Installed packages' metadata, read from disk once per session for the inner runs.

Each in-process pytester run (190 in the fast suite) is a whole pytest session, and each
session reads every installed distribution's METADATA, entry points and RECORD from disk
twice (pluggy loading the ``pytest11`` plugins, pytest marking them for assertion
rewriting), and once more for pytest-randomly's seeders: 11 ms of the 48 ms a one-test
inner run takes here. Nothing is installed into this environment while the suite runs (the
tests that install do it into environments of their own, in subprocesses), so the outer
session reads each distribution once and every inner run gets the same answers.

Only :func:`importlib.metadata.distributions` without arguments is served from the snapshot,
one reading for each ``sys.path`` it is asked under; a lookup by name or path reads the disk
as before.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import sys
from collections.abc import Iterator
from typing import Any


class ReadOnce(metadata.Distribution):
    """``dist`` with its files, metadata, entry points and file list read at most once."""

    def __init__(self, dist: metadata.Distribution) -> None:
        self.dist = dist
        self._texts: dict[str, str | None] = {}

    def read_text(self, filename: str) -> str | None:
        if filename not in self._texts:
            self._texts[filename] = self.dist.read_text(filename)
        return self._texts[filename]

    def locate_file(self, path: Any) -> Any:
        return self.dist.locate_file(path)

    @functools.cached_property
    def metadata(self) -> Any:  # type: ignore[override]
        return self.dist.metadata

    @functools.cached_property
    def entry_points(self) -> metadata.EntryPoints:  # type: ignore[override]
        return self.dist.entry_points

    @functools.cached_property
    def files(self) -> Any:  # type: ignore[override]
        return self.dist.files


def install() -> None:
    """Serve ``importlib.metadata.distributions()`` from one reading per ``sys.path`` (the
    places it searches; tests may reorder them, each inner run restores its own changes)
    until :func:`remove`."""
    live = metadata.distributions
    if hasattr(live, "live"):  # installed already
        return
    readings: dict[tuple[str, ...], list[ReadOnce]] = {}

    def distributions(**query: Any) -> Iterator[metadata.Distribution]:
        if query:
            return live(**query)
        where = tuple(sys.path)
        if where not in readings:
            readings[where] = [ReadOnce(dist) for dist in live()]
        return iter(readings[where])

    distributions.live = live  # type: ignore[attr-defined]
    metadata.distributions = distributions


def remove() -> None:
    metadata.distributions = getattr(metadata.distributions, "live", metadata.distributions)
