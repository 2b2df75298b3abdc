"""The `allocator` command line: a thin shell over the Python API (allocator.api).

It parses, prints, shows progress and maps outcomes to exit codes: 0 a plan (or every rule
holds), 1 infeasible or no solution (or a violated rule), 2 bad input, usage or output path.
stdout carries only what a command is for; progress and messages go to stderr. A user's
mistake never shows a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from allocator.core.errors import (
    AllocatorError,
    InputError,
    OutputPathError,
    ProblemsError,
    ResultsError,
    SolverError,
    UsageError,
)
from allocator.core.folders import Staged, check_output_path, discard_all, stage
from allocator.data.limits import MAX_MONEY

EXIT_OK, EXIT_NO_PLAN, EXIT_BAD_INPUT = 0, 1, 2


def echo_err(msg: str) -> None:
    click.echo(msg, err=True)


class Phases:
    """Progress per phase on stderr, with the seconds since the start."""

    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            echo_err(f"[{time.perf_counter() - self.t0:7.2f}s] {msg}")


def report_problems(exc: ProblemsError) -> None:
    """Every problem on stderr, errors first, then warnings."""
    errors = [p for p in exc.problems if p.severity == "error"]
    warnings = [p for p in exc.problems if p.severity != "error"]
    files = sorted({p.file for p in errors})
    what = "The results folder" if isinstance(exc, ResultsError) else "The input"
    echo_err(f"{what} has {len(errors)} error(s)"
             + (f" and {len(warnings)} warning(s)" if warnings else "")
             + (f" in {', '.join(files)}" if files else "") + "; nothing was written.")
    for p in errors:
        echo_err(f"  error: {p}")
    for p in warnings:
        echo_err(f"  warning: {p}")


def fail(exc: AllocatorError) -> NoReturn:
    """Exit 2 with what went wrong and how to fix it."""
    if isinstance(exc, ProblemsError):
        report_problems(exc)
    else:
        echo_err(f"error: {exc}")
    sys.exit(EXIT_BAD_INPUT)


def guarded(f: Callable[..., Any]) -> Callable[..., Any]:
    """Map allocator's own errors to exit 2 with a message, never a traceback."""
    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (InputError, ResultsError, SolverError, OutputPathError, UsageError) as exc:
            fail(exc)
    return run


def load(instance: Path, budget: float | None = None, overrides: dict | None = None):
    """Load and validate an instance (InputError on any problem)."""
    from allocator.data.validation import load_instance

    return load_instance(instance, overrides=overrides, budget=budget)


def check_solver_name(name: str | None) -> None:
    """An unknown or missing solver is a usage error, found before anything runs."""
    if name is not None:
        from allocator.solvers import get_backend

        get_backend(name)


def parse_amounts(text: str | None) -> dict[str, float] | None:
    """--funding S03=1500000,S01=2e6 as {source: amount}; a usage error when malformed."""
    if text is None:
        return None
    out: dict[str, float] = {}
    for item in text.split(","):
        sid, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not sid.strip() or not math.isfinite(amount) or amount < 0:
            raise click.BadParameter(f"{item!r} is not ID=AMOUNT (e.g. S03=1500000)",
                                     param_hint="--funding")
        out[sid.strip()] = amount
    return out


def positive(value: float | None, what: str) -> None:
    """A number of seconds: finite and > 0 (nan, inf and negatives are usage errors)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{what} must be a positive, finite number of seconds")


class MoneyType(click.ParamType):
    """An amount of money: a plain number (12000000, 1.2e7); thousands separators, units and
    negatives are refused with a message that shows how to write it."""

    name = "AMOUNT"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        plain = text.replace(",", "").replace("_", "").replace(" ", "")
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is None:
            hint = ""
            try:
                float(plain)
                hint = f"; write it without thousands separators: {plain}"
            except ValueError:
                hint = "; write a plain amount such as 81500 or 8.15e4 (no currency or units)"
            self.fail(f"{text!r} is not an amount{hint}", param, ctx)
        if not math.isfinite(number) or number < 0:
            self.fail(f"{text!r} must be a finite amount >= 0", param, ctx)
        if number > MAX_MONEY:  # data.limits: the solvers' tolerances would blur it
            self.fail(f"{text!r} is above the accepted {MAX_MONEY:,.0f} (write amounts in a "
                      "larger unit, e.g. thousands)", param, ctx)
        return number


MONEY = MoneyType()


def levels_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--levels: which objective levels to optimise (policy solver.levels)."""
    return click.option(
        "--levels", default=None, metavar="LIST",
        help="Objective levels to optimise, e.g. coverage,cost (default: policy "
             "solver.levels, all three). A level left out is reported, not optimised; "
             "the run is then 'feasible', not lexicographically optimal.")(f)


