"""Province scale: the coverage LP by column generation over demand classes, then rounding.

With millions of eligible triples (100,000 enterprises: 16 million) the full MIP fits neither
the time nor the memory. The coverage level is then solved in three steps:

1. **Classes.** Demands no rule can tell apart (same service, sector, district, person-days,
   weight and risk level, and an enterprise with no quote or conflict) have identical columns.
   The LP works on one column per (class, agency): X[g,a] in [0, n_g] members, with
   sum_a X[g,a] <= n_g (= n_g for a mandatory class). 163,120 demands -> 61,410 classes.
2. **Coverage LP by column generation.** Rows: classes, budget, district caps, capacities. The
   share caps and minimum agencies are left out, so the LP is a relaxation of the full
   model's LP and its optimum an upper bound on the served weight. It starts from each
   class's cheapest offers; every round prices all class triples from the row duals on
   arrays and adds the best per class. At every round the Lagrangian bound at the duals,
   sum of row duals x row limits + sum over all columns of n_g x max(0, reduced cost), is a
   proven upper bound; it equals the LP optimum when nothing prices out.
3. **Rounding and repair.** X is rounded down (largest remainders for mandatory classes),
   handed out to the class's members, then every rule is restored by dropping the least
   valuable served demands where one is broken (capacity, budget, district caps, share caps,
   minimum agencies), and the money left is spent greedily on the best unserved demands.
   Every rule of the spec holds for the result (allocator check recomputes them).

Quality and cost are not optimised on this path (reported `optimised: false`): the run is
`feasible`, and its coverage is reported against the LP bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from allocator.backends import Status
from allocator.backends.base import relative_gap
from allocator.backends.highs_lp import LpMaster, lp_available
from allocator.eligibility import Eligibility
from allocator.instance import Instance
from allocator.lexicographic import LevelReport, LexResult

#: use this path from this many eligible triples on: at 1.4 million (20,000 enterprises) the
#: full model's LP does not solve in 300 s, at 130,000 (5,000) the MIP proves coverage
LARGE_TRIPLES = 400_000
#: columns per class in the first LP: its cheapest offers
INITIAL_CHEAPEST = 3
#: columns added per class and round, best reduced cost first
PER_CLASS = 3
#: a column enters when its reduced cost exceeds this (weights are 1-8 per demand)
PRICE_TOL = 1e-7
#: price of a mandatory member left out of the LP, in units of the largest weight
ARTIFICIAL_PRICE = 1e4
#: rounds of column generation at most
MAX_ROUNDS = 30
#: relative slack below which a rule counts as kept (money and person-days)
RULE_TOL = 1e-9

Progress = Callable[[str], None]


def use_large_path(instance: Instance, elig: Eligibility) -> bool:
    """Whether to solve by the LP path: big enough, and only rules the repair can restore."""
    return (len(elig.triples) >= LARGE_TRIPLES and lp_available()
            and unsupported_rules(instance) == [])


def unsupported_rules(instance: Instance) -> list[str]:
    """Rules the large-scale path does not handle (the full model is used when one is on)."""
    pol = instance.policy
    out = []
    if pol.max_share_in_city is not None:
        out.append("anti_monopoly.max_share_in_city")
    if pol.max_districts_per_agency is not None:
        out.append("anti_monopoly.max_districts_per_agency")
    if pol.min_district_ratio > 0:
        out.append("coverage.min_district_ratio")
    return out


@dataclass
class Classes:
    """Demands grouped into classes of identical columns (see the module docstring)."""

    of_demand: np.ndarray  # class of each demand
    rep: np.ndarray  # representative demand of each class
    size: np.ndarray  # members per class

    @classmethod
    def of(cls, instance: Instance, triples: pd.DataFrame) -> Classes:
        """Group the instance's demands; a demand whose triples differ from its class's
        representative's in number is put in a class of its own (a safety net)."""
        dem = instance.demands
        n = len(dem)
        solo_ent = pd.Index(instance.quotes["enterprise_id"]).union(
            pd.Index(instance.conflicts["enterprise_id"]))
        solo = dem["enterprise_id"].isin(solo_ent).to_numpy()
        count = np.bincount(triples["demand"].to_numpy(), minlength=n)
        cols = ["service_id", "sector", "district_id", "person_days", "weight", "risk_level"]
        for _ in range(3):
            key = dem[cols].assign(solo=np.where(solo, np.arange(n), -1))
            of = key.groupby(list(key.columns), sort=False).ngroup().to_numpy()
            rep = np.full(of.max() + 1 if n else 0, n, dtype=np.int64)
            np.minimum.at(rep, of, np.arange(n))
            odd = count != count[rep[of]]
            if not odd.any():
                break
            solo |= odd
        return cls(of.astype(np.int64), rep, np.bincount(of, minlength=len(rep)))


