"""A cap on the districts per agency on large models: activity over one row per agency and
district (model/build.py, TIGHT_ACTIVITY_MAX_TRIPLES) is exact, and the first plan from each
agency's districts chosen first (pipeline/district_pairs.py) keeps every rule."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from bruteforce import brute_force, evaluate
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
from allocator.pipeline.class_path import exact_model
from allocator.pipeline.district_pairs import (
    cap_binds,
    dive_pairs,
    next_pairs,
    pairs_start,
    widen,
)
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


def capped_city(folder: Path, *shape: int) -> Path:
    """A generated city (enterprises, agencies, districts, seed) with the cap at CAP."""
    path = folder / "city"
    n, m, d, seed = shape
    write_generated(generate_instance(n, m, d, seed=seed), path)
    policy = path / "policy.yaml"
    policy.write_text(policy.read_text().replace("max_districts_per_agency: null",
                                                 f"max_districts_per_agency: {CAP}"))
    return path


@PROPERTY
@given(tiny_instances(), st.sampled_from([1, 2]))
def test_the_pairs_bound_and_plan_hold_against_the_brute_force(case, cap):
    """On a capped tiny city: the pair MIP's bound is at least the brute force's best served
    weight (it bounds every plan), and the plan on the chosen pairs keeps every rule (the
    brute force's own judge) and serves no more than that best."""
    policy = case["policy_changes"]
    case = {**case, "policy_changes": {**policy, "anti_monopoly": {
        **policy["anti_monopoly"], "max_districts_per_agency": cap}}}
    with tempfile.TemporaryDirectory() as work:
        path = write_instance(Path(work) / "instance", **case)
        inst = load_instance(path)
        elig = compute_eligibility(inst)
        bf = brute_force(inst)
        chosen = pairs_start(inst, elig, get_backend("highs"), 10.0, 1)
        if not bf.feasible:
            assert chosen.plan is None
            return
        if chosen.bound is not None:
            assert chosen.bound >= bf.coverage - 1e-6
        if chosen.plan is not None:
            judged = evaluate(inst, chosen.plan.itertuples(index=False, name=None))
            assert judged.ok, (judged.ineligible, judged.broken)
            assert judged.coverage <= bf.coverage + 1e-6


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Path:
    """A generated city where agencies are eligible in more districts than CAP."""
    return capped_city(tmp_path_factory.mktemp("pairs"), 300, 12, 4, 4)


@pytest.fixture(scope="module")
def capped_tight(tmp_path_factory) -> Path:
    """A capped city where holding a round's pairs all at once leaves the LP without a
    point (the dive takes them back by halves)."""
    return capped_city(tmp_path_factory.mktemp("pairs_tight"), 600, 16, 5, 3)


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


def test_next_pairs_holds_the_most_active_district_of_the_most_decided_agencies() -> None:
    agency = np.array(["A", "A", "A", "B", "B", "C", "C", "D"])
    activity = np.array([0.2, 0.7, 0.1, 0.5, 0.5, 0.9, 0.0, 0.0])
    held = np.zeros(8, dtype=bool)
    # slot 0, last round: every agency with some activity gets its most active pair; D
    # (no activity) none; B's tie goes to its first pair
    assert sorted(next_pairs(agency, activity, held, 0, 1, 2)) == [1, 3, 5]
    # two rounds left: the more active half first (C 0.9, A 0.7)
    assert sorted(next_pairs(agency, activity, held, 0, 2, 2)) == [1, 5]
    # slot 1: only agencies holding one pair, never a pair already held, never one unused
    held[[1, 5]] = True
    assert sorted(next_pairs(agency, activity, held, 1, 1, 2)) == [0]
    held[[3]] = True
    assert sorted(next_pairs(agency, activity, held, 1, 1, 2)) == [0, 4]


@pytest.mark.parametrize("city", ["capped", "capped_tight"])
def test_the_dive_holds_at_most_the_cap_of_districts_the_lp_uses(city: str, request) -> None:
    """dive_pairs: at most CAP districts per agency, each eligible for it, and the LP of
    the served-weight model with every chosen pair held open (active >= 1) has a point
    serving within 1 % of the LP without the cap's choice made; on the tight city after
    taking back batches the LP could not keep."""
    inst = load_instance(request.getfixturevalue(city))
    elig = compute_eligibility(inst)
    backend = get_backend("highs")
    taken_back: list[int] = []
    real_open = backend.open

    def counting_open(*args, **kwargs):
        session = real_open(*args, **kwargs)
        truncate = session.truncate_rows
        session.truncate_rows = lambda n: (taken_back.append(n), truncate(n))
        return session

    with mock.patch.object(backend, "open", counting_open):
        chosen = dive_pairs(inst, elig, backend, 20.0, 1)
    assert chosen is not None and len(chosen.pairs)
    pairs = chosen.pairs
    assert bool(taken_back) == (city == "capped_tight")
    assert (pairs.groupby("agency_id").size() <= CAP).all()
    assert not pairs.duplicated().any()
    t = elig.triples
    eligible = set(zip(t["agency_id"].astype(str), t["district_id"].astype(str),
                       strict=True))
    assert set(zip(pairs["agency_id"], pairs["district_id"], strict=True)) <= eligible
    # the LP with the pairs held is feasible, and only agencies it used hold any
    model, _ = exact_model(inst, elig, backend)
    assert model.active is not None
    lp = model.lp.relaxed()
    held = model.active.assign(agency_id=model.active["agency_id"].astype(str),
                               district_id=model.active["district_id"].astype(str)).merge(
        pairs, on=["agency_id", "district_id"])["col"].to_numpy()
    lb = lp.lb
    assert len(held) == len(pairs) and (lb[held] == 0).all()
    session = backend.open(lp, 1, 0)
    for k in held:
        session.add_row("held", np.array([k]), np.ones(1), 1.0, np.inf)
    session.set_objective(model.levels[0].coefs, "max")
    res = session.solve(20.0, 0.0, None)
    assert res.x is not None and res.objective is not None
    free = backend.open(model.lp.relaxed(), 1, 0)
    free.set_objective(model.levels[0].coefs, "max")
    whole = free.solve(20.0, 0.0, None).objective
    # the pairs the LP uses most lose little: 0.9949 of the LP's served weight on `capped`,
    # where holding each agency's least used pairs instead keeps 0.9917 (HiGHS, one thread)
    assert whole is not None and res.objective >= 0.993 * whole


def test_relaxed_model_is_continuous_and_its_own(capped: Path) -> None:
    inst = load_instance(capped)
    model = build.build_model(inst, compute_eligibility(inst))
    lp = model.lp
    relaxed = lp.relaxed()
    assert lp.integer.any() and not relaxed.integer.any()
    assert relaxed.n_vars == lp.n_vars and relaxed.n_rows == lp.n_rows
    assert (relaxed.matrix() != lp.matrix()).nnz == 0
    before = lp.row_hi.copy()
    relaxed.set_row_bounds(np.array([0]), hi=-123.0)
    assert relaxed.row_hi[0] == -123.0
    assert np.array_equal(lp.row_hi, before)  # the model relaxed is left as it was
    assert lp.integer.any()
    keep = np.flatnonzero(lp.integer)[:3]
    some = lp.relaxed(keep=np.concatenate([keep, np.flatnonzero(~lp.integer)[:2]]))
    assert np.array_equal(np.flatnonzero(some.integer), keep)  # continuous ones stay so


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


@pytest.mark.parametrize("route", ["dive", "least cost"])
def test_the_first_plan_keeps_every_rule(capped: Path, route: str) -> None:
    """pairs_start's plan: eligible rows, at most CAP districts per agency, every mandatory
    demand served, and a warm start the solve accepts (it breaks no rule); from the dive's
    pairs, and from the least-cost plan's where the dive gives none."""
    inst = load_instance(capped)
    elig = compute_eligibility(inst)
    calls = {"any_plan": 0}
    real_any_plan = district_pairs.any_plan

    def any_plan(*args):
        calls["any_plan"] += 1
        return real_any_plan(*args)

    with mock.patch.object(district_pairs, "any_plan", any_plan), \
            mock.patch.object(district_pairs, "dive_pairs",
                              district_pairs.dive_pairs if route == "dive"
                              else lambda *args: None):
        start = pairs_start(inst, elig, get_backend("highs"), 8.0, 1).plan
    assert calls["any_plan"] == (route != "dive")
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
    # the pair MIP's bound reaches the coverage level's report
    said = re.search(r"served weight is at most ([\d,.]+)", res.stderr)
    assert said is not None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coverage"] > 0
    a = pd.read_csv(out / "assignments.csv", encoding="utf-8-sig", dtype=str)
    assert (districts_per_agency(a) <= CAP).all()
    assert run_check(capped, out) == []
    assert np.isfinite(summary["coverage"])
    coverage = next(lv for lv in summary["levels"] if lv["name"] == "coverage")
    assert coverage["bound"] <= float(said.group(1).replace(",", "")) + 0.01


def test_the_pairs_bound_is_handed_to_the_coverage_level(capped: Path) -> None:
    """solve_instance gives the pair MIP's bound to the lexicographic solve as the coverage
    level's known bound (it reports the better bound and stops at its target)."""
    inst = load_instance(capped)
    seen: list[dict | None] = []
    real = solve.solve_lexicographic

    def recording(*args, **kwargs):
        seen.append(kwargs.get("known_bounds"))
        return real(*args, **kwargs)

    chosen = district_pairs.PairsStart(None, 12_345.0)
    with mock.patch.object(solve, "PAIRS_MIN_TRIPLES", 0), \
            mock.patch.object(solve, "pairs_start", lambda *args: chosen), \
            mock.patch.object(solve, "solve_lexicographic", recording):
        solve.solve_instance(inst, time_limit=5.0)
    assert seen == [{"coverage": 12_345.0}]


@pytest.mark.parametrize("serves_more", [True, False])
def test_the_pair_mips_pairs_replace_the_dives_only_where_they_serve_as_much(
        capped: Path, serves_more: bool) -> None:
    """dive_pairs keeps the pair MIP's pairs where its plan (assignments fractional) serves
    at least the dive's last LP, else the dive's own; the bound is never above the LP's."""
    inst = load_instance(capped)
    elig = compute_eligibility(inst)
    backend = get_backend("highs")
    with mock.patch.object(district_pairs, "pair_mip", lambda *args: (None, None, None)):
        dive = dive_pairs(inst, elig, backend, 20.0, 1)  # the dive's own pairs
    assert dive is not None and len(dive.pairs) >= 2

    def one_pair(model, *args):
        mask = np.zeros(len(model.active), dtype=bool)
        mask[0] = True
        return mask, (1e12 if serves_more else -1.0), 1e12

    with mock.patch.object(district_pairs, "pair_mip", one_pair):
        chosen = dive_pairs(inst, elig, backend, 20.0, 1)
    assert chosen is not None
    if serves_more:
        assert len(chosen.pairs) == 1
    else:
        pd.testing.assert_frame_equal(chosen.pairs, dive.pairs)
    assert chosen.bound is not None and chosen.bound < 1e12  # the LP's, not 1e12
