"""The words of allocator's outputs in English and Chinese (report, workbook, terminal).

`words(lang)` gives a Words object: `w.key` is the text of that key in the language, with
English where a Chinese text is missing; `w.fmt(key, **values)` fills its {placeholders}.
A new output adds its keys to TEXTS, both languages side by side.
"""

from __future__ import annotations

import math
from typing import Any

LANGS = ("en", "zh")

#: key -> (English, Chinese)
TEXTS: dict[str, tuple[str, str]] = {
    # titles and headings
    "plan_report": ("Allocation plan", "技术服务机构分配方案"),
    "no_plan_report": ("No plan: what to change", "无可行方案：需要调整什么"),
    "sweep_report": ("Budget frontier", "预算—覆盖前沿"),
    "compare_report": ("Policy scenarios side by side", "政策情景对比"),
    "headline": ("Headline", "要点"),

    "served_weight": ("Served risk-weighted demand", "已服务的风险加权需求"),
    "served_share": ("served share", "覆盖率"),
    "mandatory_served": ("Mandatory (major-risk) demands served", "强制（重大风险）需求已服务"),
    "spend": ("Spend", "支出"),
    "spend_of_budget": ("Spend against budget", "支出 / 预算"),
    "budget": ("Budget", "预算"),
    "agencies_used": ("Agencies used", "使用的机构"),
    "largest_share": ("Largest agency share of a district", "单一机构在区内的最大份额"),
    "of": ("of", "/"),
    "charts": ("Charts", "图表"),
    "limits": ("What limits this plan", "制约本方案的规则"),
    "no_limits": ("No rule is at its limit: the plan serves every demand it can.",
                  "没有规则处于极限：方案已服务所有可服务的需求。"),
    "left_out": ("What is left out and why", "未服务的需求及原因"),
    "nothing_left_out": ("Every demand is served.", "所有需求均已服务。"),
    "idle": ("Agencies with no work, and why", "未分配任务的机构及原因"),
    "no_idle": ("Every agency of the pool has work.", "入库机构均有任务。"),
    "spend_split": ("What the spend buys", "支出用于什么"),
    "tables": ("Tables", "明细表"),
    "districts": ("Districts", "各区"),
    "agencies": ("Agencies", "机构"),
    "facts": ("The run", "运行信息"),
    "policy": ("Policy in force", "执行的政策"),
    "other_files": ("Other files of this folder", "本文件夹中的其他文件"),
    "why_no_plan": ("Why no plan exists, and what to change", "无方案的原因及调整建议"),
    "scenarios": ("Scenarios", "情景"),
    "price_of_rules": ("Price of each rule", "每条规则的代价"),
    "frontier_points": ("Budget points", "预算点"),
    # chart titles
    "chart_district_coverage": ("Served share of risk-weighted demand by district (%)",
                                "各区风险加权需求覆盖率（%）"),
    "chart_district_spend": ("Spend by district ({cur}); | = district cap",
                             "各区支出（{cur}）；| 为区预算上限"),
    "chart_agency_load": ("Each agency's lot against its capacity (person-days)",
                          "各机构工作量与产能（人日）"),
    "chart_risk": ("Served share by risk level (%)", "按风险等级的覆盖率（%）"),
    "chart_service": ("Spend by service ({cur})", "按服务项目的支出（{cur}）"),
    "chart_frontier": ("Served share of risk-weighted demand against budget ({cur})",
                       "风险加权需求覆盖率与预算（{cur}）"),
    "chart_marginal": ("Served weight gained per 10,000 {cur} more",
                       "每增加 10,000 {cur} 多服务的权重"),
    "chart_scen_share": ("Served share of risk-weighted demand (%)", "风险加权需求覆盖率（%）"),
    "chart_scen_spend": ("Spend ({cur}); | = budget", "支出（{cur}）；| 为预算"),
    "chart_rule_price": ("Served weight lost to each rule (gained without it)",
                         "每条规则损失的服务权重（取消该规则可多服务的权重）"),
    "capacity": ("capacity", "产能"),
    "load": ("lot", "工作量"),
    "no_plan": ("no plan", "无方案"),
    "least_mandatory": ("least budget serving every mandatory demand",
                        "服务全部强制需求的最低预算"),
    "first_mandatory": ("first swept budget serving every mandatory demand",
                        "扫描中首个服务全部强制需求的预算"),
    "serves_all": ("least budget serving all it can (the most weight)",
                   "服务全部可服务需求的最低预算"),
    "not_proven": ("not proven optimal (time limit)", "未证明最优（时间限制）"),
    # statuses in plain words
    "status_optimal": ("Optimal: the best plan under the rules, proven.",
                       "最优：在规则下已证明的最佳方案。"),
    "status_feasible": ("A plan, not proven the best within the time limit (gap {gap}).",
                        "可行方案，但在时限内未证明最优（差距 {gap}）。"),
    "status_infeasible": ("No plan: the rules cannot all hold together.",
                          "无方案：所有规则无法同时满足。"),
    "status_no_solution": ("No plan was found in the time allowed.", "在允许的时间内未找到方案。"),
    "status_error": ("The solver failed.", "求解器出错。"),
    # sentences about limits
    "lim_budget": ("The budget is used up: {used} of {limit} spent.",
                   "预算已用尽：已支出 {used}，预算 {limit}。"),
    "lim_district_budget_cap": ("District {subject} is at its budget cap: {used} of {limit}.",
                                "{subject} 已达区预算上限：{used} / {limit}。"),
    "lim_capacity": ("Agency {subject} is at capacity: {used} of {limit} person-days.",
                     "机构 {subject} 已满负荷：{used} / {limit} 人日。"),
    "lim_capacity_all": ("Agencies' capacity leaves demands out.",
                         "机构产能不足导致部分需求未服务。"),
    "lim_max_share_in_district": (
        "Agency {agency} holds {used} of district {district}'s spend, the cap of {limit}.",
        "机构 {agency} 占 {district} 支出的 {used}，已达上限 {limit}。"),
    "lim_max_share_in_city": ("Agency {subject} holds {used} of the city's spend, the cap of "
                              "{limit}.", "机构 {subject} 占全市支出的 {used}，已达上限 {limit}。"),
    "lim_min_agencies_per_district": (
        "District {subject} has {used} active agencies, the minimum of {limit}.",
        "{subject} 有 {used} 家在岗机构，正好是最低要求 {limit} 家。"),
    "lim_max_districts_per_agency": ("Agency {subject} works in {used} districts, the most "
                                     "allowed ({limit}).",
                                     "机构 {subject} 在 {used} 个区工作，已达上限 {limit}。"),
    "lim_min_district_ratio": ("District {subject} serves {used} of its weight, the minimum "
                               "of {limit}.", "{subject} 覆盖率 {used}，正好是最低要求 {limit}。"),
    "lim_left_out": (" {n} demand(s) are left out for it.", " 因此有 {n} 项需求未服务。"),
    # spend split
    "split_text": ("The cheapest plan serving the same weight costs {base}; the chosen plan costs "
                   "{cost}. So {base} buys the coverage and {extra} ({share} of the spend) buys "
                   "quality: better agencies where the risk is.",
                   "服务相同权重的最低成本方案需 {base}；所选方案花费 {cost}。其中 {base} "
                   "用于覆盖，{extra}（占支出 {share}）用于质量：把更好的机构派到风险更高的地方。"),
    "split_none": ("Not computed: run `allocator solve --report` to compare with the cheapest "
                   "plan serving the same weight.",
                   "未计算：运行 `allocator solve --report` 可与服务相同权重的最低成本方案比较。"),
    "split_unknown": ("The cheapest plan serving the same weight was not found in the time "
                      "allowed ({how}).",
                                "在允许的时间内未找到服务相同权重的最低成本方案（{how}）。"),
    # idle agencies
    "idle_no_offer": ("no bid or quote meets a demand", "没有与需求匹配的报价"),
    "idle_not_eligible": ("not eligible: {detail}", "不符合资格：{detail}"),
    "idle_lower_quality": ("eligible for {n} demand(s); {k} went to agencies of higher quality "
                           "({detail})",
                             "可服务 {n} 项需求；其中 {k} 项分给了质量更高的机构（{detail}）"),
    "idle_dearer": ("eligible for {n} demand(s); {k} went to cheaper offers of no lower quality "
                    "({detail})",
                      "可服务 {n} 项需求；其中 {k} 项分给了质量不低且更便宜的报价（{detail}）"),
    "idle_capacity": ("its capacity is below what its offers need", "其产能低于所报服务需要的人日"),
    "idle_rules": ("eligible for {n} demand(s); {k} went to others for the share and district "
                   "rules", "可服务 {n} 项需求；其中 {k} 项因份额或区域规则分给了其他机构"),
    "idle_unserved": ("eligible for {n} demand(s); they stay unserved ({detail})",
                      "可服务 {n} 项需求；这些需求未被服务（{detail}）"),
    "idle_not_known": ("instance not found: eligibility not recomputed{detail}",
                       "未找到实例数据，未重新计算资格{detail}"),
    # unserved reasons
    "reason_no_eligible_agency": ("no eligible agency", "没有合格机构"),
    "reason_budget": ("the budget is spent", "预算已用完"),
    "reason_district_budget_cap": ("district cap reached", "区预算上限已满"),
    "reason_capacity": ("eligible agencies at capacity", "合格机构产能已满"),
    "reason_district_share": ("district share cap", "区内份额上限"),
    "reason_city_share": ("city share cap", "全市份额上限"),
    "reason_min_agencies": ("too few agencies to open the district", "机构不足，无法开启该区"),
    "reason_districts_per_agency": ("agencies at their number of districts",
                                    "机构服务区数量已达上限"),
    "reason_gap": ("within the MIP gap", "在求解容差内"),
    "reason_funding": ("the funding sources that may pay for it are spent",
                       "可支付的资金来源已用完"),
    "reason_no_funding_source": ("no funding source may pay for it", "没有可支付的资金来源"),
    "reason_zero_weight": ("zero weight", "权重为零"),
    # column headings
    "col_district": ("District", "区"),
    "col_agency": ("Agency", "机构"),
    "col_service": ("Service", "服务项目"),
    "col_enterprise": ("Enterprise", "企业"),
    "col_risk": ("Risk level", "风险等级"),
    "col_reason": ("Reason", "原因"),
    "col_demands": ("Demands", "需求数"),
    "col_weight": ("Weight", "权重"),
    "col_cost": ("Spend", "支出"),
    "col_cap": ("Cap", "上限"),
    "col_coverage": ("Served share", "覆盖率"),
    "col_agencies": ("Agencies", "机构数"),
    "col_top_share": ("Top share", "最大份额"),
    "col_load": ("Person-days", "人日"),
    "col_capacity": ("Capacity", "产能"),
    "col_utilization": ("Utilisation", "利用率"),
    "col_value": ("Contract value", "合同金额"),
    "col_quality": ("Quality", "质量分"),
    "col_status": ("Status", "状态"),
    "col_budget": ("Budget", "预算"),
    "col_scenario": ("Scenario", "情景"),
    "col_served": ("Served weight", "服务权重"),
    "col_marginal": ("Per 10,000 more", "每增加一万"),
    "col_price": ("Price (weight)", "代价（权重）"),
    "col_note": ("Note", "说明"),
    "col_rule": ("Rule", "规则"),
    "col_subject": ("About", "对象"),
    "col_required": ("Required", "需要"),
    "col_available": ("Available", "现有"),
    "col_change": ("Change", "修改"),
    "col_to": ("To", "改为"),
    "col_message": ("Why", "原因"),
    "col_count": ("Count", "数量"),
    "col_left_out": ("Left out", "未服务"),
    "col_eligible": ("Eligible demands", "可服务需求"),
    "col_name": ("Name", "名称"),
    "col_seconds": ("Seconds", "秒"),
    "col_gap": ("Gap", "差距"),
    "col_mandatory": ("Mandatory served", "强制需求已服务"),
    "col_persondays": ("Person-days", "人日"),
    "col_amount": ("Amount", "金额"),
    "col_total": ("Total", "合计"),
    "total": ("Total", "合计"),
    # facts
    "f_instance": ("Instance", "实例"),
    "f_written": ("Written", "生成时间"),
    "f_solver": ("Solver", "求解器"),
    "f_gap": ("Gap", "差距"),
    "f_seconds": ("Seconds", "用时（秒）"),
    "f_version": ("allocator version", "allocator 版本"),
    "f_sha": ("Instance files (SHA-256)", "实例文件（SHA-256）"),
    "risk_1": ("1 low", "1 低"),
    "risk_2": ("2 general", "2 一般"),
    "risk_3": ("3 high", "3 较大"),
    "risk_4": ("4 major", "4 重大"),
    "more_rows": ("... and {n} more rows (see {file})", "……另有 {n} 行（见 {file}）"),
    "served_of": ("{a} of {b}", "{a} / {b}"),
    "sweep_lead": ("{n} budgets from {lo} to {hi}; {k} with a plan.",
                   "共 {n} 个预算点，从 {lo} 到 {hi}；其中 {k} 个有方案。"),
    "compare_lead": ("{n} scenarios; {k} with a plan.", "共 {n} 个情景；其中 {k} 个有方案。"),
    "mark_least": ("Least budget serving every mandatory demand: {v}.",
                   "服务全部强制需求的最低预算：{v}。"),
    "mark_first": ("First swept budget serving every mandatory demand: {v} (the least budget "
                   "was not proven).", "扫描中首个服务全部强制需求的预算：{v}（最低预算未证明）。"),
    "mark_all": ("Least budget that serves the most weight the rules allow ({share}): {v}.",
                 "达到规则允许的最大覆盖（{share}）的最低预算：{v}。"),
    "no_mark": ("No swept budget serves every mandatory demand.",
                "扫描的预算均无法服务全部强制需求。"),
    "terminal_status": ("status", "状态"),
    "terminal_served": ("served weight", "已服务权重"),
    "terminal_demands_served": ("demands served", "已服务需求"),
    "terminal_mandatory": ("mandatory served", "强制需求已服务"),
    "terminal_cost": ("cost", "支出"),
    "terminal_budget": ("budget", "预算"),
    "terminal_gov_cost": ("government cost", "政府支出"),
    "terminal_copay": ("contract value {value}, of which enterprises pay {paid} (co-payment)",
                       "合同总额 {value}，其中企业自付 {paid}"),
    "terminal_agencies": ("agencies used", "使用机构"),
    "terminal_share": ("largest agency share of a district", "单一机构区内最大份额"),
    "terminal_left_out": ("left out", "未服务"),
    "terminal_why": ("why no plan exists:", "无方案的原因："),
    "terminal_no_plan_time": ("no plan was found within the time limit", "在时限内未找到方案"),
    "change_to": ("To make it hold: {change}: {to}.", "调整建议：将 {change} 改为 {to}。"),
    # the planner's year: changes.csv in a plan's report, and a diff folder's report
    "changes_lead": ("{n} demands had an incumbent last year: {counts}. Served weight kept "
                     "with its incumbent (stability): {stability}.",
                     "{n} 项需求去年有在位机构：{counts}。由原机构继续服务的权重（稳定性）："
                     "{stability}。"),
    "change_kept": ("kept", "保持"), "change_moved": ("moved", "更换"),
    "change_dropped": ("dropped", "未再服务"), "change_new": ("new", "新增"),
    "change_rotated": ("rotated", "轮换"),
    "change_incumbent_ineligible": ("incumbent no longer eligible", "原机构不再符合条件"),
    "changes_not_kept": ("Demands not kept with their incumbent", "未由原机构继续服务的需求"),
    "col_incumbent": ("Last year's agency", "去年机构"),
    "col_change_kind": ("Change", "变化"),
    "diff_report": ("Two plans side by side", "两个方案对比"),
    "diff_lead": ("A: {a} ({sa}); B: {b} ({sb}).", "A：{a}（{sa}）；B：{b}（{sb}）。"),
    "diff_totals": ("Totals", "总体"),
    "diff_demands": ("Demands: {same} same agency, {moved} moved, {added} served only in B, "
                     "{dropped} served only in A.",
                     "需求：{same} 项机构不变，{moved} 项更换机构，{added} 项仅 B 服务，"
                     "{dropped} 项仅 A 服务。"),
    "diff_agencies": ("Agencies: lot value and demands", "机构：合同金额与需求数"),
    "diff_districts": ("Districts: spend and coverage", "各区：支出与覆盖率"),
    "diff_changed_demands": ("Demands that changed", "有变化的需求"),
    "col_level": ("Figure", "指标"),
    "col_a": ("A", "A"), "col_b": ("B", "B"), "col_change_b_a": ("B - A", "B - A"),
}

