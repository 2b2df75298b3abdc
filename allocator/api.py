"""The public Python API: `import allocator`.

Every function returns a typed object and raises only AllocatorError subclasses for what the
caller can fix; nothing here prints, exits or loads click, tqdm or matplotlib (a chart is drawn
only when a sweep or comparison folder is written). Progress goes to an optional callback,
detail to the standard `logging` module (logger "allocator").
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.analysis.audit import Audit, audit_results
from allocator.analysis.diagnose import attach_diagnosis, diagnosis_summary, explain
from allocator.analysis.diff import PlanDiff, PlanFiles, diff_plans, plan_files, read_plan
from allocator.analysis.evaluate import (
    EvaluationRules,
    evaluate_pool,
    next_incumbents,
    pool_counts,
    read_plan_assignments,
)
from allocator.core.errors import InputError, UsageError
from allocator.core.folders import stage
from allocator.data.generate import generate_instance, write_instance
from allocator.data.instance import Instance
from allocator.data.validation import instance_from_frames, load_instance
from allocator.eligibility import compute_eligibility
from allocator.output.batch_folder import fill_batch, fill_outcome
from allocator.output.diff_folder import write_diff
from allocator.output.next_year import already_applied, new_agencies_text, write_next_year
from allocator.output.results_folder import write_results
from allocator.output.whatif_folders import write_comparison, write_sweep
from allocator.pipeline.result import RunResult
from allocator.pipeline.solve import solve_instance
from allocator.solvers import Status
from allocator.whatif.batch import BatchResult, Manifest, load_manifest, run_batch
from allocator.whatif.cluster import open_executor
from allocator.whatif.compare import ComparisonResult, load_scenarios, run_compare
from allocator.whatif.sweep import SweepResult, parse_budgets, run_sweep

log = logging.getLogger("allocator")

#: progress callback: one line of text per phase (what the command line shows on stderr)
Progress = Callable[[str], None]


def _say(progress: Progress | None) -> Progress:
    def say(msg: str) -> None:
        log.info(msg)
        if progress is not None:
            progress(msg)
    return say


def _check_time_limit(time_limit: float | None) -> None:
    if time_limit is not None and not (isinstance(time_limit, int | float)
                                       and 0 < time_limit < float("inf")):
        raise UsageError(f"time_limit must be a positive number of seconds, not {time_limit!r}")


# ------------------------------------------------------------------------------------------
# plans
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The outcome of `solve`: status, the three level values, the plan's tables and, when no
    plan exists, the diagnosis. `write(folder)` writes the results folder atomically."""

    result: RunResult
    instance: Instance | None = None

    @property
    def status(self) -> Status:
        """optimal, feasible, infeasible, no_solution or error."""
        return self.result.status

    @property
    def has_plan(self) -> bool:
        return self.result.status.has_solution

    @property
    def coverage(self) -> float | None:
        """Served risk-weighted demand (level 1)."""
        return self.result.coverage

    @property
    def quality(self) -> float | None:
        """Sum of weight x agency quality over served demands (level 2)."""
        return self.result.quality

    @property
    def cost(self) -> float | None:
        """Total cost (level 3), in the policy's currency."""
        return self.result.cost

    @property
    def gap(self) -> float | None:
        """The largest relative MIP gap of the optimised levels (None: unknown)."""
        return self.result.gap

    @property
    def bound(self) -> float | None:
        """Proven upper bound on the served weight."""
        return self.result.summary.get("bound")

    @property
    def levels(self) -> list[dict[str, Any]]:
        """Per level: name, sense, status, value, bound, gap, seconds."""
        return self.result.levels

    @property
    def assignments(self) -> pd.DataFrame:
        return self.result.assignments

    @property
    def unserved(self) -> pd.DataFrame:
        return self.result.unserved

    @property
    def agencies(self) -> pd.DataFrame:
        return self.result.agencies

    @property
    def districts(self) -> pd.DataFrame:
        return self.result.districts

    @property
    def excluded(self) -> pd.DataFrame:
        return self.result.excluded

    @property
    def funding(self) -> pd.DataFrame | None:
        """funding.csv rows (source_id, name, department, amount, used, left, share_used)
        when the instance has funding sources, else None."""
        return self.result.funding

    @property
    def funding_by_agency(self) -> pd.DataFrame | None:
        """funding_by_agency.csv rows (agency_id, source_id, amount), or None."""
        return self.result.funding_by_agency

    @property
    def stability(self) -> float | None:
        """Served weight kept with its incumbent agency (with incumbents.csv), else None."""
        return self.result.stability

    @property
    def changes(self) -> pd.DataFrame | None:
        """changes.csv rows (with incumbents.csv): each demand against last year's plan."""
        return self.result.changes

    @property
    def diagnosis(self) -> pd.DataFrame | None:
        """diagnosis.csv rows (rule, subject, required, available, shortfall, message) when
        the run is infeasible, else None."""
        return self.result.diagnosis

    def summary(self) -> dict[str, Any]:
        """summary.json as a dict (a copy)."""
        return copy.deepcopy(self.result.summary)

    def write(self, folder: str | Path, force: bool = False, report: bool = False,
              workbook: bool = True, lang: str | None = None) -> Path:
        """Write the results folder atomically (the CSV files, summary.json, plan.xlsx and,
        with report, report.html; lang en or zh, default the policy's report.language);
        refused (OutputPathError) over a folder that holds files allocator did not write,
        unless force."""
        protect = [self.instance.path] if self.instance is not None else []
        return write_results(self.result, Path(folder), force=force,
                             protect=[p for p in protect if Path(p).exists()],
                             extras=plan_extras(workbook, report, lang, self.instance))


