"""The docs site's table of the known-defects ledger (docs/reference/ledger.md), generated
from pytest_rnn/ledger.json.

    python scripts/ledger_table.py           # print the table
    python scripts/ledger_table.py --write   # replace the table in docs/reference/ledger.md

tests/test_ledger.py checks that the page holds exactly this table
(``readme_block.block(BLOCK, table(...))``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import readme_block

ROOT = Path(__file__).resolve().parents[1]
PAGE = readme_block.DOCS / "reference" / "ledger.md"
BLOCK = "ledger-table"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(entries: list[dict]) -> str:
    rows = [
        "| id | affected Keras | what differs | reference | fails with | tests that observe it |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        tests = "<br>".join(f"`{t}`" for t in e["tests"])
        keras = f"`{e['keras']}`" + (f" on {', '.join(e['backends'])}" if e.get("backends")
                                     else "")
        raises = [e["raises"]] if isinstance(e["raises"], str) else e["raises"]
        fails = " or ".join(f"`{r}`" for r in raises) + f" matching `{_cell(e['match'])}`"
        rows.append(f"| `{e['id']}` | {keras} | {_cell(e['differs'])} | "
                    f"{_cell(e['reference'])} | {fails} | {tests} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    generated = table(json.loads((ROOT / "pytest_rnn" / "ledger.json").read_text("utf-8")))
    if "--write" not in argv:
        print(generated)
        return 0
    return readme_block.write(BLOCK, generated, PAGE)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
