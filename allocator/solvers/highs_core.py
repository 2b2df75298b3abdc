"""HiGHS through highspy: one HiGHS object holding the model, run as MIP or LP.

The model goes in as one column-wise sparse matrix (no per-row calls). Every HiGHS object of
allocator is made by `new_highs`, which keeps HiGHS's banner off stdout, and every model is
assembled by `highs_lp`. The LP-guided level solve built on this is in solvers/highs.py.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import numpy as np

from allocator.model.linear import LinearModel
from allocator.solvers.base import (
    SolveResult,
    Status,
    objective_grid,
    relative_gap,
    settle_status,
)

#: seconds past a solve's time limit after which the interrupt callback stops HiGHS
INTERRUPT_GRACE = 0.5
#: HiGHS's parallel tree search for every MIP run with two or more threads (docs/tuning-log.md,
#: "parallel tree search"); LP runs keep HiGHS's own choice
PARALLEL_MIP = True
#: strong-branching trials before a column's pseudocost is trusted, in a level's full MIP;
#: 0 branches on pseudocosts from the start (docs/tuning-log.md, "pseudocost branching")
PSCOST_MIN_RELIABLE_FULL = 0
PSCOST_MIN_RELIABLE_DEFAULT = 8  # HiGHS's own, for every other run (options persist)
#: HiGHS's feasibility jump heuristic (run before the root LP), with a start and without:
#: off costs no plan measured and saves seconds (docs/tuning-log.md, "Feasibility jump")
FEASIBILITY_JUMP_WITH_START = False
FEASIBILITY_JUMP_WITHOUT_START = False
#: HiGHS's own mip_heuristic_effort, for every run without a session `effort`
HEURISTIC_EFFORT_DEFAULT = 0.05
#: largest power of ten tried when looking for the objective's grid (costs in 1e-6 units)
OBJECTIVE_GRID_MAX_POWER = 6

highspy: Any
try:  # solver imports live in the solvers package only
    import highspy
except ImportError:  # pragma: no cover - depends on the machine
    highspy = None

_banner_lock = threading.Lock()
_banner_shown = False


def new_highs(threads: int = 0, seed: int = 0, log: bool = False):
    """A HiGHS object with our seed, thread count and logging.

    HiGHS (1.16) prints its banner on the C-level stdout when a process makes its first
    object, whatever the options; that first object is made with stdout pointed at stderr's
    null sink, so stdout carries only what a command is for.
    """
    global _banner_shown
    with _banner_lock:
        if not _banner_shown:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_shown = True
    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(log))
    h.setOptionValue("random_seed", int(seed))
    if threads:
        h.setOptionValue("threads", int(threads))
    return h


def highs_lp(n_col: int, n_row: int, cost, lb, ub, row_lo, row_hi, start, index, value,
             integer, colwise: bool = True, maximise: bool = False):
    """A highspy.HighsLp from plain arrays (infinite bounds mapped to HiGHS's infinity)."""
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = int(n_col), int(n_row)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(lb, dtype=float)
    lp.col_upper_ = np.asarray(ub, dtype=float)
    lp.row_lower_ = np.clip(np.asarray(row_lo, dtype=float), -inf, inf)
    lp.row_upper_ = np.clip(np.asarray(row_hi, dtype=float), -inf, inf)
    lp.a_matrix_.format_ = (highspy.MatrixFormat.kColwise if colwise
                            else highspy.MatrixFormat.kRowwise)
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize if maximise else highspy.ObjSense.kMinimize
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                       highspy.HighsVarType.kContinuous for i in integer]
    return lp


def highs_version() -> str:
    """HiGHS's version, e.g. 1.16.0 (empty when highspy is missing)."""
    if highspy is None:
        return ""
    return (f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}."
            f"{highspy.HIGHS_VERSION_PATCH}")


def parallel_option(threads: int, mip: bool) -> str:
    """HiGHS's `parallel` option for one run: "on" (parallel tree search) for a MIP with two
    or more threads, else HiGHS's default "choose"."""
    return "on" if PARALLEL_MIP and mip and (threads or 0) >= 2 else "choose"


