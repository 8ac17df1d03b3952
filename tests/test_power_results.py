"""Typed power settings and results (issue 13 item 4): the CLI's JSON keys unchanged, one name per
value in Python, and the search split by what it solves over one scan/bisect helper."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.power import _search
from mbct_bayes.power._analytic import _power_dk
from mbct_bayes.power._results import AssuranceResult, Curve, PowerResult
from mbct_bayes.power._search import SearchLimits, Source, search, search_cluster_size, search_clusters
from mbct_bayes.power._settings import Design, SimulationSettings

#: The --json keys (in order) of every power subcommand, recorded from the CLI before the results were
#: typed (commit 1e859ca); "curve_keys" are the keys of a search's curve rows.
SNAPSHOT = json.loads((Path(__file__).parent / "data" / "power_json_keys.json").read_text())

FAST = ["--sims", "60", "--seed", "3"]
ARGV = {
    "analytic_power": ["analytic", "--p0", "0.3", "--p1", "0.45", "--clusters", "10", "--cluster-size", "20",
                       "--icc", "0.05"],
    "analytic_clusters": ["analytic", "--p0", "0.3", "--p1", "0.45", "--cluster-size", "20", "--icc", "0.05",
                          "--power", "0.8"],
    "analytic_one": ["analytic", "--p0", "0.3", "--p1", "0.6", "--cluster-size", "1", "--icc", "0.05",
                     "--power", "0.8"],
    "analytic_hb": ["analytic", "--p0", "0.3", "--p1", "0.45", "--cluster-size", "20", "--k", "0.2", "--method",
                    "hayes-bennett", "--power", "0.8"],
    "simulate": ["simulate", "--p0", "0.3", "--p1", "0.45", "--clusters", "10", "--cluster-size", "20", "--icc",
                 "0.05", *FAST],
    "assurance_draws": ["assurance", "--draws", "{draws}", "--clusters", "10", "--cluster-size", "20", *FAST],
    "search_sim": ["search", "--p0", "0.3", "--p1", "0.5", "--cluster-size", "20", "--icc", "0.05", "--target",
                   "0.3", "--max-clusters", "8", *FAST],
    "search_sim_size": ["search", "--p0", "0.3", "--p1", "0.5", "--clusters", "12", "--solve-for", "cluster-size",
                        "--icc", "0.05", "--target", "0.3", "--max-cluster-size", "40", *FAST],
    "search_analytic": ["search", "--method", "analytic", "--p0", "0.3", "--p1", "0.45", "--cluster-size", "20",
                        "--icc", "0.05"],
    "search_analytic_size": ["search", "--method", "analytic", "--p0", "0.3", "--p1", "0.45", "--clusters", "15",
                             "--solve-for", "cluster-size", "--icc", "0.05"],
    "search_ass_draws": ["search", "--method", "assurance", "--draws", "{draws}", "--cluster-size", "20",
                         "--target", "0.2", "--max-clusters", "8", *FAST],
    "search_ass_draws_size": ["search", "--method", "assurance", "--draws", "{draws}", "--clusters", "15",
                              "--solve-for", "cluster-size", "--target", "0.2", "--max-cluster-size", "40", *FAST],
    "sw_analytic": ["stepped-wedge", "--sequences", "3,3,3", "--cluster-size", "10", "--p0", "0.3", "--p1", "0.45",
                    "--tau", "0.05"],
    "sw_sim": ["stepped-wedge", "--sequences", "3,3,3", "--cluster-size", "10", "--p0", "0.3", "--p1", "0.45",
               "--tau", "0.05", "--sims", "60", "--seed", "3"],
}
FROM_FIT = {
    "assurance_profile": ["assurance", "{fit}", "--profile", "E=3,C=3,F=2", "--clusters", "10", "--cluster-size",
                          "20", *FAST],
    "assurance_pop": ["assurance", "{fit}", "--clusters", "8", "--cluster-size", "20", *FAST],
    "search_ass_pop": ["search", "--method", "assurance", "{fit}", "--cluster-size", "20", "--target", "0.05",
                       "--max-clusters", "6", *FAST],
    "sw_fit_pop": ["stepped-wedge", "{fit}", "--sequences", "3,3,3", "--cluster-size", "10", "--sims", "60",
                   "--seed", "3"],
    "sw_fit_profile": ["stepped-wedge", "{fit}", "--sequences", "3,3,3", "--cluster-size", "10", "--sims", "60",
                       "--seed", "3", "--profile", "E=3,C=3,F=2"],
}


@pytest.fixture(scope="module")
def draws_csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("draws") / "draws.csv"
    pd.DataFrame(
        {
            "baseline_logit": -0.8 + 0.1 * rng.standard_normal(200),
            "sigma_site": 0.5 + 0.05 * rng.random(200),
            "log_odds_ratio": 0.6 + 0.3 * rng.standard_normal(200),
        }
    ).to_csv(path, index=False)
    return path


def _json(capsys, argv, **paths):
    quiet = ["--quiet"] if argv[0] in ("simulate", "assurance", "search") else []
    code = main(["power", *[a.format(**paths) for a in argv], "--json", *quiet])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _assert_keys(name, out):
    assert list(out) == SNAPSHOT[name]["keys"], name
    if "curve_keys" in SNAPSHOT[name]:
        assert list(out["curve"][0]) == SNAPSHOT[name]["curve_keys"], name


@pytest.mark.parametrize("name", sorted(ARGV))
def test_cli_json_keys_are_the_recorded_ones(capsys, draws_csv, name):
    _assert_keys(name, _json(capsys, ARGV[name], draws=draws_csv))


@pytest.mark.parametrize("name", sorted(FROM_FIT))
def test_cli_json_keys_from_a_fit_are_the_recorded_ones(capsys, example_fit_path, name):
    _assert_keys(name, _json(capsys, FROM_FIT[name], fit=example_fit_path))


def test_assurance_has_one_name_in_python_and_the_legacy_key_in_json():
    draws = (np.full(60, -0.8), np.full(60, 0.5), np.full(60, 0.6))
    from mbct_bayes.power import assurance_from_draws

    result = assurance_from_draws(*draws, clusters_per_arm=6, cluster_size=10, sims=60, seed=1)
    assert isinstance(result, AssuranceResult) and "power" not in list(result)
    out = result.to_dict()
    assert out["power"] == out["assurance"] == result.assurance
    with pytest.warns(DeprecationWarning, match=r"result\['power'\] of an assurance is deprecated"):
        assert result["power"] == result.assurance
    # updating the assurance keeps the legacy key with it, and keys keep their places
    moved = result.updated(assurance=0.5, extra=1)
    assert moved.to_dict()["power"] == 0.5 and list(moved.to_dict())[-1] == "extra"
    assert list(moved.to_dict())[:-1] == list(out)
    with pytest.raises(ValueError, match="legacy key 'power'"):
        AssuranceResult.from_values({**out, "power": 0.1})


def test_result_is_a_read_only_mapping_of_its_values():
    result = PowerResult.from_values({"p0": 0.3, "power": 0.8, "size_holds": True})
    assert dict(result) == {"p0": 0.3, "power": 0.8, "size_holds": True} == result.to_dict()
    assert result.power == 0.8 and result.size_holds is True and result.get("missing") is None
    with pytest.raises(KeyError):
        result["missing"]
    with pytest.raises(TypeError):
        result["p0"] = 0.4  # type: ignore[index]


def test_power_tables_carry_no_attrs():
    from mbct_bayes.power import assurance_curve, power_curve

    table = power_curve(p0=0.3, p1=0.45, clusters=[4, 6], cluster_sizes=[10], icc=0.05, sims=40, seed=1)
    assert not table.attrs and list(table.clusters_per_arm) == [4, 6]
    table = assurance_curve(np.full(40, -0.8), np.full(40, 0.5), np.full(40, 0.6), clusters=[4], cluster_sizes=[10],
                            sims=40, seed=1)
    assert not table.attrs


# ---------------------------------------------------------------------------- the split search
def _closed_form_source(p0=0.3, p1=0.45, icc=0.05, alpha=0.05) -> Source:
    """A deterministic, increasing power (Donner-Klar, t reference) as a search source."""

    def curve_at(clusters, sizes, cv):
        rows = [{"clusters_per_arm": c, "cluster_size": m, "power": _power_dk(p0, p1, c, m, icc, cv, alpha, "t", False)}
                for m in sizes for c in clusters]
        return Curve(pd.DataFrame(rows), {"p0": p0, "alpha": alpha, "analysis": "closed form", "seed": 0})

    return Source("simulate", "power", curve_at, SimulationSettings(alpha=alpha, seed=0))


def _first(values, target):
    return next(i for i, v in values if v >= target)


@pytest.mark.parametrize("target", [0.2, 0.8, 0.95])
@pytest.mark.parametrize("fixed", [5, 20, 60])
def test_split_search_finds_the_smallest_design_on_a_grid(target, fixed):
    source = _closed_form_source()
    limits = SearchLimits(max_clusters=300, max_cluster_size=600)
    cp = lambda c, m: _power_dk(0.3, 0.45, c, m, 0.05, 0.0, 0.05, "t", False)  # noqa: E731
    found = search_clusters(source, Design(cluster_size=fixed), target=target, limits=limits)
    assert found["clusters_per_arm"] == _first(((c, cp(c, fixed)) for c in range(2, 301)), target)
    assert found.power == pytest.approx(cp(found["clusters_per_arm"], fixed))
    try:
        expected = _first(((m, cp(fixed, m)) for m in range(2, 601)), target)
    except StopIteration:
        with pytest.raises(DataError, match="not reached with"):
            search_cluster_size(source, Design(clusters_per_arm=fixed), target=target, limits=limits)
        return
    found = search_cluster_size(source, Design(clusters_per_arm=fixed), target=target, limits=limits)
    assert found["cluster_size"] == expected
    assert found.curve["cluster_size"].is_monotonic_increasing


# Recorded from `mbct-bayes power search ... --json` before the split (commit 1e859ca, the same commands
# with --sims 300 --seed 3): the design found and its power/assurance.
OLD_SEARCH = {
    "clusters_sim": (dict(p0=0.3, p1=0.5, cluster_size=20, icc=0.05, max_clusters=30), 11, 20, 0.8233333333333334),
    "size_sim": (dict(p0=0.3, p1=0.5, clusters_per_arm=12, icc=0.05, solve_for="cluster_size",
                      max_cluster_size=200), 12, 15, 0.8133333333333334),
}


@pytest.mark.parametrize("name", sorted(OLD_SEARCH))
def test_split_search_agrees_with_the_old_search(name):
    kwargs, clusters, size, power = OLD_SEARCH[name]
    found = search(**kwargs, sims=300, seed=3)
    assert (found["clusters_per_arm"], found["cluster_size"], found.power) == (clusters, size, power)


def test_search_takes_the_settings_objects_and_the_keywords_alike():
    settings = SimulationSettings(sims=200, seed=5)
    by_objects = search_clusters(
        _search.simulated_power(settings, p0=0.3, p1=0.5, icc=0.05), Design(cluster_size=20), target=0.5,
        limits=SearchLimits(max_clusters=12),
    )
    by_keywords = search(p0=0.3, p1=0.5, icc=0.05, cluster_size=20, target=0.5, sims=200, seed=5, max_clusters=12)
    assert by_objects.to_dict().keys() == by_keywords.to_dict().keys()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert by_objects.power == by_keywords.power and by_objects.clusters_per_arm == by_keywords.clusters_per_arm


# ------------------------------------------------- the size at an assurance search's design found
SIZE_KEYS = ("actual_size", "size_mc_low", "size_mc_high", "size_method", "size_sims", "size_band", "size_holds",
             "size_note")


def _assurance_size_keys_match(found, at_design):
    for key in SIZE_KEYS:
        assert found[key] == at_design[key], key


@pytest.mark.parametrize("solve_for", ["clusters_per_arm", "cluster_size"])
def test_assurance_search_reports_the_size_assurance_gives_at_its_design(solve_for):
    from mbct_bayes.power import assurance_from_draws

    rng = np.random.default_rng(4)
    draws = {"baseline_logit": -0.8 + 0.1 * rng.standard_normal(80), "sigma_site": np.full(80, 0.5),
             "log_odds_ratio": 0.6 + 0.2 * rng.standard_normal(80)}
    fixed = {"cluster_size": 20} if solve_for == "clusters_per_arm" else {"clusters_per_arm": 10}
    found = search(method="assurance", draws=draws, target=0.3, solve_for=solve_for, sims=80, seed=7,
                   max_clusters=12, max_cluster_size=60, **fixed)
    at_design = assurance_from_draws(*(draws[k] for k in _search.DRAW_KEYS), clusters_per_arm=found["clusters_per_arm"],
                                     cluster_size=found["cluster_size"], sims=80, seed=7)
    _assurance_size_keys_match(found, at_design)
    assert found["size_sims"] == 10_000 and 0.0 < found["actual_size"] < 0.2


def test_population_assurance_search_reports_the_size_assurance_gives_at_its_design(example_fit):
    from mbct_bayes.power import population_assurance
    from mbct_bayes.power._assurance import population_from_fit

    found = search(method="assurance", fit=example_fit, cluster_size=20, target=0.05, sims=60, seed=3, max_clusters=6)
    at_design = population_assurance(population_from_fit(example_fit), clusters_per_arm=found["clusters_per_arm"],
                                     cluster_size=found["cluster_size"], sims=60, seed=3)
    _assurance_size_keys_match(found, at_design)
