"""Leave-site-out cross-validation, PSIS-LOO and compare (mbct_bayes.evaluate).

The acceptance tests of issue 5 use simulated data (60 sites × 8 units, no regions): one data set
with the default E, C, F signal and one null data set (all betas 0) drawn with the same seed, so
both share the sites, predictors and site effects — and hence one compiled model (the cache key
depends on the sites and the predictors' spread, not on the outcome). 5 folds, 300 draws × 2
chains per fold.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import mbct_bayes as mb
import mbct_bayes.forecast.crossval
from mbct_bayes.errors import DataError
from mbct_bayes.io import dumps_json

ev = sys.modules["mbct_bayes.forecast.crossval"]

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

SAMPLER = {"draws": 300, "tune": 300, "chains": 2}
METRIC_KEYS = {"log_score", "brier", "auc", "calibration_slope", "calibration_intercept", "ece"}


def simulated(null: bool = False, n_sites: int = 60, per_site: int = 8) -> pd.DataFrame:
    """Bernoulli data with the default E/C/F signal, or the same design with all betas 0."""
    from mbct_bayes.model.simulate import default_truth, simulate_observations

    truth = default_truth("bernoulli", n_regions=0)
    if null:
        truth["beta"] = {"E": 0.0, "C": 0.0, "F": 0.0}
    obs, _ = simulate_observations(n_sites, per_site, "bernoulli", n_regions=0, seed=20260, truth=truth)
    return obs


@pytest.fixture(scope="module")
def spec():
    return mb.ModelSpec.from_toml(MODELS / "bernoulli.toml")


def _quiet_evaluate(obs, spec, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)  # few draws on purpose
        return ev.evaluate(obs, spec, **{**SAMPLER, **kwargs})


@pytest.fixture(scope="module")
def signal_eval(spec):
    return _quiet_evaluate(simulated(), spec, folds=5, seed=7)


@pytest.fixture(scope="module")
def null_eval(spec, signal_eval):  # after signal_eval: reuses its compiled model
    return _quiet_evaluate(simulated(null=True), spec, folds=5, seed=7)


# -- folds -----------------------------------------------------------------------------------------
def test_assign_folds_groups_sites_balances_sizes_and_strata():
    rng = np.random.default_rng(0)
    rate = pd.Series(rng.uniform(size=23), index=[f"S{i:02d}" for i in range(23)])
    folds = ev.assign_folds(rate, 5, seed=3)
    assert folds.index.equals(rate.index)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 23
    # stratified: among the 5 sites of each rank block every fold appears once
    order = rate.sort_values(kind="stable").index
    for start in range(0, 20, 5):
        assert sorted(folds[order[start : start + 5]]) == [0, 1, 2, 3, 4]
    assert folds.equals(ev.assign_folds(rate, 5, seed=3))
    assert not folds.equals(ev.assign_folds(rate, 5, seed=4))


def test_fold_seeds_are_reproducible_and_distinct():
    seeds = ev.fold_seeds(1, 10)
    assert seeds == ev.fold_seeds(1, 10)
    assert len({s for pair in seeds for s in pair}) == 20
    assert ev.fold_seeds(1, 10) != ev.fold_seeds(2, 10)


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        (41, r"folds=41 but the data have only 40 sites; .*--folds 40 or fewer"),
        (1, r"folds=1 is too few"),
        ("ten", r"folds='ten' is not a whole number or 'loo-site'"),
        (2.5, r"folds=2.5 is not a whole number"),
    ],
)
def test_bad_folds_are_a_clear_data_error(spec, folds, message):
    obs = mb.read_observations(ROOT / "data" / "example" / "observations.csv")
    with pytest.raises(DataError, match=message):
        ev.evaluate(obs, spec, folds=folds, **SAMPLER)


def test_bad_settings_are_data_errors(spec):
    obs = simulated(n_sites=6, per_site=2)
    with pytest.raises(DataError, match=r"n_jobs=0 must be a whole number ≥ 1"):
        ev.evaluate(obs, spec, folds=2, n_jobs=0)
    with pytest.raises(DataError, match=r"--draws must be a whole number ≥ 1"):
        ev.evaluate(obs, spec, folds=2, draws=0)


def test_site_outcome_rate_and_loo_site_fold_count(spec):
    obs = simulated(n_sites=6, per_site=4)
    rate = ev.site_outcome_rate(obs, spec)
    expected = obs.groupby("site")["embedded"].mean()
    np.testing.assert_allclose(rate.to_numpy(), expected.to_numpy())
    assert ev._check_folds("loo-site", 6) == 6


def test_fold_baseline_is_training_rate_with_jeffreys_pseudo_counts():
    # two folds: fold 0 holds y = [1, 1, 0], fold 1 holds y = [0, 0]
    y = np.array([1, 1, 0, 0, 0])
    fold = np.array([0, 0, 0, 1, 1])
    spec = mb.ModelSpec(outcome="embedded")
    base = ev._fold_baseline(y, fold, 2, spec, None)
    # fold 0 is forecast from fold 1 (0 of 2): (0 + .5) / (2 + 1); fold 1 from fold 0: 2.5 / 4
    np.testing.assert_allclose(base, [0.5 / 3] * 3 + [2.5 / 4] * 2)
    ordinal = mb.ModelSpec(family="ordinal", outcome="level", levels=("a", "b", "c"))
    shares = ev._fold_baseline(np.array([0, 2, 2, 1]), np.array([0, 0, 1, 1]), 2, ordinal, None)
    # fold 0 sees fold 1's levels {2, 1} (+ .5 each): (.5, 1.5, 1.5) / 3.5
    np.testing.assert_allclose(shares[0], np.array([0.5, 1.5, 1.5]) / 3.5)
    np.testing.assert_allclose(shares[2], np.array([1.5, 0.5, 1.5]) / 3.5)


# -- acceptance: leave-site-out beats the base rate with signal, claims no skill without -----------
def test_metrics_have_the_exact_structure_of_the_issue(signal_eval):
    m = signal_eval.metrics
    assert list(m) == ["folds", "model", "baseline", "skill", "log_score_of"]
    assert m["folds"] == 5
    assert set(m["model"]) == METRIC_KEYS and set(m["baseline"]) == METRIC_KEYS
    assert set(m["skill"]) == {"log_score", "brier"}
    for s in m["skill"].values():
        assert set(s) == {"mean", "q05", "q95"} and s["q05"] <= s["mean"] <= s["q95"]
    json.loads(dumps_json(m))  # strict JSON (NaN -> null)


def test_predictions_are_out_of_sample_new_site_forecasts(signal_eval):
    pred = signal_eval.predictions
    assert len(pred) == 480 and pred["p"].between(0, 1).all()
    assert (pred["p_q05"] <= pred["p"]).all() and (pred["p"] <= pred["p_q95"]).all()
    # whole sites held out: each site in exactly one fold, every fold used
    assert (pred.groupby("site")["fold"].nunique() == 1).all()
    assert sorted(pred["fold"].unique()) == [1, 2, 3, 4, 5]
    # baseline: the training folds' rate, constant within a fold
    assert (pred.groupby("fold")["p_baseline"].nunique() == 1).all()
    folds = signal_eval.folds
    assert folds["n_test"].sum() == 480 and (folds["n_train"] + folds["n_test"] == 480).all()


def test_with_signal_the_model_beats_the_base_rate(signal_eval):
    skill = signal_eval.metrics["skill"]
    assert skill["log_score"]["q05"] > 0
    assert skill["brier"]["q05"] > 0
    model = signal_eval.metrics["model"]
    assert model["auc"] > 0.65
    # new-site forecasts of a correctly specified model are roughly calibrated
    assert 0.6 < model["calibration_slope"] < 1.5
    assert abs(model["calibration_intercept"]) < 0.3


def test_without_signal_no_skill_is_claimed(null_eval):
    for name in ("log_score", "brier"):
        s = null_eval.metrics["skill"][name]
        assert s["q05"] <= 0 <= s["q95"], (name, s)


def test_same_seed_same_numbers_and_save(signal_eval, spec, tmp_path):
    again = _quiet_evaluate(simulated(), spec, folds=5, seed=7)
    pd.testing.assert_frame_equal(again.predictions, signal_eval.predictions)
    assert again.metrics == signal_eval.metrics or json.dumps(again.metrics) == json.dumps(signal_eval.metrics)
    paths = again.save(tmp_path / "eval" / "run1")
    assert json.loads(paths["metrics"].read_text()) == json.loads(dumps_json(again.metrics))
    saved = pd.read_csv(paths["predictions"], dtype={"site": str})
    np.testing.assert_allclose(saved["p"], again.predictions["p"])
    assert set(pd.read_csv(paths["folds"])["fold"]) == {1, 2, 3, 4, 5}
    clash = tmp_path / "afile"
    clash.write_text("x")
    with pytest.raises(DataError, match=r"afile: exists and is a file, not a folder"):
        again.save(clash)


def test_folds_one_at_a_time_give_the_numbers_of_overlapping_folds(signal_eval, spec, monkeypatch):
    settings = mb.SamplerSettings(draws=1, tune=0, chains=4)
    problem = ev._Problem(table=None, data=None, spec=spec, settings=settings, centered=False)
    assert ev.concurrent_folds(problem, 9) >= 2  # the default overlaps nutpie refits
    assert ev.concurrent_folds(problem, 1) == 1
    pymc = dataclasses.replace(problem, settings=dataclasses.replace(settings, sampler="pymc"))
    assert ev.concurrent_folds(pymc, 9) == 1  # one shared model
    monkeypatch.setattr(ev, "concurrent_folds", lambda problem, n_tasks: 1)
    one_at_a_time = _quiet_evaluate(simulated(), spec, folds=5, seed=7)
    pd.testing.assert_frame_equal(one_at_a_time.predictions, signal_eval.predictions)
    assert json.dumps(one_at_a_time.metrics) == json.dumps(signal_eval.metrics)


def test_a_model_compiled_earlier_is_reused_and_the_progress_says_so(signal_eval, spec):
    lines = []
    again = _quiet_evaluate(simulated(), spec, folds=5, seed=7, progress=lines.append)
    fold_lines = [line for line in lines if line.startswith("fold ")]
    assert len(fold_lines) == 5
    assert not any("compiled the model first" in line for line in fold_lines), fold_lines
    pd.testing.assert_frame_equal(again.predictions, signal_eval.predictions)


def test_dask_local_cluster_gives_the_serial_numbers(signal_eval, spec):
    import distributed  # a declared dependency (dask[distributed]): a missing one fails, never skips
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = _quiet_evaluate(simulated(), spec, folds=5, seed=7, scheduler=client)
    pd.testing.assert_frame_equal(on_dask.predictions, signal_eval.predictions)
    assert json.dumps(on_dask.metrics) == json.dumps(signal_eval.metrics)


@pytest.mark.slow
def test_local_processes_give_the_serial_numbers(signal_eval, spec):
    """Two spawned workers, each compiling once (about a minute on 2 cores)."""
    parallel = _quiet_evaluate(simulated(), spec, folds=5, seed=7, n_jobs=2)
    pd.testing.assert_frame_equal(parallel.predictions, signal_eval.predictions)
    assert json.dumps(parallel.metrics) == json.dumps(signal_eval.metrics)


# -- PSIS-LOO --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_fits(spec, signal_eval):
    obs = simulated()
    compiled = ev.compiled_model(obs, spec)  # from the cache evaluate() filled: no compiling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        return compiled.sample(seed=1, **SAMPLER), compiled.sample(seed=2, **SAMPLER)


def test_loo_matches_its_definition_and_counts_pareto_k(two_fits):
    from mbct_bayes.planning.predict import log_likelihood

    fit = two_fits[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = ev.loo(fit)
    ll = log_likelihood(fit)
    lppd = float(np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])))
    # ArviZ: p_loo = lppd - elpd_loo; LOO can only lose against in-sample fit
    assert result.elpd + result.p_loo == pytest.approx(lppd, rel=1e-9)
    assert result.elpd < lppd and result.n == 480 and result.pareto_k.shape == (480,)
    out = result.to_dict()
    assert "leave-one-observation-out" in out["method"] and "not a new-site forecast" in out["method"]
    assert out["pareto_k"]["n_above_0.7"] == int(np.sum(result.pareto_k > 0.7))
    assert out["elpd_per_obs"] == pytest.approx(result.elpd / 480)


def test_compare_ranks_fits_and_is_labelled(two_fits):
    table = ev.compare({"seed1": two_fits[0], "seed2": two_fits[1]})
    assert set(table.index) == {"seed1", "seed2"}
    assert {"elpd", "elpd_diff", "dse", "weight", "n_pareto_k_above_0.7"} <= set(table.columns)
    assert (table["cv"] == "leave-one-observation-out (PSIS-LOO)").all()
    assert not table.attrs  # the label is a column, not metadata pandas can drop (issue 13 item 4)
    # the same model refitted with another seed: no real difference
    assert abs(table["elpd_diff"].min()) < 2 * table["dse"].max() + 1.0


def test_compare_refuses_fits_of_different_data(two_fits, spec):
    with pytest.raises(DataError, match=r"compare needs a dict of at least two"):
        ev.compare({"only": two_fits[0]})
    compiled = ev.compiled_model(simulated(), spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        subset = compiled.sample(rows=np.arange(400), seed=3, draws=50, tune=50, chains=1)
    with pytest.raises(DataError, match=r"were made on different observations \(480 vs 400 rows\)"):
        ev.compare({"full": two_fits[0], "subset": subset})


def test_ordinal_model_cross_validates_with_nutpie():
    """The ordinal model stores nothing per observation, so nutpie refits it on each fold."""
    obs = mb.read_observations(ROOT / "data" / "example" / "observations_ordinal.csv")
    spec = mb.ModelSpec.from_toml(MODELS / "ordinal.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        result = ev.evaluate(obs, spec, folds=2, draws=50, tune=50, chains=1, n_boot=20)
    levels = result.predictions[["p_none", "p_partial", "p_embedded"]].to_numpy()
    np.testing.assert_allclose(levels.sum(axis=1), 1.0, atol=1e-9)
    assert "rps" in result.metrics["model"]


def test_binomial_rows_are_scored_by_the_predictive_mixture_against_a_beta_binomial():
    """Binomial CV scores each held-out row by log mean_s Binomial(k | n, p_s), not Binomial(k | n, p̄).

    The example rows (8 trials, site and region effects) vary more between rows than a binomial
    allows, so the mixture must score better than the plug-in score of the same mean p. The
    baseline is recomputed here from its definition: BetaBinomial(k | n) at the fold's training
    rate with the ANOVA intra-row correlation of the fold's training rows.
    """
    from mbct_bayes.forecast.rules import intra_row_correlation, log_score_beta_binomial, log_score_binomial

    obs = mb.read_observations(ROOT / "data" / "example" / "observations_binomial.csv")
    spec = mb.ModelSpec.from_toml(MODELS / "binomial.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        result = ev.evaluate(obs, spec, folds=3, draws=150, tune=150, chains=2, n_boot=50, seed=3)
    pred, m = result.predictions, result.metrics
    k, n = pred["embedded"].to_numpy(), pred["trials"].to_numpy()
    assert m["log_score_of"] == ev.LOG_SCORE_OF["binomial"]
    assert m["model"]["log_score"] == pytest.approx(pred["log_score"].mean(), rel=1e-12)
    assert m["baseline"]["log_score"] == pytest.approx(pred["log_score_baseline"].mean(), rel=1e-12)
    plug_in = log_score_binomial(pred["p"], k, n)
    assert m["model"]["log_score"] > plug_in + 0.05, (m["model"]["log_score"], plug_in)
    rho = {f: intra_row_correlation(k[pred["fold"] != f], n[pred["fold"] != f]) for f in (1, 2, 3)}
    assert all(0.05 < r < 0.5 for r in rho.values()), rho  # the example rows are over-dispersed
    expected = log_score_beta_binomial(pred["p_baseline"], pred["fold"].map(rho), k, n, pointwise=True)
    np.testing.assert_allclose(pred["log_score_baseline"], expected, rtol=1e-12)
    assert m["skill"]["log_score"]["mean"] == pytest.approx(
        m["model"]["log_score"] - m["baseline"]["log_score"], rel=1e-9
    )
