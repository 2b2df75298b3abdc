"""The results folder (spec section 5): the plan's CSV files and summary.json, atomically."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from allocator.core.folders import staged
from allocator.core.tables import write_csv
from allocator.pipeline.result import DECIMALS, RunResult
from allocator.solvers import Status

#: file name -> writer of extra files in the same folder (a workbook, a report)
Extras = Mapping[str, Callable[[Path], object]]


def write_tables(result: RunResult, folder: Path) -> None:
    """The plan's files into an existing folder (a staging folder: see write_results)."""
    frames = {"assignments.csv": result.assignments, "unserved.csv": result.unserved,
              "agencies.csv": result.agencies, "districts.csv": result.districts,
              "excluded.csv": result.excluded}
    if result.diagnosis is not None:
        frames["diagnosis.csv"] = result.diagnosis
    if result.funding is not None:
        frames["funding.csv"] = result.funding
    if result.funding_by_agency is not None:
        frames["funding_by_agency.csv"] = result.funding_by_agency
    if result.changes is not None:
        frames["changes.csv"] = result.changes
    for name, frame in frames.items():
        if frame is not None:
            write_csv(frame, folder / name, decimals=DECIMALS)
    (folder / "summary.json").write_text(summary_json(result.summary), encoding="utf-8")


def summary_json(summary: dict[str, Any]) -> str:
    """summary.json's text: strict JSON (a non-finite number is written as null)."""
    return json.dumps(_finite(summary), indent=2, default=_json, allow_nan=False)


def write_results(result: RunResult, out: Path, force: bool = False,
                  protect: Iterable[Path] = (), extras: Extras | None = None,
                  edits_ok: bool = False) -> Path:
    """Write the results folder atomically (core.folders: refused over a user's files;
    `edits_ok`: over allocator's own files even where they were edited, as `retotal` does)."""
    with staged(out, "results", force, protect, edits_ok) as s:
        write_tables(result, s.path)
        for _name, write in (extras or {}).items():
            write(s.path)
    return s.target


def _finite(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Status):
        return value.value
    return str(value)  # a Path, or anything else: never fail a write after a long solve
