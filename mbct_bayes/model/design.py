"""The fixed-effect design matrix ``X``: the one place it is built.

``eta = Intercept + X @ beta + site and region effects``. ``X``'s columns, in the order of
:func:`coef_names`:

1. one column per spec predictor, in the spec's order:

   * a **numeric** predictor (E, C, F, or a numeric covariate): its value minus its centring
     value (``spec.center``; 3 for E, C, F, 0 for others);
   * a **categorical** covariate (a ``[categorical]`` entry in the spec, or a predictor column
     holding text, for which see :func:`mbct_bayes.schema.validate_observations`): treatment
     coding, one 0/1 column per level other than the reference level, named ``setting[secondary]``
     and placed in the order of the stored levels;

2. a transition model's previous state (:mod:`mbct_bayes.model.panel`): one 0/1 column per state
   other than the lowest, ``previous[<level>]`` (the levels from the family, ``spec.state_levels``),
   read from the rows' ``previous`` column; then, when ``spec.gaps["terms"]`` is on, ``gap`` (the
   rows' ``gap`` minus ``spec.gaps["center"]``) and ``gap:previous[<level>]`` (their products);

3. then each interaction ``a:b``: the products of every column of ``a`` with every column of
   ``b`` (named ``a:b`` for two numeric predictors, ``setting[secondary]:F`` otherwise,
   ``F:previous[1]`` for a state-specific slope);

4. then, in a model with a time trend (``time_trend = true``), one column named ``time``: the
   row's time minus the time origin, ``t - t0``, in the units of the spec's time column (so the
   coefficient ``time`` is the population trend in log-odds per unit of time: per year when the
   column holds years). See :func:`time_offsets`.

The time origin ``t0`` is the spec's ``time_origin`` when set, else the **latest time in the
fitted data** (:func:`resolve` fixes it into the fitted spec, so a saved and loaded fit rebuilds
the same ``X``). So the intercept, the site effects ``u_site`` and ``sigma_site`` describe the
sites at the latest fitted wave ("now"), and a row without a time column (a planning profile, a
trial profile, a new site given without its time) is at ``t0``, where the site slopes add
nothing. The site slopes ``b_site`` are not columns of ``X``: see
:func:`mbct_bayes.model.predictor.own_effects`.

A categorical covariate's levels are those of the fitted data; its reference level is the one
the spec states (``[categorical] setting = "primary"``) or, by default, the most frequent level in
the fitted data (ties: the first in alphabetical order). :func:`resolve` fixes both into the spec
a fit keeps (``spec.categorical[col] = {"reference", "levels", "default"}``), so a saved and
loaded fit rebuilds the same ``X``, and new data with a level it never saw is refused.

A categorical covariate is not a planning lever (what-if, levers, target and power move E, C, F
and numeric covariates only): an intervention does not change a service's setting. In a planning
profile without the column (a "typical" service, a trial profile) it takes its reference level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.model.panel import GAP, PREVIOUS
from mbct_bayes.schema import category_labels, level_codes
from mbct_bayes.spec import ModelSpec


def numeric_predictors(spec: ModelSpec) -> tuple[str, ...]:
    """The spec's predictors that enter ``X`` as numbers (every predictor but the categorical ones)."""
    return tuple(p for p in spec.predictors if p not in spec.categorical)


def categorical_predictors(spec: ModelSpec) -> tuple[str, ...]:
    """The spec's categorical covariates, in predictor order."""
    return tuple(p for p in spec.predictors if p in spec.categorical)


def dummy_levels(spec: ModelSpec, column: str) -> tuple[str, ...]:
    """The levels of a resolved categorical that get a 0/1 column: all but the reference, in order."""
    entry = _resolved_entry(spec, column)
    return tuple(level for level in entry["levels"] if level != entry["reference"])


def coef_names(spec: ModelSpec) -> tuple[str, ...]:
    """Names of the columns of ``X`` (the ``predictor`` coordinate of ``beta``), in order.

    The one definition is :attr:`ModelSpec.coef_names` (a spec names its own parameters, e.g. for
    ``[priors]``); with categorical covariates it needs a resolved spec (:func:`resolve`).
    """
    for c in categorical_predictors(spec):
        _resolved_entry(spec, c)
    return spec.coef_names


def default_reference(labels: pd.Series | np.ndarray | list[str]) -> str:
    """The most frequent level; ties go to the first in alphabetical order."""
    counts = pd.Series(np.asarray(labels, dtype=object)).astype(str).value_counts()
    top = counts[counts == counts.max()]
    return sorted(top.index)[0]


