"""The least budget: minimum money with every other rule kept (one MIP).

Used by the sweep (points below it are infeasible without a solve, its plan warm-starts the
others) and by the diagnosis (the budget a year needs when the budget is the rule that fails).

Three kinds of "money" can be the one minimised, every other rule held:
- budget.total (the default): budget row relaxed, the government's total spend minimised;
- funding sources (`sources`): their amounts become variables (funding[s]: pay - amount <= 0)
  and their total is minimised, the other sources held; budget.total is relaxed unless
  `keep_budget` (the diagnosis asks what a short source alone needs; a sweep over one source
  holds the budget);
- every source in proportion (`scale`): one factor l multiplies every amount and
  budget.total (funding[s]: pay - l x amount <= 0), l minimised; the least total is l x the
  sources' total.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocator.data.funding import government_cost, has_funding
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, plain_ids
from allocator.model.build import AllocationModel, add_serve_every_demand, build_model
from allocator.pipeline.funding import funding_tables, plan_split
from allocator.pipeline.lexicographic import round_plan
from allocator.solvers import Backend, Status

#: relative gap of the least-budget solve: proven to about a cent per 10,000,000
LEAST_BUDGET_GAP = 1e-9
PLAN_KEYS = ["enterprise_id", "service_id", "agency_id"]
#: the step of the proportional factor for backends with integer columns only
SCALE_STEP = 1e-6


@dataclass
class LeastBudget:
    """Minimum money with which some plan keeps every other rule (= the least feasible
    budget, source amount or sources' total).

    status: optimal / feasible (value is a plan's figure, bound a proven lower bound),
    infeasible (no plan at any amount) or no_solution / error (unknown). by_source: what each
    source pays in the least plan (canonical split), or the least amounts of the sources
    minimised."""

    status: str
    value: float | None = None
    bound: float | None = None
    plan: pd.DataFrame | None = None  # enterprise_id, service_id, agency_id of the plan
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # variables, constraints, nonzeros
    by_source: dict[str, float] | None = None
    what: str = "budget"  # budget, source:<id>[;<id>], or sources (in proportion)

    @property
    def exact(self) -> bool:
        """Proven to the cent (the value is the least budget, not just a plan's cost)."""
        return (self.status == "optimal" and self.value is not None and self.bound is not None
                and self.value - self.bound <= max(0.01, 1e-9 * self.value))

    @property
    def has_plan(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "value": self.value, "bound": self.bound,
                               "exact": self.exact, "seconds": round(self.seconds, 3)}
        if self.what != "budget":
            out["what"] = self.what
        if self.by_source is not None:
            out["by_source"] = {k: round(v, 2) for k, v in self.by_source.items()}
        return out


def least_budget(inst: Instance, elig: Eligibility, backend: Backend, time_limit: float,
                 threads: int, gap: float = LEAST_BUDGET_GAP,
                 sources: Sequence[str] | None = None, scale: bool = False,
                 keep_budget: bool = False, serve_all: bool = False) -> LeastBudget:
    """Solve min money with every other rule (see the module docstring): the least budget
    (default), the least total of `sources`, or the least total of all sources in proportion
    (`scale`). `serve_all`: every demand some agency may serve is served too (the least
    budget serving everything; infeasible when the rules leave some demand out)."""
    t0 = time.perf_counter()
    what = ("sources" if scale else "source:" + ";".join(sources) if sources
            else "serving_all" if serve_all else "budget")
    run = inst
    if not keep_budget and not scale and inst.policy.budget_total is not None:
        big = 2.0 * float(elig.triples["cost"].sum()) + 1.0
        run = dataclasses.replace(inst, policy=dataclasses.replace(inst.policy,
                                                                   budget_total=big))
    model = build_model(run, elig, direct_share_rows=backend.direct_share_rows,
                        integer_flows=backend.integer_columns_only)
    if serve_all:
        add_serve_every_demand(model)
    counts = {"variables": model.lp.n_vars, "constraints": model.lp.n_rows,
              "nonzeros": model.lp.n_nonzeros}

    def out(status: str, **kw: Any) -> LeastBudget:
        return LeastBudget(status, seconds=time.perf_counter() - t0, counts=counts, what=what,
                           **kw)

    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return out("infeasible")
    if model.lp.n_vars == 0:
        return out("optimal", value=0.0, bound=0.0,
                   by_source={s: 0.0 for s in sources or []} if sources else None)
    objective, unit, free = money_objective(model, sources, scale)
    session = backend.open(model.lp, threads, inst.policy.seed)
    session.set_objective(objective, "min")
    res = session.solve(time_limit, gap, None)
    if res.status is Status.INFEASIBLE:
        return out("infeasible")
    if not res.status.has_solution or res.x is None:
        return out(res.status.value)
    x = round_plan(model, res.x)
    chosen = np.flatnonzero(x[model.x] > 0.5)
    if sources or scale:
        value = float(objective @ x) * unit
    else:
        value = float(government_cost(inst.policy, model.triples["cost"].to_numpy(float)[chosen],
                                      model.triples["risk_level"].to_numpy()[chosen]).sum())
    # the objective is in model units: unit turns the solver's bound back into money
    bound = None if res.bound is None else min(float(res.bound) * unit, value)
    if res.status is Status.OPTIMAL and bound is None:
        bound = value
    plan = model.triples.iloc[chosen][PLAN_KEYS].reset_index(drop=True)
    amounts = {s: float(x[c]) * u for s, (c, u) in free.items()}
    by_source = least_plan_split(inst, model, chosen, amounts, value if scale else None)
    if sources:
        by_source = {s: amounts.get(s, 0.0) for s in sources}
    return out(res.status.value, value=value, bound=bound, plan=plan, by_source=by_source)


def money_objective(m: AllocationModel, sources: Sequence[str] | None, scale: bool
                    ) -> tuple[np.ndarray, float, dict[str, tuple[int, float]]]:
    """The objective of the least-money solve over m's columns (adding the free amounts'
    columns to m), the currency per objective unit, and per free source (column, currency
    per unit of it)."""
    lp = m.lp
    step = 0.01 if m.integer_flows else m.cost_scale  # currency per unit of a money column
    free: dict[str, tuple[int, float]] = {}
    most = float(m.gov.sum()) + 1.0  # no plan spends more: a finite bound for every column
    if sources:
        rows = m.funding_rows if m.funding_rows is not None else pd.Series(dtype=np.int64)
        present = [s for s in sources if s in rows.index]
        cols = lp.add_variables("amount", pd.DataFrame({"source_id": present}), 0.0,
                                np.ceil(most / step), integer=m.integer_flows)
        r = rows.loc[present].to_numpy()
        lp.set_row_bounds(r, hi=0.0)
        lp.add_coefficients(r, cols, np.full(len(cols), -step / m.cost_scale))
        obj = np.zeros(lp.n_vars)
        obj[cols] = 1.0
        free = {s: (int(c), step) for s, c in zip(present, cols, strict=True)}
        return obj, step, free
    if scale:
        funding = m.instance.funding
        assert funding is not None
        lstep = SCALE_STEP if m.integer_flows else 1.0
        total = float(funding["amount"].sum())
        least = min([a for a in funding["amount"].to_numpy(dtype=float) if a > 0]
                    + [float(m.instance.policy.budget_limit)])
        col = lp.add_variables("scale", pd.DataFrame({"of": ["sources"]}), 0.0,
                               np.ceil(most / least / lstep) + 1.0, integer=m.integer_flows)
        if m.funding_rows is not None:
            r = m.funding_rows.to_numpy()
            amount = funding["amount"].reindex(m.funding_rows.index).to_numpy(dtype=float)
            lp.set_row_bounds(r, hi=0.0)
            lp.add_coefficients(r, np.full(len(r), col[0]), -lstep * amount / m.cost_scale)
        if m.budget_row is not None:
            budget = float(m.instance.policy.budget_total or 0.0)
            lp.set_row_bounds(np.array([m.budget_row]), hi=0.0)
            lp.add_coefficients(np.array([m.budget_row]), col,
                                np.array([-lstep * budget / m.cost_scale]))
        obj = np.zeros(lp.n_vars)
        obj[col] = 1.0
        return obj, lstep * total, {}
    cost = m.levels[-1]
    return cost.coefs, cost.unit, {}


def least_plan_split(inst: Instance, m: AllocationModel, chosen: np.ndarray,
                     amounts: dict[str, float], total: float | None
                     ) -> dict[str, float] | None:
    """What each source pays in the least plan (the canonical split), the minimised amounts
    (or the scaled ones, total given) in force."""
    if not has_funding(inst):
        return None
    f = inst.funding
    assert f is not None
    f = f.copy()
    if total is not None:
        f["amount"] = f["amount"] * (total / float(f["amount"].sum()))
    for s, v in amounts.items():
        f.loc[s, "amount"] = v
    run = dataclasses.replace(inst, funding=f)
    t = plain_ids(m.triples.iloc[chosen])
    a = pd.DataFrame({"agency_id": t["agency_id"].to_numpy(),
                      "district_id": t["district_id"].to_numpy(),
                      "sector": t["sector"].to_numpy(), "service_id": t["service_id"].to_numpy(),
                      "risk_level": t["risk_level"].to_numpy(),
                      "government_cost": m.gov[chosen]})
    split = plan_split(run, a)
    assert split is not None
    sources, _ = funding_tables(run, a.assign(funded_by=split.funded_by.to_numpy()))
    assert sources is not None
    return {str(k): float(v) for k, v in zip(sources["source_id"], sources["used"],
                                             strict=True)}
