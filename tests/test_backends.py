"""Solver backends: one model, many solvers, honest statuses.

Every available backend must reach the same three level values as the independent PuLP
baseline (benchmarks/baseline.py) on small instances; a tiny time limit on a large instance
must end `feasible` with a real gap or `no_solution`, never `optimal`; unknown solver names
are usage errors. Statuses are checked against what each solver itself reports.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from instance_builder import solve_result

from allocator.cli import main
from allocator.data.generate import generate_instance, write_instance
from allocator.data.validation import load_instance
from allocator.model.linear import INF, LinearModel
from allocator.pipeline.lexicographic import round_plan
from allocator.solvers import AUTO_ORDER, REGISTRY, Status, UnknownSolver, cbc, get_backend
from allocator.solvers.cbc import classify
from allocator.solvers.cpsat_scaling import ScalingError, scale_model, scale_vector
from benchmarks.baseline import solve_baseline

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"
BACKENDS = [name for name in sorted(REGISTRY) if REGISTRY[name].available()]
#: small generated instances (enterprises, agencies, districts, seed) that solve in ~1 s
SMALL = [(20, 6, 2, 1), (25, 8, 2, 7)]
#: the policy's mip_gap (1e-4) at every level; two threads so the parallel code paths run
POLICY = {"solver": {"threads": 2, "seed": 0}}


def _generate(tmp: Path, n: int, m: int, d: int, seed: int) -> Path:
    out = tmp / f"gen_{n}_{m}_{d}_{seed}"
    if not out.exists():
        write_instance(generate_instance(n, m, d, seed), out)
    return out


@pytest.fixture(scope="module")
def small_instances(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("small")
    found = {f"gen{n}_s{seed}": _generate(tmp, n, m, d, seed) for n, m, d, seed in SMALL}
    if (TINY / "policy.yaml").exists():
        found["tiny"] = TINY
    return found


@pytest.fixture(scope="module")
def references(small_instances) -> dict[str, dict]:
    """The baseline's level values per instance, solved to optimality once."""
    return {k: solve_baseline(p, time_limit=120, mip_gap=1e-4) for k, p in small_instances.items()}


@pytest.fixture(scope="module")
def large_instance(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("large"), 2500, 72, 8, 3)


# ------------------------------------------------------------------------------------------
# registry and command line
# ------------------------------------------------------------------------------------------


def test_registry_holds_every_backend_and_auto_order_is_valid():
    assert {"highs", "cbc", "cpsat"} <= set(REGISTRY)
    assert set(AUTO_ORDER) <= set(REGISTRY)
    for name, backend in REGISTRY.items():
        assert backend.name == name
        if backend.available():
            assert backend.version()
    first = next(n for n in AUTO_ORDER if REGISTRY[n].available())
    assert get_backend("auto").name == first


def test_unknown_solver_is_a_usage_error_listing_valid_names(tmp_path):
    with pytest.raises(UnknownSolver) as err:
        get_backend("gurobi")
    for name in ("auto", "cbc", "cpsat", "highs"):
        assert name in str(err.value)
    res = CliRunner().invoke(main, ["solve", str(TINY), "--out", str(tmp_path / "r"),
                                    "--solver", "gurobi"])
    assert res.exit_code == 2
    for name in ("auto", "cbc", "cpsat", "highs"):
        assert name in res.output
    assert not (tmp_path / "r").exists()


def test_solvers_command_lists_availability_and_version():
    res = CliRunner().invoke(main, ["solvers"])
    assert res.exit_code == 0
    lines = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    for name, backend in REGISTRY.items():
        assert name in lines
        if backend.available():
            assert "available" in lines[name] and backend.version() in lines[name]
        else:
            assert "missing" in lines[name]
    assert "(auto)" in lines[get_backend("auto").name]


# ------------------------------------------------------------------------------------------
# status mapping and exact scaling, on hand-made models
# ------------------------------------------------------------------------------------------


def _knapsack(extra_row: tuple | None = None, one_sided: bool = False,
              spend: tuple[float, float] = (0.0, 0.0)) -> LinearModel:
    """max 5a + 4b + 3c, 2a + 3b + c <= 4 (optimum a, c: 8), plus spend = 12.34a + 0.01b
    (or, one_sided, spend <= 12.34a + 0.01b with a share-like row 5a <= 0.5 spend); spend
    gives the bounds of 12.34a + 0.01b - spend otherwise."""
    lp = LinearModel()
    lp.add_variables("x", pd.DataFrame({"k": ["a", "b", "c"]}), 0, 1, True)
    lp.add_variables("spend", pd.DataFrame({"k": ["s"]}), 0.0, INF, integer=False)
    lp.add_constraints("cap", pd.DataFrame({"k": ["cap"]}), np.zeros(3), np.arange(3),
                       np.array([2.0, 3.0, 1.0]), -INF, 4.0)
    lp.add_constraints("spend_def", pd.DataFrame({"k": ["s"]}), np.zeros(3),
                       np.array([0, 1, 3]), np.array([12.34, 0.01, -1.0]),
                       *((0.0, INF) if one_sided else spend))
    if one_sided:
        lp.add_constraints("share", pd.DataFrame({"k": ["a"]}), np.zeros(2), np.array([0, 3]),
                           np.array([5.0, -0.5]), -INF, 0.0)
    if extra_row is not None:
        cols, vals, lo, hi = extra_row
        lp.add_constraints("extra", pd.DataFrame({"k": ["e"]}), np.zeros(len(cols)),
                           np.asarray(cols), np.asarray(vals, dtype=float), lo, hi)
    return lp


