"""Validation: every rule of spec sections 2-3 checked in one pass, every bad cell reported.

`load_instance` (a folder) and `instance_from_frames` (pandas frames and a policy dict) are
the only ways to get an `Instance`: both check alike and raise `InputError` with all problems
at once, or return typed frames plus warnings.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.core.errors import InputError, Problem
from allocator.core.tables import is_formula
from allocator.data.funding import FILE as FUNDING_FILE
from allocator.data.funding import check_funding, funding_warnings
from allocator.data.instance import Instance
from allocator.data.limits import (
    MAX_DAYS,
    MAX_MONEY,
    MAX_WEIGHT,
    MIN_DAYS,
    MIN_MONEY,
    MIN_WEIGHT,
    weight_range_text,
)
from allocator.data.policy import POLICY_FILE, parse_policy
from allocator.data.reading import ROW_OFFSET, RawInstance, raw_from_frames, read_raw

STATUSES = ("active", "probation", "suspended", "blacklisted")
#: words a planner may write for a risk level, and the level they mean (for the fix hint)
RISK_WORDS = {"low": 1, "blue": 1, "general": 2, "yellow": 2, "high": 3, "orange": 3,
              "major": 4, "red": 4}
RISK_FIX = "use 1 (low/blue), 2 (general/yellow), 3 (high/orange) or 4 (major/red)"
#: how many suspicious rows of one kind are listed before the rest is only counted
WARN_LIMIT = 50
#: how to bring a value into the accepted range (data.limits), by column
UNIT_HINT = {"weight": "only the ratios of weights matter, so use a small scale (e.g. 1-8 as "
                       "coverage.weights)",
             "person_days": "person-days of one demand", "capacity_days": "person-days of "
             "one agency in the year"}
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?")


def article(word: str) -> str:
    """'an agency', 'a district'."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def number_fix(text: str, default: str, optional: bool = False) -> str:
    """The fix for one cell that is not a number: name the likely slip."""
    t = text.strip()
    if _THOUSANDS.fullmatch(t):
        return f"write it without thousands separators: {t.replace(',', '')}"
    if t.endswith("%"):
        return "write the number without the % sign"
    if t.lower().lstrip("+-") in ("nan", "inf", "infinity", "na", "n/a", "none", "null", "-"):
        return default if optional else "write a finite number (not nan, inf, none or n/a)"
    if re.fullmatch(r"[-+]?\d+,\d+", t):
        return f"use a decimal point, not a comma: {t.replace(',', '.')}"
    if re.match(r"^[-+]?\d+(\.\d+)?\s*\D+$", t):
        return "write the number alone, without a unit"
    return default


def suggest(values: pd.Series, known: pd.Index) -> pd.Series:
    """For each unknown value, a 'did you mean' hint ('' if none): same id in another case,
    or a close spelling when the list of known ids is short."""
    known_str = pd.Index(known.astype(str))
    lower = pd.Series(known_str, index=known_str.str.lower())
    lower = lower[~lower.index.duplicated()]
    out = values.str.lower().map(lower)
    hint = np.full(len(values), "", dtype=object)  # by position: the index may repeat
    found = out.notna().to_numpy()
    hint[found] = (" (did you mean '" + out[found].astype(str)
                   + "'? ids are case-sensitive)").to_numpy()
    rest = values[~found]
    if len(known_str) <= 5000 and 0 < rest.nunique() <= 200:
        choices = list(known_str)
        close = {v: difflib.get_close_matches(v, choices, n=1, cutoff=0.75)
                 for v in rest.unique()}
        hint[~found] = rest.map(lambda v: f" (did you mean '{close[v][0]}'?)" if close[v]
                                else "").to_numpy()
    return pd.Series(hint, index=values.index, dtype=object)


