"""Forecasting journeys (issue 14, item 5): the path kernels, what-if parsing, and forecasts from fits.

The kernels are checked against closed forms (the two-state Markov chain) and against brute
force (Monte Carlo paths); forecasts from a hand-made posterior check the wiring (known and new
sites, common random numbers); a simulated world checks what a forecast is for.
"""

from __future__ import annotations

import numpy as np
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.journey import (
    Change,
    check_horizon,
    parse_change,
    predictor_paths,
    sample_paths,
    state_distribution,
)


def two_state(a: np.ndarray, b: np.ndarray, horizon: int) -> np.ndarray:
    """T (S, 1, H, 2, 2) of a two-state chain: P(0→1) = a, P(1→0) = b per draw, the same every wave."""
    t = np.empty((a.size, 1, horizon, 2, 2))
    t[:, 0, :, 0, :] = np.stack([1 - a, a], axis=-1)[:, None, :]
    t[:, 0, :, 1, :] = np.stack([b, 1 - b], axis=-1)[:, None, :]
    return t


def test_state_distribution_matches_the_two_state_closed_form():
    # Two-state Markov chain (Norris, Markov Chains, 1997, §1.1): starting in state 0,
    # P(state 1 after k steps) = a/(a+b) · (1 − (1 − a − b)^k).
    a, b = np.array([0.2, 0.05, 0.6]), np.array([0.1, 0.3, 0.25])
    p = state_distribution(two_state(a, b, 6), np.array([0]))
    k = np.arange(1, 7)
    expected = (a / (a + b))[:, None] * (1 - (1 - a - b)[:, None] ** k[None, :])
    np.testing.assert_allclose(p[:, 0, :, 1], expected, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-12)


def test_sample_paths_follow_the_state_distribution():
    # brute force: many paths from one draw's (time-varying, three-state) chain reproduce its
    # exact state probabilities within Monte Carlo error
    rng = np.random.default_rng(3)
    horizon, n_paths = 4, 40_000
    raw = rng.random((1, 1, horizon, 3, 3)) + 0.2
    t = raw / raw.sum(axis=-1, keepdims=True)
    exact = state_distribution(t, np.array([1]))[0, 0]
    paths = sample_paths(np.repeat(t, n_paths, axis=0), np.array([1]), rng.random((n_paths, 1, horizon)))
    for k in range(horizon):
        shares = np.bincount(paths[:, 0, k], minlength=3) / n_paths
        np.testing.assert_allclose(shares, exact[k], atol=4 * np.sqrt(0.25 / n_paths))


def test_same_uniforms_same_paths_where_the_chain_is_the_same():
    rng = np.random.default_rng(0)
    t = two_state(np.full(50, 0.3), np.full(50, 0.2), 3)
    u = rng.random((50, 1, 3))
    np.testing.assert_array_equal(sample_paths(t, np.array([0]), u), sample_paths(t.copy(), np.array([0]), u))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("F=-1.5@2", Change("F", -1.5, 2)), ("F=-1.5", Change("F", -1.5, 1)), (" C = +0.5 @ 3 ", Change("C", 0.5, 3))],
)
def test_parse_change(text, expected):
    assert parse_change(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("F-1.5@2", "is not a change"),
        ("F=down@2", "is not a number"),
        ("F=-1.5@two", "not a whole number"),
        ("F=-1.5@0", "1 or later"),
        ("F=inf", "finite"),
        ("=1", "is not a change"),
    ],
)
def test_parse_change_refuses_bad_syntax(text, words):
    with pytest.raises(DataError, match=words) as err:
        parse_change(text)
    assert "\n" not in str(err.value) and "F=-1.5@2" in str(err.value)


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True, "3"])
def test_horizon_must_be_a_whole_number_from_one(horizon):
    with pytest.raises(DataError, match="horizon must be a whole number"):
        check_horizon(horizon)


