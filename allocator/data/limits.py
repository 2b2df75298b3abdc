"""The accepted range of the instance's numbers: inside it the solvers' tolerances cannot
give a wrong plan; outside it a value is refused (exit 2, naming file, row and column).

MIP solvers work in floating point with absolute tolerances (a row may be off by ~1e-6, an
integer variable by ~1e-6). A weight of 1e15 beside weights of 1 let HiGHS drop the 1e15
demand at the cost level and still call the plan optimal: a fraction of a unit of that
demand's column looked like zero. The limits below keep every coefficient within a range the
three solvers were measured to handle exactly (docs/numbers.md gives the measurements).
"""

from __future__ import annotations

#: demand weights (demands.csv weight, policy coverage.weights): 0, or in [MIN, MAX]
MIN_WEIGHT, MAX_WEIGHT = 1e-3, 1e6
#: money (reference_rate, day_rate, quote price, budget_cap, budget.total): 0 where allowed,
#: else in [MIN, MAX] (a cent to a million million)
MIN_MONEY, MAX_MONEY = 0.01, 1e12
#: person-days (demands.csv and quotes.csv person_days, agencies.csv capacity_days)
MIN_DAYS, MAX_DAYS = 1e-3, 1e7


def weight_range_text() -> str:
    return f"0, or between {MIN_WEIGHT:g} and {MAX_WEIGHT:,.0f}"


def money_range_text() -> str:
    return f"between {MIN_MONEY:g} and {MAX_MONEY:.0e}".replace("e+12", "e12")


def days_range_text() -> str:
    return f"between {MIN_DAYS:g} and {MAX_DAYS:,.0f}"
