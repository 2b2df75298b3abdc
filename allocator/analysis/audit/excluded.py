"""The audit of excluded.csv: every offer or triple it lists exists and its reason is true, and
every candidate the rules keep out is listed (as a triple, or through its offer).

A row with an enterprise_id names a triple (agency, enterprise, service): the agency's quote
for that demand or its bid for the demand's (service, sector); its reason must be a rule that
keeps that triple out. A row without one names an offer, a bid (agency, service, sector, and
for service_area the district): its reason must hold for the bid itself (status suspended or
blacklisted, quality below min_score, day rate outside the price band, district outside the
agency's area), and then it covers every triple priced by that bid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    Violation,
    add_violations,
    join_keys,
)
from allocator.analysis.audit.offers import RULES, area_of, near_price, pairs_in

FILE = "excluded.csv"
#: findings of one kind listed one by one before they are counted
SHOWN = 20


def check_excluded(out: list[Violation], inst, cand: pd.DataFrame, x: pd.DataFrame) -> None:
    """excluded.csv against the candidates recomputed from the instance."""
    pol = inst.policy
    x = x.copy()
    for col in ("sector", "district_id"):
        if col not in x.columns:
            x[col] = ""
    unknown = ~x["reason"].isin(RULES)
    add_violations(out, "excluded_reason", FILE, x, unknown,
                   lambda r: join_keys(r, ["agency_id", "enterprise_id", "service_id"]),
                   lambda r: "reason " + r["reason"].map(repr) + " is not one of "
                   + ", ".join(RULES))
    x = x[~unknown]
    triple_rows = x[x["enterprise_id"] != ""]
    offer_rows = x[x["enterprise_id"] == ""]
    covered = _check_triple_rows(out, pol, cand, triple_rows)
    covered |= _check_offer_rows(out, inst, cand, offer_rows)
    missing = cand[~cand["eligible"].to_numpy() & ~covered]
    if len(missing):
        first = missing.iloc[:SHOWN].assign(
            _why=lambda m: m[[f"fail_{r}" for r in RULES]].idxmax(axis=1).str[5:])
        add_violations(out, "excluded_missing", FILE, first, np.ones(len(first), bool),
                       lambda r: join_keys(r, ["agency_id", "enterprise_id", "service_id"]),
                       lambda r: "the rules keep this offer out (" + r["_why"]
                       + ") but excluded.csv does not list it", row=None)
        if len(missing) > SHOWN:
            out.append(Violation("excluded_missing", FILE, None, "",
                                 f"{len(missing) - SHOWN} more kept-out offers are not listed"))


def _check_triple_rows(out: list[Violation], pol, cand: pd.DataFrame,
                       rows: pd.DataFrame) -> np.ndarray:
    """Triple rows: the triple exists and its reason keeps it out. Returns the candidates
    they cover."""
    key = ["agency_id", "enterprise_id", "service_id"]
    index = pd.MultiIndex.from_frame(cand[key])
    at = index.get_indexer(pd.MultiIndex.from_frame(rows[key])) if len(rows) else np.array(
        [], dtype=np.int64)
    subject = lambda r: join_keys(r, key)  # noqa: E731
    add_violations(out, "excluded_unknown", FILE, rows, at < 0, subject,
                   "no such offer: the agency has neither a quote for this demand nor a bid "
                   "for its service and sector (or the demand does not exist)")
    found = rows[at >= 0].assign(_c=at[at >= 0])
    c = cand.iloc[found["_c"].to_numpy()]
    near = near_price(c, pol)
    holds = np.zeros(len(found), dtype=bool)
    for rule in RULES:
        mine = (found["reason"] == rule).to_numpy()
        fails = c[f"fail_{rule}"].to_numpy()
        if rule in near.columns:
            fails = fails | near[rule].to_numpy()
        holds |= mine & fails
    add_violations(out, "excluded_reason", FILE, found, ~holds, subject,
                   lambda r: "reason " + r["reason"] + " does not keep this triple out"
                   + np.where(cand["eligible"].to_numpy()[r["_c"].to_numpy()],
                              " (the triple is eligible)", ""))
    covered = np.zeros(len(cand), dtype=bool)
    covered[found["_c"].to_numpy()] = True
    return covered


def _check_offer_rows(out: list[Violation], inst, cand: pd.DataFrame,
                      rows: pd.DataFrame) -> np.ndarray:
    """Offer rows: the bid exists and its reason holds for the bid. Returns the bid-priced
    candidates they cover."""
    pol = inst.policy
    ag = inst.agencies
    bids = inst.bids[["agency_id", "service_id", "sector", "day_rate"]].astype(
        {"agency_id": str, "service_id": str, "sector": str})
    subject = lambda r: join_keys(r, ["agency_id", "service_id", "sector"])  # noqa: E731
    # a blank sector (a writer without that column) stands for any of the agency's sectors
    r = rows.merge(bids, on=["agency_id", "service_id"], how="left", suffixes=("", "_bid"))
    r = r[(r["sector"] == "") | (r["sector"] == r["sector_bid"]) | r["sector_bid"].isna()]
    exists = r.groupby("_row")["sector_bid"].apply(lambda s: s.notna().any())
    add_violations(out, "excluded_unknown", FILE, rows,
                   ~rows["_row"].map(exists).fillna(False).astype(bool).to_numpy(), subject,
                   "no such offer: bids.csv has no bid of this agency for this service "
                   "and sector")
    r = r[r["sector_bid"].notna()].copy()
    rate = r["service_id"].map(inst.services["reference_rate"]).astype(float)
    status = r["agency_id"].map(ag["status"]).astype(object)
    everywhere, pairs = area_of(inst)
    in_area = (r["agency_id"].isin(everywhere).to_numpy()
               | pairs_in(r["agency_id"], r["district_id"], pairs))
    truth = {
        "status": ~status.isin(["active", "probation"]),
        "quality": r["agency_id"].map(ag["quality"]).astype(float) < pol.min_score,
        "service_area": (r["district_id"] != "").to_numpy() & ~in_area,
        "conflict": pd.Series(False, index=r.index),
        "abnormally_low": r["day_rate"] < pol.floor_ratio * rate * (1 + 1e-6),
        "above_ceiling": r["day_rate"] > pol.ceiling_ratio * rate * (1 - 1e-6),
    }
    # pins and rotation concern one demand: never an offer row's reason
    r["_holds"] = np.select([(r["reason"] == k).to_numpy() for k in truth],
                            [np.asarray(v, dtype=bool) for v in truth.values()], False)
    holds = r.groupby("_row")["_holds"].any()
    known = rows[rows["_row"].isin(holds.index)]
    add_violations(out, "excluded_reason", FILE, known,
                   ~known["_row"].map(holds).astype(bool).to_numpy(), subject,
                   lambda k: "reason " + k["reason"] + " does not hold for this offer"
                   + np.where(k["reason"] == "conflict",
                              " (a conflict concerns one enterprise: list the triple)", ""))
    # the bid-priced candidates each true offer row covers (its district only, if given)
    good = r[r["_holds"]]
    covered = np.zeros(len(cand), dtype=bool)
    if not len(good):
        return covered
    bid_priced = ~cand["quoted"].to_numpy()
    for with_district in (False, True):
        g = good[(good["district_id"] != "") == with_district]
        if not len(g):
            continue
        key = ["agency_id", "service_id", "sector_bid"] + (["district_id"] if with_district
                                                            else [])
        have = pd.MultiIndex.from_frame(g[key].drop_duplicates())
        ckey = ["agency_id", "service_id", "sector"] + (["district_id"] if with_district
                                                         else [])
        mine = pd.MultiIndex.from_frame(cand[ckey]).isin(have)
        covered |= mine & bid_priced
    return covered

