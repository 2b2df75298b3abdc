"""Where the money comes from: funding.csv (the sources and their scopes) and co-payment.

funding.csv (optional) lists the year's funding sources: source_id, name, department, amount,
and the scope each may pay for: districts, sectors, services, risk_levels, each `*` for all or
values joined by `;`. A served demand's government cost must be paid by sources whose scope
covers its district, sector, service and risk level, no source paying more than its amount.
With co-payment (policy copay.share_by_risk) the enterprise pays that share of its demand's
cost and the government the rest (to the cent); budget, district caps and funding apply to
the government's part.

This module checks the file (every bad cell named, with a fix), and gives the data every layer
above uses: which sources may pay for which demand (`source_cover`), the scope groups (demands
with the same set of possible payers, `scope_groups`), the government cost of an offer
(`government_cost`) and what-if variants of the amounts (`with_amounts`, `scaled`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from allocator.core.errors import Problem
from allocator.data.instance import Instance
from allocator.data.reading import ROW_OFFSET

if TYPE_CHECKING:  # the checker lives in validation, which imports this module
    from allocator.data.validation import Checker

FILE = "funding.csv"
#: the scope columns, the id table each names and what a value of it is called
SCOPE = {"districts": "district", "sectors": "sector", "services": "service",
         "risk_levels": "risk level"}
#: the Instance.demands column each scope column is matched against
DEMAND_COLUMN = {"districts": "district_id", "sectors": "sector", "services": "service_id",
                 "risk_levels": "risk_level"}
ALL = "*"


# ------------------------------------------------------------------------------------------
# checking funding.csv
# ------------------------------------------------------------------------------------------

def check_funding(c: Checker, df: pd.DataFrame, out: dict[str, pd.DataFrame]) -> None:
    """Check funding.csv (ids, amounts, every scope value) and put the typed frame in out.

    Nothing is put when the file is absent (no funding rule); a file with a header only is
    an error (it would leave no demand payable)."""
    if df.attrs.get("absent"):
        return
    f = FILE
    if not c.not_empty(f, df, "funding source"):
        return
    c.ids(f, df, "source_id", "funding source")
    amount = c.number(f, df, "amount", lo=0, lo_open=True,
                      fix="write the source's amount for the year as a plain number > 0")
    known = {
        "districts": out["districts"].index if "districts" in out else None,
        "sectors": (pd.Index(out["enterprises"]["sector"].unique())
                    if "enterprises" in out else None),
        "services": out["services"].index if "services" in out else None,
        "risk_levels": pd.Index(["1", "2", "3", "4"]),
    }
    for col, what in SCOPE.items():
        _check_scope(c, df, col, what, known[col])
    out["funding"] = pd.DataFrame(
        {"name": df["name"].to_numpy(), "department": df["department"].to_numpy(),
         "amount": amount.to_numpy(),
         **{col: df[col].map(_normalise).to_numpy() for col in SCOPE}},
        index=pd.Index(df["source_id"].to_numpy(), name="source_id"))


def _normalise(text: str) -> str:
    """A scope cell as ';'-joined values without blanks ('*' stays '*')."""
    text = str(text).strip()
    if text == ALL:
        return ALL
    return ";".join(v.strip() for v in text.split(";") if v.strip())


def _check_scope(c: Checker, df: pd.DataFrame, col: str, what: str,
                 known: pd.Index | None) -> None:
    """Every value of a scope column is '*' or known ids joined by ';'; one problem per bad
    value, with a did-you-mean."""
    from allocator.data.validation import RISK_WORDS, suggest

    f = FILE
    text = df[col]
    c.add(f, df, text == "", col, f"scope ({col}) is empty",
          f"write '*' for every {what} or {what} values joined by ';'")
    if known is None:
        return
    vals = pd.DataFrame({"row": df.index, "value": text.str.split(";")})
    vals = vals[(text != ALL).to_numpy()].explode("value")
    vals["value"] = vals["value"].fillna("").str.strip()
    vals = vals[vals["value"] != ""]
    bad = ~vals["value"].isin(known)
    if not bad.any():
        return
    wrong = vals.loc[bad, "value"]
    hint = suggest(wrong, known)
    sep = wrong.str.contains(r"[,|/ \t]", regex=True)
    hint[sep] = " (join values with ';', e.g. a;b)"
    star = wrong.str.contains(r"\*", regex=True) | wrong.str.lower().isin(["all", "any"])
    hint[star] = " ('*' means all and must stand alone)"
    source = {"districts": "districts.csv", "sectors": "enterprises.csv (column sector)",
              "services": "services.csv"}
    if col == "risk_levels":
        worded = wrong.str.lower().map(RISK_WORDS)
        said = worded.notna()
        hint[said] = (" (write the level as a number: " + worded[said].astype(int).astype(str)
                      + " for " + wrong[said] + ")")
    for row, ident, h in zip(vals.loc[bad, "row"], wrong, hint, strict=True):
        fix = ("use risk levels 1, 2, 3 or 4 joined by ';', or '*' for all" if col ==
               "risk_levels" else f"use {what} values from {source[col]} joined by ';', or "
               "'*' for all")
        c.problems.append(Problem(f, int(row) + ROW_OFFSET, col, ident,
                                  f"unknown {what} in the scope", fix + h))


def funding_warnings(funding: pd.DataFrame | None, demands: pd.DataFrame,
                     mandatory_levels: tuple[int, ...]) -> list[Problem]:
    """Legal but suspicious funding: a source that may pay for no demand, demands no source
    may pay for (they cannot be served)."""
    if funding is None or funding.empty:
        return []
    out: list[Problem] = []
    cover = source_cover(funding, demands)
    idle = funding.index[~cover.any(axis=0)]
    for s in idle[:50]:
        out.append(Problem(FILE, None, "source_id", s, "the source's scope covers no demand, "
                           "so it can pay for nothing", "check its districts, sectors, services "
                           "and risk_levels", "warning"))
    none = ~cover.any(axis=1)
    if none.any():
        mand = int((none & demands["risk_level"].isin(mandatory_levels).to_numpy()).sum())
        out.append(Problem(FILE, None, "", None,
                           f"{int(none.sum())} demand(s) ({mand} at a mandatory risk level) are "
                           "in no funding source's scope, so they cannot be served",
                           "widen a source's scope (e.g. a city fund with '*' everywhere)",
                           "warning"))
    return out


# ------------------------------------------------------------------------------------------
# scopes, groups and government cost
# ------------------------------------------------------------------------------------------

def scope_values(text: str, col: str) -> set | None:
    """The values of one scope cell (None for '*'); risk levels as ints."""
    if text == ALL:
        return None
    vals = [v.strip() for v in str(text).split(";") if v.strip()]
    return {int(v) for v in vals} if col == "risk_levels" else set(vals)


def source_cover(funding: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """(rows of frame) x (sources) booleans: the source may pay for the row. frame needs
    district_id, sector, service_id and risk_level (demands, triples or plan rows)."""
    out = np.ones((len(frame), len(funding)), dtype=bool)
    for k, (_, src) in enumerate(funding.iterrows()):  # one pass per source (few)
        for col, dcol in DEMAND_COLUMN.items():
            vals = scope_values(src[col], col)
            if vals is not None:
                values = frame[dcol]
                values = values.astype(int) if col == "risk_levels" else values.astype(str)
                out[:, k] &= values.isin(vals).to_numpy()
    return out


@dataclasses.dataclass(frozen=True)
class ScopeGroups:
    """Rows grouped by the set of sources that may pay for them.

    code: group number per row; members: (groups x sources) booleans, in order of first
    appearance; label: the group's name, its sources joined by ';' ('none' for no source)."""

    code: np.ndarray
    members: np.ndarray
    label: list[str]


