"""The three levels at province scale (see the package docstring): LP, rounding, repair."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from allocator.data.history import allowed_changes, stability_on
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.eligibility.incumbents import incumbent_triples, pinned_triples
from allocator.pipeline.large_scale.class_lp import ClassLp, CoverageLp
from allocator.pipeline.large_scale.classes import Arrays, Classes
from allocator.pipeline.large_scale.polish import coverage_hold, polish
from allocator.pipeline.large_scale.repair import (
    fill_budget,
    remaining_breaks,
    restore_coverage,
    restore_rules,
    round_lp,
)
from allocator.pipeline.lexicographic import LevelReport, LexResult
from allocator.solvers import Status
from allocator.solvers.base import Backend, objective_grid, relative_gap, settle_status
from allocator.solvers.highs_lp import lp_available

Progress = Callable[[str], None]

#: use this path from this many eligible triples on (docs/tuning-log.md, "Province scale")
LARGE_TRIPLES = 100_000


#: share of the time limit for the coverage LP, then of what is left for quality (cost: rest)
TIME_SHARE_LARGE = (0.75, 0.6)
#: share of the time limit kept for the neighbourhood MIP (polish.py) after the class LP's
#: levels, on instances of at most POLISH_MAX_DEMANDS demands (a province's 163,000 would make
#: a model of half a million columns)
POLISH_SHARE = 0.5
POLISH_MAX_DEMANDS = 60_000
#: seconds left below which the neighbourhood MIP is not started
POLISH_MIN_SECONDS = 5.0
#: seconds kept after the neighbourhood MIP for the class LP's bounds at its plan (rebound):
#: 5,000 enterprises about 1 s, 10,000 about 0.2 s (docs/tuning-log.md, "Province scale")
REBOUND_SECONDS = 2.5
#: seconds at most for the class LP's quality point at the coverage level's plan (polish.py)
REPRICE_SECONDS = 5.0
#: seconds kept besides for the cost LP when it waits for the class model's plan
#: (coverage_first)
COST_LP_SECONDS = 2.5
#: share of the time limit after which a coverage plan short of the gap sends the solve on to
#: the class model's coverage search, without the class LP's quality plans nearer the face and
#: its cost level (coverage_first)
COVERAGE_FIRST_SHARE = 0.25


#: the quality plan's LP keeps coverage within this (relative) of the coverage LP optimum
FACE_TOL = 1e-7


#: rules the path checks on every plan (repair.remaining_breaks) but neither holds in its
#: class LP nor restores: its LP is then a relaxation (its bounds hold), its rounded plans are
#: kept only where they keep the rules, the exact class model (polish) holds them, and a
#: coverage plan that breaks one ends the path (solve_instance then solves the exact model)
#: (rule: the name remaining_breaks gives its breaks)
CHECKED_RULES = {"coverage.min_district_ratio": "minimum district coverage",
                 "anti_monopoly.max_share_in_city": "city share caps"}


def checked_rules(info: dict) -> list[str]:
    """The CHECKED_RULES that the large path's unrepaired plan breaks (its `info`)."""
    breaks = " ".join(info.get("unrepaired") or [])
    return [name for name, label in CHECKED_RULES.items() if label in breaks]


#: the coverage hold of the quality level's next try when a plan lost coverage: as a fraction
#: of the way from what level 1 guarantees to the coverage optimum's face
NEXT_HOLD_STEP = {0.5: 0.75, 0.75: 1.0}


def use_large_path(instance: Instance, elig: Eligibility) -> bool:
    """Whether to solve by the LP path: big enough, and only rules the repair can restore."""
    return (len(elig.triples) >= LARGE_TRIPLES and lp_available()
            and unsupported_rules(instance, elig) == [])


