"""Fit plumbing: summary structure, diagnostics, reproducibility, save/load, refusing bad files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mbct_bayes as mb
from mbct_bayes.io import dumps_json
from mbct_bayes.model.build import prior_predictive
from mbct_bayes.model.fit import SCHEMA_VERSION, compile_model, load_fit
from mbct_bayes.model.predictor import log_likelihood

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"

STAT_KEYS = {"mean", "sd", "q05", "q50", "q95", "r_hat", "ess_bulk", "ess_tail"}


def test_summary_has_the_documented_structure(example_fit):
    s = example_fit.summary()
    assert s["family"] == "bernoulli"
    assert list(s["coefficients"]) == ["Intercept", "E", "C", "F"]
    for stats in [*s["coefficients"].values(), s["group_sd"]["site"]]:
        assert set(stats) == STAT_KEYS
        assert stats["q05"] <= stats["q50"] <= stats["q95"]
    assert s["cutpoints"] == []
    assert {"ok", "max_r_hat", "min_ess_bulk", "min_ess_tail", "divergences"} <= set(s["diagnostics"])
    json.loads(dumps_json(s))  # strict JSON, no NaN


def test_summary_numbers_equal_the_draws(example_fit):
    beta_f = example_fit.draws["beta"][:, 2]
    f = example_fit.summary()["coefficients"]["F"]
    assert f["mean"] == pytest.approx(beta_f.mean(), rel=1e-12)
    assert f["q95"] == pytest.approx(np.quantile(beta_f, 0.95), rel=1e-12)


def test_ordinal_summary_lists_cutpoints_in_order(ordinal_fit):
    s = ordinal_fit.summary()
    assert "Intercept" not in s["coefficients"]
    names = [c["name"] for c in s["cutpoints"]]
    assert names == ["none|partial", "partial|embedded"]
    assert s["cutpoints"][0]["mean"] < s["cutpoints"][1]["mean"]


def test_region_effects_are_fitted(binomial_fit):
    s = binomial_fit.summary()
    assert set(s["group_sd"]) == {"site", "region"}
    assert binomial_fit.draws["u_region"].shape[1] == 4


def test_same_seed_gives_identical_draws():
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    spec = mb.ModelSpec.from_toml(MODELS / "bernoulli.toml")
    compiled = compile_model(obs, spec)
    a = compiled.sample(seed=7, draws=50, tune=50, chains=2)
    b = compiled.sample(seed=7, draws=50, tune=50, chains=2)
    c = compiled.sample(seed=8, draws=50, tune=50, chains=2)
    np.testing.assert_array_equal(a.draws["beta"], b.draws["beta"])
    assert not np.array_equal(a.draws["beta"], c.draws["beta"])


def test_refit_on_subset_keeps_all_sites_and_fits_fewer_rows():
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    compiled = compile_model(obs, mb.ModelSpec())
    rows = obs["site"].isin(sorted(obs["site"].unique())[:30]).to_numpy()
    sub = compiled.sample(rows=rows, seed=1, draws=50, tune=50, chains=1)
    assert sub.meta["rows_fitted"] == rows.sum()
    assert sub.draws["u_site"].shape[1] == obs["site"].nunique()


def test_failed_gate_warns_and_reports(example_fit):
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    with pytest.warns(mb.ConvergenceWarning, match="did not pass the diagnostics gate"):
        result = mb.fit(obs, mb.ModelSpec(), seed=1, draws=20, tune=20, chains=2)
    assert result.summary()["diagnostics"]["ok"] is False
    assert "FAILED" in result.summary_text()


def test_save_load_predict_identical(example_fit, tmp_path):
    path = example_fit.save(tmp_path / "fit.nc")
    loaded = load_fit(path)
    assert loaded.spec == example_fit.spec
    pd.testing.assert_frame_equal(loaded.data, example_fit.data, check_dtype=False)
    new = pd.read_csv(EXAMPLE / "new_sites.csv", dtype={"site": str, "region": str})
    for kind in ("new_site", "typical_site"):
        pd.testing.assert_frame_equal(example_fit.predict(new, kind=kind), loaded.predict(new, kind=kind))
    known = example_fit.data.head(3)[["site", "E", "C", "F"]]
    pd.testing.assert_frame_equal(example_fit.predict(known, kind="known_site"), loaded.predict(known, kind="known_site"))
    assert loaded.summary()["coefficients"] == example_fit.summary()["coefficients"]


def test_saved_file_has_identity_attributes(example_fit, tmp_path):
    path = example_fit.save(tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="netcdf4")
    assert tree.attrs["mbct_bayes_schema"] == SCHEMA_VERSION
    assert tree.attrs["mbct_bayes_version"] == mb.__version__
    assert json.loads(tree.attrs["spec"])["family"] == "bernoulli"
    assert "warmup_posterior" not in tree.children
    tree.close()


def test_refuses_a_corrupt_file(tmp_path):
    path = tmp_path / "fit.nc"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(mb.FitFileError, match="not a readable NetCDF fit file"):
        load_fit(path)


def test_refuses_a_foreign_netcdf(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3))}).to_netcdf(path, engine="netcdf4")
    with pytest.raises(mb.FitFileError, match="is not an mbct-bayes fit"):
        load_fit(path)


def test_refuses_a_modified_file(example_fit, tmp_path):
    path = example_fit.save(tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="netcdf4").load()
    spec = json.loads(tree.attrs["spec"])
    spec["predictors"] = ["E", "C"]
    tree.attrs["spec"] = json.dumps(spec, sort_keys=True)
    tree.to_netcdf(tmp_path / "edited.nc", engine="netcdf4")
    with pytest.raises(mb.FitFileError, match="do not match its content hash"):
        load_fit(tmp_path / "edited.nc")


def test_refuses_a_newer_schema(example_fit, tmp_path):
    path = example_fit.save(tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="netcdf4").load()
    tree.attrs["mbct_bayes_schema"] = SCHEMA_VERSION + 1
    tree.to_netcdf(tmp_path / "future.nc", engine="netcdf4")
    with pytest.raises(mb.FitFileError, match=f"schema version {SCHEMA_VERSION + 1}"):
        load_fit(tmp_path / "future.nc")


def test_missing_fit_file(tmp_path):
    with pytest.raises(mb.FitFileError, match="fit file not found"):
        load_fit(tmp_path / "nope.nc")


def test_save_failure_keeps_the_old_file(example_fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    path.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        example_fit.save(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_known_site_errors_for_an_unknown_site(example_fit):
    new = pd.DataFrame({"site": ["ZZZ"], "E": [3.0], "C": [3.0], "F": [3.0]})
    with pytest.raises(mb.DataError, match="site 'ZZZ' is not in the fitted data"):
        example_fit.predict(new, kind="known_site")


def test_unknown_kind_is_an_error(example_fit):
    new = pd.DataFrame({"site": ["A"], "E": [3.0], "C": [3.0], "F": [3.0]})
    with pytest.raises(mb.DataError, match="kind 'future' is not one of"):
        example_fit.predict(new, kind="future")


def test_known_site_uses_the_fitted_effect(example_fit):
    row = example_fit.data.iloc[[0]][["site", "E", "C", "F"]]
    d = example_fit.draws
    site_pos = list(example_fit.model_data.site_labels).index(row["site"].iloc[0])
    x = row[["E", "C", "F"]].to_numpy()[0] - 3.0
    eta = d["Intercept"] + d["beta"] @ x + d["u_site"][:, site_pos]
    expected = (1 / (1 + np.exp(-eta))).mean()
    assert example_fit.predict(row, kind="known_site")["p_mean"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_ordinal_predictions_have_level_columns_summing_to_one(ordinal_fit):
    new = pd.read_csv(EXAMPLE / "new_sites.csv", dtype={"site": str, "region": str})
    pred = ordinal_fit.predict(new, kind="typical_site")
    levels = pred[["p_none", "p_partial", "p_embedded"]].to_numpy()
    np.testing.assert_allclose(levels.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(pred["p_mean"], pred["p_embedded"], atol=1e-12)


def test_log_likelihood_matches_scipy(example_fit):
    from scipy.stats import bernoulli

    ll = log_likelihood(example_fit)
    md, d = example_fit.model_data, example_fit.draws
    eta = d["Intercept"][:5, None] + d["beta"][:5] @ md.X.T + d["u_site"][:5][:, md.site_idx]
    np.testing.assert_allclose(ll[:5], bernoulli.logpmf(md.y, 1 / (1 + np.exp(-eta))), rtol=1e-10)


def test_prior_predictive_draws_have_the_outcome():
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = prior_predictive(obs, mb.ModelSpec.from_toml(MODELS / "bernoulli.toml"), draws=50)
    assert prior["prior_predictive"]["obs"].shape[-1] == len(obs)


def _mixed_prior_spec():
    """E has a Student-t prior, so every coefficient prior is compiled into the graph."""
    spec = mb.ModelSpec.from_toml(MODELS / "bernoulli.toml")
    d = spec.to_dict()
    d["priors"] = {"E": {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 1}}
    return mb.ModelSpec.from_dict(d)


def test_compiled_priors_that_depend_on_the_data_are_not_reused_for_other_data():
    spec = _mixed_prior_spec()
    obs = pd.read_csv(EXAMPLE / "observations.csv")
    narrow = obs.assign(F=3 + (obs["F"] - 3) * 0.3)  # sd(F) / 0.3: default F prior 3.3× wider
    first = compile_model(obs, spec)
    assert compile_model(obs.copy(), spec).model is first.model  # same data: reused
    assert compile_model(narrow, spec).model is not first.model  # other baked priors: built afresh
    with pytest.raises(mb.DataError, match="other default coefficient priors than the compiled model"):
        first.sample(narrow, draws=10, tune=10, chains=1)


def test_all_normal_priors_are_swapped_not_compiled_in():
    from mbct_bayes.model.build import baked_coefficient_priors, data_values

    spec = mb.ModelSpec.from_toml(MODELS / "bernoulli.toml")
    compiled = compile_model(pd.read_csv(EXAMPLE / "observations.csv"), spec)
    assert baked_coefficient_priors(spec, compiled.data) == []
    assert {"beta_mu", "beta_sigma"} <= set(data_values(compiled.data, spec))
    mixed = _mixed_prior_spec()
    assert [p["dist"] for p in baked_coefficient_priors(mixed, compiled.data)] == ["StudentT", "Normal", "Normal"]


def test_typical_site_keeps_a_known_regions_effect(binomial_fit):
    from mbct_bayes.model.build import design_matrix
    from mbct_bayes.planning.predict import eta_draws, fixed_part

    region = binomial_fit.model_data.region_labels[1]
    rows = pd.DataFrame({"site": ["T1", "T2", "T3"], "region": [region, "", None],
                         "E": [3.0] * 3, "C": [3.5] * 3, "F": [2.5] * 3})
    eta = eta_draws(binomial_fit, rows, kind="typical_site")
    fixed = fixed_part(binomial_fit.draws, design_matrix(rows, binomial_fit.spec))
    u_region = binomial_fit.draws["u_region"]
    np.testing.assert_allclose(eta[:, 0], fixed[:, 0] + u_region[:, 1], rtol=1e-12)
    # no region (default region_mode "mixture"): in every draw one of the fitted regions' effects
    for j in (1, 2):
        gap = np.abs((eta[:, j] - fixed[:, j])[:, None] - u_region).min(axis=1)
        assert gap.max() < 1e-9
    # region_mode "new": a fresh region, not one of the fitted ones
    fresh = eta_draws(binomial_fit, rows, kind="typical_site", region_mode="new")
    np.testing.assert_allclose(fresh[:, 0], eta[:, 0], rtol=1e-12)
    gap = np.abs((fresh[:, 1] - fixed[:, 1])[:, None] - u_region).min(axis=1)
    assert np.median(gap) > 1e-3


def _grid_data(family: str, n_sites: int, rows: int, sigma_site: float, seed: int = 4):
    """A dataset like a cell of benchmarks/parametrisation_grid.py (no regions, 8 trials a row)."""
    import dataclasses

    from mbct_bayes.model.build import prepare_data
    from mbct_bayes.model.simulate import default_truth, simulate_observations

    truth = default_truth(family, n_regions=0) | {"sigma_site": sigma_site}
    table, _ = simulate_observations(n_sites, rows, family, n_regions=0, seed=seed, truth=truth, trials=8)
    spec = dataclasses.replace(mb.ModelSpec(family=family), parametrization="auto")
    return prepare_data(table, spec), spec


# The grid's cells (benchmarks/RESULTS.md, "Site-effect parametrisation") and the arm the rule must take there: centred
# only where each site's data are informative relative to the site SD (40 trials, sigma 0.8 or more).
RULE_CELLS = [
    ("bernoulli", 20, 5, 0.2, False), ("bernoulli", 20, 5, 1.5, False),
    ("bernoulli", 100, 5, 0.2, False), ("bernoulli", 100, 5, 1.5, False),
    ("binomial", 20, 1, 0.2, False), ("binomial", 100, 1, 0.2, False), ("binomial", 100, 1, 0.8, False),
    ("binomial", 20, 5, 0.2, False), ("binomial", 20, 5, 0.8, True), ("binomial", 20, 5, 1.5, True),
    ("binomial", 100, 5, 0.2, False), ("binomial", 100, 5, 0.5, False), ("binomial", 100, 5, 0.8, True),
    ("binomial", 100, 5, 1.5, True),
]


@pytest.mark.parametrize(("family", "n_sites", "rows", "sigma_site", "centred"), RULE_CELLS)
def test_automatic_parametrisation_at_the_grid_cells(family, n_sites, rows, sigma_site, centred):
    import dataclasses

    from mbct_bayes.model.build import choose_centered

    data, spec = _grid_data(family, n_sites, rows, sigma_site)
    assert choose_centered(data, spec) is centred
    for forced in ("centered", "noncentered"):  # an explicit choice always wins
        assert choose_centered(data, dataclasses.replace(spec, parametrization=forced)) is (forced == "centered")


def test_site_information_recovers_n_p_q_sigma_squared():
    """At 100 sites × 40 trials the moment estimate is near the truth n·p(1−p)·sigma² (±35%)."""
    from mbct_bayes.model.build import site_information

    data, _ = _grid_data("binomial", 100, 5, 1.0)
    rate = data.y.sum() / data.trials.sum()
    assert site_information(data) == pytest.approx(40 * rate * (1 - rate) * 1.0**2, rel=0.35)
    flat, _ = _grid_data("binomial", 100, 5, 0.0)
    assert site_information(flat) < 0.5  # no site variation: (nearly) no information about any
