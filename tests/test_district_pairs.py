"""A cap on the districts per agency on large models: activity over one row per agency and
district (model/build.py, TIGHT_ACTIVITY_MAX_TRIPLES) is exact, and the first plan from each
agency's districts chosen first (pipeline/district_pairs.py) keeps every rule."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from instance_builder import run_check, solve_folder, write_instance
from test_properties import PROPERTY, matches_brute_force, tiny_instances

from allocator.cli import main
from allocator.data.generate import generate_instance
from allocator.data.generate import write_instance as write_generated
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.model import build
from allocator.pipeline import district_pairs, solve
from allocator.pipeline.district_pairs import cap_binds, pairs_start, widen
from allocator.solvers import get_backend

CAP = 2


@PROPERTY
@given(tiny_instances(), st.sampled_from([1, 2]))
def test_one_activity_row_per_pair_keeps_the_optimum(case, cap):
    """With the aggregated activity rows (sum x <= members x active per agency and district)
    a capped tiny city's levels are the brute force's."""
    policy = case["policy_changes"]
    case = {**case, "policy_changes": {**policy, "anti_monopoly": {
        **policy["anti_monopoly"], "max_districts_per_agency": cap}}}
    with tempfile.TemporaryDirectory() as work, \
            mock.patch.object(build, "TIGHT_ACTIVITY_MAX_TRIPLES", 0):
        path = write_instance(Path(work) / "instance", **case)
        inst = load_instance(path)
        m = build.build_model(inst, compute_eligibility(inst))
        names = [b.name for b in m.lp.row_blocks]
        if m.active is not None:  # the aggregated form: one row per agency and district
            block = next(b for b in m.lp.row_blocks if b.name == "active_if_serving")
            assert block.size == len(m.active)
        assert "active_if_serving" in names or m.active is None
        matches_brute_force(solve_folder(path, Path(work)))


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Path:
    """A generated city where agencies are eligible in more districts than CAP."""
    path = tmp_path_factory.mktemp("pairs") / "city"
    write_generated(generate_instance(300, 12, 4, seed=4), path)
    policy = path / "policy.yaml"
    policy.write_text(policy.read_text().replace("max_districts_per_agency: null",
                                                 f"max_districts_per_agency: {CAP}"))
    return path


def districts_per_agency(a: pd.DataFrame) -> pd.Series:
    return a.groupby("agency_id")["district_id"].nunique()


def test_cap_binds_only_where_an_agency_has_more_districts(capped: Path) -> None:
    inst = load_instance(capped)
    elig = compute_eligibility(inst)
    assert cap_binds(inst, elig)
    most = int(elig.triples.groupby("agency_id", observed=True)["district_id"].nunique().max())
    loose = load_instance(capped, overrides={"anti_monopoly": {"max_districts_per_agency": most}})
    assert not cap_binds(loose, compute_eligibility(loose))
    free = load_instance(capped, overrides={"anti_monopoly": {"max_districts_per_agency": None}})
    assert not cap_binds(free, compute_eligibility(free))


def test_widen_gives_each_agency_its_best_districts_up_to_the_cap(capped: Path) -> None:
    inst = load_instance(capped)
    t = compute_eligibility(inst).triples
    values = district_pairs.pair_values(inst, t)
    a0 = values["agency_id"].iloc[0]
    own = values[values["agency_id"] == a0]
    used = own.nsmallest(1, "value")[["agency_id", "district_id"]]  # its worst district
    pairs = widen(inst, t, used)
    mine = pairs[pairs["agency_id"] == a0]
    assert len(mine) == min(CAP, len(own))
    assert used["district_id"].iloc[0] in set(mine["district_id"])  # the plan's pair stays
    best = own.drop(used.index).nlargest(CAP - 1, "value")["district_id"]
    assert set(best) <= set(mine["district_id"])
    assert (pairs.groupby("agency_id").size() <= CAP).all()
    # agencies not in the plan get their CAP best districts
    other = values[values["agency_id"] != a0]
    top = other.sort_values("value", ascending=False).groupby("agency_id").head(CAP)
    got = pairs[pairs["agency_id"] != a0]
    assert set(zip(got["agency_id"], got["district_id"], strict=True)) == set(
        zip(top["agency_id"], top["district_id"], strict=True))


def test_the_first_plan_keeps_every_rule(capped: Path) -> None:
    """pairs_start's plan: eligible rows, at most CAP districts per agency, every mandatory
    demand served, and a warm start the solve accepts (it breaks no rule)."""
    inst = load_instance(capped)
    elig = compute_eligibility(inst)
    start = pairs_start(inst, elig, get_backend("highs"), 8.0, 1)
    assert start is not None and len(start)
    rows = elig.triples.assign(**{c: elig.triples[c].astype(str) for c in
                                  ("enterprise_id", "service_id", "agency_id", "district_id")})
    a = start.merge(rows, on=["enterprise_id", "service_id", "agency_id"])
    assert len(a) == len(start)  # every row eligible
    assert not a.duplicated(["enterprise_id", "service_id"]).any()
    assert (districts_per_agency(a) <= CAP).all()
    mandatory = rows[rows["risk_level"].isin(inst.policy.mandatory_levels)]
    assert set(mandatory["demand"]) <= set(a["demand"])
    res = solve.solve_instance(inst, time_limit=3.0, start=start)
    assert res.summary["coverage"] >= float(
        a["weight"].sum()) - 1e-6  # the solve kept the start or found better


def test_cli_on_a_large_capped_city_starts_from_chosen_districts(capped: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    with mock.patch.object(solve, "PAIRS_MIN_TRIPLES", 0):
        res = CliRunner().invoke(main, ["solve", str(capped), "--out", str(out),
                                        "--time-limit", "10"])
    assert res.exit_code == 0, res.output
    assert "choosing each agency's districts first" in res.stderr
    assert "warm start: a plan on the districts chosen first" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coverage"] > 0
    a = pd.read_csv(out / "assignments.csv", encoding="utf-8-sig", dtype=str)
    assert (districts_per_agency(a) <= CAP).all()
    assert run_check(capped, out) == []
    assert np.isfinite(summary["coverage"])
