"""Benchmark harness: allocator against the plain PuLP baseline, the LP bound and OR-Library GAP.

Usage: ``python -m benchmarks.run [--suite city|scale|gap|all] [--quick] [--out FILE]``

Every measured run happens in a fresh child process (``python -m benchmarks.run --one JOB``),
so its peak memory is its own (``os.wait4`` rusage of that child) and a wall-clock timeout can
kill a runaway solve without stopping the harness. Instances are generated into
``benchmarks/out/`` (git-ignored); the tables go to stdout and to a markdown file
(``benchmarks/results.md`` by default, ``benchmarks/out/results-quick.md`` with ``--quick``),
the raw per-run records to ``benchmarks/out/results.json``.

Suites: ``city`` = 1,000 and 2,000 enterprises; ``scale`` = 5,000, 20,000 and 100,000;
``gap`` = OR-Library gap1-gap12 and gapa-gapd (min sense, every problem of each file);
``all`` = all three. ``--quick``: one tiny generated instance and the first problem of gap1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
DEFAULT_MD = REPO / "benchmarks" / "results.md"
QUICK_MD = OUT / "results-quick.md"


@dataclass(frozen=True)
class Size:
    """A generated instance of the benchmark and the limits its runs get."""

    name: str
    enterprises: int
    agencies: int
    districts: int
    time_limit: float  # allocator, seconds for the whole lexicographic solve
    baseline_limit: float | None  # None: baseline skipped (too slow)
    role: str = ""


SIZES: dict[str, Size] = {
    s.name: s
    for s in (
        Size("city-1k", 1_000, 30, 8, 300, 600),
        Size("city-2k", 2_000, 40, 10, 300, 600, "City target"),
        Size("scale-5k", 5_000, 80, 20, 300, 600),
        Size("scale-20k", 20_000, 200, 50, 300, 600),
        Size("province-100k", 100_000, 500, 100, 240, None, "Province target"),
    )
}
QUICK_SIZE = Size("tiny", 60, 6, 2, 30, 60)
SUITE_SIZES = {"city": ["city-1k", "city-2k"], "scale": ["scale-5k", "scale-20k",
                                                         "province-100k"]}
GAP_FILES = [f"gap{i}" for i in range(1, 13)] + ["gapa", "gapb", "gapc", "gapd"]
#: per-problem target seconds; the allocator gets 1 s less so load + write fit inside
GAP_TARGET_S = {"gapd": 60.0}
GAP_DEFAULT_TARGET_S = 10.0
GAPD_TOLERANCE = 0.01
SEED = 2027
#: a child whose process group holds more resident memory than this is killed (--mem-cap-gb)
MEM_CAP_MB = 10 * 1024.0

CITY_SPEEDUP = 5.0
PROVINCE_SECONDS = 300.0
PROVINCE_GB = 8.0
PROVINCE_LP_SHARE = 0.99
BUILD_S_PER_100K = 2.0


def shared_benchmarks() -> Path:
    """``/work/shared/benchmarks``, located relative to the repository."""
    return Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def say(msg: str) -> None:
    """Harness progress on stderr (stdout carries the tables)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ============================================================================================
# child side: one measured run per process
# ============================================================================================


def job_allocator(job: dict) -> dict:
    """load, solve_instance, write_results; times and peak memory at the end of each phase."""
    from allocator.data.validation import load_instance
    from allocator.output.results_folder import write_results
    from allocator.pipeline.solve import solve_instance

    marks: dict[str, float] = {}
    elapsed: dict[str, float] = {}
    messages: dict[str, str] = {}
    partial = Path(job["result"] + ".partial")
    t0 = time.perf_counter()

    def mark(phase: str, last: str) -> None:
        """Peak memory and elapsed time at a phase end, kept on disk in case of a kill."""
        marks[phase], elapsed[phase] = peak_mb(), time.perf_counter() - t0
        messages[phase] = last
        partial.write_text(json.dumps({"peak_mb_by_phase": marks, "elapsed_by_phase": elapsed,
                                       "messages": messages}), encoding="utf-8")

    inst = load_instance(job["instance"])
    load_s = time.perf_counter() - t0
    mark("load", "loaded")
    level_end = re.compile(r"level (\d+) \((\w+)\): (?!solving)")

    def progress(msg: str) -> None:
        if msg.startswith("eligibility:") and "eligible triples" in msg:
            mark("eligibility", msg)
        elif msg.startswith("build:"):
            mark("build", msg)
        else:
            m = level_end.match(msg)
            if m:
                mark(f"level {m.group(1)} ({m.group(2)})", msg)
        if job.get("verbose"):
            print(f"    {msg}", file=sys.stderr, flush=True)

    res = solve_instance(inst, time_limit=job["time_limit"], progress=progress)
    mark("results", "result tables")
    t = time.perf_counter()
    write_s = None
    if job.get("results_dir"):
        write_results(res, Path(job["results_dir"]))
        write_s = time.perf_counter() - t
        mark("write", "written")
    total = time.perf_counter() - t0
    s = res.summary
    out = {
        "status": s.get("status"),
        "coverage": s.get("coverage"),
        "quality": s.get("quality"),
        "cost": s.get("cost"),
        "gap": s.get("gap"),
        "mip_gap": s.get("mip_gap"),
        "threads": s.get("threads"),
        "solver": s.get("solver"),
        "solver_version": s.get("solver_version"),
        "counts": s.get("counts", {}),
        "phase_seconds": s.get("phase_seconds", {}),
        "levels": s.get("levels", []),
        "load_seconds": load_s,
        "write_seconds": write_s,
        "total_seconds": total,
        "peak_mb_by_phase": marks,
        "elapsed_by_phase": elapsed,
    }
    if job.get("gap"):  # an OR-Library problem: map the plan back and check it independently
        out.update(gap_verdict(job["gap"], res.assignments, total))
    return out


