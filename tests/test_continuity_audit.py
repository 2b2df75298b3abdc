"""`allocator check` on the planner's year: it accepts the plans the solver writes and rejects a
plan that breaks a pin, rotation or max_changes, and a changes.csv or summary that does not say
what changed. The auditor shares no model or eligibility code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from instance_builder import (
    agency,
    bid,
    check_rules,
    demand,
    enterprise,
    incumbent,
    pin,
    run_check,
    solve_folder,
    write_instance,
)

from allocator.cli import main
from allocator.core.tables import read_csv, write_csv


@pytest.fixture
def solved(tmp_path: Path):
    """Four demands; A1 (quality 95) and A2 (80) and A3 (70); E1 pinned to A2, E2 forbids A1,
    E3's incumbent A1 rotated out (3 years), E4's incumbent A3 kept by max_changes 0."""
    path = write_instance(
        tmp_path / "i", enterprises=[enterprise(f"E{k}") for k in range(1, 5)],
        demands=[demand(f"E{k}") for k in range(1, 5)],
        agencies=[agency("A1", 95), agency("A2", 80), agency("A3", 70)],
        bids=[bid("A1"), bid("A2"), bid("A3")],
        pins=[pin("E1", "A2"), pin("E2", "A1", "forbid")],
        incumbents=[incumbent("E3", "A1", 3), incumbent("E4", "A3", 1)],
        policy_changes={"continuity": {"max_changes": 0, "max_tenure_years": 3,
                                       "keep_incumbents": False}})
    out = solve_folder(path, tmp_path)  # audited inside: no violation
    assert out.plan == {("E1", "S1", "A2"), ("E2", "S1", "A2"), ("E3", "S1", "A2"),
                        ("E4", "S1", "A3")}
    return path, out.results_dir


def tampered(results: Path, dst: Path, agency_of: dict[str, str]) -> Path:
    """A copy of the results with some demands given to another agency (cost unchanged: all
    bid the same), changes.csv and summary left as they were."""
    shutil.copytree(results, dst)
    a = read_csv(dst / "assignments.csv")
    for e, ag in agency_of.items():
        a.loc[a["enterprise_id"] == e, "agency_id"] = ag
    write_csv(a, dst / "assignments.csv")
    return dst


def test_check_accepts_the_solved_year(solved):
    path, results = solved
    assert run_check(path, results) == []
    res = CliRunner().invoke(main, ["check", str(path), str(results)])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("move,rule", [
    ({"E1": "A1"}, "pin"),  # the assign pin broken
    ({"E2": "A1"}, "pin"),  # the forbid pin broken
    ({"E3": "A1"}, "tenure"),  # the rotated incumbent serves again
    ({"E4": "A1"}, "max_changes"),  # an eligible incumbent moved under max_changes 0
])
def test_check_rejects_a_broken_rule(solved, tmp_path, move, rule):
    path, results = solved
    bad = tampered(results, tmp_path / "bad", move)
    rules = check_rules(path, bad)
    assert rule in rules, rules
    res = CliRunner().invoke(main, ["check", str(path), str(bad)])
    assert res.exit_code == 1 and f"{rule}:" in res.output


def test_check_rejects_an_unserved_pinned_demand(solved, tmp_path):
    path, results = solved
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    a = read_csv(bad / "assignments.csv")
    row = a[a["enterprise_id"] == "E1"]
    write_csv(a[a["enterprise_id"] != "E1"], bad / "assignments.csv")
    u = read_csv(bad / "unserved.csv")
    u.loc[len(u)] = {**{c: "" for c in u.columns}, **{
        k: str(row.iloc[0][k]) for k in ("enterprise_id", "service_id", "district_id",
                                          "sector", "risk_level", "weight")}, "reason": "gap"}
    write_csv(u, bad / "unserved.csv")
    found = run_check(path, bad)
    assert any(f.startswith("pin: unserved.csv") for f in found), found


def test_check_rejects_a_changes_file_that_does_not_say_what_changed(solved, tmp_path):
    path, results = solved
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    ch = read_csv(bad / "changes.csv")
    ch.loc[ch["enterprise_id"] == "E3", "change"] = "moved"
    write_csv(ch[ch["enterprise_id"] != "E4"], bad / "changes.csv")
    found = [f for f in run_check(path, bad) if f.startswith("changes")]
    assert any("E3" in f and "'rotated'" in f for f in found), found
    assert any("E4" in f and "no row" in f for f in found), found
    (bad / "changes.csv").unlink()
    assert "changes" in check_rules(path, bad)


def test_check_rejects_wrong_counts_in_the_summary(solved, tmp_path):
    path, results = solved
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    s = json.loads((bad / "summary.json").read_text())
    s["changes"]["kept"] += 1
    s["stability"] = 99
    (bad / "summary.json").write_text(json.dumps(s))
    found = [f for f in run_check(path, bad) if f.startswith("summary")]
    assert any("changes.kept" in f for f in found) and any("stability" in f for f in found)


def test_check_judges_pinned_and_tenure_rows_of_excluded(solved, tmp_path):
    """excluded.csv's `pinned` and `tenure` rows are true (accepted above); a `pinned` reason
    on a triple no pin touches is refused, and a dropped `tenure` row is missed."""
    path, results = solved
    ex = read_csv(results / "excluded.csv")
    assert set(ex["reason"]) >= {"pinned", "tenure"}
    bad = tmp_path / "bad"
    shutil.copytree(results, bad)
    wrong = ex.copy()
    row = wrong.index[wrong["reason"] == "tenure"][0]
    wrong.loc[row, "reason"] = "pinned"  # E3 / A1 is rotated, not pinned
    write_csv(wrong, bad / "excluded.csv")
    assert "excluded_reason" in check_rules(path, bad)
    write_csv(ex.drop(index=row), bad / "excluded.csv")
    assert "excluded_missing" in check_rules(path, bad)
