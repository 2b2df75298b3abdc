"""An independent city generator: instances allocator's own generator never produced.

Written from scratch for issue 21, sharing no code and no distributions with
`allocator generate`, so a speed that holds here is not a speed tuned to one generator's
habits. It writes the instance folder of spec sections 2-3 (every table, policy.yaml) and is
deterministic by seed: the same arguments always give byte-identical files.

    generate(n_enterprises, n_agencies, n_districts, seed, out, **knobs) -> Path
    hidden_city(n_enterprises, seed, out) -> Path   # knobs drawn from the seed (the family)

How a city is made (all vectorised; loops run over agencies or districts only):
- district sizes from a Dirichlet (`district_skew`: small = a few large districts), some
  districts with a budget cap (`cap_share`);
- sectors of an own list with Zipf-like frequencies; an enterprise's risk level comes from a
  latent score (sector hazard + district effect + noise) cut at the quantiles of `risk_mix`;
- demands: 1 + Poisson services per enterprise, more for riskier ones; person-days
  log-normal, growing with risk, in half days; `weight_share` of them carry an own weight;
- agencies: quality from a Beta, status mix, a price level from a log-normal (`bid_spread`),
  a service area of a home district plus neighbours on a ring (`area`, or `*` with
  `wide_share`), bids on a share of (service, sector) pairs (`bid_density`), `out_of_band` of
  them abnormally low or high; capacities split total demand x `capacity_tightness` by a
  Dirichlet;
- quotes on `quote_share` of demands, conflicts for `conflict_share` of enterprises;
- budget = `budget_tightness` x the reference cost of all demands.
Feasibility of the default rules is ensured by *anchors*: in each district the
`anchors` best agencies serving it are made active, quality >= 80, bidding on every pair
of the district near the reference rate, with capacity for their part of the mandatory load;
the budget and district caps are raised to pay for the mandatory load at 1.5x the
reference cost. Quotes and conflicts never touch an anchor on a mandatory demand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SECTOR_NAMES = ["petrochemical", "metallurgy", "food_processing", "warehousing", "textiles",
                "electronics", "shipbuilding", "pharmaceutical", "quarrying", "building",
                "power", "printing"]
#: latent hazard of each sector name above (added to the risk score)
SECTOR_HAZARD = np.array([1.4, 1.0, 0.2, 0.4, 0.1, 0.0, 0.8, 0.9, 1.2, 0.7, 0.6, -0.1])
SERVICE_NAMES = ["Site hazard survey", "Risk assessment report", "Staff safety training",
                 "Emergency drill support", "Standardisation audit", "Equipment testing",
                 "Fire-safety check", "Confined-space review", "Dust and toxics testing"]
DISTRICT_WORDS = ["North", "South", "East", "West", "Central", "Upper", "Lower", "Port",
                  "Lake", "Hill", "Valley", "Bridge", "Forest", "Bay", "Plain", "Ridge"]
STATUSES = np.array(["active", "probation", "suspended", "blacklisted"])


@dataclass
class Knobs:
    """The city's character; every field can be passed to generate() by name."""

    n_services: int = 6
    n_sectors: int = 8
    district_skew: float = 3.0  # Dirichlet concentration of district sizes
    cap_share: float = 0.3  # districts with a budget cap
    risk_mix: tuple[float, float, float, float] = (0.45, 0.32, 0.16, 0.07)
    services_per_enterprise: float = 0.7  # Poisson mean of extra services (risk 1)
    weight_share: float = 0.04  # demands with an own weight
    quality_ab: tuple[float, float] = (6.0, 2.5)  # Beta of quality, mapped to 45-99
    status_mix: tuple[float, float, float, float] = (0.78, 0.14, 0.05, 0.03)
    bid_spread: float = 0.12  # sigma of an agency's log price level
    bid_density: float = 0.6  # share of (service, sector) pairs an agency bids on
    out_of_band: float = 0.04  # bids priced outside the policy's band
    area: float = 0.35  # share of districts an agency serves (besides `*`)
    wide_share: float = 0.15  # agencies serving every district (`*`)
    capacity_tightness: float = 1.1  # total capacity / total person-days
    budget_tightness: float = 0.55  # budget / reference cost of all demands
    quote_share: float = 0.03
    conflict_share: float = 0.01
    anchors: int = 4  # agencies per district able to serve its mandatory demand
    policy: dict = field(default_factory=dict)  # policy.yaml overrides, section by section


