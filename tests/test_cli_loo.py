"""``mbct-bayes loo``: PSIS leave-one-observation-out of saved fits, and their comparison."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from mbct_bayes.cli.main import main
from mbct_bayes.forecast.crossval import loo


def test_one_fit_json_equals_the_python_api(example_fit, example_fit_path, capsys):
    assert main(["loo", str(example_fit_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = loo(example_fit).to_dict()
    got = out["fits"]["fit"]
    assert got["elpd"] == pytest.approx(expected["elpd"], rel=1e-12)
    assert got["pareto_k"] == expected["pareto_k"]
    assert "leave-one-observation-out" in out["method"] and "compare" not in out


def test_two_fits_are_compared_and_written(example_fit_path, tmp_path, capsys):
    other = tmp_path / "same_model.nc"
    shutil.copy(example_fit_path, other)
    target = tmp_path / "loo.json"
    assert main(["loo", str(example_fit_path), str(other), "--out", str(target)]) == 0
    text = capsys.readouterr().out
    assert "PSIS-LOO (leave-one-observation-out" in text and "elpd_diff" in text
    written = json.loads(target.read_text())
    assert {row["fit"] for row in written["compare"]} == {"fit", "same_model"}
    assert all(row["elpd_diff"] == pytest.approx(0.0, abs=1e-9) for row in written["compare"])


def test_fits_of_other_data_or_the_same_file_twice_are_refused(example_fit_path, binomial_fit, tmp_path, capsys):
    other = binomial_fit.save(tmp_path / "binomial.nc")
    assert main(["loo", str(example_fit_path), str(other)]) == 2
    err = capsys.readouterr().err
    assert "made on different observations" in err and err.count("\n") == 1
    assert main(["loo", str(example_fit_path), str(example_fit_path)]) == 2
    assert "the same fit file is given twice" in capsys.readouterr().err
    target = tmp_path / "kept.json"
    target.write_text("old")
    assert main(["loo", str(tmp_path / "missing.nc"), "--out", str(target)]) == 2
    assert target.read_text() == "old"
