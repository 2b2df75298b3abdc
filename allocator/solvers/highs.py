"""HiGHS backend: the LP-guided, exact level solve on top of solvers/highs_core.py."""

from __future__ import annotations

import time

import numpy as np

from allocator.model.linear import LinearModel
from allocator.solvers import highs_child
from allocator.solvers.base import SolveResult, Status, relative_gap, settle_status
from allocator.solvers.highs_child import relax_guarded, run_guarded
from allocator.solvers.highs_core import (
    INTERRUPT_GRACE,
    HighsModel,
    highs_version,
    highspy,
)
from allocator.solvers.highs_search import SEARCH_SHARE, district_search, too_wide

#: share of a level's time for the sub-MIP around the LP support (and the start, if any)
SUB_MIP_SHARE = 0.6
SUB_MIP_SHARE_WITH_START = 0.5
#: ... and where the district search follows it, which finds more per second there
#: (docs/tuning-log.md, "sub-MIP cap")
SUB_MIP_SHARE_BEFORE_SEARCH = 0.15
#: a neighbourhood that holds no plan is widened by as many columns as it frees already,
#: those of smallest |reduced cost| first, this many times at most (docs/tuning-log.md,
#: "Widening the neighbourhood")
WIDEN_ROUNDS = 4
#: share of a held level's time (one after a hold row, with a start) for a RINS sub-MIP
#: first: the integer columns where the LP point and the start agree fixed at the start.
#: hidden-10k-s301's quality level: 9.4e-3 -> 8.2e-4 at 60 s, where the support
#: neighbourhood found nothing and HiGHS's own MIP spent 17 s in root cuts first; on a
#: first level it changed the coverage plan and lost that; below GUARD_MIN_COLUMNS it made
#: a 1,000-enterprise sweep 21 % slower for the same values; large models run it in the
#: killable child (`rins`; docs/tuning-log.md, "RINS at held levels only")
RINS_SHARE = 0.25


def basis_from_codes(cols: np.ndarray, rows: np.ndarray):
    """A HiGHS basis from column and row status codes (a child's LP basis)."""
    basis = highspy.HighsBasis()
    status = highspy.HighsBasisStatus
    basis.col_status = [status(int(v)) for v in cols]
    basis.row_status = [status(int(v)) for v in rows]
    basis.valid = True
    return basis


