"""Input validation through the command line: every kind of bad input is refused with exit 2,
a message naming file, spreadsheet row, column and value, no traceback and no results folder;
legal but suspicious data only warns; reading round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from allocator.cli import main
from allocator.core.errors import InputError
from allocator.data.validation import load_instance
from tests.conftest import TINY, write_instance_files


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def edit(name: str, old: str, new: str) -> str:
    """The tiny instance's file `name` with one piece of text replaced (which must exist)."""
    text = TINY[name]
    assert old in text, (name, old)
    return text.replace(old, new, 1)


def append(name: str, rows: str) -> str:
    return TINY[name] + rows


def assert_refused(instance: Path, tmp_path: Path) -> str:
    """validate and solve both exit 2 without a traceback; solve writes no results folder."""
    out = tmp_path / "results"
    checked = invoke("validate", instance)
    solved = invoke("solve", instance, "--out", out, "--quiet")
    for res in (checked, solved):
        assert res.exit_code == 2, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert "Traceback" not in res.output
        assert "error:" in res.output
    assert not out.exists()
    assert checked.output == solved.output
    return checked.output


# one case per kind of bad input: the files to replace, and fragments the output must hold
# (file, spreadsheet row, column, the offending value, and the gist of the fix)
CASES = [
    pytest.param({"bids": None}, ["bids.csv: required file is missing",
                                  "agency_id, service_id, sector, day_rate"],
                 id="missing_required_file"),
    pytest.param({"policy": None}, ["policy.yaml: required file is missing"],
                 id="missing_policy_file"),
    pytest.param({"demands": edit("demands.csv", "person_days", "person_day")},
                 ["demands.csv, row 1, column person_days: required column is missing",
                  "rename column 'person_day' to 'person_days'"],
                 id="missing_column_misspelt"),
    pytest.param({"districts": TINY["districts.csv"].replace(",", ";")},
                 ["districts.csv, row 1, column district_id: required column is missing",
                  "is the file comma-separated?"], id="semicolon_separated"),
    pytest.param({"agencies": edit("agencies.csv", "agency_id,name,status",
                                   "agency_id,status,status")},
                 ["agencies.csv, row 1, column status: column appears twice"],
                 id="duplicate_column"),
    pytest.param({"demands": edit("demands.csv", "E2,S1,3,\n", "E2,S1,3,,7\n")},
                 ["demands.csv, row 4:", "the row has 5 values but the header has 4",
                  "'E2,S1,3,,7'"], id="row_with_extra_values"),
    pytest.param({"districts": edit("districts.csv", "D2,South", 'D2,"South')},
                 ["districts.csv, row 3:", "close the quote"], id="unclosed_quote"),
    pytest.param({"enterprises": edit("enterprises.csv", "South Chemicals",
                                      "South Chemicals").encode().replace(b"South C",
                                                                          b"South \xe9C")},
                 ["enterprises.csv, row 4:", "not valid UTF-8", "CSV UTF-8"],
                 id="not_utf8"),
    pytest.param({"services": ""}, ["services.csv: the file is empty"], id="empty_file"),
    pytest.param({"enterprises": "enterprise_id,name,district_id,sector,risk_level\n"},
                 ["enterprises.csv: the file has no enterprise rows"], id="header_only"),
    pytest.param({"bids": "agency_id,service_id,sector,day_rate\n", "quotes": None},
                 ["bids.csv: the file has no bid rows"], id="no_offers_at_all"),
    pytest.param({"demands": edit("demands.csv", "E2,S1,3,", "E2,S1,three,")},
                 ["demands.csv, row 4, column person_days: not a number", "'three'"],
                 id="not_a_number"),
    pytest.param({"bids": edit("bids.csv", "A2,S1,chemicals,1900", 'A2,S1,chemicals,"1,900"')},
                 ["bids.csv, row 5, column day_rate: not a number", "'1,900'",
                  "without thousands separators: 1900"], id="thousands_separator"),
    pytest.param({"demands": edit("demands.csv", "E3,S1,4,", "E3,S1,0,")},
                 ["demands.csv, row 5, column person_days: out of range (must be > 0)",
                  "'0'"], id="person_days_zero"),
    pytest.param({"agencies": edit("agencies.csv", "active,85,20", "active,101,20")},
                 ["agencies.csv, row 3, column quality: out of range", "'101'"],
                 id="quality_above_100"),
    pytest.param({"agencies": edit("agencies.csv", "probation,75,10", "probation,75,-5")},
                 ["agencies.csv, row 4, column capacity_days: out of range (must be >= 0)",
                  "'-5'"], id="capacity_negative"),
    pytest.param({"services": edit("services.csv", "Safety training,1000",
                                   "Safety training,0")},
                 ["services.csv, row 3, column reference_rate: out of range (must be > 0)",
                  "'0'"], id="reference_rate_zero"),
    pytest.param({"quotes": edit("quotes.csv", "8000", "-8000")},
                 ["quotes.csv, row 2, column price: out of range (must be > 0)", "'-8000'"],
                 id="quote_price_negative"),
    pytest.param({"districts": edit("districts.csv", "60000", "-1")},
                 ["districts.csv, row 3, column budget_cap: out of range", "'-1'"],
                 id="budget_cap_negative"),
    pytest.param({"enterprises": edit("enterprises.csv", "construction,2", "construction,5")},
                 ["enterprises.csv, row 3, column risk_level: out of range", "'5'"],
                 id="risk_level_5"),
    pytest.param({"enterprises": edit("enterprises.csv", "chemicals,3", "chemicals,high")},
                 ["enterprises.csv, row 4, column risk_level: not a number", "'high'",
                  "3 for high"], id="risk_level_word"),
    pytest.param({"enterprises": edit("enterprises.csv", "construction,1", "construction,1.5")},
                 ["enterprises.csv, row 5, column risk_level: must be a whole number",
                  "'1.5'"], id="risk_level_fraction"),
    pytest.param({"agencies": edit("agencies.csv", "active,85", "activ,85")},
                 ["agencies.csv, row 3, column status: unknown status", "'activ'",
                  "did you mean 'active'"], id="unknown_status"),
    pytest.param({"demands": edit("demands.csv", "E1,S2,2,", "E1,S2,nan,")},
                 ["demands.csv, row 3, column person_days: not a number", "'nan'"],
                 id="nan_value"),
    pytest.param({"bids": edit("bids.csv", "A1,S2,chemicals,1000", "A1,S2,chemicals,inf")},
                 ["bids.csv, row 4, column day_rate: not a number", "'inf'"], id="inf_value"),
    pytest.param({"enterprises": append("enterprises.csv", "E2,Again,D2,chemicals,1\n")},
                 ["enterprises.csv, row 6, column enterprise_id: duplicate enterprise id",
                  "'E2'", "already on row 3"], id="duplicate_id"),
    pytest.param({"bids": append("bids.csv", "A1,S1,chemicals,2050\n")},
                 ["bids.csv, row 10, column sector: duplicate bid", "'chemicals'"],
                 id="duplicate_bid"),
    pytest.param({"demands": append("demands.csv", "E2,S1,1,\n")},
                 ["demands.csv, row 7, column service_id: duplicate demand", "'S1'"],
                 id="duplicate_demand"),
    pytest.param({"quotes": append("quotes.csv", "A2,E3,S1,7900,4\n")},
                 ["quotes.csv, row 3, column service_id: duplicate quote"],
                 id="duplicate_quote"),
    pytest.param({"enterprises": edit("enterprises.csv", "South Builders,D2",
                                      "South Builders,D9")},
                 ["enterprises.csv, row 5, column district_id: unknown district", "'D9'"],
                 id="unknown_district"),
    pytest.param({"demands": edit("demands.csv", "E4,S2", "E4,S7")},
                 ["demands.csv, row 6, column service_id: unknown service", "'S7'"],
                 id="unknown_service"),
    pytest.param({"bids": edit("bids.csv", "A2,S1,construction", "A2,S1,Construction")},
                 ["bids.csv, row 6, column sector: unknown sector", "'Construction'",
                  "did you mean 'construction'"], id="unknown_sector"),
    pytest.param({"bids": edit("bids.csv", "A3,S2", "A4,S2")},
                 ["bids.csv, row 9, column agency_id: unknown agency", "'A4'",
                  "agencies.csv"], id="unknown_agency"),
    pytest.param({"demands": edit("demands.csv", "E3,S1", "e3,S1")},
                 ["demands.csv, row 5, column enterprise_id: unknown enterprise", "'e3'",
                  "did you mean 'E3'? ids are case-sensitive"], id="unknown_enterprise_case"),
    pytest.param({"conflicts": append("conflicts.csv", "A1,E8\n")},
                 ["conflicts.csv, row 3, column enterprise_id: unknown enterprise", "'E8'"],
                 id="conflict_unknown_enterprise"),
    pytest.param({"agencies": edit("agencies.csv", "D1;D2", "D1;D5")},
                 ["agencies.csv, row 3, column districts: unknown district in service area",
                  "'D5'"], id="unknown_district_in_area"),
    pytest.param({"agencies": edit("agencies.csv", "D1;D2", '"D1,D2"')},
                 ["agencies.csv, row 3, column districts", "'D1,D2'", "join district ids with ';'"],
                 id="area_joined_by_comma"),
    pytest.param({"quotes": edit("quotes.csv", "A2,E3,S1", "A2,E4,S1")},
                 ["quotes.csv, row 2, column service_id: quote for a demand that demands.csv "
                  "does not list", "enterprise E4, service S1"], id="quote_without_demand"),
    pytest.param({"agencies": edit("agencies.csv", "A2,Beta", ",Beta")},
                 ["agencies.csv, row 3, column agency_id: agency id is empty"], id="empty_id"),
    pytest.param({"enterprises": edit("enterprises.csv", "D1,construction", "D1,")},
                 ["enterprises.csv, row 3, column sector: sector is empty"], id="empty_cell"),
    pytest.param({"demands": edit("demands.csv", "E2,S1,3,\n", "\nE2,S1,-3,\n")},
                 ["demands.csv, row 5, column person_days: out of range", "'-3'"],
                 id="blank_row_counted"),
    # policy.yaml
    pytest.param({"policy": TINY["policy.yaml"] + "coverage:\n  min_district_ratios: 0.2\n"},
                 ["policy.yaml, key coverage.min_district_ratios: unknown policy key",
                  "did you mean 'min_district_ratio'"], id="policy_unknown_key"),
    pytest.param({"policy": "name: x\nbudget:\n  ceiling: 5\n"},
                 ["policy.yaml, key budget.total: budget.total is required",
                  "budget.ceiling: unknown policy key"], id="policy_missing_budget"),
    pytest.param({"policy": edit("policy.yaml", "50000", "50,000")},
                 ["policy.yaml, key budget.total: must be a number", "'50,000'",
                  "without thousands separators: 50000"], id="policy_budget_text"),
    pytest.param({"policy": edit("policy.yaml", "  total: 50000", "  total: [50000")},
                 ["policy.yaml, row 4: not readable YAML"], id="policy_yaml_syntax"),
    pytest.param({"policy": "- budget\n- 50000\n"},
                 ["policy.yaml, key (top)", "mapping of sections, not a list"],
                 id="policy_list"),
    pytest.param({"policy": ""}, ["policy.yaml is empty; budget.total is required"],
                 id="policy_empty"),
    pytest.param({"policy": TINY["policy.yaml"] + "coverage:\n  weights: {1: 1, 2: 2, 4: 8}\n"},
                 ["policy.yaml, key coverage.weights: no weight for risk level(s) 3"],
                 id="policy_weights_missing_level"),
    pytest.param({"policy": TINY["policy.yaml"] + "quality:\n  min_score_by_risk: {5: 90}\n"},
                 ["policy.yaml, key quality.min_score_by_risk.5: risk level must be 1, 2, "
                  "3 or 4"], id="policy_level_5"),
    pytest.param({"policy": TINY["policy.yaml"] + "quality:\n  min_score: yes\n"},
                 ["policy.yaml, key quality.min_score: must be a number, not bool",
                  "not true/false"], id="policy_boolean"),
    pytest.param({"policy": TINY["policy.yaml"].replace("null", "1.5")},
                 ["policy.yaml, key anti_monopoly.max_share_in_district: out of range "
                  "(must be in (0, 1])", "1.5"], id="policy_share_above_1"),
    pytest.param({"policy": TINY["policy.yaml"] + "budget:\n  total: 9\n"},
                 ["policy.yaml, row 7: not readable YAML", "'budget' appears twice"],
                 id="policy_duplicate_key"),
    pytest.param({"policy": TINY["policy.yaml"] + "price: 0.8\n"},
                 ["policy.yaml, key price: must be a section of keys"],
                 id="policy_section_scalar"),
]