class Checker:
    """Collects problems while converting text columns to typed ones.

    Rows are reported as a spreadsheet shows them: the frame's index (the record number in
    the file, blank rows counted) plus 2.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, df: pd.DataFrame, mask: pd.Series | np.ndarray, column: str,
            message: str, fix: str | pd.Series, severity: str = "error",
            values: pd.Series | None = None) -> None:
        """Record one problem per row where mask holds."""
        pos = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(pos):
            return
        shown = df[column] if values is None else values
        rows = df.index.to_numpy()
        for i in pos:
            f = fix if isinstance(fix, str) else fix.iloc[i]
            self.problems.append(Problem(file, int(rows[i]) + ROW_OFFSET, column,
                                         shown.iloc[i], message, f, severity))

    def not_empty(self, file: str, df: pd.DataFrame, what: str, severity: str = "error") -> bool:
        """A table with a header but no rows: the instance cannot be planned."""
        if len(df):
            return True
        self.problems.append(Problem(file, None, "", None, f"the file has no {what} rows, only "
                                     "a header", f"add at least one {what} under the header row",
                                     severity))
        return False

    def ids(self, file: str, df: pd.DataFrame, column: str, what: str) -> None:
        """Ids must be present and unique within the file."""
        empty = df[column] == ""
        self.add(file, df, empty, column, f"{what} id is empty",
                 f"give every row {article(what)} id")
        dup = df[column].duplicated(keep="first") & ~empty
        if not dup.any():
            return
        first = df[column].drop_duplicates(keep="first")
        first_row = pd.Series(first.index.to_numpy() + ROW_OFFSET, index=first.to_numpy())
        fix = ("each " + what + " appears once; this id is already on row "
               + df[column].map(first_row).fillna(0).astype(int).astype(str)
               + ": merge the rows or rename one")
        self.add(file, df, dup, column, f"duplicate {what} id", fix)

    def number(self, file: str, df: pd.DataFrame, column: str, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, optional: bool = False,
               integer: bool = False, fix: str = "",
               word_fix: pd.Series | None = None,
               smallest: float | None = None) -> pd.Series:
        """Parse a numeric column; report non-numbers, blanks and out-of-range values.

        `word_fix` (per row, '' where none) replaces the fix of a cell that is not a number.
        `smallest`: a value above 0 must be at least this (data.limits: the solvers'
        tolerances would blur a smaller one).
        """
        text = df[column]
        values = pd.to_numeric(text, errors="coerce").astype(float)
        blank = text == ""
        bad = (values.isna() & ~blank) | ~np.isfinite(values.fillna(0.0))
        default = fix or ("write a plain number (digits and a decimal point, no thousands "
                          "separators or units)")
        if bad.any():
            fixes = text.map(lambda t: number_fix(t, default, optional)
                             if isinstance(t, str) else default)
            if word_fix is not None:
                fixes = fixes.where(word_fix == "", word_fix)
            self.add(file, df, bad, column, "not a number", fixes)
        if not optional:
            self.add(file, df, blank, column, "a value is required", fix or "fill in a number")
        ok = ~values.isna() & ~bad
        if integer:
            frac = ok & (values != values.round())
            self.add(file, df, frac, column, "must be a whole number", fix or "use 1, 2, 3 or 4")
            ok &= ~frac
        out = pd.Series(False, index=df.index)
        if lo is not None:  # a bound of the data's meaning: its own message
            low = ok & ((values <= lo) if lo_open else (values < lo))
            rng = f"{'>' if lo_open else '>='} {lo:g}" + (
                f" and <= {hi:g}" if hi is not None and hi <= 100 else "")
            self.add(file, df, low, column, f"out of range (must be {rng})",
                     fix or f"use a value {rng}")
            out |= low
        if hi is not None:
            high = ok & ~out & (values > hi)
            if hi <= 100:  # a scale (risk 1-4, quality 0-100)
                rng = (f"{'>' if lo_open else '>='} {lo:g} and " if lo is not None else "")
                self.add(file, df, high, column, f"out of range (must be {rng}<= {hi:g})",
                         fix or f"use a value {rng}<= {hi:g}")
            else:  # data.limits: beyond it the solvers' tolerances could give a wrong plan
                self.add(file, df, high, column,
                         f"too large to plan with (at most {hi:,.0f})",
                         f"use a value up to {hi:,.0f}: " + UNIT_HINT.get(
                             column, "write amounts in a larger unit (e.g. thousands of "
                                     "yuan) in every file")
                         + "; see 'Accepted ranges' in the README")
            out |= high
        if smallest is not None:
            tiny = ok & ~out & (values > 0) & (values < smallest)
            self.add(file, df, tiny, column,
                     f"too small to plan with (a value above 0 must be at least {smallest:g})",
                     f"use 0 where allowed, or at least {smallest:g} (change the unit if "
                     "needed, e.g. weights 1-8)")
            out |= tiny
        return values.where(ok & ~out)

    def reference(self, file: str, df: pd.DataFrame, column: str, known: pd.Index,
                  target: str, what: str) -> pd.Series:
        """Values of column must be ids known in target; returns the mask of good rows."""
        empty = df[column] == ""
        unknown = ~df[column].isin(known) & ~empty
        if unknown.any():
            hint = suggest(df[column], known)
            fix = f"use {article(what)} id listed in {target}, or add it there" + hint
            self.add(file, df, unknown, column, f"unknown {what}", fix)
        self.add(file, df, empty, column, f"{what} is empty",
                 f"fill in {article(what)} id from {target}")
        return ~unknown & ~empty


def _check_districts(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    f = "districts.csv"
    c.not_empty(f, df, "district")
    c.ids(f, df, "district_id", "district")
    cap = c.number(f, df, "budget_cap", lo=0, hi=MAX_MONEY, smallest=MIN_MONEY, optional=True,
                   fix="write the cap as a plain number up to 1e12, or leave it empty for no "
                       "cap")
    out["districts"] = pd.DataFrame(
        {"name": df["name"].to_numpy(), "budget_cap": cap.to_numpy()},
        index=pd.Index(df["district_id"].to_numpy(), name="district_id"))


def _check_services(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    f = "services.csv"
    c.not_empty(f, df, "service")
    c.ids(f, df, "service_id", "service")
    rate = c.number(f, df, "reference_rate", lo=0, lo_open=True, hi=MAX_MONEY,
                    smallest=MIN_MONEY)
    out["services"] = pd.DataFrame(
        {"name": df["name"].to_numpy(), "reference_rate": rate.to_numpy()},
        index=pd.Index(df["service_id"].to_numpy(), name="service_id"))


def _check_enterprises(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    f = "enterprises.csv"
    c.not_empty(f, df, "enterprise")
    c.ids(f, df, "enterprise_id", "enterprise")
    if "districts" in out:
        c.reference(f, df, "district_id", out["districts"].index, "districts.csv", "district")
    c.add(f, df, df["sector"] == "", "sector", "sector is empty",
          "give the enterprise's sector, e.g. hazardous_chemicals")
    text = df["risk_level"]
    worded = text.str.lower().map(RISK_WORDS)
    said = worded.notna()
    word_fix = pd.Series("", index=df.index, dtype=object)
    word_fix[said] = ("write the level as a number: " + worded[said].astype(int).astype(str)
                      + " for " + text[said])
    risk = c.number(f, df, "risk_level", lo=1, hi=4, integer=True, fix=RISK_FIX,
                    word_fix=word_fix)
    out["enterprises"] = pd.DataFrame(
        {"name": df["name"].to_numpy(), "district_id": df["district_id"].to_numpy(),
         "sector": df["sector"].to_numpy(),
         "risk_level": risk.fillna(0).astype(int).to_numpy()},
        index=pd.Index(df["enterprise_id"].to_numpy(), name="enterprise_id"))


#: words planners write for a status, by meaning (a spelling match would turn 'inactive'
#: into 'active', the opposite)
STATUS_WORDS = {"inactive": "suspended", "disabled": "suspended", "paused": "suspended",
                "removed": "blacklisted", "banned": "blacklisted", "blocked": "blacklisted",
                "excluded": "blacklisted", "trial": "probation", "provisional": "probation",
                "enabled": "active", "ok": "active", "normal": "active"}


def status_hint(text: str) -> str:
    """The status a planner most likely meant by text ('' if no guess is safe)."""
    word = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    close = next(iter(difflib.get_close_matches(word, STATUSES, n=1)), "")
    negated = word.startswith(("in", "un", "non", "not", "de")) and not close.startswith(
        word[:2])
    return "" if negated else close


def _check_agencies(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    f = "agencies.csv"
    c.not_empty(f, df, "agency")
    c.ids(f, df, "agency_id", "agency")
    status = df["status"].str.lower()
    c.add(f, df, status == "", "status", "status is empty",
          f"write one of {', '.join(STATUSES)}")
    bad = ~status.isin(STATUSES) & (status != "")
    if bad.any():
        hint = status.map(status_hint)
        fix = f"use one of {', '.join(STATUSES)}" + hint.map(
            lambda h: f" (did you mean '{h}'?)" if h else "")
        c.add(f, df, bad, "status", "unknown status", fix)
    quality = c.number(f, df, "quality", lo=0, hi=100)
    cap = c.number(f, df, "capacity_days", lo=0, hi=MAX_DAYS, smallest=MIN_DAYS)
    area_text = df["districts"]
    c.add(f, df, area_text == "", "districts", "service area is empty",
          "write '*' for all districts or district ids joined by ';'")
    out["agencies"] = pd.DataFrame(
        {"name": df["name"].to_numpy(), "status": status.to_numpy(),
         "quality": quality.to_numpy(), "capacity_days": cap.to_numpy(),
         "districts": area_text.to_numpy(), "all_districts": (area_text == "*").to_numpy()},
        index=pd.Index(df["agency_id"].to_numpy(), name="agency_id"))
    if "districts" not in out:
        return
    known = out["districts"].index
    area = pd.DataFrame({"agency_id": df["agency_id"], "row": df.index,
                         "district_id": area_text.str.split(";")})
    area = area[area_text != "*"].explode("district_id")
    area["district_id"] = area["district_id"].fillna("").str.strip()
    area = area[area["district_id"] != ""]  # 'D1;D2;' is fine
    bad = ~area["district_id"].isin(known)
    if bad.any():
        wrong = area.loc[bad, "district_id"]
        hint = suggest(wrong, known)
        sep = wrong.str.contains(r"[,|/ \t]", regex=True)
        hint[sep] = " (join district ids with ';', e.g. D1;D2)"
        star = wrong.str.contains(r"\*", regex=True) | wrong.str.lower().isin(["all", "any"])
        hint[star] = " ('*' means all districts and must stand alone)"
        for row, ident, h in zip(area.loc[bad, "row"], wrong, hint, strict=True):
            c.problems.append(Problem(f, int(row) + ROW_OFFSET, "districts", ident,
                                      "unknown district in service area",
                                      "use district ids from districts.csv joined by ';', "
                                      "or '*' for all" + h))
    every = pd.MultiIndex.from_product(
        [df.loc[area_text == "*", "agency_id"], known],
        names=["agency_id", "district_id"]).to_frame(index=False)
    listed = area.loc[~bad, ["agency_id", "district_id"]]
    out["agency_districts"] = (pd.concat([every, listed], ignore_index=True).drop_duplicates()
                               .reset_index(drop=True))


def _check_sector(c: Checker, file: str, df: pd.DataFrame, sectors: pd.Index) -> pd.Series:
    """Sectors of offers must be sectors some enterprise has."""
    empty = df["sector"] == ""
    c.add(file, df, empty, "sector", "sector is empty",
          "write a sector as it appears in enterprises.csv")
    unknown = ~df["sector"].isin(sectors) & ~empty
    if unknown.any():
        hint = suggest(df["sector"], sectors)
        c.add(file, df, unknown, "sector", "unknown sector (no enterprise in enterprises.csv "
              "has it)", "use a sector written exactly as in enterprises.csv" + hint)
    return ~unknown & ~empty


def check_tables(raw: RawInstance) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Check the raw tables and return typed frames (only meaningful when no errors)."""
    c = Checker()
    t = raw.tables
    out: dict[str, pd.DataFrame] = {}
    if "districts.csv" in t:
        _check_districts(c, t["districts.csv"], out)
    if "services.csv" in t:
        _check_services(c, t["services.csv"], out)
    if "enterprises.csv" in t:
        _check_enterprises(c, t["enterprises.csv"], out)
    if "agencies.csv" in t:
        _check_agencies(c, t["agencies.csv"], out)
    sectors = pd.Index(out["enterprises"]["sector"].unique()) if "enterprises" in out else None
    if "demands.csv" in t:
        f, df = "demands.csv", t["demands.csv"]
        c.not_empty(f, df, "demand")
        ok_e = ok_s = pd.Series(True, index=df.index)
        if "enterprises" in out:
            ok_e = c.reference(f, df, "enterprise_id", out["enterprises"].index,
                               "enterprises.csv", "enterprise")
        if "services" in out:
            ok_s = c.reference(f, df, "service_id", out["services"].index, "services.csv",
                               "service")
        pdays = c.number(f, df, "person_days", lo=0, lo_open=True, hi=MAX_DAYS,
                         smallest=MIN_DAYS)
        weight = c.number(f, df, "weight", lo=0, hi=MAX_WEIGHT, smallest=MIN_WEIGHT,
                          optional=True,
                          fix=f"write a weight ({weight_range_text()}), or leave it empty for "
                              "the policy default")
        dup = df.duplicated(["enterprise_id", "service_id"], keep="first") & ok_e & ok_s
        c.add(f, df, dup, "service_id", "duplicate demand (same enterprise and service)",
              "list each enterprise's service once; add the person-days together")
        out["demands"] = pd.DataFrame(
            {"enterprise_id": df["enterprise_id"], "service_id": df["service_id"],
             "person_days": pdays, "weight_given": weight}).reset_index(drop=True)
    if "bids.csv" in t:
        f, df = "bids.csv", t["bids.csv"]
        if not len(df):  # an error if nobody offers anything at all (no quotes either)
            c.not_empty(f, df, "bid", severity="warning" if len(t.get("quotes.csv", []))
                        else "error")
        ok_a = ok_s = ok_sec = pd.Series(True, index=df.index)
        if "agencies" in out:
            ok_a = c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv",
                               "agency")
        if "services" in out:
            ok_s = c.reference(f, df, "service_id", out["services"].index, "services.csv",
                               "service")
        if sectors is not None:
            ok_sec = _check_sector(c, f, df, sectors)
        rate = c.number(f, df, "day_rate", lo=0, lo_open=True, hi=MAX_MONEY,
                        smallest=MIN_MONEY)
        dup = df.duplicated(["agency_id", "service_id", "sector"], keep="first")
        c.add(f, df, dup & ok_a & ok_s & ok_sec, "sector",
              "duplicate bid (same agency, service and sector)",
              "keep one day_rate per agency, service and sector")
        out["bids"] = pd.DataFrame({"agency_id": df["agency_id"], "service_id": df["service_id"],
                                    "sector": df["sector"], "day_rate": rate}
                                   ).reset_index(drop=True)
    if "quotes.csv" in t:
        f, df = "quotes.csv", t["quotes.csv"]
        ok_a = ok_e = ok_s = pd.Series(True, index=df.index)
        if "agencies" in out:
            ok_a = c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv",
                               "agency")
        if "enterprises" in out:
            ok_e = c.reference(f, df, "enterprise_id", out["enterprises"].index,
                               "enterprises.csv", "enterprise")
        if "services" in out:
            ok_s = c.reference(f, df, "service_id", out["services"].index, "services.csv",
                               "service")
        price = c.number(f, df, "price", lo=0, lo_open=True, hi=MAX_MONEY, smallest=MIN_MONEY)
        pdays = c.number(f, df, "person_days", lo=0, lo_open=True, hi=MAX_DAYS,
                         smallest=MIN_DAYS)
        dup = df.duplicated(["agency_id", "enterprise_id", "service_id"], keep="first")
        c.add(f, df, dup & ok_a & ok_e & ok_s, "service_id",
              "duplicate quote (same agency, enterprise and service)",
              "keep one quote per agency, enterprise and service")
        if "demands" in out and "enterprises" in out and "services" in out and len(df):
            key = pd.MultiIndex.from_frame(out["demands"][["enterprise_id", "service_id"]])
            has = pd.MultiIndex.from_frame(df[["enterprise_id", "service_id"]]).isin(key)
            c.add(f, df, ~has & ok_e.to_numpy() & ok_s.to_numpy(), "service_id",
                  "quote for a demand that demands.csv does not list",
                  "add the demand (enterprise " + df["enterprise_id"]
                  + ", service " + df["service_id"] + ") to demands.csv or remove the quote")
        out["quotes"] = pd.DataFrame(
            {"agency_id": df["agency_id"], "enterprise_id": df["enterprise_id"],
             "service_id": df["service_id"], "price": price, "person_days": pdays}
        ).reset_index(drop=True)
    if "conflicts.csv" in t:
        f, df = "conflicts.csv", t["conflicts.csv"]
        if "agencies" in out:
            c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv", "agency")
        if "enterprises" in out:
            c.reference(f, df, "enterprise_id", out["enterprises"].index, "enterprises.csv",
                        "enterprise")
        out["conflicts"] = df[["agency_id", "enterprise_id"]].drop_duplicates().reset_index(
            drop=True)
    if FUNDING_FILE in t:
        check_funding(c, t[FUNDING_FILE], out)
    from allocator.data.history import check_history  # history builds on this module

    check_history(c, t, out)
    return out, c.problems