def scope_groups(cover: np.ndarray, source_ids: pd.Index) -> ScopeGroups:
    """Group rows with the same payers (the distinct combinations of sources)."""
    if cover.shape[0] == 0:
        return ScopeGroups(np.zeros(0, dtype=np.int64), np.zeros((0, cover.shape[1]), bool), [])
    uniq, first, code = np.unique(cover, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    members = uniq[order]
    ids = np.asarray(source_ids, dtype=object)
    label = [";".join(ids[m]) or "none" for m in members]
    return ScopeGroups(rank[np.asarray(code).ravel()], members, label)


def copay_share(policy, risk: np.ndarray | pd.Series) -> np.ndarray:
    """The enterprise's share of the cost per row (0 where no co-payment)."""
    shares = policy.copay_share_by_risk
    r = np.asarray(risk, dtype=np.int64)
    out = np.zeros(len(r))
    for level, share in shares.items():
        out[r == level] = share
    return out


def government_cost(policy, cost: np.ndarray | pd.Series,
                    risk: np.ndarray | pd.Series) -> np.ndarray:
    """The government's part of each cost: cost x (1 - co-payment share), to the cent where
    the enterprise pays a share (the full cost where it pays none)."""
    c = np.asarray(cost, dtype=float)
    share = copay_share(policy, risk)
    return np.where(share > 0, np.round(c * (1.0 - share), 2), c)


def has_funding(instance: Instance) -> bool:
    return instance.funding is not None and len(instance.funding) > 0


def scope_breadth(instance: Instance) -> pd.Series:
    """Per source, the reference cost of all demands it may pay for ("how wide its scope
    is"): the canonical split uses the narrowest sources first."""
    f = instance.funding
    assert f is not None
    dem = instance.demands
    ref = (dem["person_days"] * dem["service_id"].map(instance.services["reference_rate"])
           ).to_numpy(dtype=float)
    cover = source_cover(f, dem)
    return pd.Series(ref @ cover, index=f.index)


# ------------------------------------------------------------------------------------------
# what-if variants
# ------------------------------------------------------------------------------------------

def with_amounts(instance: Instance, amounts: dict[str, float]) -> Instance:
    """The instance with some sources' amounts replaced (ids must be known)."""
    f = instance.funding
    assert f is not None
    unknown = sorted(set(amounts) - set(f.index))
    if unknown:
        raise KeyError(f"unknown funding source(s): {', '.join(unknown)}")
    f = f.copy()
    for s, v in amounts.items():
        f.loc[s, "amount"] = float(v)
    return dataclasses.replace(instance, funding=f)


def scaled(instance: Instance, total: float) -> Instance:
    """Every source's amount scaled in proportion so they sum to total, and budget.total
    (when given) by the same factor: every money figure of the year moves together."""
    f = instance.funding
    assert f is not None
    factor = float(total) / float(f["amount"].sum())
    f = f.assign(amount=f["amount"] * factor)
    pol = instance.policy
    if pol.budget_total is not None:
        pol = dataclasses.replace(pol, budget_total=pol.budget_total * factor)
    return dataclasses.replace(instance, funding=f, policy=pol)
