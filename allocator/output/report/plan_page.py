"""The report of one run: a plan (headline, charts, limits, what is left out, idle agencies,
the spend split, tables, the run's facts) or, without a plan, what to change."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from allocator.analysis.plan_facts import Limit, idle_agencies, plan_limits, spend_split_facts
from allocator.output.folder_reader import Folder
from allocator.output.i18n import Words, blank, money, number, pct
from allocator.output.report import html as H
from allocator.output.report import svg

#: a section renderer for a CSV another feature adds to the results folder: (folder, words,
#: frame) -> HTML. Files without one are shown as a plain table (html.generic_table).
ExtraSection = Callable[[Folder, Words, pd.DataFrame], str]
EXTRA_SECTIONS: dict[str, ExtraSection] = {}


def _name(ids: Any, names: dict[str, str]) -> str:
    i = str(ids)
    n = names.get(i, "")
    return f"{n} ({i})" if n and n != i else i


def name_maps(f: Folder) -> dict[str, dict[str, str]]:
    """id -> name for districts, agencies, services, enterprises, from the folder's tables."""
    out: dict[str, dict[str, str]] = {"district": {}, "agency": {}, "service": {},
                                      "enterprise": {}}
    for table in f.tables.values():
        for kind in out:
            i, n = f"{kind}_id", f"{kind}_name"
            if i in table.columns and n in table.columns:
                sub = table[[i, n]].dropna().astype(str)
                out[kind].update(dict(zip(sub[i], sub[n], strict=True)))
    return out


def status_block(w: Words, s: dict[str, Any]) -> str:
    status = str(s.get("status"))
    cls = {"optimal": "ok", "feasible": "warn"}.get(status, "bad")
    return (f'<p><span class="status {cls}" data-key="status" data-value="{status}">'
            f"{H.escape(w.status(status, s.get('gap')))}</span></p>")


def headline(w: Words, s: dict[str, Any], cur: str) -> str:
    budget: Any = s.get("budget")
    cost: Any = s.get("cost")
    items = [
        H.kpi("coverage", w.served_weight, number(s.get("coverage")),
              w.fmt("served_of", a="", b=number(s.get("weight_total"))).strip(),
              s.get("coverage")),
        H.kpi("coverage_ratio", w.served_share, pct(s.get("coverage_ratio")), "",
              s.get("coverage_ratio")),
        H.kpi("mandatory_served", w.mandatory_served,
              f"{s.get('mandatory_served')} / {s.get('mandatory_total')}", "",
              s.get("mandatory_served")),
        H.kpi("cost", w.spend_of_budget, money(cost, cur),
              (f"/ {money(budget, cur)} ({pct(float(cost) / float(budget))})"
               if not blank(budget) and not blank(cost) and float(budget) > 0 else ""), cost),
        H.kpi("agencies_used", w.agencies_used,
              f"{s.get('agencies_used')} / {(s.get('counts') or {}).get('agencies', '')}", "",
              s.get("agencies_used")),
        H.kpi("max_district_share", w.largest_share, pct(s.get("max_district_share")), "",
              s.get("max_district_share")),
    ]
    return '<div class="headline" data-section="headline">' + "".join(items) + "</div>"


def limit_sentence(w: Words, lim: Limit, cur: str, names: dict[str, dict[str, str]]) -> str:
    d, ag = names["district"], names["agency"]
    rule = lim.rule
    if rule == "budget":
        text = w.fmt("lim_budget", used=money(lim.used, cur), limit=money(lim.limit, cur))
    elif rule == "district_budget_cap":
        text = w.fmt("lim_district_budget_cap", subject=_name(lim.subject, d),
                     used=money(lim.used, cur), limit=money(lim.limit, cur))
    elif rule == "capacity" and lim.subject == "agencies":
        text = w.lim_capacity_all
    elif rule == "capacity":
        text = w.fmt("lim_capacity", subject=_name(lim.subject, ag), used=number(lim.used),
                     limit=number(lim.limit))
    elif rule == "max_share_in_district":
        a_id, d_id = lim.subject.split("@", 1)
        text = w.fmt("lim_max_share_in_district", agency=_name(a_id, ag),
                     district=_name(d_id, d), used=pct(lim.used), limit=pct(lim.limit))
    elif rule == "max_share_in_city":
        text = w.fmt("lim_max_share_in_city", subject=_name(lim.subject, ag),
                     used=pct(lim.used), limit=pct(lim.limit))
    elif rule == "min_agencies_per_district":
        text = w.fmt("lim_min_agencies_per_district", subject=_name(lim.subject, d),
                     used=int(lim.used), limit=int(lim.limit))
    elif rule == "max_districts_per_agency":
        text = w.fmt("lim_max_districts_per_agency", subject=_name(lim.subject, ag),
                     used=int(lim.used), limit=int(lim.limit))
    else:
        text = w.fmt("lim_min_district_ratio", subject=_name(lim.subject, d),
                     used=pct(lim.used), limit=pct(lim.limit))
    if lim.left_out:
        text += w.fmt("lim_left_out", n=lim.left_out)
    return text


