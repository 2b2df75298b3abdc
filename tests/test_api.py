"""The public Python API: what `import allocator` gives, that it loads no command-line or
plotting package, that the README's example runs as written, and that errors are allocator's
own narrow exceptions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import allocator
from allocator.core.errors import (
    AllocatorError,
    InputError,
    OutputPathError,
    SolverError,
    UnknownSolver,
    UsageError,
)

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "instances" / "tiny"


def test_import_and_solve_load_no_click_tqdm_or_matplotlib():
    code = ("import allocator, sys; allocator.solve(allocator.load_instance('instances/tiny')); "
            "print('click' in sys.modules, 'tqdm' in sys.modules, "
            "'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False False False"  # nothing else on stdout either


def test_every_public_name_resolves():
    for name in allocator.__all__:
        assert getattr(allocator, name) is not None, name
    with pytest.raises(AttributeError):
        allocator.no_such_name  # noqa: B018


def test_load_is_the_short_name_of_load_instance():
    # the brief's public API says allocator.load; it must be the very same reader
    assert allocator.load is allocator.load_instance
    assert "load" in allocator.__all__ and "load" in dir(allocator)
    assert len(allocator.load(TINY).demands) == len(allocator.load_instance(TINY).demands)


def test_readme_python_example_runs_as_written(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README.md has no python example under '## Python'"
    out = subprocess.run([sys.executable, "-c", block.group(1)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(REPO), "ALLOCATOR_REPO": str(REPO),
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]


def test_plan_object_matches_its_summary_and_files(tmp_path):
    plan = allocator.solve(allocator.load_instance(TINY))
    assert plan.status is allocator.Status.OPTIMAL and plan.has_plan
    s = plan.summary()
    assert (plan.coverage, plan.quality, plan.cost) == (s["coverage"], s["quality"], s["cost"])
    assert plan.assignments["weight"].sum() == pytest.approx(plan.coverage)
    assert [lv["name"] for lv in plan.levels] == ["coverage", "quality", "cost"]
    assert plan.diagnosis is None
    s["coverage"] = -1  # a copy: the plan is not changed through it
    assert plan.coverage != -1
    out = plan.write(tmp_path / "res")
    written = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert written["coverage"] == plan.coverage
    assert allocator.audit(TINY, out).violations == []


def test_infeasible_plan_carries_its_diagnosis():
    plan = allocator.solve(allocator.load_instance(TINY, budget=1000))
    assert plan.status is allocator.Status.INFEASIBLE and not plan.has_plan
    assert plan.diagnosis is not None and "budget" in set(plan.diagnosis["rule"])
    report = allocator.diagnose(allocator.load_instance(TINY, budget=1000))
    assert report.outcome == "infeasible" and report.least_budget > 1000
    assert any("budget" in r for r in report.reasons)


def test_instance_from_frames_is_checked_like_a_folder():
    frames = {name: pd.read_csv(TINY / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("districts", "services", "enterprises", "demands", "agencies",
                           "bids", "quotes", "conflicts")}
    import yaml

    policy = yaml.safe_load((TINY / "policy.yaml").read_text(encoding="utf-8"))
    inst = allocator.instance_from_frames(frames, policy, name="tiny")
    folder = allocator.load_instance(TINY)
    a, b = allocator.solve(inst), allocator.solve(folder)
    assert (a.coverage, a.quality, a.cost) == (b.coverage, b.quality, b.cost)
    bad = dict(frames)
    bad["agencies"] = frames["agencies"].assign(status="inactive")
    with pytest.raises(InputError) as exc:
        allocator.instance_from_frames(bad, policy)
    assert all(p.file == "agencies.csv" for p in exc.value.problems)
    assert len(exc.value.problems) == len(frames["agencies"])  # every bad row at once


def test_errors_are_allocators_own():
    inst = allocator.load_instance(TINY)
    with pytest.raises(UnknownSolver) as exc:
        allocator.solve(inst, solver="gurobi")
    assert isinstance(exc.value, SolverError) and isinstance(exc.value, AllocatorError)
    with pytest.raises(UsageError):
        allocator.solve(inst, time_limit=float("nan"))
    with pytest.raises(UsageError):
        allocator.sweep(inst, "1:x")
    with pytest.raises(InputError):
        allocator.load_instance(REPO / "no-such-folder")
    with pytest.raises(UsageError):
        allocator.generate(10, 2, 1, seed=1)


def test_plan_write_never_replaces_a_users_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a year of work")
    plan = allocator.solve(allocator.load_instance(TINY))
    with pytest.raises(OutputPathError):
        plan.write(mine)
    assert (mine / "notes.txt").read_text() == "a year of work"
    with pytest.raises(OutputPathError):
        plan.write(TINY)  # an input is never an output
    plan.write(tmp_path / "res")
    plan.write(tmp_path / "res")  # its own results may be replaced


def test_generate_returns_a_checked_instance(tmp_path):
    inst = allocator.generate(40, 6, 2, seed=3)
    assert len(inst.enterprises) == 40 and len(inst.agencies) == 6
    written = allocator.generate(40, 6, 2, seed=3, out=tmp_path / "city")
    assert written.sha256 and (tmp_path / "city" / "policy.yaml").is_file()
    for table in ("districts", "enterprises", "demands", "agencies", "bids", "quotes"):
        pd.testing.assert_frame_equal(getattr(written, table), getattr(inst, table),
                                      check_dtype=False, obj=table)
    assert written.policy == inst.policy