def levels_overrides(levels: str | None) -> dict | None:
    """--levels as a policy override, checked here so that a mistake names the option, not
    policy.yaml."""
    if levels is None:
        return None
    from allocator.data.policy import parse_levels

    problems: list = []
    parse_levels(problems, "--levels", levels)
    if problems:
        raise UsageError(f"--levels {levels!r}: " + "; ".join(
            f"{p.message} ({p.fix})" for p in problems))
    return {"solver": {"levels": levels}}


def lang_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lang", type=click.Choice(["en", "zh"]), default=None,
        help="Language of the report, workbook and summary: en or zh (default: policy "
             "report.language, else en).")(f)


def report_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--report", is_flag=True,
        help="Also write report.html: one self-contained page that opens offline and prints "
             "on A4.")(f)


def scheduler_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--scheduler: run the solves on a Dask cluster (the cluster extra)."""
    return click.option(
        "--scheduler", default=None, envvar="DASK_SCHEDULER_ADDRESS", metavar="ADDRESS",
        help="Run the solves on a Dask cluster, e.g. tcp://10.0.0.5:8786 (default: "
             "$DASK_SCHEDULER_ADDRESS, else this machine's --jobs processes). Needs "
             "pip install 'allocator[cluster]'.")(f)


def force_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--force", is_flag=True,
        help="Replace the output folder even if it holds files allocator did not write.")(f)


def whatif_into(staged: Staged, bar: Bar, compute: Callable[[], Any],
                fill: Callable[[Any, Path], None], report: bool, lang: str | None) -> Any:
    """A sweep's or comparison's run, then its files (and report) written into the staged
    folder and committed; the bar is closed and the stage discarded whatever happens."""
    from allocator.output.report import REPORT_FILE, write_report

    try:
        result = compute()
        bar.close()
        with staged.writing():
            fill(result.result, staged.path)
            if report:
                write_report(staged.path, staged.path / REPORT_FILE, lang)
            staged.commit()
    finally:
        bar.close()
        staged.discard()
    return result


def early_stage(out: Path, kind: str, force: bool, protect: list[Path]) -> Staged:
    """Check the output path and make its staging folder before any solving starts."""
    return stage(out, kind, force, [p for p in protect if p.exists()])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="allocator")
def main() -> None:
    """allocator: optimal allocation of work-safety technical services to enterprises."""


def run() -> None:
    """The `allocator` program: the command line, with stop signals handled (a test's
    CliRunner calls `main` and keeps its own handlers)."""
    stop_cleanly_on_signals()
    main()


def stop_cleanly_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal, `kill`) end the run at once: the staging
    folder is removed, the output folder is left as it was, and solver processes die with
    this one (core.processes). An exception would not do: raised inside a solver's callback,
    the solver may swallow it and go on."""
    def stop(signum: int, _frame: Any) -> None:
        discard_all()
        name = ("interrupted" if signum == signal.SIGINT
                else f"stopped by {signal.strsignal(signum)}")
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"\n{name}: the output folder was left as it was\n")
            sys.stderr.flush()
        os._exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it
            signal.signal(sig, stop)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Results folder (written atomically; never over a user's files).")
@click.option("--solver", default=None, help="auto, highs, cbc or cpsat (default: policy).")
@click.option("--time-limit", type=float, default=None,
              help="Seconds for the whole lexicographic solve (default: policy).")
@click.option("--budget", type=MONEY, default=None,
              help="Override budget.total for a what-if run (a plain amount, e.g. 81500 or "
                   "8.15e4).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@report_option
@click.option("--workbook/--no-workbook", default=True, show_default=True,
              help="Write plan.xlsx beside the CSV files.")
@lang_option
@levels_option
@force_option
@guarded
def solve(instance: Path, out: Path, solver: str | None, time_limit: float | None,
          budget: float | None, quiet: bool, report: bool, workbook: bool, lang: str | None,
          levels: str | None, force: bool) -> None:
    """Solve INSTANCE and write the results folder (CSV files, summary.json, plan.xlsx and,
    with --report, report.html)."""
    from allocator.api import plan_extras
    from allocator.api import solve as solve_plan
    from allocator.output.results_folder import write_tables
    from allocator.output.text import run_summary

    positive(time_limit, "--time-limit")
    check_solver_name(solver)
    check_output_path(out, force, [instance])  # a bad path is refused before reading
    say = Phases(quiet)
    say(f"read: {instance}")
    inst = load(instance, budget=budget, overrides=levels_overrides(levels))
    say(f"validate: OK ({len(inst.demands):,} demands, {len(inst.agencies):,} agencies, "
        f"{len(inst.warnings)} warning(s))")
    staged = early_stage(out, "results", force, [instance])
    try:
        plan = solve_plan(inst, solver=solver, time_limit=time_limit, progress=say,
                          spend_split=report)
        say(f"write: {out}")
        with staged.writing():
            write_tables(plan.result, staged.path)
            for name, write in plan_extras(workbook, report, lang, inst).items():
                say(f"write: {name}")
                write(staged.path)
            staged.commit()
    finally:
        staged.discard()
    click.echo(run_summary(plan.result, lang))
    sys.exit(EXIT_OK if plan.has_plan else EXIT_NO_PLAN)


@main.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="The HTML file to write (default: RESULTS/report.html).")
@lang_option
@click.option("--instance", type=click.Path(path_type=Path), default=None,
              help="The instance folder of the run (default: the one summary.json names, "
                   "if unchanged); it tells why idle agencies got no work.")
@force_option
@guarded
def report(results: Path, out: Path | None, lang: str | None, instance: Path | None,
           force: bool) -> None:
    """Write the offline HTML report of RESULTS: a solve's results folder (a plan, or what to
    change when there is none), a sweep folder or a compare folder."""
    from allocator.api import report as write

    path = write(results, out, lang, instance, force)
    echo_err(f"wrote {path}")
    click.echo(str(path))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@guarded
def validate(instance: Path) -> None:
    """Check INSTANCE and print a one-screen summary, or every problem found."""
    from allocator.eligibility import compute_eligibility
    from allocator.output.text import instance_summary

    inst = load(instance)
    elig = compute_eligibility(inst)  # an assign pin on an ineligible triple is bad input
    click.echo("OK")
    click.echo(instance_summary(inst, elig))


@main.command()
@click.option("--enterprises", type=click.IntRange(min=1), required=True,
              help="Number of enterprises (at least 1).")
@click.option("--agencies", type=click.IntRange(min=3), required=True,
              help="Number of agencies in the reserve pool (at least 3: the default rules "
                   "want three agencies in every served district).")
@click.option("--districts", type=click.IntRange(min=1), required=True,
              help="Number of districts (at least 1).")
@click.option("--seed", type=click.IntRange(min=0), default=0,
              show_default=True,
              help="Random seed: the same seed always gives the same files.")
@click.option("--funding", is_flag=True,
              help="Also write funding.csv (the year's funding sources: a city fund, industry "
                   "departments' and the insurers' prevention fund, maybe district funds), "
                   "whose total replaces budget.total.")
@click.option("--history", is_flag=True,
              help="Also write last year's plan (incumbents.csv) and the agencies' "
                   "evaluations (evaluations.csv).")
@click.argument("out", type=click.Path(path_type=Path))
@force_option
@guarded
def generate(enterprises: int, agencies: int, districts: int, seed: int, funding: bool,
             history: bool, out: Path, force: bool) -> None:
    """Write a realistic synthetic city (deterministic by seed) to the folder OUT."""
    from allocator.data.generate import generate_instance, write_instance

    t0 = time.perf_counter()
    staged = early_stage(out, "instance", force, [])
    staged.discard()  # the path is fine: write_instance stages it again, atomically
    data = generate_instance(enterprises, agencies, districts, seed, funding=funding,
                             history=history)
    write_instance(data, out, force=force)
    extra = (f", {len(data['incumbents']):,} incumbents, {len(data['evaluations']):,} "
             "evaluations" if history else "")
    echo_err(f"wrote {out}: {len(data['enterprises']):,} enterprises, "
             f"{len(data['demands']):,} demands, {len(data['agencies']):,} agencies, "
             f"{len(data['districts']):,} districts{extra} in {time.perf_counter() - t0:.1f} s")


@main.command()
def solvers() -> None:
    """List the solver backends: whether each runs here, its version and what it is for."""
    from allocator.solvers.info import solvers as list_solvers

    for s in list_solvers():
        click.echo(f"{s.name:6s} {'available' if s.available else 'missing  '} "
                   f"{s.version:12s}{' (auto)' if s.auto else '       '}  {s.purpose}")


@main.command(name="policy")
@click.argument("instance", type=click.Path(path_type=Path))
@guarded
def show_policy(instance: Path) -> None:
    """Print the policy in force (policy.yaml with every default applied) as JSON."""
    click.echo(json.dumps(load(instance).policy.as_dict(), indent=2, ensure_ascii=False))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--budget", type=MONEY, default=None,
              help="Audit against this budget (a what-if run's), not policy.yaml's.")
