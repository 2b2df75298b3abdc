"""The audit of each row: eligibility, cost, load and weight of each assignment, the unserved
rows, and each demand exactly once; the instance recomputed plainly from its frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    MONEY_ATOL,
    NUM_ATOL,
    NUM_RTOL,
    PRICE_RTOL,
    ROW_OFFSET,
    Violation,
    add_violations,
    as_numbers,
    column_of,
    differs,
    format_values,
    join_keys,
    show_cell,
    show_money,
)


def demand_table(inst, weights: dict[int, float]) -> pd.DataFrame:
    """One row per demand: its enterprise's district, sector and risk, weight, reference cost."""
    src = inst.demands
    given = src["weight_given"] if "weight_given" in src.columns else src["weight"]
    d = pd.DataFrame({"enterprise_id": src["enterprise_id"].astype(str).to_numpy(),
                      "service_id": src["service_id"].astype(str).to_numpy(),
                      "person_days": src["person_days"].astype(float).to_numpy(),
                      "weight_given": given.astype(float).to_numpy()})
    ent = inst.enterprises
    d["district_id"] = d["enterprise_id"].map(ent["district_id"]).astype(str)
    d["sector"] = d["enterprise_id"].map(ent["sector"]).astype(str)
    d["risk_level"] = d["enterprise_id"].map(ent["risk_level"]).astype(int)
    d["weight"] = d["weight_given"].fillna(d["risk_level"].map(weights)).astype(float)
    d["reference_cost"] = d["person_days"] * d["service_id"].map(
        inst.services["reference_rate"]).astype(float)
    d["demand_row"] = np.arange(len(d)) + ROW_OFFSET
    return d


def service_area(inst) -> tuple[set[str], set[tuple[str, str]]]:
    """Agencies serving every district ('*') and the (agency, district) pairs listed."""
    ag = inst.agencies
    text = ag["districts"].astype(str).str.strip()
    everywhere = set(ag.index[text == "*"])
    listed = text[text != "*"].str.split(";").explode().str.strip()
    pairs = {(a, d) for a, d in zip(listed.index, listed, strict=True) if d}
    return everywhere, pairs


def evaluate_assignments(inst, dem: pd.DataFrame, a: pd.DataFrame) -> pd.DataFrame:
    """Each assignment row with what the instance says about it (offer, cost, load, rules)."""
    pol = inst.policy
    ag = inst.agencies
    t = a[["_row", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
           "risk_level", "weight", "load", "cost"]].rename(
        columns={c: f"f_{c}" for c in ("district_id", "sector", "risk_level", "weight", "load",
                                       "cost")})
    t = t.merge(dem, on=["enterprise_id", "service_id"], how="left", indicator="_dem")
    t["known_demand"] = t["_dem"] == "both"
    t["known_agency"] = t["agency_id"].isin(ag.index)
    q = inst.quotes[["agency_id", "enterprise_id", "service_id", "price", "person_days"]].rename(
        columns={"price": "q_price", "person_days": "q_days"}).astype(
        {"agency_id": str, "enterprise_id": str, "service_id": str})
    q = q.drop_duplicates(["agency_id", "enterprise_id", "service_id"])
    t = t.merge(q, on=["agency_id", "enterprise_id", "service_id"], how="left")
    b = inst.bids[["agency_id", "service_id", "sector", "day_rate"]].astype(
        {"agency_id": str, "service_id": str, "sector": str})
    b = b.drop_duplicates(["agency_id", "service_id", "sector"])
    t = t.merge(b, on=["agency_id", "service_id", "sector"], how="left")  # keys unique: 1:1
    t["quoted"] = t["q_price"].notna()
    t["has_offer"] = t["quoted"] | t["day_rate"].notna()
    t["cost_exp"] = np.where(t["quoted"], t["q_price"], t["person_days"] * t["day_rate"])
    t["load_exp"] = np.where(t["quoted"], t["q_days"], t["person_days"])
    t.loc[~t["has_offer"], ["cost_exp", "load_exp"]] = np.nan
    # the agency
    t["a_status"] = t["agency_id"].map(ag["status"]).astype(object)
    t["a_quality"] = t["agency_id"].map(ag["quality"]).astype(float)
    risk = t["risk_level"].fillna(0).astype(int)
    needed = {r: max(pol.min_score, pol.min_score_by_risk.get(r, pol.min_score))
              for r in range(5)}
    t["needed_quality"] = risk.map(needed).astype(float)
    t["ok_status"] = (t["a_status"] == "active") | ((t["a_status"] == "probation") & (risk <= 2))
    t["ok_quality"] = t["a_quality"] >= t["needed_quality"]
    everywhere, pairs = service_area(inst)
    t["ok_area"] = [a_id in everywhere or (a_id, d_id) in pairs
                    for a_id, d_id in zip(t["agency_id"], t["district_id"], strict=True)]
    conflicts = set(zip(inst.conflicts["agency_id"].astype(str),
                        inst.conflicts["enterprise_id"].astype(str), strict=True))
    t["ok_conflict"] = [(a_id, e_id) not in conflicts
                        for a_id, e_id in zip(t["agency_id"], t["enterprise_id"], strict=True)]
    ref = t["reference_cost"]
    t["ok_floor"] = ~(t["cost_exp"] < pol.floor_ratio * ref * (1 - PRICE_RTOL))
    t["ok_ceiling"] = ~(t["cost_exp"] > pol.ceiling_ratio * ref * (1 + PRICE_RTOL))
    # what each row really weighs in the plan: the instance's numbers where it has them
    t["true_cost"] = t["cost_exp"].fillna(as_numbers(t["f_cost"])).fillna(0.0)
    t["true_load"] = t["load_exp"].fillna(as_numbers(t["f_load"])).fillna(0.0)
    t["true_weight"] = t["weight"].fillna(as_numbers(t["f_weight"])).fillna(0.0)
    t["true_district"] = t["district_id"].where(t["known_demand"], t["f_district_id"])
    t["true_risk"] = t["risk_level"].where(t["known_demand"], as_numbers(t["f_risk_level"]))
    t["true_quality"] = t["a_quality"].fillna(0.0)
    t["subject"] = join_keys(t, ["enterprise_id", "service_id", "agency_id"])
    return t


