"""The exact model over classes of identical demands below province scale
(pipeline/class_path.py): when solve_instance uses it, that its plans are the full model's
optimum (brute force on tiny cities with twins, the full model on a generated city) and pass
the independent auditor, and the phased first level of the lexicographic solve."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from bruteforce import evaluate
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from instance_builder import (
    agency,
    bid,
    conflict,
    demand,
    enterprise,
    incumbent,
    pin,
    quote,
    run_check,
    solve_folder,
    write_instance,
)
from test_properties import PROPERTY, matches_brute_force, tiny_instances
from test_time_budget import Clock

from allocator.cli import main
from allocator.data.generate import generate_instance
from allocator.data.generate import write_instance as write_generated
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.model.build import Level, build_model
from allocator.pipeline import lexicographic
from allocator.pipeline.class_path import ClassPlan, usable_classes
from allocator.pipeline.lexicographic import level_upper, solve_lexicographic
from allocator.pipeline.solve import solve_instance, solve_model
from allocator.solvers import Status, get_backend
from allocator.solvers.base import SolveResult


def twins(case: dict[str, Any], copies: int) -> dict[str, Any]:
    """The case with `copies` twins of its first enterprise that has demands and no quote or
    conflict: same district, sector, risk level and demands, so they fall in its classes."""
    quoted = {q["enterprise_id"] for q in case["quotes"]} | {
        c["enterprise_id"] for c in case["conflicts"]}
    with_demand = [d["enterprise_id"] for d in case["demands"]]
    ent = next((e for e in case["enterprises"]
                if e["enterprise_id"] in with_demand and e["enterprise_id"] not in quoted), None)
    if ent is None:
        return case
    own = [d for d in case["demands"] if d["enterprise_id"] == ent["enterprise_id"]][:1]
    ents, dems = list(case["enterprises"]), list(case["demands"])
    for k in range(copies):
        twin = f"{ent['enterprise_id']}T{k + 1}"
        ents.append({**ent, "enterprise_id": twin, "name": f"Twin {twin}"})
        dems += [{**d, "enterprise_id": twin} for d in own]
    return {**case, "enterprises": ents, "demands": dems}


@PROPERTY
@given(tiny_instances(), st.integers(1, 2))
def test_class_path_agrees_with_brute_force_and_check(case, copies):
    """On tiny cities with twins the class path's plan is the brute force's optimum, the
    auditor finds nothing, and the plan judged by the brute force's rules scores the same."""
    case = twins(case, copies)
    with tempfile.TemporaryDirectory() as work:
        path = write_instance(Path(work) / "instance", **case)
        inst = load_instance(path)
        taken = usable_classes(inst, compute_eligibility(inst)) is not None
        out = solve_folder(path, Path(work), check=False)
        assert ("class_model" in out.result.summary) == taken
        findings = run_check(path, out.results_dir)
        assert findings == [], "\n".join(findings)
        if not matches_brute_force(out):
            return
        judged = evaluate(out.instance, out.plan)
        assert judged.ok, (judged.ineligible, judged.broken)
        assert judged.coverage == pytest.approx(out.level("coverage"), abs=1e-6)
        assert judged.quality == pytest.approx(out.level("quality"), rel=1e-9, abs=1e-6)


def test_hypothesis_cities_take_the_class_path_often() -> None:
    """The property above is about the class path: most of its cities must take it, and
    among them cities with each city-wide rule on (the class model holds them too)."""
    seen: list[bool] = []
    rules: dict[str, int] = {"min_district_ratio": 0, "max_share_in_city": 0,
                             "max_districts_per_agency": 0}

    @PROPERTY
    @given(tiny_instances(), st.integers(1, 2))
    def record(case, copies):
        case = twins(case, copies)
        with tempfile.TemporaryDirectory() as work:
            inst = load_instance(write_instance(Path(work) / "instance", **case))
            taken = usable_classes(inst, compute_eligibility(inst)) is not None
            seen.append(taken)
            pol = inst.policy
            on = {"min_district_ratio": pol.min_district_ratio > 0,
                  "max_share_in_city": pol.max_share_in_city is not None,
                  "max_districts_per_agency": pol.max_districts_per_agency is not None}
            for rule, is_on in on.items():
                rules[rule] += int(taken and is_on)

    record()
    assert sum(seen) >= len(seen) // 2, f"{sum(seen)} of {len(seen)} took the class path"
    assert all(n > 0 for n in rules.values()), rules


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("classes") / "city"
    write_generated(generate_instance(200, 8, 2, seed=11), path)
    return path


