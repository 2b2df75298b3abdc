"""The lexicographic solve: each level optimised with the earlier ones held at their values.

A level is held by a row `objective >= value - tol` (max) or `<= value + tol` (min) where
value is the level's objective recomputed from the rounded incumbent, so the row never cuts
off the incumbent nor any better plan: it cannot cut off the level's optimum.
The time limit covers all levels; a level may use all of it but the floors kept for the
levels after it (level_budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from allocator.model.build import AllocationModel, Level
from allocator.solvers import Backend, Status
from allocator.solvers.base import (
    Session,
    SolveResult,
    SteeredSession,
    objective_grid,
    relative_gap,
    settle_status,
)

#: each level still to come is kept this share of the time limit (at least
#: LATER_LEVEL_FLOOR_MIN seconds) and the level being solved may use all the rest, so a level
#: that is not settled keeps the time, coverage before quality before cost, and one settled
#: early hands what it did not use to the next (docs/tuning-log.md, "Time per level")
LATER_LEVEL_FLOOR = 0.1
LATER_LEVEL_FLOOR_MIN = 1.0
#: with a tie-break, the next level's objective is added to the first one's at a weight that
#: keeps its whole range below this share of one step of the first level's grid
TIE_BREAK_SHARE = 0.9
#: with a tie-break and `plain_share`, the first level is searched this share of its time on
#: its own objective (which proved k_city's 5,776 in 11 s where the tie-broken search took 47 s)
#: before the tie-break (which found hidden-1500-s3's 7,875 in 17 s where the plain search
#: reached 7,874 in 48 s) searches from its plan (docs/tuning-log.md, "The class model below
#: province scale")
FIRST_LEVEL_PLAIN_SHARE = 0.3


def level_budget(left: float, time_limit: float, later: int) -> float:
    """Seconds for the level being solved when `left` remain and `later` levels follow: all
    but the later levels' floors, or an even split when not even those are left."""
    if later <= 0:
        return left
    floor = max(LATER_LEVEL_FLOOR * time_limit, LATER_LEVEL_FLOOR_MIN)
    return max(left - later * floor, left / (later + 1))


@dataclass
class LevelReport:
    """What one level achieved: its status, proven bound and value of the plan it kept."""

    name: str
    sense: str
    status: Status
    value: float | None
    bound: float | None
    gap: float | None
    seconds: float
    solver_status: str = ""
    optimised: bool = True  # False: left out by solver.levels, reported for the plan only

    def scaled(self, unit: float) -> LevelReport:
        """The same report with value and bound in reporting units (currency for cost)."""
        if unit == 1.0:
            return self
        return LevelReport(self.name, self.sense, self.status,
                           None if self.value is None else self.value * unit,
                           None if self.bound is None else self.bound * unit,
                           self.gap, self.seconds, self.solver_status, self.optimised)

    def as_dict(self) -> dict:
        return {"name": self.name, "sense": self.sense, "status": self.status.value,
                "value": self.value, "bound": self.bound, "gap": self.gap,
                "seconds": round(self.seconds, 3), "solver_status": self.solver_status,
                "optimised": self.optimised}


@dataclass
class LexResult:
    """Outcome of all levels: overall status, the kept plan (column values) and per level."""

    status: Status
    x: np.ndarray | None
    levels: list[LevelReport] = field(default_factory=list)
    seconds: float = 0.0


def hold_tolerance(value: float) -> float:
    """Slack given to a held level: far below any real improvement, above solver noise."""
    return 1e-6 * max(1.0, abs(value))


def round_plan(model: AllocationModel, x: np.ndarray) -> np.ndarray:
    """Round integer columns of a solver point (solvers return 0.9999999 for 1)."""
    out = np.asarray(x, dtype=float).copy()
    ints = model.lp.integer
    out[ints] = np.round(out[ints])
    return out


