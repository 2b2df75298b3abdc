"""summary.json: the one builder of a run's figures, used by solve, sweep and diagnose."""

from __future__ import annotations

from typing import Any

import pandas as pd

from allocator.core.version import __version__
from allocator.data.history import has_incumbents, objective_levels
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.pipeline.changes import continuity_figures
from allocator.pipeline.funding import funding_summary, funding_tables
from allocator.pipeline.lexicographic import LexResult
from allocator.pipeline.result import RATIO_DECIMALS
from allocator.solvers import Backend


def run_facts(instance: Instance) -> dict[str, Any]:
    """What every summary says about the run's input: instance, its files' hash, version,
    budget (None when funding.csv leaves budget.total out), the funding sources' total and
    the policy in force."""
    funding = instance.funding
    return {
        "instance": instance.name,
        "instance_path": str(instance.path),
        "instance_sha256": instance.sha256,
        "allocator_version": __version__,
        "budget": instance.policy.budget_total,
        "funding_total": (round(float(funding["amount"].sum()), 2)
                          if funding is not None else None),
        "policy": instance.policy.as_dict(),
    }


def plan_figures(instance: Instance, a: pd.DataFrame, districts: pd.DataFrame
                 ) -> dict[str, Any]:
    """The figures of a plan (its assignments and district table) under the instance's policy:
    served weight, quality, cost, shares and counts. Recomputed from the rows, never carried.

    cost is the government's spend (level 3: the whole cost without co-payment);
    contract_value the agencies' lots (both payers), enterprise_cost the co-payments."""
    pol, dem = instance.policy, instance.demands
    total = float(dem["weight"].sum())
    cov = float(a["weight"].sum())
    gov = a["government_cost"] if "government_cost" in a.columns else a["cost"]
    sources, _ = funding_tables(instance, a)
    funding = funding_summary(sources)
    if funding is not None:
        funding["unpaid"] = round(max(float(gov.sum()) - funding["used"], 0.0), 2)
    return {
        "coverage": cov,
        "quality": float((a["weight"] * a["quality"]).sum()),
        "cost": round(float(gov.sum()), 2),
        "contract_value": round(float(a["cost"].sum()), 2),
        "enterprise_cost": round(float(a["cost"].sum() - gov.sum()), 2),
        "funding": funding,
        "coverage_ratio": round(cov / total, RATIO_DECIMALS) if total > 0 else 0.0,
        "weight_total": total,
        "mandatory_total": int(dem["risk_level"].isin(pol.mandatory_levels).sum()),
        "mandatory_served": int(a["risk_level"].isin(pol.mandatory_levels).sum()),
        "agencies_used": int(a["agency_id"].nunique()),
        "max_district_share": (round(float(districts["max_agency_share"].max()),
                                     RATIO_DECIMALS) if len(a) and len(districts) else None),
        **continuity_figures(instance, a),
    }


def no_plan_figures(instance: Instance) -> dict[str, Any]:
    """The figures of a run without a plan: totals known, plan figures empty."""
    pol, dem = instance.policy, instance.demands
    return {"coverage": None, "quality": None, "cost": None, "contract_value": None,
            "enterprise_cost": None, "funding": None, "coverage_ratio": None,
            "weight_total": float(dem["weight"].sum()),
            "mandatory_total": int(dem["risk_level"].isin(pol.mandatory_levels).sum()),
            "mandatory_served": None, "agencies_used": 0, "max_district_share": None,
            **({"stability": None} if has_incumbents(instance) else {})}


def counts(instance: Instance, elig: Eligibility, served: int, model_counts: dict[str, Any]
           ) -> dict[str, Any]:
    """summary.json's counts: the data, the eligible triples and the model's size."""
    return {"districts": len(instance.districts), "enterprises": len(instance.enterprises),
            "demands": len(instance.demands), "demands_served": served,
            "agencies": len(instance.agencies), "eligible_triples": len(elig.triples),
            "excluded_offers": len(elig.excluded), **model_counts}


def make_summary(instance: Instance, elig: Eligibility, model_counts: dict[str, Any],
                 lex: LexResult, backend: Backend, limit: float, threads: int,
                 a: pd.DataFrame, districts: pd.DataFrame, timings: dict[str, float],
                 seconds: float) -> dict[str, Any]:
    """summary.json of a solve: the spec's fields, per-level figures, counts, phases, policy."""
    pol = instance.policy
    levels = {r.name: r for r in lex.levels}
    gaps = [r.gap for r in lex.levels if r.optimised]  # left-out levels have no gap
    # a level without a bound has an unknown gap, so the run's gap is unknown too
    known = [g for g in gaps if g is not None]
    gap = max(known) if known and len(known) == len(gaps) else None
    cov = levels.get("coverage")
    has_plan = lex.x is not None  # a plan exists (it may serve nothing)
    figures = plan_figures(instance, a, districts) if has_plan else no_plan_figures(instance)
    facts = run_facts(instance)
    return {
        "status": lex.status.value,
        **{k: figures[k] for k in ("coverage", "quality", "cost")},
        "gap": gap,
        "bound": cov.bound if cov is not None else None,
        "solver": backend.name,
        "seconds": round(seconds, 3),
        **{k: v for k, v in facts.items() if k != "policy"},
        "solver_version": backend.version(),
        "time_limit": limit,
        "mip_gap": pol.mip_gap,
        "threads": threads,
        "seed": pol.seed,
        **{k: v for k, v in figures.items() if k not in ("coverage", "quality", "cost")},
        "levels": [r.as_dict() for r in lex.levels],
        "levels_optimised": [n for n in pol.levels if n in objective_levels(instance)],
        "counts": counts(instance, elig, len(a) if has_plan else 0, model_counts),
        "phase_seconds": {k: round(v, 3) for k, v in timings.items()},
        "policy": facts["policy"],
    }


def refigure(summary: dict[str, Any], instance: Instance, a: pd.DataFrame,
             districts: pd.DataFrame) -> dict[str, Any]:
    """A copy of summary with the plan figures of another plan (a plan carried to another
    budget by the sweep), under this instance's policy; the proven bound still caps it."""
    out = {**summary, **plan_figures(instance, a, districts), **run_facts(instance)}
    out["counts"] = {**(summary.get("counts") or {}), "demands_served": len(a)}
    if out.get("bound") is not None:
        out["bound"] = max(float(out["bound"]), out["coverage"])
        out["gap"] = abs(out["bound"] - out["coverage"]) / max(1.0, abs(out["coverage"]))
    return out
