"""No process and no temporary file outlives a killed allocator (issue 17, item 5).

Each test starts `allocator` in a subprocess whose environment carries a unique tag (every
process it starts inherits it), waits until the solver process of interest is running, kills
allocator with SIGKILL and then waits for every tagged process to go. The waits poll with a
generous timeout: nothing here depends on how fast the machine is. TMPDIR points at a private
folder, which must be empty at the end (CBC's work folder included); the next run on the same
output folder leaves no hidden leftovers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from allocator.data.generate import generate_instance, write_instance
from allocator.solvers import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BACKENDS = [name for name in sorted(REGISTRY) if REGISTRY[name].available()]
#: generous bounds for a loaded machine: to see the child start, and to see everything go
START_TIMEOUT, END_TIMEOUT = 240.0, 30.0


def tagged(tag: str) -> dict[int, str]:
    """Live (not zombie) processes whose environment carries the tag: pid -> command line."""
    found = {}
    needle = f"ALLOCATOR_TEST_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state not in ("Z", "X"):
            found[int(entry.name)] = cmd
    return found


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """A city big enough that every solver needs some seconds on it."""
    path = tmp_path_factory.mktemp("city") / "city"
    write_instance(generate_instance(300, 20, 4, 2), path)
    return path


def kill_during(args: list[str], child: str, tmp: Path, pre: str = "") -> None:
    """Run `allocator ARGS` tagged, wait for a process whose command line holds `child`, kill
    allocator with SIGKILL; then no tagged process and no temporary file may remain."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signals are Linux-only")
    tag = uuid.uuid4().hex
    private = tmp / "tmpdir"
    private.mkdir()
    env = {**os.environ, "ALLOCATOR_TEST_TAG": tag, "TMPDIR": str(private)}
    code = pre + "import sys; from allocator.cli import run; sys.argv[0] = 'allocator'; run()"
    proc = subprocess.Popen([PY, "-c", code, *args], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = wait_until(lambda: any(child in c for p, c in tagged(tag).items()
                                         if p != proc.pid), START_TIMEOUT)
        assert started, f"no {child} process started; running: {tagged(tag)}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_until(lambda: not tagged(tag), END_TIMEOUT), \
            f"left running after kill -9: {tagged(tag)}"
        assert wait_until(lambda: not any(private.iterdir()), END_TIMEOUT), \
            f"temporary files left: {sorted(p.name for p in private.iterdir())}"
    finally:
        for pid in tagged(tag):  # never leave a stray process to the other tests
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def next_run_cleans(tmp: Path, out: str) -> None:
    from allocator.core.folders import stage

    stage(tmp / out, "results").discard()
    assert [p.name for p in tmp.iterdir() if ".allocator-" in p.name] == []


@pytest.mark.skipif("cbc" not in BACKENDS, reason="CBC not available")
def test_killed_cbc_run_leaves_no_cbc_and_no_work_folder(city, tmp_path):
    kill_during(["solve", str(city), "--out", "res", "--solver", "cbc", "--time-limit", "300"],
                "cbc_runner.py", tmp_path)
    next_run_cleans(tmp_path, "res")


@pytest.mark.skipif("cpsat" not in BACKENDS, reason="CP-SAT not available")
def test_killed_cpsat_run_leaves_no_worker(city, tmp_path):
    kill_during(["solve", str(city), "--out", "res", "--solver", "cpsat", "--time-limit", "300"],
                "cpsat_worker.py", tmp_path)
    next_run_cleans(tmp_path, "res")


@pytest.mark.skipif("highs" not in BACKENDS, reason="HiGHS not available")
def test_killed_highs_run_leaves_no_guard_child(city, tmp_path):
    # every MIP in a guard child, as on a large city
    pre = "import allocator.solvers.highs_child as h; h.GUARD_MIN_COLUMNS = 0; "
    kill_during(["solve", str(city), "--out", "res", "--solver", "highs", "--time-limit", "300"],
                "multiprocessing.spawn", tmp_path, pre)
    next_run_cleans(tmp_path, "res")


def test_killed_sweep_leaves_no_worker_and_no_resource_tracker(city, tmp_path):
    kill_during(["sweep", str(city), "--budgets", "2e5:2e6:8", "--jobs", "2", "--out", "sw",
                 "--time-limit", "60"], "multiprocessing.spawn", tmp_path)
    next_run_cleans(tmp_path, "sw")


def test_sigterm_ends_a_run_cleanly(city, tmp_path):
    """SIGTERM (a closed terminal, `kill`) removes the staging folder at once."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([PY, "-m", "allocator.cli", "solve", str(city), "--out", "res",
                             "--time-limit", "300"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert wait_until(lambda: any(".res.allocator-tmp-" in p.name
                                  for p in tmp_path.iterdir()), START_TIMEOUT)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if ".allocator-" in p.name] == []
    assert not (tmp_path / "res").exists()


UNGUARDED_SCRIPT = """
import numpy as np
from allocator.solvers import highs_child

# no `if __name__ == "__main__":` guard: the spawned child imports this file again, tries to
# start a child of its own while starting, and dies; the parent must not wait for it forever
out, latest, seconds = highs_child.await_child(highs_child._child_solve,
                                               {"x": np.zeros(2_000_000)}, 30.0)
print("returned", out, latest)
"""


def test_a_child_dying_while_it_starts_does_not_block_the_parent(tmp_path):
    """A guarded HiGHS child that died during start-up (an unguarded script imported again)
    left the parent blocked forever writing the model (16 MB here) into spawn's pipe."""
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=120,
                              env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("the parent was still waiting for its dead child after 120 s")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "returned None None" in done.stdout
