"""Budget sweeps: budget parsing, agreement with the independent reference model at every
point (including points proved infeasible and points reusing a larger budget's plan), equality
with single solves, monotone served weight (hypothesis), the files and the plot."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from instance_builder import solve_result

import allocator
from allocator.cli import main
from allocator.data.generate import generate_instance, write_instance
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.pipeline.least_budget import least_budget
from allocator.solvers import get_backend
from allocator.whatif.sweep import (
    FRONTIER_COLUMNS,
    MARGINAL_STEP,
    budget_label,
    parse_budgets,
    split_chains,
)
from benchmarks.baseline import solve_baseline
from tests.conftest import write_instance_files

PNG = b"\x89PNG\r\n\x1a\n"
#: a gap small enough that the served weight (integer weights, < 200) is proven exactly
#: optimal; a time limit that leaves a loaded machine room (a proven level stops at once, so a
#: long limit costs nothing on a quiet machine: every point proves all levels in ~5 s there,
#: but 20 s per point ended a point `feasible` with six engineers' work on the two cores)
SOLVER = {"name": "auto", "time_limit": 60, "mip_gap": 0.004, "seed": 0, "threads": 1}
HAS_PLAN = ("optimal", "feasible")


def make_instance(path: Path, n_enterprises: int = 25, n_agencies: int = 6,
                  n_districts: int = 2, seed: int = 2) -> Path:
    """A small generated city (bids only for sectors that exist, a test-friendly solver)."""
    data = generate_instance(n_enterprises, n_agencies, n_districts, seed)
    sectors = set(data["enterprises"]["sector"])
    data["bids"] = data["bids"][data["bids"]["sector"].isin(sectors)].reset_index(drop=True)
    data["policy"]["solver"] = dict(SOLVER)
    write_instance(data, path)
    return path


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG and len(data) > 2000, path


# ------------------------------------------------------------------------------------------
# budgets
# ------------------------------------------------------------------------------------------

def test_parse_budgets_list_and_range():
    assert parse_budgets("3e6, 1000000,2000000.5") == [1_000_000, 2_000_000.5, 3_000_000]
    assert parse_budgets("0:100:5") == [0, 25, 50, 75, 100]
    assert parse_budgets("10:10:1,5") == [5, 10]
    assert parse_budgets("1:2:3") == [1, 1.5, 2]
    assert parse_budgets("100,100,1e2") == [100]  # repeats dropped
    assert len(parse_budgets("1e6:2e6:20")) == 20


@pytest.mark.parametrize("text", ["", " ", "1e6,,2e6", "abc", "1,000", "5:1:3", "1:2:0",
                                  "1:2", "1:2:3:4", "-5", "1:2:x", "inf", "nan", "10:20:1",
                                  "1:2:2.5", "12M"])
def test_parse_budgets_rejects_bad_syntax(text):
    with pytest.raises(ValueError) as exc:
        parse_budgets(text)
    assert str(exc.value)


def test_budget_label_and_chains():
    assert budget_label(12_000_000) == "budget_12000000"
    assert budget_label(1500.5) == "budget_1500.5"
    assert budget_label(0) == "budget_0"
    assert split_chains([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
    assert split_chains([1, 2], 5) == [[1], [2]]
    # 19 points: the larger budgets, which take longer, in the shorter chain
    chains = split_chains(list(range(19)), 2)
    assert chains == [list(range(13)), list(range(13, 19))]
    # served weight alone takes about as long at every budget: halves
    assert split_chains(list(range(19)), 2, by_rank=False) == [list(range(10)),
                                                              list(range(10, 19))]
    assert split_chains(list(range(9)), 3, by_rank=False) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # what is left after the early chain (k_city's ten of twenty, from the sixth up) is
    # weighed by its ranks among all the budgets: 6 and 4, not 7 and 3
    assert split_chains(list(range(10)), 2, first_rank=6) == [list(range(6)),
                                                              list(range(6, 10))]
    assert split_chains(list(range(10)), 2) == [list(range(7)), list(range(7, 10))]
    for k in range(1, 8):  # every budget once, in order, no chain empty
        parts = split_chains(list(range(7)), k)
        assert sum(parts, []) == list(range(7)) and all(parts) and len(parts) == k


def test_chains_weigh_larger_budgets_more_unless_served_weight_alone_proves_alike(tmp_path):
    import dataclasses

    from allocator.whatif.sweep import slower_at_the_top

    inst = load_instance(make_instance(tmp_path / "c"))
    alone = dataclasses.replace(inst, policy=dataclasses.replace(inst.policy,
                                                                 levels=("coverage",)))
    assert slower_at_the_top(inst, None) and slower_at_the_top(inst, 70.0)
    assert not slower_at_the_top(alone, None)
    assert slower_at_the_top(alone, 70.0)  # an unproven largest budget: a hard top


def test_cli_bad_budgets_exit_2_and_nothing_written(tmp_path):
    inst = write_instance_files(tmp_path / "inst")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sweep", str(inst), "--budgets", "1:x", "--out", str(out)])
    assert res.exit_code == 2
    assert "--budgets" in res.output
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# a sweep against the reference model
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    return make_instance(tmp_path_factory.mktemp("city") / "city")


@pytest.fixture(scope="module")
def swept(city, tmp_path_factory):
    """One sweep over budgets chosen around what the instance needs: just below and at the
    least budget, the policy's budget, and two budgets past anything a plan can cost."""
    inst = load_instance(city)
    elig = compute_eligibility(inst)
    lb = least_budget(inst, elig, get_backend("auto"), 60, 1)
    assert lb.status == "optimal" and lb.value > 0
    most = float(elig.triples.groupby("demand")["cost"].max().sum())  # >= any plan's cost
    budgets = [math.ceil(lb.value) - 1, math.ceil(lb.value), inst.policy.budget_total,
               math.ceil(most), math.ceil(2 * most)]
    out = tmp_path_factory.mktemp("sweep") / "frontier"
    # 60 s per point: a bound, not a target (points prove in ~5 s); with policy's 20 s a
    # loaded machine left the least budget unproven and the exact-value checks failed
    result = allocator.sweep(inst, budgets, jobs=2, time_limit=60)
    result.write(out)
    code = 0 if result.has_plan else 1
    frontier = pd.read_csv(out / "frontier.csv", encoding="utf-8-sig")
    levels = {}  # status of each point's served-weight level
    for b in budgets:
        summary = json.loads((out / budget_label(b) / "summary.json").read_text())
        levels[b] = summary["levels"][0]["status"] if summary["levels"] else None
    return {"inst": inst, "lb": lb, "budgets": budgets, "out": out, "code": code,
            "frontier": frontier, "levels": levels}


