"""Posterior predictions of P(embedded) for new, typical and known sites.

Numpy kernels on the fit's posterior draws (chains stacked, shape ``(S, ...)``), vectorised over
draws and rows. The linear predictor splits into a fixed part (intercept and coefficients, which
what-if changes) and a group part (site and region effects), so before/after comparisons reuse
the very same site-effect draws.

Kinds of prediction:

``new_site``
    A service not in the data: its site effect is drawn from Normal(0, sigma_site) per posterior
    draw (one draw per distinct site id in the new table), plus its region's effect (below).
``typical_site``
    Site effect set to 0: the median service *of its region* with these scores; the region part
    is exactly the new site's (below). :func:`typical_part` is the one definition, used by
    :func:`predict`, :mod:`mbct_bayes.planning` (what-if, levers, target, rank and its
    ``typical_*`` columns) and the report.
``known_site``
    A site in the fitted data: its own fitted effect (and its region's).

Time-trend fits (``time_trend = true``): each row is at the time in its time column, and a
row without one is at the time origin ``t0``, the latest fitted time
(:func:`mbct_bayes.model.design.with_time` writes it into the outputs' time column). The fixed
part carries the population trend ``beta_time * (t - t0)`` (the ``time`` column of ``X``); the
group part adds the site's slope times ``t - t0``:

- ``known_site``: its own fitted slope ``b_site``;
- ``new_site``: a slope drawn with its intercept from the fitted bivariate normal, per
  posterior draw ``u = sigma_site z1``, ``b = sigma_slope (rho z1 + sqrt(1 - rho²) z2)``
  (``rho = corr_site_slope``), so a new site's slope goes with its intercept as in the data;
- ``typical_site``: slope 0, as its intercept is 0 — the median service's path follows the
  population trend.

A latent-measurement fit's coefficients are per point of the *true* site score, so its new and
typical sites' E, C, F are measurements (respondent scores, or site means with respondent
counts): per posterior draw their true scores are drawn given what was measured
(:mod:`mbct_bayes.planning.measured`) before the outcome; a known site uses its fitted latent scores.
Regions (models with a region effect), :func:`region_part`:

- a known region keeps its fitted effect ``u_region``;
- an empty (unknown) region depends on ``region_mode``. ``"mixture"`` (the default): the site is
  in one of the fitted regions, in proportion to their numbers of fitted sites — per posterior
  draw and per site, region ``r`` is drawn with probability ``n_sites_r / n_sites`` and its
  ``u_region`` draw is used. ``"new"``: the site is in a region not in the data, whose effect is
  drawn from Normal(0, sigma_region) per posterior draw (a wider forecast).

Draw order of one ``np.random.default_rng(seed)`` (so the same seed gives the same numbers):
first the unknown regions, one column per distinct site id among rows with an empty region, in
sorted order (``mixture``: ``rng.random((S, m))`` mapped through the cumulative site shares;
``new``: ``rng.standard_normal((S, m))``); then, for ``new_site``, the site effects
``rng.standard_normal((S, n_sites))`` in sorted id order, and with a time trend after them the
slopes' own normals ``z2``, ``rng.standard_normal((S, n_sites))`` in the same order. A typical site
therefore shares its region draws with the new site of the same seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mbct_bayes.errors import DataError
from mbct_bayes.model.build import ModelData
from mbct_bayes.model.design import design_matrix, numeric_predictors, time_offsets, with_time
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.model.predictor import (  # defined below planning; still importable from here
    _n_draws,
    fixed_part,
    fixed_part_centred,
    latent_fixed_part,
)
from mbct_bayes.model.predictor import log_likelihood as log_likelihood
from mbct_bayes.planning.measured import (
    WAYS,
    MeasuredSites,
    conditional_true_scores,
    prepare_sites,
    scores_label,
)
from mbct_bayes.planning.measured import (
    validate_new_data as validate_new_data,  # lives in measured (which reads new sites); re-exported
)
from mbct_bayes.spec import ModelSpec

if TYPE_CHECKING:  # model.fit imports this module (in Fit.predict)
    from mbct_bayes.model.fit import Fit
from mbct_bayes.families import get_family
from mbct_bayes.families.ordinal import cumulative_logit_probabilities

KINDS = ("new_site", "typical_site", "known_site")
#: How a site with an empty region is placed (see the module docstring).
REGION_MODES = ("mixture", "new")
QUANTILES = (0.05, 0.5, 0.95)


def check_region_mode(region_mode: str) -> str:
    """``region_mode`` itself, or a one-line DataError naming the choices."""
    if region_mode not in REGION_MODES:
        raise DataError(
            f"region_mode {region_mode!r} is not one of {', '.join(REGION_MODES)} (mixture: an "
            "unknown region is one of the fitted regions, in proportion to their sites; new: a "
            "region not in the data)"
        )
    return region_mode


def group_part(
    posterior: Posterior, table: pd.DataFrame, kind: str, rng: np.random.Generator, region_mode: str = "mixture"
) -> np.ndarray:
    """Site plus region effects per draw for each row of ``table``: shape (S, n).

    See the module docstring for what each ``kind`` and ``region_mode`` draws, and in which
    order.
    """
    if kind not in KINDS:
        raise DataError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    check_region_mode(region_mode)
    spec, md, draws = posterior.spec, posterior.model_data, posterior.draws
    n_draws = _n_draws(draws)
    if kind == "typical_site":
        return typical_part(posterior, table, rng, region_mode)
    if spec.group not in table.columns:
        raise DataError(f"{kind} prediction needs the site column {spec.group!r}; add it")
    sites = table[spec.group].astype(str).to_numpy()
    if kind == "known_site":
        lookup = {s: i for i, s in enumerate(md.site_labels)}
        unknown = [s for s in dict.fromkeys(sites) if s not in lookup]
        if unknown:
            raise DataError(
                f"known_site prediction: site {unknown[0]!r} is not in the fitted data"
                f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; use kind new_site for new services"
            )
        idx = np.array([lookup[s] for s in sites], dtype=np.int64)
        effect = draws["u_site"][:, idx]
        since_origin = time_offsets(spec, table)
        if since_origin is not None:
            effect = effect + draws["b_site"][:, idx] * since_origin
        if md.region_idx is not None:
            effect = effect + draws["u_region"][:, _fitted_site_regions(md)[idx]]
        return effect
    # new_site: the region part first (the draws a typical site shares), then one fresh site
    # effect per distinct site id, shared by that site's rows.
    region = region_part(posterior, table, rng, region_mode)
    labels, inverse = np.unique(sites, return_inverse=True)
    z = rng.standard_normal((n_draws, len(labels)))
    effect = region + (z * draws["sigma_site"][:, None])[:, inverse]
    since_origin = time_offsets(spec, table)
    if since_origin is not None:
        effect = effect + new_site_slopes(draws, z, rng)[:, inverse] * since_origin
    return effect


def new_site_slopes(draws: Any, z_site: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slopes (S, m) of new sites whose intercepts are ``sigma_site * z_site`` (time-trend fits).

    Per posterior draw, the slope given the intercept's standard normal ``z_site`` (S, m):
    ``sigma_slope (rho z_site + sqrt(1 - rho²) z2)`` with ``rho = corr_site_slope`` and fresh
    ``z2 = rng.standard_normal((S, m))``: the pair is a draw from the fitted bivariate normal.
    """
    rho = draws["corr_site_slope"][:, None]
    z2 = rng.standard_normal(z_site.shape)
    return draws["sigma_slope"][:, None] * (rho * z_site + np.sqrt(np.clip(1.0 - rho**2, 0.0, None)) * z2)


