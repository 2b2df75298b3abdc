"""The allocation MIP of spec section 4, one function per rule family.

`build_model` reads like the spec's list of rules. Every rule adds a named block of rows over
the data's ids and returns early when its index set is empty or the rule is off. No solver is
imported here: the result is a `linear.LinearModel` plus the three objective levels.

Formulation notes (all exact reformulations of the spec):
- x[e,s,a] binary per eligible triple and served[e,s] binary with `serve_once[e,s]`:
  sum_a x = served (coverage counts served); `serve_mandatory`: served >= 1 at mandatory levels;
  `open_if_served`: served <= open[d] when the minimum-agencies rule is on.
- active[a,d] binary: active <= sum of its x (an agency counts only if it really serves), and
  the other direction per triple (x <= active) only when a districts-per-agency cap needs it,
  else one aggregated row per (a, d).
- share caps over x (dense) up to DENSE_SHARE_MAX_NONZEROS, else through a district spend
  column defined by one row (see add_district_share_caps).
- capacity rows are left out when an agency's eligible load cannot exceed its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocator.data.funding import government_cost, has_funding, scope_groups, source_cover
from allocator.data.history import allowed_changes, stability_on
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.eligibility.incumbents import incumbent_triples, pinned_triples
from allocator.model.flow import warm_split
from allocator.model.linear import INF, LinearModel

COVERAGE, QUALITY, COST = "coverage", "quality", "cost"
STABILITY = "stability"


@dataclass(frozen=True)
class Level:
    """One level of the lexicographic objective: coefficients over all columns and a sense."""

    name: str
    coefs: np.ndarray
    sense: str  # "max" or "min"
    unit: float = 1.0  # multiply model values by this to report them (cost: currency)
    constant: bool = False  # same value in every feasible plan: nothing to optimise


@dataclass
class AllocationModel:
    """The MIP with handles to its variable families, and what made it."""

    instance: Instance
    triples: pd.DataFrame
    lp: LinearModel = field(default_factory=LinearModel)
    x: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    district_cost: pd.Series | None = None  # column per district with triples
    active: pd.DataFrame | None = None  # agency_id, district_id, col
    open: pd.Series | None = None  # column per district
    levels: list[Level] = field(default_factory=list)
    unservable_mandatory: pd.DataFrame | None = None  # mandatory demands with no triple
    served: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    demand_of_triple: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    demand_members: np.ndarray = field(default_factory=lambda: np.empty(0))  # per served column
    #: per served column: demand, district, risk level, weight (empty without triples)
    demands_served: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["demand", "district_id", "risk_level", "weight"]))
    cost_scale: float = 1.0  # currency per model cost unit (keeps coefficients near 1)
    direct_share_rows: bool = True  # share caps over x (see add_district_share_caps)
    integer_flows: bool = False  # pay columns as whole cents (backends with integer columns)
    gov: np.ndarray = field(default_factory=lambda: np.empty(0))  # government cost per triple
    budget_row: int | None = None  # the row of budget.total, when there is one
    triple_group: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    group_members: np.ndarray | None = None  # (scope groups x sources) may-pay booleans
    group_rows: np.ndarray | None = None  # funding_paid row per scope group (-1: no triple)
    pay: pd.DataFrame | None = None  # group, source (positions) and col of each pay column
    funding_rows: pd.Series | None = None  # source_id -> its funding[s] row

    def scaled_cost(self) -> np.ndarray:
        """Triple costs in model units: currency / cost_scale."""
        return self.triples["cost"].to_numpy(dtype=float) / self.cost_scale

    def scaled_gov(self) -> np.ndarray:
        """The government's part of each triple's cost in model units."""
        return self.gov / self.cost_scale

    @property
    def pay_coef(self) -> float:
        """Model cost units per unit of a pay column: 1, or a cent when pay is integer."""
        return 0.01 / self.cost_scale if self.integer_flows else 1.0


def _codes(values: pd.Series | pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Group number of each row and the groups' labels, both in order of first appearance."""
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    cols = list(frame.columns)
    codes = frame.groupby(cols, sort=False).ngroup().to_numpy()
    labels = frame.drop_duplicates().reset_index(drop=True)
    return codes, labels


