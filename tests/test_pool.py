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
