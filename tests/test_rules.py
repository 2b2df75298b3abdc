"""Each rule of spec §4 alone, on a tiny hand-made instance where it binds.

Every case asserts the optimal plan known by hand, that the brute force (tests/bruteforce.py)
finds the same unique optimum, that `solve_instance` returns it, and that the twin instance
with the rule switched off has another optimal plan. Every solve is written to a results folder
and judged by the independent checker (allocator.analysis.audit).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from bruteforce import brute_force, evaluate
from click.testing import CliRunner
from instance_builder import (
    Outcome,
    agency,
    bid,
    check_rules,
    conflict,
    demand,
    district,
    enterprise,
    plan,
    quote,
    run_check,
    solve_folder,
    variant,
    write_instance,
)

from allocator.cli import main


def assert_optimum(path: Path, work: Path, expected: frozenset) -> Outcome:
    """The hand-known optimum is the brute force's unique optimum and the solver's plan."""
    out = solve_folder(path, work)
    bf = brute_force(out.instance)
    assert bf.feasible
    assert bf.plan == expected, "the hand-made expectation disagrees with the brute force"
    assert out.status == "optimal"
    assert out.plan == expected
    assert out.level("coverage") == pytest.approx(bf.coverage, rel=1e-9)
    assert out.level("quality") == pytest.approx(bf.quality, rel=1e-9)
    assert out.level("cost") == pytest.approx(bf.cost, rel=1e-9)
    return out


def assert_binds(on: Path, off: Path, work: Path, with_rule: frozenset,
                 without_rule: frozenset) -> tuple[Outcome, Outcome]:
    """The rule changes the optimal plan: with_rule on `on`, without_rule on its twin `off`."""
    assert with_rule != without_rule
    return assert_optimum(on, work, with_rule), assert_optimum(off, work, without_rule)


def excluded_agencies(out: Outcome, enterprise_id: str | None = None) -> set[str]:
    """Agencies excluded.csv lists (for one enterprise's triples, or as whole offers)."""
    exc = out.result.excluded
    if enterprise_id is not None:
        exc = exc[exc["enterprise_id"].isin([enterprise_id, ""])]
    return set(exc["agency_id"])


# ------------------------------------------------------------------------------------------
# eligibility
# ------------------------------------------------------------------------------------------


def one_demand(path: Path, risk: int = 2, agencies=None, bids=None, **kw) -> Path:
    """E1 in D1 needs S1 for 5 person-days; A1 (quality 95) and A2 (quality 70) bid 1000."""
    return write_instance(
        path, enterprises=[enterprise("E1", "D1", risk)], demands=[demand("E1", "S1", 5)],
        agencies=agencies or [agency("A1", 95), agency("A2", 70)],
        bids=bids or [bid("A1", 1000), bid("A2", 1000)], **kw)


@pytest.mark.parametrize("status", ["suspended", "blacklisted"])
def test_status_suspended_or_blacklisted_never_serves(tmp_path, status):
    on = one_demand(tmp_path / "on", agencies=[agency("A1", 95, status=status), agency("A2", 70)])
    off = one_demand(tmp_path / "off")
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))
    assert "A1" in excluded_agencies(res_on)


@pytest.mark.parametrize("risk,expected", [(1, "A1"), (2, "A1"), (3, "A2"), (4, "A2")])
def test_probation_serves_only_risk_up_to_2(tmp_path, risk, expected):
    on = one_demand(tmp_path / "on", risk,
                    agencies=[agency("A1", 95, status="probation"), agency("A2", 70)])
    off = one_demand(tmp_path / "off", risk)
    if expected == "A1":  # allowed: probation behaves like active here
        assert_optimum(on, tmp_path, plan("E1:A1"))
    else:
        assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))


