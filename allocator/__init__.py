"""allocator: optimal allocation of work-safety technical services to enterprises.

The public API (see README, "Python"):

    import allocator
    inst = allocator.load("instances/k_city")        # the same as allocator.load_instance
    plan = allocator.solve(inst)
    plan.write("results/k_city")

Names are loaded on first use, so `import allocator` is cheap and loads no solver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from allocator.core.version import __version__

#: public name -> module that defines it
_EXPORTS = {
    "load": "allocator.data.validation:load_instance",  # the short name of load_instance
    "load_instance": "allocator.data.validation",
    "instance_from_frames": "allocator.data.validation",
    "Instance": "allocator.data.instance",
    "Policy": "allocator.data.policy",
    "solve": "allocator.api",
    "sweep": "allocator.api",
    "compare": "allocator.api",
    "batch": "allocator.api",
    "load_batch_manifest": "allocator.api",
    "Batch": "allocator.api",
    "diagnose": "allocator.api",
    "audit": "allocator.api",
    "generate": "allocator.api",
    "report": "allocator.api",
    "retotal": "allocator.api",
    "workbook": "allocator.api",
    "evaluate": "allocator.api",
    "diff": "allocator.api",
    "Evaluation": "allocator.api",
    "PlanDiff": "allocator.analysis.diff",
    "Plan": "allocator.api",
    "Sweep": "allocator.api",
    "Comparison": "allocator.api",
    "DiagnosisReport": "allocator.api",
    "Audit": "allocator.analysis.audit",
    "Violation": "allocator.analysis.audit",
    "Status": "allocator.solvers.base",
    "solvers": "allocator.solvers.info",
    "AllocatorError": "allocator.core.errors",
    "InputError": "allocator.core.errors",
    "ResultsError": "allocator.core.errors",
    "SolverError": "allocator.core.errors",
    "UnknownSolver": "allocator.core.errors",
    "SolverUnavailable": "allocator.core.errors",
    "OutputPathError": "allocator.core.errors",
    "UsageError": "allocator.core.errors",
    "Problem": "allocator.core.errors",
}

__all__ = [
    "AllocatorError",
    "Audit",
    "Batch",
    "Comparison",
    "DiagnosisReport",
    "Evaluation",
    "InputError",
    "Instance",
    "OutputPathError",
    "Plan",
    "PlanDiff",
    "Policy",
    "Problem",
    "ResultsError",
    "SolverError",
    "SolverUnavailable",
    "Status",
    "Sweep",
    "UnknownSolver",
    "UsageError",
    "Violation",
    "audit",
    "batch",
    "compare",
    "diagnose",
    "diff",
    "evaluate",
    "generate",
    "instance_from_frames",
    "load",
    "load_batch_manifest",
    "load_instance",
    "report",
    "retotal",
    "solve",
    "solvers",
    "sweep",
    "workbook",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from allocator.analysis.audit import Audit, Violation
    from allocator.analysis.diff import PlanDiff
    from allocator.api import (
        Batch,
        Comparison,
        DiagnosisReport,
        Evaluation,
        Plan,
        Sweep,
        audit,
        batch,
        compare,
        diagnose,
        diff,
        evaluate,
        generate,
        load_batch_manifest,
        report,
        retotal,
        solve,
        sweep,
        workbook,
    )
    from allocator.core.errors import (
        AllocatorError,
        InputError,
        OutputPathError,
        Problem,
        ResultsError,
        SolverError,
        SolverUnavailable,
        UnknownSolver,
        UsageError,
    )
    from allocator.data.instance import Instance
    from allocator.data.policy import Policy
    from allocator.data.validation import instance_from_frames, load_instance
    from allocator.data.validation import load_instance as load
    from allocator.solvers.base import Status
    from allocator.solvers.info import solvers


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'allocator' has no attribute {name!r}")
    module, _, attr = module.partition(":")
    value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
