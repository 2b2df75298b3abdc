"""OR-Library / Yagiura GAP problems expressed in the allocator instance format.

The benchmark data is not copied into the repository: it is read from
``/work/shared/benchmarks/gap`` (see :func:`benchmarks_root`).

Mapping of a GAP problem (m agents, n jobs, cost c, resource a, capacity b) onto the spec:

* one district ``D1``, one service ``S1`` (reference_rate 1), one sector ``GAP``;
* job j -> enterprise ``J{j}`` (risk 4, i.e. mandatory) with one demand (S1, person_days 1,
  weight 1);
* agent i -> agency ``A{i}`` (active, quality 100, capacity_days b[i], districts ``*``);
* quotes.csv: one row per (i, j) with price c[i][j] (or C - c[i][j] for the max sense) and
  person_days a[i][j]; each quote overrides the agency's single bid row;
* policy: mandatory level 4, every other rule off, a budget that can never bind.

Since every job is mandatory, the coverage and quality levels are constant and the cost level is
the GAP objective: min sense -> cost = GAP value; max sense -> GAP value = n*C - cost
(:func:`gap_value`).

Indices are 0-based in ids (``A0``..``A{m-1}``, ``J0``..``J{n-1}``), matching the solution files.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def benchmarks_root() -> Path:
    """``/work/shared/benchmarks`` located relative to this file (repo root's sibling)."""
    return Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def _ints(path: Path) -> list[int]:
    return [int(t) for t in Path(path).read_text().split()]


def _parse_problem(tok: list[int], pos: int) -> tuple[dict, int]:
    m, n = tok[pos], tok[pos + 1]
    pos += 2
    c = np.array(tok[pos : pos + m * n], dtype=np.int64).reshape(m, n)
    pos += m * n
    a = np.array(tok[pos : pos + m * n], dtype=np.int64).reshape(m, n)
    pos += m * n
    b = np.array(tok[pos : pos + m], dtype=np.int64)
    pos += m
    if b.shape[0] != m or a.shape != (m, n):
        raise ValueError("truncated GAP problem")
    return {"m": int(m), "n": int(n), "c": c, "a": a, "b": b}, pos


def read_orlib(path: Path | str) -> list[dict]:
    """Parse a GAP file into a list of problems ``dict(m, n, c, a, b)`` (numpy int arrays,
    c and a of shape (m, n)).

    Accepts the OR-Library multi-instance format (leading P) and Yagiura's single-instance
    format (no leading P; detected because ``m n`` followed by 2mn+m numbers is the whole file).
    """
    tok = _ints(Path(path))
    if len(tok) >= 2:
        m, n = tok[0], tok[1]
        if m > 0 and n > 0 and len(tok) == 2 + 2 * m * n + m:
            prob, _ = _parse_problem(tok, 0)
            return [prob]
    P = tok[0]
    pos = 1
    out = []
    for _ in range(P):
        prob, pos = _parse_problem(tok, pos)
        out.append(prob)
    if pos != len(tok):
        raise ValueError(f"{path}: {len(tok) - pos} trailing numbers after {P} problems")
    return out


def read_solution(path: Path | str) -> np.ndarray:
    """A solution file: the j-th integer is the agent (from 0) of job j."""
    return np.array(_ints(Path(path)), dtype=np.int64)


def gap_cost(problem: dict, agent_of_job) -> int:
    """Objective sum c[agent(j), j] of an assignment (no feasibility check)."""
    c = problem["c"]
    return int(sum(c[int(agent_of_job[j]), j] for j in range(problem["n"])))


def gap_check(problem: dict, agent_of_job) -> bool:
    """True if every job has an agent and no agent exceeds its capacity."""
    load = np.zeros(problem["m"], dtype=np.int64)
    for j in range(problem["n"]):
        i = int(agent_of_job[j])
        if not 0 <= i < problem["m"]:
            return False
        load[i] += problem["a"][i, j]
    return bool(np.all(load <= problem["b"]))


def max_offset(problem: dict) -> int:
    """C = max c + 1, the constant used for the max sense (price = C - c >= 1)."""
    return int(problem["c"].max()) + 1


def gap_value(problem: dict, cost: float, sense: str = "min") -> float:
    """GAP objective from the allocator total cost of an instance written with ``sense``."""
    if sense == "min":
        return cost
    if sense == "max":
        return problem["n"] * max_offset(problem) - cost
    raise ValueError(f"sense must be 'min' or 'max', not {sense!r}")


def agent_of_job(problem: dict, assignment: dict) -> np.ndarray:
    """allocator assignment {(J{j}, S1): A{i}} -> array agent of job j (-1 if unassigned)."""
    out = np.full(problem["n"], -1, dtype=np.int64)
    for (e, _s), a in assignment.items():
        out[int(e[1:])] = int(a[1:])
    return out


def write_gap_instance(
    problem: dict,
    out_dir: Path | str,
    sense: str = "min",
    name: str | None = None,
    time_limit: float | None = None,
    mip_gap: float | None = None,
    bid_rows: bool = True,
) -> dict:
    """Write ``problem`` as an allocator instance folder. Returns mapping info
    ``{"sense", "C" (None for min), "n", "m", "dir"}``; use :func:`gap_value` to map a cost back.

    ``bid_rows``: write one bid per agency (day_rate 1, overridden by every quote); otherwise
    bids.csv holds the header only. ``time_limit`` / ``mip_gap`` go into policy.solver if given.
    """
    if sense not in ("min", "max"):
        raise ValueError(f"sense must be 'min' or 'max', not {sense!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m, n = problem["m"], problem["n"]
    c, a, b = problem["c"], problem["a"], problem["b"]
    C = max_offset(problem) if sense == "max" else None
    price = c if sense == "min" else C - c

    def write(fname: str, header: list[str], rows):
        with open(out / fname, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)

    write("districts.csv", ["district_id", "name", "budget_cap"], [["D1", "GAP district", ""]])
    write("services.csv", ["service_id", "name", "reference_rate"], [["S1", "GAP job", 1]])
    write(
        "enterprises.csv",
        ["enterprise_id", "name", "district_id", "sector", "risk_level"],
        [[f"J{j}", f"job {j}", "D1", "GAP", 4] for j in range(n)],
    )
    write(
        "demands.csv",
        ["enterprise_id", "service_id", "person_days", "weight"],
        [[f"J{j}", "S1", 1, 1] for j in range(n)],
    )
    write(
        "agencies.csv",
        ["agency_id", "name", "status", "quality", "capacity_days", "districts"],
        [[f"A{i}", f"agent {i}", "active", 100, int(b[i]), "*"] for i in range(m)],
    )
    write(
        "bids.csv",
        ["agency_id", "service_id", "sector", "day_rate"],
        [[f"A{i}", "S1", "GAP", 1] for i in range(m)] if bid_rows else [],
    )
    write(
        "quotes.csv",
        ["agency_id", "enterprise_id", "service_id", "price", "person_days"],
        [
            [f"A{i}", f"J{j}", "S1", int(price[i, j]), int(a[i, j])]
            for i in range(m)
            for j in range(n)
        ],
    )
    write("conflicts.csv", ["agency_id", "enterprise_id"], [])

    # a budget that can never bind: every job at its dearest agent, times 10
    budget = int(10 * (int(price.max(axis=0).sum()) + 1))
    policy = {
        "name": name or f"GAP {m}x{n} ({sense})",
        "budget": {"total": budget},
        "coverage": {
            "weights": {1: 1, 2: 2, 3: 4, 4: 8},
            "mandatory_levels": [4],
            "min_district_ratio": 0.0,
        },
        "anti_monopoly": {
            "max_share_in_district": 1.0,
            "min_agencies_per_district": 0,
            "max_share_in_city": None,
            "max_districts_per_agency": None,
        },
        "quality": {"min_score": 0, "min_score_by_risk": {}},
        "price": {"floor_ratio": 0.0, "ceiling_ratio": 1.0e9},
    }
    solver = {}
    if time_limit is not None:
        solver["time_limit"] = float(time_limit)
    if mip_gap is not None:
        solver["mip_gap"] = float(mip_gap)
    if solver:
        policy["solver"] = solver
    with open(out / "policy.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(policy, fh, sort_keys=False)
    return {"sense": sense, "C": C, "m": m, "n": n, "dir": out}


def load_optima(csv_path: Path | str | None = None) -> pd.DataFrame:
    """optima.csv as a DataFrame (best_known as float, NaN when empty; proven_optimal bool)."""
    if csv_path is None:
        csv_path = benchmarks_root() / "gap" / "optima.csv"
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    df["instance_index"] = df["instance_index"].astype(int)
    df["agents"] = df["agents"].astype(int)
    df["jobs"] = df["jobs"].astype(int)
    df["best_known"] = pd.to_numeric(df["best_known"].replace("", None), errors="coerce")
    df["proven_optimal"] = df["proven_optimal"].str.strip().str.lower() == "true"
    return df


def optimum(df: pd.DataFrame, file: str, index: int = 1, sense: str = "min") -> float | None:
    """best_known for (file like 'orlib/gap1.txt', 1-based index, sense); None if absent."""
    row = df[(df["file"] == file) & (df["instance_index"] == index) & (df["sense"] == sense)]
    if row.empty or pd.isna(row["best_known"].iloc[0]):
        return None
    return float(row["best_known"].iloc[0])


if __name__ == "__main__":  # pragma: no cover
    import argparse

    p = argparse.ArgumentParser(description="write a GAP problem as an allocator instance")
    p.add_argument("gap_file", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--index", type=int, default=1, help="1-based problem index in the file")
    p.add_argument("--sense", choices=["min", "max"], default="min")
    args = p.parse_args()
    probs = read_orlib(args.gap_file)
    info = write_gap_instance(probs[args.index - 1], args.out_dir, sense=args.sense)
    print(info)
