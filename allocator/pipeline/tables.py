"""The plan's tables (spec section 5): assignments, unserved with reasons, agencies, districts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.data.funding import government_cost, has_funding, scope_groups, source_cover
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, plain_ids
from allocator.model.flow import max_flow
from allocator.pipeline.funding import plan_split, to_cents
from allocator.pipeline.result import (
    AGENCY_COLUMNS,
    DISTRICT_COLUMNS,
    FUNDED_BY,
    NAME_COLUMNS,
    TRIPLE_COLUMNS,
    UNSERVED_COLUMNS,
    assignment_columns,
)


def plan_tables(instance: Instance, elig: Eligibility, chosen: np.ndarray
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """assignments, unserved, agencies, districts for the chosen triple numbers."""
    t = elig.triples
    a = plain_ids(t.iloc[np.asarray(chosen, dtype=np.int64)][TRIPLE_COLUMNS]
                  .reset_index(drop=True))
    a = with_payers(instance, with_names(instance, a))
    dem = instance.demands
    served = np.zeros(len(dem), dtype=bool)
    served[t["demand"].to_numpy()[np.asarray(chosen, dtype=np.int64)]] = True
    unserved = dem.loc[~served].copy()
    unserved = unserved.join(explain_unserved(instance, elig, a, unserved.index))
    unserved = with_names(instance, unserved.reset_index(drop=True))[UNSERVED_COLUMNS]
    return a, unserved, agency_table(instance, a), district_table(instance, a)


def with_payers(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """Assignment rows with their cost split between payers: government_cost (budget, caps
    and funding apply to it), enterprise_cost (co-payment) and, with funding.csv, funded_by
    (the canonical split, pipeline/funding)."""
    gov = government_cost(instance.policy, a["cost"].to_numpy(dtype=float),
                          a["risk_level"].to_numpy())
    a = a.assign(government_cost=gov, enterprise_cost=a["cost"].to_numpy(dtype=float) - gov)
    split = plan_split(instance, a)
    if split is not None:
        a[FUNDED_BY] = split.funded_by.to_numpy()
    return a[assignment_columns(split is not None)]


def with_names(instance: Instance, frame: pd.DataFrame) -> pd.DataFrame:
    """frame with the name of each id it holds (enterprise, service, agency, district) in a
    column of its own (NAME_COLUMNS), so a table read in a spreadsheet needs no lookup."""
    tables = {"enterprise_id": instance.enterprises, "service_id": instance.services,
              "agency_id": instance.agencies, "district_id": instance.districts}
    out = frame.copy()
    for col, name_col in NAME_COLUMNS.items():
        if col in out.columns:
            names = tables[col]["name"]
            out[name_col] = out[col].astype(str).map(names).fillna("").astype(object)
    return out


def agency_table(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """One row per agency of the pool: its lot (demands, load, value, districts)."""
    ag = instance.agencies
    grp = a.groupby("agency_id", sort=False)
    out = pd.DataFrame(index=ag.index)
    out["demands"] = grp.size().reindex(ag.index).fillna(0).astype(int)
    out["load"] = grp["load"].sum().reindex(ag.index).fillna(0.0)
    out["capacity_days"] = ag["capacity_days"]
    cap = out["capacity_days"].replace(0, np.nan)
    out["utilization"] = (out["load"] / cap).fillna(0.0)  # rounded once, when written
    out["contract_value"] = grp["cost"].sum().reindex(ag.index).fillna(0.0)
    out["districts"] = grp["district_id"].agg(lambda s: ";".join(pd.unique(s))).reindex(
        ag.index).fillna("")
    out["agency_name"], out["status"], out["quality"] = ag["name"], ag["status"], ag["quality"]
    return out.reset_index()[AGENCY_COLUMNS]


def district_table(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """One row per district: spend, cap, weights, agencies and the largest agency share."""
    dist, dem, pol = instance.districts, instance.demands, instance.policy
    out = pd.DataFrame(index=dist.index)
    cost = a.groupby("district_id")["cost"].sum()
    out["cost"] = cost.reindex(dist.index).fillna(0.0)
    gov = a.groupby("district_id")["government_cost"].sum()
    out["government_cost"] = gov.reindex(dist.index).fillna(0.0)
    out["budget_cap"] = dist["budget_cap"]
    out["weight_total"] = dem.groupby("district_id")["weight"].sum().reindex(dist.index).fillna(0)
    out["weight_served"] = a.groupby("district_id")["weight"].sum().reindex(dist.index).fillna(0)
    out["coverage_ratio"] = (out["weight_served"] / out["weight_total"].replace(0, np.nan)
                             ).fillna(0.0)
    out["agencies"] = a.groupby("district_id")["agency_id"].nunique().reindex(
        dist.index).fillna(0).astype(int)
    by_agency = a.groupby(["district_id", "agency_id"])["cost"].sum()
    top = by_agency.groupby(level="district_id").max().reindex(dist.index)
    out["max_agency_share"] = (top / out["cost"].replace(0, np.nan)).fillna(0.0)
    out["district_name"] = dist["name"]
    out["demands"] = dem.groupby("district_id").size().reindex(dist.index).fillna(0).astype(int)
    out["demands_served"] = a.groupby("district_id").size().reindex(dist.index).fillna(0).astype(
        int)
    mand = dem[dem["risk_level"].isin(pol.mandatory_levels)]
    out["mandatory_total"] = mand.groupby("district_id").size().reindex(dist.index).fillna(
        0).astype(int)
    out["mandatory_served"] = a[a["risk_level"].isin(pol.mandatory_levels)].groupby(
        "district_id").size().reindex(dist.index).fillna(0).astype(int)
    return out.reset_index()[DISTRICT_COLUMNS]


#: reasons a demand with eligible agencies is left out, in the order they are tried: the first
#: rule that every eligible offer of the demand, added alone to the plan, would break
UNSERVED_RULES = ("no_funding_source", "budget", "district_budget_cap", "funding", "capacity",
                  "district_share", "city_share", "min_agencies", "districts_per_agency")
#: every offer breaks some rule, but no one rule is broken by all of them
SEVERAL = "several_rules"
#: some eligible offer breaks no rule: the plan left the demand out within the MIP gap
GAP = "gap"


UNSERVED_TEXTS = {
    "no_funding_source": "no funding source may pay for it (funding.csv scopes)",
    "budget": "even its cheapest eligible offer would take the plan over the budget",
    "district_budget_cap": "even its cheapest eligible offer would take its district over "
                           "budget_cap",
    "funding": "even its cheapest eligible offer would cost more than the funding sources "
               "that may pay for it have left",
    "capacity": "every eligible agency is at capacity (this demand would exceed its "
                "capacity_days)",
    "district_share": "every eligible agency would exceed its share of the district's spend",
    "city_share": "every eligible agency would exceed its share of the city's spend",
    "min_agencies": "its district has no served demand, and one agency alone is too few to "
                    "open it",
    "districts_per_agency": "every eligible agency already works in its maximum number of "
                            "districts",
    GAP: "an eligible agency could take it without breaking a rule; the plan left it out "
         "within the MIP gap",
}


def _id_codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each id in index (categorical codes when the categories are index)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.equals(index):
        return values.cat.codes.to_numpy().astype(np.int64)
    return index.get_indexer(values.astype(str)).astype(np.int64)


def explain_unserved(instance: Instance, elig: Eligibility, a: pd.DataFrame,
                     demand_ids: pd.Index) -> pd.DataFrame:
    """For each unserved demand, a reason that is true of the plan (the auditor re-derives it).

    no_eligible_agency: no agency passes the eligibility rules. zero_weight: its weight is 0,
    so serving it adds nothing. Else each eligible offer is added alone to the plan: the
    reason is the first rule (UNSERVED_RULES order) that every offer would break, e.g.
    `budget` only when even the cheapest offer would exceed it; several_rules when each
    offer breaks some rule but no one rule is broken by all; gap when some offer breaks
    none (the plan left the demand out within the MIP gap). Vectorised over integer codes
    (millions of offers at province scale).
    """
    pol = instance.policy
    t = elig.triples
    n_dem = len(instance.demands)
    ids = np.asarray(demand_ids, dtype=np.int64)
    t_dem = t["demand"].to_numpy()
    out = pd.DataFrame(index=demand_ids)
    out["eligible_agencies"] = np.bincount(t_dem, minlength=n_dem)[ids].astype(int)
    out["reason"] = "no_eligible_agency"
    out["detail"] = "no agency passes the eligibility rules (see excluded.csv)"
    wanted = np.zeros(n_dem, dtype=bool)
    wanted[ids] = True
    rows = np.flatnonzero(wanted[t_dem])
    if not len(rows):
        return out
    ag_index, di_index = instance.agencies.index, instance.districts.index
    n_ag, n_di = len(ag_index), len(di_index)
    c_dem = t_dem[rows]
    c_ag = _id_codes(t["agency_id"], ag_index)[rows]
    c_di = _id_codes(t["district_id"], di_index)[rows]
    c_cost = t["cost"].to_numpy(dtype=float)[rows]
    c_load = t["load"].to_numpy(dtype=float)[rows]
    a_ag = _id_codes(a["agency_id"], ag_index)
    a_di = _id_codes(a["district_id"], di_index)
    a_cost = a["cost"].to_numpy(dtype=float)
    a_gov = (a["government_cost"].to_numpy(dtype=float) if "government_cost" in a.columns
             else a_cost)
    c_gov = government_cost(pol, c_cost, t["risk_level"].to_numpy()[rows])
    total = float(a_cost.sum())
    total_gov = float(a_gov.sum())
    d_cost = np.bincount(a_di, a_cost, minlength=n_di)
    d_gov = np.bincount(a_di, a_gov, minlength=n_di)
    ag_cost = np.bincount(a_ag, a_cost, minlength=n_ag)
    ag_load = np.bincount(a_ag, a["load"].to_numpy(dtype=float), minlength=n_ag)
    pair = a_ag * n_di + a_di
    pairs, inverse = np.unique(pair, return_inverse=True)
    pair_cost = np.bincount(inverse, a_cost, minlength=len(pairs))
    active = np.bincount(pairs % n_di, minlength=n_di) if len(pairs) else np.zeros(n_di, int)
    n_districts = np.bincount(pairs // n_di, minlength=n_ag) if len(pairs) else np.zeros(
        n_ag, int)
    c_pair = c_ag * n_di + c_di
    adc = np.zeros(len(rows))  # the agency's spend in the offer's district
    if len(pairs):
        at = np.searchsorted(pairs, c_pair).clip(max=len(pairs) - 1)
        hit = pairs[at] == c_pair
        adc[hit] = pair_cost[at[hit]]
    dc = d_cost[c_di]
    dg = d_gov[c_di]
    cap = instance.districts["budget_cap"].to_numpy(dtype=float)[c_di]
    unfunded, room = funding_room(instance, a, c_dem)
    capacity = instance.agencies["capacity_days"].to_numpy(dtype=float)[c_ag]
    none = np.zeros(len(rows), dtype=bool)
    with np.errstate(invalid="ignore"):
        tests = [
            unfunded,
            total_gov + c_gov > pol.budget_limit * (1 + 1e-9),
            (dg + c_gov > cap * (1 + 1e-9)) & ~np.isnan(cap),
            c_gov > room * (1 + 1e-9) + 0.005,
            ag_load[c_ag] + c_load > capacity + 1e-9,
            none if pol.max_share_in_district is None else
            adc + c_cost > pol.max_share_in_district * (dc + c_cost) * (1 + 1e-9),
            none if pol.max_share_in_city is None else
            ag_cost[c_ag] + c_cost > pol.max_share_in_city * (total + c_cost) * (1 + 1e-9),
            (active[c_di] == 0) & (pol.min_agencies_per_district > 1),
            none if pol.max_districts_per_agency is None else
            ~(adc > 0) & (n_districts[c_ag] >= pol.max_districts_per_agency),
        ]
    # per demand: how many of its offers break each rule, and how many break none
    ids_sorted = np.unique(c_dem)
    local = np.searchsorted(ids_sorted, c_dem)
    n_offers = np.bincount(local, minlength=len(ids_sorted))
    broken = np.column_stack([np.bincount(local, np.asarray(m, dtype=float),
                                          minlength=len(ids_sorted)) for m in tests])
    free = np.bincount(local, (~np.any(np.column_stack(tests), axis=1)).astype(float),
                       minlength=len(ids_sorted)) > 0
    by_all = broken >= n_offers[:, None]  # rule k broken by every offer of the demand
    k = np.where(by_all.any(axis=1), by_all.argmax(axis=1), -1)
    codes = np.array(UNSERVED_RULES, dtype=object)
    reason = np.where(free, GAP, np.where(k >= 0, codes[k.clip(min=0)], SEVERAL))
    detail = pd.Series(reason, index=ids_sorted).map(UNSERVED_TEXTS)
    several = np.flatnonzero(reason == SEVERAL)
    if len(several):  # which rules the offers break, e.g. "budget 2, capacity 1"
        parts = pd.Series("", index=several, dtype=object)
        for j, code in enumerate(UNSERVED_RULES):
            n = pd.Series(broken[several, j].astype(int), index=several)
            parts = parts + (f"{code} " + n.astype(str) + ", ").where(n > 0, "")
        detail.iloc[several] = ("each eligible offer breaks a rule, none the same for all: "
                                + parts.str.rstrip(", ")).to_numpy()
    out.loc[ids_sorted, "reason"] = reason
    out.loc[ids_sorted, "detail"] = detail.to_numpy()
    zero = instance.demands.loc[demand_ids, "weight"] <= 0
    zero_ids = zero[zero].index.intersection(pd.Index(ids_sorted))
    out.loc[zero_ids, "reason"] = "zero_weight"
    out.loc[zero_ids, "detail"] = "its weight is 0: serving it would add nothing"
    return out


def funding_room(instance: Instance, a: pd.DataFrame, demands: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate demand (positions in instance.demands): whether no source may pay for
    it, and the most government cost its scope group could still be paid with the plan kept
    (a max-flow with the group's supply opened up: other groups may move to other sources).
    Infinite room without funding.csv."""
    n = len(demands)
    if not has_funding(instance) or n == 0:
        return np.zeros(n, dtype=bool), np.full(n, np.inf)
    f = instance.funding
    assert f is not None
    dem = instance.demands
    groups = scope_groups(source_cover(f, dem), f.index)
    n_g = len(groups.label)
    keys = pd.MultiIndex.from_frame(dem[["enterprise_id", "service_id"]].astype(str))
    at = keys.get_indexer(pd.MultiIndex.from_frame(a[["enterprise_id", "service_id"]]
                                                   .astype(str))) if len(a) else np.zeros(0, int)
    cents = to_cents(a["government_cost"].to_numpy(dtype=float)) if len(a) else np.zeros(0, int)
    supply = np.bincount(groups.code[at], cents, minlength=n_g).astype(np.int64)
    caps = to_cents(f["amount"].to_numpy(dtype=float))
    base, _ = max_flow(supply, groups.members, caps)
    room_g = np.zeros(n_g)
    big = int(caps.sum()) + 1
    for g in np.unique(groups.code[demands]):
        if groups.members[g].any():
            more = supply.copy()
            more[g] += big
            room_g[g] = (max_flow(more, groups.members, caps)[0] - base) / 100.0
    cand = groups.code[demands]
    return ~groups.members[cand].any(axis=1), room_g[cand]


def tables_of(instance: Instance, elig: Eligibility, chosen: np.ndarray | None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """assignments, unserved, agencies and districts of the chosen triples; empty frames
    with the spec's columns when there is no plan."""
    if chosen is not None:
        return plan_tables(instance, elig, chosen)
    return (pd.DataFrame(columns=assignment_columns(has_funding(instance))),
            pd.DataFrame(columns=UNSERVED_COLUMNS), pd.DataFrame(columns=AGENCY_COLUMNS),
            pd.DataFrame(columns=DISTRICT_COLUMNS))
