"""OR-Tools CP-SAT on the model scaled exactly to integers (solvers/cpsat_scaling.py).

If a model cannot be scaled exactly the session reports status `error` with the reason
instead of rounding.

CP-SAT runs in a worker process of its own. OR-Tools 9.15 and highspy 1.15 each ship a
different `libhighs.so.1` under the same soname, so whichever is imported second fails to
load in the same process (undefined symbols). The worker imports only OR-Tools, builds the
model once from the scaled arrays and answers objective / row / solve requests over pipes,
so one worker serves all levels of a lexicographic solve.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pickle
import select
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, cast

import numpy as np
import scipy.sparse as sp

from allocator.model.linear import LinearModel
from allocator.solvers.base import SolveResult, Status, relative_gap, settle_status
from allocator.solvers.cpsat_scaling import (
    ScalingError,
    _row_bounds,
    activity_range,
    scale_model,
    scale_vector,
)

#: the worker script, run by path so that the allocator package is not imported in it
WORKER = Path(__file__).with_name("cpsat_worker.py")



class WorkerError(RuntimeError):
    """The CP-SAT worker failed, died or did not answer in time."""


class WorkerTimeout(WorkerError):
    """The worker did not answer by the deadline and was stopped."""


#: CP-SAT holds max_time_in_seconds well; a worker still silent this long after the deadline
#: (seconds + share of the limit) is stopped and the level ends without a solution
GRACE = (5.0, 0.10)


class CpSatWorker:
    """A child Python process running solvers/cpsat_worker.py; requests and replies are pickles."""

    def __init__(self) -> None:
        self.err = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(os.getpid())],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None  # PIPEs above
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.err)
        self.version = self._receive(120.0)

    def request(self, msg: tuple, timeout: float = 600.0):
        """Send one request and wait up to timeout seconds for its reply."""
        try:
            pickle.dump(msg, self.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(f"CP-SAT worker is gone: {exc}{self._stderr()}") from None
        return self._receive(timeout)

    def _receive(self, timeout: float):
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise WorkerTimeout(f"CP-SAT did not answer within {timeout:.1f} s and was stopped")
        try:
            kind, payload = pickle.load(self.stdout)
        except (EOFError, pickle.UnpicklingError) as exc:
            self.close()
            raise WorkerError(f"CP-SAT worker died ({exc!r}){self._stderr()}") from None
        if kind != "ok":
            raise WorkerError(str(payload))
        return payload

    def _stderr(self) -> str:
        try:
            self.err.seek(0)
            text = self.err.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {text[-2000:]}" if text else ""

    def close(self) -> None:
        self._finalizer()


def _stop(proc: subprocess.Popen, err) -> None:
    """Ask the worker to quit; kill it if it does not go within a few seconds."""
    if proc.poll() is None:
        try:
            stdin = cast(IO[bytes], proc.stdin)
            pickle.dump(("quit",), stdin)
            stdin.flush()
            stdin.close()
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, err):
        try:
            if f is not None:
                f.close()
        except (OSError, ValueError):
            pass


class CpSatSession:
    """The scaled model held by a CP-SAT worker; objectives and hold rows change per level."""

    def __init__(self, model: LinearModel, threads: int, seed: int) -> None:
        self.n = model.n_vars
        self.threads = int(threads or 0)
        self.seed = int(seed)
        self.error: str | None = None
        self.obj = np.zeros(self.n)
        self.sense = "min"
        self.factor = 1.0
        self.worker: CpSatWorker | None = None
        self.timed_out: str | None = None
        try:
            self.sm = scale_model(model)
            self.worker = CpSatWorker()
            A = self.sm.matrix
            self.worker.request(("build", self.sm.lb.tolist(), self.sm.ub.tolist(),
                                 A.indptr.tolist(), A.indices.tolist(), A.data.tolist(),
                                 self.sm.row_lo.tolist(), self.sm.row_hi.tolist()))
        except (ScalingError, WorkerError) as exc:
            self.error = f"cpsat: {exc}"

    def close(self) -> None:
        """Stop the worker process (also done when the session is garbage collected)."""
        if self.worker is not None:
            self.worker.close()

    def _send(self, msg: tuple, timeout: float = 600.0):
        if self.worker is None:
            return None
        try:
            return self.worker.request(msg, timeout)
        except WorkerTimeout as exc:
            self.timed_out = f"cpsat: {exc}"
            self.error = self.timed_out
            return None
        except WorkerError as exc:
            self.error = f"cpsat: {exc}"
            return None

    def set_objective(self, coefs: np.ndarray, sense: str) -> None:
        self.obj = np.asarray(coefs, dtype=float).copy()
        self.sense = sense
        if self.error:
            return
        try:
            pushed = np.flatnonzero((self.sm.push != 0) & (self.obj != 0))
            favours = self.sm.push[pushed] * self.obj[pushed] * (1 if sense == "max" else -1)
            if (favours < 0).any():
                raise ScalingError("the objective pulls a one-sided continuous column against "
                                   "the direction it was made integer in")
            ints, self.factor = scale_vector(self.obj, self.sm.col_scale)
        except ScalingError as exc:
            self.error = f"cpsat: objective: {exc}"
            return
        nz = np.flatnonzero(ints)
        sign = -1 if sense == "max" else 1  # CP-SAT minimises; scaling_factor restores sign
        self._send(("objective", nz.tolist(), (sign * ints[nz]).tolist(), sign))

    def add_row(self, name: str, cols: np.ndarray, vals: np.ndarray, lo: float,
                hi: float) -> None:
        if self.error:
            return
        full = np.zeros(self.n)
        full[np.asarray(cols, dtype=np.int64)] = vals
        try:
            pushed = np.flatnonzero((self.sm.push != 0) & (full != 0))
            limits_hi = self.sm.push[pushed] * full[pushed] > 0
            if (limits_hi & np.isfinite(hi)).any() or (~limits_hi & np.isfinite(lo)).any():
                raise ScalingError("it limits a one-sided continuous column in the direction "
                                   "that column was made integer in")
            ints, factor = scale_vector(full, self.sm.col_scale)
            nz = np.flatnonzero(ints)
            row = sp.csr_matrix((ints[nz], (np.zeros(len(nz), dtype=np.int64), nz)),
                                shape=(1, self.n))
            act_lo, act_hi = activity_range(row, self.sm.lb, self.sm.ub)
            rlo, rhi = _row_bounds(np.array([lo]), np.array([hi]), np.array([factor]), act_lo,
                                   act_hi)
        except ScalingError as exc:
            self.error = f"cpsat: row {name}: {exc}"
            return
        self._send(("row", nz.tolist(), ints[nz].tolist(), int(rlo[0]), int(rhi[0])))

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult:
        t0 = time.perf_counter()
        hint = None
        if start is not None and not self.error:
            y = np.round(np.asarray(start, dtype=float) * self.sm.col_scale)
            hint = np.clip(y, self.sm.lb, self.sm.ub).astype(np.int64).tolist()
        left = max(t0 + float(time_limit) - time.perf_counter(), 0.01)
        params = {"max_time_in_seconds": left,
                  "relative_gap_limit": float(mip_gap),
                  "absolute_gap_limit": 0.5,  # integer objective: < 1 apart means equal
                  "random_seed": self.seed}
        if self.threads:
            params["num_workers"] = self.threads
        wait = float(time_limit) * (1 + GRACE[1]) + GRACE[0]
        answer = None if self.error else self._send(("solve", params, hint), timeout=wait)
        if answer is None:  # out of time: no solution; anything else: an error
            status = Status.NO_SOLUTION if self.timed_out else Status.ERROR
            return SolveResult(status, None, None, None, None, time.perf_counter() - t0,
                               self.error or "cpsat: no answer")
        name, sol, int_obj, int_bound, _solver_seconds, note = answer
        seconds = time.perf_counter() - t0
        x = obj = bound = None
        if sol is not None:
            x = np.asarray(sol, dtype=float) / self.sm.col_scale
            obj = float(self.obj @ x)
            b = int_bound / self.factor
            bound = b if np.isfinite(b) else None
            if bound is not None:  # a bound never lies on the wrong side of the incumbent
                bound = max(bound, obj) if self.sense == "max" else min(bound, obj)
        status = map_status(name, sol is not None)
        gap = relative_gap(obj, bound)
        status = settle_status(status, gap, mip_gap)  # CP-SAT's gap limit: ours must hold
        return SolveResult(status, x, obj, bound, gap, seconds,
                           f"{name}: {note}" if note else name)


def map_status(name: str, has_point: bool) -> Status:
    """CP-SAT's status name to ours; OPTIMAL is re-checked against the gap by the caller."""
    if name == "OPTIMAL":
        return Status.OPTIMAL if has_point else Status.ERROR
    if name == "FEASIBLE":
        return Status.FEASIBLE if has_point else Status.ERROR
    if name == "INFEASIBLE":
        return Status.INFEASIBLE
    if name == "UNKNOWN":
        return Status.NO_SOLUTION  # a limit was reached before any solution was found
    return Status.ERROR  # MODEL_INVALID and anything new


class CpSatBackend:
    """Google OR-Tools CP-SAT: parallel portfolio search on the integer-scaled model; hints.

    Runs in a worker process (see the module docstring), so `available` probes a fresh
    interpreter once per process.
    """

    name = "cpsat"
    accepts_start = True
    direct_share_rows = True
    integer_columns_only = True
    province_scale = False
    steerable = False
    class_model = False
    parametric_rows = False
    purpose = "OR-Tools CP-SAT: portfolio search on the integer-scaled model; small cities"

    def __init__(self) -> None:
        self._available: bool | None = None

    def available(self) -> bool:
        if self._available is None:
            self._available = False
            if importlib.util.find_spec("ortools") is not None:
                try:
                    probe = subprocess.run(
                        [sys.executable, "-c", "from ortools.sat.python import cp_model"],
                        capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
                    self._available = probe.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    self._available = False
        return self._available

    def version(self) -> str:
        try:
            return importlib.metadata.version("ortools")
        except importlib.metadata.PackageNotFoundError:
            return ""

    def open(self, model: LinearModel, threads: int, seed: int) -> CpSatSession:
        return CpSatSession(model, threads, seed)
