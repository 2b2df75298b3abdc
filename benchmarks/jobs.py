"""What one measured child process does: an allocator solve, a baseline solve, an LP bound or
one OR-Library GAP problem. Each job is a dict (see harness.run_child) and returns a record."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from benchmarks.harness import peak_mb


def job_allocator(job: dict) -> dict:
    """load, solve_instance, write_results; times and peak memory at the end of each phase.

    `time_limit` None: the policy's own (the default 60 s); `solver` None: the policy's."""
    from allocator.data.validation import load_instance
    from allocator.output.results_folder import write_results
    from allocator.pipeline.solve import solve_instance

    marks: dict[str, float] = {}
    elapsed: dict[str, float] = {}
    messages: dict[str, str] = {}
    partial = Path(job["result"] + ".partial")
    t0 = time.perf_counter()

    def mark(phase: str, last: str) -> None:
        """Peak memory and elapsed time at a phase end, kept on disk in case of a kill."""
        marks[phase], elapsed[phase] = peak_mb(), time.perf_counter() - t0
        messages[phase] = last
        partial.write_text(json.dumps({"peak_mb_by_phase": marks, "elapsed_by_phase": elapsed,
                                       "messages": messages}), encoding="utf-8")

    inst = load_instance(job["instance"])
    load_s = time.perf_counter() - t0
    mark("load", "loaded")
    level_end = re.compile(r"level (\d+) \((\w+)\): (?!solving)")

    def progress(msg: str) -> None:
        if msg.startswith("eligibility:") and "eligible triples" in msg:
            mark("eligibility", msg)
        elif msg.startswith("build:"):
            mark("build", msg)
        else:
            m = level_end.match(msg)
            if m:
                mark(f"level {m.group(1)} ({m.group(2)})", msg)
        if job.get("verbose"):
            import sys

            print(f"    {msg}", file=sys.stderr, flush=True)

    res = solve_instance(inst, solver=job.get("solver"), time_limit=job.get("time_limit"),
                         progress=progress)
    mark("results", "result tables")
    t = time.perf_counter()
    write_s = None
    if job.get("results_dir"):
        write_results(res, Path(job["results_dir"]))
        write_s = time.perf_counter() - t
        mark("write", "written")
    total = time.perf_counter() - t0
    s = res.summary
    out = {
        "status": s.get("status"),
        "coverage": s.get("coverage"),
        "quality": s.get("quality"),
        "cost": s.get("cost"),
        "gap": s.get("gap"),
        "bound": s.get("bound"),
        "mip_gap": s.get("mip_gap"),
        "time_limit": s.get("time_limit"),
        "threads": s.get("threads"),
        "solver": s.get("solver"),
        "solver_version": s.get("solver_version"),
        "counts": s.get("counts", {}),
        "phase_seconds": s.get("phase_seconds", {}),
        "levels": s.get("levels", []),
        "large_scale": s.get("large_scale"),
        "class_model": s.get("class_model"),
        "full_model_kept_by": s.get("full_model_kept_by"),
        "load_seconds": load_s,
        "write_seconds": write_s,
        "total_seconds": total,
        "peak_mb_by_phase": marks,
        "elapsed_by_phase": elapsed,
    }
    if job.get("gap"):  # an OR-Library problem: map the plan back and check it independently
        out.update(gap_verdict(job["gap"], res.assignments, total))
    return out


def gap_verdict(g: dict, assignments, seconds: float) -> dict:
    """Published optimum versus the allocator's plan, recomputed from the GAP data itself."""
    from benchmarks.gap_instances import agent_of_job, gap_check, gap_cost, read_orlib

    problem = read_orlib(g["path"])[g["index"] - 1]
    value = feasible = None
    if assignments is not None and len(assignments):
        pairs = zip(assignments["enterprise_id"], assignments["service_id"],
                    assignments["agency_id"], strict=True)
        agents = agent_of_job(problem, {(e, s): a for e, s, a in pairs})
        feasible = bool(gap_check(problem, agents))
        value = float(gap_cost(problem, agents)) if feasible else None
    opt = g.get("optimum")
    above = None if value is None or opt is None else (value - opt) / max(1.0, abs(opt))
    return {"gap_value": value, "gap_feasible": feasible, "optimum": opt,
            "above_optimum": above, "seconds": seconds}


