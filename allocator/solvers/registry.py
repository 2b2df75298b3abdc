"""Solver backends behind one registry; `auto` picks the first available one of AUTO_ORDER."""

from __future__ import annotations

from allocator.core.errors import SolverUnavailable, UnknownSolver
from allocator.solvers.base import Backend
from allocator.solvers.cbc import CbcBackend
from allocator.solvers.cpsat import CpSatBackend
from allocator.solvers.highs import HighsBackend

REGISTRY: dict[str, Backend] = {b.name: b for b in (HighsBackend(), CbcBackend(),
                                                     CpSatBackend())}

#: preference order for `auto`, fastest first (measurements: docs/tuning-log.md, "Backends")
AUTO_ORDER = ("highs", "cpsat", "cbc")


def get_backend(name: str) -> Backend:
    """The backend called name, or for 'auto' the first available one of AUTO_ORDER.

    Raises UnknownSolver for a name not in the registry and SolverUnavailable for one that
    is not installed here.
    """
    if name == "auto":
        for candidate in AUTO_ORDER:
            backend = REGISTRY.get(candidate)
            if backend is not None and backend.available():
                return backend
        raise SolverUnavailable("no solver backend is available; install highspy")
    if name not in REGISTRY:
        raise UnknownSolver(f"unknown solver '{name}'; valid names: auto, "
                            + ", ".join(sorted(REGISTRY)))
    backend = REGISTRY[name]
    if not backend.available():
        raise SolverUnavailable(f"solver '{name}' is not installed on this machine")
    return backend
