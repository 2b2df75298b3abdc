"""The allocation MIP of spec section 4, one function per rule family.

`build_model` reads like the spec's list of rules. Every rule adds a named block of rows over
the data's ids and returns early when its index set is empty or the rule is off. No solver is
imported here: the result is a `linear.LinearModel` plus the three objective levels.

Formulation notes (all exact reformulations of the spec):
- x[e,s,a] binary per eligible triple; `serve_once[e,s]`: sum_a x <= 1 (= 1 if mandatory),
  or <= open[d] when the minimum-agencies rule is on, which both forbids double service and
  ties "district has a served demand" to its demands without a big-M.
- active[a,d] binary with both directions: x[e,s,a] <= active[a,d] per triple (tight) and
  active[a,d] <= sum of those x, so an agency counts only if it really serves.
- district spend cost[d] is a continuous column defined by one row, so a share cap is
  sparse: spend of a in d - share * cost[d] <= 0.
- capacity rows are left out when an agency's eligible load cannot exceed its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocator.eligibility import Eligibility
from allocator.instance import Instance
from allocator.linear import INF, LinearModel

COVERAGE, QUALITY, COST = "coverage", "quality", "cost"


@dataclass(frozen=True)
class Level:
    """One level of the lexicographic objective: coefficients over all columns and a sense."""

    name: str
    coefs: np.ndarray
    sense: str  # "max" or "min"


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


def _codes(values: pd.Series | pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Group number of each row and the groups' labels, both in order of first appearance."""
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    cols = list(frame.columns)
    codes = frame.groupby(cols, sort=False).ngroup().to_numpy()
    labels = frame.drop_duplicates().reset_index(drop=True)
    return codes, labels


def add_assignment_variables(m: AllocationModel) -> None:
    """x[e,s,a] in {0,1}: agency a serves enterprise e's need for service s."""
    t = m.triples
    m.x = m.lp.add_variables("x", t[["enterprise_id", "service_id", "agency_id"]], 0, 1, True)


def add_district_cost_definitions(m: AllocationModel) -> None:
    """cost[d] = spend in district d (continuous); used by budget, caps and share rules."""
    t = m.triples
    if t.empty:
        return
    codes, labels = _codes(t["district_id"])
    cols = m.lp.add_variables("cost", labels, 0.0, INF, integer=False)
    m.district_cost = pd.Series(cols, index=labels["district_id"])
    rows = np.concatenate([codes, np.arange(len(labels))])
    vars_ = np.concatenate([m.x, cols])
    vals = np.concatenate([t["cost"].to_numpy(), -np.ones(len(labels))])
    m.lp.add_constraints("district_cost", labels, rows, vars_, vals, 0.0, 0.0)


def add_district_open_variables(m: AllocationModel) -> None:
    """open[d] in {0,1}: district d has a served demand (only when min agencies is on)."""
    t = m.triples
    if t.empty or m.instance.policy.min_agencies_per_district <= 0:
        return
    _, labels = _codes(t["district_id"])
    cols = m.lp.add_variables("open", labels, 0, 1, True)
    m.open = pd.Series(cols, index=labels["district_id"])


def add_serve_at_most_once(m: AllocationModel) -> None:
    """Each demand is served by at most one agency, never split; mandatory ones exactly once."""
    t, pol = m.triples, m.instance.policy
    if t.empty:
        return
    codes, labels = _codes(t[["enterprise_id", "service_id"]])
    _, first_rows = np.unique(codes, return_index=True)
    first = t.iloc[first_rows]
    mandatory = first["risk_level"].isin(pol.mandatory_levels).to_numpy()
    rows, cols, vals = codes, m.x, np.ones(len(t))
    hi = np.ones(len(labels))
    if m.open is not None:
        opened = m.open.loc[first["district_id"]].to_numpy()
        rows = np.concatenate([rows, np.arange(len(labels))])
        cols = np.concatenate([cols, opened])
        vals = np.concatenate([vals, -np.ones(len(labels))])
        hi = np.zeros(len(labels))
    # mandatory: sum_a x >= 1 here, or in serve_mandatory when open[d] is on the row
    lo = np.where(mandatory & (m.open is None), 1.0, -INF)
    m.lp.add_constraints("serve_once", labels, rows, cols, vals, lo, hi)
    if m.open is not None and mandatory.any():
        add_mandatory_service(m, codes, labels, mandatory)


def add_mandatory_service(m: AllocationModel, codes: np.ndarray, labels: pd.DataFrame,
                          mandatory: np.ndarray) -> None:
    """Demands at mandatory risk levels are served (sum_a x = 1), when open[d] is in play."""
    keep = mandatory[codes]
    local = np.cumsum(mandatory) - 1
    m.lp.add_constraints("serve_mandatory", labels[mandatory], local[codes[keep]], m.x[keep],
                         np.ones(int(keep.sum())), 1.0, 1.0)


def record_unservable_mandatory(m: AllocationModel) -> None:
    """Mandatory demands with no eligible triple make the model infeasible before solving."""
    dem, pol = m.instance.demands, m.instance.policy
    mandatory = dem[dem["risk_level"].isin(pol.mandatory_levels)]
    has = mandatory.index.isin(m.triples["demand"])
    m.unservable_mandatory = mandatory[~has]


def add_total_budget(m: AllocationModel) -> None:
    """Total spend <= budget.total."""
    if m.district_cost is None:
        return
    cols = m.district_cost.to_numpy()
    m.lp.add_constraints("budget", pd.DataFrame({"scope": ["city"]}), np.zeros(len(cols)), cols,
                         np.ones(len(cols)), -INF, m.instance.policy.budget_total)


