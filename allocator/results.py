"""The result object of a run (spec section 5) and its atomic writing to a results folder.

Reports, sweeps and the CLI read only `RunResult`; nothing here knows a solver.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.backends import Status
from allocator.eligibility import Eligibility
from allocator.instance import Instance

ASSIGNMENT_COLUMNS = ["enterprise_id", "service_id", "agency_id", "district_id", "sector",
                      "risk_level", "weight", "load", "cost", "quality", "quoted",
                      "reference_cost"]
UNSERVED_COLUMNS = ["enterprise_id", "service_id", "district_id", "sector", "risk_level",
                    "weight", "reason", "detail", "eligible_agencies"]
AGENCY_COLUMNS = ["agency_id", "demands", "load", "capacity_days", "utilization",
                  "contract_value", "districts", "name", "status", "quality"]
DISTRICT_COLUMNS = ["district_id", "cost", "budget_cap", "weight_total", "weight_served",
                    "coverage_ratio", "agencies", "max_agency_share", "name", "demands",
                    "demands_served", "mandatory_total", "mandatory_served"]
DIAGNOSIS_COLUMNS = ["rule", "subject", "required", "available", "shortfall", "message"]
MONEY = ["cost", "contract_value", "budget_cap", "reference_cost"]


@dataclass
class RunResult:
    """Everything a run produced: the plan's tables, the summary and, if infeasible, why."""

    summary: dict[str, Any]
    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    unserved: pd.DataFrame = field(default_factory=pd.DataFrame)
    agencies: pd.DataFrame = field(default_factory=pd.DataFrame)
    districts: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnosis: pd.DataFrame | None = None

    @property
    def status(self) -> Status:
        return Status(self.summary["status"])


