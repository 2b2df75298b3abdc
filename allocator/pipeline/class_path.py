"""The exact model over classes of identical demands, for cities below province scale.

Demands no rule can tell apart (same service, sector, district, person-days, weight and risk
level, and an enterprise with no quote or conflict: pipeline/large_scale/classes.py) have
identical columns in the full model, so the MIP holds every permutation of their agencies
as a separate plan. The class model (`build_class_model`: one integer column per class and
agency counting the members it serves, every rule the same linear rule over the counts) has
the same optimum and LP relaxation without those permutations: on an othergen
1,500-enterprise city (hidden-1500-s3, 3,321 demands in 2,531 classes) its coverage level
reached 7,874 in 48 s where the full model ends at 7,866-7,871 and a straightforward model
needs 600 s for 7,874 (docs/tuning-log.md, "The class model below province scale").

Used by solve_instance and the sweep's ParametricSolve (a start's rows become counts,
`columns_of`) when the rules are all ones the class model holds (every rule but pins and
last year's plan, which tell members apart: share caps city-wide, districts per agency,
minimum district coverage, co-payment and funding scopes all read only what members share)
and the classes leave at most CLASS_MAX_SHARE of the columns; at province size it also
stands in for the full model when a rule keeps the LP path out (`unsupported_rules`); the
plan's counts are handed to the class's members in order (members are interchangeable).
Bounds are the class model's own: it is exact, so they hold for the full model.

`exact_model`, `start_point` and `chosen_triples` are the one way the pipeline gets the exact
model, turns a plan's rows into its start and its solution back into triples, with classes
or without.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.model.build import (
    AllocationModel,
    build_class_model,
    build_model,
    plan_rows,
    point_from_triples,
)
from allocator.pipeline.large_scale.classes import Arrays, Classes
from allocator.pipeline.large_scale.polish import hand_out
from allocator.solvers import Backend

#: the class model is used when it has at most this share of the full model's x columns
CLASS_MAX_SHARE = 0.9


class ClassPlan:
    """A class model of an instance and how its counts become a plan."""

    def __init__(self, instance: Instance, elig: Eligibility, direct_share_rows: bool,
                 classes: Classes | None = None):
        t = elig.triples
        self.triples = t
        self.arr = Arrays.of(instance, t)
        self.classes = classes if classes is not None else Classes.of(instance, t)
        rep = np.zeros(len(self.arr.weight), dtype=bool)
        rep[self.classes.rep] = True
        rows = np.flatnonzero(rep[self.arr.demand])  # every triple of a representative
        self.g = self.classes.of_demand[self.arr.demand[rows]]
        self.a = self.arr.agency[rows]
        self.model: AllocationModel = build_class_model(
            instance, t.iloc[rows], self.classes.size[self.g], direct_share_rows)

    def chosen(self, x: np.ndarray) -> np.ndarray:
        """The triple numbers (of the full eligibility) of the plan whose counts are x."""
        choice = hand_out(self.arr, self.classes, self.g, self.a, np.round(x[self.model.x]))
        return np.sort(choice[choice >= 0])

    def columns_of(self, start: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """A plan given as assignment rows (enterprise_id, service_id, agency_id; those not
        eligible here dropped, one row per demand) as class columns and member counts."""
        pos = plan_rows(self.triples, self.arr.demand, start)
        cols = pd.DataFrame({"g": self.g, "a": self.a, "col": np.arange(len(self.g))})
        picked = pd.DataFrame({"g": self.classes.of_demand[self.arr.demand[pos]],
                               "a": self.arr.agency[pos]})
        counts = picked.merge(cols, on=["g", "a"]).groupby("col").size()
        return counts.index.to_numpy(dtype=np.int64), counts.to_numpy(dtype=float)

    def facts(self) -> dict:
        return {"demands": int(len(self.arr.weight)), "classes": int(len(self.classes.rep)),
                "class_columns": int(len(self.g))}


def usable_classes(instance: Instance, elig: Eligibility) -> Classes | None:
    """The classes of identical demands when the class model may replace the full one, else
    None: no pins or last year's plan (they tell members apart; every other rule reads only
    what a class's members share: district, sector, service, risk level, person-days,
    weight), every mandatory demand with an agency, and classes that save columns (counted
    before anything is built)."""
    if len(instance.incumbents) or len(instance.pins) or elig.triples.empty:
        return None
    dem = instance.demands
    has = np.zeros(len(dem), dtype=bool)
    has[elig.triples["demand"].to_numpy()] = True
    if (dem["risk_level"].isin(instance.policy.mandatory_levels).to_numpy() & ~has).any():
        return None  # infeasible before solving: the full model says so and why
    classes = Classes.of(instance, elig.triples)
    per_demand = np.bincount(elig.triples["demand"].to_numpy(),
                             minlength=len(instance.demands))
    columns = int(per_demand[classes.rep].sum())
    return classes if columns <= CLASS_MAX_SHARE * len(elig.triples) else None


def exact_model(instance: Instance, elig: Eligibility, backend: Backend
                ) -> tuple[AllocationModel, ClassPlan | None]:
    """The exact model of the instance for `backend`: over classes where the backend takes it
    and the rules allow it (usable_classes; with its ClassPlan), else the full model (None)."""
    classes = usable_classes(instance, elig) if backend.class_model else None
    if classes is not None:
        plan = ClassPlan(instance, elig, backend.direct_share_rows, classes)
        return plan.model, plan
    return build_model(instance, elig, direct_share_rows=backend.direct_share_rows,
                       integer_flows=backend.integer_columns_only), None


def start_point(model: AllocationModel, start: pd.DataFrame | None,
                classes: ClassPlan | None = None) -> np.ndarray | None:
    """Column vector of a warm-start plan given as assignment rows (those eligible here), or
    None when there is none or it breaks a rule of this model (a backend keeps a start as
    its first plan, so it must be feasible). `classes`: the model is that class model."""
    if start is None or start.empty:
        return None
    if classes is not None:
        cols, counts = classes.columns_of(start)
        point = point_from_triples(model, cols, counts)
        return point if feasible_point(model, point) else None
    point = point_from_triples(model, plan_rows(model.triples, model.demand_of_triple, start))
    return point if feasible_point(model, point) else None


def feasible_point(model: AllocationModel, point: np.ndarray, tol: float = 1e-6) -> bool:
    """Whether a column vector keeps every row and bound of the model."""
    lp = model.lp
    if np.any(point < lp.lb - tol) or np.any(point > lp.ub + tol):
        return False
    act = lp.matrix() @ point
    lo, hi = lp.row_lo, lp.row_hi
    return bool(np.all(act >= lo - tol * np.maximum(1, np.abs(lo)))
                and np.all(act <= hi + tol * np.maximum(1, np.abs(hi))))


def chosen_triples(model: AllocationModel, classes: ClassPlan | None,
                   x: np.ndarray) -> np.ndarray:
    """Triple numbers (of the eligibility the model was built from) of a solver point: the
    class counts handed to members, or the full model's chosen columns."""
    return classes.chosen(x) if classes is not None else np.flatnonzero(x[model.x] > 0.5)
