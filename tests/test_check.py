"""Tests of the independent auditor `allocator check` (allocator/check.py).

A tiny hand-made instance is solved once; the auditor must pass its results, and then catch
each tampered copy, naming the rule (and the row where there is one) with exit code 1.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import instance_builder as ib
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from instance_builder import solve_result

from allocator.analysis.audit import Violation, audit_results, check_results
from allocator.cli import main
from allocator.core.tables import read_csv
from allocator.data.validation import load_instance
from allocator.output.results_folder import write_results
from allocator.output.text import audit_text

RATES = {"S1": 1000.0, "S2": 800.0}
# agency, status, quality, capacity_days, districts, day-rate factor on the reference rate
AGENCIES = [("A1", "active", 92, 60, "*", 1.05), ("A2", "active", 88, 60, "*", 1.0),
            ("A3", "active", 84, 60, "*", 0.95), ("A4", "active", 81, 60, "D1", 0.9),
            ("A5", "probation", 75, 40, "*", 0.85), ("A6", "suspended", 95, 60, "*", 0.9),
            ("A7", "active", 55, 60, "*", 0.85), ("A8", "blacklisted", 90, 60, "*", 0.8)]
FACTOR = {a[0]: a[-1] for a in AGENCIES}


def write_tiny(path: Path, budget: float = 60000) -> Path:
    """16 enterprises in 2 districts, 24 demands (6 mandatory), 8 agencies of every status;
    the spec's default policy but for the budget."""
    risks = [4, 3, 2, 1, 2, 3, 1, 4]
    ents, dems = [], []
    for i in range(16):
        e = f"E{i + 1:02d}"
        ents.append({"enterprise_id": e, "name": f"Ent {i + 1}",
                     "district_id": "D1" if i < 8 else "D2",
                     "sector": "chem" if i % 2 == 0 else "build", "risk_level": risks[i % 8]})
        dems.append({"enterprise_id": e, "service_id": "S1", "person_days": 2 + i % 4,
                     "weight": ""})
        if i % 2 == 0:
            dems.append({"enterprise_id": e, "service_id": "S2", "person_days": 3, "weight": ""})
    return ib.write_instance(
        path,
        districts=[{"district_id": "D1", "name": "North", "budget_cap": 35000},
                   {"district_id": "D2", "name": "South", "budget_cap": None}],
        services=[{"service_id": s, "name": n, "reference_rate": r}
                  for (s, r), n in zip(RATES.items(), ["Inspection", "Training"], strict=True)],
        enterprises=ents, demands=dems,
        agencies=[{"agency_id": a, "name": f"Agency {a}", "status": st, "quality": q,
                   "capacity_days": c, "districts": d} for a, st, q, c, d, _ in AGENCIES],
        bids=[ib.bid(a, r * f, s, sec) for a, *_, f in AGENCIES for s, r in RATES.items()
              for sec in ("chem", "build")],
        quotes=[ib.quote("A2", "E03", 3600, 5)],
        conflicts=[ib.conflict("A1", "E01"), ib.conflict("A2", "E09")],
        raw_policy={"name": "Tiny", "budget": {"total": budget}})


def solve_into(inst_dir: Path, out: Path, budget: float | None = None,
               time_limit: float = 30, overrides: dict | None = None) -> Path:
    inst = load_instance(inst_dir, budget=budget, overrides=overrides)
    write_results(solve_result(inst, time_limit=time_limit), out)
    return out


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("tiny")
    inst = write_tiny(base / "instance")
    res = solve_into(inst, base / "results")
    assert json.loads((res / "summary.json").read_text())["status"] == "optimal"
    return inst, res


@pytest.fixture
def copy(solved, tmp_path) -> tuple[Path, Path]:
    """A private copy of the solved results, free to tamper with."""
    inst, res = solved
    return inst, Path(shutil.copytree(res, tmp_path / "results"))


def read(res: Path, file: str) -> pd.DataFrame:
    return read_csv(res / file)


def write(res: Path, file: str, df: pd.DataFrame) -> None:
    df.to_csv(res / file, index=False)


def edit_summary(res: Path, **changes) -> None:
    s = json.loads((res / "summary.json").read_text())
    for key, value in changes.items():
        if value is None:
            s.pop(key, None)
        else:
            s[key] = value
    (res / "summary.json").write_text(json.dumps(s))


