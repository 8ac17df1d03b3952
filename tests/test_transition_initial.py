"""Initial conditions of transition models (``initial_state``): spec, rows, design, forecasts, and a simulated world.

Wooldridge (2005, J. Applied Econometrics 20:39-54, "Simple solutions to the initial conditions
problem in dynamic, nonlinear panel data models with unobserved heterogeneity"): model the site
effect given the site's first observed state (and, optionally, its means of the time-varying
covariates), i.e. add them as site-level covariates. The simulated-world test draws panels whose
first state depends on the site effect (burn-in waves dropped) and checks that conditioning on it
removes most of the upward bias of ``previous[1]`` that treating it as exogenous leaves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mbct_bayes as mb
from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import forecast, initial_conditions
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.panel import lagged_rows
from mbct_bayes.model.simulate import simulate_panel
from mbct_bayes.schema import validate_observations


def _spec(truth, **changes):
    return mb.ModelSpec.from_dict({**truth["spec"], **changes})


# -- spec -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"initial_state": "yes"}, "initial_state 'yes' is not one of exogenous, condition, condition+means"),
        ({"initial_state": 1}, "initial_state must be a string, got 1"),
        ({"initial_state": "condition", "dynamics": "none"},
         "initial_state = 'condition' is only for dynamics = \"transition\"; remove it"),
        ({"initial_state": "condition", "predictors": ["E", "C", "F", "initial"]},
         "predictor 'initial' is a column a transition model makes itself"),
    ],
)
def test_bad_initial_state_is_a_one_line_error(changes, message):
    _, truth = simulate_panel(4, 3, seed=1)
    with pytest.raises(DataError) as err:
        _spec(truth, **changes)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_spec_names_the_initial_terms_and_round_trips():
    _, truth = simulate_panel(4, 3, "ordinal", seed=1)
    exogenous = _spec(truth)
    assert exogenous.initial_state == "exogenous" and "initial_state" not in exogenous.to_dict()
    spec = _spec(truth, initial_state="condition+means")
    assert spec.coef_names[-5:] == ("initial[partial]", "initial[embedded]", "mean[E]", "mean[C]", "mean[F]")
    assert _spec(truth, initial_state="condition").coef_names[-2:] == ("initial[partial]", "initial[embedded]")
    assert mb.ModelSpec.from_dict(spec.to_dict()) == spec
    assert 'initial_state = "condition+means"' in spec.to_toml()


# -- rows and design ------------------------------------------------------------------------------
def test_lagged_rows_carry_the_site_first_state_and_means():
    panel, truth = simulate_panel(12, 4, seed=3)
    panel = panel.sample(frac=1.0, random_state=1).reset_index(drop=True)  # row order must not matter
    spec = _spec(truth, initial_state="condition+means")
    rows = lagged_rows(validate_observations(panel, spec), spec)
    ordered = panel.sort_values(["site", "time"])
    first = ordered.groupby("site")["embedded"].first()
    assert (rows["initial"].to_numpy() == rows["site"].map(first).to_numpy()).all()
    # predictors_at = "previous": the modelled rows carry waves 1..T-1's scores; their mean per site
    mean_e = ordered.groupby("site").apply(lambda d: d["E"].iloc[:-1].mean(), include_groups=False)
    assert np.allclose(rows["mean[E]"], rows["site"].map(mean_e))
    X = prepare_data(rows, spec).X
    j = spec.coef_names.index("initial[1]")
    assert np.array_equal(X[:, j], (rows["initial"] == 1).to_numpy(dtype=float))
    assert np.allclose(X[:, spec.coef_names.index("mean[E]")], rows["mean[E]"] - 3.0)  # centred like E


def test_a_panel_with_an_initial_column_is_refused():
    panel, truth = simulate_panel(5, 3, seed=1)
    spec = _spec(truth, initial_state="condition")
    with pytest.raises(DataError, match="the panel has a column 'initial', which a transition model makes itself"):
        lagged_rows(panel.assign(initial=0), spec)
    lagged_rows(panel.assign(initial=0), _spec(truth))  # exogenous: the column is the user's own


def test_new_site_starts_at_its_sites_row_known_site_keeps_its_fitted_first_state():
    panel, truth = simulate_panel(6, 3, seed=2)
    spec = _spec(truth, initial_state="condition+means")
    rows = lagged_rows(validate_observations(panel, spec), spec)
    sites = pd.DataFrame({"site": ["S01", "NEW1", "NEW2"], "time": [2022.0] * 3, "E": 3.5, "C": 3.0, "F": 2.0,
                          "embedded": [1 - int(rows["initial"].iloc[0]), 1, 1], "initial": [np.nan, np.nan, 0]})
    out = initial_conditions(rows, sites, spec)
    s01 = rows[rows["site"] == "S01"].iloc[0]
    assert out["initial"].tolist() == [s01["initial"], 1, 0]
    assert out["mean[E]"].tolist() == [s01["mean[E]"], 3.5, 3.5]
    with pytest.raises(DataError, match="initial"):
        initial_conditions(rows, sites.assign(initial=["x", "x", "x"]).iloc[1:], spec)


# -- fits -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_forecast_uses_the_initial_state_of_a_new_site():
    """Same draws and site-effect draws (common random numbers): per draw the new site's P(embedded next wave)
    is higher when it started embedded exactly when that draw's initial[1] coefficient is positive."""
    panel, truth = simulate_panel(40, 4, seed=5, initial_site_effect=True)
    spec = _spec(truth, initial_state="condition")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = mb.fit(panel, spec, draws=150, tune=150, chains=2, seed=2)
    beta = np.asarray(fit.draws["beta"])[:, list(fit.spec.coef_names).index("initial[1]")]
    site = pd.DataFrame({"site": ["NEW"], "time": [2023.0], "E": [3.0], "C": [3.0], "F": [3.0], "embedded": [0]})
    started_low = forecast(fit, site.assign(initial=0), horizon=1, seed=4)
    started_high = forecast(fit, site.assign(initial=1), horizon=1, seed=4)
    delta = started_high.p[:, 0, 0, 1] - started_low.p[:, 0, 0, 1]
    assert np.array_equal(np.sign(delta), np.sign(beta))
    assert any("first state" in note for note in started_low.notes)
    known = panel[panel["wave"] == panel["wave"].max()].head(3)
    a = forecast(fit, known, horizon=2, seed=4)
    b = forecast(fit, known.assign(initial=1 - known["embedded"]), horizon=2, seed=4)  # ignored: fitted values kept
    assert np.array_equal(a.p, b.p)


