"""An independent brute-force solver for tiny instances: every assignment, every rule of spec §4.

It shares nothing with allocator.eligibility / allocator.model.build: eligibility is recomputed
here from the spec's text, every plan (each demand -> one of its eligible agencies, or none)
is enumerated as a numpy column, every rule is checked on all columns at once, and the
lexicographic optimum (coverage max, then stability max when there are incumbents and
keep_incumbents, then quality max, then government cost min) is read off.
The planner's year as the issue words it: a forbid pin and rotation (an incumbent with years
>= max_tenure_years) take the agency out of the demand's options; an assign pin is a rule (the
demand is served by that agency) and makes the other agencies no incumbent option either; of
the demands whose incumbent is still an option, at most floor(max_changes x their number) may
move or go unserved.
Only the reading and checking of the files (allocator.data.validation.load_instance) is shared.

Co-payment: the government pays cost x (1 - share of the risk level), to the cent where a
share applies; budget, district caps, funding and the cost level count that part.
Funding: a plan can be paid for iff, for every set U of sources, the government cost of the
served demands that only sources in U may pay for is at most U's amounts (Hall's condition on
the transportation problem, checked over all 2^k sets; a demand no source may pay for cannot
be served).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.data.validation import load_instance

#: relative slack of every comparison (floating noise, e.g. 0.8 x reference cost)
RTOL = 1e-9
#: refuse instances with more plans than this (the enumeration holds them all in memory)
MAX_PLANS = 3_000_000

Triple = tuple[str, str, str]  # (enterprise_id, service_id, agency_id)


@dataclass(frozen=True)
class Option:
    """One eligible way to serve a demand."""

    agency_id: str
    cost: float
    load: float
    quality: float
    quoted: bool


@dataclass
class BruteResult:
    """The lexicographic optimum over all plans, and every plan that attains it."""

    feasible: bool
    coverage: float | None
    quality: float | None
    cost: float | None
    plans: list[frozenset[Triple]] = field(default_factory=list)
    n_plans: int = 0
    n_feasible: int = 0
    options: dict[tuple[str, str], list[Option]] = field(default_factory=dict)
    stability: float | None = None  # with incumbents: served weight kept with its incumbent

    @property
    def plan(self) -> frozenset[Triple]:
        """The optimal plan when it is unique (tests of hand-made cases rely on that)."""
        assert len(self.plans) == 1, f"{len(self.plans)} optimal plans: {self.plans}"
        return self.plans[0]


def _le(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """a <= b up to RTOL (relative to the larger magnitude, at least 1)."""
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    return np.asarray(a <= b + RTOL * scale)


def _close(a: np.ndarray, b: float) -> np.ndarray:
    return np.abs(a - b) <= RTOL * max(1.0, abs(b))


def demand_frame(inst: Instance) -> pd.DataFrame:
    """demands with district, sector, risk and weight derived here from the raw columns."""
    dem = inst.demands[["enterprise_id", "service_id", "person_days", "weight_given"]].copy()
    ent = inst.enterprises
    dem["district_id"] = dem["enterprise_id"].map(ent["district_id"])
    dem["sector"] = dem["enterprise_id"].map(ent["sector"])
    dem["risk_level"] = dem["enterprise_id"].map(ent["risk_level"]).astype(int)
    default = dem["risk_level"].map(lambda r: inst.policy.weights[int(r)])
    dem["weight"] = [float(g) if pd.notna(g) else float(d)
                     for g, d in zip(dem["weight_given"], default, strict=True)]
    dem["reference_cost"] = [float(p) * float(inst.services.loc[s, "reference_rate"])
                             for p, s in zip(dem["person_days"], dem["service_id"], strict=True)]
    return dem.reset_index(drop=True)


def eligible_options(inst: Instance) -> dict[tuple[str, str], list[Option]]:
    """For each demand (enterprise_id, service_id): its eligible agencies, straight from §4.

    Written as plain loops over the spec's sentences, on purpose unlike the vectorised code.
    """
    pol = inst.policy
    dem = demand_frame(inst)
    bids = {(r.agency_id, r.service_id, r.sector): float(r.day_rate)
            for r in inst.bids.itertuples()}
    quotes = {(r.agency_id, r.enterprise_id, r.service_id): (float(r.price), float(r.person_days))
              for r in inst.quotes.itertuples()}
    conflicts = {(r.agency_id, r.enterprise_id) for r in inst.conflicts.itertuples()}
    forbidden = {(r.enterprise_id, r.service_id, r.agency_id) for r in inst.pins.itertuples()
                 if r.action == "forbid"}
    limit = pol.max_tenure_years
    rotated = {(r.enterprise_id, r.service_id, r.agency_id) for r in inst.incumbents.itertuples()
               if limit is not None and int(r.years) >= limit}
    out: dict[tuple[str, str], list[Option]] = {}
    for d in dem.itertuples():
        opts: list[Option] = []
        for a, ag in inst.agencies.iterrows():
            key_q = (a, d.enterprise_id, d.service_id)
            key_b = (a, d.service_id, d.sector)
            if key_q in quotes:  # a quote overrides the bid for that triple
                cost, load = quotes[key_q]
                quoted = True
            elif key_b in bids:
                cost, load = float(d.person_days) * bids[key_b], float(d.person_days)
                quoted = False
            else:
                continue
            status = str(ag["status"])
            if not (status == "active" or (status == "probation" and d.risk_level <= 2)):
                continue
            q = float(ag["quality"])
            if q < pol.min_score:
                continue
            if d.risk_level in pol.min_score_by_risk and q < pol.min_score_by_risk[d.risk_level]:
                continue
            area = str(ag["districts"]).strip()
            if area != "*" and d.district_id not in {x.strip() for x in area.split(";")}:
                continue
            if (a, d.enterprise_id) in conflicts:
                continue
            ref = d.reference_cost
            if not (_le(pol.floor_ratio * ref, cost) and _le(cost, pol.ceiling_ratio * ref)):
                continue
            if (d.enterprise_id, d.service_id, a) in forbidden | rotated:
                continue
            opts.append(Option(str(a), cost, load, q, quoted))
        out[(d.enterprise_id, d.service_id)] = opts
    return out


def copay_shares(inst: Instance, dem: pd.DataFrame) -> np.ndarray:
    """The enterprise's share of each demand's cost (copay.share_by_risk, 0 if absent)."""
    shares = inst.policy.copay_share_by_risk
    return np.array([float(shares.get(int(r), 0.0)) for r in dem["risk_level"]])


def payers(inst: Instance, dem: pd.DataFrame) -> np.ndarray:
    """(demands x sources) booleans: the source's scope (funding.csv) covers the demand."""
    f = inst.funding
    if f is None:
        return np.zeros((len(dem), 0), dtype=bool)
    out = np.zeros((len(dem), len(f)), dtype=bool)
    for j, (_, src) in enumerate(f.iterrows()):
        for i, d in enumerate(dem.itertuples()):
            ok = True
            for col, value in (("districts", d.district_id), ("sectors", d.sector),
                               ("services", d.service_id), ("risk_levels", str(d.risk_level))):
                text = str(src[col]).strip()
                if text != "*" and value not in {v.strip() for v in text.split(";")}:
                    ok = False
            out[i, j] = ok
    return out


