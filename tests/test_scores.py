"""Scores, calibration, site bootstrap, baselines and the evaluation figures.

Expected values are worked out by hand in the comments beside each example.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy import integrate, optimize, special, stats

from mbct_bayes.errors import DataError
from mbct_bayes.forecast.rules import (
    auc,
    baseline_base_rate,
    baseline_fixed_rate,
    baseline_fixed_shares,
    baseline_level_shares,
    bootstrap_over_sites,
    brier,
    brier_decomposition,
    calibration_intercept_slope,
    ece,
    intra_row_correlation,
    log_score,
    log_score_beta_binomial,
    log_score_binomial,
    log_score_binomial_mixture,
    log_score_ordinal,
    pit_randomised,
    reliability_bins,
    rps,
    score_table,
    site_resample_counts,
    skill,
)
from mbct_bayes.plots.evaluate import reliability_diagram, site_forecast_chart

# --------------------------------------------------------------------------------------------
# proper scores
# --------------------------------------------------------------------------------------------

P3 = [0.8, 0.3, 0.5]
Y3 = [1, 0, 0]


def test_log_score_hand():
    # (ln 0.8 + ln 0.7 + ln 0.5) / 3 = (-0.2231436 - 0.3566749 - 0.6931472) / 3
    assert log_score(P3, Y3) == pytest.approx(-0.4243219, abs=1e-7)
    np.testing.assert_allclose(
        log_score(P3, Y3, pointwise=True), [-0.2231436, -0.3566749, -0.6931472], atol=1e-7
    )


def test_log_score_certain_and_wrong_is_minus_infinity():
    assert log_score([0.0, 0.5], [1, 1]) == -math.inf
    assert log_score([1.0, 0.0], [1, 0]) == 0.0


def test_log_score_ordinal_hand():
    # (ln 0.3 + ln 0.6) / 2 = (-1.2039728 - 0.5108256) / 2
    P = [[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]
    assert log_score_ordinal(P, [2, 0]) == pytest.approx(-0.8573992, abs=1e-7)


def test_log_score_binomial_hand():
    # row 1: C(3,2) 0.3^2 0.7 = 3 * 0.09 * 0.7 = 0.189; row 2: C(2,0) 0.5^2 = 0.25
    # mean(ln 0.189, ln 0.25) = (-1.6660083 - 1.3862944) / 2
    assert log_score_binomial([0.3, 0.5], [2, 0], [3, 2]) == pytest.approx(-1.5261513, abs=1e-7)


def test_log_score_binomial_one_trial_is_bernoulli():
    assert log_score_binomial(P3, Y3, 1) == pytest.approx(log_score(P3, Y3))


def test_brier_hand():
    # (0.2^2 + 0.3^2 + 0.5^2) / 3 = (0.04 + 0.09 + 0.25) / 3
    assert brier(P3, Y3) == pytest.approx(0.38 / 3)
    np.testing.assert_allclose(brier(P3, Y3, pointwise=True), [0.04, 0.09, 0.25])


def test_rps_hand():
    # P = (0.2, 0.5, 0.3): cumulative F = (0.2, 0.7).
    # y = 2: O = (0, 0) -> (0.04 + 0.49) / 2 = 0.265; y = 0: O = (1, 1) -> (0.64 + 0.09) / 2 = 0.365
    P = [[0.2, 0.5, 0.3], [0.2, 0.5, 0.3]]
    np.testing.assert_allclose(rps(P, [2, 0], pointwise=True), [0.265, 0.365])
    assert rps(P, [2, 0]) == pytest.approx(0.315)


def test_rps_two_levels_equals_brier():
    p = np.array([0.1, 0.6, 0.9, 0.35])
    y = np.array([0, 1, 0, 1])
    assert rps(np.column_stack([1 - p, p]), y) == pytest.approx(brier(p, y))


def test_rps_perfect_and_worst():
    assert rps([[0, 0, 1]], [2]) == 0.0
    assert rps([[1, 0, 0]], [2]) == 1.0  # normalised by K - 1: worst is 1


# --------------------------------------------------------------------------------------------
# Brier decomposition, ECE, bins
# --------------------------------------------------------------------------------------------

# Forecasts constant within bins: bin 1 has p = 0.15 (4 cases, one 1), bin 6 has p = 0.65
# (6 cases, four 1s). N = 10, overall frequency 0.5.
DECOMP_P = [0.15] * 4 + [0.65] * 6
DECOMP_Y = [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]  # bin 1: 0, 0, 0, 1; bin 6: 1, 1, 1, 1, 0, 0


def test_brier_decomposition_hand():
    d = brier_decomposition(DECOMP_P, DECOMP_Y, bins=10)
    # REL = (4 (0.15 - 0.25)^2 + 6 (0.65 - 2/3)^2) / 10 = (0.04 + 1/600) / 10
    assert d["reliability"] == pytest.approx((0.04 + 1 / 600) / 10)
    # RES = (4 (0.25 - 0.5)^2 + 6 (2/3 - 0.5)^2) / 10 = (0.25 + 1/6) / 10
    assert d["resolution"] == pytest.approx((0.25 + 1 / 6) / 10)
    assert d["uncertainty"] == pytest.approx(0.25)
    # Brier = (3 * 0.15^2 + 0.85^2 + 4 * 0.35^2 + 2 * 0.65^2) / 10 = 2.125 / 10
    assert d["brier"] == pytest.approx(0.2125)


def test_brier_decomposition_identity_when_constant_within_bins():
    rng = np.random.default_rng(4)
    p = rng.choice([0.05, 0.25, 0.45, 0.65, 0.85], size=500)  # one value per bin (bins=10)
    y = rng.binomial(1, p)
    d = brier_decomposition(p, y, bins=10)
    assert d["reliability"] - d["resolution"] + d["uncertainty"] == pytest.approx(
        brier(p, y), abs=1e-12
    )
    assert d["residual"] == pytest.approx(0.0, abs=1e-12)


def test_brier_decomposition_residual_when_forecasts_vary_within_bins():
    # One bin (bins=1) holding p = 0.2 and 0.4 with outcomes 0, 1: REL = (0.3 - 0.5)^2 = 0.04,
    # RES = 0, UNC = 0.25, so REL - RES + UNC = 0.29, while Brier = (0.04 + 0.36) / 2 = 0.20.
    d = brier_decomposition([0.2, 0.4], [0, 1], bins=1)
    assert d["reliability"] == pytest.approx(0.04)
    assert d["resolution"] == pytest.approx(0.0)
    assert d["brier"] == pytest.approx(0.20)
    assert d["residual"] == pytest.approx(-0.09)


def test_ece_hand():
    # (4 |0.15 - 0.25| + 6 |0.65 - 2/3|) / 10 = (0.4 + 0.1) / 10
    assert ece(DECOMP_P, DECOMP_Y, bins=10) == pytest.approx(0.05)


def test_ece_weights_by_count_not_by_bin():
    # bin 0: 9 forecasts 0.05, all 0 -> gap 0.05; bin 9: 1 forecast 0.95, outcome 0 -> gap 0.95
    # weighted: (9 * 0.05 + 1 * 0.95) / 10 = 0.14 (an unweighted mean of bins would give 0.5)
    assert ece([0.05] * 9 + [0.95], [0] * 10, bins=10) == pytest.approx(0.14)


def test_reliability_bins_edges():
    rb = reliability_bins([0.0, 0.1, 0.55, 1.0], [0, 1, 1, 1], bins=10)
    assert rb.index.tolist() == [0, 1, 5, 9]  # p = 1 goes in the last bin
    assert rb.count.tolist() == [1, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert np.isnan(rb.observed[2])


# --------------------------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------------------------


def test_auc_hand():
    # positives {0.35, 0.8}, negatives {0.1, 0.4}: pairs won: 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # positives {0.5, 0.7}, negatives {0.5, 0.2}: 0.5 vs 0.5 tie (1/2), 0.5>0.2, 0.7>0.5, 0.7>0.2
    # -> 3.5 / 4
    assert auc([0.5, 0.5, 0.2, 0.7], [1, 0, 0, 1]) == pytest.approx(0.875)


def test_auc_matches_mann_whitney():
    rng = np.random.default_rng(7)
    p = np.round(rng.uniform(size=300), 1)  # rounding makes many ties
    y = rng.binomial(1, p)
    u = stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert auc(p, y) == pytest.approx(u / (y.sum() * (y.size - y.sum())))


def test_auc_one_class_is_nan():
    assert math.isnan(auc([0.2, 0.3], [1, 1]))


# --------------------------------------------------------------------------------------------
# calibration intercept and slope
# --------------------------------------------------------------------------------------------


def test_calibration_intercept_closed_form_for_constant_forecast():
    # All forecasts 0.2; 3 of 10 outcomes are 1. With logit(p) as offset the MLE solves
    # expit(a + logit 0.2) = 0.3, so a = logit 0.3 - logit 0.2. The slope is undefined.
    cal = calibration_intercept_slope([0.2] * 10, [1, 1, 1] + [0] * 7)
    assert cal.intercept == pytest.approx(special.logit(0.3) - special.logit(0.2), abs=1e-8)
    assert math.isnan(cal.slope)


def test_calibration_slope_closed_form_for_two_forecast_values():
    # Two forecast values make the recalibration model saturated: the fitted probabilities equal
    # the observed frequencies 1/4 (at p = 0.2) and 3/4 (at p = 0.6), so
    # slope = (logit 0.75 - logit 0.25) / (logit 0.6 - logit 0.2).
    p = [0.2] * 4 + [0.6] * 4
    y = [1, 0, 0, 0, 1, 1, 1, 0]
    cal = calibration_intercept_slope(p, y)
    expected = (special.logit(0.75) - special.logit(0.25)) / (
        special.logit(0.6) - special.logit(0.2)
    )
    assert cal.slope == pytest.approx(expected, abs=1e-8)


def test_calibration_matches_direct_likelihood_maximisation():
    rng = np.random.default_rng(11)
    p = rng.uniform(0.05, 0.95, size=200)
    y = rng.binomial(1, special.expit(0.3 + 0.7 * special.logit(p)))
    x = special.logit(p)

    def nll(theta, offset):
        eta = theta[0] + (theta[1] * x if offset is None else offset)
        return -np.sum(y * eta - np.logaddexp(0, eta))

    slope_fit = optimize.minimize(lambda t: nll(t, None), [0.0, 1.0], method="BFGS").x
    icpt_fit = optimize.minimize(lambda t: nll([t[0], 0.0], x), [0.0], method="BFGS").x
    cal = calibration_intercept_slope(p, y)
    assert cal.slope == pytest.approx(slope_fit[1], abs=1e-4)
    assert cal.intercept == pytest.approx(icpt_fit[0], abs=1e-4)


def test_perfectly_calibrated_forecaster_has_slope_one_intercept_zero():
    # y ~ Bernoulli(p) exactly: the true slope is 1 and intercept 0. Tolerance 4 standard errors
    # (from the Fisher information of the fit), so a correct implementation fails this with
    # probability about 1e-4 per quantity; the SEs themselves are checked against 1/sqrt(n).
    rng = np.random.default_rng(2024)
    n = 20_000
    p = special.expit(rng.normal(-0.5, 1.2, size=n))
    y = rng.binomial(1, p)
    cal = calibration_intercept_slope(p, y)
    assert cal.slope_se < 0.05 and cal.intercept_se < 0.05
    assert abs(cal.slope - 1.0) < 4 * cal.slope_se
    assert abs(cal.intercept) < 4 * cal.intercept_se


def test_miscalibrated_forecasters_are_detected():
    rng = np.random.default_rng(5)
    n = 20_000
    eta = rng.normal(0, 1, size=n)
    y = rng.binomial(1, special.expit(eta))
    too_extreme = calibration_intercept_slope(special.expit(2 * eta), y)  # true slope 0.5
    assert abs(too_extreme.slope - 0.5) < 4 * too_extreme.slope_se
    too_high = calibration_intercept_slope(special.expit(eta + 1), y)  # true intercept -1
    assert abs(too_high.intercept + 1) < 4 * too_high.intercept_se


def test_calibration_undefined_cases_are_nan():
    assert all(math.isnan(v) for v in calibration_intercept_slope([0.2, 0.4], [1, 1]))
    separated = calibration_intercept_slope([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert math.isnan(separated.slope)


def test_calibration_handles_forecasts_of_exactly_0_and_1():
    cal = calibration_intercept_slope([0.0, 1.0, 0.5, 0.5, 0.3, 0.7], [0, 1, 1, 0, 1, 0])
    assert np.isfinite(cal.intercept)


# --------------------------------------------------------------------------------------------
# randomised PIT
# --------------------------------------------------------------------------------------------


def test_pit_binary_hand():
    # p = 0.7: F(0) = 0.3, F(1) = 1. y = 1 -> 0.3 + 0.7 v; y = 0 -> 0 + 0.3 v.
    v = np.random.default_rng(3).random(2)
    pit = pit_randomised([0.7, 0.7], [1, 0], np.random.default_rng(3))
    np.testing.assert_allclose(pit, [0.3 + 0.7 * v[0], 0.3 * v[1]])


def test_pit_ordinal_hand_and_seed():
    # P = (0.2, 0.5, 0.3): y = 1 -> 0.2 + 0.5 v; y = 2 -> 0.7 + 0.3 v
    P = [[0.2, 0.5, 0.3], [0.2, 0.5, 0.3]]
    v = np.random.default_rng(9).random(2)
    np.testing.assert_allclose(pit_randomised(P, [1, 2], 9), [0.2 + 0.5 * v[0], 0.7 + 0.3 * v[1]])
    np.testing.assert_array_equal(pit_randomised(P, [1, 2], 9), pit_randomised(P, [1, 2], 9))


def test_pit_uniform_under_calibration():
    rng = np.random.default_rng(1)
    P = rng.dirichlet([2, 1, 1], size=5000)
    y = np.array([rng.choice(3, p=row) for row in P])
    pit = pit_randomised(P, y, rng)
    assert stats.kstest(pit, "uniform").pvalue > 0.001


# --------------------------------------------------------------------------------------------
# site bootstrap and skill
# --------------------------------------------------------------------------------------------


def test_site_resample_counts_shape_and_seed():
    codes, counts = site_resample_counts(["b", "a", "b", "c"], n_boot=50, seed=3)
    assert codes.tolist() == [1, 0, 1, 2]
    assert counts.shape == (50, 3) and (counts.sum(axis=1) == 3).all()
    draws = np.random.default_rng(3).integers(0, 3, size=(50, 3))
    np.testing.assert_array_equal(counts[7], np.bincount(draws[7], minlength=3))


def test_bootstrap_over_sites_resamples_whole_sites():
    # Two sites; site a's forecasts are all right, site b's all wrong. A resample is {a, a},
    # {a, b} or {b, b}, so every replicate Brier is 0, 0.5 or 1 -- never a mix of rows.
    p = [1.0, 1.0, 0.0, 0.0]
    y = [1, 1, 1, 1]
    sites = ["a", "a", "b", "b"]
    seen = set()

    def metric(pp, yy):
        value = brier(pp, yy)
        seen.add(round(value, 12))
        return value

    out = bootstrap_over_sites(metric, p, y, sites, n_boot=200, seed=1)
    assert seen <= {0.0, 0.5, 1.0}
    assert out == {"mean": 0.5, "q05": 0.0, "q95": 1.0}


def test_bootstrap_over_sites_reproducible_and_matches_vectorised_skill():
    rng = np.random.default_rng(0)
    sites = np.repeat(np.arange(12), 5)
    p = rng.uniform(0.1, 0.9, size=60)
    y = rng.binomial(1, p)
    pointwise = log_score(p, y, pointwise=True)
    a = bootstrap_over_sites(lambda pp, yy: log_score(pp, yy), p, y, sites, n_boot=300, seed=5)
    b = bootstrap_over_sites(lambda pp, yy: log_score(pp, yy), p, y, sites, n_boot=300, seed=5)
    assert a == b
    # skill against a zero baseline is the bootstrap of the mean score itself
    s = skill(pointwise, np.zeros(60), sites, score="log_score", n_boot=300, seed=5)
    assert s == pytest.approx(a)


def test_skill_direction():
    sites = [1, 1, 2, 2]
    model = np.array([0.1, 0.1, 0.2, 0.2])
    base = np.array([0.3, 0.3, 0.3, 0.3])
    # Brier-type loss: baseline - model = 0.2, 0.2, 0.1, 0.1 -> 0.15 (positive: model better)
    out = skill(model, base, sites, score="brier", n_boot=10, seed=0)
    assert out["mean"] == pytest.approx(0.15)
    # log score: model - baseline
    assert skill(model, base, sites, score="log_score", n_boot=10)["mean"] == pytest.approx(-0.15)


def test_skill_is_paired():
    # The model beats the baseline by exactly 0.02 everywhere, while both vary a lot by site.
    # A paired bootstrap gives a zero-width interval; resampling each separately would not.
    rng = np.random.default_rng(2)
    sites = np.repeat(np.arange(20), 4)
    base = np.repeat(rng.uniform(0, 1, size=20), 4)
    model = base - 0.02
    s = skill(model, base, sites, score="brier", n_boot=500, seed=1)
    assert s["mean"] == pytest.approx(0.02)
    assert s["q05"] == pytest.approx(0.02) and s["q95"] == pytest.approx(0.02)


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------


def test_baseline_base_rate_leaves_own_site_out():
    # a: others are b, c = (1, 1, 0, 0) -> 0.5; b: a, c = (1, 0, 0, 0) -> 0.25;
    # c: a, b = (1, 0, 1, 1) -> 0.75
    y = [1, 0, 1, 1, 0, 0]
    sites = ["a", "a", "b", "b", "c", "c"]
    np.testing.assert_allclose(
        baseline_base_rate(y, sites), [0.5, 0.5, 0.25, 0.25, 0.75, 0.75]
    )
    # with 0.5 pseudo-successes and failures: a: (2 + 0.5) / (4 + 1) = 0.5; b: 1.5 / 5 = 0.3
    np.testing.assert_allclose(baseline_base_rate(y, sites, pseudo=0.5)[[0, 2]], [0.5, 0.3])


def test_baseline_base_rate_binomial():
    # a: 2 of 3, b: 1 of 4 -> for a the rate of b = 1/4; for b the rate of a = 2/3
    np.testing.assert_allclose(
        baseline_base_rate([2, 1], ["a", "b"], trials=[3, 4]), [0.25, 2 / 3]
    )


def test_baseline_fixed_rate_and_shares():
    np.testing.assert_allclose(baseline_fixed_rate([1, 0, 0, 1, 1], 3), [0.6] * 3)
    np.testing.assert_allclose(baseline_fixed_rate([2, 1], 2, trials=[3, 4]), [3 / 7] * 2)
    np.testing.assert_allclose(baseline_fixed_shares([0, 2, 2, 1], 2, 3), [[0.25, 0.25, 0.5]] * 2)


def test_baseline_level_shares_leaves_own_site_out():
    # a: others (b, c) have levels (2, 2) -> (0, 0, 1); b: others (0, 1, 2) -> thirds; c: same
    out = baseline_level_shares([0, 1, 2, 2], ["a", "a", "b", "c"], 3)
    np.testing.assert_allclose(out, [[0, 0, 1], [0, 0, 1], [1 / 3] * 3, [1 / 3] * 3])


# --------------------------------------------------------------------------------------------
# the metrics table
# --------------------------------------------------------------------------------------------

KEYS = {"log_score", "brier", "auc", "calibration_slope", "calibration_intercept", "ece"}


def _signal(n_sites=40, per=5, strength=1.5, seed=0):
    rng = np.random.default_rng(seed)
    sites = np.repeat(np.arange(n_sites), per)
    x = rng.normal(size=n_sites * per)
    p = special.expit(strength * x)
    y = rng.binomial(1, p)
    return p, y, sites


def test_score_table_structure_and_values_bernoulli():
    p, y, sites = _signal()
    out = score_table(p, y, sites, family="bernoulli", n_boot=200, seed=1)
    assert set(out) == {"model", "baseline", "skill"}
    assert set(out["model"]) == KEYS and set(out["baseline"]) == KEYS
    assert set(out["skill"]) == {"log_score", "brier"}
    assert set(out["skill"]["brier"]) == {"mean", "q05", "q95"}
    assert out["model"]["log_score"] == pytest.approx(log_score(p, y))
    assert out["model"]["auc"] == pytest.approx(auc(p, y))
    base = baseline_base_rate(y, sites)
    assert out["baseline"]["brier"] == pytest.approx(brier(base, y))
    assert math.isnan(out["baseline"]["auc"])  # leave-site-out artefact, not reported
    assert out["skill"]["log_score"]["mean"] == pytest.approx(log_score(p, y) - log_score(base, y))
    # a real signal: skill clearly positive
    assert out["skill"]["log_score"]["q05"] > 0 and out["skill"]["brier"]["q05"] > 0


def test_score_table_no_skill_when_model_is_the_baseline():
    _, y, sites = _signal(strength=0.0)
    base = baseline_fixed_rate(y, y.size)
    out = score_table(base, y, sites, family="bernoulli", baseline=base, n_boot=100, seed=0)
    assert out["skill"]["brier"] == {"mean": 0.0, "q05": 0.0, "q95": 0.0}


def test_score_table_ordinal():
    rng = np.random.default_rng(3)
    sites = np.repeat(np.arange(30), 4)
    P = rng.dirichlet([1, 1, 1], size=120)
    y = np.array([rng.choice(3, p=row) for row in P])
    out = score_table(P, y, sites, family="ordinal", n_boot=100, seed=0)
    assert set(out["model"]) == KEYS | {"rps"}
    assert set(out["skill"]) == {"log_score", "brier", "rps"}
    assert out["model"]["rps"] == pytest.approx(rps(P, y))
    assert out["model"]["log_score"] == pytest.approx(log_score_ordinal(P, y))
    # Brier and AUC score the top level (embedded)
    assert out["model"]["brier"] == pytest.approx(brier(P[:, 2], (y == 2).astype(int)))
    shares = baseline_level_shares(y, sites, 3)
    assert out["baseline"]["rps"] == pytest.approx(rps(shares, y))


def test_score_table_binomial_expands_units():
    # rows (p, k of n): (0.2, 1 of 2), (0.6, 2 of 3), (0.5, 0 of 1) at sites a, b, c.
    # units: p = 0.2 x2 (y 1, 0), 0.6 x3 (y 1, 1, 0), 0.5 x1 (y 0):
    # Brier = (0.64 + 0.04 + 0.16 + 0.16 + 0.36 + 0.25) / 6 = 1.61 / 6
    out = score_table(
        [0.2, 0.6, 0.5], [1, 2, 0], ["a", "b", "c"], family="binomial", trials=[2, 3, 1],
        n_boot=50, seed=0,
    )
    assert out["model"]["brier"] == pytest.approx(1.61 / 6)
    assert out["model"]["log_score"] == pytest.approx(
        log_score_binomial([0.2, 0.6, 0.5], [1, 2, 0], [2, 3, 1])
    )
    # leave-site-out baseline per unit: a <- (b, c) 2 of 4 = 0.5; b <- (a, c) 1 of 3;
    # c <- (a, b) 3 of 5 = 0.6. Brier = (2 * 0.25 + 2 * 4/9 + 1/9 + 0.36) / 6 = 1.86 / 6
    assert out["baseline"]["brier"] == pytest.approx(1.86 / 6)
    assert out["model"]["auc"] == pytest.approx(
        auc([0.2, 0.2, 0.6, 0.6, 0.6, 0.5], [1, 0, 1, 1, 0, 0])
    )


def test_score_table_seed_reproducible():
    p, y, sites = _signal(seed=3)
    a = score_table(p, y, sites, family="bernoulli", n_boot=100, seed=7)
    b = score_table(p, y, sites, family="bernoulli", n_boot=100, seed=7)
    np.testing.assert_equal(a, b)  # NaN-aware: the baseline's AUC is NaN



# --------------------------------------------------------------------------------------------
# binomial rows: the predictive mixture, the plug-in score and the beta-binomial baseline
# --------------------------------------------------------------------------------------------

TOY_N, TOY_MU = 8, -0.3  # issue 12's toy case: n = 8 trials, logit p ~ N(-0.3, 1)


def _toy_mixture_quad(k: int) -> float:
    """log ∫ Binomial(k | 8, expit z) φ(z; -0.3, 1) dz by adaptive quadrature."""
    def f(z):
        return stats.binom.pmf(k, TOY_N, special.expit(z)) * stats.norm.pdf(z, TOY_MU, 1.0)

    return math.log(integrate.quad(f, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-12)[0])


def _toy_gauss_hermite(fn) -> float:
    """E[fn(expit z)], z ~ N(-0.3, 1), by 80-point Gauss–Hermite (probabilists' weights)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w * fn(special.expit(TOY_MU + x))) / math.sqrt(2 * math.pi))


# issue 12 / REVIEW.md quote (mixture, plug-in): k=0 (-2.70, -4.63), k=8 (-3.62, -6.58),
# k=4 (-1.86, -1.36). Quadrature gives -2.681/-4.614, -3.615/-6.599, -1.862/-1.358: the quoted
# values are these to within 0.02 (they look like Monte Carlo estimates).
TOY_QUOTED = {0: (-2.70, -4.63), 8: (-3.62, -6.58), 4: (-1.86, -1.36)}


@pytest.mark.parametrize("k", [0, 8, 4])
def test_toy_case_mixture_and_plug_in_by_numerical_integration(k):
    mixture = _toy_mixture_quad(k)
    # two independent integrations agree
    gh = math.log(_toy_gauss_hermite(lambda p: stats.binom.pmf(k, TOY_N, p)))
    assert mixture == pytest.approx(gh, abs=1e-9)
    p_bar = _toy_gauss_hermite(lambda p: p)
    plug_in = log_score_binomial([p_bar], [k], [TOY_N])
    assert plug_in == pytest.approx(stats.binom.logpmf(k, TOY_N, p_bar), abs=1e-12)
    quoted_mixture, quoted_plug_in = TOY_QUOTED[k]
    assert mixture == pytest.approx(quoted_mixture, abs=0.025)
    assert plug_in == pytest.approx(quoted_plug_in, abs=0.025)
    # over-dispersion: the mixture puts more mass in the tails, less at the centre
    assert (mixture > plug_in) if k in (0, 8) else (mixture < plug_in)


def test_mixture_score_with_many_draws_matches_the_integral():
    """The package's log-mean-exp over 400,000 draws equals quadrature within 4 Monte Carlo SEs."""
    rng = np.random.default_rng(12)
    p_draws = special.expit(rng.normal(TOY_MU, 1.0, size=(400_000, 1)))
    for k in (0, 4, 8):
        got = log_score_binomial_mixture(p_draws, [k], [TOY_N])
        pmf = stats.binom.pmf(k, TOY_N, p_draws[:, 0])
        se = pmf.std(ddof=1) / math.sqrt(pmf.size) / pmf.mean()  # delta method on the log
        assert abs(got - _toy_mixture_quad(k)) < 4 * se, (k, got, se)
    # and it is not the plug-in score of the same draws' mean
    plug_in = log_score_binomial([p_draws.mean()], [0], [TOY_N])
    assert log_score_binomial_mixture(p_draws, [0], [TOY_N]) - plug_in > 1.8


def test_mixture_score_of_one_draw_or_equal_draws_is_the_plug_in_score():
    p, k, n = [0.2, 0.6, 0.5], [1, 2, 0], [2, 3, 1]
    assert log_score_binomial_mixture([p], k, n) == pytest.approx(log_score_binomial(p, k, n))
    np.testing.assert_allclose(
        log_score_binomial_mixture(np.tile(p, (7, 1)), k, n, pointwise=True),
        log_score_binomial(p, k, n, pointwise=True),
    )
    # hand: draws 0.2 and 0.6 for 1 of 2: log((0.32 + 0.48) / 2) = log 0.4
    assert log_score_binomial_mixture([[0.2], [0.6]], [1], [2]) == pytest.approx(math.log(0.4))


def test_mixture_score_is_stable_where_single_draws_underflow():
    # 900 of 1000 at p = 0.01 and 0.02: each pmf underflows in float64, the log-mean-exp does not
    draws = [[0.01], [0.02]]
    expected = np.logaddexp(stats.binom.logpmf(900, 1000, 0.01), stats.binom.logpmf(900, 1000, 0.02))
    got = log_score_binomial_mixture(draws, [900], [1000])
    assert math.isfinite(got) and got == pytest.approx(expected - math.log(2), rel=1e-12)


def test_beta_binomial_closed_forms():
    # rho = 0 is the binomial; n = 1 is Bernoulli(p) whatever rho
    p, k, n = np.array([0.3, 0.7]), [1, 2], [3, 4]
    np.testing.assert_allclose(
        log_score_beta_binomial(p, 0.0, k, n, pointwise=True), log_score_binomial(p, k, n, pointwise=True)
    )
    assert log_score_beta_binomial([0.3], 0.4, [1], [1]) == pytest.approx(math.log(0.3))
    # n = 2: P(2 of 2) = E[pi^2] = p^2 + rho p (1 - p) = 0.09 + 0.2 * 0.21 = 0.132
    assert log_score_beta_binomial([0.3], 0.2, [2], [2]) == pytest.approx(math.log(0.132))
    # P(1 of 2) = 2 (p - E[pi^2]) = 2 (0.3 - 0.132) = 0.336
    assert log_score_beta_binomial([0.3], 0.2, [1], [2]) == pytest.approx(math.log(0.336))


@pytest.mark.parametrize("rho", [0.0, 0.15, 0.4])
def test_intra_row_correlation_recovers_a_known_truth(rho):
    """Beta-binomial rows of 8 with a known rho: the ANOVA estimate is within 0.03 (6,000 rows)."""
    rng = np.random.default_rng(int(rho * 100))
    rows, n, p = 6000, 8, 0.35
    if rho > 0:
        a, b = p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho
        pi = rng.beta(a, b, size=rows)
    else:
        pi = np.full(rows, p)
    k = rng.binomial(n, pi)
    assert intra_row_correlation(k, np.full(rows, n)) == pytest.approx(rho, abs=0.03)


def test_intra_row_correlation_hand_and_edges():
    # rows 0/2, 2/2: p^ = .5, MSB = (2*.25 + 2*.25)/1 = 1, MSW = 0, n0 = (4 - 8/4)/1 = 2 -> rho 1,
    # clipped to 0.999; identical rows have no between-row excess -> 0; one row -> 0
    assert intra_row_correlation([0, 2], [2, 2]) == pytest.approx(0.999)
    assert intra_row_correlation([1, 1, 1], [2, 2, 2]) == 0.0
    assert intra_row_correlation([3], [8]) == 0.0


def test_score_table_scores_a_given_log_density_as_the_model_and_baseline():
    p, k, n, sites = [0.2, 0.6, 0.5], [1, 2, 0], [2, 3, 1], ["a", "b", "c"]
    lpd = log_score_binomial_mixture([[0.1, 0.5, 0.4], [0.3, 0.7, 0.6]], k, n, pointwise=True)
    blpd = log_score_beta_binomial([0.5, 0.4, 0.6], 0.2, k, n, pointwise=True)
    out = score_table(p, k, sites, family="binomial", trials=n, log_density=lpd,
                      baseline_log_density=blpd, n_boot=50, seed=0)
    assert out["model"]["log_score"] == pytest.approx(lpd.mean())
    assert out["baseline"]["log_score"] == pytest.approx(blpd.mean())
    assert out["skill"]["log_score"]["mean"] == pytest.approx(lpd.mean() - blpd.mean())
    plain = score_table(p, k, sites, family="binomial", trials=n, n_boot=50, seed=0)
    assert out["model"]["brier"] == plain["model"]["brier"]  # per-unit scores keep p


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: brier([0.2, 1.2], [0, 1]),
            r"p: 1 forecasts outside \[0, 1\] at index 1 \(e.g. 1.2\)",
        ),
        (lambda: brier([0.2, np.nan], [0, 1]), r"p: 1 missing or infinite forecasts at index 1"),
        (lambda: brier([], []), r"p: no forecasts to score"),
        (lambda: brier([[0.2]], [0]), r"p: expected a 1-D array"),
        (lambda: brier([0.2, 0.3], [0, 2]), r"y: outcomes must be 0 or 1; found 2 at index 1"),
        (lambda: brier([0.2, 0.3], [0]), r"y: expected 2 outcomes to match the forecasts"),
        (lambda: rps([[0.2, 0.5, 0.2]], [1]), r"P: rows 0 sum to 0.9, not 1"),
        (lambda: rps([0.2, 0.8], [1]), r"P: expected an \(n, K\) array"),
        (lambda: rps([[0.2, np.nan]], [1]), r"P: missing or infinite probabilities in rows 0"),
        (lambda: rps([[-0.2, 1.2]], [1]), r"P: probabilities outside \[0, 1\] in rows 0"),
        (lambda: rps(np.empty((0, 3)), []), r"P: no forecasts to score"),
        (lambda: rps([[0.5, 0.5]], [2]), r"y: ordinal outcomes must be level codes 0..1; found 2"),
        (lambda: log_score_binomial([0.5], [3], [2]), r"k: successes must be whole numbers"),
        (lambda: log_score_binomial([0.5], [1], [0]), r"trials: must be whole numbers >= 1"),
        (lambda: log_score_binomial([0.5], [1, 1], [2]), r"k: expected 1 success counts"),
        (lambda: log_score_binomial_mixture([0.5, 0.4], [1], [2]), r"p_draws: expected an \(S, n\) array"),
        (lambda: log_score_binomial_mixture([[0.5, 1.4]], [1, 1], [2]), r"p_draws: 1 forecasts outside \[0, 1\]"),
        (lambda: log_score_binomial_mixture([[0.5]], [1, 1], [2]), r"k: expected 1 success counts"),
        (lambda: log_score_beta_binomial([0.5], 1.0, [1], [2]), r"rho: the intra-row correlation must be in \[0, 1\)"),
        (
            lambda: score_table([0.5, 0.5], [1, 0], [1, 2], family="binomial", trials=2, log_density=[-1.0]),
            r"log_density: expected 2 per-observation log densities",
        ),
        (
            lambda: score_table([0.5, 0.5], [1, 0], [1, 2], family="binomial", trials=2,
                                baseline_log_density=[-1.0, np.nan]),
            r"baseline_log_density: log densities of discrete outcomes are <= 0 and not NaN; bad at index 1",
        ),
        (
            lambda: score_table([0.5, 0.5], [1, 0], [1, 2], family="bernoulli", log_density=[-0.1, -0.1]),
            r"log_density: differs from the log score of the bernoulli forecasts",
        ),
        (
            lambda: score_table([[0.5, 0.5], [0.5, 0.5]], [1, 0], [1, 2], family="ordinal", log_density=[-1, -1]),
            r"log_density: ordinal forecasts are scored from their level probabilities",
        ),
        (lambda: ece([0.5], [1], bins=0), r"bins: expected a positive whole number"),
        (lambda: skill([0.1], [0.2], [1], score="auc"), r"score: unknown score 'auc'"),
        (lambda: skill([0.1], [0.2, 0.3], [1], score="brier"), r"must be 1-D and the same length"),
        (lambda: skill([0.1], [0.2], [1, 2], score="brier"), r"sites: expected 1 site ids"),
        (lambda: site_resample_counts([1, 2], n_boot=0), r"n_boot: expected a positive whole"),
        (
            lambda: bootstrap_over_sites(brier, [0.1, 0.2], [1], [1, 2]),
            r"p and y have different lengths \(2 vs 1\)",
        ),
        (lambda: baseline_base_rate([1, 0], ["a", "a"]), r"needs at least 2 sites"),
        (lambda: baseline_level_shares([1, 0], ["a", "a"], 2), r"need at least 2 sites"),
        (lambda: baseline_fixed_rate([], 3), r"y_train: no training outcomes"),
        (lambda: baseline_fixed_shares([], 3, 2), r"y_train: no training outcomes"),
        (lambda: baseline_fixed_rate([0, 3], 3), r"y_train: outcomes must be 0 or 1"),
        (
            lambda: score_table([0.5], [1], [1], family="gamma"),
            r"family: unknown family 'gamma'",
        ),
        (
            lambda: score_table([0.5], [1], [1], family="poisson"),
            r"family: 'poisson' forecasts are rates, not probabilities; mbct-bayes evaluate scores them",
        ),
        (
            lambda: score_table([0.5, 0.5], [1, 0], [1, 2], family="binomial"),
            r"trials: the binomial family needs the number of trials",
        ),
        (
            lambda: score_table([0.5, 0.5], [1, 0], [1, 2], family="bernoulli", baseline=[0.5]),
            r"baseline: expected shape \(2,\) like the forecasts",
        ),
        (
            lambda: score_table(
                [[0.5, 0.5], [0.5, 0.5]], [1, 0], [1, 2], family="ordinal", baseline=[[1.0, 0.0]]
            ),
            r"baseline: expected shape \(2, 2\) like the forecasts",
        ),
        (lambda: score_table([0.5, 0.5], [1, 0], [1], family="bernoulli"), r"sites: expected 2"),
    ],
)
def test_bad_input_messages(call, message):
    with pytest.raises(DataError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def test_reliability_diagram_bars_match_bins_with_data():
    fig = reliability_diagram(DECOMP_P, DECOMP_Y, bins=10)
    assert isinstance(fig, Figure)
    ax, ax_n = fig.axes
    assert len(ax_n.patches) == 2  # two non-empty bins -> two count bars
    assert sorted(p.get_height() for p in ax_n.patches) == [4, 6]
    assert sorted(t.get_text() for t in ax_n.texts) == ["4", "6"]
    _diagonal, binned = ax.lines
    np.testing.assert_allclose(binned.get_xdata(), [0.15, 0.65])
    np.testing.assert_allclose(binned.get_ydata(), [0.25, 2 / 3])
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)  # no band without sites


