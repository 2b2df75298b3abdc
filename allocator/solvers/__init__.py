"""Solver backends behind one registry, with our own status and result objects."""

from allocator.core.errors import SolverUnavailable, UnknownSolver
from allocator.solvers.base import Backend, SolveResult, Status
from allocator.solvers.registry import AUTO_ORDER, REGISTRY, get_backend

__all__ = ["AUTO_ORDER", "REGISTRY", "Backend", "SolveResult", "SolverUnavailable", "Status",
           "UnknownSolver", "get_backend"]
