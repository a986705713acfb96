"""The docs site's power table (docs/reference/power.md): for every stored check in
baselines/*.json, its runs per check, band, false-alarm rate and the smallest change it
catches with 90% power, all derived from the entry's calibration.

    python scripts/power_table.py           # print the table
    python scripts/power_table.py --write   # replace the table in docs/reference/power.md

tests/test_power_table.py checks that the page holds exactly this table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import readme_block

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_rnn.store import files, rules, stats  # noqa: E402

PAGE = readme_block.DOCS / "reference" / "power.md"
BLOCK = "power-table"
POWER = 0.9

HEADER = [
    "| file | check | k | calibration | band | limits | false alarms | caught with 90% power |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
]


def sample_options(entry: dict) -> dict:
    """How a sample entry's check is made: ``k``, ``alpha``, ``direction``, ``scale`` and
    ``method``, with the defaults of entries stored before a field existed."""
    test = entry["test"]
    return {"k": int(test["k"]), "alpha": float(test["alpha"]),
            "direction": entry["direction"], "scale": test.get("scale", "linear"),
            "method": test.get("method", "mean")}


def sample_row(entry: dict) -> tuple[str, ...]:
    """k, calibration, band, limits, false-alarm rate and 90%-power change of an accuracy
    (sample) entry."""
    options = sample_options(entry)
    k, alpha, scale = options["k"], options["alpha"], options["scale"]
    method, direction = options["method"], options["direction"]
    dist = stats.Distribution.from_json(entry["distribution"])
    band = rules.sample_band(dist, k, alpha, direction, scale, method)
    if method == "rank":  # simulated at calibration (seconds), and stated in the note
        stated = re.search(r"smallest shift detected with 90% power: ([-+.\de]+)",
                           entry.get("note", ""))
        shift = float(stated.group(1)) if stated else stats.rank_detectable_shift(
            dist.values, k, alpha, POWER, direction=direction)
    else:
        shift = stats.detectable_shift(dist, k, alpha, POWER)
    change = f"x {2 ** shift:.2f}" if scale == "log2" else (
        f"{'a drop' if direction == 'higher' else 'a rise'} of {shift:.3g}")
    limits = entry.get("limits", {})
    crossed = rules.limit_crossed(dist, limits, **options)
    limit_text = "; ".join(f"{rules.LIMITS[name]} {value:.4g}" for name, value in
                           limits.items()) or "-"
    if crossed:
        limit_text += f" (**{crossed}**)"
    center = (f"geometric mean {2 ** dist.mean:.3g}, log2 sd {dist.sd:.2g}" if scale == "log2"
              else f"mean {dist.mean:.3g}, sd {dist.sd:.2g}")
    return (str(k), f"{dist.n} seeds, {center}",
            band.text, limit_text,
            f"{alpha:.0%} ({'exact rank test' if method == 'rank' else 't-test'})", change)


def timing_row(entry: dict) -> tuple[str, ...]:
    """The same for a timing entry calibrated over processes."""
    test = entry["test"]
    medians = stats.Distribution.from_json(entry["distribution"]["processes"])
    slowdown = float(test["slowdown"])
    threshold = rules.process_threshold(medians, slowdown)
    errors = rules.process_error_rate(medians, slowdown)
    caught = rules.caught_slowdown(medians, slowdown, POWER)
    return (f"{test['k']} rounds", f"{medians.n} processes, median spread "
                                   f"{2 ** medians.sd - 1:.1%}",
            f"median <= {threshold:.4g}", "-", f"{errors:.2g} per process",
            f"{caught:.0%} slower")


def rows() -> list[str]:
    out = list(HEADER)
    for path in sorted((ROOT / "baselines").glob("*.json")):
        for key, entry in sorted(files.read_baseline_file(path).items()):
            test = entry.get("test")
            if not test:
                continue  # a single value with a typed tolerance: no calibration
            processes = isinstance(entry.get("distribution"), dict) and \
                "processes" in entry["distribution"]
            cells = timing_row(entry) if processes else sample_row(entry)
            check = key.replace("|", "\\|")
            out.append(f"| `{path.name}` | `{check}` | " + " | ".join(cells) + " |")
    return out


def table() -> str:
    return "\n".join(rows())


if __name__ == "__main__":
    raise SystemExit(readme_block.cli(sys.argv[1:], BLOCK, table, "power_table.py", PAGE))
