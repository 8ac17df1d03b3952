"""Planning new sites: what-if changes, levers, targets and ranking, on the posterior draws.

Every function here answers a service lead's question with the fitted posterior:

* :func:`what_if` — how much would P(embedded) change if E, C or F changed by a given amount?
* :func:`levers` — which of E, C, F buys most for one scale point (or one SD)?
* :func:`target` — what is the smallest score on one lever that makes P(embedded) ≥ ``p`` with
  posterior probability ≥ ``prob``?
* :func:`rank` — which of several candidate services is most likely to embed MBCT?

For a count model (``family = "poisson"`` or ``"negbinomial"``) the planned quantity is not
P(embedded) but the expected count per ``rate_per`` units of exposure of the new site (e.g.
access per 100,000 population; :meth:`mbct_bayes.families.Family.planned_quantity`): the
``p_*`` and ``delta_*`` columns then hold rates and rate differences, a ``quantity`` column says
so, and :func:`target`'s ``p`` is the rate to reach. A site's rate needs no exposure of its own.

How the numbers are made
------------------------
All work is numpy on the fit's draws (chains stacked, shape ``(S, ...)``), vectorised over draws
and sites; nothing loops per draw. The linear predictor splits into a fixed part
(:func:`~mbct_bayes.model.predictor.fixed_part`: intercept and coefficients times the centred design
matrix) and a group part (:func:`~mbct_bayes.planning.predict.group_part`: site and region effects). A
change recomputes the design matrix of the changed table with
:func:`~mbct_bayes.model.design.design_matrix`, so interactions in the spec follow automatically.
Categorical covariates (:mod:`mbct_bayes.model.design`) stay as each site has them: they are not
levers.

``kind`` says which site effect is used (see :mod:`mbct_bayes.planning.predict`): ``"new_site"`` (the
default: one effect per site drawn from Normal(0, sigma_site) per posterior draw — what to
expect of one new service), ``"typical_site"`` (site effect 0: the median service of its region
with these scores, :func:`~mbct_bayes.planning.predict.typical_part`) or ``"known_site"`` (a fitted
site's own effect). ``region_mode`` places a site whose region is empty (region models only):
``"mixture"`` (default) in one of the fitted regions in proportion to their sites, ``"new"`` in
a region not in the data. Before and after a change use the
*same* effect draws (common random numbers from one ``np.random.default_rng(seed)``), so ΔP
carries no Monte Carlo noise from the site effects; the same ``seed`` gives the same numbers.

Time-trend fits
---------------
With ``time_trend = true`` each site is planned at the time in the table's time column, or, when
the table has none, at the latest fitted time (the trend's origin ``t0``; the validated table
carries that time, :func:`mbct_bayes.model.design.with_time`, and :func:`what_if` shows it in a
column named after the time column). The population trend and, for known and new sites, the
site's slope enter as in :mod:`mbct_bayes.planning.predict`; time itself is not a lever.

Changes and the scale
---------------------
A change that takes a site past the end of its predictor's scale is clipped to the scale, and
the row says so (``clipped`` and ``clipped_predictors``). A change larger than the whole width of
the scale cannot be meant in scale points (``F=+10`` on a 1-5 scale) and is a
:class:`~mbct_bayes.errors.DataError`, as is a change that is not a finite number or names
something that is not a predictor.

Latent-measurement fits
-----------------------
A latent fit's coefficients are per point of a site's *true* score, and a new site's E, C, F are
measurements: give them as respondent scores (``responses=``) or as site means with an
``n_respondents`` column (see :mod:`mbct_bayes.planning.measured`). The true scores are drawn per
posterior draw given the measurements, from the same generator as the site effects (so before
and after share them too), and every change acts on those draws: what-if and levers move them,
target solves for the lever's true score, ``step="sd"`` is one SD of the fitted population of
true scores. ``scores_are_true=True`` takes the table's scores as true. The outputs then carry
a ``scores`` column saying which.

Records
-------
:func:`records` turns each table into the list of JSON records the CLI prints, with exactly the
keys in :data:`RECORD_KEYS`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.model.design import design_matrix, numeric_predictors
from mbct_bayes.planning.measured import MeasuredSites, conditional_true_scores, prepare_sites, scores_label
from mbct_bayes.planning.predict import (
    KINDS,
    QUANTILES,
    centred_scores,
    check_region_mode,
    fixed_part,
    fixed_part_centred,
    group_part,
    p_embedded,
    quantity_label,
    typical_part,
)

if TYPE_CHECKING:  # model.fit imports planning (Fit.predict)
    from mbct_bayes.model.fit import Fit

#: Keys of the JSON records that :func:`records` (and ``mbct-bayes plan --json``) gives per mode.
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "what_if": (
        "site", "p_before_mean", "p_after_mean", "delta_mean", "delta_q05", "delta_q95", "clipped",
    ),
    "levers": (
        "site", "lever", "step", "delta_mean", "delta_q05", "delta_q95", "p_positive", "rank",
    ),
    "target": ("site", "lever", "current", "target_value", "p_at_target_mean", "reachable"),
    "rank": ("site", "rank", "p_mean", "p_q05", "p_q95", "p_best"),
}
SITE = "site"  # name of the id column in every output table
#: Draws × sites per block in the target search (bounds its memory to a few hundred MB).
CHUNK_ELEMENTS = 1_000_000
#: A latent fit's measured site counts as clipped when the change was clipped in at least this
#: share of the draws of its true score (some tail draw nearly always reaches the scale's end).
CLIPPED_SHARE = 0.05


# -- input checks ---------------------------------------------------------------------------------
def _as_frame(sites: Any, source: str) -> pd.DataFrame:
    """A DataFrame from a table, one site as a dict/Series, or a list of dicts."""
    if isinstance(sites, pd.DataFrame):
        return sites
    if isinstance(sites, pd.Series):
        return sites.to_frame().T.reset_index(drop=True)
    if isinstance(sites, Mapping):
        return pd.DataFrame([dict(sites)])
    if isinstance(sites, Sequence) and not isinstance(sites, str) and sites and all(
        isinstance(s, Mapping) for s in sites
    ):
        return pd.DataFrame([dict(s) for s in sites])
    raise DataError(
        f"{source}: expected a table of sites (DataFrame, a dict for one site, or a list of "
        f"dicts), got {type(sites).__name__}"
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DataError(f"kind {kind!r} is not one of {', '.join(KINDS)}")


def _prepare(
    fit: Fit, sites: Any, kind: str, source: str, *, responses: Any = None, scores_are_true: bool = False
) -> tuple[pd.DataFrame, MeasuredSites | None]:
    """Validate the sites table (predictors on the scale, known regions), require unique ids.

    Returns the table and, for a latent fit's new or typical sites, what was measured there
    (see :func:`mbct_bayes.planning.measured.prepare_sites`).
    """
    _check_kind(kind)
    if kind == "known_site" and fit.spec.measurement == "latent":
        # predict() uses a known site's latent (true) scores; planning changes the table's scores,
        # and the two would disagree on P before any change
        raise DataError(
            "planning with kind known_site is not available for a latent-measurement fit (a known "
            "site's scores are latent there); plan with kind new_site or typical_site and the "
            "site's measured scores (respondent scores, or an n_respondents column)"
        )
    table, measured = prepare_sites(
        fit.posterior, _as_frame(sites, source), kind, responses=responses, scores_are_true=scores_are_true, source=source
    )
    group = fit.spec.group
    dup = table[group].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(dup)[:5])
        first = table[group][dup].iloc[0]
        raise DataError(
            f"{source}: column {group!r} rows {rows}: site {first!r} appears more than once; "
            "planning takes one row per site, so give each candidate its own id"
        )
    return table, measured


def _suggest(name: str, candidates: Sequence[str]) -> str:
    lower = {str(c).lower(): str(c) for c in candidates}
    close = difflib.get_close_matches(str(name).lower(), list(lower), n=1, cutoff=0.6)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def _check_lever(fit: Fit, name: Any, what: str = "lever") -> str:
    predictors = numeric_predictors(fit.spec)  # a categorical covariate is not a lever
    if isinstance(name, str) and name in fit.spec.categorical:
        raise DataError(
            f"{what} {name!r} is a categorical covariate, which an intervention does not move; "
            f"choose one of {', '.join(predictors)}"
        )
    if name not in predictors:
        hint = _suggest(str(name), predictors)
        if isinstance(name, str) and ":" in name:
            hint = " (an interaction follows its predictors; change one of them instead)"
        raise DataError(
            f"{what} {name!r} is not a predictor of this model ({', '.join(predictors)}){hint}"
        )
    return name


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


def _check_probability(value: Any, name: str) -> float:
    if not _is_number(value) or not 0.0 < float(value) < 1.0:
        raise DataError(f"{name} must be a probability strictly between 0 and 1, got {value!r}")
    return float(value)


def _check_change(fit: Fit, change: Any) -> dict[str, float]:
    if not isinstance(change, Mapping) or not change:
        raise DataError(
            f"change must name at least one predictor and its change in scale points, e.g. "
            f"{{'F': 1.0}}; got {change!r}"
        )
    out: dict[str, float] = {}
    for name, value in change.items():
        _check_lever(fit, name, what="change")
        if not _is_number(value):
            raise DataError(
                f"change {name}={value!r} is not a finite number; give the change in scale "
                f"points, e.g. {name}=+1"
            )
        bounds = fit.spec.scale.get(name)
        if bounds is not None and abs(float(value)) > bounds[1] - bounds[0]:
            raise DataError(
                f"change {name}={float(value):+g} leaves the scale {bounds[0]:g}-{bounds[1]:g} "
                f"entirely (larger than its width {bounds[1] - bounds[0]:g}); give the change "
                f"in scale points, e.g. {name}=+1"
            )
        out[name] = float(value)
    return out


def _scale_of(fit: Fit, lever: str) -> tuple[float, float]:
    bounds = fit.spec.scale.get(lever)
    if bounds is None:
        raise DataError(
            f"lever {lever!r} has no scale in the spec, so there is no range to search; "
            f"set scale.{lever} = [min, max] in the model spec"
        )
    return float(bounds[0]), float(bounds[1])


# -- shared kernels -----------------------------------------------------------------------------
def _apply_change(
    fit: Fit, table: pd.DataFrame, change: Mapping[str, float]
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The table after ``change`` clipped to each scale; clipped flag and names per row."""
    after = table.copy()
    clipped = np.zeros(len(table), dtype=bool)
    names: list[list[str]] = [[] for _ in range(len(table))]
    for name, delta in change.items():
        moved = table[name].to_numpy(dtype=float) + delta
        bounds = fit.spec.scale.get(name)
        if bounds is not None:
            out_of_scale = (moved < bounds[0]) | (moved > bounds[1])
            moved = np.clip(moved, bounds[0], bounds[1])
            clipped |= out_of_scale
            for i in np.flatnonzero(out_of_scale):
                names[i].append(name)
        after[name] = moved
    return after, clipped, [",".join(n) for n in names]


