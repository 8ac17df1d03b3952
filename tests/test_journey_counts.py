"""Forecasting access counts (issue 14 item 5): the expected rate per site and future wave, and what if.

The exact checks use a stand-in posterior with chosen draws (three draws of a Poisson model with
a time trend and site slopes), so the forecast rate is compared with ``rate_per · exp(eta)`` written
out by hand; one small real fit of a simulated panel checks the command line end to end.
"""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import CountForecast, forecast
from mbct_bayes.model.build import ModelData, prepare_data
from mbct_bayes.model.fit import Fit
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.spec import ModelSpec

RATE_PER = 100_000.0
INTERCEPT = np.array([-8.0, -7.5, -8.2])
BETA = np.array([[0.3, 0.5, 0.9, 0.10], [0.2, 0.4, 1.1, 0.20], [0.1, 0.6, 0.7, -0.05]])  # E, C, F, time
U_SITE = np.array([[0.4, -0.6], [0.1, -0.2], [0.7, 0.0]])  # sites A, B
B_SITE = np.array([[0.05, -0.1], [0.0, 0.1], [-0.02, 0.03]])
SIGMA_SITE, SIGMA_SLOPE, CORR = np.array([0.8, 0.6, 0.9]), np.array([0.1, 0.2, 0.15]), np.array([0.3, -0.2, 0.0])
SITES = pd.DataFrame({"site": ["A", "N"], "year": [2020.0, 2020.0], "E": [4.0, 3.0], "C": [3.5, 2.0], "F": [2.0, 4.5]})


def hand_fit(time_trend: bool = True):
    """A stand-in Poisson fit (posterior + data): sites A, B fitted at 2018-2020, origin 2020."""
    spec = ModelSpec(
        family="poisson", exposure="population", rate_per=RATE_PER, time="year", time_trend=time_trend,
        time_origin=2020.0 if time_trend else None,
    )
    data = pd.DataFrame({
        "site": ["A"] * 3 + ["B"] * 3, "year": [2018.0, 2019.0, 2020.0] * 2, "E": 3.0, "C": 3.0, "F": 3.0,
        "access": [10, 12, 15, 5, 4, 6], "population": 20_000.0,
    })
    names = spec.coef_names
    md = ModelData(
        X=np.zeros((6, len(names))), coef_names=names, x_sd=np.ones(len(names)), y=data.access.to_numpy(),
        trials=None, site_idx=np.repeat([0, 1], 3), site_labels=("A", "B"), region_idx=None, region_labels=None,
    )
    draws = {"Intercept": INTERCEPT, "beta": BETA[:, : len(names)], "u_site": U_SITE, "sigma_site": SIGMA_SITE}
    if time_trend:
        draws.update(b_site=B_SITE, sigma_slope=SIGMA_SLOPE, corr_site_slope=CORR)
    return SimpleNamespace(posterior=Posterior.from_draws(spec, md, draws), data=data, spec=spec)


def hand_rate(e, c, f, years_on, u, b):
    """``rate_per · exp(Intercept + β·(x - 3) + (time + b)·(t - 2020) + u)`` per draw (E, C, F centred at 3)."""
    eta = INTERCEPT + BETA[:, 0] * (e - 3) + BETA[:, 1] * (c - 3) + BETA[:, 2] * (f - 3) + u
    return RATE_PER * np.exp(eta + (BETA[:, 3] + b) * years_on)


