"""What-if at scale (issue 22): the parametric sweep session, the coverage frontier against the
independent reference model on a city from an independent generator, proofs carried between
budgets, batches (manifest checks, batch.csv, folders, progress, failures) and the executors:
this machine's pool and a Dask LocalCluster started here, which must give the same files (apart
from timings and worker names) and survive a worker killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from city_builder import build_city
from click.testing import CliRunner

import allocator
from allocator.cli import main
from allocator.core.errors import InputError, UsageError
from allocator.eligibility import compute_eligibility
from allocator.pipeline.least_budget import least_budget
from allocator.pipeline.solve import ParametricSolve, solve_instance
from allocator.solvers import REGISTRY, get_backend
from allocator.whatif import batch as batch_mod
from allocator.whatif.batch import BATCH_COLUMNS
from allocator.whatif.sweep import Point, at_budget, bracket_proofs, budget_label
from benchmarks.baseline import solve_baseline

HAS_PLAN = ("optimal", "feasible")
#: columns that say when or where, not what: left out when two runs are compared
TIMING = {"seconds", "worker", "seconds_wall", "seconds_points_sum"}


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    return build_city(tmp_path_factory.mktemp("city") / "c7", seed=7)


def budgets_around(path: Path, n_inner: int = 3) -> list[float]:
    """Budgets from just below the least budget to past any plan's cost."""
    inst = allocator.load_instance(path)
    elig = compute_eligibility(inst)
    lb = least_budget(inst, elig, get_backend("auto"), 30, 1)
    assert lb.status == "optimal"
    most = float(elig.triples.groupby("demand")["cost"].max().sum())
    inner = np.linspace(lb.value * 1.2, most * 0.7, n_inner).round(0).tolist()
    return [float(np.floor(lb.value) - 1), float(np.ceil(lb.value)), *inner, float(np.ceil(most))]


# ------------------------------------------------------------------------------------------
# the parametric session
# ------------------------------------------------------------------------------------------

def test_backends_say_whether_rows_change_in_place():
    for backend in REGISTRY.values():
        assert isinstance(backend.parametric_rows, bool)
    assert REGISTRY["highs"].parametric_rows


def test_parametric_session_equals_a_fresh_model_at_every_budget(city):
    """One session re-solved at budgets in a jumbled order (down, up, down) equals a model
    built afresh at each: the budget row is reset and the held rows of the last solve gone."""
    inst = allocator.load_instance(city)
    elig = compute_eligibility(inst)
    backend = get_backend("highs")
    assert ParametricSolve.applies(inst, elig, backend)
    runner = ParametricSolve(inst, elig, backend, 1)
    budgets = budgets_around(city)
    for b in [budgets[3], budgets[1], budgets[-1], budgets[0], budgets[2]]:
        got = runner.solve(at_budget(inst, b, 1)).summary
        fresh = solve_instance(at_budget(inst, b, 1), elig=elig).summary
        assert got["status"] == fresh["status"], b
        if fresh["status"] == "optimal":
            for key in ("coverage", "quality"):
                assert got[key] == pytest.approx(fresh[key], rel=1e-6), (b, key)
            assert got["cost"] <= b + 1e-6
    assert runner.session is not None and runner.session.row_count() == runner.rows


def test_an_lp_after_a_mip_starts_from_the_last_basis(city):
    """A sweep point's LP starts from the last point's optimal basis (a MIP run in between
    discards HiGHS's own): the same LP value as a fresh session, in fewer simplex
    iterations."""
    inst = allocator.load_instance(city)
    elig = compute_eligibility(inst)
    backend = get_backend("highs")
    runner = ParametricSolve(inst, elig, backend, 1)
    model, level = runner.model, runner.model.levels[0]
    budgets = budgets_around(city)

    def lp_at(session, budget: float) -> tuple[float, int]:
        session.set_row_bounds(np.array([runner.budget_row]), np.array([-np.inf]),
                               np.array([budget / model.cost_scale]))
        relax = session.relaxation(30)
        assert relax is not None
        return relax[0], session.h.getInfo().simplex_iteration_count

    session = runner.session
    assert session is not None
    session.set_objective(level.coefs, level.sense)
    lp_at(session, budgets[2])
    session.run(10, 1e-4, None)  # the point's MIP
    warm, warm_iterations = lp_at(session, budgets[3])
    fresh = backend.open(model.lp, 1, 0)
    fresh.set_objective(level.coefs, level.sense)
    cold, cold_iterations = lp_at(fresh, budgets[3])
    assert warm == pytest.approx(cold, rel=1e-9)
    assert warm_iterations < cold_iterations


