"""`allocator evaluate`: the evaluation rules at each threshold (a pure function), against a
plain re-reading of the issue's rules on random pools, and next year's instance folder
(every file carried, agencies.csv updated, incumbents.csv with years, pool_changes.csv;
written atomically, never over the user's files or the inputs)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from instance_builder import (
    agency,
    bid,
    demand,
    enterprise,
    evaluation,
    incumbent,
    write_instance,
)

import allocator
from allocator.analysis.evaluate import (
    EvaluationRules,
    agency_scores,
    evaluate_pool,
    round_quality,
)
from allocator.cli import main
from allocator.core.errors import OutputPathError, ResultsError
from allocator.core.tables import read_csv, write_csv

RULES = EvaluationRules({"enterprise": 0.3, "street_office": 0.3, "expert": 0.4,
                         "spot_check": 0.0})


def pool(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame({"status": [r[1] for r in rows], "quality": [r[2] for r in rows],
                         "name": [r[0] for r in rows]},
                        index=pd.Index([r[0] for r in rows], name="agency_id"))


def evals(*rows: tuple) -> pd.DataFrame:
    cols = ["agency_id", "scorer", "score", "violation", "enterprise_id", "date", "note"]
    return pd.DataFrame([(*r, *([""] * (7 - len(r)))) for r in rows], columns=cols).astype(
        {"score": float})


def one(status: str, score: float | None, quality: float = 80.0, violation: str = "",
        rules: EvaluationRules = RULES) -> pd.Series:
    ev = evals(("A1", "expert", score, violation)) if score is not None else evals()
    return evaluate_pool(pool(("A1", status, quality)), ev, rules).iloc[0]


# ------------------------------------------------------------------------------------------
# the rules, one threshold at a time
# ------------------------------------------------------------------------------------------


def test_score_is_the_weighted_mean_renormalised_over_types_present():
    ev = evals(("A1", "enterprise", 60), ("A1", "enterprise", 80), ("A1", "expert", 90),
               ("A1", "spot_check", 10), ("A2", "street_office", 55))
    sc = agency_scores(ev, RULES.scorer_weights)
    # A1: enterprise mean 70 (0.3), expert 90 (0.4), spot check weight 0 -> (21 + 36) / 0.7
    assert sc.loc["A1", "score"] == pytest.approx((0.3 * 70 + 0.4 * 90) / 0.7)
    assert sc.loc["A1", "score_enterprise"] == 70 and sc.loc["A1", "score_spot_check"] == 10
    assert sc.loc["A2", "score"] == pytest.approx(55)  # one type: its mean
    assert sc.loc["A1", "evaluations"] == 4


def test_only_zero_weight_scorers_give_no_score():
    r = one("active", None)
    ev = evals(("A1", "spot_check", 20))
    r = evaluate_pool(pool(("A1", "active", 80)), ev, RULES).iloc[0]
    assert math.isnan(r["score"]) and r["new_status"] == "active" and r["new_quality"] == 80


@pytest.mark.parametrize("score,quality,expected", [
    (70, 80, 75.0), (71, 80, 75.5), (72.5, 80, 76.3),  # 76.25 rounds half up
    (65.3, 70.2, 67.8), (100, 100, 100.0), (0, 0, 0.0),
])
def test_quality_carry_rounded_half_up_to_one_decimal(score, quality, expected):
    assert one("active", score, quality)["new_quality"] == expected


def test_carry_weights_last_quality():
    rules = EvaluationRules(RULES.scorer_weights, carry=0.8)
    assert one("active", 50, 90, rules=rules)["new_quality"] == 82.0


@pytest.mark.parametrize("status,score,expected", [
    ("active", 70, "active"),  # probation_below is strict
    ("active", 69.9, "probation"),
    ("active", 60, "probation"),  # suspend_below is strict
    ("active", 59.9, "suspended"),
    ("probation", 80, "active"),  # restore_above: at least
    ("probation", 79.9, "probation"),
    ("probation", 65, "probation"),
    ("probation", 59.9, "suspended"),
    ("suspended", None, "probation"),  # a year's suspension, no violation: back on probation
    ("suspended", 75, "probation"),
    ("suspended", 50, "suspended"),  # any agency below suspend_below is suspended
    ("blacklisted", None, "blacklisted"),
    ("blacklisted", 99, "blacklisted"),  # only a person lifts it
    ("active", None, "active"),  # no evaluations: kept
    ("probation", None, "probation"),
])
def test_status_at_each_threshold(status, score, expected):
    r = one(status, score)
    assert r["new_status"] == expected, r["reason"]
    if score is None:
        assert r["new_quality"] == 80.0


@pytest.mark.parametrize("status", ["active", "probation", "suspended"])
def test_a_violation_blacklists(status):
    r = one(status, 95, violation="false_report")
    assert r["new_status"] == "blacklisted" and "false_report" in r["reason"]
    off = EvaluationRules(RULES.scorer_weights, blacklist_on_violation=False)
    r = one(status, 95, violation="bribery", rules=off)
    assert r["new_status"] != "blacklisted" and "bribery" in r["reason"]


def test_bottom_share_rounds_down_and_ranks_active_agencies():
    """Ten evaluated active agencies scoring 71..80 and a probation one scoring 50; a share
    of 0.25 puts floor(2.5) = 2 on probation: the two lowest active ones."""
    ag = pool(*[(f"A{k:02d}", "active", 80.0) for k in range(10)], ("P1", "probation", 80.0))
    ev = evals(*[(f"A{k:02d}", "expert", 71 + k) for k in range(10)], ("P1", "expert", 75))
    rules = EvaluationRules(RULES.scorer_weights, bottom_share_to_probation=0.25)
    out = evaluate_pool(ag, ev, rules).set_index("agency_id")["new_status"]
    assert list(out[out == "probation"].index) == ["A00", "A01", "P1"]
    rules = EvaluationRules(RULES.scorer_weights, bottom_share_to_probation=0.09)
    out = evaluate_pool(ag, ev, rules).set_index("agency_id")["new_status"]
    assert (out == "active").sum() == 10  # floor(0.9) = 0


def test_round_quality_half_up():
    assert round_quality(78.25) == 78.3 and round_quality(78.2499) == 78.2
    assert round_quality(0.05) == 0.1 and round_quality(78.65) == 78.7


# ------------------------------------------------------------------------------------------
# against a plain re-reading of the rules on random pools
# ------------------------------------------------------------------------------------------


def reference(status: str, quality: float, rows: list[tuple[str, float, str]],
              rules: EvaluationRules, bottom: bool) -> tuple[str, float]:
    """The issue's rules for one agency, written out plainly."""
    by_type: dict[str, list[float]] = {}
    for scorer, score, _ in rows:
        by_type.setdefault(scorer, []).append(score)
    w = {t: rules.scorer_weights[t] for t in by_type}
    score = (sum(w[t] * sum(v) / len(v) for t, v in by_type.items()) / sum(w.values())
             if sum(w.values()) > 0 else None)
    violation = any(v for _, _, v in rows)
    q = quality if score is None else round_quality(
        rules.carry * quality + (1 - rules.carry) * score)
    if status == "blacklisted":
        return "blacklisted", q
    if violation and rules.blacklist_on_violation:
        return "blacklisted", q
    if score is not None and score < rules.suspend_below:
        return "suspended", q
    if status == "suspended":
        return "probation", q
    if score is None:
        return status, q
    if status == "active":
        return ("probation" if score < rules.probation_below or bottom else "active"), q
    return ("active" if score >= rules.restore_above else "probation"), q


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["active", "probation", "suspended", "blacklisted"]),
                          st.integers(40, 100),
                          st.lists(st.tuples(st.sampled_from(["enterprise", "street_office",
                                                              "expert", "spot_check"]),
                                             st.integers(0, 100),
                                             st.sampled_from(["", "", "", "", "bribery"])),
                                   max_size=5)), min_size=1, max_size=12),
       st.sampled_from([0.0, 0.2, 0.5]), st.sampled_from([0.0, 0.5, 1.0]))
