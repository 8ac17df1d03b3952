"""``mbct-bayes score`` and ``mbct-bayes reliability``: files in, files out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mbct_bayes.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CODEBOOK = str(ROOT / "data" / "codebook_orca_mbct.csv")
RESPONSES = str(ROOT / "data" / "example" / "responses.csv")


def test_score_respondent_level(tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", RESPONSES, "--codebook", CODEBOOK, "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.columns[:6].tolist() == ["site", "respondent", "role", "E", "C", "F"]
    assert len(table) == len(pd.read_csv(RESPONSES))
    assert {"E_research_evidence", "F_champions", "n_not_asked_C", "status_F"} <= set(table)
    captured = capsys.readouterr()
    assert captured.out == ""  # progress on stderr only
    assert "scored" in captured.err and "respondent level" in captured.err


def test_score_site_level_json(tmp_path, capsys):
    out = tmp_path / "sites.csv"
    code = main(["score", RESPONSES, "--codebook", CODEBOOK, "--out", str(out), "--level", "site",
                 "--sd", "--json"])
    assert code == 0
    table = pd.read_csv(out)
    assert table.columns[:8].tolist() == ["site", "E", "C", "F", "n_E", "n_C", "n_F",
                                          "n_respondents"]
    assert "F_sd" in table and len(table) == 40
    summary = json.loads(capsys.readouterr().out)
    assert summary["level"] == "site" and summary["rows"] == 40


def test_reliability_json(capsys):
    assert main(["reliability", RESPONSES, "--codebook", CODEBOOK, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["E", "C", "F"]
    for c in "ECF":
        for key in ("alpha", "alpha_listwise", "omega", "n_items", "icc1", "icc2", "subscales"):
            assert key in result[c]
    assert "champions" in result["F"]["subscales"]
    assert set(result["F"]["subscales"]["champions"]) >= {"alpha", "omega", "icc1", "icc2"}


def test_reliability_table(capsys):
    assert main(["reliability", RESPONSES, "--codebook", CODEBOOK, "--listwise"]) == 0
    text = capsys.readouterr().out
    assert "listwise-complete" in text
    assert "  training_supervision" in text and "alpha" in text


def test_bad_data_is_one_line_exit_2(tmp_path, capsys):
    bad = pd.read_csv(RESPONSES)
    bad.loc[3, "E_RE1"] = 9
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    assert main(["score", str(path), "--codebook", CODEBOOK, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("mbct-bayes score: error: ")
    assert "column 'E_RE1' row 4: value '9' is outside the codebook range 1-5" in err
    assert not out.exists()


def test_unknown_item_column_exit_2(tmp_path, capsys):
    bad = pd.read_csv(RESPONSES).assign(extra_item=3)
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    assert main(["reliability", str(path), "--codebook", CODEBOOK]) == 2
    assert "column 'extra_item' not in the codebook" in capsys.readouterr().err


def test_out_folder_missing_exit_2(tmp_path, capsys):
    out = tmp_path / "nope" / "scores.csv"
    assert main(["score", RESPONSES, "--codebook", CODEBOOK, "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_codebook_argument_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["score", RESPONSES, "--out", "x.csv"])
    assert exc.value.code == 2


def test_score_and_reliability_take_the_files_own_id_names(tmp_path, capsys):
    items = pd.read_csv(RESPONSES, dtype=str)
    renamed = tmp_path / "export.csv"
    items.rename(columns={"site": "Trust", "respondent": "ID", "role": "Job"}).to_csv(renamed, index=False)
    columns = "site=Trust,respondent=ID,role=Job"
    plain, mapped = tmp_path / "plain.csv", tmp_path / "mapped.csv"
    assert main(["score", RESPONSES, "--codebook", CODEBOOK, "--out", str(plain), "--level", "site"]) == 0
    assert main(["score", str(renamed), "--codebook", CODEBOOK, "--columns", columns,
                 "--out", str(mapped), "--level", "site"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(plain), pd.read_csv(mapped))
    capsys.readouterr()
    assert main(["reliability", RESPONSES, "--codebook", CODEBOOK, "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert main(["reliability", str(renamed), "--codebook", CODEBOOK, "--columns", columns, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected
    assert main(["score", str(renamed), "--codebook", CODEBOOK, "--columns", "site", "--out", str(mapped)]) == 2
    err = capsys.readouterr().err
    assert "is not NAME=COLUMN" in err and err.count("\n") == 1
    assert main(["score", str(renamed), "--codebook", CODEBOOK, "--out", str(tmp_path / "x.csv")]) == 2
    assert "missing columns 'site', 'respondent', 'role'" in capsys.readouterr().err
