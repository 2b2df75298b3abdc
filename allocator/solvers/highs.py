"""HiGHS through highspy: the model passed as one column-wise sparse matrix, no per-row calls."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np

from allocator.solvers.base import SolveResult, Status, relative_gap
from allocator.model.linear import LinearModel

#: below this many columns a MIP runs in-process (a child costs ~1 s to start; small models
#: do not overrun their deadline by much)
GUARD_MIN_COLUMNS = 20_000
#: seconds a child may run past its time limit before it is killed
GUARD_GRACE = 2.0
#: share of a level's time for the sub-MIP around the LP support (and the start, if any)
SUB_MIP_SHARE = 0.3
SUB_MIP_SHARE_WITH_START = 0.5
#: ... and where the district search follows it: the search finds more per second there
#: (c99's quality level: the uncapped sub-MIP took 17 s for 363,051, the search after it
#: 26 s for +14; capped at 15 % it stops at 361,971 in 7 s and the search reaches 363,791)
SUB_MIP_SHARE_BEFORE_SEARCH = 0.15
#: seconds past a solve's time limit after which the interrupt callback stops HiGHS
INTERRUPT_GRACE = 0.5
#: HiGHS's parallel tree search (1.15: several search workers over the threads) for every MIP
#: run with two or more threads; measured on gapc-4 over three seeds: 7.4-7.9 s against
#: 9.4-9.9 s serial, gapd-1 proven in 35 s; but gapd-5 at 60 s ends at 6,253 / 6,262 against
#: 6,246 / 6,227 serial (benchmarks/README.md). LP runs keep HiGHS's own choice ("choose").
PARALLEL_MIP = True
#: HiGHS's mip_pscost_minreliable (strong-branching trials before a column's pseudocost is
#: trusted) for the full MIP of a level; sub-MIPs keep HiGHS's default. At 0 the full MIP
#: branches on pseudocosts from the start: gapc-6 proven at 6.4-9.2 s over seeds 0-5 against
#: 8.3-14.4 s (strong branching took 85,000 of its 133,000 LP iterations), gapd-5 at 60 s
#: 6,222 / 6,242 against 6,253 / 6,262. In the district search's sub-MIPs it slowed their
#: proofs (c15's quality 346,263.9 against 346,315.4), so they keep the default.
PSCOST_MIN_RELIABLE_FULL = 0
PSCOST_MIN_RELIABLE_DEFAULT = 8  # HiGHS 1.15's own
#: Neighbourhood search by district, on a held level (one with a start) of a model with two
#: or more districts. There HiGHS's own search stalls in its root rounding heuristics (5-30 s
#: a round on a 1,500-enterprise city's quality level) while a sub-MIP over the kernel (LP
#: support, the plan, zero reduced costs) plus one district's columns of smallest |reduced
#: cost| solves in seconds and improves the plan (benchmarks/README.md).
SEARCH_EXTRA = 600  # columns of one district added to the kernel
SEARCH_GAP = 0.0  # a sub-MIP's gap: each looks for its neighbourhood's best within its time
SEARCH_SUB_LIMIT = 2.0  # seconds for the first district sub-MIP
SEARCH_SUB_LIMIT_MAX = 8.0  # doubled after each sub-MIP that ends on its limit, up to this
SEARCH_SHARE = 0.85  # share of the level's time left after the first sub-MIP
SEARCH_MIN_RUN = 0.3  # a sub-MIP shorter than this is not started
#: largest power of ten tried when looking for the objective's grid (costs in 1e-6 units)
OBJECTIVE_GRID_MAX_POWER = 6

try:  # solver imports live in the backends only
    import highspy
except ImportError:  # pragma: no cover - depends on the machine
    highspy = None


class HighsSession:
    """A HiGHS instance holding the model; objectives and fixing rows change between levels."""

    def __init__(self, model: LinearModel, threads: int, seed: int, log: bool = False,
                 lp_guided: bool = True):
        h = _new_highs(threads, seed, log)
        lp = highspy.HighsLp()
        csc = model.matrix().tocsc()
        lp.num_col_ = model.n_vars
        lp.num_row_ = model.n_rows
        lp.col_cost_ = np.zeros(model.n_vars)
        lp.col_lower_ = model.lb
        lp.col_upper_ = model.ub
        lp.row_lower_ = np.where(np.isinf(model.row_lo), -highspy.kHighsInf, model.row_lo)
        lp.row_upper_ = np.where(np.isinf(model.row_hi), highspy.kHighsInf, model.row_hi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(float)
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                           highspy.HighsVarType.kContinuous for i in model.integer]
        h.passModel(lp)
        self._attach(h, model.lb, model.ub, model.integer, threads, seed, lp_guided,
                     model.column_groups)

    def _attach(self, h, lb: np.ndarray, ub: np.ndarray, integer: np.ndarray, threads: int,
                seed: int, lp_guided: bool, groups: np.ndarray | None = None) -> None:
        """Hold a HiGHS instance that already has the model, with the model's own bounds."""
        self.h = h
        self.n = len(lb)
        self.idx = np.arange(self.n, dtype=np.int32)
        self.lb, self.ub, self.integer = lb, ub, integer
        self.costs = np.zeros(self.n)
        self.sense = "min"
        self.lp_guided = lp_guided
        self.threads, self.seed = threads, seed
        self.fixed_last = 0
        self.groups = groups  # each column's district (LinearModel.column_groups) or None
        self.mip_active = bool(self.integer.any())
        # HiGHS checks its time_limit only now and then (root cuts, probing and heuristics can
        # run far past it, several times over on a loaded machine); an interrupt callback
        # holds the deadline we promise the user.
        self.deadline = float("inf")
        for hook in ("cbMipInterrupt", "cbSimplexInterrupt", "cbIpmInterrupt"):
            getattr(h, hook).subscribe(self._interrupt_if_late)

    @classmethod
    def from_payload(cls, payload: dict) -> HighsSession:
        """The session a child process solves in, rebuilt from the parent's current LP."""
        h = _new_highs(payload["threads"], payload["seed"], False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = payload["n_col"], payload["n_row"]
        lp.col_cost_, lp.col_lower_ = payload["cost"], payload["lb"]
        lp.col_upper_ = payload["ub"]
        lp.row_lower_, lp.row_upper_ = payload["rlo"], payload["rhi"]
        lp.a_matrix_.format_ = (highspy.MatrixFormat.kColwise if payload["colwise"]
                                else highspy.MatrixFormat.kRowwise)
        lp.a_matrix_.start_ = payload["start_"]
        lp.a_matrix_.index_ = payload["index"]
        lp.a_matrix_.value_ = payload["value"]
        lp.sense_ = (highspy.ObjSense.kMaximize if payload["sense_max"]
                     else highspy.ObjSense.kMinimize)
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                           highspy.HighsVarType.kContinuous for i in payload["integer"]]
        h.passModel(lp)
        session = cls.__new__(cls)
        session._attach(h, payload["lb"], payload["ub"], payload["integer"], payload["threads"],
                        payload["seed"], False)
        session.costs = np.asarray(payload["cost"], dtype=float)
        session.sense = "max" if payload["sense_max"] else "min"
        return session

    def _interrupt_if_late(self, event) -> None:
        # set the flag both ways: HiGHS keeps it between runs, so a run interrupted once
        # would otherwise stop every later run of this session at its first callback
        event.interrupt(time.perf_counter() > self.deadline)

    def set_objective(self, coefs: np.ndarray, sense: str) -> None:
        idx = np.arange(self.n, dtype=np.int32)
        self.costs = np.asarray(coefs, dtype=float)
        self.h.changeColsCost(self.n, idx, self.costs)
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense == "max"
                                    else highspy.ObjSense.kMinimize)
        self.sense = sense

    def add_row(self, name: str, cols: np.ndarray, vals: np.ndarray, lo: float,
                hi: float) -> None:
        inf = highspy.kHighsInf
        self.h.addRow(max(lo, -inf), min(hi, inf), len(cols), np.asarray(cols, dtype=np.int32),
                      np.asarray(vals, dtype=float))

    def _run(self, time_limit: float, mip_gap: float, start: np.ndarray | None,
             full: bool = False) -> SolveResult:
        """One plain HiGHS run of the current model (MIP or, with integrality off, LP);
        `full`: a level's full MIP, which branches on pseudocosts (PSCOST_MIN_RELIABLE_FULL)."""
        h = self.h
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("parallel", parallel_option(self.threads, self.mip_active))
        h.setOptionValue("mip_pscost_minreliable", PSCOST_MIN_RELIABLE_FULL if full
                         else PSCOST_MIN_RELIABLE_DEFAULT)  # set both ways: options persist
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        # HiGHS keeps one global thread scheduler per process; when anything in this process
        # ran HiGHS before with another thread count (PuLP's HiGHS in the baseline, an earlier
        # run with policy threads) every run here fails with 'Not Set'. Start a fresh one.
        highspy.Highs.resetGlobalScheduler(True)
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        text = h.modelStatusToString(ms)
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.array(h.getSolution().col_value) if has_point else None
        obj = info.objective_function_value if has_point else None
        bound = info.mip_dual_bound if np.isfinite(info.mip_dual_bound) else None
        if not self.mip_active:  # an LP: the optimum is its own bound
            bound = obj if ms == highspy.HighsModelStatus.kOptimal else None
        S = highspy.HighsModelStatus
        if ms == S.kOptimal:
            status = Status.OPTIMAL if has_point else Status.ERROR
            if bound is None:
                bound = obj
        elif ms == S.kInfeasible:
            status = Status.INFEASIBLE
        elif ms in (S.kTimeLimit, S.kIterationLimit, S.kInterrupt, S.kSolutionLimit,
                    S.kObjectiveBound, S.kObjectiveTarget):
            status = Status.FEASIBLE if has_point else Status.NO_SOLUTION
        else:  # unbounded, unknown, load/solve errors: never claim optimality
            status = Status.ERROR
        gap = relative_gap(obj, bound)
        if status is Status.OPTIMAL and gap is not None and gap > mip_gap + 1e-9:
            status = Status.FEASIBLE  # HiGHS uses its own gap formula; ours must hold too
        return SolveResult(status, x, obj, bound, gap, seconds, text)

    def _run_guarded(self, time_limit: float, mip_gap: float, start: np.ndarray | None,
                     child_limit: float | None = None, full: bool = False) -> SolveResult:
        """Like _run, but a large MIP runs in a child process that is killed at the deadline.

        HiGHS does not look at its clock (nor call our interrupt) during root cut separation,
        which ran 200 s past a 22 s limit on k_city's quality level. The child sends each
        improving plan as it finds it, so a killed run still returns its best plan (feasible).
        `child_limit` (tests only) gives the child a longer limit than the deadline.
        """
        if self.n < GUARD_MIN_COLUMNS or not self.mip_active:
            return self._run(time_limit, mip_gap, start, full)
        payload = self._payload()
        payload.update(time_limit=time_limit if child_limit is None else child_limit,
                       mip_gap=mip_gap, start=start, full=full)
        out, latest, seconds = _await_child(_child_solve, payload, time_limit + GUARD_GRACE)
        if out is None:
            if latest is None:
                return SolveResult(Status.NO_SOLUTION, None, None, None, None, seconds,
                                   "stopped at the deadline")
            x, obj, bound = latest
            return SolveResult(Status.FEASIBLE, x, obj, bound, relative_gap(obj, bound),
                               seconds, "stopped at the deadline (last improving plan kept)")
        status, x, obj, bound, text = out
        res = SolveResult(Status(status), x, obj, bound, relative_gap(obj, bound), seconds, text)
        if res.status is Status.OPTIMAL and res.gap is not None and res.gap > mip_gap + 1e-9:
            res.status = Status.FEASIBLE
        return res

    def _payload(self) -> dict:
        """The current LP (objective, bounds, held rows) as plain arrays for a child process."""
        lp = self.h.getLp()
        return {
            "n_col": lp.num_col_, "n_row": lp.num_row_, "sense_max": self.sense == "max",
            "cost": np.asarray(lp.col_cost_), "lb": np.asarray(lp.col_lower_),
            "ub": np.asarray(lp.col_upper_), "rlo": np.asarray(lp.row_lower_),
            "rhi": np.asarray(lp.row_upper_), "start_": np.asarray(lp.a_matrix_.start_),
            "index": np.asarray(lp.a_matrix_.index_), "value": np.asarray(lp.a_matrix_.value_),
            "colwise": lp.a_matrix_.format_ == highspy.MatrixFormat.kColwise,
            "integer": self.integer, "threads": self.threads, "seed": self.seed,
        }

    def _district_search(self, x: np.ndarray, obj: float, x_lp: np.ndarray,
                         dual: np.ndarray, limit: float,
                         mip_gap: float) -> tuple[np.ndarray, float]:
        """The plan improved one district at a time (see search_by_group), or x itself.

        On a large model the search runs in one child process killed at its deadline, the
        improving plans sent back as found; a small one runs here.
        """
        groups = self.groups
        kernel = self.integer & ((np.abs(x_lp - self.lb) > 1e-9) | (np.abs(dual) <= 1e-9))
        cand = np.flatnonzero(self.integer & ~kernel & (groups >= 0))
        order = cand[np.lexsort((np.abs(dual[cand]), groups[cand]))]
        ranked = np.split(order, np.flatnonzero(np.diff(groups[order])) + 1)
        ranked = [r for r in ranked if len(r)]
        # a district's promise: how far the plan's objective there is from the LP's
        sign = 1.0 if self.sense == "max" else -1.0
        has = groups >= 0
        by_group = np.bincount(groups[has], weights=sign * self.costs[has] * (x_lp - x)[has],
                               minlength=int(groups.max()) + 1)
        promise = np.array([by_group[groups[r[0]]] for r in ranked])
        # a pass gaining less than the level's gap is not worth another: the full MIP gets
        # the time (on city-1k it proves the level; the neighbourhoods never could)
        search = {"kernel": kernel, "ranked": ranked, "x": x, "obj": obj, "limit": limit,
                  "mip_gap": SEARCH_GAP, "promise": promise,
                  "min_gain": mip_gap * max(1.0, abs(obj))}
        if self.n < GUARD_MIN_COLUMNS:
            return search_by_group(self, **search)
        payload = self._payload()
        payload.update(search)
        out, latest, _ = _await_child(_child_search, payload, limit + GUARD_GRACE)
        if out is not None:
            return out
        return (latest[0], latest[1]) if latest is not None else (x, obj)

    def _meets_bound(self, best: np.ndarray | None, best_obj: float | None, upper: float,
                     mip_gap: float, t0: float) -> SolveResult | None:
        """An optimal result when the incumbent already meets the LP bound (rounded where
        the objective is integral): nothing is left to search. Else None."""
        if best_obj is None:
            return None
        proven = self._integral_bound(upper)
        gap = relative_gap(best_obj, proven)
        if gap is None or gap > mip_gap:
            return None
        return SolveResult(Status.OPTIMAL, best, best_obj, proven, gap,
                           time.perf_counter() - t0, "optimal (incumbent meets the LP bound)")

    def _group_count(self) -> int:
        """How many neighbourhood groups (districts) the model's columns fall in."""
        if self.groups is None:
            return 0
        return len(np.unique(self.groups[self.groups >= 0]))

    def _objective_grid(self) -> float | None:
        """The step between objective values of any two plans, or None if there is none.

        When every cost is on integer columns and 10**p times it is an integer (p <= 6; model
        costs are currency in units of a power of ten), every plan's objective is a multiple of
        10**-p. A bound can then be rounded to that grid, and a plan strictly better than L is
        at least one step better.
        """
        c = self.costs
        if np.any(c[~self.integer] != 0):
            return None
        on_int = c[self.integer]
        for p in range(OBJECTIVE_GRID_MAX_POWER + 1):
            v = on_int * 10.0**p
            if np.all(np.abs(v - np.round(v)) <= 1e-9 * np.maximum(1.0, np.abs(v))):
                return 10.0**-p
        return None

    def _integral_bound(self, bound: float) -> float:
        """A bound rounded to the objective's grid (see _objective_grid), when it has one."""
        grid = self._objective_grid()
        if grid is None or not np.isfinite(bound):
            return bound
        steps = bound / grid
        tol = 1e-4 + 1e-9 * abs(steps)  # solver noise on the bound never rounds past a plan
        steps = np.floor(steps + tol) if self.sense == "max" else np.ceil(steps - tol)
        return float(steps * grid)

    def _set_integrality(self, on: bool) -> None:
        self.mip_active = bool(on and self.integer.any())
        kinds = np.where(self.integer & on, highspy.HighsVarType.kInteger,
                         highspy.HighsVarType.kContinuous)
        self.h.changeColsIntegrality(self.n, self.idx, kinds)

    def _set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        self.h.changeColsBounds(self.n, self.idx, lb, ub)

    def _relaxation(self, time_limit: float) -> tuple[float, np.ndarray, np.ndarray] | None:
        """LP optimum value, point and reduced costs; None if the LP did not solve."""
        self._set_integrality(False)
        try:
            res = self._run(time_limit, 0.0, None)
            if res.status is not Status.OPTIMAL or res.objective is None:
                return None
            return res.objective, res.x, np.array(self.h.getSolution().col_dual)
        finally:
            self._set_integrality(True)

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult:
        """LP-guided MIP solve of the current objective, exact within mip_gap.

        1. LP relaxation: bound U and reduced costs d.
        2. A sub-MIP near the LP (columns at 0 in the LP with a non-zero reduced cost stay 0)
           gives an incumbent L fast; the better of it and `start` is kept. Where step 3
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
        if not self.lp_guided or not self.integer.any():
            return self._run(time_limit, mip_gap, start, full=True)
        relax = self._relaxation(time_limit)
        if relax is None:  # infeasible LP or trouble: let the plain MIP say what it is
            left = time_limit - (time.perf_counter() - t0)
            return self._run(max(left, 0.05), mip_gap, start, full=True)
        upper, x_lp, dual = relax
        sign = 1.0 if self.sense == "max" else -1.0
        best, best_obj = None, None
        if start is not None:
            best, best_obj = start, float(self.costs @ start)
        # the neighbourhood: columns at 0 in the LP with a non-zero reduced cost stay at 0;
        # zero-reduced-cost columns (alternative agencies as good as the LP's) stay free
        stuck = self.integer & (np.abs(x_lp - self.lb) < 1e-9) & (np.abs(dual) > 1e-9)
        if start is not None:
            # the start's own columns stay free too, so the neighbourhood always holds the
            # start (at a held level the LP support alone is often infeasible: k_city's
            # quality level found nothing there and kept the coverage plan, 0.35 % short)
            stuck &= ~(np.asarray(start) > self.lb + 1e-9)
        support_ub = self.ub.copy()
        support_ub[stuck] = self.lb[stuck]
        self._set_bounds(self.lb, support_ub)
        left = time_limit - (time.perf_counter() - t0)
        # a held level (one with a start) of a model with districts: the district search
        # follows the sub-MIP
        by_district = start is not None and self._group_count() >= 2
        try:
            # with a start (a held level) the neighbourhood is where the value is found:
            # k_city's quality level gains 0.25 % there and nothing in the full MIP after it
            share = (SUB_MIP_SHARE_BEFORE_SEARCH if by_district else
                     SUB_MIP_SHARE_WITH_START if start is not None else SUB_MIP_SHARE)
            # guarded like the full MIP: HiGHS overran a 36 s limit by 100 s in here
            sub = self._run_guarded(max(share * left, 0.05), mip_gap, start)
        finally:
            self._set_bounds(self.lb, self.ub)
        if sub.status.has_solution and (best_obj is None or
                                        sign * (sub.objective - best_obj) > 0):
            best, best_obj = sub.x, sub.objective
        done = self._meets_bound(best, best_obj, upper, mip_gap, t0)
        if done is not None:
            return done
        if by_district and best_obj is not None:
            # a held level: improve the plan district by district before the full MIP,
            # whose root heuristics stall on large cities (SEARCH_* above)
            left = time_limit - (time.perf_counter() - t0)
            found, found_obj = self._district_search(best, best_obj, x_lp, dual,
                                                     SEARCH_SHARE * left, mip_gap)
            if sign * (found_obj - best_obj) > 0:
                best, best_obj = found, found_obj
            done = self._meets_bound(best, best_obj, upper, mip_gap, t0)
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
        self._set_bounds(lb, ub)
        left = time_limit - (time.perf_counter() - t0)
        try:
            res = self._run_guarded(max(left, 0.05), mip_gap, best, full=True)
        finally:
            self._set_bounds(self.lb, self.ub)
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
            res.bound = self._integral_bound(bound)  # no plan lies between grid steps
            res.gap = relative_gap(res.objective, res.bound)
            if res.status is Status.OPTIMAL and res.gap is not None and res.gap > mip_gap + 1e-9:
                res.status = Status.FEASIBLE
        return res


def parallel_option(threads: int, mip: bool) -> str:
    """HiGHS's `parallel` option for one run: "on" (parallel tree search) for a MIP with two
    or more threads, else HiGHS's default "choose"."""
    return "on" if PARALLEL_MIP and mip and (threads or 0) >= 2 else "choose"


