"""`allocator check`: an independent audit of a results folder against its instance.

Every rule of spec section 4 is recomputed here from the instance frames and the result files
alone: eligibility, cost, load and weight of each assignment row, each demand exactly once,
budget, caps, capacities, ratios, shares, agency counts, and the totals of agencies.csv,
districts.csv and summary.json. Only the parsing of the instance (allocator.data.validation) is
shared with the solver; no model-building code is, so a bug there cannot hide itself here.

Rows are reported as a spreadsheet shows them (header = row 1). Aggregate rules use the
recomputed cost and load of each row (the true cost of the plan), so a tampered cost is
reported once, as a `cost` violation on its row, and not again in every total.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.core.errors import InputError, Problem
from allocator.data.reading import instance_sha256
from allocator.data.validation import load_instance

ROW_OFFSET = 2  # header is spreadsheet row 1
SOLVED = ("optimal", "feasible")
STATUSES = ("optimal", "feasible", "infeasible", "no_solution", "error")

#: spec section 5: the columns each result file must have (at least)
COLUMNS: dict[str, list[str]] = {
    "assignments.csv": ["enterprise_id", "service_id", "agency_id", "district_id", "sector",
                        "risk_level", "weight", "load", "cost"],
    "unserved.csv": ["enterprise_id", "service_id", "district_id", "sector", "risk_level",
                     "weight", "reason"],
    "agencies.csv": ["agency_id", "demands", "load", "capacity_days", "utilization",
                     "contract_value", "districts"],
    "districts.csv": ["district_id", "cost", "budget_cap", "weight_total", "weight_served",
                      "coverage_ratio", "agencies", "max_agency_share"],
    "diagnosis.csv": ["rule", "subject", "required", "available", "shortfall", "message"],
}

#: the order findings are printed in (stable within a file: by row, then rule)
FILE_ORDER = ("assignments.csv", "unserved.csv", "assignments.csv + unserved.csv",
              "agencies.csv", "districts.csv", "summary.json", "diagnosis.csv")

# tolerances
PRICE_RTOL = 1e-9  # price band, relative
MONEY_ATOL = 0.006  # a cost written with 2 decimals
TOTAL_ATOL, TOTAL_RTOL = 0.01, 1e-9  # budget and caps
SHARE_RTOL = 1e-6  # anti-monopoly shares, relative to the spend they are a share of
NUM_ATOL, NUM_RTOL = 1e-6, 1e-9  # loads, weights and other plain numbers


#: a fixed text, or texts computed from the violating rows
Text = str | Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, in which file and row (spreadsheet numbering), about what."""

    rule: str
    file: str
    row: int | None
    subject: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f", row {self.row}" if self.row is not None else "")
        subject = f" [{self.subject}]" if self.subject else ""
        return f"{self.rule}: {where}{subject}: {self.message}"


class ResultsError(InputError):
    """The results folder cannot be read: a missing file or column, or unreadable JSON."""


@dataclass
class Audit:
    """Everything the check found: violations, warnings (not violations) and row counts."""

    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = ""
    assignments: int = 0
    unserved: int = 0


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def _g(x: Any) -> str:
    """A number as a person would write it (no float noise)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nothing"
    if isinstance(x, int | np.integer):
        return str(int(x))
    return f"{float(x):.10g}"


def _m(x: Any) -> str:
    """Money with 2 decimals."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nothing"
    return f"{float(x):.2f}"


def _shown(text: Any) -> str:
    return "an empty cell" if text == "" else repr(text) if not _isnum(text) else str(text)


def _isnum(text: Any) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def _num(col: pd.Series) -> pd.Series:
    """A text column as floats (NaN where not a number)."""
    return pd.to_numeric(col, errors="coerce").astype(float)


def _differs(found: pd.Series, expected: pd.Series, atol: float, rtol: float = 0.0,
             blank_ok: bool = False) -> pd.Series:
    """Rows where the file's number is not the expected one (or is not a number).

    blank_ok: an empty cell matches an expected NaN (e.g. no budget cap).
    """
    exp = expected.astype(float)
    got = _num(found)
    bad = (got - exp).abs() > atol + rtol * exp.abs()
    bad |= got.isna() & exp.notna()
    bad |= got.notna() & exp.isna()
    if blank_ok:
        bad &= ~(exp.isna() & (found == ""))
    else:
        bad |= exp.isna() & got.isna()
    return bad.fillna(True)


