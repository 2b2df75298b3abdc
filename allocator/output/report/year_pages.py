"""The planner's year in the report: a plan's changes.csv (what changed against last year's
plan) as a section of its own, and the page of a diff folder (two plans side by side)."""

from __future__ import annotations

import pandas as pd

from allocator.output.folder_reader import Folder
from allocator.output.i18n import Words, number
from allocator.output.report import html as H
from allocator.output.report.plan_page import EXTRA_SECTIONS

CHANGES = ("kept", "moved", "dropped", "rotated", "incumbent_ineligible", "new")


def changes_section(f: Folder, w: Words, frame: pd.DataFrame) -> str:
    """changes.csv: the counts in a sentence, then every demand not kept with its incumbent."""
    counts = frame["change"].value_counts() if "change" in frame.columns else pd.Series()
    text = ", ".join(f"{getattr(w, f'change_{c}')} {int(counts.get(c, 0)):,}"
                     for c in CHANGES if counts.get(c, 0))
    had = int((frame.get("incumbent_agency_id", pd.Series(dtype=str)).astype(str)
               .replace("nan", "") != "").sum())
    stability = f.summary.get("stability")
    out = [H.p(w.fmt("changes_lead", n=f"{had:,}", counts=text or "-",
                     stability=number(stability) if stability is not None else "-"))]
    rest = frame[frame["change"] != "kept"] if "change" in frame.columns else frame
    if len(rest):
        rest = rest.assign(change_text=rest["change"].map(
            lambda c: getattr(w, f"change_{c}", c) if c in CHANGES else c))
        out += [H.h(3, w.changes_not_kept), H.table(rest, [
            ("enterprise_id", w.col_enterprise, "text"), ("service_id", w.col_service, "text"),
            ("incumbent_agency_id", w.col_incumbent, "text"), ("agency_id", w.col_agency, "text"),
            ("change_text", w.col_change_kind, "text"), ("reason", w.col_reason, "text")],
            max_rows=60, more=lambda n: w.fmt("more_rows", n=n, file="changes.csv"),
            key="changes")]
    return "".join(out)


EXTRA_SECTIONS["changes.csv"] = changes_section


def render_diff(f: Folder, w: Words) -> str:
    """A diff folder: the totals of A and B, what changed per demand, agency and district."""
    s = f.summary
    status = s.get("status") or {}
    out = [H.h(1, w.diff_report),
           H.p(w.fmt("diff_lead", a=s.get("a", "A"), sa=status.get("a", ""),
                     b=s.get("b", "B"), sb=status.get("b", "")), "sub")]
    rows = [{"level": k, "a": v.get("a"), "b": v.get("b"), "change": v.get("change")}
            for k, v in (s.get("totals") or {}).items()
            if isinstance(v, dict) and (v.get("a") is not None or v.get("b") is not None)]
    if rows:
        out += [H.h(2, w.diff_totals), H.table(pd.DataFrame(rows), [
            ("level", w.col_level, "text"), ("a", w.col_a, "num"), ("b", w.col_b, "num"),
            ("change", w.col_change_b_a, "num")], key="totals")]
    d = s.get("demands") or {}
    out.append(H.p(w.fmt("diff_demands", **{k: f"{int(d.get(k, 0)):,}" for k in
                                             ("same", "moved", "added", "dropped")})))
    dem = f.table("demands.csv")
    if "change" in dem.columns:
        changed = dem[dem["change"] != "same"]
        out += [H.h(2, w.diff_changed_demands), H.table(changed, [
            ("enterprise_id", w.col_enterprise, "text"), ("service_id", w.col_service, "text"),
            ("district_id", w.col_district, "text"), ("agency_a", w.col_a, "text"),
            ("agency_b", w.col_b, "text"), ("change", w.col_change_kind, "text"),
            ("cost_change", w.col_change_b_a, "money")], max_rows=60,
            more=lambda n: w.fmt("more_rows", n=n, file="demands.csv"), key="diff_demands")]
    ag = f.table("agencies.csv")
    if "value_change" in ag.columns:
        ag = ag.reindex(ag["value_change"].abs().sort_values(ascending=False).index)
        out += [H.h(2, w.diff_agencies), H.table(ag, [
            ("agency_id", w.col_agency, "text"), ("demands_a", f"{w.col_demands} A", "int"),
            ("demands_b", f"{w.col_demands} B", "int"),
            ("value_a", f"{w.col_value} A", "money"), ("value_b", f"{w.col_value} B", "money"),
            ("value_change", w.col_change_b_a, "money")], key="diff_agencies")]
    dis = f.table("districts.csv")
    if "cost_change" in dis.columns:
        out += [H.h(2, w.diff_districts), H.table(dis, [
            ("district_id", w.col_district, "text"), ("cost_a", f"{w.col_cost} A", "money"),
            ("cost_b", f"{w.col_cost} B", "money"), ("cost_change", w.col_change_b_a, "money"),
            ("coverage_ratio_a", f"{w.col_coverage} A", "pct"),
            ("coverage_ratio_b", f"{w.col_coverage} B", "pct")], key="diff_districts")]
    return "".join(out)


__all__ = ["changes_section", "render_diff"]
