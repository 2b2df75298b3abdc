"""Stage 1 facts of the planner's year: assignments fixed before any solve that break a rule.

A pin `assign` fixes a triple; max_changes that allows no change fixes every demand whose
incumbent is still eligible to that incumbent. When the fixed assignments alone need more of
an agency's capacity, a district's cap or the budget than there is, the pin or the
continuity rule is named with the agency (or district) and the size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.analysis.diagnose.reasons import Reason, _listing, _num
from allocator.data.funding import government_cost
from allocator.data.history import allowed_changes
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.eligibility.incumbents import incumbent_triples, pinned_triples


def fixed_assignments(instance: Instance, elig: Eligibility) -> pd.DataFrame:
    """The triples fixed before solving, each with `by` (pin or max_changes)."""
    t = elig.triples
    pinned = pinned_triples(instance, t)
    # money rules count the government's part (co-payment aside)
    t = t.assign(gov=government_cost(instance.policy, t["cost"], t["risk_level"]))
    by = np.where(pinned, "pin", "")
    ratio = instance.policy.max_changes
    if ratio is not None:
        mine = incumbent_triples(instance, t)
        if mine.any() and allowed_changes(ratio, int(mine.sum())) == 0:
            by = np.where(mine & ~pinned, "max_changes", by)
    fixed = t[by != ""].assign(by=by[by != ""])
    return fixed


def _who(rows: pd.DataFrame, instance: Instance) -> tuple[str, str]:
    """The rule the fixed rows come from and how to say it."""
    n = len(rows)
    names = _listing([f"{e}/{s}" for e, s in zip(rows["enterprise_id"], rows["service_id"],
                                                  strict=True)])
    if (rows["by"] == "pin").all():
        return "pin", f"pins.csv assigns it {n} demand{'s' if n != 1 else ''} ({names})"
    ratio = instance.policy.max_changes
    text = (f"max_changes {ratio:g} keeps {n} demand{'s' if n != 1 else ''} with it as their "
            f"still-eligible incumbent" + (" or by a pin" if (rows["by"] == "pin").any() else "")
            + f" ({names})")
    return "max_changes", text


def _keys(rule: str, subject: str, other: tuple[str, str], rows: pd.DataFrame) -> frozenset:
    """What a reason covers, so the elastic re-solve does not name it again: the subject, the
    rule it breaks, each pinned demand, and max_changes as a whole."""
    keys = {(rule, subject), other}
    keys |= {("pin", f"{e}/{s}") for e, s, by in zip(rows["enterprise_id"], rows["service_id"],
                                                      rows["by"], strict=True) if by == "pin"}
    if (rows["by"] == "max_changes").any():
        keys.add(("max_changes", "city"))
    return frozenset(keys)


def fixed_capacity(instance: Instance, fixed: pd.DataFrame) -> list[Reason]:
    """An agency whose fixed assignments alone need more than its capacity."""
    cap = instance.agencies["capacity_days"].astype(float)
    out = []
    for agency, rows in fixed.groupby("agency_id", sort=False, observed=True):
        need, have = float(rows["load"].sum()), float(cap[str(agency)])
        if need <= have + 1e-9:
            continue
        rule, text = _who(rows, instance)
        out.append(Reason(rule, str(agency), need, have, need - have,
                          f"Agency {agency}: {text}, needing {_num(need)} person-days; its "
                          f"capacity is {_num(have)} ({_num(need - have)} short).",
                          _keys(rule, str(agency), ("capacity", str(agency)), rows)))
    return out


def fixed_money(instance: Instance, fixed: pd.DataFrame) -> list[Reason]:
    """A district cap or the budget below the cost of the fixed assignments alone."""
    out = []
    caps = instance.districts["budget_cap"]
    for district, rows in fixed.groupby("district_id", sort=False, observed=True):
        cap = caps.get(str(district))
        spend = float(rows["gov"].sum())
        if cap is None or pd.isna(cap) or spend <= float(cap) * (1 + 1e-9):
            continue
        rule, _ = _who(rows, instance)
        out.append(Reason(rule, str(district), spend, float(cap), spend - float(cap),
                          f"District {district}: the assignments fixed by "
                          f"{'pins' if rule == 'pin' else 'max_changes'} cost {_num(spend)}; "
                          f"its budget cap is {_num(cap)} ({_num(spend - float(cap))} short).",
                          _keys(rule, str(district), ("district_budget_cap", str(district)),
                                rows)))
    total, budget = float(fixed["gov"].sum()), instance.policy.budget_total
    if budget is not None and len(fixed) and total > budget * (1 + 1e-9):
        rule, _ = _who(fixed, instance)
        out.append(Reason(rule, "city", total, budget, total - budget,
                          f"The assignments fixed by {'pins' if rule == 'pin' else 'max_changes'}"
                          f" cost {_num(total)}, more than the budget of {_num(budget)} "
                          f"({_num(total - budget)} short).",
                          _keys(rule, "city", ("budget", "city"), fixed)))
    return out


def continuity_checks(instance: Instance, elig: Eligibility) -> list[Reason]:
    """Every stage-1 fact about pins and continuity rules."""
    fixed = fixed_assignments(instance, elig)
    if fixed.empty:
        return []
    return fixed_capacity(instance, fixed) + fixed_money(instance, fixed)
