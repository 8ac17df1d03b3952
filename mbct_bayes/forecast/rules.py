"""Proper scores, calibration and baselines for probability forecasts of implementation.

Pure numpy kernels on plain arrays.

Which scores are of the full predictive distribution
----------------------------------------------------
- **Bernoulli and categorical (ordinal) outcomes**: the predictive distribution of one
  observation *is* its mean probability (``mean_draws p``, or the mean level probabilities), so
  :func:`log_score`, :func:`log_score_ordinal`, :func:`brier` and :func:`rps` of the posterior
  mean are scores of the full predictive distribution; a table with one ``p`` per observation
  loses nothing.
- **Binomial rows** (``k`` successes of ``n``): the model's forecast of a row is a *mixture* of
  binomials over posterior draws (and, for a new site, over its drawn site effect), which is
  wider than any single binomial. Its log score is :func:`log_score_binomial_mixture`,
  ``log mean_s Binomial(k | n, p_s)``, and needs the per-draw ``p_s``.
  :func:`log_score_binomial` of one ``p`` per row is the **plug-in** score ``Binomial(k | n, p̄)``:
  the full predictive only of a forecaster who claims the units of a row are independent with a
  known ``p``; of a posterior mean it overstates confidence (too low at extreme ``k``, too high
  near ``n p̄``).
- Brier, AUC, calibration and ECE of a binomial row treat each of its ``n`` units as one
  Bernoulli forecast with the row's mean ``p̄``; each unit's own predictive is exactly
  Bernoulli(``p̄``), so these are per-unit scores of the full (marginal) predictive, but they
  ignore that the units of a row share one ``p``.

Conventions
-----------
- Binary outcomes ``y`` are 0/1; ``p`` is the forecast probability of 1.
- Ordinal outcomes ``y`` are integer codes ``0..K-1`` (lowest level first); ``P`` is ``(n, K)``
  with rows summing to 1.
- Binned summaries (Brier decomposition, ECE, reliability diagram) use ``bins`` equal-width bins
  on [0, 1]; bin ``k`` holds ``k/B <= p < (k+1)/B`` (computed as ``floor(p * B)``), and
  ``p = 1`` falls in the last bin.
- Site bootstrap: ``n_boot`` resamples of whole sites with replacement, drawn as
  ``rng.integers(0, S, size=(n_boot, S))`` from ``np.random.default_rng(seed)``, so the same seed
  resamples the same sites in :func:`bootstrap_over_sites` and :func:`skill` (paired).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.families import family_names, get_family

FloatArray = NDArray[np.float64]

#: Tolerance for "rows sum to 1" in the array kernels (exact arithmetic up to rounding).
ROW_SUM_TOL = 1e-6
#: Forecasts are clipped to [LOGIT_EPS, 1 - LOGIT_EPS] before taking logits for calibration.
LOGIT_EPS = 1e-10
#: Scores where larger is better (skill = model - baseline); the others are losses.
HIGHER_IS_BETTER = {"log_score": True, "brier": False, "rps": False}
FAMILIES = family_names()  # the registered families (mbct_bayes.families)


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _first(mask: NDArray[np.bool_], limit: int = 5) -> str:
    idx = np.flatnonzero(mask)[:limit]
    return ", ".join(str(i) for i in idx)


def _prob(p: ArrayLike, name: str = "p") -> FloatArray:
    """A 1-D float array of probabilities in [0, 1], or a DataError naming the bad entries."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array of probabilities, got shape {arr.shape}")
    if arr.size == 0:
        raise DataError(f"{name}: no forecasts to score; give at least one observation")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(
            f"{name}: {bad.sum()} missing or infinite forecasts at index {_first(bad)}; "
            "drop those observations or fill in the forecast"
        )
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        first = arr[bad][0]
        raise DataError(
            f"{name}: {bad.sum()} forecasts outside [0, 1] at index {_first(bad)} "
            f"(e.g. {first:g}); forecasts must be probabilities"
        )
    return arr


def _binary(y: ArrayLike, n: int, name: str = "y") -> FloatArray:
    arr = np.asarray(y, dtype=float)
    if arr.ndim != 1 or arr.size != n:
        raise DataError(
            f"{name}: expected {n} outcomes to match the forecasts, got shape {arr.shape}"
        )
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise DataError(
            f"{name}: outcomes must be 0 or 1; found {arr[bad][0]:g} at index {_first(bad)}"
        )
    return arr


def _prob_matrix(P: ArrayLike, name: str = "P", tol: float = ROW_SUM_TOL) -> FloatArray:
    arr = np.asarray(P, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(
            f"{name}: expected an (n, K) array of level probabilities with K >= 2, "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name}: no forecasts to score; give at least one observation")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise DataError(f"{name}: missing or infinite probabilities in rows {_first(bad)}")
    bad = ((arr < 0) | (arr > 1)).any(axis=1)
    if bad.any():
        raise DataError(f"{name}: probabilities outside [0, 1] in rows {_first(bad)}")
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1.0) > tol
    if bad.any():
        raise DataError(
            f"{name}: rows {_first(bad)} sum to {sums[bad][0]:.6g}, not 1 (tolerance {tol:g}); "
            "give one probability per level, summing to 1"
        )
    return arr


def _codes(y: ArrayLike, n: int, K: int, name: str = "y") -> NDArray[np.intp]:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size != n:
        raise DataError(
            f"{name}: expected {n} outcomes to match the forecasts, got shape {arr.shape}"
        )
    as_float = arr.astype(float)
    bad = ~np.isin(as_float, np.arange(K, dtype=float))
    if bad.any():
        raise DataError(
            f"{name}: ordinal outcomes must be level codes 0..{K - 1}; "
            f"found {as_float[bad][0]:g} at index {_first(bad)}"
        )
    return as_float.astype(np.intp)


def _sites(sites: ArrayLike, n: int) -> tuple[NDArray[np.intp], int]:
    """Integer site codes 0..S-1 and S."""
    arr = np.asarray(sites)
    if arr.ndim != 1 or arr.size != n:
        raise DataError(
            f"sites: expected {n} site ids (one per observation), got shape {arr.shape}"
        )
    _, codes = np.unique(arr.astype(str) if arr.dtype == object else arr, return_inverse=True)
    return codes.astype(np.intp), int(codes.max()) + 1


