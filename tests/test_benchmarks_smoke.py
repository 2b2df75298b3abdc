"""Smoke tests of the benchmark harness (benchmarks/run.py, harness.py, report.py) and its
verdict logic.

The quick run spawns real child processes (allocator, check, LP bound, baseline, one GAP
problem) on a tiny generated instance; the real city suite is marked slow (`pytest -m slow`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import harness, report
from benchmarks import run as bench

GAP_DIR = harness.shared_benchmarks() / "gap"

INSTANCE_COLUMNS = ["instance", "enterprises", "triples", "vars", "rows", "eligibility s",
                    "build s", "level s (cov/qual/cost)", "status", "gap", "allocator total s",
                    "baseline total s", "speed-up", "values equal to baseline?",
                    "served / LP bound", "check", "peak MB allocator / baseline"]


def _row(md: str, first_cell: str) -> list[str]:
    """Cells of the first table row of md whose first cell is first_cell."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r}")


def _header(md: str, first_column: str) -> list[str]:
    return _row(md, first_column)


def test_quick_run_writes_tables(tmp_path, capsys):
    if not (GAP_DIR / "optima.csv").exists():
        pytest.skip(f"GAP benchmarks not found at {GAP_DIR}")
    out = tmp_path / "results.md"
    assert bench.main(["--quick", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    md = out.read_text(encoding="utf-8")
    assert capsys.readouterr().out.strip() == md.strip()  # the same tables on stdout

    for section in ("## Machine", "## Targets", "## Profile: time and memory per phase",
                    "## OR-Library GAP", "## Model build per 100,000 triples"):
        assert section in md
    header = _header(md, "instance")
    for col in INSTANCE_COLUMNS:
        assert col in header, col

    tiny = dict(zip(header, _row(md, "tiny"), strict=True))
    assert tiny["status"] == "optimal"
    assert tiny["baseline status"] == "optimal"
    assert tiny["values equal to baseline?"] == "yes"
    assert int(tiny["triples"].replace(",", "")) > 0
    assert tiny["check"] in ("ok", "check unavailable")
    served = float(tiny["served / LP bound"].rstrip("%"))
    assert 90.0 < served <= 100.0 + 1e-9  # a MIP plan never beats its LP relaxation

    gap = _row(md, "gap1")
    assert gap[1:3] == ["1", "1/1"]  # one problem, solved to the published optimum 261
    assert _row(md, "gap1-1")[3] == "261.00"
    assert _row(md, "OR-Library GAP")[-1].startswith("PASS")
    assert _row(md, "City")[-1] == "not run"

    raw = json.loads((tmp_path / "work" / "results.json").read_text())
    rec = raw["instances"][0]
    assert rec["allocator"]["coverage"] == pytest.approx(rec["baseline"]["coverage"])
    assert rec["allocator"]["peak_mb"] > 10 and rec["baseline"]["peak_mb"] > 10
    assert rec["lp"]["lp_bound"] >= rec["allocator"]["coverage"] - 1e-6
    phases = rec["allocator"]["peak_mb_by_phase"]
    assert {"load", "eligibility", "build", "results"} <= set(phases)
    assert raw["gap"][0]["gap_value"] == 261 and raw["gap"][0]["gap_feasible"] is True

    again = tmp_path / "again.md"  # the raw records re-render to the same report
    assert bench.main(["--render", str(tmp_path / "work" / "results.json"), "--out",
                       str(again)]) == 0
    assert again.read_text(encoding="utf-8") == md


def test_unknown_names_are_usage_errors():
    with pytest.raises(SystemExit) as exc:
        bench.main(["--sizes", "city-3k"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        bench.main(["--gap-sets", "gap99"])
    assert exc.value.code == 2


def test_child_timeout_is_killed_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "OUT", tmp_path)
    job = {"kind": "lpbound", "id": "t", "instance": str(tmp_path / "none"), "time_limit": 5}
    r = harness.run_child(job, timeout=0.01)
    assert r["timed_out"] is True and "wall timeout" in r["error"]
    r = harness.run_child(job, timeout=120)  # the instance does not exist: an error record
    assert "timed_out" not in r and "memory_capped" not in r
    assert r["error"] and r["peak_mb"] > 0
    monkeypatch.setattr(harness, "MEM_CAP_MB", 1.0)  # any Python process is above 1 MB
    r = harness.run_child(job, timeout=120)
    assert r["memory_capped"] is True and "memory cap" in r["error"]


def _rec(name, cov, qual, cost, secs, base=None, lp=None, check="ok", peak=500.0,
         triples=100_000, build=1.0):
    a = {"status": "optimal", "coverage": cov, "quality": qual, "cost": cost, "mip_gap": 1e-4,
         "total_seconds": secs, "peak_mb": peak,
         "counts": {"eligible_triples": triples}, "phase_seconds": {"build": build}}
    return {"name": name, "allocator": a, "baseline": base or {"skipped": "skipped (too slow)"},
            "lp": {"lp_bound": lp}, "check": {"check": check}}


def _verdicts(recs, gap_rows=()):
    return {row[0]: row[-1] for row in report.targets(recs, list(gap_rows))}


def test_values_equal_allows_twice_the_gap():
    base = {"status": "optimal", "coverage": 1000.0, "quality": 9e4, "cost": 5e6}
    same = {"status": "feasible", "coverage": 1000.0, "quality": 9e4 * (1 - 1.5e-4),
            "cost": 5e6 * (1 + 1.9e-4), "mip_gap": 1e-4}
    assert report.values_equal(same, base) == (True, "yes")
    worse = {**same, "coverage": 990.0}
    ok, text = report.values_equal(worse, base)
    assert ok is False and "cov -1.000%" in text
    assert report.values_equal({"status": "no_solution"}, base) == (None, "-")


def test_city_and_province_verdicts():
    base = {"status": "optimal", "coverage": 10.0, "quality": 800.0, "cost": 1e5,
            "total_seconds": 100.0}
    fast = _rec("city-2k", 10.0, 800.0, 1e5, 19.9, base=base)
    assert _verdicts([fast])["City"] == "PASS"
    slow = _rec("city-2k", 10.0, 800.0, 1e5, 20.1, base=base)
    assert _verdicts([slow])["City"] == "FAIL"
    wrong = _rec("city-2k", 9.0, 800.0, 1e5, 1.0, base=base)
    assert _verdicts([wrong])["City"] == "FAIL"

    prov = _rec("province-100k", 995.0, 0, 0, 200.0, lp=1000.0, peak=4096.0)
    assert _verdicts([prov])["Province"] == "PASS"
    assert _verdicts([{**prov, "check": {"check": "FAIL (exit 1)"}}])["Province"] == "FAIL"
    low = _rec("province-100k", 985.0, 0, 0, 200.0, lp=1000.0)
    assert _verdicts([low])["Province"] == "FAIL"
    late = _rec("province-100k", 995.0, 0, 0, 301.0, lp=1000.0)
    assert _verdicts([late])["Province"] == "FAIL"
    big = _rec("province-100k", 995.0, 0, 0, 200.0, lp=1000.0, peak=9000.0)
    assert _verdicts([big])["Province"] == "FAIL"
    assert _verdicts([])["Province"] == "not run"


def test_build_and_gap_verdicts():
    recs = [_rec("a", 1, 1, 1, 1, triples=1_000, build=1.0),  # small: ignored once large exist
            _rec("b", 1, 1, 1, 1, triples=400_000, build=7.0)]
    assert _verdicts(recs)["Model build"] == "PASS"
    recs[1]["allocator"]["phase_seconds"]["build"] = 9.0
    assert _verdicts(recs)["Model build"] == "FAIL"

    rows = [{"set": "gap1", "problem": 1, "above_optimum": 0.0, "seconds": 2.0,
             "target_seconds": 10.0},
            {"set": "gapd", "problem": 1, "above_optimum": 0.009, "seconds": 59.0,
             "target_seconds": 60.0}]
    v = _verdicts([], rows)
    assert v["OR-Library GAP"] == "PASS (partial run)" and v["OR-Library gapd"] == "PASS"
    rows[0]["above_optimum"] = 1 / 261
    rows[1]["above_optimum"] = 0.011
    v = _verdicts([], rows)
    assert v["OR-Library GAP"] == "FAIL" and v["OR-Library gapd"] == "FAIL"


def _city(name, suite, alloc, base, **extra):
    return {"name": name, "suite": suite, "enterprises": 1_500, "agencies": 30,
            "districts": 8, "allocator": alloc, "baseline": base, **extra}


def test_hidden_city_verdict_needs_the_values_and_five_times_the_speed_on_every_city():
    base = {"status": "optimal", "coverage": 10.0, "quality": 800.0, "cost": 1e5,
            "total_seconds": 100.0, "mip_gap": 1e-4}
    fast = {**base, "total_seconds": 19.0}
    assert _verdicts([_city("h1", "hidden", fast, base)])["Hidden cities"] == "PASS"
    slow = {**base, "total_seconds": 21.0}
    recs = [_city("h1", "hidden", fast, base), _city("h2", "hidden", slow, base)]
    assert _verdicts(recs)["Hidden cities"] == "FAIL"
    worse = {**fast, "quality": 790.0}
    assert _verdicts([_city("h1", "hidden", worse, base)])["Hidden cities"] == "FAIL"
    # the baseline at its cap, unproven: a better plan 10x faster passes, a worse one not
    capped = {**base, "status": "feasible", "total_seconds": 600.0,
              "levels": [{"name": "coverage", "status": "optimal"},
                         {"name": "quality", "status": "feasible"}]}
    better = {**base, "quality": 810.0, "total_seconds": 60.0}
    assert _verdicts([_city("h1", "hidden", better, capped)])["Hidden cities"] == "PASS"
    assert _verdicts([_city("h1", "hidden", {**better, "quality": 790.0}, capped)])[
        "Hidden cities"] == "FAIL"
    assert report.speedup(better, capped)[1] == ">= 10.0x"


def test_demo_large_and_backend_verdicts():
    run = {"status": "optimal", "coverage": 5776.0, "quality": 1.0, "cost": 1.0,
           "total_seconds": 50.0, "levels": [{"name": "coverage", "status": "optimal",
                                              "seconds": 20.0}]}
    assert _verdicts([_city("k_city", "demo", run, {})])["Demo"] == "PASS"
    assert _verdicts([_city("k_city", "demo", {**run, "coverage": 5775.0}, {})])[
        "Demo"] == "FAIL"

    def large(gap_cov, gap_qual, n=5_000):
        a = {"status": "feasible", "total_seconds": 60.0, "levels": [
            {"name": "coverage", "gap": gap_cov}, {"name": "quality", "gap": gap_qual}]}
        return {**_city("other-5k", "large", a, {"skipped": "x"}), "enterprises": n}

    assert _verdicts([large(9e-5, 9e-4)])["Large: other-5k"] == "PASS"
    assert _verdicts([large(2e-4, 9e-4)])["Large: other-5k"] == "FAIL"
    assert _verdicts([large(9e-5, 2e-3)])["Large: other-5k"] == "FAIL"
    assert _verdicts([large(None, 9e-4)])["Large: other-5k"] == "FAIL"
    assert _verdicts([large(1e-2, 1e-2, n=20_000)])["Large: other-5k"] == "reported"
    # the rules suite is judged as the large one, under its own name
    ruled = {**large(9e-5, 2e-3), "name": "rules-5k-ratio", "suite": "rules"}
    assert _verdicts([ruled])["Rules: rules-5k-ratio"] == "FAIL"
    assert _verdicts([{**ruled, **{"allocator": large(9e-5, 9e-4)["allocator"]}}])[
        "Rules: rules-5k-ratio"] == "PASS"


def test_the_rules_suite_switches_its_rule_on(tmp_path):
    """Each rules case is an othergen city with its one rule written into policy.yaml."""
    import yaml

    from benchmarks import suites

    every = suites.cases()
    ruled = [c for c in every.values() if c.suite == "rules"]
    assert len(ruled) == 2 * len(suites.RULES)
    case = every["rules-1500-districts"]
    folder = case.make(tmp_path / "city")
    policy = yaml.safe_load((folder / "policy.yaml").read_text(encoding="utf-8"))
    assert policy["anti_monopoly"]["max_districts_per_agency"] == 2
    assert (folder / "demands.csv").exists()

    ref = {"status": "optimal", "coverage": 10.0, "quality": 800.0, "cost": 1e5,
           "total_seconds": 2.0}
    good = {**ref, "total_seconds": 5.0}
    short = {**ref, "status": "feasible", "quality": 780.0}
    rec = {**_city("b120", "backends", good, ref), "allocator:highs": good,
           "allocator:cbc": short}
    v = _verdicts([rec])
    assert v["Backend highs"] == "PASS" and v["Backend cbc"] == "FAIL"


@pytest.mark.slow
def test_city_suite(tmp_path):
    """The real city suite (1,000 and 2,000 enterprises) against the baseline: slow."""
    out = tmp_path / "results.md"
    assert bench.main(["--suite", "city", "--out", str(out), "--work", str(tmp_path)]) == 0
    md = out.read_text(encoding="utf-8")
    header = _header(md, "instance")
    for name in ("city-1k", "city-2k"):
        row = dict(zip(header, _row(md, name), strict=True))
        assert row["status"] in ("optimal", "feasible")
        assert row["check"] in ("ok", "check unavailable")
    raw = json.loads((tmp_path / "results.json").read_text())
    city = {r["name"]: r for r in raw["instances"]}["city-2k"]
    a, b = city["allocator"], city["baseline"]
    if a["status"] == "optimal" and b.get("status") == "optimal":
        assert report.values_equal(a, b)[0] is True  # both proven: same three level values
    assert _row(md, "City")[-1] in ("PASS", "FAIL")


@pytest.mark.parametrize("script", sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")
    if p.stem != "__init__"))
def test_every_benchmark_script_imports(script):
    """Each script is run on its own (python -m benchmarks.NAME): when run.py was split,
    frontier_bench and batch_scaling still imported from it and no test noticed."""
    import importlib

    module = importlib.import_module(f"benchmarks.{script}")
    assert module.__name__ == f"benchmarks.{script}"


def test_large_lp_bound_bounds_the_served_weight():
    """The province row's LP bound (the large path's class LP, called by benchmarks/jobs.py)
    once failed on an import moved by the large_scale split, and the Province target read
    FAIL for want of a bound; on instances/tiny it must bound the optimum (42)."""
    from allocator.data.validation import load_instance
    from allocator.eligibility import compute_eligibility
    from benchmarks.jobs import large_lp_bound

    inst = load_instance(Path(__file__).resolve().parents[1] / "instances" / "tiny")
    out = large_lp_bound(inst, compute_eligibility(inst), 30.0)
    assert out["lp_status"] == "Optimal (relaxation)"
    assert out["lp_bound"] >= 42.0 - 1e-6


def test_the_frontier_benchmark_runs_the_before_side_in_its_own_tree(tmp_path):
    """`python -m` puts the working folder before PYTHONPATH on the path: the --before side
    once ran this tree's code from this tree's folder and the before/after compared a tree
    with itself. It runs in the other tree now, and that tree comes first on the path."""
    import os
    import subprocess

    from benchmarks.frontier_bench import allocator_cmd

    other = tmp_path / "other"
    (other / "allocator" / "cli").mkdir(parents=True)
    (other / "allocator" / "__init__.py").write_text("")
    (other / "allocator" / "cli" / "__init__.py").write_text("")
    (other / "allocator" / "cli" / "__main__.py").write_text("print(__file__)\n")
    cmd, env, cwd = allocator_cmd(other)
    assert cwd == other.resolve()
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(other.resolve())
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(other.resolve()))
