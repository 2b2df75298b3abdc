"""Batches: many cities, each with its scenarios and/or budgets, from one YAML manifest.

    runs:
      - instance: cities/harbour          # a folder, relative to the manifest
        budgets: "8e6:20e6:13"            # optional: a sweep (a list, or START:STOP:N)
        scenarios: scenarios.yaml         # optional: one sweep or solve per scenario
      - instance: cities/westlake
        name: westlake-2027               # optional: the run's folder (default: the folder's name)
        levels: coverage                  # optional: solver.levels for this run
    time_limit: 60                        # optional, for every run without its own
    send: data                            # data (default) or path (see below)

Every problem in the manifest, its instances and its scenario files is reported at once
before anything runs. Each (run, scenario) is one task: a sweep over the run's budgets, or one
solve (at the scenario's or the policy's budget). The tasks run on an executor (whatif/pool:
this machine's processes, or a Dask cluster); with `send: data` the client sends each task's
instance tables to the worker, with `send: path` workers read the instance folder from the same
path (a shared file system). Results come back to the client; nothing here writes (the API
writes each task's folder as it arrives, and batch.csv at the end).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from allocator.analysis.diagnose import attach_diagnosis
from allocator.core.errors import AllocatorError, Problem
from allocator.data.funding import with_amounts
from allocator.data.instance import Instance
from allocator.data.policy import deep_merge
from allocator.data.reading import PolicyLoader
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.pipeline.result import RunResult
from allocator.pipeline.solve import solve_instance
from allocator.pipeline.threads import default_threads
from allocator.solvers import get_backend
from allocator.whatif.compare import Scenario, folder_name, load_scenarios, scenario_row
from allocator.whatif.pool import (
    Executor,
    current_sink,
    run_all,
    task_threads,
    worker_name,
)
from allocator.whatif.sweep import (
    SweepResult,
    budget_label,
    clean_budgets,
    coverage_level,
    parse_budgets,
)

TOP_KEYS = ("runs", "time_limit", "solver", "levels", "send")
RUN_KEYS = ("instance", "name", "budgets", "scenarios", "levels", "time_limit", "solver")
SEND = ("data", "path")
#: the scenario name of a run without a scenarios file
POLICY_SCENARIO = "policy"
BATCH_COLUMNS = ["instance", "scenario", "budget", "status", "coverage", "coverage_ratio",
                 "quality", "cost", "gap", "seconds", "worker", "coverage_status", "how",
                 "folder", "note"]

#: progress of a batch: {run, scenario, budget, status, done, total, running, failed,
#: eta_seconds} per finished point (or failed task)
BatchProgress = Callable[[dict[str, Any]], None]


# ------------------------------------------------------------------------------------------
# the manifest
# ------------------------------------------------------------------------------------------

@dataclass
class RunSpec:
    """One run of the manifest, checked: its instance (loaded), budgets and scenarios."""

    name: str
    instance_path: Path
    instance: Instance
    budgets: list[float] | None
    scenarios: list[Scenario]
    has_scenarios_file: bool
    overrides: dict[str, Any]  # levels, applied under every scenario
    time_limit: float | None
    solver: str | None


@dataclass
class Manifest:
    path: Path
    runs: list[RunSpec]
    send: str = "data"

    @property
    def points(self) -> int:
        """Budget points (or single solves) the batch will solve."""
        return sum(len(r.scenarios) * (len(r.budgets) if r.budgets else 1) for r in self.runs)


def _did_you_mean(key: str, keys: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), keys, n=1)
    return (f"did you mean '{close[0]}'?" if close else
            "valid keys: " + ", ".join(keys))


def _levels(value: Any, where: str, file: str, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, str) and value.strip():
        return value
    problems.append(Problem(file, None, where, value, "must be level names",
                            "write e.g. 'coverage' or 'coverage,cost'"))
    return None


def _time_limit(value: Any, where: str, file: str, problems: list[Problem]) -> float | None:
    if value is None:
        return None
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        return float(value)
    problems.append(Problem(file, None, where, value, "must be a positive number of seconds",
                            "write e.g. 60"))
    return None


def _solver(value: Any, where: str, file: str, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    try:
        get_backend(str(value))
    except AllocatorError as exc:
        problems.append(Problem(file, None, where, value, str(exc),
                                "write auto, highs, cbc or cpsat (one installed here)"))
        return None
    return str(value)


def _budgets(value: Any, where: str, file: str, problems: list[Problem]) -> list[float] | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return parse_budgets(value)
        if isinstance(value, list | tuple) and value and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return clean_budgets([float(v) for v in value])
        if isinstance(value, int | float) and not isinstance(value, bool):
            return clean_budgets([float(value)])
    except ValueError as exc:
        problems.append(Problem(file, None, where, value, str(exc),
                                "write a list [8e6, 10e6] or 'START:STOP:N'"))
        return None
    problems.append(Problem(file, None, where, value, "must be a list of amounts or "
                            "'START:STOP:N'", "write e.g. [8e6, 10e6] or '6e6:18e6:13'"))
    return None


def load_manifest(path: str | Path) -> tuple[Manifest | None, list[Problem]]:
    """Read and check a batch manifest, its instances and scenario files: the manifest, or
    None with every problem found."""
    path = Path(path)
    file = path.name
    if not path.is_file():
        return None, [Problem(str(path), None, "", None, "manifest file not found",
                              "give the path of a YAML file with a 'runs:' list")]
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=PolicyLoader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, [Problem(file, None, "", None, f"not valid YAML: {exc}".replace("\n", " "),
                              "fix the YAML syntax (indentation, colons, dashes)")]
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return None, [Problem(file, None, "", None, "must be a mapping with a 'runs:' list",
                              "write 'runs:' and under it one '- instance: PATH' per run")]
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(Problem(file, None, str(key), None, "unknown key",
                                    "remove it; " + _did_you_mean(key, TOP_KEYS)))
    send = raw.get("send", "data")
    if send not in SEND:
        problems.append(Problem(file, None, "send", send, "must be 'data' or 'path'",
                                "data: the client sends each instance to the workers; path: "
                                "workers read it from the same (shared) path"))
    top_levels = _levels(raw.get("levels"), "levels", file, problems)
    top_limit = _time_limit(raw.get("time_limit"), "time_limit", file, problems)
    top_solver = _solver(raw.get("solver"), "solver", file, problems)
    runs_raw = raw.get("runs")
    if not isinstance(runs_raw, list) or not runs_raw:
        problems.append(Problem(file, None, "runs", runs_raw, "must be a non-empty list",
                                "write one '- instance: PATH' item per run"))
        return None, problems
    runs: list[RunSpec] = []
    names: dict[str, int] = {}
    for i, item in enumerate(runs_raw):
        where = f"runs[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(file, None, where, item, "must be a mapping",
                                    "write e.g. '- instance: cities/harbour'"))
            continue
        for key in item:
            if key not in RUN_KEYS:
                problems.append(Problem(file, None, f"{where}.{key}", None, "unknown key",
                                        "remove it; " + _did_you_mean(key, RUN_KEYS)))
        spec = _run_spec(path, file, where, item, top_levels, top_limit, top_solver, problems)
        if spec is None:
            continue
        if spec.name in names:
            problems.append(Problem(file, None, f"{where}.name", spec.name,
                                    f"the same folder name as runs[{names[spec.name]}]",
                                    "give each run its own 'name:'"))
        names[spec.name] = i
        runs.append(spec)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return Manifest(path, runs, str(send)), problems


def _run_spec(path: Path, file: str, where: str, item: dict[str, Any],
              top_levels: str | None, top_limit: float | None, top_solver: str | None,
              problems: list[Problem]) -> RunSpec | None:
    """One run, checked (every problem appended); None when it cannot be used."""
    inst_text = item.get("instance")
    if not isinstance(inst_text, str) or not inst_text.strip():
        problems.append(Problem(file, None, f"{where}.instance", inst_text,
                                "every run needs an instance folder",
                                "write 'instance: PATH' (relative to the manifest)"))
        return None
    inst_path = (path.parent / inst_text).resolve()
    budgets = _budgets(item.get("budgets"), f"{where}.budgets", file, problems)
    levels = _levels(item.get("levels"), f"{where}.levels", file, problems) or top_levels
    limit = _time_limit(item.get("time_limit"), f"{where}.time_limit", file, problems)
    solver = _solver(item.get("solver"), f"{where}.solver", file, problems)
    name = item.get("name", inst_path.name)
    if not isinstance(name, str) or folder_name(name) != name:
        problems.append(Problem(file, None, f"{where}.name", name,
                                "must be a plain folder name",
                                f"use letters, digits, '.', '_' or '-', e.g. "
                                f"{folder_name(str(name))}"))
        return None
    if not inst_path.is_dir():
        problems.append(Problem(file, None, f"{where}.instance", inst_text,
                                f"instance folder not found ({inst_path})",
                                "give the folder's path relative to the manifest"))
        return None
    overrides = {"solver": {"levels": levels}} if levels else {}
    try:
        inst = load_instance(inst_path, overrides=overrides or None)
    except AllocatorError as exc:
        for p in getattr(exc, "problems", []):
            problems.append(dataclasses.replace(p, file=f"{inst_text}/{p.file}"))
        if not getattr(exc, "problems", None):
            problems.append(Problem(file, None, f"{where}.instance", inst_text, str(exc),
                                    "fix the instance"))
        return None
    scen_text = item.get("scenarios")
    scenarios = [Scenario(POLICY_SCENARIO, {}, inst.policy)]
    if scen_text is not None:
        if not isinstance(scen_text, str):
            problems.append(Problem(file, None, f"{where}.scenarios", scen_text,
                                    "must be the path of a scenarios file",
                                    "write 'scenarios: scenarios.yaml'"))
            return None
        sources = inst.funding.index if inst.funding is not None else None
        found, scen_problems = load_scenarios(path.parent / scen_text, inst.policy, sources)
        problems.extend(scen_problems)
        scenarios = found
    return RunSpec(str(name), inst_path, inst, budgets, scenarios, scen_text is not None,
                   overrides, limit if limit is not None else top_limit,
                   solver if solver is not None else top_solver)


# ------------------------------------------------------------------------------------------
# tasks
# ------------------------------------------------------------------------------------------

@dataclass
class BatchTask:
    """One (run, scenario): a sweep over the run's budgets, or one solve."""

    run: str
    scenario: str
    folder: str  # the scenario's folder in the run's folder
    overrides: dict[str, Any]  # the scenario's policy keys, with the run's levels (send: path)
    funding: dict[str, float]  # the scenario's funding amounts (send: path)
    budgets: list[float] | None
    solver: str | None
    time_limit: float | None
    threads: int | None  # None: the worker decides
    instance: Instance | None = None  # send: data
    instance_path: str = ""  # send: path
    scenario_overrides: dict[str, Any] = field(default_factory=dict)  # for comparison.csv


