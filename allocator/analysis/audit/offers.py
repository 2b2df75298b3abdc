"""Every offer that could serve a demand, judged by the eligibility rules of spec section 4,
written here from the spec's text (no code of allocator.eligibility is shared).

A candidate is a (demand, agency) pair with an offer: the agency's quote for that demand, else
its bid for the demand's (service, sector). Each rule gives a mask of the candidates that
break it; a candidate breaking none is eligible. Used to check excluded.csv (every kept-out
offer and its reason), the unserved reasons and the eligible-agency counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import PRICE_RTOL

#: the eligibility rules, in the spec's order (the codes excluded.csv uses), then the planner's
#: year: a pin (forbid, or an assign of the demand to another agency) and rotation (an
#: incumbent with years >= continuity.max_tenure_years)
RULES = ("status", "quality", "service_area", "conflict", "abnormally_low", "above_ceiling",
         "pinned", "tenure")


def pairs_in(a: pd.Series, b: pd.Series, pairs: set[tuple[str, str]]) -> np.ndarray:
    """Whether each (a, b) is among pairs."""
    if not len(a) or not pairs:
        return np.zeros(len(a), dtype=bool)
    known = pd.MultiIndex.from_tuples(sorted(pairs))
    return pd.MultiIndex.from_arrays([a.astype(str), b.astype(str)]).isin(known)


def area_of(inst) -> tuple[set[str], set[tuple[str, str]]]:
    """Agencies serving every district ('*') and the (agency, district) pairs they list."""
    ag = inst.agencies
    text = ag["districts"].astype(str).str.strip()
    everywhere = set(ag.index[text == "*"])
    listed = text[text != "*"].str.split(";").explode().str.strip()
    return everywhere, {(a, d) for a, d in zip(listed.index, listed, strict=True) if d}


def needed_quality(pol, risk: pd.Series) -> pd.Series:
    """The quality an agency needs to serve each risk level."""
    need = {r: max(pol.min_score, pol.min_score_by_risk.get(r, pol.min_score))
            for r in range(5)}
    return risk.map(need).astype(float)


def candidates(inst, dem: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate triple: ids, cost, load, quoted, one `fail_<rule>` mask per rule
    (True: the rule keeps it out) and `eligible`."""
    pol = inst.policy
    ag = inst.agencies
    d = dem[["enterprise_id", "service_id", "district_id", "sector", "risk_level", "weight",
             "person_days", "reference_cost", "demand_row"]]
    q = inst.quotes[["agency_id", "enterprise_id", "service_id", "price", "person_days"]]
    q = q.astype({"agency_id": str, "enterprise_id": str, "service_id": str}).drop_duplicates(
        ["agency_id", "enterprise_id", "service_id"]).rename(
        columns={"person_days": "q_days"})
    quoted = d.merge(q, on=["enterprise_id", "service_id"])
    quoted["cost"] = quoted["price"].astype(float)
    quoted["load"] = quoted["q_days"].astype(float)
    quoted["quoted"] = True
    b = inst.bids[["agency_id", "service_id", "sector", "day_rate"]].astype(
        {"agency_id": str, "service_id": str, "sector": str}).drop_duplicates(
        ["agency_id", "service_id", "sector"])
    bid = d.merge(b, on=["service_id", "sector"])
    if len(quoted):  # a quote replaces the bid for its triple
        key = ["agency_id", "enterprise_id", "service_id"]
        bid = bid[~pd.MultiIndex.from_frame(bid[key]).isin(
            pd.MultiIndex.from_frame(quoted[key]))]
    bid = bid.assign(cost=bid["person_days"] * bid["day_rate"].astype(float),
                     load=bid["person_days"], quoted=False)
    cols = ["agency_id", "enterprise_id", "service_id", "district_id", "sector", "risk_level",
            "weight", "cost", "load", "quoted", "reference_cost", "demand_row"]
    c = pd.concat([bid[cols], quoted[cols]], ignore_index=True)
    c["quoted"] = c["quoted"].astype(bool)
    status = c["agency_id"].map(ag["status"]).astype(object)
    risk = c["risk_level"].astype(int)
    c["a_quality"] = c["agency_id"].map(ag["quality"]).astype(float)
    everywhere, pairs = area_of(inst)
    conflicts = set(zip(inst.conflicts["agency_id"].astype(str),
                        inst.conflicts["enterprise_id"].astype(str), strict=True))
    ref = c["reference_cost"]
    c["fail_status"] = ~((status == "active") | ((status == "probation") & (risk <= 2)))
    c["fail_quality"] = c["a_quality"] < needed_quality(pol, risk)
    c["fail_service_area"] = ~(c["agency_id"].isin(everywhere).to_numpy()
                               | pairs_in(c["agency_id"], c["district_id"], pairs))
    c["fail_conflict"] = pairs_in(c["agency_id"], c["enterprise_id"], conflicts)
    c["fail_abnormally_low"] = c["cost"] < pol.floor_ratio * ref * (1 - PRICE_RTOL)
    c["fail_above_ceiling"] = c["cost"] > pol.ceiling_ratio * ref * (1 + PRICE_RTOL)
    c["fail_pinned"], c["fail_tenure"] = year_rules(inst, c)
    c["eligible"] = ~c[[f"fail_{r}" for r in RULES]].any(axis=1)
    return c


def year_rules(inst, c: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: a pin keeps it out (pins.csv forbids it, or assigns its demand to
    another agency); rotation keeps it out (its agency is the demand's incumbent for
    max_tenure_years or more)."""
    pins, inc = inst.pins, inst.incumbents
    key = c["enterprise_id"].astype(str) + "\x1f" + c["service_id"].astype(str)
    triple = key + "\x1f" + c["agency_id"].astype(str)

    def keys(frame: pd.DataFrame, with_agency: bool = True) -> pd.Series:
        k = frame["enterprise_id"].astype(str) + "\x1f" + frame["service_id"].astype(str)
        return k + "\x1f" + frame["agency_id"].astype(str) if with_agency else k

    forbid = pins[pins["action"] == "forbid"]
    assign = pins[pins["action"] == "assign"]
    to = pd.Series(assign["agency_id"].astype(str).to_numpy(), index=keys(assign, False))
    other = key.map(to)
    pinned = (triple.isin(set(keys(forbid))) | (other.notna() & (other != c["agency_id"]
                                                                 .astype(str)))).to_numpy()
    limit = inst.policy.max_tenure_years
    if limit is None or inc.empty:
        return pinned, np.zeros(len(c), dtype=bool)
    long = inc[inc["years"].astype(int) >= int(limit)]
    return pinned, triple.isin(set(keys(long))).to_numpy()


def near_price(c: pd.DataFrame, pol) -> pd.DataFrame:
    """The price rules with a little slack, for accepting a kept-out reason at the boundary."""
    ref = c["reference_cost"]
    return pd.DataFrame({
        "abnormally_low": c["cost"] < pol.floor_ratio * ref * (1 + 1e-6),
        "above_ceiling": c["cost"] > pol.ceiling_ratio * ref * (1 - 1e-6)}, index=c.index)
