"""Benchmark harness: allocator against the plain PuLP baseline, the LP bound and OR-Library GAP.

Usage: ``python -m benchmarks.run [--suite NAME] [--sizes A,B] [--quick] [--out FILE]``

Suites (benchmarks/suites.py): ``city`` (1,000 and 2,000 enterprises), ``scale`` (5,000,
20,000 and 100,000), ``hidden`` (issue 21: cities of benchmarks/othergen.py against the
baseline), ``demo`` (instances/k_city), ``large`` (othergen cities of 5,000-20,000 at the
default time limit), ``rules`` (othergen cities with one rule the province path does not
restore), ``backends`` (every backend on 120-enterprise cities), ``gap``
(OR-Library gap1-gap12 and gapa-gapd) and ``all``. ``--quick``: one tiny generated instance
and the first problem of gap1.

Every measured run is a fresh child process (benchmarks/harness.py, the jobs in
benchmarks/jobs.py); the tables (benchmarks/report.py) go to stdout and to a markdown file
(``benchmarks/results.md`` by default, ``benchmarks/out/results-quick.md`` with ``--quick``),
the raw per-run records next to the instances (``benchmarks/out/<report name>.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import REPO, run_one, say
from benchmarks.report import machine_facts, render, write_report
from benchmarks.suites import GAP_FILES, QUICK, SEED, bench_case, bench_gap, cases, suite_cases

DEFAULT_MD = REPO / "benchmarks" / "results.md"
SUITES = ["city", "scale", "hidden", "demo", "large", "rules", "backends", "gap", "all"]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites, print the report and write it (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=SUITES, default=None,
                   help="default all, or only what --sizes / --gap-sets name")
    p.add_argument("--quick", action="store_true",
                   help="one tiny generated instance and one GAP problem (smoke run)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"markdown report (default {DEFAULT_MD.relative_to(REPO)}, "
                        "with --quick benchmarks/out/results-quick.md)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--sizes", default=None,
                   help="comma list of instance names to run instead of the suite's: "
                        + ", ".join(cases()))
    p.add_argument("--gap-sets", default=None, help="comma list, e.g. gap1,gapd")
    p.add_argument("--time-limit", type=float, default=None,
                   help="allocator time limit for every instance (default per instance)")
    p.add_argument("--baseline-limit", type=float, default=None,
                   help="baseline cap for every instance (default per instance)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-lp", action="store_true", help="skip the LP relaxation bound")
    p.add_argument("--lp-limit", type=float, default=900.0,
                   help="time limit of the LP relaxation bound")
    p.add_argument("--verbose", action="store_true", help="show the allocator's progress")
    p.add_argument("--mem-cap-gb", type=float, default=harness.MEM_CAP_MB / 1024,
                   help="kill a run whose resident memory exceeds this (protects the machine)")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for instances, results and raw records (default "
                        "benchmarks/out)")
    p.add_argument("--render", default=None, metavar="JSON[,JSON...]",
                   help="only re-render the report from the raw records of earlier runs "
                        "(several: one report of all their instances, in the order given)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.one is not None:
        return run_one(args.one)

    saved_out, saved_cap = harness.OUT, harness.MEM_CAP_MB
    harness.MEM_CAP_MB = args.mem_cap_gb * 1024
    if args.work is not None:
        harness.OUT = args.work.resolve()
    try:
        return _run(args, p)
    finally:
        harness.OUT, harness.MEM_CAP_MB = saved_out, saved_cap


def _run(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    """The parent side of :func:`main`: run the suites, print and write the report."""
    quick_md = harness.OUT / "results-quick.md"
    out_md = args.out or (quick_md if args.quick else DEFAULT_MD)
    if args.render is not None:
        raws = [json.loads(Path(f).read_text(encoding="utf-8"))
                for f in args.render.split(",")]
        for key, value in raws[0]["args"].items():
            setattr(args, key, value)
        if len(raws) > 1:
            args.suite = "+".join(r["args"]["suite"] for r in raws)
            args.argv = ["--render", args.render]
        text = render([i for r in raws for i in r["instances"]],
                      [g for r in raws for g in r["gap"]], args,
                      [tuple(f) for f in raws[0]["facts"]], sum(r["seconds"] for r in raws))
        write_report(text, args.out or (quick_md if args.quick else DEFAULT_MD))
        return 0
    t0 = time.perf_counter()
    if args.suite is None:
        args.suite = "all" if not (args.sizes or args.gap_sets) else "custom"
    every = cases(args.seed)
    if args.sizes:
        unknown = [s for s in args.sizes.split(",") if s not in every]
        if unknown:
            p.error(f"unknown sizes {unknown}; valid: {', '.join(every)}")
        chosen = [every[s] for s in args.sizes.split(",")]
    elif args.quick:
        chosen = [QUICK] if args.suite != "gap" else []
    else:
        chosen = suite_cases(args.suite, args.seed) if args.suite != "gap" else []
    if args.gap_sets:
        gap_files = args.gap_sets.split(",")
        unknown = [g for g in gap_files if g not in GAP_FILES]
        if unknown:
            p.error(f"unknown GAP sets {unknown}; valid: {', '.join(GAP_FILES)}")
    elif args.suite in ("gap", "all"):
        gap_files = ["gap1"] if args.quick else list(GAP_FILES)
    else:
        gap_files = []

    recs = [bench_case(c, args) for c in chosen]
    gap_rows = bench_gap(gap_files, args.quick) if gap_files else []
    facts, seconds = machine_facts(), time.perf_counter() - t0
    text = render(recs, gap_rows, args, facts, seconds)
    write_report(text, out_md)
    harness.OUT.mkdir(parents=True, exist_ok=True)
    raw = harness.OUT / f"{out_md.stem}.json"
    record = {"args": {"suite": args.suite, "quick": args.quick, "seed": args.seed,
                       "argv": args.argv},
              "facts": facts, "seconds": seconds, "instances": recs, "gap": gap_rows}
    raw.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    say(f"wrote {out_md} and {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