def limits_section(f: Folder, w: Words, names: dict[str, dict[str, str]]) -> str:
    s = f.summary
    lims = plan_limits(f.policy, s.get("budget"), f.table("assignments.csv"),
                       f.table("agencies.csv"), f.table("districts.csv"),
                       f.table("unserved.csv"))
    order = ["budget", "district_budget_cap", "capacity", "max_share_in_district",
             "max_share_in_city", "min_agencies_per_district", "max_districts_per_agency",
             "min_district_ratio"]
    lims.sort(key=lambda x: (order.index(x.rule) if x.rule in order else 99, -x.left_out))
    texts = [limit_sentence(w, lim, f.currency, names) for lim in lims]
    shown = texts[:12]
    if len(texts) > 12:
        shown.append(w.fmt("more_rows", n=len(texts) - 12, file="report"))
    return H.h(2, w.limits) + (H.sentences(shown, "limits") if texts else H.p(w.no_limits))


def split_section(f: Folder, w: Words) -> str:
    s = f.summary
    facts = spend_split_facts(s)
    cur = f.currency
    if facts is None:
        raw = s.get("spend_split")
        text = (w.fmt("split_unknown", how=raw.get("how", "")) if isinstance(raw, dict)
                else w.split_none)
    else:
        cost = facts["cost"]
        extra = facts["quality_spend"]
        text = w.fmt("split_text", base=money(facts["coverage_only_cost"], cur),
                     cost=money(cost, cur), extra=money(extra, cur),
                     share=pct(extra / cost if cost else 0.0))
    return H.h(2, w.spend_split) + f'<p data-section="spend_split">{H.escape(text)}</p>'


def charts(f: Folder, w: Words) -> str:
    a = f.table("assignments.csv")
    u = f.table("unserved.csv")
    d = f.table("districts.csv")
    g = f.table("agencies.csv")
    cur = f.currency
    out = []
    if len(d):
        labels = [_label(r, "district") for r in d.to_dict("records")]
        out.append(svg.hbars("district_coverage", w.chart_district_coverage, labels,
                             list(d["coverage_ratio"].astype(float)), lambda v: pct(v),
                             scale_max=1.0, axis_fmt=lambda v: f"{100 * v:.0f}%",
                             value_text=[f"{pct(r)} ({number(s)} / {number(t)})" for r, s, t in
                                         zip(d["coverage_ratio"], d["weight_served"],
                                             d["weight_total"], strict=True)]))
        caps = list(d["budget_cap"].astype(float)) if "budget_cap" in d.columns else None
        out.append(svg.hbars("district_spend", w.fmt("chart_district_spend", cur=cur), labels,
                             list(d["cost"].astype(float)), lambda v: money(v),
                             ticks=caps, color="green"))
    if len(g):
        gg = g.sort_values(["load", "capacity_days"], ascending=False)
        labels = [_label(r, "agency") for r in gg.to_dict("records")]
        out.append(svg.hbars("agency_load", w.chart_agency_load, labels,
                             list(gg["load"].astype(float)), lambda v: number(v),
                             outline=list(gg["capacity_days"].astype(float)), color="blue",
                             value_text=[f"{number(x)} / {number(c)} ({pct(u_)})"
                                         for x, c, u_ in zip(gg["load"], gg["capacity_days"],
                                                             gg["utilization"], strict=True)]))
    if len(a) or len(u):
        served = a.groupby("risk_level")["weight"].sum() if len(a) else pd.Series(dtype=float)
        left = u.groupby("risk_level")["weight"].sum() if len(u) else pd.Series(dtype=float)
        levels = sorted(set(served.index) | set(left.index))
        total = [float(served.get(k, 0.0)) + float(left.get(k, 0.0)) for k in levels]
        share = [float(served.get(k, 0.0)) / t if t > 0 else None
                 for k, t in zip(levels, total, strict=True)]
        out.append(svg.hbars("risk_coverage", w.chart_risk,
                             [getattr(w, f"risk_{int(k)}", str(k)) for k in levels], share,
                             lambda v: pct(v), scale_max=1.0,
                             axis_fmt=lambda v: f"{100 * v:.0f}%", empty_text="-",
                             value_text=[f"{pct(s)} ({number(served.get(k, 0.0))} / "
                                         f"{number(t)})" if s is not None else ""
                                         for k, s, t in zip(levels, share, total,
                                                            strict=True)]))
    if len(a):
        col = "service_name" if "service_name" in a.columns else "service_id"
        by = a.groupby(["service_id", col])["cost"].sum().sort_values(ascending=False)
        labels = [f"{n} ({i})" if str(n) and str(n) != str(i) else str(i)
                  for i, n in by.index]
        out.append(svg.hbars("service_spend", w.fmt("chart_service", cur=cur), labels,
                             list(by.astype(float)), lambda v: money(v), color="purple"))
    return H.h(2, w.charts) + "".join(out)


