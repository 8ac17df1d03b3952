"""Simulation-based calibration of a latent-measurement spec (``mbct_bayes.check`` with ``responses=``).

A small design keeps it cheap: 14 sites x 4 units, 3 respondents per site answering the ORCA-MBCT
items (roles as simulated), spec ``models/latent.toml``. Every SBC run here shares one compiled
model (same structure), 100 draws x 2 chains per refit, ranks among 49 thinned draws. Measured on
the loaded shared machine (~10 % of a core): the first SBC test 21 min (nearly all of it the one
nutpie compile of the latent model), the second 69 s (warm refits).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.model.build import prepare_data
from mbct_bayes.selfcheck import FAMILY_ALPHA, prior_draws, simulate_scores

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CODEBOOK = ROOT / "data" / "codebook_orca_mbct.csv"
SBC = {"draws": 100, "tune": 200, "chains": 2, "rank_draws": 49, "seed": 3}


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    """Observations (no E, C, F: they are measured), survey items and their scores, and file paths."""
    from mbct_bayes.survey.scoring import read_codebook, score_responses
    from mbct_bayes.survey.simulate import simulate_survey_study

    codebook = read_codebook(CODEBOOK)
    obs, items, _ = simulate_survey_study(14, 4, codebook, respondents_per_site=3, seed=4)
    folder = tmp_path_factory.mktemp("latent_design")
    obs.to_csv(folder / "obs.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    scores = score_responses(items, codebook)
    scores.to_csv(folder / "scores.csv", index=False)
    return {"obs": obs, "items": items, "scores": scores, "folder": folder}


@pytest.fixture(scope="module")
def spec():
    return mb.ModelSpec.from_toml(MODELS / "latent.toml")


def _validated(design, spec):
    from mbct_bayes.model.fit import _validated

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.DataWarning)
        return _validated(design["obs"], spec, design["scores"])


# -- the pieces: prior draws of the latent population, simulated respondents ----------------------
def test_prior_true_scores_are_the_population_not_the_conditional_given_the_users_scores(design, spec):
    table, responses = _validated(design, spec)
    draws = prior_draws(table, spec, 1500, seed=11, responses=responses)
    # true scores ~ MvNormal(latent_mean, Sigma): standardised per construct, Normal(0, 1) at every site
    z = (draws["latent"] - draws["latent_mean"][:, None, :]) / draws["latent_sd"][:, None, :]
    for site, construct in [(0, 0), (5, 1), (13, 2)]:
        assert stats.kstest(z[:, site, construct], "norm").pvalue > 0.01
    # their correlation is the LKJ draw's: corr(z_E, z_C) over draws averages out near 0 (LKJ(2) is symmetric)
    assert abs(np.corrcoef(z[:, 3, 0], z[:, 3, 1])[0, 1]) < 0.1
    # site effects Normal(0, sigma_site); and the hyperparameters are the spec's priors
    assert stats.kstest((draws["u_site"] / draws["sigma_site"][:, None])[:, 2], "norm").pvalue > 0.01
    assert stats.kstest(draws["sigma_measure"][:, 1], stats.halfnorm(scale=1.0).cdf).pvalue > 0.01  # latent.toml
    assert stats.kstest(draws["latent_sd"][:, 0], stats.halfnorm(scale=0.75).cdf).pvalue > 0.01
    assert stats.kstest(draws["beta"][:, 2], stats.norm(0.25, 2.0).cdf).pvalue > 0.01


def test_simulated_scores_follow_the_measurement_model(design, spec):
    table, responses = _validated(design, spec)
    data = prepare_data(table, spec, responses=responses)
    reps, n_sites, n_roles = 3000, len(data.site_labels), len(data.role_labels)
    latent = np.tile(np.linspace(-1, 1, n_sites * 3).reshape(1, n_sites, 3), (reps, 1, 1))
    offsets = np.tile(np.linspace(-0.4, 0.4, 3 * n_roles).reshape(1, 3, n_roles), (reps, 1, 1))
    sigma = np.tile([0.5, 1.0, 2.0], (reps, 1))
    draws = {"latent": latent, "role_offset": offsets, "sigma_measure": sigma}
    x = simulate_scores(data, draws, np.random.default_rng(0))
    assert x.shape == (reps, data.resp_value.size)
    expected = latent[0, data.resp_site, data.resp_pred] + offsets[0, data.resp_pred, data.resp_role]
    sd = sigma[0, data.resp_pred]
    assert np.all(np.abs(x.mean(axis=0) - expected) < 4.5 * sd / np.sqrt(reps))
    np.testing.assert_allclose(x.std(axis=0), sd, rtol=0.08)


# -- SBC end to end -------------------------------------------------------------------------------
@pytest.mark.slow  # the latent model's nutpie compile: 1-2 CPU-minutes, once per process
def test_latent_check_on_the_cli_with_survey_items_passes_and_reports_every_latent_parameter(design, capsys):
    f = design["folder"]
    args = ["check", str(MODELS / "latent.toml"), "--like", str(f / "obs.csv"), "--responses", str(f / "items.csv"),
            "--codebook", str(CODEBOOK), "--reps", "20", "--draws", "100", "--tune", "200", "--chains", "2",
            "--seed", "5", "--json"]
    status = main(args)
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert status == 0 and out["passed"], captured.err
    assert {"reps", "divergent_fits", "degenerate_share", "parameters", "ranks", "passed"} <= set(out)
    roles = sorted(set(design["items"]["role"]))
    latent = [f"{name}[{p}]" for name in ("latent_mean", "latent_sd", "sigma_measure") for p in "ECF"]
    latent += ["latent_corr[E,C]", "latent_corr[E,F]", "latent_corr[C,F]"]
    latent += [f"role_offset[{p},{role}]" for p in "ECF" for role in roles]
    assert list(out["parameters"]) == ["Intercept", "E", "C", "F", "sigma_site", *latent]
    assert out["settings"]["respondent_scores"] == int(design["scores"][["E", "C", "F"]].notna().sum().sum())
    fitted = out["fitted_reps"]
    assert fitted >= 14 and all(len(r) == fitted for r in out["ranks"].values())
    # every parameter's 90% interval holds its true value in most refits (P(≤ half) < 1e-3 at 0.9 per parameter)
    assert all(p["coverage_90"] > 0.5 for p in out["parameters"].values()), out["parameters"]


@pytest.mark.slow  # the latent model's nutpie compile: 1-2 CPU-minutes, once per process
def test_latent_check_fails_when_the_simulating_prior_differs(design, spec):
    priors = dict(spec.priors)
    priors["F"] = {"dist": "Normal", "mu": 4.25, "sigma": 0.5}  # truth 4 points above the fitted prior's 0.25
    shifted = spec.with_changes(priors=priors)
    result = mb.check(spec, like=design["obs"], responses=design["scores"], reps=24, _simulate_spec=shifted, **SBC)
    assert not result.passed
    assert result.parameters["F"]["rejected"]
    assert result.parameters["F"]["rank_p_value"] < FAMILY_ALPHA / len(result.parameters)
    assert np.mean(result.ranks["F"]) > 0.6 * SBC["rank_draws"]  # true values sit high in posteriors pulled to 0.25
    assert "sigma_measure[E]" in result.parameters and "FAILED" in result.summary()
    assert "latent measurement" in result.summary()


# -- bad input --------------------------------------------------------------------------------------
def test_a_latent_spec_without_responses_is_a_one_line_error(design, spec):
    with pytest.raises(DataError, match='measurement = "latent" needs respondent scores: pass responses='):
        mb.check(spec, like=design["obs"], reps=20)


def test_responses_at_sites_not_in_the_design_are_a_one_line_error(design, spec):
    stray = pd.concat([design["scores"], design["scores"].head(2).assign(site=["X1", "X2"])], ignore_index=True)
    with pytest.raises(DataError, match=r"responses: site 'X1' \(and 1 more\) is not in observations, whose design"):
        mb.check(spec, like=design["obs"], responses=stray, reps=20)


def test_an_observed_spec_with_responses_is_a_one_line_error(design):
    obs = design["obs"].assign(E=3.0, C=3.0, F=3.0)
    with pytest.raises(DataError, match='responses were given but the spec\'s measurement is "observed"'):
        mb.check(mb.ModelSpec.from_toml(MODELS / "bernoulli.toml"), like=obs, responses=design["scores"], reps=20)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], 'measurement = "latent" needs respondent scores: pass responses= (Python) or --responses (CLI)'),
        (["--codebook", str(CODEBOOK)], "--codebook needs --responses (the survey items to score)"),
        (["--responses", "{f}/stray.csv"], "responses: site 'X1' is not in obs.csv, whose design"),
    ],
    ids=["no-responses", "codebook-alone", "stray-site"],
)
def test_cli_bad_latent_input_is_exit_2_in_one_line(design, capsys, extra, message):
    f = design["folder"]
    design["scores"].head(3).assign(site="X1").pipe(
        lambda d: pd.concat([design["scores"], d])).to_csv(f / "stray.csv", index=False)
    args = ["check", str(MODELS / "latent.toml"), "--like", str(f / "obs.csv"), "--reps", "20",
            *[a.format(f=f) for a in extra]]
    status = main(args)
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and message in err, err
