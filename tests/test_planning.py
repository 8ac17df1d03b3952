"""Planning new sites: what-if, levers, target, rank.

Three kinds of evidence:

* exactness — every reported number is recomputed in the test from the raw posterior draws with
  independent numpy code (logistic of intercept + beta·(x − centre) + site draw), using the
  documented draw order of the new-site effects (one ``default_rng(seed)``; first the
  unknown-region draws, then site effects ``standard_normal((S, n_sites))`` in sorted-id order);
* known answers — a fit to informative simulated data recovers the true order of the levers
  and the target implied by the true parameters (module-scoped fit, marked slow);
* bad input — each a DataError whose message is checked.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import mbct_bayes as mb
from mbct_bayes.model.build import prepare_data
from mbct_bayes.model.fit import Fit
from mbct_bayes.model.posterior import Posterior
from mbct_bayes.model.simulate import default_truth, simulate_observations
from mbct_bayes.planning import scenarios as planning
from mbct_bayes.plots import planning as plan_plots

SITES = pd.DataFrame({
    "site": ["N2", "N1", "N3", "N4"],  # not sorted: the effect draws follow sorted ids
    "E": [3.5, 2.0, 4.5, 3.0],
    "C": [3.0, 2.5, 4.0, 1.5],
    "F": [1.8, 3.0, 4.6, 5.0],
})


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    return math.log(p / (1.0 - p))


# -- independent recomputation from the draws -------------------------------------------------
def site_draws(fit, table, seed, kind="new_site", region_mode="mixture"):
    """Site (+ region) effect draws (S, n), written from the documented draw order."""
    draws = fit.draws
    S = draws["sigma_site"].shape[0]
    ids = table["site"].astype(str).tolist()
    rng = np.random.default_rng(seed)
    effect = np.zeros((S, len(table)))
    if fit.spec.region:  # first the unknown regions, one column per sorted site id
        regions = table["region"] if "region" in table else pd.Series([None] * len(table))
        missing = [i for i, r in enumerate(regions) if not isinstance(r, str) or r == ""]
        labels = sorted({ids[i] for i in missing})
        fitted = list(fit.model_data.region_labels)
        if labels and region_mode == "new":
            zr = rng.standard_normal((S, len(labels))) * draws["sigma_region"][:, None]
        elif labels:  # a fitted region drawn in proportion to its sites, per draw and site
            site_region = fit.data.drop_duplicates("site")["region"].tolist()
            shares = np.array([site_region.count(r) for r in fitted]) / len(site_region)
            cum = np.cumsum(shares)
            which = np.searchsorted(cum, rng.random((S, len(labels))) * cum[-1], side="right")
            zr = np.take_along_axis(draws["u_region"], which, axis=1)
        for i, r in enumerate(regions):
            if i in missing:
                effect[:, i] += zr[:, labels.index(ids[i])]
            else:
                effect[:, i] += draws["u_region"][:, fitted.index(r)]
    if kind == "typical_site":  # site effect 0; the region as for a new site
        return effect
    order = sorted(set(ids))
    z = rng.standard_normal((S, len(order)))
    return effect + np.column_stack([z[:, order.index(s)] * draws["sigma_site"] for s in ids])


def p_direct(fit, table, effect):
    """P(embedded) (S, n): logistic of intercept + sum beta_j (x_j - 3) (+ C:F) + effect."""
    d = fit.draws
    eta = effect.copy()
    if "Intercept" in d:
        eta += d["Intercept"][:, None]
    for j, name in enumerate(fit.spec.coef_names):
        if ":" in name:
            a, b = name.split(":")
            x = (table[a].to_numpy(float) - 3.0) * (table[b].to_numpy(float) - 3.0)
        else:
            x = table[name].to_numpy(float) - 3.0
        eta += d["beta"][:, j][:, None] * x[None, :]
    if fit.spec.family == "ordinal":
        eta -= d["cutpoints"][:, -1][:, None]  # P(top level)
    return expit(eta)


def shifted(table, lever, value=None, delta=None):
    out = table.copy()
    out[lever] = np.clip(out[lever] + delta, 1, 5) if delta is not None else value
    return out


def q(x, level):
    return np.quantile(x, level, axis=0)


# -- a synthetic Fit: chosen draws, for interactions and non-monotone posteriors ----------------
def synthetic_fit(beta, intercept=0.0, sigma_site=0.5, interactions=(), scale=None, predictors=("E", "C", "F")):
    """A Fit whose posterior draws are given (S draws), with a small fitted table."""
    beta = np.atleast_2d(np.asarray(beta, float))
    S = beta.shape[0]
    spec = mb.ModelSpec(
        family="bernoulli", predictors=predictors, interactions=interactions,
        scale=scale if scale is not None else {},
    )
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"site": [f"S{i}" for i in range(8)], "embedded": [0, 1] * 4})
    for p in predictors:
        data[p] = rng.uniform(1.5, 4.5, 8).round(2)
    md = prepare_data(data, spec)
    draws = {
        "beta": beta,
        "Intercept": np.broadcast_to(np.asarray(intercept, float), (S,)).copy(),
        "sigma_site": np.full(S, sigma_site),
        "u_site": np.zeros((S, len(md.site_labels))),
    }
    return Fit(spec=spec, data=data, idata=None, model_data=md, _posterior=Posterior.from_draws(spec, md, draws))


# == exactness =================================================================================
@pytest.mark.parametrize("kind", ["new_site", "typical_site"])
def test_what_if_equals_direct_computation(example_fit, kind):
    change = {"F": 1.0, "C": -0.5}
    out = planning.what_if(example_fit, SITES, change, kind, seed=7)
    effect = site_draws(example_fit, SITES, 7, kind)
    after = shifted(shifted(SITES, "F", delta=1.0), "C", delta=-0.5)
    before_p, after_p = p_direct(example_fit, SITES, effect), p_direct(example_fit, after, effect)
    delta = after_p - before_p
    np.testing.assert_allclose(out["p_before_mean"], before_p.mean(0), rtol=1e-10)
    np.testing.assert_allclose(out["p_after_mean"], after_p.mean(0), rtol=1e-10)
    np.testing.assert_allclose(out["delta_mean"], delta.mean(0), atol=1e-12)
    np.testing.assert_allclose(out["delta_q05"], q(delta, 0.05), atol=1e-12)
    np.testing.assert_allclose(out["delta_q95"], q(delta, 0.95), atol=1e-12)
    np.testing.assert_allclose(out["p_positive"], (delta > 0).mean(0))
    assert out["site"].tolist() == SITES["site"].tolist()
    # N3 (F 4.6 -> 5) and N4 (F 5 -> 5) are clipped; N4 gains nothing from F, loses from C
    assert out["clipped"].tolist() == [False, False, True, True]
    assert out["clipped_predictors"].tolist() == ["", "", "F", "F"]
    np.testing.assert_allclose(out["F_after"], [2.8, 4.0, 5.0, 5.0])


def test_what_if_new_site_within_monte_carlo_error_of_another_seed(example_fit):
    """Another seed gives another set of site draws; the means agree within MC error."""
    a = planning.what_if(example_fit, SITES, {"F": 1.0}, seed=1)
    b = planning.what_if(example_fit, SITES, {"F": 1.0}, seed=2)
    S = example_fit.n_draws
    se = np.sqrt(2) * a["delta_sd"] / math.sqrt(S)
    assert np.all(np.abs(a["delta_mean"] - b["delta_mean"]) < 5 * se + 1e-3)


def test_what_if_uses_common_random_numbers(example_fit):
    """A zero change gives exactly zero ΔP in every draw: before and after share effects."""
    d = planning.what_if_draws(example_fit, SITES, {"F": 0.0}, seed=3)
    assert np.array_equal(d.p_before, d.p_after)
    again = planning.what_if_draws(example_fit, SITES, {"F": 1.0}, seed=3)
    assert np.array_equal(d.p_before, again.p_before)  # same seed, same numbers


@pytest.mark.parametrize("step", [1.0, "sd"])
def test_levers_equal_direct_computation(example_fit, step):
    out = planning.levers(example_fit, SITES, step=step, seed=11)
    effect = site_draws(example_fit, SITES, 11)
    base = p_direct(example_fit, SITES, effect)
    for lever in ("E", "C", "F"):
        size = example_fit.data[lever].std(ddof=1) if step == "sd" else 1.0
        delta = p_direct(example_fit, shifted(SITES, lever, delta=size), effect) - base
        rows = out[out["lever"] == lever].set_index("site").loc[SITES["site"]]
        np.testing.assert_allclose(rows["step"], size)
        np.testing.assert_allclose(rows["delta_mean"], delta.mean(0), atol=1e-12)
        np.testing.assert_allclose(rows["delta_q05"], q(delta, 0.05), atol=1e-12)
        np.testing.assert_allclose(rows["delta_q95"], q(delta, 0.95), atol=1e-12)
        np.testing.assert_allclose(rows["p_positive"], (delta > 0).mean(0))
    for _, rows in out.groupby("site"):
        assert sorted(rows["rank"]) == [1, 2, 3]
        ordered = rows.sort_values("rank")["delta_mean"].to_numpy()
        assert np.all(np.diff(ordered) <= 0)  # rank 1 = largest mean gain
    # N4 sits at F = 5: a step on F is clipped and gains nothing
    n4 = out[(out["site"] == "N4") & (out["lever"] == "F")].iloc[0]
    assert n4["clipped"] and n4["delta_mean"] == 0 and n4["rank"] == 3


def brute_force_target(fit, table, lever, p, prob, effect, n_grid=4001):
    """Smallest value on a fine grid with P(P(embedded) ≥ p) ≥ prob, per site (NaN if none)."""
    grid = np.linspace(1, 5, n_grid)
    out, reach_curves = [], []
    for i in range(len(table)):
        row = table.iloc[[i]]
        moved = pd.concat([row] * n_grid, ignore_index=True)
        moved[lever] = grid
        pp = p_direct(fit, moved, np.repeat(effect[:, [i]], n_grid, axis=1))
        reach = (pp >= p).mean(0)
        hit = np.flatnonzero(reach >= prob - 1e-12)
        out.append(grid[hit[0]] if hit.size else np.nan)
        reach_curves.append(reach)
    return np.array(out), grid, reach_curves


@pytest.mark.parametrize("kind", ["new_site", "typical_site"])
def test_target_equals_brute_force_on_a_fine_grid(example_fit, kind):
    p, prob = 0.5, 0.6
    out = planning.target(example_fit, SITES, "F", p=p, prob=prob, kind=kind, seed=5)
    effect = site_draws(example_fit, SITES, 5, kind)
    grid_value, grid, _ = brute_force_target(example_fit, SITES, "F", p, prob, effect)
    h = grid[1] - grid[0]
    assert out["monotone"].all()  # every draw has a positive F coefficient here
    for i, row in out.iterrows():
        if math.isnan(grid_value[i]):
            assert not row["reachable"] and math.isnan(row["target_value"])
            continue
        assert row["reachable"]
        # exact value lies within one grid step below the first grid point that reaches it
        assert grid_value[i] - h - 1e-9 <= row["target_value"] <= grid_value[i] + 1e-9
        # and, recomputed at the value, it just reaches prob (and just misses below it)
        t = row["target_value"]
        for x, ok in ((t + 1e-9, True), (t - 1e-6, False)):
            if x < 1:
                continue
            moved = shifted(SITES.iloc[[i]], "F", value=x)
            reach = (p_direct(example_fit, moved, effect[:, [i]]) >= p).mean()
            assert (reach >= prob) == ok, (i, x, reach)
        at = p_direct(example_fit, shifted(SITES.iloc[[i]], "F", value=t), effect[:, [i]])
        assert row["p_at_target_mean"] == pytest.approx(at.mean(), rel=1e-9)
    assert out["reachable"].any()


@pytest.mark.parametrize("prob", [0.1, 0.5, 0.9])
def test_target_is_a_posterior_quantile_of_the_required_value(example_fit, prob):
    """Typical site, F coefficient > 0 in every draw: each draw needs F ≥ F*_s with
    F*_s = 3 + (logit p − α − βE(E−3) − βC(C−3)) / βF, so the target is the ``prob`` quantile
    (inverted CDF) of F*_s, clamped to the bottom of the scale and unreachable above 5."""
    d = example_fit.draws
    assert (d["beta"][:, 2] > 0).all()
    p = 0.5
    out = planning.target(example_fit, SITES, "F", p=p, prob=prob, kind="typical_site")
    for i, row in SITES.iterrows():
        other = d["Intercept"] + d["beta"][:, 0] * (row.E - 3) + d["beta"][:, 1] * (row.C - 3)
        required = 3 + (logit(p) - other) / d["beta"][:, 2]
        expected = max(np.quantile(required, prob, method="inverted_cdf"), 1.0)
        if expected > 5:
            assert math.isnan(out["target_value"][i])
        else:
            assert out["target_value"][i] == pytest.approx(expected, abs=1e-9)


def test_target_unreachable_is_said_plainly(example_fit):
    out = planning.target(example_fit, SITES, "F", p=0.99, prob=0.99)
    assert not out["reachable"].any()
    assert out["target_value"].isna().all() and out["p_at_target_mean"].isna().all()
    assert out["message"].str.contains("no F on the scale 1-5 gives P\\(embedded\\) ≥ 0.99").all()
    recs = planning.records(out, "target")
    assert all(r["target_value"] is None and r["reachable"] is False for r in recs)


def test_target_already_met_reports_a_value_below_current(example_fit):
    out = planning.target(example_fit, SITES, "F", p=0.05, prob=0.5, kind="typical_site")
    n3 = out[out["site"] == "N3"].iloc[0]
    assert n3["target_value"] < n3["current"] and "already met" in n3["message"]
    assert n3["prob_at_current"] >= 0.5


def test_rank_equals_direct_computation(example_fit):
    out = planning.rank(example_fit, SITES, seed=9)
    effect = site_draws(example_fit, SITES, 9)
    pp = p_direct(example_fit, SITES, effect)
    typical = p_direct(example_fit, SITES, np.zeros_like(effect))
    ids = SITES["site"].tolist()
    best = np.bincount(pp.argmax(1), minlength=len(ids)) / pp.shape[0]
    best_typ = np.bincount(typical.argmax(1), minlength=len(ids)) / pp.shape[0]
    order = np.argsort(-pp.mean(0), kind="stable")
    assert out["site"].tolist() == [ids[i] for i in order]
    assert out["rank"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(out["p_mean"], pp.mean(0)[order], rtol=1e-12)
    np.testing.assert_allclose(out["p_q05"], q(pp, 0.05)[order], rtol=1e-12)
    np.testing.assert_allclose(out["p_q95"], q(pp, 0.95)[order], rtol=1e-12)
    np.testing.assert_allclose(out["p_best"], best[order])
    np.testing.assert_allclose(out["typical_p_best"], best_typ[order])
    assert out["p_best"].sum() == pytest.approx(1.0)
    assert (out["ranked_on"] == "new_site").all()


def test_lever_curve_matches_what_if_and_target(example_fit):
    curve = planning.lever_curve(example_fit, SITES.iloc[[1]], "F", values=[1.0, 4.0, 5.0], p=0.5, seed=2)
    effect = site_draws(example_fit, SITES.iloc[[1]], 2)
    for value, row in zip([1.0, 4.0, 5.0], curve.itertuples(), strict=True):
        pp = p_direct(example_fit, shifted(SITES.iloc[[1]], "F", value=value), effect)
        assert row.p_mean == pytest.approx(pp.mean(), rel=1e-10)
        assert row.prob_reach == pytest.approx((pp >= 0.5).mean())


# -- interactions and non-monotone posteriors (synthetic draws) -------------------------------
def test_interactions_are_respected():
    rng = np.random.default_rng(1)
    beta = np.column_stack([rng.normal(0.2, 0.1, 500), rng.normal(0.4, 0.1, 500),
                            rng.normal(0.8, 0.1, 500), rng.normal(0.3, 0.05, 500)])
    fit = synthetic_fit(beta, intercept=rng.normal(-0.2, 0.1, 500), interactions=[("C", "F")])
    out = planning.what_if(fit, SITES, {"C": 1.0}, "typical_site")
    effect = np.zeros((500, len(SITES)))
    after = shifted(SITES, "C", delta=1.0)
    delta = p_direct(fit, after, effect) - p_direct(fit, SITES, effect)
    np.testing.assert_allclose(out["delta_mean"], delta.mean(0), atol=1e-12)
    # target on F with a C:F term: the F slope is beta_F + beta_CF (C - 3) per draw
    t = planning.target(fit, SITES, "F", p=0.6, prob=0.7, kind="typical_site")
    grid_value, grid, _ = brute_force_target(fit, SITES, "F", 0.6, 0.7, effect)
    ok = ~np.isnan(grid_value)
    assert np.array_equal(ok, t["reachable"].to_numpy())
    assert np.all(np.abs(t["target_value"][ok] - grid_value[ok]) <= grid[1] - grid[0] + 1e-9)


def test_non_monotone_posterior_reports_smallest_value_and_flags_it():
    """Half the draws favour low F, half high F: P(reach) dips in the middle."""
    S = 400
    beta_f = np.where(np.arange(S) < S // 2, 2.0, -2.0)
    beta = np.column_stack([np.zeros(S), np.zeros(S), beta_f])
    fit = synthetic_fit(beta, intercept=-1.0)
    site = {"site": "X", "E": 3.0, "C": 3.0, "F": 3.0}
    # P(embedded) ≥ 0.5 ⇔ eta ≥ 0: positive draws pass for F ≥ 3.5, negative ones for F ≤ 2.5
    out = planning.target(fit, site, "F", p=0.5, prob=0.5, kind="typical_site").iloc[0]
    assert out["reachable"] and not out["monotone"]
    assert out["target_value"] == pytest.approx(1.0)  # the low end already has half the draws
    assert "not monotone" in out["message"]
    out = planning.target(fit, site, "F", p=0.5, prob=0.55, kind="typical_site").iloc[0]
    assert not out["reachable"] and out["best_prob"] == pytest.approx(0.5)
    # 60% of draws pass from F = 2 upward, 40% up to F = 4: the probability is 0.4 below 2,
    # 1.0 on [2, 4] and 0.6 above 4, so 0.8 is reached from 2 and lost again after 4
    beta_f = np.where(np.arange(S) < 240, 1.0, -1.0)
    fit2 = synthetic_fit(np.column_stack([np.zeros(S), np.zeros(S), beta_f]), intercept=1.0)
    out = planning.target(fit2, site, "F", p=0.5, prob=0.8, kind="typical_site").iloc[0]
    assert out["target_value"] == pytest.approx(2.0) and out["prob_at_target"] == pytest.approx(1.0)
    assert not out["monotone"] and "higher values need not" in out["message"]
    curve = planning.lever_curve(fit2, site, "F", values=[1.5, 3.0, 4.5], p=0.5, kind="typical_site")
    np.testing.assert_allclose(curve["prob_reach"], [0.4, 1.0, 0.6])


def test_smallest_reaching_kernel_against_grid():
    rng = np.random.default_rng(4)
    S, n = 300, 25
    a = rng.normal(-1, 1.5, (S, n))
    slope = rng.normal(0.3, 0.6, (S, n))  # mixed signs: non-monotone in general
    res = planning.smallest_reaching(a, slope, 1.0, 5.0, 0.4)
    grid = np.linspace(1, 5, 20001)
    reach = ((a[:, :, None] + slope[:, :, None] * (grid - 1.0)) >= 0).mean(0)  # (n, G)
    h = grid[1] - grid[0]
    for i in range(n):
        hit = np.flatnonzero(reach[i] >= 0.4 - 1e-12)
        if hit.size == 0:
            assert np.isnan(res["value"][i])
            assert res["best_prob"][i] == pytest.approx(reach[i].max())
        else:
            # the exact value is never above the first grid hit, and within one step of it
            # unless a window narrower than the grid step exists (then the kernel finds it)
            assert res["value"][i] <= grid[hit[0]] + 1e-12
            assert res["value"][i] >= grid[hit[0]] - h - 1e-12 or reach[i, 0] < 0.4
        assert res["best_prob"][i] >= reach[i].max() - 1e-12


# -- ordinal and binomial (with regions) --------------------------------------------------------
def test_ordinal_fit_uses_the_top_level(ordinal_fit):
    out = planning.what_if(ordinal_fit, SITES, {"F": 1.0}, seed=4)
    effect = site_draws(ordinal_fit, SITES, 4)
    before = p_direct(ordinal_fit, SITES, effect)
    after = p_direct(ordinal_fit, shifted(SITES, "F", delta=1.0), effect)
    np.testing.assert_allclose(out["p_before_mean"], before.mean(0), rtol=1e-10)
    np.testing.assert_allclose(out["delta_mean"], (after - before).mean(0), atol=1e-12)
    t = planning.target(ordinal_fit, SITES, "F", p=0.4, prob=0.5, seed=4)
    gv, grid, _ = brute_force_target(ordinal_fit, SITES, "F", 0.4, 0.5, effect)
    ok = ~np.isnan(gv)
    assert np.array_equal(ok, t["reachable"].to_numpy())
    assert np.all(np.abs(t["target_value"][ok] - gv[ok]) <= grid[1] - grid[0] + 1e-9)
    lv = planning.levers(ordinal_fit, SITES)
    assert len(lv) == 3 * len(SITES)
    r = planning.rank(ordinal_fit, SITES)
    assert r["p_best"].sum() == pytest.approx(1.0)


def test_binomial_fit_with_known_and_unknown_regions(binomial_fit):
    sites = SITES.assign(region=["Scotland", "", "England-North", None])
    out = planning.what_if(binomial_fit, sites, {"C": 0.5}, seed=8)
    effect = site_draws(binomial_fit, sites, 8)
    before = p_direct(binomial_fit, sites, effect)
    after = p_direct(binomial_fit, shifted(sites, "C", delta=0.5), effect)
    np.testing.assert_allclose(out["p_before_mean"], before.mean(0), rtol=1e-10)
    np.testing.assert_allclose(out["delta_mean"], (after - before).mean(0), atol=1e-12)
    assert len(planning.levers(binomial_fit, sites, step="sd")) == 12
    assert planning.target(binomial_fit, sites, "F", p=0.5, prob=0.5)["reachable"].any()


def test_known_site_uses_its_own_effect(example_fit):
    known = example_fit.data.drop_duplicates("site").head(3)[["site", "E", "C", "F"]]
    out = planning.what_if(example_fit, known, {"F": 0.5}, "known_site")
    idx = [example_fit.model_data.site_labels.index(s) for s in known["site"]]
    effect = example_fit.draws["u_site"][:, idx]
    after = shifted(known.reset_index(drop=True), "F", delta=0.5)
    delta = p_direct(example_fit, after, effect) - p_direct(example_fit, known.reset_index(drop=True), effect)
    np.testing.assert_allclose(out["delta_mean"], delta.mean(0), atol=1e-12)


def test_records_have_exactly_the_issue_keys(example_fit):
    cases = {
        "what_if": planning.what_if(example_fit, SITES, {"F": 1.0}),
        "levers": planning.levers(example_fit, SITES),
        "target": planning.target(example_fit, SITES, "F"),
        "rank": planning.rank(example_fit, SITES),
    }
    for mode, table in cases.items():
        recs = planning.records(table, mode)
        assert len(recs) == len(table)
        assert all(tuple(r) == planning.RECORD_KEYS[mode] for r in recs)
        assert all(isinstance(r["site"], str) for r in recs)
    assert set(planning.RECORD_KEYS["levers"]) == {
        "site", "lever", "step", "delta_mean", "delta_q05", "delta_q95", "p_positive", "rank"}


def test_a_single_site_as_a_dict(example_fit):
    out = planning.target(example_fit, {"site": "X", "E": 3, "C": 3, "F": 2}, "F", 0.5, 0.5)
    assert out["site"].tolist() == ["X"]


# == bad input ===================================================================================
BAD = [
    (lambda f: planning.what_if(f, SITES, {"X": 1.0}), r"change 'X' is not a predictor of this model \(E, C, F\)"),
    (lambda f: planning.what_if(f, SITES, {"f": 1.0}), r"did you mean 'F'"),
    (lambda f: planning.what_if(f, SITES, {"C:F": 1.0}), r"an interaction follows its predictors"),
    (lambda f: planning.what_if(f, SITES, {"F": 10}), r"change F=\+10 leaves the scale 1-5 entirely"),
    (lambda f: planning.what_if(f, SITES, {"F": "abc"}), r"change F='abc' is not a finite number"),
    (lambda f: planning.what_if(f, SITES, {"F": float("nan")}), r"is not a finite number"),
    (lambda f: planning.what_if(f, SITES, {"F": True}), r"is not a finite number"),
    (lambda f: planning.what_if(f, SITES, {}), r"change must name at least one predictor"),
    (lambda f: planning.levers(f, SITES, lever_names=["Q"]), r"lever 'Q' is not a predictor"),
    (lambda f: planning.levers(f, SITES, step=0), r"step must be a positive number of scale points or 'sd'"),
    (lambda f: planning.levers(f, SITES, step="sds"), r"step must be a positive number"),
    (lambda f: planning.target(f, SITES, "Q"), r"lever 'Q' is not a predictor"),
    (lambda f: planning.target(f, SITES, "F", p=1.0), r"p must be a probability strictly between 0 and 1, got 1.0"),
    (lambda f: planning.target(f, SITES, "F", p=-0.2), r"p must be a probability strictly between 0 and 1"),
    (lambda f: planning.target(f, SITES, "F", prob=0), r"prob must be a probability strictly between 0 and 1, got 0"),
    (lambda f: planning.target(f, SITES, "F", prob=1.5), r"prob must be a probability"),
    (lambda f: planning.rank(f, SITES.drop(columns="F")), r"candidates: missing column 'F'"),
    (lambda f: planning.levers(f, SITES.drop(columns="C")), r"sites: missing column 'C'"),
    (lambda f: planning.what_if(f, SITES.assign(F=[1, 2, 3, 6]), {"E": 1}), r"column 'F' row 4: value 6 is outside the scale 1-5"),
    (lambda f: planning.rank(f, SITES.assign(site="A")), r"site 'A' appears more than once; planning takes one row per site"),
    (lambda f: planning.rank(f, SITES, kind="old_site"), r"kind 'old_site' is not one of new_site, typical_site, known_site"),
    (lambda f: planning.rank(f, "sites.csv"), r"expected a table of sites"),
    (lambda f: planning.what_if(f, SITES, {"F": 1}, "known_site"), r"site 'N\d' is not in the fitted data"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_input_messages(example_fit, call, message):
    with pytest.raises(mb.DataError, match=message):
        call(example_fit)


def test_unknown_region_is_an_error(binomial_fit):
    sites = SITES.assign(region=["Scotland", "Atlantis", "Wales", ""])
    with pytest.raises(mb.DataError, match=r"column 'region' row 2: value 'Atlantis' is never seen in the fitted data"):
        planning.what_if(binomial_fit, sites, {"F": 1})


def test_target_on_a_predictor_without_scale():
    fit = synthetic_fit(np.array([[0.1, 0.2, 0.3, 0.05]] * 5), predictors=("E", "C", "F", "size"))
    with pytest.raises(mb.DataError, match=r"lever 'size' has no scale in the spec.*set scale.size"):
        planning.target(fit, SITES.assign(size=1.0), "size")
    # a change on a predictor without scale is never clipped
    out = planning.what_if(fit, SITES.assign(size=1.0), {"size": 100.0}, "typical_site")
    assert not out["clipped"].any() and (out["size_after"] == 101.0).all()


# == figures =====================================================================================
def test_figures(example_fit, tmp_path):
    fig = plan_plots.lever_chart(planning.levers(example_fit, SITES))
    assert isinstance(fig, Figure)
    assert sum(ax.get_visible() for ax in fig.axes) == len(SITES)
    fig.savefig(tmp_path / "levers.png")
    fig = plan_plots.lever_response(example_fit, SITES.iloc[[0]], "F", p=0.5, prob=0.6)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    fig.savefig(tmp_path / "response.png")
    fig = plan_plots.lever_response(example_fit, SITES.iloc[[0]], "F", p=None)
    assert isinstance(fig, Figure)
    with pytest.raises(mb.DataError, match="site 'ZZ' is not in the levers table"):
        plan_plots.lever_chart(planning.levers(example_fit, SITES), sites=["ZZ"])
    with pytest.raises(mb.DataError, match="draws one site"):
        plan_plots.lever_response(example_fit, SITES, "F")


# == known answers (informative simulated data) ===================================================
KNOWN_BETA = {"E": 0.2, "C": 0.6, "F": 1.2}
# |target - value implied by the truth| in scale points. With 150 sites × 10 units the posterior
# SD of the required F (at prob 0.5 the target is its posterior median) is 0.10-0.23 for these
# profiles (larger for higher p); 0.4 is about 2-4 posterior SDs.
TARGET_TOL = 0.4


@pytest.fixture(scope="module")
def known():
    truth = default_truth("bernoulli", n_regions=0)
    truth["beta"] = dict(KNOWN_BETA)
    obs, truth = simulate_observations(150, 10, "bernoulli", n_regions=0, seed=21, truth=truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mb.ConvergenceWarning)
        fit = mb.fit(obs, mb.ModelSpec(family="bernoulli"), seed=3, draws=500, tune=500, chains=2)
    return fit, truth


PROFILES = pd.DataFrame({
    "site": ["mid", "low", "high", "mixed"],
    "E": [3.0, 2.0, 4.0, 4.0],
    "C": [3.0, 2.0, 4.0, 2.5],
    "F": [3.0, 2.0, 3.5, 2.0],
})


def true_f(truth, E, C, p):
    """The F at which a typical site (effect 0) has P(embedded) = p under the truth."""
    b = truth["beta"]
    other = truth["Intercept"] + b["E"] * (E - 3) + b["C"] * (C - 3)
    return 3 + (logit(p) - other) / b["F"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["typical_site", "new_site"])
def test_known_answer_lever_order(known, kind):
    fit, _ = known
    out = planning.levers(fit, PROFILES, step=1.0, kind=kind, seed=1)
    for site, rows in out.groupby("site"):
        order = rows.sort_values("rank")["lever"].tolist()
        # true order by coefficient F (1.2) > C (0.6) > E (0.2); profiles are not near the scale end
        assert order == ["F", "C", "E"], (site, rows)
        f_row = rows[rows["lever"] == "F"].iloc[0]
        assert f_row["p_positive"] > 0.99


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.5, 0.7, 0.8])
def test_known_answer_target(known, p):
    fit, truth = known
    sites = PROFILES.iloc[[0, 3]].reset_index(drop=True)
    implied = [true_f(truth, r.E, r.C, p) for r in sites.itertuples()]
    assert all(1 < v < 5 for v in implied), implied
    # prob 0.5 on a typical site: the posterior median of the required F
    mid = planning.target(fit, sites, "F", p=p, prob=0.5, kind="typical_site")
    np.testing.assert_allclose(mid["target_value"], implied, atol=TARGET_TOL)
    # the truth lies between the F reached with probability 0.01 and with 0.99: a 98% interval
    # (98% rather than 90% because six correlated intervals are checked)
    lo = planning.target(fit, sites, "F", p=p, prob=0.01, kind="typical_site")["target_value"]
    hi = planning.target(fit, sites, "F", p=p, prob=0.99, kind="typical_site")["target_value"]
    hi = hi.fillna(np.inf)  # not reached on the scale: the interval runs past its end
    assert np.all((lo.to_numpy() <= implied) & (np.asarray(implied) <= hi.to_numpy())), (lo, implied, hi)
    # a new site needs a higher F for the same 90% certainty: its own effect adds spread
    new = planning.target(fit, sites, "F", p=p, prob=0.9, kind="new_site")
    typical = planning.target(fit, sites, "F", p=p, prob=0.9, kind="typical_site")
    both = new["reachable"] & typical["reachable"]
    assert np.all(new["target_value"][both] >= typical["target_value"][both])


@pytest.mark.slow
def test_known_answer_rank(known):
    fit, _ = known
    out = planning.rank(fit, PROFILES, kind="new_site", seed=2)
    # truth: eta(high) > eta(mid) > eta(mixed) > eta(low)
    assert out["site"].tolist() == ["high", "mid", "mixed", "low"]
    assert out.iloc[0]["typical_p_best"] > 0.99  # the profile is clearly best...
    # ...but each new site's own effect leaves doubt about which service will do best
    assert out.iloc[0]["p_best"] < out.iloc[0]["typical_p_best"] - 0.05


def test_target_search_in_blocks_equals_one_block(monkeypatch):
    rng = np.random.default_rng(9)
    a, slope = rng.normal(-1, 1.5, (200, 37)), rng.normal(0.3, 0.6, (200, 37))
    whole = planning.smallest_reaching(a, slope, 1.0, 5.0, 0.4)
    monkeypatch.setattr(planning, "CHUNK_ELEMENTS", 200 * 5)  # blocks of 5 sites
    blocks = planning.smallest_reaching(a, slope, 1.0, 5.0, 0.4)
    for key in whole:
        np.testing.assert_array_equal(whole[key], blocks[key])


def test_lever_curve_in_blocks_equals_one_block(example_fit, monkeypatch):
    whole = planning.lever_curve(example_fit, SITES, "F", n_grid=7, p=0.5, seed=3)
    monkeypatch.setattr(planning, "CHUNK_ELEMENTS", example_fit.n_draws * 7)  # one site per block
    blocks = planning.lever_curve(example_fit, SITES, "F", n_grid=7, p=0.5, seed=3)
    pd.testing.assert_frame_equal(whole, blocks)
    assert len(whole) == 7 * len(SITES)


# == one meaning of "typical site"; unknown regions (issue 12, items 3 and 4) ===================
REGION_SITES = pd.DataFrame({  # identical scores, different regions (one unknown)
    "site": ["T1", "T2", "T3", "T4"],
    "region": ["Scotland", "Wales", "England-North", ""],
    "E": [3.2] * 4, "C": [3.6] * 4, "F": [2.4] * 4,
})


def test_predict_levers_rank_and_report_agree_on_the_typical_value(binomial_fit):
    from mbct_bayes.planning.predict import predict
    from mbct_bayes.report import _planning

    typical = predict(binomial_fit, REGION_SITES, "typical_site", seed=5).set_index("site")["p_mean"]
    # the regions' fitted effects differ, so a typical site keeps its region's value
    assert np.ptp(typical[["T1", "T2", "T3"]]) > 0.01
    ranked = planning.rank(binomial_fit, REGION_SITES, "new_site", seed=5).set_index("site")
    np.testing.assert_allclose(ranked.loc[typical.index, "typical_p_mean"], typical, rtol=1e-12)
    before = planning.what_if(binomial_fit, REGION_SITES, {"F": 1.0}, "typical_site", seed=5)
    np.testing.assert_allclose(before["p_before_mean"], typical.to_numpy(), rtol=1e-12)
    lv = planning.levers(binomial_fit, REGION_SITES, 1.0, "typical_site", seed=5)
    raised = predict(binomial_fit, shifted(REGION_SITES, "C", delta=1.0), "typical_site", seed=5)
    np.testing.assert_allclose(
        lv[lv["lever"] == "C"].set_index("site").loc[typical.index, "delta_mean"],
        raised["p_mean"].to_numpy() - typical.to_numpy(), atol=1e-12,
    )
    table_html, _ = _planning(binomial_fit, REGION_SITES, seed=5)
    rows = {r.split("</td>")[0].rsplit(">", 1)[-1]: r for r in str(table_html).split("<tr")[2:]}
    for site, value in typical.items():
        assert f">{value:.2f}<" in rows[site], (site, value)


def test_the_reports_typical_site_at_the_centre_is_predicts(binomial_fit):
    from mbct_bayes.planning.predict import predict
    from mbct_bayes.report import typical_at_centre

    centre = pd.DataFrame({"site": ["c"], "region": [""], "E": [3.0], "C": [3.0], "F": [3.0]})
    got = typical_at_centre(binomial_fit, seed=2)
    want = predict(binomial_fit, centre, "typical_site", seed=2).iloc[0]
    assert [got[k] for k in ("p_mean", "p_q05", "p_q95")] == pytest.approx(
        [want["p_mean"], want["p_q05"], want["p_q95"]], rel=1e-12)


def test_rank_typical_of_known_sites_keeps_their_fitted_region(binomial_fit):
    md = binomial_fit.model_data
    known = binomial_fit.data.drop_duplicates("site").head(4)[["site", "E", "C", "F"]]
    ranked = planning.rank(binomial_fit, known, "known_site").set_index("site")
    region_of = binomial_fit.data.drop_duplicates("site").set_index("site")["region"]
    table = known.reset_index(drop=True)
    effect = np.column_stack([
        binomial_fit.draws["u_region"][:, list(md.region_labels).index(region_of[s])] for s in table["site"]
    ])
    expected = p_direct(binomial_fit, table, effect).mean(0)
    np.testing.assert_allclose(ranked.loc[table["site"], "typical_p_mean"], expected, rtol=1e-12)


def region_fit(S=20_000, effects=(-3.0, 0.0, 2.0), sigma_region=3.0):
    """A bernoulli Fit with regions A, B, C of 1, 3 and 6 sites (10, 6 and 6 rows) and set effects.

    Sites and rows are weighted differently on purpose: the unknown-region mixture weighs by sites.
    """
    spec = mb.ModelSpec(family="bernoulli", region="region", predictors=("E", "C", "F"))
    sites = ["A0"] * 10 + [f"B{i}" for i in range(3) for _ in range(2)] + [f"C{i}" for i in range(6)]
    data = pd.DataFrame({
        "site": sites, "region": [s[0] for s in sites], "embedded": [0, 1] * 11,
        "E": 3.0, "C": 3.0, "F": 3.0,
    })
    md = prepare_data(data, spec)
    assert md.region_labels == ("A", "B", "C")
    draws = {
        "beta": np.zeros((S, 3)),
        "Intercept": np.zeros(S),
        "sigma_site": np.full(S, 0.5),
        "u_site": np.zeros((S, len(md.site_labels))),
        "sigma_region": np.full(S, sigma_region),
        "u_region": np.tile(np.asarray(effects, float), (S, 1)),
    }
    return Fit(spec=spec, data=data, idata=None, model_data=md, _posterior=Posterior.from_draws(spec, md, draws))


def test_unknown_region_mixture_weighs_the_fitted_regions_by_their_sites():
    from mbct_bayes.planning.predict import predict

    fit = region_fit()
    row = pd.DataFrame({"site": ["X"], "region": [""], "E": [3.0], "C": [3.0], "F": [3.0]})
    mixed = predict(fit, row, "new_site", seed=1)
    shares = np.array([1, 3, 6]) / 10  # sites, not rows (rows would be 10/22, 6/22, 6/22)
    per_region = [predict(fit, row.assign(region=r), "new_site", seed=2 + i) for i, r in enumerate("ABC")]
    expected = sum(w * r["p_mean"].iloc[0] for w, r in zip(shares, per_region, strict=True))
    S = fit.n_draws
    se = math.sqrt(mixed["p_sd"].iloc[0] ** 2 / S + sum(
        (w * r["p_sd"].iloc[0]) ** 2 / S for w, r in zip(shares, per_region, strict=True)))
    assert abs(mixed["p_mean"].iloc[0] - expected) < 4 * se, (mixed["p_mean"].iloc[0], expected, se)
    # a typical site of unknown region: each draw's region effect is one fitted effect, drawn by sites
    eta = logit_of(predict_draws(fit, row, "typical_site", seed=3))
    counts = np.array([np.isclose(eta, e).sum() for e in (-3.0, 0.0, 2.0)])
    assert counts.sum() == S
    assert np.all(np.abs(counts / S - shares) < 4 * np.sqrt(shares * (1 - shares) / S))


def logit_of(p):
    return np.log(p) - np.log1p(-p)


def predict_draws(fit, table, kind, seed, region_mode="mixture"):
    from mbct_bayes.planning.predict import eta_draws, p_embedded, validate_new_data

    return p_embedded(fit, eta_draws(fit, validate_new_data(fit, table), kind, seed=seed,
                                     region_mode=region_mode))[:, 0]


def test_new_region_mode_is_a_fresh_region_draw_with_the_wider_spread(binomial_fit):
    fit = region_fit()
    row = pd.DataFrame({"site": ["X"], "region": [None], "E": [3.0], "C": [3.0], "F": [3.0]})
    eta_new = logit_of(predict_draws(fit, row, "typical_site", seed=4, region_mode="new"))
    # site effect 0, a fresh N(0, 3) region: mean 0 and SD 3 within sampling error (S = 20,000)
    assert abs(eta_new.mean()) < 4 * 3 / math.sqrt(fit.n_draws)
    assert eta_new.std() == pytest.approx(3.0, rel=0.03)
    # the real fit: a new region is wider than one of the four fitted regions
    for kind in ("typical_site", "new_site"):
        unknown = REGION_SITES.iloc[[3]]
        wide = planning.rank(binomial_fit, unknown, kind, seed=6, region_mode="new")
        narrow = planning.rank(binomial_fit, unknown, kind, seed=6, region_mode="mixture")
        assert (wide["p_q95"] - wide["p_q05"]).iloc[0] > (narrow["p_q95"] - narrow["p_q05"]).iloc[0]
    # a known region is the same in both modes
    known = REGION_SITES.iloc[[0]]
    np.testing.assert_array_equal(
        planning.rank(binomial_fit, known, seed=6, region_mode="new")["p_mean"],
        planning.rank(binomial_fit, known, seed=6)["p_mean"],
    )


@pytest.mark.parametrize("call", [
    lambda f: planning.what_if(f, REGION_SITES, {"F": 1}, region_mode="fifth"),
    lambda f: planning.levers(f, REGION_SITES, region_mode="fifth"),
    lambda f: planning.target(f, REGION_SITES, "F", region_mode="fifth"),
    lambda f: planning.rank(f, REGION_SITES, region_mode="fifth"),
    lambda f: planning.lever_curve(f, REGION_SITES, "F", region_mode="fifth"),
    lambda f: f.predict(REGION_SITES, region_mode="fifth"),
])
def test_bad_region_mode_is_a_one_line_error(binomial_fit, call):
    with pytest.raises(mb.DataError, match=r"^region_mode 'fifth' is not one of mixture, new \(mixture: "):
        call(binomial_fit)
