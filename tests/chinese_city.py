"""A small city with Chinese names, written by hand (not by allocator generate), with the
traps procurement files meet: names that a spreadsheet would run as formulas, an agency the
rules keep out, one that is dearer, one with too little capacity, and a report section of
the policy in Chinese with the yuan as currency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instance_builder import agency, bid, demand, district, enterprise, service, write_instance

DISTRICTS = [("D1", "市南区"), ("D2", "东港区"), ("D3", "北城区")]
SERVICES = [("S1", "隐患排查", 1000), ("S2", "安全培训", 800)]
#: (id, name, district, risk)
ENTERPRISES = [
    ("E01", "华东化工有限公司", "D1", 4), ("E02", "=HYPERLINK(\"http://x\")危化仓储", "D1", 3),
    ("E03", "鑫源建材厂", "D1", 2), ("E04", "@SUM(1)港口物流", "D2", 4),
    ("E05", "东港机械制造", "D2", 2), ("E06", "-3 海洋渔业公司", "D2", 1),
    ("E07", "北城燃气公司", "D3", 4), ("E08", "+1 食品加工厂", "D3", 2),
    ("E09", "北城印刷厂", "D3", 1),
]
#: (id, name, quality, capacity, status, day rate factor)
AGENCIES = [
    ("A1", "安泰安全咨询", 92, 60, "active", 1.10),
    ("A2", "=平安技术服务", 85, 60, "active", 1.00),
    ("A3", "众诚风险评估", 78, 60, "active", 0.95),
    ("A4", "恒信检测中心", 88, 1, "active", 1.00),  # too little capacity for any demand
    ("A5", "宏达安全（暂停）", 90, 60, "suspended", 0.90),  # kept out by its status
    ("A6", "远航安全工程", 80, 60, "active", 1.45),  # eligible, but dear
]


def write_chinese_city(path: Path, budget: float = 1_000_000,
                       policy_changes: dict[str, Any] | None = None) -> Path:
    """Write the city to path (folder); policy: three agencies per served district would
    need more agencies, so the minimum is 2; mandatory level 4; report in Chinese, in 元."""
    enterprises = [{**enterprise(e, d, risk_level=r), "name": n, "sector": "chem"}
                   for e, n, d, r in ENTERPRISES]
    demands = []
    for k, (e, _n, _d, r) in enumerate(ENTERPRISES):
        demands.append(demand(e, "S1", person_days=4 + (k % 3)))
        if r >= 3 or k % 2 == 0:
            demands.append(demand(e, "S2", person_days=2))
    agencies = [{**agency(a, quality=q, capacity_days=c, status=s), "name": n}
                for a, n, q, c, s, _f in AGENCIES]
    bids = [bid(a, round(rate * f), service_id=sid)
            for a, _n, _q, _c, _s, f in AGENCIES for sid, _sn, rate in SERVICES]
    changes = {"name": "滨海市 2027 年度", "budget": {"total": budget},
               "coverage": {"mandatory_levels": [4]},
               "anti_monopoly": {"max_share_in_district": 0.8,
                                 "min_agencies_per_district": 2},
               "quality": {"min_score": 60, "min_score_by_risk": {4: 80}},
               "price": {"floor_ratio": 0.5, "ceiling_ratio": 1.5},
               "solver": {"time_limit": 30},
               "report": {"language": "zh", "currency": "元"}}
    for key, value in (policy_changes or {}).items():
        changes[key] = {**changes.get(key, {}), **value} if isinstance(value, dict) else value
    return write_instance(
        path, enterprises=enterprises, demands=demands, agencies=agencies, bids=bids,
        districts=[{**district(d), "name": n} for d, n in DISTRICTS],
        services=[{**service(s, rate), "name": n} for s, n, rate in SERVICES],
        policy_changes=changes)
