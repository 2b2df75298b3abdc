"""Stage 1 of the diagnosis: structural facts found by counting and max-flow, no solver."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd

from allocator.analysis.diagnose.funding import funding_shortage, unfunded_mandatory
from allocator.analysis.diagnose.reasons import (
    Reason,
    _listing,
    _mandatory_mask,
    _mandatory_phrase,
    _num,
    _pct,
)
from allocator.data.funding import government_cost
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility, candidate_reasons

#: person-days are scaled to integers for the max-flow (networkx is exact on integers)
FLOW_SCALE = 1000


def _usable_triples(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Eligible triples whose load fits the agency's whole capacity (others can never be used)."""
    t = elig.triples
    cap = t["agency_id"].map(instance.agencies["capacity_days"]).astype(float)
    return t[t["load"].to_numpy() <= cap.to_numpy() + 1e-9]


def forced_districts(instance: Instance, elig: Eligibility) -> pd.Index:
    """Districts the rules force to have a served demand: a mandatory demand with an eligible
    agency, or a positive minimum coverage."""
    t, pol, dem = elig.triples, instance.policy, instance.demands
    forced = pd.Index(t.loc[_mandatory_mask(instance, t), "district_id"].unique())
    if pol.min_district_ratio > 0:
        w = dem.groupby("district_id")["weight"].sum()
        forced = forced.union(pd.Index(w.index[w > 0]))
    return forced


