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
    with pytest.raises(DataError, match=r"allowed keys: .*time, dynamics, predictors_at, time_trend$"):
        ModelSpec.from_dict({"dynamic": "transition"})


# -- panel observations -----------------------------------------------------------------------


def _panel() -> pd.DataFrame:
    return pd.DataFrame({
        "site": ["a", "a", "a", "b", "b"],
        "year": [2019, 2020, 2023, 2019, 2021],
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
    assert out["year"].tolist() == [2019, 2020, 2023, 2019, 2021]


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
    with pytest.raises(DataError, match="site 'b' has 2 rows at year 2019"):
        _validate(df, ModelSpec(time="year"))
