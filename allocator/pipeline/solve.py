"""One run end to end: eligibility, model, lexicographic solve, result tables, summary."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from allocator import __version__
from allocator.analysis.diagnose import counting_diagnosis, diagnose
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, compute_eligibility
from allocator.model.build import AllocationModel, build_model, point_from_triples
from allocator.pipeline import large_scale
from allocator.pipeline.large_scale import solve_large, use_large_path
from allocator.pipeline.lexicographic import LevelReport, LexResult, solve_lexicographic
from allocator.pipeline.plan import (
    AGENCY_COLUMNS,
    ASSIGNMENT_COLUMNS,
    DISTRICT_COLUMNS,
    UNSERVED_COLUMNS,
    RunResult,
    plan_tables,
)
from allocator.solvers import Status, get_backend

Progress = Callable[[str], None]


def default_threads() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def solve_instance(instance: Instance, solver: str | None = None,
                   time_limit: float | None = None, progress: Progress | None = None,
                   elig: Eligibility | None = None,
                   start: pd.DataFrame | None = None) -> RunResult:
    """Solve the instance under its policy; never raises for an infeasible or timed-out run.

    `start` (enterprise_id, service_id, agency_id rows, e.g. an earlier assignments.csv) is
    offered to the solver as a warm start; rows that are not eligible here are ignored.
    """
    say = progress or (lambda _m: None)
    pol = instance.policy
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    backend = get_backend(solver or pol.solver_name)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    threads = pol.threads or default_threads()

    if elig is None:
        say("eligibility: matching offers to demands")
        t = time.perf_counter()
        elig = compute_eligibility(instance)
        timings["eligibility"] = time.perf_counter() - t
    say(f"eligibility: {len(elig.triples):,} eligible triples, {len(elig.excluded):,} kept out")

    if backend.province_scale and use_large_path(instance, elig):
        return _solve_large(instance, elig, backend, limit, threads, t0, timings, say)

    t = time.perf_counter()
    model = build_model(instance, elig, direct_share_rows=backend.direct_share_rows)
    timings["build"] = time.perf_counter() - t
    lp = model.lp
    say(f"build: {lp.n_vars:,} variables, {lp.n_rows:,} constraints in {timings['build']:.2f} s")

    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        lex = LexResult(Status.INFEASIBLE, None, [], 0.0)
        say("infeasible before solving: a mandatory demand has no eligible agency")
    elif lp.n_vars == 0:  # nothing can be chosen: the empty plan, if every row allows it
        if np.any(lp.row_lo > 1e-9) or np.any(lp.row_hi < -1e-9):
            lex = LexResult(Status.INFEASIBLE, None, [], 0.0)
            say("infeasible before solving: a rule asks for service no agency can give")
        else:
            lex = LexResult(Status.OPTIMAL, np.zeros(0), [
                LevelReport(lv.name, lv.sense, Status.OPTIMAL, 0.0, 0.0, 0.0, 0.0,
                            "empty model") for lv in model.levels])
    else:
        remaining = max(limit - (time.perf_counter() - t0), 0.1)
        lex = solve_lexicographic(model, backend, remaining, pol.mip_gap, threads, pol.seed,
                                  progress=say, start=start_point(model, start),
                                  levels=pol.levels)
    timings["solve"] = lex.seconds

    t = time.perf_counter()
    chosen = (np.flatnonzero(lex.x[model.x] > 0.5)
              if lex.status.has_solution and lex.x is not None else None)
    a, unserved, agencies, districts = tables_of(instance, elig, chosen)
    diagnosis = diagnose(instance, elig, solver=backend.name, time_limit=limit,
                         progress=say) if lex.status is Status.INFEASIBLE else None
    timings["results"] = time.perf_counter() - t
    summary = make_summary(instance, elig, model, lex, backend, limit, threads, a, districts,
                           timings, time.perf_counter() - t0)
    return RunResult(summary, a, unserved, agencies, districts, elig.excluded, diagnosis)


def _solve_large(instance: Instance, elig: Eligibility, backend, limit: float, threads: int,
                 t0: float, timings: dict[str, float], say: Progress) -> RunResult:
    """solve_instance at province scale (allocator.pipeline.large_scale): the full model is never
    built; the coverage LP is solved over demand classes, rounded and repaired."""
    say(f"large scale: {len(elig.triples):,} eligible triples >= "
        f"{large_scale.LARGE_TRIPLES:,}: coverage "
        "LP over demand classes, rounded and repaired (quality and cost not optimised)")
    pol = instance.policy
    dem = instance.demands
    has = np.zeros(len(dem), dtype=bool)
    has[elig.triples["demand"].to_numpy()] = True
    mand = dem["risk_level"].isin(pol.mandatory_levels).to_numpy()
    if (mand & ~has).any():
        say("infeasible before solving: a mandatory demand has no eligible agency")
        lex, chosen, info = LexResult(Status.INFEASIBLE, None, [], 0.0), None, {}
    else:
        remaining = max(limit - (time.perf_counter() - t0), 0.1)
        res = solve_large(instance, elig, remaining, pol.mip_gap, threads, pol.seed,
                          progress=say)
        lex, chosen, info = res.lex, res.chosen, res.info
    timings["solve"] = lex.seconds
    t = time.perf_counter()
    a, unserved, agencies, districts = tables_of(
        instance, elig, chosen if lex.status.has_solution else None)
    # the named reasons only: the elastic MIP does not fit at this size
    diagnosis = (counting_diagnosis(instance, elig) if lex.status is Status.INFEASIBLE
                 else None)
    timings["results"] = time.perf_counter() - t
    model = build_model(instance, Eligibility(elig.triples.iloc[:0], elig.excluded))
    summary = make_summary(instance, elig, model, lex, backend, limit, threads, a, districts,
                           timings, time.perf_counter() - t0)
    summary["large_scale"] = info
    summary["levels_optimised"] = info.get("levels_optimised", [])
    summary["counts"].update(variables=info.get("lp_columns", 0),
                             constraints=info.get("lp_rows", 0), nonzeros=None)
    return RunResult(summary, a, unserved, agencies, districts, elig.excluded, diagnosis)


def tables_of(instance: Instance, elig: Eligibility, chosen: np.ndarray | None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """assignments, unserved, agencies and districts of the chosen triples; empty frames
    with the spec's columns when there is no plan."""
    if chosen is not None:
        return plan_tables(instance, elig, chosen)
    return tuple(pd.DataFrame(columns=cols) for cols in (  # type: ignore[return-value]
        ASSIGNMENT_COLUMNS, UNSERVED_COLUMNS, AGENCY_COLUMNS, DISTRICT_COLUMNS))


