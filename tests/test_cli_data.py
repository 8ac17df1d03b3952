"""``mbct-bayes simulate`` and ``mbct-bayes validate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mbct_bayes.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
EXAMPLE = ROOT / "data" / "example"
CLI = Path(sys.executable).parent / "mbct-bayes"


# -- simulate ----------------------------------------------------------------------------------


def test_simulate_writes_observations_and_truth(tmp_path, capsys):
    out = tmp_path / "new" / "dir"
    assert (
        main(["simulate", "--sites", "12", "--per-site", "3", "--seed", "4", "--out", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "simulated 36 rows (12 sites x 3 units, 4 regions, bernoulli)" in captured.err
    obs = pd.read_csv(out / "observations.csv")
    assert list(obs.columns) == ["site", "region", "wave", "E", "C", "F", "embedded"]
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 4 and truth["n_sites"] == 12
    assert sorted(p.name for p in out.iterdir()) == [
        "observations.csv",
        "truth.json",
    ]  # no temp files


def test_simulate_same_seed_same_file(tmp_path):
    for name in ("a", "b"):
        assert main(["simulate", "--sites", "5", "--seed", "9", "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a" / "observations.csv").read_bytes() == (
        tmp_path / "b" / "observations.csv"
    ).read_bytes()


def test_simulate_json_summary(tmp_path, capsys):
    args = ["simulate", "--family", "binomial", "--trials", "6", "--sites", "8", "--per-site", "2"]
    assert main([*args, "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["family"] == "binomial" and summary["rows"] == 16 and summary["sites"] == 8
    assert summary["outcome"]["embedded"] + summary["outcome"]["not_embedded"] == 16 * 6
    assert summary["observations"] == str(tmp_path / "observations.csv")


def test_simulate_ordinal_without_regions(tmp_path, capsys):
    assert (
        main(
            ["simulate", "--family", "ordinal", "--regions", "0", "--out", str(tmp_path), "--json"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["regions"] == 0 and set(summary["outcome"]) == {"none", "partial", "embedded"}
    assert "region" not in pd.read_csv(tmp_path / "observations.csv").columns


def test_simulate_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["simulate", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "taken: exists and is a file, not a folder; give --out a folder name" in err
    assert target.read_text() == "x"


def test_simulate_bad_argument_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["simulate", "--sites", "0", "--out", str(out)]) == 2
    assert "n_sites must be a whole number >= 1" in capsys.readouterr().err
    assert not out.exists()


# -- validate ------------------------------------------------------------------------------------


def test_validate_example_text_report(capsys):
    code = main(
        ["validate", str(EXAMPLE / "observations.csv"), "--model", str(MODELS / "bernoulli.toml")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "OK for parihs-bernoulli" in out
    assert "rows 200, sites 40" in out
    assert "outcome 'embedded': 0: " in out
    assert "no warnings" in out


def test_validate_json_report(capsys):
    code = main(
        [
            "validate",
            str(EXAMPLE / "observations_binomial.csv"),
            "--model",
            str(MODELS / "binomial.toml"),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert (report["rows"], report["sites"], report["regions"]) == (200, 40, 4)
    assert report["outcome"]["embedded"] + report["outcome"]["not_embedded"] == 200 * 8
    assert report["warnings"] == []


def test_validate_ordinal_counts_in_level_order(capsys):
    args = [
        "validate",
        str(EXAMPLE / "observations_ordinal.csv"),
        "--model",
        str(MODELS / "ordinal.toml"),
    ]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["outcome"]) == ["none", "partial", "embedded"]
    assert sum(report["outcome"].values()) == 200


def test_validate_reports_warnings(tmp_path, capsys):
    obs = tmp_path / "few.csv"
    obs.write_text("site,E,C,F,embedded\nA,3,3,2,0\nA,3,3,4,1\nB,3,3,2.5,0\nB,3,3,4.5,1\n")
    assert main(["validate", str(obs), "--model", str(MODELS / "bernoulli.toml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("only 2 sites" in w for w in report["warnings"])
    assert any("'F' completely separates" in w for w in report["warnings"])
    assert main(["validate", str(obs), "--model", str(MODELS / "bernoulli.toml")]) == 0
    assert "warning: " in capsys.readouterr().out


def test_validate_new_sites(capsys):
    args = ["validate", str(EXAMPLE / "new_sites.csv"), "--model", str(MODELS / "binomial.toml")]
    assert main([*args, "--new-data", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 5 and report["outcome"] == {}


def test_validate_bad_data_exit_2_one_line(tmp_path, capsys):
    obs = tmp_path / "bad.csv"
    obs.write_text("site,E,C,F,embedded\nA,3,3,7.5,0\nB,3,3,3,1\n")
    assert main(["validate", str(obs), "--model", str(MODELS / "bernoulli.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "bad.csv: column 'F' row 1: value 7.5 is outside the scale 1-5" in lines[0]


def test_validate_missing_spec(tmp_path, capsys):
    code = main(
        ["validate", str(EXAMPLE / "observations.csv"), "--model", str(tmp_path / "no.toml")]
    )
    assert code == 2
    assert "model spec not found" in capsys.readouterr().err


def test_validate_json_bad_data_prints_nothing_on_stdout(tmp_path, capsys):
    obs = tmp_path / "empty.csv"
    obs.write_text("")
    assert main(["validate", str(obs), "--model", str(MODELS / "bernoulli.toml"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "file is empty (0 bytes)" in captured.err


# -- the installed command -------------------------------------------------------------------


@pytest.mark.skipif(not CLI.exists(), reason="mbct-bayes console script not installed in this env")
def test_installed_cli_bad_input(tmp_path):
    """A real process: exit code 2, one line on stderr, no traceback, nothing on stdout."""
    obs = tmp_path / "obs.csv"
    obs.write_bytes(b"site,E,C,F,embedded\nCaf\xe9,3,3,3,1\n")  # Latin-1, not UTF-8
    result = subprocess.run(
        [str(CLI), "validate", str(obs), "--model", str(MODELS / "bernoulli.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("mbct-bayes validate: error: ")
    assert (
        "not UTF-8 text (byte 0xe9 at offset 23, line 2); save the file as UTF-8" in result.stderr
    )


@pytest.mark.skipif(not CLI.exists(), reason="mbct-bayes console script not installed in this env")
def test_installed_cli_simulate_then_validate(tmp_path):
    sim = subprocess.run(
        [str(CLI), "simulate", "--sites", "10", "--per-site", "3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sim.returncode == 0, sim.stderr
    val = subprocess.run(
        [
            str(CLI),
            "validate",
            str(tmp_path / "observations.csv"),
            "--model",
            str(MODELS / "binomial.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # a bernoulli file against a binomial spec: the trials column is missing
    assert val.returncode == 2 and "missing column 'trials'" in val.stderr
