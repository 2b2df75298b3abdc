"""OR-Tools CP-SAT on the model scaled exactly to integers (cents, tenths), built as a proto.

CP-SAT takes integer variables and integer coefficients only. Continuous columns (district
spend) become integer columns in a finer unit found from the rows that define or limit them
(spend <= sum of costs with 2 decimals -> cents; see `scale_columns` for why no plan is
lost); every row and the objective is then multiplied by the smallest power of ten (up to
1e9: model costs are currency / 10**k) that makes its coefficients integral, and row bounds
are rounded inward, which is exact because the row activity is then an integer.
`scale_model` checks that the integers reproduce every coefficient; if a model cannot be
scaled exactly the session reports status `error` with the reason instead of rounding.

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
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from allocator.model.linear import LinearModel
from allocator.solvers.base import SolveResult, Status, relative_gap, settle_status

#: largest power of ten tried when scaling a row, a column or the objective
MAX_POWER = 9
#: a scaled coefficient v counts as integral when |v - round(v)| <= INT_TOL + REL_TOL * |v|:
#: float noise of a decimal (a few ulps) passes, a third scaled by 1e9 does not
INT_TOL = 1e-9
REL_TOL = 1e-12
#: |integer bound| allowed for a column; products with coefficients must stay in int64
MAX_INT = 2**53


class ScalingError(ValueError):
    """The model has a coefficient or a continuous column that no power of ten makes exact."""


def _integral(values: np.ndarray) -> np.ndarray:
    return np.abs(values - np.round(values)) <= INT_TOL + REL_TOL * np.abs(values)


def smallest_powers(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, the smallest p in 0..MAX_POWER with 10**p * value integral for all its entries.

    Rows that no power makes integral get -1.
    """
    power = np.full(n_rows, -1, dtype=np.int64)
    for p in range(MAX_POWER + 1):
        bad = np.bincount(rows[~_integral(values * 10.0**p)], minlength=n_rows)
        newly = (power < 0) & (bad == 0)
        power[newly] = p
    return power


@dataclass
class ScaledModel:
    """Integer data for CP-SAT: x_original[j] = y[j] / col_scale[j]; rows times row_scale."""

    col_scale: np.ndarray  # float, a power of ten per column (1 for integer columns)
    lb: np.ndarray  # int64 bounds of y
    ub: np.ndarray
    matrix: sp.csr_matrix  # int64 coefficients, rows scaled
    row_lo: np.ndarray  # int64, within the row's possible activity
    row_hi: np.ndarray
    row_scale: np.ndarray
    push: np.ndarray  # per column: 0, or +1/-1 for a continuous column only pushed one way