def check_assignment_rows(out: list[Violation], inst, t: pd.DataFrame) -> None:
    """Per row: known ids, eligibility (section 4), fields, cost and load."""
    f = "assignments.csv"
    pol = inst.policy
    subj = column_of("subject")
    add_violations(out, "unknown_demand", f, t, ~t["known_demand"], subj,
         "no such demand in demands.csv (enterprise_id, service_id)")
    add_violations(out, "unknown_agency", f, t, ~t["known_agency"], subj,
         "agency_id is not in the instance's agencies.csv")
    k = t[t["known_demand"] & t["known_agency"]]
    add_violations(out, "no_offer", f, k, ~k["has_offer"], subj,
         lambda r: "the agency has neither a bid for (" + r["service_id"] + ", " + r["sector"]
         + ") nor a quote for this demand")
    add_violations(out, "status", f, k, ~k["ok_status"], subj,
         lambda r: "agency status " + r["a_status"].astype(str) + " may not serve risk level "
         + r["risk_level"].astype(int).astype(str)
         + " (active: any level; probation: levels 1-2 only)")
    add_violations(out, "quality", f, k, ~k["ok_quality"], subj,
         lambda r: "agency quality " + format_values(r["a_quality"]) + " is below the "
         + format_values(r["needed_quality"]) + " required at risk level "
         + r["risk_level"].astype(int).astype(str))
    add_violations(out, "service_area", f, k, ~k["ok_area"], subj,
         lambda r: "the agency does not serve district " + r["district_id"]
         + " (its agencies.csv districts do not list it)")
    add_violations(out, "conflict", f, k, ~k["ok_conflict"], subj,
         lambda r: "conflicts.csv forbids this agency for enterprise " + r["enterprise_id"])
    priced = k[k["has_offer"]]

    def band(r: pd.DataFrame) -> pd.Series:
        ratio = format_values(r["cost_exp"] / r["reference_cost"], lambda v: f"{v:.4f}")
        return ("cost " + format_values(r["cost_exp"], show_money) + " is " + ratio
                + " x the reference cost "
                + format_values(r["reference_cost"], show_money))

    add_violations(out, "price_floor", f, priced, ~priced["ok_floor"], subj,
         lambda r: band(r) + f", below floor_ratio {pol.floor_ratio:g}")
    add_violations(out, "price_ceiling", f, priced, ~priced["ok_ceiling"], subj,
         lambda r: band(r) + f", above ceiling_ratio {pol.ceiling_ratio:g}")
    # the demand's own fields must be copied right
    field_mismatches(out, f, t[t["known_demand"]])

    # cost and load against the instance
    def how(r: pd.DataFrame) -> pd.Series:
        bid = (format_values(r["person_days"]) + " person-days x day rate "
               + format_values(r["day_rate"]))
        return bid.where(~r["quoted"], "the quote's price")

    bad = differs(priced["f_cost"], priced["cost_exp"], MONEY_ATOL)
    add_violations(out, "cost", f, priced, bad, subj,
         lambda r: "cost is " + format_values(r["f_cost"], show_cell) + ", the instance gives "
         + format_values(r["cost_exp"], show_money) + " (" + how(r) + ")")
    bad = differs(priced["f_load"], priced["load_exp"], NUM_ATOL, NUM_RTOL)
    add_violations(out, "load", f, priced, bad, subj,
         lambda r: "load is " + format_values(r["f_load"], show_cell) + ", the instance gives "
         + format_values(r["load_exp"]) + r["quoted"].map(
             {True: " (the quote's person_days)", False: " (demands.csv person_days)"}))