# ------------------------------------------------------------------------------------------
# the coverage frontier against the reference model
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_coverage_frontier_is_proven_and_equals_the_reference(tmp_path, jobs):
    """`sweep --levels coverage` on a city from the independent generator: every point with
    a plan has its served weight proven, equal to the PuLP reference model's."""
    path = build_city(tmp_path / "c11", seed=11)
    budgets = budgets_around(path)
    inst = allocator.load_instance(path, overrides={"solver": {"levels": "coverage"}})
    sweep = allocator.sweep(inst, budgets, jobs=jobs)
    f = sweep.frontier.set_index("budget")
    for b in budgets:
        row = f.loc[b]
        ref = solve_baseline(path, budget=b, mip_gap=1e-6, time_limit=30)
        if ref["status"] not in HAS_PLAN:
            assert ref["status"] == "infeasible"
            assert row["status"] == "infeasible", b
            continue
        assert ref["levels"][0]["status"] == "optimal"
        assert row["status"] in HAS_PLAN, b
        assert row["coverage_status"] == "optimal", (b, row["how"])
        assert row["coverage"] == pytest.approx(ref["coverage"], abs=1e-6), b
    assert f["coverage"].dropna().is_monotonic_increasing


def _point(budget: float, coverage: float, bound: float | None, status: str) -> Point:
    from allocator.pipeline.result import RunResult

    summary = {"status": "feasible", "coverage": coverage, "bound": bound, "gap": None,
               "levels": [{"name": "coverage", "status": status, "value": coverage,
                           "bound": bound, "gap": None}],
               "levels_optimised": ["coverage"]}
    return Point(budget, RunResult(summary), "warm_start", 1.0)


def test_a_larger_budgets_bound_proves_a_smaller_budgets_plan(tmp_path):
    inst = allocator.load_instance(build_city(tmp_path / "c", seed=3),
                                   overrides={"solver": {"levels": "coverage"}})
    points = {10.0: _point(10.0, 50, 55, "feasible"),  # below 52: stays unproven
              20.0: _point(20.0, 52, 60, "feasible"),  # proven by 30's bound 52
              30.0: _point(30.0, 52, 52, "optimal"),
              40.0: _point(40.0, 53, 58, "feasible")}  # a larger budget proves nothing here
    bracket_proofs(points, inst)
    lv = {b: p.result.summary["levels"][0] for b, p in points.items()}
    assert lv[20.0]["status"] == "optimal" and lv[20.0]["bound"] == 52
    assert points[20.0].result.summary["gap"] == 0
    assert lv[10.0]["status"] == "feasible" and lv[40.0]["status"] == "feasible"
    assert Point(20.0, points[20.0].result, "warm_start", 1.0).row["coverage_status"] == \
        "optimal"


# ------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------

