"""The one way allocator writes a folder: staged beside the target, swapped in atomically, and
never over anything allocator did not write.

A folder allocator writes carries a marker file (MARKER) listing every file it wrote with its
sha256. An output path may be replaced only when it is absent, an empty folder, or a folder
whose every file is listed in its marker and unchanged since (a results folder edited by hand
is the planner's work now); anything else is refused (OutputPathError) unless `force` is
given. A generated instance is replaced only by another generated instance. An output path
that is (or contains) one of the run's inputs, or the current folder, is always refused. The
checks run and the staging folder is made before any solving starts (`stage`), so a bad path
costs a second, not a solve.

Writing: every OSError while the folder is written or swapped in (disk full, quota, a
read-only file system) becomes an OutputPathError saying the target was left as it was.

Kills: the staging folder and the displaced old folder carry the writing process's id in their
names; a lock file beside the target (flock) makes a second concurrent run on the same target
refuse at once. The next run on the same target takes the lock, so it knows no other run is
writing there: it removes every staging folder left beside the target and puts a displaced old
folder back when the swap was cut between its two renames. See docs/folders.md.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from allocator.core.errors import OutputPathError

#: the marker file in every folder allocator writes
MARKER = ".allocator.json"
#: the kind of folder `generate` writes: an input, replaced only by another generated one
INSTANCE_KIND = "instance"
_TMP = ".{key}.allocator-tmp-{pid}-"
_OLD = ".{key}.allocator-old-{pid}"
_LOCK = ".{key}.allocator-lock"
_LEFTOVER = re.compile(r"^\.(?P<key>.+)\.allocator-(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?$")
#: longest target name used as is in the names of its staging, old and lock entries
_KEY_CHARS = 100


def _key(name: str) -> str:
    """The target's name as used in its hidden siblings' names (long names shortened with a
    hash, so that a 255-byte name still leaves room for the suffixes)."""
    if len(name.encode()) <= _KEY_CHARS:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return name.encode()[:60].decode(errors="ignore") + "~" + digest


def _within(inner: Path, outer: Path) -> bool:
    """inner is outer or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(folder: Path) -> dict | None:
    """The folder's marker (kind, files, sha256), or None if it has no valid one."""
    marker = folder / MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "allocator" or not isinstance(
            data.get("files"), list):
        return None
    return data


def _entries(folder: Path) -> Iterator[tuple[str, Path]]:
    """Every entry below folder (relative POSIX path, path), sorted; links not followed."""
    for path in sorted(folder.rglob("*")):
        yield path.relative_to(folder).as_posix(), path


def foreign_files(folder: Path, limit: int = 5, edits_ok: bool = False) -> list[str]:
    """Up to `limit` entries of folder that allocator did not write, or changed since it wrote
    them (each with a word on why; `edits_ok`: a changed file allocator wrote is fine); empty
    when allocator may replace the folder."""
    marker = read_marker(folder)
    listed = set(marker["files"]) if marker else set()
    hashes = marker.get("sha256") if marker else None
    hashes = hashes if isinstance(hashes, dict) else None
    out: list[str] = []
    try:
        for rel, path in _entries(folder):
            if rel == MARKER and marker is not None:
                continue
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                out.append(f"{rel} (not a plain file)")
            elif path.is_file() and rel not in listed:
                out.append(rel)
            elif path.is_file() and hashes is not None and not edits_ok and (
                    rel not in hashes or file_sha256(path) != hashes[rel]):
                out.append(f"{rel} (changed since allocator wrote it)")
            if len(out) >= limit:
                break
    except OSError as exc:
        out.append(f"(cannot be listed: {exc.strerror or exc})")
    return out


def written_by_allocator(folder: Path) -> bool:
    """The folder has our marker and holds nothing the marker does not list (unchanged)."""
    return read_marker(folder) is not None and not foreign_files(folder, limit=1)


def _cwd() -> Path | None:
    try:
        return Path.cwd().resolve()
    except OSError:  # the current folder was removed
        return None


