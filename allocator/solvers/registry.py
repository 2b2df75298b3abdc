"""Solver backends behind one registry; `auto` picks the fastest available by measurement."""

from __future__ import annotations

from allocator.solvers.base import Backend, SolveResult, Status
from allocator.solvers.cbc import CbcBackend
from allocator.solvers.cpsat import CpSatBackend
from allocator.solvers.highs import HighsBackend

REGISTRY: dict[str, Backend] = {b.name: b for b in (HighsBackend(), CbcBackend(),
                                                     CpSatBackend())}

#: preference order for `auto`, fastest first, measured with `allocator solve --solver X` on
#: a loaded 2-core machine with the current model: k_city (2,000 enterprises) at 90-120 s:
#: HiGHS proves the coverage optimum in 8 s, CP-SAT finds coverage 5773 of 5776, CBC finds
#: no plan; a 1,000-enterprise city at 60 s: all reach coverage 2865, CP-SAT the best
#: quality, then HiGHS, then CBC; 50-150-enterprise cities to optimality: all close.
AUTO_ORDER = ("highs", "cpsat", "cbc")


class UnknownSolver(ValueError):
    """A solver name that is not in the registry (a usage error, exit 2)."""


def get_backend(name: str) -> Backend:
    """The backend called name, or for 'auto' the fastest available one."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            backend = REGISTRY.get(candidate)
            if backend is not None and backend.available():
                return backend
        raise UnknownSolver("no solver backend is available; install highspy")
    if name not in REGISTRY:
        raise UnknownSolver(f"unknown solver '{name}'; valid names: auto, "
                            + ", ".join(sorted(REGISTRY)))
    backend = REGISTRY[name]
    if not backend.available():
        raise UnknownSolver(f"solver '{name}' is not installed on this machine")
    return backend
