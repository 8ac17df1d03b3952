"""Simulation-based calibration (``mb.check``) on panel specs: transition models and time trends.

The forward simulation of a transition panel is checked against probabilities computed by hand
from the linear predictor (not through the package's design matrix): a site's first wave keeps
the design's state, and each later wave depends on the state *simulated* at the wave before.
The end-to-end runs use small panels and few, short refits (plumbing, and a planted prior
mismatch the check must catch); the real calibration numbers, 100-200 data sets per spec at
40 sites × 6 waves, are in benchmarks/RESULTS.md section 12c. The file needed 40 CPU seconds
(4 min 44 s wall at load 14, 2026-12-02), most of it compiling the two models.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.model.simulate import default_time_trend, default_truth, simulate_observations, simulate_panel
from mbct_bayes.selfcheck import FAMILY_ALPHA, modelled, pinned_priors, simulate_outcomes

# an informative prior on the previous state's effect, so a planted shift of its simulating prior
# leaves the true values far out in the posteriors pulled toward 0
PREVIOUS_PRIOR = {"dist": "Normal", "mu": 0.0, "sigma": 0.5}
SBC = {"reps": 20, "draws": 150, "tune": 150, "chains": 2, "rank_draws": 49, "seed": 4}


def _panel(n_sites=30, n_waves=4, seed=2):
    panel, truth = simulate_panel(n_sites, n_waves, "bernoulli", gaps=(1.0, 2.0), n_regions=0, seed=seed)
    spec = mb.ModelSpec.from_dict(truth["spec"])
    return panel, spec.with_changes(priors={"previous[1]": PREVIOUS_PRIOR})


def test_transition_panels_are_simulated_forward_from_each_sites_observed_first_wave():
    panel, spec = _panel(n_sites=3, n_waves=3)
    spec = pinned_priors(spec, panel)
    n_draws = 40_000
    draws = {  # one parameter set, repeated: the shares below are its probabilities
        "Intercept": np.full(n_draws, -0.4), "beta": np.tile([0.3, -0.2, 0.5, 2.0, 0.4, -0.8], (n_draws, 1)),
        "u_site": np.tile([0.5, -0.3, 0.1], (n_draws, 1)), "sigma_site": np.ones(n_draws),
    }
    y = simulate_outcomes(spec, panel, draws, np.random.default_rng(0))
    assert y.shape == (n_draws, len(panel))
    first = panel["wave"].to_numpy() == 1
    assert (y[:, first] == panel.loc[first, "embedded"].to_numpy()).all()  # the model conditions on them
    assert modelled(y, panel, spec).shape == (n_draws, int((~first).sum()))

    # by hand: eta = Intercept + beta·(x_prev - 3) + prev[1]·s + gap·g + gap:prev[1]·g·s + u_site, g = gap - 1.5
    def p_embedded(site, wave, state):
        now = panel[(panel.site == panel.site.unique()[site]) & (panel.wave == wave)].iloc[0]
        before = panel[(panel.site == now.site) & (panel.wave == wave - 1)].iloc[0]
        x = before[["E", "C", "F"]].to_numpy(dtype=float) - 3.0
        g = now.time - before.time - 1.5
        b = draws["beta"][0]
        return expit(-0.4 + x @ b[:3] + b[3] * state + b[4] * g + b[5] * g * state + draws["u_site"][0, site])

    se = 3 * np.sqrt(0.25 / n_draws)
    for site in range(3):
        rows = np.flatnonzero(panel.site == panel.site.unique()[site])
        start = panel.embedded.iloc[rows[0]]
        p2 = p_embedded(site, 2, start)
        assert abs(y[:, rows[1]].mean() - p2) < se
        # wave 3 mixes over wave 2's simulated state (not the design's observed one)
        p3 = p2 * p_embedded(site, 3, 1) + (1 - p2) * p_embedded(site, 3, 0)
        assert abs(y[:, rows[2]].mean() - p3) < se
        # and given that state it is the transition probability
        embedded_at_2 = y[:, rows[1]] == 1
        assert abs(y[embedded_at_2, rows[2]].mean() - p_embedded(site, 3, 1)) < 3 * np.sqrt(0.25 / embedded_at_2.sum())


@pytest.fixture(scope="module")
def panel_design():
    return _panel()


def test_check_runs_on_a_transition_panel_and_reports_its_parameters(panel_design, tmp_path, capsys):
    panel, spec = panel_design
    panel.to_csv(tmp_path / "panel.csv", index=False)
    (tmp_path / "spec.toml").write_text(spec.to_toml(), encoding="utf-8")
    args = ["check", str(tmp_path / "spec.toml"), "--like", str(tmp_path / "panel.csv"), "--json",
            "--reps", str(SBC["reps"]), "--draws", "150", "--tune", "150", "--chains", "2", "--seed", "4"]
    status = main(args)
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["passed"], out["parameters"]
    names = {"Intercept", "E", "C", "F", "previous[1]", "gap", "gap:previous[1]", "sigma_site"}
    assert set(out["parameters"]) == names == set(out["ranks"])
    assert out["reps"] == SBC["reps"] == out["fitted_reps"] + out["degenerate_reps"]
    assert all(len(r) == out["fitted_reps"] for r in out["ranks"].values())
    # the default widths of the outcome-driven columns are fixed at the design's (see pinned_priors)
    pinned = out["settings"]["pinned_priors"]
    assert set(pinned) == names - {"Intercept", "sigma_site", "previous[1]"}
    assert all(p["dist"] == "Normal" and p["sigma"] > 0 for p in pinned.values())


def test_check_fails_on_a_transition_panel_when_the_simulating_prior_differs(panel_design):
    panel, spec = panel_design
    shifted = spec.with_changes(priors={"previous[1]": {**PREVIOUS_PRIOR, "mu": 2.5}})
    result = mb.check(spec, like=panel, _simulate_spec=shifted, **SBC)
    assert not result.passed
    assert result.parameters["previous[1]"]["rejected"]
    assert result.parameters["previous[1]"]["rank_p_value"] < FAMILY_ALPHA / len(result.parameters)
    # the true values sit high in posteriors pulled toward the fitted prior's 0
    assert np.mean(result.ranks["previous[1]"]) > 0.8 * SBC["rank_draws"]


def test_check_runs_on_a_time_trend_panel_and_reports_the_slope_parameters():
    truth = default_truth("bernoulli", n_regions=0)
    truth["time_trend"] = default_time_trend()
    obs, _ = simulate_observations(16, 4, "bernoulli", n_regions=0, seed=3, truth=truth)
    spec = mb.ModelSpec(family="bernoulli", time="wave", time_trend=True)
    # seed 3: none of the 12 simulated studies is single-class (seed 2 had one, leaving 11 to refit)
    result = mb.check(spec, like=obs, reps=12, draws=60, tune=100, chains=2, rank_draws=49, seed=3)
    out = result.to_dict()
    assert set(out["parameters"]) == {"Intercept", "E", "C", "F", "time", "sigma_site", "sigma_slope", "corr_site_slope"}
    assert out["reps"] == 12 and "pinned_priors" not in out["settings"]  # a trend's design does not depend on the outcome
    assert all(len(r) == result.fitted_reps for r in out["ranks"].values())
    assert all(0 <= min(r) and max(r) <= 49 for r in out["ranks"].values())