def test_min_score(tmp_path):
    """A1 (quality 50) is below min_score 60: only A2 (capacity for one demand) can serve."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 2), enterprise("E2", "D1", 1)],
        demands=[demand("E1"), demand("E2")],
        agencies=[agency("A1", 50, capacity_days=5), agency("A2", 80, capacity_days=5)],
        bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables, policy_changes={"quality": {"min_score": 60}})
    off = variant(on, tmp_path / "off", {"quality": {"min_score": 0}})
    assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A2", "E2:A1"))
    # the threshold is inclusive: quality exactly 60 is enough
    edge = variant(on, tmp_path / "edge", tables={"agencies.csv": [
        agency("A1", 60, capacity_days=5), agency("A2", 80, capacity_days=5)]})
    assert_optimum(edge, tmp_path, plan("E1:A2", "E2:A1"))


def test_min_score_by_risk(tmp_path):
    """A1 (quality 65) passes min_score 60 but not 70 at risk 3: it may serve E2 (risk 2) only."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2)],
        demands=[demand("E1"), demand("E2")], agencies=[agency("A1", 65)], bids=[bid("A1")])
    on = write_instance(tmp_path / "on", **tables, policy_changes={
        "quality": {"min_score": 60, "min_score_by_risk": {3: 70, 4: 80}}})
    off = variant(on, tmp_path / "off", {"quality": {"min_score_by_risk": {}}})
    assert_binds(on, off, tmp_path, plan("E2:A1"), plan("E1:A1", "E2:A1"))


def test_service_area(tmp_path):
    """A1 serves D2 only, so E1 in D1 goes to the worse A2."""
    kw = dict(districts=[district("D1"), district("D2")])
    on = one_demand(tmp_path / "on", agencies=[agency("A1", 95, districts="D2"),
                                               agency("A2", 70, districts="D1;D2")], **kw)
    off = one_demand(tmp_path / "off", agencies=[agency("A1", 95, districts="D2;D1"),
                                                 agency("A2", 70, districts="D1;D2")], **kw)
    assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))


def test_conflict_of_interest(tmp_path):
    on = one_demand(tmp_path / "on", conflicts=[conflict("A1", "E1")])
    off = variant(on, tmp_path / "off", drop=("conflicts.csv",))
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))
    assert "A1" in excluded_agencies(res_on, "E1")


