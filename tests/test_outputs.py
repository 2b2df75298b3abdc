"""Outputs procurement and leadership take as they are: Excel-safe CSV (BOM, names beside ids,
money to 2 decimals and ratios to 4, no formula), plan.xlsx that adds up, the HTML report's
figures and sentences, Chinese names, and the planner's stumbles mended. The real-browser
checks of the report are in test_report_browser.py."""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chinese_city import ENTERPRISES, write_chinese_city
from click.testing import CliRunner
from instance_builder import run_check

from allocator.analysis.plan_facts import idle_agencies, plan_limits
from allocator.cli import main
from allocator.core.tables import BOM, FORMULA_START, read_csv
from allocator.output.folder_reader import read_folder
from allocator.output.report import render_report
from allocator.whatif.compare import folder_name

BUDGET = 45_000


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> tuple[Path, Path]:
    """The Chinese city solved as a planner would: solve --report (policy: zh, 元)."""
    root = tmp_path_factory.mktemp("cn")
    inst = write_chinese_city(root / "城市", budget=BUDGET)
    out = root / "结果"
    code, stdout, stderr = cli("solve", inst, "--out", out, "--report", "--quiet")
    assert code == 0, stderr
    assert "已服务权重" in stdout  # the policy's language reaches the terminal
    return inst, out


def raw_rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith(BOM), f"{path.name} has no byte-order mark"
    return list(csv.reader(text[1:].splitlines()))


# ------------------------------------------------------------------------------------------
# CSV files
# ------------------------------------------------------------------------------------------

def test_csv_files_are_excel_safe_and_named(solved):
    inst, out = solved
    assert run_check(inst, out) == []
    csvs = sorted(out.glob("*.csv"))
    assert {p.name for p in csvs} >= {"assignments.csv", "unserved.csv", "agencies.csv",
                                      "districts.csv", "excluded.csv"}
    for p in csvs:
        rows = raw_rows(p)
        for r in rows:
            for cell in r:
                assert not cell.startswith(FORMULA_START), (p.name, cell)
    a = read_csv(out / "assignments.csv")
    names = {e: n for e, n, _d, _r in ENTERPRISES}
    assert (a["enterprise_name"] == a["enterprise_id"].map(names)).all()  # read back exactly
    assert set(a["district_name"]) <= {"市南区", "东港区", "北城区"}
    assert {"service_name", "agency_name"} <= set(a.columns)
    cols = list(a.columns)
    assert cols.index("enterprise_name") == cols.index("enterprise_id") + 1
    u = read_csv(out / "unserved.csv")
    assert len(u) and {"enterprise_name", "district_name", "service_name"} <= set(u.columns)
    assert "agency_name" in read_csv(out / "agencies.csv").columns
    assert "district_name" in read_csv(out / "districts.csv").columns


def _decimals(cell: str) -> int:
    return len(cell.split(".")[1]) if "." in cell and "e" not in cell.lower() else 0


def test_money_has_two_decimals_and_ratios_four(solved):
    _, out = solved
    checks = {"assignments.csv": {"cost": 2, "reference_cost": 2},
              "agencies.csv": {"contract_value": 2, "utilization": 4},
              "districts.csv": {"cost": 2, "coverage_ratio": 4, "max_agency_share": 4}}
    for file, cols in checks.items():
        rows = raw_rows(out / file)
        head = rows[0]
        for col, most in cols.items():
            k = head.index(col)
            cells = [r[k] for r in rows[1:] if r[k]]
            assert cells and max(_decimals(c) for c in cells) <= most, (file, col)
            assert not any("e" in c.lower() for c in cells), (file, col)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["coverage_ratio"] == round(s["coverage_ratio"], 4)
    assert s["policy"]["report"] == {"language": "zh", "currency": "元"}


# ------------------------------------------------------------------------------------------
# the workbook
# ------------------------------------------------------------------------------------------

