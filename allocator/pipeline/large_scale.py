"""Province scale: each level as an LP over demand classes by column generation, rounded.

With millions of eligible triples (100,000 enterprises: 16 million) the full MIP fits neither
the time nor the memory. The levels are then solved in these steps:

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
4. **Quality, then cost** on the same LP: the earlier level is held by a row at what it
   guarantees (its plan's value, or its bound x (1 - mip_gap) if lower), so the new level's
   Lagrangian bound is valid for every plan the level may keep; its point is rounded the same
   way (from the LP on the coverage optimum's face when rounding loses too much coverage, and
   served weight lost is bought back by moving demands to cheaper agencies). A level's plan
   is kept only if it keeps every earlier level's value.

The run is `optimal` only if every level's plan is within mip_gap of its bound; usually it is
`feasible`, with each level's proven bound and gap in summary.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.pipeline.lexicographic import LevelReport, LexResult
from allocator.solvers import Status
from allocator.solvers.base import relative_gap, settle_status
from allocator.solvers.highs_lp import LpMaster, lp_available

#: use this path from this many eligible triples on. At 133,000 (5,000 enterprises) the full
#: MIP needs 69 s to prove coverage (14,372) and ends quality at 1,213,477 after 360 s; this
#: path gives 14,371 / 1,218,359 in 1.5 s. At 32,000 (2,000) the MIP is better (coverage
#: proven in 11 s, quality within 0.1 % where this path is ~1 % from its bound).
LARGE_TRIPLES = 100_000
#: columns per class in the first LP: its cheapest offers
INITIAL_CHEAPEST = 3
#: columns added per class and round, best reduced cost first
PER_CLASS = 3
#: a column enters when its reduced cost exceeds this (weights are 1-8 per demand)
PRICE_TOL = 1e-7
#: price of a mandatory member left out of the LP, in units of the largest weight
ARTIFICIAL_PRICE = 1e4
#: share of the time limit for the coverage LP, then of what is left for quality (cost: rest)
TIME_SHARE_LARGE = (0.75, 0.6)
#: the quality plan's LP keeps coverage within this (relative) of the coverage LP optimum
FACE_TOL = 1e-7
#: the coverage hold of the quality level's next try when a plan lost coverage: as a fraction
#: of the way from what level 1 guarantees to the coverage optimum's face
NEXT_HOLD_STEP = {0.5: 0.75, 0.75: 1.0}
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

    @cached_property
    def min_cost(self) -> np.ndarray:
        """Cheapest eligible cost of each demand (inf: none), computed once: the fill and
        the coverage repair ask for it on every round."""
        out = np.full(len(self.weight), np.inf)
        has = np.flatnonzero(self.ends > self.starts)
        if len(has):  # triples are contiguous per demand: each segment is one demand's
            out[has] = np.minimum.reduceat(self.cost, self.starts[has])
        return out

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


class ClassLp:
    """The LP of step 2 over class triples, kept between levels: one objective at a time,
    earlier levels held by added rows, columns generated by pricing every class triple.

    Internally every level is maximised (cost as its negative), so one bound formula serves.
    """

    def __init__(self, instance: Instance, arr: Arrays, classes: Classes, threads: int = 0,
                 seed: int = 0):
        pol = instance.policy
        self.instance, self.arr, self.classes = instance, arr, classes
        rep_mask = np.zeros(len(arr.weight), dtype=bool)
        rep_mask[classes.rep] = True
        self.ct = ct = np.flatnonzero(rep_mask[arr.demand])  # the representatives' triples
        self.g = g = classes.of_demand[arr.demand[ct]]
        self.n_g = classes.size.astype(float)
        self.wg = arr.weight[classes.rep]
        mand_g = arr.mandatory[classes.rep]
        G, A = len(classes.rep), len(arr.agencies)
        self.budget = budget = max(float(pol.budget_total), 1.0)
        capped = np.flatnonzero(np.isfinite(arr.district_cap))
        cap_row = np.full(len(arr.districts), -1)
        cap_row[capped] = G + 1 + np.arange(len(capped))
        agency_scale = np.maximum(arr.capacity, 1.0)
        self.first_agency_row = G + 1 + len(capped)
        self.n_rows = self.first_agency_row + A
        self.row_lo = np.concatenate([np.where(mand_g, self.n_g, 0.0),
                                      np.full(self.n_rows - G, -np.inf)])
        self.row_hi = np.concatenate([self.n_g, [pol.budget_total / budget],
                                      arr.district_cap[capped] / budget,
                                      arr.capacity / agency_scale])
        self.c = arr.cost[ct] / budget
        self.ld = arr.load[ct] / agency_scale[arr.agency[ct]]
        self.krow = cap_row[arr.district[ct]]
        self.holds: list[tuple[int, np.ndarray]] = []  # (row, coefficient per class triple)
        self.master = LpMaster(self.row_lo, self.row_hi, "max", threads, seed)
        # a missing member of a mandatory class at a prohibitive price: keeps the restricted
        # LP feasible while its columns are too few (one left > 0 at the end: infeasible)
        self.mand_rows = np.flatnonzero(mand_g)
        m = len(self.mand_rows)
        self.master.add_columns(np.zeros(m), np.zeros(m), self.n_g[self.mand_rows],
                                sp.csc_matrix((np.ones(m), (self.mand_rows, np.arange(m))),
                                              shape=(self.n_rows, m)))
        self.in_lp = np.zeros(len(ct), dtype=bool)
        self.columns = np.empty(0, dtype=np.int64)  # class triples in LP column order
        self.objective = np.zeros(len(ct))  # the current level's, per class triple
        # first columns: each class's cheapest offers and those of a greedy plan
        order = np.lexsort((self.c, g))
        self.greedy = greedy_columns(instance, arr, classes, ct, g)  # (columns, members)
        first = np.union1d(order[_rank_within(g[order]) < INITIAL_CHEAPEST], self.greedy[0])
        self._add(first)

    def _matrix(self, cols: np.ndarray) -> sp.csc_matrix:
        m = len(cols)
        own = self.krow[cols] >= 0
        rows = [self.g[cols], np.full(m, len(self.classes.rep)), self.krow[cols][own],
                self.first_agency_row + self.arr.agency[self.ct[cols]]]
        vals = [np.ones(m), self.c[cols], self.c[cols][own], self.ld[cols]]
        col = [np.arange(m), np.arange(m), np.arange(m)[own], np.arange(m)]
        for row, coef in self.holds:
            rows.append(np.full(m, row))
            vals.append(coef[cols])
            col.append(np.arange(m))
        return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(col))),
                             shape=(self.master.n_rows, m))

    def _add(self, cols: np.ndarray) -> None:
        cols = cols[~self.in_lp[cols]]
        self.master.add_columns(self.objective[cols], np.zeros(len(cols)),
                                self.n_g[self.g[cols]], self._matrix(cols))
        self.in_lp[cols] = True
        self.columns = np.concatenate([self.columns, cols])

    def hold(self, coef: np.ndarray, lo: float, hi: float = np.inf) -> None:
        """Add the row lo <= sum coef X <= hi (an earlier level held)."""
        row = self.master.n_rows
        n_art = len(self.mand_rows)
        self.master.add_rows(np.array([lo]), np.array([hi]), sp.csr_matrix(
            (coef[self.columns], (np.zeros(len(self.columns), dtype=np.int64),
                                  n_art + np.arange(len(self.columns)))),
            shape=(1, self.master.n_cols)))
        self.holds.append((row, coef))
        self.row_lo = np.r_[self.row_lo, lo]
        self.row_hi = np.r_[self.row_hi, hi]

    def move_hold(self, lo: float, hi: float = np.inf) -> None:
        """Change the limits of the last held row."""
        row = self.holds[-1][0]
        self.master.set_row_bounds(row, lo, hi)
        self.row_lo[row], self.row_hi[row] = lo, hi

    def solve(self, objective: np.ndarray, time_limit: float, say: Progress,
              name: str) -> CoverageLp:
        """Maximise objective (per class triple) by column generation within time_limit."""
        t0 = time.perf_counter()
        self.objective = objective
        scale = max(float(np.abs(objective).max(initial=0.0)), 1e-12)
        penalty = -ARTIFICIAL_PRICE * scale
        n_art = len(self.mand_rows)
        self.master.set_costs(np.concatenate([np.full(n_art, penalty),
                                              objective[self.columns]]))
        log: list[str] = []
        best, sol, converged, rounds, solved = np.inf, None, False, 0, 0
        G = len(self.classes.rep)
        for rounds in range(1, MAX_ROUNDS + 1):
            res = self.master.solve(max(time_limit - (time.perf_counter() - t0), 0.1))
            if res.status is not Status.OPTIMAL:
                if res.status is Status.INFEASIBLE:
                    return CoverageLp(Status.INFEASIBLE, None, None, self.ct[self.columns],
                                      None, False, rounds, time.perf_counter() - t0, log,
                                      self.master.n_rows)
                log.append(f"{name} round {rounds}: LP {res.text}")
                break
            sol, solved = res, len(self.columns)
            y = res.row_dual.copy()
            # a dual of the wrong sign for its row's limits is noise: drop it (bound holds)
            y[(y > 0) & np.isinf(self.row_hi)] = 0.0
            y[(y < 0) & np.isinf(self.row_lo)] = 0.0
            rc = (objective - y[self.g] - y[G] * self.c
                  - np.where(self.krow >= 0, y[np.maximum(self.krow, 0)], 0.0) * self.c
                  - y[self.first_agency_row + self.arr.agency[self.ct]] * self.ld)
            for row, coef in self.holds:
                rc -= y[row] * coef
            rows_part = np.where(y > 0, y * np.where(np.isinf(self.row_hi), 0, self.row_hi),
                                 y * np.where(np.isinf(self.row_lo), 0, self.row_lo)).sum()
            rc_art = penalty - y[self.mand_rows]
            bound = float(rows_part + (np.maximum(rc, 0.0) * self.n_g[self.g]).sum()
                          + (np.maximum(rc_art, 0.0) * self.n_g[self.mand_rows]).sum())
            best = min(best, bound)
            enter = np.flatnonzero((rc > PRICE_TOL * scale) & ~self.in_lp)
            msg = (f"{name} round {rounds}: LP {res.objective:,.4g} in {res.seconds:.1f} s, "
                   f"bound {best:,.6g}, {len(enter):,} columns price out, "
                   f"{len(self.columns):,} in the LP")
            log.append(msg)
            say(f"large scale: {msg}")
            if len(enter) == 0 or best - res.objective <= 1e-9 * max(1.0, abs(best)):
                converged = True
                break
            if time.perf_counter() - t0 > time_limit:
                break
            o = np.lexsort((-rc[enter], self.g[enter]))
            self._add(enter[o][_rank_within(self.g[enter][o]) < PER_CLASS])
        if sol is None:
            return CoverageLp(Status.NO_SOLUTION, None, None, self.ct[self.columns], None,
                              False, rounds, time.perf_counter() - t0, log, self.master.n_rows)
        short = float(sol.x[:n_art].sum())
        if short > 0.5:  # mandatory members the LP could not place even at that price
            log.append(f"{short:,.1f} mandatory members left out of the LP")
            return CoverageLp(Status.INFEASIBLE if converged else Status.NO_SOLUTION, None,
                              None, self.ct[self.columns[:solved]], None, converged, rounds,
                              time.perf_counter() - t0, log, self.master.n_rows)
        return CoverageLp(Status.OPTIMAL if converged else Status.FEASIBLE, sol.objective,
                          best, self.ct[self.columns[:solved]], sol.x[n_art:n_art + solved],
                          converged, rounds, time.perf_counter() - t0, log, self.master.n_rows)


def coverage_lp(instance: Instance, arr: Arrays, classes: Classes, time_limit: float,
                threads: int = 0, seed: int = 0, say: Progress | None = None) -> CoverageLp:
    """Maximise served weight over the relaxation of step 2 by column generation."""
    lp = ClassLp(instance, arr, classes, threads, seed)
    return lp.solve(lp.wg[lp.g], time_limit, say or (lambda _m: None), "coverage")


def greedy_columns(instance: Instance, arr: Arrays, classes: Classes, ct: np.ndarray,
                   g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class triples a greedy plan uses and its members on each: mandatory classes first,
    then the best weight per cheapest cost, each member to the cheapest agency with capacity,
    budget and district cap left. Its agencies are where capacity is, so the first LP starts
    near its optimum; the plan itself is the fallback when the LP has no answer in time."""
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
    used: list[int] = []
    members: list[int] = []
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
            members.append(take)
            left -= take
            money -= take * c[j]
            dcap_left[k] -= take * c[j]
            cap_left[a[j]] -= take * ld[j]
    return np.asarray(used, dtype=np.int64), np.asarray(members, dtype=float)


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
        ok = (arr.load[t] <= room[arr.agency[t]] + RULE_TOL) & (arr.cost[t] < arr.cost[cur][owner])
        if not ok.any():
            return False
        t, owner = t[ok], owner[ok]
        o = np.lexsort((arr.cost[t], owner))
        first = np.r_[True, owner[o][1:] != owner[o][:-1]]
        alt, who = t[o][first], owner[o][first]
        saving = arr.cost[cur[who]] - arr.cost[alt]
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
        total = st.district_spend[k] - saving[lead]
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
    return arr.min_cost


