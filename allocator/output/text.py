"""Short human summaries on the terminal: of an instance (`validate`) and of a run (`solve`)."""

from __future__ import annotations

import click
import pandas as pd

from allocator.core.errors import Problem
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, candidate_reasons
from allocator.pipeline.plan import RunResult

RISK_NAMES = {1: "low/blue", 2: "general/yellow", 3: "high/orange", 4: "major/red"}


def _money(x: float) -> str:
    return f"{x:,.0f}"


def mandatory_warnings(inst: Instance, elig: Eligibility, limit: int = 50) -> list[Problem]:
    """Demands at a mandatory level that no agency can take, with why (warnings, since the
    data is legal; the solve will answer infeasible and name them)."""
    dem = inst.demands
    mand = dem["risk_level"].isin(inst.policy.mandatory_levels).to_numpy()
    stuck = dem.index[mand & ~dem.index.isin(elig.triples["demand"])]
    if not len(stuck):
        return []
    shown = dem.loc[stuck[:limit]]
    offered = (shown.merge(inst.bids[["service_id", "sector"]].drop_duplicates()).shape[0]
               + shown.merge(inst.quotes[["enterprise_id", "service_id"]]).shape[0])
    why = pd.Series(dtype=object)
    if offered:  # candidate_reasons needs at least one offer to classify
        cand = candidate_reasons(inst, stuck[:limit])
        why = (cand.groupby("demand")["reason"]
               .agg(lambda r: ", ".join(f"{k} {n}" for k, n in r.value_counts().items())))
    out = []
    for d in stuck[:limit]:
        e, s, lvl = dem.at[d, "enterprise_id"], dem.at[d, "service_id"], dem.at[d, "risk_level"]
        reason = (f"offers kept out by rule: {why[d]}" if d in why.index else
                  f"no agency bids for service {s} in sector {dem.at[d, 'sector']}")
        out.append(Problem("demands.csv", None, "enterprise_id", e,
                           f"mandatory demand (risk level {lvl}, service {s}) that no agency "
                           f"can take: {reason}",
                           "add a bid or quote from an eligible agency, or review the policy's "
                           "quality and price thresholds; otherwise the plan is infeasible",
                           "warning"))
    if len(stuck) > limit:
        out.append(Problem("demands.csv", None, "enterprise_id", None,
                           f"{len(stuck) - limit} more mandatory demands no agency can take",
                           "see `allocator diagnose`", "warning"))
    return out


def print_instance_summary(inst: Instance, elig: Eligibility | None = None) -> None:
    """One screen: districts, enterprises by risk and sector, demand against budget, agencies."""
    pol, dem = inst.policy, inst.demands
    ref = (dem["person_days"] * dem["service_id"].map(inst.services["reference_rate"])).sum()
    click.echo(f"instance: {inst.name}  ({inst.path})")
    caps = inst.districts["budget_cap"].notna().sum()
    click.echo(f"districts: {len(inst.districts)} ({caps} with a budget cap)")
    risk = inst.enterprises["risk_level"].value_counts().reindex([1, 2, 3, 4]).fillna(0)
    click.echo(f"enterprises: {len(inst.enterprises):,}  by risk: " + ", ".join(
        f"{lvl} {RISK_NAMES[lvl]} {int(n):,}" for lvl, n in risk.items()))
    sectors = inst.enterprises["sector"].value_counts()
    click.echo("  by sector: " + ", ".join(f"{s} {n:,}" for s, n in sectors.items()))
    mand = dem["risk_level"].isin(pol.mandatory_levels)
    mref = (dem.loc[mand, "person_days"]
            * dem.loc[mand, "service_id"].map(inst.services["reference_rate"])).sum()
    click.echo(f"demands: {len(dem):,} ({int(mand.sum()):,} mandatory), "
               f"{dem['person_days'].sum():,.0f} person-days, weight {dem['weight'].sum():,.0f}")
    click.echo(f"reference cost: all demand {_money(ref)}, mandatory {_money(mref)}; budget "
               f"{_money(pol.budget_total)} ({pol.budget_total / ref:.0%} of all demand)"
               if ref > 0 else f"budget {_money(pol.budget_total)}")
    status = inst.agencies["status"].value_counts()
    click.echo(f"agencies: {len(inst.agencies)}  by status: " + ", ".join(
        f"{s} {n}" for s, n in status.items()) + f"; capacity "
        f"{inst.agencies['capacity_days'].sum():,.0f} person-days")
    click.echo(f"offers: {len(inst.bids):,} bids, {len(inst.quotes):,} quotes, "
               f"{len(inst.conflicts):,} conflicts")
    if elig is not None:
        served = dem.index.isin(elig.triples["demand"])
        reasons = elig.excluded["reason"].value_counts()
        click.echo(f"eligible triples: {len(elig.triples):,}; demands with no eligible agency: "
                   f"{int((~served).sum()):,} ({int((~served & mand).sum())} mandatory)")
        if len(reasons):
            click.echo("kept out: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
    warnings = list(inst.warnings) + (mandatory_warnings(inst, elig) if elig is not None
                                      else [])
    if warnings:
        click.echo(f"warnings: {len(warnings)}")
        for w in warnings[:20]:
            click.echo(f"  warning: {w}")
        if len(warnings) > 20:
            click.echo(f"  ... and {len(warnings) - 20} more")


def print_run_summary(inst: Instance, result: RunResult) -> None:
    """Status, served weight and share, mandatory served, cost vs budget, agencies, shares."""
    s = result.summary
    click.echo(f"status: {s['status']}  (solver {s['solver']}, {s['seconds']:.1f} s"
               + (f", gap {s['gap']:.2e}" if s.get("gap") is not None else "") + ")")
    if result.diagnosis is not None and not result.diagnosis.empty:
        click.echo("why no plan exists:")
        for msg in result.diagnosis["message"]:
            click.echo(f"  - {msg}")
        return
    if s.get("coverage") is None:
        click.echo("no plan was found within the time limit")
        return
    click.echo(f"served weight: {s['coverage']:,.1f} of {s['weight_total']:,.1f} "
               f"({s['coverage_ratio']:.1%}); demands served "
               f"{s['counts']['demands_served']:,} of {s['counts']['demands']:,}")
    click.echo(f"mandatory served: {s['mandatory_served']} of {s['mandatory_total']}")
    click.echo(f"cost: {_money(s['cost'])} of budget {_money(s['budget'])} "
               f"({s['cost'] / s['budget']:.1%})" if s["budget"] else f"cost: {_money(s['cost'])}")
    click.echo(f"agencies used: {s['agencies_used']} of {s['counts']['agencies']}; "
               f"largest agency share of a district: {s['max_district_share']:.1%}")
    if len(result.unserved):
        reasons = pd.Series(result.unserved["reason"]).value_counts()
        click.echo("left out: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
