"""A maximum-likelihood reference: GLMM with one random intercept by adaptive Gauss–Hermite quadrature.

Tests compare the package's Bayesian fits with this second implementation (numpy + scipy only,
no PyMC). The model is

    y_ij ~ F(mu_ij),   g(mu_ij) = offset_ij + Intercept + x_ij · beta + u_j,   u_j ~ Normal(0, sigma)

with ``F`` Bernoulli/Binomial (logit link) or Poisson (log link, ``offset`` = log exposure). The
marginal likelihood integrates each group's ``u_j`` by adaptive Gauss–Hermite quadrature (Liu &
Pierce 1994, Biometrika 81:624–629): nodes centred at the mode of the group's integrand and scaled
by its curvature; ``n_quad = 1`` is the Laplace approximation (lme4's ``glmer`` default, ``nAGQ =
1``). Estimates maximise it (BFGS on ``(Intercept, beta, log sigma)``); standard errors are the
square roots of the diagonal of the inverse of a central-difference Hessian of the negative
log-likelihood (the SE of ``sigma`` by the delta method from ``log sigma``).

Interface (kept small so other tests can import it)::

    from tests.reference_glmm import fit_glmm
    ref = fit_glmm(y, X, group, family="poisson", offset=np.log(exposure), names=["E", "C"])
    ref.estimates["E"], ref.se["E"], ref.sigma, ref.sigma_se, ref.loglik
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

FAMILIES = ("binomial", "bernoulli", "poisson")


@dataclass(frozen=True)
class GLMMFit:
    """A maximum-likelihood fit: ``estimates``/``se`` by name (``Intercept`` first), and the group SD."""

    estimates: dict[str, float]
    se: dict[str, float]
    sigma: float
    sigma_se: float
    loglik: float
    n_quad: int


def _row_loglik(family: str, y: np.ndarray, trials: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, ...]:
    """Log-likelihood per row and its first two derivatives in ``eta`` (arrays broadcast with ``eta``)."""
    if family == "poisson":
        mu = np.exp(eta)
        return y * eta - mu - gammaln(y + 1.0), y - mu, -mu
    # binomial / bernoulli, logit link
    log1pexp = np.logaddexp(0.0, eta)
    p = np.exp(eta - log1pexp)
    const = gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0)
    return const + y * eta - trials * log1pexp, y - trials * p, -trials * p * (1.0 - p)


def marginal_loglik(
    params: np.ndarray,
    y: np.ndarray,
    X: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    family: str,
    trials: np.ndarray,
    offset: np.ndarray,
    n_quad: int,
) -> float:
    """Adaptive Gauss–Hermite log-likelihood at ``params = (Intercept, beta..., log sigma)``."""
    alpha, beta, log_sigma = params[0], params[1:-1], params[-1]
    sigma = np.exp(log_sigma)
    fixed = offset + alpha + X @ beta
    # mode of each group's integrand  h_j(u) = sum_i l(y_i | fixed_i + u) - u^2 / (2 sigma^2), by Newton
    u = np.zeros(n_groups)
    for _ in range(100):
        _, d1, d2 = _row_loglik(family, y, trials, fixed + u[group])
        grad = np.bincount(group, weights=d1, minlength=n_groups) - u / sigma**2
        hess = np.bincount(group, weights=d2, minlength=n_groups) - 1.0 / sigma**2
        step = grad / hess
        u = u - np.clip(step, -5.0, 5.0)
        if np.max(np.abs(step)) < 1e-10:
            break
    _, _, d2 = _row_loglik(family, y, trials, fixed + u[group])
    curvature = -(np.bincount(group, weights=d2, minlength=n_groups) - 1.0 / sigma**2)
    scale = 1.0 / np.sqrt(curvature)
    nodes, weights = np.polynomial.hermite.hermgauss(n_quad)
    # u_jk = mode_j + sqrt(2) scale_j x_k;  integral ~ sqrt(2) scale_j sum_k w_k exp(x_k^2) h_j(u_jk)
    u_nodes = u[:, None] + np.sqrt(2.0) * scale[:, None] * nodes[None, :]  # (J, Q)
    ll_rows, _, _ = _row_loglik(family, y[:, None], trials[:, None], fixed[:, None] + u_nodes[group])
    ll_groups = np.stack([np.bincount(group, weights=ll_rows[:, k], minlength=n_groups) for k in range(n_quad)], 1)
    log_prior = -0.5 * (u_nodes / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    terms = ll_groups + log_prior + np.log(weights)[None, :] + nodes[None, :] ** 2
    top = terms.max(axis=1, keepdims=True)
    log_int = top[:, 0] + np.log(np.exp(terms - top).sum(axis=1)) + np.log(np.sqrt(2.0) * scale)
    return float(log_int.sum())


def _hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x`` (steps scaled by ``max(1, |x|)``)."""
    k = x.size
    h = step * np.maximum(1.0, np.abs(x))
    H = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def fit_glmm(
    y: np.ndarray,
    X: np.ndarray,
    group: Sequence,
    *,
    family: str,
    trials: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    n_quad: int = 25,
) -> GLMMFit:
    """Maximum-likelihood GLMM with a random intercept per ``group``.

    Parameters
    ----------
    y
        Outcome per row: 0/1 (``"bernoulli"``), successes (``"binomial"``) or counts (``"poisson"``).
    X
        (n, p) fixed-effect columns without the intercept (the intercept is added).
    group
        Group label of each row (any hashable values).
    family
        ``"bernoulli"``, ``"binomial"`` (logit link) or ``"poisson"`` (log link).
    trials
        Binomial trials per row (default 1).
    offset
        Added to the linear predictor (Poisson: ``log(exposure)``); default 0.
    names
        Names of the columns of ``X`` (default ``x0, x1, ...``).
    n_quad
        Quadrature nodes per group (1 = Laplace).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    _, group_idx = np.unique(np.asarray(group).astype(str), return_inverse=True)
    n_groups = int(group_idx.max()) + 1
    trials_arr = np.ones_like(y) if trials is None else np.asarray(trials, dtype=float)
    offset_arr = np.zeros_like(y) if offset is None else np.asarray(offset, dtype=float)
    names = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]

    def nll(theta: np.ndarray) -> float:
        return -marginal_loglik(theta, y, X, group_idx, n_groups, family, trials_arr, offset_arr, n_quad)

    # start: the intercept at the pooled rate, slopes 0, sigma 0.5
    rate = y.sum() / (trials_arr.sum() if family != "poisson" else np.exp(offset_arr).sum())
    start_alpha = np.log(rate) if family == "poisson" else np.log(rate / (1 - rate))
    start = np.concatenate([[start_alpha], np.zeros(X.shape[1]), [np.log(0.5)]])
    best = minimize(nll, start, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    best = minimize(nll, best.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20000})
    best = minimize(nll, best.x, method="BFGS", options={"gtol": 1e-8})
    theta = best.x
    cov = np.linalg.inv(_hessian(nll, theta))
    se = np.sqrt(np.diag(cov))
    labels = ["Intercept", *names]
    sigma = float(np.exp(theta[-1]))
    return GLMMFit(
        estimates={name: float(v) for name, v in zip(labels, theta[:-1], strict=True)},
        se={name: float(v) for name, v in zip(labels, se[:-1], strict=True)},
        sigma=sigma,
        sigma_se=float(sigma * se[-1]),
        loglik=float(-best.fun),
        n_quad=n_quad,
    )
