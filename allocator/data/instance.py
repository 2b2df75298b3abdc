"""The checked, typed instance: pandas frames indexed by the data's own ids."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from allocator.core.errors import Problem
from allocator.data.policy import Policy

INCUMBENT_COLUMNS = ["demand", "enterprise_id", "service_id", "agency_id", "years", "in_pool",
                     "row"]
PIN_COLUMNS = ["demand", "enterprise_id", "service_id", "agency_id", "action", "note", "row"]
EVALUATION_COLUMNS = ["agency_id", "scorer", "score", "violation", "enterprise_id", "date",
                      "note"]


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """A frame with these columns and no rows (an optional file that is absent)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass(frozen=True)
class Instance:
    """One year's data after validation. Ids are strings in their order of appearance.

    districts:   index district_id; name, budget_cap (NaN = no cap)
    services:    index service_id; name, reference_rate
    enterprises: index enterprise_id; name, district_id, sector, risk_level (int 1-4)
    demands:     one row per (enterprise_id, service_id); person_days, weight (policy default
                 filled in), plus district_id, sector, risk_level copied from the enterprise
    agencies:    index agency_id; name, status, quality, capacity_days, districts (as written),
                 all_districts (bool)
    agency_districts: (agency_id, district_id) pairs an agency serves (all districts for '*')
    bids:        agency_id, service_id, sector, day_rate
    quotes:      agency_id, enterprise_id, service_id, price, person_days
    conflicts:   agency_id, enterprise_id
    funding:     index source_id; name, department, amount, districts, sectors, services,
                 risk_levels (scopes as ';'-joined text or '*'); None without funding.csv
    incumbents:  last year's plan (incumbents.csv) on this year's demands: demand (row of
                 demands), enterprise_id, service_id, agency_id, years (int >= 1), in_pool
                 (the agency is still in agencies.csv), row (spreadsheet row in the file)
    pins:        decisions already taken (pins.csv): demand, enterprise_id, service_id,
                 agency_id, action ('assign' or 'forbid'), note, row
    evaluations: last year's scores (evaluations.csv): agency_id, scorer, score, violation
                 ('' = none), enterprise_id, date, note
    """

    path: Path
    policy: Policy
    districts: pd.DataFrame
    services: pd.DataFrame
    enterprises: pd.DataFrame
    demands: pd.DataFrame
    agencies: pd.DataFrame
    agency_districts: pd.DataFrame
    bids: pd.DataFrame
    quotes: pd.DataFrame
    conflicts: pd.DataFrame
    sha256: str = ""
    warnings: list[Problem] = field(default_factory=list)
    funding: pd.DataFrame | None = None
    incumbents: pd.DataFrame = field(default_factory=lambda: empty_frame(INCUMBENT_COLUMNS))
    pins: pd.DataFrame = field(default_factory=lambda: empty_frame(PIN_COLUMNS))
    evaluations: pd.DataFrame = field(default_factory=lambda: empty_frame(EVALUATION_COLUMNS))

    @property
    def name(self) -> str:
        """The policy's name, or the folder's name when the policy has none."""
        return self.policy.name or self.path.name

    def with_policy(self, policy: Policy) -> Instance:
        """The same data under another policy (what-if runs); weights are re-derived."""
        demands = self.demands.copy()
        default = demands["risk_level"].map(policy.weights)
        demands["weight"] = demands["weight_given"].fillna(default).astype(float)
        return replace(self, policy=policy, demands=demands)
