"""Reliability of survey scales: Cronbach's alpha, McDonald's omega, item-rest r, ICC(1)/ICC(2).

Numpy kernels on plain arrays (respondents x items, NaN = missing), thin pandas wrappers on top.

- **Alpha** follows ``psych::alpha`` (Revelle): the item covariance matrix ``C`` from
  pairwise-complete observations (R's ``cov(x, use = "pairwise")``), then
  ``alpha = k / (k - 1) * (1 - tr(C) / sum(C))``. The listwise variant first drops every
  respondent with a missing item.
- **Omega** (total, one factor; McDonald 1999): a single factor fitted by **minimum residual**
  (unweighted least squares on the off-diagonal correlations, as ``psych::fa(fm = "minres")``,
  the factoring ``psych::omega`` uses) to the pairwise-complete correlation matrix, then
  ``omega = (sum lambda)^2 / ((sum lambda)^2 + sum psi)`` with ``psi = 1 - lambda^2``.
- **Item-rest correlation**: each item's correlation with the sum of the other items, from the
  same pairwise covariance matrix (``psych::alpha``'s ``r.drop``).
- **ICC(1), ICC(2)** of respondent scores within sites (Bliese 2000), from the one-way ANOVA
  mean squares: ``ICC(1) = (MSB - MSW) / (MSB + (k0 - 1) MSW)`` and
  ``ICC(2) = (MSB - MSW) / MSB``, where ``k0 = (N - sum n_j^2 / N) / (J - 1)`` is the usual
  group size for unequal groups (it equals n when every group has n members).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from mbct_bayes.errors import DataError
from mbct_bayes.survey.scoring import CONSTRUCTS, _as_codebook, keyed_items, score_responses, validate_responses

__all__ = [
    "cronbach_alpha",
    "icc1_icc2",
    "item_rest_correlations",
    "mcdonald_omega",
    "one_factor_minres",
    "pairwise_corr",
    "pairwise_cov",
    "reliability",
]


def _as_matrix(items: np.ndarray | pd.DataFrame) -> np.ndarray:
    x = items.to_numpy(dtype=float, na_value=np.nan) if isinstance(items, pd.DataFrame) else (
        np.asarray(items, dtype=float)
    )
    if x.ndim != 2:
        raise DataError(f"items must be a 2-D table (respondents x items), got {x.ndim} dimensions")
    return x


def pairwise_cov(x: np.ndarray) -> np.ndarray:
    """Covariance matrix from pairwise-complete observations (R ``use = "pairwise"``).

    Entry (i, j) uses the rows where both items are present, with means taken over those rows
    (as R and pandas do). Entries with fewer than two shared rows are NaN.
    """
    x = np.asarray(x, dtype=float)
    m = (~np.isnan(x)).astype(float)
    # centre on column means first: the one-pass formula below is then numerically safe
    xc = np.where(m > 0, x - np.nanmean(np.where(m > 0, x, np.nan), axis=0), 0.0)
    n = m.T @ m  # shared rows per pair
    s_i = xc.T @ m  # sum of item i over rows where j is present
    s_ij = xc.T @ xc
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (s_ij - s_i * s_i.T / n) / (n - 1)
    cov[n < 2] = np.nan
    return cov


def pairwise_corr(x: np.ndarray) -> np.ndarray:
    """Correlation matrix from pairwise-complete observations (R ``cor(x, use = "pairwise")``).

    Unlike rescaling :func:`pairwise_cov` by each item's own variance, entry (i, j) uses the
    means and variances of both items over the rows where both are present, as R does.
    """
    x = np.asarray(x, dtype=float)
    m = (~np.isnan(x)).astype(float)
    xc = np.where(m > 0, x - np.nanmean(np.where(m > 0, x, np.nan), axis=0), 0.0)
    n = m.T @ m
    s_i = xc.T @ m  # sum of x_i over rows shared with j
    ss_i = (xc**2).T @ m  # sum of x_i^2 over rows shared with j
    s_ij = xc.T @ xc
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = s_ij - s_i * s_i.T / n
        var_i = ss_i - s_i**2 / n
        r = cov / np.sqrt(var_i * var_i.T)
    r[n < 2] = np.nan
    np.fill_diagonal(r, np.where(np.diag(n) >= 2, 1.0, np.nan))
    return r


def _listwise(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x).any(axis=1)]


def _cov(x: np.ndarray, method: str) -> np.ndarray:
    if method == "pairwise":
        return pairwise_cov(x)
    if method == "listwise":
        complete = _listwise(x)
        if len(complete) < 2:
            return np.full((x.shape[1], x.shape[1]), np.nan)
        return np.cov(complete, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])
    raise DataError(f"method must be 'pairwise' or 'listwise', got {method!r}")


def alpha_from_cov(cov: np.ndarray) -> float:
    """Cronbach's alpha of a covariance matrix: ``k / (k - 1) * (1 - tr(C) / sum(C))``."""
    k = cov.shape[0]
    total = float(np.sum(cov))
    if k < 2 or not np.all(np.isfinite(cov)) or total <= 0:
        return float("nan")
    return k / (k - 1) * (1.0 - float(np.trace(cov)) / total)