def no_eligible_agency(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Mandatory demands with no eligible agency, one reason per enterprise, each candidate
    agency named with the rule that kept it out."""
    dem = instance.demands
    mand = dem[_mandatory_mask(instance, dem)]
    lost = mand[~mand.index.isin(elig.triples["demand"])]
    if lost.empty:
        return []
    # candidate_reasons fails on an empty candidate set, so ask only for demands that have one
    offered = pd.MultiIndex.from_frame(instance.bids[["service_id", "sector"]])
    quoted = pd.MultiIndex.from_frame(instance.quotes[["enterprise_id", "service_id"]])
    some = (pd.MultiIndex.from_frame(lost[["service_id", "sector"]]).isin(offered)
            | pd.MultiIndex.from_frame(lost[["enterprise_id", "service_id"]]).isin(quoted))
    why = pd.Series(dtype=object)
    if some.any():
        cand = candidate_reasons(instance, lost.index[some]).sort_values(["demand", "agency_id"])
        cand["text"] = cand["agency_id"].astype(str) + " (" + cand["detail"].astype(str) + ")"
        why = cand.groupby("demand")["text"].agg(lambda s: _listing(list(s), 5))
    bid_sectors = set(instance.bids["sector"])
    phrase = _mandatory_phrase(instance)
    out = []
    for ent, rows in lost.groupby("enterprise_id", sort=False):
        first = rows.iloc[0]
        sector = first["sector"]
        services = [str(v) for v in rows["service_id"]]
        if sector not in bid_sectors and not rows.index.isin(why.index).any():
            detail = f"No agency bids for any service in sector {sector}."
        else:
            detail = " ".join(
                f"For {s}, every candidate is kept out: {why[d]}." if d in why.index else
                f"For {s}, no agency bids in sector {sector}."
                for d, s in zip(rows.index, services, strict=True))
        n = len(rows)
        out.append(Reason(
            "mandatory_no_eligible_agency", str(ent), n, 0, n,
            f"{phrase.capitalize()} enterprise {ent} (district {first['district_id']}, sector "
            f"{sector}) has no eligible agency for service{'s' if n > 1 else ''} "
            f"{_listing(services)}. {detail}",
            frozenset({("mandatory", str(ent))})))
    return out


def capacity_shortage(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Hall-type shortage: max-flow of mandatory load (source -> demand -> eligible agency ->
    sink at capacity_days); each saturated group of agencies named with the demands only they
    may serve and the person-days missing. Demands are merged by their set of agencies."""
    t = elig.triples
    mand = t[_mandatory_mask(instance, t)]
    if mand.empty:
        return []
    cap = instance.agencies["capacity_days"].astype(float)
    usable = _usable_triples(instance, elig)
    usable = usable[_mandatory_mask(instance, usable)]
    phrase = _mandatory_phrase(instance)
    dem = instance.demands
    out: list[Reason] = []

    # demands no eligible agency could take even with all its capacity, grouped by agencies
    need = mand.groupby("demand")["load"].min()
    big = mand[~mand["demand"].isin(usable["demand"])]
    if len(big):
        ags_of = big.groupby("demand")["agency_id"].agg(lambda v: ";".join(sorted(set(v))))
        best = big.assign(cap=big["agency_id"].map(cap)).groupby("demand")["cap"].max()
        for ags, ds in ags_of.groupby(ags_of, sort=False):
            ds = ds.index
            names = [f"{dem.at[d, 'enterprise_id']}/{dem.at[d, 'service_id']}" for d in ds]
            agl = ags.split(";")
            want, have = float(need[ds].sum()), float(best[ds].sum())
            caps = _listing([f"{a} {_num(cap[a])}" for a in agl])
            text = (f"{phrase.capitalize()} demand {dem.at[ds[0], 'service_id']} of enterprise "
                    f"{dem.at[ds[0], 'enterprise_id']} needs {_num(want)} person-days, more "
                    f"than any eligible agency can deliver in the year ({caps})."
                    if len(ds) == 1 else
                    f"{len(ds)} {phrase} demands ({_listing(names)}) each need more "
                    f"person-days than any eligible agency can deliver in the year ({caps}); "
                    f"together they need {_num(want)}.")
            out.append(Reason("capacity", ags, want, have, want - have, text,
                              frozenset({("capacity", a) for a in agl})))
    if usable.empty:
        return out

    load = usable.groupby("demand")["load"].min()
    sig = usable.groupby("demand")["agency_id"].agg(lambda s: "\x1f".join(sorted(s)))
    group = pd.Series(pd.factorize(sig)[0], index=sig.index)
    g_load = load.groupby(group).sum()
    pairs = pd.DataFrame({"g": group.reindex(usable["demand"]).to_numpy(),
                          "a": usable["agency_id"].to_numpy()}).drop_duplicates()
    agencies = pd.Index(pairs["a"].unique())
    g = nx.DiGraph()
    g.add_edges_from((("s", ("g", int(k)), {"capacity": int(round(v * FLOW_SCALE))})
                      for k, v in g_load.items()))
    g.add_edges_from((("g", int(k)), ("a", a)) for k, a in zip(pairs["g"], pairs["a"],
                                                                strict=True))
    g.add_edges_from((("a", a), "t", {"capacity": int(round(cap[a] * FLOW_SCALE))})
                     for a in agencies)
    value, (reach, _) = nx.minimum_cut(g, "s", "t")
    if value >= int(round(g_load.sum() * FLOW_SCALE)):
        return out
    hall = g.subgraph([v for v in reach if v != "s"]).to_undirected()
    for comp in nx.connected_components(hall):
        gs = [k for kind, k in comp if kind == "g"]
        ags = sorted(a for kind, a in comp if kind == "a")
        ds = group.index[group.isin(gs)]
        need_days = float(load.loc[ds].sum())
        have = float(cap.loc[ags].sum()) if ags else 0.0
        missing = need_days - have
        if missing <= 1e-6:
            continue
        names = [f"{dem.at[d, 'enterprise_id']}/{dem.at[d, 'service_id']}" for d in ds]
        who = (f"Agency {ags[0]} has {_num(have)} person-days of capacity and is the only "
               f"eligible agency" if len(ags) == 1 else
               f"Agencies {_listing(ags)} have {_num(have)} person-days of capacity together "
               f"and are the only eligible agencies")
        out.append(Reason(
            "capacity", ";".join(ags), need_days, have, missing,
            f"{who} for {len(ds)} {phrase} demand{'s' if len(ds) != 1 else ''} needing "
            f"{_num(need_days)} person-days ({_listing(names)}): {_num(missing)} person-days "
            f"are missing.", frozenset({("capacity", a) for a in ags})))
    return out


def active_agency_bound(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Per district with demands: eligible agencies, those with the capacity for one of its
    demands (roomy), and the most that can be active at once (each needs a demand of its
    own): a max-flow source -> demands grouped by their agency set (capacity = how many) ->
    agency -> sink (capacity 1)."""
    usable = _usable_triples(instance, elig)
    districts = pd.Index(instance.demands["district_id"].unique(), name="district_id")
    out = pd.DataFrame({"eligible": 0, "roomy": 0, "active": 0}, index=districts)
    out["eligible"] = elig.triples.groupby("district_id")["agency_id"].nunique().reindex(
        districts, fill_value=0)
    if usable.empty:
        return out
    sig = usable.groupby("demand")["agency_id"].agg(lambda s: "\x1f".join(sorted(s)))
    dist = instance.demands.loc[sig.index, "district_id"]
    group = pd.Series(pd.factorize(dist + "\x1e" + sig)[0], index=sig.index)
    size = group.value_counts()
    pairs = pd.DataFrame({"g": group.reindex(usable["demand"]).to_numpy(),
                          "a": usable["agency_id"].to_numpy(),
                          "d": usable["district_id"].to_numpy()}).drop_duplicates()
    for d, sub in pairs.groupby("d", sort=False):
        ags = sub["a"].unique()
        net = nx.DiGraph()
        net.add_edges_from(("s", ("g", int(k)), {"capacity": int(min(size[k], len(ags)))})
                           for k in sub["g"].unique())
        net.add_edges_from((("g", int(k)), ("a", a)) for k, a in zip(sub["g"], sub["a"],
                                                                       strict=True))
        net.add_edges_from((("a", a), "t", {"capacity": 1}) for a in ags)
        out.loc[d, "roomy"] = len(ags)
        out.loc[d, "active"] = int(nx.maximum_flow_value(net, "s", "t"))
    return out


def too_few_agencies(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts where fewer agencies can be active than min_agencies_per_district asks, or
    than a share cap needs (ceil(1 / max_share)); a cause where the district must be served,
    else a note that none of its demands can be."""
    pol = instance.policy
    k = pol.min_agencies_per_district
    share = pol.max_share_in_district
    k_share = math.ceil(1 / share - 1e-9) if share is not None and share < 1 else 0
    share_c = pol.max_share_in_city
    k_city = math.ceil(1 / share_c - 1e-9) if share_c is not None and share_c < 1 else 0
    if max(k, k_share, k_city) <= 1:
        return []
    n = active_agency_bound(instance, elig)
    forced = forced_districts(instance, elig)
    out = []
    named: set[str] = set()
    for rule, need in (("min_agencies_per_district", k), ("max_share_in_district", k_share)):
        if need <= 1:
            continue
        for d, row in n[n["active"] < need].iterrows():
            if rule == "max_share_in_district" and d in named and k >= k_share:
                continue  # the minimum-agencies reason already says more
            named.add(d)
            have, elig_n, roomy = int(row["active"]), int(row["eligible"]), int(row["roomy"])
            text = f"District {d} has {elig_n} eligible agenc{'y' if elig_n == 1 else 'ies'}"
            if roomy < elig_n:
                text += f", {roomy} of them with the capacity for any of its demands"
            if have < roomy:
                text += f"; its demands can keep at most {have} of them busy"
            if rule == "min_agencies_per_district":
                text += f"; the policy asks for {need}."
            else:
                text += (f"; a cap of {_pct(share or 1.0)} on an agency's share of district spend "
                         f"needs at least {need}.")
            cause = d in forced
            if not cause:
                text += " None of its demands can be served."
            out.append(Reason(rule, str(d), need, have, need - have, text,
                              frozenset({(rule, str(d))}), cause))
    if k_city > 1 and len(forced):
        have = int(_usable_triples(instance, elig)["agency_id"].nunique())
        if have < k_city:
            out.append(Reason(
                "max_share_in_city", "city", k_city, have, k_city - have,
                f"The city has {have} eligible agenc{'y' if have == 1 else 'ies'}; a cap of "
                f"{_pct(share_c or 1.0)} on an agency's share of city spend needs at least "
                f"{k_city}.",
                frozenset({("max_share_in_city", "city")})))
    return out


def coverage_out_of_reach(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts whose demands with an eligible agency weigh less than min_district_ratio asks."""
    ratio = instance.policy.min_district_ratio
    if ratio <= 0:
        return []
    dem = instance.demands
    total = dem.groupby("district_id", sort=False)["weight"].sum()
    need = total * ratio
    ok = dem.index.isin(_usable_triples(instance, elig)["demand"])
    can = dem[ok].groupby("district_id")["weight"].sum().reindex(total.index, fill_value=0.0)
    short = need - can
    bad = short.index[(need > 0) & (short > 1e-9 * np.maximum(1.0, need))]
    return [Reason(
        "min_district_ratio", str(d), float(need[d]), float(can[d]), float(short[d]),
        f"District {d} can serve at most weight {_num(can[d])} of its {_num(total[d])} ("
        f"{_pct(can[d] / total[d])}), even if every demand with an eligible agency were served; "
        f"the policy asks for {_pct(ratio)} (weight {_num(need[d])}).",
        frozenset({("min_district_ratio", str(d))})) for d in bad]


def mandatory_spend(instance: Instance, elig: Eligibility) -> pd.Series:
    """Cheapest eligible government cost (the whole cost without co-payment) of each
    mandatory demand that has an eligible agency."""
    t = elig.triples
    t = t[_mandatory_mask(instance, t).to_numpy()]
    gov = government_cost(instance.policy, t["cost"].to_numpy(dtype=float),
                          t["risk_level"].to_numpy())
    return pd.Series(gov, index=t.index).groupby(t["demand"].to_numpy()).min()


def district_caps_too_low(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts whose cap is below the cheapest cost of their mandatory demands."""
    caps = instance.districts["budget_cap"].dropna()
    cheapest = mandatory_spend(instance, elig)
    if caps.empty or cheapest.empty:
        return []
    spend = cheapest.groupby(instance.demands.loc[cheapest.index, "district_id"]).sum()
    caps = caps.reindex(spend.index).dropna()
    short = spend.loc[caps.index] - caps
    bad = short.index[short > 1e-9 * np.maximum(1.0, caps)]
    phrase = _mandatory_phrase(instance)
    return [Reason(
        "district_budget_cap", str(d), float(spend[d]), float(caps[d]), float(short[d]),
        f"District {d} needs at least {_num(spend[d])} to serve its {phrase} demands at their "
        f"cheapest eligible offers; its budget cap is {_num(caps[d])} ({_num(short[d])} short).",
        frozenset({("district_budget_cap", str(d))})) for d in bad]


def budget_lower_bound(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Budget below the cheapest cost of the mandatory demands (a fallback when the elastic
    re-solve found no least budget)."""
    need = float(mandatory_spend(instance, elig).sum())
    budget = instance.policy.budget_total
    if budget is None or need <= budget * (1 + 1e-9):
        return []
    return [Reason(
        "budget", "city", need, budget, need - budget,
        f"The budget is {_num(need - budget)} short of the {_num(need)} needed to serve every "
        f"{_mandatory_phrase(instance)} demand (each at its cheapest eligible offer; the other "
        f"rules may need more).", frozenset({("budget", "city")}))]


def prechecks(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Every stage-1 reason: facts found by counting and flows, before any solve."""
    from allocator.analysis.diagnose.continuity import continuity_checks  # uses reasons only

    return (no_eligible_agency(instance, elig) + too_few_agencies(instance, elig)
            + coverage_out_of_reach(instance, elig) + capacity_shortage(instance, elig)
            + district_caps_too_low(instance, elig) + unfunded_mandatory(instance, elig)
            + funding_shortage(instance, elig) + continuity_checks(instance, elig))
