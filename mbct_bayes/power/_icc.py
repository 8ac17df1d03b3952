"""The logistic-normal cluster model: marginal proportions and ICC conversions.

A cluster's probability is ``expit(logit(p) + sigma_b * u)`` with ``u ~ N(0, 1)``; ``p`` is the
probability of a *typical* cluster (``u = 0``), as clusterPower's simulation takes it. Two ICCs
describe the same model and differ:

* the **logit-scale** (latent-variable) ICC ``sigma_b^2 / (sigma_b^2 + pi^2 / 3)``, free of ``p``;
* the **proportion-scale** ICC, ``Var(cluster probability) / (pbar (1 - pbar))`` with ``pbar`` the
  marginal proportion: the between-cluster share of the Bernoulli variance, the ICC the
  design-effect formulas (:func:`mbct_bayes.power.analytic`) take. It depends on ``p``, and for a
  given ``sigma_b`` is smaller than the logit-scale ICC.

Expectations over ``u`` use Gauss–Hermite quadrature (probabilists' nodes), within ~1e-8 of
adaptive integration for the ``sigma_b`` met in practice (< 3).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

from mbct_bayes.errors import DataError
from mbct_bayes.power import _checks as check

LOGISTIC_VARIANCE = math.pi**2 / 3.0
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(101)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
_SIGMA_MAX = 20.0


def _cluster_probabilities(p: ArrayLike, sigma_b: ArrayLike) -> np.ndarray:
    """expit(logit p + sigma_b * node) on a trailing quadrature axis."""
    eta = special.logit(np.asarray(p, dtype=float))[..., None]
    return special.expit(eta + np.asarray(sigma_b, dtype=float)[..., None] * _NODES)


def marginal_proportion(p: ArrayLike, sigma_b: ArrayLike) -> np.ndarray | float:
    """Marginal (population-averaged) proportion ``E[expit(logit p + sigma_b u)]``.

    Parameters
    ----------
    p
        Typical-cluster probability (cluster effect 0).
    sigma_b
        Between-cluster SD on the logit scale.

    Returns
    -------
    The arm proportion averaged over clusters: pulled towards 0.5 relative to ``p``.
    """
    out = _cluster_probabilities(p, sigma_b) @ _WEIGHTS
    return float(out) if np.ndim(out) == 0 else out


def icc_from_sigma_b(
    p: ArrayLike, sigma_b: ArrayLike, *, scale: str = "proportion"
) -> np.ndarray | float:
    """ICC implied by the logistic-normal model.

    Parameters
    ----------
    p
        Typical-cluster probability (ignored for ``scale="logit"``).
    sigma_b
        Between-cluster SD on the logit scale.
    scale
        ``"proportion"``: ``Var(pi) / (pbar (1 - pbar))`` by quadrature (what design-effect formulas
        take); ``"logit"``: ``sigma_b^2 / (sigma_b^2 + pi^2/3)``.
    """
    scale = check.choice("scale", scale, ("proportion", "logit"))
    s = np.asarray(sigma_b, dtype=float)
    if scale == "logit":
        out = s**2 / (s**2 + LOGISTIC_VARIANCE)
    else:
        probs = _cluster_probabilities(p, s)
        mean = probs @ _WEIGHTS
        var = np.maximum((probs**2) @ _WEIGHTS - mean**2, 0.0)
        out = var / (mean * (1.0 - mean))
    return float(out) if np.ndim(out) == 0 else out


def sigma_b_from_icc(icc: float, p: float | None = None, *, scale: str = "proportion") -> float:
    """Between-cluster SD on the logit scale that gives ``icc``.

    Parameters
    ----------
    icc
        The ICC, in [0, 1).
    p
        Typical-cluster probability at which a proportion-scale ICC is matched (required for
        ``scale="proportion"``). The simulation matches it at the control arm's ``p0``; the
        intervention arm then has its own, slightly different, proportion-scale ICC.
    scale
        ``"logit"``: exact inverse ``sqrt(icc / (1 - icc) * pi^2/3)``. ``"proportion"``: the
        ``sigma_b`` whose implied proportion-scale ICC (:func:`icc_from_sigma_b`, computed by
        quadrature, increasing in ``sigma_b``) equals ``icc``, found by root-finding — an exact
        numerical match, not the usual small-ICC approximation.
    """
    scale = check.choice("scale", scale, ("proportion", "logit"))
    icc = check.icc(icc)
    if scale == "logit":
        return math.sqrt(icc / (1.0 - icc) * LOGISTIC_VARIANCE)
    if p is None:
        raise DataError(
            "converting a proportion-scale ICC to sigma_b needs the probability p0 it applies at"
        )
    p = check.probability("p0", p)
    if icc == 0.0:
        return 0.0
    top = icc_from_sigma_b(p, _SIGMA_MAX)
    if icc >= top:
        raise DataError(
            f"icc = {icc:g} at p0 = {p:g} needs a logit-scale sigma_b above {_SIGMA_MAX:g}; "
            "give a smaller ICC or --sigma-b directly"
        )
    return float(
        optimize.brentq(lambda s: icc_from_sigma_b(p, s) - icc, 0.0, _SIGMA_MAX, xtol=1e-12)
    )
