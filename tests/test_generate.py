"""The synthetic generator, the shipped k_city data and the hand-checkable tiny instance.

The eligibility and brute-force code here is deliberately independent of the solver modules:
it re-reads the CSV files with pandas and applies spec section 4 literally.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from allocator.core.folders import MARKER
from allocator.data.generate import COLUMNS, SECTORS, generate_instance, write_instance

ROOT = Path(__file__).resolve().parents[1]
K_CITY = ROOT / "instances" / "k_city"
TINY = ROOT / "instances" / "tiny"
ID_COLS = {c: str for c in ("district_id", "enterprise_id", "agency_id", "service_id")}

# The tiny instance's optimum as stated in instances/tiny/README.md.
TINY_COVERAGE = 42
TINY_QUALITY = 3712
TINY_COST = 79300
TINY_PLAN = {
    ("E01", "S1"): "A1", ("E01", "S2"): "A1", ("E02", "S1"): "A1", ("E03", "S3"): "A3",
    ("E04", "S1"): "A1", ("E05", "S1"): "A5", ("E06", "S3"): "A3", ("E07", "S1"): None,
    ("E08", "S2"): "A5", ("E09", "S2"): "A5", ("E10", "S3"): "A3", ("E11", "S1"): "A1",
    ("E12", "S3"): "A3",
}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def read_instance(folder: Path) -> dict:
    data = {}
    for name in COLUMNS:
        path = folder / f"{name}.csv"
        data[name] = pd.read_csv(path, dtype=ID_COLS, keep_default_na=True,
                                 encoding="utf-8-sig") if path.exists() \
            else pd.DataFrame(columns=COLUMNS[name])
    data["policy"] = yaml.safe_load((folder / "policy.yaml").read_text(encoding="utf-8"))
    return data


def from_memory(data: dict, tmp_path: Path) -> dict:
    """Round-trip through files so tests see exactly what a user sees."""
    write_instance(data, tmp_path / "inst")
    return read_instance(tmp_path / "inst")


def demand_table(data: dict) -> pd.DataFrame:
    pol = data["policy"]
    weights = {int(k): v for k, v in pol["coverage"]["weights"].items()}
    d = data["demands"].merge(data["enterprises"], on="enterprise_id", validate="many_to_one")
    d = d.merge(data["services"][["service_id", "reference_rate"]], on="service_id",
                validate="many_to_one")
    d["ref_cost"] = d["person_days"] * d["reference_rate"]
    d["w"] = d["weight"].astype(float).fillna(d["risk_level"].map(weights))
    return d


def eligible_triples(data: dict) -> pd.DataFrame:
    """All eligible (demand, agency) triples with cost and load, spec section 4, in pandas."""
    pol = data["policy"]
    q = pol["quality"]
    by_risk = {int(k): v for k, v in (q.get("min_score_by_risk") or {}).items()}
    floor, ceil = pol["price"]["floor_ratio"], pol["price"]["ceiling_ratio"]
    d = demand_table(data)
    x = d.merge(data["agencies"], how="cross")
    x = x.merge(data["bids"], on=["agency_id", "service_id", "sector"], how="left")
    quotes = data["quotes"].rename(columns={"person_days": "quote_days"})
    x = x.merge(quotes, on=["agency_id", "enterprise_id", "service_id"], how="left")
    quoted = x["price"].notna()
    x["cost"] = np.where(quoted, x["price"], x["person_days"] * x["day_rate"])
    x["load"] = np.where(quoted, x["quote_days"], x["person_days"])
    ok = quoted | x["day_rate"].notna()
    ok &= (x["status"] == "active") | ((x["status"] == "probation") & (x["risk_level"] <= 2))
    need = x["risk_level"].map(lambda r: max(q["min_score"], by_risk.get(int(r), 0)))
    ok &= x["quality"] >= need
    areas = x["districts"].astype(str).str.split(";")
    ok &= (x["districts"] == "*") | pd.Series(
        [dist in area for dist, area in zip(x["district_id"], areas, strict=True)], index=x.index)
    conflicts = data["conflicts"].assign(conflict=True)
    x = x.merge(conflicts, on=["agency_id", "enterprise_id"], how="left")
    ok &= x["conflict"].isna().to_numpy()
    ok &= (x["cost"] >= floor * x["ref_cost"] - 1e-9) & (x["cost"] <= ceil * x["ref_cost"] + 1e-9)
    return x[ok.to_numpy()].reset_index(drop=True)


def brute_force(folder: Path):
    """Enumerate every assignment of the instance; return the lexicographic optima.

    Returns (coverage, quality, cost, plans) where plans lists every optimal assignment as a
    dict {(enterprise, service): agency or None}.
    """
    data = read_instance(folder)
    pol = data["policy"]
    am = pol["anti_monopoly"]
    dem = demand_table(data).reset_index(drop=True)
    el = eligible_triples(data)
    agencies = list(data["agencies"]["agency_id"])
    a_index = {a: i for i, a in enumerate(agencies)}
    quality = dict(zip(data["agencies"]["agency_id"], data["agencies"]["quality"], strict=True))
    capacity = dict(zip(data["agencies"]["agency_id"], data["agencies"]["capacity_days"],
                        strict=True))
    districts = list(data["districts"]["district_id"])
    d_index = {d: i for i, d in enumerate(districts)}
    caps = dict(zip(data["districts"]["district_id"], data["districts"]["budget_cap"],
                    strict=True))
    mandatory = set(pol["coverage"]["mandatory_levels"] or [])

    options = []  # per demand: list of (agency index or -1, cost, load)
    for _, row in dem.iterrows():
        rows = el[(el["enterprise_id"] == row["enterprise_id"])
                  & (el["service_id"] == row["service_id"])]
        opts = [(a_index[r.agency_id], float(r.cost), float(r.load)) for r in rows.itertuples()]
        if row["risk_level"] not in mandatory:
            opts.append((-1, 0.0, 0.0))
        options.append(opts)
    sizes = [len(o) for o in options]
    combos = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    n, m = combos.shape
    agent = np.empty((n, m), dtype=np.int64)
    cost = np.empty((n, m))
    load = np.empty((n, m))
    for j, opts in enumerate(options):
        table = np.array(opts)
        agent[:, j] = table[combos[:, j], 0].astype(np.int64)
        cost[:, j] = table[combos[:, j], 1]
        load[:, j] = table[combos[:, j], 2]
    served = agent >= 0
    w = dem["w"].to_numpy()
    q_of = np.array([quality[a] for a in agencies] + [0.0])  # index -1 -> 0
    dist = dem["district_id"].map(d_index).to_numpy()

    feasible = cost.sum(axis=1) <= pol["budget"]["total"] + 1e-9
    for a, ai in a_index.items():
        feasible &= (load * (agent == ai)).sum(axis=1) <= capacity[a] + 1e-9
    dist_cost = np.stack([(cost * (dist == di)).sum(axis=1) for di in range(len(districts))], 1)
    dist_w_served = np.stack([(w * served * (dist == di)).sum(axis=1)
                              for di in range(len(districts))], 1)
    ratio = pol["coverage"]["min_district_ratio"] or 0.0
    for d, di in d_index.items():
        cap = caps[d]
        if pd.notna(cap):
            feasible &= dist_cost[:, di] <= cap + 1e-9
        feasible &= dist_w_served[:, di] >= ratio * w[dist == di].sum() - 1e-9
        in_d = dist == di
        active = np.zeros(n, dtype=np.int64)
        for ai in range(len(agencies)):
            mine = (agent == ai) & in_d
            a_cost = (cost * mine).sum(axis=1)
            active += mine.any(axis=1)
            if am.get("max_share_in_district") is not None:
                feasible &= a_cost <= am["max_share_in_district"] * dist_cost[:, di] + 1e-9
        any_served = (served & in_d).any(axis=1)
        feasible &= ~any_served | (active >= (am.get("min_agencies_per_district") or 0))
    if am.get("max_share_in_city") is not None:
        total = cost.sum(axis=1)
        for ai in range(len(agencies)):
            feasible &= (cost * (agent == ai)).sum(axis=1) <= am["max_share_in_city"] * total + 1e-9
    if am.get("max_districts_per_agency") is not None:
        for ai in range(len(agencies)):
            n_d = sum(((agent == ai) & (dist == di)).any(axis=1) for di in range(len(districts)))
            feasible &= n_d <= am["max_districts_per_agency"]

    coverage = (w * served).sum(axis=1)
    qual = (w * q_of[agent]).sum(axis=1)
    total_cost = cost.sum(axis=1)
    assert feasible.any(), "tiny instance must be feasible"
    best = feasible & np.isclose(coverage, coverage[feasible].max())
    best &= np.isclose(qual, qual[best].max())
    best &= np.isclose(total_cost, total_cost[best].min())
    keys = list(zip(dem["enterprise_id"], dem["service_id"], strict=True))
    plans = [{k: (agencies[a] if a >= 0 else None) for k, a in zip(keys, agent[i], strict=True)}
             for i in np.flatnonzero(best)]
    i = np.flatnonzero(best)[0]
    return coverage[i], qual[i], total_cost[i], plans


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------
def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != MARKER}


def test_same_seed_identical_files_different_seed_differs(tmp_path):
    write_instance(generate_instance(400, 15, 5, seed=7), tmp_path / "a")
    write_instance(generate_instance(400, 15, 5, seed=7), tmp_path / "b")
    write_instance(generate_instance(400, 15, 5, seed=8), tmp_path / "c")
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert set(a) == {f"{n}.csv" for n in COLUMNS} | {"policy.yaml"}
    assert a == b
    assert a["enterprises.csv"] != c["enterprises.csv"]
    assert a["bids.csv"] != c["bids.csv"]


def test_write_is_atomic_replace(tmp_path):
    out = tmp_path / "inst"
    write_instance(generate_instance(50, 6, 3, seed=1), out)
    write_instance(generate_instance(60, 6, 3, seed=2), out)
    assert len(pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig")) == 60
    assert [p.name for p in tmp_path.iterdir()] == ["inst"]  # no temp dirs left behind


def check_shape(data: dict, n_e: int, n_a: int, n_d: int) -> None:
    for name, cols in COLUMNS.items():
        assert list(data[name].columns) == cols, name
    dist, srv, ent, dem, ag, bids, quotes, conf = (data[n] for n in COLUMNS)
    assert (len(ent), len(ag), len(dist)) == (n_e, n_a, n_d)
    for df, key in [(dist, ["district_id"]), (srv, ["service_id"]), (ent, ["enterprise_id"]),
                    (ag, ["agency_id"]), (dem, ["enterprise_id", "service_id"]),
                    (bids, ["agency_id", "service_id", "sector"]),
                    (quotes, ["agency_id", "enterprise_id", "service_id"]),
                    (conf, ["agency_id", "enterprise_id"])]:
        assert not df.duplicated(key).any(), key
    width = max(2, len(str(n_d)))
    assert list(dist["district_id"]) == [f"D{i:0{width}d}" for i in range(1, n_d + 1)]
    assert dist["name"].notna().all()
    assert dist["budget_cap"].isna().any()
    # services
    assert len(srv) >= 5 and srv["reference_rate"].between(1000, 3000).all()
    # enterprises
    assert set(ent["district_id"]) <= set(dist["district_id"])
    assert set(ent["sector"]) <= set(SECTORS)
    assert ent["risk_level"].isin([1, 2, 3, 4]).all()
    # demands
    assert set(dem["enterprise_id"]) <= set(ent["enterprise_id"])
    assert set(dem["service_id"]) <= set(srv["service_id"])
    assert (dem["person_days"] > 0).all()
    per_ent = dem.groupby("enterprise_id").size()
    assert per_ent.between(1, 3).all() and len(per_ent) == n_e
    assert dem["weight"].isna().mean() > 0.9
    # person-days grow with risk
    days = dem.merge(ent, on="enterprise_id").groupby("risk_level")["person_days"].mean()
    assert days.is_monotonic_increasing
    # agencies
    assert ag["status"].isin(["active", "probation", "suspended", "blacklisted"]).all()
    assert (ag["status"] == "active").mean() > 0.5
    assert ag["quality"].between(0, 100).all()
    assert (ag["capacity_days"] > 0).all()
    for area in ag["districts"]:
        assert area == "*" or set(area.split(";")) <= set(dist["district_id"])
    # bids, quotes, conflicts reference real things
    assert set(bids["agency_id"]) <= set(ag["agency_id"])
    assert set(bids["service_id"]) <= set(srv["service_id"])
    assert set(bids["sector"]) <= set(SECTORS)
    assert (bids["day_rate"] > 0).all()
    qd = quotes.merge(dem, on=["enterprise_id", "service_id"], how="left", indicator=True)
    assert (qd["_merge"] == "both").all()
    assert set(quotes["agency_id"]) <= set(ag["agency_id"])
    assert (quotes["price"] > 0).all() and (quotes["person_days"] > 0).all()
    assert set(conf["agency_id"]) <= set(ag["agency_id"])
    assert set(conf["enterprise_id"]) <= set(ent["enterprise_id"])
    # policy: the spec's section 3 keys, nothing else
    pol = data["policy"]
    assert list(pol) == ["name", "budget", "coverage", "anti_monopoly", "quality", "price",
                         "solver"]
    assert pol["budget"]["total"] > 0


def check_realism(data: dict) -> None:
    ent, ag, bids, srv = data["enterprises"], data["agencies"], data["bids"], data["services"]
    share = ent["risk_level"].value_counts(normalize=True)
    assert share[1] > share[2] > share[3] > share[4] > 0
    assert share[1] > 0.45 and share[4] < 0.08
    risky = ent["sector"].isin(["hazardous_chemicals", "mining", "hazardous_waste"])
    assert ent.loc[risky, "risk_level"].mean() > ent.loc[~risky, "risk_level"].mean() + 0.3
    assert set(ag["status"]) == {"active", "probation", "suspended", "blacklisted"}
    assert ag["quality"].min() < 60 and ag["quality"].max() > 90
    assert (ag["districts"] == "*").any() and (ag["districts"] != "*").any()
    ratio = bids.merge(srv, on="service_id").eval("day_rate / reference_rate")
    assert (ratio < 0.8).any() and (ratio > 1.5).any()
    assert ratio.between(0.8, 1.5).mean() > 0.85
    assert len(data["quotes"]) > 0 and len(data["conflicts"]) > 0


def check_budget_and_major_risk(data: dict) -> None:
    dem = demand_table(data)
    total_ref = dem["ref_cost"].sum()
    budget = data["policy"]["budget"]["total"]
    major = dem[dem["risk_level"] == 4]
    assert budget < 0.6 * total_ref
    assert budget >= major["ref_cost"].sum()
    caps = data["districts"].set_index("district_id")["budget_cap"].dropna()
    major_by_d = major.groupby("district_id")["ref_cost"].sum()
    assert (caps >= major_by_d.reindex(caps.index).fillna(0)).all()
    el = eligible_triples(data)
    n_el = el.groupby(["enterprise_id", "service_id"]).size()
    counts = n_el.reindex(pd.MultiIndex.from_frame(major[["enterprise_id", "service_id"]]))
    assert counts.notna().all(), "a level-4 demand has no eligible agency"
    assert (counts >= 3).all()
    # enough distinct strong agencies in every district for min_agencies_per_district
    am = data["policy"]["anti_monopoly"]
    strong = el[el["risk_level"] == 4].groupby("district_id")["agency_id"].nunique()
    assert (strong >= am["min_agencies_per_district"]).all()
    # ... with room for all level-4 load among them
    load4 = major["person_days"].sum()
    cap_strong = data["agencies"].set_index("agency_id").loc[
        el.loc[el["risk_level"] == 4, "agency_id"].unique(), "capacity_days"].sum()
    assert cap_strong >= load4


def test_generated_instance_shape_and_realism(tmp_path):
    data = from_memory(generate_instance(1500, 30, 8, seed=11), tmp_path)
    check_shape(data, 1500, 30, 8)
    check_realism(data)
    check_budget_and_major_risk(data)


@pytest.mark.parametrize("n_e,n_a,n_d,seed", [(1, 3, 1, 0), (12, 3, 5, 1), (40, 5, 2, 2),
                                               (300, 4, 12, 3), (800, 120, 1, 4),
                                               (2000, 10, 120, 5)])
def test_generator_edge_sizes(n_e, n_a, n_d, seed):
    data = generate_instance(n_e, n_a, n_d, seed)  # internal witness asserts must hold
    assert len(data["enterprises"]) == n_e and len(data["agencies"]) == n_a
    dem = demand_table(data)
    if (dem["risk_level"] == 4).any():
        el = eligible_triples(data)
        major = dem[dem["risk_level"] == 4]
        got = el.merge(major[["enterprise_id", "service_id"]])
        assert got.groupby(["enterprise_id", "service_id"]).size().min() >= 3
        assert len(got.drop_duplicates(["enterprise_id", "service_id"])) == len(major)


def test_generator_rejects_too_few_agencies():
    with pytest.raises(ValueError):
        generate_instance(10, 2, 2, seed=0)


# ---------------------------------------------------------------------------------------------
# shipped k_city
# ---------------------------------------------------------------------------------------------
def test_k_city_shape_realism_budget():
    data = read_instance(K_CITY)
    check_shape(data, 2000, 40, 10)
    check_realism(data)
    check_budget_and_major_risk(data)


def test_k_city_is_reproducible_from_its_seed(tmp_path):
    name = yaml.safe_load((K_CITY / "policy.yaml").read_text())["name"]
    seed = int(re.search(r"seed (\d+)", name).group(1))
    write_instance(generate_instance(2000, 40, 10, seed), tmp_path / "k")
    assert _files(tmp_path / "k") == _files(K_CITY)


# ---------------------------------------------------------------------------------------------
# tiny: the README's optimum, checked by exhaustive enumeration
# ---------------------------------------------------------------------------------------------
def test_tiny_brute_force_matches_readme():
    coverage, quality, cost, plans = brute_force(TINY)
    assert coverage == pytest.approx(TINY_COVERAGE)
    assert quality == pytest.approx(TINY_QUALITY)
    assert cost == pytest.approx(TINY_COST)
    assert plans == [TINY_PLAN]  # unique optimum
    readme = (TINY / "README.md").read_text(encoding="utf-8")
    for value in (f"{TINY_COVERAGE}", f"{TINY_QUALITY:,}", f"{TINY_COST:,}"):
        assert value in readme


def test_tiny_eligibility_stories():
    data = read_instance(TINY)
    el = eligible_triples(data)
    triples = set(zip(el["agency_id"], el["enterprise_id"], el["service_id"], strict=True))
    assert not any(a == "A4" for a, _, _ in triples)  # suspended
    assert ("A5", "E07", "S1") not in triples  # abnormally low bid (0.75 x reference)
    assert ("A5", "E11", "S1") not in triples
    assert ("A1", "E08", "S2") not in triples  # conflict of interest
    assert ("A3", "E05", "S1") not in triples  # probation cannot take risk level 3
    assert ("A5", "E09", "S2") in triples  # only through its quote (bid is 1.6 x reference)
    row = el[(el["agency_id"] == "A5") & (el["enterprise_id"] == "E09")].iloc[0]
    assert row["cost"] == 11000
