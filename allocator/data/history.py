"""The planner's year in the instance folder: incumbents.csv (last year's plan), pins.csv
(decisions already taken) and evaluations.csv (last year's agency scores), checked like the
other files: every problem at once, each naming file, row, column, value and fix.

What is an error and what a warning follows the issue: an incumbent whose demand is not in
this year's demands, or whose agency has left the pool, is a warning (the year moved on); a pin
that names an unknown demand or agency is an error (a decision about this year must be about
this year's data). Whether a pin `assign` is eligible is checked by the eligibility layer
(eligibility/continuity.py), which owns the rules.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from allocator.core.errors import Problem
from allocator.data.instance import (
    EVALUATION_COLUMNS,
    INCUMBENT_COLUMNS,
    PIN_COLUMNS,
    Instance,
    empty_frame,
)
from allocator.data.policy import SCORERS
from allocator.data.reading import ROW_OFFSET
from allocator.data.validation import WARN_LIMIT, Checker, suggest

PIN_ACTIONS = ("assign", "forbid")


def _warn_rows(c: Checker, file: str, df: pd.DataFrame, mask: pd.Series | np.ndarray,
               column: str, message: str, fix: str | pd.Series) -> None:
    """One warning per row (the first WARN_LIMIT), then one line counting the rest; fix is
    one text or one per row of df."""
    pos = np.flatnonzero(np.asarray(mask, dtype=bool))
    if not len(pos):
        return
    shown = pos[:WARN_LIMIT]
    c.add(file, df.iloc[shown], np.ones(len(shown), dtype=bool), column, message,
          fix if isinstance(fix, str) else fix.iloc[shown], severity="warning")
    if len(pos) > WARN_LIMIT:
        first = fix if isinstance(fix, str) else str(fix.iloc[pos[WARN_LIMIT]])
        c.problems.append(Problem(file, None, column, None,
                                  f"{message}: {len(pos) - WARN_LIMIT} more rows not listed",
                                  first, "warning"))


def _required_ids(c: Checker, file: str, df: pd.DataFrame, columns: tuple[str, ...]
                  ) -> pd.Series:
    """Rows with every id filled in (an empty id is an error)."""
    ok = pd.Series(True, index=df.index)
    for col in columns:
        empty = df[col] == ""
        what = col.removesuffix("_id")
        c.add(file, df, empty, col, f"{what} id is empty", f"fill in the {what} id")
        ok &= ~empty
    return ok


def _first_row(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The spreadsheet row of the first row with the same keys, as text, per row."""
    first = df.groupby(keys, sort=False).cumcount() == 0
    lead = pd.Series(df.index[first] + ROW_OFFSET, index=pd.MultiIndex.from_frame(df.loc[
        first, keys]))
    return pd.Series([str(lead.get(k, "")) for k in pd.MultiIndex.from_frame(df[keys])],
                     index=df.index, dtype=object)


def _demand_positions(df: pd.DataFrame, demands: pd.DataFrame | None) -> pd.Series:
    """Row of demands (this year's) of each (enterprise_id, service_id); -1 where none."""
    if demands is None or not len(df):
        return pd.Series(-1, index=df.index, dtype=np.int64)
    key = pd.MultiIndex.from_frame(demands[["enterprise_id", "service_id"]].astype(str))
    first = pd.Series(np.arange(len(key)), index=key)
    first = first[~first.index.duplicated()]
    pos = pd.MultiIndex.from_frame(df[["enterprise_id", "service_id"]]).map(
        lambda k: first.get(k, -1))
    return pd.Series(np.asarray(pos, dtype=np.int64), index=df.index)


