"""Reading an instance folder as raw text tables (spec section 2), before any checking.

Everything is read as strings so validation can point at the exact cell a person typed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from allocator.policy import POLICY_FILE
from allocator.problems import Problem

#: file -> (required file?, required columns, optional columns)
TABLES: dict[str, tuple[bool, tuple[str, ...], tuple[str, ...]]] = {
    "districts.csv": (True, ("district_id",), ("name", "budget_cap")),
    "services.csv": (True, ("service_id", "reference_rate"), ("name",)),
    "enterprises.csv": (True, ("enterprise_id", "district_id", "sector", "risk_level"), ("name",)),
    "demands.csv": (True, ("enterprise_id", "service_id", "person_days"), ("weight",)),
    "agencies.csv": (
        True,
        ("agency_id", "status", "quality", "capacity_days", "districts"),
        ("name",),
    ),
    "bids.csv": (True, ("agency_id", "service_id", "sector", "day_rate"), ()),
    "quotes.csv": (False, ("agency_id", "enterprise_id", "service_id", "price", "person_days"), ()),
    "conflicts.csv": (False, ("agency_id", "enterprise_id"), ()),
}


@dataclass
class RawInstance:
    """The instance folder as read: text tables (missing optional files are empty tables)."""

    path: Path
    tables: dict[str, pd.DataFrame]
    policy: Any
    sha256: str
    problems: list[Problem] = field(default_factory=list)


def read_table(path: Path, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    """Read one CSV as strings with stripped headers and cells; None if unreadable."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8",
                         skipinitialspace=True)
    except UnicodeDecodeError as exc:
        problems.append(Problem(file, None, "", None, f"not valid UTF-8 text ({exc.reason})",
                                "save the file as UTF-8 CSV"))
        return None
    except pd.errors.EmptyDataError:
        problems.append(Problem(file, None, "", None, "the file is empty (no header row)",
                                "add the header row of the spec's columns"))
        return None
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[-1]
        problems.append(Problem(file, None, "", None, f"not a readable CSV: {msg}",
                                "check for unbalanced quotes or rows with extra commas"))
        return None
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df.apply(lambda col: col.str.strip()) if len(df.columns) else df


def read_policy(path: Path, problems: list[Problem]) -> Any:
    """Load policy.yaml (YAML syntax only; meaning is checked by policy.parse_policy)."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except UnicodeDecodeError as exc:
        problems.append(Problem(POLICY_FILE, None, "", None, f"not valid UTF-8 ({exc.reason})",
                                "save the file as UTF-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(POLICY_FILE, row, "", None, f"not readable YAML: {what}",
                                "fix the indentation or punctuation on that line"))
    return None


def instance_sha256(path: Path) -> str:
    """sha256 over the instance's files (names and bytes, sorted), to tie results to inputs."""
    digest = hashlib.sha256()
    for file in sorted([POLICY_FILE, *TABLES]):
        full = path / file
        if full.is_file():
            digest.update(file.encode())
            digest.update(full.read_bytes())
    return digest.hexdigest()


def read_raw(path: Path) -> RawInstance:
    """Read every file of the folder; record missing or unreadable files as problems."""
    path = Path(path)
    problems: list[Problem] = []
    if not path.is_dir():
        problems.append(Problem(str(path), None, "", None, "instance folder not found",
                                "give the path of a folder holding policy.yaml and the CSVs"))
        return RawInstance(path, {}, None, "", problems)
    tables: dict[str, pd.DataFrame] = {}
    for file, (required, cols, opt) in TABLES.items():
        full = path / file
        if not full.is_file():
            if required:
                problems.append(Problem(file, None, "", None, "required file is missing",
                                        f"add {file} with columns {', '.join(cols + opt)}"))
            else:
                tables[file] = pd.DataFrame({c: pd.Series(dtype=str) for c in cols})
            continue
        df = read_table(full, file, problems)
        if df is None:
            continue
        missing = [c for c in cols if c not in df.columns]
        for col in missing:
            problems.append(Problem(file, 1, col, None, "required column is missing",
                                    f"add a '{col}' column to the header row"))
        dup_cols = df.columns[df.columns.duplicated()].tolist()
        for col in dup_cols:
            problems.append(Problem(file, 1, col, None, "column appears twice in the header",
                                    "keep one column of that name"))
        if not missing and not dup_cols:
            for col in opt:
                if col not in df.columns:
                    df[col] = ""
            tables[file] = df
    policy = None
    if (path / POLICY_FILE).is_file():
        policy = read_policy(path / POLICY_FILE, problems)
    else:
        problems.append(Problem(POLICY_FILE, None, "", None, "required file is missing",
                                "add policy.yaml with at least 'budget:' / 'total:'"))
    return RawInstance(path, tables, policy, instance_sha256(path), problems)