def add_district_budget_caps(m: AllocationModel) -> None:
    """District spend <= its budget_cap, where one is given."""
    if m.district_cost is None:
        return
    caps = m.instance.districts["budget_cap"].reindex(m.district_cost.index)
    caps = caps[caps.notna()]
    if caps.empty:
        return
    cols = m.district_cost.loc[caps.index].to_numpy()
    m.lp.add_constraints("district_budget_cap", caps.index.to_frame(index=False),
                         np.arange(len(cols)), cols, np.ones(len(cols)), -INF, caps.to_numpy())


def add_capacity_limits(m: AllocationModel) -> None:
    """An agency's load <= its capacity_days (rows only where the limit can bind)."""
    t = m.triples
    if t.empty:
        return
    total = t.groupby("agency_id", sort=False)["load"].sum()
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
    dem, t = m.instance.demands, m.triples
    need = dem.groupby("district_id", sort=False)["weight"].sum() * ratio
    need = need[need > 0]
    if need.empty:
        return
    sel = t["district_id"].isin(need.index).to_numpy()
    labels = need.index.to_frame(index=False)
    pos = pd.Series(np.arange(len(need)), index=need.index)
    rows = pos.loc[t.loc[sel, "district_id"]].to_numpy()
    m.lp.add_constraints("district_min_coverage", labels, rows, m.x[sel],
                         t.loc[sel, "weight"].to_numpy(), need.to_numpy(), INF)


def add_activity_variables(m: AllocationModel) -> None:
    """active[a,d] in {0,1} iff agency a serves >= 1 demand in district d (both directions)."""
    pol, t = m.instance.policy, m.triples
    if t.empty or (pol.min_agencies_per_district <= 0 and pol.max_districts_per_agency is None):
        return
    codes, labels = _codes(t[["agency_id", "district_id"]])
    cols = m.lp.add_variables("active", labels, 0, 1, True)
    m.active = labels.assign(col=cols)
    n = len(t)
    # x[e,s,a] - active[a,d] <= 0, one row per triple: the tight direction
    link = t[["enterprise_id", "service_id", "agency_id"]]
    rows = np.concatenate([np.arange(n), np.arange(n)])
    m.lp.add_constraints("active_if_serving", link, rows, np.concatenate([m.x, cols[codes]]),
                         np.concatenate([np.ones(n), -np.ones(n)]), -INF, 0.0)
    # active[a,d] - sum x over (a,d) <= 0: no credit for an agency that serves nothing there
    rows = np.concatenate([codes, np.arange(len(labels))])
    m.lp.add_constraints("active_only_if_serving", labels, rows, np.concatenate([m.x, cols]),
                         np.concatenate([-np.ones(n), np.ones(len(labels))]), -INF, 0.0)


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
    """An agency's spend in a district <= max_share_in_district x the district's spend."""
    share = m.instance.policy.max_share_in_district
    t = m.triples
    if share is None or share >= 1 or t.empty or m.district_cost is None:
        return
    codes, labels = _codes(t[["agency_id", "district_id"]])
    dcols = m.district_cost.loc[labels["district_id"]].to_numpy()
    rows = np.concatenate([codes, np.arange(len(labels))])
    cols = np.concatenate([m.x, dcols])
    vals = np.concatenate([t["cost"].to_numpy(), -share * np.ones(len(labels))])
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
    vals = np.concatenate([t["cost"].to_numpy(), -share * np.ones(na * nd)])
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
    m.levels = [
        Level(COVERAGE, over_x(w), "max"),
        Level(QUALITY, over_x(w * t["quality"].to_numpy(dtype=float)), "max"),
        Level(COST, over_x(t["cost"].to_numpy(dtype=float)), "min"),
    ]


def build_model(instance: Instance, elig: Eligibility) -> AllocationModel:
    """Spec section 4 as a MIP: variables, then one rule family per call, then objectives."""
    m = AllocationModel(instance=instance, triples=elig.triples)
    add_assignment_variables(m)
    add_district_cost_definitions(m)
    add_district_open_variables(m)
    record_unservable_mandatory(m)
    add_serve_at_most_once(m)
    add_total_budget(m)
    add_district_budget_caps(m)
    add_capacity_limits(m)
    add_district_min_coverage(m)
    add_activity_variables(m)
    add_min_agencies_per_district(m)
    add_district_share_caps(m)
    add_city_share_caps(m)
    add_districts_per_agency_caps(m)
    add_objectives(m)
    return m


def point_from_triples(m: AllocationModel, chosen: np.ndarray) -> np.ndarray:
    """A full column vector for a plan given as chosen triple numbers (for warm starts).

    Derived columns (district spend, agency activity, open districts) follow from x.
    """
    point = np.zeros(m.lp.n_vars)
    point[m.x[chosen]] = 1.0
    t = m.triples.iloc[chosen]
    if m.district_cost is not None:
        spend = t.groupby("district_id")["cost"].sum()
        point[m.district_cost.to_numpy()] = spend.reindex(m.district_cost.index).fillna(
            0.0).to_numpy()
    if m.active is not None:
        used = pd.MultiIndex.from_frame(t[["agency_id", "district_id"]])
        on = pd.MultiIndex.from_frame(m.active[["agency_id", "district_id"]]).isin(used)
        point[m.active["col"].to_numpy()] = on.astype(float)
    if m.open is not None:
        point[m.open.to_numpy()] = m.open.index.isin(t["district_id"]).astype(float)
    return point
