"""The one way allocator writes and reads its own CSV files.

Written: UTF-8 with a byte-order mark (Excel on a Chinese-locale PC reads the file as UTF-8,
not GBK), numbers plain, and every text cell a spreadsheet would run as a formula (starting
with =, +, -, @, a tab or a carriage return, or their full-width forms ＝ ＋ － ＠ that a
Chinese input method types) neutralised the OWASP way, by a leading apostrophe. A text cell
that itself starts with an apostrophe gets one more, so reading back (`read_csv`: drop one
leading apostrophe) gives every id exactly as it was.

Instance files (`allocator generate`) are inputs, read back verbatim by the instance reader,
so they are written plain: neutralising them would change the ids. The generator never makes
an id or name that starts with one of these characters, and `validate` warns about any such
id or name in a planner's own instance.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
QUOTE = "'"


def neutralise(text: str) -> str:
    """A text cell that no spreadsheet runs as a formula (bijective, see unneutralise)."""
    if text.startswith(FORMULA_START) or text.startswith(QUOTE):
        return QUOTE + text
    return text


def unneutralise(text: str) -> str:
    """The cell as it was before neutralise."""
    return text[1:] if text.startswith(QUOTE) else text


def _is_text(col: pd.Series) -> bool:
    return (col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(col.dtype))


def safe_frame(frame: pd.DataFrame, decimals: dict[str, int] | None = None) -> pd.DataFrame:
    """The frame as it is written: text cells neutralised, the given columns rounded."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if _is_text(s):
            # vectorised: almost no cell needs the apostrophe, and a sweep writes ~800,000
            # cells (a map over every cell was 0.5 s of a 20-point frontier's 2 s of writing)
            try:
                risky = s.str.startswith(FORMULA_START + (QUOTE,), na=False)
            except AttributeError:  # an object column holding no text: nothing to neutralise
                continue
            risky = risky.to_numpy(dtype=bool)
            if risky.any():
                fixed = s.astype(object).copy()
                fixed[risky] = s[risky].map(neutralise)  # the one rule, on those cells
                out[col] = fixed
        elif col in (decimals or {}) and pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s.astype(float).round(decimals[col])  # type: ignore[index]
    return out


def write_csv(frame: pd.DataFrame, path: Path, decimals: dict[str, int] | None = None,
              float_format: str = "%.15g") -> None:
    """Write one CSV the allocator way (BOM, formula-safe text, plain numbers)."""
    text = safe_frame(frame, decimals).to_csv(index=False, float_format=float_format,
                                              lineterminator="\n")
    Path(path).write_text(BOM + text, encoding="utf-8")


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """Read a CSV allocator wrote (or a hand-edited one): BOM dropped, strings kept as text,
    neutralised cells read back as they were. Extra keyword arguments go to pandas."""
    kwargs.setdefault("dtype", str)
    kwargs.setdefault("keep_default_na", False)
    data = Path(path).read_bytes().decode("utf-8-sig")
    frame = pd.read_csv(io.StringIO(data), **kwargs)
    for col in frame.columns:
        if _is_text(frame[col]):  # object, or pandas 3's str dtype
            frame[col] = frame[col].map(lambda v: unneutralise(v) if isinstance(v, str) else v)
    return frame


def is_formula(text: object) -> bool:
    """A cell a spreadsheet would run as a formula if it were written as is."""
    return isinstance(text, str) and text.startswith(FORMULA_START)


def formula_cells(frame: pd.DataFrame) -> np.ndarray:
    """Positions (row, column) of text cells a spreadsheet would run as formulas."""
    hits = []
    for j, col in enumerate(frame.columns):
        s = frame[col]
        if _is_text(s):
            bad = s.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
            hits += [(i, j) for i in np.flatnonzero(bad.to_numpy(dtype=bool))]
    return np.array(hits, dtype=np.int64).reshape(-1, 2)
