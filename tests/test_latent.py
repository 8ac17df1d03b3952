"""Latent measurement model: validation, plumbing, and attenuation shown on simulated data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mbct_bayes as mb
from mbct_bayes.model.fit import load_fit
from mbct_bayes.survey.scoring import read_codebook, score_responses, site_scores
from mbct_bayes.survey.simulate import simulate_survey_study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
CODEBOOK = ROOT / "data" / "codebook_orca_mbct.csv"


def test_latent_fit_keeps_every_site(latent_fit, example_scores):
    sites = latent_fit.model_data.site_labels
    assert "NORESP" in sites  # no respondents: its latent scores come from the population
    assert latent_fit.draws["latent"].shape[1:] == (len(sites), 3)
    assert set(latent_fit.summary()["measurement_model"]) == {"sigma_measure", "latent_sd", "latent_mean"}


def test_site_without_respondents_gets_the_population_spread(latent_fit):
    d = latent_fit.draws
    pos = list(latent_fit.model_data.site_labels).index("NORESP")
    # its latent F varies across draws as widely as the population does (sd of latent F)
    assert d["latent"][:, pos, 2].std() == pytest.approx(np.sqrt((d["latent_sd"][:, 2] ** 2).mean()), rel=0.35)


def test_role_offsets_sum_to_zero(latent_fit):
    offsets = latent_fit.draws["role_offset"]  # (S, construct, role)
    np.testing.assert_allclose(offsets.sum(axis=-1), 0.0, atol=1e-10)


def test_latent_fit_saves_and_loads_with_its_responses(latent_fit, tmp_path):
    path = latent_fit.save(tmp_path / "latent.nc")
    loaded = load_fit(path)
    assert loaded.spec.measurement == "latent"
    assert len(loaded.responses) == len(latent_fit.responses)
    known = latent_fit.data.head(4)[["site", "region", "E", "C", "F"]]
    pd.testing.assert_frame_equal(latent_fit.predict(known, kind="known_site"), loaded.predict(known, kind="known_site"))


def test_known_site_uses_latent_scores_not_the_table(latent_fit):
    row = latent_fit.data.head(1)[["site", "region", "E", "C", "F"]]
    shifted = row.assign(E=1.0, C=1.0, F=1.0)
    a = latent_fit.predict(row, kind="known_site")["p_mean"].iloc[0]
    b = latent_fit.predict(shifted, kind="known_site")["p_mean"].iloc[0]
    assert a == b


def test_latent_needs_responses():
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    with pytest.raises(mb.DataError, match='measurement = "latent" needs respondent scores'):
        mb.fit(obs, mb.ModelSpec(measurement="latent"), draws=10, tune=10, chains=1)


def test_a_centred_latent_model_is_refused_with_the_way_out():
    with pytest.raises(mb.DataError, match=r'non-centred .* remove parametrization = "centered"'):
        mb.ModelSpec(measurement="latent", scale={"E": (1, 5), "C": (1, 5), "F": (1, 5)}, parametrization="centered")


def test_responses_with_an_observed_spec_is_an_error(example_scores):
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    with pytest.raises(mb.DataError, match="responses were given but the spec's measurement is"):
        mb.fit(obs, mb.ModelSpec(), responses=example_scores, draws=10, tune=10, chains=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns=["F"]), "missing column 'F'"),
        (lambda d: d.assign(site=[None, *list(d.site[1:])]), "respondent without a site"),
        (lambda d: d.assign(E=[7.0, *list(d.E[1:])]), "value 7 is outside the scale 1-5"),
        (lambda d: d.assign(C=["lots", *list(d.C[1:])]), "value 'lots' is not a number"),
        (lambda d: d.assign(role=[None, *list(d.role[1:])]), "missing role"),
    ],
    ids=["missing-column", "no-site", "out-of-range", "text", "no-role"],
)
def test_bad_respondent_scores(example_scores, change, message):
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    spec = mb.ModelSpec(measurement="latent", role_offsets=True)
    with pytest.raises(mb.DataError, match=message):
        mb.fit(obs, spec, responses=change(example_scores.copy()), draws=10, tune=10, chains=1)


@pytest.mark.slow
def test_latent_model_undoes_the_attenuation_of_averaged_scores():
    """Attenuation shown, not asserted.

    300 sites, 5 respondents each with ICC(1) = 0.1 (reliability of a site mean ≈ 0.36), 15
    assessed units per site whose outcome depends on the *true* site scores. Averaging the
    respondents and treating the mean as exact shrinks every coefficient towards zero; the
    latent model's 90% intervals cover the truth and its means are closer to it.
    """
    codebook = read_codebook(CODEBOOK)
    truth_beta = {"E": 0.5, "C": 1.0, "F": 2.0}
    obs, items, _truth = simulate_survey_study(
        300, 15, codebook, beta=truth_beta, respondents_per_site=5, icc1=0.1, site_corr=0.2, seed=3
    )
    scores = score_responses(items, codebook)
    averaged = obs.merge(site_scores(scores)[["site", "E", "C", "F"]], on="site")
    with warnings.catch_warnings():
        # the comparison model only (2 chains: max R-hat 1.012 at this seed); its bias is the point
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        avg_fit = mb.fit(averaged, mb.ModelSpec(), seed=1, draws=1000, tune=1000, chains=2)
    # at the gate's settings (4 × 1000 draws); a failing gate warns, and the warning is not silenced
    latent_fit = mb.fit(obs, mb.ModelSpec(measurement="latent"), responses=scores, seed=1,
                        draws=1000, tune=1000, chains=4)
    avg = avg_fit.summary()["coefficients"]
    # the whole fit passes the package's gate: R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no divergences
    gate = latent_fit.diagnostics
    assert gate["ok"], gate["problems"]
    lat = latent_fit.summary()["coefficients"]
    # averaging attenuates: the largest effect's 90% interval lies wholly below the truth
    assert avg["F"]["q95"] < truth_beta["F"]
    assert all(avg[p]["mean"] < truth_beta[p] for p in ("C", "F"))
    for p, true_value in truth_beta.items():
        assert lat[p]["q05"] <= true_value <= lat[p]["q95"], (p, lat[p])
    error_avg = sum(abs(avg[p]["mean"] - v) for p, v in truth_beta.items())
    error_lat = sum(abs(lat[p]["mean"] - v) for p, v in truth_beta.items())
    assert error_lat < error_avg, (error_lat, error_avg)
    assert abs(lat["F"]["mean"] - 2.0) < abs(avg["F"]["mean"] - 2.0)


@pytest.mark.slow
def test_example_latent_fit_passes_the_gate(latent_example, latent_fit):
    """The example's latent fit (with latent_fit's two edge-case sites) passes the package's gate at
    its settings: 4 × 1000 draws after 1000 tuning, R-hat ≤ 1.01, bulk and tail ESS ≥ 400, no
    divergent transitions (issue 12 item 8). Same structure as ``latent_fit``, so its compiled
    model is reused (about 25 s of sampling on a quiet machine).
    """
    obs, scores, spec = latent_example
    fitted = mb.fit(obs, spec, responses=scores, seed=1, draws=1000, tune=1000, chains=4)
    gate = fitted.diagnostics
    assert gate["ok"], gate["problems"]


def test_planning_a_known_site_of_a_latent_fit_is_refused_with_the_way_out(latent_fit):
    from mbct_bayes.planning import scenarios as planning

    row = latent_fit.data.head(1)[["site", "region", "E", "C", "F"]]
    with pytest.raises(mb.DataError, match=r"kind known_site is not available for a latent-measurement fit.*new_site or typical_site"):
        planning.what_if(latent_fit, row, {"F": 1.0}, "known_site")
    out = planning.what_if(latent_fit, row.assign(n_respondents=4), {"F": 1.0}, "typical_site")
    assert len(out) == 1


def test_latent_parametrisation_is_the_measurement_model_exactly(example_scores):
    """The sampler's form (scores' marginal likelihood + true scores non-centred around their
    conditional given the respondents) equals the textbook normal–normal model at any point.

    Closed forms checked with numpy/scipy: per site, the scores ``x_s ~ MvNormal(latent_mean[j] +
    offset, Z Sigma Zᵀ + diag(sigma_measure²))`` (Z maps each score to its construct), and the
    true scores given the scores ``MvNormal(m_s, C_s)`` with ``C_s = (Sigma⁻¹ + Zᵀ D⁻¹ Z)⁻¹``,
    ``m_s = C_s (Sigma⁻¹ latent_mean + Zᵀ D⁻¹ (x_s − offset))`` (e.g. Gelman et al., BDA3, 3.5).
    """
    import pymc as pm
    from scipy.stats import multivariate_normal

    from mbct_bayes.model.build import build_model, prepare_data

    spec = mb.ModelSpec.from_toml(ROOT / "models" / "latent.toml")
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    scores = example_scores.copy()
    scores.loc[scores.index[:4], "C"] = np.nan  # sites with a construct nobody scored
    data = prepare_data(obs, spec, responses=scores)
    model = build_model(data, spec, centered=False)
    chol = pm.expand_packed_triangular(3, model["latent_chol"], lower=True)
    names = ["responses", "latent", "latent_mean", "sigma_measure", "role_offset", "z_outcome", "z_orthogonal",
             "z_site", "u_site", "sigma_site", "beta"]
    outputs = [model[name] for name in names] + [chol]
    evaluate = model.compile_fn(model.replace_rvs_by_values(outputs), inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    rng = np.random.default_rng(5)
    point = {name: value + rng.normal(0.0, 0.5, size=np.shape(value)) for name, value in model.initial_point().items()}
    (potential, latent, mean, sigma, offset, z_outcome, z_orthogonal, z_site, u_site, sigma_site, beta,
     chol_value) = evaluate(point)
    cov = chol_value @ chol_value.T
    np.testing.assert_allclose(u_site, sigma_site * z_site, atol=1e-12)

    net = data.resp_value - offset[data.resp_pred, data.resp_role]
    expected_logp = 0.0
    for s in range(len(data.site_labels)):
        at = data.resp_site == s
        design = np.eye(3)[data.resp_pred[at]]  # Z: one row per score
        noise = np.diag(sigma[data.resp_pred[at]] ** 2)
        if at.any():
            expected_logp += multivariate_normal(design @ mean, design @ cov @ design.T + noise).logpdf(net[at])
        measure_precision = design.T @ (design / sigma[data.resp_pred[at], None] ** 2)  # Zᵀ D⁻¹ Z
        post_cov = np.linalg.inv(np.linalg.inv(cov) + measure_precision)
        post_mean = post_cov @ (np.linalg.solve(cov, mean) + design.T @ (net[at] / sigma[data.resp_pred[at]] ** 2))
        # the square root the model uses, L K⁻ᵀ with K K' = I + Lᵀ P L, is one of post_cov ...
        root = chol_value @ np.linalg.inv(np.linalg.cholesky(np.eye(3) + chol_value.T @ measure_precision @ chol_value)).T
        np.testing.assert_allclose(root @ root.T, post_cov, atol=1e-10)
        # ... and the model's true scores are post_mean + root @ z, where (z_site, z) is an orthogonal
        # reflection of the sampled standard normals (same length, so the same N(0, I) density) ...
        z = np.linalg.solve(root, latent[s] - post_mean)
        assert np.hypot(z_site[s], np.linalg.norm(z)) == pytest.approx(
            np.hypot(z_outcome[s], np.linalg.norm(z_orthogonal[s])), rel=1e-9)
        # ... whose first coordinate carries the site's whole outcome deviation (site effect plus
        # true scores' departure from their conditional mean): -|g| z_outcome, g = (sigma_site, rootᵀ beta)
        deviation = u_site[s] + beta @ (latent[s] - post_mean)
        g = np.concatenate([[sigma_site], root.T @ beta])
        assert deviation == pytest.approx(-np.linalg.norm(g) * z_outcome[s], rel=1e-9, abs=1e-12)
    assert float(potential) == pytest.approx(expected_logp, rel=1e-10)


def test_folded_sigma_site_keeps_the_specs_prior(example_scores):
    """``sigma_site = |sigma_site_signed|`` is only the sampler's coordinate: drawn from the
    model's prior, sigma_site is still the spec's HalfNormal(1) (KS test on 4,000 draws).
    """
    import pymc as pm
    from scipy import stats

    from mbct_bayes.model.build import build_model, prepare_data

    spec = mb.ModelSpec.from_toml(ROOT / "models" / "latent.toml")
    obs = mb.read_observations(EXAMPLE / "observations.csv")
    data = prepare_data(obs, spec, responses=example_scores)
    # the respondents' potential is not a prior term; PyMC says it leaves it out
    with build_model(data, spec) as model, pytest.warns(UserWarning, match="Potentials"):
        prior = pm.sample_prior_predictive(draws=4000, random_seed=2, var_names=["sigma_site"])["prior"]
    assert "sigma_site_signed" in model.named_vars and "sigma_site" not in {v.name for v in model.free_RVs}
    assert spec.prior_for("sigma_site") == {"dist": "HalfNormal", "sigma": 1.0}
    assert stats.kstest(np.asarray(prior["sigma_site"]).ravel(), stats.halfnorm(scale=1.0).cdf).pvalue > 0.01


def test_trial_population_of_a_latent_fit_uses_each_draws_latent_scores(latent_fit):
    # assurance over the fitted sites: each draw's latent (true) E, C, F of each site, so the
    # fixed part equals the model's own latent linear predictor for those sites
    from mbct_bayes.planning.predict import latent_fixed_part
    from mbct_bayes.power import assurance, fitted_sites_population

    pop = fitted_sites_population(latent_fit, lever="F", delta=1.0)
    md = latent_fit.model_data
    sites = np.unique(md.site_idx)
    assert pop.profiles.shape == (latent_fit.n_draws, sites.size, 3)
    assert np.allclose(pop.before, latent_fixed_part(latent_fit, sites))
    assert not np.allclose(pop.profiles[0], pop.profiles[1])  # the scores differ between draws
    r = assurance(latent_fit, clusters_per_arm=6, cluster_size=10, sims=200, seed=1)
    assert r["population"] == "fitted_sites" and 0 <= r["assurance"] <= 1


def test_latent_candidates_are_measured_scores_through_the_measurement_model(latent_fit):
    # a latent fit's candidate services give measured means: per draw their true scores come from
    # the measurement model (as predict uses them), so services differ less than their raw means
    from mbct_bayes.planning.measured import true_score_draws
    from mbct_bayes.power import assurance, candidates_population

    sites = latent_fit.data.drop_duplicates("site").head(12)[["site", "region", "E", "C", "F"]].reset_index(drop=True)
    sites["site"] = [f"cand{i}" for i in range(len(sites))]
    with pytest.raises(mb.DataError, match="n_respondents"):
        candidates_population(latent_fit, sites)
    measured = sites.assign(n_respondents=2)
    pop = candidates_population(latent_fit, measured)
    expected = true_score_draws(latent_fit, measured, rng=np.random.default_rng(np.random.SeedSequence(0)))
    assert np.allclose(pop.profiles, expected)
    plug_in = candidates_population(latent_fit, sites, scores_are_true=True)
    # shrinkage: the spread of the fixed part across services is smaller than with the raw means
    assert pop.before.std(axis=1).mean() < plug_in.before.std(axis=1).mean()
    # with very many respondents the true scores approach the measured means
    many = candidates_population(latent_fit, sites.assign(n_respondents=100_000))
    assert np.allclose(many.profiles.mean(axis=0), sites[["E", "C", "F"]].to_numpy(), atol=0.05)
    r = assurance(latent_fit, sites=measured, clusters_per_arm=6, cluster_size=10, sims=200, seed=1)
    assert r["population"] == "candidates" and 0 <= r["assurance"] <= 1


# -- new sites of a latent fit: forecasts from measured scores --------------------------------------
@pytest.fixture(scope="module")
def new_sites():
    """The example's new sites as measured site means (3 respondents each)."""
    return pd.read_csv(EXAMPLE / "new_sites.csv").assign(n_respondents=3)


