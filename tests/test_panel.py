"""Panel data: the spec keys (time, dynamics, predictors_at, time_trend) and the panel checks.

Every bad value has a one-line :class:`~mbct_bayes.errors.DataError` naming the key or the rows
and saying how to fix it; the messages are checked here.
"""

from __future__ import annotations

import tomllib
import warnings

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.model.design import design_matrix, resolve
from mbct_bayes.model.panel import lagged_rows
from mbct_bayes.model.simulate import default_truth, simulate_panel
from mbct_bayes.schema import DataWarning, validate_observations
from mbct_bayes.spec import ModelSpec

PANEL = ModelSpec(time="year", dynamics="transition")
PANEL_ORD = ModelSpec(family="ordinal", time="year", dynamics="transition", predictors_at="current", time_trend=True)


def test_panel_keys_default_to_no_panel_and_leave_old_dicts_alone():
    spec = ModelSpec()
    assert (spec.time, spec.dynamics, spec.predictors_at, spec.time_trend) == (None, "none", "previous", False)
    d = spec.to_dict()
    assert not {"time", "dynamics", "predictors_at", "time_trend"} & set(d)  # old dicts and hashes unchanged
    assert "time" not in spec.to_toml()


@pytest.mark.parametrize("spec", [PANEL, PANEL_ORD, ModelSpec(time="wave"), ModelSpec(time="t", time_trend=True)])
def test_panel_keys_round_trip_through_toml_and_dict(spec):
    assert ModelSpec.from_dict(tomllib.loads(spec.to_toml())) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ModelSpec.from_dict(spec.to_dict()).time == spec.time


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dynamics": "markov"}, "^dynamics 'markov' is not one of none, transition$"),
        ({"dynamics": "transition"}, '^dynamics = "transition" needs a time column; set time = "year"'),
        ({"time": "year", "predictors_at": "next"}, "^predictors_at 'next' is not one of previous, current$"),
        ({"time": "year", "predictors_at": "current"},
         '^predictors_at = \'current\' is only for dynamics = "transition"; remove it$'),
        ({"time_trend": True}, '^time_trend = true needs a time column; set time = "year"'),
        ({"time": ""}, "^time must be a column name, e.g. time = \"year\"; got ''$"),
        ({"time": "site"}, "^time 'site' is also the group column"),
        ({"time": "embedded"}, "^time 'embedded' is also the outcome column"),
        ({"time": "E"}, "^time 'E' is also a predictor; remove it from predictors"),
        ({"family": "binomial", "time": "year", "dynamics": "transition"},
         '^dynamics = "transition" needs an outcome with states \\(bernoulli or ordinal\\), not family '
         "'binomial'; remove dynamics or change the family$"),
        ({"time": "year", "dynamics": "transition", "predictors": ("E", "previous")},
         "^predictor 'previous' is a column a transition model makes itself \\(previous, gap\\); rename that column$"),
        ({"time": "year", "dynamics": "transition", "measurement": "latent"},
         '^dynamics = "transition" takes observed scores per wave; remove measurement = "latent"$'),
    ],
)
def test_bad_panel_keys(kwargs, message):
    with pytest.raises(DataError, match=message):
        ModelSpec(**kwargs)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"time": 2019}, "^time must be a string, got 2019$"),
        ({"time": "year", "time_trend": "yes"}, "^time_trend must be true or false, got 'yes'$"),
        ({"time": "year", "dynamics": 1}, "^dynamics must be a string, got 1$"),
    ],
)
def test_bad_panel_key_types_from_toml(data, message):
    with pytest.raises(DataError, match=message):
        ModelSpec.from_dict(data)


def test_unknown_key_message_lists_the_panel_keys():
    with pytest.raises(DataError, match=r"allowed keys: .*time, dynamics, predictors_at, time_trend, gaps$"):
        ModelSpec.from_dict({"dynamic": "transition"})


# -- panel observations -----------------------------------------------------------------------


def _panel() -> pd.DataFrame:
    return pd.DataFrame({
        "site": ["a", "a", "a", "b", "b"],
        "year": [2019, 2020, 2024, 2019, 2021],
        "E": [3.0, 3.5, 4.0, 2.0, 2.5], "C": 3.0, "F": [2.0, 3.0, 3.0, 4.0, 4.5],
        "embedded": [0, 1, 1, 0, 1],
    })


def _validate(df, spec=PANEL):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return validate_observations(df, spec, source="obs.csv")


