"""`allocator check` trusts nothing in the folder it audits (issue 17, item 4).

An instance built here (tests/instance_builder.py, not allocator's generator) is solved once;
every semantic tampering of the results is rejected with the rule it breaks, and every
harmless edit (row order, CRLF, BOM, number formatting, summary.json rewritten, a hand-edited
plan whose figures were recomputed) is accepted.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from instance_builder import agency, bid, conflict, demand, district, enterprise, quote, service
from instance_builder import write_instance as build

import allocator
from allocator.analysis.audit import audit_results
from allocator.core.tables import read_csv

RATES = {"S1": 1000.0, "S2": 500.0}
QUALITY = {"A1": 90, "A2": 82, "A3": 70, "A4": 95, "A5": 50, "A6": 88}


def city(path: Path, budget: float) -> Path:
    """10 enterprises in 2 districts, 14 demands, 6 agencies of every kind of eligibility."""
    risks = [4, 3, 2, 1, 2, 3, 1, 4, 2, 1]
    ents = [enterprise(f"E{i}", "D1" if i < 5 else "D2", risk_level=risks[i],
                       sector="chem" if i % 2 else "build") for i in range(10)]
    dems = [demand(f"E{i}", "S1", person_days=2 + i % 3) for i in range(10)]
    dems += [demand(f"E{i}", "S2", person_days=3, weight=(0 if i == 6 else None))
             for i in (0, 3, 6, 9)]
    ags = [agency("A1", 90, 14), agency("A2", 82, 30, districts="D1"),
           agency("A3", 70, 20, status="probation"), agency("A4", 95, 40, status="suspended"),
           agency("A5", 50, 40), agency("A6", 88, 6, districts="D2")]
    factor = {"A1": 1.1, "A2": 0.95, "A3": 0.9, "A4": 1.0, "A5": 0.85, "A6": 1.0}
    bids = [bid(a, RATES[s] * f, s, sec) for a, f in factor.items() for s in RATES
            for sec in ("chem", "build")]
    bids.append(bid("A6", RATES["S1"] * 0.5, "S1", "build"))  # replaced below: too low
    bids = [b for b in bids if not (b["agency_id"] == "A6" and b["service_id"] == "S1"
                                    and b["sector"] == "build" and b["day_rate"] == 1000)]
    return build(path, enterprises=ents, demands=dems, agencies=ags, bids=bids,
                 quotes=[quote("A1", "E0", 2000, 2), quote("A6", "E5", 9000, 4)],
                 conflicts=[conflict("A1", "E2")],
                 districts=[district("D1"), district("D2", budget_cap=9000)],
                 services=[service(s, r) for s, r in RATES.items()],
                 policy_changes={"budget": {"total": budget},
                                 "coverage": {"mandatory_levels": [4]},
                                 "quality": {"min_score": 60, "min_score_by_risk": {4: 80}},
                                 "price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5},
                                 "solver": {"time_limit": 30}})


@pytest.fixture(scope="module")
def solved(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """The city solved under a tight budget (demands left out) and an ample one."""
    base = tmp_path_factory.mktemp("audit")
    out = {}
    for name, budget in (("tight", 16000), ("ample", 10**6)):
        inst = city(base / f"inst-{name}", budget)
        plan = allocator.solve(allocator.load_instance(inst))
        assert plan.status.value == "optimal", plan.summary()
        res = plan.write(base / f"res-{name}")
        assert audit_results(inst, res).violations == []
        out[name] = (inst, res)
    return out


@pytest.fixture
def tight(solved, tmp_path) -> tuple[Path, Path]:
    inst, res = solved["tight"]
    return inst, Path(shutil.copytree(res, tmp_path / "res"))


@pytest.fixture
def ample(solved, tmp_path) -> tuple[Path, Path]:
    inst, res = solved["ample"]
    return inst, Path(shutil.copytree(res, tmp_path / "res"))


def read(res: Path, file: str) -> pd.DataFrame:
    return read_csv(res / file)


def write(res: Path, file: str, df: pd.DataFrame) -> None:
    df.to_csv(res / file, index=False)


def summary(res: Path) -> dict:
    return json.loads((res / "summary.json").read_text(encoding="utf-8"))


def put_summary(res: Path, s: dict) -> None:
    (res / "summary.json").write_text(json.dumps(s), encoding="utf-8")


def found(inst: Path, res: Path) -> dict[str, list[str]]:
    """rule -> messages of the audit's violations."""
    out: dict[str, list[str]] = {}
    for v in audit_results(inst, res).violations:
        out.setdefault(v.rule, []).append(str(v))
    return out


