"""``mbct-bayes power ...``: JSON keys, files, progress and one-line errors."""

from __future__ import annotations

import json
import re
import types

import numpy as np
import pandas as pd
import pytest

from mbct_bayes.cli.main import main

COMMON_KEYS = {
    "power",
    "clusters_per_arm",
    "clusters_per_arm_design",
    "cluster_size",
    "p0",
    "p1",
    "icc",
    "cv",
    "dist",
}


def run(capsys, *argv):
    code = main(["power", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out), err


def test_analytic_json_nih_reference(capsys):
    # clusterPower's NIH-calculator test case (see tests/test_power.py)
    result, _ = run_json(
        capsys,
        "analytic",
        "--p0",
        "0.1",
        "--p1",
        "0.2",
        "--cluster-size",
        "150",
        "--icc",
        "0.05",
        "--power",
        "0.8",
        "--dist",
        "t",
    )
    assert COMMON_KEYS <= set(result)
    assert round(result["clusters_per_arm"]) == 12 and result["clusters_per_arm_design"] == 13
    assert (
        result["dist"] == "t"
        and result["alpha"] == 0.05
        and result["solved_for"] == "clusters_per_arm"
    )


def test_analytic_solves_power_with_odds_ratio_and_writes_out(capsys, tmp_path):
    out = tmp_path / "a.json"
    result, _ = run_json(
        capsys,
        "analytic",
        "--p0",
        "0.2",
        "--odds-ratio",
        "2",
        "--clusters",
        "10",
        "--cluster-size",
        "20",
        "--icc",
        "0.05",
        "--cv",
        "0.4",
        "--out",
        str(out),
    )
    assert result["p1"] == pytest.approx(1 / 3) and 0 < result["power"] < 1
    assert json.loads(out.read_text()) == result


def test_analytic_text_output(capsys):
    code, out, _ = run(
        capsys,
        "analytic",
        "--p0",
        "0.1",
        "--p1",
        "0.2",
        "--cluster-size",
        "150",
        "--k",
        "0.25",
        "--method",
        "hayes-bennett",
        "--power",
        "0.8",
    )
    # a protocol-ready summary, not a dump of every key
    assert code == 0 and "Design: two arms of 5 clusters (exact solution 4.761), 150 members per cluster" in out
    assert "Method: Hayes-Bennett" in out and "None" not in out and "max_clusters" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "--p0",
                "1.5",
                "--p1",
                "0.2",
                "--cluster-size",
                "20",
                "--icc",
                "0.05",
                "--power",
                "0.8",
            ],
            r"p0 = 1.5 is outside \(0, 1\)",
        ),
        (
            ["--p0", "0.1", "--p1", "0.2", "--cluster-size", "20", "--icc", "1", "--power", "0.8"],
            r"icc = 1 is outside \[0, 1\)",
        ),
        (
            [
                "--p0",
                "0.1",
                "--p1",
                "0.2",
                "--cluster-size",
                "0",
                "--icc",
                "0.05",
                "--power",
                "0.8",
            ],
            r"cluster_size \(--cluster-size\) = 0 is below 1",
        ),
        (
            ["--p0", "0.1", "--p1", "0.2", "--icc", "0.05", "--power", "0.8"],
            r"leave exactly one of",
        ),
        (
            [
                "--p0",
                "0.1",
                "--p1",
                "0.2",
                "--clusters",
                "9",
                "--cluster-size",
                "20",
                "--icc",
                "0.05",
                "--power",
                "0.8",
            ],
            r"leave exactly one of .*none is unset",
        ),
        (
            ["--p0", "0.1", "--p1", "0.2", "--clusters", "3", "--icc", "0.3", "--power", "0.9"],
            r"cannot be reached with 3 clusters per arm",
        ),
    ],
)
def test_analytic_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "analytic", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mbct-bayes power: error: ")
    assert re.search(message, err)


SIM_ARGS = (
    "--p0",
    "0.3",
    "--p1",
    "0.45",
    "--clusters",
    "15",
    "--cluster-size",
    "20",
    "--icc",
    "0.05",
    "--sims",
    "1000",
    "--seed",
    "5",
)


