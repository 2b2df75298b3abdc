"""Solver backends behind one registry, with our own status and result objects."""

from allocator.solvers.base import Backend, SolveResult, Status
from allocator.solvers.registry import AUTO_ORDER, REGISTRY, UnknownSolver, get_backend

__all__ = ["AUTO_ORDER", "REGISTRY", "Backend", "SolveResult", "Status", "UnknownSolver",
           "get_backend"]
