"""Messages about bad or weak table values, shared by the data checks and the families.

The bottom of the data layer: :mod:`mbct_bayes.schema` and each family's outcome check
(:mod:`mbct_bayes.families`) use these, so they sit below both. Messages name the source, the
column, the rows and the offending values, and say how to fix them.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError

NA_TOKENS = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "#N/A", "None"})
MAX_ROWS_SHOWN = 5


class DataWarning(UserWarning):
    """Data that are legal but weak: the fit will run, but some parameter is barely identified."""


def level_codes(
    values: pd.Series, levels: Sequence[Any], source: str = "observations"
) -> np.ndarray:
    """Ordinal outcome values as codes 0..K-1 in the order of ``levels``.

    Numbers and strings are matched by value: ``"1"``, ``1`` and ``1.0`` all match a level
    ``1``; text matches exactly after trimming spaces.

    Raises
    ------
    DataError
        For a missing value or a value not among ``levels`` (naming the rows, the values and the
        declared order).
    """
    values = pd.Series(values).reset_index(drop=True)
    col = values.name if values.name is not None else "level"
    lookup: dict[Any, int] = {}
    for i, level in enumerate(levels):
        lookup.setdefault(_level_key(level), i)
    keys = [_level_key(v) for v in values.tolist()]
    missing = np.array([k is None for k in keys], dtype=bool)
    if missing.any():
        raise _err(source, col, missing, "missing outcome; fill it in or drop the row")
    codes = np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)
    bad = codes < 0
    if bad.any():
        order = " < ".join(str(v) for v in levels)
        found = list(dict.fromkeys(str(v) for v in values[bad]))
        hint = _suggest(found[0], [str(v) for v in levels])
        raise _err(
            source,
            col,
            bad,
            f"{_values(values.astype(str), bad)} not among the declared levels {order}{hint}; "
            "fix the values or set levels in the spec",
        )
    return codes


def _check_count(df: pd.DataFrame, col: str, source: str, what: str) -> np.ndarray:
    raw = df[col]
    if raw.dtype == bool:
        raw = raw.astype("int64")
    num = pd.to_numeric(raw, errors="coerce")
    x = num.to_numpy(dtype="float64")
    missing = raw.isna().to_numpy()
    if missing.any():
        raise _err(source, col, missing, f"missing {what}; fill it in or drop the row")
    nonnum = ~np.isfinite(x)
    if nonnum.any():
        raise _err(
            source,
            col,
            nonnum,
            f"{_values(raw, nonnum)} not a whole number; {what} must be a count",
        )
    frac = x != np.round(x)
    if frac.any():
        raise _err(
            source, col, frac, f"{_values(raw, frac)} not a whole number; {what} must be a count"
        )
    return x.astype(np.int64)


def _warn(message: str) -> None:
    warnings.warn(DataWarning(message), stacklevel=4)


def _rows(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask) + 1
    shown = ", ".join(str(i) for i in idx[:MAX_ROWS_SHOWN])
    more = f" and {len(idx) - MAX_ROWS_SHOWN} more" if len(idx) > MAX_ROWS_SHOWN else ""
    return f"{'row' if len(idx) == 1 else 'rows'} {shown}{more}"


def _err(source: str, col: str, mask: np.ndarray, text: str) -> DataError:
    return DataError(f"{source}: column {col!r} {_rows(np.asarray(mask, bool))}: {text}")


def _num(v: float) -> str:
    return f"{v:g}"


def _fmt(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return str(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return _num(float(v))
    return repr(str(v))


def _values(col: pd.Series, mask: np.ndarray, bare: bool = False) -> str:
    """'value 7.5 is' / 'values 7.5, 0 are' for the first few distinct offending values."""
    vals = list(dict.fromkeys(_fmt(v) for v in pd.Series(col).to_numpy()[np.asarray(mask, bool)]))
    shown = ", ".join(vals[:3]) + (", ..." if len(vals) > 3 else "")
    if bare:
        return shown
    return f"value {shown} is" if len(vals) == 1 else f"values {shown} are"


def _plural(items: Sequence[Any], word: str) -> str:
    return word if len(items) == 1 else word + "s"


def _suggest(name: str, candidates: Sequence[str]) -> str:
    """' (did you mean 'F'?)' for the closest candidate, matching case-insensitively."""
    lower = {str(c).lower(): str(c) for c in candidates}
    close = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def _level_key(v: Any) -> Any:
    """Match key for an ordinal value: numbers by value, text by trimmed string, None if missing."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):
        return ("num", float(v))
    if isinstance(v, int | float | np.integer | np.floating):
        return ("num", float(v))
    text = str(v).strip()
    if text in NA_TOKENS:
        return None
    try:
        number = float(text)
    except ValueError:
        return ("str", text)
    return ("num", number) if math.isfinite(number) else ("str", text)
