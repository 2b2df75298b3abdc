"""Funding sources (funding.csv) and co-payment (copay.share_by_risk), end to end.

Each rule alone on tiny hand-made cases against the brute force (tests/bruteforce.py, which
checks a plan's split by Hall's condition over all sets of sources, sharing no code with the
model); plans against the independent PuLP reference (benchmarks/baseline.py, one variable per
triple and source) on every level, on cities from a small generator written here; the audit
accepting every plan and rejecting one a short source cannot pay for; an infeasible year
naming the short source and its shortfall; validation, what-if runs, the generator.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from bruteforce import brute_force
from click.testing import CliRunner
from instance_builder import (
    agency,
    bid,
    demand,
    district,
    enterprise,
    plan,
    run_check,
    solve_folder,
    variant,
    write_instance,
)

import allocator
from allocator.cli import main
from allocator.core.errors import InputError
from allocator.core.tables import read_csv
from benchmarks.baseline import solve_baseline

FUNDING_HEADER = ["source_id", "name", "department", "amount", "districts", "sectors",
                  "services", "risk_levels"]


def source(source_id: str, amount: float, districts: str = "*", sectors: str = "*",
           services: str = "*", risk_levels: str = "*", name: str | None = None,
           department: str = "") -> dict:
    return {"source_id": source_id, "name": name if name is not None else f"{source_id} fund",
            "department": department, "amount": amount, "districts": districts,
            "sectors": sectors, "services": services, "risk_levels": risk_levels}


def write_funding(path: Path, rows: list[dict]) -> Path:
    with (Path(path) / "funding.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, FUNDING_HEADER)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in FUNDING_HEADER})
    return Path(path)


def funded_instance(path: Path, funding: list[dict], budget: float | None = None,
                    **kw) -> Path:
    """write_instance + funding.csv; budget.total left out unless given."""
    changes = kw.pop("policy_changes", {}) or {}
    p = write_instance(path, policy_changes=changes, **kw)
    raw = yaml.safe_load((p / "policy.yaml").read_text(encoding="utf-8"))
    if budget is None:
        raw.pop("budget", None)
    else:
        raw["budget"] = {"total": budget}
    (p / "policy.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return write_funding(p, funding)


def assert_brute_optimum(path: Path, work: Path, expected: frozenset | None = None,
                         solver: str | None = None):
    """The solver's levels equal the brute force's optimum (and its plan, when unique and
    expected is given); the audit accepts the written results."""
    inst = allocator.load_instance(path)
    bf = brute_force(inst)
    assert bf.feasible
    if expected is not None:
        assert bf.plan == expected, "the hand-made expectation disagrees with the brute force"
    plan_ = allocator.solve(inst, solver=solver)
    assert plan_.status.value == "optimal"
    assert plan_.coverage == pytest.approx(bf.coverage, rel=1e-9)
    assert plan_.quality == pytest.approx(bf.quality, rel=1e-9)
    assert plan_.cost == pytest.approx(bf.cost, rel=1e-9, abs=1e-6)
    a = plan_.assignments
    got = frozenset(zip(a["enterprise_id"], a["service_id"], a["agency_id"], strict=True))
    if expected is not None:
        assert got == expected
    out = Path(work) / f"res-{path.name}-{solver or 'auto'}"
    plan_.write(out, force=True)
    assert run_check(path, out) == []
    return plan_, bf


# ------------------------------------------------------------------------------------------
# each rule alone, against the brute force
# ------------------------------------------------------------------------------------------

def two_sectors(path: Path, funding: list[dict], budget: float | None = None,
                **kw) -> Path:
    """E1 (chem) and E2 (build) in D1 need S1 for 5 person-days; A1 bids 100 a day in both
    sectors (cost 500 each), A2 (lower quality) 110."""
    return funded_instance(
        path, funding, budget,
        enterprises=[enterprise("E1", "D1", 2, "chem"), enterprise("E2", "D1", 2, "build")],
        demands=[demand("E1", "S1", 5), demand("E2", "S1", 5)],
        agencies=[agency("A1", 90), agency("A2", 70)],
        bids=[bid("A1", 100, sector="chem"), bid("A1", 100, sector="build"),
              bid("A2", 110, sector="chem"), bid("A2", 110, sector="build")],
        services=[{"service_id": "S1", "name": "S1", "reference_rate": 100}], **kw)


def test_a_source_that_alone_may_pay_for_a_demand(tmp_path):
    # F1 pays for chem only, F2 for build only. F2 holds 400 < 500: E2 cannot be served
    # although money is left in F1; with F2 at 500 both are served.
    p = two_sectors(tmp_path / "i", [source("F1", 5000, sectors="chem"),
                                     source("F2", 400, sectors="build")])
    out, _ = assert_brute_optimum(p, tmp_path, plan("E1:A1"))
    un = out.unserved.set_index("enterprise_id")
    assert un.at["E2", "reason"] == "funding"
    q = variant(p, tmp_path / "j")
    write_funding(q, [source("F1", 5000, sectors="chem"), source("F2", 500, sectors="build")])
    assert_brute_optimum(q, tmp_path, plan("E1:A1", "E2:A1"))


def test_two_overlapping_scopes_where_the_split_matters(tmp_path):
    # F1 may pay for chem and build, F2 only for chem, each holds 500: both demands are
    # served only if F2 pays chem and F1 pays build (paying chem from F1 leaves build
    # unpaid). The written split must be that one, and the audit must accept it.
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem;build"),
                                     source("F2", 500, sectors="chem")])
    out, _ = assert_brute_optimum(p, tmp_path, plan("E1:A1", "E2:A1"))
    paid = out.assignments.set_index("enterprise_id")["funded_by"]
    assert paid["E1"] == "F2:500.00" and paid["E2"] == "F1:500.00"
    f = out.funding.set_index("source_id")
    assert f.loc["F1", "used"] == 500 and f.loc["F2", "used"] == 500
    assert f.loc["F1", "left"] == 0 and f.loc["F2", "share_used"] == 1
    # one cent less in F2 and only one of the two can be paid for: coverage drops
    q = variant(p, tmp_path / "j")
    write_funding(q, [source("F1", 500, sectors="chem;build"),
                      source("F2", 499.99, sectors="chem")])
    out2, bf = assert_brute_optimum(q, tmp_path)
    assert out2.coverage == pytest.approx(2) and len(out2.assignments) == 1


def test_narrowest_scope_pays_first(tmp_path):
    # both may pay for everything but F2 covers only D1 (the narrower scope): it pays first,
    # F1 (the whole city) only the rest
    p = two_sectors(tmp_path / "i", [source("F1", 10_000), source("F2", 700, districts="D1")])
    out, _ = assert_brute_optimum(p, tmp_path, plan("E1:A1", "E2:A1"))
    paid = out.assignments.set_index("enterprise_id")["funded_by"]
    assert paid["E1"] == "F2:500.00"
    assert paid["E2"] == "F2:200.00;F1:300.00"
    by = out.funding_by_agency
    assert by.set_index("source_id")["amount"].to_dict() == {"F1": 300.0, "F2": 700.0}


def test_co_payment_makes_a_demand_affordable(tmp_path):
    # budget 800 cannot buy E1's 1000 (A1: 5 days x 200); with a 30 % co-payment at risk 1
    # the government pays 700 and E1 is served, the enterprise paying 300
    kw = dict(enterprises=[enterprise("E1", "D1", 1)], demands=[demand("E1", "S1", 5)],
              agencies=[agency("A1", 90)], bids=[bid("A1", 200)],
              services=[{"service_id": "S1", "name": "S1", "reference_rate": 200}])
    p = write_instance(tmp_path / "i", policy_changes={"budget": {"total": 800}}, **kw)
    assert_brute_optimum(p, tmp_path, frozenset())
    q = write_instance(tmp_path / "j", policy_changes={
        "budget": {"total": 800}, "copay": {"share_by_risk": {1: 0.3}}}, **kw)
    out, _ = assert_brute_optimum(q, tmp_path, plan("E1:A1"))
    row = out.assignments.iloc[0]
    assert (row["cost"], row["government_cost"], row["enterprise_cost"]) == (1000, 700, 300)
    s = out.summary()
    assert (s["cost"], s["contract_value"], s["enterprise_cost"]) == (700, 1000, 300)


def test_cost_level_minimises_government_spend(tmp_path):
    # one of two equal-weight demands fits: X costs 1000 but its enterprise pays half
    # (risk 1), Y costs 800 all paid by the government (risk 2): the least government
    # spend is X (500), although the least contract value is Y
    kw = dict(enterprises=[enterprise("X", "D1", 1), enterprise("Y", "D1", 2)],
              demands=[demand("X", "S1", 5, weight=2), demand("Y", "S1", 4, weight=2)],
              agencies=[agency("A1", 90)], bids=[bid("A1", 200)],
              services=[{"service_id": "S1", "name": "S1", "reference_rate": 200}])
    p = write_instance(tmp_path / "i", policy_changes={
        "budget": {"total": 900}, "copay": {"share_by_risk": {1: 0.5}}}, **kw)
    out, _ = assert_brute_optimum(p, tmp_path, plan("X:A1"))
    assert out.cost == 500


def test_share_caps_and_lots_stay_in_full_contract_value(tmp_path):
    # A1 (quality 90, room for one demand) takes E2 (weight 2), A2 (quality 60) E1, whose
    # enterprise pays half. Share cap 0.6 in the district. Contract values 500 and 500: 50 %
    # each. Counted in government money (500 against 250) A1 would hold 67 %, above the cap,
    # and either way round one agency would: the rule counts full contract values, so both
    # demands are served.
    kw = dict(enterprises=[enterprise("E1", "D1", 1), enterprise("E2", "D1", 2)],
              demands=[demand("E1", "S1", 5), demand("E2", "S1", 5)],
              agencies=[agency("A1", 90, capacity_days=5), agency("A2", 60)],
              bids=[bid("A1", 100), bid("A2", 100)])
    p = write_instance(tmp_path / "i", policy_changes={
        "budget": {"total": 10_000}, "copay": {"share_by_risk": {1: 0.5}},
        "anti_monopoly": {"max_share_in_district": 0.6}}, **kw)
    out, _ = assert_brute_optimum(p, tmp_path, plan("E2:A1", "E1:A2"))
    ag = out.agencies.set_index("agency_id")["contract_value"]
    assert ag["A1"] == 500 and ag["A2"] == 500
    assert out.districts.iloc[0]["government_cost"] == 750


def test_district_caps_hold_with_funding_and_count_the_government_part(tmp_path):
    # D1's cap of 800 admits one of E1, E2 (500 each); with a 50 % co-payment at risk 2 both
    p = two_sectors(tmp_path / "i", [source("F1", 10_000)],
                    districts=[district("D1", budget_cap=800)])
    out, _ = assert_brute_optimum(p, tmp_path)
    assert len(out.assignments) == 1
    q = variant(p, tmp_path / "j", policy_changes={"copay": {"share_by_risk": {2: 0.5}}})
    out, _ = assert_brute_optimum(q, tmp_path, plan("E1:A1", "E2:A1"))
    assert out.summary()["budget"] is None  # budget.total left out: the sources cap it


def test_budget_total_still_caps_the_spend_with_funding(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 10_000)], budget=700)
    out, _ = assert_brute_optimum(p, tmp_path)
    assert len(out.assignments) == 1 and out.cost <= 700


@pytest.mark.parametrize("solver", ["cbc", "cpsat"])
def test_other_backends_split_the_same(tmp_path, solver):
    # pay columns are whole cents for CP-SAT (integer columns only)
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem;build"),
                                     source("F2", 500, sectors="chem")],
                    policy_changes={"copay": {"share_by_risk": {2: 0.25}}})
    assert_brute_optimum(p, tmp_path, plan("E1:A1", "E2:A1"), solver=solver)
    q = variant(p, tmp_path / "j")
    write_funding(q, [source("F1", 300, sectors="chem;build"),
                      source("F2", 374.99, sectors="chem")])
    assert_brute_optimum(q, tmp_path, solver=solver)


def test_model_rows_are_named_by_source_and_scope_group(tmp_path):
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model

    p = two_sectors(tmp_path / "i", [source("S03", 500, sectors="chem;build"),
                                     source("S01", 500, sectors="chem")])
    inst = allocator.load_instance(p)
    m = build_model(inst, compute_eligibility(inst))
    rows = m.lp.row_names()
    assert "funding[S03]" in rows and "funding[S01]" in rows
    assert {"funding_paid[S03;S01]", "funding_paid[S03]"} <= set(rows)
    cols = [c for c in m.lp.var_names() if c.startswith("pay[")]
    # one column per (scope group, source), not per triple: 3, though 4 triples
    assert sorted(cols) == ["pay[S03,S03]", "pay[S03;S01,S01]", "pay[S03;S01,S03]"]


# ------------------------------------------------------------------------------------------
# the audit
# ------------------------------------------------------------------------------------------

def test_check_rejects_a_plan_a_short_source_cannot_pay_for(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem;build"),
                                     source("F2", 500, sectors="chem", name="Chem fund")])
    out = solve_folder(p, tmp_path)
    assert out.status == "optimal"
    short = variant(p, tmp_path / "short")
    write_funding(short, [source("F1", 500, sectors="chem;build"),
                          source("F2", 380, sectors="chem", name="Chem fund")])
    found = run_check(short, out.results_dir)
    assert any(f.startswith("funding: assignments.csv") and "120.00 short" in f
               for f in found), found
    assert any("funding_split" in f and "F2" in f for f in found)
    runner = CliRunner()
    res = runner.invoke(main, ["check", str(short), str(out.results_dir)])
    assert res.exit_code == 1 and "FAIL" in res.output


def test_check_rejects_a_written_split_a_scope_does_not_allow(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem;build"),
                                     source("F2", 500, sectors="chem")])
    out = solve_folder(p, tmp_path)
    a = read_csv(out.results_dir / "assignments.csv")
    a.loc[a["enterprise_id"] == "E2", "funded_by"] = "F2:500.00"  # F2 may not pay for build
    a.loc[a["enterprise_id"] == "E1", "funded_by"] = "F1:400.00"  # and 100 is missing
    a.to_csv(out.results_dir / "assignments.csv", index=False)
    found = run_check(p, out.results_dir)
    assert any("source F2 may not pay for this demand" in f for f in found), found
    assert any("funded_by adds up to 400.00" in f for f in found), found
    assert any(f.startswith("funding_totals: funding.csv") for f in found), found


def test_check_without_split_columns_and_with_a_wrong_government_cost(tmp_path):
    p = write_instance(tmp_path / "i", enterprises=[enterprise("E1", "D1", 1)],
                       demands=[demand("E1", "S1", 5)], agencies=[agency("A1", 90)],
                       bids=[bid("A1", 1000)],
                       policy_changes={"copay": {"share_by_risk": {1: 0.2}}})
    out = solve_folder(p, tmp_path)
    a = read_csv(out.results_dir / "assignments.csv")
    a.loc[0, "government_cost"] = "5000"
    a.to_csv(out.results_dir / "assignments.csv", index=False)
    found = run_check(p, out.results_dir)
    assert any(f.startswith("payments: assignments.csv, row 2") and "recomputed 4000.00" in f
               for f in found), found


# ------------------------------------------------------------------------------------------
# an independent small generator: plans equal the PuLP reference on every level
# ------------------------------------------------------------------------------------------

def small_city(path: Path, seed: int, copay: bool = True, tight: float = 0.5) -> Path:
    """A random small city with overlapping funding scopes (not allocator generate): 2-3
    districts and sectors, 6-9 enterprises, 3-4 agencies, 2-4 sources, co-payment by risk,
    budget.total sometimes left out."""
    rng = np.random.default_rng(seed)
    n_d = int(rng.integers(2, 4))
    ds = [f"D{k + 1}" for k in range(n_d)]
    sectors = ["chem", "build", "port"][: int(rng.integers(2, 4))]
    services = [{"service_id": "S1", "name": "inspection", "reference_rate": 100},
                {"service_id": "S2", "name": "training", "reference_rate": 60}]
    ents, dems = [], []
    for k in range(int(rng.integers(6, 10))):
        e = f"E{k + 1}"
        ents.append(enterprise(e, str(rng.choice(ds)), int(rng.integers(1, 5)),
                               str(rng.choice(sectors))))
        for s in rng.choice(["S1", "S2"], int(rng.integers(1, 3)), replace=False):
            dems.append(demand(e, str(s), int(rng.integers(2, 9))))
    sectors = [x for x in sectors if any(e["sector"] == x for e in ents)]  # as present
    ags, bids = [], []
    for k in range(int(rng.integers(3, 5))):
        a = f"A{k + 1}"
        area = "*" if rng.random() < 0.6 else ";".join(
            sorted(rng.choice(ds, int(rng.integers(1, n_d + 1)), replace=False)))
        ags.append(agency(a, int(rng.integers(62, 98)), int(rng.integers(15, 45)),
                          districts=area))
        for s, rate in (("S1", 100), ("S2", 60)):
            for sec in sectors:
                if rng.random() < 0.75:
                    bids.append(bid(a, round(rate * float(rng.uniform(0.85, 1.3))), s, sec))
    ref = sum(d["person_days"] * (100 if d["service_id"] == "S1" else 60) for d in dems)
    funding = [source("F1", round(float(rng.uniform(0.1, 0.3)) * ref * tight * 2),
                      name="City special fund", department="Emergency Management Bureau")]
    for k in range(int(rng.integers(1, 4))):
        scope = {"districts": "*", "sectors": "*", "services": "*", "risk_levels": "*"}
        dim = str(rng.choice(list(scope)))
        if dim == "districts":
            scope[dim] = ";".join(sorted(rng.choice(ds, int(rng.integers(1, n_d)),
                                                    replace=False)))
        elif dim == "sectors":
            scope[dim] = ";".join(sorted(rng.choice(sectors, int(rng.integers(1, len(
                sectors) + 1)), replace=False)))
        elif dim == "services":
            scope[dim] = str(rng.choice(["S1", "S2"]))
        else:
            scope[dim] = ";".join(str(x) for x in sorted(rng.choice(
                [1, 2, 3, 4], int(rng.integers(1, 3)), replace=False)))
        funding.append(source(f"F{k + 2}", round(float(rng.uniform(0.1, 0.35)) * ref * tight),
                              name=f"Earmarked fund {k + 2}", department=f"Dept {k + 2}",
                              **scope))
    changes: dict = {"coverage": {"mandatory_levels": []},
                     "anti_monopoly": {"max_share_in_district": None if rng.random() < 0.5
                                       else 0.7}}
    if copay:
        changes["copay"] = {"share_by_risk": {1: 0.3, 2: 0.15}}
    budget = None if rng.random() < 0.5 else round(0.45 * ref)
    changes["solver"] = {"mip_gap": 0.0, "time_limit": 30}
    return funded_instance(path, funding, budget, enterprises=ents, demands=dems,
                           agencies=ags, bids=bids, services=services, policy_changes=changes)


@pytest.mark.parametrize("seed", range(10))
def test_plans_equal_the_reference_on_every_level(tmp_path, seed):
    p = small_city(tmp_path / f"city{seed}", seed, copay=seed % 3 != 0)
    ref = solve_baseline(p, time_limit=60, mip_gap=0.0)
    inst = allocator.load_instance(p)
    got = allocator.solve(inst)
    assert ref["status"] == "optimal" and got.status.value == "optimal"
    assert got.coverage == pytest.approx(ref["coverage"], rel=1e-7, abs=1e-7)
    assert got.quality == pytest.approx(ref["quality"], rel=1e-7, abs=1e-7)
    assert got.cost == pytest.approx(ref["cost"], rel=1e-7, abs=1e-4)
    out = tmp_path / "res"
    got.write(out)
    assert run_check(p, out) == []
    s = got.summary()["funding"]
    assert s["unpaid"] == 0 and s["used"] == pytest.approx(got.cost, abs=0.01)


@pytest.mark.parametrize("seed", [3, 5])
def test_other_backends_equal_the_reference(tmp_path, seed):
    p = small_city(tmp_path / f"city{seed}", seed)
    ref = solve_baseline(p, time_limit=60, mip_gap=0.0)
    inst = allocator.load_instance(p)
    for solver in ("cbc", "cpsat"):
        got = allocator.solve(inst, solver=solver)
        assert got.status.value == "optimal", solver
        assert (got.coverage, got.quality) == pytest.approx((ref["coverage"], ref["quality"]),
                                                            rel=1e-7)
        assert got.cost == pytest.approx(ref["cost"], abs=1e-4)


@pytest.mark.parametrize("seed", [11, 12])
def test_small_cities_against_the_brute_force(tmp_path, seed):
    # fewer demands, so that every plan can be enumerated
    p = small_city(tmp_path / f"city{seed}", seed)
    dem = pd.read_csv(p / "demands.csv")
    keep = dem.iloc[:6]
    keep.to_csv(p / "demands.csv", index=False)
    ents = pd.read_csv(p / "enterprises.csv")
    ents[ents["enterprise_id"].isin(keep["enterprise_id"])].to_csv(p / "enterprises.csv",
                                                                    index=False)
    bids = pd.read_csv(p / "bids.csv")
    bids[bids["sector"].isin(ents["sector"])].to_csv(p / "bids.csv", index=False)
    assert_brute_optimum(p, tmp_path)


# ------------------------------------------------------------------------------------------
# an infeasible year names the short source and its shortfall
# ------------------------------------------------------------------------------------------

def transport_year(path: Path, transport_fund: float, capacity: float = 100) -> Path:
    """Three major-risk transport enterprises (mandatory) only the transport bureau's fund
    may pay for, cheapest offers 4,000 + 3,000 + 2,500 = 9,500; a city fund for the rest."""
    return funded_instance(
        path,
        [source("S01", 50_000, sectors="build", name="City special fund",
                department="Emergency Management Bureau"),
         source("S03", transport_fund, sectors="transport", name="Transport bureau fund",
                department="Transport Bureau")],
        enterprises=[enterprise("T1", "D1", 4, "transport"), enterprise("T2", "D2", 4,
                                                                         "transport"),
                     enterprise("T3", "D1", 4, "transport"), enterprise("B1", "D1", 2,
                                                                         "build")],
        demands=[demand("T1", "S1", 40), demand("T2", "S1", 30), demand("T3", "S1", 25),
                 demand("B1", "S1", 10)],
        agencies=[agency("A1", 90, capacity_days=capacity), agency("A2", 95)],
        bids=[bid("A1", 100, sector="transport"), bid("A2", 120, sector="transport"),
              bid("A1", 100, sector="build")],
        districts=[district("D1"), district("D2")],
        services=[{"service_id": "S1", "name": "S1", "reference_rate": 100}],
        policy_changes={"coverage": {"mandatory_levels": [4]}})


def test_infeasible_year_names_the_short_source_and_its_shortfall(tmp_path):
    p = transport_year(tmp_path / "i", 7_000)
    out = solve_folder(p, tmp_path)
    assert out.status == "infeasible"
    d = out.result.diagnosis
    row = d[d["rule"] == "funding"].iloc[0]
    assert row["subject"] == "S03"
    assert (row["required"], row["available"], row["shortfall"]) == (9_500, 7_000, 2_500)
    assert row["message"].startswith("Transport bureau fund (S03) is 2,500 short of the 9,500 "
                                     "needed for the major-risk transport enterprises it alone "
                                     "may pay for")
    # with exactly what it needs the year is feasible
    q = variant(p, tmp_path / "j")
    f = pd.read_csv(q / "funding.csv")
    f.loc[f["source_id"] == "S03", "amount"] = 9_500
    f.to_csv(q / "funding.csv", index=False)
    assert solve_folder(q, tmp_path).status == "optimal"


def test_shortfall_when_the_cheapest_offers_cannot_all_be_taken(tmp_path):
    # A1 (the cheap one) has capacity for T1 or T2+T3 only: the least the fund needs with
    # every rule held is 4,000 x 1.2 + 3,000 + 2,500 = 10,300 (T1 at A2), not 9,500
    p = transport_year(tmp_path / "i", 7_000, capacity=60)
    res = allocator.solve(allocator.load_instance(p))
    row = res.diagnosis[res.diagnosis["rule"] == "funding"].iloc[0]
    assert row["subject"] == "S03"
    assert row["required"] == pytest.approx(10_300, rel=0.01)
    assert row["shortfall"] == pytest.approx(3_300, rel=0.01)
    assert "with every other rule held" in row["message"]


def test_mandatory_demand_no_source_may_pay_for(tmp_path):
    p = transport_year(tmp_path / "i", 50_000)
    f = pd.read_csv(p / "funding.csv")
    f.loc[f["source_id"] == "S03", "districts"] = "D1"  # T2 is in D2: nobody may pay
    f.to_csv(p / "funding.csv", index=False)
    res = allocator.solve(allocator.load_instance(p))
    assert res.status.value == "infeasible"
    rules = set(res.diagnosis["rule"])
    assert "mandatory_no_funding_source" in rules
    assert "T2/S1" in res.diagnosis.set_index("rule").at["mandatory_no_funding_source",
                                                           "subject"]


def least_amount_by_reference(path: Path, sid: str, hi: float) -> float:
    """The least amount of source sid with a plan, by bisection on the PuLP reference."""
    f = pd.read_csv(path / "funding.csv", keep_default_na=False)
    f["amount"] = f["amount"].astype(float)
    lo = 0.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        f.loc[f["source_id"] == sid, "amount"] = mid
        f.to_csv(path / "funding.csv", index=False)
        ok = solve_baseline(path, time_limit=30)["status"] in ("optimal", "feasible")
        lo, hi = (lo, mid) if ok else (mid, hi)
        if hi - lo <= 1e-4 * hi:
            break
    return hi


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_random_infeasible_years_shortfall_within_one_percent(tmp_path, seed):
    # a random city whose major-risk demands of one sector only an earmarked fund may pay
    # for, that fund cut to half of what it needs; the named shortfall is checked against
    # the least amount found by bisection on the independent reference
    rng = np.random.default_rng(seed)
    p = small_city(tmp_path / "i", seed, tight=5.0)
    ents = pd.read_csv(p / "enterprises.csv")
    ents.loc[rng.choice(len(ents), 3, replace=False), "risk_level"] = 4
    ents.loc[ents["risk_level"] == 4, "sector"] = "chem"
    ents.to_csv(p / "enterprises.csv", index=False)
    raw = yaml.safe_load((p / "policy.yaml").read_text())
    raw["coverage"]["mandatory_levels"] = [4]
    raw["anti_monopoly"]["max_share_in_district"] = None  # only the funding may fail
    raw.pop("budget", None)
    (p / "policy.yaml").write_text(yaml.safe_dump(raw))
    bids = pd.read_csv(p / "bids.csv")
    extra = pd.DataFrame([{"agency_id": a, "service_id": s, "sector": "chem",
                           "day_rate": r} for a, s, r in (("A1", "S1", 110), ("A1", "S2", 66),
                                                          ("A2", "S1", 120), ("A2", "S2", 70))])
    bids = pd.concat([bids, extra]).drop_duplicates(["agency_id", "service_id", "sector"])
    bids.to_csv(p / "bids.csv", index=False)
    ags = pd.read_csv(p / "agencies.csv")
    ags["quality"], ags["districts"] = 90, "*"
    ags.to_csv(p / "agencies.csv", index=False)
    f = pd.read_csv(p / "funding.csv", keep_default_na=False)
    f["risk_levels"] = "1;2;3"  # the major-risk (all chem) demands: only FX may pay
    f["amount"] = f["amount"].astype(float)
    f.loc[len(f)] = ["FX", "Chemical industry fund", "Industry Bureau", 1.0, "*", "chem", "*",
                     "4"]
    f.to_csv(p / "funding.csv", index=False)
    need = least_amount_by_reference(p, "FX", hi=1e6)
    assert 0 < need < 1e5, "the reference found no plan at any amount"
    f = pd.read_csv(p / "funding.csv", keep_default_na=False)
    f.loc[f["source_id"] == "FX", "amount"] = round(need / 2, 2)
    f.to_csv(p / "funding.csv", index=False)
    res = allocator.solve(allocator.load_instance(p))
    assert res.status.value == "infeasible"
    d = res.diagnosis
    row = d[(d["rule"] == "funding") & (d["subject"] == "FX")].iloc[0]
    assert row["required"] == pytest.approx(need, rel=0.01)
    assert row["shortfall"] == pytest.approx(need - round(need / 2, 2), rel=0.01)
    assert row["message"].startswith("Chemical industry fund (FX) is ")


def test_elastic_names_a_source_counting_cannot_see(tmp_path):
    # nothing is mandatory, but D1 must serve half its weight: B1 (build, D1) can only be
    # paid by S02, which holds 900 of the 1,000 it costs. (The elastic re-solve names the
    # least violation: 100 short is less than leaving D1's coverage unmet.)
    p = funded_instance(
        tmp_path / "i", [source("S01", 10_000, sectors="chem", name="City fund"),
                         source("S02", 900, sectors="build", name="Building fund")],
        enterprises=[enterprise("B1", "D1", 3, "build"), enterprise("C1", "D2", 1, "chem")],
        demands=[demand("B1", "S1", 10), demand("C1", "S1", 2)],
        agencies=[agency("A1", 90)], bids=[bid("A1", 100, sector="build"),
                                           bid("A1", 100, sector="chem")],
        services=[{"service_id": "S1", "name": "S1", "reference_rate": 100}],
        policy_changes={"coverage": {"min_district_ratio": 0.5}})
    res = allocator.solve(allocator.load_instance(p))
    assert res.status.value == "infeasible"
    row = res.diagnosis[res.diagnosis["rule"] == "funding"].iloc[0]
    assert row["subject"] == "S02"
    assert (row["required"], row["shortfall"]) == pytest.approx((1000, 100), abs=0.01)
    assert row["message"].startswith("Building fund (S02) is 100 short of the 1,000")


def test_least_budget_solve_gives_per_source_requirements(tmp_path):
    from allocator.eligibility import compute_eligibility
    from allocator.pipeline.least_budget import least_budget
    from allocator.solvers import get_backend

    p = transport_year(tmp_path / "i", 7_000)
    inst = allocator.load_instance(p)
    elig = compute_eligibility(inst)
    lb = least_budget(inst, elig, get_backend("highs"), 20, 1, sources=["S03"])
    assert lb.exact and lb.value == pytest.approx(9_500) and lb.by_source == {"S03": 9_500}
    report = allocator.diagnose(inst)
    assert report.outcome == "infeasible"


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------

def problems(path: Path) -> list:
    with pytest.raises(InputError) as exc:
        allocator.load_instance(path)
    return [p for p in exc.value.problems if p.severity == "error"]


def test_funding_validation_names_every_bad_cell_with_a_fix(tmp_path):
    p = two_sectors(tmp_path / "i", [
        source("F1", 500, districts="D1;D7", sectors="chm", services="S9", risk_levels="red"),
        source("F1", -3, districts="", sectors="chem,build"),
        source("F3", "1,000", districts="all")])
    found = problems(p)
    by = {(q.row, q.column): q for q in found}
    assert by[(2, "districts")].value == "D7" and "districts.csv" in by[(2, "districts")].fix
    assert "did you mean 'chem'" in by[(2, "sectors")].fix
    assert by[(2, "services")].value == "S9"
    assert "4 for red" in by[(2, "risk_levels")].fix
    assert by[(3, "source_id")].message == "duplicate funding source id"
    assert by[(3, "amount")].message.startswith("out of range")
    assert by[(3, "districts")].message == "scope (districts) is empty"
    assert "join values with ';'" in by[(3, "sectors")].fix
    assert "without thousands separators" in by[(4, "amount")].fix
    assert "'*' means all" in by[(4, "districts")].fix
    assert all(q.file == "funding.csv" for q in found)


def test_budget_total_is_optional_only_with_funding(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 500)])
    assert allocator.load_instance(p).policy.budget_total is None
    (p / "funding.csv").unlink()
    found = problems(p)
    assert [q.column for q in found] == ["budget.total"]
    assert "funding.csv" in found[0].fix
    write_funding(p, [])  # a header only: no source could pay for anything
    assert "no funding source rows" in problems(p)[0].message


@pytest.mark.parametrize("shares, fragment", [
    ({1: 1.0}, "must be in [0, 1)"), ({1: -0.1}, "out of range"), ({5: 0.2}, "risk level"),
    ({1: "30%"}, "as a decimal number"), ("0.3", "mapping risk level")])
def test_copay_shares_are_validated(tmp_path, shares, fragment):
    from allocator.data.policy import parse_policy

    pol, found = parse_policy({"budget": {"total": 1}, "copay": {"share_by_risk": shares}})
    assert pol is None
    assert any(fragment in f"{q.message} | {q.fix}" for q in found), found


def test_funding_warnings(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem"),
                                     source("F2", 500, districts="D2")],
                    districts=[district("D1"), district("D2")])
    inst = allocator.load_instance(p)
    texts = [f"{w.value} {w.message}" for w in inst.warnings]
    assert any(t.startswith("F2 the source's scope covers no demand") for t in texts)
    assert any("1 demand(s) (0 at a mandatory risk level) are in no funding" in t
               for t in texts)


# ------------------------------------------------------------------------------------------
# what-if runs
# ------------------------------------------------------------------------------------------

def test_sweep_one_source_holding_the_others(tmp_path):
    p = transport_year(tmp_path / "i", 7_000)
    sw = allocator.sweep(allocator.load_instance(p), [0, 9_499, 9_500, 12_000, 20_000],
                         source="S03")
    fr = sw.frontier.set_index("budget")
    assert fr.loc[9_499, "status"] == "infeasible" and fr.loc[9_500, "status"] == "optimal"
    assert sw.least_budget == pytest.approx(9_500)
    assert sw.summary()["axis"]["kind"] == "source"
    diag = sw.plans[0].diagnosis
    assert diag.iloc[0]["rule"] == "funding" and diag.iloc[0]["subject"] == "S03"
    assert diag.iloc[0]["shortfall"] == 9_500
    served = fr["coverage"].fillna(-1).to_numpy()
    assert (np.diff(served) >= -1e-9).all()
    folder = sw.write(tmp_path / "sweep")
    point = folder / "budget_12000"
    assert allocator.audit(p, point, funding={"S03": 12_000}).violations == []
    # against the instance's own 7,000 the point's plan cannot be paid for
    assert "funding" in {v.rule for v in allocator.audit(p, point).violations}
    runner = CliRunner()
    res = runner.invoke(main, ["check", str(p), str(point), "--funding", "S03=12000"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["check", str(p), str(point), "--funding", "S03=lots"])
    assert res.exit_code == 2 and "ID=AMOUNT" in res.output


def test_sweep_all_sources_in_proportion(tmp_path):
    p = two_sectors(tmp_path / "i", [source("F1", 500, sectors="chem;build"),
                                     source("F2", 500, sectors="chem")], budget=1000)
    inst = allocator.load_instance(p)
    sw = allocator.sweep(inst, [400, 499, 500, 1000, 2000])
    fr = sw.frontier.set_index("budget")
    assert sw.summary()["axis"]["kind"] == "sources"
    # at 1,000 (today's total) both are served; at 500 (each fund 250) only E1 (chem), paid
    # half by each fund; at 499 nothing
    assert fr.loc[1000, "coverage"] == pytest.approx(4)
    assert fr.loc[500, "coverage"] == pytest.approx(2)
    assert fr.loc[499, "coverage"] == pytest.approx(0)
    assert sw.plans[500].assignments["funded_by"].tolist() == ["F2:250.00;F1:250.00"]
    assert sw.least_budget == pytest.approx(0)  # nothing is mandatory
    # the plan at 2,000 is the plan at 1,000 (budget.total scales with the sources)
    assert fr.loc[2000, "coverage"] == pytest.approx(4)
    plan2000 = sw.plans[2000].summary()
    assert plan2000["budget"] == pytest.approx(2000)
    assert plan2000["funding"]["amount"] == pytest.approx(2000)


def test_proportional_least_total(tmp_path):
    p = transport_year(tmp_path / "i", 9_500)
    inst = allocator.load_instance(p)
    total = float(inst.funding["amount"].sum())  # 59,500: S03 is 9,500 of it
    sw = allocator.sweep(inst, [total])
    least = sw.summary()["least_budget_all_mandatory"]
    assert least["exact"] and least["value"] == pytest.approx(total, rel=1e-6)


def test_compare_scenario_overrides_a_source_and_copay(tmp_path):
    p = transport_year(tmp_path / "i", 7_000)
    inst = allocator.load_instance(p)
    cmp = allocator.compare(inst, {"scenarios": {
        "as_is": {}, "bigger_fund": {"funding": {"S03": 12_000}},
        "copay": {"funding": {"S03": 9_000}, "copay": {"share_by_risk": {4: 0.1}}}}})
    t = cmp.table.set_index("scenario")
    assert t.loc["as_is", "status"] == "infeasible"
    assert t.loc["bigger_fund", "status"] == "optimal"
    # with a 10 % co-payment on major risk 9,500 x 0.9 = 8,550 fits into 9,000
    assert t.loc["copay", "status"] == "optimal"
    with pytest.raises(InputError) as exc:
        allocator.compare(inst, {"scenarios": {"x": {"funding": {"S3": 1}}}})
    assert "did you mean 'S03'" in str(exc.value.problems[0])


# ------------------------------------------------------------------------------------------
# command line, generator, province scale
# ------------------------------------------------------------------------------------------

def test_command_line_end_to_end(tmp_path):
    p = transport_year(tmp_path / "i", 12_000)
    runner = CliRunner()
    res = runner.invoke(main, ["solve", str(p), "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "spend by source" in res.output and "Transport bureau fund" in res.output
    assert "spend by department: Emergency Management Bureau" in res.output
    for name in ("funding.csv", "funding_by_agency.csv"):
        assert (tmp_path / "r" / name).read_bytes().startswith(b"\xef\xbb\xbf")
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert [x["source_id"] for x in s["funding"]["sources"]] == ["S01", "S03"]
    res = runner.invoke(main, ["check", str(p), str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["sweep", str(p), "--source", "S9", "--budgets", "1,2",
                               "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "no such source" in res.output
    res = runner.invoke(main, ["sweep", str(p), "--source", "S03", "--budgets", "9000,10000",
                               "--out", str(tmp_path / "s"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "swept: the amount of funding source S03" in res.output


def test_generate_funding_is_realistic_and_binds(tmp_path):
    from allocator.data.generate import generate_instance

    plain = generate_instance(200, 12, 4, seed=5)
    data = generate_instance(200, 12, 4, seed=5, funding=True)
    for name in ("enterprises", "demands", "agencies", "bids", "districts"):
        pd.testing.assert_frame_equal(plain[name], data[name])
    f = data["funding"]
    assert f.iloc[0]["sectors"] == "*" and f.iloc[0]["department"] == \
        "Emergency Management Bureau"
    assert (f["sectors"] != "*").sum() >= 1
    assert f["amount"].sum() == pytest.approx(plain["policy"]["budget"]["total"], rel=0.02)
    assert "budget" not in data["policy"]
    runner = CliRunner()
    out = tmp_path / "city"
    res = runner.invoke(main, ["generate", "--enterprises", "150", "--agencies", "10",
                               "--districts", "3", "--seed", "4", "--funding", str(out)])
    assert res.exit_code == 0, res.output
    again = tmp_path / "again"
    runner.invoke(main, ["generate", "--enterprises", "150", "--agencies", "10",
                         "--districts", "3", "--seed", "4", "--funding", str(again)])
    assert (out / "funding.csv").read_bytes() == (again / "funding.csv").read_bytes()
    plan_ = allocator.solve(allocator.load_instance(out), time_limit=30)
    assert plan_.has_plan
    s = plan_.summary()["funding"]
    # the sources bind like a budget: what is left unserved is for want of money
    assert s["used"] >= 0.95 * s["amount"]
    plan_.write(tmp_path / "r")
    assert run_check(out, tmp_path / "r") == []


def test_province_scale_keeps_the_full_model_with_funding(tmp_path):
    from allocator.pipeline.large_scale import unsupported_rules

    p = two_sectors(tmp_path / "i", [source("F1", 500)],
                    policy_changes={"copay": {"share_by_risk": {1: 0.2}}})
    inst = allocator.load_instance(p)
    assert unsupported_rules(inst) == ["funding.csv"]  # co-payment alone: the path holds it


def test_instance_from_frames_with_funding():
    frames = {
        "districts": pd.DataFrame({"district_id": ["D1"]}),
        "services": pd.DataFrame({"service_id": ["S1"], "reference_rate": [100]}),
        "enterprises": pd.DataFrame({"enterprise_id": ["E1"], "district_id": ["D1"],
                                     "sector": ["chem"], "risk_level": [2]}),
        "demands": pd.DataFrame({"enterprise_id": ["E1"], "service_id": ["S1"],
                                 "person_days": [5]}),
        "agencies": pd.DataFrame({"agency_id": ["A1"], "status": ["active"], "quality": [90],
                                  "capacity_days": [50], "districts": ["*"]}),
        "bids": pd.DataFrame({"agency_id": ["A1"], "service_id": ["S1"], "sector": ["chem"],
                              "day_rate": [100]}),
        "funding": pd.DataFrame([source("F1", 450)]),
    }
    policy = {"anti_monopoly": {"min_agencies_per_district": 0, "max_share_in_district": None}}
    inst = allocator.instance_from_frames(frames, policy)
    plan_ = allocator.solve(inst)
    assert plan_.has_plan and plan_.coverage == 0  # 500 does not fit into 450
    frames["funding"] = pd.DataFrame([source("F1", 500)])
    inst = allocator.instance_from_frames(frames, policy)
    assert allocator.solve(inst).coverage == 2
    assert math.isclose(allocator.solve(inst).result.funding["used"].sum(), 500)
