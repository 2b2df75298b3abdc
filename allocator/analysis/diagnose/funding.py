"""Why the money's sources cannot pay for the year: the short source, for what, and by how much.

By counting (no solver): mandatory demands no source may pay for, and the Hall-type
deficiency of the funding flow with every mandatory demand at its cheapest eligible government
cost (those demands must be served, so that much must be paid): a max-flow of those costs,
grouped by the set of sources that may pay them, into the sources' amounts. Each part of the
min cut that cannot be paid is a set of demands only some sources may pay for, needing more
than those sources hold: "Transport safety fund (S03) is 420,000 short of the 1,120,000
needed for the major-risk transport enterprises it alone may pay for."

That figure is exact when the cheapest offers can all be taken; the other rules (capacity,
share caps, agency counts) may force dearer ones, so `refine` asks the least-budget solve for
the least amount of the named sources with every other rule held (budget.total relaxed: it
has its own row) and, when proven, reports that. Deficiencies counting cannot see (demands
the other rules force to be served, e.g. minimum coverage) come from the elastic re-solve,
where each funding[s] row has a slack (elastic.RELAX).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.analysis.diagnose.reasons import (
    Reason,
    _listing,
    _mandatory_mask,
    _mandatory_phrase,
    _num,
)
from allocator.data.funding import government_cost, has_funding, scope_groups, source_cover
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.flow import max_flow
from allocator.pipeline.least_budget import least_budget

RULE = "funding"


def source_label(instance: Instance, sid: str) -> str:
    """'Transport safety fund (S03)', or 'Source S03' when it has no name."""
    f = instance.funding
    assert f is not None
    name = str(f.at[sid, "name"]).strip() if sid in f.index else ""
    return f"{name} ({sid})" if name else f"Source {sid}"


def sources_label(instance: Instance, sids: list[str]) -> str:
    return _listing([source_label(instance, s) for s in sids], 4)


def cheapest_government_cost(instance: Instance, elig: Eligibility) -> pd.Series:
    """Per mandatory demand with an eligible agency: its cheapest government cost."""
    t = elig.triples
    t = t[_mandatory_mask(instance, t).to_numpy()]
    gov = government_cost(instance.policy, t["cost"].to_numpy(dtype=float),
                          t["risk_level"].to_numpy())
    return pd.Series(gov, index=t.index).groupby(t["demand"].to_numpy()).min()


def describe(instance: Instance, demands: pd.Index, sids: list[str]) -> str:
    """The demands in words: 'major-risk transport enterprises in districts D1 and D2'."""
    dem = instance.demands.loc[demands]
    phrase = _mandatory_phrase(instance)
    sectors = sorted(dem["sector"].astype(str).unique())
    text = f"{phrase} {_listing(sectors, 3)} enterprises"
    ds = sorted(dem["district_id"].astype(str).unique())
    all_ds = instance.demands.loc[_mandatory_mask(instance, instance.demands), "district_id"]
    if len(ds) < all_ds.nunique():
        text += f" in district{'s' if len(ds) > 1 else ''} {_listing(ds, 4)}"
    f = instance.funding
    assert f is not None
    if all(str(f.at[s, "services"]) != "*" for s in sids):
        svc = sorted(dem["service_id"].astype(str).unique())
        text += f" (service{'s' if len(svc) > 1 else ''} {_listing(svc, 4)})"
    return text


def unfunded_mandatory(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Mandatory demands no source's scope covers: nobody may pay for them."""
    if not has_funding(instance):
        return []
    f = instance.funding
    assert f is not None
    dem = instance.demands
    mand = dem[_mandatory_mask(instance, dem).to_numpy()]
    if mand.empty:
        return []
    lost = mand[~source_cover(f, mand).any(axis=1)]
    if lost.empty:
        return []
    names = [f"{e}/{s}" for e, s in zip(lost["enterprise_id"], lost["service_id"], strict=True)]
    what = (f"{_mandatory_phrase(instance)} {_listing(sorted(lost['sector'].astype(str).unique()))}"
            f" enterprises")
    n = len(lost)
    return [Reason(
        "mandatory_no_funding_source", _listing(names, 6), n, 0, n,
        f"No funding source may pay for {n} demand{'s' if n > 1 else ''} of {what} "
        f"({_listing(names, 6)}): no source's scope in funding.csv covers their district, "
        f"sector, service and risk level together.",
        frozenset({("mandatory", k) for k in names}))]


