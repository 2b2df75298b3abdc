"""One run end to end: eligibility, model, lexicographic solve, result tables, summary.

The diagnosis of an infeasible run is the analysis layer's (analysis/diagnose); the public
`allocator.solve` adds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd

from allocator.data.funding import has_funding
from allocator.data.history import has_incumbents
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, compute_eligibility
from allocator.model.build import AllocationModel
from allocator.pipeline.changes import changes_table
from allocator.pipeline.class_path import ClassPlan, chosen_triples, exact_model, start_point
from allocator.pipeline.district_pairs import PAIRS_MIN_TRIPLES, PAIRS_SHARE, cap_binds, pairs_start
from allocator.pipeline.funding import funding_tables
from allocator.pipeline.large_scale import (
    LARGE_TRIPLES,
    checked_rules,
    forced_demands,
    solve_large,
    unsupported_rules,
    use_large_path,
)
from allocator.pipeline.lexicographic import (
    FIRST_LEVEL_PLAIN_SHARE,
    LevelReport,
    LexResult,
    solve_lexicographic,
)
from allocator.pipeline.result import RunResult
from allocator.pipeline.summary import make_summary
from allocator.pipeline.tables import tables_of
from allocator.pipeline.threads import default_threads
from allocator.solvers import Backend, Status, get_backend
from allocator.solvers.base import ParametricSession, Session

Progress = Callable[[str], None]


def solve_instance(instance: Instance, solver: str | None = None,
                   time_limit: float | None = None, progress: Progress | None = None,
                   elig: Eligibility | None = None,
                   start: pd.DataFrame | None = None,
                   stop_at: dict[str, float] | None = None) -> RunResult:
    """Solve the instance under its policy; never raises for an infeasible or timed-out run.

    `start` (enterprise_id, service_id, agency_id rows, e.g. an earlier assignments.csv) is
    offered to the solver as a warm start; rows that are not eligible here are ignored, and
    a start that breaks a rule of this year is not used. Without one, the incumbents' plan
    (incumbents.csv, with the assign pins) is offered. `stop_at` (level name -> value): a
    level's search ends once its plan reaches the value, proven or not (a sweep's points
    stop at the served weight a larger budget's whole search found).
    """
    say = progress or (lambda _m: None)
    pol = instance.policy
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    backend = get_backend(solver or pol.solver_name)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    threads = pol.threads or default_threads()

    if elig is None:
        say("eligibility: matching offers to demands")
        t = time.perf_counter()
        elig = compute_eligibility(instance)
        timings["eligibility"] = time.perf_counter() - t
    say(f"eligibility: {len(elig.triples):,} eligible triples, {len(elig.excluded):,} kept out")

    broken: list[str] = []  # rules the province path only checks, broken by its plan
    if backend.province_scale and use_large_path(instance, elig):
        large = _solve_large(instance, elig, backend, limit, threads, t0, timings, say)
        broken = checked_rules(large.summary.get("large_scale") or {})
        if not broken:
            return large
        # its rounded plan broke a rule it only checks: the exact model with the time left
        say(f"large scale: no plan keeping {', '.join(broken)} (checked, not restored, on "
            "that path): the exact model with the time left")
        timings.pop("solve", None)
    kept = (unsupported_rules(instance, elig) if backend.province_scale
            and len(elig.triples) >= LARGE_TRIPLES else [])
    label = "the given plan"
    known: dict[str, float] | None = None  # level bounds proven before the model is built
    if start is None and has_incumbents(instance):
        start, label = incumbent_start(instance), "last year's plan (incumbents.csv, pins)"
    if start is None and len(elig.triples) >= PAIRS_MIN_TRIPLES and cap_binds(instance, elig):
        t = time.perf_counter()
        say("districts per agency: choosing each agency's districts first, then a plan on them")
        chosen = pairs_start(instance, elig, backend, PAIRS_SHARE * limit, threads)
        start = chosen.plan
        if chosen.bound is not None:  # the pair MIP's: tighter than the level's own LP
            known = {"coverage": chosen.bound}
            say(f"districts per agency: served weight is at most {chosen.bound:,.2f}")
        timings["first_plan"] = time.perf_counter() - t
        label = "a plan on the districts chosen first (max_districts_per_agency)"
        if start is None:
            say("districts per agency: no plan on chosen districts in "
                f"{timings['first_plan']:.1f} s; solving without one")

    t = time.perf_counter()
    model, classes = exact_model(instance, elig, backend)
    if kept:
        say(f"large scale: {len(elig.triples):,} eligible triples, but {', '.join(kept)} "
            f"keep the {'exact model over classes' if classes is not None else 'full model'}"
            " (the province-scale path does not handle them)")
    if classes is not None:
        facts = classes.facts()
        say(f"classes: {facts['demands']:,} demands in {facts['classes']:,} classes of "
            f"identical demands, {facts['class_columns']:,} class columns: the exact model "
            "over classes")
    timings["build"] = time.perf_counter() - t
    lp = model.lp
    say(f"build: {lp.n_vars:,} variables, {lp.n_rows:,} constraints in {timings['build']:.2f} s")
    return solve_model(instance, elig, model, backend, limit, threads, t0, timings, say, start,
                       kept=kept + broken, label=label, classes=classes, stop_at=stop_at,
                       known_bounds=known)


def solve_model(instance: Instance, elig: Eligibility, model: AllocationModel,
                backend: Backend, limit: float, threads: int, t0: float,
                timings: dict[str, float], say: Progress, start: pd.DataFrame | None,
                session: Session | None = None, kept: list[str] | None = None,
                label: str = "the given plan", classes: ClassPlan | None = None,
                stop_at: dict[str, float] | None = None,
                known_bounds: dict[str, float] | None = None) -> RunResult:
    """solve_instance once the model is built: the lexicographic solve (in `session` when
    the model is already open there), the tables and the summary. `classes`: the model is
    that class model, whose counts are handed to the classes' members. `known_bounds`
    (level name -> value): bounds proven before, see solve_lexicographic."""
    lp = model.lp
    pol = instance.policy
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        lex = LexResult(Status.INFEASIBLE, None, [], 0.0)
        say("infeasible before solving: a mandatory demand has no eligible agency")
    elif lp.n_vars == 0:  # nothing can be chosen: the empty plan, if every row allows it
        if np.any(lp.row_lo > 1e-9) or np.any(lp.row_hi < -1e-9):
            lex = LexResult(Status.INFEASIBLE, None, [], 0.0)
            say("infeasible before solving: a rule asks for service no agency can give")
        else:
            lex = LexResult(Status.OPTIMAL, np.zeros(0), [
                LevelReport(lv.name, lv.sense, Status.OPTIMAL, 0.0, 0.0, 0.0, 0.0,
                            "empty model") for lv in model.levels])
    else:
        point = start_point(model, start, classes)
        if start is not None and len(start):
            say(f"warm start: {label}" + (", its rows eligible this year" if point is not None
                                          else " breaks a rule this year; not used"))
        remaining = max(limit - (time.perf_counter() - t0), 0.1)
        # over classes, served weight is searched plainly first, then with quality as a
        # tie-break from where that stopped (lexicographic.FIRST_LEVEL_PLAIN_SHARE)
        lex = solve_lexicographic(model, backend, remaining, pol.mip_gap, threads, pol.seed,
                                  progress=say, start=point, levels=pol.levels,
                                  session=session, tie_break=classes is not None,
                                  plain_share=FIRST_LEVEL_PLAIN_SHARE, stop_at=stop_at,
                                  known_bounds=known_bounds)
    timings["solve"] = lex.seconds

    t = time.perf_counter()
    chosen = None
    if lex.status.has_solution and lex.x is not None:
        chosen = chosen_triples(model, classes, lex.x)
    a, unserved, agencies, districts = tables_of(instance, elig, chosen)
    timings["results"] = time.perf_counter() - t
    sizes = {"variables": lp.n_vars, "constraints": lp.n_rows, "nonzeros": lp.n_nonzeros}
    summary = make_summary(instance, elig, sizes, lex, backend, limit, threads, a, districts,
                           timings, time.perf_counter() - t0)
    if kept:
        summary["full_model_kept_by"] = kept
    if classes is not None:
        summary["class_model"] = classes.facts()
    return plan_result(instance, summary, a, unserved, agencies, districts, elig.excluded)


def plan_result(instance: Instance, summary: dict, a: pd.DataFrame, unserved: pd.DataFrame,
                agencies: pd.DataFrame, districts: pd.DataFrame, excluded: pd.DataFrame
                ) -> RunResult:
    """The RunResult of a plan's tables, with the funding tables read off its split and,
    with incumbents and a plan, changes.csv."""
    funding, by_agency = funding_tables(instance, a)
    has_plan = summary.get("coverage") is not None
    return RunResult(summary, a, unserved, agencies, districts, excluded, None, funding,
                     by_agency, changes=changes_table(instance, a, unserved) if has_plan
                     else None)


def incumbent_start(instance: Instance) -> pd.DataFrame:
    """Last year's plan as a warm start: the incumbents, with each assign pin in place of its
    demand's incumbent (rows not eligible this year are dropped by start_point)."""
    keys = ["enterprise_id", "service_id", "agency_id"]
    pins = instance.pins
    assign = pins[pins["action"] == "assign"]
    inc = instance.incumbents
    inc = inc[~inc["demand"].isin(assign["demand"])]
    return pd.concat([inc[keys], assign[keys]], ignore_index=True).astype(str)