class HighsSession(HighsModel):
    """A model in HiGHS, solved level after level by the LP-guided MIP solve."""

    def __init__(self, model: LinearModel, threads: int, seed: int, log: bool = False,
                 lp_guided: bool = True):
        super().__init__(model, threads, seed, log)
        self.lp_guided = lp_guided

    def meets_bound(self, best: np.ndarray | None, best_obj: float | None, upper: float,
                     mip_gap: float, t0: float) -> SolveResult | None:
        """An optimal result when the incumbent already meets the LP bound (rounded where
        the objective is integral): nothing is left to search. Else None."""
        if best_obj is None:
            return None
        proven = self.integral_bound(upper)
        gap = relative_gap(best_obj, proven)
        if gap is None or gap > mip_gap:
            return None
        return SolveResult(Status.OPTIMAL, best, best_obj, proven, gap,
                           time.perf_counter() - t0, "optimal (incumbent meets the LP bound)")

    def at_target(self, best: np.ndarray | None, best_obj: float | None, upper: float,
                  t0: float) -> SolveResult | None:
        """A feasible result with the LP bound when the incumbent reaches the session's
        target (its caller knows a bound that settles the level there). Else None."""
        if best is None or not self.reached_target(best_obj):
            return None
        proven = self.integral_bound(upper)
        return SolveResult(Status.FEASIBLE, best, best_obj, proven,
                           relative_gap(best_obj, proven), time.perf_counter() - t0,
                           "target reached")

    def group_count(self) -> int:
        """How many neighbourhood groups (districts) the model's columns fall in."""
        if self.groups is None:
            return 0
        return len(np.unique(self.groups[self.groups >= 0]))

    def relaxation(self, time_limit: float) -> tuple[float, np.ndarray, np.ndarray] | None:
        """LP optimum value, point and reduced costs; None if the LP did not solve."""
        self.set_integrality(False)
        try:
            res, dual = self.solve_lp(time_limit)
        finally:
            self.set_integrality(True)
        if res.status is not Status.OPTIMAL or res.objective is None or res.x is None or \
                dual is None:
            return None
        return res.objective, res.x, dual

    def solve_lp(self, time_limit: float) -> tuple[SolveResult, np.ndarray | None]:
        """The current model solved as an LP (integrality off): the result and, if solved,
        the reduced costs.

        It starts from HiGHS's own basis or else the last optimal basis of an LP with as many
        rows: a MIP run in between discards HiGHS's own, and a sweep point's LP then took
        3,600-4,600 simplex iterations from scratch instead of 200-400 (docs/tuning-log.md,
        "LP bases"). A large LP with neither runs in a child killed at the deadline
        (GUARD_LP_MIN_COLUMNS), whose basis comes back."""
        rows = self.row_count()
        own = self.h.getBasis().valid
        saved = None if own else self.bases.get(rows)
        if saved is not None:
            self.h.setBasis(saved)  # a basis HiGHS cannot use is refused, not fatal
        elif not own and self.n >= highs_child.GUARD_LP_MIN_COLUMNS:
            res, dual, codes = relax_guarded(self, time_limit)
            if res.status is Status.OPTIMAL and codes is not None:
                self.bases[rows] = basis_from_codes(*codes)
                self.h.setBasis(self.bases[rows])  # the next LP here starts from it
            return res, dual
        res = self.run(time_limit, 0.0, None)
        if res.status is not Status.OPTIMAL or res.x is None:
            return res, None
        self.bases[rows] = self.h.getBasis()
        return res, np.array(self.h.getSolution().col_dual)

    def rins(self, x_lp: np.ndarray, start: np.ndarray, share: float, time_limit: float,
             t0: float, mip_gap: float) -> SolveResult | None:
        """The MIP with every integer column where the LP point and the start agree fixed
        at the start's value (RINS), from the start, given `share` of the level's time
        left; None where they agree everywhere."""
        start = np.asarray(start, dtype=float)
        agree = self.integer & (np.abs(x_lp - start) < 1e-6)
        if not (self.integer & ~agree).any():
            return None
        lb, ub = self.lb.copy(), self.ub.copy()
        lb[agree] = ub[agree] = np.round(start[agree])
        self.set_bounds(lb, ub)
        left = time_limit - (time.perf_counter() - t0)
        # _solve calls it on large models only, so it runs in a child killed at the deadline:
        # a 400-enterprise city's RINS run, in-process, sat 5 minutes and more in a RENS
        # sub-MIP's presolve (strengthenInequalities) nested in a root-reduced-cost sub-MIP,
        # looking at no clock; without those sub-MIPs hidden-10k-s301's RINS found nothing
        try:
            return run_guarded(self, max(share * left, 0.05), mip_gap, start, by_size=True)
        finally:
            self.set_bounds(self.lb, self.ub)

    def sub_mip(self, stuck: np.ndarray, dual: np.ndarray, share: float, time_limit: float,
                t0: float, mip_gap: float, start: np.ndarray | None) -> SolveResult:
        """The MIP over the neighbourhood (the `stuck` columns held at their lower bound),
        given `share` of the level's time left. A neighbourhood proven to hold no plan (the
        LP support of a least-budget solve: too few agencies for a district's minimum) is
        widened, the stuck columns of smallest |reduced cost| first, each round freeing as
        many more as are free, and solved again (WIDEN_ROUNDS)."""
        stuck = stuck.copy()
        order = np.flatnonzero(stuck)
        order = order[np.argsort(np.abs(dual[order]), kind="stable")]
        taken = 0
        for _ in range(WIDEN_ROUNDS + 1):
            support_ub = self.ub.copy()
            support_ub[stuck] = self.lb[stuck]
            self.set_bounds(self.lb, support_ub)
            left = time_limit - (time.perf_counter() - t0)
            try:
                # guarded like the full MIP: HiGHS overran a 36 s limit by 100 s in here
                sub = run_guarded(self, max(share * left, 0.05), mip_gap, start)
            finally:
                self.set_bounds(self.lb, self.ub)
            if sub.status is not Status.INFEASIBLE or taken >= len(order):
                return sub
            more = max(int(np.count_nonzero(self.integer & ~stuck)), 1)
            stuck[order[taken:taken + more]] = False
            taken += more
        return sub

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult:
        """LP-guided MIP solve of the current objective, exact within mip_gap.

        1. LP relaxation: bound U and reduced costs d. At a held level (a hold row added,
           a start given) the RINS sub-MIP (`rins`) improves the start first.
        2. A sub-MIP near the LP (columns at 0 in the LP with a non-zero reduced cost stay 0)
           gives an incumbent L fast; the better of it and `start` is kept (a neighbourhood
           without a plan is widened: sub_mip). Where step 3
           follows, it gets less of the level's time (SUB_MIP_SHARE_BEFORE_SEARCH).
        3. On a held level of a model with districts, the district search (search_by_group)
           improves L one district at a time, where HiGHS's own search stalls.
        4. Reduced-cost fixing: a column whose |d_j| exceeds U - L cannot leave its LP bound in
           any plan at least as good as L, so it is fixed there. This is exact, not a heuristic.
        5. The full MIP on what is left, started from L, branching on pseudocosts
           (PSCOST_MIN_RELIABLE_FULL). Bounds are restored afterwards.
        """
        t0 = time.perf_counter()
        # the interrupt callback stops whatever HiGHS is doing a little after this
        self.deadline = t0 + time_limit + INTERRUPT_GRACE
        try:
            return self._solve(t0, time_limit, mip_gap, start)
        finally:
            self.deadline = float("inf")

    def _solve(self, t0: float, time_limit: float, mip_gap: float,
               start: np.ndarray | None) -> SolveResult:
        if not self.integer.any():
            return self.solve_lp(time_limit)[0]
        if not self.lp_guided:
            return self.run(time_limit, mip_gap, start, full=True)
        relax = self.relaxation(time_limit)
        if relax is None:  # infeasible LP or trouble: let the plain MIP say what it is
            left = time_limit - (time.perf_counter() - t0)
            return self.run(max(left, 0.05), mip_gap, start, full=True)
        upper, x_lp, dual = relax
        sign = 1.0 if self.sense == "max" else -1.0
        best, best_obj = None, None
        if start is not None:
            best, best_obj = start, float(self.costs @ start)
            # a held level of a large model: RINS first (RINS_SHARE); on smaller ones it cost
            # time the level then proved without it (hidden-1000-s1's full sweep: 357 s
            # against 296 s, the same values)
            if self.row_count() > self.model_rows and \
                    self.n >= highs_child.GUARD_MIN_COLUMNS:
                rins = self.rins(x_lp, start, RINS_SHARE, time_limit, t0, mip_gap)
                if rins is not None and rins.objective is not None and rins.x is not None \
                        and sign * (rins.objective - best_obj) > 0:
                    best, best_obj = rins.x, rins.objective
                    start = best  # the steps below search around the better plan
                done = self.meets_bound(best, best_obj, upper, mip_gap, t0) or \
                    self.at_target(best, best_obj, upper, t0)
                if done is not None:
                    return done
        # the neighbourhood: columns at 0 in the LP with a non-zero reduced cost stay at 0;
        # zero-reduced-cost columns (alternative agencies as good as the LP's) stay free
        stuck = self.integer & (np.abs(x_lp - self.lb) < 1e-9) & (np.abs(dual) > 1e-9)
        if start is not None:
            # the start's own columns stay free too, so the neighbourhood always holds the
            # start (at a held level the LP support alone is often infeasible: k_city's
            # quality level found nothing there and kept the coverage plan, 0.35 % short)
            stuck &= ~(np.asarray(start) > self.lb + 1e-9)
        # a held level (one with a start) of a model with districts: the district search
        # follows the sub-MIP
        by_district = start is not None and self.group_count() >= 2
        # with a start (a held level) the neighbourhood is where the value is found:
        # k_city's quality level gains 0.25 % there and nothing in the full MIP after it
        share = (SUB_MIP_SHARE_BEFORE_SEARCH if by_district else
                 SUB_MIP_SHARE_WITH_START if start is not None else SUB_MIP_SHARE)
        sub = self.sub_mip(stuck, dual, share, time_limit, t0, mip_gap, start)
        if sub.objective is not None and (best_obj is None or
                                          sign * (sub.objective - best_obj) > 0):
            best, best_obj = sub.x, sub.objective
        done = self.meets_bound(best, best_obj, upper, mip_gap, t0) or \
            self.at_target(best, best_obj, upper, t0)
        if done is not None:
            return done
        if by_district and best is not None and best_obj is not None and \
                not too_wide(self, best, x_lp, dual):
            # a held level: improve the plan district by district before the full MIP,
            # whose root heuristics stall on large cities (SEARCH_* above)
            left = time_limit - (time.perf_counter() - t0)
            found, found_obj = district_search(self, best, best_obj, x_lp, dual,
                                               SEARCH_SHARE * left, mip_gap)
            if sign * (found_obj - best_obj) > 0:
                best, best_obj = found, found_obj
            done = self.meets_bound(best, best_obj, upper, mip_gap, t0) or \
                self.at_target(best, best_obj, upper, t0)
            if done is not None:
                return done
        lb, ub = self.lb.copy(), self.ub.copy()
        if best_obj is not None:
            room = sign * (upper - best_obj) + 1e-6 * max(1.0, abs(upper))
            at_lb = np.abs(x_lp - self.lb) < 1e-9
            at_ub = np.abs(x_lp - self.ub) < 1e-9
            fix = self.integer & (np.abs(dual) > room) & (at_lb | at_ub)
            ub[fix & at_lb] = self.lb[fix & at_lb]
            lb[fix & at_ub] = self.ub[fix & at_ub]
            self.fixed_last = int(fix.sum())
        self.set_bounds(lb, ub)
        left = time_limit - (time.perf_counter() - t0)
        try:
            res = run_guarded(self, max(left, 0.05), mip_gap, best, full=True)
        finally:
            self.set_bounds(self.lb, self.ub)
        res.seconds = time.perf_counter() - t0
        if not res.status.has_solution and best is not None:
            res = SolveResult(Status.FEASIBLE, best, best_obj, None, None, res.seconds,
                              res.solver_status)
        if res.objective is not None:
            # the LP bound holds for the whole problem; the fixed problem's bound only for
            # plans at least as good as L, so the global bound is the weaker of the two
            bound = upper if res.bound is None else (
                min(res.bound, upper) if sign > 0 else max(res.bound, upper))
            if best_obj is not None and res.bound is not None:
                bound = max(bound, best_obj) if sign > 0 else min(bound, best_obj)
            res.bound = self.integral_bound(bound)  # no plan lies between grid steps
            res.gap = relative_gap(res.objective, res.bound)
            res.status = settle_status(res.status, res.gap, mip_gap)
        return res


class HighsBackend:
    """HiGHS (highspy): LP-based branch and cut, multithreaded, accepts a start."""

    name = "highs"
    accepts_start = True
    direct_share_rows = True
    integer_columns_only = False
    province_scale = True
    steerable = True
    class_model = True
    parametric_rows = True
    purpose = "HiGHS: the fastest here at every size; the only one for province scale"

    def available(self) -> bool:
        return highspy is not None

    def version(self) -> str:
        if highspy is None:
            return ""
        return highs_version()

    def open(self, model: LinearModel, threads: int, seed: int) -> HighsSession:
        return HighsSession(model, threads, seed)
