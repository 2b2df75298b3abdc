"""Write tiny instance folders from Python lists, for hand-made and generated test cases.

The default policy is *neutral*: every key is written out explicitly and every rule that can
be off is off (no mandatory levels, no shares, no agency minimum, no quality threshold, a price
band of [0, 100] x reference), so a test switches on exactly the rule it is about.
"""

from __future__ import annotations

import copy
import csv
import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: every policy key of spec section 3, with the rules off (budget large, band wide)
NEUTRAL_POLICY: dict[str, Any] = {
    "name": "test instance",
    "budget": {"total": 1_000_000_000},
    "coverage": {
        "weights": {1: 1, 2: 2, 3: 4, 4: 8},
        "mandatory_levels": [],
        "min_district_ratio": 0.0,
    },
    "anti_monopoly": {
        "max_share_in_district": None,
        "min_agencies_per_district": 0,
        "max_share_in_city": None,
        "max_districts_per_agency": None,
    },
    "quality": {"min_score": 0, "min_score_by_risk": {}},
    "price": {"floor_ratio": 0.0, "ceiling_ratio": 100.0},
    "solver": {"name": "auto", "time_limit": 20, "mip_gap": 0.0001, "seed": 0, "threads": 1},
}

COLUMNS: dict[str, list[str]] = {
    "districts.csv": ["district_id", "name", "budget_cap"],
    "services.csv": ["service_id", "name", "reference_rate"],
    "enterprises.csv": ["enterprise_id", "name", "district_id", "sector", "risk_level"],
    "demands.csv": ["enterprise_id", "service_id", "person_days", "weight"],
    "agencies.csv": ["agency_id", "name", "status", "quality", "capacity_days", "districts"],
    "bids.csv": ["agency_id", "service_id", "sector", "day_rate"],
    "quotes.csv": ["agency_id", "enterprise_id", "service_id", "price", "person_days"],
    "conflicts.csv": ["agency_id", "enterprise_id"],
    "incumbents.csv": ["enterprise_id", "service_id", "agency_id", "years"],
    "pins.csv": ["enterprise_id", "service_id", "agency_id", "action", "note"],
    "evaluations.csv": ["agency_id", "scorer", "score", "violation", "enterprise_id", "date",
                        "note"],
}

SECTOR = "chem"


