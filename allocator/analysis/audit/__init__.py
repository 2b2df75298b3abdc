"""`allocator check`: an independent audit of a results folder against its instance.

Every rule of spec section 4 is recomputed here from the instance frames and the result files
alone: eligibility, cost, load and weight of each assignment row, each demand exactly once,
budget, caps, capacities, ratios, shares, agency counts, and the totals of agencies.csv,
districts.csv and summary.json. Only the parsing of the instance (allocator.data.validation) is
shared with the solver; no model-building code is, so a bug there cannot hide itself here.

Rows are reported as a spreadsheet shows them (header = row 1). Aggregate rules use the
recomputed cost and load of each row (the true cost of the plan), so a tampered cost is
reported once, as a `cost` violation on its row, and not again in every total.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from allocator.analysis.audit.claims import check_claims
from allocator.analysis.audit.common import (
    FILE_ORDER,
    SOLVED,
    STATUSES,
    Audit,
    Violation,
    is_number,
    join_keys,
)
from allocator.analysis.audit.continuity import check_continuity
from allocator.analysis.audit.excluded import check_excluded
from allocator.analysis.audit.extras import (
    check_agency_extras,
    check_assignment_extras,
    check_district_extras,
    check_names,
)
from allocator.analysis.audit.files import read_csv, read_summary
from allocator.analysis.audit.funding import (
    check_funding,
    check_payments,
    government_part,
    has_funding,
)
from allocator.analysis.audit.offers import candidates
from allocator.analysis.audit.reasons import check_unserved_reasons
from allocator.analysis.audit.rows import (
    check_assignment_rows,
    check_once,
    check_unserved_rows,
    demand_table,
    evaluate_assignments,
)
from allocator.analysis.audit.rules import check_plan_rules
from allocator.analysis.audit.totals import (
    check_agency_table,
    check_district_table,
    check_summary,
    policy_warning,
    summary_budget,
    summary_gap,
)
from allocator.core.errors import Problem, ResultsError
from allocator.data.funding import with_amounts
from allocator.data.reading import instance_sha256
from allocator.data.validation import load_instance


def audit_results(instance_dir: Path, results_dir: Path, budget: float | None = None,
                  funding: dict[str, float] | None = None,
                  mip_gap: float | None = None) -> Audit:
    """Recompute every rule from the files alone.

    `budget`, `funding` (source id -> amount) and `mip_gap` audit a what-if run against the
    budget, source amounts and relative gap it was given instead of the instance's; figures
    written in the folder are never trusted. Raises InputError when the instance cannot be
    read, ResultsError when the results cannot (or a funding source is unknown).
    """
    inst = load_instance(Path(instance_dir))
    if funding:
        known = set(inst.funding.index) if inst.funding is not None else set()
        unknown = sorted(set(funding) - known)
        if unknown:
            raise ResultsError([Problem("funding.csv", None, "source_id", s,
                                        "no such funding source in the instance",
                                        "give source ids of the instance's funding.csv")
                                for s in unknown])
        inst = with_amounts(inst, funding)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError([Problem(str(results_dir), None, "", None, "results folder not found",
                                    "give the folder written by 'allocator solve --out'")])
    problems: list[Problem] = []
    s = read_summary(results_dir / "summary.json", problems)
    if problems:
        raise ResultsError(problems)
    audit = Audit(status=str(s.get("status")))
    solved = audit.status in SOLVED
    files = {name: read_csv(results_dir / name, name, problems, required=solved)
             for name in ("assignments.csv", "unserved.csv", "agencies.csv", "districts.csv",
                          "excluded.csv")}
    for name in ("funding.csv", "funding_by_agency.csv"):
        files[name] = read_csv(results_dir / name, name, problems,
                               required=solved and has_funding(inst))
    if problems:
        raise ResultsError(problems)
    out = audit.violations
    pol = inst.policy
    sha = s.get("instance_sha256")
    if sha and sha != instance_sha256(Path(instance_dir)):
        audit.warnings.append("summary.json's instance_sha256 differs from the instance's files: "
                              "these results were computed from other data")
    policy_warning(s, pol, audit)
    if audit.status not in STATUSES:
        out.append(Violation("summary_status", "summary.json", None, "status",
                             f"status is {json.dumps(s.get('status'))}; expected one of "
                             + ", ".join(STATUSES)))
    a = files["assignments.csv"]
    audit.assignments, audit.unserved = len(a), len(files["unserved.csv"])
    if not solved:
        if len(a):
            out.append(Violation("summary_status", "assignments.csv", None, "status",
                                 f"status is {audit.status} but assignments.csv holds {len(a)} "
                                 "row(s); a run without a solution has no assignments"))
        if audit.status == "infeasible":
            check_diagnosis(out, results_dir, audit)
        return audit
    budget = summary_budget(s, pol, audit, budget)
    dem = demand_table(inst, pol.weights)
    cand = candidates(inst, dem)
    check_excluded(out, inst, cand, files["excluded.csv"])
    t = evaluate_assignments(inst, dem, a)
    t["true_gov"] = government_part(inst, t)
    check_assignment_rows(out, inst, t)
    check_payments(out, inst, t, a)
    check_assignment_extras(out, a, t)
    u = check_unserved_rows(out, dem, files["unserved.csv"])
    check_once(out, pol, dem, t, u)
    plan = check_plan_rules(out, inst, t, dem, budget)
    free = check_unserved_reasons(out, inst, budget, t, u, cand)
    check_agency_table(out, files["agencies.csv"], plan["agencies"])
    check_agency_extras(out, files["agencies.csv"], inst)
    check_district_table(out, files["districts.csv"], plan["districts"])
    check_district_extras(out, files["districts.csv"], inst, dem, t)
    check_all_names(out, files, inst)
    check_summary(out, s, inst, dem, t, plan)
    check_funding(out, inst, t, a, files["funding.csv"], files["funding_by_agency.csv"], s)
    check_counts(out, s, cand, files["excluded.csv"])
    gap = summary_gap(s, pol, audit, mip_gap)
    check_claims(out, s, gap, float(t["true_weight"].sum()), free)
    check_continuity(out, inst, dem, t, u, results_dir, s)
    rank = {f: k for k, f in enumerate(FILE_ORDER)}
    out.sort(key=lambda v: (rank.get(v.file, len(rank)), v.row is None, v.row or 0))
    return audit


def check_all_names(out: list[Violation], files: dict, inst) -> None:
    """The names beside the ids in every result file, as the instance gives them."""
    subjects = {"assignments.csv": ["enterprise_id", "service_id", "agency_id"],
                "unserved.csv": ["enterprise_id", "service_id"], "agencies.csv": ["agency_id"],
                "districts.csv": ["district_id"]}
    for name, keys in subjects.items():
        frame = files[name]
        if all(k in frame.columns for k in keys):
            check_names(out, name, frame, inst, partial(join_keys, cols=keys))


def check_counts(out: list[Violation], s: dict, cand, excluded) -> None:
    """summary.json's counts of eligible triples and kept-out rows, as recomputed."""
    given = s.get("counts")
    counts: dict = given if isinstance(given, dict) else {}
    for key, exp in (("eligible_triples", int(cand["eligible"].sum())),
                     ("excluded_offers", len(excluded))):
        got = counts.get(key)
        if got is not None and (not is_number(got) or float(got) != exp):
            out.append(Violation("summary_totals", "summary.json", None, f"counts.{key}",
                                 f"counts.{key} is {json.dumps(got)}, recomputed {exp}"))


def check_diagnosis(out: list[Violation], results_dir: Path, audit: Audit) -> None:
    problems: list[Problem] = []
    diag = read_csv(results_dir / "diagnosis.csv", "diagnosis.csv", problems, required=True)
    for p in problems:
        out.append(Violation("diagnosis", "diagnosis.csv", p.row, p.column,
                             f"{p.message} (an infeasible run names its reasons in "
                             "diagnosis.csv: rule, subject, required, available, shortfall, "
                             "message)"))
    if not problems and diag.empty:
        audit.warnings.append("diagnosis.csv names no reason for the infeasibility")


def check_results(instance_dir: Path, results_dir: Path, budget: float | None = None,
                  funding: dict[str, float] | None = None,
                  mip_gap: float | None = None) -> list[Violation]:
    """Every violated rule of the results against the instance (empty list: all rules hold)."""
    return audit_results(instance_dir, results_dir, budget, funding, mip_gap).violations


__all__ = ["Audit", "ResultsError", "Violation", "audit_results", "check_results"]