def test_plain_scores_for_a_latent_fit_name_both_ways(latent_fit, new_sites):
    with pytest.raises(mb.DataError, match=r"--responses FILE, Python responses=\) or an n_respondents column"):
        latent_fit.predict(new_sites.drop(columns="n_respondents"))


def test_scores_are_true_keeps_the_plug_in_and_says_so(latent_fit, new_sites):
    from mbct_bayes.model.build import design_matrix
    from mbct_bayes.planning.predict import fixed_part, group_part, p_embedded, validate_new_data

    plain = new_sites.drop(columns="n_respondents")
    out = latent_fit.predict(plain, scores_are_true=True, seed=4)
    table = validate_new_data(latent_fit, plain)
    eta = fixed_part(latent_fit.draws, design_matrix(table, latent_fit.spec))
    eta = eta + group_part(latent_fit, table, "new_site", np.random.default_rng(4))
    np.testing.assert_allclose(out["p_mean"], p_embedded(latent_fit, eta).mean(axis=0))
    assert set(out["scores"]) == {"taken as true"}


def test_measured_scores_are_shrunk_towards_the_population(latent_fit, new_sites):
    out = latent_fit.predict(new_sites, seed=4)
    assert set(out["scores"]) == {"measured (site means)"}
    centre = latent_fit.draws["latent_mean"].mean(axis=0) + 3.0
    for j, p in enumerate(("E", "C", "F")):
        # each true-score mean lies between the population mean and the measured mean (role mix aside)
        gap_measured = np.abs(new_sites[p] - centre[j])
        gap_true = np.abs(out[f"{p}_true_mean"] - centre[j])
        assert (gap_true < gap_measured + 0.15).all(), (p, out[f"{p}_true_mean"].tolist())
    # and the forecasts differ less between sites than the plug-in's
    plug = latent_fit.predict(new_sites.drop(columns="n_respondents"), scores_are_true=True, seed=4)
    assert out["p_mean"].std() < plug["p_mean"].std()