#: most triples (class columns) for which a districts-per-agency cap links activity to each
#: triple (x <= members x active, the tighter LP); above, one row per agency and district:
#: hidden-1500-s3 with the cap (24,782 class columns) had its LP unsolved in 30 s with the
#: per-triple rows and solved in 1 s without (docs/tuning-log.md, "Rules the province path
#: leaves out")
TIGHT_ACTIVITY_MAX_TRIPLES = 10_000

#: largest number of nonzeros for share-cap rows written over x (see add_district_share_caps)
DENSE_SHARE_MAX_NONZEROS = 2_000_000


def members(t: pd.DataFrame) -> np.ndarray:
    """Demands each triple row stands for: 1, or in a model over classes of identical demands
    (build_class_model) the class's size, which every bound and link below scales by."""
    if "members" in t.columns:
        return t["members"].to_numpy(dtype=float)
    return np.ones(len(t))


def add_assignment_variables(m: AllocationModel) -> None:
    """x[e,s,a] in {0,1}: agency a serves enterprise e's need for service s (in a class
    model: how many of the class's members a serves, 0..members)."""
    t = m.triples
    m.x = m.lp.add_variables("x", t[["enterprise_id", "service_id", "agency_id"]], 0,
                             members(t), True)


def add_district_cost_definitions(m: AllocationModel) -> None:
    """spend[d] = spend in district d (continuous), only where a share cap needs it.

    Share caps then read `agency spend in d - share * spend[d] <= 0`, one short row each.
    Budget and district caps use direct rows over x instead: the dense equality defining a
    continuous column slowed HiGHS ~5x on GAP-like instances, so it is only built when needed.
    """
    t, pol = m.triples, m.instance.policy
    shares = [v for v in (pol.max_share_in_district, pol.max_share_in_city)
              if v is not None and v < 1]
    if t.empty or not shares:
        return
    codes, labels = _codes(t["district_id"])
    cols = m.lp.add_variables("spend", labels, 0.0, INF, integer=False)
    m.district_cost = pd.Series(cols, index=labels["district_id"])
    rows = np.concatenate([codes, np.arange(len(labels))])
    vars_ = np.concatenate([m.x, cols])
    vals = np.concatenate([-m.scaled_cost(), np.ones(len(labels))])
    m.lp.add_constraints("district_spend", labels, rows, vars_, vals, 0.0, 0.0)


def add_district_open_variables(m: AllocationModel) -> None:
    """open[d] in {0,1}: district d has a served demand (only when min agencies is on)."""
    t = m.triples
    if t.empty or m.instance.policy.min_agencies_per_district <= 0:
        return
    _, labels = _codes(t["district_id"])
    cols = m.lp.add_variables("open", labels, 0, 1, True)
    m.open = pd.Series(cols, index=labels["district_id"])


def add_served_variables(m: AllocationModel) -> None:
    """served[e,s] in {0,1}: the demand is served (by whichever agency).

    Coverage is counted on these, and branching on "served or not" avoids the symmetry of
    the many agencies that could serve a demand equally well for coverage.
    """
    t = m.triples
    if t.empty:
        return
    codes, labels = _codes(t[["enterprise_id", "service_id"]])
    _, first_rows = np.unique(codes, return_index=True)
    m.demand_of_triple = codes
    m.demands_served = t.iloc[first_rows][["demand", "district_id", "risk_level",
                                           "weight"]].reset_index(drop=True)
    m.demand_members = members(t)[first_rows]
    m.served = m.lp.add_variables("served", labels, 0, m.demand_members, True)


def add_serve_at_most_once(m: AllocationModel) -> None:
    """Each demand is served by at most one agency and never split: sum_a x = served."""
    t = m.triples
    if t.empty:
        return
    n = len(m.served)
    labels = _served_labels(m)
    rows = np.concatenate([m.demand_of_triple, np.arange(n)])
    cols = np.concatenate([m.x, m.served])
    vals = np.concatenate([np.ones(len(t)), -np.ones(n)])
    m.lp.add_constraints("serve_once", labels, rows, cols, vals, 0.0, 0.0)