def _bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise DataError(f"bins: expected a positive whole number of bins, got {bins!r}")
    return int(bins)


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# --------------------------------------------------------------------------------------------
# proper scores
# --------------------------------------------------------------------------------------------


def log_score(p: ArrayLike, y: ArrayLike, *, pointwise: bool = False) -> float | FloatArray:
    """Log score of binary forecasts: mean log predictive density per observation.

    ``y log p + (1 - y) log(1 - p)``, higher is better (0 is perfect). A forecast of exactly 0
    for an outcome that happened scores ``-inf``, as a proper log score must.

    Parameters
    ----------
    p
        Forecast probabilities of ``y = 1``, shape ``(n,)``.
    y
        Observed outcomes, 0 or 1.
    pointwise
        Return the ``n`` per-observation scores instead of their mean.

    Returns
    -------
    float or ndarray
    """
    p = _prob(p)
    y = _binary(y, p.size)
    with np.errstate(divide="ignore"):
        lp = np.where(y == 1, np.log(p), np.log1p(-p))
    return lp if pointwise else float(lp.mean())


def log_score_ordinal(P: ArrayLike, y: ArrayLike, *, pointwise: bool = False) -> float | FloatArray:
    """Log score of ordinal (categorical) forecasts: mean of ``log P[i, y_i]``; higher is better.

    Parameters
    ----------
    P
        Level probabilities, shape ``(n, K)``, rows summing to 1 (lowest level first).
    y
        Observed level codes ``0..K-1``.
    pointwise
        Return per-observation scores instead of their mean.
    """
    P = _prob_matrix(P)
    y = _codes(y, P.shape[0], P.shape[1])
    with np.errstate(divide="ignore"):
        lp = np.log(P[np.arange(P.shape[0]), y])
    return lp if pointwise else float(lp.mean())


def log_score_binomial(
    p: ArrayLike, k: ArrayLike, n: ArrayLike, *, pointwise: bool = False
) -> float | FloatArray:
    """Plug-in log score of binomial forecasts: mean of ``log Binomial(k_i | n_i, p_i)`` per row.

    One observation is one row (k successes of n units), binomial coefficient included. This is
    the log predictive density of the row only when the forecast really is Binomial(n, p) (a
    forecaster who takes ``p`` as known). Given a posterior-mean ``p`` it is a **plug-in**
    summary, not the score of the model's predictive mixture: use
    :func:`log_score_binomial_mixture` with the per-draw ``p`` for that.

    Parameters
    ----------
    p
        Forecast probability per unit, shape ``(n_rows,)``.
    k, n
        Successes and trials per row (whole numbers, ``0 <= k <= n``, ``n >= 1``).
    pointwise
        Return per-row scores instead of their mean.
    """
    p = _prob(p)
    k_arr, n_arr = _counts(k, n, p.size)
    with np.errstate(divide="ignore"):
        lp = stats.binom.logpmf(k_arr, n_arr, p)
    return lp if pointwise else float(lp.mean())


def log_score_binomial_mixture(
    p_draws: ArrayLike, k: ArrayLike, n: ArrayLike, *, pointwise: bool = False
) -> float | FloatArray:
    """Log score of binomial forecasts given as draws: ``log mean_s Binomial(k_i | n_i, p_si)``.

    The forecast of row ``i`` is the mixture of binomials over the ``S`` draws ``p_si`` (posterior
    draws, each with its own drawn site effect for a new site): the model's full predictive
    distribution of the row, which is over-dispersed relative to any one binomial. Computed as a
    log-mean-exp over draws, so it stays finite when single draws underflow.

    Parameters
    ----------
    p_draws
        Probability per unit, shape ``(S, n_rows)``: one row of draws per posterior draw.
    k, n
        Successes and trials per row (whole numbers, ``0 <= k <= n``, ``n >= 1``).
    pointwise
        Return per-row scores instead of their mean.

    Examples
    --------
    With one draw this is the plug-in score; with draws of ``logit p ~ N(-0.3, 1)`` and ``n = 8``
    it approaches ``log ∫ Binomial(k | 8, expit z) φ(z; -0.3, 1) dz`` (-2.68 at ``k = 0``, where
    the plug-in ``Binomial(0 | 8, E p)`` gives -4.61).
    """
    draws = np.asarray(p_draws, dtype=float)
    if draws.ndim != 2 or draws.shape[0] < 1:
        raise DataError(
            f"p_draws: expected an (S, n) array of per-draw probabilities, got shape {draws.shape}"
        )
    _prob(draws.ravel(), "p_draws")
    k_arr, n_arr = _counts(k, n, draws.shape[1])
    with np.errstate(divide="ignore"):
        per_draw = stats.binom.logpmf(k_arr[None, :], n_arr[None, :], draws)
    lp = special.logsumexp(per_draw, axis=0) - np.log(draws.shape[0])
    return lp if pointwise else float(lp.mean())


def log_score_beta_binomial(
    p: ArrayLike, rho: ArrayLike, k: ArrayLike, n: ArrayLike, *, pointwise: bool = False
) -> float | FloatArray:
    """Log score of beta-binomial forecasts with mean ``p`` and intra-row correlation ``rho``.

    ``BetaBinomial(k | n, a, b)`` with ``a = p (1 - rho) / rho``, ``b = (1 - p)(1 - rho) / rho``:
    the units of a row share a probability drawn from Beta(a, b), so the row's count varies more
    than a binomial's. ``rho = 0`` is the binomial (:func:`log_score_binomial`).

    Parameters
    ----------
    p
        Mean probability per unit, shape ``(n_rows,)``, strictly between 0 and 1 where
        ``rho > 0``.
    rho
        Intra-row correlation in ``[0, 1)``, one per row or a scalar.
    k, n
        Successes and trials per row.
    pointwise
        Return per-row scores instead of their mean.
    """
    p = _prob(p)
    k_arr, n_arr = _counts(k, n, p.size)
    rho_arr = np.broadcast_to(np.asarray(rho, dtype=float), p.shape)
    if not np.all(np.isfinite(rho_arr)) or np.any((rho_arr < 0) | (rho_arr >= 1)):
        raise DataError("rho: the intra-row correlation must be in [0, 1)")
    spread = (rho_arr > 0) & (p > 0) & (p < 1)
    with np.errstate(divide="ignore"):
        lp = stats.binom.logpmf(k_arr, n_arr, p)
    if spread.any():
        scale = (1 - rho_arr[spread]) / rho_arr[spread]
        lp[spread] = stats.betabinom.logpmf(
            k_arr[spread], n_arr[spread], p[spread] * scale, (1 - p[spread]) * scale
        )
    return lp if pointwise else float(lp.mean())


