"""Simulation-based calibration (mbct_bayes.check) and prior sensitivity (mbct_bayes.sensitivity).

The SBC runs use the example designs with 40 simulated studies, 250 draws × 2 chains per refit
and ranks among 49 thinned draws: enough to catch a planted prior mismatch (the F coefficient's
simulating prior shifted by +2) with the package's rule, cheap enough for the suite. The
compiled models are the session fixtures' (same structure, so nothing compiles again).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.model.sensitivity import FLAGGED, diagnosis, flagged, log_density
from mbct_bayes.selfcheck import (
    FAMILY_ALPHA,
    degenerate,
    parameter_draws,
    prior_draws,
    rank_bins,
    rank_uniformity_p,
    simulate_outcomes,
    thinned_rank,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"

SBC = {"reps": 40, "draws": 250, "tune": 250, "chains": 2, "rank_draws": 49, "seed": 3}


def _spec(name: str) -> mb.ModelSpec:
    return mb.ModelSpec.from_toml(MODELS / name)


def _shift_prior(spec: mb.ModelSpec, name: str, mu: float, sigma: float) -> mb.ModelSpec:
    priors = dict(spec.priors)
    priors[name] = {"dist": "Normal", "mu": mu, "sigma": sigma}
    return spec.with_changes(priors=priors)


# -- rank statistics: exact values ---------------------------------------------------------------
def test_thinned_rank_counts_kept_draws_below_the_truth():
    draws = np.arange(1000, dtype=float)  # kept: 0, ~10.1, ..., 999 (99 evenly spread)
    assert thinned_rank(-1.0, draws) == 0
    assert thinned_rank(1e9, draws) == 99
    keep = np.round(np.linspace(0, 999, 99))
    assert thinned_rank(500.0, draws) == int((keep < 500).sum()) == 49


def test_rank_bins_keep_five_expected_per_bin_and_divide_the_ranks():
    assert rank_bins(200) == 20  # 10 per bin, 20 divides 100
    assert rank_bins(40) == 5  # 8 per bin
    assert rank_bins(40, rank_draws=49) == 5
    assert rank_bins(10) == 2


def test_rank_uniformity_p_is_pearsons_chi_square():
    ranks = np.repeat(np.arange(100), 2)  # 200 ranks, exactly uniform
    assert rank_uniformity_p(ranks) == pytest.approx(1.0)
    skewed = np.r_[np.zeros(60, int), np.arange(100).repeat(1), np.full(40, 99)]
    counts = np.bincount(skewed * 20 // 100, minlength=20)
    expected = counts.sum() / 20
    stat = ((counts - expected) ** 2 / expected).sum()
    assert rank_uniformity_p(skewed) == pytest.approx(stats.chi2.sf(stat, 19))


def test_degenerate_studies_match_what_the_schema_refuses():
    spec_b, spec_k, spec_o = _spec("bernoulli.toml"), _spec("binomial.toml"), _spec("ordinal.toml")
    y = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0]])
    assert degenerate(y, spec_b).tolist() == [True, True, False]
    trials = np.array([2, 3, 1])
    k = np.array([[0, 0, 0], [2, 3, 1], [2, 3, 0], [1, 0, 0]])
    assert degenerate(k, spec_k, trials).tolist() == [True, True, False, False]
    assert degenerate(np.array([[2, 2], [0, 2]]), spec_o).tolist() == [True, False]
    # and the schema does refuse an all-embedded binomial study
    obs = mb.read_observations(EXAMPLE / "observations_binomial.csv")
    obs["embedded"] = obs["trials"]
    with pytest.raises(DataError, match="every outcome is equal to trials"):
        mb.validate_observations(obs, spec_k)


def test_simulated_outcomes_follow_the_linear_predictor():
    spec = _spec("ordinal.toml")
    table = mb.validate_observations(mb.read_observations(EXAMPLE / "observations_ordinal.csv"), spec)
    n_sites, reps = table["site"].nunique(), 4000
    draws = {  # every rep the same parameters: eta = 0.8 * (E - 3), no site effects
        "beta": np.tile([0.8, 0.0, 0.0], (reps, 1)), "u_site": np.zeros((reps, n_sites)),
        "cutpoints": np.tile([-0.5, 1.0], (reps, 1)), "sigma_site": np.ones(reps),
    }
    y = simulate_outcomes(spec, table, draws, np.random.default_rng(0))
    eta = 0.8 * (table["E"].to_numpy() - 3.0)
    p_top = stats.logistic.sf(1.0 - eta)  # P(level > 1) = expit(eta - c_2)
    se = np.sqrt(p_top * (1 - p_top) / reps)
    assert np.all(np.abs((y == 2).mean(axis=0) - p_top) < 4.5 * se)


def test_prior_draws_are_the_specs_priors_with_sorted_cutpoints():
    spec = _spec("ordinal.toml")
    table = mb.validate_observations(mb.read_observations(EXAMPLE / "observations_ordinal.csv"), spec)
    draws = prior_draws(table, spec, 4000, seed=5)
    assert np.all(np.diff(draws["cutpoints"], axis=1) > 0)
    flat = parameter_draws(draws, spec)
    assert list(flat) == ["E", "C", "F", "sigma_site", "cutpoint[none|partial]", "cutpoint[partial|embedded]"]
    # F ~ Normal(0.25, 1) and sigma_site ~ HalfNormal(1) as bernoulli.toml/ordinal.toml say
    assert stats.kstest(flat["F"], stats.norm(0.25, 1).cdf).pvalue > 0.01
    assert stats.kstest(flat["sigma_site"], stats.halfnorm(scale=1).cdf).pvalue > 0.01
    # sorted i.i.d. StudentT(3, 0, 2.5): the lower cutpoint is the minimum of two draws
    t = stats.t(3, 0, 2.5)
    assert stats.kstest(draws["cutpoints"][:, 0], lambda x: 1 - t.sf(x) ** 2).pvalue > 0.01


# -- SBC end to end ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "spec_file", "obs_file"),
    [
        ("example_fit", "bernoulli.toml", "observations.csv"),
        ("binomial_fit", "binomial.toml", "observations_binomial.csv"),
        ("ordinal_fit", "ordinal.toml", "observations_ordinal.csv"),
    ],
)
def test_check_passes_at_the_example_design(fixture, spec_file, obs_file, request):
    request.getfixturevalue(fixture)  # its compiled model is reused
    spec = _spec(spec_file)
    result = mb.check(spec, like=EXAMPLE / obs_file, **SBC)
    assert result.passed, result.summary()
    m = len(result.parameters)
    assert all(p["rank_p_value"] >= FAMILY_ALPHA / m for p in result.parameters.values())
    expected = {"bernoulli": 5, "binomial": 6, "ordinal": 6}[spec.family]
    assert m == expected and "sigma_site" in result.parameters
    assert result.fitted_reps + result.degenerate_reps == SBC["reps"]
    assert all(len(r) == result.fitted_reps for r in result.ranks.values())
    assert all(0 <= r.min() and r.max() <= SBC["rank_draws"] for r in result.ranks.values())
    # 90% intervals cover about 90% of true values (±3 SE for the refits run)
    se = np.sqrt(0.9 * 0.1 / result.fitted_reps)
    mean_cover = np.mean([p["coverage_90"] for p in result.parameters.values()])
    assert abs(mean_cover - 0.9) < 3 * se


def test_check_fails_when_the_simulating_prior_differs(example_fit):
    spec = _spec("bernoulli.toml")
    shifted = _shift_prior(spec, "F", 0.25 + 2.0, 1.0)  # the truth comes from Normal(2.25, 1)
    result = mb.check(spec, like=EXAMPLE / "observations.csv", _simulate_spec=shifted, **SBC)
    assert not result.passed
    assert result.parameters["F"]["rejected"]
    assert result.parameters["F"]["rank_p_value"] < FAMILY_ALPHA / len(result.parameters)
    # true values sit high in posteriors pulled toward the fitted prior's 0.25
    assert np.mean(result.ranks["F"]) > 0.6 * SBC["rank_draws"]
    assert "FAILED" in result.summary()
    fig = result.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(result.parameters)


def test_same_seed_same_numbers_on_dask_and_the_json_and_files(example_fit, tmp_path, capsys):
    args = ["check", str(MODELS / "bernoulli.toml"), "--like", str(EXAMPLE / "observations.csv"), "--reps", "12",
            "--draws", "60", "--tune", "100", "--chains", "2", "--seed", "9", "--json", "--out", str(tmp_path / "sbc")]
    status = main(args)
    out = json.loads(capsys.readouterr().out)
    assert status == (0 if out["passed"] else 1)
    assert {"reps", "divergent_fits", "degenerate_share", "parameters", "ranks", "passed"} <= set(out)
    assert out["reps"] == 12
    assert set(out["parameters"]["F"]) >= {"rank_p_value", "coverage_50", "coverage_90"}
    assert len(out["ranks"]["sigma_site"]) == 12 - round(12 * out["degenerate_share"])
    # the same seed on a Dask cluster (in-process workers) gives the same ranks as the CLI's threads
    import distributed

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        again = mb.check(_spec("bernoulli.toml"), like=EXAMPLE / "observations.csv", reps=12, draws=60, tune=100,
                         chains=2, seed=9, scheduler=client)
    assert again.to_dict()["ranks"] == out["ranks"]
    for name in ("check.json", "fits.csv", "ecdf.png"):
        assert (tmp_path / "sbc" / name).stat().st_size > 0
    # the report shows it when given
    from mbct_bayes.report import render_report

    html = render_report(example_fit, check_dir=tmp_path / "sbc")
    assert '<section id="check">' in html and "Self-check: simulation-based calibration" in html
    assert ("passed the calibration check" if out["passed"] else "FAILED the calibration check") in html
    assert html.count("data:image/png;base64,") >= 1 and "ECDF difference of the SBC ranks" in html


def test_report_refuses_a_folder_without_check_json(example_fit, tmp_path):
    from mbct_bayes.report import render_report

    with pytest.raises(DataError, match=r"no check\.json in the check folder"):
        render_report(example_fit, check_dir=tmp_path)
    (tmp_path / "check.json").write_text('{"reps": 3}')
    with pytest.raises(DataError, match="expected a check result with 'parameters' and 'passed'"):
        render_report(example_fit, check_dir=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reps": 5}, "--reps must be a whole number ≥ 10, got 5"),
        ({"reps": 9.5}, "--reps must be a whole number ≥ 10"),
        ({"reps": 20, "draws": 20, "chains": 2}, "draws × chains = 40 is fewer than the 99 draws"),
        ({"reps": 20, "n_jobs": 0}, "n_jobs=0 must be a whole number ≥ 1"),
        ({"reps": 20, "sampler": "stan"}, "sampler 'stan' is not 'nutpie' or 'pymc'"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("×", "×")):
        mb.check(_spec("bernoulli.toml"), like=EXAMPLE / "observations.csv", **kwargs)


def test_bad_inputs_give_the_existing_validation_errors(tmp_path):
    with pytest.raises(DataError, match="observations file not found"):
        mb.check(_spec("bernoulli.toml"), like=tmp_path / "missing.csv", reps=20)
    obs = mb.read_observations(EXAMPLE / "observations.csv").drop(columns="F")
    with pytest.raises(DataError, match="'F'"):
        mb.check(_spec("bernoulli.toml"), like=obs, reps=20)
    latent = _spec("bernoulli.toml").with_changes(measurement="latent")  # latent specs: tests/test_check_latent.py
    with pytest.raises(DataError, match='measurement = "latent" needs respondent scores: pass responses='):
        mb.check(latent, like=EXAMPLE / "observations.csv", reps=20)


def test_cli_reps_below_ten_is_one_line_exit_2(capsys):
    status = main(["check", str(MODELS / "bernoulli.toml"), "--like", str(EXAMPLE / "observations.csv"), "--reps", "3"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and "--reps must be a whole number ≥ 10, got 3" in err


# -- prior sensitivity -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prior", "x"),
    [
        ({"dist": "Normal", "mu": 0.25, "sigma": 1.5}, [-2.0, 0.0, 3.0]),
        ({"dist": "StudentT", "nu": 3.0, "mu": 0.5, "sigma": 2.5}, [-4.0, 0.1, 7.0]),
        ({"dist": "Cauchy", "alpha": 0.0, "beta": 2.0}, [-3.0, 0.0, 9.0]),
        ({"dist": "HalfNormal", "sigma": 0.7}, [0.01, 0.5, 3.0]),
        ({"dist": "HalfStudentT", "nu": 3.0, "sigma": 2.5}, [0.01, 1.0, 8.0]),
        ({"dist": "HalfCauchy", "beta": 1.0}, [0.01, 1.0, 20.0]),
        ({"dist": "Exponential", "lam": 2.0}, [0.01, 1.0, 4.0]),
    ],
)
def test_log_prior_density_equals_pymcs(prior, x):
    import pymc as pm

    params = {k: v for k, v in prior.items() if k != "dist"}
    expected = pm.logp(getattr(pm, prior["dist"]).dist(**params), np.array(x)).eval()
    np.testing.assert_allclose(log_density(prior, np.array(x)), expected, rtol=1e-6)


def test_diagnosis_words_follow_the_thresholds():
    assert diagnosis(0.04, 0.5) == "ok"
    assert diagnosis(0.07, 0.5) == "some prior influence"
    assert diagnosis(0.2, 0.08) == "prior-data conflict"
    assert diagnosis(0.2, 0.01) == "prior dominates"


def test_example_fit_is_not_flagged_and_summary_carries_it(example_fit):
    s = example_fit.summary()
    sens = s["prior_sensitivity"]
    assert set(sens) == {"Intercept", "E", "C", "F", "sigma_site"}
    assert flagged(sens) == {}, sens
    assert all(set(v) == {"prior", "likelihood", "diagnosis"} for v in sens.values())
    # the data inform every coefficient (likelihood sensitivity well above the 0.05 rule of thumb)
    assert all(sens[name]["likelihood"] > 0.05 for name in ("E", "C", "F"))
    text = example_fit.summary_text()
    assert "prior sensitivity (power-scaling): no parameter flagged" in text
    json.dumps(s)  # JSON-ready


def test_tight_prior_far_from_the_data_is_flagged(example_fit):
    spec = _spec("bernoulli.toml")
    tight = _shift_prior(spec, "F", 5.0, 0.1)  # the example's F effect is about 0.9 per point
    # all-Normal coefficient priors are data containers: the example's compiled model samples the tight prior
    compiled = dataclasses.replace(mb.compile_model(example_fit.data, spec), spec=tight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = compiled.sample(seed=1, draws=400, tune=400, chains=2)
    assert fit.summary()["coefficients"]["F"]["mean"] > 4.5  # the prior won
    sens = fit.prior_sensitivity
    assert sens["F"]["diagnosis"] in FLAGGED
    assert sens["F"]["prior"] >= 0.1
    assert "FLAGGED" in fit.summary_text() and "F (prior-data conflict)" in fit.summary_text()