class Plans:
    """A block of plans as arrays, demand-major: one row per demand, one column per plan."""

    def __init__(self, inst: Instance, options: dict[tuple[str, str], list[Option]],
                 choice: np.ndarray):
        dem = demand_frame(inst)
        self.inst, self.dem, self.choice = inst, dem, choice
        self.n = choice.shape[1]
        self.agencies = list(inst.agencies.index)
        idx = {a: k for k, a in enumerate(self.agencies)}
        rows_a, rows_c, rows_l, rows_q = [], [], [], []
        for j, key in enumerate(zip(dem["enterprise_id"], dem["service_id"], strict=True)):
            opts = options[key]
            c = choice[j]
            rows_a.append(np.array([-1] + [idx[o.agency_id] for o in opts])[c])
            rows_c.append(np.array([0.0] + [o.cost for o in opts])[c])
            rows_l.append(np.array([0.0] + [o.load for o in opts])[c])
            rows_q.append(np.array([0.0] + [o.quality for o in opts])[c])
        m = len(dem)
        self.agency = np.array(rows_a).reshape(m, self.n)
        self.cost = np.array(rows_c).reshape(m, self.n)
        self.load = np.array(rows_l).reshape(m, self.n)
        qual = np.array(rows_q).reshape(m, self.n)
        self.served = self.agency >= 0
        w = dem["weight"].to_numpy(dtype=float)[:, None]
        self.coverage = (self.served * w).sum(axis=0)
        self.quality = (qual * w).sum(axis=0)
        share = copay_shares(inst, dem)[:, None]
        self.gov = np.where(share > 0, np.round(self.cost * (1 - share), 2), self.cost)
        self.total = self.gov.sum(axis=0)  # the government's spend (the cost level)
        self.contract = self.cost.sum(axis=0)
        # the planner's year: each demand's incumbent and pinned agency (-1: none)
        keys = list(zip(dem["enterprise_id"], dem["service_id"], strict=True))
        inc = {(r.enterprise_id, r.service_id): r.agency_id for r in inst.incumbents.itertuples()}
        pin = {(r.enterprise_id, r.service_id): r.agency_id for r in inst.pins.itertuples()
               if r.action == "assign"}
        self.pinned = np.array([idx.get(pin.get(k, ""), -1) if k in pin else -2 for k in keys])
        incumbent = np.array([idx.get(inc.get(k, ""), -1) for k in keys])
        # the incumbent is still an option: eligible, and no pin gives the demand to another
        still = np.array([k in inc and any(o.agency_id == inc[k] for o in options[k])
                          and pin.get(k, inc[k]) == inc[k] for k in keys], dtype=bool)
        self.incumbent = incumbent
        self.still = still
        kept = (self.agency == incumbent[:, None]) & (incumbent[:, None] >= 0)
        self.stability = (kept * w).sum(axis=0)
        self.changed = (~kept & still[:, None]).sum(axis=0)

    def violations(self) -> dict[str, np.ndarray]:
        """rule -> boolean per plan, True where the plan breaks the rule (spec §4)."""
        inst, pol, dem, n = self.inst, self.inst.policy, self.dem, self.n
        bad: dict[str, np.ndarray] = {}
        bad["budget"] = (np.zeros(n, dtype=bool) if pol.budget_total is None
                         else ~_le(self.total, pol.budget_total))
        dist = dem["district_id"].to_numpy()
        district_ids = list(inst.districts.index)
        spend = {d: self.cost[dist == d].sum(axis=0) for d in district_ids}
        cap_bad = np.zeros(n, dtype=bool)
        for d in district_ids:
            cap = inst.districts.loc[d, "budget_cap"]
            if pd.notna(cap):
                cap_bad |= ~_le(self.gov[dist == d].sum(axis=0), float(cap))
        bad["district_budget_cap"] = cap_bad
        bad["funding"] = self.funding_violations()
        mine = [self.agency == k for k in range(len(self.agencies))]
        cap_bad = np.zeros(n, dtype=bool)
        for k, a in enumerate(self.agencies):
            load = (self.load * mine[k]).sum(axis=0)
            cap_bad |= ~_le(load, float(inst.agencies.loc[a, "capacity_days"]))
        bad["capacity"] = cap_bad
        mand = dem["risk_level"].isin(pol.mandatory_levels).to_numpy()
        bad["mandatory"] = ~self.served[mand].all(axis=0)
        w = dem["weight"].to_numpy(dtype=float)
        ratio_bad = np.zeros(n, dtype=bool)
        for d in district_ids:
            in_d = dist == d
            need = pol.min_district_ratio * w[in_d].sum()
            ratio_bad |= ~_le(need, (self.served[in_d] * w[in_d, None]).sum(axis=0))
        bad["min_district_ratio"] = ratio_bad
        share_bad = np.zeros(n, dtype=bool)
        few_bad = np.zeros(n, dtype=bool)
        active_in = np.zeros((len(self.agencies), len(district_ids), n), dtype=bool)
        for di, d in enumerate(district_ids):
            in_d = dist == d
            for k in range(len(self.agencies)):
                active_in[k, di] = mine[k][in_d].any(axis=0)
                if pol.max_share_in_district is not None:
                    spend_ad = (self.cost[in_d] * mine[k][in_d]).sum(axis=0)
                    share_bad |= ~_le(spend_ad, pol.max_share_in_district * spend[d])
            has_served = self.served[in_d].any(axis=0)
            n_active = active_in[:, di].sum(axis=0)
            few_bad |= has_served & (n_active < pol.min_agencies_per_district)
        bad["max_share_in_district"] = share_bad
        bad["min_agencies_per_district"] = few_bad
        city_bad = np.zeros(n, dtype=bool)
        if pol.max_share_in_city is not None:
            for k in range(len(self.agencies)):
                spend_a = (self.cost * mine[k]).sum(axis=0)
                city_bad |= ~_le(spend_a, pol.max_share_in_city * self.total)
        bad["max_share_in_city"] = city_bad
        nd_bad = np.zeros(n, dtype=bool)
        if pol.max_districts_per_agency is not None:
            nd_bad = (active_in.sum(axis=1) > pol.max_districts_per_agency).any(axis=0)
        bad["max_districts_per_agency"] = nd_bad
        pinned = self.pinned != -2
        bad["pin"] = (self.agency[pinned] != self.pinned[pinned][:, None]).any(axis=0)
        ratio = pol.max_changes
        allowed = (int(np.floor(ratio * self.still.sum() + 1e-9)) if ratio is not None
                   else len(self.still))
        bad["max_changes"] = self.changed > allowed
        return bad

    def funding_violations(self) -> np.ndarray:
        """Per plan: no split of its government costs among the sources exists (Hall)."""
        inst, n = self.inst, self.n
        f = inst.funding
        if f is None:
            return np.zeros(n, dtype=bool)
        pay = payers(inst, self.dem)
        amount = f["amount"].to_numpy(dtype=float)
        served_gov = self.gov * self.served
        bad = (self.served & ~pay.any(axis=1)[:, None]).any(axis=0)
        k = len(amount)
        for mask in range(1, 2 ** k):
            inside = np.array([(mask >> j) & 1 for j in range(k)], dtype=bool)
            only = pay.any(axis=1) & ~(pay & ~inside).any(axis=1)  # payers all in U
            need = served_gov[only].sum(axis=0)
            bad |= ~_le(need, float(amount[inside].sum()))
        return bad

    def feasible(self) -> np.ndarray:
        ok = np.ones(self.n, dtype=bool)
        for mask in self.violations().values():
            ok &= ~mask
        return ok

    def triples(self, col: int) -> frozenset[Triple]:
        dem = self.dem
        return frozenset(
            (dem.at[j, "enterprise_id"], dem.at[j, "service_id"], self.agencies[k])
            for j, k in enumerate(self.agency[:, col]) if k >= 0)