def reference_coverage(city: Path, budget: float) -> float | None:
    """Served weight of the independent PuLP model at this budget (None: no plan), its
    first level proven optimal (the later levels may stop at the short time limit)."""
    ref = solve_baseline(city, budget=budget, mip_gap=SOLVER["mip_gap"], time_limit=20)
    if ref["status"] not in HAS_PLAN:
        assert ref["status"] == "infeasible", ref["status"]
        return None
    assert ref["levels"][0]["level"] == "coverage"
    assert ref["levels"][0]["status"] == "optimal"
    return ref["coverage"]


def test_sweep_matches_reference_at_every_point(city, swept):
    f = swept["frontier"]
    assert swept["code"] == 0
    assert f["budget"].tolist() == sorted(swept["budgets"])
    most = swept["budgets"][-2]  # no plan costs more: every budget above is the same problem
    refs = {b: reference_coverage(city, b) for b in sorted({min(b, most) for b in f["budget"]})}
    for row in f.itertuples(index=False):
        ref = refs[min(row.budget, most)]
        assert (ref is not None) == (row.status in HAS_PLAN), row
        if ref is not None:
            assert swept["levels"][row.budget] == "optimal", row
            assert row.coverage == pytest.approx(ref, abs=1e-6), row
            assert row.cost <= row.budget + 1e-6