def bid_cost(inst: Path, e: str, s: str, agency: str) -> tuple[float, float]:
    """(cost, load) of a bid-priced triple, computed here from the test's own tables."""
    dem = pd.read_csv(inst / "demands.csv", dtype=str, encoding="utf-8-sig")
    days = float(dem.loc[(dem.enterprise_id == e) & (dem.service_id == s), "person_days"].iloc[0])
    return days * RATES[s] * FACTOR[agency], days


QUALITY = {a[0]: a[2] for a in AGENCIES}


def move(inst: Path, a: pd.DataFrame, i: int, agency: str) -> None:
    """Give row i to another agency, with cost, load, quality and quoted consistent with that
    agency's bid (as a careful hand edit would)."""
    cost, load = bid_cost(inst, a.at[i, "enterprise_id"], a.at[i, "service_id"], agency)
    a.at[i, "agency_id"], a.at[i, "cost"], a.at[i, "load"] = agency, f"{cost:.2f}", f"{load:g}"
    if "government_cost" in a.columns:  # no co-payment here: the government pays it all
        a.at[i, "government_cost"], a.at[i, "enterprise_cost"] = f"{cost:.2f}", "0"
    a.at[i, "quality"], a.at[i, "quoted"] = str(QUALITY[agency]), "False"
    if "agency_name" in a.columns:
        a.at[i, "agency_name"] = f"Agency {agency}"


def rules(found: list[Violation]) -> set[str]:
    return {v.rule for v in found}


def row_of(a: pd.DataFrame, e: str, s: str) -> int:
    return int(a.index[(a.enterprise_id == e) & (a.service_id == s)][0])


def check(inst: Path, res: Path, capsys, **kwargs) -> tuple[int, str, list[Violation]]:
    """Exit code, printed output and violations of one audit."""
    audit = audit_results(inst, res, **kwargs)
    return (1 if audit.violations else 0), audit_text(audit), audit.violations


def run_check(inst: Path, res: Path) -> int:
    """`allocator check INSTANCE RESULTS` through the command line; its output is passed on
    to this process's stdout and stderr (for capsys). Returns the exit code."""
    r = CliRunner().invoke(main, ["check", str(inst), str(res)])
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code


# ----------------------------------------------------------------------------------------------
# clean results pass
# ----------------------------------------------------------------------------------------------


def test_solved_results_pass(solved, capsys):
    inst, res = solved
    found = check_results(inst, res)
    rc = run_check(inst, res)
    out = capsys.readouterr().out
    n = len(read(res, "assignments.csv"))
    u = len(read(res, "unserved.csv"))
    assert found == []
    assert rc == 0
    assert n > 0 and n + u == 24  # every demand once
    assert out.strip().splitlines()[-1] == f"OK: {n} assignments, {u} unserved, every rule holds"


def test_generated_instance_passes(tmp_path, capsys):
    from allocator.data.generate import generate_instance, write_instance

    write_instance(generate_instance(80, 8, 2, 1), tmp_path / "gen")
    # a plan within 1 % of the best is still a plan every rule must hold for
    res = solve_into(tmp_path / "gen", tmp_path / "res", time_limit=10,
                     overrides={"solver": {"mip_gap": 0.01}})
    status = json.loads((res / "summary.json").read_text())["status"]
    rc, out, found = check(tmp_path / "gen", res, capsys, mip_gap=0.01)
    assert found == [], out
    assert rc == 0
    if status in ("optimal", "feasible"):
        assert len(read(res, "assignments.csv")) > 0
        assert out.strip().splitlines()[-1].startswith("OK: ")


def test_what_if_run_is_audited_against_the_budget_given_to_check(tmp_path, capsys):
    """A --budget run's plan is audited against policy.yaml's budget unless check is told the
    what-if budget; the figure in summary.json is never trusted."""
    inst = write_tiny(tmp_path / "instance")
    res = solve_into(inst, tmp_path / "res", budget=75000)
    cost = json.loads((res / "summary.json").read_text())["cost"]
    assert cost > 60000  # more than policy.yaml's budget allows
    rc, out, found = check(inst, res, capsys)
    assert rc == 1 and rules(found) == {"budget"}
    assert "above the budget 60000.00" in found[0].message
    assert "summary.json says the budget was 75000.00" in out
    assert audit_results(inst, res, budget=75000).violations == []
    r = CliRunner().invoke(main, ["check", str(inst), str(res), "--budget", "75000"])
    assert r.exit_code == 0, r.output


