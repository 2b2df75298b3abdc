"""The province-scale path (allocator.pipeline.large_scale): bound validity against the exact MIP,
rules restored after rounding, and the whole command line with the independent checker.

The path normally starts at 100,000 eligible triples; here it is forced on small instances
(LARGE_TRIPLES patched to 0) so its answers can be compared with the full model's optimum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from instance_builder import agency, bid, demand, enterprise, solve_result
from instance_builder import write_instance as write_tiny

from allocator.analysis.audit import check_results
from allocator.cli import main
from allocator.data.generate import generate_instance, write_instance
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.pipeline import class_path
from allocator.pipeline import solve as solve_mod
from allocator.pipeline.large_scale import classes as lsc
from allocator.pipeline.large_scale import levels as ls
from allocator.pipeline.large_scale import repair as lsr
from allocator.pipeline.large_scale.class_lp import CoverageLp
from allocator.solvers import Status
from allocator.solvers.registry import get_backend


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A generated city (budget-bound, share caps and three agencies per district on)."""
    path = tmp_path_factory.mktemp("large") / "city"
    write_instance(generate_instance(400, 12, 4, seed=11), path)
    return path


def test_bound_is_valid_and_plan_close(generated: Path) -> None:
    """The LP bound is at least the proven MIP optimum; the rounded plan at most that, and
    within 2% of the bound on this small city (the province is within 0.01%)."""
    inst = load_instance(generated)
    elig = compute_eligibility(inst)
    large = ls.solve_large(inst, elig, 60.0, 1e-4)
    exact = solve_result(load_instance(generated, overrides={"solver": {"levels": ["coverage"]}}),
                           time_limit=60.0)
    cov = {r.name: r for r in large.lex.levels}["coverage"]
    mip = exact.summary["levels"][0]
    assert mip["status"] == "optimal"
    assert cov.bound >= mip["value"] - 1e-6
    assert cov.value <= mip["bound"] + 1e-6
    assert cov.value >= 0.98 * cov.bound
    assert large.info["lp_converged"]


def test_cli_forced_large_path_passes_check(generated: Path, tmp_path: Path,
                                            monkeypatch) -> None:
    """`allocator solve` on the large path writes a plan `allocator check` accepts; every
    level has a bound on the right side of its value."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["solve", str(generated), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert check_results(generated, out) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] in ("optimal", "feasible")
    assert summary["levels_optimised"] == ["coverage", "quality", "cost"]
    levels = {lv["name"]: lv for lv in summary["levels"]}
    assert levels["coverage"]["bound"] >= levels["coverage"]["value"] - 1e-6
    assert levels["quality"]["bound"] >= levels["quality"]["value"] - 1e-6
    assert levels["cost"]["bound"] <= levels["cost"]["value"] + 1e-6
    assert summary["large_scale"]["lp_converged"] is True
    assert summary["bound"] >= summary["coverage"]
    assert summary["large_scale"]["coverage_first"] is False  # a second: no hurry


@pytest.fixture(scope="module")
def short_city(tmp_path_factory) -> Path:
    """A city whose rounded coverage plan is short of the gap: 792 of a bound of 793.36."""
    path = tmp_path_factory.mktemp("short") / "city"
    write_instance(generate_instance(300, 8, 3, seed=2), path)
    return path


def test_coverage_first_then_the_cost_lp(short_city: Path, tmp_path: Path,
                                         monkeypatch) -> None:
    """A rounded plan short of the gap once the time share is gone: the class model searches
    coverage before the class LP's later work, and the cost LP runs at its plan (the level
    optimised, its bound on the right side) and the auditor accepts the plan."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    monkeypatch.setattr(ls, "COVERAGE_FIRST_SHARE", 0.0)
    city = short_city
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["solve", str(city), "--out", str(out),
                                       "--time-limit", "20"])
    assert result.exit_code == 0, result.output
    assert check_results(city, out) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["large_scale"]["coverage_first"] is True
    assert "the cost LP waits for its plan" in result.stderr
    assert "quality (hold" not in result.stderr  # no quality plans nearer the face
    assert summary["levels_optimised"] == ["coverage", "quality", "cost"]
    levels = {lv["name"]: lv for lv in summary["levels"]}
    assert levels["cost"]["bound"] <= levels["cost"]["value"] + 1e-6
    assert levels["quality"]["bound"] >= levels["quality"]["value"] - 1e-6
    assert summary["large_scale"]["levels_lp"]["cost"]["bound"] is not None


