"""The year's end: agency evaluations applied to the reserve pool, and last year's plan turned
into next year's incumbents. Pure functions on frames (the folder is written by
output/next_year.py).

The rules (policy section `evaluation`), per agency of agencies.csv:

- score: the mean score of each scorer type present for the agency (enterprise, street
  office, expert, spot check), averaged with scorer_weights renormalised over the types
  present (a type with no evaluation does not count; if only zero-weight types are present
  there is no score);
- quality: carry x quality + (1 - carry) x score, rounded half up to 1 decimal;
- status, the first that applies:
  1. blacklisted stays blacklisted (a person lifts it by editing agencies.csv);
  2. a recorded violation blacklists (blacklist_on_violation: a statutory ground);
  3. a score below suspend_below suspends (any agency);
  4. an agency suspended last year, without a violation, returns on probation;
  5. no evaluation (or no score): status kept;
  6. active: probation when the score is below probation_below, or when it is among the
     lowest bottom_share_to_probation of evaluated active agencies (rounded down; ties at
     the cut go by agency id); else active;
  7. probation: active again when the score is at least restore_above; else probation.

An agency without evaluations keeps its status and quality (rule 4 aside: suspension lasts
one year).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from allocator.core.errors import Problem, ResultsError
from allocator.core.tables import read_csv
from allocator.data.instance import Instance
from allocator.data.policy import SCORERS, Policy

POOL_CHANGE_COLUMNS = ["agency_id", "name", "old_status", "new_status", "old_quality",
                       "new_quality", "score", *(f"score_{s}" for s in SCORERS), "evaluations",
                       "violation", "reason"]
#: score noise below this is float arithmetic, not a difference a threshold should see
SCORE_DECIMALS = 9


@dataclass(frozen=True)
class EvaluationRules:
    """The evaluation section of the policy."""

    scorer_weights: dict[str, float]
    carry: float = 0.5
    probation_below: float = 70.0
    suspend_below: float = 60.0
    restore_above: float = 80.0
    bottom_share_to_probation: float = 0.0
    blacklist_on_violation: bool = True

    @classmethod
    def of(cls, pol: Policy) -> EvaluationRules:
        return cls(dict(pol.scorer_weights), pol.carry, pol.probation_below, pol.suspend_below,
                   pol.restore_above, pol.bottom_share_to_probation, pol.blacklist_on_violation)


def round_quality(value: float) -> float:
    """A quality to 1 decimal, half up (78.25 -> 78.3), float noise removed first."""
    exact = Decimal(repr(round(float(value), SCORE_DECIMALS)))
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def agency_scores(evaluations: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Per evaluated agency: the mean score of each scorer type, the weighted score
    (weights renormalised over the types present; NaN when they weigh nothing), the number
    of evaluations and the violations recorded (joined)."""
    ev = evaluations
    if ev.empty:
        return pd.DataFrame(columns=["score", *(f"score_{s}" for s in SCORERS), "evaluations",
                                     "violation"]).rename_axis("agency_id")
    means = ev.pivot_table(index="agency_id", columns="scorer", values="score",
                           aggfunc="mean", sort=False)
    means = means.reindex(columns=list(SCORERS))
    w = pd.Series({s: float(weights.get(s, 0.0)) for s in SCORERS})
    present = means.notna()
    total = present.mul(w, axis=1).sum(axis=1)
    weighted = means.fillna(0.0).mul(w, axis=1).sum(axis=1)
    score = (weighted / total.where(total > 0)).round(SCORE_DECIMALS)
    out = means.add_prefix("score_")
    out.insert(0, "score", score)
    out["evaluations"] = ev.groupby("agency_id", sort=False).size().reindex(out.index)
    vio = ev[ev["violation"].astype(str).str.strip() != ""]
    out["violation"] = vio.groupby("agency_id", sort=False)["violation"].agg(
        lambda v: ";".join(pd.unique(v.astype(str).str.strip()))).reindex(out.index).fillna("")
    return out


def _bottom(scores: pd.Series, share: float) -> set[str]:
    """The lowest-scoring share (rounded down) of the given agencies' scores."""
    n = int(math.floor(share * len(scores) + 1e-9))
    if n <= 0:
        return set()
    order = pd.DataFrame({"score": scores.to_numpy(), "id": scores.index.astype(str)})
    order = order.sort_values(["score", "id"], kind="stable")
    return set(order["id"].iloc[:n])


