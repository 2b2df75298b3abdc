"""The rounded plan improved by the exact model over classes, with the time left.

The class LP's plan is rounded and repaired, which loses a little of every level (5,000
enterprises: coverage 25,475 of a bound of 25,536, quality 0.19 % from its bound). With time
left, the exact model of spec section 4 is built over classes of identical demands
(model/build.py `build_class_model`: x counts how many members of a class an agency serves,
every rule included, share caps and minimum agencies too) on the class columns that the
class LP's points use and the plan's own, and solved lexicographically from the plan as a
start (pipeline/lexicographic.py, LP-guided HiGHS), so it never returns a worse plan. The
levels' proven bounds stay those of the class LP over all columns: the restricted model's own
bounds hold only for its columns (docs/tuning-log.md, "Province scale").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import AllocationModel, build_class_model, point_from_triples
from allocator.pipeline.large_scale.class_lp import CoverageLp
from allocator.pipeline.large_scale.classes import Arrays, Classes, triple_of
from allocator.pipeline.lexicographic import (
    LexResult,
    hold_tolerance,
    level_budget,
    solve_lexicographic,
)
from allocator.solvers.base import Backend, objective_grid

#: HiGHS's heuristic effort in the class model's coverage search (its own is 0.05): at 5,000
#: enterprises 25,085-25,086 in 30 s against 25,083-25,084 (docs/tuning-log.md)
POLISH_HEURISTIC_EFFORT = 0.3


def class_columns(arr: Arrays, classes: Classes, choice: np.ndarray,
                  points: list[CoverageLp]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, agency) pairs of the restricted model, sorted: those the class LP's points use
    and the plan's own; and how many members the plan puts on each pair."""
    served = np.flatnonzero(choice >= 0)
    plan_g = classes.of_demand[served]
    plan_a = arr.agency[choice[served]]
    pairs = [np.stack([plan_g, plan_a], axis=1)]
    for lp in points:
        if lp.x is not None:
            cols = lp.columns[lp.x > 1e-9]
            pairs.append(np.stack([classes.of_demand[arr.demand[cols]], arr.agency[cols]],
                                  axis=1))
    both = np.unique(np.concatenate(pairs), axis=0)
    n_a = max(int(arr.agency.max(initial=0)) + 1, 1)
    key = both[:, 0] * n_a + both[:, 1]
    counts = np.bincount(np.searchsorted(key, plan_g * n_a + plan_a), minlength=len(key))
    return both[:, 0], both[:, 1], counts.astype(float)


def coverage_hold(cov: float, bound: float | None, weight: np.ndarray,
                  mip_gap: float) -> float:
    """What the coverage level guarantees to the later levels: the least served weight
    within mip_gap of its bound (a later level may keep any such plan), or the plan's own if
    less, on the weights' grid where there is one (no plan serves between two steps): 10,000
    enterprises, a bound of 24,145.48, plan 24,144: 24,143 where the unrounded 24,142.6 let
    the quality bound count plans that cannot exist."""
    if bound is None or not np.isfinite(bound):
        return cov
    grid = objective_grid(weight, np.ones(len(weight), dtype=bool))
    if grid is None:
        return min(cov, bound / (1 + mip_gap))
    top = np.floor(bound / grid + 1e-6) * grid
    return float(min(cov, np.ceil(top / (1 + mip_gap) / grid - 1e-6) * grid))


def members_of(classes: Classes) -> tuple[np.ndarray, np.ndarray]:
    """Demands ordered by class, and where each class starts in that order."""
    order = np.argsort(classes.of_demand, kind="stable")
    first = np.searchsorted(classes.of_demand[order], np.arange(len(classes.rep)))
    return order, first


def hand_out(arr: Arrays, classes: Classes, g: np.ndarray, a: np.ndarray,
             count: np.ndarray) -> np.ndarray:
    """A plan (triple per demand, -1 unserved) serving count[k] members of class g[k] by
    agency a[k]; members are interchangeable, so they are taken in order."""
    order, first = members_of(classes)
    keep = count > 0
    g, a, count = g[keep], a[keep], count[keep].astype(np.int64)
    srt = np.argsort(g, kind="stable")
    g, a, count = g[srt], a[srt], count[srt]
    before = np.cumsum(count) - count  # members handed out earlier within the same class
    start = np.searchsorted(g, g)
    offset = before - before[start]
    member = order[np.repeat(first[g] + offset, count) + _ranks(count)]
    out = np.full(len(arr.weight), -1, dtype=np.int64)
    out[member] = triple_of(arr, member, np.repeat(a, count))
    return out


def _ranks(size: np.ndarray) -> np.ndarray:
    """0 .. size-1 for each entry of size, concatenated."""
    return np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)