def test_sweep_uses_its_shortcuts_soundly(swept):
    f = swept["frontier"].set_index("budget")
    below, at = swept["budgets"][0], swept["budgets"][1]
    assert f.loc[below, "status"] == "infeasible"
    assert f.loc[below, "how"] == "below_least_budget"
    assert f.loc[at, "status"] in HAS_PLAN  # the least budget is exact: a plan exists at it
    assert f.loc[at, "mandatory_served"] == f.loc[at, "mandatory_total"] > 0
    top, second = swept["budgets"][-1], swept["budgets"][-2]
    assert f.loc[second, "how"] == "reused"  # costs no more than the top plan's budget
    for col in ("coverage", "quality", "cost"):
        assert f.loc[second, col] == pytest.approx(f.loc[top, col])
    diag = pd.read_csv(swept["out"] / budget_label(below) / "diagnosis.csv", encoding="utf-8-sig")
    row = diag[diag["rule"] == "budget"].iloc[0]
    assert row["required"] == pytest.approx(swept["lb"].value, abs=0.01)
    assert row["shortfall"] == pytest.approx(swept["lb"].value - below, abs=0.01)


def test_a_largest_budget_cut_short_far_from_its_bound_is_not_reused(city, monkeypatch):
    """Under load the largest budget's solve once ended on its start, far below its bound,
    and every budget between that plan's cost and it took the plan unsolved; now they are
    solved (and the top plan, which is optimal here, is found again)."""
    from allocator.whatif import sweep as sweep_mod

    inst = load_instance(city)
    most = float(compute_eligibility(inst).triples.groupby("demand")["cost"].max().sum())
    budgets = [math.ceil(most), math.ceil(2 * most)]
    real = sweep_mod.solve_point

    def cut_short(inst_b, elig, budget, *args, **kwargs):
        point = real(inst_b, elig, budget, *args, **kwargs)
        if budget == budgets[-1]:  # as if the time ran out with a bound far above the plan
            lv = next(lv for lv in point.result.summary["levels"] if lv["name"] == "coverage")
            lv["bound"], lv["status"] = 2 * point.result.summary["coverage"] + 10, "feasible"
        return point

    monkeypatch.setattr(sweep_mod, "solve_point", cut_short)
    f = allocator.sweep(inst, budgets, jobs=1, time_limit=60).frontier.set_index("budget")
    assert f.loc[budgets[0], "how"] != "reused"
    assert f.loc[budgets[0], "coverage"] == pytest.approx(f.loc[budgets[1], "coverage"])


def test_a_point_stops_at_the_largest_budgets_served_weight(city):
    """A chain point given the largest budget's unproven served weight ends its served-weight
    search once it serves as much (HiGHS's target), keeps its own bound and gap, and says so;
    without a stop the same point is proven."""
    from allocator.whatif.sweep import solve_point

    inst = load_instance(city)
    elig = compute_eligibility(inst)
    lb = least_budget(inst, elig, get_backend("auto"), 60, 1)
    budget = float(inst.policy.budget_total)
    full = solve_point(inst, elig, budget, None, lb, None, 60, 1)
    assert full.result.summary["levels"][0]["status"] == "optimal"
    best = float(full.result.summary["coverage"])
    stop = best - 10.0
    point = solve_point(inst, elig, budget, None, lb, None, 60, 1, stop=stop)
    served = point.result.summary["levels"][0]
    assert served["solver_status"] == "target reached"
    assert stop <= served["value"] <= best and served["bound"] >= best - 1e-6
    # said where the search ended at the stop unproven (its first plan may be the optimum)
    said = point.result.summary["sweep"].get("stopped_at_largest_budget")
    assert said == (stop if served["status"] != "optimal" else None)
    assert "stopped_at_largest_budget" not in full.result.summary["sweep"]


