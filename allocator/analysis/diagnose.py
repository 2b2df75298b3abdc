"""Why a plan is infeasible: named rules, subjects and sizes (spec section 6, diagnosis.csv).

Two stages. Checks that need no solver come first, each a structural fact that holds
whatever the plan: mandatory demands no agency may serve (with why each candidate was kept
out), a Hall-type max-flow of mandatory load into the capacity of the agencies that may take
it, districts with fewer eligible agencies than the minimum-agencies or share rules need,
districts whose servable weight is below the minimum ratio, district caps below the
cheapest mandatory spend. Then solves of the real model find what counting cannot. When
counting found nothing inside the model, a dedicated least-budget solve comes first (budget
relaxed, every other rule hard, cost minimised): if it has a plan, its cost is the least
budget with which every other rule holds. Otherwise the elastic re-solve: every hard row
family gets a named, penalised slack in its own unit; level 1 minimises the weighted
violation of every rule but the budget, level 2 (level 1 held) the total cost.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import networkx as nx
import numpy as np
import pandas as pd

from allocator import __version__
from allocator.data.instance import Instance
from allocator.eligibility import (
    Eligibility,
    candidate_reasons,
    compute_eligibility,
    plain_ids,
)
from allocator.model.build import COST, AllocationModel, build_model
from allocator.model.linear import INF
from allocator.pipeline.plan import DIAGNOSIS_COLUMNS, RunResult, write_results
from allocator.solvers import Status, get_backend

Progress = Callable[[str], None]

#: model row block -> (diagnosis rule, side of the row that is relaxed, unit of the slack)
RELAX: dict[str, tuple[str, int, str]] = {
    "serve_once": ("mandatory", +1, "demand"),  # only its mandatory rows (lo = 1)
    "serve_mandatory": ("mandatory", +1, "demand"),
    "budget": ("budget", -1, "money"),
    "district_budget_cap": ("district_budget_cap", -1, "money"),
    "capacity": ("capacity", -1, "days"),
    "district_min_coverage": ("min_district_ratio", +1, "weight"),
    "min_agencies": ("min_agencies_per_district", +1, "agencies"),
    "district_share": ("max_share_in_district", -1, "money"),
    "city_share": ("max_share_in_city", -1, "money"),
    "districts_per_agency": ("max_districts_per_agency", -1, "districts"),
}
#: rows that define helper columns (spend, served, activity, open districts): never relaxed.
#: A block named in neither table stays hard too (a definition must never be broken), and
#: is listed in summary.json so a new rule family is not silently left out.
DEFINITIONS = {"district_spend", "active_if_serving", "active_only_if_serving",
               "open_if_served"}
#: dropping a mandatory demand costs as much as this many "typical demands" of another rule
MANDATORY_PENALTY = 100.0
#: decimals kept in diagnosis.csv by rule (currency to the cent, person-days to 1/1000)
ROUND = {"budget": 2, "district_budget_cap": 2, "max_share_in_district": 2,
         "max_share_in_city": 2, "capacity": 3}
#: person-days are scaled to integers for the max-flow (networkx is exact on integers)
FLOW_SCALE = 1000


@dataclass
class Reason:
    """One row of diagnosis.csv, plus the (rule, entity) keys it covers for de-duplication."""

    rule: str
    subject: str
    required: float | None
    available: float | None
    shortfall: float | None
    message: str
    keys: frozenset = frozenset()
    cause: bool = True  # False: a consequence worth telling, not itself a cause

    def row(self) -> dict:
        digits = ROUND.get(self.rule, 6)

        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), digits)

        return {"rule": self.rule, "subject": self.subject, "required": r(self.required),
                "available": r(self.available), "shortfall": r(self.shortfall),
                "message": self.message}


@dataclass
class ElasticResult:
    """The elastic re-solve: its reasons, total weighted violation and least budget."""

    status: Status
    reasons: list[Reason] = field(default_factory=list)
    violation: float | None = None  # level 1: weighted violation of every rule but budget
    least_cost: float | None = None  # level 2: least total cost with level 1 held
    least_cost_bound: float | None = None
    least_cost_proven: bool = False
    seconds: float = 0.0
    violation_bound: float = 0.0  # level 1's proven lower bound: > 0 proves infeasibility
    unrelaxed: list[str] = field(default_factory=list)  # row blocks of unknown meaning, hard

    @property
    def proven(self) -> bool:
        """True when the violation found is proven the least, so each slack is a cause."""
        return self.status is Status.OPTIMAL

    @property
    def infeasible_proven(self) -> bool:
        """True when level 1's bound proves some violation unavoidable (no plan exists)."""
        return self.violation_bound > 1e-6 or (self.proven and (self.violation or 0.0) > 1e-6)


@dataclass
class Diagnosis:
    """Everything `explain` found: the table, whether a plan exists, and the elastic figures."""

    reasons: list[Reason]
    status: str  # feasible (a plan meets every rule), infeasible, undetermined (time ran out)
    elastic: ElasticResult | None
    solver: str
    seconds: float

    @property
    def feasible(self) -> bool:
        return self.status == "feasible"

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame([r.row() for r in self.reasons], columns=DIAGNOSIS_COLUMNS)


# ------------------------------------------------------------------------------------------
# wording
# ------------------------------------------------------------------------------------------

