"""Scoring forecasts made earlier against outcomes observed later."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.rules import baseline_base_rate, brier, log_score, log_score_binomial, rps, score_table
from mbct_bayes.forecast.saved import LOG_SCORE_OF, score_forecasts
from mbct_bayes.io import dumps_json


def _binary_tables(n=12, seed=0):
    rng = np.random.default_rng(seed)
    sites = [f"S{i:02d}" for i in range(n)]
    p = rng.uniform(0.1, 0.9, size=n).round(3)
    y = rng.binomial(1, p)
    return pd.DataFrame({"site": sites, "p_mean": p}), pd.DataFrame({"site": sites, "embedded": y})


def test_binary_scores_equal_score_table_on_the_joined_rows():
    f, o = _binary_tables()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all ids match: no warning
        out = score_forecasts(f, o, n_boot=100, seed=1)
    assert out.family == "bernoulli" and out.n == 12
    expected = score_table(
        f["p_mean"], o["embedded"], f["site"], family="bernoulli", n_boot=100, seed=1
    )
    np.testing.assert_equal(out.scores, {**expected, "log_score_of": LOG_SCORE_OF["bernoulli"]})
    assert out.scores["model"]["brier"] == pytest.approx(brier(f["p_mean"], o["embedded"]))


def test_unmatched_ids_are_reported_and_warned():
    f, o = _binary_tables()
    f = f.drop(index=0)  # S00 has an outcome but no forecast
    o = o.drop(index=[10, 11])  # S10, S11 have forecasts but no outcome
    with pytest.warns(UserWarning, match=r"2 forecast id\(s\) have no outcome and 1 outcome id"):
        out = score_forecasts(f, o, n_boot=50)
    assert out.n == 9
    assert out.unmatched_forecasts["site"].tolist() == ["S10", "S11"]
    assert out.unmatched_outcomes["site"].tolist() == ["S00"]
    d = json.loads(dumps_json(out.to_dict()))
    assert d["unmatched"] == {"forecasts": ["S10", "S11"], "outcomes": ["S00"]}
    assert d["n"] == 9 and set(d) >= {"model", "baseline", "skill"}


def test_rows_in_different_order_are_joined_by_id():
    f, o = _binary_tables()
    out_sorted = score_forecasts(f, o, n_boot=20)
    out_shuffled = score_forecasts(f.iloc[::-1], o.sample(frac=1, random_state=3), n_boot=20)
    assert out_shuffled.scores["model"]["log_score"] == pytest.approx(
        out_sorted.scores["model"]["log_score"]
    )


def test_ids_read_as_different_types_still_join():
    f = pd.DataFrame({"site": [1, 2, 3], "p_mean": [0.2, 0.7, 0.5]})
    o = pd.DataFrame({"site": ["1", "2", "3"], "embedded": [0, 1, 1]})
    assert score_forecasts(f, o, n_boot=10).n == 3


def test_two_id_columns_bootstrap_over_site():
    ids = {"site": ["a", "a", "b", "b", "c"], "wave": [1, 2, 1, 2, 1]}
    f = pd.DataFrame(ids | {"p_mean": [0.2, 0.3, 0.6, 0.7, 0.5]})
    o = pd.DataFrame(ids | {"embedded": [0, 1, 1, 1, 0]})
    out = score_forecasts(f, o, id_cols=("site", "wave"), n_boot=20)
    assert out.n == 5
    # leave-site-out base rate: a <- (b, c) = 2/3, b <- (a, c) = 1/3, c <- (a, b) = 3/4
    base = baseline_base_rate([0, 1, 1, 1, 0], ["a", "a", "b", "b", "c"])
    np.testing.assert_allclose(base, [2 / 3, 2 / 3, 1 / 3, 1 / 3, 0.75])
    assert out.scores["baseline"]["log_score"] == pytest.approx(log_score(base, [0, 1, 1, 1, 0]))


def test_fixed_base_rate():
    f, o = _binary_tables()
    out = score_forecasts(f, o, base_rate=0.4, n_boot=20)
    assert out.scores["baseline"]["brier"] == pytest.approx(brier(np.full(12, 0.4), o["embedded"]))


def test_binomial_outcomes_with_trials():
    f = pd.DataFrame({"site": ["a", "b", "c"], "p_mean": [0.2, 0.6, 0.5]})
    o = pd.DataFrame({"site": ["a", "b", "c"], "embedded": [1, 2, 0], "trials": [2, 3, 1]})
    out = score_forecasts(f, o, n_boot=20)
    assert out.family == "binomial"
    assert out.scores["model"]["brier"] == pytest.approx(1.61 / 6)  # worked in test_scores
    # a saved p_mean has no spread: model and baseline are both plug-in Binomial(k | n, p)
    assert out.scores["model"]["log_score"] == pytest.approx(log_score_binomial([0.2, 0.6, 0.5], [1, 2, 0], [2, 3, 1]))
    assert out.scores["log_score_of"]["model"].startswith("plug-in: Binomial(k | n, p_mean)")
    assert out.scores["log_score_of"]["baseline"] == "plug-in: Binomial(k | n, base rate)"


def _ordinal_tables():
    # columns deliberately out of order; probabilities rounded so rows sum to 0.999 or 1.001
    f = pd.DataFrame(
        {
            "site": ["a", "b", "c", "d"],
            "p_embedded": [0.333, 0.1, 0.6, 0.2],
            "p_none": [0.333, 0.5, 0.1, 0.3],
            "p_partial": [0.333, 0.4, 0.3, 0.5],
        }
    )
    o = pd.DataFrame(
        {"site": ["a", "b", "c", "d"], "level": ["embedded", "none", "partial", "partial"]}
    )
    return f, o


def test_ordinal_default_levels_and_rounded_rows():
    f, o = _ordinal_tables()
    out = score_forecasts(f, o, n_boot=20)
    assert out.family == "ordinal"
    assert out.levels == ("none", "partial", "embedded")
    P = np.array([[1 / 3] * 3, [0.5, 0.4, 0.1], [0.1, 0.3, 0.6], [0.3, 0.5, 0.2]])
    assert out.scores["model"]["rps"] == pytest.approx(rps(P, [2, 0, 1, 1]))
    assert set(out.scores["skill"]) == {"log_score", "brier", "rps"}


def test_ordinal_from_predict_output_ignores_summary_columns():
    f, o = _ordinal_tables()
    f = f.assign(p_mean=f["p_embedded"], p_sd=0.1, p_q05=0.0, p_q50=0.3, p_q95=0.9)
    out = score_forecasts(f, o, n_boot=20)  # outcome 'level' -> ordinal despite p_mean
    assert out.levels == ("none", "partial", "embedded")


def test_ordinal_custom_levels_in_given_order():
    f = pd.DataFrame({"site": ["a", "b"], "p_low": [0.7, 0.2], "p_high": [0.3, 0.8]})
    o = pd.DataFrame({"site": ["a", "b"], "level": ["low", "high"]})
    out = score_forecasts(f, o, levels=["low", "high"], n_boot=10)
    # K = 2: RPS = Brier on "high": ((0.3 - 0)^2 + (0.8 - 1)^2) / 2 = 0.065
    assert out.scores["model"]["rps"] == pytest.approx(0.065)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def _bad(f=None, o=None, **kwargs):
    f0, o0 = _binary_tables(4)
    f = f0 if f is None else f
    o = o0 if o is None else o
    return lambda: score_forecasts(f, o, n_boot=5, **kwargs)


F4, O4 = _binary_tables(4)
FO, OO = _ordinal_tables()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            _bad(f=F4.assign(p_mean=[0.2, 1.3, 0.5, -0.1])),
            r"forecasts: column 'p_mean' rows 2, 4: value 1.3 is outside \[0, 1\]",
        ),
        (
            _bad(f=F4.assign(p_mean=[0.2, np.nan, 0.5, 0.1])),
            r"forecasts: column 'p_mean' rows 2: missing forecast",
        ),
        (
            _bad(f=F4.assign(p_mean=["0.2", "high", "0.5", "0.1"])),
            r"forecasts: column 'p_mean' rows 2: value 'high' is not a number",
        ),
        (
            lambda: score_forecasts(FO.assign(p_none=[0.333, 0.5, 0.1, 0.2]), OO),
            r"forecasts: columns p_none, p_partial, p_embedded rows 4: probabilities sum to 0.9, "
            r"not 1 \(tolerance 0.001\)",
        ),
        (
            _bad(f=F4.assign(site=["S00", "S01", "S01", "S03"])),
            r"forecasts: duplicate id S01 in rows 2, 3; keep one row per id",
        ),
        (
            _bad(o=O4.assign(site=["S00", "S00", "S02", "S03"])),
            r"outcomes: duplicate id S00 in rows 1, 2",
        ),
        (
            _bad(o=O4.assign(site=["X0", "X1", "X2", "X3"])),
            r"forecasts and outcomes share no id in site "
            r"\(e.g. forecasts has S00, outcomes has X0\)",
        ),
        (
            _bad(f=F4.rename(columns={"site": "service"})),
            r"forecasts: id column 'site' is missing; columns are service, p_mean; name the id",
        ),
        (
            _bad(o=O4.rename(columns={"site": "Site"})),
            r"outcomes: id column 'site' is missing",
        ),
        (_bad(f=F4.assign(site=["S00", None, "S02", "S03"])), r"forecasts: rows 2 have no id"),
        (
            _bad(f=F4.rename(columns={"p_mean": "prob"})),
            r"forecasts: no forecast column 'p_mean'; columns are site, prob",
        ),
        (
            _bad(o=O4.rename(columns={"embedded": "outcome"})),
            r"outcomes: no outcome column 'embedded' or 'level'",
        ),
        (_bad(outcome="status"), r"outcomes: outcome column 'status' is missing"),
        (
            _bad(o=O4.assign(embedded=[0, 1, 2, 1])),
            r"outcomes: column 'embedded' rows 3: value 2 is not 0 or 1",
        ),
        (
            _bad(o=O4.assign(embedded=[0, np.nan, 1, 1])),
            r"outcomes: column 'embedded' rows 2: missing outcome",
        ),
        (
            lambda: score_forecasts(FO, OO.assign(level=["none", "full", "partial", "none"])),
            r"outcomes: column 'level' rows 2: level 'full' is not one of none, partial, embedded",
        ),
        (
            lambda: score_forecasts(FO, OO, levels=["none", "some", "embedded"]),
            r"forecasts: per-level column 'p_some' is missing",
        ),
        (
            lambda: score_forecasts(F4, O4.rename(columns={"embedded": "level"})),
            r"forecasts: ordinal outcome 'level' needs one column p_<level> per level",
        ),
        (
            _bad(o=O4.assign(site=["S00", "S01", "S02", "S03"]).iloc[:1]),
            r"only one site matched, so there is no other site to take a base rate from",
        ),
        (_bad(base_rate=1.5), r"base_rate: 1.5 is outside \[0, 1\]"),
        (
            lambda: score_forecasts(FO, OO, base_rate=0.3),
            r"base_rate: a fixed base rate applies to binary outcomes only",
        ),
        (
            _bad(o=O4.assign(trials=[2, 0, 1, 1])),
            r"outcomes: column 'trials' rows 2: trials must be whole numbers >= 1",
        ),
        (
            _bad(o=O4.assign(embedded=[3, 0, 1, 1], trials=2)),
            r"outcomes: column 'embedded' rows 1: value 3 is not a whole number of successes",
        ),
        (_bad(group="region"), r"group: 'region' is not an id column"),
        (_bad(id_cols=()), r"id_cols: give at least one id column"),
    ],
)
def test_bad_input_messages(call, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(DataError, match=message):
            call()
