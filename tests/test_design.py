"""The design matrix (mbct_bayes.model.design): numeric predictors, categorical covariates, interactions.

Exact tests against hand-built matrices, the reference-level rules, the one-line errors, the
saved-and-loaded fit, a recovery fit of a 3-level categorical from a known truth, and the CLI
fitting a file whose covariate column holds text.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import mbct_bayes as mb
from mbct_bayes.cli.main import main
from mbct_bayes.errors import DataError
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.design import (
    coef_names,
    default_reference,
    design_from_parts,
    design_matrix,
    numeric_predictors,
    reference_notes,
    resolve,
)
from mbct_bayes.schema import validate_observations
from mbct_bayes.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"
# the toy tables have 3 sites; the weak-data warnings are not what these tests check
pytestmark = pytest.mark.filterwarnings("ignore::mbct_bayes.schema.DataWarning")

#: The simulated world of the recovery fit: log-odds relative to the reference level 'primary'.
TRUTH = {"Intercept": -0.2, "E": 0.3, "C": 0.0, "F": 0.5, "setting[secondary]": 0.8, "setting[tertiary]": -0.7}
SIGMA_SITE = 0.3
#: No [categorical] entry: the 'setting' column holds text, so it is categorical with the default
#: reference (the most frequent level, 'primary' at 50%). The CLI test fits the same spec and data, so
#: it reuses the fixture's compiled model.
SPEC_TOML = 'family = "bernoulli"\npredictors = ["E", "C", "F", "setting"]\n'
EXPLICIT_TOML = SPEC_TOML + '\n[categorical]\nsetting = "primary"\n'


def _table(settings: list[str], **extra) -> pd.DataFrame:
    n = len(settings)
    base = {
        "site": [f"S{i % 3}" for i in range(n)],
        "E": np.linspace(1, 5, n),
        "C": np.linspace(5, 1, n),
        "F": [1.0, 2.0, 3.0, 4.0, 5.0, 2.5][:n],
        "setting": settings,
        "embedded": [i % 2 for i in range(n)],
    }
    return pd.DataFrame({**base, **extra})


# -- the matrix itself ---------------------------------------------------------------------------
def test_design_matrix_equals_hand_built_matrix():
    """Numeric (centred at 3), categorical (reference 'primary'), setting:F and C:F, written out by hand."""
    spec = ModelSpec(
        predictors=("E", "C", "F", "setting"),
        interactions=(("setting", "F"), ("C", "F")),
        categorical={"setting": "primary"},
    )
    settings = ["primary", "secondary", "tertiary", "secondary", "primary", "tertiary"]
    table = validate_observations(_table(settings), spec)
    fitted = resolve(spec, table)
    E, C, F = table["E"].to_numpy() - 3, table["C"].to_numpy() - 3, table["F"].to_numpy() - 3
    sec = np.array([0, 1, 0, 1, 0, 0], dtype=float)
    ter = np.array([0, 0, 1, 0, 0, 1], dtype=float)
    hand = np.column_stack([E, C, F, sec, ter, sec * F, ter * F, C * F])
    assert coef_names(fitted) == fitted.coef_names == (
        "E", "C", "F", "setting[secondary]", "setting[tertiary]",
        "setting[secondary]:F", "setting[tertiary]:F", "C:F",
    )
    np.testing.assert_array_equal(design_matrix(table, fitted), hand)
    assert prepare_data(table, spec).coef_names == fitted.coef_names
    np.testing.assert_array_equal(prepare_data(table, spec).X, hand)


def test_numeric_spec_matrix_is_unchanged():
    """Specs without categoricals: X is exactly the centred columns and the products, as before."""
    spec = ModelSpec.from_toml(MODELS / "interaction.toml")
    table = validate_observations(mb.read_observations(EXAMPLE / "observations.csv"), spec)
    assert resolve(spec, table) is spec
    centred = {p: table[p].to_numpy(dtype=float) - spec.center[p] for p in spec.predictors}
    hand = np.column_stack([centred[p] for p in spec.predictors]
                           + [centred[a] * centred[b] for a, b in spec.interactions])
    assert np.array_equal(design_matrix(table, spec), hand)
    assert spec.coef_names == (*spec.predictors, *(f"{a}:{b}" for a, b in spec.interactions))


def test_interaction_of_two_categoricals_is_every_pair_of_levels_first_term_outer():
    spec = ModelSpec(predictors=("setting", "sector"), interactions=(("setting", "sector"),),
                     categorical={"setting": "a", "sector": "x"})
    table = validate_observations(
        _table(["a", "b", "c", "b", "c", "a"], sector=["x", "y", "z", "z", "y", "x"]).drop(columns=["E", "C", "F"]),
        spec,
    )
    fitted = resolve(spec, table)
    assert fitted.coef_names == (
        "setting[b]", "setting[c]", "sector[y]", "sector[z]",
        "setting[b]:sector[y]", "setting[b]:sector[z]", "setting[c]:sector[y]", "setting[c]:sector[z]",
    )
    b, c = np.array([0, 1, 0, 1, 0, 0.0]), np.array([0, 0, 1, 0, 1, 0.0])
    y, z = np.array([0, 1, 0, 0, 1, 0.0]), np.array([0, 0, 1, 1, 0, 0.0])
    hand = np.column_stack([b, c, y, z, b * y, b * z, c * y, c * z])
    np.testing.assert_array_equal(design_matrix(table, fitted), hand)


def test_parts_kernel_keeps_leading_axes_and_defaults_to_the_reference():
    spec = resolve(
        ModelSpec(predictors=("F", "setting"), interactions=(("F", "setting"),)),
        pd.DataFrame({"F": [1.0, 2.0], "setting": ["a", "b"]}).astype({"setting": "str"}),
    )
    rows = np.arange(12, dtype=float).reshape(3, 4, 1)  # 3 draws, 4 rows, F centred
    X = design_from_parts(spec, rows, {"setting": np.array(["a", "b", "b", "a"], dtype=object)})
    assert X.shape == (3, 4, 3)
    np.testing.assert_array_equal(X[1, :, 1], [0, 1, 1, 0])
    np.testing.assert_array_equal(X[..., 2], rows[..., 0] * X[..., 1])
    at_reference = design_from_parts(spec, rows)
    np.testing.assert_array_equal(at_reference[..., 1:], 0.0)


# -- the reference level -------------------------------------------------------------------------
def test_default_reference_is_the_most_frequent_level_ties_alphabetical():
    assert default_reference(["b", "c", "c", "a", "b", "c"]) == "c"
    assert default_reference(["tertiary", "secondary", "secondary", "tertiary", "primary"]) == "secondary"
    spec = ModelSpec(predictors=("E", "setting"))  # no [categorical] entry: text makes it categorical
    table = validate_observations(_table(["z", "y", "y", "x", "z", "x"]), spec)
    fitted = resolve(spec, table)
    assert fitted.categorical["setting"] == {"reference": "x", "levels": ("x", "y", "z"), "default": True}
    assert fitted.coef_names == ("E", "setting[y]", "setting[z]")
    assert reference_notes(fitted) == [
        "setting: reference 'x' (the most frequent level in the fitted data); coefficients setting[level] "
        "for y, z are log-odds relative to it"
    ]


def test_explicit_reference_from_the_toml_table(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(EXPLICIT_TOML.replace('"primary"', '"tertiary"'))
    spec = ModelSpec.from_toml(path)
    table = validate_observations(_table(["primary", "primary", "secondary", "tertiary", "primary", "secondary"]), spec)
    fitted = resolve(spec, table)
    assert fitted.categorical["setting"]["reference"] == "tertiary" and not fitted.categorical["setting"]["default"]
    assert fitted.coef_names[-2:] == ("setting[primary]", "setting[secondary]")
    np.testing.assert_array_equal(design_matrix(table, fitted)[:, -2:], [[1, 0], [1, 0], [0, 1], [0, 0], [1, 0], [0, 1]])
    assert "(set in the spec)" in reference_notes(fitted)[0]
    # the fitted spec round-trips through TOML and dict, levels included
    again = tmp_path / "fitted.toml"
    again.write_text(fitted.to_toml())
    assert ModelSpec.from_toml(again) == fitted == ModelSpec.from_dict(fitted.to_dict())


def test_numbers_as_level_labels():
    """A categorical column of codes (nation 1-4) is read as labels '1'..'4', not as a number."""
    spec = ModelSpec(predictors=("E", "nation"), categorical={"nation": 2})
    table = validate_observations(_table(["x"] * 6).assign(nation=[1, 2, 2, 3, 4, 1]), spec)
    fitted = resolve(spec, table)
    assert fitted.coef_names == ("E", "nation[1]", "nation[3]", "nation[4]")


# -- bad input: one line each ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ModelSpec(predictors=("E",), categorical={"setting": "a"}),
         r"^\[categorical\] names 'setting', which is not a predictor \(E\); add it to predictors$"),
        (lambda: ModelSpec(predictors=("E", "setting"), categorical={"setting": "a"}, center={"setting": 1}),
         r"^center\.setting is set, but 'setting' is categorical \(no centring or scale\); remove it$"),
        (lambda: ModelSpec(predictors=("E", "setting"), categorical={"setting": 1.5}),
         r"^\[categorical\] setting: a level is text \(or a whole number\), e\.g\. \"primary\"; got 1\.5$"),
        (lambda: ModelSpec(predictors=("E", "setting"), categorical={"setting": "a"}, measurement="latent"),
         r"^measurement = \"latent\" takes E, C, F-like scores only; remove the \[categorical\] entries$"),
    ],
)
def test_bad_specs(make, message):
    with pytest.raises(DataError, match=message):
        make()


def test_unseen_level_is_one_line_naming_column_level_and_known_levels():
    spec = ModelSpec(predictors=("E", "C", "F", "setting"))
    fitted = resolve(spec, validate_observations(_table(["a", "b", "a", "b", "c", "a"]), spec))
    new = _table(["a", "d", "b", "a", "a", "a"])
    expected = (r"^sites: column 'setting' row 2: level 'd' was not in the fitted data \(known levels: a, b, c\); "
                r"use one of them, or refit with data that include it$")
    with pytest.raises(DataError, match=expected):
        validate_observations(new, fitted, source="sites", new_data=True)
    with pytest.raises(DataError, match=r"^column 'setting': level 'd' was not in the fitted data \(known levels: a, b, c\)"):
        design_matrix(new, fitted)


@pytest.mark.parametrize(
    ("settings", "spec_kwargs", "message"),
    [
        (["a", None, "b", "a", "a", "b"], {},
         r"^observations: column 'setting' row 2: missing category; fill it in or drop the row$"),
        (["a", "a", "a", "a", "a", "a"], {},
         r"^categorical covariate 'setting' has a single level 'a' in the data; it needs at least two levels"),
        (["a", "b", "a", "b", "a", "b"], {"categorical": {"setting": "primary"}},
         r"^\[categorical\] setting = 'primary': that reference level is not in the data \(levels: a, b\); name one"),
        (["a", "b", "a", "b", "a", "b"], {"priors": {"setting[c]": {"dist": "Normal", "mu": 0, "sigma": 1}}},
         r"^\[priors\] names 'setting\[c\]', which is not a coefficient of this model with these data's levels"),
    ],
)
def test_bad_categorical_data(settings, spec_kwargs, message):
    spec = ModelSpec(predictors=("E", "setting"), **spec_kwargs)
    with pytest.raises(DataError, match=message):
        prepare_data(validate_observations(_table(settings), spec), spec)


def test_a_score_with_a_typo_is_still_not_a_number():
    """Only a column with no scale and no numbers at all becomes categorical; a typo in E does not."""
    spec = ModelSpec(predictors=("E", "C", "F"))
    with pytest.raises(DataError, match=r"column 'E' row 2: value 'high' is not a number"):
        validate_observations(_table(["x"] * 6).assign(E=[1, "high", 3, 4, 5, 2]), spec)
    mixed = ModelSpec(predictors=("E", "size"))
    with pytest.raises(DataError, match=r"column 'size' row 2: value 'big' is not a number"):
        validate_observations(_table(["x"] * 6).assign(size=[1, "big", 3, 4, 5, 2]), mixed)


# -- fitting: recovery, save and load, planning, CLI ----------------------------------------------
def _simulated(seed: int = 11, n_sites: int = 40, per_site: int = 30) -> pd.DataFrame:
    """Bernoulli rows from TRUTH: each row's setting drawn 50/30/20 (primary/secondary/tertiary)."""
    rng = np.random.default_rng(seed)
    n = n_sites * per_site
    site = np.repeat(np.arange(n_sites), per_site)
    setting = rng.choice(["primary", "secondary", "tertiary"], n, p=[0.5, 0.3, 0.2])
    x = {p: rng.uniform(1, 5, n).round(2) for p in ("E", "C", "F")}
    eta = TRUTH["Intercept"] + sum(TRUTH[p] * (x[p] - 3) for p in ("E", "C", "F"))
    eta = eta + np.select([setting == "secondary", setting == "tertiary"],
                          [TRUTH["setting[secondary]"], TRUTH["setting[tertiary]"]], 0.0)
    eta = eta + rng.normal(0, SIGMA_SITE, n_sites)[site]
    return pd.DataFrame({"site": [f"S{i:02d}" for i in site], **x, "setting": setting,
                         "embedded": rng.binomial(1, expit(eta))})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The simulated data as CSV, the spec as TOML, and a fit of them (500 draws x 2 chains)."""
    folder = tmp_path_factory.mktemp("design")
    obs, spec_path = folder / "obs.csv", folder / "spec.toml"
    _simulated().to_csv(obs, index=False)
    spec_path.write_text(SPEC_TOML)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = mb.fit(obs, ModelSpec.from_toml(spec_path), seed=3, draws=500, tune=500, chains=2)
    return {"obs": obs, "spec": spec_path, "fit": fit, "folder": folder}


def test_recovery_of_a_three_level_categorical(world):
    """Posterior means within 3 posterior SDs (and 0.35) of the truth; the reference level is 0 by construction."""
    s = world["fit"].summary()
    assert list(s["coefficients"]) == ["Intercept", "E", "C", "F", "setting[secondary]", "setting[tertiary]"]
    for name, truth in TRUTH.items():
        c = s["coefficients"][name]
        assert abs(c["mean"] - truth) < min(3 * c["sd"], 0.35), (name, c["mean"], truth)
    # the two level effects are told apart: secondary above tertiary with posterior probability ~1
    beta = world["fit"].draws["beta"]
    assert (beta[:, 3] > beta[:, 4]).mean() > 0.99
    assert s["categorical"]["setting"] == {
        "reference": "primary", "levels": ["primary", "secondary", "tertiary"], "default": True,
        "note": "setting: reference 'primary' (the most frequent level in the fitted data); coefficients "
                "setting[level] for secondary, tertiary are log-odds relative to it",
    }


def test_saved_and_loaded_fit_rebuilds_the_same_matrix(world, tmp_path):
    fit = world["fit"]
    loaded = mb.load_fit(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec == fit.spec and loaded.spec.categorical["setting"]["levels"] == ("primary", "secondary", "tertiary")
    assert np.array_equal(loaded.model_data.X, fit.model_data.X)
    assert loaded.model_data.coef_names == fit.model_data.coef_names
    new = pd.DataFrame({"site": ["N1", "N2"], "E": [3.0, 3.0], "C": [3.0, 3.0], "F": [3.0, 3.0],
                        "setting": ["secondary", "primary"]})
    pd.testing.assert_frame_equal(loaded.predict(new, seed=4), fit.predict(new, seed=4))
    # typical sites at the centre: the logit gap between the two rows is exactly beta[secondary]
    p = loaded.predict(new, kind="typical_site")
    from mbct_bayes.planning.predict import fixed_part

    X = design_matrix(validate_observations(new, loaded.spec, new_data=True), loaded.spec)
    eta = fixed_part(loaded.draws, X)
    np.testing.assert_allclose(eta[:, 0] - eta[:, 1], loaded.draws["beta"][:, 3], rtol=0, atol=1e-12)
    assert p["p_mean"].iloc[0] > p["p_mean"].iloc[1]
    with pytest.raises(DataError, match=r"level 'rural' was not in the fitted data \(known levels: primary, secondary, tertiary\)"):
        loaded.predict(new.assign(setting=["rural", "primary"]))


def test_a_categorical_is_not_a_lever(world):
    from mbct_bayes.planning import scenarios
    from mbct_bayes.planning.predict import trial_inputs
    from mbct_bayes.power._population import fitted_sites_population

    fit = world["fit"]
    sites = fit.data.drop_duplicates("site").head(4)
    levers = scenarios.levers(fit, sites, 1.0, "new_site")
    assert set(levers["lever"]) == set(numeric_predictors(fit.spec)) == {"E", "C", "F"}
    message = r"is a categorical covariate, which an intervention does not move; choose one of E, C, F"
    with pytest.raises(DataError, match=r"^change 'setting' " + message + "$"):
        scenarios.what_if(fit, sites, {"setting": 1})
    with pytest.raises(DataError, match=r"^lever 'setting' " + message):
        trial_inputs(fit, lever="setting")
    with pytest.raises(DataError, match=r"^lever 'setting' " + message + r" \(--lever\)$"):
        fitted_sites_population(fit, lever="setting")
    # a trial profile at another level moves the baseline by exactly that level's coefficient
    at_ref, at_sec = trial_inputs(fit, lever="F"), trial_inputs(fit, lever="F", profile={"setting": "secondary"})
    np.testing.assert_allclose(at_sec["baseline_logit"] - at_ref["baseline_logit"], fit.draws["beta"][:, 3], atol=1e-12)


def test_power_population_keeps_each_sites_level(world):
    """Each fitted site's baseline logit uses its own level (its rows' most frequent)."""
    from mbct_bayes.power._population import fitted_sites_population

    fit = world["fit"]
    pop = fitted_sites_population(fit, lever="F", delta=1.0)
    assert pop.predictors == ("E", "C", "F")
    i = 0
    rows = fit.data[fit.data["site"] == pop.labels[i]]
    level = default_reference(rows["setting"])
    x = rows[["E", "C", "F"]].mean().to_numpy() - 3.0
    dummy = {"primary": [0, 0], "secondary": [1, 0], "tertiary": [0, 1]}[level]
    hand = fit.draws["Intercept"] + fit.draws["beta"] @ np.concatenate([x, dummy])
    np.testing.assert_allclose(pop.before[:, i], hand, atol=1e-12)


def test_cli_fit_with_a_text_column(world, capsys, tmp_path):
    """`mbct-bayes fit` on a CSV whose covariate holds text, with no [categorical] entry: default reference."""
    spec = tmp_path / "plain.toml"
    spec.write_text(SPEC_TOML)
    fit_path = tmp_path / "fit.nc"
    code = main(["fit", str(world["obs"]), "--model", str(spec), "--out", str(fit_path),
                 "--draws", "30", "--tune", "30", "--chains", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert [k for k in summary["coefficients"] if k.startswith("setting")] == ["setting[secondary]", "setting[tertiary]"]
    assert summary["categorical"]["setting"]["reference"] == "primary" and summary["categorical"]["setting"]["default"]
    code = main(["summary", str(fit_path)])
    out, _ = capsys.readouterr()
    assert code == 0 and "categorical setting: reference 'primary' (the most frequent level in the fitted data)" in out
    assert "setting[tertiary]: OR vs reference" in out


def test_report_names_the_reference_level(world):
    from mbct_bayes.report import section_coefficients, section_model

    fit = world["fit"]
    summary = fit.summary()
    model = str(section_model(fit, summary))
    assert ("Categorical covariates (treatment coding: one 0/1 column per level other than the reference): "
            "setting: reference &#x27;primary&#x27; (the most frequent level in the fitted data)") in model
    assert "β_setting[tertiary]·[setting = tertiary]" in model
    assert "each categorical covariate at its reference level" in model
    assert "relative to the reference level: setting: reference &#x27;primary&#x27;" in str(section_coefficients(fit, summary))


def test_forest_plot_labels_a_level_against_its_reference(world):
    from mbct_bayes.plots.model import forest_plot

    fig = forest_plot(world["fit"], show_prior=False)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "setting[secondary] (vs primary)" in labels and "setting[tertiary] (vs primary)" in labels


def test_cli_validate_reports_a_text_column_as_levels(tmp_path, capsys):
    obs, spec = tmp_path / "obs.csv", tmp_path / "spec.toml"
    _simulated(n_sites=6, per_site=5).to_csv(obs, index=False)
    spec.write_text(SPEC_TOML)
    assert main(["validate", str(obs), "--model", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["predictors"]["setting"]["levels"].values()) == 30
    assert set(report["predictors"]["setting"]["levels"]) <= {"primary", "secondary", "tertiary"}
    assert main(["validate", str(obs), "--model", str(spec)]) == 0
    assert "setting (categorical): primary " in capsys.readouterr().out