def plan_extras(workbook: bool, report: bool, lang: str | None,
                instance: Instance | None) -> dict[str, Callable[[Path], object]]:
    """The files written beside a plan's CSVs, into the same staging folder: plan.xlsx and
    report.html (both read the CSVs just written, so they say what the files say)."""
    from allocator.output.report import REPORT_FILE, write_report
    from allocator.output.workbook import WORKBOOK_FILE, write_workbook

    extras: dict[str, Callable[[Path], object]] = {}
    if workbook:
        extras[WORKBOOK_FILE] = lambda p: write_workbook(p, p / WORKBOOK_FILE, lang)
    if report:
        extras[REPORT_FILE] = lambda p: write_report(p, p / REPORT_FILE, lang, instance)
    return extras


def solve(instance: Instance, solver: str | None = None, time_limit: float | None = None,
          progress: Progress | None = None, start: pd.DataFrame | None = None,
          spend_split: bool = False) -> Plan:
    """Solve an instance under its policy; a Plan whatever the outcome (see Plan.status).

    `start`: a plan to warm-start from (rows with enterprise_id, service_id, agency_id, e.g.
    last year's assignments); rows that are not eligible this year are ignored.
    `spend_split`: one more solve, the cheapest plan serving the same weight, so that the
    report can say how much of the spend buys quality (summary.json's spend_split).
    """
    _check_time_limit(time_limit)
    say = _say(progress)
    elig = compute_eligibility(instance)
    result = solve_instance(instance, solver=solver, time_limit=time_limit, progress=say,
                            elig=elig, start=start)
    if result.status is Status.INFEASIBLE:
        say("diagnose: why no plan exists")
        result = attach_diagnosis(instance, elig, result, solver, time_limit, say)
    if spend_split and result.status.has_solution:
        from allocator.analysis.spend import spend_split as split

        say("spend split: the cheapest plan serving the same weight (quality left out)")
        found = split(instance, elig, result, solver, time_limit)
        if found is not None:
            result.summary["spend_split"] = found
    return Plan(result, instance)