def _group_draws(
    fit: Fit,
    table: pd.DataFrame,
    kind: str,
    seed: int | None,
    measured: MeasuredSites | None = None,
    region_mode: str = "mixture",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Site + region effect draws (S, n) and, for measured sites, true-score draws (S, n, P).

    Both from one generator (effects first): the common random numbers of before and after.
    """
    rng = np.random.default_rng(seed)
    group = group_part(fit.posterior, table, kind, rng, region_mode)
    if measured is None:
        return group, None
    return group, conditional_true_scores(fit.posterior, measured, rng)[:, measured.row_site, :]



def _sites_and_draws(
    fit: Fit,
    sites: Any,
    kind: str,
    source: str,
    seed: int | None,
    *,
    responses: Any,
    scores_are_true: bool,
    region_mode: str,
) -> tuple[pd.DataFrame, MeasuredSites | None, np.ndarray, np.ndarray | None]:
    """The planning functions' common start: the validated sites, what was measured there, and
    the effect (and true-score) draws that before and after share (:func:`_prepare`, :func:`_group_draws`)."""
    check_region_mode(region_mode)
    table, measured = _prepare(fit, sites, kind, source, responses=responses, scores_are_true=scores_are_true)
    group, truth = _group_draws(fit, table, kind, seed, measured, region_mode)
    return table, measured, group, truth

def _fixed(fit: Fit, table: pd.DataFrame, truth: np.ndarray | None) -> np.ndarray:
    """Intercept + coefficients per draw (S, n): from the true-score draws when given, else the table."""
    if truth is None:
        return fixed_part(fit.draws, design_matrix(table, fit.spec))
    return fixed_part_centred(fit.draws, fit.spec, centred_scores(fit.posterior, truth))


def _p(fit: Fit, table: pd.DataFrame, group: np.ndarray, truth: np.ndarray | None = None) -> np.ndarray:
    return p_embedded(fit.posterior, _fixed(fit, table, truth) + group)


def _change_truth(fit: Fit, truth: np.ndarray | None, change: Mapping[str, float]) -> np.ndarray | None:
    """True-score draws after ``change``: each draw moved, and kept on the scale.

    A move cannot take a draw past the scale's end; a draw already beyond it (the fitted
    population is normal) stays where it is rather than being pulled back.
    """
    return None if truth is None else _moved_truth(fit, truth, change)[0]


def _moved_truth(
    fit: Fit, truth: np.ndarray, change: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`_change_truth`, with per site whether it was clipped (in at least
    ``CLIPPED_SHARE`` of the draws) and which predictors were."""
    after = truth.copy()
    clipped = np.zeros(truth.shape[1], dtype=bool)
    names: list[list[str]] = [[] for _ in range(truth.shape[1])]
    for name, delta in change.items():
        j = fit.spec.predictors.index(name)
        moved = truth[..., j] + delta
        bounds = fit.spec.scale.get(name)
        if bounds is not None:
            kept = np.clip(moved, np.minimum(bounds[0], truth[..., j]), np.maximum(bounds[1], truth[..., j]))
            hit = (kept != moved).mean(axis=0) >= CLIPPED_SHARE
            clipped |= hit
            for i in np.flatnonzero(hit):
                names[i].append(name)
            moved = kept
        after[..., j] = moved
    return after, clipped, [",".join(n) for n in names]