def gap_verdict(g: dict, assignments, seconds: float) -> dict:
    """Published optimum versus the allocator's plan, recomputed from the GAP data itself."""
    from benchmarks.gap_instances import agent_of_job, gap_check, gap_cost, read_orlib

    problem = read_orlib(g["path"])[g["index"] - 1]
    value = feasible = None
    if assignments is not None and len(assignments):
        pairs = zip(assignments["enterprise_id"], assignments["service_id"],
                    assignments["agency_id"], strict=True)
        agents = agent_of_job(problem, {(e, s): a for e, s, a in pairs})
        feasible = bool(gap_check(problem, agents))
        value = float(gap_cost(problem, agents)) if feasible else None
    opt = g.get("optimum")
    above = None if value is None or opt is None else (value - opt) / max(1.0, abs(opt))
    return {"gap_value": value, "gap_feasible": feasible, "optimum": opt,
            "above_optimum": above, "seconds": seconds}


def job_gap(job: dict) -> dict:
    """Write one GAP problem as an instance folder, then the allocator job on it."""
    from benchmarks.gap_instances import read_orlib, write_gap_instance

    g = job["gap"]
    problem = read_orlib(g["path"])[g["index"] - 1]
    write_gap_instance(problem, job["instance"], sense="min", name=g["name"])
    out = job_allocator(job)
    out["agents"], out["jobs"] = problem["m"], problem["n"]
    return out


def job_baseline(job: dict) -> dict:
    """The plain PuLP model of benchmarks/baseline.py, at the instance's MIP gap."""
    from benchmarks.baseline import load_policy, solve_baseline

    gap = float(load_policy(Path(job["instance"]))["solver"]["mip_gap"])
    t0 = time.perf_counter()
    res = solve_baseline(Path(job["instance"]), time_limit=job["time_limit"], mip_gap=gap)
    total = time.perf_counter() - t0
    levels = [{"name": lv.get("level"), "status": lv.get("status"), "value": lv.get("value"),
               "bound": lv.get("bound"), "gap": lv.get("gap"),
               "seconds": lv.get("seconds", 0.0)} for lv in res.get("levels", [])]
    gaps = [lv["gap"] for lv in levels if lv.get("gap") is not None]
    return {
        "status": res.get("status"),
        "coverage": res.get("coverage"),
        "quality": res.get("quality"),
        "cost": res.get("cost"),
        "gap": max(gaps) if gaps else None,
        "mip_gap": gap,
        "levels": levels,
        "counts": {"eligible_triples": res.get("n_triples"), "variables": res.get("n_vars"),
                   "constraints": res.get("n_constraints")},
        "build_seconds": total - sum(lv["seconds"] or 0.0 for lv in levels),
        "total_seconds": total,
        "peak_mb_by_phase": {"end": peak_mb()},
    }


