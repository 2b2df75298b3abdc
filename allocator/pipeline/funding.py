"""Which fund pays which contract: the one canonical split of a plan's government costs.

Many splits of a plan among the sources may be valid; the written one is fixed by a rule a
planner can state: **narrowest scope first**. Sources are ranked by how wide their scope is
(the reference cost of all demands they may pay for, the smallest first; ties by the number of
scope columns written '*', then in funding.csv's order), and each source in turn pays as much
as it can while the rest of the plan can still be paid by the others: an earmarked fund (the
transport bureau's, the insurers' prevention fund) pays for what it was earmarked for before
the city's general fund is drawn on. What each source pays is unique under this rule (the
greedy order on the flow polymatroid: source i pays maxflow(first i sources) -
maxflow(first i-1)); within a scope group the sources then pay the group's rows in assignment
order, the narrowest first, so a row is paid by one source where it can be and at most one
row per group and source is shared.

Everything is counted in whole cents (integer max-flows, exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.data.funding import has_funding, scope_breadth, scope_groups, source_cover
from allocator.data.instance import Instance
from allocator.model.flow import max_flow

FUNDING_COLUMNS = ["source_id", "name", "department", "amount", "used", "left", "share_used"]
BY_AGENCY_COLUMNS = ["agency_id", "source_id", "amount"]


@dataclass
class Split:
    """A plan's split among the sources: per row the sources paying it, as written in
    assignments.csv's funded_by ("S01:1200.00;S03:340.50"), and the pieces."""

    funded_by: pd.Series  # per assignments row
    pieces: pd.DataFrame  # row (position), source_id, amount
    unpaid: float = 0.0  # government cost no valid split covers (0 for a feasible plan)


def source_order(instance: Instance) -> np.ndarray:
    """Source positions, narrowest scope first: by the reference cost of the demands it may
    pay for, then by how many of its scope columns are '*', then in file order."""
    f = instance.funding
    assert f is not None
    breadth = scope_breadth(instance).to_numpy()
    stars = sum((f[c] == "*").to_numpy().astype(int)
                for c in ("districts", "sectors", "services", "risk_levels"))
    return np.lexsort((np.arange(len(breadth)), stars, breadth))


def to_cents(values: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float) * 100.0).astype(np.int64)


def greedy_use(supply: np.ndarray, members: np.ndarray, caps: np.ndarray,
               order: np.ndarray) -> np.ndarray:
    """What each source pays when sources in `order` each pay as much as they can while the
    rest stays payable: u[order[i]] = maxflow(order[:i+1]) - maxflow(order[:i])."""
    use = np.zeros(len(caps), dtype=np.int64)
    done = 0
    open_caps = np.zeros(len(caps), dtype=np.int64)
    for j in order:
        open_caps[j] = caps[j]
        value, _ = max_flow(supply, members, open_caps)
        use[j] = int(value) - done
        done = int(value)
    return use