def _policy(name: str, budget: float, overrides: dict) -> dict:
    pol = {
        "name": name,
        "budget": {"total": float(round(budget, -3))},
        "coverage": {"weights": {1: 1, 2: 2, 3: 4, 4: 8}, "mandatory_levels": [4],
                     "min_district_ratio": 0.0},
        "anti_monopoly": {"max_share_in_district": 0.4, "min_agencies_per_district": 3,
                          "max_share_in_city": None, "max_districts_per_agency": None},
        "quality": {"min_score": 60, "min_score_by_risk": {3: 70, 4: 80}},
        "price": {"floor_ratio": 0.8, "ceiling_ratio": 1.5},
        "solver": {"name": "auto", "time_limit": 60, "mip_gap": 0.0001},
    }
    for section, values in overrides.items():
        pol.setdefault(section, {}).update(values)
    return pol


def _ring_area(rng: np.random.Generator, n_districts: int, home: int, size: int) -> list[int]:
    """`size` districts around `home` on a ring (neighbours first, a random side each)."""
    step = rng.choice([-1, 1])
    out = [home]
    k = 1
    while len(out) < size:
        for d in (home + step * k, home - step * k):
            if len(out) < size:
                out.append(d % n_districts)
        k += 1
    return sorted(set(out))


def tables(n_enterprises: int, n_agencies: int, n_districts: int, seed: int,
           **knobs) -> tuple[dict[str, pd.DataFrame], dict]:
    """The instance's tables (spec columns) and its policy dict, without writing anything."""
    kn = Knobs(**knobs)
    rng = np.random.default_rng([seed, 21])
    nd, na, ne = int(n_districts), int(n_agencies), int(n_enterprises)

    # districts: Dirichlet sizes, at least 15 enterprises each
    share = rng.dirichlet(np.full(nd, kn.district_skew))
    size = np.maximum(15, np.floor(share * ne)).astype(int)
    while size.sum() > ne:
        size[np.argmax(size)] -= 1
    size[np.argmax(size)] += ne - size.sum()
    did = np.array([f"Z{d + 1:02d}" for d in range(nd)])
    dnames = [f"{DISTRICT_WORDS[d % 16]} {1 + d // 16}" for d in range(nd)]
    ent_d = np.repeat(np.arange(nd), size)
    rng.shuffle(ent_d)
    d_effect = rng.normal(0.0, 0.35, nd)

    # services and sectors
    ns = min(kn.n_services, len(SERVICE_NAMES))
    nsec = min(kn.n_sectors, len(SECTOR_NAMES))
    ref_rate = np.round(rng.lognormal(np.log(1900), 0.35, ns), -1)
    popularity = rng.gamma(2.0, 1.0, ns)
    sec_freq = 1.0 / np.arange(1, nsec + 1) ** 0.8
    sec_pick = rng.permutation(len(SECTOR_NAMES))[:nsec]
    sectors = np.array(SECTOR_NAMES)[sec_pick]
    ent_sec = rng.choice(nsec, ne, p=sec_freq / sec_freq.sum())

    # risk: latent score cut at the quantiles of risk_mix
    score = SECTOR_HAZARD[sec_pick][ent_sec] + d_effect[ent_d] + rng.normal(0, 0.8, ne)
    cuts = np.quantile(score, np.cumsum(kn.risk_mix)[:3] / np.sum(kn.risk_mix))
    risk = 1 + np.searchsorted(cuts, score)
    eid = np.array([f"C{i + 1:05d}" for i in range(ne)])
    enterprises = pd.DataFrame({
        "enterprise_id": eid, "name": [f"Company {i + 1}" for i in range(ne)],
        "district_id": did[ent_d], "sector": sectors[ent_sec], "risk_level": risk})

    # demands: 1 + Poisson services, the mean growing with risk
    n_srv = np.minimum(1 + rng.poisson(kn.services_per_enterprise * (0.6 + 0.35 * risk)), ns)
    d_ent = np.repeat(np.arange(ne), n_srv)
    keys = rng.random((ne, ns)) ** (1.0 / popularity)  # weighted sampling without replacement
    order = np.argsort(-keys, axis=1)
    rank = np.concatenate([np.arange(k) for k in n_srv])
    d_srv = order[d_ent, rank]
    srt = np.lexsort((d_srv, d_ent))
    d_ent, d_srv = d_ent[srt], d_srv[srt]
    nd_ = len(d_ent)
    days = np.maximum(0.5, np.round(2 * rng.lognormal(np.log(1.5 + 0.9 * risk[d_ent]), 0.45,
                                                      nd_)) / 2)
    weight = np.full(nd_, np.nan)
    own = rng.random(nd_) < kn.weight_share
    weight[own] = rng.integers(1, 11, own.sum())
    demands = pd.DataFrame({"enterprise_id": eid[d_ent], "service_id": "",
                            "person_days": days, "weight": weight})
    sid = np.array([f"SV{s + 1}" for s in range(ns)])
    demands["service_id"] = sid[d_srv]

    # agencies
    q = 45 + 54 * rng.beta(*kn.quality_ab, na)
    status = rng.choice(4, na, p=np.asarray(kn.status_mix) / np.sum(kn.status_mix))
    level = rng.lognormal(0.0, kn.bid_spread, na)
    home = rng.integers(0, nd, na)
    n_area = np.clip(np.round(rng.normal(kn.area * nd, 0.3 * kn.area * nd + 0.5, na)), 1, nd)
    wide = rng.random(na) < kn.wide_share
    areas = [set(range(nd)) if wide[a] else set(_ring_area(rng, nd, int(home[a]),
                                                           int(n_area[a]))) for a in range(na)]
    # anchors: per district the best agencies serving it (or any, if too few) become
    # able to serve its mandatory demand
    anchor_of = np.zeros((na, nd), dtype=bool)
    for d in range(nd):
        serving = np.array([d in areas[a] for a in range(na)])
        rank_q = np.argsort(-(q + 100 * serving * (status <= 1)))
        chosen = rank_q[:min(kn.anchors, na)]
        anchor_of[chosen, d] = True
        for a in chosen:
            areas[a].add(d)
    anchor = anchor_of.any(axis=1)
    status[anchor] = 0
    q[anchor] = np.maximum(q[anchor], 80 + 15 * rng.random(anchor.sum()))
    q = np.round(q, 1)

    # bids: a share of (service, sector) pairs per agency, anchors on all pairs
    a_idx, s_idx, c_idx = np.meshgrid(np.arange(na), np.arange(ns), np.arange(nsec),
                                      indexing="ij")
    a_idx, s_idx, c_idx = a_idx.ravel(), s_idx.ravel(), c_idx.ravel()
    keep = (rng.random(len(a_idx)) < kn.bid_density) | anchor[a_idx]
    a_idx, s_idx, c_idx = a_idx[keep], s_idx[keep], c_idx[keep]
    noise = rng.lognormal(0.0, 0.05, len(a_idx))
    rate = ref_rate[s_idx] * level[a_idx] * noise
    odd = (rng.random(len(a_idx)) < kn.out_of_band) & ~anchor[a_idx]
    rate[odd] *= rng.choice([0.6, 1.7], odd.sum())
    rate = np.where(anchor[a_idx], ref_rate[s_idx] * np.clip(level[a_idx] * noise, 0.9, 1.25),
                    rate)
    aid = np.array([f"AG{a + 1:03d}" for a in range(na)])
    bids = pd.DataFrame({"agency_id": aid[a_idx], "service_id": sid[s_idx],
                         "sector": sectors[c_idx], "day_rate": np.round(rate)})

    # capacity: total demand x tightness split by a Dirichlet, anchors topped up for their
    # part of the mandatory load (twice over, so the share caps leave room)
    cap = days.sum() * kn.capacity_tightness * rng.dirichlet(np.full(na, 1.5))
    mand = risk[d_ent] == 4
    mand_days = np.bincount(ent_d[d_ent][mand], weights=days[mand], minlength=nd)
    need = (anchor_of * (2.0 * mand_days / np.maximum(anchor_of.sum(axis=0), 1))).sum(axis=1)
    cap = np.round(np.maximum(cap, need + 5))
    agencies = pd.DataFrame({
        "agency_id": aid, "name": [f"Agency {a + 1} Safety Services" for a in range(na)],
        "status": STATUSES[status], "quality": q, "capacity_days": cap,
        "districts": ["*" if wide[a] else ";".join(did[sorted(areas[a])]) for a in range(na)]})

    # quotes: some demands get a priced quote by an agency serving the district
    ref_cost = days * ref_rate[d_srv]
    qd = np.flatnonzero(rng.random(nd_) < kn.quote_share)
    qa = rng.integers(0, na, len(qd))
    ok = np.array([ent_d[d_ent[i]] in areas[a] for i, a in zip(qd, qa, strict=True)],
                  dtype=bool) & ~(anchor[qa] & mand[qd])
    qd, qa = qd[ok], qa[ok]
    q_days = np.maximum(0.5, days[qd] + rng.choice([-0.5, 0.0, 0.0, 0.5, 1.0], len(qd)))
    quotes = pd.DataFrame({
        "agency_id": aid[qa], "enterprise_id": eid[d_ent[qd]], "service_id": sid[d_srv[qd]],
        "price": np.round(ref_cost[qd] * rng.uniform(0.7, 1.45, len(qd)), 2),
        "person_days": q_days}).drop_duplicates(["agency_id", "enterprise_id", "service_id"])

    # conflicts: never an anchor with a mandatory enterprise
    ce = np.flatnonzero(rng.random(ne) < kn.conflict_share)
    ca = rng.integers(0, na, len(ce))
    ok = ~(anchor[ca] & (risk[ce] == 4))
    conflicts = pd.DataFrame({"agency_id": aid[ca[ok]], "enterprise_id": eid[ce[ok]]})

    # budget and caps: the mandatory load must be payable at 1.5x its reference cost
    mand_cost = np.bincount(ent_d[d_ent][mand], weights=ref_cost[mand], minlength=nd)
    d_ref = np.bincount(ent_d[d_ent], weights=ref_cost, minlength=nd)
    budget = max(kn.budget_tightness * ref_cost.sum(), 1.5 * mand_cost.sum() + 1e4)
    caps = np.where(rng.random(nd) < kn.cap_share,
                    np.maximum(budget * share * rng.uniform(0.6, 1.2, nd),
                               1.5 * mand_cost + 0.1 * d_ref), np.nan)
    districts = pd.DataFrame({"district_id": did, "name": dnames,
                              "budget_cap": np.round(caps, -3)})
    services = pd.DataFrame({"service_id": sid, "name": SERVICE_NAMES[:ns],
                             "reference_rate": ref_rate})
    name = f"othergen seed {seed}: {ne} enterprises, {na} agencies, {nd} districts"
    policy = _policy(name, budget, kn.policy)
    data = {"districts": districts, "services": services, "enterprises": enterprises,
            "demands": demands, "agencies": agencies, "bids": bids, "quotes": quotes,
            "conflicts": conflicts}
    return data, policy