def test_a_valid_panel_keeps_numeric_time_with_gaps():
    out = _validate(_panel().assign(year=lambda d: d["year"].astype(str)))
    assert out["year"].dtype == np.float64
    assert out["year"].tolist() == [2019, 2020, 2024, 2019, 2021]


def test_duplicate_site_time_rows_are_refused_naming_site_and_time():
    df = _panel()
    df.loc[1, "year"] = 2019
    with pytest.raises(
        DataError,
        match=r"^obs.csv: column 'site, year' rows 1, 2: site 'a' has 2 rows at year 2019; keep one row per site "
              r"and time \(remove or merge the duplicates\)$",
    ):
        _validate(df)


def test_non_numeric_time_is_refused():
    df = _panel().astype({"year": object})
    df.loc[3, "year"] = "2019-06-01"
    with pytest.raises(
        DataError,
        match=r"^obs.csv: column 'year' row 4: value '2019-06-01' is not a number; time must be numeric \(a year, "
              r"or any ordered number such as a wave number\): convert dates to years or number the waves$",
    ):
        _validate(df)


def test_missing_time_is_refused():
    df = _panel().astype({"year": float})
    df.loc[2, "year"] = np.nan
    with pytest.raises(DataError, match=r"^obs.csv: column 'year' row 3: missing time; give every row its year"):
        _validate(df)


def test_missing_time_column_is_refused():
    with pytest.raises(DataError, match=r"^obs.csv: missing column 'year' .*set the column name in the spec$"):
        _validate(_panel().drop(columns="year"))


def test_time_without_transition_also_checks_the_panel():
    df = _panel()
    df.loc[4, "year"] = 2019
    with pytest.raises(DataError, match=r"site 'b' has 2 rows at year 2019"):
        _validate(df, ModelSpec(time="year"))


# -- lagged rows ---------------------------------------------------------------------------------


def _lagged(df=None, spec=PANEL):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return lagged_rows(_validate(_panel() if df is None else df, spec), spec)


def test_lagged_rows_carry_the_previous_wave_state_gap_and_predictors():
    rows = _lagged()
    assert rows["site"].tolist() == ["a", "a", "b"]
    assert rows["year"].tolist() == [2020, 2024, 2021]
    assert rows["embedded"].tolist() == [1, 1, 1]
    assert rows["previous"].tolist() == [0, 1, 0]
    assert rows["gap"].tolist() == [1.0, 4.0, 2.0]
    assert rows["E"].tolist() == [3.0, 3.5, 2.0]  # predictors_at = "previous": the earlier wave's scores
    assert rows["F"].tolist() == [2.0, 3.0, 4.0]


def test_lagged_rows_with_current_predictors_and_any_row_order():
    spec = ModelSpec(time="year", dynamics="transition", predictors_at="current")
    shuffled = _panel().iloc[[4, 2, 0, 3, 1]].reset_index(drop=True)
    rows = _lagged(shuffled, spec)
    assert list(zip(rows["site"], rows["year"], strict=True)) == [("b", 2021), ("a", 2024), ("a", 2020)]  # table order
    assert rows["E"].tolist() == [2.5, 4.0, 3.5]
    assert rows["previous"].tolist() == [0, 1, 0]
    assert rows["gap"].tolist() == [2.0, 4.0, 1.0]


def test_lagged_rows_of_an_ordinal_panel_keep_the_level_labels():
    spec = ModelSpec(family="ordinal", time="year", dynamics="transition")
    df = _panel().drop(columns="embedded").assign(level=["none", "partial", "embedded", "partial", "none"])
    rows = _lagged(df, spec)
    assert rows["previous"].tolist() == ["none", "partial", "partial"]
    assert rows["level"].tolist() == ["partial", "embedded", "none"]


def test_a_site_with_one_wave_adds_no_row_and_is_counted():
    df = pd.concat([_panel(), _panel().iloc[[0]].assign(site="c")], ignore_index=True)
    with pytest.warns(DataWarning, match=r"^1 of 3 sites have a single wave and add no transition"):
        rows = lagged_rows(_validate(df), PANEL)
    assert "c" not in set(rows["site"])


def test_a_panel_without_two_waves_is_refused():
    df = _panel().assign(site=["a", "b", "c", "d", "e"])
    with pytest.raises(DataError, match=r"^no site has two waves in the panel \(5 sites, one wave each\)"):
        lagged_rows(_validate(df), PANEL)


