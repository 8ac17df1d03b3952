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
