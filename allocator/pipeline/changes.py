"""changes.csv: this year's plan against last year's (incumbents.csv), demand by demand.

Every demand with an incumbent gets one row, every served demand without one a row `new`:

- kept: served by its incumbent again;
- rotated: the incumbent was otherwise eligible, but continuity.max_tenure_years keeps it out;
- incumbent_ineligible: another rule keeps the incumbent out (status, quality, service area,
  conflict, price band, a pin, no offer this year, or it left the pool): the rule and why;
- moved: the incumbent could serve, another agency does;
- dropped: the incumbent could serve, the demand is left unserved (with the unserved reason);
- new: no incumbent last year, served this year.

kept + moved + dropped are the demands whose incumbent is still eligible, the ones
continuity.max_changes counts (moved + dropped are its changes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allocator.data.history import allowed_changes, has_incumbents
from allocator.data.instance import Instance
from allocator.eligibility.continuity import TENURE, demand_rows
from allocator.eligibility.incumbents import incumbent_status

CHANGE_COLUMNS = ["enterprise_id", "service_id", "district_id", "incumbent_agency_id", "years",
                  "agency_id", "change", "reason"]
CHANGES = ("kept", "moved", "dropped", "new", "rotated", "incumbent_ineligible")


def _served(instance: Instance, a: pd.DataFrame) -> pd.DataFrame:
    """Per demand (row of demands): agency serving it ('' if none), its quality and cost."""
    n = len(instance.demands)
    out = pd.DataFrame({"agency": np.full(n, "", dtype=object), "quality": np.nan,
                        "cost": np.nan})
    if len(a):
        rows = demand_rows(instance, a)
        ok = rows >= 0
        out.loc[rows[ok], "agency"] = a["agency_id"].astype(str).to_numpy()[ok]
        for col in ("quality", "cost"):
            if col in a.columns:
                out.loc[rows[ok], col] = pd.to_numeric(a[col], errors="coerce").to_numpy()[ok]
    return out


def _texts(values: np.ndarray, fmt: str) -> np.ndarray:
    """Numbers as text in the given format ('' where missing)."""
    v = pd.Series(values, dtype=float)
    return np.array([format(x, fmt) if x == x else "" for x in v], dtype=object)


def _moved_reasons(new: np.ndarray, q_new: np.ndarray, c_new: np.ndarray, q_old: np.ndarray,
                   c_old: np.ndarray) -> np.ndarray:
    """Why another agency serves a demand its incumbent could still serve (per row)."""
    with np.errstate(invalid="ignore"):
        better = q_new > q_old + 1e-9
        cheaper = ~better & (c_new < c_old - 0.005)
    new = new.astype(object)
    return np.select(
        [better, cheaper],
        [new + " has quality " + _texts(q_new, "g") + " against the incumbent's "
         + _texts(q_old, "g"),
         new + " costs " + _texts(c_new, ",.2f") + " where the incumbent would cost "
         + _texts(c_old, ",.2f")],
        "the incumbent could serve at no lower quality or cost; the rules (budget, capacity, "
        "shares, agencies per district) or more served weight elsewhere need the move")


def changes_table(instance: Instance, a: pd.DataFrame,
                  unserved: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """changes.csv rows for the plan `a` (assignments); None when there are no incumbents.
    `unserved` (unserved.csv rows) gives dropped demands their reason."""
    if not has_incumbents(instance):
        return None
    dem = instance.demands
    now = _served(instance, a)
    st = incumbent_status(instance)
    d = st["demand"].to_numpy(dtype=np.int64)
    agency = now["agency"].to_numpy()[d]
    inc = st["agency_id"].astype(str).to_numpy()
    kept = agency == inc
    eligible = st["eligible"].to_numpy(dtype=bool)
    change = np.where(kept, "kept", np.where(
        ~eligible, np.where(st["reason"] == TENURE, "rotated", "incumbent_ineligible"),
        np.where(agency != "", "moved", "dropped"))).astype(object)
    why_left = pd.Series("", index=dem.index, dtype=object)
    if unserved is not None and len(unserved):
        rows = demand_rows(instance, unserved)
        text = unserved["detail"] if "detail" in unserved.columns else unserved["reason"]
        why_left.iloc[rows[rows >= 0]] = ("left unserved (" + unserved["reason"].astype(str)
                                          + "): " + text.astype(str)).to_numpy()[rows >= 0]
    left = np.where(agency != "", "; now served by " + agency,
                    "; " + why_left.to_numpy()[d]).astype(object)
    left = np.where(left == "; ", "; left unserved", left)
    years = st["years"].astype(int).to_numpy()
    detail = st["detail"].astype(str).to_numpy().astype(object)
    code = st["reason"].astype(str).to_numpy().astype(object)
    left_text = why_left.to_numpy()[d]
    reason = np.select(
        [change == "kept", change == "rotated", change == "incumbent_ineligible",
         change == "moved"],
        ["kept with its incumbent of " + years.astype(str).astype(object) + " year(s)",
         detail + left, code + ": " + detail + left,
         _moved_reasons(agency, now["quality"].to_numpy()[d], now["cost"].to_numpy()[d],
                        st["quality"].to_numpy(dtype=float), st["cost"].to_numpy(dtype=float))],
        np.where(left_text == "", "left unserved", left_text)).astype(object)
    rows_inc = pd.DataFrame({
        "enterprise_id": st["enterprise_id"].astype(str).to_numpy(),
        "service_id": st["service_id"].astype(str).to_numpy(),
        "district_id": dem["district_id"].astype(str).to_numpy()[d],
        "incumbent_agency_id": inc, "years": years, "agency_id": agency,
        "change": change, "reason": reason, "_demand": d})
    has_inc = np.zeros(len(dem), dtype=bool)
    has_inc[d] = True
    new = np.flatnonzero((now["agency"].to_numpy() != "") & ~has_inc)
    rows_new = pd.DataFrame({
        "enterprise_id": dem["enterprise_id"].astype(str).to_numpy()[new],
        "service_id": dem["service_id"].astype(str).to_numpy()[new],
        "district_id": dem["district_id"].astype(str).to_numpy()[new],
        "incumbent_agency_id": "", "years": 0, "agency_id": now["agency"].to_numpy()[new],
        "change": "new", "reason": "no incumbent last year", "_demand": new})
    out = pd.concat([rows_inc, rows_new], ignore_index=True).sort_values(
        "_demand", kind="stable")
    out["years"] = out["years"].astype("Int64").where(out["years"] > 0)
    return out.drop(columns="_demand").reset_index(drop=True)[CHANGE_COLUMNS]


def change_counts(instance: Instance, changes: pd.DataFrame | None) -> dict[str, Any]:
    """summary.json's `changes`: rows per change, the demands max_changes counts and how many
    of them changed, and how many it allows."""
    if changes is None:
        return {}
    counts = changes["change"].value_counts()
    out: dict[str, Any] = {c: int(counts.get(c, 0)) for c in CHANGES}
    eligible = out["kept"] + out["moved"] + out["dropped"]
    out["incumbent_demands"] = int((changes["incumbent_agency_id"] != "").sum())
    out["eligible_incumbents"] = eligible
    out["changed"] = out["moved"] + out["dropped"]
    ratio = instance.policy.max_changes
    out["max_changes_allowed"] = None if ratio is None else allowed_changes(ratio, eligible)
    return out


def continuity_figures(instance: Instance, a: pd.DataFrame) -> dict[str, Any]:
    """The plan's stability (served weight kept with its incumbent) and change counts; empty
    when the instance has no incumbents."""
    changes = changes_table(instance, a)
    if changes is None:
        return {}
    kept = changes["change"] == "kept"
    keys = pd.MultiIndex.from_frame(changes.loc[kept, ["enterprise_id", "service_id"]])
    mine = pd.MultiIndex.from_frame(a[["enterprise_id", "service_id"]].astype(str)).isin(keys) \
        if len(a) else np.zeros(0, dtype=bool)
    stability = float(pd.to_numeric(a["weight"], errors="coerce")[mine].sum()) if len(a) else 0.0
    return {"stability": stability, "changes": change_counts(instance, changes)}