def add_mandatory_service(m: AllocationModel) -> None:
    """Demands at mandatory risk levels are served: served[e,s] >= 1."""
    if m.served.size == 0:
        return
    mandatory = m.demands_served["risk_level"].isin(m.instance.policy.mandatory_levels)
    _require_service(m, "serve_mandatory", mandatory.to_numpy())


def add_serve_every_demand(m: AllocationModel) -> None:
    """Every demand some agency may serve is served: served[e,s] >= 1 (`serve_all`). Not a
    policy rule: the question "what does serving everything cost" (a sweep's budget serving
    all, pipeline/least_budget) asks it of the model."""
    _require_service(m, "serve_all", np.ones(len(m.served), dtype=bool))


def _require_service(m: AllocationModel, name: str, which: np.ndarray) -> None:
    """Rows `name[e,s]`: served[e,s] >= 1 (its members, in a class model) where `which`."""
    if not which.any():
        return
    k = int(which.sum())
    m.lp.add_constraints(name, _served_labels(m)[which], np.arange(k), m.served[which],
                         np.ones(k), m.demand_members[which], INF)


def add_open_district_links(m: AllocationModel) -> None:
    """served[e,s] <= open[d]: a district with a served demand counts as open."""
    if m.open is None or m.served.size == 0:
        return
    n = len(m.served)
    opened = m.open.loc[m.demands_served["district_id"]].to_numpy()
    rows = np.concatenate([np.arange(n), np.arange(n)])
    m.lp.add_constraints("open_if_served", _served_labels(m), rows,
                         np.concatenate([m.served, opened]),
                         np.concatenate([np.ones(n), -m.demand_members]), -INF, 0.0)


def _served_labels(m: AllocationModel) -> pd.DataFrame:
    block = next(b for b in m.lp.var_blocks if b.name == "served")
    return block.labels


def record_unservable_mandatory(m: AllocationModel) -> None:
    """Mandatory demands with no eligible triple make the model infeasible before solving."""
    dem, pol = m.instance.demands, m.instance.policy
    mandatory = dem[dem["risk_level"].isin(pol.mandatory_levels)]
    has = mandatory.index.isin(m.triples["demand"])
    m.unservable_mandatory = mandatory[~has]


def add_government_costs(m: AllocationModel) -> None:
    """The government's part of each triple's cost: all of it, or with co-payment
    (copay.share_by_risk) cost x (1 - the enterprise's share), to the cent."""
    t = m.triples
    m.gov = government_cost(m.instance.policy, t["cost"].to_numpy(dtype=float),
                            t["risk_level"].to_numpy())


def add_total_budget(m: AllocationModel) -> None:
    """Total government spend <= budget.total (no row when funding.csv leaves it out)."""
    t = m.triples
    total = m.instance.policy.budget_total
    if t.empty or total is None:
        return
    rows = m.lp.add_constraints("budget", pd.DataFrame({"scope": ["city"]}), np.zeros(len(t)),
                                m.x, m.scaled_gov(), -INF, total / m.cost_scale)
    m.budget_row = int(rows[0])


def add_district_budget_caps(m: AllocationModel) -> None:
    """District government spend <= its budget_cap, where one is given."""
    t = m.triples
    caps = m.instance.districts["budget_cap"].dropna()
    caps = caps[caps.index.isin(t["district_id"])]
    if caps.empty:
        return
    sel = t["district_id"].isin(caps.index).to_numpy()
    pos = pd.Series(np.arange(len(caps)), index=caps.index)
    rows = pos.loc[t.loc[sel, "district_id"]].to_numpy()
    m.lp.add_constraints("district_budget_cap", caps.index.to_frame(index=False), rows,
                         m.x[sel], m.scaled_gov()[sel], -INF, caps.to_numpy() / m.cost_scale)


