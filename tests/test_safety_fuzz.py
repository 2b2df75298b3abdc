"""A fuzzing test (hypothesis): mutated instances never give a traceback (issue 17, item 8).

A valid tiny instance is mutated (cells, headers, encodings, line endings, policy.yaml, files
replaced by folders, links or nothing) and solved through the command line. The only answers
allowed are exit 0 or 1 (a plan or none) and exit 2 (bad input), never an exception; on exit 2
nothing is written. The default run is small and derandomized (a few seconds, the same
examples every time); ALLOCATOR_FUZZ_EXAMPLES=2000 runs a long session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from conftest import TINY, write_instance_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocator.cli import main

EXAMPLES = int(os.environ.get("ALLOCATOR_FUZZ_EXAMPLES", "30"))
CSV_FILES = [f for f in TINY if f.endswith(".csv")]

HOSTILE_CELLS = ["", " ", "-1", "0", "0.0", "1e-9", "nan", "NaN", "inf", "-inf", "1e400",
                 "1e15", "1e300", "12,000", "1 000", "=1+1", "+A1", "-E1", "@SUM(A1)", "'x",
                 "\t", "é中文", "x" * 300, '"', "a,b", "1:30", "0x10", "True", "null", "*",
                 "D1;D1;", ";", "E1", "A1", "S1", "D2", "4", "5", "100", "101"]

POLICY_VALUES = [None, "", "text", "1:30", 1e15, -1, 0, 1, 0.5, [], {}, [1, 2], {"a": 1},
                 True, "yes", 1e300, "12,000,000", "40%"]
POLICY_KEYS = [("budget", "total"), ("coverage", "weights"), ("coverage", "mandatory_levels"),
               ("coverage", "min_district_ratio"), ("anti_monopoly", "max_share_in_district"),
               ("anti_monopoly", "min_agencies_per_district"), ("quality", "min_score"),
               ("quality", "min_score_by_risk"), ("price", "floor_ratio"),
               ("price", "ceiling_ratio"), ("solver", "name"), ("solver", "time_limit"),
               ("solver", "mip_gap"), ("typo", "key")]


@st.composite
def cell_edit(draw):
    file = draw(st.sampled_from(CSV_FILES))
    lines = TINY[file].splitlines()
    row = draw(st.integers(1, max(1, len(lines) - 1)))
    width = len(lines[0].split(","))
    col = draw(st.integers(0, width - 1))
    value = draw(st.sampled_from(HOSTILE_CELLS) | st.text(max_size=12))
    return ("cell", file, row, col, value)


@st.composite
def header_edit(draw):
    file = draw(st.sampled_from(CSV_FILES))
    how = draw(st.sampled_from(["drop", "rename", "duplicate", "case", "space"]))
    col = draw(st.integers(0, 5))
    return ("header", file, how, col)


@st.composite
def bytes_edit(draw):
    file = draw(st.sampled_from(list(TINY)))
    how = draw(st.sampled_from(["utf16", "latin1", "bom", "crlf", "cr", "mixed", "nul",
                                "truncate", "empty", "no_newline"]))
    return ("bytes", file, how)


@st.composite
def policy_edit(draw):
    section, key = draw(st.sampled_from(POLICY_KEYS))
    value = draw(st.sampled_from(POLICY_VALUES))
    return ("policy", section, key, value)


@st.composite
def raw_policy(draw):
    text = draw(st.sampled_from([
        "budget: {total: 1:30}\n", "budget:\n\ttotal: 100\n", "budget: " + "[" * 200 + "]" * 200,
        "budget: {total: 100}\nbudget: {total: 200}\n",
        "b: &b {total: 5000}\nbudget:\n  <<: *b\n", "- budget\n", "budget: {total: 100}\n...",
        "budget: {total: !!python/object:os.system 1}\n", "budget: {total: 1e6}\n%YAML 1.1\n",
        "{" * 5, "budget: {total: 0o17}\n", "budget: {total: 1_000}\n"]))
    return ("raw_policy", text)


@st.composite
def file_edit(draw):
    file = draw(st.sampled_from(list(TINY)))
    how = draw(st.sampled_from(["remove", "folder", "dangling", "fifo"]))
    return ("file", file, how)


EDITS = st.lists(cell_edit() | header_edit() | bytes_edit() | policy_edit() | raw_policy()
                 | file_edit(), min_size=1, max_size=3)


def _cell(inst: Path, file: str, row: int, col: int, value: str) -> None:
    lines = (inst / file).read_text(encoding="utf-8").splitlines()
    if row < len(lines):
        cells = lines[row].split(",")
        if col < len(cells):
            cells[col] = value.replace("\n", " ").replace("\r", " ")
        lines[row] = ",".join(cells)
    (inst / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _header(inst: Path, file: str, how: str, col: int) -> None:
    lines = (inst / file).read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",")
    c = col % len(head)
    if how == "drop":
        del head[c]
    elif how == "duplicate":
        head.append(head[c])
    else:
        head[c] = {"rename": head[c] + "_x", "case": head[c].upper()}.get(
            how, " " + head[c] + " ")
    lines[0] = ",".join(head)
    (inst / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bytes(inst: Path, file: str, how: str) -> None:
    path = inst / file
    text = path.read_text(encoding="utf-8")
    data = {"utf16": lambda: text.encode("utf-16"),
            "latin1": lambda: (text + "Zürich\n").encode("latin-1"),
            "bom": lambda: b"\xef\xbb\xbf" + text.encode(),
            "crlf": lambda: text.replace("\n", "\r\n").encode(),
            "cr": lambda: text.replace("\n", "\r").encode(),
            "mixed": lambda: text.replace("\n", "\r", 1).encode(),
            "nul": lambda: text.encode().replace(b",", b"\0,", 1),
            "truncate": lambda: text.encode()[: len(text) // 2],
            "empty": lambda: b"",
            "no_newline": lambda: text.rstrip("\n").encode()}[how]()
    path.write_bytes(data)


def _policy(inst: Path, section: str, key: str, value: object) -> None:
    try:
        pol = yaml.safe_load((inst / "policy.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return
    if isinstance(pol, dict) and isinstance(pol.setdefault(section, {}), dict):
        pol[section][key] = value
        (inst / "policy.yaml").write_text(yaml.safe_dump(pol), encoding="utf-8")


def _raw_policy(inst: Path, text: str) -> None:
    path = inst / "policy.yaml"
    if path.is_symlink() or path.exists() and not path.is_file():
        return  # a FIFO would block the write
    path.write_text(text, encoding="utf-8")


def _file(inst: Path, file: str, how: str) -> None:
    path = inst / file
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if how == "folder":
        path.mkdir()
    elif how == "dangling":
        path.symlink_to(inst / "nowhere")
    elif how == "fifo":
        os.mkfifo(path)


EDIT = {"cell": _cell, "header": _header, "bytes": _bytes, "policy": _policy,
        "raw_policy": _raw_policy, "file": _file}


def apply(inst: Path, edit: tuple) -> None:
    """One edit; an edit of a file an earlier edit removed or re-encoded is skipped."""
    kind = edit[0]
    if kind in ("cell", "header", "bytes", "policy"):
        target = inst / ("policy.yaml" if kind == "policy" else edit[1])
        if target.is_symlink() or not target.is_file():
            return
        try:
            target.read_text(encoding="utf-8")
        except (UnicodeError, OSError):
            return
    EDIT[kind](inst, *edit[1:])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(edits=EDITS)
def test_mutated_instances_never_give_a_traceback(edits):
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        inst = write_instance_files(work / "inst")
        for edit in edits:
            apply(inst, edit)
        out = work / "out"
        r = CliRunner().invoke(main, ["solve", str(inst), "--out", str(out), "--quiet",
                                      "--time-limit", "20"])
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            f"{edits}: {r.exception!r}\n{r.stderr}")
        assert r.exit_code in (0, 1, 2), (edits, r.exit_code, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr
        if r.exit_code == 2:
            assert not out.exists(), edits
            assert r.stderr.strip(), "exit 2 must say why"
        else:
            assert (out / "summary.json").is_file()
        assert [p.name for p in work.iterdir() if ".allocator-" in p.name] == []
    finally:
        shutil.rmtree(work, ignore_errors=True)