def intra_row_correlation(k: ArrayLike, n: ArrayLike) -> float:
    """ANOVA estimate of the intra-row correlation of binomial rows, clipped at 0.

    Each row is a cluster of ``n_i`` binary units with ``k_i`` successes. With ``N = Σ n_i``,
    ``R`` rows, pooled rate ``p̂ = Σ k_i / N`` and row rates ``p_i = k_i / n_i``::

        MSB = Σ n_i (p_i - p̂)² / (R - 1)
        MSW = Σ n_i p_i (1 - p_i) / (N - R)
        n0  = (N - Σ n_i² / N) / (R - 1)
        rho = (MSB - MSW) / (MSB + (n0 - 1) MSW)

    the one-way ANOVA estimator for clustered binary data (Fleiss 1981; Ridout, Demétrio & Firth
    1999, estimator "A"). Returns 0 when there is no between-row excess (``rho <= 0``) or too
    little data (fewer than 2 rows, or ``N <= R``).
    """
    k_arr = np.asarray(k, dtype=float)
    k_arr, n_arr = _counts(k_arr, n, k_arr.size)
    rows, total = k_arr.size, n_arr.sum()
    if rows < 2 or total <= rows:
        return 0.0
    rate = k_arr / n_arr
    pooled = k_arr.sum() / total
    msb = np.sum(n_arr * (rate - pooled) ** 2) / (rows - 1)
    msw = np.sum(n_arr * rate * (1 - rate)) / (total - rows)
    n0 = (total - np.sum(n_arr**2) / total) / (rows - 1)
    denom = msb + (n0 - 1) * msw
    if denom <= 0:
        return 0.0
    return float(np.clip((msb - msw) / denom, 0.0, 0.999))


def _counts(k: ArrayLike, n: ArrayLike, size: int) -> tuple[FloatArray, FloatArray]:
    k_arr = np.asarray(k, dtype=float)
    n_arr = np.broadcast_to(np.asarray(n, dtype=float), k_arr.shape)
    if k_arr.ndim != 1 or k_arr.size != size:
        raise DataError(
            f"k: expected {size} success counts to match the forecasts, got shape {k_arr.shape}"
        )
    bad = ~np.isfinite(n_arr) | (n_arr < 1) | (n_arr != np.round(n_arr))
    if bad.any():
        raise DataError(f"trials: must be whole numbers >= 1; bad at index {_first(bad)}")
    bad = ~np.isfinite(k_arr) | (k_arr < 0) | (k_arr > n_arr) | (k_arr != np.round(k_arr))
    if bad.any():
        raise DataError(
            f"k: successes must be whole numbers between 0 and trials; bad at index {_first(bad)}"
        )
    return k_arr, n_arr


def brier(p: ArrayLike, y: ArrayLike, *, pointwise: bool = False) -> float | FloatArray:
    """Brier score of binary forecasts: mean of ``(p - y)^2``; lower is better (0 is perfect).

    Parameters
    ----------
    p
        Forecast probabilities of ``y = 1``.
    y
        Observed outcomes, 0 or 1.
    pointwise
        Return per-observation squared errors instead of their mean.
    """
    p = _prob(p)
    y = _binary(y, p.size)
    sq = (p - y) ** 2
    return sq if pointwise else float(sq.mean())


def rps(P: ArrayLike, y: ArrayLike, *, pointwise: bool = False) -> float | FloatArray:
    """Ranked probability score of ordinal forecasts, normalised to [0, 1]; lower is better.

    ``RPS_i = 1/(K-1) * sum_{k=1}^{K-1} (F_ik - O_ik)^2`` with ``F`` the forecast cumulative
    probability ``P(Y <= k-1)`` and ``O`` the observed step ``1[y_i <= k-1]``. Dividing by
    ``K - 1`` (the convention of Epstein 1969 and Murphy 1971's normalised form) puts every
    ``K`` on [0, 1] and makes the ``K = 2`` case equal the Brier score.

    Parameters
    ----------
    P
        Level probabilities, shape ``(n, K)``, rows summing to 1 (lowest level first).
    y
        Observed level codes ``0..K-1``.
    pointwise
        Return per-observation scores instead of their mean.
    """
    P = _prob_matrix(P)
    n, K = P.shape
    y = _codes(y, n, K)
    F = np.cumsum(P, axis=1)[:, :-1]
    O = (y[:, None] <= np.arange(K - 1)[None, :]).astype(float)  # noqa: E741
    per = ((F - O) ** 2).sum(axis=1) / (K - 1)
    return per if pointwise else float(per.mean())


# --------------------------------------------------------------------------------------------
# discrimination and calibration
# --------------------------------------------------------------------------------------------


def auc(p: ArrayLike, y: ArrayLike) -> float:
    """Area under the ROC curve: the Mann–Whitney probability that a 1 outranks a 0.

    ``AUC = (U) / (n1 * n0)`` where ``U`` counts the (positive, negative) pairs with the positive
    forecast higher, ties counted as one half. Computed from average ranks, so ``O(n log n)``.

    Returns
    -------
    float
        NaN when ``y`` holds only one class (AUC is undefined there).
    """
    p = _prob(p)
    y = _binary(y, p.size)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(p)  # average ranks: a tie contributes one half to U
    u = ranks[y == 1].sum() - n1 * (n1 + 1) / 2
    return float(u / (n1 * n0))