def test_true_score_draws_are_what_predict_used(latent_fit, new_sites):
    from mbct_bayes.planning.measured import true_score_draws
    from mbct_bayes.planning.predict import group_part, validate_new_data

    rng = np.random.default_rng(4)
    group_part(latent_fit, validate_new_data(latent_fit, new_sites), "new_site", rng)  # predict draws these first
    truth = true_score_draws(latent_fit, new_sites, rng=rng)
    assert truth.shape == (latent_fit.n_draws, len(new_sites), 3)
    out = latent_fit.predict(new_sites, seed=4)
    np.testing.assert_allclose(truth[..., 2].mean(axis=0), out["F_true_mean"])


def test_planning_acts_on_the_true_score_draws(latent_fit, new_sites):
    from mbct_bayes.planning import scenarios as planning
    from mbct_bayes.planning.predict import centred_scores, eta_and_true_scores, fixed_part_centred, p_embedded

    table, measured = planning._prepare(latent_fit, new_sites, "new_site", "sites")
    eta, truth = eta_and_true_scores(latent_fit, table, "new_site", seed=4, measured=measured)
    assert truth[..., 2].max() < 4.95  # F + 0.05 stays on the scale (max 5) in every draw: nothing clipped
    moved = truth + np.array([0.0, 0.0, 0.05])
    draws, spec = latent_fit.draws, latent_fit.spec
    eta_after = (
        eta
        + fixed_part_centred(draws, spec, centred_scores(latent_fit, moved))
        - fixed_part_centred(draws, spec, centred_scores(latent_fit, truth))
    )
    out = planning.what_if(latent_fit, new_sites, {"F": 0.05}, seed=4)
    np.testing.assert_allclose(out["p_before_mean"], p_embedded(latent_fit, eta).mean(axis=0))
    np.testing.assert_allclose(out["p_after_mean"], p_embedded(latent_fit, eta_after).mean(axis=0))
    assert not out["clipped"].any() and set(out["scores"]) == {"measured (site means)"}
    ranked = planning.rank(latent_fit, new_sites, seed=4).set_index("site")
    np.testing.assert_allclose(ranked.loc[out["site"], "p_mean"], out["p_before_mean"])
    steps = planning.levers(latent_fit, new_sites, "sd", seed=4).drop_duplicates("lever").set_index("lever")["step"]
    np.testing.assert_allclose(steps[["E", "C", "F"]], latent_fit.draws["latent_sd"].mean(axis=0))


