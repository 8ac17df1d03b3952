"""The maximum-likelihood GLMM reference (tests/reference_glmm.py) against a published fit and a direct integral."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm, poisson

from tests.rdata import r_dataset
from tests.reference_glmm import fit_glmm, marginal_loglik

# lme4's published fit of the CBPP data (Lesnoff et al. 2004, Prev. Vet. Med. 64:27-40; lme4::cbpp):
#   glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp)
# Laplace approximation (nAGQ = 1), as printed in lme4's documentation and Bates et al. (2015, J. Stat.
# Softw. 67(1)): fixed effects (estimate, SE), herd SD 0.6421, log-likelihood -92.0.
LME4_CBPP = {
    "Intercept": (-1.3983, 0.2312),
    "period2": (-0.9919, 0.3032),
    "period3": (-1.1282, 0.3228),
    "period4": (-1.5797, 0.4220),
}
LME4_CBPP_SIGMA = 0.6421


@pytest.fixture(scope="module")
def cbpp_laplace():
    d = r_dataset("lme4", "cbpp")
    X = np.stack([(d["period"] == p).to_numpy(float) for p in (2, 3, 4)], axis=1)
    return fit_glmm(
        d["incidence"],
        X,
        d["herd"],
        family="binomial",
        trials=d["size"],
        names=["period2", "period3", "period4"],
        n_quad=1,
    )


def test_binomial_laplace_matches_lme4_cbpp(cbpp_laplace):
    for name, (estimate, se) in LME4_CBPP.items():
        assert cbpp_laplace.estimates[name] == pytest.approx(estimate, abs=2e-3), name
        # lme4's SEs come from its own Hessian approximation: agree to 2%
        assert cbpp_laplace.se[name] == pytest.approx(se, rel=0.02), name
    assert cbpp_laplace.sigma == pytest.approx(LME4_CBPP_SIGMA, abs=2e-3)
    assert cbpp_laplace.loglik == pytest.approx(-92.0, abs=0.05)


def test_poisson_marginal_likelihood_equals_direct_integral():
    """Adaptive quadrature (25 nodes) equals the integral over each group's effect done by scipy.quad."""
    rng = np.random.default_rng(3)
    n_groups, per = 6, 4
    group = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=group.size)
    exposure = rng.uniform(0.5, 3.0, size=group.size)
    y = rng.poisson(exposure * np.exp(0.4 + 0.5 * x + rng.normal(0, 0.8, n_groups)[group]))
    params = np.array([0.3, 0.6, np.log(0.7)])
    aghq = marginal_loglik(
        params, y.astype(float), x[:, None], group, n_groups, "poisson", np.ones(group.size), np.log(exposure), 25
    )
    direct = 0.0
    for j in range(n_groups):
        rows = group == j

        def integrand(u, rows=rows):
            mu = exposure[rows] * np.exp(params[0] + params[1] * x[rows] + u)
            return np.prod(poisson.pmf(y[rows], mu)) * norm.pdf(u, 0.0, np.exp(params[2]))

        direct += np.log(integrate.quad(integrand, -10, 10, epsabs=1e-14, limit=200)[0])
    assert aghq == pytest.approx(direct, abs=1e-8)


def test_poisson_fit_recovers_a_known_rate_ratio():
    """Simulated Poisson GLMM with exposure: the ML estimates lie within 3 SE of the truth."""
    rng = np.random.default_rng(11)
    n_groups, per = 60, 5
    group = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=group.size)
    exposure = rng.uniform(1.0, 10.0, size=group.size)
    y = rng.poisson(exposure * np.exp(-1.0 + 0.5 * x + rng.normal(0, 0.6, n_groups)[group]))
    ref = fit_glmm(y, x[:, None], group, family="poisson", offset=np.log(exposure), names=["x"], n_quad=9)
    assert abs(ref.estimates["Intercept"] + 1.0) < 3 * ref.se["Intercept"]
    assert abs(ref.estimates["x"] - 0.5) < 3 * ref.se["x"]
    assert abs(ref.sigma - 0.6) < 3 * ref.sigma_se
