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

from collections.abc import Callable
from typing import Any

import numpy as np

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import build_class_model, point_from_triples
from allocator.pipeline.large_scale.class_lp import CoverageLp
from allocator.pipeline.large_scale.classes import Arrays, Classes, triple_of
from allocator.pipeline.lexicographic import LexResult, solve_lexicographic
from allocator.solvers.base import Backend


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


def polish(instance: Instance, elig: Eligibility, arr: Arrays, classes: Classes,
           choice: np.ndarray, points: list[CoverageLp], backend: Backend, time_limit: float,
           mip_gap: float, threads: int, seed: int,
           say: Callable[[str], None]) -> tuple[np.ndarray | None, LexResult | None, dict]:
    """The plan improved over its class neighbourhood: (new choice per demand or None, the
    restricted model's lexicographic result, facts for summary.json)."""
    g, a, counts = class_columns(arr, classes, choice, points)
    rows = triple_of(arr, classes.rep[g], a)  # the representative's triple of each pair
    model = build_class_model(instance, elig.triples.iloc[rows], classes.size[g],
                              direct_share_rows=backend.direct_share_rows)
    info: dict[str, Any] = {"class_columns": len(rows), "variables": model.lp.n_vars,
                            "constraints": model.lp.n_rows}
    say(f"large scale: exact model over {len(rows):,} class columns ({model.lp.n_vars:,} "
        f"variables), up to {time_limit:.1f} s")
    on = np.flatnonzero(counts > 0)
    start = point_from_triples(model, on, counts[on])
    lex = solve_lexicographic(model, backend, time_limit, mip_gap, threads, seed,
                              progress=lambda m: say(f"large scale: class model {m}"),
                              start=start, levels=instance.policy.levels)
    info["levels"] = [r.as_dict() for r in lex.levels]
    if not lex.status.has_solution or lex.x is None:
        return None, lex, info
    x = np.round(lex.x[model.x])
    return hand_out(arr, classes, g, a, x), lex, info
