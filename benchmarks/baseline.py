"""Straightforward lexicographic PuLP model of the allocator spec (reference / speed baseline).

This module is deliberately independent of the ``allocator`` package: it reads the instance
folder itself (pandas + yaml), computes eligibility exactly as written in spec section 4, builds
one plain MIP with PuLP (one binary per eligible triple, big-M linking binaries for "agency
active in district" and "district has a served demand") and solves the three objective levels
one after the other, fixing each optimum before the next:

1. maximise the served weight;
2. maximise sum of weight x agency quality;
3. minimise the total cost (the government's part of it when enterprises co-pay).

With co-payment (``copay.share_by_risk``) the government pays cost x (1 - share), to the cent
where a share applies; budget, district caps and funding count that part, share caps the full
cost. With ``funding.csv`` every eligible triple gets one continuous variable per source whose
scope covers its demand (what that source pays for it): they add up to the triple's
government cost when it is chosen, and no source pays more than its amount (a per-triple
transportation, not the grouped flow of the allocator's model).

It is used as the speed baseline and as an independent reference optimum in tests, so it aims
at being obviously correct rather than fast.

Usage: ``python -m benchmarks.baseline INSTANCE_DIR [--budget X] [--time-limit S] [--mip-gap G]``
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pulp
import yaml

# --------------------------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------------------------

#: Spec section 3 defaults (``budget.total`` is required and has none).
DEFAULT_POLICY: dict[str, Any] = {
    "name": "",
    "budget": {"total": None},
    "coverage": {
        "weights": {1: 1, 2: 2, 3: 4, 4: 8},
        "mandatory_levels": [4],
        "min_district_ratio": 0.0,
    },
    "anti_monopoly": {
        "max_share_in_district": 0.4,
        "min_agencies_per_district": 3,
        "max_share_in_city": None,
        "max_districts_per_agency": None,
    },
    "quality": {
        "min_score": 60,
        "min_score_by_risk": {3: 70, 4: 80},
    },
    "price": {
        "floor_ratio": 0.8,
        "ceiling_ratio": 1.5,
    },
    "copay": {"share_by_risk": {}},
    "solver": {
        "name": "auto",
        "time_limit": 60,
        "mip_gap": 0.0001,
    },
    # the planner's year (issue 19): last year's plan, pins, rotation, agency evaluations
    "continuity": {
        "keep_incumbents": True,
        "max_changes": None,
        "max_tenure_years": None,
    },
    "evaluation": {
        "scorer_weights": {"enterprise": 0.3, "street_office": 0.3, "expert": 0.4,
                           "spot_check": 0.0},
        "carry": 0.5,
        "probation_below": 70,
        "suspend_below": 60,
        "restore_above": 80,
        "bottom_share_to_probation": 0.0,
        "blacklist_on_violation": True,
    },
}

#: Relative tolerance used when fixing the optimum of one level before the next.
FIX_TOL = 1e-6
#: Tolerance on the inclusive price-ratio bounds (pure float noise only).
PRICE_TOL = 1e-9


def _merge_section(base: dict, extra: dict, where: str) -> dict:
    """Merge ``extra`` into a copy of ``base`` (section level; a setting's value is replaced
    wholesale, including mapping-valued settings such as min_score_by_risk)."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if key not in base:
            raise ValueError(f"policy: unknown key {where}{key!r}")
        if isinstance(base[key], dict) and key in (
            "budget",
            "coverage",
            "anti_monopoly",
            "quality",
            "price",
            "copay",
            "solver",
            "continuity",
            "evaluation",
        ):
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ValueError(f"policy: {where}{key} must be a mapping")
            sub = copy.deepcopy(out[key])
            for k2, v2 in value.items():
                if k2 not in base[key] and key != "solver":
                    # the solver section is irrelevant to this baseline; tolerate extras there
                    raise ValueError(f"policy: unknown key {where}{key}.{k2}")
                sub[k2] = v2
            out[key] = sub
        else:
            out[key] = value
    return out


