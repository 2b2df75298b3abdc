"""Rounding the class LP to a plan and restoring every rule (step 3 of large_scale)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allocator.data.instance import Instance
from allocator.pipeline.large_scale.class_lp import CoverageLp
from allocator.pipeline.large_scale.classes import (
    Arrays,
    Classes,
    _cumsum_before_within,
    _rank_within,
    triple_of,
)

#: relative slack below which a rule counts as kept (money and person-days)
RULE_TOL = 1e-9


def round_lp(arr: Arrays, classes: Classes, lp: CoverageLp) -> np.ndarray:
    """Whole members per (class, agency) from the LP point, handed to the class's members.

    Rounds down, except that a mandatory class gets its missing members on its columns with
    the largest remainders. Returns the chosen triple of every demand (-1: not served).
    """
    n = len(arr.weight)
    choice = np.full(n, -1, dtype=np.int64)
    if lp.x is None or len(lp.columns) == 0:
        return choice
    v = np.maximum(lp.x, 0.0)
    g = classes.of_demand[arr.demand[lp.columns]]
    k = np.floor(v + 1e-6)
    frac = v - k
    mand_g = arr.mandatory[classes.rep]
    missing = classes.size - np.bincount(g, weights=k, minlength=len(classes.rep))
    need = np.where(mand_g, np.maximum(np.round(missing), 0), 0)
    o = np.lexsort((-frac, g))
    rank = _rank_within(g[o])
    k[o[rank < need[g[o]]]] += 1
    k = np.minimum(k, classes.size[g]).astype(np.int64)
    pos = np.flatnonzero(k > 0)
    if len(pos) == 0:
        return choice
    pos = pos[np.argsort(g[pos], kind="stable")]
    gk, kk = g[pos], k[pos]
    offset = _cumsum_before_within(gk, kk)
    members = np.argsort(classes.of_demand, kind="stable")
    class_start = np.searchsorted(classes.of_demand[members], np.arange(len(classes.rep)))
    total = kk.sum()
    entry = np.repeat(np.arange(len(pos)), kk)
    within = np.arange(total) - np.repeat(np.cumsum(kk) - kk, kk)
    dem = members[class_start[gk[entry]] + offset[entry] + within]
    agency = arr.agency[lp.columns[pos]][entry]
    choice[dem] = triple_of(arr, dem, agency)
    return choice


@dataclass
class PlanState:
    """Totals of a plan per rule, recomputed from the chosen triples. Money against the
    budget and the district caps is the government's part (Arrays.gov); the share caps
    count contract value (Arrays.cost); the two are one without co-payment."""

    spend: float  # government spend
    agency_load: np.ndarray
    district_spend: np.ndarray  # contract value per district (the share caps)
    pair_spend: np.ndarray  # (agency, district) flattened: agency * n_districts + district
    pair_count: np.ndarray
    district_gov: np.ndarray  # government spend per district (the district caps)

    @classmethod
    def of(cls, arr: Arrays, choice: np.ndarray) -> PlanState:
        """The totals of the plan `choice` (triple per demand, -1 = not served)."""
        t = choice[choice >= 0]
        A, K = len(arr.agencies), len(arr.districts)
        pair = arr.agency[t] * K + arr.district[t]
        spend = np.bincount(arr.district[t], arr.cost[t], minlength=K)
        gov = (np.bincount(arr.district[t], arr.gov[t], minlength=K)
               if arr.gov is not arr.cost else spend)
        return cls(float(gov.sum()),
                   np.bincount(arr.agency[t], arr.load[t], minlength=A), spend,
                   np.bincount(pair, arr.cost[t], minlength=A * K),
                   np.bincount(pair, minlength=A * K), gov)


def _drop(choice: np.ndarray, arr: Arrays, group: np.ndarray, amount: np.ndarray,
          need: np.ndarray) -> int:
    """Unserve, in each group with need > 0, the least valuable non-mandatory served demands
    (lowest weight per amount first) until the amounts dropped reach the group's need.

    group/amount are per served demand (in the order of np.flatnonzero(choice >= 0)).
    Returns the number of demands dropped.
    """
    served = np.flatnonzero(choice >= 0)
    cand = (need[group] > 0) & ~arr.mandatory[served]
    if not cand.any():
        return 0
    d, gr, am = served[cand], group[cand], amount[cand]
    value = arr.weight[d] / np.maximum(am, 1e-12)
    o = np.lexsort((value, gr))
    d, gr, am = d[o], gr[o], am[o]
    before = _cumsum_before_within(gr, am)
    out = before < need[gr] - RULE_TOL * np.maximum(1.0, need[gr])
    choice[d[out]] = -1
    return int(out.sum())


def restore_rules(instance: Instance, arr: Arrays, choice: np.ndarray,
                  rounds: int = 100) -> int:
    """Drop served demands until capacity, budget, district caps, share caps and minimum
    agencies all hold (mandatory demands are never dropped). Returns demands dropped."""
    pol = instance.policy
    K = len(arr.districts)
    share = pol.max_share_in_district
    dropped = 0
    for _ in range(rounds):
        st = PlanState.of(arr, choice)
        t = choice[choice >= 0]
        if len(t) == 0:
            break
        n_before = dropped
        cap_need = st.agency_load - arr.capacity
        dropped += _drop(choice, arr, arr.agency[t], arr.load[t], cap_need)
        if dropped > n_before:
            continue
        if (cap_need > RULE_TOL).any():  # only mandatory demands left there: move some
            if _move_off_full_agencies(instance, arr, choice, st):
                continue
        dropped += _drop(choice, arr, np.zeros(len(t), dtype=np.int64), arr.gov[t],
                         np.array([st.spend - pol.budget_limit]))
        dcap_need = np.where(np.isfinite(arr.district_cap),
                             st.district_gov - np.nan_to_num(arr.district_cap, posinf=0.0),
                             0.0)
        dropped += _drop(choice, arr, arr.district[t], arr.gov[t], dcap_need)
        if dropped > n_before:
            continue
        if share is not None and share < 1:
            pair = arr.agency[t] * K + arr.district[t]
            excess = st.pair_spend - share * np.tile(st.district_spend, len(arr.agencies))
            dropped += _drop(choice, arr, pair, arr.cost[t], excess / (1.0 - share))
            if dropped > n_before:
                continue
        dropped += _drop_thin_districts(instance, arr, choice, st)
        if dropped == n_before:
            break
    return dropped


def _move_off_full_agencies(instance: Instance, arr: Arrays, choice: np.ndarray,
                            st: PlanState) -> int:
    """Move demands off agencies over capacity (their mandatory ones: the rest is dropped
    first) to the cheapest other agency with room, money and district cap left."""
    pol = instance.policy
    load = st.agency_load.copy()
    money = pol.budget_limit - st.spend
    dcap_left = np.where(np.isfinite(arr.district_cap), arr.district_cap - st.district_gov,
                         np.inf)
    moved = 0
    served = np.flatnonzero(choice >= 0)
    for a in np.flatnonzero(load > arr.capacity + RULE_TOL):
        mine = served[arr.agency[choice[served]] == a]
        mine = mine[np.argsort(arr.load[choice[mine]])[::-1]]
        for d in mine:
            if load[a] <= arr.capacity[a] + RULE_TOL:
                break
            old = choice[d]
            k = arr.demand_district[d]
            sl = slice(arr.starts[d], arr.ends[d])
            c, b = arr.gov[sl], arr.agency[sl]
            extra = c - arr.gov[old]
            ok = ((b != a) & (arr.load[sl] <= arr.capacity[b] - load[b] + RULE_TOL)
                  & (extra <= money + RULE_TOL) & (extra <= dcap_left[k] + RULE_TOL))
            if not ok.any():
                continue
            j = np.flatnonzero(ok)[np.argmin(c[ok])]
            choice[d] = arr.starts[d] + j
            load[a] -= arr.load[old]
            load[b[j]] += arr.load[choice[d]]
            money -= extra[j]
            dcap_left[k] -= extra[j]
            moved += 1
    return moved


def _drop_thin_districts(instance: Instance, arr: Arrays, choice: np.ndarray,
                         st: PlanState) -> int:
    """A district served by fewer than min_agencies_per_district agencies loses its service
    (unless it has mandatory demands: those are left to the final check)."""
    need = instance.policy.min_agencies_per_district or 0
    if need <= 1:
        return 0
    K = len(arr.districts)
    active = (st.pair_count.reshape(len(arr.agencies), K) > 0).sum(axis=0)
    thin = (active > 0) & (active < need)
    served = np.flatnonzero(choice >= 0)
    drop = served[thin[arr.demand_district[served]] & ~arr.mandatory[served]]
    choice[drop] = -1
    return len(drop)


def restore_coverage(instance: Instance, arr: Arrays, choice: np.ndarray, target: float,
                     quality: np.ndarray, rounds: int = 40) -> bool:
    """Raise a plan's served weight back to target, when a later level's rounding lost some:
    move served demands to cheaper agencies with room (most money saved per quality lost
    first), spend the money saved on unserved demands, restore the rules; repeat.

    Returns whether the target is reached (the plan is changed in place either way).
    """
    K = len(arr.districts)
    min_cost = min_cost_per_demand(arr)
    for _ in range(rounds):
        served = np.flatnonzero(choice >= 0)
        missing = target - float(arr.weight[served].sum())
        if missing <= 1e-9:
            return True
        unserved = np.flatnonzero((choice < 0) & np.isfinite(min_cost))
        if len(unserved) == 0:
            return False
        # money the best unserved demands need to make up the missing weight (with a margin)
        ratio = arr.weight[unserved] / np.maximum(min_cost[unserved], 1e-9)
        best = unserved[np.argsort(-ratio)]
        upto = np.searchsorted(np.cumsum(arr.weight[best]), missing) + 1
        need = 1.5 * float(min_cost[best[:upto]].sum())
        st = PlanState.of(arr, choice)
        room = arr.capacity - st.agency_load
        # every served demand's triples: the cheapest with room in its agency
        cur = choice[served]
        width = arr.ends[served] - arr.starts[served]
        owner = np.repeat(np.arange(len(served)), width)
        t = np.repeat(arr.starts[served], width) + (
            np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width))
        ok = (arr.load[t] <= room[arr.agency[t]] + RULE_TOL) & (arr.gov[t] < arr.gov[cur][owner])
        if not ok.any():
            return False
        t, owner = t[ok], owner[ok]
        o = np.lexsort((arr.gov[t], owner))
        first = np.r_[True, owner[o][1:] != owner[o][:-1]]
        alt, who = t[o][first], owner[o][first]
        saving = arr.gov[cur[who]] - arr.gov[alt]  # money
        fall = arr.cost[cur[who]] - arr.cost[alt]  # contract value (the share caps)
        loss = arr.weight[served[who]] * (quality[cur[who]] - quality[alt])
        # one move per district and round, and only where every share cap still holds after
        # it (the district's spend falls by the saving, so every agency's share rises)
        dist = arr.demand_district[served[who]]
        by_district = np.lexsort((-(saving / np.maximum(loss, 1e-9)), dist))
        lead = by_district[np.r_[True, dist[by_district][1:] != dist[by_district][:-1]]]
        share = instance.policy.max_share_in_district
        spend = st.pair_spend.reshape(len(arr.agencies), K)
        a_old, a_new, k = arr.agency[cur[who[lead]]], arr.agency[alt[lead]], dist[lead]
        after = spend[:, k].copy()
        after[a_old, np.arange(len(lead))] -= arr.cost[cur[who[lead]]]
        after[a_new, np.arange(len(lead))] += arr.cost[alt[lead]]
        total = st.district_spend[k] - fall[lead]
        keep = after.max(axis=0) <= (share if share is not None else 1.0) * total + RULE_TOL
        # nor may it leave the district short of agencies
        count = st.pair_count.reshape(len(arr.agencies), K)
        active = (count > 0).sum(axis=0)[k]
        keep &= (count[a_old, k] > 1) | (count[a_new, k] == 0) | (
            active > (instance.policy.min_agencies_per_district or 0))
        pick = lead[keep]
        pick = pick[np.argsort(-(saving[pick] / np.maximum(loss[pick], 1e-9)))]
        _, once = np.unique(arr.agency[alt[pick]], return_index=True)  # room: one per agency
        pick = pick[np.sort(once)]
        pick = pick[:np.searchsorted(np.cumsum(saving[pick]), need) + 1]
        if len(pick) == 0:
            return False
        choice[served[who[pick]]] = alt[pick]
        restore_rules(instance, arr, choice)
        fill_budget(instance, arr, choice)
    return float(arr.weight[choice >= 0].sum()) >= target - 1e-9


def fill_budget(instance: Instance, arr: Arrays, choice: np.ndarray,
                max_tries: int = 50_000) -> int:
    """Serve unserved demands, best weight per cheapest cost first, each by its cheapest
    agency that keeps every rule; stops when no demand can be afforded. Returns demands added.

    A district with no service yet is not opened (one demand alone would break the share
    cap and minimum agencies); a plan that kept every rule before still keeps them after.
    """
    pol = instance.policy
    K = len(arr.districts)
    share = pol.max_share_in_district if pol.max_share_in_district is not None else 1.0
    st = PlanState.of(arr, choice)
    money = pol.budget_limit - st.spend
    cap_left = arr.capacity - st.agency_load
    dcap_left = np.where(np.isfinite(arr.district_cap), arr.district_cap - st.district_gov,
                         np.inf)
    pair, dist = st.pair_spend.copy(), st.district_spend.copy()
    unserved = np.flatnonzero(choice < 0)
    has = arr.ends[unserved] > arr.starts[unserved]
    unserved = unserved[has]
    if len(unserved) == 0:
        return 0
    cheapest = min_cost_per_demand(arr)[unserved]
    order = unserved[np.lexsort((cheapest, -arr.weight[unserved] / np.maximum(cheapest, 1e-9)))]
    floor = float(cheapest.min())
    added = 0
    for d in order[:max_tries]:
        if money < floor - RULE_TOL:
            break
        k = arr.demand_district[d]
        if dist[k] <= 0:
            continue
        sl = slice(arr.starts[d], arr.ends[d])
        c, v, a = arr.gov[sl], arr.cost[sl], arr.agency[sl]  # money, contract value
        ok = ((c <= money + RULE_TOL) & (c <= dcap_left[k] + RULE_TOL)
              & (arr.load[sl] <= cap_left[a] + RULE_TOL)
              & (pair[a * K + k] + v <= share * (dist[k] + v) + RULE_TOL))
        if not ok.any():
            continue
        j = np.flatnonzero(ok)[np.argmin(c[ok])]
        t = arr.starts[d] + j
        choice[d] = t
        money -= c[j]
        dcap_left[k] -= c[j]
        cap_left[a[j]] -= arr.load[t]
        pair[a[j] * K + k] += v[j]
        dist[k] += v[j]
        added += 1
    return added


def min_cost_per_demand(arr: Arrays) -> np.ndarray:
    """Cheapest eligible cost of each demand (inf: no eligible agency)."""
    return arr.min_cost


def remaining_breaks(instance: Instance, arr: Arrays, choice: np.ndarray) -> list[str]:
    """Rules the plan still breaks (names and counts); empty when every rule holds."""
    pol = instance.policy
    st = PlanState.of(arr, choice)
    K = len(arr.districts)
    out = []
    tol = 1e-6

    def note(what: str, count: int) -> None:
        if count:
            out.append(f"{what} ({count})")

    note("mandatory demands unserved", int((arr.mandatory & (choice < 0)
                                            & (arr.ends > arr.starts)).sum()))
    note("agency capacity", int((st.agency_load > arr.capacity + tol).sum()))
    note("budget", int(st.spend > pol.budget_limit * (1 + 1e-12) + tol))
    note("district budget caps", int((np.isfinite(arr.district_cap)
                                      & (st.district_gov > arr.district_cap + tol)).sum()))
    share = pol.max_share_in_district
    if share is not None:
        limit = share * np.tile(st.district_spend, len(arr.agencies))
        note("share caps", int((st.pair_spend > limit + tol).sum()))
    need = pol.min_agencies_per_district or 0
    active = (st.pair_count.reshape(len(arr.agencies), K) > 0).sum(axis=0)
    note("minimum agencies", int(((active > 0) & (active < need)).sum()))
    # checked, never restored (CHECKED_RULES): a plan breaking them is not kept
    ratio = pol.min_district_ratio
    if ratio > 0:
        served = choice >= 0
        got = np.bincount(arr.demand_district[served], arr.weight[served], minlength=K)
        total = np.bincount(arr.demand_district, arr.weight, minlength=K)
        note("minimum district coverage", int((got < ratio * total - tol).sum()))
    city = pol.max_share_in_city
    if city is not None:
        by_agency = st.pair_spend.reshape(len(arr.agencies), K).sum(axis=1)
        note("city share caps", int((by_agency > city * st.district_spend.sum() + tol).sum()))
    return out
