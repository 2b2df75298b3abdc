"""Frontier benchmark: a coverage frontier and a full sweep against single solves, in one run.

Usage: ``python -m benchmarks.frontier_bench [--instance instances/k_city]
[--budgets 9e6:36e6:20] [--jobs 2] [--singles 3] [--before PATH] [--out
benchmarks/results-frontier.md]``

Every side runs as a fresh `allocator` process, one after the other in the same run, so the
machine's load is shared alike: `sweep --levels coverage` (the frontier), the full `sweep`
(all levels), `--singles` default single solves (`allocator solve INSTANCE`, the policy's
budget and time limit) and one single solve per budget (all levels). `--before PATH` also
runs the coverage frontier with the allocator source tree at PATH (e.g. /work/main), for a
before/after. It writes the ratios asked for (frontier / two default solves, full sweep / 20
single solves), how many frontier points have their served weight proven, and the served
weight and quality of every point on each side.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from allocator.whatif.sweep import budget_label, parse_budgets
from benchmarks.baseline import solve_baseline
from benchmarks.report import machine_section, md_table

REPO = Path(__file__).resolve().parents[1]


def allocator_cmd(source: Path | None = None) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and working folder running `allocator` from this tree or
    from `source`: `python -m` puts the working folder first on the path, before
    PYTHONPATH, so the command runs in the tree it is meant to run."""
    env = dict(os.environ)
    tree = REPO if source is None else Path(source).resolve()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return [sys.executable, "-m", "allocator.cli"], env, tree


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and exit code of one command (its output discarded)."""
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        env=env, cwd=cwd).returncode
    return time.perf_counter() - t0, rc


def read_frontier(folder: Path) -> pd.DataFrame:
    path = folder / "frontier.csv"
    if not path.exists():
        return pd.DataFrame(columns=["budget", "coverage", "quality", "coverage_status", "how"])
    f = pd.read_csv(path, encoding="utf-8-sig")
    f["budget"] = f["budget"].round(2)
    return f.set_index("budget")


def summary(folder: Path) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def num(v, digits: int = 0) -> str:
    return "-" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instance", default=str(REPO / "instances" / "k_city"))
    p.add_argument("--budgets", default="9e6:36e6:20")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--singles", type=int, default=3,
                   help="default single solves to time (their mean is 'one single solve')")
    p.add_argument("--no-per-budget", action="store_true",
                   help="skip the single solve per budget (and the full sweep's ratio)")
    p.add_argument("--no-full-sweep", action="store_true",
                   help="skip the full sweep (and the single solve per budget)")
    p.add_argument("--before", default=None,
                   help="also run the coverage frontier with the source tree at this path")
    p.add_argument("--reference", action="store_true",
                   help="also solve the independent PuLP reference model's served weight at "
                        "every budget (after the timed runs) and compare")
    p.add_argument("--reference-time", type=float, default=120.0,
                   help="seconds for each reference solve (an unproven one is starred)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results-frontier.md"))
    args = p.parse_args(argv)
    budgets = parse_budgets(args.budgets)
    work = Path(tempfile.mkdtemp(prefix="frontier-bench-"))
    args.instance = str(Path(args.instance).resolve())
    cmd, env, here = allocator_cmd()
    loads = [os.getloadavg()[0]]
    sweep = ["sweep", args.instance, "--budgets", args.budgets, "--jobs", str(args.jobs)]
    times: dict[str, float] = {}

    print("coverage frontier ...", flush=True)
    times["frontier"], rc_f = run(cmd + sweep + ["--levels", "coverage", "--out",
                                                 str(work / "frontier")], env, here)
    if args.before:
        print(f"coverage frontier with {args.before} ...", flush=True)
        bcmd, benv, there = allocator_cmd(Path(args.before))
        times["frontier_before"], _ = run(bcmd + sweep + ["--levels", "coverage", "--out",
                                                          str(work / "frontier_before")], benv,
                                          there)
    rc_s = None
    if not args.no_full_sweep:
        print("full sweep ...", flush=True)
        times["sweep"], rc_s = run(cmd + sweep + ["--out", str(work / "sweep")], env, here)
    default_s = []
    for k in range(args.singles):
        print(f"default single solve {k + 1} ...", flush=True)
        sec, _ = run(cmd + ["solve", args.instance, "--out", str(work / f"default_{k}")], env, here)
        default_s.append(sec)
    single_s: dict[float, float] = {}
    if not args.no_per_budget and not args.no_full_sweep:
        for b in budgets:
            print(f"single solve at {b:,.0f} ...", flush=True)
            single_s[b], _ = run(cmd + ["solve", args.instance, "--budget", repr(b), "--out",
                                        str(work / "single" / budget_label(b))], env, here)
    loads.append(os.getloadavg()[0])
    ref: dict[float, dict] = {}
    if args.reference:  # untimed: after every timed run
        for b in budgets:
            print(f"reference served weight at {b:,.0f} ...", flush=True)
            ref[b] = solve_baseline(Path(args.instance), budget=b, time_limit=args.reference_time,
                                    mip_gap=1e-6, first_level_only=True)

    fr, fb, sw = (read_frontier(work / n) for n in ("frontier", "frontier_before", "sweep"))
    one = sum(default_s) / len(default_s) if default_s else float("nan")
    rows = []
    same_cov = proven = quality_ok = both = ref_equal = ref_proven = 0
    for b in budgets:
        key = round(b, 2)
        f = fr.loc[key] if key in fr.index else {}
        s = sw.loc[key] if key in sw.index else {}
        si = summary(work / "single" / budget_label(b))
        proven += f.get("coverage_status") == "optimal"
        if si.get("coverage") is not None and s.get("coverage") is not None:
            both += 1
            same_cov += abs(float(s["coverage"]) - float(si["coverage"])) < 1e-6
            gap = float(si.get("mip_gap") or 1e-4)
            quality_ok += float(s["quality"]) >= float(si["quality"]) * (1 - gap) - 1e-6
        before = fb.loc[key] if key in fb.index else {}
        r = ref.get(b, {})
        r_cov = r.get("coverage") if r.get("status") in ("optimal", "feasible") else None
        r_proven = bool(r.get("levels")) and r["levels"][0].get("status") == "optimal"
        if r_cov is not None and f.get("coverage") is not None:
            ref_equal += abs(float(f["coverage"]) - float(r_cov)) < 1e-6
            ref_proven += r_proven
        rows.append([f"{b:,.0f}", num(f.get("coverage")), f.get("coverage_status", "-"),
                     f.get("how", "-"), num(r_cov) + ("" if r_proven or r_cov is None else "*"),
                     num(before.get("coverage")),
                     before.get("coverage_status", "-"), num(s.get("coverage")),
                     num(si.get("coverage")), num(s.get("quality"), 1),
                     num(si.get("quality"), 1), num(s.get("seconds"), 1),
                     num(single_s.get(b), 1)])
    total_single = sum(single_s.values())
    lines = [
        "# Frontier benchmark (issue 22)\n",
        "Produced by `python -m benchmarks.frontier_bench "
        + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        + "`. Every side is a fresh `allocator` process, run one after the other in the same "
        f"run; 1-min load average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end "
        "(2-core machine shared with other work): read the ratios, not the seconds.\n",
        f"- one default single solve (`allocator solve`, mean of {len(default_s)}): "
        f"{one:.1f} s ({', '.join(f'{x:.1f}' for x in default_s)})",
        f"- coverage frontier (`sweep --levels coverage`, {len(budgets)} points): "
        f"{times['frontier']:.1f} s (exit {rc_f}) = **{times['frontier'] / one:.2f} default "
        f"single solves** (target <= 2); served weight proven at **{proven} of "
        f"{len(budgets)}** points",
    ]
    if "frontier_before" in times:
        lines.append(f"- the same frontier with {args.before}: {times['frontier_before']:.1f} s "
                     f"= {times['frontier_before'] / one:.2f} default single solves; proven at "
                     f"{int((fb.get('coverage_status') == 'optimal').sum())} points")
    if "sweep" in times:
        lines.append(
            f"- full sweep (all levels): {times['sweep']:.1f} s (exit {rc_s})"
            + (f" against {len(single_s)} single solves {total_single:.1f} s: **ratio "
               f"{times['sweep'] / total_single:.2f}** (target <= 0.35); served weight equal "
               f"at {same_cov} of {both} points, quality within the gap or higher at "
               f"{quality_ok}" if single_s else ""))
    if ref:
        lines.append(f"- the independent PuLP reference model's served weight (gap 1e-6, "
                     f"untimed): equal at **{ref_equal} of {len(budgets)}** points, the "
                     f"reference proven at {ref_proven} of them (* in the table: not proven)")
    table = md_table(["budget", "frontier served", "proven", "how", "reference served",
                      "before served",
                      "before proven", "sweep served", "single served", "sweep quality",
                      "single quality", "sweep point s", "single s"], rows)
    text = "\n".join(lines) + "\n\n" + table + "\n\n" + machine_section() + "\n"
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} (raw outputs in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
