"""The diagnosis's records (a reason per broken rule) and its wording in plain sentences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from allocator.data.instance import Instance
from allocator.pipeline.result import DIAGNOSIS_COLUMNS
from allocator.solvers import Status

#: decimals kept in diagnosis.csv by rule (currency to the cent, person-days to 1/1000)
ROUND = {"budget": 2, "district_budget_cap": 2, "max_share_in_district": 2,
         "max_share_in_city": 2, "capacity": 3, "funding": 2}


@dataclass
class Reason:
    """One row of diagnosis.csv, plus the (rule, entity) keys it covers for de-duplication."""

    rule: str
    subject: str
    required: float | None
    available: float | None
    shortfall: float | None
    message: str
    keys: frozenset = frozenset()
    cause: bool = True  # False: a consequence worth telling, not itself a cause

    def row(self) -> dict:
        digits = ROUND.get(self.rule, 6)

        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), digits)

        return {"rule": self.rule, "subject": self.subject, "required": r(self.required),
                "available": r(self.available), "shortfall": r(self.shortfall),
                "message": self.message}


@dataclass
class ElasticResult:
    """The elastic re-solve: its reasons, total weighted violation and least budget."""

    status: Status
    reasons: list[Reason] = field(default_factory=list)
    violation: float | None = None  # level 1: weighted violation of every rule but budget
    least_cost: float | None = None  # level 2: least total cost with level 1 held
    least_cost_bound: float | None = None
    least_cost_proven: bool = False
    seconds: float = 0.0
    violation_bound: float = 0.0  # level 1's proven lower bound: > 0 proves infeasibility
    unrelaxed: list[str] = field(default_factory=list)  # row blocks of unknown meaning, hard
    by_source: dict[str, float] | None = None  # per funding source: what the least plan uses

    @property
    def proven(self) -> bool:
        """True when the violation found is proven the least, so each slack is a cause."""
        return self.status is Status.OPTIMAL

    @property
    def infeasible_proven(self) -> bool:
        """True when level 1's bound proves some violation unavoidable (no plan exists)."""
        return self.violation_bound > 1e-6 or (self.proven and (self.violation or 0.0) > 1e-6)


@dataclass
class Diagnosis:
    """Everything `explain` found: the table, whether a plan exists, and the elastic figures."""

    reasons: list[Reason]
    status: str  # feasible (a plan meets every rule), infeasible, undetermined (time ran out)
    elastic: ElasticResult | None
    solver: str
    seconds: float
    instance: Instance | None = None  # names and fixes are added from it

    @property
    def feasible(self) -> bool:
        return self.status == "feasible"

    @property
    def table(self) -> pd.DataFrame:
        """diagnosis.csv: one row per reason, with what to change (analysis/diagnose/fixes)."""
        from allocator.analysis.diagnose.fixes import with_fixes

        frame = pd.DataFrame([r.row() for r in self.reasons], columns=DIAGNOSIS_COLUMNS)
        return with_fixes(self.instance, frame) if self.instance is not None else frame


def _num(x: float) -> str:
    """A number for a sentence: thousands separators, decimals only when they matter."""
    return f"{x:,.0f}" if abs(x - round(x)) < 0.005 else f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def _mandatory_phrase(instance: Instance) -> str:
    levels = tuple(instance.policy.mandatory_levels)
    if levels == (4,):
        return "major-risk"
    return "mandatory (risk level " + ", ".join(str(v) for v in levels) + ")"


def _listing(items: list[str], limit: int = 6) -> str:
    """'a, b and c', or 'a, b, ... and 7 more' for a long list."""
    items = list(items)
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _mandatory_mask(instance: Instance, frame: pd.DataFrame) -> pd.Series:
    return frame["risk_level"].isin(instance.policy.mandatory_levels)


def budget_reason(instance: Instance, least: float, bound: float | None, proven: bool,
                  extra_served: int = 0, with_violations: bool = False,
                  cause: bool = True) -> Reason:
    """The budget row of a diagnosis: the least budget with which every other rule holds
    (to the cent), the shortfall, and how sure that figure is."""
    budget = instance.policy.budget_limit
    need = math.ceil(least * 100 - 1e-6) / 100
    phrase = _mandatory_phrase(instance)
    goal = (f"serve every {phrase} demand"
            if bool(_mandatory_mask(instance, instance.demands).any())
            else "meet the other rules")
    msg = f"The budget is {_num(need - budget)} short of the {_num(need)} needed to {goal}."
    if with_violations:
        msg += " That is with the other rules' shortfalls listed here allowed."
    if extra_served:
        msg += (f" The least-cost plan also serves {extra_served} other demand"
                f"{'s' if extra_served > 1 else ''}, which the other rules need (minimum "
                f"agencies, share caps or coverage).")
    if not proven:  # one budget in words; the proven lower bound stays in summary.json
        msg += " This is the least budget found in the time allowed, not proven the least."
    return Reason("budget", "city", need, budget, need - budget, msg,
                  frozenset({("budget", "city")}), cause)


def extra_served(instance: Instance, plan: pd.DataFrame) -> int:
    """Demands below the mandatory levels that a least-cost plan serves (the other rules need
    them); 0 when the instance has no mandatory demand."""
    if not bool(_mandatory_mask(instance, instance.demands).any()):
        return 0
    return int((~_mandatory_mask(instance, plan)).sum())