@click.option("--funding", "funding", default=None, metavar="ID=AMOUNT,...",
              help="Audit against these funding source amounts (a what-if run's, e.g. a "
                   "sweep point's: S03=1500000), the others as in funding.csv.")
@click.option("--mip-gap", "mip_gap", type=float, default=None,
              help="Hold an 'optimal' claim to this relative gap (a what-if run's), not "
                   "policy.yaml's solver.mip_gap.")
@guarded
def check(instance: Path, results: Path, budget: float | None, funding: str | None,
          mip_gap: float | None) -> None:
    """Audit RESULTS against INSTANCE from the files alone; exit 0 only if no rule is broken."""
    from allocator.api import audit
    from allocator.output.text import audit_text

    if mip_gap is not None and not (math.isfinite(mip_gap) and 0 <= mip_gap <= 1):
        raise UsageError("--mip-gap must be a number between 0 and 1")
    result = audit(instance, results, budget=budget, funding=parse_amounts(funding),
                   mip_gap=mip_gap)
    click.echo(audit_text(result))
    sys.exit(EXIT_NO_PLAN if result.violations else EXIT_OK)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Write the recomputed folder here (default: RESULTS itself).")
@force_option
@guarded
def retotal(instance: Path, results: Path, out: Path | None, force: bool) -> None:
    """Recompute the totals of RESULTS after assignments.csv was edited by hand: each row's
    cost and load, unserved.csv, agencies.csv, districts.csv and summary.json (and plan.xlsx,
    report.html when present). Then run `allocator check` to judge the edit."""
    from allocator.api import retotal as rebuild

    path = rebuild(instance, results, out, force)
    echo_err(f"wrote {path}; now run: allocator check {instance} {path}")


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Also write diagnosis.csv and summary.json to this folder.")
@click.option("--solver", default=None, help="Backend for the re-solves.")
@click.option("--time-limit", type=float, default=None, help="Seconds for the re-solves.")
@click.option("--budget", type=MONEY, default=None, help="Override budget.total.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@force_option
@guarded
def diagnose(instance: Path, out: Path | None, solver: str | None, time_limit: float | None,
             budget: float | None, quiet: bool, force: bool) -> None:
    """Explain why INSTANCE has no plan: each rule, subject and shortfall."""
    from allocator.api import diagnose as explain
    from allocator.output.results_folder import write_tables
    from allocator.output.text import diagnosis_text
    from allocator.pipeline.result import RunResult

    positive(time_limit, "--time-limit")
    check_solver_name(solver)
    if out is not None:
        check_output_path(out, force, [instance])
    inst = load(instance, budget=budget)
    staged = early_stage(out, "diagnosis", force, [instance]) if out is not None else None
    try:
        report = explain(inst, solver=solver, time_limit=time_limit, progress=Phases(quiet))
        if staged is not None:
            with staged.writing():
                write_tables(RunResult(report.facts, excluded=report.excluded,
                                       diagnosis=report.table), staged.path)
                staged.commit()
    finally:
        if staged is not None:
            staged.discard()
    click.echo(diagnosis_text(report.reasons, report.outcome, report.least_budget,
                              inst.policy.budget_total))
    sys.exit(EXIT_OK if report.feasible else EXIT_NO_PLAN)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--results", "results", required=True, type=click.Path(path_type=Path),
              help="This year's results folder (its assignments.csv becomes next year's "
                   "incumbents).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Next year's instance folder (written atomically; never over a user's "
                   "files, the instance or the results).")
