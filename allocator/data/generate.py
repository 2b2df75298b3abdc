"""Realistic synthetic instances in the folder format of spec sections 2-3.

`generate_instance(n_enterprises, n_agencies, n_districts, seed)` returns the tables as
DataFrames (exactly the spec's columns) plus the policy dict; `write_instance(data, out_dir)`
writes them atomically. Everything is drawn from `numpy.random.default_rng(seed)` in a fixed
order, so a seed always gives byte-identical files. All per-enterprise and per-demand work is
vectorised; Python loops run only over agencies, districts or a few hundred quotes.

Feasibility of the default rules is built in, not hoped for. A *core* of strong agencies
(active, quality 85-97, every district, a bid for every (service, sector) pair at 0.95-1.05 x the
reference rate, generous capacity) exists in every instance, and the generator constructs a
*witness plan* with them: in every district that has major-risk (level 4) demand it serves all
of that demand plus enough other demand of the district that a round-robin split over the core
agencies (largest first) gives every agency at most 40 % of the district spend and at least
three agencies per district. The witness is checked with the actual bid rates; the budget,
every district budget cap and every core agency's capacity are then set to cover it, and no
conflict or quote is allowed to touch a core agency on a level-4 enterprise. A district too
small to carry such a witness has its level-4 enterprises downgraded to level 3 (so it never
holds mandatory demand that the default rules could not serve).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from allocator.core.errors import UsageError
from allocator.core.folders import staged
from allocator.data.policy import DEFAULTS

#: The columns of every table, exactly as spec section 2 lists them.
COLUMNS: dict[str, list[str]] = {
    "districts": ["district_id", "name", "budget_cap"],
    "services": ["service_id", "name", "reference_rate"],
    "enterprises": ["enterprise_id", "name", "district_id", "sector", "risk_level"],
    "demands": ["enterprise_id", "service_id", "person_days", "weight"],
    "agencies": ["agency_id", "name", "status", "quality", "capacity_days", "districts"],
    "bids": ["agency_id", "service_id", "sector", "day_rate"],
    "quotes": ["agency_id", "enterprise_id", "service_id", "price", "person_days"],
    "conflicts": ["agency_id", "enterprise_id"],
}
TABLES = tuple(COLUMNS)
FUNDING_COLUMNS = ["source_id", "name", "department", "amount", "districts", "sectors",
                   "services", "risk_levels"]
#: the planner's year (generate --history): last year's plan and the agencies' evaluations
HISTORY_COLUMNS: dict[str, list[str]] = {
    "incumbents": ["enterprise_id", "service_id", "agency_id", "years"],
    "evaluations": ["agency_id", "scorer", "score", "violation", "enterprise_id", "date",
                    "note"],
}
#: share of this year's demands that had an agency last year
_INCUMBENT_SHARE = 0.65
#: chance of 1, 2, 3, 4 consecutive years with the same agency
_YEARS = np.array([0.45, 0.30, 0.15, 0.10])
_VIOLATIONS = ("false_report", "missed_major_hazard", "bribery")
#: core agencies are scored at least this (they stay active and above every quality bar next
#: year, so the witness plan of the next year's instance still holds)
_CORE_SCORE_FLOOR = 82.0

SECTORS = [
    "hazardous_chemicals",
    "mining",
    "fire_safety",
    "transport",
    "construction",
    "industrial_park",
    "hazardous_waste",
    "general_industry",
]
_SECTOR_WORD = {
    "hazardous_chemicals": "Chemical",
    "mining": "Mining",
    "fire_safety": "Fire Protection",
    "transport": "Logistics",
    "construction": "Construction",
    "industrial_park": "Industrial Park",
    "hazardous_waste": "Environmental Disposal",
    "general_industry": "Manufacturing",
}
#: City-wide share of enterprises per sector (each district perturbs it).
_SECTOR_SHARE = np.array([0.09, 0.04, 0.12, 0.13, 0.16, 0.07, 0.05, 0.34])
#: Risk-level mix (levels 1..4) per sector: chemicals, mining, hazardous waste are riskier.
_RISK_MIX = np.array(
    [
        [0.28, 0.32, 0.28, 0.12],  # hazardous_chemicals
        [0.28, 0.33, 0.27, 0.12],  # mining
        [0.56, 0.30, 0.11, 0.03],  # fire_safety
        [0.58, 0.28, 0.11, 0.03],  # transport
        [0.52, 0.31, 0.13, 0.04],  # construction
        [0.50, 0.30, 0.15, 0.05],  # industrial_park
        [0.33, 0.33, 0.24, 0.10],  # hazardous_waste
        [0.70, 0.24, 0.05, 0.01],  # general_industry
    ]
)

#: Service catalogue: name, reference rate per person-day, base person-days at risk level 1,
#: base popularity (relative chance an enterprise needs it).
_SERVICES = [
    ("Hazard inspection and rectification check", 1800, 3.0, 1.00),
    ("Safety assessment", 2600, 6.0, 0.45),
    ("Work-safety training", 1200, 2.0, 0.70),
    ("Emergency-plan review and drill", 1500, 2.5, 0.40),
    ("Work-safety standardisation support", 2200, 5.0, 0.30),
    ("Occupational-hazard testing", 2800, 4.0, 0.25),
]
#: Extra pull of the risky sectors towards assessment / emergency plans / hazard testing.
_SERVICE_TILT = {
    "hazardous_chemicals": [1.0, 2.2, 1.0, 1.8, 1.3, 2.0],
    "mining": [1.0, 2.0, 1.2, 1.8, 1.5, 2.2],
    "hazardous_waste": [1.0, 1.8, 1.0, 1.6, 1.0, 2.0],
    "fire_safety": [1.2, 0.6, 1.3, 1.4, 0.8, 0.3],
    "construction": [1.3, 0.8, 1.4, 1.0, 1.1, 0.6],
}
_DAYS_BY_RISK = np.array([0.0, 1.0, 1.5, 2.3, 3.5])  # index = risk level
#: Chance of needing 1, 2 or 3 services, by risk level.
_N_SERVICES_BY_RISK = np.array(
    [[1.0, 0.0, 0.0], [0.62, 0.30, 0.08], [0.45, 0.38, 0.17], [0.30, 0.42, 0.28],
     [0.15, 0.40, 0.45]]
)

_DISTRICT_NAMES = [
    "Riverside", "Old Town", "Harbour", "Northgate", "Eastfield", "Westlake", "Hillcrest",
    "Southport", "Ironworks", "Greenvale", "Lakeshore", "Stonebridge", "Millbrook",
    "Kingsway", "Ashford", "Redcliff", "Fairview", "Oakridge", "Marshland", "Bayside",
]
_NAME_A = [
    "Heng", "Jin", "Hua", "Xin", "Tai", "Long", "Da", "Rui", "Sheng", "Yuan", "Feng", "Kai",
    "Bao", "Zhong", "Tian", "Hong", "Ming", "Guang", "Fu", "An",
]
_NAME_B = [
    "tai", "long", "xin", "da", "feng", "yuan", "sheng", "chang", "hui", "rong", "tong",
    "yang", "kang", "cheng", "lian", "hai",
]
_AGENCY_KIND = [
    "Safety Technology Services", "Safety Consulting", "Risk Engineering",
    "Safety Assessment Centre", "Emergency Management Consulting",
    "Occupational Safety Institute", "Safety Training Centre",
]
_STATUSES = np.array(["active", "probation", "suspended", "blacklisted"])

#: the spec's defaults as written into a generated policy.yaml (taken from allocator.data.policy,
#: the one place defaults live; solver seed and threads are left to their defaults)
DEFAULT_POLICY = {
    **{k: copy.deepcopy(DEFAULTS[k]) for k in ("coverage", "anti_monopoly", "quality", "price")},
    "solver": {k: DEFAULTS["solver"][k] for k in ("name", "time_limit", "mip_gap")},
}

_CORE_RATE = (0.95, 1.05)  # core agencies bid within this band around the reference rate
_MAX_SHARE = DEFAULT_POLICY["anti_monopoly"]["max_share_in_district"]
_MIN_AGENCIES = DEFAULT_POLICY["anti_monopoly"]["min_agencies_per_district"]


def _ids(prefix: str, n: int, min_width: int) -> np.ndarray:
    width = max(min_width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _nice(x: float, up: bool = False) -> int:
    """x rounded to two significant digits (upwards when up)."""
    if x <= 0:
        return 0
    step = 10 ** max(0, int(math.floor(math.log10(x))) - 1)
    return int((math.ceil(x / step) if up else max(1, round(x / step))) * step)


def _pick_by_cumprob(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of probs (rows sum to 1), vectorised."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def _names(rng: np.random.Generator, n: int, suffix: np.ndarray | str) -> np.ndarray:
    a = np.array(_NAME_A, dtype=object)[rng.integers(0, len(_NAME_A), n)]
    b = np.array(_NAME_B, dtype=object)[rng.integers(0, len(_NAME_B), n)]
    return a + b + " " + suffix


def generate_instance(n_enterprises: int, n_agencies: int, n_districts: int,
                      seed: int, funding: bool = False, history: bool = False
                      ) -> dict[str, pd.DataFrame | dict]:
    """A realistic synthetic instance; keys are the table names plus "policy".

    Deterministic by seed. Needs n_agencies >= 3 (the default rules want three agencies per
    served district) and at least one enterprise and one district. `funding` adds
    funding.csv (see generate_funding) in place of budget.total; `history` adds "incumbents"
    and "evaluations" (see generate_history); every other table is the same as without them.
    """
    if n_enterprises < 1 or n_districts < 1:
        raise UsageError("need at least one enterprise and one district")
    if n_agencies < _MIN_AGENCIES:
        raise UsageError(f"need at least {_MIN_AGENCIES} agencies for the default rules")
    rng = np.random.default_rng(seed)
    n_e, n_a, n_d = int(n_enterprises), int(n_agencies), int(n_districts)
    n_s, n_sec = len(_SERVICES), len(SECTORS)

    # ---- districts -------------------------------------------------------------------------
    district_ids = _ids("D", n_d, 2)
    base_names = [_DISTRICT_NAMES[i % len(_DISTRICT_NAMES)] for i in range(n_d)]
    order = rng.permutation(n_d)
    district_names = [
        base_names[o] + ("" if o < len(_DISTRICT_NAMES) else f" {o // len(_DISTRICT_NAMES) + 1}")
        for o in order
    ]
    district_weight = rng.dirichlet(np.full(n_d, 4.0))
    sector_mix = _SECTOR_SHARE[None, :] * rng.lognormal(0.0, 0.45, (n_d, n_sec))
    mining_col = SECTORS.index("mining")
    sector_mix[:, mining_col] *= np.where(rng.random(n_d) < 0.4, 2.5, 0.15)
    sector_mix /= sector_mix.sum(axis=1, keepdims=True)

    # ---- enterprises -----------------------------------------------------------------------
    e_district = rng.choice(n_d, size=n_e, p=district_weight)
    e_sector = _pick_by_cumprob(rng, sector_mix[e_district])
    e_risk = _pick_by_cumprob(rng, _RISK_MIX[e_sector]) + 1
    enterprise_ids = _ids("E", n_e, 5)
    sector_arr = np.array(SECTORS, dtype=object)
    word = np.array([_SECTOR_WORD[s] for s in SECTORS], dtype=object)[e_sector]
    e_names = _names(rng, n_e, word + " Co., Ltd.")

    # ---- services and demands --------------------------------------------------------------
    service_ids = _ids("S", n_s, 2)
    ref_rate = np.array([s[1] for s in _SERVICES], dtype=float)
    base_days = np.array([s[2] for s in _SERVICES])
    pop = np.array([[s[3] for s in _SERVICES]] * n_sec)
    for sec, tilt in _SERVICE_TILT.items():
        pop[SECTORS.index(sec)] *= tilt
    k = _pick_by_cumprob(rng, _N_SERVICES_BY_RISK[e_risk]) + 1
    # weighted sampling without replacement: k smallest of Exp(1)/p per enterprise
    keys = rng.exponential(size=(n_e, n_s)) / pop[e_sector]
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    d_ent, d_srv = np.nonzero(rank < k[:, None])
    n_dem = len(d_ent)
    d_risk = e_risk[d_ent]
    days = base_days[d_srv] * _DAYS_BY_RISK[d_risk] * rng.lognormal(0.0, 0.3, n_dem)
    d_days = np.maximum(1, np.rint(days)).astype(np.int64)
    d_weight = np.full(n_dem, -1, dtype=np.int64)
    explicit = (rng.random(n_dem) < 0.015) & (d_risk < 4)
    wmap = np.array([0, 1, 2, 4, 8])
    d_weight[explicit] = np.ceil(
        wmap[d_risk[explicit]] * rng.choice([1.5, 2.0, 3.0], explicit.sum())
    ).astype(np.int64)
    d_ref = d_days * ref_rate[d_srv]

    # ---- agencies --------------------------------------------------------------------------
    n_core = int(min(n_a, max(5, round(0.15 * n_a))))
    core = np.zeros(n_a, dtype=bool)
    core_idx = np.sort(rng.choice(n_a, n_core, replace=False))
    core[core_idx] = True
    status = _STATUSES[rng.choice(4, n_a, p=[0.68, 0.17, 0.08, 0.07])]
    status[core] = "active"
    noncore = np.flatnonzero(~core)
    if len(noncore) >= 6:  # a realistic pool always has a few of each
        for st in ("probation", "suspended", "blacklisted"):
            if not (status[noncore] == st).any():
                cand = noncore[status[noncore] == "active"]
                status[cand[rng.integers(0, len(cand))]] = st
    quality = 45 + 53 * rng.beta(2.0, 1.5, n_a)
    bad = (status == "suspended") | (status == "blacklisted")
    quality[bad] = 45 + 35 * rng.beta(2.0, 2.0, bad.sum())
    quality[core] = 85 + 12 * rng.beta(2.0, 2.0, n_core)
    quality = np.round(quality, 1)
    serves_all = core | (rng.random(n_a) < 0.25) | (n_d <= 2)
    serve = np.zeros((n_a, n_d), dtype=bool)
    serve[serves_all] = True
    area = np.full(n_a, "*", dtype=object)
    for a in np.flatnonzero(~serves_all):  # loop over agencies only
        m = int(rng.integers(1, min(4, n_d) + 1))
        ds = np.sort(rng.choice(n_d, m, replace=False))
        serve[a, ds] = True
        area[a] = ";".join(district_ids[ds])
    kinds = np.array(_AGENCY_KIND, dtype=object)[rng.integers(0, len(_AGENCY_KIND), n_a)]
    a_names = _names(rng, n_a, kinds + " Co.")
    agency_ids = _ids("A", n_a, 3)

    # ---- bids ------------------------------------------------------------------------------
    pairs_s, pairs_t = np.divmod(np.arange(n_s * n_sec), n_sec)
    agency_parts: list[np.ndarray] = []
    srv_parts: list[np.ndarray] = []
    sec_parts: list[np.ndarray] = []
    b_ratio: list[np.ndarray] = []
    factor = rng.normal(1.0, 0.05, n_a)
    for ag in range(n_a):  # loop over agencies only
        if core[ag]:
            keep = np.ones(n_s * n_sec, dtype=bool)
            ratio = np.clip(rng.normal(1.0, 0.025, keep.size), *_CORE_RATE)
        else:
            srv = rng.choice(n_s, int(rng.integers(2, n_s + 1)), replace=False)
            secs = rng.choice(n_sec, int(rng.integers(2, n_sec + 1)), replace=False)
            keep = np.isin(pairs_s, srv) & np.isin(pairs_t, secs) & (rng.random(pairs_s.size) < 0.9)
            if not keep.any():
                keep[rng.integers(0, keep.size)] = True
            ratio = factor[ag] * rng.normal(1.0, 0.11, keep.size)
            u = rng.random(keep.size)
            ratio = np.where(u < 0.04, rng.uniform(0.55, 0.78, keep.size), ratio)
            ratio = np.where(u > 0.97, rng.uniform(1.52, 1.85, keep.size), ratio)
            ratio = np.clip(ratio, 0.5, 2.0)
        agency_parts.append(np.full(keep.sum(), ag))
        srv_parts.append(pairs_s[keep])
        sec_parts.append(pairs_t[keep])
        b_ratio.append(ratio[keep])
    b_agency = np.concatenate(agency_parts)
    b_srv = np.concatenate(srv_parts)
    b_sec = np.concatenate(sec_parts)
    b_rate = np.rint(np.concatenate(b_ratio) * ref_rate[b_srv]).astype(np.int64)
    # make sure the pool shows both kinds of abnormal bid
    nc_bids = np.flatnonzero(~core[b_agency])
    if len(nc_bids) >= 20:
        ratio_now = b_rate[nc_bids] / ref_rate[b_srv[nc_bids]]
        if not (ratio_now < 0.8).any():
            i = nc_bids[rng.integers(0, len(nc_bids))]
            b_rate[i] = int(np.rint(0.7 * ref_rate[b_srv[i]]))
        if not (ratio_now > 1.5).any():
            i = nc_bids[rng.integers(0, len(nc_bids))]
            b_rate[i] = int(np.rint(1.6 * ref_rate[b_srv[i]]))
    # core rate table: (core position, service, sector) -> day rate
    core_pos = np.full(n_a, -1)
    core_pos[core_idx] = np.arange(n_core)
    core_rate = np.zeros((n_core, n_s, n_sec))
    cb = core[b_agency]
    core_rate[core_pos[b_agency[cb]], b_srv[cb], b_sec[cb]] = b_rate[cb]

    # ---- witness plan (constructive feasibility of the default rules) ----------------------
    r_hi_lo = (_CORE_RATE[1] + 0.001) / (_CORE_RATE[0] - 0.001)  # integer rounding
    slack = _MAX_SHARE / r_hi_lo * n_core - 1.0
    factor_needed = (n_core - 1) / slack  # district ref total >= this x its largest item
    dem_district = e_district[d_ent]
    is4 = d_risk == 4
    n4_by_d = np.bincount(dem_district[is4], minlength=n_d)
    # candidate order in each district: level-4 first, then by risk, then random
    tiebreak = rng.random(n_dem)
    cand = np.lexsort((tiebreak, -d_risk, ~is4, dem_district))
    cd = dem_district[cand]
    cref = d_ref[cand]
    starts = np.searchsorted(cd, np.arange(n_d))
    pos = np.arange(n_dem) - starts[cd]
    csum = pd.Series(cref).groupby(cd).cumsum().to_numpy()
    cmax = pd.Series(cref).groupby(cd).cummax().to_numpy()
    ok = (pos + 1 >= np.maximum(n4_by_d[cd], _MIN_AGENCIES)) & (csum >= factor_needed * cmax)
    first_ok = np.full(n_d, -1)
    okpos = np.flatnonzero(ok)
    if okpos.size:
        dd = cd[okpos]
        uniq, first = np.unique(dd, return_index=True)
        first_ok[uniq] = pos[okpos[first]]
    # districts whose level-4 demand cannot be carried: downgrade those enterprises to 3
    downgrade = (n4_by_d > 0) & (first_ok < 0)
    if downgrade.any():
        hit = (e_risk == 4) & downgrade[e_district]
        e_risk[hit] = 3
        d_risk = e_risk[d_ent]
        is4 = d_risk == 4
        n4_by_d = np.bincount(dem_district[is4], minlength=n_d)
    need = (n4_by_d > 0)[cd] & (pos <= first_ok[cd])
    w_idx = cand[need]  # witness demands
    w_dist = dem_district[w_idx]
    ordw = np.lexsort((-d_ref[w_idx], w_dist))
    w_idx, w_dist = w_idx[ordw], w_dist[ordw]
    w_rank = np.arange(len(w_idx)) - np.searchsorted(w_dist, w_dist)
    w_core = (w_rank + w_dist) % n_core
    w_agency = core_idx[w_core]
    w_cost = d_days[w_idx] * core_rate[w_core, d_srv[w_idx], e_sector[d_ent[w_idx]]]
    w_dcost = np.bincount(w_dist, weights=w_cost, minlength=n_d)
    w_ad = pd.DataFrame({"a": w_agency, "d": w_dist, "c": w_cost}).groupby(["d", "a"])["c"].sum()
    if len(w_idx):
        share = w_ad / w_dcost[w_ad.index.get_level_values("d")]
        n_used = w_ad.groupby(level="d").size()
        assert share.max() <= _MAX_SHARE + 1e-9, "witness breaks max_share_in_district"
        assert n_used.min() >= _MIN_AGENCIES, "witness breaks min_agencies_per_district"
    assert is4[w_idx].sum() == is4.sum(), "witness must serve every level-4 demand"
    w_load = np.bincount(w_agency, weights=d_days[w_idx], minlength=n_a)
    w_total = float(w_cost.sum())

    # ---- capacities ------------------------------------------------------------------------
    total_days = float(d_days.sum())
    cap_share = rng.lognormal(0.0, 0.6, n_a) * np.where(core, 1.6, 1.0)
    capacity = np.ceil(1.4 * total_days * cap_share / cap_share.sum() / 10) * 10
    capacity = np.maximum(capacity, 20)
    capacity = np.maximum(capacity, np.ceil((1.25 * w_load + 10) / 10) * 10)
    capacity = capacity.astype(np.int64)

    # ---- quotes ----------------------------------------------------------------------------
    n_q = max(3, round(0.004 * n_dem))
    q_dem = np.sort(rng.choice(n_dem, min(n_q, n_dem), replace=False))
    q_d = dem_district[q_dem]
    pool = ~core if (~core).sum() >= 3 else np.ones(n_a, dtype=bool)
    score = rng.random((len(q_dem), n_a)) * (serve[:, q_d].T & pool[None, :])
    q_agency = score.argmax(axis=1)
    q_ok = score.max(axis=1) > 0
    q_ratio = rng.normal(0.97, 0.08, len(q_dem))
    low = rng.random(len(q_dem)) < 0.15
    q_ratio[low] = rng.uniform(0.55, 0.75, low.sum())
    q_price = np.rint(q_ratio * d_ref[q_dem] / 10) * 10
    q_days = np.maximum(1, np.rint(d_days[q_dem] * rng.uniform(0.85, 1.15, len(q_dem))))
    # never touch a core agency on level-4 demand (keeps the witness and >= n_core options)
    q_ok &= ~(core[q_agency] & is4[q_dem])
    witness_triples = set(zip(w_agency.tolist(), w_idx.tolist(), strict=True))
    q_ok &= np.array([(a, d) not in witness_triples
                      for a, d in zip(q_agency.tolist(), q_dem.tolist(), strict=True)], dtype=bool)
    quotes = pd.DataFrame({
        "agency_id": agency_ids[q_agency[q_ok]],
        "enterprise_id": enterprise_ids[d_ent[q_dem[q_ok]]],
        "service_id": service_ids[d_srv[q_dem[q_ok]]],
        "price": q_price[q_ok].astype(np.int64),
        "person_days": q_days[q_ok].astype(np.int64),
    })

    # ---- conflicts -------------------------------------------------------------------------
    n_c = max(2, round(0.003 * n_e))
    c_ent = rng.integers(0, n_e, n_c)
    score = rng.random((n_c, n_a)) * serve[:, e_district[c_ent]].T
    c_agency = np.where(score.max(axis=1) > 0, score.argmax(axis=1), rng.integers(0, n_a, n_c))
    witness_pairs = set(zip(w_agency.tolist(), d_ent[w_idx].tolist(), strict=True))
    quote_pairs = set(zip(q_agency[q_ok].tolist(), d_ent[q_dem[q_ok]].tolist(), strict=True))
    c_keep = ~(core[c_agency] & (e_risk[c_ent] == 4))
    c_keep &= np.array([(a, e) not in witness_pairs and (a, e) not in quote_pairs
                        for a, e in zip(c_agency.tolist(), c_ent.tolist(), strict=True)],
                       dtype=bool)
    conflicts = pd.DataFrame({
        "agency_id": agency_ids[c_agency[c_keep]],
        "enterprise_id": enterprise_ids[c_ent[c_keep]],
    }).drop_duplicates(ignore_index=True)

    # ---- budget and district caps ----------------------------------------------------------
    total_ref = float(d_ref.sum())
    ref4 = float(d_ref[is4].sum())
    budget = max(_nice(0.5 * total_ref), _nice(max(1.05 * w_total, 1.2 * ref4), up=True))
    dist_ref = np.bincount(dem_district, weights=d_ref, minlength=n_d)
    dist_ref4 = np.bincount(dem_district[is4], weights=d_ref[is4], minlength=n_d)
    caps = np.full(n_d, -1, dtype=np.int64)
    if n_d >= 2:
        capped = rng.choice(n_d, max(1, round(0.3 * n_d)), replace=False)
        draw = rng.uniform(0.35, 0.5, len(capped))
        for d, f in zip(capped.tolist(), draw.tolist(), strict=True):
            if dist_ref[d] > 0:
                caps[d] = max(_nice(f * dist_ref[d]),
                              _nice(max(1.1 * w_dcost[d], 1.2 * dist_ref4[d]), up=True))

    # ---- tables ----------------------------------------------------------------------------
    districts = pd.DataFrame({
        "district_id": district_ids,
        "name": district_names,
        "budget_cap": pd.Series(caps).astype("Int64").mask(caps < 0).array,
    })
    services = pd.DataFrame({
        "service_id": service_ids,
        "name": [s[0] for s in _SERVICES],
        "reference_rate": ref_rate.astype(np.int64),
    })
    enterprises = pd.DataFrame({
        "enterprise_id": enterprise_ids,
        "name": e_names,
        "district_id": district_ids[e_district],
        "sector": sector_arr[e_sector],
        "risk_level": e_risk.astype(np.int64),
    })
    demands = pd.DataFrame({
        "enterprise_id": enterprise_ids[d_ent],
        "service_id": service_ids[d_srv],
        "person_days": d_days,
        "weight": pd.Series(d_weight).astype("Int64").mask(d_weight < 0).array,
    })
    agencies = pd.DataFrame({
        "agency_id": agency_ids,
        "name": a_names,
        "status": status.astype(object),
        "quality": quality,
        "capacity_days": capacity,
        "districts": area,
    })
    bids = pd.DataFrame({
        "agency_id": agency_ids[b_agency],
        "service_id": service_ids[b_srv],
        "sector": sector_arr[b_sec],
        "day_rate": b_rate,
    })
    # a small city may lack some sectors; a bid for a sector nobody has is invalid input
    bids = bids[bids["sector"].isin(enterprises["sector"])].reset_index(drop=True)
    policy = {
        "name": (f"Synthetic city seed {seed}: {n_e} enterprises, {n_a} agencies, "
                 f"{n_d} districts"),
        "budget": {"total": int(budget)},
        **{k: _copy(v) for k, v in DEFAULT_POLICY.items()},
    }
    out = {
        "districts": districts,
        "services": services,
        "enterprises": enterprises,
        "demands": demands,
        "agencies": agencies,
        "bids": bids,
        "quotes": quotes,
        "conflicts": conflicts,
    }
    for name, df in out.items():
        assert list(df.columns) == COLUMNS[name], name
    if funding:
        out["funding"] = generate_funding(seed, out, float(budget), w_total)
        del policy["budget"]  # the sources cap the spend (budget.total is optional then)
    out.update(generate_history(out, core, int(seed)) if history else {})
    out["policy"] = policy
    return out


#: industry departments that fund their own sectors: (sectors, department, fund name)
_DEPARTMENTS = [
    (("transport",), "Transport Bureau", "Road and waterway transport safety fund"),
    (("construction",), "Housing and Urban-Rural Construction Bureau",
     "Construction site safety fund"),
    (("industrial_park", "general_industry"), "Industry and Information Technology Bureau",
     "Industrial safety upgrading fund"),
    (("fire_safety",), "Fire and Rescue Detachment", "Fire safety inspection fund"),
]
#: the sectors liability insurers spend their accident-prevention money on
_INSURED = ("hazardous_chemicals", "mining", "hazardous_waste")


def generate_funding(seed: int, tables: dict[str, pd.DataFrame], budget: float,
                     witness: float) -> pd.DataFrame:
    """funding.csv of a generated city whose total is `budget` (so it binds as the budget
    did): the emergency-management bureau's special fund for everything, one or two industry
    departments' funds for their sectors, the liability insurers' accident-prevention fund
    for the high-risk levels of the dangerous sectors, and in larger cities a district fund
    or two. Each earmarked fund gets a share of the reference cost of what it may pay for;
    the city fund the rest, never less than 1.05 x the generator's witness plan (which the
    city fund alone can then pay, so the default rules stay feasible). Drawn from its own
    random stream, so the other tables do not change."""
    rng = np.random.default_rng([seed, 7_020])
    ent, dem, svc = tables["enterprises"], tables["demands"], tables["services"]
    d = dem.merge(ent[["enterprise_id", "district_id", "sector", "risk_level"]],
                  on="enterprise_id")
    d["ref"] = d["person_days"] * d["service_id"].map(
        svc.set_index("service_id")["reference_rate"])
    total_ref = float(d["ref"].sum())
    rows: list[dict] = []

    def add(name: str, department: str, mask: pd.Series, share: float, districts: str = "*",
            sectors: str = "*", risks: str = "*") -> None:
        amount = _nice(share * budget * float(d.loc[mask, "ref"].sum()) / total_ref)
        if amount > 0:
            rows.append({"name": name, "department": department, "amount": amount,
                         "districts": districts, "sectors": sectors, "services": "*",
                         "risk_levels": risks})

    present = set(d["sector"])
    depts = [x for x in _DEPARTMENTS if present.intersection(x[0])]
    for k in sorted(rng.choice(len(depts), min(len(depts), int(rng.integers(1, 3))),
                               replace=False)) if depts else []:
        sectors, department, name = depts[k]
        sectors = tuple(x for x in sectors if x in present)
        add(name, department, d["sector"].isin(sectors), float(rng.uniform(0.3, 0.5)),
            sectors=";".join(sectors))
    insured = tuple(x for x in _INSURED if x in present)
    if insured:
        add("Liability insurance accident-prevention fund", "Work-safety liability insurers",
            d["sector"].isin(insured) & (d["risk_level"] >= 3), float(rng.uniform(0.3, 0.5)),
            sectors=";".join(insured), risks="3;4")
    districts = tables["districts"]
    if len(districts) >= 3:
        for k in sorted(rng.choice(len(districts), int(rng.integers(0, 3)), replace=False)):
            row = districts.iloc[int(k)]
            add(f"{row['name']} district work-safety fund", f"{row['name']} District Government",
                d["district_id"] == row["district_id"], float(rng.uniform(0.15, 0.3)),
                districts=str(row["district_id"]))
    others = sum(r["amount"] for r in rows)
    floor = _nice(1.05 * witness, up=True)
    if budget - others < floor and others > 0:  # earmarked funds give way to the city fund
        factor = max(budget - floor, 0.0) / others
        for r in rows:
            r["amount"] = _nice(r["amount"] * factor)
        rows = [r for r in rows if r["amount"] > 0]
        others = sum(r["amount"] for r in rows)
    city = {"name": "Special work-safety fund", "department": "Emergency Management Bureau",
            "amount": max(int(budget - others), floor), "districts": "*", "sectors": "*",
            "services": "*", "risk_levels": "*"}
    rows = [city, *rows]
    out = pd.DataFrame(rows)
    out.insert(0, "source_id", _ids("F", len(out), 2))
    return out[FUNDING_COLUMNS]


def generate_history(tables: dict[str, pd.DataFrame], core: np.ndarray, seed: int
                     ) -> dict[str, pd.DataFrame]:
    """Last year's plan on this year's demands (incumbents) and its evaluations.

    About 65 % of the demands had an agency last year: one that bid for the service in the
    enterprise's sector and serves its district, drawn by quality (whatever its status now,
    so some incumbents can no longer serve), for 1-4 years. Each agency that served is
    scored by some of its enterprises, the street offices, an expert panel and sometimes a
    spot check, around its quality; a few non-core agencies have a recorded violation. Core
    agencies score at least _CORE_SCORE_FLOOR, so next year's instance keeps its witness.
    """
    rng = np.random.default_rng([seed, 2027])
    ent, dem, ag, bids = (tables[k] for k in ("enterprises", "demands", "agencies", "bids"))
    d = dem.merge(ent[["enterprise_id", "district_id", "sector"]], on="enterprise_id")
    d = d[rng.random(len(d)) < _INCUMBENT_SHARE].reset_index(drop=True)
    area: dict[str, set[str] | None] = {
        a: (None if str(t) == "*" else set(str(t).split(";")))
        for a, t in zip(ag["agency_id"], ag["districts"], strict=True)}
    quality = dict(zip(ag["agency_id"], ag["quality"].astype(float), strict=True))
    offers = bids.groupby(["service_id", "sector"])["agency_id"].agg(list)
    chosen = np.full(len(d), None, dtype=object)
    groups = d.groupby(["service_id", "sector", "district_id"]).groups
    for (svc, sec, dist), members in groups.items():  # (service, sector, district) groups
        cands = [a for a in offers.get((svc, sec), []) if dist in (area[a] or {dist})]
        if not cands:
            continue
        w = np.array([quality[a] for a in cands]) ** 2
        chosen[np.asarray(members)] = rng.choice(np.array(cands, dtype=object), len(members),
                                                 p=w / w.sum())
    has = chosen != None  # noqa: E711 - an object array
    years = rng.choice(np.arange(1, 5), int(has.sum()), p=_YEARS)
    incumbents = pd.DataFrame({"enterprise_id": d.loc[has, "enterprise_id"].to_numpy(),
                               "service_id": d.loc[has, "service_id"].to_numpy(),
                               "agency_id": chosen[has].astype(str), "years": years})
    # evaluations of every agency that served
    is_core = dict(zip(ag["agency_id"], core, strict=True))
    served = incumbents.groupby("agency_id")["enterprise_id"].agg(lambda e: sorted(set(e)))
    rows: list[dict] = []
    day = pd.Timestamp("2026-01-01")
    for a, ents in served.items():  # loop over agencies only
        mu = quality[a] + rng.normal(0.0, 6.0)
        floor = _CORE_SCORE_FLOOR if is_core[a] else 0.0

        def score(spread: float, mu: float = mu, floor: float = floor) -> float:
            return float(np.clip(np.round(rng.normal(mu, spread)), max(floor, 0), 100))

        picks = rng.choice(np.array(ents, dtype=object), min(len(ents), 4), replace=False)
        draws = ([("enterprise", e) for e in picks]
                 + [("street_office", "")] * int(rng.integers(1, 3)) + [("expert", "")]
                 + ([("spot_check", "")] if rng.random() < 0.4 else []))
        for scorer, e in draws:
            rows.append({"agency_id": a, "scorer": scorer, "score": score(8.0),
                         "violation": "", "enterprise_id": e,
                         "date": (day + pd.Timedelta(days=int(rng.integers(0, 365))))
                         .strftime("%Y-%m-%d"), "note": ""})
        if not is_core[a] and rng.random() < 0.04:
            rows.append({"agency_id": a, "scorer": "spot_check", "score": score(10.0) - 20,
                         "violation": str(rng.choice(_VIOLATIONS)), "enterprise_id":
                         str(rng.choice(np.array(ents, dtype=object))),
                         "date": (day + pd.Timedelta(days=int(rng.integers(0, 365))))
                         .strftime("%Y-%m-%d"), "note": "recorded by the regulator"})
    evaluations = pd.DataFrame(rows, columns=HISTORY_COLUMNS["evaluations"])
    evaluations["score"] = evaluations["score"].clip(lower=0).astype(int)
    return {"incumbents": incumbents[HISTORY_COLUMNS["incumbents"]], "evaluations": evaluations}


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return list(v)
    return v


def write_instance(data: dict, out_dir: Path, force: bool = False,
                   protect: Iterable[Path] = ()) -> Path:
    """Write the tables (CSV, UTF-8, no index) and policy.yaml into out_dir, atomically and
    never over a user's files (core.folders)."""
    with staged(out_dir, "instance", force, protect) as s:
        for name in (*TABLES, "funding", *HISTORY_COLUMNS):
            if name in data:
                data[name].to_csv(s.path / f"{name}.csv", index=False, encoding="utf-8",
                                  lineterminator="\n")
        with open(s.path / "policy.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(data["policy"], fh, sort_keys=False, allow_unicode=True)
    return s.target
