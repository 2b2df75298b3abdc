"""Reading a folder allocator wrote (a plan's results, a sweep, a comparison) back into
frames, for the report and the workbook: they show what the files say, nothing else.

Ids stay text; the columns allocator writes as numbers are read as numbers; a CSV the folder
holds that allocator does not know (another feature's file) is kept as an extra table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.core.errors import Problem, ResultsError
from allocator.core.tables import read_csv

#: the CSV files of a plan's folder, in the order they are shown
PLAN_FILES = ("assignments.csv", "unserved.csv", "agencies.csv", "districts.csv",
              "excluded.csv", "diagnosis.csv")
WHATIF_FILES = ("frontier.csv", "comparison.csv")

#: columns written as numbers (everything else is text: ids, names, reasons)
NUMERIC = {
    "weight", "load", "cost", "quality", "reference_cost", "risk_level", "demands",
    "capacity_days", "utilization", "contract_value", "budget_cap", "weight_total",
    "weight_served", "coverage_ratio", "agencies", "max_agency_share", "demands_served",
    "mandatory_total", "mandatory_served", "eligible_agencies", "required", "available",
    "shortfall", "budget", "coverage", "gap", "seconds", "marginal_value", "agencies_used",
    "max_district_share", "largest_district_share", "mean_quality", "herfindahl",
    "price_of_rule", "person_days", "amount", "share", "years", "score",
    # a diff folder's columns
    "weight_a", "weight_b", "cost_a", "cost_b", "cost_change", "demands_a", "demands_b",
    "demands_change", "value_a", "value_b", "value_change", "load_a", "load_b", "gained",
    "lost", "weight_served_a", "weight_served_b", "coverage_ratio_a", "coverage_ratio_b",
    "coverage_ratio_change", "agencies_a", "agencies_b",
}


@dataclass
class Folder:
    """A folder as read back: its kind, summary and tables by file name."""

    path: Path
    kind: str  # plan, no_plan, sweep, compare, diff
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # CSV files no page knows (shown as is)

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    @property
    def policy(self) -> dict[str, Any]:
        pol = self.summary.get("policy")
        return pol if isinstance(pol, dict) else {}

    @property
    def currency(self) -> str:
        return str((self.policy.get("report") or {}).get("currency") or "CNY")

    @property
    def language(self) -> str:
        return str((self.policy.get("report") or {}).get("language") or "en")


def numeric_frame(frame: pd.DataFrame, known: set[str] | None = None) -> pd.DataFrame:
    """The frame with its number columns as numbers: the known ones, and any other column
    whose every non-empty cell is a number and whose name is not an id or a name."""
    out = frame.copy()
    for col in out.columns:
        name = str(col)
        if name in (known or NUMERIC):
            out[col] = pd.to_numeric(out[col].replace("", None), errors="coerce")
        elif not (name.endswith("id") or name.endswith("name") or name.endswith("ids")):
            s = out[col].replace("", None)
            conv = pd.to_numeric(s, errors="coerce")
            if conv.notna().sum() and (conv.notna() == s.notna()).all():
                out[col] = conv
    return out


def _read(path: Path) -> pd.DataFrame:
    try:
        return numeric_frame(read_csv(path))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ResultsError([Problem(path.name, None, "", None, f"not a readable CSV: {exc}",
                                    "write the folder again with allocator")]) from None


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError([Problem(path.name, None, "", None, f"not readable JSON: {exc}",
                                    "write the folder again with allocator")]) from None
    if not isinstance(data, dict):
        raise ResultsError([Problem(path.name, None, "", None, "must be a JSON object",
                                    "write the folder again with allocator")])
    return data


def read_folder(path: str | Path) -> Folder:
    """Read a results, sweep or comparison folder (ResultsError when it is none of them)."""
    path = Path(path)
    if not path.is_dir():
        raise ResultsError([Problem(str(path), None, "", None, "folder not found",
                                    "give a folder written by allocator solve, sweep or "
                                    "compare")])
    files = {p.name for p in path.iterdir() if p.is_file()}
    if "frontier.csv" in files:
        summary = read_json(path / "frontier_summary.json") if "frontier_summary.json" in \
            files else {}
        kind, known = "sweep", {"frontier.csv"}
    elif "comparison.csv" in files:
        summary, kind, known = {}, "compare", {"comparison.csv"}
    elif "diff.json" in files:  # allocator diff --out: two plans side by side
        summary = read_json(path / "diff.json")
        kind, known = "diff", {"demands.csv", "agencies.csv", "districts.csv"}
    elif "summary.json" in files:
        summary = read_json(path / "summary.json")
        status = summary.get("status")
        kind = "plan" if status in ("optimal", "feasible") else "no_plan"
        known = set(PLAN_FILES)
    else:
        raise ResultsError([Problem(str(path), None, "", None,
                                    "not a folder allocator wrote (no summary.json, "
                                    "frontier.csv or comparison.csv)",
                                    "give the folder written by allocator solve --out, sweep "
                                    "--out or compare --out")])
    tables = {name: _read(path / name) for name in sorted(files)
              if name.endswith(".csv")}
    extras = [n for n in tables if n not in known]
    folder = Folder(path, kind, summary, tables, extras)
    if kind in ("sweep", "compare") and "policy" not in summary:
        # the language and currency of a what-if folder are its runs' (the first one's)
        for point in point_folders(folder).values():
            pol = read_json(point / "summary.json").get("policy")
            if isinstance(pol, dict):
                summary["policy"] = pol
                break
    return folder


def point_folders(folder: Folder) -> dict[str, Path]:
    """A sweep's or comparison's sub-folders (by the `folder` column), those that exist."""
    table = folder.table("frontier.csv" if folder.kind == "sweep" else "comparison.csv")
    if "folder" not in table.columns:
        return {}
    return {str(f): folder.path / str(f) for f in table["folder"].astype(str)
            if (folder.path / str(f) / "summary.json").is_file()}
