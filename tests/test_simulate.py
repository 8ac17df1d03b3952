"""Synthetic data: reproducible, well-formed, and generated from the truth it reports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.model.simulate import (
    UK_REGIONS,
    default_truth,
    region_names,
    simulate_new_site_rate,
    simulate_observations,
)


def expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def true_eta(df: pd.DataFrame, truth: dict) -> np.ndarray:
    """The linear predictor the truth implies for each row, effects included."""
    beta = truth["beta"]
    eta = sum(beta[p] * (df[p].to_numpy() - truth["center"]) for p in ("E", "C", "F"))
    eta = eta + df["site"].map(truth["site_effects"]).to_numpy()
    if "region" in df:
        eta = eta + df["region"].map(truth["region_effects"]).to_numpy()
    if truth["Intercept"] is not None:
        eta = eta + truth["Intercept"]
    return eta


def logistic_mle(X: np.ndarray, y: np.ndarray, n: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Binomial logistic regression with a known offset, by Newton-Raphson (IRLS)."""
    b = np.zeros(X.shape[1])
    for _ in range(50):
        p = expit(X @ b + offset)
        grad = X.T @ (y - n * p)
        hess = (X * (n * p * (1 - p))[:, None]).T @ X
        step = np.linalg.solve(hess, grad)
        b += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return b


# -- shape and reproducibility ---------------------------------------------------------------