def test_target_is_a_true_score_that_reaches_the_goal(latent_fit, new_sites):
    """Checked on predict's own draws: set every draw's true F to the target, others as drawn."""
    from mbct_bayes.planning import scenarios as planning
    from mbct_bayes.planning.predict import centred_scores, eta_and_true_scores, fixed_part_centred, p_embedded

    site = new_sites.head(1)
    goal = planning.target(latent_fit, site, "F", p=0.4, prob=0.5, seed=4).iloc[0]
    assert goal["reachable"] and "true F" in goal["message"] and "measured 1.8" in goal["message"]
    table, measured = planning._prepare(latent_fit, site, "new_site", "sites")
    eta, truth = eta_and_true_scores(latent_fit, table, "new_site", seed=4, measured=measured)
    effects = eta - fixed_part_centred(latent_fit.draws, latent_fit.spec, centred_scores(latent_fit, truth))

    def share_reaching(f_value: float) -> float:
        at = truth.copy()
        at[..., 2] = f_value
        p = p_embedded(latent_fit, fixed_part_centred(latent_fit.draws, latent_fit.spec, centred_scores(latent_fit, at)) + effects)
        return float((p >= 0.4).mean())

    # just above the target (its crossing draw sits on the threshold up to rounding), and below
    assert share_reaching(goal["target_value"] + 1e-6) >= 0.5 > share_reaching(goal["target_value"] - 0.05)
    assert goal["prob_at_current"] == pytest.approx(float((p_embedded(latent_fit, eta) >= 0.4).mean()))
    assert goal["current_true_mean"] == pytest.approx(truth[..., 2].mean())