def resolve(spec: ModelSpec, table: pd.DataFrame) -> ModelSpec:
    """The spec with its time origin and every categorical covariate's levels and reference level
    fixed from ``table``.

    Time trend (``time_trend = true``) without a stated ``time_origin``: the origin becomes the
    latest time in ``table`` (the module docstring says why).

    ``table`` is validated (:func:`mbct_bayes.schema.validate_observations`): a predictor column
    holding text there is a categorical covariate even without a ``[categorical]`` entry (default
    reference). Levels already fixed (a fitted spec) are kept, and ``table`` may only use them.
    Returns ``spec`` itself when there is nothing to fix.

    Raises
    ------
    DataError
        A categorical with fewer than two levels, or a stated reference level not in the data.
    """
    spec = _resolve_gaps(spec, table)
    spec = _resolve_time_origin(spec, table)
    found = {p: dict(spec.categorical.get(p, {})) for p in spec.predictors if p in spec.categorical or _is_text(table, p)}
    if not found:
        return spec
    resolved: dict[str, dict[str, Any]] = {}
    for column, entry in found.items():
        labels = _labels(table, column)
        if entry.get("levels") is not None:
            _check_known(column, labels, entry["levels"])
            resolved[column] = entry
            continue
        levels = tuple(sorted(set(labels)))
        if len(levels) < 2:
            raise DataError(
                f"categorical covariate {column!r} has a single level {levels[0]!r} in the data; it needs at least "
                "two levels to estimate anything, remove it from predictors"
            )
        reference = entry.get("reference")
        if reference is None:
            resolved[column] = {"reference": default_reference(labels), "levels": levels, "default": True}
            continue
        if reference not in levels:
            raise DataError(
                f"[categorical] {column} = {reference!r}: that reference level is not in the data (levels: "
                f"{', '.join(levels)}); name one of them"
            )
        resolved[column] = {"reference": reference, "levels": levels, "default": False}
    if all(spec.categorical.get(c) == e for c, e in resolved.items()) and set(resolved) == set(spec.categorical):
        return spec
    d = spec.to_dict()
    out = spec.with_changes(
        categorical={**spec.categorical, **resolved},
        # a text column found here had the numeric defaults (centre 0, no scale); it has neither now
        center={k: v for k, v in d["center"].items() if k not in resolved},
        scale={k: v for k, v in d["scale"].items() if k not in resolved},
    )
    stray = [name for name in spec.priors if name not in out.parameter_names]
    if stray:
        raise DataError(
            f"[priors] names {stray[0]!r}, which is not a coefficient of this model with these data's levels "
            f"(coefficients: {', '.join(out.coef_names)})"
        )
    return out