def solve_lexicographic(model: AllocationModel, backend: Backend, time_limit: float,
                        mip_gap: float, threads: int, seed: int,
                        progress: Callable[[str], None] | None = None,
                        start: np.ndarray | None = None,
                        levels: tuple[str, ...] | None = None,
                        session: Session | None = None,
                        known_bounds: dict[str, float] | None = None,
                        tie_break: bool = False,
                        effort: float | None = None,
                        plain_share: float = 0.0,
                        stop_at: dict[str, float] | None = None) -> LexResult:
    """Solve the levels in order; stop at the first level without a solution.

    `start` is a full column vector of a plan believed feasible (e.g. the plan at a smaller
    budget); it is offered to the first level as a warm start where the backend accepts one.
    `levels` (policy solver.levels) names the levels to optimise; the others are only
    reported for the final plan, and the run is then `feasible`, not lexicographically
    optimal. `session`: the model already open in the backend (a sweep's parametric session);
    the held rows this solve adds stay in it (the caller deletes them).

    `known_bounds` (by level name, in the reports' units): bounds proven elsewhere (e.g. over
    more columns than this model has); a level stops once its plan is within mip_gap of one
    (steerable backends) and reports the better bound. `tie_break`: the first level asked
    for is searched with the next level's objective added at a weight too small to outweigh
    one step of its own (tie_break_weight, scaled by level_upper), so among plans of equal
    value it keeps the better next level, and on a steerable backend with `effort` of the
    search given to primal heuristics.
    `plain_share`: the share of that level's time searched on its own objective first (the
    plain search proves; the tie-break, from its plan and bound, finds plans), see
    FIRST_LEVEL_PLAIN_SHARE.
    `stop_at` (by level name, in the reports' units): a value at which a level's search
    stops (steerable backends) although its bound is not reached, e.g. a sweep point at the
    served weight a larger budget's whole search found; the level is reported with its gap.
    """
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    if session is None:
        session = backend.open(model.lp, threads, seed)
    reports: list[LevelReport] = []
    plan: np.ndarray | None = None
    overall = Status.OPTIMAL
    skipped: list[int] = []
    left_out: list[int] = []
    wanted = [k for k, lv in enumerate(model.levels) if levels is None or lv.name in levels]
    last = wanted[-1] if wanted else len(model.levels) - 1
    for k, level in enumerate(model.levels):
        if k not in wanted:
            left_out.append(k)  # not asked for: reported for the final plan, not optimised
            say(f"level {k + 1} ({level.name}): not optimised (solver.levels)")
            continue
        if level.constant and k < last:
            skipped.append(k)  # its value is fixed by the rules; reported from the final plan
            say(f"level {k + 1} ({level.name}): the same in every plan, nothing to optimise")
            continue
        left = time_limit - (time.perf_counter() - t_start)
        later = sum(1 for j in wanted if j > k and not (model.levels[j].constant and j < last))
        budget = max(level_budget(left, time_limit, later), 0.05)
        say(f"level {k + 1} ({level.name}): solving, up to {budget:.1f} s")
        # the tie-break is the model's next level, asked for or not (only an order among
        # plans of equal value at this one)
        nxt = model.levels[k + 1] if k + 1 < len(model.levels) else None
        weight = (tie_break_weight(model, level, nxt, level_upper(model, nxt))
                  if tie_break and nxt is not None and k == wanted[0] else 0.0)
        coefs = level.coefs if nxt is None or weight == 0.0 else level.coefs + weight * nxt.coefs
        known = (known_bounds or {}).get(level.name)
        known = None if known is None else known / level.unit  # reported units -> model's
        hint = plan if plan is not None else start
        stop = (stop_at or {}).get(level.name)
        search = _LevelSearch(model, level, session, backend, mip_gap,
                              None if stop is None else stop / level.unit)
        began = time.perf_counter()
        if weight and plain_share > 0:
            # the level's own objective first proves what it can; the tie-break then searches
            # from its plan and stops at its bound (FIRST_LEVEL_PLAIN_SHARE)
            res = search.run(level.coefs, 0.0, budget * plain_share, hint, known, None)
            if not search.settled(res):
                known, hint = res.bound, search.plan_or(res, hint)
                rest = max(budget - (time.perf_counter() - began), 0.05)
                res = search.better(res, search.run(coefs, weight, rest, hint, known, effort))
        else:
            res = search.run(coefs, weight, budget, hint, known, effort if weight else None)
        left = time_limit - (time.perf_counter() - t_start)
        if plan is None and res.status is Status.NO_SOLUTION and left > 1.0:
            # no plan yet: the later levels need one first: this level gets all that is left
            say(f"level {k + 1} ({level.name}): no plan yet, continuing for {left:.1f} s")
            res = search.run(coefs, weight, left, hint, known, effort if weight else None)
        res.seconds = time.perf_counter() - began
        if not res.status.has_solution or res.x is None:
            if plan is None:  # nothing at all: infeasible, out of time, or an error
                reports.append(LevelReport(level.name, level.sense, res.status, None, res.bound,
                                           None, res.seconds, res.solver_status))
                reports = [r.scaled(lv.unit) for r, lv in zip(reports, model.levels,
                                                              strict=False)]
                return LexResult(res.status, None, reports, time.perf_counter() - t_start)
            # a later level found nothing better in time: keep the earlier plan, unproven
            value = float(level.coefs @ plan)
            reports.append(LevelReport(level.name, level.sense, Status.FEASIBLE, value, res.bound,
                                       None, res.seconds, res.solver_status))
            overall = Status.FEASIBLE
        else:
            candidate = round_plan(model, res.x)
            if plan is not None and _worse(level, candidate, plan):
                candidate = plan  # never report a level value worse than one already held
            plan = candidate
            value = float(level.coefs @ plan)
            bound = res.bound if res.bound is not None else None
            if bound is not None:  # the proven bound can never be on the wrong side of a plan
                bound = max(bound, value) if level.sense == "max" else min(bound, value)
            gap = relative_gap(value, bound)
            status = settle_status(res.status, gap, mip_gap)
            if status is not Status.OPTIMAL:
                overall = Status.FEASIBLE
            reports.append(LevelReport(level.name, level.sense, status, value, bound, gap,
                                       res.seconds, res.solver_status))
        say(f"level {k + 1} ({level.name}): {reports[-1].status.value}, value "
            f"{value * level.unit:,.2f}")
        if k < last:
            nz = np.flatnonzero(level.coefs)
            value = float(level.coefs @ plan)
            tol = hold_tolerance(value)
            lo, hi = (value - tol, np.inf) if level.sense == "max" else (-np.inf, value + tol)
            # the level's proven bound caps every plan's value, so it may cap the row too:
            # the LP of the next level can then no longer buy fractional extra coverage
            bound = reports[-1].bound
            if bound is not None and np.isfinite(bound):
                if level.sense == "max":
                    hi = max(bound, value) + tol
                else:
                    lo = min(bound, value) - tol
            session.add_row(f"hold_{level.name}", nz, level.coefs[nz], lo, hi)
    for k in sorted(skipped + left_out):
        level = model.levels[k]
        value = float(level.coefs @ plan)
        if k in skipped:
            reports.insert(k, LevelReport(level.name, level.sense, Status(overall), value,
                                          value, 0.0, 0.0, "constant over all plans"))
        else:
            reports.insert(k, LevelReport(level.name, level.sense, Status.FEASIBLE, value, None,
                                          None, 0.0, "not optimised (solver.levels)", False))
    if left_out and overall is Status.OPTIMAL:
        overall = Status.FEASIBLE  # optimal for the levels asked, not lexicographically
    reports = [r.scaled(lv.unit) for r, lv in zip(reports, model.levels, strict=False)]
    return LexResult(overall, plan, reports, time.perf_counter() - t_start)


