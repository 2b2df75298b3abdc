"""Charts of what-if runs (frontier of a budget sweep, scenario comparison) as PNG files.

matplotlib with the Agg backend (no display needed); imported only by sweep and compare.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

HAS_PLAN = ("optimal", "feasible")


def _money_axis(ax, axis: str = "x") -> None:
    """Plain money ticks: 12.5M, 800k."""
    def fmt(v: float, _pos: int) -> str:
        a = abs(v)
        if a >= 1e6:
            return f"{v / 1e6:g}M"
        if a >= 1e3:
            return f"{v / 1e3:g}k"
        return f"{v:g}"
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(FuncFormatter(fmt))


def plot_frontier(frontier: pd.DataFrame, path: Path, least_budget: float | None = None,
                  least_exact: bool = True, swept: str = "budget") -> None:
    """Served share and spend against budget; the least budget serving every mandatory
    demand marked; points without a plan shown as crosses on the budget axis. `swept` names
    what the budgets are (e.g. a funding source's amount)."""
    df = frontier.sort_values("budget")
    ok = df["status"].isin(HAS_PLAN) & df["coverage"].notna()
    bad = df[~ok]
    good = df[ok]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    if len(good):
        top.plot(good["budget"], good["coverage_ratio"], "-o", color="tab:blue", ms=4,
                 label="served share of weight")
        bottom.plot(good["budget"], good["cost"], "-o", color="tab:green", ms=4,
                    label="spend of the plan")
        feasible_only = good[good["status"] == "feasible"]
        if len(feasible_only):
            top.plot(feasible_only["budget"], feasible_only["coverage_ratio"], "o", mfc="none",
                     mec="tab:orange", ms=9, label="not proven optimal (time limit)")
    if len(bad):
        infeasible = bad[bad["status"] == "infeasible"]
        other = bad[bad["status"] != "infeasible"]
        if len(infeasible):
            top.plot(infeasible["budget"], np.zeros(len(infeasible)), "x", color="tab:red",
                     ms=9, mew=2, label="infeasible (no plan)")
        if len(other):
            top.plot(other["budget"], np.zeros(len(other)), "x", color="tab:gray", ms=9, mew=2,
                     label="no plan found in time / error")
    lo, hi = float(df["budget"].min()), float(df["budget"].max())
    if swept == "budget" or swept.startswith("the funding sources' total"):
        bottom.plot([lo, hi], [lo, hi], "--", color="gray", lw=1,
                    label="budget (spend = budget)")
    if least_budget is not None and np.isfinite(least_budget):
        text = (f"least {'budget' if swept == 'budget' else 'value'} serving every mandatory "
                f"demand: {least_budget:,.0f}"
                if least_exact else
                f"first swept budget serving every mandatory demand: {least_budget:,.0f} "
                "(least budget not computed)")
        for ax in (top, bottom):
            ax.axvline(least_budget, color="tab:red", ls=":", lw=1.5,
                       label=text if ax is top else None)
    top.set_ylabel("served share of total weight")
    top.yaxis.set_major_formatter(PercentFormatter(1.0))
    top.set_ylim(-0.04, 1.04)
    top.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize=8)
    top.set_title("Budget frontier: what each budget buys")
    bottom.set_ylabel("spend" if swept == "budget" else "government spend")
    bottom.set_xlabel(swept)
    _money_axis(bottom, "x")
    _money_axis(bottom, "y")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_comparison(table: pd.DataFrame, path: Path) -> None:
    """Scenarios side by side: served share (bars, 'no plan' where infeasible), spend, and the
    coverage price of each rule when --price-of-rules was asked."""
    scen = table[~table["scenario"].astype(str).str.startswith("without:")]
    rules = table[table["scenario"].astype(str).str.startswith("without:")]
    n_panels = 3 if len(rules) else 2
    height = max(3.0, 0.45 * len(scen) + 1.5)
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, height + 0.5),
                             squeeze=False)
    axes = axes[0]
    names = scen["scenario"].astype(str).tolist()
    y = np.arange(len(names))
    ok = scen["status"].isin(HAS_PLAN).to_numpy()
    share = pd.to_numeric(scen["coverage_ratio"], errors="coerce").fillna(0.0).to_numpy()
    cost = pd.to_numeric(scen["cost"], errors="coerce").fillna(0.0).to_numpy()
    colors = np.where(ok, "tab:blue", "tab:red")
    axes[0].barh(y, np.where(ok, share, 0.0), color=colors)
    for i, (good, v, status) in enumerate(zip(ok, share, scen["status"], strict=True)):
        axes[0].text(v + 0.01 if good else 0.01, i, f"{v:.1%}" if good else f"no plan "
                     f"({status})", va="center", fontsize=8,
                     color="black" if good else "tab:red")
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    axes[0].set_xlim(0, 1.15)
    axes[0].xaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].set_title("served share of total weight")
    axes[0].grid(axis="x", alpha=0.3)
    axes[1].barh(y, np.where(ok, cost, 0.0), color=np.where(ok, "tab:green", "tab:red"))
    if "budget" in scen.columns:
        budget = pd.to_numeric(scen["budget"], errors="coerce").to_numpy()
        axes[1].plot(budget, y, "|", color="black", ms=14, mew=2, label="budget")
        axes[1].legend(fontsize=8, loc="lower right")
    axes[1].set_yticks(y, [""] * len(y))
    axes[1].invert_yaxis()
    axes[1].set_title("spend")
    _money_axis(axes[1], "x")
    axes[1].grid(axis="x", alpha=0.3)
    if len(rules):
        ax = axes[2]
        price = pd.to_numeric(rules["price_of_rule"], errors="coerce")
        ry = np.arange(len(rules))
        ax.barh(ry, price.fillna(0.0).to_numpy(), color="tab:purple")
        for i, (v, note) in enumerate(zip(price, rules.get("note", [""] * len(rules)),
                                          strict=True)):
            ax.text(0 if pd.isna(v) else v, i, f" {v:,.1f}" if pd.notna(v) else f" {note}",
                    va="center", fontsize=8)
        ax.set_yticks(ry, [s.removeprefix("without:") for s in rules["scenario"].astype(str)])
        ax.invert_yaxis()
        ax.set_title("price of each rule\n(served weight gained without it)")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
