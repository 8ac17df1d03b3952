"""The count families' intercept prior is centred on the data's overall log rate (issue 14 item 4).

A log rate per person is far from 0 (a catchment population of ~100,000 and a rate of 1e-4 give
an intercept of log(1e-4) = -9.2), so the default intercept prior of a count model is
StudentT(3, log(total count / total exposure), 2.5): a data-dependent centre stated in the summary
and the report. These tests pin the centre to that formula, check that it is data swapped at a
refit (``pm.Data``), that the self-check refits with the observed data's prior, and that a fit at a
rate of 1e-4 per person with catchments of ~1e5 recovers the rate.
"""

from __future__ import annotations

import math
import warnings

import pytest

import mbct_bayes as mb
from mbct_bayes.model.build import (
    build_model,
    data_values,
    intercept_prior,
    prepare_data,
    prior_sources,
    with_fixed_intercept_prior,
)
from mbct_bayes.model.simulate import default_truth, simulate_observations
from mbct_bayes.report import _prior_rows
from mbct_bayes.schema import validate_observations

RATE = 1e-4  # per person: 10 per 100,000 population


def _panel(n_sites: int = 20, per_site: int = 3, seed: int = 4):
    """Counts at catchments of 50,000-200,000 people and a rate of 1e-4 per person at mid-scale scores."""
    truth = default_truth("poisson", 0)
    truth.update(Intercept=math.log(RATE), exposure=[50_000, 200_000], sigma_site=0.3, beta={"E": 0.1, "C": 0.2, "F": 0.3})
    return simulate_observations(n_sites, per_site, "poisson", n_regions=0, seed=seed, truth=truth)


def _data(obs, spec):
    return prepare_data(validate_observations(obs, spec), spec)


@pytest.mark.parametrize("family", ["poisson", "negbinomial"])
def test_the_default_centre_is_the_log_of_total_count_over_total_exposure(family):
    obs, _ = _panel()
    spec = mb.ModelSpec(family=family, exposure="population", rate_per=100_000)
    data = _data(obs, spec)
    centre = math.log(obs["access"].sum() / obs["population"].sum())
    assert -10.5 < centre < -7.5  # far from the event families' centre 0
    assert intercept_prior(spec, data) == {"dist": "StudentT", "nu": 3.0, "mu": pytest.approx(centre, abs=1e-12),
                                           "sigma": 2.5}
    assert float(data_values(data, spec)["intercept_mu"]) == pytest.approx(centre, abs=1e-12)
    source = prior_sources(spec, data)["Intercept"]["source"]
    assert source == (
        "default, centred on these data's overall log rate per unit of exposure, log(total count / total exposure) = "
        f"{centre:.3g} (a data-dependent centre)"
    )
    # without an exposure column the rate is per observation
    bare = mb.ModelSpec(family=family)
    assert intercept_prior(bare, _data(obs.drop(columns="population"), bare))["mu"] == pytest.approx(
        math.log(obs["access"].mean()), abs=1e-12)


def test_a_prior_set_in_the_spec_and_the_event_families_keep_their_centre():
    obs, _ = _panel()
    spec = mb.ModelSpec(family="poisson", exposure="population",
                        priors={"Intercept": {"dist": "Normal", "mu": -9.0, "sigma": 1.0}})
    data = _data(obs, spec)
    assert intercept_prior(spec, data) == {"dist": "Normal", "mu": -9.0, "sigma": 1.0}
    assert "intercept_mu" not in data_values(data, spec)
    assert prior_sources(spec, data)["Intercept"]["source"] == "set in the model spec"
    bern = default_truth("bernoulli", 0)
    events, _ = simulate_observations(10, 3, "bernoulli", n_regions=0, seed=1, truth=bern)
    spec_b = mb.ModelSpec()
    assert intercept_prior(spec_b, _data(events, spec_b)) == {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 2.5}


def test_the_centre_is_model_data_swapped_with_the_rows():
    """The centre is a pm.Data: the model built on one data set carries its centre, and the values a
    refit swaps in carry the new rows' centre (tenfold exposures: exactly log 10 lower)."""
    obs, _ = _panel()
    spec = mb.ModelSpec(family="poisson", exposure="population", rate_per=100_000)
    data = _data(obs, spec)
    model = build_model(data, spec)
    assert float(model["intercept_mu"].get_value()) == pytest.approx(intercept_prior(spec, data)["mu"], abs=1e-12)
    tenfold = _data(obs.assign(population=obs["population"] * 10), spec)
    shift = float(data_values(tenfold, spec)["intercept_mu"]) - float(data_values(data, spec)["intercept_mu"])
    assert shift == pytest.approx(-math.log(10), abs=1e-12)


def test_the_self_check_refits_with_the_observed_datas_prior():
    obs, _ = _panel()
    spec = mb.ModelSpec(family="poisson", exposure="population", rate_per=100_000)
    data = _data(obs, spec)
    fixed = with_fixed_intercept_prior(spec, data)
    assert fixed.priors["Intercept"] == intercept_prior(spec, data)
    # written in, the centre no longer moves with the data (a simulated data set refits with the same prior)
    other = _data(obs.assign(access=obs["access"] * 3), fixed)
    assert intercept_prior(fixed, other) == intercept_prior(spec, data)
    assert "intercept_mu" not in data_values(other, fixed)
    assert with_fixed_intercept_prior(mb.ModelSpec(), data) == mb.ModelSpec()


def test_a_fit_at_catchments_of_1e5_and_a_rate_of_1e4_recovers_the_rate():
    """20 sites × 3 waves at 50,000-200,000 people, rate 1e-4 per person at mid-scale scores (intercept -9.21):
    the intercept's 90% interval and the typical site's rate per 100,000 (10) are recovered, and the summary
    and the report state the prior's centre."""
    obs, _ = _panel()
    spec = mb.ModelSpec(family="poisson", exposure="population", rate_per=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = mb.fit(obs, spec, seed=2, draws=400, tune=400, chains=2)
    summary = fit.summary()
    intercept = summary["coefficients"]["Intercept"]
    assert intercept["q05"] < math.log(RATE) < intercept["q95"]
    assert abs(intercept["mean"] - math.log(RATE)) < 0.25
    typical = fit.predict(obs.head(1).assign(E=3.0, C=3.0, F=3.0), kind="typical_site")
    assert typical["p_q05"][0] < RATE * 100_000 < typical["p_q95"][0]
    centre = math.log(obs["access"].sum() / obs["population"].sum())
    assert summary["priors"]["Intercept"]["mu"] == pytest.approx(centre, abs=1e-12)
    assert f"Intercept prior: StudentT(nu=3, mu={centre:.3g}, sigma=2.5), default, centred on" in fit.summary_text()
    rows = {row[0]: row for row in _prior_rows(fit)}
    assert rows["Intercept"][1] == f"StudentT(nu=3, mu={centre:g}, sigma=2.5)"
    assert "log(total count / total exposure)" in rows["Intercept"][2]