OBJ = np.array([5.0, 4.0, 3.0, 0.0])


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_optimum_bound_and_start(name):
    session = get_backend(name).open(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    res = session.solve(10, 1e-6, None)
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(8.0)
    assert res.bound == pytest.approx(8.0)
    assert res.gap == pytest.approx(0.0, abs=1e-9)
    assert np.round(res.x[:3]).tolist() == [1, 0, 1]
    assert res.x[3] == pytest.approx(12.34)  # continuous spend column, back in currency
    # hold the optimum, minimise spend from the previous plan as a start
    session.add_row("hold", np.arange(3), OBJ[:3], 8.0 - 1e-6, np.inf)
    session.set_objective(np.array([0, 0, 0, 1.0]), "min")
    res2 = session.solve(10, 1e-6, res.x)
    assert res2.status is Status.OPTIMAL
    assert res2.objective == pytest.approx(12.34)
    if name == "cbc":  # CBC says whether it took the start
        assert "MIPStart provided solution" in session.last_log


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_reports_infeasible(name):
    lp = _knapsack(extra_row=(np.arange(3), [1.0, 1.0, 1.0], 3.0, INF))  # all three: 6 > 4
    session = get_backend(name).open(lp, 1, 0)
    session.set_objective(OBJ, "max")
    res = session.solve(10, 1e-6, None)
    assert res.status is Status.INFEASIBLE
    assert res.x is None and res.objective is None


def test_cbc_words_map_to_honest_statuses():
    assert classify("Optimal solution found", "Optimal - objective value 8", True) \
        is Status.OPTIMAL
    assert classify("Stopped on time limit", "Stopped on time - objective value 8", True) \
        is Status.FEASIBLE
    assert classify("Stopped on time limit", "Stopped on time - objective value 0", False) \
        is Status.NO_SOLUTION
    assert classify("Problem proven infeasible", "Infeasible - objective value 0", False) \
        is Status.INFEASIBLE
    # what PuLP would call 'Optimal' without a finished search is never optimal here
    assert classify("", "Optimal - objective value 8", True) is Status.FEASIBLE
    assert classify("Something new", "", False) is Status.ERROR


def test_cbc_is_stopped_when_it_overruns_the_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(cbc, "GRACE_INT", (0.2, 0.0))
    monkeypatch.setattr(cbc, "GRACE_KILL", (0.5, 0.0))
    t0 = time.perf_counter()
    stubborn = [sys.executable, "-c", "import signal, time; "
                "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"]
    code, _log, stopped = cbc.run_with_deadline(stubborn, tmp_path / "a.log", t0 + 0.1)
    assert stopped == "killed" and code != 0
    polite = [sys.executable, "-c", "import time; time.sleep(600)"]  # dies on SIGINT
    _code, _log, stopped = cbc.run_with_deadline(polite, tmp_path / "b.log",
                                                 time.perf_counter() + 0.1)
    assert stopped == "interrupted"
    # far below the 600 s the processes would sleep, far above a loaded machine's delays
    assert time.perf_counter() - t0 < 120


def test_cpsat_scaling_is_exact_and_refuses_what_it_cannot_represent():
    sm = scale_model(_knapsack())
    assert sm.col_scale.tolist() == [1.0, 1.0, 1.0, 100.0]  # spend in cents
    assert sm.ub[3] == 1235  # 12.34 + 0.01 in cents: the bound implied by its definition
    dense = sm.matrix.toarray()
    assert dense[1].tolist() == [1234, 1, 0, -1]
    assert sm.row_hi[0] == 4
    ints, factor = scale_vector(np.array([0.5, 0.25, 0, 0.0]), sm.col_scale)
    assert factor == 100 and ints.tolist() == [50, 25, 0, 0]
    with pytest.raises(ScalingError):
        scale_model(_knapsack(extra_row=(np.arange(2), [1 / 3, 1.0], -INF, 1.0)))


def test_cpsat_scales_a_one_sided_continuous_column_by_pushing_it():
    sm = scale_model(_knapsack(one_sided=True))
    assert sm.col_scale[3] == 100 and sm.push[3] == 1  # raised to its limit: cents
    assert sm.ub[3] == 1235 and sm.lb[3] == 0
    # spend >= 12.34a + 0.01b instead, nothing else limits it from below: pushed down
    down = scale_model(_knapsack(spend=(-INF, 0.0)))
    assert down.push[3] == -1 and down.col_scale[3] == 100
    assert down.lb[3] == 0 and down.ub[3] == 1235
    with pytest.raises(ScalingError):  # limited above by a row no power of ten makes exact
        scale_model(_knapsack(extra_row=(np.array([0, 3]), [1 / 3, 1.0], -INF, 5.0),
                              one_sided=True))


@pytest.mark.parametrize("name", BACKENDS)
def test_backends_on_a_one_sided_continuous_column(name):
    session = get_backend(name).open(_knapsack(one_sided=True), 1, 0)
    session.set_objective(OBJ, "max")
    res = session.solve(10, 1e-6, None)
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(8.0)
    assert 10.0 - 1e-6 <= res.x[3] <= 12.34 + 1e-6  # 5a <= 0.5 spend <= 0.5 * 12.34


@pytest.mark.skipif("cpsat" not in BACKENDS, reason="CP-SAT not available")
def test_cpsat_unscalable_model_is_an_error_status_not_a_guess():
    lp = _knapsack(extra_row=(np.arange(2), [1 / 3, 1.0], -INF, 1.0))
    session = get_backend("cpsat").open(lp, 1, 0)
    session.set_objective(OBJ, "max")
    res = session.solve(5, 1e-6, None)
    assert res.status is Status.ERROR
    assert "decimals" in res.solver_status


# ------------------------------------------------------------------------------------------
# every backend reaches the reference optimum
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_backends_reach_the_baseline_optimum(name, small_instances, references):
    for key, path in small_instances.items():
        ref = references[key]
        assert ref["status"] == "optimal", key
        inst = load_instance(path, overrides=POLICY)
        gap = inst.policy.mip_gap
        run = solve_result(inst, solver=name, time_limit=60)
        s = run.summary
        assert s["status"] == "optimal", (key, s["levels"])
        assert s["solver"] == name and s["seed"] == 0
        assert all(lv["status"] == "optimal" for lv in s["levels"]), key
        assert s["coverage"] == pytest.approx(ref["coverage"], abs=1e-6), key
        assert s["quality"] == pytest.approx(ref["quality"], rel=2e-4), key
        # the cost level is compared within the gap when the quality held is the same; a
        # quality that differs within its own gap moves the cost optimum a little, too
        same = abs(s["quality"] - ref["quality"]) <= 1e-6 * max(1.0, ref["quality"])
        assert s["cost"] == pytest.approx(ref["cost"], rel=gap if same else 1e-3), key


@pytest.mark.parametrize("name", [n for n in ("highs", "cbc") if n in BACKENDS])
def test_same_input_and_seed_give_the_same_plan(name, small_instances):
    path = small_instances[sorted(small_instances)[0]]
    plans = []
    for _ in range(2):
        inst = load_instance(path, overrides=POLICY)
        run = solve_result(inst, solver=name, time_limit=60)
        plans.append(run.assignments[["enterprise_id", "service_id", "agency_id"]]
                     .sort_values(["enterprise_id", "service_id"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(plans[0], plans[1])


# ------------------------------------------------------------------------------------------
# a time limit too short for a large instance ends honestly
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_one_second_on_2500_enterprises_is_never_optimal(name, large_instance):
    inst = load_instance(large_instance)
    run = solve_result(inst, solver=name, time_limit=1)
    s = run.summary
    assert s["status"] in ("feasible", "no_solution"), s["levels"]
    if s["status"] == "feasible":
        assert s["gap"] is None or s["gap"] > 0
        assert not all(lv["status"] == "optimal" for lv in s["levels"])
    else:
        assert s["coverage"] is None and run.assignments.empty
    first = s["levels"][0]
    assert first["status"] != "optimal" or first["gap"] <= inst.policy.mip_gap


# ------------------------------------------------------------------------------------------
# HiGHS: the killable child process and the start kept in the sub-MIP neighbourhood
# ------------------------------------------------------------------------------------------


def _coverage_start(path: Path, time_limit: float):
    """An instance's model and a coverage-level plan (a start for the quality level)."""
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model
    from allocator.solvers.highs import HighsSession

    inst = load_instance(path, overrides=POLICY)
    model = build_model(inst, compute_eligibility(inst))
    session = HighsSession(model.lp, 2, 0)
    cov = model.levels[0]
    session.set_objective(cov.coefs, cov.sense)
    first = session.solve(time_limit, 1e-3, None)
    assert first.status.has_solution, first.solver_status  # any plan will do as a start
    return model, round_plan(model, first.x)


@pytest.fixture(scope="module")
def quality_start(large_instance):
    """The large instance's model and a level-1 optimal plan (a start for the quality level)."""
    return _coverage_start(large_instance, 120)


def _session_at_quality(model):
    from allocator.solvers.highs import HighsSession

    session = HighsSession(model.lp, 2, 0)
    quality = model.levels[1]
    session.set_objective(quality.coefs, quality.sense)
    return session


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_child_process_gives_the_in_process_answer(small_instances, monkeypatch):
    from allocator.solvers import highs_child

    path = small_instances[sorted(small_instances)[0]]
    inst = load_instance(path, overrides=POLICY)
    direct = solve_result(inst, solver="highs", time_limit=60).summary
    monkeypatch.setattr(highs_child, "GUARD_MIN_COLUMNS", 0)  # every MIP goes to a child
    guarded = solve_result(inst, solver="highs", time_limit=60).summary
    assert guarded["status"] == direct["status"] == "optimal"
    for key in ("coverage", "quality", "cost"):
        assert guarded[key] == pytest.approx(direct[key], rel=2e-4), key


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_child_killed_at_the_deadline_keeps_its_last_plan(quality_start):
    from allocator.solvers.highs_child import run_guarded

    model, plan = quality_start
    session = _session_at_quality(model)
    value = float(model.levels[1].coefs @ plan)
    # the child may run 10 minutes, the caller's deadline is 8 s: the child is killed
    t0 = time.perf_counter()
    res = run_guarded(session, 8.0, 1e-9, plan, child_limit=600)
    assert time.perf_counter() - t0 < 300  # killed long before its own 600 s (loaded machine)
    assert res.status is Status.FEASIBLE and res.x is not None, res.solver_status
    # its last improving plan, or the start when the child found none in time (loaded machine)
    assert "kept" in res.solver_status
    x = round_plan(model, res.x)
    assert model.lp.violations(x).empty
    assert float(model.levels[1].coefs @ x) >= value - 1e-6


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_level_solve_never_ends_below_its_start(quality_start):
    model, plan = quality_start
    session = _session_at_quality(model)
    value = float(model.levels[1].coefs @ plan)
    t0 = time.perf_counter()
    res = session.solve(8.0, 1e-4, plan)
    assert time.perf_counter() - t0 < 120  # the interrupt callback holds the deadline
    assert res.status.has_solution, res.solver_status
    assert model.lp.violations(round_plan(model, res.x)).empty
    assert res.objective >= value - 1e-6


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_rins_fixes_the_columns_where_the_lp_and_the_start_agree():
    """max 5a + 4b + 3c, 2a + 3b + c <= 4 (optimum a, c: 8). From the start b, c (7): with an
    LP point agreeing on b the neighbourhood keeps b and cannot do better than 7; agreeing
    on c alone, a is free and the optimum 8 is found; agreeing everywhere, nothing to do."""
    from allocator.solvers.highs import HighsSession

    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    start = np.array([0.0, 1.0, 1.0, 0.01])
    t0 = time.perf_counter()
    held_b = session.rins(np.array([0.5, 1.0, 0.5, 0.0]), start, 1.0, 10.0, t0, 1e-6)
    assert held_b.objective == pytest.approx(7.0) and held_b.x[1] == pytest.approx(1.0)
    held_c = session.rins(np.array([1.0, 1 / 3, 1.0, 12.34]), start, 1.0, 10.0, t0, 1e-6)
    assert held_c.objective == pytest.approx(8.0)
    assert np.round(held_c.x[:3]).tolist() == [1, 0, 1]
    assert session.rins(start, start, 1.0, 10.0, t0, 1e-6) is None
    assert session.h.getLp().col_upper_[1] == 1.0  # the model's own bounds are back


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_rins_only_at_a_held_level(monkeypatch):
    """RINS runs where a hold row was added to the model and a start is given (a later
    level) on a model of GUARD_MIN_COLUMNS or more; a first level, with or without a
    start, goes straight to the sub-MIP, and so does a smaller model."""
    from allocator.solvers import highs_child
    from allocator.solvers.highs import HighsSession

    calls, started = [], []
    real = HighsSession.rins
    real_await = highs_child.await_child
    monkeypatch.setattr(highs_child, "await_child",
                        lambda *a, **k: started.append(1) or real_await(*a, **k))

    def rins(self, *args):
        before = len(started)
        out = real(self, *args)
        calls.append((self.row_count(), len(started) - before))  # rows, children started
        return out

    monkeypatch.setattr(HighsSession, "rins", rins)
    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    start = np.array([0.0, 1.0, 1.0, 0.01])
    assert session.solve(10.0, 1e-6, start).objective == pytest.approx(8.0)
    assert session.solve(10.0, 1e-6, None).objective == pytest.approx(8.0)
    assert calls == []
    session.add_row("hold_x", np.array([2]), np.array([1.0]), 1.0, np.inf)  # c held at 1
    assert session.solve(10.0, 1e-6, start).objective == pytest.approx(8.0)
    assert calls == []  # a small model
    monkeypatch.setattr(highs_child, "GUARD_MIN_COLUMNS", 3)
    assert session.solve(10.0, 1e-6, start).objective == pytest.approx(8.0)
    # once, after the hold row, in a child killed at the deadline
    assert calls == [(session.model_rows + 1, 1)]


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_rounds_bounds_to_the_objectives_decimal_grid():
    """Costs in tenths on integer columns: every plan's objective is a multiple of 0.1, so a
    bound rounds to that grid (towards the plans); costs off every 10**-p grid leave it as is."""
    from allocator.solvers.highs import HighsSession

    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(np.array([0.5, 0.4, 0.3, 0.0]), "max")
    assert session.objective_grid() == pytest.approx(0.1)
    assert session.integral_bound(0.87) == pytest.approx(0.8)
    assert session.integral_bound(0.8000000001) == pytest.approx(0.8)
    session.set_objective(np.array([0.5, 0.4, 0.3, 0.0]), "min")
    assert session.integral_bound(0.71) == pytest.approx(0.8)
    session.set_objective(np.array([5.0, 4.0, 3.0, 0.0]), "max")
    assert session.objective_grid() == pytest.approx(1.0)
    assert session.integral_bound(8.5) == pytest.approx(8.0)
    session.set_objective(np.array([1 / 3, 4.0, 3.0, 0.0]), "max")  # no decimal grid
    assert session.objective_grid() is None
    assert session.integral_bound(8.5) == pytest.approx(8.5)
    session.set_objective(np.array([0.5, 0.4, 0.3, 0.01]), "max")  # cost on a continuous column
    assert session.objective_grid() is None
    res = session.solve(10, 1e-6, None)  # the solve's bound stays on the right side of the plan
    assert res.status is Status.OPTIMAL and res.bound >= res.objective - 1e-9


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_parallel_search_only_for_mips_with_two_or_more_threads():
    from allocator.solvers.highs_core import parallel_option

    assert parallel_option(2, mip=True) == "on"
    assert parallel_option(1, mip=True) == "choose"
    assert parallel_option(0, mip=True) == "choose"  # 0 = HiGHS picks: one on two cores
    assert parallel_option(4, mip=False) == "choose"  # LPs keep HiGHS's serial choice


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_full_mip_branches_on_pseudocosts_and_sub_mips_keep_the_default(monkeypatch):
    from allocator.solvers import highs_core

    assert highs_core.PSCOST_MIN_RELIABLE_FULL == 0  # gapc-6 and gapd-5 depend on it
    monkeypatch.setattr(highs_core, "PSCOST_MIN_RELIABLE_FULL", 3)  # a value that is no default
    session = REGISTRY["highs"].open(_knapsack(), threads=1, seed=0)
    session.set_objective(OBJ, "max")
    runs, run = [], session.run

    def spy(time_limit, mip_gap, start, full=False):
        res = run(time_limit, mip_gap, start, full)
        _, reliable = session.h.getOptionValue("mip_pscost_minreliable")  # (status, value)
        runs.append((session.mip_active, full, reliable))
        return res

    session.run = spy
    res = session.solve(10, 1e-6, None)  # LP bound 9 1/3 > 8: the full MIP has to run
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(8.0)
    # the LP, the sub-MIP around its support, then the full MIP
    assert runs == [(False, False, 8), (True, False, 8), (True, True, 3)]


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_parallel_and_serial_search_reach_the_same_optimum(small_instances):
    path = small_instances[sorted(small_instances)[0]]
    values = {}
    for threads in (1, 2):
        policy = {**POLICY, "solver": {**POLICY.get("solver", {}), "threads": threads}}
        run = solve_result(load_instance(path, overrides=policy), solver="highs",
                             time_limit=60)
        assert run.summary["status"] == "optimal", threads
        values[threads] = [run.summary[k] for k in ("coverage", "quality", "cost")]
    assert values[2] == pytest.approx(values[1], rel=2e-4)


# ------------------------------------------------------------------------------------------
# HiGHS: the neighbourhood search by district on a held level
# ------------------------------------------------------------------------------------------


def test_every_column_is_tagged_with_its_district(small_instances):
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model

    inst = load_instance(small_instances[sorted(small_instances)[0]])
    model = build_model(inst, compute_eligibility(inst))
    groups = model.lp.column_groups
    assert groups is not None and len(groups) == model.lp.n_vars
    names = pd.factorize(model.triples["district_id"])[1]
    assert list(names[groups[model.x]]) == list(model.triples["district_id"])
    assert list(names[groups[model.served]]) == list(model.demands_served["district_id"])
    if model.active is not None:
        cols = model.active["col"].to_numpy()
        assert list(names[groups[cols]]) == list(model.active["district_id"])
    assert len(np.unique(groups[groups >= 0])) == model.triples["district_id"].nunique()
    # columns added after the build (diagnose's slacks) join no group; lengths stay equal
    model.lp.add_variables("slack", pd.DataFrame({"row": [1, 2]}), 0.0, INF, integer=False)
    assert len(model.lp.column_groups) == model.lp.n_vars
    assert list(model.lp.column_groups[-2:]) == [-1, -1]


def _held_quality_session(model, plan):
    """A session at the quality level with coverage held at the plan's value, as the
    lexicographic solve leaves it."""
    session = _session_at_quality(model)
    cov = model.levels[0]
    nz = np.flatnonzero(cov.coefs)
    value = float(cov.coefs @ plan)
    session.add_row("hold_coverage", nz, cov.coefs[nz], value - 1e-6 * value, INF)
    return session


@pytest.fixture(scope="module")
def district_start(tmp_path_factory):
    """A 300-enterprise, 4-district model and a coverage plan (a start for quality)."""
    return _coverage_start(_generate(tmp_path_factory.mktemp("districts"), 300, 12, 4, 3), 5)


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
@pytest.mark.parametrize("where", ["in_process", "child"])
def test_district_search_improves_the_coverage_plan_and_keeps_every_rule(district_start,
                                                                          monkeypatch, where):
    """From the coverage plan the quality level has room to improve (the LP is far above
    it): the search finds a better plan, never a worse one, and every row holds, whether
    it runs here or in the killable child process."""
    from allocator.solvers import highs_child
    from allocator.solvers.highs_search import district_search

    model, plan = district_start
    monkeypatch.setattr(highs_child, "GUARD_MIN_COLUMNS", 10**9 if where == "in_process" else 0)
    session = _held_quality_session(model, plan)
    value = float(model.levels[1].coefs @ plan)
    upper, x_lp, dual = session.relaxation(60)
    assert upper > value * (1 + 1e-3)  # room to improve
    t0 = time.perf_counter()
    x, obj = district_search(session, plan, value, x_lp, dual, limit=8.0, mip_gap=1e-4)
    assert time.perf_counter() - t0 < 120  # generous: a loaded machine, not a speed test
    x = round_plan(model, x)
    assert model.lp.violations(x).empty
    assert float(model.levels[1].coefs @ x) == pytest.approx(obj)
    assert obj > value * (1 + 1e-3)
    assert float(model.levels[0].coefs @ x) >= float(model.levels[0].coefs @ plan) - 1e-6


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_support_sub_mip_leaves_most_of_a_held_level_to_the_district_search(district_start,
                                                                             monkeypatch):
    """On a held level with districts the LP-support sub-MIP may take at most
    SUB_MIP_SHARE_BEFORE_SEARCH of the level's time; the search gets the rest (on c99 the
    uncapped sub-MIP took 17 s of 46 and left the search nothing to gain from). The RINS
    run before them (guarded by size) takes at most RINS_SHARE."""
    from allocator.solvers import highs

    model, plan = district_start
    session = _held_quality_session(model, plan)
    limits, searched = [], []
    real_run, real_search = highs.run_guarded, highs.district_search

    rins = []

    def run(session, time_limit, *args, **kwargs):
        (rins if kwargs.get("by_size") else limits).append(time_limit)
        return real_run(session, time_limit, *args, **kwargs)

    def search(session, x, obj, x_lp, dual, limit, mip_gap):
        searched.append(limit)
        return real_search(session, x, obj, x_lp, dual, limit, mip_gap)

    monkeypatch.setattr(highs, "run_guarded", run)
    monkeypatch.setattr(highs, "district_search", search)
    res = session.solve(20.0, 1e-4, plan)
    assert res.status.has_solution
    from allocator.solvers import highs_child

    assert len(rins) == int(session.n >= highs_child.GUARD_MIN_COLUMNS)
    assert all(limit <= highs.RINS_SHARE * 20.0 + 1e-9 for limit in rins)
    assert limits[0] <= highs.SUB_MIP_SHARE_BEFORE_SEARCH * 20.0 + 1e-9
    assert searched and searched[0] > 0.5 * 20.0  # the search has most of the level


def test_too_wide_counts_the_kernel_and_the_plan_against_the_integer_columns():
    """The kernel (LP support, zero reduced costs) and the plan's columns, as a share of
    the integer columns; continuous columns count for neither."""
    from types import SimpleNamespace

    from allocator.solvers.highs_search import SEARCH_MAX_FREE_SHARE, too_wide

    n = 100
    session = SimpleNamespace(integer=np.r_[np.ones(n, bool), np.zeros(5, bool)],
                              lb=np.zeros(n + 5))
    x_lp, dual, x = np.zeros(n + 5), np.ones(n + 5), np.zeros(n + 5)
    x_lp[n:] = dual[n:] = 1.0  # continuous columns in the support: not counted
    k = int(np.ceil(SEARCH_MAX_FREE_SHARE * n))
    x_lp[: k // 2] = 1.0  # the LP's support
    dual[k // 2: k - 1] = 0.0  # as good as the LP's
    assert not too_wide(session, x, x_lp, dual)  # k - 1 free
    x[k - 1] = 1.0  # the plan's own column
    assert too_wide(session, x, x_lp, dual)


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_no_district_search_where_the_kernel_frees_nearly_the_whole_model(district_start,
                                                                         monkeypatch):
    """A held level whose kernel and plan free SEARCH_MAX_FREE_SHARE of the integer columns
    goes from the sub-MIP to the full MIP: each district's sub-MIP would be the whole MIP
    cut short (hidden-10k-s301). Below the share the district search runs."""
    from allocator.solvers import highs, highs_search

    model, plan = district_start
    searched = []
    real = highs.district_search

    def spy(session, x, obj, *args, **kwargs):
        searched.append(obj)
        return real(session, x, obj, *args, **kwargs)

    monkeypatch.setattr(highs, "district_search", spy)
    for share, expected in ((0.0, False), (1.01, True)):
        searched.clear()
        monkeypatch.setattr(highs_search, "SEARCH_MAX_FREE_SHARE", share)
        res = _held_quality_session(model, plan).solve(10.0, 1e-4, plan)
        assert res.status.has_solution
        assert model.lp.violations(round_plan(model, res.x)).empty
        assert bool(searched) is expected


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_district_search_runs_only_on_held_levels_with_two_or_more_districts(tmp_path,
                                                                             monkeypatch):
    """The first level (no start) and one-district models (GAP) go straight to the full
    MIP; a held level of a city with districts is searched district by district."""
    from allocator.solvers import highs

    calls = []
    real = highs.district_search

    def spy(session, x, obj, *args, **kwargs):
        calls.append(session.group_count())
        return real(session, x, obj, *args, **kwargs)

    monkeypatch.setattr(highs, "district_search", spy)
    for districts in (1, 3):
        calls.clear()
        path = _generate(tmp_path, 120, 8, districts, 5)
        run = solve_result(load_instance(path, overrides=POLICY), solver="highs",
                             time_limit=60)
        assert run.summary["status"] in ("optimal", "feasible")
        if districts == 1:
            assert calls == []
        else:  # the quality and cost levels, unless a sub-MIP already met the LP bound
            assert calls and all(c == districts for c in calls)


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_run_after_an_interrupted_one_is_not_interrupted(small_instances):
    """HiGHS keeps the callback's interrupt flag between runs: once a run overran its
    deadline, every later run of the session (the next level, a neighbourhood sub-MIP)
    stopped at its first callback. The flag is now cleared while on time."""
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model
    from allocator.solvers.highs import HighsSession

    inst = load_instance(small_instances[sorted(small_instances)[0]], overrides=POLICY)
    model = build_model(inst, compute_eligibility(inst))
    session = HighsSession(model.lp, 2, 0)
    quality = model.levels[1]
    session.set_objective(quality.coefs, quality.sense)
    session.deadline = time.perf_counter() - 1.0  # already late: the first callback stops it
    first = session.run(60, 1e-4, None)
    assert "interrupt" in first.solver_status.lower(), first.solver_status
    session.deadline = float("inf")
    second = session.run(60, 1e-4, None)
    assert second.status is Status.OPTIMAL, second.solver_status


# ------------------------------------------------------------------------------------------
# issue 21: HiGHS's LP clock, feasibility jump, child processes; CBC's parallel crash
# ------------------------------------------------------------------------------------------


def _random_packing(n: int = 800, m: int = 200, seed: int = 0) -> LinearModel:
    """max sum c x over binaries, m random packing rows: an LP of a few hundred iterations."""
    rng = np.random.default_rng(seed)
    lp = LinearModel()
    lp.add_variables("x", pd.DataFrame({"k": np.arange(n)}), 0, 1, True)
    rows = rng.integers(0, m, 10 * n)
    cols = np.repeat(np.arange(n), 10)
    lp.add_constraints("pack", pd.DataFrame({"k": np.arange(m)}), rows, cols,
                       rng.uniform(0.5, 2.0, 10 * n), -INF, 5.0)
    return lp


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_lp_after_long_earlier_runs_still_gets_its_own_time_limit():
    """HiGHS compares an LP's time_limit with the run time of every earlier run of the
    object: once that sum passed the limit, the LP stopped at once ('Time limit reached')."""
    from allocator.solvers.highs import HighsSession

    lp = _random_packing()
    session = HighsSession(lp, 1, 0)
    session.set_objective(np.random.default_rng(1).uniform(1, 2, lp.n_vars), "max")
    first = session.relaxation(60.0)
    assert first is not None
    limit = 5 * session.h.getRunTime()  # five times what the LP needs here
    while session.h.getRunTime() <= limit:  # earlier runs: more run time than the limit
        session.h.clearSolver()  # each LP from scratch
        assert session.relaxation(60.0) is not None
    session.h.clearSolver()
    relax = session.relaxation(limit)
    assert relax is not None, "the LP was stopped by the run time of earlier runs"
    assert relax[0] == pytest.approx(first[0])


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_feasibility_jump_follows_its_settings(monkeypatch):
    """Off by default with a start and without (docs/tuning-log.md); each setting reaches
    HiGHS for its own kind of run."""
    from allocator.solvers import highs_core
    from allocator.solvers.highs import HighsSession

    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    option = "mip_heuristic_run_feasibility_jump"
    start = np.array([1.0, 0.0, 1.0, 12.34])
    for without in (False, True):
        monkeypatch.setattr(highs_core, "FEASIBILITY_JUMP_WITHOUT_START", without)
        session.run(5.0, 1e-6, None)
        assert session.h.getOptionValue(option)[1] is without
        res = session.run(5.0, 1e-6, start)
        assert session.h.getOptionValue(option)[1] is False
        assert res.status is Status.OPTIMAL and res.objective == pytest.approx(8.0)
    assert highs_core.FEASIBILITY_JUMP_WITH_START is False


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_a_neighbourhood_without_a_plan_is_widened(monkeypatch):
    """min a + b + 10c, 2a + 2b + c = 3: the LP (a = 1, b = 0.5, c = 0 with reduced cost
    9.5) leaves c out of the neighbourhood, where no plan exists (2a + 2b = 3); widened by c
    it finds the optimum 11 itself."""
    from allocator.solvers import highs as highs_mod
    from allocator.solvers.highs import HighsSession

    lp = LinearModel()
    lp.add_variables("x", pd.DataFrame({"k": ["a", "b", "c"]}), 0, 1, True)
    lp.add_constraints("odd", pd.DataFrame({"k": ["odd"]}), np.zeros(3), np.arange(3),
                       np.array([2.0, 2.0, 1.0]), 3.0, 3.0)
    calls: list[tuple[int, str]] = []
    real = highs_mod.run_guarded

    def counted(session, *args, **kwargs):
        res = real(session, *args, **kwargs)
        bounds = session.h.getLp()
        free = int(np.count_nonzero(np.array(bounds.col_upper_) > np.array(bounds.col_lower_)))
        calls.append((free, "full" if kwargs.get("full") else res.status.value))
        return res

    monkeypatch.setattr(highs_mod, "run_guarded", counted)
    session = HighsSession(lp, 1, 0)
    session.set_objective(np.array([1.0, 1.0, 10.0]), "min")
    res = session.solve(10.0, 1e-6, None)
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(11.0)
    # the full MIP follows (the LP bound 1.5 proves nothing), from the widened plan
    assert calls[:2] == [(2, "infeasible"), (3, "optimal")]


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_child_only_for_many_free_columns_and_enough_time(monkeypatch):
    """A sub-MIP is guarded by the columns its bounds leave free, a full MIP by the model's
    size; with a start and less than GUARD_MIN_RUN seconds no child is started at all."""
    from allocator.solvers import highs_child
    from allocator.solvers.highs import HighsSession

    started = []
    real = highs_child.await_child
    monkeypatch.setattr(highs_child, "await_child",
                        lambda *a, **k: started.append(1) or real(*a, **k))
    monkeypatch.setattr(highs_child, "GUARD_MIN_COLUMNS", 3)
    monkeypatch.setattr(highs_child, "GUARD_MIN_FREE", 3)
    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    ub = session.ub.copy()
    ub[1] = 0.0  # a sub-MIP with two integer columns left free: in-process
    session.set_bounds(session.lb, ub)
    res = highs_child.run_guarded(session, 5.0, 1e-6, None)
    assert res.status is Status.OPTIMAL and not started
    res = highs_child.run_guarded(session, 5.0, 1e-6, None, full=True)  # a full MIP: by size
    assert res.status is Status.OPTIMAL and started == [1]
    session.set_bounds(session.lb, session.ub)  # a sub-MIP with three free: a child
    start = np.array([1.0, 0.0, 1.0, 12.34])
    res = highs_child.run_guarded(session, 5.0, 1e-6, start)
    assert res.status is Status.OPTIMAL and started == [1, 1]
    res = highs_child.run_guarded(session, highs_child.GUARD_MIN_RUN / 2, 1e-6, start)
    assert started == [1, 1] and res.status is Status.FEASIBLE
    assert res.x.tolist() == start.tolist() and "not started" in res.solver_status


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_highs_large_cold_lp_runs_in_a_child_and_its_basis_is_kept(monkeypatch):
    """An LP of GUARD_LP_MIN_COLUMNS columns or more with no basis to start from runs in a
    child killed at the deadline, with the in-process answer; its basis comes back, so the
    next LPs start from it in-process."""
    from allocator.solvers import highs_child
    from allocator.solvers.highs import HighsSession

    reference = HighsSession(_knapsack(), 1, 0)
    reference.set_objective(OBJ, "max")
    ref_obj, ref_x, ref_dual = reference.relaxation(5.0)
    started = []
    real = highs_child.await_child
    monkeypatch.setattr(highs_child, "await_child",
                        lambda *a, **k: started.append(1) or real(*a, **k))
    monkeypatch.setattr(highs_child, "GUARD_LP_MIN_COLUMNS", 3)
    session = HighsSession(_knapsack(), 1, 0)
    session.set_objective(OBJ, "max")
    obj, x, dual = session.relaxation(5.0)
    assert started == [1]
    assert obj == pytest.approx(ref_obj) == pytest.approx(8.0 + 4.0 / 3.0)
    assert x == pytest.approx(ref_x) and dual == pytest.approx(ref_dual)
    again = session.relaxation(5.0)
    assert started == [1]  # the child's basis was kept: this LP ran in-process
    assert again[0] == pytest.approx(obj)
    assert session.h.getInfo().simplex_iteration_count == 0  # it started at the optimum
    session.set_integrality(True)
    assert session.run(5.0, 1e-6, None).objective == pytest.approx(8.0)  # drops the basis
    assert session.relaxation(5.0)[0] == pytest.approx(obj)
    assert started == [1]  # the basis saved at this row count, in-process again
    assert session.h.getInfo().simplex_iteration_count == 0
    # a pure LP (no integer columns) of that size runs its cold LP in a child too
    pure = HighsSession(_knapsack().relaxed(), 1, 0)
    pure.set_objective(OBJ, "max")
    res = pure.solve(5.0, 1e-6, None)
    assert res.status is Status.OPTIMAL and res.objective == pytest.approx(obj)
    assert res.gap == pytest.approx(0.0)
    assert started == [1, 1]


@pytest.mark.skipif("cbc" not in BACKENDS or "highs" not in BACKENDS,
                    reason="CBC and HiGHS needed")
def test_cbc_with_two_threads_solves_the_quality_level_its_parallel_search_crashed_on(
        tmp_path):
    """CBC 2.10.3's repeatable parallel search (-threads 102) segfaulted (exit -11) on this
    120-enterprise city's quality level on every run; CBC now runs one thread."""
    from allocator.eligibility import compute_eligibility
    from allocator.model.build import build_model
    from allocator.pipeline.lexicographic import hold_tolerance

    inst = load_instance(_generate(tmp_path, 120, 10, 3, 27))
    model = build_model(inst, compute_eligibility(inst), direct_share_rows=False)
    coverage, quality = model.levels[0], model.levels[1]
    highs = get_backend("highs").open(model.lp, 1, 0)
    highs.set_objective(coverage.coefs, "max")
    plan = round_plan(model, highs.solve(60, 1e-4, None).x)
    value = float(coverage.coefs @ plan)
    session = get_backend("cbc").open(model.lp, 2, 0)
    nz = np.flatnonzero(coverage.coefs)
    session.add_row("hold", nz, coverage.coefs[nz], value - hold_tolerance(value), np.inf)
    session.set_objective(quality.coefs, "max")
    res = session.solve(5.0, 1e-4, plan)
    assert "exit" not in res.solver_status, res.solver_status
    assert res.status.has_solution
    assert res.objective >= float(quality.coefs @ plan) - 1e-6
