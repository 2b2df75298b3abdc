"""`allocator diff`: two plans side by side, per demand, agency and district, and the totals;
the folder written atomically and never over a user's files or the compared folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from instance_builder import agency, bid, demand, enterprise, variant, write_instance

import allocator
from allocator.cli import main
from allocator.core.tables import read_csv


@pytest.fixture
def two_plans(tmp_path: Path) -> tuple[Path, Path]:
    """Plan A: A1 (best) serves everything. Plan B: A1 suspended, A2 takes E1 and E2; E3
    (only A1 bids for S2) goes unserved; E4 is a new demand served in B only."""
    kw = dict(enterprises=[enterprise("E1", "D1"), enterprise("E2", "D1"),
                           enterprise("E3", "D2"), enterprise("E4", "D2")],
              agencies=[agency("A1", 95), agency("A2", 80)],
              bids=[bid("A1"), bid("A2", 1100), bid("A1", service_id="S2")],
              services=[{"service_id": "S1", "name": "S1", "reference_rate": 1000},
                        {"service_id": "S2", "name": "S2", "reference_rate": 1000}])
    a = write_instance(tmp_path / "a", demands=[demand("E1"), demand("E2"),
                                                 demand("E3", "S2")], **kw)
    b = variant(a, tmp_path / "b", tables={
        "agencies.csv": [agency("A1", 95, status="suspended"), agency("A2", 80)],
        "demands.csv": [demand("E1"), demand("E2"), demand("E3", "S2"), demand("E4")]})
    for src, out in ((a, "ra"), (b, "rb")):
        res = CliRunner().invoke(main, ["solve", str(src), "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    return tmp_path / "ra", tmp_path / "rb"


def test_diff_per_demand_agency_and_district(two_plans, tmp_path):
    ra, rb = two_plans
    d = allocator.diff(ra, rb)
    dem = d.demands.set_index("enterprise_id")
    assert dem.loc["E1", "change"] == "moved" and dem.loc["E1", "agency_b"] == "A2"
    assert dem.loc["E3", "change"] == "dropped" and dem.loc["E3", "in_b"] == "unserved"
    assert dem.loc["E4", "change"] == "added" and dem.loc["E4", "in_a"] == "absent"
    assert dem.loc["E1", "cost_change"] == pytest.approx(500.0)
    ag = d.agencies.set_index("agency_id")
    assert ag.loc["A1", "value_a"] == pytest.approx(15000)
    assert ag.loc["A1", "value_change"] == pytest.approx(-15000)
    assert (ag.loc["A1", "lost"], ag.loc["A2", "gained"]) == (3, 3)
    assert ag.loc["A2", "demands_b"] == 3 and ag.loc["A2", "value_b"] == pytest.approx(16500)
    dis = d.districts.set_index("district_id")
    assert dis.loc["D1", "cost_change"] == pytest.approx(1000)
    assert dis.loc["D2", "cost_a"] == pytest.approx(5000) and dis.loc["D2", "cost_b"] == 5500
    assert dis.loc["D2", "coverage_ratio_a"] == 1.0
    assert dis.loc["D2", "coverage_ratio_b"] == pytest.approx(0.5)
    s = d.summary
    assert s["demands"] == {"same": 0, "moved": 2, "added": 1, "dropped": 1}
    assert s["totals"]["cost"]["change"] == pytest.approx(1500)
    assert s["agencies"]["gone_in_b"] == 1


def test_diff_of_a_plan_with_itself_is_empty(two_plans):
    ra, _ = two_plans
    d = allocator.diff(ra, ra)
    assert set(d.demands["change"]) == {"same"}
    assert (d.agencies["value_change"] == 0).all()
    assert all(t["change"] in (0, None) for t in d.summary["totals"].values())


def test_diff_of_plan_objects_equals_diff_of_folders(two_plans, tmp_path):
    ra, rb = two_plans
    pa = allocator.solve(allocator.load_instance(tmp_path / "a"))
    pb = allocator.solve(allocator.load_instance(tmp_path / "b"))
    by_obj, by_dir = allocator.diff(pa, pb), allocator.diff(ra, rb)
    assert by_obj.summary["demands"] == by_dir.summary["demands"]
    assert list(by_obj.demands["change"]) == list(by_dir.demands["change"])


def test_cli_diff_writes_its_folder_and_never_over_inputs(two_plans, tmp_path):
    ra, rb = two_plans
    out = tmp_path / "d"
    res = CliRunner().invoke(main, ["diff", str(ra), str(rb), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "demands: 0 same agency, 2 moved, 1 served only in B, 1 served only in A" in res.output
    assert {p.name for p in out.iterdir()} == {"demands.csv", "agencies.csv", "districts.csv",
                                               "diff.json", ".allocator.json"}
    assert read_csv(out / "demands.csv")["change"].tolist().count("moved") == 2
    assert json.loads((out / "diff.json").read_text())["demands"]["added"] == 1
    # again over its own folder: fine; over a compared folder or a user's: refused
    assert CliRunner().invoke(main, ["diff", str(ra), str(rb), "--out", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["diff", str(ra), str(rb), "--out", str(ra)]).exit_code == 2
    user = tmp_path / "user"
    user.mkdir()
    (user / "x.txt").write_text("mine")
    res = CliRunner().invoke(main, ["diff", str(ra), str(rb), "--out", str(user)])
    assert res.exit_code == 2 and (user / "x.txt").read_text() == "mine"


def test_cli_diff_without_out_prints_only(two_plans, tmp_path):
    ra, rb = two_plans
    res = CliRunner().invoke(main, ["diff", str(ra), str(rb)])
    assert res.exit_code == 0 and "coverage" in res.output
    res = CliRunner().invoke(main, ["diff", str(ra), str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not found" in res.output


def test_report_renders_a_diff_folder_and_changes(two_plans, tmp_path):
    """`allocator report` on a diff folder (English and Chinese), and a plan's changes.csv as
    a section of its own."""
    ra, rb = two_plans
    allocator.diff(ra, rb, out=tmp_path / "d")
    page = allocator.report(tmp_path / "d").read_text(encoding="utf-8")
    assert "Two plans side by side" in page and 'data-table="diff_demands"' in page
    zh = allocator.report(tmp_path / "d", out=tmp_path / "zh.html", lang="zh")
    assert "两个方案对比" in zh.read_text(encoding="utf-8")
    from instance_builder import incumbent, variant

    inst = variant(tmp_path / "b", tmp_path / "b2", tables={
        "incumbents.csv": [incumbent("E1", "A1", 2), incumbent("E2", "A2", 1)]})
    plan = allocator.solve(allocator.load_instance(inst))
    out = plan.write(tmp_path / "r2", report=True)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "demands had an incumbent last year" in page
    assert 'data-table="changes"' in page  # E1's incumbent A1 is suspended: not kept