def test_abnormally_low_price_floor(tmp_path):
    """Floor 0.8 x 1000: A1 at 700 is out, A3 at exactly 800 is in (the band is inclusive)."""
    on = one_demand(tmp_path / "on", agencies=[agency("A1", 95), agency("A2", 70),
                                               agency("A3", 80)],
                    bids=[bid("A1", 700), bid("A2", 1000), bid("A3", 800)],
                    policy_changes={"price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5}})
    off = variant(on, tmp_path / "off", {"price": {"floor_ratio": 0.0}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A3"), plan("E1:A1"))
    assert "A1" in excluded_agencies(res_on)
    assert res_on.level("cost") == pytest.approx(4000)


def test_above_price_ceiling(tmp_path):
    """Ceiling 1.5 x 1000: A1 at 1600 is out, A2 at exactly 1500 is in."""
    on = one_demand(tmp_path / "on", bids=[bid("A1", 1600), bid("A2", 1500)],
                    policy_changes={"price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5}})
    off = variant(on, tmp_path / "off", {"price": {"ceiling_ratio": 2.0}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))
    assert res_on.level("cost") == pytest.approx(7500)


def test_quote_cheaper_than_bid_is_used(tmp_path):
    """Equal quality: A1's bid (1200/day) loses to A2 (1000/day), its quote of 4000 wins."""
    on = one_demand(tmp_path / "on", agencies=[agency("A1", 80), agency("A2", 80)],
                    bids=[bid("A1", 1200), bid("A2", 1000)],
                    quotes=[quote("A1", "E1", 4000, 5)])
    off = variant(on, tmp_path / "off", drop=("quotes.csv",))
    res_on, res_off = assert_binds(on, off, tmp_path, plan("E1:A1"), plan("E1:A2"))
    assert res_on.level("cost") == pytest.approx(4000)
    assert res_off.level("cost") == pytest.approx(5000)


def test_quote_dearer_than_bid_replaces_it(tmp_path):
    """A1's bid (5000) would win, but its quote (6000) overrides the bid: A2 (5500) wins."""
    on = one_demand(tmp_path / "on", agencies=[agency("A1", 80), agency("A2", 80)],
                    bids=[bid("A1", 1000), bid("A2", 1100)],
                    quotes=[quote("A1", "E1", 6000, 5)])
    off = variant(on, tmp_path / "off", drop=("quotes.csv",))
    res_on, res_off = assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))
    assert res_on.level("cost") == pytest.approx(5500)
    assert res_off.level("cost") == pytest.approx(5000)


def test_quote_without_bid_makes_agency_eligible(tmp_path):
    """A1 bids nothing; its quote for E1 alone lets it serve E1 (not E2)."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 2), enterprise("E2", "D1", 2)],
        demands=[demand("E1"), demand("E2")], agencies=[agency("A1", 95), agency("A2", 70)],
        bids=[bid("A2")])
    on = write_instance(tmp_path / "on", **tables, quotes=[quote("A1", "E1", 5000, 5)])
    off = variant(on, tmp_path / "off", drop=("quotes.csv",))
    assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A2"), plan("E1:A2", "E2:A2"))


def test_quote_out_of_price_band_is_excluded(tmp_path):
    """The band applies to the quoted price: 3000 for 5 person-days at 1000 is below 0.8."""
    on = one_demand(tmp_path / "on", quotes=[quote("A1", "E1", 3000, 5)],
                    policy_changes={"price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5}})
    off = variant(on, tmp_path / "off", {"price": {"floor_ratio": 0.5}})
    res_on, res_off = assert_binds(on, off, tmp_path, plan("E1:A2"), plan("E1:A1"))
    assert res_off.level("cost") == pytest.approx(3000)


# ------------------------------------------------------------------------------------------
# money, capacity and coverage rules
# ------------------------------------------------------------------------------------------


def test_total_budget(tmp_path):
    """Budget 10000: E1 (w2, 6000) + E3 (w1, 4000) beats E1 + E2 (11000) and E2 + E3 (w2)."""
    on = write_instance(
        tmp_path / "on",
        enterprises=[enterprise("E1", "D1", 2), enterprise("E2", "D1", 1),
                     enterprise("E3", "D1", 1)],
        demands=[demand("E1", "S1", 6), demand("E2", "S1", 5), demand("E3", "S1", 4)],
        agencies=[agency("A1")], bids=[bid("A1")], policy_changes={"budget": {"total": 10000}})
    off = variant(on, tmp_path / "off", {"budget": {"total": 1e9}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A1", "E3:A1"),
                             plan("E1:A1", "E2:A1", "E3:A1"))
    assert res_on.level("cost") == pytest.approx(10000)
    assert res_on.level("coverage") == pytest.approx(3)


def test_district_budget_cap(tmp_path):
    """D1 capped at 6000: only one of its two 5000 demands (the heavier) is served."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 2), enterprise("E2", "D1", 1),
                     enterprise("E3", "D2", 1)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1")], bids=[bid("A1")])
    on = write_instance(tmp_path / "on", **tables,
                        districts=[district("D1", 6000), district("D2")])
    off = variant(on, tmp_path / "off", tables={"districts.csv": [district("D1"),
                                                                  district("D2")]})
    assert_binds(on, off, tmp_path, plan("E1:A1", "E3:A1"), plan("E1:A1", "E2:A1", "E3:A1"))


def test_agency_capacity(tmp_path):
    """A1 (quality 90) has 10 person-days: it takes the two heaviest demands, A2 the third."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                     enterprise("E3", "D1", 1)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90, capacity_days=10), agency("A2", 70)],
        bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables)
    off = variant(on, tmp_path / "off", tables={"agencies.csv": [
        agency("A1", 90, capacity_days=15), agency("A2", 70)]})
    assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A1", "E3:A2"),
                 plan("E1:A1", "E2:A1", "E3:A1"))


def test_capacity_counts_quoted_person_days(tmp_path):
    """A1 has 8 person-days; its quote does E1 in 3 (not 5), so it fits E1 + E2 only quoted."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2)],
        demands=[demand("E1"), demand("E2")],
        agencies=[agency("A1", 90, capacity_days=8), agency("A2", 70)],
        bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables, quotes=[quote("A1", "E1", 5000, 3)])
    off = variant(on, tmp_path / "off", drop=("quotes.csv",))
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A1"), plan("E1:A1", "E2:A2"))
    lots = res_on.result.agencies.set_index("agency_id")
    assert lots.loc["A1", "load"] == pytest.approx(8)


def test_mandatory_level_served_although_dear(tmp_path):
    """Budget 10000: E1 (risk 4, w8) costs all of it; without the rule E2+E3+E4 (w10) win."""
    on = write_instance(
        tmp_path / "on",
        enterprises=[enterprise("E1", "D1", 4), enterprise("E2", "D1", 3),
                     enterprise("E3", "D1", 3), enterprise("E4", "D1", 2)],
        demands=[demand("E1", "S1", 10), demand("E2", "S1", 4), demand("E3", "S1", 4),
                 demand("E4", "S1", 2)],
        agencies=[agency("A1")], bids=[bid("A1")],
        policy_changes={"budget": {"total": 10000}, "coverage": {"mandatory_levels": [4]}})
    off = variant(on, tmp_path / "off", {"coverage": {"mandatory_levels": []}})
    res_on, res_off = assert_binds(on, off, tmp_path, plan("E1:A1"),
                                   plan("E2:A1", "E3:A1", "E4:A1"))
    assert res_on.level("coverage") == pytest.approx(8)
    assert res_off.level("coverage") == pytest.approx(10)


def test_min_district_ratio(tmp_path):
    """Ratio 0.4 forces one D2 demand in; the cheaper (3000) one is chosen."""
    on = write_instance(
        tmp_path / "on",
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                     enterprise("E3", "D2", 1), enterprise("E4", "D2", 1)],
        demands=[demand("E1", "S1", 5), demand("E2", "S1", 4), demand("E3", "S1", 3),
                 demand("E4", "S1", 4)],
        agencies=[agency("A1")], bids=[bid("A1")],
        policy_changes={"budget": {"total": 10000}, "coverage": {"min_district_ratio": 0.4}})
    off = variant(on, tmp_path / "off", {"coverage": {"min_district_ratio": 0.0}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A1", "E3:A1"), plan("E1:A1", "E2:A1"))
    d = res_on.result.districts.set_index("district_id")
    assert d.loc["D2", "coverage_ratio"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------
# anti-monopoly rules
# ------------------------------------------------------------------------------------------


def _three_equal_demands(path: Path, anti_monopoly: dict) -> Path:
    """One district, three equal 5000 demands (risk 3, 2, 1) and three agencies."""
    return write_instance(
        path,
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                     enterprise("E3", "D1", 1)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90), agency("A2", 70), agency("A3", 60)],
        bids=[bid("A1"), bid("A2"), bid("A3")],
        policy_changes={"anti_monopoly": anti_monopoly})


def test_max_share_in_district(tmp_path):
    """Share 0.5 with three equal 5000 demands: each agency gets one, best for the heaviest."""
    on = _three_equal_demands(tmp_path / "on", {"max_share_in_district": 0.5})
    off = variant(on, tmp_path / "off", {"anti_monopoly": {"max_share_in_district": None}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A2", "E3:A3"),
                             plan("E1:A1", "E2:A1", "E3:A1"))
    d = res_on.result.districts.set_index("district_id")
    assert d.loc["D1", "max_agency_share"] == pytest.approx(1 / 3, abs=1e-6)


@pytest.mark.parametrize("direct", [True, False])
def test_max_share_in_district_both_forms(tmp_path, monkeypatch, direct):
    """The share cap written over x (the default) and through the district spend column
    (CBC's form, and models past DENSE_SHARE_MAX_NONZEROS) bind the same way."""
    from allocator.model import build as model_module
    from allocator.solvers.highs import HighsBackend

    monkeypatch.setattr(HighsBackend, "direct_share_rows", direct)
    built = []
    real = model_module.add_district_share_caps

    def spy(m):
        real(m)
        built.append(m)

    monkeypatch.setattr(model_module, "add_district_share_caps", spy)
    on = _three_equal_demands(tmp_path / "on", {"max_share_in_district": 0.5})
    assert_optimum(on, tmp_path, plan("E1:A1", "E2:A2", "E3:A3"))
    m = built[-1]
    block = next(b for b in m.lp.row_blocks if b.name == "district_share")
    rows = m.lp.matrix().tocsr()[block.start:block.start + len(block.labels)]
    spend_cols = m.district_cost.to_numpy()
    uses_spend = bool(rows[:, spend_cols].nnz)
    assert uses_spend is not direct


def test_min_agencies_per_district(tmp_path):
    """k = 2: D1 gets two agencies; D2, where only A1 may work, is left out entirely."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                     enterprise("E3", "D2", 1)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90), agency("A2", 70, districts="D1")],
        bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables,
                        policy_changes={"anti_monopoly": {"min_agencies_per_district": 2}})
    off = variant(on, tmp_path / "off", {"anti_monopoly": {"min_agencies_per_district": 0}})
    res_on, _ = assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A2"),
                             plan("E1:A1", "E2:A1", "E3:A1"))
    d = res_on.result.districts.set_index("district_id")
    assert d.loc["D1", "agencies"] == 2
    assert d.loc["D2", "agencies"] == 0  # not served at all rather than served by one
    # with k = 1 the rule is trivially met: A1 takes everything again
    one = variant(on, tmp_path / "one", {"anti_monopoly": {"min_agencies_per_district": 1}})
    assert_optimum(one, tmp_path, plan("E1:A1", "E2:A1", "E3:A1"))


def test_max_share_in_city(tmp_path):
    """City share 0.5: A1 cannot take both districts' equal demands; it takes the riskier."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D2", 2)],
        demands=[demand("E1"), demand("E2")],
        agencies=[agency("A1", 90), agency("A2", 70)], bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables,
                        policy_changes={"anti_monopoly": {"max_share_in_city": 0.5}})
    off = variant(on, tmp_path / "off", {"anti_monopoly": {"max_share_in_city": None}})
    assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A2"), plan("E1:A1", "E2:A1"))


def test_max_districts_per_agency(tmp_path):
    """One district per agency: A1 keeps D1 (weight 6), A2 gets D2 (weight 2)."""
    tables = dict(
        enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                     enterprise("E3", "D2", 2)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90), agency("A2", 70)], bids=[bid("A1"), bid("A2")])
    on = write_instance(tmp_path / "on", **tables,
                        policy_changes={"anti_monopoly": {"max_districts_per_agency": 1}})
    off = variant(on, tmp_path / "off", {"anti_monopoly": {"max_districts_per_agency": None}})
    assert_binds(on, off, tmp_path, plan("E1:A1", "E2:A1", "E3:A2"),
                 plan("E1:A1", "E2:A1", "E3:A1"))


# ------------------------------------------------------------------------------------------
# weights
# ------------------------------------------------------------------------------------------


def test_demand_weight_overrides_policy_default(tmp_path):
    """Budget for one demand: E2 (risk 1) given weight 10 beats E1 (risk 3, default 4)."""
    ents = [enterprise("E1", "D1", 3), enterprise("E2", "D1", 1)]
    common = dict(enterprises=ents, agencies=[agency("A1")], bids=[bid("A1")],
                  policy_changes={"budget": {"total": 5000}})
    on = write_instance(tmp_path / "on", demands=[demand("E1"), demand("E2", weight=10)],
                        **common)
    off = write_instance(tmp_path / "off", demands=[demand("E1"), demand("E2")], **common)
    res_on, res_off = assert_binds(on, off, tmp_path, plan("E2:A1"), plan("E1:A1"))
    assert res_on.level("coverage") == pytest.approx(10)
    assert res_off.level("coverage") == pytest.approx(4)


def test_policy_weights_change_the_choice(tmp_path):
    """Same data, coverage.weights {1: 5}: the risk-1 demand is now worth more."""
    on = write_instance(
        tmp_path / "on", enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 1)],
        demands=[demand("E1"), demand("E2")], agencies=[agency("A1")], bids=[bid("A1")],
        policy_changes={"budget": {"total": 5000},
                        "coverage": {"weights": {1: 5, 2: 2, 3: 4, 4: 8}}})
    off = variant(on, tmp_path / "off", {"coverage": {"weights": {1: 1, 2: 2, 3: 4, 4: 8}}})
    assert_binds(on, off, tmp_path, plan("E2:A1"), plan("E1:A1"))