def _summary(x: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Mean and 5/50/95% quantiles over draws (axis 0)."""
    q = np.quantile(x, QUANTILES, axis=0)
    return {
        f"{prefix}_mean": x.mean(axis=0),
        f"{prefix}_q05": q[0],
        f"{prefix}_q50": q[1],
        f"{prefix}_q95": q[2],
    }


def _label(fit: Fit, out: pd.DataFrame, scores: str | None) -> None:
    """Add the ``scores`` column (what a latent fit's E, C, F were taken as) when there is one, and
    the ``quantity`` column when the planned quantity is not P(embedded) (a count model's rate)."""
    if scores is not None:
        out["scores"] = scores
    if not get_family(fit.spec.family).planned_is_probability:
        out["quantity"] = quantity_label(fit.spec)


def _ids(fit: Fit, table: pd.DataFrame) -> np.ndarray:
    return table[fit.spec.group].astype(str).to_numpy()


# -- what-if ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhatIfDraws:
    """Posterior draws behind :func:`what_if`.

    Attributes
    ----------
    before, after
        The validated sites table and the same table after the (clipped) change.
    p_before, p_after
        P(embedded) draws (S, n) before and after, with the same site-effect draws.
    clipped
        (n,) True where the change was clipped to the scale.
    clipped_predictors
        Per row, the comma-separated predictors that were clipped ("" for none).
    scores
        A latent fit's new sites: what their E, C, F were taken as (see
        :func:`mbct_bayes.planning.measured.scores_label`); ``None`` otherwise.
    """

    before: pd.DataFrame
    after: pd.DataFrame
    p_before: np.ndarray
    p_after: np.ndarray
    clipped: np.ndarray
    clipped_predictors: list[str]
    scores: str | None = None

    @property
    def delta(self) -> np.ndarray:
        """ΔP(embedded) draws (S, n)."""
        return self.p_after - self.p_before


def what_if_draws(
    fit: Fit, sites: Any, change: Mapping[str, float], kind: str = "new_site", *, seed: int | None = 0,
    responses: Any = None, scores_are_true: bool = False, region_mode: str = "mixture",
) -> WhatIfDraws:
    """Draws of P(embedded) before and after ``change`` (see :func:`what_if`)."""
    change = _check_change(fit, change)
    table, measured, group, truth = _sites_and_draws(
        fit, sites, kind, "sites", seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    after, clipped, clipped_names = _apply_change(fit, table, change)
    truth_after = None
    if truth is not None:  # the change acts on the true score, so clipping is judged on its draws
        truth_after, clipped, clipped_names = _moved_truth(fit, truth, change)
    return WhatIfDraws(
        before=table,
        after=after,
        p_before=_p(fit, table, group, truth),
        p_after=_p(fit, after, group, truth_after),
        clipped=clipped,
        clipped_predictors=clipped_names,
        scores=scores_label(fit.posterior, kind, measured),
    )


def what_if(
    fit: Fit,
    sites: Any,
    change: Mapping[str, float],
    kind: str = "new_site",
    *,
    seed: int | None = 0,
    responses: Any = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """The posterior of ΔP(embedded) when predictors change by given amounts.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit`.
    sites
        One row per site with the spec's predictors and site id (and region, when the model has
        regions; empty means unknown). A dict is one site.
    change
        Change per predictor in scale points, e.g. ``{"F": 1.0, "C": 0.5}``. Values past the
        scale are clipped and reported; a change wider than the whole scale is an error.
    kind
        ``"new_site"`` (default), ``"typical_site"`` or ``"known_site"``.
    seed
        Seed of the site-effect draws (before and after share them).
    responses, scores_are_true
        Latent fits only: the sites' measured scores as respondent scores, or the table's
        E, C, F taken as true (see :func:`mbct_bayes.planning.predict.predict`). Without either the
        table needs an ``n_respondents`` column. The change then acts on each posterior draw of
        the site's true score (kept on the scale; ``clipped`` then means in at least
        ``CLIPPED_SHARE`` of the draws); ``<X>_before``/``<X>_after`` show the measured score and the measured score
        moved.
    region_mode
        ``"mixture"`` (default) or ``"new"``: where a site with an empty region is (see the
        module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per site: ``site``; ``<X>_before``, ``<X>_after`` for each changed predictor;
        ``p_before_*`` and ``p_after_*`` (mean, q05, q50, q95); ``delta_mean, delta_sd,
        delta_q05, delta_q50, delta_q95``; ``p_positive`` = P(Δ > 0); ``clipped`` and
        ``clipped_predictors``; ``kind``.

    Raises
    ------
    DataError
        Unknown predictor, a change that is not a finite number or is wider than the scale, a
        bad sites table (missing predictor, value off the scale, unknown region, repeated id).
    """
    d = what_if_draws(
        fit, sites, change, kind, seed=seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    delta = d.delta
    out: dict[str, Any] = {SITE: _ids(fit, d.before)}
    time = fit.spec.time
    if fit.spec.time_trend and time is not None and time in d.before.columns:
        out[time] = d.before[time].to_numpy(dtype=float)  # the time planned for
    for name in change:
        out[f"{name}_before"] = d.before[name].to_numpy(dtype=float)
        out[f"{name}_after"] = d.after[name].to_numpy(dtype=float)
    out.update(_summary(d.p_before, "p_before"))
    out.update(_summary(d.p_after, "p_after"))
    out.update(_summary(delta, "delta"))
    out["delta_sd"] = delta.std(axis=0, ddof=1) if delta.shape[0] > 1 else np.zeros(delta.shape[1])
    out["p_positive"] = (delta > 0).mean(axis=0)
    out["clipped"] = d.clipped
    out["clipped_predictors"] = d.clipped_predictors
    out["kind"] = kind
    _label(fit, out, d.scores)
    return pd.DataFrame(out)


# -- levers -------------------------------------------------------------------------------------
def lever_steps(
    fit: Fit, step: float | str = 1.0, lever_names: Iterable[str] | None = None
) -> dict[str, float]:
    """The step per lever: scale points, or ``"sd"`` for each predictor's SD in ``fit.data``."""
    names = list(numeric_predictors(fit.spec) if lever_names is None else lever_names)
    if not names:
        raise DataError("levers: name at least one predictor")
    for name in names:
        _check_lever(fit, name)
    if isinstance(step, str):
        if step.strip().lower() != "sd":
            raise DataError(f"step must be a positive number of scale points or 'sd', got {step!r}")
        if fit.spec.measurement == "latent":
            # levers act on the true score: one SD of the fitted population of true scores
            sds = fit.draws["latent_sd"].mean(axis=0)
            return {name: float(sds[fit.spec.predictors.index(name)]) for name in names}
        steps = {}
        for name in names:
            sd = float(pd.to_numeric(fit.data[name], errors="coerce").std(ddof=1))
            if not math.isfinite(sd) or sd <= 0:
                raise DataError(
                    f"step 'sd': predictor {name!r} has no spread in the fitted data (SD {sd:g}); "
                    "give the step in scale points instead"
                )
            steps[name] = sd
        return steps
    if not _is_number(step) or float(step) <= 0:
        raise DataError(f"step must be a positive number of scale points or 'sd', got {step!r}")
    return {name: float(step) for name in names}


def levers(
    fit: Fit,
    sites: Any,
    step: float | str = 1.0,
    kind: str = "new_site",
    *,
    seed: int | None = 0,
    lever_names: Iterable[str] | None = None,
    responses: Any = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """ΔP(embedded) for one step up on each lever in turn, ranked per site.

    Parameters
    ----------
    fit
        A fitted model.
    sites
        One row per site (see :func:`what_if`).
    step
        Scale points to add to each lever (> 0), or ``"sd"``: each predictor's standard
        deviation in the fitted data (``fit.data``). Raised values are clipped to the scale.
    kind
        ``"new_site"`` (default), ``"typical_site"`` or ``"known_site"``.
    seed
        Seed of the site-effect draws, shared by every lever and by the baseline.
    lever_names
        Predictors to try; default every predictor of the spec (E, C, F).
    responses, scores_are_true
        Latent fits: see :func:`what_if` (the step acts on the true-score draws).
    region_mode
        ``"mixture"`` (default) or ``"new"`` (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Tidy, one row per site and lever, sites in input order and levers by rank: ``site,
        lever, step, current, after, delta_mean, delta_q05, delta_q50, delta_q95, p_positive,
        rank`` (1 = largest mean gain for that site), ``clipped``, ``kind``.
    """
    steps = lever_steps(fit, step, lever_names)
    table, measured, group, truth = _sites_and_draws(
        fit, sites, kind, "sites", seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    p_before = _p(fit, table, group, truth)
    ids = _ids(fit, table)
    parts = []
    for name, size in steps.items():  # one pass per lever, each vectorised over draws and sites
        after, clipped, _ = _apply_change(fit, table, {name: size})
        delta = _p(fit, after, group, _change_truth(fit, truth, {name: size})) - p_before
        parts.append(pd.DataFrame({
            SITE: ids,
            "lever": name,
            "step": size,
            "current": table[name].to_numpy(dtype=float),
            "after": after[name].to_numpy(dtype=float),
            **_summary(delta, "delta"),
            "p_positive": (delta > 0).mean(axis=0),
            "clipped": clipped,
            "_row": np.arange(len(table)),
        }))
    out = pd.concat(parts, ignore_index=True)
    out["rank"] = (
        out.groupby("_row")["delta_mean"].rank(ascending=False, method="first").astype(int)
    )
    out = out.sort_values(["_row", "rank"], kind="stable").drop(columns="_row")
    out["kind"] = kind
    _label(fit, out, scores_label(fit.posterior, kind, measured))
    columns = [
        SITE, "lever", "step", "current", "after", "delta_mean", "delta_q05", "delta_q50",
        "delta_q95", "p_positive", "rank", "clipped", "kind",
    ] + [c for c in ("scores", "quantity") if c in out]
    return out[columns].reset_index(drop=True)


# -- target -------------------------------------------------------------------------------------
def _threshold(fit: Fit, p: float) -> np.ndarray:
    """Per-draw threshold on eta (S, 1): planned quantity ≥ p ⇔ eta ≥ threshold (P(embedded): a
    logit plus the family's offset, e.g. the top cutpoint; a count model's rate: log(p / rate_per))."""
    return get_family(fit.spec.family).eta_reaching(p, fit.draws, fit.spec, fit.n_draws)


def _check_goal(fit: Fit, value: Any, name: str) -> float:
    """The quantity to reach: a probability in (0, 1), or a count model's rate > 0."""
    if get_family(fit.spec.family).planned_is_probability:
        return _check_probability(value, name)
    if not _is_number(value) or float(value) <= 0:
        raise DataError(f"{name} must be a rate > 0 ({quantity_label(fit.spec)}), got {value!r}")
    return float(value)


def _affine_in_lever(
    fit: Fit, table: pd.DataFrame, lever: str, lo: float, hi: float, group: np.ndarray, truth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``eta(x) = eta_lo + slope * (x - lo)`` per draw and site, with the other predictors fixed.

    The design matrix is affine in each single predictor (interactions are products of two
    different predictors), so two evaluations give the line exactly, interactions included.
    With true-score draws (a latent fit's measured sites) ``x`` is the lever's true score and
    the other predictors keep their draws.
    """
    at_lo, at_hi = table.copy(), table.copy()
    at_lo[lever], at_hi[lever] = lo, hi
    truth_lo = truth_hi = None
    if truth is not None:
        j = fit.spec.predictors.index(lever)
        truth_lo, truth_hi = truth.copy(), truth.copy()
        truth_lo[..., j], truth_hi[..., j] = lo, hi
    fixed_lo = _fixed(fit, at_lo, truth_lo)
    fixed_hi = _fixed(fit, at_hi, truth_hi)
    return fixed_lo + group, (fixed_hi - fixed_lo) / (hi - lo)


def smallest_reaching(
    a: np.ndarray, slope: np.ndarray, lo: float, hi: float, prob: float
) -> dict[str, np.ndarray]:
    """Smallest x in [lo, hi] with (share of draws where ``a + slope * (x - lo) ≥ 0``) ≥ prob.

    Kernel of :func:`target`, exact and vectorised over sites. For each draw the condition holds
    on a half-line: from its crossing point upward when the slope is positive, up to it when
    negative. The share of draws that pass is therefore a step function of x that can only rise
    at the crossings of positive-slope draws, so its smallest value reaching ``prob`` is ``lo`` or
    one of those crossings: sort the crossings per site, accumulate +1 (positive slope, from its
    crossing on) and -1 (negative slope, just after its crossing), and take the first that
    reaches the count. This is what a grid search refined by bisection approximates, without
    the grid's risk of stepping over a narrow window.

    Parameters
    ----------
    a, slope
        (S, n): the margin at ``x = lo`` and its slope in x, per draw and site.
    lo, hi
        The search interval (the lever's scale).
    prob
        The required share of draws, in (0, 1).

    Returns
    -------
    dict of (n,) arrays
        ``value`` (NaN when no x reaches it), ``prob_at_value``, ``best_value`` and
        ``best_prob`` (where the share is largest, and that share), ``monotone`` (every draw's
        slope has the same sign, so the share never falls as x rises).
    """
    n_draws, n_sites = a.shape
    # sites in blocks: the sort works on (block, 2S) arrays, so memory stays bounded
    block = max(1, CHUNK_ELEMENTS // max(n_draws, 1))
    if n_sites > block:
        parts = [
            smallest_reaching(a[:, i:i + block], slope[:, i:i + block], lo, hi, prob)
            for i in range(0, n_sites, block)
        ]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    need = math.ceil(prob * n_draws - 1e-9)  # whole draws that must pass
    a, slope = a.T, slope.T  # (n, S): sort along the last axis
    pos, neg = slope > 0, slope < 0
    pass_lo = a >= 0
    count_lo = pass_lo.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = lo - a / slope
    starts = pos & ~pass_lo & (cross <= hi)  # begins to pass inside (lo, hi]
    stops = neg & pass_lo & (cross < hi)  # passes at lo, stops just after its crossing
    # positive events first, so a stable sort puts them before negative ones at equal x
    keys = np.concatenate([np.where(starts, cross, np.inf), np.where(stops, cross, np.inf)], axis=1)
    steps = np.concatenate([starts.astype(np.int32), -stops.astype(np.int32)], axis=1)
    order = np.argsort(keys, axis=1, kind="stable")
    keys = np.take_along_axis(keys, order, axis=1)
    steps = np.take_along_axis(steps, order, axis=1)
    count = count_lo[:, None] + np.cumsum(steps, axis=1)
    is_start = steps == 1
    reach = is_start & (count >= need)
    first = reach.argmax(axis=1)
    rows = np.arange(a.shape[0])
    found = reach[rows, first]
    ok_lo = count_lo >= need
    value = np.where(ok_lo, lo, np.where(found, keys[rows, first], np.nan))
    # the share at the value counts every start at exactly that value (ties), no stop there
    upto = ((keys < value[:, None]) | ((keys == value[:, None]) & is_start)).sum(axis=1)
    count_at = np.where(ok_lo, count_lo, np.where(found, count[rows, np.maximum(upto - 1, 0)], 0))
    # the share is largest at lo or at a start (it only rises there); first such value
    start_counts = np.where(is_start, count, -1)
    best_idx = start_counts.argmax(axis=1)
    best_event = start_counts[rows, best_idx]
    lo_best = count_lo >= best_event
    return {
        "value": value,
        "prob_at_value": np.where(np.isnan(value), np.nan, count_at / n_draws),
        "best_value": np.where(lo_best, lo, keys[rows, best_idx]),
        "best_prob": np.maximum(count_lo, best_event) / n_draws,
        "monotone": ~(pos.any(axis=1) & neg.any(axis=1)),
    }


def target(
    fit: Fit,
    sites: Any,
    lever: str = "F",
    p: float = 0.8,
    prob: float = 0.9,
    kind: str = "new_site",
    *,
    seed: int | None = 0,
    responses: Any = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """The smallest value of one lever at which P(P(embedded) ≥ p) ≥ prob, others fixed.

    Parameters
    ----------
    fit
        A fitted model.
    sites
        One row per site (see :func:`what_if`); a dict is one site.
    lever
        The predictor to move over its whole scale (it must have one in the spec).
    p
        The P(embedded) to reach, in (0, 1); for a count model the expected rate per
        ``rate_per`` units of exposure to reach (> 0, e.g. 40 = 40 per 100,000 population).
    prob
        The posterior probability with which it must be reached, in (0, 1).
    kind
        ``"new_site"`` (default), ``"typical_site"`` or ``"known_site"``. For a new site the
        site effect is part of the uncertainty, so targets are harder to reach than for a
        typical site.
    seed
        Seed of the site-effect draws.
    responses, scores_are_true
        Latent fits: see :func:`what_if`. The target is then a value of the lever's *true*
        score, the others keep their true-score draws, ``current`` is the measured score and
        ``current_true_mean`` the posterior mean of the true one (what "already met" and
        ``prob_at_current`` use).
    region_mode
        ``"mixture"`` (default) or ``"new"`` (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per site: ``site, lever, current, target_value`` (NaN when no value on the scale
        reaches it), ``p_at_target_mean`` (posterior mean P(embedded) at the target),
        ``reachable``, ``prob_at_target``, ``prob_at_current``, ``best_value`` and
        ``best_prob`` (the smallest value where the posterior probability is highest, and that
        probability), ``monotone``, ``p``, ``prob``, ``kind`` and a plain ``message``.

    Notes
    -----
    The search is exact on the posterior draws (see :func:`smallest_reaching`): for each draw,
    P(embedded) is monotone in the lever, so each draw passes on a half-line, and the posterior
    probability is a step function of the lever. It is monotone when the lever's effect (its
    coefficient plus any interaction terms at the site's other scores) has the same sign in
    every draw. When signs differ between draws (an uncertain or interacting coefficient), the
    posterior probability can rise and fall; the target is then still the *smallest* value that
    reaches ``prob``, ``monotone`` is False, and the message says that higher values need not
    reach it. The target may lie below the current value: then the site already meets it.
    """
    p = _check_goal(fit, p, "p")
    prob = _check_probability(prob, "prob")
    lever = _check_lever(fit, lever)
    lo, hi = _scale_of(fit, lever)
    table, measured, group, truth = _sites_and_draws(
        fit, sites, kind, "sites", seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    eta_lo, slope = _affine_in_lever(fit, table, lever, lo, hi, group, truth)
    threshold = _threshold(fit, p)
    found = smallest_reaching(eta_lo - threshold, slope, lo, hi, prob)
    current = table[lever].to_numpy(dtype=float)
    # where the site stands now: its measured score, or each draw of its true score
    now = current if truth is None else truth[..., fit.spec.predictors.index(lever)]
    value = found["value"]
    reachable = ~np.isnan(value)
    at_value = np.where(reachable, value, lo)
    p_at = p_embedded(fit.posterior, eta_lo + slope * (at_value - lo)).mean(axis=0)
    prob_now = (eta_lo + slope * (now - lo) >= threshold).mean(axis=0)
    out = pd.DataFrame({
        SITE: _ids(fit, table),
        "lever": lever,
        "current": current,
        **({} if truth is None else {"current_true_mean": now.mean(axis=0)}),
        "target_value": value,
        "p_at_target_mean": np.where(reachable, p_at, np.nan),
        "reachable": reachable,
        "prob_at_target": found["prob_at_value"],
        "prob_at_current": prob_now,
        "best_value": found["best_value"],
        "best_prob": found["best_prob"],
        "monotone": found["monotone"],
        "p": p,
        "prob": prob,
        "kind": kind,
    })
    label = quantity_label(fit.spec)
    out["message"] = [_target_message(row, lo, hi, label) for row in out.itertuples(index=False)]
    _label(fit, out, scores_label(fit.posterior, kind, measured))
    return out


def _target_message(row, lo: float, hi: float, label: str = "P(embedded)") -> str:
    goal = f"{label} ≥ {row.p:g} with probability ≥ {row.prob:g}"
    true_now = getattr(row, "current_true_mean", None)
    if true_now is None:
        name, now, start = row.lever, row.current, f"{row.current:g}"
    else:  # a latent fit's measured site: the lever is its true score
        name, now = f"true {row.lever}", float(true_now)
        start = f"about {now:.2f} (measured {row.current:g})"
    where = f"{name} = {start}"
    if not row.reachable:
        text = (
            f"no {name} on the scale {lo:g}-{hi:g} gives {goal}; the highest probability "
            f"on the scale is {row.best_prob:.2f} (from {name} = {row.best_value:.2f})"
        )
    elif row.target_value <= now:
        text = (
            f"already met at {where} (probability {row.prob_at_current:.2f}); the smallest "
            f"{name} that gives {goal} is {row.target_value:.2f}"
        )
    else:
        text = f"raise {name} from {start} to {row.target_value:.2f} for {goal}"
    if not row.monotone:
        text += (
            f" (the effect of {row.lever} differs in sign between posterior draws, so the "
            f"probability is not monotone in {row.lever}: this is the smallest value that "
            "reaches it, and higher values need not)"
        )
    return text


def lever_curve(
    fit: Fit,
    sites: Any,
    lever: str = "F",
    *,
    values: Iterable[float] | None = None,
    n_grid: int = 81,
    p: float | None = None,
    kind: str = "new_site",
    seed: int | None = 0,
    responses: Any = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """P(embedded) against one lever over its scale, others fixed (for plots and checks).

    Parameters
    ----------
    fit, sites, lever, kind, seed, responses, scores_are_true, region_mode
        As for :func:`target`; each site keeps one set of effect draws along the curve.
    values
        Lever values; default ``n_grid`` evenly spaced values over the scale.
    n_grid
        Number of grid points when ``values`` is not given.
    p
        When given, adds ``prob_reach`` = P(P(embedded) ≥ p) at each value.

    Returns
    -------
    pandas.DataFrame
        Long table: ``site, lever, current, value, p_mean, p_q05, p_q50, p_q95`` (and
        ``prob_reach``).
    """
    lever = _check_lever(fit, lever)
    lo, hi = _scale_of(fit, lever)
    if values is None:
        if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 2:
            raise DataError(f"n_grid must be a whole number ≥ 2, got {n_grid!r}")
        grid = np.linspace(lo, hi, int(n_grid))
    else:
        grid = np.asarray(list(values), dtype=float)
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise DataError("values must be finite numbers on the lever's scale")
        if grid.min() < lo or grid.max() > hi:
            raise DataError(f"values must lie on the scale {lo:g}-{hi:g} of {lever}")
    if p is not None:
        p = _check_goal(fit, p, "p")
    table, _measured, group, truth = _sites_and_draws(
        fit, sites, kind, "sites", seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    eta_lo, slope = _affine_in_lever(fit, table, lever, lo, hi, group, truth)
    n_draws, n_sites = eta_lo.shape
    n_values = grid.size
    block = max(1, CHUNK_ELEMENTS // (n_draws * n_values))  # sites per block, bounds memory
    stats: list[dict[str, np.ndarray]] = []
    for i in range(0, n_sites, block):
        # (S, sites, G): draws × sites × grid in one array operation
        eta = eta_lo[:, i:i + block, None] + slope[:, i:i + block, None] * (grid - lo)
        p_draws = p_embedded(fit.posterior, eta.reshape(n_draws, -1))
        part = _summary(p_draws, "p")
        if p is not None:
            part["prob_reach"] = (p_draws >= p).mean(axis=0)
        stats.append(part)
    out = pd.DataFrame({
        SITE: np.repeat(_ids(fit, table), n_values),
        "lever": lever,
        "current": np.repeat(table[lever].to_numpy(dtype=float), n_values),
        "value": np.tile(grid, n_sites),
        **{key: np.concatenate([s[key] for s in stats]) for key in stats[0]},
    })
    return out


# -- ranking ------------------------------------------------------------------------------------
def _p_best(p: np.ndarray) -> np.ndarray:
    """Share of draws in which each column is the largest (S, n) -> (n,)."""
    return np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / p.shape[0]


def rank(
    fit: Fit,
    candidates: Any,
    kind: str = "new_site",
    *,
    seed: int | None = 0,
    responses: Any = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """Candidate sites ordered by P(embedded), with 90% intervals and P(best of the list).

    Parameters
    ----------
    fit
        A fitted model.
    candidates
        One row per candidate site (see :func:`what_if`).
    kind
        What the ranking is on: ``"new_site"`` (default, as the planning question asks: each
        candidate gets its own unknown site effect), ``"typical_site"`` or ``"known_site"``.
    seed
        Seed of the site-effect draws.
    responses, scores_are_true
        Latent fits: see :func:`what_if`; candidates are ranked on their true-score draws.
    region_mode
        ``"mixture"`` (default) or ``"new"`` (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Best first: ``site, rank, p_mean, p_q05, p_q50, p_q95, p_best``, the predictors,
        then ``typical_p_mean, typical_p_q05, typical_p_q95, typical_p_best`` and
        ``ranked_on`` (= ``kind``).

    Notes
    -----
    ``p_best`` is the share of joint posterior draws in which the candidate has the highest
    P(embedded) of the list. For new sites each candidate's own unknown site effect dominates,
    so ``p_best`` is spread thin and tells how little the scores alone settle the choice. The
    ``typical_*`` columns rank the same scores as a typical site
    (:func:`~mbct_bayes.planning.predict.typical_part`: site effect 0, the site's region kept, so they
    equal ``predict(kind="typical_site")``): how good the profile is, apart from the luck of the
    site. The order always follows ``p_mean`` of ``kind``.
    """
    table, measured, group, truth = _sites_and_draws(
        fit, candidates, kind, "candidates", seed, responses=responses, scores_are_true=scores_are_true,
        region_mode=region_mode,
    )
    fixed = _fixed(fit, table, truth)
    p = p_embedded(fit.posterior, fixed + group)
    # a fresh generator of the same seed: an unknown region gets the same draws as in ``group``
    typical_region = typical_part(fit.posterior, table, np.random.default_rng(seed), region_mode, kind=kind)
    typical = p_embedded(fit.posterior, fixed + typical_region)
    q = np.quantile(typical, (0.05, 0.95), axis=0)
    out = pd.DataFrame({
        SITE: _ids(fit, table),
        **_summary(p, "p"),
        "p_best": _p_best(p),
        **{name: table[name].to_numpy(dtype=float if name not in fit.spec.categorical else object)
           for name in fit.spec.predictors},
        "typical_p_mean": typical.mean(axis=0),
        "typical_p_q05": q[0],
        "typical_p_q95": q[1],
        "typical_p_best": _p_best(typical),
        "ranked_on": kind,
    })
    out = out.sort_values("p_mean", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(1, "rank", np.arange(1, len(out) + 1))
    _label(fit, out, scores_label(fit.posterior, kind, measured))
    return out


# -- records ------------------------------------------------------------------------------------
def records(table: pd.DataFrame, mode: str) -> list[dict[str, Any]]:
    """The rows of a planning table as JSON-ready records with the keys of :data:`RECORD_KEYS`.

    NaN becomes ``None`` (e.g. ``target_value`` when the target is unreachable).
    """
    if mode not in RECORD_KEYS:
        raise DataError(f"mode {mode!r} is not one of {', '.join(RECORD_KEYS)}")
    keys = RECORD_KEYS[mode]
    missing = [k for k in keys if k not in table.columns]
    if missing:
        raise DataError(
            f"{mode} table lacks column(s) {', '.join(missing)}; make it with planning.{mode}"
        )
    out = []
    for row in table[list(keys)].itertuples(index=False):
        rec = {}
        for key, value in zip(keys, row, strict=True):
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and math.isnan(value):
                value = None
            rec[key] = value
        out.append(rec)
    return out
