"""Tests of the independent baseline model (benchmarks/baseline.py) and the GAP converter."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from benchmarks.baseline import solve_baseline
from benchmarks.gap_instances import (
    agent_of_job,
    gap_check,
    gap_cost,
    gap_value,
    load_optima,
    optimum,
    read_orlib,
    write_gap_instance,
)

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
GAP = BENCH / "gap"


def _need_gap():
    if not (GAP / "optima.csv").exists():
        pytest.skip(f"GAP benchmarks not found at {GAP}")


# ------------------------------------------------------------------------------------------
# GAP benchmarks through the converter
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file,index,sense",
    [
        ("orlib/gap1.txt", 1, "min"),  # 261
        ("orlib/gap1.txt", 1, "max"),  # 336
        ("orlib/gap2.txt", 3, "min"),  # 260
        ("orlib/gap5.txt", 1, "min"),  # 403
        ("orlib/gap9.txt", 2, "max"),  # 717
    ],
)
def test_gap_optimum(tmp_path, file, index, sense):
    _need_gap()
    df = load_optima(GAP / "optima.csv")
    expected = optimum(df, file, index, sense)
    assert expected is not None
    problem = read_orlib(GAP / file)[index - 1]
    write_gap_instance(problem, tmp_path, sense=sense)
    res = solve_baseline(tmp_path, time_limit=60)
    assert res["status"] == "optimal"
    n = problem["n"]
    assert len(res["assignment"]) == n
    assert res["coverage"] == pytest.approx(n)  # every job is mandatory, weight 1
    assert res["quality"] == pytest.approx(100 * n)
    assert gap_value(problem, res["cost"], sense) == pytest.approx(expected)
    agents = agent_of_job(problem, res["assignment"])
    assert gap_check(problem, agents)
    assert gap_cost(problem, agents) == pytest.approx(expected)


def test_gap1_first_is_261(tmp_path):
    _need_gap()
    problem = read_orlib(GAP / "orlib" / "gap1.txt")[0]
    assert (problem["m"], problem["n"]) == (5, 15)
    write_gap_instance(problem, tmp_path, sense="min", bid_rows=False)  # header-only bids
    res = solve_baseline(tmp_path)
    assert res["status"] == "optimal"
    assert res["cost"] == pytest.approx(261)


def test_read_yagiura_single_instance():
    _need_gap()
    probs = read_orlib(GAP / "yagiura" / "c05100")
    assert len(probs) == 1
    assert (probs[0]["m"], probs[0]["n"]) == (5, 100)
    assert probs[0]["c"].shape == (5, 100) and probs[0]["b"].shape == (5,)


# ------------------------------------------------------------------------------------------
# hand-made instance
# ------------------------------------------------------------------------------------------

POLICY = """\
name: hand
budget:
  total: 1950
quality:
  min_score: 60
  min_score_by_risk: {3: 70, 4: 80}
anti_monopoly:
  max_share_in_district: 1.0
  min_agencies_per_district: 0
