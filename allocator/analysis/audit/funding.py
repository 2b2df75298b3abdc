"""The audit of the money's sources: co-payment, funding scopes and the written split.

Recomputed here from the instance and the result files alone, sharing no code with the model
or the splitter (pipeline/funding): the scopes are parsed again from funding.csv's text, the
government's part of each row from the policy's co-payment shares, and whether a valid split
exists by an own max-flow (networkx, in thousandths of the currency): scope groups (rows with
the same sources allowed to pay) -> sources (capacity = amount + 0.01). Then the split the
results wrote: every piece of funded_by names a source that may pay for its row, each row's
pieces add up to its government cost, no source pays more than its amount, and funding.csv,
funding_by_agency.csv and summary.json agree with the pieces.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from allocator.analysis.audit.common import (
    MONEY_ATOL,
    TOTAL_ATOL,
    Violation,
    add_violations,
    as_numbers,
    column_of,
    differs,
    format_values,
    show_cell,
    show_money,
)

#: a written piece has 2 decimals: each may be off by half a cent from the exact split
PIECE_ATOL = 0.005
#: the max-flow counts money in thousandths of the currency
FLOW_UNIT = 1000


def has_funding(inst) -> bool:
    return inst.funding is not None and len(inst.funding) > 0


def government_part(inst, t: pd.DataFrame) -> pd.Series:
    """The government's part of each row's true cost: cost x (1 - the co-payment share of its
    risk level), to the cent where a share applies."""
    shares = inst.policy.copay_share_by_risk
    risk = as_numbers(t["true_risk"]).fillna(0).astype(int)
    share = risk.map(lambda r: float(shares.get(int(r), 0.0))).astype(float)
    cost = t["true_cost"].astype(float)
    exact = cost * (1.0 - share)
    return exact.where(share <= 0, (exact * 100).round() / 100)


def check_payments(out: list[Violation], inst, t: pd.DataFrame, a: pd.DataFrame) -> None:
    """government_cost and enterprise_cost of each row, as the policy's shares give them.
    Results without those columns pass when nothing splits the cost (no co-payment)."""
    f = "assignments.csv"
    subj = column_of("subject")
    t = t.assign(enterprise=t["true_cost"] - t["true_gov"])
    for col, exp in (("government_cost", "true_gov"), ("enterprise_cost", "enterprise")):
        if col not in a.columns:
            if inst.policy.copay_share_by_risk or has_funding(inst):
                out.append(Violation("payments", f, None, col,
                                     f"assignments.csv has no {col} column; with co-payment or "
                                     "funding each row says who pays what"))
            continue
        got = pd.Series(a[col].to_numpy(), index=t.index)
        bad = differs(got, t[exp], MONEY_ATOL)

        def said(r: pd.DataFrame, col: str = col, exp: str = exp) -> pd.Series:
            return (col + " is " + format_values(r["_got"], show_cell) + ", recomputed "
                    + format_values(r[exp], show_money))

        add_violations(out, "payments", f, t.assign(_got=got), bad, subj, said)


def scope_sets(inst) -> list[dict[str, set | None]]:
    """Per source (in file order), its scope per demand column: a set, or None for all."""
    cols = {"districts": "true_district", "sectors": "sector", "services": "service_id",
            "risk_levels": "true_risk"}
    out = []
    for _, src in inst.funding.iterrows():
        scope: dict[str, set | None] = {}
        for col, key in cols.items():
            text = str(src[col]).strip()
            if text == "*":
                scope[key] = None
            else:
                vals = {v.strip() for v in text.split(";") if v.strip()}
                scope[key] = {int(v) for v in vals} if col == "risk_levels" else vals
        out.append(scope)
    return out


def may_pay(inst, t: pd.DataFrame) -> np.ndarray:
    """(rows x sources) booleans: the source's scope covers the row's demand."""
    scopes = scope_sets(inst)
    m = np.ones((len(t), len(scopes)), dtype=bool)
    for j, scope in enumerate(scopes):
        for key, vals in scope.items():
            if vals is None:
                continue
            col = t[key]
            if key == "true_risk":
                col = as_numbers(col).fillna(-1).astype(int)
            else:
                col = col.astype(str)
            m[:, j] &= col.isin(vals).to_numpy()
    return m


def max_split(need: np.ndarray, cover: np.ndarray, caps: np.ndarray
              ) -> tuple[int, list[tuple[list[int], list[int]]]]:
    """Max-flow of the rows' needs (integers) through the sources allowed to pay them;
    returns the flow, and the Hall-deficient parts of the min cut: (rows, sources)."""
    keys = pd.Series([tuple(r) for r in cover], dtype=object)
    group = pd.factorize(keys)[0] if len(keys) else np.zeros(0, dtype=np.int64)
    g_need = np.bincount(group, need, minlength=group.max() + 1 if len(group) else 0)
    net = nx.DiGraph()
    net.add_nodes_from(["s", "t"])
    for k in range(len(g_need)):
        net.add_edge("s", ("g", k), capacity=int(g_need[k]))
        row = cover[np.flatnonzero(group == k)[0]]
        for src in np.flatnonzero(row):
            net.add_edge(("g", k), ("f", int(src)))
    for j, cap in enumerate(caps):
        net.add_edge(("f", j), "t", capacity=int(cap))
    value, (reach, _) = nx.minimum_cut(net, "s", "t")
    parts = []
    hall = net.subgraph([v for v in reach if v != "s"]).to_undirected()
    for comp in nx.connected_components(hall):
        gs = [k for kind, k in comp if kind == "g"]
        rows = [int(r) for r in np.flatnonzero(np.isin(group, gs))]
        parts.append((rows, sorted(int(j) for kind, j in comp if kind == "f")))
    return int(value), parts


def check_funding(out: list[Violation], inst, t: pd.DataFrame, a: pd.DataFrame,
                  funding_file: pd.DataFrame, by_agency: pd.DataFrame,
                  summary: dict[str, Any]) -> None:
    """A valid split exists for the plan (max-flow), and the written one is valid."""
    if not has_funding(inst):
        return
    f = "assignments.csv"
    src = inst.funding
    ids = [str(s) for s in src.index]
    amount = src["amount"].astype(float).to_numpy()
    cover = may_pay(inst, t)
    gov = t["true_gov"].to_numpy(dtype=float)
    # rows no source may pay for
    none = ~cover.any(axis=1) if len(t) else np.zeros(0, dtype=bool)
    add_violations(out, "funding", f, t, none, column_of("subject"),
                   "no funding source's scope covers this demand (district, sector, service, "
                   "risk level), so nobody may pay for it")
    # a valid split exists: max-flow in thousandths, each amount given a cent of tolerance
    need = np.round(gov * FLOW_UNIT).astype(np.int64)
    caps = np.round(amount * FLOW_UNIT).astype(np.int64) + round(TOTAL_ATOL * FLOW_UNIT)
    ok = ~none
    if ok.any():
        value, parts = max_split(need[ok], cover[ok], caps)
        rows_ok = np.flatnonzero(ok)
        if value < int(need[ok].sum()):
            for rows, srcs in parts:
                rr = rows_ok[rows]
                want = float(gov[rr].sum())
                have = float(amount[srcs].sum())
                if want <= have + TOTAL_ATOL:
                    continue
                names = ", ".join(f"{ids[j]} ({src['name'].iloc[j] or ids[j]})" for j in srcs)
                who = (f"source {names} is the only one that may pay" if len(srcs) == 1 else
                       f"sources {names} are the only ones that may pay")
                out.append(Violation(
                    "funding", f, None, ";".join(ids[j] for j in srcs),
                    f"{who} for {len(rr)} assigned row(s) whose government cost is "
                    f"{show_money(want)}; they hold {show_money(have)}, so no split of the "
                    f"plan's costs among the sources exists ({show_money(want - have)} "
                    f"short)"))
    check_written_split(out, inst, t, a, cover, ids, amount)
    check_funding_tables(out, inst, t, a, funding_file, by_agency, summary, ids, amount)


def pieces_of(a: pd.DataFrame) -> pd.DataFrame:
    """funded_by cells as pieces: pos (row position), source_id, text, amount (NaN if the
    text is not 'SOURCE:AMOUNT')."""
    cells = a["funded_by"].fillna("").astype(str).reset_index(drop=True)
    parts = cells.str.split(";").explode()
    parts = parts[parts.str.strip() != ""].str.strip()
    if not len(parts):
        return pd.DataFrame({"pos": pd.Series(dtype=int), "source_id": pd.Series(dtype=str),
                             "text": pd.Series(dtype=str), "amount": pd.Series(dtype=float)})
    kv = parts.str.rsplit(":", n=1, expand=True)
    if kv.shape[1] < 2:
        kv[1] = None
    return pd.DataFrame({"pos": parts.index.to_numpy(dtype=int),
                         "source_id": kv[0].str.strip().to_numpy(dtype=object),
                         "text": parts.to_numpy(dtype=object),
                         "amount": as_numbers(kv[1].fillna("")).to_numpy()})


def check_written_split(out: list[Violation], inst, t: pd.DataFrame, a: pd.DataFrame,
                        cover: np.ndarray, ids: list[str], amount: np.ndarray) -> None:
    """funded_by: known sources that may pay for the row, amounts adding up, no source over."""
    f = "assignments.csv"
    if "funded_by" not in a.columns:
        out.append(Violation("funding_split", f, None, "funded_by",
                             "assignments.csv has no funded_by column; with funding.csv each "
                             "row names the sources paying its government cost"))
        return
    p = pieces_of(a)
    pos_of = {s: j for j, s in enumerate(ids)}
    p["j"] = p["source_id"].map(pos_of)
    p["_row"] = t["_row"].to_numpy()[p["pos"].to_numpy()] if len(p) else []
    p["subject"] = t["subject"].to_numpy()[p["pos"].to_numpy()] if len(p) else []
    bad_text = p["amount"].isna() | (p["amount"] < 0)
    add_violations(out, "funding_split", f, p, bad_text, column_of("subject"),
                   lambda r: "funded_by piece " + r["text"].map(repr)
                   + " is not SOURCE:AMOUNT with an amount >= 0")
    unknown = p["j"].isna() & ~bad_text
    add_violations(out, "funding_split", f, p, unknown, column_of("subject"),
                   lambda r: "funded_by names source " + r["source_id"].map(repr)
                   + ", which funding.csv does not list")
    good = p[~bad_text & ~unknown].copy()
    good["j"] = good["j"].astype(int)
    outside = ~cover[good["pos"].to_numpy(), good["j"].to_numpy()] if len(good) else \
        np.zeros(0, dtype=bool)
    add_violations(out, "funding_split", f, good, outside, column_of("subject"),
                   lambda r: "source " + r["source_id"] + " may not pay for this demand "
                   "(its scope in funding.csv does not cover the district, sector, service "
                   "or risk level)")
    # each row's pieces add up to its government cost
    n = len(t)
    paid = np.bincount(good["pos"], good["amount"], minlength=n) if n else np.zeros(0)
    count = np.bincount(p["pos"], minlength=n) if n else np.zeros(0, dtype=int)
    want = t["true_gov"].to_numpy(dtype=float)
    tol = MONEY_ATOL + PIECE_ATOL * np.maximum(count, 1)
    off = np.abs(paid - want) > tol
    add_violations(out, "funding_split", f, t.assign(_paid=paid, _want=want), off,
                   column_of("subject"),
                   lambda r: "funded_by adds up to " + format_values(r["_paid"], show_money)
                   + ", but the row's government cost is " + format_values(r["_want"],
                                                                           show_money))
    # no source pays more than its amount
    used = np.bincount(good["j"], good["amount"], minlength=len(ids))
    pieces = np.bincount(good["j"], minlength=len(ids))
    over = used > amount + TOTAL_ATOL + PIECE_ATOL * pieces
    for j in np.flatnonzero(over):
        out.append(Violation("funding_split", f, None, ids[j],
                             f"funded_by draws {show_money(used[j])} from source {ids[j]}, "
                             f"above its amount {show_money(amount[j])} by "
                             f"{show_money(used[j] - amount[j])}"))


def check_funding_tables(out: list[Violation], inst, t: pd.DataFrame, a: pd.DataFrame,
                         g: pd.DataFrame, by_agency: pd.DataFrame, summary: dict[str, Any],
                         ids: list[str], amount: np.ndarray) -> None:
    """funding.csv, funding_by_agency.csv and summary.json's funding section against the
    pieces written in funded_by."""
    if "funded_by" not in a.columns:
        return
    p = pieces_of(a)
    p = p[p["amount"].notna() & p["source_id"].isin(ids)]
    used = p.groupby("source_id")["amount"].sum().reindex(ids).fillna(0.0)
    n_pieces = p.groupby("source_id").size().reindex(ids).fillna(0).astype(int)
    file = "funding.csv"
    known = g["source_id"].isin(ids)
    add_violations(out, "funding_totals", file, g, ~known, column_of("source_id"),
                   "source is not in the instance's funding.csv")
    dup = g["source_id"].duplicated(keep="first") & known
    add_violations(out, "funding_totals", file, g, dup, column_of("source_id"),
                   "source listed twice")
    missing = [s for s in ids if s not in set(g["source_id"])]
    for s in missing:
        out.append(Violation("funding_totals", file, None, s,
                             "source of the instance has no row (funding.csv lists every "
                             "source)"))
    g = g[known & ~dup]
    pos = pd.Series(range(len(ids)), index=ids)
    e_amount = amount[pos.loc[g["source_id"]].to_numpy()] if len(g) else np.zeros(0)
    e_used = used.loc[g["source_id"]].to_numpy() if len(g) else np.zeros(0)
    tol = MONEY_ATOL + PIECE_ATOL * n_pieces.loc[g["source_id"]].to_numpy() if len(g) else 0.0
    g = g.assign(e_amount=e_amount, e_used=e_used, e_left=e_amount - e_used,
                 e_share=np.divide(e_used, e_amount, out=np.zeros(len(g)),
                                   where=e_amount > 0))
    share = lambda v: f"{v:.6f}"  # noqa: E731
    checks = [("amount", "e_amount", MONEY_ATOL, "the instance's funding.csv gives", show_money),
              ("used", "e_used", tol, "recomputed from funded_by", show_money),
              ("left", "e_left", tol, "recomputed from funded_by", show_money),
              ("share_used", "e_share", 5e-7 + 1e-9, "recomputed from funded_by", share)]
    for col, exp, atol, how, fmt in checks:
        bad = differs(g[col], g[exp], 0.0) & (
            (as_numbers(g[col]) - g[exp]).abs().fillna(math.inf) > atol)

        def said(r: pd.DataFrame, col: str = col, exp: str = exp, how: str = how,
                 fmt=fmt) -> pd.Series:
            return (col + " is " + format_values(r[col], show_cell) + f", {how} "
                    + format_values(r[exp], fmt))

        add_violations(out, "funding_totals", file, g, bad, column_of("source_id"), said)
    # funding_by_agency.csv: what each contract draws from each fund
    file = "funding_by_agency.csv"
    ag = t["agency_id"].astype(str).to_numpy()
    exp = (pd.DataFrame({"agency_id": ag[p["pos"].to_numpy()] if len(p) else [],
                         "source_id": p["source_id"].to_numpy(),
                         "amount": p["amount"].to_numpy()})
           .groupby(["agency_id", "source_id"])["amount"].agg(["sum", "size"]))
    got = by_agency.assign(_amount=as_numbers(by_agency["amount"]))
    key = pd.MultiIndex.from_frame(got[["agency_id", "source_id"]].astype(str))
    got["_exp"] = exp["sum"].reindex(key).to_numpy()
    got["_n"] = exp["size"].reindex(key).fillna(0).to_numpy()
    got["subject"] = got["agency_id"].astype(str) + " / " + got["source_id"].astype(str)
    bad = got["_exp"].isna() | ((got["_amount"] - got["_exp"]).abs()
                                > MONEY_ATOL + PIECE_ATOL * got["_n"]).fillna(True)
    add_violations(out, "funding_totals", file, got, bad, column_of("subject"),
                   lambda r: "amount is " + format_values(r["amount"], show_cell)
                   + ", recomputed from funded_by " + format_values(r["_exp"].fillna(0.0),
                                                                     show_money))
    listed = set(key)
    for (agency, source), row in exp.iterrows():
        if (agency, source) not in listed and row["sum"] > MONEY_ATOL:
            out.append(Violation("funding_totals", file, None, f"{agency} / {source}",
                                 f"agency {agency} draws {show_money(row['sum'])} from "
                                 f"source {source} (funded_by) but has no row"))
    # summary.json
    section = summary.get("funding")
    if isinstance(section, dict) and isinstance(section.get("sources"), list):
        for item in section["sources"]:
            if not isinstance(item, dict):
                continue
            s = str(item.get("source_id"))
            if s in used.index:
                v = item.get("used")
                got = float(v) if isinstance(v, int | float) and not isinstance(v, bool) \
                    else math.nan
                bad_v = not abs(got - float(used[s])) <= TOTAL_ATOL + PIECE_ATOL * int(
                    n_pieces[s])
                if bad_v:
                    out.append(Violation("summary_totals", "summary.json", None,
                                         f"funding.{s}.used",
                                         f"funding used by {s} is {v!r}, recomputed from "
                                         f"funded_by {show_money(used[s])}"))
