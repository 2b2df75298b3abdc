"""Child processes that die with their parent (Linux: prctl PR_SET_PDEATHSIG).

Every process allocator starts (sweep/compare workers, the HiGHS guard child, the CBC runner
and the CP-SAT worker) asks the kernel for a signal when its parent goes, so a killed
`allocator` (kill -9 included) leaves nothing running. The signal is sent when the thread that
started the child ends, so children are started from the main thread. See docs/folders.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _prctl() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up once, so a forked child only calls it


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; else no-op).

    parent_pid: the parent this process was started by; if it is already gone (it died before
    the call), exit at once. Without it, a parent of pid 1 means gone."""
    if _PRCTL is None:
        return
    with contextlib.suppress(OSError):
        _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    ppid = os.getppid()
    if (parent_pid is not None and ppid != parent_pid) or ppid == 1:
        os._exit(1)


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A subprocess preexec_fn: the program started gets `sig` when this process dies."""
    parent = os.getpid()

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    return preexec
