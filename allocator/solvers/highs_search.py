"""Neighbourhood search by district on a held level, where HiGHS's own search stalls.

On a 1,500-enterprise city's quality level HiGHS's root rounding heuristics take 5-30 s a round,
while a sub-MIP over the kernel (LP support, the plan, zero reduced costs) plus one district's
columns of smallest |reduced cost| solves in seconds and improves the plan (docs/tuning-log.md,
"district search").
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from allocator.solvers import highs_child
from allocator.solvers.base import Status
from allocator.solvers.highs_child import GUARD_GRACE, await_child
from allocator.solvers.highs_core import INTERRUPT_GRACE, HighsModel

SEARCH_EXTRA = 600  # columns of one district added to the kernel
SEARCH_GAP = 0.0  # a sub-MIP's gap: each looks for its neighbourhood's best within its time
SEARCH_SUB_LIMIT = 2.0  # seconds for the first district sub-MIP
SEARCH_SUB_LIMIT_MAX = 8.0  # doubled after each sub-MIP that ends on its limit, up to this
SEARCH_SHARE = 0.85  # share of the level's time left after the first sub-MIP
SEARCH_MIN_RUN = 0.3  # a sub-MIP shorter than this is not started
#: no district search where its kernel and the plan free at least this share of the integer
#: columns: each district's sub-MIP is then the whole MIP cut short and started again. The
#: province path's class models free 81-96 % (hidden-10k-s301's coverage level 96 %: three
#: districts' sub-MIPs in 16 s, nothing found, where the full MIP from the same plan found
#: 8 more units served in 11-16 s); k_city's quality level frees 20 % (docs/tuning-log.md)
SEARCH_MAX_FREE_SHARE = 0.9


def kernel_of(session: HighsModel, x_lp: np.ndarray, dual: np.ndarray) -> np.ndarray:
    """The columns every district's sub-MIP frees: the LP's support and the columns of
    zero reduced cost (as good as the LP's)."""
    return session.integer & ((np.abs(x_lp - session.lb) > 1e-9) | (np.abs(dual) <= 1e-9))


def too_wide(session: HighsModel, x: np.ndarray, x_lp: np.ndarray, dual: np.ndarray) -> bool:
    """Whether the kernel and the plan x free SEARCH_MAX_FREE_SHARE of the integer columns
    or more (then the district search is skipped)."""
    n = int(np.count_nonzero(session.integer))
    free = (kernel_of(session, x_lp, dual) | (x > session.lb + 1e-9)) & session.integer
    return bool(n > 0 and np.count_nonzero(free) >= SEARCH_MAX_FREE_SHARE * n)


def district_search(session: HighsModel, x: np.ndarray, obj: float, x_lp: np.ndarray,
                    dual: np.ndarray, limit: float, mip_gap: float) -> tuple[np.ndarray, float]:
    """The plan improved one district at a time (see search_by_group), or x itself.

    On a large model the search runs in one child process killed at its deadline, the
    improving plans sent back as found; a small one runs here.
    """
    groups = session.groups
    assert groups is not None  # searched only on models with districts (group_count >= 2)
    kernel = kernel_of(session, x_lp, dual)
    cand = np.flatnonzero(session.integer & ~kernel & (groups >= 0))
    order = cand[np.lexsort((np.abs(dual[cand]), groups[cand]))]
    ranked = np.split(order, np.flatnonzero(np.diff(groups[order])) + 1)
    ranked = [r for r in ranked if len(r)]
    # a district's promise: how far the plan's objective there is from the LP's
    sign = 1.0 if session.sense == "max" else -1.0
    has = groups >= 0
    by_group = np.bincount(groups[has], weights=sign * session.costs[has] * (x_lp - x)[has],
                           minlength=int(groups.max()) + 1)
    promise = np.array([by_group[groups[r[0]]] for r in ranked])
    # a pass gaining less than the level's gap is not worth another: the full MIP gets
    # the time (on city-1k it proves the level; the neighbourhoods never could)
    search: dict[str, Any] = {"kernel": kernel, "ranked": ranked, "x": x, "obj": obj,
                              "limit": limit, "mip_gap": SEARCH_GAP, "promise": promise,
                              "min_gain": mip_gap * max(1.0, abs(obj))}
    if session.n < highs_child.GUARD_MIN_COLUMNS:
        return search_by_group(session, **search)
    if limit < highs_child.GUARD_MIN_RUN + SEARCH_SUB_LIMIT:
        return x, obj  # not even one sub-MIP would run in a child started now
    payload = session.payload()
    payload.update(search)
    out, latest, _ = await_child(_child_search, payload, limit + GUARD_GRACE)
    if out is not None:
        return out
    return (latest[0], latest[1]) if latest is not None else (x, obj)


def search_by_group(session: HighsModel, kernel: np.ndarray, ranked: list[np.ndarray],
                    x: np.ndarray, obj: float, limit: float, mip_gap: float,
                    promise: np.ndarray | None = None, min_gain: float = 0.0,
                    send=None) -> tuple[np.ndarray, float]:
    """Improve plan x group by group (district by district) within `limit` seconds.

    Each sub-MIP frees the kernel, the plan's own columns and the group's SEARCH_EXTRA
    columns in `ranked` (smallest |reduced cost| first), keeps every other integer column at
    its lower bound, and starts from the best plan so far, so it never returns a worse one.
    Groups are visited in order of `promise` (most first), e.g. how far the plan is below
    the LP in each district. The search ends after a pass over all groups that gains no
    more than `min_gain` (the full MIP may then prove what the neighbourhoods cannot), or at
    the time limit. `send(x, obj)` receives each improving plan.
    """
    t_end = time.perf_counter() + limit
    sign = 1.0 if session.sense == "max" else -1.0
    lb, ub, integer = session.lb, session.ub, session.integer
    order = np.arange(len(ranked)) if promise is None else np.argsort(-promise, kind="stable")
    outer_deadline, sub_limit = session.deadline, SEARCH_SUB_LIMIT
    try:
        gained = True
        while gained:
            gained, pass_start = False, obj
            for g in order:
                left = t_end - time.perf_counter()
                if left < SEARCH_MIN_RUN:
                    return x, obj
                free = kernel | (x > lb + 1e-9)
                free[ranked[g][:SEARCH_EXTRA]] = True
                shut = integer & ~free
                sub_ub = ub.copy()
                sub_ub[shut] = lb[shut]
                run_limit = min(sub_limit, left)
                session.set_bounds(lb, sub_ub)
                session.deadline = min(outer_deadline,
                                       time.perf_counter() + run_limit + INTERRUPT_GRACE)
                try:
                    res = session.run(run_limit, mip_gap, x)
                finally:
                    session.set_bounds(lb, ub)
                if res.status is not Status.OPTIMAL:
                    # the neighbourhood was not searched through in time: give the next more
                    sub_limit = min(2.0 * sub_limit, SEARCH_SUB_LIMIT_MAX)
                if not res.status.has_solution:
                    continue
                y = np.asarray(res.x, dtype=float).copy()
                y[integer] = np.round(y[integer])
                val = float(session.costs @ y)
                if sign * (val - obj) > 1e-9 * max(1.0, abs(obj)):
                    x, obj = y, val
                    if send is not None:
                        send(x, obj)
                if session.reached_target(obj):
                    return x, obj
            gained = sign * (obj - pass_start) > min_gain
        return x, obj
    finally:
        session.deadline = outer_deadline


def _child_search(payload: dict, conn) -> None:
    """search_by_group in a child process: each improving plan is sent as it is found."""
    session = HighsModel.from_payload(payload)
    x, obj = search_by_group(
        session, payload["kernel"], payload["ranked"], payload["x"], payload["obj"],
        payload["limit"], payload["mip_gap"], payload["promise"], payload["min_gain"],
        send=lambda x, obj: conn.send(("incumbent", x, obj, None)))
    conn.send(("done", x, obj))
    conn.close()