def _warn(problems: list[Problem], file: str, column: str, ids: pd.Index, message: str,
          fix: str) -> None:
    """One warning per id (the first WARN_LIMIT), then one line counting the rest."""
    for ident in ids[:WARN_LIMIT]:
        problems.append(Problem(file, None, column, ident, message, fix, "warning"))
    if len(ids) > WARN_LIMIT:
        problems.append(Problem(file, None, column, None,
                                f"{message}: {len(ids) - WARN_LIMIT} more not listed", fix,
                                "warning"))


#: the text columns of the instance that reach the result files (ids, names, sectors)
TEXT_COLUMNS = {"districts.csv": ("district_id", "name"), "services.csv": ("service_id", "name"),
                "enterprises.csv": ("enterprise_id", "name", "district_id", "sector"),
                "agencies.csv": ("agency_id", "name"), "bids.csv": ("sector",)}


def formula_like(tables: dict[str, pd.DataFrame]) -> list[Problem]:
    """Ids and names a spreadsheet would run as formulas (=, +, -, @ first): allowed, and
    neutralised in every file allocator writes, but other tools that copy them may not."""
    warnings: list[Problem] = []
    for file, cols in TEXT_COLUMNS.items():
        df = tables.get(file)
        if df is None:
            continue
        for col in cols:
            if col not in df.columns:
                continue
            cells = df[col]
            hit = cells.map(is_formula).to_numpy(dtype=bool)
            for row, value in zip(df.index[hit][:WARN_LIMIT], cells[hit][:WARN_LIMIT],
                                  strict=True):
                warnings.append(Problem(
                    file, int(row) + ROW_OFFSET, col, value,
                    "starts with a character a spreadsheet runs as a formula",
                    "allocator's result files show it with a leading apostrophe (read back "
                    "as it is); rename it if other tools will copy it into a spreadsheet",
                    "warning"))
            if hit.sum() > WARN_LIMIT:
                warnings.append(Problem(file, None, col, None,
                                        f"{int(hit.sum()) - WARN_LIMIT} more cells start with "
                                        "a formula character", "see above", "warning"))
    return warnings


