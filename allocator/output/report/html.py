"""The report's page: one HTML file, styles inline, no script, no request of any kind when it
is opened; printable on A4 (the first page is the summary, tables follow on their own pages).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import pandas as pd

from allocator.core.folders import SIGNATURE
from allocator.output.cjk import css_font_stack, mono_font_stack, web_font_css
from allocator.output.i18n import Words, blank, money, number, pct

CSS = """
@page { size: A4; margin: 12mm 11mm; }
* { box-sizing: border-box; }
html { font-family: %(fonts)s; color: #222; font-size: 10.5pt; line-height: 1.35; }
body { max-width: 190mm; margin: 0 auto; padding: 8px; }
h1 { font-size: 17pt; margin: 0 0 2px; }
h2 { font-size: 12.5pt; margin: 14px 0 6px; border-bottom: 1px solid #ccd3dc;
     padding-bottom: 2px; break-after: avoid; }
h3 { font-size: 11pt; margin: 10px 0 4px; break-after: avoid; }
p { margin: 4px 0; }
.sub { color: #555; margin-bottom: 8px; }
.status { font-weight: 600; padding: 4px 8px; border-radius: 3px; display: inline-block; }
.status.ok { background: #e5f2ea; color: #1d5e36; }
.status.warn { background: #fdf1e1; color: #7a4a06; }
.status.bad { background: #fbeaea; color: #8b1f16; }
.headline { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px; margin: 8px 0; }
.kpi { border: 1px solid #dde3ea; border-radius: 4px; padding: 5px 8px; break-inside: avoid; }
.kpi .k { font-size: 8.5pt; color: #555; }
.kpi .v { font-size: 13pt; font-weight: 600; }
.kpi .v small { font-size: 9pt; font-weight: normal; color: #555; }
ul.sentences { margin: 4px 0; padding-left: 18px; }
ul.sentences li { margin: 2px 0; }
figure.chart { margin: 8px 0; break-inside: avoid; }
figure.chart figcaption { font-weight: 600; font-size: 10pt; margin-bottom: 2px; }
figure.chart svg { max-width: 100%%; height: auto; font-family: %(fonts)s; }
.note { font-size: 8.5pt; color: #555; }
table { border-collapse: collapse; width: 100%%; font-size: 8.5pt; margin: 4px 0 8px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 2px 4px; text-align: left;
         vertical-align: top; }
th { background: #f1f4f7; font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
tr { break-inside: avoid; }
.page { break-before: page; }
.muted { color: #777; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 1px 10px;
           font-size: 8.5pt; margin: 4px 0; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; word-break: break-all; }
pre.policy { font-size: 8pt; background: #f6f8fa; padding: 6px; white-space: pre-wrap;
             font-family: %(mono)s; }
@media print { body { padding: 0; } }
"""


def page(title: str, lang: str, body: str) -> str:
    """The whole HTML file: allocator's signature, styles, the glyphs it needs embedded."""
    fonts = css_font_stack()
    css = CSS % {"fonts": fonts, "mono": mono_font_stack()}
    face = web_font_css(title + body)
    return (SIGNATURE.decode() + "\n<!DOCTYPE html>\n"
            f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; font-src data:; img-src data:\">"
            f"<title>{escape(title)}</title><style>{face}{css}</style></head>"
            f"<body>{body}</body></html>\n")


def now_text() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def h(level: int, text: str, cls: str = "") -> str:
    return f"<h{level}{f' class={cls!r}' if cls else ''}>{escape(text)}</h{level}>"


def p(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls!r}' if cls else ''}>{escape(text)}</p>"


def sentences(items: Sequence[str], key: str = "") -> str:
    if not items:
        return ""
    attr = f' data-section="{escape(key)}"' if key else ""
    return f'<ul class="sentences"{attr}>' + "".join(
        f"<li>{escape(s)}</li>" for s in items) + "</ul>"


def kpi(key: str, label: str, value: str, sub: str = "", raw: Any = None) -> str:
    """One headline figure; data-key and data-value let a test compare it with summary.json."""
    data = f' data-key="{escape(key)}"' + (
        f' data-value="{escape(str(raw))}"' if raw is not None else "")
    return (f'<div class="kpi"><div class="k">{escape(label)}</div><div class="v"{data}>'
            f"{escape(value)}" + (f" <small>{escape(sub)}</small>" if sub else "")
            + "</div></div>")


#: column kinds: how a cell is written
Kind = str  # text, money, pct, num, int


def cell(v: Any, kind: Kind, currency: str = "") -> str:
    if blank(v):
        return ""
    if kind == "money":
        return money(v)
    if kind == "pct":
        return pct(v)
    if kind == "int":
        try:
            return f"{int(round(float(v))):,}"
        except (TypeError, ValueError):
            return str(v)
    if kind == "num":
        try:
            return number(v)
        except (TypeError, ValueError):
            return str(v)
    return str(v)


def table(frame: pd.DataFrame, columns: Sequence[tuple[str, str, Kind]],
          max_rows: int | None = None, more: Callable[[int], str] | None = None,
          key: str = "") -> str:
    """An HTML table of the given columns (column, heading, kind); a column the frame does not
    have is left out. Numbers right-aligned; at most max_rows rows, then a note."""
    cols = [(c, head, kind) for c, head, kind in columns if c in frame.columns]
    if not cols:
        return ""
    rows = frame if max_rows is None else frame.head(max_rows)
    num = ("money", "pct", "num", "int")
    out = [f'<table{f" data-table={chr(34)}{escape(key)}{chr(34)}" if key else ""}><thead><tr>'
           + "".join(f'<th class="{"n" if kind in num else ""}">{escape(head)}</th>'
                     for _c, head, kind in cols) + "</tr></thead><tbody>"]
    for r in rows[[c for c, _h, _k in cols]].itertuples(index=False):
        out.append("<tr>" + "".join(
            f'<td class="{"n" if kind in num else ""}">{escape(cell(v, kind))}</td>'
            for v, (_c, _h, kind) in zip(r, cols, strict=True)) + "</tr>")
    out.append("</tbody></table>")
    if max_rows is not None and len(frame) > max_rows and more is not None:
        out.append(p(more(len(frame) - max_rows), "note"))
    return "".join(out)


def generic_table(frame: pd.DataFrame, w: Words, file: str, max_rows: int = 40) -> str:
    """Any table as it is (another feature's CSV): numbers formatted, text as written."""
    cols = []
    for c in frame.columns:
        s = frame[c]
        kind = "text"
        if pd.api.types.is_numeric_dtype(s.dtype):
            name = str(c)
            kind = ("money" if any(k in name for k in ("cost", "amount", "value", "budget",
                                                        "price", "spend"))
                    else "pct" if any(k in name for k in ("share", "ratio", "utilization"))
                    else "num")
        cols.append((str(c), str(c), kind))
    return table(frame, cols, max_rows, lambda n: w.fmt("more_rows", n=n, file=file))


def facts(items: Sequence[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items if v != "") + "</dl>"