def test_reliability_diagram_with_site_band():
    p, y, sites = _signal()
    fig = reliability_diagram(p, y, bins=5, sites=sites, n_boot=100, seed=0)
    ax, ax_n = fig.axes
    assert any(isinstance(c, PolyCollection) for c in ax.collections)
    assert len(ax_n.patches) == int((reliability_bins(p, y, 5).count > 0).sum())


def test_site_forecast_chart_sorted_with_intervals_and_outcomes():
    fig = site_forecast_chart(
        ["s1", "s2", "s3"], [0.7, 0.2, 0.5], lower=[0.5, 0.1, 0.3], upper=[0.9, 0.4, 0.6],
        observed=[1, 0, np.nan],
    )
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s2", "s3", "s1"]
    forecast, observed = ax.lines
    np.testing.assert_allclose(forecast.get_xdata(), [0.2, 0.5, 0.7])
    np.testing.assert_allclose(observed.get_xdata(), [0, 1])  # s3 not yet observed
    assert len(ax.collections) == 1  # the interval lines


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": [0.1, 0.1]}, r"lower, upper: give both interval bounds or neither"),
        ({"lower": [0.3, 0.1], "upper": [0.9, 0.9]}, r"rows 0 do not contain the forecast"),
        ({"observed": [1, 2]}, r"observed: outcomes must be 0/1 or fractions"),
        ({"observed": [1]}, r"observed: expected 2 outcomes"),
    ],
)
def test_site_forecast_chart_bad_input(kwargs, message):
    with pytest.raises(DataError, match=message):
        site_forecast_chart(["a", "b"], [0.2, 0.5], **kwargs)


def test_reliability_diagram_bad_sites():
    with pytest.raises(DataError, match=r"sites: expected 3 site ids"):
        reliability_diagram([0.1, 0.2, 0.3], [0, 1, 0], sites=["a", "b"])
