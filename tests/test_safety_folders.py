"""Output folders never cost a planner a file (issue 17, items 1, 2 and 6).

Every hostile output path is refused with exit 2, a message naming the path and no traceback,
before any solving starts (the solve is replaced by a function that fails the test if it is
called); a write that fails (full disk, read-only file system) leaves the previous results as
they were; a killed writer leaves a state the next run repairs; two runs on one folder do not
both write.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_instance_files

from allocator.cli import main
from allocator.core.errors import OutputPathError
from allocator.core.folders import (
    MARKER,
    check_output_path,
    clean_leftovers,
    stage,
    staged,
    written_by_allocator,
)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def cli(*args: str, cwd: Path | None = None):
    """Run the command line in this process; returns click's Result (exit_code, stderr)."""
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


def no_traceback(r) -> None:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output + r.stderr


@pytest.fixture
def no_solving(monkeypatch):
    """Any solve, sweep, comparison, diagnosis or generation fails the test."""
    import allocator.api as api
    import allocator.data.generate as gen

    def forbidden(*_a, **_k):
        raise AssertionError("the work started before the output path was checked")

    for name in ("solve", "sweep", "compare", "diagnose"):
        monkeypatch.setattr(api, name, forbidden)
    monkeypatch.setattr(gen, "generate_instance", forbidden)


@pytest.fixture
def inst(tmp_path) -> Path:
    return write_instance_files(tmp_path / "inst")


def snapshot(path: Path) -> dict[str, bytes | str]:
    """Every entry below path (and path itself) with its bytes or link target."""
    out: dict[str, bytes | str] = {}
    for p in [path, *sorted(path.rglob("*"))] if path.is_dir() and not path.is_symlink() \
            else [path]:
        key = str(p)
        if p.is_symlink():
            out[key] = "link:" + os.readlink(p)
        elif p.is_file():
            out[key] = p.read_bytes()
        elif p.is_dir():
            out[key] = "dir"
        elif p.exists():
            out[key] = "special"
    return out


def hidden_leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".allocator-" in p.name)


# ----------------------------------------------------------------------------------------------
# hostile paths: refused before solving, nothing touched
# ----------------------------------------------------------------------------------------------

def _user_folder(p: Path) -> Path:
    p.mkdir()
    (p / "my notes.txt").write_text("a year of work")
    return p


def _user_file(p: Path) -> Path:
    p.write_text("budget notes")
    return p


def _link_to_folder(p: Path) -> Path:
    _user_folder(p.with_name("real"))
    p.symlink_to(p.with_name("real"))
    return p


def _dangling(p: Path) -> Path:
    p.symlink_to(p.with_name("nowhere"))
    return p


def _fifo(p: Path) -> Path:
    os.mkfifo(p)
    return p


def _nested_user_file(p: Path) -> Path:
    (p / "sub").mkdir(parents=True)
    (p / "sub" / "keep.xlsx").write_bytes(b"PK\x03\x04")
    return p


def _edited_results(p: Path) -> Path:
    with staged(p, "results") as s:
        (s.path / "assignments.csv").write_text("enterprise_id\nE1\n")
    (p / "assignments.csv").write_text("enterprise_id\nE1\nE2 added by hand\n")
    return p


def _generated_instance(p: Path) -> Path:
    with staged(p, "instance") as s:
        (s.path / "policy.yaml").write_text("budget: {total: 1}\n")
    return p


HOSTILE = {
    "user folder": (_user_folder, "holds files allocator did not write"),
    "user file": (_user_file, "is a file"),
    "link to a folder": (_link_to_folder, "symbolic link"),
    "dangling link": (_dangling, "symbolic link"),
    "fifo": (_fifo, "not a folder"),
    "user file in a subfolder": (_nested_user_file, "sub/keep.xlsx"),
    "results edited by hand": (_edited_results, "changed since allocator wrote it"),
    "a generated instance": (_generated_instance, "an instance allocator generated"),
}


