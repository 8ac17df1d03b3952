"""Panel data for transition models: each wave of a site modelled given the site's previous wave.

A panel is a validated observations table with a ``time`` column (one row per site and time;
:func:`mbct_bayes.schema.validate_observations`). A transition model (``dynamics =
"transition"``) models every wave of a site but its first; the first wave supplies the previous
state only. :func:`lagged_rows` turns the panel into those modelled rows:

* the current wave's outcome (and trials), site, region, time and every other column;
* the predictors (E, C, F, numeric and categorical covariates) taken at the site's previous wave
  (``predictors_at = "previous"``, the default: this year's readiness drives next year's state)
  or at the current wave (``predictors_at = "current"``);
* ``previous``: the site's state at its previous wave, in the outcome's own values (0/1 for
  bernoulli, the level labels for ordinal);
* ``gap``: the time since the previous wave (``time`` minus the previous wave's ``time``).

The design matrix (:mod:`mbct_bayes.model.design`) turns ``previous`` into one 0/1 column per
state other than the lowest, ``previous[<level>]`` (bernoulli ``previous[1]``; ordinal with the
default levels ``previous[partial]``, ``previous[embedded]``), after the spec's predictors. With
equal gaps the model is then a logistic (or cumulative-logit) GLMM of the lagged rows with the
previous state as a predictor, plus site (and region) effects.

Unequal gaps. Over a longer gap a site has more time to move, so its previous state should tell
less about its current one. When the fitted gaps are not all equal the model gets gap terms
(``spec.gaps = {"terms": true, "center": <median gap>}``, fixed at fit time by
:func:`mbct_bayes.model.design.resolve`): a column ``gap`` = gap minus the median fitted gap (the
drift of a site at the lowest state over a longer gap) and its products with the previous
state, ``gap:previous[<level>]`` (how each state's pull changes per unit of extra gap; a negative
value means the previous state matters less after a longer gap). The ``previous[<level>]``
coefficients are then the effects at the median gap. This is a first-order (linear in the gap)
approximation of a continuous-time process; it is exact for neither, and forecasts at gaps far
outside the fitted ones extrapolate it. With equal fitted gaps the model has no gap terms and a
forecast at another gap assumes the fitted one. ``[gaps] terms = false`` or ``true`` in the spec
overrides the choice; ``center`` sets the reference gap.

The first wave. The model conditions on each site's first state and assumes the site effect is
independent of it; a panel that starts mid-journey (sites already embedded at the first wave
because their effects are high) breaks that, and the model then overstates ``previous[...]`` and
understates ``sigma_site`` (the initial-conditions problem; Wooldridge 2005, J. Applied
Econometrics 20:39-54, proposes the first state as a covariate; not built in).

State-specific slopes (e.g. E, C, F acting differently on embedding and on sustainment): name
``previous`` in an interaction, ``interactions = [["F", "previous"]]``, for columns
``F:previous[<level>]`` (the extra slope of F in rows whose previous state is that level).

Rows built for forecasting (hypothetical next waves) need the predictor columns, ``previous``
and ``gap``; :func:`mbct_bayes.model.design.design_matrix` reads them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.schema import DataWarning
from mbct_bayes.spec import TRANSITION_COLUMNS, ModelSpec

#: The column of each modelled row holding the site's state at its previous wave.
PREVIOUS = "previous"
#: The column of each modelled row holding the time since the site's previous wave.
GAP = "gap"


def is_lagged(table: pd.DataFrame) -> bool:
    """The table already holds a transition model's rows (it has the ``previous`` and ``gap`` columns)."""
    return all(column in table.columns for column in TRANSITION_COLUMNS)


def lagged_rows(table: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows a transition model fits: every wave of a site but its first, with its previous state.

    Parameters
    ----------
    table
        A validated panel (:func:`mbct_bayes.schema.validate_observations` with a spec that has
        ``time``): one row per site and time, time numeric.
    spec
        A spec with ``dynamics = "transition"``; ``predictors_at`` says which wave's predictors
        a row carries.

    Returns
    -------
    DataFrame
        One row per modelled wave, in the order of ``table`` (index 0..m-1): every column of the
        current wave, the predictors replaced by the previous wave's values when
        ``predictors_at = "previous"``, plus ``previous`` (the previous wave's outcome value) and
        ``gap`` (float: time since the previous wave). A site with a single wave adds no row
        (a :class:`~mbct_bayes.schema.DataWarning` says how many).

    Raises
    ------
    DataError
        Not a transition spec, a panel table that already has a ``previous`` or ``gap`` column,
        or no site with two waves.
    """
    if spec.dynamics != "transition" or spec.time is None:
        raise DataError(
            "lagged_rows needs a spec with dynamics = \"transition\" and a time column; set both in the spec"
        )
    clash = [c for c in TRANSITION_COLUMNS if c in table.columns]
    if clash:
        raise DataError(
            f"the panel has a column {clash[0]!r}, which a transition model makes itself (the previous wave's "
            "state and the time since it); rename that column"
        )
    group, time = spec.group, spec.time
    order = np.lexsort((table[time].to_numpy(dtype=float), table[group].astype(str).to_numpy()))
    ordered = table.iloc[order]
    site = ordered[group].astype(str).to_numpy()
    has_previous = np.r_[False, site[1:] == site[:-1]]  # a row whose site has an earlier wave
    current = ordered.iloc[np.flatnonzero(has_previous)]
    before = ordered.iloc[np.flatnonzero(has_previous) - 1]
    n_sites = len(set(site))
    single = n_sites - len(set(site[has_previous]))
    if len(current) == 0:
        raise DataError(
            f"no site has two waves in the panel ({n_sites} sites, one wave each); a transition model needs "
            "each site's state at a previous wave, so give sites at least two times"
        )
    if single:
        warnings.warn(
            DataWarning(
                f"{single} of {n_sites} sites have a single wave and add no transition (a site's first wave "
                "supplies the previous state only)"
            ),
            stacklevel=2,
        )
    out = current.copy()
    if spec.predictors_at == "previous":
        for p in spec.predictors:
            out[p] = before[p].to_numpy()
    out[PREVIOUS] = before[spec.outcome].to_numpy()
    out[GAP] = current[time].to_numpy(dtype=float) - before[time].to_numpy(dtype=float)
    # back to the panel's own row order
    out = out.iloc[np.argsort(order[has_previous], kind="stable")]
    return out.reset_index(drop=True)


def modelled_rows(table: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The rows a model fits: :func:`lagged_rows` of a transition model's panel, else ``table`` itself.

    A table that already holds lagged rows (:func:`is_lagged`: a fit's stored data, a
    cross-validation fold, forecast rows) is returned as it is.
    """
    if spec.dynamics != "transition" or is_lagged(table):
        return table
    return lagged_rows(table, spec)