def test_level_without_a_bound_in_time_is_optimised_unproven(short_city: Path,
                                                             monkeypatch) -> None:
    """The class model optimised cost but the class LP's cost bound was not found in time:
    the level is reported optimised, feasible, with no bound and saying why (not as 'not
    optimised', which would tell the planner it was never looked at)."""
    monkeypatch.setattr(ls, "COVERAGE_FIRST_SHARE", 0.0)
    monkeypatch.setattr(ls, "rebound", lambda *a, **k: None)  # no time left for the cost LP
    inst = load_instance(short_city)
    res = ls.solve_large(inst, compute_eligibility(inst), 20.0, 1e-4,
                         backend=get_backend("highs"))
    assert res.info["coverage_first"] is True
    cost = {r.name: r for r in res.lex.levels}["cost"]
    assert cost.optimised and cost.bound is None and cost.status is Status.FEASIBLE
    assert "no bound over all columns" in cost.solver_status
    assert res.info["levels_optimised"] == ["coverage", "quality", "cost"]


def test_coverage_first_only_when_the_rounded_plan_is_short() -> None:
    """The class model searches coverage first only when it follows and the plan is more
    than the gap below the bound on the weights' grid (24,999.6 is 24,999 there)."""
    w = np.ones(10)
    assert ls.coverage_first(True, 24_990.0, 25_000.0, w, 1e-4)
    assert not ls.coverage_first(True, 24_998.0, 25_000.0, w, 1e-4)
    assert not ls.coverage_first(True, 24_998.0, 24_999.6, w, 1e-5 * 4.1)
    assert ls.coverage_first(True, 24_998.0, 25_000.6, w, 1e-5 * 4.1)
    assert not ls.coverage_first(False, 24_990.0, 25_000.0, w, 1e-4)
    assert not ls.coverage_first(True, 24_990.0, None, w, 1e-4)


def test_levels_option_on_the_large_path(generated: Path, tmp_path: Path,
                                         monkeypatch) -> None:
    """--levels coverage: quality and cost are the plan's values, marked not optimised."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["solve", str(generated), "--out", str(out),
                                       "--levels", "coverage"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "feasible"
    assert summary["levels_optimised"] == ["coverage"]
    levels = {lv["name"]: lv for lv in summary["levels"]}
    assert levels["quality"]["optimised"] is False and levels["cost"]["optimised"] is False
    assert check_results(generated, out) == []


def test_unsupported_rules_keep_the_exact_model(generated: Path, monkeypatch) -> None:
    """A cross-district rule the repair cannot restore sends the solve to the exact model:
    over classes, which holds it (at 5,000 enterprises with min_district_ratio the full
    model found no plan in 60 s), or the full model where the classes save nothing."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    monkeypatch.setattr(solve_mod, "LARGE_TRIPLES", 0)
    inst = load_instance(generated, overrides={"anti_monopoly": {"max_districts_per_agency": 2},
                                               "solver": {"levels": ["coverage"]}})
    assert ls.unsupported_rules(inst) == ["anti_monopoly.max_districts_per_agency"]
    res = solve_result(inst, time_limit=3.0)
    assert "large_scale" not in res.summary
    assert res.summary["full_model_kept_by"] == ["anti_monopoly.max_districts_per_agency"]
    assert "class_model" in res.summary
    monkeypatch.setattr(class_path, "CLASS_MAX_SHARE", 0.0)  # classes never save enough
    res = solve_result(inst, time_limit=3.0)
    assert "large_scale" not in res.summary and "class_model" not in res.summary


