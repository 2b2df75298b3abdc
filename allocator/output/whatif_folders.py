"""The folders of what-if runs: a sweep (frontier.csv, frontier.png, frontier_summary.json and
each point's results) and a comparison (comparison.csv, comparison.png and each scenario's
results), each written atomically by core.folders."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from allocator.core.folders import staged
from allocator.core.tables import write_csv
from allocator.output.report import REPORT_FILE, write_report
from allocator.output.results_folder import summary_json, write_tables
from allocator.pipeline.result import DECIMALS
from allocator.whatif.compare import ComparisonResult
from allocator.whatif.sweep import SweepResult, budget_label


def frontier_table(frontier: pd.DataFrame) -> pd.DataFrame:
    """frontier.csv as written: money in cents, counts as integers, empty cells without a plan."""
    out = frontier.copy()
    out["cost"] = out["cost"].round(2)
    for col in ("mandatory_served", "mandatory_total", "agencies_used"):
        out[col] = out[col].astype("Int64")
    return out


def write_sweep(sweep: SweepResult, out: Path, force: bool = False,
                protect: Iterable[Path] = (), report: bool = False,
                lang: str | None = None) -> Path:
    """The sweep folder, atomically: frontier files and budget_<amount>/ per point, and
    with report, report.html."""
    with staged(out, "sweep", force, protect) as s:
        fill_sweep(sweep, s.path)
        if report:
            write_report(s.path, s.path / REPORT_FILE, lang)
    return s.target


def fill_sweep(sweep: SweepResult, folder: Path) -> None:
    """The sweep's files into an existing (staging) folder."""
    from allocator.output import plots  # matplotlib only when a chart is drawn

    summary = sweep.summary["least_budget_all_mandatory"]
    for budget, result in sweep.points.items():
        point = folder / budget_label(budget)
        point.mkdir()
        write_tables(result, point)
    write_csv(frontier_table(sweep.frontier), folder / "frontier.csv", decimals=DECIMALS,
              float_format="%.10g")
    (folder / "frontier_summary.json").write_text(summary_json(sweep.summary), encoding="utf-8")
    axis = sweep.summary.get("axis") or {}
    full = sweep.summary.get("budget_serving_all") or {}
    pol = sweep.instance.policy
    plots.plot_frontier(sweep.frontier, folder / "frontier.png",
                        least_budget=summary["marked"], least_exact=summary["exact"],
                        swept="budget" if axis.get("kind", "budget") == "budget"
                        else str(axis.get("meaning")),
                        serves_all=full.get("value"), instance=sweep.instance.name,
                        currency=pol.currency)


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """comparison.csv as written (money in cents)."""
    out = table.copy()
    out["cost"] = pd.to_numeric(out["cost"], errors="coerce").round(2)
    return out


def write_comparison(cmp: ComparisonResult, out: Path, force: bool = False,
                     protect: Iterable[Path] = (), report: bool = False,
                     lang: str | None = None) -> Path:
    """The comparison folder, atomically: comparison.csv, comparison.png, a folder per
    scenario, and with report, report.html."""
    with staged(out, "compare", force, protect) as s:
        fill_comparison(cmp, s.path)
        if report:
            write_report(s.path, s.path / REPORT_FILE, lang)
    return s.target


def fill_comparison(cmp: ComparisonResult, folder: Path) -> None:
    """The comparison's files into an existing (staging) folder."""
    from allocator.output import plots  # matplotlib only when a chart is drawn

    for name, result in cmp.results.items():
        scenario = folder / name
        scenario.mkdir()
        write_tables(result, scenario)
    write_csv(comparison_table(cmp.table), folder / "comparison.csv", decimals=DECIMALS,
              float_format="%.10g")
    plots.plot_comparison(cmp.table, folder / "comparison.png", instance=cmp.instance.name,
                          currency=cmp.instance.policy.currency)