RULE_NAMES: dict[str, tuple[str, str]] = {
    "budget": ("Budget", "总预算"),
    "district_budget_cap": ("District budget cap", "区预算上限"),
    "capacity": ("Agency capacity", "机构产能"),
    "max_share_in_district": ("Share of district spend", "区内支出份额"),
    "max_share_in_city": ("Share of city spend", "全市支出份额"),
    "min_agencies_per_district": ("Agencies per district", "每区最少机构数"),
    "max_districts_per_agency": ("Districts per agency", "每家机构最多服务区数"),
    "min_district_ratio": ("District minimum coverage", "区最低覆盖率"),
    "mandatory": ("Mandatory demand", "强制需求"),
    "mandatory_no_eligible_agency": ("Mandatory demand without an eligible agency",
                                     "强制需求无合格机构"),
    "undetermined": ("Undetermined", "未确定"),
    "unexplained": ("Unexplained", "无法解释"),
    "quality.min_score": ("Quality threshold", "质量门槛"),
    "quality.min_score_by_risk": ("Quality threshold by risk", "按风险的质量门槛"),
    "price_band": ("Price band", "价格区间"),
}


class Words:
    """The texts of one language (attribute access; English where Chinese is missing)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else "en"
        self._k = LANGS.index(self.lang)

    def __getattr__(self, key: str) -> str:
        try:
            pair = TEXTS[key]
        except KeyError:
            raise AttributeError(key) from None
        return pair[self._k] or pair[0]

    def fmt(self, key: str, **values: Any) -> str:
        return getattr(self, key).format(**values)

    def rule(self, rule: str) -> str:
        pair = RULE_NAMES.get(rule)
        return (pair[self._k] or pair[0]) if pair else rule

    def reason(self, code: str) -> str:
        pair = TEXTS.get(f"reason_{code}")
        return (pair[self._k] or pair[0]) if pair else code

    def status(self, status: str, gap: float | None = None) -> str:
        key = f"status_{status}"
        if key not in TEXTS:
            return status
        return self.fmt(key, gap=pct(gap, 4) if gap is not None else "?")


def words(lang: str | None) -> Words:
    return Words(lang or "en")


# ------------------------------------------------------------------------------------------
# numbers as the outputs show them: money to the cent, ratios to 4 decimals (2 as a percent)
# ------------------------------------------------------------------------------------------

def blank(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x == ""


def money(x: Any, currency: str = "") -> str:
    """1,234,567.80 CNY (2 decimals, thousands separators)."""
    if blank(x):
        return ""
    return f"{float(x):,.2f}" + (f" {currency}" if currency else "")


def pct(x: Any, decimals: int = 2) -> str:
    """A ratio as a percent: 0.77626 -> 77.63% (the ratio to 4 decimals)."""
    if blank(x):
        return ""
    return f"{100 * float(x):.{decimals}f}%"


def number(x: Any, decimals: int = 2) -> str:
    """A plain number with thousands separators, decimals only when it has them."""
    if blank(x):
        return ""
    v = float(x)
    if abs(v - round(v)) < 10 ** -(decimals + 1):
        return f"{round(v):,}"
    return f"{v:,.{decimals}f}"