def add_funding_flow(m: AllocationModel) -> None:
    """Which fund pays (funding.csv): pay[g,s] >= 0 carries scope group g's government cost
    to source s, and `funding_paid[g]`: cost of g's served triples - sum_s pay[g,s] <= 0.

    A scope group is the set of demands with the same sources allowed to pay for them (one
    group per distinct combination, named by its sources, 'none' when no source may: its
    demands cannot be served). Demands of one group are interchangeable for the split, so
    the flow over groups is exact and small (groups x their sources columns).
    """
    t, inst = m.triples, m.instance
    if t.empty or not has_funding(inst):
        return
    funding = inst.funding
    assert funding is not None
    cover = source_cover(funding, inst.demands)
    groups = scope_groups(cover, funding.index)
    m.triple_group = groups.code[t["demand"].to_numpy()]
    m.group_members = groups.members
    used = np.unique(m.triple_group)
    pos = np.full(len(groups.label), -1, dtype=np.int64)
    pos[used] = np.arange(len(used))
    g_of, s_of = np.nonzero(groups.members[used])
    g_of = used[g_of]
    labels = pd.DataFrame({"sources": [groups.label[k] for k in g_of],
                           "source_id": funding.index.to_numpy()[s_of]})
    # a pay column never exceeds what its group can cost (a finite bound integer columns need)
    g_cost = np.bincount(m.triple_group, m.gov * members(t),
                         minlength=len(groups.label))[g_of]
    ub = np.ceil(g_cost / (m.pay_coef * m.cost_scale) + 1.0)
    cols = m.lp.add_variables("pay", labels, 0.0, ub, integer=m.integer_flows)
    m.pay = pd.DataFrame({"group": g_of, "source": s_of, "col": cols})
    rows = np.concatenate([pos[m.triple_group], pos[g_of]])
    vals = np.concatenate([m.scaled_gov(), -m.pay_coef * np.ones(len(cols))])
    row_ids = m.lp.add_constraints(
        "funding_paid", pd.DataFrame({"sources": [groups.label[k] for k in used]}), rows,
        np.concatenate([m.x, cols]), vals, -INF, 0.0)
    m.group_rows = np.full(len(groups.label), -1, dtype=np.int64)
    m.group_rows[used] = row_ids


def add_funding_limits(m: AllocationModel) -> None:
    """`funding[s]`: what source s pays, over all scope groups, <= its amount."""
    if m.pay is None or not len(m.pay):
        return
    funding = m.instance.funding
    assert funding is not None
    srcs = np.unique(m.pay["source"].to_numpy())
    pos = np.full(len(funding), -1, dtype=np.int64)
    pos[srcs] = np.arange(len(srcs))
    ids = funding.index[srcs]
    rows = m.lp.add_constraints(
        "funding", pd.DataFrame({"source_id": ids}), pos[m.pay["source"].to_numpy()],
        m.pay["col"].to_numpy(), m.pay_coef * np.ones(len(m.pay)), -INF,
        funding["amount"].to_numpy(dtype=float)[srcs] / m.cost_scale)
    m.funding_rows = pd.Series(rows, index=ids)


def add_capacity_limits(m: AllocationModel) -> None:
    """An agency's load <= its capacity_days (rows only where the limit can bind)."""
    t = m.triples
    if t.empty:
        return
    total = (t["load"] * members(t)).groupby(t["agency_id"], sort=False).sum()
    cap = m.instance.agencies["capacity_days"].reindex(total.index)
    binding = total.index[total.to_numpy() > cap.to_numpy() + 1e-9]
    if binding.empty:
        return
    sel = t["agency_id"].isin(binding).to_numpy()
    codes, labels = _codes(t.loc[sel, "agency_id"])
    m.lp.add_constraints("capacity", labels, codes, m.x[sel], t.loc[sel, "load"].to_numpy(),
                         -INF, cap.loc[labels["agency_id"]].to_numpy())


