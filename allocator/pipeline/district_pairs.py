"""A first plan under max_districts_per_agency: each agency's districts first, then the plan.

With a cap on the districts an agency works in, HiGHS found no plan in 60 s on othergen
cities of 1,500 and 5,000 enterprises that have one (docs/tuning-log.md, "Rules the province
path leaves out"): which districts each agency takes is a choice across the whole city that
its served-weight search does not make. Here it is made first, by a dive in the LP
relaxation of the served-weight model (dive_pairs): each round holds some agencies' most
active districts open and solves the LP again, so the LP, cap included, stays feasible with
every pair chosen. From the dive's point the pair MIP (pair_mip: which agency works where
whole, the assignments fractional) chooses again and bounds served weight over every plan,
far below the LP where few agencies share a district. Served weight is then solved on the
chosen pairs alone, where the cap can no longer bind. That plan keeps every rule, so it is
the start of the real solve, which may still move agencies to other districts, and the pair
MIP's bound is its coverage level's known bound.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import AllocationModel
from allocator.pipeline.class_path import chosen_triples, exact_model, start_point
from allocator.pipeline.least_budget import PLAN_KEYS
from allocator.pipeline.lexicographic import solve_lexicographic
from allocator.solvers import Backend
from allocator.solvers.base import ParametricSession, SolveResult, SteeredSession

#: share of the time limit for the pairs and the plan on them
PAIRS_SHARE = 0.4
#: share of that for the dive (LP solves; 3-4 s at 5,000 enterprises)
DIVE_SHARE = 0.5
#: LP solves per district slot of the cap: each holds open the most active district left of
#: the most decided share of the agencies (1 / the rounds left), so the LP can move the rest
#: (othergen 5,000 with the cap at 2: pairs whose plan serves 25,044 of the LP's 25,057,
#: where all agencies at once gave 24,971; docs/tuning-log.md, "Rules the province path
#: leaves out")
DIVE_ROUNDS = 4
#: where the dive's pairs hold no plan: the least-cost search's first plan, this share of
#: the time left, then the plan on its pairs widened to the cap
FIRST_SHARE = 0.6
#: the first plan's gap: any plan will do
ANY_PLAN_GAP = 1.0
#: seconds the pair MIP is given at least (it returns its start, and a bound, if stopped)
PAIR_MIP_MIN_SECONDS = 1.0
#: used from this many eligible triples on (below, HiGHS finds plans itself)
PAIRS_MIN_TRIPLES = 10_000


def cap_binds(instance: Instance, elig: Eligibility) -> bool:
    """Whether some agency is eligible in more districts than max_districts_per_agency."""
    cap = instance.policy.max_districts_per_agency
    if cap is None or elig.triples.empty:
        return False
    t = elig.triples
    return bool((t.groupby("agency_id", observed=True)["district_id"].nunique() > cap).any())


@dataclass
class PairsStart:
    """What the districts chosen first give the solve: a plan keeping every rule (assignment
    rows, PLAN_KEYS; None without one) and a bound on served weight over every plan (the
    pair MIP's, or None)."""

    plan: pd.DataFrame | None
    bound: float | None = None


@dataclass
class Pairs:
    """The pairs chosen (agency_id, district_id) and the pair MIP's bound on served weight."""

    pairs: pd.DataFrame
    bound: float | None


def pairs_start(instance: Instance, elig: Eligibility, backend: Backend, seconds: float,
                threads: int) -> PairsStart:
    """A plan keeping every rule and a bound, in about `seconds` all told: served weight
    solved on the pairs of the dive and the pair MIP (dive_pairs) alone, where the cap
    cannot bind; where that finds no plan, on the pairs of the least-cost search's first
    plan widened to the cap (any_plan, widen), from that plan."""
    t0 = time.perf_counter()
    chosen = dive_pairs(instance, elig, backend, DIVE_SHARE * seconds, threads)
    bound = None if chosen is None else chosen.bound
    if chosen is not None and len(chosen.pairs):
        found = plan_on_pairs(instance, elig, backend, chosen.pairs, None,
                              seconds - (time.perf_counter() - t0), threads)
        if found is not None:
            return PairsStart(found, bound)
    left = seconds - (time.perf_counter() - t0)
    first = any_plan(instance, elig, backend, FIRST_SHARE * left, threads)
    if first is None:
        return PairsStart(None, bound)
    t = elig.triples
    pairs = widen(instance, t, t.iloc[first][["agency_id", "district_id"]].astype(str))
    return PairsStart(plan_on_pairs(instance, elig, backend, pairs,
                                    t.iloc[first][PLAN_KEYS].astype(str),
                                    seconds - (time.perf_counter() - t0), threads), bound)


def plan_on_pairs(instance: Instance, elig: Eligibility, backend: Backend,
                  pairs: pd.DataFrame, start: pd.DataFrame | None, seconds: float,
                  threads: int) -> pd.DataFrame | None:
    """Served weight solved on the triples of the agency-district `pairs` alone (at most the
    cap per agency, so the cap is left out), from `start` (assignment rows among them) if
    given: the plan's rows, or None without one."""
    t = elig.triples
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
    point = None if start is None else start_point(model, start, plan)
    lex = solve_lexicographic(model, backend, max(seconds, 0.5), pol.mip_gap, threads,
                              pol.seed, start=point, levels=("coverage",),
                              tie_break=plan is not None)
    if not lex.status.has_solution or lex.x is None:
        return None
    chosen = chosen_triples(model, plan, lex.x)
    return kept.iloc[chosen][PLAN_KEYS].astype(str).reset_index(drop=True)


def dive_pairs(instance: Instance, elig: Eligibility, backend: Backend, seconds: float,
               threads: int) -> Pairs | None:
    """Agency-district pairs (agency_id, district_id), at most the cap per agency, chosen in
    the LP relaxation of the served-weight model: for each slot of the cap, DIVE_ROUNDS
    rounds each hold open (a row `dive[a,d]`: active >= 1) the most active district not yet
    held of the most decided share of the agencies with that many held, and solve the LP
    again (pair_scores: activity and served weight); then cap rounds hold what the LP still
    uses of agencies with room. Pairs the LP cannot keep held with the rest (an `allocator
    generate` city of 2,000 with the cap at 2: its last batch made it infeasible) are taken
    back by halves and barred (`hold`), so the LP, cap included, has a point with every pair
    held. An agency the LP never uses gets no pair. That point, whose activity is whole,
    starts the pair MIP (pair_mip) for the time left, whose plan gives the pairs instead
    where it serves at least as much as the dive's last LP. None where the model has no
    activity columns, the backend takes integer columns only or cannot delete rows, or the
    first LP has no point."""
    t0 = time.perf_counter()
    cap = instance.policy.max_districts_per_agency
    if cap is None or backend.integer_columns_only or not backend.parametric_rows:
        return None
    model, _ = exact_model(instance, elig, backend)
    if model.active is None or (model.unservable_mandatory is not None
                                and len(model.unservable_mandatory)):
        return None
    session = cast(ParametricSession,
                   backend.open(model.lp.relaxed(), threads, instance.policy.seed))
    level = model.levels[0]
    session.set_objective(level.coefs, level.sense)

    def lp() -> SolveResult:
        return session.solve(max(seconds - (time.perf_counter() - t0), 0.05), 0.0, None)

    res = lp()
    if res.x is None:
        return None
    lp_bound = res.objective  # a bound over every plan
    cols = model.active["col"].to_numpy()
    agency = model.active["agency_id"].astype(str).to_numpy()
    district = model.active["district_id"].astype(str).to_numpy()
    held = np.zeros(len(cols), dtype=bool)
    barred = np.zeros(len(cols), dtype=bool)  # pairs the LP cannot keep held with the rest

    def hold(batch: np.ndarray) -> SolveResult | None:
        """Hold the batch's pairs open and solve the LP; a batch the LP cannot keep is
        taken back and tried by halves, a single pair it cannot keep is barred. The last
        LP result with a point, or None."""
        rows = session.row_count()
        for k in batch:
            session.add_row(f"dive[{agency[k]},{district[k]}]",
                            cols[k:k + 1], np.ones(1), 1.0, np.inf)
        out = lp()
        if out.x is not None:
            held[batch] = True
            return out
        session.truncate_rows(rows)
        if len(batch) == 1 or time.perf_counter() - t0 >= seconds:
            barred[batch] = True
            return None
        halved = hold(batch[:len(batch) // 2])
        return hold(batch[len(batch) // 2:]) or halved

    pair_of = pair_index(model)
    activity = pair_scores(model, pair_of, res.x)
    # slot by slot, then (the LP having moved) whatever it still uses of agencies with room
    rounds: list[tuple[int | None, int]] = [
        (slot, DIVE_ROUNDS - r) for slot in range(int(cap)) for r in range(DIVE_ROUNDS)]
    rounds += [(None, 1)] * int(cap)
    for slot, left in rounds:
        take = next_pairs(agency, np.where(barred, 0.0, activity), held, slot, left, int(cap))
        if not len(take):
            continue
        if time.perf_counter() - t0 >= seconds:
            held[take] = True  # out of time: the rest chosen on the last LP point
            continue
        res = hold(take) or res
        activity = pair_scores(model, pair_of, res.x)
    start = np.asarray(res.x, dtype=float).copy()
    start[cols] = held  # the LP point has every held pair open and the others mostly shut
    if model.open is not None:  # a district is open where anything is served
        start[model.open.to_numpy()] = start[model.open.to_numpy()] > 1e-9
    found, value, bound = pair_mip(model, backend, start,
                                   seconds - (time.perf_counter() - t0), threads,
                                   instance.policy.seed, instance.policy.mip_gap)
    if found is not None and value is not None and res.objective is not None and \
            value >= res.objective - 1e-6 * max(1.0, abs(res.objective)):
        # its pairs, with the assignments fractional, serve at least what the dive's do;
        # a pair MIP stopped early without a start (the dive's point broke a row) may not
        held = found
    if bound is None or (lp_bound is not None and lp_bound < bound):  # a MIP stopped early
        bound = lp_bound  # may report a weaker one (29,419 against the LP's 25,057 at 5,000)
    pairs = model.active.loc[held, ["agency_id", "district_id"]].astype(str)
    return Pairs(pairs.reset_index(drop=True), bound)


def pair_mip(model: AllocationModel, backend: Backend, start: np.ndarray, seconds: float,
             threads: int, seed: int, mip_gap: float
             ) -> tuple[np.ndarray | None, float | None, float | None]:
    """The served-weight model with only which agency works where (activity, open
    districts) whole and the assignments fractional, from `start` where it keeps every row:
    the pairs its plan holds (a mask over model.active; None without a plan), that plan's
    served weight, and its bound, a bound over every plan of the real model, far below the
    LP's where few agencies share a district (othergen 1,500 with 18 agencies, the cap at 2:
    7,438 proven in 9.4 s, the LP 7,830)."""
    assert model.active is not None
    cols = model.active["col"].to_numpy()
    whole = cols if model.open is None else np.concatenate([cols, model.open.to_numpy()])
    session = backend.open(model.lp.relaxed(keep=whole), threads, seed)
    if backend.steerable:
        # HiGHS's own search proved 7,438 there in 10.7 s; the LP-guided one had 7,824 at 11.5 s
        cast(SteeredSession, session).lp_guided = False
    level = model.levels[0]
    session.set_objective(level.coefs, level.sense)
    feasible = not len(model.lp.violations(start))
    res = session.solve(max(seconds, PAIR_MIP_MIN_SECONDS), mip_gap,
                        start if feasible else None)
    found = None if res.x is None else np.asarray(res.x)[cols] > 0.5
    return found, res.objective, res.bound


def pair_index(model: AllocationModel) -> np.ndarray:
    """The activity pair (position in model.active) of each assignment column."""
    active = model.active
    assert active is not None  # dive_pairs asks only models with activity columns
    t = model.triples
    pair = pd.Series(np.arange(len(active)), index=pd.MultiIndex.from_arrays(
        [active["agency_id"].astype(str), active["district_id"].astype(str)]))
    return pair.reindex(pd.MultiIndex.from_arrays(
        [t["agency_id"].astype(str), t["district_id"].astype(str)])).to_numpy()


def pair_scores(model: AllocationModel, pair_of: np.ndarray, x) -> np.ndarray:
    """How strongly an LP point uses each activity pair: its activity, raised by up to as
    much again by the served weight its columns carry (of the most any pair carries).
    Activity alone or weight alone chose pairs whose plan served 7,848 and 24,909 where this
    serves 7,857 and 25,042 (othergen 1,500 and 5,000 with the cap at 2; LP bounds 7,863
    and 25,057)."""
    assert model.active is not None
    x = np.asarray(x, dtype=float)
    weight = model.demands_served["weight"].to_numpy(dtype=float)[model.demand_of_triple]
    served = np.bincount(pair_of, weights=x[model.x] * weight, minlength=len(model.active))
    return x[model.active["col"].to_numpy()] * (1.0 + served / max(float(served.max()), 1e-9))


def next_pairs(agency: np.ndarray, activity: np.ndarray, held: np.ndarray, slot: int | None,
               rounds_left: int, cap: int) -> np.ndarray:
    """Positions of the pairs to hold next: for each agency with `slot` pairs held (None:
    fewer than `cap`), its most active pair not held (activity above zero); of those the
    1/rounds_left most active."""
    frame = pd.DataFrame({"agency": agency, "activity": np.where(held, -1.0, activity)})
    count = pd.Series(held).groupby(agency).transform("sum").to_numpy()
    room = count < cap if slot is None else count == slot
    open_ = frame[room & ~held & (frame["activity"].to_numpy() > 1e-6)]
    best = open_.sort_values("activity", ascending=False, kind="stable").drop_duplicates(
        "agency")
    return best.index.to_numpy()[:int(np.ceil(len(best) / rounds_left))]


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
