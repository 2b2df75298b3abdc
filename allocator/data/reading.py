"""Reading an instance folder as raw text tables (spec section 2), before any checking.

Everything is read as strings so validation can point at the exact cell a person typed. Each
table's index is the record's position in the file counting blank lines (spreadsheet row =
index + 2, the header being row 1), so a message names the row a spreadsheet shows.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import os
import re
import stat
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
    # last year's plan, this year's pins and last year's agency evaluations (data/history.py)
    "incumbents.csv": (False, ("enterprise_id", "service_id", "agency_id", "years"), ()),
    "pins.csv": (False, ("enterprise_id", "service_id", "agency_id", "action"), ("note",)),
    "evaluations.csv": (False, ("agency_id", "scorer", "score"),
                        ("violation", "enterprise_id", "date", "note")),
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

    The index is the record number counting from 0 for spreadsheet row 2. Line ends may be
    LF, CRLF or a lone CR (old Mac), each read as one.
    """
    data = read_file(path, file, problems)
    text = None if data is None else decode_text(data, file, problems)
    if text is None:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
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


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class PolicyLoader(yaml.SafeLoader):
    """Safe YAML loader for policy and scenario files: numbers read as YAML 1.2 reads them
    (1e6 is a number; 1:30 is text, not the base-60 number 90; 010 is ten, not octal eight; a
    date stays text), merge keys (<<) allowed, a key given twice in one mapping refused."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


PolicyLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+(?:_[0-9]+)*|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
PolicyLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?
                   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _construct_int(loader: PolicyLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # leading zeros: decimal (YAML 1.2), never octal


def _mapping_no_duplicates(loader: PolicyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:  # the keys written here (merged-in keys may be overridden)
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in the same section",
                    key_node.start_mark)
        except TypeError:  # unhashable key: let the base constructor report it
            break
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)  # merges '<<' keys


PolicyLoader.add_constructor(_INT, _construct_int)
PolicyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             _mapping_no_duplicates)

#: deepest nesting a policy or scenarios file may have (policy.yaml needs 3, scenarios 4)
MAX_YAML_DEPTH = 32
#: most values a YAML file may hold once its aliases (*name) are expanded
MAX_YAML_VALUES = 100_000

_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
         yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _too_deep(text: str) -> int | None:
    """The line where nesting passes MAX_YAML_DEPTH (found by the scanner, which does not
    recurse), or None. The parser recurses once per level, so depth is checked first."""
    depth = 0
    for token in yaml.scan(text, Loader=PolicyLoader):
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return token.start_mark.line + 1
        elif isinstance(token, _CLOSE):
            depth -= 1
    return None


def _too_many_values(data: Any) -> bool:
    """More than MAX_YAML_VALUES values once aliases are expanded (no recursion)."""
    count, stack = 0, [data]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_YAML_VALUES:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def load_yaml(text: str, file: str, problems: list[Problem]) -> Any:
    """A policy or scenarios file's content (YAML syntax only), or None and a problem naming
    the line: bad syntax, nesting deeper than MAX_YAML_DEPTH, aliases expanding past
    MAX_YAML_VALUES values."""
    try:
        line = _too_deep(text)
        if line is not None:
            problems.append(Problem(file, line, "", None,
                                    f"nested more than {MAX_YAML_DEPTH} levels deep",
                                    "write the sections as in the documentation: a section, "
                                    "its keys, and at most a list or mapping under a key"))
            return None
        data = yaml.load(text, Loader=PolicyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        fix = (f"fix the indentation or punctuation on line {row}" if row
               else "fix the YAML syntax")
        if "\\t" in what or "\t" in what:
            fix += "; indent with spaces, not tabs"
        problems.append(Problem(file, row, "", None, f"not readable YAML: {what}", fix))
        return None
    except (RecursionError, MemoryError):
        problems.append(Problem(file, None, "", None, "too deeply nested or too large to read",
                                "write the sections as in the documentation"))
        return None
    if _too_many_values(data):
        problems.append(Problem(file, None, "", None,
                                f"holds more than {MAX_YAML_VALUES:,} values once its aliases "
                                "(*name) are expanded",
                                "write the values out instead of nesting aliases"))
        return None
    return data


def read_policy(path: Path, problems: list[Problem]) -> Any:
    """Load policy.yaml (YAML syntax only; meaning is checked by policy.parse_policy)."""
    data = read_file(path, POLICY_FILE, problems)
    if data is None:
        return None
    text = decode_text(data, POLICY_FILE, problems)
    if text is None:
        return None
    return load_yaml(text, POLICY_FILE, problems)


def file_problem(path: Path) -> str | None:
    """Why path cannot be read as a file ("" if it does not exist at all), or None if it can.

    A dangling link, a folder, a FIFO or a device is not 'absent': it is named as an error,
    so that a broken conflicts.csv never silently drops every conflict."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"is a link to {os.readlink(path)}, which does not exist"
        return ""
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a FIFO, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def read_file(path: Path, file: str, problems: list[Problem]) -> bytes | None:
    """The bytes of a file that exists; None and a problem naming it if it cannot be read."""
    why = file_problem(path)
    if why is None:
        try:
            return path.read_bytes()
        except OSError as exc:
            why = f"cannot be read ({exc.strerror or exc})"
    problems.append(Problem(file, None, "", None, f"the file {why or 'is missing'}",
                            "replace it with the file itself (UTF-8 text), or remove it"))
    return None


def instance_sha256(path: Path) -> str:
    """sha256 over the instance's files (names and bytes, sorted), to tie results to inputs."""
    digest = hashlib.sha256()
    for file in sorted([POLICY_FILE, *TABLES]):
        full = path / file
        if file_problem(full) is None:
            with contextlib.suppress(OSError):
                data = full.read_bytes()
                digest.update(file.encode())
                digest.update(data)
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
        if file_problem(full) == "":  # absent (anything else there is read, or named)
            if required:
                try:
                    near = [p.name for p in path.iterdir()
                            if p.name.lower() == file.lower() or p.name == file[:-4]
                            or p.name.lower() == file[:-4] + ".txt"]
                except OSError:
                    near = []
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
    if file_problem(path / POLICY_FILE) != "":
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