def test_rate_of_a_known_and_a_new_site_is_the_hand_computation():
    result = forecast(hand_fit(), SITES, horizon=2, seed=7)
    assert isinstance(result, CountForecast) and result.rate.shape == (3, 2, 2)
    for k in (1, 2):  # site A keeps its own intercept and slope
        np.testing.assert_allclose(result.rate[:, 0, k - 1], hand_rate(4.0, 3.5, 2.0, k, U_SITE[:, 0], B_SITE[:, 0]))
    # site N: per draw one intercept z ~ N(0, 1), then the slope given it (planning.predict.new_site_slopes)
    rng = np.random.default_rng(7)
    z, z2 = rng.standard_normal((3, 1))[:, 0], rng.standard_normal((3, 1))[:, 0]
    slope = SIGMA_SLOPE * (CORR * z + np.sqrt(1 - CORR**2) * z2)
    for k in (1, 2):
        np.testing.assert_allclose(result.rate[:, 1, k - 1], hand_rate(3.0, 2.0, 4.5, k, SIGMA_SITE * z, slope))
    table = result.summary()
    assert list(table.time) == [2021.0, 2022.0, 2021.0, 2022.0] and list(table.known_site) == [True, True, False, False]
    np.testing.assert_allclose(table.rate, result.rate.mean(axis=0).ravel())
    assert (table.rate_q05 <= table.rate).all() and (table.rate <= table.rate_q95).all()
    assert any("median gap" in note for note in result.notes)


def test_zero_what_if_is_exactly_zero_and_lowering_f_lowers_the_rate():
    zero = forecast(hand_fit(), SITES, horizon=3, scenarios=["F=0@2"], seed=1)
    assert zero.scenario is not None and np.all(zero.scenario.delta == 0.0)
    lost = forecast(hand_fit(), SITES, horizon=3, scenarios=["F=-1@2"], seed=1)  # A's F 2 -> 1: on the scale
    np.testing.assert_array_equal(lost.rate, zero.rate)  # the baseline does not move with the scenario
    assert lost.scenario is not None
    # F's coefficient is positive in every draw, so a lower F lowers every draw's rate by the factor exp(-β_F)
    np.testing.assert_allclose(lost.scenario.rate[:, :, -1], lost.rate[:, :, -1] * np.exp(-BETA[:, 2])[:, None])
    assert np.all(lost.scenario.delta < 0)
    np.testing.assert_array_equal(lost.scenario.rate[:, :, 0], lost.rate[:, :, 0])  # before wave 2: no change
    # a count model relates each wave's count to that wave's scores, so the change shows from wave 2 itself
    np.testing.assert_allclose(lost.scenario.rate[:, :, 1], lost.rate[:, :, 1] * np.exp(-BETA[:, 2])[:, None])


def test_without_a_time_trend_the_rate_is_flat_and_says_so():
    result = forecast(hand_fit(time_trend=False), SITES.iloc[:1], horizon=3)
    np.testing.assert_allclose(result.rate[:, 0, :], np.repeat(hand_rate(4.0, 3.5, 2.0, 0, U_SITE[:, 0], 0)[:, None], 3, 1))
    assert any("no time trend" in note for note in result.notes)


def test_json_keys_and_scenario():
    payload = forecast(hand_fit(), SITES, horizon=2, scenarios=["F=-1@1"]).to_dict()
    assert payload["quantity"] == "expected count per 100,000 population" or "100,000" in payload["quantity"]
    assert set(payload["forecasts"][0]) == {"site", "wave", "time", "known_site", "rate", "rate_q05", "rate_q95"}
    assert payload["scenario"]["mean_delta_rate"] < 0 and "delta_rate" in payload["scenario"]["sites"][0]
    json.dumps(payload)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda s: s.drop(columns=["F"]), "missing column 'F'"),
        (lambda s: s.assign(site=["A", "A"]), "has 2 rows"),
        (lambda s: s.assign(year=[2019.0, 2020.0]), "before its last fitted wave"),
    ],
)
def test_bad_sites_are_refused_in_one_line(change, words):
    with pytest.raises(DataError) as err:
        forecast(hand_fit(), change(SITES), horizon=2)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_count_fit_without_a_time_column_is_refused():
    fit = hand_fit()
    fit.posterior = Posterior.from_draws(
        ModelSpec(family="poisson", exposure="population", rate_per=RATE_PER), fit.posterior.model_data,
        {"Intercept": INTERCEPT, "beta": BETA[:, :3], "u_site": U_SITE, "sigma_site": SIGMA_SITE},
    )
    with pytest.raises(DataError, match="forecast needs a panel fit"):
        forecast(fit, SITES, horizon=1)


