"""The data contract: every unreadable file and every bad value gets a one-line, useful error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.model.simulate import simulate_observations
from mbct_bayes.schema import (
    DataWarning,
    level_codes,
    read_observations,
    read_table,
    validate_observations,
)
from mbct_bayes.spec import ModelSpec

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"
BERN = ModelSpec()
BERN_R = ModelSpec(region="region")
BINOM = ModelSpec(family="binomial", region="region")
ORD = ModelSpec(family="ordinal")
HEADER = "site,region,wave,E,C,F,embedded"


def write(tmp_path: Path, text: str | bytes, name: str = "obs.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def obs() -> pd.DataFrame:
    df, _ = simulate_observations(12, 4, seed=3)
    return df


@pytest.fixture
def obs_binom() -> pd.DataFrame:
    df, _ = simulate_observations(12, 4, "binomial", seed=3)
    return df


@pytest.fixture
def obs_ord() -> pd.DataFrame:
    df, _ = simulate_observations(12, 4, "ordinal", seed=3)
    return df


def validate(df, spec=BERN_R, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # a clean table raises no warning
        return validate_observations(df, spec, source="obs.csv", **kw)


# -- reading: good files ----------------------------------------------------------------------


def test_read_example_files_validate_cleanly():
    for name, spec in [
        ("observations.csv", ModelSpec.from_toml(EXAMPLE.parents[1] / "models" / "bernoulli.toml")),
        ("observations_binomial.csv", BINOM),
        ("observations_ordinal.csv", ORD),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)
            df = read_observations(EXAMPLE / name, spec)
        assert len(df) == 200 and df["site"].nunique() == 40


def test_read_without_spec_gives_numeric_scores_and_text_ids():
    df = read_observations(EXAMPLE / "observations.csv")
    assert df["E"].dtype == np.float64 and df["embedded"].dtype == np.int64
    assert df["site"].iloc[0] == "S01"


def test_leading_zero_ids_stay_text(tmp_path):
    path = write(tmp_path, "site,E,C,F,embedded\n007,3,3,3,1\n7,3,3,3,0\n")
    df = read_table(path)
    assert df["site"].tolist() == ["007", "7"]


@pytest.mark.filterwarnings("ignore::mbct_bayes.schema.DataWarning")
def test_spec_group_column_stays_text(tmp_path):
    path = write(tmp_path, "service,E,C,F,embedded\n001,3,3,3,1\n002,3,3,3,0\n")
    df = read_observations(path, ModelSpec(group="service"))
    assert df["service"].tolist() == ["001", "002"]


def test_bom_crlf_and_unicode_site_names(tmp_path):
    text = "site,E,C,F,embedded\r\nYsbyty Gwynedd – Bangor,3,3,3,1\r\nÅrhus,2.5,3,4,0\r\n"
    path = write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    df = read_table(path)
    assert list(df.columns) == ["site", "E", "C", "F", "embedded"]
    assert df["site"].tolist() == ["Ysbyty Gwynedd – Bangor", "Århus"]
    assert df["F"].tolist() == [3, 4]


def test_semicolon_file_with_decimal_commas_is_accepted(tmp_path):
    path = write(tmp_path, "site;E;C;F;embedded\nS1;3,5;3;2,25;1\nS2;2;3;3;0\n")
    df = read_table(path)
    assert df["E"].tolist() == [3.5, 2.0] and df["F"].tolist() == [2.25, 3.0]


def test_tab_separated_file_is_accepted(tmp_path):
    path = write(tmp_path, "site\tE\tC\tF\tembedded\nS1\t3.5\t3\t2\t1\n", name="obs.tsv")
    assert read_table(path)["E"].tolist() == [3.5]


def test_blank_lines_and_trailing_delimiters_are_ignored(tmp_path):
    path = write(tmp_path, "site,E,C,F,embedded,\nS1,3,3,3,1,\n\n,,,,,\nS2,3,3,3,0,\n")
    df = read_table(path)
    assert list(df.columns) == ["site", "E", "C", "F", "embedded"] and len(df) == 2


def test_na_tokens_are_missing(tmp_path):
    path = write(tmp_path, "site,E,C,F,embedded\nS1,NA,3,3,1\nS2,3,3,3,0\n")
    assert np.isnan(read_table(path)["E"].iloc[0])


def test_parquet_round_trip(tmp_path, obs):
    path = tmp_path / "obs.parquet"
    obs.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_observations(path, BERN_R), validate(obs))


# -- reading: bad files -------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: observations file not found; check the path"):
        read_table(tmp_path / "nope.csv")


def test_directory(tmp_path):
    with pytest.raises(DataError, match="is a directory; give the observations file"):
        read_table(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"obs\.csv: file is empty \(0 bytes\)"):
        read_table(write(tmp_path, b""))


def test_blank_file(tmp_path):
    with pytest.raises(DataError, match="only blank space"):
        read_table(write(tmp_path, "\n\n  \n"))


def test_header_only(tmp_path):
    with pytest.raises(DataError, match="has a header but no data rows"):
        read_table(write(tmp_path, HEADER + "\n"))


def test_header_only_parquet(tmp_path, obs):
    path = tmp_path / "obs.parquet"
    obs.iloc[:0].to_parquet(path)
    with pytest.raises(DataError, match="has a header but no data rows"):
        read_table(path)


def test_non_utf8_names_offset_and_line(tmp_path):
    raw = (HEADER + "\nS01,Wales,1,3,3,3,1\nCaf\xe9,Wales,1,3,3,3,0\n").encode("latin-1")
    with pytest.raises(
        DataError,
        match=r"not UTF-8 text \(byte 0xe9 at offset \d+, line 3\); save the file as UTF-8",
    ):
        read_table(write(tmp_path, raw))


def test_utf16_file(tmp_path):
    with pytest.raises(DataError, match="UTF-16 text; save the file as UTF-8"):
        read_table(write(tmp_path, HEADER.encode("utf-16")))


def test_excel_file_renamed_csv(tmp_path):
    with pytest.raises(DataError, match="looks like an Excel/zip file"):
        read_table(write(tmp_path, b"PK\x03\x04rest-of-zip"))


def test_duplicated_column_names(tmp_path):
    with pytest.raises(DataError, match="column name 'E' appears 2 times in the header"):
        read_table(write(tmp_path, "site,E,C,E,embedded\nS1,3,3,3,1\n"))


def test_unnamed_column_with_data(tmp_path):
    with pytest.raises(DataError, match="column 3 has no name in the header"):
        read_table(write(tmp_path, "site,E,,F,embedded\nS1,3,3,3,1\n"))


def test_ragged_row_too_many_fields(tmp_path):
    text = "site,E,C,F,embedded\nS1,3,3,3,1\nS2,3,5,3,3,0\n"
    with pytest.raises(DataError, match="line 3 has 6 fields but the header has 5; fix that row"):
        read_table(write(tmp_path, text))


def test_ragged_row_too_few_fields(tmp_path):
    with pytest.raises(DataError, match="line 2 has 4 fields but the header has 5"):
        read_table(write(tmp_path, "site,E,C,F,embedded\nS1,3,3,1\n"))


def test_nul_bytes(tmp_path):
    with pytest.raises(DataError, match="contains NUL bytes"):
        read_table(write(tmp_path, b"site,E\nS1\x00,3\n"))


def test_corrupt_parquet(tmp_path):
    with pytest.raises(DataError, match=r"obs\.parquet: not a readable Parquet file"):
        read_table(write(tmp_path, b"PAR1 this is not really parquet", name="obs.parquet"))


def test_parquet_saved_as_csv(tmp_path):
    with pytest.raises(
        DataError, match=r"looks like a Parquet file; give it a \.parquet extension"
    ):
        read_table(write(tmp_path, b"PAR1\x00\x00junk"))


# -- validation: good data -------------------------------------------------------------------


def test_validate_returns_clean_copy(obs):
    messy = obs.copy()
    messy["E"] = messy["E"].astype(str)
    messy["embedded"] = messy["embedded"].astype(float)
    messy["note"] = "kept"
    messy.index = messy.index + 100
    out = validate(messy)
    assert out["E"].dtype == np.float64 and out["embedded"].dtype == np.int64
    assert out["note"].eq("kept").all()
    assert list(out.index) == list(range(len(obs)))
    assert messy["E"].dtype != np.float64  # the input is untouched


def test_numeric_site_ids_become_text(obs):
    df = obs.assign(site=obs["site"].str[1:].astype(int))
    out = validate(df)
    assert out["site"].iloc[0] == "1"


def test_binomial_and_ordinal_validate(obs_binom, obs_ord):
    out = validate(obs_binom, BINOM)
    assert out["trials"].dtype == np.int64
    out = validate(obs_ord, ORD)
    assert out["level"].tolist() == obs_ord["level"].tolist()


# -- validation: errors, each with its message --------------------------------------------------


def test_missing_column_suggests_closest(obs):
    with pytest.raises(DataError, match=r"obs\.csv: missing column 'F' \(did you mean 'f'\?\)"):
        validate(obs.rename(columns={"F": "f"}))


def test_misspelt_outcome_column(obs):
    with pytest.raises(
        DataError,
        match=r"missing column 'embedded' \(did you mean 'embeded'\?\)"
        r".*set the column name in the spec",
    ):
        validate(obs.rename(columns={"embedded": "embeded"}))


def test_semicolon_file_read_by_pandas_as_one_column(tmp_path):
    path = write(tmp_path, "site;E;C;F;embedded\nS1;3;3;3;1\n")
    with pytest.raises(DataError, match="looks like ';'-separated text read as comma-separated"):
        validate(pd.read_csv(path))


def test_several_missing_columns(obs):
    with pytest.raises(DataError, match="missing columns 'C', 'F'"):
        validate(obs.drop(columns=["C", "F"]))


def test_missing_region_column(obs):
    with pytest.raises(DataError, match="missing column 'region'"):
        validate(obs.drop(columns="region"))


def test_non_numeric_score(obs):
    df = obs.astype({"C": object})
    df.loc[[2, 6], "C"] = "high"
    with pytest.raises(DataError, match=r"column 'C' rows 3, 7: value 'high' is not a number"):
        validate(df)


def test_missing_score(obs):
    df = obs.copy()
    df.loc[4, "E"] = np.nan
    with pytest.raises(DataError, match="column 'E' row 5: missing score"):
        validate(df)


def test_infinite_score(obs):
    df = obs.copy()
    df.loc[0, "F"] = np.inf
    with pytest.raises(DataError, match="column 'F' row 1: infinite value"):
        validate(df)


def test_score_outside_scale(obs):
    df = obs.copy()
    df.loc[[2, 6], "F"] = 7.5
    with pytest.raises(
        DataError,
        match=r"column 'F' rows 3, 7: value 7\.5 is outside the scale 1-5; "
        r"fix the value or set scale\.F in the spec",
    ):
        validate(df)


def test_huge_score(obs):
    df = obs.copy()
    df.loc[0, "E"] = 1e308
    with pytest.raises(DataError, match="value 1e\\+308 is outside the scale 1-5"):
        validate(df)


def test_huge_unscaled_covariate(obs):
    spec = ModelSpec(predictors=("E", "C", "F", "size"))
    df = obs.assign(size=1.0)
    df.loc[3, "size"] = 1e308
    with pytest.raises(
        DataError, match="column 'size' row 4: value 1e\\+308 is too large to model"
    ):
        validate(df, spec)


def test_row_list_is_truncated(obs):
    df = obs.copy()
    df.loc[0:9, "C"] = 0.0
    with pytest.raises(DataError, match="rows 1, 2, 3, 4, 5 and 5 more: value 0 is outside"):
        validate(df)


def test_missing_outcome(obs):
    df = obs.copy()
    df["embedded"] = df["embedded"].astype(float)
    df.loc[2, "embedded"] = np.nan
    with pytest.raises(DataError, match="column 'embedded' row 3: missing outcome"):
        validate(df)


def test_outcome_not_0_1(obs):
    df = obs.copy()
    df.loc[1, "embedded"] = 2
    with pytest.raises(
        DataError,
        match=r"row 2: value 2 is not 0 or 1; a bernoulli outcome is 0/1 "
        r"\(for k of n use family = \"binomial\"",
    ):
        validate(df)


def test_outcome_text(obs):
    df = obs.astype({"embedded": object})
    df.loc[0, "embedded"] = "yes"
    with pytest.raises(DataError, match="row 1: value 'yes' is not a whole number"):
        validate(df)


def test_one_class_outcome(obs):
    with pytest.raises(
        DataError, match="every outcome is 1; a model of P\\(embedded\\) needs both 0s and 1s"
    ):
        validate(obs.assign(embedded=1))


def test_binomial_k_greater_than_n(obs_binom):
    df = obs_binom.copy()
    df.loc[3, "embedded"] = 9
    with pytest.raises(
        DataError,
        match=r"column 'embedded' row 4: value 9 is more than 'trials' \(8\); k of n needs k <= n",
    ):
        validate(df, BINOM)


def test_binomial_negative_k(obs_binom):
    df = obs_binom.copy()
    df.loc[0, "embedded"] = -1
    with pytest.raises(DataError, match="row 1: value -1 is negative"):
        validate(df, BINOM)


def test_binomial_non_integer_k(obs_binom):
    df = obs_binom.astype({"embedded": float})
    df.loc[0, "embedded"] = 2.5
    with pytest.raises(
        DataError, match=r"column 'embedded' row 1: value 2\.5 is not a whole number"
    ):
        validate(df, BINOM)


def test_binomial_non_integer_trials(obs_binom):
    df = obs_binom.astype({"trials": float})
    df.loc[5, "trials"] = 7.5
    with pytest.raises(DataError, match=r"column 'trials' row 6: value 7\.5 is not a whole number"):
        validate(df, BINOM)


def test_binomial_zero_trials(obs_binom):
    df = obs_binom.copy()
    df.loc[0, ["embedded", "trials"]] = 0
    with pytest.raises(
        DataError, match="column 'trials' row 1: value 0 is below 1; trials must be >= 1"
    ):
        validate(df, BINOM)


def test_binomial_one_class(obs_binom):
    with pytest.raises(DataError, match=r"every outcome is 0 \(none embedded\)"):
        validate(obs_binom.assign(embedded=0), BINOM)


def test_missing_trials_column(obs_binom):
    with pytest.raises(DataError, match="missing column 'trials'"):
        validate(obs_binom.drop(columns="trials"), BINOM)


def test_ordinal_unknown_level(obs_ord):
    df = obs_ord.copy()
    df.loc[[1, 4], "level"] = "Embeded"
    with pytest.raises(
        DataError,
        match=r"column 'level' rows 2, 5: value 'Embeded' is not among the declared levels "
        r"none < partial < embedded \(did you mean 'embedded'\?\)",
    ):
        validate(df, ORD)


def test_ordinal_missing_level(obs_ord):
    df = obs_ord.copy()
    df.loc[0, "level"] = None
    with pytest.raises(DataError, match="column 'level' row 1: missing outcome"):
        validate(df, ORD)


def test_ordinal_one_level_only(obs_ord):
    with pytest.raises(
        DataError, match="every row has the same level 'partial'; an ordinal model needs at least 2"
    ):
        validate(obs_ord.assign(level="partial"), ORD)


def test_missing_site_id(obs):
    df = obs.copy()
    df.loc[[0, 7], "site"] = None
    with pytest.raises(DataError, match="column 'site' rows 1, 8: missing site id"):
        validate(df)


def test_missing_region_in_training_data(obs):
    df = obs.copy()
    df.loc[2, "region"] = ""
    with pytest.raises(DataError, match="column 'region' row 3: missing region"):
        validate(df)


def test_site_in_two_regions(obs):
    df = obs.copy()
    site = df.loc[0, "site"]
    other = next(r for r in df["region"].unique() if r != df.loc[0, "region"])
    df.loc[1, "region"] = other
    with pytest.raises(
        DataError, match=f"column 'region' rows 1, 2, 3, 4: site '{site}' is listed in 2 regions"
    ):
        validate(df)


def test_duplicate_site_wave(obs):
    df = obs.copy()
    df.loc[1, "wave"] = 1
    with pytest.raises(
        DataError,
        match="column 'site, wave' rows 1, 2: the same site and wave appear more than once",
    ):
        validate(df)


def test_not_a_dataframe():
    with pytest.raises(DataError, match="expected a table"):
        validate_observations([1, 2], BERN)


def test_zero_rows(obs):
    with pytest.raises(DataError, match="has no data rows"):
        validate(obs.iloc[:0])


@pytest.mark.filterwarnings("ignore::mbct_bayes.schema.DataWarning")
def test_read_observations_error_names_the_file(tmp_path):
    path = write(tmp_path, "site,E,C,F,embedded\nS1,3,3,9,1\nS2,3,3,3,0\n")
    with pytest.raises(
        DataError, match=r"obs\.csv: column 'F' row 1: value 9 is outside the scale 1-5"
    ):
        read_observations(path, BERN)


def test_read_observations_decimal_comma_in_comma_file(tmp_path):
    path = write(tmp_path, 'site,E,C,F,embedded\nS1,"3,5",3,3,1\nS2,3,3,3,0\n')
    with pytest.raises(
        DataError,
        match=r"column 'E' row 1: value '3,5' is not a number; .*use \. as the decimal point",
    ):
        read_observations(path, BERN)


# -- new data --------------------------------------------------------------------------------


def test_new_data_needs_no_outcome(obs):
    out = validate(obs.drop(columns="embedded").head(3), new_data=True)
    assert len(out) == 3


def test_new_data_empty_region_is_unknown(obs):
    df = obs.drop(columns="embedded").head(3).copy()
    df.loc[1, "region"] = ""
    out = validate(
        df, new_data=True, known_regions=["England-North", "England-South", "Scotland", "Wales"]
    )
    assert pd.isna(out.loc[1, "region"])


def test_new_data_without_region_column_adds_it_empty(obs):
    out = validate(obs[["site", "E", "C", "F"]].head(2), new_data=True)
    assert out["region"].isna().all()


def test_new_data_unknown_region(obs):
    df = obs.drop(columns="embedded").iloc[[0, 4, 8]].reset_index(drop=True)
    df.loc[2, "region"] = "Northern-Ireland"
    with pytest.raises(
        DataError,
        match=r"column 'region' row 3: value 'Northern-Ireland' is never seen in the fitted data "
        r"\(known: .*leave the region empty to treat it as unknown",
    ):
        validate(
            df, new_data=True, known_regions=["England-North", "England-South", "Scotland", "Wales"]
        )


def test_new_data_region_typo_gets_suggestion(obs):
    df = obs.head(1).assign(region="scotland")
    with pytest.raises(DataError, match=r"\(did you mean 'Scotland'\?\)"):
        validate(df, new_data=True, known_regions=["Scotland", "Wales"])


def test_new_data_unknown_site_for_known_site_prediction(obs):
    df = obs.head(2).assign(site=["S01", "NEW9"])
    with pytest.raises(
        DataError, match="column 'site' row 2: value 'NEW9' is not among the fitted sites"
    ):
        validate(df, new_data=True, known_sites=["S01", "S02"])


def test_new_data_scores_still_checked(obs):
    df = obs.drop(columns="embedded").head(2).copy()
    df.loc[0, "C"] = 0.5
    with pytest.raises(DataError, match=r"column 'C' row 1: value 0\.5 is outside the scale"):
        validate(df, new_data=True)


# -- warnings ---------------------------------------------------------------------------------


def test_warns_one_observation_per_site():
    df, _ = simulate_observations(30, 1, seed=4)
    with pytest.warns(
        DataWarning,
        match="30 of 30 sites have one observation; their site effects are barely identified",
    ):
        validate_observations(df, BERN_R)


def test_warns_few_sites():
    df, _ = simulate_observations(3, 20, seed=5)
    with pytest.warns(DataWarning, match="only 3 sites; sigma_site is weakly identified"):
        validate_observations(df, BERN_R)


def test_warns_complete_separation():
    df = pd.DataFrame(
        {
            "site": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
            "E": 3.0,
            "C": 3.0,
            "F": [1, 2, 1.5, 2.5, 4, 4.5, 5, 3.5, 1.2, 4.8],
            "embedded": [0, 0, 0, 0, 1, 1, 1, 1, 0, 1],
        }
    )
    with pytest.warns(DataWarning, match="'F' completely separates embedded = 0 from 1"):
        validate_observations(df, BERN)


def test_warns_unobserved_ordinal_level(obs_ord):
    df = obs_ord.assign(level=np.where(obs_ord["level"] == "partial", "none", obs_ord["level"]))
    with pytest.warns(DataWarning, match="level 'partial' never observed"):
        validate_observations(df, ORD)


def test_new_data_raises_no_warnings(obs):
    validate(obs.head(2), new_data=True)  # two rows, two sites: no "few sites" warning


# -- level_codes -------------------------------------------------------------------------------


def test_level_codes_strings():
    codes = level_codes(
        pd.Series(["none", "embedded", " partial "]), ["none", "partial", "embedded"]
    )
    assert codes.tolist() == [0, 2, 1]


def test_level_codes_numbers_match_text_by_value():
    assert level_codes(pd.Series(["1", "3", "2.0"]), [1, 2, 3]).tolist() == [0, 2, 1]
    assert level_codes(pd.Series([1, 3.0, 2]), ["1", "2", "3"]).tolist() == [0, 2, 1]


def test_level_codes_unknown_value():
    with pytest.raises(
        DataError,
        match=r"survey\.csv: column 'grade' row 2: value '4' is not among the declared levels "
        r"1 < 2 < 3",
    ):
        level_codes(pd.Series([1, 4], name="grade"), [1, 2, 3], source="survey.csv")


def _separated(outcome):
    return pd.DataFrame({"site": list("aabbccddee"), "region": "R1", "E": 3.0, "C": 3.0,
                         "F": [1, 2, 1.5, 2.5, 4, 4.5, 5, 3.5, 1.2, 4.8], **outcome})


def test_warns_complete_separation_of_binomial_counts():
    df = _separated({"embedded": [0, 0, 0, 0, 8, 8, 8, 8, 0, 8], "trials": 8})
    with pytest.warns(DataWarning, match="'F' completely separates embedded = 0 from embedded = trials"):
        validate_observations(df, BINOM)
    mixed = df.assign(embedded=[0, 0, 0, 0, 8, 8, 8, 7, 0, 8])  # a failure at F = 3.5 < 4: fine
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no warning at all
        validate_observations(mixed, BINOM)


def test_warns_complete_separation_at_an_ordinal_cutpoint():
    levels = ["none", "none", "none", "none", "partial", "embedded", "embedded", "partial", "none", "embedded"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        validate_observations(_separated({"level": levels}), ORD)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any("'F' completely separates level up to 'none' from above it" in m for m in messages)
    assert any("'F' completely separates level up to 'partial' from above it" in m for m in messages)