COPAY = {"copay": {"share_by_risk": {1: 0.3, 2: 0.2}}}


def test_copay_on_the_large_path(generated: Path) -> None:
    """With co-payment the budget and district caps count the government's part and the
    share caps the contract value: the LP's bound is still at least the exact optimum
    (counting contract value against the budget would put it below: the money the
    enterprises add serves more), the plan is within 2 % of it and keeps every rule."""
    inst = load_instance(generated, overrides=COPAY)
    assert ls.unsupported_rules(inst) == []
    elig = compute_eligibility(inst)
    large = ls.solve_large(inst, elig, 60.0, 1e-4)
    cov = {r.name: r for r in large.lex.levels}["coverage"]
    only = {"solver": {"levels": ["coverage"]}}
    exact = solve_result(load_instance(generated, overrides={**COPAY, **only}), time_limit=60.0)
    plain = solve_result(load_instance(generated, overrides=only), time_limit=60.0)
    mip = exact.summary["levels"][0]
    assert mip["status"] == "optimal"
    assert mip["value"] > plain.summary["levels"][0]["bound"] + 1  # co-payment serves more
    assert cov.bound >= mip["value"] - 1e-6
    assert mip["bound"] + 1e-6 >= cov.value >= 0.98 * cov.bound
    arr = lsc.Arrays.of(inst, elig.triples)
    assert large.chosen is not None
    assert lsr.remaining_breaks(inst, arr, _as_plan(arr, large.chosen)) == []
    # the cost level is the government's spend, below the contract value
    level_cost = {r.name: r for r in large.lex.levels}["cost"].value
    assert level_cost == pytest.approx(arr.gov[large.chosen].sum())
    assert level_cost < 0.99 * arr.cost[large.chosen].sum()


def _large_plan(inst) -> tuple[lsc.Arrays, np.ndarray, np.ndarray]:
    """The large path's plan (LP levels only, 20 s): its arrays, chosen triples and the
    triple of every demand (-1: not served)."""
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    choice = ls.solve_large(inst, elig, 20.0, 1e-4).chosen
    assert choice is not None
    return arr, choice, _as_plan(arr, choice)


def _as_plan(arr: lsc.Arrays, chosen: np.ndarray) -> np.ndarray:
    """Chosen triples as the triple of every demand (-1: not served)."""
    plan = np.full(len(arr.weight), -1, dtype=np.int64)
    plan[arr.demand[chosen]] = chosen
    return plan


def test_copay_money_is_the_government_part(generated: Path) -> None:
    """remaining_breaks and fill_budget count the government's part against the budget and
    the district caps and the contract value in the share caps."""
    inst = load_instance(generated, overrides=COPAY)
    arr, choice, plan = _large_plan(inst)
    gov, contract = float(arr.gov[choice].sum()), float(arr.cost[choice].sum())
    assert gov < contract
    for budget, broken in ((contract - 1.0, False), (gov - 1.0, True)):
        other = load_instance(generated, overrides={**COPAY, "budget": {"total": budget}})
        got = lsr.remaining_breaks(other, arr, plan)
        assert ("budget (1)" in got) is broken, (budget, got)
    # emptying a district and filling again spends up to the government's money only
    other = load_instance(generated, overrides={**COPAY, "budget": {"total": gov + 5e4}})
    k = arr.demand_district[arr.demand[choice[0]]]
    plan[(arr.demand_district == k) & ~arr.mandatory & (np.arange(len(plan)) % 2 == 0)] = -1
    assert lsr.fill_budget(other, arr, plan) > 0
    served = plan[plan >= 0]
    assert arr.gov[served].sum() <= gov + 5e4 + 1e-6
    assert lsr.remaining_breaks(other, arr, plan) == []


