"""Reliability: published reference values, closed forms, and a second implementation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.survey.reliability import (
    cronbach_alpha,
    icc1_icc2,
    item_rest_correlations,
    mcdonald_omega,
    one_factor_minres,
    pairwise_corr,
    pairwise_cov,
    reliability,
)
from mbct_bayes.survey.scoring import read_codebook, read_responses

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parent.parent

# bfi scoring keys (psych's bfi.keys): a leading '-' marks a reverse-keyed item (1-6 scale).
BFI_KEYS = {
    "agree": ["-A1", "A2", "A3", "A4", "A5"],
    "conscientious": ["C1", "C2", "C3", "-C4", "-C5"],
    "extraversion": ["-E1", "-E2", "E3", "E4", "E5"],
    "neuroticism": ["N1", "N2", "N3", "N4", "N5"],
    "openness": ["O1", "-O2", "O3", "O4", "-O5"],
}


@pytest.fixture(scope="module")
def bfi() -> pd.DataFrame:
    return pd.read_csv(DATA / "bfi.csv")


def keyed(bfi: pd.DataFrame, scale: str) -> pd.DataFrame:
    cols = {}
    for key in BFI_KEYS[scale]:
        name = key.lstrip("-")
        cols[name] = 7 - bfi[name] if key.startswith("-") else bfi[name]
    return pd.DataFrame(cols).astype(float)


# -- published reference values --------------------------------------------------------------


def test_bfi_agreeableness_matches_psych_alpha(bfi):
    """psych::alpha(bfi[1:5], check.keys = TRUE), A1 reversed (psych documentation, W. Revelle;
    the printed output reads raw_alpha 0.70, std.alpha 0.71, average_r 0.33).
    psych::alpha uses pairwise-complete covariances and correlations."""
    items = keyed(bfi, "agree")
    assert cronbach_alpha(items) == pytest.approx(0.70, abs=0.005)
    r = pairwise_corr(items.to_numpy())
    average_r = r[np.triu_indices(5, 1)].mean()
    std_alpha = 5 * average_r / (1 + 4 * average_r)
    assert std_alpha == pytest.approx(0.71, abs=0.005)
    assert average_r == pytest.approx(0.33, abs=0.005)


# psych::scoreItems(bfi.keys, bfi), "(Unstandardized) Alpha" row (Revelle, "Using R to score
# personality scales", personality-project.org; psych documentation of scoreItems / bfi).
# scoreItems replaces missing items by the item median (impute = "median", its default) before
# it computes alpha, so the same is done here.
SCORE_ITEMS_ALPHA = {
    "agree": 0.70,
    "conscientious": 0.72,
    "extraversion": 0.76,
    "neuroticism": 0.81,
    "openness": 0.60,
}


@pytest.mark.parametrize("scale", list(SCORE_ITEMS_ALPHA))
def test_bfi_scales_match_psych_score_items(bfi, scale):
    items = keyed(bfi, scale)
    imputed = items.fillna(items.median())
    assert cronbach_alpha(imputed) == pytest.approx(SCORE_ITEMS_ALPHA[scale], abs=0.005)


def test_pingouin_documented_psych_values_pairwise_and_listwise():
    """pingouin's cronbach_alpha docstring: on its shipped 'cronbach_wide_missing' data,
    psych::alpha(data, use="pairwise") = 0.732660835214447 and
    psych::alpha(data, use="complete.obs") = 0.8016949152542373."""
    data = pd.read_csv(DATA / "cronbach_wide_missing.csv", encoding="utf-8-sig")
    assert data.isna().any().any()
    assert cronbach_alpha(data) == pytest.approx(0.732660835214447, abs=1e-12)
    assert cronbach_alpha(data, method="listwise") == pytest.approx(0.8016949152542373, abs=1e-12)


def test_bfi_alpha_equals_pingouin_to_1e10(bfi):
    import pingouin as pg  # declared test dependency: imported, never skipped
    for scale in BFI_KEYS:
        items = keyed(bfi, scale)
        assert cronbach_alpha(items) == pytest.approx(pg.cronbach_alpha(items)[0], abs=1e-10)
        assert cronbach_alpha(items, method="listwise") == pytest.approx(
            pg.cronbach_alpha(items, nan_policy="listwise")[0], abs=1e-10
        )


def test_bfi_omega_matches_statsmodels_uls(bfi):
    """One-factor minres = iterated principal axis at convergence (both minimise the squared
    off-diagonal residuals); statsmodels' Factor(method='pa') is an independent implementation."""
    from statsmodels.multivariate import factor  # declared test dependency
    for scale in BFI_KEYS:
        items = keyed(bfi, scale)
        r = items.corr().to_numpy()  # pandas: pairwise-complete, as R's use = "pairwise"
        fit = factor.Factor(corr=r, n_factor=1, method="pa", smc=True).fit(maxiter=100000,
                                                                             tol=1e-14)
        lam = fit.loadings[:, 0] * np.sign(fit.loadings[:, 0].sum())
        expected = lam.sum() ** 2 / (lam.sum() ** 2 + np.sum(1 - lam**2))
        assert mcdonald_omega(items) == pytest.approx(expected, abs=1e-6)
        # total omega is at least alpha when one factor fits (alpha is a lower bound)
        assert mcdonald_omega(items) >= cronbach_alpha(items) - 0.01