@dataclass
class Arrays:
    """The triples as arrays over integer codes (no ids), for pricing and repair."""

    demand: np.ndarray
    agency: np.ndarray  # code into agencies
    district: np.ndarray  # code into districts
    cost: np.ndarray
    load: np.ndarray
    weight: np.ndarray  # per demand
    mandatory: np.ndarray  # per demand
    demand_district: np.ndarray  # per demand, code into districts
    capacity: np.ndarray  # per agency code
    district_cap: np.ndarray  # per district code (inf = none)
    agencies: pd.Index
    districts: pd.Index
    starts: np.ndarray  # first triple of each demand (triples sorted by demand)
    ends: np.ndarray

    @classmethod
    def of(cls, instance: Instance, triples: pd.DataFrame) -> Arrays:
        """Codes and numbers of the triples (sorted by demand, as eligibility writes them)."""
        dem = instance.demands
        pol = instance.policy
        d = triples["demand"].to_numpy()
        if len(d) and np.any(d[1:] < d[:-1]):
            raise ValueError("eligible triples must be sorted by demand")
        agencies = pd.Index(instance.agencies.index.astype(str))
        districts = pd.Index(instance.districts.index.astype(str))
        a = agencies.get_indexer(triples["agency_id"].astype(str))
        k = districts.get_indexer(triples["district_id"].astype(str))
        n = len(dem)
        starts = np.searchsorted(d, np.arange(n), "left")
        ends = np.searchsorted(d, np.arange(n), "right")
        return cls(d.astype(np.int64), a.astype(np.int64), k.astype(np.int64),
                   triples["cost"].to_numpy(dtype=float), triples["load"].to_numpy(dtype=float),
                   dem["weight"].to_numpy(dtype=float),
                   dem["risk_level"].isin(pol.mandatory_levels).to_numpy(),
                   districts.get_indexer(dem["district_id"].astype(str)).astype(np.int64),
                   instance.agencies["capacity_days"].to_numpy(dtype=float),
                   instance.districts["budget_cap"].to_numpy(dtype=float),
                   agencies, districts, starts, ends)


@dataclass
class CoverageLp:
    """The coverage LP's outcome: proven bound, LP value and point over the class triples."""

    status: Status
    value: float | None  # LP optimum over the columns generated (None: not solved)
    bound: float | None  # proven upper bound on the full model's LP (and MIP) coverage
    columns: np.ndarray  # class triples (triple numbers of representatives) in the LP
    x: np.ndarray | None  # members per column
    converged: bool
    rounds: int
    seconds: float
    log: list[str] = field(default_factory=list)
    rows: int = 0  # rows of the LP


