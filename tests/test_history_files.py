"""The planner's year in the instance folder: incumbents.csv, pins.csv, evaluations.csv and
the policy sections continuity and evaluation, checked like every other file (every problem
at once, each with file, row, column, value and fix; warnings where the issue says so)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_instance_files

import allocator
from allocator.cli import main
from allocator.core.errors import InputError
from allocator.data.policy import DEFAULTS, parse_policy
from allocator.eligibility import compute_eligibility

INC = "enterprise_id,service_id,agency_id,years\n"
PINS = "enterprise_id,service_id,agency_id,action,note\n"
EVAL = "agency_id,scorer,score,violation,enterprise_id,date,note\n"


def problems_of(path: Path) -> list:
    with pytest.raises(InputError) as err:
        allocator.load_instance(path)
    return err.value.problems


def find(problems: list, file: str, row: int | None, column: str) -> list:
    return [p for p in problems if p.file == file and p.row == row and p.column == column]


def write(path: Path, **files: str) -> Path:
    write_instance_files(path)
    for name, text in files.items():
        (path / f"{name}.csv").write_text(text, encoding="utf-8")
    return path


def test_absent_files_are_empty_and_valid(tiny_instance_dir: Path) -> None:
    inst = allocator.load_instance(tiny_instance_dir)
    assert inst.incumbents.empty and inst.pins.empty and inst.evaluations.empty


def test_good_files_are_typed(tmp_path: Path) -> None:
    d = write(tmp_path / "i", incumbents=INC + "E1,S1,A1,2\nE2,S1,A2,1\n",
              pins=PINS + "E3,S1,A2,assign,board decision\nE4,S2,A3,forbid,\n",
              evaluations=EVAL + "A1,expert,88,,,2026-05-01,\nA2,Street Office,61.5,,E2,,\n")
    inst = allocator.load_instance(d)
    assert inst.warnings == []
    assert inst.incumbents[["enterprise_id", "agency_id", "years"]].values.tolist() == [
        ["E1", "A1", 2], ["E2", "A2", 1]]
    assert list(inst.incumbents["demand"]) == [0, 2]  # rows of demands.csv
    assert list(inst.pins["action"]) == ["assign", "forbid"]
    assert list(inst.evaluations["scorer"]) == ["expert", "street_office"]
    assert list(inst.evaluations["score"]) == [88.0, 61.5]


def test_every_problem_at_once_across_the_three_files(tmp_path: Path) -> None:
    d = write(tmp_path / "i",
              incumbents=INC + "E1,S1,A1,0\nE2,S1,,1\nE1,S1,A2,2\n",
              pins=PINS + "E1,S1,A1,asign,\nE2,S1,A9,forbid,\nE3,S2,A1,assign,\n"
                          "E2,S1,A1,assign,\nE2,S1,A2,assign,\n",
              evaluations=EVAL + "A1,exprt,90,,,,\nA2,expert,120,,,,\nA1,expert,80,,,31/12/26,\n")
    ps = problems_of(d)
    assert find(ps, "incumbents.csv", 2, "years")  # 0 years
    assert find(ps, "incumbents.csv", 3, "agency_id")  # empty agency
    dup = find(ps, "incumbents.csv", 4, "service_id")
    assert dup and "row 2" in dup[0].fix
    action = find(ps, "pins.csv", 2, "action")
    assert action and "did you mean 'assign'" in action[0].fix
    assert find(ps, "pins.csv", 3, "agency_id")  # unknown agency
    assert "demands.csv does not list" in find(ps, "pins.csv", 4, "service_id")[0].message
    second = find(ps, "pins.csv", 6, "agency_id")
    assert second and "A1" in second[0].fix
    assert "did you mean 'expert'" in find(ps, "evaluations.csv", 2, "scorer")[0].fix
    assert find(ps, "evaluations.csv", 3, "score")
    assert "YYYY-MM-DD" in find(ps, "evaluations.csv", 4, "date")[0].fix
    assert all(p.severity == "error" for p in ps)


def test_warnings_for_a_year_that_moved_on(tmp_path: Path) -> None:
    """An incumbent of a demand gone, an agency that left the pool, an evaluation of an
    unknown agency: warnings, and the instance loads."""
    d = write(tmp_path / "i", incumbents=INC + "E1,S1,A1,2\nE9,S1,A1,1\nE2,S1,A7,3\n",
              evaluations=EVAL + "A8,expert,70,,,,\nA1,enterprise,80,,E99,,\n")
    inst = allocator.load_instance(d)
    w = {(p.file, p.row, p.column) for p in inst.warnings}
    assert ("incumbents.csv", 3, "service_id") in w
    assert ("incumbents.csv", 4, "agency_id") in w
    assert ("evaluations.csv", 2, "agency_id") in w
    assert ("evaluations.csv", 3, "enterprise_id") in w
    assert list(inst.incumbents["enterprise_id"]) == ["E1", "E2"]  # the gone demand dropped
    assert list(inst.incumbents["in_pool"]) == [True, False]
    assert list(inst.evaluations["agency_id"]) == ["A1"]


@pytest.mark.parametrize("pin,rule", [
    ("E4,S2,A2,assign", None),  # eligible
    ("E3,S1,A3,assign", "no_offer"),  # A3 bids only S2 in construction
    ("E4,S2,A1,assign", "no_offer"),
    ("E2,S1,A2,assign", None),
])
def test_assign_pin_must_be_eligible(tmp_path: Path, pin: str, rule: str | None) -> None:
    d = write(tmp_path / "i", pins=PINS + pin + ",\n")
    inst = allocator.load_instance(d)
    if rule is None:
        compute_eligibility(inst)
        return
    with pytest.raises(InputError) as err:
        compute_eligibility(inst)
    (p,) = err.value.problems
    assert (p.file, p.row, p.column) == ("pins.csv", 2, "agency_id")
    assert f"rule '{rule}'" in p.message


@pytest.mark.parametrize("change,rule", [
    ({"agencies": "agency_id,name,status,quality,capacity_days,districts\n"
                  "A1,a,suspended,90,30,*\nA2,b,active,85,20,D1;D2\nA3,c,probation,75,10,D2\n"},
     "status"),
    ({"agencies": "agency_id,name,status,quality,capacity_days,districts\n"
                  "A1,a,active,90,30,D2\nA2,b,active,85,20,D1;D2\nA3,c,probation,75,10,D2\n"},
     "service_area"),
    ({"conflicts": "agency_id,enterprise_id\nA1,E1\n"}, "conflict"),
    ({"incumbents": INC + "E1,S1,A1,3\n"}, "tenure"),
])
def test_assign_pin_names_the_rule_it_breaks(tmp_path: Path, change: dict, rule: str) -> None:
    files = {"pins": PINS + "E1,S1,A1,assign,\n"}
    d = write(tmp_path / "i", **files)
    for name, text in change.items():
        (d / f"{name}.csv").write_text(text, encoding="utf-8")
    if rule == "tenure":
        (d / "policy.yaml").write_text((d / "policy.yaml").read_text()
                                       + "continuity:\n  max_tenure_years: 3\n")
    inst = allocator.load_instance(d)
    with pytest.raises(InputError) as err:
        compute_eligibility(inst)
    (p,) = err.value.problems
    assert f"rule '{rule}'" in p.message and p.fix


def test_cli_refuses_an_ineligible_pin_and_writes_nothing(tmp_path: Path) -> None:
    d = write(tmp_path / "i", pins=PINS + "E3,S1,A3,assign,\n")
    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["solve", str(d), "--out", str(out)])
    assert res.exit_code == 2
    assert "rule 'no_offer'" in res.output
    assert not out.exists()
    res = CliRunner().invoke(main, ["validate", str(d)])
    assert res.exit_code == 2 and "OK" not in res.output.splitlines()[:1]


def test_frames_carry_the_year(tmp_path: Path) -> None:
    d = write_instance_files(tmp_path / "i")
    frames = {f.stem: pd.read_csv(f, dtype=str, keep_default_na=False)
              for f in d.glob("*.csv")}
    frames["incumbents"] = pd.DataFrame({"enterprise_id": ["E1"], "service_id": ["S1"],
                                         "agency_id": ["A2"], "years": [4]})
    frames["pins"] = pd.DataFrame({"enterprise_id": ["E2"], "service_id": ["S1"],
                                   "agency_id": ["A1"], "action": ["forbid"]})
    import yaml
    pol = yaml.safe_load((d / "policy.yaml").read_text())
    inst = allocator.instance_from_frames(frames, pol)
    assert list(inst.incumbents["years"]) == [4]
    elig = compute_eligibility(inst)
    out = elig.excluded[elig.excluded["reason"] == "pinned"]
    assert out[["enterprise_id", "agency_id"]].values.tolist() == [["E2", "A1"]]


# ------------------------------------------------------------------------------------------
# policy
# ------------------------------------------------------------------------------------------

BUDGET = {"budget": {"total": 1000}}


def test_policy_defaults() -> None:
    pol, problems = parse_policy(BUDGET)
    assert problems == []
    assert pol.keep_incumbents is True and pol.max_changes is None
    assert pol.max_tenure_years is None
    assert pol.scorer_weights == DEFAULTS["evaluation"]["scorer_weights"]
    assert (pol.carry, pol.probation_below, pol.suspend_below, pol.restore_above) == (
        0.5, 70, 60, 80)
    assert pol.bottom_share_to_probation == 0.0 and pol.blacklist_on_violation is True
    assert pol.levels == ("coverage", "stability", "quality", "cost")


def messages(raw: dict) -> list[tuple[str, str]]:
    pol, problems = parse_policy({**BUDGET, **raw})
    assert pol is None and problems
    return [(p.column, f"{p.message} | {p.fix}") for p in problems]


@pytest.mark.parametrize("raw,column,words", [
    ({"continuity": {"max_chnges": 0.1}}, "continuity.max_chnges", "did you mean 'max_changes'"),
    ({"continuty": {}}, "continuty", "did you mean 'continuity'"),
    ({"evaluation": {"scorer_weights": {"expret": 1}}}, "evaluation.scorer_weights.expret",
     "did you mean 'expert'"),
    ({"continuity": {"max_changes": 1.5}}, "continuity.max_changes", "out of range"),
    ({"continuity": {"max_tenure_years": 0}}, "continuity.max_tenure_years", "out of range"),
    ({"continuity": {"max_tenure_years": 2.5}}, "continuity.max_tenure_years", "whole"),
    ({"continuity": {"keep_incumbents": "yes"}}, "continuity.keep_incumbents", "true or false"),
    ({"evaluation": {"carry": -0.1}}, "evaluation.carry", "out of range"),
    ({"evaluation": {"suspend_below": 75}}, "evaluation.suspend_below", "probation_below"),
    ({"evaluation": {"scorer_weights": {"expert": 0, "enterprise": 0}}},
     "evaluation.scorer_weights", "positive"),
    ({"evaluation": {"blacklist_on_violation": 1}}, "evaluation.blacklist_on_violation",
     "true or false"),
    ({"solver": {"levels": ["coverage", "stabilty"]}}, "solver.levels", "stability"),
])
def test_policy_errors(raw: dict, column: str, words: str) -> None:
    found = messages(raw)
    assert any(c == column and words in m for c, m in found), found


def test_scorer_weights_are_replaced_whole() -> None:
    pol, problems = parse_policy({**BUDGET, "evaluation": {"scorer_weights": {"expert": 1}}})
    assert problems == []
    assert pol.scorer_weights == {"enterprise": 0.0, "street_office": 0.0, "expert": 1.0,
                                  "spot_check": 0.0}
    assert pol.as_dict()["evaluation"]["scorer_weights"]["expert"] == 1.0