SCENARIOS = ("scenarios:\n  baseline: {}\n  more_money: {budget: 260000}\n"
             "  strict: {quality: {min_score: 80}}\n")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Two independent cities: one swept over budgets, one with three scenarios (solved
    once each), and the first again with the scenarios swept."""
    root = tmp_path_factory.mktemp("batch")
    build_city(root / "cities" / "north", seed=21)
    build_city(root / "cities" / "south", seed=22, districts=2)
    (root / "scenarios.yaml").write_text(SCENARIOS, encoding="utf-8")
    (root / "batch.yaml").write_text(
        "runs:\n"
        "  - instance: cities/north\n    budgets: '20000:200000:4'\n"
        "  - instance: cities/south\n    scenarios: scenarios.yaml\n"
        "  - instance: cities/north\n    name: north-scenarios\n"
        "    scenarios: scenarios.yaml\n    budgets: [60000, 140000]\n"
        "time_limit: 30\n", encoding="utf-8")
    return root / "batch.yaml"


@pytest.fixture(scope="module")
def local_batch(manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    result = allocator.batch(manifest, out, jobs=2)
    assert result.failed == 0
    return out


def table(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, encoding="utf-8-sig")
    return df.drop(columns=[c for c in df.columns if c in TIMING])


#: the tables that carry a batch's answers, and their answer columns: how many agencies a
#: plan uses, its shares and its rows may differ between equally good plans (a tie at the
#: last level is broken by timing), the served weight, quality and cost may not
ANSWERS = {"batch.csv": ["instance", "scenario", "budget", "status", "coverage",
                         "coverage_ratio", "quality", "cost", "coverage_status", "folder"],
           "frontier.csv": ["budget", "status", "coverage", "coverage_ratio",
                            "mandatory_served", "mandatory_total", "quality", "cost",
                            "coverage_status", "levels", "folder"],
           "comparison.csv": ["scenario", "status", "coverage", "coverage_ratio", "cost",
                              "budget", "quality", "mandatory_served", "folder"]}


def assert_same_files(a: Path, b: Path) -> None:
    """The same folders and files; batch.csv, every frontier.csv and comparison.csv the same
    answers (figures within the gap), and every point's summary the same status, served
    weight, quality and cost."""
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    compared = 0
    for rel in files_a:
        name = rel.split("/")[-1]
        if name in ANSWERS:
            cols = ANSWERS[name]
            pd.testing.assert_frame_equal(table(a / rel)[cols], table(b / rel)[cols],
                                          check_exact=False, rtol=2e-6, obj=rel)
            compared += 1
        elif rel.split("/")[-1] == "summary.json":
            sa, sb = (json.loads((x / rel).read_text()) for x in (a, b))
            assert sa["status"] == sb["status"] and sa["budget"] == sb["budget"], rel
            for key in ("coverage", "quality", "cost"):
                if sa[key] is None or sb[key] is None:  # no plan
                    assert sa[key] == sb[key], (rel, key)
                else:
                    assert sa[key] == pytest.approx(sb[key], rel=2e-6), (rel, key)
    assert compared >= 3


def test_batch_folder_and_batch_csv(manifest, local_batch):
    out = local_batch
    bt = pd.read_csv(out / "batch.csv", encoding="utf-8-sig")
    assert list(bt.columns) == BATCH_COLUMNS
    # 4 budgets, 3 scenarios solved once, 3 scenarios x 2 budgets, in manifest order
    assert len(bt) == 4 + 3 + 6
    assert bt["instance"].tolist() == ["north"] * 4 + ["south"] * 3 + ["north-scenarios"] * 6
    assert bt["scenario"].iloc[:4].eq("policy").all()
    assert bt.loc[bt["instance"] == "south", "budget"].tolist() == [150000, 260000, 150000]
    for row in bt.itertuples(index=False):
        summary = json.loads((out / row.folder / "summary.json").read_text())
        assert summary["status"] == row.status
        assert summary["budget"] == pytest.approx(row.budget)
        if row.status in HAS_PLAN:
            assert summary["coverage"] == pytest.approx(row.coverage)
            a = pd.read_csv(out / row.folder / "assignments.csv", encoding="utf-8-sig")
            assert a["cost"].sum() == pytest.approx(row.cost, abs=0.05)
            assert a["cost"].sum() <= row.budget + 0.01
    assert (out / "north" / "policy" / "frontier.csv").is_file()
    assert (out / "north-scenarios" / "strict" / "frontier.csv").is_file()
    cmp = pd.read_csv(out / "south" / "comparison.csv", encoding="utf-8-sig")
    assert cmp["scenario"].tolist() == ["baseline", "more_money", "strict"]
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["executor"] == "local" and summary["points"] == 13
    assert json.loads((out / ".allocator.json").read_text())["kind"] == "batch"


def test_batch_equals_single_sweep_and_compare(manifest, local_batch, tmp_path):
    """The batch's frontier and comparison files are those of `sweep` and `compare`."""
    root = manifest.parent
    north = allocator.load_instance(root / "cities" / "north")
    allocator.sweep(north, "20000:200000:4").write(tmp_path / "sweep")
    pd.testing.assert_frame_equal(table(tmp_path / "sweep" / "frontier.csv"),
                                  table(local_batch / "north" / "policy" / "frontier.csv"))
    south = allocator.load_instance(root / "cities" / "south")
    allocator.compare(south, root / "scenarios.yaml").write(tmp_path / "cmp")
    pd.testing.assert_frame_equal(table(tmp_path / "cmp" / "comparison.csv"),
                                  table(local_batch / "south" / "comparison.csv"))