class HighsModel:
    """A HiGHS object holding the model; objectives, bounds and held rows change between runs.

    `run` is one plain HiGHS run (MIP, or LP with integrality off) under a deadline that an
    interrupt callback enforces; the LP-guided level solve (solvers/highs.py) is built on it.
    """

    def __init__(self, model: LinearModel, threads: int, seed: int, log: bool = False):
        h = new_highs(threads, seed, log)
        csc = model.matrix().tocsc()
        h.passModel(highs_lp(model.n_vars, model.n_rows, np.zeros(model.n_vars), model.lb,
                             model.ub, model.row_lo, model.row_hi, csc.indptr, csc.indices,
                             csc.data, model.integer))
        self._attach(h, model.lb, model.ub, model.integer, threads, seed, model.column_groups)

    def _attach(self, h, lb: np.ndarray, ub: np.ndarray, integer: np.ndarray, threads: int,
                seed: int, groups: np.ndarray | None = None) -> None:
        """Hold a HiGHS object that already has the model, with the model's own bounds."""
        self.h = h
        self.n = len(lb)
        self.model_rows = int(h.getNumRow())  # rows added later hold earlier levels
        self.idx = np.arange(self.n, dtype=np.int32)
        self.lb, self.ub, self.integer = lb, ub, integer
        self.costs = np.zeros(self.n)
        self.sense = "min"
        self.threads, self.seed = threads, seed
        self.fixed_last = 0
        #: the last optimal LP basis per row count (HighsSession.relaxation)
        self.bases: dict[int, object] = {}
        self.groups = groups  # each column's district (LinearModel.column_groups) or None
        self.mip_active = bool(self.integer.any())
        self.free_integers = int(np.count_nonzero(integer & (ub > lb)))  # see set_bounds
        # HiGHS checks its time_limit only now and then (root cuts, probing and heuristics can
        # run far past it); an interrupt callback holds the deadline we promise the user
        self.deadline = float("inf")
        # SteeredSession: stop a MIP at this objective; HiGHS's heuristic effort (None: its own)
        self.target: float | None = None
        self.effort: float | None = None
        for hook in ("cbMipInterrupt", "cbSimplexInterrupt", "cbIpmInterrupt"):
            getattr(h, hook).subscribe(self._interrupt_if_late)

    @classmethod
    def from_payload(cls, payload: dict) -> HighsModel:
        """The model a child process solves, rebuilt from the parent's current LP."""
        h = new_highs(payload["threads"], payload["seed"], False)
        h.passModel(highs_lp(payload["n_col"], payload["n_row"], payload["cost"], payload["lb"],
                             payload["ub"], payload["rlo"], payload["rhi"], payload["start_"],
                             payload["index"], payload["value"], payload["integer"],
                             payload["colwise"], payload["sense_max"]))
        session = cls.__new__(cls)
        session._attach(h, payload["lb"], payload["ub"], payload["integer"], payload["threads"],
                        payload["seed"])
        session.costs = np.asarray(payload["cost"], dtype=float)
        session.sense = "max" if payload["sense_max"] else "min"
        session.target, session.effort = payload["target"], payload["effort"]
        return session

    def _interrupt_if_late(self, event) -> None:
        # set the flag both ways: HiGHS keeps it between runs, so a run interrupted once
        # would otherwise stop every later run of this session at its first callback
        event.interrupt(time.perf_counter() > self.deadline)

    def reached_target(self, obj: float | None) -> bool:
        """Whether a plan of objective `obj` reaches the session's target (SteeredSession)."""
        if self.target is None or obj is None:
            return False
        return obj >= self.target if self.sense == "max" else obj <= self.target

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

    def set_row_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """New bounds for existing rows (e.g. the budget row at another sweep point); HiGHS
        keeps the model, and the last LP basis warm-starts the next relaxation."""
        inf = highspy.kHighsInf
        rows = np.asarray(rows, dtype=np.int32)
        self.h.changeRowsBounds(len(rows), rows, np.clip(np.asarray(lo, dtype=float), -inf, inf),
                                np.clip(np.asarray(hi, dtype=float), -inf, inf))

    def row_count(self) -> int:
        return int(self.h.getNumRow())

    def truncate_rows(self, n_rows: int) -> None:
        """Delete the rows past the first n_rows (held levels of an earlier solve)."""
        k = self.row_count()
        if k > n_rows:
            self.h.deleteRows(k - n_rows, np.arange(n_rows, k, dtype=np.int32))

    def run(self, time_limit: float, mip_gap: float, start: np.ndarray | None,
             full: bool = False) -> SolveResult:
        """One plain HiGHS run of the current model (MIP or, with integrality off, LP);
        `full`: a level's full MIP, which branches on pseudocosts (PSCOST_MIN_RELIABLE_FULL)."""
        h = self.h
        # HiGHS 1.16 compares an LP's time_limit with the run time summed over every run of
        # this object (a MIP's with its own): without the offset a level's LP after 30 s of
        # earlier runs stopped at once (docs/tuning-log.md, "HiGHS's LP clock")
        offset = 0.0 if self.mip_active else h.getRunTime()
        h.setOptionValue("time_limit", offset + max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("parallel", parallel_option(self.threads, self.mip_active))
        h.setOptionValue("mip_pscost_minreliable", PSCOST_MIN_RELIABLE_FULL if full
                         else PSCOST_MIN_RELIABLE_DEFAULT)  # set both ways: options persist
        # HiGHS 1.16's feasibility jump, run before the root LP, only cost time where it was
        # measured: 13 s of k_city's 20 s to its root LP for a plan of 3,419; the least
        # budget of a 1,000-enterprise city 9.2 s against 3.5 s without it
        # (docs/tuning-log.md, "Feasibility jump")
        h.setOptionValue("mip_heuristic_run_feasibility_jump",
                         FEASIBILITY_JUMP_WITH_START if start is not None
                         else FEASIBILITY_JUMP_WITHOUT_START)
        h.setOptionValue("mip_heuristic_effort", HEURISTIC_EFFORT_DEFAULT
                         if self.effort is None else float(self.effort))
        # HiGHS stops once a plan reaches the target (at least it when maximising, at most
        # when minimising); its default -inf means no target in either sense
        h.setOptionValue("objective_target", -highspy.kHighsInf if self.target is None
                         else float(self.target))
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
        # HiGHS uses its own gap formula; ours must hold too
        return SolveResult(settle_status(status, gap, mip_gap), x, obj, bound, gap, seconds, text)

    def payload(self) -> dict:
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
            "target": self.target, "effort": self.effort,
        }

    def objective_grid(self) -> float | None:
        """The step between the current objective's values of any two plans (see
        base.objective_grid), or None."""
        return objective_grid(self.costs, self.integer, OBJECTIVE_GRID_MAX_POWER)

    def integral_bound(self, bound: float) -> float:
        """A bound rounded to the objective's grid (see _objective_grid), when it has one."""
        grid = self.objective_grid()
        if grid is None or not np.isfinite(bound):
            return bound
        steps = bound / grid
        tol = 1e-4 + 1e-9 * abs(steps)  # solver noise on the bound never rounds past a plan
        steps = np.floor(steps + tol) if self.sense == "max" else np.ceil(steps - tol)
        return float(steps * grid)

    def set_integrality(self, on: bool) -> None:
        self.mip_active = bool(on and self.integer.any())
        kinds = np.where(self.integer & on, highspy.HighsVarType.kInteger,
                         highspy.HighsVarType.kContinuous)
        self.h.changeColsIntegrality(self.n, self.idx, kinds)

    def set_bounds(self, lb: np.ndarray, ub: np.ndarray) -> None:
        self.h.changeColsBounds(self.n, self.idx, lb, ub)
        self.free_integers = int(np.count_nonzero(self.integer & (ub > lb)))