# -- the CLI --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_files(latent_fit, tmp_path_factory):
    """A saved latent fit, two new sites and their survey items (the example's S01, S02 renamed)."""
    folder = tmp_path_factory.mktemp("latent_cli")
    latent_fit.save(folder / "fit.nc")
    items = pd.read_csv(EXAMPLE / "responses.csv", dtype=str)
    items = items[items.site.isin(["S01", "S02"])].replace({"site": {"S01": "NEW1", "S02": "NEW2"}})
    items.to_csv(folder / "items.csv", index=False)
    sites = pd.read_csv(EXAMPLE / "new_sites.csv").head(2)
    sites.to_csv(folder / "sites.csv", index=False)
    return folder


def cli(argv, capsys):
    from mbct_bayes.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_predict_from_survey_items(cli_files, capsys):
    f = cli_files
    code, _, err = cli(["predict", f / "fit.nc", f / "sites.csv", "--out", f / "p.csv",
                        "--responses", f / "items.csv", "--codebook", CODEBOOK], capsys)
    assert code == 0, err
    out = pd.read_csv(f / "p.csv")
    assert list(out["site"]) == ["NEW1", "NEW2"] and set(out["scores"]) == {"measured (responses)"}
    assert "F_true_mean" in out and "measured (responses)" in err


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (None, [], "measured; give respondent-level scores (--responses FILE"),
        ("stray", ["--responses", "items.csv", "--codebook", CODEBOOK], "responses: site 'NEW9' is not in the"),
        ("no-item", ["--responses", "items.csv", "--codebook", CODEBOOK], "codebook item 'E_RE1' missing from the data"),
        ("fraction", [], "'n_respondents' row 1: value 2.5 is not a whole number"),
    ],
    ids=["plain-scores", "stray-site", "codebook-mismatch", "fractional-count"],
)
def test_cli_bad_measured_input_is_exit_2_in_one_line(cli_files, tmp_path, capsys, change, extra, message):
    f = cli_files
    items = pd.read_csv(f / "items.csv", dtype=str)
    sites = pd.read_csv(f / "sites.csv")
    if change == "stray":
        items.loc[0, "site"] = "NEW9"
    elif change == "no-item":
        items = items.drop(columns="E_RE1")
    elif change == "fraction":
        sites["n_respondents"] = [2.5, 3]
    items.to_csv(tmp_path / "items.csv", index=False)
    sites.to_csv(tmp_path / "sites.csv", index=False)
    args = [tmp_path / a if a == "items.csv" else a for a in extra]
    for command in (["predict", f / "fit.nc", tmp_path / "sites.csv", "--out", tmp_path / "p.csv"],
                    ["plan", f / "fit.nc", tmp_path / "sites.csv", "--rank", "--out", tmp_path / "p.csv"]):
        code, _, err = cli([*command, *args], capsys)
        assert code == 2 and message in err and err.strip().count("\n") == 0, err
        assert not (tmp_path / "p.csv").exists()


