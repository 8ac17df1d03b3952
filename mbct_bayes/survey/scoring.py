"""Survey items -> E, C, F scores: codebook, validation and ORCA-style scoring.

A **codebook** (CSV, one row per item) maps each item to its PARIHS construct (E, C or F), its
subscale, its keying and its range, and says which roles are asked it::

    item, construct, subscale, reverse, min, max, text, roles

``reverse`` is ``true``/``false``; ``roles`` is a ``;``-separated list of roles, empty for all
roles. **Responses** hold one row per respondent: ``site``, ``respondent``, ``role`` and one column
per codebook item (optional ``region`` and ``wave`` pass through).

Scoring follows the ORCA convention (Helfrich et al. 2009):

- a reverse-keyed item becomes ``min + max - x``;
- a subscale is the mean of the items the respondent answered, but only when they answered at
  least ``min_answered`` (default one half) of the items their role was **asked**. Items a role is
  not asked are *missing by design*: they leave the denominator and are counted apart from
  *non-response* (an asked item left blank);
- a scale is the mean of the subscales that could be scored;
- a site's score is the mean of its respondents' scale scores, with the number behind each.

Row numbers in error messages are 1-based data rows (row 1 is the first row after the header),
as in :mod:`mbct_bayes.schema`.

The reliability functions (``cronbach_alpha``, ``mcdonald_omega``, ``item_rest_correlations``,
``icc1_icc2``, ``reliability``) live in :mod:`mbct_bayes.survey.reliability`, which builds on this
module; the old names here still resolve, with a ``DeprecationWarning`` (``mbct_bayes._moved``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes._moved import moved_name
from mbct_bayes.errors import DataError
from mbct_bayes.schema import read_table

CONSTRUCTS = ("E", "C", "F")
KNOWN_ROLES = ("mbct_teacher", "manager", "commissioner", "referrer", "service_user", "other")
CODEBOOK_COLUMNS = ("item", "construct", "subscale", "reverse", "min", "max", "text", "roles")
ID_COLUMNS = ("site", "respondent", "role")
#: Optional columns that may sit beside the items and are carried through, never scored.
PASSTHROUGH_COLUMNS = ("region", "wave")
STATUS_SCORED = "scored"
STATUS_NONRESPONSE = "nonresponse"  # asked, but fewer than min_answered of the items answered
STATUS_NOT_ASKED = "not_asked"  # missing by design: the role is asked none of the items

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def __getattr__(name: str) -> Any:
    # reliability names that once lived here (deprecated): resolved by module path at run time,
    # since mbct_bayes.survey.reliability imports this module
    return moved_name(__name__, name)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _rows(positions: Iterable[int], limit: int = 5) -> str:
    """1-based data row numbers (row 1 = first row after the header) of the offending rows."""
    pos = [int(p) + 1 for p in positions]
    shown = ", ".join(str(p) for p in pos[:limit])
    more = f" and {len(pos) - limit} more" if len(pos) > limit else ""
    return f"row{'s' if len(pos) > 1 else ''} {shown}{more}"


def _names(values: Iterable[Any], limit: int = 5) -> str:
    vals = [str(v) for v in values]
    shown = ", ".join(repr(v) for v in vals[:limit])
    return shown + (f" and {len(vals) - limit} more" if len(vals) > limit else "")


def _blank(series: pd.Series) -> np.ndarray:
    """True where a cell is missing or only whitespace."""
    missing = series.isna().to_numpy()
    text = series.astype("string").str.strip().fillna("")
    return missing | (text == "").to_numpy()


def read_csv_table(path: str | os.PathLike[str], what: str) -> pd.DataFrame:
    """Read a CSV (or Parquet) table through :func:`mbct_bayes.schema.read_table`.

    Every table in the package is read the same way (ids stay text, NA tokens are blank), with a
    one-line error for a missing, empty or unreadable file.
    """
    return read_table(path, what=what)


# --------------------------------------------------------------------------------------------
# codebook
# --------------------------------------------------------------------------------------------


def read_codebook(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a codebook CSV.

    Parameters
    ----------
    path
        CSV with columns ``item, construct, subscale, reverse, min, max, text, roles``.

    Returns
    -------
    DataFrame
        One row per item, in file order: ``item`` (str), ``construct`` (``E``/``C``/``F``),
        ``subscale`` (str), ``reverse`` (bool), ``min`` and ``max`` (float), ``text`` (str) and
        ``roles`` (tuple of role names; empty tuple = asked of every role).

    Raises
    ------
    DataError
        For a missing column, an unknown construct, ``min >= max``, a duplicate item, a bad
        ``reverse`` value or an unknown role; the message names file, column, rows and fix.
    """
    raw = read_csv_table(path, "codebook")
    return validate_codebook(raw, source=str(path))


