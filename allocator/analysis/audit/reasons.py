"""The audit of unserved.csv's reasons: each must be true of the plan in the folder.

Each eligible offer of an unserved demand (recomputed in offers.py) is added alone to the plan
as the assignment rows give it, and every rule it would break is noted:

- no_eligible_agency: no offer is eligible;  zero_weight: the demand weighs 0;
- no_funding_source, budget, district_budget_cap, funding, capacity, district_share,
  city_share, min_agencies, districts_per_agency: every eligible offer would break that rule
  (so `budget` only when even the cheapest offer would take the plan over the budget; budget,
  caps and funding apply to the government's part of a cost, funding through the auditor's own
  max-flow over the sources' scopes);
- several_rules: every offer breaks some rule, no one rule broken by all;
- gap: some offer breaks no rule (the plan left the demand out within the MIP gap).

A rule within its tolerance of the limit counts both ways (a reason is rejected only when it
is clearly false). An unserved demand that some offer could serve, clearly breaking no rule,
proves a plan with more coverage exists: claims.py holds the summary's gap and bound to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    NUM_ATOL,
    NUM_RTOL,
    SHARE_RTOL,
    TOTAL_ATOL,
    TOTAL_RTOL,
    Violation,
    add_violations,
    column_of,
    differs,
    format_values,
    show_cell,
    show_num,
)
from allocator.analysis.audit.funding import FLOW_UNIT, has_funding, max_split, may_pay

FILE = "unserved.csv"
#: the plan rules an added offer may break, in the order reasons are tried
PLAN_RULES = ("no_funding_source", "budget", "district_budget_cap", "funding", "capacity",
              "district_share", "city_share", "min_agencies", "districts_per_agency")
OTHER = ("no_eligible_agency", "zero_weight", "several_rules", "gap")


@dataclass
class Free:
    """The heaviest unserved demand an offer could serve clearly breaking no rule."""

    weight: float = 0.0
    subject: str = ""


def plan_state(t: pd.DataFrame) -> dict:
    """The plan's totals as the assignment rows give them (their true cost and load; budget
    and caps count the government's part, true_gov)."""
    pair = t.groupby(["agency_id", "true_district"])["true_cost"]
    gov = t["true_gov"] if "true_gov" in t.columns else t["true_cost"]
    return {
        "total": float(t["true_cost"].sum()),
        "total_gov": float(gov.sum()),
        "district_gov": gov.groupby(t["true_district"]).sum(),
        "district_cost": t.groupby("true_district")["true_cost"].sum(),
        "agency_load": t.groupby("agency_id")["true_load"].sum(),
        "agency_cost": t.groupby("agency_id")["true_cost"].sum(),
        "pair_cost": pair.sum(),
        "pair_n": pair.size(),
        "district_agencies": t.groupby("true_district")["agency_id"].nunique(),
        "agency_districts": t.groupby("agency_id")["true_district"].nunique(),
    }


