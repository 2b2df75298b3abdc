"""Tests of the infeasibility explanation (allocator/diagnose.py): one tiny instance per cause,
each asserting the rule, the subject and the size; plus the CLI's exit codes and files."""

from __future__ import annotations

import json
from pathlib import Path

import instance_builder as ib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from allocator.analysis.diagnose import capacity_shortage, diagnose, explain
from allocator.cli import main
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.model.linear import LinearModel

# ------------------------------------------------------------------------------------------
# a tiny instance, written by tests/instance_builder.py
# ------------------------------------------------------------------------------------------

#: the permissive policy the tests start from: only the rule under test is switched on
OPEN_POLICY = {
    "budget": {"total": 1_000_000},
    "coverage": {"mandatory_levels": [4], "min_district_ratio": 0.0},
    "anti_monopoly": {"max_share_in_district": None, "min_agencies_per_district": 0},
    "quality": {"min_score": 60, "min_score_by_risk": {4: 80}},
    "price": {"floor_ratio": 0.5, "ceiling_ratio": 2.0},
    "solver": {"time_limit": 20},
}


@pytest.fixture(params=["highs", "cpsat"])
def solver(request) -> str:
    """Each backend in turn: CP-SAT has no continuous columns, so its slacks are integer steps
    (cents, 1/1000 person-day) and the sizes must come out the same."""
    from allocator.solvers import REGISTRY

    if not REGISTRY[request.param].available():
        pytest.skip(f"{request.param} is not installed")
    return request.param


def write_instance(path: Path, *, districts, enterprises, demands, agencies, bids,
                   services=(("S1", 1000.0),), policy: dict | None = None) -> Path:
    """An instance from short tuples (tests/instance_builder.py writes it), OPEN_POLICY with
    the test's rule switched on.

    districts: (id, budget_cap or None); enterprises: (id, district, sector, risk);
    demands: (enterprise, service, person_days); agencies: (id, quality, capacity, districts);
    bids: (agency, service, sector, day_rate).
    """
    return ib.write_instance(
        path,
        districts=[ib.district(d, c) for d, c in districts],
        services=[ib.service(s, r) for s, r in services],
        enterprises=[ib.enterprise(e, d, r, x) for e, d, x, r in enterprises],
        demands=[ib.demand(e, s, p) for e, s, p in demands],
        agencies=[ib.agency(a, q, c, districts=ds) for a, q, c, ds in agencies],
        bids=[ib.bid(a, r, s, x) for a, s, x, r in bids],
        policy_changes=ib.merge(OPEN_POLICY, policy))


def run(path: Path, solver: str = "highs"):
    inst = load_instance(path)
    elig = compute_eligibility(inst)
    return inst, elig, explain(inst, elig, solver=solver)


def rows(diag, rule: str) -> pd.DataFrame:
    t = diag.table
    return t[t["rule"] == rule]


# ------------------------------------------------------------------------------------------
# one instance per cause
# ------------------------------------------------------------------------------------------


def test_major_risk_enterprise_in_sector_nobody_serves(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "mining", 4),
                     ("E3", "D1", "chem", 2)],
        demands=[("E1", "S1", 2), ("E2", "S1", 3), ("E3", "S1", 1)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)])
    _, _, diag = run(p)
    assert not diag.feasible
    r = rows(diag, "mandatory_no_eligible_agency")
    assert list(r["subject"]) == ["E2"]
    assert r["shortfall"].iloc[0] == 1
    assert "No agency bids for any service in sector mining." in r["message"].iloc[0]
    assert r["change"].iloc[0].startswith("bids.csv")
    assert set(diag.table["rule"]) == {"mandatory_no_eligible_agency"}  # nothing else wrong


def test_candidates_kept_out_are_named_with_their_reason(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 4)],
        demands=[("E1", "S1", 2)],
        agencies=[("A1", 70, 100, "*"), ("A2", 95, 100, "D2")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000)])
    _, _, diag = run(p)
    msg = rows(diag, "mandatory_no_eligible_agency")["message"].iloc[0]
    assert "A1 (quality 70 below the 80 required)" in msg
    assert "A2 (agency does not serve district D1)" in msg