@pytest.mark.parametrize("files, expected", CASES)
def test_bad_input_is_refused(tmp_path: Path, files: dict, expected: list[str]) -> None:
    inst = write_instance_files(tmp_path / "instance", **files)
    output = assert_refused(inst, tmp_path)
    for fragment in expected:
        assert fragment in output, f"{fragment!r} not in:\n{output}"


def test_instance_path_missing(tmp_path: Path) -> None:
    output = assert_refused(tmp_path / "nowhere", tmp_path)
    assert "nowhere: instance folder not found" in output


def test_instance_path_is_a_file(tmp_path: Path) -> None:
    inst = write_instance_files(tmp_path / "instance")
    output = assert_refused(inst / "policy.yaml", tmp_path)
    assert "policy.yaml: is a file, not a folder" in output


def test_every_problem_in_every_file_in_one_run(tmp_path: Path) -> None:
    inst = write_instance_files(
        tmp_path / "instance",
        demands=edit("demands.csv", "E2,S1,3,", "E2,S1,x,"),
        agencies=edit("agencies.csv", "probation", "retired"),
        bids=edit("bids.csv", "A1,S1,construction,2000", "A1,S1,construction,0"),
        policy=TINY["policy.yaml"] + "solver:\n  time_limt: 10\n",
    )
    output = assert_refused(inst, tmp_path)
    assert "4 error(s)" in output
    for fragment in ("demands.csv, row 4, column person_days", "'x'",
                     "agencies.csv, row 4, column status", "'retired'",
                     "bids.csv, row 3, column day_rate",
                     "policy.yaml, key solver.time_limt", "did you mean 'time_limit'"):
        assert fragment in output, fragment


