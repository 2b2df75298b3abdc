"""The least budget: minimum total cost with every rule but the budget kept (one MIP).

Used by the sweep (points below it are infeasible without a solve, its plan warm-starts the
others) and by the diagnosis (the budget a year needs when the budget is the rule that fails).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import build_model
from allocator.pipeline.lexicographic import round_plan
from allocator.solvers import Backend, Status

#: relative gap of the least-budget solve: proven to about a cent per 10,000,000
LEAST_BUDGET_GAP = 1e-9
PLAN_KEYS = ["enterprise_id", "service_id", "agency_id"]


@dataclass
class LeastBudget:
    """Minimum cost of a plan keeping every rule but the budget (= least feasible budget).

    status: optimal / feasible (value is a plan's cost, bound a proven lower bound), infeasible
    (no plan at any budget) or no_solution / error (unknown)."""

    status: str
    value: float | None = None
    bound: float | None = None
    plan: pd.DataFrame | None = None  # enterprise_id, service_id, agency_id of the plan
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # variables, constraints, nonzeros

    @property
    def exact(self) -> bool:
        """Proven to the cent (the value is the least budget, not just a plan's cost)."""
        return (self.status == "optimal" and self.value is not None and self.bound is not None
                and self.value - self.bound <= max(0.01, 1e-9 * self.value))

    @property
    def has_plan(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "value": self.value, "bound": self.bound,
                "exact": self.exact, "seconds": round(self.seconds, 3)}


def least_budget(inst: Instance, elig: Eligibility, backend: Backend, time_limit: float,
                 threads: int, gap: float = LEAST_BUDGET_GAP) -> LeastBudget:
    """Solve min total cost with every rule but the budget: the least budget with any plan."""
    t0 = time.perf_counter()
    big = 2.0 * float(elig.triples["cost"].sum()) + 1.0
    roomy = dataclasses.replace(inst, policy=dataclasses.replace(inst.policy, budget_total=big))
    model = build_model(roomy, elig, direct_share_rows=backend.direct_share_rows)
    counts = {"variables": model.lp.n_vars, "constraints": model.lp.n_rows,
              "nonzeros": model.lp.n_nonzeros}
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return LeastBudget("infeasible", seconds=time.perf_counter() - t0, counts=counts)
    if model.lp.n_vars == 0:
        return LeastBudget("optimal", 0.0, 0.0, None, time.perf_counter() - t0, counts)
    session = backend.open(model.lp, threads, inst.policy.seed)
    cost = model.levels[-1]
    session.set_objective(cost.coefs, "min")
    res = session.solve(time_limit, gap, None)
    seconds = time.perf_counter() - t0
    if res.status is Status.INFEASIBLE:
        return LeastBudget("infeasible", seconds=seconds, counts=counts)
    if not res.status.has_solution or res.x is None:
        return LeastBudget(res.status.value, seconds=seconds, counts=counts)
    x = round_plan(model, res.x)
    chosen = np.flatnonzero(x[model.x] > 0.5)
    value = float(model.triples["cost"].to_numpy(dtype=float)[chosen].sum())
    # the cost level is in model units: cost_scale turns the solver's bound back into money
    bound = None if res.bound is None else min(float(res.bound) * cost.unit, value)
    if res.status is Status.OPTIMAL and bound is None:
        bound = value
    plan = model.triples.iloc[chosen][PLAN_KEYS].reset_index(drop=True)
    return LeastBudget(res.status.value, value, bound, plan, seconds, counts)
