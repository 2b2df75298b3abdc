"""Short human summaries for the terminal, as text (the command line prints them): of an
instance (`validate`), a run (`solve`), a diagnosis, a frontier and a comparison."""

from __future__ import annotations

import math

import pandas as pd

from allocator.analysis.audit import Audit
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.eligibility.warnings import mandatory_warnings
from allocator.output.i18n import words
from allocator.output.report.plan_page import diagnosis_sentence
from allocator.pipeline.result import RunResult

RISK_NAMES = {1: "low/blue", 2: "general/yellow", 3: "high/orange", 4: "major/red"}


def _money(x: float) -> str:
    """Money as every output shows it: to the cent, with thousands separators."""
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    """A ratio to 4 decimals, shown as a percent with 2."""
    return f"{100 * x:.2f}%"


def instance_summary(inst: Instance, elig: Eligibility | None = None) -> str:
    """One screen: districts, enterprises by risk and sector, demand against budget, agencies."""
    out: list[str] = []
    pol, dem = inst.policy, inst.demands
    ref = (dem["person_days"] * dem["service_id"].map(inst.services["reference_rate"])).sum()
    out.append(f"instance: {inst.name}  ({inst.path})")
    caps = inst.districts["budget_cap"].notna().sum()
    out.append(f"districts: {len(inst.districts)} ({caps} with a budget cap)")
    risk = inst.enterprises["risk_level"].value_counts().reindex([1, 2, 3, 4]).fillna(0)
    out.append(f"enterprises: {len(inst.enterprises):,}  by risk: " + ", ".join(
        f"{lvl} {RISK_NAMES[lvl]} {int(n):,}" for lvl, n in risk.items()))
    sectors = inst.enterprises["sector"].value_counts()
    out.append("  by sector: " + ", ".join(f"{s} {n:,}" for s, n in sectors.items()))
    mand = dem["risk_level"].isin(pol.mandatory_levels)
    mref = (dem.loc[mand, "person_days"]
            * dem.loc[mand, "service_id"].map(inst.services["reference_rate"])).sum()
    out.append(f"demands: {len(dem):,} ({int(mand.sum()):,} mandatory), "
               f"{dem['person_days'].sum():,.0f} person-days, weight {dem['weight'].sum():,.0f}")
    money = pol.budget_total
    funding = inst.funding
    if money is None and funding is not None:
        money = float(funding["amount"].sum())
    what = "budget" if pol.budget_total is not None else "funding sources' total"
    out.append(f"reference cost: all demand {_money(ref)}, mandatory {_money(mref)}; {what} "
               f"{_money(money or 0.0)} ({(money or 0.0) / ref:.0%} of all demand)"
               if ref > 0 else f"{what} {_money(money or 0.0)}")
    if funding is not None:
        out.append(f"funding sources: {len(funding)}, total "
                   f"{_money(float(funding['amount'].sum()))}" + "".join(
                       f"\n  {sid} {r['name'] or ''} ({r['department'] or 'no department'}): "
                       f"{_money(r['amount'])}; scope districts {r['districts']}, sectors "
                       f"{r['sectors']}, services {r['services']}, risk {r['risk_levels']}"
                       for sid, r in funding.iterrows()))
    if pol.copay_share_by_risk:
        out.append("co-payment (enterprise's share by risk level): " + ", ".join(
            f"{lvl} {share:.0%}" for lvl, share in sorted(pol.copay_share_by_risk.items())))
    status = inst.agencies["status"].value_counts()
    out.append(f"agencies: {len(inst.agencies)}  by status: " + ", ".join(
        f"{s} {n}" for s, n in status.items()) + f"; capacity "
        f"{inst.agencies['capacity_days'].sum():,.0f} person-days")
    out.append(f"offers: {len(inst.bids):,} bids, {len(inst.quotes):,} quotes, "
               f"{len(inst.conflicts):,} conflicts")
    if elig is not None:
        served = dem.index.isin(elig.triples["demand"])
        reasons = elig.excluded["reason"].value_counts()
        out.append(f"eligible triples: {len(elig.triples):,}; demands with no eligible agency: "
                   f"{int((~served).sum()):,} ({int((~served & mand).sum())} mandatory)")
        if len(reasons):
            out.append("kept out: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
    out += history_lines(inst, elig)
    warnings = list(inst.warnings) + (mandatory_warnings(inst, elig) if elig is not None
                                      else [])
    if warnings:
        out.append(f"warnings: {len(warnings)}")
        for w in warnings[:20]:
            out.append(f"  warning: {w}")
        if len(warnings) > 20:
            out.append(f"  ... and {len(warnings) - 20} more")
    return "\n".join(out)


def changes_lines(s: dict) -> list[str]:
    """Against last year's plan (with incumbents): stability and the changes by kind."""
    ch = s.get("changes")
    if not ch:
        return []
    kinds = ("kept", "moved", "dropped", "rotated", "incumbent_ineligible", "new")
    out = [f"against last year: {ch['incumbent_demands']:,} demands had an incumbent; "
           + ", ".join(f"{k} {ch[k]:,}" for k in kinds)]
    line = (f"  served weight kept with its incumbent (stability): {s['stability']:,.2f}; "
            f"changes among the {ch['eligible_incumbents']:,} whose incumbent could serve: "
            f"{ch['changed']:,}")
    if ch.get("max_changes_allowed") is not None:
        line += f" (max_changes allows {ch['max_changes_allowed']:,})"
    return out + [line]


def history_lines(inst: Instance, elig: Eligibility | None) -> list[str]:
    """The planner's year in the instance: incumbents, pins, evaluations (when present)."""
    out = []
    inc, pins, ev = inst.incumbents, inst.pins, inst.evaluations
    if len(inc):
        line = (f"last year's plan: {len(inc):,} demands with an incumbent "
                f"({int(inc['years'].max())} years at most)")
        if elig is not None and len(elig.excluded):
            rotated = int((elig.excluded["reason"] == "tenure").sum())
            line += f"; {rotated:,} rotated out by max_tenure_years" if rotated else ""
        out.append(line)
    if len(pins):
        n = pins["action"].value_counts()
        out.append(f"pins: {int(n.get('assign', 0))} assign, {int(n.get('forbid', 0))} forbid")
    if len(ev):
        out.append(f"evaluations: {len(ev):,} scores of {ev['agency_id'].nunique()} agencies"
                   f" ({int((ev['violation'] != '').sum())} with a violation)")
    return out


def run_summary(result: RunResult, lang: str | None = None) -> str:
    """Status, served weight and share, mandatory served, cost vs budget, agencies, shares
    (lang en or zh; default the policy's report.language)."""
    out: list[str] = []
    s = result.summary
    report = (s.get("policy") or {}).get("report") or {}
    w = words(lang or report.get("language"))
    cur = str(report.get("currency") or "CNY")
    out.append(f"{w.terminal_status}: {s['status']}  (solver {s['solver']}, "
               f"{s['seconds']:.1f} s" + (f", gap {s['gap']:.2e}" if s.get("gap") is not None
                                         else "") + ")")
    if result.diagnosis is not None and not result.diagnosis.empty:
        out.append(w.terminal_why)
        for row in result.diagnosis.to_dict("records"):
            out.append(f"  - {diagnosis_sentence(w, row)}")
        return "\n".join(out)
    if s.get("coverage") is None:
        out.append(w.terminal_no_plan_time)
        return "\n".join(out)
    out.append(f"{w.terminal_served}: {s['coverage']:,.2f} {w.of} {s['weight_total']:,.2f} "
               f"({_pct(s['coverage_ratio'])}); {w.terminal_demands_served} "
               f"{s['counts']['demands_served']:,} {w.of} {s['counts']['demands']:,}")
    out.append(f"{w.terminal_mandatory}: {s['mandatory_served']} {w.of} {s['mandatory_total']}")
    cost = w.terminal_gov_cost if s.get("enterprise_cost") else w.terminal_cost
    out.append(f"{cost}: {_money(s['cost'])} {cur} {w.of} {w.terminal_budget} "
               f"{_money(s['budget'])} {cur} ({_pct(s['cost'] / s['budget'])})"
               if s.get("budget") else f"{cost}: {_money(s['cost'])} {cur}")
    if s.get("enterprise_cost"):
        out.append(w.fmt("terminal_copay", value=f"{_money(s['contract_value'])} {cur}",
                         paid=f"{_money(s['enterprise_cost'])} {cur}"))
    out += funding_lines(s.get("funding"))
    out.append(f"{w.terminal_agencies}: {s['agencies_used']} {w.of} {s['counts']['agencies']}; "
               f"{w.terminal_share}: {_pct(s['max_district_share'] or 0.0)}")
    if len(result.unserved):
        reasons = pd.Series(result.unserved["reason"]).value_counts()
        out.append(f"{w.terminal_left_out}: " + ", ".join(
            f"{w.reason(str(r)) if w.lang == 'zh' else r} {n:,}" for r, n in reasons.items()))
    split = s.get("spend_split")
    if isinstance(split, dict) and split.get("coverage_only_cost") is not None:
        extra = float(s["cost"]) - float(split["coverage_only_cost"])
        out.append(w.fmt("split_text", base=f"{_money(split['coverage_only_cost'])} {cur}",
                         cost=f"{_money(s['cost'])} {cur}", extra=f"{_money(extra)} {cur}",
                         share=_pct(extra / s["cost"] if s["cost"] else 0.0)))
    out += changes_lines(s)
    return "\n".join(out)


def funding_lines(funding: dict | None) -> list[str]:
    """Spend by funding source and by department (summary.json's funding section)."""
    if not funding:
        return []
    out = [f"spend by source (narrowest scope first pays first): {_money(funding['used'])} of "
           f"{_money(funding['amount'])}"]
    for src in funding["sources"]:
        name = f" {src['name']}" if src.get("name") else ""
        out.append(f"  {src['source_id']}{name}: {_money(src['used'])} of "
                   f"{_money(src['amount'])} ({_pct(src['share_used'])}), left "
                   f"{_money(src['left'])}")
    if len(funding["by_department"]) > 1 or any(d["department"] != "(none)"
                                                for d in funding["by_department"]):
        out.append("spend by department: " + ", ".join(
            f"{d['department']} {_money(d['used'])} of {_money(d['amount'])}"
            for d in funding["by_department"]))
    if funding.get("unpaid"):
        out.append(f"  NOT PAID by any source: {_money(funding['unpaid'])}")
    return out


def diagnosis_text(reasons: list[str], outcome: str, least_cost: float | None,
                   budget: float | None) -> str:
    """What `allocator diagnose` says: the reasons as sentences, or that a plan exists."""
    if outcome == "feasible":
        return "no infeasibility: a plan exists" + (
            f" (least cost {_money(least_cost)}"
            + (f" of budget {_money(budget)})" if budget is not None else ")")
            if least_cost is not None else "")
    head = ("why no plan exists:" if outcome == "infeasible" else
            "no plan was found, and none was ruled out, in the time allowed:")
    return "\n".join([head] + [f"  - {r}" for r in reasons])


def frontier_text(df: pd.DataFrame, mark: float | None, exact: bool) -> str:
    """A compact table of a sweep's frontier, and the least budget for the mandatory demands."""
    out = [f"{'budget':>16} {'status':>11} {'served':>9} {'share':>7} {'cost':>16} "
           f"{'marginal':>9} {'seconds':>8}  how"]
    for r in df.itertuples(index=False):
        has = pd.notna(r.coverage)
        out.append(f"{r.budget:16,.2f} {r.status:>11} "
                   + (f"{r.coverage:9,.2f} {_pct(r.coverage_ratio):>7} {r.cost:16,.2f} "
                      if has else f"{'':9} {'':7} {'':16} ")
                   + (f"{r.marginal_value:9.3f} " if pd.notna(r.marginal_value) else f"{'':9} ")
                   + f"{r.seconds:8.1f}  {r.how}")
    if mark is not None:
        out.append(("least budget serving every mandatory demand: " if exact else
                    "first swept budget serving every mandatory demand: ") + f"{mark:,.2f}")
    return "\n".join(out)


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def comparison_text(table: pd.DataFrame) -> str:
    """A compact table of the scenarios side by side."""
    width = max(12, int(table["scenario"].astype(str).str.len().max()))
    out = [f"{'scenario':<{width}} {'status':>11} {'served':>9} {'share':>7} {'cost':>16} "
           f"{'agencies':>8} {'top share':>9} {'quality':>7} {'HHI':>6} {'price':>8}"]
    for r in table.itertuples(index=False):
        line = f"{r.scenario:<{width}} {r.status:>11} "
        if not _blank(r.coverage):
            line += (f"{r.coverage:9,.2f} {_pct(r.coverage_ratio):>7} {r.cost:16,.2f} "
                     f"{int(r.agencies_used):8d} {_pct(r.largest_district_share):>9} "
                     f"{r.mean_quality:7.2f} "
                     + (f"{r.herfindahl:6.4f}" if not _blank(r.herfindahl) else f"{'':6}"))
        else:
            line += f"{'':9} {'':7} {'':16} {'':8} {'':9} {'':7} {'':6}"
        if not _blank(r.price_of_rule):
            line += f" {r.price_of_rule:8,.2f}"
        elif r.note:
            line += f"  {r.note}"
        out.append(line)
    return "\n".join(out)


def audit_text(audit: Audit) -> str:
    """What `allocator check` says: warnings, one line per violation, then the verdict."""
    out = [f"WARNING: {w}" for w in audit.warnings]
    out += [str(v) for v in audit.violations]
    if audit.violations:
        totals = sum(v.rule.endswith("_totals") for v in audit.violations)
        if totals:
            out.append(f"{totals} of these are totals that do not match the rows: after "
                       "editing assignments.csv by hand, recompute them with `allocator "
                       "retotal INSTANCE RESULTS`, then check again")
        out.append(f"FAIL: {len(audit.violations)} violation(s)")
    else:
        out.append(f"OK: {audit.assignments} assignments, {audit.unserved} unserved, every "
                   "rule holds" + ("" if audit.status in ("optimal", "feasible")
                                   else f" (status {audit.status}: no plan to check)"))
    return "\n".join(out)


def evaluation_text(changes: pd.DataFrame, incumbents: int, out: str = "") -> str:
    """What `allocator evaluate` says: the pool's moves, each agency whose status changed."""
    moved = changes[changes["old_status"] != changes["new_status"]]
    scored = int(changes["score"].notna().sum())
    lines = [f"evaluated: {scored} of {len(changes)} agencies have a score; "
             f"{len(moved)} change status"
             + (f"; next year's incumbents: {incumbents:,} demands" if incumbents else "")]
    counts = (moved["old_status"] + " -> " + moved["new_status"]).value_counts()
    if len(counts):
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for r in moved.itertuples(index=False):
        lines.append(f"  {r.agency_id}: {r.old_status} -> {r.new_status}: {r.reason}")
    if out:
        lines.append(f"next year's instance: {out} (edit its enterprises and demands for the "
                     "new year; pool_changes.csv lists every agency)")
    return "\n".join(lines)


def diff_text(diff) -> str:
    """What `allocator diff` says: totals side by side, demands, agencies, districts."""
    s = diff.summary
    out = [f"A: {diff.a} ({s['status']['a']})   B: {diff.b} ({s['status']['b']})",
           f"  {'':<16} {'A':>16} {'B':>16} {'B - A':>16}"]
    for key, t in s["totals"].items():
        if t["a"] is None and t["b"] is None:
            continue
        a, b, c = t["a"], t["b"], t["change"]
        if isinstance(a, float | int) and isinstance(b, float | int):
            out.append(f"  {key:<16} {a:>16,.2f} {b:>16,.2f} {c:>+16,.2f}")
        else:
            out.append(f"  {key:<16} {a!s:>16} {b!s:>16}")
    d = s["demands"]
    out.append(f"demands: {d['same']:,} same agency, {d['moved']:,} moved, {d['added']:,} "
               f"served only in B, {d['dropped']:,} served only in A")
    g = s["agencies"]
    out.append(f"agencies: {g['gaining_value']} gain value, {g['losing_value']} lose value, "
               f"{g['new_in_b']} new in B, {g['gone_in_b']} without demands in B")
    top = diff.agencies.reindex(diff.agencies["value_change"].abs().sort_values(
        ascending=False).index).head(5)
    for r in top.itertuples(index=False):
        if abs(r.value_change) > 0.005:
            out.append(f"  {r.agency_id}: lot {r.value_a:,.0f} -> {r.value_b:,.0f} "
                       f"({r.value_change:+,.0f}), demands {r.demands_a} -> {r.demands_b}")
    k = s["districts"]
    out.append(f"districts: {k['spending_more']} spend more, {k['spending_less']} less; "
               f"coverage up in {k['coverage_up']}, down in {k['coverage_down']}")
    return "\n".join(out)


def batch_text(table: pd.DataFrame) -> str:
    """A compact table of a batch: one line per instance, scenario and budget."""
    wi = max(8, int(table["instance"].astype(str).str.len().max()))
    ws = max(8, int(table["scenario"].astype(str).str.len().max()))
    out = [f"{'instance':<{wi}} {'scenario':<{ws}} {'budget':>14} {'status':>11} "
           f"{'served':>9} {'share':>7} {'cost':>15} {'seconds':>8}  worker"]
    for r in table.itertuples(index=False):
        budget = f"{r.budget:14,.0f}" if not _blank(r.budget) else f"{'':14}"
        line = f"{r.instance:<{wi}} {r.scenario:<{ws}} {budget} {r.status:>11} "
        if not _blank(r.coverage):
            line += f"{r.coverage:9,.1f} {r.coverage_ratio:7.1%} {r.cost:15,.0f} "
        else:
            line += f"{'':9} {'':7} {'':15} "
        line += (f"{r.seconds:8.1f}" if not _blank(r.seconds) else f"{'':8}") + f"  {r.worker}"
        if r.status == "error":
            line += f"  {r.note}"
        out.append(line)
    return "\n".join(out)
