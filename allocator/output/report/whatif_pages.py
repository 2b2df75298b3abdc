"""The report of a sweep folder (the frontier) and of a comparison folder (scenarios side by
side, the price of each rule)."""

from __future__ import annotations

import pandas as pd

from allocator.output.folder_reader import Folder
from allocator.output.i18n import Words, blank, money, number, pct
from allocator.output.report import html as H
from allocator.output.report import svg

HAS_PLAN = ("optimal", "feasible")


def render_sweep(f: Folder, w: Words) -> str:
    fr = f.table("frontier.csv").sort_values("budget").reset_index(drop=True)
    s = f.summary
    cur = _currency(f)
    ok = fr["status"].isin(HAS_PLAN)
    out = [H.h(1, w.sweep_report), H.p(str(s.get("instance", "")), "sub"),
           H.p(w.fmt("sweep_lead", n=len(fr), lo=money(fr["budget"].min(), cur),
                     hi=money(fr["budget"].max(), cur), k=int(ok.sum())))]
    marks: list[tuple[float, str, str]] = []
    lines = []
    least = s.get("least_budget_all_mandatory") or {}
    mark = least.get("marked")
    if mark is not None:
        exact = bool(least.get("exact"))
        marks.append((float(mark), w.least_mandatory if exact else w.first_mandatory, "red"))
        lines.append(w.fmt("mark_least" if exact else "mark_first", v=money(mark, cur)))
    else:
        lines.append(w.no_mark)
    full = s.get("budget_serving_all") or {}
    if full.get("value") is not None:
        marks.append((float(full["value"]), w.serves_all, "green"))
        lines.append(w.fmt("mark_all", v=money(full["value"], cur),
                           share=pct(full.get("coverage_ratio"))))
    out.append(H.sentences(lines, "marks"))
    shares = [float(v) if o and not blank(v) else None
              for v, o in zip(fr["coverage_ratio"], ok, strict=True)]
    proven = [st == "optimal" for st in fr["status"]]
    out.append(svg.frontier("frontier", w.fmt("chart_frontier", cur=cur), list(fr["budget"]),
                            shares, proven, marks, w.no_plan, w.not_proven,
                            f"{w.budget} ({cur})", lambda v: money(v, cur)))
    mv = fr["marginal_value"] if "marginal_value" in fr.columns else pd.Series(dtype=float)
    if len(fr) > 1:
        labels = [money(b) for b in fr["budget"]]
        vals = [None if blank(v) else float(v) for v in mv]
        out.append(svg.hbars("marginal", w.fmt("chart_marginal", cur=cur), labels[1:],
                             [None if v is None else max(v, 0.0) for v in vals[1:]],
                             lambda v: number(v, 3), color="orange", empty_text="-",
                             value_text=["" if v is None else number(v, 3)
                                         for v in vals[1:]]))
    fr = fr.assign(status_text=[st if st in HAS_PLAN else f"{w.no_plan} ({st})"
                                for st in fr["status"]])
    out += [H.h(2, w.frontier_points), H.table(fr, [
        ("budget", w.col_budget, "money"), ("status_text", w.col_status, "text"),
        ("coverage", w.col_served, "num"), ("coverage_ratio", w.col_coverage, "pct"),
        ("mandatory_served", w.col_mandatory, "int"), ("cost", w.col_cost, "money"),
        ("marginal_value", w.col_marginal, "num"), ("agencies_used", w.col_agencies, "int"),
        ("max_district_share", w.col_top_share, "pct"), ("gap", w.col_gap, "text"),
        ("seconds", w.col_seconds, "num")], key="frontier")]
    out.append(_extras(f, w))
    return "".join(out)


def _currency(f: Folder) -> str:
    """The currency of the runs inside a what-if folder (their summary.json's policy)."""
    return f.currency


def render_compare(f: Folder, w: Words) -> str:
    t = f.table("comparison.csv")
    cur = _currency(f)
    rules = t["scenario"].astype(str).str.startswith("without:")
    scen, pr = t[~rules], t[rules]
    ok = scen["status"].isin(HAS_PLAN)
    out = [H.h(1, w.compare_report), H.p(w.fmt("compare_lead", n=len(scen),
                                                k=int(ok.sum())))]
    names = list(scen["scenario"].astype(str))
    no_plan = [f"{w.no_plan} ({st})" for st in scen["status"]]
    shares = [float(v) if o and not blank(v) else None
              for v, o in zip(scen["coverage_ratio"], ok, strict=True)]
    out.append(svg.hbars("scenario_share", w.chart_scen_share, names, shares,
                         lambda v: pct(v), scale_max=1.0, axis_fmt=lambda v: f"{100 * v:.0f}%",
                         empty_text=w.no_plan,
                         value_text=[pct(s) if s is not None else n
                                     for s, n in zip(shares, no_plan, strict=True)]))
    costs = [float(v) if o and not blank(v) else None
             for v, o in zip(scen["cost"], ok, strict=True)]
    budgets = [None if blank(b) else float(b) for b in scen.get("budget", [None] * len(scen))]
    out.append(svg.hbars("scenario_spend", w.fmt("chart_scen_spend", cur=cur), names, costs,
                         lambda v: money(v), ticks=budgets, color="green",
                         empty_text=w.no_plan))
    cols = [("scenario", w.col_scenario, "text"), ("status", w.col_status, "text"),
            ("coverage", w.col_served, "num"), ("coverage_ratio", w.col_coverage, "pct"),
            ("mandatory_served", w.col_mandatory, "int"), ("cost", w.col_cost, "money"),
            ("budget", w.col_budget, "money"), ("agencies_used", w.col_agencies, "int"),
            ("largest_district_share", w.col_top_share, "pct"),
            ("mean_quality", w.col_quality, "num"), ("herfindahl", "HHI", "num"),
            ("note", w.col_note, "text")]
    out += [H.h(2, w.scenarios), H.table(scen, cols, key="scenarios")]
    if len(pr):
        labels = [w.rule(s.removeprefix("without:")) + f" ({s.removeprefix('without:')})"
                  for s in pr["scenario"].astype(str)]
        price = [None if blank(v) else float(v) for v in pr["price_of_rule"]]
        notes = [str(n) if not blank(n) else "" for n in pr.get("note", [""] * len(pr))]
        out += [H.h(2, w.price_of_rules),
                svg.hbars("rule_price", w.chart_rule_price, labels,
                          [None if v is None else max(v, 0.0) for v in price],
                          lambda v: number(v), color="purple", empty_text="-",
                          value_text=[number(v) if v is not None else n
                                      for v, n in zip(price, notes, strict=True)]),
                H.table(pr.assign(rule=labels, price=price), [
                    ("rule", w.col_rule, "text"), ("status", w.col_status, "text"),
                    ("price", w.col_price, "num"), ("coverage", w.col_served, "num"),
                    ("cost", w.col_cost, "money"), ("note", w.col_note, "text")],
                    key="rule_prices")]
    out.append(_extras(f, w))
    return "".join(out)


def _extras(f: Folder, w: Words) -> str:
    if not f.extras:
        return ""
    return H.h(2, w.other_files) + "".join(H.h(3, n) + H.generic_table(f.table(n), w, n)
                                           for n in f.extras)
