"""policy.yaml: defaults, types, ranges, unknown keys and what-if overrides (spec section 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from allocator.core.errors import InputError
from allocator.data.policy import DEFAULTS, parse_policy
from allocator.data.reading import read_policy
from allocator.data.validation import load_instance
from tests.conftest import write_instance_files

BUDGET = {"budget": {"total": 1_000_000}}


def problems_of(raw: object, overrides: dict | None = None) -> list[tuple[str, object, str]]:
    policy, problems = parse_policy(raw, overrides=overrides)
    assert policy is None and problems
    return [(p.column, p.value, f"{p.message} | {p.fix}") for p in problems]


def with_budget(**sections: dict) -> dict:
    return {**BUDGET, **sections}


def test_defaults_applied_when_only_budget_given() -> None:
    policy, problems = parse_policy(BUDGET)
    assert problems == []
    shown = policy.as_dict()
    expected = {**DEFAULTS, "budget": {"total": 1_000_000.0}}
    assert shown == expected
    assert policy.weights == {1: 1.0, 2: 2.0, 3: 4.0, 4: 8.0}
    assert policy.mandatory_levels == (4,)
    assert policy.max_share_in_district == 0.4 and policy.min_agencies_per_district == 3
    assert policy.max_share_in_city is None and policy.max_districts_per_agency is None
    assert policy.min_score_by_risk == {3: 70.0, 4: 80.0}
    assert (policy.floor_ratio, policy.ceiling_ratio) == (0.8, 1.5)
    assert (policy.solver_name, policy.time_limit, policy.mip_gap) == ("auto", 60.0, 0.0001)


def test_given_values_replace_defaults_section_by_section() -> None:
    policy, problems = parse_policy(with_budget(
        anti_monopoly={"max_share_in_district": None, "max_share_in_city": 0.25},
        quality={"min_score_by_risk": {4: 90}},
    ))
    assert problems == []
    assert policy.max_share_in_district is None  # null switches the rule off
    assert policy.max_share_in_city == 0.25
    assert policy.min_agencies_per_district == 3  # untouched key keeps its default
    assert policy.min_score_by_risk == {4: 90.0}  # a level map is replaced whole
    assert policy.min_score == 60.0


def test_unknown_key_with_did_you_mean() -> None:
    found = problems_of(with_budget(anti_monopoly={"min_agencys_per_district": 2}))
    assert len(found) == 1
    column, value, text = found[0]
    assert column == "anti_monopoly.min_agencys_per_district"
    assert value == "min_agencys_per_district"
    assert "unknown policy key" in text
    assert "did you mean 'min_agencies_per_district'?" in text


def test_unknown_section_and_far_key() -> None:
    found = problems_of(with_budget(qualty={"min_score": 50}, price={"xyz": 1}))
    texts = {c: t for c, _, t in found}
    assert "did you mean 'quality'?" in texts["qualty"]
    assert "known keys here: floor_ratio, ceiling_ratio" in texts["price.xyz"]


@pytest.mark.parametrize("raw, column, fragment", [
    (with_budget(quality={"min_score": "60"}), "quality.min_score",
     "remove the quotes so it reads as a number: 60"),
    ({"budget": {"total": "12,000,000"}}, "budget.total",
     "without thousands separators: 12000000"),
    (with_budget(quality={"min_score": True}), "quality.min_score", "not true/false"),
    (with_budget(coverage={"mandatory_levels": 4}), "coverage.mandatory_levels",
     "must be a list of risk levels"),
    (with_budget(coverage={"weights": [1, 2, 4, 8]}), "coverage.weights",
     "must be a mapping risk level -> value"),
    (with_budget(anti_monopoly={"min_agencies_per_district": 2.5}),
     "anti_monopoly.min_agencies_per_district", "must be a whole number"),
    (with_budget(solver={"time_limit": "60s"}), "solver.time_limit", "must be a number"),
    (with_budget(price=0.8), "price", "must be a section of keys"),
    ({"budget": 5000}, "budget", "under it '  total: 5000'"),
    (with_budget(coverage={"weights": None}), "coverage.weights", "cannot be empty"),
    (with_budget(solver={"name": "gurobi"}), "solver.name", "unknown solver"),
])
def test_wrong_types(raw: dict, column: str, fragment: str) -> None:
    found = problems_of(raw)
    assert [c for c, _, _ in found] == [column], found
    assert fragment in found[0][2]


def test_missing_budget_total() -> None:
    for raw in ({}, None, {"budget": {}}, {"budget": {"total": None}}, {"name": "x"}):
        found = problems_of(raw)
        assert [c for c, _, _ in found] == ["budget.total"], raw
        assert "budget.total is required" in found[0][2]


def test_policy_not_a_mapping() -> None:
    found = problems_of(["budget", 5])
    assert found[0][0] == "(top)" and "not a list" in found[0][2]


@pytest.mark.parametrize("raw, column", [
    (with_budget(coverage={"min_district_ratio": 1.2}), "coverage.min_district_ratio"),
    (with_budget(coverage={"min_district_ratio": -0.1}), "coverage.min_district_ratio"),
    (with_budget(anti_monopoly={"max_share_in_district": 0}),
     "anti_monopoly.max_share_in_district"),
    (with_budget(anti_monopoly={"max_share_in_city": 1.01}), "anti_monopoly.max_share_in_city"),
    (with_budget(solver={"mip_gap": 2}), "solver.mip_gap"),
    (with_budget(quality={"min_score": 101}), "quality.min_score"),
    (with_budget(quality={"min_score_by_risk": {4: -1}}), "quality.min_score_by_risk.4"),
    (with_budget(price={"ceiling_ratio": 0}), "price.ceiling_ratio"),
    ({"budget": {"total": -5}}, "budget.total"),
])
def test_out_of_range(raw: dict, column: str) -> None:
    found = problems_of(raw)
    assert [c for c, _, _ in found] == [column]
    assert "out of range" in found[0][2]


def test_floor_above_ceiling() -> None:
    found = problems_of(with_budget(price={"floor_ratio": 1.2, "ceiling_ratio": 1.1}))
    assert found == [("price.floor_ratio", 1.2,
                      "floor_ratio is above ceiling_ratio (1.1) | make floor_ratio <= "
                      "ceiling_ratio")]


def test_level_maps() -> None:
    found = problems_of(with_budget(coverage={"weights": {1: 1, 2: 2, 3: 4}}))
    assert found[0][0] == "coverage.weights" and "risk level(s) 4" in found[0][2]
    found = problems_of(with_budget(quality={"min_score_by_risk": {5: 90, "x": 1}}))
    assert sorted(c for c, _, _ in found) == ["quality.min_score_by_risk.5",
                                              "quality.min_score_by_risk.x"]
    found = problems_of(with_budget(coverage={"mandatory_levels": [4, 5, True]}))
    assert [v for _, v, _ in found] == [5, True]


def test_solver_name_is_case_insensitive() -> None:
    policy, problems = parse_policy(with_budget(solver={"name": "HiGHS"}))
    assert problems == [] and policy.solver_name == "highs"


def test_overrides_merge() -> None:
    raw = with_budget(anti_monopoly={"max_share_in_district": 0.5,
                                     "min_agencies_per_district": 2},
                      coverage={"weights": {1: 1, 2: 1, 3: 1, 4: 1}})
    policy, problems = parse_policy(raw, overrides={
        "anti_monopoly": {"max_share_in_district": None},
        "coverage": {"weights": {1: 0, 2: 0, 3: 5, 4: 10}},
        "budget": {"total": 7},
    })
    assert problems == []
    assert policy.max_share_in_district is None      # overridden
    assert policy.min_agencies_per_district == 2     # from the file, kept
    assert policy.weights == {1: 0.0, 2: 0.0, 3: 5.0, 4: 10.0}
    assert policy.budget_total == 7.0
    assert raw["anti_monopoly"]["max_share_in_district"] == 0.5  # input not mutated


def test_overrides_are_checked_too() -> None:
    found = problems_of(BUDGET, overrides={"quality": {"min_scor": 70}})
    assert found[0][0] == "quality.min_scor" and "did you mean 'min_score'" in found[0][2]
    _, problems = parse_policy(BUDGET, overrides={"quality": {"min_scor": 70}})
    assert problems[0].file == "overrides"


def test_load_instance_budget_and_overrides(tmp_path: Path) -> None:
    inst = write_instance_files(tmp_path / "i", policy="name: t\n")  # no budget.total
    with pytest.raises(InputError) as err:
        load_instance(inst)
    assert [p.column for p in err.value.problems] == ["budget.total"]
    loaded = load_instance(inst, budget=1234, overrides={"price": {"floor_ratio": 0.5}})
    assert loaded.policy.budget_total == 1234.0
    assert loaded.policy.floor_ratio == 0.5 and loaded.policy.ceiling_ratio == 1.5


def test_yaml_reading(tmp_path: Path) -> None:
    """1e6 is a number (YAML 1.2 style), a key given twice is refused with its line."""
    path = tmp_path / "policy.yaml"
    path.write_text("budget:\n  total: 1.2e7\nsolver:\n  mip_gap: 1e-4\n")
    problems: list = []
    assert read_policy(path, problems) == {"budget": {"total": 1.2e7},
                                           "solver": {"mip_gap": 1e-4}}
    assert problems == []
    path.write_text("budget:\n  total: 1\nprice:\n  floor_ratio: 0.7\n  floor_ratio: 0.9\n")
    assert read_policy(path, problems) is None
    assert [(p.file, p.row) for p in problems] == [("policy.yaml", 5)]
    assert "'floor_ratio' appears twice" in problems[0].message
    assert yaml.safe_load("a: 1e6")["a"] == "1e6"  # what plain PyYAML would have done