def _instance(source: str | Path | Instance, overrides: dict[str, Any] | None,
              budget: float | None) -> Instance:
    if isinstance(source, Instance):
        assert overrides is None and budget is None, "pass overrides to load_instance instead"
        return source
    return load_instance(source, overrides=overrides, budget=budget)


def _every_plan(inst: Instance) -> tuple[dict[tuple[str, str], list[Option]], Plans,
                                         np.ndarray]:
    """Every plan of the instance (each demand: one of its options or none) and which of
    them keep every rule."""
    options = eligible_options(inst)
    dem = demand_frame(inst)
    sizes = [len(options[k]) + 1 for k in zip(dem["enterprise_id"], dem["service_id"],
                                                strict=True)]
    total = int(np.prod(sizes, dtype=np.int64)) if sizes else 1
    assert total <= MAX_PLANS, f"{total} plans: too many for brute force"
    choice = (np.array(np.unravel_index(np.arange(total), sizes)) if sizes
              else np.zeros((0, 1), dtype=np.int64))
    plans = Plans(inst, options, choice)
    return options, plans, plans.feasible()


def serving_most(source: str | Path | Instance, overrides: dict[str, Any] | None = None,
                 budget: float | None = None) -> tuple[float, float] | None:
    """(served weight, government cost): the most weight a plan serves, and the least cost
    of a plan serving that much, quality left out (a sweep's budget serving all; pass a
    budget no plan reaches). None when no plan keeps the rules."""
    _, plans, ok = _every_plan(_instance(source, overrides, budget))
    if not ok.any():
        return None
    rows = np.flatnonzero(ok)
    cov = plans.coverage[rows]
    rows = rows[_close(cov, cov.max()) | (cov >= cov.max())]
    return float(plans.coverage[rows].max()), float(plans.total[rows].min())


