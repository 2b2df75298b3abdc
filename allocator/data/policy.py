"""The policy in force: spec section 3 defaults, merged with policy.yaml, checked key by key.

Defaults live here and nowhere else, so `allocator validate` can print exactly what will be
applied and a typo in a key can never silently switch a rule off.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from allocator.core.errors import Problem
from allocator.data.limits import MAX_MONEY, MAX_WEIGHT, MIN_WEIGHT, weight_range_text

POLICY_FILE = "policy.yaml"

#: Spec section 3 defaults. `None` means the rule is off. budget.total has no default (it may
#: be left out only when funding.csv lists the funding sources).
DEFAULTS: dict[str, Any] = {
    "name": "",
    "budget": {"total": None},
    "coverage": {
        "weights": {1: 1, 2: 2, 3: 4, 4: 8},
        "mandatory_levels": [4],
        "min_district_ratio": 0.0,
    },
    "anti_monopoly": {
        "max_share_in_district": 0.4,
        "min_agencies_per_district": 3,
        "max_share_in_city": None,
        "max_districts_per_agency": None,
    },
    "quality": {"min_score": 60, "min_score_by_risk": {3: 70, 4: 80}},
    "price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5},
    "copay": {"share_by_risk": {}},
    "solver": {"name": "auto", "time_limit": 60, "mip_gap": 0.0001, "seed": 0, "threads": None,
               "levels": ["coverage", "stability", "quality", "cost"]},
    "report": {"language": "en", "currency": "CNY"},
    "continuity": {"keep_incumbents": True, "max_changes": None, "max_tenure_years": None},
    "evaluation": {
        "scorer_weights": {"enterprise": 0.3, "street_office": 0.3, "expert": 0.4,
                           "spot_check": 0.0},
        "carry": 0.5,
        "probation_below": 70,
        "suspend_below": 60,
        "restore_above": 80,
        "bottom_share_to_probation": 0.0,
        "blacklist_on_violation": True,
    },
}

RISK_LEVELS = (1, 2, 3, 4)
#: policy keys whose value is a map of risk levels (replaced whole when overridden)
LEVEL_MAPS = ("weights", "min_score_by_risk", "share_by_risk")
SOLVER_NAMES = ("auto", "cbc", "highs", "cpsat")
#: languages of the report, the workbook and the terminal summary
LANGUAGES = ("en", "zh")
#: the objective's levels in the spec's order; solver.levels picks the ones optimised.
#: stability (served weight kept with last year's agency) exists only with incumbents.
LEVEL_NAMES = ("coverage", "stability", "quality", "cost")
#: who scores an agency in evaluations.csv (keys of evaluation.scorer_weights)
SCORERS = ("enterprise", "street_office", "expert", "spot_check")
#: mappings whose keys are data (replaced whole by a policy file, never merged key by key);
#: scorer_weights is one, but its keys are still checked (unknown_keys walks into it)
WHOLE_MAPPINGS = (*LEVEL_MAPS, "scorer_weights")


@dataclass(frozen=True)
class Policy:
    """Typed, defaulted policy. Built only by `parse_policy`, which checks every value."""

    name: str
    budget_total: float | None  # None only with funding.csv (the sources cap the spend)
    weights: dict[int, float]
    mandatory_levels: tuple[int, ...]
    min_district_ratio: float
    max_share_in_district: float | None
    min_agencies_per_district: int
    max_share_in_city: float | None
    max_districts_per_agency: int | None
    min_score: float
    min_score_by_risk: dict[int, float]
    floor_ratio: float
    ceiling_ratio: float
    solver_name: str
    time_limit: float
    mip_gap: float
    seed: int
    threads: int | None
    levels: tuple[str, ...] = LEVEL_NAMES
    #: co-payment: the share of a demand's cost its enterprise pays, by risk level (0 if absent)
    copay_share_by_risk: dict[int, float] = field(default_factory=dict)
    language: str = "en"
    currency: str = "CNY"

    @property
    def budget_limit(self) -> float:
        """budget.total as a number: infinity when it is left out (funding.csv caps the spend)."""
        return float("inf") if self.budget_total is None else float(self.budget_total)

    @property
    def has_copay(self) -> bool:
        """Whether any enterprise pays part of its service (copay.share_by_risk > 0)."""
        return any(v > 0 for v in self.copay_share_by_risk.values())
    keep_incumbents: bool = True
    max_changes: float | None = None
    max_tenure_years: int | None = None
    scorer_weights: dict[str, float] = field(default_factory=lambda: dict(
        DEFAULTS["evaluation"]["scorer_weights"]))
    carry: float = 0.5
    probation_below: float = 70.0
    suspend_below: float = 60.0
    restore_above: float = 80.0
    bottom_share_to_probation: float = 0.0
    blacklist_on_violation: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The policy in force, in policy.yaml's shape (for summary.json and `validate`)."""
        return {
            "name": self.name,
            "budget": {"total": self.budget_total},
            "coverage": {
                "weights": dict(self.weights),
                "mandatory_levels": list(self.mandatory_levels),
                "min_district_ratio": self.min_district_ratio,
            },
            "anti_monopoly": {
                "max_share_in_district": self.max_share_in_district,
                "min_agencies_per_district": self.min_agencies_per_district,
                "max_share_in_city": self.max_share_in_city,
                "max_districts_per_agency": self.max_districts_per_agency,
            },
            "quality": {
                "min_score": self.min_score,
                "min_score_by_risk": dict(self.min_score_by_risk),
            },
            "price": {"floor_ratio": self.floor_ratio, "ceiling_ratio": self.ceiling_ratio},
            "copay": {"share_by_risk": dict(self.copay_share_by_risk)},
            "solver": {
                "name": self.solver_name,
                "time_limit": self.time_limit,
                "mip_gap": self.mip_gap,
                "seed": self.seed,
                "threads": self.threads,
                "levels": list(self.levels),
            },
            "report": {"language": self.language, "currency": self.currency},
            "continuity": {
                "keep_incumbents": self.keep_incumbents,
                "max_changes": self.max_changes,
                "max_tenure_years": self.max_tenure_years,
            },
            "evaluation": {
                "scorer_weights": dict(self.scorer_weights),
                "carry": self.carry,
                "probation_below": self.probation_below,
                "suspend_below": self.suspend_below,
                "restore_above": self.restore_above,
                "bottom_share_to_probation": self.bottom_share_to_probation,
                "blacklist_on_violation": self.blacklist_on_violation,
            },
        }


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base with override merged in, section by section (override wins)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in (
            WHOLE_MAPPINGS
        ):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def unknown_keys(raw: Any, file: str, template: dict[str, Any] = DEFAULTS) -> list[Problem]:
    """Every key of raw that the template does not know, with a did-you-mean."""
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        return problems

    def walk(node: dict[str, Any], tmpl: dict[str, Any], path: str) -> None:
        for key, value in node.items():
            full = f"{path}.{key}" if path else str(key)
            if key not in tmpl:
                close = difflib.get_close_matches(str(key), [str(k) for k in tmpl], n=1)
                hint = f"did you mean '{close[0]}'?" if close else (
                    f"known keys here: {', '.join(map(str, tmpl))}"
                )
                problems.append(
                    Problem(file, None, full, key, "unknown policy key", f"remove it; {hint}")
                )
            elif isinstance(tmpl[key], dict) and key not in LEVEL_MAPS:
                if isinstance(value, dict):
                    walk(value, tmpl[key], full)
                elif value is not None:
                    inner = ", ".join(map(str, tmpl[key]))
                    example = (f"write 'budget:' and under it '  total: {value}'"
                               if full == "budget" else
                               f"write '{key}:' and under it indented keys ({inner})")
                    problems.append(
                        Problem(file, None, full, value, "must be a section of keys, "
                                "not a single value", example)
                    )

    walk(raw, template, "")
    return problems


