"""Validation: every rule of spec sections 2-3 checked in one pass, every bad cell reported.

`load_instance` is the only way to get an `Instance`: it reads, checks, and raises
`InputError` with all problems at once, or returns typed frames plus warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from allocator.instance import Instance
from allocator.io import RawInstance, read_raw
from allocator.policy import parse_policy
from allocator.problems import InputError, Problem

STATUSES = ("active", "probation", "suspended", "blacklisted")
ROW_OFFSET = 2  # header is spreadsheet row 1, first data row is row 2


def _rows(mask: pd.Series) -> np.ndarray:
    return np.flatnonzero(mask.to_numpy())


class Checker:
    """Collects problems while converting text columns to typed ones."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str, df: pd.DataFrame, mask: pd.Series, column: str, message: str,
            fix: str, severity: str = "error", values: pd.Series | None = None) -> None:
        """Record one problem per row where mask holds."""
        shown = df[column] if values is None else values
        for i in _rows(mask):
            self.problems.append(Problem(file, int(i) + ROW_OFFSET, column, shown.iloc[i],
                                         message, fix, severity))

    def ids(self, file: str, df: pd.DataFrame, column: str, what: str) -> None:
        """Ids must be present and unique within the file."""
        empty = df[column] == ""
        self.add(file, df, empty, column, f"{what} id is empty", f"give every row a {what} id")
        dup = df[column].duplicated(keep="first") & ~empty
        self.add(file, df, dup, column, f"duplicate {what} id",
                 f"each {what} appears once; merge or rename the repeated row")

    def number(self, file: str, df: pd.DataFrame, column: str, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, optional: bool = False,
               integer: bool = False, fix: str = "") -> pd.Series:
        """Parse a numeric column; report non-numbers, blanks and out-of-range values."""
        text = df[column]
        values = pd.to_numeric(text, errors="coerce").astype(float)
        blank = text == ""
        bad = values.isna() & ~blank
        bad |= ~np.isfinite(values.fillna(0.0))
        self.add(file, df, bad, column, "not a number", fix or "write a plain number "
                 "(digits and a decimal point, no thousands separators or units)")
        if not optional:
            self.add(file, df, blank, column, "a value is required", fix or "fill in a number")
        ok = ~values.isna() & ~bad
        if integer:
            frac = ok & (values != values.round())
            self.add(file, df, frac, column, "must be a whole number", fix or "use 1, 2, 3 or 4")
            ok &= ~frac
        rng = (f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else "") + (
            f"{' and ' if lo is not None else ''}<= {hi:g}" if hi is not None else "")
        out = pd.Series(False, index=df.index)
        if lo is not None:
            out |= (values <= lo) if lo_open else (values < lo)
        if hi is not None:
            out |= values > hi
        out &= ok
        self.add(file, df, out, column, f"out of range (must be {rng})",
                 fix or f"use a value {rng}")
        return values.where(ok & ~out)

    def reference(self, file: str, df: pd.DataFrame, column: str, known: pd.Index,
                  target: str, what: str) -> pd.Series:
        """Values of column must be ids known in target; returns the mask of good rows."""
        unknown = ~df[column].isin(known) & (df[column] != "")
        self.add(file, df, unknown, column, f"unknown {what}",
                 f"use a {what} id listed in {target}, or add it there")
        empty = df[column] == ""
        self.add(file, df, empty, column, f"{what} is empty", f"fill in a {what} id from {target}")
        return ~unknown & ~empty


def _warn(problems: list[Problem], file: str, column: str, ids: list[Any], message: str,
          fix: str, rows: list[int] | None = None) -> None:
    for k, ident in enumerate(ids):
        problems.append(Problem(file, rows[k] if rows else None, column, ident, message, fix,
                                "warning"))


