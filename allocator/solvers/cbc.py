"""CBC, the binary bundled with PuLP, driven directly: model written as MPS with numpy, log read.

PuLP is used only to find its bundled CBC executable. Building PuLP objects per column and
letting PuLP write the MPS costs seconds per level on large models, and PuLP maps a CBC run
stopped on time with an incumbent to 'Optimal'; so the MPS file is written here in one pass
over the sparse matrix, and the status and the best bound are read from CBC's own log
("Result - ...", "Objective value", "Lower bound") and solution file ("Stopped on time ...").
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from allocator.core.errors import SolverUnavailable
from allocator.model.linear import LinearModel
from allocator.solvers.base import SolveResult, Status, relative_gap, settle_status

try:  # solver imports live in the backends only
    import pulp
except ImportError:  # pragma: no cover - depends on the machine
    pulp = None


#: the script CBC runs under (standard library only, run by path)
RUNNER = Path(__file__).with_name("cbc_runner.py")


def cbc_path() -> str | None:
    """Path of PuLP's CBC executable, or None when PuLP or its binary is missing."""
    if pulp is None:
        return None
    try:
        import warnings

        with warnings.catch_warnings():  # PULP_CBC_CMD warns it is deprecated (PuLP 4)
            warnings.simplefilter("ignore")
            cmd = pulp.PULP_CBC_CMD(msg=False)
        path = cmd.path
        return path if path and cmd.available() else None
    except Exception:  # pragma: no cover - broken install
        return None


def _fmt(values: np.ndarray) -> list[str]:
    """Numbers as text that reads back to the same double (repr round-trips)."""
    return [repr(v) for v in np.asarray(values, dtype=float).tolist()]


def _bound_lines(j: int, a: float, b: float) -> str:
    """BOUNDS lines of column j with bounds [a, b] (always explicit, also for integers)."""
    if a == b:
        return f" FX BND C{j} {a!r}\n"
    low = f" MI BND C{j}\n" if a == -np.inf else f" LO BND C{j} {a!r}\n"
    return low + (f" PL BND C{j}\n" if b == np.inf else f" UP BND C{j} {b!r}\n")