def test_checked_rules_are_found_broken_on_a_plan(generated: Path) -> None:
    """remaining_breaks names a district below min_district_ratio and an agency above
    max_share_in_city, and only those, on a plan that keeps every other rule."""
    inst = load_instance(generated)
    arr, choice, plan = _large_plan(inst)
    assert lsr.remaining_breaks(inst, arr, plan) == []
    served = plan >= 0
    ratio = np.bincount(arr.demand_district[served], arr.weight[served],
                        minlength=len(arr.districts)) / np.bincount(
        arr.demand_district, arr.weight, minlength=len(arr.districts))
    low = float(ratio.min())
    for changes, rule in (({"coverage": {"min_district_ratio": low + 0.01}},
                           "minimum district coverage (1)"),
                          ({"coverage": {"min_district_ratio": low - 0.01}}, None)):
        other = load_instance(generated, overrides=changes)
        assert lsr.remaining_breaks(other, arr, plan) == ([rule] if rule else [])
    spend = np.bincount(arr.agency[choice], arr.cost[choice], minlength=len(arr.agencies))
    top = float(spend.max() / spend.sum())
    for cap, broken in ((top - 1e-3, True), (top + 1e-3, False)):
        other = load_instance(generated, overrides={"anti_monopoly": {"max_share_in_city": cap}})
        got = lsr.remaining_breaks(other, arr, plan)
        assert got == (["city share caps (1)"] if broken else []), (cap, got)
    # what sends the solve on to the exact model: a checked rule among the unrepaired breaks
    assert ls.checked_rules({"unrepaired": ["agency capacity (2)"]}) == []
    assert ls.checked_rules({"unrepaired": ["agency capacity (2)", "city share caps (3)"]}) == [
        "anti_monopoly.max_share_in_city"]
    assert ls.checked_rules({}) == []


@pytest.mark.parametrize("changes, path", [
    ({"coverage": {"min_district_ratio": 0.3}}, "large_scale"),
    ({"anti_monopoly": {"max_share_in_city": 0.15}}, "class_model"),
    (COPAY, "large_scale")])
