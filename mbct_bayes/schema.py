"""The data contract: read observation tables and validate them once, at the edge.

Everything a model, a prediction or a score needs from a table is checked here, before any model
is built. A problem the user must fix is a :class:`~mbct_bayes.errors.DataError` with one line
that names the file, the column, the first offending rows and the fix; what is legal but weak
(one row per site, few sites, complete separation) is a :class:`DataWarning`.

Row numbers in messages are 1-based data rows: row 1 is the first row after the CSV header.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes._validate import (
    NA_TOKENS,
    _err,
    _num,
    _plural,
    _rows,
    _suggest,
    _values,
    _warn,
)
from mbct_bayes._validate import DataWarning as DataWarning  # re-exported: part of this module's API
from mbct_bayes._validate import _check_count as _check_count
from mbct_bayes._validate import level_codes as level_codes
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.spec import ModelSpec

PARQUET_SUFFIXES = (".parquet", ".pq")
#: Cell values read as missing (besides empty cells), as spreadsheets and R write them.
#: Columns never converted to numbers when reading without a spec (ids such as "007" stay text).
DEFAULT_ID_COLUMNS = ("site", "region", "respondent", "role", "id")
DELIMITERS = (",", ";", "\t")
#: Predictors without a declared scale: beyond this magnitude sums of squares overflow.
MAX_ABS_VALUE = 1e15


# -- reading -------------------------------------------------------------------------------------


def read_table(
    path: str | os.PathLike[str], *, what: str = "observations", id_columns: Iterable[str] = ()
) -> pd.DataFrame:
    """Read a CSV or Parquet table, with one-line errors for every way a file can be unreadable.

    CSV is UTF-8 (a BOM is fine), with CRLF or LF line ends; the delimiter is sniffed from the
    header among comma, semicolon and tab (with ``;``, a decimal comma is accepted). Cells are
    stripped; empty cells and ``NA``-like tokens are missing. Columns whose every value is a
    number become numeric; id columns (``site``, ``region``, ``respondent``, ``role``, ``id``
    and ``id_columns``) always stay text, so ``"007"`` stays ``"007"``.

    Parameters
    ----------
    path
        A ``.parquet``/``.pq`` file, or a CSV file (any other extension).
    what
        What the file should hold, for messages (``"observations"``, ``"new sites"``, ...).
    id_columns
        More columns to keep as text.

    Returns
    -------
    DataFrame
        With a fresh 0..n-1 index.

    Raises
    ------
    DataError
        Missing file, a directory, an empty file, a header without rows, non-UTF-8 text,
        duplicated or unnamed column names, rows with the wrong number of fields, unreadable CSV
        or Parquet.
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise DataError(f"{src}: {what} file not found; check the path")
    if path.is_dir():
        raise DataError(f"{src}: is a directory; give the {what} file (CSV or Parquet) inside it")
    if path.stat().st_size == 0:
        raise DataError(f"{src}: file is empty (0 bytes); it needs a header row and data rows")
    ids = {*DEFAULT_ID_COLUMNS, *id_columns}
    if path.suffix.lower() in PARQUET_SUFFIXES:
        df = _read_parquet(path, src)
    else:
        df = _read_csv(path.read_bytes(), src, ids)
    if len(df) == 0:
        raise DataError(f"{src}: has a header but no data rows; add one row per {_unit(what)}")
    return df.reset_index(drop=True)


def read_observations(path: str | Path, spec: ModelSpec | None = None) -> pd.DataFrame:
    """Read an observations table and, given a spec, validate it.

    Parameters
    ----------
    path
        CSV or Parquet file (see :func:`read_table`).
    spec
        When given, the table is checked and cleaned by :func:`validate_observations`, and the
        spec's group and region columns are kept as text.

    Returns
    -------
    DataFrame
    """
    ids = [c for c in (spec.group, spec.region) if c] if spec is not None else []
    df = read_table(path, what="observations", id_columns=ids)
    if spec is None:
        return df
    return validate_observations(df, spec, source=str(path))