class Calibration(NamedTuple):
    """Logistic recalibration of binary forecasts (Cox 1958; Van Calster et al. 2016).

    ``intercept`` is calibration-in-the-large: ``a`` in ``logit P(y=1) = a + logit(p)`` (0 when
    the forecasts are right on average). ``slope`` is ``b`` in ``logit P(y=1) = a' + b logit(p)``
    (1 when the spread is right; < 1 means the forecasts are too extreme). The standard errors
    come from the inverse Fisher information at the fit. Every field is NaN when the fit is not
    defined (one outcome class only, one distinct forecast for the slope, or separation).
    """

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float


def calibration_intercept_slope(p: ArrayLike, y: ArrayLike) -> Calibration:
    """Calibration intercept (in the large) and slope by logistic recalibration.

    Both are maximum-likelihood fits by Newton–Raphson (IRLS) in numpy: the slope from the
    logistic regression of ``y`` on ``logit(p)`` with a free intercept, the intercept from the
    regression with ``logit(p)`` as an offset and no slope. Forecasts are clipped to
    ``[1e-10, 1 - 1e-10]`` before the logit, so a forecast of exactly 0 or 1 stays finite.

    Parameters
    ----------
    p
        Forecast probabilities of ``y = 1``.
    y
        Observed outcomes, 0 or 1.

    Returns
    -------
    Calibration
        ``(intercept, slope, intercept_se, slope_se)``.
    """
    p = _prob(p)
    y = _binary(y, p.size)
    nan = float("nan")
    if y.min() == y.max():
        return Calibration(nan, nan, nan, nan)
    lp = special.logit(np.clip(p, LOGIT_EPS, 1 - LOGIT_EPS))
    ones = np.ones((p.size, 1))
    a, a_cov = _logistic_newton(ones, y, offset=lp)
    intercept, intercept_se = (a[0], np.sqrt(a_cov[0, 0])) if a is not None and a_cov is not None else (nan, nan)
    if np.ptp(lp) > 0:
        b, b_cov = _logistic_newton(np.column_stack([ones[:, 0], lp]), y)
    else:
        b, b_cov = None, None
    slope, slope_se = (b[1], np.sqrt(b_cov[1, 1])) if b is not None and b_cov is not None else (nan, nan)
    return Calibration(float(intercept), float(slope), float(intercept_se), float(slope_se))


