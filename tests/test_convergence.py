"""Vectorised R-hat and ESS against ArviZ's reference kernels, and the gate built on them."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from arviz_stats.base import array_stats

from mbct_bayes.model import convergence as cv
from mbct_bayes.model.fit import diagnostics


def _ar1(rng, chains, draws, params, phi):
    x = np.zeros((chains, draws, params))
    noise = rng.normal(size=x.shape)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _cases():
    rng = np.random.default_rng(20261127)
    shifted = rng.normal(size=(4, 200, 3)) + np.arange(4)[:, None, None]  # chains disagree
    alternating = np.cumsum(rng.normal(size=(2, 50, 3)), axis=1) * (-1.0) ** np.arange(50)[None, :, None]
    return {
        "iid": rng.normal(size=(4, 1000, 30)),
        "ar(0.9)": _ar1(rng, 4, 1000, 10, 0.9),
        "ar(0.99)": _ar1(rng, 4, 500, 5, 0.99),
        "chains disagree": shifted,
        "ties (integers)": rng.integers(0, 5, size=(4, 300, 6)).astype(float),
        "odd draws": rng.normal(size=(3, 101, 4)),
        "negative autocorrelation": alternating,
        "skewed": rng.lognormal(sigma=2.0, size=(4, 400, 5)),
    }


def _arviz(x):
    per_param = np.moveaxis(x, 2, 0)  # arviz_stats' array interface: (..., chain, draw)
    return {
        "r_hat": array_stats.rhat(per_param),
        "ess_bulk": array_stats.ess(per_param, method="bulk"),
        "ess_tail": array_stats.ess(per_param, method="tail", prob=(0.05, 0.95)),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_matches_arviz_kernels(name):
    x = _cases()[name]
    ours = cv.diagnose(x)
    reference = _arviz(x)
    for key in ("r_hat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-10, err_msg=f"{name}: {key}")
    # the one-at-a-time functions agree with the shared pass
    np.testing.assert_array_equal(cv.rhat(x), ours["r_hat"])
    np.testing.assert_array_equal(cv.ess_bulk(x), ours["ess_bulk"])
    np.testing.assert_array_equal(cv.ess_tail(x), ours["ess_tail"])


def test_detects_what_it_should():
    rng = np.random.default_rng(3)
    good = cv.diagnose(rng.normal(size=(4, 1000, 1)))
    assert good["r_hat"][0] < 1.01 and good["ess_bulk"][0] > 3000
    stuck = cv.diagnose(_ar1(rng, 4, 1000, 1, 0.99))
    assert stuck["ess_bulk"][0] < 200
    apart = cv.diagnose(rng.normal(size=(4, 1000, 1)) + np.array([0, 0, 0, 1.0])[:, None, None])
    assert apart["r_hat"][0] > 1.05
    # equal location and scale, different tails: only the folded R-hat sees it
    heavy = rng.standard_t(2, size=(2, 1000))
    light = rng.normal(size=(2, 1000)) * np.std(heavy) / 1.0
    tails = np.concatenate([heavy, light])[..., None]
    assert cv.rhat(tails)[0] > 1.01


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # ArviZ's own 0/0
def test_nan_few_draws_one_chain_and_constants_match_arviz():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 100, 3))
    x[2, 10, 1] = np.nan
    out = cv.diagnose(x)
    assert np.isnan(out["r_hat"][1]) and np.isnan(out["ess_bulk"][1]) and np.isnan(out["ess_tail"][1])
    assert np.isfinite(out["r_hat"][[0, 2]]).all()
    np.testing.assert_allclose(out["ess_bulk"][[0, 2]], _arviz(x[..., [0, 2]])["ess_bulk"], rtol=1e-10)

    one_chain = rng.normal(size=(1, 200, 2))
    out = cv.diagnose(one_chain)
    assert np.isnan(out["r_hat"]).all()  # R-hat needs two chains
    np.testing.assert_allclose(out["ess_bulk"], _arviz(one_chain)["ess_bulk"], rtol=1e-10)

    assert np.isnan(cv.diagnose(rng.normal(size=(4, 3, 2)))["ess_bulk"]).all()  # < 4 draws

    constant = np.ones((4, 100, 1))
    np.testing.assert_array_equal(cv.ess_bulk(constant), _arviz(constant)["ess_bulk"])


def test_tail_ess_uses_5_and_95_percent_not_arviz_default():
    x = _ar1(np.random.default_rng(8), 4, 1000, 4, 0.8)
    per_param = np.moveaxis(x, 2, 0)
    default_89 = array_stats.ess(per_param, method="tail", prob=(0.11, 0.89))
    ours = cv.ess_tail(x)
    np.testing.assert_allclose(ours, array_stats.ess(per_param, method="tail", prob=(0.05, 0.95)), rtol=1e-10)
    assert not np.allclose(ours, default_89)
    np.testing.assert_allclose(cv.ess_tail(x, probs=(0.11, 0.89)), default_89, rtol=1e-10)


def test_bad_shapes_and_names_are_refused():
    with pytest.raises(ValueError, match=r"\(chain, draw, parameter\), got shape \(10,\)"):
        cv.diagnose(np.zeros(10))
    with pytest.raises(ValueError, match="unknown diagnostic"):
        cv.diagnose(np.zeros((2, 10, 1)), ("rhat",))


def test_xarray_wrapper_keeps_each_variables_shape():
    rng = np.random.default_rng(11)
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), rng.normal(size=(4, 200))),
            "beta": (("chain", "draw", "predictor"), rng.normal(size=(4, 200, 3))),
            "u": (("site", "chain", "draw"), rng.normal(size=(5, 4, 200))),  # sample dims not first
        }
    )
    table = cv.convergence(post, ["Intercept", "beta", "u"])
    assert table["Intercept"]["r_hat"].shape == ()
    assert table["beta"]["ess_bulk"].shape == (3,)
    assert table["u"]["ess_tail"].shape == (5,)
    expected = _arviz(post["u"].transpose("chain", "draw", "site").values)
    np.testing.assert_allclose(table["u"]["ess_bulk"], expected["ess_bulk"], rtol=1e-10)
    assert cv.convergence(post, []) == {}


def test_gate_reports_failures_honestly():
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(4, 500)) + np.array([0, 0, 0, 2.0])[:, None]
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"sigma_site": (("chain", "draw"), np.abs(draws))}),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 500), bool))}),
        }
    )
    verdict = diagnostics(tree)
    assert not verdict["ok"]
    assert verdict["max_r_hat"] > 1.01
    assert any("R-hat" in p for p in verdict["problems"])