def evaluate_pool(agencies: pd.DataFrame, evaluations: pd.DataFrame,
                  rules: EvaluationRules) -> pd.DataFrame:
    """pool_changes.csv: every agency of the pool (agencies: index agency_id, with status,
    quality and name) with its old and new status and quality, its score by scorer type and
    the rule applied, in words."""
    sc = agency_scores(evaluations, rules.scorer_weights)
    ag = agencies.copy()
    ag.index = ag.index.astype(str)
    sc.index = sc.index.astype(str)
    sc = sc.reindex(ag.index)
    evaluated = sc["evaluations"].fillna(0).astype(int) > 0
    score = sc["score"].astype(float)
    violation = sc["violation"].fillna("").astype(str)
    old = ag["status"].astype(str)
    active_scored = score[(old == "active") & score.notna()]
    bottom = _bottom(active_scored, rules.bottom_share_to_probation)
    rank = active_scored.rank(method="first").astype(int)
    new_status, reasons = [], []
    for a in ag.index:  # one agency at a time: a short story each
        st, s, v = old[a], score[a], violation[a]
        has_s = not np.isnan(s)
        say = f"score {s:.4g}" if has_s else ""
        if st == "blacklisted":
            ns, why = st, ("blacklisted: stays blacklisted (only a person lifts it, by editing "
                           "agencies.csv)")
        elif v and rules.blacklist_on_violation:
            ns, why = "blacklisted", (f"violation recorded ({v}): blacklisted on statutory "
                                      "grounds")
        elif has_s and s < rules.suspend_below:
            ns, why = "suspended", (f"{say} below suspend_below {rules.suspend_below:g}: "
                                    "suspended")
        elif st == "suspended":
            ns, why = "probation", ("suspended last year, no violation: returns on probation"
                                    + (f" ({say})" if has_s else ""))
        elif not evaluated[a]:
            ns, why = st, "no evaluations: status and quality kept"
        elif not has_s:
            ns, why = st, ("evaluated only by scorer types of weight 0: no score, status and "
                           "quality kept")
        elif st == "active":
            if s < rules.probation_below:
                ns, why = "probation", (f"{say} below probation_below "
                                        f"{rules.probation_below:g}: active -> probation")
            elif a in bottom:
                ns, why = "probation", (
                    f"{say}: among the lowest {rules.bottom_share_to_probation:g} of the "
                    f"{len(active_scored)} evaluated active agencies (rank {rank[a]}): "
                    "active -> probation")
            else:
                ns, why = "active", f"{say}: stays active"
        elif st == "probation":
            if s >= rules.restore_above:
                ns, why = "active", (f"{say} at least restore_above {rules.restore_above:g}: "
                                     "probation -> active")
            else:
                ns, why = "probation", (f"{say} below restore_above "
                                        f"{rules.restore_above:g}: stays on probation")
        else:
            ns, why = st, f"{say}: status kept"
        if v and not rules.blacklist_on_violation and ns != "blacklisted":
            why += f"; violation recorded ({v}), not blacklisted (blacklist_on_violation off)"
        new_status.append(ns)
        reasons.append(why)
    q_old = ag["quality"].astype(float)
    q_new = pd.Series([round_quality(rules.carry * q + (1 - rules.carry) * s)
                       if not np.isnan(s) else q for q, s in zip(q_old, score, strict=True)],
                      index=ag.index)
    quality_note = np.where(score.notna(), "; quality " + q_old.map(lambda v: f"{v:g}")
                            + f" -> {rules.carry:g} x quality + {1 - rules.carry:g} x score = "
                            + q_new.map(lambda v: f"{v:g}"), "")
    out = pd.DataFrame({
        "agency_id": ag.index, "name": ag["name"].to_numpy() if "name" in ag else "",
        "old_status": old.to_numpy(), "new_status": new_status,
        "old_quality": q_old.to_numpy(), "new_quality": q_new.to_numpy(),
        "score": score.to_numpy(),
        **{f"score_{s}": sc[f"score_{s}"].astype(float).to_numpy() for s in SCORERS},
        "evaluations": sc["evaluations"].fillna(0).astype(int).to_numpy(),
        "violation": violation.to_numpy(),
        "reason": [r + q for r, q in zip(reasons, quality_note, strict=True)]})
    return out[POOL_CHANGE_COLUMNS]