def field_mismatches(out: list[Violation], file: str, d: pd.DataFrame) -> None:
    """district_id, sector, risk_level and weight of a row must be the demand's."""
    subj = column_of("subject")
    for col in ("district_id", "sector"):
        add_violations(out, "demand_fields", file, d, d[f"f_{col}"] != d[col], subj,
             lambda r, col=col: col + " is " + format_values(r[f"f_{col}"], show_cell)  # type: ignore[misc]
             + ", the instance gives " + r[col])
    bad = differs(d["f_risk_level"], d["risk_level"].astype(float), 0.0)
    add_violations(out, "demand_fields", file, d, bad, subj,
         lambda r: "risk_level is " + format_values(r["f_risk_level"], show_cell)
         + ", the instance gives "
         + r["risk_level"].astype(int).astype(str))
    bad = differs(d["f_weight"], d["weight"], NUM_ATOL, NUM_RTOL)
    add_violations(out, "demand_fields", file, d, bad, subj,
         lambda r: "weight is " + format_values(r["f_weight"], show_cell) + ", the instance gives "
         + format_values(r["weight"]))


def check_unserved_rows(out: list[Violation], dem: pd.DataFrame, u: pd.DataFrame) -> pd.DataFrame:
    """Unserved rows: known demands, right fields, a reason given."""
    f = "unserved.csv"
    extra = [c for c in ("eligible_agencies",) if c in u.columns]
    t = u[["_row", "enterprise_id", "service_id", "district_id", "sector", "risk_level", "weight",
           "reason", *extra]].rename(columns={c: f"f_{c}" for c in ("district_id", "sector",
                                                                    "risk_level", "weight",
                                                                    *extra)})
    t = t.merge(dem, on=["enterprise_id", "service_id"], how="left", indicator="_dem")
    t["known_demand"] = t["_dem"] == "both"
    t["subject"] = join_keys(t, ["enterprise_id", "service_id"])
    add_violations(out, "unknown_demand", f, t, ~t["known_demand"], column_of("subject"),
         "no such demand in demands.csv (enterprise_id, service_id)")
    field_mismatches(out, f, t[t["known_demand"]])
    add_violations(out, "unserved_reason", f, t, t["reason"] == "", column_of("subject"),
         "an unserved demand must say why (reason is empty)")
    return t


def check_once(out: list[Violation], pol, dem: pd.DataFrame, t: pd.DataFrame,
                u: pd.DataFrame) -> None:
    """Each demand exactly once across assignments.csv and unserved.csv; mandatory served."""
    keys = ["enterprise_id", "service_id"]

    def key_list(frame: pd.DataFrame) -> list[tuple[str, str]]:
        return list(zip(frame[keys[0]], frame[keys[1]], strict=True))

    def first_rows(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
        once = frame.drop_duplicates(keys)
        return dict(zip(key_list(once), once["_row"], strict=True))

    def subject(r: pd.DataFrame) -> pd.Series:
        return join_keys(r, keys)

    first_a, first_u = first_rows(t), first_rows(u)
    for file, frame, first in (("assignments.csv", t, first_a), ("unserved.csv", u, first_u)):
        add_violations(out, "duplicate_demand", file, frame,
                       frame.duplicated(keys, keep="first"), subject,
             lambda r, first=first: [f"demand listed again (first at row {first[k]})"  # type: ignore[misc]
                                     for k in key_list(r)])
    both = np.array([k in first_a for k in key_list(u)], dtype=bool)
    add_violations(out, "served_and_unserved", "unserved.csv", u, both, subject,
         lambda r: [f"demand is also assigned (assignments.csv row {first_a[k]})"
                    for k in key_list(r)])
    d_keys = key_list(dem)
    served = np.array([k in first_a for k in d_keys], dtype=bool)
    listed = served | np.array([k in first_u for k in d_keys], dtype=bool)
    add_violations(out, "missing_demand", "assignments.csv + unserved.csv", dem, ~listed, subject,
         lambda r: "demand (demands.csv row " + r["demand_row"].astype(str)
         + ") is neither in assignments.csv nor in unserved.csv", row=None)
    mand = dem["risk_level"].isin(pol.mandatory_levels).to_numpy() & ~served
    urow = pd.Series([first_u.get(k) for k in d_keys], index=dem.index, dtype=object)
    add_violations(out, "mandatory", "unserved.csv", dem.assign(_urow=urow), mand, subject,
         lambda r: "demand at mandatory risk level " + r["risk_level"].astype(str)
         + " is not served", row="_urow")
