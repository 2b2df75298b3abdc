"""Per-phase profile of one solve: seconds and peak resident memory of each phase.

Usage: ``python -m benchmarks.profile INSTANCE [--time-limit S] [--out RESULTS] [--check]``

A sampling thread reads the resident memory of this process and of its children (the HiGHS
guard child included) every 20 ms; each progress message of `solve_instance` that ends a phase
closes the phase, so every phase gets its own peak (not the monotone ru_maxrss). `--check`
then runs `allocator check` in a fresh process and reports its time and peak memory too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.harness import proc_stats


def tree_rss_mb(root: int) -> float:
    """Resident memory of root and all its descendants, in MB (from /proc)."""
    stats = proc_stats()
    parent = {pid: ppid for pid, ppid, _g, _r in stats}
    rss = {pid: r for pid, _p, _g, r in stats}
    keep = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return sum(rss.get(pid, 0) for pid in keep) / 2**20


class PhaseMeter:
    """Seconds and peak RSS (process tree) per named phase, sampled in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.phases: list[dict] = []
        self._peak = 0.0
        self._t = time.perf_counter()
        self._t0 = self._t
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            rss = tree_rss_mb(me)
            with self._lock:
                self._peak = max(self._peak, rss)
            time.sleep(self.interval)

    def mark(self, name: str, note: str = "") -> None:
        """Close the current phase under `name`."""
        rss = tree_rss_mb(os.getpid())
        now = time.perf_counter()
        with self._lock:
            peak = max(self._peak, rss)
            self.phases.append({"phase": name, "seconds": round(now - self._t, 2),
                                "peak_mb": round(peak, 0), "end_mb": round(rss, 0),
                                "note": note})
            self._peak = rss
            self._t = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> float:
        return time.perf_counter() - self._t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    p.add_argument("instance", type=Path)
    p.add_argument("--time-limit", type=float, default=240.0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--check", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="write the phases here")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    from allocator.data.validation import load_instance
    from allocator.output.results_folder import write_results
    from allocator.pipeline.solve import solve_instance

    meter = PhaseMeter()
    inst = load_instance(args.instance)
    meter.mark("load")
    level_end = re.compile(r"level (\d+) \((\w+)\): (?!solving|no plan yet)")

    def progress(msg: str) -> None:
        if args.verbose:
            print(f"  [{meter.total:7.1f} s] {msg}", file=sys.stderr, flush=True)
        if msg.startswith("eligibility:") and "eligible triples" in msg:
            meter.mark("eligibility", msg)
        elif msg.startswith("build:"):
            meter.mark("build", msg)
        elif msg.startswith("colgen:") and "done" in msg:
            meter.mark("colgen LP", msg)
        else:
            m = level_end.match(msg)
            if m:
                meter.mark(f"level {m.group(1)} ({m.group(2)})", msg)

    res = solve_instance(inst, time_limit=args.time_limit, progress=progress)
    meter.mark("results tables")
    if args.out is not None:
        write_results(res, args.out)
        meter.mark("write")
    total = meter.total
    meter.stop()
    s = res.summary
    report = {"instance": str(args.instance), "status": s["status"],
              "coverage": s.get("coverage"), "bound": s.get("bound"),
              "quality": s.get("quality"), "cost": s.get("cost"),
              "levels": s.get("levels"), "counts": s.get("counts"),
              "phases": meter.phases, "total_seconds": round(total, 1),
              "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
              "large": s.get("large")}
    if args.check and args.out is not None:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "allocator.cli", "check",
                                 str(args.instance), str(args.out)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak = 0.0
        while proc.poll() is None:  # the child's own tree (ru_maxrss would include ours)
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.05)
        out = proc.stdout.read()
        report["check"] = {"exit": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
                           "peak_mb": round(peak, 0),
                           "tail": out.strip().splitlines()[-3:]}
    for ph in report["phases"]:
        print(f"{ph['phase']:<22} {ph['seconds']:>8.2f} s  peak {ph['peak_mb']:>7.0f} MB  "
              f"end {ph['end_mb']:>7.0f} MB  {ph['note'][:70]}")
    print(f"total {report['total_seconds']} s, status {report['status']}, coverage "
          f"{report['coverage']}, bound {report['bound']}")
    if "check" in report:
        print(f"check: exit {report['check']['exit']} in {report['check']['seconds']} s, "
              f"peak {report['check']['peak_mb']} MB: {report['check']['tail']}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
