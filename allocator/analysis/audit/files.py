"""Reading a results folder for the audit: every file as text, every problem named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from allocator.analysis.audit.common import (
    COLUMNS,
    ROW_OFFSET,
)
from allocator.core.errors import Problem
from allocator.core.tables import read_csv as read_table


def read_csv(path: Path, file: str, problems: list[Problem], required: bool) -> pd.DataFrame:
    """A result CSV as text (ids stay strings); missing/unreadable/short of columns -> problem."""
    need = COLUMNS[file]
    if not path.is_file():
        if required:
            problems.append(Problem(file, None, "", None, "result file is missing",
                                    "solve again into this folder, or point at the right one"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    try:
        df = read_table(path)
    except pd.errors.EmptyDataError:
        if required:
            problems.append(Problem(file, None, "", None, "the file is empty (no header row)",
                                    f"the header must hold {', '.join(need)}"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        problems.append(Problem(file, None, "", None, f"not a readable CSV: {msg}",
                                "write the file again (UTF-8, comma-separated, header row)"))
        return pd.DataFrame(columns=[*need, "_row"], dtype=str)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if len(df.columns):
        df = df.apply(lambda col: col.str.strip())
    df = df.reset_index(drop=True)
    df["_row"] = df.index + ROW_OFFSET
    if not required:  # only its row count matters (a run without a plan has none)
        return df
    missing = [c for c in need if c not in df.columns]
    for col in missing:
        problems.append(Problem(file, 1, col, None, "required column is missing",
                                f"the header must hold {', '.join(need)}"))
    return df


def read_summary(path: Path, problems: list[Problem]) -> dict[str, Any]:
    file = "summary.json"
    if not path.is_file():
        problems.append(Problem(file, None, "", None, "result file is missing",
                                "solve again into this folder, or point at the right one"))
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError, RecursionError) as exc:
        problems.append(Problem(file, None, "", None, f"not readable JSON: {exc}",
                                "write the file again"))
        return {}
    if not isinstance(data, dict):
        problems.append(Problem(file, None, "", None, "must be a JSON object",
                                "write the file again"))
        return {}
    if "status" not in data:
        problems.append(Problem(file, None, "status", None, "no 'status' key",
                                "summary.json must say how the run ended"))
    return data
