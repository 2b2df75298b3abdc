"""Reading an instance folder as raw text tables (spec section 2), before any checking.

Everything is read as strings so validation can point at the exact cell a person typed. Each
table's index is the record's position in the file counting blank lines (spreadsheet row =
index + 2, the header being row 1), so a message names the row a spreadsheet shows.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from allocator.core.errors import Problem
from allocator.data.policy import POLICY_FILE

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
    "funding.csv": (False, ("source_id", "amount", "districts", "sectors", "services",
                            "risk_levels"), ("name", "department")),
}

ROW_OFFSET = 2  # header is spreadsheet row 1, first record is row 2


@dataclass
class RawInstance:
    """The instance folder as read: text tables (missing optional files are empty tables)."""

    path: Path
    tables: dict[str, pd.DataFrame]
    policy: Any
    sha256: str
    problems: list[Problem] = field(default_factory=list)


def decode_text(data: bytes, file: str, problems: list[Problem]) -> str | None:
    """UTF-8 text of a file (a leading BOM dropped); None and a problem naming the row if not."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(file, None, "", None, "the file is UTF-16 text, not UTF-8",
                                "save it as 'CSV UTF-8 (comma delimited)' (spec section 2)"))
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        fix = ("save the file as 'CSV UTF-8' (in Excel: Save As, CSV UTF-8)"
               if file.endswith(".csv") else "save the file with UTF-8 encoding")
        problems.append(Problem(file, row, "", data[exc.start: exc.start + 4],
                                f"not valid UTF-8 text (probably a Windows encoding such as "
                                f"GBK or Latin-1): byte {exc.start + 1} of the file", fix))
        return None


def _bad_records(text: str, file: str, width: int) -> list[Problem]:
    """Rows with more values than the header, or an unclosed quote (found with csv, exactly)."""
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text), strict=True, skipinitialspace=True)
    row = 0
    try:
        for row, rec in enumerate(reader, start=1):
            if row > 1 and len(rec) > width:
                extra = rec[width:]
                problems.append(Problem(
                    file, row, "", ",".join(rec),
                    f"the row has {len(rec)} values but the header has {width}",
                    "remove the extra commas" + (" at the end of the row"
                                                 if not any(x.strip() for x in extra) else "")
                    + ", or put quotes around a value that contains a comma"))
    except csv.Error as exc:
        problems.append(Problem(file, row + 1, "", None,
                                f"not a readable CSV from this row on ({exc})",
                                "close the quote opened on this row (a quote inside a value is "
                                "written twice: \"\")"))
    return problems