def test_results_folder_left_untouched(tmp_path: Path) -> None:
    """An existing results folder is not emptied or rewritten when the input is bad."""
    inst = write_instance_files(tmp_path / "instance",
                                demands=edit("demands.csv", "E2,S1,3,", "E2,S1,-1,"))
    out = tmp_path / "results"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    res = invoke("solve", inst, "--out", out, "--quiet")
    assert res.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_load_instance_raises_with_every_problem(tmp_path: Path) -> None:
    inst = write_instance_files(
        tmp_path / "instance",
        demands=edit("demands.csv", "E1,S1,5,", "E1,S1,-5,") + "E4,S9,1,\n",
    )
    with pytest.raises(InputError) as err:
        load_instance(inst)
    found = {(p.file, p.row, p.column, p.value) for p in err.value.problems}
    assert found == {("demands.csv", 2, "person_days", "-5"),
                     ("demands.csv", 7, "service_id", "S9")}


# ------------------------------------------------------------------------------------------
# legal data: accepted (possibly with warnings)
# ------------------------------------------------------------------------------------------


def test_valid_instance_validates(tiny_instance_dir: Path) -> None:
    res = invoke("validate", tiny_instance_dir)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("OK\n")
    for fragment in ("districts: 2 (1 with a budget cap)",
                     "enterprises: 4", "4 major/red 1", "chemicals 2",
                     "demands: 5 (2 mandatory)", "reference cost: all demand 28,000",
                     "budget 50,000", "active 2, probation 1", "eligible triples:"):
        assert fragment in res.output, fragment
    assert "warning" not in res.output