def start_point(model: AllocationModel, start: pd.DataFrame | None) -> np.ndarray | None:
    """Column vector of a warm-start plan given as assignment rows, or None."""
    if start is None or start.empty:
        return None
    keys = ["enterprise_id", "service_id", "agency_id"]
    t = model.triples[keys].reset_index()
    chosen = t.merge(start[keys].astype(str).drop_duplicates(), on=keys)["triple"].to_numpy()
    return point_from_triples(model, chosen)


def make_summary(instance, elig, model, lex: LexResult, backend, limit, threads, a, districts,
                 timings, seconds) -> dict:
    """summary.json: the spec's fields, the policy in force, per-level figures and counts."""
    pol, dem = instance.policy, instance.demands
    mand = dem["risk_level"].isin(pol.mandatory_levels)
    served = lex.x is not None  # a plan exists (it may serve nothing)
    levels = {r.name: r for r in lex.levels}
    gaps = [r.gap for r in lex.levels if r.optimised]  # left-out levels have no gap
    # a level without a bound has an unknown gap, so the run's gap is unknown too
    gaps = [] if any(g is None for g in gaps) else gaps
    cov = levels.get("coverage")
    summary = {
        "status": lex.status.value,
        "coverage": float(a["weight"].sum()) if served else None,
        "quality": float((a["weight"] * a["quality"]).sum()) if served else None,
        "cost": round(float(a["cost"].sum()), 2) if served else None,
        "gap": max(gaps) if gaps else None,
        "bound": cov.bound if cov is not None else None,
        "solver": backend.name,
        "seconds": round(seconds, 3),
        "instance": instance.name,
        "instance_path": str(instance.path),
        "instance_sha256": instance.sha256,
        "allocator_version": __version__,
        "solver_version": backend.version(),
        "time_limit": limit,
        "mip_gap": pol.mip_gap,
        "threads": threads,
        "seed": pol.seed,
        "budget": pol.budget_total,
        "weight_total": float(dem["weight"].sum()),
        "coverage_ratio": (float(a["weight"].sum()) / float(dem["weight"].sum())
                           if dem["weight"].sum() > 0 else 0.0) if served else None,
        "mandatory_total": int(mand.sum()),
        "mandatory_served": int(a["risk_level"].isin(pol.mandatory_levels).sum()) if served
        else None,
        "agencies_used": int(a["agency_id"].nunique()) if served else 0,
        "max_district_share": float(districts["max_agency_share"].max()) if served and len(
            districts) else None,
        "levels": [r.as_dict() for r in lex.levels],
        "levels_optimised": list(pol.levels),
        "counts": {
            "districts": len(instance.districts), "enterprises": len(instance.enterprises),
            "demands": len(dem), "demands_served": len(a), "agencies": len(instance.agencies),
            "eligible_triples": len(elig.triples), "excluded_offers": len(elig.excluded),
            "variables": model.lp.n_vars, "constraints": model.lp.n_rows,
            "nonzeros": model.lp.n_nonzeros,
        },
        "phase_seconds": {k: round(v, 3) for k, v in timings.items()},
        "policy": pol.as_dict(),
    }
    return summary
