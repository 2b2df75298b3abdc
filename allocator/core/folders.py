"""The one way allocator writes a folder: staged beside the target, swapped in atomically, and
never over anything allocator did not write.

A folder allocator writes carries a marker file (MARKER) listing every file it wrote. An output
path may be replaced only when it is absent, an empty folder, or a folder whose every file is
listed in its marker; anything else is refused (OutputPathError) unless `force` is given. An
output path that is (or contains) one of the run's inputs is always refused. The checks run
and the staging folder is made before any solving starts (`stage`), so a bad path costs a
second, not a solve.

Kills: the staging folder and the displaced old folder carry the writing process's id in
their names; a later run on the same target removes a dead run's staging folder and puts a
displaced old folder back when the swap was cut between its two renames. A lock file beside
the target makes a second concurrent run on the same target refuse at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from allocator.core.errors import OutputPathError

#: the marker file in every folder allocator writes
MARKER = ".allocator.json"
_TMP = ".{name}.allocator-tmp-{pid}-"
_OLD = ".{name}.allocator-old-{pid}"
_LOCK = ".{name}.allocator-lock"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.allocator-(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _within(inner: Path, outer: Path) -> bool:
    """inner is outer or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def written_by_allocator(folder: Path) -> bool:
    """The folder has our marker and holds no file the marker does not list."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return False
    try:
        listed = set(json.loads(marker.read_text(encoding="utf-8")).get("files", []))
    except (OSError, ValueError, AttributeError):
        return False
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or (path.is_file() and rel != MARKER and rel not in listed):
            return False
    return True


def _foreign(folder: Path, limit: int = 5) -> list[str]:
    """A few files of the folder that allocator did not write (for the message)."""
    marker = folder / MARKER
    listed: set[str] = set()
    if marker.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            listed = set(json.loads(marker.read_text(encoding="utf-8")).get("files", []))
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if (path.is_file() or path.is_symlink()) and rel != MARKER and rel not in listed:
            out.append(rel)
            if len(out) >= limit:
                break
    return out


def check_output_path(out: Path, force: bool = False, protect: Iterable[Path] = ()) -> Path:
    """The absolute output path, or OutputPathError saying why it may not be written and what
    to do. Inputs in `protect` (instance folders, scenario files) may never be overwritten."""
    out = Path(out)
    if str(out).strip() == "":
        raise OutputPathError("the output path is empty; give a folder name")
    absolute = Path(os.path.abspath(out))
    resolved = absolute.resolve()
    for p in protect:
        src = Path(p).resolve()
        if _within(src, resolved):
            what = "is" if src == resolved else "contains"
            raise OutputPathError(
                f"the output path {out} {what} the input {p}; allocator never writes over its "
                f"inputs. Give another folder (a folder inside the instance folder is fine)")
    if _within(Path.cwd().resolve(), resolved):
        raise OutputPathError(f"the output path {out} is the current folder or contains it; "
                              "give a new folder name, e.g. results/run1")
    if absolute.is_symlink():
        raise OutputPathError(f"the output path {out} is a symbolic link; give the path of a "
                              "real folder (allocator does not write through links)")
    parent = absolute.parent
    for anc in [parent, *parent.parents]:
        if anc.exists() and not anc.is_dir():
            raise OutputPathError(f"cannot create {out}: {anc} is a file, not a folder")
        if anc.exists():
            break
    if absolute.exists():
        if absolute.is_file():
            if not force:
                raise OutputPathError(f"the output path {out} is a file; allocator writes a "
                                      "folder there. Give another path, or --force to replace "
                                      "the file")
        elif not absolute.is_dir():
            raise OutputPathError(f"the output path {out} is not a folder (a device, FIFO or "
                                  "socket); give another path")
        elif not force and any(absolute.iterdir()) and not written_by_allocator(absolute):
            foreign = _foreign(absolute)
            raise OutputPathError(
                f"the output folder {out} holds files allocator did not write ("
                + ", ".join(foreign) + (", ..." if len(foreign) >= 5 else "")
                + "); allocator replaces only empty folders or its own results. Give another "
                  "folder, or --force to replace it and everything in it")
    return absolute


@dataclass
class Staged:
    """A staging folder beside the target; `commit` swaps it in, `discard` removes it."""

    target: Path
    tmp: Path
    kind: str
    lock_fd: int | None = None
    done: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where to write the folder's files (the staging folder)."""
        return self.tmp

    def commit(self) -> Path:
        """Write the marker and swap the staging folder in place of the target."""
        if self.done:
            raise RuntimeError("this staging folder was already committed or discarded")
        files = sorted(p.relative_to(self.tmp).as_posix() for p in self.tmp.rglob("*")
                       if p.is_file() and p.name != MARKER)
        marker = {"tool": "allocator", "kind": self.kind, "files": files, **self.meta}
        (self.tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        _fsync_dir(self.tmp)
        old = None
        if self.target.exists() or self.target.is_symlink():
            old = self.target.with_name(_OLD.format(name=self.target.name, pid=os.getpid()))
            os.rename(self.target, old)
        os.rename(self.tmp, self.target)
        _fsync_dir(self.target.parent)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        self.done = True
        self._unlock()
        return self.target

    def discard(self) -> None:
        """Remove the staging folder (the target is left as it was)."""
        if not self.done:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.done = True
        self._unlock()

    def _unlock(self) -> None:
        if self.lock_fd is not None:
            lock = self.target.with_name(_LOCK.format(name=self.target.name))
            with contextlib.suppress(OSError):
                lock.unlink()
            os.close(self.lock_fd)
            self.lock_fd = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock(target: Path) -> int:
    """An exclusive lock on the target's lock file, or OutputPathError if another run has it."""
    lock = target.with_name(_LOCK.format(name=target.name))
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputPathError(
                    f"another allocator run is writing {target} right now; wait for it to "
                    "finish, or give another output folder") from None
            raise
        try:  # the holder before us may have removed the file: lock the one on disk
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def clean_leftovers(target: Path) -> list[str]:
    """Remove what a killed run left beside target (staging folders, a displaced old folder
    after a completed swap) and put a displaced old folder back when the swap was cut short.
    Only leftovers of processes that are no longer running are touched."""
    done: list[str] = []
    parent = target.parent
    if not parent.is_dir():
        return done
    for p in parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if not m or m.group("name") != target.name or _alive(int(m.group("pid"))):
            continue
        if m.group("kind") == "old" and not (target.exists() or target.is_symlink()):
            os.rename(p, target)
            done.append(f"restored {target} from an interrupted run")
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name}, left by an interrupted run")
        else:
            p.unlink(missing_ok=True)
            done.append(f"removed {p.name}, left by an interrupted run")
    return done