def merge(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    """base with changes merged in section by section (maps of levels are replaced whole)."""
    out = copy.deepcopy(base)
    for key, value in (changes or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in (
                "weights", "min_score_by_risk"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def policy(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The neutral policy with changes merged in, e.g. {"budget": {"total": 5000}}."""
    return merge(NEUTRAL_POLICY, changes)


# one-row helpers: the spec's columns in order, sensible defaults for the rest

def district(district_id: str, budget_cap: float | None = None) -> dict[str, Any]:
    return {"district_id": district_id, "name": district_id, "budget_cap": budget_cap}


def service(service_id: str, reference_rate: float = 1000) -> dict[str, Any]:
    return {"service_id": service_id, "name": service_id, "reference_rate": reference_rate}


def enterprise(enterprise_id: str, district_id: str = "D1", risk_level: int = 2,
               sector: str = SECTOR) -> dict[str, Any]:
    return {"enterprise_id": enterprise_id, "name": enterprise_id, "district_id": district_id,
            "sector": sector, "risk_level": risk_level}


def demand(enterprise_id: str, service_id: str = "S1", person_days: float = 5,
           weight: float | None = None) -> dict[str, Any]:
    return {"enterprise_id": enterprise_id, "service_id": service_id,
            "person_days": person_days, "weight": weight}


def agency(agency_id: str, quality: float = 80, capacity_days: float = 1000,
           status: str = "active", districts: str = "*") -> dict[str, Any]:
    return {"agency_id": agency_id, "name": agency_id, "status": status, "quality": quality,
            "capacity_days": capacity_days, "districts": districts}


def bid(agency_id: str, day_rate: float = 1000, service_id: str = "S1",
        sector: str = SECTOR) -> dict[str, Any]:
    return {"agency_id": agency_id, "service_id": service_id, "sector": sector,
            "day_rate": day_rate}


def quote(agency_id: str, enterprise_id: str, price: float, person_days: float,
          service_id: str = "S1") -> dict[str, Any]:
    return {"agency_id": agency_id, "enterprise_id": enterprise_id, "service_id": service_id,
            "price": price, "person_days": person_days}


def conflict(agency_id: str, enterprise_id: str) -> dict[str, Any]:
    return {"agency_id": agency_id, "enterprise_id": enterprise_id}


def incumbent(enterprise_id: str, agency_id: str, years: int = 1,
              service_id: str = "S1") -> dict[str, Any]:
    return {"enterprise_id": enterprise_id, "service_id": service_id, "agency_id": agency_id,
            "years": years}


def pin(enterprise_id: str, agency_id: str, action: str = "assign",
        service_id: str = "S1", note: str = "") -> dict[str, Any]:
    return {"enterprise_id": enterprise_id, "service_id": service_id, "agency_id": agency_id,
            "action": action, "note": note}


def evaluation(agency_id: str, scorer: str, score: float, violation: str = "",
               enterprise_id: str = "") -> dict[str, Any]:
    return {"agency_id": agency_id, "scorer": scorer, "score": score, "violation": violation,
            "enterprise_id": enterprise_id, "date": "", "note": ""}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_table(path: Path, file: str, rows: list[dict[str, Any]]) -> None:
    """One CSV with the spec's columns (extra keys of the rows are kept as extra columns)."""
    cols = list(COLUMNS[file])
    for row in rows:
        cols += [k for k in row if k not in cols]
    with (path / file).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            w.writerow([_cell(row.get(c)) for c in cols])


def write_instance(path: str | Path, *, enterprises: list[dict[str, Any]],
                   demands: list[dict[str, Any]], agencies: list[dict[str, Any]],
                   bids: list[dict[str, Any]], quotes: list[dict[str, Any]] | None = None,
                   conflicts: list[dict[str, Any]] | None = None,
                   districts: list[dict[str, Any]] | None = None,
                   services: list[dict[str, Any]] | None = None,
                   policy_changes: dict[str, Any] | None = None,
                   raw_policy: dict[str, Any] | None = None,
                   incumbents: list[dict[str, Any]] | None = None,
                   pins: list[dict[str, Any]] | None = None,
                   evaluations: list[dict[str, Any]] | None = None) -> Path:
    """Write an instance folder; districts default to those the enterprises name (no cap),
    services to S1 at 1000 per person-day, the policy to NEUTRAL_POLICY + policy_changes (or
    `raw_policy` as it is, so the spec's defaults apply to every key it leaves out).
    quotes.csv / conflicts.csv (and the year's incumbents.csv, pins.csv, evaluations.csv)
    are written only when given."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if districts is None:
        districts = [district(d) for d in dict.fromkeys(e["district_id"] for e in enterprises)]
    if services is None:
        services = [service("S1")]
    tables = {"districts.csv": districts, "services.csv": services,
              "enterprises.csv": enterprises, "demands.csv": demands,
              "agencies.csv": agencies, "bids.csv": bids}
    if quotes is not None:
        tables["quotes.csv"] = quotes
    if conflicts is not None:
        tables["conflicts.csv"] = conflicts
    for file, rows in (("incumbents.csv", incumbents), ("pins.csv", pins),
                       ("evaluations.csv", evaluations)):
        if rows is not None:
            tables[file] = rows
    for file, rows in tables.items():
        write_table(path, file, rows)
    with (path / "policy.yaml").open("w", encoding="utf-8") as fh:
        yaml.safe_dump(raw_policy if raw_policy is not None else policy(policy_changes), fh,
                       sort_keys=False)
    return path


# ------------------------------------------------------------------------------------------
# solving a folder as the CLI does, writing the results and checking them independently
# ------------------------------------------------------------------------------------------

Triple = tuple[str, str, str]


def plan(*items: str) -> frozenset[Triple]:
    """A plan from 'E1:A2' (service S1) or 'E1/S2:A2' items, as (enterprise, service, agency)."""
    out = set()
    for item in items:
        left, a = item.split(":")
        e, s = left.split("/") if "/" in left else (left, "S1")
        out.add((e, s, a))
    return frozenset(out)


@dataclass
class Outcome:
    """One solve of a folder: the run, its plan as triples, and where its results were written."""

    result: Any
    plan: frozenset[Triple]
    results_dir: Path
    instance: Any = None

    @property
    def status(self) -> str:
        return self.result.summary["status"]

    def level(self, name: str) -> float:
        return float(self.result.summary[name])


def run_check(instance_dir: Path, results_dir: Path) -> list[str]:
    """The independent auditor (allocator.analysis.audit) on a results folder: its findings."""
    from allocator.analysis.audit import check_results

    return [str(v) for v in check_results(instance_dir, results_dir)]


def check_rules(instance_dir: Path, results_dir: Path) -> set[str]:
    """The names of the rules the checker finds broken (empty set: every rule holds)."""
    from allocator.analysis.audit import check_results

    return {v.rule for v in check_results(instance_dir, results_dir)}


_counter = itertools.count()


def variant(src: Path, dst: Path, policy_changes: dict[str, Any] | None = None,
            tables: dict[str, list[dict[str, Any]]] | None = None,
            drop: tuple[str, ...] = ()) -> Path:
    """A copy of an instance folder with policy changes, replaced tables, dropped files.

    The 'rule switched off' twin of a case is a folder of its own, so that the checker, which
    reads only files, judges that solve too.
    """
    src, dst = Path(src), Path(dst)
    shutil.copytree(src, dst)
    for file in drop:
        (dst / file).unlink()
    for file, rows in (tables or {}).items():
        write_table(dst, file, rows)
    if policy_changes:
        raw = yaml.safe_load((src / "policy.yaml").read_text(encoding="utf-8"))
        with (dst / "policy.yaml").open("w", encoding="utf-8") as fh:
            yaml.safe_dump(merge(raw, policy_changes), fh, sort_keys=False)
    return dst


def solve_folder(path: Path, work: Path, check: bool = True) -> Outcome:
    """allocator.load_instance + solve + Plan.write into work/results-N, then audit them.

    Every solve goes through the independent checker (also infeasible ones: their summary and
    diagnosis.csv are checked too).
    """
    import allocator

    inst = allocator.load_instance(path)
    plan = allocator.solve(inst)
    result = plan.result
    a = result.assignments
    triples = frozenset() if a.empty else frozenset(
        zip(a["enterprise_id"], a["service_id"], a["agency_id"], strict=True))
    out = Path(work) / f"results-{next(_counter)}"
    plan.write(out)
    if check:
        findings = run_check(path, out)
        assert findings == [], f"the audit fails the results of {path}:\n" + "\n".join(
            findings)
    return Outcome(result, triples, out, inst)


def solve_result(inst, **kwargs):
    """allocator.solve's result (summary, tables and, when infeasible, the diagnosis)."""
    import allocator

    return allocator.solve(inst, **kwargs).result