def coverage_lp(instance: Instance, arr: Arrays, classes: Classes, time_limit: float,
                threads: int = 0, seed: int = 0, say: Progress | None = None) -> CoverageLp:
    """Maximise served weight over the relaxation of step 2 by column generation."""
    say = say or (lambda _m: None)
    t0 = time.perf_counter()
    pol = instance.policy
    rep_mask = np.zeros(len(arr.weight), dtype=bool)
    rep_mask[classes.rep] = True
    ct = np.flatnonzero(rep_mask[arr.demand])  # class triples: the representatives' triples
    g = classes.of_demand[arr.demand[ct]]
    n_g = classes.size.astype(float)
    wg = arr.weight[classes.rep]
    mand_g = arr.mandatory[classes.rep]
    G, A = len(classes.rep), len(arr.agencies)
    budget = max(float(pol.budget_total), 1.0)
    capped = np.flatnonzero(np.isfinite(arr.district_cap))
    cap_row = np.full(len(arr.districts), -1)
    cap_row[capped] = G + 1 + np.arange(len(capped))
    agency_scale = np.maximum(arr.capacity, 1.0)
    first_agency_row = G + 1 + len(capped)
    n_rows = first_agency_row + A
    row_lo = np.concatenate([np.where(mand_g, n_g, 0.0), np.full(n_rows - G, -np.inf)])
    row_hi = np.concatenate([n_g, [pol.budget_total / budget], arr.district_cap[capped] / budget,
                             arr.capacity / agency_scale])
    c = arr.cost[ct] / budget
    ld = arr.load[ct] / agency_scale[arr.agency[ct]]
    krow = cap_row[arr.district[ct]]

    def matrix(cols: np.ndarray) -> sp.csc_matrix:
        m = len(cols)
        own = krow[cols] >= 0
        rows = np.concatenate([g[cols], np.full(m, G), krow[cols][own],
                               first_agency_row + arr.agency[ct[cols]]])
        vals = np.concatenate([np.ones(m), c[cols], c[cols][own], ld[cols]])
        col = np.concatenate([np.arange(m), np.arange(m), np.arange(m)[own], np.arange(m)])
        return sp.csc_matrix((vals, (rows, col)), shape=(n_rows, m))

    master = LpMaster(row_lo, row_hi, "max", threads, seed)
    # a missing member of a mandatory class, at a prohibitive price: keeps the restricted LP
    # feasible while its columns are too few (an artificial left > 0 at the end: infeasible)
    mand_rows = np.flatnonzero(mand_g)
    penalty = -ARTIFICIAL_PRICE * max(float(wg.max(initial=1.0)), 1.0)
    master.add_columns(np.full(len(mand_rows), penalty), np.zeros(len(mand_rows)),
                       n_g[mand_rows], sp.csc_matrix(
                           (np.ones(len(mand_rows)), (mand_rows, np.arange(len(mand_rows)))),
                           shape=(n_rows, len(mand_rows))))
    n_art = len(mand_rows)
    in_lp = np.zeros(len(ct), dtype=bool)
    # first columns: each class's cheapest offers (ties: the order eligibility wrote them)
    order = np.lexsort((c, g))
    rank = _rank_within(g[order])
    first = np.union1d(order[rank < INITIAL_CHEAPEST],
                       greedy_columns(instance, arr, classes, ct, g))
    cols = [first]
    master.add_columns(wg[g[first]], np.zeros(len(first)), n_g[g[first]], matrix(first))
    in_lp[first] = True
    log: list[str] = []
    best_bound, sol, converged, rounds, solved_cols = np.inf, None, False, 0, 0
    for rounds in range(1, MAX_ROUNDS + 1):
        left = time_limit - (time.perf_counter() - t0)
        res = master.solve(max(left, 0.1))
        if res.status is not Status.OPTIMAL:
            if res.status is Status.INFEASIBLE:
                return CoverageLp(Status.INFEASIBLE, None, None, np.concatenate(cols), None,
                                  False, rounds, time.perf_counter() - t0, log)
            log.append(f"round {rounds}: LP {res.text}")
            break
        sol = res
        solved_cols = int(in_lp.sum())
        y = res.row_dual.copy()
        # a dual of the wrong sign for its row's limits is noise: drop it so the bound holds
        y[(y > 0) & np.isinf(row_hi)] = 0.0
        y[(y < 0) & np.isinf(row_lo)] = 0.0
        rc = wg[g] - y[g] - y[G] * c - np.where(krow >= 0, y[np.maximum(krow, 0)], 0.0) * c \
            - y[first_agency_row + arr.agency[ct]] * ld
        rows_part = np.where(y > 0, y * np.where(np.isinf(row_hi), 0, row_hi),
                             y * np.where(np.isinf(row_lo), 0, row_lo)).sum()
        rc_art = penalty - y[mand_rows]  # the artificial columns are columns of the LP too
        bound = float(rows_part + (np.maximum(rc, 0.0) * n_g[g]).sum()
                      + (np.maximum(rc_art, 0.0) * n_g[mand_rows]).sum())
        best_bound = min(best_bound, bound)
        enter = np.flatnonzero((rc > PRICE_TOL) & ~in_lp)
        msg = (f"round {rounds}: LP {res.objective:,.2f} in {res.seconds:.1f} s, bound "
               f"{best_bound:,.2f}, {len(enter):,} columns price out, {in_lp.sum():,} in the LP")
        log.append(msg)
        say(f"coverage LP: {msg}")
        if len(enter) == 0 or best_bound - res.objective <= 1e-9 * max(1.0, best_bound):
            converged = True
            break
        if time.perf_counter() - t0 > time_limit:
            break
        o = np.lexsort((-rc[enter], g[enter]))
        enter = enter[o][_rank_within(g[enter][o]) < PER_CLASS]
        master.add_columns(wg[g[enter]], np.zeros(len(enter)), n_g[g[enter]], matrix(enter))
        in_lp[enter] = True
        cols.append(enter)
    columns = np.concatenate(cols)[:solved_cols]
    if sol is None:
        return CoverageLp(Status.NO_SOLUTION, None, None, ct[columns], None, False, rounds,
                          time.perf_counter() - t0, log)
    x = sol.x[n_art:n_art + len(columns)]
    short = float(sol.x[:n_art].sum())
    if short > 0.5:  # mandatory members the LP could not place even at that price
        log.append(f"{short:,.1f} mandatory members left out of the LP")
        status = Status.INFEASIBLE if converged else Status.NO_SOLUTION
        return CoverageLp(status, None, None, ct[columns], None, converged, rounds,
                          time.perf_counter() - t0, log)
    return CoverageLp(Status.OPTIMAL if converged else Status.FEASIBLE, sol.objective,
                      best_bound, ct[columns], x, converged, rounds,
                      time.perf_counter() - t0, log, n_rows)