def test_workbook_lots_add_up_to_the_csv_files(solved):
    openpyxl = pytest.importorskip("openpyxl")
    _, out = solved
    wb = openpyxl.load_workbook(out / "plan.xlsx")
    ag = read_folder(out).table("agencies.csv")
    busy = ag[ag["demands"] > 0]
    lots = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"formula in {ws.title}!{c.coordinate}"
        title = ws.cell(1, 1).value or ""
        if isinstance(title, str) and title.startswith("机构: "):
            rows = list(ws.iter_rows(values_only=True))
            total = rows[-1]
            assert total[0] == "合计"
            head = rows[3]
            lots[title.split()[1]] = (total[head.index("金额")], total[head.index("人日")],
                                      len(rows) - 5)
    assert set(lots) == set(busy["agency_id"])
    for r in busy.itertuples():
        value, days, n = lots[r.agency_id]
        assert value == pytest.approx(r.contract_value, abs=0.005)
        assert days == pytest.approx(r.load)
        assert n == r.demands
    matrix = wb["区×机构支出"]
    rows = list(matrix.iter_rows(values_only=True))
    d = read_folder(out).table("districts.csv").set_index("district_id")
    for row in rows[1:-1]:
        did = row[0].split()[0]
        assert row[-1] == pytest.approx(d.loc[did, "cost"], abs=0.005)
    assert rows[-1][-1] == pytest.approx(d["cost"].sum(), abs=0.01)
    # a name that looks like a formula is text in the workbook, exactly as written
    cells = {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row}
    assert "=平安技术服务" in cells and "@SUM(1)港口物流" in cells
    fmt = wb["分配明细"].cell(2, list(read_csv(out / "assignments.csv").columns).index(
        "cost") + 1).number_format
    assert "元" in fmt and "0.00" in fmt


# ------------------------------------------------------------------------------------------
# the report's figures and sentences
# ------------------------------------------------------------------------------------------

def headline(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-key="([a-z_]+)"(?: data-value="([^"]*)")?', html))