# ------------------------------------------------------------------------------------------
# diagnosis and audit
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiagnosisReport:
    """Why an instance has no plan: `outcome` (feasible, infeasible or undetermined), the
    reasons as diagnosis.csv rows and as sentences, and the least budget when found."""

    outcome: str
    table: pd.DataFrame
    least_budget: float | None
    facts: dict[str, Any]
    excluded: pd.DataFrame
    instance: Instance

    @property
    def feasible(self) -> bool:
        return self.outcome == "feasible"

    @property
    def reasons(self) -> list[str]:
        return [str(m) for m in self.table["message"]]

    def summary(self) -> dict[str, Any]:
        return copy.deepcopy(self.facts)

    def write(self, folder: str | Path, force: bool = False) -> Path:
        """summary.json, diagnosis.csv and excluded.csv, atomically."""
        result = RunResult(self.facts, excluded=self.excluded, diagnosis=self.table)
        return write_results(result, Path(folder), force=force,
                             protect=[self.instance.path] if self.instance.path.exists()
                             else [])


def diagnose(instance: Instance, solver: str | None = None, time_limit: float | None = None,
             progress: Progress | None = None) -> DiagnosisReport:
    """Explain why no plan exists: each rule, subject and shortfall (or that a plan exists)."""
    _check_time_limit(time_limit)
    elig = compute_eligibility(instance)
    diag = explain(instance, elig, solver=solver, time_limit=time_limit,
                   progress=_say(progress))
    least = diag.elastic.least_cost if diag.elastic is not None else None
    return DiagnosisReport(diag.status, diag.table, least,
                           diagnosis_summary(instance, elig, diag), elig.excluded, instance)


def audit(instance_dir: str | Path, results_dir: str | Path,
          budget: float | None = None, funding: dict[str, float] | None = None,
          mip_gap: float | None = None) -> Audit:
    """Recompute every rule from the files alone (allocator check); `Audit.violations` is
    empty when every rule holds. `budget`, `funding` ({source_id: amount}) and `mip_gap`
    audit a what-if run against that budget, those source amounts and that relative gap
    (default: the instance's)."""
    return audit_results(Path(instance_dir), Path(results_dir), budget=budget,
                         funding=funding, mip_gap=mip_gap)


# ------------------------------------------------------------------------------------------
# what-if
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sweep:
    """A budget sweep: the frontier (one row per budget), each point's Plan, and the least
    budget that serves every mandatory demand."""

    result: SweepResult
    plans: dict[float, Plan] = field(default_factory=dict)

    @property
    def frontier(self) -> pd.DataFrame:
        return self.result.frontier

    @property
    def least_budget(self) -> float | None:
        return self.result.least_budget_mark

    @property
    def has_plan(self) -> bool:
        return self.result.has_plan

    def summary(self) -> dict[str, Any]:
        """frontier_summary.json as a dict."""
        return copy.deepcopy(self.result.summary)

    def write(self, folder: str | Path, force: bool = False, report: bool = False,
              lang: str | None = None) -> Path:
        """frontier.csv, frontier.png, frontier_summary.json and budget_<amount>/ per point;
        with report, report.html."""
        path = self.result.instance.path
        return write_sweep(self.result, Path(folder), force,
                           [path] if path.exists() else [], report=report, lang=lang)


def _check_jobs(jobs: Any) -> None:
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise UsageError(f"jobs must be a whole number >= 1, not {jobs!r}")