def add_district_min_coverage(m: AllocationModel) -> None:
    """Served weight in a district >= min_district_ratio x the weight of all its demands."""
    ratio = m.instance.policy.min_district_ratio
    if ratio <= 0:
        return
    dem = m.instance.demands
    need = dem.groupby("district_id", sort=False)["weight"].sum() * ratio
    need = need[need > 0]
    if need.empty:
        return
    ds = m.demands_served
    sel = ds["district_id"].isin(need.index).to_numpy() if ds is not None else np.zeros(0, bool)
    labels = need.index.to_frame(index=False)
    pos = pd.Series(np.arange(len(need)), index=need.index)
    rows = pos.loc[ds.loc[sel, "district_id"]].to_numpy() if sel.any() else np.zeros(0, int)
    m.lp.add_constraints("district_min_coverage", labels, rows, m.served[sel],
                         ds.loc[sel, "weight"].to_numpy() if sel.any() else np.zeros(0),
                         need.to_numpy(), INF)


def add_activity_variables(m: AllocationModel) -> None:
    """active[a,d] in {0,1} iff agency a serves >= 1 demand in district d (both directions)."""
    pol, t = m.instance.policy, m.triples
    if t.empty or (pol.min_agencies_per_district <= 0 and pol.max_districts_per_agency is None):
        return
    codes, labels = _codes(t[["agency_id", "district_id"]])
    cols = m.lp.add_variables("active", labels, 0, 1, True)
    m.active = labels.assign(col=cols)
    n, k = len(t), len(labels)
    # active[a,d] - sum x over (a,d) <= 0: no credit for an agency that serves nothing there
    rows = np.concatenate([codes, np.arange(k)])
    m.lp.add_constraints("active_only_if_serving", labels, rows, np.concatenate([m.x, cols]),
                         np.concatenate([-np.ones(n), np.ones(k)]), -INF, 0.0)
    if pol.max_districts_per_agency is not None and n <= TIGHT_ACTIVITY_MAX_TRIPLES:
        # x[e,s,a] - active[a,d] <= 0 per triple: the tight form, because a cap on the number
        # of districts an agency works in must see every district it really serves
        link = t[["enterprise_id", "service_id", "agency_id"]]
        rows = np.concatenate([np.arange(n), np.arange(n)])
        m.lp.add_constraints("active_if_serving", link, rows,
                             np.concatenate([m.x, cols[codes]]),
                             np.concatenate([np.ones(n), -members(t)]), -INF, 0.0)
    else:
        # One aggregated row per (a,d): sum x <= its members x active, exact for whole x.
        # Without a districts cap only lower bounds on activity are in force (min agencies)
        # and raising active[a,d] never hurts them, so this direction never binds; with the
        # cap on a large model the per-triple rows left the LP unsolved (above).
        size = np.bincount(codes, members(t), minlength=k)
        rows = np.concatenate([codes, np.arange(k)])
        m.lp.add_constraints("active_if_serving", labels, rows, np.concatenate([m.x, cols]),
                             np.concatenate([np.ones(n), -size]), -INF, 0.0)


def add_min_agencies_per_district(m: AllocationModel) -> None:
    """In a district with a served demand, >= min_agencies_per_district active agencies."""
    k = m.instance.policy.min_agencies_per_district
    if k <= 0 or m.active is None or m.open is None:
        return
    districts = m.open.index
    pos = pd.Series(np.arange(len(districts)), index=districts)
    rows = np.concatenate([pos.loc[m.active["district_id"]].to_numpy(),
                           np.arange(len(districts))])
    cols = np.concatenate([m.active["col"].to_numpy(), m.open.to_numpy()])
    vals = np.concatenate([np.ones(len(m.active)), -float(k) * np.ones(len(districts))])
    m.lp.add_constraints("min_agencies", districts.to_frame(index=False), rows, cols, vals,
                         0.0, INF)