def greedy_columns(instance: Instance, arr: Arrays, classes: Classes, ct: np.ndarray,
                   g: np.ndarray) -> np.ndarray:
    """The class triples a greedy plan uses: mandatory classes first, then the best weight per
    cheapest cost, each member to the cheapest agency with capacity, budget and district cap
    left. Its agencies are where capacity is, so the first LP starts near its optimum."""
    pol = instance.policy
    order_t = np.lexsort((arr.cost[ct], g))  # class triples by class, cheapest first
    bounds = np.searchsorted(g[order_t], np.arange(len(classes.rep) + 1))
    cheapest = arr.cost[ct[order_t[bounds[:-1].clip(max=len(order_t) - 1)]]]
    value = arr.weight[classes.rep] / np.maximum(cheapest, 1e-9)
    mand = arr.mandatory[classes.rep]
    empty = bounds[1:] == bounds[:-1]
    classes_order = np.lexsort((-value, ~mand))
    classes_order = classes_order[~empty[classes_order]]
    money = float(pol.budget_total)
    cap_left = arr.capacity.copy()
    dcap_left = np.where(np.isfinite(arr.district_cap), arr.district_cap, np.inf)
    used = []
    for cl in classes_order:
        if money <= 0:
            break
        sel = order_t[bounds[cl]:bounds[cl + 1]]
        t = ct[sel]
        c, ld, a = arr.cost[t], arr.load[t], arr.agency[t]
        k = arr.district[t[0]]
        left = int(classes.size[cl])
        for j in range(len(t)):
            if left == 0 or c[j] > money or c[j] > dcap_left[k]:
                break
            take = min(left, int(cap_left[a[j]] // ld[j]) if ld[j] > 0 else left,
                       int(money // c[j]) if c[j] > 0 else left,
                       int(dcap_left[k] // c[j]) if c[j] > 0 and np.isfinite(dcap_left[k])
                       else left)
            if take <= 0:
                continue
            used.append(sel[j])
            left -= take
            money -= take * c[j]
            dcap_left[k] -= take * c[j]
            cap_left[a[j]] -= take * ld[j]
    return np.asarray(used, dtype=np.int64)


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, groups[1:] != groups[:-1]]
    start = np.flatnonzero(new)
    return np.arange(len(groups)) - np.repeat(start, np.diff(np.r_[start, len(groups)]))


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


def triple_of(arr: Arrays, demand: np.ndarray, agency: np.ndarray) -> np.ndarray:
    """The triple of each (demand, agency code) pair; every pair must be eligible."""
    width = max(int((arr.ends - arr.starts).max(initial=0)), 1)
    out = np.full(len(demand), -1, dtype=np.int64)
    todo = np.arange(len(demand))
    for j in range(width):  # at most ~the agencies per demand; each pass is one array op
        t = arr.starts[demand[todo]] + j
        ok = t < arr.ends[demand[todo]]
        hit = np.zeros(len(todo), dtype=bool)
        hit[ok] = arr.agency[t[ok]] == agency[todo[ok]]
        out[todo[hit]] = t[hit]
        todo = todo[~hit & ok]
        if len(todo) == 0:
            break
    if len(todo):
        raise ValueError(f"{len(todo)} (demand, agency) pairs are not eligible")
    return out


@dataclass
class PlanState:
    """Totals of a plan per rule, recomputed from the chosen triples."""

    spend: float
    agency_load: np.ndarray
    district_spend: np.ndarray
    pair_spend: np.ndarray  # (agency, district) flattened: agency * n_districts + district
    pair_count: np.ndarray

    @classmethod
    def of(cls, arr: Arrays, choice: np.ndarray) -> PlanState:
        """The totals of the plan `choice` (triple per demand, -1 = not served)."""
        t = choice[choice >= 0]
        A, K = len(arr.agencies), len(arr.districts)
        pair = arr.agency[t] * K + arr.district[t]
        return cls(float(arr.cost[t].sum()),
                   np.bincount(arr.agency[t], arr.load[t], minlength=A),
                   np.bincount(arr.district[t], arr.cost[t], minlength=K),
                   np.bincount(pair, arr.cost[t], minlength=A * K),
                   np.bincount(pair, minlength=A * K))


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


def restore_rules(instance: Instance, arr: Arrays, choice: np.ndarray, say: Progress,
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
        dropped += _drop(choice, arr, np.zeros(len(t), dtype=np.int64), arr.cost[t],
                         np.array([st.spend - pol.budget_total]))
        dcap_need = np.where(np.isfinite(arr.district_cap),
                             st.district_spend - np.nan_to_num(arr.district_cap, posinf=0.0),
                             0.0)
        dropped += _drop(choice, arr, arr.district[t], arr.cost[t], dcap_need)
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
    money = pol.budget_total - st.spend
    dcap_left = np.where(np.isfinite(arr.district_cap), arr.district_cap - st.district_spend,
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
            c, b = arr.cost[sl], arr.agency[sl]
            extra = c - arr.cost[old]
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


def _cumsum_before_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of the values before each entry within its run of equal (sorted) groups."""
    if len(groups) == 0:
        return np.zeros(0, dtype=values.dtype)
    before = np.cumsum(values) - values
    start = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return before - np.repeat(before[start], np.diff(np.r_[start, len(groups)]))


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
    money = pol.budget_total - st.spend
    cap_left = arr.capacity - st.agency_load
    dcap_left = np.where(np.isfinite(arr.district_cap), arr.district_cap - st.district_spend,
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
        c, a = arr.cost[sl], arr.agency[sl]
        ok = ((c <= money + RULE_TOL) & (c <= dcap_left[k] + RULE_TOL)
              & (arr.load[sl] <= cap_left[a] + RULE_TOL)
              & (pair[a * K + k] + c <= share * (dist[k] + c) + RULE_TOL))
        if not ok.any():
            continue
        j = np.flatnonzero(ok)[np.argmin(c[ok])]
        t = arr.starts[d] + j
        choice[d] = t
        money -= c[j]
        dcap_left[k] -= c[j]
        cap_left[a[j]] -= arr.load[t]
        pair[a[j] * K + k] += c[j]
        dist[k] += c[j]
        added += 1
    return added


def min_cost_per_demand(arr: Arrays) -> np.ndarray:
    """Cheapest eligible cost of each demand (inf: no eligible agency)."""
    out = np.full(len(arr.weight), np.inf)
    has = np.flatnonzero(arr.ends > arr.starts)
    if len(has):  # triples are contiguous per demand: each segment is one demand's
        out[has] = np.minimum.reduceat(arr.cost, arr.starts[has])
    return out


@dataclass
class LargeResult:
    """The large-scale path's outcome: levels, the chosen triples and what it did."""

    lex: LexResult
    chosen: np.ndarray | None  # triple numbers of the plan
    info: dict


def plan_levels(instance: Instance, arr: Arrays, choice: np.ndarray,
                quality: np.ndarray) -> tuple[float, float, float]:
    """Served weight, quality sum (weight x quality) and cost of a plan."""
    served = np.flatnonzero(choice >= 0)
    t = choice[served]
    w = arr.weight[served]
    return float(w.sum()), float((w * quality[t]).sum()), float(arr.cost[t].sum())


def solve_large(instance: Instance, elig: Eligibility, time_limit: float, mip_gap: float,
                threads: int = 0, seed: int = 0, progress: Progress | None = None
                ) -> LargeResult:
    """Coverage LP, rounding, repair and fill (module docstring); never raises for the
    instance's sake: an infeasible LP is reported infeasible, a timed-out one no_solution."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    triples = elig.triples
    arr = Arrays.of(instance, triples)
    classes = Classes.of(instance, triples)
    info: dict = {"method": "coverage LP by column generation over demand classes, rounded "
                            "and repaired", "demands": len(arr.weight),
                  "classes": len(classes.rep)}
    say(f"large scale: {len(arr.weight):,} demands in {len(classes.rep):,} classes "
        f"({time.perf_counter() - t0:.1f} s)")
    lp = coverage_lp(instance, arr, classes, 0.8 * time_limit, threads, seed, say)
    info.update(lp_status=lp.status.value, lp_value=lp.value, lp_bound=lp.bound,
                lp_converged=lp.converged, lp_rounds=lp.rounds, lp_columns=len(lp.columns),
                lp_rows=lp.rows, lp_seconds=round(lp.seconds, 3), lp_log=lp.log)
    if lp.status is Status.INFEASIBLE or lp.x is None:
        status = Status.INFEASIBLE if lp.status is Status.INFEASIBLE else Status.NO_SOLUTION
        report = LevelReport("coverage", "max", status, None, lp.bound, None,
                             time.perf_counter() - t0, f"coverage LP: {lp.status.value}")
        return LargeResult(LexResult(status, None, [report], time.perf_counter() - t0),
                           None, info)
    t = time.perf_counter()
    choice = round_lp(arr, classes, lp)
    rounded = float(arr.weight[choice >= 0].sum())
    dropped = restore_rules(instance, arr, choice, say)
    repaired = float(arr.weight[choice >= 0].sum())
    added = fill_budget(instance, arr, choice)
    quality = triples["quality"].to_numpy(dtype=float)
    served_w, qual, cost = plan_levels(instance, arr, choice, quality)
    info.update(rounded_weight=rounded, dropped=dropped, repaired_weight=repaired,
                filled=added, repair_seconds=round(time.perf_counter() - t, 3))
    say(f"large scale: rounded {rounded:,.0f}, {dropped:,} dropped to keep the rules "
        f"({repaired:,.0f}), {added:,} added with the money left: {served_w:,.0f} of a "
        f"bound of {lp.bound:,.2f} in {time.perf_counter() - t:.1f} s")
    problems = remaining_breaks(instance, arr, choice)
    seconds = time.perf_counter() - t0
    if problems:
        info["unrepaired"] = problems
        say("large scale: the rounded plan breaks " + "; ".join(problems))
        report = LevelReport("coverage", "max", Status.NO_SOLUTION, None, lp.bound, None,
                             seconds, "rounded plan could not be repaired")
        return LargeResult(LexResult(Status.NO_SOLUTION, None, [report], seconds), None, info)
    gap = relative_gap(served_w, lp.bound)
    cov_status = Status.OPTIMAL if gap is not None and gap <= mip_gap else Status.FEASIBLE
    note = "large-scale path: not optimised (the plan's value)"
    levels = [
        LevelReport("coverage", "max", cov_status, served_w, lp.bound, gap, seconds,
                    "coverage LP (column generation) rounded and repaired; bound: LP"),
        LevelReport("quality", "max", Status.FEASIBLE, qual, None, None, 0.0, note,
                    optimised=False),
        LevelReport("cost", "min", Status.FEASIBLE, cost, None, None, 0.0, note,
                    optimised=False),
    ]
    chosen = np.sort(choice[choice >= 0])
    # x: an empty point marks "a plan exists"; the plan itself is `chosen` (no model columns)
    return LargeResult(LexResult(Status.FEASIBLE, np.zeros(0), levels, seconds), chosen, info)


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
    note("budget", int(st.spend > pol.budget_total * (1 + 1e-12) + tol))
    note("district budget caps", int((np.isfinite(arr.district_cap)
                                      & (st.district_spend > arr.district_cap + tol)).sum()))
    share = pol.max_share_in_district
    if share is not None:
        limit = share * np.tile(st.district_spend, len(arr.agencies))
        note("share caps", int((st.pair_spend > limit + tol).sum()))
    need = pol.min_agencies_per_district or 0
    active = (st.pair_count.reshape(len(arr.agencies), K) > 0).sum(axis=0)
    note("minimum agencies", int(((active > 0) & (active < need)).sum()))
    return out
