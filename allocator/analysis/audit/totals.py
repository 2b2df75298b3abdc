"""The audit of the totals: agencies.csv, districts.csv and summary.json against the rows."""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    MONEY_ATOL,
    NUM_ATOL,
    NUM_RTOL,
    RATIO_ATOL,
    TOTAL_ATOL,
    Audit,
    Violation,
    add_violations,
    column_of,
    differs,
    format_values,
    is_number,
    show_cell,
    show_money,
    show_num,
)


def check_agency_table(out: list[Violation], g: pd.DataFrame, a: pd.DataFrame) -> None:
    """agencies.csv: one row per agency of the pool, each figure as recomputed."""
    f = "agencies.csv"
    ident = column_of("agency_id")
    known = g["agency_id"].isin(a.index)
    add_violations(out, "agency_totals", f, g, ~known, ident, "agency is not in the instance")
    dup = g["agency_id"].duplicated(keep="first") & known
    add_violations(out, "agency_totals", f, g, dup, ident, "agency listed twice")
    m = a[~a.index.isin(g["agency_id"])]
    add_violations(out, "agency_totals", f, m, np.ones(len(m), bool), ident,
         "agency of the pool has no row (agencies.csv lists every agency)", row=None)
    g = g[known & ~dup]
    e = a.loc[g["agency_id"]].set_axis(g.index)
    g = g.assign(e_n=e["n"].astype(float), e_load=e["load"], e_cap=e["cap"], e_cost=e["cost"],
                 e_util=(e["load"] / e["cap"].replace(0, np.nan)).fillna(0.0),
                 e_districts=e["districts"])
    checks = [
        ("demands", "e_n", 0.0, 0.0, show_num),
        ("load", "e_load", NUM_ATOL, NUM_RTOL, show_num),
        ("capacity_days", "e_cap", NUM_ATOL, NUM_RTOL, show_num),
        ("utilization", "e_util", RATIO_ATOL, 1e-9, lambda v: f"{v:.4f}"),
        ("contract_value", "e_cost", MONEY_ATOL, NUM_RTOL, show_money),
    ]
    for col, exp, atol, rtol, fmt in checks:
        add_violations(out, "agency_totals", f, g, differs(g[col], g[exp], atol, rtol), ident,
             lambda r, col=col, exp=exp, fmt=fmt: col + " is " + format_values(r[col], show_cell)  # type: ignore[misc]
             + ", recomputed " + format_values(r[exp], fmt))
    got = g["districts"].map(lambda s: {x.strip() for x in s.split(";") if x.strip()})
    add_violations(out, "agency_totals", f, g, got != g["e_districts"], ident,
         lambda r: "districts is " + format_values(r["districts"], show_cell) + ", recomputed "
         + r["e_districts"].map(lambda s: ";".join(sorted(s)) or "(none)"))


def check_district_table(out: list[Violation], g: pd.DataFrame, d: pd.DataFrame) -> None:
    """districts.csv: one row per district, each figure as recomputed."""
    f = "districts.csv"
    ident = column_of("district_id")
    known = g["district_id"].isin(d.index)
    add_violations(out, "district_totals", f, g, ~known, ident, "district is not in the instance")
    dup = g["district_id"].duplicated(keep="first") & known
    add_violations(out, "district_totals", f, g, dup, ident, "district listed twice")
    m = d[~d.index.isin(g["district_id"])]
    add_violations(out, "district_totals", f, m, np.ones(len(m), bool), ident,
         "district has no row (districts.csv lists every district)", row=None)
    g = g[known & ~dup]
    e = d.loc[g["district_id"]].set_axis(g.index)
    g = g.assign(e_cost=e["cost"], e_gov=e["gov"], e_cap=e["cap"],
                 e_weight_total=e["weight_total"],
                 e_weight_served=e["weight_served"],
                 e_ratio=(e["weight_served"] / e["weight_total"].replace(0, np.nan)).fillna(0.0),
                 e_agencies=e["agencies"].astype(float), e_share=e["max_share"])
    share = (RATIO_ATOL, 1e-9, lambda v: f"{v:.4f}")
    checks = [
        ("cost", "e_cost", MONEY_ATOL, NUM_RTOL, show_money),
        ("government_cost", "e_gov", MONEY_ATOL, NUM_RTOL, show_money),
        ("budget_cap", "e_cap", MONEY_ATOL, NUM_RTOL, show_money),
        ("weight_total", "e_weight_total", NUM_ATOL, NUM_RTOL, show_num),
        ("weight_served", "e_weight_served", NUM_ATOL, NUM_RTOL, show_num),
        ("coverage_ratio", "e_ratio", *share),
        ("agencies", "e_agencies", 0.0, 0.0, show_num),
        ("max_agency_share", "e_share", *share),
    ]
    for col, exp, atol, rtol, fmt in checks:
        if col not in g.columns:  # government_cost: results written before co-payment
            continue
        bad = differs(g[col], g[exp], atol, rtol, blank_ok=col == "budget_cap")
        add_violations(out, "district_totals", f, g, bad, ident,
             lambda r, col=col, exp=exp, fmt=fmt: col + " is " + format_values(r[col], show_cell)  # type: ignore[misc]
             + ", recomputed "
             + format_values(r[exp], lambda v, fmt=fmt: "empty (no cap)" if pd.isna(v) else fmt(v)))  # type: ignore[misc]


