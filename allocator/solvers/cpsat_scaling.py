"""The model scaled exactly to integers for CP-SAT (cents, tenths), or a ScalingError.

CP-SAT takes integer variables and integer coefficients only. Continuous columns (district
spend) become integer columns in a finer unit found from the rows that define or limit them
(spend <= sum of costs with 2 decimals -> cents; see `scale_columns` for why no plan is
lost); every row and the objective is then multiplied by the smallest power of ten (up to
1e9: model costs are currency / 10**k) that makes its coefficients integral, and row bounds
are rounded inward, which is exact because the row activity is then an integer.
`scale_model` checks that the integers reproduce every coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from allocator.model.linear import LinearModel

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