def sweep(instance: Instance, budgets: Iterable[float] | str, jobs: int = 1,
          solver: str | None = None, time_limit: float | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None,
          source: str | None = None, scheduler: Any = None) -> Sweep:
    """One solve per budget (a list, or the text "START:STOP:N" / "1e6,2e6"); time_limit is
    per point. `progress` receives {budget, status, how, done, total} per finished point.

    With funding.csv the budgets are the sources' total (every source, and budget.total when
    given, scaled in proportion), or with `source` that source's amount, the others held.
    `scheduler`: a Dask scheduler address (tcp://HOST:8786) or distributed.Client to run the
    budget chains on a cluster (default: this machine's `jobs` processes)."""
    _check_time_limit(time_limit)
    values = parse_budgets(budgets) if isinstance(budgets, str) else list(budgets)
    _check_jobs(jobs)
    executor = open_executor(scheduler, jobs) if scheduler is not None else None
    try:
        res = run_sweep(instance, values, jobs=jobs, solver=solver, time_limit=time_limit,
                        progress=progress, source=source, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    return Sweep(res, {b: Plan(r, None) for b, r in res.points.items()})


@dataclass(frozen=True)
class Comparison:
    """Policy scenarios side by side (comparison.csv rows) and each scenario's Plan."""

    result: ComparisonResult
    plans: dict[str, Plan] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return self.result.table

    @property
    def has_plan(self) -> bool:
        return self.result.has_plan

    def write(self, folder: str | Path, force: bool = False,
              protect: Iterable[Path] = (), report: bool = False,
              lang: str | None = None) -> Path:
        """comparison.csv, comparison.png and a results folder per scenario; with report,
        report.html."""
        path = self.result.instance.path
        return write_comparison(self.result, Path(folder), force,
                                [*protect, *([path] if path.exists() else [])],
                                report=report, lang=lang)


def compare(instance: Instance, scenarios: str | Path | dict[str, Any],
            price_of_rules: bool = False, jobs: int = 1, solver: str | None = None,
            time_limit: float | None = None,
            progress: Callable[[dict[str, Any]], None] | None = None,
            scheduler: Any = None) -> Comparison:
    """Named policy scenarios side by side. `scenarios` is a scenarios YAML file or the same
    mapping as a dict ({"scenarios": {"name": {overrides}}}); with price_of_rules, the served
    weight each anti-monopoly and quality rule costs. `scheduler`: as for `sweep`."""
    _check_time_limit(time_limit)
    _check_jobs(jobs)
    items, problems = load_scenarios(scenarios, instance.policy,
                                     instance.funding.index if instance.funding is not None
                                     else None)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InputError(errors)
    executor = open_executor(scheduler, jobs) if scheduler is not None else None
    try:
        res = run_compare(instance, items, price_of_rules=price_of_rules, jobs=jobs,
                          solver=solver, time_limit=time_limit, progress=progress,
                          executor=executor)
    finally:
        if executor is not None:
            executor.close()
    return Comparison(res, {k: Plan(r, None) for k, r in res.results.items()})


@dataclass(frozen=True)
class Batch:
    """A finished batch: batch.csv as a table, its summary, and the folder it was written to
    (one results or sweep folder per instance and scenario, see README "Batches")."""

    result: BatchResult
    folder: Path

    @property
    def table(self) -> pd.DataFrame:
        """batch.csv: instance, scenario, budget, status, coverage, coverage_ratio, quality,
        cost, gap, seconds, worker, coverage_status, folder, note."""
        return self.result.table

    @property
    def has_plan(self) -> bool:
        return self.result.has_plan

    @property
    def failed(self) -> int:
        """Points whose task failed (status error in batch.csv)."""
        return self.result.failed

    def summary(self) -> dict[str, Any]:
        """batch_summary.json as a dict."""
        return copy.deepcopy(self.result.summary)


def load_batch_manifest(manifest: str | Path) -> Manifest:
    """Read and check a batch manifest with its instances and scenario files; InputError with
    every problem found."""
    found, problems = load_manifest(manifest)
    errors = [p for p in problems if p.severity == "error"]
    if found is None or errors:
        raise InputError(errors or problems)
    return found


def batch(manifest: str | Path | Manifest, out: str | Path, jobs: int = 1,
          scheduler: Any = None, force: bool = False,
          progress: Callable[[dict[str, Any]], None] | None = None) -> Batch:
    """Run every instance, scenario and budget of a batch manifest (YAML, see README
    "Batches") and write DIR = `out` atomically: batch.csv, batch_summary.json and one
    results or sweep folder per instance and scenario. The tasks run on this machine's `jobs`
    processes, or on a Dask cluster with `scheduler` (an address such as tcp://HOST:8786, or
    a distributed.Client). `progress` receives {run, scenario, budget, status, done, total,
    running, failed, eta_seconds} per finished point. A failing task is a row with status
    error (its message in `note`); the others go on."""
    _check_jobs(jobs)
    spec = manifest if isinstance(manifest, Manifest) else load_batch_manifest(manifest)
    protect = [spec.path, *(r.instance_path for r in spec.runs)]
    staged = stage(Path(out), "batch", force, [p for p in protect if Path(p).exists()])
    executor = None
    try:
        executor = open_executor(scheduler, jobs)
        result = run_batch(spec, executor, progress,
                           on_outcome=lambda o: fill_outcome(o, staged.path))
        fill_batch(result, staged.path)
        target = staged.commit()
    finally:
        staged.discard()
        if executor is not None:
            executor.close()
    return Batch(result, target)


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------

def report(results_dir: str | Path, out: str | Path | None = None, lang: str | None = None,
           instance: Instance | str | Path | None = None, force: bool = False) -> Path:
    """Write the offline HTML report of a results, sweep or comparison folder (default
    RESULTS/report.html; lang en or zh, default the policy's report.language). The instance
    (default: summary.json's instance_path, if unchanged) tells why idle agencies got no
    work. Returns the report's path."""
    from allocator.output.report import write_report

    if lang is not None and lang not in ("en", "zh"):
        raise UsageError(f"lang must be 'en' or 'zh', not {lang!r}")
    return write_report(Path(results_dir), out, lang, instance, force=force)


def retotal(instance_dir: str | Path, results_dir: str | Path, out: str | Path | None = None,
            force: bool = False) -> Path:
    """Recompute every figure of a results folder whose assignments.csv was edited by hand
    (each row's cost and load, unserved.csv, agencies.csv, districts.csv, summary.json, and
    plan.xlsx / report.html when the folder had them), writing `out` (default: the folder
    itself) atomically. InputError names each row that is not an eligible offer."""
    from allocator.core.errors import Problem, ResultsError
    from allocator.core.tables import read_csv
    from allocator.output.folder_reader import read_json
    from allocator.pipeline.retotal import retotal as rebuild

    inst = load_instance(Path(instance_dir))
    results = Path(results_dir)
    if not (results / "assignments.csv").is_file() or not (results / "summary.json").is_file():
        raise ResultsError([Problem(str(results), None, "", None,
                                    "no assignments.csv and summary.json here",
                                    "give the results folder of allocator solve")])
    rows = read_csv(results / "assignments.csv")
    result, problems = rebuild(inst, compute_eligibility(inst), rows,
                               read_json(results / "summary.json"))
    if result is None:
        raise InputError(problems)
    target = Path(out) if out is not None else results
    lang = None
    # in place: the edited files are allocator's own, but a file the planner added to the
    # folder is still never replaced without force
    return write_results(result, target, force=force, edits_ok=target == results,
                         protect=[inst.path],
                         extras=plan_extras((results / "plan.xlsx").is_file(),
                                            (results / "report.html").is_file(), lang, inst))


def workbook(results_dir: str | Path, out: str | Path | None = None,
             lang: str | None = None) -> Path:
    """Write plan.xlsx for a results folder (default RESULTS/plan.xlsx)."""
    from allocator.output.workbook import write_workbook

    if lang is not None and lang not in ("en", "zh"):
        raise UsageError(f"lang must be 'en' or 'zh', not {lang!r}")
    return write_workbook(Path(results_dir), out, lang)


# ------------------------------------------------------------------------------------------
# the planner's year: evaluation of the pool, and two plans side by side
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    """The year's end (`evaluate`): each agency's new status and quality from
    evaluations.csv (`pool_changes`, one row per agency with the rule applied), and next
    year's incumbents from this year's plan. `write(folder)` writes next year's instance."""

    pool_changes: pd.DataFrame
    incumbents: pd.DataFrame
    instance: Instance
    results: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def status_changes(self) -> dict[str, int]:
        """How many agencies moved from one status to another, e.g. {'active -> probation': 2}."""
        return pool_counts(self.pool_changes)

    def write(self, folder: str | Path, force: bool = False) -> Path:
        """Next year's instance folder, atomically: every file of the instance copied,
        agencies.csv with the new status and quality, incumbents.csv, pool_changes.csv
        (evaluations.csv is copied too, recorded as applied). Never over the user's files,
        the instance or the results."""
        src = self.instance.path
        if not (src / "agencies.csv").is_file():
            raise UsageError("this instance was not read from a folder, so there are no files "
                             "to carry into next year; load it with allocator.load_instance")
        agencies = new_agencies_text(src, self.pool_changes)
        return write_next_year(src, agencies, self.incumbents, self.pool_changes, Path(folder),
                               force, [self.results] if self.results is not None else [])


def evaluate(instance: Instance | str | Path, results: str | Path,
             out: str | Path | None = None, force: bool = False) -> Evaluation:
    """Apply evaluations.csv to the reserve pool (policy section `evaluation`) and carry
    RESULTS' plan forward as next year's incumbents; written to `out` when given."""
    inst = instance if isinstance(instance, Instance) else load_instance(Path(instance))
    a, warnings = read_plan_assignments(Path(results), inst)
    evaluations = inst.evaluations
    if already_applied(inst.path):
        warnings.append("evaluations.csv holds the scores already applied when this folder was "
                        "written by allocator evaluate; they are not applied again. Put this "
                        "year's scores in evaluations.csv first.")
        evaluations = evaluations.iloc[:0]
    changes = evaluate_pool(inst.agencies, evaluations, EvaluationRules.of(inst.policy))
    ev = Evaluation(changes, next_incumbents(inst, a), inst, Path(results), warnings)
    if out is not None:
        ev.write(out, force=force)
    return ev


def _plan_files(source: str | Path | Plan, name: str) -> PlanFiles:
    if isinstance(source, Plan):
        r = source.result
        return plan_files(name, r.assignments, r.unserved, r.agencies, r.districts,
                          r.summary)
    return read_plan(Path(source))


def diff(a: str | Path | Plan, b: str | Path | Plan, out: str | Path | None = None,
         force: bool = False) -> PlanDiff:
    """Plan B against plan A (results folders or Plans): per demand what changed, per agency
    the change in lot value and demands, per district the change in spend and coverage, and
    the totals (`PlanDiff.summary`). Written to `out` when given (demands.csv, agencies.csv,
    districts.csv, diff.json)."""
    d = diff_plans(_plan_files(a, "A"), _plan_files(b, "B"))
    if out is not None:
        protect = [Path(p) for p in (a, b) if isinstance(p, str | Path)]
        write_diff(d, Path(out), force, [p for p in protect if p.exists()])
    return d


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------

def generate(enterprises: int, agencies: int, districts: int, seed: int = 0,
             out: str | Path | None = None, force: bool = False,
             funding: bool = False, history: bool = False) -> Instance:
    """A realistic synthetic city (deterministic by seed), checked like any instance; written
    as an instance folder when `out` is given. `funding` adds funding.csv (a city fund,
    industry departments', the insurers' prevention fund, maybe district funds) in place of
    budget.total; `history` adds last year's plan (incumbents.csv) and the agencies'
    evaluations (evaluations.csv)."""
    data = generate_instance(enterprises, agencies, districts, seed, funding=funding,
                             history=history)
    if out is not None:
        path = write_instance(data, Path(out), force=force)
        return load_instance(path)
    frames = {k: v for k, v in data.items() if k != "policy"}
    return instance_from_frames(frames, data["policy"], name=f"generated-{seed}")


__all__ = ["Batch", "Comparison", "DiagnosisReport", "Evaluation", "Plan", "PlanDiff", "Sweep",
           "audit", "batch", "compare", "diagnose", "diff", "evaluate", "generate",
           "instance_from_frames", "load_batch_manifest",
           "load_instance", "report", "retotal", "solve", "sweep", "workbook"]
