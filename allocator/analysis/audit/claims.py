"""The audit of summary.json's claims about the solve: status, gap and bound.

- `optimal` needs a known gap within policy.yaml's solver.mip_gap, and a coverage bound;
- the coverage bound must be at least the plan's coverage (it bounds what any plan can serve),
  and the gap at least the one the bound and the coverage give;
- an unserved demand that an eligible offer could serve without breaking any rule (found in
  reasons.py) proves a plan serving its weight more exists: the bound must cover that plan
  and the gap must allow it;
- each level listed in `levels` likewise (status, gap, value against bound).

These use only the instance and the plan in the folder, never a figure the claims rest on.
"""

from __future__ import annotations

from typing import Any

from allocator.analysis.audit.common import Violation, is_number, show_num
from allocator.analysis.audit.reasons import Free

FILE = "summary.json"
#: relative slack on gaps: a held level may give up 1e-6 of its value to the next level
#: (pipeline.lexicographic.hold_tolerance), and the summary keeps ~15 digits
GAP_SLACK = 2e-6


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) and not isinstance(value, bool) else None


def check_claims(out: list[Violation], s: dict[str, Any], mip_gap: float, coverage: float,
                 free: Free) -> None:
    """status / gap / bound of summary.json against the recomputed plan."""
    status = s.get("status")
    gap, bound = _number(s.get("gap")), _number(s.get("bound"))
    scale = max(1.0, abs(coverage))

    def claim(key: str, message: str) -> None:
        out.append(Violation("summary_claims", FILE, None, key, message))

    for key in ("gap", "bound"):
        if s.get(key) is not None and _number(s.get(key)) is None:
            claim(key, f"{key} is {s.get(key)!r}, not a number")
    if gap is not None and gap < 0:
        claim("gap", f"gap is {show_num(gap)}; a gap is never negative")
    if status == "optimal":
        if gap is None:
            claim("gap", "status is optimal but the gap is unknown (null): optimal needs a "
                         "proven gap")
        elif gap > mip_gap + GAP_SLACK:
            claim("gap", f"status is optimal but the gap {show_num(gap)} is above policy.yaml's "
                         f"mip_gap {show_num(mip_gap)}")
        if bound is None:
            claim("bound", "status is optimal but no coverage bound is given")
    if bound is not None:
        if bound < coverage - GAP_SLACK * scale:
            claim("bound", f"the coverage bound {show_num(bound)} is below the plan's own "
                           f"coverage {show_num(coverage)}; a bound caps every plan")
        if gap is not None and gap < (bound - coverage) / scale - GAP_SLACK:
            implied = show_num((bound - coverage) / scale)
            claim("gap", f"gap is {show_num(gap)}, but the bound {show_num(bound)} and the "
                         f"coverage {show_num(coverage)} give {implied}")
    if free.weight > 0:
        better = coverage + free.weight
        if bound is not None and bound < better - GAP_SLACK * scale:
            claim("bound", f"the coverage bound {show_num(bound)} is below {show_num(better)}: "
                           f"unserved demand {free.subject} (weight {show_num(free.weight)}) "
                           "could be added without breaking a rule")
        if gap is not None and gap < free.weight / scale - GAP_SLACK:
            claim("gap", f"gap {show_num(gap)} is too small: unserved demand {free.subject} "
                         f"(weight {show_num(free.weight)}) could be added without breaking a "
                         f"rule, a coverage gap of at least {show_num(free.weight / scale)}")
    check_levels(out, s.get("levels"), status, mip_gap)


def check_levels(out: list[Violation], levels: Any, status: Any, mip_gap: float) -> None:
    """Each level's own claims: optimal within the gap, the bound on the right side."""
    if levels is None:
        return
    if not isinstance(levels, list) or not all(isinstance(v, dict) for v in levels):
        out.append(Violation("summary_claims", FILE, None, "levels",
                             "levels must be a list of objects (name, status, value, bound, "
                             "gap)"))
        return
    for lvl in levels:
        name = str(lvl.get("name"))
        if lvl.get("optimised") is False:
            continue
        value, bound, gap = (_number(lvl.get(k)) for k in ("value", "bound", "gap"))
        key = f"levels.{name}"
        if status == "optimal" and lvl.get("status") != "optimal":
            out.append(Violation("summary_claims", FILE, None, key,
                                 f"the run is optimal but level {name} is "
                                 f"{lvl.get('status')}"))
        if lvl.get("status") == "optimal" and (gap is None or gap > mip_gap + GAP_SLACK):
            out.append(Violation("summary_claims", FILE, None, key,
                                 f"level {name} is optimal but its gap is "
                                 f"{'unknown' if gap is None else show_num(gap)} "
                                 f"(mip_gap {show_num(mip_gap)})"))
        if value is None or bound is None:
            continue
        scale = max(1.0, abs(value))
        sense = lvl.get("sense", "max" if name != "cost" else "min")
        wrong_side = bound < value - GAP_SLACK * scale if sense == "max" else (
            bound > value + GAP_SLACK * scale)
        if wrong_side:
            out.append(Violation("summary_claims", FILE, None, key,
                                 f"level {name} ({sense}) has value {show_num(value)} beyond "
                                 f"its own bound {show_num(bound)}"))
        if gap is not None and gap < abs(bound - value) / scale - GAP_SLACK:
            out.append(Violation("summary_claims", FILE, None, key,
                                 f"level {name}'s gap {show_num(gap)} is smaller than its value "
                                 f"and bound give ({show_num(abs(bound - value) / scale)})"))