#: every rule the class model holds beside the district ones: co-payment, the city-wide
#: share cap, districts per agency and minimum district coverage (funding: funded_city)
CITY_RULES = {"copay": {"share_by_risk": {1: 0.3, 2: 0.2}},
              "anti_monopoly": {"max_share_in_city": 0.3, "max_districts_per_agency": 2},
              "coverage": {"min_district_ratio": 0.5}}


@pytest.fixture(scope="module")
def funded_city(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("classes") / "funded"
    write_generated(generate_instance(200, 6, 3, seed=9, funding=True), path)
    return path


def test_class_path_equals_the_full_model_on_a_generated_city(city: Path) -> None:
    """Same level values as the full model (both proven at a gap of 1e-6); the class model
    has fewer columns; the plan's served weight and quality recomputed from its rows."""
    assert_class_equals_full(load_instance(city, overrides={"solver": {"mip_gap": 1e-6}}))


def test_class_path_equals_the_full_model_under_funding_and_city_rules(
        funded_city: Path, tmp_path: Path) -> None:
    """Funding scopes, co-payment and the city-wide rules read only what a class's members
    share: the class model keeps the full model's optimum under all of them at once (served
    weight and quality, each proven at 1e-6; the cost level is left out for time), and the
    CLI's plan passes the auditor."""
    rules = {**CITY_RULES, "solver": {"mip_gap": 1e-6, "levels": ["coverage", "quality"]}}
    inst = load_instance(funded_city, overrides=rules)
    assert inst.funding is not None and len(inst.funding) and inst.policy.has_copay
    assert_class_equals_full(inst)
    folder = tmp_path / "inst"
    shutil.copytree(funded_city, folder)
    policy = yaml.safe_load((folder / "policy.yaml").read_text())
    for key, value in CITY_RULES.items():
        policy[key] = {**policy.get(key, {}), **value}
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["solve", str(folder), "--out", str(out), "--time-limit",
                                    "5"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert "class_model" in summary
    findings = run_check(folder, out)
    assert findings == [], "\n".join(findings)


def assert_class_equals_full(inst) -> None:
    elig = compute_eligibility(inst)
    assert usable_classes(inst, elig) is not None
    backend = get_backend("highs")
    classes = ClassPlan(inst, elig, backend.direct_share_rows)
    full = build_model(inst, elig, direct_share_rows=backend.direct_share_rows)
    assert len(classes.model.x) < len(full.x)
    say = lambda _m: None  # noqa: E731
    by_class = solve_model(inst, elig, classes.model, backend, 120.0, 1, perf_counter(), {}, say,
                           None,
                           classes=classes)
    by_full = solve_model(inst, elig, full, backend, 120.0, 1, perf_counter(), {}, say, None)
    levels = [name for name in ("coverage", "quality", "cost") if name in inst.policy.levels]
    for run in (by_class, by_full):
        status = {lv["name"]: lv["status"] for lv in run.summary["levels"]}
        assert [status[name] for name in levels] == ["optimal"] * len(levels)
    for key in ("coverage", "quality"):
        assert by_class.summary[key] == pytest.approx(by_full.summary[key], rel=1e-6)
    if "cost" in levels:
        assert by_class.summary["cost"] == pytest.approx(by_full.summary["cost"], rel=1e-5)
    a = by_class.assignments
    assert not a.duplicated(["enterprise_id", "service_id"]).any()
    t = elig.triples
    rows = t.merge(a[["enterprise_id", "service_id", "agency_id"]],
                   on=["enterprise_id", "service_id", "agency_id"])
    assert len(rows) == len(a)  # every row is an eligible triple
    w = inst.demands.set_index(["enterprise_id", "service_id"])["weight"]
    served = w.reindex(pd.MultiIndex.from_frame(a[["enterprise_id", "service_id"]])).sum()
    assert served == pytest.approx(by_class.summary["coverage"], abs=1e-6)
    assert by_class.summary["class_model"]["classes"] < by_class.summary["class_model"][
        "demands"]


def test_cli_solve_on_the_class_path_passes_check(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = CliRunner().invoke(main, ["solve", str(city), "--out", str(out), "--time-limit",
                                    "30", "--no-workbook"])
    assert run.exit_code == 0, run.stderr
    assert "classes:" in run.stderr and "exact model over classes" in run.stderr
    assert "classes:" not in run.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["class_model"]["class_columns"] > 0
    check = CliRunner().invoke(main, ["check", str(city), str(out)])
    assert check.exit_code == 0, check.stdout + check.stderr


def _with(path: Path, tmp: Path, name: str, file: str, rows: list[dict[str, Any]]) -> Path:
    import shutil

    from instance_builder import write_table

    dst = tmp / name
    shutil.copytree(path, dst)
    write_table(dst, file, rows)
    return dst


def test_usable_classes_only_where_the_class_model_is_exact(city: Path,
                                                             tmp_path: Path) -> None:
    inst = load_instance(city)
    elig = compute_eligibility(inst)
    assert usable_classes(inst, elig) is not None
    ent, svc = inst.demands[["enterprise_id", "service_id"]].iloc[0]
    a = inst.agencies.index[0]
    for name, file, rows in (("pins", "pins.csv", [pin(ent, a, "forbid", svc)]),
                             ("incumbents", "incumbents.csv", [incumbent(ent, a, 1, svc)])):
        other = load_instance(_with(city, tmp_path, name, file, rows))
        assert usable_classes(other, compute_eligibility(other)) is None, name
    # rules over what a class's members share are held by the class model: it is taken
    for changes in ({"anti_monopoly": {"max_share_in_city": 0.5}},
                    {"anti_monopoly": {"max_districts_per_agency": 2}},
                    {"coverage": {"min_district_ratio": 0.2}},
                    {"copay": {"share_by_risk": {1: 0.3}}}):
        other = load_instance(city, overrides=changes)
        assert usable_classes(other, compute_eligibility(other)) is not None, changes
    # a mandatory demand without an agency: the full model names it (infeasible before solving)
    lvl = int(inst.demands["risk_level"].max())
    other = load_instance(city, overrides={"coverage": {"mandatory_levels": [lvl]},
                                           "quality": {"min_score_by_risk": {lvl: 100}}})
    assert inst.agencies["quality"].max() < 100  # no agency may serve that level
    assert usable_classes(other, compute_eligibility(other)) is None


def test_no_class_model_when_classes_save_nothing(tmp_path: Path) -> None:
    """Every enterprise with a quote of its own: each demand is its own class."""
    ents = [enterprise(f"E{i}", "D1", 2) for i in range(4)]
    dems = [demand(f"E{i}") for i in range(4)]
    quotes = [quote("A1", f"E{i}", 4000 + i, 5) for i in range(4)]
    path = write_instance(tmp_path / "inst", enterprises=ents, demands=dems, quotes=quotes,
                          agencies=[agency("A1"), agency("A2")], bids=[bid("A2")],
                          conflicts=[conflict("A2", "E0")])
    inst = load_instance(path)
    assert usable_classes(inst, compute_eligibility(inst)) is None
    assert "class_model" not in solve_instance(inst).summary


def test_level_upper_is_each_demand_at_its_best_quality(city: Path) -> None:
    inst = load_instance(city)
    elig = compute_eligibility(inst)
    model = build_model(inst, elig)
    t = elig.triples
    q = pd.Series(model.levels[1].coefs[model.x], index=t.index)
    expected = q.groupby([t["enterprise_id"], t["service_id"]]).max().sum()
    assert level_upper(model, model.levels[1]) == pytest.approx(expected, rel=1e-12)
    classes = ClassPlan(inst, elig, True)
    assert level_upper(classes.model, classes.model.levels[1]) == pytest.approx(expected,
                                                                                rel=1e-9)
    assert level_upper(model, Level("neg", -model.levels[1].coefs, "max")) is None
    off_x = np.zeros(model.lp.n_vars)
    off_x[model.served] = 1.0  # served columns: not a sum over assignments
    assert level_upper(model, Level("served", off_x, "max")) is None


class TwoRuns:
    """A backend whose runs are scripted: (seconds used, plan value, bound); records each
    run's objective, time offered, hint and target."""

    accepts_start = True
    steerable = True

    def __init__(self, clock: Clock, script: list[tuple[float, float, float]]):
        self.clock, self.script, self.runs = clock, script, []

    def open(self, lp, threads, seed):
        backend = self

        class Session:
            target = effort = None

            def set_objective(self, coefs, sense):
                self.coefs = coefs

            def add_row(self, *args):
                pass

            def solve(self, time_limit, mip_gap, start):
                k = len(backend.runs)
                used, value, bound = backend.script[min(k, len(backend.script) - 1)]
                backend.runs.append({"coefs": self.coefs, "offered": time_limit,
                                     "start": start, "target": self.target,
                                     "effort": self.effort})
                backend.clock.now += used
                x = np.zeros(lp.n_vars)
                return SolveResult(Status.FEASIBLE, x, value, bound, None, used, "scripted")

        return Session()


def test_plain_share_searches_plainly_then_with_the_tie_break(city: Path,
                                                               monkeypatch) -> None:
    """The first level's plain run gets plain_share of its time; unsettled, the tie-broken
    run follows from its plan with its bound as the target and the better bound is kept."""
    inst = load_instance(city)
    elig = compute_eligibility(inst)
    model = build_model(inst, elig)
    clock = Clock()
    monkeypatch.setattr(lexicographic, "time", clock)
    backend = TwoRuns(clock, [(10.0, 0.0, 50.0), (30.0, 0.0, 60.0), (5.0, 0.0, None)])
    lex = solve_lexicographic(model, backend, 60.0, 1e-4, 1, 0, levels=("coverage",),
                              tie_break=True, effort=0.3, plain_share=0.3)
    plain, tied = backend.runs[:2]
    assert np.array_equal(plain["coefs"], model.levels[0].coefs)
    assert plain["offered"] == pytest.approx(0.3 * 60.0) and plain["effort"] is None
    assert not np.array_equal(tied["coefs"], model.levels[0].coefs)  # quality added
    assert tied["offered"] == pytest.approx(60.0 - 10.0)
    assert tied["effort"] == 0.3 and tied["target"] is not None  # the plain run's bound
    assert tied["start"] is not None
    assert lex.levels[0].bound == pytest.approx(50.0)  # the better of 50 and floor(60)
    assert lex.levels[0].seconds == pytest.approx(40.0)


def test_plain_share_stops_when_the_plain_run_settles_the_level(city: Path,
                                                                monkeypatch) -> None:
    inst = load_instance(city)
    model = build_model(inst, compute_eligibility(inst))
    clock = Clock()
    monkeypatch.setattr(lexicographic, "time", clock)
    backend = TwoRuns(clock, [(4.0, 0.0, 0.0)])
    lex = solve_lexicographic(model, backend, 60.0, 1e-4, 1, 0, levels=("coverage",),
                              tie_break=True, plain_share=0.3)
    assert len(backend.runs) == 1
    assert lex.levels[0].status is Status.OPTIMAL


def test_a_start_maps_to_class_counts_and_sweeps_use_the_class_model(city: Path) -> None:
    """A plan given as assignment rows becomes the class model's counts (feasible, the same
    served weight), so a warm start and a sweep's chain go through the class model too: a
    parametric solve over classes at a budget equals solve_instance there."""
    from allocator.pipeline.class_path import start_point
    from allocator.pipeline.solve import ParametricSolve

    inst = load_instance(city)
    elig = compute_eligibility(inst)
    backend = get_backend("highs")
    plan = solve_instance(inst, time_limit=30.0, elig=elig)
    assert "class_model" in plan.summary
    classes = ClassPlan(inst, elig, backend.direct_share_rows)
    start = plan.assignments[["enterprise_id", "service_id", "agency_id"]]
    cols, counts = classes.columns_of(start)
    assert counts.sum() == len(start)
    point = start_point(classes.model, start, classes)
    assert point is not None
    served = float(classes.model.levels[0].coefs @ point)
    assert served == pytest.approx(plan.summary["coverage"], abs=1e-6)
    # the counts hand back a plan serving the same demands' weight
    handed = classes.chosen(point)
    assert len(handed) == len(start)
    para = ParametricSolve(inst, elig, backend, 1)
    assert para.classes is not None
    for budget in (0.6 * inst.policy.budget_total, inst.policy.budget_total):
        at = inst.with_policy(dataclasses.replace(inst.policy, budget_total=budget))
        one = solve_instance(at, time_limit=30.0, elig=elig).summary
        swept = para.solve(at, time_limit=30.0, start=start if budget > 0.7 * inst.policy.
                           budget_total else None).summary
        assert "class_model" in swept
        assert swept["status"] == one["status"] == "optimal"
        assert swept["coverage"] == pytest.approx(one["coverage"], abs=1e-6)
        assert swept["quality"] == pytest.approx(one["quality"], rel=2e-4)