def cronbach_alpha(items: np.ndarray | pd.DataFrame, *, method: str = "pairwise") -> float:
    """Cronbach's alpha of keyed items (reverse items already flipped).

    Parameters
    ----------
    items
        Respondents x items; NaN = missing.
    method
        ``"pairwise"`` (default; covariances from pairwise-complete observations, as
        ``psych::alpha``) or ``"listwise"`` (only respondents who answered every item).

    Returns
    -------
    float
        Alpha, or NaN with fewer than two items, fewer than two usable respondents, or an item
        pair never answered together.
    """
    return alpha_from_cov(_cov(_as_matrix(items), method))


def _corr_from_cov(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.outer(sd, sd)
    np.fill_diagonal(r, 1.0)
    return r


def one_factor_minres(corr: np.ndarray) -> np.ndarray:
    """Loadings of one factor fitted by minimum residual (ULS) to a correlation matrix.

    Minimises the sum of squared off-diagonal residuals ``sum_{i != j} (r_ij - l_i l_j)^2``
    (``psych::fa(fm = "minres")``), starting from the first principal axis with squared
    multiple correlations as communalities, and bounds ``|l_i| <= 1`` (no Heywood case).
    The sign is set so the loadings sum to a positive number.
    """
    r = np.asarray(corr, dtype=float)
    k = r.shape[0]
    iu = np.triu_indices(k, 1)
    try:
        smc = 1.0 - 1.0 / np.diag(np.linalg.inv(r))
    except np.linalg.LinAlgError:
        smc = np.full(k, 0.5)
    reduced = r.copy()
    np.fill_diagonal(reduced, np.clip(smc, 0.05, 1.0))
    vals, vecs = np.linalg.eigh(reduced)
    start = vecs[:, -1] * np.sqrt(max(vals[-1], 1e-6))
    start = np.clip(start * np.sign(start.sum() or 1.0), -0.995, 0.995)

    def resid(lam: np.ndarray) -> np.ndarray:
        return (r - np.outer(lam, lam))[iu]

    def jac(lam: np.ndarray) -> np.ndarray:
        j = np.zeros((len(iu[0]), k))
        rows = np.arange(len(iu[0]))
        j[rows, iu[0]] = -lam[iu[1]]
        j[rows, iu[1]] = -lam[iu[0]]
        return j

    fit = optimize.least_squares(
        resid, start, jac=jac, bounds=(-1.0, 1.0), method="trf", xtol=1e-14, ftol=1e-14,
        gtol=1e-14, max_nfev=2000,
    )
    lam = fit.x
    return lam if lam.sum() >= 0 else -lam


def mcdonald_omega(items: np.ndarray | pd.DataFrame, *, method: str = "pairwise") -> float:
    """McDonald's omega total from a one-factor minimum-residual fit.

    ``omega = (sum l)^2 / ((sum l)^2 + sum(1 - l^2))`` on the correlation matrix (pairwise
    complete by default, or ``method="listwise"``). NaN with fewer than three items (one factor
    is not identified from two) or an undefined correlation.
    """
    x = _as_matrix(items)
    if x.shape[1] < 3:
        return float("nan")
    if method == "pairwise":
        corr = pairwise_corr(x)
    else:
        cov = _cov(x, method)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = _corr_from_cov(cov) if np.all(np.diag(cov) > 0) else np.full_like(cov, np.nan)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    lam = one_factor_minres(corr)
    common = float(lam.sum()) ** 2
    unique = float(np.sum(1.0 - lam**2))
    return common / (common + unique)


def item_rest_correlations(
    items: np.ndarray | pd.DataFrame, *, method: str = "pairwise"
) -> pd.Series:
    """Correlation of each item with the sum of the other items (corrected item-total r).

    Computed from the (pairwise-complete) covariance matrix ``C``:
    ``r_i = (sum_j C_ij - C_ii) / sqrt(C_ii * (sum(C) - 2 sum_j C_ij + C_ii))``.
    Returns a Series indexed by item name (or position for an array).
    """
    x = _as_matrix(items)
    names = list(items.columns) if isinstance(items, pd.DataFrame) else list(range(x.shape[1]))
    cov = _cov(x, method)
    row = cov.sum(axis=1)
    diag = np.diag(cov)
    rest_var = cov.sum() - 2 * row + diag
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (row - diag) / np.sqrt(diag * rest_var)
    if x.shape[1] < 2:
        r = np.full(x.shape[1], np.nan)
    return pd.Series(r, index=names, name="item_rest_r")


def icc1_icc2(
    scores: pd.Series | np.ndarray, groups: pd.Series | np.ndarray
) -> tuple[float, float]:
    """ICC(1) and ICC(2) of scores nested in groups (one-way ANOVA; Bliese 2000).

    Parameters
    ----------
    scores
        One score per respondent; NaN scores are dropped.
    groups
        The group (site) of each respondent.

    Returns
    -------
    (float, float)
        ``ICC(1) = (MSB - MSW) / (MSB + (k0 - 1) MSW)`` (reliability of one respondent's score
        as a measure of the group mean; may be negative) and ``ICC(2) = (MSB - MSW) / MSB``
        (reliability of the group means). ``k0 = (N - sum n_j^2 / N) / (J - 1)`` adjusts for
        unequal group sizes. NaN when there are fewer than two groups, no group with two or
        more scores, or no variation.
    """
    y = np.asarray(scores, dtype=float)
    g = np.asarray(groups, dtype=object)
    if y.shape != g.shape:
        raise DataError(f"scores and groups differ in length ({y.size} vs {g.size})")
    keep = ~np.isnan(y)
    y, g = y[keep], g[keep]
    codes, inverse = np.unique(g.astype(str), return_inverse=True)
    n_groups, n = len(codes), len(y)
    if n_groups < 2 or n <= n_groups:
        return float("nan"), float("nan")
    n_j = np.bincount(inverse, minlength=n_groups).astype(float)
    mean_j = np.bincount(inverse, weights=y, minlength=n_groups) / n_j
    grand = y.mean()
    ss_between = float(np.sum(n_j * (mean_j - grand) ** 2))
    ss_within = float(np.sum((y - mean_j[inverse]) ** 2))
    msb = ss_between / (n_groups - 1)
    msw = ss_within / (n - n_groups)
    k0 = (n - np.sum(n_j**2) / n) / (n_groups - 1)
    denom1 = msb + (k0 - 1.0) * msw
    icc1 = (msb - msw) / denom1 if denom1 > 0 else float("nan")
    icc2 = (msb - msw) / msb if msb > 0 else float("nan")
    return float(icc1), float(icc2)


def _block_stats(x: np.ndarray, names: list[str], listwise: bool) -> dict[str, Any]:
    method = "listwise" if listwise else "pairwise"
    return {
        "alpha": cronbach_alpha(x, method=method),
        "alpha_listwise": cronbach_alpha(x, method="listwise"),
        "omega": mcdonald_omega(x, method=method),
        "n_items": len(names),
        "n_complete": len(_listwise(x)),
        "item_rest": item_rest_correlations(
            pd.DataFrame(x, columns=names), method=method
        ).to_dict(),
    }


def reliability(
    responses: pd.DataFrame,
    codebook: pd.DataFrame,
    *,
    listwise: bool = False,
    min_answered: float = 0.5,
) -> dict[str, Any]:
    """Reliability of each construct and subscale, on reverse-keyed items.

    Parameters
    ----------
    responses, codebook
        As returned by :func:`~mbct_bayes.survey.scoring.read_responses` and
        :func:`~mbct_bayes.survey.scoring.read_codebook`.
    listwise
        Compute ``alpha``, ``omega`` and the item-rest correlations on respondents who answered
        every item of the block (default: pairwise-complete). ``alpha_listwise`` is always given.
        Items a role is not asked are missing by design, so listwise deletion keeps only the
        roles asked every item.
    min_answered
        Passed to :func:`~mbct_bayes.survey.scoring.score_responses` for the ICCs.

    Returns
    -------
    dict
        ``{"E": {"alpha", "alpha_listwise", "omega", "n_items", "n_complete", "n_respondents",
        "n_sites", "icc1", "icc2", "item_rest": {item: r}, "subscales": {name: {...same...}}},
        "C": ..., "F": ...}``. The ICCs are of respondents' scale (subscale) scores within
        sites. Undefined values are NaN (``null`` in JSON).
    """
    codebook = _as_codebook(codebook)
    responses = validate_responses(responses, codebook)
    scores = score_responses(responses, codebook, min_answered=min_answered)
    x = keyed_items(responses, codebook)
    item_names = codebook["item"].tolist()
    construct = codebook["construct"].to_numpy(dtype=object)
    subscale = codebook["subscale"].to_numpy(dtype=object)
    sites = scores["site"].to_numpy(dtype=object)

    def icc_entry(col: str) -> dict[str, Any]:
        icc1, icc2 = icc1_icc2(scores[col], sites)
        scored = scores[col].notna()
        return {
            "icc1": icc1,
            "icc2": icc2,
            "n_respondents": int(scored.sum()),
            "n_sites": int(scores.loc[scored, "site"].nunique()),
        }

    out: dict[str, Any] = {}
    for c in CONSTRUCTS:
        cols = np.flatnonzero(construct == c)
        entry = _block_stats(x[:, cols], [item_names[j] for j in cols], listwise)
        entry.update(icc_entry(c))
        subs: dict[str, Any] = {}
        for s in dict.fromkeys(subscale[cols]):
            scols = np.flatnonzero((construct == c) & (subscale == s))
            sub = _block_stats(x[:, scols], [item_names[j] for j in scols], listwise)
            sub.update(icc_entry(f"{c}_{s}"))
            subs[str(s)] = sub
        entry["subscales"] = subs
        out[c] = entry
    return out