def check_incumbents(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    """incumbents.csv: last year's agency of a demand and for how many consecutive years."""
    f = "incumbents.csv"
    ok = _required_ids(c, f, df, ("enterprise_id", "service_id", "agency_id"))
    years = c.number(f, df, "years", lo=1, integer=True,
                     fix="write the number of consecutive years this agency has served this "
                         "demand up to last year (1 = only last year)")
    ok &= years.notna()
    pos = _demand_positions(df, out.get("demands"))
    if "demands" in out:
        gone = ok & (pos < 0)
        _warn_rows(c, f, df, gone, "service_id",
                   "incumbent of a demand that demands.csv does not list this year: ignored",
                   "nothing to do if the enterprise no longer needs this service; else add "
                   "the demand to demands.csv")
        ok &= pos >= 0
    in_pool = pd.Series(True, index=df.index)
    if "agencies" in out:
        in_pool = df["agency_id"].isin(out["agencies"].index)
        _warn_rows(c, f, df, ok & ~in_pool, "agency_id",
                   "incumbent agency has left the pool (not in agencies.csv): its demand "
                   "counts as one whose incumbent can no longer serve",
                   "nothing to do if the agency left; else add it to agencies.csv"
                   + suggest(df["agency_id"], out["agencies"].index).where(~in_pool, ""))
    dup = ok & df.duplicated(["enterprise_id", "service_id"], keep="first")
    c.add(f, df, dup, "service_id", "demand listed twice (a demand has one incumbent agency)",
          "keep one row per enterprise and service (the agency that served it last year); "
          "it is already on row " + _first_row(df, ["enterprise_id", "service_id"]))
    ok &= ~dup
    rows = df[ok]
    out["incumbents"] = pd.DataFrame({
        "demand": pos[ok].to_numpy(dtype=np.int64),
        "enterprise_id": rows["enterprise_id"].to_numpy(),
        "service_id": rows["service_id"].to_numpy(),
        "agency_id": rows["agency_id"].to_numpy(),
        "years": years[ok].astype(np.int64).to_numpy(),
        "in_pool": in_pool[ok].to_numpy(dtype=bool),
        "row": rows.index.to_numpy() + ROW_OFFSET}, columns=INCUMBENT_COLUMNS)


def _word(c: Checker, file: str, df: pd.DataFrame, column: str, allowed: tuple[str, ...],
          what: str) -> pd.Series:
    """A column of fixed words (lower case, spaces as '_'); unknown words are errors with a
    did-you-mean. Returns the normalised words ('' where wrong)."""
    text = df[column].str.lower().str.replace(" ", "_").str.replace("-", "_")
    c.add(file, df, text == "", column, f"{what} is empty", f"write one of {', '.join(allowed)}")
    bad = ~text.isin(allowed) & (text != "")
    if bad.any():
        hint = text.map(lambda s: next(iter(difflib.get_close_matches(s, allowed, n=1)), ""))
        fix = f"use one of {', '.join(allowed)}" + hint.map(
            lambda h: f" (did you mean '{h}'?)" if h else "")
        c.add(file, df, bad, column, f"unknown {what}", fix)
    return text.where(text.isin(allowed), "")


def check_pins(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    """pins.csv: an agency fixed on (assign) or kept off (forbid) a demand of this year."""
    f = "pins.csv"
    ok = _required_ids(c, f, df, ("enterprise_id", "service_id", "agency_id"))
    if "agencies" in out:
        known = df["agency_id"].isin(out["agencies"].index)
        c.add(f, df, ok & ~known, "agency_id", "unknown agency",
              "use an agency id listed in agencies.csv"
              + suggest(df["agency_id"], out["agencies"].index).where(~known, ""))
        ok &= known
    action = _word(c, f, df, "action", PIN_ACTIONS, "action")
    ok &= action != ""
    pos = _demand_positions(df, out.get("demands"))
    if "demands" in out:
        nodemand = (pos < 0) & (df["enterprise_id"] != "") & (df["service_id"] != "")
        c.add(f, df, nodemand, "service_id", "pin for a demand that demands.csv does not list",
              "add the demand (enterprise " + df["enterprise_id"] + ", service "
              + df["service_id"] + ") to demands.csv or remove the pin")
        ok &= pos >= 0
    dup = ok & df.duplicated(["enterprise_id", "service_id", "agency_id"], keep="first")
    c.add(f, df, dup, "agency_id", "the same agency and demand are pinned twice",
          "keep one row per enterprise, service and agency (assign or forbid, not both); "
          "it is already on row " + _first_row(df, ["enterprise_id", "service_id",
                                                    "agency_id"]))
    ok &= ~dup
    assign = ok & (action == "assign")
    two = assign & df[["enterprise_id", "service_id"]].where(assign).duplicated(keep="first")
    first = df[assign & ~two].drop_duplicates(["enterprise_id", "service_id"])
    first_agency = pd.Series(first["agency_id"].to_numpy(), index=pd.MultiIndex.from_frame(
        first[["enterprise_id", "service_id"]]))
    if two.any():
        other = pd.MultiIndex.from_frame(df.loc[two, ["enterprise_id", "service_id"]]).map(
            lambda k: first_agency.get(k, ""))
        fix = pd.Series("", index=df.index, dtype=object)
        fix[two] = ("this demand is already assigned to agency "
                    + pd.Series(list(other), index=df.index[two]).astype(str)
                    + " on an earlier row; a demand is served by one agency: keep one assign")
        c.add(f, df, two, "agency_id", "a second agency is assigned to the same demand", fix)
    ok &= ~two
    rows = df[ok]
    out["pins"] = pd.DataFrame({
        "demand": pos[ok].to_numpy(dtype=np.int64),
        "enterprise_id": rows["enterprise_id"].to_numpy(),
        "service_id": rows["service_id"].to_numpy(),
        "agency_id": rows["agency_id"].to_numpy(),
        "action": action[ok].to_numpy(),
        "note": rows["note"].to_numpy(),
        "row": rows.index.to_numpy() + ROW_OFFSET}, columns=PIN_COLUMNS)


def check_evaluations(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    """evaluations.csv: one score (0-100) of an agency by one scorer, with any violation."""
    f = "evaluations.csv"
    ok = _required_ids(c, f, df, ("agency_id",))
    scorer = _word(c, f, df, "scorer", SCORERS, "scorer")
    ok &= scorer != ""
    score = c.number(f, df, "score", lo=0, hi=100,
                     fix="write the score as a number from 0 to 100")
    ok &= score.notna()
    if "agencies" in out:
        known = df["agency_id"].isin(out["agencies"].index)
        _warn_rows(c, f, df, ok & ~known, "agency_id",
                   "agency not in agencies.csv: its evaluation is ignored",
                   "add the agency to agencies.csv, or correct its id"
                   + suggest(df["agency_id"], out["agencies"].index).where(~known, ""))
        ok &= known
    if "enterprises" in out:
        unknown = (df["enterprise_id"] != "") & ~df["enterprise_id"].isin(
            out["enterprises"].index)
        _warn_rows(c, f, df, unknown, "enterprise_id",
                   "enterprise not in enterprises.csv (kept: the score still counts)",
                   "correct the id if it is a typo")
    date = df["date"]
    parsed = pd.to_datetime(date.where(date != ""), errors="coerce", format="%Y-%m-%d")
    c.add(f, df, (date != "") & parsed.isna(), "date", "not a date",
          "write the date as YYYY-MM-DD, e.g. 2026-11-30, or leave it empty")
    rows = df[ok]
    out["evaluations"] = pd.DataFrame({
        "agency_id": rows["agency_id"].to_numpy(), "scorer": scorer[ok].to_numpy(),
        "score": score[ok].astype(float).to_numpy(), "violation": rows["violation"].to_numpy(),
        "enterprise_id": rows["enterprise_id"].to_numpy(), "date": rows["date"].to_numpy(),
        "note": rows["note"].to_numpy()}, columns=EVALUATION_COLUMNS)


def check_history(c: Checker, t: dict[str, pd.DataFrame], out: dict[str, pd.DataFrame]
                  ) -> None:
    """The three optional files of the planner's year (absent files: empty frames)."""
    checks = (("incumbents.csv", "incumbents", check_incumbents, INCUMBENT_COLUMNS),
              ("pins.csv", "pins", check_pins, PIN_COLUMNS),
              ("evaluations.csv", "evaluations", check_evaluations, EVALUATION_COLUMNS))
    for file, key, check, columns in checks:
        if file in t:
            check(c, t[file], out)
        else:
            out[key] = empty_frame(columns)


def allowed_changes(ratio: float | None, eligible_incumbents: int) -> int:
    """How many of the demands whose incumbent is still eligible may move or go unserved
    under continuity.max_changes (ratio x their number, rounded down; all when off)."""
    if ratio is None:
        return eligible_incumbents
    return int(np.floor(ratio * eligible_incumbents + 1e-9))


def has_incumbents(instance: Instance) -> bool:
    """Whether the instance carries last year's plan on some demand of this year."""
    return len(instance.incumbents) > 0


def stability_on(instance: Instance) -> bool:
    """Whether the objective has the stability level (incumbents and keep_incumbents)."""
    return instance.policy.keep_incumbents and has_incumbents(instance)


def objective_levels(instance: Instance) -> tuple[str, ...]:
    """The objective's levels for this instance, in order: coverage, stability (when on),
    quality, cost."""
    return tuple(n for n in ("coverage", "stability", "quality", "cost")
                 if n != "stability" or stability_on(instance))


__all__ = ["PIN_ACTIONS", "allowed_changes", "check_history", "has_incumbents", "objective_levels",
           "stability_on"]