def test_manifest_problems_are_reported_at_once(tmp_path):
    build_city(tmp_path / "ok", seed=1)
    (tmp_path / "bad_scen.yaml").write_text("scenarios:\n  x: {quality: {min_scor: 1}}\n")
    (tmp_path / "m.yaml").write_text(
        "runz: 1\nsend: email\nruns:\n"
        "  - instance: ok\n    budget: 5\n"
        "  - instance: missing\n"
        "  - instance: ok\n    budgets: '5:1:3'\n    time_limit: -1\n"
        "  - instance: ok\n    name: ok\n    scenarios: bad_scen.yaml\n"
        "  - {budgets: [1]}\n")
    with pytest.raises(InputError) as exc:
        allocator.load_batch_manifest(tmp_path / "m.yaml")
    text = "\n".join(str(p) for p in exc.value.problems)
    for needle in ("runz", "send", "runs[0].budget", "did you mean 'budgets'", "missing",
                   "runs[2].budgets", "runs[2].time_limit", "min_scor",
                   "runs[3].name", "runs[4].instance"):
        assert needle in text, needle
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(tmp_path / "m.yaml"), "--out", str(out)])
    assert res.exit_code == 2 and not out.exists()
    assert "runz" in res.output


def test_cli_batch_progress_and_a_failing_task(manifest, tmp_path, monkeypatch):
    """A task that fails is a row with status error and the batch goes on; progress reports
    done, running, failed and an ETA on stderr."""
    real = batch_mod.solve_instance

    def flaky(inst, *args, **kwargs):
        if inst.policy.min_score >= 80:  # the 'strict' scenario of the one-off solves
            raise RuntimeError("solver crashed")
        return real(inst, *args, **kwargs)

    monkeypatch.setattr(batch_mod, "solve_instance", flaky)
    (tmp_path / "m.yaml").write_text(
        f"runs:\n  - instance: {manifest.parent / 'cities' / 'south'}\n"
        f"    scenarios: {manifest.parent / 'scenarios.yaml'}\n")
    events: list[dict] = []
    result = allocator.batch(tmp_path / "m.yaml", tmp_path / "out", progress=events.append)
    bt = result.table.set_index("scenario")
    assert bt.loc["strict", "status"] == "error" and "solver crashed" in bt.loc["strict", "note"]
    assert bt.loc["baseline", "status"] in HAS_PLAN
    assert result.failed == 1 and not (tmp_path / "out" / "south" / "strict").exists()
    last = events[-1]
    assert last["done"] == last["total"] == 3 and last["failed"] == 1
    assert {"running", "eta_seconds"} <= set(last)
    res = CliRunner().invoke(main, ["batch", str(tmp_path / "m.yaml"), "--out",
                                    str(tmp_path / "out2")])
    assert res.exit_code == 1  # a failed task: not a clean batch
    assert "failed 1" in res.output and "solver crashed" in res.output