def test_simulate_json_keys_and_progress(capsys):
    result, err = run_json(capsys, "simulate", *SIM_ARGS)
    assert COMMON_KEYS | {
        "power_mc_low",
        "power_mc_high",
        "sims",
        "p0_marginal",
        "p1_marginal",
        "sigma_b",
        "seed",
        "analysis",
        "alpha",
    } <= set(result)
    assert result["sims"] == 1000 and result["seed"] == 5 and result["dist"] == "t"
    assert result["power_mc_low"] < result["power"] < result["power_mc_high"]
    assert "chunks (100%)" in err
    again, err = run_json(capsys, "simulate", *SIM_ARGS, "--quiet", "--icc-scale", "logit")
    assert err == "" and again["icc_logit"] == pytest.approx(0.05) and again["icc"] < 0.05


def test_simulate_reports_size_and_warns_when_it_does_not_hold(capsys):
    result, _ = run_json(capsys, "simulate", *SIM_ARGS, "--quiet")
    assert result["size_holds"] is True and result["size_note"] is None
    assert result["size_method"] == "simulated" and result["size_sims"] == 10_000
    assert result["size_band"] == [0.035, 0.065] and 0.035 <= result["actual_size"] <= 0.065
    small = ["simulate", "--p0", "0.1", "--p1", "0.4", "--sigma-b", "0.5", "--clusters", "4", "--cluster-size", "1",
             "--sims", "200", "--seed", "1", "--quiet"]
    result, _ = run_json(capsys, *small)
    assert result["size_holds"] is False and result["size_method"] == "exact" and result["actual_size"] < 0.01
    code, out, _ = run(capsys, *small)
    assert code == 0
    assert out.splitlines()[-1].startswith("WARNING: size does not hold: the t analysis at 4 clusters per arm x 1")
    assert "WARNING" not in run(capsys, "simulate", *SIM_ARGS, "--quiet")[1]


def test_analytic_one_outcome_per_cluster_warns_on_size(capsys):
    code, out, _ = run(capsys, "analytic", "--p0", "0.1", "--p1", "0.5", "--clusters", "4", "--cluster-size", "1",
                       "--icc", "0.05")
    assert code == 0 and out.splitlines()[-1].startswith("WARNING: size does not hold")
    result, _ = run_json(capsys, "analytic", "--p0", "0.1", "--p1", "0.5", "--clusters", "4", "--cluster-size", "1",
                         "--icc", "0.05")
    assert result["size_holds"] is False and result["actual_size"] == pytest.approx(0.0049, abs=5e-5)


def test_simulate_adjusted_needs_baselines(capsys):
    code, out, err = run(capsys, "simulate", *SIM_ARGS, "--quiet", "--analysis", "adjusted")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "needs each cluster's baseline E, C, F: give a population of services" in err


def test_simulate_conflicting_variation_is_an_error(capsys):
    code, _, err = run(capsys, "simulate", *SIM_ARGS, "--sigma-b", "0.5")
    assert code == 2 and "exactly one of icc (--icc) and sigma_b (--sigma-b)" in err


def _draws_csv(path, n=200):
    q = np.linspace(-2, 2, n)
    pd.DataFrame(
        {
            "baseline_logit": np.full(n, -0.8),
            "sigma_site": np.full(n, 0.5),
            "log_odds_ratio": 0.6 + 0.3 * q,
        }
    ).to_csv(path, index=False)
    return path


def test_assurance_from_draws_csv(capsys, tmp_path):
    draws = _draws_csv(tmp_path / "draws.csv")
    result, _ = run_json(
        capsys,
        "assurance",
        "--draws",
        str(draws),
        "--clusters",
        "15",
        "--cluster-size",
        "20",
        "--sims",
        "1000",
        "--seed",
        "1",
        "--quiet",
    )
    assert COMMON_KEYS | {
        "assurance",
        "p_effect_positive",
        "power_at_posterior_mean",
        "assurance_mc_low",
        "assurance_mc_high",
        "draws_used",
    } <= set(result)
    assert result["assurance"] <= result["p_effect_positive"]