def unsupported_rules(instance: Instance, elig: Eligibility | None = None) -> list[str]:
    """Rules the large-scale path does not handle (the full model is used when one is on).

    Funding sources are among them: the class LP and its repair count one money per triple
    against one budget, while funding needs the split among sources (a flow per scope
    group). Co-payment is not: money is the government's part (Arrays.gov), the share caps
    count the contract value.
    Pins and rotation are eligibility (a pinned demand keeps one triple and must be served),
    and max_changes that allows no change fixes every still-eligible incumbent the same way;
    a max_changes that allows some but not all changes is a counting row the rounding cannot
    guarantee. Without `elig`, any max_changes above 0 with incumbents counts as such.
    The city-wide share cap and the minimum district coverage are checked, not held
    (CHECKED_RULES)."""
    pol = instance.policy
    out = []
    if instance.funding is not None and len(instance.funding):
        out.append("funding.csv")
    if pol.max_districts_per_agency is not None:
        out.append("anti_monopoly.max_districts_per_agency")
    if pol.max_changes is not None and len(instance.incumbents):
        if elig is None:
            partial = pol.max_changes > 0
        else:
            k = int(incumbent_triples(instance, elig.triples).sum())
            partial = 0 < allowed_changes(pol.max_changes, k) < k
        if partial:
            out.append("continuity.max_changes")
    return out


def forced_demands(instance: Instance, elig: Eligibility) -> tuple[np.ndarray, Eligibility]:
    """Demands the large path must serve by one given triple (per demand: bool), and the
    eligibility with their other triples left out: assign pins, and every demand whose
    incumbent is still eligible when max_changes allows no change."""
    t = elig.triples
    fixed = pinned_triples(instance, t)
    pol = instance.policy
    mine = incumbent_triples(instance, t) if pol.max_changes is not None else None
    if mine is not None and mine.any() and allowed_changes(pol.max_changes, int(mine.sum())) == 0:
        fixed |= mine
    forced = np.zeros(len(instance.demands), dtype=bool)
    if not fixed.any():
        return forced, elig
    demand = t["demand"].to_numpy()
    forced[demand[fixed]] = True
    keep = ~forced[demand] | fixed
    if keep.all():
        return forced, elig
    kept = t[keep].reset_index(drop=True)
    kept.index.name = t.index.name
    return forced, Eligibility(kept, elig.excluded)


def stability_report(instance: Instance, triples, chosen: np.ndarray, seconds: float
                     ) -> LevelReport:
    """The stability level at province scale: the plan's value, not optimised (said plainly)."""
    mine = incumbent_triples(instance, triples)
    kept = chosen[mine[chosen]] if len(chosen) else chosen
    value = float(triples["weight"].to_numpy(dtype=float)[kept].sum())
    return LevelReport("stability", "max", Status.FEASIBLE, value, None, None, seconds,
                       "not optimised: the province-scale path does not hold the stability "
                       "level (continuity.keep_incumbents); reported for the plan found",
                       optimised=False)


@dataclass
class LargeResult:
    """The large-scale path's outcome: levels, the chosen triples and what it did."""

    lex: LexResult
    chosen: np.ndarray | None  # triple numbers of the plan
    info: dict


def plan_levels(arr: Arrays, choice: np.ndarray,
                quality: np.ndarray) -> tuple[float, float, float]:
    """Served weight, quality sum (weight x quality) and government cost of a plan."""
    served = np.flatnonzero(choice >= 0)
    t = choice[served]
    w = arr.weight[served]
    return float(w.sum()), float((w * quality[t]).sum()), float(arr.gov[t].sum())


