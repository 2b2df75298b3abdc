"""Hypothesis on the planner's year: random tiny instances with incumbents, pins, rotation,
max_changes and the stability level; the solver against brute force on every level, the
checker on every plan, and "more freedom never serves less" (a larger max_changes).

The instances are drawn here (not by allocator generate): 1-2 districts, 3-6 demands, 2-4
agencies with random statuses, qualities, capacities and bids, a random budget, random
incumbents (some of agencies no longer in a position to serve), up to two pins, and random
continuity settings. Examples are derandomised (ALLOCATOR_PROPERTY_EXAMPLES for more).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from bruteforce import brute_force
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from instance_builder import (
    agency,
    bid,
    demand,
    district,
    enterprise,
    incumbent,
    pin,
    service,
    solve_folder,
    write_instance,
)

import allocator
from allocator.core.errors import InputError

EXAMPLES = int(os.environ.get("ALLOCATOR_PROPERTY_EXAMPLES", "25"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                    derandomize=not os.environ.get("ALLOCATOR_PROPERTY_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
RTOL = 2e-4  # a later level may fall short of its optimum by the MIP gap (1e-4)


@st.composite
def year_instances(draw: st.DrawFn) -> dict[str, Any]:
    """write_instance keyword arguments of a random tiny year with history."""
    districts = [f"D{i + 1}" for i in range(draw(st.integers(1, 2)))]
    services = [("S1", 1000), ("S2", 2000)][:draw(st.integers(1, 2))]
    ents = [enterprise(f"E{i + 1}", draw(st.sampled_from(districts)), draw(st.integers(1, 4)))
            for i in range(draw(st.integers(2, 5)))]
    pairs = draw(st.lists(st.tuples(st.integers(0, len(ents) - 1),
                                    st.sampled_from([s for s, _ in services])),
                          min_size=3, max_size=6, unique=True))
    dems = [demand(ents[e]["enterprise_id"], s, draw(st.integers(1, 6))) for e, s in pairs]
    n_ag = draw(st.integers(2, 4))
    ags = [agency(f"A{k + 1}", draw(st.integers(60, 100)),
                  draw(st.sampled_from([5, 8, 12, 20, 100])),
                  draw(st.sampled_from(["active"] * 6 + ["probation", "suspended"])),
                  draw(st.sampled_from(["*", "*", districts[0]])))
           for k in range(n_ag)]
    bids = [bid(a["agency_id"], draw(st.sampled_from([800, 900, 1000, 1100, 1200])) * rate
                // 1000, s)
            for a in ags for s, rate in services if draw(st.integers(0, 4)) > 0]
    assume(bids)
    incs = []
    offered = {(b["agency_id"], b["service_id"]) for b in bids}
    for d in dems:
        if draw(st.integers(0, 3)) > 0:
            # mostly an agency that bid again and is active, so the incumbent may serve
            able = [a["agency_id"] for a in ags if a["status"] == "active"
                    and (a["agency_id"], d["service_id"]) in offered]
            pool = able if able and draw(st.integers(0, 3)) > 0 else (
                [a["agency_id"] for a in ags] + ["A9"])
            incs.append(incumbent(d["enterprise_id"], draw(st.sampled_from(pool)),
                                  draw(st.integers(1, 4)), d["service_id"]))
    pins = []
    for _ in range(draw(st.integers(0, 2))):
        d = draw(st.sampled_from(dems))
        pins.append(pin(d["enterprise_id"], draw(st.sampled_from([a["agency_id"] for a in ags])),
                        draw(st.sampled_from(["assign", "forbid", "forbid"])), d["service_id"]))
    total = sum(d["person_days"] for d in dems) * 1000
    policy = {
        "budget": {"total": draw(st.sampled_from([0.5, 0.8, 1.5, 1.5])) * total},
        "coverage": {"mandatory_levels": draw(st.sampled_from([[], [], [4]]))},
        "anti_monopoly": {"min_agencies_per_district": draw(st.sampled_from([0, 0, 2])),
                          "max_share_in_district": draw(st.sampled_from([None, None, 0.7]))},
        "quality": {"min_score": 60, "min_score_by_risk": {4: 80}},
        "price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5},
        "continuity": {"keep_incumbents": draw(st.sampled_from([True, True, False])),
                       "max_changes": draw(st.sampled_from([None, 0.0, 0.3, 0.5, 1.0])),
                       "max_tenure_years": draw(st.sampled_from([None, 2, 3]))},
    }
    return dict(enterprises=ents, demands=dems, agencies=ags, bids=bids, incumbents=incs,
                pins=_distinct_pins(pins), policy_changes=policy,
                services=[service(s, r) for s, r in services],
                districts=[district(d) for d in districts])


def _distinct_pins(pins: list[dict]) -> list[dict]:
    """At most one pin per (demand, agency) and one assign per demand (else bad input)."""
    seen, assigned, out = set(), set(), []
    for p in pins:
        key = (p["enterprise_id"], p["service_id"])
        if (*key, p["agency_id"]) in seen or (p["action"] == "assign" and key in assigned):
            continue
        seen.add((*key, p["agency_id"]))
        if p["action"] == "assign":
            assigned.add(key)
        out.append(p)
    return out


def _solve_or_skip(path: Path, work: Path):
    """solve_folder (audited), skipping draws whose assign pin is not eligible (bad input)."""
    try:
        return solve_folder(path, work)
    except InputError as exc:
        assert all(p.file == "pins.csv" for p in exc.problems), exc.problems
        assume(False)


@PROPERTY
@given(year_instances())
def test_solver_equals_brute_force_on_every_level(kw: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_instance(Path(tmp) / "i", **kw)
        out = _solve_or_skip(path, Path(tmp))
        bf = brute_force(out.instance)
        event(f"feasible {bf.feasible}, stability level {bf.stability is not None}, "
              f"stability > 0 {bool(bf.stability)}")
        if not bf.feasible:
            assert out.status == "infeasible", out.result.summary
            return
        assert out.status == "optimal", out.result.summary
        s = out.result.summary
        assert s["coverage"] == pytest.approx(bf.coverage, rel=1e-6, abs=1e-6)
        if bf.stability is not None:
            assert s["stability"] == pytest.approx(bf.stability, rel=RTOL, abs=1e-6)
        assert s["quality"] == pytest.approx(bf.quality, rel=RTOL, abs=1e-6)
        assert s["cost"] <= bf.cost * (1 + RTOL) + 0.01


@PROPERTY
@given(year_instances(), st.sampled_from([(0.0, 0.5), (0.3, 1.0), (0.0, None), (0.5, None)]))
def test_more_freedom_never_serves_less(kw: dict[str, Any], ratios) -> None:
    """A larger max_changes (or none) keeps every plan of a smaller one feasible, so the
    optimal served weight cannot fall."""
    low, high = ratios
    served = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, ratio in enumerate((low, high)):
            kw["policy_changes"]["continuity"]["max_changes"] = ratio
            path = write_instance(Path(tmp) / f"i{k}", **kw)
            try:
                inst = allocator.load_instance(path)
                res = allocator.solve(inst)
            except InputError:
                assume(False)
            served.append(res)
    tight, loose = served
    if tight.has_plan:
        assert loose.has_plan
        assert tight.status.value == loose.status.value == "optimal"
        assert loose.coverage >= tight.coverage - 1e-6
    if not loose.has_plan:
        assert not tight.has_plan
