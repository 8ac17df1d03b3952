"""New sites' measured scores in a latent-measurement fit: draws of their true E, C, F.

A latent fit's coefficients are per point of a site's *true* score. A new site's E, C, F are
measurements (the mean of a few respondents), so they cannot go into those coefficients as they
are: the forecast would treat noise as signal and come out about 1/reliability times too extreme
on the logit scale. Instead, per posterior draw, the fitted measurement model gives the true
scores' conditional distribution given what was measured, and forecasts use draws from it.

The fitted measurement model (see ``_latent_design`` in :mod:`mbct_bayes.model.build`) is, on the centred
scale, per site and construct ``j``::

    T ~ MvNormal(latent_mean, Sigma)                      (the population of true site scores;
                                                           Sigma = L L' from ``latent_chol``)
    x_rj = T_j + role_offset[j, role_r] + e_rj,   e_rj ~ Normal(0, sigma_measure_j)

so, given ``n_j`` respondents with a score on ``j`` whose role-adjusted mean is
``xbar_j = mean_r(x_rj - role_offset[j, role_r])``, the normal-normal update is::

    T | xbar ~ MvNormal(m, V),  V = (Sigma^-1 + D)^-1,  m = V (Sigma^-1 latent_mean + D xbar),
    D = diag(n_j / sigma_measure_j^2)

computed per posterior draw (the population, the measurement error and the role offsets are the
draw's own). A construct with no respondent gets ``D_j = 0``: its true score comes from the
population, through its correlation with the constructs that were measured.

Where the measured scores come from
-----------------------------------
* **Respondent scores** (``responses=``, CLI ``--responses``, items scored with ``--codebook``):
  each respondent's own role offset is removed, and each construct counts the respondents
  scored on it.
* **Site means with an ``n_respondents`` column** (per-construct ``n_E``, ``n_C``, ``n_F`` are
  used when present, as :func:`mbct_bayes.survey.scoring.site_scores` writes them): the roles behind a
  mean are unknown, so its role offset is taken as that of the **fitted respondents' role mix**
  (each fitted role weighted by its share of the fitted respondents scored on the construct).
  A site whose respondents lean to one role (e.g. all managers) is then mis-adjusted by that
  role's offset; give respondent scores when the roles are known.
* **``scores_are_true=True``** (CLI ``--scores-are-true``): the table's E, C, F are taken as true
  site scores, as for a hypothetical profile; the output says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mbct_bayes._validate import _check_count, _err
from mbct_bayes.errors import DataError
from mbct_bayes.model.build import attach_site_means
from mbct_bayes.model.design import with_time
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.schema import _ids, read_table, validate_observations, validate_respondent_scores

N_RESPONDENTS = "n_respondents"
#: Draws × sites per block of the conditional draws (bounds the memory of each block).
CHUNK_ELEMENTS = 1_000_000
#: The ways of giving a latent fit's new sites their scores, for messages.
WAYS = (
    "give respondent-level scores (--responses FILE, Python responses=) or an n_respondents column "
    "with each site's number of respondents (or --scores-are-true / scores_are_true=True to treat "
    "the scores as true site scores)"
)


@dataclass(frozen=True)
class MeasuredSites:
    """What was measured at each distinct site of a table of new sites.

    Attributes
    ----------
    row_site
        (n_rows,) index of each table row's site into the site axis below.
    site_ids
        (m,) the distinct site ids.
    means
        (m, P) observed mean score per construct on the scale (NaN where nobody scored it).
    counts
        (m, P) respondents behind each mean.
    role_weights
        (m, P, R) share of each fitted role among those respondents (``None`` without role
        offsets); rows sum to 1 where ``counts > 0``.
    source
        ``"responses"`` or ``"site means"``.
    """

    row_site: np.ndarray
    site_ids: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    role_weights: np.ndarray | None
    source: str


def validate_new_data(posterior: Posterior, table: pd.DataFrame, *, source: str = "new sites") -> pd.DataFrame:
    """Check a table of sites to predict (predictors present and on the scale; regions known).

    A time-trend fit's table without its time column gets one at the time origin (the latest
    fitted time; :func:`mbct_bayes.model.design.with_time`), so every output says which time it is for.
    """
    checked = validate_observations(
        table,
        posterior.spec,
        source=source,
        new_data=True,
        known_regions=list(posterior.model_data.region_labels) if posterior.model_data.region_labels else None,
    )
    return with_time(posterior.spec, checked)


def needs_measurement(posterior: Posterior, kind: str, scores_are_true: bool) -> bool:
    """Whether this prediction draws true scores from measured ones (latent fit, a new site)."""
    return posterior.spec.measurement == "latent" and kind != "known_site" and not scores_are_true


def scores_label(posterior: Posterior, kind: str, measured: MeasuredSites | None) -> str | None:
    """What a latent fit's new-site E, C, F were taken as, for the output's ``scores`` column."""
    if posterior.spec.measurement != "latent" or kind == "known_site":
        return None
    return "taken as true" if measured is None else f"measured ({measured.source})"


def prepare_sites(
    posterior: Posterior,
    new: pd.DataFrame,
    kind: str,
    *,
    responses: pd.DataFrame | str | os.PathLike[str] | None = None,
    scores_are_true: bool = False,
    source: str = "sites",
) -> tuple[pd.DataFrame, MeasuredSites | None]:
    """Validate a table of sites to predict and read what was measured there.

    Parameters
    ----------
    fit
        A :class:`~mbct_bayes.model.fit.Fit`.
    new
        The sites table. With ``responses`` its E, C, F may be left out: they are the
        respondents' means (and replace any given).
    kind
        ``new_site``, ``typical_site`` or ``known_site``.
    responses
        Respondent-level scores of the new sites (latent fits only): a table or a file path.
    scores_are_true
        Take the table's E, C, F as true site scores (latent fits; ignored otherwise).
    source
        Name of the table in messages.

    Returns
    -------
    table, measured
        The validated table (E, C, F = the measured means when responses are given) and the
        measurements; ``measured`` is ``None`` when the table's scores go into the
        coefficients as they are (an observed-score fit, ``known_site``, ``scores_are_true``).

    Raises
    ------
    DataError
        Responses for an observed-score fit or together with ``scores_are_true``; a latent fit's
        new sites with neither responses nor ``n_respondents``; bad counts; responses naming
        sites not in the table, or a table site without responses; unknown roles.
    """
    if not isinstance(new, pd.DataFrame):
        raise DataError(f"{source}: expected a table (pandas DataFrame), got {type(new).__name__}")
    if isinstance(responses, str | os.PathLike):
        responses = read_table(responses, what="responses")
    latent = posterior.spec.measurement == "latent"
    if responses is not None and not latent:
        raise DataError(
            "responses were given, but this fit's scores are observed (measurement = \"observed\"); "
            "give the site scores in the sites table"
        )
    if responses is not None and scores_are_true:
        raise DataError("give either responses (measured scores) or scores_are_true (true scores), not both")
    if responses is not None and kind == "known_site":
        raise DataError("responses are for new sites; a known site uses its fitted latent scores (drop responses)")
    if not needs_measurement(posterior, kind, scores_are_true):
        return validate_new_data(posterior, new, source=source), None
    if responses is not None:
        return _from_responses(posterior, new, responses, source)
    per_construct = all(f"n_{p}" in new.columns for p in posterior.spec.predictors)
    if N_RESPONDENTS not in new.columns and not per_construct:
        raise DataError(f"{source}: this is a latent-measurement fit, so its E, C, F are measured; {WAYS}")
    table = validate_new_data(posterior, new, source=source)
    return table, _from_site_means(posterior, table, source)


def _from_responses(
    posterior: Posterior, new: pd.DataFrame, responses: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, MeasuredSites]:

    spec = posterior.spec
    scores = validate_respondent_scores(responses, spec, source="responses")
    if spec.group not in new.columns:
        raise DataError(f"{source}: needs the site column {spec.group!r} to match the responses' sites")
    bare = new.drop(columns=[p for p in spec.predictors if p in new.columns])
    bare[spec.group] = _ids(bare[spec.group])
    table = validate_new_data(posterior, attach_site_means(bare, scores, spec), source=source)
    table_sites = set(table[spec.group])
    stray = sorted(set(scores[spec.group]) - table_sites)
    if stray:
        raise DataError(
            f"responses: site {stray[0]!r}{_more(stray)} is not in the {source} table; add a row for it "
            "(site id and region) or drop its responses"
        )
    unmeasured = sorted(table_sites - set(scores[spec.group]))
    if unmeasured:
        raise DataError(
            f"{source}: site {unmeasured[0]!r}{_more(unmeasured)} has no respondent in the responses; "
            "add its responses or give the sites as means with an n_respondents column"
        )
    row_site, site_ids = _site_axis(table, spec.group)
    by_site = scores.groupby(spec.group, sort=False)
    values = by_site[list(spec.predictors)]
    means = values.mean().reindex(site_ids).to_numpy(dtype=float)
    counts = values.count().reindex(site_ids).to_numpy(dtype=float)
    role_weights = None
    if spec.role_offsets:
        roles = _fitted_roles(posterior)
        unknown = sorted(set(scores["role"]) - set(roles))
        if unknown:
            raise DataError(
                f"responses: role {unknown[0]!r}{_more(unknown)} is not among the fitted roles ({', '.join(roles)}); "
                "rename it to one of them, or give the site's mean with an n_respondents column (fitted role mix)"
            )
        onehot = (scores["role"].to_numpy()[:, None] == np.array(roles)[None, :]).astype(float)  # (r, R)
        scored = scores[list(spec.predictors)].notna().to_numpy(dtype=float)  # (r, P)
        per_role = onehot[:, None, :] * scored[:, :, None]  # (r, P, R)
        site_pos = pd.Index(site_ids).get_indexer(scores[spec.group])
        sums = np.zeros((len(site_ids), len(spec.predictors), len(roles)))
        np.add.at(sums, site_pos, per_role)
        role_weights = sums / np.maximum(counts, 1.0)[:, :, None]
    measured = MeasuredSites(row_site, site_ids, means, counts, role_weights, "responses")
    return table, measured


def _from_site_means(posterior: Posterior, table: pd.DataFrame, source: str) -> MeasuredSites:
    spec = posterior.spec
    columns = [f"n_{p}" if f"n_{p}" in table.columns else N_RESPONDENTS for p in spec.predictors]
    counts_rows = np.empty((len(table), len(spec.predictors)))
    for j, col in enumerate(columns):
        what = "number of respondents"
        counts_rows[:, j] = _check_count(table, col, source, what)
        low = counts_rows[:, j] < 1
        if low.any():
            raise _err(
                source, col, low,
                f"{what} below 1; a measured site mean needs at least one respondent "
                "(give the number of respondents behind each site's scores)",
            )
    row_site, site_ids = _site_axis(table, spec.group)
    measured = table[list(spec.predictors)].to_numpy(dtype=float)
    first = np.unique(row_site, return_index=True)[1]
    differs = np.any((measured != measured[first][row_site]) | (counts_rows != counts_rows[first][row_site]), axis=1)
    if differs.any():
        raise _err(
            source, spec.group, differs,
            "a site's rows disagree on its scores or respondent counts; a site has one set of measured scores",
        )
    role_weights = None
    if spec.role_offsets:
        # the roles behind a mean are unknown: assume the fitted respondents' role mix
        mix = _fitted_role_mix(posterior)  # (P, R)
        role_weights = np.broadcast_to(mix, (len(site_ids), *mix.shape)).copy()
    return MeasuredSites(row_site, site_ids, measured[first], counts_rows[first], role_weights, "site means")


def _site_axis(table: pd.DataFrame, group: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct site ids in first-appearance order and each row's index into them."""
    ids = table[group].astype(str).to_numpy()
    site_ids = np.array(list(dict.fromkeys(ids)), dtype=object)
    return pd.Index(site_ids).get_indexer(ids), site_ids