def _await_child(target, payload: dict, wait: float) -> tuple:
    """Run target(payload, conn) in a spawned child for at most `wait` seconds.

    Returns (the child's "done" message or None, its last "incumbent" message or None,
    seconds). A child still running at the end is killed: HiGHS may not look at its clock
    for minutes, and a killed child's improving plans were already sent.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(payload, child), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    child.close()
    out = None
    latest = None  # the child's last improving plan: kept if the child must be killed
    end = t0 + wait
    while out is None:
        if not parent.poll(max(end - time.perf_counter(), 0.0)):
            break
        try:
            msg = parent.recv()
        except EOFError:
            break
        if msg[0] == "incumbent":
            latest = msg[1:]
        else:
            out = msg[1:]
    if proc.is_alive():
        proc.kill()
    proc.join()
    return out, latest, time.perf_counter() - t0


def search_by_group(session: HighsSession, kernel: np.ndarray, ranked: list[np.ndarray],
                    x: np.ndarray, obj: float, limit: float, mip_gap: float,
                    promise: np.ndarray | None = None, min_gain: float = 0.0,
                    send=None) -> tuple[np.ndarray, float]:
    """Improve plan x group by group (district by district) within `limit` seconds.

    Each sub-MIP frees the kernel, the plan's own columns and the group's SEARCH_EXTRA
    columns in `ranked` (smallest |reduced cost| first), keeps every other integer column at
    its lower bound, and starts from the best plan so far, so it never returns a worse one.
    Groups are visited in order of `promise` (most first), e.g. how far the plan is below
    the LP in each district. The search ends after a pass over all groups that gains no
    more than `min_gain` (the full MIP may then prove what the neighbourhoods cannot), or at
    the time limit. `send(x, obj)` receives each improving plan.
    """
    t_end = time.perf_counter() + limit
    sign = 1.0 if session.sense == "max" else -1.0
    lb, ub, integer = session.lb, session.ub, session.integer
    order = np.arange(len(ranked)) if promise is None else np.argsort(-promise, kind="stable")
    outer_deadline, sub_limit = session.deadline, SEARCH_SUB_LIMIT
    try:
        gained = True
        while gained:
            gained, pass_start = False, obj
            for g in order:
                left = t_end - time.perf_counter()
                if left < SEARCH_MIN_RUN:
                    return x, obj
                free = kernel | (x > lb + 1e-9)
                free[ranked[g][:SEARCH_EXTRA]] = True
                shut = integer & ~free
                sub_ub = ub.copy()
                sub_ub[shut] = lb[shut]
                run_limit = min(sub_limit, left)
                session._set_bounds(lb, sub_ub)
                session.deadline = min(outer_deadline,
                                       time.perf_counter() + run_limit + INTERRUPT_GRACE)
                try:
                    res = session._run(run_limit, mip_gap, x)
                finally:
                    session._set_bounds(lb, ub)
                if res.status is not Status.OPTIMAL:
                    # the neighbourhood was not searched through in time: give the next more
                    sub_limit = min(2.0 * sub_limit, SEARCH_SUB_LIMIT_MAX)
                if not res.status.has_solution:
                    continue
                y = np.asarray(res.x, dtype=float).copy()
                y[integer] = np.round(y[integer])
                val = float(session.costs @ y)
                if sign * (val - obj) > 1e-9 * max(1.0, abs(obj)):
                    x, obj = y, val
                    if send is not None:
                        send(x, obj)
            gained = sign * (obj - pass_start) > min_gain
        return x, obj
    finally:
        session.deadline = outer_deadline


def _child_search(payload: dict, conn) -> None:
    """search_by_group in a child process: each improving plan is sent as it is found."""
    session = HighsSession.from_payload(payload)
    x, obj = search_by_group(
        session, payload["kernel"], payload["ranked"], payload["x"], payload["obj"],
        payload["limit"], payload["mip_gap"], payload["promise"], payload["min_gain"],
        send=lambda x, obj: conn.send(("incumbent", x, obj, None)))
    conn.send(("done", x, obj))
    conn.close()


def _new_highs(threads: int, seed: int, log: bool):
    """A HiGHS instance with our seed, thread count and logging."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(log))
    h.setOptionValue("random_seed", int(seed))
    if threads:
        h.setOptionValue("threads", int(threads))
    return h