def brute_force(source: str | Path | Instance, overrides: dict[str, Any] | None = None,
                budget: float | None = None) -> BruteResult:
    """Enumerate every plan of a tiny instance and return the lexicographic optimum."""
    inst = _instance(source, overrides, budget)
    options, plans, ok = _every_plan(inst)
    res = BruteResult(False, None, None, None, [], plans.n, int(ok.sum()), options)
    if not ok.any():
        return res
    rows = np.flatnonzero(ok)
    cov = plans.coverage[rows]
    rows = rows[_close(cov, cov.max()) | (cov >= cov.max())]
    with_stability = inst.policy.keep_incumbents and len(inst.incumbents) > 0
    if with_stability:
        stab = plans.stability[rows]
        rows = rows[_close(stab, stab.max()) | (stab >= stab.max())]
    qual = plans.quality[rows]
    rows = rows[_close(qual, qual.max()) | (qual >= qual.max())]
    cost = plans.total[rows]
    rows = rows[_close(cost, cost.min()) | (cost <= cost.min())]
    res.feasible = True
    res.coverage = float(plans.coverage[rows[0]])
    res.quality = float(plans.quality[rows[0]])
    res.cost = float(plans.total[rows[0]])
    res.stability = float(plans.stability[rows[0]]) if with_stability else None
    res.plans = [plans.triples(r) for r in rows]
    return res