def read_table(path: Path, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    """Read one CSV as stripped strings, blank rows dropped; None (with problems) if unreadable.

    The index is the record number counting from 0 for spreadsheet row 2.
    """
    text = decode_text(path.read_bytes(), file, problems)
    if text is None:
        return None
    if not text.strip():
        problems.append(Problem(file, None, "", None, "the file is empty (no header row)",
                                "add the header row of the spec's columns"))
        return None
    if not text.splitlines()[0].strip():
        problems.append(Problem(file, 1, "", None, "row 1 is blank",
                                "put the header row (column names) on row 1"))
        return None
    header = next(csv.reader(io.StringIO(text), skipinitialspace=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                             skipinitialspace=True, skip_blank_lines=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error) as exc:
        found = _bad_records(text, file, len(header))
        if not found:
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            found = [Problem(file, None, "", None, f"not a readable CSV: {msg}",
                             "check for unbalanced quotes or rows with extra commas")]
        problems.extend(found)
        return None
    df = df.fillna("")
    for col in df.columns:  # pandas' names are unique here ('x', 'x.1'): strip first
        df[col] = df[col].str.strip()
    if len(df):
        df = df[(df != "").any(axis=1)]  # blank rows: dropped, their row numbers kept
    names = [str(c).strip() for c in header]  # as written, so a repeated name shows
    df.columns = names if len(names) == len(df.columns) else [str(c).strip()
                                                              for c in df.columns]
    return df


def near_columns(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame | None:
    """The table with each misspelt required column (the one check_columns names in its
    did-you-mean) read under its right name, so that the file's other errors are found in
    the same run; None when a required column has no near match. The misspelling itself
    stays an error: nothing is built from such a table."""
    present = [str(c) for c in df.columns]
    if len(set(present)) != len(present):
        return None
    lower = {c.lower().replace(" ", "_"): c for c in present}
    rename = {}
    for col in cols:
        if col in present:
            continue
        close = difflib.get_close_matches(col, present, n=1, cutoff=0.75)
        near = lower.get(col) or (close[0] if close else None)
        if near is None or near in cols or near in rename:
            return None
        rename[near] = col
    return df.rename(columns=rename)


def _separator_hint(columns: list[str]) -> str:
    """A hint when the header looks like another delimiter than ','."""
    if len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in columns[0]:
                return (f"; the header is one single column holding {name}: is the file "
                        f"comma-separated? Save it as CSV with ',' between values")
    return ""


def check_columns(df: pd.DataFrame, file: str, cols: tuple[str, ...],
                  problems: list[Problem]) -> bool:
    """Required columns present, none twice; problems (with did-you-mean) otherwise."""
    present = list(df.columns)
    hint = _separator_hint(present)
    lower = {c.lower().replace(" ", "_"): c for c in present}
    ok = True
    for col in cols:
        if col in present:
            continue
        ok = False
        close = difflib.get_close_matches(col, present, n=1, cutoff=0.75)
        near = lower.get(col) or (close[0] if close else None)
        fix = f"add a '{col}' column to the header row"
        if near and not hint:
            fix = f"rename column '{near}' to '{col}' (column names are exact, lower case)"
        problems.append(Problem(file, 1, col, None, "required column is missing", fix + hint))
    seen: set[str] = set()
    for col in present:
        if col in seen and col:
            ok = False
            problems.append(Problem(file, 1, col, None, "column appears twice in the header",
                                    "keep one column of that name"))
        seen.add(col)
    return ok


class PolicyLoader(yaml.SafeLoader):
    """Safe YAML loader that reads 1e6 as a number (YAML 1.2) and refuses a key given twice."""


PolicyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _mapping_no_duplicates(loader: PolicyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in the same section",
                    key_node.start_mark)
        except TypeError:  # unhashable key: let the base constructor report it
            break
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


PolicyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             _mapping_no_duplicates)


def read_policy(path: Path, problems: list[Problem]) -> Any:
    """Load policy.yaml (YAML syntax only; meaning is checked by policy.parse_policy)."""
    text = decode_text(path.read_bytes(), POLICY_FILE, problems)
    if text is None:
        return None
    try:
        return yaml.load(text, Loader=PolicyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        fix = (f"fix the indentation or punctuation on line {row}" if row
               else "fix the YAML syntax")
        if "\\t" in what or "\t" in what:
            fix += "; indent with spaces, not tabs"
        problems.append(Problem(POLICY_FILE, row, "", None, f"not readable YAML: {what}", fix))
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
        what = ("is a file, not a folder" if path.is_file() else "instance folder not found")
        problems.append(Problem(str(path), None, "", None, what,
                                "give the path of a folder holding policy.yaml and the CSVs"))
        return RawInstance(path, {}, None, "", problems)
    tables: dict[str, pd.DataFrame] = {}
    for file, (required, cols, opt) in TABLES.items():
        full = path / file
        if not full.is_file():
            if required:
                near = [p.name for p in path.iterdir()
                        if p.name.lower() == file.lower() or p.name == file[:-4]
                        or p.name.lower() == file[:-4] + ".txt"]
                fix = (f"rename '{near[0]}' to '{file}'" if near else
                       f"add {file} with columns {', '.join(cols + opt)}")
                problems.append(Problem(file, None, "", None, "required file is missing", fix))
            else:
                tables[file] = _absent(cols + opt)
            continue
        df = read_table(full, file, problems)
        if df is None:
            continue
        if check_columns(df, file, cols, problems) or (df := near_columns(df, cols)) is not None:
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


def raw_from_frames(frames: dict[str, pd.DataFrame], policy: Any, name: str) -> RawInstance:
    """The RawInstance of tables given as pandas frames (keys: file names without .csv): every
    cell as stripped text, as if read from a folder, so the same checks apply."""
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    digest = hashlib.sha256()
    given = {str(k).removesuffix(".csv") + ".csv": v for k, v in frames.items()}
    for extra in sorted(set(given) - set(TABLES)):
        problems.append(Problem(extra, None, "", None, "unknown table",
                                "the tables are " + ", ".join(t[:-4] for t in TABLES)))
    for file, (required, cols, opt) in TABLES.items():
        df = given.get(file)
        if df is None:
            if required:
                problems.append(Problem(file, None, "", None, "required table is missing",
                                        f"give a frame with columns {', '.join(cols + opt)}"))
            else:
                tables[file] = _absent(cols + opt)
            continue
        text = df.reset_index(drop=True).astype(object).where(df.notna().to_numpy(), "")
        text = text.apply(lambda col: col.map(lambda v: _cell_text(v)))
        text.columns = [str(c).strip() for c in text.columns]
        digest.update(file.encode())
        digest.update(text.to_csv(index=False).encode())
        if check_columns(text, file, cols, problems):
            for col in opt:
                if col not in text.columns:
                    text[col] = ""
            tables[file] = text
    digest.update(repr(policy).encode())
    return RawInstance(Path(name), tables, policy, digest.hexdigest(), problems)


def _absent(cols: tuple[str, ...]) -> pd.DataFrame:
    """The empty table of an optional file that is not there, marked absent (for funding.csv
    "no file" means "no funding rule", not "no sources")."""
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    df.attrs["absent"] = True
    return df


def _cell_text(value: Any) -> str:
    """A cell as a person would have typed it: 12 not 12.0, text stripped."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
