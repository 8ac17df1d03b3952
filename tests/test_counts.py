"""Count families (poisson, negbinomial): spec keys, data checks, recovery, planning in rates, evaluation.

The model: ``access ~ Poisson(population · exp(eta))`` (negbinomial: variance mean + overdispersion ·
mean²), eta = Intercept + beta·(x - 3) + u_site; planning reports ``rate_per · exp(eta)``, the
expected access per 100,000 population. Fits come from the session fixtures in conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import nbinom, poisson

import mbct_bayes as mb
from mbct_bayes.errors import DataError
from mbct_bayes.families import get_family
from mbct_bayes.forecast.crossval import mixture_log_density
from mbct_bayes.forecast.rules import log_score_count_baseline
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.simulate import default_truth, simulate_observations
from mbct_bayes.planning import scenarios as planning
from mbct_bayes.schema import validate_observations
from mbct_bayes.selfcheck import simulate_outcomes

COUNTS = ("poisson", "negbinomial")
SPEC = {"exposure": "population", "rate_per": 100_000}


# -- the spec --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", COUNTS)
def test_spec_keys_round_trip_through_toml(family, tmp_path):
    spec = mb.ModelSpec(family=family, **SPEC)
    assert spec.outcome == "access" and spec.rate_per == 100_000.0
    path = tmp_path / "m.toml"
    path.write_text(spec.to_toml())
    assert mb.ModelSpec.from_toml(path) == spec
    assert mb.ModelSpec(family=family).rate_per == 1.0  # default: per unit of exposure


def test_event_families_keep_their_spec_dict_and_refuse_exposure():
    assert "exposure" not in mb.ModelSpec().to_dict() and "rate_per" not in mb.ModelSpec().to_dict()
    with pytest.raises(DataError, match=r"^'exposure' is only for count families .* not 'bernoulli'; remove it$"):
        mb.ModelSpec(family="bernoulli", exposure="population")
    with pytest.raises(DataError, match="'rate_per' is only for count families"):
        mb.ModelSpec(family="binomial", rate_per=1000)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate_per": 0}, r"rate_per must be a number > 0 \(e.g. 100000 for per 100,000\), got 0"),
        ({"rate_per": "lots"}, "rate_per must be a number > 0"),
        ({"exposure": None, "rate_per": 1000}, "rate_per needs an exposure column"),
        ({"predictors": ("E", "population")}, "predictor 'population' is also the group, region, outcome, trials or "
                                              "exposure column"),
        ({"priors": {"overdispersion": {"dist": "Normal", "mu": 0, "sigma": 1}}},
         r"\[priors.overdispersion\] is a standard deviation; use a positive dist"),
    ],
)
def test_bad_count_specs_are_one_line_errors(changes, message):
    with pytest.raises(DataError, match=message) as err:
        mb.ModelSpec(family="negbinomial", **{**SPEC, **changes})
    assert "\n" not in str(err.value)


def test_overdispersion_is_named_in_priors_and_defaults_in_one_place():
    spec = mb.ModelSpec(family="negbinomial", **SPEC, priors={"overdispersion": {"dist": "Exponential", "lam": 2.0}})
    assert spec.prior_for("overdispersion") == {"dist": "Exponential", "lam": 2.0}
    assert mb.ModelSpec(family="negbinomial").prior_for("overdispersion") == dict(
        get_family("negbinomial").default_priors["overdispersion"]
    )
    with pytest.raises(DataError, match="not a parameter of this model"):
        mb.ModelSpec(family="poisson", priors={"overdispersion": {"dist": "HalfNormal", "sigma": 1.0}})


# -- the data checks -------------------------------------------------------------------------------
def _obs(family: str = "poisson") -> pd.DataFrame:
    return simulate_observations(6, 3, family, n_regions=0, seed=2)[0]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("population", 0, r"column 'population' row 3: value 0 is not > 0; exposure .* must be positive"),
        ("population", -50, r"column 'population' row 3: value -50 is not > 0"),
        ("population", np.nan, r"column 'population' row 3: missing exposure"),
        ("population", "many", r"column 'population' row 3: value 'many' is not a number"),
        ("access", 2.5, r"column 'access' row 3: value 2.5 is not a whole number; outcome must be a count"),
        ("access", -1, r"column 'access' row 3: value -1 is negative; the outcome counts events"),
    ],
)
def test_bad_counts_and_exposures_are_one_line_errors(column, value, message):
    obs = _obs().astype({column: object})
    obs.loc[2, column] = value  # the third data row
    with pytest.raises(DataError, match=message) as err:
        validate_observations(obs, mb.ModelSpec(family="poisson", **SPEC))
    assert "\n" not in str(err.value)


def test_all_zero_counts_are_refused():
    obs = _obs().assign(access=0)
    with pytest.raises(DataError, match="every count is 0; a model of rates needs some events"):
        validate_observations(obs, mb.ModelSpec(family="poisson", **SPEC))


def test_offset_is_log_exposure_and_swapped_as_data():
    spec = mb.ModelSpec(family="poisson", **SPEC)
    table = validate_observations(_obs(), spec)
    data = prepare_data(table, spec)
    np.testing.assert_allclose(data.offset, np.log(table["population"].to_numpy(float)))
    from mbct_bayes.model.build import build_model

    model = build_model(data, spec)
    assert "offset" in model.named_vars  # a pm.Data container: a refit swaps it, no recompiling


# -- simulation and the self-check's draws -----------------------------------------------------------
@pytest.mark.parametrize("family", COUNTS)
def test_simulated_counts_have_the_planned_mean(family):
    """Simulated counts average exposure · exp(eta) (closed form of the simulator's truth)."""
    truth = default_truth(family, 0)
    truth.update(sigma_site=0.0, beta={"E": 0.0, "C": 0.0, "F": 0.0}, Intercept=np.log(20 / 100_000))
    obs, _ = simulate_observations(400, 10, family, n_regions=0, seed=4, truth=truth)
    rate = obs["access"].sum() / obs["population"].sum() * 100_000
    assert rate == pytest.approx(20.0, rel=0.02)  # 4,000 rows of ~20-40 each: SE about 0.4%
    if "overdispersion" in truth:  # negbinomial: variance mean + 0.3 mean²
        mean = obs["population"] * 20 / 100_000
        excess = ((obs["access"] - mean) ** 2 - mean).sum() / (mean**2).sum()
        assert excess == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("family", COUNTS)
def test_self_check_draws_include_the_offset(family):
    spec = mb.ModelSpec(family=family, **SPEC)
    table = validate_observations(_obs(family), spec)
    S = 4000
    draws = {
        "Intercept": np.full(S, np.log(30 / 100_000)), "beta": np.zeros((S, 3)),
        "u_site": np.zeros((S, 6)), "sigma_site": np.zeros(S), "overdispersion": np.full(S, 0.2),
    }
    y = simulate_outcomes(spec, table, draws, np.random.default_rng(1))
    expected = table["population"].to_numpy(float) * 30 / 100_000
    np.testing.assert_allclose(y.mean(axis=0), expected, rtol=0.1)
    assert not get_family(family).single_class(y, None).any()


# -- recovery ---------------------------------------------------------------------------------------
def _check_recovery(fit, truth):
    s = fit.summary()
    d = s["diagnostics"]
    assert d["max_r_hat"] < 1.03 and d["min_ess_bulk"] > 80 and d["divergences"] == 0, d
    targets = {"Intercept": truth["Intercept"], **truth["beta"]}
    for name, value in targets.items():
        c = s["coefficients"][name]
        assert c["q05"] < value < c["q95"], (name, value, c)
    sd = s["group_sd"]["site"]
    assert sd["q05"] < truth["sigma_site"] < sd["q95"], (truth["sigma_site"], sd)
    return s


@pytest.mark.slow
def test_poisson_recovers_rates_and_site_sd(poisson_fit):
    fit, truth, _ = poisson_fit
    s = _check_recovery(fit, truth)
    assert "family_parameters" not in s


@pytest.mark.slow
def test_negbinomial_recovers_rates_site_sd_and_overdispersion(negbinomial_fit):
    fit, truth, _ = negbinomial_fit
    s = _check_recovery(fit, truth)
    od = s["family_parameters"]["overdispersion"]
    assert od["q05"] < truth["overdispersion"] < od["q95"], od
    assert "overdispersion" in fit.summary_table().index
    assert "rate ratios:" in fit.summary_text() and "RR per point" in fit.summary_text()


# -- planning in rates per rate_per ------------------------------------------------------------------
SITES = pd.DataFrame({"site": ["new1", "new2"], "E": [3.0, 2.0], "C": [3.0, 3.5], "F": [2.5, 4.0]})


@pytest.mark.slow
def test_typical_site_rate_is_rate_per_times_exp_eta(poisson_fit):
    fit, _, _ = poisson_fit
    out = fit.predict(SITES, kind="typical_site")
    d = fit.draws
    x = SITES[["E", "C", "F"]].to_numpy() - 3.0
    rate = 100_000 * np.exp(d["Intercept"][:, None] + d["beta"] @ x.T)
    np.testing.assert_allclose(out["p_mean"], rate.mean(axis=0), rtol=1e-10)
    assert (out["quantity"] == "expected access per 100,000 population").all()


@pytest.mark.slow
def test_what_if_levers_and_target_speak_rates(poisson_fit):
    fit, _, _ = poisson_fit
    zero = planning.what_if(fit, SITES, {"F": 0.0}, "typical_site")
    assert (zero["delta_mean"] == 0).all()
    up = planning.what_if(fit, SITES, {"F": 1.0}, "typical_site")
    # a typical site's rate after / before is exp(beta_F) in every draw; the mean ratio is its posterior mean
    ratio = up["p_after_mean"] / up["p_before_mean"]
    assert (ratio > 1).all() and (up["quantity"] == "expected access per 100,000 population").all()
    lev = planning.levers(fit, SITES, 1.0, "typical_site")
    assert lev.loc[lev["rank"] == 1, "lever"].tolist() == ["F", "F"]  # F's rate ratio is the largest
    assert "quantity" in lev.columns
    goal = float(up["p_before_mean"].min()) * 1.5
    t = planning.target(fit, SITES, "F", goal, 0.9, "typical_site")
    assert t["message"].str.contains(f"expected access per 100,000 population ≥ {goal:g}").all()
    # exact on the draws: at the target value the share of draws reaching the rate is ≥ 0.9, just below it < 0.9
    d = fit.draws
    for _, row in t[t["reachable"]].iterrows():
        site = SITES.set_index("site").loc[row["site"]]
        x = np.array([site["E"], site["C"], row["target_value"]]) - 3.0
        share = (100_000 * np.exp(d["Intercept"] + d["beta"] @ x) >= goal * (1 - 1e-12)).mean()
        below = (100_000 * np.exp(d["Intercept"] + d["beta"] @ (x - [0, 0, 1e-6])) >= goal).mean()
        assert share >= 0.9 > below
    with pytest.raises(DataError, match=r"p must be a rate > 0 \(expected access per 100,000 population\)"):
        planning.target(fit, SITES, "F", -3.0, 0.9)


@pytest.mark.slow
def test_cli_plan_says_rates_and_target_needs_a_rate(poisson_fit, tmp_path):
    fit, _, _ = poisson_fit
    path = fit.save(tmp_path / "counts.nc")
    sites = tmp_path / "sites.csv"
    SITES.to_csv(sites, index=False)
    cli = [sys.executable, "-m", "mbct_bayes.cli.main"]
    run = subprocess.run([*cli, "plan", str(path), str(sites), "--levers", "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "expected access per 100,000 population (rates, not probabilities)" in run.stderr
    assert len(json.loads(run.stdout)) == 6
    run = subprocess.run([*cli, "plan", str(path), str(sites), "--target", "F", "--json"], capture_output=True, text=True)
    assert run.returncode == 2 and "--target on a count model needs --p RATE" in run.stderr
    assert "Traceback" not in run.stderr


# -- evaluation ------------------------------------------------------------------------------------
def test_count_baseline_log_score_is_the_moment_negative_binomial():
    rng = np.random.default_rng(5)
    e_train, e_test = rng.uniform(1, 10, 300), rng.uniform(1, 10, 20)
    y_train = rng.negative_binomial(2.0, 2.0 / (2.0 + 3 * e_train))
    y_test = rng.poisson(3 * e_test)
    rate = y_train.sum() / e_train.sum()
    m = rate * e_train
    k = ((y_train - m) ** 2 - m).sum() / (m**2).sum()
    mean = rate * e_test
    expected = nbinom.logpmf(y_test, 1 / k, (1 / k) / (1 / k + mean))
    np.testing.assert_allclose(log_score_count_baseline(y_train, e_train, y_test, e_test), expected, rtol=1e-10)


def test_mixture_log_density_is_log_mean_exp_over_draws():
    spec = mb.ModelSpec(family="poisson", **SPEC)
    rows = validate_observations(_obs(), spec)
    rng = np.random.default_rng(0)
    eta = rng.normal(np.log(30 / 100_000), 0.5, (50, len(rows)))
    got = mixture_log_density(get_family("poisson"), spec, rows, eta, {})
    mu = np.exp(eta) * rows["population"].to_numpy(float)
    want = logsumexp(poisson.logpmf(rows["access"].to_numpy(), mu), axis=0) - np.log(50)
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.slow
def test_evaluate_scores_count_forecasts_against_the_rate_baseline():
    """Leave-site-out CV of a count model: mixture log scores, an NB rate baseline, positive skill
    where E, C, F drive the rates (rate ratios 1.3-2.5 per point)."""
    truth = default_truth("poisson", 0)
    truth["exposure"] = [5000, 50000]
    obs, _ = simulate_observations(24, 4, "poisson", n_regions=0, seed=8, truth=truth)
    spec = mb.ModelSpec(family="poisson", **SPEC)
    ev = mb.evaluate(obs, spec, folds=3, seed=2, draws=200, tune=200, chains=1, n_boot=200)
    m = ev.metrics
    assert set(m["model"]) == {"log_score"} and set(m["baseline"]) == {"log_score"}
    assert m["quantity"] == "expected access per 100,000 population"
    assert np.isfinite(ev.predictions["log_score"]).all() and np.isfinite(ev.predictions["log_score_baseline"]).all()
    assert m["model"]["log_score"] == pytest.approx(ev.predictions["log_score"].mean())
    assert m["skill"]["log_score"]["mean"] > 0 and m["skill"]["log_score"]["q05"] > 0, m["skill"]
    assert "predictive mixture" in m["log_score_of"]["model"]


@pytest.mark.slow
def test_report_describes_the_count_model_in_rates(poisson_fit, tmp_path):
    from mbct_bayes.plots.model import posterior_predictive
    from mbct_bayes.report import write_report

    fit, _, obs = poisson_fit
    ppc = posterior_predictive(fit, seed=1)
    observed = obs["access"].sum() / obs["population"].sum() * 100_000
    assert ppc.observed_overall == pytest.approx(observed)  # per 100,000 population, not a share
    assert np.quantile(ppc.replicated_overall, 0.02) < observed < np.quantile(ppc.replicated_overall, 0.98)
    html = unescape(write_report(fit, tmp_path / "r.html", new_sites=SITES).read_text())
    for words in ("Poisson: 'access' is a count per observation; log link, offset log('population')",
                  "log rate ratios per scale point", "rate ratio per point (90%)",
                  "expected access per 100,000 population, new site", "the log rate per unit of exposure"):
        assert words in html, words
    assert "P(embedded)" not in html


def test_the_bundled_access_spec_reads():
    spec = mb.ModelSpec.from_toml(Path(__file__).resolve().parents[1] / "models" / "negbinomial.toml")
    assert (spec.family, spec.exposure, spec.rate_per) == ("negbinomial", "population", 100_000.0)
    assert get_family(spec.family).planned_label(spec) == "expected access per 100,000 population"


@pytest.mark.slow
def test_refit_through_the_compiled_cache_swaps_the_exposure(poisson_fit):
    """The offset is data: refitting with every exposure ×10 reuses the compiled model (no new
    build) and moves only the intercept, by −log 10 (the same likelihood, reparametrised)."""
    from mbct_bayes.model import sampling

    fit, _, obs = poisson_fit
    builds = sampling.STATS["builds"]
    tenfold = obs.assign(population=obs["population"] * 10)
    refit = mb.fit(tenfold, fit.spec, seed=5, draws=600, tune=600, chains=2)
    assert sampling.STATS["builds"] == builds
    before, after = fit.summary()["coefficients"], refit.summary()["coefficients"]
    assert after["Intercept"]["mean"] - before["Intercept"]["mean"] == pytest.approx(-np.log(10), abs=0.06)
    assert after["F"]["mean"] == pytest.approx(before["F"]["mean"], abs=0.03)