def _int_keys(mapping: dict | None, what: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for k, v in (mapping or {}).items():
        out[int(k)] = float(v)
    return out


def load_policy(
    instance_dir: Path, overrides: dict | None = None, budget: float | None = None
) -> dict:
    """policy.yaml merged over the spec defaults, then ``overrides`` and ``budget``."""
    with open(Path(instance_dir) / "policy.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ValueError("policy.yaml: top level must be a mapping")
    pol = _merge_section(DEFAULT_POLICY, raw, "")
    if overrides:
        pol = _merge_section(pol, overrides, "overrides: ")
    if budget is not None:
        pol["budget"]["total"] = float(budget)
    if pol["budget"].get("total") is None:
        if not (Path(instance_dir) / "funding.csv").exists():
            raise ValueError("policy: budget.total is required (without funding.csv)")
    else:
        pol["budget"]["total"] = float(pol["budget"]["total"])
    pol["copay"]["share_by_risk"] = _int_keys(pol["copay"]["share_by_risk"], "share_by_risk")
    # weights: a level missing from the given mapping falls back to the default weight
    weights = dict(_int_keys(DEFAULT_POLICY["coverage"]["weights"], "weights"))
    weights.update(_int_keys(pol["coverage"]["weights"], "weights"))
    pol["coverage"]["weights"] = weights
    cov = pol["coverage"]
    cov["mandatory_levels"] = [int(x) for x in (cov["mandatory_levels"] or [])]
    pol["coverage"]["min_district_ratio"] = float(pol["coverage"]["min_district_ratio"] or 0.0)
    qual = pol["quality"]
    qual["min_score_by_risk"] = _int_keys(qual["min_score_by_risk"], "min_score_by_risk")
    pol["quality"]["min_score"] = float(pol["quality"]["min_score"] or 0.0)
    return pol


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _read_csv(path: Path, required: bool = True) -> pd.DataFrame | None:
    if not path.exists():
        if required:
            raise FileNotFoundError(path)
        return None
    df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    df.columns = [c.strip() for c in df.columns]
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()
    return df


def _num(x: Any) -> float | None:
    s = str(x).strip()
    if s == "":
        return None
    return float(s)


def build_triples(instance_dir: Path, policy: dict) -> dict:
    """Read the CSVs and compute the eligible triples of spec section 4.

    Returns a dict with ``demands`` {(e, s): info}, ``triples`` {(e, s, a): info},
    ``agencies`` {a: info}, ``districts`` {d: info}.
    """
    d = Path(instance_dir)
    districts_df = _read_csv(d / "districts.csv")
    services_df = _read_csv(d / "services.csv")
    ent_df = _read_csv(d / "enterprises.csv")
    dem_df = _read_csv(d / "demands.csv")
    ag_df = _read_csv(d / "agencies.csv")
    bids_df = _read_csv(d / "bids.csv")
    quotes_df = _read_csv(d / "quotes.csv", required=False)
    conf_df = _read_csv(d / "conflicts.csv", required=False)
    fund_df = _read_csv(d / "funding.csv", required=False)

    districts: dict[str, dict] = {}
    for r in districts_df.to_dict("records"):
        cap = _num(r.get("budget_cap", ""))
        districts[r["district_id"]] = {"budget_cap": cap, "weight_total": 0.0}

    rate = {r["service_id"]: float(r["reference_rate"]) for r in services_df.to_dict("records")}

    ent = {}
    for r in ent_df.to_dict("records"):
        ent[r["enterprise_id"]] = {
            "district": r["district_id"],
            "sector": r["sector"],
            "risk": int(float(r["risk_level"])),
        }
        districts.setdefault(r["district_id"], {"budget_cap": None, "weight_total": 0.0})

    weights = policy["coverage"]["weights"]
    mandatory = set(policy["coverage"]["mandatory_levels"])
    shares = policy["copay"]["share_by_risk"]
    demands: dict[tuple[str, str], dict] = {}
    has_weight_col = "weight" in dem_df.columns
    for r in dem_df.to_dict("records"):
        e, s = r["enterprise_id"], r["service_id"]
        info = ent[e]
        w = _num(r["weight"]) if has_weight_col else None
        if w is None:
            w = float(weights[info["risk"]])
        pdays = float(r["person_days"])
        demands[(e, s)] = {
            "weight": w,
            "person_days": pdays,
            "district": info["district"],
            "sector": info["sector"],
            "risk": info["risk"],
            "mandatory": info["risk"] in mandatory,
            "ref_cost": pdays * rate[s],
        }
        districts[info["district"]]["weight_total"] += w

    agencies: dict[str, dict] = {}
    for r in ag_df.to_dict("records"):
        dist = r["districts"].strip()
        if dist == "*":
            serves = None  # all
        else:
            serves = {x.strip() for x in dist.split(";") if x.strip() != ""}
        cap = _num(r["capacity_days"])
        if cap is None:
            raise ValueError(f"agencies.csv: agency {r['agency_id']} has no capacity_days")
        agencies[r["agency_id"]] = {
            "status": r["status"].strip().lower(),
            "quality": float(r["quality"]),
            "capacity": cap,
            "serves": serves,
        }

    # bids: (a, s, sector) -> day_rate (lowest if an agency repeats an offer)
    bid_rate: dict[tuple[str, str, str], float] = {}
    for r in bids_df.to_dict("records"):
        key = (r["agency_id"], r["service_id"], r["sector"])
        v = float(r["day_rate"])
        bid_rate[key] = min(v, bid_rate.get(key, math.inf))

    # quotes: (a, e, s) -> (price, load) (lowest price if repeated)
    quote: dict[tuple[str, str, str], tuple[float, float | None]] = {}
    if quotes_df is not None:
        for r in quotes_df.to_dict("records"):
            key = (r["agency_id"], r["enterprise_id"], r["service_id"])
            price = float(r["price"])
            load = _num(r.get("person_days", ""))
            if key not in quote or price < quote[key][0]:
                quote[key] = (price, load)

    conflicts = set()
    if conf_df is not None:
        for r in conf_df.to_dict("records"):
            conflicts.add((r["agency_id"], r["enterprise_id"]))

    min_score = policy["quality"]["min_score"]
    by_risk = policy["quality"]["min_score_by_risk"]
    floor = float(policy["price"]["floor_ratio"])
    ceil = float(policy["price"]["ceiling_ratio"])

    triples: dict[tuple[str, str, str], dict] = {}
    for (e, s), dm in demands.items():
        for a, ag in agencies.items():
            q = quote.get((a, e, s))
            b = bid_rate.get((a, s, dm["sector"]))
            if q is None and b is None:
                continue
            if ag["status"] == "active":
                pass
            elif ag["status"] == "probation" and dm["risk"] <= 2:
                pass
            else:
                continue
            if ag["quality"] < min_score:
                continue
            if dm["risk"] in by_risk and ag["quality"] < by_risk[dm["risk"]]:
                continue
            if ag["serves"] is not None and dm["district"] not in ag["serves"]:
                continue
            if (a, e) in conflicts:
                continue
            if q is not None:
                cost = q[0]
                load = q[1] if q[1] is not None else dm["person_days"]
            else:
                cost = dm["person_days"] * b
                load = dm["person_days"]
            ref = dm["ref_cost"]
            tol = PRICE_TOL * max(1.0, abs(ref))
            if cost < floor * ref - tol or cost > ceil * ref + tol:
                continue
            share = shares.get(dm["risk"], 0.0)
            gov = round(cost * (1 - share), 2) if share > 0 else cost
            triples[(e, s, a)] = {
                "cost": cost,
                "gov": gov,
                "load": load,
                "quality": ag["quality"],
                "weight": dm["weight"],
                "district": dm["district"],
            }
    # funding sources: amount and, per demand, whether the source's scope covers it
    sources: dict[str, dict] = {}
    if fund_df is not None:
        for r in fund_df.to_dict("records"):
            scope = {}
            for col in ("districts", "sectors", "services", "risk_levels"):
                text = r[col].strip()
                scope[col] = None if text == "*" else {
                    v.strip() for v in text.split(";") if v.strip()}
            pays = set()
            for (e, s), dm in demands.items():
                if all(vals is None or key in vals for vals, key in (
                        (scope["districts"], dm["district"]), (scope["sectors"], dm["sector"]),
                        (scope["services"], s), (scope["risk_levels"], str(dm["risk"])))):
                    pays.add((e, s))
            sources[r["source_id"]] = {"amount": float(r["amount"]), "pays": pays}
    return {"demands": demands, "triples": triples, "agencies": agencies, "districts": districts,
            "sources": sources if fund_df is not None else None}


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------


def _var(lp: pulp.LpProblem, name: str) -> pulp.LpVariable:
    """A binary variable (PuLP >= 3.3 API when present, the classic constructor otherwise)."""
    if hasattr(lp, "add_variable"):
        return lp.add_variable(name, 0, 1, cat=pulp.LpBinary)
    return pulp.LpVariable(name, cat=pulp.LpBinary)


def _n_constraints(lp: pulp.LpProblem) -> int:
    cons = lp.constraints
    return len(cons()) if callable(cons) else len(cons)


def _make_solver(time_limit: float, mip_gap: float):
    tl = max(float(time_limit), 0.01)
    try:
        import highspy  # noqa: F401

        solver = pulp.HiGHS(msg=False, timeLimit=tl, gapRel=mip_gap)
        if solver.available():
            return solver, "highs"
    except Exception:  # pragma: no cover - highspy missing or broken
        pass
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=tl, gapRel=mip_gap), "cbc"


def _solve_level(lp: pulp.LpProblem, time_limit: float, mip_gap: float) -> dict:
    """Solve ``lp`` and report honestly: status optimal / feasible / infeasible / no_solution."""
    solver, name = _make_solver(time_limit, mip_gap)
    t0 = time.perf_counter()
    err = None
    try:
        lp.solve(solver)
    except Exception as exc:  # e.g. a HiGHS status PuLP does not map (memory limit)
        err = repr(exc)
    secs = time.perf_counter() - t0
    out = {"solver": name, "seconds": secs, "bound": None, "gap": None}
    if name == "highs" and getattr(lp, "solverModel", None) is not None:
        import highspy

        h = lp.solverModel
        ms = h.getModelStatus()
        info = h.getInfo()
        has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
        MS = highspy.HighsModelStatus
        out["raw_status"] = h.modelStatusToString(ms)
        if ms == MS.kOptimal:
            status = "optimal"
        elif ms in (MS.kInfeasible, MS.kUnboundedOrInfeasible):
            status = "infeasible"
        elif has_sol:
            status = "feasible"  # time limit, interrupt, memory ... with an incumbent
        else:
            status = "no_solution"
        if has_sol:
            # PuLP hands HiGHS the negated objective when maximising
            sign = -1.0 if lp.sense == pulp.LpMaximize else 1.0
            out["bound"] = sign * float(info.mip_dual_bound)
            out["gap"] = float(info.mip_gap)
    else:
        st = lp.status
        sol = lp.sol_status
        out["raw_status"] = f"{pulp.LpStatus.get(st)} / solution {sol}"
        if st == pulp.LpStatusInfeasible or sol == pulp.LpSolutionInfeasible:
            status = "infeasible"
        elif sol == pulp.LpSolutionOptimal and st == pulp.LpStatusOptimal:
            status = "optimal"
        elif sol == pulp.LpSolutionIntegerFeasible:
            status = "feasible"
        else:
            status = "no_solution"
    if err is not None:
        out["error"] = err
        if status == "optimal":  # cannot trust it
            status = "feasible"
    out["status"] = status
    if status in ("optimal", "feasible"):
        out["value"] = pulp.value(lp.objective)
    else:
        out["value"] = None
    return out


def solve_baseline(
    instance_dir: Path,
    budget: float | None = None,
    time_limit: float = 600,
    mip_gap: float = 1e-4,
    overrides: dict | None = None,
    first_level_only: bool = False,
) -> dict:
    """Solve the instance lexicographically with a plain PuLP model.

    ``time_limit`` is for the whole run (each level gets what is left); ``mip_gap`` is the
    relative gap at each level. ``budget`` overrides budget.total, ``overrides`` is merged into
    the policy section by section, e.g. ``{"anti_monopoly": {"max_share_in_district": None}}``.
    ``first_level_only``: the served weight alone (a coverage frontier's reference).
    """
    t_start = time.perf_counter()
    instance_dir = Path(instance_dir)
    policy = load_policy(instance_dir, overrides, budget)
    data = build_triples(instance_dir, policy)
    history = read_history(instance_dir, policy, data)
    demands, triples = data["demands"], data["triples"]
    agencies, districts = data["agencies"], data["districts"]
    am = policy["anti_monopoly"]

    result: dict[str, Any] = {
        "status": None,
        "coverage": 0.0,
        "quality": 0.0,
        "cost": 0.0,
        "assignment": {},
        "seconds": 0.0,
        "levels": [],
        "n_triples": len(triples),
        "n_vars": 0,
        "n_constraints": 0,
        "reasons": [],
    }

    def finish(status: str) -> dict:
        result["status"] = status
        result["seconds"] = time.perf_counter() - t_start
        return result

    # ---------------- model ----------------
    lp = pulp.LpProblem("allocator_baseline", pulp.LpMaximize)
    keys = sorted(triples)
    x = {k: _var(lp, f"x_{i}") for i, k in enumerate(keys)}

    by_demand: dict[tuple, list] = defaultdict(list)
    by_agency: dict[str, list] = defaultdict(list)
    by_district: dict[str, list] = defaultdict(list)
    by_ad: dict[tuple, list] = defaultdict(list)
    for k in keys:
        e, s, a = k
        dd = triples[k]["district"]
        by_demand[(e, s)].append(k)
        by_agency[a].append(k)
        by_district[dd].append(k)
        by_ad[(a, dd)].append(k)

    def cost_expr(ks):
        return pulp.lpSum(triples[k]["cost"] * x[k] for k in ks)

    def gov_expr(ks):
        return pulp.lpSum(triples[k]["gov"] * x[k] for k in ks)

    reasons = result["reasons"]

    def add(expr_terms: list, constr, name: str, const_ok: bool | None = None):
        """Add a constraint; one with no variable is checked directly instead."""
        if not expr_terms:
            if not const_ok:
                reasons.append(name)
            return
        lp.addConstraint(constr, name)

    # at most one agency per demand; mandatory demands served exactly once
    for i, ((e, s), dm) in enumerate(sorted(demands.items())):
        ks = by_demand.get((e, s), [])
        if dm["mandatory"]:
            add(ks, pulp.lpSum(x[k] for k in ks) == 1, f"mandatory_{e}|{s}", const_ok=False)
        elif len(ks) > 1:
            lp.addConstraint(pulp.lpSum(x[k] for k in ks) <= 1, f"one_{i}")

    # total budget (of the government's part)
    total = policy["budget"]["total"]
    if total is not None:
        add(keys, gov_expr(keys) <= total, "budget", const_ok=total >= 0)

    # district budget caps
    for dname, dinfo in sorted(districts.items()):
        cap = dinfo["budget_cap"]
        if cap is not None:
            ks = by_district.get(dname, [])
            add(ks, gov_expr(ks) <= cap, f"budget_cap_{dname}", const_ok=cap >= 0)

    # funding: per triple and source that may pay for it, the amount paid
    sources = data["sources"]
    if sources is not None:
        pays_for: dict[str, list] = defaultdict(list)
        for i, k in enumerate(keys):
            e, s, _a = k
            ys = []
            for sid, src in sources.items():
                if (e, s) in src["pays"]:
                    y = lp.add_variable(f"y_{i}_{sid}", 0) if hasattr(lp, "add_variable") \
                        else pulp.LpVariable(f"y_{i}_{sid}", 0)
                    ys.append(y)
                    pays_for[sid].append(y)
            lp.addConstraint(pulp.lpSum(ys) - triples[k]["gov"] * x[k] == 0, f"paid_{i}")
        for sid, src in sorted(sources.items()):
            if pays_for[sid]:
                lp.addConstraint(pulp.lpSum(pays_for[sid]) <= src["amount"], f"fund_{sid}")

    # agency capacity
    for a, ks in sorted(by_agency.items()):
        lp.addConstraint(
            pulp.lpSum(triples[k]["load"] * x[k] for k in ks) <= agencies[a]["capacity"],
            f"capacity_{a}",
        )

    # min district ratio (district weight = all its demands, eligible or not)
    ratio = policy["coverage"]["min_district_ratio"]
    if ratio > 0:
        for dname, dinfo in sorted(districts.items()):
            need = ratio * dinfo["weight_total"]
            ks = by_district.get(dname, [])
            add(
                ks,
                pulp.lpSum(triples[k]["weight"] * x[k] for k in ks) >= need,
                f"district_ratio_{dname}",
                const_ok=need <= 0,
            )

    # max share of an agency in a district's spend
    share = am.get("max_share_in_district")
    if share is not None and float(share) < 1.0:
        share = float(share)
        for (a, dname), ks in sorted(by_ad.items()):
            lp.addConstraint(
                cost_expr(ks) - share * cost_expr(by_district[dname]) <= 0, f"share_{a}|{dname}"
            )

    # city-wide share
    cshare = am.get("max_share_in_city")
    if cshare is not None and float(cshare) < 1.0:
        cshare = float(cshare)
        for a, ks in sorted(by_agency.items()):
            lp.addConstraint(cost_expr(ks) - cshare * cost_expr(keys) <= 0, f"city_share_{a}")

    # agency-active-in-district binaries (only when a rule needs them)
    kmin = int(am.get("min_agencies_per_district") or 0)
    maxd = am.get("max_districts_per_agency")
    y = {}
    if kmin > 0 or maxd is not None:
        for j, ((a, dname), ks) in enumerate(sorted(by_ad.items())):
            y[(a, dname)] = v = _var(lp, f"y_{j}")
            lp.addConstraint(pulp.lpSum(x[k] for k in ks) <= len(ks) * v, f"y_up_{j}")
            lp.addConstraint(v <= pulp.lpSum(x[k] for k in ks), f"y_lo_{j}")
    if kmin > 0:
        for j, (dname, ks) in enumerate(sorted(by_district.items())):
            z = _var(lp, f"z_{j}")
            lp.addConstraint(pulp.lpSum(x[k] for k in ks) <= len(ks) * z, f"z_up_{j}")
            lp.addConstraint(z <= pulp.lpSum(x[k] for k in ks), f"z_lo_{j}")
            lp.addConstraint(
                pulp.lpSum(y[(a, dd)] for (a, dd) in y if dd == dname) >= kmin * z,
                f"min_agencies_{dname}",
            )
    if maxd is not None:
        per_agency = defaultdict(list)
        for (a, _dname), v in y.items():
            per_agency[a].append(v)
        for a, vs in sorted(per_agency.items()):
            if len(vs) > int(maxd):
                lp.addConstraint(pulp.lpSum(vs) <= int(maxd), f"max_districts_{a}")

    stability = add_history_rules(lp, x, data, history, policy, reasons)

    result["n_vars"] = len(lp.variables()) if keys else 0
    result["n_constraints"] = _n_constraints(lp)

    if reasons:
        return finish("infeasible")

    # ---------------- levels ----------------
    w_expr = pulp.lpSum(triples[k]["weight"] * x[k] for k in keys)
    q_expr = pulp.lpSum(triples[k]["weight"] * triples[k]["quality"] * x[k] for k in keys)
    c_expr = gov_expr(keys)

    if not keys:  # nothing eligible, every constraint was checked above: empty plan
        result["levels"] = [
            {"level": n, "status": "optimal", "value": 0.0, "seconds": 0.0}
            for n in ("coverage", "quality", "cost")
        ]
        return finish("optimal")

    levels = [
        ("coverage", pulp.LpMaximize, w_expr),
        ("quality", pulp.LpMaximize, q_expr),
        ("cost", pulp.LpMinimize, c_expr),
    ]
    if stability is not None and len(stability) > 0:  # with incumbents: after coverage
        levels.insert(1, ("stability", pulp.LpMaximize, stability))
    if first_level_only:
        levels = levels[:1]
    deadline = t_start + float(time_limit)
    best: dict | None = None  # x values of the last level that produced a solution
    overall = "optimal"
    for n, (lname, sense, expr) in enumerate(levels):
        remaining = deadline - time.perf_counter()
        if remaining <= 0 and best is not None:
            overall = "feasible"
            result["levels"].append(
                {"level": lname, "status": "skipped", "value": None, "seconds": 0.0}
            )
            continue
        lp.sense = sense
        lp.setObjective(expr)
        rep = _solve_level(lp, max(remaining, 0.01), mip_gap)
        rep["level"] = lname
        result["levels"].append(rep)
        st = rep["status"]
        if st in ("optimal", "feasible"):
            best = {k: (x[k].varValue or 0.0) > 0.5 for k in keys}
            if st == "feasible":
                overall = "feasible"
            v = float(rep["value"])
            tol = FIX_TOL * max(1.0, abs(v))
            if n < len(levels) - 1:
                if sense == pulp.LpMaximize:
                    lp.addConstraint(expr >= v - tol, f"fix_{lname}")
                else:
                    lp.addConstraint(expr <= v + tol, f"fix_{lname}")
        else:
            if n == 0:
                return finish(st)  # infeasible or no_solution
            # a later level failed (time): keep the previous level's plan
            overall = "feasible"
            break

    assert best is not None
    assign = {}
    cov = qual = cost = 0.0
    for k, on in best.items():
        if on:
            e, s, a = k
            assign[(e, s)] = a
            t = triples[k]
            cov += t["weight"]
            qual += t["weight"] * t["quality"]
            cost += t["gov"]
    result.update(assignment=assign, coverage=cov, quality=qual, cost=cost)
    if stability is not None:
        result["stability"] = sum(
            triples[(e, s, a)]["weight"] for (e, s), a in assign.items()
            if history["incumbent"].get((e, s)) == a)
    return finish(overall)


# --------------------------------------------------------------------------------------------
# the planner's year: incumbents, pins, rotation, max_changes, stability (issue 19)
# --------------------------------------------------------------------------------------------


def read_history(instance_dir: Path, policy: dict, data: dict) -> dict:
    """Read incumbents.csv and pins.csv and apply what is eligibility: a forbid pin and
    rotation (an incumbent with years >= max_tenure_years) remove the triple, an assign pin
    removes the demand's other triples. Rows about demands or agencies not in the data are
    ignored (incumbents) or kept to be reported infeasible (an assign pin)."""
    d = Path(instance_dir)
    inc_df = _read_csv(d / "incumbents.csv", required=False)
    pin_df = _read_csv(d / "pins.csv", required=False)
    demands, triples = data["demands"], data["triples"]
    incumbent: dict[tuple[str, str], str] = {}
    years: dict[tuple[str, str], int] = {}
    if inc_df is not None:
        for r in inc_df.to_dict("records"):
            key = (r["enterprise_id"], r["service_id"])
            if key in demands:
                incumbent[key] = r["agency_id"]
                years[key] = int(float(r["years"]))
    assign: dict[tuple[str, str], str] = {}
    forbid: set[tuple[str, str, str]] = set()
    if pin_df is not None:
        for r in pin_df.to_dict("records"):
            key = (r["enterprise_id"], r["service_id"])
            if r["action"].strip().lower() == "assign":
                assign[key] = r["agency_id"]
            else:
                forbid.add((*key, r["agency_id"]))
    limit = policy["continuity"]["max_tenure_years"]
    for (e, s, a) in list(triples):
        if (e, s, a) in forbid or ((e, s) in assign and assign[(e, s)] != a):
            del triples[(e, s, a)]
        elif limit is not None and incumbent.get((e, s)) == a and years[(e, s)] >= int(limit):
            del triples[(e, s, a)]
    return {"incumbent": incumbent, "years": years, "assign": assign, "forbid": forbid}


def add_history_rules(lp: pulp.LpProblem, x: dict, data: dict, history: dict, policy: dict,
                      reasons: list) -> Any:
    """Assign pins (x = 1), max_changes over the demands whose incumbent is still eligible;
    returns the stability expression (served weight kept with its incumbent) when that level
    is on, else None."""
    triples = data["triples"]
    for (e, s), a in sorted(history["assign"].items()):
        if (e, s, a) in x:
            lp.addConstraint(x[(e, s, a)] == 1, f"pin_{e}|{s}|{a}")
        else:
            reasons.append(f"pin_{e}|{s}|{a}")
    kept = [(e, s, a) for (e, s), a in history["incumbent"].items() if (e, s, a) in triples]
    ratio = policy["continuity"]["max_changes"]
    if ratio is not None and kept:
        allowed = math.floor(float(ratio) * len(kept) + 1e-9)
        lp.addConstraint(pulp.lpSum(1 - x[k] for k in kept) <= allowed, "max_changes")
    if not policy["continuity"]["keep_incumbents"] or not history["incumbent"]:
        return None
    return pulp.lpSum(triples[k]["weight"] * x[k] for k in kept)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="allocator baseline (plain lexicographic PuLP model)")
    p.add_argument("instance", type=Path)
    p.add_argument("--budget", type=float, default=None)
    p.add_argument("--time-limit", type=float, default=600)
    p.add_argument("--mip-gap", type=float, default=1e-4)
    p.add_argument("--assignment", action="store_true", help="also print the assignment")
    args = p.parse_args(argv)
    res = solve_baseline(
        args.instance, budget=args.budget, time_limit=args.time_limit, mip_gap=args.mip_gap
    )
    out = {k: v for k, v in res.items() if k != "assignment"}
    out["served"] = len(res["assignment"])
    if args.assignment:
        out["assignment"] = [
            {"enterprise_id": e, "service_id": s, "agency_id": a}
            for (e, s), a in sorted(res["assignment"].items())
        ]
    print(json.dumps(out, indent=2, default=str))
    return 0 if res["status"] in ("optimal", "feasible") else 1


if __name__ == "__main__":
    sys.exit(main())
