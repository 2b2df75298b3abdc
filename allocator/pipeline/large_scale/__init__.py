"""Province scale: each level as an LP over demand classes by column generation, rounded.

With millions of eligible triples (100,000 enterprises: 16 million) the full MIP fits neither
the time nor the memory. The levels are then solved in these steps:

1. **Classes.** Demands no rule can tell apart (same service, sector, district, person-days,
   weight and risk level, and an enterprise with no quote or conflict) have identical columns.
   The LP works on one column per (class, agency): X[g,a] in [0, n_g] members, with
   sum_a X[g,a] <= n_g (= n_g for a mandatory class). 163,120 demands -> 61,410 classes.
2. **Coverage LP by column generation.** Rows: classes, budget, district caps, capacities,
   and the district share caps through a spend column per district. Minimum agencies are
   left out, so the LP is a relaxation of the full model's LP and its optimum an upper bound
   on the served weight. It starts from each
   class's cheapest offers; every round prices all class triples from the row duals on
   arrays and adds the best per class. At every round the Lagrangian bound at the duals,
   sum of row duals x row limits + sum over all columns of n_g x max(0, reduced cost) (the
   spend columns' up to the budget), is a proven upper bound; it equals the LP optimum when
   nothing prices out.
3. **Rounding and repair.** X is rounded down (largest remainders for mandatory classes),
   handed out to the class's members, then every rule is restored by dropping the least
   valuable served demands where one is broken (capacity, budget, district caps, share caps,
   minimum agencies), and the money left is spent greedily on the best unserved demands.
   Every rule of the spec holds for the result (allocator check recomputes them).
4. **Quality, then cost** on the same LP: the earlier level is held by a row at what it
   guarantees (the least value within mip_gap of its bound, on the weights' grid, or its
   plan's value if lower; polish.coverage_hold), so the new level's
   Lagrangian bound is valid for every plan the level may keep; its point is rounded the same
   way (from the LP on the coverage optimum's face when rounding loses too much coverage, and
   served weight lost is bought back by moving demands to cheaper agencies). A level's plan
   is kept only if it keeps every earlier level's value.
5. **The exact model over classes** (polish.py, up to POLISH_MAX_DEMANDS demands) with the
   time left, from the plan; its levels' bounds are the class LP's, re-solved with the
   earlier levels held at the kept plan's values (`rebound`).

The run is `optimal` only if every level's plan is within mip_gap of its bound; usually it is
`feasible`, with each level's proven bound and gap in summary.json.

The planner's year: pins and rotation are eligibility, so a pinned demand keeps one triple;
it is its own class and counts as mandatory (never dropped by the repair). A max_changes that
allows no change fixes every still-eligible incumbent the same way; one that allows some
changes keeps the full model (`unsupported_rules`). The stability level is not optimised
here: its value for the plan is reported, marked not optimised, and the run says so.
"""

from allocator.pipeline.large_scale.levels import (
    LARGE_TRIPLES,
    LargeResult,
    checked_rules,
    forced_demands,
    solve_large,
    unsupported_rules,
    use_large_path,
)

__all__ = ["LARGE_TRIPLES", "LargeResult", "checked_rules", "forced_demands", "solve_large",
           "unsupported_rules", "use_large_path"]
