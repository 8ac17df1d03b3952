"""Shared fixtures: one fitted model per family per test session.

Plumbing tests use these small fits (few draws); recovery tests fit their own larger data in
tests/test_recovery.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example"
MODELS = ROOT / "models"


def _quick_fit(obs_file: str, spec_file: str, **kwargs):
    import mbct_bayes as mb

    obs = mb.read_observations(EXAMPLE / obs_file)
    spec = mb.ModelSpec.from_toml(MODELS / spec_file)
    with warnings.catch_warnings():
        # few draws: the diagnostics gate may fail, which plumbing tests do not care about
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        return mb.fit(obs, spec, seed=1, draws=kwargs.get("draws", 400), tune=kwargs.get("tune", 400), chains=2)


@pytest.fixture(scope="session")
def example_fit():
    """Bernoulli E + C + F + site model on the bundled example (400 draws × 2 chains)."""
    return _quick_fit("observations.csv", "bernoulli.toml")


@pytest.fixture(scope="session")
def ordinal_fit():
    """Ordinal (none < partial < embedded) model on the bundled ordinal example."""
    return _quick_fit("observations_ordinal.csv", "ordinal.toml")


@pytest.fixture(scope="session")
def binomial_fit():
    """Binomial model with site and region effects on the bundled binomial example."""
    return _quick_fit("observations_binomial.csv", "binomial.toml")


@pytest.fixture(scope="session")
def example_fit_path(example_fit, tmp_path_factory):
    """The example fit saved to a .nc file (for CLI tests)."""
    path = tmp_path_factory.mktemp("fit") / "fit.nc"
    example_fit.save(path)
    return path


# -- count families: simulated access counts with exposure (tests/test_counts.py) -----------------
#: The count recovery design: 40 sites x 5 waves, catchment populations 5,000-50,000 (about 2-15
#: patients reached per wave at mid-scale scores), data seed 11.
COUNT_DESIGN = {"n_sites": 40, "per_site": 5, "n_regions": 0, "seed": 11, "exposure": [5000, 50000]}


def _count_fit(family: str):
    import mbct_bayes as mb
    from mbct_bayes.model.simulate import default_truth, simulate_observations

    truth = default_truth(family, 0)
    truth["exposure"] = COUNT_DESIGN["exposure"]
    obs, truth = simulate_observations(
        COUNT_DESIGN["n_sites"], COUNT_DESIGN["per_site"], family, n_regions=0, seed=COUNT_DESIGN["seed"], truth=truth
    )
    spec = mb.ModelSpec(family=family, exposure="population", rate_per=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)  # the tests check the diagnostics they need
        fit = mb.fit(obs, spec, seed=5, draws=600, tune=600, chains=2)
    return fit, truth, obs


@pytest.fixture(scope="session")
def poisson_fit():
    """Poisson access counts with exposure (population) and rate_per 100,000: (fit, truth, observations)."""
    return _count_fit("poisson")


@pytest.fixture(scope="session")
def negbinomial_fit():
    """Negative binomial access counts with exposure: (fit, truth, observations)."""
    return _count_fit("negbinomial")


@pytest.fixture(scope="session")
def journey_fit():
    """Ordinal transition model (models/journey.toml) of the example journeys (data/example/panel.csv)."""
    return _quick_fit("panel.csv", "journey.toml", draws=300, tune=300)


@pytest.fixture(scope="session")
def journey_fit_path(journey_fit, tmp_path_factory):
    """The journeys' transition fit saved to a .nc file (forecast CLI tests, the battery)."""
    path = tmp_path_factory.mktemp("journey") / "journey.nc"
    journey_fit.save(path)
    return path


@pytest.fixture(scope="session")
def example_scores():
    """Respondent-level E, C, F of the bundled example survey (items scored with the codebook)."""
    import pandas as pd

    from mbct_bayes.survey.scoring import read_codebook, score_responses

    codebook = read_codebook(ROOT / "data" / "codebook_orca_mbct.csv")
    items = pd.read_csv(EXAMPLE / "responses.csv", dtype={"site": str, "respondent": str, "role": str})
    return score_responses(items, codebook)


@pytest.fixture(scope="session")
def latent_example(example_scores):
    """The example's observations, respondent scores and latent spec (models/latent.toml), with a
    site without respondents (NORESP) and a site with a single respondent added."""
    import pandas as pd

    import mbct_bayes as mb

    obs = mb.read_observations(EXAMPLE / "observations.csv")
    extra = pd.DataFrame({"site": ["NORESP"] * 3, "region": ["Wales"] * 3, "wave": [1, 2, 3],
                          "E": [3.0] * 3, "C": [3.0] * 3, "F": [3.0] * 3, "embedded": [0, 1, 0]})
    obs = pd.concat([obs, extra], ignore_index=True)
    one = example_scores.drop_duplicates("site").head(1)  # a site with a single respondent
    scores = pd.concat([example_scores[example_scores.site != one.site.iloc[0]], one], ignore_index=True)
    return obs, scores, mb.ModelSpec.from_toml(MODELS / "latent.toml")


@pytest.fixture(scope="session")
def latent_fit(latent_example):
    """Latent-measurement fit of :func:`latent_example` (200 draws × 2 chains)."""
    import mbct_bayes as mb

    obs, scores, spec = latent_example
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        return mb.fit(obs, spec, responses=scores, seed=1, draws=200, tune=300, chains=2)


# -- parallel test runs (pytest-xdist, `-n auto` in pyproject.toml) -----------------------------------
#: At most this many workers: each worker fits the session fixtures it needs (a few GB of memory
#: at most), so many cores would buy little and cost memory.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per usable core, at most :data:`MAX_WORKERS`."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))
