"""Item-level survey simulation: determinism, design, and recovery of the truth after scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.survey.reliability import icc1_icc2
from mbct_bayes.survey.scoring import (
    CONSTRUCTS,
    asked_mask,
    score_responses,
    site_scores,
    validate_responses,
)
from mbct_bayes.survey.simulate import (
    default_codebook,
    simulate_responses,
    simulate_site_table,
    simulate_survey,
)


@pytest.fixture(scope="module")
def codebook() -> pd.DataFrame:
    return default_codebook()


def test_same_seed_same_data(codebook):
    table = simulate_site_table(10, seed=4)
    a = simulate_responses(table, codebook, respondents_per_site=(2, 5), seed=9)
    b = simulate_responses(table, codebook, respondents_per_site=(2, 5), seed=9)
    pd.testing.assert_frame_equal(a, b)
    c = simulate_responses(table, codebook, respondents_per_site=(2, 5), seed=10)
    assert not a.equals(c)
    pd.testing.assert_frame_equal(simulate_site_table(10, seed=4), table)


def test_output_shape_and_design(codebook):
    table = simulate_site_table(30, seed=2)
    resp = simulate_responses(table, codebook, respondents_per_site=(2, 5), missing_rate=0.1,
                              seed=3)
    assert resp.columns[:3].tolist() == ["site", "respondent", "role"]
    assert resp.groupby("site").size().between(2, 5).all()
    assert set(resp["site"]) == set(table["site"])
    items = codebook["item"].tolist()
    x = resp[items].to_numpy()
    answered = x[~np.isnan(x)]
    assert np.all(answered == np.rint(answered)) and answered.min() >= 1 and answered.max() <= 5
    asked = asked_mask(resp["role"], codebook)
    assert np.all(np.isnan(x[~asked]))  # by design: never an answer to an item not asked
    rate = np.isnan(x[asked]).mean()
    assert rate == pytest.approx(0.1, abs=0.03)
    validate_responses(resp, codebook)  # passes the package's own validation
    truth = resp.attrs["truth"]
    assert truth["sites"]["S01"]["E"] == pytest.approx(table.loc[0, "E"])
    assert set(truth["sd_respondent"]) == set(CONSTRUCTS)
    assert all(truth["sd_measurement"][c] > truth["sd_respondent"][c] for c in CONSTRUCTS)


def test_reverse_items_are_reversed(codebook):
    table = simulate_site_table(60, seed=5)
    resp = simulate_responses(table, codebook, respondents_per_site=8, missing_rate=0.0, seed=5)
    # E_RE1 is forward, E_RE3 reverse-keyed in the same subscale: raw answers correlate negatively
    raw = resp[["E_RE1", "E_RE3"]].dropna()
    assert np.corrcoef(raw["E_RE1"], raw["E_RE3"])[0, 1] < -0.2


@pytest.mark.parametrize("target", [0.1, 0.3])
def test_hits_requested_icc1(codebook, target):
    table = simulate_site_table(400, seed=11)
    resp = simulate_responses(table, codebook, respondents_per_site=8, icc1=target, seed=12)
    scores = score_responses(resp, codebook)
    got = [icc1_icc2(scores[c], scores["site"])[0] for c in CONSTRUCTS]
    # sampling SE of ICC(1) with 400 sites x 8 is about 0.015; clipping at 1 and 5 pulls down
    assert np.mean(got) == pytest.approx(target, abs=0.03)
    assert all(abs(g - target) < 0.05 for g in got)


def test_scoring_recovers_site_means(codebook):
    table = simulate_site_table(80, seed=21)
    resp = simulate_responses(table, codebook, respondents_per_site=(25, 35), icc1=0.1, seed=22)
    sites = site_scores(score_responses(resp, codebook)).merge(table, on="site",
                                                                 suffixes=("", "_true"))
    for c in CONSTRUCTS:
        r = np.corrcoef(sites[c], sites[f"{c}_true"])[0, 1]
        # site-mean reliability ICC(2) = 30 * 0.1 / (1 + 29 * 0.1) = 0.77 -> r about sqrt(.77)
        assert r > 0.75
        assert (sites[c] - sites[f"{c}_true"]).mean() == pytest.approx(0.0, abs=0.1)


def test_few_respondents_attenuate(codebook):
    table = simulate_site_table(80, seed=31)
    few = simulate_responses(table, codebook, respondents_per_site=2, icc1=0.1, seed=32)
    sites = site_scores(score_responses(few, codebook)).merge(table, on="site",
                                                                suffixes=("", "_true"))
    r = np.corrcoef(sites["F"], sites["F_true"])[0, 1]
    assert r < 0.75  # two respondents at ICC(1) = 0.1: reliability about 0.18


def test_role_offsets_shift_scores(codebook):
    table = simulate_site_table(50, seed=41)
    kw = {"respondents_per_site": 20, "icc1": 0.2, "seed": 42,
          "role_weights": {"manager": 0.5, "mbct_teacher": 0.5}}
    base = score_responses(simulate_responses(table, codebook, **kw), codebook)
    shifted = score_responses(
        simulate_responses(table, codebook, role_offsets={"manager": {"F": 0.5}}, **kw), codebook
    )
    diff = (shifted["F"] - base["F"]).groupby(base["role"]).mean()
    assert diff["manager"] == pytest.approx(0.5, abs=0.1)
    assert diff["mbct_teacher"] == pytest.approx(0.0, abs=0.05)
    assert (shifted["E"] - base["E"]).abs().max() < 1e-12  # E untouched


def test_simulate_survey_defaults():
    resp, table = simulate_survey(12, seed=3, respondents_per_site=3)
    assert len(table) == 12 and len(resp) == 36
    assert table.columns.tolist() == ["site", "E", "C", "F"]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"icc1": 1.2}, r"icc1 for E must be in \(0, 1\), got 1.2"),
        ({"respondents_per_site": (3, 1)}, r"respondents_per_site must be >= 1 with low <= high"),
        ({"missing_rate": 1.0}, r"missing_rate must be in \[0, 1\), got 1.0"),
        ({"role_offsets": {"nurse": 0.2}}, r"role_offsets: unknown role 'nurse'"),
        ({"role_weights": {"manager": 0.0}}, r"role_weights must be >= 0 and not all zero"),
        ({"icc1": 0.97}, r"icc1 = 0.97 for E is too high for this design"),
    ],
)
def test_bad_arguments(codebook, kwargs, pattern):
    table = simulate_site_table(5, seed=1)
    if kwargs.get("icc1") == 0.97:
        table[["E", "C", "F"]] = table[["E", "C", "F"]] * 0.01 + 3  # tiny site differences
    with pytest.raises(DataError, match=pattern):
        simulate_responses(table, codebook, **kwargs)


def test_site_table_must_vary(codebook):
    flat = pd.DataFrame({"site": ["a", "b"], "E": [3.0, 3.0], "C": [3.0, 2.0], "F": [3.0, 2.0]})
    with pytest.raises(DataError, match=r"the true E values do not vary between sites"):
        simulate_responses(flat, codebook)
    with pytest.raises(DataError, match=r"site_table: missing column\(s\) F"):
        simulate_responses(flat.drop(columns="F"), codebook)
