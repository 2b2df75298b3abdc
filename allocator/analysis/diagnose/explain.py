"""The diagnosis put together: counting first, then the least-budget solve, then the
elastic re-solve; each finding a named rule, subject and size (diagnosis.csv)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pandas as pd

from allocator.analysis.diagnose.counting import budget_lower_bound, prechecks
from allocator.analysis.diagnose.elastic import elastic_solve
from allocator.analysis.diagnose.fixes import with_fixes
from allocator.analysis.diagnose.funding import refine
from allocator.analysis.diagnose.reasons import (
    Diagnosis,
    ElasticResult,
    Reason,
    budget_reason,
    extra_served,
)
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, plain_ids
from allocator.pipeline.least_budget import LeastBudget, least_budget
from allocator.pipeline.result import DIAGNOSIS_COLUMNS, RunResult
from allocator.pipeline.summary import run_facts
from allocator.pipeline.threads import default_threads
from allocator.solvers import Status, get_backend

Progress = Callable[[str], None]

def explain(instance: Instance, elig: Eligibility, solver: str | None = None,
            time_limit: float | None = None, progress: Progress | None = None) -> Diagnosis:
    """Stage 1 checks, then the solves: when counting found nothing inside the model, the
    dedicated least-budget solve (budget relaxed, every other rule hard) first; if that has
    no plan, the elastic re-solve. A stage-1 fact wins over a solve's row on the same rule
    and subject; a solve's finding that is not proven is kept as a note, not a cause."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    pol = instance.policy
    # the counting below maps ids through dicts: plain strings, not categoricals
    elig = Eligibility(plain_ids(elig.triples), elig.excluded)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    say("diagnose: checks by counting and max-flow")
    pre = prechecks(instance, elig)
    backend = get_backend(solver or pol.solver_name)
    backend_name = backend.name
    structural = any(r.cause and r.rule != "mandatory_no_eligible_agency" for r in pre)
    ela = None
    if not structural and backend is not None:
        say("least-budget solve: every rule but the budget held, cost minimised")
        lb = least_budget(instance, elig, backend, max(0.5 * limit, 0.05),
                          pol.threads or default_threads())
        if lb.has_plan:
            ela = least_budget_result(instance, elig, lb)
        else:
            say(f"least-budget solve: {lb.status}; every rule made elastic")
    if ela is None:
        left = max(limit - (time.perf_counter() - t0), min(limit, 1.0))
        # with causes already found by counting, the least budget on top is a lesser matter
        ela = elastic_solve(instance, elig, solver=solver, time_limit=left, progress=say,
                            level2_share=0.25 if structural else 1.0)
    covered = set().union(*(r.keys for r in pre)) if pre else set()
    found = [r for r in ela.reasons if not (r.keys & covered)]
    reasons = [r for r in pre if r.cause] + [r for r in found if r.cause]
    lower = budget_lower_bound(instance, elig)
    if lower and not any(r.rule == "budget" for r in reasons):
        reasons += lower
        found = [r for r in found if r.rule != "budget"]
    budget_ok = ela.least_cost is not None and (
        ela.least_cost <= pol.budget_limit * (1 + 1e-9) + 0.005)
    clean = ela.status.has_solution and (ela.violation or 0.0) <= 1e-6 and budget_ok
    if reasons or ela.infeasible_proven:
        status = "infeasible"
    elif clean:
        status = "feasible"
    else:
        status = "undetermined"
    if any(r.rule == "funding" and r.cause for r in pre):
        left = max(limit - (time.perf_counter() - t0), min(limit, 1.0))
        say("least-budget solve per short funding source: its least amount, every other rule "
            "held")
        reasons = refine(instance, elig, reasons, backend, 0.5 * left,
                         pol.threads or default_threads())
    if status != "feasible":
        if not any(r.cause for r in reasons):  # unproven findings only when nothing is sure
            reasons += [r for r in found if not r.cause]
        reasons += [r for r in pre if not r.cause]
    if status == "undetermined":
        reasons.insert(0, Reason(
            "undetermined", "model", None, None, None,
            "No plan was found and none was ruled out in the time allowed (the re-solve ended "
            f"{ela.status.value}); raise --time-limit."
            + (" The best attempt breaks the rules listed next." if len(reasons) else "")))
    return Diagnosis(reasons, status, ela, backend_name, time.perf_counter() - t0, instance)


