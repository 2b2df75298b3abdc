"""Eligibility (spec section 4): which (enterprise, service, agency) triples may be chosen.

Vectorised over merges and boolean masks. Rules that hold for a whole offer (an agency's
status, its base quality, a bid's day rate against the reference rate, a service area) are
applied to the offer before it meets the demands, so kept-out offers never become triples;
rules that depend on the enterprise (probation vs risk, quality by risk, conflicts, quoted
prices) are applied per triple. Every kept-out offer or triple is listed with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.data.instance import Instance
from allocator.eligibility.continuity import (
    CODE_PINNED,
    CODE_TENURE,
    PINNED,
    TENURE,
    continuity_codes,
    continuity_detail,
    demand_rows,
)

#: relative tolerance of the price-band comparisons (so 0.8 x 1000 admits a cost of 800)
PRICE_RTOL = 1e-9

TRIPLE_COLUMNS = ["demand", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
                  "risk_level", "weight", "quality", "cost", "load", "reference_cost", "quoted"]
EXCLUDED_COLUMNS = ["agency_id", "enterprise_id", "service_id", "reason", "scope", "sector",
                    "district_id", "detail"]

# reason codes, in the order they are tested (the first failing one is reported); pins and
# rotation (eligibility/continuity.py) come after the spec's six
STATUS, QUALITY, AREA, CONFLICT, LOW, HIGH = (
    "status", "quality", "service_area", "conflict", "abnormally_low", "above_ceiling")


@dataclass(frozen=True)
class Eligibility:
    """Eligible triples (one row each, RangeIndex = triple number) and kept-out offers."""

    triples: pd.DataFrame
    excluded: pd.DataFrame


def plain_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with categorical (id) columns as plain strings, for small result tables."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return frame
    return frame.assign(**{c: frame[c].astype(str) for c in cats})


def _fmt(x: pd.Series) -> pd.Series:
    return x.map(lambda v: f"{v:g}", na_action="ignore").astype(object)


def _first_failure(tests: list[tuple[str, pd.Series]], index: pd.Index) -> pd.Series:
    """The code of the first failing test per row ('' where all pass)."""
    reason = pd.Series("", index=index, dtype=object)
    for code, mask in reversed(tests):  # earlier tests overwrite later ones
        reason = reason.mask(np.asarray(mask, dtype=bool), code)
    return reason


Detail = Callable[[pd.DataFrame], pd.Series]


def _details(frame: pd.DataFrame, texts: dict[str, Detail]) -> pd.Series:
    """Human detail for the rows already given a reason, built only for those rows."""
    detail = pd.Series("", index=frame.index, dtype=object)
    for code, make in texts.items():
        rows = frame.index[frame["reason"] == code]
        if len(rows):
            detail.loc[rows] = make(frame.loc[rows]).astype(object).to_numpy()
    return detail


def pair_in(a: pd.Series, b: pd.Series, ref_a: pd.Series, ref_b: pd.Series) -> np.ndarray:
    """Whether each (a, b) pair occurs among the (ref_a, ref_b) pairs; integer keys, fast."""
    if len(a) == 0 or len(ref_a) == 0:
        return np.zeros(len(a), dtype=bool)
    cats_a = pd.Index(ref_a.unique())
    cats_b = pd.Index(ref_b.unique())
    ka, kb = cats_a.get_indexer(a), cats_b.get_indexer(b)
    known = (ka >= 0) & (kb >= 0)
    keys = ka.astype(np.int64) * len(cats_b) + kb
    ref = cats_a.get_indexer(ref_a).astype(np.int64) * len(cats_b) + cats_b.get_indexer(ref_b)
    return known & np.isin(keys, ref)


def _ratio(sub: pd.DataFrame, num: str, den: str) -> pd.Series:
    return (sub[num] / sub[den]).map(lambda v: f"{v:.3f}")


def _detail_texts(pol) -> dict[str, Detail]:
    """Human detail per reason code, from the rows that failed it."""
    return {
        STATUS: lambda f: "status " + f["status"].astype(str) + " may not serve risk level "
        + f["risk_level"].astype(str),
        QUALITY: lambda f: "quality " + _fmt(f["quality"]) + " below the " + _fmt(f["needed"])
        + " required",
        AREA: lambda f: "agency does not serve district " + f["district_id"].astype(str),
        CONFLICT: lambda f: pd.Series("conflict of interest listed in conflicts.csv",
                                      index=f.index),
        LOW: lambda f: "cost is " + _ratio(f, "cost", "reference_cost")
        + f" x reference, below floor {pol.floor_ratio:g}",
        HIGH: lambda f: "cost is " + _ratio(f, "cost", "reference_cost")
        + f" x reference, above ceiling {pol.ceiling_ratio:g}",
    }


def classify(instance: Instance, cand: pd.DataFrame) -> pd.DataFrame:
    """Give each candidate triple its first failing rule (`reason`, '' if eligible) and detail.

    cand needs agency_id, enterprise_id, risk_level, district_id, cost, reference_cost.
    """
    pol = instance.policy
    ag = instance.agencies
    out = cand.copy()
    status = cand["agency_id"].map(ag["status"])
    out["quality"] = cand["agency_id"].map(ag["quality"]).astype(float)
    risk = cand["risk_level"].astype(int)
    out["needed"] = risk.map(pol.min_score_by_risk).astype(float).fillna(pol.min_score).clip(
        lower=pol.min_score)
    area, conf = instance.agency_districts, instance.conflicts
    tests = [
        (STATUS, ~(status.eq("active") | (status.eq("probation") & (risk <= 2)))),
        (QUALITY, out["quality"] < out["needed"]),
        (AREA, ~pair_in(cand["agency_id"], cand["district_id"], area["agency_id"],
                        area["district_id"])),
        (CONFLICT, pair_in(cand["agency_id"], cand["enterprise_id"], conf["agency_id"],
                           conf["enterprise_id"])),
        (LOW, cand["cost"] < pol.floor_ratio * cand["reference_cost"] * (1 - PRICE_RTOL)),
        (HIGH, cand["cost"] > pol.ceiling_ratio * cand["reference_cost"] * (1 + PRICE_RTOL)),
    ]
    rows = (cand["demand"].to_numpy() if "demand" in cand.columns
            else demand_rows(instance, cand))
    cont = continuity_codes(instance, rows, ag.index.get_indexer(cand["agency_id"].astype(str)))
    tests += [(PINNED, cont == CODE_PINNED), (TENURE, cont == CODE_TENURE)]
    out["reason"] = _first_failure(tests, cand.index)
    out["status"] = status
    out["detail"] = _details(out, _detail_texts(pol))
    _continuity_details(instance, out)
    return out.drop(columns=["needed", "status"])


def _continuity_details(instance: Instance, frame: pd.DataFrame) -> None:
    """Fill the detail of rows kept out by a pin or by rotation (in place)."""
    mask = frame["reason"].isin([PINNED, TENURE]).to_numpy()
    if mask.any():
        frame.loc[mask, "detail"] = continuity_detail(instance, frame.loc[mask]).to_numpy()


def _demands(instance: Instance) -> pd.DataFrame:
    dem = instance.demands.reset_index()
    dem["reference_cost"] = dem["person_days"] * dem["service_id"].map(
        instance.services["reference_rate"])
    return dem


def _quote_triples(instance: Instance, dem: pd.DataFrame) -> pd.DataFrame:
    q = instance.quotes.merge(dem, on=["enterprise_id", "service_id"], how="inner",
                              suffixes=("_quote", ""))
    q["cost"] = q["price"].astype(float)
    q["load"] = q["person_days_quote"].astype(float)
    q["quoted"] = True
    return q


@dataclass(frozen=True)
class _Ids:
    """The instance's ids as indexes: a row's code is its position (file order)."""

    agencies: pd.Index
    services: pd.Index
    districts: pd.Index
    sectors: pd.Index
    enterprises: pd.Index

    @classmethod
    def of(cls, instance: Instance) -> _Ids:
        sectors = pd.Index(pd.unique(pd.concat([instance.enterprises["sector"],
                                                 instance.bids["sector"]], ignore_index=True)))
        return cls(instance.agencies.index, instance.services.index, instance.districts.index,
                   sectors, instance.enterprises.index)


def _offer_key(ids: _Ids, service: np.ndarray, sector: np.ndarray,
               district: np.ndarray | None = None) -> np.ndarray:
    """One int64 per (service, sector[, district]) code combination."""
    key = service.astype(np.int64) * len(ids.sectors) + sector
    return key if district is None else key * len(ids.districts) + district


def offer_exclusions(instance: Instance, dem: pd.DataFrame, ids: _Ids | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bids into usable ones and kept-out offers (status, base quality, price, area).

    Returns (usable bids per served district, as integer codes: agency, service, sector,
    district and the day_rate; excluded offer rows).
    """
    pol = instance.policy
    ag = instance.agencies
    ids = ids or _Ids.of(instance)
    bids = instance.bids.copy()
    bids["status"] = bids["agency_id"].map(ag["status"])
    bids["quality"] = bids["agency_id"].map(ag["quality"]).astype(float)
    bids["reference_rate"] = bids["service_id"].map(instance.services["reference_rate"])
    ref = bids["reference_rate"]
    # a probation agency may still serve risk <= 2, so only suspended/blacklisted fail here
    bids["reason"] = _first_failure([
        (STATUS, ~bids["status"].isin(["active", "probation"])),
        (QUALITY, bids["quality"] < pol.min_score),
        (LOW, bids["day_rate"] < pol.floor_ratio * ref * (1 - PRICE_RTOL)),
        (HIGH, bids["day_rate"] > pol.ceiling_ratio * ref * (1 + PRICE_RTOL)),
    ], bids.index)
    bids["detail"] = _details(bids, {
        STATUS: lambda f: "status " + f["status"].astype(str),
        QUALITY: lambda f: "quality " + _fmt(f["quality"])
        + f" below min_score {pol.min_score:g}",
        LOW: lambda f: "day rate is " + _ratio(f, "day_rate", "reference_rate")
        + f" x reference rate, below floor {pol.floor_ratio:g}",
        HIGH: lambda f: "day rate is " + _ratio(f, "day_rate", "reference_rate")
        + f" x reference rate, above ceiling {pol.ceiling_ratio:g}",
    })
    # only offers that meet some demand are worth reporting
    d_key = np.unique(_offer_key(ids, ids.services.get_indexer(dem["service_id"]),
                                 ids.sectors.get_indexer(dem["sector"]),
                                 ids.districts.get_indexer(dem["district_id"])))
    n_d = len(ids.districts)
    wanted_ss = np.unique(d_key // n_d)  # (service, sector) keys some demand has
    b_ss = _offer_key(ids, ids.services.get_indexer(bids["service_id"]),
                      ids.sectors.get_indexer(bids["sector"]))
    bad = bids[(bids["reason"] != "").to_numpy() & np.isin(b_ss, wanted_ss)]
    excluded = [bad.assign(enterprise_id="", district_id="", scope="offer")]
    good_rows = np.flatnonzero((bids["reason"] == "").to_numpy())
    # each good offer reaches the districts where a demand of its (service, sector) lives:
    # wanted keys sorted by (service, sector) then district, so one range per offer
    lo = np.searchsorted(d_key, b_ss[good_rows] * n_d, side="left")
    hi = np.searchsorted(d_key, (b_ss[good_rows] + 1) * n_d, side="left")
    cnt = hi - lo
    offer = np.repeat(good_rows, cnt)
    pos = np.arange(int(cnt.sum())) + np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
    district = (d_key[pos] % n_d).astype(np.int32)
    agency = ids.agencies.get_indexer(bids["agency_id"]).astype(np.int32)[offer]
    area = _area_matrix(instance, ids)
    in_area = area[agency, district]
    out = bids.iloc[offer[~in_area]]
    out_area = pd.DataFrame({
        "agency_id": out["agency_id"].to_numpy(), "service_id": out["service_id"].to_numpy(),
        "sector": out["sector"].to_numpy(),
        "district_id": ids.districts[district[~in_area]].to_numpy(),
        "enterprise_id": "", "scope": "offer", "reason": AREA})
    out_area["detail"] = ("agency does not serve district "
                          + out_area["district_id"].astype(str)).astype(object)
    excluded.append(out_area)
    exc = pd.concat(excluded, ignore_index=True)[EXCLUDED_COLUMNS]
    b_svc = ids.services.get_indexer(bids["service_id"]).astype(np.int32)
    b_sec = ids.sectors.get_indexer(bids["sector"]).astype(np.int32)
    keep = offer[in_area]
    usable = pd.DataFrame({"agency": agency[in_area], "service": b_svc[keep],
                           "sector": b_sec[keep], "district": district[in_area],
                           "day_rate": bids["day_rate"].to_numpy(dtype=float)[keep]})
    usable["key"] = _offer_key(ids, usable["service"].to_numpy(), usable["sector"].to_numpy(),
                               usable["district"].to_numpy())
    return usable, exc


def _area_matrix(instance: Instance, ids: _Ids) -> np.ndarray:
    """area[a, d]: agency code a serves district code d."""
    area = np.zeros((len(ids.agencies), len(ids.districts)), dtype=bool)
    pairs = instance.agency_districts
    a = ids.agencies.get_indexer(pairs["agency_id"])
    d = ids.districts.get_indexer(pairs["district_id"])
    ok = (a >= 0) & (d >= 0)
    area[a[ok], d[ok]] = True
    return area


@dataclass
class _Candidates:
    """Candidate triples as parallel arrays, sorted by (demand, agency id as text)."""

    demand: np.ndarray  # int32, row of instance.demands
    agency: np.ndarray  # smallest int, position in instance.agencies
    cost: np.ndarray
    load: np.ndarray
    quoted: np.ndarray


def code_dtype(n: int) -> np.dtype:
    """The integer dtype pandas uses for the codes of a categorical with n categories."""
    for dt in (np.int8, np.int16, np.int32):
        if n < np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _candidates(usable: pd.DataFrame, quotes: _Candidates | None, rank: np.ndarray,
                key_of_demand: np.ndarray, d_days: np.ndarray, n_agencies: int) -> _Candidates:
    """Every usable offer against every demand of its service, sector and district, plus
    the quotes (a quote replaces the bid of the same agency for that demand).

    No merge of frames: offers sorted by (key, agency text order), one range per demand,
    so the candidates come out already in (demand, agency) order.
    """
    a_dtype = code_dtype(n_agencies)
    u_agency = usable["agency"].to_numpy()
    okey = _offer_key_of(usable)
    order = np.lexsort((rank[u_agency], okey))
    okey = okey[order]
    lo = np.searchsorted(okey, key_of_demand, side="left")
    cnt = np.searchsorted(okey, key_of_demand, side="right") - lo
    n = int(cnt.sum())
    demand = np.repeat(np.arange(len(key_of_demand), dtype=np.int32), cnt)
    pos = np.repeat((lo - (np.cumsum(cnt) - cnt)).astype(np.int64), cnt)
    pos += np.arange(n, dtype=np.int64)
    offer = order[pos]
    del pos
    agency = u_agency.astype(a_dtype)[offer]
    load = d_days[demand]
    cost = load * usable["day_rate"].to_numpy(dtype=float)[offer]
    del offer
    quoted = np.zeros(n, dtype=bool)
    if quotes is None or not len(quotes.demand):
        return _Candidates(demand, agency, cost, load, quoted)
    key = demand.astype(np.int64) * n_agencies + rank[agency]
    qkey = quotes.demand.astype(np.int64) * n_agencies + rank[quotes.agency]
    qo = np.argsort(qkey, kind="stable")
    qkey = qkey[qo]
    q = _Candidates(*(getattr(quotes, f)[qo] for f in ("demand", "agency", "cost", "load",
                                                          "quoted")))
    at = np.searchsorted(key, qkey)
    del key
    hit = np.zeros(len(qkey), dtype=bool)
    inside = at < n
    hit[inside] = (demand[at[inside]] == q.demand[inside]) & (agency[at[inside]]
                                                              == q.agency[inside])
    cost[at[hit]], load[at[hit]], quoted[at[hit]] = q.cost[hit], q.load[hit], True
    new = ~hit
    if not new.any():
        return _Candidates(demand, agency, cost, load, quoted)
    ins = at[new]
    return _Candidates(np.insert(demand, ins, q.demand[new]),
                       np.insert(agency, ins, q.agency[new].astype(a_dtype)),
                       np.insert(cost, ins, q.cost[new]), np.insert(load, ins, q.load[new]),
                       np.insert(quoted, ins, True))


def _offer_key_of(usable: pd.DataFrame) -> np.ndarray:
    """The (service, sector, district) key of each usable offer (as _offer_key)."""
    return usable["key"].to_numpy()


def _reasons(instance: Instance, ids: _Ids, c: _Candidates, d_risk: np.ndarray,
             d_dist: np.ndarray, d_ent: np.ndarray, d_ref: np.ndarray) -> np.ndarray:
    """Code of the first failing rule per candidate (0 = eligible, k = REASONS[k - 1]).

    The same tests in the same order as `classify`, on arrays.
    """
    pol, ag = instance.policy, instance.agencies
    status = ag["status"].to_numpy()
    st = np.where(status == "active", 1, np.where(status == "probation", 2, 0)).astype(np.int8)
    a_status = st[c.agency]
    risk = d_risk[c.demand]
    fail_status = ~((a_status == 1) | ((a_status == 2) & (risk <= 2)))
    del a_status
    needed = _needed_by_risk(pol)
    fail_quality = ag["quality"].to_numpy(dtype=float)[c.agency] < needed[risk]
    del risk
    fail_area = ~_area_matrix(instance, ids)[c.agency, d_dist[c.demand]]
    fail_conflict = np.zeros(len(c.demand), dtype=bool)
    conf = instance.conflicts
    if len(conf):
        ca = ids.agencies.get_indexer(conf["agency_id"]).astype(np.int64)
        ce = ids.enterprises.get_indexer(conf["enterprise_id"]).astype(np.int64)
        flagged = np.zeros(len(ids.enterprises), dtype=bool)
        flagged[ce[ce >= 0]] = True
        ent = d_ent[c.demand]
        rows = np.flatnonzero(flagged[ent])  # only enterprises named in a conflict
        keys = ent[rows].astype(np.int64) * len(ids.agencies) + c.agency[rows]
        fail_conflict[rows] = np.isin(keys, ce * len(ids.agencies) + ca)
    ref = d_ref[c.demand]
    fail_low = c.cost < pol.floor_ratio * ref * (1 - PRICE_RTOL)
    fail_high = c.cost > pol.ceiling_ratio * ref * (1 + PRICE_RTOL)
    reason = np.zeros(len(c.demand), dtype=np.int8)
    tests = [fail_status, fail_quality, fail_area, fail_conflict, fail_low, fail_high]
    for k in range(len(tests), 0, -1):  # earlier tests overwrite later ones
        reason[tests[k - 1]] = k
    return reason


REASONS = (STATUS, QUALITY, AREA, CONFLICT, LOW, HIGH, PINNED, TENURE)


def _continuity_reasons(instance: Instance, c: _Candidates, reason: np.ndarray) -> None:
    """Candidates that pass the spec's six rules but a pin or rotation keeps out (in place)."""
    cont = continuity_codes(instance, c.demand, c.agency)
    if cont.any():
        free = reason == 0
        reason[free & (cont == CODE_PINNED)] = REASONS.index(PINNED) + 1
        reason[free & (cont == CODE_TENURE)] = REASONS.index(TENURE) + 1


def _needed_by_risk(pol) -> np.ndarray:
    """Least quality per risk level 0-4: max(min_score, min_score_by_risk[level])."""
    out = np.full(5, float(pol.min_score))
    for level, score in (pol.min_score_by_risk or {}).items():
        if 0 <= int(level) < 5 and score is not None:
            out[int(level)] = max(float(score), float(pol.min_score))
    return out


def compute_eligibility(instance: Instance) -> Eligibility:
    """All eligible triples with cost, load, weight and quality; all kept-out offers.

    Works on integer codes and numpy arrays (the province has 16 million triples): ids are
    categoricals in the triples frame, so they still read and write as the original strings.
    Triples are ordered by demand, then agency id.
    """
    from allocator.eligibility.incumbents import check_assign_pins  # builds on this module

    check_assign_pins(instance)
    ids = _Ids.of(instance)
    dem = _demands(instance)
    d_svc = ids.services.get_indexer(dem["service_id"]).astype(code_dtype(len(ids.services)))
    d_sec = ids.sectors.get_indexer(dem["sector"]).astype(code_dtype(len(ids.sectors)))
    d_dist = ids.districts.get_indexer(dem["district_id"]).astype(
        code_dtype(len(ids.districts)))
    d_ent = ids.enterprises.get_indexer(dem["enterprise_id"]).astype(
        code_dtype(len(ids.enterprises)))
    d_risk = dem["risk_level"].to_numpy().astype(np.int8)
    d_days = dem["person_days"].to_numpy(dtype=float)
    d_ref = dem["reference_cost"].to_numpy(dtype=float)
    n_ag = len(ids.agencies)
    rank = np.empty(n_ag, dtype=np.int64)  # agency codes in the text order of their ids
    rank[np.argsort(ids.agencies.to_numpy(), kind="stable")] = np.arange(n_ag)
    usable, excluded_offers = offer_exclusions(instance, dem, ids)
    quotes = _quote_triples(instance, dem)
    q = None
    if len(quotes):
        q = _Candidates(quotes["demand"].to_numpy(dtype=np.int32),
                        ids.agencies.get_indexer(quotes["agency_id"]),
                        quotes["cost"].to_numpy(dtype=float),
                        quotes["load"].to_numpy(dtype=float),
                        np.ones(len(quotes), dtype=bool))
    cand = _candidates(usable, q, rank, _offer_key(ids, d_svc, d_sec, d_dist), d_days, n_ag)
    reason = _reasons(instance, ids, cand, d_risk, d_dist, d_ent, d_ref)
    _continuity_reasons(instance, cand, reason)
    triple_excl = _excluded_triples(instance, ids, cand, reason, dem)
    ok = np.flatnonzero(reason == 0) if reason.any() else None
    del reason

    def kept(values: np.ndarray) -> np.ndarray:
        return values if ok is None else values[ok]

    demand, agency = kept(cand.demand), kept(cand.agency)
    n = len(demand)
    # the five money/score columns as one 2-D float block: pandas keeps it without copying
    floats = np.empty((n, 5), dtype=float, order="F")
    floats[:, 0] = dem["weight"].to_numpy(dtype=float)[demand]
    floats[:, 1] = instance.agencies["quality"].to_numpy(dtype=float)[agency]
    floats[:, 2] = kept(cand.cost)
    floats[:, 3] = kept(cand.load)
    floats[:, 4] = d_ref[demand]
    quoted = kept(cand.quoted)
    del cand
    triples = pd.DataFrame(floats, columns=["weight", "quality", "cost", "load",
                                            "reference_cost"], copy=False)
    del floats
    front = {
        "demand": demand,
        "enterprise_id": pd.Categorical.from_codes(d_ent[demand], categories=ids.enterprises),
        "service_id": pd.Categorical.from_codes(d_svc[demand], categories=ids.services),
        "agency_id": pd.Categorical.from_codes(agency, categories=ids.agencies),
        "district_id": pd.Categorical.from_codes(d_dist[demand], categories=ids.districts),
        "sector": pd.Categorical.from_codes(d_sec[demand], categories=ids.sectors),
        "risk_level": d_risk[demand]}
    for k, (name, values) in enumerate(front.items()):
        triples.insert(k, name, values)
    triples["quoted"] = quoted
    triples.index.name = "triple"
    excluded = pd.concat([triple_excl, excluded_offers], ignore_index=True)
    return Eligibility(triples=triples, excluded=excluded.reset_index(drop=True))


def _excluded_triples(instance: Instance, ids: _Ids, c: _Candidates, reason: np.ndarray,
                      dem: pd.DataFrame) -> pd.DataFrame:
    """excluded.csv rows (scope triple) of the candidates that failed a rule, with detail."""
    pol, ag = instance.policy, instance.agencies
    rows = np.flatnonzero(reason > 0)
    demand, agency = c.demand[rows], c.agency[rows]
    d = dem.iloc[demand]
    f = pd.DataFrame({
        "agency_id": ids.agencies[agency].to_numpy(),
        "enterprise_id": d["enterprise_id"].to_numpy(),
        "service_id": d["service_id"].to_numpy(),
        "reason": np.array(("",) + REASONS, dtype=object)[reason[rows]],
        "scope": "triple",
        "sector": d["sector"].to_numpy(), "district_id": d["district_id"].to_numpy(),
        "risk_level": d["risk_level"].to_numpy(),
        "status": ag["status"].to_numpy()[agency],
        "quality": ag["quality"].to_numpy(dtype=float)[agency],
        "needed": _needed_by_risk(pol)[d["risk_level"].to_numpy().astype(int)],
        "cost": c.cost[rows], "reference_cost": d["reference_cost"].to_numpy(dtype=float)})
    f["detail"] = _details(f, _detail_texts(pol))
    _continuity_details(instance, f)
    return f[EXCLUDED_COLUMNS]


def candidate_reasons(instance: Instance, demand_ids: np.ndarray | pd.Index) -> pd.DataFrame:
    """Every offer that could meet the given demands, each with its first failing rule.

    For explaining demands no agency can take; not used to build the model.
    """
    dem = _demands(instance)
    dem = dem[dem["demand"].isin(demand_ids)]
    bids = instance.bids.merge(dem, on=["service_id", "sector"])
    bids["cost"] = bids["person_days"] * bids["day_rate"]
    bids["quoted"] = False
    quotes = _quote_triples(instance, dem)
    if len(quotes):
        qkey = pd.MultiIndex.from_frame(quotes[["agency_id", "enterprise_id", "service_id"]])
        bkey = pd.MultiIndex.from_frame(bids[["agency_id", "enterprise_id", "service_id"]])
        bids = bids[~bkey.isin(qkey)]
    cols = ["demand", "enterprise_id", "service_id", "agency_id", "district_id", "sector",
            "risk_level", "cost", "reference_cost", "quoted"]
    cand = pd.concat([bids[cols], quotes[cols]], ignore_index=True)
    return classify(instance, cand)
