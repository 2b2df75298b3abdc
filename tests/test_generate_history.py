"""`allocator generate --history`: last year's plan and the agencies' evaluations that fit the
instance, deterministic by seed, leaving the other tables as without --history, and a next
year (after evaluate) that still has a plan."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import allocator
from allocator.cli import main
from allocator.data.generate import generate_instance
from allocator.data.policy import SCORERS


@pytest.mark.parametrize("seed", [0, 5])
def test_history_fits_the_instance(seed):
    data = generate_instance(400, 15, 4, seed, history=True)
    plain = generate_instance(400, 15, 4, seed)
    for name in ("districts", "enterprises", "demands", "agencies", "bids", "quotes"):
        pd.testing.assert_frame_equal(data[name], plain[name])
    inc, ev = data["incumbents"], data["evaluations"]
    dem = set(zip(data["demands"]["enterprise_id"], data["demands"]["service_id"], strict=True))
    assert set(zip(inc["enterprise_id"], inc["service_id"], strict=True)) <= dem
    assert 0.5 * len(dem) < len(inc) < 0.8 * len(dem)
    assert not inc.duplicated(["enterprise_id", "service_id"]).any()
    assert set(inc["agency_id"]) <= set(data["agencies"]["agency_id"])
    assert inc["years"].between(1, 4).all()
    assert set(ev["agency_id"]) == set(inc["agency_id"])  # every agency that served is scored
    assert set(ev["scorer"]) <= set(SCORERS) and ev["score"].between(0, 100).all()
    frames = {k: v for k, v in data.items() if k != "policy"}
    inst = allocator.instance_from_frames(frames, data["policy"])
    assert [w for w in inst.warnings if w.file in ("incumbents.csv", "evaluations.csv")] == []
    again = generate_instance(400, 15, 4, seed, history=True)
    pd.testing.assert_frame_equal(again["evaluations"], ev)


@pytest.mark.slow  # the README's three-year example (tests/test_year_readme.py) runs the same path
def test_cli_history_and_next_year_has_a_plan(tmp_path):
    y1 = tmp_path / "y1"
    res = CliRunner().invoke(main, ["generate", "--enterprises", "150", "--agencies", "10",
                                    "--districts", "2", "--seed", "3", "--history", str(y1)])
    assert res.exit_code == 0, res.output
    assert (y1 / "incumbents.csv").is_file() and (y1 / "evaluations.csv").is_file()
    for args in (["solve", str(y1), "--out", str(tmp_path / "r1"), "--time-limit", "20"],
                 ["evaluate", str(y1), "--results", str(tmp_path / "r1"), "--out",
                  str(tmp_path / "y2")],
                 ["solve", str(tmp_path / "y2"), "--out", str(tmp_path / "r2"),
                  "--time-limit", "20"],
                 ["check", str(tmp_path / "y2"), str(tmp_path / "r2")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, (args, res.output)