def validate_codebook(raw: pd.DataFrame, *, source: str = "codebook") -> pd.DataFrame:
    """Validate a codebook table and return it normalised (see :func:`read_codebook`)."""
    if not isinstance(raw, pd.DataFrame):
        raise DataError(f"{source}: codebook must be a DataFrame, got {type(raw).__name__}")
    cols = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in CODEBOOK_COLUMNS if c not in cols and c not in ("text", "roles")]
    if missing:
        raise DataError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {_names(missing)}; "
            f"a codebook needs the columns {', '.join(CODEBOOK_COLUMNS)}"
        )
    if len(raw) == 0:
        raise DataError(f"{source}: the codebook has no items; add one row per survey item")
    df = raw.rename(columns={v: k for k, v in cols.items()})

    item_blank = _blank(df["item"])
    if item_blank.any():
        raise DataError(f"{source}: column 'item' {_rows(np.flatnonzero(item_blank))}: empty item "
                        "name; give every item a unique name")
    items = df["item"].astype(str).str.strip()
    reserved = items.isin(ID_COLUMNS + PASSTHROUGH_COLUMNS).to_numpy()
    if reserved.any():
        raise DataError(
            f"{source}: column 'item' {_rows(np.flatnonzero(reserved))}: item name "
            f"{_names(items[reserved].unique())} is reserved for the responses' id columns; "
            "rename the item"
        )
    dup = items.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataError(
            f"{source}: column 'item' {_rows(np.flatnonzero(dup))}: duplicate item "
            f"{_names(items[dup].unique())}; each item must appear once"
        )

    construct = df["construct"].astype("string").str.strip().str.upper().fillna("")
    bad = ~construct.isin(CONSTRUCTS).to_numpy()
    if bad.any():
        raise DataError(
            f"{source}: column 'construct' {_rows(np.flatnonzero(bad))}: unknown construct "
            f"{_names(df['construct'][bad].astype(str).unique())}; use E, C or F"
        )

    sub_blank = _blank(df["subscale"])
    if sub_blank.any():
        raise DataError(f"{source}: column 'subscale' {_rows(np.flatnonzero(sub_blank))}: empty "
                        "subscale; name the subscale each item belongs to")
    subscale = df["subscale"].astype(str).str.strip()
    owners = pd.DataFrame({"s": subscale, "c": construct}).groupby("s")["c"].nunique()
    split = owners[owners > 1].index.tolist()
    if split:
        rows = np.flatnonzero(subscale.isin(split).to_numpy())
        raise DataError(
            f"{source}: column 'subscale' {_rows(rows)}: subscale {_names(split)} spans more than "
            "one construct; give each construct's subscales their own names"
        )

    reverse = _parse_reverse(df["reverse"], source)
    lo, hi = _parse_range(df, source)
    text = df["text"].astype("string").fillna("").astype(str) if "text" in df else ""
    roles = _parse_roles(df["roles"], source) if "roles" in df else [()] * len(df)

    return pd.DataFrame(
        {
            "item": items.to_numpy(dtype=object),
            "construct": construct.to_numpy(dtype=object),
            "subscale": subscale.to_numpy(dtype=object),
            "reverse": reverse,
            "min": lo,
            "max": hi,
            "text": text if isinstance(text, str) else text.to_numpy(dtype=object),
            "roles": pd.Series(roles, dtype=object).to_numpy(),
        }
    )


def _parse_reverse(col: pd.Series, source: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=bool)
    text = col.astype("string").str.strip().str.lower().fillna("")
    # numeric 1.0 / 0.0 from a spreadsheet export
    text = text.replace({"1.0": "1", "0.0": "0"})
    ok_true = text.isin(_TRUE).to_numpy()
    ok_false = text.isin(_FALSE).to_numpy()
    bad = ~(ok_true | ok_false)
    if bad.any():
        raise DataError(
            f"{source}: column 'reverse' {_rows(np.flatnonzero(bad))}: value "
            f"{_names(col[bad].astype(str).unique())} is not true/false; write true for a "
            "reverse-keyed item, false otherwise"
        )
    return ok_true