def stage(out: Path, kind: str, force: bool = False, protect: Iterable[Path] = ()) -> Staged:
    """Check the output path, lock it, clean a killed run's leftovers and make the staging
    folder beside it: every check a write needs happens here, before the work starts."""
    target = check_output_path(out, force, protect)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the folder {target.parent}: "
                              f"{exc.strerror or exc}") from None
    try:
        fd = _lock(target)
    except PermissionError:
        raise OutputPathError(f"cannot write in {target.parent}: permission denied") from None
    except OSError as exc:
        raise OutputPathError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    try:
        clean_leftovers(target)
        target = check_output_path(out, force, protect)  # a restored folder is checked too
        tmp = Path(tempfile.mkdtemp(prefix=_TMP.format(name=target.name, pid=os.getpid()),
                                    dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide results from others
    except OSError as exc:
        os.close(fd)
        raise OutputPathError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    except BaseException:
        os.close(fd)
        raise
    return Staged(target, tmp, kind, fd)


@contextlib.contextmanager
def staged(out: Path, kind: str, force: bool = False,
           protect: Iterable[Path] = ()) -> Iterator[Staged]:
    """`with staged(out, "results") as s: write into s.path`; committed on success, removed
    on any exception (the target is then left as it was)."""
    s = stage(out, kind, force, protect)
    try:
        yield s
        if not s.done:
            s.commit()
    except BaseException:
        s.discard()
        raise


def write_bytes_atomically(path: Path, data: bytes, force: bool = False,
                           protect: Iterable[Path] = ()) -> Path:
    """One file (a report, a workbook) written beside its target and renamed into place; an
    existing file is replaced only if allocator wrote it (see is_our_file) or with force."""
    path = Path(os.path.abspath(path))
    for p in protect:
        if _within(Path(p).resolve(), path.resolve()):
            raise OutputPathError(f"the output path {path} is an input of this run")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputPathError(f"the output path {path} is not a plain file; give another path")
    if path.exists() and not force and not is_our_file(path):
        raise OutputPathError(f"{path} exists and allocator did not write it; give another "
                              "path, or --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.allocator-tmp-{os.getpid()}-",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _list_in_marker(path)
    return path


def _list_in_marker(path: Path) -> None:
    """A file added to a folder allocator wrote (a report written later) is listed in its
    marker, so the folder still counts as allocator's own."""
    marker = path.parent / MARKER
    if not marker.is_file() or marker.is_symlink():
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        data = json.loads(marker.read_text(encoding="utf-8"))
        files = list(data.get("files", []))
        if path.name not in files:
            data["files"] = sorted([*files, path.name])
            tmp = marker.with_name(f"{MARKER}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, marker)


#: a comment allocator puts at the top of single files it writes (HTML reports)
SIGNATURE = b"<!-- written by allocator -->"


def is_our_file(path: Path) -> bool:
    """A single file allocator wrote: it starts with SIGNATURE (reports), or lies in a folder
    allocator wrote and is listed in its marker."""
    try:
        with open(path, "rb") as f:
            if f.read(len(SIGNATURE)) == SIGNATURE:
                return True
    except OSError:
        return False
    marker = path.parent / MARKER
    if marker.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return path.name in json.loads(marker.read_text(encoding="utf-8")).get("files", [])
    return False
