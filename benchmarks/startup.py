"""Start-up cost of pytest-rnn in a project that does not use it.

Builds a throw-away project with one plain test (nothing from pytest-rnn: no fixture,
marker or option) and times complete ``python -m pytest`` runs of it in fresh
processes, with the plugin loaded and with ``-p no:rnn``, with the header and
with ``-q``. It also reports whether TensorFlow, Keras, JAX or PyTorch ended up
imported in the run, read by a conftest at the end of the run.

Wall times on a shared machine are noisy: each configuration runs ``--repeat``
times, interleaved, and the table gives the median and the minimum wall time and
the median CPU time (user + system, less sensitive to other load); the overhead
is the difference of the medians. This is a measurement, not a test: nothing here
fails because a number is high.

    python benchmarks/startup.py [--repeat 15] [--collect-only]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_TEST = "def test_plain():\n    assert 1 + 1 == 2\n"

# Reports the heavy frameworks present in sys.modules when the run ends.
PROJECT_CONFTEST = '''
import json, os, sys

def pytest_unconfigure(config):
    out = os.environ.get("STARTUP_BENCH_MODULES")
    if out:
        names = ("tensorflow", "keras", "jax", "torch", "numpy")
        with open(out, "w") as f:
            json.dump({n: n in sys.modules for n in names}, f)
'''

CONFIGS = {
    "without plugin, header": ["-p", "no:rnn"],
    "with plugin, header": [],
    "without plugin, -q": ["-p", "no:rnn", "-q"],
    "with plugin, -q": ["-q"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(project: Path, args: list[str], modules_file: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pytest process."""
    env = dict(os.environ, STARTUP_BENCH_MODULES=str(modules_file))
    env.pop("PYTEST_ADDOPTS", None)
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project, env=env, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 5):
        raise SystemExit(f"pytest {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per configuration")
    parser.add_argument("--collect-only", action="store_true", help="time `pytest --co`")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rnn-startup-") as tmp:
        project = Path(tmp)
        (project / "pytest.ini").write_text("[pytest]\n")
        (project / "conftest.py").write_text(PROJECT_CONFTEST)
        (project / "test_plain.py").write_text(PROJECT_TEST)
        extra = ["--co"] if opts.collect_only else []
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
        imported: dict[str, dict] = {}
        for args in CONFIGS.values():  # warm the file system caches once
            run_once(project, args + extra, project / "modules.json")
        for _ in range(opts.repeat):
            for name, args in CONFIGS.items():
                modules_file = project / "modules.json"
                wall, used = run_once(project, args + extra, modules_file)
                times[name].append(wall)
                cpu[name].append(used)
                if modules_file.exists():
                    imported[name] = json.loads(modules_file.read_text())
                    modules_file.unlink()

    print(f"python -m pytest{' --co' if opts.collect_only else ''} of a one-test project, "
          f"{opts.repeat} runs each")
    print(f"{'configuration':<26} {'wall median':>11} {'wall min':>8} {'CPU median':>10}  "
          "imported at the end")
    for name, values in times.items():
        heavy = [n for n, present in imported.get(name, {}).items() if present] or ["-"]
        print(f"{name:<26} {statistics.median(values):10.3f}s {min(values):7.3f}s "
              f"{statistics.median(cpu[name]):9.3f}s  {', '.join(heavy)}")
    for mode in ("header", "-q"):
        on, off = f"with plugin, {mode}", f"without plugin, {mode}"
        wall = statistics.median(times[on]) - statistics.median(times[off])
        used = statistics.median(cpu[on]) - statistics.median(cpu[off])
        print(f"plugin overhead ({mode}): wall {wall:+.3f} s, CPU {used:+.3f} s "
              "(differences of the medians)")

if __name__ == "__main__":
    main()