def test_unreachable_scheduler_is_a_usage_error(city, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from allocator.whatif import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    inst = allocator.load_instance(city)
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        allocator.sweep(inst, [1e5, 2e5], scheduler="tcp://127.0.0.1:9")
    res = CliRunner().invoke(main, ["sweep", str(city), "--budgets", "1e5,2e5", "--out",
                                    str(tmp_path / "s")],
                             env={"DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:9"})
    assert res.exit_code == 2 and "cannot reach the Dask scheduler" in res.output
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------
# a Dask cluster started here
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


def test_batch_on_a_dask_cluster_equals_the_local_pool(manifest, local_batch, dask_client,
                                                       tmp_path):
    out = tmp_path / "dask"
    result = allocator.batch(manifest, out, scheduler=dask_client)
    assert result.failed == 0
    summary = result.summary()
    assert summary["executor"] == "dask" and len(summary["workers"]) == 2
    assert all(w.startswith("tcp://") for w in result.table["worker"])
    assert_same_files(local_batch, out)


def test_sweep_and_compare_on_a_dask_cluster(manifest, dask_client, tmp_path):
    root = manifest.parent
    north = allocator.load_instance(root / "cities" / "north")
    here = allocator.sweep(north, "20000:200000:4", jobs=2)
    there = allocator.sweep(north, "20000:200000:4", scheduler=dask_client)
    cols = ["budget", "status", "coverage", "quality", "cost", "coverage_status"]
    pd.testing.assert_frame_equal(here.frontier[cols], there.frontier[cols])
    assert there.summary()["executor"]["executor"] == "dask"
    south = allocator.load_instance(root / "cities" / "south")
    a = allocator.compare(south, root / "scenarios.yaml", jobs=2).table
    b = allocator.compare(south, root / "scenarios.yaml", scheduler=dask_client).table
    cols = ["scenario", "status", "coverage", "quality", "cost", "herfindahl"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def _signal_seen(sig) -> bool:
    """A task: whether the signal it was sent is set, read on the worker."""
    return sig.is_set()


def test_a_signal_on_a_dask_cluster_is_read_on_its_workers(manifest, dask_client):
    """A Dask executor's signal, set by the client, reads as set in a task on a worker (a
    fresh one as unset), and a served-weight sweep, whose early chain stops on it, gives the
    local pool's frontier."""
    from allocator.whatif.cluster import DaskExecutor

    ex = DaskExecutor(dask_client)
    sig = ex.signal()
    assert not sig.is_set()
    assert dask_client.submit(_signal_seen, sig, pure=False).result() is False
    sig.set()
    assert sig.is_set()
    assert dask_client.submit(_signal_seen, sig, pure=False).result() is True
    assert not ex.signal().is_set()
    north = allocator.load_instance(manifest.parent / "cities" / "north",
                                    overrides={"solver": {"levels": "coverage"}})
    here = allocator.sweep(north, "20000:200000:6", jobs=2)
    there = allocator.sweep(north, "20000:200000:6", scheduler=dask_client)
    cols = ["budget", "status", "coverage", "coverage_status"]
    pd.testing.assert_frame_equal(here.frontier[cols], there.frontier[cols])


def test_a_worker_killed_mid_run_has_its_task_retried(manifest, local_batch, dask_client,
                                                      tmp_path):
    """The first point that finishes names its worker: that worker's process is killed while
    its sweep still runs. The scheduler reruns the task elsewhere and the batch completes with
    the same files as the local pool's."""
    pids = dask_client.run(os.getpid)
    killed: list[str] = []
    lock = threading.Lock()

    def progress(event: dict) -> None:
        with lock:
            worker = event.get("worker")
            if not killed and event.get("run") == "north" and worker in pids:
                killed.append(worker)
                os.kill(pids[worker], signal.SIGKILL)

    out = tmp_path / "killed"
    result = allocator.batch(manifest, out, scheduler=dask_client, progress=progress)
    assert killed, "no worker was killed"
    assert result.failed == 0
    assert_same_files(local_batch, out)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarts it


def test_budget_labels_of_batch_folders(local_batch):
    for b in (20000, 80000, 140000, 200000):
        assert (local_batch / "north" / "policy" / budget_label(b) / "summary.json").is_file()


def test_send_path_reads_the_instance_where_the_task_runs(tmp_path):
    """`send: path`: the task carries the folder's path and the worker loads it; the answers
    are those of `send: data`."""
    build_city(tmp_path / "c", seed=5)
    (tmp_path / "scen.yaml").write_text(SCENARIOS, encoding="utf-8")
    for send in ("data", "path"):
        (tmp_path / f"{send}.yaml").write_text(
            f"send: {send}\nruns:\n  - instance: c\n    scenarios: scen.yaml\n"
            "    budgets: [60000, 120000]\n    levels: coverage\n", encoding="utf-8")
    spec = allocator.load_batch_manifest(tmp_path / "path.yaml")
    tasks = batch_mod.batch_tasks(spec, remote=True, slots=1)
    assert all(t.instance is None and t.instance_path for t in tasks)
    assert tasks[1].overrides == {"solver": {"levels": "coverage"},
                                  "budget": {"total": 260000}}
    a = allocator.batch(tmp_path / "data.yaml", tmp_path / "a").table
    b = allocator.batch(tmp_path / "path.yaml", tmp_path / "b").table
    cols = ["instance", "scenario", "budget", "status", "coverage", "coverage_status"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert (a["coverage_status"] == "optimal").all()


def test_a_batch_sweep_without_a_parametric_session_reports_its_points(tmp_path):
    """A backend that cannot change a row in place (CBC) runs the sweep's chain through the
    pool inside the batch task: the task's progress still reaches the batch, point by
    point, and not the inner run's own sink (which looped forever once)."""
    from conftest import write_instance_files

    write_instance_files(tmp_path / "tiny")
    (tmp_path / "m.yaml").write_text("runs:\n  - instance: tiny\n"
                                     "    budgets: [20000, 30000, 40000, 200000]\n"
                                     "    solver: cbc\n", encoding="utf-8")
    events: list[dict] = []
    result = allocator.batch(tmp_path / "m.yaml", tmp_path / "out", progress=events.append)
    assert result.failed == 0, result.table["note"].tolist()
    assert sorted(e["budget"] for e in events) == [20000, 30000, 40000, 200000]
    assert events[-1]["done"] == events[-1]["total"] == 4
    assert (result.table["how"] == "warm_start").sum() >= 2  # a chain ran