class ParametricSolve:
    """One model, loaded once into one solver session, solved at many budgets (a sweep
    chain): between solves only the budget row's bound changes and the rows a solve added
    (held levels) are deleted, so nothing is rebuilt and the last LP basis warm-starts the
    next relaxation. For backends with `parametric_rows`, below province scale."""

    def __init__(self, instance: Instance, elig: Eligibility, backend: Backend, threads: int):
        t = time.perf_counter()
        self.instance, self.elig, self.backend, self.threads = instance, elig, backend, threads
        # the class model where solve_instance would use it, so a point equals a single solve
        self.model, self.classes = exact_model(instance, elig, backend)
        lp = self.model.lp
        self.budget_row = self.model.budget_row
        self.session: ParametricSession | None = None
        self.rows = lp.n_rows
        if lp.n_vars and not (self.model.unservable_mandatory is not None
                              and len(self.model.unservable_mandatory)):
            self.session = cast(ParametricSession,
                                backend.open(lp, threads, instance.policy.seed))
            self.rows = self.session.row_count()
        self.build_seconds = time.perf_counter() - t
        self.solves = 0

    @staticmethod
    def applies(instance: Instance, elig: Eligibility, backend: Backend) -> bool:
        """The backend can change a row in place, the instance is below province scale, and
        the budget is one row (no funding sources)."""
        return (bool(backend.parametric_rows) and instance.policy.budget_total is not None
                and not has_funding(instance)
                and not (backend.province_scale and use_large_path(instance, elig)))

    def solve(self, instance: Instance, time_limit: float | None = None,
              start: pd.DataFrame | None = None,
              stop_at: dict[str, float] | None = None) -> RunResult:
        """solve_instance for `instance`, the session's instance at another budget."""
        t0 = time.perf_counter()
        pol = instance.policy
        limit = float(time_limit if time_limit is not None else pol.time_limit)
        timings = {"build": self.build_seconds if self.solves == 0 else 0.0}
        self.solves += 1
        model = self.model
        label = "the given plan"
        if start is None and has_incumbents(instance):  # as solve_instance does
            start, label = incumbent_start(instance), "last year's plan (incumbents.csv, pins)"
        # without a session (no columns, or a mandatory demand no agency can serve) the
        # budget plays no part
        if (self.session is not None and self.budget_row is not None
                and pol.budget_total is not None):
            hi = pol.budget_total / model.cost_scale
            self.session.set_row_bounds(np.array([self.budget_row]), np.array([-np.inf]),
                                        np.array([hi]))
        try:
            return solve_model(instance, self.elig, model, self.backend, limit,
                               self.threads, t0, timings, lambda _m: None, start,
                               self.session, label=label, classes=self.classes,
                               stop_at=stop_at)
        finally:
            if self.session is not None:
                self.session.truncate_rows(self.rows)