def check_output_path(out: Path, force: bool = False, protect: Iterable[Path] = (),
                      kind: str | None = None, edits_ok: bool = False) -> Path:
    """The absolute output path, or OutputPathError saying why it may not be written and what
    to do. Inputs in `protect` (instance folders, scenario files) may never be overwritten.
    `kind` (results, sweep, instance...) refuses to replace a generated instance with
    anything but another one. `edits_ok`: files allocator wrote may have been changed (a
    folder rewritten from its own edited files, `retotal`); files it did not write are still
    refused."""
    out = Path(out)
    if str(out).strip() == "":
        raise OutputPathError("the output path is empty; give a folder name")
    try:
        absolute = Path(os.path.abspath(out))
        resolved = absolute.resolve()
    except (OSError, RuntimeError) as exc:  # a link loop, a removed current folder
        raise OutputPathError(f"the output path {out} cannot be resolved ({exc}); give "
                              "another path") from None
    for p in protect:
        src = Path(os.path.abspath(p)).resolve()
        if _within(src, resolved):
            what = "is" if src == resolved else "contains"
            raise OutputPathError(
                f"the output path {out} {what} the input {p}; allocator never writes over its "
                f"inputs. Give another folder (a folder inside the instance folder is fine)")
    cwd = _cwd()
    if cwd is not None and _within(cwd, resolved):
        raise OutputPathError(f"the output path {out} is the current folder or contains it; "
                              "give a new folder name, e.g. results/run1")
    if absolute.is_symlink():
        raise OutputPathError(f"the output path {out} is a symbolic link; give the path of a "
                              "real folder (allocator does not write through links)")
    parent = absolute.parent
    for anc in [parent, *parent.parents]:
        if anc.is_symlink() and not anc.exists():
            raise OutputPathError(f"cannot create {out}: {anc} is a link to "
                                  f"{os.readlink(anc)}, which does not exist")
        if anc.exists() and not anc.is_dir():
            raise OutputPathError(f"cannot create {out}: {anc} is a file, not a folder")
        if anc.exists():
            if not os.access(anc, os.W_OK | os.X_OK):  # read-only disk, no permission
                raise OutputPathError(f"cannot write in {anc} (read-only or no permission); "
                                      "give another folder")
            break
    if not absolute.exists():
        return absolute
    mode = absolute.lstat().st_mode
    if stat.S_ISREG(mode):
        if not force:
            raise OutputPathError(f"the output path {out} is a file; allocator writes a "
                                  "folder there. Give another path, or --force to replace "
                                  "the file")
    elif not stat.S_ISDIR(mode):
        raise OutputPathError(f"the output path {out} is not a folder (a device, FIFO or "
                              "socket); give another path")
    elif not force:
        _check_replaceable(absolute, out, kind, edits_ok)
    return absolute


def _check_replaceable(folder: Path, out: Path, kind: str | None, edits_ok: bool) -> None:
    """A folder may be replaced when it is empty, or allocator wrote it, unchanged since."""
    try:
        empty = not any(folder.iterdir())
    except OSError as exc:
        raise OutputPathError(f"cannot read the output folder {out}: "
                              f"{exc.strerror or exc}") from None
    if empty:
        return
    foreign = foreign_files(folder, edits_ok=edits_ok)
    if foreign:
        changed = any("changed since" in f for f in foreign)
        raise OutputPathError(
            f"the output folder {out} holds files allocator did not write"
            + (" or that were changed since" if changed else "") + " ("
            + ", ".join(foreign) + (", ..." if len(foreign) >= 5 else "")
            + "); allocator replaces only empty folders or its own, unchanged results. Give "
              "another folder, or --force to replace it and everything in it")
    marker = read_marker(folder)
    if marker is not None and kind is not None and (
            (marker.get("kind") == INSTANCE_KIND) != (kind == INSTANCE_KIND)):
        what = ("an instance allocator generated (an input)"
                if marker.get("kind") == INSTANCE_KIND else f"allocator's {marker.get('kind')}")
        raise OutputPathError(f"the output folder {out} holds {what}, not {kind}; give another "
                              "folder, or --force to replace it")


#: staging folders of this process not yet committed or discarded (see discard_all)
_ACTIVE: list[Staged] = []


def discard_all() -> None:
    """Remove every staging folder of this process (a stop signal's handler calls it before
    exiting). A folder in the middle of its swap is left alone: the next run repairs it."""
    for s in list(_ACTIVE):
        if not s.swapping:
            s.discard()


