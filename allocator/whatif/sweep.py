"""Budget sweeps (`allocator sweep`): one lexicographic solve per budget, and the frontier.

Speed comes from what the budget does not change, proved rather than guessed:
- eligibility is computed once (it does not depend on the budget);
- one cheap solve, minimum cost with every other rule kept, gives the least budget that
  serves every mandatory demand: points below its proven bound are infeasible without a solve,
  and its plan is a warm start for every feasible point;
- the largest budget is solved first: its plan, costing c, stays lexicographically optimal for
  every budget in [c, largest] (a smaller feasible set that still holds the plan), so those
  points reuse it;
- the other points run in increasing budget along K contiguous chains (K = --jobs processes),
  each warm-started from the plan of the point below, since a plan feasible at B is feasible
  at any larger budget.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import math
import multiprocessing as mp
import queue as queue_mod
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from allocator.analysis.diagnose import diagnose
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, compute_eligibility
from allocator.model.build import AllocationModel, build_model
from allocator.pipeline.lexicographic import LevelReport, LexResult, round_plan
from allocator.pipeline.plan import (
    DIAGNOSIS_COLUMNS,
    RunResult,
    plan_tables,
    swap_in,
    write_results,
)
from allocator.pipeline.solve import default_threads, make_summary, solve_instance
from allocator.solvers import Status, get_backend

#: marginal value is the extra served weight per this much extra budget
MARGINAL_STEP = 10_000.0
PLAN_KEYS = ["enterprise_id", "service_id", "agency_id"]
#: relative gap of the least-budget solve: proven to about a cent per 10,000,000
LEAST_BUDGET_GAP = 1e-9
FRONTIER_COLUMNS = ["budget", "status", "coverage", "coverage_ratio", "mandatory_served",
                    "quality", "cost", "gap", "seconds", "marginal_value", "mandatory_total",
                    "agencies_used", "max_district_share", "coverage_status", "levels", "how",
                    "folder"]
_SENSE = {"coverage": 1, "quality": 1, "cost": -1}
_NUMBER = r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


# ------------------------------------------------------------------------------------------
# budgets
# ------------------------------------------------------------------------------------------

def _number(text: str, what: str) -> float:
    text = text.strip()
    if not re.fullmatch(_NUMBER, text):
        raise ValueError(f"{what} {text!r} is not a number (write e.g. 12000000 or 1.2e7, "
                         "no thousands separators or units)")
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} must be a finite amount >= 0")
    return value


def parse_budgets(text: str) -> list[float]:
    """Budgets from `--budgets`: a comma list and/or START:STOP:N items (N evenly spaced points,
    both ends included). Returned sorted, without repeats, rounded to cents."""
    if text is None or not str(text).strip():
        raise ValueError("no budget given; write e.g. 8e6,10e6,12e6 or 6e6:18e6:13")
    values: list[float] = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"empty item in {text!r}; separate budgets by single commas")
        if re.fullmatch(r"0\d+(?:\.\d*)?", item):
            raise ValueError(f"{item!r} in {text!r} looks like the tail of a number written "
                             "with thousands separators; write 1000000, not 1,000,000")
        parts = item.split(":")
        if len(parts) == 1:
            values.append(_number(item, "budget"))
        elif len(parts) == 3:
            start, stop = _number(parts[0], "START"), _number(parts[1], "STOP")
            n_text = parts[2].strip()
            if not re.fullmatch(r"\d+", n_text) or int(n_text) < 1:
                raise ValueError(f"N in {item!r} must be a whole number >= 1")
            n = int(n_text)
            if stop < start:
                raise ValueError(f"STOP is below START in {item!r}; write START:STOP:N with "
                                 "START <= STOP")
            if n == 1 and stop != start:
                raise ValueError(f"N = 1 in {item!r} gives one point; use N >= 2 for a range")
            values.extend(np.linspace(start, stop, n).tolist())
        else:
            raise ValueError(f"{item!r} is neither a number nor START:STOP:N")
    out = sorted({round(v, 2) for v in values})
    if len(out) > 10_000:
        raise ValueError(f"{len(out)} budget points is too many (at most 10000)")
    return out


def budget_label(budget: float) -> str:
    """Folder name of a point: budget_<amount>, plain digits (cents only when present)."""
    text = f"{budget:.2f}".rstrip("0").rstrip(".")
    return f"budget_{text}"


def at_budget(inst: Instance, budget: float, threads: int | None = None) -> Instance:
    """The same instance with budget.total (and optionally the solver threads) replaced."""
    pol = dataclasses.replace(inst.policy, budget_total=float(budget),
                              threads=threads if threads is not None else inst.policy.threads)
    return dataclasses.replace(inst, policy=pol)


def plan_rows(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """The (enterprise, service, agency) rows of a plan, the form warm starts take."""
    if frame is None or frame.empty:
        return None
    return frame[PLAN_KEYS].reset_index(drop=True)


def triple_numbers(elig: Eligibility, plan: pd.DataFrame | None) -> np.ndarray:
    """Triple numbers (elig.triples index) of a plan given as assignment rows."""
    if plan is None or plan.empty:
        return np.zeros(0, dtype=np.int64)
    t = elig.triples[PLAN_KEYS].reset_index(names="triple")
    return t.merge(plan[PLAN_KEYS].astype(str), on=PLAN_KEYS)["triple"].to_numpy()


# ------------------------------------------------------------------------------------------
# the least budget that serves every mandatory demand
# ------------------------------------------------------------------------------------------

@dataclass
class LeastBudget:
    """Minimum cost of a plan keeping every rule but the budget (= least feasible budget).

    status: optimal / feasible (value is a plan's cost, bound a proven lower bound), infeasible
    (no plan at any budget) or no_solution / error (unknown: every point is solved)."""

    status: str
    value: float | None = None
    bound: float | None = None
    plan: pd.DataFrame | None = None
    seconds: float = 0.0
    model: AllocationModel | None = None

    @property
    def exact(self) -> bool:
        """Proven to the cent (the value is the least budget, not just a plan's cost)."""
        return (self.status == "optimal" and self.value is not None and self.bound is not None
                and self.value - self.bound <= max(0.01, 1e-9 * self.value))

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "value": self.value, "bound": self.bound,
                "exact": self.exact,
                "seconds": round(self.seconds, 3)}


def least_budget(inst: Instance, elig: Eligibility, solver: str | None,
                 time_limit: float | None, threads: int) -> LeastBudget:
    """Solve min total cost with every rule but the budget: the least budget with any plan."""
    t0 = time.perf_counter()
    pol = inst.policy
    big = 2.0 * float(elig.triples["cost"].sum()) + 1.0
    backend = get_backend(solver or pol.solver_name)
    model = build_model(at_budget(inst, big), elig,
                        direct_share_rows=backend.direct_share_rows)
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return LeastBudget("infeasible", seconds=time.perf_counter() - t0, model=model)
    if model.lp.n_vars == 0:
        return LeastBudget("optimal", 0.0, 0.0, None, time.perf_counter() - t0, model)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    session = backend.open(model.lp, threads, pol.seed)
    cost = model.levels[-1]
    session.set_objective(cost.coefs, "min")
    res = session.solve(limit, LEAST_BUDGET_GAP, None)
    seconds = time.perf_counter() - t0
    if res.status is Status.INFEASIBLE:
        return LeastBudget("infeasible", seconds=seconds, model=model)
    if not res.status.has_solution or res.x is None:
        return LeastBudget(res.status.value, seconds=seconds, model=model)
    x = round_plan(model, res.x)
    chosen = np.flatnonzero(x[model.x] > 0.5)
    money = model.triples["cost"].to_numpy(dtype=float)
    value = float(money[chosen].sum())
    # the model may scale its cost objective: convert the solver's bound back to money
    coef_sum = float(cost.coefs[model.x].sum())
    factor = float(money.sum()) / coef_sum if coef_sum > 0 else 1.0
    bound = None if res.bound is None else min(float(res.bound) * factor, value)
    if res.status is Status.OPTIMAL and bound is None:
        bound = value
    plan = model.triples.iloc[chosen][PLAN_KEYS].reset_index(drop=True)
    return LeastBudget(res.status.value, value, bound, plan, seconds, model)


def budget_shortfall(budget: float, lb: LeastBudget) -> pd.DataFrame:
    """diagnosis.csv row: the budget is below the least budget with which every other rule
    holds (the minimum-cost plan proves the other rules can hold together)."""
    need = math.ceil(lb.value * 100) / 100
    short = need - budget
    msg = (f"The budget is {short:,.2f} short of the {need:,.2f} needed to serve every "
           f"mandatory demand while every other rule holds.")
    if not lb.exact:
        msg += (f" That is the least budget found in the time allowed; the least possible is "
                f"at least {lb.bound:,.2f}.")
    return pd.DataFrame([{"rule": "budget", "subject": "city", "required": need,
                          "available": budget, "shortfall": round(short, 2), "message": msg}],
                        columns=DIAGNOSIS_COLUMNS)


def with_budget_reason(result: RunResult, budget: float, lb: LeastBudget) -> RunResult:
    """Name the budget in an infeasible point's diagnosis when the least budget shows it is
    short and the diagnosis does not already say so."""
    if result.status is not Status.INFEASIBLE or lb.value is None or budget >= lb.value:
        return result
    old = result.diagnosis if result.diagnosis is not None else pd.DataFrame(
        columns=DIAGNOSIS_COLUMNS)
    if (old["rule"] == "budget").any():
        return result
    old = old[old["rule"] != "unexplained"]
    parts = [budget_shortfall(budget, lb)] + ([old] if not old.empty else [])
    return dataclasses.replace(result, diagnosis=pd.concat(parts, ignore_index=True))


def rebudget_diagnosis(table: pd.DataFrame, budget: float) -> pd.DataFrame:
    """A diagnosis made at another budget, its budget rows re-sized for this one (the other
    rules' reasons do not depend on the budget)."""
    out = table.copy()
    is_b = out["rule"] == "budget"
    if not is_b.any():
        return out
    need = pd.to_numeric(out.loc[is_b, "required"], errors="coerce")
    short = need - budget
    out.loc[is_b, "available"] = budget
    out.loc[is_b, "shortfall"] = short.round(2)
    out.loc[is_b, "message"] = [
        f"The budget is {s:,.2f} short of the {n:,.2f} needed, with the other rules' "
        "shortfalls listed here allowed." for s, n in zip(short, need, strict=True)]
    keep = ~is_b | (short > 0.005)
    return out[keep.to_numpy()].reset_index(drop=True)


def below_least_result(inst_b: Instance, elig: Eligibility, lb: LeastBudget,
                       solver: str | None, time_limit: float | None, threads: int,
                       no_plan_reasons: pd.DataFrame | None = None) -> RunResult:
    """An infeasible point proved without solving: the budget is below the least budget
    with any plan (one budget reason), or no plan exists at any budget (`no_plan_reasons`,
    diagnosed once for the sweep)."""
    t0 = time.perf_counter()
    pol = inst_b.policy
    backend = get_backend(solver or pol.solver_name)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    if lb.status == "infeasible":
        note = "no plan at any budget"
        reasons = rebudget_diagnosis(no_plan_reasons, pol.budget_total)
    else:
        note = "budget below the least budget with any plan"
        reasons = budget_shortfall(pol.budget_total, lb)
    lex = LexResult(Status.INFEASIBLE, None, [LevelReport(
        "coverage", "max", Status.INFEASIBLE, None, None, None, 0.0, note)])
    empty = pd.DataFrame()
    summary = make_summary(inst_b, elig, lb.model, lex, backend, limit, threads, empty, empty,
                           {}, time.perf_counter() - t0)
    summary["sweep"] = {"how": "below_least_budget", "least_budget": lb.as_dict()}
    return RunResult(summary, excluded=elig.excluded, diagnosis=reasons)


def adopt_plan(inst_b: Instance, elig: Eligibility, base: dict[str, Any],
               plan: pd.DataFrame | None, sweep_note: dict[str, Any]) -> RunResult:
    """A point's result carrying another point's plan: tables and plan figures re-derived
    under this budget; status and proven bound kept from `base` (a summary whose bound holds
    at this budget)."""
    t0 = time.perf_counter()
    pol = inst_b.policy
    chosen = triple_numbers(elig, plan)
    a, unserved, agencies, districts = plan_tables(inst_b, elig, chosen)
    s = json.loads(json.dumps(base, default=str))
    cov = float(a["weight"].sum())
    total = float(inst_b.demands["weight"].sum())
    s["coverage"] = cov
    s["quality"] = float((a["weight"] * a["quality"]).sum())
    s["cost"] = round(float(a["cost"].sum()), 2)
    s["coverage_ratio"] = cov / total if total > 0 else 0.0
    s["mandatory_served"] = int(a["risk_level"].isin(pol.mandatory_levels).sum())
    s["agencies_used"] = int(a["agency_id"].nunique())
    s["max_district_share"] = (float(districts["max_agency_share"].max()) if len(a)
                               else None)
    s.setdefault("counts", {})["demands_served"] = len(a)
    if s.get("bound") is not None:
        s["bound"] = max(float(s["bound"]), cov)
        s["gap"] = abs(s["bound"] - cov) / max(1.0, abs(cov))
    if s.get("status") not in ("optimal", "feasible"):
        s["status"] = "feasible"  # a plan, found at a smaller budget, not proven here
    s["budget"] = pol.budget_total
    s["policy"] = pol.as_dict()
    s["seconds"] = round(float(base.get("seconds") or 0.0) + time.perf_counter() - t0, 3)
    s["sweep"] = sweep_note
    return RunResult(s, a, unserved, agencies, districts, elig.excluded, None)


def reused_result(inst_b: Instance, elig: Eligibility, source: RunResult,
                  source_budget: float) -> RunResult:
    """The plan of a larger budget, still lexicographically optimal at this budget because
    it costs no more than it (the same plan in a smaller feasible set)."""
    base = {**source.summary, "seconds": 0.0}
    return adopt_plan(inst_b, elig, base, plan_rows(source.assignments), {
        "how": "reused", "plan_from_budget": source_budget,
        "note": "the plan of the larger budget costs no more than this budget, so it is "
                "as good here (same status and bound)"})


def lex_better(a: dict[str, Any], b: dict[str, Any],
               levels: tuple[str, ...] = ("coverage", "quality", "cost")) -> bool:
    """Plan figures a beat b lexicographically over the optimised levels (served weight,
    quality, then lower cost)."""
    def close(x: float, y: float) -> bool:
        return abs(x - y) <= 1e-7 * max(1.0, abs(x), abs(y))
    for key, sign in ((k, _SENSE[k]) for k in levels):
        x, y = float(a[key]), float(b[key])
        if not close(x, y):
            return sign * (x - y) > 0
    return False


def monotone_repair(rows: list[dict], inst: Instance, elig: Eligibility,
                    folder: Path) -> None:
    """A plan of a smaller budget is feasible at a larger one: where a point's own plan is
    lexicographically worse (time limit, chains run apart), or it has none, it takes the best
    plan of a smaller budget, so the frontier never falls. Rewrites those points' folders."""
    best: dict[str, Any] | None = None
    for row in sorted(rows, key=lambda r: r["budget"]):
        has = row["status"] in ("optimal", "feasible") and row.get("coverage") is not None
        if row["status"] == "infeasible":
            continue
        if has and (best is None or not lex_better(best, row, inst.policy.levels)):
            best = row
            continue
        if best is None:
            continue
        t0 = time.perf_counter()
        b = row["budget"]
        donor = folder / best["folder"] / "assignments.csv"
        plan = pd.read_csv(donor, dtype=str, usecols=PLAN_KEYS, keep_default_na=False)
        own = json.loads((folder / row["folder"] / "summary.json").read_text(encoding="utf-8"))
        own["status"] = row["status"]
        res = adopt_plan(at_budget(inst, b), elig, own, plan, {
            **(own.get("sweep") or {}), "how": "smaller_budget_plan",
            "plan_from_budget": best["budget"], "own_plan": {
                k: row.get(k) for k in ("status", "coverage", "quality", "cost")},
            "note": "the plan found at a smaller budget is better than the one found here "
                    "in the time allowed, and feasible here"})
        write_results(res, folder / row["folder"])
        new = frontier_row(b, res, "smaller_budget_plan",
                           row["seconds"] + time.perf_counter() - t0)
        row.clear()
        row.update(new)


# ------------------------------------------------------------------------------------------
# one point, one chain
# ------------------------------------------------------------------------------------------

def frontier_row(budget: float, result: RunResult, how: str, seconds: float) -> dict[str, Any]:
    """One frontier.csv row from a point's summary (numbers empty when there is no plan)."""
    s = result.summary
    has = result.status.has_solution
    row = {"budget": budget, "status": s["status"], "how": how, "seconds": round(seconds, 3),
           "folder": budget_label(budget), "mandatory_total": s.get("mandatory_total"),
           "levels": "+".join(s.get("levels_optimised") or []),
           "coverage_status": next((lv["status"] for lv in s.get("levels") or []
                                    if lv.get("name") == "coverage"), s["status"])}
    for key in ("coverage", "coverage_ratio", "mandatory_served", "quality", "cost", "gap",
                "agencies_used", "max_district_share"):
        row[key] = s.get(key) if has else None
    return row


@dataclass
class ChainTask:
    """Budgets solved in increasing order by one process, each warm-started from the last."""

    inst: Instance
    elig: Eligibility
    budgets: list[float]
    start: pd.DataFrame | None
    lb: LeastBudget
    solver: str | None
    time_limit: float | None
    threads: int
    folder: Path


_QUEUE: Any = None


def _init_worker(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def solve_point(inst: Instance, elig: Eligibility, budget: float, start: pd.DataFrame | None,
                lb: LeastBudget, solver: str | None, time_limit: float | None,
                threads: int, folder: Path) -> tuple[RunResult, dict[str, Any]]:
    """Solve one budget point, write its folder, return the result and its frontier row."""
    t0 = time.perf_counter()
    inst_b = at_budget(inst, budget, threads)
    result = solve_instance(inst_b, solver=solver, time_limit=time_limit, elig=elig,
                            start=start)
    result = with_budget_reason(result, budget, lb)
    result.summary["sweep"] = {"how": "warm_start" if start is not None else "solved",
                               "warm_start_rows": 0 if start is None else len(start)}
    write_results(result, folder / budget_label(budget))
    row = frontier_row(budget, result, result.summary["sweep"]["how"], time.perf_counter() - t0)
    return result, row


def run_chain(task: ChainTask, notify: Callable[[dict], None] | None = None) -> list[dict]:
    """Solve a chain of increasing budgets; each plan warm-starts the next point."""
    notify = notify or (lambda row: _QUEUE.put(row) if _QUEUE is not None else None)
    start = task.start
    rows = []
    for budget in task.budgets:
        result, row = solve_point(task.inst, task.elig, budget, start, task.lb, task.solver,
                                  task.time_limit, task.threads, task.folder)
        if result.status.has_solution and not result.assignments.empty:
            start = plan_rows(result.assignments)
        rows.append(row)
        notify(row)
    return rows


def split_chains(budgets: list[float], k: int) -> list[list[float]]:
    """k contiguous, nearly equal runs of the sorted budgets (none empty)."""
    k = max(1, min(k, len(budgets)))
    return [list(part) for part in np.array_split(np.asarray(budgets, dtype=float), k)
            if len(part)]


# ------------------------------------------------------------------------------------------
# the frontier
# ------------------------------------------------------------------------------------------

def frontier_frame(rows: list[dict]) -> pd.DataFrame:
    """frontier.csv: rows by budget with the marginal value from the previous point."""
    df = pd.DataFrame(rows).sort_values("budget").reset_index(drop=True)
    for col in FRONTIER_COLUMNS:
        if col not in df.columns:
            df[col] = None
    num = ["coverage", "coverage_ratio", "mandatory_served", "quality", "cost", "gap",
           "agencies_used", "max_district_share", "mandatory_total"]
    df[num] = df[num].apply(pd.to_numeric, errors="coerce")
    step = df["budget"].diff()
    df["marginal_value"] = (df["coverage"].diff() / step * MARGINAL_STEP).where(step > 0)
    return df[FRONTIER_COLUMNS]


def write_frontier_csv(df: pd.DataFrame, path: Path) -> None:
    """Write frontier.csv (money in cents, empty cells where a point has no plan)."""
    out = df.copy()
    out["cost"] = out["cost"].round(2)
    for col in ("mandatory_served", "mandatory_total", "agencies_used"):
        out[col] = out[col].astype("Int64")
    out.to_csv(path, index=False, float_format="%.10g")


def first_full_mandatory(df: pd.DataFrame) -> float | None:
    """Least swept budget whose plan serves every mandatory demand (the fallback mark)."""
    ok = df[df["status"].isin(["optimal", "feasible"])
            & (df["mandatory_served"] >= df["mandatory_total"])]
    return float(ok["budget"].min()) if len(ok) else None


def print_frontier(df: pd.DataFrame) -> None:
    """A compact table of the frontier on stdout."""
    click.echo(f"{'budget':>16} {'status':>11} {'served':>8} {'share':>7} {'cost':>16} "
               f"{'marginal':>9} {'seconds':>8}  how")
    for r in df.itertuples(index=False):
        has = pd.notna(r.coverage)
        click.echo(f"{r.budget:16,.0f} {r.status:>11} "
                   + (f"{r.coverage:8,.1f} {r.coverage_ratio:7.1%} {r.cost:16,.0f} "
                      if has else f"{'':8} {'':7} {'':16} ")
                   + (f"{r.marginal_value:9.3f} " if pd.notna(r.marginal_value) else f"{'':9} ")
                   + f"{r.seconds:8.1f}  {r.how}")


# ------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------

def run_sweep(inst: Instance, budgets: list[float], out: Path, jobs: int = 1,
              solver: str | None = None, time_limit: float | None = None) -> int:
    """One solve per budget; writes DIR/frontier.csv, frontier.png, frontier_summary.json and
    DIR/budget_<amount>/ per point, atomically. Exit 0 if any point has a plan, else 1."""
    from allocator.output import plots

    t_start = time.perf_counter()
    out = Path(out)
    budgets = sorted({round(float(b), 2) for b in budgets})
    if not budgets:
        click.echo("no budget to sweep", err=True)
        return 2
    cores = inst.policy.threads or default_threads()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    bar = None
    try:
        elig = compute_eligibility(inst)
        lb = least_budget(inst, elig, solver, time_limit, cores)
        rows: list[dict] = []
        bar = _progress(len(budgets))

        def done(row: dict) -> None:
            rows.append(row)
            bar.set_postfix_str(f"{row['budget']:,.0f}: {row['status']}", refresh=False)
            bar.update(1)

        # 1. points proved infeasible by the least-budget solve
        certain = lb.status == "infeasible" or (lb.bound is not None and lb.value is not None)
        skip = [b for b in budgets if certain and (
            lb.status == "infeasible" or b < lb.bound * (1 - 1e-9))]
        no_plan = None
        if skip and lb.status == "infeasible":
            no_plan = diagnose(at_budget(inst, skip[-1], cores), elig, solver=solver,
                               time_limit=time_limit)
        for b in skip:
            t0 = time.perf_counter()
            res = below_least_result(at_budget(inst, b, cores), elig, lb, solver, time_limit,
                                     cores, no_plan)
            write_results(res, tmp / budget_label(b))
            done(frontier_row(b, res, "below_least_budget", time.perf_counter() - t0))
        skipped = set(skip)
        todo = [b for b in budgets if b not in skipped]
        start0 = lb.plan if lb.plan is not None else None

        # 2. the largest budget first: its plan serves every budget between its cost and it
        if todo:
            top = todo[-1]
            start = start0 if lb.value is not None and top >= lb.value else None
            top_res, row = solve_point(inst, elig, top, start, lb, solver, time_limit, cores,
                                       tmp)
            done(row)
            todo = todo[:-1]
            if top_res.status.has_solution and top_res.summary.get("cost") is not None:
                top_cost = float(top_res.assignments["cost"].sum())
                reuse = [b for b in todo if b >= top_cost]
                for b in reuse:
                    t0 = time.perf_counter()
                    res = reused_result(at_budget(inst, b, cores), elig, top_res, top)
                    write_results(res, tmp / budget_label(b))
                    done(frontier_row(b, res, "reused", time.perf_counter() - t0))
                todo = [b for b in todo if b < top_cost]

        # 3. the rest in increasing chains, warm-started along each chain
        if todo:
            k = max(1, min(jobs, len(todo)))
            threads = max(1, cores // k)
            light = dataclasses.replace(lb, model=None, plan=None)
            tasks = []
            for chain in split_chains(todo, k):
                start = start0 if lb.value is not None and chain[0] >= lb.value else None
                tasks.append(ChainTask(inst, elig, chain, start, light, solver, time_limit,
                                       threads, tmp))
            if k == 1:
                run_chain(tasks[0], notify=done)
            else:
                _run_parallel(tasks, done)
        bar.close()
        bar = None

        monotone_repair(rows, inst, elig, tmp)
        frontier = frontier_frame(rows)
        exact = lb.exact
        mark = lb.value if exact else first_full_mandatory(frontier)
        top_row = frontier.iloc[-1]
        summary = {
            "instance": inst.name, "instance_path": str(inst.path),
            "points": len(frontier),
            "points_with_plan": int(frontier["status"].isin(["optimal", "feasible"]).sum()),
            "how": frontier["how"].value_counts().to_dict(),
            "least_budget_all_mandatory": {**lb.as_dict(), "marked": mark,
                                           "marked_is": "least budget (computed)" if exact
                                           else "first swept budget serving every mandatory "
                                                "demand"},
            "largest_budget_plan_cost": (float(top_row["cost"]) if pd.notna(top_row["cost"])
                                         else None),
            "jobs": jobs, "threads_total": cores,
            "seconds_wall": round(time.perf_counter() - t_start, 3),
            "seconds_points_sum": round(float(frontier["seconds"].sum()), 3),
        }
        write_frontier_csv(frontier, tmp / "frontier.csv")
        (tmp / "frontier_summary.json").write_text(json.dumps(summary, indent=2, default=str),
                                                   encoding="utf-8")
        plots.plot_frontier(frontier, tmp / "frontier.png", least_budget=mark,
                            least_exact=exact)
        swap_in(tmp, out)
    except BaseException:
        if bar is not None:
            bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print_frontier(frontier)
    if mark is not None:
        click.echo(("least budget serving every mandatory demand: " if exact else
                    "first swept budget serving every mandatory demand: ") + f"{mark:,.2f}")
    click.echo(f"wrote {out} ({len(frontier)} points in {summary['seconds_wall']:.1f} s)")
    return 0 if summary["points_with_plan"] else 1


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="point", desc="sweep", dynamic_ncols=True,
                smoothing=0.1)


def _run_parallel(tasks: list[ChainTask], done: Callable[[dict], None]) -> None:
    """Run the chains in a process pool (spawned: no solver state is forked), reporting each
    finished point as it arrives."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    total = sum(len(t.budgets) for t in tasks)
    with cf.ProcessPoolExecutor(max_workers=len(tasks), mp_context=ctx,
                                initializer=_init_worker, initargs=(q,)) as pool:
        futures = [pool.submit(run_chain, t) for t in tasks]
        try:
            seen = 0
            while seen < total:
                try:
                    done(q.get(timeout=0.2))
                    seen += 1
                    continue
                except queue_mod.Empty:
                    pass
                for f in futures:
                    if f.done() and f.exception() is not None:
                        raise f.exception()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