@dataclass
class PlanCheck:
    """A given plan judged by the brute force's rules: what it breaks and its level values."""

    ineligible: list[Triple]
    broken: list[str]
    coverage: float
    quality: float
    cost: float
    stability: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.ineligible and not self.broken


def evaluate(source: str | Path | Instance, plan: Iterable[Triple],
             overrides: dict[str, Any] | None = None, budget: float | None = None) -> PlanCheck:
    """Judge one plan ((enterprise, service, agency) rows; a repeated demand counts as served
    twice) independently of the solver."""
    inst = _instance(source, overrides, budget)
    options = eligible_options(inst)
    dem = demand_frame(inst)
    keys = list(zip(dem["enterprise_id"], dem["service_id"], strict=True))
    chosen: dict[tuple[str, str], list[str]] = {}
    for e, s, a in plan:
        chosen.setdefault((e, s), []).append(a)
    ineligible = [(e, s, a) for (e, s), ags in chosen.items() for a in ags
                  if (e, s) not in options or a not in [o.agency_id for o in options[(e, s)]]]
    broken = ["served_twice"] if any(len(v) > 1 for v in chosen.values()) else []
    col = np.zeros((len(keys), 1), dtype=np.int64)
    for j, key in enumerate(keys):
        ids = [o.agency_id for o in options[key]]
        for a in chosen.get(key, []):
            if a in ids:
                col[j, 0] = ids.index(a) + 1
    plans = Plans(inst, options, col)
    broken += [rule for rule, mask in plans.violations().items() if mask[0]]
    return PlanCheck(ineligible, broken, float(plans.coverage[0]), float(plans.quality[0]),
                     float(plans.total[0]), float(plans.stability[0]))