def test_predictor_paths_change_from_their_wave_and_clamp_to_the_scale():
    last = np.array([[3.0, 3.0, 2.0], [3.0, 3.0, 4.0]])
    values, notes = predictor_paths(last, ("E", "C", "F"), 3, [Change("F", -1.5, 2)], {"F": (1.0, 5.0)})
    np.testing.assert_allclose(values[:, :, 2], [[2.0, 2.0, 1.0, 1.0], [4.0, 4.0, 2.5, 2.5]])
    np.testing.assert_allclose(values[:, :, :2], 3.0)
    assert len(notes) == 1 and "1 site(s)" in notes[0] and "clamped" in notes[0]
    _, none = predictor_paths(last, ("E", "C", "F"), 3, [Change("F", 0.5, 1)], {"F": (1.0, 5.0)})
    assert none == []


# -- forecasts from a hand-made posterior: the wiring, checked exactly --------------------------

from types import SimpleNamespace  # noqa: E402

import pandas as pd  # noqa: E402
from scipy.special import expit  # noqa: E402

from mbct_bayes.forecast.journey import forecast  # noqa: E402
from mbct_bayes.model.build import ModelData  # noqa: E402
from mbct_bayes.model.posterior import Posterior  # noqa: E402
from mbct_bayes.spec import ModelSpec  # noqa: E402

#: Three posterior draws of a bernoulli transition model (E, C, F at the previous wave).
INTERCEPT = np.array([-1.0, 0.0, 0.5])
COEFS = {"E": [0.3, 0.2, 0.1], "C": [0.5, 0.4, 0.6], "F": [0.9, 1.1, 0.7], "previous[1]": [2.0, 2.5, 1.5]}
U_SITE = np.array([[0.4, -0.6], [0.1, -0.2], [0.7, 0.0]])  # sites A, B


def hand_fit(predictors_at: str = "previous", sigma_site: float = 0.8, spec: ModelSpec | None = None):
    """A stand-in fit (posterior + data) with chosen draws: sites A, B fitted at 2018-2020."""
    spec = spec or ModelSpec(family="bernoulli", time="year", dynamics="transition", predictors_at=predictors_at)
    data = pd.DataFrame({
        "site": ["A"] * 3 + ["B"] * 3, "year": [2018.0, 2019.0, 2020.0] * 2,
        "E": 3.0, "C": 3.0, "F": 3.0, "embedded": [0, 0, 1, 1, 1, 0],
    })
    names = spec.coef_names
    beta = np.column_stack([np.asarray(COEFS.get(name, [0.0] * 3), dtype=float) for name in names])
    md = ModelData(
        X=np.zeros((4, len(names))), coef_names=names, x_sd=np.ones(len(names)), y=np.array([0, 1, 1, 0]),
        trials=None, site_idx=np.array([0, 0, 1, 1]), site_labels=("A", "B"), region_idx=None, region_labels=None,
    )
    draws = {"Intercept": INTERCEPT, "beta": beta, "u_site": U_SITE, "sigma_site": np.full(3, sigma_site)}
    return SimpleNamespace(posterior=Posterior.from_draws(spec, md, draws), data=data, spec=spec)


SITES = pd.DataFrame({
    "site": ["A", "B", "N"], "year": [2020.0, 2021.0, 2020.0], "embedded": [0, 1, 0],
    "E": [3.5, 2.5, 3.0], "C": [3.0, 4.0, 2.0], "F": [2.0, 4.5, 3.5],
})


def chain_by_hand(site: int, u: np.ndarray, f_path: list[float], predictors_at: str = "previous") -> np.ndarray:
    """P(state 1) per draw at waves 1..H, multiplying 2x2 transition matrices written out by hand."""
    row = SITES.iloc[site]
    fixed = INTERCEPT + np.asarray(COEFS["E"]) * (row.E - 3) + np.asarray(COEFS["C"]) * (row.C - 3)
    pi = np.zeros((3, 2))
    pi[:, int(row.embedded)] = 1.0
    out = []
    for k in range(1, len(f_path)):
        f = f_path[k - 1] if predictors_at == "previous" else f_path[k]
        base = fixed + np.asarray(COEFS["F"]) * (f - 3) + u
        up, stay = expit(base), expit(base + np.asarray(COEFS["previous[1]"]))
        pi = np.column_stack([pi[:, 0] * (1 - up) + pi[:, 1] * (1 - stay), pi[:, 0] * up + pi[:, 1] * stay])
        out.append(pi[:, 1])
    return np.column_stack(out)