def test_rules_agree_with_a_plain_reading(agencies, share, carry):
    rules = EvaluationRules({"enterprise": 0.3, "street_office": 0.3, "expert": 0.4,
                             "spot_check": 0.0}, carry=carry, bottom_share_to_probation=share)
    ag = pool(*[(f"A{k:02d}", s, float(q)) for k, (s, q, _) in enumerate(agencies)])
    ev = evals(*[(f"A{k:02d}", t, float(v), x) for k, (_, _, rows) in enumerate(agencies)
                 for t, v, x in rows])
    got = evaluate_pool(ag, ev, rules).set_index("agency_id")
    scores = agency_scores(ev, rules.scorer_weights)["score"] if len(ev) else pd.Series()
    active = sorted((float(scores[a]), a) for a in ag.index
                    if ag.at[a, "status"] == "active" and a in scores.index
                    and not np.isnan(scores[a]))
    lowest = {a for _, a in active[:int(math.floor(share * len(active) + 1e-9))]}
    for k, (status, quality, rows) in enumerate(agencies):
        a = f"A{k:02d}"
        want = reference(status, float(quality), rows, rules, a in lowest)
        assert (got.at[a, "new_status"], got.at[a, "new_quality"]) == want, got.loc[a, "reason"]


# ------------------------------------------------------------------------------------------
# the command and the folder
# ------------------------------------------------------------------------------------------


