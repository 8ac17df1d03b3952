"""The typed posterior boundary (mbct_bayes.model.posterior): built once from a fit's draws, read-only,
chains stacked chain-major, dimensions and coordinates named. No sampling here: a hand-made posterior
group with known values."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import mbct_bayes as mb
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.fit import Fit, posterior_arrays
from mbct_bayes.model.posterior import SAMPLE_DIM, Posterior, as_posterior

CHAINS, DRAWS, SITES = 2, 3, 4


def tiny_idata() -> xr.DataTree:
    """A posterior group whose value at (chain c, draw d) is 10 c + d, so the stacking order shows."""
    cd = 10.0 * np.arange(CHAINS)[:, None] + np.arange(DRAWS)[None, :]
    sites = [f"s{j}" for j in range(SITES)]
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), cd),
            "beta": (("chain", "draw", "predictor"), cd[..., None] + np.array([0.1, 0.2, 0.3])),
            "sigma_site": (("chain", "draw"), 1.0 + cd),
            "u_site": (("chain", "draw", "site"), cd[..., None] + np.arange(SITES) / 100),
        },
        coords={"chain": [0, 1], "draw": [0, 1, 2], "predictor": ["E", "C", "F"], "site": sites},
    )
    return xr.DataTree.from_dict({"posterior": post})


def tiny_data() -> tuple[mb.ModelSpec, pd.DataFrame]:
    spec = mb.ModelSpec()
    table = pd.DataFrame({
        "site": [f"s{j}" for j in range(SITES) for _ in range(2)],
        "E": np.linspace(1, 5, 2 * SITES), "C": 3.0, "F": np.linspace(5, 1, 2 * SITES),
        "embedded": [0, 1] * SITES,
    })
    return spec, table


@pytest.fixture
def posterior() -> Posterior:
    spec, table = tiny_data()
    return Posterior.from_idata(spec, prepare_data(table, spec), tiny_idata())


def test_draws_are_stacked_chain_major(posterior):
    # row s = chain * DRAWS + draw holds the value of (chain, draw): 0, 1, 2, 10, 11, 12
    np.testing.assert_array_equal(posterior.draws["Intercept"], [0, 1, 2, 10, 11, 12])
    assert posterior.draws["beta"].shape == (CHAINS * DRAWS, 3)
    np.testing.assert_allclose(posterior.draws["beta"][4], [11.1, 11.2, 11.3])
    np.testing.assert_allclose(posterior.draws["u_site"][3], 10 + np.arange(SITES) / 100)
    assert posterior.n_draws == CHAINS * DRAWS


def test_draw_dimension_order_does_not_matter():
    # a group stored (draw, chain) stacks to the same rows
    spec, table = tiny_data()
    tree = tiny_idata()
    swapped = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset().transpose("draw", "chain", ...)})
    a = Posterior.from_idata(spec, prepare_data(table, spec), tree)
    b = Posterior.from_idata(spec, prepare_data(table, spec), swapped)
    for name in a.draws:
        np.testing.assert_array_equal(a.draws[name], b.draws[name])


def test_dims_and_coords_are_named(posterior):
    assert posterior.dims["Intercept"] == (SAMPLE_DIM,)
    assert posterior.dims["beta"] == (SAMPLE_DIM, "predictor")
    assert posterior.dims["u_site"] == (SAMPLE_DIM, "site")
    assert posterior.coords == {"predictor": ("E", "C", "F"), "site": ("s0", "s1", "s2", "s3")}
    ds = posterior.to_dataset()
    assert ds["u_site"].dims == (SAMPLE_DIM, "site")
    assert ds["beta"].sel(predictor="C").values.tolist() == pytest.approx([0.2, 1.2, 2.2, 10.2, 11.2, 12.2])


def test_draws_are_read_only(posterior):
    with pytest.raises(ValueError, match="read-only"):
        posterior.draws["beta"][0, 0] = 99.0
    with pytest.raises(AttributeError):
        posterior.spec = mb.ModelSpec(family="binomial")  # frozen


def test_thinned_keeps_the_chosen_draws_and_shares_spec_and_data(posterior):
    sub = posterior.thinned(np.array([0, 5]))
    np.testing.assert_array_equal(sub.draws["Intercept"], [0, 12])
    assert sub.n_draws == 2
    assert sub.spec is posterior.spec and sub.model_data is posterior.model_data
    assert sub.dims == posterior.dims and sub.coords == posterior.coords
    assert not sub.draws["beta"].flags.writeable


def test_from_draws_names_unnamed_dimensions():
    spec, table = tiny_data()
    p = Posterior.from_draws(spec, prepare_data(table, spec), {"beta": np.zeros((5, 3)), "sigma_site": np.ones(5)},
                             dims={"beta": (SAMPLE_DIM, "predictor")})
    assert p.dims == {"beta": (SAMPLE_DIM, "predictor"), "sigma_site": (SAMPLE_DIM,)}
    q = Posterior.from_draws(spec, prepare_data(table, spec), {"u_site": np.zeros((5, SITES))})
    assert q.dims["u_site"] == (SAMPLE_DIM, "u_site_dim_0")


def test_fit_builds_its_posterior_once_and_reads_draws_from_it():
    spec, table = tiny_data()
    tree = tiny_idata()
    fit = Fit(spec=spec, data=table, idata=tree, model_data=prepare_data(table, spec))
    assert fit.posterior is fit.posterior
    assert fit.draws is fit.posterior.draws
    assert fit.n_draws == CHAINS * DRAWS
    assert as_posterior(fit) is fit.posterior and as_posterior(fit.posterior) is fit.posterior
    # the module-level helper stacks the same way
    for name, values in posterior_arrays(tree).items():
        np.testing.assert_array_equal(values, fit.draws[name])
    # a fit with its posterior pickles (process pools send fits to workers)
    again = pickle.loads(pickle.dumps(fit))
    np.testing.assert_array_equal(again.draws["u_site"], fit.draws["u_site"])
