"""Hypothesis: random tiny instances, solver against brute force, checker on every plan.

Instances have 2-3 districts, 3-7 demands, 2-4 agencies and random statuses, qualities,
service areas, bids (some outside the price band), quotes, conflicts, capacities, budgets,
caps and rules, so that every rule of spec §4 is sometimes binding and some instances are
infeasible. The examples are derandomised so the suite is reproducible; set
ALLOCATOR_PROPERTY_EXAMPLES (and ALLOCATOR_PROPERTY_RANDOM=1) to explore more.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from bruteforce import brute_force, evaluate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from instance_builder import (
    agency,
    bid,
    conflict,
    demand,
    district,
    enterprise,
    quote,
    run_check,
    service,
    solve_folder,
    solve_result,
    write_instance,
)

EXAMPLES = int(os.environ.get("ALLOCATOR_PROPERTY_EXAMPLES", "30"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                    derandomize=not os.environ.get("ALLOCATOR_PROPERTY_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
FEWER = settings(PROPERTY, max_examples=max(1, EXAMPLES * 2 // 3))

QUALITY_RTOL = 2e-4  # the quality level may fall short of the optimum by the MIP gap (1e-4)
COST_RTOL = 1e-4  # so may the cost level, given the quality held

SERVICES = (("S1", 1000), ("S2", 2000))
SECTORS = ("chem", "build")
PRICE_FACTORS = (1.0, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.6, None)


@st.composite
def tiny_instances(draw: st.DrawFn) -> dict[str, Any]:
    """write_instance keyword arguments of a random tiny instance."""
    districts = [f"D{i + 1}" for i in range(draw(st.integers(2, 3)))]
    sectors = list(SECTORS[:draw(st.integers(1, 2))])
    services = list(SERVICES[:draw(st.integers(1, 2))])
    rate = dict(services)
    ents = [enterprise(f"E{i + 1}", draw(st.sampled_from(districts)), draw(st.integers(1, 4)),
                       draw(st.sampled_from(sectors)))
            for i in range(draw(st.integers(3, 6)))]
    pairs = draw(st.lists(st.tuples(st.integers(0, len(ents) - 1),
                                    st.sampled_from([s for s, _ in services])),
                          min_size=3, max_size=7, unique=True))
    dems = [demand(ents[e]["enterprise_id"], s, draw(st.integers(1, 8)),
                   draw(st.sampled_from([None, None, None, None, 0, 3, 5])))
            for e, s in pairs]
    ags = []
    for k in range(draw(st.integers(2, 4))):
        area = draw(st.sampled_from(["*", "*", "subset"]))
        if area == "subset":
            area = ";".join(draw(st.lists(st.sampled_from(districts), min_size=1,
                                          max_size=len(districts), unique=True)))
        ags.append(agency(
            f"A{k + 1}", draw(st.integers(45, 100)),
            draw(st.sampled_from([0, 3, 5, 8, 10, 15, 30, 100])),
            draw(st.sampled_from(["active"] * 5 + ["probation", "probation", "suspended",
                                                   "blacklisted"])), area))
    bids = []
    used = [sec for sec in sectors if any(e["sector"] == sec for e in ents)]
    for a in ags:
        for s, r in services:
            for sec in used:
                f = draw(st.sampled_from(PRICE_FACTORS))
                if f is not None:
                    bids.append(bid(a["agency_id"], round(r * f), s, sec))
    quotes = []
    for a_k, d_k in draw(st.lists(st.tuples(st.integers(0, len(ags) - 1),
                                            st.integers(0, len(dems) - 1)),
                                  max_size=2, unique=True)):
        d = dems[d_k]
        ref = d["person_days"] * rate[d["service_id"]]
        f = draw(st.sampled_from([0.6, 0.8, 0.9, 1.0, 1.2, 1.5, 1.7]))
        quotes.append(quote(ags[a_k]["agency_id"], d["enterprise_id"], round(ref * f),
                            draw(st.integers(1, 8)), d["service_id"]))
    if not bids and not quotes:  # no offer at all is refused as bad input (validation)
        e = next(e for e in ents if e["enterprise_id"] == dems[0]["enterprise_id"])
        bids.append(bid("A1", rate[dems[0]["service_id"]], dems[0]["service_id"], e["sector"]))
    conflicts = [conflict(ags[a]["agency_id"], ents[e]["enterprise_id"])
                 for a, e in draw(st.lists(st.tuples(st.integers(0, len(ags) - 1),
                                                     st.integers(0, len(ents) - 1)),
                                           max_size=2, unique=True))]
    ref_total = sum(d["person_days"] * rate[d["service_id"]] for d in dems)
    budget = round(ref_total * draw(st.sampled_from([0.3, 0.5, 0.7, 0.9, 1.2, 1.5])))
    dists = [district(d, draw(st.sampled_from([None, None, round(0.3 * ref_total),
                                               round(0.6 * ref_total)])))
             for d in districts]
    policy = {
        "budget": {"total": budget},
        "coverage": {"mandatory_levels": draw(st.sampled_from([[], [], [], [4], [3, 4]])),
                     "min_district_ratio": draw(st.sampled_from([0.0, 0.0, 0.0, 0.3, 0.5]))},
        "anti_monopoly": {
            "max_share_in_district": draw(st.sampled_from([None, None, 0.5, 0.7, 1.0])),
            "min_agencies_per_district": draw(st.sampled_from([0, 0, 0, 1, 2])),
            "max_share_in_city": draw(st.sampled_from([None, None, 0.6])),
            "max_districts_per_agency": draw(st.sampled_from([None, None, 1, 2]))},
        "quality": {"min_score": draw(st.sampled_from([0, 50, 60])),
                    "min_score_by_risk": draw(st.sampled_from([{}, {3: 70, 4: 80}]))},
        "price": {"floor_ratio": draw(st.sampled_from([0.0, 0.8])),
                  "ceiling_ratio": draw(st.sampled_from([1.5, 100.0]))},
    }
    return dict(enterprises=ents, demands=dems, agencies=ags, bids=bids, quotes=quotes,
                conflicts=conflicts, districts=dists, services=[service(s, r)
                                                                for s, r in services],
                policy_changes=policy)


def level(summary: dict, name: str) -> float:
    """A level's value in summary.json (0, not null, for an optimal plan serving nothing)."""
    return float(summary[name])