def _unit(what: str) -> str:
    return "site" if "site" in what else "assessed unit"


def _read_parquet(path: Path, src: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        reason = " ".join(str(err).split())[:200]
        raise DataError(
            f"{src}: not a readable Parquet file ({reason}); re-export it, or save it as CSV"
        ) from None
    names = [str(c) for c in df.columns]
    _check_names(names, src)
    df.columns = names
    return df


def _read_csv(raw: bytes, src: str, ids: set[str]) -> pd.DataFrame:
    text = _decode(raw, src)
    if not text.strip():
        raise DataError(f"{src}: file holds only blank space; it needs a header row and data rows")
    first_line = text.lstrip("\r\n").splitlines()[0]
    sep = _sniff_delimiter(first_line)
    try:
        rows = list(_csv_rows(text, sep, src))
    except csv.Error as err:
        raise DataError(
            f"{src}: not a readable CSV file ({err}); save it as comma-separated CSV"
        ) from None
    header, body = rows[0][1], rows[1:]
    header = [h.strip() for h in header]
    # spreadsheets often end every line with a delimiter: drop trailing unnamed, empty columns
    while (
        header
        and header[-1] == ""
        and all(len(r) < len(header) or not r[len(header) - 1].strip() for _, r in body)
    ):
        header.pop()
    _check_names(header, src)
    width = len(header)
    data = []
    for line, row in body:
        if len(row) > width and not any(c.strip() for c in row[width:]):
            row = row[:width]  # trailing empty fields
        if len(row) != width:
            hint = "" if sep == "," else f" (read as {_SEP_NAMES[sep]}-separated)"
            raise DataError(
                f"{src}: line {line} has {len(row)} fields but the header has {width}{hint}; "
                "fix that row (a stray delimiter or an unquoted comma in a value?)"
            )
        data.append([c.strip() for c in row])
    df = pd.DataFrame(data, columns=header, dtype=object)
    for col in header:
        values = df[col].where(~df[col].isin(NA_TOKENS), None)
        if col in ids:
            df[col] = values.astype("str")
        else:
            df[col] = _auto_numeric(values, decimal_comma=sep == ";")
    return df


_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _decode(raw: bytes, src: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{src}: file is UTF-16 text; save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel)"
        )
    if raw.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{src}: looks like an Excel/zip file, not CSV; save the sheet as CSV UTF-8"
        )
    if raw.startswith(b"PAR1"):
        raise DataError(f"{src}: looks like a Parquet file; give it a .parquet extension")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        byte = raw[err.start : err.start + 1].hex()
        raise DataError(
            f"{src}: not UTF-8 text (byte 0x{byte} at offset {err.start}, line {line}); "
            "save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel)"
        ) from None
    if "\x00" in text:
        raise DataError(f"{src}: contains NUL bytes, so it is not a text CSV; save it as CSV UTF-8")
    return text


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter is the commonest of , ; TAB in the header (comma on a tie or none)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _csv_rows(text: str, sep: str, src: str):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    start = 1
    for row in reader:
        if row and any(c.strip() for c in row):  # skip blank lines (also ",,,,")
            yield start, row
        start = reader.line_num + 1


def _check_names(names: list[str], src: str) -> None:
    for i, name in enumerate(names):
        if not name.strip():
            raise DataError(
                f"{src}: column {i + 1} has no name in the header; name it or delete it"
            )
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    dup = [n for n, k in seen.items() if k > 1]
    if dup:
        raise DataError(
            f"{src}: column name {dup[0]!r} appears {seen[dup[0]]} times in the header; "
            "rename or remove the duplicates"
        )


