"""``mbct-bayes forecast``: forecast journeys of a saved transition fit, with what-if changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"
SITES = EXAMPLE / "panel_sites.csv"


def run(capsys, *argv):
    code = main(["forecast", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_forecasts_every_site_and_wave(journey_fit_path, capsys):
    code, out, err = run(capsys, journey_fit_path, SITES, "--horizon", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    sites = pd.read_csv(SITES)
    assert len(result["forecasts"]) == 3 * len(sites)
    assert result["levels"] == ["none", "partial", "embedded"] and result["step"] == 1.0
    first = result["forecasts"][0]
    assert first["site"] == sites.site[0] and first["time"] == sites.year[0] + 1
    assert abs(sum(first["p"].values()) - 1) < 1e-9
    for level in result["levels"]:
        assert first["p_q05"][level] <= first["p"][level] <= first["p_q95"][level]
    assert result["scenario"] is None
    assert "median gap" in err


def test_what_if_zero_is_exactly_zero_and_a_lost_champion_costs(journey_fit_path, capsys):
    code, out, _ = run(capsys, journey_fit_path, SITES, "--horizon", "3", "--what-if", "F=0@1", "--json")
    assert code == 0
    zero = json.loads(out)["scenario"]
    assert all(row["delta_p"] == 0.0 for row in zero["sites"])
    code, out, _ = run(capsys, journey_fit_path, SITES, "--horizon", "3", "--what-if", "F=-1.5@1", "--json")
    lost = json.loads(out)["scenario"]
    assert lost["changes"] == [{"predictor": "F", "change": -1.5, "from_wave": 1}]
    assert lost["mean_delta_p_q95"] < 0
    assert all(row["delta_p"] < 0 for row in lost["sites"])


def test_same_seed_same_numbers_and_the_table(journey_fit_path, tmp_path, capsys):
    outputs = []
    for name in ("a.csv", "b.csv"):
        code, _, err = run(capsys, journey_fit_path, SITES, "--horizon", "2", "--seed", "4", "--out", tmp_path / name)
        assert code == 0, err
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    table = pd.read_csv(tmp_path / "a.csv")
    assert {"site", "wave", "time", "p_embedded", "p_embedded_q05", "p_embedded_q95", "known_site"} <= set(table.columns)
    np.testing.assert_allclose(table[["p_none", "p_partial", "p_embedded"]].sum(axis=1), 1.0)


def bad_sites(tmp_path: Path, change) -> Path:
    table = pd.read_csv(SITES, keep_default_na=False)
    path = tmp_path / "sites.csv"
    change(table).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "args", "words"),
    [
        (None, ("--horizon", "0"), "horizon must be a whole number of future waves, 1 or more; got 0"),
        (lambda t: t.assign(year=t.year.astype(str).str.replace("2024", "2024a")), (), "time must be numeric"),
        (lambda t: t.drop(columns="level"), (), r"missing column\(s\) 'level'"),
        (lambda t: t.drop(columns="year"), (), r"missing column\(s\) 'year'"),
        (lambda t: t.assign(year=2022), (), r"before its last fitted wave \(2024\)"),
        (None, ("--what-if", "F-1.5@2"), "is not a change; write PREDICTOR=CHANGE@WAVE"),
        (None, ("--what-if", "F=-1.5@9"), "after the horizon"),
        (None, ("--what-if", "Z=-1.5@1"), "not a predictor"),
        (None, ("--step", "0"), "step must be a positive number"),
    ],
)
def test_bad_input_exits_2_with_one_line(journey_fit_path, tmp_path, capsys, change, args, words):
    import re

    sites = bad_sites(tmp_path, change) if change else SITES
    code, out, err = run(capsys, journey_fit_path, sites, "--horizon", "3", *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(words, err), err


def test_a_fit_without_transitions_is_refused(example_fit_path, capsys):
    code, out, err = run(capsys, example_fit_path, SITES, "--horizon", "3")
    assert code == 2 and out == ""
    assert "forecast needs a transition model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("model", "args", "words"),
    [
        ("bernoulli.toml", (), "needs a transition model"),
        ("journey.toml", ("--horizon", "0"), "horizon must be a whole number"),
        ("journey.toml", ("--min-waves", "1"), "min_waves must be a whole number >= 2"),
        ("journey.toml", ("--min-waves", "6"), "6 distinct times; evaluation over time needs at least 7"),
    ],
)
def test_evaluate_by_time_refuses_bad_input_before_fitting(tmp_path, capsys, model, args, words):
    models = Path(__file__).resolve().parents[1] / "models"
    code = main(["evaluate", str(EXAMPLE / "panel.csv"), "--model", str(models / model), "--by", "time",
                 "--out", str(tmp_path / "eval"), *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err
    assert not (tmp_path / "eval").exists()
