"""Eligibility of the triples the planner's year names: pinned assignments (each must be
eligible, else an input error naming the rule it breaks) and last year's incumbents (still
eligible this year, or kept out by which rule), both by `classify`, the rules' own test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.core.errors import InputError, Problem
from allocator.data.instance import Instance
from allocator.eligibility.rules import classify

NO_OFFER, LEFT_POOL = "no_offer", "left_pool"

#: how to lift each rule from a pinned triple (the fix of its input error)
PIN_FIXES = {
    "status": "the agency's status keeps it off this demand (suspended or blacklisted, or "
              "probation on risk level 3-4): remove the pin, or correct the status in "
              "agencies.csv",
    "quality": "the agency's quality is below what this risk level requires: remove the pin, "
               "or review quality.min_score / min_score_by_risk",
    "service_area": "the agency does not serve this district: remove the pin, or add the "
                    "district to the agency's districts in agencies.csv",
    "conflict": "conflicts.csv forbids this pair: remove the pin or the conflict",
    "abnormally_low": "the price is below price.floor_ratio x the reference cost: remove the "
                      "pin, or review the bid/quote or the floor",
    "above_ceiling": "the price is above price.ceiling_ratio x the reference cost: remove the "
                     "pin, or review the bid/quote or the ceiling",
    "tenure": "the agency is this demand's incumbent beyond continuity.max_tenure_years: "
              "remove the pin, or raise max_tenure_years",
    NO_OFFER: "add a bid (bids.csv) or a quote (quotes.csv) of this agency for this demand, "
              "or remove the pin",
}


def offer_candidates(instance: Instance, pairs: pd.DataFrame) -> pd.DataFrame:
    """The given (demand, agency_id) pairs as candidate triples for `classify`: the demand's
    fields, cost and load from the quote (which overrides the bid) or the bid; `offered` is
    False where the agency has neither."""
    dem = instance.demands
    d = dem.loc[pairs["demand"].to_numpy()]
    cand = pd.DataFrame({
        "demand": pairs["demand"].to_numpy(),
        "agency_id": pairs["agency_id"].astype(str).to_numpy(),
        "enterprise_id": d["enterprise_id"].astype(str).to_numpy(),
        "service_id": d["service_id"].astype(str).to_numpy(),
        "district_id": d["district_id"].astype(str).to_numpy(),
        "sector": d["sector"].astype(str).to_numpy(),
        "risk_level": d["risk_level"].to_numpy(),
        "person_days": d["person_days"].to_numpy(dtype=float)}, index=pairs.index)
    cand["reference_cost"] = cand["person_days"] * cand["service_id"].map(
        instance.services["reference_rate"]).astype(float)
    q = instance.quotes.astype({"agency_id": str, "enterprise_id": str, "service_id": str})
    q = q.drop_duplicates(["agency_id", "enterprise_id", "service_id"])
    qk = pd.MultiIndex.from_frame(q[["agency_id", "enterprise_id", "service_id"]])
    ck = pd.MultiIndex.from_frame(cand[["agency_id", "enterprise_id", "service_id"]])
    at = qk.get_indexer(ck)
    b = instance.bids.astype({"agency_id": str, "service_id": str, "sector": str})
    b = b.drop_duplicates(["agency_id", "service_id", "sector"])
    bk = pd.MultiIndex.from_frame(b[["agency_id", "service_id", "sector"]])
    bt = bk.get_indexer(pd.MultiIndex.from_frame(cand[["agency_id", "service_id", "sector"]]))
    quoted = at >= 0

    def pick(values: pd.Series, where: np.ndarray) -> np.ndarray:  # -1: NaN
        return np.append(values.to_numpy(dtype=float), np.nan)[where]

    rate = pick(b["day_rate"], bt)
    cand["quoted"] = quoted
    cand["cost"] = np.where(quoted, pick(q["price"], at), cand["person_days"] * rate)
    cand["load"] = np.where(quoted, pick(q["person_days"], at), cand["person_days"])
    cand["offered"] = quoted | (bt >= 0)
    return cand


def classify_pairs(instance: Instance, pairs: pd.DataFrame) -> pd.DataFrame:
    """Each (demand, agency_id) pair with its first failing rule (`reason`, '' if eligible),
    `detail`, cost, load and quality; `left_pool` / `no_offer` where the agency is not in the
    pool or has no offer for the demand."""
    out = pairs.copy()
    out["reason"], out["detail"] = "", ""
    out["cost"] = out["load"] = out["quality"] = np.nan
    in_pool = pairs["agency_id"].astype(str).isin(instance.agencies.index.astype(str))
    out.loc[~in_pool, "reason"] = LEFT_POOL
    out.loc[~in_pool, "detail"] = "the agency is no longer in agencies.csv"
    if not in_pool.any():
        return out
    cand = offer_candidates(instance, pairs[in_pool])
    none = ~cand["offered"]
    out.loc[none[none].index, "reason"] = NO_OFFER
    out.loc[none[none].index, "detail"] = ("the agency has neither a bid for this service and "
                                           "sector nor a quote for this demand this year")
    offered = cand[~none]
    if len(offered):
        judged = classify(instance, offered)
        out.loc[judged.index, "reason"] = judged["reason"].to_numpy()
        out.loc[judged.index, "detail"] = judged["detail"].to_numpy()
        out.loc[judged.index, "cost"] = judged["cost"].to_numpy()
        out.loc[judged.index, "load"] = judged["load"].to_numpy()
        out.loc[judged.index, "quality"] = judged["quality"].to_numpy()
    return out


def check_assign_pins(instance: Instance) -> None:
    """Every `assign` pin names an eligible triple; else InputError naming, per pin, the
    eligibility rule it breaks and how to lift it."""
    pins = instance.pins
    assign = pins[pins["action"] == "assign"]
    if assign.empty:
        return
    judged = classify_pairs(instance, assign[["demand", "agency_id"]])
    bad = judged["reason"] != ""
    if not bad.any():
        return
    problems = []
    for k in np.flatnonzero(bad.to_numpy()):
        pin, why = assign.iloc[k], judged.iloc[k]
        problems.append(Problem(
            "pins.csv", int(pin["row"]), "agency_id", pin["agency_id"],
            f"assign pin of agency {pin['agency_id']} on enterprise {pin['enterprise_id']}'s "
            f"service {pin['service_id']} names a triple that is not eligible: rule "
            f"'{why['reason']}' ({why['detail']})",
            PIN_FIXES.get(str(why["reason"]), "remove the pin")))
    raise InputError(problems)


def incumbent_status(instance: Instance) -> pd.DataFrame:
    """Each incumbent of a demand of this year: demand, enterprise_id, service_id, agency_id,
    years, eligible (may serve its demand this year), reason and detail (the first rule that
    keeps it out: a spec rule, `pinned`, `tenure`, `no_offer` or `left_pool`), and this year's
    cost, load and quality of its triple."""
    inc = instance.incumbents
    cols = ["demand", "enterprise_id", "service_id", "agency_id", "years"]
    if inc.empty:
        return pd.DataFrame(columns=cols + ["eligible", "reason", "detail", "cost", "load",
                                           "quality"])
    judged = classify_pairs(instance, inc[["demand", "agency_id"]].reset_index(drop=True))
    out = inc[cols].reset_index(drop=True).copy()
    for col in ("reason", "detail", "cost", "load", "quality"):
        out[col] = judged[col].to_numpy()
    out["eligible"] = out["reason"] == ""
    return out


def _matches(instance: Instance, triples: pd.DataFrame, named: pd.DataFrame) -> np.ndarray:
    """Whether each triple (demand, agency_id) is the one `named` (demand, agency_id rows, at
    most one per demand) gives its demand. Categorical ids are compared by code."""
    if named.empty or triples.empty:
        return np.zeros(len(triples), dtype=bool)
    agencies = instance.agencies.index
    to = np.full(len(instance.demands), -1, dtype=np.int64)
    to[named["demand"].to_numpy()] = agencies.get_indexer(named["agency_id"].astype(str))
    col = triples["agency_id"]
    if isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.equals(agencies):
        codes = col.cat.codes.to_numpy().astype(np.int64)
    else:
        codes = agencies.get_indexer(col.astype(str)).astype(np.int64)
    mine = to[triples["demand"].to_numpy()]
    return (mine >= 0) & (mine == codes)


def incumbent_triples(instance: Instance, triples: pd.DataFrame) -> np.ndarray:
    """Whether each eligible triple (demand, agency_id) is its demand's incumbent."""
    return _matches(instance, triples, instance.incumbents)


def pinned_triples(instance: Instance, triples: pd.DataFrame) -> np.ndarray:
    """Whether each eligible triple is fixed by an `assign` pin."""
    pins = instance.pins
    return _matches(instance, triples, pins[pins["action"] == "assign"])
