"""Eligibility (spec section 4): which (enterprise, service, agency) triples may be chosen.

Vectorised over merges and boolean masks. Rules that hold for a whole offer (an agency's
status, its base quality, a bid's day rate against the reference rate, a service area) are
applied to the offer before it meets the demands, so kept-out offers never become triples;
rules that depend on the enterprise (probation vs risk, quality by risk, conflicts, quoted
prices) are applied per triple. Every kept-out offer or triple is listed with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.instance import Instance

#: relative tolerance of the price-band comparisons (so 0.8 x 1000 admits a cost of 800)
PRICE_RTOL = 1e-9

TRIPLE_COLUMNS = ["demand", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
                  "risk_level", "weight", "quality", "cost", "load", "reference_cost", "quoted"]
EXCLUDED_COLUMNS = ["agency_id", "enterprise_id", "service_id", "reason", "scope", "sector",
                    "district_id", "detail"]

# reason codes, in the order they are tested (the first failing one is reported)
STATUS, QUALITY, AREA, CONFLICT, LOW, HIGH = (
    "status", "quality", "service_area", "conflict", "abnormally_low", "above_ceiling")


@dataclass(frozen=True)
class Eligibility:
    """Eligible triples (one row each, RangeIndex = triple number) and kept-out offers."""

    triples: pd.DataFrame
    excluded: pd.DataFrame


def _fmt(x: pd.Series) -> pd.Series:
    return x.map(lambda v: f"{v:g}")


def classify(instance: Instance, cand: pd.DataFrame) -> pd.DataFrame:
    """Give each candidate triple its first failing rule (`reason`, '' if eligible) and detail.

    cand needs agency_id, enterprise_id, risk_level, district_id, cost, reference_cost.
    """
    pol = instance.policy
    ag = instance.agencies
    status = cand["agency_id"].map(ag["status"])
    quality = cand["agency_id"].map(ag["quality"]).astype(float)
    risk = cand["risk_level"].astype(int)
    needed = risk.map(pol.min_score_by_risk).fillna(pol.min_score).clip(lower=pol.min_score)
    bad_status = ~(status.eq("active") | (status.eq("probation") & (risk <= 2)))
    bad_quality = quality < needed
    served = pd.MultiIndex.from_frame(instance.agency_districts[["agency_id", "district_id"]])
    bad_area = ~pd.MultiIndex.from_frame(cand[["agency_id", "district_id"]]).isin(served)
    conflicts = pd.MultiIndex.from_frame(instance.conflicts[["agency_id", "enterprise_id"]])
    bad_conflict = pd.MultiIndex.from_frame(cand[["agency_id", "enterprise_id"]]).isin(conflicts)
    ratio = cand["cost"] / cand["reference_cost"]
    low = cand["cost"] < pol.floor_ratio * cand["reference_cost"] * (1 - PRICE_RTOL)
    high = cand["cost"] > pol.ceiling_ratio * cand["reference_cost"] * (1 + PRICE_RTOL)
    tests = [
        (STATUS, bad_status, "status " + status.astype(str) + " may not serve risk level "
         + risk.astype(str)),
        (QUALITY, bad_quality, "quality " + _fmt(quality) + " below the " + _fmt(needed)
         + " required"),
        (AREA, pd.Series(bad_area, index=cand.index),
         "agency does not serve district " + cand["district_id"].astype(str)),
        (CONFLICT, pd.Series(bad_conflict, index=cand.index), pd.Series(
            "conflict of interest listed in conflicts.csv", index=cand.index)),
        (LOW, low, "cost is " + ratio.map(lambda v: f"{v:.3f}") + " x reference, below floor "
         + f"{pol.floor_ratio:g}"),
        (HIGH, high, "cost is " + ratio.map(lambda v: f"{v:.3f}") + " x reference, above "
         + f"ceiling {pol.ceiling_ratio:g}"),
    ]
    reason = pd.Series("", index=cand.index, dtype=object)
    detail = pd.Series("", index=cand.index, dtype=object)
    for code, mask, text in reversed(tests):  # earlier tests overwrite later ones
        reason = reason.mask(mask, code)
        detail = detail.mask(mask, text)
    out = cand.copy()
    out["quality"] = quality
    out["reason"] = reason
    out["detail"] = detail
    return out


def _demands(instance: Instance) -> pd.DataFrame:
    dem = instance.demands.reset_index()
    dem["reference_cost"] = dem["person_days"] * dem["service_id"].map(
        instance.services["reference_rate"])
    return dem


def _quote_triples(instance: Instance, dem: pd.DataFrame) -> pd.DataFrame:
    q = instance.quotes.merge(dem, on=["enterprise_id", "service_id"], how="inner",
                              suffixes=("_quote", ""))
    q["cost"] = q["price"].astype(float)
    q["load"] = q["person_days_quote"].astype(float)
    q["quoted"] = True
    return q


def offer_exclusions(instance: Instance, dem: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bids into usable ones and kept-out offers (status, base quality, price, area).

    Returns (usable bids per served district, excluded offer rows).
    """
    pol = instance.policy
    ag = instance.agencies
    bids = instance.bids.copy()
    bids["status"] = bids["agency_id"].map(ag["status"])
    bids["quality"] = bids["agency_id"].map(ag["quality"]).astype(float)
    ref = bids["service_id"].map(instance.services["reference_rate"])
    ratio = bids["day_rate"] / ref
    # a probation agency may still serve risk <= 2, so only suspended/blacklisted fail here
    tests = [
        (STATUS, ~bids["status"].isin(["active", "probation"]),
         "status " + bids["status"].astype(str)),
        (QUALITY, bids["quality"] < pol.min_score,
         "quality " + _fmt(bids["quality"]) + f" below min_score {pol.min_score:g}"),
        (LOW, bids["day_rate"] < pol.floor_ratio * ref * (1 - PRICE_RTOL),
         "day rate is " + ratio.map(lambda v: f"{v:.3f}") + " x reference rate, below floor "
         + f"{pol.floor_ratio:g}"),
        (HIGH, bids["day_rate"] > pol.ceiling_ratio * ref * (1 + PRICE_RTOL),
         "day rate is " + ratio.map(lambda v: f"{v:.3f}") + " x reference rate, above ceiling "
         + f"{pol.ceiling_ratio:g}"),
    ]
    bids["reason"] = ""
    bids["detail"] = ""
    for code, mask, text in reversed(tests):
        bids["reason"] = bids["reason"].mask(mask, code)
        bids["detail"] = bids["detail"].mask(mask, text)
    # only offers that meet some demand are worth reporting
    wanted = dem[["service_id", "sector", "district_id"]].drop_duplicates()
    bad = bids[bids["reason"] != ""]
    bad = bad[pd.MultiIndex.from_frame(bad[["service_id", "sector"]]).isin(
        pd.MultiIndex.from_frame(wanted[["service_id", "sector"]]))]
    excluded = [bad.assign(enterprise_id="", district_id="", scope="offer")]
    good = bids[bids["reason"] == ""].drop(columns=["reason", "detail"])
    reach = good.merge(wanted, on=["service_id", "sector"])
    served = pd.MultiIndex.from_frame(instance.agency_districts[["agency_id", "district_id"]])
    in_area = pd.MultiIndex.from_frame(reach[["agency_id", "district_id"]]).isin(served)
    out_area = reach[~in_area].assign(
        enterprise_id="", scope="offer", reason=AREA,
        detail="agency does not serve district " + reach.loc[~in_area, "district_id"])
    excluded.append(out_area)
    exc = pd.concat(excluded, ignore_index=True)[EXCLUDED_COLUMNS]
    return reach[in_area], exc