def test_tolerated_spellings_are_read(tmp_path: Path) -> None:
    """BOM, CRLF, spaces around ids, a trailing ';', '4.0', 'Active', trailing blank rows and
    1e5 in YAML are all accepted and read as meant."""
    ent = edit("enterprises.csv", "E1,North Chemicals,D1,chemicals,4",
               " E1 ,North Chemicals, D1 ,chemicals,4.0")
    inst = write_instance_files(
        tmp_path / "instance",
        enterprises=b"\xef\xbb\xbf" + ent.replace("\n", "\r\n").encode(),
        agencies=edit("agencies.csv", "active,85,20,D1;D2", "Active,85,20,D1; D2;"),
        demands=TINY["demands.csv"] + "\n,,,\n",
        policy=edit("policy.yaml", "50000", "5e4"),
    )
    res = invoke("validate", inst)
    assert res.exit_code == 0, res.output
    loaded = load_instance(inst)
    assert list(loaded.enterprises.index) == ["E1", "E2", "E3", "E4"]
    assert loaded.enterprises.loc["E1", ["district_id", "risk_level"]].tolist() == ["D1", 4]
    assert loaded.agencies.loc["A2", "status"] == "active"
    a2 = loaded.agency_districts.query("agency_id == 'A2'")["district_id"].tolist()
    assert a2 == ["D1", "D2"]
    assert len(loaded.demands) == 5
    assert loaded.policy.budget_total == 50000.0


