"""An independent small-city generator for the scale tests (issue 22).

It shares no code with allocator.data.generate and draws from other distributions: risk
levels from a skewed table that depends on the sector, person-days from a geometric law,
agencies that each cover a random block of neighbouring districts, day rates as a per-agency
markup (gamma) over the reference rate with a per-sector surcharge, a few quotes, conflicts
and district caps. The policy's solver settings are the test's (one thread, so every
executor solves exactly the same way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SECTORS = {"mining": [0.1, 0.3, 0.35, 0.25], "logistics": [0.4, 0.35, 0.2, 0.05],
           "food": [0.55, 0.3, 0.1, 0.05]}
SERVICES = [("SV-A", "Hazard survey", 1800.0), ("SV-B", "Drill review", 950.0),
            ("SV-C", "Standardisation", 1400.0)]


def build_city(folder: Path, seed: int, enterprises: int = 24, agencies: int = 7,
               districts: int = 3, budget: float = 150_000.0, time_limit: float = 30.0,
               mip_gap: float = 1e-6, caps: bool = True) -> Path:
    """Write an instance folder; return its path."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dist_ids = [f"Z{k + 1}" for k in range(districts)]
    dist_rows = []
    for k, d in enumerate(dist_ids):
        cap = "" if not caps or k % 2 else str(int(rng.integers(4, 9)) * 10_000)
        dist_rows.append({"district_id": d, "name": f"Zone {k + 1}", "budget_cap": cap})
    sectors = list(SECTORS)
    ent = []
    for k in range(enterprises):
        sector = sectors[int(rng.integers(len(sectors)))]
        risk = int(rng.choice([1, 2, 3, 4], p=SECTORS[sector]))
        ent.append({"enterprise_id": f"F{k:03d}", "name": f"Firm {k}",
                    "district_id": dist_ids[int(rng.integers(districts))], "sector": sector,
                    "risk_level": risk})
    dem = []
    for e in ent:
        wanted = rng.random(len(SERVICES)) < [0.8, 0.5, 0.3]
        if not wanted.any():
            wanted[int(rng.integers(len(SERVICES)))] = True
        for (sid, _, _), w in zip(SERVICES, wanted, strict=True):
            if w:
                dem.append({"enterprise_id": e["enterprise_id"], "service_id": sid,
                            "person_days": int(rng.geometric(0.35)) + 1, "weight": ""})
    ag, bids = [], []
    for k in range(agencies):
        start = int(rng.integers(districts))
        span = int(rng.integers(1, districts + 1))
        served = [dist_ids[(start + j) % districts] for j in range(span)]
        everywhere = rng.random() < 0.3
        status = "probation" if rng.random() < 0.15 else "active"
        ag.append({"agency_id": f"G{k:02d}", "name": f"Agency {k}", "status": status,
                   "quality": int(rng.integers(62, 99)),
                   "capacity_days": int(rng.poisson(14)) + 6,
                   "districts": "*" if everywhere else ";".join(served)})
        markup = float(rng.gamma(20.0, 0.05))  # around 1.0, spread ~0.2
        for sid, _, rate in SERVICES:
            if rng.random() < 0.75:
                for sector in sectors:
                    if rng.random() < 0.8:
                        surcharge = 1.0 + 0.05 * sectors.index(sector)
                        bids.append({"agency_id": f"G{k:02d}", "service_id": sid,
                                     "sector": sector,
                                     "day_rate": round(rate * markup * surcharge, 2)})
    # every service of every sector has at least three bidders that pass the price band
    bid_frame = pd.DataFrame(bids)
    for sid, _, rate in SERVICES:
        for sector in sectors:
            have = set(bid_frame.loc[(bid_frame["service_id"] == sid)
                                     & (bid_frame["sector"] == sector), "agency_id"]) \
                if len(bid_frame) else set()
            for a in ag[:3]:
                if a["agency_id"] not in have:
                    bids.append({"agency_id": a["agency_id"], "service_id": sid,
                                 "sector": sector, "day_rate": rate})
    for a in ag[:3]:
        a["status"], a["quality"], a["districts"] = "active", max(a["quality"], 85), "*"
    quotes = []
    for d in dem[:: max(1, len(dem) // 3)]:
        rate = dict((s, r) for s, _, r in SERVICES)[d["service_id"]]
        quotes.append({"agency_id": ag[int(rng.integers(agencies))]["agency_id"],
                       "enterprise_id": d["enterprise_id"], "service_id": d["service_id"],
                       "price": round(rate * d["person_days"] * float(rng.uniform(0.9, 1.2)),
                                      2), "person_days": d["person_days"]})
    conflicts = [{"agency_id": ag[-1]["agency_id"], "enterprise_id": ent[0]["enterprise_id"]}]
    tables = {"districts": dist_rows, "services": [
        {"service_id": s, "name": n, "reference_rate": r} for s, n, r in SERVICES],
        "enterprises": ent, "demands": dem, "agencies": ag, "bids": bids, "quotes": quotes,
        "conflicts": conflicts}
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    policy = {"name": f"independent test city {seed}", "budget": {"total": budget},
              "anti_monopoly": {"max_share_in_district": 0.7, "min_agencies_per_district": 2},
              "solver": {"name": "auto", "time_limit": time_limit, "mip_gap": mip_gap,
                         "seed": 0, "threads": 1}}
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False),
                                        encoding="utf-8")
    return folder