def _logistic_newton(
    X: FloatArray,
    y: FloatArray,
    offset: FloatArray | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> tuple[FloatArray, FloatArray] | tuple[None, None]:
    """Maximum-likelihood logistic regression by Newton's method with step halving.

    Returns ``(beta, covariance)``, or ``(None, None)`` when the fit does not converge to a
    finite optimum (complete separation drives a coefficient to infinity).
    """
    off = np.zeros(y.size) if offset is None else offset
    beta = np.zeros(X.shape[1])

    def loglik(b: FloatArray) -> float:
        eta = off + X @ b
        # y*eta - log(1 + e^eta), stable for large |eta|
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(max_iter):
        mu = special.expit(off + X @ beta)
        w = mu * (1 - mu)
        info = X.T @ (X * w[:, None])
        try:
            step = np.linalg.solve(info, X.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None, None
        t = 1.0
        while True:  # halve the step until the likelihood does not fall
            trial = beta + t * step
            value = loglik(trial)
            if value >= current - 1e-12 or t < 1e-8:
                break
            t /= 2
        beta, previous, current = trial, current, value
        if np.abs(beta).max() > 50:  # |logit coefficient| > 50: separation, no finite MLE
            return None, None
        if abs(current - previous) < tol * (1 + abs(current)) and np.abs(t * step).max() < 1e-8:
            break
    else:
        return None, None
    mu = special.expit(off + X @ beta)
    info = X.T @ (X * (mu * (1 - mu))[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return None, None
    return beta, cov


class ReliabilityBins(NamedTuple):
    """Binned forecasts and outcomes: one entry per bin (``count == 0`` where a bin is empty)."""

    edges: FloatArray  #: bin edges, length ``bins + 1``
    count: NDArray[np.int64]  # type: ignore[assignment]  # shadows tuple.count; a public field name
    #: observations per bin
    mean_forecast: FloatArray  #: mean ``p`` in the bin (NaN if empty)
    observed: FloatArray  #: observed frequency of ``y = 1`` in the bin (NaN if empty)
    index: NDArray[np.intp]  # type: ignore[assignment]  # shadows tuple.index; a public field name
    #: bin of each observation


def reliability_bins(p: ArrayLike, y: ArrayLike, bins: int = 10) -> ReliabilityBins:
    """Group forecasts into equal-width bins on [0, 1] and summarise each bin.

    Bin ``k`` holds ``k/B <= p < (k+1)/B``; ``p = 1`` goes in the last bin.
    """
    p = _prob(p)
    y = _binary(y, p.size)
    B = _bins(bins)
    idx = np.minimum(np.floor(p * B).astype(np.intp), B - 1)
    count = np.bincount(idx, minlength=B)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=B) / count
        obs = np.bincount(idx, weights=y, minlength=B) / count
    return ReliabilityBins(np.linspace(0.0, 1.0, B + 1), count, mean_p, obs, idx)


def brier_decomposition(p: ArrayLike, y: ArrayLike, bins: int = 10) -> dict[str, float]:
    """Murphy's (1973) reliability–resolution–uncertainty decomposition of the Brier score.

    With ``N`` observations in bins ``k`` of size ``n_k``, mean forecast ``p̄_k`` and observed
    frequency ``ō_k``, and overall frequency ``ō``::

        REL = (1/N) Σ n_k (p̄_k - ō_k)^2      (lower is better)
        RES = (1/N) Σ n_k (ō_k - ō)^2        (higher is better)
        UNC = ō (1 - ō)

    ``REL - RES + UNC`` equals the Brier score exactly only when the forecasts are constant
    within each bin (for example, forecasts rounded to the bin centres). Otherwise the binned
    version leaves a remainder from the within-bin spread of forecasts (Stephenson, Coelho &
    Jolliffe 2008), returned as ``residual = brier - (REL - RES + UNC)``.

    Returns
    -------
    dict
        ``reliability``, ``resolution``, ``uncertainty``, ``brier`` (the score itself) and
        ``residual``.
    """
    rb = reliability_bins(p, y, bins)
    p_arr = np.asarray(p, dtype=float)
    y_arr = np.asarray(y, dtype=float)
    N = p_arr.size
    ybar = float(y_arr.mean())
    has = rb.count > 0
    n_k = rb.count[has]
    rel = float(np.sum(n_k * (rb.mean_forecast[has] - rb.observed[has]) ** 2) / N)
    res = float(np.sum(n_k * (rb.observed[has] - ybar) ** 2) / N)
    unc = ybar * (1 - ybar)
    bs = float(np.mean((p_arr - y_arr) ** 2))
    return {
        "reliability": rel,
        "resolution": res,
        "uncertainty": unc,
        "brier": bs,
        "residual": bs - (rel - res + unc),
    }


def ece(p: ArrayLike, y: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error: ``Σ (n_k / N) |p̄_k - ō_k|`` over equal-width bins."""
    rb = reliability_bins(p, y, bins)
    has = rb.count > 0
    gap = np.abs(rb.mean_forecast[has] - rb.observed[has])
    return float(np.sum(rb.count[has] * gap) / rb.count.sum())


def pit_randomised(
    p: ArrayLike, y: ArrayLike, rng: np.random.Generator | int | None = None
) -> FloatArray:
    """Randomised probability integral transform for discrete outcomes.

    ``PIT_i = F_i(y_i - 1) + V_i (F_i(y_i) - F_i(y_i - 1))`` with ``V_i ~ Uniform(0, 1)`` and
    ``F_i`` the forecast CDF (Brockwell 2007; Czado, Gneiting & Held 2009). Under a calibrated
    forecaster the values are exactly Uniform(0, 1); a U shape means over-confident forecasts.

    Parameters
    ----------
    p
        Either binary forecasts ``p`` of ``y = 1``, shape ``(n,)``, with ``y`` in {0, 1}, or
        ordinal level probabilities ``P``, shape ``(n, K)``, with ``y`` codes ``0..K-1``.
    y
        Observed outcomes.
    rng
        Generator or seed; ``V`` is ``rng.random(n)``, drawn once in observation order.

    Returns
    -------
    ndarray
        ``n`` PIT values in [0, 1].
    """
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 1:
        p1 = _prob(arr)
        y1 = _binary(y, p1.size)
        P = np.column_stack([1 - p1, p1])
        codes = y1.astype(np.intp)
    else:
        P = _prob_matrix(arr)
        codes = _codes(y, P.shape[0], P.shape[1])
    cdf = np.column_stack([np.zeros(P.shape[0]), np.cumsum(P, axis=1)])
    rows = np.arange(P.shape[0])
    lower, upper = cdf[rows, codes], np.minimum(cdf[rows, codes + 1], 1.0)
    v = _rng(rng).random(P.shape[0])
    return lower + v * (upper - lower)


# --------------------------------------------------------------------------------------------
# site bootstrap and skill
# --------------------------------------------------------------------------------------------


def site_resample_counts(
    sites: ArrayLike, n_boot: int = 1000, seed: np.random.Generator | int | None = None
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """How often each site is drawn in each of ``n_boot`` whole-site resamples.

    Returns
    -------
    codes : ndarray, shape (n,)
        Site code ``0..S-1`` of each observation.
    counts : ndarray, shape (n_boot, S)
        Times site ``s`` is drawn in resample ``b`` (each row sums to ``S``).
    """
    arr = np.asarray(sites)
    codes, S = _sites(arr, arr.size)
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise DataError(f"n_boot: expected a positive whole number of resamples, got {n_boot!r}")
    draws = _rng(seed).integers(0, S, size=(int(n_boot), S))
    counts = np.zeros((int(n_boot), S), dtype=np.int64)
    np.add.at(counts, (np.arange(int(n_boot))[:, None], draws), 1)
    return codes, counts


def _interval(point: float, reps: FloatArray) -> dict[str, float]:
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return {"mean": point, "q05": float("nan"), "q95": float("nan")}
    q05, q95 = np.quantile(finite, [0.05, 0.95])
    return {"mean": point, "q05": float(q05), "q95": float(q95)}


def bootstrap_over_sites(
    metric_fn: Callable[[FloatArray, FloatArray], float],
    p: ArrayLike,
    y: ArrayLike,
    sites: ArrayLike,
    n_boot: int = 1000,
    seed: np.random.Generator | int | None = None,
) -> dict[str, float]:
    """A metric with a 90% interval from resampling whole sites with replacement.

    Parameters
    ----------
    metric_fn
        ``metric_fn(p, y) -> float``, e.g. :func:`auc` or ``lambda p, y: ece(p, y, 20)``.
    p
        Forecasts, shape ``(n,)`` or ``(n, K)`` (passed through to ``metric_fn``).
    y
        Outcomes, shape ``(n,)``.
    sites
        Site id of each observation; the resampling unit.
    n_boot, seed
        Number of resamples and the seed (or Generator).

    Returns
    -------
    dict
        ``mean``: the metric on the full data (the point estimate, not the average of the
        resamples); ``q05``, ``q95``: the 5% and 95% quantiles of the resampled metric, ignoring
        resamples where it is undefined (NaN, e.g. AUC on a resample with one class).
    """
    p_arr = np.asarray(p, dtype=float)
    y_arr = np.asarray(y)
    if p_arr.shape[0] != y_arr.shape[0]:
        raise DataError(f"p and y have different lengths ({p_arr.shape[0]} vs {y_arr.shape[0]})")
    codes, counts = site_resample_counts(np.asarray(sites), n_boot, seed)
    if codes.size != y_arr.size:
        raise DataError(f"sites: expected {y_arr.size} site ids, got {codes.size}")
    point = float(metric_fn(p_arr, y_arr))
    reps = np.empty(counts.shape[0])
    obs = np.arange(y_arr.size)
    for b in range(counts.shape[0]):
        # each observation appears as often as its site was drawn
        idx = np.repeat(obs, counts[b, codes])
        reps[b] = metric_fn(p_arr[idx], y_arr[idx])
    return _interval(point, reps)


def skill(
    model_scores: ArrayLike,
    baseline_scores: ArrayLike,
    sites: ArrayLike,
    *,
    score: Literal["log_score", "brier", "rps"],
    n_boot: int = 1000,
    seed: np.random.Generator | int | None = None,
) -> dict[str, float]:
    """Skill of the model over a baseline from per-observation scores, with a paired site interval.

    Skill is ``model - baseline`` for the log score (higher is better) and ``baseline - model``
    for the Brier and ranked probability scores (losses), so positive always means the model is
    better. Each resample draws whole sites and scores model and baseline on the *same* draw,
    so the interval reflects the uncertainty of the difference, not of each score alone.

    Parameters
    ----------
    model_scores, baseline_scores
        Per-observation scores (``pointwise=True`` output of :func:`log_score`, :func:`brier`,
        :func:`rps`, ...), shape ``(n,)``.
    sites
        Site id of each observation.
    score
        Which score these are: ``"log_score"``, ``"brier"`` or ``"rps"``.
    n_boot, seed
        Number of site resamples and the seed (the same seed as :func:`bootstrap_over_sites`
        draws the same sites).

    Returns
    -------
    dict
        ``mean`` (the skill on the full data: mean per-observation difference), ``q05``, ``q95``.
    """
    if score not in HIGHER_IS_BETTER:
        raise DataError(f"score: unknown score {score!r}; use one of {', '.join(HIGHER_IS_BETTER)}")
    m = np.asarray(model_scores, dtype=float)
    b = np.asarray(baseline_scores, dtype=float)
    if m.ndim != 1 or m.shape != b.shape:
        raise DataError(
            "model_scores and baseline_scores must be 1-D and the same length "
            f"({m.shape} vs {b.shape})"
        )
    diff = m - b if HIGHER_IS_BETTER[score] else b - m
    codes, counts = site_resample_counts(np.asarray(sites), n_boot, seed)
    if codes.size != diff.size:
        raise DataError(f"sites: expected {diff.size} site ids, got {codes.size}")
    # Each resample's mean difference is (Σ_s c_bs · sum_s) / (Σ_s c_bs · n_s): one matrix product
    # for all resamples instead of a loop.
    with np.errstate(invalid="ignore"):
        site_sum = np.bincount(codes, weights=diff, minlength=counts.shape[1])
    site_n = np.bincount(codes, minlength=counts.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (counts @ site_sum) / (counts @ site_n)
    point = float(diff.mean())
    if not np.isfinite(point):
        return {"mean": point, "q05": point, "q95": point}
    return _interval(point, reps)


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------


def log_score_count_baseline(
    y_train: ArrayLike, exposure_train: ArrayLike, y: ArrayLike, exposure: ArrayLike
) -> FloatArray:
    """Per row, the log density of an intercept-only count forecast made from training rows.

    The forecast of a row with exposure ``e`` is NegativeBinomial with mean ``rate · e`` and
    variance ``mean + k · mean²``: ``rate = Σ y_train / Σ exposure_train`` and the overdispersion
    ``k`` a moment estimate from the training rows, ``Σ ((y − m)² − m) / Σ m²`` with
    ``m = rate · exposure_train`` (floored at 1e-8, where it is Poisson to many digits). So the
    baseline carries the spread between rows that a model's site effects carry, and a model's
    skill over it is what its predictors and site structure add.
    """
    y_tr = np.asarray(y_train, dtype=float)
    e_tr = np.asarray(exposure_train, dtype=float)
    rate = y_tr.sum() / e_tr.sum()
    m = rate * e_tr
    k = max(float(((y_tr - m) ** 2 - m).sum() / (m**2).sum()), 1e-8)
    mean = rate * np.asarray(exposure, dtype=float)
    y_arr = np.asarray(y, dtype=float)
    alpha = 1.0 / k
    log_total = np.log(mean + alpha)
    return np.asarray(
        special.gammaln(y_arr + alpha) - special.gammaln(alpha) - special.gammaln(y_arr + 1.0)
        + y_arr * (np.log(mean) - log_total) + alpha * (np.log(alpha) - log_total),
        dtype=float,
    )


def baseline_base_rate(
    y: ArrayLike, sites: ArrayLike, *, trials: ArrayLike | None = None, pseudo: float = 0.0
) -> FloatArray:
    """Leave-site-out base rate: for each observation, the outcome rate of the *other* sites.

    This is the intercept-only forecast a leave-site-out cross-validation would make for a new
    site. Pass fold labels instead of site ids to get the leave-fold-out rate of grouped K-fold.
    Note that leaving out one's own site makes this rate slightly anti-correlated with one's own
    outcome, so its AUC is below 0.5 and its calibration slope is not meaningful.

    Parameters
    ----------
    y
        Outcomes: 0/1, or success counts when ``trials`` is given.
    sites
        Site (or fold) id of each observation; at least two distinct values.
    trials
        Trials per row for binomial outcomes (rate = successes / trials over the other sites).
    pseudo
        Add ``pseudo`` successes and ``pseudo`` failures (e.g. 0.5, Jeffreys) so that a rate of
        exactly 0 or 1 (and a log score of ``-inf``) cannot occur.

    Returns
    -------
    ndarray, shape (n,)
    """
    y_arr = np.asarray(y, dtype=float)
    if trials is None:
        n_arr = np.ones_like(y_arr)
    else:
        n_arr = np.broadcast_to(np.asarray(trials, dtype=float), y_arr.shape)
    if trials is None:
        _binary(y_arr, y_arr.size)
    else:
        _counts(y_arr, n_arr, y_arr.size)
    codes, S = _sites(sites, y_arr.size)
    if S < 2:
        raise DataError(
            "sites: the leave-site-out base rate needs at least 2 sites; use baseline_fixed_rate "
            "with a rate from training data"
        )
    k_site = np.bincount(codes, weights=y_arr, minlength=S)
    n_site = np.bincount(codes, weights=n_arr, minlength=S)
    k_out = k_site.sum() - k_site[codes]
    n_out = n_site.sum() - n_site[codes]
    return (k_out + pseudo) / (n_out + 2 * pseudo)


def baseline_fixed_rate(
    y_train: ArrayLike, n: int, *, trials: ArrayLike | None = None
) -> FloatArray:
    """Intercept-only forecast from training data: the training outcome rate, repeated ``n`` times.

    Parameters
    ----------
    y_train
        Training outcomes (0/1, or success counts with ``trials``).
    n
        Number of forecasts to return (the size of the test set).
    trials
        Trials per training row for binomial outcomes.
    """
    y_arr = np.asarray(y_train, dtype=float)
    if y_arr.size == 0:
        raise DataError("y_train: no training outcomes to take a base rate from")
    if trials is None:
        _binary(y_arr, y_arr.size, "y_train")
        rate = y_arr.mean()
    else:
        k_arr, n_arr = _counts(y_arr, trials, y_arr.size)
        rate = k_arr.sum() / n_arr.sum()
    return np.full(int(n), float(rate))


def baseline_level_shares(
    y: ArrayLike, sites: ArrayLike, n_levels: int, *, pseudo: float = 0.0
) -> FloatArray:
    """Leave-site-out marginal level shares for ordinal outcomes.

    For each observation, the share of each level among the *other* sites' observations
    (plus ``pseudo`` per level), shape ``(n, K)``.
    """
    y_arr = np.asarray(y)
    codes_y = _codes(y_arr, y_arr.size, n_levels)
    codes, S = _sites(sites, y_arr.size)
    if S < 2:
        raise DataError(
            "sites: the leave-site-out level shares need at least 2 sites; use "
            "baseline_fixed_shares with shares from training data"
        )
    table = np.zeros((S, n_levels))
    np.add.at(table, (codes, codes_y), 1.0)
    out = table.sum(axis=0)[None, :] - table[codes] + pseudo
    return out / out.sum(axis=1, keepdims=True)


def baseline_fixed_shares(y_train: ArrayLike, n: int, n_levels: int) -> FloatArray:
    """Marginal level shares of the training outcomes, repeated for ``n`` forecasts: ``(n, K)``."""
    y_arr = np.asarray(y_train)
    if y_arr.size == 0:
        raise DataError("y_train: no training outcomes to take level shares from")
    codes = _codes(y_arr, y_arr.size, n_levels, "y_train")
    shares = np.bincount(codes, minlength=n_levels) / codes.size
    return np.tile(shares, (int(n), 1))


# --------------------------------------------------------------------------------------------
# the metrics table
# --------------------------------------------------------------------------------------------


def _log_density(values: ArrayLike, n: int, name: str) -> FloatArray:
    """Per-observation log predictive densities: ``n`` numbers, none NaN or ``+inf``."""
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise DataError(f"{name}: expected {n} per-observation log densities, got shape {arr.shape}")
    bad = np.isnan(arr) | (arr > 1e-9)
    if bad.any():
        raise DataError(
            f"{name}: log densities of discrete outcomes are <= 0 and not NaN; bad at index "
            f"{_first(bad)}"
        )
    return arr


def _binary_metrics(p: FloatArray, y: FloatArray, bins: int) -> dict[str, float]:
    cal = calibration_intercept_slope(p, y)
    return {
        "brier": float(brier(p, y)),
        "auc": auc(p, y),
        "calibration_slope": cal.slope,
        "calibration_intercept": cal.intercept,
        "ece": ece(p, y, bins),
    }


def score_table(
    p_or_P: ArrayLike,
    y: ArrayLike,
    sites: ArrayLike,
    *,
    family: Literal["bernoulli", "binomial", "ordinal"],
    baseline: ArrayLike | Literal["leave-site-out"] = "leave-site-out",
    trials: ArrayLike | None = None,
    log_density: ArrayLike | None = None,
    baseline_log_density: ArrayLike | None = None,
    bins: int = 10,
    n_boot: int = 1000,
    seed: np.random.Generator | int | None = None,
) -> dict[str, Any]:
    """Model scores, baseline scores and skill with paired site-bootstrap intervals.

    Parameters
    ----------
    p_or_P
        Forecasts: ``(n,)`` probabilities for ``bernoulli``/``binomial``, ``(n, K)`` level
        probabilities for ``ordinal``.
    y
        Outcomes: 0/1, success counts (``binomial``, with ``trials``), or level codes.
    sites
        Site id of each observation (the bootstrap unit and the unit left out by the default
        baseline).
    family
        ``"bernoulli"``, ``"binomial"`` or ``"ordinal"``.
    baseline
        ``"leave-site-out"`` (default: :func:`baseline_base_rate`, or
        :func:`baseline_level_shares` for ordinal), or the baseline forecasts themselves in the
        same shape as ``p_or_P`` (e.g. :func:`baseline_fixed_rate` of each fold's training set).
    trials
        Trials per row for ``binomial``.
    log_density, baseline_log_density
        Per-observation log predictive densities, shape ``(n,)``, to use as the model's (the
        baseline's) ``log_score`` instead of the score of ``p_or_P`` (``baseline``). For binomial
        rows this is how the full predictive is scored: pass
        ``log_score_binomial_mixture(p_draws, k, n, pointwise=True)``; without it the binomial
        ``log_score`` is the plug-in ``Binomial(k | n, p)`` of the given ``p``.
    bins
        Equal-width bins for ECE.
    n_boot, seed
        Site resamples for the skill intervals.

    Returns
    -------
    dict
        ``{"model": {...}, "baseline": {...}, "skill": {"log_score": {"mean", "q05", "q95"},
        "brier": {...}}}``. Metric keys: ``log_score``, ``brier``, ``auc``,
        ``calibration_slope``, ``calibration_intercept``, ``ece``, and ``rps`` for ordinal (with
        an ``rps`` skill too).

    Notes
    -----
    - ``log_score`` is the mean log predictive density per observation (per row for binomial,
      binomial coefficient included; per observation of the level for ordinal). For bernoulli
      and ordinal forecasts this is the score of the full predictive distribution; for binomial
      rows it is the plug-in ``Binomial(k | n, p)`` unless ``log_density`` is given (see the
      module docstring).
    - ``binomial``: Brier, AUC, calibration and ECE treat each of the ``n`` trials of a row as
      one Bernoulli unit with the row's forecast, so they are per unit; so is the Brier skill.
    - With the default leave-site-out baseline, the baseline's ``auc`` and
      ``calibration_slope`` are NaN: that forecast differs between observations only through
      leaving each site out, which makes it anti-correlated with the outcome by construction
      (AUC < 0.5, slope < 0), an artefact rather than a property of a base rate. Pass baseline
      forecasts explicitly to score them in full.
    - ``ordinal``: ``rps`` scores the full distribution; Brier, AUC, calibration and ECE score
      the binary event "top level" (embedded), whose forecast is ``P[:, -1]``.
    """
    if family not in family_names():
        raise DataError(f"family: unknown family {family!r}; use one of {', '.join(family_names())}")
    fam = get_family(family)
    if fam.counts_events:
        raise DataError(
            f"family: {family!r} forecasts are rates, not probabilities; mbct-bayes evaluate scores them "
            "(log score of the predictive mixture)"
        )
    site_arr = np.asarray(sites)
    y_arr = np.asarray(y, dtype=float)
    if fam.ordered_levels:
        P = _prob_matrix(p_or_P)
        n, K = P.shape
        codes = _codes(y_arr, n, K)
        _sites(site_arr, n)
        if isinstance(baseline, str):
            B = baseline_level_shares(codes, site_arr, K)
        else:
            B = _prob_matrix(baseline, "baseline")
            if B.shape != P.shape:
                raise DataError(
                    f"baseline: expected shape {P.shape} like the forecasts, got {B.shape}"
                )
        if log_density is not None or baseline_log_density is not None:
            raise DataError(
                "log_density: ordinal forecasts are scored from their level probabilities, which "
                "are the whole predictive; leave log_density out"
            )
        top = (codes == K - 1).astype(float)
        pointwise = {
            "log_score": (log_score_ordinal(P, codes, pointwise=True),
                          log_score_ordinal(B, codes, pointwise=True)),
            "brier": (brier(P[:, -1], top, pointwise=True), brier(B[:, -1], top, pointwise=True)),
            "rps": (rps(P, codes, pointwise=True), rps(B, codes, pointwise=True)),
        }
        model = {"log_score": float(np.mean(pointwise["log_score"][0]))}
        model |= _binary_metrics(P[:, -1], top, bins) | {"rps": float(np.mean(pointwise["rps"][0]))}
        base = {"log_score": float(np.mean(pointwise["log_score"][1]))}
        base |= _binary_metrics(B[:, -1], top, bins) | {"rps": float(np.mean(pointwise["rps"][1]))}
        score_sites = {"log_score": site_arr, "brier": site_arr, "rps": site_arr}
    else:
        p = _prob(p_or_P)
        n = p.size
        _sites(site_arr, n)
        if fam.counts_trials:
            if trials is None:
                raise DataError("trials: the binomial family needs the number of trials per row")
            k_arr, n_arr = _counts(y_arr, trials, n)
        else:
            k_arr, n_arr = _binary(y_arr, n), np.ones(n)
        if isinstance(baseline, str):
            b = baseline_base_rate(k_arr, site_arr, trials=n_arr if fam.counts_trials else None)
        else:
            b = _prob(baseline, "baseline")
            if b.shape != p.shape:
                raise DataError(
                    f"baseline: expected shape {p.shape} like the forecasts, got {b.shape}"
                )
        if fam.counts_trials:
            lm = log_score_binomial(p, k_arr, n_arr, pointwise=True)
            lb = log_score_binomial(b, k_arr, n_arr, pointwise=True)
            lm = lm if log_density is None else _log_density(log_density, n, "log_density")
            if baseline_log_density is not None:
                lb = _log_density(baseline_log_density, n, "baseline_log_density")
            # one Bernoulli unit per trial: k ones and n - k zeros per row
            reps = n_arr.astype(np.intp)
            rows = np.repeat(np.arange(n), reps)
            within = np.arange(rows.size) - np.repeat(np.cumsum(reps) - reps, reps)
            unit_y = (within < k_arr[rows]).astype(float)
            unit_p, unit_b, unit_sites = p[rows], b[rows], site_arr[rows]
        else:
            lm = log_score(p, k_arr, pointwise=True)
            lb = log_score(b, k_arr, pointwise=True)
            # a Bernoulli forecast's predictive is its p: a given density must agree with it
            for name, given, own in (("log_density", log_density, lm),
                                     ("baseline_log_density", baseline_log_density, lb)):
                if given is not None and not np.allclose(_log_density(given, n, name), own):
                    raise DataError(
                        f"{name}: differs from the log score of the bernoulli forecasts; for 0/1 "
                        "outcomes the forecast probability is the whole predictive, so leave it out"
                    )
            unit_y, unit_p, unit_b, unit_sites = k_arr, p, b, site_arr
        pointwise = {
            "log_score": (lm, lb),
            "brier": (brier(unit_p, unit_y, pointwise=True), brier(unit_b, unit_y, pointwise=True)),
        }
        model = {"log_score": float(np.mean(lm))} | _binary_metrics(unit_p, unit_y, bins)
        base = {"log_score": float(np.mean(lb))} | _binary_metrics(unit_b, unit_y, bins)
        score_sites = {"log_score": site_arr, "brier": unit_sites}
    if isinstance(baseline, str):
        # The leave-site-out rate varies only because each site's own outcomes are left out, so
        # it is anti-correlated with the outcome by construction: AUC below 0.5 and a negative
        # (or, with one observation per site, infinite) slope that say nothing about a base rate.
        base["auc"] = float("nan")
        base["calibration_slope"] = float("nan")
    # One seed for every score, so each skill interval resamples the same sites.
    boot_seed = seed.integers(2**63) if isinstance(seed, np.random.Generator) else seed
    skills = {
        name: skill(m, bl, score_sites[name], score=name, n_boot=n_boot, seed=boot_seed)  # type: ignore[arg-type]
        for name, (m, bl) in pointwise.items()
    }
    return {"model": model, "baseline": base, "skill": skills}