def lp_relaxation_bound(instance_dir: Path, time_limit: float) -> dict:
    """Upper bound on the served weight: the LP relaxation of level 1 (coverage), by HiGHS."""
    import highspy
    import numpy as np

    from allocator.data.validation import load_instance
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model
    from allocator.pipeline import large_scale

    inst = load_instance(instance_dir)
    elig = compute_eligibility(inst)
    if len(elig.triples) >= large_scale.LARGE_TRIPLES:
        out = large_lp_bound(inst, elig, time_limit)
        if len(elig.triples) <= FULL_BUILD_MAX_TRIPLES:  # the allocator no longer builds it
            t = time.perf_counter()
            build_model(inst, elig)
            out["full_build_seconds"] = time.perf_counter() - t
        return out
    model = build_model(inst, elig)
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return {"lp_status": "infeasible", "lp_bound": None}
    m = model.lp
    level = model.levels[0]
    inf = highspy.kHighsInf
    csc = m.matrix().tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m.n_vars, m.n_rows
    lp.col_cost_ = np.asarray(level.coefs, dtype=float)
    lp.col_lower_, lp.col_upper_ = m.lb, m.ub
    lp.row_lower_ = np.where(np.isinf(m.row_lo), -inf, m.row_lo)
    lp.row_upper_ = np.where(np.isinf(m.row_hi), inf, m.row_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    lp.sense_ = highspy.ObjSense.kMaximize if level.sense == "max" else highspy.ObjSense.kMinimize
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.passModel(lp)  # no integrality given: every column continuous
    t = time.perf_counter()
    h.run()
    secs = time.perf_counter() - t
    status = h.getModelStatus()
    ok = status == highspy.HighsModelStatus.kOptimal
    return {"lp_status": h.modelStatusToString(status), "lp_seconds": secs,
            "lp_bound": float(h.getInfo().objective_function_value) if ok else None}


#: the LP-bound job also times the full model's build up to this many triples (the large path
#: does not build it; at 16 M triples it would need several GB only to be thrown away)
FULL_BUILD_MAX_TRIPLES = 2_000_000


def build_seconds(rec: dict) -> float | None:
    """Seconds to build the full model: the allocator's build phase, or on the large path
    the LP-bound job's separate timing of build_model."""
    b = phases_of(rec["allocator"]).get("build")
    return b if b is not None else rec.get("lp", {}).get("full_build_seconds")


def large_lp_bound(inst, elig, time_limit: float) -> dict:
    """At province scale the full LP does not fit: the coverage LP of allocator.pipeline.large_scale
    (share caps and minimum agencies left out, so at least the full LP's optimum), solved to
    optimality by column generation; its bound is the Lagrangian dual at the final duals."""
    from allocator.pipeline import large_scale

    t = time.perf_counter()
    arr = large_scale.Arrays.of(inst, elig.triples)
    lp = large_scale.coverage_lp(inst, arr, large_scale.Classes.of(inst, elig.triples),
                                 time_limit)
    return {"lp_status": ("Optimal (relaxation)" if lp.converged else lp.status.value),
            "lp_seconds": time.perf_counter() - t,
            "lp_bound": lp.bound if lp.converged else None}


def job_lpbound(job: dict) -> dict:
    """Child wrapper of :func:`lp_relaxation_bound`."""
    out = lp_relaxation_bound(Path(job["instance"]), job["time_limit"])
    out["peak_mb_by_phase"] = {"end": peak_mb()}
    return out


JOBS = {"allocator": job_allocator, "gap": job_gap, "baseline": job_baseline,
        "lpbound": job_lpbound}


def run_one(job_text: str) -> int:
    """Child entry point: run the job, write its result JSON (an error record on failure)."""
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


# ============================================================================================
# parent side: spawn, time out, collect
# ============================================================================================


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
    """Run ``job`` in a fresh process; its result dict plus ``peak_mb`` (whole child) and
    ``child_seconds``; ``error`` is set when it failed or was killed at ``timeout`` or above
    the memory cap (``MEM_CAP_MB``, resident memory of its process group)."""
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
    out["child_seconds"] = secs
    return out


def check_available() -> bool:
    """Whether `allocator check` is implemented (allocator/check.py with run_check)."""
    import importlib.util

    return importlib.util.find_spec("allocator.analysis.audit") is not None


def run_check(instance: Path, results: Path, timeout: float) -> dict:
    """`allocator check INSTANCE RESULTS` as a subprocess: exit 0 means every rule holds."""
    if not check_available():
        return {"check": "check unavailable"}
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


def generate(size: Size, seed: int) -> Path:
    """Write the generated instance for ``size`` into benchmarks/out/instances/."""
    from allocator.data.generate import generate_instance, write_instance

    path = OUT / "instances" / f"{size.name}-s{seed}"
    data = generate_instance(size.enterprises, size.agencies, size.districts, seed)
    write_instance(data, path)
    return path


def bench_instance(size: Size, args: argparse.Namespace) -> dict:
    """Generate one instance; allocator, check, LP bound and baseline on it."""
    say(f"{size.name}: generating {size.enterprises:,} enterprises, {size.agencies} agencies, "
        f"{size.districts} districts (seed {args.seed})")
    inst = generate(size, args.seed)
    limit = args.time_limit or size.time_limit
    res_dir = OUT / "results" / inst.name
    rec: dict[str, Any] = {"name": size.name, "role": size.role, "instance": str(inst),
                           "enterprises": size.enterprises, "agencies": size.agencies,
                           "districts": size.districts, "time_limit": limit}
    say(f"{size.name}: allocator (time limit {limit:.0f} s)")
    rec["allocator"] = run_child({"kind": "allocator", "id": f"{size.name}-allocator",
                                  "instance": str(inst), "time_limit": limit,
                                  "results_dir": str(res_dir), "verbose": args.verbose},
                                 timeout=2 * limit + 300)
    report_run(size.name, "allocator", rec["allocator"])
    if rec["allocator"].get("status") in ("optimal", "feasible"):
        say(f"{size.name}: allocator check")
        rec["check"] = run_check(inst, res_dir, timeout=max(600.0, limit))
        say(f"{size.name}: check -> {rec['check']['check']}")
    else:
        rec["check"] = {"check": "no plan"}
    say(f"{size.name}: LP relaxation bound of level 1")
    rec["lp"] = run_child({"kind": "lpbound", "id": f"{size.name}-lp", "instance": str(inst),
                           "time_limit": args.lp_limit}, timeout=args.lp_limit + 600)
    base_limit = size.baseline_limit if args.baseline_limit is None else args.baseline_limit
    if args.no_baseline:
        rec["baseline"] = {"skipped": "not run (--no-baseline)"}
    elif base_limit is None:
        rec["baseline"] = {"skipped": "skipped (too slow)"}
    else:
        say(f"{size.name}: baseline (PuLP + HiGHS, cap {base_limit:.0f} s)")
        rec["baseline"] = run_child({"kind": "baseline", "id": f"{size.name}-baseline",
                                     "instance": str(inst), "time_limit": base_limit},
                                    timeout=1.5 * base_limit + 300)
        report_run(size.name, "baseline", rec["baseline"])
    return rec


def report_run(name: str, who: str, r: dict) -> None:
    if r.get("error"):
        say(f"{name}: {who} ERROR {r['error']}")
    else:
        say(f"{name}: {who} {r.get('status')} coverage={r.get('coverage')} "
            f"quality={r.get('quality')} cost={r.get('cost')} in {r.get('total_seconds', 0):.1f} s"
            f", peak {r.get('peak_mb', 0):.0f} MB")


def bench_gap(files: list[str], quick: bool) -> list[dict]:
    """Every min-sense problem of each OR-Library file, one child process per problem."""
    from benchmarks.gap_instances import load_optima, optimum, read_orlib

    root = shared_benchmarks() / "gap"
    optima = load_optima(root / "optima.csv")
    rows = []
    for f in files:
        path = root / "orlib" / f"{f}.txt"
        if not path.exists():
            say(f"GAP: {path} missing, skipped")
            continue
        n_problems = 1 if quick else len(read_orlib(path))
        target = GAP_TARGET_S.get(f, GAP_DEFAULT_TARGET_S)
        for k in range(1, n_problems + 1):
            name = f"{f}-{k}"
            opt = optimum(optima, f"orlib/{f}.txt", k, "min")
            job = {"kind": "gap", "id": f"gap-{name}", "time_limit": target - 1.0,
                   "instance": str(OUT / "gap" / name),
                   "gap": {"path": str(path), "index": k, "optimum": opt, "name": name}}
            r = run_child(job, timeout=3 * target + 120)
            r.update(set=f, problem=k, target_seconds=target)
            if r.get("error"):
                say(f"GAP {name}: ERROR {r['error']}")
            else:
                say(f"GAP {name}: {r.get('status')} value {r.get('gap_value')} (published {opt})"
                    f" in {r.get('seconds', 0):.2f} s")
            rows.append(r)
    return rows


# ============================================================================================
# tables
# ============================================================================================


def fmt(v: Any, digits: int = 2) -> str:
    """A table cell: numbers with thousands separators, None as a dash."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    return str(v).replace("|", "/").replace("\n", " ")


def md_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(c) for c in r) + " |")
    return "\n".join(lines)


def rel_diff(a: float | None, b: float | None) -> float | None:
    """(a - b) relative to b (at least 1 in the denominator)."""
    if a is None or b is None:
        return None
    return (a - b) / max(1.0, abs(b))


def values_equal(alloc: dict, base: dict) -> tuple[bool | None, str]:
    """Whether coverage, quality and cost agree with the baseline within twice the MIP gap
    (each side is only proven within the gap of the common optimum); a short text."""
    if alloc.get("status") not in ("optimal", "feasible") or base.get("status") not in (
            "optimal", "feasible"):
        return None, "-"
    tol = 2 * float(alloc.get("mip_gap") or base.get("mip_gap") or 1e-4) + 1e-9
    st_a = {lv.get("name"): lv.get("status") for lv in alloc.get("levels") or []}
    st_b = {lv.get("name"): lv.get("status") for lv in base.get("levels") or []}
    parts, ok = [], True
    for key, short in (("coverage", "cov"), ("quality", "qual"), ("cost", "cost")):
        d = rel_diff(alloc.get(key), base.get(key))
        if d is None:
            return None, "-"
        if abs(d) <= tol:
            parts.append(f"{short} =")
            continue
        ok = False
        note = ""
        if st_b and st_b.get(key) not in ("optimal", "feasible"):
            note = " (baseline never reached this level)"
        elif "feasible" in (st_a.get(key), st_b.get(key)):
            note = " (unproven)"
        parts.append(f"{short} {d * 100:+.3f}%{note}")
    return ok, ("yes" if ok else "no: " + ", ".join(parts))


def lexicographically_better(alloc: dict, base: dict) -> bool:
    """The allocator's plan beats the baseline's in the spec's order at the first level where
    they differ by more than twice the gap, and that level is unproven on the baseline's side
    (a better plan than an unproven one, not a disagreement with a proven optimum)."""
    tol = 2 * float(alloc.get("mip_gap") or base.get("mip_gap") or 1e-4) + 1e-9
    st_b = {lv.get("name"): lv.get("status") for lv in base.get("levels") or []}
    for key, sign in (("coverage", 1), ("quality", 1), ("cost", -1)):
        d = rel_diff(alloc.get(key), base.get(key))
        if d is None:
            return False
        if abs(d) <= tol:
            continue
        return sign * d > 0 and st_b.get(key) != "optimal"
    return False


def level_seconds(r: dict) -> str:
    lv = r.get("levels") or []
    return " / ".join(fmt(x.get("seconds"), 1) for x in lv) if lv else "-"


def level_status(r: dict) -> str:
    if r.get("skipped"):
        return r["skipped"]
    if r.get("error"):
        return "error: " + r["error"]
    return str(r.get("status"))


def served_vs_lp(rec: dict) -> float | None:
    cov = rec["allocator"].get("coverage")
    bound = rec.get("lp", {}).get("lp_bound")
    if cov is None or not bound:
        return None
    return cov / bound


def counts_of(a: dict) -> dict:
    """Model counts of an allocator run; for a killed run, read from its progress messages."""
    if a.get("counts"):
        return a["counts"]
    msgs = (a.get("partial") or {}).get("messages", {})

    def grab(text: str | None, what: str) -> int | None:
        m = re.search(r"([\d,]+) " + what, text or "")
        return int(m.group(1).replace(",", "")) if m else None

    return {"eligible_triples": grab(msgs.get("eligibility"), "eligible triples"),
            "variables": grab(msgs.get("build"), "variables"),
            "constraints": grab(msgs.get("build"), "constraints")}


def phases_of(a: dict) -> dict:
    """Phase seconds of an allocator run; for a killed run, what its progress showed."""
    if a.get("phase_seconds"):
        return a["phase_seconds"]
    part = a.get("partial") or {}
    el, msgs = part.get("elapsed_by_phase", {}), part.get("messages", {})
    out = {}
    if "eligibility" in el and "load" in el:
        out["eligibility"] = el["eligibility"] - el["load"]
    m = re.search(r" in ([\d.]+) s", msgs.get("build", ""))
    if m:
        out["build"] = float(m.group(1))
    return out


def instance_table(recs: list[dict]) -> str:
    """City / scale table: size, model, phases, status, allocator vs baseline."""
    cols = ["instance", "enterprises", "triples", "vars", "rows", "eligibility s", "build s",
            "level s (cov/qual/cost)", "status", "gap", "allocator total s", "baseline total s",
            "baseline status", "speed-up", "values equal to baseline?", "served / LP bound",
            "check", "peak MB allocator / baseline"]
    rows = []
    for rec in recs:
        a, b = rec["allocator"], rec["baseline"]
        c, ph = counts_of(a), phases_of(a)
        at, bt = a.get("total_seconds"), b.get("total_seconds")
        speed = f"{bt / at:.2f}x" if at and bt else "-"
        if speed != "-" and b.get("status") != "optimal":
            speed = ">= " + speed  # the baseline stopped at its cap
        _, eq = values_equal(a, b)
        share = served_vs_lp(rec)
        peak_b = "-" if b.get("skipped") else fmt(b.get("peak_mb"), 0)
        rows.append([rec["name"], rec["enterprises"], c.get("eligible_triples"),
                     c.get("variables"), c.get("constraints"), ph.get("eligibility"),
                     ph.get("build"), level_seconds(a), level_status(a), fmt_gap(a.get("gap")),
                     at, bt if not b.get("skipped") else None, level_status(b), speed, eq,
                     f"{share * 100:.2f}%" if share else "-", rec.get("check", {}).get("check"),
                     f"{fmt(a.get('peak_mb'), 0)} / {peak_b}"])
    return md_table(cols, rows)


def fmt_gap(g: float | None) -> str:
    return "-" if g is None else f"{g:.2e}"


def values_table(recs: list[dict]) -> str:
    """The three level values side by side, allocator and baseline."""
    cols = ["instance", "coverage", "baseline coverage", "quality", "baseline quality",
            "cost", "baseline cost", "LP bound (coverage)"]
    rows = []
    for rec in recs:
        a, b = rec["allocator"], rec["baseline"]
        rows.append([rec["name"], a.get("coverage"), b.get("coverage"), a.get("quality"),
                     b.get("quality"), a.get("cost"), b.get("cost"),
                     rec.get("lp", {}).get("lp_bound")])
    return md_table(cols, rows)


def province_table(recs: list[dict]) -> str:
    """The province target's facts (any instance without a baseline run is shown here)."""
    cols = ["instance", "status", "check ok?", "served weight", "LP bound", "served / LP bound",
            "LP status", "end to end min", "peak GB"]
    rows = []
    for rec in recs:
        a, lp = rec["allocator"], rec.get("lp", {})
        share = served_vs_lp(rec)
        tot = a.get("total_seconds")
        rows.append([rec["name"], level_status(a), rec.get("check", {}).get("check"),
                     a.get("coverage"), lp.get("lp_bound"),
                     f"{share * 100:.2f}%" if share else "-", lp.get("lp_status") or lp.get(
                         "error"), None if tot is None else tot / 60,
                     None if a.get("peak_mb") is None else a["peak_mb"] / 1024])
    return md_table(cols, rows)


def build_table(recs: list[dict]) -> str:
    cols = ["instance", "triples", "build s", "build s per 100k triples"]
    rows = []
    for rec in recs:
        n = counts_of(rec["allocator"]).get("eligible_triples")
        b = build_seconds(rec)
        rows.append([rec["name"], n, b, b / n * 1e5 if n and b is not None else None])
    return md_table(cols, rows)


def profile_table(recs: list[dict]) -> str:
    """Seconds and peak resident memory at the end of each phase (allocator and baseline)."""
    cols = ["instance", "run", "phase", "seconds", "peak RSS MB at phase end"]
    rows = []
    for rec in recs:
        a = rec["allocator"]
        if a.get("error") and not a.get("levels"):
            part = a.get("partial") or {}
            for phase, secs in part.get("elapsed_by_phase", {}).items():
                rows.append([rec["name"], "allocator", f"{phase} (elapsed at its end)", secs,
                             part.get("peak_mb_by_phase", {}).get(phase)])
            rows.append([rec["name"], "allocator", "error: " + a["error"],
                         a.get("child_seconds"), a.get("peak_mb")])
        else:
            ph, marks = a.get("phase_seconds", {}), a.get("peak_mb_by_phase", {})
            rows.append([rec["name"], "allocator", "load + validate", a.get("load_seconds"),
                         marks.get("load")])
            rows.append([rec["name"], "allocator", "eligibility", ph.get("eligibility"),
                         marks.get("eligibility")])
            rows.append([rec["name"], "allocator", "build", ph.get("build"), marks.get("build")])
            lvs = a.get("levels", [])
            setup = (ph.get("solve") - sum(lv.get("seconds") or 0.0 for lv in lvs)
                     if ph.get("solve") is not None else None)
            rows.append([rec["name"], "allocator", "solver setup (model pass, hold rows)",
                         setup, None])
            for k, lv in enumerate(lvs, 1):
                key = f"level {k} ({lv.get('name')})"
                rows.append([rec["name"], "allocator", f"{key}: {lv.get('status')}",
                             lv.get("seconds"), marks.get(key)])
            rows.append([rec["name"], "allocator", "result tables", ph.get("results"),
                         marks.get("results")])
            rows.append([rec["name"], "allocator", "write results", a.get("write_seconds"),
                         marks.get("write")])
            rows.append([rec["name"], "allocator", "total (child process)",
                         a.get("total_seconds"), a.get("peak_mb")])
        b = rec["baseline"]
        if b.get("skipped"):
            rows.append([rec["name"], "baseline", b["skipped"], None, None])
        elif b.get("error") and not b.get("levels"):
            rows.append([rec["name"], "baseline", "error: " + b["error"],
                         b.get("child_seconds"), b.get("peak_mb")])
        else:
            rows.append([rec["name"], "baseline", "read + eligibility + PuLP build",
                         b.get("build_seconds"), None])
            for k, lv in enumerate(b.get("levels", []), 1):
                rows.append([rec["name"], "baseline", f"level {k} ({lv.get('name')}): "
                             f"{lv.get('status')}", lv.get("seconds"), None])
            rows.append([rec["name"], "baseline", "total (child process)",
                         b.get("total_seconds"), b.get("peak_mb")])
        lp = rec.get("lp", {})
        rows.append([rec["name"], "LP bound", f"level-1 LP relaxation: {lp.get('lp_status')}",
                     lp.get("lp_seconds"), lp.get("peak_mb")])
    return md_table(cols, rows)


def gap_summary(rows: list[dict]) -> list[dict]:
    """Per OR-Library file: problems, how many at the published optimum, worst time and gap."""
    out = []
    for f in dict.fromkeys(r["set"] for r in rows):
        rs = [r for r in rows if r["set"] == f]
        at_opt = sum(1 for r in rs if r.get("above_optimum") is not None
                     and abs(r["above_optimum"]) < 1e-9)
        secs = [r.get("seconds") or r.get("child_seconds") for r in rs]
        worst = [r.get("above_optimum") for r in rs]
        worst_gap = None if any(w is None for w in worst) else max(worst)
        solved = [w for w in worst if w is not None]
        errors = sum(1 for r in rs if r.get("error") or r.get("gap_feasible") is False)
        out.append({"set": f, "problems": len(rs), "at_optimum": at_opt,
                    "max_seconds": max(s for s in secs if s is not None) if secs else None,
                    "worst_gap": worst_gap, "worst_solved": max(solved) if solved else None,
                    "no_plan": len(rs) - len(solved), "target_seconds": rs[0]["target_seconds"],
                    "errors": errors})
    return out


def gap_tables(rows: list[dict]) -> tuple[str, str]:
    summ = gap_summary(rows)
    cols = ["set", "problems", "solved to published optimum", "max seconds", "target s",
            "worst gap to published (plans found)", "no plan", "errors / infeasible plans"]
    t1 = md_table(cols, [[s["set"], s["problems"], f"{s['at_optimum']}/{s['problems']}",
                          s["max_seconds"], s["target_seconds"],
                          "-" if s["worst_solved"] is None else f"{s['worst_solved'] * 100:.3f}%",
                          s["no_plan"], s["errors"]] for s in summ])
    cols2 = ["problem", "m x n", "published optimum", "allocator value", "status", "seconds",
             "peak MB", "ok"]
    det = []
    for r in rows:
        tol = GAPD_TOLERANCE if r["set"] == "gapd" else 1e-9
        ok = (r.get("above_optimum") is not None and r["above_optimum"] <= tol
              and (r.get("seconds") or 1e9) <= r["target_seconds"])
        det.append([f"{r['set']}-{r['problem']}", f"{r.get('agents', '?')}x{r.get('jobs', '?')}",
                    r.get("optimum"), r.get("gap_value"), level_status(r), r.get("seconds"),
                    r.get("peak_mb"), ok])
    return t1, md_table(cols2, det)


# ============================================================================================
# targets
# ============================================================================================


def targets(recs: list[dict], gap_rows: list[dict]) -> list[list[str]]:
    """One row per target of issue 7: criterion, what was measured, PASS / FAIL / not run."""
    by = {r["name"]: r for r in recs}
    out = []

    city = by.get("city-2k")
    crit = (f"2,000 enterprises / 40 agencies / 10 districts: same three level values as the "
            f"baseline (within the gap; or better where the baseline is unproven), "
            f">= {CITY_SPEEDUP:.0f}x faster end to end")
    if city is None:
        out.append(["City", crit, "-", "not run"])
    elif city["baseline"].get("skipped"):
        out.append(["City", crit, f"baseline {city['baseline']['skipped']}", "not run"])
    else:
        a, b = city["allocator"], city["baseline"]
        eq, eqtxt = values_equal(a, b)
        at, bt = a.get("total_seconds"), b.get("total_seconds")
        ratio = bt / at if at and bt else None
        better = not eq and lexicographically_better(a, b)
        if better:
            eqtxt += " - the allocator's plan is better where the baseline is unproven"
        verdict = "PASS" if (eq or better) and ratio and ratio >= CITY_SPEEDUP else "FAIL"
        out.append(["City", crit, f"values equal: {eqtxt}; allocator {fmt(at)} s, baseline "
                    f"{fmt(bt)} s ({level_status(b)}), speed-up "
                    f"{'-' if ratio is None else f'{ratio:.2f}x'}", verdict])

    prov = by.get("province-100k")
    crit = (f"100,000 enterprises / 500 agencies / 100 districts: `allocator check` accepts, "
            f"served weight >= {PROVINCE_LP_SHARE:.0%} of the LP bound, < "
            f"{PROVINCE_SECONDS / 60:.0f} min and < {PROVINCE_GB:.0f} GB")
    if prov is None:
        out.append(["Province", crit, "-", "not run"])
    else:
        a = prov["allocator"]
        share = served_vs_lp(prov)
        tot, peak = a.get("total_seconds"), a.get("peak_mb")
        chk = prov.get("check", {}).get("check")
        ok = (chk == "ok" and share is not None and share >= PROVINCE_LP_SHARE
              and tot is not None and tot < PROVINCE_SECONDS and peak is not None
              and peak / 1024 < PROVINCE_GB and not a.get("error"))
        out.append(["Province", crit, f"check {chk}; served/LP {fmt(share and share * 100)}%; "
                    f"{fmt(tot)} s; {fmt(peak and peak / 1024)} GB",
                    "PASS" if ok else "FAIL"])

    summ = {s["set"]: s for s in gap_summary(gap_rows)} if gap_rows else {}
    std = [s for k, s in summ.items() if k != "gapd"]
    crit = "gap1-gap12 and gapa-gapc: the published optimum, each under 10 s"
    if not std:
        out.append(["OR-Library GAP", crit, "-", "not run"])
    else:
        n = sum(s["problems"] for s in std)
        k = sum(s["at_optimum"] for s in std)
        mx = max(s["max_seconds"] or 0.0 for s in std)
        full = len(std) == len(GAP_FILES) - 1
        ok = k == n and mx < GAP_DEFAULT_TARGET_S
        verdict = ("PASS" if full else "PASS (partial run)") if ok else "FAIL"
        out.append(["OR-Library GAP", crit, f"{k}/{n} at optimum over {len(std)} sets; max "
                    f"{mx:.2f} s", verdict])
    d = summ.get("gapd")
    crit = f"gapd: within {GAPD_TOLERANCE:.0%} of the published value in 60 s"
    if d is None:
        out.append(["OR-Library gapd", crit, "-", "not run"])
    else:
        rs = [r for r in gap_rows if r["set"] == "gapd"]
        within = sum(1 for r in rs if r.get("above_optimum") is not None
                     and r["above_optimum"] <= GAPD_TOLERANCE)
        ok = within == len(rs) and (d["max_seconds"] or 1e9) <= GAP_TARGET_S["gapd"]
        worst = "-" if d["worst_solved"] is None else f"{d['worst_solved'] * 100:.3f}%"
        if d["no_plan"]:
            worst += f", {d['no_plan']} without a plan"
        out.append(["OR-Library gapd", crit, f"{within}/{len(rs)} within 1%, worst {worst}, max "
                    f"{fmt(d['max_seconds'])} s", "PASS" if ok else "FAIL"])

    crit = (f"model build < {BUILD_S_PER_100K:.0f} s per 100,000 triples (judged on instances "
            f"with >= 100,000 triples, else the largest)")
    sized = [(counts_of(r["allocator"]).get("eligible_triples"), build_seconds(r), r["name"])
             for r in recs]
    sized = [s for s in sized if s[0] and s[1] is not None]
    if not sized:
        out.append(["Model build", crit, "-", "not run"])
    else:
        judged = [s for s in sized if s[0] >= 100_000] or [max(sized)]
        per = [(b / n * 1e5, name) for n, b, name in judged]
        worst, name = max(per)
        verdict = "PASS" if worst < BUILD_S_PER_100K else "FAIL"
        if not any(s[0] >= 100_000 for s in sized):
            verdict += " (small instances only)"
        out.append(["Model build", crit, f"worst {worst:.2f} s per 100k triples ({name})",
                    verdict])
    return out


# ============================================================================================
# report
# ============================================================================================


def machine_facts() -> list[tuple[str, str]]:
    """CPU, cores, memory, Python and solver versions, git commit."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    versions = []
    for mod in ("highspy", "pulp", "numpy", "pandas", "scipy"):
        try:
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod if mod != 'pulp' else 'PuLP')}")
        except Exception:
            versions.append(f"{mod} ?")
    try:
        from allocator.solvers import get_backend

        b = get_backend("auto")
        solver = f"{b.name} {b.version()}"
    except Exception as exc:  # pragma: no cover
        solver = f"? ({exc})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        commit = (commit or "?") + (" (uncommitted changes)" if dirty.strip() else "")
    except Exception:
        commit = "?"
    return [("date", dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
            ("cpu", cpu), ("cores", f"{os.cpu_count()} logical, {usable} usable"),
            ("memory", mem), ("os", platform.platform()),
            ("python", platform.python_version()), ("allocator solver (auto)", solver),
            ("libraries", ", ".join(versions)), ("git commit", commit)]


def render(recs: list[dict], gap_rows: list[dict], args: argparse.Namespace,
           facts: list[tuple[str, str]], seconds: float) -> str:
    """The whole markdown report."""
    mode = "quick" if args.quick else ("full" if args.suite == "all" else "partial")
    loads = [r.get("load_at_start") for rec in recs for r in (rec["allocator"], rec["baseline"])]
    loads += [r.get("load_at_start") for r in gap_rows]
    loads = [x for x in loads if x is not None]
    if loads:
        facts = facts + [("1-min load average when runs started (other work on the machine "
                          "skews timings)", f"{min(loads):.2f} to {max(loads):.2f}")]
    parts = [
        "# allocator benchmarks",
        "",
        f"Produced by `{' '.join(['python -m benchmarks.run', *args.argv])}` "
        f"({mode} run, {seconds / 60:.1f} min); see "
        "benchmarks/README.md. Every run is a fresh process; peak memory is that process's "
        "peak resident set. Instances are generated with seed "
        f"{args.seed}. The allocator and the baseline both solve each level to the instance's "
        "MIP gap (1e-4); 'values equal' allows twice the gap per level, since each side is "
        "only proven within the gap of the common optimum. 'End to end' for the allocator is "
        "load + validate + eligibility + build + solve + result tables + writing the results "
        "folder; for the baseline it is its whole `solve_baseline` call (reading included, no "
        "writing).",
        "",
        "## Machine",
        "",
        md_table(["fact", "value"], [[k, v] for k, v in facts]),
        "",
        "## Targets",
        "",
        md_table(["target", "criterion", "measured", "verdict"], targets(recs, gap_rows)),
        "",
    ]
    if recs:
        parts += ["## Generated instances: allocator against the baseline", "",
                  instance_table(recs), "", "### Level values", "", values_table(recs), "",
                  "## Served weight against the LP bound (province target)", "",
                  province_table(recs), "",
                  "## Model build per 100,000 triples", "", build_table(recs), "",
                  "## Profile: time and memory per phase", "",
                  "Peak RSS is the process's peak resident memory when the phase ended "
                  "(monotone; '-' where the phase is not observed).", "",
                  profile_table(recs), ""]
    if gap_rows:
        t1, t2 = gap_tables(gap_rows)
        parts += ["## OR-Library GAP (min sense, every rule but capacity off, all jobs "
                  "mandatory)", "",
                  "Each problem is converted by benchmarks/gap_instances.py and solved by the "
                  "allocator with a time limit 1 s below the target; the value is recomputed "
                  "from the plan and the GAP data (feasibility checked independently).", "",
                  t1, "", "### Every problem", "", t2, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites, print the report and write it (see the module docstring)."""
    global OUT, MEM_CAP_MB
    p = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=["city", "scale", "gap", "all"], default=None,
                   help="default all, or only what --sizes / --gap-sets name")
    p.add_argument("--quick", action="store_true",
                   help="one tiny generated instance and one GAP problem (smoke run)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"markdown report (default {DEFAULT_MD.relative_to(REPO)}, "
                        f"with --quick {QUICK_MD.relative_to(REPO)})")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--sizes", default=None,
                   help="comma list of instance names to run instead of the suite's: "
                        + ", ".join(SIZES))
    p.add_argument("--gap-sets", default=None, help="comma list, e.g. gap1,gapd")
    p.add_argument("--time-limit", type=float, default=None,
                   help="allocator time limit for every generated instance")
    p.add_argument("--baseline-limit", type=float, default=None,
                   help="baseline cap for every generated instance (default per size)")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--lp-limit", type=float, default=900.0,
                   help="time limit of the LP relaxation bound")
    p.add_argument("--verbose", action="store_true", help="show the allocator's progress")
    p.add_argument("--mem-cap-gb", type=float, default=MEM_CAP_MB / 1024,
                   help="kill a run whose resident memory exceeds this (protects the machine)")
    p.add_argument("--work", type=Path, default=None,
                   help=f"folder for instances, results and raw records (default "
                        f"{OUT.relative_to(REPO)})")
    p.add_argument("--render", type=Path, default=None, metavar="JSON",
                   help="only re-render the report from the raw records of an earlier run")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.one is not None:
        return run_one(args.one)

    saved_out, saved_cap = OUT, MEM_CAP_MB
    MEM_CAP_MB = args.mem_cap_gb * 1024
    if args.work is not None:
        OUT = args.work.resolve()
    try:
        return _run(args, p)
    finally:
        OUT, MEM_CAP_MB = saved_out, saved_cap