# ------------------------------------------------------------------------------------------
# edge cases found by the property tests (the first two once crashed compute_eligibility:
# no offer surviving the offer-level rules)
# ------------------------------------------------------------------------------------------

def test_every_bid_below_min_score_leaves_demand_unserved(tmp_path):
    """A1 (quality 40) is the only bidder and min_score is 60: nothing is eligible."""
    path = write_instance(tmp_path / "q", enterprises=[enterprise("E1", "D1", 2)],
                          demands=[demand("E1")], agencies=[agency("A1", 40)], bids=[bid("A1")],
                          policy_changes={"quality": {"min_score": 60}})
    out = solve_folder(path, tmp_path)
    assert out.status == "optimal" and out.plan == frozenset()


def test_quotes_only_with_empty_bids_file(tmp_path):
    """No bids at all: A1's quote is the only offer, and it serves E1."""
    path = write_instance(tmp_path / "q", enterprises=[enterprise("E1", "D1", 2)],
                          demands=[demand("E1")], agencies=[agency("A1")], bids=[],
                          quotes=[quote("A1", "E1", 5000, 5)], conflicts=[])
    assert_optimum(path, tmp_path, plan("E1:A1"))


def test_empty_optimal_plan_reports_zero_levels(tmp_path):
    """Budget below every cost, nothing mandatory: optimal, serves nothing, levels 0 (not null)."""
    path = write_instance(tmp_path / "z", enterprises=[enterprise("E1", "D1", 2)],
                          demands=[demand("E1")], agencies=[agency("A1")], bids=[bid("A1")],
                          policy_changes={"budget": {"total": 100}})
    out = solve_folder(path, tmp_path)
    assert brute_force(out.instance).coverage == 0
    assert out.status == "optimal" and out.plan == frozenset()
    assert [out.result.summary[k] for k in ("coverage", "quality", "cost")] == [0, 0, 0]