def _parse_range(df: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name in ("min", "max"):
        num = pd.to_numeric(df[name], errors="coerce")
        bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            raise DataError(
                f"{source}: column '{name}' {_rows(np.flatnonzero(bad))}: value "
                f"{_names(df[name][bad].astype(str).unique())} is not a number; give the item's "
                f"{'lowest' if name == 'min' else 'highest'} response (e.g. "
                f"{'1' if name == 'min' else '5'})"
            )
        out.append(num.to_numpy(dtype=float))
    lo, hi = out
    bad = lo >= hi
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: columns 'min'/'max' {_rows(np.flatnonzero(bad))}: min {lo[first]:g} is not "
            f"below max {hi[first]:g}; give the scale's lowest response as min and highest as max"
        )
    return lo, hi


def _parse_roles(col: pd.Series, source: str) -> list[tuple[str, ...]]:
    parsed: list[tuple[str, ...]] = []
    bad_rows: list[int] = []
    bad_names: list[str] = []
    for i, cell in enumerate(col.tolist()):
        if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
            parsed.append(())
            continue
        names = [normalise_role(p) for p in str(cell).split(";") if p.strip()]
        unknown = [n for n in names if n not in KNOWN_ROLES]
        if unknown:
            bad_rows.append(i)
            bad_names.extend(unknown)
        parsed.append(tuple(dict.fromkeys(names)))
    if bad_rows:
        raise DataError(
            f"{source}: column 'roles' {_rows(bad_rows)}: unknown role "
            f"{_names(dict.fromkeys(bad_names))}; use ';'-separated roles from "
            f"{', '.join(KNOWN_ROLES)}, or leave empty for all roles"
        )
    return parsed


def normalise_role(value: Any) -> str:
    """``"MBCT teacher"`` -> ``"mbct_teacher"``: lower case, spaces and hyphens to ``_``."""
    return "_".join(str(value).strip().lower().replace("-", " ").split())


# --------------------------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------------------------


