"""The ``score-forecasts`` command: files in, scores out, one-line errors with exit code 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.cli.main import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    sites = [f"S{i:02d}" for i in range(20)]
    p = rng.uniform(0.1, 0.9, size=20).round(3)
    y = rng.binomial(1, p)
    forecasts = tmp_path / "forecasts.csv"
    outcomes = tmp_path / "outcomes.csv"
    # S00 forecast only; S19 outcome only
    pd.DataFrame({"site": sites[:19], "p_mean": p[:19]}).to_csv(forecasts, index=False)
    pd.DataFrame({"site": sites[1:], "embedded": y[1:]}).to_csv(outcomes, index=False)
    return forecasts, outcomes


def test_text_output_and_unmatched_on_stderr(files, capsys):
    f, o = files
    assert main(["score-forecasts", str(f), str(o), "--n-boot", "50"]) == 0
    out, err = capsys.readouterr()
    assert "18 forecasts scored (bernoulli)" in out
    assert "log_score" in out and "calibration_slope" in out and "skill" in out
    assert "1 id(s) in forecasts not in outcomes.csv, not scored: S00" in err
    assert "1 id(s) in outcomes not in forecasts.csv, not scored: S19" in err


def test_binomial_forecasts_say_they_are_plug_in_scored(tmp_path, capsys):
    forecasts, outcomes = tmp_path / "f.csv", tmp_path / "o.csv"
    pd.DataFrame({"site": ["a", "b", "c"], "p_mean": [0.2, 0.6, 0.5]}).to_csv(forecasts, index=False)
    pd.DataFrame({"site": ["a", "b", "c"], "embedded": [1, 2, 0], "trials": [2, 3, 1]}).to_csv(
        outcomes, index=False
    )
    assert main(["score-forecasts", str(forecasts), str(outcomes), "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    assert "3 forecasts scored (binomial)" in out
    assert "log_score of the model: plug-in: Binomial(k | n, p_mean); a saved p_mean has no spread" in out
    assert "log_score of the baseline: plug-in: Binomial(k | n, base rate)" in out


def test_json_is_the_only_stdout(files, capsys):
    f, o = files
    assert main(["score-forecasts", str(f), str(o), "--json", "--n-boot", "50"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert set(result) == {"model", "baseline", "skill", "log_score_of", "n", "family", "unmatched"}
    assert set(result["model"]) == {
        "log_score", "brier", "auc", "calibration_slope", "calibration_intercept", "ece"
    }
    assert set(result["skill"]["log_score"]) == {"mean", "q05", "q95"}
    assert result["baseline"]["auc"] is None  # leave-site-out artefact, reported as null
    assert result["unmatched"] == {"forecasts": ["S00"], "outcomes": ["S19"]}
    assert "S00" in err


def test_out_writes_the_same_json_and_seed_is_reproducible(files, tmp_path, capsys):
    f, o = files
    target = tmp_path / "scores.json"
    args = ["score-forecasts", str(f), str(o), "--n-boot", "50", "--seed", "3"]
    assert main([*args, "--json", "--out", str(target)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(target.read_text()) == printed
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == printed


def test_ordinal_with_bom_levels_and_two_ids(tmp_path, capsys):
    f = tmp_path / "f.csv"
    o = tmp_path / "o.csv"
    f.write_text(
        "site,wave,p_lo,p_mid,p_hi\n"
        "a,1,0.2,0.3,0.5\na,2,0.6,0.3,0.1\nb,1,0.3,0.3,0.4\nc,1,0.1,0.1,0.8\n",
        encoding="utf-8-sig",
    )
    o.write_text("site,wave,level\na,1,hi\na,2,lo\nb,1,mid\nc,1,hi\n", encoding="utf-8-sig")
    rc = main([
        "score-forecasts", str(f), str(o), "--id", "site,wave", "--levels", "lo,mid,hi",
        "--json", "--n-boot", "20",
    ])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["family"] == "ordinal" and result["n"] == 4
    assert "rps" in result["model"] and "rps" in result["skill"]


def test_fixed_base_rate_option(files, capsys):
    f, o = files
    assert main(["score-forecasts", str(f), str(o), "--base-rate", "0.5", "--json",
                 "--n-boot", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baseline"]["brier"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda f, o, d: [str(d / "missing.csv"), str(o)],
            r"missing.csv: forecasts file not found",
        ),
        (
            lambda f, o, d: [_write(d / "empty.csv", ""), str(o)],
            r"empty.csv: file is empty",
        ),
        (
            lambda f, o, d: [_write(d / "f.csv", "site,p_mean\nS01,1.5\nS02,0.3\n"), str(o)],
            r"f.csv: column 'p_mean' rows 1: value 1.5 is outside \[0, 1\]",
        ),
        (
            lambda f, o, d: [_write(d / "f.csv", "site,p_mean\nS01,0.5\nS01,0.3\n"), str(o)],
            r"f.csv: duplicate id S01 in rows 1, 2",
        ),
        (
            lambda f, o, d: [str(f), str(o), "--id", "service"],
            r"forecasts.csv: id column 'service' is missing",
        ),
        (
            lambda f, o, d: [str(f), str(o), "--out", str(d / "nofolder" / "s.json")],
            r"output folder .*nofolder does not exist",
        ),
    ],
)
def test_errors_are_one_line_exit_2(files, tmp_path, capsys, setup, message):
    f, o = files
    rc = main(["score-forecasts", *setup(f, o, tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("mbct-bayes score-forecasts: error: ")
    assert re.search(message, lines[0])


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"f.csv: forecasts file not found; check the path"),
        ("", r"f.csv: file is empty \(0 bytes\); it needs a header row"),
        ('site,p_mean\n"a,0.5\n', r"f.csv: line 2 has 1 fields but the header has 2; fix that row"),
    ],
)
def test_tables_are_read_by_schema_read_table(files, tmp_path, capsys, content, message):
    # one reader for every table (schema.read_table), no fallback of its own
    _, o = files
    bad = tmp_path / "f.csv"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    assert main(["score-forecasts", str(bad), str(o)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_bom_files_are_read(files, capsys):
    f, o = files
    f.write_text(f.read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert main(["score-forecasts", str(f), str(o), "--json", "--n-boot", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 18
