"""The audit of the extra columns allocator writes beside the spec's: each, when present, must
say what the instance and the plan say (a column a planner's other tool left out is fine).

assignments.csv: quality (the agency's), quoted (priced by a quote), reference_cost;
agencies.csv: status, quality; districts.csv: demands, demands_served, mandatory_total,
mandatory_served; in every file, the name beside each id (enterprise_name, service_name,
agency_name, district_name; `name` in results written before names had their id's prefix).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    MONEY_ATOL,
    NUM_ATOL,
    NUM_RTOL,
    Violation,
    add_violations,
    column_of,
    differs,
    format_values,
    show_cell,
    show_money,
    show_num,
)

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _text_differs(found: pd.Series, expected: pd.Series, lower: bool = False) -> pd.Series:
    f, e = found.astype(str).str.strip(), expected.fillna("").astype(str).str.strip()
    return (f.str.lower() != e.str.lower()) if lower else (f != e)


def _says(col: str, source: str, fmt: Callable[[Any], str]
          ) -> Callable[[pd.DataFrame], pd.Series]:
    """The message of a wrong cell: what the file says and what `source` gives (_exp)."""
    return lambda r: (col + " is " + format_values(r[col], show_cell) + ", " + source + " "
                      + format_values(r["_exp"], fmt))


def check_assignment_extras(out: list[Violation], a: pd.DataFrame, t: pd.DataFrame) -> None:
    """quality, quoted and reference_cost of each assignment row."""
    f = "assignments.csv"
    cols = [c for c in ("quality", "quoted", "reference_cost") if c in a.columns]
    if not cols:
        return
    x = a[["_row", *cols]].rename(columns={c: f"x_{c}" for c in cols}).merge(
        t[["_row", "subject", "a_quality", "quoted", "reference_cost", "known_demand",
           "known_agency", "has_offer"]], on="_row")
    subj = column_of("subject")
    if "quality" in cols:
        k = x[x["known_agency"]]
        add_violations(out, "assignment_fields", f, k,
                       differs(k["x_quality"], k["a_quality"], NUM_ATOL, NUM_RTOL), subj,
                       lambda r: "quality is " + format_values(r["x_quality"], show_cell)
                       + ", agencies.csv gives " + format_values(r["a_quality"], show_num))
    if "quoted" in cols:
        k = x[x["known_demand"] & x["known_agency"] & x["has_offer"]]
        text = k["x_quoted"].str.strip().str.lower()
        said = np.where(text.isin(TRUE), 1, np.where(text.isin(FALSE), 0, -1))
        bad = said != k["quoted"].astype(int).to_numpy()
        add_violations(out, "assignment_fields", f, k, bad, subj,
                       lambda r: "quoted is " + format_values(r["x_quoted"], show_cell)
                       + ", the instance gives " + r["quoted"].map(
                           {True: "True (quotes.csv prices it)",
                            False: "False (a bid prices it)"}))
    if "reference_cost" in cols:
        k = x[x["known_demand"]]
        add_violations(out, "assignment_fields", f, k,
                       differs(k["x_reference_cost"], k["reference_cost"], MONEY_ATOL,
                               NUM_RTOL), subj,
                       lambda r: "reference_cost is "
                       + format_values(r["x_reference_cost"], show_cell)
                       + ", the instance gives " + format_values(r["reference_cost"],
                                                                 show_money)
                       + " (person_days x reference_rate)")


#: id column -> the column of its name in the result files
NAMES = {"enterprise_id": "enterprise_name", "service_id": "service_name",
         "agency_id": "agency_name", "district_id": "district_name"}


def check_names(out: list[Violation], file: str, g: pd.DataFrame, inst,
                subject: Callable[[pd.DataFrame], pd.Series]) -> None:
    """Each `<id>_name` column of a result file (or `name` beside its own id) holds the name
    the instance gives that id."""
    tables = {"enterprise_id": inst.enterprises, "service_id": inst.services,
              "agency_id": inst.agencies, "district_id": inst.districts}
    own = {"agencies.csv": "agency_id", "districts.csv": "district_id"}.get(file)
    for id_col, name_col in NAMES.items():
        col = name_col if name_col in g.columns else (
            "name" if id_col == own and "name" in g.columns else None)
        if col is None or id_col not in g.columns:
            continue
        names = tables[id_col]["name"]
        k = g[g[id_col].isin(names.index)]
        exp = k[id_col].map(names)
        add_violations(out, "names", file, k.assign(_exp=exp), _text_differs(k[col], exp),
                       subject, _says(col, "the instance gives", show_cell))


def check_agency_extras(out: list[Violation], g: pd.DataFrame, inst) -> None:
    """status and quality of each agencies.csv row, as agencies.csv of the instance."""
    f = "agencies.csv"
    ag = inst.agencies
    g = g[g["agency_id"].isin(ag.index) & ~g["agency_id"].duplicated()]
    ident = column_of("agency_id")
    for col in ("status",):
        if col in g.columns:
            exp = g["agency_id"].map(ag[col])
            bad = _text_differs(g[col], exp, lower=col == "status")
            add_violations(out, "agency_totals", f, g.assign(_exp=exp), bad, ident,
                           _says(col, "the instance gives", show_cell))
    if "quality" in g.columns:
        exp = g["agency_id"].map(ag["quality"]).astype(float)
        add_violations(out, "agency_totals", f, g.assign(_exp=exp),
                       differs(g["quality"], exp, NUM_ATOL, NUM_RTOL), ident,
                       lambda r: "quality is " + format_values(r["quality"], show_cell)
                       + ", the instance gives " + format_values(r["_exp"]))


def check_district_extras(out: list[Violation], g: pd.DataFrame, inst, dem: pd.DataFrame,
                          t: pd.DataFrame) -> None:
    """name and the demand counts of each districts.csv row."""
    f = "districts.csv"
    dist = inst.districts
    g = g[g["district_id"].isin(dist.index) & ~g["district_id"].duplicated()]
    ident = column_of("district_id")
    mand_levels = inst.policy.mandatory_levels
    mand_dem = dem[dem["risk_level"].isin(mand_levels)]
    served = t[t["known_demand"]]
    counts = {
        "demands": dem.groupby("district_id").size(),
        "demands_served": t.groupby("true_district").size(),
        "mandatory_total": mand_dem.groupby("district_id").size(),
        "mandatory_served": served[served["risk_level"].isin(mand_levels)].groupby(
            "true_district").size(),
    }
    for col, by in counts.items():
        if col not in g.columns:
            continue
        exp = g["district_id"].map(by).fillna(0).astype(float)
        add_violations(out, "district_totals", f, g.assign(_exp=exp),
                       differs(g[col], exp, 0.0), ident, _says(col, "recomputed", show_num))