def neighbourhood(instance: Instance, elig: Eligibility, arr: Arrays, classes: Classes,
                  choice: np.ndarray, points: list[CoverageLp], backend: Backend
                  ) -> tuple[np.ndarray, np.ndarray, AllocationModel, np.ndarray]:
    """The exact class model over the pairs of `points` and the plan `choice`: (class and
    agency of each pair, the model, the plan as a start)."""
    g, a, counts = class_columns(arr, classes, choice, points)
    rows = triple_of(arr, classes.rep[g], a)  # the representative's triple of each pair
    model = build_class_model(instance, elig.triples.iloc[rows], classes.size[g],
                              direct_share_rows=backend.direct_share_rows)
    on = np.flatnonzero(counts > 0)
    return g, a, model, point_from_triples(model, on, counts[on])


def polish(instance: Instance, elig: Eligibility, arr: Arrays, classes: Classes,
           choice: np.ndarray, points: list[CoverageLp], backend: Backend, time_limit: float,
           mip_gap: float, threads: int, seed: int,
           say: Callable[[str], None],
           known_bounds: dict[str, float] | None = None,
           reprice: Callable[[float], CoverageLp | None] | None = None
           ) -> tuple[np.ndarray | None, LexResult | None, dict]:
    """The plan improved over its class neighbourhood: (new choice per demand or None, the
    restricted model's lexicographic result, facts for summary.json). `known_bounds`: the
    class LP's proven bounds by level; a level stops once within the gap of its bound.

    The coverage level is searched with quality as a tie-break and more of HiGHS's search
    given to its heuristics (POLISH_HEURISTIC_EFFORT): its plan then carries a quality near
    the LP's; from a plan of plain coverage the quality level found nothing in 25 s.
    With `reprice` (the class LP's quality point over all columns with coverage held at a
    value) the later levels are solved in a second model, over the pairs of that point at the
    coverage level's plan: near its bound quality is steep (10,000 enterprises: the LP's
    quality 3,113,791 with 35,077 served, 3,106,437 with 35,080) and the pairs of the earlier
    points held it to 3,087,712 (docs/tuning-log.md, "Province scale")."""
    t0 = time.perf_counter()
    wanted = tuple(instance.policy.levels)
    later = tuple(lv for lv in wanted if lv != "coverage")
    split = reprice is not None and "coverage" in wanted and bool(later)
    g, a, model, start = neighbourhood(instance, elig, arr, classes, choice, points, backend)
    info: dict[str, Any] = {"class_columns": len(g), "variables": model.lp.n_vars,
                            "constraints": model.lp.n_rows}
    say(f"large scale: exact model over {len(g):,} class columns ({model.lp.n_vars:,} "
        f"variables), up to {time_limit:.1f} s")
    first_limit = level_budget(time_limit, time_limit, len(later)) if split else time_limit
    lex = solve_lexicographic(model, backend, first_limit, mip_gap, threads, seed,
                              progress=lambda m: say(f"large scale: class model {m}"),
                              start=start, levels=("coverage",) if split else wanted,
                              known_bounds=known_bounds,
                              tie_break=True,
                              effort=POLISH_HEURISTIC_EFFORT)
    info["levels"] = [r.as_dict() for r in lex.levels]
    if not lex.status.has_solution or lex.x is None:
        return None, lex, info
    plan = hand_out(arr, classes, g, a, np.round(lex.x[model.x]))
    left = time_limit - (time.perf_counter() - t0)
    if not split or reprice is None or left < 1.0:
        return plan, lex, info
    cov = float(lex.levels[0].value or 0.0)
    point = reprice(cov)
    g2, a2, model2, start2 = neighbourhood(instance, elig, arr, classes, plan,
                                           [*points, *([point] if point else [])], backend)
    session = backend.open(model2.lp, threads, seed)
    level = model2.levels[0]
    nz = np.flatnonzero(level.coefs)
    hold = coverage_hold(cov, (known_bounds or {}).get("coverage"), arr.weight, mip_gap)
    session.add_row("hold_coverage", nz, level.coefs[nz], hold - hold_tolerance(hold), np.inf)
    left = time_limit - (time.perf_counter() - t0)
    say(f"large scale: the later levels over {len(g2):,} class columns at the coverage "
        f"plan, up to {left:.1f} s")
    known = dict(known_bounds or {})
    if point is not None and point.bound is not None:
        known["quality"] = point.bound
    lex2 = solve_lexicographic(model2, backend, left, mip_gap, threads, seed,
                               progress=lambda m: say(f"large scale: class model {m}"),
                               start=start2, levels=later, session=session,
                               known_bounds=known)
    info["later"] = {"class_columns": len(g2), "levels": [r.as_dict() for r in lex2.levels]}
    if not lex2.status.has_solution or lex2.x is None:
        return plan, lex, info
    lex2.levels[0] = lex.levels[0]
    info["levels"] = [r.as_dict() for r in lex2.levels]
    return hand_out(arr, classes, g2, a2, np.round(lex2.x[model2.x])), lex2, info
