"""plan.xlsx: the plan as a workbook procurement can take as it is.

Sheets: a summary; the assignments with enterprise, service, agency and district names; one
lot sheet per agency with work (its enterprises, services, person-days and amounts, with
totals: ready to attach to a contract); a district x agency spend matrix; the districts and
agencies tables; unserved demands with their reasons; excluded offers; the diagnosis when
there is no plan; and every other CSV of the folder (another feature's file) as it is.

Written from the folder's files as read back (so it says what they say) with xlsxwriter:
text is always written as text (never as a formula, a number or a link), money with the
policy's currency in its number format, headers frozen, columns sized to their content.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.output.folder_reader import Folder, read_folder
from allocator.output.i18n import Words, words

WORKBOOK_FILE = "plan.xlsx"
MAX_ROWS = 1_048_575  # Excel's rows per sheet, less the header

#: column kinds for number formats (every other numeric column gets a plain number format)
MONEY_COLS = {"cost", "contract_value", "budget_cap", "reference_cost", "amount", "required_money"}
RATIO_COLS = {"utilization", "coverage_ratio", "max_agency_share", "max_district_share",
              "largest_district_share", "share"}
INT_COLS = {"risk_level", "demands", "agencies", "demands_served", "mandatory_total",
            "mandatory_served", "eligible_agencies"}

SHEETS = {  # key -> (English, Chinese)
    "summary": ("Summary", "汇总"), "assignments": ("Assignments", "分配明细"),
    "matrix": ("District x agency", "区×机构支出"), "districts": ("Districts", "各区"),
    "agencies": ("Agencies", "机构"), "unserved": ("Unserved", "未服务需求"),
    "excluded": ("Excluded offers", "被排除的报价"), "diagnosis": ("Diagnosis", "诊断"),
    "lot": ("Lot", "标段"),
}


#: the lot sheet's column headings in Chinese
LOT_HEADINGS_ZH = {"enterprise_id": "企业编号", "enterprise_name": "企业名称",
                   "district_id": "区编号", "district_name": "区", "service_id": "服务编号",
                   "service_name": "服务项目",
                   "risk_level": "风险等级", "person_days": "人日", "amount": "金额"}


def _sheet_name(text: str, used: set[str]) -> str:
    """A valid, unique Excel sheet name (31 characters, none of []:*?/\\)."""
    base = re.sub(r"[\[\]:*?/\\]", "_", text).strip("'") or "Sheet"
    name = base[:31].strip()
    k = 2
    while name.lower() in used:
        suffix = f" ({k})"
        name = base[:31 - len(suffix)] + suffix
        k += 1
    used.add(name.lower())
    return name


class Book:
    """The workbook being written: formats and sheet names."""

    def __init__(self, path: Path, currency: str, w: Words) -> None:
        import xlsxwriter

        self.wb = xlsxwriter.Workbook(str(path), {
            "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False, "constant_memory": True})
        self.w = w
        self.used: set[str] = set()
        cur = currency.replace('"', "")
        self.fmt = {
            "head": self.wb.add_format({"bold": True, "bg_color": "#E8EEF5", "border": 1,
                                        "text_wrap": True, "valign": "top"}),
            "money": self.wb.add_format({"num_format": f'#,##0.00 "{cur}"'}),
            "ratio": self.wb.add_format({"num_format": "0.00%"}),
            "int": self.wb.add_format({"num_format": "0"}),
            "num": self.wb.add_format({"num_format": "#,##0.####"}),
            "text": self.wb.add_format({}),
            "bold": self.wb.add_format({"bold": True}),
            "title": self.wb.add_format({"bold": True, "font_size": 13}),
            "total_money": self.wb.add_format({"bold": True, "top": 1,
                                               "num_format": f'#,##0.00 "{cur}"'}),
            "total_num": self.wb.add_format({"bold": True, "top": 1, "num_format": "#,##0.####"}),
            "total_text": self.wb.add_format({"bold": True, "top": 1}),
        }

    def sheet(self, key_or_name: str):
        pair = SHEETS.get(key_or_name)
        name = pair[1 if self.w.lang == "zh" else 0] if pair else key_or_name
        return self.wb.add_worksheet(_sheet_name(name, self.used))

    def kind(self, col: str, series: pd.Series) -> str:
        if not pd.api.types.is_numeric_dtype(series.dtype):
            return "text"
        if col in MONEY_COLS or col in ("amount", "金额"):
            return "money"
        if col in RATIO_COLS:
            return "ratio"
        if col in INT_COLS:
            return "int"
        return "num"

    def close(self) -> None:
        self.wb.close()


def _value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v


def write_cell(ws, row: int, col: int, v: Any, fmt) -> None:
    """One cell: text as text (never a formula), a number as a number, nothing as blank."""
    v = _value(v)
    if v is None or v == "":
        ws.write_blank(row, col, None, fmt)
    elif isinstance(v, bool):
        ws.write_string(row, col, "true" if v else "false", fmt)
    elif isinstance(v, int | float):
        ws.write_number(row, col, v, fmt)
    else:
        ws.write_string(row, col, str(v), fmt)


def write_frame(book: Book, key: str, frame: pd.DataFrame, first_row: int = 0,
                ws=None, totals: dict[str, float] | None = None) -> None:
    """A table on a sheet (a new one unless ws is given): a header row, frozen, columns sized
    to their content; a table longer than a sheet continues on further sheets."""
    if len(frame) > MAX_ROWS - first_row and ws is None:
        for k, start in enumerate(range(0, len(frame), MAX_ROWS)):
            part = frame.iloc[start:start + MAX_ROWS]
            name = key if k == 0 else f"{SHEETS.get(key, (key, key))[0]} {k + 1}"
            write_frame(book, name, part)
        return
    ws = ws if ws is not None else book.sheet(key)
    cols = [str(c) for c in frame.columns]
    kinds = [book.kind(c, frame[c]) for c in cols]
    for j, c in enumerate(cols):
        sample = frame[c].head(500).map(lambda v: "" if _value(v) is None else str(v))
        width = max([len(c)] + [_width(s) for s in sample]) if len(sample) else len(c)
        ws.set_column(j, j, min(max(width + 2, 8), 60), book.fmt[kinds[j]])
    ws.freeze_panes(first_row + 1, 0)
    for j, c in enumerate(cols):
        ws.write_string(first_row, j, c, book.fmt["head"])
    data = frame.to_numpy(dtype=object)
    for i in range(len(frame)):
        row = first_row + 1 + i
        for j in range(len(cols)):
            write_cell(ws, row, j, data[i, j], book.fmt[kinds[j]])
    if totals:
        row = first_row + 1 + len(frame)
        ws.write_string(row, 0, book.w.total, book.fmt["total_text"])
        for j, c in enumerate(cols):
            if c in totals and j > 0:
                fmt = book.fmt["total_money" if kinds[j] == "money" else "total_num"]
                ws.write_number(row, j, float(totals[c]), fmt)


def _width(text: str) -> int:
    """Display width: a CJK character takes two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def summary_sheet(book: Book, f: Folder) -> None:
    w, s = book.w, f.summary
    ws = book.sheet("summary")
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 60)
    ws.write_string(0, 0, w.plan_report if f.kind == "plan" else w.no_plan_report,
                    book.fmt["title"])
    rows: list[tuple[str, Any, str]] = [
        (w.f_instance, s.get("instance"), "text"),
        (w.col_status, w.status(str(s.get("status")), s.get("gap")), "text"),
        (w.served_weight, s.get("coverage"), "num"),
        (w.served_share, s.get("coverage_ratio"), "ratio"),
        (w.mandatory_served, f"{s.get('mandatory_served')} / {s.get('mandatory_total')}",
         "text"),
        (w.spend, s.get("cost"), "money"), (w.budget, s.get("budget"), "money"),
        *([("contract value" if w.lang == "en" else "合同总额", s.get("contract_value"),
            "money")] if s.get("enterprise_cost") else []),
        (w.agencies_used, s.get("agencies_used"), "int"),
        (w.largest_share, s.get("max_district_share"), "ratio"),
        (w.f_solver, s.get("solver"), "text"), (w.f_gap, s.get("gap"), "num"),
        (w.f_seconds, s.get("seconds"), "num"),
        ("currency" if w.lang == "en" else "币种", f.currency, "text"),
        (w.f_version, s.get("allocator_version"), "text"),
        (w.f_sha, s.get("instance_sha256"), "text"),
    ]
    for i, (label, value, kind) in enumerate(rows, start=2):
        ws.write_string(i, 0, label, book.fmt["bold"])
        write_cell(ws, i, 1, value, book.fmt[kind])


