"""Batch scaling: one batch of generated cities on a Dask LocalCluster of 1 and of 2 workers.

Usage: ``python -m benchmarks.batch_scaling [--cities 8] [--enterprises 150] [--rounds 2]
[--out benchmarks/results-batch.md]``

It generates the cities (allocator generate, seeds 1..N), writes a manifest that sweeps each
over three budgets around its policy budget, and runs the same batch on a LocalCluster of
one worker and of two (one thread each), alternating 1, 2, 2, 1, ... so both see the same
load; every run must give the same batch.csv (apart from timings and workers). It writes the
wall times, the speed-up and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

import allocator
from benchmarks.report import machine_section, md_table

REPO = Path(__file__).resolve().parents[1]


def make_batch(root: Path, cities: int, enterprises: int, time_limit: float) -> Path:
    """N generated cities and a manifest sweeping each over 0.6, 1.0 and 1.4 x its budget."""
    lines = ["runs:"]
    for seed in range(1, cities + 1):
        inst = allocator.generate(enterprises, max(8, enterprises // 10), 4, seed=seed,
                                  out=root / f"city{seed}")
        b = inst.policy.budget_total
        lines += [f"  - instance: city{seed}",
                  f"    budgets: [{0.6 * b:.0f}, {b:.0f}, {1.4 * b:.0f}]"]
    lines.append(f"time_limit: {time_limit}")
    (root / "batch.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "batch.yaml"


def run_on(workers: int, manifest: Path, out: Path) -> tuple[float, pd.DataFrame]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=50) as cluster, \
            Client(cluster, set_as_default=False) as client:
        t0 = time.perf_counter()
        result = allocator.batch(manifest, out, scheduler=client, force=True)
        return time.perf_counter() - t0, result.table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", type=int, default=8)
    p.add_argument("--enterprises", type=int, default=150)
    p.add_argument("--time-limit", type=float, default=30)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results-batch.md"))
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="batch-scaling-"))
    manifest = make_batch(root, args.cities, args.enterprises, args.time_limit)
    loads = [os.getloadavg()[0]]
    times: dict[int, list[float]] = {1: [], 2: []}
    tables = []
    order = [w for r in range(args.rounds) for w in ((1, 2) if r % 2 == 0 else (2, 1))]
    for k, workers in enumerate(order):
        print(f"run {k + 1}/{len(order)}: {workers} worker(s) ...", flush=True)
        sec, table = run_on(workers, manifest, root / f"out{k}")
        times[workers].append(sec)
        tables.append(table.drop(columns=["seconds", "worker"]))
        loads.append(os.getloadavg()[0])
    # points proven optimal in every run must be the same in every run; a point that ends at
    # its time limit keeps whatever plan its solve had found by then
    cols = ["instance", "budget", "status", "coverage", "quality", "cost"]
    proven = pd.concat([t["status"] == "optimal" for t in tables], axis=1).all(axis=1)
    same = all(t.loc[proven, cols].equals(tables[0].loc[proven, cols]) for t in tables[1:])
    n_proven_all = int(proven.sum())
    t1 = statistics.mean(times[1])
    points = len(tables[0])
    n_proven = int((tables[0]["status"] == "optimal").sum())
    rows = [[w, ", ".join(f"{x:.1f}" for x in times[w]), f"{statistics.mean(times[w]):.1f}",
             f"{t1 / statistics.mean(times[w]):.2f}"] for w in (1, 2)]
    text = (
        "# Batch scaling (issue 22)\n\n"
        f"Produced by `python -m benchmarks.batch_scaling --cities {args.cities} --enterprises "
        f"{args.enterprises} --time-limit {args.time_limit:g} --rounds {args.rounds}`: "
        f"{args.cities} generated cities (seeds 1-{args.cities}, {args.enterprises} "
        f"enterprises, 4 districts), each swept over 0.6, 1.0 and 1.4 x its policy budget "
        f"({points} points, {n_proven} proven optimal in the first run), on a Dask "
        f"LocalCluster of 1 and of 2 workers (one thread each), run in the order {order}. "
        "1-min load average "
        + ", ".join(f"{x:.2f}" for x in loads)
        + " before and after each run (2 cores shared with other work).\n\n"
        + md_table(["workers", "wall s (each run)", "mean s", "speed-up"], rows)
        + f"\n\nPoints proven optimal in every run: {n_proven_all} of {points}; the same status, "
        f"served weight, quality and cost in every run: {same}. The other points end at their "
        "time limit, with whatever plan their solve had found by then.\n\n"
        + machine_section()
        + "\n")
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} (raw outputs in {root})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