def add_district_share_caps(m: AllocationModel) -> None:
    """An agency's spend in a district <= max_share_in_district x the district's spend.

    Written over the district's x directly (one row: (1 - share) x own cost - share x the
    other agencies' cost <= 0) while that stays under DENSE_SHARE_MAX_NONZEROS, where HiGHS
    propagates and rounds far better than through the spend column (docs/tuning-log.md,
    "Share caps over x"). Larger models use spend, and so do backends that ask for it.
    """
    share = m.instance.policy.max_share_in_district
    t = m.triples
    if share is None or share >= 1 or t.empty or m.district_cost is None:
        return
    codes, labels = _codes(t[["agency_id", "district_id"]])
    per_district = t.groupby("district_id", sort=False).size()
    pairs_per_district = labels.groupby("district_id", sort=False).size()
    dense_nnz = int((per_district * pairs_per_district.reindex(per_district.index)).sum())
    if m.direct_share_rows and dense_nnz <= DENSE_SHARE_MAX_NONZEROS:
        pairs = labels.assign(row=np.arange(len(labels)))
        own = t[["agency_id", "district_id"]].assign(j=np.arange(len(t)))
        both = pairs.merge(own, on="district_id", suffixes=("", "_j"))
        j = both["j"].to_numpy()
        same = (both["agency_id"] == both["agency_id_j"]).to_numpy()
        vals = m.scaled_cost()[j] * (same - share)
        m.lp.add_constraints("district_share", labels, both["row"].to_numpy(), m.x[j], vals,
                             -INF, 0.0)
        return
    dcols = m.district_cost.loc[labels["district_id"]].to_numpy()
    rows = np.concatenate([codes, np.arange(len(labels))])
    cols = np.concatenate([m.x, dcols])
    vals = np.concatenate([m.scaled_cost(), -share * np.ones(len(labels))])
    m.lp.add_constraints("district_share", labels, rows, cols, vals, -INF, 0.0)


def add_city_share_caps(m: AllocationModel) -> None:
    """An agency's spend city-wide <= max_share_in_city x total spend (when set)."""
    share = m.instance.policy.max_share_in_city
    t = m.triples
    if share is None or share >= 1 or t.empty or m.district_cost is None:
        return
    codes, labels = _codes(t["agency_id"])
    dcols = m.district_cost.to_numpy()
    nd, na = len(dcols), len(labels)
    rows = np.concatenate([codes, np.repeat(np.arange(na), nd)])
    cols = np.concatenate([m.x, np.tile(dcols, na)])
    vals = np.concatenate([m.scaled_cost(), -share * np.ones(na * nd)])
    m.lp.add_constraints("city_share", labels, rows, cols, vals, -INF, 0.0)


def add_districts_per_agency_caps(m: AllocationModel) -> None:
    """An agency is active in at most max_districts_per_agency districts (when set)."""
    cap = m.instance.policy.max_districts_per_agency
    if cap is None or m.active is None:
        return
    counts = m.active.groupby("agency_id", sort=False)["col"].size()
    over = counts.index[counts.to_numpy() > cap]
    if over.empty:
        return
    sel = m.active[m.active["agency_id"].isin(over)]
    codes, labels = _codes(sel["agency_id"])
    m.lp.add_constraints("districts_per_agency", labels, codes, sel["col"].to_numpy(),
                         np.ones(len(sel)), -INF, float(cap))


def add_objectives(m: AllocationModel) -> None:
    """Lexicographic levels: served weight, then weight x quality, then cost."""
    t, n = m.triples, m.lp.n_vars

    def over_x(values: np.ndarray) -> np.ndarray:
        c = np.zeros(n)
        c[m.x] = values
        return c

    w = t["weight"].to_numpy(dtype=float)
    coverage = np.zeros(n)  # cost (level 3) is the government's spend
    if m.served.size:
        coverage[m.served] = m.demands_served["weight"].to_numpy(dtype=float)
    # When every demand that can be served must be (all mandatory), coverage is the same in
    # every plan; if moreover each demand's agencies share one quality, so is quality. Such
    # levels need no search of their own (GAP-like instances: only cost is left to optimise).
    all_fixed = bool(m.served.size) and bool(
        m.demands_served["risk_level"].isin(m.instance.policy.mandatory_levels).all())
    same_quality = bool(t.groupby("demand")["quality"].nunique().le(1).all()) if len(t) else True
    m.levels = [
        Level(COVERAGE, coverage, "max", constant=all_fixed),
        Level(QUALITY, over_x(w * t["quality"].to_numpy(dtype=float)), "max",
              constant=all_fixed and same_quality),
        Level(COST, over_x(m.scaled_gov()), "min", unit=m.cost_scale),
    ]


