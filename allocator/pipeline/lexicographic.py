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

from allocator.model.build import AllocationModel
from allocator.solvers import Backend, Status
from allocator.solvers.base import (
    Session,
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
                        tie_break: float | None = None,
                        effort: float | None = None) -> LexResult:
    """Solve the levels in order; stop at the first level without a solution.

    `start` is a full column vector of a plan believed feasible (e.g. the plan at a smaller
    budget); it is offered to the first level as a warm start where the backend accepts one.
    `levels` (policy solver.levels) names the levels to optimise; the others are only
    reported for the final plan, and the run is then `feasible`, not lexicographically
    optimal. `session`: the model already open in the backend (a sweep's parametric session);
    the held rows this solve adds stay in it (the caller deletes them).

    `known_bounds` (by level name, in the reports' units): bounds proven elsewhere (e.g. over
    more columns than this model has); a level stops once its plan is within mip_gap of one
    (steerable backends) and reports the better bound. `tie_break`: an upper bound on the
    next level's objective over every plan; the first level asked for is then searched with
    that objective added at a weight too small to outweigh one step of its own (see
    tie_break_weight), so among plans of equal value it keeps the better next level, and on
    a steerable backend with `effort` of the search given to primal heuristics.
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
        weight = tie_break_weight(model, level, nxt, tie_break) if k == wanted[0] else 0.0
        coefs = level.coefs if nxt is None or weight == 0.0 else level.coefs + weight * nxt.coefs
        known = (known_bounds or {}).get(level.name)
        known = None if known is None else known / level.unit  # reported units -> model's
        session.set_objective(coefs, level.sense)
        steered = cast(SteeredSession, session) if backend.steerable else None
        if steered is not None:
            steered.target = level_target(model, level, known, mip_gap)
            steered.effort = effort if weight else None
        hint = plan if plan is not None else start
        # a level with a target runs until it reaches it: the model's own gap is not the
        # level's (a model over fewer columns is 'optimal' below the known bound's target)
        run_gap = 0.0 if steered is not None and steered.target is not None else mip_gap
        try:
            res = session.solve(budget, run_gap, hint if backend.accepts_start else None)
            left = time_limit - (time.perf_counter() - t_start)
            if plan is None and res.status is Status.NO_SOLUTION and left > 1.0:
                # no plan yet: the later levels need one first: this level gets all that is left
                say(f"level {k + 1} ({level.name}): no plan yet, continuing for {left:.1f} s")
                res = session.solve(left, run_gap, hint if backend.accepts_start else None)
        finally:
            if steered is not None:
                steered.target = steered.effort = None
        res.bound = level_bound(model, level, res.bound, weight, known)
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


def level_target(model: AllocationModel, level, known: float | None,
                 mip_gap: float) -> float | None:
    """The objective at which a plan is within mip_gap of the `known` bound and the level is
    settled (on the objective's grid, where there is one, so that a tie-break's share never
    counts towards it); None without a known bound."""
    if known is None or not np.isfinite(known):
        return None
    grid = objective_grid(level.coefs, model.lp.integer)
    if grid is not None:  # no plan lies between grid steps
        known = float((np.floor(known / grid + 1e-6) if level.sense == "max"
                       else np.ceil(known / grid - 1e-6)) * grid)
    tol = mip_gap * max(1.0, abs(known))
    target = known - tol if level.sense == "max" else known + tol
    if grid is not None:
        steps = target / grid
        target = (np.ceil(steps - 1e-9) if level.sense == "max"
                  else np.floor(steps + 1e-9)) * grid
    return float(target)


def level_bound(model: AllocationModel, level, bound: float | None, weight: float,
                known: float | None) -> float | None:
    """A level's proven bound: the solver's (with a tie-break, the sum's bound, which bounds
    the level too, rounded down to its grid), or the known bound where that is better."""
    if bound is not None and weight:
        grid = objective_grid(level.coefs, model.lp.integer)
        assert grid is not None  # tie_break_weight gives a weight only with a grid
        bound = float(np.floor(bound / grid + 1e-6) * grid)
    if known is None:
        return bound
    if bound is None:
        return known
    return min(bound, known) if level.sense == "max" else max(bound, known)


def _worse(level, candidate: np.ndarray, plan: np.ndarray) -> bool:
    a, b = float(level.coefs @ candidate), float(level.coefs @ plan)
    return a < b - 1e-9 * max(1, abs(b)) if level.sense == "max" else a > b + 1e-9 * max(1, abs(b))