# -- kernels and closed forms ----------------------------------------------------------------


def test_pairwise_cov_and_corr_match_pandas(bfi):
    x = bfi.to_numpy(dtype=float)
    np.testing.assert_allclose(pairwise_cov(x), bfi.cov().to_numpy(), atol=1e-12)
    np.testing.assert_allclose(pairwise_corr(x), bfi.corr().to_numpy(), atol=1e-12)


def test_alpha_closed_form_small():
    # C = [[1, .5], [.5, 1]] -> alpha = 2 * (1 - 2 / 3) = 2/3
    x = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [0.0, 0.0]])
    c = np.cov(x, rowvar=False)
    expected = 2 * (1 - np.trace(c) / c.sum())
    assert cronbach_alpha(x) == pytest.approx(expected, abs=1e-15)
    assert math.isnan(cronbach_alpha(x[:, :1]))
    assert math.isnan(cronbach_alpha(x[:1]))
    with pytest.raises(DataError, match=r"method must be 'pairwise' or 'listwise', got 'x'"):
        cronbach_alpha(x, method="x")


def _exact_sample(sigma: np.ndarray, n: int = 400, seed: int = 3) -> np.ndarray:
    """Data whose sample covariance is exactly ``sigma``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, sigma.shape[0]))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)).T)
    return z @ np.linalg.cholesky(sigma).T + 3.0


def test_omega_closed_form_one_factor():
    lam = np.array([0.8, 0.7, 0.6, 0.5])
    sigma = np.outer(lam, lam)
    np.fill_diagonal(sigma, 1.0)
    x = _exact_sample(sigma)
    np.testing.assert_allclose(one_factor_minres(sigma), lam, atol=1e-8)
    # 2.6^2 / (2.6^2 + 4 - 1.74) = 6.76 / 9.02
    expected = lam.sum() ** 2 / (lam.sum() ** 2 + np.sum(1 - lam**2))
    assert mcdonald_omega(x) == pytest.approx(expected, abs=1e-8)
    assert expected == pytest.approx(6.76 / 9.02, abs=1e-12)


def test_omega_equals_standardised_alpha_when_loadings_equal():
    lam = np.full(5, 0.6)
    sigma = np.outer(lam, lam)
    np.fill_diagonal(sigma, 1.0)
    x = _exact_sample(sigma)
    r = 0.36
    assert mcdonald_omega(x) == pytest.approx(5 * r / (1 + 4 * r), abs=1e-8)
    assert cronbach_alpha(x) == pytest.approx(5 * r / (1 + 4 * r), abs=1e-8)
    assert math.isnan(mcdonald_omega(x[:, :2]))  # one factor is not identified from 2 items


def test_item_rest_correlations_complete_data(bfi):
    items = keyed(bfi, "neuroticism").dropna()
    got = item_rest_correlations(items)
    for col in items.columns:
        rest = items.drop(columns=col).sum(axis=1)
        assert got[col] == pytest.approx(np.corrcoef(items[col], rest)[0, 1], abs=1e-12)
    assert list(got.index) == list(items.columns)


def test_icc_by_hand():
    # groups: [2, 4, 6] (mean 4), [5, 7] (mean 6), [1, 3] (mean 2); grand mean 4, N = 7, J = 3
    # SSB = 3*0 + 2*4 + 2*4 = 16, MSB = 16 / 2 = 8
    # SSW = (4 + 0 + 4) + (1 + 1) + (1 + 1) = 12, MSW = 12 / 4 = 3
    # k0 = (7 - (9 + 4 + 4) / 7) / 2 = 16/7
    # ICC(1) = (8 - 3) / (8 + (16/7 - 1) * 3) = 35/83;  ICC(2) = (8 - 3) / 8 = 5/8
    scores = pd.Series([2, 4, 6, 5, 7, 1, 3], dtype=float)
    groups = pd.Series(["a", "a", "a", "b", "b", "c", "c"])
    icc1, icc2 = icc1_icc2(scores, groups)
    assert icc1 == pytest.approx(35 / 83, abs=1e-14)
    assert icc2 == pytest.approx(5 / 8, abs=1e-14)
    # a missing score is dropped, not counted
    icc1_nan, _ = icc1_icc2(pd.concat([scores, pd.Series([np.nan])], ignore_index=True),
                            pd.concat([groups, pd.Series(["c"])], ignore_index=True))
    assert icc1_nan == pytest.approx(35 / 83, abs=1e-14)


def test_icc_balanced_matches_pingouin_icc1():
    import pingouin as pg  # declared test dependency: imported, never skipped
    rng = np.random.default_rng(7)
    site = np.repeat(np.arange(12), 4)
    y = rng.normal(size=12)[site] * 0.5 + rng.normal(size=site.size)
    long = pd.DataFrame({"site": site, "rater": np.tile(np.arange(4), 12), "y": y})
    table = pg.intraclass_corr(long, targets="site", raters="rater", ratings="y").set_index("Type")
    icc1, icc2 = icc1_icc2(long["y"], long["site"])
    assert icc1 == pytest.approx(table.loc["ICC(1,1)", "ICC"], abs=1e-10)
    assert icc2 == pytest.approx(table.loc["ICC(1,k)", "ICC"], abs=1e-10)


def test_icc_undefined_cases():
    assert all(math.isnan(v) for v in icc1_icc2([1.0, 2.0], ["a", "a"]))  # one group
    assert all(math.isnan(v) for v in icc1_icc2([1.0, 2.0], ["a", "b"]))  # no within variance df
    with pytest.raises(DataError, match=r"scores and groups differ in length \(2 vs 3\)"):
        icc1_icc2([1.0, 2.0], ["a", "b", "c"])


# -- the survey-level report -----------------------------------------------------------------


def test_reliability_structure_on_example():
    cb = read_codebook(ROOT / "data" / "codebook_orca_mbct.csv")
    resp = read_responses(ROOT / "data" / "example" / "responses.csv", cb)
    out = reliability(resp, cb)
    assert list(out) == ["E", "C", "F"]
    for c in "ECF":
        e = out[c]
        for key in ("alpha", "alpha_listwise", "omega", "n_items", "icc1", "icc2", "subscales",
                    "item_rest", "n_respondents", "n_sites"):
            assert key in e
        assert e["n_items"] == int((cb["construct"] == c).sum())
        assert 0.5 < e["alpha"] < 1 and 0.5 < e["omega"] < 1
        assert set(e["subscales"]) == set(cb.loc[cb["construct"] == c, "subscale"])
        sub = next(iter(e["subscales"].values()))
        assert {"alpha", "alpha_listwise", "omega", "n_items", "icc1", "icc2"} <= set(sub)
    # alpha is computed on reverse-keyed items: every item-rest r is positive
    assert all(r > 0 for c in "ECF" for r in out[c]["item_rest"].values())
    # the construct's alpha equals the kernel's alpha on its keyed items
    from mbct_bayes.survey.scoring import keyed_items

    x = keyed_items(resp, cb)[:, (cb["construct"] == "F").to_numpy()]
    assert out["F"]["alpha"] == pytest.approx(cronbach_alpha(x), abs=1e-15)
    lw = reliability(resp, cb, listwise=True)
    assert lw["F"]["alpha"] == pytest.approx(out["F"]["alpha_listwise"], abs=1e-15)


def test_reverse_keying_changes_alpha(bfi):
    raw = bfi[["A1", "A2", "A3", "A4", "A5"]]
    assert cronbach_alpha(raw) < cronbach_alpha(keyed(bfi, "agree")) - 0.1
