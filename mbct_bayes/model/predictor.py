"""The linear predictor per posterior draw, and what it gives on the fitted rows.

Numpy kernels on a :class:`~mbct_bayes.model.posterior.Posterior`'s arrays: the fixed part
``Intercept + X @ beta`` (for a table's rows, for centred predictor values, or with a latent
fit's true scores), the pointwise log-likelihood of the fitted rows, and the checked
parameters as flat columns. Planning, forecast evaluation, prior sensitivity and the self-check
all use these, so each is defined once, below all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mbct_bayes.families import get_family
from mbct_bayes.model.build import ModelData
from mbct_bayes.model.design import design_from_parts
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.spec import ModelSpec


def fixed_part(draws: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``Intercept + X @ beta`` per draw: shape (S, n)."""
    eta = draws["beta"] @ X.T if X.shape[1] else np.zeros((_n_draws(draws), X.shape[0]))
    if "Intercept" in draws:
        eta = eta + draws["Intercept"][:, None]
    return eta


def _n_draws(draws: Mapping[str, np.ndarray]) -> int:
    return int(draws["sigma_site"].shape[0])


def latent_fixed_part(posterior: Posterior, site_idx: np.ndarray) -> np.ndarray:
    """``Intercept + X @ beta`` per draw with each known site's latent (true) scores: (S, n).

    Latent-measurement fits only: a known site's E, C, F are the posterior draws of its latent
    values, not the noisy averages in a table.
    """
    return fixed_part_centred(posterior.draws, posterior.spec, posterior.draws["latent"][:, site_idx, :])


def fixed_part_centred(
    draws: Mapping[str, np.ndarray], spec: ModelSpec, rows: np.ndarray, categories: Mapping[str, Any] | None = None
) -> np.ndarray:
    """``Intercept + X @ beta`` per draw for centred numeric predictor values ``rows`` (S or 1, n, q): (S, n).

    ``X`` is built by :func:`mbct_bayes.model.design.design_from_parts` (``rows`` in the order of
    the spec's numeric predictors; ``categories`` the level labels of categorical covariates, each
    (n,); one not given is at its reference level), so each draw may have its own values (latent
    scores) or all share one set (a leading axis of 1).
    """
    X = design_from_parts(spec, rows, categories)
    beta = draws["beta"]
    eta = np.einsum("snp,sp->sn", X, beta) if X.shape[0] > 1 else np.einsum("np,sp->sn", X[0], beta)
    if "Intercept" in draws:
        eta = eta + draws["Intercept"][:, None]
    return eta


def own_effects(draws: Mapping[str, np.ndarray], data: ModelData) -> np.ndarray:
    """Each fitted row's own site and region effects per draw: (S, n).

    ``u_site[site] + b_site[site] * (t - t0) + u_region[region]``: the slope term only in a
    time-trend model (``b_site`` draws, ``data.time_offset``), the region term only with regions.
    ``draws`` may be posterior or prior draws (the self-check's) of the model fitted to ``data``.
    """
    effect = draws["u_site"][:, data.site_idx]
    if data.time_offset is not None:
        effect = effect + draws["b_site"][:, data.site_idx] * data.time_offset
    if data.region_idx is not None:
        effect = effect + draws["u_region"][:, data.region_idx]
    return effect


def rows_eta(draws: Mapping[str, np.ndarray], spec: ModelSpec, data: ModelData) -> np.ndarray:
    """The linear predictor (S, n) of ``data``'s rows per draw, with each row's own site and region effects.

    A latent model's fixed part takes each row's site's latent (true) scores from ``draws``
    (``latent``, centred; posterior draws, or the self-check's prior draws), an observed model's
    the design matrix ``data.X``. Without the rows' offset (a count model's log exposure).
    """
    if spec.measurement == "latent":
        fixed = fixed_part_centred(draws, spec, draws["latent"][:, data.site_idx, :])
    else:
        fixed = fixed_part(draws, data.X)
    return fixed + own_effects(draws, data)