def _row_bounds(lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, act_lo: np.ndarray,
                act_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled row bounds rounded inward (exact: the scaled activity is an integer); a missing
    side becomes the least or greatest activity the row can have, so every bound is finite."""
    with np.errstate(invalid="ignore"):
        slo, shi = lo * scale, hi * scale
    fin_lo, fin_hi = np.isfinite(slo), np.isfinite(shi)
    tol_lo = INT_TOL + REL_TOL * np.abs(np.where(fin_lo, slo, 0))
    tol_hi = INT_TOL + REL_TOL * np.abs(np.where(fin_hi, shi, 0))
    ilo = np.where(fin_lo, np.ceil(np.where(fin_lo, slo, 0) - tol_lo), -np.inf)
    ihi = np.where(fin_hi, np.floor(np.where(fin_hi, shi, 0) + tol_hi), np.inf)
    # the activity range is summed in floats: widen it so that clamping never cuts a point off
    ilo = np.maximum(ilo, np.floor(act_lo - 1.0 - 1e-9 * np.abs(act_lo)))
    ihi = np.minimum(ihi, np.ceil(act_hi + 1.0 + 1e-9 * np.abs(act_hi)))
    if (np.abs(ilo) > MAX_INT).any() or (np.abs(ihi) > MAX_INT).any():
        raise ScalingError("a row's activity is too large for 64-bit integers after scaling")
    return ilo.astype(np.int64), ihi.astype(np.int64)


def activity_range(matrix: sp.csr_matrix, lb: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    """Least and greatest value each row of matrix can take within the column bounds."""
    pos, neg = matrix.maximum(0), matrix.minimum(0)
    lbf, ubf = lb.astype(float), ub.astype(float)
    return pos @ lbf + neg @ ubf, pos @ ubf + neg @ lbf


def _pair_limits(A: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, lb: np.ndarray,
                 ub: np.ndarray, pr: np.ndarray, pj: np.ndarray, bound_hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pairs (row pr, continuous column pj): the row read as a limit on the column,
    x_j (<= or >=) rhs' - sum_k ratio_k x_k, with the row's hi (bound_hi) or lo side.

    Returns per pair the smallest power of ten putting every ratio and rhs' on integers
    (-1 if none) and the least and greatest value the limit can take over the other
    columns' bounds.
    """
    own = np.asarray(A[pr, pj]).ravel()
    rc = A[pr].tocoo()
    others = rc.col != pj[rc.row]
    ratio = np.where(others, rc.data / own[rc.row], 0.0)
    rhs = np.where(bound_hi, hi[pr], lo[pr]) / own
    p = smallest_powers(np.concatenate([rc.row[others], np.arange(len(pr))]),
                        np.concatenate([ratio[others], rhs]), len(pr))
    clb, cub = lb[rc.col], ub[rc.col]
    with np.errstate(invalid="ignore"):
        lo_term = np.where(ratio > 0, ratio * clb, ratio * cub)
        hi_term = np.where(ratio > 0, ratio * cub, ratio * clb)
    lo_term[ratio == 0] = 0.0
    hi_term[ratio == 0] = 0.0
    sum_min, sum_max = np.zeros(len(pr)), np.zeros(len(pr))
    np.add.at(sum_min, rc.row, lo_term)
    np.add.at(sum_max, rc.row, hi_term)
    with np.errstate(invalid="ignore"):
        return p, rhs - sum_max, rhs - sum_min


def scale_columns(model: LinearModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Power-of-ten scale, finite bounds and push direction of every column.

    A continuous column becomes an integer count of 10**-p units when that loses no plan:
    - defined by an equality row whose other columns are integer: its value is then a sum
      of decimals (spend = sum of costs -> cents); push 0;
    - otherwise pushable: every row that limits it in one direction (say upward) has only
      integer columns besides it, so in any feasible point it can be raised to the least of
      those limits, a point on the 10**-p grid, breaking no row (the other rows only get
      looser). Its objective coefficients and later rows must then not pull the other way
      (checked when they are set); push +1 (up) or -1 (down).
    Raises ScalingError for a continuous column that fits neither.
    """
    n = model.n_vars
    lb, ub = model.lb.copy(), model.ub.copy()
    integer = model.integer
    scale, push = np.ones(n), np.zeros(n, dtype=np.int64)
    cont = np.flatnonzero(~integer)
    if len(cont) == 0:
        return scale, lb, ub, push
    A = model.matrix().tocsr()
    lo, hi = model.row_lo, model.row_hi
    coo = A.tocoo()
    one_cont = np.bincount(coo.row[~integer[coo.col]], minlength=model.n_rows) == 1
    is_cont = ~integer[coo.col]
    r, c, a = coo.row[is_cont], coo.col[is_cont], coo.data[is_cont]
    power = np.full(n, -1, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    # 1. equality-defined columns (first such row per column)
    eq = (lo[r] == hi[r]) & np.isfinite(lo[r]) & one_cont[r]
    order = np.lexsort((r[eq], c[eq]))
    ce, re = c[eq][order], r[eq][order]
    _, first = np.unique(ce, return_index=True)
    ce, re = ce[first], re[first]
    if len(ce):
        p, lim_lo, lim_hi = _pair_limits(A, lo, hi, lb, ub, re, ce, np.ones(len(ce), bool))
        ok = p >= 0
        power[ce[ok]] = p[ok]
        lb[ce[ok]] = np.maximum(lb[ce[ok]], lim_lo[ok])
        ub[ce[ok]] = np.minimum(ub[ce[ok]], lim_hi[ok])
        done[ce[ok]] = True
    # 2. pushable columns: up first, then down
    for direction in (1, -1):
        rest = np.zeros(n, dtype=bool)
        rest[cont] = ~done[cont]
        if not rest.any():
            break
        sel = rest[c]
        rr, cc, aa = r[sel], c[sel], a[sel]
        limits_hi = direction * aa > 0  # raising (lowering) x_j raises this row's activity
        tight = np.where(limits_hi, np.isfinite(hi[rr]), np.isfinite(lo[rr]))
        rr, cc, limits_hi = rr[tight], cc[tight], limits_hi[tight]
        bad = np.zeros(n, dtype=bool)
        bad[cc[~one_cont[rr]]] = True  # a limiting row with another continuous column
        p_col = np.zeros(n, dtype=np.int64)
        lim_min = np.full(n, np.inf if direction > 0 else -np.inf)
        lim_max = lim_min.copy()
        if len(rr):
            p, l_lo, l_hi = _pair_limits(A, lo, hi, lb, ub, rr, cc, limits_hi)
            bad[cc[p < 0]] = True
            np.maximum.at(p_col, cc, np.maximum(p, 0))
            agg = np.minimum.at if direction > 0 else np.maximum.at
            agg(lim_min, cc, l_lo)
            agg(lim_max, cc, l_hi)
        own_bound = ub if direction > 0 else lb
        fin = np.isfinite(own_bound)
        grid = np.ones(n, dtype=bool)
        for k in np.flatnonzero(rest & fin):  # the column's own bound must be on the grid
            q = smallest_powers(np.zeros(1, np.int64), np.array([own_bound[k]]), 1)[0]
            grid[k] = q >= 0
            p_col[k] = max(p_col[k], q)
        good = rest & ~bad & grid
        if direction > 0:
            new_ub = np.minimum(ub, lim_max)
            new_lb = np.maximum(lb, np.minimum(ub, lim_min))
        else:
            new_lb = np.maximum(lb, lim_min)
            new_ub = np.minimum(ub, np.maximum(lb, lim_max))
        good &= np.isfinite(new_lb) & np.isfinite(new_ub)
        power[good], push[good], done[good] = p_col[good], direction, True
        lb[good], ub[good] = new_lb[good], new_ub[good]
    missing = cont[~done[cont]]
    if len(missing):
        raise ScalingError(f"continuous column {model.var_name(int(missing[0]))} is neither "
                           "defined by an equality over integer columns nor limited, on one "
                           f"side, by rows over integer columns with at most {MAX_POWER} "
                           "decimals; cannot make it integer exactly")
    scale[cont] = 10.0 ** power[cont]
    return scale, lb, ub, push


def scale_model(model: LinearModel) -> ScaledModel:
    """The model in integers, exactly; raises ScalingError when that is not possible."""
    col_scale, lb, ub, push = scale_columns(model)
    with np.errstate(invalid="ignore"):
        slb = np.where(np.isfinite(lb), lb * col_scale, -MAX_INT)
        sub = np.where(np.isfinite(ub), ub * col_scale, MAX_INT)
    ylb = np.ceil(slb - (INT_TOL + REL_TOL * np.abs(slb)))
    yub = np.floor(sub + (INT_TOL + REL_TOL * np.abs(sub)))
    if (np.abs(ylb) > MAX_INT).any() or (np.abs(yub) > MAX_INT).any():
        raise ScalingError("a column bound is too large for 64-bit integers after scaling")
    A = model.matrix().tocsr()
    coo = A.tocoo()
    vals = coo.data / col_scale[coo.col]
    p = smallest_powers(coo.row, vals, model.n_rows)
    if (p < 0).any():
        k = int(np.flatnonzero(p < 0)[0])
        raise ScalingError(f"row {model.row_name(k)} needs more than {MAX_POWER} decimals")
    row_scale = 10.0**p
    ivals = np.round(vals * row_scale[coo.row])
    back = ivals / row_scale[coo.row] * col_scale[coo.col]
    if not np.allclose(back, coo.data, rtol=1e-12, atol=0):
        raise ScalingError("scaling to integers changed a coefficient")  # pragma: no cover
    matrix = sp.csr_matrix((ivals.astype(np.int64), (coo.row, coo.col)), shape=A.shape)
    ylb, yub = ylb.astype(np.int64), yub.astype(np.int64)
    act_lo, act_hi = activity_range(matrix, ylb, yub)
    rlo, rhi = _row_bounds(model.row_lo, model.row_hi, row_scale, act_lo, act_hi)
    return ScaledModel(col_scale, ylb, yub, matrix, rlo, rhi, row_scale, push)


def scale_vector(coefs: np.ndarray, col_scale: np.ndarray) -> tuple[np.ndarray, float]:
    """Integer coefficients over the scaled columns and the factor f: integer = f * original."""
    vals = np.asarray(coefs, dtype=float) / col_scale
    nz = np.flatnonzero(vals)
    p = smallest_powers(np.zeros(len(nz), dtype=np.int64), vals[nz], 1)[0]
    if p < 0:
        raise ScalingError(f"objective or row needs more than {MAX_POWER} decimals")
    factor = 10.0**p
    ints = np.round(vals * factor)
    return ints.astype(np.int64), factor


#: the worker: imports OR-Tools only (never highspy), then serves requests until "quit"
WORKER_SOURCE = r"""
import os, pickle, sys, time, traceback
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)  # anything the solver prints goes to stderr, never into the reply pipe
inp = sys.stdin.buffer

def reply(obj):
    pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()

try:
    import ortools
    from ortools.sat.python import cp_model
except Exception as exc:
    reply(("error", f"cannot import OR-Tools CP-SAT: {exc!r}"))
    sys.exit(0)
reply(("ok", ortools.__version__))
model = cp_model.CpModel()
proto = model.proto

def add_linear(cols, coeffs, lo, hi):
    lin = proto.constraints.add().linear
    if lo > hi:  # CP-SAT rejects an empty domain as invalid: write 0 in [1, 1] instead
        lin.domain.extend([1, 1])
        return
    lin.vars.extend(cols)
    lin.coeffs.extend(coeffs)
    lin.domain.extend([lo, hi])

while True:
    try:
        msg = pickle.load(inp)
    except EOFError:
        break
    try:
        kind = msg[0]
        if kind == "quit":
            break
        if kind == "build":
            _, lb, ub, indptr, indices, data, rlo, rhi = msg
            for lo, hi in zip(lb, ub):
                proto.variables.add().domain.extend([lo, hi])
            for i, (lo, hi) in enumerate(zip(rlo, rhi)):
                s, e = indptr[i], indptr[i + 1]
                add_linear(indices[s:e], data[s:e], lo, hi)
            reply(("ok", None))
        elif kind == "objective":
            _, cols, coeffs, sign = msg
            model.clear_objective()
            o = proto.objective
            o.vars.extend(cols)
            o.coeffs.extend(coeffs)
            o.scaling_factor = float(sign)
            reply(("ok", None))
        elif kind == "row":
            _, cols, coeffs, lo, hi = msg
            add_linear(cols, coeffs, lo, hi)
            reply(("ok", None))
        elif kind == "solve":
            _, params, hint = msg
            model.clear_hints()
            if hint is not None:
                proto.solution_hint.vars.extend(range(len(hint)))
                proto.solution_hint.values.extend(hint)
            solver = cp_model.CpSolver()
            for key, value in params.items():
                setattr(solver.parameters, key, value)
            t0 = time.perf_counter()
            code = solver.solve(model)
            seconds = time.perf_counter() - t0
            name = solver.status_name(code)
            if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                sol = list(solver.response_proto.solution)
                obj, bound = solver.objective_value, solver.best_objective_bound
            else:
                sol, obj, bound = None, None, None
            note = model.validate() if code == cp_model.MODEL_INVALID else ""
            reply(("ok", (name, sol, obj, bound, seconds, note)))
        else:
            reply(("error", f"unknown request {kind!r}"))
    except Exception:
        reply(("error", traceback.format_exc()))
"""


class WorkerError(RuntimeError):
    """The CP-SAT worker failed, died or did not answer in time."""


class WorkerTimeout(WorkerError):
    """The worker did not answer by the deadline and was stopped."""


#: CP-SAT holds max_time_in_seconds well; a worker still silent this long after the deadline
#: (seconds + share of the limit) is stopped and the level ends without a solution
GRACE = (5.0, 0.10)


class CpSatWorker:
    """A child Python process running WORKER_SOURCE; requests and replies are pickles."""

    def __init__(self) -> None:
        self.err = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONNOUSERSITE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER_SOURCE],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.err)
        self.version = self._receive(120.0)

    def request(self, msg: tuple, timeout: float = 600.0):
        """Send one request and wait up to timeout seconds for its reply."""
        try:
            pickle.dump(msg, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError(f"CP-SAT worker is gone: {exc}{self._stderr()}") from None
        return self._receive(timeout)

    def _receive(self, timeout: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise WorkerTimeout(f"CP-SAT did not answer within {timeout:.1f} s and was stopped")
        try:
            kind, payload = pickle.load(self.proc.stdout)
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
            pickle.dump(("quit",), proc.stdin)
            proc.stdin.flush()
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
    for f in (proc.stdin, proc.stdout, err):
        try:
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
