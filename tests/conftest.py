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
