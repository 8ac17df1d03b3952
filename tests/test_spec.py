"""ModelSpec: defaults, validation messages, TOML round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mbct_bayes.errors import DataError
from mbct_bayes.spec import COEF_SCALE, ModelSpec

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_defaults_are_parihs():
    spec = ModelSpec()
    assert spec.family == "bernoulli" and spec.outcome == "embedded"
    assert spec.predictors == ("E", "C", "F")
    assert spec.center == {"E": 3.0, "C": 3.0, "F": 3.0}
    assert spec.scale == {"E": (1.0, 5.0), "C": (1.0, 5.0), "F": (1.0, 5.0)}


def test_other_covariates_are_not_centred_or_bounded():
    spec = ModelSpec(predictors=("E", "C", "F", "staff"))
    assert spec.center["staff"] == 0.0 and spec.scale["staff"] is None


def test_ordinal_defaults_and_binomial_trials():
    assert ModelSpec(family="ordinal").levels == ("none", "partial", "embedded")
    assert ModelSpec(family="ordinal").outcome == "level"
    assert ModelSpec(family="binomial").trials == "trials"


def test_autoscaled_coefficient_prior():
    # rstanarm's autoscaling: Normal(0, 2.5 / sd(x))
    prior = ModelSpec().prior_for("E", predictor_sd=0.5)
    assert prior == {"dist": "Normal", "mu": 0.0, "sigma": COEF_SCALE / 0.5}


def test_override_wins_over_default():
    spec = ModelSpec(priors={"F": {"dist": "Normal", "mu": 0.5, "sigma": 0.3}})
    assert spec.prior_for("F", predictor_sd=2.0) == {"dist": "Normal", "mu": 0.5, "sigma": 0.3}


@pytest.mark.parametrize("name", ["bernoulli", "binomial", "ordinal", "interaction"])
def test_shipped_specs_round_trip_through_toml(name):
    spec = ModelSpec.from_toml(MODELS / f"{name}.toml")
    assert ModelSpec.from_dict(tomllib.loads(spec.to_toml())) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_interaction_names():
    spec = ModelSpec(interactions=(("C", "F"),))
    assert spec.coef_names == ("E", "C", "F", "C:F")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "gamma"}, "family 'gamma' is not one of bernoulli, binomial, ordinal, poisson, negbinomial"),
        ({"family": "ordinal", "levels": ("lo", "hi")}, "levels needs at least 3"),
        ({"family": "ordinal", "levels": ("a", "b", "a")}, "levels has duplicates"),
        ({"levels": ("a", "b", "c")}, "'levels' is only for family = \"ordinal\""),
        ({"trials": "n"}, "'trials' is only for family = \"binomial\""),
        ({"predictors": ()}, "predictors is empty"),
        ({"predictors": ("E", "E")}, "predictors has duplicates"),
        ({"predictors": ("E", "site")}, "predictor 'site' is also the group"),
        ({"center": {"X": 1}}, "center names 'X', which is not a predictor"),
        ({"scale": {"E": [5, 1]}}, "scale.E needs finite min < max"),
        ({"interactions": (("C", "Z"),)}, "interaction C:Z names 'Z', which is not a predictor"),
        ({"interactions": (("C", "F"), ("F", "C"))}, "interaction F:C is listed twice"),
        ({"priors": {"beta_E": {"dist": "Normal", "sigma": 1}}}, "\\[priors\\] names 'beta_E'"),
        ({"priors": {"E": {"dist": "Gamma", "alpha": 1}}}, "unknown dist 'Gamma'"),
        ({"priors": {"E": {"dist": "Normal", "sigma": -1}}}, "sigma must be > 0"),
        ({"priors": {"E": {"dist": "Normal", "mu": 0}}}, "Normal needs 'sigma'"),
        ({"priors": {"sigma_site": {"dist": "Normal", "sigma": 1}}}, "is a standard deviation"),
        ({"priors": {"E": {"dist": "HalfNormal", "sigma": 1}}}, "can be negative"),
        ({"measurement": "exact"}, "measurement 'exact' is not one of observed, latent"),
        ({"role_offsets": True}, "role_offsets = true needs measurement"),
        (
            {"measurement": "latent", "role_offsets": True,
             "priors": {"role_offset": {"dist": "Cauchy", "alpha": 0, "beta": 1}}},
            "priors.role_offset\\] must be .* only sigma can be set",
        ),
        (
            {"measurement": "latent", "role_offsets": True,
             "priors": {"role_offset": {"dist": "Normal", "mu": 0.3, "sigma": 1}}},
            "role offsets sum to zero over roles",
        ),
    ],
)
def test_bad_spec_messages(kwargs, message):
    with pytest.raises(DataError, match=message):
        ModelSpec(**kwargs)


def test_unknown_key_in_toml_names_the_file_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('family = "bernoulli"\npredictor = ["E"]\n')
    with pytest.raises(DataError, match=r"bad.toml: unknown key 'predictor' in the model spec; allowed keys:"):
        ModelSpec.from_toml(path)


def test_invalid_toml_is_a_data_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("family = \n")
    with pytest.raises(DataError, match=r"bad\.toml: not valid TOML"):
        ModelSpec.from_toml(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(DataError, match="model spec not found"):
        ModelSpec.from_toml(tmp_path / "nope.toml")


def test_ordinal_levels_may_be_numbers():
    spec = ModelSpec(family="ordinal", levels=(0, 1, 2))
    assert spec.levels == (0, 1, 2) and spec.n_levels == 3


def test_empty_spec_file_is_refused(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("\n# nothing here\n")
    with pytest.raises(DataError, match="the model spec is empty"):
        ModelSpec.from_toml(path)