def test_warnings_do_not_fail(tmp_path: Path) -> None:
    """An enterprise without demand and an agency without offer are warnings only."""
    inst = write_instance_files(
        tmp_path / "instance",
        enterprises=append("enterprises.csv", "E5,Idle Works,D2,construction,1\n"),
        agencies=append("agencies.csv", "A4,Delta Silent,active,80,10,*\n"),
    )
    res = invoke("validate", inst)
    assert res.exit_code == 0, res.output
    assert "warning: enterprises.csv, column enterprise_id: enterprise has no demand " \
           "(value: 'E5')" in res.output
    assert "warning: agencies.csv, column agency_id: agency has no bid or quote" in res.output
    assert "'A4'" in res.output


def test_mandatory_demand_nobody_can_take_is_a_warning(tmp_path: Path) -> None:
    """E1 (risk 4 needs quality 80): with A1 at 70 and A2 at 75 no agency may serve it."""
    agencies = TINY["agencies.csv"].replace("active,90", "active,70").replace("active,85",
                                                                              "active,75")
    inst = write_instance_files(tmp_path / "instance", agencies=agencies)
    res = invoke("validate", inst)
    assert res.exit_code == 0, res.output
    assert "demands with no eligible agency: 2 (2 mandatory)" in res.output
    lines = [ln for ln in res.output.splitlines() if "mandatory demand" in ln]
    assert len(lines) == 2
    assert all("warning: demands.csv" in ln and "'E1'" in ln and "quality" in ln
               for ln in lines)
    assert {"service S1" in lines[0], "service S2" in lines[1]} == {True}


def test_quotes_only_is_a_warning(tmp_path: Path) -> None:
    """No bids but a quote: legal; the empty bids file and the bid-less agencies warn."""
    inst = write_instance_files(tmp_path / "instance",
                                bids="agency_id,service_id,sector,day_rate\n")
    loaded = load_instance(inst)
    found = {(w.file, w.column, w.value) for w in loaded.warnings}
    assert ("bids.csv", "", None) in found
    assert {("agencies.csv", "agency_id", a) for a in ("A1", "A3")} <= found
    assert ("agencies.csv", "agency_id", "A2") not in found  # A2 has the quote
    assert all(w.severity == "warning" for w in loaded.warnings)


def test_validate_quotes_only(tmp_path: Path) -> None:
    inst = write_instance_files(tmp_path / "instance",
                                bids="agency_id,service_id,sector,day_rate\n")
    res = invoke("validate", inst)
    assert res.exit_code == 0, res.output
    assert "warning: bids.csv: the file has no bid rows" in res.output
    assert "eligible triples: 1;" in res.output


def test_policy_command_prints_defaults(tiny_instance_dir: Path) -> None:
    res = invoke("policy", tiny_instance_dir)
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["name"] == "Test town"
    assert shown["budget"]["total"] == 50000
    assert shown["anti_monopoly"] == {"max_share_in_district": None,
                                      "min_agencies_per_district": 1,
                                      "max_share_in_city": None,
                                      "max_districts_per_agency": None}
    assert shown["coverage"]["weights"] == {"1": 1, "2": 2, "3": 4, "4": 8}
    assert shown["coverage"]["mandatory_levels"] == [4]
    assert shown["quality"] == {"min_score": 60, "min_score_by_risk": {"3": 70, "4": 80}}
    assert shown["price"] == {"floor_ratio": 0.8, "ceiling_ratio": 1.5}
    assert shown["solver"]["name"] == "auto" and shown["solver"]["mip_gap"] == 0.0001


def test_policy_command_refuses_bad_policy(tmp_path: Path) -> None:
    inst = write_instance_files(tmp_path / "instance",
                                policy=TINY["policy.yaml"] + "pricing:\n  floor_ratio: 1\n")
    res = invoke("policy", inst)
    assert res.exit_code == 2
    assert "policy.yaml, key pricing: unknown policy key" in res.output
    assert "did you mean 'price'" in res.output


# ------------------------------------------------------------------------------------------
# reading round-trips
# ------------------------------------------------------------------------------------------