# ----------------------------------------------------------------------------------------------
# the instance really has what the tampering below needs
# ----------------------------------------------------------------------------------------------

def test_the_city_exercises_every_kind_of_row(solved):
    inst, res = solved["tight"]
    u = read(res, "unserved.csv")
    x = read(res, "excluded.csv")
    assert len(u) >= 3 and "budget" in set(u["reason"])
    assert {"offer", "triple"} <= set(x["scope"])
    assert {"status", "quality", "service_area", "conflict", "abnormally_low"} <= set(x["reason"])
    assert read(res, "assignments.csv")["quoted"].isin(["True"]).any()


# ----------------------------------------------------------------------------------------------
# tampering: each rejected, with its rule
# ----------------------------------------------------------------------------------------------

def _reason(to: str, where: Callable[[pd.DataFrame], pd.Series]):
    def tamper(res: Path) -> None:
        u = read(res, "unserved.csv")
        i = u.index[where(u)][0]
        u.at[i, "reason"] = to
        write(res, "unserved.csv", u)
    return tamper


def _weight_positive(u: pd.DataFrame) -> pd.Series:
    return u["weight"].astype(float) > 0


def _excluded(edit: Callable[[pd.DataFrame], pd.DataFrame]):
    def tamper(res: Path) -> None:
        write(res, "excluded.csv", edit(read(res, "excluded.csv")))
    return tamper


def _cell(file: str, col: str, value: Callable[[str], str], row: int = 0):
    def tamper(res: Path) -> None:
        df = read(res, file)
        df.at[row, col] = value(df.at[row, col])
        write(res, file, df)
    return tamper


def _summary(**changes):
    def tamper(res: Path) -> None:
        s = summary(res)
        for key, value in changes.items():
            s[key] = value(s) if callable(value) else value
        put_summary(res, s)
    return tamper


def _drop_first_reason(x: pd.DataFrame, reason: str) -> pd.DataFrame:
    return x.drop(index=x.index[x["reason"] == reason][0])