@dataclass
class BatchOutcome:
    """What a task gives back: a sweep or a run result (or the error that stopped it)."""

    run: str
    scenario: str
    folder: str
    budgets: list[float] | None
    sweep: SweepResult | None = None
    result: RunResult | None = None
    error: str = ""
    seconds: float = 0.0
    worker: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)  # as in the scenarios file


def _instance(task: BatchTask) -> Instance:
    inst = task.instance
    if inst is None:
        inst = load_instance(task.instance_path, overrides=task.overrides or None)
        inst = with_amounts(inst, task.funding) if task.funding else inst
    threads = task.threads if task.threads is not None else (
        inst.policy.threads or task_threads())
    return dataclasses.replace(inst, policy=dataclasses.replace(inst.policy, threads=threads))


def run_batch_task(task: BatchTask) -> BatchOutcome:
    """Solve one task where it runs (a pool process or a cluster worker)."""
    from allocator.whatif.sweep import run_sweep

    t0 = time.perf_counter()
    inst = _instance(task)
    out = BatchOutcome(task.run, task.scenario, task.folder, task.budgets,
                       overrides=task.scenario_overrides, worker=worker_name())
    tag = {"run": task.run, "scenario": task.scenario}
    send = current_sink()  # this task's: the sweep's own run_all has its own
    if task.budgets:
        out.sweep = run_sweep(inst, task.budgets, jobs=1, solver=task.solver,
                              time_limit=task.time_limit,
                              progress=lambda e: send({**tag, "budget": e["budget"],
                                                       "status": e["status"],
                                                       "worker": out.worker}))
    else:
        elig = compute_eligibility(inst)
        result = solve_instance(inst, solver=task.solver, time_limit=task.time_limit,
                                elig=elig)
        out.result = attach_diagnosis(inst, elig, result, task.solver, task.time_limit)
        send({**tag, "budget": inst.policy.budget_total, "status": out.result.status.value,
              "worker": out.worker})
    out.seconds = time.perf_counter() - t0
    return out


