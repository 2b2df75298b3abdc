"""Policy scenarios side by side (`allocator compare`), and the price of each rule.

A scenarios file names what-if policies, each overriding policy.yaml keys and/or the budget:

    scenarios:
      baseline: {}
      more_money: {budget: 15000000}
      strict_quality: {quality: {min_score: 70}}
      bigger_transport_fund: {funding: {S03: 1500000}}      # with funding.csv
      copay: {copay: {share_by_risk: {1: 0.3, 2: 0.2}}}

Every scenario is checked like policy.yaml (an unknown key is an error, with a did-you-mean)
before anything is solved or written. `funding` (not a policy key) sets some funding sources'
amounts for the scenario, the others as in funding.csv. With --price-of-rules each
anti-monopoly and quality rule in force is switched off in turn, warm-started from the plan
with every rule on (which stays feasible when a rule is dropped); the served weight gained is
the rule's price.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from allocator.analysis.diagnose import attach_diagnosis
from allocator.core.errors import Problem
from allocator.data.funding import with_amounts
from allocator.data.instance import Instance
from allocator.data.policy import Policy, deep_merge, parse_policy
from allocator.data.reading import decode_text, file_problem, load_yaml, read_file
from allocator.eligibility import Eligibility, compute_eligibility
from allocator.pipeline.result import RunResult
from allocator.pipeline.solve import solve_instance
from allocator.pipeline.threads import default_threads
from allocator.whatif.pool import Executor, run_all, task_threads
from allocator.whatif.sweep import plan_rows

TOP_KEYS = ("scenarios",)
COMPARISON_COLUMNS = ["scenario", "status", "coverage", "coverage_ratio", "cost",
                      "agencies_used", "largest_district_share", "mean_quality", "herfindahl",
                      "budget", "quality", "mandatory_served", "mandatory_total", "gap",
                      "seconds", "price_of_rule", "note", "overrides", "folder"]
#: a ceiling ratio so high that no offer is above it (the price band switched off)
NO_CEILING = 1e6


# ------------------------------------------------------------------------------------------
# the scenarios file
# ------------------------------------------------------------------------------------------

@dataclass
class Scenario:
    """A named what-if: its overrides (policy.yaml's shape) and the policy they give."""

    name: str
    overrides: dict[str, Any]
    policy: Policy
    funding: dict[str, float] = field(default_factory=dict)  # source amounts replaced


def _normalise(overrides: dict[str, Any]) -> dict[str, Any]:
    """`budget: 15000000` is shorthand for `budget: {total: 15000000}`."""
    out = dict(overrides)
    b = out.get("budget")
    if b is not None and not isinstance(b, dict):
        out["budget"] = {"total": b}
    return out


def load_scenarios(path: Path | str | dict[str, Any], base: Policy,
                   sources: Any = None) -> tuple[list[Scenario], list[Problem]]:
    """Read and check a scenarios file (or the same mapping as a dict) against the instance's
    policy and funding sources (ids, None without funding.csv); every problem found."""
    raw: Any
    if isinstance(path, dict):
        file, raw = "scenarios", path
    else:
        path = Path(path)
        file = path.name
        if file_problem(path) == "":
            return [], [Problem(str(path), None, "", None, "scenarios file not found",
                                "give the path of a YAML file with a 'scenarios:' section")]
        read: list[Problem] = []
        data = read_file(path, file, read)
        text = None if data is None else decode_text(data, file, read)
        raw = None if text is None else load_yaml(text, file, read)
        if read:
            return [], read
    problems: list[Problem] = []
    if not isinstance(raw, dict) or "scenarios" not in raw:
        if isinstance(raw, dict):
            for key in raw:
                close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
                problems.append(Problem(file, None, str(key), None, "unknown top-level key",
                                        f"did you mean '{close[0]}'?" if close else
                                        "the file has one section, 'scenarios:'"))
        return [], problems + [Problem(file, None, "scenarios", None,
                                       "no 'scenarios:' section",
                                       "write 'scenarios:' and under it one named mapping of "
                                       "policy overrides per scenario")]
    for key in raw:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
            problems.append(Problem(file, None, str(key), None, "unknown top-level key",
                                    f"remove it; did you mean '{close[0]}'?" if close else
                                    "remove it; the file has one section, 'scenarios:'"))
    items = raw["scenarios"]
    if not isinstance(items, dict) or not items:
        problems.append(Problem(file, None, "scenarios", None,
                                "must be a non-empty mapping of named scenarios",
                                "write e.g. 'baseline: {}' and 'more_money: {budget: 15000000}'"))
        return [], problems
    base_raw = base.as_dict()
    scenarios: list[Scenario] = []
    seen_folders: dict[str, str] = {}
    for name, over in items.items():
        label = f"{file}, scenario '{name}'"
        sname = str(name)
        if not sname.strip() or sname.startswith("without:"):
            problems.append(Problem(label, None, "", name, "bad scenario name",
                                    "use a short name (not empty, not starting 'without:')"))
            continue
        folder = folder_name(sname).casefold()  # Windows and macOS ignore case in names
        if folder in seen_folders:
            problems.append(Problem(label, None, "", name,
                                    f"gives the same folder name as '{seen_folders[folder]}'",
                                    "rename one of them"))
        seen_folders[folder] = sname
        if over is None:
            over = {}
        if not isinstance(over, dict):
            problems.append(Problem(label, None, "", over, "must be a mapping of policy keys",
                                    "write e.g. {budget: 15000000} or "
                                    "{quality: {min_score: 70}}, or {} for the policy as is"))
            continue
        over = _normalise(over)
        amounts, found = _funding_overrides(over.get("funding"), sources, label)
        problems += found
        policy, found = parse_policy(deep_merge(base_raw, {k: v for k, v in over.items()
                                                           if k != "funding"}),
                                     file=label, budget_optional=base.budget_total is None)
        problems += found
        if policy is not None and not found:
            scenarios.append(Scenario(sname, over, policy, amounts))
    return scenarios, problems


def _funding_overrides(value: Any, sources: Any, label: str
                       ) -> tuple[dict[str, float], list[Problem]]:
    """A scenario's `funding: {SOURCE: amount}`: known sources, amounts >= 0."""
    if value is None:
        return {}, []
    known = [str(s) for s in (sources if sources is not None else [])]
    if not known:
        return {}, [Problem(label, None, "funding", None, "the instance has no funding.csv",
                            "remove 'funding:' or add funding.csv to the instance")]
    if not isinstance(value, dict) or not value:
        return {}, [Problem(label, None, "funding", value,
                            "must be a mapping of funding source id -> amount",
                            "write e.g. funding: {S03: 1500000}")]
    out: dict[str, float] = {}
    found: list[Problem] = []
    for sid, amount in value.items():
        key = str(sid)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            found.append(Problem(label, None, f"funding.{key}", sid, "unknown funding source",
                                    f"use a source_id of funding.csv ({', '.join(known)})"
                                    + (f"; did you mean '{close[0]}'?" if close else "")))
        elif (isinstance(amount, bool) or not isinstance(amount, int | float)
              or not amount >= 0 or amount == float("inf")):
            found.append(Problem(label, None, f"funding.{key}", amount,
                                    "amount must be a number >= 0",
                                    f"write e.g. funding: {{{key}: 1500000}}"))
        else:
            out[key] = float(amount)
    return out, found


def folder_name(name: str) -> str:
    """A file-system-safe folder name for a scenario: letters of any script (Chinese names
    stay readable), digits, '.', '_' and '-' kept, anything else (spaces, slashes, colons,
    characters Windows forbids) turned into '_'; at most 80 characters."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(c if (c.isalnum() or c in "._-") and c.isprintable() else "_" for c in text)
    text = re.sub(r"_+", "_", text).strip("._ ")[:80].rstrip("._ ")
    if text.upper().split(".")[0] in WINDOWS_RESERVED:
        text = f"_{text}"
    return text or "scenario"


#: names Windows refuses for a file or folder, whatever the extension
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                    *(f"LPT{i}" for i in range(1, 10))}


def rule_switches(base: Policy) -> list[tuple[str, dict[str, Any]]]:
    """(rule name, overrides switching it off) for every anti-monopoly and quality rule in
    force, and the price band."""
    out: list[tuple[str, dict[str, Any]]] = []
    if base.max_share_in_district is not None and base.max_share_in_district < 1:
        out.append(("max_share_in_district", {"anti_monopoly": {"max_share_in_district": None}}))
    if base.min_agencies_per_district > 1:
        out.append(("min_agencies_per_district",
                    {"anti_monopoly": {"min_agencies_per_district": 0}}))
    if base.max_share_in_city is not None and base.max_share_in_city < 1:
        out.append(("max_share_in_city", {"anti_monopoly": {"max_share_in_city": None}}))
    if base.max_districts_per_agency is not None:
        out.append(("max_districts_per_agency",
                    {"anti_monopoly": {"max_districts_per_agency": None}}))
    if base.min_score > 0:
        out.append(("quality.min_score", {"quality": {"min_score": 0}}))
    if any(v > base.min_score for v in base.min_score_by_risk.values()):
        out.append(("quality.min_score_by_risk", {"quality": {"min_score_by_risk": {}}}))
    if base.floor_ratio > 0 or base.ceiling_ratio < NO_CEILING:
        out.append(("price_band", {"price": {"floor_ratio": 0.0, "ceiling_ratio": NO_CEILING}}))
    # the planner's year: the continuity rules cost served weight too (with incumbents only)
    if base.max_changes is not None:
        out.append(("continuity.max_changes", {"continuity": {"max_changes": None}}))
    if base.max_tenure_years is not None:
        out.append(("continuity.max_tenure_years", {"continuity": {"max_tenure_years": None}}))
    return out


# ------------------------------------------------------------------------------------------
# one scenario
# ------------------------------------------------------------------------------------------

def herfindahl(assignments: pd.DataFrame) -> float | None:
    """Herfindahl index of agency shares of each district's spend, averaged over the
    districts with any spend (1 = one agency takes all, 1/n = n equal agencies)."""
    if assignments is None or assignments.empty:
        return None
    spend = assignments.groupby(["district_id", "agency_id"])["cost"].sum()
    share = spend / spend.groupby(level="district_id").transform("sum")
    hhi = (share ** 2).groupby(level="district_id").sum()
    return float(hhi.mean()) if len(hhi) else None


def scenario_row(name: str, result, seconds: float, overrides: dict[str, Any],
                 folder: str) -> dict[str, Any]:
    """One comparison.csv row from a scenario's result."""
    s = result.summary
    has = result.status.has_solution
    a = result.assignments
    cov = s.get("coverage") if has else None
    return {
        "scenario": name, "status": s["status"],
        "coverage": cov,
        "coverage_ratio": s.get("coverage_ratio") if has else None,
        "cost": s.get("cost") if has else None,
        "agencies_used": s.get("agencies_used") if has else None,
        "largest_district_share": s.get("max_district_share") if has else None,
        "mean_quality": (s["quality"] / cov) if has and cov else None,
        "herfindahl": herfindahl(a) if has else None,
        "budget": s.get("budget") if s.get("budget") is not None else s.get("funding_total"),
        "quality": s.get("quality") if has else None,
        "mandatory_served": s.get("mandatory_served") if has else None,
        "mandatory_total": s.get("mandatory_total"),
        "gap": s.get("gap") if has else None, "seconds": round(seconds, 3),
        "price_of_rule": None, "note": "",
        "overrides": yaml.safe_dump(overrides, default_flow_style=True, width=10_000).strip()
        if overrides else "{}",
        "folder": folder,
    }


@dataclass
class Task:
    """One scenario to solve in a worker process (or in this one)."""

    name: str
    inst: Instance
    overrides: dict[str, Any]
    start: pd.DataFrame | None
    solver: str | None
    time_limit: float | None
    folder: str
    elig: Eligibility | None = None


def _elig_key(pol: Policy) -> tuple:
    """The policy fields eligibility depends on (the triples carry the weights too)."""
    return (pol.min_score, tuple(sorted(pol.min_score_by_risk.items())), pol.floor_ratio,
            pol.ceiling_ratio, tuple(sorted(pol.weights.items())))


def run_task(task: Task) -> tuple[dict[str, Any], RunResult]:
    """Solve one scenario (with its diagnosis when infeasible): its comparison row and result."""
    t0 = time.perf_counter()
    if task.inst.policy.threads is None:  # on a cluster worker: its share of the cores
        task = dataclasses.replace(task, inst=dataclasses.replace(
            task.inst, policy=dataclasses.replace(task.inst.policy, threads=task_threads())))
    elig = task.elig if task.elig is not None else compute_eligibility(task.inst)
    result = solve_instance(task.inst, solver=task.solver, time_limit=task.time_limit,
                            elig=elig, start=task.start)
    result = attach_diagnosis(task.inst, elig, result, task.solver, task.time_limit)
    result.summary["scenario"] = {"name": task.name, "overrides": task.overrides,
                                  "warm_start_rows": 0 if task.start is None
                                  else len(task.start)}
    row = scenario_row(task.name, result, time.perf_counter() - t0, task.overrides,
                       task.folder)
    return row, result


def _with_funding(inst: Instance, amounts: dict[str, float]) -> Instance:
    return with_amounts(inst, amounts) if amounts else inst


def _with_threads(inst: Instance, policy: Policy, threads: int | None) -> Instance:
    """The instance under a scenario's policy; threads None keeps the policy's (a cluster
    worker then uses its own cores)."""
    pol = dataclasses.replace(policy, threads=policy.threads if threads is None else threads)
    same_weights = pol.weights == inst.policy.weights
    return dataclasses.replace(inst, policy=pol) if same_weights else inst.with_policy(pol)


@dataclass
class ComparisonResult:
    """Scenarios side by side (comparison.csv) and each scenario's result by folder name."""

    instance: Instance
    table: pd.DataFrame
    results: dict[str, RunResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def has_plan(self) -> bool:
        return bool(self.table["status"].isin(["optimal", "feasible"]).any())


#: progress of a comparison: {"scenario", "status", "done", "total"} per finished scenario
CompareProgress = Callable[[dict[str, Any]], None]


def run_compare(inst: Instance, scenarios: list[Scenario], price_of_rules: bool = False,
                jobs: int = 1, solver: str | None = None, time_limit: float | None = None,
                progress: CompareProgress | None = None,
                executor: Executor | None = None) -> ComparisonResult:
    """Solve every scenario (and, with price_of_rules, the policy with each rule off, warm-
    started from the plan with every rule on) on `executor` (default: this machine's pool
    of `jobs` processes); nothing is written here."""
    t_start = time.perf_counter()
    if executor is not None:
        jobs = executor.slots
    cores = inst.policy.threads or default_threads()
    base_name = next((s.name for s in scenarios if not s.overrides), None)
    switches = rule_switches(inst.policy) if price_of_rules else []
    n_first = len(scenarios) + (1 if price_of_rules and base_name is None else 0)
    total = n_first + len(switches)
    remote = executor is not None and executor.remote
    # on a cluster each worker decides (policy threads, else its cores per task)
    threads = None if remote else max(1, cores // max(1, min(jobs, n_first)))
    tasks = [Task(s.name, _with_threads(_with_funding(inst, s.funding), s.policy, threads),
                  s.overrides, None, solver, time_limit, folder_name(s.name))
             for s in scenarios]
    if price_of_rules and base_name is None:
        base_name = "policy.yaml"
        tasks.append(Task(base_name, _with_threads(inst, inst.policy, threads), {}, None,
                          solver, time_limit, "instance_policy"))
    count = [0]

    def tick(_k: int, out: tuple[dict[str, Any], RunResult]) -> None:
        count[0] += 1
        if progress is not None:
            progress({"scenario": out[0]["scenario"], "status": out[0]["status"],
                      "done": count[0], "total": total})

    _share_eligibility(tasks)
    done = run_all(run_task, tasks, jobs, on_result=tick, executor=executor)
    rows = [r for r, _ in done]
    results = {r["folder"]: res for r, res in done}
    if switches:
        base_row, base_res = next((r, res) for r, res in done if r["scenario"] == base_name)
        base_plan = plan_rows(base_res.assignments) if base_res.status.has_solution else None
        t2 = None if remote else max(1, cores // max(1, min(jobs, len(switches))))
        rule_tasks = []
        for rule, over in switches:
            pol, found = parse_policy(deep_merge(inst.policy.as_dict(), over),
                                      budget_optional=inst.policy.budget_total is None)
            assert pol is not None, found  # switching a rule off is always valid
            rule_tasks.append(Task(f"without:{rule}", _with_threads(inst, pol, t2), over,
                                   base_plan, solver, time_limit,
                                   folder_name(f"without_{rule}")))
        _share_eligibility(rule_tasks)
        for row, res in run_all(run_task, rule_tasks, jobs, on_result=tick,
                                executor=executor):
            row.update(rule_price(row, base_row))
            rows.append(row)
            results[row["folder"]] = res
    table = pd.DataFrame(rows)
    for col in COMPARISON_COLUMNS:
        if col not in table.columns:
            table[col] = None
    return ComparisonResult(inst, table[COMPARISON_COLUMNS], results,
                            time.perf_counter() - t_start)


def _share_eligibility(tasks: list[Task]) -> None:
    """Eligibility computed once per distinct set of the policy fields it depends on, and
    handed to every task that shares them."""
    found: dict[tuple, Eligibility] = {}
    for task in tasks:
        key = _elig_key(task.inst.policy)
        if key not in found:
            found[key] = compute_eligibility(task.inst)
        task.elig = found[key]


def rule_price(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Coverage without the rule minus coverage with it (the served weight the rule costs)."""
    on, off = base.get("coverage"), row.get("coverage")
    if on is not None and off is not None:
        price = float(off) - float(on)
        note = "" if row["status"] == "optimal" and base["status"] == "optimal" else \
            "not proven optimal (time limit): the price is approximate"
        return {"price_of_rule": price, "note": note}
    if on is None and off is not None:
        return {"price_of_rule": None,
                "note": f"no plan with every rule on ({base['status']}); feasible without it"}
    return {"price_of_rule": None, "note": f"no plan without it ({row['status']})"}


__all__ = ["ComparisonResult", "Scenario", "herfindahl", "load_scenarios", "rule_switches",
           "run_compare"]