def test_assurance_from_fit_file(capsys, monkeypatch, tmp_path):
    seen = {}

    def load_fit(path):  # a stand-in fit: assurance hands its posterior to trial_inputs
        return seen.setdefault("fit", types.SimpleNamespace(posterior=f"posterior from {path}"))

    def trial_inputs(fit, *, lever, delta, profile):
        seen["args"] = (fit, lever, delta, profile)
        return {
            "baseline_logit": np.full(50, -0.8),
            "sigma_site": np.full(50, 0.5),
            "log_odds_ratio": np.linspace(0.2, 1.0, 50),
        }

    # where the command and assurance look them up (imported at module level)
    monkeypatch.setattr("mbct_bayes.cli.power.load_fit", load_fit)
    monkeypatch.setattr("mbct_bayes.power._assurance.trial_inputs", trial_inputs)
    result, _ = run_json(
        capsys,
        "assurance",
        "FIT.nc",
        "--lever",
        "F",
        "--delta",
        "1",
        "--profile",
        "E=3,C=2.5",
        "--clusters",
        "15",
        "--cluster-size",
        "20",
        "--sims",
        "500",
        "--seed",
        "2",
        "--quiet",
    )
    assert seen["args"] == ("posterior from FIT.nc", "F", 1.0, {"E": 3.0, "C": 2.5})
    assert (
        result["fit"] == "FIT.nc"
        and result["lever"] == "F"
        and result["profile"] == {"E": 3.0, "C": 2.5}
    )
    assert result["p_effect_positive"] == 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give a fit file"),
        (["FIT.nc", "--draws", "d.csv"], "give a fit file"),
        (["--draws", "missing.csv"], "draws file not found"),
        (["FIT.nc", "--profile", "E3"], "--profile 'E3': write NAME=VALUE"),
    ],
)
def test_assurance_bad_input(capsys, argv, message):
    code, _, err = run(capsys, "assurance", *argv, "--clusters", "10", "--cluster-size", "10")
    assert code == 2 and message in err


def test_search_writes_curve_and_figure(capsys, tmp_path):
    curve, figure = tmp_path / "curve.csv", tmp_path / "curve.png"
    result, _ = run_json(
        capsys,
        "search",
        "--target",
        "0.8",
        "--p0",
        "0.3",
        "--p1",
        "0.45",
        "--cluster-size",
        "20",
        "--icc",
        "0.05",
        "--sims",
        "500",
        "--seed",
        "1",
        "--max-clusters",
        "40",
        "--curve-out",
        str(curve),
        "--figure-out",
        str(figure),
        "--quiet",
    )
    assert COMMON_KEYS | {"power_mc_low", "power_mc_high", "sims", "target", "curve"} <= set(result)
    assert (
        result["power"] >= 0.8 and result["clusters_per_arm"] == result["clusters_per_arm_design"]
    )
    table = pd.read_csv(curve)
    assert len(table) == 39 and len(result["curve"]) == 39
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_search_analytic_and_assurance(capsys, tmp_path):
    result, _ = run_json(
        capsys,
        "search",
        "--method",
        "analytic",
        "--p0",
        "0.1",
        "--p1",
        "0.2",
        "--cluster-size",
        "150",
        "--icc",
        "0.05",
    )
    assert result["clusters_per_arm_design"] == 13
    draws = _draws_csv(tmp_path / "draws.csv")
    result, _ = run_json(
        capsys,
        "search",
        "--method",
        "assurance",
        "--draws",
        str(draws),
        "--target",
        "0.5",
        "--cluster-size",
        "20",
        "--sims",
        "400",
        "--seed",
        "1",
        "--max-clusters",
        "30",
        "--quiet",
    )
    assert result["assurance"] >= 0.5 and "p_effect_positive" in result
    assert result["size_sims"] == 10_000 and result["size_holds"] in (True, False)
    # the text shows the found design's size line as `power assurance` does
    code, out, _ = run(capsys, "search", "--method", "assurance", "--draws", str(draws), "--target", "0.5",
                       "--cluster-size", "20", "--sims", "400", "--seed", "1", "--max-clusters", "30", "--quiet")
    assert code == 0
    assert f"with the effect removed: {result['actual_size']:.3f} " in out and f"{result['size_sims']} trials" in out


def test_search_unreachable_is_an_error(capsys):
    code, _, err = run(
        capsys,
        "search",
        "--target",
        "0.95",
        "--p0",
        "0.3",
        "--p1",
        "0.4",
        "--cluster-size",
        "20",
        "--icc",
        "0.1",
        "--sims",
        "200",
        "--max-clusters",
        "5",
        "--quiet",
    )
    assert code == 2 and "is not reached with up to 5 clusters per arm" in err