def check_tables(raw: RawInstance) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Check the raw tables and return typed frames (only meaningful when no errors)."""
    c = Checker()
    t = raw.tables
    out: dict[str, pd.DataFrame] = {}
    if "districts.csv" in t:
        f, df = "districts.csv", t["districts.csv"]
        c.ids(f, df, "district_id", "district")
        cap = c.number(f, df, "budget_cap", lo=0, optional=True,
                       fix="write the cap as a plain number, or leave it empty for no cap")
        out["districts"] = pd.DataFrame(
            {"name": df["name"].to_numpy(), "budget_cap": cap.to_numpy()},
            index=pd.Index(df["district_id"], name="district_id"))
    if "services.csv" in t:
        f, df = "services.csv", t["services.csv"]
        c.ids(f, df, "service_id", "service")
        rate = c.number(f, df, "reference_rate", lo=0, lo_open=True)
        out["services"] = pd.DataFrame(
            {"name": df["name"].to_numpy(), "reference_rate": rate.to_numpy()},
            index=pd.Index(df["service_id"], name="service_id"))
    if "enterprises.csv" in t:
        f, df = "enterprises.csv", t["enterprises.csv"]
        c.ids(f, df, "enterprise_id", "enterprise")
        if "districts" in out:
            c.reference(f, df, "district_id", out["districts"].index, "districts.csv", "district")
        c.add(f, df, df["sector"] == "", "sector", "sector is empty",
              "give the enterprise's sector, e.g. hazardous_chemicals")
        risk = c.number(f, df, "risk_level", lo=1, hi=4, integer=True,
                        fix="use 1 (low/blue), 2 (general/yellow), 3 (high/orange) or 4 "
                            "(major/red)")
        out["enterprises"] = pd.DataFrame(
            {"name": df["name"].to_numpy(), "district_id": df["district_id"].to_numpy(),
             "sector": df["sector"].to_numpy(), "risk_level": risk.fillna(0).astype(int).to_numpy()},
            index=pd.Index(df["enterprise_id"], name="enterprise_id"))
    if "agencies.csv" in t:
        f, df = "agencies.csv", t["agencies.csv"]
        c.ids(f, df, "agency_id", "agency")
        status = df["status"].str.lower()
        c.add(f, df, ~status.isin(STATUSES), "status", "unknown status",
              f"use one of {', '.join(STATUSES)}")
        quality = c.number(f, df, "quality", lo=0, hi=100)
        cap = c.number(f, df, "capacity_days", lo=0)
        c.add(f, df, df["districts"] == "", "districts", "service area is empty",
              "write '*' for all districts or district ids joined by ';'")
        out["agencies"] = pd.DataFrame(
            {"name": df["name"].to_numpy(), "status": status.to_numpy(),
             "quality": quality.to_numpy(), "capacity_days": cap.to_numpy(),
             "districts": df["districts"].to_numpy(),
             "all_districts": (df["districts"] == "*").to_numpy()},
            index=pd.Index(df["agency_id"], name="agency_id"))
        if "districts" in out:
            area = pd.DataFrame({"agency_id": df["agency_id"], "row": df.index,
                                 "district_id": df["districts"].str.split(";")})
            area = area[df["districts"] != "*"].explode("district_id")
            area["district_id"] = area["district_id"].fillna("").str.strip()
            area = area[area["district_id"] != ""]
            bad = ~area["district_id"].isin(out["districts"].index)
            for row, ident in zip(area.loc[bad, "row"], area.loc[bad, "district_id"],
                                  strict=True):
                c.problems.append(Problem(f, int(row) + ROW_OFFSET, "districts", ident,
                                          "unknown district in service area",
                                          "use district ids from districts.csv joined by ';', "
                                          "or '*' for all"))
            every = pd.MultiIndex.from_product(
                [df.loc[df["districts"] == "*", "agency_id"], out["districts"].index],
                names=["agency_id", "district_id"]).to_frame(index=False)
            listed = area.loc[~bad, ["agency_id", "district_id"]]
            out["agency_districts"] = (
                pd.concat([every, listed], ignore_index=True).drop_duplicates()
                .reset_index(drop=True))
    sectors = pd.Index(out["enterprises"]["sector"].unique()) if "enterprises" in out else None
    if "demands.csv" in t:
        f, df = "demands.csv", t["demands.csv"]
        if "enterprises" in out:
            c.reference(f, df, "enterprise_id", out["enterprises"].index, "enterprises.csv",
                        "enterprise")
        if "services" in out:
            c.reference(f, df, "service_id", out["services"].index, "services.csv", "service")
        pdays = c.number(f, df, "person_days", lo=0, lo_open=True)
        weight = c.number(f, df, "weight", lo=0, optional=True,
                          fix="write a number >= 0, or leave it empty for the policy default")
        dup = df.duplicated(["enterprise_id", "service_id"], keep="first")
        c.add(f, df, dup, "service_id", "duplicate demand (same enterprise and service)",
              "list each enterprise's service once; add the person-days together")
        out["demands"] = pd.DataFrame(
            {"enterprise_id": df["enterprise_id"], "service_id": df["service_id"],
             "person_days": pdays, "weight_given": weight})
    if "bids.csv" in t:
        f, df = "bids.csv", t["bids.csv"]
        if "agencies" in out:
            c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv", "agency")
        if "services" in out:
            c.reference(f, df, "service_id", out["services"].index, "services.csv", "service")
        if sectors is not None:
            c.add(f, df, ~df["sector"].isin(sectors), "sector", "unknown sector (no enterprise "
                  "has it)", "use a sector written in enterprises.csv")
        rate = c.number(f, df, "day_rate", lo=0, lo_open=True)
        dup = df.duplicated(["agency_id", "service_id", "sector"], keep="first")
        c.add(f, df, dup, "sector", "duplicate bid (same agency, service and sector)",
              "keep one day_rate per agency, service and sector")
        out["bids"] = pd.DataFrame({"agency_id": df["agency_id"], "service_id": df["service_id"],
                                    "sector": df["sector"], "day_rate": rate})
    if "quotes.csv" in t:
        f, df = "quotes.csv", t["quotes.csv"]
        if "agencies" in out:
            c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv", "agency")
        ok_e = c.reference(f, df, "enterprise_id", out["enterprises"].index, "enterprises.csv",
                           "enterprise") if "enterprises" in out else None
        ok_s = c.reference(f, df, "service_id", out["services"].index, "services.csv",
                           "service") if "services" in out else None
        price = c.number(f, df, "price", lo=0, lo_open=True)
        pdays = c.number(f, df, "person_days", lo=0, lo_open=True)
        dup = df.duplicated(["agency_id", "enterprise_id", "service_id"], keep="first")
        c.add(f, df, dup, "service_id", "duplicate quote (same agency, enterprise and service)",
              "keep one quote per agency, enterprise and service")
        if "demands" in out and ok_e is not None and ok_s is not None:
            key = pd.MultiIndex.from_frame(out["demands"][["enterprise_id", "service_id"]])
            has = pd.MultiIndex.from_frame(df[["enterprise_id", "service_id"]]).isin(key)
            c.add(f, df, ~has & ok_e & ok_s, "service_id",
                  "quote for a demand that demands.csv does not list",
                  "add the demand to demands.csv or remove the quote")
        out["quotes"] = pd.DataFrame(
            {"agency_id": df["agency_id"], "enterprise_id": df["enterprise_id"],
             "service_id": df["service_id"], "price": price, "person_days": pdays})
    if "conflicts.csv" in t:
        f, df = "conflicts.csv", t["conflicts.csv"]
        if "agencies" in out:
            c.reference(f, df, "agency_id", out["agencies"].index, "agencies.csv", "agency")
        if "enterprises" in out:
            c.reference(f, df, "enterprise_id", out["enterprises"].index, "enterprises.csv",
                        "enterprise")
        out["conflicts"] = df[["agency_id", "enterprise_id"]].drop_duplicates().reset_index(
            drop=True)
    return out, c.problems


def suspicious(frames: dict[str, pd.DataFrame]) -> list[Problem]:
    """Legal but suspicious data: reported as warnings, never refused."""
    warnings: list[Problem] = []
    ent, dem = frames["enterprises"], frames["demands"]
    idle = ent.index[~ent.index.isin(dem["enterprise_id"])]
    _warn(warnings, "enterprises.csv", "enterprise_id", list(idle[:50]),
          "enterprise has no demand", "add its needed services to demands.csv if any")
    ag = frames["agencies"]
    offered = pd.Index(frames["bids"]["agency_id"]).union(pd.Index(frames["quotes"]["agency_id"]))
    silent = ag.index[~ag.index.isin(offered)]
    _warn(warnings, "agencies.csv", "agency_id", list(silent[:50]),
          "agency has no bid or quote, so it can serve nothing", "add its bids to bids.csv")
    return warnings


def load_instance(path: str | Path, overrides: dict[str, Any] | None = None,
                  budget: float | None = None) -> Instance:
    """Read and check an instance folder; raise InputError listing every problem found.

    `overrides` is a nested dict merged over policy.yaml (what-if scenarios); `budget`
    replaces budget.total.
    """
    raw = read_raw(Path(path))
    problems = list(raw.problems)
    frames, found = check_tables(raw)
    problems += found
    policy_raw = raw.policy
    if (Path(path) / "policy.yaml").is_file() and not any(
        p.file == "policy.yaml" for p in raw.problems
    ):
        extra = dict(overrides or {})
        if budget is not None:
            extra = {**extra, "budget": {**extra.get("budget", {}), "total": budget}}
        policy, policy_problems = parse_policy(policy_raw, overrides=extra or None)
        problems += policy_problems
    else:
        policy = None
    errors = [p for p in problems if p.severity == "error"]
    if errors or policy is None:
        raise InputError(errors or problems)
    ent = frames["enterprises"]
    dem = frames["demands"].join(ent[["district_id", "sector", "risk_level"]], on="enterprise_id")
    dem["weight"] = dem["weight_given"].fillna(dem["risk_level"].map(policy.weights)).astype(float)
    dem["person_days"] = dem["person_days"].astype(float)
    frames["demands"] = dem.reset_index(drop=True)
    frames["demands"].index.name = "demand"
    warnings = [p for p in problems if p.severity == "warning"] + suspicious(frames)
    return Instance(path=Path(path), policy=policy, sha256=raw.sha256, warnings=warnings,
                    **{k: frames[k] for k in ("districts", "services", "enterprises", "demands",
                                              "agencies", "agency_districts", "bids", "quotes",
                                              "conflicts")})

