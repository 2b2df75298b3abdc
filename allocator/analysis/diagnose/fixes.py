"""What to change so that a diagnosed rule holds: for each diagnosis.csv row, the input file
or policy key (`change`), a value that would make that rule hold (`to`), and the names of
the districts, agencies and enterprises it is about (`subject_name`, and in the message
beside each id). One sentence per row ends with "To make it hold: ...".
"""

from __future__ import annotations

import math
import re

import pandas as pd

from allocator.data.instance import Instance

FIX_COLUMNS = ["subject_name", "change", "to"]
FIX_LEAD = "To make it hold:"


def _names(instance: Instance) -> dict[str, str]:
    out: dict[str, str] = {}
    for frame in (instance.services, instance.enterprises, instance.agencies,
                  instance.districts):
        out.update({str(k): str(v) for k, v in frame["name"].items()})
    return out


def _ids(subject: str) -> list[str]:
    """The ids a subject names: 'D01', 'A1;A2', 'E1/S1', 'A1 in D2', 'city'."""
    parts = re.split(r";| in |/", subject)
    return [p.strip() for p in parts if p.strip() and p.strip() not in ("city", "model")]


def _money(x: float) -> str:
    """Up to the cent, written as a value is typed into a file (no thousands separators)."""
    return f"{math.ceil(x * 100 - 1e-6) / 100:.2f}".removesuffix(".00")


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.3f}".rstrip("0").rstrip(".")


def fix_of(instance: Instance, rule: str, subject: str, required: float | None,
           available: float | None, shortfall: float | None) -> tuple[str, str]:
    """(change, to) for one row: where to change and a value with which the rule holds."""
    pol = instance.policy
    req = None if required is None or pd.isna(required) else float(required)
    av = None if available is None or pd.isna(available) else float(available)
    short = None if shortfall is None or pd.isna(shortfall) else float(shortfall)
    if rule == "budget" and req is not None:
        return "policy.yaml budget.total", f"{_money(req)} or more"
    if rule == "district_budget_cap" and req is not None:
        return f"districts.csv budget_cap of {subject}", f"{_money(req)} or more (or empty)"
    if rule == "capacity" and req is not None:
        ags = subject.split(";")
        if len(ags) == 1:
            return f"agencies.csv capacity_days of {subject}", f"{_num(req)} or more"
        return (f"agencies.csv capacity_days of {', '.join(ags)}",
                f"{_num(short or 0)} more person-days between them (together {_num(req)})")
    if rule == "min_agencies_per_district" and av is not None:
        return ("policy.yaml anti_monopoly.min_agencies_per_district",
                f"{int(av)} or less (district {subject} can have {int(av)} active)")
    if rule == "max_share_in_district":
        cur = pol.max_share_in_district or 1.0
        if " in " in subject and req is not None and av:
            need = min(1.0, cur * req / av)
        elif av:
            need = 1.0 / av
        else:
            return "agencies.csv (an agency for the district)", "at least one eligible agency"
        return "policy.yaml anti_monopoly.max_share_in_district", \
            f"{math.ceil(need * 1e4 - 1e-6) / 1e4:.4f} or more (or null: no cap)"
    if rule == "max_share_in_city":
        cur = pol.max_share_in_city or 1.0
        need = (min(1.0, cur * req / av) if subject != "city" and req is not None and av
                else 1.0 / av if av else 1.0)
        return "policy.yaml anti_monopoly.max_share_in_city", \
            f"{math.ceil(need * 1e4 - 1e-6) / 1e4:.4f} or more (or null: no cap)"
    if rule == "max_districts_per_agency" and req is not None:
        return "policy.yaml anti_monopoly.max_districts_per_agency", f"{int(req)} or more"
    if rule == "min_district_ratio" and req is not None and av is not None:
        ratio = pol.min_district_ratio
        total = req / ratio if ratio > 0 else 0.0
        can = math.floor(av / total * 1e4 + 1e-6) / 1e4 if total > 0 else 0.0
        return "policy.yaml coverage.min_district_ratio", f"{can:.4f} or less"
    if rule in ("mandatory_no_eligible_agency", "mandatory"):
        levels = ", ".join(str(v) for v in pol.mandatory_levels)
        return ("bids.csv / quotes.csv (an eligible offer), or policy.yaml "
                "coverage.mandatory_levels",
                f"an offer from an agency that passes the rules (see excluded.csv), or "
                f"mandatory_levels without level(s) {levels}")
    if rule in ("undetermined", "unexplained"):
        return "policy.yaml solver.time_limit (or --time-limit)", \
            f"more than {pol.time_limit:g} seconds"
    return "", ""


def with_fixes(instance: Instance, table: pd.DataFrame) -> pd.DataFrame:
    """diagnosis.csv rows with subject_name, change and to, and each message naming its ids
    with their names and ending with what to change."""
    if table is None:
        return table
    out = table.copy()
    if out.empty:
        for c in FIX_COLUMNS:
            out[c] = pd.Series(dtype=object)
        return out
    names = _names(instance)
    subject_names, changes, tos, messages = [], [], [], []
    for r in out.to_dict("records"):
        subject = str(r.get("subject", ""))
        ids = _ids(subject)
        subject_names.append("; ".join(names.get(i, "") for i in ids if names.get(i))
                             if ids else "")
        change, to = fix_of(instance, str(r.get("rule")), subject, r.get("required"),
                            r.get("available"), r.get("shortfall"))
        changes.append(change)
        tos.append(to)
        msg = str(r.get("message", ""))
        if FIX_LEAD not in msg:
            for i in ids:
                n = names.get(i)
                if n and n != i and f"{i} ({n})" not in msg:
                    named = f"{i} ({n})".replace("\\", "\\\\")  # literal in re.sub
                    msg = re.sub(rf"(?<![\w-]){re.escape(i)}(?![\w-])", named, msg, count=1)
            if change:
                msg = f"{msg} {FIX_LEAD} {change}: {to}."
        messages.append(msg)
    out["message"] = messages
    out["subject_name"], out["change"], out["to"] = subject_names, changes, tos
    return out
