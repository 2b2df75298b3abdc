"""The one process pool of allocator's what-if runs (sweep chains, compare scenarios, batch
tasks), and the executors behind `run_all`: this machine's pool by default, or a Dask
distributed cluster (whatif/cluster.py) when a scheduler address is given.

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
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from allocator.core.processes import die_with_parent

T = TypeVar("T")
R = TypeVar("R")

#: where `emit` sends events: the parent's callback in-process, a queue in a worker
_SINK: Callable[[Any], None] | None = None
#: per thread, where a task running in a Dask worker thread sends its events
_LOCAL = threading.local()
#: the key of the start event every task sends first (run_all's on_start)
START = "__allocator_task_start__"
#: the key of the end event a pool task sends last
END = "__allocator_task_end__"
#: seconds a run waits for a finished task's last events before returning without them
EVENT_WAIT = 10.0
#: in a pool worker: the pool's shared signal counter (LocalPool.signal)
_FLAGS: Any = None


def emit(event: Any) -> None:
    """Send an event from a running task to the parent's on_event (dropped if none)."""
    sink = getattr(_LOCAL, "sink", None) or _SINK
    if sink is not None:
        sink(event)


def current_sink() -> Callable[[Any], None]:
    """Where `emit` sends events right now, fixed: a task that runs another run_all inside
    (a batch task's sweep) reports its own progress here, not to the inner run's sink."""
    sink = getattr(_LOCAL, "sink", None) or _SINK
    return sink if sink is not None else (lambda _event: None)


def worker_name() -> str:
    """Who runs the current task: a Dask worker's address, else host:pid of this process."""
    name = getattr(_LOCAL, "worker", None)
    return name or f"{socket.gethostname()}:{os.getpid()}"


def task_threads() -> int:
    """Solver threads for a task of a remote executor, decided where it runs: the worker's
    cores shared among the tasks it runs at once."""
    from allocator.pipeline.threads import default_threads

    return getattr(_LOCAL, "threads", None) or default_threads()