def test_cli_plan_with_scores_taken_as_true_says_so(cli_files, capsys):
    f = cli_files
    code, out, err = cli(["plan", f / "fit.nc", f / "sites.csv", "--what-if", "F=+0.5", "--json", "--scores-are-true"], capsys)
    assert code == 0, err
    assert len(json.loads(out)) == 2 and "were taken as true" in err


def test_cli_power_assurance_takes_a_latent_fits_candidates_as_measured(cli_files, tmp_path, capsys):
    # a latent fit's candidate services are measured: plain scores are refused in one line naming
    # both ways; site means with n_respondents or the respondents' survey items are accepted
    f = cli_files
    items = pd.read_csv(EXAMPLE / "responses.csv", dtype=str)
    keep = ["S01", "S02", "S03", "S04"]
    items = items[items.site.isin(keep)].replace({"site": {s: f"CAND{i}" for i, s in enumerate(keep)}})
    items.to_csv(tmp_path / "items.csv", index=False)
    sites = pd.read_csv(EXAMPLE / "new_sites.csv").head(4).assign(site=[f"CAND{i}" for i in range(4)])
    sites.to_csv(tmp_path / "plain.csv", index=False)
    sites.assign(n_respondents=3).to_csv(tmp_path / "means.csv", index=False)
    base = ["power", "assurance", f / "fit.nc", "--clusters", 2, "--cluster-size", 10, "--sims", 200, "--seed", 1]
    code, _, err = cli([*base, "--sites", tmp_path / "plain.csv"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "n_respondents" in err and "--responses" in err
    code, out, err = cli([*base, "--sites", tmp_path / "means.csv", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["population"] == "candidates"
    code, out, err = cli([*base, "--sites", tmp_path / "plain.csv", "--responses", tmp_path / "items.csv",
                          "--codebook", CODEBOOK, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["population"] == "candidates"
