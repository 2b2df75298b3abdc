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


def plan_limits(policy: dict[str, Any], budget: float | None, assignments: pd.DataFrame,
                agencies: pd.DataFrame, districts: pd.DataFrame,
                unserved: pd.DataFrame) -> list[Limit]:
    """The rules at their limit in the plan, each with the demands it leaves out.

    A limit is reached when the plan uses the bound up to the files' rounding (money to the
    cent, person-days to 1e-6, shares to a cent of spend), or when an unserved demand names
    the rule as its reason. Recomputed from the rows, not read from the totals' columns.
    """
    a = assignments
    out: list[Limit] = []
    am = policy.get("anti_monopoly") or {}
    cov = policy.get("coverage") or {}
    a_cost = _num(a, "cost")
    a_d = a["district_id"].astype(str) if "district_id" in a.columns else pd.Series(dtype=str)
    a_ag = a["agency_id"].astype(str) if "agency_id" in a.columns else pd.Series(dtype=str)
    total = float(a_cost.sum())
    dist_names = _names(districts, "district_id", "district_name")
    ag_names = _names(agencies, "agency_id", "agency_name")

    # the budget: used up to the cent, or demands left out for it
    if budget is not None:
        n = int(_reason_counts(unserved, "budget"))  # type: ignore[arg-type]
        if budget - total <= CENT * max(1, len(a)) or n:
            out.append(Limit("budget", "city", total, float(budget), n))

    # district caps
    if len(districts) and "budget_cap" in districts.columns:
        cap = _num(districts, "budget_cap")
        spend = a_cost.groupby(a_d).sum().reindex(districts["district_id"].astype(str)
                                                  ).fillna(0.0).to_numpy()
        rows = a_d.value_counts().reindex(districts["district_id"].astype(str)).fillna(0)
        left = _reason_counts(unserved, "district_budget_cap", "district_id")
        for k, d in enumerate(districts["district_id"].astype(str)):
            c = cap.iloc[k]
            if np.isnan(c):
                continue
            n = int(left.get(d, 0)) if isinstance(left, pd.Series) else 0
            if c - spend[k] <= CENT * max(1, rows.iloc[k]) or n:
                out.append(Limit("district_budget_cap", d, float(spend[k]), float(c), n,
                                 {d: dist_names.get(d, "")}))

    # agencies at capacity
    if len(agencies):
        load = a.groupby(a_ag)["load"].apply(lambda s: pd.to_numeric(s).sum()) if len(a) \
            else pd.Series(dtype=float)
        ids = agencies["agency_id"].astype(str)
        used = load.reindex(ids).fillna(0.0).to_numpy(dtype=float)
        capacity = _num(agencies, "capacity_days").to_numpy()
        left = _reason_counts(unserved, "capacity")
        at = used >= capacity - DAYS_EPS
        for j in np.flatnonzero(at & (used > 0)):
            ag = ids.iloc[j]
            out.append(Limit("capacity", ag, float(used[j]), float(capacity[j]), 0,
                             {ag: ag_names.get(ag, "")}))
        if left and not any(lim.rule == "capacity" for lim in out):
            out.append(Limit("capacity", "agencies", float(used.sum()),
                             float(np.nansum(capacity)), int(left)))  # type: ignore[arg-type]
        elif left:
            for lim in out:
                if lim.rule == "capacity":
                    lim.left_out = int(left)  # type: ignore[arg-type]
                    break

    # shares of district spend and of city spend
    share_d = am.get("max_share_in_district")
    if share_d is not None and len(a):
        pair = a_cost.groupby([a_d, a_ag]).sum()
        dspend = a_cost.groupby(a_d).sum()
        bound = share_d * dspend.reindex(pair.index.get_level_values(0)).to_numpy()
        tol = np.maximum(0.01, 1e-6 * bound)
        hit = pair.to_numpy() >= bound - tol
        left = _reason_counts(unserved, "district_share", "district_id")
        for (d, ag), v in zip(pair.index[hit], pair.to_numpy()[hit], strict=True):
            n = int(left.get(d, 0)) if isinstance(left, pd.Series) else 0
            out.append(Limit("max_share_in_district", f"{ag}@{d}",
                             float(v / dspend[d]) if dspend[d] else 0.0, float(share_d), n,
                             {ag: ag_names.get(ag, ""), d: dist_names.get(d, "")}))
    share_c = am.get("max_share_in_city")
    if share_c is not None and len(a) and total > 0:
        spend = a_cost.groupby(a_ag).sum()
        hit = spend[spend >= share_c * total - np.maximum(0.01, 1e-6 * share_c * total)]
        n = int(_reason_counts(unserved, "city_share"))  # type: ignore[arg-type]
        for ag, v in hit.items():
            out.append(Limit("max_share_in_city", str(ag), float(v / total), float(share_c), n,
                             {str(ag): ag_names.get(str(ag), "")}))

    # minimum agencies per served district, maximum districts per agency
    k_min = int(am.get("min_agencies_per_district") or 0)
    if k_min > 1 and len(a):
        n_ag = a_ag.groupby(a_d).nunique()
        left = _reason_counts(unserved, "min_agencies", "district_id")
        for d, n in n_ag[n_ag <= k_min].items():
            out.append(Limit("min_agencies_per_district", str(d), float(n), float(k_min),
                             int(left.get(d, 0)) if isinstance(left, pd.Series) else 0,
                             {str(d): dist_names.get(str(d), "")}))
    k_max = am.get("max_districts_per_agency")
    if k_max is not None and len(a):
        n_d = a_d.groupby(a_ag).nunique()
        for ag, n in n_d[n_d >= int(k_max)].items():
            out.append(Limit("max_districts_per_agency", str(ag), float(n), float(k_max), 0,
                             {str(ag): ag_names.get(str(ag), "")}))

    # minimum coverage per district
    ratio = float(cov.get("min_district_ratio") or 0.0)
    if ratio > 0 and len(districts):
        wt = _num(districts, "weight_total")
        ws = _num(districts, "weight_served")
        for d, t, s in zip(districts["district_id"].astype(str), wt, ws, strict=True):
            if t > 0 and s <= ratio * t + 1e-6:
                out.append(Limit("min_district_ratio", d, float(s / t), ratio, 0,
                                 {d: dist_names.get(d, "")}))
    return out


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
