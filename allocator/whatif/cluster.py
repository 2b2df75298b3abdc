"""A Dask distributed cluster as run_all's executor (`--scheduler tcp://HOST:PORT`).

Optional: `distributed` is imported only here, only when a scheduler is given (`pip install
'allocator[cluster]'`). Tasks and their inputs (instance tables, eligibility) are pickled by
the client and sent to the workers, which need allocator installed at the same version (the
client checks); results come back to the client, which writes every folder itself. A worker
that dies mid-task has its task rerun on another worker by the scheduler (up to its
`allowed-failures`, then the task fails). Events a task emits (progress) travel as Dask
worker events on a topic of this run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from allocator.core.errors import UsageError
from allocator.whatif import pool

T = TypeVar("T")
R = TypeVar("R")

#: seconds to wait for the scheduler to answer and for a first worker to join
CONNECT_TIMEOUT = 30.0
ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError("a Dask scheduler was given but Dask is not installed here; install "
                         "the cluster extra: pip install 'allocator[cluster]'") from None
    return distributed


def worker_facts() -> dict[str, Any]:
    """What a worker must share with the client: allocator's version (run on each worker)."""
    from allocator.core.version import __version__
    from allocator.pipeline.threads import default_threads

    return {"allocator": __version__, "cores": default_threads(),
            "host": socket.gethostname(), "pid": os.getpid()}


def _dask_call(fn: Callable[[T], R], k: int, task: T, topic: str) -> R:
    """A task on a Dask worker: its events go to the run's topic, its start event first."""
    from distributed import get_worker

    from allocator.pipeline.threads import default_threads

    worker = get_worker()
    # a solve may spawn a guarded child (solvers/highs_child); Dask's worker processes are
    # daemonic, which multiprocessing forbids to have children
    multiprocessing.current_process()._config["daemon"] = False  # type: ignore[attr-defined]
    pool._LOCAL.sink = lambda event: worker.log_event(topic, _plain(event))
    pool._LOCAL.worker = worker.address
    pool._LOCAL.threads = max(1, default_threads() // max(1, worker.state.nthreads))
    try:
        pool.emit({pool.START: k, "worker": worker.address})
        return fn(task)
    finally:
        pool._LOCAL.sink = None
        pool._LOCAL.worker = None
        pool._LOCAL.threads = None


def _plain(event: Any) -> Any:
    """An event as msgpack takes it (Dask worker events): numpy numbers as Python ones."""
    return json.loads(json.dumps(event, default=lambda o: o.item() if hasattr(o, "item")
                                 else str(o)))


class DaskExecutor:
    """run_all's tasks as futures on a Dask distributed cluster."""

    name = "dask"
    remote = True

    def __init__(self, scheduler: Any) -> None:
        distributed = _distributed()
        self.own_client = not isinstance(scheduler, distributed.Client)
        if self.own_client:
            address = str(scheduler)
            try:
                self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT,
                                                 set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {address} ({exc}); "
                                 "start one with `dask scheduler` and give its address, e.g. "
                                 "tcp://10.0.0.5:8786") from None
        else:
            self.client = scheduler
        self.address = self.client.scheduler.address
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            self.close()
            raise UsageError(f"the Dask scheduler at {self.address} has no worker; start "
                             f"some with `dask worker {self.address}`") from None
        self.check_workers()

    @property
    def slots(self) -> int:
        """Worker threads in the cluster now (tasks it runs at once)."""
        return max(1, sum(self.client.nthreads().values()))

    def check_workers(self) -> dict[str, Any]:
        """Each worker's facts; UsageError when one runs another allocator version."""
        from allocator.core.version import __version__

        facts = self.client.run(worker_facts)
        other = {addr: f["allocator"] for addr, f in facts.items()
                 if f["allocator"] != __version__}
        if other:
            raise UsageError(f"Dask workers run another allocator version than this client "
                             f"({__version__}): " + ", ".join(f"{a} has {v}" for a, v in
                                                              sorted(other.items()))
                             + "; install the same version everywhere")
        return facts

    def describe(self) -> dict[str, Any]:
        info = self.client.scheduler_info()
        workers = info.get("workers", {})
        return {"executor": self.name, "scheduler": self.address, "slots": self.slots,
                "workers": sorted(workers)}

    def run(self, fn: Callable[[T], R], tasks: Sequence[T],
            on_result: Callable[[int, R], None] | None = None,
            on_event: Callable[[Any], None] | None = None,
            on_start: Callable[[int, str], None] | None = None,
            on_error: Callable[[int, BaseException], R] | None = None) -> list[R]:
        """Every task as a future; results in task order (see pool.run_all)."""
        run_id = uuid.uuid4().hex[:12]
        topic = f"allocator-{run_id}"
        inbox: queue.Queue = queue.Queue()
        sink = pool.split_start(on_event, on_start)
        self.client.subscribe_topic(topic, lambda ev: inbox.put(ev[1]))
        name = getattr(fn, "__name__", "task")
        futures = [self.client.submit(_dask_call, fn, k, t, topic, pure=False,
                                      key=f"allocator-{name}-{run_id}-{k}")
                   for k, t in enumerate(tasks)]
        index = {f.key: k for k, f in enumerate(futures)}
        results: dict[int, R] = {}
        try:
            pending = set(futures)
            while pending:
                _drain(inbox, sink)
                done = [f for f in pending if f.done()]
                if not done:
                    time.sleep(0.2)
                for f in done:
                    pending.discard(f)
                    k = index[f.key]
                    try:
                        results[k] = f.result()
                    except Exception as exc:
                        if on_error is None:
                            raise
                        results[k] = on_error(k, exc)
                    _drain(inbox, sink)
                    if on_result is not None:
                        on_result(k, results[k])
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.cancel(futures, force=True)
            raise
        finally:
            time.sleep(0.2)  # events logged just before a task ended
            _drain(inbox, sink)
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(topic)
        return [results[k] for k in range(len(tasks))]

    def signal(self) -> DaskSignal:
        return DaskSignal(f"allocator-signal-{uuid.uuid4().hex[:12]}", self.client)

    def close(self) -> None:
        if self.own_client:
            with contextlib.suppress(Exception):
                self.client.close()


class DaskSignal:
    """A DaskExecutor's Signal: a Dask distributed Event, set by the client and read by a
    task on any worker (through the worker's own client)."""

    def __init__(self, name: str, client: Any = None) -> None:
        self.name, self._client = name, client

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}  # a worker reads it through its own client

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self._client = state["name"], None

    def _event(self) -> Any:
        from distributed import Event

        return Event(self.name, client=self._client)

    def set(self) -> None:
        self._event().set()

    def is_set(self) -> bool:
        try:
            return bool(self._event().is_set())
        except (OSError, TimeoutError, ValueError):
            return False  # no scheduler to ask (not on a worker): never set


def _drain(inbox: queue.Queue, sink: Callable[[Any], None]) -> None:
    while True:
        try:
            event = inbox.get_nowait()
        except queue.Empty:
            return
        sink(event)


def open_executor(scheduler: Any = None, jobs: int = 1) -> pool.Executor:
    """The executor for a run: a Dask cluster when `scheduler` (an address such as
    tcp://HOST:8786, or a distributed.Client) is given, else this machine's pool of `jobs`
    processes."""
    if scheduler is None or (isinstance(scheduler, str) and not scheduler.strip()):
        return pool.LocalPool(jobs)
    return DaskExecutor(scheduler.strip() if isinstance(scheduler, str) else scheduler)
