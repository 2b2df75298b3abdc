"""Every kind of report opened as a planner opens it: in a real browser (headless Chromium),
offline. No console error, no request leaving the file, every chart drawn, the headline
equal to summary.json, Chinese drawn with a CJK font (not the empty boxes of a Latin font),
and an A4 PDF when printed. Skipped, saying how to get it, where Chromium is not installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import HOW_TO_GET, chromium, open_report
from chinese_city import write_chinese_city
from click.testing import CliRunner

from allocator.cli import main
from allocator.output.cjk import FAMILY, SYSTEM_CJK

BROWSER = chromium()
pytestmark = pytest.mark.skipif(BROWSER is None, reason=HOW_TO_GET)
CJK = re.compile(r"[\u3400-\u9fff]")


def cli(*args: object) -> int:
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output
    return r.exit_code


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A plan, a run without a plan, a sweep and a comparison of the Chinese city, each
    written with --report."""
    root = tmp_path_factory.mktemp("browser")
    inst = write_chinese_city(root / "城市", budget=45_000)
    poor = write_chinese_city(root / "穷", budget=5_000)
    sc = root / "情景.yaml"
    sc.write_text("scenarios:\n  基准方案: {}\n  增加预算: {budget: 9e4}\n  预算不足: "
                  "{budget: 1000}\n", encoding="utf-8")
    assert cli("solve", inst, "--out", root / "plan", "--report", "--quiet") == 0
    assert cli("solve", poor, "--out", root / "noplan", "--report", "--quiet") == 1
    assert cli("sweep", inst, "--budgets", "1000,20000:90000:3", "--out", root / "sweep",
               "--report", "--quiet", "--time-limit", "20") == 0
    assert cli("compare", inst, "--scenarios", sc, "--out", root / "compare", "--report",
               "--quiet", "--price-of-rules", "--time-limit", "20") == 0
    return {k: root / k / "report.html" for k in ("plan", "noplan", "sweep", "compare")}


def cjk_font_used(fonts: list[dict], text: str) -> bool:
    """The glyphs of text's CJK characters were drawn by a CJK font: ours (embedded) or one
    the machine has, never a Latin font's .notdef boxes."""
    n = len(CJK.findall(text))
    cjk = [f for f in fonts if f["familyName"] == FAMILY or f["familyName"] in SYSTEM_CJK
           or "CJK" in f["familyName"]]
    return sum(f["glyphCount"] for f in cjk) >= n > 0


@pytest.mark.parametrize("kind", ["plan", "noplan", "sweep", "compare"])
def test_report_opens_offline_in_chromium(reports, kind):
    path = reports[kind]
    seen = open_report(BROWSER, path)
    assert seen["errors"] == [], seen["errors"]
    own = path.resolve().as_uri()
    leaving = [u for u in seen["requests"] if u != own and not u.startswith("data:")]
    assert leaving == [], leaving
    facts = seen["facts"]
    charts = facts["charts"]
    if kind != "noplan":
        assert charts, "no chart in the report"
    for c in charts:
        assert c["marks"] > 0 and c["drawn"] == c["marks"], c
        assert 0 < c["width"] <= 800 and c["height"] > 0, c  # fits the A4 text width
    text_probe = seen["fonts"][0]
    assert text_probe is not None, "no Chinese text found to probe"
    assert cjk_font_used(text_probe["fonts"], text_probe["text"]), text_probe
    if charts:
        chart_probe = seen["fonts"][1]
        assert chart_probe is not None and cjk_font_used(chart_probe["fonts"],
                                                         chart_probe["text"]), chart_probe
    for probe in seen["fonts"][2:]:  # headings of tables, the facts, the policy (monospace)
        assert probe is None or cjk_font_used(probe["fonts"], probe["text"]), probe
    pdf = seen["pdf"]
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 1
    assert re.search(rb"/MediaBox \[0 0 59[45](\.\d+)? 84[12](\.\d+)?\]", pdf)  # A4
    if kind == "plan":
        s = json.loads((path.parent / "summary.json").read_text(encoding="utf-8"))
        h = facts["headline"]
        assert h["status"]["value"] == s["status"]
        assert h["coverage_ratio"]["text"] == f"{100 * s['coverage_ratio']:.2f}%"
        assert float(h["coverage"]["value"]) == s["coverage"]
        assert h["cost"]["text"] == f"{s['cost']:,.2f} 元"
        assert h["mandatory_served"]["text"] == f"{s['mandatory_served']} / " \
                                                f"{s['mandatory_total']}"
        assert h["agencies_used"]["text"].startswith(f"{s['agencies_used']} /")
        assert h["max_district_share"]["text"] == f"{100 * s['max_district_share']:.2f}%"
        assert {c["name"] for c in charts} >= {"district_coverage", "district_spend",
                                               "agency_load", "risk_coverage",
                                               "service_spend"}
    if kind == "sweep":
        assert {c["name"] for c in charts} >= {"frontier"}
    if kind == "compare":
        assert {c["name"] for c in charts} >= {"scenario_share", "scenario_spend",
                                               "rule_price"}