def assert_levels_match(summary: dict, bf) -> None:
    """Coverage exact; quality within the gap; cost within the gap when quality is exact."""
    cov, qual, cost = (level(summary, k) for k in ("coverage", "quality", "cost"))
    assert cov == pytest.approx(bf.coverage, abs=1e-6)
    assert qual <= bf.quality + 1e-6 * max(1.0, bf.quality), "better than the optimum?"
    assert qual >= bf.quality * (1 - QUALITY_RTOL) - 1e-6
    if abs(qual - bf.quality) <= 1e-9 * max(1.0, bf.quality):
        # same coverage and quality: the brute force's cost is the least possible
        assert cost >= bf.cost - 0.01
        assert cost <= bf.cost * (1 + COST_RTOL) + 0.01


def matches_brute_force(out) -> bool:
    """The solve against the brute force: infeasible where it finds no plan, else optimal
    with its levels (assert_levels_match). Whether there is a plan."""
    bf = brute_force(out.instance)
    if not bf.feasible:
        assert out.status == "infeasible"
        return False
    assert out.status == "optimal"
    assert_levels_match(out.result.summary, bf)
    return True


@PROPERTY
@given(tiny_instances())
def test_solve_agrees_with_brute_force_and_check(case):
    with tempfile.TemporaryDirectory() as work:
        path = write_instance(Path(work) / "instance", **case)
        out = solve_folder(path, Path(work), check=False)
        bf = brute_force(out.instance)
        findings = run_check(path, out.results_dir)
        assert findings == [], "\n".join(findings)
        if not bf.feasible:
            assert out.status == "infeasible"
            assert out.result.diagnosis is not None and len(out.result.diagnosis) >= 1
            return
        assert out.status == "optimal"
        assert_levels_match(out.result.summary, bf)
        # the plan, judged by the brute force's own rules, is feasible and scores the same
        judged = evaluate(out.instance, out.plan)
        assert judged.ok, (judged.ineligible, judged.broken)
        summary = out.result.summary
        assert judged.coverage == pytest.approx(level(summary, "coverage"), abs=1e-6)
        assert judged.quality == pytest.approx(level(summary, "quality"), rel=1e-9, abs=1e-6)
        assert judged.cost == pytest.approx(level(summary, "cost"), abs=0.01)
        if judged.quality == pytest.approx(bf.quality, rel=1e-9) and \
                judged.cost == pytest.approx(bf.cost, rel=1e-9):
            assert out.plan in bf.plans


@FEWER
@given(tiny_instances())
def test_more_budget_never_serves_less(case):
    with tempfile.TemporaryDirectory() as work:
        path = write_instance(Path(work) / "instance", **case)
        out = solve_folder(path, Path(work), check=False)
        inst = out.instance
        richer = inst.with_policy(dataclasses.replace(
            inst.policy, budget_total=1.5 * inst.policy.budget_total))
        more = solve_result(richer)
        if out.status == "infeasible":
            assert more.summary["status"] in ("infeasible", "optimal")
            return
        bf_richer = brute_force(richer)
        assert out.status == "optimal"
        assert more.summary["status"] == "optimal"
        more_coverage = level(more.summary, "coverage")
        assert more_coverage >= level(out.result.summary, "coverage") - 1e-6
        assert more_coverage == pytest.approx(bf_richer.coverage, abs=1e-6)
