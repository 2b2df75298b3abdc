"""Demands in classes of identical columns, and the triples as arrays over integer codes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from allocator.data.funding import government_cost
from allocator.data.instance import Instance
from allocator.eligibility.continuity import tenure_pairs


@dataclass
class Classes:
    """Demands grouped into classes of identical columns (see the module docstring)."""

    of_demand: np.ndarray  # class of each demand
    rep: np.ndarray  # representative demand of each class
    size: np.ndarray  # members per class

    @classmethod
    def of(cls, instance: Instance, triples: pd.DataFrame,
           solo_demands: np.ndarray | None = None) -> Classes:
        """Group the instance's demands; a demand whose triples differ from its class's
        representative's in number is put in a class of its own (a safety net), and so is
        every demand of `solo_demands` (pinned, or fixed to its incumbent) and every demand
        a pin or rotation touches (its own triples differ)."""
        dem = instance.demands
        n = len(dem)
        solo_ent = pd.Index(instance.quotes["enterprise_id"]).union(
            pd.Index(instance.conflicts["enterprise_id"]))
        solo = dem["enterprise_id"].isin(solo_ent).to_numpy().copy()
        if solo_demands is not None:
            solo |= np.asarray(solo_demands, dtype=bool)
        for frame in (tenure_pairs(instance), instance.pins):
            if len(frame):
                solo[frame["demand"].to_numpy()] = True
        count = np.bincount(triples["demand"].to_numpy(), minlength=n)
        cols = ["service_id", "sector", "district_id", "person_days", "weight", "risk_level"]
        for _ in range(3):
            key = dem[cols].assign(solo=np.where(solo, np.arange(n), -1))
            of = key.groupby(list(key.columns), sort=False).ngroup().to_numpy()
            rep = np.full(of.max() + 1 if n else 0, n, dtype=np.int64)
            np.minimum.at(rep, of, np.arange(n))
            odd = count != count[rep[of]]
            if not odd.any():
                break
            solo |= odd
        return cls(of.astype(np.int64), rep, np.bincount(of, minlength=len(rep)))


@dataclass
class Arrays:
    """The triples as arrays over integer codes (no ids), for pricing and repair."""

    demand: np.ndarray
    agency: np.ndarray  # code into agencies
    district: np.ndarray  # code into districts
    cost: np.ndarray  # contract value (what the share caps count)
    load: np.ndarray
    weight: np.ndarray  # per demand
    mandatory: np.ndarray  # per demand
    demand_district: np.ndarray  # per demand, code into districts
    capacity: np.ndarray  # per agency code
    district_cap: np.ndarray  # per district code (inf = none)
    agencies: pd.Index
    districts: pd.Index
    starts: np.ndarray  # first triple of each demand (triples sorted by demand)
    ends: np.ndarray
    # the government's part of the cost (what the budget, the district caps and the cost
    # level count): the cost itself, or less it with co-payment (copay.share_by_risk); a
    # demand's enterprise pays the same share whichever agency serves it
    gov: np.ndarray

    @cached_property
    def min_cost(self) -> np.ndarray:
        """Cheapest eligible government cost of each demand (inf: none), computed once: the
        fill and the coverage repair ask for it on every round."""
        out = np.full(len(self.weight), np.inf)
        has = np.flatnonzero(self.ends > self.starts)
        if len(has):  # triples are contiguous per demand: each segment is one demand's
            out[has] = np.minimum.reduceat(self.gov, self.starts[has])
        return out

    @classmethod
    def of(cls, instance: Instance, triples: pd.DataFrame) -> Arrays:
        """Codes and numbers of the triples (sorted by demand, as eligibility writes them)."""
        dem = instance.demands
        pol = instance.policy
        d = triples["demand"].to_numpy()
        if len(d) and np.any(d[1:] < d[:-1]):
            raise ValueError("eligible triples must be sorted by demand")
        agencies = pd.Index(instance.agencies.index.astype(str))
        districts = pd.Index(instance.districts.index.astype(str))
        a = agencies.get_indexer(triples["agency_id"].astype(str))
        k = districts.get_indexer(triples["district_id"].astype(str))
        n = len(dem)
        starts = np.searchsorted(d, np.arange(n), "left")
        ends = np.searchsorted(d, np.arange(n), "right")
        cost = triples["cost"].to_numpy(dtype=float)
        gov = (government_cost(pol, cost, dem["risk_level"].to_numpy()[d]) if pol.has_copay
               else cost)
        return cls(d.astype(np.int64), a.astype(np.int64), k.astype(np.int64),
                   cost, triples["load"].to_numpy(dtype=float),
                   dem["weight"].to_numpy(dtype=float),
                   dem["risk_level"].isin(pol.mandatory_levels).to_numpy(),
                   districts.get_indexer(dem["district_id"].astype(str)).astype(np.int64),
                   instance.agencies["capacity_days"].to_numpy(dtype=float),
                   instance.districts["budget_cap"].to_numpy(dtype=float),
                   agencies, districts, starts, ends, gov)


def triple_of(arr: Arrays, demand: np.ndarray, agency: np.ndarray) -> np.ndarray:
    """The triple of each (demand, agency code) pair; every pair must be eligible."""
    width = max(int((arr.ends - arr.starts).max(initial=0)), 1)
    out = np.full(len(demand), -1, dtype=np.int64)
    todo = np.arange(len(demand))
    for j in range(width):  # at most ~the agencies per demand; each pass is one array op
        t = arr.starts[demand[todo]] + j
        ok = t < arr.ends[demand[todo]]
        hit = np.zeros(len(todo), dtype=bool)
        hit[ok] = arr.agency[t[ok]] == agency[todo[ok]]
        out[todo[hit]] = t[hit]
        todo = todo[~hit & ok]
        if len(todo) == 0:
            break
    if len(todo):
        raise ValueError(f"{len(todo)} (demand, agency) pairs are not eligible")
    return out


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.r_[True, groups[1:] != groups[:-1]]
    start = np.flatnonzero(new)
    return np.arange(len(groups)) - np.repeat(start, np.diff(np.r_[start, len(groups)]))


def _cumsum_before_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of the values before each entry within its run of equal (sorted) groups."""
    if len(groups) == 0:
        return np.zeros(0, dtype=values.dtype)
    before = np.cumsum(values) - values
    start = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return before - np.repeat(before[start], np.diff(np.r_[start, len(groups)]))