def plan_split(instance: Instance, a: pd.DataFrame) -> Split | None:
    """The canonical split of a plan's government costs (None without funding.csv).

    a: assignments rows with agency_id, district_id, sector, service_id, risk_level and
    government_cost."""
    if not has_funding(instance):
        return None
    f = instance.funding
    assert f is not None
    n_src = len(f)
    cents = to_cents(a["government_cost"].to_numpy(dtype=float)) if len(a) else np.zeros(
        0, dtype=np.int64)
    cover = source_cover(f, a) if len(a) else np.zeros((0, n_src), dtype=bool)
    groups = scope_groups(cover, f.index)
    n_g = len(groups.label)
    supply = np.bincount(groups.code, cents, minlength=n_g).astype(np.int64)
    members = groups.members
    caps = to_cents(f["amount"].to_numpy(dtype=float))
    order = source_order(instance)
    total = int(supply[members.any(axis=1)].sum()) if n_g else 0
    use = greedy_use(supply, members, caps, order) if n_g else np.zeros(n_src, np.int64)
    if int(use.sum()) < total:
        # the plan's costs are exact to float noise, the amounts to the cent: a plan filling
        # a source to the cent may need half a cent per row more than the rounded figures
        rows_in = cover.sum(axis=0)
        loose = caps + 1 + np.ceil(0.5 * rows_in).astype(np.int64)
        use = greedy_use(supply, members, loose, order)
    flows = max_flow(supply, members, use)[1] if n_g else np.zeros((0, n_src), np.int64)
    pieces = fill_rows(groups.code, cents, flows, order)
    paid = np.bincount(pieces["row"], pieces["cents"], minlength=len(a)).astype(np.int64)
    unpaid = float((cents - paid[:len(cents)]).clip(min=0).sum()) / 100.0
    ids = f.index.to_numpy()
    rank = np.empty(n_src, dtype=np.int64)
    rank[order] = np.arange(n_src)
    pieces = pieces.assign(source_id=ids[pieces["source"]], rank=rank[pieces["source"]],
                           amount=pieces["cents"] / 100.0)
    pieces = pieces.sort_values(["row", "rank"], kind="stable")
    text = pieces["source_id"].astype(str) + ":" + pieces["cents"].map(_cents_text)
    funded = text.groupby(pieces["row"].to_numpy()).agg(";".join)
    funded_by = pd.Series("", index=a.index, dtype=object)
    if len(funded):
        funded_by.iloc[funded.index.to_numpy()] = funded.to_numpy()
    return Split(funded_by, pieces[["row", "source_id", "amount"]].reset_index(drop=True),
                 unpaid)


def _cents_text(c: int) -> str:
    return f"{int(c) // 100}.{int(c) % 100:02d}"


def fill_rows(code: np.ndarray, cents: np.ndarray, flows: np.ndarray,
              order: np.ndarray) -> pd.DataFrame:
    """Per scope group, its sources (in `order`) pay its rows (in row order) one after the
    other: piece (row, source, cents) where a row's and a source's stretches of the group's
    cost overlap."""
    out: list[pd.DataFrame] = []
    for g in range(flows.shape[0]):
        rows = np.flatnonzero(code == g)
        srcs = order[flows[g, order] > 0]
        if not len(rows) or not len(srcs):
            continue
        r_end = np.cumsum(cents[rows])
        s_end = np.cumsum(flows[g, srcs])
        ends = np.union1d(r_end, s_end)
        ends = ends[ends <= min(r_end[-1], s_end[-1])]
        starts = np.concatenate([[0], ends[:-1]])
        size = ends - starts
        keep = size > 0
        ri = np.searchsorted(r_end, ends[keep], side="left")
        si = np.searchsorted(s_end, ends[keep], side="left")
        out.append(pd.DataFrame({"row": rows[ri], "source": srcs[si], "cents": size[keep]}))
    if not out:
        return pd.DataFrame({"row": np.zeros(0, np.int64), "source": np.zeros(0, np.int64),
                             "cents": np.zeros(0, np.int64)})
    return pd.concat(out, ignore_index=True)


def parse_funded_by(text: pd.Series) -> pd.DataFrame:
    """The pieces written in funded_by cells ("S01:1200.00;S03:340.50"): row (position),
    source_id, amount."""
    cells = pd.Series(np.asarray(text, dtype=object), dtype=object)
    parts = cells.str.split(";").explode()
    parts = parts[parts.fillna("") != ""]
    kv = parts.str.rsplit(":", n=1, expand=True) if len(parts) else pd.DataFrame(
        columns=[0, 1])
    return pd.DataFrame({"row": parts.index.to_numpy(dtype=np.int64),
                         "source_id": kv[0].to_numpy(dtype=object),
                         "amount": pd.to_numeric(kv[1], errors="coerce").to_numpy(float)})