def _number(v) -> str:
    """A plain number: integers without a decimal point, empty for NaN."""
    if isinstance(v, float):
        if np.isnan(v):
            return ""
        if v == int(v):
            return str(int(v))
        return repr(round(v, 6))
    return str(v)


def write(data: dict[str, pd.DataFrame], policy: dict, out: Path) -> Path:
    """Write the folder atomically (built beside `out`, then renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, df in data.items():
            df = df.copy()
            for c in df.columns:
                if df[c].dtype.kind == "f":
                    df[c] = [_number(v) for v in df[c]]
            df.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        with open(tmp / "policy.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(policy, fh, sort_keys=False)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def generate(n_enterprises: int, n_agencies: int, n_districts: int, seed: int,
             out: str | Path, **knobs) -> Path:
    """Write one city to `out` (replaced if present) and return its path."""
    data, policy = tables(n_enterprises, n_agencies, n_districts, seed, **knobs)
    return write(data, policy, Path(out))


def family_knobs(seed: int, n_enterprises: int = 1500) -> tuple[int, int, dict]:
    """Agencies, districts and knobs of the hidden-city family, drawn from the seed.

    The ranges span what issue 21 asks to vary: agencies per district, service areas, bid
    spreads, budget tightness, quotes, conflicts, capacity and risk mixes. Districts grow
    with the square root of the city (1,500 enterprises: 7-13; 120: 2-4).
    """
    rng = np.random.default_rng([seed, 2100])
    base = np.sqrt(n_enterprises) / 4
    n_districts = int(np.clip(round(base * rng.uniform(0.7, 1.4)), 2, 16))
    n_agencies = int(np.clip(round(n_districts * rng.uniform(2.0, 6.0)), 6, 80))
    r4 = rng.uniform(0.03, 0.10)
    r3 = rng.uniform(0.08, 0.22)
    r2 = rng.uniform(0.2, 0.4)
    knobs = {
        "n_services": int(rng.integers(4, 10)),
        "n_sectors": int(rng.integers(5, 12)),
        "district_skew": float(rng.choice([0.8, 2.0, 6.0])),
        "cap_share": float(rng.uniform(0.0, 0.6)),
        "risk_mix": (1 - r2 - r3 - r4, r2, r3, r4),
        "services_per_enterprise": float(rng.uniform(0.3, 1.2)),
        "bid_spread": float(rng.uniform(0.04, 0.25)),
        "bid_density": float(rng.uniform(0.35, 0.9)),
        "out_of_band": float(rng.uniform(0.0, 0.1)),
        "area": float(rng.uniform(0.15, 0.7)),
        "wide_share": float(rng.uniform(0.0, 0.35)),
        "capacity_tightness": float(rng.uniform(0.6, 1.8)),
        "budget_tightness": float(rng.uniform(0.3, 0.9)),
        "quote_share": float(rng.uniform(0.0, 0.12)),
        "conflict_share": float(rng.uniform(0.0, 0.04)),
    }
    return n_agencies, n_districts, knobs


def hidden_city(n_enterprises: int, seed: int, out: str | Path) -> Path:
    """One city of the hidden-city family (knobs drawn from the seed)."""
    na, nd, knobs = family_knobs(seed, n_enterprises)
    return generate(n_enterprises, na, nd, seed, out, **knobs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--enterprises", type=int, required=True)
    p.add_argument("--agencies", type=int, help="(with --districts) else drawn from the seed")
    p.add_argument("--districts", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE",
                   help="a Knobs field, e.g. budget_tightness=0.4 (repeatable)")
    args = p.parse_args(argv)
    if args.agencies is None or args.districts is None:
        na, nd, knobs = family_knobs(args.seed, args.enterprises)
    else:
        na, nd, knobs = args.agencies, args.districts, {}
    for item in args.knob:
        key, _, value = item.partition("=")
        knobs[key] = yaml.safe_load(value)
    generate(args.enterprises, na, nd, args.seed, args.out, **knobs)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Knobs", "family_knobs", "generate", "hidden_city", "tables"]