def _label(row: dict[str, Any], kind: str) -> str:
    i, n = str(row.get(f"{kind}_id", "")), row.get(f"{kind}_name")
    return f"{n} ({i})" if isinstance(n, str) and n and n != i else i


def left_out_section(f: Folder, w: Words) -> str:
    u = f.table("unserved.csv")
    if u.empty:
        return H.h(2, w.left_out) + H.p(w.nothing_left_out)
    by = (u.groupby("reason").agg(n=("weight", "size"), weight=("weight", "sum"))
          .sort_values("weight", ascending=False).reset_index())
    by["reason_text"] = by["reason"].map(lambda r: w.reason(str(r)))
    out = [H.h(2, w.left_out),
           H.table(by, [("reason_text", w.col_reason, "text"), ("n", w.col_demands, "int"),
                        ("weight", w.col_weight, "num")], key="unserved_by_reason")]
    dcol = "district_name" if "district_name" in u.columns else "district_id"
    cross = u.pivot_table(index=["district_id", dcol] if dcol != "district_id"
                          else ["district_id"], columns="risk_level", values="weight",
                          aggfunc="size", fill_value=0)
    cross.columns = [getattr(w, f"risk_{int(c)}", str(c)) for c in cross.columns]
    cross = cross.reset_index()
    cross["district"] = [_label(r, "district") for r in cross.to_dict("records")]
    cols = [("district", w.col_district, "text")] + [
        (c, f"{w.col_risk} {c}", "int") for c in cross.columns
        if c not in ("district_id", dcol, "district")]
    out.append(H.table(cross, cols, key="unserved_by_district"))
    return "".join(out)


def idle_section(f: Folder, w: Words, triples: pd.DataFrame | None) -> str:
    idle = idle_agencies(f.table("agencies.csv"), f.table("assignments.csv"),
                         f.table("excluded.csv"), f.table("unserved.csv"), triples)
    if idle.empty:
        return H.h(2, w.idle) + H.p(w.no_idle)
    texts = []
    for r in idle.to_dict("records"):
        reason = r["reason"]
        n = r["eligible_demands"]
        k = r.get(reason, 0) if reason in ("lower_quality", "dearer", "rules") else 0
        detail = str(r.get("detail") or "")
        if reason == "not_known":
            detail = f": {detail}" if detail else ""
        texts.append(w.fmt(f"idle_{reason}", n=n, k=k, detail=detail))
    idle = idle.assign(agency=[_label(r, "agency") for r in idle.to_dict("records")],
                       why=texts)
    return H.h(2, w.idle) + H.table(idle, [
        ("agency", w.col_agency, "text"), ("status", w.col_status, "text"),
        ("quality", w.col_quality, "num"), ("capacity_days", w.col_capacity, "num"),
        ("why", w.col_reason, "text")], key="idle_agencies")


def tables_section(f: Folder, w: Words) -> str:
    d = f.table("districts.csv").copy()
    g = f.table("agencies.csv").copy()
    out = ['<div class="page">', H.h(2, w.tables)]
    if len(d):
        d["district"] = [_label(r, "district") for r in d.to_dict("records")]
        out += [H.h(3, w.districts), H.table(d, [
            ("district", w.col_district, "text"), ("cost", w.col_cost, "money"),
            ("budget_cap", w.col_cap, "money"), ("weight_total", w.col_weight, "num"),
            ("weight_served", w.col_served, "num"), ("coverage_ratio", w.col_coverage, "pct"),
            ("agencies", w.col_agencies, "int"), ("max_agency_share", w.col_top_share, "pct"),
            ("mandatory_served", w.col_mandatory, "int")], key="districts")]
    if len(g):
        g["agency"] = [_label(r, "agency") for r in g.to_dict("records")]
        out += [H.h(3, w.agencies), H.table(g.sort_values("contract_value", ascending=False), [
            ("agency", w.col_agency, "text"), ("status", w.col_status, "text"),
            ("quality", w.col_quality, "num"), ("demands", w.col_demands, "int"),
            ("load", w.col_load, "num"), ("capacity_days", w.col_capacity, "num"),
            ("utilization", w.col_utilization, "pct"), ("contract_value", w.col_value, "money"),
            ("districts", w.districts, "text")], key="agencies")]
    out.append("</div>")
    return "".join(out)