@force_option
@guarded
def evaluate(instance: Path, results: Path, out: Path, force: bool) -> None:
    """Apply INSTANCE's evaluations.csv to the pool and write next year's instance."""
    from allocator.api import evaluate as run
    from allocator.output.text import evaluation_text

    inst = load(instance)
    staged = early_stage(out, "instance", force, [instance, results])
    staged.discard()  # the path is fine: the write stages it again, atomically
    ev = run(inst, results)
    for w in ev.warnings:
        echo_err(f"warning: {w}")
    ev.write(out, force=force)
    click.echo(evaluation_text(ev.pool_changes, len(ev.incumbents), str(out)))
    echo_err(f"wrote {out}")


@main.command()
@click.argument("results_a", type=click.Path(path_type=Path))
@click.argument("results_b", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Also write demands.csv, agencies.csv, districts.csv and diff.json here.")
@force_option
@guarded
def diff(results_a: Path, results_b: Path, out: Path | None, force: bool) -> None:
    """Two plans side by side: what changed from RESULTS_A to RESULTS_B."""
    from allocator.api import diff as run
    from allocator.output.text import diff_text

    staged = early_stage(out, "diff", force, [results_a, results_b]) if out else None
    if staged is not None:
        staged.discard()
    d = run(results_a, results_b, out=out, force=force)
    click.echo(diff_text(d))
    if out is not None:
        echo_err(f"wrote {out}")


class Bar:
    """A tqdm progress bar on stderr fed by the library's progress events."""

    def __init__(self, total: int, unit: str, desc: str, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, file=sys.stderr, unit=unit, desc=desc,
                        dynamic_ncols=True, disable=quiet, smoothing=0.1)

    def __call__(self, event: dict[str, Any]) -> None:
        parts = [str(event[k]) for k in ("run", "scenario") if event.get(k) is not None]
        budget = event.get("budget")
        if isinstance(budget, int | float):
            parts.append(f"{budget:,.0f}")
        text = f"{' '.join(parts)}: {event['status']}"
        if "running" in event:  # a batch: what runs and what failed (tqdm shows the ETA)
            text += f" | running {event['running']}, failed {event['failed']}"
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.total = event.get("total", self.bar.total)
        self.bar.update(max(0, int(event.get("done", self.bar.n + 1)) - self.bar.n))

    def close(self) -> None:
        self.bar.close()


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--budgets", required=True,
              help="Comma list (1e6,2e6) or START:STOP:N (N evenly spaced points).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Sweep folder (written atomically).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel processes.")