def test_checked_rules_on_the_large_path(generated: Path, tmp_path: Path, monkeypatch,
                                         changes: dict, path: str) -> None:
    """A minimum district coverage the LP's plan keeps stays on the large path (its bounds
    those of the relaxation) and its plan keeps the rule; a city share cap no rounded plan
    keeps hands the solve to the exact model with the time left; co-payment stays on the
    large path (its money the government's part). All pass the auditor."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    monkeypatch.setattr(solve_mod, "LARGE_TRIPLES", 0)
    folder = tmp_path / "inst"
    write_instance(generate_instance(400, 12, 4, seed=11), folder)
    policy = yaml.safe_load((folder / "policy.yaml").read_text())
    for key, value in changes.items():
        policy[key] = {**policy.get(key, {}), **value}
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy))
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["solve", str(folder), "--out", str(out),
                                       "--time-limit", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert path in summary
    if path == "class_model":
        assert "checked, not restored" in result.stderr
        assert summary["full_model_kept_by"] == ["anti_monopoly.max_share_in_city"]
    assert summary["coverage"] > 0
    assert check_results(folder, out) == []
    levels = {lv["name"]: lv for lv in summary["levels"]}
    assert levels["coverage"]["bound"] >= levels["coverage"]["value"] - 1e-6


def _tiny(tmp_path: Path, risks: list[int], person_days: float,
          agencies: list[tuple[str, float, float]], changes: dict) -> Path:
    """One district, one service; agencies as (id, capacity_days, day_rate)."""
    ents = [enterprise(f"E{i}", "D1", r) for i, r in enumerate(risks)]
    return write_tiny(tmp_path / "inst", enterprises=ents,
                      demands=[demand(e["enterprise_id"], person_days=person_days)
                               for e in ents],
                      agencies=[agency(a, capacity_days=cap) for a, cap, _ in agencies],
                      bids=[bid(a, rate) for a, _, rate in agencies], policy_changes=changes)


def test_mandatory_rounding_over_capacity_is_moved(tmp_path: Path) -> None:
    """Rounding gives a mandatory class its members on one agency past its capacity: the
    repair moves one to another agency instead of leaving capacity broken."""
    # two identical mandatory demands (one class of 2); agency A has room for one only
    path = _tiny(tmp_path, [4, 4], 4, [("A", 4, 100), ("B", 10, 120)],
                 {"coverage": {"mandatory_levels": [4]}})
    inst = load_instance(path)
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    classes = lsc.Classes.of(inst, elig.triples)
    assert len(classes.rep) == 1 and classes.size[0] == 2
    # a hand-made LP point: both members on the cheap agency A
    col_a = lsc.triple_of(arr, np.array([classes.rep[0]]), np.array([0]))
    lp = CoverageLp(Status.OPTIMAL, 16.0, 16.0, col_a, np.array([2.0]), True, 1, 0.0)
    choice = lsr.round_lp(arr, classes, lp)
    assert (choice >= 0).all()
    assert lsr.remaining_breaks(inst, arr, choice) == ["agency capacity (1)"]
    lsr.restore_rules(inst, arr, choice)
    assert lsr.remaining_breaks(inst, arr, choice) == []
    assert sorted(arr.agency[choice].tolist()) == [0, 1]


def test_share_cap_and_thin_district_are_restored(tmp_path: Path) -> None:
    """A plan that gives one agency all of a district is cut back until the share cap and
    the minimum number of agencies hold (non-mandatory demands only are dropped)."""
    path = _tiny(tmp_path, [2] * 6, 2, [("A", 100, 100), ("B", 100, 100), ("C", 100, 100)],
                 {"anti_monopoly": {"max_share_in_district": 0.5,
                                    "min_agencies_per_district": 2}})
    inst = load_instance(path)
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    everyone_on_a = lsc.triple_of(arr, np.arange(6), np.zeros(6, dtype=np.int64))
    choice = everyone_on_a.copy()
    assert "share caps (1)" in lsr.remaining_breaks(inst, arr, choice)
    lsr.restore_rules(inst, arr, choice)
    assert lsr.remaining_breaks(inst, arr, choice) == []
    # and the money left is spent again on agencies that keep every rule
    lsr.fill_budget(inst, arr, choice)
    assert lsr.remaining_breaks(inst, arr, choice) == []


def test_infeasible_mandatory_is_reported(tmp_path: Path, monkeypatch) -> None:
    """Mandatory demands that no capacity can hold: infeasible, no plan, named reasons."""
    monkeypatch.setattr(ls, "LARGE_TRIPLES", 0)
    path = _tiny(tmp_path, [4, 4], 5, [("A", 6, 100)], {"coverage": {"mandatory_levels": [4]}})
    res = solve_result(load_instance(path), time_limit=10.0)
    assert res.summary["status"] == "infeasible"
    assert res.assignments.empty
    assert res.diagnosis is not None and len(res.diagnosis)


def test_restore_coverage_moves_to_cheaper_agencies(tmp_path: Path) -> None:
    """A later level's plan that serves less than the earlier level guarantees: one demand
    moves to the cheaper agency, and the money saved serves the demand left out."""
    path = write_tiny(tmp_path / "inst",
                      enterprises=[enterprise(f"E{i}", "D1", 2) for i in range(3)],
                      demands=[demand(f"E{i}", person_days=1) for i in range(3)],
                      agencies=[agency("A", quality=90), agency("B", quality=60)],
                      bids=[bid("A", 200), bid("B", 100)],
                      policy_changes={"budget": {"total": 400}})
    inst = load_instance(path)
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    choice = np.full(3, -1, dtype=np.int64)
    choice[:2] = lsc.triple_of(arr, np.arange(2), np.zeros(2, dtype=np.int64))  # both on A
    quality = elig.triples["quality"].to_numpy(dtype=float)
    assert arr.weight[choice >= 0].sum() == 4
    assert lsr.restore_coverage(inst, arr, choice, 6.0, quality)
    assert arr.weight[choice >= 0].sum() == 6
    assert lsr.remaining_breaks(inst, arr, choice) == []
    assert sorted(arr.agency[choice].tolist()) == [0, 1, 1]


# ------------------------------------------------------------------------------------------
# issue 21: the exact model over classes and the neighbourhood it improves the plan in
# ------------------------------------------------------------------------------------------


def _all_class_columns(inst, elig):
    arr = lsc.Arrays.of(inst, elig.triples)
    classes = lsc.Classes.of(inst, elig.triples)
    rep = np.zeros(len(arr.weight), dtype=bool)
    rep[classes.rep] = True
    rows = np.flatnonzero(rep[arr.demand])
    return arr, classes, rows, classes.of_demand[arr.demand[rows]]


@pytest.fixture(scope="module")
def small_city(tmp_path_factory) -> Path:
    """A small generated city with classes of several identical demands."""
    path = tmp_path_factory.mktemp("classes") / "city"
    write_instance(generate_instance(150, 8, 2, seed=5), path)
    return path


def test_class_model_has_the_full_models_optimum(small_city: Path) -> None:
    """Members of a class are alike for every rule, so the model over class counts reaches
    the same three level values as the model over every triple."""
    from allocator.model.build import build_class_model
    from allocator.pipeline.lexicographic import solve_lexicographic
    from allocator.solvers import get_backend

    inst = load_instance(small_city)
    elig = compute_eligibility(inst)
    arr, classes, rows, g = _all_class_columns(inst, elig)
    assert len(classes.rep) < len(arr.weight)  # there are classes of several members
    model = build_class_model(inst, elig.triples.iloc[rows], classes.size[g])
    assert model.lp.ub[model.x].max() > 1  # a column counts several members
    lex = solve_lexicographic(model, get_backend("highs"), 120.0, 1e-6, 1, 0)
    full = solve_result(load_instance(small_city, overrides={"solver": {"mip_gap": 1e-6}}),
                        time_limit=120.0).summary
    assert lex.status is Status.OPTIMAL and full["status"] == "optimal"
    values = {r.name: r.value for r in lex.levels}
    assert values["coverage"] == pytest.approx(full["coverage"], abs=1e-6)
    assert values["quality"] == pytest.approx(full["quality"], rel=1e-6)
    assert values["cost"] == pytest.approx(full["cost"], rel=1e-6)


def test_counts_handed_out_to_members_and_polish_never_worse(small_city: Path) -> None:
    from allocator.pipeline.large_scale.polish import class_columns, hand_out, polish
    from allocator.solvers import get_backend

    inst = load_instance(small_city)
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    classes = lsc.Classes.of(inst, elig.triples)
    big = int(np.argmax(classes.size))
    members = np.flatnonzero(classes.of_demand == big)
    offers = arr.agency[arr.starts[members[0]]:arr.ends[members[0]]]
    assert len(members) >= 3 and len(offers) >= 2
    counts = np.array([1.0, float(len(members) - 2)])  # one member unserved
    plan = hand_out(arr, classes, np.array([big, big]), offers[:2], counts)
    served = plan[members]
    assert (served >= 0).sum() == len(members) - 1
    assert (arr.demand[served[served >= 0]] == members[served >= 0]).all()
    by_agency = np.bincount(arr.agency[served[served >= 0]], minlength=len(arr.capacity))
    assert by_agency[offers[0]] == 1 and by_agency[offers[1]] == len(members) - 2

    ls_res = ls.solve_large(inst, elig, 30.0, 1e-4)
    choice = np.full(len(arr.weight), -1, dtype=np.int64)
    choice[arr.demand[ls_res.chosen]] = ls_res.chosen
    _g, _a, c = class_columns(arr, classes, choice, [])
    assert c.sum() == (choice >= 0).sum()  # every served demand counted once
    better, lex, _info = polish(inst, elig, arr, classes, choice, [], get_backend("highs"),
                                20.0, 1e-4, 1, 0, lambda _m: None)
    assert better is not None and lex is not None
    assert arr.weight[better >= 0].sum() >= arr.weight[choice >= 0].sum() - 1e-9
    assert not lsr.remaining_breaks(inst, arr, better)
