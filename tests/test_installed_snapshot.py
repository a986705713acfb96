"""The inner runs' snapshot of installed packages (installed_snapshot) answers what the
disk answers, reads each file once, and leaves lookups by name to the disk."""

from __future__ import annotations

import importlib.metadata as metadata
import sys

import installed_snapshot
import pytest


def test_the_snapshot_is_what_the_disk_holds():
    served = list(metadata.distributions())
    assert served and all(isinstance(d, installed_snapshot.ReadOnce) for d in served), (
        "the session does not serve installed packages from the snapshot")
    on_disk = list(metadata.distributions(path=sys.path))  # a query: read from the disk
    assert [d.metadata["Name"] for d in served] == [d.metadata["Name"] for d in on_disk]
    for dist, disk in zip(served, on_disk, strict=True):
        name = disk.metadata["Name"]
        assert dist.version == disk.version, name
        assert sorted(dist.entry_points) == sorted(disk.entry_points), name
        assert [str(f) for f in dist.files or ()] == [str(f) for f in disk.files or ()], name


def test_a_lookup_by_name_reads_the_disk():
    (dist,) = metadata.distributions(name="pytest")
    assert not isinstance(dist, installed_snapshot.ReadOnce)
    assert metadata.version("pytest") == pytest.__version__


class Counting(metadata.Distribution):
    def __init__(self) -> None:
        self.reads: list[str] = []

    def read_text(self, filename):
        self.reads.append(filename)
        return {"METADATA": "Name: counted\nVersion: 1.0\n",
                "entry_points.txt": "[pytest11]\ncounted = counted.plugin\n",
                "RECORD": "counted/__init__.py,,\n"}.get(filename)

    def locate_file(self, path):
        return path


def test_each_file_is_read_once():
    counting = Counting()
    once = installed_snapshot.ReadOnce(counting)
    for _ in range(3):
        assert once.version == "1.0"
        assert [ep.value for ep in once.entry_points] == ["counted.plugin"]
        assert [str(f) for f in once.files] == ["counted/__init__.py"]
        assert once.read_text("INSTALLER") is None
    assert sorted(counting.reads) == ["INSTALLER", "METADATA", "RECORD", "entry_points.txt"]


def test_an_inner_run_loads_the_installed_plugins_from_the_snapshot(pytester):
    pytester.makepyfile("""
        def test_loaded(request):
            manager = request.config.pluginmanager
            assert manager.has_plugin("rnn") and manager.has_plugin("benchmark")
    """)
    pytester.inline_run().assertoutcome(passed=1)