def test_min_district_ratio_without_any_eligible_triple_is_infeasible(tmp_path):
    """E1 (risk 3) can only go to a probation agency: nothing is eligible, ratio 0.5."""
    path = write_instance(tmp_path / "r", enterprises=[enterprise("E1", "D1", 3)],
                          demands=[demand("E1")], agencies=[agency("A1", status="probation")],
                          bids=[bid("A1")],
                          policy_changes={"coverage": {"min_district_ratio": 0.5}})
    out = solve_folder(path, tmp_path, check=False)
    assert not brute_force(out.instance).feasible
    assert out.status == "infeasible"  # today: optimal, and allocator check then flags D1
    assert run_check(path, out.results_dir) == []


def test_min_district_ratio_with_nothing_servable_in_a_district_is_infeasible(tmp_path):
    """The same with an eligible triple in D2 (the model has columns): infeasible."""
    path = write_instance(tmp_path / "r", enterprises=[enterprise("E1", "D1", 3),
                                                       enterprise("E2", "D2", 2)],
                          demands=[demand("E1"), demand("E2")],
                          agencies=[agency("A1", status="probation")], bids=[bid("A1")],
                          policy_changes={"coverage": {"min_district_ratio": 0.5}})
    out = solve_folder(path, tmp_path)
    assert not brute_force(out.instance).feasible
    assert out.status == "infeasible"


