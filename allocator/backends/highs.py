"""HiGHS through highspy: the model passed as one column-wise sparse matrix, no per-row calls."""

from __future__ import annotations

import time

import numpy as np

from allocator.backends.base import SolveResult, Status, relative_gap
from allocator.linear import LinearModel

try:  # solver imports live in the backends only
    import highspy
except ImportError:  # pragma: no cover - depends on the machine
    highspy = None


class HighsSession:
    """A HiGHS instance holding the model; objectives and fixing rows change between levels."""

    def __init__(self, model: LinearModel, threads: int, seed: int, log: bool = False):
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
        self.sense = "min"

    def set_objective(self, coefs: np.ndarray, sense: str) -> None:
        idx = np.arange(self.n, dtype=np.int32)
        self.h.changeColsCost(self.n, idx, np.asarray(coefs, dtype=float))
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense == "max"
                                    else highspy.ObjSense.kMinimize)
        self.sense = sense

    def add_row(self, name: str, cols: np.ndarray, vals: np.ndarray, lo: float,
                hi: float) -> None:
        inf = highspy.kHighsInf
        self.h.addRow(max(lo, -inf), min(hi, inf), len(cols), np.asarray(cols, dtype=np.int32),
                      np.asarray(vals, dtype=float))

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult:
        h = self.h
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        text = h.modelStatusToString(ms)
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.array(h.getSolution().col_value) if has_point else None
        obj = info.objective_function_value if has_point else None
        bound = info.mip_dual_bound if np.isfinite(info.mip_dual_bound) else None
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