def test_infeasible_results(tmp_path, capsys):
    inst = write_tiny(tmp_path / "instance", budget=1000)  # mandatory demand alone costs more
    res = solve_into(inst, tmp_path / "res")
    assert json.loads((res / "summary.json").read_text())["status"] == "infeasible"
    rc, out, found = check(inst, res, capsys)
    assert (rc, found) == (0, [])
    assert "OK: 0 assignments" in out
    (res / "diagnosis.csv").unlink()
    rc, out, found = check(inst, res, capsys)
    assert rc == 1 and rules(found) == {"diagnosis"}


def test_empty_plan(tmp_path, capsys):
    inst = write_tiny(tmp_path / "instance", budget=0)
    raw = yaml.safe_load((inst / "policy.yaml").read_text())
    raw["coverage"] = {"mandatory_levels": []}
    (inst / "policy.yaml").write_text(yaml.safe_dump(raw))
    res = solve_into(inst, tmp_path / "res")
    assert json.loads((res / "summary.json").read_text())["status"] == "optimal"
    rc, out, found = check(inst, res, capsys)
    assert (rc, found) == (0, [])
    assert "OK: 0 assignments, 24 unserved" in out


# ----------------------------------------------------------------------------------------------
# tampered copies fail, naming rule and row
# ----------------------------------------------------------------------------------------------