# ------------------------------------------------------------------------------------------
# infeasible cases
# ------------------------------------------------------------------------------------------


def infeasible_cases(path: Path) -> dict[str, Path]:
    """Instances where the mandatory or minimum rules cannot all hold, each for one reason."""
    ents = [enterprise("E1", "D1", 4), enterprise("E2", "D1", 2)]
    dems = [demand("E1"), demand("E2")]
    return {
        "no_eligible_agency": write_instance(
            path / "no_eligible_agency", enterprises=ents, demands=dems,
            agencies=[agency("A1", 95, status="suspended"), agency("A2", 75, status="probation")],
            bids=[bid("A1"), bid("A2")], policy_changes={"coverage": {"mandatory_levels": [4]}}),
        "budget_below_mandatory": write_instance(
            path / "budget_below_mandatory", enterprises=ents, demands=dems,
            agencies=[agency("A1")], bids=[bid("A1")],
            policy_changes={"budget": {"total": 4999}, "coverage": {"mandatory_levels": [4]}}),
        "min_district_ratio": write_instance(
            path / "min_district_ratio", enterprises=ents, demands=dems,
            agencies=[agency("A1", capacity_days=5)], bids=[bid("A1")],
            policy_changes={"coverage": {"min_district_ratio": 1.0}}),
        "min_agencies": write_instance(
            path / "min_agencies", enterprises=ents, demands=dems,
            agencies=[agency("A1"), agency("A2", districts="D2")], bids=[bid("A1"), bid("A2")],
            districts=[district("D1"), district("D2")],
            policy_changes={"coverage": {"mandatory_levels": [4]},
                            "anti_monopoly": {"min_agencies_per_district": 2}}),
    }


