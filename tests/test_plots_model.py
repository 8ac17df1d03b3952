"""Figures of a fitted model (mbct_bayes.plots.model): forest plot, caterpillar, posterior predictive check.

Synthetic fits with chosen posterior draws make the expected numbers exact; no sampling here.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import mbct_bayes as mb
from mbct_bayes.errors import DataError
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.fit import Fit
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.plots import model as pm


def synthetic_fit(S=400, J=6, rows_per_site=4, family="bernoulli", regions=False, site_names=None, seed=0):
    """A Fit whose posterior draws are chosen: beta ~ N((0, 0.5, 1), 0.1), site effects spread out."""
    rng = np.random.default_rng(seed)
    names = list(site_names) if site_names is not None else [f"S{j:02d}" for j in range(J)]
    J = len(names)
    spec = mb.ModelSpec(family=family, region="region" if regions else None)
    data = pd.DataFrame({
        "site": np.repeat(names, rows_per_site),
        "E": rng.uniform(1, 5, J * rows_per_site).round(2),
        "C": rng.uniform(1, 5, J * rows_per_site).round(2),
        "F": rng.uniform(1, 5, J * rows_per_site).round(2),
    })
    if regions:
        data["region"] = np.repeat([f"R{j % 2}" for j in range(J)], rows_per_site)
    if family == "ordinal":
        data["level"] = rng.choice(["none", "partial", "embedded"], len(data))
    else:
        data["embedded"] = rng.integers(0, 2, len(data))
    md = prepare_data(data, spec)
    draws = {
        "beta": rng.normal([0.0, 0.5, 1.0], 0.1, size=(S, 3)),
        "sigma_site": np.abs(rng.normal(1.0, 0.1, S)),
        # site j has effect centred at j - (J - 1) / 2: a known order for the caterpillar
        "u_site": rng.normal(np.arange(J) - (J - 1) / 2, 0.2, size=(S, J)),
    }
    if family == "ordinal":
        draws["cutpoints"] = np.sort(rng.normal([-1.0, 1.0], 0.1, size=(S, 2)), axis=1)
    else:
        draws["Intercept"] = rng.normal(0.0, 0.1, S)
    if regions:
        draws["sigma_region"] = np.abs(rng.normal(0.5, 0.1, S))
        draws["u_region"] = rng.normal([-0.3, 0.3], 0.1, size=(S, 2))
    return Fit(spec=spec, data=data, idata=None, model_data=md, _posterior=Posterior.from_draws(spec, md, draws))


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    return buffer.getvalue()


# -- kernels ----------------------------------------------------------------------------------------
def test_interval_summary_is_exact_on_a_grid():
    # np.quantile (linear) of 0..100 at q is exactly 100 q
    s = pm.interval_summary(np.arange(101.0))
    assert s["outer_lo"] == pytest.approx(5.0)
    assert s["inner_lo"] == pytest.approx(25.0)
    assert s["median"] == pytest.approx(50.0)
    assert s["inner_hi"] == pytest.approx(75.0)
    assert s["outer_hi"] == pytest.approx(95.0)
    two = pm.interval_summary(np.column_stack([np.arange(101.0), -np.arange(101.0)]))
    assert two["median"].tolist() == pytest.approx([50.0, -50.0])


def test_replicate_rates_is_exact_when_probabilities_are_0_or_1():
    event = np.array([1, 0, 1, 1, 0, 0], float)
    site_idx = np.array([0, 0, 1, 1, 2, 2])
    p = np.tile(event, (50, 1))  # the model is certain and right
    r = pm.replicate_rates(p, event, site_idx, 3, seed=1)
    assert r["observed_site"].tolist() == [0.5, 1.0, 0.0]
    np.testing.assert_array_equal(r["replicated_site"], np.tile([0.5, 1.0, 0.0], (50, 1)))
    assert float(r["observed_overall"]) == 0.5
    np.testing.assert_array_equal(r["replicated_overall"], np.full(50, 0.5))


def test_replicate_rates_binomial_mean_and_variance():
    # y_rep ~ Binomial(n, p): the site rate has mean p and variance p (1 - p) / n_site
    S, p0 = 4000, 0.3
    units = np.array([10, 10, 20, 5, 5])
    site_idx = np.array([0, 0, 1, 2, 2])
    p = np.full((S, units.size), p0)
    r = pm.replicate_rates(p, np.array([3, 4, 6, 1, 2]), site_idx, 3, units=units, seed=2)
    assert r["units_site"].tolist() == [20, 20, 10]
    assert r["observed_site"].tolist() == pytest.approx([7 / 20, 6 / 20, 3 / 10])
    n_site = r["units_site"]
    se_mean = np.sqrt(p0 * (1 - p0) / n_site / S)
    assert np.all(np.abs(r["replicated_site"].mean(axis=0) - p0) < 4 * se_mean)
    var = r["replicated_site"].var(axis=0, ddof=1)
    np.testing.assert_allclose(var, p0 * (1 - p0) / n_site, rtol=0.1)
    assert r["replicated_overall"].mean() == pytest.approx(p0, abs=4 * np.sqrt(p0 * (1 - p0) / 50 / S))


def test_replicate_rates_same_seed_same_numbers_and_bad_shapes():
    p = np.full((20, 4), 0.5)
    args = (p, np.array([0, 1, 0, 1.0]), np.array([0, 0, 1, 1]), 2)
    a, b = pm.replicate_rates(*args, seed=5), pm.replicate_rates(*args, seed=5)
    np.testing.assert_array_equal(a["replicated_site"], b["replicated_site"])
    with pytest.raises(DataError, match="one value per row"):
        pm.replicate_rates(p, np.zeros(3), np.zeros(4, int), 1)
    with pytest.raises(DataError, match=r"site_idx must lie in 0\.\.1"):
        pm.replicate_rates(p, np.zeros(4), np.array([0, 1, 2, 0]), 2)


# -- posterior predictive check -----------------------------------------------------------------
def test_posterior_predictive_observed_rates_match_the_data():
    fit = synthetic_fit(J=5)
    ppc = pm.posterior_predictive(fit, seed=3)
    expected = fit.data.groupby("site")["embedded"].mean()
    assert list(ppc.sites) == list(expected.index)
    np.testing.assert_allclose(ppc.observed_site, expected.to_numpy())
    assert ppc.observed_overall == pytest.approx(fit.data["embedded"].mean())
    assert ppc.replicated_site.shape == (400, 5)
    assert 0.0 <= ppc.p_value <= 1.0 and 0.0 <= ppc.site_coverage <= 1.0


def test_posterior_predictive_thins_draws():
    ppc = pm.posterior_predictive(synthetic_fit(S=1500), max_draws=300)
    assert ppc.replicated_overall.shape == (300,)


def test_posterior_predictive_ordinal_counts_the_top_level():
    fit = synthetic_fit(family="ordinal")
    ppc = pm.posterior_predictive(fit)
    assert ppc.observed_overall == pytest.approx((fit.data["level"] == "embedded").mean())


def test_posterior_predictive_with_unseen_sites_and_regions():
    fit = synthetic_fit(J=4, regions=True)
    extra = fit.data.head(4).assign(site="NEW", region="R9")  # unseen site and unseen region
    obs = pd.concat([fit.data, extra], ignore_index=True)
    ppc = pm.posterior_predictive(fit, obs, seed=1)
    assert "NEW" in ppc.sites and ppc.source == "the observations given"
    assert np.isfinite(ppc.replicated_site).all()


# -- figures --------------------------------------------------------------------------------------
def test_forest_plot_rows_and_numbers():
    fit = synthetic_fit()
    fig = pm.forest_plot(fit)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["E", "C", "F"]
    # right-hand labels: exp(median) of each coefficient, top row first
    right = [t.get_text() for t in ax.child_axes[0].get_yticklabels()]
    medians = np.exp(np.median(fit.draws["beta"], axis=0))
    assert [float(r.split()[0]) for r in right] == pytest.approx(medians, abs=0.006)
    lo, hi = ax.get_xlim()
    assert lo < 1.0 < hi  # the no-effect line is always on the axis
    assert png_bytes(fig).startswith(b"\x89PNG")


def test_forest_plot_prior_interval_is_the_spec_prior():
    fit = synthetic_fit()
    prior = fit.spec.prior_for("E", float(fit.model_data.x_sd[0]))  # default: Normal(0, 2.5 / sd)
    lo, hi = pm._prior_interval(prior)
    assert hi == pytest.approx(1.6448536 * 2.5 / fit.model_data.x_sd[0], rel=1e-6) and lo == pytest.approx(-hi)


def test_site_effects_sorted_by_median_with_regions():
    fit = synthetic_fit(J=6, regions=True, site_names=["f", "e", "d", "c", "b", "a"])
    fig = pm.site_effects_plot(fit)
    ax_site, ax_region = fig.axes
    labels = [t.get_text() for t in ax_site.get_yticklabels()]
    # site_labels are sorted (a..f); effect j is centred at j - 2.5, so a is lowest, f highest
    assert labels == ["a", "b", "c", "d", "e", "f"]
    assert [t.get_text() for t in ax_region.get_yticklabels()] == ["R0", "R1"]
    assert "exclude 0" in ax_site.get_title()
    png_bytes(fig)


def test_labels_with_dollars_and_long_names_do_not_break_figures():
    names = ["$x$", "a$b", "<script>alert(1)</script>", "ü" * 80, "S1", "S2"]
    fit = synthetic_fit(site_names=names)
    for fig in (pm.site_effects_plot(fit), pm.ppc_plot(pm.posterior_predictive(fit))):
        assert png_bytes(fig).startswith(b"\x89PNG")
    assert pm.plain_label("$x$") == r"\$x\$"
    assert len(pm.plain_label("ü" * 80)) == pm.MAX_LABEL


def test_ppc_plot_many_sites_drops_labels():
    fit = synthetic_fit(J=70, rows_per_site=2, S=200)
    fig = pm.ppc_plot(pm.posterior_predictive(fit), max_labels=60)
    assert fig.axes[1].get_xticks().size == 0
    assert "70 sites" in fig.axes[1].get_xlabel()


def test_missing_draws_are_a_clear_error():
    fit = synthetic_fit()
    del fit.draws["u_site"]
    with pytest.raises(DataError, match="no posterior draws of 'u_site'"):
        pm.site_effects_plot(fit)


def test_example_fit_figures(example_fit):
    for fig in (pm.forest_plot(example_fit), pm.site_effects_plot(example_fit),
                pm.ppc_plot(pm.posterior_predictive(example_fit))):
        assert png_bytes(fig).startswith(b"\x89PNG")
    assert math.isfinite(pm.posterior_predictive(example_fit).p_value)