def test_budget_below_least_cost_of_mandatory_demands(tmp_path):
    # cheapest offers: E1 5 x 900, E2 4 x 1100 (A1 has no bid for sector mining) -> 8,900;
    # the level-3 demand is optional and must not count
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D2", "mining", 4),
                     ("E3", "D1", "chem", 3)],
        demands=[("E1", "S1", 5), ("E2", "S1", 4), ("E3", "S1", 10)],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 900), ("A2", "S1", "chem", 1200),
              ("A2", "S1", "mining", 1100)],
        policy={"budget": {"total": 5000}})
    _, _, diag = run(p)
    r = rows(diag, "budget")
    assert len(r) == 1 and r["subject"].iloc[0] == "city"
    assert r["required"].iloc[0] == pytest.approx(8900, rel=0.01)
    assert r["available"].iloc[0] == pytest.approx(5000)
    assert r["shortfall"].iloc[0] == pytest.approx(3900, rel=0.01)
    assert r["message"].iloc[0] == ("The budget is 3,900 short of the 8,900 needed to serve "
                                    "every major-risk demand. To make it hold: policy.yaml "
                                    "budget.total: 8900 or more.")
    assert (r["change"].iloc[0], r["to"].iloc[0]) == ("policy.yaml budget.total", "8900 or more")
    assert list(diag.table["rule"]) == ["budget"]


def test_required_budget_counts_the_other_rules(tmp_path, solver):
    # two agencies must be active in D1, so the optional E2 is served too: the least plan is
    # E1 by A1 (5 x 900) + E2 by A2 (1 x 1000) = 5,500, not the 4,500 of E1 alone
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 2)],
        demands=[("E1", "S1", 5), ("E2", "S1", 1)],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 900), ("A2", "S1", "chem", 1000)],
        policy={"budget": {"total": 5000},
                "anti_monopoly": {"min_agencies_per_district": 2}})
    _, _, diag = run(p, solver)
    assert list(diag.table["rule"]) == ["budget"]
    r = diag.table.iloc[0]
    assert r["required"] == pytest.approx(5500, rel=1e-6)
    assert r["shortfall"] == pytest.approx(500, rel=1e-6)


def test_share_violations_are_sized_in_currency(tmp_path, solver):
    # a 50 % cap with two agencies at different rates cannot hold: 4,500 vs 5,000 of 9,500;
    # the least violation puts A2 250 above its 4,750 allowance (and nothing on A1)
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4)],
        demands=[("E1", "S1", 5), ("E2", "S1", 5)],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 900), ("A2", "S1", "chem", 1000)],
        policy={"budget": {"total": 20000},
                "anti_monopoly": {"max_share_in_district": 0.5}})
    _, _, diag = run(p, solver)
    assert list(diag.table["rule"]) == ["max_share_in_district"]
    r = diag.table.iloc[0]
    assert r["subject"] == "A2 in D1"
    assert r["shortfall"] == pytest.approx(250, abs=0.01)
    assert r["required"] == pytest.approx(5000, abs=0.01)


def test_more_agencies_per_district_than_the_pool_holds(tmp_path):
    ents = [(f"E{d}{i}", f"D{d}", "chem", 4) for d in (1, 2, 3) for i in range(4)]
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None), ("D3", None)],
        enterprises=ents,
        demands=[(e, "S1", 2) for e, *_ in ents],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*"), ("A3", 90, 100, "D1;D2")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000),
              ("A3", "S1", "chem", 1000)],
        policy={"anti_monopoly": {"min_agencies_per_district": 4}})
    _, _, diag = run(p)
    r = rows(diag, "min_agencies_per_district").set_index("subject")
    assert sorted(r.index) == ["D1", "D2", "D3"]
    assert r.loc["D1", "available"] == 3 and r.loc["D3", "available"] == 2
    assert (r["required"] == 4).all()
    assert r.loc["D3", "shortfall"] == 2
    assert r.loc["D1", "message"] == (
        "District D1 has 3 eligible agencies; the policy asks for 4. To make it hold: "
        "policy.yaml anti_monopoly.min_agencies_per_district: 3 or less (district D1 can have "
        "3 active).")
    assert set(diag.table["rule"]) == {"min_agencies_per_district"}


def test_too_few_demands_to_keep_enough_agencies_busy(tmp_path):
    # D1 has one major-risk demand: only one of its three agencies can be active; D2 has no
    # mandatory demand, so it is a note (its demands cannot be served), not a cause
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D2", "chem", 2)],
        demands=[("E1", "S1", 2), ("E2", "S1", 2)],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*"), ("A3", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000),
              ("A3", "S1", "chem", 1000)],
        policy={"anti_monopoly": {"min_agencies_per_district": 2}})
    _, _, diag = run(p)
    r = rows(diag, "min_agencies_per_district").set_index("subject")
    assert list(r.index) == ["D1", "D2"]
    assert r.loc["D1", "available"] == 1 and r.loc["D1", "required"] == 2
    assert "keep at most 1 of them busy" in r.loc["D1", "message"]
    assert "None of its demands can be served" in r.loc["D2", "message"]
    assert [x.subject for x in diag.reasons if x.cause] == ["D1"]


