"""The one helper for user-facing messages (issue 13): ``problem`` and ``one_line``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbct_bayes.cli.main import main
from mbct_bayes.cli.plan import parse_change
from mbct_bayes.errors import DataError, one_line, problem


def test_problem_says_where_what_and_how_to_fix():
    err = problem("'x' is not a number", where="--step 'x'", fix="give e.g. 1 or 'sd'")
    assert isinstance(err, DataError)
    assert str(err) == "--step 'x': 'x' is not a number; give e.g. 1 or 'sd'"


def test_problem_parts_are_optional_and_paths_shown_as_given():
    assert str(problem("two fits are the same")) == "two fits are the same"
    assert str(problem("file is empty", where=Path("data") / "obs.csv")) == "data/obs.csv: file is empty"
    assert str(problem("no rows", fix="add one row per site")) == "no rows; add one row per site"


def test_problem_is_one_line_whatever_it_is_given():
    err = problem("a value\nfrom a parser\twith breaks", where="obs.csv", fix="fix  it")
    assert str(err) == "obs.csv: a value from a parser with breaks; fix it"


def test_one_line_of_an_error_without_text_is_its_type():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError("disk\nfull")) == "disk full"


def test_the_cli_prints_a_problem_as_one_line(capsys):
    # plan's own option checks are worded by problem(): where, what, how to fix
    with pytest.raises(DataError, match=r"^--what-if 'F': not PREDICTOR=CHANGE; write e.g. F=\+1$"):
        parse_change(["F"])
    assert main(["plan", "no-fit.nc", "no-sites.csv", "--what-if", "F", "--json"]) == 2
    err = capsys.readouterr().err
    assert err == "mbct-bayes plan: error: --what-if 'F': not PREDICTOR=CHANGE; write e.g. F=+1\n"
