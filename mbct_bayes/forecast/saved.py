"""Score forecasts made earlier against outcomes observed later.

A forecasts table holds one row per forecast id (by default ``site``) with either ``p_mean``
(the probability of ``embedded = 1``) or one column ``p_<level>`` per ordered level. An outcomes
table holds the same ids and the observed ``embedded`` (0/1, or successes with ``trials``) or
``level``. The two are joined by id; ids present in only one table are reported (returned and
warned), never dropped silently. Scores and the base-rate baseline come from
:func:`mbct_bayes.forecast.rules.score_table`.

Binomial outcomes (successes of ``trials``) from a saved ``p_mean`` can only be **plug-in** scored:
one probability per row carries no spread, so the log score is ``Binomial(k | n, p_mean)``, not the
log score of the model's predictive mixture over posterior draws (which :func:`mbct_bayes.forecast.crossval.evaluate`
computes inside each fold). The base-rate baseline is then plug-in too, ``Binomial(k | n, rate)``,
so the skill compares like with like. Bernoulli and ordinal forecasts are scored in full: their
mean probabilities are their whole predictive distribution. ``log_score_of`` in the result says so.

Row numbers in messages count data rows from 1 (the header is not a row).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.families import family_names, get_family
from mbct_bayes.forecast import rules as scores
from mbct_bayes.spec import DEFAULT_LEVELS

#: Default tolerance for per-level probabilities summing to 1: loose enough for CSVs rounded to
#: three decimals, tight enough to catch a missing level.
SUM_TOL = 1e-3
#: What the ``log_score`` of :func:`score_forecasts` is a score of, per family.
LOG_SCORE_OF = {name: dict(get_family(name).log_score_of["saved"]) for name in family_names()}
#: ``p_*`` columns that summarise a probability rather than name a level.
_SUMMARY_COLUMN = re.compile(
    r"^p_(mean|median|sd|se|mode|lower|upper|lo|hi|q\d+(\.\d+)?|hdi_.*|eti_.*)$"
)


@dataclass
class ScoredForecasts:
    """The result of :func:`score_forecasts`.

    Attributes
    ----------
    scores
        ``{"model": {...}, "baseline": {...}, "skill": {...}}`` as from
        :func:`~mbct_bayes.forecast.rules.score_table`, and ``log_score_of``: which distribution each
        ``log_score`` scores (:data:`LOG_SCORE_OF`; plug-in for binomial rows).
    joined
        The matched rows: id columns, the forecast column(s) and the outcome.
    family
        ``"bernoulli"``, ``"binomial"`` or ``"ordinal"``.
    levels
        The ordered levels (ordinal only).
    unmatched_forecasts, unmatched_outcomes
        Id rows present only in the forecasts or only in the outcomes.
    """

    scores: dict[str, Any]
    joined: pd.DataFrame
    family: str
    levels: tuple[str, ...] | None = None
    unmatched_forecasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    unmatched_outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n(self) -> int:
        """Number of matched (scored) forecasts."""
        return len(self.joined)

    def to_dict(self) -> dict[str, Any]:
        """The scores plus ``n``, ``family`` and the unmatched ids, ready for JSON."""
        return {
            **self.scores,
            "n": self.n,
            "family": self.family,
            "unmatched": {
                "forecasts": _id_records(self.unmatched_forecasts),
                "outcomes": _id_records(self.unmatched_outcomes),
            },
        }


def _id_records(frame: pd.DataFrame) -> list[Any]:
    if frame.empty:
        return []
    if frame.shape[1] == 1:
        return frame.iloc[:, 0].tolist()
    return frame.to_dict(orient="records")


def _show(value: Any) -> str:
    """A cell value for a message: text quoted, numbers plain (3, not np.int64(3))."""
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}" if _is_number(value) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    idx = np.flatnonzero(np.asarray(mask))[:limit] + 1
    more = " ..." if int(np.asarray(mask).sum()) > limit else ""
    return ", ".join(str(i) for i in idx) + more


def _check_ids(frame: pd.DataFrame, id_cols: Sequence[str], name: str) -> None:
    missing = [c for c in id_cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: id column {', '.join(repr(c) for c in missing)} is missing; columns are "
            f"{', '.join(map(str, frame.columns))}; name the id with --id (id_cols=...)"
        )
    blank = frame[list(id_cols)].isna().any(axis=1)
    if blank.any():
        raise DataError(f"{name}: rows {_rows(blank)} have no id; fill in {', '.join(id_cols)}")
    dup = frame.duplicated(subset=list(id_cols), keep=False)
    if dup.any():
        first = frame.loc[dup, list(id_cols)].iloc[0].tolist()
        raise DataError(
            f"{name}: duplicate id {', '.join(map(str, first))} in rows {_rows(dup)}; "
            "keep one row per id or add an id column (e.g. --id site,wave)"
        )


def _check_probs(frame: pd.DataFrame, cols: Sequence[str], name: str) -> np.ndarray:
    values = frame[list(cols)].apply(pd.to_numeric, errors="coerce")
    for c in cols:
        text = frame[c].notna() & values[c].isna()
        if text.any():
            first = _show(frame.loc[text, c].iloc[0])
            raise DataError(
                f"{name}: column {c!r} rows {_rows(text)}: value {first} "
                "is not a number; forecasts must be probabilities in [0, 1]"
            )
        nan = values[c].isna()
        if nan.any():
            raise DataError(
                f"{name}: column {c!r} rows {_rows(nan)}: missing forecast; fill it in or drop "
                "the row"
            )
        out = (values[c] < 0) | (values[c] > 1)
        if out.any():
            raise DataError(
                f"{name}: column {c!r} rows {_rows(out)}: value {values.loc[out, c].iloc[0]:g} "
                "is outside [0, 1]; forecasts must be probabilities"
            )
    return values.to_numpy(dtype=float)


def _level_columns(forecasts: pd.DataFrame, levels: Sequence[str] | None, name: str) -> list[str]:
    if levels is not None:
        cols = [f"p_{lv}" for lv in levels]
        missing = [c for c in cols if c not in forecasts.columns]
        if missing:
            raise DataError(
                f"{name}: per-level column {', '.join(repr(c) for c in missing)} is missing; give "
                "one column p_<level> per level"
            )
        return cols
    return [
        c for c in map(str, forecasts.columns)
        if c.startswith("p_") and not _SUMMARY_COLUMN.match(c)
    ]


def _align_id_types(f: pd.DataFrame, o: pd.DataFrame, id_cols: Sequence[str]) -> None:
    """Compare ids as text when the two tables read them as different types (1 vs "1")."""
    for c in id_cols:
        if f[c].dtype != o[c].dtype:
            f[c] = f[c].astype(str)
            o[c] = o[c].astype(str)


def score_forecasts(
    forecasts: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    id_cols: Sequence[str] = ("site",),
    outcome: str | None = None,
    trials: str | None = "trials",
    levels: Sequence[str] | None = None,
    group: str | None = None,
    base_rate: float | None = None,
    sum_tol: float = SUM_TOL,
    bins: int = 10,
    n_boot: int = 1000,
    seed: int | None = 0,
    names: tuple[str, str] = ("forecasts", "outcomes"),
) -> ScoredForecasts:
    """Join earlier forecasts to later outcomes by id and score them against a base rate.

    Parameters
    ----------
    forecasts
        One row per id with ``p_mean`` (binary) or ``p_<level>`` columns (ordinal).
    outcomes
        One row per id with the observed outcome column.
    id_cols
        Columns that identify a forecast in both tables (e.g. ``("site",)`` or
        ``("site", "wave")``).
    outcome
        The outcome column: ``embedded`` (0/1, or successes with ``trials``) or ``level``
        (ordered categories). Default: ``embedded`` if present, else ``level``.
    trials
        Column of trials in ``outcomes`` for binomial outcomes; used only when present.
    levels
        Ordered levels (lowest first) for ordinal outcomes. Default: the ``p_<level>`` columns
        in file order, or ``none < partial < embedded`` when those are the levels.
    group
        The bootstrap and leave-out unit. Default: ``site`` when it is an id column, else the
        first id column.
    base_rate
        A fixed baseline probability (e.g. a historical rate) instead of the leave-site-out base
        rate of the other sites' outcomes. Binary outcomes only.
    sum_tol
        Tolerance for per-level probabilities summing to 1; rows within it (e.g. rounded to
        three decimals) are rescaled to sum to 1 exactly before scoring.
    bins, n_boot, seed
        Passed to :func:`~mbct_bayes.forecast.rules.score_table`.
    names
        How to call the two tables in messages (e.g. their file names).

    Returns
    -------
    ScoredForecasts

    Raises
    ------
    DataError
        On a missing id, forecast or outcome column; duplicate or blank ids; forecasts that are
        missing, non-numeric or outside [0, 1]; per-level probabilities not summing to 1;
        unknown outcome values; or no id in common.

    Warns
    -----
    UserWarning
        When some ids are in only one table (they are listed in the result).
    """
    fname, oname = names
    id_cols = [id_cols] if isinstance(id_cols, str) else list(id_cols)
    if not id_cols:
        raise DataError("id_cols: give at least one id column")
    f = forecasts.copy()
    o = outcomes.copy()
    f.columns = f.columns.map(str)
    o.columns = o.columns.map(str)
    _check_ids(f, id_cols, fname)
    _check_ids(o, id_cols, oname)

    if outcome is None:
        outcome = next((c for c in ("embedded", "level") if c in o.columns), None)
        if outcome is None:
            raise DataError(
                f"{oname}: no outcome column 'embedded' or 'level'; columns are "
                f"{', '.join(o.columns)}; name it with --outcome"
            )
    elif outcome not in o.columns:
        raise DataError(
            f"{oname}: outcome column {outcome!r} is missing; columns are {', '.join(o.columns)}"
        )

    # Ordinal when asked for (levels, a 'level' outcome) or when only per-level columns exist.
    ordinal = (
        levels is not None
        or outcome == "level"
        or (outcome != "embedded" and "p_mean" not in f.columns)
    )
    if ordinal:
        family = "ordinal"
        prob_cols = _level_columns(f, levels, fname)
        if len(prob_cols) < 2:
            raise DataError(
                f"{fname}: ordinal outcome {outcome!r} needs one column p_<level> per level "
                "(at least two); found "
                f"{', '.join(c for c in f.columns if c.startswith('p_')) or 'none'}"
            )
        level_names = tuple(c[2:] for c in prob_cols)
        if levels is None and set(level_names) == set(DEFAULT_LEVELS):
            level_names = DEFAULT_LEVELS
            prob_cols = [f"p_{lv}" for lv in level_names]
    else:
        family = "binomial" if trials is not None and trials in o.columns else "bernoulli"
        if "p_mean" not in f.columns:
            raise DataError(
                f"{fname}: no forecast column 'p_mean'; columns are {', '.join(f.columns)}; "
                "give P(embedded) as p_mean (or p_<level> columns for a 'level' outcome)"
            )
        prob_cols = ["p_mean"]
        level_names = None

    probs = _check_probs(f, prob_cols, fname)
    fam = get_family(family)
    if fam.ordered_levels:
        sums = probs.sum(axis=1)
        bad = np.abs(sums - 1.0) > sum_tol
        if bad.any():
            raise DataError(
                f"{fname}: columns {', '.join(prob_cols)} rows {_rows(bad)}: probabilities sum to "
                f"{sums[bad][0]:.6g}, not 1 (tolerance {sum_tol:g}); give one column per level"
            )
        # Rounded CSVs sum to 1 only within sum_tol; renormalise so the scores see exact rows.
        f[prob_cols] = probs / sums[:, None]

    _check_outcomes(o, outcome, family, level_names, trials, oname)

    _align_id_types(f, o, id_cols)
    merged = f[id_cols + prob_cols].merge(
        o[id_cols + [outcome] + ([trials] if fam.counts_trials else [])],
        on=id_cols, how="outer", indicator=True,
    )
    only_f = merged.loc[merged["_merge"] == "left_only", id_cols].reset_index(drop=True)
    only_o = merged.loc[merged["_merge"] == "right_only", id_cols].reset_index(drop=True)
    joined = merged.loc[merged["_merge"] == "both"].drop(columns="_merge").reset_index(drop=True)
    if joined.empty:
        raise DataError(
            f"{fname} and {oname} share no id in {', '.join(id_cols)} "
            f"(e.g. {fname} has {_example(f, id_cols)}, {oname} has {_example(o, id_cols)}); "
            "check the id columns and their spelling"
        )
    if len(only_f) or len(only_o):
        warnings.warn(
            f"{len(only_f)} forecast id(s) have no outcome and {len(only_o)} outcome id(s) have "
            f"no forecast; they are not scored: {_unmatched_text(only_f, only_o)}",
            UserWarning,
            stacklevel=2,
        )

    group = group or ("site" if "site" in id_cols else id_cols[0])
    if group not in joined.columns:
        raise DataError(f"group: {group!r} is not an id column; use one of {', '.join(id_cols)}")
    sites = joined[group].astype(str).to_numpy()
    n_groups = len(np.unique(sites))
    if base_rate is None and n_groups < 2:
        raise DataError(
            f"{fname}: only one {group} matched, so there is no other {group} to take a base "
            "rate from; give a fixed base_rate (--base-rate)"
        )

    if fam.ordered_levels:
        assert level_names is not None
        codes = joined[outcome].astype(str).map({lv: i for i, lv in enumerate(level_names)})
        y = codes.to_numpy(dtype=float)
        p_in: np.ndarray = joined[prob_cols].to_numpy(dtype=float)
        if base_rate is not None:
            raise DataError("base_rate: a fixed base rate applies to binary outcomes only")
        baseline: Any = "leave-site-out"
        t = None
    else:
        y = pd.to_numeric(joined[outcome]).to_numpy(dtype=float)
        p_in = joined["p_mean"].to_numpy(dtype=float)
        t = pd.to_numeric(joined[trials]).to_numpy(dtype=float) if fam.counts_trials else None
        if base_rate is not None:
            if not 0 <= base_rate <= 1:
                raise DataError(f"base_rate: {base_rate:g} is outside [0, 1]")
            baseline = np.full(len(joined), float(base_rate))
        else:
            baseline = "leave-site-out"

    table = scores.score_table(
        p_in, y, sites, family=family, baseline=baseline, trials=t,  # type: ignore[arg-type]
        bins=bins, n_boot=n_boot, seed=seed,
    )
    table["log_score_of"] = LOG_SCORE_OF[family]
    return ScoredForecasts(table, joined, family, level_names, only_f, only_o)


def _check_outcomes(
    o: pd.DataFrame,
    outcome: str,
    family: str,
    levels: Sequence[str] | None,
    trials: str | None,
    name: str,
) -> None:
    y = o[outcome]
    missing = y.isna()
    if missing.any():
        raise DataError(
            f"{name}: column {outcome!r} rows {_rows(missing)}: missing outcome; fill it in or "
            "drop the row"
        )
    fam = get_family(family)
    if fam.ordered_levels:
        assert levels is not None
        bad = ~y.astype(str).isin(levels)
        if bad.any():
            raise DataError(
                f"{name}: column {outcome!r} rows {_rows(bad)}: level {_show(y[bad].iloc[0])} is "
                f"not one of {', '.join(levels)}; fix the value or give the levels (--levels)"
            )
        return
    num = pd.to_numeric(y, errors="coerce")
    if fam.counts_trials:
        assert trials is not None
        n = pd.to_numeric(o[trials], errors="coerce")
        bad_n = n.isna() | (n < 1) | (n != n.round())
        if bad_n.any():
            raise DataError(
                f"{name}: column {trials!r} rows {_rows(bad_n)}: trials must be whole numbers >= 1"
            )
        bad = num.isna() | (num < 0) | (num > n) | (num != num.round())
        if bad.any():
            raise DataError(
                f"{name}: column {outcome!r} rows {_rows(bad)}: value {_show(y[bad].iloc[0])} is "
                f"not a whole number of successes between 0 and {trials!r}"
            )
        return
    bad = ~num.isin([0, 1])
    if bad.any():
        raise DataError(
            f"{name}: column {outcome!r} rows {_rows(bad)}: value {_show(y[bad].iloc[0])} is not 0 "
            "or 1; a binary outcome is 0 (not embedded) or 1 (embedded)"
        )


def _example(frame: pd.DataFrame, id_cols: Sequence[str]) -> str:
    row = frame[list(id_cols)].iloc[0].tolist() if len(frame) else []
    return ", ".join(map(str, row)) or "no rows"


def _unmatched_text(only_f: pd.DataFrame, only_o: pd.DataFrame, limit: int = 10) -> str:
    def ids(frame: pd.DataFrame) -> str:
        values = [", ".join(map(str, r)) if len(r) > 1 else str(r[0]) for r in frame.to_numpy()]
        text = "; ".join(values[:limit])
        return text + (f"; ... ({len(values)} in all)" if len(values) > limit else "")

    parts = []
    if len(only_f):
        parts.append(f"forecasts only: {ids(only_f)}")
    if len(only_o):
        parts.append(f"outcomes only: {ids(only_o)}")
    return " | ".join(parts)