def matrix_sheet(book: Book, a: pd.DataFrame) -> None:
    """Spend by district (rows) and agency (columns), with row and column totals."""
    dn = a.get("district_name", a["district_id"]).astype(str)
    an = a.get("agency_name", a["agency_id"]).astype(str)
    dl = a["district_id"].astype(str) + " " + dn
    al = a["agency_id"].astype(str) + " " + an
    m = a.assign(d=dl, ag=al, cost=a["cost"].astype(float)).pivot_table(
        index="d", columns="ag", values="cost", aggfunc="sum", fill_value=0.0)
    w = book.w
    m[w.total] = m.sum(axis=1)
    m.loc[w.total] = m.sum(axis=0)
    frame = m.reset_index().rename(columns={"d": w.col_district})
    frame.columns = [str(c) for c in frame.columns]
    for c in frame.columns[1:]:
        frame[c] = frame[c].astype(float)
    ws = book.sheet("matrix")
    ws.set_column(0, 0, 28)
    ws.set_column(1, len(frame.columns) - 1, 16, book.fmt["money"])
    ws.freeze_panes(1, 1)
    for j, c in enumerate(frame.columns):
        ws.write_string(0, j, c, book.fmt["head"])
    data = frame.to_numpy(dtype=object)
    for i in range(len(frame)):
        last = i == len(frame) - 1
        for j in range(len(frame.columns)):
            if j == 0:
                ws.write_string(i + 1, 0, str(data[i, 0]),
                                book.fmt["total_text" if last else "text"])
            else:
                ws.write_number(i + 1, j, float(data[i, j]),
                                book.fmt["total_money" if last else "money"])


