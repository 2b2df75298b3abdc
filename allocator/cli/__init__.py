"""The `allocator` command line (spec section 6). Exit codes: 0 ok, 1 infeasible or no
solution, 2 bad input or usage. A user's mistake never shows a traceback."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from allocator.core.errors import InputError, Problem
from allocator.solvers import REGISTRY, UnknownSolver, get_backend

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


def report_problems(problems: list[Problem]) -> None:
    """Print every input problem on stderr, errors first, then warnings."""
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    files = sorted({p.file for p in errors})
    echo_err(f"The instance has {len(errors)} error(s)"
             + (f" and {len(warnings)} warning(s)" if warnings else "")
             + (f" in {', '.join(files)}" if files else "") + "; nothing was written.")
    for p in errors:
        echo_err(f"  error: {p}")
    for p in warnings:
        echo_err(f"  warning: {p}")


def load_or_exit(instance: Path, budget: float | None = None, overrides: dict | None = None):
    """Load and validate an instance, or print every problem and exit 2 (before any command
    has written anything)."""
    from allocator.data.validation import load_instance

    try:
        return load_instance(instance, overrides=overrides, budget=budget)
    except InputError as exc:
        report_problems(exc.problems)
        sys.exit(EXIT_BAD_INPUT)


def check_solver_name(name: str | None) -> None:
    if name is None:
        return
    try:
        get_backend(name)
    except UnknownSolver as exc:
        raise click.UsageError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="allocator")
def main() -> None:
    """allocator: optimal allocation of work-safety technical services to enterprises."""


def levels_option(f):
    """--levels: which objective levels to optimise (policy solver.levels)."""
    return click.option(
        "--levels", default=None, metavar="LIST",
        help="Objective levels to optimise, e.g. coverage,cost (default: policy "
             "solver.levels, all three). A level left out is reported, not optimised; "
             "the run is then 'feasible', not lexicographically optimal.")(f)


def levels_overrides(levels: str | None) -> dict | None:
    return None if levels is None else {"solver": {"levels": levels}}


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Results folder (written atomically).")
@click.option("--solver", default=None, help="auto, highs, cbc or cpsat (default: policy).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds for the whole lexicographic solve (default: policy).")
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="Override budget.total for a what-if run.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@levels_option
def solve(instance: Path, out: Path, solver: str | None, time_limit: float | None,
          budget: float | None, quiet: bool, levels: str | None) -> None:
    """Solve INSTANCE and write the results folder."""
    from allocator.output.text import print_run_summary
    from allocator.pipeline.plan import write_results
    from allocator.pipeline.solve import solve_instance

    check_solver_name(solver)
    say = Phases(quiet)
    say(f"read: {instance}")
    inst = load_or_exit(instance, budget=budget, overrides=levels_overrides(levels))
    say(f"validate: OK ({len(inst.demands):,} demands, {len(inst.agencies):,} agencies, "
        f"{len(inst.warnings)} warning(s))")
    result = solve_instance(inst, solver=solver, time_limit=time_limit, progress=say)
    say(f"write: {out}")
    write_results(result, out)
    print_run_summary(inst, result)
    sys.exit(EXIT_OK if result.status.has_solution else EXIT_NO_PLAN)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
def validate(instance: Path) -> None:
    """Check INSTANCE and print a one-screen summary, or every problem found."""
    from allocator.eligibility import compute_eligibility
    from allocator.output.text import print_instance_summary

    inst = load_or_exit(instance)
    elig = compute_eligibility(inst)
    click.echo("OK")
    print_instance_summary(inst, elig)


@main.command()
@click.option("--enterprises", type=click.IntRange(min=1), required=True)
@click.option("--agencies", type=click.IntRange(min=1), required=True)
@click.option("--districts", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("out", type=click.Path(path_type=Path))
def generate(enterprises: int, agencies: int, districts: int, seed: int, out: Path) -> None:
    """Write a realistic synthetic instance (deterministic by seed) to OUT."""
    from allocator.data.generate import generate_instance, write_instance

    t0 = time.perf_counter()
    data = generate_instance(enterprises, agencies, districts, seed)
    write_instance(data, out)
    click.echo(f"wrote {out}: {len(data['enterprises']):,} enterprises, "
               f"{len(data['demands']):,} demands, {len(data['agencies']):,} agencies, "
               f"{len(data['districts']):,} districts in {time.perf_counter() - t0:.1f} s")


@main.command()
def solvers() -> None:
    """List the solver backends, whether each is available, and its version."""
    auto = None
    try:
        auto = get_backend("auto").name
    except UnknownSolver:
        pass
    for name, backend in sorted(REGISTRY.items()):
        ok = backend.available()
        tag = " (auto)" if name == auto else ""
        click.echo(f"{name:6s} {'available' if ok else 'missing  '} "
                   f"{backend.version() if ok else ''}{tag}")


@main.command(name="policy")
@click.argument("instance", type=click.Path(path_type=Path))
def show_policy(instance: Path) -> None:
    """Print the policy in force (policy.yaml with every default applied) as JSON."""
    inst = load_or_exit(instance)
    click.echo(json.dumps(inst.policy.as_dict(), indent=2))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.argument("results", type=click.Path(path_type=Path))
def check(instance: Path, results: Path) -> None:
    """Audit RESULTS against INSTANCE from the files alone; exit 0 only if no rule is broken."""
    from allocator.analysis.audit import run_check

    sys.exit(run_check(instance, results))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Also write diagnosis.csv and summary.json to this folder.")
@click.option("--solver", default=None, help="Backend for the elastic re-solve.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--budget", type=click.FloatRange(min=0), default=None,
              help="Override budget.total.")
def diagnose(instance: Path, out: Path | None, solver: str | None, time_limit: float | None,
             budget: float | None) -> None:
    """Explain why INSTANCE has no plan: each rule, subject and shortfall."""
    from allocator.analysis.diagnose import run_diagnose

    check_solver_name(solver)
    inst = load_or_exit(instance, budget=budget)
    sys.exit(run_diagnose(inst, out=out, solver=solver, time_limit=time_limit))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--budgets", required=True,
              help="Comma list (1e6,2e6) or START:STOP:N (N evenly spaced points).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path))
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Parallel processes.")
@click.option("--solver", default=None)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per budget point.")
@levels_option
def sweep(instance: Path, budgets: str, out: Path, jobs: int, solver: str | None,
          time_limit: float | None, levels: str | None) -> None:
    """One solve per budget: frontier.csv, frontier.png and each point's results."""
    from allocator.whatif.sweep import parse_budgets, run_sweep

    check_solver_name(solver)
    try:
        values = parse_budgets(budgets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--budgets") from None
    inst = load_or_exit(instance, overrides=levels_overrides(levels))
    sys.exit(run_sweep(inst, values, out, jobs=jobs, solver=solver, time_limit=time_limit))


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option("--scenarios", required=True, type=click.Path(path_type=Path),
              help="YAML of named scenarios overriding policy keys and/or the budget.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path))
@click.option("--price-of-rules", is_flag=True,
              help="Also switch each anti-monopoly and quality rule off in turn.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--solver", default=None)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None)
@levels_option
def compare(instance: Path, scenarios: Path, out: Path, price_of_rules: bool, jobs: int,
            solver: str | None, time_limit: float | None, levels: str | None) -> None:
    """Solve named policy scenarios side by side: comparison.csv and a chart."""
    from allocator.whatif.compare import run_compare

    check_solver_name(solver)
    inst = load_or_exit(instance, overrides=levels_overrides(levels))
    sys.exit(run_compare(inst, scenarios, out, price_of_rules=price_of_rules, jobs=jobs,
                         solver=solver, time_limit=time_limit))


def run() -> None:  # pragma: no cover - console entry for python -m
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