def test_a_panel_with_its_own_previous_column_is_refused():
    with pytest.raises(DataError, match=r"^the panel has a column 'previous', which a transition model makes itself"):
        lagged_rows(_validate(_panel().assign(previous=1)), PANEL)


# -- the design matrix of a transition model ---------------------------------------------------


def test_bernoulli_transition_design_has_previous_and_gap_terms():
    rows = _lagged()
    spec = resolve(PANEL, rows)
    assert spec.gaps == {"terms": True, "center": 2.0}  # unequal gaps 1, 4, 2: median 2 (mean 2.33)
    assert spec.coef_names == ("E", "C", "F", "previous[1]", "gap", "gap:previous[1]")
    X = design_matrix(rows, spec)
    np.testing.assert_array_equal(X[:, 3:], [[0, -1, 0], [1, 2, 2], [0, 0, 0]])
    np.testing.assert_array_equal(X[:, 0], rows["E"] - 3.0)


def test_equal_gaps_give_no_gap_terms_and_a_forecast_row_keeps_the_fitted_spec():
    df = _panel().assign(year=[2019, 2020, 2021, 2019, 2020])
    rows = _lagged(df)
    spec = resolve(PANEL, rows)
    assert spec.gaps == {"terms": False, "center": 1.0}
    assert spec.coef_names == ("E", "C", "F", "previous[1]")
    future = pd.DataFrame({"E": [3.0], "C": [3.0], "F": [4.0], "previous": [1], "gap": [3.0]})
    np.testing.assert_array_equal(design_matrix(future, spec), [[0.0, 0.0, 1.0, 1.0]])
    assert resolve(spec, future) == spec  # new rows never re-decide the gap terms


def test_ordinal_transition_design_and_state_specific_slopes():
    spec = ModelSpec(family="ordinal", time="year", dynamics="transition", interactions=[("F", "previous")],
                     gaps={"terms": False})
    df = _panel().drop(columns="embedded").assign(level=["none", "partial", "embedded", "partial", "none"])
    rows = _lagged(df, spec)
    spec = resolve(spec, rows)
    assert spec.coef_names == ("E", "C", "F", "previous[partial]", "previous[embedded]",
                               "F:previous[partial]", "F:previous[embedded]")
    X = design_matrix(rows, spec)
    f_centred = rows["F"].to_numpy() - 3.0  # [-1, 0, 1]
    np.testing.assert_array_equal(X[:, 3:5], [[0, 0], [1, 0], [1, 0]])
    np.testing.assert_array_equal(X[:, 5], f_centred * [0, 1, 1])
    np.testing.assert_array_equal(X[:, 6], 0.0)


def test_previous_state_coefficients_take_priors_and_stray_gap_priors_are_refused():
    normal = {"dist": "Normal", "mu": 0.0, "sigma": 1.0}
    spec = ModelSpec(time="year", dynamics="transition", priors={"previous[1]": normal, "gap": normal})
    assert spec.prior_for("previous[1]") == normal
    resolve(spec, _lagged())  # unequal gaps: the gap prior has its coefficient
    equal = _lagged(_panel().assign(year=[2019, 2020, 2021, 2019, 2020]))
    with pytest.raises(DataError, match=r"^\[priors\] names 'gap', but the fitted gaps are all equal \(1\), so the "
                                        r"model has no gap terms; remove that prior or set \[gaps\] terms = true$"):
        resolve(spec, equal)


def test_transition_rows_without_previous_are_refused():
    spec = resolve(PANEL, _lagged())
    with pytest.raises(DataError, match=r"^a transition model's rows need a 'previous' column .*lagged_rows$"):
        design_matrix(_panel(), spec)


@pytest.mark.parametrize(
    ("gaps", "message"),
    [
        ({"term": True}, "^\\[gaps\\] has unknown key 'term'; it takes terms \\(true/false\\) and center"),
        ({"terms": 1}, "^gaps.terms must be true or false, got 1$"),
        ({"center": "1"}, "^gaps.center must be a finite number \\(a time difference\\), got '1'$"),
    ],
)
def test_bad_gaps_tables(gaps, message):
    with pytest.raises(DataError, match=message):
        ModelSpec(time="year", dynamics="transition", gaps=gaps)


def test_gaps_without_transition_are_refused():
    with pytest.raises(DataError, match=r'^\[gaps\] is only for dynamics = "transition"; remove it$'):
        ModelSpec(time="year", gaps={"terms": True})