class Signal(Protocol):
    """A flag the client sets and the tasks of a run read while they run (a sweep's first
    chain stops when the largest budget's solve has ended): picklable with the task."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class PoolSignal:
    """A LocalPool's Signal: number `token` of the pool's shared counter, set when the
    counter reaches it (the pool's signals are set in the order made: a later one set marks
    the earlier ones, whose runs have ended). In a worker the counter is the one its pool
    gave it at start; elsewhere (another executor) the signal is never set."""

    def __init__(self, flags: Any, token: int) -> None:
        self._flags, self.token = flags, token

    def __getstate__(self) -> dict[str, Any]:
        return {"token": self.token}  # the counter goes to workers once, at their start

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._flags, self.token = _FLAGS, int(state["token"])

    def set(self) -> None:
        if self._flags is not None:
            with self._flags.get_lock():
                self._flags.value = max(int(self._flags.value), self.token)

    def is_set(self) -> bool:
        return self._flags is not None and int(self._flags.value) >= self.token


class Executor(Protocol):
    """Where run_all's tasks run: this machine's process pool or a cluster."""

    #: a short name for summaries and batch.csv ("local", "dask")
    name: str
    #: tasks run on other processes or machines that decide their own thread count
    remote: bool

    @property
    def slots(self) -> int:
        """Tasks it runs at once."""
        ...

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_result: Callable[[int, R], None] | None,
            on_event: Callable[[Any], None] | None,
            on_start: Callable[[int, str], None] | None,
            on_error: Callable[[int, BaseException], R] | None) -> list[R]: ...

    def describe(self) -> dict[str, Any]: ...

    def signal(self) -> Signal:
        """A new flag, unset, for the tasks of a later run."""
        ...

    def close(self) -> None: ...


class LocalPool:
    """This machine's spawned process pool, `jobs` processes (in-process when 1). The
    processes start with the first run of two or more tasks and serve every later run
    until close(): a sweep's first solves and its chains share them (a spawn costs about
    0.85 s here)."""

    name = "local"
    remote = False

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))
        self._pool: cf.ProcessPoolExecutor | None = None
        self._queue: Any = None
        self._flags: Any = None  # the signals' shared counter (made once, given to workers)
        self._tokens = 0

    @property
    def slots(self) -> int:
        return self.jobs

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_result: Callable[[int, R], None] | None = None,
            on_event: Callable[[Any], None] | None = None,
            on_start: Callable[[int, str], None] | None = None,
            on_error: Callable[[int, BaseException], R] | None = None) -> list[R]:
        if not tasks:
            return []
        if self.jobs <= 1 or len(tasks) == 1:
            return _run_inline(fn, tasks, on_result, on_event, on_start, on_error)
        if self._pool is None:
            ctx = mp.get_context("spawn")
            self._queue = ctx.Queue()
            self._pool = cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                                initializer=_init_worker,
                                                initargs=(self._queue, os.getpid(),
                                                          self._shared_flags()))
        try:
            return _run_pool(self._pool, self._queue, fn, tasks, on_result, on_event,
                             on_start, on_error)
        except BaseException:
            _stop(self._pool)
            self._pool = None
            raise

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "slots": self.slots, "host": socket.gethostname()}

    def signal(self) -> PoolSignal:
        self._tokens += 1
        return PoolSignal(self._shared_flags(), self._tokens)

    def _shared_flags(self) -> Any:
        # made before the processes start (they get it at start), kept for the pool's life
        if self._flags is None:
            self._flags = mp.get_context("spawn").Value("q", 0)
        return self._flags

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _call(fn: Callable[[T], R], k: int, task: T) -> R:
    """A task in a pool worker: its start event first, then the task, then its end event
    (after every event the task sent: the parent waits for it before the run returns)."""
    emit({START: k, "worker": worker_name()})
    try:
        return fn(task)
    finally:
        emit({END: k})


def _init_worker(q: Any, parent: int, flags: Any = None) -> None:
    global _SINK, _FLAGS
    die_with_parent(parent)
    _SINK = q.put
    _FLAGS = flags


def run_all(fn: Callable[[T], R], tasks: Sequence[T], jobs: int = 1,
            on_result: Callable[[int, R], None] | None = None,
            on_event: Callable[[Any], None] | None = None,
            executor: Executor | None = None,
            on_start: Callable[[int, str], None] | None = None,
            on_error: Callable[[int, BaseException], R] | None = None) -> list[R]:
    """fn over the tasks on `executor` (default: this machine's pool of `jobs` processes,
    in-process when one); results in task order. In this process: on_start(k, worker) as
    task k starts (again if it is retried elsewhere), on_result(k, result) as it ends,
    on_event(event) for each event a task emits. A failing task's exception is raised here
    after the other tasks are stopped, or with on_error its result is on_error(k, exc)."""
    if not tasks:
        return []
    if executor is None:
        return _run_local(fn, tasks, jobs, on_result, on_event, on_start, on_error)
    return executor.run(fn, tasks, on_result, on_event, on_start, on_error)


def split_start(on_event: Callable[[Any], None] | None,
                on_start: Callable[[int, str], None] | None) -> Callable[[Any], None]:
    """An event sink passing start events to on_start and the others to on_event."""
    def sink(event: Any) -> None:
        if isinstance(event, dict) and START in event:
            if on_start is not None:
                on_start(int(event[START]), str(event.get("worker", "")))
        elif isinstance(event, dict) and END in event:
            return
        elif on_event is not None:
            on_event(event)
    return sink


def _run_local(fn: Callable[[T], R], tasks: Sequence[T], jobs: int,
               on_result: Callable[[int, R], None] | None,
               on_event: Callable[[Any], None] | None,
               on_start: Callable[[int, str], None] | None,
               on_error: Callable[[int, BaseException], R] | None) -> list[R]:
    """One run on a pool of its own (closed when the run ends)."""
    local = LocalPool(min(jobs, len(tasks)) if tasks else 1)
    try:
        return local.run(fn, tasks, on_result, on_event, on_start, on_error)
    finally:
        local.close()


def _run_inline(fn: Callable[[T], R], tasks: Sequence[T],
                on_result: Callable[[int, R], None] | None,
                on_event: Callable[[Any], None] | None,
                on_start: Callable[[int, str], None] | None,
                on_error: Callable[[int, BaseException], R] | None) -> list[R]:
    """The tasks one after the other in this process."""
    global _SINK
    saved, _SINK = _SINK, split_start(on_event, on_start)
    try:
        out: list[R] = []
        for k, t in enumerate(tasks):
            try:
                out.append(_call(fn, k, t))
            except Exception as exc:
                if on_error is None:
                    raise
                out.append(on_error(k, exc))
            if on_result is not None:
                on_result(k, out[-1])
        return out
    finally:
        _SINK = saved


def _run_pool(pool: cf.ProcessPoolExecutor, q: Any, fn: Callable[[T], R], tasks: Sequence[T],
              on_result: Callable[[int, R], None] | None,
              on_event: Callable[[Any], None] | None,
              on_start: Callable[[int, str], None] | None,
              on_error: Callable[[int, BaseException], R] | None) -> list[R]:
    """The tasks on the pool's processes; returns once every task has ended and its events
    (up to its end event) have reached on_event."""
    inner = split_start(on_event, on_start)
    ended: set[int] = set()

    def sink(event: Any) -> None:
        if isinstance(event, dict) and END in event:
            ended.add(int(event[END]))
        inner(event)

    results: dict[int, R] = {}
    futures = {pool.submit(_call, fn, k, t): k for k, t in enumerate(tasks)}
    pending = set(futures)
    while pending:
        _drain(q, sink)
        done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
        for f in done:
            k = futures[f]
            try:
                results[k] = f.result()  # raises the task's exception
            except Exception as exc:
                if on_error is None or isinstance(exc, cf.process.BrokenProcessPool):
                    raise
                results[k] = on_error(k, exc)
            _drain(q, sink)
            if on_result is not None:
                on_result(k, results[k])
    # a task's events travel apart from its result: wait for each task's end event
    deadline = time.monotonic() + EVENT_WAIT
    while len(ended) < len(tasks) and time.monotonic() < deadline:
        try:
            sink(q.get(timeout=0.05))
        except queue_mod.Empty:
            continue
    return [results[k] for k in range(len(tasks))]


def _drain(q: Any, sink: Callable[[Any], None]) -> None:
    while True:
        try:
            event = q.get_nowait()
        except queue_mod.Empty:
            return
        sink(event)


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