class _LevelSearch:
    """The solver runs of one level: each sets the objective, the target of a known bound
    and the heuristic effort (steerable backends), and reports the level's proven bound."""

    def __init__(self, model: AllocationModel, level, session: Session, backend: Backend,
                 mip_gap: float, stop: float | None = None):
        self.model, self.level, self.session, self.mip_gap = model, level, session, mip_gap
        self.stop = stop  # a value that ends the search (model units), bound or not
        self.accepts_start = backend.accepts_start
        self.steered = cast(SteeredSession, session) if backend.steerable else None

    def run(self, coefs: np.ndarray, weight: float, seconds: float, hint: np.ndarray | None,
            known: float | None, effort: float | None) -> SolveResult:
        self.session.set_objective(coefs, self.level.sense)
        steered = self.steered
        target = level_target(self.model, self.level, known, self.mip_gap)
        if steered is not None:
            steered.target = _nearer(self.level, target, self.stop)
            steered.effort = effort
        # a level with a known bound's target runs until it reaches it: the model's own gap
        # is not the level's (a model over fewer columns is 'optimal' below that target)
        gap = 0.0 if steered is not None and target is not None else self.mip_gap
        try:
            res = self.session.solve(seconds, gap, hint if self.accepts_start else None)
        finally:
            if steered is not None:
                steered.target = steered.effort = None
        res.bound = level_bound(self.model, self.level, res.bound, weight, known)
        return res

    def value(self, res: SolveResult) -> float | None:
        if not res.status.has_solution or res.x is None:
            return None
        return float(self.level.coefs @ round_plan(self.model, res.x))

    def settled(self, res: SolveResult) -> bool:
        """Whether the run's plan is within the gap of its bound at this level."""
        value = self.value(res)
        if value is not None and self.stop is not None and (
                value >= self.stop if self.level.sense == "max" else value <= self.stop):
            return True  # reached the value it was to stop at
        return value is not None and settle_status(
            res.status, relative_gap(value, res.bound), self.mip_gap) is Status.OPTIMAL

    def plan_or(self, res: SolveResult, hint: np.ndarray | None) -> np.ndarray | None:
        if self.value(res) is None or res.x is None:
            return hint
        return round_plan(self.model, res.x)

    def better(self, first: SolveResult, then: SolveResult) -> SolveResult:
        """The later run, with the earlier run's plan where the later one has none or a
        worse one at this level, and the better of the two bounds."""
        a, b = self.value(first), self.value(then)
        out = then if a is None or (b is not None and b >= a if self.level.sense == "max"
                                    else b is not None and b <= a) else first
        bounds = [x for x in (first.bound, then.bound) if x is not None]
        if bounds:
            out.bound = min(bounds) if self.level.sense == "max" else max(bounds)
        return out