def check_summary(out: list[Violation], s: dict[str, Any], inst, dem: pd.DataFrame,
                   t: pd.DataFrame, plan: dict[str, Any]) -> None:
    """summary.json totals (coverage, quality, cost and the extra figures when present)."""
    f = "summary.json"
    pol = inst.policy
    coverage = float(t["true_weight"].sum())
    quality = float((t["true_weight"] * t["true_quality"]).sum())
    mand = t["true_risk"].isin(pol.mandatory_levels)
    weight_total = float(dem["weight"].sum())
    checks: list[tuple[str, Any, float, float, Any]] = [
        ("coverage", coverage, NUM_ATOL, NUM_RTOL, show_num),
        ("quality", quality, NUM_ATOL, 1e-9, show_num),
        ("cost", plan["total"], MONEY_ATOL, NUM_RTOL, show_money),
        ("contract_value", plan["contract_total"], MONEY_ATOL, NUM_RTOL, show_money),
        ("enterprise_cost", plan["contract_total"] - plan["total"], MONEY_ATOL, NUM_RTOL,
         show_money),
    ]
    for key, exp, atol, rtol, fmt in checks:
        got = s.get(key)
        if got is None and (t.empty or key in ("contract_value", "enterprise_cost")):
            continue  # an empty plan may leave its totals out (older results these two)
        val = float(cast(float, got)) if is_number(got) and not isinstance(got, bool) else None
        if val is None or abs(val - exp) > atol + rtol * abs(exp):
            out.append(Violation("summary_totals", f, None, key,
                                 f"{key} is "
                                 f"{show_num(got) if is_number(got) else json.dumps(got)}, "
                                 f"recomputed from assignments {fmt(exp)}"))
    d = plan["districts"]
    extras: list[tuple[str, Any, float, float]] = [
        ("weight_total", weight_total, NUM_ATOL, NUM_RTOL),
        ("coverage_ratio", coverage / weight_total if weight_total > 0 else 0.0, RATIO_ATOL,
         1e-9),
        ("mandatory_total", float(dem["risk_level"].isin(pol.mandatory_levels).sum()), 0, 0),
        ("mandatory_served", float(mand.sum()), 0, 0),
        ("agencies_used", float(t["agency_id"].nunique()), 0, 0),
        ("max_district_share", float(d["max_share"].max()) if len(d) and len(t) else None,
         RATIO_ATOL, 1e-9),
    ]
    counts: dict[str, Any] = s["counts"] if isinstance(s.get("counts"), dict) else {}
    count_checks = [
        ("districts", len(inst.districts)), ("enterprises", len(inst.enterprises)),
        ("demands", len(dem)), ("demands_served", len(t)), ("agencies", len(inst.agencies)),
    ]
    for key, exp, atol, rtol in extras:
        got = s.get(key)
        if got is None or exp is None:
            continue
        if not is_number(got) or abs(float(got) - exp) > atol + rtol * abs(exp):
            out.append(Violation("summary_totals", f, None, key,
                                 f"{key} is {json.dumps(got)}, recomputed {show_num(exp)}"))
    for key, exp in count_checks:
        got = counts.get(key)
        if got is not None and (not is_number(got) or float(got) != exp):
            out.append(Violation("summary_totals", f, None, f"counts.{key}",
                                 f"counts.{key} is {json.dumps(got)}, recomputed {exp}"))


def summary_budget(s: dict[str, Any], pol, audit: Audit,
                   given: float | None = None) -> float | None:
    """The budget the plan is audited against: `given` (check --budget, a what-if run), else
    policy.yaml's (None: left out, funding.csv caps the spend); never the figure written in
    the folder under audit (it only gets a word)."""
    budget = pol.budget_total if given is None else float(given)
    got = s.get("budget")
    if budget is None:
        if got is not None:
            audit.warnings.append(
                f"summary.json says the budget was {got}; policy.yaml has no budget.total, so "
                "the plan is audited against the funding sources only. For a what-if run, "
                "give its budget: allocator check --budget X")
        return None
    if got is not None and (not is_number(got) or isinstance(got, bool)
                            or abs(float(got) - budget) > TOTAL_ATOL):
        audit.warnings.append(
            f"summary.json says the budget was {show_money(got) if is_number(got) else got}; "
            f"the plan is audited against {show_money(budget)} ("
            + ("--budget" if given is not None else "policy.yaml")
            + "). For a what-if run, give its budget: allocator check --budget X")
    return budget


def summary_gap(s: dict[str, Any], pol, audit: Audit, given: float | None = None) -> float:
    """The relative gap an `optimal` claim is held to: `given` (check --mip-gap, a what-if run),
    else policy.yaml's solver.mip_gap; never the figure written in the folder (a word only)."""
    gap = pol.mip_gap if given is None else float(given)
    got = s.get("mip_gap")
    if got is not None and (not is_number(got) or isinstance(got, bool)
                            or abs(float(got) - gap) > 1e-12):
        audit.warnings.append(
            f"summary.json says the run allowed a gap of {got}; its claims are audited against "
            f"{show_num(gap)} (" + ("--mip-gap" if given is not None else "policy.yaml")
            + "). For a what-if run, give its gap: allocator check --mip-gap X")
    return gap


def policy_warning(s: dict[str, Any], pol, audit: Audit) -> None:
    """Warn when the run's policy differs from the instance's (budget and solver aside)."""
    ran = s.get("policy")
    if not isinstance(ran, dict):
        return
    ours = json.loads(json.dumps(pol.as_dict()))
    differs = [k for k in ours if k not in ("name", "budget", "solver", "report") and k in ran
               and ran[k] != ours[k]]
    if differs:
        audit.warnings.append(
            "summary.json's policy differs from policy.yaml in " + ", ".join(differs)
            + "; the plan is checked against policy.yaml's rules")