def add_pinned_assignments(m: AllocationModel) -> None:
    """An `assign` pin fixes its agency on its demand: x[e,s,a] >= 1, one row `pin[e,s,a]`
    each (the demand's other triples are already kept out by eligibility, reason pinned)."""
    pinned = pinned_triples(m.instance, m.triples)
    if not pinned.any():
        return
    k = int(pinned.sum())
    labels = m.triples.loc[pinned, ["enterprise_id", "service_id", "agency_id"]]
    m.lp.add_constraints("pin", labels, np.arange(k), m.x[pinned], np.ones(k), 1.0, INF)


def add_max_changes(m: AllocationModel) -> None:
    """Demands whose incumbent is still eligible and that move to another agency or go
    unserved number at most max_changes x such demands (rounded down): one row
    `max_changes[city]`, sum of the incumbent triples' x >= K - allowed."""
    ratio = m.instance.policy.max_changes
    if ratio is None:
        return
    mine = incumbent_triples(m.instance, m.triples)
    k = int(mine.sum())
    allowed = allowed_changes(ratio, k)
    if k == 0 or allowed >= k:
        return
    labels = pd.DataFrame({"scope": ["city"], "eligible_incumbents": [k]})
    m.lp.add_constraints("max_changes", labels, np.zeros(k), m.x[mine], np.ones(k),
                         float(k - allowed), INF)


def add_stability_level(m: AllocationModel) -> None:
    """With incumbents and continuity.keep_incumbents: a level right after coverage that
    maximises the served weight kept with its incumbent agency."""
    if not stability_on(m.instance):
        return
    mine = incumbent_triples(m.instance, m.triples)
    coefs = np.zeros(m.lp.n_vars)
    coefs[m.x[mine]] = m.triples.loc[mine, "weight"].to_numpy(dtype=float)
    level = Level(STABILITY, coefs, "max", constant=not bool(np.any(coefs)))
    at = next((k + 1 for k, lv in enumerate(m.levels) if lv.name == COVERAGE), 0)
    m.levels.insert(at, level)


def mark_district_groups(m: AllocationModel) -> None:
    """Tag each column with its district's number (-1: none), for the solver's
    neighbourhood search: where a city-wide search stalls, a plan still improves when one
    district's assignments are reopened at a time."""
    t = m.triples
    if t.empty:
        return
    codes, uniques = pd.factorize(t["district_id"])
    number = pd.Series(np.arange(len(uniques)), index=uniques)
    groups = np.full(m.lp.n_vars, -1, dtype=np.int64)
    groups[m.x] = codes
    if m.served.size:
        groups[m.served] = number.loc[m.demands_served["district_id"]].to_numpy()
    if m.active is not None:
        groups[m.active["col"].to_numpy()] = number.loc[m.active["district_id"]].to_numpy()
    for series in (m.open, m.district_cost):
        if series is not None:
            groups[series.to_numpy()] = number.loc[series.index].to_numpy()
    m.lp.column_groups = groups


def cost_scale(triples: pd.DataFrame) -> float:
    """A power of ten near the typical triple cost, so money rows are O(1) like the others.

    Badly scaled rows (costs ~1e5 beside 0/1 links) slow the LP down many times over.
    """
    if triples.empty:
        return 1.0
    typical = float(np.median(triples["cost"].to_numpy(dtype=float)))
    return float(10 ** np.floor(np.log10(typical))) if typical >= 10 else 1.0


def build_model(instance: Instance, elig: Eligibility,
                direct_share_rows: bool = True, integer_flows: bool = False) -> AllocationModel:
    """Spec section 4 as a MIP: variables, then one rule family per call, then objectives.

    `direct_share_rows=False` writes share caps through the district spend columns (the
    same rule; see add_district_share_caps). `integer_flows` makes the funding split's pay
    columns whole cents (backends with integer columns only)."""
    m = AllocationModel(instance=instance, triples=elig.triples,
                        cost_scale=cost_scale(elig.triples), direct_share_rows=direct_share_rows,
                        integer_flows=integer_flows)
    add_government_costs(m)
    add_assignment_variables(m)
    add_district_cost_definitions(m)
    add_district_open_variables(m)
    record_unservable_mandatory(m)
    add_served_variables(m)
    add_serve_at_most_once(m)
    add_mandatory_service(m)
    add_open_district_links(m)
    add_total_budget(m)
    add_district_budget_caps(m)
    add_funding_flow(m)
    add_funding_limits(m)
    add_capacity_limits(m)
    add_district_min_coverage(m)
    add_activity_variables(m)
    add_min_agencies_per_district(m)
    add_district_share_caps(m)
    add_city_share_caps(m)
    add_districts_per_agency_caps(m)
    add_pinned_assignments(m)
    add_max_changes(m)
    add_objectives(m)
    add_stability_level(m)
    mark_district_groups(m)
    return m


