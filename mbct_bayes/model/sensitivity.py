"""Prior sensitivity of a fit by power-scaling (Kallioinen, Paananen, Bürkner & Vehtari 2024).

Each number says how much the posterior of a parameter moves when the prior (or the likelihood)
is made slightly stronger or weaker, ``p(θ)^α`` for ``α`` near 1, estimated by Pareto-smoothed
importance sampling from the draws already made (no refitting):
:func:`arviz_stats.psense_summary`, its CJS-distance gradient and its 0.05 threshold.

What is scaled
    The *prior* is the joint density of the model's top-level parameters under the spec's priors
    (intercept, coefficients, ``sigma_site``, ``sigma_region``, cutpoints; with a time trend also
    ``sigma_slope`` and the LKJ density of ``corr_site_slope``), as priorsense does for
    brms models. The group effects' population density ``u ~ Normal(0, sigma)`` is model
    structure and is scaled by neither. The *likelihood* is the outcome's pointwise
    log-likelihood with each site's own effects (:func:`mbct_bayes.model.predictor.log_likelihood`);
    for latent-measurement fits the respondents' measurement model is held fixed too.

Diagnosis (per parameter)
    ArviZ and the paper call a sensitivity of 0.05 or more influential (a rule of thumb). At that
    level the package's own deliberately informative domain priors already register on the
    bundled example (measured on ``models/bernoulli.toml`` with ``data/example/observations.csv``,
    4 × 1000 draws, seeds 1-3: prior sensitivity of C 0.058-0.063 and of ``sigma_site``
    0.083-0.085, with 5 binary outcomes per site), which is influence, not a fault. So:

    * prior sensitivity < 0.05: **ok** — the data decide this number;
    * 0.05 to < 0.10: **some prior influence** — shown, not flagged (expected for an informative
      prior or a weakly identified SD);
    * ≥ 0.10 (:data:`FLAG`, twice the rule of thumb) with likelihood sensitivity ≥ 0.05:
      **prior-data conflict** — prior and data pull this number apart; check the prior;
    * ≥ 0.10 with likelihood sensitivity < 0.05: **prior dominates** — the prior, not the data,
      decides this number.

    The estimates carry Monte Carlo noise (about ±0.005 at 4,000 draws on the example); numbers
    near a threshold can change side between seeds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import stats

from mbct_bayes.model.build import ModelData, coefficient_priors
from mbct_bayes.model.predictor import log_likelihood, parameter_draws
from mbct_bayes.spec import ModelSpec

if TYPE_CHECKING:  # model.fit imports this module (Fit.prior_sensitivity)
    from mbct_bayes.model.fit import Fit

#: Sensitivity (CJS-distance gradient) from which a component has noticeable influence (ArviZ's rule of thumb).
THRESHOLD = 0.05
#: Prior sensitivity from which a parameter is flagged (see the module docstring).
FLAG = 0.10
DIAGNOSES = {
    "ok": "ok",
    "some": "some prior influence",
    "conflict": "prior-data conflict",
    "prior": "prior dominates",
}
#: Plain words for each diagnosis, as the text summary and the report show them.
EXPLANATIONS = {
    "ok": "the data decide this number",
    "some prior influence": "the prior has some pull on this number (expected for an informative prior)",
    "prior-data conflict": "the prior and the data pull this number in different directions; check the prior",
    "prior dominates": "the prior, not the data, decides this number",
}
#: Diagnoses that count as a flag.
FLAGGED = ("prior-data conflict", "prior dominates")


def log_density(prior: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Log density of a spec prior (``{"dist": ..., params}``) at ``x``, as PyMC defines it.

    Half-distributions are the absolute value of the zero-centred one (density doubled on x ≥ 0).
    """
    d = prior["dist"]
    x = np.asarray(x, dtype=float)
    if d == "Normal":
        return stats.norm.logpdf(x, prior["mu"], prior["sigma"])
    if d == "StudentT":
        return stats.t.logpdf(x, prior["nu"], prior["mu"], prior["sigma"])
    if d == "Cauchy":
        return stats.cauchy.logpdf(x, prior["alpha"], prior["beta"])
    if d == "HalfNormal":
        return stats.halfnorm.logpdf(x, scale=prior["sigma"])
    if d == "HalfStudentT":
        return np.where(x >= 0, math.log(2.0) + stats.t.logpdf(x, prior["nu"], 0.0, prior["sigma"]), -np.inf)
    if d == "HalfCauchy":
        return stats.halfcauchy.logpdf(x, scale=prior["beta"])
    if d == "Exponential":
        return stats.expon.logpdf(x, scale=1.0 / prior["lam"])
    if d == "LKJ":
        # a 2 x 2 correlation matrix's one correlation r: density ∝ (1 - r²)^(eta - 1), i.e.
        # (r + 1) / 2 ~ Beta(eta, eta) (Lewandowski, Kurowicka & Joe 2009 with n = 2)
        return stats.beta.logpdf((x + 1.0) / 2.0, prior["eta"], prior["eta"]) - math.log(2.0)
    raise ValueError(f"no log density for prior {d!r}")