def design_matrix(table: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """``X`` (n, p) for the rows of ``table``, columns in :func:`coef_names` order.

    Numeric predictors are read as numbers (validated tables hold float64); categorical covariates
    are matched against the spec's levels (resolve the spec first: :func:`resolve`). A column
    missing from ``table`` for a categorical covariate means its reference level; a missing time
    column (time-trend models) means the time origin (:func:`time_offsets`).
    """
    spec = resolve(spec, table) if _needs_resolving(spec, table) else spec
    numeric = np.column_stack(
        [table[p].to_numpy(dtype=float) - spec.center[p] for p in numeric_predictors(spec)]
    ) if numeric_predictors(spec) else np.zeros((len(table), 0))
    categories = {c: _labels(table, c) for c in categorical_predictors(spec) if c in table.columns}
    states = None
    if spec.dynamics == "transition":
        missing = [c for c in (PREVIOUS, *((GAP,) if spec.gap_columns else ())) if c not in table.columns]
        if missing:
            raise DataError(
                f"a transition model's rows need a {missing[0]!r} column (the state at the site's previous wave, "
                "and the time since it); make them with mbct_bayes.model.panel.lagged_rows"
            )
        states = {PREVIOUS: table[PREVIOUS], GAP: table[GAP] if spec.gap_columns else None}
    return design_from_parts(spec, numeric, categories, states, time_offset=time_offsets(spec, table))


def time_offsets(spec: ModelSpec, table: pd.DataFrame) -> np.ndarray | None:
    """Each row's time minus the time origin, ``t - t0`` (n,); ``None`` without a time trend.

    A table without the time column (a planning or trial profile) is at the origin: zeros. The
    spec must be resolved (:func:`resolve` fixes ``time_origin`` from the fitted data).
    """
    if not spec.time_trend:
        return None
    if spec.time_origin is None:
        raise DataError(
            "the time trend's origin is not fixed yet; it is the latest time of the fitted data "
            "(use the fit's spec, or mbct_bayes.model.design.resolve(spec, table))"
        )
    if spec.time is None or spec.time not in table.columns:
        return np.zeros(len(table))
    return table[spec.time].to_numpy(dtype=float) - float(spec.time_origin)


def with_time(spec: ModelSpec, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the time column filled in at the time origin where it is absent (time-trend fits).

    Planning tables pass through here, so the time each prediction is for shows in the output
    (a new site given without its time is predicted at the latest fitted time, ``t0``).
    """
    if not spec.time_trend or spec.time is None or spec.time in table.columns or spec.time_origin is None:
        return table
    return table.assign(**{spec.time: float(spec.time_origin)})


def design_from_parts(
    spec: ModelSpec,
    numeric_centred: np.ndarray,
    categories: Mapping[str, Any] | None = None,
    states: Mapping[str, Any] | None = None,
    time_offset: np.ndarray | None = None,
) -> np.ndarray:
    """``X`` from centred numeric values and categorical labels (the kernel under :func:`design_matrix`).

    Parameters
    ----------
    spec
        A resolved spec.
    numeric_centred
        (..., n, q) values of :func:`numeric_predictors` minus their centring values; leading axes
        (e.g. posterior draws of true scores) are kept.
    categories
        Per categorical covariate, its (n,) level labels; a covariate not given is at its
        reference level in every row.
    states
        Transition models: ``{"previous": (n,) previous states in the outcome's values, "gap":
        (n,) times since the previous wave}``; a state not given is the lowest state, a gap not
        given the reference gap (``spec.gaps["center"]``).
    time_offset
        Time-trend models: each row's ``t - t0`` (n,); not given means every row is at the time
        origin (offset 0).

    Returns
    -------
    numpy.ndarray
        (..., n, p) with the columns of :func:`coef_names`.
    """
    numeric_centred = np.asarray(numeric_centred, dtype=float)
    lead, n = numeric_centred.shape[:-2], numeric_centred.shape[-2]
    numeric_names = numeric_predictors(spec)
    if numeric_centred.shape[-1] != len(numeric_names):
        raise ValueError(f"numeric_centred has {numeric_centred.shape[-1]} columns; the spec has {len(numeric_names)}")
    categories = categories or {}
    blocks: dict[str, np.ndarray] = {}
    for j, p in enumerate(numeric_names):
        blocks[p] = numeric_centred[..., j : j + 1]
    for c in categorical_predictors(spec):
        indicators = _indicators(spec, c, categories.get(c), n)
        blocks[c] = np.broadcast_to(indicators, (*lead, *indicators.shape))
    columns = [blocks[p] for p in spec.predictors]
    if spec.dynamics == "transition":
        blocks[PREVIOUS] = np.broadcast_to(_state_indicators(spec, (states or {}).get(PREVIOUS), n), (*lead, n, len(spec.previous_columns)))
        columns.append(blocks[PREVIOUS])
        if spec.gap_columns:
            gap = (states or {}).get(GAP)
            centred = np.zeros(n) if gap is None else np.asarray(gap, dtype=float) - float(spec.gaps["center"])
            gap_block = np.column_stack([centred, centred[:, None] * _state_indicators(spec, (states or {}).get(PREVIOUS), n)])
            columns.append(np.broadcast_to(gap_block, (*lead, *gap_block.shape)))
    for a, b in spec.interactions:
        # every column of a times every column of b, a's columns outer (the coef_names order)
        columns.append((blocks[a][..., :, None] * blocks[b][..., None, :]).reshape(*lead, n, -1))
    if spec.time_trend:
        offset = np.zeros(n) if time_offset is None else np.asarray(time_offset, dtype=float)
        columns.append(np.broadcast_to(offset[:, None], (*lead, n, 1)))
    if not columns:
        return np.zeros((*lead, n, 0))
    return np.concatenate(columns, axis=-1)


def reference_notes(spec: ModelSpec) -> list[str]:
    """One phrase per categorical covariate naming its reference level and where it came from.

    E.g. ``"setting: reference 'primary' (the most frequent level in the fitted data; others:
    secondary, tertiary)"``. Empty without categorical covariates.
    """
    notes = []
    for c in categorical_predictors(spec):
        entry = _resolved_entry(spec, c)
        why = "the most frequent level in the fitted data" if entry.get("default") else "set in the spec"
        others = ", ".join(dummy_levels(spec, c))
        notes.append(f"{c}: reference {entry['reference']!r} ({why}); coefficients {c}[level] for {others} "
                     f"are log-odds relative to it")
    return notes


# -- helpers ----------------------------------------------------------------------------------
def _is_text(table: pd.DataFrame, column: str) -> bool:
    """A validated predictor column that holds level labels rather than numbers."""
    return column in table.columns and not pd.api.types.is_numeric_dtype(table[column])


def _resolve_time_origin(spec: ModelSpec, table: pd.DataFrame) -> ModelSpec:
    """The spec with ``time_origin`` set to the latest time in ``table`` (time-trend models that
    state none); ``spec`` itself otherwise."""
    if not spec.time_trend or spec.time_origin is not None or spec.time is None or spec.time not in table.columns:
        return spec
    times = pd.to_numeric(table[spec.time], errors="coerce").to_numpy(dtype=float)
    if times.size == 0 or not np.isfinite(times).any():
        raise DataError(f"time column {spec.time!r} has no numeric times to fix the time trend's origin from")
    return spec.with_changes(time_origin=float(np.nanmax(times)))


def _needs_resolving(spec: ModelSpec, table: pd.DataFrame) -> bool:
    if spec.time_trend and spec.time_origin is None and spec.time is not None and spec.time in table.columns:
        return True
    if spec.dynamics == "transition" and not {"terms", "center"} <= set(spec.gaps) and GAP in table.columns:
        return True
    return any(
        (p in spec.categorical and spec.categorical[p].get("levels") is None)
        or (p not in spec.categorical and _is_text(table, p))
        for p in spec.predictors
    )


def _labels(table: pd.DataFrame, column: str) -> np.ndarray:
    """A categorical column's values as level labels (text; whole numbers without '.0')."""
    return category_labels(table[column]).to_numpy(dtype=object)


def _resolved_entry(spec: ModelSpec, column: str) -> Mapping[str, Any]:
    entry = spec.categorical[column]
    if entry.get("levels") is None or entry.get("reference") is None:
        raise DataError(
            f"categorical covariate {column!r} has no levels yet; they are fixed from the fitted data "
            "(use the fit's spec, or mbct_bayes.model.design.resolve(spec, table))"
        )
    return entry


def _resolve_gaps(spec: ModelSpec, table: pd.DataFrame) -> ModelSpec:
    """A transition spec with ``gaps`` complete: terms when the table's gaps are unequal, centred at their median.

    What the spec already states is kept (a fitted spec has both, so new rows change nothing).
    """
    if spec.dynamics != "transition" or {"terms", "center"} <= set(spec.gaps) or GAP not in table.columns:
        return spec
    gap = table[GAP].to_numpy(dtype=float)
    if gap.size == 0 or not np.isfinite(gap).all():
        return spec
    gaps = {"terms": bool(gap.max() > gap.min()), "center": float(np.median(gap)), **spec.gaps}
    gap_terms = ("gap", *(f"gap:{column}" for column in spec.previous_columns))
    stray = [name for name in spec.priors if name in gap_terms]
    if stray and not gaps["terms"]:
        raise DataError(
            f"[priors] names {stray[0]!r}, but the fitted gaps are all equal ({_fmt_gap(gap[0])}), so the model has no "
            "gap terms; remove that prior or set [gaps] terms = true"
        )
    return spec.with_changes(gaps=gaps)


def _fmt_gap(value: float) -> str:
    return f"{value:g}"


def _state_indicators(spec: ModelSpec, previous: Any, n: int) -> np.ndarray:
    """(n, K-1) 0/1 columns ``previous[<level>]`` of the previous states (all 0: the lowest state)."""
    levels = spec.state_levels
    if previous is None:
        return np.zeros((n, len(levels) - 1))
    codes = level_codes(pd.Series(np.asarray(previous, dtype=object), name=PREVIOUS), levels, source="rows")
    return (codes[:, None] == np.arange(1, len(levels))[None, :]).astype(float)


def _check_known(column: str, labels: np.ndarray, levels: tuple[str, ...]) -> None:
    known = set(levels)
    unseen = [v for v in dict.fromkeys(labels) if v not in known]
    if unseen:
        raise DataError(
            f"column {column!r}: level {unseen[0]!r} was not in the fitted data (known levels: "
            f"{', '.join(levels)}); use one of them, or refit with data that include it"
        )


def _indicators(spec: ModelSpec, column: str, labels: Any, n: int) -> np.ndarray:
    """(n, k) treatment-coded 0/1 columns of one categorical (all 0: the reference level)."""
    dummies = dummy_levels(spec, column)
    if labels is None:
        return np.zeros((n, len(dummies)))
    labels = np.asarray(labels, dtype=object)
    _check_known(column, labels, tuple(spec.categorical[column]["levels"]))
    return (labels[:, None] == np.array(dummies, dtype=object)[None, :]).astype(float)