#: An example value per key, shown in a fix when the value has the wrong type.
EXAMPLES: dict[str, str] = {
    "budget.total": "12000000",
    "coverage.min_district_ratio": "0.2",
    "anti_monopoly.max_share_in_district": "0.4",
    "anti_monopoly.min_agencies_per_district": "3",
    "anti_monopoly.max_share_in_city": "0.2",
    "anti_monopoly.max_districts_per_agency": "5",
    "quality.min_score": "60",
    "coverage.weights": "4",
    "quality.min_score_by_risk": "70",
    "price.floor_ratio": "0.8",
    "price.ceiling_ratio": "1.5",
    "solver.time_limit": "60",
    "solver.mip_gap": "0.0001",
    "solver.seed": "0",
    "solver.threads": "4",
    "solver.levels": "[coverage, cost]",
    "copay.share_by_risk": "0.3",
    "continuity.max_changes": "0.2",
    "continuity.max_tenure_years": "3",
    "evaluation.scorer_weights": "0.3",
    "evaluation.carry": "0.5",
    "evaluation.probation_below": "70",
    "evaluation.suspend_below": "60",
    "evaluation.restore_above": "80",
    "evaluation.bottom_share_to_probation": "0.1",
}

_THOUSANDS = re.compile(r"[-+]?\d{1,3}([,' ]\d{3})+(\.\d+)?")