def _solve_large(instance: Instance, elig: Eligibility, backend: Backend, limit: float,
                 threads: int, t0: float, timings: dict[str, float], say: Progress
                 ) -> RunResult:
    """solve_instance at province scale (pipeline/large_scale): the full model is never
    built; each level is an LP over demand classes, rounded and repaired."""
    say(f"large scale: {len(elig.triples):,} eligible triples >= {LARGE_TRIPLES:,}: each "
        "level as an LP over demand classes, rounded and repaired")
    pol = instance.policy
    dem = instance.demands
    has = np.zeros(len(dem), dtype=bool)
    has[elig.triples["demand"].to_numpy()] = True
    mand = dem["risk_level"].isin(pol.mandatory_levels).to_numpy()
    info: dict = {}
    chosen = None
    # the triples the path solves over: a forced demand (a pin, or an incumbent max_changes 0
    # keeps) has only its own; counts and excluded.csv stay the eligibility's
    solve_elig = elig
    if (mand & ~has).any():
        say("infeasible before solving: a mandatory demand has no eligible agency")
        lex = LexResult(Status.INFEASIBLE, None, [], 0.0)
    else:
        remaining = max(limit - (time.perf_counter() - t0), 0.1)
        forced, solve_elig = forced_demands(instance, elig)
        res = solve_large(instance, solve_elig, remaining, pol.mip_gap, threads, pol.seed,
                          progress=say, forced=forced, backend=backend)
        lex, chosen, info = res.lex, res.chosen, res.info
    timings["solve"] = lex.seconds
    t = time.perf_counter()
    a, unserved, agencies, districts = tables_of(
        instance, solve_elig, chosen if lex.status.has_solution else None)
    timings["results"] = time.perf_counter() - t
    sizes = {"variables": info.get("lp_columns", 0), "constraints": info.get("lp_rows", 0),
             "nonzeros": None}
    summary = make_summary(instance, elig, sizes, lex, backend, limit, threads, a, districts,
                           timings, time.perf_counter() - t0)
    summary["large_scale"] = info
    summary["levels_optimised"] = info.get("levels_optimised", [])
    return plan_result(instance, summary, a, unserved, agencies, districts, elig.excluded)