def run(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def hand_fit_files(tmp_path_factory):
    """The stand-in fit saved as a fit file (one chain of the three chosen draws) and SITES as CSV."""
    fit = hand_fit()
    names = list(fit.spec.coef_names)
    chain = ("chain", "draw")
    posterior = xr.Dataset({
        "Intercept": (chain, INTERCEPT[None]), "beta": ((*chain, "coef"), BETA[None]),
        "u_site": ((*chain, "site"), U_SITE[None]), "b_site": ((*chain, "site"), B_SITE[None]),
        "sigma_site": (chain, SIGMA_SITE[None]), "sigma_slope": (chain, SIGMA_SLOPE[None]),
        "corr_site_slope": (chain, CORR[None]),
    }, coords={"site": ["A", "B"], "coef": names})
    stats = xr.Dataset({"diverging": (chain, np.zeros((1, 3), dtype=bool))})
    tree = xr.DataTree.from_dict({"/posterior": posterior, "/sample_stats": stats})
    folder = tmp_path_factory.mktemp("hand_counts")
    Fit(spec=fit.spec, data=fit.data, idata=tree, model_data=prepare_data(fit.data, fit.spec)).save(folder / "fit.nc")
    SITES.to_csv(folder / "sites.csv", index=False)
    return folder / "fit.nc", folder / "sites.csv"


def test_cli_json_is_the_hand_computation_and_zero_what_if_is_zero(hand_fit_files, capsys):
    code, out, err = run(capsys, *hand_fit_files, "--horizon", "2", "--what-if", "F=0@1", "--json")
    assert code == 0, err
    payload = json.loads(out)
    first = payload["forecasts"][0]
    assert (first["site"], first["wave"], first["time"]) == ("A", 1, 2021.0)
    assert first["rate"] == pytest.approx(hand_rate(4.0, 3.5, 2.0, 1, U_SITE[:, 0], B_SITE[:, 0]).mean(), rel=1e-12)
    assert all(row["delta_rate"] == 0.0 for row in payload["scenario"]["sites"])
    assert "median gap" in err
    code, out, _ = run(capsys, *hand_fit_files, "--horizon", "2", "--what-if", "F=-1@1")
    assert code == 0 and "change in the rate at wave 2" in out and "100,000" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--horizon", "0"), "horizon must be a whole number"),
        (("--horizon", "2", "--what-if", "F=-1@3"), "after the horizon"),
        (("--horizon", "2", "--step", "-1"), "step must be a positive number"),
    ],
)
def test_cli_bad_input_exits_2_in_one_line(hand_fit_files, capsys, argv, words):
    code, _, err = run(capsys, *hand_fit_files, *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_real_fit_of_a_simulated_trending_panel_forecasts_rates(tmp_path, capsys):
    """End to end on a small real fit (8 sites × 3 waves with a rising trend): the CLI forecasts every site."""
    from mbct_bayes.model.simulate import default_time_trend, default_truth, simulate_observations

    truth = default_truth("poisson", 0)
    truth["exposure"] = [5000, 50000]
    truth["time_trend"] = {**default_time_trend(), "beta": 0.2, "sigma_slope": 0.1}
    obs, _ = simulate_observations(8, 3, "poisson", n_regions=0, seed=3, truth=truth)
    spec = mb.ModelSpec(family="poisson", exposure="population", rate_per=RATE_PER, time="wave", time_trend=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mb.fit(obs, spec, seed=5, draws=80, tune=100, chains=1)
    fit.save(tmp_path / "fit.nc")
    obs.groupby("site").tail(1).head(3).to_csv(tmp_path / "sites.csv", index=False)
    code, out, err = run(capsys, tmp_path / "fit.nc", tmp_path / "sites.csv", "--horizon", "2", "--what-if", "F=0@1",
                         "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert len(payload["forecasts"]) == 6 and payload["forecasts"][0]["time"] == 4.0
    assert all(0 < row["rate_q05"] <= row["rate"] <= row["rate_q95"] for row in payload["forecasts"])
    assert all(row["delta_rate"] == 0.0 for row in payload["scenario"]["sites"])