def build_class_model(instance: Instance, triples: pd.DataFrame, size: np.ndarray,
                      direct_share_rows: bool = True) -> AllocationModel:
    """The model over classes of identical demands: each row of `triples` (a triple of a
    class's representative demand) stands for the class's `size` members, and x counts how
    many of them the agency serves. Every rule is the same linear rule over the counts, so
    the model is exact where members are alike for every rule (pipeline/large_scale/classes).
    Mandatory demands missing from `triples` are not recorded (their class stands in)."""
    t = triples.reset_index(drop=True).assign(members=np.asarray(size, dtype=float))
    m = build_model(instance, Eligibility(t, pd.DataFrame()), direct_share_rows)
    m.unservable_mandatory = None
    return m


def plan_rows(triples: pd.DataFrame, demand: np.ndarray, start: pd.DataFrame) -> np.ndarray:
    """Positions in `triples` of a plan given as assignment rows (enterprise_id, service_id,
    agency_id): rows not among them are dropped, and a demand keeps its first row."""
    keys = ["enterprise_id", "service_id", "agency_id"]
    t = triples[keys].astype(str).assign(pos=np.arange(len(triples)))
    pos = t.merge(start[keys].astype(str).drop_duplicates(), on=keys)["pos"].to_numpy()
    if len(pos) and len(demand):
        pos = pos[~pd.Series(demand[pos]).duplicated().to_numpy()]
    return np.sort(pos)


def point_from_triples(m: AllocationModel, chosen: np.ndarray,
                       counts: np.ndarray | None = None) -> np.ndarray:
    """A full column vector for a plan given as chosen triple numbers (for warm starts);
    in a class model `counts` says how many members each chosen row serves.

    Derived columns (district spend, agency activity, open districts) follow from x.
    """
    point = np.zeros(m.lp.n_vars)
    k = np.ones(len(chosen)) if counts is None else np.asarray(counts, dtype=float)
    point[m.x[chosen]] = k
    if m.served.size:
        np.add.at(point, m.served[m.demand_of_triple[chosen]], k)
    t = m.triples.iloc[chosen]
    if m.district_cost is not None:
        spend = (t["cost"] * k).groupby(t["district_id"]).sum()
        point[m.district_cost.to_numpy()] = spend.reindex(m.district_cost.index).fillna(
            0.0).to_numpy() / m.cost_scale
    if m.active is not None:
        used = pd.MultiIndex.from_frame(t[["agency_id", "district_id"]])
        on = pd.MultiIndex.from_frame(m.active[["agency_id", "district_id"]]).isin(used)
        point[m.active["col"].to_numpy()] = on.astype(float)
    if m.open is not None:
        point[m.open.to_numpy()] = m.open.index.isin(t["district_id"]).astype(float)
    if m.pay is not None and len(m.pay) and m.group_members is not None:
        funding = m.instance.funding
        assert funding is not None
        supply = np.bincount(m.triple_group[chosen], m.gov[chosen] * k,
                             minlength=len(m.group_members))
        flows = warm_split(supply, m.group_members, funding["amount"].to_numpy(dtype=float))
        per_unit = m.pay_coef * m.cost_scale  # currency per unit of a pay column
        value = flows[m.pay["group"].to_numpy(), m.pay["source"].to_numpy()] / per_unit
        point[m.pay["col"].to_numpy()] = np.ceil(value) if m.integer_flows else value
    return point
