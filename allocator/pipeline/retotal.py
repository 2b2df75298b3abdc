"""A hand-edited plan made whole again: from the (enterprise, service, agency) rows of an
edited assignments.csv, every other figure recomputed from the instance (each row's cost,
load, weight and quality, unserved.csv with reasons, agencies.csv, districts.csv and the
plan figures of summary.json), so that `allocator check` then judges the edit itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from allocator.core.errors import Problem
from allocator.data.instance import Instance
from allocator.eligibility import Eligibility
from allocator.pipeline.result import RunResult
from allocator.pipeline.summary import refigure
from allocator.pipeline.tables import plan_tables

KEYS = ["enterprise_id", "service_id", "agency_id"]
ROW_OFFSET = 2  # header is spreadsheet row 1


def retotal(instance: Instance, elig: Eligibility, rows: pd.DataFrame,
            summary: dict[str, Any]) -> tuple[RunResult | None, list[Problem]]:
    """The results of the plan the rows give, or the problems that stop it (a row that is not
    an eligible offer, a demand served twice, a missing column)."""
    f = "assignments.csv"
    missing = [c for c in KEYS if c not in rows.columns]
    if missing:
        return None, [Problem(f, 1, c, None, "required column is missing",
                              "the rows need enterprise_id, service_id and agency_id")
                      for c in missing]
    keys = rows[KEYS].astype(str).reset_index(drop=True)
    keys["row_no"] = np.arange(len(keys)) + ROW_OFFSET
    t = elig.triples[KEYS].astype(str).reset_index(names="triple")
    m = keys.merge(t, on=KEYS, how="left")
    problems = [Problem(f, int(r.row_no), "agency_id", r.agency_id,
                        f"not an eligible offer for enterprise {r.enterprise_id}, service "
                        f"{r.service_id}",
                        "give an agency that may serve it (allocator check says why this one "
                        "may not), or remove the row")
                for r in m[m["triple"].isna()].itertuples(index=False)]
    dup = keys.duplicated(["enterprise_id", "service_id"], keep="first")
    problems += [Problem(f, int(r.row_no), "service_id", r.service_id,
                         f"enterprise {r.enterprise_id} is served twice for this service",
                         "keep one row per enterprise and service")
                 for r in keys[dup].itertuples(index=False)]
    if problems:
        return None, problems
    chosen = m["triple"].to_numpy(dtype=np.int64)
    a, unserved, agencies, districts = plan_tables(instance, elig, chosen)
    s = refigure(summary, instance, a, districts)
    s["status"] = "feasible"  # a plan edited by hand is not proven the best
    s["retotalled"] = {"rows": len(a), "note": "assignments.csv edited by hand; every other "
                       "figure recomputed from it (allocator retotal); the levels and bound "
                       "are those of the solve before the edit"}
    return RunResult(s, a, unserved, agencies, districts, elig.excluded, None), []
