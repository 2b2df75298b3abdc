"""What `allocator solvers` shows: each backend, whether it runs here, its version and use."""

from __future__ import annotations

from dataclasses import dataclass

from allocator.core.errors import SolverError
from allocator.solvers.registry import REGISTRY, get_backend


@dataclass(frozen=True)
class SolverInfo:
    """One backend as the user sees it."""

    name: str
    available: bool
    version: str
    auto: bool  # the one `auto` picks
    purpose: str


def solvers() -> list[SolverInfo]:
    """Every registered backend, by name."""
    try:
        auto = get_backend("auto").name
    except SolverError:
        auto = None
    out = []
    for name, backend in sorted(REGISTRY.items()):
        ok = backend.available()
        out.append(SolverInfo(name, ok, backend.version() if ok else "", name == auto,
                              backend.purpose))
    return out