def plan_tables(instance: Instance, elig: Eligibility, chosen: np.ndarray
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """assignments, unserved, agencies, districts for the chosen triple numbers."""
    t = elig.triples
    a = t.loc[chosen, ASSIGNMENT_COLUMNS].reset_index(drop=True)
    dem = instance.demands
    served = dem.index.isin(t.loc[chosen, "demand"])
    unserved = dem.loc[~served].copy()
    unserved = unserved.join(explain_unserved(instance, elig, a, unserved.index))
    unserved = unserved.reset_index(drop=True)[UNSERVED_COLUMNS]
    return a, unserved, agency_table(instance, a), district_table(instance, a)


def agency_table(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """One row per agency of the pool: its lot (demands, load, value, districts)."""
    ag = instance.agencies
    grp = a.groupby("agency_id", sort=False)
    out = pd.DataFrame(index=ag.index)
    out["demands"] = grp.size().reindex(ag.index).fillna(0).astype(int)
    out["load"] = grp["load"].sum().reindex(ag.index).fillna(0.0)
    out["capacity_days"] = ag["capacity_days"]
    cap = out["capacity_days"].replace(0, np.nan)
    out["utilization"] = (out["load"] / cap).fillna(0.0).round(4)
    out["contract_value"] = grp["cost"].sum().reindex(ag.index).fillna(0.0)
    out["districts"] = grp["district_id"].agg(lambda s: ";".join(pd.unique(s))).reindex(
        ag.index).fillna("")
    out["name"], out["status"], out["quality"] = ag["name"], ag["status"], ag["quality"]
    return out.reset_index()[AGENCY_COLUMNS]


def district_table(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """One row per district: spend, cap, weights, agencies and the largest agency share."""
    dist, dem, pol = instance.districts, instance.demands, instance.policy
    out = pd.DataFrame(index=dist.index)
    cost = a.groupby("district_id")["cost"].sum()
    out["cost"] = cost.reindex(dist.index).fillna(0.0)
    out["budget_cap"] = dist["budget_cap"]
    out["weight_total"] = dem.groupby("district_id")["weight"].sum().reindex(dist.index).fillna(0)
    out["weight_served"] = a.groupby("district_id")["weight"].sum().reindex(dist.index).fillna(0)
    out["coverage_ratio"] = (out["weight_served"] / out["weight_total"].replace(0, np.nan)
                             ).fillna(0.0).round(6)
    out["agencies"] = a.groupby("district_id")["agency_id"].nunique().reindex(
        dist.index).fillna(0).astype(int)
    by_agency = a.groupby(["district_id", "agency_id"])["cost"].sum()
    top = by_agency.groupby(level="district_id").max().reindex(dist.index)
    out["max_agency_share"] = (top / out["cost"].replace(0, np.nan)).fillna(0.0).round(6)
    out["name"] = dist["name"]
    out["demands"] = dem.groupby("district_id").size().reindex(dist.index).fillna(0).astype(int)
    out["demands_served"] = a.groupby("district_id").size().reindex(dist.index).fillna(0).astype(
        int)
    mand = dem[dem["risk_level"].isin(pol.mandatory_levels)]
    out["mandatory_total"] = mand.groupby("district_id").size().reindex(dist.index).fillna(
        0).astype(int)
    out["mandatory_served"] = a[a["risk_level"].isin(pol.mandatory_levels)].groupby(
        "district_id").size().reindex(dist.index).fillna(0).astype(int)
    return out.reset_index()[DISTRICT_COLUMNS]


def explain_unserved(instance: Instance, elig: Eligibility, a: pd.DataFrame,
                     demand_ids: pd.Index) -> pd.DataFrame:
    """For each unserved demand, the most telling reason it is left out.

    No eligible agency; else, over its eligible offers, which rule adding it alone would
    break (budget, district cap, capacity, shares, agency counts), the most common one
    first; an offer breaking nothing means the plan preferred others within the MIP gap.
    """
    pol = instance.policy
    t = elig.triples
    out = pd.DataFrame(index=demand_ids)
    out["eligible_agencies"] = t.groupby("demand").size().reindex(demand_ids).fillna(0).astype(int)
    out["reason"] = "no_eligible_agency"
    out["detail"] = "no agency passes the eligibility rules (see excluded.csv)"
    c = t[t["demand"].isin(demand_ids)].copy()
    if c.empty:
        return out
    total = a["cost"].sum()
    d_cost = a.groupby("district_id")["cost"].sum()
    ad_cost = a.groupby(["agency_id", "district_id"])["cost"].sum()
    a_cost = a.groupby("agency_id")["cost"].sum()
    a_load = a.groupby("agency_id")["load"].sum()
    active = a.groupby("district_id")["agency_id"].nunique()
    n_districts = a.groupby("agency_id")["district_id"].nunique()
    dc = c["district_id"].map(d_cost).fillna(0.0)
    key = pd.MultiIndex.from_frame(c[["agency_id", "district_id"]])
    adc = pd.Series(ad_cost.reindex(key).fillna(0.0).to_numpy(), index=c.index)
    was_active = adc > 0 if len(ad_cost) else pd.Series(False, index=c.index)
    cap = c["district_id"].map(instance.districts["budget_cap"])
    rules = [
        ("budget", total + c["cost"] > pol.budget_total * (1 + 1e-9),
         "the budget is spent"),
        ("district_budget_cap", (dc + c["cost"] > cap * (1 + 1e-9)) & cap.notna(),
         "the district's budget cap is reached"),
        ("capacity", c["agency_id"].map(a_load).fillna(0.0) + c["load"]
         > c["agency_id"].map(instance.agencies["capacity_days"]) + 1e-9,
         "every eligible agency is at capacity"),
        ("district_share", pd.Series(False, index=c.index) if pol.max_share_in_district is None
         else adc + c["cost"] > pol.max_share_in_district * (dc + c["cost"]) * (1 + 1e-9),
         "serving it would exceed an agency's share of district spend"),
        ("city_share", pd.Series(False, index=c.index) if pol.max_share_in_city is None
         else c["agency_id"].map(a_cost).fillna(0.0) + c["cost"]
         > pol.max_share_in_city * (total + c["cost"]) * (1 + 1e-9),
         "serving it would exceed an agency's share of city spend"),
        ("min_agencies", (c["district_id"].map(active).fillna(0) == 0)
         & (pol.min_agencies_per_district > 1),
         "its district has no served demand and too few agencies to open it"),
        ("districts_per_agency", pd.Series(False, index=c.index)
         if pol.max_districts_per_agency is None else
         (~was_active) & (c["agency_id"].map(n_districts).fillna(0)
                          >= pol.max_districts_per_agency),
         "eligible agencies already work in their maximum number of districts"),
    ]
    first = pd.Series("", index=c.index, dtype=object)
    for code, mask, _ in reversed(rules):
        first = first.mask(mask.fillna(False).astype(bool), code)
    first = first.replace("", "gap")
    texts = {code: text for code, _, text in rules}
    texts["gap"] = "an eligible agency had room; the plan preferred others within the MIP gap"
    priority = {code: k for k, (code, _, _) in enumerate(rules)}
    priority["gap"] = len(rules)
    counts = pd.DataFrame({"demand": c["demand"], "reason": first})
    counts["n"] = 1
    tally = counts.groupby(["demand", "reason"], as_index=False)["n"].sum()
    tally["p"] = tally["reason"].map(priority)
    tally = tally.sort_values(["demand", "n", "p"], ascending=[True, False, True])
    best = tally.drop_duplicates("demand").set_index("demand")["reason"]
    out.loc[best.index, "reason"] = best
    out.loc[best.index, "detail"] = best.map(texts)
    zero = instance.demands.loc[demand_ids, "weight"] <= 0
    out.loc[zero[zero].index.intersection(best.index), "reason"] = "zero_weight"
    return out


def write_results(result: RunResult, out: Path) -> None:
    """Write the results folder atomically: build it beside, then swap it in."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        frames = {"assignments.csv": result.assignments, "unserved.csv": result.unserved,
                  "agencies.csv": result.agencies, "districts.csv": result.districts,
                  "excluded.csv": result.excluded}
        if result.diagnosis is not None:
            frames["diagnosis.csv"] = result.diagnosis
        for name, frame in frames.items():
            if frame is None:
                continue
            frame = frame.copy()
            for col in MONEY:
                if col in frame.columns:
                    frame[col] = frame[col].astype(float).round(2)
            frame.to_csv(tmp / name, index=False, float_format="%.15g")
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2, default=_json),
                                          encoding="utf-8")
        swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(tmp: Path, out: Path) -> None:
    """Replace out by the finished tmp folder; the old one is removed only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _json(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Status):
        return value.value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))
