"""The report's journeys section (transition fits) and its trial section on fits the trial cannot plan."""

from __future__ import annotations

import re

import numpy as np
import pytest

import mbct_bayes as mb
from mbct_bayes._format import probability, probability_interval
from mbct_bayes.errors import DataError
from mbct_bayes.report import MAX_FAN_PANELS, TrialSettings, latest_waves, render_report


def _section(html: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert match is not None, f"no section {sid!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def journey_html(journey_fit):
    return render_report(journey_fit, seed=3, horizon=2)


def test_latest_waves_are_each_sites_last_row(journey_fit):
    spec = journey_fit.spec
    table = latest_waves(journey_fit)
    data = journey_fit.data
    assert len(table) == data[spec.group].nunique()
    for row in table.itertuples(index=False):
        rows = data[data[spec.group] == getattr(row, spec.group)]
        assert getattr(row, spec.time) == rows[spec.time].max()


def test_journeys_section_numbers_equal_forecast(journey_fit, journey_html):
    section = _section(journey_html, "journeys")
    result = mb.forecast(journey_fit, latest_waves(journey_fit), horizon=2, seed=3)
    top = len(result.levels) - 1
    draws = result.p[:, :, -1, top]
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    assert "<img" in section  # the fan chart
    rows = re.findall(r"<tr><td>([^<]+)</td>.*?<td class=\"num\">([^<]+)</td><td>([^<]+)</td>", section)
    assert [r[0] for r in rows] == list(result.sites)
    for i, (_, mean_text, interval_text) in enumerate(rows):
        assert mean_text == probability(draws[:, i].mean()).replace("<", "&lt;").replace(">", "&gt;")
        assert interval_text == probability_interval(low[i], high[i]).replace("<", "&lt;").replace(">", "&gt;")
    # 40 sites: a readable subset, and the section says which
    assert len(result.sites) > MAX_FAN_PANELS
    assert f"{MAX_FAN_PANELS} of the {len(result.sites)} sites are drawn" in section
    assert "held at each site&#x27;s latest values" in section
    assert "every 1 year" in section  # the median gap of the annual panel
    assert "40 site(s) were in the fit and use their own effects; 0 are new" in section


def test_journeys_section_from_given_sites_and_new_site(journey_fit):
    spec = journey_fit.spec
    sites = latest_waves(journey_fit).head(2).copy()
    sites.loc[1, spec.group] = "NEW1"
    html = render_report(journey_fit, forecast_sites=sites, horizon=1, seed=0)
    section = _section(html, "journeys")
    assert "All 2 sites are drawn." in section
    assert "1 site(s) were in the fit and use their own effects; 1 are new" in section
    assert "new (effect drawn from the population)" in section
    with pytest.raises(DataError, match="horizon"):
        render_report(journey_fit, horizon=0)


def test_no_journeys_section_without_transitions(example_fit):
    html = render_report(example_fit)
    assert 'id="journeys"' not in html
    assert 'id="trial"' in html


def test_trial_section_says_why_not_for_a_count_fit(poisson_fit, tmp_path):
    """The CLI's default report (trial section on) on a Poisson fit: a note, not a crash or a made-up assurance."""
    from mbct_bayes.cli.main import main

    fit, _, _ = poisson_fit
    path = tmp_path / "pois.nc"
    fit.save(path)
    out = tmp_path / "pois.html"
    assert main(["report", str(path), "--out", str(out)]) == 0
    section = _section(out.read_text(), "trial")
    assert "No trial section for this fit" in section
    assert "poisson model&#x27;s outcome is a rate" in section
    assert "assurance (95% MC)" not in section and "<img" not in section


def test_trial_section_says_why_not_for_a_transition_fit(journey_fit):
    html = render_report(journey_fit, trial=TrialSettings(), horizon=1)
    section = _section(html, "trial")
    assert "No trial section for this fit: this is a transition model" in section
    assert "<img" not in section
    assert 'id="journeys"' in html


def test_power_refuses_a_trial_from_count_and_transition_fits(poisson_fit, journey_fit):
    """The power module gives the report's reason itself (one definition: planning.predict.trial_refusal),
    rather than an assurance for a design the fit does not model."""
    from mbct_bayes.planning.predict import trial_inputs
    from mbct_bayes.power import population_from_fit

    fit, _, _ = poisson_fit
    with pytest.raises(DataError, match=r"^no trial can be planned from this fit: the trial designs simulate .* poisson"):
        population_from_fit(fit)
    with pytest.raises(DataError, match=r"^no trial can be planned from this fit: this is a transition model"):
        population_from_fit(journey_fit)
    with pytest.raises(DataError, match=r"^no trial can be planned from this fit: this is a transition model"):
        trial_inputs(journey_fit.posterior)


# -- count panel fits: the expected rate's fan chart -----------------------------------------------
@pytest.fixture(scope="module")
def count_panel_fit():
    """A small real Poisson fit of a simulated trending panel (10 sites × 3 waves, catchments 50,000-200,000)."""
    import warnings

    from mbct_bayes.model.simulate import default_time_trend, default_truth, simulate_observations

    truth = default_truth("poisson", 0)
    truth["exposure"] = [50_000, 200_000]
    truth["time_trend"] = {**default_time_trend(), "beta": 0.2, "sigma_slope": 0.1}
    obs, _ = simulate_observations(10, 3, "poisson", n_regions=0, seed=3, truth=truth)
    spec = mb.ModelSpec(family="poisson", exposure="population", rate_per=100_000, time="wave", time_trend=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb.fit(obs, spec, seed=5, draws=100, tune=150, chains=1)


def test_count_panel_report_has_a_rate_fan_chart_with_the_forecast_numbers(count_panel_fit):
    fit = count_panel_fit
    section = _section(render_report(fit, seed=3, horizon=2, trial=None), "journeys")
    result = mb.forecast(fit, latest_waves(fit), horizon=2, seed=3)
    label = "expected access per 100,000 population"
    assert result.label == label
    assert "<img" in section and f"fan chart of the {label} along each site&#x27;s forecast path" in section
    assert f"The {label} at each future wave (line: posterior mean; band: 90% interval over posterior draws)" in section
    assert "without the count&#x27;s noise" in section and "mbct-bayes predict with an exposure column" in section
    assert "fitted time trend" in section and "All 10 sites are drawn." in section
    draws = result.rate[:, :, -1]
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    rows = re.findall(r"<tr><td>([^<]+)</td>.*?<td class=\"num\">([^<]+)</td><td>([^<]+)</td>", section)
    assert [r[0] for r in rows] == list(result.sites)
    for i, (_, mean_text, interval_text) in enumerate(rows):
        assert mean_text == f"{draws[:, i].mean():.3g}" and interval_text == f"{low[i]:.3g} to {high[i]:.3g}"


def test_rate_fan_chart_draws_each_sites_mean_rate_per_wave(count_panel_fit):
    from mbct_bayes.plots.journey import rate_fan_chart

    result = mb.forecast(count_panel_fit, latest_waves(count_panel_fit), horizon=3, seed=1, scenarios=["F=-1@2"])
    fig = rate_fan_chart(result, result.sites[:2])
    ax = fig.axes[0]
    baseline, what_if = ax.get_lines()
    assert np.allclose(baseline.get_xdata(), result.start_time[0] + result.step * np.arange(1, 4))
    assert np.allclose(baseline.get_ydata(), result.rate[:, 0, :].mean(axis=0), rtol=1e-12)
    assert np.allclose(what_if.get_ydata(), result.scenario.rate[:, 0, :].mean(axis=0), rtol=1e-12)
    assert fig.texts[0].get_text() == (
        "forecast: expected access per 100,000 population, with 90% intervals over posterior draws"
    )
    with pytest.raises(DataError, match="not in the forecast"):
        rate_fan_chart(result, ["nowhere"])


def test_count_panel_without_a_usual_interval_says_so_instead_of_a_fan_chart(poisson_fit):
    """A count fit with a time column but no site seen twice has no usual interval: the section says so."""
    import dataclasses

    fit, _, obs = poisson_fit
    spec = dataclasses.replace(fit.spec, time="year")
    # a fresh Fit (no cached posterior): the session fixture's posterior may already carry the old spec
    one_time = dataclasses.replace(fit, spec=spec, data=obs.assign(year=2024.0), _posterior=None, _diagnostics=None)
    section = _section(render_report(one_time, trial=None), "journeys")
    assert "No forecast paths: the fitted panel has no site with two waves" in section and "<img" not in section