def test_capacity_exhausted_hall_shortage(tmp_path):
    # E1, E2 (sector chem) may only go to A1 (15 days); E3 (mining) to A2: 5 days missing at A1
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4),
                     ("E3", "D1", "mining", 4)],
        demands=[("E1", "S1", 10), ("E2", "S1", 10), ("E3", "S1", 10)],
        agencies=[("A1", 90, 15, "*"), ("A2", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "mining", 1000)])
    _, _, diag = run(p)
    r = rows(diag, "capacity")
    assert list(r["subject"]) == ["A1"]
    assert r["required"].iloc[0] == pytest.approx(20)
    assert r["available"].iloc[0] == pytest.approx(15)
    assert r["shortfall"].iloc[0] == pytest.approx(5)
    assert "E1/S1" in r["message"].iloc[0] and "E2/S1" in r["message"].iloc[0]
    assert "E3" not in r["message"].iloc[0]
    assert set(diag.table["rule"]) == {"capacity"}


def test_capacity_shortage_in_whole_demands_found_by_the_elastic_solve(tmp_path, solver):
    # 3 x 10 days into two agencies of 15: the flow fits (30 <= 30), whole demands do not
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4),
                     ("E3", "D1", "chem", 4)],
        demands=[("E1", "S1", 10), ("E2", "S1", 10), ("E3", "S1", 10)],
        agencies=[("A1", 90, 15, "*"), ("A2", 90, 15, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000)])
    inst, elig, diag = run(p, solver)
    assert capacity_shortage(inst, elig) == []
    r = rows(diag, "capacity")
    assert len(r) == 1 and r["subject"].iloc[0] in ("A1", "A2")
    assert r["shortfall"].iloc[0] == pytest.approx(5)
    assert r["required"].iloc[0] == pytest.approx(20)


def test_demand_larger_than_any_eligible_agency(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4)],
        demands=[("E1", "S1", 50)],
        agencies=[("A1", 90, 30, "*"), ("A2", 90, 40, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000)])
    _, _, diag = run(p)
    r = rows(diag, "capacity")
    assert list(r["subject"]) == ["A1;A2"]
    assert r["shortfall"].iloc[0] == pytest.approx(10)


def test_min_district_ratio_unreachable(tmp_path):
    # D1 weight: E1 (risk 3, weight 4, servable) + E2 (risk 3, weight 4, no bid) = 8;
    # ratio 0.75 asks for 6, at most 4 can be served
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 3), ("E2", "D1", "mining", 3),
                     ("E3", "D2", "chem", 3)],
        demands=[("E1", "S1", 2), ("E2", "S1", 2), ("E3", "S1", 2)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)],
        policy={"coverage": {"min_district_ratio": 0.75}})
    _, _, diag = run(p)
    r = rows(diag, "min_district_ratio")
    assert list(r["subject"]) == ["D1"]
    assert r["required"].iloc[0] == pytest.approx(6)
    assert r["available"].iloc[0] == pytest.approx(4)
    assert r["shortfall"].iloc[0] == pytest.approx(2)
    assert set(diag.table["rule"]) == {"min_district_ratio"}


def test_share_cap_needs_more_agencies_than_the_district_has(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4)],
        demands=[("E1", "S1", 2), ("E2", "S1", 2)],
        agencies=[("A1", 90, 100, "*"), ("A2", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000)],
        policy={"anti_monopoly": {"max_share_in_district": 0.4}})
    _, _, diag = run(p)
    r = rows(diag, "max_share_in_district")
    assert list(r["subject"]) == ["D1"]
    assert r["required"].iloc[0] == 3 and r["available"].iloc[0] == 2
    assert set(diag.table["rule"]) == {"max_share_in_district"}


def test_district_cap_below_mandatory_spend(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", 3000), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4)],
        demands=[("E1", "S1", 2), ("E2", "S1", 2)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)])
    _, _, diag = run(p)
    r = rows(diag, "district_budget_cap")
    assert list(r["subject"]) == ["D1"]
    assert r["required"].iloc[0] == pytest.approx(4000)
    assert r["shortfall"].iloc[0] == pytest.approx(1000)


def test_districts_per_agency_found_by_the_elastic_solve(tmp_path):
    # one agency, mandatory demands in two districts, at most one district per agency
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None), ("D2", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D2", "chem", 4)],
        demands=[("E1", "S1", 2), ("E2", "S1", 2)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)],
        policy={"anti_monopoly": {"max_districts_per_agency": 1}})
    _, _, diag = run(p)
    r = rows(diag, "max_districts_per_agency")
    assert list(r["subject"]) == ["A1"]
    assert r["required"].iloc[0] == 2 and r["available"].iloc[0] == 1
    assert list(diag.table["rule"]) == ["max_districts_per_agency"]