def batch_tasks(manifest: Manifest, remote: bool, slots: int) -> list[BatchTask]:
    """The manifest's tasks, in manifest order. On this machine's pool each task gets its
    share of the cores; on a cluster each worker decides."""
    threads = None if remote else max(1, default_threads() // max(1, slots))
    tasks = []
    for run in manifest.runs:
        for sc in run.scenarios:
            over = {k: v for k, v in sc.overrides.items() if k != "funding"}
            merged = deep_merge(run.overrides, over) if over else dict(run.overrides)
            task = BatchTask(run.name, sc.name, folder_name(sc.name), merged, sc.funding,
                             run.budgets, run.solver, run.time_limit, threads,
                             scenario_overrides=sc.overrides)
            if manifest.send == "path":
                task.instance_path = str(run.instance_path)
            else:
                base = with_amounts(run.instance, sc.funding) if sc.funding else run.instance
                same = sc.policy.weights == base.policy.weights
                task.instance = (dataclasses.replace(base, policy=sc.policy) if same
                                 else base.with_policy(sc.policy))
            tasks.append(task)
    return tasks


# ------------------------------------------------------------------------------------------
# the batch
# ------------------------------------------------------------------------------------------

def outcome_rows(out: BatchOutcome) -> list[dict[str, Any]]:
    """batch.csv rows of one task: one per budget point (or the one solve)."""
    base = {"instance": out.run, "scenario": out.scenario, "worker": out.worker}
    where = f"{out.run}/{out.folder}"
    if out.error:
        budgets: list[float | None] = [None] if not out.budgets else list(out.budgets)
        return [{**base, "budget": b, "status": "error", "note": out.error,
                 "folder": ""} for b in budgets]
    if out.sweep is not None:
        rows = []
        for r in out.sweep.frontier.to_dict("records"):
            rows.append({**base, **{k: r.get(k) for k in (
                "budget", "status", "coverage", "coverage_ratio", "quality", "cost", "gap",
                "seconds", "coverage_status")},
                "how": r.get("how"), "folder": f"{where}/{budget_label(float(r['budget']))}",
                "note": ""})
        return rows
    assert out.result is not None
    s = out.result.summary
    has = out.result.status.has_solution
    cov = (coverage_level(s) or {}).get("status", s["status"])
    return [{**base, "budget": s.get("budget"), "status": s["status"],
             **{k: (s.get(k) if has else None) for k in (
                 "coverage", "coverage_ratio", "quality", "cost", "gap")},
             "seconds": round(out.seconds, 3), "coverage_status": cov, "how": "solved",
             "folder": where, "note": ""}]


def batch_frame(rows: list[dict[str, Any]], order: list[tuple[str, str]]) -> pd.DataFrame:
    """batch.csv: rows in manifest order (run, scenario), then by budget."""
    df = pd.DataFrame(rows)
    for col in BATCH_COLUMNS:
        if col not in df.columns:
            df[col] = None
    rank = {key: k for k, key in enumerate(order)}
    df["_rank"] = [rank[(r, s)] for r, s in zip(df["instance"], df["scenario"], strict=True)]
    df = df.sort_values(["_rank", "budget"], kind="stable").reset_index(drop=True)
    return df[BATCH_COLUMNS]


@dataclass
class BatchResult:
    """batch.csv, the comparison rows of each run with scenarios and no budgets, facts."""

    table: pd.DataFrame
    comparisons: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]
    #: per run: its instance's name and currency (chart titles)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def has_plan(self) -> bool:
        return bool(self.table["status"].isin(["optimal", "feasible"]).any())

    @property
    def failed(self) -> int:
        return int((self.table["status"] == "error").sum())