def suspicious(frames: dict[str, pd.DataFrame]) -> list[Problem]:
    """Legal but suspicious data: reported as warnings, never refused."""
    warnings: list[Problem] = []
    ent, dem = frames["enterprises"], frames["demands"]
    idle = ent.index[~ent.index.isin(dem["enterprise_id"])]
    _warn(warnings, "enterprises.csv", "enterprise_id", idle,
          "enterprise has no demand", "add its needed services to demands.csv if any")
    ag = frames["agencies"]
    offered = pd.Index(frames["bids"]["agency_id"]).union(pd.Index(frames["quotes"]["agency_id"]))
    silent = ag.index[~ag.index.isin(offered)]
    _warn(warnings, "agencies.csv", "agency_id", silent,
          "agency has no bid or quote, so it can serve nothing",
          "add its offers to bids.csv (or quotes.csv)")
    zero = ag.index[(ag["capacity_days"] == 0).to_numpy()]
    _warn(warnings, "agencies.csv", "capacity_days", zero,
          "agency has capacity_days 0, so it can serve nothing", "give its person-days, if any")
    return warnings


def load_instance(path: str | Path, overrides: dict[str, Any] | None = None,
                  budget: float | None = None) -> Instance:
    """Read and check an instance folder; raise InputError listing every problem found.

    `overrides` is a nested dict merged over policy.yaml (what-if scenarios); `budget`
    replaces budget.total. Warnings (legal but suspicious data) ride along on the Instance,
    or on the InputError with the errors.
    """
    raw = read_raw(Path(path))
    has_policy = (Path(path) / POLICY_FILE).is_file()
    return build_instance(raw, has_policy, overrides, budget)


