"""The docs site's Architecture tree (docs/explanation/architecture.md): each subpackage of
pytest_rnn with its modules' line counts.

    python scripts/architecture.py            # print the tree
    python scripts/architecture.py --write    # replace the page's ``architecture`` block

tests/test_package.py checks that the page holds the tree of the checkout as it is, and
that no module is over :data:`MAX_LINES`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import readme_block

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_rnn"
PAGE = readme_block.DOCS / "explanation" / "architecture.md"
BLOCK = "architecture"
#: The most lines a module may have (split by concern beyond that).
MAX_LINES = 450
#: Each subpackage's job, in the order imports flow (each may use those after it).
SUBPACKAGES = {
    "plugin": "pytest machinery: hooks, options, fixtures, markers, baselines, report",
    "bench": "kernel-benchmark cases, timing arithmetic, timed Keras steps, GPU calibration",
    "data": "IMDB subsets, toy tasks, the training routine",
    "checks": "the Keras checks and the NumPy models of the cells",
    "backends": "what differs per Keras backend, behind one seam",
    "runtime": "versions, the ledger, devices, seeds, thread caps",
    "store": "baseline files, keys, bands and statistics; no pytest",
    "adapters": "other packages' internals, one module per package",
}


def line_count(path: Path) -> int:
    return len(path.read_text("utf-8").splitlines())


def tree() -> str:
    top = sorted(PACKAGE.glob("*.py"))
    total = sum(line_count(p) for p in PACKAGE.rglob("*.py"))
    count = len(list(PACKAGE.rglob("*.py")))
    lines = ["```text", f"pytest_rnn/  {count} modules, {total} lines; none over {MAX_LINES}",
             "  " + ", ".join(f"{p.stem} {line_count(p)}" for p in top)]
    for sub, job in SUBPACKAGES.items():
        modules = sorted((PACKAGE / sub).glob("*.py"))
        lines.append(f"  {sub}/  {job}")
        row = "    "
        for module in modules:
            item = f"{module.stem} {line_count(module)}, "
            if len(row) + len(item) > 92:
                lines.append(row.rstrip(", ").rstrip())
                row = "    "
            row += item
        lines.append(row.rstrip().rstrip(","))
    lines.append("```")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    return readme_block.cli(argv, BLOCK, tree, "architecture.py", PAGE)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