def diagnose(instance: Instance, elig: Eligibility, solver: str | None = None,
             time_limit: float | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """Every reason that can be named for infeasibility, as diagnosis.csv rows."""
    diag = explain(instance, elig, solver=solver, time_limit=time_limit, progress=progress)
    if diag.feasible:
        return with_fixes(instance, pd.DataFrame([{
            "rule": "unexplained", "subject": "model", "required": None, "available": None,
            "shortfall": None,
            "message": "The solver found no plan, but the elastic re-solve found one that meets "
                       "every rule; solve again with a longer time limit."}],
            columns=DIAGNOSIS_COLUMNS))
    return diag.table


def counting_diagnosis(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """The reasons counting and max-flow can name, without the elastic re-solve (province
    scale, where that MIP does not fit): diagnosis.csv rows, one 'undetermined' if none."""
    elig = Eligibility(plain_ids(elig.triples), elig.excluded)
    reasons = prechecks(instance, elig)
    if not any(r.cause for r in reasons):
        reasons.insert(0, Reason(
            "undetermined", "model", None, None, None,
            "The coverage LP has no plan that serves every mandatory demand, and no single "
            "rule can be named by counting; at this size the elastic re-solve is not run."))
    return Diagnosis(reasons, "infeasible", None, "", 0.0, instance).table


def least_budget_result(instance: Instance, elig: Eligibility, lb: LeastBudget) -> ElasticResult:
    """The least-budget solve's answer in the elastic result's terms: no rule but the budget
    broken (proven), and the budget reason when the least budget is above the budget."""
    proven = lb.status == "optimal"
    res = ElasticResult(Status.OPTIMAL, [], 0.0, lb.value, lb.bound, proven, lb.seconds, 0.0)
    res.by_source = lb.by_source
    budget = instance.policy.budget_limit
    assert lb.value is not None
    if lb.value > budget * (1 + 1e-9) + 0.005:
        plan = elig.triples.merge(lb.plan, on=list(lb.plan.columns)) if lb.plan is not None \
            else elig.triples.iloc[:0]
        sure = proven or (lb.bound is not None and lb.bound > budget * (1 + 1e-9))
        res.reasons = [budget_reason(instance, lb.value, lb.bound, proven,
                                     extra_served=extra_served(instance, plan), cause=sure)]
    return res


def attach_diagnosis(instance: Instance, elig: Eligibility, result: RunResult,
                     solver: str | None = None, time_limit: float | None = None,
                     progress: Progress | None = None) -> RunResult:
    """The result with its diagnosis when it is infeasible: the full diagnosis, or at
    province scale (where the elastic MIP does not fit) what counting can name."""
    if result.status is not Status.INFEASIBLE or result.diagnosis is not None:
        return result
    if "large_scale" in result.summary:
        table = counting_diagnosis(instance, elig)
    else:
        table = diagnose(instance, elig, solver=solver or result.summary.get("solver"),
                         time_limit=time_limit, progress=progress)
    return dataclasses.replace(result, diagnosis=table)


def diagnosis_summary(instance: Instance, elig: Eligibility, diag: Diagnosis) -> dict:
    """summary.json of a diagnose run: status, the elastic figures and the rules named."""
    ela = diag.elastic
    table = diag.table
    facts = run_facts(instance)
    return {
        "status": {"feasible": "feasible", "infeasible": "infeasible"}.get(diag.status,
                                                                          "no_solution"),
        "coverage": None, "quality": None, "cost": None, "gap": None, "bound": None,
        "solver": diag.solver,
        "seconds": round(diag.seconds, 3),
        **facts,
        "diagnosis": {
            "outcome": diag.status,
            "reasons": len(table),
            "rules": sorted(set(table["rule"])),
            "elastic_status": ela.status.value if ela else None,
            "violation": ela.violation if ela else None,
            "least_budget": round(ela.least_cost, 2) if ela and ela.least_cost is not None
            else None,
            "least_budget_bound": ela.least_cost_bound if ela else None,
            "least_budget_proven": ela.least_cost_proven if ela else None,
            "rules_kept_hard": ela.unrelaxed if ela else [],
            "least_budget_by_source": ({k: round(v, 2) for k, v in ela.by_source.items()}
                                       if ela and ela.by_source else None),
        },
        "counts": {"demands": len(instance.demands), "agencies": len(instance.agencies),
                   "eligible_triples": len(elig.triples)},
    }
