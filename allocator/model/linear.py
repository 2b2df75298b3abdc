"""A solver-neutral mixed-integer linear model built from numpy arrays.

Variables and constraints come in named blocks whose labels are the data's ids, so any
column or row can be printed as e.g. `x[E0001,S01,A007]` or `capacity[A007]`. Coefficients
are stored as COO triplets per block and assembled into one sparse matrix on demand; no
solver is imported here (backends translate this object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

INF = float("inf")


@dataclass
class Block:
    """A family of variables or constraints: a rule name and one label row per member."""

    name: str
    start: int
    labels: pd.DataFrame

    @property
    def size(self) -> int:
        return len(self.labels)

    def label(self, k: int) -> str:
        """The readable name of member k of the block, e.g. `capacity[A007]`."""
        row = self.labels.iloc[k]
        return f"{self.name}[{','.join(str(v) for v in row.to_numpy())}]"


@dataclass
class LinearModel:
    """Columns with bounds and integrality; rows lo <= A x <= hi; objectives kept apart."""

    var_blocks: list[Block] = field(default_factory=list)
    row_blocks: list[Block] = field(default_factory=list)
    _lb: list[np.ndarray] = field(default_factory=list)
    _ub: list[np.ndarray] = field(default_factory=list)
    _int: list[np.ndarray] = field(default_factory=list)
    _rlo: list[np.ndarray] = field(default_factory=list)
    _rhi: list[np.ndarray] = field(default_factory=list)
    _r: list[np.ndarray] = field(default_factory=list)
    _c: list[np.ndarray] = field(default_factory=list)
    _v: list[np.ndarray] = field(default_factory=list)
    n_vars: int = 0
    n_rows: int = 0
    _csr: sp.csr_matrix | None = None
    #: a neighbourhood group per column (a district's number, -1 for none), for backends
    #: that improve a plan one group at a time; None when the model has no such structure
    column_groups: np.ndarray | None = None

    def add_variables(self, name: str, labels: pd.DataFrame, lb: float | np.ndarray = 0.0,
                      ub: float | np.ndarray = 1.0, integer: bool = True) -> np.ndarray:
        """Add one variable per label row; return their column numbers."""
        n = len(labels)
        cols = np.arange(self.n_vars, self.n_vars + n)
        self.var_blocks.append(Block(name, self.n_vars, labels.reset_index(drop=True)))
        self._lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (n,)).copy())
        self._ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (n,)).copy())
        self._int.append(np.full(n, integer, dtype=bool))
        if self.column_groups is not None:  # columns added later (slacks) are in no group
            self.column_groups = np.concatenate([self.column_groups, np.full(n, -1)])
        self.n_vars += n
        self._csr = None
        return cols

    def add_constraints(self, name: str, labels: pd.DataFrame, rows: np.ndarray,
                        cols: np.ndarray, vals: np.ndarray, lo: float | np.ndarray = -INF,
                        hi: float | np.ndarray = INF) -> np.ndarray:
        """Add one row per label; (rows, cols, vals) are the block's local-row triplets.

        Returns the rows' global numbers. An empty label set adds nothing.
        """
        n = len(labels)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        self.row_blocks.append(Block(name, self.n_rows, labels.reset_index(drop=True)))
        self._rlo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)).copy())
        self._rhi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)).copy())
        self._r.append(np.asarray(rows, dtype=np.int64) + self.n_rows)
        self._c.append(np.asarray(cols, dtype=np.int64))
        self._v.append(np.asarray(vals, dtype=float))
        out = np.arange(self.n_rows, self.n_rows + n)
        self.n_rows += n
        self._csr = None
        return out

    @staticmethod
    def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    @property
    def lb(self) -> np.ndarray:
        return self._cat(self._lb, float)

    @property
    def ub(self) -> np.ndarray:
        return self._cat(self._ub, float)

    @property
    def integer(self) -> np.ndarray:
        return self._cat(self._int, bool)

    @property
    def row_lo(self) -> np.ndarray:
        return self._cat(self._rlo, float)

    @property
    def row_hi(self) -> np.ndarray:
        return self._cat(self._rhi, float)

    def matrix(self) -> sp.csr_matrix:
        """The constraint matrix (rows x vars), duplicates summed."""
        if self._csr is None:
            self._csr = sp.csr_matrix(
                (self._cat(self._v, float), (self._cat(self._r, np.int64),
                                             self._cat(self._c, np.int64))),
                shape=(self.n_rows, self.n_vars))
            self._csr.sum_duplicates()
        return self._csr

    @property
    def n_nonzeros(self) -> int:
        return int(sum(len(v) for v in self._v))

    def _find(self, blocks: list[Block], k: int) -> str:
        for b in blocks:
            if b.start <= k < b.start + b.size:
                return b.label(k - b.start)
        raise IndexError(k)

    def var_name(self, k: int) -> str:
        return self._find(self.var_blocks, k)

    def row_name(self, k: int) -> str:
        return self._find(self.row_blocks, k)

    def var_names(self) -> list[str]:
        return [b.label(k) for b in self.var_blocks for k in range(b.size)]

    def row_names(self) -> list[str]:
        return [b.label(k) for b in self.row_blocks for k in range(b.size)]

    def violations(self, x: np.ndarray, tol: float = 1e-6) -> pd.DataFrame:
        """Rows and bounds a point breaks by more than tol: (name, activity, lo, hi)."""
        act = self.matrix() @ x
        lo, hi = self.row_lo, self.row_hi
        bad = np.flatnonzero((act < lo - tol * np.maximum(1, np.abs(lo)))
                             | (act > hi + tol * np.maximum(1, np.abs(hi))))
        return pd.DataFrame({"name": [self.row_name(int(k)) for k in bad], "activity": act[bad],
                             "lo": lo[bad], "hi": hi[bad]})

    def relaxed(self, keep: np.ndarray | None = None) -> LinearModel:
        """The same model with every column continuous (its LP relaxation) but the integer
        ones among `keep` (column numbers); rows, bounds and matrix are copies, so changing
        one model's row bounds leaves the other alone."""
        integer = np.zeros(self.n_vars, dtype=bool)
        if keep is not None:
            integer[keep] = self.integer[keep]
        return LinearModel(list(self.var_blocks), list(self.row_blocks),
                           [a.copy() for a in self._lb], [a.copy() for a in self._ub],
                           [integer],
                           [a.copy() for a in self._rlo], [a.copy() for a in self._rhi],
                           list(self._r), list(self._c), list(self._v), self.n_vars,
                           self.n_rows, None,
                           None if self.column_groups is None else self.column_groups.copy())

    def set_row_bounds(self, rows: np.ndarray, lo: float | np.ndarray | None = None,
                       hi: float | np.ndarray | None = None) -> None:
        """Change the bounds of existing rows (global numbers); None leaves a side as it is."""
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        for side, values in ((self._rlo, lo), (self._rhi, hi)):
            if values is None:
                continue
            vals = np.broadcast_to(np.asarray(values, dtype=float), rows.shape)
            for b, arr in zip(self.row_blocks, side, strict=True):
                inside = (rows >= b.start) & (rows < b.start + b.size)
                arr[rows[inside] - b.start] = vals[inside]

    def add_coefficients(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        """Add entries to existing rows (global row and column numbers), e.g. slack columns.

        Duplicates are summed when the matrix is assembled; row bounds are unchanged.
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if len(rows) and (rows.max() >= self.n_rows or cols.max() >= self.n_vars):
            raise IndexError("add_coefficients: row or column out of range")
        self._r.append(rows)
        self._c.append(cols)
        self._v.append(np.broadcast_to(np.asarray(vals, dtype=float), rows.shape).copy())
        self._csr = None