def next_incumbents(instance: Instance, assignments: pd.DataFrame) -> pd.DataFrame:
    """Next year's incumbents.csv from this year's plan: each served demand with its agency,
    years = this year's years + 1 where the same agency served it last year too, else 1."""
    a = assignments[["enterprise_id", "service_id", "agency_id"]].astype(str).reset_index(
        drop=True)
    inc = instance.incumbents
    before = pd.DataFrame({"enterprise_id": inc["enterprise_id"].astype(str),
                           "service_id": inc["service_id"].astype(str),
                           "agency_id": inc["agency_id"].astype(str),
                           "before": inc["years"].astype(int)})
    out = a.merge(before, on=["enterprise_id", "service_id", "agency_id"], how="left")
    out["years"] = (out["before"].fillna(0).astype(int) + 1).astype(int)
    return out[["enterprise_id", "service_id", "agency_id", "years"]]


def pool_counts(changes: pd.DataFrame) -> dict[str, int]:
    """How many agencies moved from one status to another (e.g. 'active -> probation')."""
    moved = changes[changes["old_status"] != changes["new_status"]]
    counts = (moved["old_status"] + " -> " + moved["new_status"]).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def read_plan_assignments(results_dir: Path, instance: Instance
                          ) -> tuple[pd.DataFrame, list[str]]:
    """This year's plan from a results folder (assignments.csv, read back exactly: BOM and
    formula guard undone) and warnings; ResultsError when the folder holds no plan or one
    that does not belong to this instance (every bad row named)."""
    results_dir = Path(results_dir)
    file = "assignments.csv"
    problems: list[Problem] = []
    warnings: list[str] = []
    if not results_dir.is_dir():
        raise ResultsError([Problem(str(results_dir), None, "", None, "results folder not found",
                                    "give the folder written by 'allocator solve --out'")])
    try:
        summary = json.loads((results_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError([Problem("summary.json", None, "", None,
                                    f"missing or not readable ({exc})",
                                    "give the folder written by 'allocator solve --out'")]
                           ) from None
    status = summary.get("status") if isinstance(summary, dict) else None
    if status not in ("optimal", "feasible"):
        raise ResultsError([Problem("summary.json", None, "status", status,
                                    "the results hold no plan, so there is no year to carry "
                                    "forward", "solve the year again until it has a plan")])
    if summary.get("instance_sha256") not in (None, instance.sha256):
        warnings.append("summary.json's instance_sha256 differs from the instance's files: "
                        "these results were computed from other data")
    path = results_dir / file
    if not path.is_file():
        raise ResultsError([Problem(file, None, "", None, "result file is missing",
                                    "give the folder written by 'allocator solve --out'")])
    a = read_csv(path)
    missing = [c for c in ("enterprise_id", "service_id", "agency_id") if c not in a.columns]
    for c in missing:
        problems.append(Problem(file, 1, c, None, "required column is missing",
                                "write the results again"))
    if problems:
        raise ResultsError(problems)
    a = a.astype({"enterprise_id": str, "service_id": str, "agency_id": str})
    dem = pd.MultiIndex.from_frame(instance.demands[["enterprise_id", "service_id"]].astype(str))
    known = pd.MultiIndex.from_frame(a[["enterprise_id", "service_id"]]).isin(dem)
    pool = a["agency_id"].isin(instance.agencies.index.astype(str)).to_numpy()
    dup = a.duplicated(["enterprise_id", "service_id"]).to_numpy()
    for k in np.flatnonzero(~known | ~pool | dup):
        r = a.iloc[k]
        what = ("demand (" + r["enterprise_id"] + ", " + r["service_id"]
                + ") is not in the instance's demands.csv" if not known[k] else
                "agency " + r["agency_id"] + " is not in the instance's agencies.csv"
                if not pool[k] else "demand listed twice")
        problems.append(Problem(file, int(k) + 2, "enterprise_id" if not known[k] else
                                "agency_id", None, what,
                                "give the results of this instance ('allocator solve INSTANCE "
                                "--out RESULTS')"))
    if problems:
        raise ResultsError(problems)
    return a, warnings
