"""The class LP's share caps, the tie-break and targets of the lexicographic solve, and the
bounds the large path reports after its class model (issue 21's 5,000 and 10,000 cities)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from instance_builder import solve_result

from allocator.data.generate import generate_instance, write_instance
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.model.build import build_class_model
from allocator.model.linear import LinearModel
from allocator.pipeline.large_scale import classes as lsc
from allocator.pipeline.large_scale import levels as ls
from allocator.pipeline.large_scale.class_lp import ClassLp
from allocator.pipeline.lexicographic import (
    level_target,
    level_upper,
    solve_lexicographic,
    tie_break_weight,
)
from allocator.solvers import Status, get_backend
from allocator.solvers.highs import HighsSession

NO_MIN = {"anti_monopoly": {"min_agencies_per_district": 0}}


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """A small generated city (share caps at 0.4, classes of several demands)."""
    path = tmp_path_factory.mktemp("bounds") / "city"
    write_instance(generate_instance(150, 8, 2, seed=5), path)
    return path


def class_model(inst):
    elig = compute_eligibility(inst)
    arr = lsc.Arrays.of(inst, elig.triples)
    classes = lsc.Classes.of(inst, elig.triples)
    rep = np.zeros(len(arr.weight), dtype=bool)
    rep[classes.rep] = True
    rows = np.flatnonzero(rep[arr.demand])
    g = classes.of_demand[arr.demand[rows]]
    model = build_class_model(inst, elig.triples.iloc[rows], classes.size[g])
    return elig, arr, classes, g, model


def lp_value(model, coefs) -> float:
    s = HighsSession(model.lp, 1, 0)
    s.set_objective(coefs, "max")
    relax = s.relaxation(60.0)
    assert relax is not None
    return relax[0]


def test_class_lp_holds_the_share_caps(city: Path) -> None:
    """Without minimum agencies (which the class LP leaves out), the class LP's coverage and
    quality are the exact class model's LP relaxation: the share caps are in; left out they
    would serve more here."""
    for overrides, capped in ((NO_MIN, True),
                              ({"anti_monopoly": {"min_agencies_per_district": 0,
                                                  "max_share_in_district": None}}, False)):
        inst = load_instance(city, overrides=overrides)
        _elig, arr, classes, _g, model = class_model(inst)
        lpm = ClassLp(inst, arr, classes)
        assert (lpm.share is not None) is capped
        cov = lpm.solve(lpm.wg[lpm.g], 60.0, lambda _m: None, "coverage")
        assert cov.status is Status.OPTIMAL
        assert cov.bound == pytest.approx(cov.value, rel=1e-7)
        assert cov.value == pytest.approx(lp_value(model, model.levels[0].coefs), rel=1e-7)
        if capped:
            capped_value = cov.value
        else:
            assert cov.value > capped_value + 1e-6  # the caps bind in this city
    inst = load_instance(city, overrides=NO_MIN)
    _elig, arr, classes, _g, model = class_model(inst)
    lpm = ClassLp(inst, arr, classes)
    lpm.solve(lpm.wg[lpm.g], 60.0, lambda _m: None, "coverage")
    quality = compute_eligibility(inst).triples["quality"].to_numpy(dtype=float)
    q = lpm.solve(lpm.wg[lpm.g] * quality[lpm.ct], 60.0, lambda _m: None, "quality")
    assert q.value == pytest.approx(lp_value(model, model.levels[1].coefs), rel=1e-7)
    assert q.bound >= q.value - 1e-6


def test_tie_break_weight_keeps_the_first_level_first(city: Path) -> None:
    inst = load_instance(city)
    _elig, _arr, classes, g, model = class_model(inst)
    cov, qual, cost = model.levels[:3]
    upper = level_upper(model, model.levels[1])
    w = tie_break_weight(model, cov, qual, upper)
    assert 0 < w * upper < 1.0  # the whole quality range is worth less than one unit served
    assert tie_break_weight(model, cov, cost, 1e6) == 0.0  # cost is minimised
    assert tie_break_weight(model, cov, qual, None) == 0.0


def test_level_target_is_on_the_grid(city: Path) -> None:
    inst = load_instance(city)
    _elig, _arr, _classes, _g, model = class_model(inst)
    cov = model.levels[0]  # integer weights: a grid of 1
    assert level_target(model, cov, 1000.7, 1e-3) == 999.0  # floor(1000.7) - 1.0, on grid
    assert level_target(model, cov, None, 1e-3) is None


def test_tie_break_and_target_on_the_class_model(city: Path) -> None:
    """The coverage level searched with quality as a tie-break reaches the same served weight
    as the exact model, with the quality of the lexicographic optimum (up to the tie-break's
    gap); a known bound stops it and is reported as its bound."""
    inst = load_instance(city, overrides={"solver": {"mip_gap": 1e-6}})
    _elig, _arr, classes, g, model = class_model(inst)
    full = solve_result(inst, time_limit=120.0).summary
    assert full["status"] == "optimal"
    backend = get_backend("highs")
    lex = solve_lexicographic(model, backend, 60.0, 1e-6, 1, 0, levels=("coverage",),
                              tie_break=True)
    served = lex.levels[0]
    assert served.value == pytest.approx(full["coverage"], abs=1e-6)
    assert served.bound >= served.value and served.bound < served.value + 1.0
    quality = float(model.levels[1].coefs @ lex.x)
    assert quality == pytest.approx(full["quality"], rel=2e-3)
    known = solve_lexicographic(model, backend, 60.0, 1e-4, 1, 0, levels=("coverage",),
                                known_bounds={"coverage": full["coverage"] + 0.5})
    assert known.levels[0].status is Status.OPTIMAL
    assert known.levels[0].bound <= full["coverage"] + 0.5


def test_highs_target_stops_the_mip() -> None:
    """A knapsack whose optimum is 1,003: a target of 900 stops HiGHS at a plan of at least
    900 and the run says so; no target runs to the optimum."""
    rng = np.random.default_rng(0)
    n = 60
    w, v = rng.integers(5, 50, n).astype(float), rng.integers(5, 50, n).astype(float)
    lp = LinearModel()
    x = lp.add_variables("x", pd.DataFrame({"j": range(n)}))
    lp.add_constraints("knapsack", pd.DataFrame({"k": [0]}),
                       np.zeros(n, dtype=np.int64), x, w, -np.inf, w.sum() / 3)
    s = HighsSession(lp, 1, 0, lp_guided=False)
    s.set_objective(v, "max")
    best = s.run(30.0, 0.0, None)
    assert best.status is Status.OPTIMAL
    s.target = 0.9 * best.objective
    res = s.run(30.0, 0.0, None)
    assert res.objective >= s.target and "Target" in res.solver_status
    assert s.payload()["target"] == s.target
    s.target = None
    assert s.run(30.0, 0.0, None).objective == best.objective


def test_large_path_bounds_hold_the_exact_optimum(city: Path) -> None:
    """The bounds the large path reports after its class model (coverage on its grid, quality
    and cost re-priced at the new plan) hold the exact lexicographic optimum."""
    inst = load_instance(city, overrides={"solver": {"mip_gap": 1e-6}})
    elig = compute_eligibility(inst)
    large = ls.solve_large(inst, elig, 60.0, 1e-4, backend=get_backend("highs"))
    exact = solve_result(inst, time_limit=120.0).summary
    assert exact["status"] == "optimal"
    got = {r.name: r for r in large.lex.levels}
    assert got["coverage"].bound == float(np.floor(got["coverage"].bound))
    assert got["coverage"].bound >= exact["coverage"] - 1e-6
    if got["coverage"].value == pytest.approx(exact["coverage"]):
        assert got["quality"].bound >= exact["quality"] * (1 - 1e-9)
        if got["quality"].value == pytest.approx(exact["quality"], rel=1e-9):
            assert got["cost"].bound <= exact["cost"] * (1 + 1e-9)


def test_coverage_hold_is_the_least_plan_within_the_gap_on_the_grid() -> None:
    """The hold the later levels keep: on a grid of whole weights the least whole served
    weight within the gap of the bound (10,000 enterprises: bound 24,145.48, plan 24,144 ->
    24,143), never above the plan's own; off the grid bound / (1 + gap); no bound: the plan."""
    from allocator.pipeline.large_scale.polish import coverage_hold
    from allocator.solvers.base import relative_gap

    whole = np.array([1.0, 2.0, 5.0])
    hold = coverage_hold(24_144.0, 24_145.48, whole, 1e-4)
    assert hold == 24_143.0
    assert relative_gap(hold, 24_145.0) <= 1e-4 < relative_gap(hold - 1, 24_145.0)
    assert coverage_hold(24_142.0, 24_145.48, whole, 1e-4) == 24_142.0  # the plan's own
    assert coverage_hold(100.0, None, whole, 1e-4) == 100.0
    cents = np.array([0.5, 1.25, 1.7])  # a grid of 0.01
    assert coverage_hold(1e6, 1000.0, cents, 1e-4) == pytest.approx(999.91)
    thirds = np.array([0.5, 1 / 3])  # no grid
    assert coverage_hold(1e6, 1000.0, thirds, 1e-4) == pytest.approx(1000.0 / 1.0001)