def _auto_numeric(values: pd.Series, decimal_comma: bool) -> pd.Series:
    """Numbers if every present value parses as one, else the text unchanged."""
    present = values.dropna()
    if present.empty:
        return pd.Series(np.nan, index=values.index, dtype="float64")
    try:
        return pd.to_numeric(values)
    except (ValueError, TypeError):
        pass
    if decimal_comma:
        try:
            return pd.to_numeric(values.str.replace(",", ".", regex=False))
        except (ValueError, TypeError, AttributeError):
            pass
    return values.astype("str")


# -- validation ----------------------------------------------------------------------------------


def validate_observations(
    df: pd.DataFrame,
    spec: ModelSpec,
    *,
    source: str = "observations",
    new_data: bool = False,
    known_sites: Sequence[str] | None = None,
    known_regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Check a table against the spec and return a cleaned copy.

    Parameters
    ----------
    df
        One row per assessed unit.
    spec
        Names the group, region, predictor and outcome columns, the scales and the levels.
    source
        Name for messages (usually the file name).
    new_data
        Rows to predict for: the outcome is neither required nor checked, an empty region means
        "unknown region", and a missing region column means every region is unknown (the column
        is added, empty). The weak-data warnings are skipped.
    known_sites
        If given, every site must be one of these (e.g. the fitted sites, for known-site
        predictions).
    known_regions
        If given, every non-empty region must be one of these (e.g. the fitted regions).

    Returns
    -------
    DataFrame
        A copy with a 0..n-1 index; predictors float64; group and region as text (a missing
        region in new data is NaN); the outcome (and trials) int64 for bernoulli and binomial,
        unchanged for ordinal. Extra columns are kept.

    Raises
    ------
    DataError
        The first problem found, naming column, rows and fix.

    Warns
    -----
    DataWarning
        Most sites with one observation, fewer than 5 sites, complete separation, an ordinal
        level never observed.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a table (pandas DataFrame), got {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"{source}: has no data rows; add one row per assessed unit")
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise DataError(
            f"{source}: column name {dup!r} appears more than once; rename or remove the duplicates"
        )
    out = df.copy().reset_index(drop=True)
    out.columns = [str(c) for c in out.columns]
    _check_columns(out, spec, source, new_data)

    group = spec.group
    out[group] = _ids(out[group])
    missing = out[group].isna().to_numpy()
    if missing.any():
        raise _err(source, group, missing, f"missing {group} id; give every row its {group}")
    if known_sites is not None:
        known = {str(s) for s in known_sites}
        bad = ~out[group].isin(known).to_numpy()
        if bad.any():
            raise _err(
                source,
                group,
                bad,
                f"{_values(out[group], bad)} not among the fitted sites; check the id, or "
                "predict with kind new_site for a site not in the data",
            )

    if spec.region:
        _check_region(out, spec, source, new_data, known_regions)

    for p in spec.predictors:
        if p in spec.categorical or is_category_column(out[p], spec.scale.get(p)):
            out[p] = _check_category(out[p], p, spec.categorical.get(p), source)
        else:
            out[p] = _check_predictor(out[p], p, spec.scale.get(p), source)

    if not new_data:
        get_family(spec.family).check_outcome(out, spec, source)

    if spec.time is not None and spec.time in out.columns:
        _check_time(out, spec, source)
    elif "wave" in out.columns:
        key = out[[group]].assign(_w=out["wave"].astype("str"))
        dup = key.duplicated(keep=False).to_numpy()
        if dup.any():
            raise _err(
                source,
                f"{group}, wave",
                dup,
                "the same site and wave appear more than once; remove the duplicate rows "
                "or number the units with distinct waves",
            )

    if not new_data:
        _warn_weak(out, spec, source)
    return out


# -- validation helpers ----------------------------------------------------------------------


def _check_columns(df: pd.DataFrame, spec: ModelSpec, source: str, new_data: bool) -> None:
    required = [spec.group, *spec.predictors]
    if spec.time is not None and not new_data:
        required.append(spec.time)
    if spec.region and not new_data:
        required.append(spec.region)
    if not new_data:
        required.extend(get_family(spec.family).outcome_columns(spec))
    missing = [c for c in dict.fromkeys(required) if c not in df.columns]
    if missing and len(df.columns) == 1:
        only = str(df.columns[0])
        sep = next((d for d in (";", "\t", "|") if d in only), None)
        if sep is not None:
            name = {";": "';'", "\t": "tab", "|": "'|'"}[sep]
            raise DataError(
                f"{source}: one column {only[:40]!r}...; looks like {name}-separated text read as "
                "comma-separated; save as comma-separated CSV or read it with read_table"
            )
    if spec.region and new_data and spec.region not in df.columns:
        df[spec.region] = pd.Series(np.nan, index=df.index, dtype="str")  # every region unknown
    if missing:
        parts = [
            f"{c!r}{_suggest(c, [x for x in df.columns if x not in required])}" for c in missing
        ]
        found = ", ".join(df.columns[:12]) + (" ..." if len(df.columns) > 12 else "")
        raise DataError(
            f"{source}: missing {_plural(missing, 'column')} {', '.join(parts)} (columns found: "
            f"{found}); rename the column in the file or set the column name in the spec"
        )


def _check_region(df, spec, source, new_data, known_regions) -> None:
    region, group = spec.region, spec.group
    df[region] = _ids(df[region])
    missing = df[region].isna().to_numpy()
    if missing.any() and not new_data:
        raise _err(
            source,
            region,
            missing,
            f"missing {region}; give every row its {region} (sites nest in regions)",
        )
    present = df[~missing]
    per_site = present.groupby(group, sort=False)[region].nunique()
    split = per_site[per_site > 1]
    if len(split):
        site = split.index[0]
        rows = (df[group] == site).to_numpy() & ~missing
        names = ", ".join(map(repr, present.loc[present[group] == site, region].unique()[:3]))
        raise _err(
            source,
            region,
            rows,
            f"site {site!r} is listed in {per_site[site]} regions ({names}); "
            f"a site belongs to one region, fix the region of those rows",
        )
    if known_regions is not None:
        known = [str(r) for r in known_regions]
        bad = (~df[region].isin(known)).to_numpy() & ~missing
        if bad.any():
            first = str(df[region][bad].iloc[0])
            raise _err(
                source,
                region,
                bad,
                f"{_values(df[region], bad)} never seen in the fitted data (known: "
                f"{', '.join(known)}){_suggest(first, known)}; fix the spelling, or leave "
                "the region empty to treat it as unknown",
            )


def _check_time(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    """A panel's time column: numeric, present, and one row per site and time (in place: float64)."""
    time, group = spec.time, spec.group
    assert time is not None
    raw = df[time]
    if raw.dtype == bool:
        raw = raw.astype("float64")
    num = pd.to_numeric(raw, errors="coerce")
    nonnum = raw.notna().to_numpy() & num.isna().to_numpy()
    if nonnum.any():
        raise _err(
            source, time, nonnum,
            f"{_values(raw, nonnum)} not a number; time must be numeric (a year, or any ordered number such as "
            "a wave number): convert dates to years or number the waves",
        )
    t = num.to_numpy(dtype="float64")
    if np.isnan(t).any():
        raise _err(source, time, np.isnan(t), f"missing time; give every row its {time} (a year or wave number)")
    if np.isinf(t).any():
        raise _err(source, time, np.isinf(t), "infinite time; fix the value")
    df[time] = t
    dup = pd.DataFrame({"s": df[group], "t": t}).duplicated(keep=False).to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        site, when = df[group].iloc[first], _num(float(t[first]))
        rows = dup & (df[group] == site).to_numpy() & (t == t[first])
        raise _err(
            source, f"{group}, {time}", rows,
            f"site {site!r} has {int(rows.sum())} rows at {time} {when}; keep one row per site and time "
            "(remove or merge the duplicates)",
        )


def category_labels(col: pd.Series) -> pd.Series:
    """A categorical covariate's values as level labels: text, trimmed, whole numbers without '.0'."""
    return _ids(col)


def is_category_column(col: pd.Series, scale: Any) -> bool:
    """A predictor column without a scale whose every present value is text, not a number.

    Such a column is a categorical covariate (default reference level) even without a
    ``[categorical]`` entry; a column mixing numbers and text stays numeric, so a typo in a score
    is still reported as "not a number".
    """
    if scale is not None or pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    labels = _ids(col).dropna()
    return bool(len(labels)) and bool(pd.to_numeric(labels, errors="coerce").isna().all())


def _check_category(col: pd.Series, name: str, entry: Any, source: str) -> pd.Series:
    """Level labels of a categorical covariate; missing values and (for a fitted spec) unseen levels refused."""
    labels = category_labels(col)
    missing = labels.isna().to_numpy()
    if missing.any():
        raise _err(source, name, missing, "missing category; fill it in or drop the row")
    levels = entry.get("levels") if entry else None
    if levels is not None:
        unseen = ~labels.isin(list(levels)).to_numpy()
        if unseen.any():
            first = str(labels[unseen].iloc[0])
            raise _err(
                source, name, unseen,
                f"level {first!r} was not in the fitted data (known levels: {', '.join(levels)}); "
                "use one of them, or refit with data that include it",
            )
    return labels


def _check_predictor(col: pd.Series, name: str, scale, source: str) -> pd.Series:
    raw = col
    if raw.dtype == bool:
        raw = raw.astype("float64")
    num = pd.to_numeric(raw, errors="coerce")
    present = raw.notna().to_numpy()
    nonnum = present & num.isna().to_numpy()
    if nonnum.any():
        raise _err(
            source,
            name,
            nonnum,
            f"{_values(raw, nonnum)} not a number; scores must be numeric "
            "(use . as the decimal point)",
        )
    x = num.to_numpy(dtype="float64")
    if np.isnan(x).any():
        raise _err(
            source,
            name,
            np.isnan(x),
            "missing score; fill it in (or compute it from items) or drop the row",
        )
    if np.isinf(x).any():
        raise _err(source, name, np.isinf(x), "infinite value; fix the value")
    if scale is not None:
        lo, hi = scale
        bad = (x < lo) | (x > hi)
        if bad.any():
            raise _err(
                source,
                name,
                bad,
                f"{_values(pd.Series(x), bad)} outside the scale {_num(lo)}-{_num(hi)}; "
                f"fix the value or set scale.{name} in the spec",
            )
    else:
        bad = np.abs(x) > MAX_ABS_VALUE
        if bad.any():
            raise _err(
                source,
                name,
                bad,
                f"{_values(pd.Series(x), bad)} too large to model; rescale the column "
                f"(e.g. to thousands) or set scale.{name} in the spec",
            )
    return pd.Series(x, index=col.index, name=name)


def _warn_weak(df: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    group = spec.group
    sizes = df.groupby(group, sort=False).size()
    if spec.trials is not None:  # units are trials: a row of k of n counts n
        sizes = df.groupby(group, sort=False)[spec.trials].sum()
    n_sites = len(sizes)
    single = int((sizes == 1).sum())
    if single > n_sites / 2:
        _warn(
            f"{source}: {single} of {n_sites} sites have one observation; their site effects are "
            "barely identified (sigma_site rests on the prior); add units per site if you can"
        )
    if n_sites < 5:
        _warn(
            f"{source}: only {n_sites} {'site' if n_sites == 1 else 'sites'}; sigma_site is "
            "weakly identified and its prior matters"
        )
    for split, low, high in get_family(spec.family).outcome_splits(df, spec):
        for p in spec.predictors:
            if not pd.api.types.is_numeric_dtype(df[p]):
                continue  # a categorical covariate: no ordering to separate on
            x = df[p].to_numpy(dtype=float)
            x_low, x_high = x[low], x[high]
            if x_low.size and x_high.size and (x_low.max() < x_high.min() or x_high.max() < x_low.min()):
                _warn(
                    f"{source}: {p!r} completely separates {split}; the {p} coefficient is "
                    "driven by its prior, so state that prior with care"
                )


# -- formatting helpers ----------------------------------------------------------------------


def _ids(col: pd.Series) -> pd.Series:
    """Ids as text: whole numbers without '.0', spaces trimmed, empty -> missing."""
    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return np.nan
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        text = str(v).strip()
        return np.nan if text in NA_TOKENS else text

    return pd.Series([one(v) for v in col.tolist()], index=col.index, dtype="str", name=col.name)


# -- respondent-level scores (latent measurement model) ------------------------------------------


def validate_respondent_scores(
    df: pd.DataFrame, spec: ModelSpec, *, source: str = "responses"
) -> pd.DataFrame:
    """Check respondent-level E, C, F scores for a latent-measurement model.

    One row per respondent: the site column, the spec's predictors (a respondent may lack a
    score on some construct: blank is allowed, a row with no score at all is dropped with a
    warning), and ``role`` when ``spec.role_offsets``. Scores must lie on the spec's scale.

    Returns
    -------
    DataFrame
        A copy with a 0..n-1 index; site and role as text; predictors float64 (NaN = no score).
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a table (pandas DataFrame), got {type(df).__name__}")
    if len(df) == 0:
        raise DataError(f"{source}: has no data rows; add one row per respondent")
    required = [spec.group, *spec.predictors] + (["role"] if spec.role_offsets else [])
    missing = [c for c in required if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns[:12]))
        raise DataError(
            f"{source}: missing {_plural(missing, 'column')} {', '.join(map(repr, missing))} (columns found: "
            f"{found}); respondent scores need {', '.join(required)} — score items with 'mbct-bayes score --level respondent'"
        )
    out = df.copy().reset_index(drop=True)
    out[spec.group] = _ids(out[spec.group])
    no_site = out[spec.group].isna().to_numpy()
    if no_site.any():
        raise _err(source, spec.group, no_site, f"respondent without a {spec.group}; give every respondent a {spec.group}")
    if spec.role_offsets:
        out["role"] = _ids(out["role"])
        no_role = out["role"].isna().to_numpy()
        if no_role.any():
            raise _err(source, "role", no_role, "missing role; role_offsets = true needs every respondent's role")
    for p in spec.predictors:
        raw = out[p]
        num = pd.to_numeric(raw, errors="coerce")
        nonnum = raw.notna().to_numpy() & num.isna().to_numpy()
        if nonnum.any():
            raise _err(source, p, nonnum, f"{_values(raw, nonnum)} not a number; scores must be numeric")
        x = num.to_numpy(dtype="float64")
        if np.isinf(x).any():
            raise _err(source, p, np.isinf(x), "infinite value; fix the value")
        bounds = spec.scale[p]
        assert bounds is not None  # ModelSpec requires a scale for every predictor of a latent model
        lo, hi = bounds
        bad = ~np.isnan(x) & ((x < lo) | (x > hi))
        if bad.any():
            raise _err(source, p, bad, f"{_values(pd.Series(x), bad)} outside the scale {_num(lo)}-{_num(hi)}; fix the value or set scale.{p} in the spec")
        out[p] = x
    empty = out[list(spec.predictors)].isna().all(axis=1).to_numpy()
    if empty.all():
        raise DataError(f"{source}: no respondent has any {'/'.join(spec.predictors)} score; check the columns")
    if empty.any():
        _warn(f"{source}: {_rows(empty)} have no score on any of {', '.join(spec.predictors)} and are left out")
        out = out[~empty].reset_index(drop=True)
    return out