@dataclass(eq=False)
class Staged:
    """A staging folder beside the target; `commit` swaps it in, `discard` removes it."""

    target: Path
    tmp: Path
    kind: str
    lock_fd: int | None = None
    done: bool = False
    meta: dict = field(default_factory=dict)
    swapping: bool = False

    @property
    def path(self) -> Path:
        """Where to write the folder's files (the staging folder)."""
        return self.tmp

    @contextlib.contextmanager
    def writing(self) -> Iterator[Staged]:
        """`with s.writing(): write into s.path; s.commit()`: an OSError there (disk full, a
        read-only file system) removes the staging folder and becomes an OutputPathError
        saying the target was left as it was."""
        try:
            yield self
        except OSError as exc:
            self.discard()
            raise OutputPathError(_write_failure(self.target, exc)) from None

    def commit(self) -> Path:
        """Write the marker and swap the staging folder in place of the target."""
        if self.done:
            raise RuntimeError("this staging folder was already committed or discarded")
        files = sorted(rel for rel, p in _entries(self.tmp)
                       if p.is_file() and not p.is_symlink() and rel != MARKER)
        marker = {"tool": "allocator", "kind": self.kind, "files": files,
                  "sha256": {rel: file_sha256(self.tmp / rel) for rel in files}, **self.meta}
        with open(self.tmp / MARKER, "w", encoding="utf-8") as f:
            f.write(json.dumps(marker, indent=1))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.tmp)
        self.swapping = True
        old = None
        if self.target.exists() or self.target.is_symlink():
            old = self.target.with_name(_OLD.format(key=_key(self.target.name),
                                                    pid=os.getpid()))
            os.rename(self.target, old)
        try:
            os.rename(self.tmp, self.target)
        except OSError:
            if old is not None:  # put the old folder back before saying why
                with contextlib.suppress(OSError):
                    os.rename(old, self.target)
            self.swapping = False
            raise
        _fsync_dir(self.target.parent)
        self.done = True
        self.swapping = False
        if old is not None:
            remove(old)
        self._unlock()
        return self.target

    def discard(self) -> None:
        """Remove the staging folder (the target is left as it was)."""
        if not self.done:
            remove(self.tmp)
            self.done = True
        self._unlock()

    def _unlock(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.lock_fd is not None:
            lock = self.target.with_name(_LOCK.format(key=_key(self.target.name)))
            with contextlib.suppress(OSError):
                lock.unlink()
            os.close(self.lock_fd)
            self.lock_fd = None


def _write_failure(target: Path, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        why += " (the disk or your quota is full)"
    kept = ("the previous results there are as they were" if target.exists()
            else "nothing was written there")
    return (f"could not write {target}: {why}; {kept}. Free some space or give another "
            "folder, and run again")


def remove(path: Path) -> None:
    """Remove a file or a folder tree of ours, making read-only folders writable on the way
    (a user may have write-protected old results); errors are ignored."""
    if path.is_symlink() or path.is_file():
        with contextlib.suppress(OSError):
            path.unlink()
        return

    def retry(func, name, _exc) -> None:  # noqa: ANN001 - shutil's onerror signature
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
            func(name)

    shutil.rmtree(path, onerror=retry)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


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
    lock = target.with_name(_LOCK.format(key=_key(target.name)))
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
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
    """Remove what killed runs left beside target (staging folders, a displaced old folder
    after a completed swap) and put a displaced old folder back when the swap was cut short.

    Call it holding the target's lock: then no other run is writing there, so every such
    entry is a leftover, whatever became of the process id in its name."""
    done: list[str] = []
    parent = target.parent
    key = _key(target.name)
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return done
    olds = []
    for p in entries:
        m = _LEFTOVER.match(p.name)
        if not m or m.group("key") != key:
            continue
        if m.group("kind") == "old":
            olds.append(p)
        else:
            remove(p)
            done.append(f"removed {p.name}, left by an interrupted run")
    for p in olds:  # the newest displaced folder is the one to restore
        if not (target.exists() or target.is_symlink()):
            os.rename(p, target)
            done.append(f"restored {target} from an interrupted run")
        else:
            remove(p)
            done.append(f"removed {p.name}, left by an interrupted run")
    return done


def stage(out: Path, kind: str, force: bool = False, protect: Iterable[Path] = (),
          edits_ok: bool = False) -> Staged:
    """Check the output path, lock it, clean a killed run's leftovers and make the staging
    folder beside it: every check a write needs happens here, before the work starts."""
    protect = list(protect)
    target = check_output_path(out, force, protect, kind, edits_ok)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the folder {target.parent}: "
                              f"{exc.strerror or exc}") from None
    try:
        fd = _lock(target)
    except OSError as exc:
        raise OutputPathError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    try:
        clean_leftovers(target)
        target = check_output_path(out, force, protect, kind, edits_ok)  # restored, too
        tmp = Path(tempfile.mkdtemp(prefix=_TMP.format(key=_key(target.name),
                                                       pid=os.getpid()),
                                    dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide results from others
    except OSError as exc:
        os.close(fd)
        raise OutputPathError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    except BaseException:
        os.close(fd)
        raise
    s = Staged(target, tmp, kind, fd)
    _ACTIVE.append(s)
    return s


@contextlib.contextmanager
def staged(out: Path, kind: str, force: bool = False, protect: Iterable[Path] = (),
           edits_ok: bool = False) -> Iterator[Staged]:
    """`with staged(out, "results") as s: write into s.path`; committed on success, removed
    on any exception (the target is then left as it was; an OSError becomes an
    OutputPathError saying so)."""
    s = stage(out, kind, force, protect, edits_ok)
    try:
        with s.writing():
            yield s
            if not s.done:
                s.commit()
    finally:
        s.discard()


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
        fd, tmp = tempfile.mkstemp(prefix=f".{_key(path.name)}.allocator-tmp-{os.getpid()}-",
                                   dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from others
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputPathError(_write_failure(path, exc)) from None
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
    allocator wrote and is listed in its marker, unchanged."""
    try:
        with open(path, "rb") as f:
            if f.read(len(SIGNATURE)) == SIGNATURE:
                return True
    except OSError:
        return False
    marker = read_marker(path.parent)
    if marker is None or path.name not in marker["files"]:
        return False
    hashes = marker.get("sha256")
    if not isinstance(hashes, dict):
        return True
    try:
        return hashes.get(path.name) == file_sha256(path)
    except OSError:
        return False