def small_year(path: Path) -> Path:
    """Three enterprises, four agencies; A2 was E1's incumbent for two years; evaluations
    for A1 (good), A2 (a violation), A3 (poor) and A4 (none: suspended last year)."""
    return write_instance(
        path, enterprises=[enterprise("E1"), enterprise("E2"), enterprise("-E3")],
        demands=[demand("E1"), demand("E2"), demand("-E3")],
        agencies=[agency("A1", 90), agency("A2", 85), agency("=A3", 75),
                  agency("A4", 70, status="suspended")],
        bids=[bid("A1"), bid("A2"), bid("=A3"), bid("A4")],
        incumbents=[incumbent("E1", "A2", 2), incumbent("E2", "A1", 1)],
        evaluations=[evaluation("A1", "expert", 92), evaluation("A1", "enterprise", 88, "", "E2"),
                     evaluation("A2", "spot_check", 30, "false_report"),
                     evaluation("=A3", "street_office", 55)],
        policy_changes={"continuity": {"keep_incumbents": True}})


@pytest.fixture
def year(tmp_path: Path) -> tuple[Path, Path]:
    inst = small_year(tmp_path / "y1")
    res = CliRunner().invoke(main, ["solve", str(inst), "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    return inst, tmp_path / "r1"


def test_evaluate_writes_next_year(year, tmp_path):
    inst, results = year
    (inst / "notes.txt").write_text("kept as is", encoding="utf-8")
    out = tmp_path / "y2"
    res = CliRunner().invoke(main, ["evaluate", str(inst), "--results", str(results),
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "A2: active -> blacklisted" in res.output
    files = {p.name for p in out.iterdir()}
    assert files == {p.name for p in inst.iterdir()} | {"pool_changes.csv", ".allocator.json"}
    for name in ("enterprises.csv", "demands.csv", "bids.csv", "policy.yaml", "notes.txt",
                 "evaluations.csv"):
        assert (out / name).read_bytes() == (inst / name).read_bytes()
    ag = pd.read_csv(out / "agencies.csv", dtype=str, keep_default_na=False).set_index(
        "agency_id")
    # A1: score (0.4 x 92 + 0.3 x 88) / 0.7 = 90.29, quality 0.5 x 90 + 0.5 x 90.29 = 90.1
    assert ag.loc["A1", "status"] == "active" and ag.loc["A1", "quality"] == "90.1"
    assert ag.loc["A2", "status"] == "blacklisted"
    assert ag.loc["=A3", "status"] == "suspended"  # 55 < 60; an '=' id kept exactly
    assert ag.loc["A4", "status"] == "probation"
    assert list(ag.columns) == ["name", "status", "quality", "capacity_days", "districts"]
    plan = read_csv(results / "assignments.csv").set_index("enterprise_id")["agency_id"]
    inc = pd.read_csv(out / "incumbents.csv", dtype=str).set_index("enterprise_id")
    assert set(inc.index) == set(plan.index)
    for e, a in plan.items():
        was = {"E1": ("A2", 2), "E2": ("A1", 1)}.get(e)
        assert inc.loc[e, "agency_id"] == a
        assert int(inc.loc[e, "years"]) == (was[1] + 1 if was and was[0] == a else 1)
    pc = read_csv(out / "pool_changes.csv").set_index("agency_id")
    assert set(pc.index) == {"A1", "A2", "=A3", "A4"}
    assert pc.loc["A2", "new_status"] == "blacklisted" and "false_report" in pc.loc["A2",
                                                                                    "reason"]
    assert float(pc.loc["A1", "score_expert"]) == 92
    # next year is a valid instance whose check passes after a solve
    nxt = allocator.load_instance(out)
    assert len(nxt.evaluations) == len(allocator.load_instance(inst).evaluations)  # copied
    assert len(nxt.incumbents) == len(plan)
    res = CliRunner().invoke(main, ["solve", str(out), "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0, res.output
    assert allocator.audit(out, tmp_path / "r2").violations == []


def test_evaluate_never_writes_over_inputs_or_user_files(year, tmp_path):
    inst, results = year
    run = CliRunner().invoke
    for target in (inst, results, inst.parent):
        res = run(main, ["evaluate", str(inst), "--results", str(results), "--out",
                         str(target)])
        assert res.exit_code == 2, res.output
    user = tmp_path / "mine"
    user.mkdir()
    (user / "budget.xlsx").write_text("x")
    res = run(main, ["evaluate", str(inst), "--results", str(results), "--out", str(user)])
    assert res.exit_code == 2 and "did not write" in res.output
    assert (user / "budget.xlsx").read_text() == "x"
    with pytest.raises(OutputPathError):
        allocator.evaluate(inst, results, out=results)


def test_evaluate_refuses_results_without_a_plan_or_of_another_instance(year, tmp_path):
    inst, results = year
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    s = json.loads((bad / "summary.json").read_text())
    (bad / "summary.json").write_text(json.dumps({**s, "status": "infeasible"}))
    with pytest.raises(ResultsError):
        allocator.evaluate(inst, bad)
    shutil.rmtree(bad)
    shutil.copytree(results, bad)
    a = read_csv(bad / "assignments.csv")
    a.loc[0, "enterprise_id"] = "E99"
    write_csv(a, bad / "assignments.csv")
    with pytest.raises(ResultsError) as err:
        allocator.evaluate(inst, bad)
    assert any("E99" in p.message for p in err.value.problems)
    res = CliRunner().invoke(main, ["evaluate", str(inst), "--results", str(bad), "--out",
                                    str(tmp_path / "n")])
    assert res.exit_code == 2 and not (tmp_path / "n").exists()


def test_python_api_evaluate(year, tmp_path):
    inst, results = year
    ev = allocator.evaluate(inst, results)
    assert ev.status_changes == {"active -> blacklisted": 1, "active -> suspended": 1,
                                 "suspended -> probation": 1}
    assert list(ev.pool_changes.columns[:6]) == ["agency_id", "name", "old_status",
                                                 "new_status", "old_quality", "new_quality"]
    path = ev.write(tmp_path / "next")
    assert (path / "pool_changes.csv").is_file()


def test_scores_already_applied_are_not_applied_again(year, tmp_path):
    """evaluations.csv is carried into next year's folder (every file is copied), and marked
    applied: evaluating that folder with the same scores applies none of them again."""
    import allocator

    inst, results = year
    first = allocator.evaluate(inst, results, out=tmp_path / "y2")
    assert (tmp_path / "y2" / "evaluations.csv").read_bytes() == \
        (inst / "evaluations.csv").read_bytes()
    plan = allocator.solve(allocator.load_instance(tmp_path / "y2"), time_limit=30)
    plan.write(tmp_path / "y2-plan")
    again = allocator.evaluate(tmp_path / "y2", tmp_path / "y2-plan")
    assert any("already applied" in w for w in again.warnings)
    evaluated = first.pool_changes.set_index("agency_id")
    second = again.pool_changes.set_index("agency_id")
    # no agency's quality moves again towards last year's score
    carried = second["new_quality"] == second["old_quality"]
    assert carried[second["old_status"] != "suspended"].all()
    assert (evaluated["new_quality"] != evaluated["old_quality"]).any()  # the first run did
    # once the planner puts new scores in, they are applied
    (tmp_path / "y2" / "evaluations.csv").write_text(
        "agency_id,scorer,score,violation,enterprise_id,date,note\nA1,expert,10,,,,\n",
        encoding="utf-8")
    third = allocator.evaluate(tmp_path / "y2", tmp_path / "y2-plan")
    assert not any("already applied" in w for w in third.warnings)
    assert third.pool_changes.set_index("agency_id").loc["A1", "new_status"] == "suspended"
