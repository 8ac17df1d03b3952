"""Predictive counts at an exposure (issue 14 item 4): how many patients a service will reach.

``predict`` on a count model's sites with the exposure column adds the posterior-predictive count
at that exposure. The exact checks use stand-in posteriors with chosen draws, compared with closed
forms: one draw gives the Poisson (negative binomial) quantiles themselves; rate draws at the
quantiles of a gamma distribution give the Poisson-gamma mixture, whose closed form is the negative
binomial (e.g. Gelman et al., Bayesian Data Analysis, 3rd ed., section 2.6: the gamma-Poisson
predictive is negative binomial). The predictive mean is exposure × the mean rate per unit. A
simulated world (the conftest Poisson fit and its truth) checks the 90% intervals' coverage.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mbct_bayes.errors import DataError
from mbct_bayes.model.build import ModelData
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.planning.predict import QUANTILES, mixture_count_quantiles, predict
from mbct_bayes.spec import ModelSpec

RATE_PER = 100_000.0


def stand_in(family: str, intercept: np.ndarray, overdispersion: np.ndarray | None = None):
    """A fit with chosen draws: no predictor effect, one fitted site A with effect 0, site SD 0."""
    spec = ModelSpec(family=family, exposure="population", rate_per=RATE_PER)
    names = spec.coef_names
    md = ModelData(
        X=np.zeros((1, len(names))), coef_names=names, x_sd=np.ones(len(names)), y=np.array([5]), trials=None,
        site_idx=np.array([0]), site_labels=("A",), region_idx=None, region_labels=None,
        offset=np.log(np.array([10_000.0])),
    )
    s = intercept.size
    draws = {"Intercept": intercept, "beta": np.zeros((s, len(names))), "u_site": np.zeros((s, 1)),
             "sigma_site": np.zeros(s)}
    if overdispersion is not None:
        draws["overdispersion"] = overdispersion
    return SimpleNamespace(posterior=Posterior.from_draws(spec, md, draws), spec=spec)


def sites(population) -> pd.DataFrame:
    population = np.atleast_1d(population)
    return pd.DataFrame({"site": ["A"] * population.size, "E": 3.0, "C": 3.0, "F": 3.0, "population": population})


def test_one_draw_gives_the_poisson_quantiles_and_exposure_times_rate():
    rate = 30 / RATE_PER  # 30 per 100,000 population
    fit = stand_in("poisson", np.array([np.log(rate)]))
    out = predict(fit, sites([250_000.0, 12_345.0]), kind="known_site")
    mu = np.array([250_000.0, 12_345.0]) * rate
    assert out["count_mean"].to_numpy() == pytest.approx(mu, rel=1e-12)
    for q, column in zip(QUANTILES, ("count_q05", "count_q50", "count_q95"), strict=True):
        assert out[column].tolist() == stats.poisson.ppf(q, mu).astype(int).tolist()
    assert out["p_mean"].to_numpy() == pytest.approx(30.0, rel=1e-12)  # the rate per 100,000 is unchanged
    words = out["count_quantity"][0]
    assert words.startswith("access count at the row's population") and "poisson count noise" in words


def test_one_draw_gives_the_negative_binomial_quantiles():
    rate, od = 30 / RATE_PER, 0.4
    fit = stand_in("negbinomial", np.array([np.log(rate)]), np.array([od]))
    out = predict(fit, sites(250_000.0), kind="known_site")
    mu, a = 250_000.0 * rate, 1 / od  # variance mu + od·mu², numpy/scipy nbinom(n=a, p=a/(a+mu))
    assert out["count_mean"][0] == pytest.approx(mu, rel=1e-12)
    expected = [int(stats.nbinom.ppf(q, a, a / (a + mu))) for q in QUANTILES]
    assert [out["count_q05"][0], out["count_q50"][0], out["count_q95"][0]] == expected
    assert "negbinomial count noise" in out["count_quantity"][0]


def test_two_draws_give_the_equal_mixture_of_their_distributions():
    """Two draws of (rate, overdispersion): quantile q is the smallest k with the mean of the two CDFs ≥ q."""
    rates, ods = np.array([10, 60]) / RATE_PER, np.array([0.2, 0.8])
    fit = stand_in("negbinomial", np.log(rates), ods)
    out = predict(fit, sites(100_000.0), kind="known_site")
    mus, a = 100_000.0 * rates, 1 / ods
    k = np.arange(400)
    mixture = 0.5 * (stats.nbinom.cdf(k, a[0], a[0] / (a[0] + mus[0])) + stats.nbinom.cdf(k, a[1], a[1] / (a[1] + mus[1])))
    expected = [int(np.argmax(mixture >= q)) for q in QUANTILES]
    assert [out["count_q05"][0], out["count_q50"][0], out["count_q95"][0]] == expected
    assert out["count_mean"][0] == pytest.approx(mus.mean(), rel=1e-12)


def test_poisson_over_gamma_rate_draws_is_the_negative_binomial_closed_form():
    """Rates ~ Gamma(shape a, rate b) per unit: Poisson(E·rate) mixes to NegBin(a, b / (b + E)) (closed form)."""
    shape, scale, exposure = 4.0, 50 / RATE_PER / 4.0, 150_000.0  # mean rate 50 per 100,000
    s = 20_000
    rates = stats.gamma.ppf((np.arange(s) + 0.5) / s, shape, scale=scale)  # the gamma's quantiles, evenly
    fit = stand_in("poisson", np.log(rates))
    p_nb = 1 / (1 + scale * exposure)  # b / (b + E) with b = 1 / scale
    k = np.arange(400)
    mixture = stats.poisson.cdf(k[:, None], exposure * rates[None, :]).mean(axis=1)
    assert np.abs(mixture - stats.nbinom.cdf(k, shape, p_nb)).max() < 2e-5  # measured 6.9e-6: quadrature error
    probs = (0.05, 0.25, 0.5, 0.75, 0.95)
    got = mixture_count_quantiles(lambda k, m, p: stats.poisson.cdf(k, m), exposure * rates[:, None], {}, probs)
    closed = stats.nbinom.ppf(probs, shape, p_nb).astype(int)
    # the closed-form CDF is at least 4e-4 from each q at these k (measured), so quadrature error cannot flip one
    assert np.all(np.abs(stats.nbinom.cdf(closed, shape, p_nb) - probs) > 4e-4)
    assert got[:, 0].tolist() == closed.tolist() == [24, 47, 69, 96, 147]
    out = predict(fit, sites(exposure), kind="known_site")
    assert out["count_mean"][0] == pytest.approx(exposure * rates.mean(), rel=1e-12)
    assert out["count_mean"][0] == pytest.approx(shape * scale * exposure, rel=1e-3)
    assert [out["count_q05"][0], out["count_q50"][0], out["count_q95"][0]] == closed[[0, 2, 4]].tolist()


def test_sites_without_the_exposure_column_get_rates_only():
    fit = stand_in("poisson", np.array([np.log(30 / RATE_PER)]))
    out = predict(fit, sites(1.0).drop(columns="population"), kind="known_site")
    assert "count_mean" not in out and "count_quantity" not in out


@pytest.mark.parametrize(("value", "words"), [(0.0, "not > 0"), (np.nan, "missing exposure"), ("many", "not a number")])
def test_bad_exposure_of_a_site_is_a_one_line_error(value, words):
    fit = stand_in("poisson", np.array([np.log(30 / RATE_PER)]))
    table = sites(1.0).astype({"population": object})
    table.loc[0, "population"] = value
    with pytest.raises(DataError, match=words) as err:
        predict(fit, table, kind="known_site")
    assert "population" in str(err.value) and "\n" not in str(err.value)


def test_predictive_counts_cover_new_counts_of_the_simulated_world(poisson_fit):
    """Each fitted site at a catchment of 100,000 next year: the truth's counts fall in the 90% intervals ~90%.

    The truth (conftest's Poisson design) gives each site's true rate; 200 new counts per site are drawn
    from it. Whole-count intervals hold at least 90% of their own predictive, so coverage a little above
    0.9 is expected; 0.84-0.97 allows the posterior's own error with 40 sites.
    """
    fit, truth, obs = poisson_fit
    means = obs.groupby("site")[["E", "C", "F"]].mean().reset_index()
    means["population"] = 100_000.0
    out = predict(fit, means, kind="known_site", seed=3)
    x = means[["E", "C", "F"]].to_numpy() - 3.0
    eta = truth["Intercept"] + x @ np.array([truth["beta"][name] for name in ("E", "C", "F")]) + means["site"].map(truth["site_effects"]).to_numpy()
    rng = np.random.default_rng(8)
    new = rng.poisson(100_000.0 * np.exp(eta), size=(200, len(means)))
    inside = (new >= out["count_q05"].to_numpy()) & (new <= out["count_q95"].to_numpy())
    assert 0.84 <= inside.mean() <= 0.97
    # the mean predicted count is exposure × the mean predicted rate per 100,000
    assert out["count_mean"].to_numpy() == pytest.approx(out["p_mean"].to_numpy(), rel=1e-12)


def test_cli_predict_writes_counts_at_each_sites_population(poisson_fit, tmp_path):
    fit, _, obs = poisson_fit
    fit.save(tmp_path / "fit.nc")
    table = obs.groupby("site").tail(1).head(3).drop(columns="access")
    table["population"] = [250_000, 50_000, 1_000]
    table.to_csv(tmp_path / "sites.csv", index=False)
    cmd = [sys.executable, "-m", "mbct_bayes.cli.main", "predict", str(tmp_path / "fit.nc"), str(tmp_path / "sites.csv"),
           "--kind", "known_site", "--out", str(tmp_path / "pred.csv")]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "access count each site will reach at its population" in run.stderr + run.stdout
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pred["count_mean"].to_numpy() == pytest.approx(pred["p_mean"].to_numpy() * table["population"] / RATE_PER)
    assert (pred["count_q05"] <= pred["count_q50"]).all() and (pred["count_q50"] <= pred["count_q95"]).all()
    table.loc[table.index[0], "population"] = -5
    table.to_csv(tmp_path / "sites.csv", index=False)
    bad = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "population" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