# ------------------------------------------------------------------ a population of services
def _candidates_csv(path, n, drop=None):
    table = pd.DataFrame(
        {
            "site": [f"T{i:02d}" for i in range(n)],
            "region": ["North", "South"] * (n // 2) + ["North"] * (n % 2),
            "E": np.linspace(2.0, 4.0, n),
            "C": np.linspace(4.0, 2.5, n),
            "F": np.linspace(1.5, 4.5, n),
        }
    )
    table.drop(columns=[drop] if drop else []).to_csv(path, index=False)
    return path


def test_assurance_from_a_fit_is_over_the_fitted_sites(capsys, example_fit_path):
    design = ["--clusters", "8", "--cluster-size", "20", "--sims", "400", "--seed", "3", "--quiet"]
    sites, _ = run_json(capsys, "assurance", str(example_fit_path), *design)
    alike, _ = run_json(capsys, "assurance", str(example_fit_path), "--profile", "E=3,C=3,F=3", *design)
    keys = {"population", "p0_marginal", "p1_marginal", "icc", "clipped_share", "analysis", "assumptions", "direction"}
    assert keys <= set(sites) and keys <= set(alike)
    assert sites["population"] == "fitted_sites" and alike["population"] == "profile"
    assert sites["assurance"] < alike["assurance"]
    assert any("all alike" in s for s in alike["assumptions"])
    code, out, _ = run(capsys, "assurance", str(example_fit_path), *design)
    assert code == 0 and "Population of services: the fitted data's services" in out
    assert "Monte Carlo interval" in out and "Power at the posterior mean" in out and "causal" in out
    assert ": None" not in out and "chunk_size" not in out


def test_assurance_with_candidate_sites_and_strata(capsys, tmp_path, example_fit_path):
    sites = _candidates_csv(tmp_path / "candidates.csv", 12)
    result, _ = run_json(
        capsys, "assurance", str(example_fit_path), "--sites", str(sites), "--stratify", "region",
        "--clusters", "6", "--cluster-size", "20", "--sims", "300", "--seed", "3", "--quiet",
    )
    assert result["population"] == "candidates" and result["services"] == 12 and result["stratify"] == "region"
    assert result["sites_file"] == str(sites)
    down, _ = run_json(
        capsys, "assurance", str(example_fit_path), "--delta", "-1", "--clusters", "6", "--cluster-size", "20",
        "--sims", "300", "--seed", "3", "--quiet",
    )
    assert down["direction"] == "decrease" and down["assurance"] > 0.1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sites", "{few}"], "list 5 services; 4 clusters per arm need 8; add candidates or plan at most 2"),
        (["--sites", "{no_f}"], "missing column(s) F; give one row per candidate service"),
        (["--delta", "4.5"], "beyond its scale 1-5 for every one of the 40 services; choose a smaller --delta"),
        (["--stratify", "region"], "give them with --sites"),
        (["--sites", "{few}", "--profile", "E=3"], "drop --profile"),
    ],
)
def test_population_bad_input_is_one_line_exit_2(capsys, tmp_path, example_fit_path, argv, message):
    files = {
        "{few}": str(_candidates_csv(tmp_path / "few.csv", 5)),
        "{no_f}": str(_candidates_csv(tmp_path / "no_f.csv", 10, drop="F")),
    }
    argv = [files.get(a, a) for a in argv]
    code, _, err = run(capsys, "assurance", str(example_fit_path), *argv, "--clusters", "4", "--cluster-size", "10",
                       "--sims", "50", "--quiet")
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_search_by_assurance_uses_the_population(capsys, tmp_path, example_fit_path):
    common = ["--method", "assurance", "--cluster-size", "20", "--sims", "200", "--seed", "1", "--quiet"]
    result, _ = run_json(capsys, "search", str(example_fit_path), *common, "--target", "0.2", "--max-clusters", "20")
    assert result["population"] == "fitted_sites" and result["assurance"] >= 0.2
    assert {"clipped_share", "assumptions", "p0_marginal"} <= set(result)
    sites = _candidates_csv(tmp_path / "candidates.csv", 10)
    code, _, err = run(capsys, "search", str(example_fit_path), *common, "--target", "0.99", "--sites", str(sites))
    assert code == 2 and "up to 5 clusters per arm" in err and "the 10 candidate services allow no more" in err


# ------------------------------------------------------------------ stepped wedge from a fit
SW_FIT_DESIGN = ["--sequences", "3,3,3", "--cluster-size", "10", "--sims", "200", "--seed", "2"]


