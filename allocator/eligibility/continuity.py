"""Pins and rotation as eligibility rules (tested after the spec's six, in this order):

- `pinned`: pins.csv forbids this agency on this demand, or assigns the demand to another
  agency (an assigned demand keeps only its pinned triple);
- `tenure`: the agency is the demand's incumbent with years >= continuity.max_tenure_years
  (rotation: it may not serve that demand this year).

Candidates are given as (demand row, agency position) integer arrays, so the province's
millions of candidates are tested with one sorted-key lookup.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocator.data.instance import Instance

PINNED, TENURE = "pinned", "tenure"
#: codes returned by continuity_codes (0: neither rule keeps the candidate out)
CODE_PINNED, CODE_TENURE = 1, 2


def _keys(demand: np.ndarray, agency: np.ndarray, n_agencies: int) -> np.ndarray:
    return demand.astype(np.int64) * max(n_agencies, 1) + agency.astype(np.int64)


def _agency_codes(instance: Instance, ids: pd.Series) -> np.ndarray:
    return instance.agencies.index.get_indexer(ids.astype(str))


def tenure_pairs(instance: Instance) -> pd.DataFrame:
    """Incumbents that rotation keeps off their demand this year (years >= max_tenure_years)."""
    limit = instance.policy.max_tenure_years
    inc = instance.incumbents
    if limit is None or inc.empty:
        return inc.iloc[:0]
    return inc[(inc["years"].astype(int) >= int(limit)) & inc["in_pool"].astype(bool)]


def continuity_codes(instance: Instance, demand: np.ndarray, agency: np.ndarray) -> np.ndarray:
    """Per candidate (demand row, agency position): CODE_PINNED, CODE_TENURE or 0."""
    n = len(demand)
    out = np.zeros(n, dtype=np.int8)
    pins, n_ag = instance.pins, len(instance.agencies)
    rotate = tenure_pairs(instance)
    if n == 0 or (pins.empty and rotate.empty):
        return out
    keys = _keys(np.asarray(demand), np.asarray(agency), n_ag)
    if len(rotate):
        rk = _keys(rotate["demand"].to_numpy(), _agency_codes(instance, rotate["agency_id"]),
                   n_ag)
        out[np.isin(keys, rk)] = CODE_TENURE
    if len(pins):
        forbid = pins[pins["action"] == "forbid"]
        fk = _keys(forbid["demand"].to_numpy(), _agency_codes(instance, forbid["agency_id"]),
                   n_ag)
        hit = np.isin(keys, fk)
        assign = pins[pins["action"] == "assign"]
        if len(assign):
            pinned_to = np.full(len(instance.demands), -1, dtype=np.int64)
            pinned_to[assign["demand"].to_numpy()] = _agency_codes(instance, assign["agency_id"])
            to = pinned_to[np.asarray(demand)]
            hit |= (to >= 0) & (to != np.asarray(agency))
        out[hit] = CODE_PINNED  # a pin is a decision: it is named before rotation
    return out


def demand_rows(instance: Instance, frame: pd.DataFrame) -> np.ndarray:
    """Row of instance.demands of each (enterprise_id, service_id) of frame (-1: none)."""
    dem = instance.demands
    key = pd.MultiIndex.from_arrays([dem["enterprise_id"].astype(str),
                                     dem["service_id"].astype(str)])
    return key.get_indexer(pd.MultiIndex.from_arrays([frame["enterprise_id"].astype(str),
                                                      frame["service_id"].astype(str)]))


def continuity_detail(instance: Instance, frame: pd.DataFrame) -> pd.Series:
    """Words for rows kept out as `pinned` or `tenure` (enterprise_id, service_id, agency_id,
    reason columns); '' for other rows."""
    out = pd.Series("", index=frame.index, dtype=object)
    if frame.empty:
        return out
    pins = instance.pins
    assign = pins[pins["action"] == "assign"]
    to = pd.Series(assign["agency_id"].to_numpy(), index=assign["demand"].to_numpy())
    rows = demand_rows(instance, frame)
    pinned = (frame["reason"] == PINNED).to_numpy()
    if pinned.any():
        other = pd.Series(rows[pinned]).map(to).astype(object)
        text = np.where(other.isna().to_numpy(), "pins.csv forbids this agency on this demand",
                        "pins.csv assigns this demand to agency "
                        + other.where(other.notna(), "").astype(str).to_numpy())
        out[pinned] = text
    rotated = (frame["reason"] == TENURE).to_numpy()
    if rotated.any():
        inc = instance.incumbents
        years = pd.Series(inc["years"].to_numpy(), index=inc["demand"].to_numpy())
        got = pd.Series(rows[rotated]).map(years).fillna(0).astype(int).astype(str).to_numpy()
        out[rotated] = ("incumbent for " + got + " year(s); continuity.max_tenure_years is "
                        + str(instance.policy.max_tenure_years) + " (rotation)")
    return out
