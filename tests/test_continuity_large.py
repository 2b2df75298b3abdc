"""The province-scale path and the planner's year: it honours pins and rotation (and
max_changes 0, which fixes every still-eligible incumbent); a max_changes that allows some
changes keeps the full model, and the stability level, which the path does not optimise, is
reported as such. Forced on small generated cities (LARGE_TRIPLES patched to 0), every plan
judged by the independent checker."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from instance_builder import variant

import allocator
from allocator.analysis.audit import check_results
from allocator.cli import main
from allocator.data.generate import generate_instance, write_instance
from allocator.eligibility import compute_eligibility
from allocator.pipeline import solve as solve_mod
from allocator.pipeline.large_scale import levels as ls


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    monkeypatch.setattr(solve_mod, "LARGE_TRIPLES", 0)


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """A generated city with last year's plan, some pins and rotation after 3 years."""
    path = tmp_path_factory.mktemp("year") / "city"
    write_instance(generate_instance(400, 12, 4, seed=11, history=True), path)
    inst = allocator.load_instance(path)
    t = compute_eligibility(inst).triples
    t = t[t["risk_level"] <= 2].astype({"enterprise_id": str, "service_id": str,
                                        "agency_id": str})
    distinct = t.drop_duplicates("demand").drop_duplicates("agency_id")
    firsts, forbid = distinct.head(4), distinct.iloc[4:8]
    pins = pd.concat([firsts.assign(action="assign"), forbid.assign(action="forbid")])
    pins[["enterprise_id", "service_id", "agency_id", "action"]].assign(note="").to_csv(
        path / "pins.csv", index=False)
    return variant(path, path.parent / "city3", {"continuity": {"max_tenure_years": 3}})


def solve_cli(path: Path, out: Path) -> dict:
    res = CliRunner().invoke(main, ["solve", str(path), "--out", str(out), "--time-limit",
                                    "60"])
    assert res.exit_code == 0, res.output
    assert check_results(path, out) == []  # pins, rotation, changes.csv audited
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_large_path_honours_pins_and_rotation(city, tmp_path, forced):
    s = solve_cli(city, tmp_path / "r")
    assert "large_scale" in s
    a = pd.read_csv(tmp_path / "r" / "assignments.csv", dtype=str)
    pins = pd.read_csv(city / "pins.csv", dtype=str)
    got = set(zip(a["enterprise_id"], a["service_id"], a["agency_id"], strict=True))
    for p in pins.itertuples():
        assert ((p.enterprise_id, p.service_id, p.agency_id) in got) == (p.action == "assign")
    stab = next(lv for lv in s["levels"] if lv["name"] == "stability")
    assert stab["optimised"] is False and "not optimised" in stab["solver_status"]
    assert "stability" not in s["levels_optimised"]
    assert s["large_scale"]["rules_not_held"]
    assert s["changes"]["rotated"] > 0


def test_partial_max_changes_keeps_the_full_model(city, tmp_path, forced):
    # coverage alone: the routing and the max_changes row are what is checked here
    path = variant(city, tmp_path / "half", {"continuity": {"max_changes": 0.5,
                                                            "keep_incumbents": False},
                                             "solver": {"levels": ["coverage"]}})
    s = solve_cli(path, tmp_path / "r")
    assert "large_scale" not in s
    assert s["full_model_kept_by"] == ["continuity.max_changes"]
    c = s["changes"]
    assert c["changed"] <= c["max_changes_allowed"]


def test_max_changes_zero_stays_on_the_large_path(city, tmp_path, forced):
    """Year two of the city under max_changes 0: the large path fixes every incumbent that can
    still serve, and the plan keeps them all."""
    y1 = tmp_path / "y1r"
    solve_cli(city, y1)
    allocator.evaluate(city, y1, out=tmp_path / "y2")
    path = variant(tmp_path / "y2", tmp_path / "y2z", {"continuity": {"max_changes": 0}})
    s = solve_cli(path, tmp_path / "r2")
    assert "large_scale" in s
    assert s["changes"]["changed"] == 0 and s["changes"]["kept"] > 0
