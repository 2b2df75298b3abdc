"""The frame-based eligibility as it was before the integer-code rewrite, kept as a reference.

tests/test_eligibility_lean.py checks that allocator.eligibility (numpy arrays, categorical
ids) gives exactly these triples and kept-out rows.

Original docstring: Eligibility (spec section 4): which (enterprise, service, agency) triples
may be chosen.

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

from allocator.data.instance import Instance

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
    return x.map(lambda v: f"{v:g}", na_action="ignore").astype(object)


def _first_failure(tests: list[tuple[str, pd.Series]], index: pd.Index) -> pd.Series:
    """The code of the first failing test per row ('' where all pass)."""
    reason = pd.Series("", index=index, dtype=object)
    for code, mask in reversed(tests):  # earlier tests overwrite later ones
        reason = reason.mask(np.asarray(mask, dtype=bool), code)
    return reason


def _details(frame: pd.DataFrame, texts: dict[str, callable]) -> pd.Series:
    """Human detail for the rows already given a reason, built only for those rows."""
    detail = pd.Series("", index=frame.index, dtype=object)
    for code, make in texts.items():
        rows = frame.index[frame["reason"] == code]
        if len(rows):
            detail.loc[rows] = make(frame.loc[rows]).astype(object).to_numpy()
    return detail


def pair_in(a: pd.Series, b: pd.Series, ref_a: pd.Series, ref_b: pd.Series) -> np.ndarray:
    """Whether each (a, b) pair occurs among the (ref_a, ref_b) pairs; integer keys, fast."""
    if len(a) == 0 or len(ref_a) == 0:
        return np.zeros(len(a), dtype=bool)
    cats_a = pd.Index(ref_a.unique())
    cats_b = pd.Index(ref_b.unique())
    ka, kb = cats_a.get_indexer(a), cats_b.get_indexer(b)
    known = (ka >= 0) & (kb >= 0)
    keys = ka.astype(np.int64) * len(cats_b) + kb
    ref = cats_a.get_indexer(ref_a).astype(np.int64) * len(cats_b) + cats_b.get_indexer(ref_b)
    return known & np.isin(keys, ref)


def _ratio(sub: pd.DataFrame, num: str, den: str) -> pd.Series:
    return (sub[num] / sub[den]).map(lambda v: f"{v:.3f}")


def classify(instance: Instance, cand: pd.DataFrame) -> pd.DataFrame:
    """Give each candidate triple its first failing rule (`reason`, '' if eligible) and detail.

    cand needs agency_id, enterprise_id, risk_level, district_id, cost, reference_cost.
    """
    pol = instance.policy
    ag = instance.agencies
    out = cand.copy()
    status = cand["agency_id"].map(ag["status"])
    out["quality"] = cand["agency_id"].map(ag["quality"]).astype(float)
    risk = cand["risk_level"].astype(int)
    out["needed"] = risk.map(pol.min_score_by_risk).astype(float).fillna(pol.min_score).clip(
        lower=pol.min_score)
    area, conf = instance.agency_districts, instance.conflicts
    tests = [
        (STATUS, ~(status.eq("active") | (status.eq("probation") & (risk <= 2)))),
        (QUALITY, out["quality"] < out["needed"]),
        (AREA, ~pair_in(cand["agency_id"], cand["district_id"], area["agency_id"],
                        area["district_id"])),
        (CONFLICT, pair_in(cand["agency_id"], cand["enterprise_id"], conf["agency_id"],
                           conf["enterprise_id"])),
        (LOW, cand["cost"] < pol.floor_ratio * cand["reference_cost"] * (1 - PRICE_RTOL)),
        (HIGH, cand["cost"] > pol.ceiling_ratio * cand["reference_cost"] * (1 + PRICE_RTOL)),
    ]
    out["reason"] = _first_failure(tests, cand.index)
    out["status"] = status
    out["detail"] = _details(out, {
        STATUS: lambda f: "status " + f["status"].astype(str) + " may not serve risk level "
        + f["risk_level"].astype(str),
        QUALITY: lambda f: "quality " + _fmt(f["quality"]) + " below the " + _fmt(f["needed"])
        + " required",
        AREA: lambda f: "agency does not serve district " + f["district_id"].astype(str),
        CONFLICT: lambda f: pd.Series("conflict of interest listed in conflicts.csv",
                                      index=f.index),
        LOW: lambda f: "cost is " + _ratio(f, "cost", "reference_cost")
        + f" x reference, below floor {pol.floor_ratio:g}",
        HIGH: lambda f: "cost is " + _ratio(f, "cost", "reference_cost")
        + f" x reference, above ceiling {pol.ceiling_ratio:g}",
    })
    return out.drop(columns=["needed", "status"])


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
    bids["reference_rate"] = bids["service_id"].map(instance.services["reference_rate"])
    ref = bids["reference_rate"]
    # a probation agency may still serve risk <= 2, so only suspended/blacklisted fail here
    bids["reason"] = _first_failure([
        (STATUS, ~bids["status"].isin(["active", "probation"])),
        (QUALITY, bids["quality"] < pol.min_score),
        (LOW, bids["day_rate"] < pol.floor_ratio * ref * (1 - PRICE_RTOL)),
        (HIGH, bids["day_rate"] > pol.ceiling_ratio * ref * (1 + PRICE_RTOL)),
    ], bids.index)
    bids["detail"] = _details(bids, {
        STATUS: lambda f: "status " + f["status"].astype(str),
        QUALITY: lambda f: "quality " + _fmt(f["quality"])
        + f" below min_score {pol.min_score:g}",
        LOW: lambda f: "day rate is " + _ratio(f, "day_rate", "reference_rate")
        + f" x reference rate, below floor {pol.floor_ratio:g}",
        HIGH: lambda f: "day rate is " + _ratio(f, "day_rate", "reference_rate")
        + f" x reference rate, above ceiling {pol.ceiling_ratio:g}",
    })
    # only offers that meet some demand are worth reporting
    wanted = dem[["service_id", "sector", "district_id"]].drop_duplicates()
    bad = bids[bids["reason"] != ""]
    bad = bad[pd.MultiIndex.from_frame(bad[["service_id", "sector"]]).isin(
        pd.MultiIndex.from_frame(wanted[["service_id", "sector"]]))]
    excluded = [bad.assign(enterprise_id="", district_id="", scope="offer")]
    good = bids[bids["reason"] == ""].drop(columns=["reason", "detail"])
    reach = good.merge(wanted, on=["service_id", "sector"])
    area = instance.agency_districts
    in_area = pair_in(reach["agency_id"], reach["district_id"], area["agency_id"],
                      area["district_id"])
    out_area = reach[~in_area].assign(enterprise_id="", scope="offer", reason=AREA)
    out_area["detail"] = ("agency does not serve district "
                          + out_area["district_id"].astype(str)).astype(object)
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