def extras_section(f: Folder, w: Words) -> str:
    """Every CSV of the folder that no section above shows (another feature's file): its own
    renderer when EXTRA_SECTIONS has one, else the table as it is."""
    if not f.extras:
        return ""
    out = [H.h(2, w.other_files)]
    for name in f.extras:
        frame = f.table(name)
        render = EXTRA_SECTIONS.get(name)
        out.append(H.h(3, name))
        out.append(render(f, w, frame) if render else H.generic_table(frame, w, name))
    return "".join(out)


def facts_section(f: Folder, w: Words) -> str:
    s = f.summary
    items = [(w.f_instance, str(s.get("instance", ""))), (w.f_written, H.now_text()),
             (w.f_solver, f"{s.get('solver', '')} {s.get('solver_version', '') or ''}".strip()),
             (w.f_gap, "" if s.get("gap") is None else f"{float(s['gap']):.4g}"),
             (w.f_seconds, "" if s.get("seconds") is None else f"{float(s['seconds']):.1f}"),
             (w.f_version, str(s.get("allocator_version", ""))),
             (w.f_sha, str(s.get("instance_sha256", "")))]
    pol = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}"
                    for k, v in f.policy.items()) if f.policy else ""
    return (H.h(2, w.facts) + H.facts(items)
            + (H.h(3, w.policy) + f'<pre class="policy">{H.escape(pol)}</pre>' if pol else ""))


def diagnosis_section(f: Folder, w: Words) -> str:
    diag = f.table("diagnosis.csv")
    out = [H.h(2, w.why_no_plan)]
    if diag.empty:
        return "".join(out) + H.p(w.status(str(f.summary.get("status"))))
    texts = []
    for r in diag.to_dict("records"):
        texts.append(diagnosis_sentence(w, r))
    out.append(H.sentences(texts, "diagnosis"))
    d = diag.assign(rule_text=diag["rule"].map(lambda r: w.rule(str(r))))
    if "subject_name" in d.columns:
        d["about"] = [f"{n} ({s})" if isinstance(n, str) and n and n != str(s) else str(s)
                      for s, n in zip(d["subject"], d["subject_name"], strict=True)]
    else:
        d["about"] = d["subject"].astype(str)
    if w.lang == "zh":
        d["about"] = d["about"].replace("city", "全市")
    out.append(H.table(d, [("rule_text", w.col_rule, "text"), ("about", w.col_subject, "text"),
                           ("required", w.col_required, "num"),
                           ("available", w.col_available, "num"),
                           ("shortfall", "shortfall" if w.lang == "en" else "缺口", "num"),
                           ("change", w.col_change, "text"), ("to", w.col_to, "text")],
                       key="diagnosis"))
    return "".join(out)


def diagnosis_sentence(w: Words, r: dict[str, Any]) -> str:
    """A diagnosis row as a sentence: the message (English), or in Chinese from the row's
    fields; with what to change when the row says it."""
    change, to = r.get("change"), r.get("to")
    fix = (" " + w.fmt("change_to", change=change, to=to)
           if isinstance(change, str) and change and not blank(to) else "")
    if w.lang == "en":
        msg = str(r.get("message", ""))
        return msg if (not fix or fix.strip() in msg) else msg + fix
    subject = str(r.get("subject", ""))
    subject = "全市" if subject == "city" else subject
    name = r.get("subject_name")
    about = f"{name}（{subject}）" if isinstance(name, str) and name and name != subject \
        else subject
    parts = [f"{w.rule(str(r.get('rule')))}：{about}"]
    if not blank(r.get("required")):
        parts.append(f"需要 {number(r.get('required'))}")
    if not blank(r.get("available")):
        parts.append(f"现有 {number(r.get('available'))}")
    if not blank(r.get("shortfall")):
        parts.append(f"缺口 {number(r.get('shortfall'))}")
    return "，".join(parts) + "。" + fix.strip()


def render_plan(f: Folder, w: Words, triples: pd.DataFrame | None = None) -> str:
    """The body of a run's report (a plan, or what to change when there is none)."""
    s = f.summary
    names = name_maps(f)
    has_plan = f.kind == "plan"
    title = (w.plan_report if has_plan else w.no_plan_report)
    head = (H.h(1, title) + H.p(f"{s.get('instance', '')}", "sub") + status_block(w, s))
    if not has_plan:
        body = head + diagnosis_section(f, w)
        ex = f.table("excluded.csv")
        if len(ex) and "reason" in ex.columns:
            by = ex["reason"].value_counts().rename_axis("reason").reset_index(name="n")
            body += H.h(3, "excluded.csv") + H.table(by, [("reason", w.col_reason, "text"),
                                                          ("n", w.col_count, "int")])
        return body + extras_section(f, w) + facts_section(f, w)
    return (head + headline(w, s, f.currency) + limits_section(f, w, names)
            + split_section(f, w) + charts(f, w) + left_out_section(f, w)
            + idle_section(f, w, triples) + tables_section(f, w) + extras_section(f, w)
            + facts_section(f, w))