#: The simulated world of the bias test: (sites, modelled waves + 1, burn-in waves dropped, site SD, data seed,
#: sampler seed). A site SD of 1.5 (the default is 0.8) makes the first state strongly endogenous.
WORLD = (200, 6, 4, 1.5, 11, 1)


def _endogenous_panel(n_sites: int, n_waves: int, burn: int, sigma_site: float, seed: int):
    """A panel whose first state depends on the site effect: ``burn`` waves drawn with it, then dropped."""
    panel, truth = simulate_panel(n_sites, n_waves + burn, seed=seed, initial_site_effect=True,
                                  truth={"sigma_site": sigma_site})
    return panel[panel["wave"] > burn].reset_index(drop=True), truth


@pytest.mark.slow
def test_conditioning_on_the_initial_state_removes_the_bias_of_previous():
    """Endogenous first states: ``exogenous`` overstates previous[1]; ``condition`` recovers it.

    World (:data:`WORLD`): :func:`simulate_panel` (previous[1] = 2.5, E/C/F 0.3/0.5/0.9) with
    sigma_site = 1.5 and 4 burn-in waves with the site effect dropped, so the first kept state is
    drawn from the process itself. Measured at this seed (300 draws x 2 chains): see the asserts' messages. The study
    behind the default (200 sites x 6 waves, 3 seeds, 4 x 1000 draws) is benchmarks/RESULTS.md §12.
    """
    n_sites, n_waves, burn, sigma_site, data_seed, seed = WORLD
    panel, truth = _endogenous_panel(n_sites, n_waves, burn, sigma_site, data_seed)
    est = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        for mode in ("exogenous", "condition"):
            fit = mb.fit(panel, _spec(truth, initial_state=mode), draws=300, tune=300, chains=2, seed=seed)
            est[mode] = fit.summary()["coefficients"]["previous[1]"]
    true = truth["beta"]["previous[1]"]
    bias = {mode: c["mean"] - true for mode, c in est.items()}
    assert bias["exogenous"] > 0.3, bias  # the initial-conditions problem is there to remove
    assert abs(bias["condition"]) < bias["exogenous"] - 0.3, bias
    assert est["condition"]["q05"] <= true <= est["condition"]["q95"], est["condition"]
