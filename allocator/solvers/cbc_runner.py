"""Runs one CBC process for allocator, and cleans up after it if allocator dies.

Run by path with the standard library only: `python -I -S cbc_runner.py PARENT_PID WORKDIR
CBC ARGS...` (CBC's output goes where the runner's goes: the log file).

- The runner asks the kernel for SIGTERM when its parent (allocator) dies, kill -9 included;
  then it kills CBC, removes WORKDIR (the model, start and solution files) and exits.
- CBC asks for SIGKILL when the runner dies, so even a killed runner leaves no CBC running.
- SIGINT is passed on to CBC: allocator's polite stop at the deadline (CBC then writes its
  best plan).
- The runner exits with CBC's exit code (128 + signal if CBC was stopped by one).
"""

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _no_prctl(*_args: int) -> int:
    return 0


def main() -> int:
    parent, workdir, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: no parent-death signal
        prctl = _no_prctl
    proc: subprocess.Popen | None = None

    def parent_gone(signum: int, _frame: object) -> None:
        # no Popen methods here: the interrupted proc.wait() holds their lock
        if proc is not None:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)
        os._exit(128 + signum)

    interrupted = []

    def interrupt(_signum: int, _frame: object) -> None:
        if proc is not None:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGINT)
        else:
            interrupted.append(True)

    signal.signal(signal.SIGTERM, parent_gone)
    signal.signal(signal.SIGINT, interrupt)
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # allocator died before the call
        parent_gone(signal.SIGTERM, None)
    me = os.getpid()

    def die_with_runner() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != me:
            os._exit(1)

    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=die_with_runner)
    if interrupted:
        proc.send_signal(signal.SIGINT)
    code = proc.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
