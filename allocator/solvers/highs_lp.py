"""A growing LP on HiGHS for column generation: solve, read row duals, append columns.

Every column is continuous (an LP relaxation). Columns are appended in place, so each re-solve
starts from the previous basis: a few simplex iterations per batch of new columns instead of a
cold solve. Used by allocator.pipeline.large_scale; solver imports live in the backends only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from allocator.core.errors import SolverUnavailable
from allocator.solvers.base import Status
from allocator.solvers.highs_core import highspy, new_highs


def lp_available() -> bool:
    """Whether the LP master can run here (highspy importable)."""
    return highspy is not None


@dataclass
class LpSolution:
    """One LP solve: our status, objective, primal point and row duals.

    Row duals follow HiGHS: a column's reduced cost is c - A^T y, in either sense.
    """

    status: Status
    objective: float | None
    x: np.ndarray | None
    row_dual: np.ndarray | None
    seconds: float
    text: str


class LpMaster:
    """An LP with fixed rows and a growing set of columns, maximised or minimised."""

    def __init__(self, row_lo: np.ndarray, row_hi: np.ndarray, sense: str, threads: int = 0,
                 seed: int = 0):
        if highspy is None:  # pragma: no cover
            raise SolverUnavailable("highspy is not installed")
        h = new_highs(threads, seed)
        inf = highspy.kHighsInf
        lo = np.where(np.isinf(row_lo), -inf, np.asarray(row_lo, dtype=float))
        hi = np.where(np.isinf(row_hi), inf, np.asarray(row_hi, dtype=float))
        h.addRows(len(lo), lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize if sense == "max"
                               else highspy.ObjSense.kMinimize)
        self.h = h
        self.n_rows = len(lo)
        self.n_cols = 0
        self.deadline = float("inf")
        h.cbSimplexInterrupt.subscribe(self._interrupt_if_late)

    def _interrupt_if_late(self, event) -> None:
        if time.perf_counter() > self.deadline:
            event.interrupt()

    def add_columns(self, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                    matrix: sp.csc_matrix) -> np.ndarray:
        """Append columns (matrix: rows x new columns); return their numbers."""
        n = matrix.shape[1]
        if n == 0:
            return np.empty(0, dtype=np.int64)
        matrix = sp.csc_matrix(matrix)
        self.h.addCols(n, np.asarray(cost, dtype=float), np.asarray(lb, dtype=float),
                       np.asarray(ub, dtype=float), int(matrix.nnz),
                       matrix.indptr[:-1].astype(np.int32), matrix.indices.astype(np.int32),
                       matrix.data.astype(float))
        out = np.arange(self.n_cols, self.n_cols + n)
        self.n_cols += n
        return out

    def add_rows(self, lo: np.ndarray, hi: np.ndarray, matrix: sp.csr_matrix) -> None:
        """Append rows (matrix: new rows x current columns)."""
        matrix = sp.csr_matrix(matrix)
        inf = highspy.kHighsInf
        self.h.addRows(matrix.shape[0], np.clip(np.asarray(lo, dtype=float), -inf, inf),
                       np.clip(np.asarray(hi, dtype=float), -inf, inf), int(matrix.nnz),
                       matrix.indptr[:-1].astype(np.int32), matrix.indices.astype(np.int32),
                       matrix.data.astype(float))
        self.n_rows += matrix.shape[0]

    def set_row_bounds(self, row: int, lo: float, hi: float) -> None:
        """Change one row's limits."""
        inf = highspy.kHighsInf
        self.h.changeRowBounds(int(row), max(float(lo), -inf), min(float(hi), inf))

    def set_costs(self, cost: np.ndarray) -> None:
        """Replace the objective coefficients of every column (in column order)."""
        n = self.n_cols
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, dtype=float))

    def solve(self, time_limit: float) -> LpSolution:
        """Solve from the current basis; a point and duals only when proven optimal."""
        h = self.h
        # HiGHS compares time_limit with the run time summed over every run of this object
        h.setOptionValue("time_limit", h.getRunTime() + max(float(time_limit), 0.01))
        self.deadline = time.perf_counter() + max(float(time_limit), 0.01) + 1.0
        t0 = time.perf_counter()
        # one global thread scheduler per process: a run before with another thread count
        # makes every later run fail with 'Not Set' (see backends/highs.py)
        highspy.Highs.resetGlobalScheduler(True)
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        text = h.modelStatusToString(ms)
        states = highspy.HighsModelStatus
        if ms == states.kOptimal:
            sol = h.getSolution()
            return LpSolution(Status.OPTIMAL, float(h.getInfo().objective_function_value),
                              np.asarray(sol.col_value), np.asarray(sol.row_dual), seconds,
                              text)
        if ms == states.kInfeasible:
            return LpSolution(Status.INFEASIBLE, None, None, None, seconds, text)
        if ms in (states.kTimeLimit, states.kIterationLimit, states.kInterrupt):
            return LpSolution(Status.NO_SOLUTION, None, None, None, seconds, text)
        return LpSolution(Status.ERROR, None, None, None, seconds, text)
