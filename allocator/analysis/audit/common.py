"""The audit's records, tolerances and small helpers (numbers as a person writes them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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
    "funding.csv": ["source_id", "name", "department", "amount", "used", "left", "share_used"],
    "funding_by_agency.csv": ["agency_id", "source_id", "amount"],
    "excluded.csv": ["agency_id", "enterprise_id", "service_id", "reason"],
    "changes.csv": ["enterprise_id", "service_id", "incumbent_agency_id", "agency_id", "change",
                    "reason"],
}


#: the order findings are printed in (stable within a file: by row, then rule)
FILE_ORDER = ("assignments.csv", "unserved.csv", "assignments.csv + unserved.csv",
              "agencies.csv", "districts.csv", "funding.csv", "funding_by_agency.csv",
              "excluded.csv", "summary.json", "diagnosis.csv", "changes.csv")


# tolerances
PRICE_RTOL = 1e-9  # price band, relative


MONEY_ATOL = 0.006  # a cost written with 2 decimals


TOTAL_ATOL, TOTAL_RTOL = 0.01, 1e-9  # budget and caps


SHARE_RTOL = 1e-6  # anti-monopoly shares, relative to the spend they are a share of


NUM_ATOL, NUM_RTOL = 1e-6, 1e-9  # loads, weights and other plain numbers


RATIO_ATOL = 5e-5 + 1e-9  # shares and ratios, written with 4 decimals


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


@dataclass
class Audit:
    """Everything the check found: violations, warnings (not violations) and row counts."""

    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = ""
    assignments: int = 0
    unserved: int = 0


def show_num(x: Any) -> str:
    """A number as a person would write it (no float noise)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nothing"
    if isinstance(x, int | np.integer):
        return str(int(x))
    return f"{float(x):.10g}"


def show_money(x: Any) -> str:
    """Money with 2 decimals."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nothing"
    return f"{float(x):.2f}"


def show_cell(text: Any) -> str:
    return "an empty cell" if text == "" else repr(text) if not is_number(text) else str(text)


def is_number(text: Any) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def as_numbers(col: pd.Series) -> pd.Series:
    """A text column as floats (NaN where not a number)."""
    return pd.to_numeric(col, errors="coerce").astype(float)


def differs(found: pd.Series, expected: pd.Series, atol: float, rtol: float = 0.0,
             blank_ok: bool = False) -> pd.Series:
    """Rows where the file's number is not the expected one (or is not a number).

    blank_ok: an empty cell matches an expected NaN (e.g. no budget cap).
    """
    exp = expected.astype(float)
    got = as_numbers(found)
    bad = (got - exp).abs() > atol + rtol * exp.abs()
    bad |= got.isna() & exp.notna()
    bad |= got.notna() & exp.isna()
    if blank_ok:
        bad &= ~(exp.isna() & (found == ""))
    else:
        bad |= exp.isna() & got.isna()
    return bad.fillna(True)


def add_violations(out: list[Violation], rule: str, file: str, frame: pd.DataFrame,
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


def join_keys(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    out = frame[cols[0]].astype(str)
    for c in cols[1:]:
        out = out + " / " + frame[c].astype(str)
    return out


def column_of(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda r: r[name]


def format_values(values: pd.Series, fn: Callable[[Any], str] = show_num) -> pd.Series:
    return values.map(fn).astype(object)
