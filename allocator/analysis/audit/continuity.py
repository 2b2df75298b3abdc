"""The audit of the planner's year: pins, rotation (max_tenure_years), max_changes, and
changes.csv with its counts in summary.json, recomputed from the instance and the result files.

Like the rest of the audit it shares no model or eligibility code: whether an incumbent could
still serve its demand is judged by this audit's own reading of spec section 4
(rows.evaluate_assignments, applied to the incumbent triples), then the pins and rotation in
their order (a spec rule first, then a pin, then rotation).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.analysis.audit.common import NUM_ATOL, NUM_RTOL, Violation, add_violations
from allocator.analysis.audit.files import read_csv
from allocator.analysis.audit.rows import evaluate_assignments
from allocator.core.errors import Problem

CHANGE_KINDS = ("kept", "moved", "dropped", "new", "rotated", "incumbent_ineligible")


def _key(frame: pd.DataFrame) -> pd.Series:
    return frame["enterprise_id"].astype(str) + "\x1f" + frame["service_id"].astype(str)


def incumbent_verdicts(inst, dem: pd.DataFrame) -> pd.DataFrame:
    """Each incumbent of this year's demands: whether it may still serve it, and if not
    whether rotation (and nothing else) keeps it out."""
    inc = inst.incumbents
    cols = ["key", "enterprise_id", "service_id", "agency_id", "years", "eligible", "rotated"]
    if inc.empty:
        return pd.DataFrame(columns=cols)
    frame = pd.DataFrame({
        "_row": inc["row"].to_numpy(), "enterprise_id": inc["enterprise_id"].astype(str),
        "service_id": inc["service_id"].astype(str), "agency_id": inc["agency_id"].astype(str),
        **{c: "" for c in ("district_id", "sector", "risk_level", "weight", "load", "cost")}})
    e = evaluate_assignments(inst, dem, frame)
    spec_ok = (e["known_demand"] & e["known_agency"] & e["has_offer"] & e["ok_status"]
               & e["ok_quality"] & e["ok_area"] & e["ok_conflict"] & e["ok_floor"]
               & e["ok_ceiling"]).to_numpy(dtype=bool)
    pins = inst.pins
    forbid = set(zip(pins.loc[pins["action"] == "forbid", "enterprise_id"].astype(str),
                     pins.loc[pins["action"] == "forbid", "service_id"].astype(str),
                     pins.loc[pins["action"] == "forbid", "agency_id"].astype(str),
                     strict=True))
    assign = {(e_, s_): a_ for e_, s_, a_ in zip(
        pins.loc[pins["action"] == "assign", "enterprise_id"].astype(str),
        pins.loc[pins["action"] == "assign", "service_id"].astype(str),
        pins.loc[pins["action"] == "assign", "agency_id"].astype(str), strict=True)}
    triples = list(zip(e["enterprise_id"], e["service_id"], e["agency_id"], strict=True))
    pinned_out = np.array([t in forbid or assign.get(t[:2], t[2]) != t[2] for t in triples],
                          dtype=bool)
    limit = inst.policy.max_tenure_years
    years = inc["years"].astype(int).to_numpy()
    too_long = (years >= limit) if limit is not None else np.zeros(len(inc), dtype=bool)
    out = pd.DataFrame({"enterprise_id": e["enterprise_id"].to_numpy(),
                        "service_id": e["service_id"].to_numpy(),
                        "agency_id": e["agency_id"].to_numpy(), "years": years})
    out["key"] = _key(out)
    out["eligible"] = spec_ok & ~pinned_out & ~too_long
    out["rotated"] = spec_ok & ~pinned_out & too_long
    return out[cols]


def check_pins_and_tenure(out: list[Violation], inst, t: pd.DataFrame, u: pd.DataFrame) -> None:
    """Assign pins served by their agency, forbid pins and rotation never broken."""
    f = "assignments.csv"
    pins = inst.pins
    served = dict(zip(_key(t), t["agency_id"].astype(str), strict=True))
    row_of = dict(zip(_key(t), t["_row"], strict=True))
    urow = dict(zip(_key(u), u["_row"], strict=True)) if len(u) else {}
    for pin in pins.itertuples(index=False):  # pins are a handful of decisions
        key = f"{pin.enterprise_id}\x1f{pin.service_id}"
        subject = f"{pin.enterprise_id} / {pin.service_id} / {pin.agency_id}"
        got = served.get(key)
        if pin.action == "assign" and got != str(pin.agency_id):
            what = (f"is served by agency {got}" if got is not None else "is not served")
            file, row = (f, row_of.get(key)) if got is not None else (
                "unserved.csv", urow.get(key))
            out.append(Violation("pin", file, None if row is None else int(row), subject,
                                 f"pins.csv (row {pin.row}) assigns agency {pin.agency_id} to "
                                 f"this demand, but it {what}"))
        if pin.action == "forbid" and got == str(pin.agency_id):
            out.append(Violation("pin", f, int(row_of[key]), subject,
                                 f"pins.csv (row {pin.row}) forbids this agency on this "
                                 "demand"))
    limit = inst.policy.max_tenure_years
    inc = inst.incumbents
    if limit is None or inc.empty or t.empty:
        return
    long = inc[inc["years"].astype(int) >= int(limit)]
    years = dict(zip(_key(long) + "\x1f" + long["agency_id"].astype(str), long["years"],
                     strict=True))
    k = (_key(t) + "\x1f" + t["agency_id"].astype(str)).map(years)
    add_violations(out, "tenure", f, t.assign(_years=k), k.notna().to_numpy(),
                   lambda r: r["subject"],
                   lambda r: "the agency has served this demand " + r["_years"].astype(
                       int).astype(str) + f" year(s) in a row; max_tenure_years {limit} "
                                          "rotates it out this year")


def expected_changes(inst, dem: pd.DataFrame, t: pd.DataFrame) -> pd.DataFrame:
    """changes.csv as the rules say: one row per incumbent demand, one `new` row per served
    demand without an incumbent (key, incumbent, agency, change)."""
    v = incumbent_verdicts(inst, dem)
    served = dict(zip(_key(t), t["agency_id"].astype(str), strict=True))
    now = v["key"].map(lambda k: served.get(k, "")).astype(str)
    change = np.where(now == v["agency_id"], "kept", np.where(
        v["rotated"], "rotated", np.where(~v["eligible"].astype(bool), "incumbent_ineligible",
                                          np.where(now != "", "moved", "dropped"))))
    rows = pd.DataFrame({"key": v["key"], "exp_incumbent": v["agency_id"], "exp_agency": now,
                         "exp_change": change, "eligible": v["eligible"].astype(bool)})
    fresh = t[~_key(t).isin(set(v["key"]))]
    new = pd.DataFrame({"key": _key(fresh), "exp_incumbent": "",
                        "exp_agency": fresh["agency_id"].astype(str), "exp_change": "new",
                        "eligible": False})
    return pd.concat([rows, new], ignore_index=True)


def check_max_changes(out: list[Violation], inst, exp: pd.DataFrame) -> dict[str, Any]:
    """max_changes: of the demands whose incumbent could still serve, at most ratio x their
    number (rounded down) move or go unserved. Returns the counts."""
    eligible = exp[exp["eligible"]]
    n = len(eligible)
    changed = int((eligible["exp_change"] != "kept").sum())
    ratio = inst.policy.max_changes
    allowed = None if ratio is None else int(math.floor(ratio * n + 1e-9))
    if allowed is not None and changed > allowed:
        out.append(Violation("max_changes", "assignments.csv", None, "city",
                             f"{changed} of the {n} demands whose incumbent could still serve "
                             f"moved or went unserved; max_changes {ratio:g} allows {allowed}"))
    return {"eligible_incumbents": n, "changed": changed, "max_changes_allowed": allowed}


def check_changes_file(out: list[Violation], results_dir: Path, exp: pd.DataFrame) -> None:
    """changes.csv: every row as the rules say, none missing, none extra."""
    file = "changes.csv"
    problems: list[Problem] = []
    got = read_csv(results_dir / file, file, problems, required=True)
    for p in problems:
        out.append(Violation("changes", file, p.row, p.column,
                             f"{p.message} (with incumbents.csv, the results hold changes.csv: "
                             "enterprise_id, service_id, incumbent_agency_id, agency_id, "
                             "change, reason)"))
    if problems:
        return
    got = got.assign(key=_key(got))
    dup = got["key"].duplicated(keep="first")
    add_violations(out, "changes", file, got, dup, lambda r: r["enterprise_id"] + " / "
                   + r["service_id"], "demand listed twice")
    got = got[~dup]
    m = got.merge(exp, on="key", how="left", indicator=True)
    extra = (m["_merge"] == "left_only").to_numpy()
    subject = lambda r: r["enterprise_id"] + " / " + r["service_id"]  # noqa: E731
    add_violations(out, "changes", file, m, extra, subject,
                   "no such change: the demand had no incumbent and is not served")
    m = m[~extra]
    for col, exp_col, what in (("incumbent_agency_id", "exp_incumbent", "incumbent_agency_id"),
                               ("agency_id", "exp_agency", "agency_id"),
                               ("change", "exp_change", "change")):
        bad = (m[col].astype(str) != m[exp_col].astype(str)).to_numpy()

        def says(r: pd.DataFrame, col: str = col, exp_col: str = exp_col,
                 what: str = what) -> pd.Series:
            return (what + " is '" + r[col].astype(str) + "', the instance and plan give '"
                    + r[exp_col].astype(str) + "'")

        add_violations(out, "changes", file, m, bad, subject, says)
    missing = exp[~exp["key"].isin(set(got["key"]))]
    add_violations(out, "changes", file, missing, np.ones(len(missing), dtype=bool),
                   lambda r: r["key"].str.replace("\x1f", " / "),
                   lambda r: "changes.csv has no row for this demand (expected change '"
                   + r["exp_change"] + "')", row=None)


def check_changes_summary(out: list[Violation], s: dict[str, Any], exp: pd.DataFrame,
                          counts: dict[str, Any], t: pd.DataFrame) -> None:
    """summary.json's `changes` counts and `stability` as recomputed."""
    given = s.get("changes")
    if not isinstance(given, dict):
        out.append(Violation("summary", "summary.json", None, "changes",
                             "with incumbents, summary.json has the change counts"))
        return
    want = {k: int((exp["exp_change"] == k).sum()) for k in CHANGE_KINDS}
    want["incumbent_demands"] = int((exp["exp_incumbent"] != "").sum())
    want.update(counts)
    for key, value in want.items():
        if given.get(key) != value:
            out.append(Violation("summary", "summary.json", None, f"changes.{key}",
                                 f"changes.{key} is {given.get(key)!r}, recomputed {value!r}"))
    kept = set(exp.loc[exp["exp_change"] == "kept", "key"])
    stability = float(t.loc[_key(t).isin(kept).to_numpy(), "true_weight"].sum())
    got = s.get("stability")
    ok = isinstance(got, int | float) and not isinstance(got, bool) and (
        abs(float(got) - stability) <= NUM_ATOL + NUM_RTOL * abs(stability))
    if not ok:
        out.append(Violation("summary", "summary.json", None, "stability",
                             f"stability is {got!r}, recomputed {stability:.10g} (served weight "
                             "kept with its incumbent)"))


def check_continuity(out: list[Violation], inst, dem: pd.DataFrame, t: pd.DataFrame,
                     u: pd.DataFrame, results_dir: Path, s: dict[str, Any]) -> None:
    """Pins, rotation, max_changes, and (with incumbents) changes.csv and its counts."""
    check_pins_and_tenure(out, inst, t, u)
    if inst.incumbents.empty:
        return
    exp = expected_changes(inst, dem, t)
    counts = check_max_changes(out, inst, exp)
    check_changes_file(out, results_dir, exp)
    check_changes_summary(out, s, exp, counts, t)