def type_fix(key: str, value: Any, integer: bool = False) -> str:
    """How to write a number that was given as something else (text, yes/no, a list...)."""
    example = EXAMPLES.get(key) or next(
        (v for k, v in EXAMPLES.items() if key.startswith(k + ".")), "3" if integer else "0.4")
    if isinstance(value, bool):
        return f"write a number, not true/false or yes/no, e.g. {key.split('.')[-1]}: {example}"
    if isinstance(value, str):
        text = value.strip()
        if _THOUSANDS.fullmatch(text):
            plain = re.sub(r"[,' ]", "", text)
            return f"write it without thousands separators: {plain}"
        if text.endswith("%"):
            return "write a share as a decimal number, e.g. 40% as 0.4"
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return f"remove the quotes so it reads as a number: {text}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"write a finite number, e.g. {example}"
    return f"write a plain number, e.g. {key.split('.')[-1]}: {example}"


def _range_text(lo: float | None, hi: float | None, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"<= {hi:g}"


def _num(problems: list[Problem], file: str, key: str, value: Any, *, lo: float | None = None,
         hi: float | None = None, integer: bool = False, allow_none: bool = False,
         lo_open: bool = False) -> Any:
    """Check one number; record a problem and return None if it is wrong."""
    if value is None:
        if allow_none:
            return None
        problems.append(Problem(file, None, key, value, "a value is required",
                                type_fix(key, value, integer)))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        problems.append(Problem(file, None, key, value,
                                f"must be a {'whole ' if integer else ''}number, "
                                f"not {type(value).__name__}", type_fix(key, value, integer)))
        return None
    if integer and float(value) != int(value):
        problems.append(Problem(file, None, key, value, "must be a whole number",
                                f"write a whole number, e.g. {EXAMPLES.get(key, '3')}"))
        return None
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    if bad_lo or (hi is not None and value > hi):
        rng = _range_text(lo, hi, lo_open)
        problems.append(Problem(file, None, key, value, f"out of range (must be {rng})",
                                f"use a value {rng}"))
        return None
    return int(value) if integer else float(value)


def _level_map(problems, file, key, value, *, lo, hi) -> dict[int, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(Problem(file, None, key, value, "must be a mapping risk level -> value",
                                "write e.g. {3: 70, 4: 80}"))
        return {}
    out: dict[int, float] = {}
    for level, v in value.items():
        try:
            lvl = int(level)
        except (TypeError, ValueError):
            lvl = None
        if lvl not in RISK_LEVELS or str(level).strip() != str(lvl):
            problems.append(Problem(file, None, f"{key}.{level}", level,
                                    "risk level must be 1, 2, 3 or 4", "use levels 1-4 as keys"))
            continue
        num = _num(problems, file, f"{key}.{level}", v, lo=lo, hi=hi)
        if num is not None:
            out[lvl] = num
    return out


def parse_policy(raw: Any, file: str = POLICY_FILE,
                 overrides: dict[str, Any] | None = None,
                 budget_optional: bool = False) -> tuple[Policy | None, list[Problem]]:
    """Check raw policy.yaml content (plus overrides) and build the Policy with defaults.

    `budget_optional`: budget.total may be left out (the instance has funding.csv, whose
    sources cap the spend). Returns (policy, problems); policy is None when any problem was
    found.
    """
    problems: list[Problem] = []
    empty = raw is None
    if empty:
        raw = {}
    if not isinstance(raw, dict):
        return None, [Problem(file, None, "(top)", type(raw).__name__,
                              f"{file} must be a mapping of sections, not a "
                              f"{'list' if isinstance(raw, list) else type(raw).__name__}",
                              "write 'budget:' on one line and '  total: 12000000' under it, "
                              "then the other sections the same way (no leading '-')")]
    problems += unknown_keys(raw, file)
    budget_scalar = raw.get("budget") is not None and not isinstance(raw.get("budget"), dict)
    if overrides:
        problems += unknown_keys(overrides, "overrides")
        raw = deep_merge(raw, overrides)
    merged = deep_merge(DEFAULTS, {k: v for k, v in raw.items() if k in DEFAULTS})

    def sect(name: str) -> dict[str, Any]:
        value = merged.get(name)
        return value if isinstance(value, dict) else DEFAULTS[name]

    budget, cov, am, qual, price, solver, copay, report = (
        sect(s) for s in ("budget", "coverage", "anti_monopoly", "quality", "price", "solver",
                          "copay", "report"))
    total = budget.get("total")
    if total is None and not budget_optional and not (
            budget_scalar and not isinstance(merged.get("budget"), dict)):
        problems.append(Problem(
            file, None, "budget.total", None,
            f"{file} is empty; budget.total is required" if empty
            else "budget.total is required (it has no default)",
            "add a 'budget:' line and under it '  total: <currency for the year>', "
            "e.g. total: 12000000 (or list the funding sources in funding.csv)"))
    total = (_num(problems, file, "budget.total", total, lo=0, hi=MAX_MONEY)
             if total is not None else None)

    weights_raw = cov.get("weights")
    if weights_raw is None:
        problems.append(Problem(file, None, "coverage.weights", None,
                                "weights cannot be empty: every demand needs a default weight",
                                "write e.g. weights: {1: 1, 2: 2, 3: 4, 4: 8}, or remove the key "
                                "for these defaults"))
    weights = _level_map(problems, file, "coverage.weights", weights_raw, lo=0, hi=MAX_WEIGHT)
    for lvl, w in list(weights.items()):
        if 0 < w < MIN_WEIGHT:  # data.limits: smaller weights are lost in the tolerances
            problems.append(Problem(file, None, f"coverage.weights.{lvl}", w,
                                    f"too small to plan with (must be {weight_range_text()})",
                                    "use weights such as 1, 2, 4, 8"))
            del weights[lvl]
    if isinstance(weights_raw, dict):
        missing = [lvl for lvl in RISK_LEVELS if lvl not in weights]
        if missing and not any(p.column.startswith("coverage.weights") for p in problems):
            problems.append(Problem(file, None, "coverage.weights", weights_raw,
                                    f"no weight for risk level(s) "
                                    f"{', '.join(map(str, missing))}",
                                    "give a weight for each of the levels 1, 2, 3, 4, e.g. "
                                    "{1: 1, 2: 2, 3: 4, 4: 8}"))
    mandatory = cov.get("mandatory_levels")
    levels: list[int] = []
    if mandatory is None:
        mandatory = []
    if not isinstance(mandatory, list):
        problems.append(Problem(file, None, "coverage.mandatory_levels", mandatory,
                                "must be a list of risk levels", "write e.g. [4] or []"))
    else:
        for m in mandatory:
            if isinstance(m, bool) or not isinstance(m, int) or m not in RISK_LEVELS:
                problems.append(Problem(file, None, "coverage.mandatory_levels", m,
                                        "risk level must be 1, 2, 3 or 4",
                                        "list levels among 1-4, e.g. [4]"))
            else:
                levels.append(m)
    ratio = _num(problems, file, "coverage.min_district_ratio", cov.get("min_district_ratio"),
                 lo=0, hi=1)
    share_d = _num(problems, file, "anti_monopoly.max_share_in_district",
                   am.get("max_share_in_district"), lo=0, hi=1, allow_none=True, lo_open=True)
    min_ag = _num(problems, file, "anti_monopoly.min_agencies_per_district",
                  am.get("min_agencies_per_district"), lo=0, integer=True, allow_none=True)
    share_c = _num(problems, file, "anti_monopoly.max_share_in_city", am.get("max_share_in_city"),
                   lo=0, hi=1, allow_none=True, lo_open=True)
    max_d = _num(problems, file, "anti_monopoly.max_districts_per_agency",
                 am.get("max_districts_per_agency"), lo=1, integer=True, allow_none=True)
    min_score = _num(problems, file, "quality.min_score", qual.get("min_score"), lo=0, hi=100)
    by_risk = _level_map(problems, file, "quality.min_score_by_risk",
                         qual.get("min_score_by_risk"), lo=0, hi=100)
    floor = _num(problems, file, "price.floor_ratio", price.get("floor_ratio"), lo=0)
    ceiling = _num(problems, file, "price.ceiling_ratio", price.get("ceiling_ratio"), lo=0,
                   lo_open=True)
    if floor is not None and ceiling is not None and floor > ceiling:
        problems.append(Problem(file, None, "price.floor_ratio", floor,
                                f"floor_ratio is above ceiling_ratio ({ceiling})",
                                "make floor_ratio <= ceiling_ratio"))
    name = solver.get("name")
    if isinstance(name, str) and name.strip().lower() in SOLVER_NAMES:
        name = name.strip().lower()
    if name not in SOLVER_NAMES:
        close = difflib.get_close_matches(str(name).lower(), SOLVER_NAMES, n=1)
        problems.append(Problem(file, None, "solver.name", name, "unknown solver",
                                f"use one of {', '.join(SOLVER_NAMES)}"
                                + (f" (did you mean '{close[0]}'?)" if close else "")))
    time_limit = _num(problems, file, "solver.time_limit", solver.get("time_limit"), lo=0,
                      lo_open=True)
    gap = _num(problems, file, "solver.mip_gap", solver.get("mip_gap"), lo=0, hi=1)
    seed = _num(problems, file, "solver.seed", solver.get("seed"), lo=0, integer=True)
    threads = _num(problems, file, "solver.threads", solver.get("threads"), lo=1, integer=True,
                   allow_none=True)
    objective_levels = parse_levels(problems, file, solver.get("levels"))
    shares = parse_copay(problems, file, copay.get("share_by_risk"))
    language = parse_language(problems, file, report.get("language"))
    currency = parse_currency(problems, file, report.get("currency"))
    history = parse_continuity(problems, file, sect("continuity"), sect("evaluation"))
    pname = merged.get("name")
    if pname is not None and not isinstance(pname, str | int | float):
        problems.append(Problem(file, None, "name", pname, "must be text", "write a short name"))
    if problems:
        return None, problems
    return Policy(
        name="" if pname is None else str(pname),
        budget_total=None if total is None else float(total),
        weights={lvl: float(weights[lvl]) for lvl in RISK_LEVELS},
        mandatory_levels=tuple(sorted(set(levels))),
        min_district_ratio=float(ratio),
        max_share_in_district=share_d,
        min_agencies_per_district=int(min_ag or 0),
        max_share_in_city=share_c,
        max_districts_per_agency=max_d,
        min_score=float(min_score),
        min_score_by_risk=by_risk,
        floor_ratio=float(floor),
        ceiling_ratio=float(ceiling),
        solver_name=str(name),
        time_limit=float(time_limit),
        mip_gap=float(gap),
        seed=int(seed),
        threads=threads,
        levels=objective_levels,
        copay_share_by_risk=shares,
        language=language,
        currency=currency,
        **history,
    ), []


def parse_copay(problems: list[Problem], file: str, value: Any) -> dict[int, float]:
    """copay.share_by_risk: the enterprise's share of its cost by risk level, each in [0, 1)
    (the government always pays a part, so a demand never leaves the funding rules)."""
    key = "copay.share_by_risk"
    if value is None:
        return {}
    shares = _level_map(problems, file, key, value, lo=0, hi=1)
    for level, share in list(shares.items()):
        if share >= 1:
            problems.append(Problem(file, None, f"{key}.{level}", share,
                                    "out of range (must be in [0, 1): the government pays the "
                                    "rest, so the enterprise pays less than all of it)",
                                    "use a share below 1, e.g. 0.3 for 30 %"))
            del shares[level]
    return {lvl: v for lvl, v in shares.items() if v > 0}


def _flag(problems: list[Problem], file: str, key: str, value: Any) -> bool | None:
    """A true/false switch; anything else is a problem."""
    if isinstance(value, bool):
        return value
    problems.append(Problem(file, None, key, value, "must be true or false",
                            f"write {key.split('.')[-1]}: true or {key.split('.')[-1]}: false"))
    return None


def parse_continuity(problems: list[Problem], file: str, cont: dict[str, Any],
                     ev: dict[str, Any]) -> dict[str, Any]:
    """The continuity and evaluation sections (last year's plan, agency evaluations)."""
    keep = _flag(problems, file, "continuity.keep_incumbents", cont.get("keep_incumbents"))
    changes = _num(problems, file, "continuity.max_changes", cont.get("max_changes"), lo=0,
                   hi=1, allow_none=True)
    tenure = _num(problems, file, "continuity.max_tenure_years", cont.get("max_tenure_years"),
                  lo=1, integer=True, allow_none=True)
    raw_w = ev.get("scorer_weights")
    weights: dict[str, float] = {}
    if not isinstance(raw_w, dict) or not raw_w:
        problems.append(Problem(file, None, "evaluation.scorer_weights", raw_w,
                                "must be a mapping scorer -> weight",
                                "write e.g. {enterprise: 0.3, street_office: 0.3, expert: 0.4, "
                                "spot_check: 0}"))
    else:
        for scorer, value in raw_w.items():
            if scorer in SCORERS:  # unknown scorers are reported by unknown_keys
                num = _num(problems, file, f"evaluation.scorer_weights.{scorer}", value, lo=0)
                if num is not None:
                    weights[str(scorer)] = num
        if set(weights) == set(raw_w) and not any(w > 0 for w in weights.values()):
            problems.append(Problem(file, None, "evaluation.scorer_weights", raw_w,
                                    "no scorer type has a positive weight, so no agency gets "
                                    "a score", "give at least one scorer type a weight > 0"))
    carry = _num(problems, file, "evaluation.carry", ev.get("carry"), lo=0, hi=1)
    marks = {k: _num(problems, file, f"evaluation.{k}", ev.get(k), lo=0, hi=100)
             for k in ("probation_below", "suspend_below", "restore_above")}
    if (marks["suspend_below"] is not None and marks["probation_below"] is not None
            and marks["suspend_below"] > marks["probation_below"]):
        problems.append(Problem(file, None, "evaluation.suspend_below", marks["suspend_below"],
                                f"suspend_below is above probation_below "
                                f"({marks['probation_below']:g})",
                                "make suspend_below <= probation_below"))
    bottom = _num(problems, file, "evaluation.bottom_share_to_probation",
                  ev.get("bottom_share_to_probation"), lo=0, hi=1)
    blacklist = _flag(problems, file, "evaluation.blacklist_on_violation",
                      ev.get("blacklist_on_violation"))
    if problems:
        return {}
    return {"keep_incumbents": bool(keep), "max_changes": changes, "max_tenure_years": tenure,
            "scorer_weights": {s: float(weights.get(s, 0.0)) for s in SCORERS},
            "carry": float(carry), "bottom_share_to_probation": float(bottom),
            "blacklist_on_violation": bool(blacklist),
            **{k: float(v) for k, v in marks.items()}}


def parse_levels(problems: list[Problem], file: str, value: Any) -> tuple[str, ...]:
    """solver.levels: which objective levels to optimise, kept in the spec's order.

    coverage must be among them (a plan that does not try to serve is no plan); a level
    left out is not optimised, only reported for the plan found."""
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list | tuple) or not value:
        problems.append(Problem(file, None, "solver.levels", value, "must be a list of levels",
                                "write e.g. [coverage, quality, cost] or [coverage, cost]"))
        return LEVEL_NAMES
    names = [str(v).strip().lower() for v in value]
    bad = [n for n in names if n not in LEVEL_NAMES]
    for n in bad:
        close = difflib.get_close_matches(n, LEVEL_NAMES, n=1)
        problems.append(Problem(file, None, "solver.levels", n, "unknown level",
                                f"use some of {', '.join(LEVEL_NAMES)}"
                                + (f" (did you mean '{close[0]}'?)" if close else "")))
    if not bad and "coverage" not in names:
        problems.append(Problem(file, None, "solver.levels", value,
                                "coverage must be optimised (it comes first)",
                                "write e.g. [coverage, cost]"))
    if bad or "coverage" not in names:
        return LEVEL_NAMES
    return tuple(n for n in LEVEL_NAMES if n in names)


def parse_language(problems: list[Problem], file: str, value: Any) -> str:
    """report.language: en or zh (zh-CN, zh_cn and Chinese are read as zh)."""
    text = str(value).strip().lower().replace("_", "-") if value is not None else "en"
    if text in ("zh-cn", "zh-hans", "chinese", "cn", "中文"):
        text = "zh"
    if text in ("english", "en-us", "en-gb"):
        text = "en"
    if text not in LANGUAGES:
        problems.append(Problem(file, None, "report.language", value, "unknown language",
                                f"use {' or '.join(LANGUAGES)} (zh: Chinese headings and "
                                "sentences)"))
        return "en"
    return text


def parse_currency(problems: list[Problem], file: str, value: Any) -> str:
    """report.currency: the name shown beside money (a code such as CNY, or 元)."""
    if value is None:
        return "CNY"
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, str) or not text or len(text) > 12 \
            or any(c in text for c in "\n\r\t\"<>&"):
        problems.append(Problem(file, None, "report.currency", value,
                                "must be a short currency name",
                                "write e.g. currency: CNY (or 元); at most 12 characters"))
        return "CNY"
    return text