def fitted_eta(posterior: Posterior) -> np.ndarray:
    """The linear predictor (S, n) of the fitted rows, with each site's own effects.

    Without the rows' offset (a count model's log exposure): per unit of exposure, as the
    posterior predictive check takes it; :func:`log_likelihood` adds it.
    """
    return rows_eta(posterior.draws, posterior.spec, posterior.model_data)


def log_likelihood(posterior: Posterior) -> np.ndarray:
    """Pointwise log-likelihood (S, n) of the fitted rows, with each site's own effects."""
    md = posterior.model_data
    eta = md.add_offset(fitted_eta(posterior))
    return get_family(posterior.spec.family).log_likelihood(md.y, eta, md.trials, posterior.draws)


def parameter_draws(draws: Mapping[str, np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """The checked parameters as flat columns: ``{name: (S,)}``.

    Names follow :meth:`mbct_bayes.model.fit.Fit.summary_table`: ``Intercept``, each coefficient name
    (``E``, ``C:F``, ``time``), ``sigma_site``, ``sigma_region``, ``sigma_slope`` and
    ``corr_site_slope`` (time-trend models), ``cutpoint[a|b]``, and a family's own scalar
    parameters (``overdispersion``).
    """
    out: dict[str, np.ndarray] = {}
    if "Intercept" in draws:
        out["Intercept"] = np.asarray(draws["Intercept"], dtype=float)
    for j, name in enumerate(spec.coef_names):
        out[name] = np.asarray(draws["beta"][:, j], dtype=float)
    out["sigma_site"] = np.asarray(draws["sigma_site"], dtype=float)
    for name in ("sigma_region", "sigma_slope", "corr_site_slope"):
        if name in draws:
            out[name] = np.asarray(draws[name], dtype=float)
    if "cutpoints" in draws:
        levels = spec.ordinal_levels
        for k in range(draws["cutpoints"].shape[1]):
            out[f"cutpoint[{levels[k]}|{levels[k + 1]}]"] = np.asarray(draws["cutpoints"][:, k], dtype=float)
    for name in get_family(spec.family).parameters:  # the family's own scalars (a dispersion)
        if name in draws and np.ndim(draws[name]) == 1:
            out[name] = np.asarray(draws[name], dtype=float)
    return out


def measurement_draws(
    draws: Mapping[str, np.ndarray], spec: ModelSpec, role_labels: tuple[str, ...] | None
) -> dict[str, np.ndarray]:
    """A latent model's measurement parameters as flat columns: ``{name: (S,)}``; empty otherwise.

    Per construct ``p`` (the spec's predictors): ``latent_mean[p]`` and ``latent_sd[p]`` (the
    population of true site scores, centred), ``sigma_measure[p]`` (a respondent's error SD);
    per pair ``latent_corr[p,q]`` (the true scores' correlation, from the LKJ factor
    ``latent_corr_chol``: ``R = C Cᵀ``); and with role offsets ``role_offset[p,role]`` for each
    role in ``role_labels`` (they sum to zero over roles, so one per construct is implied by the
    others; each is still a calibrated margin).
    """
    if spec.measurement != "latent":
        return {}
    out: dict[str, np.ndarray] = {}
    constructs = list(spec.predictors)
    for name in ("latent_mean", "latent_sd", "sigma_measure"):
        for j, p in enumerate(constructs):
            out[f"{name}[{p}]"] = np.asarray(draws[name][:, j], dtype=float)
    factor = np.asarray(draws["latent_corr_chol"], dtype=float)
    corr = factor @ np.swapaxes(factor, 1, 2)
    for a in range(len(constructs)):
        for b in range(a + 1, len(constructs)):
            out[f"latent_corr[{constructs[a]},{constructs[b]}]"] = corr[:, a, b]
    if spec.role_offsets and role_labels is not None:
        for j, p in enumerate(constructs):
            for r, role in enumerate(role_labels):
                out[f"role_offset[{p},{role}]"] = np.asarray(draws["role_offset"][:, j, r], dtype=float)
    return out