def _run(args: argparse.Namespace, p: argparse.ArgumentParser) -> int:
    """The parent side of :func:`main`: run the suites, print and write the report."""
    out_md = args.out or (QUICK_MD if args.quick else DEFAULT_MD)
    if args.render is not None:
        raw = json.loads(args.render.read_text(encoding="utf-8"))
        for key, value in raw["args"].items():
            setattr(args, key, value)
        text = render(raw["instances"], raw["gap"], args, [tuple(f) for f in raw["facts"]],
                      raw["seconds"])
        write_report(text, args.out or (QUICK_MD if args.quick else DEFAULT_MD))
        return 0
    t0 = time.perf_counter()
    if args.suite is None:
        args.suite = "all" if not (args.sizes or args.gap_sets) else "custom"
    if args.sizes:
        unknown = [s for s in args.sizes.split(",") if s not in SIZES]
        if unknown:
            p.error(f"unknown sizes {unknown}; valid: {', '.join(SIZES)}")
        sizes = [SIZES[s] for s in args.sizes.split(",")]
    elif args.quick:
        sizes = [QUICK_SIZE] if args.suite in ("city", "scale", "all") else []
    else:
        names = SUITE_SIZES["city"] + SUITE_SIZES["scale"] if args.suite == "all" else (
            SUITE_SIZES.get(args.suite, []))
        sizes = [SIZES[n] for n in names]
    if args.gap_sets:
        gap_files = args.gap_sets.split(",")
        unknown = [g for g in gap_files if g not in GAP_FILES]
        if unknown:
            p.error(f"unknown GAP sets {unknown}; valid: {', '.join(GAP_FILES)}")
    elif args.suite in ("gap", "all"):
        gap_files = ["gap1"] if args.quick else list(GAP_FILES)
    else:
        gap_files = []

    recs = [bench_instance(s, args) for s in sizes]
    gap_rows = bench_gap(gap_files, args.quick) if gap_files else []
    facts, seconds = machine_facts(), time.perf_counter() - t0
    text = render(recs, gap_rows, args, facts, seconds)
    write_report(text, out_md)
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"{out_md.stem}.json"
    record = {"args": {"suite": args.suite, "quick": args.quick, "seed": args.seed,
                       "argv": args.argv},
              "facts": facts, "seconds": seconds, "instances": recs, "gap": gap_rows}
    raw.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    say(f"wrote {out_md} and {raw}")
    return 0


def write_report(text: str, out_md: Path) -> None:
    """Print the report and write it (atomically) to out_md."""
    print(text)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_md.with_name(out_md.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_md)


if __name__ == "__main__":
    sys.exit(main())
