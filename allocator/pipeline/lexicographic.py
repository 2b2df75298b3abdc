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

import numpy as np

from allocator.model.build import AllocationModel
from allocator.solvers import Backend, Status
from allocator.solvers.base import Session, relative_gap, settle_status

#: each level still to come is kept this share of the time limit (at least
#: LATER_LEVEL_FLOOR_MIN seconds) and the level being solved may use all the rest, so a level
#: that is not settled keeps the time, coverage before quality before cost, and one settled
#: early hands what it did not use to the next (docs/tuning-log.md, "Time per level")
LATER_LEVEL_FLOOR = 0.1
LATER_LEVEL_FLOOR_MIN = 1.0


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
                        session: Session | None = None) -> LexResult:
    """Solve the levels in order; stop at the first level without a solution.

    `start` is a full column vector of a plan believed feasible (e.g. the plan at a smaller
    budget); it is offered to the first level as a warm start where the backend accepts one.
    `levels` (policy solver.levels) names the levels to optimise; the others are only
    reported for the final plan, and the run is then `feasible`, not lexicographically
    optimal. `session`: the model already open in the backend (a sweep's parametric session);
    the held rows this solve adds stay in it (the caller deletes them).
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
        session.set_objective(level.coefs, level.sense)
        hint = plan if plan is not None else start
        res = session.solve(budget, mip_gap, hint if backend.accepts_start else None)
        left = time_limit - (time.perf_counter() - t_start)
        if plan is None and res.status is Status.NO_SOLUTION and left > 1.0:
            # no plan yet: the later levels need one first, so give this level all that is left
            say(f"level {k + 1} ({level.name}): no plan yet, continuing for {left:.1f} s")
            res = session.solve(left, mip_gap, hint if backend.accepts_start else None)
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


def _worse(level, candidate: np.ndarray, plan: np.ndarray) -> bool:
    a, b = float(level.coefs @ candidate), float(level.coefs @ plan)
    return a < b - 1e-9 * max(1, abs(b)) if level.sense == "max" else a > b + 1e-9 * max(1, abs(b))
