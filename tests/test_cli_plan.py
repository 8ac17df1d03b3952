"""``mbct-bayes plan``: what-if, levers, target and rank from a saved fit."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from mbct_bayes.cli.main import main
from mbct_bayes.model.fit import load_fit
from mbct_bayes.planning import scenarios as planning

SITES = pd.DataFrame({
    "site": ["007", "A2", "B3"],  # "007" must stay text
    "E": [3.5, 2.0, 4.5],
    "C": [3.0, 2.5, 4.0],
    "F": [1.8, 3.0, 4.6],
})


@pytest.fixture(scope="module")
def sites_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "sites.csv"
    SITES.to_csv(path, index=False)
    return path


def run(capsys, *argv):
    code = main(["plan", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_what_if_writes_the_table(example_fit_path, sites_csv, tmp_path, capsys):
    out_path = tmp_path / "plan.csv"
    code, out, err = run(capsys, example_fit_path, sites_csv, "--what-if", "F=+1", "--what-if",
                         "C=+0.5", "--out", out_path)
    assert code == 0 and out == ""
    table = pd.read_csv(out_path, dtype={"site": str})
    assert table["site"].tolist() == ["007", "A2", "B3"]
    assert {"p_before_mean", "p_after_mean", "delta_mean", "delta_q05", "delta_q95", "clipped",
            "F_after", "C_after"} <= set(table.columns)
    assert table["clipped"].tolist() == [False, False, True]  # B3: F 4.6 + 1 -> 5
    assert "3 rows" in err and "clipped to the scale for 1 site" in err


def test_json_records_have_exactly_the_issue_keys(example_fit_path, sites_csv, capsys):
    issue_keys = {
        "--what-if": ["site", "p_before_mean", "p_after_mean", "delta_mean", "delta_q05",
                      "delta_q95", "clipped"],
        "--levers": ["site", "lever", "step", "delta_mean", "delta_q05", "delta_q95",
                     "p_positive", "rank"],
        # the issue's target keys, plus reachable (the plain unreachable flag)
        "--target": ["site", "lever", "current", "target_value", "p_at_target_mean", "reachable"],
    }
    extra = {"--what-if": ["F=+1"], "--levers": [], "--target": ["F", "--p", "0.5", "--prob", "0.5"]}
    for flag, keys in issue_keys.items():
        code, out, _ = run(capsys, example_fit_path, sites_csv, flag, *extra[flag], "--json")
        assert code == 0
        records = json.loads(out)  # stdout is the JSON and nothing else
        assert isinstance(records, list) and records
        assert all(list(r) == keys for r in records), (flag, records[0])
        assert records[0]["site"] == "007"


def test_json_matches_the_python_api(example_fit_path, sites_csv, capsys):
    code, out, _ = run(capsys, example_fit_path, sites_csv, "--levers", "--step", "sd", "--kind",
                       "typical_site", "--seed", "4", "--json")
    assert code == 0
    fit = load_fit(example_fit_path)
    expected = planning.records(planning.levers(fit, SITES, "sd", "typical_site", seed=4), "levers")
    got = json.loads(out)
    assert [(r["site"], r["lever"], r["rank"]) for r in got] == [
        (r["site"], r["lever"], r["rank"]) for r in expected]
    for g, e in zip(got, expected, strict=True):
        assert g["delta_mean"] == pytest.approx(e["delta_mean"], rel=1e-12)
        assert g["step"] == pytest.approx(fit.data[g["lever"]].std())


def test_target_unreachable_is_null(example_fit_path, sites_csv, tmp_path, capsys):
    out_path = tmp_path / "target.csv"
    code, out, err = run(capsys, example_fit_path, sites_csv, "--target", "F", "--p", "0.99",
                         "--prob", "0.99", "--json", "--out", out_path)
    assert code == 0
    records = json.loads(out)
    assert all(r["target_value"] is None and r["reachable"] is False for r in records)
    assert "no F on the scale 1-5 gives" in err
    assert "message" in pd.read_csv(out_path).columns


def test_rank(example_fit_path, sites_csv, capsys):
    code, out, _ = run(capsys, example_fit_path, sites_csv, "--rank", "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert sum(r["p_best"] for r in records) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--what-if", "F=abc", "--json"], r"--what-if 'F=abc': 'abc' is not a number; write e.g. F=\+1"),
        (["--what-if", "F", "--json"], r"--what-if 'F': not PREDICTOR=CHANGE; write e.g. F=\+1"),
        (["--what-if", "F=1", "--what-if", "F=2", "--json"], r"names 'F' twice"),
        (["--what-if", "Q=1", "--json"], r"change 'Q' is not a predictor of this model \(E, C, F\)"),
        (["--what-if", "F=+10", "--json"], r"change F=\+10 leaves the scale 1-5 entirely"),
        (["--what-if", "F=nan", "--json"], r"the change must be a finite number"),
        (["--levers", "--step", "0", "--json"], r"--step '0': the step must be a positive number"),
        (["--levers", "--step", "big", "--json"], r"--step 'big': not a number; give a number of scale points \(e.g. 1\) or 'sd'"),
        (["--target", "G", "--json"], r"lever 'G' is not a predictor"),
        (["--target", "F", "--p", "1.5", "--json"], r"p must be a probability strictly between 0 and 1, got 1.5"),
        (["--target", "F", "--prob", "0", "--json"], r"prob must be a probability strictly between 0 and 1"),
        (["--levers"], r"give --out FILE to write the table, or --json"),
        (["--rank", "--out", "/nonexistent-dir/x.csv"], r"output folder /nonexistent-dir does not exist"),
    ],
)
def test_bad_input_exit_2_with_one_line(example_fit_path, sites_csv, capsys, args, message):
    code, out, err = run(capsys, example_fit_path, sites_csv, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mbct-bayes plan: error: ")
    assert re.search(message, err), err


def test_sites_missing_a_predictor(example_fit_path, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    SITES.drop(columns="C").to_csv(path, index=False)
    code, out, err = run(capsys, example_fit_path, path, "--levers", "--json")
    assert code == 2 and out == ""
    assert "sites: missing column 'C'" in err


def test_unknown_region(binomial_fit, tmp_path, capsys):
    fit_path = tmp_path / "binomial.nc"
    binomial_fit.save(fit_path)
    path = tmp_path / "regions.csv"
    SITES.assign(region=["Scotland", "Narnia", ""]).to_csv(path, index=False)
    code, out, err = run(capsys, fit_path, path, "--what-if", "F=+1", "--json")
    assert code == 2 and out == ""
    assert "value 'Narnia' is never seen in the fitted data" in err
    SITES.assign(region=["Scotland", "", ""]).to_csv(path, index=False)
    code, out, _ = run(capsys, fit_path, path, "--what-if", "F=+1", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_modes_are_exclusive(example_fit_path, sites_csv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(example_fit_path), str(sites_csv), "--levers", "--rank", "--json"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_region_mode_flag(binomial_fit, tmp_path, capsys):
    fit_path = tmp_path / "binomial.nc"
    binomial_fit.save(fit_path)
    sites = tmp_path / "sites.csv"
    SITES.assign(region=["Wales", "", ""]).to_csv(sites, index=False)
    tables = {}
    for mode in ("mixture", "new"):
        code, out, _ = run(capsys, fit_path, sites, "--rank", "--region-mode", mode, "--json")
        assert code == 0
        tables[mode] = {r["site"]: r for r in json.loads(out)}
    python = planning.rank(load_fit(fit_path), SITES.assign(region=["Wales", "", ""]), region_mode="new")
    assert {r["site"]: r["p_mean"] for r in planning.records(python, "rank")} == {
        s: r["p_mean"] for s, r in tables["new"].items()}
    # Wales is known: the modes differ there only by the Monte Carlo noise of other draws
    assert abs(tables["new"]["007"]["p_mean"] - tables["mixture"]["007"]["p_mean"]) < 0.02
    assert tables["new"]["A2"]["p_q95"] - tables["new"]["A2"]["p_q05"] > (
        tables["mixture"]["A2"]["p_q95"] - tables["mixture"]["A2"]["p_q05"])
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(fit_path), str(sites), "--rank", "--json", "--region-mode", "fifth"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --region-mode: invalid choice: 'fifth'" in err and "mixture" in err
