"""Sweep benchmark: one `allocator sweep` against the same budgets as independent single solves.

Usage: ``python -m benchmarks.sweep_bench [--instance instances/k_city] [--budgets 9e6:36e6:20]
[--jobs 2] [--out benchmarks/results-sweep.md]``

Both sides run as fresh `allocator` processes, one after the other in the same run, with the
policy's time limit per point (per single solve): the sweep once over all budgets, then one
`allocator solve --budget B` per budget. It prints and writes a table per point (status,
served weight, quality, cost and seconds of each side) and the ratio of wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from allocator.whatif.sweep import budget_label, parse_budgets
from benchmarks.report import machine_section, md_table

REPO = Path(__file__).resolve().parents[1]
ALLOCATOR = [sys.executable, "-m", "allocator.cli"]


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and exit code of one command (its output discarded)."""
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - t0, rc


def figures(summary_path: Path) -> dict:
    """status, coverage, quality and cost of one results folder (empty when missing)."""
    if not summary_path.exists():
        return {}
    s = json.loads(summary_path.read_text(encoding="utf-8"))
    return {k: s.get(k) for k in ("status", "coverage", "quality", "cost")}


def num(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instance", default=str(REPO / "instances" / "k_city"))
    p.add_argument("--budgets", default="9e6:36e6:20")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=None,
                   help="per point and per single solve (default: the policy's)")
    p.add_argument("--levels", default=None,
                   help="solver.levels for both sides, e.g. coverage,cost (default: policy)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results-sweep.md"))
    args = p.parse_args(argv)
    budgets = parse_budgets(args.budgets)
    limit = [] if args.time_limit is None else ["--time-limit", str(args.time_limit)]
    if args.levels:
        limit += ["--levels", args.levels]
    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))

    print(f"sweep of {len(budgets)} budgets, --jobs {args.jobs} ...", flush=True)
    sweep_s, sweep_rc = run(ALLOCATOR + ["sweep", args.instance, "--budgets", args.budgets,
                                         "--jobs", str(args.jobs), "--out",
                                         str(work / "sweep")] + limit)
    single_s: list[float] = []
    for b in budgets:
        print(f"single solve at {b:,.0f} ...", flush=True)
        sec, _rc = run(ALLOCATOR + ["solve", args.instance, "--budget", repr(b), "--out",
                                    str(work / "single" / budget_label(b))] + limit)
        single_s.append(sec)
    load1 = os.getloadavg()[0]

    frontier = {}
    fpath = work / "sweep" / "frontier.csv"
    if fpath.exists():
        import pandas as pd

        for row in pd.read_csv(fpath).to_dict("records"):
            frontier[round(float(row["budget"]), 2)] = row
    rows, same_cov, better_or_equal, both = [], 0, 0, 0
    for b, sec in zip(budgets, single_s, strict=True):
        sw = figures(work / "sweep" / budget_label(b) / "summary.json")
        si = figures(work / "single" / budget_label(b) / "summary.json")
        fr = frontier.get(round(b, 2), {})
        if sw.get("coverage") is not None and si.get("coverage") is not None:
            both += 1
            same_cov += abs(sw["coverage"] - si["coverage"]) < 1e-6
            better_or_equal += sw["coverage"] >= si["coverage"] - 1e-6
        rows.append([f"{b:,.0f}", sw.get("status", "-"), si.get("status", "-"),
                     num(sw.get("coverage"), 0), num(si.get("coverage"), 0),
                     num(sw.get("quality")), num(si.get("quality")),
                     num(fr.get("seconds")), f"{sec:.1f}", fr.get("how", "-")])
    total_single = sum(single_s)
    ratio = sweep_s / total_single if total_single > 0 else float("nan")
    head = (f"# Sweep benchmark\n\nProduced by `python -m benchmarks.sweep_bench --instance "
            f"{os.path.relpath(args.instance, REPO)} --budgets {args.budgets} --jobs {args.jobs}"
            + (f" --levels {args.levels}" if args.levels else "") + "`"
            f" (time limit per point: {args.time_limit or 'the policy'}). The sweep ran first, "
            f"then one `allocator solve --budget B` per point, each a fresh process, in the "
            f"same run; 1-min load average {load0:.2f} at the start, {load1:.2f} at the end "
            "(2-core machine shared with other work).\n")
    verdict = (f"\n**Sweep {sweep_s:.1f} s (exit {sweep_rc}) against {len(budgets)} single solves "
               f"{total_single:.1f} s: ratio {ratio:.2f}.** Served weight: of the {both} points "
               f"with a plan on both sides, the sweep's equals the single solve's at {same_cov} "
               f"and is at least as high at {better_or_equal}.\n")
    table = md_table(["budget", "sweep status", "single status", "sweep served",
                      "single served", "sweep quality", "single quality", "sweep point s",
                      "single s", "how the sweep got it"], rows)
    text = head + verdict + "\n" + table + "\n\n" + machine_section() + "\n"
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} (raw outputs in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
