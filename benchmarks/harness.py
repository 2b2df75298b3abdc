"""Measured runs in fresh child processes: wall timeouts, memory caps, peak memory.

Every measured run is ``python -m benchmarks.run --one JOB``: its peak memory is its own
(``os.wait4`` rusage), a runaway solve is killed at its wall timeout or above the memory cap
without stopping the harness, and a killed run still reports the phases it finished (read
from the ``.partial`` file the job keeps on disk). The jobs themselves are in jobs.py.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: where instances, results, job records and raw reports go (--work changes it)
OUT = REPO / "benchmarks" / "out"
#: a child whose process group holds more resident memory than this is killed (--mem-cap-gb)
MEM_CAP_MB = 10 * 1024.0


def shared_benchmarks() -> Path:
    """``/work/shared/benchmarks``, located relative to the repository."""
    return Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def say(msg: str) -> None:
    """Harness progress on stderr (stdout carries the tables)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(job_text: str) -> int:
    """Child entry point: run the job, write its result JSON (an error record on failure)."""
    from benchmarks.jobs import JOBS

    job = json.loads(job_text)
    t0 = time.perf_counter()
    try:
        out = JOBS[job["kind"]](job)
    except Exception as exc:  # reported as an error row, the harness goes on
        out = {"error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=8)}
    out["wall_seconds"] = time.perf_counter() - t0
    Path(job["result"]).write_text(json.dumps(out, default=str), encoding="utf-8")
    return 0


def proc_stats() -> list[tuple[int, int, int, int]]:
    """(pid, parent pid, process group, rss in bytes) of every process, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            # stat fields 4, 5 and 24: parent, process group, rss in pages
            out.append((int(entry.name), int(fields[1]), int(fields[2]),
                        int(fields[21]) * page))
        except (OSError, ValueError, IndexError):
            continue
    return out


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in process group pgid (the child and its helpers)."""
    return sum(rss for _pid, _ppid, group, rss in proc_stats() if group == pgid) / 2**20


def run_child(job: dict, timeout: float) -> dict:
    """Run ``job`` in a fresh process; its result dict plus ``peak_mb`` (whole child),
    ``child_seconds`` and the load average when it started; ``error`` is set when it failed
    or was killed at ``timeout`` or above the memory cap (``MEM_CAP_MB``, resident memory of
    its process group)."""
    jobs_dir = OUT / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    result = jobs_dir / f"{job['id']}.json"
    partial = Path(str(result) + ".partial")
    result.unlink(missing_ok=True)
    partial.unlink(missing_ok=True)
    job = {**job, "result": str(result)}
    cmd = [sys.executable, "-m", "benchmarks.run", "--one", json.dumps(job)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            start_new_session=True)
    timed_out = False
    over_mb = None
    next_mem = 0.0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now >= next_mem:
                next_mem = now + 0.25
                rss = group_rss_mb(proc.pid)
                if rss > MEM_CAP_MB:
                    over_mb = rss
            if over_mb is not None or now - t0 > timeout:
                timed_out = over_mb is None
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    except BaseException:  # Ctrl-C or similar: never leave a solver running behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {}
    if result.exists():
        out = json.loads(result.read_text(encoding="utf-8"))
    if (timed_out or over_mb is not None) and partial.exists():
        out["partial"] = json.loads(partial.read_text(encoding="utf-8"))
    partial.unlink(missing_ok=True)
    if timed_out:
        out["error"] = f"killed at the {timeout:.0f} s wall timeout"
        out["timed_out"] = True
    elif over_mb is not None:
        out["error"] = (f"killed above the memory cap ({over_mb / 1024:.1f} GB resident > "
                        f"{MEM_CAP_MB / 1024:.1f} GB)")
        out["memory_capped"] = True
    elif not out:
        out["error"] = f"child exited with code {proc.returncode} and no result"
    out["peak_mb"] = usage.ru_maxrss / 1024.0
    out["load_at_start"] = load
    out["load_at_end"] = os.getloadavg()[0]
    out["child_seconds"] = secs
    return out


def run_check(instance: Path, results: Path, timeout: float) -> dict:
    """`allocator check INSTANCE RESULTS` as a subprocess: exit 0 means every rule holds."""
    cmd = [sys.executable, "-m", "allocator.cli", "check", str(instance), str(results)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"check": f"timeout ({timeout:.0f} s)"}
    secs = time.perf_counter() - t0
    verdict = "ok" if p.returncode == 0 else f"FAIL (exit {p.returncode})"
    tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
    return {"check": verdict, "check_seconds": secs, "check_output": "\n".join(tail)}


def report_run(name: str, who: str, r: dict) -> None:
    """One line on stderr per finished run."""
    if r.get("error"):
        say(f"{name}: {who} ERROR {r['error']}")
    else:
        say(f"{name}: {who} {r.get('status')} coverage={r.get('coverage')} "
            f"quality={r.get('quality')} cost={r.get('cost')} in "
            f"{r.get('total_seconds', 0):.1f} s, peak {r.get('peak_mb', 0):.0f} MB")
