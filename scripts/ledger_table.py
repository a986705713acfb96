"""README's table of the known-defects ledger, generated from pytest_rnn/ledger.json.

    python scripts/ledger_table.py           # print the table
    python scripts/ledger_table.py --write   # replace the table in README.md

tests/test_ledger.py checks that README.md holds exactly this table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- ledger-table:start -->", "<!-- ledger-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(entries: list[dict]) -> str:
    rows = [
        "| id | affected Keras | what differs | reference | tests that observe it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        tests = "<br>".join(f"`{t}`" for t in e["tests"])
        keras = f"`{e['keras']}`" + (f" on {', '.join(e['backends'])}" if e.get("backends")
                                     else "")
        rows.append(f"| `{e['id']}` | {keras} | {_cell(e['differs'])} | "
                    f"{_cell(e['reference'])} | {tests} |")
    return f"{START}\n" + "\n".join(rows) + f"\n{END}"


def main(argv: list[str]) -> int:
    generated = table(json.loads((ROOT / "pytest_rnn" / "ledger.json").read_text("utf-8")))
    if "--write" not in argv:
        print(generated)
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text("utf-8")
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block to replace", file=sys.stderr)
        return 1
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + generated + tail, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