@pytest.mark.parametrize("case", ["no_eligible_agency", "budget_below_mandatory",
                                  "min_district_ratio", "min_agencies"])
def test_infeasible_status_and_diagnosis(tmp_path, case):
    path = infeasible_cases(tmp_path)[case]
    out = solve_folder(path, tmp_path)  # the checker accepts an infeasible run's files too
    assert not brute_force(out.instance).feasible
    result = out.result
    assert result.summary["status"] == "infeasible"
    assert (out.results_dir / "diagnosis.csv").is_file()
    assert result.assignments.empty
    assert result.diagnosis is not None and len(result.diagnosis) >= 1
    if case == "no_eligible_agency":
        row = result.diagnosis.iloc[0]
        assert row["rule"] == "mandatory_no_eligible_agency"
        assert "E1" in row["subject"]


def test_infeasible_cli_exit_1_writes_summary_and_diagnosis(tmp_path):
    path = infeasible_cases(tmp_path)["no_eligible_agency"]
    out = tmp_path / "results"
    run = CliRunner().invoke(main, ["solve", str(path), "--out", str(out), "--quiet"])
    assert run.exit_code == 1, run.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "infeasible"
    assert (out / "diagnosis.csv").is_file()
    diag = (out / "diagnosis.csv").read_text(encoding="utf-8")
    assert "mandatory_no_eligible_agency" in diag and "E1" in diag


def test_feasible_twin_cli_exit_0(tmp_path):
    """The same instance with the suspended agency reinstated solves, exit 0."""
    path = infeasible_cases(tmp_path)["no_eligible_agency"]
    ok = variant(path, tmp_path / "ok", tables={"agencies.csv": [
        agency("A1", 95), agency("A2", 75, status="probation")]})
    out = tmp_path / "results"
    run = CliRunner().invoke(main, ["solve", str(ok), "--out", str(out), "--quiet"])
    assert run.exit_code == 0, run.output
    assert json.loads((out / "summary.json").read_text())["status"] == "optimal"
    assert not (out / "diagnosis.csv").exists()
    assert_optimum(ok, tmp_path, plan("E1:A1", "E2:A1"))


# ------------------------------------------------------------------------------------------
# the checker on tampered copies of good results
# ------------------------------------------------------------------------------------------


def tamper(results: Path, dst: Path, edit) -> Path:
    """A copy of a results folder whose assignments.csv went through edit(frame) -> frame."""
    shutil.copytree(results, dst)
    a = pd.read_csv(dst / "assignments.csv", dtype={"enterprise_id": str, "service_id": str,
                                                    "agency_id": str, "district_id": str},
                    encoding="utf-8-sig")
    edit(a).to_csv(dst / "assignments.csv", index=False)
    return dst


