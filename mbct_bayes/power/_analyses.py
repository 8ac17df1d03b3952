"""The analyses of a simulated two-arm cluster trial, vectorised over trials and designs.

Every function takes arrays of shape ``(sims, clusters)`` (one row per simulated trial, one
column per cluster position) and a list of designs ``clusters``: design ``c`` uses the first
``c`` columns of each arm. Each returns ``(significant, diff)``, both ``(sims, len(clusters))``:
two-sided ``p < alpha`` and the estimated difference (intervention minus control) whose sign
gives the direction.

* :func:`cluster_t_test` — pooled (Student) or Welch t on the cluster proportions;
* :func:`adjusted_t_test` — the two-stage covariate-adjusted cluster-level analysis;
* :func:`gee_test` — logistic GEE (independence) with a small-sample corrected sandwich.

Which of them hold their size, and where none can, is measured in :mod:`._size`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from mbct_bayes.errors import DataError

# Eigenvalues of X'X below this share of the largest count as 0 (sqrt: 1e-6 relative singular values).
_RANK_TOLERANCE = 1e-12
GEE_CORRECTIONS = ("kauermann-carroll", "mancl-derouen", "none")


def _pooled_t_decision(diff, ss, df, cs, alpha):
    """Two-sided pooled-t decision from a mean difference and the two arms' summed squares.

    ``se = sqrt(ss / df * 2 / c)``. A trial with no spread is significant only when the means
    differ (scipy's infinite t).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(ss / df * (2.0 / cs))
        significant = np.abs(diff) > stats.t.ppf(1.0 - alpha / 2.0, df) * se
    return significant | ((se == 0) & (diff != 0))


def cluster_t_test(
    prop_a: np.ndarray, prop_b: np.ndarray, clusters, alpha: float, *, welch: bool = False
):
    """Two-sample t-test on cluster proportions, vectorised over trials and designs.

    Pooled-variance (Student) t with ``2c - 2`` df by default — the classic unweighted
    cluster-level analysis (Hayes & Moulton 2017, ch. 9), valid with few clusters; ``welch=True``
    uses Welch's unequal-variance t. Equals ``scipy.stats.ttest_ind`` per trial (a trial with no
    variation in either arm is significant only if the arm means differ, as scipy's infinite t).
    Running sums over the cluster axis give every design ``c`` in one pass.
    """
    cs = np.asarray(clusters, dtype=np.int64)
    stats_ = []
    for prop in (prop_a, prop_b):
        # Shifting by the first cluster keeps sums of squares free of cancellation (and exactly 0
        # when all clusters agree); the variance is shift-invariant.
        x = prop - prop[:, :1]
        s1 = np.cumsum(x, axis=1)[:, cs - 1]
        s2 = np.cumsum(x * x, axis=1)[:, cs - 1]
        mean = s1 / cs
        ss = np.maximum(s2 - s1 * mean, 0.0)
        stats_.append((mean + prop[:, :1], ss))
    (mean_a, ss_a), (mean_b, ss_b) = stats_
    diff = mean_b - mean_a
    if not welch:
        return _pooled_t_decision(diff, ss_a + ss_b, 2 * cs - 2, cs, alpha), diff
    with np.errstate(divide="ignore", invalid="ignore"):
        va = ss_a / (cs - 1) / cs
        vb = ss_b / (cs - 1) / cs
        se = np.sqrt(va + vb)
        df = (va + vb) ** 2 / ((va**2 + vb**2) / (cs - 1))
        pval = 2.0 * special.stdtr(df, -np.abs(diff) / se)
        significant = np.where(se == 0, diff != 0, pval < alpha)
    return significant, diff


def adjusted_df(clusters_per_arm: int, covariates: int) -> int:
    """Degrees of freedom of the adjusted analysis, ``2c - 2 - p`` (Hayes & Moulton 2017, §10.4)."""
    return 2 * int(clusters_per_arm) - 2 - int(covariates)


def check_adjusted_design(clusters: Sequence[int] | np.ndarray, covariates: int) -> None:
    """Refuse designs too small for the adjusted analysis (``2c - 2 - p < 1``)."""
    small = [int(c) for c in clusters if adjusted_df(c, covariates) < 1]
    if small:
        need = (covariates + 3 + 1) // 2
        raise DataError(
            f"the adjusted analysis with {covariates} baseline covariates has 2c - 2 - {covariates} < 1 "
            f"degrees of freedom at {small[0]} clusters per arm; give at least {need} clusters per arm "
            "or use --analysis t"
        )


def adjusted_t_test(
    prop_a: np.ndarray,
    prop_b: np.ndarray,
    baseline_a: np.ndarray,
    baseline_b: np.ndarray,
    clusters,
    alpha: float,
):
    """Two-stage covariate-adjusted cluster-level analysis (Hayes & Moulton 2017, ch. 10).

    Stage 1 regresses the ``2c`` cluster proportions on the clusters' baseline covariates with
    an intercept, **ignoring arm**, and keeps the residuals ``e = (I - H) y``; stage 2 compares
    the arms' mean residuals, ``d'e`` with ``d`` the contrast (``+1/c`` intervention, ``-1/c``
    control), by a t-test with ``2c - 2 - p`` degrees of freedom, ``p`` the covariates in the
    regression. The difference returned is this adjusted difference in proportions.

    The stage-2 standard error is ``sqrt(s^2 d'(I - H) d)`` with
    ``s^2 = (e'e - (d'e)^2 / d'(I - H) d) / (2c - 2 - p)``: the residuals are not independent
    with variance ``sigma^2`` (stage 1 used ``p + 1`` df and absorbed the part of the contrast
    the covariates happen to carry). Treating them so — a pooled t on the residuals with
    ``2 / c`` — is conservative unless ``p`` is small against ``c``: measured type-I 0.005 at 4
    clusters per arm x 20 and 0.026 at 8 x 20 with 3 covariates (nominal 0.05). With this
    standard error the statistic equals the cluster-level ANCOVA t for arm
    (Frisch–Waugh–Lovell), exact for normal cluster-level errors.

    Batched least squares by the eigendecomposition of ``X'X``: covariates constant within a design, or collinear, are
    dropped for that trial (they add nothing to the fit), and ``p`` counts only the covariates
    kept (the numerical rank minus the intercept: singular values below 1e-6 of the largest).
    Covariates are centred and scaled per trial first, which changes neither the fit nor the
    residuals. Designs with ``2c - 2 - p < 1`` for the covariates given are refused.

    Parameters
    ----------
    prop_a, prop_b
        Cluster proportions, ``(sims, cmax)``.
    baseline_a, baseline_b
        Baseline covariates of each cluster, ``(sims, cmax, p)``.
    """
    cs = np.asarray(clusters, dtype=np.int64)
    base_a, base_b = np.asarray(baseline_a, float), np.asarray(baseline_b, float)
    if base_a.ndim != 3 or base_b.shape != base_a.shape or base_a.shape[:2] != np.shape(prop_a):
        raise DataError(
            f"baseline covariates have shapes {base_a.shape} and {base_b.shape}; give each arm's as "
            f"(sims, clusters, covariates) matching the outcomes {np.shape(prop_a)}"
        )
    p = base_a.shape[2]
    check_adjusted_design(cs, p)
    sims = base_a.shape[0]
    significant = np.zeros((sims, cs.size), dtype=bool)
    diff = np.zeros((sims, cs.size))
    for j, c in enumerate(cs):
        y = np.concatenate([prop_a[:, :c], prop_b[:, :c]], axis=1)
        x = np.concatenate([base_a[:, :c], base_b[:, :c]], axis=1)
        x = x - x.mean(axis=1, keepdims=True)
        scale = np.sqrt((x * x).mean(axis=1, keepdims=True))
        # A constant column becomes 0 and is dropped by the rank cut below.
        x = np.divide(x, scale, out=np.zeros_like(x), where=scale > 0)
        design = np.concatenate([np.ones((sims, 2 * c, 1)), x], axis=2)
        # Orthonormal basis of the design's column space from the small Gram matrix (batched
        # eigh on (p + 1) x (p + 1) is far faster than an SVD of each 2c x (p + 1) design).
        gram_values, gram_vectors = np.linalg.eigh(design.transpose(0, 2, 1) @ design)
        keep = gram_values > gram_values[:, -1:] * _RANK_TOLERANCE
        u = (design @ gram_vectors) * np.where(
            keep, 1.0 / np.sqrt(np.where(keep, gram_values, 1.0)), 0.0
        )[:, None, :]
        # Stage 1: residuals of the proportions and of the arm contrast (I - H) y, (I - H) d.
        contrast = np.concatenate([np.full(c, -1.0 / c), np.full(c, 1.0 / c)])
        resid = y - (u @ (y[:, None, :] @ u).transpose(0, 2, 1))[..., 0]
        contrast_resid = contrast - (u @ (contrast @ u)[..., None])[..., 0]
        diff[:, j] = resid @ contrast
        q = contrast_resid @ contrast  # d'(I - H)d
        df = 2 * c - 2 - (keep.sum(axis=1) - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rss = np.maximum((resid * resid).sum(axis=1) - diff[:, j] ** 2 / q, 0.0)
            se = np.sqrt(rss / df * q)
            crit = stats.t.ppf(1.0 - alpha / 2.0, df)
        # Rounding leaves ~1e-16 where the fit is exact: treat as no spread / no difference.
        exact = se <= 1e-12
        moved = np.abs(diff[:, j]) > 1e-12
        significant[:, j] = np.where(exact, moved, np.abs(diff[:, j]) > crit * se)
    return significant, diff


def gee_wald(y_a, n_a, y_b, n_b, *, correction: str = "kauermann-carroll"):
    """Logistic GEE log odds ratio of one design (all columns) and its corrected sandwich SE.

    Returns ``(log_or, se)`` per trial; both are non-finite where an arm is at 0 % or 100 %.
    The correction is as :func:`gee_test` describes.
    """
    power_of_leverage = {"kauermann-carroll": 1, "mancl-derouen": 2, "none": 0}.get(correction)
    if power_of_leverage is None:
        raise DataError(f"correction = {correction!r}; give one of {', '.join(GEE_CORRECTIONS)}")
    parts = []
    for y, n in ((np.asarray(y_a, float), n_a), (np.asarray(y_b, float), n_b)):
        n = np.broadcast_to(np.asarray(n, float), y.shape)
        total = n.sum(axis=1)
        pbar = y.sum(axis=1) / total
        resid = y - n * pbar[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            meat = (resid**2 / (1.0 - n / total[:, None]) ** power_of_leverage).sum(axis=1)
            parts.append((special.logit(pbar), meat / (pbar * (1.0 - pbar) * total) ** 2))
    (logit_a, var_a), (logit_b, var_b) = parts
    with np.errstate(invalid="ignore"):
        return logit_b - logit_a, np.sqrt(var_a + var_b)


def gee_test(y_a, n_a, y_b, n_b, clusters, alpha: float, *, correction: str = "kauermann-carroll"):
    """Logistic GEE (independence working correlation) with a small-sample sandwich, t(2c - 2).

    With arm as the only covariate the GEE estimate is closed-form: each arm's proportion is
    its pooled ``sum y / sum n``, the log odds ratio their logit difference, and the sandwich
    variance of each arm's logit is ``sum_j (r_j^2 / (1 - h_j)^k) / (pbar (1 - pbar) N)^2`` with
    cluster residual totals ``r_j = y_j - n_j pbar`` and leverages ``h_j = n_j / N`` (the
    cluster's block of the hat matrix is ``J / N``, whose only non-zero eigenvalue acts on the
    residual total):

    * ``"kauermann-carroll"`` (default), ``k = 1``: Kauermann & Carroll (2001, JASA 96:1387),
      residuals scaled by ``(I - H_jj)^(-1/2)``, with a t reference on ``2c - 2`` df (Li &
      Redden 2015, Stat Med 34:281, recommend KC with t(2c - 2) for few clusters);
    * ``"mancl-derouen"``, ``k = 2``: Mancl & DeRouen (2001, Biometrics 57:126), statsmodels'
      ``cov_type="bias_reduced"`` — conservative with few clusters (type-I 0.022-0.028 at 4 x 20);
    * ``"none"``, ``k = 0``: the uncorrected sandwich (statsmodels ``"robust"``) — liberal.

    Arms at 0 % or 100 %: the log odds ratio is infinite (separation), so GEE has no estimate.
    Such a trial is decided by the pooled t-test on its cluster proportions (what an analyst
    does when the GEE cannot be fitted, and a test that holds its size there); counting it as
    not significant instead makes GEE conservative (type-I 0.000 at 4 x 1 and 4 x 5, p0 0.1).
    The measured size of each analysis is in ``mbct_bayes.power._size`` and the README.
    """
    cs = np.asarray(clusters, dtype=np.int64)
    y_a, y_b = np.asarray(y_a, float), np.asarray(y_b, float)
    n_a = np.broadcast_to(np.asarray(n_a, float), y_a.shape)
    n_b = np.broadcast_to(np.asarray(n_b, float), y_b.shape)
    t_significant, _ = cluster_t_test(y_a / n_a, y_b / n_b, cs, alpha)
    significant = np.zeros((y_a.shape[0], len(cs)), dtype=bool)
    diff = np.zeros((y_a.shape[0], len(cs)))
    for j, c in enumerate(cs):
        log_or, se = gee_wald(y_a[:, :c], n_a[:, :c], y_b[:, :c], n_b[:, :c], correction=correction)
        fitted = np.isfinite(log_or)
        with np.errstate(invalid="ignore"):
            wald = np.abs(log_or) > stats.t.ppf(1.0 - alpha / 2.0, 2 * c - 2) * se
        significant[:, j] = np.where(fitted, wald, t_significant[:, j])
        # The difference of pooled proportions, intervention minus control (its sign is the
        # direction of the log odds ratio).
        diff[:, j] = y_b[:, :c].sum(1) / n_b[:, :c].sum(1) - y_a[:, :c].sum(1) / n_a[:, :c].sum(1)
    return significant, diff
