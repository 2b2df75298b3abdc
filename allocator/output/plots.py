"""Charts of what-if runs (frontier of a budget sweep, scenario comparison) as PNG files.

matplotlib with the Agg backend (no display needed); imported only by sweep and compare.
Sized for an A4 page (8.27 in wide), text in the machine's CJK font or the one allocator
ships (output/cjk.py), so Chinese names draw on a machine with no CJK font.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from allocator.output.cjk import matplotlib_fonts  # noqa: E402

HAS_PLAN = ("optimal", "feasible")
A4_WIDTH = 8.27  # inches


def clip_label(text: str, width: int) -> str:
    """A label cut to about `width` columns (a CJK character counts two), with an ellipsis."""
    out, used = "", 0
    for c in text:
        used += 2 if ord(c) > 0x2E80 else 1
        if used > width:
            return out + "…"
        out += c
    return out


def _fonts() -> dict[str, Any]:
    return {"font.family": matplotlib_fonts(), "axes.unicode_minus": False}


def _money(v: float, _pos: int = 0) -> str:
    """Plain money ticks: 12.5M, 800k."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def plot_frontier(frontier: pd.DataFrame, path: Path, least_budget: float | None = None,
                  least_exact: bool = True, swept: str = "budget",
                  serves_all: float | None = None, instance: str = "",
                  currency: str = "CNY") -> None:
    """Served share against budget, with the least budget serving every mandatory demand
    and the least budget serving the most weight marked; a budget without a plan is a red
    cross on a 'no plan' band (never a 0 %); below, the served weight gained per 10,000 more.
    `swept` names what the budgets are (e.g. a funding source's amount)."""
    what = "budget" if swept == "budget" else "value"
    df = frontier.sort_values("budget").reset_index(drop=True)
    ok = (df["status"].isin(HAS_PLAN) & df["coverage"].notna()).to_numpy()
    with plt.rc_context(_fonts()):  # type: ignore[arg-type]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(A4_WIDTH, 7.2), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 1.4]})
        good = df[ok]
        if len(good):
            top.plot(good["budget"], good["coverage_ratio"], "-o", color="tab:blue", ms=4,
                     label="served share of risk-weighted demand")
            unproven = good[good["status"] != "optimal"]
            if len(unproven):
                top.plot(unproven["budget"], unproven["coverage_ratio"], "o", mfc="white",
                         mec="tab:blue", ms=7, label="plan not proven optimal (time limit)")
        bad = df[~ok]
        if len(bad):
            top.axhspan(-0.12, -0.03, color="#fbeaea", zorder=0)
            top.plot(bad["budget"], np.full(len(bad), -0.075), "x", color="tab:red", ms=9,
                     mew=2, label=f"no plan at this {what}")
        marks = []
        if least_budget is not None and np.isfinite(least_budget):
            marks.append((least_budget, "tab:red", (
                f"least {what} serving every mandatory demand" if least_exact else
                f"first swept {what} serving every mandatory demand")))
        if serves_all is not None and np.isfinite(serves_all):
            marks.append((serves_all, "tab:green", "least budget serving the most weight"))
        for v, color, text in marks:
            for ax in (top, bottom):
                ax.axvline(v, color=color, ls="--", lw=1.4,
                           label=f"{text}: {v:,.0f} {currency}" if ax is top else None)
        top.set_ylim(-0.13, 1.04)
        top.yaxis.set_major_formatter(PercentFormatter(1.0))
        top.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        top.set_ylabel("served share of risk-weighted demand (%)")
        top.grid(alpha=0.3)
        top.legend(loc="lower right", fontsize=8)
        title = "Budget frontier" if swept == "budget" else f"Frontier of {swept}"
        top.set_title(f"{title}: {instance}" if instance else title, fontsize=11)
        mv = pd.to_numeric(df.get("marginal_value"), errors="coerce")
        widths = np.diff(df["budget"].to_numpy(dtype=float))
        if len(df) > 1 and mv.notna().any():
            centers = df["budget"].to_numpy(dtype=float)[1:] - widths / 2
            bottom.bar(centers, mv.to_numpy()[1:], width=widths * 0.8, color="tab:orange")
        bottom.set_ylabel(f"weight per\n10,000 {currency}", fontsize=9)
        bottom.set_xlabel(f"{swept} ({currency})")
        bottom.xaxis.set_major_formatter(FuncFormatter(_money))
        bottom.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def plot_comparison(table: pd.DataFrame, path: Path, instance: str = "",
                    currency: str = "CNY") -> None:
    """Scenarios side by side, stacked for an A4 page: served share ('no plan' written where
    a scenario has none), spend against budget, and the served weight each rule costs."""
    scen = table[~table["scenario"].astype(str).str.startswith("without:")]
    rules = table[table["scenario"].astype(str).str.startswith("without:")]
    names = [clip_label(str(s), 30) for s in scen["scenario"]]
    n = len(names)
    panels = 3 if len(rules) else 2
    heights = [max(1.2, 0.32 * n + 0.6)] * 2 + ([max(1.2, 0.32 * len(rules) + 0.6)]
                                                if len(rules) else [])
    with plt.rc_context(_fonts()):  # type: ignore[arg-type]
        fig, axes = plt.subplots(panels, 1, figsize=(A4_WIDTH, sum(heights) + 1.3),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        axes = axes[:, 0]
        y = np.arange(n)
        ok = scen["status"].isin(HAS_PLAN).to_numpy()
        share = pd.to_numeric(scen["coverage_ratio"], errors="coerce").to_numpy()
        cost = pd.to_numeric(scen["cost"], errors="coerce").to_numpy()
        ax = axes[0]
        ax.barh(y, np.where(ok, np.nan_to_num(share), 0.0), color="tab:blue")
        for i in range(n):
            if ok[i]:
                ax.text(share[i] + 0.01, i, f"{100 * share[i]:.2f}%", va="center", fontsize=8)
            else:
                ax.text(0.01, i, f"no plan ({scen['status'].iloc[i]})", va="center",
                        fontsize=8, color="tab:red")
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.15)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title("served share of risk-weighted demand" + (f": {instance}" if instance
                                                               else ""), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax = axes[1]
        ax.barh(y, np.where(ok, np.nan_to_num(cost), 0.0), color="tab:green")
        if "budget" in scen.columns:
            budget = pd.to_numeric(scen["budget"], errors="coerce").to_numpy()
            ax.plot(budget, y, "|", color="black", ms=12, mew=2, label="budget")
            ax.legend(fontsize=8, loc="lower right")
        for i in range(n):
            if not ok[i]:
                ax.text(0, i, " no plan", va="center", fontsize=8, color="tab:red")
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"spend against budget ({currency})", fontsize=10)
        ax.xaxis.set_major_formatter(FuncFormatter(_money))
        ax.grid(axis="x", alpha=0.3)
        if len(rules):
            ax = axes[2]
            price = pd.to_numeric(rules["price_of_rule"], errors="coerce")
            ry = np.arange(len(rules))
            ax.barh(ry, price.fillna(0.0).clip(lower=0).to_numpy(), color="tab:purple")
            notes = rules["note"] if "note" in rules.columns else pd.Series([""] * len(rules))
            for i, (v, note) in enumerate(zip(price, notes, strict=True)):
                ax.text(0 if pd.isna(v) else max(v, 0), i,
                        f" {v:,.2f}" if pd.notna(v) else f" {clip_label(str(note), 60)}",
                        va="center", fontsize=8)
            ax.set_yticks(ry, [s.removeprefix("without:") for s in rules["scenario"].astype(str)],
                          fontsize=8)
            ax.invert_yaxis()
            ax.set_title("served weight lost to each rule (gained without it)", fontsize=10)
            ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