class Tracker:
    """done / running / failed / ETA of a batch, from the executor's callbacks. A point is
    counted once, also when a task is rerun after its worker died."""

    def __init__(self, tasks: list[BatchTask], progress: BatchProgress | None) -> None:
        self.tasks, self.progress = tasks, progress
        self.total = sum(len(t.budgets or [None]) for t in tasks)
        self.swept = {(t.run, t.scenario): bool(t.budgets) for t in tasks}
        self.done: set[tuple] = set()
        self.failed: set[tuple] = set()
        self.running: dict[int, str] = {}
        self.t0 = time.perf_counter()

    def state(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        n = len(self.done)
        eta = elapsed / n * (self.total - n) if n else None
        return {"done": n, "total": self.total, "running": len(self.running),
                "failed": len(self.failed),
                "eta_seconds": None if eta is None else round(eta, 1)}

    def start(self, k: int, worker: str) -> None:
        self.running[k] = worker

    def point(self, event: dict[str, Any]) -> None:
        run, scenario = str(event.get("run")), str(event.get("scenario"))
        key = (run, scenario, event.get("budget") if self.swept.get((run, scenario)) else None)
        if key in self.done:
            return  # a rerun task's point, already counted
        self.done.add(key)
        if self.progress is not None:
            self.progress({**event, **self.state()})

    def finished(self, k: int, out: BatchOutcome) -> None:
        self.running.pop(k, None)
        if not out.error:
            return
        budgets: list[float | None] = [None] if not out.budgets else list(out.budgets)
        keys = {(out.run, out.scenario, b) for b in budgets}
        self.failed |= keys
        self.done |= keys
        if self.progress is not None:
            self.progress({"run": out.run, "scenario": out.scenario, "budget": None,
                           "status": "error", **self.state()})


def run_batch(manifest: Manifest, executor: Executor,
              progress: BatchProgress | None = None,
              on_outcome: Callable[[BatchOutcome], None] | None = None) -> BatchResult:
    """Every task on the executor; on_outcome(outcome) in this process as each ends (the
    caller writes its folder, then the outcome's plans are dropped)."""
    t0 = time.perf_counter()
    tasks = batch_tasks(manifest, executor.remote, executor.slots)
    tracker = Tracker(tasks, progress)
    rows: list[dict[str, Any]] = []
    comparisons: dict[str, list[dict[str, Any]]] = {}
    scen_runs = {r.name for r in manifest.runs if r.has_scenarios_file and not r.budgets}

    def failed(k: int, exc: BaseException) -> BatchOutcome:
        t = tasks[k]
        return BatchOutcome(t.run, t.scenario, t.folder, t.budgets,
                            error=f"{type(exc).__name__}: {exc}",
                            worker=tracker.running.get(k, ""),
                            overrides=t.scenario_overrides)

    def ended(k: int, out: BatchOutcome) -> None:
        tracker.finished(k, out)
        rows.extend(outcome_rows(out))
        if out.run in scen_runs and out.result is not None:
            comparisons.setdefault(out.run, []).append(
                scenario_row(out.scenario, out.result, out.seconds, out.overrides,
                             out.folder))
        if on_outcome is not None:
            on_outcome(out)

    run_all(run_batch_task, tasks, on_result=ended, on_event=tracker.point,
            executor=executor, on_start=tracker.start, on_error=failed)
    order = [(t.run, t.scenario) for t in tasks]
    table = batch_frame(rows, order)
    summary = {"manifest": str(manifest.path), "runs": len(manifest.runs), "tasks": len(tasks),
               "points": manifest.points, "send": manifest.send,
               "statuses": table["status"].value_counts().to_dict(),
               "failed": int((table["status"] == "error").sum()),
               **executor.describe(),
               "workers_used": sorted(set(table["worker"].dropna())),
               "seconds_wall": round(time.perf_counter() - t0, 3)}
    for run in comparisons:  # manifest order of scenarios
        names = [t.scenario for t in tasks if t.run == run]
        comparisons[run].sort(key=lambda r: names.index(r["scenario"]))
    labels = {r.name: (r.instance.name, r.instance.policy.currency) for r in manifest.runs}
    return BatchResult(table, comparisons, summary, labels)
