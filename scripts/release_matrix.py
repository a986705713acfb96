"""The release matrix: which Keras/TensorFlow pairs noxfile.py runs, and their results.

One session per Keras 3 minor release (its newest patch) plus the declared floor, each
with the newest TensorFlow whose requirements admit that Keras. CI runs the floor, the
newest (its main environment) and one middle release chosen from the commit, so that
every minor release is run over a few commits and a red one reproduces on its commit.

    python scripts/release_matrix.py sessions            # the matrix, one line each
    python scripts/release_matrix.py ci-middle [COMMIT]  # the middle release CI runs
    python scripts/release_matrix.py collect [--write]   # merge the rows nox recorded
    python scripts/release_matrix.py table [--write]     # the docs table from the data

Each nox session (noxfile.py) runs the fast suite with ``--junitxml`` and then
``record`` in the session's own environment, which writes one row (versions, counts,
the ledger entries that apply there and how many tests observed each) under
``.nox/release-matrix/``. ``collect`` merges those rows into docs/release-matrix.json,
the measured record with the date and machine of each row, and ``--write`` regenerates
the table of docs/reference/releases.md from it; tests/test_releases.py checks that the
record covers the matrix, that no row failed, and that the page shows the record.

No import of nox, pytest, Keras or TensorFlow at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import readme_block

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "release-matrix.json"
ROWS = ROOT / ".nox" / "release-matrix"
BLOCK = "release-matrix"
PAGE = ROOT / "docs" / "reference" / "releases.md"
#: Set (to the Keras release) in a matrix session's pytest run: that run produces the
#: record, so the tests that check the record skip there.
SESSION_VARIABLE = "PYTEST_RNN_RELEASE_MATRIX"

#: TensorFlow releases the matrix uses, oldest first, each with the oldest Keras its
#: requirements admit (its ``Requires-Dist: keras>=...``; no upper bound in any of them).
TENSORFLOW_ADMITS_KERAS = {
    "2.16.2": "3.0.0",
    "2.17.1": "3.2.0",
    "2.19.1": "3.5.0",
    "2.20.0": "3.10.0",
    "2.21.0": "3.12.0",
}

#: The declared floor (pyproject's ``keras>=``) and the newest patch of every Keras 3 minor
#: release from there to the newest. A new minor release is a new line here.
KERAS_RELEASES = (
    "3.0.0", "3.0.5", "3.1.1", "3.2.1", "3.3.3", "3.4.1", "3.5.0", "3.6.0", "3.7.0",
    "3.8.0", "3.9.2", "3.10.0", "3.11.3", "3.12.4", "3.13.2", "3.14.1", "3.15.1",
)


#: The pytest tooling the plugin hooks into, at the declared floor (pyproject's ``>=``) and
#: at its newest release: noxfile.py's ``tools`` sessions run the fast suite with each, on
#: the newest Keras and TensorFlow above.
TOOL_RELEASES = {
    "floor": {"pytest": "8.0.0", "pytest-benchmark": "4.0.0"},
    "newest": {"pytest": "9.2.0", "pytest-benchmark": "5.3.1"},
}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def tensorflow_for(keras: str) -> str:
    """The newest TensorFlow of the table whose requirements admit ``keras``."""
    admitting = [tf for tf, floor in TENSORFLOW_ADMITS_KERAS.items()
                 if _key(floor) <= _key(keras)]
    if not admitting:
        raise ValueError(f"no TensorFlow in the matrix admits Keras {keras}; "
                         f"known: {TENSORFLOW_ADMITS_KERAS}")
    return max(admitting, key=_key)


@dataclass(frozen=True)
class Session:
    keras: str
    tensorflow: str
    role: str  # "floor", "middle" or "newest"

    @property
    def id(self) -> str:
        return f"keras='{self.keras}'"


def sessions() -> list[Session]:
    last = len(KERAS_RELEASES) - 1
    return [Session(k, tensorflow_for(k),
                    "floor" if i == 0 else "newest" if i == last else "middle")
            for i, k in enumerate(KERAS_RELEASES)]


def ci_middle(commit: str) -> Session:
    """The middle release CI runs on ``commit`` (a hex object name): the same commit
    always picks the same release, and successive commits walk over all of them."""
    if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit or ""):
        raise ValueError(f"a commit is a hex object name such as 4eccf5b; got {commit!r}")
    middles = [s for s in sessions() if s.role == "middle"]
    return middles[int(commit[:12], 16) % len(middles)]


def head_commit(root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# --- one session's row ---------------------------------------------------------------------

_DEFECT = re.compile(r"known Keras defect (\S+) \(")


def counts(junit: Path) -> dict:
    """passed / failed / errors / skipped / xfailed and per-ledger-entry xfail counts, from
    pytest's JUnit XML (an xfail is a ``skipped`` of type ``pytest.xfail``; a strict
    XPASS is a ``failure``)."""
    root = ET.parse(junit).getroot()
    out = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    observed: dict[str, int] = {}
    for case in root.iter("testcase"):
        kinds = {child.tag: child for child in case}
        if "failure" in kinds:
            out["failed"] += 1
        elif "error" in kinds:
            out["errors"] += 1
        elif "skipped" in kinds:
            skipped = kinds["skipped"]
            if skipped.get("type") == "pytest.xfail":
                out["xfailed"] += 1
                found = _DEFECT.search(skipped.get("message", ""))
                if found:
                    observed[found.group(1)] = observed.get(found.group(1), 0) + 1
            else:
                out["skipped"] += 1
        else:
            out["passed"] += 1
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    out["seconds"] = round(sum(float(s.get("time", 0)) for s in suites), 1)
    out["observed"] = dict(sorted(observed.items()))
    return out


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def record(junit: Path, role: str, out_dir: Path = ROWS) -> Path:
    """Write this environment's row (run inside the session's virtual environment)."""
    from pytest_rnn.runtime import ledger, versions

    keras, tensorflow = versions.package_version("keras"), versions.tensorflow_version()
    row = {"keras": keras, "tensorflow": tensorflow, "role": role, **counts(junit),
           "applies": [d.id for d in ledger.known_defects(keras, backend="tensorflow")],
           "date": date.today().isoformat(), "machine": machine()}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"keras-{keras}.json"
    _write_json(path, row)
    return path


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", "utf-8")
    tmp.replace(path)


# --- the record and the docs page's table ------------------------------------------------


def load_record(path: Path = RECORD) -> list[dict]:
    return json.loads(path.read_text("utf-8"))["releases"] if path.is_file() else []


def collect(rows_dir: Path = ROWS, path: Path = RECORD) -> list[dict]:
    """Merge the rows under ``rows_dir`` into the record (a row replaces the same Keras's)
    and keep the matrix's order."""
    rows = {r["keras"]: r for r in load_record(path)}
    for file in sorted(rows_dir.glob("keras-*.json")):
        row = json.loads(file.read_text("utf-8"))
        rows[row["keras"]] = row
    merged = sorted(rows.values(), key=lambda r: _key(r["keras"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"about": "the fast suite (pytest -m 'not slow') on each release of "
                                "scripts/release_matrix.py, TensorFlow backend; written by "
                                "`python scripts/release_matrix.py collect`",
                       "releases": merged})
    return merged


def table(rows: list[dict]) -> str:
    lines = ["| Keras | TensorFlow | passed | xfailed | skipped | failed | "
             "ledger entries that apply (tests observing each) | measured |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        entries = ", ".join(f"`{i}` ({r['observed'].get(i, 0)})" for i in r["applies"]) or "none"
        lines.append(f"| {r['keras']} | {r['tensorflow']} | {r['passed']} | {r['xfailed']} | "
                     f"{r['skipped']} | {r['failed'] + r['errors']} | {entries} | "
                     f"{r['date']}, {r['seconds']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="release_matrix.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sessions")
    middle = sub.add_parser("ci-middle")
    middle.add_argument("commit", nargs="?")
    rec = sub.add_parser("record")
    rec.add_argument("junit", type=Path)
    rec.add_argument("--role", required=True, choices=["floor", "middle", "newest"])
    for name in ("collect", "table"):
        sub.add_parser(name).add_argument("--write", action="store_true",
                                          help="replace the table in docs/reference/releases.md")
    args = parser.parse_args(argv)
    if args.command == "sessions":
        for s in sessions():
            print(f"{s.role:7} Keras {s.keras:7} TensorFlow {s.tensorflow}")
        return 0
    if args.command == "ci-middle":
        commit = args.commit or head_commit()
        if commit is None:
            print("no commit given and `git rev-parse HEAD` failed", file=sys.stderr)
            return 2
        print(ci_middle(commit).keras)
        return 0
    if args.command == "record":
        print(f"release_matrix: wrote {record(args.junit, args.role)}")
        return 0
    rows = collect() if args.command == "collect" else load_record()
    if args.write:
        return readme_block.write(BLOCK, table(rows), PAGE)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
