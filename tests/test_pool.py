"""The local process pool (whatif/pool.py): its processes serve several runs, and a run
returns only once every event of its tasks has arrived."""

from __future__ import annotations

import os

from allocator.whatif.pool import LocalPool, emit, run_all


def events_then_pid(n: int) -> int:
    """A task: n progress events, then the process it ran in."""
    for k in range(n):
        emit({"event": k})
    return os.getpid()


def test_a_local_pool_keeps_its_processes_between_runs():
    pool = LocalPool(2)
    pids: set[int] = set()
    try:
        for _ in range(3):
            pids |= set(pool.run(events_then_pid, [1, 1, 1]))
    finally:
        pool.close()
    # a pool per run would have started at least one new process each time
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def test_every_event_of_a_run_arrives_before_it_returns():
    pool = LocalPool(2)
    seen: list[dict] = []
    try:
        for run in range(1, 4):
            pool.run(events_then_pid, [200, 200, 200], on_event=seen.append)
            assert len(seen) == 600 * run  # none left behind for the next run to receive
    finally:
        pool.close()
    assert all(set(e) == {"event"} for e in seen)  # start and end markers stay inside


def test_one_off_runs_and_one_job_run_here_or_on_their_own_pool():
    assert run_all(events_then_pid, [0, 0], 1) == [os.getpid()] * 2
    seen: list[dict] = []
    pids = run_all(events_then_pid, [50, 50], 2, on_event=seen.append)
    assert len(seen) == 100 and os.getpid() not in pids


def quick_or_wait(task: tuple) -> bool:
    """A task: ("quick",) returns at once; ("wait", signal) waits up to 60 s for the signal
    and says whether it saw it set."""
    import time

    if task[0] == "quick":
        return True
    signal, end = task[1], time.monotonic() + 60.0
    while not signal.is_set():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_a_signal_set_by_the_client_reaches_a_running_task():
    """A run's signal, set in on_result as one task ends, is seen by a task still running in
    the other process (a sweep's early chain stops so); a fresh signal is unset, and a later
    one is not set by an earlier one."""
    pool = LocalPool(2)
    try:
        first = pool.signal()
        assert not first.is_set()

        def ended(k: int, _result: bool) -> None:
            if k == 0:
                first.set()

        assert pool.run(quick_or_wait, [("quick",), ("wait", first)], on_result=ended) \
            == [True, True]
        assert first.is_set()
        later = pool.signal()
        assert not later.is_set()
        # inline (one job) the signal is the same counter, read in this process
        here = LocalPool(1)
        sig = here.signal()
        assert here.run(quick_or_wait, [("quick",), ("wait", sig)],
                        on_result=lambda k, _r: sig.set() if k == 0 else None) == [True, True]
    finally:
        pool.close()
