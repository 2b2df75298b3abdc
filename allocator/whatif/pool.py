"""The one process pool of allocator's what-if runs (sweep chains, compare scenarios).

Workers are spawned (no solver state is forked) and die with the parent: each asks the kernel
for SIGKILL when its parent goes (Linux prctl), so a killed `allocator sweep` leaves no worker
behind. A task may `emit` small events (progress: one per finished budget point) that reach the
parent's `on_event` while the task still runs; what a task produces comes back as its return
value (events may arrive after the task's result).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from allocator.core.processes import die_with_parent

T = TypeVar("T")
R = TypeVar("R")

#: where `emit` sends events: the parent's callback in-process, a queue in a worker
_SINK: Callable[[Any], None] | None = None


def emit(event: Any) -> None:
    """Send an event from a running task to the parent's on_event (dropped if none)."""
    if _SINK is not None:
        _SINK(event)


def _init_worker(q: Any, parent: int) -> None:
    global _SINK
    die_with_parent(parent)
    _SINK = q.put


def run_all(fn: Callable[[T], R], tasks: Sequence[T], jobs: int = 1,
            on_result: Callable[[int, R], None] | None = None,
            on_event: Callable[[Any], None] | None = None) -> list[R]:
    """fn over the tasks, in `jobs` worker processes when more than one; results in task
    order. on_result(k, result) runs in this process as each task ends; on_event(event) for
    each event a task emits. The first failing task's exception is raised here, after the
    other workers are stopped."""
    global _SINK
    if not tasks:
        return []
    if jobs <= 1 or len(tasks) == 1:
        saved, _SINK = _SINK, on_event
        try:
            out = []
            for k, t in enumerate(tasks):
                out.append(fn(t))
                if on_result is not None:
                    on_result(k, out[-1])
            return out
        finally:
            _SINK = saved
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    results: dict[int, R] = {}
    pool = cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx,
                                  initializer=_init_worker, initargs=(q, os.getpid()))
    try:
        futures = {pool.submit(fn, t): k for k, t in enumerate(tasks)}
        pending = set(futures)
        while pending:
            _drain(q, on_event)
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for f in done:
                k = futures[f]
                results[k] = f.result()  # raises the task's exception
                _drain(q, on_event)
                if on_result is not None:
                    on_result(k, results[k])
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)  # workers exit and flush what they put on the queue
    _drain(q, on_event)
    return [results[k] for k in range(len(tasks))]


def _drain(q: Any, on_event: Callable[[Any], None] | None) -> None:
    while True:
        try:
            event = q.get_nowait()
        except queue_mod.Empty:
            return
        if on_event is not None:
            on_event(event)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop every worker now (a failed task, Ctrl-C): nothing is left running."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)
