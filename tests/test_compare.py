"""Scenario comparison: validation of the scenarios file (like policy.yaml), the table and
chart, the price of each rule against the independent reference model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import allocator
from allocator.cli import main
from allocator.core.errors import InputError
from allocator.data.validation import load_instance
from allocator.whatif.compare import (
    COMPARISON_COLUMNS,
    herfindahl,
    load_scenarios,
    rule_switches,
)
from benchmarks.baseline import solve_baseline
from tests.conftest import write_instance_files

PNG = b"\x89PNG\r\n\x1a\n"
#: the tiny instance with every anti-monopoly and quality rule it can carry switched on
RULED = ("budget:\n  total: 50000\nanti_monopoly:\n  max_share_in_district: 0.7\n"
         "  min_agencies_per_district: 2\n  max_share_in_city: 0.8\n"
         "  max_districts_per_agency: 2\nquality:\n  min_score: 80\n"
         "  min_score_by_risk: {3: 86, 4: 88}\n")


@pytest.fixture
def ruled(tmp_path) -> Path:
    return write_instance_files(tmp_path / "inst", policy=RULED)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------

def test_scenarios_parse_with_budget_shorthand(ruled, tmp_path):
    inst = load_instance(ruled)
    f = write(tmp_path / "s.yaml", "scenarios:\n  base: {}\n  rich: {budget: 90000}\n"
              "  strict: {quality: {min_score: 85}}\n  free:\n"
              "    anti_monopoly: {max_share_in_district: null}\n  empty:\n")
    scenarios, problems = load_scenarios(f, inst.policy)
    assert problems == []
    by = {s.name: s.policy for s in scenarios}
    assert list(by) == ["base", "rich", "strict", "free", "empty"]
    assert by["base"] == inst.policy == by["empty"]
    assert by["rich"].budget_total == 90000
    assert by["strict"].min_score == 85 and by["strict"].min_score_by_risk == {3: 86, 4: 88}
    assert by["free"].max_share_in_district is None
    assert by["free"].min_agencies_per_district == 2  # the rest of the section kept


def test_scenario_typo_is_an_error_with_did_you_mean(ruled, tmp_path):
    inst = load_instance(ruled)
    f = write(tmp_path / "s.yaml", "scenarios:\n  base: {}\n  loose:\n"
              "    anti_monopoly: {max_share_in_distrct: 0.5}\n"
              "  bad: {quality: {min_score: 200}}\n  worse: 7\n"
              "  money: {budget: -5}\n")
    _, problems = load_scenarios(f, inst.policy)
    text = "\n".join(map(str, problems))
    assert "scenario 'loose'" in text and "max_share_in_distrct" in text
    assert "did you mean 'max_share_in_district'" in text
    assert "scenario 'bad'" in text and "quality.min_score" in text
    assert "scenario 'worse'" in text
    assert "scenario 'money'" in text and "budget.total" in text
    assert len(problems) == 4
    with pytest.raises(InputError):
        allocator.compare(inst, f)


def test_cli_scenario_typo_exit_2(ruled, tmp_path):
    f = write(tmp_path / "s.yaml", "scenarios:\n  strict: {qualty: {min_score: 70}}\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compare", str(ruled), "--scenarios", str(f),
                                    "--out", str(out)])
    assert res.exit_code == 2
    assert "did you mean 'quality'" in res.output
    assert not out.exists()


@pytest.mark.parametrize("text,needle", [
    ("scenario:\n  a: {}\n", "did you mean 'scenarios'"),
    ("scenarios: {}\n", "non-empty mapping"),
    ("scenarios:\n  a: {}\nextra: 1\n", "unknown top-level key"),
    ("scenarios: [a, b]\n", "non-empty mapping"),
    ("scenarios:\n  a: {budget: {total: 1}\n", "not readable YAML"),
])
def test_bad_scenario_files(ruled, tmp_path, text, needle):
    inst = load_instance(ruled)
    _, problems = load_scenarios(write(tmp_path / "s.yaml", text), inst.policy)
    assert problems and needle in "\n".join(map(str, problems))


def test_missing_scenarios_file(ruled, tmp_path):
    inst = load_instance(ruled)
    _, problems = load_scenarios(tmp_path / "nope.yaml", inst.policy)
    assert "not found" in str(problems[0])


# ------------------------------------------------------------------------------------------
# measures
# ------------------------------------------------------------------------------------------

def test_herfindahl_averages_districts():
    a = pd.DataFrame({"district_id": ["D1", "D1", "D2"], "agency_id": ["A", "B", "A"],
                      "cost": [60.0, 40.0, 100.0]})
    assert herfindahl(a) == pytest.approx((0.6 ** 2 + 0.4 ** 2 + 1.0) / 2)
    assert herfindahl(a.iloc[0:0]) is None


def test_rule_switches_only_rules_in_force(ruled):
    inst = load_instance(ruled)
    names = [n for n, _ in rule_switches(inst.policy)]
    assert names == ["max_share_in_district", "min_agencies_per_district", "max_share_in_city",
                     "max_districts_per_agency", "quality.min_score",
                     "quality.min_score_by_risk", "price_band"]
    loose = write_instance_files(ruled.parent / "loose")  # shares off, one agency per district
    names = [n for n, _ in rule_switches(load_instance(loose).policy)]
    assert "max_share_in_district" not in names and "min_agencies_per_district" not in names


# ------------------------------------------------------------------------------------------
# the comparison
# ------------------------------------------------------------------------------------------

def test_compare_with_price_of_rules(ruled, tmp_path):
    inst = load_instance(ruled)
    f = write(tmp_path / "s.yaml", "scenarios:\n  base: {}\n  rich: {budget: 90000}\n"
              "  poor: {budget: 100}\n  loose:\n"
              "    anti_monopoly: {max_share_in_district: null, min_agencies_per_district: 0}\n")
    out = tmp_path / "cmp"
    result = allocator.compare(inst, f, price_of_rules=True, jobs=2)
    assert result.has_plan
    result.write(out)
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""],
                        encoding="utf-8-sig")
    assert list(table.columns) == COMPARISON_COLUMNS
    rows = table.set_index("scenario")
    assert list(rows.index[:4]) == ["base", "rich", "poor", "loose"]
    assert rows.loc["poor", "status"] == "infeasible" and pd.isna(rows.loc["poor", "coverage"])
    assert (out / "poor" / "diagnosis.csv").is_file()
    overrides = {"base": None, "rich": None, "loose": {
        "anti_monopoly": {"max_share_in_district": None, "min_agencies_per_district": 0}}}
    for name, over in overrides.items():
        ref = solve_baseline(ruled, budget=90000 if name == "rich" else None, overrides=over)
        assert ref["status"] == "optimal"
        assert rows.loc[name, "coverage"] == pytest.approx(ref["coverage"])
        assert rows.loc[name, "cost"] == pytest.approx(ref["cost"], abs=0.01)
    assert rows.loc["rich", "coverage"] >= rows.loc["base", "coverage"]
    base = rows.loc["base"]
    assert base["mean_quality"] == pytest.approx(base["quality"] / base["coverage"],
                                                 abs=0.005)  # written with 2 decimals
    a = pd.read_csv(out / "base" / "assignments.csv", encoding="utf-8-sig")
    assert base["herfindahl"] == pytest.approx(herfindahl(a), abs=5e-5)  # 4 decimals
    assert base["agencies_used"] == a["agency_id"].nunique()
    rules = rows[rows.index.str.startswith("without:")]
    assert len(rules) == 7
    for name, over in rule_switches(inst.policy):
        row = rows.loc[f"without:{name}"]
        ref = solve_baseline(ruled, overrides=over)
        assert row["coverage"] == pytest.approx(ref["coverage"]), name
        assert row["price_of_rule"] == pytest.approx(ref["coverage"] - base["coverage"]), name
        assert row["price_of_rule"] >= -1e-9  # dropping a rule never loses served weight
    assert rules["price_of_rule"].max() > 0  # some rule here does cost served weight
    data = (out / "comparison.png").read_bytes()
    assert data[:8] == PNG and len(data) > 2000
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_compare_no_plan_anywhere_exit_1(ruled, tmp_path):
    f = write(tmp_path / "s.yaml", "scenarios:\n  poor: {budget: 10}\n")
    out = tmp_path / "cmp"
    res = CliRunner().invoke(main, ["compare", str(ruled), "--scenarios", str(f),
                                    "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert (out / "comparison.png").read_bytes()[:8] == PNG