@click.option("--solver", default=None, help="auto, highs, cbc or cpsat (default: policy).")
@click.option("--time-limit", type=float, default=None, help="Seconds per budget point.")
@click.option("--source", default=None, metavar="ID",
              help="With funding.csv: sweep this source's amount, the others held (default: "
                   "the sources' total, every source and budget.total in proportion).")
@click.option("--quiet", is_flag=True, help="No progress bar on stderr.")
@report_option
@lang_option
@levels_option
@scheduler_option
@force_option
@guarded
def sweep(instance: Path, budgets: str, out: Path, jobs: int, solver: str | None,
          time_limit: float | None, source: str | None, quiet: bool, report: bool,
          lang: str | None, levels: str | None, scheduler: str | None, force: bool) -> None:
    """One solve per budget: frontier.csv, frontier.png and each point's results."""
    from allocator.api import sweep as run
    from allocator.output.text import frontier_text
    from allocator.output.whatif_folders import fill_sweep
    from allocator.whatif.sweep import parse_budgets

    positive(time_limit, "--time-limit")
    check_solver_name(solver)
    try:
        values = parse_budgets(budgets)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--budgets") from None
    check_output_path(out, force, [instance])
    inst = load(instance, overrides=levels_overrides(levels))
    from allocator.whatif.sweep import Axis

    axis = Axis.of(inst, source)  # an unknown source is a usage error before any output
    staged = early_stage(out, "sweep", force, [instance])
    bar = Bar(len(values), "point", "sweep", quiet)
    result = whatif_into(staged, bar, lambda: run(
        inst, values, jobs=jobs, solver=solver, time_limit=time_limit, progress=bar,
        source=source, scheduler=scheduler or None), fill_sweep, report, lang)
    mark = result.summary()["least_budget_all_mandatory"]
    if axis.kind != "budget":
        click.echo("swept: " + axis.describe()["meaning"])
    click.echo(frontier_text(result.frontier, mark["marked"], mark["exact"]))
    echo_err(f"wrote {out} ({len(result.frontier)} points in "
             f"{result.summary()['seconds_wall']:.1f} s)")
    sys.exit(EXIT_OK if result.has_plan else EXIT_NO_PLAN)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--scenarios", required=True, type=click.Path(path_type=Path),
              help="YAML of named scenarios overriding policy keys and/or the budget.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Comparison folder (written atomically).")
