"""Negative binomial family: overdispersed counts per observation, log link with exposure.

``count ~ NegativeBinomial(mean mu, variance mu + overdispersion · mu²)`` with
``mu = exposure · exp(eta)`` (a gamma mixture of Poissons: rows of one site differ by more than
Poisson noise). ``overdispersion = 0`` is the Poisson model; its default prior HalfNormal(1)
(:data:`DEFAULT_PRIORS`) leaves room for strong overdispersion (a row-level coefficient of
variation of the rate up to about 2) while keeping the Poisson model in reach. Everything else
(checks, exposure, rates per ``rate_per``) is :mod:`~mbct_bayes.families.poisson`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import gammaln

from mbct_bayes.errors import DataError
from mbct_bayes.families._base import Family, finite
from mbct_bayes.families.poisson import (
    COUNT_BASELINE_SCORED,
    COUNT_FIELDS,
    COUNT_INTERCEPT_PRIOR,
    COUNT_SAVED_SCORES,
    DEFAULT_OUTCOME,
    SIMULATED_EXPOSURE,
    draw_exposure,
    simulated_mean,
)
from mbct_bayes.families.poisson import resolve_truth as resolve_count_truth
from mbct_bayes.families.poisson import truth_defaults as count_truth_defaults

if TYPE_CHECKING:
    from mbct_bayes.spec import ModelSpec

NAME = "negbinomial"
PARAMETER = "overdispersion"
#: The family's default priors, in one place (named in ``[priors]`` as ``overdispersion``).
DEFAULT_PRIORS = {
    "Intercept": COUNT_INTERCEPT_PRIOR,
    PARAMETER: {"dist": "HalfNormal", "sigma": 1.0},
}
#: Overdispersion of simulated data unless the truth says otherwise.
DEFAULT_OVERDISPERSION = 0.3


def _alpha(params: Mapping[str, Any]) -> np.ndarray:
    """PyMC's ``alpha`` (the gamma shape, 1 / overdispersion) with a trailing axis for rows."""
    return 1.0 / np.asarray(params[PARAMETER], dtype=float)[..., None]


def likelihood(eta, y, values: Mapping[str, np.ndarray], spec: ModelSpec) -> None:
    import pymc as pm  # deferred: PyMC is slow to import and only model building needs it
    import pytensor.tensor as pt  # deferred: pytensor compiles on import; only model building needs it

    prior = spec.prior_for(PARAMETER)
    overdispersion = getattr(pm, prior["dist"])(PARAMETER, **{k: v for k, v in prior.items() if k != "dist"})
    pm.NegativeBinomial("obs", mu=pt.exp(eta), alpha=1.0 / overdispersion, observed=y)


def log_likelihood(y: np.ndarray, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]) -> np.ndarray:
    """``log Γ(y + a) − log Γ(a) − log y! + y log(mu / (mu + a)) + a log(a / (mu + a))``, ``a = 1 / overdispersion``."""
    alpha = _alpha(params)
    log_total = np.logaddexp(eta, np.log(alpha))  # log(mu + a), stable for large mu or a
    return (
        gammaln(y + alpha) - gammaln(alpha) - gammaln(y + 1.0)
        + y * (eta - log_total) + alpha * (np.log(alpha) - log_total)
    )


def truth_defaults() -> dict[str, Any]:
    return {**count_truth_defaults(), PARAMETER: DEFAULT_OVERDISPERSION}


def resolve_truth(base: dict[str, Any], truth: Mapping[str, Any], trials: int | None) -> None:
    resolve_count_truth(base, truth, trials)
    value = truth.get(PARAMETER, DEFAULT_OVERDISPERSION)
    if not finite(value) or value <= 0:
        raise DataError(f"truth[{PARAMETER!r}] must be a number > 0, got {value!r}")
    base[PARAMETER] = float(value)


def _draw(rng: np.random.Generator, mean: np.ndarray, overdispersion: np.ndarray | float) -> np.ndarray:
    """Gamma–Poisson draws with the given means (numpy's ``negative_binomial(n=a, p=a/(a+mu))``)."""
    alpha = 1.0 / np.asarray(overdispersion, dtype=float)
    return rng.negative_binomial(alpha, alpha / (alpha + mean)).astype(np.int64)


def draw_outcome(rng: np.random.Generator, params: Mapping[str, Any], eta: np.ndarray) -> dict[str, np.ndarray]:
    exposure = draw_exposure(rng, params, eta.size)
    counts = _draw(rng, exposure * np.exp(eta), float(params[PARAMETER]))
    return {DEFAULT_OUTCOME: counts, SIMULATED_EXPOSURE: exposure}


def draw_codes(rng: np.random.Generator, eta: np.ndarray, trials: np.ndarray | None, params: Mapping[str, Any]):
    return _draw(rng, simulated_mean(eta), np.asarray(params[PARAMETER], dtype=float)[:, None])


def describe(spec: ModelSpec) -> str:
    exposure = f", offset log('{spec.exposure}')" if spec.exposure else ""
    return (
        f"Negative binomial: '{spec.outcome}' is a count per observation with variance mean + "
        f"overdispersion · mean²; log link{exposure}."
    )


FAMILY = Family(
    name=NAME,
    likelihood=likelihood,
    log_likelihood=log_likelihood,
    truth_defaults=truth_defaults,
    draw_outcome=draw_outcome,
    describe=describe,
    log_score_of={
        "evaluate": {
            "model": "predictive mixture: log mean over posterior draws of NegativeBinomial(y | exposure · "
            "rate_draw, overdispersion_draw), each draw with its own new-site effect",
            "baseline": COUNT_BASELINE_SCORED,
        },
        "saved": COUNT_SAVED_SCORES,
    },
    draw_codes=draw_codes,
    parameters=(PARAMETER,),
    default_priors=DEFAULT_PRIORS,
    **{**COUNT_FIELDS, "resolve_truth": resolve_truth},
)