def _num(x: float) -> str:
    """A number for a sentence: thousands separators, decimals only when they matter."""
    return f"{x:,.0f}" if abs(x - round(x)) < 0.005 else f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def _mandatory_phrase(instance: Instance) -> str:
    levels = tuple(instance.policy.mandatory_levels)
    if levels == (4,):
        return "major-risk"
    return "mandatory (risk level " + ", ".join(str(v) for v in levels) + ")"


def _listing(items: list[str], limit: int = 6) -> str:
    """'a, b and c', or 'a, b, ... and 7 more' for a long list."""
    items = list(items)
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ------------------------------------------------------------------------------------------
# stage 1: checks by counting and flows
# ------------------------------------------------------------------------------------------

def _mandatory_mask(instance: Instance, frame: pd.DataFrame) -> pd.Series:
    return frame["risk_level"].isin(instance.policy.mandatory_levels)


def _usable_triples(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Eligible triples whose load fits the agency's whole capacity (others can never be used)."""
    t = elig.triples
    cap = t["agency_id"].map(instance.agencies["capacity_days"]).astype(float)
    return t[t["load"].to_numpy() <= cap.to_numpy() + 1e-9]


def forced_districts(instance: Instance, elig: Eligibility) -> pd.Index:
    """Districts the rules force to have a served demand: a mandatory demand with an eligible
    agency, or a positive minimum coverage."""
    t, pol, dem = elig.triples, instance.policy, instance.demands
    forced = pd.Index(t.loc[_mandatory_mask(instance, t), "district_id"].unique())
    if pol.min_district_ratio > 0:
        w = dem.groupby("district_id")["weight"].sum()
        forced = forced.union(pd.Index(w.index[w > 0]))
    return forced


def no_eligible_agency(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Mandatory demands with no eligible agency, one reason per enterprise, each candidate
    agency named with the rule that kept it out."""
    dem = instance.demands
    mand = dem[_mandatory_mask(instance, dem)]
    lost = mand[~mand.index.isin(elig.triples["demand"])]
    if lost.empty:
        return []
    # candidate_reasons fails on an empty candidate set, so ask only for demands that have one
    offered = pd.MultiIndex.from_frame(instance.bids[["service_id", "sector"]])
    quoted = pd.MultiIndex.from_frame(instance.quotes[["enterprise_id", "service_id"]])
    some = (pd.MultiIndex.from_frame(lost[["service_id", "sector"]]).isin(offered)
            | pd.MultiIndex.from_frame(lost[["enterprise_id", "service_id"]]).isin(quoted))
    why = pd.Series(dtype=object)
    if some.any():
        cand = candidate_reasons(instance, lost.index[some]).sort_values(["demand", "agency_id"])
        cand["text"] = cand["agency_id"].astype(str) + " (" + cand["detail"].astype(str) + ")"
        why = cand.groupby("demand")["text"].agg(lambda s: _listing(list(s), 5))
    bid_sectors = set(instance.bids["sector"])
    phrase = _mandatory_phrase(instance)
    out = []
    for ent, rows in lost.groupby("enterprise_id", sort=False):
        first = rows.iloc[0]
        sector = first["sector"]
        services = [str(v) for v in rows["service_id"]]
        if sector not in bid_sectors and not rows.index.isin(why.index).any():
            detail = f"No agency bids for any service in sector {sector}."
        else:
            detail = " ".join(
                f"For {s}, every candidate is kept out: {why[d]}." if d in why.index else
                f"For {s}, no agency bids in sector {sector}."
                for d, s in zip(rows.index, services, strict=True))
        n = len(rows)
        out.append(Reason(
            "mandatory_no_eligible_agency", str(ent), n, 0, n,
            f"{phrase.capitalize()} enterprise {ent} (district {first['district_id']}, sector "
            f"{sector}) has no eligible agency for service{'s' if n > 1 else ''} "
            f"{_listing(services)}. {detail}",
            frozenset({("mandatory", str(ent))})))
    return out


def capacity_shortage(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Hall-type shortage: max-flow of mandatory load (source -> demand -> eligible agency ->
    sink at capacity_days); each saturated group of agencies named with the demands only they
    may serve and the person-days missing. Demands are merged by their set of agencies."""
    t = elig.triples
    mand = t[_mandatory_mask(instance, t)]
    if mand.empty:
        return []
    cap = instance.agencies["capacity_days"].astype(float)
    usable = _usable_triples(instance, elig)
    usable = usable[_mandatory_mask(instance, usable)]
    phrase = _mandatory_phrase(instance)
    dem = instance.demands
    out: list[Reason] = []

    # demands no eligible agency could take even with all its capacity, grouped by agencies
    need = mand.groupby("demand")["load"].min()
    big = mand[~mand["demand"].isin(usable["demand"])]
    if len(big):
        ags_of = big.groupby("demand")["agency_id"].agg(lambda v: ";".join(sorted(set(v))))
        best = big.assign(cap=big["agency_id"].map(cap)).groupby("demand")["cap"].max()
        for ags, ds in ags_of.groupby(ags_of, sort=False):
            ds = ds.index
            names = [f"{dem.at[d, 'enterprise_id']}/{dem.at[d, 'service_id']}" for d in ds]
            agl = ags.split(";")
            want, have = float(need[ds].sum()), float(best[ds].sum())
            caps = _listing([f"{a} {_num(cap[a])}" for a in agl])
            text = (f"{phrase.capitalize()} demand {dem.at[ds[0], 'service_id']} of enterprise "
                    f"{dem.at[ds[0], 'enterprise_id']} needs {_num(want)} person-days, more "
                    f"than any eligible agency can deliver in the year ({caps})."
                    if len(ds) == 1 else
                    f"{len(ds)} {phrase} demands ({_listing(names)}) each need more "
                    f"person-days than any eligible agency can deliver in the year ({caps}); "
                    f"together they need {_num(want)}.")
            out.append(Reason("capacity", ags, want, have, want - have, text,
                              frozenset({("capacity", a) for a in agl})))
    if usable.empty:
        return out

    load = usable.groupby("demand")["load"].min()
    sig = usable.groupby("demand")["agency_id"].agg(lambda s: "\x1f".join(sorted(s)))
    group = pd.Series(pd.factorize(sig)[0], index=sig.index)
    g_load = load.groupby(group).sum()
    pairs = pd.DataFrame({"g": group.reindex(usable["demand"]).to_numpy(),
                          "a": usable["agency_id"].to_numpy()}).drop_duplicates()
    agencies = pd.Index(pairs["a"].unique())
    g = nx.DiGraph()
    g.add_edges_from((("s", ("g", int(k)), {"capacity": int(round(v * FLOW_SCALE))})
                      for k, v in g_load.items()))
    g.add_edges_from((("g", int(k)), ("a", a)) for k, a in zip(pairs["g"], pairs["a"],
                                                                strict=True))
    g.add_edges_from((("a", a), "t", {"capacity": int(round(cap[a] * FLOW_SCALE))})
                     for a in agencies)
    value, (reach, _) = nx.minimum_cut(g, "s", "t")
    if value >= int(round(g_load.sum() * FLOW_SCALE)):
        return out
    hall = g.subgraph([v for v in reach if v != "s"]).to_undirected()
    for comp in nx.connected_components(hall):
        gs = [k for kind, k in comp if kind == "g"]
        ags = sorted(a for kind, a in comp if kind == "a")
        ds = group.index[group.isin(gs)]
        need_days = float(load.loc[ds].sum())
        have = float(cap.loc[ags].sum()) if ags else 0.0
        missing = need_days - have
        if missing <= 1e-6:
            continue
        names = [f"{dem.at[d, 'enterprise_id']}/{dem.at[d, 'service_id']}" for d in ds]
        who = (f"Agency {ags[0]} has {_num(have)} person-days of capacity and is the only "
               f"eligible agency" if len(ags) == 1 else
               f"Agencies {_listing(ags)} have {_num(have)} person-days of capacity together "
               f"and are the only eligible agencies")
        out.append(Reason(
            "capacity", ";".join(ags), need_days, have, missing,
            f"{who} for {len(ds)} {phrase} demand{'s' if len(ds) != 1 else ''} needing "
            f"{_num(need_days)} person-days ({_listing(names)}): {_num(missing)} person-days "
            f"are missing.", frozenset({("capacity", a) for a in ags})))
    return out


def active_agency_bound(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """Per district with demands: eligible agencies, those with the capacity for one of its
    demands (roomy), and the most that can be active at once (each needs a demand of its
    own): a max-flow source -> demands grouped by their agency set (capacity = how many) ->
    agency -> sink (capacity 1)."""
    usable = _usable_triples(instance, elig)
    districts = pd.Index(instance.demands["district_id"].unique(), name="district_id")
    out = pd.DataFrame({"eligible": 0, "roomy": 0, "active": 0}, index=districts)
    out["eligible"] = elig.triples.groupby("district_id")["agency_id"].nunique().reindex(
        districts, fill_value=0)
    if usable.empty:
        return out
    sig = usable.groupby("demand")["agency_id"].agg(lambda s: "\x1f".join(sorted(s)))
    dist = instance.demands.loc[sig.index, "district_id"]
    group = pd.Series(pd.factorize(dist + "\x1e" + sig)[0], index=sig.index)
    size = group.value_counts()
    pairs = pd.DataFrame({"g": group.reindex(usable["demand"]).to_numpy(),
                          "a": usable["agency_id"].to_numpy(),
                          "d": usable["district_id"].to_numpy()}).drop_duplicates()
    for d, sub in pairs.groupby("d", sort=False):
        ags = sub["a"].unique()
        net = nx.DiGraph()
        net.add_edges_from(("s", ("g", int(k)), {"capacity": int(min(size[k], len(ags)))})
                           for k in sub["g"].unique())
        net.add_edges_from((("g", int(k)), ("a", a)) for k, a in zip(sub["g"], sub["a"],
                                                                       strict=True))
        net.add_edges_from((("a", a), "t", {"capacity": 1}) for a in ags)
        out.loc[d, "roomy"] = len(ags)
        out.loc[d, "active"] = int(nx.maximum_flow_value(net, "s", "t"))
    return out


def too_few_agencies(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts where fewer agencies can be active than min_agencies_per_district asks, or
    than a share cap needs (ceil(1 / max_share)); a cause where the district must be served,
    else a note that none of its demands can be."""
    pol = instance.policy
    k = pol.min_agencies_per_district
    share = pol.max_share_in_district
    k_share = math.ceil(1 / share - 1e-9) if share is not None and share < 1 else 0
    share_c = pol.max_share_in_city
    k_city = math.ceil(1 / share_c - 1e-9) if share_c is not None and share_c < 1 else 0
    if max(k, k_share, k_city) <= 1:
        return []
    n = active_agency_bound(instance, elig)
    forced = forced_districts(instance, elig)
    out = []
    named: set[str] = set()
    for rule, need in (("min_agencies_per_district", k), ("max_share_in_district", k_share)):
        if need <= 1:
            continue
        for d, row in n[n["active"] < need].iterrows():
            if rule == "max_share_in_district" and d in named and k >= k_share:
                continue  # the minimum-agencies reason already says more
            named.add(d)
            have, elig_n, roomy = int(row["active"]), int(row["eligible"]), int(row["roomy"])
            text = f"District {d} has {elig_n} eligible agenc{'y' if elig_n == 1 else 'ies'}"
            if roomy < elig_n:
                text += f", {roomy} of them with the capacity for any of its demands"
            if have < roomy:
                text += f"; its demands can keep at most {have} of them busy"
            if rule == "min_agencies_per_district":
                text += f"; the policy asks for {need}."
            else:
                text += (f"; a cap of {_pct(share)} on an agency's share of district spend "
                         f"needs at least {need}.")
            cause = d in forced
            if not cause:
                text += " None of its demands can be served."
            out.append(Reason(rule, str(d), need, have, need - have, text,
                              frozenset({(rule, str(d))}), cause))
    if k_city > 1 and len(forced):
        have = int(_usable_triples(instance, elig)["agency_id"].nunique())
        if have < k_city:
            out.append(Reason(
                "max_share_in_city", "city", k_city, have, k_city - have,
                f"The city has {have} eligible agenc{'y' if have == 1 else 'ies'}; a cap of "
                f"{_pct(share_c)} on an agency's share of city spend needs at least {k_city}.",
                frozenset({("max_share_in_city", "city")})))
    return out


def coverage_out_of_reach(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts whose demands with an eligible agency weigh less than min_district_ratio asks."""
    ratio = instance.policy.min_district_ratio
    if ratio <= 0:
        return []
    dem = instance.demands
    total = dem.groupby("district_id", sort=False)["weight"].sum()
    need = total * ratio
    ok = dem.index.isin(_usable_triples(instance, elig)["demand"])
    can = dem[ok].groupby("district_id")["weight"].sum().reindex(total.index, fill_value=0.0)
    short = need - can
    bad = short.index[(need > 0) & (short > 1e-9 * np.maximum(1.0, need))]
    return [Reason(
        "min_district_ratio", str(d), float(need[d]), float(can[d]), float(short[d]),
        f"District {d} can serve at most weight {_num(can[d])} of its {_num(total[d])} ("
        f"{_pct(can[d] / total[d])}), even if every demand with an eligible agency were served; "
        f"the policy asks for {_pct(ratio)} (weight {_num(need[d])}).",
        frozenset({("min_district_ratio", str(d))})) for d in bad]


def mandatory_spend(instance: Instance, elig: Eligibility) -> pd.Series:
    """Cheapest eligible cost of each mandatory demand that has an eligible agency."""
    t = elig.triples
    return t[_mandatory_mask(instance, t)].groupby("demand")["cost"].min()


def district_caps_too_low(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Districts whose cap is below the cheapest cost of their mandatory demands."""
    caps = instance.districts["budget_cap"].dropna()
    cheapest = mandatory_spend(instance, elig)
    if caps.empty or cheapest.empty:
        return []
    spend = cheapest.groupby(instance.demands.loc[cheapest.index, "district_id"]).sum()
    caps = caps.reindex(spend.index).dropna()
    short = spend.loc[caps.index] - caps
    bad = short.index[short > 1e-9 * np.maximum(1.0, caps)]
    phrase = _mandatory_phrase(instance)
    return [Reason(
        "district_budget_cap", str(d), float(spend[d]), float(caps[d]), float(short[d]),
        f"District {d} needs at least {_num(spend[d])} to serve its {phrase} demands at their "
        f"cheapest eligible offers; its budget cap is {_num(caps[d])} ({_num(short[d])} short).",
        frozenset({("district_budget_cap", str(d))})) for d in bad]


def budget_lower_bound(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Budget below the cheapest cost of the mandatory demands (a fallback when the elastic
    re-solve found no least budget)."""
    need = float(mandatory_spend(instance, elig).sum())
    budget = instance.policy.budget_total
    if need <= budget * (1 + 1e-9):
        return []
    return [Reason(
        "budget", "city", need, budget, need - budget,
        f"The budget is {_num(need - budget)} short of the {_num(need)} needed to serve every "
        f"{_mandatory_phrase(instance)} demand (each at its cheapest eligible offer; the other "
        f"rules may need more).", frozenset({("budget", "city")}))]


def prechecks(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Every stage-1 reason: facts found by counting and flows, before any solve."""
    return (no_eligible_agency(instance, elig) + too_few_agencies(instance, elig)
            + coverage_out_of_reach(instance, elig) + capacity_shortage(instance, elig)
            + district_caps_too_low(instance, elig))


# ------------------------------------------------------------------------------------------
# stage 2: the elastic re-solve
# ------------------------------------------------------------------------------------------

@dataclass
class SlackFamily:
    """The slack columns added to one row block: which rows, which side, what unit."""

    block: str
    rule: str
    unit: str
    side: int  # +1: slack added (lo side relaxed), -1: slack subtracted (hi side relaxed)
    rows: np.ndarray
    cols: np.ndarray
    labels: pd.DataFrame
    lo: np.ndarray  # row bounds in the rule's own unit (currency, not model cost units)
    hi: np.ndarray
    scale: float = 1.0  # rule unit per unit of the slack column (cost_scale, or a step)


def slack_units(instance: Instance, elig: Eligibility) -> dict[str, float]:
    """Size of one 'typical demand' in each unit, so a penalty of 1 per such size weighs
    rules alike: currency (cheapest cost), person-days (load), weight; counts are 1."""
    t = elig.triples
    money = t.groupby("demand")["cost"].min().median() if len(t) else np.nan
    days = t.groupby("demand")["load"].min().median() if len(t) else np.nan
    w = instance.demands["weight"]
    weight = w[w > 0].median() if (w > 0).any() else np.nan

    def ok(v: float) -> float:
        return float(v) if np.isfinite(v) and v > 0 else 1.0

    return {"money": ok(money), "days": ok(days), "weight": ok(weight), "agencies": 1.0,
            "districts": 1.0, "demand": 1.0 / MANDATORY_PENALTY, "row": 1.0}


#: the step of an integer slack in its rule's own unit, for backends without continuous
#: columns (CP-SAT): cents, thousandths of a person-day, millionths of a weight
INTEGER_STEP = {"money": 0.01, "days": 0.001, "weight": 1e-6}


def _sig(v: float, digits: int = 2) -> float:
    """v to a few significant digits (so a backend can scale it to an exact integer)."""
    return float(f"{v:.{digits}g}")


def slack_bounds(m: AllocationModel) -> dict[str, float]:
    """Largest violation each unit can have, in the rule's own unit (finite column bounds)."""
    t = m.triples
    spend = float(t.groupby("demand")["cost"].max().sum()) if len(t) else 0.0
    days = float(t["load"].sum()) if len(t) else 0.0
    weight = float(m.instance.demands["weight"].sum())
    return {"money": spend + 1.0, "days": days + 1.0, "weight": weight + 1.0,
            "agencies": float(max(m.instance.policy.min_agencies_per_district, 1)),
            "districts": float(len(m.instance.districts)), "demand": 1.0}


def add_slacks(m: AllocationModel, units: dict[str, float], only: set[str] | None = None,
               integer: bool = False) -> tuple[list[SlackFamily], np.ndarray, np.ndarray]:
    """Give every hard row (of the `only` blocks if given) a named non-negative slack on its
    relaxable side; integer slacks in fine steps when the backend needs integer columns.

    Returns the families, the level-1 penalty (zero on the budget's slack: level 1 leaves the
    budget out) and a start point where x = 0 and every slack takes up what that breaks.
    """
    lp = m.lp
    money_scale = float(getattr(m, "cost_scale", 1.0))
    bounds = slack_bounds(m)
    lo_all, hi_all = lp.row_lo, lp.row_hi
    fams: list[SlackFamily] = []
    for b in list(lp.row_blocks):
        if b.name not in RELAX or (only is not None and b.name not in only):
            continue
        lo, hi = lo_all[b.start:b.start + b.size], hi_all[b.start:b.start + b.size]
        rule, side, unit = RELAX[b.name]
        keep = np.isfinite(lo if side > 0 else hi)
        if b.name == "serve_once":  # older form: mandatory rows carry lo = 1, others lo <= 0
            keep &= lo > 0.5
        local = np.flatnonzero(keep)
        if local.size == 0:
            continue
        row_scale = money_scale if unit == "money" else 1.0
        step = INTEGER_STEP.get(unit, 1.0) if integer else row_scale
        labels = b.labels.iloc[local].reset_index(drop=True)
        cols = lp.add_variables(f"slack_{b.name}", labels, 0.0,
                                math.ceil(bounds[unit] / step) if integer else bounds[unit] / step,
                                integer=integer or unit == "demand")
        rows = b.start + local
        lp.add_coefficients(rows, cols, float(side) * step / row_scale * np.ones(len(cols)))
        fams.append(SlackFamily(b.name, rule, unit, side, rows, cols, labels,
                                lo[local] * row_scale, hi[local] * row_scale, step))
    penalty = np.zeros(lp.n_vars)
    start = np.zeros(lp.n_vars)
    for f in fams:
        if f.rule != "budget":
            penalty[f.cols] = _sig(f.scale / units[f.unit])
        need = np.maximum(f.lo, 0.0) if f.side > 0 else np.maximum(-f.hi, 0.0)
        start[f.cols] = np.ceil(need / f.scale - 1e-9) if integer else need / f.scale
    return fams, penalty, start


def _threads(instance: Instance) -> int:
    if instance.policy.threads:
        return int(instance.policy.threads)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def elastic_solve(instance: Instance, elig: Eligibility, solver: str | None = None,
                  time_limit: float | None = None, progress: Progress | None = None,
                  hard_rules: bool = False, level2_share: float = 1.0) -> ElasticResult:
    """The model with every hard rule made elastic: level 1 minimises the weighted violation
    of every rule but the budget; level 2, holding it, the total cost (the least budget),
    in at most level2_share of the time limit.

    hard_rules=True is the dedicated least-budget solve: only the budget is relaxed, every
    other rule stays hard and the cost is minimised; INFEASIBLE then means the other rules
    cannot hold together whatever the budget.
    """
    say = progress or (lambda _m: None)
    pol = instance.policy
    t0 = time.perf_counter()
    backend = get_backend(solver or pol.solver_name)
    m = build_model(instance, elig, direct_share_rows=backend.direct_share_rows)
    if m.lp.n_rows == 0:
        return ElasticResult(Status.OPTIMAL, [], 0.0, 0.0, 0.0, True, 0.0, 0.0)
    units = slack_units(instance, elig)
    n0 = m.lp.n_vars
    fams, penalty, start = add_slacks(m, units, only={"budget"} if hard_rules else None,
                                      integer=backend.integer_columns_only)
    cost = np.zeros(m.lp.n_vars)
    level = next(lv for lv in m.levels if lv.name == COST)
    cost[:n0] = level.coefs
    money = float(getattr(m, "cost_scale", 1.0))  # currency per model cost unit
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    session = backend.open(m.lp, _threads(instance), pol.seed)
    x, v1, v_bound, status = None, 0.0, 0.0, Status.OPTIMAL
    if not hard_rules:
        session.set_objective(penalty, "min")
        say(f"elastic level 1: least violation of the rules other than the budget "
            f"({sum(len(f.cols) for f in fams):,} slacks), up to {0.6 * limit:.1f} s")
        r1 = session.solve(max(0.6 * limit, 0.05), 1e-6,
                           start if backend.accepts_start else None)
        if not r1.status.has_solution:
            return ElasticResult(r1.status, seconds=time.perf_counter() - t0)
        x, status = r1.x, r1.status
        v1 = float(penalty @ x)
        v_bound = max(r1.bound, 0.0) if r1.bound is not None else 0.0
        nz = np.flatnonzero(penalty)
        if nz.size:
            session.add_row("hold_violation", nz, penalty[nz], -INF, v1 + 1e-7 * max(1.0, v1))
    session.set_objective(cost, "min")
    left = max(min(limit - (time.perf_counter() - t0), level2_share * limit), 0.05)
    what = ("least budget with every other rule held" if hard_rules else
            "elastic level 2: least total cost with that violation held")
    say(f"{what}, up to {left:.1f} s")
    r2 = session.solve(left, min(pol.mip_gap, 1e-4),
                       x if x is not None and backend.accepts_start else None)
    if hard_rules:
        if not r2.status.has_solution:
            return ElasticResult(r2.status, seconds=time.perf_counter() - t0)
        x, status = r2.x, Status.OPTIMAL
    elif r2.status.has_solution and float(cost @ r2.x) <= float(cost @ x) + 1e-9:
        x = r2.x
    bound = r2.bound if r2.status.has_solution or r2.status is Status.NO_SOLUTION else None
    bound = None if bound is None else bound * money
    least = float(cost @ x) * money
    res = ElasticResult(status, [], v1, least, bound, r2.status is Status.OPTIMAL,
                        time.perf_counter() - t0, v_bound,
                        sorted({b.name for b in m.lp.row_blocks} - set(RELAX) - DEFINITIONS))
    res.reasons = elastic_reasons(instance, m, fams, x, res, units)
    return res


def elastic_reasons(instance: Instance, m: AllocationModel, fams: list[SlackFamily],
                    x: np.ndarray, res: ElasticResult, units: dict[str, float]
                    ) -> list[Reason]:
    """One reason per non-zero slack, sized in its rule's own unit; the budget row last.

    Level 2 may move up to 1e-7 x the held violation between slacks, so a slack counts only
    above 1e-5 of a typical demand's size (scaled by the violation when it is large).
    """
    pol = instance.policy
    phrase = _mandatory_phrase(instance)
    chosen = x[m.x] > 0.5
    spend = (m.triples.loc[chosen, "cost"].groupby(m.triples.loc[chosen, "district_id"]).sum()
             if chosen.any() else pd.Series(dtype=float))
    total = float(spend.sum())
    out: list[Reason] = []
    for f in fams:
        if f.rule == "budget":
            continue
        s = x[f.cols] * f.scale
        if f.unit in ("agencies", "districts", "demand"):
            s = np.round(s)
            hit = np.flatnonzero(s >= 0.5)
        else:
            noise = units[f.unit] * 1e-5 * max(1.0, res.violation or 0.0)
            hit = np.flatnonzero(s > max(noise, 0.005 if f.unit == "money" else 0.0))
        for k in hit:
            lab = f.labels.iloc[k]
            v, lo, hi = float(s[k]), float(f.lo[k]), float(f.hi[k])
            r = _elastic_reason(f, lab, v, lo, hi, spend, total, phrase, pol)
            if not res.proven:
                r.cause = False
                r.message += (" (Not proven: the time ran out before a smaller violation was "
                              "ruled out.)")
            out.append(r)
    budget = pol.budget_total
    least = res.least_cost
    if least is not None and least > budget * (1 + 1e-9) + 0.005:
        mand_in_model = bool(_mandatory_mask(instance, m.triples).any())
        goal = (f"serve every {phrase} demand" if mand_in_model
                else "meet the other rules")
        msg = (f"The budget is {_num(least - budget)} short of the {_num(least)} needed to "
               f"{goal}.")
        if res.violation and res.violation > 1e-6:
            msg += " That is with the other rules' shortfalls listed here allowed."
        chosen = m.triples[x[m.x] > 0.5]
        extra = int((~_mandatory_mask(instance, chosen)).sum())
        if mand_in_model and extra:
            msg += (f" The least-cost plan also serves {extra} other demand"
                    f"{'s' if extra > 1 else ''}, which the other rules need (minimum agencies, "
                    f"share caps or coverage).")
        if not res.least_cost_proven:
            msg += (" This is the least budget found in the time allowed"
                    + (f"; the least possible is at least {_num(res.least_cost_bound)}."
                       if res.least_cost_bound is not None else "."))
        bound = res.least_cost_bound
        sure = res.least_cost_proven or (bound is not None and bound > budget * (1 + 1e-9))
        out.append(Reason("budget", "city", least, budget, least - budget, msg,
                          frozenset({("budget", "city")}), sure and res.proven))
    return out


def _elastic_reason(f: SlackFamily, lab: pd.Series, v: float, lo: float, hi: float,
                    spend: pd.Series, total: float, phrase: str, pol) -> Reason:
    """The reason for one non-zero slack, in words a planner reads."""
    rule = f.rule
    if rule == "mandatory":
        e, s = lab["enterprise_id"], lab["service_id"]
        return Reason(rule, f"{e}/{s}", 1, 0, 1,
                      f"{phrase.capitalize()} demand {s} of enterprise {e} cannot be served "
                      f"while the other rules hold.", frozenset({(rule, f"{e}/{s}")}))
    if rule == "capacity":
        a = lab["agency_id"]
        return Reason(rule, str(a), hi + v, hi, v,
                      f"Agency {a} would need {_num(hi + v)} person-days; its capacity is "
                      f"{_num(hi)} ({_num(v)} person-days short).", frozenset({(rule, a)}))
    if rule == "district_budget_cap":
        d = lab["district_id"]
        return Reason(rule, str(d), hi + v, hi, v,
                      f"District {d} needs {_num(hi + v)} to serve what the other rules "
                      f"require; its budget cap is {_num(hi)} ({_num(v)} short).",
                      frozenset({(rule, d)}))
    if rule == "min_district_ratio":
        d = lab["district_id"]
        ratio = pol.min_district_ratio
        return Reason(rule, str(d), lo, lo - v, v,
                      f"District {d} can serve weight {_num(lo - v)} while the other rules "
                      f"hold; the policy asks for {_pct(ratio)} of its "
                      f"{_num(lo / ratio)} (weight {_num(lo)}).", frozenset({(rule, d)}))
    if rule == "min_agencies_per_district":
        d = lab["district_id"]
        k = pol.min_agencies_per_district
        have = int(round(k - v))
        return Reason(rule, str(d), k, have, int(round(v)),
                      f"District {d} can have {have} active agenc{'y' if have == 1 else 'ies'} "
                      f"while the other rules hold; the policy asks for {k}.",
                      frozenset({(rule, d)}))
    if rule == "max_share_in_district":
        a, d = lab["agency_id"], lab["district_id"]
        spend_d = float(spend[d])
        cap = pol.max_share_in_district * spend_d
        return Reason(rule, f"{a} in {d}", cap + v, cap, v,
                      f"Agency {a} would hold {_num(cap + v)} of district {d}'s spend of "
                      f"{_num(spend_d)}, above the {_pct(pol.max_share_in_district)} cap of "
                      f"{_num(cap)}.", frozenset({(rule, d)}))
    if rule == "max_share_in_city":
        a = lab["agency_id"]
        cap = pol.max_share_in_city * total
        return Reason(rule, str(a), cap + v, cap, v,
                      f"Agency {a} would hold {_num(cap + v)} of the city's spend of "
                      f"{_num(total)}, above the {_pct(pol.max_share_in_city)} cap of "
                      f"{_num(cap)}.", frozenset({(rule, "city")}))
    if rule == "max_districts_per_agency":
        a = lab["agency_id"]
        return Reason(rule, str(a), hi + v, hi, v,
                      f"Agency {a} would need to work in {int(round(hi + v))} districts; the "
                      f"policy allows {int(round(hi))}.", frozenset({(rule, a)}))
    subject = ",".join(str(val) for val in lab.to_numpy())
    return Reason(rule, subject, None, None, v,
                  f"Rule {rule} is broken by {_num(v)} for {subject} while the other rules hold.",
                  frozenset({(rule, subject)}))


# ------------------------------------------------------------------------------------------
# putting it together
# ------------------------------------------------------------------------------------------

def explain(instance: Instance, elig: Eligibility, solver: str | None = None,
            time_limit: float | None = None, progress: Progress | None = None) -> Diagnosis:
    """Stage 1 checks, then the solves: when counting found nothing inside the model, the
    dedicated least-budget solve (budget relaxed, every other rule hard) first; if that has
    no plan, the elastic re-solve. A stage-1 fact wins over a solve's row on the same rule
    and subject; a solve's finding that is not proven is kept as a note, not a cause."""
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    pol = instance.policy
    # the counting below maps ids through dicts: plain strings, not categoricals
    elig = Eligibility(plain_ids(elig.triples), elig.excluded)
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    say("diagnose: checks by counting and max-flow")
    pre = prechecks(instance, elig)
    name = solver or pol.solver_name
    try:
        backend_name = get_backend(name).name
    except ValueError:
        backend_name = name
    structural = any(r.cause and r.rule != "mandatory_no_eligible_agency" for r in pre)
    ela = None
    if not structural:
        ela = elastic_solve(instance, elig, solver=solver, time_limit=0.5 * limit,
                            progress=say, hard_rules=True)
        if not ela.status.has_solution:
            say(f"least-budget solve: {ela.status.value}; every rule made elastic")
            ela = None
    if ela is None:
        left = max(limit - (time.perf_counter() - t0), min(limit, 1.0))
        # with causes already found by counting, the least budget on top is a lesser matter
        ela = elastic_solve(instance, elig, solver=solver, time_limit=left, progress=say,
                            level2_share=0.25 if structural else 1.0)
    covered = set().union(*(r.keys for r in pre)) if pre else set()
    found = [r for r in ela.reasons if not (r.keys & covered)]
    reasons = [r for r in pre if r.cause] + [r for r in found if r.cause]
    lower = budget_lower_bound(instance, elig)
    if lower and not any(r.rule == "budget" for r in reasons):
        reasons += lower
        found = [r for r in found if r.rule != "budget"]
    budget_ok = ela.least_cost is not None and (
        ela.least_cost <= pol.budget_total * (1 + 1e-9) + 0.005)
    clean = ela.status.has_solution and (ela.violation or 0.0) <= 1e-6 and budget_ok
    if reasons or ela.infeasible_proven:
        status = "infeasible"
    elif clean:
        status = "feasible"
    else:
        status = "undetermined"
    if status != "feasible":
        if not any(r.cause for r in reasons):  # unproven findings only when nothing is sure
            reasons += [r for r in found if not r.cause]
        reasons += [r for r in pre if not r.cause]
    if status == "undetermined":
        reasons.insert(0, Reason(
            "undetermined", "model", None, None, None,
            "No plan was found and none was ruled out in the time allowed (the re-solve ended "
            f"{ela.status.value}); raise --time-limit."
            + (" The best attempt breaks the rules listed next." if len(reasons) else "")))
    return Diagnosis(reasons, status, ela, backend_name, time.perf_counter() - t0)


def diagnose(instance: Instance, elig: Eligibility, solver: str | None = None,
             time_limit: float | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """Every reason that can be named for infeasibility, as diagnosis.csv rows."""
    diag = explain(instance, elig, solver=solver, time_limit=time_limit, progress=progress)
    if diag.feasible:
        return pd.DataFrame([{
            "rule": "unexplained", "subject": "model", "required": None, "available": None,
            "shortfall": None,
            "message": "The solver found no plan, but the elastic re-solve found one that meets "
                       "every rule; solve again with a longer time limit."}],
            columns=DIAGNOSIS_COLUMNS)
    return diag.table


def counting_diagnosis(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """The reasons counting and max-flow can name, without the elastic re-solve (province
    scale, where that MIP does not fit): diagnosis.csv rows, one 'undetermined' if none."""
    elig = Eligibility(plain_ids(elig.triples), elig.excluded)
    reasons = prechecks(instance, elig)
    if not any(r.cause for r in reasons):
        reasons.insert(0, Reason(
            "undetermined", "model", None, None, None,
            "The coverage LP has no plan that serves every mandatory demand, and no single "
            "rule can be named by counting; at this size the elastic re-solve is not run."))
    return Diagnosis(reasons, "infeasible", None, "", 0.0).table


def diagnosis_summary(instance: Instance, elig: Eligibility, diag: Diagnosis) -> dict:
    """summary.json of a diagnose run: status, the elastic figures and the rules named."""
    ela = diag.elastic
    table = diag.table
    return {
        "status": {"feasible": "feasible", "infeasible": "infeasible"}.get(diag.status,
                                                                          "no_solution"),
        "coverage": None, "quality": None, "cost": None, "gap": None, "bound": None,
        "solver": diag.solver,
        "seconds": round(diag.seconds, 3),
        "instance": instance.name,
        "instance_path": str(instance.path),
        "instance_sha256": instance.sha256,
        "allocator_version": __version__,
        "budget": instance.policy.budget_total,
        "diagnosis": {
            "outcome": diag.status,
            "reasons": len(table),
            "rules": sorted(set(table["rule"])),
            "elastic_status": ela.status.value if ela else None,
            "violation": ela.violation if ela else None,
            "least_budget": round(ela.least_cost, 2) if ela and ela.least_cost is not None
            else None,
            "least_budget_bound": ela.least_cost_bound if ela else None,
            "least_budget_proven": ela.least_cost_proven if ela else None,
            "rules_kept_hard": ela.unrelaxed if ela else [],
        },
        "counts": {"demands": len(instance.demands), "agencies": len(instance.agencies),
                   "eligible_triples": len(elig.triples)},
    }


def run_diagnose(inst: Instance, out: Path | None = None, solver: str | None = None,
                 time_limit: float | None = None, progress: Progress | None = None) -> int:
    """`allocator diagnose`: print the reasons as sentences, write diagnosis.csv and
    summary.json to out (atomically) if given; exit code 1 when infeasible, 0 if a plan exists."""
    if progress is None:
        t0 = time.perf_counter()

        def progress(msg: str) -> None:
            click.echo(f"[{time.perf_counter() - t0:7.2f}s] {msg}", err=True)

    elig = compute_eligibility(inst)
    diag = explain(inst, elig, solver=solver, time_limit=time_limit, progress=progress)
    if out is not None:
        write_results(RunResult(diagnosis_summary(inst, elig, diag), None, None, None, None,
                                elig.excluded, diag.table), Path(out))
    if diag.feasible:
        ela = diag.elastic
        click.echo("no infeasibility: a plan exists"
                   + (f" (least cost {_num(ela.least_cost)} of budget "
                      f"{_num(inst.policy.budget_total)})"
                      if ela is not None and ela.least_cost is not None else ""))
        return 0
    click.echo("why no plan exists:" if diag.status == "infeasible" else
               "no plan was found, and none was ruled out, in the time allowed:")
    for r in diag.reasons:
        click.echo(f"  - {r.message}")
    return 1
