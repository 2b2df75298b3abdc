"""What one run produced: the plan's tables, its summary and, when there is no plan, why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from allocator.solvers import Status

ASSIGNMENT_COLUMNS = ["enterprise_id", "service_id", "agency_id", "district_id", "sector",
                      "risk_level", "weight", "load", "cost", "quality", "quoted",
                      "reference_cost"]


UNSERVED_COLUMNS = ["enterprise_id", "service_id", "district_id", "sector", "risk_level",
                    "weight", "reason", "detail", "eligible_agencies"]


AGENCY_COLUMNS = ["agency_id", "demands", "load", "capacity_days", "utilization",
                  "contract_value", "districts", "name", "status", "quality"]


DISTRICT_COLUMNS = ["district_id", "cost", "budget_cap", "weight_total", "weight_served",
                    "coverage_ratio", "agencies", "max_agency_share", "name", "demands",
                    "demands_served", "mandatory_total", "mandatory_served"]


DIAGNOSIS_COLUMNS = ["rule", "subject", "required", "available", "shortfall", "message"]


MONEY = ["cost", "contract_value", "budget_cap", "reference_cost"]


@dataclass
class RunResult:
    """Everything a run produced: the plan's tables, the summary (summary.json) and, if
    infeasible, why (diagnosis.csv rows)."""

    summary: dict[str, Any]
    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    unserved: pd.DataFrame = field(default_factory=pd.DataFrame)
    agencies: pd.DataFrame = field(default_factory=pd.DataFrame)
    districts: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnosis: pd.DataFrame | None = None

    @property
    def status(self) -> Status:
        """optimal, feasible (a plan not proven within the gap), infeasible, no_solution, error."""
        return Status(self.summary["status"])

    @property
    def coverage(self) -> float | None:
        """Served risk-weighted demand (level 1), None without a plan."""
        return self.summary.get("coverage")

    @property
    def quality(self) -> float | None:
        """Sum over served demands of weight x agency quality (level 2)."""
        return self.summary.get("quality")

    @property
    def cost(self) -> float | None:
        """Total cost of the plan (level 3), in the policy's currency."""
        return self.summary.get("cost")

    @property
    def gap(self) -> float | None:
        """The largest relative gap of the optimised levels (None: unknown)."""
        return self.summary.get("gap")

    @property
    def levels(self) -> list[dict[str, Any]]:
        """Per level: name, sense, status, value, bound, gap, seconds."""
        return list(self.summary.get("levels") or [])