@pytest.mark.parametrize("predictors_at", ["previous", "current"])
def test_known_sites_forecast_exactly_with_their_own_effects(predictors_at):
    fit = hand_fit(predictors_at)
    result = forecast(fit, SITES, horizon=3, scenarios=["F=-1@2"])
    for i in range(2):  # sites A and B
        f0 = float(SITES.F[i])
        np.testing.assert_allclose(result.p[:, i, :, 1], chain_by_hand(i, U_SITE[:, i], [f0] * 4, predictors_at), atol=1e-12)
        changed = [f0, f0, f0 - 1, f0 - 1]
        assert result.scenario is not None
        np.testing.assert_allclose(
            result.scenario.p[:, i, :, 1], chain_by_hand(i, U_SITE[:, i], changed, predictors_at), atol=1e-12
        )
    # the champion leaves before wave 2: with previous-wave predictors the state feels it from wave 3
    first_felt = 2 if predictors_at == "previous" else 1
    same = result.scenario.p[:, :, :first_felt] - result.p[:, :, :first_felt]
    assert np.all(same == 0.0)
    assert np.all(result.scenario.p[:, :, first_felt:, 1] < result.p[:, :, first_felt:, 1])
    assert result.step == 1.0 and "median gap" in result.notes[0]
    table = result.summary()
    assert list(table.time[table.site == "B"]) == [2022.0, 2023.0, 2024.0]


def test_a_new_site_draws_its_effect_from_the_population():
    # sigma_site ~ 0: the new site's drawn effect is ~0, so its chain is the one with u = 0
    result = forecast(hand_fit(sigma_site=1e-12), SITES, horizon=3)
    np.testing.assert_allclose(result.p[:, 2, :, 1], chain_by_hand(2, np.zeros(3), [3.5] * 4), atol=1e-9)
    assert list(result.known) == [True, True, False]
    # a real spread: the seed moves the new site only, and the same seed gives the same numbers
    one, two = (forecast(hand_fit(), SITES, horizon=3, seed=s) for s in (1, 2))
    np.testing.assert_array_equal(one.p[:, :2], two.p[:, :2])
    assert not np.allclose(one.p[:, 2], two.p[:, 2])
    np.testing.assert_array_equal(one.p, forecast(hand_fit(), SITES, horizon=3, seed=1).p)


def test_a_zero_change_gives_exactly_zero_and_lowering_f_lowers_p_embedded():
    fit = hand_fit()
    zero = forecast(fit, SITES, horizon=3, scenarios=["F=0@1"])
    assert zero.scenario is not None
    assert np.all(zero.scenario.delta == 0.0)
    np.testing.assert_array_equal(zero.scenario.paths, zero.paths)  # common random numbers
    lower = forecast(fit, SITES, horizon=3, scenarios=["F=-1.5@1"])
    assert lower.scenario is not None
    assert np.all(lower.scenario.delta < 0)
    assert lower.scenario.notes and "clamped" in lower.scenario.notes[0]  # A's F = 2.0 - 1.5 < 1
    # the paths share their uniforms: a lower F never turns a path's state from 0 to 1
    assert np.all(lower.scenario.paths <= lower.paths)


def test_json_has_the_documented_shape():
    record = forecast(hand_fit(), SITES, horizon=2, scenarios=["F=-1@1"]).to_dict()
    assert {"forecasts", "scenario", "levels", "horizon", "step", "notes"} <= set(record)
    first = record["forecasts"][0]
    assert {"site", "time", "p", "p_q05", "p_q95"} <= set(first)
    assert set(first["p"]) == {"0", "1"} and abs(sum(first["p"].values()) - 1) < 1e-12
    assert first["p_q05"]["1"] <= first["p"]["1"] <= first["p_q95"]["1"]
    assert record["scenario"]["changes"] == [{"predictor": "F", "change": -1.0, "from_wave": 1}]
    assert len(record["scenario"]["sites"]) == 3