def test_stepped_wedge_from_a_fit_over_the_population(capsys, tmp_path, example_fit_path):
    sw, _ = run_json(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN)
    parallel, _ = run_json(capsys, "assurance", str(example_fit_path), "--clusters", "5", "--cluster-size", "10",
                           "--sims", "200", "--seed", "2", "--quiet")
    shared = {"assurance", "assurance_mc_low", "assurance_mc_high", "power_at_posterior_mean", "population",
              "p0_marginal", "p1_marginal", "icc", "clipped_share", "direction", "assumptions", "sims", "seed"}
    assert shared <= set(sw) and shared <= set(parallel)
    assert sw["population"] == "fitted_sites" and sw["clusters"] == 9 and sw["periods"] == 4 and sw["fit"]
    # the same population of services: the same implied proportions
    assert sw["p0_marginal"] == pytest.approx(parallel["p0_marginal"]) and sw["icc"] == pytest.approx(parallel["icc"])
    assert sw["assurance_mc_low"] <= sw["assurance"] <= sw["assurance_mc_high"]
    again, _ = run_json(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN)
    assert again == sw  # same seed, same numbers
    sites = _candidates_csv(tmp_path / "candidates.csv", 12)
    strat, _ = run_json(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN, "--sites", str(sites),
                        "--stratify", "region")
    assert strat["population"] == "candidates" and strat["stratify"] == "region" and strat["services"] == 12
    alike, _ = run_json(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN, "--profile", "E=3,C=3,F=2")
    assert alike["population"] == "profile" and any("all alike" in s for s in alike["assumptions"])
    code, out, _ = run(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN)
    assert code == 0 and "Population of services: the fitted data's services" in out
    assert "9 clusters in 3 sequences (3,3,3) over 4 periods" in out and "Assurance: " in out
    assert "Power at the posterior mean" in out and "causal" in out and ": None" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sites", "{few}"], "list 5 services; a stepped wedge of 9 clusters needs 9; add candidates or plan at most 5"),
        (["--p0", "0.2"], "--p0: with a fit the proportions and the between-cluster spread come from its posterior"),
        (["--stratify", "region"], "give them with --sites"),
        (["--delta", "4.5"], "beyond its scale 1-5 for every one of the 40 services; choose a smaller --delta"),
    ],
)
def test_stepped_wedge_from_a_fit_bad_input_is_one_line_exit_2(capsys, tmp_path, example_fit_path, argv, message):
    argv = [str(_candidates_csv(tmp_path / "few.csv", 5)) if a == "{few}" else a for a in argv]
    code, out, err = run(capsys, "stepped-wedge", str(example_fit_path), *SW_FIT_DESIGN, *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_stepped_wedge_without_a_fit_needs_proportions(capsys):
    code, _, err = run(capsys, "stepped-wedge", "--sequences", "3,3", "--cluster-size", "10", "--tau", "0.01")
    assert code == 2 and "give --p0 and --p1 (with --tau or --icc), or a fit file" in err
    code, _, err = run(capsys, "stepped-wedge", "--sequences", "3,3", "--cluster-size", "10", "--p0", "0.2",
                       "--p1", "0.3", "--tau", "0.01", "--sites", "x.csv")
    assert code == 2 and "--sites describe a trial from a fit; give the fit file" in err


def test_assurance_warns_when_its_analysis_misses_its_size(capsys, tmp_path):
    # rare outcome (p0 about 0.1), one yes/no outcome per cluster, 4 per arm: the t-test's exact
    # size there is 0.006 (size_check), far below 0.05
    draws = _draws_csv(tmp_path / "draws.csv")
    pd.read_csv(draws).assign(baseline_logit=-2.2).to_csv(draws, index=False)
    argv = ["assurance", "--draws", str(draws), "--sims", "300", "--seed", "1", "--quiet"]
    code, out, _ = run(capsys, *argv, "--clusters", "4", "--cluster-size", "1")
    assert code == 0 and out.strip().splitlines()[-1].startswith("WARNING: size does not hold: the t analysis at 4")
    result, _ = run_json(capsys, *argv, "--clusters", "4", "--cluster-size", "1")
    assert result["size_holds"] is False and result["actual_size"] < 0.035 and result["size_sims"] == 10_000
    code, out, _ = run(capsys, *argv, "--clusters", "15", "--cluster-size", "20")
    assert code == 0 and "WARNING" not in out


def test_text_never_claims_certainty_for_a_posterior_probability():
    from mbct_bayes.cli.power_text import share

    assert share(1.0) == "> 0.999" and share(0.9996) == "> 0.999"
    assert share(0.0) == "< 0.001"
    assert share(0.5) == "0.500" and share(0.999) == "0.999"