def funding_shortage(instance: Instance, elig: Eligibility) -> list[Reason]:
    """The Hall-type deficiency of the funding flow at the mandatory demands' cheapest
    government costs: each set of demands only some sources may pay for, needing more than
    they hold, with the sources, the need and the shortfall."""
    if not has_funding(instance):
        return []
    f = instance.funding
    assert f is not None
    cheapest = cheapest_government_cost(instance, elig)
    if cheapest.empty:
        return []
    dem = instance.demands.loc[cheapest.index]
    cover = source_cover(f, dem)
    payable = cover.any(axis=1)
    cheapest, dem, cover = cheapest[payable], dem[payable], cover[payable]
    if cheapest.empty:
        return []
    groups = scope_groups(cover, f.index)
    cents = np.round(cheapest.to_numpy() * 100).astype(np.int64)
    supply = np.bincount(groups.code, cents, minlength=len(groups.label)).astype(np.int64)
    caps = np.round(f["amount"].to_numpy(dtype=float) * 100).astype(np.int64)
    value, _ = max_flow(supply, groups.members, caps)
    if value >= int(supply.sum()):
        return []
    out = []
    for gs, srcs in deficient_parts(supply, groups.members, caps):
        demands = cheapest.index[np.isin(groups.code, gs)]
        need = float(cheapest.loc[demands].sum())
        sids = [str(f.index[j]) for j in srcs]
        have = float(f["amount"].iloc[srcs].sum())
        if need <= have + 0.005:
            continue
        out.append(shortage_reason(instance, sids, demands, need, have))
    return out


def deficient_parts(supply: np.ndarray, members: np.ndarray, caps: np.ndarray
                    ) -> list[tuple[list[int], list[int]]]:
    """The min cut's source side split into connected parts: (groups, sources) each."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(["s", "t"])
    for k, v in enumerate(supply):
        g.add_edge("s", ("g", k), capacity=int(v))
    for k, j in zip(*np.nonzero(members), strict=True):
        g.add_edge(("g", int(k)), ("f", int(j)))
    for j, c in enumerate(caps):
        g.add_edge(("f", j), "t", capacity=int(c))
    _, (reach, _) = nx.minimum_cut(g, "s", "t")
    hall = g.subgraph([v for v in reach if v != "s"]).to_undirected()
    parts = []
    for comp in nx.connected_components(hall):
        gs = sorted(k for kind, k in comp if kind == "g")
        srcs = sorted(j for kind, j in comp if kind == "f")
        if gs:
            parts.append((gs, srcs))
    return parts


def shortage_reason(instance: Instance, sids: list[str], demands: pd.Index, need: float,
                    have: float, exact: bool = False) -> Reason:
    """The diagnosis row of sources that cannot pay for what only they may pay for."""
    what = describe(instance, demands, sids)
    n = len(demands)
    if len(sids) == 1:
        head = (f"{source_label(instance, sids[0])} is {_num(need - have)} short of the "
                f"{_num(need)} needed for the {what} it alone may pay for")
    else:
        head = (f"{sources_label(instance, sids)} together are {_num(need - have)} short of "
                f"the {_num(need)} needed for the {what} only they may pay for")
    each = "each " if n > 1 else ""
    basis = ("with every other rule held" if exact else
             f"{each}at its cheapest eligible offer")
    return Reason(RULE, ";".join(sids), need, have, need - have,
                  f"{head} ({n} demand{'s' if n > 1 else ''}, {basis}).",
                  frozenset({(RULE, s) for s in sids}))


def refine(instance: Instance, elig: Eligibility, reasons: list[Reason], backend,
           time_limit: float, threads: int) -> list[Reason]:
    """Each counting funding reason re-sized by the least-budget solve: the least total of
    its sources with every other rule held (budget.total relaxed), when proven above the
    counting figure (dearer offers forced by the other rules)."""
    out = []
    todo = [r for r in reasons if r.rule == RULE and r.required is not None]
    each = time_limit / max(1, len(todo))
    for r in reasons:
        if r.rule != RULE or r.required is None:
            out.append(r)
            continue
        sids = r.subject.split(";")
        lb = least_budget(instance, elig, backend, max(each, 0.05), threads, sources=sids)
        old, have = float(r.required), float(r.available or 0.0)
        if lb.exact and lb.value is not None and lb.value > old + 0.005:
            r = Reason(r.rule, r.subject, lb.value, have, lb.value - have,
                       _resize(r.message, old, lb.value, have), r.keys, r.cause)
        out.append(r)
    return out


def _resize(message: str, old: float, new: float, have: float) -> str:
    """The counting sentence with the least-budget solve's figures."""
    text = message.replace(f"is {_num(old - have)} short of the {_num(old)} needed",
                           f"is {_num(new - have)} short of the {_num(new)} needed")
    text = text.replace(f"are {_num(old - have)} short of the {_num(old)} needed",
                        f"are {_num(new - have)} short of the {_num(new)} needed")
    for basis in ("each at its cheapest eligible offer", "at its cheapest eligible offer"):
        text = text.replace(basis, f"with every other rule held; the cheapest offers alone "
                                   f"would need {_num(old)}")
    return text


def elastic_funding_reason(instance: Instance, sid: str, v: float, hi: float) -> Reason:
    """The reason for a funding[s] slack of the elastic re-solve."""
    return Reason(RULE, sid, hi + v, hi, v,
                  f"{source_label(instance, sid)} is {_num(v)} short of the {_num(hi + v)} "
                  f"it would have to pay while the other rules hold (what only it, or it and "
                  f"sources already spent, may pay for).", frozenset({(RULE, sid)}))
