"""Two plans side by side (two years, two scenarios, a hand edit against the optimum): per
demand what changed, per agency the change in lot value and demands, per district the change
in spend and coverage, and the totals. Read from results folders (or given as tables); the
folder is written by output/diff_folder.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.core.errors import Problem, ResultsError
from allocator.core.tables import read_csv

DEMAND_COLUMNS = ["enterprise_id", "service_id", "district_id", "in_a", "in_b", "agency_a",
                  "agency_b", "change", "weight_a", "weight_b", "cost_a", "cost_b",
                  "cost_change"]
AGENCY_COLUMNS = ["agency_id", "demands_a", "demands_b", "demands_change", "value_a",
                  "value_b", "value_change", "load_a", "load_b", "gained", "lost"]
DISTRICT_COLUMNS = ["district_id", "cost_a", "cost_b", "cost_change", "weight_served_a",
                    "weight_served_b", "coverage_ratio_a", "coverage_ratio_b",
                    "coverage_ratio_change", "agencies_a", "agencies_b"]
#: per demand: same agency, another agency, served only in B, served only in A
DEMAND_CHANGES = ("same", "moved", "added", "dropped")
TOTALS = ("coverage", "stability", "quality", "cost", "coverage_ratio", "agencies_used",
          "mandatory_served")


@dataclass
class PlanFiles:
    """The tables of one plan as text-free frames (numbers parsed)."""

    name: str
    assignments: pd.DataFrame
    unserved: pd.DataFrame
    agencies: pd.DataFrame
    districts: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _numeric(frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        if c in out.columns:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def plan_files(name: str, assignments: pd.DataFrame, unserved: pd.DataFrame,
               agencies: pd.DataFrame, districts: pd.DataFrame,
               summary: dict[str, Any]) -> PlanFiles:
    """PlanFiles from frames (ids as text, numbers parsed)."""
    ids = ("enterprise_id", "service_id", "agency_id", "district_id")

    def text(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype({c: str for c in ids if c in frame.columns})

    return PlanFiles(
        name, _numeric(text(assignments), ("weight", "cost", "load")),
        _numeric(text(unserved), ("weight",)),
        _numeric(text(agencies), ("demands", "contract_value", "load")),
        _numeric(text(districts), ("cost", "weight_served", "weight_total", "coverage_ratio",
                                   "agencies")), dict(summary))


def read_plan(folder: Path) -> PlanFiles:
    """A results folder's plan; ResultsError naming every file that is missing or unreadable."""
    folder = Path(folder)
    problems: list[Problem] = []
    need = {"assignments.csv": ("enterprise_id", "service_id", "agency_id", "district_id",
                                "weight", "cost"),
            "unserved.csv": ("enterprise_id", "service_id", "district_id", "weight"),
            "agencies.csv": ("agency_id", "demands", "contract_value"),
            "districts.csv": ("district_id", "cost", "weight_served", "coverage_ratio")}
    frames: dict[str, pd.DataFrame] = {}
    if not folder.is_dir():
        raise ResultsError([Problem(str(folder), None, "", None, "results folder not found",
                                    "give a folder written by 'allocator solve --out'")])
    for file, cols in need.items():
        path = folder / file
        if not path.is_file():
            problems.append(Problem(f"{folder.name}/{file}", None, "", None,
                                    "result file is missing",
                                    "give a folder written by 'allocator solve --out'"))
            continue
        try:
            frame = read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                ValueError) as exc:
            problems.append(Problem(f"{folder.name}/{file}", None, "", None,
                                    f"not a readable CSV: {exc}", "write the results again"))
            continue
        missing = [c for c in cols if c not in frame.columns]
        for c in missing:
            problems.append(Problem(f"{folder.name}/{file}", 1, c, None,
                                    "required column is missing", "write the results again"))
        frames[file] = frame
    summary: dict[str, Any] = {}
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(Problem(f"{folder.name}/summary.json", None, "", None,
                                f"missing or not readable JSON ({exc})",
                                "give a folder written by 'allocator solve --out'"))
    if problems:
        raise ResultsError(problems)
    return plan_files(folder.name, frames["assignments.csv"], frames["unserved.csv"],
                      frames["agencies.csv"], frames["districts.csv"], summary)


@dataclass
class PlanDiff:
    """What changed from plan A to plan B."""

    a: str
    b: str
    demands: pd.DataFrame
    agencies: pd.DataFrame
    districts: pd.DataFrame
    summary: dict[str, Any]


def demand_changes(a: PlanFiles, b: PlanFiles) -> pd.DataFrame:
    """Every demand of either plan: where it was (served, unserved, absent) and by whom."""
    keys = ["enterprise_id", "service_id"]

    def side(p: PlanFiles) -> pd.DataFrame:
        s = p.assignments[[*keys, "district_id", "agency_id", "weight", "cost"]].assign(
            state="served")
        u = p.unserved[[*keys, "district_id", "weight"]].assign(state="unserved",
                                                                agency_id="", cost=np.nan)
        return pd.concat([s, u], ignore_index=True).drop_duplicates(keys)

    m = side(a).merge(side(b), on=keys, how="outer", suffixes=("_a", "_b"))
    out = pd.DataFrame({k: m[k] for k in keys})
    out["district_id"] = m["district_id_a"].fillna(m["district_id_b"])
    out["in_a"] = m["state_a"].fillna("absent")
    out["in_b"] = m["state_b"].fillna("absent")
    out["agency_a"] = m["agency_id_a"].fillna("")
    out["agency_b"] = m["agency_id_b"].fillna("")
    sa, sb = out["in_a"] == "served", out["in_b"] == "served"
    out["change"] = np.where(sa & sb, np.where(out["agency_a"] == out["agency_b"], "same",
                                               "moved"),
                             np.where(sb, "added", np.where(sa, "dropped", "")))
    out["weight_a"], out["weight_b"] = m["weight_a"], m["weight_b"]
    out["cost_a"] = m["cost_a"].where(sa)
    out["cost_b"] = m["cost_b"].where(sb)
    out["cost_change"] = out["cost_b"].fillna(0.0) - out["cost_a"].fillna(0.0)
    out = out[out["change"] != ""]  # unserved (or absent) in both: nothing changed
    return out.sort_values(keys, kind="stable").reset_index(drop=True)[DEMAND_COLUMNS]


