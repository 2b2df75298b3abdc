"""How much of a plan's spend buys coverage and how much buys quality: the cost of the
cheapest plan that serves the same weight (levels coverage then cost, quality left out),
against the chosen plan's cost. One extra solve, warm-started from the chosen plan (which
serves that weight, so the re-solve starts at the coverage optimum)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.pipeline.result import RunResult
from allocator.pipeline.solve import solve_instance

PLAN_KEYS = ["enterprise_id", "service_id", "agency_id"]


def spend_split(instance: Instance, elig: Eligibility, result: RunResult,
                solver: str | None = None, time_limit: float | None = None
                ) -> dict[str, Any] | None:
    """summary.json's `spend_split`: coverage_only_cost (the least cost serving the plan's
    weight), its status, the quality that plan reaches, and how it was found; None when the
    run has no plan."""
    s = result.summary
    if not result.status.has_solution or s.get("cost") is None:
        return None
    cost = float(s["cost"])
    if "quality" not in instance.policy.levels:
        return {"coverage_only_cost": cost, "coverage_only_quality": s.get("quality"),
                "status": s["status"], "seconds": 0.0,
                "how": "the quality level is not optimised: the plan is the coverage-only plan"}
    if "large_scale" in s:
        return {"coverage_only_cost": None, "status": "not_computed", "seconds": 0.0,
                "how": "not computed at province scale (one more solve of that size)"}
    t0 = time.perf_counter()
    pol = dataclasses.replace(instance.policy, levels=("coverage", "cost"))
    inst = dataclasses.replace(instance, policy=pol)
    start = result.assignments[PLAN_KEYS] if len(result.assignments) else None
    other = solve_instance(inst, solver=solver, time_limit=time_limit, elig=elig, start=start)
    o = other.summary
    out: dict[str, Any] = {"coverage_only_cost": None, "coverage_only_quality": None,
                           "status": o["status"], "seconds": round(time.perf_counter() - t0, 3),
                           "how": "least cost with the plan's served weight, quality left out"}
    if not other.status.has_solution or o.get("coverage") is None:
        return out
    if float(o["coverage"]) < float(s["coverage"]) - 1e-6:
        out["how"] = ("the re-solve served less weight in its time; the split is not known")
        return out
    # never above the chosen plan's cost: that plan serves the same weight
    out["coverage_only_cost"] = round(min(float(o["cost"]), cost), 2)
    out["coverage_only_quality"] = o.get("quality")
    if float(o["coverage"]) > float(s["coverage"]) + 1e-6:
        out["how"] += "; it served more weight than the plan (the plan's coverage is not proven)"
    return out