def test_reading_round_trips(tmp_path: Path) -> None:
    """Tables written by pandas come back with the same ids, in the same order, same numbers;
    ids stay text (leading zeros kept), names with commas, quotes and CJK survive."""
    districts = pd.DataFrame({"district_id": ["010", "002", "D-3"],
                              "name": ["Old Town, East", 'The "Port"', "东区"],
                              "budget_cap": [None, 125000.5, 0.0]})
    services = pd.DataFrame({"service_id": ["S10", "S02"], "name": ["a", "b"],
                             "reference_rate": [1999.99, 0.125]})
    enterprises = pd.DataFrame({
        "enterprise_id": ["E009", "E1", "E010", "00"],
        "name": ["x", "y", "z", "w"],
        "district_id": ["002", "010", "D-3", "002"],
        "sector": ["mining", "transport", "mining", "transport"],
        "risk_level": [3, 1, 4, 2]})
    demands = pd.DataFrame({"enterprise_id": ["E010", "E009", "E1", "00", "E009"],
                            "service_id": ["S02", "S10", "S10", "S02", "S02"],
                            "person_days": [1.5, 2.0, 0.25, 7.0, 3.0],
                            "weight": [None, 3.5, None, 0.0, None]})
    agencies = pd.DataFrame({"agency_id": ["Z", "A", "M"], "name": ["z", "a", "m"],
                             "status": ["active", "probation", "blacklisted"],
                             "quality": [99.5, 60.0, 0.0], "capacity_days": [10.0, 0.5, 0.0],
                             "districts": ["*", "002;D-3", "010"]})
    bids = pd.DataFrame({"agency_id": ["Z", "A", "Z", "M"],
                         "service_id": ["S10", "S02", "S02", "S10"],
                         "sector": ["mining", "transport", "mining", "transport"],
                         "day_rate": [2000.0, 0.1, 1e5, 1234.5678]})
    quotes = pd.DataFrame({"agency_id": ["A"], "enterprise_id": ["00"], "service_id": ["S02"],
                           "price": [777.77], "person_days": [6.5]})
    conflicts = pd.DataFrame({"agency_id": ["M"], "enterprise_id": ["E1"]})
    inst = tmp_path / "rt"
    inst.mkdir()
    for name, df in [("districts", districts), ("services", services),
                     ("enterprises", enterprises), ("demands", demands),
                     ("agencies", agencies), ("bids", bids), ("quotes", quotes),
                     ("conflicts", conflicts)]:
        df.to_csv(inst / f"{name}.csv", index=False)
    (inst / "policy.yaml").write_text("budget:\n  total: 1000\n")
    loaded = load_instance(inst)

    assert list(loaded.districts.index) == ["010", "002", "D-3"]
    assert loaded.districts["name"].tolist() == districts["name"].tolist()
    pd.testing.assert_series_equal(loaded.districts["budget_cap"].reset_index(drop=True),
                                   districts["budget_cap"].astype(float), check_names=False)
    assert list(loaded.services.index) == ["S10", "S02"]
    assert loaded.services["reference_rate"].tolist() == [1999.99, 0.125]
    assert list(loaded.enterprises.index) == enterprises["enterprise_id"].tolist()
    assert loaded.enterprises["risk_level"].tolist() == [3, 1, 4, 2]
    assert loaded.demands[["enterprise_id", "service_id"]].values.tolist() == \
        demands[["enterprise_id", "service_id"]].values.tolist()
    assert loaded.demands["person_days"].tolist() == [1.5, 2.0, 0.25, 7.0, 3.0]
    # weights: given where written, else the default of the enterprise's risk level
    assert loaded.demands["weight"].tolist() == [8.0, 3.5, 1.0, 0.0, 4.0]
    assert list(loaded.agencies.index) == ["Z", "A", "M"]
    assert loaded.agencies["quality"].tolist() == [99.5, 60.0, 0.0]
    assert loaded.agencies["capacity_days"].tolist() == [10.0, 0.5, 0.0]
    assert loaded.agencies["all_districts"].tolist() == [True, False, False]
    assert loaded.bids["agency_id"].tolist() == ["Z", "A", "Z", "M"]
    assert loaded.bids["day_rate"].tolist() == [2000.0, 0.1, 1e5, 1234.5678]
    assert loaded.quotes.iloc[0].tolist() == ["A", "00", "S02", 777.77, 6.5]
    assert loaded.conflicts.values.tolist() == [["M", "E1"]]