# -- the panel simulator ---------------------------------------------------------------------------


def test_simulated_panel_shape_and_reproducibility():
    df, truth = simulate_panel(5, 4, "ordinal", gaps=(1, 2), n_regions=2, seed=4)
    again, _ = simulate_panel(5, 4, "ordinal", gaps=(1, 2), n_regions=2, seed=4)
    pd.testing.assert_frame_equal(df, again)
    assert list(df.columns) == ["site", "region", "time", "wave", "E", "C", "F", "level"]
    assert len(df) == 20 and df.groupby("site")["time"].min().eq(2020.0).all()
    assert set(np.diff(df["time"].to_numpy().reshape(5, 4), axis=1).ravel()) <= {1.0, 2.0}
    spec = ModelSpec.from_dict(truth["spec"])
    assert spec.gaps == {"terms": True, "center": 1.5}
    assert set(truth["beta"]) == set(spec.coef_names)
    _validate(df, spec)  # a valid panel for its own spec


def test_simulated_transitions_follow_the_stated_probabilities():
    """Empirical transition rates of a large panel equal the model's probabilities (no site effect, no E, C, F).

    Truth: Intercept -1.5, previous[1] 2.5, gap 0.3, gap:previous[1] -0.6, gaps 1 or 3 (centre 2):
    P(1 | 0, gap 1) = expit(-1.8), P(1 | 1, gap 1) = expit(1.3), P(1 | 0, gap 3) = expit(-1.2),
    P(1 | 1, gap 3) = expit(0.7). 4,000 sites x 4 waves; tolerance 4 binomial standard errors.
    """
    truth = {"sigma_site": 0.0, "beta": {"E": 0.0, "C": 0.0, "F": 0.0}}
    df, _ = simulate_panel(4000, 4, "bernoulli", gaps=(1.0, 3.0), seed=8, truth=truth)
    rows = _lagged(df.rename(columns={"time": "year"}), PANEL)
    expected = {(0, 1.0): -1.8, (1, 1.0): 1.3, (0, 3.0): -1.2, (1, 3.0): 0.7}
    for (previous, gap), logit in expected.items():
        cell = rows[(rows["previous"] == previous) & (rows["gap"] == gap)]["embedded"]
        p = 1.0 / (1.0 + np.exp(-logit))
        assert abs(cell.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(cell)), (previous, gap, cell.mean(), p, len(cell))


@pytest.mark.parametrize("predictors_at", ["previous", "current"])
def test_simulated_predictors_drive_transitions_at_the_stated_wave(predictors_at):
    """F drives the outcome at the wave ``predictors_at`` names and not at the other one.

    Scores are independent across waves here (no site means), so the other wave's F carries no
    signal: its least-squares slope on the 0/1 outcome is 0 within 4 standard errors (about
    0.007 each at 6,000 rows), while the stated wave's is that of beta_F = 2 (about 0.3).
    """
    predictors = {**default_truth()["predictors"], "site_sd": [0.0, 0.0, 0.0], "unit_sd": 0.8}
    truth = {"sigma_site": 0.0, "predictors": predictors, "beta": {"E": 0.0, "C": 0.0, "F": 2.0, "previous[1]": 0.0}}
    df, _ = simulate_panel(3000, 3, "bernoulli", seed=5, truth=truth, predictors_at=predictors_at)
    lagged = _lagged(df.rename(columns={"time": "year"}), PANEL)  # rows carrying the previous wave's F
    current = df[df["wave"] > 1]
    slopes = {"previous": np.polyfit(lagged["F"], lagged["embedded"], 1)[0],
              "current": np.polyfit(current["F"], current["embedded"], 1)[0]}
    other = "current" if predictors_at == "previous" else "previous"
    assert slopes[predictors_at] > 0.2, slopes
    assert abs(slopes[other]) < 0.03, slopes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_waves": 1}, r"^n_waves must be a whole number >= 2, got 1$"),
        ({"gaps": (1, 0)}, r"^gaps must be a list of positive numbers \(times between waves\), got \[1, 0\]$"),
        ({"family": "binomial"}, r'^dynamics = "transition" needs an outcome with states'),
        ({"truth": {"beta": {"previous[2]": 1.0}}}, r"^truth\['beta'\] names 'previous\[2\]', not a coefficient"),
    ],
)
def test_simulate_panel_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        simulate_panel(**kwargs)
