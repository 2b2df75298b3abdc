"""What one run produced: the plan's tables, its summary and, when there is no plan, why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from allocator.solvers import Status

#: the columns of an eligible triple that an assignment row carries
TRIPLE_COLUMNS = ["enterprise_id", "service_id", "agency_id", "district_id", "sector",
                  "risk_level", "weight", "load", "cost", "quality", "quoted",
                  "reference_cost"]


#: id column -> the column with its name, written beside it (Excel users read names)
NAME_COLUMNS = {"enterprise_id": "enterprise_name", "service_id": "service_name",
                "agency_id": "agency_name", "district_id": "district_name"}


ASSIGNMENT_COLUMNS = ["enterprise_id", "enterprise_name", "service_id", "service_name",
                      "agency_id", "agency_name", "district_id", "district_name", "sector",
                      "risk_level", "weight", "load", "cost", "quality", "quoted",
                      "reference_cost"]


#: the money of each assignment row, after cost: the government's and the enterprise's part
#: (co-payment), and with funding.csv the sources paying the government's part
PAYMENT_COLUMNS = ["government_cost", "enterprise_cost"]
FUNDED_BY = "funded_by"


def assignment_columns(funded: bool) -> list[str]:
    """assignments.csv's columns: cost followed by its split between payers."""
    k = ASSIGNMENT_COLUMNS.index("cost") + 1
    return (ASSIGNMENT_COLUMNS[:k] + PAYMENT_COLUMNS + ASSIGNMENT_COLUMNS[k:]
            + ([FUNDED_BY] if funded else []))


UNSERVED_COLUMNS = ["enterprise_id", "enterprise_name", "service_id", "service_name",
                    "district_id", "district_name", "sector", "risk_level", "weight", "reason",
                    "detail", "eligible_agencies"]


AGENCY_COLUMNS = ["agency_id", "agency_name", "demands", "load", "capacity_days",
                  "utilization", "contract_value", "districts", "status", "quality"]


DISTRICT_COLUMNS = ["district_id", "district_name", "cost", "government_cost", "budget_cap",
                    "weight_total", "weight_served", "coverage_ratio", "agencies",
                    "max_agency_share", "demands", "demands_served", "mandatory_total",
                    "mandatory_served"]


DIAGNOSIS_COLUMNS = ["rule", "subject", "required", "available", "shortfall", "message"]


MONEY = ["cost", "contract_value", "budget_cap", "reference_cost", "government_cost",
         "enterprise_cost", "amount", "used", "left"]


#: shares and ratios (0-1), written with RATIO_DECIMALS in every file and on the terminal
RATIOS = ["utilization", "coverage_ratio", "max_agency_share", "max_district_share",
          "largest_district_share", "herfindahl", "share"]


MONEY_DECIMALS, RATIO_DECIMALS = 2, 4


#: decimals of every rounded column of the files allocator writes (mean_quality is a score
#: on the 0-100 scale, the marginal value served weight per 10,000)
DECIMALS: dict[str, int] = {**{c: MONEY_DECIMALS for c in MONEY + ["budget"]},
                            **{c: RATIO_DECIMALS for c in RATIOS},
                            "mean_quality": 2, "marginal_value": 4}


@dataclass
class RunResult:
    """Everything a run produced: the plan's tables, the summary (summary.json), if
    infeasible, why (diagnosis.csv rows), and with incumbents what changed (changes.csv)."""

    summary: dict[str, Any]
    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    unserved: pd.DataFrame = field(default_factory=pd.DataFrame)
    agencies: pd.DataFrame = field(default_factory=pd.DataFrame)
    districts: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnosis: pd.DataFrame | None = None
    funding: pd.DataFrame | None = None  # funding.csv: per source amount, used, left
    funding_by_agency: pd.DataFrame | None = None  # what each contract draws from each fund
    changes: pd.DataFrame | None = None  # changes.csv: the plan against last year's

    @property
    def stability(self) -> float | None:
        """Served weight kept with its incumbent agency (None without incumbents or a plan)."""
        return self.summary.get("stability")

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
        """The government's spend of the plan (level 3; the total cost without co-payment),
        in the policy's currency."""
        return self.summary.get("cost")

    @property
    def gap(self) -> float | None:
        """The largest relative gap of the optimised levels (None: unknown)."""
        return self.summary.get("gap")

    @property
    def levels(self) -> list[dict[str, Any]]:
        """Per level: name, sense, status, value, bound, gap, seconds."""
        return list(self.summary.get("levels") or [])