"""


def _write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return d


def hand_instance(
    d: Path, policy: str = POLICY, extra_enterprises: str = "", extra_demands: str = ""
) -> Path:
    """One district, one service (rate 100), three demands of 10 person-days (reference cost
    1000, admissible cost 800..1500):

    * E1 risk 3 (weight 4): A1 1000 (q 90), A2 850 (q 70); A3 is on probation -> not for risk 3
    * E2 risk 2 (weight 2): A1 quote 950 / 8 days (q 90), A2 850, A3 900 (q 80)
    * E3 risk 1 (weight 1): A1 1000, A2 850, A3 900; A2's quote of 700 is abnormally low
      (below 800) and overrides its bid, so A2 is out for E3.
    * A4 (q 50) is below min_score; A5 is suspended; A6 is in conflict with E1 and serves only D2.
    """
    return _write(
        d,
        {
            "policy.yaml": policy,
            "districts.csv": """\
            district_id,name,budget_cap
            D1,North,
            D2,South,
            """,
            "services.csv": """\
            service_id,name,reference_rate
            S1,inspection,100
            """,
            "enterprises.csv": """\
            enterprise_id,name,district_id,sector,risk_level
            E1,Chem One,D1,chem,3
            E2,Chem Two,D1,chem,2
            E3,Chem Three,D1,chem,1
            """
            + extra_enterprises,
            "demands.csv": """\
            enterprise_id,service_id,person_days,weight
            E1,S1,10,
            E2,S1,10,
            E3,S1,10,
            """
            + extra_demands,
            "agencies.csv": """\
            agency_id,name,status,quality,capacity_days,districts
            A1,Alpha,active,90,100,*
            A2,Beta,active,70,100,D1;D2
            A3,Gamma,probation,80,100,D1
            A4,Delta,active,50,100,*
            A5,Eps,suspended,99,100,*
            A6,Zeta,active,95,100,D2
            """,
            "bids.csv": """\
            agency_id,service_id,sector,day_rate
            A1,S1,chem,100
            A2,S1,chem,85
            A3,S1,chem,90
            A4,S1,chem,80
            A5,S1,chem,80
            A6,S1,chem,80
            """,
            "quotes.csv": """\
            agency_id,enterprise_id,service_id,price,person_days
            A1,E2,S1,950,8
            A2,E3,S1,700,10
            """,
            "conflicts.csv": """\
            agency_id,enterprise_id
            A6,E1
            """,
        },
    )


def test_hand_budget_binds(tmp_path):
    # All three demands need >= 850 + 850 + 900 = 2600 > 1950, so at most two are served;
    # E1 + E2 (weight 6) beats any pair with E3. Best quality for E1 + E2 is A1 for both:
    # 4*90 + 2*90 = 540 at cost 1000 + 950 = 1950 = the budget (binding).
    inst = hand_instance(tmp_path / "i")
    res = solve_baseline(inst)
    assert res["status"] == "optimal"
    assert res["coverage"] == pytest.approx(6)
    assert res["quality"] == pytest.approx(540)
    assert res["cost"] == pytest.approx(1950)
    assert res["assignment"] == {("E1", "S1"): "A1", ("E2", "S1"): "A1"}
    # eligible: E1 {A1, A2}, E2 {A1, A2, A3}, E3 {A1, A3}
    assert res["n_triples"] == 7


def test_hand_budget_override(tmp_path):
    # budget 1940: A1+A1 (1950) no longer fits; E1->A1 + E2->A3 = 360 + 160 = 520 at 1900
    # beats E1->A1 + E2->A2 = 500 and E1->A2 + E2->A1 = 460.
    inst = hand_instance(tmp_path / "i")
    res = solve_baseline(inst, budget=1940)
    assert res["status"] == "optimal"
    assert (res["coverage"], res["quality"], res["cost"]) == pytest.approx((6, 520, 1900))
    assert res["assignment"] == {("E1", "S1"): "A1", ("E2", "S1"): "A3"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"anti_monopoly": {"min_agencies_per_district": 2}},
        {"anti_monopoly": {"max_share_in_district": 0.55}},  # 1000/1900 = 0.526 ok, 1 agency = 1.0
    ],
)
def test_hand_anti_monopoly(tmp_path, overrides):
    inst = hand_instance(tmp_path / "i")
    res = solve_baseline(inst, overrides=overrides)
    assert res["status"] == "optimal"
    assert (res["coverage"], res["quality"], res["cost"]) == pytest.approx((6, 520, 1900))


def test_hand_override_min_score_by_risk(tmp_path):
    # risk 3 needs 95: nobody may take E1. Serve E2 + E3 (weight 3):
    # E2->A1 (950, q 90) + E3->A1 (1000, q 90) = 270 at 1950.
    inst = hand_instance(tmp_path / "i")
    res = solve_baseline(inst, overrides={"quality": {"min_score_by_risk": {3: 95, 4: 80}}})
    assert res["status"] == "optimal"
    assert (res["coverage"], res["quality"], res["cost"]) == pytest.approx((3, 270, 1950))


def test_hand_infeasible_mandatory_without_agency(tmp_path):
    # E4 (risk 4, mandatory) in D2. Agencies serving D2: A1 and A6 (quality >= 80) are both in
    # conflict with E4, A2 (70) and A4 (50) are below the risk-4 threshold of 80,
    # A5 is suspended. Nobody can take E4 -> infeasible, never a partial plan.
    inst = hand_instance(
        tmp_path / "i",
        extra_enterprises="E4,Mine,D2,chem,4\n",
        extra_demands="E4,S1,10,\n",
    )
    (inst / "conflicts.csv").write_text("agency_id,enterprise_id\nA6,E1\nA1,E4\nA6,E4\n")
    res = solve_baseline(inst)
    assert res["status"] == "infeasible"
    assert res["assignment"] == {}
    # without the conflicts A6 (95) takes it
    (inst / "conflicts.csv").write_text("agency_id,enterprise_id\nA6,E1\n")
    res = solve_baseline(inst)
    assert res["status"] == "optimal"
    assert res["assignment"][("E4", "S1")] == "A6"


def test_hand_infeasible_by_budget(tmp_path):
    # E4 (risk 4, mandatory) can be served (A1, 1000) but the budget of 500 cannot pay it:
    # the solver itself must report infeasibility.
    inst = hand_instance(
        tmp_path / "i",
        extra_enterprises="E4,Mine,D1,chem,4\n",
        extra_demands="E4,S1,10,\n",
    )
    res = solve_baseline(inst, budget=500)
    assert res["status"] == "infeasible"
    assert res["levels"] and res["levels"][0]["status"] == "infeasible"
    # with enough money it is served by A1 (the only agency with quality >= 80 in D1)
    res = solve_baseline(inst, budget=10_000)
    assert res["status"] == "optimal"
    assert res["assignment"][("E4", "S1")] == "A1"


def test_unknown_policy_key_is_an_error(tmp_path):
    inst = hand_instance(tmp_path / "i", policy=POLICY + "coverage:\n  min_distrct_ratio: 0.5\n")
    with pytest.raises(ValueError):
        solve_baseline(inst)