def test_chains_get_the_stop_of_an_unproven_largest_budget(city, monkeypatch):
    """The largest budget's search ending unproven near its bound hands its served weight to
    the chains' points as their stop; a proven one hands none."""
    from allocator.whatif import sweep as sweep_mod

    inst = load_instance(city)
    most = float(compute_eligibility(inst).triples.groupby("demand")["cost"].max().sum())
    budgets = [float(inst.policy.budget_total), math.ceil(2 * most)]
    real = sweep_mod.solve_point
    stops: dict[float, float | None] = {}

    def unproven_top(inst_b, elig, budget, *args, **kwargs):
        point = real(inst_b, elig, budget, *args, **kwargs)
        stops[budget] = kwargs.get("stop", args[7] if len(args) > 7 else None)
        if budget == budgets[-1] and unproven:
            lv = next(lv for lv in point.result.summary["levels"] if lv["name"] == "coverage")
            lv["bound"] = point.result.summary["coverage"] * (1 + 5e-4)
            lv["status"] = "feasible"
        return point

    monkeypatch.setattr(sweep_mod, "solve_point", unproven_top)
    for unproven in (True, False):
        f = allocator.sweep(inst, budgets, jobs=1, time_limit=60).frontier.set_index("budget")
        assert f.loc[budgets[0], "how"] == "warm_start"
        top_served = f.loc[budgets[-1], "coverage"]
        assert stops[budgets[0]] == (pytest.approx(top_served) if unproven else None)


def test_largest_stop_only_for_an_unproven_largest_budget_close_to_its_bound(city, swept):
    """Points stop at the largest budget's served weight only when its search ended unproven
    within REUSE_MAX_GAP of its bound (proven: its bound settles them already; far from it,
    a loaded machine's plan, no stop)."""
    import copy

    from allocator.whatif.sweep import REUSE_MAX_GAP, largest_stop

    top = swept["budgets"][-1]
    summary = json.loads((swept["out"] / budget_label(top) / "summary.json").read_text())
    result = solve_result(load_instance(city))
    served = float(summary["coverage"])

    def with_level(status: str, bound: float):
        r = copy.deepcopy(result)
        r.summary = {**copy.deepcopy(summary), "coverage": served}
        r.summary["levels"][0].update(status=status, value=served, bound=bound)
        return r

    assert largest_stop(with_level("optimal", served)) is None
    assert largest_stop(with_level("feasible", served * (1 + REUSE_MAX_GAP / 2))) == served
    assert largest_stop(with_level("feasible", served * (1 + 2 * REUSE_MAX_GAP) + 1)) is None


def test_sweep_point_equals_single_solve(city, swept):
    budget = swept["inst"].policy.budget_total
    row = swept["frontier"].set_index("budget").loc[budget]
    single = solve_result(load_instance(city, budget=budget)).summary
    assert row["status"] in HAS_PLAN and single["status"] in HAS_PLAN
    assert row["coverage"] == pytest.approx(single["coverage"], abs=1e-6)
    assert row["mandatory_served"] == single["mandatory_served"]
    if row["status"] == single["status"] == "optimal":
        assert row["quality"] == pytest.approx(single["quality"], rel=2 * SOLVER["mip_gap"])
    point = json.loads((swept["out"] / budget_label(budget) / "summary.json").read_text())
    assert point["coverage"] == pytest.approx(row["coverage"])
    assert point["budget"] == budget
    a = pd.read_csv(swept["out"] / budget_label(budget) / "assignments.csv", encoding="utf-8-sig")
    assert a["weight"].sum() == pytest.approx(row["coverage"])
    assert a["cost"].sum() == pytest.approx(row["cost"], abs=0.05)


