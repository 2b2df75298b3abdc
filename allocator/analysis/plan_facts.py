"""What a plan's files say beyond its totals: the rules at their limit in this plan, the
agencies of the pool that got no work and why, and the spend that buys quality.

Everything is recomputed from the result tables (as read back from the files, so a report or
workbook says what the files say) and the policy in force (summary.json's `policy`); the
eligible offers, when the instance is at hand, tell why an idle agency was not chosen.
Nothing here solves, prints or writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: money in the files is rounded to the cent: a sum of n rows may be off by n/2 cents
CENT = 0.005
DAYS_EPS = 1e-6


@dataclass
class Limit:
    """A rule at its limit in the plan: which rule, about what, how far it is used."""

    rule: str  # budget, district_budget_cap, capacity, max_share_in_district, ...
    subject: str  # "city", a district id, an agency id, or "agency@district"
    used: float  # what the plan uses (money, person-days, share, count)
    limit: float  # the bound the policy or the data sets
    left_out: int = 0  # unserved demands whose reason is this rule (here)
    names: dict[str, str] = field(default_factory=dict)  # id -> name of what subject names

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "subject": self.subject, "used": self.used,
                "limit": self.limit, "left_out": self.left_out, **{
                    f"name_{k}": v for k, v in self.names.items()}}


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    if col not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[col], errors="coerce").astype(float)


def _names(frame: pd.DataFrame, id_col: str, name_col: str) -> dict[str, str]:
    if frame is None or id_col not in frame.columns or name_col not in frame.columns:
        return {}
    return dict(zip(frame[id_col].astype(str), frame[name_col].astype(str), strict=True))


def _reason_counts(unserved: pd.DataFrame, reason: str, by: str | None = None
                   ) -> pd.Series | int:
    if unserved is None or unserved.empty or "reason" not in unserved.columns:
        return pd.Series(dtype=int) if by else 0
    hit = unserved[unserved["reason"].astype(str) == reason]
    if by is None:
        return len(hit)
    if by not in hit.columns:
        return pd.Series(dtype=int)
    return hit.groupby(hit[by].astype(str)).size()


@dataclass
class _Rows:
    """The assignment rows as the limit checks read them."""

    a: pd.DataFrame
    cost: pd.Series  # the contract's cost (shares are of it)
    gov: pd.Series  # the government's part (the budget and caps count it; = cost without
    # co-payment)
    district: pd.Series
    agency: pd.Series
    total: float
    district_names: dict[str, str]
    agency_names: dict[str, str]
    unserved: pd.DataFrame

    def left(self, reason: str, by: str | None = None, key: str | None = None) -> int:
        """Unserved demands with this reason (in district `key` when by is given)."""
        got = _reason_counts(self.unserved, reason, by)
        if isinstance(got, pd.Series):
            return int(got.get(key, 0)) if key is not None else int(got.sum())
        return int(got)


def plan_limits(policy: dict[str, Any], budget: float | None, assignments: pd.DataFrame,
                agencies: pd.DataFrame, districts: pd.DataFrame,
                unserved: pd.DataFrame) -> list[Limit]:
    """The rules at their limit in the plan, each with the demands it leaves out.

    A limit is reached when the plan uses the bound up to the files' rounding (money to the
    cent, person-days to 1e-6, shares to a cent of spend), or when an unserved demand names
    the rule as its reason. Recomputed from the rows, not read from the totals' columns.
    """
    a = assignments
    cost = _num(a, "cost")
    gov = _num(a, "government_cost") if "government_cost" in a.columns else cost
    r = _Rows(a, cost, gov,
              a["district_id"].astype(str) if "district_id" in a.columns else pd.Series(
                  dtype=str),
              a["agency_id"].astype(str) if "agency_id" in a.columns else pd.Series(dtype=str),
              float(gov.sum()), _names(districts, "district_id", "district_name"),
              _names(agencies, "agency_id", "agency_name"), unserved)
    am = policy.get("anti_monopoly") or {}
    ratio = float((policy.get("coverage") or {}).get("min_district_ratio") or 0.0)
    return (budget_limits(r, budget, districts) + capacity_limits(r, agencies)
            + share_limits(r, am.get("max_share_in_district"), am.get("max_share_in_city"))
            + count_limits(r, int(am.get("min_agencies_per_district") or 0),
                           am.get("max_districts_per_agency"))
            + ratio_limits(r, ratio, districts))


def budget_limits(r: _Rows, budget: float | None, districts: pd.DataFrame) -> list[Limit]:
    """The budget and the district caps: used up to the cent, or demands left out for them."""
    out = []
    if budget is not None:
        n = r.left("budget")
        if budget - r.total <= CENT * max(1, len(r.a)) or n:
            out.append(Limit("budget", "city", r.total, float(budget), n))
    if not len(districts) or "budget_cap" not in districts.columns:
        return out
    ids = districts["district_id"].astype(str)
    cap = _num(districts, "budget_cap").to_numpy()
    spend = r.gov.groupby(r.district).sum().reindex(ids).fillna(0.0).to_numpy()
    rows = r.district.value_counts().reindex(ids).fillna(0).to_numpy()
    for k, d in enumerate(ids):
        if np.isnan(cap[k]):
            continue
        n = r.left("district_budget_cap", "district_id", d)
        if cap[k] - spend[k] <= CENT * max(1, rows[k]) or n:
            out.append(Limit("district_budget_cap", d, float(spend[k]), float(cap[k]), n,
                             {d: r.district_names.get(d, "")}))
    return out


def capacity_limits(r: _Rows, agencies: pd.DataFrame) -> list[Limit]:
    """Agencies whose lot fills their capacity (to 1e-6 person-days)."""
    if not len(agencies):
        return []
    ids = agencies["agency_id"].astype(str)
    load = (_num(r.a, "load").groupby(r.agency).sum() if len(r.a)
            else pd.Series(dtype=float))
    used = load.reindex(ids).fillna(0.0).to_numpy(dtype=float)
    capacity = _num(agencies, "capacity_days").to_numpy()
    out = [Limit("capacity", ids.iloc[j], float(used[j]), float(capacity[j]), 0,
                 {ids.iloc[j]: r.agency_names.get(ids.iloc[j], "")})
           for j in np.flatnonzero((used >= capacity - DAYS_EPS) & (used > 0))]
    left = r.left("capacity")
    if left and out:
        out[0].left_out = left
    elif left:
        out.append(Limit("capacity", "agencies", float(used.sum()), float(np.nansum(capacity)),
                         left))
    return out


def share_limits(r: _Rows, share_d: float | None, share_c: float | None) -> list[Limit]:
    """Agencies whose share of a district's (or the city's) spend is at the cap, to a cent."""
    out = []
    if share_d is not None and len(r.a):
        pair = r.cost.groupby([r.district, r.agency]).sum()
        dspend = r.cost.groupby(r.district).sum()
        bound = share_d * dspend.reindex(pair.index.get_level_values(0)).to_numpy()
        hit = pair.to_numpy() >= bound - np.maximum(0.01, 1e-6 * bound)
        for (d, ag), v in zip(pair.index[hit], pair.to_numpy()[hit], strict=True):
            out.append(Limit("max_share_in_district", f"{ag}@{d}",
                             float(v / dspend[d]) if dspend[d] else 0.0, float(share_d),
                             r.left("district_share", "district_id", d),
                             {ag: r.agency_names.get(ag, ""), d: r.district_names.get(d, "")}))
    total = float(r.cost.sum())
    if share_c is not None and len(r.a) and total > 0:
        spend = r.cost.groupby(r.agency).sum()
        hit = spend[spend >= share_c * total - max(0.01, 1e-6 * share_c * total)]
        for ag, v in hit.items():
            out.append(Limit("max_share_in_city", str(ag), float(v / total), float(share_c),
                             r.left("city_share"), {str(ag): r.agency_names.get(str(ag), "")}))
    return out


def count_limits(r: _Rows, k_min: int, k_max: int | None) -> list[Limit]:
    """Served districts with the minimum number of agencies; agencies in the most districts
    allowed."""
    out = []
    if k_min > 1 and len(r.a):
        n_ag = r.agency.groupby(r.district).nunique()
        for d, n in n_ag[n_ag <= k_min].items():
            out.append(Limit("min_agencies_per_district", str(d), float(n), float(k_min),
                             r.left("min_agencies", "district_id", str(d)),
                             {str(d): r.district_names.get(str(d), "")}))
    if k_max is not None and len(r.a):
        n_d = r.district.groupby(r.agency).nunique()
        for ag, n in n_d[n_d >= int(k_max)].items():
            out.append(Limit("max_districts_per_agency", str(ag), float(n), float(k_max), 0,
                             {str(ag): r.agency_names.get(str(ag), "")}))
    return out


def ratio_limits(r: _Rows, ratio: float, districts: pd.DataFrame) -> list[Limit]:
    """Districts served exactly at the minimum coverage ratio."""
    if ratio <= 0 or not len(districts):
        return []
    wt, ws = _num(districts, "weight_total"), _num(districts, "weight_served")
    return [Limit("min_district_ratio", d, float(s / t), ratio, 0,
                  {d: r.district_names.get(d, "")})
            for d, t, s in zip(districts["district_id"].astype(str), wt, ws, strict=True)
            if t > 0 and s <= ratio * t + 1e-6]


#: why an agency of the pool got no work (first that applies)
IDLE_REASONS = ("no_offer", "not_eligible", "lower_quality", "dearer", "capacity", "rules",
                "unserved", "not_known")


def idle_agencies(agencies: pd.DataFrame, assignments: pd.DataFrame, excluded: pd.DataFrame,
                  unserved: pd.DataFrame, triples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per agency with no assignment: the reason and the facts behind it.

    reason: no_offer (no bid or quote meets a demand), not_eligible (every offer kept out:
    the most common reason from excluded.csv in `detail`), and, for an agency with eligible
    offers (needs `triples`, the eligible triples of the instance): lower_quality (most of the
    demands it could serve went to agencies of higher quality, which the quality level
    prefers), dearer (to offers of the same or lower quality that cost less), capacity (its
    offers need more person-days than it has), unserved (the demands stayed unserved, for the
    reason unserved.csv gives), rules (went elsewhere for the other rules: shares, districts);
    not_known without the eligible triples.
    """
    cols = ["agency_id", "agency_name", "status", "quality", "capacity_days",
            "eligible_demands", "reason", "lower_quality", "dearer", "capacity", "rules",
            "unserved", "detail"]
    if agencies is None or agencies.empty:
        return pd.DataFrame(columns=cols)
    demands = _num(agencies, "demands")
    idle = agencies[demands.fillna(0).to_numpy() == 0].copy()
    if idle.empty:
        return pd.DataFrame(columns=cols)
    idle["agency_id"] = idle["agency_id"].astype(str)
    for c in ("agency_name", "status"):
        if c not in idle.columns:
            idle[c] = ""
    idle["quality"] = _num(idle, "quality")
    idle["capacity_days"] = _num(idle, "capacity_days")
    exc = excluded if excluded is not None else pd.DataFrame(columns=["agency_id"])
    exc_by = {str(k): g for k, g in exc.groupby(exc["agency_id"].astype(str))} if len(exc) \
        else {}
    rows = []
    chosen = None
    if triples is not None and len(assignments):
        chosen = assignments.assign(
            enterprise_id=assignments["enterprise_id"].astype(str),
            service_id=assignments["service_id"].astype(str),
            c_quality=_num(assignments, "quality"), c_cost=_num(assignments, "cost"),
            c_agency=assignments["agency_id"].astype(str))[
            ["enterprise_id", "service_id", "c_quality", "c_cost", "c_agency"]]
    un_reason = None
    if unserved is not None and len(unserved) and "reason" in unserved.columns:
        un_reason = unserved.assign(enterprise_id=unserved["enterprise_id"].astype(str),
                                    service_id=unserved["service_id"].astype(str))[
            ["enterprise_id", "service_id", "reason"]]
    tri_by: dict[str, pd.DataFrame] = {}
    if triples is not None and len(triples):
        t = triples[triples["agency_id"].astype(str).isin(set(idle["agency_id"]))]
        tri_by = {str(k): g for k, g in t.groupby(t["agency_id"].astype(str), observed=True)}
    for r in idle.itertuples(index=False):
        ag = r.agency_id
        row = {"agency_id": ag, "agency_name": r.agency_name, "status": r.status,
               "quality": r.quality, "capacity_days": r.capacity_days, "eligible_demands": None,
               "lower_quality": 0, "dearer": 0, "capacity": 0, "rules": 0, "unserved": 0}
        ex = exc_by.get(ag)
        ex_text = ""
        if ex is not None and len(ex):
            col = "detail" if "detail" in ex.columns else "reason"
            top = ex[col].astype(str).value_counts()
            ex_text = f"{top.index[0]} ({int(top.iloc[0])} of {len(ex)} kept-out offers)"
        if triples is None:
            row.update(reason="not_eligible" if ex is not None and len(ex) and str(r.status) in (
                "suspended", "blacklisted") else "not_known", detail=ex_text)
            rows.append(row)
            continue
        mine = tri_by.get(ag)
        if mine is None or mine.empty:
            row.update(eligible_demands=0, reason="not_eligible" if ex_text else "no_offer",
                       detail=ex_text)
            rows.append(row)
            continue
        m = pd.DataFrame({"enterprise_id": mine["enterprise_id"].astype(str).to_numpy(),
                          "service_id": mine["service_id"].astype(str).to_numpy(),
                          "cost": pd.to_numeric(mine["cost"]).to_numpy(dtype=float),
                          "load": pd.to_numeric(mine["load"]).to_numpy(dtype=float)})
        row["eligible_demands"] = len(m)
        big = m["load"].to_numpy() > float(r.capacity_days) + DAYS_EPS
        if chosen is not None:
            m = m.merge(chosen, on=["enterprise_id", "service_id"], how="left")
        else:
            m = m.assign(c_quality=np.nan, c_cost=np.nan, c_agency=None)
        served = m["c_agency"].notna().to_numpy()
        q = float(r.quality)
        cap = big  # a demand it could never take, whoever got it
        better_q = served & ~cap & (m["c_quality"].to_numpy(dtype=float) > q + 1e-9)
        cheaper = served & ~cap & ~better_q & (m["c_cost"].to_numpy(dtype=float)
                                               < m["cost"].to_numpy() - 1e-9)
        other = served & ~cap & ~better_q & ~cheaper
        unserved_n = ~served & ~cap
        row.update(lower_quality=int(better_q.sum()), dearer=int(cheaper.sum()),
                   capacity=int(cap.sum()), rules=int(other.sum()),
                   unserved=int(unserved_n.sum()))
        counts = {k: row[k] for k in ("lower_quality", "dearer", "capacity", "rules",
                                       "unserved")}
        row["reason"] = max(counts, key=lambda k: (counts[k], -IDLE_REASONS.index(k)))
        if row["reason"] == "unserved" and un_reason is not None:
            why = m[unserved_n][["enterprise_id", "service_id"]].merge(
                un_reason, on=["enterprise_id", "service_id"])["reason"].value_counts()
            row["detail"] = ", ".join(f"{k} {v}" for k, v in why.items())
        elif row["reason"] == "lower_quality":
            best = m.loc[better_q, "c_quality"]
            row["detail"] = f"chosen agencies' quality {best.min():g}-{best.max():g}"
        elif row["reason"] == "dearer":
            d = (m.loc[cheaper, "cost"] - m.loc[cheaper, "c_cost"]) / m.loc[cheaper, "c_cost"]
            row["detail"] = f"{100 * float(d.median()):.1f}% dearer (median)"
        else:
            row["detail"] = ex_text
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def spend_split_facts(summary: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json's spend split, with the part of the spend that buys quality, or None."""
    s = summary.get("spend_split")
    cost = summary.get("cost")
    if not isinstance(s, dict) or cost is None or s.get("coverage_only_cost") is None:
        return None
    base = float(s["coverage_only_cost"])
    return {**s, "cost": float(cost), "quality_spend": round(float(cost) - base, 2)}
