"""The audit of the plan's rules: budget, district caps, capacities, coverage ratios, shares
and agency counts, each recomputed from the rows' true cost and load."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    NUM_ATOL,
    NUM_RTOL,
    SHARE_RTOL,
    TOTAL_ATOL,
    TOTAL_RTOL,
    Violation,
    add_violations,
    format_values,
    show_money,
)


def check_plan_rules(out: list[Violation], inst, t: pd.DataFrame, dem: pd.DataFrame,
                      budget: float | None) -> dict[str, Any]:
    """Budget, district caps, capacity, coverage ratio, shares, agency counts; returns totals.

    Budget and caps apply to the government's part of each row (true_gov: all of it without
    co-payment), share caps to the full contract value; no budget (None) is checked when
    funding.csv leaves budget.total out."""
    pol = inst.policy
    f = "assignments.csv"
    total = float(t["true_cost"].sum())
    gov_total = float(t["true_gov"].sum())
    if budget is not None and gov_total > budget + TOTAL_ATOL + TOTAL_RTOL * abs(budget):
        what = "the plan costs" if not pol.copay_share_by_risk else \
            "the government's part of the plan is"
        out.append(Violation("budget", f, None, "total cost",
                             f"{what} {show_money(gov_total)}, above the budget "
                             f"{show_money(budget)} "
                             f"by {show_money(gov_total - budget)}"))
    # per district
    dist = inst.districts
    by_d = t.groupby("true_district")
    d = pd.DataFrame(index=pd.Index(dist.index.astype(str), name="district_id"))
    d["cost"] = by_d["true_cost"].sum().reindex(d.index).fillna(0.0)
    d["gov"] = by_d["true_gov"].sum().reindex(d.index).fillna(0.0)
    d["cap"] = dist["budget_cap"].astype(float).to_numpy()
    d["weight_total"] = dem.groupby("district_id")["weight"].sum().reindex(d.index).fillna(0.0)
    d["weight_served"] = by_d["true_weight"].sum().reindex(d.index).fillna(0.0)
    d["agencies"] = by_d["agency_id"].nunique().reindex(d.index).fillna(0).astype(int)
    d["served"] = by_d.size().reindex(d.index).fillna(0).astype(int)
    d = d.reset_index()
    district = lambda r: "district " + r["district_id"]  # noqa: E731
    over = d["cap"].notna() & (d["gov"] > d["cap"] + TOTAL_ATOL + TOTAL_RTOL * d["cap"].abs())
    add_violations(out, "district_budget_cap", f, d, over, district,
         lambda r: "district (government) spend " + format_values(r["gov"], show_money)
         + " is above its budget_cap "
         + format_values(r["cap"], show_money), row=None)
    need = pol.min_district_ratio * d["weight_total"]
    d["need"] = need
    short = d["weight_served"] < need - NUM_ATOL - NUM_RTOL * need.abs()
    add_violations(out, "min_district_ratio", f, d, short, district,
         lambda r: "served weight " + format_values(r["weight_served"]) + " is below "
         + f"{pol.min_district_ratio:g} x district weight " + format_values(r["weight_total"])
         + " = " + format_values(r["need"]), row=None)
    few = (d["served"] > 0) & (d["agencies"] < pol.min_agencies_per_district)
    add_violations(out, "min_agencies_per_district", f, d, few, district,
         lambda r: "only " + r["agencies"].astype(str) + " agencies serve the district's "
         + r["served"].astype(str) + " served demand(s); min_agencies_per_district is "
         + f"{pol.min_agencies_per_district}", row=None)
    # per agency
    ag = inst.agencies
    by_a = t.groupby("agency_id")
    a = pd.DataFrame(index=pd.Index(ag.index.astype(str), name="agency_id"))
    a["load"] = by_a["true_load"].sum().reindex(a.index).fillna(0.0)
    a["cost"] = by_a["true_cost"].sum().reindex(a.index).fillna(0.0)
    a["n"] = by_a.size().reindex(a.index).fillna(0).astype(int)
    a["cap"] = ag["capacity_days"].astype(float).to_numpy()
    a["districts"] = by_a["true_district"].agg(lambda s: set(s)).reindex(a.index)
    a["districts"] = a["districts"].map(lambda s: s if isinstance(s, set) else set())
    a = a.reset_index()
    agency = lambda r: "agency " + r["agency_id"]  # noqa: E731
    over = a["load"] > a["cap"] + NUM_ATOL + NUM_RTOL * a["cap"].abs()
    add_violations(out, "capacity", f, a, over, agency,
         lambda r: "load " + format_values(r["load"]) + " person-days is above capacity_days "
         + format_values(r["cap"]), row=None)
    if pol.max_share_in_city is not None:
        s = pol.max_share_in_city
        over = a["cost"] > s * total + SHARE_RTOL * total + 1e-9
        add_violations(out, "city_share", f, a, over, agency,
             lambda r: "the agency's spend " + format_values(r["cost"], show_money) + " is "
             + format_values(r["cost"] / (total or 1.0), lambda v: f"{v:.2%}")
             + f" of the city's {show_money(total)}, above max_share_in_city {s:g}", row=None)
    if pol.max_districts_per_agency is not None:
        over = a["districts"].map(len) > pol.max_districts_per_agency
        add_violations(out, "districts_per_agency", f, a, over, agency,
             lambda r: "the agency works in " + r["districts"].map(len).astype(str)
             + " districts (" + r["districts"].map(lambda s: ";".join(sorted(s)))
             + f"), above max_districts_per_agency {pol.max_districts_per_agency}", row=None)
    # per agency in a district
    ad = t.groupby(["true_district", "agency_id"])["true_cost"].sum().rename("cost").reset_index()
    ad["district_cost"] = ad["true_district"].map(by_d["true_cost"].sum()).astype(float)
    if pol.max_share_in_district is not None:
        s = pol.max_share_in_district
        over = ad["cost"] > s * ad["district_cost"] + SHARE_RTOL * ad["district_cost"] + 1e-9
        add_violations(out, "district_share", f, ad, over,
             lambda r: "agency " + r["agency_id"] + " in district "
             + r["true_district"].astype(str),
             lambda r: "the agency's spend " + format_values(r["cost"], show_money) + " is "
             + format_values(r["cost"] / r["district_cost"], lambda v: f"{v:.2%}")
             + " of the district's " + format_values(r["district_cost"], show_money)
             + f", above max_share_in_district {s:g}", row=None)
    top = ad.groupby("true_district")["cost"].max().reindex(d["district_id"]).to_numpy()
    d["max_share"] = (top / d["cost"].replace(0, np.nan)).fillna(0.0)
    return {"total": gov_total, "contract_total": total,
            "districts": d.set_index("district_id", drop=False),
            "agencies": a.set_index("agency_id", drop=False)}
