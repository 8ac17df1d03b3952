"""A latent fit forecasts new sites from their measured scores: checked in a simulated world.

The world of the attenuation test (tests/test_latent.py): 300 sites, 15 assessed units each, 5
respondents per site, ICC(1) = 0.1, outcome driven by the *true* E, C, F. Then 200 new sites of
the same population, 3 respondents each (site-mean reliability 3·0.1/(1 + 2·0.1) = 0.25), with
their own true scores, site effects and 15 units of outcome. Three forecasts of the new sites:

* measured: the latent fit with the new sites' respondent scores (true scores drawn per
  posterior draw given the 3-respondent means);
* plug-in: the latent fit with the raw means put into its coefficients (``scores_are_true``);
* averaged: an observed-score fit on the training sites' 5-respondent means, fed the new means.

Measured on this world (seed 3 / new sites seed 11; 2 chains × 300 draws): 90% interval
coverage of each new site's true P(embedded) 0.94 (plug-in 0.56, averaged 0.935); log score of
the new sites' outcomes -1963.1 (plug-in -2107.4, averaged -1965.5). With 2 × 500 draws:
0.93; -1962.8, -2090.4, -1966.0. Other new-site seeds (12-14): coverage 0.88-0.905, measured
ahead of averaged by 3-7 nats and of plug-in by 130-175.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logsumexp

import mbct_bayes as mb
from mbct_bayes.planning.measured import prepare_sites
from mbct_bayes.planning.predict import eta_draws, p_embedded
from mbct_bayes.survey.scoring import read_codebook, score_responses, site_scores
from mbct_bayes.survey.simulate import simulate_survey_study

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "data" / "codebook_orca_mbct.csv"
BETA = {"E": 0.5, "C": 1.0, "F": 2.0}
UNITS = 15
#: Short chains keep this test near a minute; they fail the ESS gate (min bulk ESS ~30-80 of 600
#: draws), so the fit's R-hat is bounded loosely here and the checks are on forecasts, which
#: average over every draw. The latent model's own gate is item 8 of issue 12.
SAMPLER = dict(seed=1, draws=300, tune=300, chains=2)
MAX_R_HAT = 1.1
#: The averaged-score model may win by at most this much (nats over 200 sites, 0.05 per site;
#: the plug-in's deficit is ~0.7 per site).
AVERAGED_TOLERANCE = 10.0
PLUG_IN_MARGIN = 50.0


@pytest.fixture(scope="module")
def world():
    codebook = read_codebook(CODEBOOK)
    obs, items, _ = simulate_survey_study(
        300, UNITS, codebook, beta=BETA, respondents_per_site=5, icc1=0.1, site_corr=0.2, seed=3
    )
    scores = score_responses(items, codebook)
    averaged = obs.merge(site_scores(scores)[["site", "E", "C", "F"]], on="site")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        latent = mb.fit(obs, mb.ModelSpec(measurement="latent"), responses=scores, **SAMPLER)
        avg = mb.fit(averaged, mb.ModelSpec(), **SAMPLER)
    new_obs, new_items, truth = simulate_survey_study(
        200, UNITS, codebook, beta=BETA, respondents_per_site=3, icc1=0.1, site_corr=0.2, seed=11
    )
    for table in (new_obs, new_items):
        table["site"] = "N" + table["site"]  # not the training sites' ids
    new_scores = score_responses(new_items, codebook)
    values, effects = truth["site_values"], truth["site_effects"]
    sites = sorted(values)
    p_true = pd.Series(
        [expit(truth["Intercept"] + sum(BETA[c] * (values[s][c] - 3.0) for c in BETA) + effects[s]) for s in sites],
        index=["N" + s for s in sites],
    )
    return {"latent": latent, "avg": avg, "obs": new_obs, "scores": new_scores, "p_true": p_true}


def log_score(fit, world, table: pd.DataFrame, **measured) -> float:
    """Sum over new sites of log p(that site's outcomes), the site effect shared by its units."""
    table, sites = prepare_sites(fit, table, "new_site", **measured)
    eta = eta_draws(fit, table, "new_site", seed=5, measured=sites, scores_are_true=measured.get("scores_are_true", False))
    p = p_embedded(fit, eta)  # (S, sites)
    counts = world["obs"].groupby("site")["embedded"].agg(["sum", "size"]).reindex(table["site"])
    k, n = counts["sum"].to_numpy(), counts["size"].to_numpy()
    loglik = k * np.log(p) + (n - k) * np.log1p(-p)
    return float((logsumexp(loglik, axis=0) - np.log(p.shape[0])).sum())


@pytest.mark.slow
def test_new_site_forecasts_from_measured_scores_cover_and_score(world):
    latent, avg = world["latent"], world["avg"]
    assert latent.diagnostics["max_r_hat"] < MAX_R_HAT, latent.diagnostics
    sites = pd.DataFrame({"site": world["p_true"].index})
    pred = latent.predict(sites, responses=world["scores"], seed=5).set_index("site")
    p_true = world["p_true"].reindex(pred.index)
    coverage = float(((pred["p_q05"] <= p_true) & (p_true <= pred["p_q95"])).mean())
    assert 0.85 <= coverage <= 0.95, coverage
    means = site_scores(world["scores"])[["site", "E", "C", "F"]]
    measured = log_score(latent, world, sites, responses=world["scores"])
    plug_in = log_score(latent, world, means, scores_are_true=True)
    averaged = log_score(avg, world, means)
    assert measured > plug_in + PLUG_IN_MARGIN, (measured, plug_in)
    assert measured >= averaged - AVERAGED_TOLERANCE, (measured, averaged)
    # the plug-in is the bug: its intervals miss most new sites' true P(embedded)
    plug = latent.predict(means, scores_are_true=True, seed=5).set_index("site")
    assert ((plug["p_q05"] <= p_true) & (p_true <= plug["p_q95"])).mean() < 0.75


@pytest.mark.slow
def test_site_means_with_counts_give_the_same_forecast_as_the_respondent_scores(world):
    """Without role offsets, a site's mean and per-construct counts carry all the respondents say."""
    latent = world["latent"]
    means = site_scores(world["scores"]).head(20)
    by_responses = latent.predict(means[["site"]], responses=world["scores"][world["scores"].site.isin(means.site)])
    by_means = latent.predict(means[["site", "E", "C", "F", "n_E", "n_C", "n_F"]])
    np.testing.assert_allclose(by_means["p_mean"], by_responses["p_mean"], rtol=1e-10)
    assert set(by_means["scores"]) == {"measured (site means)"}