@click.option("--price-of-rules", is_flag=True,
              help="Also switch each anti-monopoly and quality rule off in turn.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel processes.")
@click.option("--solver", default=None, help="auto, highs, cbc or cpsat (default: policy).")
@click.option("--time-limit", type=float, default=None, help="Seconds per scenario.")
@click.option("--quiet", is_flag=True, help="No progress bar on stderr.")
@report_option
@lang_option
@levels_option
@scheduler_option
@force_option
@guarded
def compare(instance: Path, scenarios: Path, out: Path, price_of_rules: bool, jobs: int,
            solver: str | None, time_limit: float | None, quiet: bool, report: bool,
            lang: str | None, levels: str | None, scheduler: str | None,
            force: bool) -> None:
    """Solve named policy scenarios side by side: comparison.csv and a chart."""
    from allocator.api import compare as run
    from allocator.output.text import comparison_text
    from allocator.output.whatif_folders import fill_comparison
    from allocator.whatif.compare import load_scenarios

    positive(time_limit, "--time-limit")
    check_solver_name(solver)
    check_output_path(out, force, [instance, scenarios])
    inst = load(instance, overrides=levels_overrides(levels))
    items, problems = load_scenarios(scenarios, inst.policy,
                                     inst.funding.index if inst.funding is not None else None)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InputError(errors)
    staged = early_stage(out, "compare", force, [instance, scenarios])
    bar = Bar(len(items), "scenario", "compare", quiet)
    result = whatif_into(staged, bar, lambda: run(
        inst, scenarios, price_of_rules=price_of_rules, jobs=jobs, solver=solver,
        time_limit=time_limit, progress=bar, scheduler=scheduler or None),
        fill_comparison, report, lang)
    click.echo(comparison_text(result.table))
    echo_err(f"wrote {out} ({len(result.table)} rows in {result.result.seconds:.1f} s)")
    sys.exit(EXIT_OK if result.has_plan else EXIT_NO_PLAN)


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Batch folder (written atomically): batch.csv and a folder per instance "
                   "and scenario.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel processes on this machine (without --scheduler).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@scheduler_option
@force_option
@guarded
def batch(manifest: Path, out: Path, jobs: int, quiet: bool, scheduler: str | None,
          force: bool) -> None:
    """Run every instance, scenario and budget of MANIFEST (YAML: a 'runs:' list)."""
    from allocator.api import batch as run
    from allocator.api import load_batch_manifest
    from allocator.output.text import batch_text

    spec = load_batch_manifest(manifest)
    protect = [manifest, *(r.instance_path for r in spec.runs)]
    early_stage(out, "batch", force, protect).discard()  # the path is checked before solving
    bar = Bar(spec.points, "point", "batch", quiet)
    try:
        result = run(spec, out, jobs=jobs, scheduler=scheduler or None, force=force,
                     progress=bar)
    finally:
        bar.close()
    click.echo(batch_text(result.table))
    s = result.summary()
    echo_err(f"wrote {out} ({len(result.table)} points, {s['failed']} failed, in "
             f"{s['seconds_wall']:.1f} s on {s['executor']})")
    sys.exit(EXIT_OK if result.has_plan and not result.failed else EXIT_NO_PLAN)


if __name__ == "__main__":  # pragma: no cover
    run()