@pytest.mark.parametrize("command", ["solve", "sweep", "compare", "diagnose", "generate"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_output_refused_before_any_work(case, command, inst, tmp_path, no_solving):
    make, said = HOSTILE[case]
    out = make(tmp_path / "out")
    before = snapshot(out) | snapshot(inst)
    (tmp_path / "sc.yaml").write_text("scenarios:\n  base: {}\n")
    args = {"solve": ["solve", str(inst), "--out", str(out)],
            "sweep": ["sweep", str(inst), "--budgets", "1000,2000", "--out", str(out)],
            "compare": ["compare", str(inst), "--scenarios", str(tmp_path / "sc.yaml"),
                        "--out", str(out)],
            "diagnose": ["diagnose", str(inst), "--out", str(out)],
            "generate": ["generate", "--enterprises", "3", "--agencies", "3", "--districts",
                         "1", str(out)]}[command]
    if command == "generate" and case == "a generated instance":
        return  # generate may replace what it generated
    r = cli(*args)
    no_traceback(r)
    assert r.exit_code == 2, r.output + r.stderr
    assert said in r.stderr and "out" in r.stderr
    assert snapshot(out) | snapshot(inst) == before
    assert hidden_leftovers(tmp_path) == []


@pytest.mark.parametrize("out", [".", "..", "inst", "inst/..", "", "  "])
def test_current_folder_instance_and_parents_refused(out, inst, tmp_path, no_solving):
    before = snapshot(inst)
    r = cli("solve", "inst", "--out", out, cwd=tmp_path)
    no_traceback(r)
    assert r.exit_code == 2, r.stderr
    assert snapshot(inst) == before


def test_instance_reached_through_a_link_is_refused(inst, tmp_path, no_solving):
    (tmp_path / "alias").symlink_to(tmp_path)
    r = cli("solve", str(inst), "--out", str(tmp_path / "alias" / "inst"))
    no_traceback(r)
    assert r.exit_code == 2 and "is the input" in r.stderr


def test_parent_is_a_file(inst, tmp_path, no_solving):
    _user_file(tmp_path / "notes")
    r = cli("solve", str(inst), "--out", str(tmp_path / "notes" / "run1"))
    no_traceback(r)
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr
    assert (tmp_path / "notes").read_text() == "budget notes"


def test_parent_is_a_dangling_link(inst, tmp_path, no_solving):
    _dangling(tmp_path / "gone")
    r = cli("solve", str(inst), "--out", str(tmp_path / "gone" / "run1"))
    no_traceback(r)
    assert r.exit_code == 2 and "which does not exist" in r.stderr
    assert (tmp_path / "gone").is_symlink()


def test_force_replaces_a_user_folder_but_never_an_input(inst, tmp_path):
    out = _user_folder(tmp_path / "out")
    r = cli("solve", str(inst), "--out", str(out), "--force", "--quiet")
    no_traceback(r)
    assert r.exit_code == 0, r.stderr
    assert not (out / "my notes.txt").exists() and written_by_allocator(out)
    r = cli("solve", str(inst), "--out", str(inst), "--force")
    assert r.exit_code == 2 and "never writes over its inputs" in r.stderr


def test_results_inside_the_instance_and_our_own_results_are_fine(inst, tmp_path):
    out = inst / "results"
    for _ in range(2):  # the second run replaces the first one's unchanged results
        r = cli("solve", str(inst), "--out", str(out), "--quiet")
        no_traceback(r)
        assert r.exit_code == 0, r.stderr
        assert written_by_allocator(out)
    assert hidden_leftovers(inst) == []
    marker = json.loads((out / MARKER).read_text())
    assert set(marker["sha256"]) == set(marker["files"]) >= {"summary.json", "assignments.csv"}


def test_a_very_long_folder_name(tmp_path):
    out = tmp_path / ("r" * 250)
    with staged(out, "results") as s:
        (s.path / "a.csv").write_text("x\n")
    assert written_by_allocator(out)
    assert hidden_leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# writes that fail: the previous results stay as they were
# ----------------------------------------------------------------------------------------------

def _old_results(out: Path) -> dict:
    with staged(out, "results") as s:
        (s.path / "summary.json").write_text('{"status": "optimal", "old": true}')
    return snapshot(out)


WRITE_BIG = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from allocator.core.errors import OutputPathError
    from allocator.core.folders import staged
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # a 'full disk'
    try:
        with staged(Path(sys.argv[1]), "results") as s:
            (s.path / "assignments.csv").write_bytes(b"x" * 1_000_000)
    except OutputPathError as exc:
        print(exc)
        sys.exit(2)
""")


def test_full_disk_keeps_the_previous_results(tmp_path):
    out = tmp_path / "out"
    before = _old_results(out)
    r = subprocess.run([PY, "-c", WRITE_BIG, str(out)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "could not write" in r.stdout and "previous results there are as they were" in r.stdout
    assert snapshot(out) == before
    assert hidden_leftovers(tmp_path) == []


def _mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir(exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB file system (root only; skipped where mount is not allowed)."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=256k"):
        pytest.skip("cannot mount a small tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_really_full_disk(small_disk, inst):
    out = small_disk / "out"
    before = _old_results(out)
    (small_disk / "filler").write_bytes(b"\0" * 200_000)
    r = cli("solve", str(inst), "--out", str(out), "--quiet")
    no_traceback(r)
    if r.exit_code == 0:  # the plan fitted after all: it replaced the old one properly
        assert written_by_allocator(out)
        return
    assert r.exit_code == 2 and "could not write" in r.stderr, r.stderr
    assert snapshot(out) == before
    assert hidden_leftovers(small_disk) == []


def test_read_only_parent(inst, tmp_path, no_solving):
    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(ro, "size=64k,ro"):
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        ro.mkdir()
        ro.chmod(0o555)
    try:
        r = cli("solve", str(inst), "--out", str(ro / "run1"))
        no_traceback(r)
        assert r.exit_code == 2 and "cannot write in" in r.stderr, r.stderr
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        else:
            ro.chmod(0o755)


# ----------------------------------------------------------------------------------------------
# kills and interrupted swaps
# ----------------------------------------------------------------------------------------------

def test_interrupted_swap_is_restored_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    before = _old_results(out)
    # the state a kill between the two renames leaves: old folder hidden, new one staged
    os.rename(out, tmp_path / ".out.allocator-old-999999")
    (tmp_path / ".out.allocator-tmp-999999-abcd").mkdir()
    (tmp_path / ".out.allocator-tmp-999999-abcd" / "summary.json").write_text("{}")
    s = stage(out, "results")
    assert snapshot(out) == before  # restored before the new run writes
    s.discard()
    assert hidden_leftovers(tmp_path) == []
    assert snapshot(out) == before


def test_leftovers_are_removed_even_when_the_pid_was_reused(tmp_path):
    out = tmp_path / "out"
    _old_results(out)
    # a dead run's staging folder named with a pid that is alive now (ours)
    (tmp_path / f".out.allocator-tmp-{os.getpid()}-zz").mkdir()
    assert clean_leftovers(out)
    assert hidden_leftovers(tmp_path) == []


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from allocator.core.folders import staged
    target, i = Path(sys.argv[1]), 0
    while True:
        i += 1
        with staged(target, "results") as s:
            for k in range(12):
                (s.path / f"f{k}.csv").write_text(f"{i}\\n" * 2000)
        print(i, flush=True)
""")


def _complete(out: Path) -> bool:
    """The folder is one whole write: every file listed, all from the same round."""
    if not written_by_allocator(out):
        return False
    names = json.loads((out / MARKER).read_text())["files"]
    rounds = {(out / n).read_text() for n in names}
    return len(names) == 12 and len(rounds) == 1


@pytest.mark.parametrize("seed", range(6))
def test_kill_9_while_writing_never_loses_the_folder(tmp_path, seed):
    out = tmp_path / "out"
    rng = random.Random(seed)
    proc = subprocess.Popen([PY, "-c", WRITER, str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    for _ in range(1 + seed):  # let it finish a few folders, then kill it mid-way
        assert proc.stdout.readline()
    time.sleep(rng.uniform(0, 0.03))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    s = stage(out, "results")  # the next run
    s.discard()
    assert _complete(out)
    assert hidden_leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# two runs on one folder
# ----------------------------------------------------------------------------------------------

def test_a_second_run_on_the_same_folder_is_refused(inst, tmp_path, no_solving):
    out = tmp_path / "out"
    first = stage(out, "results")  # a run that is writing right now
    try:
        r = cli("solve", str(inst), "--out", str(out))
        no_traceback(r)
        assert r.exit_code == 2 and "another allocator run is writing" in r.stderr
        with pytest.raises(OutputPathError, match="another allocator run"):
            stage(out, "sweep")
    finally:
        first.discard()
    stage(out, "results").discard()  # free again once the first run is done


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from allocator.core.folders import stage
    s = stage(Path(sys.argv[1]), "results")
    print("locked", flush=True)
    sys.stdin.readline()
    (s.path / "a.csv").write_text("x\\n")
    s.commit()
""")


def test_concurrent_processes_one_writes_the_other_is_told(inst, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([PY, "-c", HOLDER, str(out)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = subprocess.run([PY, "-m", "allocator.cli", "solve", str(inst), "--out", str(out),
                            "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and "another allocator run is writing" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert (out / "a.csv").read_text() == "x\n"


def test_check_output_path_is_cheap_and_pure(tmp_path):
    """The early check (before the instance is read) writes nothing."""
    out = tmp_path / "a" / "b" / "out"
    assert check_output_path(out) == out
    assert not (tmp_path / "a").exists()


def test_rlimit_helper_is_available():
    assert resource.RLIMIT_FSIZE  # the full-disk test relies on it


def test_retotal_in_place_keeps_a_file_the_planner_added(inst, tmp_path):
    """retotal rewrites a results folder from its own edited assignments.csv, but a file the
    planner put in that folder is never replaced without --force."""
    out = tmp_path / "res"
    assert cli("solve", str(inst), "--out", str(out), "--quiet").exit_code == 0
    a = (out / "assignments.csv").read_text(encoding="utf-8-sig").splitlines()
    (out / "assignments.csv").write_text("\n".join(a[:-1]) + "\n", encoding="utf-8")
    r = cli("retotal", str(inst), str(out))  # an edited file of ours: fine
    no_traceback(r)
    assert r.exit_code == 0, r.stderr
    (out / "memo.docx").write_bytes(b"my notes")
    r = cli("retotal", str(inst), str(out))
    no_traceback(r)
    assert r.exit_code == 2 and "memo.docx" in r.stderr
    assert (out / "memo.docx").read_bytes() == b"my notes"