def solve_large(instance: Instance, elig: Eligibility, time_limit: float, mip_gap: float,
                threads: int = 0, seed: int = 0, progress: Progress | None = None,
                forced: np.ndarray | None = None,
                backend: Backend | None = None) -> LargeResult:
    """The three levels on the class LP (module docstring), then, with `backend` and time
    left, the exact class model (polish.py); never raises for the instance's sake: an
    infeasible LP is reported infeasible, a timed-out one no_solution.

    `forced` (per demand) marks demands that must be served and have exactly one triple
    (pins; see forced_demands): each is its own class and is treated as mandatory."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    triples = elig.triples
    arr = Arrays.of(instance, triples)
    if forced is not None and forced.any():
        arr.mandatory = arr.mandatory | forced
    classes = Classes.of(instance, triples, forced)
    polishing = _polishing(instance, arr, backend, forced)
    # the class LP's levels leave POLISH_SHARE of the time to the class model
    full_limit, time_limit = time_limit, time_limit * (1.0 - POLISH_SHARE * polishing)
    info: dict = {"method": "LP by column generation over demand classes, rounded and "
                            "repaired, level by level", "demands": len(arr.weight),
                  "classes": len(classes.rep)}
    say(f"large scale: {len(arr.weight):,} demands in {len(classes.rep):,} classes "
        f"({time.perf_counter() - t0:.1f} s)")
    lpm = ClassLp(instance, arr, classes, threads, seed)
    wanted = list(instance.policy.levels)
    share = TIME_SHARE_LARGE
    lp = lpm.solve(lpm.wg[lpm.g], share[0] * time_limit, say, "coverage")
    info.update(lp_status=lp.status.value, lp_value=lp.value, lp_bound=lp.bound,
                lp_converged=lp.converged, lp_rounds=lp.rounds, lp_rows=lp.rows,
                lp_seconds=round(lp.seconds, 3), lp_log=lp.log)
    if lp.status is Status.INFEASIBLE:
        report = LevelReport("coverage", "max", Status.INFEASIBLE, None, None, None,
                             time.perf_counter() - t0, "coverage LP: infeasible")
        return LargeResult(LexResult(Status.INFEASIBLE, None, [report],
                                     time.perf_counter() - t0), None, info)
    quality = triples["quality"].to_numpy(dtype=float)
    if lp.x is None:  # no LP answer in time: the greedy plan, repaired, with no bound
        say("large scale: the coverage LP did not finish in time; keeping the greedy plan")
        cols, members = lpm.greedy
        lp = CoverageLp(Status.FEASIBLE, None, lp.bound, lpm.ct[cols], members, False,
                        lp.rounds, lp.seconds, lp.log, lp.rows)
        wanted = ["coverage"]
    choice, stats = plan_from_lp(instance, arr, classes, lp)
    info["coverage_plan"] = stats
    say(f"large scale: coverage plan: rounded {stats['rounded_weight']:,.0f}, "
        f"{stats['dropped']:,} dropped to keep the rules, {stats['filled']:,} added with the "
        f"money left: {stats['served']:,.0f}"
        + (f" of a bound of {lp.bound:,.2f}" if lp.bound is not None else ""))
    problems = remaining_breaks(instance, arr, choice)
    if problems:
        info["unrepaired"] = problems
        say("large scale: the rounded plan breaks " + "; ".join(problems))
        spent = time.perf_counter() - t0
        report = LevelReport("coverage", "max", Status.NO_SOLUTION, None, lp.bound, None,
                             spent, "rounded plan could not be repaired")
        return LargeResult(LexResult(Status.NO_SOLUTION, None, [report], spent), None, info)
    cov, qual, cost = plan_levels(arr, choice, quality)
    bounds: dict[str, float | None] = {"coverage": lp.bound, "quality": None, "cost": None}
    seconds = {"coverage": time.perf_counter() - t0, "quality": 0.0, "cost": 0.0}
    lp_of = {"coverage": lp}
    # level 2: quality, coverage held at what level 1 guarantees (within the gap of its bound)
    hold_cov = coverage_hold(cov, lp.bound, arr.weight, mip_gap)
    info["coverage_first"] = False
    hurry = functools.partial(_hurry, coverage_first(polishing, cov, lp.bound, arr.weight,
                                                     mip_gap), t0, full_limit, info, say)
    q_obj = lpm.wg[lpm.g] * quality[lpm.ct]
    left = time_limit - (time.perf_counter() - t0)
    if "quality" in wanted and left > 1.0:
        t = time.perf_counter()
        # the bound from the LP that asks only what level 1 guarantees (valid for every plan
        # the level may keep); the plan from rounding that LP's point, or if that loses too
        # much coverage, from the LP on the coverage LP's optimal face (rounding then loses
        # about what level 1's rounding lost)
        lpm.hold(lpm.wg[lpm.g], hold_cov)
        lp2 = lpm.solve(q_obj, share[1] * left, say, "quality")
        lp_of["quality"] = lp2
        if lp2.x is not None:
            bounds["quality"] = lp2.bound
        tries = [lp2]
        step: float | None = 0.5  # fraction of the way from hold_cov to the face
        while tries:
            src = tries.pop(0)
            if src.x is None:
                break
            ch2, stats2 = plan_from_lp(instance, arr, classes, src)
            if arr.weight[ch2 >= 0].sum() < hold_cov - 1e-9:
                stats2["coverage_restored"] = restore_coverage(instance, arr, ch2, hold_cov,
                                                               quality)
            c2, q2, k2 = plan_levels(arr, ch2, quality)
            ok = not remaining_breaks(instance, arr, ch2) and c2 >= hold_cov - 1e-9
            stats2["kept"] = bool(ok and q2 > qual)
            info.setdefault("quality_plans", []).append(stats2)
            say(f"large scale: quality plan: {q2:,.1f} (coverage {c2:,.0f}) against "
                f"{qual:,.1f}, bound {lp2.bound:,.1f}: "
                + ("kept" if stats2["kept"] else "the earlier plan is kept"))
            if stats2["kept"]:
                choice, cov, qual, cost = ch2, c2, q2, k2
            if c2 < hold_cov - 1e-9:
                # the plan lost coverage: nearer the coverage optimum's face, rounding loses
                # less (and the quality the LP finds falls): 0.5, 0.75, then the face
                if step is not None and lp.value is not None and not hurry():
                    budget_left = time_limit - (time.perf_counter() - t0)
                    if budget_left > 0.25 * time_limit * (1 - share[0]):
                        face = max(hold_cov, lp.value * (1 - FACE_TOL))
                        lpm.move_hold(hold_cov + step * (face - hold_cov))
                        tries.append(lpm.solve(q_obj, 0.5 * budget_left, say,
                                               f"quality (hold {step:.2f} to the face)"))
                        lpm.move_hold(hold_cov)
                        step = NEXT_HOLD_STEP.get(step)
        seconds["quality"] = time.perf_counter() - t
    # level 3: cost, quality held likewise
    left = time_limit - (time.perf_counter() - t0)
    if "cost" in wanted and left > 1.0 and "quality" in lp_of and not hurry():
        t = time.perf_counter()
        qb = bounds["quality"]
        hold_q = min(qual, qb * (1 - mip_gap)) if qb is not None else qual
        lpm.hold(q_obj, hold_q)
        lp3 = lpm.solve(-lpm.c, left - 0.5, say, "cost")
        lp_of["cost"] = lp3
        if lp3.x is not None and lp3.bound is not None:
            bounds["cost"] = -lp3.bound * lpm.budget  # a lower bound on the cost
            ch3, stats3 = plan_from_lp(instance, arr, classes, lp3)
            if arr.weight[ch3 >= 0].sum() < hold_cov - 1e-9:
                stats3["coverage_restored"] = restore_coverage(instance, arr, ch3, hold_cov,
                                                               quality)
            c3, q3, k3 = plan_levels(arr, ch3, quality)
            ok = (not remaining_breaks(instance, arr, ch3) and c3 >= hold_cov - 1e-9
                  and q3 >= hold_q - 1e-6 * max(1.0, abs(hold_q)))
            stats3["kept"] = bool(ok and k3 < cost)
            info["cost_plan"] = stats3
            say(f"large scale: cost plan: {k3:,.0f} (coverage {c3:,.0f}, quality {q3:,.1f}) "
                f"against {cost:,.0f}, bound {bounds['cost']:,.0f}: "
                + ("kept" if stats3["kept"] else "the earlier plan is kept"))
            if stats3["kept"]:
                choice, cov, qual, cost = ch3, c3, q3, k3
        seconds["cost"] = time.perf_counter() - t
    left = full_limit - (time.perf_counter() - t0)
    if polishing and left >= POLISH_MIN_SECONDS:
        before = (cov, qual)
        reprice = functools.partial(quality_at, lpm, lp_of, q_obj, bounds=bounds,
                                    mip_gap=mip_gap, limit=REPRICE_SECONDS, say=say)
        waits = bool(info["coverage_first"]) and "cost" in wanted  # the cost LP, in rebound
        choice, cov, qual, cost = _polish(instance, elig, arr, classes, choice, lp_of, backend,
                                          left - REBOUND_SECONDS - waits * COST_LP_SECONDS,
                                          mip_gap, threads, seed, say, info, seconds, bounds,
                                          reprice)
        rebound(lpm, lp_of, q_obj, before, (cov, qual), bounds, mip_gap,
                full_limit - (time.perf_counter() - t0), say, cost_wanted=waits)
    bounds["coverage"] = on_grid(bounds["coverage"], arr.weight)
    info["levels_lp"] = {k: {"status": v.status.value, "value": v.value, "bound": v.bound,
                             "rounds": v.rounds, "seconds": round(v.seconds, 3)}
                         for k, v in lp_of.items()}
    info["lp_columns"] = len(lpm.columns)
    levels = level_reports((cov, qual, cost), bounds, lp_of, wanted, seconds, info, mip_gap)
    chosen = np.sort(choice[choice >= 0])
    if stability_on(instance):  # the one level this path does not optimise: said plainly
        levels.insert(1, stability_report(instance, triples, chosen, 0.0))
        info["rules_not_held"] = ["continuity.keep_incumbents (the stability level is not "
                                  "optimised at province scale; its value is reported)"]
        say("large scale: the stability level (keep_incumbents) is not optimised on this "
            "path; its value for the plan is reported")
    info["levels_optimised"] = [r.name for r in levels if r.optimised]
    overall = (Status.OPTIMAL if all(r.status is Status.OPTIMAL for r in levels)
               else Status.FEASIBLE)
    # x: an empty point marks "a plan exists"; the plan itself is `chosen` (no model columns)
    return LargeResult(LexResult(overall, np.zeros(0), levels, time.perf_counter() - t0),
                       chosen, info)


def level_reports(values: tuple[float, float, float], bounds: dict[str, float | None],
                  lp_of: dict[str, CoverageLp], wanted: list[str], seconds: dict[str, float],
                  info: dict, mip_gap: float) -> list[LevelReport]:
    """The three levels' reports of the path's plan (values: coverage, quality, cost)."""
    levels = []
    cov, qual, cost = values
    by_class_model = {lv["name"] for lv in (info.get("polish") or {}).get("levels", [])
                      if lv.get("optimised")}
    for name, sense, value in (("coverage", "max", cov), ("quality", "max", qual),
                               ("cost", "min", cost)):
        b = bounds[name]
        gap = relative_gap(value, b) if b is not None else None
        if name in lp_of and b is not None and name in wanted:
            st = settle_status(Status.FEASIBLE, gap, mip_gap)
            levels.append(LevelReport(name, sense, st, value, b, gap, seconds[name],
                                      f"{name} LP over demand classes, rounded and repaired; "
                                      "bound: that LP's Lagrangian bound"))
        elif name in wanted and name in by_class_model:
            # optimised by the exact class model, whose bound holds for its columns only,
            # and the class LP's bound not found in time (e.g. its cost LP after
            # coverage_first): a plan without a proven bound, said so
            levels.append(LevelReport(name, sense, Status.FEASIBLE, value, None, None,
                                      seconds[name], "exact class model over its columns; "
                                      "no bound over all columns in time"))
        else:
            levels.append(LevelReport(name, sense, Status.FEASIBLE, value, None, None,
                                      seconds[name], "not optimised (time, or solver.levels)",
                                      optimised=False))
    return levels


def on_grid(bound: float | None, weight: np.ndarray) -> float | None:
    """A served-weight bound rounded down to the grid of the weights (a whole number when
    every weight is one): no plan serves a weight between two steps."""
    grid = objective_grid(weight, np.ones(len(weight), dtype=bool))
    if bound is None or grid is None:
        return bound
    return float(np.floor(bound / grid + 1e-6) * grid)


def quality_at(lpm: ClassLp, lp_of: dict[str, CoverageLp], q_obj: np.ndarray, cov: float,
               bounds: dict[str, float | None], mip_gap: float, limit: float,
               say: Progress) -> CoverageLp | None:
    """The class LP's quality point over all columns with coverage held at what a plan
    serving `cov` guarantees (no more than the optimum serves: the bound holds); the quality
    bound is tightened to it. None when the quality level never ran here."""
    if "quality" not in lp_of or not lpm.holds or limit < 0.2:
        return None
    cb = bounds["coverage"]
    lpm.move_hold(coverage_hold(cov, cb, lpm.arr.weight, mip_gap), which=0)
    if len(lpm.holds) > 1:
        lpm.move_hold(-np.inf, np.inf, which=1)  # the quality hold of the cost level
    lp2 = lpm.solve(q_obj, limit, say, f"quality with {cov:,.0f} served")
    if lp2.bound is not None:
        old = bounds["quality"]
        bounds["quality"] = lp2.bound if old is None else min(old, lp2.bound)
    return lp2


def _hurry(short: bool, t0: float, limit: float, info: dict, say: Progress) -> bool:
    """Whether the class model searches coverage now (coverage_first): the plan is `short`
    of the gap and COVERAGE_FIRST_SHARE of the time is gone; once so, for the rest."""
    if short and not info["coverage_first"] and (
            time.perf_counter() - t0 > COVERAGE_FIRST_SHARE * limit):
        say(f"large scale: the coverage plan is short of the gap and {COVERAGE_FIRST_SHARE:.0%} "
            "of the time is gone: the exact class model searches coverage now; the cost LP "
            "waits for its plan")
        info["coverage_first"] = True
    return bool(info["coverage_first"])


def coverage_first(polishing: bool, cov: float, bound: float | None, weight: np.ndarray,
                   mip_gap: float) -> bool:
    """Whether the exact class model follows and the rounded plan is short of the gap of its
    bound: then, once COVERAGE_FIRST_SHARE of the time is gone, the class model searches
    coverage before the class LP's later work (its quality plans nearer the coverage face,
    its cost level). At 10,000 enterprises with tight capacity that work took 11 s and left
    the coverage search 19.5 s, in which it found nothing (49,334 of 49,349); with the 11 s
    it served 49,347. Not at once: at 5,000 that work takes 3 s and its points' columns are
    what the coverage search needs (25,087 with them, 25,067 without) (docs/tuning-log.md,
    "Twelve more hidden cities, co-payment and coverage first")."""
    b = on_grid(bound, weight)
    gap = relative_gap(cov, b) if b is not None else None
    return polishing and gap is not None and gap > mip_gap


def rebound(lpm: ClassLp, lp_of: dict[str, CoverageLp], q_obj: np.ndarray,
            before: tuple[float, float], after: tuple[float, float],
            bounds: dict[str, float | None], mip_gap: float, limit: float,
            say: Progress, cost_wanted: bool = False) -> None:
    """Tighter quality and cost bounds once the class model's plan serves more (or better):
    the class LP held coverage at the rounded plan's; held at the new plan's its quality
    bound still holds and is lower (10,000 enterprises: 3,113,791 with 35,077 served,
    3,106,437 with 35,080); the cost bound likewise with quality held at the new plan's.
    With `cost_wanted` and no cost LP yet (coverage_first), that LP is solved here."""
    t = time.perf_counter()
    cov, qual = after
    waiting = cost_wanted and "cost" not in lp_of and "quality" in lp_of
    if after != before:
        quality_at(lpm, lp_of, q_obj, cov, bounds, mip_gap, 0.5 * limit, say)
    elif not waiting:
        return
    qb = bounds["quality"]
    if qb is None or "quality" not in lp_of:
        return
    if waiting:
        lpm.hold(q_obj, min(qual, qb * (1 - mip_gap)))
        name = "cost"
    elif "cost" in lp_of and len(lpm.holds) >= 2 and after != before:
        lpm.move_hold(min(qual, qb * (1 - mip_gap)), which=1)
        name = "cost bound at the new plan"
    else:
        return
    lp3 = lpm.solve(-lpm.c, limit - (time.perf_counter() - t), say, name)
    if waiting and lp3.x is not None:
        lp_of["cost"] = lp3
    if lp3.bound is not None and "cost" in lp_of:
        old = bounds["cost"]
        new = -lp3.bound * lpm.budget  # a lower bound on the cost
        bounds["cost"] = new if old is None else max(old, new)


def _polishing(instance: Instance, arr: Arrays, backend: Backend | None,
               forced: np.ndarray | None) -> bool:
    """Whether the exact class model follows the class LP's levels: with a backend, up to
    POLISH_MAX_DEMANDS demands, and without pins, rotation or stability, which the class
    model does not hold (with those the class LP's plan is the answer, as before)."""
    return (backend is not None and len(arr.weight) <= POLISH_MAX_DEMANDS
            and not (forced is not None and forced.any()) and not len(instance.incumbents))


def _polish(instance: Instance, elig: Eligibility, arr: Arrays, classes: Classes,
            choice: np.ndarray, lp_of: dict[str, CoverageLp], backend: Backend | None,
            left: float,
            mip_gap: float, threads: int, seed: int, say: Progress, info: dict,
            seconds: dict[str, float], bounds: dict[str, float | None],
            reprice: Callable[[float], CoverageLp | None]
            ) -> tuple[np.ndarray, float, float, float]:
    """The class LP's plan improved by the exact class model over its neighbourhood
    (polish.py), kept when lexicographically at least as good; (plan, its three values).
    The class LP's bounds stay valid for it but the cost bound: that LP held quality at the
    earlier plan's, so it is dropped if the new plan's quality is lower."""
    quality = elig.triples["quality"].to_numpy(dtype=float)
    before = plan_levels(arr, choice, quality)
    assert backend is not None  # only called when _polishing said so
    known = {k: float(v) for k, v in bounds.items() if v is not None}
    better, sub, info["polish"] = polish(instance, elig, arr, classes, choice,
                                         list(lp_of.values()), backend, left, mip_gap, threads,
                                         seed, say, known, reprice)
    if sub is not None:
        for r in sub.levels:
            seconds[r.name] = seconds.get(r.name, 0.0) + r.seconds
    if better is None:
        return (choice, *before)
    after = plan_levels(arr, better, quality)
    # served weight within the gap of its bound is settled: between two such plans quality
    # decides (the later levels may keep any plan serving at least the hold)
    hold = coverage_hold(max(after[0], before[0]), bounds["coverage"], arr.weight, mip_gap)
    kept = _not_worse((min(after[0], hold), *after[1:]), (min(before[0], hold), *before[1:]))
    info["polish"]["kept"] = kept
    say(f"large scale: class model plan {after[0]:,.0f} / {after[1]:,.1f} / {after[2]:,.0f} "
        f"against {before[0]:,.0f} / {before[1]:,.1f} / {before[2]:,.0f}: "
        + ("kept" if kept else "the earlier plan is kept"))
    if not kept:
        return (choice, *before)
    if after[1] < before[1] - 1e-6 * max(1.0, abs(before[1])):
        bounds["cost"] = None
    return (better, *after)


def _not_worse(new: tuple[float, float, float], old: tuple[float, float, float]) -> bool:
    """(coverage, quality, cost) new at least as good as old in the lexicographic order."""
    for a, b, sign in zip(new, old, (1.0, 1.0, -1.0), strict=True):
        tol = 1e-9 * max(1.0, abs(b))
        if sign * (a - b) > tol:
            return True
        if sign * (a - b) < -tol:
            return False
    return True


def plan_from_lp(instance: Instance, arr: Arrays, classes: Classes, lp: CoverageLp
                 ) -> tuple[np.ndarray, dict]:
    """Round an LP point, restore every rule, spend what is left: the plan and its story."""
    t = time.perf_counter()
    choice = round_lp(arr, classes, lp)
    rounded = float(arr.weight[choice >= 0].sum())
    dropped = restore_rules(instance, arr, choice)
    added = fill_budget(instance, arr, choice)
    return choice, {"rounded_weight": rounded, "dropped": dropped, "filled": added,
                    "served": float(arr.weight[choice >= 0].sum()),
                    "seconds": round(time.perf_counter() - t, 3)}