@dataclass
class LargeResult:
    """The large-scale path's outcome: levels, the chosen triples and what it did."""

    lex: LexResult
    chosen: np.ndarray | None  # triple numbers of the plan
    info: dict


def plan_levels(arr: Arrays, choice: np.ndarray,
                quality: np.ndarray) -> tuple[float, float, float]:
    """Served weight, quality sum (weight x quality) and cost of a plan."""
    served = np.flatnonzero(choice >= 0)
    t = choice[served]
    w = arr.weight[served]
    return float(w.sum()), float((w * quality[t]).sum()), float(arr.cost[t].sum())


def solve_large(instance: Instance, elig: Eligibility, time_limit: float, mip_gap: float,
                threads: int = 0, seed: int = 0, progress: Progress | None = None
                ) -> LargeResult:
    """The three levels on the class LP (module docstring); never raises for the instance's
    sake: an infeasible LP is reported infeasible, a timed-out one no_solution."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    triples = elig.triples
    arr = Arrays.of(instance, triples)
    classes = Classes.of(instance, triples)
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
        seconds = time.perf_counter() - t0
        report = LevelReport("coverage", "max", Status.NO_SOLUTION, None, lp.bound, None,
                             seconds, "rounded plan could not be repaired")
        return LargeResult(LexResult(Status.NO_SOLUTION, None, [report], seconds), None, info)
    cov, qual, cost = plan_levels(arr, choice, quality)
    bounds: dict[str, float | None] = {"coverage": lp.bound, "quality": None, "cost": None}
    seconds = {"coverage": time.perf_counter() - t0, "quality": 0.0, "cost": 0.0}
    lp_of = {"coverage": lp}
    # level 2: quality, coverage held at what level 1 guarantees (within the gap of its bound)
    hold_cov = min(cov, lp.bound * (1 - mip_gap)) if lp.bound is not None else cov
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
                if step is not None and lp.value is not None:
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
    if "cost" in wanted and left > 1.0 and "quality" in lp_of:
        t = time.perf_counter()
        qb = bounds["quality"]
        hold_q = min(qual, qb * (1 - mip_gap)) if qb is not None else qual
        lpm.hold(q_obj, hold_q)
        lp3 = lpm.solve(-lpm.c, left - 0.5, say, "cost")
        lp_of["cost"] = lp3
        if lp3.x is not None:
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
    info["levels_lp"] = {k: {"status": v.status.value, "value": v.value, "bound": v.bound,
                             "rounds": v.rounds, "seconds": round(v.seconds, 3)}
                         for k, v in lp_of.items()}
    info["lp_columns"] = len(lpm.columns)
    levels = []
    for name, sense, value in (("coverage", "max", cov), ("quality", "max", qual),
                               ("cost", "min", cost)):
        b = bounds[name]
        gap = relative_gap(value, b) if b is not None else None
        if name in lp_of and b is not None and name in wanted:
            st = settle_status(Status.FEASIBLE, gap, mip_gap)
            levels.append(LevelReport(name, sense, st, value, b, gap, seconds[name],
                                      f"{name} LP over demand classes, rounded and repaired; "
                                      "bound: that LP's Lagrangian bound"))
        else:
            levels.append(LevelReport(name, sense, Status.FEASIBLE, value, None, None,
                                      seconds[name], "not optimised (time, or solver.levels)",
                                      optimised=False))
    info["levels_optimised"] = [r.name for r in levels if r.optimised]
    overall = (Status.OPTIMAL if all(r.status is Status.OPTIMAL for r in levels)
               else Status.FEASIBLE)
    chosen = np.sort(choice[choice >= 0])
    # x: an empty point marks "a plan exists"; the plan itself is `chosen` (no model columns)
    return LargeResult(LexResult(overall, np.zeros(0), levels, time.perf_counter() - t0),
                       chosen, info)


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