def test_report_headline_is_summary_json(solved):
    _, out = solved
    html = (out / "report.html").read_text(encoding="utf-8")
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    h = headline(html)
    assert h["status"] == s["status"]
    for key in ("coverage", "coverage_ratio", "cost", "agencies_used", "mandatory_served",
                "max_district_share"):
        assert float(h[key]) == pytest.approx(float(s[key]), abs=1e-9), key
    assert f"{100 * s['coverage_ratio']:.2f}%" in html
    assert f"{s['cost']:,.2f} 元" in html
    assert "技术服务机构分配方案" in html and "制约本方案的规则" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=|url\((?!data:)|@import", html)  # nothing to fetch
    # the budget binds (the plan leaves demands out for it) and the report says so
    assert "预算已用尽" in html or "预算已用完" in html


def test_report_says_why_idle_agencies_got_no_work(solved):
    inst, out = solved
    f = read_folder(out)
    from allocator.output.report import eligible_triples, find_instance

    triples = eligible_triples(find_instance(f, inst))
    idle = idle_agencies(f.table("agencies.csv"), f.table("assignments.csv"),
                         f.table("excluded.csv"), f.table("unserved.csv"), triples)
    why = dict(zip(idle["agency_id"], idle["reason"], strict=True))
    assert why["A5"] == "not_eligible"  # suspended: every offer kept out
    assert why["A4"] == "capacity"  # 3 person-days, every demand needs more
    assert why.get("A6") in ("dearer", "lower_quality", "unserved")  # eligible, not chosen
    assert "A1" not in why


def frames(assign: list[tuple], agencies: list[tuple], districts: list[tuple]):
    a = pd.DataFrame(assign, columns=["enterprise_id", "service_id", "agency_id",
                                      "district_id", "load", "cost", "quality", "weight"])
    g = pd.DataFrame(agencies, columns=["agency_id", "agency_name", "capacity_days",
                                        "demands", "quality", "status"])
    d = pd.DataFrame(districts, columns=["district_id", "district_name", "budget_cap",
                                         "weight_total", "weight_served"])
    return a, g, d


def test_limits_are_recomputed_with_the_files_rounding():
    a, g, d = frames(
        [("E1", "S1", "A1", "D1", 10.0, 400.0, 90, 1), ("E2", "S1", "A2", "D1", 5.0, 600.0,
                                                       80, 1),
         ("E3", "S1", "A1", "D2", 4.9999999999, 300.0, 90, 1)],
        [("A1", "甲", 15.0, 2, 90, "active"), ("A2", "乙", 5.5, 1, 80, "active")],
        [("D1", "市南区", 1000.004, 2, 2), ("D2", "东港区", None, 1, 1)])
    policy = {"anti_monopoly": {"max_share_in_district": 0.6,
                                "min_agencies_per_district": 2}}
    unserved = pd.DataFrame({"enterprise_id": ["E9"], "service_id": ["S1"],
                             "district_id": ["D2"], "reason": ["budget"]})
    lims = {(x.rule, x.subject): x for x in plan_limits(policy, 1300.0, a, g, d, unserved)}
    assert ("capacity", "A1") in lims  # 14.9999999999 of 15: at capacity
    assert ("capacity", "A2") not in lims  # 5 of 5.5: room left
    assert ("district_budget_cap", "D1") in lims  # 1000 of a 1000.004 cap (rounded cent)
    assert ("max_share_in_district", "A2@D1") in lims  # 600 of 1000 = the 0.6 cap
    assert ("max_share_in_district", "A1@D1") not in lims  # 0.4
    assert ("min_agencies_per_district", "D1") in lims  # 2 agencies, the minimum
    assert lims[("budget", "city")].left_out == 1  # 1300 of 1300 and a demand left out
    none = plan_limits({}, 5000.0, a, g, d.assign(budget_cap=np.nan), unserved.iloc[:0])
    assert {x.rule for x in none} == {"capacity"}


def test_idle_agency_reasons_from_the_offers():
    a, g, _ = frames([("E1", "S1", "A1", "D1", 2.0, 100.0, 90, 1),
                      ("E2", "S1", "A3", "D1", 2.0, 100.0, 70, 1)],
                     [("A1", "甲", 10.0, 1, 90, "active"), ("A2", "乙", 10.0, 0, 70, "active"),
                      ("A3", "丙", 10.0, 1, 70, "active"), ("A4", "丁", 1.0, 0, 99, "active"),
                      ("A5", "戊", 10.0, 0, 99, "suspended")], [])
    triples = pd.DataFrame(
        [("E1", "S1", "A1", 100.0, 2.0), ("E1", "S1", "A2", 90.0, 2.0),  # A2: lower quality
         ("E2", "S1", "A3", 100.0, 2.0), ("E2", "S1", "A2", 120.0, 2.0),  # same, dearer
         ("E3", "S1", "A4", 50.0, 2.0)],  # A4: 2 days, capacity 1
        columns=["enterprise_id", "service_id", "agency_id", "cost", "load"])
    excluded = pd.DataFrame({"agency_id": ["A5"], "reason": ["status"],
                             "detail": ["status suspended"]})
    idle = idle_agencies(g, a, excluded, pd.DataFrame(), triples).set_index("agency_id")
    assert idle.loc["A2", "lower_quality"] == 1 and idle.loc["A2", "dearer"] == 1
    assert idle.loc["A4", "reason"] == "capacity"
    assert idle.loc["A5", "reason"] == "not_eligible"
    assert "suspended" in idle.loc["A5", "detail"]


def test_no_plan_report_says_what_to_change(tmp_path):
    inst = write_chinese_city(tmp_path / "i", budget=5_000)
    out = tmp_path / "r"
    code, stdout, _ = cli("solve", inst, "--out", out, "--report", "--quiet", "--lang", "en")
    assert code == 1
    diag = read_csv(out / "diagnosis.csv")
    assert {"subject_name", "change", "to"} <= set(diag.columns)
    b = diag[diag["rule"] == "budget"]
    assert len(b) == 1 and b["change"].iloc[0] == "policy.yaml budget.total"
    need = float(b["required"].iloc[0])
    assert b["to"].iloc[0] == f"{need:.2f}".removesuffix(".00") + " or more"
    assert "To make it hold: policy.yaml budget.total" in stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "What to change" in html or "what to change" in html
    assert "policy.yaml budget.total" in html
    # the budget the diagnosis asks for is enough: a solve with it has a plan
    code, _, _ = cli("solve", inst, "--out", tmp_path / "r2", "--budget", str(need), "--quiet",
                     "--no-workbook")
    assert code == 0


def test_diagnosis_names_districts_and_the_policy_key(tmp_path):
    inst = write_chinese_city(tmp_path / "i", policy_changes={
        "anti_monopoly": {"min_agencies_per_district": 5}})  # 4 agencies can work
    out = tmp_path / "r"
    code, _, _ = cli("solve", inst, "--out", out, "--quiet", "--no-workbook")
    assert code == 1
    diag = read_csv(out / "diagnosis.csv")
    r = diag[diag["rule"] == "min_agencies_per_district"]
    assert len(r)
    assert (r["change"] == "policy.yaml anti_monopoly.min_agencies_per_district").all()
    assert r["subject_name"].isin(["市南区", "东港区", "北城区"]).all()
    for msg, sub, name in zip(r["message"], r["subject"], r["subject_name"], strict=True):
        assert f"{sub} ({name})" in msg
        assert "To make it hold: policy.yaml anti_monopoly.min_agencies_per_district" in msg
    # the value it proposes makes that rule hold
    k = min(int(t.split()[0]) for t in r["to"])
    fixed = write_chinese_city(tmp_path / "fixed", policy_changes={
        "anti_monopoly": {"min_agencies_per_district": k}})
    code, _, _ = cli("solve", fixed, "--out", tmp_path / "r2", "--quiet", "--no-workbook")
    assert code == 0


def test_extra_csv_files_are_shown(solved, tmp_path):
    _, out = solved
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    pd.DataFrame({"source_id": ["F1"], "name": ["省级专项资金"], "amount": [30000.0]}).to_csv(
        copy / "funding.csv", index=False)
    html = render_report(copy, "zh")
    assert "funding.csv" in html and "省级专项资金" in html and "30,000.00" in html
    from allocator.output.workbook import write_workbook

    openpyxl = pytest.importorskip("openpyxl")
    path = write_workbook(copy, tmp_path / "p.xlsx", "en")
    assert "funding" in openpyxl.load_workbook(path).sheetnames


# ------------------------------------------------------------------------------------------
# what-if folders, charts and folder names in Chinese
# ------------------------------------------------------------------------------------------

def test_chinese_scenario_names_give_distinct_readable_folders():
    names = ["基准方案", "增加预算", "严格质量", "基准方案 2", "a/b:c", "CON"]
    folders = [folder_name(n) for n in names]
    assert folders[:4] == ["基准方案", "增加预算", "严格质量", "基准方案_2"]
    assert len(set(folders)) == len(folders)
    assert all(re.fullmatch(r"[\w.-]+", f) for f in folders)
    assert folders[5] != "CON"


def test_compare_with_chinese_scenarios(tmp_path):
    inst = write_chinese_city(tmp_path / "i", budget=BUDGET)
    sc = tmp_path / "情景.yaml"
    sc.write_text("scenarios:\n  基准方案: {}\n  增加预算: {budget: 9e4}\n"
                  "  严格质量: {quality: {min_score: 90}}\n", encoding="utf-8")
    out = tmp_path / "对比"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = cli("compare", inst, "--scenarios", sc, "--out", out, "--quiet",
                           "--report", "--time-limit", "20")
    assert code == 0, err
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"基准方案", "增加预算",
                                                            "严格质量"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "政策情景对比" in html and "增加预算" in html
    assert (out / "comparison.png").stat().st_size > 0


def test_sweep_marks_both_budgets(tmp_path):
    inst = write_chinese_city(tmp_path / "i", budget=BUDGET)
    out = tmp_path / "sweep"
    code, stdout, err = cli("sweep", inst, "--budgets", "1000,30000:90000:4", "--out", out,
                            "--quiet", "--report", "--time-limit", "20")
    assert code == 0, err
    s = json.loads((out / "frontier_summary.json").read_text(encoding="utf-8"))
    full = s["budget_serving_all"]
    assert full["value"] is not None and full["coverage_ratio"] == pytest.approx(1.0)
    fr = pd.read_csv(out / "frontier.csv", encoding="utf-8-sig")
    top = fr.sort_values("budget").iloc[-1]
    assert full["value"] <= float(top["budget"]) + 0.01 or top["coverage_ratio"] < 1
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "服务全部可服务需求的最低预算" in html and "无方案" in html  # 1000 has no plan
    assert f"{full['value']:,.2f}" in html


# ------------------------------------------------------------------------------------------
# the planner's stumbles
# ------------------------------------------------------------------------------------------

def test_budget_with_thousands_separators_says_how_to_write_it(solved):
    inst, _ = solved
    code, _, err = cli("solve", inst, "--out", Path(inst).parent / "x", "--budget", "81,500")
    assert code == 2 and "81500" in err and "Traceback" not in err


def test_levels_mistake_names_the_option(solved, tmp_path):
    inst, _ = solved
    code, _, err = cli("solve", inst, "--out", tmp_path / "x", "--levels", "quality")
    assert code == 2 and "--levels" in err and "policy.yaml" not in err


def test_report_policy_keys_are_checked(tmp_path):
    from allocator.data.policy import parse_policy

    pol, problems = parse_policy({"budget": {"total": 1}, "report": {"language": "中文"}})
    assert pol is not None and pol.language == "zh" and pol.currency == "CNY"
    pol, problems = parse_policy({"budget": {"total": 1},
                                  "report": {"language": "fr", "curency": "元"}})
    assert pol is None
    text = " ".join(str(p) for p in problems)
    assert "did you mean 'currency'" in text and "report.language" in text
    assert "key report.language" in text  # a YAML file has keys, not columns


def test_misspelt_header_does_not_hide_other_errors(solved, tmp_path):
    inst, _ = solved
    bad = tmp_path / "bad"
    shutil.copytree(inst, bad)
    lines = (bad / "agencies.csv").read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace("quality", "qualty")
    lines[2] = lines[2].replace("active", "actve")
    (bad / "agencies.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = cli("validate", bad)
    assert code == 2
    assert "rename column 'qualty' to 'quality'" in err and "'actve'" in err


def test_retotal_after_a_hand_edit(solved, tmp_path):
    inst, out = solved
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    a = read_csv(edited / "assignments.csv")
    other = next(x for x in ("A1", "A2", "A3", "A6") if x != a["agency_id"].iloc[0])
    a.loc[0, "agency_id"] = other  # a planner moves one demand to another agency
    a.to_csv(edited / "assignments.csv", index=False, encoding="utf-8-sig")
    code, stdout, _ = cli("check", inst, edited)
    assert code == 1 and "allocator retotal" in stdout
    code, _, err = cli("retotal", inst, edited)
    assert code == 0, err
    findings = run_check(inst, edited)
    assert not [f for f in findings if "_totals" in f.split(":")[0]]
    s = json.loads((edited / "summary.json").read_text(encoding="utf-8"))
    assert s["status"] == "feasible" and "retotalled" in s
    assert (edited / "report.html").is_file() and (edited / "plan.xlsx").is_file()


def test_status_suggestions_keep_the_meaning():
    from allocator.data.validation import status_hint

    assert status_hint("inactive") == "suspended"  # not 'active', its opposite
    assert status_hint("actve") == "active"
    assert status_hint("deactivated") == "" and status_hint("nonactive") == ""
    assert status_hint("blacklist") == "blacklisted"
