"""Input edges, number options, accepted ranges and formula-safe files (issue 17, items 5-7).

Each case gives a clear answer (exit 2 naming file, row and column, or a plan), never a
traceback; summary.json is strict JSON; no result cell reaches a spreadsheet as a formula and
`check` reads every id back as it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TINY, write_instance_files

from allocator.cli import main
from allocator.core.tables import FORMULA_START, read_csv
from allocator.data.limits import MAX_MONEY, MAX_WEIGHT


def cli(*args: str):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output + r.stderr
    return r


def refused(r, *needles: str) -> None:
    assert r.exit_code == 2, r.stdout + r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


# ----------------------------------------------------------------------------------------------
# line ends, YAML
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_cr_only_and_crlf_line_ends_read_like_lf(end, tmp_path):
    lf = write_instance_files(tmp_path / "lf")
    other = write_instance_files(tmp_path / "other", **{
        f[:-4] if f.endswith(".csv") else "policy": TINY[f].replace("\n", end).encode()
        for f in TINY})
    a = cli("solve", lf, "--out", tmp_path / "r1", "--quiet")
    b = cli("solve", other, "--out", tmp_path / "r2", "--quiet")
    assert a.exit_code == b.exit_code == 0, b.stderr
    for f in ("assignments.csv", "unserved.csv"):
        assert (tmp_path / "r1" / f).read_bytes() == (tmp_path / "r2" / f).read_bytes()


POLICY_CASES = {
    "deep nesting": ("budget: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than"),
    "deep block nesting": ("budget:\n" + "".join("  " * (i + 1) + f"k{i}:\n"
                                                 for i in range(60)) + "\n", "nested more than"),
    "sexagesimal": ("budget:\n  total: 1:30\n", "'1:30'"),
    "billion laughs": ("budget: {total: 1000}\na0: &a0 [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 8)),
        "aliases"),
    "python tag": ("budget: {total: !!python/object/apply:os.system [echo hi]}\n",
                   "not readable YAML"),
    "tabs": ("budget:\n\ttotal: 100\n", "tabs"),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_pathological_policy_gets_a_clear_answer(case, tmp_path):
    text, needle = POLICY_CASES[case]
    inst = write_instance_files(tmp_path / "inst", policy=text)
    refused(cli("validate", inst), "policy.yaml", needle)


def test_yaml_numbers_are_read_as_yaml_1_2(tmp_path):
    from allocator.data.reading import load_yaml

    problems: list = []
    got = load_yaml("a: 010\nb: 1_000\nc: 0x10\nd: 1e6\ne: 2027-01-01\nf: 1:30\ng: .5\n",
                    "x.yaml", problems)
    assert problems == []
    assert got == {"a": 10, "b": 1000, "c": 16, "d": 1e6, "e": "2027-01-01", "f": "1:30",
                   "g": 0.5}


def test_merge_keys_work_in_a_scenarios_file(tmp_path):
    from allocator.data.validation import load_instance
    from allocator.whatif.compare import load_scenarios

    inst = load_instance(write_instance_files(tmp_path / "inst"))
    sc = tmp_path / "sc.yaml"
    sc.write_text("scenarios:\n  base: &base {quality: {min_score: 70}}\n"
                  "  richer:\n    <<: *base\n    budget: {total: 90000}\n")
    items, problems = load_scenarios(sc, inst.policy)
    assert [p for p in problems if p.severity == "error"] == []
    assert [s.name for s in items] == ["base", "richer"]
    assert items[1].policy.min_score == 70 and items[1].policy.budget_total == 90000


def test_a_key_given_twice_is_refused(tmp_path):
    inst = write_instance_files(tmp_path / "inst",
                                policy="budget:\n  total: 1\n  total: 2\n")
    refused(cli("validate", inst), "appears twice")


# ----------------------------------------------------------------------------------------------
# files that exist but cannot be read
# ----------------------------------------------------------------------------------------------

def _dangling(p: Path) -> None:
    p.symlink_to(p.with_name("gone.csv"))


def _folder(p: Path) -> None:
    p.mkdir()


def _fifo(p: Path) -> None:
    os.mkfifo(p)


@pytest.mark.parametrize("make,needle", [(_dangling, "does not exist"),
                                         (_folder, "is a folder"),
                                         (_fifo, "not a regular file")])
@pytest.mark.parametrize("file", ["conflicts.csv", "quotes.csv", "bids.csv", "policy.yaml"])
def test_a_file_that_cannot_be_read_is_named(file, make, needle, tmp_path):
    inst = write_instance_files(tmp_path / "inst", **{file.split(".")[0]: None})
    make(inst / file)
    r = cli("solve", inst, "--out", tmp_path / "out")
    refused(r, file, needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(tmp_path):
    inst = write_instance_files(tmp_path / "inst")
    (inst / "conflicts.csv").chmod(0)
    refused(cli("validate", inst), "conflicts.csv", "permission")


# ----------------------------------------------------------------------------------------------
# number options and accepted ranges
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["solve", "{i}", "--out", "{o}", "--time-limit", "nan"],
    ["solve", "{i}", "--out", "{o}", "--time-limit", "inf"],
    ["solve", "{i}", "--out", "{o}", "--time-limit", "-1"],
    ["solve", "{i}", "--out", "{o}", "--time-limit", "0"],
    ["solve", "{i}", "--out", "{o}", "--budget", "nan"],
    ["solve", "{i}", "--out", "{o}", "--budget", "-inf"],
    ["solve", "{i}", "--out", "{o}", "--budget", "-5"],
    ["solve", "{i}", "--out", "{o}", "--budget", "1e13"],
    ["diagnose", "{i}", "--budget", "nan"],
    ["diagnose", "{i}", "--time-limit", "inf"],
    ["sweep", "{i}", "--budgets", "1e5,nan", "--out", "{o}"],
    ["sweep", "{i}", "--budgets", "1e5", "--out", "{o}", "--time-limit", "nan"],
    ["check", "{i}", "{o}", "--budget", "nan"],
    ["check", "{i}", "{o}", "--budget", "-1"],
    ["check", "{i}", "{o}", "--mip-gap", "2"],
    ["generate", "--enterprises", "3", "--agencies", "3", "--districts", "1", "--seed", "-1",
     "{o}"],
    ["generate", "--enterprises", "0", "--agencies", "3", "--districts", "1", "{o}"],
])
def test_number_options_refuse_nan_inf_and_negatives(args, tmp_path):
    inst = write_instance_files(tmp_path / "inst")
    r = cli(*[a.format(i=inst, o=tmp_path / "out") for a in args])
    assert r.exit_code == 2, r.stdout + r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("file,row,col,value,needle", [
    ("demands", 2, "weight", "1e15", "too large"),
    ("demands", 2, "weight", "1e-5", "too small"),
    ("demands", 3, "person_days", "1e9", "too large"),
    ("bids", 4, "day_rate", "1e13", "too large"),
    ("services", 2, "reference_rate", "0.001", "too small"),
    ("agencies", 3, "capacity_days", "1e8", "too large"),
    ("districts", 3, "budget_cap", "5e12", "too large"),
    ("quotes", 2, "price", "1e14", "too large"),
])
def test_values_out_of_the_accepted_range_are_refused_by_cell(file, row, col, value, needle,
                                                              tmp_path):
    lines = TINY[f"{file}.csv"].splitlines()
    head = lines[0].split(",")
    cells = lines[row - 1].split(",")
    cells[head.index(col)] = value
    lines[row - 1] = ",".join(cells)
    inst = write_instance_files(tmp_path / "inst", **{file: "\n".join(lines) + "\n"})
    r = cli("solve", inst, "--out", tmp_path / "out")
    refused(r, f"{file}.csv, row {row}, column {col}", needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("policy,needle", [
    ("budget:\n  total: 1e13\n", "budget.total"),
    ("budget:\n  total: 1000\ncoverage:\n  weights: {1: 1, 2: 2, 3: 4, 4: 1e7}\n",
     "coverage.weights.4"),
    ("budget:\n  total: 1000\ncoverage:\n  weights: {1: 1e-6, 2: 2, 3: 4, 4: 8}\n",
     "coverage.weights.1"),
])
def test_policy_numbers_out_of_range(policy, needle, tmp_path):
    inst = write_instance_files(tmp_path / "inst", policy=policy)
    refused(cli("validate", inst), needle)


def test_the_range_edges_are_accepted(tmp_path):
    dem = TINY["demands.csv"].replace("E4,S2,2,1.5", f"E4,S2,2,{MAX_WEIGHT:g}")
    inst = write_instance_files(tmp_path / "inst", demands=dem,
                                policy=f"budget:\n  total: {MAX_MONEY:g}\n")
    assert cli("validate", inst).exit_code == 0


def _strict(text: str):
    def no_constant(name: str):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=no_constant)


def test_summaries_are_strict_json(tmp_path):
    inst = write_instance_files(tmp_path / "inst")
    assert cli("solve", inst, "--out", tmp_path / "res", "--quiet").exit_code == 0
    _strict((tmp_path / "res" / "summary.json").read_text())
    r = cli("sweep", inst, "--budgets", "0,20000,1e6", "--out", tmp_path / "sw", "--quiet")
    assert r.exit_code in (0, 1), r.stderr
    _strict((tmp_path / "sw" / "frontier_summary.json").read_text())
    for f in (tmp_path / "sw").rglob("summary.json"):
        _strict(f.read_text())


# ----------------------------------------------------------------------------------------------
# formula-safe files
# ----------------------------------------------------------------------------------------------

IDS = {"E1": "=E1", "E2": "+E2", "E3": "-E3", "E4": "@E4", "A1": "=HYPERLINK(A1)", "A2": "-A2",
       "D1": "\uff1dD1", "S1": "'S1"}


def _rename(text: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        w.writerow([IDS.get(c, c) for c in row])
    return out.getvalue()


def test_formula_like_ids_are_neutralised_and_read_back(tmp_path):
    tables = {f[:-4]: _rename(TINY[f]) for f in TINY if f.endswith(".csv")}
    agencies = tables["agencies"].replace("D1;D2", f"{IDS['D1']};D2")
    inst = write_instance_files(tmp_path / "inst", **{**tables, "agencies": agencies})
    v = cli("validate", inst)
    assert v.exit_code == 0, v.stderr
    assert "formula" in v.stdout and "=E1" in v.stdout
    r = cli("solve", inst, "--out", tmp_path / "res", "--quiet")
    assert r.exit_code == 0, r.stderr
    for f in (tmp_path / "res").glob("*.csv"):
        data = f.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf"), f.name
        for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))):
            for cell in row:
                if cell.startswith(FORMULA_START):
                    float(cell)  # only a plain number may start with - or +
    a = read_csv(tmp_path / "res" / "assignments.csv")
    assert set(a["enterprise_id"]) <= set(IDS.values()) | {"E1", "E2", "E3", "E4"}
    assert "=E1" in set(a["enterprise_id"]) | set(read_csv(tmp_path / "res" /
                                                            "unserved.csv")["enterprise_id"])
    c = cli("check", inst, tmp_path / "res")
    assert c.exit_code == 0, c.stdout


def test_unknown_district_in_a_service_area_list(tmp_path):
    """Found by the fuzz test: a districts.csv cut short left 'D1;D2' naming an unknown
    district, and the did-you-mean hint failed on the exploded list (a traceback)."""
    inst = write_instance_files(tmp_path / "inst", districts="district_id,name,budget_cap\n"
                                                             "D1,Nor")
    r = cli("validate", inst)
    refused(r, "unknown district in service area")


def test_generated_instances_have_no_formula_like_ids(tmp_path):
    """generate writes instance files plain (they are inputs, read back verbatim), so its ids
    and names must never start with a formula character."""
    from allocator.data.generate import generate_instance

    data = generate_instance(200, 12, 5, 7)
    for name, frame in data.items():
        if name == "policy":
            continue
        for col in frame.columns:
            bad = frame[col].map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            assert not bad.any(), (name, col)


def test_check_names_an_unreadable_results_file(tmp_path):
    inst = write_instance_files(tmp_path / "inst")
    assert cli("solve", inst, "--out", tmp_path / "res", "--quiet").exit_code == 0
    (tmp_path / "res" / "summary.json").write_text("[" * 100_000, encoding="utf-8")
    r = cli("check", inst, tmp_path / "res")
    refused(r, "summary.json")