def instance_from_frames(frames: dict[str, pd.DataFrame], policy: dict[str, Any],
                         name: str = "instance", overrides: dict[str, Any] | None = None,
                         budget: float | None = None) -> Instance:
    """An Instance from pandas frames (keys: the file names without .csv, e.g. "districts",
    "demands"; "quotes", "conflicts" and "funding" optional) and a policy dict shaped like
    policy.yaml, checked exactly as a folder is (InputError with every problem found)."""
    raw = raw_from_frames(frames, policy, name)
    return build_instance(raw, True, overrides, budget)


def build_instance(raw: RawInstance, has_policy: bool, overrides: dict[str, Any] | None,
                   budget: float | None) -> Instance:
    """Check the raw tables and the policy; the typed Instance, or InputError."""
    problems = list(raw.problems)
    frames, found = check_tables(raw)
    problems += found
    policy = None
    funded = FUNDING_FILE in raw.tables and not raw.tables[FUNDING_FILE].attrs.get("absent")
    if has_policy and not any(p.file == POLICY_FILE for p in raw.problems):
        extra = dict(overrides or {})
        if budget is not None:
            given = extra.get("budget")
            extra["budget"] = {**(given if isinstance(given, dict) else {}), "total": budget}
        policy, policy_problems = parse_policy(raw.policy, overrides=extra or None,
                                               budget_optional=funded)
        problems += policy_problems
    errors = [p for p in problems if p.severity == "error"]
    if errors or policy is None:
        raise InputError(errors + [p for p in problems if p.severity != "error"])
    ent = frames["enterprises"]
    dem = frames["demands"].join(ent[["district_id", "sector", "risk_level"]], on="enterprise_id")
    dem["weight"] = dem["weight_given"].fillna(dem["risk_level"].map(policy.weights)).astype(float)
    dem["person_days"] = dem["person_days"].astype(float)
    frames["demands"] = dem.reset_index(drop=True)
    frames["demands"].index.name = "demand"
    warnings = ([p for p in problems if p.severity == "warning"] + suspicious(frames)
                + formula_like(raw.tables))
    warnings += funding_warnings(frames.get("funding"), frames["demands"],
                                 policy.mandatory_levels)
    return Instance(path=raw.path, policy=policy, sha256=raw.sha256, warnings=warnings,
                    funding=frames.get("funding"),
                    **{k: frames[k] for k in ("districts", "services", "enterprises", "demands",
                                              "agencies", "agency_districts", "bids", "quotes",
                                              "conflicts", "incumbents", "pins", "evaluations")})
