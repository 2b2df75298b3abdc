"""benchmarks/othergen.py: an independent city generator for the hidden-city benchmark.

It must write valid instance folders, the same bytes for the same seed, respond to its knobs,
and share no code with allocator (it may not import it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
import yaml

from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from benchmarks import othergen

SOURCE = Path(othergen.__file__)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_city(tmp_path):
    a = othergen.generate(150, 12, 3, 5, tmp_path / "a")
    b = othergen.generate(150, 12, 3, 5, tmp_path / "b")
    c = othergen.generate(150, 12, 3, 6, tmp_path / "c")
    assert _files(a) == _files(b)
    assert _files(a)["demands.csv"] != _files(c)["demands.csv"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_family_cities_are_valid_and_every_mandatory_demand_can_be_served(tmp_path, seed):
    path = othergen.hidden_city(200, seed, tmp_path / f"h{seed}")
    inst = load_instance(path)  # raises on any problem
    elig = compute_eligibility(inst)
    mandatory = inst.demands["risk_level"].isin(inst.policy.mandatory_levels).to_numpy()
    served_by = set(elig.triples["demand"])
    assert all(k in served_by for k in inst.demands.index[mandatory])
    assert len(inst.enterprises) == 200


def test_knobs_change_what_they_name(tmp_path):
    base = dict(n_enterprises=300, n_agencies=20, n_districts=4, seed=9)
    tight = othergen.generate(**base, out=tmp_path / "t", budget_tightness=0.3,
                              quote_share=0.0, conflict_share=0.0)
    loose = othergen.generate(**base, out=tmp_path / "l", budget_tightness=0.9,
                              quote_share=0.2, conflict_share=0.05)

    def budget(p: Path) -> float:
        return yaml.safe_load((p / "policy.yaml").read_text())["budget"]["total"]

    assert budget(tight) < budget(loose)
    assert len(pd.read_csv(tight / "quotes.csv")) == 0
    assert len(pd.read_csv(loose / "quotes.csv")) > 0
    assert len(pd.read_csv(tight / "conflicts.csv")) == 0
    wide = othergen.generate(**base, out=tmp_path / "w", wide_share=1.0)
    assert set(pd.read_csv(wide / "agencies.csv")["districts"]) == {"*"}


def test_it_shares_no_code_with_allocator():
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m == "allocator" or m.startswith("allocator.") for m in imported)
