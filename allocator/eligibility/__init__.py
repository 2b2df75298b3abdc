"""Eligibility (spec section 4): which agency may serve which demand, and why the others may not."""

from allocator.eligibility.rules import (
    EXCLUDED_COLUMNS,
    TRIPLE_COLUMNS,
    Eligibility,
    candidate_reasons,
    classify,
    compute_eligibility,
    plain_ids,
)

__all__ = ["EXCLUDED_COLUMNS", "TRIPLE_COLUMNS", "Eligibility", "candidate_reasons", "classify",
           "compute_eligibility", "plain_ids"]
