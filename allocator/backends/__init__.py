"""Solver backends behind one registry; `auto` picks the fastest available by measurement."""

from __future__ import annotations

from allocator.backends.base import Backend, SolveResult, Status
from allocator.backends.cbc import CbcBackend
from allocator.backends.cpsat import CpSatBackend
from allocator.backends.highs import HighsBackend

REGISTRY: dict[str, Backend] = {b.name: b for b in (HighsBackend(), CbcBackend(),
                                                     CpSatBackend())}

#: preference order for `auto`, fastest first, measured with `allocator solve --solver X`
#: on a 2-core machine (k_city and a 1,000-enterprise city at 60 and 120 s; 50-150-enterprise
#: cities to optimality): HiGHS and CBC are close (HiGHS ahead on the small cities and the
#: 1,000-enterprise one, CBC on k_city); CP-SAT wins some small cities but finds far weaker
#: coverage on the large ones within the time limit, so it comes last.
AUTO_ORDER = ("highs", "cbc", "cpsat")


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


__all__ = ["AUTO_ORDER", "REGISTRY", "Backend", "SolveResult", "Status", "UnknownSolver",
           "get_backend"]