def _add(out: list[Violation], rule: str, file: str, frame: pd.DataFrame,
         mask: pd.Series | np.ndarray, subject: Text, message: Text,
         row: str | None = "_row") -> None:
    """One violation per row of frame where mask holds.

    subject and message are a fixed text or a function of the violating rows (so that texts
    are only built for the rows that need them).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    sub = frame.loc[mask]
    n = len(sub)

    def texts(x: Text) -> list[str]:
        return [x] * n if isinstance(x, str) else [str(v) for v in x(sub)]

    rows = sub[row].tolist() if row else [None] * n
    out.extend(Violation(rule, file, None if r is None or pd.isna(r) else int(r), s, m)
               for r, s, m in zip(rows, texts(subject), texts(message), strict=True))


def _join_keys(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    out = frame[cols[0]].astype(str)
    for c in cols[1:]:
        out = out + " / " + frame[c].astype(str)
    return out


def _col(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda r: r[name]


def _fmt(values: pd.Series, fn: Callable[[Any], str] = _g) -> pd.Series:
    return values.map(fn).astype(object)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------


def _read_csv(path: Path, file: str, problems: list[Problem], required: bool) -> pd.DataFrame:
    """A result CSV as text (ids stay strings); missing/unreadable/short of columns -> problem."""
    need = COLUMNS[file]
    if not path.is_file():
        if required:
            problems.append(Problem(file, None, "", None, "result file is missing",
                                    "solve again into this folder, or point at the right one"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        if required:
            problems.append(Problem(file, None, "", None, "the file is empty (no header row)",
                                    f"the header must hold {', '.join(need)}"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        problems.append(Problem(file, None, "", None, f"not a readable CSV: {msg}",
                                "write the file again (UTF-8, comma-separated, header row)"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if len(df.columns):
        df = df.apply(lambda col: col.str.strip())
    df = df.reset_index(drop=True)
    df["_row"] = df.index + ROW_OFFSET
    if not required:  # only its row count matters (a run without a plan has none)
        return df
    missing = [c for c in need if c not in df.columns]
    for col in missing:
        problems.append(Problem(file, 1, col, None, "required column is missing",
                                f"the header must hold {', '.join(need)}"))
    return df


def _read_summary(path: Path, problems: list[Problem]) -> dict[str, Any]:
    file = "summary.json"
    if not path.is_file():
        problems.append(Problem(file, None, "", None, "result file is missing",
                                "solve again into this folder, or point at the right one"))
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(Problem(file, None, "", None, f"not readable JSON: {exc}",
                                "write the file again"))
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(file, None, "", None, "must be a JSON object",
                                "write the file again"))
        return {}
    if "status" not in data:
        problems.append(Problem(file, None, "status", None, "no 'status' key",
                                "summary.json must say how the run ended"))
    return data


# ----------------------------------------------------------------------------------------------
# the instance, recomputed plainly
# ----------------------------------------------------------------------------------------------


def _demand_table(inst, weights: dict[int, float]) -> pd.DataFrame:
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


def _service_area(inst) -> tuple[set[str], set[tuple[str, str]]]:
    """Agencies serving every district ('*') and the (agency, district) pairs listed."""
    ag = inst.agencies
    text = ag["districts"].astype(str).str.strip()
    everywhere = set(ag.index[text == "*"])
    listed = text[text != "*"].str.split(";").explode().str.strip()
    pairs = {(a, d) for a, d in zip(listed.index, listed, strict=True) if d}
    return everywhere, pairs


def _evaluate_assignments(inst, dem: pd.DataFrame, a: pd.DataFrame) -> pd.DataFrame:
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
    everywhere, pairs = _service_area(inst)
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
    t["true_cost"] = t["cost_exp"].fillna(_num(t["f_cost"])).fillna(0.0)
    t["true_load"] = t["load_exp"].fillna(_num(t["f_load"])).fillna(0.0)
    t["true_weight"] = t["weight"].fillna(_num(t["f_weight"])).fillna(0.0)
    t["true_district"] = t["district_id"].where(t["known_demand"], t["f_district_id"])
    t["true_risk"] = t["risk_level"].where(t["known_demand"], _num(t["f_risk_level"]))
    t["true_quality"] = t["a_quality"].fillna(0.0)
    t["subject"] = _join_keys(t, ["enterprise_id", "service_id", "agency_id"])
    return t


# ----------------------------------------------------------------------------------------------
# the rules
# ----------------------------------------------------------------------------------------------


def _check_assignment_rows(out: list[Violation], inst, t: pd.DataFrame) -> None:
    """Per row: known ids, eligibility (section 4), fields, cost and load."""
    f = "assignments.csv"
    pol = inst.policy
    subj = _col("subject")
    _add(out, "unknown_demand", f, t, ~t["known_demand"], subj,
         "no such demand in demands.csv (enterprise_id, service_id)")
    _add(out, "unknown_agency", f, t, ~t["known_agency"], subj,
         "agency_id is not in the instance's agencies.csv")
    k = t[t["known_demand"] & t["known_agency"]]
    _add(out, "no_offer", f, k, ~k["has_offer"], subj,
         lambda r: "the agency has neither a bid for (" + r["service_id"] + ", " + r["sector"]
         + ") nor a quote for this demand")
    _add(out, "status", f, k, ~k["ok_status"], subj,
         lambda r: "agency status " + r["a_status"].astype(str) + " may not serve risk level "
         + r["risk_level"].astype(int).astype(str)
         + " (active: any level; probation: levels 1-2 only)")
    _add(out, "quality", f, k, ~k["ok_quality"], subj,
         lambda r: "agency quality " + _fmt(r["a_quality"]) + " is below the "
         + _fmt(r["needed_quality"]) + " required at risk level "
         + r["risk_level"].astype(int).astype(str))
    _add(out, "service_area", f, k, ~k["ok_area"], subj,
         lambda r: "the agency does not serve district " + r["district_id"]
         + " (its agencies.csv districts do not list it)")
    _add(out, "conflict", f, k, ~k["ok_conflict"], subj,
         lambda r: "conflicts.csv forbids this agency for enterprise " + r["enterprise_id"])
    priced = k[k["has_offer"]]

    def band(r: pd.DataFrame) -> pd.Series:
        ratio = _fmt(r["cost_exp"] / r["reference_cost"], lambda v: f"{v:.4f}")
        return ("cost " + _fmt(r["cost_exp"], _m) + " is " + ratio + " x the reference cost "
                + _fmt(r["reference_cost"], _m))

    _add(out, "price_floor", f, priced, ~priced["ok_floor"], subj,
         lambda r: band(r) + f", below floor_ratio {pol.floor_ratio:g}")
    _add(out, "price_ceiling", f, priced, ~priced["ok_ceiling"], subj,
         lambda r: band(r) + f", above ceiling_ratio {pol.ceiling_ratio:g}")
    # the demand's own fields must be copied right
    _field_mismatches(out, f, t[t["known_demand"]])

    # cost and load against the instance
    def how(r: pd.DataFrame) -> pd.Series:
        bid = _fmt(r["person_days"]) + " person-days x day rate " + _fmt(r["day_rate"])
        return bid.where(~r["quoted"], "the quote's price")

    bad = _differs(priced["f_cost"], priced["cost_exp"], MONEY_ATOL)
    _add(out, "cost", f, priced, bad, subj,
         lambda r: "cost is " + _fmt(r["f_cost"], _shown) + ", the instance gives "
         + _fmt(r["cost_exp"], _m) + " (" + how(r) + ")")
    bad = _differs(priced["f_load"], priced["load_exp"], NUM_ATOL, NUM_RTOL)
    _add(out, "load", f, priced, bad, subj,
         lambda r: "load is " + _fmt(r["f_load"], _shown) + ", the instance gives "
         + _fmt(r["load_exp"]) + r["quoted"].map(
             {True: " (the quote's person_days)", False: " (demands.csv person_days)"}))


def _field_mismatches(out: list[Violation], file: str, d: pd.DataFrame) -> None:
    """district_id, sector, risk_level and weight of a row must be the demand's."""
    subj = _col("subject")
    for col in ("district_id", "sector"):
        _add(out, "demand_fields", file, d, d[f"f_{col}"] != d[col], subj,
             lambda r, col=col: col + " is " + _fmt(r[f"f_{col}"], _shown)
             + ", the instance gives " + r[col])
    bad = _differs(d["f_risk_level"], d["risk_level"].astype(float), 0.0)
    _add(out, "demand_fields", file, d, bad, subj,
         lambda r: "risk_level is " + _fmt(r["f_risk_level"], _shown) + ", the instance gives "
         + r["risk_level"].astype(int).astype(str))
    bad = _differs(d["f_weight"], d["weight"], NUM_ATOL, NUM_RTOL)
    _add(out, "demand_fields", file, d, bad, subj,
         lambda r: "weight is " + _fmt(r["f_weight"], _shown) + ", the instance gives "
         + _fmt(r["weight"]))