def _fitted_site_regions(md: ModelData) -> np.ndarray:
    """Region index of each fitted site (sites nest in regions)."""
    if md.region_idx is None:
        raise ValueError("the model has no regions")
    site_region = np.zeros(len(md.site_labels), dtype=np.int64)
    site_region[md.site_idx] = md.region_idx
    return site_region


def region_site_shares(md: ModelData) -> np.ndarray:
    """Share of the fitted sites in each region, shape (R,): the unknown-region mixture weights.

    Counts sites with fitted rows only (a cross-validation fold's held-out sites do not count).
    """
    if md.region_labels is None:
        raise ValueError("the model has no regions")
    fitted = np.unique(md.site_idx)
    counts = np.bincount(_fitted_site_regions(md)[fitted], minlength=len(md.region_labels))
    return counts / counts.sum()


def _region_labels(spec: ModelSpec, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's region label and whether it is missing (no column, NaN or blank)."""
    if spec.region in table.columns:
        regions = table[spec.region]
        missing = regions.isna().to_numpy() | (regions.astype(str).str.strip() == "").to_numpy()
        return regions.astype(str).to_numpy(), missing
    return np.full(len(table), "", dtype=object), np.ones(len(table), dtype=bool)


def region_part(
    posterior: Posterior, table: pd.DataFrame, rng: np.random.Generator, region_mode: str = "mixture"
) -> np.ndarray:
    """Region effect per draw for each row of ``table``, shape (S, n); zeros without regions.

    A known region keeps its fitted effect; an empty one is placed by ``region_mode`` (module
    docstring), one draw per posterior draw and distinct site id (each row is its own site when
    the table has no site column).
    """
    check_region_mode(region_mode)
    md, draws = posterior.model_data, posterior.draws
    effect = np.zeros((_n_draws(draws), len(table)))
    if md.region_labels is None:
        return effect
    regions, missing = _region_labels(posterior.spec, table)
    known = ~missing
    if known.any():
        lookup = {r: i for i, r in enumerate(md.region_labels)}
        effect[:, known] = draws["u_region"][:, [lookup[r] for r in regions[known]]]
    if missing.any():
        group = posterior.spec.group
        sites = (
            table[group].astype(str).to_numpy() if group in table.columns
            else np.array([f"row {i}" for i in range(len(table))], dtype=object)
        )
        effect[:, missing] = _unknown_region_draws(posterior, sites[missing], rng, region_mode)
    return effect


def _unknown_region_draws(
    posterior: Posterior, sites: np.ndarray, rng: np.random.Generator, region_mode: str
) -> np.ndarray:
    """Region effects (S, len(sites)) of sites whose region is unknown, one column per site id."""
    md, draws = posterior.model_data, posterior.draws
    n_draws = _n_draws(draws)
    labels, inverse = np.unique(sites, return_inverse=True)
    if region_mode == "new":
        # a region not in the data: a fresh draw from the population of regions
        z = rng.standard_normal((n_draws, len(labels)))
        return (z * draws["sigma_region"][:, None])[:, inverse]
    # one of the fitted regions, in proportion to their sites, drawn anew per posterior draw
    cumulative = np.cumsum(region_site_shares(md))
    u = rng.random((n_draws, len(labels))) * cumulative[-1]
    which = np.minimum(np.searchsorted(cumulative, u, side="right"), cumulative.size - 1)
    per_site = np.take_along_axis(draws["u_region"], which, axis=1)
    return per_site[:, inverse]


def typical_part(
    posterior: Posterior,
    table: pd.DataFrame,
    rng: np.random.Generator,
    region_mode: str = "mixture",
    *,
    kind: str = "typical_site",
) -> np.ndarray:
    """The group part of a *typical site*, shape (S, n): site effect 0, its region's effect.

    The one definition of "typical" (used by predict, planning, rank and the report): the median
    service of its region with these scores. The region part is the new site's
    (:func:`region_part`): a known region's fitted effect; an unknown region per
    ``region_mode`` — with ``"mixture"`` the typical service of a fitted region drawn in
    proportion to its sites (the region is as uncertain for a typical site as for a new one;
    setting it to 0 would call a region that may not resemble any fitted region typical), with
    ``"new"`` of a region not in the data. With ``kind="known_site"`` (``rank``'s ``typical_*``
    columns of fitted sites) each site keeps the region it was fitted in.
    """
    if kind == "known_site" and posterior.model_data.region_labels is not None:
        md, group = posterior.model_data, posterior.spec.group
        lookup = {s: i for i, s in enumerate(md.site_labels)}
        idx = np.array([lookup[s] for s in table[group].astype(str)], dtype=np.int64)
        return posterior.draws["u_region"][:, _fitted_site_regions(md)[idx]]
    return region_part(posterior, table, rng, region_mode)


def centred_scores(posterior: Posterior, scores: np.ndarray) -> np.ndarray:
    """Scores on the scale (..., numeric predictors) minus the spec's centring values."""
    return scores - np.array([posterior.spec.center[p] for p in numeric_predictors(posterior.spec)])


def eta_draws(
    posterior: Posterior,
    table: pd.DataFrame,
    kind: str = "new_site",
    *,
    seed: int = 0,
    measured: MeasuredSites | None = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> np.ndarray:
    """Linear predictor draws (S, n) for validated rows of ``table``.

    For a latent-measurement fit, ``kind="known_site"`` uses the sites' latent scores in place
    of the table's E, C, F; new and typical sites need ``measured`` (from
    :func:`mbct_bayes.planning.measured.prepare_sites`): their true scores are drawn per posterior draw
    given what was measured, after the site effects and from the same generator. With
    ``scores_are_true`` the table's scores go into the coefficients as they are.
    """
    return eta_and_true_scores(
        posterior, table, kind, seed=seed, measured=measured, scores_are_true=scores_are_true, region_mode=region_mode
    )[0]


def eta_and_true_scores(
    posterior: Posterior,
    table: pd.DataFrame,
    kind: str = "new_site",
    *,
    seed: int = 0,
    measured: MeasuredSites | None = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`eta_draws` and the true-score draws (S, n, predictors) it used (``None`` if none)."""
    rng = np.random.default_rng(seed)
    effects = group_part(posterior, table, kind, rng, region_mode)
    if kind == "known_site" and posterior.spec.measurement == "latent":
        lookup = {s: i for i, s in enumerate(posterior.model_data.site_labels)}
        site_idx = np.array([lookup[s] for s in table[posterior.spec.group].astype(str)], dtype=np.int64)
        return latent_fixed_part(posterior, site_idx) + effects, None
    if measured is not None:
        truth = conditional_true_scores(posterior, measured, rng)[:, measured.row_site, :]
        return fixed_part_centred(posterior.draws, posterior.spec, centred_scores(posterior, truth)) + effects, truth
    if posterior.spec.measurement == "latent" and not scores_are_true:
        raise DataError(f"{kind} prediction from a latent-measurement fit needs measured scores: {WAYS}")
    return fixed_part(posterior.draws, design_matrix(table, posterior.spec)) + effects, None


def p_embedded(posterior: Posterior, eta: np.ndarray) -> np.ndarray:
    """The planned quantity from linear-predictor draws of new rows (no offset), per draw and row.

    P(embedded) for the event families (logistic, or the top level for ordinal); a count family's
    expected rate per ``spec.rate_per`` units of exposure
    (:meth:`~mbct_bayes.families.Family.planned_quantity`; its words: :func:`quantity_label`).
    """
    return get_family(posterior.spec.family).planned_quantity(eta, posterior.draws, posterior.spec)


def quantity_label(spec: ModelSpec) -> str:
    """What :func:`p_embedded` gives, in words: ``"P(embedded)"`` or ``"expected access per 100,000 population"``."""
    return get_family(spec.family).planned_label(spec)


#: Cumulative-logit level probabilities (S, n, K) from cutpoints (S, K-1) and eta (S, n).
level_probabilities = cumulative_logit_probabilities


def summarise_draws(p: np.ndarray, prefix: str = "p") -> pd.DataFrame:
    """Mean, SD and 5/50/95% quantiles over draws (axis 0) as a DataFrame, one row per column."""
    q = np.quantile(p, QUANTILES, axis=0)
    return pd.DataFrame({
        f"{prefix}_mean": p.mean(axis=0),
        f"{prefix}_sd": p.std(axis=0, ddof=1) if p.shape[0] > 1 else np.zeros(p.shape[1]),
        f"{prefix}_q05": q[0],
        f"{prefix}_q50": q[1],
        f"{prefix}_q95": q[2],
    })


def predict(
    fit: Fit,
    new: pd.DataFrame,
    kind: str = "new_site",
    *,
    seed: int = 0,
    responses: pd.DataFrame | None = None,
    scores_are_true: bool = False,
    region_mode: str = "mixture",
) -> pd.DataFrame:
    """Posterior predictive P(embedded) for each row of ``new``.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit`.
    new
        Rows with the spec's predictors (and the site column for ``known_site`` or to share a
        new site's effect across its rows; the region column when regions were fitted).
    kind
        ``"new_site"``, ``"typical_site"`` or ``"known_site"`` (see the module docstring).
    seed
        Seed for the new-site effect (and true-score) draws; the same seed gives the same numbers.
    responses
        Latent fits: respondent-level scores of the new sites (then ``new`` names the sites and
        their regions; E, C, F become the respondents' means). See :mod:`mbct_bayes.planning.measured`.
    scores_are_true
        Latent fits: take ``new``'s E, C, F as true site scores (a hypothetical profile).
        Seed for the new-site effect draws; the same seed gives the same numbers.
    region_mode
        Where a site with an empty region is (region models only): ``"mixture"`` (default) one
        of the fitted regions in proportion to their sites, ``"new"`` a region not in the data.
        See the module docstring.

    Returns
    -------
    pandas.DataFrame
        The input columns (a time-trend fit's time column added at the latest fitted time when
        ``new`` has none) plus ``p_mean, p_sd, p_q05, p_q50, p_q95`` for P(embedded) (the top
        level for ordinal models; for a count model the expected count per ``rate_per`` units of
        exposure, with a ``quantity`` column naming it, e.g. "expected access per 100,000
        population": the new site's exposure is ``rate_per``, so none is needed in ``new``) and, for ordinal models, ``p_<level>`` means. A latent fit's
        new and typical sites add ``scores`` (what the E, C, F are: measured, and from what, or
        taken as true) and, when measured, ``<X>_true_mean`` (posterior mean of each true score).

    Notes
    -----
    A latent fit's coefficients are per point of the true site score. A new site's measured
    scores (means of a few respondents) are noisy, so per posterior draw its true scores are
    drawn from their distribution given the measurements (:mod:`mbct_bayes.planning.measured`) before
    the outcome; site scores without respondent counts are refused unless ``scores_are_true``.
    """
    posterior = fit.posterior
    if kind not in KINDS:
        raise DataError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    check_region_mode(region_mode)
    table, measured = prepare_sites(posterior, new, kind, responses=responses, scores_are_true=scores_are_true)
    eta, truth = eta_and_true_scores(
        posterior, table, kind, seed=seed, measured=measured, scores_are_true=scores_are_true, region_mode=region_mode
    )
    p = p_embedded(posterior, eta)
    out = with_time(posterior.spec, (table if responses is not None else new).reset_index(drop=True).copy())
    out = pd.concat([out, summarise_draws(p)], axis=1)
    if posterior.spec.levels is not None:  # named levels: report each level's probability
        probs = get_family(posterior.spec.family).level_probabilities(eta, posterior.draws)
        for k, level in enumerate(posterior.spec.levels):
            out[f"p_{level}"] = probs[..., k].mean(axis=0)
    label = scores_label(posterior, kind, measured)
    if label is not None:
        out["scores"] = label
    if not get_family(posterior.spec.family).planned_is_probability:
        out["quantity"] = quantity_label(posterior.spec)  # the p_* columns are rates, say so
    if truth is not None:
        for j, name in enumerate(posterior.spec.predictors):
            out[f"{name}_true_mean"] = truth[..., j].mean(axis=0)
    return out


def check_lever(spec: ModelSpec, lever: str) -> None:
    """A one-line DataError unless ``lever`` is a numeric predictor (a categorical covariate is no lever)."""
    levers = numeric_predictors(spec)
    if lever in spec.categorical:
        raise DataError(
            f"lever {lever!r} is a categorical covariate, which an intervention does not move; choose one of "
            f"{', '.join(levers)}"
        )
    if lever not in levers:
        raise DataError(f"lever {lever!r} is not a predictor of this model ({', '.join(levers)})")


def trial_refusal(spec: ModelSpec) -> str | None:
    """Why no cluster trial can be planned from a fit with this spec (a phrase), or None when one can.

    The trial designs of :mod:`mbct_bayes.power` simulate each cluster's members as Bernoulli
    draws at a logistic P(embedded) measured once. A count family's outcome is a rate, not such a
    probability; a transition model's P(embedded) depends on each service's state at its previous
    wave, which the designs do not carry. :func:`trial_inputs`, the power module's populations and
    the report's trial section all ask here.
    """
    family = get_family(spec.family)
    if not family.planned_is_probability:
        return (
            f"the trial designs simulate each cluster's P(embedded) from a logistic model, and a {spec.family} "
            f"model's outcome is a rate ({family.planned_label(spec)}), which the designs do not model"
        )
    if spec.dynamics == "transition":
        return (
            "this is a transition model: its P(embedded) depends on each service's state at the previous wave, and "
            "the trial designs simulate one measurement per cluster from a model without a previous state, so their "
            "assurance would leave out where each service starts; compare journeys with 'mbct-bayes forecast "
            "--what-if' (mb.forecast scenarios) instead"
        )
    return None


def trial_inputs(
    posterior: Posterior, *, lever: str = "F", delta: float = 1.0, profile: dict[str, float] | None = None
) -> dict[str, Any]:
    """Posterior draws that a cluster trial of raising ``lever`` by ``delta`` depends on.

    Parameters
    ----------
    fit
        A fitted model.
    lever
        The predictor the intervention moves (e.g. ``"F"``: facilitation).
    delta
        How far the intervention is expected to move it, in scale points.
    profile
        Predictor values of a typical control service; default the centring values (the scale
        midpoints for E, C, F) and, for a categorical covariate, its reference level (a profile
        may name another level, e.g. ``{"setting": "secondary"}``). For a latent-measurement fit the profile and ``delta`` are true
        scores (a trial population of measured sites draws them with
        :func:`mbct_bayes.planning.measured.true_score_draws`).

    Returns
    -------
    dict
        ``baseline_logit`` (S,): logit P(embedded) of a typical control service;
        ``log_odds_ratio`` (S,): the change in that logit from the intervention;
        ``sigma_site`` (S,): between-service SD on the logit scale (site and region combined).
    """
    spec = posterior.spec
    refusal = trial_refusal(spec)
    if refusal is not None:
        raise DataError(f"no trial can be planned from this fit: {refusal}")
    check_lever(spec, lever)
    values: dict[str, Any] = dict(spec.center)
    unknown = sorted(set(profile or {}) - set(spec.predictors))
    if unknown:
        raise DataError(f"profile names {unknown[0]!r}, which is not a predictor ({', '.join(spec.predictors)})")
    values.update({k: (str(v) if k in spec.categorical else float(v)) for k, v in (profile or {}).items()})
    after = dict(values)
    after[lever] = values[lever] + float(delta)
    rng_ = spec.scale.get(lever)
    if rng_ is not None and not (rng_[0] <= after[lever] <= rng_[1]):
        raise DataError(
            f"{lever} = {values[lever]:g} + {delta:g} leaves the scale {rng_[0]:g}-{rng_[1]:g}; choose a smaller --delta"
        )
    X = design_matrix(pd.DataFrame([values, after]), spec)
    eta = fixed_part(posterior.draws, X)
    eta = get_family(spec.family).event_logit(eta, posterior.draws)
    sigma = posterior.draws["sigma_site"]
    if "sigma_region" in posterior.draws:
        sigma = np.sqrt(sigma**2 + posterior.draws["sigma_region"] ** 2)
    return {"baseline_logit": eta[:, 0], "log_odds_ratio": eta[:, 1] - eta[:, 0], "sigma_site": sigma}