def funding_tables(instance: Instance, a: pd.DataFrame
                   ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """funding.csv and funding_by_agency.csv of a plan, read off its funded_by column (so
    they always agree with what assignments.csv says); (None, None) without funding.csv."""
    if not has_funding(instance):
        return None, None
    f = instance.funding
    assert f is not None
    pieces = parse_funded_by(a["funded_by"]) if "funded_by" in a.columns and len(a) else \
        parse_funded_by(pd.Series([], dtype=object))
    cents = to_cents(pieces["amount"].to_numpy())
    used = pd.Series(cents, index=pieces["source_id"].to_numpy()).groupby(level=0).sum()
    used = used.reindex(f.index, fill_value=0).to_numpy(dtype=np.int64) / 100.0
    amount = f["amount"].to_numpy(dtype=float)
    sources = pd.DataFrame({
        "source_id": f.index.to_numpy(), "name": f["name"].to_numpy(),
        "department": f["department"].to_numpy(), "amount": amount, "used": used,
        "left": amount - used,
        "share_used": np.round(np.divide(used, amount, out=np.zeros(len(amount)),
                                         where=amount > 0), 6)})[FUNDING_COLUMNS]
    agency = (a["agency_id"].astype(str).to_numpy()[pieces["row"].to_numpy()]
              if len(pieces) else np.zeros(0, dtype=object))
    by_agency = (pd.DataFrame({"agency_id": agency, "source_id": pieces["source_id"].to_numpy(),
                               "cents": cents})
                 .groupby(["agency_id", "source_id"], sort=True)["cents"].sum().reset_index())
    by_agency["amount"] = by_agency.pop("cents") / 100.0
    return sources, by_agency[BY_AGENCY_COLUMNS]


def funding_summary(sources: pd.DataFrame | None, unpaid: float = 0.0) -> dict | None:
    """summary.json's funding section: spend per source and per department."""
    if sources is None:
        return None
    dept = sources.assign(department=sources["department"].replace("", "(none)")).groupby(
        "department", sort=False)[["amount", "used"]].sum()
    return {
        "split": "narrowest scope first",
        "sources": [{"source_id": r["source_id"], "name": r["name"],
                     "department": r["department"], "amount": round(float(r["amount"]), 2),
                     "used": round(float(r["used"]), 2), "left": round(float(r["left"]), 2),
                     "share_used": float(r["share_used"])}
                    for r in sources.to_dict("records")],
        "by_department": [{"department": str(d), "amount": round(float(r["amount"]), 2),
                           "used": round(float(r["used"]), 2)} for d, r in dept.iterrows()],
        "used": round(float(sources["used"].sum()), 2),
        "amount": round(float(sources["amount"].sum()), 2),
    }


def _plan_flow(instance: Instance, a: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """A plan's scope groups as (supply in cents, members) and its total in cents."""
    f = instance.funding
    assert f is not None
    cents = to_cents(a["government_cost"].to_numpy(dtype=float))
    groups = scope_groups(source_cover(f, a), f.index)
    supply = np.bincount(groups.code, cents, minlength=len(groups.label)).astype(np.int64)
    return supply, groups.members, int(cents.sum())


def least_source_amount(instance: Instance, a: pd.DataFrame, source: str) -> float:
    """The least amount of one source with which a plan can still be paid, the others held:
    what the others cannot take over (total - maxflow without it). Infinite when the plan
    cannot be paid even with that source unlimited."""
    f = instance.funding
    assert f is not None
    if a.empty:
        return 0.0
    supply, members, total = _plan_flow(instance, a)
    caps = to_cents(f["amount"].to_numpy(dtype=float))
    j = f.index.get_loc(source)
    caps[j] = total + 1
    if max_flow(supply, members, caps)[0] < total:
        return float("inf")
    caps[j] = 0
    return (total - max_flow(supply, members, caps)[0]) / 100.0


def least_scale_total(instance: Instance, a: pd.DataFrame) -> float:
    """The least total of the sources, every source (and budget.total, when given) scaled in
    proportion, with which a plan can still be paid (bisection on the factor, to the cent)."""
    f = instance.funding
    assert f is not None
    if a.empty:
        return 0.0
    supply, members, total = _plan_flow(instance, a)
    amounts = f["amount"].to_numpy(dtype=float)
    whole = float(amounts.sum())
    budget = instance.policy.budget_total
    gov = float(a["government_cost"].sum())

    def fits(factor: float) -> bool:
        if budget is not None and gov > budget * factor * (1 + 1e-12):
            return False
        caps = np.floor(amounts * factor * 100.0 + 1e-6).astype(np.int64)
        return max_flow(supply, members, caps)[0] >= total

    hi = 1.0
    while not fits(hi):
        hi *= 2.0
        if hi > 1e12:
            return float("inf")
    lo = 0.0
    while (hi - lo) * whole > 0.005:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi * whole