def offer_excess(inst, budget: float | None, state: dict, e: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each offer row of e (agency_id, district_id, cost, gov, load, unfunded, room): by
    how much adding it alone would pass each rule's limit (> 0: broken), and each rule's
    tolerance."""
    pol = inst.policy
    c, load, gov = e["cost"].astype(float), e["load"].astype(float), e["gov"].astype(float)
    total = state["total"]
    limit = np.inf if budget is None else float(budget)
    dg = e["district_id"].map(state["district_gov"]).fillna(0.0).astype(float)
    dc = e["district_id"].map(state["district_cost"]).fillna(0.0).astype(float)
    cap = e["district_id"].map(inst.districts["budget_cap"]).astype(float)
    a_load = e["agency_id"].map(state["agency_load"]).fillna(0.0).astype(float)
    capacity = e["agency_id"].map(inst.agencies["capacity_days"]).astype(float)
    a_cost = e["agency_id"].map(state["agency_cost"]).fillna(0.0).astype(float)
    pair = pd.MultiIndex.from_frame(e[["agency_id", "district_id"]])
    adc = pd.Series(state["pair_cost"].reindex(pair).fillna(0.0).to_numpy(), index=e.index)
    in_district = pd.Series(state["pair_n"].reindex(pair).fillna(0).to_numpy() > 0,
                            index=e.index)
    active = e["district_id"].map(state["district_agencies"]).fillna(0).astype(int)
    n_d = e["agency_id"].map(state["agency_districts"]).fillna(0).astype(int)
    flag = lambda m: pd.Series(np.where(m, 1.0, -1.0), index=e.index)  # noqa: E731
    none = pd.Series(-1.0, index=e.index)
    s_d, s_c = pol.max_share_in_district, pol.max_share_in_city
    excess = pd.DataFrame({
        "no_funding_source": flag(e["unfunded"].to_numpy(dtype=bool)),
        "budget": state["total_gov"] + gov - limit,
        "district_budget_cap": (dg + gov - cap).fillna(-np.inf),
        "funding": gov - e["room"].astype(float),
        "capacity": a_load + load - capacity,
        "district_share": none if s_d is None else adc + c - s_d * (dc + c),
        "city_share": none if s_c is None else a_cost + c - s_c * (total + c),
        "min_agencies": flag((active == 0) & (pol.min_agencies_per_district > 1)),
        "districts_per_agency": none if pol.max_districts_per_agency is None else
        flag(~in_district & (n_d >= pol.max_districts_per_agency)),
    })
    tol = pd.DataFrame({
        "no_funding_source": 0.0,
        "budget": TOTAL_ATOL + TOTAL_RTOL * (0.0 if budget is None else abs(budget)),
        "funding": TOTAL_ATOL + TOTAL_RTOL * gov.abs(),
        "district_budget_cap": TOTAL_ATOL + TOTAL_RTOL * cap.abs().fillna(0.0),
        "capacity": NUM_ATOL + NUM_RTOL * capacity.abs(),
        "district_share": TOTAL_ATOL + SHARE_RTOL * (dc + c),
        "city_share": TOTAL_ATOL + SHARE_RTOL * (total + c),
        "min_agencies": 0.0, "districts_per_agency": 0.0}, index=e.index)
    return excess, tol


def government_cost(inst, cost: pd.Series, risk: pd.Series) -> pd.Series:
    """The government's part of a cost: all of it, less the co-payment share of the risk
    level (to the cent where a share applies), as funding.government_part does for rows."""
    shares = inst.policy.copay_share_by_risk
    share = risk.astype(int).map(lambda r: float(shares.get(int(r), 0.0))).astype(float)
    exact = cost.astype(float) * (1.0 - share)
    return exact.where(share <= 0, (exact * 100).round() / 100)


def funding_room(inst, t: pd.DataFrame, u: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per unserved row: no source may pay for it, and the most government cost its sources
    could still pay with the plan's rows kept paid (our own max-flow, audit/funding.py).
    Without funding.csv: never unfunded, unlimited room."""
    if not has_funding(inst):
        return (pd.Series(False, index=u.index), pd.Series(np.inf, index=u.index))
    rows = u.rename(columns={"district_id": "true_district", "risk_level": "true_risk"})
    cover_u = may_pay(inst, rows)
    cover_t = may_pay(inst, t)
    ok = cover_t.any(axis=1)
    need = np.round(t["true_gov"].to_numpy(dtype=float) * FLOW_UNIT).astype(np.int64)[ok]
    caps = (np.round(inst.funding["amount"].astype(float).to_numpy() * FLOW_UNIT)
            .astype(np.int64) + round(TOTAL_ATOL * FLOW_UNIT))
    base = max_split(need, cover_t[ok], caps)[0] if ok.any() else 0
    big = int(caps.sum()) + 1
    room = np.zeros(len(u))
    patterns = pd.factorize(pd.Series([tuple(r) for r in cover_u], dtype=object))[0]
    for k in np.unique(patterns):
        first = int(np.flatnonzero(patterns == k)[0])
        if not cover_u[first].any():
            continue
        more = max_split(np.append(need, big), np.vstack([cover_t[ok], cover_u[first]]),
                         caps)[0]
        room[patterns == k] = (more - base) / FLOW_UNIT
    return (pd.Series(~cover_u.any(axis=1), index=u.index), pd.Series(room, index=u.index))


def check_unserved_reasons(out: list[Violation], inst, budget: float | None, t: pd.DataFrame,
                           u: pd.DataFrame, cand: pd.DataFrame) -> Free:
    """Each unserved row's reason against the plan; eligible_agencies too when present."""
    u = u[u["known_demand"]]
    unfunded, room = funding_room(inst, t, u)
    u = u.assign(_unfunded=unfunded, _room=room)
    eligible = cand[cand["eligible"]]
    e = u[["_row", "enterprise_id", "service_id", "_unfunded", "_room"]].merge(
        eligible[["enterprise_id", "service_id", "agency_id", "district_id", "cost", "load",
                  "risk_level"]], on=["enterprise_id", "service_id"])
    e = e.rename(columns={"_unfunded": "unfunded", "_room": "room"})
    e["gov"] = government_cost(inst, e["cost"], e["risk_level"])
    excess, tol = offer_excess(inst, budget, plan_state(t), e)
    maybe = excess.gt(-tol)  # broken, or within its tolerance of the limit
    clear = excess.gt(tol)  # clearly broken
    g = pd.DataFrame({"_row": e["_row"].to_numpy()})
    for rule in PLAN_RULES:
        g[f"all_{rule}"] = maybe[rule].to_numpy()
        g[f"clear_all_{rule}"] = clear[rule].to_numpy()
    g["maybe_free"] = ~clear.any(axis=1).to_numpy()
    g["clear_free"] = ~maybe.any(axis=1).to_numpy()
    g["n"] = 1
    agg = g.groupby("_row").agg({**{c: "all" for c in g.columns if c.startswith(("all_",
                                                                               "clear_all_"))},
                                 "maybe_free": "any", "clear_free": "any", "n": "sum"})
    r = u.join(agg, on="_row")
    r["n"] = r["n"].fillna(0).astype(int)
    has = r["n"] > 0
    for col in agg.columns:
        if col != "n":
            r[col] = r[col].astype("boolean").fillna(False).astype(bool)
    reason = r["reason"]
    ok = pd.Series(False, index=r.index)
    for rule in PLAN_RULES:
        ok |= (reason == rule) & has & r[f"all_{rule}"]
    clear_one = np.column_stack([r[f"clear_all_{k}"] for k in PLAN_RULES]).any(axis=1)
    ok |= (reason == "several_rules") & has & ~r["maybe_free"] & ~clear_one
    ok |= (reason == "gap") & has & r["maybe_free"]
    ok |= (reason == "no_eligible_agency") & ~has
    ok |= (reason == "zero_weight") & (r["weight"] <= NUM_ATOL)
    known = reason.isin(PLAN_RULES + OTHER)
    subj = column_of("subject")
    add_violations(out, "unserved_reason", FILE, r, ~known & (reason != ""), subj,
                   lambda x: "reason " + x["reason"].map(repr) + " is not one of "
                   + ", ".join(PLAN_RULES + OTHER))
    add_violations(out, "unserved_reason", FILE, r, known & ~ok, subj,
                   lambda x: _why_false(x))
    if "f_eligible_agencies" in r.columns:
        agencies = e.groupby("_row")["agency_id"].nunique()
        r["e_agencies"] = r["_row"].map(agencies).fillna(0).astype(float)
        bad = differs(r["f_eligible_agencies"], r["e_agencies"], 0.0)
        add_violations(out, "unserved_fields", FILE, r, bad, subj,
                       lambda x: "eligible_agencies is "
                       + format_values(x["f_eligible_agencies"], show_cell) + ", recomputed "
                       + format_values(x["e_agencies"]))
    free = r[r["clear_free"] & (r["weight"] > 0)]
    if not len(free):
        return Free()
    top = free.loc[free["weight"].idxmax()]
    return Free(float(top["weight"]), str(top["subject"]))


def _why_false(x: pd.DataFrame) -> pd.Series:
    """Why each listed reason is false, in a few words."""
    n = x["n"]
    text = pd.Series("reason " + x["reason"] + " is not true of this plan", index=x.index)
    text = text.where(~((x["reason"] == "no_eligible_agency") & (n > 0)),
                      "reason no_eligible_agency, but " + n.astype(str)
                      + " eligible offer(s) exist")
    text = text.where(~((x["reason"] != "no_eligible_agency") & (n == 0)),
                      "reason " + x["reason"] + ", but no agency is eligible for this demand "
                      "(no_eligible_agency)")
    text = text.where(~(x["reason"] == "zero_weight"),
                      "reason zero_weight, but the demand weighs "
                      + format_values(x["weight"], show_num))
    text = text.where(~((x["reason"] == "gap") & (n > 0)),
                      "reason gap, but every eligible offer would break a rule of the plan")
    plan = x["reason"].isin(PLAN_RULES) & (n > 0)
    text = text.where(~plan, "reason " + x["reason"] + ", but an eligible offer would not "
                      "break it")
    return text

