"""``mbct-bayes evaluate``: leave-site-out CV from the command line (mbct_bayes.cli.evaluate_cv)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mbct_bayes.cli import evaluate as evaluate_cv
from mbct_bayes.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "bernoulli.toml"
EXAMPLE = ROOT / "data" / "example" / "observations.csv"
ARGS = ["--draws", "200", "--tune", "200", "--chains", "2", "--n-boot", "200"]


def run(argv: list[str]) -> int:
    """The command line as a user runs it (main()'s one-line errors, exit 2)."""
    return main(argv)


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory):
    """The simulated 60 × 8 signal data of tests/test_evaluate.py (same compiled model)."""
    from mbct_bayes.model.simulate import default_truth, simulate_observations

    obs, _ = simulate_observations(
        60, 8, "bernoulli", n_regions=0, seed=20260, truth=default_truth("bernoulli", n_regions=0)
    )
    path = tmp_path_factory.mktemp("cv") / "obs.csv"
    obs.to_csv(path, index=False)
    return path


def test_folds_more_than_sites_exit_2_with_one_line(tmp_path, capsys):
    code = run(
        [
            "evaluate",
            str(EXAMPLE),
            "--model",
            str(MODEL),
            "--folds",
            "50",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "folds=50 but the data have only 40 sites" in err


def test_out_is_an_existing_file_exit_2(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    code = run(["evaluate", str(EXAMPLE), "--model", str(MODEL), "--out", str(target)])
    assert code == 2
    assert "exists and is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_registered_in_the_main_parser():
    args = build_parser().parse_args(
        ["evaluate", "o.csv", "--model", "m.toml", "--out", "d", "--folds", "loo-site"]
    )
    assert args.func is evaluate_cv.cmd_evaluate and args.folds == "loo-site" and args.jobs == 1


def test_evaluate_json_writes_the_folder_and_prints_only_the_metrics(sim_csv, tmp_path, capsys):
    out = tmp_path / "new" / "eval"
    code = run(
        [
            "evaluate",
            str(sim_csv),
            "--model",
            str(MODEL),
            "--folds",
            "3",
            "--out",
            str(out),
            "--json",
            *ARGS,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    metrics = json.loads(captured.out)
    assert list(metrics) == ["folds", "model", "baseline", "skill", "log_score_of"] and metrics["folds"] == 3
    assert set(metrics["skill"]["log_score"]) == {"mean", "q05", "q95"}
    assert {
        "log_score",
        "brier",
        "auc",
        "calibration_slope",
        "calibration_intercept",
        "ece",
    } <= set(metrics["model"])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 480 and {"fold", "site", "p", "p_baseline", "embedded"} <= set(pred.columns)
    # one progress line per fold, on stderr
    for k in (1, 2, 3):
        assert f"fold {k}/3 done" in captured.err


def test_evaluate_text_output(sim_csv, tmp_path, capsys):
    out = tmp_path / "eval"
    code = run(
        ["evaluate", str(sim_csv), "--model", str(MODEL), "--folds", "2", "--out", str(out), *ARGS]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "2-fold leave-site-out CV of bernoulli.toml on 480 observations (60 sites)" in text
    assert "log_score" in text and "skill" in text and "wrote" in text