def compute_eligibility(instance: Instance) -> Eligibility:
    """All eligible triples with cost, load, weight and quality; all kept-out offers."""
    dem = _demands(instance)
    usable, excluded_offers = offer_exclusions(instance, dem)
    from_bids = usable[["agency_id", "service_id", "sector", "district_id", "day_rate"]].merge(
        dem, on=["service_id", "sector", "district_id"])
    from_bids["cost"] = from_bids["person_days"] * from_bids["day_rate"]
    from_bids["load"] = from_bids["person_days"]
    from_bids["quoted"] = False
    quotes = _quote_triples(instance, dem)
    if len(quotes):
        qkey = pd.MultiIndex.from_frame(quotes[["agency_id", "enterprise_id", "service_id"]])
        bkey = pd.MultiIndex.from_frame(from_bids[["agency_id", "enterprise_id", "service_id"]])
        from_bids = from_bids[~bkey.isin(qkey)]
    cols = ["demand", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
            "risk_level", "weight", "cost", "load", "reference_cost", "quoted"]
    cand = pd.concat([from_bids[cols], quotes[cols]], ignore_index=True)
    cand = classify(instance, cand)
    keep = cand["reason"] == ""
    triple_excl = cand.loc[~keep].assign(scope="triple")[EXCLUDED_COLUMNS]
    triples = (cand.loc[keep, TRIPLE_COLUMNS]
               .sort_values(["demand", "agency_id"], kind="stable")
               .reset_index(drop=True))
    triples.index.name = "triple"
    triples["quoted"] = triples["quoted"].astype(bool)
    excluded = pd.concat([triple_excl, excluded_offers], ignore_index=True)
    return Eligibility(triples=triples, excluded=excluded.reset_index(drop=True))


def candidate_reasons(instance: Instance, demand_ids: np.ndarray | pd.Index) -> pd.DataFrame:
    """Every offer that could meet the given demands, each with its first failing rule.

    For explaining demands no agency can take; not used to build the model.
    """
    dem = _demands(instance)
    dem = dem[dem["demand"].isin(demand_ids)]
    bids = instance.bids.merge(dem, on=["service_id", "sector"])
    bids["cost"] = bids["person_days"] * bids["day_rate"]
    bids["quoted"] = False
    quotes = _quote_triples(instance, dem)
    if len(quotes):
        qkey = pd.MultiIndex.from_frame(quotes[["agency_id", "enterprise_id", "service_id"]])
        bkey = pd.MultiIndex.from_frame(bids[["agency_id", "enterprise_id", "service_id"]])
        bids = bids[~bkey.isin(qkey)]
    cols = ["demand", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
            "risk_level", "cost", "reference_cost", "quoted"]
    cand = pd.concat([bids[cols], quotes[cols]], ignore_index=True)
    return classify(instance, cand)