def agency_changes(a: PlanFiles, b: PlanFiles, demands: pd.DataFrame) -> pd.DataFrame:
    """Every agency of either plan: demands and lot value in each, and what it gained/lost."""
    cols = ["agency_id", "demands", "contract_value", "load"]

    def side(p: PlanFiles) -> pd.DataFrame:
        g = p.agencies
        return g[[c for c in cols if c in g.columns]].drop_duplicates("agency_id")

    m = side(a).merge(side(b), on="agency_id", how="outer", suffixes=("_a", "_b"))
    out = pd.DataFrame({"agency_id": m["agency_id"]})
    out["demands_a"] = m["demands_a"].fillna(0).astype(int)
    out["demands_b"] = m["demands_b"].fillna(0).astype(int)
    out["demands_change"] = out["demands_b"] - out["demands_a"]
    out["value_a"] = m["contract_value_a"].fillna(0.0)
    out["value_b"] = m["contract_value_b"].fillna(0.0)
    out["value_change"] = out["value_b"] - out["value_a"]
    out["load_a"] = m.get("load_a", pd.Series(np.nan, index=m.index)).fillna(0.0)
    out["load_b"] = m.get("load_b", pd.Series(np.nan, index=m.index)).fillna(0.0)
    moved = demands[demands["agency_a"] != demands["agency_b"]]
    gained = moved[moved["agency_b"] != ""].groupby("agency_b").size()
    lost = moved[moved["agency_a"] != ""].groupby("agency_a").size()
    out["gained"] = out["agency_id"].map(gained).fillna(0).astype(int)
    out["lost"] = out["agency_id"].map(lost).fillna(0).astype(int)
    return out.reset_index(drop=True)[AGENCY_COLUMNS]


def district_changes(a: PlanFiles, b: PlanFiles) -> pd.DataFrame:
    """Every district of either plan: spend, served weight, coverage ratio and agencies."""
    cols = ["district_id", "cost", "weight_served", "coverage_ratio", "agencies"]

    def side(p: PlanFiles) -> pd.DataFrame:
        g = p.districts
        return g[[c for c in cols if c in g.columns]].drop_duplicates("district_id")

    m = side(a).merge(side(b), on="district_id", how="outer", suffixes=("_a", "_b"))
    out = pd.DataFrame({"district_id": m["district_id"]})
    for c in ("cost", "weight_served", "coverage_ratio"):
        out[f"{c}_a"] = m[f"{c}_a"].fillna(0.0)
        out[f"{c}_b"] = m[f"{c}_b"].fillna(0.0)
    out["cost_change"] = out["cost_b"] - out["cost_a"]
    out["coverage_ratio_change"] = out["coverage_ratio_b"] - out["coverage_ratio_a"]
    for s in ("a", "b"):
        col = f"agencies_{s}"
        out[col] = m[col].fillna(0).astype(int) if col in m.columns else 0
    return out.reset_index(drop=True)[DISTRICT_COLUMNS]


def diff_plans(a: PlanFiles, b: PlanFiles) -> PlanDiff:
    """Plan B against plan A: demands, agencies, districts and the totals."""
    dem = demand_changes(a, b)
    ags = agency_changes(a, b, dem)
    dis = district_changes(a, b)
    totals = {}
    for key in TOTALS:
        va, vb = a.summary.get(key), b.summary.get(key)
        change = (float(vb) - float(va) if isinstance(va, int | float)
                  and isinstance(vb, int | float) else None)
        totals[key] = {"a": va, "b": vb, "change": change}
    counts = dem["change"].value_counts()
    summary = {
        "a": a.name, "b": b.name,
        "status": {"a": a.summary.get("status"), "b": b.summary.get("status")},
        "instance": {"a": a.summary.get("instance"), "b": b.summary.get("instance")},
        "totals": totals,
        "demands": {c: int(counts.get(c, 0)) for c in DEMAND_CHANGES},
        "agencies": {
            "gaining_value": int((ags["value_change"] > 0.005).sum()),
            "losing_value": int((ags["value_change"] < -0.005).sum()),
            "new_in_b": int(((ags["demands_a"] == 0) & (ags["demands_b"] > 0)).sum()),
            "gone_in_b": int(((ags["demands_a"] > 0) & (ags["demands_b"] == 0)).sum())},
        "districts": {
            "spending_more": int((dis["cost_change"] > 0.005).sum()),
            "spending_less": int((dis["cost_change"] < -0.005).sum()),
            "coverage_up": int((dis["coverage_ratio_change"] > 1e-9).sum()),
            "coverage_down": int((dis["coverage_ratio_change"] < -1e-9).sum())},
    }
    return PlanDiff(a.name, b.name, dem, ags, dis, summary)