def test_changed_cost(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    i = row_of(a, "E08", "S1")  # risk level 4: always served
    a.at[i, "cost"] = str(float(a.at[i, "cost"]) + 50)
    write(res, "assignments.csv", a)
    rc, out, found = check(inst, res, capsys)
    assert rc == 1
    # totals are recomputed from the instance, so only the row itself is wrong
    assert [(v.rule, v.file, v.row) for v in found] == [("cost", "assignments.csv", i + 2)]
    assert "E08 / S1 / " in found[0].subject
    assert f"cost: assignments.csv, row {i + 2}" in out
    assert out.strip().splitlines()[-1] == "FAIL: 1 violation(s)"


def test_cost_within_rounding_passes(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    a.at[0, "cost"] = str(float(a.at[0, "cost"]) + 0.004)
    write(res, "assignments.csv", a)
    assert check(inst, res, capsys)[0] == 0


def test_changed_load_and_weight(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    a.at[1, "load"] = str(float(a.at[1, "load"]) + 1)
    a.at[2, "weight"] = "99"
    a.at[3, "district_id"] = {"D1": "D2", "D2": "D1"}[a.at[3, "district_id"]]
    write(res, "assignments.csv", a)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    got = {(v.rule, v.row) for v in found}
    assert ("load", 3) in got
    assert ("demand_fields", 4) in got and ("demand_fields", 5) in got
    assert any("weight is 99" in v.message for v in found)


def test_duplicated_demand(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    a = pd.concat([a, a.iloc[[4]]], ignore_index=True)
    write(res, "assignments.csv", a)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    dup = [v for v in found if v.rule == "duplicate_demand"]
    assert len(dup) == 1 and dup[0].row == len(a) + 1
    assert "first at row 6" in dup[0].message


def test_demand_dropped_from_both_files(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    e, s = a.at[3, "enterprise_id"], a.at[3, "service_id"]
    write(res, "assignments.csv", a.drop(index=3))
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    missing = [v for v in found if v.rule == "missing_demand"]
    assert [v.subject for v in missing] == [f"{e} / {s}"]
    # the other files still describe the full plan, so they disagree with the recomputation
    assert {"agency_totals", "district_totals", "summary_totals"} <= rules(found)


def test_demand_both_served_and_unserved(copy, capsys):
    inst, res = copy
    a, u = read(res, "assignments.csv"), read(res, "unserved.csv")
    extra = a.iloc[[0]][["enterprise_id", "service_id", "district_id", "sector", "risk_level",
                         "weight"]].assign(reason="budget")
    write(res, "unserved.csv", pd.concat([u, extra], ignore_index=True))
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    both = [v for v in found if v.rule == "served_and_unserved"]
    assert len(both) == 1 and both[0].file == "unserved.csv" and both[0].row == len(u) + 2


def test_mandatory_demand_left_out(copy, capsys):
    inst, res = copy
    a, u = read(res, "assignments.csv"), read(res, "unserved.csv")
    i = row_of(a, "E08", "S1")  # risk level 4
    gone = a.iloc[[i]][["enterprise_id", "service_id", "district_id", "sector", "risk_level",
                        "weight"]].assign(reason="budget")
    write(res, "assignments.csv", a.drop(index=i))
    write(res, "unserved.csv", pd.concat([u, gone], ignore_index=True))
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    mand = [v for v in found if v.rule == "mandatory"]
    assert len(mand) == 1 and mand[0].subject == "E08 / S1" and mand[0].row == len(u) + 2
    assert "missing_demand" not in rules(found)


# rows of risk level 4 (mandatory, so always served): E01, E08 in D1, E09, E16 in D2
@pytest.mark.parametrize("e,s,agency,rule", [
    ("E01", "S1", "A1", "conflict"),  # conflicts.csv lists (A1, E01)
    ("E08", "S1", "A6", "status"),  # A6 is suspended
    ("E08", "S1", "A8", "status"),  # A8 is blacklisted
    ("E16", "S1", "A5", "status|quality"),  # A5: probation, quality 75 < 80 at risk level 4
    ("E09", "S1", "A4", "service_area"),  # A4 serves D1 only, E09 is in D2
    ("E09", "S1", "A7", "quality"),  # A7 has quality 55 < min_score 60
    ("E08", "S1", "A3|A2", None),  # eligible (whichever the plan does not use): totals only
])
def test_assignment_moved_to_ineligible_agency(copy, capsys, e, s, agency, rule):
    inst, res = copy
    a = read(res, "assignments.csv")
    i = row_of(a, e, s)
    agency = [x for x in agency.split("|") if x != a.at[i, "agency_id"]][0]
    move(inst, a, i, agency)
    write(res, "assignments.csv", a)
    rc, out, found = check(inst, res, capsys)
    eligibility = {"conflict", "status", "service_area", "quality", "no_offer", "price_floor",
                   "price_ceiling"}
    row_rules = {v.rule for v in found if v.row == i + 2 and v.file == "assignments.csv"}
    if rule is None:
        assert not rules(found) & eligibility
        assert "cost" not in rules(found) and not row_rules
    else:
        assert rc == 1
        assert row_rules == set(rule.split("|"))
        for r in row_rules:
            assert f"{r}: assignments.csv, row {i + 2} [{e} / {s} / {agency}]" in out


def test_price_outside_band(copy, capsys, tmp_path):
    # a quote below floor_ratio x reference cost makes the triple ineligible
    inst_src, res = copy
    inst = Path(shutil.copytree(inst_src, tmp_path / "instance"))
    a = read(res, "assignments.csv")
    i = row_of(a, "E08", "S1")  # 5 person-days x reference rate 1000, floor 0.8 -> 4000
    q = read(inst, "quotes.csv")
    q.loc[len(q)] = {"agency_id": a.at[i, "agency_id"], "enterprise_id": "E08",
                     "service_id": "S1", "price": "3000", "person_days": "5"}
    write(inst, "quotes.csv", q)
    a.at[i, "cost"], a.at[i, "load"], a.at[i, "quoted"] = "3000", "5", "True"
    a.at[i, "government_cost"] = "3000"  # no co-payment: the government pays all of it
    write(res, "assignments.csv", a)
    rc, out, found = check(inst, res, capsys)
    assert rc == 1
    assert {v.rule for v in found if v.row == i + 2} == {"price_floor"}
    assert "is 0.6000 x the reference cost 5000.00, below floor_ratio 0.8" in out
    assert "WARNING: summary.json's instance_sha256 differs" in out


def test_unknown_agency_and_demand(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    a.at[0, "agency_id"] = "A99"
    a.at[1, "service_id"] = "S9"
    write(res, "assignments.csv", a)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    got = {(v.rule, v.row) for v in found}
    assert ("unknown_agency", 2) in got and ("unknown_demand", 3) in got


def test_budget_exceeded_even_when_summary_claims_more(copy, capsys):
    """Raising the budget written in summary.json does not make an over-budget plan pass."""
    inst, res = copy
    cost = json.loads((res / "summary.json").read_text())["cost"]
    found = audit_results(inst, res, budget=cost - 100).violations
    assert rules(found) == {"budget"}
    assert f"above the budget {cost - 100:.2f} by 100.00" in found[0].message
    edit_summary(res, budget=cost * 10)
    found = audit_results(inst, res, budget=cost - 100).violations
    assert rules(found) == {"budget"}


def test_district_budget_cap(copy, capsys, tmp_path):
    inst_src, res = copy
    inst = Path(shutil.copytree(inst_src, tmp_path / "instance"))
    d = read(inst, "districts.csv")
    d.loc[0, "budget_cap"] = "20000"  # D1 spends more than that
    write(inst, "districts.csv", d)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    caps = [v for v in found if v.rule == "district_budget_cap"]
    assert [v.subject for v in caps] == ["district D1"]


def test_capacity_exceeded(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    load = a.loc[a.agency_id == "A3", "load"].astype(float).sum()
    # give A3 (active, quality 84, every district, capacity 60) demands until it is over
    for i in a.index[a.agency_id != "A3"]:
        if a.at[i, "enterprise_id"] == "E03" and a.at[i, "service_id"] == "S1":
            continue  # quoted by A2
        move(inst, a, i, "A3")
        load += float(a.at[i, "load"])
        if load > 60:
            break
    assert load > 60
    write(res, "assignments.csv", a)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    cap = [v for v in found if v.rule == "capacity"]
    assert [v.subject for v in cap] == ["agency A3"]
    assert f"load {load:g} person-days is above capacity_days 60" in cap[0].message
    assert not {"conflict", "status", "quality", "service_area", "cost"} & rules(found)


def test_district_share_broken(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    d2 = a.index[(a.district_id == "D2") & (a.agency_id != "A3")]
    for i in d2[:4]:
        move(inst, a, i, "A3")
    write(res, "assignments.csv", a)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    share = [v for v in found if v.rule == "district_share"]
    assert [v.subject for v in share] == ["agency A3 in district D2"]
    assert "above max_share_in_district 0.4" in share[0].message


def test_too_few_agencies_in_district(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    for i in a.index[(a.district_id == "D1") & ~a.agency_id.isin(["A2", "A4"])]:
        move(inst, a, i, "A4")  # A4: active, quality 81, serves D1, no quote, no conflict
    write(res, "assignments.csv", a)
    assert set(a.loc[a.district_id == "D1", "agency_id"]) <= {"A2", "A4"}
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    few = [v for v in found if v.rule == "min_agencies_per_district"]
    assert [v.subject for v in few] == ["district D1"]


def _stricter(case: str, a: pd.DataFrame, u: pd.DataFrame, d: pd.DataFrame
              ) -> tuple[dict, set[str]]:
    """A policy the solved plan breaks, and the subjects the check must name for it."""
    cost = a.assign(cost=a.cost.astype(float))
    if case == "min_district_ratio":
        ratio = d.coverage_ratio.astype(float)
        return ({"coverage": {"min_district_ratio": 0.99}},
                {f"district {x}" for x in d.district_id[ratio < 0.99]})
    if case == "city_share":
        share = cost.groupby("agency_id").cost.sum() / cost.cost.sum()
        limit = float(share.max()) - 0.01
        return ({"anti_monopoly": {"max_share_in_city": limit}},
                {f"agency {x}" for x in share.index[share > limit]})
    if case == "districts_per_agency":
        n = a.groupby("agency_id").district_id.nunique()
        return ({"anti_monopoly": {"max_districts_per_agency": 1}},
                {f"agency {x}" for x in n.index[n > 1]})
    if case == "min_agencies_per_district":
        n = a.groupby("district_id").agency_id.nunique()
        return ({"anti_monopoly": {"min_agencies_per_district": int(n.max()) + 1}},
                {f"district {x}" for x in n.index})
    assert case == "mandatory" and len(u)
    level = int(u.risk_level.iloc[0])
    low = u[u.risk_level == str(level)]
    return ({"coverage": {"mandatory_levels": sorted({level, 4})}},
            {f"{e} / {s}" for e, s in zip(low.enterprise_id, low.service_id, strict=True)})


@pytest.mark.parametrize("rule", ["min_district_ratio", "city_share", "districts_per_agency",
                                  "min_agencies_per_district", "mandatory"])
def test_policy_rules_from_the_instance(copy, capsys, tmp_path, rule):
    # the same plan, checked against a stricter policy.yaml: the instance's rules are in force
    inst_src, res = copy
    policy, expected = _stricter(rule, read(res, "assignments.csv"), read(res, "unserved.csv"),
                                 read(res, "districts.csv"))
    assert expected, "the solved plan does not exercise this rule"
    inst = Path(shutil.copytree(inst_src, tmp_path / "instance"))
    raw = yaml.safe_load((inst / "policy.yaml").read_text())
    raw.update(policy)
    (inst / "policy.yaml").write_text(yaml.safe_dump(raw))
    rc, out, found = check(inst, res, capsys)
    assert rc == 1
    assert {v.subject for v in found if v.rule == rule} == expected
    assert "WARNING: summary.json's policy differs from policy.yaml" in out


def test_summary_coverage_altered(copy, capsys):
    inst, res = copy
    s = json.loads((res / "summary.json").read_text())
    edit_summary(res, coverage=s["coverage"] + 1)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    assert [(v.rule, v.subject) for v in found] == [("summary_totals", "coverage")]
    assert f"recomputed from assignments {s['coverage']:g}" in found[0].message


def test_summary_status_without_plan(copy, capsys):
    inst, res = copy
    edit_summary(res, status="infeasible")
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    assert "summary_status" in rules(found)


def test_agency_contract_value_altered(copy, capsys):
    inst, res = copy
    g = read(res, "agencies.csv")
    i = int(g.index[g.agency_id == "A2"][0])
    real = float(g.at[i, "contract_value"])
    g.at[i, "contract_value"] = str(real + 10)
    write(res, "agencies.csv", g)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    assert [(v.rule, v.file, v.row, v.subject) for v in found] == [
        ("agency_totals", "agencies.csv", i + 2, "A2")]
    assert f"contract_value is {real + 10}, recomputed {real:.2f}" in found[0].message


def test_agency_row_missing_and_district_altered(copy, capsys):
    inst, res = copy
    g = read(res, "agencies.csv")
    write(res, "agencies.csv", g[g.agency_id != "A7"])  # idle agencies are listed too
    d = read(res, "districts.csv")
    d.loc[1, "weight_served"] = "1"
    write(res, "districts.csv", d)
    rc, _, found = check(inst, res, capsys)
    assert rc == 1
    got = {(v.rule, v.subject, v.row) for v in found}
    assert got == {("agency_totals", "A7", None), ("district_totals", "D2", 3)}


# ----------------------------------------------------------------------------------------------
# unreadable input: exit 2, a clear message, no traceback
# ----------------------------------------------------------------------------------------------


def test_missing_result_file(copy, capsys):
    inst, res = copy
    (res / "districts.csv").unlink()
    rc = run_check(inst, res)
    err = capsys.readouterr().err
    assert rc == 2
    assert "results folder has 1 error" in err and "districts.csv: result file is missing" in err
    assert "Traceback" not in err


def test_missing_result_column(copy, capsys):
    inst, res = copy
    a = read(res, "assignments.csv")
    write(res, "assignments.csv", a.drop(columns=["cost"]))
    assert run_check(inst, res) == 2
    err = capsys.readouterr().err
    assert "assignments.csv, row 1, column cost: required column is missing" in err


def test_unreadable_instance_and_folder(copy, capsys, tmp_path):
    inst, res = copy
    assert run_check(tmp_path / "nowhere", res) == 2
    assert "instance" in capsys.readouterr().err
    assert run_check(inst, tmp_path / "nowhere") == 2
    assert "results folder not found" in capsys.readouterr().err
    (res / "summary.json").write_text("{not json")
    assert run_check(inst, res) == 2
    assert "summary.json: not readable JSON" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# through the command line
# ----------------------------------------------------------------------------------------------


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("tamper,code,expect", [
    (None, 0, "unserved, every rule holds"),
    (lambda res: edit_summary(res, cost=1.0), 1, "summary_totals: summary.json [cost]"),
    (lambda res: (res / "unserved.csv").unlink(), 2, "unserved.csv: result file is missing"),
])
def test_cli(copy, tamper: Callable[[Path], None] | None, code: int, expect: str):
    inst, res = copy
    if tamper is not None:
        tamper(res)
    exit_code, output = _cli(["check", str(inst), str(res)])
    assert exit_code == code, output
    assert expect in output
