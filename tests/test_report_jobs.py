"""The report covers the four jobs (issue 15, item 3): the trial-planning section, probabilities that
never read 0 or 1, and words that follow the model.

The trial section's numbers are the power module's for the same settings and seed; the demo's
report (run once, in tests/test_cli_model.py) has every section filled.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import idata_fit

import mbct_bayes as mb
from mbct_bayes._format import probability, probability_interval
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.report import TrialSettings, render_report, section_trial, trial_plan

ROOT = Path(__file__).resolve().parents[1]
NEW_SITES = ROOT / "data" / "example" / "new_sites.csv"
#: Small enough for plumbing: 200 trials per design over 4-12 clusters per arm.
SMALL_TRIAL = TrialSettings(sims=200, clusters=(4, 12))
REGION_WORD = re.compile(r"region", re.IGNORECASE)


def section_text(report: str, sid: str) -> str:
    """The visible text of one section (tags dropped, entities decoded)."""
    match = re.search(rf'<section id="{sid}">(.*?)</section>', report, re.S)
    assert match, f"no section {sid!r}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def section_html(report: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', report, re.S)
    assert match, f"no section {sid!r}"
    return match.group(1)


# -- the one probability formatter -------------------------------------------------------------
@pytest.mark.parametrize(
    "value, digits, shown",
    [
        (0.004, 2, "< 0.01"), (0.005, 2, "0.01"), (0.995, 2, "0.99"), (0.996, 2, "> 0.99"),
        (0.0, 2, "< 0.01"), (1.0, 2, "> 0.99"), (0.5, 2, "0.50"), (0.01, 2, "0.01"), (0.99, 2, "0.99"),
        (0.0004, 3, "< 0.001"), (0.9996, 3, "> 0.999"), (0.999, 3, "0.999"), (0.0, 3, "< 0.001"),
        (float("nan"), 2, "–"), (None, 2, "–"),
    ],
)
def test_probability_never_reads_0_or_1(value, digits, shown):
    # 0.005 and 0.995 are the floats nearest them (just above / just below), so they round to 0.01 / 0.99
    assert probability(value, digits) == shown


def test_probability_interval_says_to_when_a_bound_is_open():
    assert probability_interval(0.12, 0.48) == "0.12–0.48"
    assert probability_interval(0.001, 0.03) == "< 0.01 to 0.03"
    assert probability_interval(0.6, 0.999) == "0.60 to > 0.99"


def test_power_text_shares_the_formatter():
    from mbct_bayes.cli.power_text import share

    assert share(0.9996) == probability(0.9996, 3) == "> 0.999" and share(0.0) == "< 0.001"


# -- the example report with a small trial -----------------------------------------------------
@pytest.fixture(scope="module")
def jobs_report(example_fit):
    sites = mb.read_table(NEW_SITES)
    return render_report(example_fit, new_sites=sites, trial=SMALL_TRIAL, seed=3)


def test_no_probability_reads_0_or_1(jobs_report):
    """P(gain) of the example's best lever is above 0.995 (C for every new site): it reads '> 0.99'."""
    text = section_text(jobs_report, "planning")
    gains = re.findall(r"P\(gain\) (> 0\.99|< 0\.01|\d\.\d\d)", text)
    assert gains and "> 0.99" in gains
    assert not {"1.00", "0.00"} & set(gains)
    # no probability cell anywhere in the planning or trial tables reads 0.00 or 1.00
    for sid in ("planning", "trial"):
        cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', section_html(jobs_report, sid))
        assert cells
        assert not [c for c in cells if re.search(r"(?<![\d.])(0\.00|1\.00)(?!\d)", html.unescape(c))], sid


def test_trial_section_shows_curve_table_assumptions(jobs_report):
    text = section_text(jobs_report, "trial")
    block = section_html(jobs_report, "trial")
    assert "<img" in block and "<table>" in block and 'class="unavailable"' not in block
    for words in ("raises F by +1 scale point", "20 members measured per cluster", "pooled two-sample t-test",
                  "two-sided alpha 0.05", "taken as the causal effect", "Population of services: like the 40 fitted",
                  "200 simulated trials", "seed 3", "power at posterior mean", "type-I error"):
        assert words in text, words


def test_trial_numbers_are_the_power_modules(example_fit, jobs_report):
    """Same settings, same seed: the section's numbers equal mb.power.population_curve / population_assurance."""
    population = mb.power.population_from_fit(example_fit, lever="F", delta=1.0)
    curve = mb.power.population_curve(population, clusters=range(4, 13), cluster_sizes=[20], sims=200, seed=3)
    plan = trial_plan(example_fit, SMALL_TRIAL, seed=3)
    for column in ("assurance", "assurance_mc_low", "power_at_posterior_mean"):
        np.testing.assert_array_equal(plan.curve[column].to_numpy(), curve[column].to_numpy())
    assert sorted(plan.sizes) == [4, 6, 8, 10, 12]  # the table's 5 designs spread over 4-12
    one = mb.power.population_assurance(population, clusters_per_arm=8, cluster_size=20, sims=200, seed=3)
    assert plan.sizes[8]["actual_size"] == one["actual_size"] and plan.sizes[8]["size_holds"] == one["size_holds"]
    assert float(plan.curve.loc[plan.curve["clusters_per_arm"] == 8, "assurance"].iloc[0]) == one["assurance"]
    # and the table shows exactly these numbers
    row = curve[curve["clusters_per_arm"] == 8].iloc[0]
    shown = (f"<td class=\"num\">8</td><td class=\"num\">16</td><td class=\"num\">{probability(row['assurance'])} "
             f"({probability_interval(row['assurance_mc_low'], row['assurance_mc_high'])})</td>"
             f"<td class=\"num\">{probability(row['power_at_posterior_mean'])}")
    assert shown in jobs_report