def test_feasible_instance_has_nothing_to_explain(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4)],
        demands=[("E1", "S1", 2)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)])
    inst, elig, diag = run(p)
    assert diag.feasible and diag.table.empty
    assert diag.elastic.least_cost == pytest.approx(2000)
    # diagnose() is only called on infeasible runs; a plan found here is said plainly
    assert list(diagnose(inst, elig)["rule"]) == ["unexplained"]


def test_add_coefficients_attaches_columns_to_existing_rows():
    lp = LinearModel()
    x = lp.add_variables("x", pd.DataFrame({"i": [0, 1]}))
    lp.add_constraints("r", pd.DataFrame({"k": [0]}), np.array([0, 0]), x, np.ones(2), -1, 1)
    s = lp.add_variables("s", pd.DataFrame({"k": [0]}), 0, 5, integer=False)
    lp.add_coefficients(np.array([0]), s, np.array([-1.0]))
    assert lp.matrix().toarray().tolist() == [[1.0, 1.0, -1.0]]
    with pytest.raises(IndexError):
        lp.add_coefficients(np.array([1]), s, np.array([1.0]))


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def _budget_short(tmp_path: Path) -> Path:
    return write_instance(
        tmp_path / "inst",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4), ("E2", "D1", "chem", 4)],
        demands=[("E1", "S1", 3), ("E2", "S1", 4)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)],
        policy={"budget": {"total": 2000}})


def test_cli_diagnose_feasible_exits_0(tmp_path):
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=[("E1", "D1", "chem", 4)],
        demands=[("E1", "S1", 2)],
        agencies=[("A1", 90, 100, "*")],
        bids=[("A1", "S1", "chem", 1000)])
    out = tmp_path / "why"
    res = CliRunner().invoke(main, ["diagnose", str(p), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no infeasibility: a plan exists" in res.output
    assert json.loads((out / "summary.json").read_text())["status"] == "feasible"
    assert pd.read_csv(out / "diagnosis.csv", encoding="utf-8-sig").empty


def test_cli_diagnose_infeasible_prints_and_writes(tmp_path):
    p = _budget_short(tmp_path)
    out = tmp_path / "why"
    res = CliRunner().invoke(main, ["diagnose", str(p), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "The budget is 5,000 short of the 7,000 needed to serve every major-risk demand." \
        in res.output
    d = pd.read_csv(out / "diagnosis.csv", encoding="utf-8-sig")
    assert list(d.columns) == ["rule", "subject", "required", "available", "shortfall",
                               "message", "subject_name", "change", "to"]
    assert d.loc[0, "rule"] == "budget" and d.loc[0, "required"] == pytest.approx(7000)
    assert json.loads((out / "summary.json").read_text())["status"] == "infeasible"
    # --budget overrides: enough money, no infeasibility
    res = CliRunner().invoke(main, ["diagnose", str(p), "--budget", "7000"])
    assert res.exit_code == 0, res.output


def test_cli_solve_infeasible_writes_diagnosis(tmp_path):
    p = _budget_short(tmp_path)
    out = tmp_path / "res"
    res = CliRunner().invoke(main, ["solve", str(p), "--out", str(out), "--quiet"])
    assert res.exit_code == 1, res.output
    assert json.loads((out / "summary.json").read_text())["status"] == "infeasible"
    d = pd.read_csv(out / "diagnosis.csv", encoding="utf-8-sig")
    assert list(d["rule"]) == ["budget"]
    assert d.loc[0, "shortfall"] == pytest.approx(5000)
    assert "short of the 7,000 needed" in res.output


def test_demands_too_big_for_every_agency_are_grouped(tmp_path):
    ents = [(f"E{i}", "D1", "chem", 4) for i in range(5)]
    p = write_instance(
        tmp_path / "i",
        districts=[("D1", None)],
        enterprises=ents,
        demands=[(e, "S1", 10) for e, *_ in ents],
        agencies=[("A1", 90, 0, "*"), ("A2", 90, 4, "*")],
        bids=[("A1", "S1", "chem", 1000), ("A2", "S1", "chem", 1000)])
    _, _, diag = run(p)
    r = rows(diag, "capacity")
    assert list(r["subject"]) == ["A1;A2"]
    assert r["required"].iloc[0] == pytest.approx(50)
    assert r["shortfall"].iloc[0] == pytest.approx(30)  # each demand 6 above A2's 4
    assert r["message"].iloc[0].startswith("5 major-risk demands (E0/S1, E1/S1")