def _more(items: list) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def _fitted_roles(posterior: Posterior) -> tuple[str, ...]:
    roles = posterior.model_data.role_labels
    assert roles is not None  # a latent model with role offsets has its roles (prepare_data)
    return tuple(roles)


def _fitted_role_mix(posterior: Posterior) -> np.ndarray:
    """(P, R): each fitted role's share of the fitted respondents scored on each construct."""
    md = posterior.model_data
    assert md.role_labels is not None and md.resp_pred is not None and md.resp_role is not None  # (prepare_data)
    counts = np.zeros((len(posterior.spec.predictors), len(md.role_labels)))
    np.add.at(counts, (md.resp_pred, md.resp_role), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


def latent_population(posterior: Posterior) -> tuple[np.ndarray, np.ndarray]:
    """Per posterior draw, the mean (S, P) and covariance (S, P, P) of true site scores (centred).

    From the fitted LKJ Cholesky factor (``latent_chol``, packed lower triangle by rows, as
    PyMC stores it) when the trace has it, else a stored ``latent_cov``; as a last resort, the
    covariance of the fitted sites' latent values within each draw (a finite-sample stand-in,
    close to the population's with many sites).
    """
    draws = posterior.draws
    # a parametrisation that stores no population mean: the mean of the fitted sites' latent values
    mean = draws["latent_mean"] if "latent_mean" in draws else draws["latent"].mean(axis=1)
    n_draws, n_pred = mean.shape
    if "latent_cov" in draws:
        return mean, draws["latent_cov"]
    if "latent_chol" in draws:
        chol = np.zeros((n_draws, n_pred, n_pred))
        rows, cols = np.tril_indices(n_pred)
        chol[:, rows, cols] = draws["latent_chol"]
        return mean, chol @ np.swapaxes(chol, 1, 2)
    centred = draws["latent"] - draws["latent"].mean(axis=1, keepdims=True)
    return mean, np.einsum("snp,snq->spq", centred, centred) / max(centred.shape[1] - 1, 1)


def conditional_true_scores(posterior: Posterior, measured: MeasuredSites, rng: np.random.Generator) -> np.ndarray:
    """Draws (S, m, P) of each measured site's true scores on the scale, one per posterior draw.

    See the module docstring for the normal-normal update. ``rng`` supplies one standard normal
    per draw, site and construct.
    """
    draws, spec = posterior.draws, posterior.spec
    center = np.array([spec.center[p] for p in spec.predictors])
    mean, cov = latent_population(posterior)
    n_draws, n_pred = mean.shape
    prec_pop = np.linalg.inv(cov)  # (S, P, P)
    prior_term = np.einsum("spq,sq->sp", prec_pop, mean)  # Sigma^-1 mu
    xbar = np.where(measured.counts > 0, measured.means - center, 0.0)  # (m, P), centred
    noise_var = draws["sigma_measure"] ** 2  # (S, P)
    z = rng.standard_normal((n_draws, len(measured.site_ids), n_pred))
    out = np.empty_like(z)
    # the posterior covariance depends on a site's respondent counts, not on its scores: one
    # inverse and Cholesky factor per draw for each distinct pattern of counts
    patterns, pattern_of = np.unique(measured.counts, axis=0, return_inverse=True)
    step = max(1, CHUNK_ELEMENTS // n_draws)
    for k, counts in enumerate(patterns):
        sites = np.flatnonzero(pattern_of.ravel() == k)
        obs_prec = counts[None, :] / noise_var  # (S, P): n_j / sigma_j^2
        post_cov = np.linalg.inv(prec_pop + obs_prec[:, :, None] * np.eye(n_pred))  # (S, P, P)
        chol = np.linalg.cholesky(post_cov)
        for lo in range(0, len(sites), step):
            block = sites[lo:lo + step]
            adjusted = np.broadcast_to(xbar[None, block, :], (n_draws, len(block), n_pred))
            if measured.role_weights is not None:
                adjusted = adjusted - np.einsum("spr,bpr->sbp", draws["role_offset"], measured.role_weights[block])
            rhs = prior_term[:, None, :] + obs_prec[:, None, :] * adjusted
            # (S, b, P) @ (S, P, P)ᵀ: per draw, V · rhs and L · z for every site of the block
            out[:, block, :] = rhs @ np.swapaxes(post_cov, 1, 2) + z[:, block, :] @ np.swapaxes(chol, 1, 2)
    return out + center


def true_score_draws(
    posterior: Posterior,
    table: pd.DataFrame,
    *,
    rng: np.random.Generator,
    responses: pd.DataFrame | None = None,
    kind: str = "new_site",
) -> np.ndarray:
    """Draws (S, n_rows, P) of the true E, C, F of each row's site, for a latent fit's new sites.

    Parameters
    ----------
    fit
        A latent-measurement :class:`~mbct_bayes.model.fit.Fit`.
    table
        Sites (rows of one site share its draws): site means with ``n_respondents`` (or
        ``n_E``, ``n_C``, ``n_F``), or any site rows when ``responses`` are given.
    rng
        Generator of the conditional draws.
    responses
        Respondent-level scores of the table's sites.
    kind
        ``new_site`` or ``typical_site`` (the same true scores for both).

    Returns
    -------
    numpy.ndarray
        True scores on the predictors' scale (not centred, not clipped), per posterior draw
        and row, predictors in ``fit.spec.predictors`` order.
    """
    if posterior.spec.measurement != "latent":
        raise DataError("true_score_draws is for latent-measurement fits; an observed-score fit uses the table's scores")
    _, measured = prepare_sites(posterior, table, kind, responses=responses)
    if measured is None:  # known_site
        raise DataError("true_score_draws is for new sites; a known site uses its fitted latent scores")
    return conditional_true_scores(posterior, measured, rng)[:, measured.row_site, :]