def test_trial_lever_and_size_are_the_settings(example_fit):
    plan = trial_plan(example_fit, TrialSettings(lever="C", delta=0.5, cluster_size=5, clusters=(3, 5), sims=100))
    assert plan.settings.lever == "C" and plan.inputs["lever"] == "C" and plan.inputs["delta"] == 0.5
    assert set(plan.curve["cluster_size"]) == {5} and list(plan.curve["clusters_per_arm"]) == [3, 4, 5]
    assert sorted(plan.sizes) == [3, 4, 5]
    default = trial_plan(example_fit, TrialSettings(clusters=(4, 4)))  # sims: one trial per posterior draw
    assert default.settings.lever == "F" and default.inputs["sims"] == default.inputs["draws_total"] == 800


@pytest.mark.parametrize(
    "settings, message",
    [
        (TrialSettings(lever="Q"), "lever 'Q' is not a predictor of this model"),
        (TrialSettings(clusters=(8, 4)), "trial clusters per arm 8-4: give LOW-HIGH"),
        (TrialSettings(alpha=2.0), "alpha"),
    ],
)
def test_bad_trial_settings_are_one_line_errors(example_fit, settings, message):
    with pytest.raises(DataError, match=re.escape(message)) as err:
        trial_plan(example_fit, settings)
    assert "\n" not in str(err.value)


def test_a_size_that_does_not_hold_is_a_warning_beside_the_numbers(example_fit):
    """One yes/no outcome per service and 3 clusters per arm: the t-test cannot hold its size there."""
    plan = trial_plan(example_fit, TrialSettings(cluster_size=1, clusters=(3, 3), sims=100))
    assert plan.sizes[3]["size_holds"] is False
    trial = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section_trial(example_fit, plan))).split())
    assert "Warning: size does not hold" in trial and "does not hold)" in trial


# -- words follow the model --------------------------------------------------------------------
def test_no_region_words_for_a_model_without_regions(jobs_report):
    for sid in ("coefficients", "planning", "levers", "trial", "ppc"):
        assert not REGION_WORD.search(section_text(jobs_report, sid)), sid
    # the model section says so once, in its own words
    assert "no region effects in this model" in section_text(jobs_report, "model")


def test_region_words_for_a_model_with_regions():
    fit = idata_fit(ok=True, regions=True, draws=100, chains=2)
    sites = pd.DataFrame({"site": ["N1", "N2"], "region": ["R0", ""], "E": [3.0, 2.0], "C": [3.0, 4.0],
                          "F": [3.0, 2.5]})
    text = render_report(fit, new_sites=sites, trial=TrialSettings(sims=100, clusters=(2, 3)))
    assert "median service of its region" in section_text(text, "planning")
    assert REGION_WORD.search(section_text(text, "trial"))  # the population's regions share their effect


def test_demo_table_names_regions_only_for_region_models():
    from mbct_bayes.cli.demo import predictions_text

    pred = pd.DataFrame({"site": ["A"], "region": ["Wales"], "E": [3.0], "C": [3.0], "F": [3.0], "p_mean": [0.9996],
                         "p_q05": [0.0004], "p_q95": [1.0], "p_typical_mean": [0.5]})
    plain = predictions_text(pred, has_regions=False)
    assert not REGION_WORD.search(plain) and "Wales" not in plain
    assert "> 0.999" in plain and "< 0.001" in plain and "1.000" not in plain
    assert "its region's effect kept" in predictions_text(pred, has_regions=True)


# -- the command line --------------------------------------------------------------------------
def test_cli_trial_options(example_fit_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    code = main(["report", str(example_fit_path), "--out", str(out), "--trial-lever", "C", "--cluster-size", "10",
                 "--trial-clusters", "4-6", "--trial-sims", "100", "--seed", "2"])
    assert code == 0, capsys.readouterr().err
    text = section_text(out.read_text(encoding="utf-8"), "trial")
    assert "raises C by +1 scale point" in text and "10 members measured per cluster" in text
    assert "100 simulated trials" in text and "--clusters C --cluster-size 10" in text
    # --no-trial: tests/test_report.py::test_cli_region_mode


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trial-clusters", "30-4"], "--trial-clusters '30-4': give LOW-HIGH"),
        (["--trial-clusters", "many"], "--trial-clusters 'many': give LOW-HIGH"),
        (["--trial-sims", "0"], "--trial-sims must be a whole number ≥ 1, got 0"),
        (["--trial-lever", "Q"], "lever 'Q' is not a predictor of this model"),
    ],
)
def test_cli_bad_trial_options_exit_2(argv, message, example_fit_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    code = main(["report", str(example_fit_path), "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
