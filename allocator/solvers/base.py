"""Our own solve status, result object and backend interface; no solver imported here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from allocator.model.linear import LinearModel


class Status(StrEnum):
    """How one solve ended. Unknown solver states map to ERROR or NO_SOLUTION, never OPTIMAL."""

    OPTIMAL = "optimal"  # proven within the gap asked
    FEASIBLE = "feasible"  # a solution, not proven within the gap (time limit)
    INFEASIBLE = "infeasible"  # proven: no solution exists
    NO_SOLUTION = "no_solution"  # stopped (time limit) before any solution was found
    ERROR = "error"  # the solver failed or said something we cannot trust

    @property
    def has_solution(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE)


@dataclass
class SolveResult:
    """One solve of one objective: status, point, objective, best bound, relative gap."""

    status: Status
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    solver_status: str = ""


class Session(Protocol):
    """A model loaded into a solver, re-solved level after level."""

    def set_objective(self, coefs: np.ndarray, sense: str) -> None: ...

    def add_row(self, name: str, cols: np.ndarray, vals: np.ndarray, lo: float,
                hi: float) -> None: ...

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult: ...


class ParametricSession(Session, Protocol):
    """A session whose rows' bounds change in place (backends with `parametric_rows`): one
    model re-solved at many right-hand sides, e.g. a sweep's budgets."""

    def set_row_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None: ...

    def row_count(self) -> int: ...

    def truncate_rows(self, n_rows: int) -> None:
        """Delete every row past the first n_rows (the rows add_row appended since)."""
        ...


class SteeredSession(Session, Protocol):
    """A session (backends with `steerable`) whose MIP runs stop once a plan reaches `target`
    (objective units, in the level's sense; None: no target) and give `effort` (a share, 0-1;
    None: the solver's own) of the search to primal heuristics."""

    target: float | None
    effort: float | None
    #: False: each solve is the solver's own MIP search alone, without the LP-guided steps
    #: (a small integer part, e.g. pipeline/district_pairs.pair_mip)
    lp_guided: bool


class Backend(Protocol):
    """A solver we can drive: availability, version, capability flags and a session.

    Callers test the flags, never the name.
    """

    name: str
    #: takes a warm start (a full column vector) in Session.solve
    accepts_start: bool
    #: share caps written over x rather than through the district spend columns (model/build.py)
    direct_share_rows: bool
    #: every column must be integral (CP-SAT): helper columns such as slacks are made integer
    integer_columns_only: bool
    #: sessions are ParametricSession: row bounds change in place and added rows can be
    #: deleted, so a sweep loads one model and only changes the budget row between points
    parametric_rows: bool
    #: runs the province-scale path (pipeline/large_scale), whose class LP needs HiGHS's LP
    province_scale: bool
    #: solve_instance may give it the exact model over classes of identical demands in
    #: place of the full one (pipeline/class_path.py; measured with HiGHS)
    class_model: bool
    #: sessions are SteeredSession: a MIP stops once its plan reaches a target, and its
    #: primal heuristics can be given more of the search (pipeline/lexicographic.py)
    steerable: bool
    #: one line for `allocator solvers`: what the backend is good for
    purpose: str

    def available(self) -> bool: ...

    def version(self) -> str: ...

    def open(self, model: LinearModel, threads: int, seed: int) -> Session: ...


#: a solver's "optimal" is re-checked with our own gap; this absorbs float noise
GAP_TOLERANCE = 1e-9


def settle_status(status: Status, gap: float | None, mip_gap: float) -> Status:
    """The one status rule for every backend and level: OPTIMAL only when our own gap (see
    relative_gap) is known and within mip_gap; a run stopped on time whose bound proves the
    gap is OPTIMAL. Every other status passes through unchanged."""
    if status is Status.OPTIMAL and (gap is None or gap > mip_gap + GAP_TOLERANCE):
        return Status.FEASIBLE
    if status is Status.FEASIBLE and gap is not None and gap <= mip_gap:
        return Status.OPTIMAL
    return status


def objective_grid(costs: np.ndarray, integer: np.ndarray,
                   max_power: int = 6) -> float | None:
    """The step between objective values of any two plans, or None if there is none.

    When every cost is on integer columns and 10**p times it is an integer (p <= max_power;
    model costs are currency in units of a power of ten), every plan's objective is a
    multiple of 10**-p: a bound can be rounded to that grid, and a plan strictly better than
    another is at least one step better."""
    if np.any(costs[~integer] != 0):
        return None
    on_int = costs[integer]
    for p in range(max_power + 1):
        v = on_int * 10.0**p
        if np.all(np.abs(v - np.round(v)) <= 1e-9 * np.maximum(1.0, np.abs(v))):
            return 10.0**-p
    return None


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / max(1, |objective|), the convention used in every report."""
    if objective is None or bound is None or not np.isfinite(bound):
        return None
    return abs(bound - objective) / max(1.0, abs(objective))
