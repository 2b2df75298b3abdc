"""A first plan under max_districts_per_agency: each agency's districts first, then the plan.

With a cap on the districts an agency works in, HiGHS found no plan in 60 s on othergen
cities of 1,500 and 5,000 enterprises that have one (docs/tuning-log.md, "Rules the province
path leaves out"): which districts each agency takes is a choice across the whole city that
its served-weight search does not make. Here it is made first: the least-cost search stops
at its first plan (which it finds: 2.7 s and 11.5 s on those cities), that plan's
agency-district pairs are widened, each agency up to the cap, by the districts where it
could serve most, and served weight is solved on those pairs alone, from the first plan
(which lies among them), where the cap can no longer bind. That plan keeps every rule, so it
is the start of the real solve, which may still move agencies to other districts.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.pipeline.class_path import chosen_triples, exact_model, start_point
from allocator.pipeline.least_budget import PLAN_KEYS
from allocator.pipeline.lexicographic import solve_lexicographic
from allocator.solvers import Backend

#: share of the time limit for the pairs and the plan on them
PAIRS_SHARE = 0.4
#: share of that for the first plan (the least-cost model, any plan)
FIRST_SHARE = 0.6
#: used from this many eligible triples on (below, HiGHS finds plans itself)
PAIRS_MIN_TRIPLES = 10_000
#: the first plan's gap: any plan will do
ANY_PLAN_GAP = 1.0


def cap_binds(instance: Instance, elig: Eligibility) -> bool:
    """Whether some agency is eligible in more districts than max_districts_per_agency."""
    cap = instance.policy.max_districts_per_agency
    if cap is None or elig.triples.empty:
        return False
    t = elig.triples
    return bool((t.groupby("agency_id", observed=True)["district_id"].nunique() > cap).any())


def pair_values(instance: Instance, t: pd.DataFrame) -> pd.DataFrame:
    """Per agency and district: the weight the agency could serve there (its eligible weight,
    scaled down where its capacity is short of their person-days)."""
    pairs = (t.assign(agency_id=t["agency_id"].astype(str),
                      district_id=t["district_id"].astype(str))
             .groupby(["agency_id", "district_id"], sort=True)
             .agg(weight=("weight", "sum"), load=("load", "sum")).reset_index())
    cap = instance.agencies["capacity_days"].reindex(pairs["agency_id"]).to_numpy(dtype=float)
    share = np.minimum(1.0, cap / np.maximum(pairs["load"].to_numpy(dtype=float), 1e-9))
    return pairs.assign(value=pairs["weight"].to_numpy(dtype=float) * share)


def pairs_start(instance: Instance, elig: Eligibility, backend: Backend, seconds: float,
                threads: int) -> pd.DataFrame | None:
    """A plan keeping every rule, as assignment rows (PLAN_KEYS): a first plan (any_plan),
    its pairs widened up to the cap (widen), and served weight solved on those pairs alone
    from it (the cap then cannot bind), in about `seconds` all told; None when no first
    plan is found in time."""
    t0 = time.perf_counter()
    first = any_plan(instance, elig, backend, FIRST_SHARE * seconds, threads)
    if first is None:
        return None
    t = elig.triples
    pairs = widen(instance, t, t.iloc[first][["agency_id", "district_id"]].astype(str))
    on = pd.MultiIndex.from_arrays([t["agency_id"].astype(str), t["district_id"].astype(str)]
                                   ).isin(pd.MultiIndex.from_frame(pairs))
    kept = t[on].reset_index(drop=True)
    kept.index.name = t.index.name
    sub = Eligibility(kept, elig.excluded)
    pol = dataclasses.replace(instance.policy, max_districts_per_agency=None,
                              levels=("coverage",))
    inst = dataclasses.replace(instance, policy=pol)
    model, plan = exact_model(inst, sub, backend)
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return None
    # the first plan is one of the pairs' plans: the start
    point = start_point(model, t.iloc[first][PLAN_KEYS].astype(str), plan)
    left = seconds - (time.perf_counter() - t0)
    lex = solve_lexicographic(model, backend, max(left, 0.5), pol.mip_gap, threads, pol.seed,
                              start=point, levels=("coverage",), tie_break=plan is not None)
    if not lex.status.has_solution or lex.x is None:
        return None
    chosen = chosen_triples(model, plan, lex.x)
    return kept.iloc[chosen][PLAN_KEYS].astype(str).reset_index(drop=True)


def any_plan(instance: Instance, elig: Eligibility, backend: Backend, seconds: float,
             threads: int) -> np.ndarray | None:
    """Triple numbers of some plan keeping every rule, or None: the least cost searched
    until a first plan (the least-cost model finds one where the served-weight model does
    not: hidden-1500-s3 with the cap at 2 in 3.5-7 s), over classes where they apply."""
    pol = instance.policy
    model, plan = exact_model(instance, elig, backend)
    if model.unservable_mandatory is not None and len(model.unservable_mandatory):
        return None
    session = backend.open(model.lp, threads, pol.seed)
    session.set_objective(model.levels[-1].coefs, model.levels[-1].sense)
    res = session.solve(seconds, ANY_PLAN_GAP, None)
    if not res.status.has_solution or res.x is None:
        return None
    return chosen_triples(model, plan, np.asarray(res.x))


def widen(instance: Instance, t: pd.DataFrame, used: pd.DataFrame) -> pd.DataFrame:
    """The pairs of a plan, each agency given more districts up to the cap, those where it
    could serve most first (pair_values)."""
    cap = int(instance.policy.max_districts_per_agency or 0)
    used = used.drop_duplicates()
    values = pair_values(instance, t)
    taken = pd.MultiIndex.from_frame(values[["agency_id", "district_id"]]).isin(
        pd.MultiIndex.from_frame(used))
    room = cap - used.groupby("agency_id").size().reindex(values["agency_id"]).fillna(
        0).to_numpy()
    extra = values[~taken].assign(room=room[~taken]).sort_values(
        ["agency_id", "value"], ascending=[True, False])
    extra = extra[extra.groupby("agency_id").cumcount().to_numpy() < extra["room"].to_numpy()]
    return pd.concat([used, extra[["agency_id", "district_id"]]], ignore_index=True)

