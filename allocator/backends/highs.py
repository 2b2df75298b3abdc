"""HiGHS through highspy: the model passed as one column-wise sparse matrix, no per-row calls."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np

from allocator.backends.base import SolveResult, Status, relative_gap
from allocator.linear import LinearModel

#: below this many columns a MIP runs in-process (a child costs ~1 s to start; small models
#: do not overrun their deadline by much)
GUARD_MIN_COLUMNS = 20_000
#: seconds a child may run past its time limit before it is killed
GUARD_GRACE = 2.0
#: share of a level's time for the sub-MIP around the LP support (and the start, if any)
SUB_MIP_SHARE = 0.3
SUB_MIP_SHARE_WITH_START = 0.5
#: seconds past a solve's time limit after which the interrupt callback stops HiGHS
INTERRUPT_GRACE = 0.5
#: HiGHS's parallel tree search (1.15: several search workers over the threads) for every MIP
#: run with two or more threads; measured on gapc-4 over three seeds: 7.4-7.9 s against
#: 9.4-9.9 s serial, gapd-1 proven in 35 s; but gapd-5 at 60 s ends at 6,253 / 6,262 against
#: 6,246 / 6,227 serial (benchmarks/README.md). LP runs keep HiGHS's own choice ("choose").
PARALLEL_MIP = True
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
        h = highspy.Highs()
        h.setOptionValue("output_flag", bool(log))
        h.setOptionValue("random_seed", int(seed))
        if threads:
            h.setOptionValue("threads", int(threads))
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
        self.h = h
        self.n = model.n_vars
        self.idx = np.arange(self.n, dtype=np.int32)
        self.lb, self.ub, self.integer = model.lb, model.ub, model.integer
        self.costs = np.zeros(self.n)
        self.sense = "min"
        self.lp_guided = lp_guided
        self.threads, self.seed = threads, seed
        self.fixed_last = 0
        self.mip_active = bool(self.integer.any())
        # HiGHS checks its time_limit only now and then (root cuts, probing and heuristics can
        # run far past it, several times over on a loaded machine); an interrupt callback
        # holds the deadline we promise the user.
        self.deadline = float("inf")
        for hook in ("cbMipInterrupt", "cbSimplexInterrupt", "cbIpmInterrupt"):
            getattr(h, hook).subscribe(self._interrupt_if_late)

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

    def _run(self, time_limit: float, mip_gap: float, start: np.ndarray | None) -> SolveResult:
        """One plain HiGHS run of the current model (MIP or, with integrality off, LP)."""
        h = self.h
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("parallel", parallel_option(self.threads, self.mip_active))
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
                     child_limit: float | None = None) -> SolveResult:
        """Like _run, but a large MIP runs in a child process that is killed at the deadline.

        HiGHS does not look at its clock (nor call our interrupt) during root cut separation,
        which ran 200 s past a 22 s limit on k_city's quality level. The child sends each
        improving plan as it finds it, so a killed run still returns its best plan (feasible).
        `child_limit` (tests only) gives the child a longer limit than the deadline.
        """
        if self.n < GUARD_MIN_COLUMNS or not self.mip_active:
            return self._run(time_limit, mip_gap, start)
        lp = self.h.getLp()
        payload = {
            "n_col": lp.num_col_, "n_row": lp.num_row_, "sense_max": self.sense == "max",
            "cost": np.asarray(lp.col_cost_), "lb": np.asarray(lp.col_lower_),
            "ub": np.asarray(lp.col_upper_), "rlo": np.asarray(lp.row_lower_),
            "rhi": np.asarray(lp.row_upper_), "start_": np.asarray(lp.a_matrix_.start_),
            "index": np.asarray(lp.a_matrix_.index_), "value": np.asarray(lp.a_matrix_.value_),
            "colwise": lp.a_matrix_.format_ == highspy.MatrixFormat.kColwise,
            "integer": self.integer, "threads": self.threads, "seed": self.seed,
            "time_limit": time_limit if child_limit is None else child_limit,
            "mip_gap": mip_gap, "start": start,
        }
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child_solve, args=(payload, child), daemon=True)
        t0 = time.perf_counter()
        proc.start()
        child.close()
        out = None
        latest = None  # the child's last improving plan: kept if the child must be killed
        end = t0 + time_limit + GUARD_GRACE
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
        seconds = time.perf_counter() - t0
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
           gives an incumbent L fast; the better of it and `start` is kept.
        3. Reduced-cost fixing: a column whose |d_j| exceeds U - L cannot leave its LP bound in
           any plan at least as good as L, so it is fixed there. This is exact, not a heuristic.
        4. The full MIP on what is left, started from L. Bounds are restored afterwards.
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
            return self._run(time_limit, mip_gap, start)
        relax = self._relaxation(time_limit)
        if relax is None:  # infeasible LP or trouble: let the plain MIP say what it is
            left = time_limit - (time.perf_counter() - t0)
            return self._run(max(left, 0.05), mip_gap, start)
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
        try:
            # with a start (a held level) the neighbourhood is where the value is found:
            # k_city's quality level gains 0.25 % there and nothing in the full MIP after it
            share = SUB_MIP_SHARE_WITH_START if start is not None else SUB_MIP_SHARE
            # guarded like the full MIP: HiGHS overran a 36 s limit by 100 s in here
            sub = self._run_guarded(max(share * left, 0.05), mip_gap, start)
        finally:
            self._set_bounds(self.lb, self.ub)
        if sub.status.has_solution and (best_obj is None or
                                        sign * (sub.objective - best_obj) > 0):
            best, best_obj = sub.x, sub.objective
        if best_obj is not None:
            proven = self._integral_bound(upper)
            if relative_gap(best_obj, proven) is not None and \
                    relative_gap(best_obj, proven) <= mip_gap:
                # the incumbent already meets the LP bound (rounded where the objective is
                # integral): nothing left to search
                return SolveResult(Status.OPTIMAL, best, best_obj, proven,
                                   relative_gap(best_obj, proven), time.perf_counter() - t0,
                                   "optimal (incumbent meets the LP bound)")
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
            res = self._run_guarded(max(left, 0.05), mip_gap, best)
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


def _child_solve(payload: dict, conn) -> None:
    """Solve one MIP in a child process and send back (status, x, obj, bound, text)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", int(payload["seed"]))
    if payload["threads"]:
        h.setOptionValue("threads", int(payload["threads"]))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = payload["n_col"], payload["n_row"]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = payload["cost"], payload["lb"], payload["ub"]
    lp.row_lower_, lp.row_upper_ = payload["rlo"], payload["rhi"]
    lp.a_matrix_.format_ = (highspy.MatrixFormat.kColwise if payload["colwise"]
                            else highspy.MatrixFormat.kRowwise)
    lp.a_matrix_.start_ = payload["start_"]
    lp.a_matrix_.index_ = payload["index"]
    lp.a_matrix_.value_ = payload["value"]
    lp.sense_ = highspy.ObjSense.kMaximize if payload["sense_max"] else highspy.ObjSense.kMinimize
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                       for i in payload["integer"]]
    h.passModel(lp)

    def send_improving(event) -> None:
        # each better plan goes to the parent at once: if the child is killed at the
        # deadline, the parent still has the best plan found
        out = event.data_out
        bound = out.mip_dual_bound
        conn.send(("incumbent", np.array(out.mip_solution, dtype=float),
                   float(out.objective_function_value),
                   float(bound) if np.isfinite(bound) else None))

    h.cbMipImprovingSolution.subscribe(send_improving)
    session = HighsSession.__new__(HighsSession)
    session.h, session.mip_active = h, True
    session.threads = payload["threads"]
    session.deadline = float("inf")
    res = HighsSession._run(session, payload["time_limit"], payload["mip_gap"],
                            payload["start"])
    conn.send(("done", res.status.value, res.x, res.objective, res.bound, res.solver_status))
    conn.close()


class HighsBackend:
    """HiGHS (highspy): LP-based branch and cut, multithreaded, accepts a start."""

    name = "highs"
    accepts_start = True

    def available(self) -> bool:
        return highspy is not None

    def version(self) -> str:
        if highspy is None:
            return ""
        h = highspy.Highs()
        return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"

    def open(self, model: LinearModel, threads: int, seed: int) -> HighsSession:
        return HighsSession(model, threads, seed)