def _check_unserved_rows(out: list[Violation], dem: pd.DataFrame, u: pd.DataFrame) -> pd.DataFrame:
    """Unserved rows: known demands, right fields, a reason given."""
    f = "unserved.csv"
    t = u[["_row", "enterprise_id", "service_id", "district_id", "sector", "risk_level", "weight",
           "reason"]].rename(columns={c: f"f_{c}" for c in ("district_id", "sector", "risk_level",
                                                            "weight")})
    t = t.merge(dem, on=["enterprise_id", "service_id"], how="left", indicator="_dem")
    t["known_demand"] = t["_dem"] == "both"
    t["subject"] = _join_keys(t, ["enterprise_id", "service_id"])
    _add(out, "unknown_demand", f, t, ~t["known_demand"], _col("subject"),
         "no such demand in demands.csv (enterprise_id, service_id)")
    _field_mismatches(out, f, t[t["known_demand"]])
    _add(out, "unserved_reason", f, t, t["reason"] == "", _col("subject"),
         "an unserved demand must say why (reason is empty)")
    return t


def _check_once(out: list[Violation], pol, dem: pd.DataFrame, t: pd.DataFrame,
                u: pd.DataFrame) -> None:
    """Each demand exactly once across assignments.csv and unserved.csv; mandatory served."""
    keys = ["enterprise_id", "service_id"]

    def key_list(frame: pd.DataFrame) -> list[tuple[str, str]]:
        return list(zip(frame[keys[0]], frame[keys[1]], strict=True))

    def first_rows(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
        once = frame.drop_duplicates(keys)
        return dict(zip(key_list(once), once["_row"], strict=True))

    def subject(r: pd.DataFrame) -> pd.Series:
        return _join_keys(r, keys)

    first_a, first_u = first_rows(t), first_rows(u)
    for file, frame, first in (("assignments.csv", t, first_a), ("unserved.csv", u, first_u)):
        _add(out, "duplicate_demand", file, frame, frame.duplicated(keys, keep="first"), subject,
             lambda r, first=first: [f"demand listed again (first at row {first[k]})"
                                     for k in key_list(r)])
    both = np.array([k in first_a for k in key_list(u)], dtype=bool)
    _add(out, "served_and_unserved", "unserved.csv", u, both, subject,
         lambda r: [f"demand is also assigned (assignments.csv row {first_a[k]})"
                    for k in key_list(r)])
    d_keys = key_list(dem)
    served = np.array([k in first_a for k in d_keys], dtype=bool)
    listed = served | np.array([k in first_u for k in d_keys], dtype=bool)
    _add(out, "missing_demand", "assignments.csv + unserved.csv", dem, ~listed, subject,
         lambda r: "demand (demands.csv row " + r["demand_row"].astype(str)
         + ") is neither in assignments.csv nor in unserved.csv", row=None)
    mand = dem["risk_level"].isin(pol.mandatory_levels).to_numpy() & ~served
    urow = pd.Series([first_u.get(k) for k in d_keys], index=dem.index, dtype=object)
    _add(out, "mandatory", "unserved.csv", dem.assign(_urow=urow), mand, subject,
         lambda r: "demand at mandatory risk level " + r["risk_level"].astype(str)
         + " is not served", row="_urow")


def _check_plan_rules(out: list[Violation], inst, t: pd.DataFrame, dem: pd.DataFrame,
                      budget: float) -> dict[str, Any]:
    """Budget, district caps, capacity, coverage ratio, shares, agency counts; returns totals."""
    pol = inst.policy
    f = "assignments.csv"
    total = float(t["true_cost"].sum())
    if total > budget + TOTAL_ATOL + TOTAL_RTOL * abs(budget):
        out.append(Violation("budget", f, None, "total cost",
                             f"the plan costs {_m(total)}, above the budget {_m(budget)} "
                             f"by {_m(total - budget)}"))
    # per district
    dist = inst.districts
    by_d = t.groupby("true_district")
    d = pd.DataFrame(index=pd.Index(dist.index.astype(str), name="district_id"))
    d["cost"] = by_d["true_cost"].sum().reindex(d.index).fillna(0.0)
    d["cap"] = dist["budget_cap"].astype(float).to_numpy()
    d["weight_total"] = dem.groupby("district_id")["weight"].sum().reindex(d.index).fillna(0.0)
    d["weight_served"] = by_d["true_weight"].sum().reindex(d.index).fillna(0.0)
    d["agencies"] = by_d["agency_id"].nunique().reindex(d.index).fillna(0).astype(int)
    d["served"] = by_d.size().reindex(d.index).fillna(0).astype(int)
    d = d.reset_index()
    district = lambda r: "district " + r["district_id"]  # noqa: E731
    over = d["cap"].notna() & (d["cost"] > d["cap"] + TOTAL_ATOL + TOTAL_RTOL * d["cap"].abs())
    _add(out, "district_budget_cap", f, d, over, district,
         lambda r: "district spend " + _fmt(r["cost"], _m) + " is above its budget_cap "
         + _fmt(r["cap"], _m), row=None)
    need = pol.min_district_ratio * d["weight_total"]
    d["need"] = need
    short = d["weight_served"] < need - NUM_ATOL - NUM_RTOL * need.abs()
    _add(out, "min_district_ratio", f, d, short, district,
         lambda r: "served weight " + _fmt(r["weight_served"]) + " is below "
         + f"{pol.min_district_ratio:g} x district weight " + _fmt(r["weight_total"])
         + " = " + _fmt(r["need"]), row=None)
    few = (d["served"] > 0) & (d["agencies"] < pol.min_agencies_per_district)
    _add(out, "min_agencies_per_district", f, d, few, district,
         lambda r: "only " + r["agencies"].astype(str) + " agencies serve the district's "
         + r["served"].astype(str) + " served demand(s); min_agencies_per_district is "
         + f"{pol.min_agencies_per_district}", row=None)
    # per agency
    ag = inst.agencies
    by_a = t.groupby("agency_id")
    a = pd.DataFrame(index=pd.Index(ag.index.astype(str), name="agency_id"))
    a["load"] = by_a["true_load"].sum().reindex(a.index).fillna(0.0)
    a["cost"] = by_a["true_cost"].sum().reindex(a.index).fillna(0.0)
    a["n"] = by_a.size().reindex(a.index).fillna(0).astype(int)
    a["cap"] = ag["capacity_days"].astype(float).to_numpy()
    a["districts"] = by_a["true_district"].agg(lambda s: set(s)).reindex(a.index)
    a["districts"] = a["districts"].map(lambda s: s if isinstance(s, set) else set())
    a = a.reset_index()
    agency = lambda r: "agency " + r["agency_id"]  # noqa: E731
    over = a["load"] > a["cap"] + NUM_ATOL + NUM_RTOL * a["cap"].abs()
    _add(out, "capacity", f, a, over, agency,
         lambda r: "load " + _fmt(r["load"]) + " person-days is above capacity_days "
         + _fmt(r["cap"]), row=None)
    if pol.max_share_in_city is not None:
        s = pol.max_share_in_city
        over = a["cost"] > s * total + SHARE_RTOL * total + 1e-9
        _add(out, "city_share", f, a, over, agency,
             lambda r: "the agency's spend " + _fmt(r["cost"], _m) + " is "
             + _fmt(r["cost"] / (total or 1.0), lambda v: f"{v:.2%}")
             + f" of the city's {_m(total)}, above max_share_in_city {s:g}", row=None)
    if pol.max_districts_per_agency is not None:
        over = a["districts"].map(len) > pol.max_districts_per_agency
        _add(out, "districts_per_agency", f, a, over, agency,
             lambda r: "the agency works in " + r["districts"].map(len).astype(str)
             + " districts (" + r["districts"].map(lambda s: ";".join(sorted(s)))
             + f"), above max_districts_per_agency {pol.max_districts_per_agency}", row=None)
    # per agency in a district
    ad = t.groupby(["true_district", "agency_id"])["true_cost"].sum().rename("cost").reset_index()
    ad["district_cost"] = ad["true_district"].map(by_d["true_cost"].sum()).astype(float)
    if pol.max_share_in_district is not None:
        s = pol.max_share_in_district
        over = ad["cost"] > s * ad["district_cost"] + SHARE_RTOL * ad["district_cost"] + 1e-9
        _add(out, "district_share", f, ad, over,
             lambda r: "agency " + r["agency_id"] + " in district "
             + r["true_district"].astype(str),
             lambda r: "the agency's spend " + _fmt(r["cost"], _m) + " is "
             + _fmt(r["cost"] / r["district_cost"], lambda v: f"{v:.2%}")
             + " of the district's " + _fmt(r["district_cost"], _m)
             + f", above max_share_in_district {s:g}", row=None)
    top = ad.groupby("true_district")["cost"].max().reindex(d["district_id"]).to_numpy()
    d["max_share"] = (top / d["cost"].replace(0, np.nan)).fillna(0.0)
    return {"total": total, "districts": d.set_index("district_id", drop=False),
            "agencies": a.set_index("agency_id", drop=False)}


def _check_agency_table(out: list[Violation], g: pd.DataFrame, a: pd.DataFrame) -> None:
    """agencies.csv: one row per agency of the pool, each figure as recomputed."""
    f = "agencies.csv"
    ident = _col("agency_id")
    known = g["agency_id"].isin(a.index)
    _add(out, "agency_totals", f, g, ~known, ident, "agency is not in the instance")
    dup = g["agency_id"].duplicated(keep="first") & known
    _add(out, "agency_totals", f, g, dup, ident, "agency listed twice")
    m = a[~a.index.isin(g["agency_id"])]
    _add(out, "agency_totals", f, m, np.ones(len(m), bool), ident,
         "agency of the pool has no row (agencies.csv lists every agency)", row=None)
    g = g[known & ~dup]
    e = a.loc[g["agency_id"]].set_axis(g.index)
    g = g.assign(e_n=e["n"].astype(float), e_load=e["load"], e_cap=e["cap"], e_cost=e["cost"],
                 e_util=(e["load"] / e["cap"].replace(0, np.nan)).fillna(0.0),
                 e_districts=e["districts"])
    checks = [
        ("demands", "e_n", 0.0, 0.0, _g),
        ("load", "e_load", NUM_ATOL, NUM_RTOL, _g),
        ("capacity_days", "e_cap", NUM_ATOL, NUM_RTOL, _g),
        ("utilization", "e_util", 5e-5 + 1e-9, 1e-9, lambda v: f"{v:.4f}"),
        ("contract_value", "e_cost", MONEY_ATOL, NUM_RTOL, _m),
    ]
    for col, exp, atol, rtol, fmt in checks:
        _add(out, "agency_totals", f, g, _differs(g[col], g[exp], atol, rtol), ident,
             lambda r, col=col, exp=exp, fmt=fmt: col + " is " + _fmt(r[col], _shown)
             + ", recomputed " + _fmt(r[exp], fmt))
    got = g["districts"].map(lambda s: {x.strip() for x in s.split(";") if x.strip()})
    _add(out, "agency_totals", f, g, got != g["e_districts"], ident,
         lambda r: "districts is " + _fmt(r["districts"], _shown) + ", recomputed "
         + r["e_districts"].map(lambda s: ";".join(sorted(s)) or "(none)"))


def _check_district_table(out: list[Violation], g: pd.DataFrame, d: pd.DataFrame) -> None:
    """districts.csv: one row per district, each figure as recomputed."""
    f = "districts.csv"
    ident = _col("district_id")
    known = g["district_id"].isin(d.index)
    _add(out, "district_totals", f, g, ~known, ident, "district is not in the instance")
    dup = g["district_id"].duplicated(keep="first") & known
    _add(out, "district_totals", f, g, dup, ident, "district listed twice")
    m = d[~d.index.isin(g["district_id"])]
    _add(out, "district_totals", f, m, np.ones(len(m), bool), ident,
         "district has no row (districts.csv lists every district)", row=None)
    g = g[known & ~dup]
    e = d.loc[g["district_id"]].set_axis(g.index)
    g = g.assign(e_cost=e["cost"], e_cap=e["cap"], e_weight_total=e["weight_total"],
                 e_weight_served=e["weight_served"],
                 e_ratio=(e["weight_served"] / e["weight_total"].replace(0, np.nan)).fillna(0.0),
                 e_agencies=e["agencies"].astype(float), e_share=e["max_share"])
    share = (5e-7 + 1e-9, 1e-9, lambda v: f"{v:.6f}")
    checks = [
        ("cost", "e_cost", MONEY_ATOL, NUM_RTOL, _m),
        ("budget_cap", "e_cap", MONEY_ATOL, NUM_RTOL, _m),
        ("weight_total", "e_weight_total", NUM_ATOL, NUM_RTOL, _g),
        ("weight_served", "e_weight_served", NUM_ATOL, NUM_RTOL, _g),
        ("coverage_ratio", "e_ratio", *share),
        ("agencies", "e_agencies", 0.0, 0.0, _g),
        ("max_agency_share", "e_share", *share),
    ]
    for col, exp, atol, rtol, fmt in checks:
        bad = _differs(g[col], g[exp], atol, rtol, blank_ok=col == "budget_cap")
        _add(out, "district_totals", f, g, bad, ident,
             lambda r, col=col, exp=exp, fmt=fmt: col + " is " + _fmt(r[col], _shown)
             + ", recomputed "
             + _fmt(r[exp], lambda v, fmt=fmt: "empty (no cap)" if pd.isna(v) else fmt(v)))


def _check_summary(out: list[Violation], s: dict[str, Any], inst, dem: pd.DataFrame,
                   t: pd.DataFrame, plan: dict[str, Any]) -> None:
    """summary.json totals (coverage, quality, cost and the extra figures when present)."""
    f = "summary.json"
    pol = inst.policy
    coverage = float(t["true_weight"].sum())
    quality = float((t["true_weight"] * t["true_quality"]).sum())
    mand = t["true_risk"].isin(pol.mandatory_levels)
    weight_total = float(dem["weight"].sum())
    checks: list[tuple[str, Any, float, float, Any]] = [
        ("coverage", coverage, NUM_ATOL, NUM_RTOL, _g),
        ("quality", quality, NUM_ATOL, 1e-9, _g),
        ("cost", plan["total"], MONEY_ATOL, NUM_RTOL, _m),
    ]
    for key, exp, atol, rtol, fmt in checks:
        got = s.get(key)
        if got is None and t.empty:
            continue  # an empty plan may leave its totals out
        if not _isnum(got) or isinstance(got, bool) or abs(float(got) - exp) > atol + rtol * abs(
                exp):
            out.append(Violation("summary_totals", f, None, key,
                                 f"{key} is {_g(got) if _isnum(got) else json.dumps(got)}, "
                                 f"recomputed from assignments {fmt(exp)}"))
    d = plan["districts"]
    extras: list[tuple[str, Any, float, float]] = [
        ("weight_total", weight_total, NUM_ATOL, NUM_RTOL),
        ("coverage_ratio", coverage / weight_total if weight_total > 0 else 0.0, 1e-9, 1e-9),
        ("mandatory_total", float(dem["risk_level"].isin(pol.mandatory_levels).sum()), 0, 0),
        ("mandatory_served", float(mand.sum()), 0, 0),
        ("agencies_used", float(t["agency_id"].nunique()), 0, 0),
        ("max_district_share", float(d["max_share"].max()) if len(d) and len(t) else None,
         5e-7 + 1e-9, 1e-9),
    ]
    counts = s.get("counts") if isinstance(s.get("counts"), dict) else {}
    count_checks = [
        ("districts", len(inst.districts)), ("enterprises", len(inst.enterprises)),
        ("demands", len(dem)), ("demands_served", len(t)), ("agencies", len(inst.agencies)),
    ]
    for key, exp, atol, rtol in extras:
        got = s.get(key)
        if got is None or exp is None:
            continue
        if not _isnum(got) or abs(float(got) - exp) > atol + rtol * abs(exp):
            out.append(Violation("summary_totals", f, None, key,
                                 f"{key} is {json.dumps(got)}, recomputed {_g(exp)}"))
    for key, exp in count_checks:
        got = counts.get(key)
        if got is not None and (not _isnum(got) or float(got) != exp):
            out.append(Violation("summary_totals", f, None, f"counts.{key}",
                                 f"counts.{key} is {json.dumps(got)}, recomputed {exp}"))


def _summary_budget(s: dict[str, Any], pol, audit: Audit) -> float:
    """The budget in force: summary.json's (a --budget run) when given, else policy.yaml's."""
    got = s.get("budget")
    if got is None:
        return pol.budget_total
    if not _isnum(got) or isinstance(got, bool) or float(got) < 0:
        audit.violations.append(Violation("summary_totals", "summary.json", None, "budget",
                                          f"budget is {json.dumps(got)}, not a budget; "
                                          f"checking against policy.yaml's "
                                          f"{_m(pol.budget_total)}"))
        return pol.budget_total
    if abs(float(got) - pol.budget_total) > TOTAL_ATOL:
        audit.warnings.append(f"summary.json budget {_m(got)} differs from policy.yaml's "
                              f"{_m(pol.budget_total)} (a --budget run?); the plan is checked "
                              f"against {_m(got)}")
    return float(got)


def _policy_warning(s: dict[str, Any], pol, audit: Audit) -> None:
    """Warn when the run's policy differs from the instance's (budget and solver aside)."""
    ran = s.get("policy")
    if not isinstance(ran, dict):
        return
    ours = json.loads(json.dumps(pol.as_dict()))
    differs = [k for k in ours if k not in ("name", "budget", "solver") and k in ran
               and ran[k] != ours[k]]
    if differs:
        audit.warnings.append(
            "summary.json's policy differs from policy.yaml in " + ", ".join(differs)
            + "; the plan is checked against policy.yaml's rules")


# ----------------------------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------------------------


def audit_results(instance_dir: Path, results_dir: Path) -> Audit:
    """Recompute every rule from the files alone.

    Raises InputError when the instance cannot be read, ResultsError when the results cannot.
    """
    inst = load_instance(Path(instance_dir))
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError([Problem(str(results_dir), None, "", None, "results folder not found",
                                    "give the folder written by 'allocator solve --out'")])
    problems: list[Problem] = []
    s = _read_summary(results_dir / "summary.json", problems)
    if problems:
        raise ResultsError(problems)
    audit = Audit(status=str(s.get("status")))
    solved = audit.status in SOLVED
    files = {name: _read_csv(results_dir / name, name, problems, required=solved)
             for name in ("assignments.csv", "unserved.csv", "agencies.csv", "districts.csv")}
    if problems:
        raise ResultsError(problems)
    out = audit.violations
    pol = inst.policy
    sha = s.get("instance_sha256")
    if sha and sha != instance_sha256(Path(instance_dir)):
        audit.warnings.append("summary.json's instance_sha256 differs from the instance's files: "
                              "these results were computed from other data")
    _policy_warning(s, pol, audit)
    if audit.status not in STATUSES:
        out.append(Violation("summary_status", "summary.json", None, "status",
                             f"status is {json.dumps(s.get('status'))}; expected one of "
                             + ", ".join(STATUSES)))
    a = files["assignments.csv"]
    audit.assignments, audit.unserved = len(a), len(files["unserved.csv"])
    if not solved:
        if len(a):
            out.append(Violation("summary_status", "assignments.csv", None, "status",
                                 f"status is {audit.status} but assignments.csv holds {len(a)} "
                                 "row(s); a run without a solution has no assignments"))
        if audit.status == "infeasible":
            _check_diagnosis(out, results_dir, audit)
        return audit
    budget = _summary_budget(s, pol, audit)
    dem = _demand_table(inst, pol.weights)
    t = _evaluate_assignments(inst, dem, a)
    _check_assignment_rows(out, inst, t)
    u = _check_unserved_rows(out, dem, files["unserved.csv"])
    _check_once(out, pol, dem, t, u)
    plan = _check_plan_rules(out, inst, t, dem, budget)
    _check_agency_table(out, files["agencies.csv"], plan["agencies"])
    _check_district_table(out, files["districts.csv"], plan["districts"])
    _check_summary(out, s, inst, dem, t, plan)
    rank = {f: k for k, f in enumerate(FILE_ORDER)}
    out.sort(key=lambda v: (rank.get(v.file, len(rank)), v.row is None, v.row or 0))
    return audit


def _check_diagnosis(out: list[Violation], results_dir: Path, audit: Audit) -> None:
    problems: list[Problem] = []
    diag = _read_csv(results_dir / "diagnosis.csv", "diagnosis.csv", problems, required=True)
    for p in problems:
        out.append(Violation("diagnosis", "diagnosis.csv", p.row, p.column,
                             f"{p.message} (an infeasible run names its reasons in "
                             "diagnosis.csv: rule, subject, required, available, shortfall, "
                             "message)"))
    if not problems and diag.empty:
        audit.warnings.append("diagnosis.csv names no reason for the infeasibility")


def check_results(instance_dir: Path, results_dir: Path) -> list[Violation]:
    """Every violated rule of the results against the instance (empty list: all rules hold)."""
    return audit_results(instance_dir, results_dir).violations


def run_check(instance: Path, results: Path) -> int:
    """`allocator check`: print findings; 0 all rules hold, 1 violations, 2 unreadable input."""
    try:
        audit = audit_results(Path(instance), Path(results))
    except ResultsError as exc:
        _print_problems(f"the results folder {results} cannot be read", exc.problems)
        return 2
    except InputError as exc:
        _print_problems(f"the instance {instance} cannot be read", exc.problems)
        return 2
    return report(audit)


def report(audit: Audit) -> int:
    """Print an audit's warnings, one line per violation and the verdict; return the exit code."""
    for w in audit.warnings:
        print(f"WARNING: {w}")
    for v in audit.violations:
        print(v)
    if audit.violations:
        print(f"FAIL: {len(audit.violations)} violation(s)")
        return 1
    print(f"OK: {audit.assignments} assignments, {audit.unserved} unserved, every rule holds"
          + ("" if audit.status in SOLVED else f" (status {audit.status}: no plan to check)"))
    return 0


def _print_problems(what: str, problems: list[Problem]) -> None:
    errors = [p for p in problems if p.severity == "error"] or problems
    print(f"cannot check: {what} ({len(errors)} problem(s)):", file=sys.stderr)
    for p in errors:
        print(f"  error: {p}", file=sys.stderr)
