"""`allocator evaluate`'s folder: next year's instance, written atomically (core.folders).

Every file of the instance folder is copied byte for byte, except:
- agencies.csv: the same rows and columns, with each agency's new status and quality;
- incumbents.csv: this year's plan (the results' assignments.csv) with the years each agency
  has served its demand in a row;
- evaluations.csv is copied like every other file (the issue asks for every file), and the
  folder's marker records its sha256 as applied: `evaluate` on next year's folder applies it
  again only once the planner has replaced it with that year's scores;
- pool_changes.csv (new): each agency's old and new status and quality, its score by scorer
  type and the rule applied, in words.
Instance files are written as plain UTF-8 CSV (they are inputs: no formula guard that would
change an id); pool_changes.csv is a report and is written like the results' files.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from allocator.core.errors import Problem, UsageError
from allocator.core.folders import MARKER, file_sha256, read_marker, staged
from allocator.core.tables import write_csv
from allocator.data.reading import read_table

#: the files evaluate writes itself (the others are copied)
REWRITTEN = ("agencies.csv", "incumbents.csv", "pool_changes.csv")
#: the marker key recording which evaluations.csv the new statuses and qualities came from
APPLIED = "evaluations_applied_sha256"


def _plain_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n",
                 quoting=csv.QUOTE_MINIMAL)


def new_agencies_text(instance_dir: Path, changes: pd.DataFrame) -> pd.DataFrame:
    """agencies.csv as the planner wrote it, with the new status and quality of each agency
    (every other cell, column and row as it was)."""
    problems: list[Problem] = []
    raw = read_table(instance_dir / "agencies.csv", "agencies.csv", problems)
    if raw is None:
        raise UsageError("agencies.csv of the instance cannot be read: "
                         + "; ".join(str(p) for p in problems))
    by_id = changes.set_index("agency_id")
    ids = raw["agency_id"].astype(str)
    known = ids.isin(by_id.index)
    raw.loc[known, "status"] = ids[known].map(by_id["new_status"]).to_numpy()
    raw.loc[known, "quality"] = ids[known].map(by_id["new_quality"]).map(
        lambda v: f"{float(v):g}").to_numpy()
    return raw


def write_next_year(instance_dir: Path, agencies: pd.DataFrame, incumbents: pd.DataFrame,
                    changes: pd.DataFrame, out: Path, force: bool = False,
                    protect: Iterable[Path] = ()) -> Path:
    """Next year's instance folder, atomically (never over a user's files, never over an
    input)."""
    instance_dir = Path(instance_dir)
    with staged(out, "instance", force, [instance_dir, *protect]) as s:
        for src in sorted(instance_dir.iterdir()):
            if (not src.is_file() or src.name.startswith(".") or src.name == MARKER
                    or src.name in REWRITTEN):
                continue
            shutil.copy2(src, s.path / src.name)
        evaluations = instance_dir / "evaluations.csv"
        if evaluations.is_file():
            s.meta[APPLIED] = file_sha256(evaluations)
        _plain_csv(agencies, s.path / "agencies.csv")
        _plain_csv(incumbents, s.path / "incumbents.csv")
        write_csv(changes, s.path / "pool_changes.csv")
    return s.target


def already_applied(instance_dir: Path) -> bool:
    """The instance folder was written by `evaluate` and its evaluations.csv is still the one
    whose scores that run applied (so applying it again would count last year twice)."""
    marker = read_marker(Path(instance_dir))
    evaluations = Path(instance_dir) / "evaluations.csv"
    if marker is None or APPLIED not in marker or not evaluations.is_file():
        return False
    return bool(marker[APPLIED] == file_sha256(evaluations))
