"""The CP-SAT worker process: imports OR-Tools only (never highspy), then serves requests.

Run as a script by path (`python cpsat_worker.py`), not through the allocator package, so
that nothing but the standard library and OR-Tools is loaded in it (see solvers/cpsat.py).
Requests and replies are pickles on stdin / a duplicate of stdout; anything the solver
prints goes to stderr, never into the reply pipe. The worker dies with allocator (argv[1] is
its process id), so a killed allocator leaves no CP-SAT search running.
"""
# ruff: noqa: E402 - stdout is redirected before anything else is imported
import os
import sys

out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything the solver prints goes to stderr, never into the reply pipe


def die_with_parent() -> None:
    """SIGKILL when allocator (its pid is argv[1]) dies, kill -9 included (Linux prctl)."""
    if len(sys.argv) < 2 or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(sys.argv[1]):  # allocator died before the call
        os._exit(1)


die_with_parent()

import pickle
import time
import traceback
from typing import Any


def reply(obj: Any) -> None:
    pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def add_linear(proto: Any, cols: list[int], coeffs: list[int], lo: int, hi: int) -> None:
    lin = proto.constraints.add().linear
    if lo > hi:  # CP-SAT rejects an empty domain as invalid: write 0 in [1, 1] instead
        lin.domain.extend([1, 1])
        return
    lin.vars.extend(cols)
    lin.coeffs.extend(coeffs)
    lin.domain.extend([lo, hi])


def serve() -> None:
    """Answer build / objective / row / solve requests until "quit" or end of input."""
    try:
        import ortools
        from ortools.sat.python import cp_model
    except Exception as exc:
        reply(("error", f"cannot import OR-Tools CP-SAT: {exc!r}"))
        return
    reply(("ok", getattr(ortools, "__version__", "")))
    model = cp_model.CpModel()
    proto = model.proto
    inp = sys.stdin.buffer
    while True:
        try:
            msg = pickle.load(inp)
        except EOFError:
            break
        try:
            kind = msg[0]
            if kind == "quit":
                break
            if kind == "build":
                _, lb, ub, indptr, indices, data, rlo, rhi = msg
                for lo, hi in zip(lb, ub, strict=True):
                    proto.variables.add().domain.extend([lo, hi])
                for i, (lo, hi) in enumerate(zip(rlo, rhi, strict=True)):
                    s, e = indptr[i], indptr[i + 1]
                    add_linear(proto, indices[s:e], data[s:e], lo, hi)
                reply(("ok", None))
            elif kind == "objective":
                _, cols, coeffs, sign = msg
                model.clear_objective()
                o = proto.objective
                o.vars.extend(cols)
                o.coeffs.extend(coeffs)
                o.scaling_factor = float(sign)
                reply(("ok", None))
            elif kind == "row":
                _, cols, coeffs, lo, hi = msg
                add_linear(proto, cols, coeffs, lo, hi)
                reply(("ok", None))
            elif kind == "solve":
                reply(("ok", solve(cp_model, model, *msg[1:])))
            else:
                reply(("error", f"unknown request {kind!r}"))
        except Exception:
            reply(("error", traceback.format_exc()))


def solve(cp_model: Any, model: Any, params: dict[str, Any], hint: list[int] | None) -> tuple:
    """One solve: (status name, solution or None, objective, bound, seconds, note)."""
    proto = model.proto
    model.clear_hints()
    if hint is not None:
        proto.solution_hint.vars.extend(range(len(hint)))
        proto.solution_hint.values.extend(hint)
    solver = cp_model.CpSolver()
    for key, value in params.items():
        setattr(solver.parameters, key, value)
    t0 = time.perf_counter()
    code = solver.solve(model)
    seconds = time.perf_counter() - t0
    name = solver.status_name(code)
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        sol = list(solver.response_proto.solution)
        obj, bound = solver.objective_value, solver.best_objective_bound
    else:
        sol, obj, bound = None, None, None
    note = model.validate() if code == cp_model.MODEL_INVALID else ""
    return name, sol, obj, bound, seconds, note


if __name__ == "__main__":
    serve()
