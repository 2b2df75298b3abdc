"""Large HiGHS MIPs in a child process that is killed at the deadline.

HiGHS does not look at its clock (nor call our interrupt) during root cut separation, which
ran 200 s past a 22 s limit on k_city's quality level. The child sends each improving plan as
it finds it, so a killed run still returns its best plan (feasible). The child dies with its
parent (core.processes), so a killed allocator leaves no HiGHS behind.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np

from allocator.core.processes import die_with_parent
from allocator.solvers.base import SolveResult, Status, relative_gap, settle_status
from allocator.solvers.highs_core import HighsModel

#: below this many columns a level's full MIP runs in-process (a child costs 1-2.5 s to
#: start; small models do not overrun their deadline by much)
GUARD_MIN_COLUMNS = 20_000
#: ... and a sub-MIP below this many integer columns left free by its bounds: k_city's
#: coverage sub-MIP frees 7,222 of 35,416 and needs ~25 s on a loaded machine, every second
#: of it; a full MIP after reduced-cost fixing is not counted so (c99's, 18,000 columns
#: free, overran its deadline by 18 s in-process) (docs/tuning-log.md, "Guarded child process")
GUARD_MIN_FREE = 10_000
#: seconds a child may run past its time limit before it is killed
GUARD_GRACE = 2.0
#: a child given less than this many seconds is not started when there is a start to keep:
#: starting one costs 1-2.5 s on a loaded 2-core machine, so a 0.1 s run took 2.5 s and
#: found nothing (k_city's quality level after a long coverage level)
GUARD_MIN_RUN = 1.0
#: an LP of at least this many columns with no basis to start from runs in a child: HiGHS's
#: dual simplex spent 21 s in its first iteration's ratio test (chooseFinalWorkGroupQuad)
#: on a 10,000-enterprise capped city's LP (250,440 columns), looking at no clock, so
#: a 6 s LP took 23 s and the solve ended 17 s past its limit (docs/tuning-log.md, "LPs
#: past their limit"); a child costs 1-2.5 s, so smaller LPs (k_city's 35,416 columns
#: solve in under a second) stay in-process
GUARD_LP_MIN_COLUMNS = 150_000


def run_guarded(session: HighsModel, time_limit: float, mip_gap: float,
                start: np.ndarray | None, child_limit: float | None = None,
                full: bool = False, by_size: bool = False) -> SolveResult:
    """session.run, but a large MIP runs in a child process killed at the deadline: by the
    model's size for a full MIP or with `by_size`, else by the integer columns left free.

    `child_limit` (tests only) gives the child a longer limit than the deadline.
    """
    small = session.n < GUARD_MIN_COLUMNS or (
        not (full or by_size) and session.free_integers < GUARD_MIN_FREE)
    if small or not session.mip_active:
        return session.run(time_limit, mip_gap, start, full)
    if start is not None and time_limit < GUARD_MIN_RUN:
        obj = float(session.costs @ start)
        return SolveResult(Status.FEASIBLE, np.asarray(start, dtype=float), obj, None, None,
                           0.0, "not started: too little time left (the start kept)")
    payload = session.payload()
    payload.update(time_limit=time_limit if child_limit is None else child_limit,
                   mip_gap=mip_gap, start=start, full=full)
    out, latest, seconds = await_child(_child_solve, payload, time_limit + GUARD_GRACE)
    if out is None:
        if latest is None:
            if start is None:
                return SolveResult(Status.NO_SOLUTION, None, None, None, None, seconds,
                                   "stopped at the deadline")
            # nothing better than the start was found before the kill
            obj = float(session.costs @ start)
            return SolveResult(Status.FEASIBLE, np.asarray(start, dtype=float), obj, None,
                               None, seconds, "stopped at the deadline (the start kept)")
        x, obj, bound = latest
        return SolveResult(Status.FEASIBLE, x, obj, bound, relative_gap(obj, bound),
                           seconds, "stopped at the deadline (last improving plan kept)")
    status, x, obj, bound, text = out
    gap = relative_gap(obj, bound)
    return SolveResult(settle_status(Status(status), gap, mip_gap), x, obj, bound, gap,
                       seconds, text)


def relax_guarded(session: HighsModel, time_limit: float
                  ) -> tuple[SolveResult, np.ndarray | None, tuple | None]:
    """The LP of the session's current model (its integrality off) in a child killed at the
    deadline: (result, reduced costs, basis as (column, row) status codes), the last two
    None unless the LP was solved."""
    payload = session.payload()
    payload.update(integer=np.zeros(session.n, dtype=bool), time_limit=time_limit)
    out, _, seconds = await_child(_child_relax, payload, time_limit + GUARD_GRACE)
    if out is None:
        return (SolveResult(Status.NO_SOLUTION, None, None, None, None, seconds,
                            "stopped at the deadline"), None, None)
    status, x, obj, dual, basis, text = out
    bound = obj if status == Status.OPTIMAL.value else None  # an LP's optimum is its bound
    res = SolveResult(Status(status), x, obj, bound, relative_gap(obj, bound), seconds, text)
    return res, dual, basis


def await_child(target, payload: dict, wait: float) -> tuple:
    """Run target(payload, conn) in a spawned child for at most `wait` seconds.

    Returns (the child's "done" message or None, its last "incumbent" message or None,
    seconds). A child still running at the end is killed: HiGHS may not look at its clock
    for minutes, and a killed child's improving plans were already sent.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    payload = {**payload, "parent_pid": os.getpid()}
    proc = ctx.Process(target=_receive_and_run, args=(target, child), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    child.close()
    # the model goes over our own pipe once the child runs: handed to spawn, a child that
    # died while starting (a script without a __main__ guard) left the parent blocked forever
    # writing it (spawn holds the pipe's read end until the write ends)
    try:
        parent.send(payload)
    except OSError:  # the child is gone: no result, the caller keeps its start
        proc.join()
        return None, None, time.perf_counter() - t0
    out = None
    latest = None  # the child's last improving plan: kept if the child must be killed
    end = t0 + wait
    while out is None:
        if not parent.poll(max(end - time.perf_counter(), 0.0)):
            break
        try:
            msg = parent.recv()
        except EOFError:
            break
        if msg[0] == "incumbent":
            latest = msg[1:]
        else:
            out = msg[1:]
    if proc.is_alive():
        proc.kill()
    proc.join()
    return out, latest, time.perf_counter() - t0


def _receive_and_run(target, conn) -> None:
    """In the child: read the payload the parent sends, then run target(payload, conn)."""
    try:
        payload = conn.recv()
    except EOFError:  # the parent is gone
        return
    target(payload, conn)


def _child_solve(payload: dict, conn) -> None:
    """Solve one MIP in a child process and send back (status, x, obj, bound, text)."""
    die_with_parent(payload.get("parent_pid"))  # a killed allocator leaves no solver behind
    session = HighsModel.from_payload(payload)

    def send_improving(event) -> None:
        # each better plan goes to the parent at once: if the child is killed at the
        # deadline, the parent still has the best plan found
        out = event.data_out
        bound = out.mip_dual_bound
        conn.send(("incumbent", np.array(out.mip_solution, dtype=float),
                   float(out.objective_function_value),
                   float(bound) if np.isfinite(bound) else None))

    session.h.cbMipImprovingSolution.subscribe(send_improving)
    res = session.run(payload["time_limit"], payload["mip_gap"], payload["start"],
                       payload["full"])
    conn.send(("done", res.status.value, res.x, res.objective, res.bound, res.solver_status))
    conn.close()


def _child_relax(payload: dict, conn) -> None:
    """Solve one LP in a child process and send back (status, x, obj, reduced costs,
    basis status codes, text); the last three None unless it was solved."""
    die_with_parent(payload.get("parent_pid"))
    session = HighsModel.from_payload(payload)
    res = session.run(payload["time_limit"], 0.0, None)
    dual = basis = None
    if res.status is Status.OPTIMAL:
        b = session.h.getBasis()
        dual = np.array(session.h.getSolution().col_dual)
        basis = (np.array([int(v) for v in b.col_status], dtype=np.int8),
                 np.array([int(v) for v in b.row_status], dtype=np.int8))
    conn.send(("done", res.status.value, res.x, res.objective, dual, basis,
               res.solver_status))
    conn.close()
