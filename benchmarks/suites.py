"""The benchmark's instances and what is run on each.

- `city`, `scale`: allocator's own generator (`allocator generate`, seed 2027), as before.
- `hidden`: cities of 1,000-3,000 enterprises from benchmarks/othergen.py, a generator written
  independently of allocator's (issue 21), at the policy's default time limit against the
  baseline: the per-instance speed-up and the level values side by side.
- `demo`: instances/k_city, the shipped demo, at the default time limit.
- `large`: othergen cities of 5,000, 10,000 and 20,000 enterprises at the default time limit
  (issue 21's 5,000 / 60 / 10 and 10,000 / 100 / 12 shapes), no baseline: each level's gap to
  its own proven bound is what is judged.
- `backends`: 120-enterprise cities (both generators) solved by every backend at the default
  time limit against the baseline's reference optimum.
- `rules`: othergen cities (other-5k's shape and hidden-1500-s3) with one policy rule on that
  the province path does not restore (a minimum district coverage, a city-wide share cap,
  districts per agency, co-payment), no baseline: each level against its own bound, judged
  as `large` (the suites above never switch these rules on).
- `gap`: OR-Library gap1-gap12 and gapa-gapd, min sense.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import report_run, run_check, run_child, say

SEED = 2027
GAP_FILES = [f"gap{i}" for i in range(1, 13)] + ["gapa", "gapb", "gapc", "gapd"]
#: per-problem target seconds; the allocator gets 1 s less so load + write fit inside
GAP_TARGET_S = {"gapd": 60.0}
GAP_DEFAULT_TARGET_S = 10.0
#: the baseline's cap on the hidden cities and on the reference runs of the backends suite
BASELINE_CAP_S = 600.0


@dataclass(frozen=True)
class Case:
    """One benchmark instance: how to make it, and the limits its runs get.

    `time_limit` None is the policy's own (60 s); `baseline_limit` None skips the baseline;
    `solvers` other than ("auto",) runs the allocator once per backend (backends suite)."""

    name: str
    suite: str
    make: Callable[[Path], Path] = field(compare=False, repr=False)
    enterprises: int
    agencies: int | None
    districts: int | None
    time_limit: float | None
    baseline_limit: float | None
    role: str = ""
    solvers: tuple[str, ...] = ("auto",)


def _allocator_city(n: int, m: int, d: int, seed: int) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        from allocator.data.generate import generate_instance, write_instance

        write_instance(generate_instance(n, m, d, seed), path)
        return path
    return make


def _hidden_city(n: int, seed: int) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        from benchmarks.othergen import hidden_city

        return hidden_city(n, seed, path)
    return make


def _other_city(n: int, m: int, d: int, seed: int) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        from benchmarks.othergen import family_knobs, generate

        _, _, knobs = family_knobs(seed, n)
        return generate(n, m, d, seed, path, **knobs)
    return make


def _with_policy(make: Callable[[Path], Path], changes: dict) -> Callable[[Path], Path]:
    """`make`, then `changes` ({section: {key: value}}) written into its policy.yaml."""
    def made(path: Path) -> Path:
        import yaml

        folder = make(path)
        file = folder / "policy.yaml"
        policy = yaml.safe_load(file.read_text(encoding="utf-8"))
        for section, values in changes.items():
            policy[section] = {**(policy.get(section) or {}), **values}
        file.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        return folder
    return made


def _shipped(name: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        return harness.REPO / "instances" / name
    return make


def _shape(n: int, seed: int) -> tuple[int, int]:
    from benchmarks.othergen import family_knobs

    m, d, _ = family_knobs(seed, n)
    return m, d


def cases(seed: int = SEED) -> dict[str, Case]:
    """Every benchmark instance by name (the allocator-generated ones with `seed`)."""
    out: list[Case] = [
        Case("city-1k", "city", _allocator_city(1_000, 30, 8, seed), 1_000, 30, 8, 300, 600),
        Case("city-2k", "city", _allocator_city(2_000, 40, 10, seed), 2_000, 40, 10, 300, 600,
             "City target"),
        Case("scale-5k", "scale", _allocator_city(5_000, 80, 20, seed), 5_000, 80, 20, 300,
             600),
        Case("scale-20k", "scale", _allocator_city(20_000, 200, 50, seed), 20_000, 200, 50,
             300, 600),
        Case("province-100k", "scale", _allocator_city(100_000, 500, 100, seed), 100_000, 500,
             100, 240, None, "Province target"),
        Case("k_city", "demo", _shipped("k_city"), 2_000, 40, 10, None, BASELINE_CAP_S,
             "the demo"),
    ]
    for n, s in HIDDEN:
        m, d = _shape(n, s)
        out.append(Case(f"hidden-{n}-s{s}", "hidden", _hidden_city(n, s), n, m, d, None,
                        BASELINE_CAP_S))
    for n, m, d, s in LARGE:
        out.append(Case(f"other-{n // 1000}k", "large", _other_city(n, m, d, s), n, m, d,
                        None, None))
    for n, s in LARGE_HIDDEN:
        m, d = _shape(n, s)
        out.append(Case(f"hidden-{n // 1000}k-s{s}", "large", _hidden_city(n, s), n, m, d,
                        None, None))
    for label, changes in RULES:
        n, m, d, s = LARGE[0]
        out.append(Case(f"rules-5k-{label}", "rules",
                        _with_policy(_other_city(n, m, d, s), changes), n, m, d, None, None))
        m, d = _shape(1_500, 3)
        out.append(Case(f"rules-1500-{label}", "rules",
                        _with_policy(_hidden_city(1_500, 3), changes), 1_500, m, d, None,
                        None))
    for n, s in BACKEND_HIDDEN:
        m, d = _shape(n, s)
        out.append(Case(f"b120-hidden-s{s}", "backends", _hidden_city(n, s), n, m, d, None,
                        BASELINE_CAP_S, solvers=BACKENDS))
    for n, m, d, s in BACKEND_OWN:
        out.append(Case(f"b120-own-s{s}", "backends", _allocator_city(n, m, d, s), n, m, d,
                        None, BASELINE_CAP_S, solvers=BACKENDS))
    return {c.name: c for c in out}


#: the hidden-city family (enterprises, seed): agencies, districts and every knob come from the
#: seed (benchmarks/othergen.family_knobs)
HIDDEN = [(1_000, 1), (1_000, 2), (1_500, 3), (1_500, 4), (1_500, 5), (1_500, 6), (1_500, 7),
          (1_500, 8), (2_000, 9), (3_000, 10)]
#: othergen cities at scale: enterprises, agencies, districts, seed (issue 21's shapes)
LARGE = [(5_000, 60, 10, 21), (10_000, 100, 12, 22), (20_000, 160, 16, 23)]
#: hidden-family cities at scale (enterprises, seed): capacity at 64 % (s301) and 71 % (s303)
#: of the person-days asked, the tightest of twelve such cities of 5,000-10,000 (sixth session)
LARGE_HIDDEN = [(10_000, 301), (10_000, 303)]
#: one rule on each (the `rules` suite): label, policy changes
RULES = [("ratio", {"coverage": {"min_district_ratio": 0.6}}),
         ("city-share", {"anti_monopoly": {"max_share_in_city": 0.1}}),
         ("districts", {"anti_monopoly": {"max_districts_per_agency": 2}}),
         ("copay", {"copay": {"share_by_risk": {1: 0.3, 2: 0.2}}})]
#: 120-enterprise cities for the backends: othergen (seed), allocator generate (shape, seed)
BACKEND_HIDDEN = [(120, 31), (120, 33), (120, 35)]
BACKEND_OWN = [(120, 10, 3, 22), (120, 10, 3, 27), (120, 12, 3, 2)]
BACKENDS = ("highs", "cbc", "cpsat")
QUICK = Case("tiny", "quick", _allocator_city(60, 6, 2, SEED), 60, 6, 2, 30, 60)


def suite_cases(suite: str, seed: int) -> list[Case]:
    """The cases of a suite ("all": city, scale and gap as before issue 21, plus hidden,
    demo, large and backends)."""
    every = cases(seed)
    if suite == "all":
        return list(every.values())
    return [c for c in every.values() if c.suite == suite]


def bench_case(case: Case, args: argparse.Namespace) -> dict:
    """Make one instance; allocator (per backend), check, LP bound and baseline on it."""
    say(f"{case.name}: making {case.enterprises:,} enterprises"
        + (f", {case.agencies} agencies, {case.districts} districts" if case.agencies else ""))
    inst = case.make(harness.OUT / "instances" / case.name)
    limit = args.time_limit or case.time_limit
    rec: dict[str, Any] = {"name": case.name, "suite": case.suite, "role": case.role,
                           "instance": str(inst), "enterprises": case.enterprises,
                           "agencies": case.agencies, "districts": case.districts,
                           "time_limit": limit}
    for solver in case.solvers:
        key = "allocator" if solver == "auto" else f"allocator:{solver}"
        res_dir = harness.OUT / "results" / f"{case.name}-{solver}"
        say(f"{case.name}: allocator ({solver}, time limit "
            f"{'policy default' if limit is None else f'{limit:.0f} s'})")
        run = run_child({"kind": "allocator", "id": f"{case.name}-{solver}",
                         "instance": str(inst), "time_limit": limit,
                         "solver": None if solver == "auto" else solver,
                         "results_dir": str(res_dir), "verbose": args.verbose},
                        timeout=2 * (limit or 60) + 300)
        report_run(case.name, f"allocator ({solver})", run)
        if run.get("status") in ("optimal", "feasible"):
            run["check"] = run_check(inst, res_dir, timeout=max(600.0, limit or 60))
        else:
            run["check"] = {"check": "no plan"}
        rec[key] = run
    if "allocator" not in rec:  # the backends suite: report the first backend as the run
        rec["allocator"] = rec[f"allocator:{case.solvers[0]}"]
    rec["check"] = rec["allocator"]["check"]
    if case.suite not in ("backends", "hidden") and not args.no_lp:
        say(f"{case.name}: LP relaxation bound of level 1")
        rec["lp"] = run_child({"kind": "lpbound", "id": f"{case.name}-lp",
                               "instance": str(inst), "time_limit": args.lp_limit},
                              timeout=args.lp_limit + 600)
    base_limit = case.baseline_limit if args.baseline_limit is None else args.baseline_limit
    if args.no_baseline:
        rec["baseline"] = {"skipped": "not run (--no-baseline)"}
    elif base_limit is None:
        rec["baseline"] = {"skipped": "skipped (judged against its own bound)"}
    else:
        say(f"{case.name}: baseline (PuLP + HiGHS, cap {base_limit:.0f} s)")
        rec["baseline"] = run_child({"kind": "baseline", "id": f"{case.name}-baseline",
                                     "instance": str(inst), "time_limit": base_limit},
                                    timeout=1.5 * base_limit + 300)
        report_run(case.name, "baseline", rec["baseline"])
    return rec


def bench_gap(files: list[str], quick: bool) -> list[dict]:
    """Every min-sense problem of each OR-Library file, one child process per problem."""
    from benchmarks.gap_instances import load_optima, optimum, read_orlib

    root = harness.shared_benchmarks() / "gap"
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
                   "instance": str(harness.OUT / "gap" / name),
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
