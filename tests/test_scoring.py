"""Codebook and responses validation, and ORCA scoring checked against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.survey.scoring import (
    KNOWN_ROLES,
    keyed_items,
    read_codebook,
    read_responses,
    score_responses,
    site_scores,
    validate_responses,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "codebook_orca_mbct.csv"
EXAMPLE = ROOT / "data" / "example" / "responses.csv"

# A tiny codebook whose scores are easy to work out by hand.
#   E: s1 = a1..a4 (a2 reversed), s2 = b1, b2 (b2 asked of managers only)
#   C: s3 = c1, c2 (asked of managers and referrers only)
#   F: s4 = f1, f2, f3 (f3 reversed, asked of managers and commissioners only)
TINY_CODEBOOK = """item,construct,subscale,reverse,min,max,text,roles
a1,E,s1,false,1,5,first,
a2,E,s1,true,1,5,second (reversed),
a3,E,s1,false,1,5,third,
a4,E,s1,false,1,5,fourth,
b1,E,s2,false,1,5,fifth,
b2,E,s2,false,1,5,managers only,manager
c1,C,s3,false,1,5,staff only,manager;referrer
c2,C,s3,false,1,5,staff only,manager;referrer
f1,F,s4,false,1,5,all,
f2,F,s4,false,1,5,all,
f3,F,s4,true,1,5,budget holders,manager;commissioner
"""
NA = np.nan
TINY_RESPONSES = pd.DataFrame(
    {
        "site": ["A", "A", "B"],
        "respondent": ["r1", "r2", "r3"],
        "role": ["manager", "referrer", "service_user"],
        "a1": [5, NA, 2],
        "a2": [1, NA, 4],
        "a3": [4, 3, 2],
        "a4": [2, NA, NA],
        "b1": [3, 4, NA],
        "b2": [5, NA, NA],
        "c1": [2, NA, NA],
        "c2": [NA, NA, NA],
        "f1": [4, 3, 1],
        "f2": [2, NA, 2],
        "f3": [5, NA, NA],
    }
)


@pytest.fixture
def tiny_codebook(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "codebook.csv"
    path.write_text(TINY_CODEBOOK, encoding="utf-8")
    return read_codebook(path)


def _write(tmp_path: Path, text: str, name: str = "codebook.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- codebook --------------------------------------------------------------------------------


def test_shipped_codebook_is_orca_shaped():
    cb = read_codebook(SHIPPED)
    assert set(cb["construct"]) == {"E", "C", "F"}
    per_sub = cb.groupby(["construct", "subscale"]).size()
    assert per_sub.between(3, 4).all()
    assert set(per_sub.loc["E"].index) == {
        "research_evidence", "clinical_experience", "service_user_preferences"
    }
    assert {"leadership_culture", "staff_culture", "evaluation_resources"} == set(
        per_sub.loc["C"].index
    )
    assert {"champions", "leadership_implementation", "training_supervision",
            "communication"} == set(per_sub.loc["F"].index)
    assert cb["reverse"].sum() >= 5
    assert (cb["min"] == 1).all() and (cb["max"] == 5).all()
    assert cb["text"].str.len().gt(20).all()
    budget = cb.set_index("item").loc["C_ER2", "roles"]
    assert set(budget) == {"manager", "commissioner"}
    assert all(set(r) <= set(KNOWN_ROLES) for r in cb["roles"])


def test_codebook_normalises_values(tmp_path):
    path = _write(tmp_path, "item,construct,subscale,reverse,min,max,text,roles\n"
                            "x1, e ,s,TRUE,1,5,t,MBCT teacher; Manager\n"
                            "x2,E,s,0,1,5,,\n")
    cb = read_codebook(path)
    assert cb["construct"].tolist() == ["E", "E"]
    assert cb["reverse"].tolist() == [True, False]
    assert cb["roles"].tolist() == [("mbct_teacher", "manager"), ()]


HEADER = "item,construct,subscale,reverse,min,max,text,roles\n"


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("x1,E,s,false,1,5,t,\nx2,G,s,false,1,5,t,\n",
         r"codebook\.csv: column 'construct' row 2: unknown construct 'G'; use E, C or F"),
        ("x1,E,s,false,5,5,t,\n",
         r"codebook\.csv: columns 'min'/'max' row 1: min 5 is not below max 5; give the scale's"),
        ("x1,E,s,false,1,5,t,\nx1,E,s,false,1,5,t,\n",
         r"codebook\.csv: column 'item' rows 1, 2: duplicate item 'x1'; each item must appear"),
        ("x1,E,s,maybe,1,5,t,\n",
         r"codebook\.csv: column 'reverse' row 1: value 'maybe' is not true/false; write true"),
        ("x1,E,s,false,1,5,t,nurse\n",
         r"codebook\.csv: column 'roles' row 1: unknown role 'nurse'; use ';'-separated roles"),
        ("x1,E,s,false,one,5,t,\n",
         r"codebook\.csv: column 'min' row 1: value 'one' is not a number; give the item's lowest"),
        ("x1,E,,false,1,5,t,\n",
         r"codebook\.csv: column 'subscale' row 1: empty subscale; name the subscale"),
        ("x1,E,s,false,1,5,t,\nx2,C,s,false,1,5,t,\n",
         r"codebook\.csv: column 'subscale' rows 1, 2: subscale 's' spans more than one construct"),
        ("site,E,s,false,1,5,t,\n",
         r"codebook\.csv: column 'item' row 1: item name 'site' is reserved"),
    ],
)
def test_codebook_errors(tmp_path, body, pattern):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(DataError, match=pattern):
        read_codebook(path)


def test_codebook_missing_column(tmp_path):
    path = _write(tmp_path, "item,construct,reverse,min,max\nx1,E,false,1,5\n")
    with pytest.raises(DataError, match=r"codebook\.csv: missing column 'subscale'; a codebook "
                                         r"needs the columns item, construct, subscale"):
        read_codebook(path)


# -- responses -------------------------------------------------------------------------------


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "responses.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_read_responses_roundtrip(tmp_path, tiny_codebook):
    df = read_responses(_csv(tmp_path, TINY_RESPONSES), tiny_codebook)
    assert df.columns[:3].tolist() == ["site", "respondent", "role"]
    assert df["a1"].dtype == float
    assert df.loc[1, "a1"] != df.loc[1, "a1"]  # NaN


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda d: d.assign(a3=[4, 7, 2]),
         r"responses\.csv: column 'a3' row 2: value '7' is outside the codebook range 1-5; fix "
         r"the value or the item's min/max in the codebook"),
        (lambda d: d.assign(a3=["4", "agree", "2"]),
         r"responses\.csv: column 'a3' row 2: text 'agree' in a numeric item; enter the response "
         r"as a number from 1 to 5, or leave the cell blank"),
        (lambda d: d.assign(site=["A", None, "B"]),
         r"responses\.csv: column 'site' row 2: a respondent without a site; fill in the site id"),
        (lambda d: d.assign(respondent=["r1", "r1", "r3"]),
         r"responses\.csv: columns 'site'/'respondent' rows 1, 2: respondent 'r1' appears more "
         r"than once in site 'A'"),
        (lambda d: d.assign(role=["manager", "nurse", "service_user"]),
         r"responses\.csv: column 'role' row 2: unknown role 'nurse'; use one of mbct_teacher, "
         r"manager, commissioner, referrer, service_user, other"),
        (lambda d: d.assign(z9=1),
         r"responses\.csv: column 'z9' not in the codebook; add the item to the codebook, fix the "
         r"column name, or drop the column"),
        (lambda d: d.drop(columns="f2"),
         r"responses\.csv: codebook item 'f2' missing from the data; add the column"),
        (lambda d: d.drop(columns="role"),
         r"responses\.csv: missing column 'role'; responses need site, respondent and role"),
        (lambda d: d.assign(c1=[2, NA, 3]),
         r"responses\.csv: column 'c1' row 3: answered by role 'service_user', which the codebook "
         r"does not ask this item; add the role to the item's roles in the codebook or blank"),
        (lambda d: d.assign(role=["manager", None, "referrer"]),
         r"responses\.csv: column 'role' row 2: a respondent without a role; fill in the role"),
    ],
)
def test_responses_errors(tmp_path, tiny_codebook, change, pattern):
    path = _csv(tmp_path, change(TINY_RESPONSES.copy()))
    with pytest.raises(DataError, match=pattern):
        read_responses(path, tiny_codebook)


def test_responses_empty_file(tmp_path, tiny_codebook):
    path = tmp_path / "responses.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"responses\.csv: .*empty"):
        read_responses(path, tiny_codebook)


def test_roles_are_normalised(tiny_codebook):
    df = validate_responses(TINY_RESPONSES.assign(role=["Manager", "referrer ", "Service user"]),
                            tiny_codebook)
    assert df["role"].tolist() == ["manager", "referrer", "service_user"]


def test_example_responses_validate():
    cb = read_codebook(SHIPPED)
    df = read_responses(EXAMPLE, cb)
    assert df["site"].nunique() == 40
    assert df.groupby("site").size().between(2, 5).all()


# -- scoring (hand-computed) -----------------------------------------------------------------


def test_reverse_keying(tiny_codebook):
    x = keyed_items(validate_responses(TINY_RESPONSES, tiny_codebook), tiny_codebook)
    # a2 reversed: 1 -> 5, 4 -> 2; f3 reversed: 5 -> 1
    assert x[0, 1] == 5 and x[2, 1] == 2 and x[0, 10] == 1
    assert x[0, 0] == 5  # a forward item is unchanged


def test_scores_by_hand(tiny_codebook):
    s = score_responses(TINY_RESPONSES, tiny_codebook).set_index("respondent")
    # r1, manager: s1 = (5 + 5 + 4 + 2) / 4 = 4; s2 = (3 + 5) / 2 = 4; E = 4
    #              s3: c1 only = 1 of 2 asked -> exactly half, scored: 2; C = 2
    #              s4 = (4 + 2 + (6 - 5)) / 3 = 7/3; F = 7/3
    r1 = s.loc["r1"]
    assert r1["E_s1"] == 4.0 and r1["E_s2"] == 4.0 and r1["E"] == 4.0
    assert r1["C_s3"] == 2.0 and r1["C"] == 2.0
    assert r1["F"] == pytest.approx(7 / 3, abs=1e-15)
    assert r1["n_asked_E"] == 6 and r1["n_not_asked_E"] == 0 and r1["n_nonresponse_C"] == 1

    # r2, referrer: s1 has 1 of 4 answered (< half) -> not scored; s2: b2 not asked (by design),
    #              so b1 is 1 of 1 -> 4; E = 4 from s2 alone.
    #              C: both asked items blank -> non-response; F: f3 not asked, f1 of f1, f2 -> 3
    r2 = s.loc["r2"]
    assert np.isnan(r2["E_s1"]) and r2["E_s2"] == 4.0 and r2["E"] == 4.0
    assert r2["n_asked_E"] == 5 and r2["n_answered_E"] == 2
    assert r2["n_nonresponse_E"] == 3 and r2["n_not_asked_E"] == 1
    assert np.isnan(r2["C"]) and r2["status_C"] == "nonresponse"
    assert r2["F"] == 3.0 and r2["n_not_asked_F"] == 1 and r2["n_nonresponse_F"] == 1
    assert r2["n_subscales_E"] == 1

    # r3, service user: s1 = (2 + (6 - 4) + 2) / 3 = 2 (3 of 4 answered); s2: b1 blank, b2 not
    #              asked -> 0 of 1 asked -> non-response; E = 2.
    #              C: no item asked of service users -> missing by design; F = (1 + 2) / 2
    r3 = s.loc["r3"]
    assert r3["E_s1"] == 2.0 and np.isnan(r3["E_s2"]) and r3["E"] == 2.0
    assert np.isnan(r3["C"]) and r3["status_C"] == "not_asked"
    assert r3["n_asked_C"] == 0 and r3["n_not_asked_C"] == 2 and r3["n_nonresponse_C"] == 0
    assert r3["F"] == 1.5 and r3["status_F"] == "scored"
    assert s["status_E"].tolist() == ["scored"] * 3


def test_min_answered_is_configurable(tiny_codebook):
    strict = score_responses(TINY_RESPONSES, tiny_codebook, min_answered=0.75)
    strict = strict.set_index("respondent")
    assert np.isnan(strict.loc["r1", "C"])  # 1 of 2 < 0.75
    assert strict.loc["r3", "E_s1"] == 2.0  # 3 of 4 = 0.75 still passes
    loose = score_responses(TINY_RESPONSES, tiny_codebook, min_answered=0.25).set_index(
        "respondent"
    )
    assert loose.loc["r2", "E_s1"] == 3.0  # 1 of 4 = 0.25 passes: a3 = 3
    assert loose.loc["r2", "E"] == 3.5  # mean of subscales 3 and 4
    with pytest.raises(DataError, match=r"min_answered must be in \(0, 1\], got 0"):
        score_responses(TINY_RESPONSES, tiny_codebook, min_answered=0)


def test_scale_is_mean_of_subscales_not_items(tiny_codebook):
    one = TINY_RESPONSES.iloc[[0]].copy()
    one[["a1", "a2", "a3", "a4"]] = [5, 1, 5, 5]  # s1 = 5 (4 items)
    one[["b1", "b2"]] = [1, 1]  # s2 = 1 (2 items)
    s = score_responses(one, tiny_codebook)
    assert s.loc[0, "E"] == 3.0  # (5 + 1) / 2, not the item mean 18 / 6


def test_site_scores_by_hand(tiny_codebook):
    sites = site_scores(score_responses(TINY_RESPONSES, tiny_codebook), sd=True).set_index("site")
    assert sites.loc["A", "E"] == 4.0 and sites.loc["A", "n_E"] == 2
    assert sites.loc["A", "C"] == 2.0 and sites.loc["A", "n_C"] == 1
    assert sites.loc["A", "F"] == pytest.approx((7 / 3 + 3) / 2, abs=1e-15)
    assert sites.loc["A", "n_respondents"] == 2
    assert sites.loc["B", "E"] == 2.0 and np.isnan(sites.loc["B", "C"])
    assert sites.loc["B", "n_C"] == 0 and sites.loc["B", "n_respondents"] == 1
    assert sites.loc["A", "F_sd"] == pytest.approx(np.std([7 / 3, 3], ddof=1))
    assert np.isnan(sites.loc["B", "F_sd"])
    assert list(sites.reset_index().columns[:8]) == ["site", "E", "C", "F", "n_E", "n_C", "n_F",
                                                     "n_respondents"]


def test_site_scores_needs_scores():
    with pytest.raises(DataError, match=r"respondent scores: missing columns 'E', 'C', 'F'"):
        site_scores(pd.DataFrame({"site": ["a"]}))


def test_scoring_is_vectorised_and_order_free(tiny_codebook):
    s1 = score_responses(TINY_RESPONSES, tiny_codebook)
    s2 = score_responses(TINY_RESPONSES.iloc[::-1], tiny_codebook).iloc[::-1].reset_index(
        drop=True
    )
    pd.testing.assert_frame_equal(s1, s2)


def test_region_and_wave_pass_through(tiny_codebook):
    df = TINY_RESPONSES.assign(region=["North", "North", "South"], wave=[1, 1, 1])
    s = score_responses(df, tiny_codebook)
    assert s["region"].tolist() == ["North", "North", "South"]
    sites = site_scores(s)
    assert sites["region"].tolist() == ["North", "South"]


def test_reliability_api_importable_from_scoring():
    # deprecated aliases of names that moved to survey.reliability (which imports scoring, so
    # scoring must not import it back)
    from mbct_bayes.survey import reliability, scoring

    with pytest.warns(DeprecationWarning, match=r"survey\.scoring\.icc1_icc2 is now mbct_bayes\.survey\.reliability"):
        assert scoring.icc1_icc2 is reliability.icc1_icc2
    with pytest.warns(DeprecationWarning):
        assert scoring.cronbach_alpha is reliability.cronbach_alpha
    with pytest.raises(AttributeError, match="has no attribute 'not_a_function'"):
        _ = scoring.not_a_function


def test_python_tables_are_validated_too(tiny_codebook):
    bad = TINY_RESPONSES.assign(f1=[4, 9, 1])
    with pytest.raises(DataError, match=r"^responses: column 'f1' row 2: value '9' is outside the "
                                        r"codebook range 1-5"):
        score_responses(bad, tiny_codebook)


# -- the file's own names for the id columns -----------------------------------------------------
def test_id_columns_may_have_the_files_own_names(tmp_path, tiny_codebook):
    from mbct_bayes.survey.scoring import parse_columns

    renamed = TINY_RESPONSES.rename(columns={"site": "Trust", "respondent": "ID", "role": "Job"})
    columns = parse_columns(" site=Trust, respondent=ID ,role=Job")
    assert columns == {"site": "Trust", "respondent": "ID", "role": "Job"}
    got = read_responses(_csv(tmp_path, renamed), tiny_codebook, columns=columns)
    pd.testing.assert_frame_equal(got, validate_responses(TINY_RESPONSES, tiny_codebook))


@pytest.mark.parametrize(
    ("columns", "pattern"),
    [
        ({"trust": "Trust"}, r"the id-column map names 'trust', which is not an id column; map site, respondent, role"),
        ({"site": "Trus"}, r"no column 'Trus' to use as an id column"),
        ({"role": "respondent"}, r"already has a column 'role'"),
    ],
)
def test_bad_id_column_maps(tiny_codebook, columns, pattern):
    renamed = TINY_RESPONSES.rename(columns={"site": "Trust"})
    with pytest.raises(DataError, match=pattern):
        validate_responses(renamed, tiny_codebook, columns=columns)


@pytest.mark.parametrize("text", ["site", "site=", "=Trust", "site=Trust,role"])
def test_bad_columns_option(text):
    from mbct_bayes.survey.scoring import parse_columns

    with pytest.raises(DataError, match=r"--columns: .* is not NAME=COLUMN; write e.g. site=Trust"):
        parse_columns(text)
