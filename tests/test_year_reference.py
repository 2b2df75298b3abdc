"""Year-two plans against the independent reference model (benchmarks/baseline.py, a plain
PuLP model of the spec extended with pins, rotation, max_changes and the stability level), on
every level: on cities with history from `allocator generate --history`, on a year two made by
`allocator evaluate`, and on years drawn by a small generator written here (not ours)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from instance_builder import (
    agency,
    bid,
    demand,
    district,
    enterprise,
    incumbent,
    pin,
    run_check,
    service,
    write_instance,
)

import allocator
from allocator.data.generate import generate_instance
from allocator.data.generate import write_instance as write_city
from benchmarks.baseline import solve_baseline

GAP = 1e-7
RTOL = 1e-5


def edit_policy(path: Path, changes: dict) -> None:
    pol = yaml.safe_load((path / "policy.yaml").read_text(encoding="utf-8"))
    for section, values in changes.items():
        pol.setdefault(section, {}).update(values)
    (path / "policy.yaml").write_text(yaml.safe_dump(pol, sort_keys=False), encoding="utf-8")


def assert_equals_reference(path: Path, work: Path) -> allocator.Plan:
    plan = allocator.solve(allocator.load_instance(path), time_limit=120)
    ref = solve_baseline(path, time_limit=120, mip_gap=GAP)
    assert plan.status.value == ref["status"] == "optimal", (plan.summary()["levels"],
                                                             ref["levels"])
    assert plan.coverage == pytest.approx(ref["coverage"], rel=1e-9, abs=1e-9)
    if "stability" in ref:
        assert plan.stability == pytest.approx(ref["stability"], rel=1e-9, abs=1e-9)
        assert "stability" in plan.summary()["levels_optimised"]
    assert plan.quality == pytest.approx(ref["quality"], rel=RTOL)
    assert plan.cost == pytest.approx(ref["cost"], rel=RTOL)
    out = plan.write(work / f"r-{path.name}")
    assert run_check(path, out) == []
    return plan


# ------------------------------------------------------------------------------------------
# our generator's histories, and a year two made by evaluate
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,continuity", [
    (1, {"max_tenure_years": 3}),
    (2, {"max_changes": 0.5}),
    (4, {"max_changes": 0.2, "max_tenure_years": 2}),
])
def test_generated_history_equals_reference(tmp_path, seed, continuity):
    path = write_city(generate_instance(30, 6, 2, seed=seed, history=True), tmp_path / "y")
    edit_policy(path, {"continuity": continuity, "solver": {"mip_gap": GAP}})
    assert_equals_reference(path, tmp_path)


def test_year_two_from_evaluate_equals_reference(tmp_path):
    y1 = write_city(generate_instance(30, 6, 2, seed=7, history=True), tmp_path / "y1")
    edit_policy(y1, {"solver": {"mip_gap": GAP}})
    p1 = assert_equals_reference(y1, tmp_path)
    allocator.evaluate(y1, tmp_path / "r-y1", out=tmp_path / "y2")
    y2 = tmp_path / "y2b"
    shutil.copytree(tmp_path / "y2", y2)
    edit_policy(y2, {"continuity": {"max_changes": 0.25, "max_tenure_years": 2}})
    p2 = assert_equals_reference(y2, tmp_path)
    assert p2.summary()["changes"]["kept"] > 0 and p1.has_plan


# ------------------------------------------------------------------------------------------
# an independent small generator
# ------------------------------------------------------------------------------------------


def random_year(path: Path, seed: int) -> Path:
    """A small city drawn here: 2-3 districts, 8-14 enterprises (risk 1-4), 1-2 services,
    4-6 agencies (one of them strong, active and everywhere so the major risks are
    servable), bids around the reference rate, last year's plan on about 70 % of the demands
    (by any agency that bid, some now suspended or gone), an assign pin on the strong agency,
    a forbid pin, and random continuity rules."""
    rng = np.random.default_rng(seed)
    dists = [f"D{k + 1}" for k in range(int(rng.integers(2, 4)))]
    svcs = [("S1", 1000), ("S2", 1500)][:int(rng.integers(1, 3))]
    ents = [enterprise(f"E{k + 1:02d}", str(rng.choice(dists)), int(rng.integers(1, 5)))
            for k in range(int(rng.integers(8, 15)))]
    dems = []
    for e in ents:
        for s, _ in svcs:
            if rng.random() < 0.7 or s == "S1":
                dems.append(demand(e["enterprise_id"], s, int(rng.integers(2, 8))))
    n_ag = int(rng.integers(4, 7))
    ags = [agency("A1", 95, 400)]
    for k in range(2, n_ag + 1):
        ags.append(agency(f"A{k}", int(rng.integers(62, 99)), int(rng.integers(15, 60)),
                          str(rng.choice(["active"] * 5 + ["probation", "suspended"])),
                          str(rng.choice(["*", "*", ";".join(dists[:2])]))))
    bids = [bid("A1", rate, s) for s, rate in svcs]
    for a in ags[1:]:
        for s, rate in svcs:
            if rng.random() < 0.85:
                bids.append(bid(a["agency_id"], int(rate * rng.uniform(0.85, 1.3)), s))
    names = [a["agency_id"] for a in ags] + ["A99"]
    where = {e["enterprise_id"]: e["district_id"] for e in ents}
    offers = {(b["agency_id"], b["service_id"]) for b in bids}
    incs = []
    for d in dems:
        if rng.random() < 0.3:
            continue
        # mostly an agency that could serve again (it bids, is active, covers the district)
        able = [a["agency_id"] for a in ags[1:] if (a["agency_id"], d["service_id"]) in offers
                and a["status"] == "active" and (a["districts"] == "*"
                                                 or where[d["enterprise_id"]] in a["districts"])]
        who = str(rng.choice(able if able and rng.random() < 0.8 else names))
        incs.append(incumbent(d["enterprise_id"], who, int(rng.choice([1, 1, 2, 2, 3, 4])),
                              d["service_id"]))
    low = [d for d in dems if next(e for e in ents if e["enterprise_id"] == d["enterprise_id"])
           ["risk_level"] <= 2]
    pins = [pin(low[0]["enterprise_id"], "A1", "assign", low[0]["service_id"])] if low else []
    if len(dems) > 3:
        pins.append(pin(dems[-1]["enterprise_id"], str(rng.choice(names[1:-1])), "forbid",
                        dems[-1]["service_id"]))
    total = sum(d["person_days"] for d in dems) * 1200
    return write_instance(
        path, enterprises=ents, demands=dems, agencies=ags, bids=bids, incumbents=incs,
        pins=pins, districts=[district(d) for d in dists],
        services=[service(s, r) for s, r in svcs],
        policy_changes={
            "budget": {"total": float(rng.choice([0.45, 0.6, 0.8])) * total},
            "coverage": {"mandatory_levels": [4]},
            "anti_monopoly": {"min_agencies_per_district": int(rng.choice([0, 1, 2])),
                              "max_share_in_district": [None, 0.8][int(rng.integers(0, 2))]},
            "quality": {"min_score": 60, "min_score_by_risk": {3: 70, 4: 80}},
            "price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5},
            "solver": {"mip_gap": GAP},
            "continuity": {"keep_incumbents": bool(rng.random() < 0.8),
                           "max_changes": [None, 0.2, 0.4, 0.7, 0.0][int(rng.integers(0, 5))],
                           "max_tenure_years": [None, 3, 4][int(rng.integers(0, 3))]}})


@pytest.mark.parametrize("seed", range(10))
def test_independent_years_equal_reference(tmp_path, seed):
    path = random_year(tmp_path / f"y{seed}", seed)
    plan = allocator.solve(allocator.load_instance(path), time_limit=120)
    ref = solve_baseline(path, time_limit=120, mip_gap=GAP)
    if ref["status"] == "infeasible":
        assert plan.status.value == "infeasible"
        assert plan.diagnosis is not None and len(plan.diagnosis)
        return
    assert_equals_reference(path, tmp_path)
