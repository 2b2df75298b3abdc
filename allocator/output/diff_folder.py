"""`allocator diff --out DIR`: the comparison of two plans as a folder, written atomically:
demands.csv (each demand that changed), agencies.csv, districts.csv and diff.json (totals)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from allocator.analysis.diff import PlanDiff
from allocator.core.folders import staged
from allocator.core.tables import write_csv

MONEY = {c: 2 for c in ("cost_a", "cost_b", "cost_change", "value_a", "value_b",
                        "value_change")}


def fill_diff(diff: PlanDiff, folder: Path) -> None:
    """The comparison's files into an existing (staging) folder."""
    write_csv(diff.demands, folder / "demands.csv", decimals=MONEY)
    write_csv(diff.agencies, folder / "agencies.csv", decimals=MONEY)
    write_csv(diff.districts, folder / "districts.csv", decimals=MONEY)
    (folder / "diff.json").write_text(json.dumps(diff.summary, indent=2, default=str),
                                      encoding="utf-8")


def write_diff(diff: PlanDiff, out: Path, force: bool = False,
               protect: Iterable[Path] = ()) -> Path:
    """The diff folder, atomically (never over a user's files or the compared folders)."""
    with staged(out, "diff", force, protect) as s:
        fill_diff(diff, s.path)
    return s.target