def _row_kinds(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """MPS row type per row: E (lo == hi), G (only lo), L (hi, ranged too), N (no bound)."""
    return np.where(lo == hi, "E", np.where(np.isinf(lo) & np.isinf(hi), "N",
                                            np.where(np.isinf(hi), "G", "L")))


def _rhs_lines(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[list[str], list[str]]:
    """RHS and RANGES lines of rows idx with bounds lo, hi (free rows have neither)."""
    rhs = np.where(np.isinf(hi), lo, hi)
    live = ~(np.isinf(lo) & np.isinf(hi))
    nz = live & (rhs != 0)
    rhs_lines = [f"    RHS R{i} {x}\n"
                 for i, x in zip(idx[nz].tolist(), _fmt(rhs[nz]), strict=True)]
    rg = np.isfinite(lo) & np.isfinite(hi) & (lo != hi)
    rng_lines = [f"    RNG R{i} {x}\n"
                 for i, x in zip(idx[rg].tolist(), _fmt(hi[rg] - lo[rg]), strict=True)]
    return rhs_lines, rng_lines


class MpsWriter:
    """Writes the model as MPS for CBC; the matrix part is rendered once, per level only the
    objective and the added rows change. Columns are C<j> and rows R<i>, so solution lines
    map back by number; every column gets explicit bounds (CBC takes bare integers as 0/1)."""

    def __init__(self, model: LinearModel) -> None:
        self.n, self.m = model.n_vars, model.n_rows
        lo, hi = model.row_lo, model.row_hi
        coo = model.matrix().tocsc().tocoo()  # column-major order
        free = np.isinf(lo) & np.isinf(hi)
        keep = ~free[coo.row] & (coo.data != 0)
        rows, cols, vals = coo.row[keep], coo.col[keep], coo.data[keep]
        order = np.lexsort((rows, cols))
        rows, cols, vals = rows[order], cols[order], vals[order]
        lines = [f"    C{j} R{i} {x!r}\n"
                 for j, i, x in zip(cols.tolist(), rows.tolist(), vals.tolist(), strict=True)]
        pos = np.searchsorted(cols, np.arange(self.n + 1)).tolist()
        self.col_text = ["".join(lines[pos[j]:pos[j + 1]]) for j in range(self.n)]
        self.has_entry = np.diff(pos) > 0
        kinds = _row_kinds(lo, hi)
        live = np.flatnonzero(~free)
        self.row_lines = [f" {k} R{i}\n" for k, i in zip(kinds[live].tolist(), live.tolist(),
                                                         strict=True)]
        self.rhs_lines, self.rng_lines = _rhs_lines(np.arange(self.m), lo, hi)
        self.bound_lines = [_bound_lines(j, a, b) for j, (a, b) in
                            enumerate(zip(model.lb.tolist(), model.ub.tolist(), strict=True))]
        integer = model.integer
        cut = np.flatnonzero(np.diff(integer.astype(np.int8))) + 1
        starts = np.concatenate([[0], cut]).astype(int).tolist()
        ends = np.concatenate([cut, [self.n]]).astype(int).tolist()
        self.runs = [(s, e, bool(integer[s])) for s, e in zip(starts, ends, strict=True)
                     if e > s]

    def write(self, path: Path, obj: np.ndarray, extra_rows: list[tuple]) -> None:
        """Write the model with objective obj (minimised) and extra_rows (cols, vals, lo, hi)
        numbered after the model's rows."""
        obj = np.asarray(obj, dtype=float)
        head = [""] * self.n
        oc = np.flatnonzero((obj != 0) | ~self.has_entry)
        for j, x in zip(oc.tolist(), obj[oc].tolist(), strict=True):
            head[j] = f"    C{j} OBJ {x!r}\n"
        tail = [""] * self.n
        elo, ehi = np.empty(len(extra_rows)), np.empty(len(extra_rows))
        for k, (cols, vals, lo, hi) in enumerate(extra_rows):
            i = self.m + k
            elo[k], ehi[k] = lo, hi
            for j, x in zip(np.asarray(cols).tolist(), np.asarray(vals, float).tolist(),
                            strict=True):
                if x != 0:
                    tail[j] += f"    C{j} R{i} {x!r}\n"
        eidx = np.arange(self.m, self.m + len(extra_rows))
        ekinds = _row_kinds(elo, ehi)
        out = ["NAME ALLOCATOR\n", "ROWS\n", " N OBJ\n"]
        out += self.row_lines
        out += [f" {k} R{i}\n" for k, i in zip(ekinds.tolist(), eidx.tolist(), strict=True)
                if k != "N"]
        out.append("COLUMNS\n")
        for s, e, is_int in self.runs:
            if is_int:
                out.append("    MARKER 'MARKER' 'INTORG'\n")
            out += [h + c + t for h, c, t in zip(head[s:e], self.col_text[s:e], tail[s:e],
                                                 strict=True)]
            if is_int:
                out.append("    MARKER 'MARKER' 'INTEND'\n")
        erhs, erng = _rhs_lines(eidx, elo, ehi)
        out.append("RHS\n")
        out += self.rhs_lines + erhs
        if self.rng_lines or erng:
            out.append("RANGES\n")
            out += self.rng_lines + erng
        out.append("BOUNDS\n")
        out += self.bound_lines
        out.append("ENDATA\n")
        path.write_text("".join(out))


_RESULT = re.compile(r"^Result - (.*)$", re.M)
_BOUND = re.compile(r"^Lower bound:\s+(\S+)", re.M)
_BEST_POSSIBLE = re.compile(r"best possible (\S+)")
_GAP_EXIT = re.compile(r"Exiting as integer gap of (\S+) less than")


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) and abs(value) < 1e49 else None


def read_solution(path: Path, n: int) -> tuple[str, np.ndarray | None]:
    """The status line of a CBC solution file and the column values (None if no file)."""
    if not path.exists():
        return "", None
    text = path.read_text().splitlines()
    if not text:
        return "", None
    x = np.zeros(n)
    for line in text[1:]:
        parts = line.split()
        if parts and parts[0] == "**":  # CBC flags values outside a bound
            parts = parts[1:]
        if len(parts) >= 3 and parts[1].startswith("C"):
            x[int(parts[1][1:])] = float(parts[2])
    return text[0].strip(), x


#: CBC checks its -sec limit only in the search; root LP and cuts can run far past it. At
#: the deadline plus this grace it gets SIGINT (it then stops and writes its incumbent), and
#: if it still runs after the second grace it is killed.
GRACE_INT = (1.0, 0.10)  # seconds + share of the time limit
GRACE_KILL = (3.0, 0.05)


def run_with_deadline(args: list[str], log_path: Path, deadline: float) -> tuple[int, str, str]:
    """Run CBC, stopping it politely then firmly when it overruns; (exit code, log, how
    stopped: "" on its own, "interrupted" or "killed")."""
    limit = max(deadline - time.perf_counter(), 0.0)
    stopped = ""
    # CBC runs under cbc_runner.py, which dies with this process and then removes the work
    # folder (log_path's): a killed allocator leaves neither CBC nor its files behind
    runner = [sys.executable, "-I", "-S", str(RUNNER), str(os.getpid()), str(log_path.parent)]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(runner + args, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ,
                                                               "OMP_NUM_THREADS": "1"})
        try:
            proc.wait(timeout=limit + GRACE_INT[0] + GRACE_INT[1] * limit)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            stopped = "interrupted"
            try:
                proc.wait(timeout=GRACE_KILL[0] + GRACE_KILL[1] * limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stopped = "killed"
        except BaseException:  # Ctrl-C, a stop signal: CBC goes too (the runner takes it)
            proc.kill()
            proc.wait()
            raise
    return proc.returncode, log_path.read_text(errors="replace"), stopped


def classify(result_line: str, sol_line: str, has_point: bool) -> Status:
    """Our status from CBC's own words; only a completed search (or gap stop) is optimal."""
    res = result_line.lower()
    sol = sol_line.lower()
    if "infeasible" in res or sol.startswith("infeasible") or sol.startswith("integer infeasible"):
        return Status.INFEASIBLE
    if res.startswith("optimal solution found") and has_point:
        return Status.OPTIMAL  # complete search, or stopped on the ratio gap asked
    if res.startswith("stopped") or res.startswith("finished") or sol.startswith("stopped"):
        return Status.FEASIBLE if has_point else Status.NO_SOLUTION
    if not res and sol.startswith("optimal") and has_point:
        return Status.FEASIBLE  # no log line to confirm a finished search: do not claim more
    return Status.ERROR


class CbcSession:
    """The model kept in memory; each solve writes an MPS file and runs CBC on it."""

    def __init__(self, model: LinearModel, threads: int, seed: int, path: str) -> None:
        self.model = model
        self.threads = int(threads or 0)
        self.seed = int(seed)
        self.path = path
        self.obj = np.zeros(model.n_vars)
        self.sense = "min"
        self.extra: list[tuple] = []
        self.writer: MpsWriter | None = None
        self.last_log = ""

    def set_objective(self, coefs: np.ndarray, sense: str) -> None:
        self.obj = np.asarray(coefs, dtype=float).copy()
        self.sense = sense

    def add_row(self, name: str, cols: np.ndarray, vals: np.ndarray, lo: float,
                hi: float) -> None:
        self.extra.append((np.asarray(cols), np.asarray(vals, dtype=float), float(lo),
                           float(hi)))

    def solve(self, time_limit: float, mip_gap: float,
              start: np.ndarray | None) -> SolveResult:
        sign = -1.0 if self.sense == "max" else 1.0  # CBC minimises sign * objective
        n = self.model.n_vars
        t0 = time.perf_counter()
        deadline = t0 + max(float(time_limit), 0.01)  # writing the files counts, too
        with tempfile.TemporaryDirectory(prefix="allocator_cbc_") as tmp:
            d = Path(tmp)
            if self.writer is None:
                self.writer = MpsWriter(self.model)
            self.writer.write(d / "model.mps", sign * self.obj, self.extra)
            args = [self.path, str(d / "model.mps")]
            if start is not None:
                st = np.asarray(start, dtype=float)
                nz = np.flatnonzero(st)
                body = "".join(f"{j} C{j} {v!r}\n"
                               for j, v in zip(nz.tolist(), st[nz].tolist(), strict=True))
                (d / "start.mst").write_text("Stopped on time - objective value 0\n" + body)
                args += ["-mips", str(d / "start.mst")]
            left = max(deadline - time.perf_counter(), 0.01)
            args += ["-sec", repr(left), "-timeMode", "elapsed",
                     "-ratioGap", repr(float(mip_gap)), "-allowableGap", "0",
                     "-randomSeed", str(self.seed + 1), "-randomCbcSeed", str(self.seed + 1)]
            # one thread: the bundled CBC 2.10.3's repeatable parallel search (-threads 100+n)
            # segfaults in root cut generation on some small models (exit -11 on every run,
            # with or without a MIP start) and its other parallel mode is not repeatable
            # (docs/tuning-log.md, "CBC's crash")
            args += ["-solve", "-printingOptions", "normal", "-solution", str(d / "sol.txt")]
            returncode, log, stopped = run_with_deadline(args, d / "cbc.log", deadline)
            sol_line, x = read_solution(d / "sol.txt", n) if stopped != "killed" else ("", None)
        seconds = time.perf_counter() - t0
        self.last_log = log
        m = _RESULT.findall(log)
        result_line = m[-1].strip() if m else ""
        has_point = x is not None and bool(re.search(r"objective value", sol_line)) and not (
            sol_line.lower().startswith("infeasible")
            or "no integer solution" in sol_line.lower()
            or "integer infeasible" in sol_line.lower())
        if stopped == "killed":
            status = Status.NO_SOLUTION  # CBC ignored the deadline and was stopped: no plan
        else:
            status = Status.ERROR if returncode != 0 else classify(result_line, sol_line,
                                                                   has_point)
        if not has_point:
            x = None
        obj = float(self.obj @ x) if x is not None else None
        bound = self._bound(log, status, sign, obj)
        if status is Status.OPTIMAL and bound is None:
            bound = obj  # a completed search without a printed bound: bound == objective
        if bound is not None and obj is not None:  # a bound never lies on the wrong side
            bound = max(bound, obj) if self.sense == "max" else min(bound, obj)
        gap = relative_gap(obj, bound)
        status = settle_status(status, gap, mip_gap)  # CBC's ratio has its own reference
        text = result_line or sol_line or f"cbc exit {returncode}"
        if stopped:
            text = f"{text} ({stopped} at the deadline)" if stopped != "killed" else \
                "cbc overran the time limit and was stopped without a solution"
        return SolveResult(status, x, obj, bound, gap, seconds, text)

    @staticmethod
    def _bound(log: str, status: Status, sign: float, obj: float | None) -> float | None:
        """The best bound in the original sense, read from CBC's log.

        The final report's "Lower bound" when there is one. CBC can also end a search on the
        ratio gap and still report a plain "Optimal solution found" without a bound; its line
        "Exiting as integer gap of G" then gives bound = objective -/+ G. A finished search
        with neither proves the incumbent: None (the caller uses the objective). After a
        limit without a report bound, the last "best possible" of the progress lines.
        """
        if status not in (Status.OPTIMAL, Status.FEASIBLE):
            return None
        cut = log.rfind("Result - ")
        report = log[cut:] if cut >= 0 else ""
        b = _BOUND.findall(report)
        if b:
            value = _float(b[-1])
            return None if value is None else sign * value
        gaps = _GAP_EXIT.findall(log)
        if gaps and obj is not None:
            g = _float(gaps[-1])
            return None if g is None else obj - sign * abs(g)
        if report.startswith("Result - Optimal solution found"):
            return None
        bp = _BEST_POSSIBLE.findall(log)
        value = _float(bp[-1].rstrip(",")) if bp else None
        return None if value is None else sign * value


class CbcBackend:
    """COIN-OR CBC (PuLP's bundled binary): branch and cut, threads, MIP start from a file."""

    name = "cbc"
    accepts_start = True
    # share caps over x, as for HiGHS: the form was kept from CBC after a crash that was its
    # parallel mode's (docs/tuning-log.md, "CBC's crash"); single-threaded, it proves the
    # quality level of 120-enterprise cities the spend form leaves unproven (t31: 30 s / 54 s)
    direct_share_rows = True
    integer_columns_only = False
    province_scale = False
    steerable = False
    class_model = False
    parametric_rows = False
    purpose = "COIN-OR CBC (bundled with PuLP, one thread): an independent check on small cities"

    def __init__(self) -> None:
        self._path: str | None = None
        self._looked = False
        self._version: str | None = None

    def _exe(self) -> str | None:
        if not self._looked:
            self._path, self._looked = cbc_path(), True
        return self._path

    def available(self) -> bool:
        return self._exe() is not None

    def version(self) -> str:
        if self._version is None:
            self._version = ""
            exe = self._exe()
            if exe:
                out = subprocess.run([exe, "-quit"], capture_output=True, text=True,
                                     stdin=subprocess.DEVNULL).stdout
                found = re.search(r"Version:\s*(\S+)", out)
                self._version = found.group(1) if found else "unknown"
        return self._version

    def open(self, model: LinearModel, threads: int, seed: int) -> CbcSession:
        exe = self._exe()
        if exe is None:
            raise SolverUnavailable("CBC is not available (install pulp with its bundled CBC)")
        return CbcSession(model, threads, seed, exe)