def level_upper(model: AllocationModel, level: Level) -> float | None:
    """An upper bound on a level's objective over every plan (a tie-break's scale): each
    demand (each member of a class) served once at its best coefficient. None when the level
    has terms off the assignment columns or negative ones."""
    on_x = np.zeros(model.lp.n_vars, dtype=bool)
    on_x[model.x] = True
    coefs = level.coefs[model.x]
    if np.any(level.coefs[~on_x] != 0) or np.any(coefs < 0) or not model.served.size:
        return None
    best = np.zeros(len(model.served))
    np.maximum.at(best, model.demand_of_triple, coefs)
    return float(best @ model.demand_members)


def tie_break_weight(model: AllocationModel, level, nxt, next_upper: float | None) -> float:
    """The weight of the next level's objective in the first level's search: the next
    level's whole range (0 to next_upper) stays below TIE_BREAK_SHARE of one step of the
    first level's objective grid, so a plan one step better at the first level is always
    better in the sum, and the sum's bound stays a bound of the first level. 0.0 (no
    tie-break) unless both levels maximise, the next one's terms are never negative, and the
    first level's objective has a grid."""
    if (next_upper is None or nxt is None or not next_upper > 0 or level.sense != "max"
            or nxt.sense != "max" or np.any(nxt.coefs < 0)
            or np.any(model.lp.lb[nxt.coefs != 0] < 0)):
        return 0.0
    grid = objective_grid(level.coefs, model.lp.integer)
    return 0.0 if grid is None else TIE_BREAK_SHARE * grid / next_upper


def _nearer(level, a: float | None, b: float | None) -> float | None:
    """Of two targets of a level, the one reached first (the lower when maximising)."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if level.sense == "max" else max(a, b)


def level_target(model: AllocationModel, level, known: float | None,
                 mip_gap: float) -> float | None:
    """The objective at which a plan is within mip_gap of the `known` bound and the level is
    settled (on the objective's grid, where there is one, so that a tie-break's share never
    counts towards it); None without a known bound."""
    if known is None or not np.isfinite(known):
        return None
    grid = objective_grid(level.coefs, model.lp.integer)
    known = bound_on_grid(level, grid, known)
    tol = mip_gap * max(1.0, abs(known))
    target = known - tol if level.sense == "max" else known + tol
    if grid is not None:
        steps = target / grid
        target = (np.ceil(steps - 1e-9) if level.sense == "max"
                  else np.floor(steps + 1e-9)) * grid
    return float(target)


def bound_on_grid(level, grid: float | None, bound: float) -> float:
    """A bound of a level moved to the objective's grid, where there is one (down when
    maximising, up when minimising): no plan lies between grid steps."""
    if grid is None:
        return bound
    steps = bound / grid
    return float((np.floor(steps + 1e-6) if level.sense == "max"
                  else np.ceil(steps - 1e-6)) * grid)


def level_bound(model: AllocationModel, level, bound: float | None, weight: float,
                known: float | None) -> float | None:
    """A level's proven bound: the solver's (with a tie-break, the sum's bound, which bounds
    the level too, rounded down to its grid), or the known bound where that is better (on
    the grid too where the level has one: no plan lies between its steps)."""
    if bound is not None and weight:
        grid = objective_grid(level.coefs, model.lp.integer)
        assert grid is not None  # tie_break_weight gives a weight only with a grid
        bound = float(np.floor(bound / grid + 1e-6) * grid)
    if known is not None and np.isfinite(known):
        known = bound_on_grid(level, objective_grid(level.coefs, model.lp.integer), known)
    if known is None:
        return bound
    if bound is None:
        return known
    return min(bound, known) if level.sense == "max" else max(bound, known)


def _worse(level, candidate: np.ndarray, plan: np.ndarray) -> bool:
    a, b = float(level.coefs @ candidate), float(level.coefs @ plan)
    return a < b - 1e-9 * max(1, abs(b)) if level.sense == "max" else a > b + 1e-9 * max(1, abs(b))
