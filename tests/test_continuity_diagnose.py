"""`diagnose` names a pin or a continuity rule when it makes the year infeasible, with the
subject and the size: by counting where the fixed assignments alone break a rule, by the
elastic re-solve where it takes the other rules too."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from instance_builder import (
    agency,
    bid,
    demand,
    enterprise,
    incumbent,
    pin,
    solve_folder,
    write_instance,
)

import allocator
from allocator.cli import main


def rows(path: Path) -> list[dict]:
    rep = allocator.diagnose(allocator.load_instance(path))
    assert rep.outcome == "infeasible", rep.table
    return rep.table.to_dict("records")


def three(path: Path, **kw) -> Path:
    return write_instance(path, enterprises=[enterprise(f"E{k}") for k in range(1, 4)],
                          demands=[demand(f"E{k}") for k in range(1, 4)],
                          bids=[bid("A1"), bid("A2")], **kw)


def test_pinned_agency_over_capacity(tmp_path):
    path = three(tmp_path / "i", agencies=[agency("A1", capacity_days=10), agency("A2")],
                 pins=[pin(f"E{k}", "A1") for k in range(1, 4)])
    (r,) = rows(path)
    assert (r["rule"], r["subject"], r["required"], r["available"], r["shortfall"]) == (
        "pin", "A1", 15.0, 10.0, 5.0)
    assert "pins.csv" in r["message"]
    out = solve_folder(path, tmp_path)  # solve writes the same reasons; check accepts
    assert out.status == "infeasible" and "pin" in set(out.result.diagnosis["rule"])


def test_pins_beyond_the_budget(tmp_path):
    path = three(tmp_path / "i", agencies=[agency("A1"), agency("A2")],
                 pins=[pin("E1", "A1"), pin("E2", "A2")],
                 policy_changes={"budget": {"total": 8000}})
    found = {(r["rule"], r["subject"]): r for r in rows(path)}
    r = found[("pin", "city")]
    assert (r["required"], r["available"], r["shortfall"]) == (10000, 8000, 2000)


def test_max_changes_zero_overloads_the_incumbent(tmp_path):
    path = three(tmp_path / "i", agencies=[agency("A1", capacity_days=10), agency("A2")],
                 incumbents=[incumbent(f"E{k}", "A1") for k in range(1, 4)],
                 policy_changes={"continuity": {"max_changes": 0}})
    (r,) = rows(path)
    assert (r["rule"], r["subject"], r["shortfall"]) == ("max_changes", "A1", 5.0)


def _suspended_incumbent_city(path, max_changes: float):
    """E3 mandatory (risk 4), its incumbent A3 suspended; A1, the only other agency good
    enough for it, has room only for its own incumbents E1 and E2."""
    return write_instance(
        path,
        enterprises=[enterprise("E1"), enterprise("E2"), enterprise("E3", risk_level=4)],
        demands=[demand(f"E{k}") for k in range(1, 4)],
        agencies=[agency("A1", 90, capacity_days=10), agency("A2", 70),
                  agency("A3", 95, status="suspended")],
        bids=[bid("A1"), bid("A2"), bid("A3")],
        incumbents=[incumbent("E1", "A1"), incumbent("E2", "A1"), incumbent("E3", "A3")],
        policy_changes={"coverage": {"mandatory_levels": [4]},
                        "quality": {"min_score_by_risk": {4: 80}},
                        "continuity": {"max_changes": max_changes}})


def test_max_changes_zero_with_a_suspended_incumbent(tmp_path):
    """E3 is mandatory (risk 4); its incumbent A3 is suspended, and the only other agency
    that may serve it, A1, has room only for its own incumbents E1 and E2. Under
    max_changes 0 they must stay, so E3 cannot be served: one change is missing."""
    found = rows(_suspended_incumbent_city(tmp_path / "i", 0))
    r = next(r for r in found if r["rule"] == "max_changes")
    assert (r["subject"], r["required"], r["available"], r["shortfall"]) == (
        "city", 1, 0, 1)
    # with one change allowed (0.5 of the two still-eligible incumbents) the year has a plan
    out = solve_folder(_suspended_incumbent_city(tmp_path / "j", 0.5), tmp_path)
    assert out.status == "optimal" and ("E3", "S1", "A1") in out.plan


def test_cli_diagnose_prints_the_pin(tmp_path):
    path = three(tmp_path / "i", agencies=[agency("A1", capacity_days=10), agency("A2")],
                 pins=[pin(f"E{k}", "A1") for k in range(1, 4)])
    res = CliRunner().invoke(main, ["diagnose", str(path)])
    assert res.exit_code == 1 and "pins.csv assigns it 3 demands" in res.output


@pytest.mark.parametrize("block", ["pin", "max_changes"])
def test_elastic_relaxes_the_new_rows(block):
    from allocator.analysis.diagnose.elastic import DEFINITIONS, RELAX

    assert block in RELAX and block not in DEFINITIONS