def set_agency(enterprise_id: str, agency_id: str):
    def edit(a: pd.DataFrame) -> pd.DataFrame:
        a.loc[a["enterprise_id"] == enterprise_id, "agency_id"] = agency_id
        return a
    return edit


def _drop(enterprise_id: str):
    return lambda a: a[a["enterprise_id"] != enterprise_id]


def _duplicate(a: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([a, a.iloc[:1]], ignore_index=True)


def _cheaper(a: pd.DataFrame) -> pd.DataFrame:
    a.loc[0, "cost"] = a.loc[0, "cost"] - 100
    return a


def _suspended_case(p: Path) -> Path:
    return one_demand(p, agencies=[agency("A1", 95, status="suspended"), agency("A2", 70)])


def _capacity_case(p: Path) -> Path:
    return write_instance(
        p, enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                        enterprise("E3", "D1", 1)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90, capacity_days=10), agency("A2", 70)],
        bids=[bid("A1"), bid("A2")])


def _share_case(p: Path, rule: dict) -> Path:
    return write_instance(
        p, enterprises=[enterprise("E1", "D1", 3), enterprise("E2", "D1", 2),
                        enterprise("E3", "D2", 2)],
        demands=[demand("E1"), demand("E2"), demand("E3")],
        agencies=[agency("A1", 90), agency("A2", 70), agency("A3", 60, districts="D1")],
        bids=[bid("A1"), bid("A2"), bid("A3")], policy_changes={"anti_monopoly": rule})


def _mandatory_case(p: Path) -> Path:
    return write_instance(
        p, enterprises=[enterprise("E1", "D1", 4), enterprise("E2", "D1", 2)],
        demands=[demand("E1"), demand("E2")], agencies=[agency("A1", 90)], bids=[bid("A1")],
        policy_changes={"coverage": {"mandatory_levels": [4]}, "budget": {"total": 10000}})


TAMPERS = {
    # name: (instance maker, edit of assignments.csv, a rule the checker must name)
    "suspended_agency": (_suspended_case, set_agency("E1", "A1"), "status"),
    "over_capacity": (_capacity_case, set_agency("E3", "A1"), "capacity"),
    "mandatory_dropped": (_mandatory_case, _drop("E1"), "mandatory"),
    "served_twice": (_mandatory_case, _duplicate, "duplicate_demand"),
    "cost_understated": (_mandatory_case, _cheaper, "cost"),
    "district_share": (lambda p: _share_case(p, {"max_share_in_district": 0.5}),
                       set_agency("E2", "A1"), "district_share"),
    "min_agencies": (lambda p: _share_case(p, {"min_agencies_per_district": 2}),
                     set_agency("E2", "A1"), "min_agencies_per_district"),
    "districts_per_agency": (lambda p: _share_case(p, {"max_districts_per_agency": 1}),
                             set_agency("E3", "A1"), "districts_per_agency"),
    "city_share": (lambda p: _share_case(p, {"max_share_in_city": 0.5}),
                   set_agency("E3", "A1"), "city_share"),
    "unknown_agency": (_capacity_case, set_agency("E1", "A9"), "unknown_agency"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_check_rejects_tampered_results(tmp_path, name):
    make, edit, rule = TAMPERS[name]
    path = make(tmp_path / "instance")
    good = solve_folder(path, tmp_path)  # checked clean inside
    assert good.status == "optimal"
    bad = tamper(good.results_dir, tmp_path / "tampered", edit)
    rules = check_rules(path, bad)
    assert rule in rules, f"{name}: checker found {sorted(rules)}"
    # and the brute force's own judge agrees the tampered plan breaks a rule
    a = pd.read_csv(bad / "assignments.csv", dtype=str, encoding="utf-8-sig")
    judged = evaluate(good.instance, list(zip(a["enterprise_id"], a["service_id"],
                                             a["agency_id"], strict=True)))
    if name != "cost_understated":  # the plan itself is fine there, only a figure is false
        assert not judged.ok
