"""Stage 2 of the diagnosis: the elastic re-solve, every hard rule given a named, penalised
slack in its own unit; level 1 minimises the weighted violation of every rule but the budget,
level 2 (level 1 held) the total cost."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.analysis.diagnose.funding import elastic_funding_reason
from allocator.analysis.diagnose.reasons import (
    ElasticResult,
    Reason,
    _mandatory_phrase,
    _num,
    _pct,
    budget_reason,
    extra_served,
)
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import COST, AllocationModel, build_model
from allocator.model.linear import INF
from allocator.pipeline.threads import default_threads
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
    "funding": ("funding", -1, "money"),
    "pin": ("pin", +1, "demand"),  # an assign pin weighs as much as a mandatory demand
    "max_changes": ("max_changes", +1, "changes"),
}


#: rows that define helper columns (spend, served, activity, open districts): never relaxed.
#: A block named in neither table stays hard too (a definition must never be broken), and
#: is listed in summary.json so a new rule family is not silently left out.
DEFINITIONS = {"district_spend", "active_if_serving", "active_only_if_serving",
               "open_if_served", "funding_paid"}


#: dropping a mandatory demand costs as much as this many "typical demands" of another rule
MANDATORY_PENALTY = 100.0

#: one change beyond max_changes costs half a typical demand of another rule: where moving
#: an incumbent and, say, overloading its agency both explain the year, the move is named
CHANGE_UNIT = 2.0


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
            "districts": 1.0, "demand": 1.0 / MANDATORY_PENALTY, "row": 1.0, "changes": CHANGE_UNIT}


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
            "districts": float(len(m.instance.districts)), "demand": 1.0,
            "changes": float(len(m.instance.incumbents)) + 1.0}


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


def elastic_solve(instance: Instance, elig: Eligibility, solver: str | None = None,
                  time_limit: float | None = None, progress: Progress | None = None,
                  level2_share: float = 1.0) -> ElasticResult:
    """The model with every hard rule made elastic: level 1 minimises the weighted violation
    of every rule but the budget; level 2, holding it, the total cost (the least budget),
    in at most level2_share of the time limit."""
    say = progress or (lambda _m: None)
    pol = instance.policy
    t0 = time.perf_counter()
    backend = get_backend(solver or pol.solver_name)
    m = build_model(instance, elig, direct_share_rows=backend.direct_share_rows,
                    integer_flows=backend.integer_columns_only)
    if m.lp.n_rows == 0:
        return ElasticResult(Status.OPTIMAL, [], 0.0, 0.0, 0.0, True, 0.0, 0.0)
    units = slack_units(instance, elig)
    n0 = m.lp.n_vars
    fams, penalty, start = add_slacks(m, units, integer=backend.integer_columns_only)
    cost = np.zeros(m.lp.n_vars)
    level = next(lv for lv in m.levels if lv.name == COST)
    cost[:n0] = level.coefs
    money = level.unit  # currency per model cost unit
    limit = float(time_limit if time_limit is not None else pol.time_limit)
    session = backend.open(m.lp, pol.threads or default_threads(), pol.seed)
    session.set_objective(penalty, "min")
    say(f"elastic level 1: least violation of the rules other than the budget "
        f"({sum(len(f.cols) for f in fams):,} slacks), up to {0.6 * limit:.1f} s")
    r1 = session.solve(max(0.6 * limit, 0.05), 1e-6, start if backend.accepts_start else None)
    if not r1.status.has_solution or r1.x is None:
        return ElasticResult(r1.status, seconds=time.perf_counter() - t0)
    x, status = r1.x, r1.status
    v1 = float(penalty @ x)
    v_bound = max(r1.bound, 0.0) if r1.bound is not None else 0.0
    nz = np.flatnonzero(penalty)
    if nz.size:
        session.add_row("hold_violation", nz, penalty[nz], -INF, v1 + 1e-7 * max(1.0, v1))
    session.set_objective(cost, "min")
    left = max(min(limit - (time.perf_counter() - t0), level2_share * limit), 0.05)
    say(f"elastic level 2: least total cost with that violation held, up to {left:.1f} s")
    r2 = session.solve(left, min(pol.mip_gap, 1e-4), x if backend.accepts_start else None)
    if r2.x is not None and float(cost @ r2.x) <= float(cost @ x) + 1e-9:
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
        if f.unit in ("agencies", "districts", "demand", "changes"):
            s = np.round(s)
            hit = np.flatnonzero(s >= 0.5)
        else:
            noise = units[f.unit] * 1e-5 * max(1.0, res.violation or 0.0)
            hit = np.flatnonzero(s > max(noise, 0.005 if f.unit == "money" else 0.0))
        for k in hit:
            lab = f.labels.iloc[k]
            v, lo, hi = float(s[k]), float(f.lo[k]), float(f.hi[k])
            r = (elastic_funding_reason(instance, str(lab["source_id"]), v, hi)
                 if f.rule == "funding" else
                 _elastic_reason(f, lab, v, lo, hi, spend, total, phrase, pol))
            if not res.proven:
                r.cause = False
                r.message += (" (Not proven: the time ran out before a smaller violation was "
                              "ruled out.)")
            out.append(r)
    least, bound = res.least_cost, res.least_cost_bound
    if least is not None and least > pol.budget_limit * (1 + 1e-9) + 0.005:
        plan = m.triples[x[m.x] > 0.5]
        sure = res.least_cost_proven or (bound is not None
                                         and bound > pol.budget_limit * (1 + 1e-9))
        out.append(budget_reason(instance, least, bound, res.least_cost_proven,
                                 extra_served=extra_served(instance, plan),
                                 with_violations=bool(res.violation and res.violation > 1e-6),
                                 cause=sure and res.proven))
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
    if rule == "pin":
        e, s, a = lab["enterprise_id"], lab["service_id"], lab["agency_id"]
        return Reason(rule, f"{e}/{s}/{a}", 1, 0, 1,
                      f"The pin of agency {a} on service {s} of enterprise {e} (pins.csv) "
                      f"cannot hold while the other rules do.", frozenset({(rule, f"{e}/{s}")}))
    if rule == "max_changes":
        extra, k = int(round(v)), int(lab["eligible_incumbents"])
        allowed = k - int(round(lo))
        return Reason(rule, "city", allowed + extra, allowed, extra,
                      f"{k} demands still have an eligible incumbent and max_changes "
                      f"{pol.max_changes:g} lets {allowed} of them move or go unserved; the "
                      f"other rules need {allowed + extra} to.", frozenset({(rule, "city")}))
    if rule == "max_districts_per_agency":
        a = lab["agency_id"]
        return Reason(rule, str(a), hi + v, hi, v,
                      f"Agency {a} would need to work in {int(round(hi + v))} districts; the "
                      f"policy allows {int(round(hi))}.", frozenset({(rule, a)}))
    subject = ",".join(str(val) for val in lab.to_numpy())
    return Reason(rule, subject, None, None, v,
                  f"Rule {rule} is broken by {_num(v)} for {subject} while the other rules hold.",
                  frozenset({(rule, subject)}))