def test_sweep_files(swept):
    out, f = swept["out"], swept["frontier"]
    assert list(f.columns) == FRONTIER_COLUMNS
    for b in swept["budgets"]:
        assert (out / budget_label(b) / "summary.json").is_file()
    assert_png(out / "frontier.png")
    summary = json.loads((out / "frontier_summary.json").read_text())
    least = summary["least_budget_all_mandatory"]
    assert least["exact"] and least["value"] == pytest.approx(swept["lb"].value)
    assert summary["points"] == len(swept["budgets"])
    ok = f[f["status"].isin(HAS_PLAN)].reset_index(drop=True)
    for k in range(1, len(ok)):
        expected = ((ok.loc[k, "coverage"] - ok.loc[k - 1, "coverage"])
                    / (ok.loc[k, "budget"] - ok.loc[k - 1, "budget"]) * MARGINAL_STEP)
        assert ok.loc[k, "marginal_value"] == pytest.approx(expected, abs=5e-5)  # 4 decimals
    assert pd.isna(f.loc[f["status"] == "infeasible", "coverage"]).all()
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temp left


# ------------------------------------------------------------------------------------------
# monotone in the budget
# ------------------------------------------------------------------------------------------

#: the tiny instance with its rules on: two agencies per served district, 60 % share cap
RULED = ("budget:\n  total: 50000\nanti_monopoly:\n  max_share_in_district: 0.6\n"
         "  min_agencies_per_district: 2\n")


@pytest.fixture(scope="module")
def ruled(tmp_path_factory) -> Path:
    return write_instance_files(tmp_path_factory.mktemp("ruled") / "inst", policy=RULED)


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(budgets=st.lists(st.integers(min_value=0, max_value=80_000), min_size=2, max_size=4,
                        unique=True))
def test_served_weight_never_falls_as_budget_grows(ruled, budgets):
    inst = load_instance(ruled)
    with tempfile.TemporaryDirectory() as tmp:
        result = allocator.sweep(inst, budgets, jobs=1)
        result.write(Path(tmp) / "s")
        code = 0 if result.has_plan else 1
        f = pd.read_csv(Path(tmp) / "s" / "frontier.csv", encoding="utf-8-sig")
    assert code in (0, 1)
    assert f["budget"].tolist() == sorted(budgets)
    for row in f.itertuples(index=False):  # and each point is the reference's
        ref = solve_baseline(ruled, budget=row.budget)
        assert (ref["status"] == "optimal") == (row.status == "optimal"), row
        if ref["status"] == "optimal":
            assert row.coverage == pytest.approx(ref["coverage"])
    has = f["status"].isin(HAS_PLAN).to_numpy()
    # a plan at some budget means a plan at every larger one
    assert all(has[i] <= has[j] for i in range(len(f)) for j in range(i + 1, len(f)))
    served = f.loc[has, "coverage"].to_numpy()
    assert all(served[i] <= served[i + 1] + 1e-9 for i in range(len(served) - 1))


# ------------------------------------------------------------------------------------------
# no plan at any budget; the command line
# ------------------------------------------------------------------------------------------

def test_no_plan_at_any_budget(tmp_path):
    policy = ("budget:\n  total: 50000\nanti_monopoly:\n  max_share_in_district: null\n"
              "  min_agencies_per_district: 1\nquality:\n  min_score_by_risk: {4: 99}\n")
    inst_dir = write_instance_files(tmp_path / "inst", policy=policy)
    out = tmp_path / "sweep"
    res = CliRunner().invoke(main, ["sweep", str(inst_dir), "--budgets", "1000,1e9",
                                    "--out", str(out)])
    assert res.exit_code == 1, res.output
    f = pd.read_csv(out / "frontier.csv", encoding="utf-8-sig")
    assert f["status"].tolist() == ["infeasible", "infeasible"]
    for b in (1000, 1e9):
        diag = pd.read_csv(out / budget_label(b) / "diagnosis.csv", encoding="utf-8-sig")
        assert (diag["rule"] != "budget").any()  # the named rule, the same at every budget
    assert_png(out / "frontier.png")


