"""Why a plan is infeasible: named rules, subjects and sizes (spec section 6, diagnosis.csv).

Checks that need no solver come first (mandatory demands nobody may serve, districts with
too few eligible agencies).
"""

from __future__ import annotations

import pandas as pd

from allocator.eligibility import Eligibility, candidate_reasons
from allocator.instance import Instance
from allocator.results import DIAGNOSIS_COLUMNS


def unservable_mandatory(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Mandatory demands with no eligible agency, each with why its candidates were kept out."""
    dem, pol = instance.demands, instance.policy
    mand = dem[dem["risk_level"].isin(pol.mandatory_levels)]
    lost = mand[~mand.index.isin(elig.triples["demand"])]
    if lost.empty:
        return pd.DataFrame(columns=DIAGNOSIS_COLUMNS)
    cand = candidate_reasons(instance, lost.index)
    why = cand.groupby("demand")["reason"].agg(lambda s: ", ".join(
        f"{n} by {r}" for r, n in s.value_counts().items()))
    rows = []
    for d, row in lost.iterrows():
        reasons = why.get(d, "")
        rows.append({
            "rule": "mandatory_no_eligible_agency",
            "subject": f"{row['enterprise_id']}/{row['service_id']}",
            "required": 1, "available": 0, "shortfall": 1,
            "message": (f"Major-risk demand {row['service_id']} of enterprise "
                        f"{row['enterprise_id']} (district {row['district_id']}, sector "
                        f"{row['sector']}) has no eligible agency"
                        + (f"; candidates kept out: {reasons}." if reasons else
                           "; no agency bids for this service and sector."))})
    return pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)


def too_few_agencies(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Districts that must be served (mandatory demand) with fewer eligible agencies than asked."""
    pol = instance.policy
    k = pol.min_agencies_per_district
    if k <= 1:
        return pd.DataFrame(columns=DIAGNOSIS_COLUMNS)
    dem = instance.demands
    must = dem.loc[dem["risk_level"].isin(pol.mandatory_levels), "district_id"].unique()
    if pol.min_district_ratio > 0:
        must = dem.loc[dem["weight"] > 0, "district_id"].unique()
    n = elig.triples.groupby("district_id")["agency_id"].nunique().reindex(must).fillna(0)
    short = n[n < k]
    return pd.DataFrame({
        "rule": "min_agencies_per_district", "subject": short.index,
        "required": k, "available": short.astype(int).to_numpy(),
        "shortfall": (k - short).astype(int).to_numpy(),
        "message": [f"District {d} has {int(v)} eligible agencies; the policy asks for {k}."
                    for d, v in short.items()]}, columns=DIAGNOSIS_COLUMNS)


def diagnose(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Every reason that can be named for infeasibility, as diagnosis.csv rows."""
    parts = [unservable_mandatory(instance, elig), too_few_agencies(instance, elig)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame([{
            "rule": "unexplained", "subject": "model", "required": None, "available": None,
            "shortfall": None,
            "message": "The rules cannot all hold together; no single rule was isolated."}],
            columns=DIAGNOSIS_COLUMNS)
    return pd.concat(parts, ignore_index=True)
