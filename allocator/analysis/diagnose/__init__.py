"""Why a plan is infeasible: named rules, subjects and sizes (spec section 6, diagnosis.csv).

Two stages. Checks that need no solver come first, each a structural fact that holds
whatever the plan: mandatory demands no agency may serve (with why each candidate was kept
out), a Hall-type max-flow of mandatory load into the capacity of the agencies that may take
it, districts with fewer eligible agencies than the minimum-agencies or share rules need,
districts whose servable weight is below the minimum ratio, district caps below the
cheapest mandatory spend. Then solves of the real model find what counting cannot. When
counting found nothing inside the model, a dedicated least-budget solve comes first (budget
relaxed, every other rule hard, cost minimised): if it has a plan, its cost is the least
budget with which every other rule holds. Otherwise the elastic re-solve: every hard row
family gets a named, penalised slack in its own unit; level 1 minimises the weighted
violation of every rule but the budget, level 2 (level 1 held) the total cost.
"""

from allocator.analysis.diagnose.counting import capacity_shortage, prechecks
from allocator.analysis.diagnose.explain import (
    attach_diagnosis,
    counting_diagnosis,
    diagnose,
    diagnosis_summary,
    explain,
)
from allocator.analysis.diagnose.fixes import with_fixes
from allocator.analysis.diagnose.reasons import Diagnosis, ElasticResult, Reason, budget_reason

__all__ = ["Diagnosis", "ElasticResult", "Reason", "attach_diagnosis", "budget_reason",
           "capacity_shortage", "counting_diagnosis", "diagnose", "diagnosis_summary",
           "explain", "prechecks", "with_fixes"]