@pytest.mark.parametrize("family", ["bernoulli", "binomial", "ordinal"])
def test_same_seed_identical_table(family):
    a, ta = simulate_observations(12, 3, family, seed=7)
    b, tb = simulate_observations(12, 3, family, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert ta == tb
    c, _ = simulate_observations(12, 3, family, seed=8)
    assert not a.equals(c)


def test_columns_and_shape_bernoulli():
    df, truth = simulate_observations()
    assert list(df.columns) == ["site", "region", "wave", "E", "C", "F", "embedded"]
    assert len(df) == 200
    assert df["site"].nunique() == 40
    assert df["site"].iloc[0] == "S01" and df["site"].iloc[-1] == "S40"
    assert (df.groupby("site").size() == 5).all()
    assert sorted(df["wave"].unique()) == [1, 2, 3, 4, 5]
    assert set(df["region"]) == set(UK_REGIONS)
    assert set(df["embedded"].unique()) <= {0, 1}
    assert df["embedded"].dtype == np.int64
    for p in ("E", "C", "F"):
        assert df[p].between(1, 5).all()
        assert np.allclose(df[p], df[p].round(2))
    # each site sits in exactly one region, and the truth records which
    assert (df.groupby("site")["region"].nunique() == 1).all()
    assert df.groupby("site")["region"].first().to_dict() == truth["site_regions"]
    assert set(truth["site_effects"]) == set(df["site"])
    assert set(truth["region_effects"]) == set(UK_REGIONS)


def test_uk_like_region_shares():
    df, _ = simulate_observations(40, 1)
    counts = df["region"].value_counts().to_dict()
    assert counts == {"England-North": 16, "England-South": 12, "Scotland": 6, "Wales": 6}


def test_binomial_columns():
    df, truth = simulate_observations(10, 2, "binomial", trials=6)
    assert list(df.columns)[-2:] == ["embedded", "trials"]
    assert (df["trials"] == 6).all()
    assert df["embedded"].between(0, 6).all()
    assert truth["trials"] == 6


def test_ordinal_columns():
    df, truth = simulate_observations(10, 2, "ordinal")
    assert "level" in df and "embedded" not in df
    assert set(df["level"]) <= {"none", "partial", "embedded"}
    assert truth["Intercept"] is None
    assert truth["cutpoints"] == [-0.8, 0.9]
    assert truth["levels"] == ["none", "partial", "embedded"]


def test_generic_regions_and_no_regions():
    assert region_names(3) == ["R1", "R2", "R3"]
    df, _truth = simulate_observations(9, 2, n_regions=3)
    assert set(df["region"]) == {"R1", "R2", "R3"}
    assert (df["region"].value_counts() == 6).all()
    df0, truth0 = simulate_observations(9, 2, n_regions=0)
    assert "region" not in df0
    assert truth0["region_effects"] == {} and truth0["sigma_region"] == 0.0


def test_site_ids_padding_and_prefix():
    df, _ = simulate_observations(120, 1, site_prefix="NHS")
    assert df["site"].iloc[0] == "NHS001" and df["site"].iloc[-1] == "NHS120"


def test_families_share_sites_and_scores_for_a_seed():
    a, ta = simulate_observations(15, 3, "bernoulli", seed=3)
    b, tb = simulate_observations(15, 3, "ordinal", seed=3)
    pd.testing.assert_frame_equal(
        a[["site", "region", "wave", "E", "C", "F"]], b[["site", "region", "wave", "E", "C", "F"]]
    )
    assert ta["site_effects"] == tb["site_effects"]


def test_truth_is_json_serialisable_and_complete():
    _, truth = simulate_observations(5, 2, "binomial", seed=None)
    back = json.loads(json.dumps(truth))
    for key in (
        "family",
        "Intercept",
        "beta",
        "sigma_site",
        "sigma_region",
        "center",
        "site_effects",
        "region_effects",
        "n_sites",
        "per_site",
        "seed",
        "predictors",
    ):
        assert key in back
    assert back["beta"] == {"E": 0.3, "C": 0.5, "F": 0.9}
    assert back["seed"] is None


def test_default_truth_values():
    t = default_truth()
    assert t["Intercept"] == -0.3 and t["sigma_site"] == 0.8 and t["sigma_region"] == 0.3
    assert t["beta"]["F"] > t["beta"]["C"] > t["beta"]["E"]  # facilitation matters most
    assert default_truth("ordinal")["Intercept"] is None


def test_truth_reuses_parameters_but_draws_fresh_effects():
    _, t1 = simulate_observations(20, 2, seed=1)
    t1 = dict(t1, beta={"E": 0.0, "C": 0.0, "F": 2.0}, sigma_site=0.1)
    _df2, t2 = simulate_observations(20, 2, seed=2, truth=t1)
    assert t2["beta"] == {"E": 0.0, "C": 0.0, "F": 2.0}
    assert t2["sigma_site"] == 0.1
    assert t2["site_effects"] != t1["site_effects"]
    assert t2["seed"] == 2


def test_family_taken_from_truth():
    df, t = simulate_observations(5, 2, truth=default_truth("ordinal"))
    assert t["family"] == "ordinal" and "level" in df


# -- argument errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_sites": 0}, "n_sites must be a whole number >= 1"),
        ({"per_site": 0}, "per_site must be a whole number >= 1"),
        ({"per_site": 2.5}, "per_site must be a whole number"),
        ({"family": "gamma"}, "family 'gamma' is not one of bernoulli, binomial, ordinal, poisson, negbinomial"),
        ({"family": "binomial", "trials": 0}, "trials must be a whole number >= 1"),
        ({"n_regions": -1}, "n_regions must be a whole number >= 0"),
        ({"truth": [1, 2]}, "truth must be a dict"),
        ({"family": "bernoulli", "truth": {"family": "ordinal"}}, "truth is for family 'ordinal'"),
        ({"truth": {"sigma_site": -1.0}}, r"truth\['sigma_site'\] must be a finite number >= 0"),
        (
            {"truth": {"beta": {"E": 1.0}}},
            r"truth\['beta'\] must give a number for each of E, C, F",
        ),
        ({"family": "ordinal", "truth": {"cutpoints": [1.0, 0.0]}}, "strictly ascending"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        simulate_observations(**kwargs)


def test_new_site_rate_bad_scores():
    with pytest.raises(DataError, match="E, C, F must be finite"):
        simulate_new_site_rate(default_truth(), float("nan"), 3, 3)


# -- the data follow the stated truth ------------------------------------------------------------


def test_bernoulli_recovers_coefficients_with_known_effects():
    """With the true site/region effects as an offset, the MLE of beta is near the truth."""
    df, truth = simulate_observations(4000, 5, "bernoulli", seed=11)
    X = np.column_stack([np.ones(len(df)), df[["E", "C", "F"]].to_numpy() - 3.0])
    offset = (
        df["site"].map(truth["site_effects"]).to_numpy()
        + df["region"].map(truth["region_effects"]).to_numpy()
    )
    b = logistic_mle(X, df["embedded"].to_numpy(float), np.ones(len(df)), offset)
    # SEs at this size are about 0.03-0.04; 0.12 is ~3-4 SE
    np.testing.assert_allclose(b, [-0.3, 0.3, 0.5, 0.9], atol=0.12)


def test_binomial_recovers_coefficients_with_known_effects():
    df, truth = simulate_observations(2000, 3, "binomial", seed=12, trials=8)
    X = np.column_stack([np.ones(len(df)), df[["E", "C", "F"]].to_numpy() - 3.0])
    offset = true_eta(df, truth) - X @ np.array([-0.3, 0.3, 0.5, 0.9])
    b = logistic_mle(X, df["embedded"].to_numpy(float), df["trials"].to_numpy(float), offset)
    np.testing.assert_allclose(b, [-0.3, 0.3, 0.5, 0.9], atol=0.08)


def test_bernoulli_rate_matches_true_probabilities():
    df, truth = simulate_observations(4000, 5, seed=13)
    p = expit(true_eta(df, truth))
    se = np.sqrt(np.sum(p * (1 - p))) / len(df)
    assert abs(df["embedded"].mean() - p.mean()) < 4 * se


def test_ordinal_cumulative_probabilities_match_truth():
    df, truth = simulate_observations(4000, 5, "ordinal", seed=14)
    eta = true_eta(df, truth)
    c = truth["cutpoints"]
    level = df["level"].map({"none": 0, "partial": 1, "embedded": 2}).to_numpy()
    for k, ck in enumerate(c):
        p = expit(eta - ck)  # P(level > k)
        se = np.sqrt(np.sum(p * (1 - p))) / len(df)
        assert abs(np.mean(level > k) - p.mean()) < 4 * se


def test_embedded_rate_increases_with_facilitation():
    df, _ = simulate_observations(4000, 5, seed=15)
    rates = df.groupby(pd.qcut(df["F"], 4), observed=True)["embedded"].mean().to_numpy()
    assert np.all(np.diff(rates) > 0)


def test_predictor_correlations_and_spread():
    df, truth = simulate_observations(4000, 5, seed=16, n_regions=0)
    means = df.groupby("site")[["E", "C", "F"]].mean()
    corr = means.corr().to_numpy()
    target = np.array(truth["predictors"]["corr"])
    np.testing.assert_allclose(corr, target, atol=0.06)
    np.testing.assert_allclose(means.mean().to_numpy(), truth["predictors"]["mean"], atol=0.05)
    # within-site sd of units is the unit noise (0.4), barely changed by clipping
    within = np.sqrt(df.groupby("site")[["E", "C", "F"]].var().mean().to_numpy())  # pooled
    np.testing.assert_allclose(within, 0.4, atol=0.03)


@pytest.mark.parametrize("sigma_site", [0.0, 1.2])
def test_between_site_variation_matches_sigma_site(sigma_site):
    """Variance of site means = Var(p_s) + E[p_s(1 - p_s)]/m, from the true probabilities."""
    truth = dict(
        default_truth(n_regions=0), sigma_site=sigma_site, beta={"E": 0.0, "C": 0.0, "F": 0.0}
    )
    m = 20
    df, t = simulate_observations(3000, m, truth=truth, n_regions=0, seed=17)
    site_mean = df.groupby("site")["embedded"].mean()
    p = expit(t["Intercept"] + pd.Series(t["site_effects"]))
    expected = p.var() + np.mean(p * (1 - p)) / m
    assert site_mean.var() == pytest.approx(expected, rel=0.1)


# -- new-site rate ------------------------------------------------------------------------------


def test_new_site_rate_closed_form_without_random_effects():
    truth = dict(default_truth(), sigma_site=0.0, sigma_region=0.0)
    rate = simulate_new_site_rate(truth, 3.5, 2.0, 4.2, n_sites=10)
    eta = -0.3 + 0.3 * 0.5 + 0.5 * -1.0 + 0.9 * 1.2
    assert rate == pytest.approx(expit(eta), abs=1e-12)


def test_new_site_rate_closed_form_ordinal_top_level():
    truth = dict(default_truth("ordinal"), sigma_site=0.0, sigma_region=0.0)
    rate = simulate_new_site_rate(truth, 3, 3, 5, n_sites=10)
    assert rate == pytest.approx(expit(0.9 * 2 - 0.9), abs=1e-12)


def test_new_site_rate_matches_logistic_normal_integral():
    """With sigma > 0 the rate is E[expit(eta + z)], z ~ N(0, s_site^2 + s_region^2)."""
    truth = default_truth()
    eta = -0.3 + 0.9 * 1.0  # E=C=3, F=4
    s = np.hypot(truth["sigma_site"], truth["sigma_region"])
    z = np.linspace(-10, 10, 20001)
    dens = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    exact = np.trapezoid(expit(eta + s * z) * dens, z)
    rate = simulate_new_site_rate(truth, 3, 3, 4, n_sites=200_000, seed=3)
    assert rate == pytest.approx(exact, abs=0.003)
    # a drawn site effect pulls the rate towards 0.5 compared with a typical site
    assert 0.5 < rate < expit(eta)


def test_new_site_rate_known_region_uses_its_effect():
    _, truth = simulate_observations(seed=4)
    truth = dict(truth, sigma_site=0.0)
    r = "Scotland"
    rate = simulate_new_site_rate(truth, 3, 3, 3, n_sites=10, region=r)
    assert rate == pytest.approx(expit(-0.3 + truth["region_effects"][r]), abs=1e-12)


def test_new_site_rate_matches_fresh_simulated_population():
    """Sites simulated at fixed scores (no unit noise, no spread) embed at the stated rate."""
    truth = default_truth()
    truth["predictors"] = dict(
        truth["predictors"], mean=[3.0, 3.5, 4.0], site_sd=[0.0, 0.0, 0.0], unit_sd=0.0
    )
    df, _ = simulate_observations(20000, 2, truth=truth, seed=5)
    assert (df["F"] == 4.0).all()
    rate = simulate_new_site_rate(truth, 3.0, 3.5, 4.0)
    se = np.sqrt(rate * (1 - rate) / len(df)) * 1.6  # inflated for the within-site correlation
    assert abs(df["embedded"].mean() - rate) < 4 * se


def test_new_site_rate_reproducible():
    t = default_truth()
    assert simulate_new_site_rate(t, 3, 3, 3, seed=9) == simulate_new_site_rate(t, 3, 3, 3, seed=9)