def read_responses(
    path: str | os.PathLike[str], codebook: pd.DataFrame, *, columns: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Read and validate a responses CSV against a codebook.

    Parameters
    ----------
    path
        CSV with ``site``, ``respondent``, ``role`` and one column per codebook item.
    codebook
        As returned by :func:`read_codebook`.
    columns
        The file's names for the id columns when they differ, e.g.
        ``{"site": "Trust", "respondent": "ID", "role": "Job"}``; the result uses the
        standard names.

    Returns
    -------
    DataFrame
        ``site``, ``respondent`` and ``role`` as strings (roles normalised), any ``region`` /
        ``wave`` columns, then the items in codebook order as floats (NaN = blank).

    Raises
    ------
    DataError
        For a missing id column, a respondent without a site, a duplicate (site, respondent),
        an unknown role, an item the codebook lacks or a codebook item the data lack, text in
        an item, a value outside the item's range, or an answer to an item the role is not asked.
    """
    raw = read_csv_table(path, "responses")
    return validate_responses(raw, codebook, source=str(path), columns=columns)


def parse_columns(text: str) -> dict[str, str]:
    """``"site=Trust,respondent=ID"`` -> ``{"site": "Trust", "respondent": "ID"}`` (CLI ``--columns``)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise DataError(
                f"--columns: {part!r} is not NAME=COLUMN; write e.g. site=Trust,respondent=ID,role=Job"
            )
        out[key] = value
    return out


def _rename_ids(df: pd.DataFrame, columns: Mapping[str, str] | None, source: str) -> pd.DataFrame:
    """Give the file's id columns the standard names (``site``, ``respondent``, ``role``)."""
    if not columns:
        return df
    unknown = [k for k in columns if k not in ID_COLUMNS]
    if unknown:
        raise DataError(
            f"{source}: the id-column map names {_names(unknown)}, which is not an id column; "
            f"map {', '.join(ID_COLUMNS)} to your file's names"
        )
    absent = [v for v in columns.values() if v not in df.columns]
    if absent:
        raise DataError(f"{source}: no column {_names(absent)} to use as an id column; check the spelling")
    clash = [k for k, v in columns.items() if k in df.columns and k != v]
    if clash:
        raise DataError(
            f"{source}: the file already has a column {_names(clash)}; drop it or map that name to it"
        )
    return df.rename(columns={v: k for k, v in columns.items()})


def validate_responses(
    raw: pd.DataFrame,
    codebook: pd.DataFrame,
    *,
    source: str = "responses",
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Validate a responses table against a codebook (see :func:`read_responses`)."""
    if not isinstance(raw, pd.DataFrame):
        raise DataError(f"{source}: responses must be a DataFrame, got {type(raw).__name__}")
    codebook = _as_codebook(codebook)
    df = raw.rename(columns=lambda c: str(c).strip()).reset_index(drop=True)
    df = _rename_ids(df, columns, source)
    if len(df) == 0:
        raise DataError(f"{source}: no respondents; give one row per survey respondent")
    missing_ids = [c for c in ID_COLUMNS if c not in df.columns]
    if missing_ids:
        raise DataError(
            f"{source}: missing column{'s' if len(missing_ids) > 1 else ''} {_names(missing_ids)}; "
            "responses need site, respondent and role beside the item columns"
        )
    items = codebook["item"].tolist()
    known = set(items) | set(ID_COLUMNS) | set(PASSTHROUGH_COLUMNS)
    extra = [c for c in df.columns if c not in known]
    if extra:
        raise DataError(
            f"{source}: column{'s' if len(extra) > 1 else ''} {_names(extra)} not in the codebook; "
            "add the item to the codebook, fix the column name, or drop the column"
        )
    absent = [c for c in items if c not in df.columns]
    if absent:
        raise DataError(
            f"{source}: codebook item{'s' if len(absent) > 1 else ''} {_names(absent)} missing "
            "from the data; add the column (blank where not asked) or remove the item from the "
            "codebook"
        )

    for col, what in (("site", "a respondent without a site"),
                      ("respondent", "a row without a respondent id"),
                      ("role", "a respondent without a role")):
        blank = _blank(df[col])
        if blank.any():
            fix = (f"fill in the role (one of {', '.join(KNOWN_ROLES)})" if col == "role"
                   else f"fill in the {col} id or drop the row")
            rows = _rows(np.flatnonzero(blank))
            raise DataError(f"{source}: column '{col}' {rows}: {what}; {fix}")

    out = pd.DataFrame(
        {
            "site": df["site"].astype(str).str.strip().to_numpy(dtype=object),
            "respondent": df["respondent"].astype(str).str.strip().to_numpy(dtype=object),
            "role": df["role"].map(normalise_role).to_numpy(dtype=object),
        }
    )
    bad_role = ~out["role"].isin(KNOWN_ROLES).to_numpy()
    if bad_role.any():
        raise DataError(
            f"{source}: column 'role' {_rows(np.flatnonzero(bad_role))}: unknown role "
            f"{_names(df['role'][bad_role].astype(str).unique())}; use one of "
            f"{', '.join(KNOWN_ROLES)}"
        )
    dup = out.duplicated(["site", "respondent"], keep=False).to_numpy()
    if dup.any():
        first = out[dup].iloc[0]
        raise DataError(
            f"{source}: columns 'site'/'respondent' {_rows(np.flatnonzero(dup))}: respondent "
            f"{first['respondent']!r} appears more than once in site {first['site']!r}; give each "
            "respondent one row (or a unique id within the site)"
        )
    for col in PASSTHROUGH_COLUMNS:
        if col in df.columns:
            out[col] = df[col].to_numpy()

    values = {}
    for row in codebook.itertuples(index=False):
        values[row.item] = _numeric_item(df[row.item], row.item, row.min, row.max, source)
    item_frame = pd.DataFrame(values, index=out.index)
    out = pd.concat([out, item_frame], axis=1)

    asked = asked_mask(out["role"], codebook)
    answered_unasked = ~asked & ~np.isnan(item_frame.to_numpy(dtype=float))
    if answered_unasked.any():
        r, c = np.nonzero(answered_unasked)
        item = items[int(c[0])]
        answered_rows = np.flatnonzero(answered_unasked[:, c[0]])
        raise DataError(
            f"{source}: column '{item}' {_rows(answered_rows)}: answered by role "
            f"{out['role'].iloc[int(r[0])]!r}, which the codebook does not ask this item; add the "
            "role to the item's roles in the codebook or blank these cells"
        )
    return out


def _numeric_item(col: pd.Series, item: str, lo: float, hi: float, source: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        num = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        text = col.astype("string").str.strip()
        num_s = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
        num = num_s.to_numpy(dtype=float, na_value=np.nan)
        is_text = (~_blank(col)) & np.isnan(num)
        if is_text.any():
            raise DataError(
                f"{source}: column '{item}' {_rows(np.flatnonzero(is_text))}: text "
                f"{_names(col[is_text].astype(str).unique(), 3)} in a numeric item; enter the "
                f"response as a number from {lo:g} to {hi:g}, or leave the cell blank"
            )
    outside = ~np.isnan(num) & ((num < lo) | (num > hi))
    if outside.any():
        raise DataError(
            f"{source}: column '{item}' {_rows(np.flatnonzero(outside))}: value "
            f"{_names(sorted({f'{v:g}' for v in num[outside]}), 3)} is outside the codebook range "
            f"{lo:g}-{hi:g}; fix the value or the item's min/max in the codebook"
        )
    return num


def _as_codebook(codebook: pd.DataFrame) -> pd.DataFrame:
    """Accept a validated codebook, or validate a raw one (e.g. built in Python)."""
    if isinstance(codebook, pd.DataFrame) and "roles" in codebook and len(codebook) and all(
        isinstance(r, tuple) for r in codebook["roles"]
    ) and pd.api.types.is_bool_dtype(codebook["reverse"]):
        return codebook
    return validate_codebook(codebook, source="codebook")


def asked_mask(roles: Sequence[str] | pd.Series, codebook: pd.DataFrame) -> np.ndarray:
    """Boolean (n_respondents, n_items): is this respondent's role asked this item?"""
    roles_arr = np.asarray(list(roles), dtype=object)
    mask = np.ones((len(roles_arr), len(codebook)), dtype=bool)
    for j, allowed in enumerate(codebook["roles"]):
        if allowed:
            mask[:, j] = np.isin(roles_arr, list(allowed))
    return mask


def keyed_items(responses: pd.DataFrame, codebook: pd.DataFrame) -> np.ndarray:
    """Item values with reverse keying applied (``min + max - x``), NaN where blank or not asked.

    Returns an array (n_respondents, n_items) in codebook order.
    """
    codebook = _as_codebook(codebook)
    x = responses[codebook["item"].tolist()].to_numpy(dtype=float, na_value=np.nan)
    rev = codebook["reverse"].to_numpy(dtype=bool)
    flipped = codebook["min"].to_numpy(float) + codebook["max"].to_numpy(float) - x
    x = np.where(rev[None, :], flipped, x)
    asked = asked_mask(responses["role"], codebook)
    return np.where(asked, x, np.nan)


def subscale_columns(codebook: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(construct, subscale, column name)`` in codebook order; column = ``E_<subscale>``."""
    codebook = _as_codebook(codebook)
    seen = dict.fromkeys(zip(codebook["construct"], codebook["subscale"], strict=True))
    return [(c, s, f"{c}_{s}") for c, s in seen]


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def score_responses(
    responses: pd.DataFrame, codebook: pd.DataFrame, *, min_answered: float = 0.5
) -> pd.DataFrame:
    """Score each respondent: subscales, then E, C, F scales.

    Parameters
    ----------
    responses
        As returned by :func:`read_responses`, or a table built in Python (validated the same
        way, with ``responses`` as the source in messages).
    codebook
        As returned by :func:`read_codebook`.
    min_answered
        A subscale is scored only when the respondent answered at least this share of the items
        their role was asked in it (ORCA: one half). Items not asked (by design) do not count.

    Returns
    -------
    DataFrame
        One row per respondent: ``site``, ``respondent``, ``role`` (and ``region``/``wave`` when
        given), ``E``, ``C``, ``F``; one column per subscale (``E_<subscale>``); per construct
        ``n_asked_X`` (items the role is asked), ``n_answered_X``, ``n_nonresponse_X`` (asked but
        blank), ``n_not_asked_X`` (missing by design), ``n_subscales_X`` (subscales scored) and
        ``status_X``: ``scored``, ``nonresponse`` (asked, too few answers) or ``not_asked``
        (the role is asked none of the construct's items).
    """
    if not 0.0 < float(min_answered) <= 1.0:
        raise DataError(f"min_answered must be in (0, 1], got {min_answered}; ORCA uses 0.5")
    codebook = _as_codebook(codebook)
    # always validate: cheap (vectorised per item) and a hand-built table gets the same checks
    responses = validate_responses(responses, codebook)

    x = keyed_items(responses, codebook)
    asked = asked_mask(responses["role"], codebook)
    answered = asked & ~np.isnan(x)

    subs = subscale_columns(codebook)
    key = list(zip(codebook["construct"], codebook["subscale"], strict=True))
    member = np.zeros((len(codebook), len(subs)), dtype=float)  # item -> subscale incidence
    position = {(c, s): i for i, (c, s, _) in enumerate(subs)}
    for j, k in enumerate(key):
        member[j, position[k]] = 1.0
    n_asked = asked.astype(float) @ member
    n_ans = answered.astype(float) @ member
    sums = np.where(answered, x, 0.0) @ member
    # tolerance: 2 of 4 answered with min_answered=0.5 must pass despite float rounding
    enough = (n_ans > 0) & (n_ans + 1e-9 >= float(min_answered) * n_asked)
    with np.errstate(invalid="ignore", divide="ignore"):
        sub_scores = np.where(enough, sums / n_ans, np.nan)

    out = responses[[c for c in (*ID_COLUMNS, *PASSTHROUGH_COLUMNS) if c in responses]].copy()
    out = out.reset_index(drop=True)
    scales: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    construct_of = np.array([s[0] for s in subs], dtype=object)
    item_construct = codebook["construct"].to_numpy(dtype=object)
    for c in CONSTRUCTS:
        cols = construct_of == c
        block = sub_scores[:, cols]
        n_sub = np.sum(~np.isnan(block), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scales[c] = np.where(n_sub > 0, np.nansum(block, axis=1) / np.maximum(n_sub, 1), np.nan)
        in_c = item_construct == c
        n_ask = asked[:, in_c].sum(axis=1)
        n_answer = answered[:, in_c].sum(axis=1)
        counts[f"n_asked_{c}"] = n_ask
        counts[f"n_answered_{c}"] = n_answer
        counts[f"n_nonresponse_{c}"] = n_ask - n_answer
        counts[f"n_not_asked_{c}"] = int(in_c.sum()) - n_ask
        counts[f"n_subscales_{c}"] = n_sub
        counts[f"status_{c}"] = np.where(
            n_sub > 0, STATUS_SCORED, np.where(n_ask > 0, STATUS_NONRESPONSE, STATUS_NOT_ASKED)
        )
    for c in CONSTRUCTS:
        out[c] = scales[c]
    for j, (_, _, name) in enumerate(subs):
        out[name] = sub_scores[:, j]
    for name, value in counts.items():
        out[name] = value
    return out


def site_scores(respondent_scores: pd.DataFrame, *, sd: bool = False) -> pd.DataFrame:
    """Aggregate respondent scores to sites.

    Parameters
    ----------
    respondent_scores
        As returned by :func:`score_responses`.
    sd
        Also give each scale's between-respondent SD within the site (``E_sd``, ...; NaN with
        fewer than two scored respondents).

    Returns
    -------
    DataFrame
        ``site`` (and ``region`` when it is constant within every site), ``E``, ``C``, ``F`` (mean
        of the respondents with a score), ``n_E``, ``n_C``, ``n_F`` (how many), and
        ``n_respondents`` (rows in the site, scored or not), sorted by first appearance.
    """
    missing = [c for c in ("site", *CONSTRUCTS) if c not in respondent_scores.columns]
    if missing:
        raise DataError(
            f"respondent scores: missing column{'s' if len(missing) > 1 else ''} "
            f"{_names(missing)}; pass the table that score_responses returns"
        )
    g = respondent_scores.groupby("site", sort=False)
    out = pd.DataFrame({"site": list(g.groups)})
    if "region" in respondent_scores.columns:
        per_site = g["region"].nunique(dropna=False)
        if (per_site <= 1).all():
            out["region"] = g["region"].first().to_numpy()
    means = g[list(CONSTRUCTS)].mean()
    n = g[list(CONSTRUCTS)].count()
    for c in CONSTRUCTS:
        out[c] = means[c].to_numpy()
    for c in CONSTRUCTS:
        out[f"n_{c}"] = n[c].to_numpy()
    out["n_respondents"] = g.size().to_numpy()
    if sd:
        sds = g[list(CONSTRUCTS)].std(ddof=1)
        for c in CONSTRUCTS:
            out[f"{c}_sd"] = sds[c].to_numpy()
    return out