def log_prior(draws: Mapping[str, np.ndarray], spec: ModelSpec, model_data: ModelData) -> np.ndarray:
    """Joint log prior density of the top-level parameters per draw: shape (S,)."""
    total = np.zeros(next(iter(draws.values())).shape[0])
    if "Intercept" in draws:
        total += log_density(spec.prior_for("Intercept"), draws["Intercept"])
    for j, prior in enumerate(coefficient_priors(spec, model_data)):
        total += log_density(prior, draws["beta"][:, j])
    for name in ("sigma_site", "sigma_region", "sigma_slope", "corr_site_slope"):
        if name in draws:
            total += log_density(spec.prior_for(name), draws[name])
    if "cutpoints" in draws:
        total += log_density(spec.prior_for("cutpoints"), draws["cutpoints"]).sum(axis=1)
    return total


def diagnosis(prior: float, likelihood: float) -> str:
    """The diagnosis of one parameter from its prior and likelihood sensitivities (module docstring)."""
    if prior >= FLAG:
        return DIAGNOSES["conflict"] if likelihood >= THRESHOLD else DIAGNOSES["prior"]
    if prior >= THRESHOLD:
        return DIAGNOSES["some"]
    return DIAGNOSES["ok"]


def prior_sensitivity(fit: Fit) -> dict[str, dict[str, Any]]:
    """Power-scaling sensitivity of each top-level parameter of a fit.

    Returns
    -------
    dict
        ``{parameter: {"prior": float, "likelihood": float, "diagnosis": str}}`` with parameter
        names as in :meth:`mbct_bayes.model.fit.Fit.summary_table` and diagnosis one of
        ``"ok"``, ``"some prior influence"``, ``"prior-data conflict"``, ``"prior dominates"``
        (see the module docstring).
    """
    from arviz_stats import psense  # deferred: ArviZ is only needed for its diagnostics and LOO


    post = fit.idata["posterior"].to_dataset()
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    flat = parameter_draws(fit.draws, fit.spec)
    # one posterior variable per parameter, so each gets its own sensitivity under its own name
    columns = xr.Dataset({
        name: (("chain", "draw"), values.reshape(n_chains, n_draws)) for name, values in flat.items()
    })
    loglik = log_likelihood(fit.posterior).reshape(n_chains, n_draws, -1)
    lprior = log_prior(fit.draws, fit.spec, fit.model_data).reshape(n_chains, n_draws)
    tree = xr.DataTree.from_dict({
        "posterior": columns,
        "log_likelihood": xr.Dataset({"obs": (("chain", "draw", "obs_id"), loglik)}),
        "log_prior": xr.Dataset({"lprior": (("chain", "draw"), lprior)}),
    })
    logger = logging.getLogger("arviz_stats.psense")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its advice is replaced by the diagnosis words here
    try:
        prior_part = psense(tree, group="prior")
        likelihood_part = psense(tree, group="likelihood")
    finally:
        logger.setLevel(level)
    out = {}
    for name in flat:
        p, lk = float(prior_part[name]), float(likelihood_part[name])
        out[name] = {"prior": p, "likelihood": lk, "diagnosis": diagnosis(p, lk)}
    return out


def flagged(sensitivity: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The flagged parameters (prior-data conflict or prior dominance), with their diagnosis."""
    return {k: v["diagnosis"] for k, v in sensitivity.items() if v["diagnosis"] in FLAGGED}


def sensitivity_lines(sensitivity: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-text lines for the terminal summary: a verdict, then one line per parameter."""
    flags = flagged(sensitivity)
    head = (
        f"prior sensitivity (power-scaling): FLAGGED {', '.join(f'{k} ({v})' for k, v in flags.items())}"
        if flags else "prior sensitivity (power-scaling): no parameter flagged"
    )
    lines = [head]
    for name, v in sensitivity.items():
        lines.append(
            f"  {name}: prior {v['prior']:.3f}, likelihood {v['likelihood']:.3f} — {v['diagnosis']}: "
            f"{EXPLANATIONS[v['diagnosis']]}"
        )
    lines.append(
        f"  (how far each posterior moves when the prior or the data are made slightly stronger; "
        f"flag: prior ≥ {FLAG:g}, some influence: ≥ {THRESHOLD:g})"
    )
    return lines