def test_cli_sweep_writes_frontier(tmp_path):
    inst_dir = write_instance_files(tmp_path / "inst")
    out = tmp_path / "sweep"
    res = CliRunner().invoke(main, ["sweep", str(inst_dir), "--budgets", "0:60000:4",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    f = pd.read_csv(out / "frontier.csv", encoding="utf-8-sig")
    assert f["budget"].tolist() == [0, 20000, 40000, 60000]
    assert f["status"].iloc[0] == "infeasible" and f["status"].iloc[-1] in HAS_PLAN
    served = f["coverage"].dropna().to_numpy()
    assert (served[1:] >= served[:-1]).all()
    assert_png(out / "frontier.png")


def test_monotone_repair_gives_a_worse_point_the_smaller_budgets_plan(tmp_path):
    from allocator.whatif.sweep import Point, monotone_repair

    inst_dir = write_instance_files(tmp_path / "inst", policy=RULED)
    inst = load_instance(inst_dir)
    result = allocator.sweep(inst, [30000, 60000])
    small, large = result.result.points[30000], result.result.points[60000]
    assert small.status.value == "optimal" and small.coverage > 0
    # pretend the larger budget's solve stopped early with no plan at all
    lost = type(large)({**large.summary, "status": "no_solution", "coverage": None,
                        "quality": None, "cost": None}, excluded=large.excluded)
    points = {30000: Point(30000, small, "solved", 1.0), 60000: Point(60000, lost, "solved", 1.0)}
    monotone_repair(points, inst, compute_eligibility(inst))
    fixed = points[60000]
    assert fixed.how == "smaller_budget_plan" and fixed.result.status.value == "feasible"
    assert fixed.result.coverage == pytest.approx(small.coverage)
    keys = ["enterprise_id", "service_id", "agency_id"]
    assert fixed.result.assignments[keys].equals(small.assignments[keys])
    assert fixed.result.summary["budget"] == 60000
    assert fixed.result.summary["sweep"]["plan_from_budget"] == 30000
    # a point already at least as good is left alone
    before = points[30000]
    monotone_repair({30000: before}, inst, compute_eligibility(inst))
    assert before.result is small


# ------------------------------------------------------------------------------------------
# the budget serving all
# ------------------------------------------------------------------------------------------

#: the tiny instance's agencies with too few days for its 16 person-days of demand
SHORT_OF_DAYS = ("agency_id,name,status,quality,capacity_days,districts\n"
                 "A1,Alpha Safety,active,90,6,*\n"
                 "A2,Beta Consulting,active,85,4,D1;D2\n"
                 "A3,Gamma Training,probation,75,2,D2\n")


@pytest.mark.parametrize("case, every_demand", [("tiny", True), ("short_of_days", False),
                                                ("ruled", False)])
def test_budget_serving_all_equals_brute_force(tmp_path, case, every_demand):
    """The most weight any plan serves and the least cost serving it, quality left out: one
    MIP when every demand can be served (checked: the every-demand solve is optimal), the
    two levels when the rules (capacity; two agencies and a 60 % share per district) leave
    one out (checked: that solve is infeasible), and exact in both."""
    from bruteforce import serving_most

    from allocator.whatif.sweep import budget_serving_all

    tables = {"tiny": {}, "ruled": {"policy": RULED},
              "short_of_days": {"agencies": SHORT_OF_DAYS}}[case]
    inst = load_instance(write_instance_files(tmp_path / "inst", **tables))
    elig = compute_eligibility(inst)
    every = least_budget(inst, elig, get_backend("highs"), 30, 1, serve_all=True)
    assert every.status == ("optimal" if every_demand else "infeasible")
    full = budget_serving_all(inst, elig, "highs", 30, 1)
    most, least = serving_most(inst.path, budget=1e9)
    assert full["coverage"] == pytest.approx(most)
    assert full["value"] == pytest.approx(least, abs=0.01)
    assert full["exact"] and full["status"] == "optimal"
    if every_demand:
        assert full["coverage_ratio"] == pytest.approx(1.0)
        assert full["value"] == pytest.approx(every.value, abs=0.01)


def test_first_solves_side_by_side_when_every_budget_is_below_the_least(tmp_path):
    """With two jobs the largest budget is solved beside the least budget, before anyone
    knows it is short: its answer gives way to the least budget's proof, as with one job."""
    inst = load_instance(write_instance_files(tmp_path / "inst"))
    one, two = (allocator.sweep(inst, [100, 200], jobs=j).frontier for j in (1, 2))
    for f in (one, two):
        assert f["how"].tolist() == ["below_least_budget"] * 2
        assert f["status"].tolist() == ["infeasible"] * 2
    assert one.drop(columns="seconds").equals(two.drop(columns="seconds"))


def test_one_job_and_two_give_the_same_frontier_and_budget_serving_all(tmp_path):
    """Two jobs: the least budget, the largest budget and the budget serving all side by
    side, then the chains; one job: one after the other. The same served weight, spend and
    figures (only `how` and timings may differ)."""
    inst = load_instance(write_instance_files(tmp_path / "inst", policy=RULED))
    budgets = [100, 20_000, 40_000, 60_000, 1e6]
    one, two = (allocator.sweep(inst, budgets, jobs=j) for j in (1, 2))
    cols = ["budget", "status", "coverage", "cost", "coverage_status"]
    assert one.frontier[cols].equals(two.frontier[cols])
    full1, full2 = (s.summary()["budget_serving_all"] for s in (one, two))
    assert full1["exact"] and full2["exact"]
    for key in ("value", "coverage", "coverage_ratio", "status"):
        assert full1[key] == full2[key], key


class _Flag:
    """A Signal in this process."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class _OrderedHere:
    """An executor of two slots that runs a run's tasks here, one after the other, the
    first run's in a given order (least budget first: the largest budget's solve has not
    ended while the early chain runs; or largest first), recording every run's tasks.
    `ends_after`: the signals are set as this many points have been told (the largest
    budget's solve ending while the early chain runs)."""

    name, remote, slots = "ordered", False, 2

    def __init__(self, least_first: bool, ends_after: int | None = None) -> None:
        self.least_first, self.ends_after = least_first, ends_after
        self.runs: list[list] = []
        self.flags: list[_Flag] = []

    def run(self, fn, tasks, on_result=None, on_event=None, on_start=None, on_error=None):
        from allocator.whatif import pool

        order = list(range(len(tasks)))
        if not self.runs and self.least_first:
            order.reverse()
        self.runs.append(list(tasks))
        told = [0]

        def sink(event):
            told[0] += 1
            if told[0] == self.ends_after:
                for flag in self.flags:
                    flag.set()
            if on_event is not None:
                on_event(event)

        saved, pool._SINK = pool._SINK, sink
        try:
            out = {}
            for k in order:
                out[k] = fn(tasks[k])
                if on_result is not None:
                    on_result(k, out[k])
        finally:
            pool._SINK = saved
        return [out[k] for k in range(len(tasks))]

    def signal(self) -> _Flag:
        self.flags.append(_Flag())
        return self.flags[-1]

    def describe(self) -> dict:
        return {"executor": self.name}

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def one_process(city):
    """Budgets from the least budget up, one past anything a plan can cost, and their
    sweep in one process."""
    from allocator.whatif.sweep import run_sweep

    inst = served_weight_alone(city)
    elig = compute_eligibility(inst)
    most = float(elig.triples.groupby("demand")["cost"].max().sum())
    lb = least_budget(inst, elig, get_backend("auto"), 60, 1).value
    budgets = [round(lb * f, 2) for f in (1.0, 1.15, 1.3, 1.45)] + [math.ceil(2 * most)]
    return budgets, run_sweep(inst, budgets, jobs=1, time_limit=60)


def served_weight_alone(city: Path):
    return load_instance(city, overrides={"solver": {"levels": "coverage"}})


@pytest.mark.parametrize("least_first, ends_after", [(True, None), (True, 1), (False, None)])
def test_the_lowest_chain_runs_while_the_largest_budget_is_solved(city, one_process,
                                                                   least_first, ends_after):
    """With two slots the least budget's slot solves the lowest chain's budgets until the
    largest budget's solve ends: all of them when it is still running (least budget first),
    the first alone when it ends after that point, none when it has ended; the chains after
    leave those budgets out, start from the plan just below, and the frontier is the
    one-process sweep's. Only where served weight alone is swept (with every level a point
    may hold its slot a minute past that end)."""
    from allocator.whatif.sweep import early_budgets, run_sweep

    inst = served_weight_alone(city)
    budgets, one = one_process
    early = early_budgets(inst, budgets, 2)
    assert len(early) >= 2 and early == budgets[:len(early)] and budgets[-1] not in early
    assert early_budgets(load_instance(city), budgets, 2) == []
    ex = _OrderedHere(least_first, ends_after)
    seen: list[float] = []
    got = run_sweep(inst, budgets, jobs=2, time_limit=60, executor=ex,
                    progress=lambda e: seen.append(e["budget"]))
    later = sorted(b for run in ex.runs[1:] for task in run for b in task.budgets)
    assert sorted(seen) == sorted(budgets)  # every point told once
    if ends_after is not None:
        early = early[:ends_after]  # no point started after the end
        assert set(early_budgets(inst, budgets, 2)[ends_after:]) <= set(later)
    if least_first:
        assert not set(early) & set(later)
        below = max(early)
        first_later = ex.runs[1][0]
        assert first_later.budgets[0] > below and first_later.start is not None
        pd.testing.assert_frame_equal(
            first_later.start.reset_index(drop=True),
            got.points[below].assignments[["enterprise_id", "service_id", "agency_id"]]
            .reset_index(drop=True), check_dtype=False)
    else:
        assert set(early) <= set(later)
    cols = ["budget", "status", "coverage", "coverage_status"]
    pd.testing.assert_frame_equal(got.frontier[cols], one.frontier[cols])


def test_the_side_solves_get_a_quarter_of_the_time_limit(city, monkeypatch):
    """A sweep's least budget and budget serving all are figures beside the points: each gets
    SIDE_SHARE of the time limit (at least SIDE_MIN_SECONDS), the points the whole limit."""
    from allocator.whatif import sweep as sweep_mod

    asked: dict[str, list[float]] = {"least": [], "serving_all": [], "point": []}
    real_least, real_all, real_point = (sweep_mod.Axis.least, sweep_mod.budget_serving_all,
                                        sweep_mod.solve_point)

    def least(self, inst, elig, backend, limit, threads):
        asked["least"].append(limit)
        return real_least(self, inst, elig, backend, limit, threads)

    def serving_all(inst, elig, solver, time_limit, threads, start=None):
        asked["serving_all"].append(time_limit)
        return real_all(inst, elig, solver, time_limit, threads, start)

    def point(inst, elig, budget, start, lb, solver, time_limit, *args, **kwargs):
        asked["point"].append(time_limit)
        return real_point(inst, elig, budget, start, lb, solver, time_limit, *args, **kwargs)

    monkeypatch.setattr(sweep_mod.Axis, "least", least)
    monkeypatch.setattr(sweep_mod, "budget_serving_all", serving_all)
    monkeypatch.setattr(sweep_mod, "solve_point", point)
    inst = load_instance(city)
    budget = float(inst.policy.budget_total)
    sweep_mod.run_sweep(inst, [budget, 2 * budget], jobs=1, time_limit=60)
    assert asked["least"] == [15.0] and asked["serving_all"] == [15.0]
    assert asked["point"] and set(asked["point"]) == {60}
    assert sweep_mod.side_limit(20) == 10.0 and sweep_mod.side_limit(5) == 5.0