def job_gap(job: dict) -> dict:
    """Write one GAP problem as an instance folder, then the allocator job on it."""
    from benchmarks.gap_instances import read_orlib, write_gap_instance

    g = job["gap"]
    problem = read_orlib(g["path"])[g["index"] - 1]
    write_gap_instance(problem, job["instance"], sense="min", name=g["name"])
    out = job_allocator(job)
    out["agents"], out["jobs"] = problem["m"], problem["n"]
    return out


def job_baseline(job: dict) -> dict:
    """The plain PuLP model of benchmarks/baseline.py, at the instance's MIP gap."""
    from benchmarks.baseline import load_policy, solve_baseline

    gap = float(load_policy(Path(job["instance"]))["solver"]["mip_gap"])
    t0 = time.perf_counter()
    res = solve_baseline(Path(job["instance"]), time_limit=job["time_limit"], mip_gap=gap)
    total = time.perf_counter() - t0
    levels = [{"name": lv.get("level"), "status": lv.get("status"), "value": lv.get("value"),
               "bound": lv.get("bound"), "gap": lv.get("gap"),
               "seconds": lv.get("seconds", 0.0)} for lv in res.get("levels", [])]
    gaps = [lv["gap"] for lv in levels if lv.get("gap") is not None]
    return {
        "status": res.get("status"),
        "coverage": res.get("coverage"),
        "quality": res.get("quality"),
        "cost": res.get("cost"),
        "gap": max(gaps) if gaps else None,
        "mip_gap": gap,
        "levels": levels,
        "counts": {"eligible_triples": res.get("n_triples"), "variables": res.get("n_vars"),
                   "constraints": res.get("n_constraints")},
        "build_seconds": total - sum(lv["seconds"] or 0.0 for lv in levels),
        "total_seconds": total,
        "peak_mb_by_phase": {"end": peak_mb()},
    }


#: the LP-bound job also times the full model's build up to this many triples (the large path
#: does not build it; at 16 M triples it would need several GB only to be thrown away)
FULL_BUILD_MAX_TRIPLES = 2_000_000


def lp_relaxation_bound(instance_dir: Path, time_limit: float) -> dict:
    """Upper bound on the served weight: the LP relaxation of level 1 (coverage), solved by
    allocator's own HiGHS session (the same model assembly and LP run as a level's LP)."""
    from allocator.data.validation import load_instance
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model
    from allocator.pipeline import large_scale
    from allocator.solvers.highs import HighsSession

    inst = load_instance(instance_dir)
    elig = compute_eligibility(inst)
    if len(elig.triples) >= large_scale.LARGE_TRIPLES:
        out = large_lp_bound(inst, elig, time_limit)
        if len(elig.triples) <= FULL_BUILD_MAX_TRIPLES:  # the allocator no longer builds it
            t = time.perf_counter()
            build_model(inst, elig)
            out["full_build_seconds"] = time.perf_counter() - t
        return out
    model = build_model(inst, elig)
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return {"lp_status": "infeasible", "lp_bound": None}
    session = HighsSession(model.lp, 0, 0)
    level = model.levels[0]
    session.set_objective(level.coefs, level.sense)
    t = time.perf_counter()
    relax = session.relaxation(time_limit)
    secs = time.perf_counter() - t
    status = session.h.modelStatusToString(session.h.getModelStatus())
    return {"lp_status": status, "lp_seconds": secs,
            "lp_bound": None if relax is None else float(relax[0])}


def large_lp_bound(inst, elig, time_limit: float) -> dict:
    """At province scale the full LP does not fit: the coverage LP of the large path (share
    caps and minimum agencies left out, so at least the full LP's optimum), solved to
    optimality by column generation; its bound is the Lagrangian dual at the final duals."""
    from allocator.pipeline.large_scale.class_lp import coverage_lp
    from allocator.pipeline.large_scale.classes import Arrays, Classes

    t = time.perf_counter()
    arr = Arrays.of(inst, elig.triples)
    lp = coverage_lp(inst, arr, Classes.of(inst, elig.triples), time_limit)
    return {"lp_status": ("Optimal (relaxation)" if lp.converged else lp.status.value),
            "lp_seconds": time.perf_counter() - t,
            "lp_bound": lp.bound if lp.converged else None}


def job_lpbound(job: dict) -> dict:
    """Child wrapper of :func:`lp_relaxation_bound`."""
    out = lp_relaxation_bound(Path(job["instance"]), job["time_limit"])
    out["peak_mb_by_phase"] = {"end": peak_mb()}
    return out


JOBS = {"allocator": job_allocator, "gap": job_gap, "baseline": job_baseline,
        "lpbound": job_lpbound}
