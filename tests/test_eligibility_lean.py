"""The integer-code eligibility gives exactly what the frame-based reference gave.

Same triples in the same order with the same values, the same kept-out rows (as a set: their
order is not part of the contract), and ids that read and write as the original strings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from instance_builder import solve_result

from allocator.data.generate import generate_instance, write_instance
from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.output.results_folder import write_results
from tests import reference_eligibility as ref

ROOT = Path(__file__).resolve().parents[1]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{c: frame[c].astype(str) for c in frame.columns
                           if isinstance(frame[c].dtype, pd.CategoricalDtype)})


def assert_same_eligibility(path: Path) -> None:
    inst = load_instance(path)
    new, old = compute_eligibility(inst), ref.compute_eligibility(inst)
    a, b = _plain(new.triples), old.triples
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in b.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if y.dtype.kind in "fib":
            np.testing.assert_array_equal(x.astype(float), y.astype(float), err_msg=col)
        else:
            assert (x.astype(str) == y.astype(str)).all(), col
    key = list(old.excluded.columns)
    ea = _plain(new.excluded).astype(str).sort_values(key).reset_index(drop=True)
    eb = old.excluded.astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ea, eb)


@pytest.mark.parametrize("name", ["tiny", "k_city"])
def test_shipped_instances(name):
    assert_same_eligibility(ROOT / "instances" / name)


def _generated(tmp_path: Path, seed: int, policy: dict | None = None) -> Path:
    data = generate_instance(300, 12, 4, seed)
    for section, values in (policy or {}).items():
        data["policy"][section] = {**data["policy"][section], **values}
    write_instance(data, tmp_path / f"g{seed}")
    return tmp_path / f"g{seed}"


@pytest.mark.parametrize("seed,policy", [
    (1, None),
    (2, {"price": {"floor_ratio": 0.95, "ceiling_ratio": 1.1}}),
    (3, {"quality": {"min_score": 75, "min_score_by_risk": {2: 80, 4: 90}}}),
])
def test_generated_instances(tmp_path, seed, policy):
    assert_same_eligibility(_generated(tmp_path, seed, policy))


def test_quotes_override_bids_and_add_triples(tmp_path):
    path = _generated(tmp_path, 4)
    quotes = pd.read_csv(path / "quotes.csv", dtype=str, encoding="utf-8-sig")
    dem = pd.read_csv(path / "demands.csv", dtype=str, encoding="utf-8-sig")
    bids = pd.read_csv(path / "bids.csv", dtype=str, encoding="utf-8-sig")
    agencies = pd.read_csv(path / "agencies.csv", dtype=str, encoding="utf-8-sig")["agency_id"]
    # a quote from every agency for the first demands: some replace bids, some are new
    extra = pd.DataFrame([(a, e, s, "1234", "3") for e, s in dem[["enterprise_id",
                                                                   "service_id"]].head(5)
                          .itertuples(index=False) for a in agencies],
                         columns=["agency_id", "enterprise_id", "service_id", "price",
                                  "person_days"])
    quotes = pd.concat([quotes, extra]).drop_duplicates(["agency_id", "enterprise_id",
                                                         "service_id"])
    quotes.to_csv(path / "quotes.csv", index=False)
    assert len(bids)
    assert_same_eligibility(path)


def test_ids_come_out_as_the_original_strings(tmp_path):
    """Leading zeros and numeric-looking ids survive the categorical codes end to end."""
    path = _generated(tmp_path, 5)
    for name, col in (("agencies", "agency_id"), ("bids", "agency_id"),
                      ("quotes", "agency_id"), ("conflicts", "agency_id")):
        f = pd.read_csv(path / f"{name}.csv", dtype=str, keep_default_na=False,
                        encoding="utf-8-sig")
        f[col] = "00" + f[col].str[1:]
        f.to_csv(path / f"{name}.csv", index=False)
    inst = load_instance(path)
    res = solve_result(inst, time_limit=20)
    write_results(res, tmp_path / "out")
    a = pd.read_csv(tmp_path / "out" / "assignments.csv", dtype=str, encoding="utf-8-sig")
    assert len(a) and a["agency_id"].str.startswith("00").all()
    assert set(a["agency_id"]) <= set(inst.agencies.index)
    assert set(a["enterprise_id"]) <= set(inst.enterprises.index)
    exc = pd.read_csv(tmp_path / "out" / "excluded.csv", dtype=str, encoding="utf-8-sig")
    assert exc["agency_id"].str.startswith("00").all()
