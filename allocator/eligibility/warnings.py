"""Warnings about demands the data leaves without any eligible agency (the data is legal, but
the solve will answer infeasible)."""

from __future__ import annotations

import pandas as pd

from allocator.core.errors import Problem
from allocator.data.instance import Instance
from allocator.eligibility.rules import Eligibility, candidate_reasons


def mandatory_warnings(inst: Instance, elig: Eligibility, limit: int = 50) -> list[Problem]:
    """Demands at a mandatory level that no agency can take, with why (warnings, since the
    data is legal; the solve will answer infeasible and name them)."""
    dem = inst.demands
    mand = dem["risk_level"].isin(inst.policy.mandatory_levels).to_numpy()
    stuck = dem.index[mand & ~dem.index.isin(elig.triples["demand"])]
    if not len(stuck):
        return []
    shown = dem.loc[stuck[:limit]]
    offered = (shown.merge(inst.bids[["service_id", "sector"]].drop_duplicates()).shape[0]
               + shown.merge(inst.quotes[["enterprise_id", "service_id"]]).shape[0])
    why = pd.Series(dtype=object)
    if offered:  # candidate_reasons needs at least one offer to classify
        cand = candidate_reasons(inst, stuck[:limit])
        why = (cand.groupby("demand")["reason"]
               .agg(lambda r: ", ".join(f"{k} {n}" for k, n in r.value_counts().items())))
    out = []
    for d in stuck[:limit]:
        e, s, lvl = dem.at[d, "enterprise_id"], dem.at[d, "service_id"], dem.at[d, "risk_level"]
        reason = (f"offers kept out by rule: {why[d]}" if d in why.index else
                  f"no agency bids for service {s} in sector {dem.at[d, 'sector']}")
        out.append(Problem("demands.csv", None, "enterprise_id", e,
                           f"mandatory demand (risk level {lvl}, service {s}) that no agency "
                           f"can take: {reason}",
                           "add a bid or quote from an eligible agency, or review the policy's "
                           "quality and price thresholds; otherwise the plan is infeasible",
                           "warning"))
    if len(stuck) > limit:
        out.append(Problem("demands.csv", None, "enterprise_id", None,
                           f"{len(stuck) - limit} more mandatory demands no agency can take",
                           "see `allocator diagnose`", "warning"))
    return out