@pytest.mark.parametrize(
    ("change", "sites", "kwargs", "words"),
    [
        (None, SITES.drop(columns="year"), {}, r"missing column\(s\) 'year'"),
        (None, SITES.drop(columns="embedded"), {}, r"missing column\(s\) 'embedded'"),
        (None, SITES.assign(year=["2020", "later", "2020"]), {}, "time must be numeric"),
        (None, SITES.assign(year=[2019.0, 2021.0, 2020.0]), {}, r"site 'A' is at year 2019, before its last fitted wave \(2020\)"),
        (None, pd.concat([SITES, SITES.iloc[:1]]), {}, "site 'A' has 2 rows"),
        (None, SITES.assign(embedded=[0, 2, 0]), {}, "not among the declared levels"),
        (None, SITES, {"horizon": 0}, "horizon must be a whole number"),
        (None, SITES, {"step": -1.0}, "step must be a positive number"),
        ("G=-1@1", SITES, {}, "not a predictor"),
        ("F=-1@4", SITES, {}, "after the horizon"),
    ],
)
def test_bad_input_is_one_line(change, sites, kwargs, words):
    options = {"horizon": 3, **kwargs}
    with pytest.raises(DataError, match=words) as err:
        forecast(hand_fit(), sites, scenarios=[change] if change else [], **options)
    assert "\n" not in str(err.value)


def test_a_fit_without_transitions_is_refused():
    fit = hand_fit(spec=ModelSpec(family="bernoulli", time="year"))
    with pytest.raises(DataError, match="forecast needs a transition model"):
        forecast(fit, SITES, horizon=3)


def test_fan_chart_draws_one_panel_per_site():
    from mbct_bayes.plots.journey import fan_chart

    result = forecast(hand_fit(), SITES, horizon=3, scenarios=["F=-1@1"])
    fig = fan_chart(result, ["A", "N"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["A", "N"]
    baseline = visible[0].lines[0]
    np.testing.assert_allclose(baseline.get_ydata(), [0.0, *result.p[:, 0, :, 1].mean(axis=0)])
    with pytest.raises(DataError, match="not in the forecast"):
        fan_chart(result, ["Z"])


def test_a_time_trend_moves_each_future_wave_by_the_trend_and_the_sites_own_slope():
    # transition + trend: wave k of a site last seen in 2020 is at 2020 + k, t - t0 = k (t0 = 2020);
    # a known site adds its own slope b_site · k, the population trend beta_time · k
    spec = ModelSpec(family="bernoulli", time="year", dynamics="transition", time_trend=True, time_origin=2020.0)
    trend, slopes = np.array([0.2, -0.1, 0.3]), np.array([[0.5, 0.0], [-0.4, 0.1], [0.2, 0.2]])
    base = hand_fit(spec=spec)
    draws = dict(base.posterior.draws)
    draws["beta"] = np.column_stack([draws["beta"][:, :-1], trend])  # the "time" column is last
    draws |= {"b_site": slopes, "sigma_slope": np.full(3, 0.3), "corr_site_slope": np.zeros(3)}
    fit = SimpleNamespace(posterior=Posterior.from_draws(spec, base.posterior.model_data, draws), data=base.data)
    result = forecast(fit, SITES.iloc[:1], horizon=3)
    # by hand: the chain of site A with its u plus (trend + own slope) · k at wave k
    row = SITES.iloc[0]
    fixed = INTERCEPT + np.asarray(COEFS["E"]) * (row.E - 3) + np.asarray(COEFS["C"]) * (row.C - 3)
    fixed = fixed + np.asarray(COEFS["F"]) * (row.F - 3) + U_SITE[:, 0]
    pi1, expected = np.zeros(3), []
    for k in (1, 2, 3):
        shift = (trend + slopes[:, 0]) * k
        up, stay = expit(fixed + shift), expit(fixed + shift + np.asarray(COEFS["previous[1]"]))
        pi1 = (1 - pi1) * up + pi1 * stay
        expected.append(pi1)
    np.testing.assert_allclose(result.p[:, 0, :, 1], np.column_stack(expected), atol=1e-12)