TAMPERING = {
    # unserved reasons that are not true of the plan
    "reason budget->gap": (_reason("gap", lambda u: u["reason"] == "budget"),
                           "unserved_reason"),
    "reason ->no_eligible_agency": (_reason("no_eligible_agency", lambda u: u["reason"] != ""
                                            if "eligible_agencies" not in u else
                                            u["eligible_agencies"].astype(int) > 0),
                                    "unserved_reason"),
    "reason ->zero_weight": (_reason("zero_weight", _weight_positive), "unserved_reason"),
    "reason ->min_agencies (rule off)": (_reason("min_agencies", _weight_positive),
                                         "unserved_reason"),
    "reason made up": (_reason("political", _weight_positive), "unserved_reason"),
    "reason ->funding (no funding.csv)": (_reason("funding", _weight_positive),
                                          "unserved_reason"),
    "reason ->no_funding_source": (_reason("no_funding_source", _weight_positive),
                                   "unserved_reason"),
    "eligible_agencies": (_cell("unserved.csv", "eligible_agencies",
                                lambda v: str(int(v) + 1)), "unserved_fields"),
    # excluded.csv
    "excluded row removed": (_excluded(lambda x: _drop_first_reason(x, "conflict")),
                             "excluded_missing"),
    "offer row removed": (_excluded(lambda x: _drop_first_reason(x, "status")),
                          "excluded_missing"),
    "excluded reason false": (_excluded(lambda x: x.assign(
        reason=x["reason"].where(x["reason"] != "conflict", "above_ceiling"))),
                              "excluded_reason"),
    "excluded invented offer": (_excluded(lambda x: pd.concat([x, pd.DataFrame([{
        "agency_id": "A1", "enterprise_id": "E9", "service_id": "S7", "reason": "status",
        "scope": "triple", "sector": "", "district_id": "", "detail": ""}])])),
                                "excluded_unknown"),
    "eligible triple listed as kept out": (_excluded(lambda x: pd.concat([x, pd.DataFrame([{
        "agency_id": "A2", "enterprise_id": "E1", "service_id": "S1", "reason": "quality",
        "scope": "triple", "sector": "chem", "district_id": "D1", "detail": ""}])])),
                                           "excluded_reason"),
    # extra columns
    "assignment quality": (_cell("assignments.csv", "quality", lambda v: "99"),
                           "assignment_fields"),
    "assignment quoted": (_cell("assignments.csv", "quoted",
                                lambda v: "False" if v == "True" else "True"),
                          "assignment_fields"),
    "assignment reference_cost": (_cell("assignments.csv", "reference_cost",
                                        lambda v: str(float(v) + 100)), "assignment_fields"),
    "agency name": (_cell("agencies.csv", "agency_name", lambda v: v + " Ltd"), "names"),
    "agency status": (_cell("agencies.csv", "status", lambda v: "blacklisted"),
                      "agency_totals"),
    "agency quality": (_cell("agencies.csv", "quality", lambda v: "100"), "agency_totals"),
    "enterprise name in assignments": (_cell("assignments.csv", "enterprise_name",
                                             lambda v: v + " (renamed)"), "names"),
    "service name in unserved": (_cell("unserved.csv", "service_name", lambda v: "other"),
                                 "names"),
    "district demands": (_cell("districts.csv", "demands", lambda v: str(int(v) + 1)),
                         "district_totals"),
    "district mandatory_served": (_cell("districts.csv", "mandatory_served",
                                        lambda v: str(int(v) + 1)), "district_totals"),
    "district name": (_cell("districts.csv", "district_name", lambda v: "Elsewhere"),
                      "names"),
    # summary claims
    "gap above mip_gap": (_summary(gap=0.05), "summary_claims"),
    "bound below coverage": (_summary(bound=lambda s: s["coverage"] - 1), "summary_claims"),
    "gap smaller than the bound gives": (_summary(bound=lambda s: s["coverage"] * 1.5, gap=0),
                                         "summary_claims"),
    "optimal without a gap": (_summary(gap=None), "summary_claims"),
    "level gap": (_summary(levels=lambda s: [{**lv, "gap": 0.5} for lv in s["levels"]]),
                  "summary_claims"),
    "eligible_triples count": (_summary(counts=lambda s: {**s["counts"], "eligible_triples":
                                                          s["counts"]["eligible_triples"] + 1}),
                               "summary_totals"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_rejected(case, tight):
    inst, res = tight
    tamper, rule = TAMPERING[case]
    tamper(res)
    got = found(inst, res)
    assert rule in got, f"{case}: expected {rule}, found {got}"


def test_budget_reason_on_a_demand_that_fits_is_rejected(ample):
    """A served demand moved to unserved.csv as 'budget', every total recomputed: the budget
    has room for it, so the reason is false, and the plan is not optimal either."""
    inst, res = ample
    a, u = read(res, "assignments.csv"), read(res, "unserved.csv")
    row = a.iloc[0]
    a = a.drop(index=0)
    u.loc[len(u)] = {"enterprise_id": row["enterprise_id"], "service_id": row["service_id"],
                     "district_id": row["district_id"], "sector": row["sector"],
                     "risk_level": row["risk_level"], "weight": row["weight"],
                     "reason": "budget", "detail": "", "eligible_agencies": "1"}
    write(res, "assignments.csv", a)
    write(res, "unserved.csv", u.drop(columns=["eligible_agencies"]))
    recompute_totals(inst, res)
    got = found(inst, res)
    assert "unserved_reason" in got and "summary_claims" in got, got
    assert any("an eligible offer would not break it" in m for m in got["unserved_reason"])
    assert not ({"agency_totals", "district_totals", "summary_totals"} & set(got)), got


def test_over_budget_plan_with_raised_budget_figures_is_rejected(tight):
    inst, res = tight
    a, u = read(res, "assignments.csv"), read(res, "unserved.csv")
    # serve an unserved demand with its cheapest eligible agency: over the budget
    top = u[u["reason"] == "budget"].iloc[0]
    s = summary(res)
    s["budget"] = s["budget"] * 10
    s["policy"]["budget"]["total"] = s["budget"]
    put_summary(res, s)
    inst_plan = allocator.load_instance(inst)
    from allocator.eligibility import compute_eligibility

    t = compute_eligibility(inst_plan).triples
    t = t[(t["enterprise_id"] == top["enterprise_id"]) & (t["service_id"] == top["service_id"])]
    best = t.sort_values("cost").iloc[0]
    a.loc[len(a)] = {k: str(v) for k, v in {
        "enterprise_id": best["enterprise_id"], "service_id": best["service_id"],
        "agency_id": best["agency_id"], "district_id": best["district_id"],
        "sector": best["sector"], "risk_level": best["risk_level"], "weight": best["weight"],
        "load": best["load"], "cost": best["cost"], "quality": best["quality"],
        "quoted": bool(best["quoted"]), "reference_cost": best["reference_cost"],
        "government_cost": best["cost"], "enterprise_cost": 0,
        "enterprise_name": best["enterprise_id"], "service_name": best["service_id"],
        "agency_name": best["agency_id"], "district_name": best["district_id"]}.items()}
    write(res, "assignments.csv", a)
    write(res, "unserved.csv", u[~((u["enterprise_id"] == top["enterprise_id"])
                                   & (u["service_id"] == top["service_id"]))])
    recompute_totals(inst, res)
    assert "budget" in found(inst, res)


# ----------------------------------------------------------------------------------------------
# harmless edits: accepted
# ----------------------------------------------------------------------------------------------

def _shuffle_rows(res: Path) -> None:
    rng = random.Random(0)
    for f in ("assignments.csv", "unserved.csv", "agencies.csv", "districts.csv",
              "excluded.csv"):
        lines = (res / f).read_text(encoding="utf-8-sig").splitlines()
        body = lines[1:]
        rng.shuffle(body)
        (res / f).write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")


def _crlf_no_bom(res: Path) -> None:
    for f in res.glob("*.csv"):
        text = f.read_text(encoding="utf-8-sig")
        f.write_bytes(text.replace("\n", "\r\n").encode())


def _numbers_reformatted(res: Path) -> None:
    for f in ("assignments.csv", "agencies.csv", "districts.csv"):
        df = read(res, f)
        for col in df.columns:
            num = pd.to_numeric(df[col], errors="coerce")
            if num.notna().all() and col not in ("risk_level", "demands", "agencies",
                                                 "demands_served", "mandatory_total",
                                                 "mandatory_served"):
                df[col] = num.map(lambda v: f"{v:.6f}")
        df.to_csv(res / f, index=False)


def _summary_rewritten(res: Path) -> None:
    s = summary(res)
    (res / "summary.json").write_text(json.dumps(dict(reversed(list(s.items()))), indent=4),
                                      encoding="utf-8")


@pytest.mark.parametrize("edit", [_shuffle_rows, _crlf_no_bom, _numbers_reformatted,
                                  _summary_rewritten])
def test_harmless_edits_are_accepted(edit, tight):
    inst, res = tight
    edit(res)
    assert found(inst, res) == {}


def test_hand_edited_plan_with_recomputed_figures_is_accepted(ample):
    """A planner gives one served demand to another eligible agency and recomputes the row
    and every total: the audit accepts it."""
    inst, res = ample
    from allocator.eligibility import compute_eligibility

    t = compute_eligibility(allocator.load_instance(inst)).triples
    a = read(res, "assignments.csv")
    for i, row in a.iterrows():  # noqa: B007 - i is used after the loop
        other = t[(t["enterprise_id"] == row["enterprise_id"])
                  & (t["service_id"] == row["service_id"]) & (t["agency_id"] != row["agency_id"])]
        if len(other):
            break
    else:
        pytest.fail("no demand with a second eligible agency")
    alt = other.iloc[0]
    a.at[i, "agency_id"], a.at[i, "cost"], a.at[i, "load"] = (
        str(alt["agency_id"]), f"{alt['cost']:.2f}", f"{alt['load']:g}")
    a.at[i, "quality"], a.at[i, "quoted"] = f"{alt['quality']:g}", str(bool(alt["quoted"]))
    a.at[i, "government_cost"], a.at[i, "enterprise_cost"] = f"{alt['cost']:.2f}", "0"
    a.at[i, "agency_name"] = str(alt["agency_id"])  # the builder names agencies by their id
    write(res, "assignments.csv", a)
    recompute_totals(inst, res)
    assert found(inst, res) == {}


def recompute_totals(inst: Path, res: Path) -> None:
    """What a careful planner does after editing assignments.csv: agencies.csv, districts.csv
    and summary.json's plan figures recomputed (here with pandas, from the files)."""
    a = read(res, "assignments.csv")
    for col in ("weight", "load", "cost", "quality"):
        a[col] = a[col].astype(float)
    ag = read(res, "agencies.csv")
    by = a.groupby("agency_id")
    ag["demands"] = ag["agency_id"].map(by.size()).fillna(0).astype(int)
    ag["load"] = ag["agency_id"].map(by["load"].sum()).fillna(0.0)
    ag["contract_value"] = ag["agency_id"].map(by["cost"].sum()).fillna(0.0).round(2)
    ag["utilization"] = (ag["load"] / ag["capacity_days"].astype(float)).fillna(0).round(4)
    ag["districts"] = ag["agency_id"].map(by["district_id"].agg(
        lambda s: ";".join(sorted(set(s))))).fillna("")
    write(res, "agencies.csv", ag)
    d = read(res, "districts.csv")
    byd = a.groupby("district_id")
    d["cost"] = d["district_id"].map(byd["cost"].sum()).fillna(0.0).round(2)
    d["government_cost"] = d["cost"]  # no co-payment in this city
    d["weight_served"] = d["district_id"].map(byd["weight"].sum()).fillna(0.0)
    d["coverage_ratio"] = (d["weight_served"] / d["weight_total"].astype(float)).round(6)
    d["agencies"] = d["district_id"].map(byd["agency_id"].nunique()).fillna(0).astype(int)
    d["demands_served"] = d["district_id"].map(byd.size()).fillna(0).astype(int)
    mand = a[a["risk_level"].astype(int) == 4].groupby("district_id").size()
    d["mandatory_served"] = d["district_id"].map(mand).fillna(0).astype(int)
    top = a.groupby(["district_id", "agency_id"])["cost"].sum().groupby("district_id").max()
    d["max_agency_share"] = (d["district_id"].map(top) / d["cost"]).fillna(0).round(6)
    write(res, "districts.csv", d)
    s = summary(res)
    s["coverage"] = float(a["weight"].sum())
    s["quality"] = float((a["weight"] * a["quality"]).sum())
    s["cost"] = s["contract_value"] = round(float(a["cost"].sum()), 2)
    s["coverage_ratio"] = s["coverage"] / s["weight_total"]
    s["mandatory_served"] = int((a["risk_level"].astype(int) == 4).sum())
    s["agencies_used"] = int(a["agency_id"].nunique())
    s["max_district_share"] = float(d["max_agency_share"].max())
    s["counts"]["demands_served"] = len(a)
    put_summary(res, s)