def _child_solve(payload: dict, conn) -> None:
    """Solve one MIP in a child process and send back (status, x, obj, bound, text)."""
    session = HighsSession.from_payload(payload)

    def send_improving(event) -> None:
        # each better plan goes to the parent at once: if the child is killed at the
        # deadline, the parent still has the best plan found
        out = event.data_out
        bound = out.mip_dual_bound
        conn.send(("incumbent", np.array(out.mip_solution, dtype=float),
                   float(out.objective_function_value),
                   float(bound) if np.isfinite(bound) else None))

    session.h.cbMipImprovingSolution.subscribe(send_improving)
    res = session._run(payload["time_limit"], payload["mip_gap"], payload["start"],
                       payload["full"])
    conn.send(("done", res.status.value, res.x, res.objective, res.bound, res.solver_status))
    conn.close()


class HighsBackend:
    """HiGHS (highspy): LP-based branch and cut, multithreaded, accepts a start."""

    name = "highs"
    accepts_start = True
    direct_share_rows = True

    def available(self) -> bool:
        return highspy is not None

    def version(self) -> str:
        if highspy is None:
            return ""
        h = highspy.Highs()
        return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"

    def open(self, model: LinearModel, threads: int, seed: int) -> HighsSession:
        return HighsSession(model, threads, seed)
