"""Shared fixtures: a tiny valid instance written from text, and a helper to break it.

`write_instance_files(path, **tables)` writes the tiny instance into `path`, replacing any
file given by keyword (`demands="enterprise_id,...\\n..."`, `policy="budget: ..."`; the name
is the file name without extension, a `bytes` value is written as is, `None` leaves the file
out). The tiny instance is valid and gives no warnings, so each test breaks exactly one thing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: A small valid instance: 2 districts, 2 services, 4 enterprises (risk 1-4), 5 demands,
#: 3 agencies, 8 bids, 1 quote, 1 conflict. Row numbers in tests refer to these texts.
TINY: dict[str, str] = {
    "districts.csv": (
        "district_id,name,budget_cap\n"
        "D1,North,\n"
        "D2,South,60000\n"
    ),
    "services.csv": (
        "service_id,name,reference_rate\n"
        "S1,Hazard inspection,2000\n"
        "S2,Safety training,1000\n"
    ),
    "enterprises.csv": (
        "enterprise_id,name,district_id,sector,risk_level\n"
        "E1,North Chemicals,D1,chemicals,4\n"
        "E2,North Builders,D1,construction,2\n"
        "E3,South Chemicals,D2,chemicals,3\n"
        "E4,South Builders,D2,construction,1\n"
    ),
    "demands.csv": (
        "enterprise_id,service_id,person_days,weight\n"
        "E1,S1,5,\n"
        "E1,S2,2,\n"
        "E2,S1,3,\n"
        "E3,S1,4,\n"
        "E4,S2,2,1.5\n"
    ),
    "agencies.csv": (
        "agency_id,name,status,quality,capacity_days,districts\n"
        "A1,Alpha Safety,active,90,30,*\n"
        "A2,Beta Consulting,active,85,20,D1;D2\n"
        "A3,Gamma Training,probation,75,10,D2\n"
    ),
    "bids.csv": (
        "agency_id,service_id,sector,day_rate\n"
        "A1,S1,chemicals,2100\n"
        "A1,S1,construction,2000\n"
        "A1,S2,chemicals,1000\n"
        "A2,S1,chemicals,1900\n"
        "A2,S1,construction,1800\n"
        "A2,S2,chemicals,1100\n"
        "A2,S2,construction,1000\n"
        "A3,S2,construction,900\n"
    ),
    "quotes.csv": (
        "agency_id,enterprise_id,service_id,price,person_days\n"
        "A2,E3,S1,8000,4\n"
    ),
    "conflicts.csv": (
        "agency_id,enterprise_id\n"
        "A3,E1\n"
    ),
    "policy.yaml": (
        "name: Test town\n"
        "budget:\n"
        "  total: 50000\n"
        "anti_monopoly:\n"
        "  max_share_in_district: null\n"
        "  min_agencies_per_district: 1\n"
    ),
}


def write_instance_files(path: Path, **tables: str | bytes | None) -> Path:
    """Write the tiny instance to `path`, with the given files replaced (None = left out)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    names = {name.rsplit(".", 1)[0]: name for name in TINY}
    unknown = set(tables) - set(names)
    if unknown:
        raise KeyError(f"no such instance file: {sorted(unknown)}")
    for stem, name in names.items():
        content = tables.get(stem, TINY[name])
        target = path / name
        if content is None:
            target.unlink(missing_ok=True)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8", newline="")
    return path


@pytest.fixture
def tiny_instance_dir(tmp_path: Path) -> Path:
    """A fresh copy of the tiny valid instance in tmp_path/instance."""
    return write_instance_files(tmp_path / "instance")