def lot_sheets(book: Book, a: pd.DataFrame, agencies: pd.DataFrame) -> None:
    """One sheet per agency with work: its lot (enterprises, services, person-days, amounts)
    and the totals, which equal its row of agencies.csv."""
    w = book.w
    cols = [c for c in ("enterprise_id", "enterprise_name", "district_id", "district_name",
                        "service_id", "service_name", "risk_level", "load", "cost")
            if c in a.columns]
    info = agencies.set_index(agencies["agency_id"].astype(str)) if len(agencies) else None
    order = (agencies.sort_values("contract_value", ascending=False)["agency_id"].astype(str)
             .tolist() if len(agencies) and "contract_value" in agencies.columns
             else sorted(a["agency_id"].astype(str).unique()))
    groups = {str(k): g for k, g in a.groupby(a["agency_id"].astype(str))}
    for ag in order:
        g = groups.get(ag)
        if g is None or g.empty:
            continue
        name = str(g["agency_name"].iloc[0]) if "agency_name" in g.columns else ""
        ws = book.sheet(f"{ag} {name}".strip())
        ws.write_string(0, 0, f"{w.col_agency}: {ag} {name}", book.fmt["title"])
        if info is not None and ag in info.index:
            r = info.loc[ag]
            line = (f"{w.col_status}: {r.get('status', '')}   {w.col_quality}: "
                    f"{r.get('quality', '')}   {w.col_capacity}: {r.get('capacity_days', '')}"
                    f"   {w.districts}: {r.get('districts', '')}")
            ws.write_string(1, 0, line)
        lot = g[cols].sort_values([c for c in ("district_id", "enterprise_id", "service_id")
                                   if c in cols]).reset_index(drop=True)
        lot = lot.rename(columns={"load": "person_days", "cost": "amount"})
        totals = {"person_days": float(lot["person_days"].sum()),
                  "amount": round(float(lot["amount"].sum()), 2)}
        if w.lang == "zh":
            lot = lot.rename(columns=LOT_HEADINGS_ZH)
            totals = {LOT_HEADINGS_ZH[k]: v for k, v in totals.items()}
        write_frame(book, "", lot, first_row=3, ws=ws, totals=totals)


def write_workbook(folder: str | Path, out: str | Path | None = None, lang: str | None = None
                   ) -> Path:
    """Write FOLDER/plan.xlsx (or `out`) from a results folder's files."""
    f = read_folder(folder)
    if f.kind not in ("plan", "no_plan"):
        from allocator.core.errors import Problem, ResultsError

        raise ResultsError([Problem(str(folder), None, "", None,
                                    "a workbook is written for a plan's results folder",
                                    "give the folder written by allocator solve --out")])
    w = words(lang or f.language)
    target = Path(out) if out is not None else Path(folder) / WORKBOOK_FILE
    book = Book(target, f.currency, w)
    try:
        summary_sheet(book, f)
        a = f.table("assignments.csv")
        if f.kind == "plan" and len(a):
            write_frame(book, "assignments", a)
            matrix_sheet(book, a)
        for key, name in (("districts", "districts.csv"), ("agencies", "agencies.csv")):
            if len(f.table(name).columns):
                write_frame(book, key, f.table(name))
        if f.kind == "plan" and len(a):
            lot_sheets(book, a, f.table("agencies.csv"))
        for key, name in (("unserved", "unserved.csv"), ("excluded", "excluded.csv"),
                          ("diagnosis", "diagnosis.csv")):
            if len(f.table(name).columns):
                write_frame(book, key, f.table(name))
        for name in f.extras:
            write_frame(book, name.removesuffix(".csv"), f.table(name))
    finally:
        book.close()
    return target
